/* test_sim_pipe.c: the simulated pipes (sim/sim_pipe.h).
 *
 * Each test builds a small simulated world, joins two probe actors with a
 * pipe (or a sim_listen/sim_connect pair, or sim_connect_async, or an
 * actor's rt_stream_connect), writes from test code between
 * sim_world_run calls and checks what the probes saw and when. A probe
 * records every RT_TAG_STREAM signal (world time and bits) and, when asked,
 * reads everything available, recording each chunk's end offset and time.
 *
 * The model promises (sim_pipe.h, sim_pipe.c dir_transmit): a write at time t
 * is cut into segments of at most mss bytes; segment k occupies the link for
 * ceil(len_k * 1e9 / bandwidth) ns after the link is free, and arrives
 * `latency` (plus a jitter draw) after it left, never before the segment
 * ahead of it. The tests below assert those times exactly.
 *
 * Every test fixes its seed (world_new's argument), so a failure replays
 * exactly with: build/bin/test_sim_pipe --filter 'sim_pipe/<test name>'.
 */
#include "dialer.h"
#include "net_echo.h"
#include "rt_stream.h"
#include "rt_world.h"
#include "sim_int.h" /* the world's spare rings */
#include "sim_pipe.h"
#include "sim_world.h"

#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define MS RT_NS_PER_MS
#define US RT_NS_PER_US

#define PROBE_EVENTS_MAX 512u
#define PROBE_CHUNKS_MAX 4096u
#define PROBE_READS_PER_TURN 4096u /* bounds one turn's read loop */
#define PROBE_ACCEPTED_MAX 8u
#define PROBE_DATA_MAX (1u << 20)

/* ---- Probes -------------------------------------------------------------- */

typedef struct probe_event {
  rt_time_ns at;
  uint32_t events;
} probe_event_t;

typedef struct probe_chunk {
  uint64_t end; /* bytes read so far after this read */
  rt_time_ns at;
} probe_chunk_t;

typedef struct probe {
  rt_actor_id_t id;
  rt_stream_t *stream; /* borrowed: read on every signal if auto_read */
  bool auto_read;
  uint8_t *data; /* PROBE_DATA_MAX bytes */
  size_t len;
  probe_event_t events[PROBE_EVENTS_MAX];
  uint32_t events_len;
  probe_chunk_t chunks[PROBE_CHUNKS_MAX];
  uint32_t chunks_len;
  int64_t end; /* 0, or the negative code a read returned */
  rt_time_ns end_at;
  uint32_t accepts;        /* RT_TAG_ACCEPT signals */
  rt_listener_t *listener; /* borrowed: accepted from on every signal */
  rt_stream_t *accepted[PROBE_ACCEPTED_MAX];
  uint32_t accepted_len;
} probe_t;

static void probe_read_all(probe_t *p, rt_world_t *w) {
  for (uint32_t i = 0; i < PROBE_READS_PER_TURN && p->end == 0; i++) {
    size_t room = PROBE_DATA_MAX - p->len;
    cr_assert_gt(room, 0, "probe buffer full");
    int64_t n = rt_stream_read(p->stream, p->data + p->len, room);
    if (n == 0)
      return;
    if (n < 0) {
      p->end = n;
      p->end_at = rt_now(w);
      return;
    }
    p->len += (size_t)n;
    cr_assert_lt(p->chunks_len, PROBE_CHUNKS_MAX);
    p->chunks[p->chunks_len++] =
        (probe_chunk_t){.end = p->len, .at = rt_now(w)};
  }
}

static void probe_behaviour(rt_actor_t *self, const rt_msg_t *msg) {
  probe_t *p = rt_state(self);
  rt_world_t *w = rt_actor_world(self);
  rt_stream_event_t ev;
  RT_MSG_GET(msg, rt_stream_event_t, &ev);
  if (msg->tag == RT_TAG_ACCEPT) {
    p->accepts++;
    cr_assert_eq(msg->ref, p->listener);
    for (uint32_t i = 0; i < PROBE_ACCEPTED_MAX; i++) {
      rt_stream_t *s = NULL;
      int r = rt_listener_accept(p->listener, &s);
      cr_assert_geq(r, 0);
      if (r == 0)
        break;
      cr_assert_lt(p->accepted_len, PROBE_ACCEPTED_MAX);
      p->accepted[p->accepted_len++] = s;
    }
    return;
  }
  cr_assert_eq(msg->tag, RT_TAG_STREAM);
  if (p->stream != NULL)
    cr_assert_eq(msg->ref, p->stream);
  cr_assert_lt(p->events_len, PROBE_EVENTS_MAX);
  p->events[p->events_len++] =
      (probe_event_t){.at = rt_now(w), .events = ev.events};
  if (p->auto_read)
    probe_read_all(p, w);
}

/* A probe actor; it owns `s` (which may be NULL) from now on. */
static probe_t *probe_spawn(sim_world_t *sw, rt_stream_t *s, bool auto_read) {
  probe_t *p = calloc(1, sizeof(*p));
  cr_assert_not_null(p);
  p->data = calloc(1, PROBE_DATA_MAX);
  cr_assert_not_null(p->data);
  p->stream = s;
  p->auto_read = auto_read;
  rt_actor_spec_t spec = {.name = "probe",
                          .behaviour = probe_behaviour,
                          .state = p,
                          .mailbox_cap = 16,
                          .overflow = RT_OVERFLOW_REJECT};
  cr_assert_eq(rt_spawn(sim_world_rt(sw), &spec, &p->id), RT_OK);
  if (s != NULL)
    rt_stream_set_owner(s, p->id);
  return p;
}

static void probe_free(probe_t *p) {
  free(p->data);
  free(p);
}

/* Bits OR-ed over all signals the probe saw. */
static uint32_t probe_bits(const probe_t *p) {
  uint32_t bits = 0;
  for (uint32_t i = 0; i < p->events_len; i++)
    bits |= p->events[i].events;
  return bits;
}

/* ---- World helpers ------------------------------------------------------- */

static sim_world_t *world_new(uint64_t seed) {
  sim_config_t cfg = {.seed = seed, .log_level = RT_LOG_OFF};
  sim_world_t *sw = sim_world_create(&cfg);
  cr_assert_not_null(sw);
  return sw;
}

static void noop_timer(rt_world_t *w, void *arg, uint64_t timer) {
  (void)w;
  (void)arg;
  (void)timer;
}

/* Run everything due up to `t` and leave the clock at exactly `t`, even if
 * the world goes idle first (sim_world_run does not move an idle clock). */
static void run_to(sim_world_t *sw, rt_time_ns t) {
  rt_world_t *w = sim_world_rt(sw);
  cr_assert_geq(t, rt_now(w), "run_to(%" PRId64 ") is in the past", t);
  uint64_t timer;
  cr_assert_eq(rt_timer_start_fn(w, t - rt_now(w), 0, noop_timer, NULL, &timer),
               RT_OK);
  sim_run_result_t r = sim_world_run(sw, t, 1000000);
  cr_assert_neq(r, SIM_RUN_TURNS, "a bounded run did not finish");
  cr_assert_eq(rt_now(w), t);
}

static void write_all(rt_stream_t *s, const void *buf, size_t len) {
  int64_t n = rt_stream_write(s, buf, len);
  cr_assert_eq(n, (int64_t)len, "write took %" PRId64 " of %zu", n, len);
}

/* ---- Latency ------------------------------------------------------------- */

Test(sim_pipe, bytes_arrive_exactly_latency_after_the_write) {
  sim_world_t *sw = world_new(1);
  sim_link_config_t link = {.latency = 10 * MS};
  rt_stream_t *a, *b;
  cr_assert_eq(sim_pipe_create(sw, &link, NULL, &a, &b), RT_OK);
  probe_t *rx = probe_spawn(sw, b, true);

  write_all(a, "hello", 5);
  run_to(sw, 10 * MS - 1);
  cr_assert_eq(rx->events_len, 0, "a signal came before the latency");
  uint8_t tmp[8];
  cr_assert_eq(rt_stream_read(b, tmp, sizeof(tmp)), 0);

  run_to(sw, 10 * MS);
  cr_assert_eq(rx->events_len, 1);
  cr_assert_eq(rx->events[0].at, 10 * MS);
  cr_assert(rx->events[0].events & RT_STREAM_READABLE);
  cr_assert_eq(rx->len, 5);
  cr_assert_arr_eq(rx->data, "hello", 5);
  cr_assert_eq(rx->chunks[0].at, 10 * MS);

  /* A later write is delayed from its own time, not from the first. */
  run_to(sw, 25 * MS);
  write_all(a, "world", 5);
  run_to(sw, 35 * MS - 1);
  cr_assert_eq(rx->len, 5);
  run_to(sw, 35 * MS);
  cr_assert_eq(rx->len, 10);
  cr_assert_arr_eq(rx->data, "helloworld", 10);
  cr_assert_eq(rx->chunks[1].at, 35 * MS);

  sim_world_destroy(sw);
  probe_free(rx);
}

/* A direction holds its ring and segments only while bytes are in flight:
 * once read they go back to the world, and the next write on any pipe
 * takes them, with every byte read as it was written. A ring grown past
 * its first size is freed instead. */
Test(sim_pipe, a_drained_direction_gives_its_ring_to_the_next_write) {
  sim_world_t *sw = world_new(1);
  sim_link_config_t link = {.latency = 1 * MS, .buffer = 16384};
  rt_stream_t *a, *b, *c, *d;
  cr_assert_eq(sim_pipe_create(sw, &link, &link, &a, &b), RT_OK);
  cr_assert_eq(sim_pipe_create(sw, &link, &link, &c, &d), RT_OK);
  probe_t *rb = probe_spawn(sw, b, true);
  probe_t *rc = probe_spawn(sw, c, true);
  probe_t *rd = probe_spawn(sw, d, true);
  write_all(a, "first", 5);
  write_all(c, "second", 6); /* both in flight: two rings */
  cr_assert_eq(sw->spare_rings_len, 0);
  run_to(sw, 1 * MS);
  cr_assert_eq(rb->len, 5);
  cr_assert_eq(rd->len, 6);
  cr_assert_eq(sw->spare_rings_len, 2, "both drained");
  cr_assert_eq(sw->spare_segs_len, 2);
  write_all(d, "back", 4); /* the other way, on a spare */
  cr_assert_eq(sw->spare_rings_len, 1);
  cr_assert_eq(sw->spare_segs_len, 1);
  static uint8_t big[6000];
  for (size_t i = 0; i < sizeof(big); i++)
    big[i] = (uint8_t)(i * 7);
  write_all(a, big, sizeof(big)); /* a ring larger than the first size */
  cr_assert_eq(sw->spare_rings_len, 1, "not taken for it");
  run_to(sw, 3 * MS);
  cr_assert_eq(rb->len, 5 + sizeof(big));
  cr_assert_arr_eq(rb->data, "first", 5);
  cr_assert_arr_eq(rb->data + 5, big, sizeof(big));
  cr_assert_eq(rc->len, 4);
  cr_assert_arr_eq(rc->data, "back", 4);
  cr_assert_eq(sw->spare_rings_len, 2, "the large ring freed, not kept");
  cr_assert_eq(sw->spare_segs_len, 2);
  sim_world_destroy(sw);
  probe_free(rb);
  probe_free(rc);
  probe_free(rd);
}

/* The spares are bounded: 256 rings and 256 segment arrays kept; beyond
 * them a drained direction's are freed. */
Test(sim_pipe, the_world_keeps_at_most_256_spares_of_each) {
  sim_world_t *sw = world_new(1);
  enum { N = 258 };
  static rt_stream_t *a[N], *b[N];
  for (int i = 0; i < N; i++) {
    cr_assert_eq(sim_pipe_create(sw, NULL, NULL, &a[i], &b[i]), RT_OK);
    write_all(a[i], "x", 1);
  }
  run_to(sw, 1 * MS);
  cr_assert_eq(sw->spare_segs_len, 256, "every segment arrived");
  for (int i = 0; i < N; i++) {
    uint8_t c = 0;
    cr_assert_eq(rt_stream_read(b[i], &c, 1), 1);
    cr_assert_eq(c, 'x');
    cr_assert_eq(sw->spare_rings_len, i + 1 < 256 ? i + 1 : 256, "%d", i);
  }
  sim_world_destroy(sw);
}

Test(sim_pipe, stepping_shows_the_arrival_then_the_owners_turn) {
  sim_world_t *sw = world_new(1);
  rt_world_t *w = sim_world_rt(sw);
  sim_link_config_t link = {.latency = 3 * MS};
  rt_stream_t *a, *b;
  cr_assert_eq(sim_pipe_create(sw, &link, NULL, &a, &b), RT_OK);
  probe_t *rx = probe_spawn(sw, b, true);
  write_all(a, "step", 4);
  /* Step 1: nothing is ready, so the clock jumps to the arrival. */
  cr_assert(sim_world_step(sw));
  cr_assert_eq(rt_now(w), 3 * MS);
  cr_assert_eq(rx->events_len, 0, "the owner has not run yet");
  /* Step 2: the owner's turn, at the same time. */
  cr_assert(sim_world_step(sw));
  cr_assert_eq(rt_now(w), 3 * MS);
  cr_assert_eq(rx->events_len, 1);
  cr_assert_eq(rx->len, 4);
  cr_assert_arr_eq(rx->data, "step", 4);
  /* Then the world is idle. */
  cr_assert_not(sim_world_step(sw));
  sim_world_destroy(sw);
  probe_free(rx);
}

Test(sim_pipe, each_direction_has_its_own_latency) {
  sim_world_t *sw = world_new(1);
  sim_link_config_t up = {.latency = 3 * MS};
  sim_link_config_t down = {.latency = 7 * MS};
  rt_stream_t *a, *b;
  cr_assert_eq(sim_pipe_create(sw, &up, &down, &a, &b), RT_OK);
  probe_t *pa = probe_spawn(sw, a, true);
  probe_t *pb = probe_spawn(sw, b, true);

  write_all(a, "ping", 4);
  write_all(b, "pong", 4);
  run_to(sw, 20 * MS);
  cr_assert_eq(pb->chunks_len, 1);
  cr_assert_eq(pb->chunks[0].at, 3 * MS);
  cr_assert_arr_eq(pb->data, "ping", 4);
  cr_assert_eq(pa->chunks_len, 1);
  cr_assert_eq(pa->chunks[0].at, 7 * MS);
  cr_assert_arr_eq(pa->data, "pong", 4);

  sim_world_destroy(sw);
  probe_free(pa);
  probe_free(pb);
}

Test(sim_pipe, a_null_config_delivers_without_delay) {
  sim_world_t *sw = world_new(1);
  rt_stream_t *a, *b;
  cr_assert_eq(sim_pipe_create(sw, NULL, NULL, &a, &b), RT_OK);
  probe_t *rx = probe_spawn(sw, b, true);
  run_to(sw, 5 * MS);
  write_all(a, "now", 3);
  run_to(sw, 5 * MS);
  cr_assert_eq(rx->len, 3);
  cr_assert_eq(rx->chunks[0].at, 5 * MS);
  sim_world_destroy(sw);
  probe_free(rx);
}

/* ---- Bandwidth ----------------------------------------------------------- */

Test(sim_pipe, bandwidth_limits_delivery_time) {
  /* 50 000 bytes at 1 000 000 B/s: 34 segments of 1460 and one of 360,
   * each on the link for exactly len microseconds, then 5 ms of latency. */
  enum { N = 50000, MSS = 1460 };
  sim_world_t *sw = world_new(1);
  sim_link_config_t link = {.latency = 5 * MS, .bandwidth = 1000000};
  rt_stream_t *a, *b;
  cr_assert_eq(sim_pipe_create(sw, &link, NULL, &a, &b), RT_OK);
  probe_t *rx = probe_spawn(sw, b, true);

  uint8_t *buf = malloc(N);
  for (uint32_t i = 0; i < N; i++)
    buf[i] = (uint8_t)(i * 7u);
  write_all(a, buf, N);
  run_to(sw, 1000 * MS);

  uint32_t segments = (N + MSS - 1) / MSS;
  cr_assert_eq(rx->chunks_len, segments, "one read per segment arrival");
  for (uint32_t k = 0; k < segments; k++) {
    uint64_t end = (uint64_t)(k + 1) * MSS < N ? (uint64_t)(k + 1) * MSS : N;
    /* At 1 byte/us, a segment's end leaves the link at `end` us. */
    rt_time_ns expect = 5 * MS + (rt_time_ns)end * US;
    cr_assert_eq(rx->chunks[k].end, end, "segment %u", k);
    cr_assert_eq(rx->chunks[k].at, expect, "segment %u at %" PRId64, k,
                 rx->chunks[k].at);
  }
  /* N/B + latency, exactly, since B divides every segment's bits. */
  cr_assert_eq(rx->chunks[segments - 1].at, 50 * MS + 5 * MS);
  cr_assert_eq(rx->len, N);
  cr_assert_arr_eq(rx->data, buf, N);

  free(buf);
  sim_world_destroy(sw);
  probe_free(rx);
}

Test(sim_pipe, bandwidth_rounds_each_segment_up_to_a_nanosecond) {
  /* 2500 bytes at 3000 B/s with mss 1000: segments 1000, 1000, 500 take
   * ceil(1e12/3000) = 333 333 334 ns twice and ceil(5e11/3000) = 166 666 667
   * ns: 833 333 335 ns in all, N/B = 833 333 333.3 ns plus at most one ns
   * per segment. */
  sim_world_t *sw = world_new(1);
  sim_link_config_t link = {.latency = 2 * MS, .bandwidth = 3000, .mss = 1000};
  rt_stream_t *a, *b;
  cr_assert_eq(sim_pipe_create(sw, &link, NULL, &a, &b), RT_OK);
  probe_t *rx = probe_spawn(sw, b, true);
  uint8_t buf[2500];
  memset(buf, 'x', sizeof(buf));
  write_all(a, buf, sizeof(buf));
  run_to(sw, 2 * RT_NS_PER_S);

  cr_assert_eq(rx->chunks_len, 3);
  cr_assert_eq(rx->chunks[0].end, 1000);
  cr_assert_eq(rx->chunks[0].at, 2 * MS + 333333334);
  cr_assert_eq(rx->chunks[1].end, 2000);
  cr_assert_eq(rx->chunks[1].at, 2 * MS + 666666668);
  cr_assert_eq(rx->chunks[2].end, 2500);
  cr_assert_eq(rx->chunks[2].at, 2 * MS + 833333335);
  rt_time_ns ideal = 2 * MS + 833333333;
  cr_assert_geq(rx->chunks[2].at, ideal);
  cr_assert_leq(rx->chunks[2].at, ideal + 3);

  sim_world_destroy(sw);
  probe_free(rx);
}

Test(sim_pipe, writes_queue_behind_a_busy_link) {
  /* The link is busy until 1000 us after the first write, so a second write
   * at 400 us starts at 1000 us, not at 400 us. */
  sim_world_t *sw = world_new(1);
  sim_link_config_t link = {.latency = 1 * MS, .bandwidth = 1000000};
  rt_stream_t *a, *b;
  cr_assert_eq(sim_pipe_create(sw, &link, NULL, &a, &b), RT_OK);
  probe_t *rx = probe_spawn(sw, b, true);
  uint8_t buf[1000];
  memset(buf, 1, sizeof(buf));
  write_all(a, buf, sizeof(buf));
  run_to(sw, 400 * US);
  write_all(a, buf, 200);
  run_to(sw, 100 * MS);
  cr_assert_eq(rx->chunks_len, 2);
  cr_assert_eq(rx->chunks[0].at, 1000 * US + 1 * MS);
  cr_assert_eq(rx->chunks[1].at, 1200 * US + 1 * MS);
  /* After the link went idle, a write is timed from its own start again. */
  run_to(sw, 500 * MS);
  write_all(a, buf, 100);
  run_to(sw, 600 * MS);
  cr_assert_eq(rx->chunks_len, 3);
  cr_assert_eq(rx->chunks[2].at, 500 * MS + 100 * US + 1 * MS);
  sim_world_destroy(sw);
  probe_free(rx);
}

/* ---- Buffer and backpressure --------------------------------------------- */

Test(sim_pipe, writes_are_accepted_up_to_exactly_the_buffer) {
  enum { BUF = 1000 };
  sim_world_t *sw = world_new(1);
  sim_link_config_t link = {.latency = 1 * MS, .buffer = BUF};
  rt_stream_t *a, *b;
  cr_assert_eq(sim_pipe_create(sw, &link, NULL, &a, &b), RT_OK);
  uint8_t buf[2 * BUF];
  memset(buf, 'z', sizeof(buf));

  /* Below the limit: everything is taken. */
  cr_assert_eq(rt_stream_write(a, buf, BUF - 1), BUF - 1);
  cr_assert_eq(rt_stream_backlog(a), BUF - 1);
  /* At the limit: the last byte fits. */
  cr_assert_eq(rt_stream_write(a, buf, 1), 1);
  cr_assert_eq(rt_stream_backlog(a), BUF);
  /* Above it: nothing more, also after the bytes arrived unread. */
  cr_assert_eq(rt_stream_write(a, buf, 1), 0);
  run_to(sw, 10 * MS);
  cr_assert_eq(rt_stream_write(a, buf, 1), 0);
  cr_assert_eq(rt_stream_backlog(a), BUF);
  cr_assert_eq(rt_stream_backlog(b), 0, "b wrote nothing");
  sim_world_destroy(sw);
}

Test(sim_pipe, a_write_larger_than_the_buffer_is_cut_at_the_buffer) {
  enum { BUF = 1000 };
  sim_world_t *sw = world_new(1);
  sim_link_config_t link = {.buffer = BUF};
  rt_stream_t *a, *b;
  cr_assert_eq(sim_pipe_create(sw, &link, NULL, &a, &b), RT_OK);
  uint8_t buf[BUF + 1];
  for (uint32_t i = 0; i < sizeof(buf); i++)
    buf[i] = (uint8_t)i;
  cr_assert_eq(rt_stream_write(a, buf, BUF + 1), BUF);
  cr_assert_eq(rt_stream_backlog(a), BUF);
  run_to(sw, 1 * MS);
  uint8_t got[2 * BUF];
  cr_assert_eq(rt_stream_read(b, got, sizeof(got)), BUF);
  cr_assert_arr_eq(got, buf, BUF);
  cr_assert_eq(rt_stream_backlog(a), 0);
  sim_world_destroy(sw);
}

Test(sim_pipe, reading_k_bytes_signals_writable_and_frees_k_bytes) {
  enum { BUF = 1000, K = 300 };
  sim_world_t *sw = world_new(1);
  sim_link_config_t link = {.latency = 1 * MS, .buffer = BUF};
  rt_stream_t *a, *b;
  cr_assert_eq(sim_pipe_create(sw, &link, NULL, &a, &b), RT_OK);
  probe_t *tx = probe_spawn(sw, a, false);
  probe_t *rx = probe_spawn(sw, b, false); /* never reads by itself */
  uint8_t buf[2 * BUF];
  for (uint32_t i = 0; i < sizeof(buf); i++)
    buf[i] = (uint8_t)(i % 251);

  cr_assert_eq(rt_stream_write(a, buf, 2 * BUF), BUF, "short write");
  run_to(sw, 5 * MS);
  cr_assert_eq(rt_stream_write(a, buf + BUF, BUF), 0);
  cr_assert_eq(rt_stream_backlog(a), BUF);
  cr_assert(probe_bits(rx) & RT_STREAM_READABLE);
  cr_assert_eq(tx->events_len, 0, "no WRITABLE while nothing was read");

  uint8_t got[K];
  cr_assert_eq(rt_stream_read(b, got, K), K);
  cr_assert_arr_eq(got, buf, K);
  cr_assert_eq(rt_stream_backlog(a), BUF - K, "written minus read");
  run_to(sw, 6 * MS);
  cr_assert_eq(tx->events_len, 1);
  cr_assert_eq(tx->events[0].events, RT_STREAM_WRITABLE);
  cr_assert_eq(tx->events[0].at, 5 * MS, "WRITABLE follows the read at once");

  /* Exactly K more fit, no more. */
  cr_assert_eq(rt_stream_write(a, buf + BUF, K + 1), K);
  cr_assert_eq(rt_stream_backlog(a), BUF);
  cr_assert_eq(rt_stream_write(a, buf, 1), 0);

  /* Drain everything; the stream carries the accepted bytes in order. */
  run_to(sw, 10 * MS);
  uint8_t all[BUF];
  cr_assert_eq(rt_stream_read(b, all, sizeof(all)), BUF);
  cr_assert_arr_eq(all, buf + K, BUF - K);
  cr_assert_arr_eq(all + BUF - K, buf + BUF, K);
  cr_assert_eq(rt_stream_backlog(a), 0);
  run_to(sw, 11 * MS);
  cr_assert_eq(tx->events_len, 2, "a second short write, a second WRITABLE");

  sim_world_destroy(sw);
  probe_free(tx);
  probe_free(rx);
}

Test(sim_pipe, no_writable_signal_without_a_short_write) {
  sim_world_t *sw = world_new(1);
  sim_link_config_t link = {.buffer = 100};
  rt_stream_t *a, *b;
  cr_assert_eq(sim_pipe_create(sw, &link, NULL, &a, &b), RT_OK);
  probe_t *tx = probe_spawn(sw, a, false);
  write_all(a, "0123456789", 10);
  run_to(sw, 1 * MS);
  uint8_t got[16];
  cr_assert_eq(rt_stream_read(b, got, sizeof(got)), 10);
  run_to(sw, 2 * MS);
  cr_assert_eq(tx->events_len, 0);
  sim_world_destroy(sw);
  probe_free(tx);
}

Test(sim_pipe, buffer_above_the_maximum_is_rejected) {
  sim_world_t *sw = world_new(1);
  rt_stream_t *a = NULL, *b = NULL;
  sim_link_config_t at_max = {.buffer = SIM_BUFFER_MAX};
  cr_assert_eq(sim_pipe_create(sw, &at_max, NULL, &a, &b), RT_OK);
  sim_link_config_t over = {.buffer = SIM_BUFFER_MAX + 1};
  cr_assert_eq(sim_pipe_create(sw, &over, NULL, &a, &b), RT_EINVAL);
  cr_assert_eq(sim_pipe_create(sw, NULL, &over, &a, &b), RT_EINVAL);
  sim_world_destroy(sw);
}

/* ---- Stalls -------------------------------------------------------------- */

Test(sim_pipe, a_configured_stall_holds_arrivals_then_releases_them_in_order) {
  sim_world_t *sw = world_new(1);
  sim_link_config_t link = {
      .latency = 1 * MS, .stall_at = 10 * MS, .stall_for = 20 * MS};
  rt_stream_t *a, *b;
  cr_assert_eq(sim_pipe_create(sw, &link, NULL, &a, &b), RT_OK);
  probe_t *rx = probe_spawn(sw, b, true);

  write_all(a, "A", 1); /* due at 1 ms: before the window */
  run_to(sw, 9 * MS);
  write_all(a, "B", 1); /* due at 10 ms: the window's first instant */
  run_to(sw, 12 * MS);
  write_all(a, "C", 1); /* due at 13 ms */
  run_to(sw, 25 * MS);
  write_all(a, "D", 1); /* due at 26 ms */
  run_to(sw, 30 * MS - 1);
  cr_assert_eq(rx->len, 1, "only A arrived during the stall");
  cr_assert_eq(rx->chunks[0].at, 1 * MS);
  cr_assert_eq(rx->events_len, 1);

  run_to(sw, 30 * MS);
  cr_assert_eq(rx->len, 4);
  cr_assert_arr_eq(rx->data, "ABCD", 4);
  cr_assert_eq(rx->chunks_len, 2, "the held bytes arrive together");
  cr_assert_eq(rx->chunks[1].at, 30 * MS);

  /* After the window, the link is normal again. */
  write_all(a, "E", 1);
  run_to(sw, 40 * MS);
  cr_assert_eq(rx->chunks_len, 3);
  cr_assert_eq(rx->chunks[2].at, 31 * MS);
  cr_assert_arr_eq(rx->data, "ABCDE", 5);
  sim_world_destroy(sw);
  probe_free(rx);
}

Test(sim_pipe, sim_stream_stall_holds_arrivals_towards_that_end) {
  sim_world_t *sw = world_new(1);
  sim_link_config_t link = {.latency = 1 * MS};
  rt_stream_t *a, *b;
  cr_assert_eq(sim_pipe_create(sw, &link, &link, &a, &b), RT_OK);
  probe_t *pa = probe_spawn(sw, a, true);
  probe_t *pb = probe_spawn(sw, b, true);

  sim_stream_stall(b, 50 * MS); /* towards b only */
  write_all(a, "one ", 4);
  write_all(b, "back", 4);
  run_to(sw, 20 * MS);
  write_all(a, "two ", 4);
  run_to(sw, 40 * MS);
  write_all(a, "three", 5);
  run_to(sw, 50 * MS - 1);
  cr_assert_eq(pb->len, 0, "nothing reaches b during the stall");
  cr_assert_eq(pb->events_len, 0);
  cr_assert_eq(pa->len, 4, "the other direction is not stalled");
  cr_assert_eq(pa->chunks[0].at, 1 * MS);

  run_to(sw, 50 * MS);
  cr_assert_eq(pb->len, 13);
  cr_assert_arr_eq(pb->data, "one two three", 13);
  cr_assert_eq(pb->chunks[0].at, 50 * MS);

  write_all(a, "!", 1);
  run_to(sw, 60 * MS);
  cr_assert_eq(pb->len, 14);
  cr_assert_eq(pb->chunks[pb->chunks_len - 1].at, 51 * MS);
  sim_world_destroy(sw);
  probe_free(pa);
  probe_free(pb);
}

Test(sim_pipe, sim_stream_stall_extends_but_never_shortens_a_stall) {
  sim_world_t *sw = world_new(1);
  rt_stream_t *a, *b;
  cr_assert_eq(sim_pipe_create(sw, NULL, NULL, &a, &b), RT_OK);
  probe_t *rx = probe_spawn(sw, b, true);
  sim_stream_stall(b, 30 * MS);
  write_all(a, "x", 1);
  run_to(sw, 10 * MS);
  sim_stream_stall(b, 20 * MS); /* earlier than the stall in force */
  run_to(sw, 30 * MS - 1);
  cr_assert_eq(rx->len, 0);
  sim_stream_stall(b, 40 * MS); /* later: extends it */
  run_to(sw, 40 * MS - 1);
  cr_assert_eq(rx->len, 0);
  run_to(sw, 40 * MS);
  cr_assert_eq(rx->len, 1);
  cr_assert_eq(rx->chunks[0].at, 40 * MS);
  sim_world_destroy(sw);
  probe_free(rx);
}

Test(sim_pipe, a_manual_stall_leaves_a_later_configured_stall_alone) {
  /* A manual stall [0, 20 ms) and the configured window [100, 150 ms) are
   * two separate stalls: a byte due at 61 ms is not held until 150 ms. */
  sim_world_t *sw = world_new(1);
  sim_link_config_t link = {
      .latency = 1 * MS, .stall_at = 100 * MS, .stall_for = 50 * MS};
  rt_stream_t *a, *b;
  cr_assert_eq(sim_pipe_create(sw, &link, NULL, &a, &b), RT_OK);
  probe_t *rx = probe_spawn(sw, b, true);
  sim_stream_stall(b, 20 * MS);
  write_all(a, "1", 1);
  run_to(sw, 60 * MS);
  write_all(a, "2", 1);
  run_to(sw, 120 * MS);
  write_all(a, "3", 1);
  run_to(sw, 200 * MS);
  cr_assert_eq(rx->chunks_len, 3, "%u chunks, the first at %" PRId64 " ns",
               rx->chunks_len, rx->chunks[0].at);
  cr_assert_arr_eq(rx->data, "123", 3);
  cr_assert_eq(rx->chunks[0].at, 20 * MS);
  cr_assert_eq(rx->chunks[1].at, 61 * MS);
  cr_assert_eq(rx->chunks[2].at, 150 * MS, "the configured window still holds");
  sim_world_destroy(sw);
  probe_free(rx);
}

Test(sim_pipe, overlapping_stalls_release_at_the_later_end) {
  /* Configured [10, 30 ms); manual [5, 15 ms) then [25, 40 ms). A byte due
   * at 6 ms is held by the first manual stall into the configured one, and
   * by that into the second manual stall. */
  sim_world_t *sw = world_new(1);
  sim_link_config_t link = {
      .latency = 1 * MS, .stall_at = 10 * MS, .stall_for = 20 * MS};
  rt_stream_t *a, *b;
  cr_assert_eq(sim_pipe_create(sw, &link, NULL, &a, &b), RT_OK);
  probe_t *rx = probe_spawn(sw, b, true);
  run_to(sw, 5 * MS);
  sim_stream_stall(b, 15 * MS);
  write_all(a, "a", 1);
  run_to(sw, 25 * MS);
  cr_assert_eq(rx->len, 0);
  sim_stream_stall(b, 40 * MS);
  write_all(a, "b", 1);
  run_to(sw, 40 * MS - 1);
  cr_assert_eq(rx->len, 0);
  run_to(sw, 40 * MS);
  cr_assert_eq(rx->chunks_len, 1);
  cr_assert_arr_eq(rx->data, "ab", 2);
  cr_assert_eq(rx->chunks[0].at, 40 * MS);
  sim_world_destroy(sw);
  probe_free(rx);
}

Test(sim_pipe, invalid_link_configs_are_rejected) {
  sim_world_t *sw = world_new(1);
  rt_stream_t *a = NULL, *b = NULL;
  sim_link_config_t bad[] = {
      {.latency = -1},
      {.jitter = -1},
      {.stall_at = -1, .stall_for = 1},
      {.stall_at = 1, .stall_for = -1},
      {.stall_at = RT_TIME_NEVER, .stall_for = 1}, /* end overflows */
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    cr_assert_eq(sim_pipe_create(sw, &bad[i], NULL, &a, &b), RT_EINVAL,
                 "config %zu", i);
    cr_assert_eq(sim_pipe_create(sw, NULL, &bad[i], &a, &b), RT_EINVAL,
                 "config %zu", i);
  }
  cr_assert_null(a);
  cr_assert_null(b);
  sim_world_destroy(sw);
}

/* ---- Resets -------------------------------------------------------------- */

Test(sim_pipe, reset_closes_both_ends_with_ereset) {
  sim_world_t *sw = world_new(1);
  sim_link_config_t link = {.latency = 10 * MS};
  rt_stream_t *a, *b;
  cr_assert_eq(sim_pipe_create(sw, &link, &link, &a, &b), RT_OK);
  probe_t *pa = probe_spawn(sw, a, false);
  probe_t *pb = probe_spawn(sw, b, false);

  write_all(a, "arrived", 7);
  run_to(sw, 20 * MS);
  cr_assert(probe_bits(pb) & RT_STREAM_READABLE);
  write_all(a, "in flight", 9);
  write_all(b, "other way", 9);
  run_to(sw, 25 * MS);

  sim_stream_reset(a);
  run_to(sw, 25 * MS);
  cr_assert(probe_bits(pa) & RT_STREAM_CLOSED);
  cr_assert(probe_bits(pb) & RT_STREAM_CLOSED);
  cr_assert_eq(pa->events[pa->events_len - 1].at, 25 * MS);
  cr_assert_eq(pb->events[pb->events_len - 1].at, 25 * MS);

  /* Arrived-but-unread and in-flight bytes are discarded alike. */
  uint8_t got[32];
  cr_assert_eq(rt_stream_read(b, got, sizeof(got)), RT_ERESET);
  cr_assert_eq(rt_stream_read(a, got, sizeof(got)), RT_ERESET);
  cr_assert_eq(rt_stream_write(a, "x", 1), RT_ERESET);
  cr_assert_eq(rt_stream_write(b, "x", 1), RT_ERESET);
  uint32_t before = pb->events_len;
  run_to(sw, 100 * MS);
  cr_assert_eq(pb->events_len, before, "nothing arrives after a reset");
  cr_assert_eq(rt_stream_read(b, got, sizeof(got)), RT_ERESET);

  rt_stream_close(a);
  rt_stream_close(b);
  sim_world_destroy(sw);
  probe_free(pa);
  probe_free(pb);
}

Test(sim_pipe, reset_after_cuts_a_write_at_exactly_that_many_bytes) {
  sim_world_t *sw = world_new(1);
  sim_link_config_t link = {.latency = 1 * MS, .reset_after = 10};
  rt_stream_t *a, *b;
  cr_assert_eq(sim_pipe_create(sw, &link, NULL, &a, &b), RT_OK);
  probe_t *pa = probe_spawn(sw, a, false);
  probe_t *pb = probe_spawn(sw, b, true);

  /* Below the limit: a normal write. */
  cr_assert_eq(rt_stream_write(a, "012345", 6), 6);
  run_to(sw, 5 * MS);
  cr_assert_eq(pb->len, 6);
  cr_assert_eq(probe_bits(pb) & RT_STREAM_CLOSED, 0);
  /* Across the limit: cut after byte 10, then the pipe resets. */
  cr_assert_eq(rt_stream_write(a, "6789abcdef", 10), 4);
  run_to(sw, 5 * MS);
  cr_assert(probe_bits(pa) & RT_STREAM_CLOSED);
  cr_assert(probe_bits(pb) & RT_STREAM_CLOSED);
  cr_assert_eq(pb->end, RT_ERESET);
  cr_assert_eq(pb->len, 6, "the cut bytes never arrive");
  cr_assert_eq(rt_stream_write(a, "x", 1), RT_ERESET);
  cr_assert_eq(rt_stream_backlog(a), 0);
  sim_world_destroy(sw);
  probe_free(pa);
  probe_free(pb);
}

Test(sim_pipe, reset_after_at_the_limit_takes_the_whole_write_then_resets) {
  sim_world_t *sw = world_new(1);
  sim_link_config_t link = {.reset_after = 10};
  rt_stream_t *a, *b;
  cr_assert_eq(sim_pipe_create(sw, &link, NULL, &a, &b), RT_OK);
  cr_assert_eq(rt_stream_write(a, "012345678", 9), 9, "below: no reset");
  uint8_t got[16];
  run_to(sw, 1 * MS);
  cr_assert_eq(rt_stream_read(b, got, sizeof(got)), 9);
  cr_assert_eq(rt_stream_write(a, "9", 1), 1, "at: the 10th byte is taken");
  cr_assert_eq(rt_stream_read(b, got, sizeof(got)), RT_ERESET);
  cr_assert_eq(rt_stream_write(a, "x", 1), RT_ERESET, "above: reset");
  sim_world_destroy(sw);
}

Test(sim_pipe, reset_after_in_one_large_write) {
  sim_world_t *sw = world_new(1);
  sim_link_config_t link = {.reset_after = 1000};
  rt_stream_t *a, *b;
  cr_assert_eq(sim_pipe_create(sw, &link, NULL, &a, &b), RT_OK);
  uint8_t buf[4000];
  memset(buf, 7, sizeof(buf));
  cr_assert_eq(rt_stream_write(a, buf, sizeof(buf)), 1000);
  cr_assert_eq(rt_stream_write(b, buf, 1), RT_ERESET);
  sim_world_destroy(sw);
}

/* ---- EOF ----------------------------------------------------------------- */

Test(sim_pipe, close_gives_the_peer_its_bytes_then_eof) {
  sim_world_t *sw = world_new(1);
  sim_link_config_t link = {.latency = 5 * MS};
  rt_stream_t *a, *b;
  cr_assert_eq(sim_pipe_create(sw, &link, &link, &a, &b), RT_OK);
  probe_t *pb = probe_spawn(sw, b, true);

  write_all(a, "last words", 10);
  rt_stream_close(a);
  cr_assert_eq(rt_stream_write(b, "x", 1), RT_EPIPE, "the reader is gone");
  run_to(sw, 5 * MS - 1);
  cr_assert_eq(pb->len, 0);
  cr_assert_eq(pb->end, 0, "no EOF before the bytes");
  run_to(sw, 5 * MS);
  cr_assert_eq(pb->len, 10);
  cr_assert_arr_eq(pb->data, "last words", 10);
  cr_assert_eq(pb->end, RT_EOF);
  cr_assert_eq(pb->end_at, 5 * MS);
  cr_assert(probe_bits(pb) & RT_STREAM_CLOSED);
  uint8_t got[4];
  cr_assert_eq(rt_stream_read(b, got, sizeof(got)), RT_EOF, "EOF stays");
  cr_assert_eq(rt_stream_write(b, "x", 1), RT_EPIPE);
  sim_world_destroy(sw);
  probe_free(pb);
}

Test(sim_pipe, shutdown_is_a_half_close) {
  sim_world_t *sw = world_new(1);
  sim_link_config_t link = {.latency = 2 * MS};
  rt_stream_t *a, *b;
  cr_assert_eq(sim_pipe_create(sw, &link, &link, &a, &b), RT_OK);
  probe_t *pa = probe_spawn(sw, a, true);
  probe_t *pb = probe_spawn(sw, b, true);

  write_all(a, "request", 7);
  rt_stream_shutdown(a);
  cr_assert_eq(rt_stream_write(a, "x", 1), RT_EPIPE, "a finished writing");
  run_to(sw, 10 * MS);
  cr_assert_eq(pb->len, 7);
  cr_assert_eq(pb->end, RT_EOF);
  /* b may still answer: a reads the reply. */
  write_all(b, "reply", 5);
  run_to(sw, 20 * MS);
  cr_assert_eq(pa->len, 5);
  cr_assert_arr_eq(pa->data, "reply", 5);
  cr_assert_eq(pa->end, 0);
  rt_stream_close(b);
  run_to(sw, 30 * MS);
  cr_assert_eq(pa->end, RT_EOF);
  cr_assert_eq(pa->end_at, 22 * MS);
  sim_world_destroy(sw);
  probe_free(pa);
  probe_free(pb);
}

Test(sim_pipe, eof_follows_bytes_still_crossing_a_slow_link) {
  /* EOF queues behind the data: it cannot overtake bytes on the link. */
  sim_world_t *sw = world_new(1);
  sim_link_config_t link = {.latency = 1 * MS, .bandwidth = 1000000};
  rt_stream_t *a, *b;
  cr_assert_eq(sim_pipe_create(sw, &link, NULL, &a, &b), RT_OK);
  probe_t *pb = probe_spawn(sw, b, true);
  uint8_t buf[5000];
  for (uint32_t i = 0; i < sizeof(buf); i++)
    buf[i] = (uint8_t)(i % 253);
  write_all(a, buf, sizeof(buf));
  rt_stream_close(a);
  run_to(sw, 100 * MS);
  cr_assert_eq(pb->len, sizeof(buf));
  cr_assert_arr_eq(pb->data, buf, sizeof(buf));
  cr_assert_eq(pb->end, RT_EOF);
  cr_assert_eq(pb->end_at, 5 * MS + 1 * MS);
  sim_world_destroy(sw);
  probe_free(pb);
}

/* ---- Jitter -------------------------------------------------------------- */

enum { JITTER_BYTES = 2000, JITTER_WRITES = 200 };

/* Write JITTER_BYTES numbered bytes in JITTER_WRITES writes 50 us apart
 * over a link with 5 ms of jitter and 4-byte segments; return the reader
 * probe. */
static probe_t *run_jittered(sim_world_t *sw) {
  sim_link_config_t link = {
      .latency = 1 * MS, .jitter = 5 * MS, .mss = 4, .bandwidth = 10000000};
  rt_stream_t *a, *b;
  cr_assert_eq(sim_pipe_create(sw, &link, NULL, &a, &b), RT_OK);
  probe_t *rx = probe_spawn(sw, b, true);
  uint32_t per = JITTER_BYTES / JITTER_WRITES;
  uint8_t buf[JITTER_BYTES];
  for (uint32_t i = 0; i < JITTER_BYTES; i++)
    buf[i] = (uint8_t)(i % 256);
  for (uint32_t k = 0; k < JITTER_WRITES; k++) {
    run_to(sw, (rt_time_ns)k * 50 * US);
    write_all(a, buf + k * per, per);
  }
  run_to(sw, RT_NS_PER_S);
  return rx;
}

Test(sim_pipe, jitter_never_reorders_bytes) {
  sim_world_t *sw = world_new(42);
  probe_t *rx = run_jittered(sw);
  cr_assert_eq(rx->len, JITTER_BYTES);
  for (uint32_t i = 0; i < JITTER_BYTES; i++)
    cr_assert_eq(rx->data[i], (uint8_t)(i % 256), "byte %u out of order", i);
  /* Arrival times never go back, and jitter did delay some of them: the
   * last write leaves at 9.95 ms + 0.4 us and would arrive 1 ms later. */
  for (uint32_t i = 1; i < rx->chunks_len; i++)
    cr_assert_geq(rx->chunks[i].at, rx->chunks[i - 1].at);
  rt_time_ns last_sent = 9950 * US + 1000; /* 10 bytes at 10 MB/s */
  cr_assert_gt(rx->chunks[rx->chunks_len - 1].at, last_sent + 1 * MS);
  cr_assert_leq(rx->chunks[rx->chunks_len - 1].at, last_sent + 1 * MS + 5 * MS);
  sim_world_destroy(sw);
  probe_free(rx);
}

Test(sim_pipe, the_same_seed_gives_the_same_arrival_times) {
  sim_world_t *sw1 = world_new(7);
  probe_t *r1 = run_jittered(sw1);
  sim_world_t *sw2 = world_new(7);
  probe_t *r2 = run_jittered(sw2);
  sim_world_t *sw3 = world_new(8);
  probe_t *r3 = run_jittered(sw3);

  cr_assert_gt(r1->chunks_len, 1);
  cr_assert_eq(r1->chunks_len, r2->chunks_len);
  for (uint32_t i = 0; i < r1->chunks_len; i++) {
    cr_assert_eq(r1->chunks[i].at, r2->chunks[i].at, "chunk %u", i);
    cr_assert_eq(r1->chunks[i].end, r2->chunks[i].end, "chunk %u", i);
  }
  cr_assert_eq(rt_world_hash(sim_world_rt(sw1)),
               rt_world_hash(sim_world_rt(sw2)));

  /* Another seed draws other jitter (a fixed pair of seeds: deterministic). */
  bool differ = r1->chunks_len != r3->chunks_len;
  for (uint32_t i = 0; !differ && i < r1->chunks_len; i++)
    differ = r1->chunks[i].at != r3->chunks[i].at;
  cr_assert(differ, "seeds 7 and 8 gave identical arrival times");

  sim_world_destroy(sw1);
  sim_world_destroy(sw2);
  sim_world_destroy(sw3);
  probe_free(r1);
  probe_free(r2);
  probe_free(r3);
}

/* ---- Listen and connect -------------------------------------------------- */

Test(sim_pipe, connect_is_accepted_and_bytes_flow_both_ways) {
  sim_world_t *sw = world_new(1);
  rt_world_t *w = sim_world_rt(sw);
  probe_t *lp = probe_spawn(sw, NULL, false);
  rt_listener_t *l;
  cr_assert_eq(sim_listen(sw, 80, lp->id, &l), RT_OK);
  lp->listener = l;
  rt_listener_t *again = NULL;
  cr_assert_eq(sim_listen(sw, 80, lp->id, &again), RT_EADDR, "port in use");
  cr_assert_null(again);

  probe_t *cp = probe_spawn(sw, NULL, true);
  sim_link_config_t up = {.latency = 2 * MS};
  sim_link_config_t down = {.latency = 3 * MS};
  rt_stream_t *c;
  cr_assert_eq(sim_connect(sw, 80, cp->id, &up, &down, &c), RT_OK);
  cp->stream = c;
  cr_assert_eq(c->owner, cp->id);
  write_all(c, "GET /", 5); /* before the server accepted */

  run_to(sw, 1 * MS);
  cr_assert_eq(lp->accepts, 1);
  cr_assert_eq(lp->accepted_len, 1);
  rt_stream_t *s = lp->accepted[0];
  cr_assert(sim_stream_is_sim(s));
  cr_assert_eq(s->owner, 0, "accepted streams start with no owner");
  probe_t *sp = probe_spawn(sw, s, true);

  run_to(sw, 2 * MS);
  cr_assert_eq(sp->len, 5);
  cr_assert_arr_eq(sp->data, "GET /", 5);
  write_all(s, "200 OK", 6);
  run_to(sw, 5 * MS - 1);
  cr_assert_eq(cp->len, 0);
  run_to(sw, 5 * MS);
  cr_assert_eq(cp->len, 6);
  cr_assert_arr_eq(cp->data, "200 OK", 6);
  cr_assert_eq(rt_now(w), 5 * MS);

  /* Connecting where nobody listens is refused; nothing is created. */
  rt_stream_t *none = NULL;
  cr_assert_eq(sim_connect(sw, 81, cp->id, NULL, NULL, &none), RT_ECONNREFUSED);
  cr_assert_null(none);
  rt_listener_close(l);
  cr_assert_eq(sim_connect(sw, 80, cp->id, NULL, NULL, &none), RT_ECONNREFUSED,
               "a closed listener refuses");

  rt_stream_close(c);
  rt_stream_close(s);
  sim_world_destroy(sw);
  probe_free(lp);
  probe_free(cp);
  probe_free(sp);
}

Test(sim_pipe, several_pending_connections_are_accepted_in_order) {
  sim_world_t *sw = world_new(1);
  probe_t *lp = probe_spawn(sw, NULL, false);
  rt_listener_t *l;
  cr_assert_eq(sim_listen(sw, 9000, lp->id, &l), RT_OK);
  lp->listener = l;
  rt_stream_t *c[3];
  for (int i = 0; i < 3; i++) {
    cr_assert_eq(sim_connect(sw, 9000, lp->id, NULL, NULL, &c[i]), RT_OK);
    uint8_t tag = (uint8_t)('0' + i);
    write_all(c[i], &tag, 1);
  }
  run_to(sw, 1 * MS);
  cr_assert_eq(lp->accepts, 1, "notifications coalesce");
  cr_assert_eq(lp->accepted_len, 3);
  for (int i = 0; i < 3; i++) {
    uint8_t got = 0;
    cr_assert_eq(rt_stream_read(lp->accepted[i], &got, 1), 1);
    cr_assert_eq(got, '0' + i);
  }
  sim_world_destroy(sw);
  probe_free(lp);
}

Test(sim_pipe, bytes_that_arrive_before_accept_are_signalled_to_the_new_owner) {
  sim_world_t *sw = world_new(1);
  probe_t *lp = probe_spawn(sw, NULL, false);
  rt_listener_t *l;
  cr_assert_eq(sim_listen(sw, 443, lp->id, &l), RT_OK);
  lp->listener = l;
  rt_stream_t *c;
  cr_assert_eq(sim_connect(sw, 443, lp->id, NULL, NULL, &c), RT_OK);
  write_all(c, "early", 5);
  run_to(sw, 1 * MS); /* arrived at 0 ms, at an end nobody owns */
  cr_assert_eq(lp->accepted_len, 1);
  cr_assert_eq(lp->events_len, 0, "the listener's owner is not the end's");
  probe_t *sp = probe_spawn(sw, lp->accepted[0], true);
  run_to(sw, 2 * MS);
  cr_assert_eq(sp->events_len, 1);
  cr_assert_eq(sp->events[0].at, 1 * MS, "signalled when it got an owner");
  cr_assert_eq(sp->len, 5);
  cr_assert_arr_eq(sp->data, "early", 5);
  sim_world_destroy(sw);
  probe_free(lp);
  probe_free(sp);
}

Test(sim_pipe, connect_is_refused_when_the_accept_backlog_is_full) {
  sim_world_t *sw = world_new(1);
  probe_t *lp = probe_spawn(sw, NULL, false);
  rt_listener_t *l;
  cr_assert_eq(sim_listen(sw, 7, lp->id, &l), RT_OK);
  rt_stream_t *c = NULL;
  /* Below and at the backlog: queued. */
  for (uint32_t i = 0; i < SIM_ACCEPT_BACKLOG_DEFAULT; i++)
    cr_assert_eq(sim_connect(sw, 7, lp->id, NULL, NULL, &c), RT_OK, "%u", i);
  /* Above it: refused, until one is accepted. */
  cr_assert_eq(sim_connect(sw, 7, lp->id, NULL, NULL, &c), RT_ECONNREFUSED);
  rt_stream_t *s = NULL;
  cr_assert_eq(rt_listener_accept(l, &s), 1);
  cr_assert_eq(sim_connect(sw, 7, lp->id, NULL, NULL, &c), RT_OK);
  cr_assert_eq(sim_connect(sw, 7, lp->id, NULL, NULL, &c), RT_ECONNREFUSED);
  rt_stream_close(s);
  sim_world_destroy(sw);
  probe_free(lp);
}

Test(sim_pipe, world_destroy_frees_connections_never_accepted) {
  /* Pending server ends belong to the listener until accepted; tearing the
   * world down must free them once (run under ASan to see it). */
  sim_world_t *sw = world_new(1);
  probe_t *lp = probe_spawn(sw, NULL, false);
  rt_listener_t *l;
  cr_assert_eq(sim_listen(sw, 80, lp->id, &l), RT_OK);
  rt_stream_t *c;
  cr_assert_eq(sim_connect(sw, 80, lp->id, NULL, NULL, &c), RT_OK);
  write_all(c, "hi", 2);
  sim_world_destroy(sw); /* the listener, its pending end and c */
  probe_free(lp);
}

Test(sim_pipe, closing_both_ends_while_bytes_are_in_flight) {
  sim_world_t *sw = world_new(1);
  sim_link_config_t link = {.latency = 10 * MS};
  rt_stream_t *a, *b;
  cr_assert_eq(sim_pipe_create(sw, &link, &link, &a, &b), RT_OK);
  write_all(a, "lost", 4);
  write_all(b, "lost", 4);
  rt_stream_close(a);
  rt_stream_close(b); /* frees the pipe; its arrival timers must go too */
  run_to(sw, 100 * MS);
  rt_world_stats_t st;
  rt_world_stats(sim_world_rt(sw), &st);
  cr_assert_eq(st.timers_live, 0);
  sim_world_destroy(sw);
}

/* ---- Connecting through the seam (rt_stream_connect) ----------------------
 * The simulated world's rt_backend_t.connect (sim_connect_async with
 * default links), driven by an actor in its turn (tests/lib/dialer.h), as
 * the Cluster actor will reach a simulated Redis. */

#define DIAL_PORT 6379
#define DIAL_BYTES 5000u

/* Run a dialer to its end (the world goes idle) and return it stopped. */
static void run_dialer(sim_world_t *sw, dialer_t *d) {
  rt_actor_id_t id;
  dialer_spawn(sim_world_rt(sw), d, &id);
  cr_assert_eq(sim_world_run(sw, RT_TIME_NEVER, 1000000), SIM_RUN_IDLE);
  cr_assert(d->stopped, "events %#x sent %u received %u", d->events, d->sent,
            d->received);
  cr_assert(d->dialed);
}

/* An echo server on DIAL_PORT. */
static void echo_listen(sim_world_t *sw) {
  rt_listener_t *l;
  cr_assert_eq(sim_listen(sw, DIAL_PORT, 0, &l), RT_OK);
  rt_actor_id_t acceptor;
  cr_assert_eq(net_echo_spawn_acceptor(sim_world_rt(sw), l, &acceptor), RT_OK);
}

Test(sim_pipe, an_actor_connects_through_the_seam_and_gets_its_bytes_echoed) {
  sim_world_t *sw = world_new(1);
  echo_listen(sw);
  dialer_t d = {.host = "127.0.0.1", .port = DIAL_PORT, .send_len = DIAL_BYTES};
  run_dialer(sw, &d);
  cr_assert_eq(d.connect_rc, RT_OK);
  cr_assert(d.events & RT_STREAM_CONNECTED, "events %#x", d.events);
  cr_assert_eq(d.events & RT_STREAM_CLOSED, 0, "events %#x", d.events);
  cr_assert_eq(d.end, 0, "the stream ended: %s", rt_err_name((int)d.end));
  cr_assert_eq(d.received, DIAL_BYTES);
  sim_world_destroy(sw);
}

Test(sim_pipe, any_numeric_host_reaches_the_port_and_a_name_is_einval) {
  /* The simulated network is one host: the port names the listener. */
  static const char *const hosts[] = {"10.1.2.3", "::1", "2001:db8::7"};
  for (size_t i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++) {
    sim_world_t *sw = world_new(1);
    echo_listen(sw);
    dialer_t d = {.host = hosts[i], .port = DIAL_PORT, .send_len = 10};
    run_dialer(sw, &d);
    cr_assert_eq(d.received, 10, "%s", hosts[i]);
    sim_world_destroy(sw);
  }
  static const char *const bad[] = {"localhost", "", "redis:6379", "300.1.1.1"};
  sim_world_t *sw = world_new(1);
  echo_listen(sw);
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    rt_stream_t *s = (rt_stream_t *)&s; /* not NULL: it must be cleared */
    cr_assert_eq(rt_stream_connect(sim_world_rt(sw), bad[i], DIAL_PORT, 0, &s),
                 RT_EINVAL, "\"%s\"", bad[i]);
    cr_assert_null(s);
  }
  rt_world_stats_t st;
  rt_world_stats(sim_world_rt(sw), &st);
  cr_assert_eq(st.timers_live, 0, "nothing was started");
  sim_world_destroy(sw);
}

Test(sim_pipe, a_connect_through_the_seam_to_no_listener_is_refused_late) {
  sim_world_t *sw = world_new(1);
  echo_listen(sw); /* on another port */
  dialer_t d = {.host = "127.0.0.1", .port = DIAL_PORT + 1, .send_len = 10};
  run_dialer(sw, &d);
  cr_assert_eq(d.connect_rc, RT_OK, "the failure is reported on the stream");
  cr_assert_eq(d.signals, 1);
  cr_assert_eq(d.events, RT_STREAM_CLOSED, "events %#x", d.events);
  cr_assert_eq(d.end, RT_ECONNREFUSED, "read gave %s", rt_err_name((int)d.end));
  cr_assert_eq(d.end_write, RT_ECONNREFUSED, "write gave %s",
               rt_err_name((int)d.end_write));
  sim_world_destroy(sw);
}

Test(sim_pipe, sim_connect_async_says_connected_after_a_round_trip) {
  sim_world_t *sw = world_new(1);
  probe_t *lp = probe_spawn(sw, NULL, false);
  rt_listener_t *l;
  cr_assert_eq(sim_listen(sw, 80, lp->id, &l), RT_OK);
  lp->listener = l;
  probe_t *cp = probe_spawn(sw, NULL, false);
  sim_link_config_t up = {.latency = 3 * MS}, down = {.latency = 4 * MS};
  rt_stream_t *c = NULL;
  cr_assert_eq(sim_connect_async(sw, 80, cp->id, &up, &down, &c), RT_OK);
  cp->stream = c;
  cr_assert_eq(c->owner, cp->id);
  uint8_t buf[8];
  cr_assert_eq(rt_stream_read(c, buf, sizeof(buf)), 0, "still connecting");
  cr_assert_eq(rt_stream_write(c, "x", 1), 0, "WRITABLE comes with CONNECTED");

  run_to(sw, 7 * MS - 1);
  cr_assert_eq(lp->accepted_len, 1, "the server end waits at the listener");
  cr_assert_eq(cp->events_len, 0);
  run_to(sw, 7 * MS);
  cr_assert_eq(cp->events_len, 1);
  cr_assert_eq(cp->events[0].events, RT_STREAM_CONNECTED | RT_STREAM_WRITABLE);
  cr_assert_eq(cp->events[0].at, 7 * MS);
  write_all(c, "PING", 4);
  rt_stream_close(c);
  rt_stream_close(lp->accepted[0]);
  sim_world_destroy(sw);
  probe_free(lp);
  probe_free(cp);
}

Test(sim_pipe, sim_connect_async_to_no_listener_is_refused_after_a_round_trip) {
  sim_world_t *sw = world_new(1);
  probe_t *cp = probe_spawn(sw, NULL, false);
  sim_link_config_t up = {.latency = 2 * MS}, down = {.latency = 5 * MS};
  rt_stream_t *c = NULL;
  cr_assert_eq(sim_connect_async(sw, 81, cp->id, &up, &down, &c), RT_OK);
  cp->stream = c;
  uint8_t buf[8];
  cr_assert_eq(rt_stream_read(c, buf, sizeof(buf)), 0, "not refused yet");
  run_to(sw, 7 * MS - 1);
  cr_assert_eq(cp->events_len, 0);
  run_to(sw, 7 * MS);
  cr_assert_eq(cp->events_len, 1);
  cr_assert_eq(cp->events[0].events, RT_STREAM_CLOSED);
  cr_assert_eq(rt_stream_read(c, buf, sizeof(buf)), RT_ECONNREFUSED);
  cr_assert_eq(rt_stream_write(c, "x", 1), RT_ECONNREFUSED);
  rt_stream_close(c); /* frees the pipe: nobody holds its other end */
  rt_world_stats_t st;
  rt_world_stats(sim_world_rt(sw), &st);
  cr_assert_eq(st.timers_live, 0);
  sim_world_destroy(sw);
  probe_free(cp);
}

Test(sim_pipe, closing_a_connecting_stream_ends_its_connect) {
  /* Closed during the round trip: no timer is left to fire on it (ASan
   * would see the freed end), refused or not. */
  for (int refused = 0; refused < 2; refused++) {
    sim_world_t *sw = world_new(1);
    probe_t *lp = probe_spawn(sw, NULL, false);
    rt_listener_t *l;
    cr_assert_eq(sim_listen(sw, 80, lp->id, &l), RT_OK);
    lp->listener = l;
    sim_link_config_t link = {.latency = 5 * MS};
    rt_stream_t *c = NULL;
    cr_assert_eq(
        sim_connect_async(sw, refused ? 81 : 80, lp->id, &link, &link, &c),
        RT_OK);
    run_to(sw, 1 * MS);
    rt_stream_close(c); /* the server end, if any, is still open */
    rt_world_stats_t st;
    rt_world_stats(sim_world_rt(sw), &st);
    /* Left: only the EOF on its way to the server end, when there is one. */
    cr_assert_eq(st.timers_live, refused ? 0 : 1, "refused=%d", refused);
    for (uint32_t i = 0; i < lp->accepted_len; i++)
      rt_stream_close(lp->accepted[i]);
    run_to(sw, 20 * MS);
    sim_world_destroy(sw);
    probe_free(lp);
  }
}

Test(sim_pipe, a_reset_while_connecting_is_closed_with_ereset_never_connected) {
  sim_world_t *sw = world_new(1);
  probe_t *lp = probe_spawn(sw, NULL, false);
  rt_listener_t *l;
  cr_assert_eq(sim_listen(sw, 80, lp->id, &l), RT_OK);
  lp->listener = l;
  probe_t *cp = probe_spawn(sw, NULL, false);
  sim_link_config_t link = {.latency = 5 * MS};
  rt_stream_t *c = NULL;
  cr_assert_eq(sim_connect_async(sw, 80, cp->id, &link, &link, &c), RT_OK);
  cp->stream = c;
  run_to(sw, 1 * MS);
  cr_assert_eq(lp->accepted_len, 1);
  sim_stream_reset(lp->accepted[0]);
  run_to(sw, 20 * MS);
  cr_assert_eq(probe_bits(cp), RT_STREAM_CLOSED, "bits %#x", probe_bits(cp));
  uint8_t buf[8];
  cr_assert_eq(rt_stream_read(c, buf, sizeof(buf)), RT_ERESET);
  rt_stream_close(c);
  rt_stream_close(lp->accepted[0]);
  sim_world_destroy(sw);
  probe_free(lp);
  probe_free(cp);
}

Test(sim_pipe, world_destroy_frees_a_stream_still_connecting) {
  sim_world_t *sw = world_new(1);
  sim_link_config_t link = {.latency = 5 * MS};
  rt_stream_t *c = NULL;
  cr_assert_eq(sim_connect_async(sw, 81, 0, &link, &link, &c), RT_OK);
  sim_world_destroy(sw); /* its pipe, and the connect's timer (ASan) */
}
