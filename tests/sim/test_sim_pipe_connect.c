/* test_sim_pipe_connect.c: what an actor's rt_stream_connect gets in the
 * simulated world (sim/sim_world.h): the links the world's connect-links
 * hook picks for it, and the partitions (sim_world_partition) that hold a
 * group's connections to a port.
 *
 * Each test builds a small simulated world with a listener and connects
 * through rt_stream_connect (from test code with a probe as the owner, or
 * from an actor's turn with tests/lib/dialer.h), then checks what the
 * probes saw and when. A probe records every RT_TAG_STREAM signal (world
 * time and bits) and, when asked, reads everything available, recording
 * each chunk's end offset and time. The times follow the model of
 * sim_pipe.h: a connect says CONNECTED after up's latency plus down's;
 * a write at t arrives latency (plus a jitter draw) after t; a partition
 * moves both to its end when they fall inside it, and no earlier.
 *
 * Every test fixes its seed (world_new's argument), so a failure replays
 * exactly with:
 *   build/bin/test_sim_pipe_connect --filter 'sim_pipe_connect/<test name>'.
 */
#include "dialer.h"
#include "net_echo.h"
#include "rt_stream.h"
#include "rt_world.h"
#include "sim_pipe.h"
#include "sim_world.h"

#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define MS RT_NS_PER_MS

#define PROBE_EVENTS_MAX 64u
#define PROBE_CHUNKS_MAX 256u
#define PROBE_READS_PER_TURN 256u /* bounds one turn's read loop */
#define PROBE_ACCEPTED_MAX 4u
#define PROBE_DATA_MAX (256u * 1024)

#define HOST "127.0.0.1"
#define PORT 6379

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
  if (msg->tag == RT_TAG_ACCEPT) {
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
  rt_stream_event_t ev;
  RT_MSG_GET(msg, rt_stream_event_t, &ev);
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

/* The time of the first signal carrying `bit`; -1: none came. */
static rt_time_ns probe_first(const probe_t *p, uint32_t bit) {
  for (uint32_t i = 0; i < p->events_len; i++)
    if (p->events[i].events & bit)
      return p->events[i].at;
  return -1;
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

/* Run everything due up to `t` and leave the clock at exactly `t`. */
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

static size_t timers_live(sim_world_t *sw) {
  rt_world_stats_t st;
  rt_world_stats(sim_world_rt(sw), &st);
  return (size_t)st.timers_live;
}

/* ---- A scripted hook ----------------------------------------------------- */

#define HOOK_CALLS_MAX 8u

typedef struct hook_call {
  rt_actor_id_t owner;
  uint16_t port;
} hook_call_t;

/* Gives every connect to `port` the links up, down and group `group`, and
 * leaves connects elsewhere at their defaults; records every call. */
typedef struct hook {
  uint16_t port;
  sim_link_config_t up, down;
  uint32_t group;
  hook_call_t calls[HOOK_CALLS_MAX];
  uint32_t calls_len;
} hook_t;

static void hook_links(void *ctx, rt_actor_id_t owner, uint16_t port,
                       sim_link_config_t *up, sim_link_config_t *down,
                       uint32_t *group) {
  hook_t *h = ctx;
  static const sim_link_config_t zero = {0};
  cr_assert_eq(memcmp(up, &zero, sizeof(zero)), 0, "up starts zeroed");
  cr_assert_eq(memcmp(down, &zero, sizeof(zero)), 0, "down starts zeroed");
  cr_assert_eq(*group, 0, "group starts 0");
  cr_assert_lt(h->calls_len, HOOK_CALLS_MAX);
  h->calls[h->calls_len++] = (hook_call_t){.owner = owner, .port = port};
  if (port != h->port)
    return;
  *up = h->up;
  *down = h->down;
  *group = h->group;
}

/* A listener on `port` whose probe keeps what it accepts. */
static probe_t *listen_probe(sim_world_t *sw, uint16_t port) {
  probe_t *lp = probe_spawn(sw, NULL, false);
  rt_listener_t *l;
  cr_assert_eq(sim_listen(sw, port, lp->id, &l), RT_OK);
  lp->listener = l;
  return lp;
}

/* rt_stream_connect to `port` on behalf of a new auto-reading probe. */
static probe_t *connect_probe(sim_world_t *sw, uint16_t port) {
  probe_t *cp = probe_spawn(sw, NULL, true);
  rt_stream_t *c = NULL;
  cr_assert_eq(rt_stream_connect(sim_world_rt(sw), HOST, port, cp->id, &c),
               RT_OK);
  cr_assert_not_null(c);
  cr_assert_eq(c->owner, cp->id);
  cp->stream = c;
  return cp;
}

/* ---- The hook ------------------------------------------------------------ */

Test(sim_pipe_connect,
     the_hook_is_told_who_connects_where_and_its_links_apply) {
  sim_world_t *sw = world_new(1);
  hook_t h = {.port = PORT,
              .up = {.latency = 3 * MS},
              .down = {.latency = 4 * MS},
              .group = 7};
  sim_world_set_connect_links(sw, hook_links, &h);
  probe_t *lp = listen_probe(sw, PORT);
  probe_t *cp = connect_probe(sw, PORT);
  cr_assert_eq(h.calls_len, 1, "once per connect");
  cr_assert_eq(h.calls[0].owner, cp->id);
  cr_assert_eq(h.calls[0].port, PORT);

  run_to(sw, 7 * MS - 1);
  cr_assert_eq(cp->events_len, 0, "a round trip is up plus down");
  run_to(sw, 7 * MS);
  cr_assert_eq(probe_first(cp, RT_STREAM_CONNECTED), 7 * MS);
  cr_assert_eq(lp->accepted_len, 1);
  probe_t *sp = probe_spawn(sw, lp->accepted[0], true);

  write_all(cp->stream, "PING", 4); /* up: 3 ms */
  run_to(sw, 10 * MS - 1);
  cr_assert_eq(sp->len, 0);
  run_to(sw, 10 * MS);
  cr_assert_eq(sp->len, 4);
  cr_assert_eq(sp->chunks[0].at, 10 * MS);

  write_all(sp->stream, "PONG", 4); /* down: 4 ms */
  run_to(sw, 14 * MS - 1);
  cr_assert_eq(cp->len, 0);
  run_to(sw, 14 * MS);
  cr_assert_eq(cp->len, 4);
  cr_assert_eq(memcmp(cp->data, "PONG", 4), 0);

  rt_stream_close(cp->stream);
  rt_stream_close(sp->stream);
  sim_world_destroy(sw);
  probe_free(lp);
  probe_free(cp);
  probe_free(sp);
}

typedef struct stop_clock {
  sim_world_t *sw;
  rt_time_ns at;
} stop_clock_t;

static void on_dialer_done(void *ctx) {
  stop_clock_t *sc = ctx;
  sc->at = rt_now(sim_world_rt(sc->sw));
}

Test(sim_pipe_connect, the_hook_sees_an_actor_that_connects_in_its_turn) {
  sim_world_t *sw = world_new(1);
  hook_t h = {.port = PORT, .up = {.latency = 2 * MS}, .down = {.latency = MS}};
  sim_world_set_connect_links(sw, hook_links, &h);
  rt_listener_t *l;
  cr_assert_eq(sim_listen(sw, PORT, 0, &l), RT_OK);
  rt_actor_id_t acceptor;
  cr_assert_eq(net_echo_spawn_acceptor(sim_world_rt(sw), l, &acceptor), RT_OK);
  stop_clock_t stopped = {.sw = sw, .at = -1};
  dialer_t d = {.host = HOST,
                .port = PORT,
                .send_len = 5000,
                .done = on_dialer_done,
                .done_ctx = &stopped};
  rt_actor_id_t id;
  dialer_spawn(sim_world_rt(sw), &d, &id);
  cr_assert_eq(sim_world_run(sw, RT_TIME_NEVER, 1000000), SIM_RUN_IDLE);
  cr_assert(d.stopped);
  cr_assert_eq(d.connect_rc, RT_OK);
  cr_assert_eq(d.received, 5000);
  cr_assert_eq(h.calls_len, 1);
  cr_assert_eq(h.calls[0].owner, id, "the connecting actor, not the test");
  cr_assert_eq(h.calls[0].port, PORT);
  /* CONNECTED at 3 ms, then 5000 bytes there and back (one write each
   * way, arriving together: no bandwidth limit): 3 ms more. */
  cr_assert_eq(stopped.at, 6 * MS, "stopped at %" PRId64, stopped.at);
  sim_world_destroy(sw);
}

/* Arrival times at the server of JITTER_SEGMENTS one-byte writes made
 * 1 ms apart over an up link of 1 ms latency and 5 ms jitter. */
#define JITTER_SEGMENTS 16u
static void jitter_run(uint64_t seed, rt_time_ns out[JITTER_SEGMENTS]) {
  sim_world_t *sw = world_new(seed);
  hook_t h = {.port = PORT, .up = {.latency = MS, .jitter = 5 * MS}};
  sim_world_set_connect_links(sw, hook_links, &h);
  probe_t *lp = listen_probe(sw, PORT);
  probe_t *cp = connect_probe(sw, PORT);
  run_to(sw, MS);
  cr_assert_eq(probe_first(cp, RT_STREAM_CONNECTED), MS, "jitter aside");
  probe_t *sp = probe_spawn(sw, lp->accepted[0], true);
  for (uint32_t i = 0; i < JITTER_SEGMENTS; i++) {
    write_all(cp->stream, "j", 1);
    run_to(sw, (2 + (rt_time_ns)i) * MS);
  }
  run_to(sw, 40 * MS);
  cr_assert_eq(sp->len, JITTER_SEGMENTS);
  /* A chunk may hold several bytes: byte k arrived with the chunk that
   * first covered it. */
  uint32_t chunk = 0;
  for (uint32_t k = 0; k < JITTER_SEGMENTS; k++) {
    while (sp->chunks[chunk].end <= k)
      chunk++;
    out[k] = sp->chunks[chunk].at;
    rt_time_ns sent = (1 + (rt_time_ns)k) * MS;
    cr_assert_geq(out[k], sent + MS, "seed %" PRIu64 " byte %u", seed, k);
    if (k > 0)
      cr_assert_geq(out[k], out[k - 1], "no overtaking");
  }
  rt_stream_close(cp->stream);
  rt_stream_close(sp->stream);
  sim_world_destroy(sw);
  probe_free(lp);
  probe_free(cp);
  probe_free(sp);
}

Test(sim_pipe_connect, the_hooks_jitter_is_the_same_for_the_same_seed) {
  rt_time_ns a[JITTER_SEGMENTS], b[JITTER_SEGMENTS], c[JITTER_SEGMENTS];
  jitter_run(11, a);
  jitter_run(11, b);
  jitter_run(12, c);
  cr_assert_eq(memcmp(a, b, sizeof(a)), 0, "seed 11 twice");
  cr_assert_neq(memcmp(a, c, sizeof(a)), 0, "seeds 11 and 12 drew the same");
}

Test(sim_pipe_connect, without_a_hook_a_connect_is_instant_as_before) {
  sim_world_t *sw = world_new(1);
  hook_t h = {.port = PORT, .up = {.latency = 3 * MS}};
  sim_world_set_connect_links(sw, hook_links, &h);
  sim_world_set_connect_links(sw, NULL, &h); /* back to the defaults */
  probe_t *lp = listen_probe(sw, PORT);
  probe_t *cp = connect_probe(sw, PORT);
  run_to(sw, 0);
  cr_assert_eq(h.calls_len, 0);
  cr_assert_eq(probe_first(cp, RT_STREAM_CONNECTED), 0);
  probe_t *sp = probe_spawn(sw, lp->accepted[0], true);
  write_all(cp->stream, "now", 3);
  run_to(sw, 0);
  cr_assert_eq(sp->len, 3, "instant");
  rt_stream_close(cp->stream);
  rt_stream_close(sp->stream);
  sim_world_destroy(sw);
  probe_free(lp);
  probe_free(cp);
  probe_free(sp);
}

Test(sim_pipe_connect, a_hook_that_leaves_a_port_alone_gives_it_defaults) {
  sim_world_t *sw = world_new(1);
  hook_t h = {.port = PORT + 1, .up = {.latency = 3 * MS}};
  sim_world_set_connect_links(sw, hook_links, &h);
  probe_t *lp = listen_probe(sw, PORT);
  probe_t *cp = connect_probe(sw, PORT);
  run_to(sw, 0);
  cr_assert_eq(h.calls_len, 1);
  cr_assert_eq(probe_first(cp, RT_STREAM_CONNECTED), 0);
  rt_stream_close(cp->stream);
  rt_stream_close(lp->accepted[0]);
  sim_world_destroy(sw);
  probe_free(lp);
  probe_free(cp);
}

Test(sim_pipe_connect, a_link_the_hook_gets_wrong_makes_the_connect_einval) {
  sim_world_t *sw = world_new(1);
  hook_t h = {.port = PORT, .down = {.buffer = SIM_BUFFER_MAX + 1}};
  sim_world_set_connect_links(sw, hook_links, &h);
  probe_t *lp = listen_probe(sw, PORT);
  rt_stream_t *c = (rt_stream_t *)&c; /* not NULL: it must be cleared */
  cr_assert_eq(rt_stream_connect(sim_world_rt(sw), HOST, PORT, lp->id, &c),
               RT_EINVAL);
  cr_assert_null(c);
  run_to(sw, 10 * MS);
  cr_assert_eq(lp->accepted_len, 0, "nothing reached the listener");
  cr_assert_eq(timers_live(sw), 0, "nothing was started");
  sim_world_destroy(sw);
  probe_free(lp);
}

/* ---- Partitions ----------------------------------------------------------
 * The hook puts connections in groups; sim_world_partition holds a
 * (group, port) pair's arrivals both ways for a window. */

#define GROUP 1u

/* A connection of group GROUP to PORT with 1 ms each way, connected at
 * 2 ms, the server end in a probe: *cp the client's, *sp the server's. */
typedef struct conn {
  probe_t *lp, *cp, *sp;
} conn_t;

static conn_t conn_open(sim_world_t *sw, hook_t *h) {
  *h = (hook_t){.port = PORT,
                .up = {.latency = MS},
                .down = {.latency = MS},
                .group = GROUP};
  sim_world_set_connect_links(sw, hook_links, h);
  conn_t c = {.lp = listen_probe(sw, PORT)};
  c.cp = connect_probe(sw, PORT);
  run_to(sw, 2 * MS);
  cr_assert_eq(probe_first(c.cp, RT_STREAM_CONNECTED), 2 * MS);
  c.sp = probe_spawn(sw, c.lp->accepted[0], true);
  return c;
}

static void conn_free(conn_t *c) {
  probe_free(c->lp);
  probe_free(c->cp);
  probe_free(c->sp);
}

Test(sim_pipe_connect, a_partition_holds_bytes_both_ways_then_delivers_them) {
  sim_world_t *sw = world_new(1);
  hook_t h;
  conn_t c = conn_open(sw, &h);
  cr_assert_eq(sim_world_partition(sw, GROUP, PORT, 50 * MS), RT_OK);
  write_all(c.cp->stream, "abc", 3);
  write_all(c.sp->stream, "xyz", 3);
  run_to(sw, 10 * MS);
  write_all(c.cp->stream, "def", 3);
  run_to(sw, 50 * MS - 1);
  cr_assert_eq(c.sp->len, 0, "nothing crosses up");
  cr_assert_eq(c.cp->len, 0, "nothing crosses down");
  cr_assert_eq(c.sp->events_len, 0);
  run_to(sw, 50 * MS);
  cr_assert_eq(c.sp->len, 6);
  cr_assert_eq(memcmp(c.sp->data, "abcdef", 6), 0, "in the order written");
  cr_assert_eq(c.sp->chunks[0].at, 50 * MS, "at the end, no second latency");
  cr_assert_eq(c.cp->len, 3);
  cr_assert_eq(memcmp(c.cp->data, "xyz", 3), 0);
  cr_assert_eq(c.cp->chunks[0].at, 50 * MS);
  write_all(c.cp->stream, "g", 1); /* after the window: the link's latency */
  run_to(sw, 51 * MS - 1);
  cr_assert_eq(c.sp->len, 6);
  run_to(sw, 51 * MS);
  cr_assert_eq(c.sp->len, 7);
  rt_stream_close(c.cp->stream);
  rt_stream_close(c.sp->stream);
  sim_world_destroy(sw);
  conn_free(&c);
}

Test(sim_pipe_connect,
     held_segments_with_jitter_arrive_in_order_after_a_window) {
  /* Many small segments, each with its own jitter draw: the hold must not
   * let a later one out before an earlier one (sim_pipe.c, Holds). */
  sim_world_t *sw = world_new(5);
  hook_t h = {.port = PORT,
              .up = {.latency = MS, .jitter = 3 * MS, .mss = 7},
              .group = GROUP};
  sim_world_set_connect_links(sw, hook_links, &h);
  probe_t *lp = listen_probe(sw, PORT);
  probe_t *cp = connect_probe(sw, PORT);
  run_to(sw, MS);
  probe_t *sp = probe_spawn(sw, lp->accepted[0], true);
  cr_assert_eq(sim_world_partition(sw, GROUP, PORT, 4 * MS), RT_OK);
  char msg[200];
  for (size_t i = 0; i < sizeof(msg); i++)
    msg[i] = (char)('a' + i % 26);
  for (size_t i = 0; i < sizeof(msg); i += 20) {
    write_all(cp->stream, msg + i, 20);
    run_to(sw, rt_now(sim_world_rt(sw)) + MS / 2);
  }
  run_to(sw, 40 * MS);
  cr_assert_eq(sp->len, sizeof(msg));
  cr_assert_eq(memcmp(sp->data, msg, sizeof(msg)), 0);
  cr_assert_geq(sp->chunks[0].at, 4 * MS);
  for (uint32_t i = 1; i < sp->chunks_len; i++)
    cr_assert_geq(sp->chunks[i].at, sp->chunks[i - 1].at);
  rt_stream_close(cp->stream);
  rt_stream_close(sp->stream);
  sim_world_destroy(sw);
  probe_free(lp);
  probe_free(cp);
  probe_free(sp);
}

Test(sim_pipe_connect, a_writer_in_a_partition_sees_backpressure) {
  sim_world_t *sw = world_new(1);
  hook_t h = {.port = PORT, .up = {.buffer = 8}, .group = GROUP};
  sim_world_set_connect_links(sw, hook_links, &h);
  probe_t *lp = listen_probe(sw, PORT);
  probe_t *cp = connect_probe(sw, PORT);
  cp->auto_read = false;
  run_to(sw, 0);
  probe_t *sp = probe_spawn(sw, lp->accepted[0], true);
  cr_assert_eq(sim_world_partition(sw, GROUP, PORT, 20 * MS), RT_OK);
  uint32_t before = cp->events_len;
  cr_assert_eq(rt_stream_write(cp->stream, "0123456789", 10), 8);
  cr_assert_eq(rt_stream_write(cp->stream, "89", 2), 0, "the buffer is full");
  run_to(sw, 20 * MS - 1);
  cr_assert_eq(cp->events_len, before, "no WRITABLE while held");
  run_to(sw, 20 * MS);
  cr_assert_eq(sp->len, 8);
  cr_assert_eq(cp->events_len, before + 1);
  cr_assert_eq(cp->events[before].events, RT_STREAM_WRITABLE);
  cr_assert_eq(cp->events[before].at, 20 * MS);
  rt_stream_close(cp->stream);
  rt_stream_close(sp->stream);
  sim_world_destroy(sw);
  probe_free(lp);
  probe_free(cp);
  probe_free(sp);
}

Test(sim_pipe_connect,
     a_connect_in_a_partition_is_connected_no_earlier_than_its_end) {
  sim_world_t *sw = world_new(1);
  hook_t h = {.port = PORT,
              .up = {.latency = MS},
              .down = {.latency = MS},
              .group = GROUP};
  sim_world_set_connect_links(sw, hook_links, &h);
  probe_t *lp = listen_probe(sw, PORT);
  /* Set before the pipes exist: it holds the ones connected later too. */
  cr_assert_eq(sim_world_partition(sw, GROUP, PORT, 30 * MS), RT_OK);
  probe_t *early = connect_probe(sw, PORT); /* round trip over at 2 ms */
  run_to(sw, 29 * MS);
  probe_t *late = connect_probe(sw, PORT); /* over at 31 ms */
  cr_assert_eq(lp->accepted_len, 1, "the server end waits at the listener");
  run_to(sw, 30 * MS - 1);
  cr_assert_eq(early->events_len, 0);
  run_to(sw, 30 * MS);
  cr_assert_eq(probe_first(early, RT_STREAM_CONNECTED), 30 * MS);
  cr_assert_eq(late->events_len, 0, "its own round trip is not over");
  run_to(sw, 31 * MS);
  cr_assert_eq(probe_first(late, RT_STREAM_CONNECTED), 31 * MS);
  cr_assert_eq(lp->accepted_len, 2);
  probe_t *sp = probe_spawn(sw, lp->accepted[0], true);
  write_all(early->stream, "hi", 2); /* at 31 ms: the link's 1 ms again */
  run_to(sw, 32 * MS - 1);
  cr_assert_eq(sp->len, 0);
  run_to(sw, 32 * MS);
  cr_assert_eq(sp->len, 2);
  rt_stream_close(early->stream);
  rt_stream_close(late->stream);
  rt_stream_close(lp->accepted[0]);
  rt_stream_close(lp->accepted[1]);
  sim_world_destroy(sw);
  probe_free(lp);
  probe_free(early);
  probe_free(late);
  probe_free(sp);
}

Test(sim_pipe_connect, a_refused_connect_in_a_partition_is_closed_at_its_end) {
  sim_world_t *sw = world_new(1);
  hook_t h = {.port = PORT,
              .up = {.latency = MS},
              .down = {.latency = MS},
              .group = GROUP};
  sim_world_set_connect_links(sw, hook_links, &h);
  cr_assert_eq(sim_world_partition(sw, GROUP, PORT, 30 * MS), RT_OK);
  probe_t *cp = connect_probe(sw, PORT); /* nobody listens */
  uint8_t buf[4];
  run_to(sw, 30 * MS - 1);
  cr_assert_eq(cp->events_len, 0);
  cr_assert_eq(rt_stream_read(cp->stream, buf, sizeof(buf)), 0);
  run_to(sw, 30 * MS);
  cr_assert_eq(cp->events_len, 1);
  cr_assert_eq(cp->events[0].events, RT_STREAM_CLOSED);
  cr_assert_eq(cp->end, RT_ECONNREFUSED);
  cr_assert_eq(rt_stream_write(cp->stream, "x", 1), RT_ECONNREFUSED);
  rt_stream_close(cp->stream);
  cr_assert_eq(timers_live(sw), 0);
  sim_world_destroy(sw);
  probe_free(cp);
}

Test(sim_pipe_connect, a_partition_leaves_other_groups_and_ports_alone) {
  sim_world_t *sw = world_new(1);
  hook_t h = {.port = PORT, .group = GROUP};
  sim_world_set_connect_links(sw, hook_links, &h);
  probe_t *lp = listen_probe(sw, PORT);
  probe_t *lp2 = listen_probe(sw, PORT + 1);
  probe_t *held = connect_probe(sw, PORT); /* group 1, PORT */
  h.group = GROUP + 1;
  probe_t *other_group = connect_probe(sw, PORT);
  h.group = 0;
  probe_t *no_group = connect_probe(sw, PORT);
  h.port = PORT + 1;
  h.group = GROUP;
  probe_t *other_port = connect_probe(sw, PORT + 1);
  rt_stream_t *direct = NULL; /* sim_connect_async: group 0 */
  cr_assert_eq(sim_connect_async(sw, PORT, lp->id, NULL, NULL, &direct), RT_OK);
  run_to(sw, 0); /* all connected: instant links */
  cr_assert_eq(lp->accepted_len, 4);
  cr_assert_eq(lp2->accepted_len, 1);
  cr_assert_eq(sim_world_partition(sw, GROUP, PORT, 30 * MS), RT_OK);
  /* Accepted in connect order: held, other_group, no_group, direct. */
  probe_t *servers[4];
  for (uint32_t i = 0; i < 4; i++)
    servers[i] = probe_spawn(sw, lp->accepted[i], true);
  probe_t *server2 = probe_spawn(sw, lp2->accepted[0], true);
  probe_t *clients[3] = {held, other_group, no_group};
  for (uint32_t i = 0; i < 3; i++)
    write_all(clients[i]->stream, "up", 2);
  write_all(direct, "up", 2);
  write_all(other_port->stream, "up", 2);
  /* A connect in the window to another port is not held either. */
  probe_t *other_port_late = connect_probe(sw, PORT + 1);
  run_to(sw, MS);
  cr_assert_eq(servers[0]->len, 0, "held");
  for (uint32_t i = 1; i < 4; i++)
    cr_assert_eq(servers[i]->len, 2, "server %u", i);
  cr_assert_eq(server2->len, 2, "another port");
  cr_assert_eq(probe_first(other_port_late, RT_STREAM_CONNECTED), 0);
  run_to(sw, 30 * MS - 1);
  cr_assert_eq(servers[0]->len, 0, "held");
  run_to(sw, 30 * MS);
  cr_assert_eq(servers[0]->len, 2);
  for (uint32_t i = 0; i < 3; i++)
    rt_stream_close(clients[i]->stream);
  rt_stream_close(direct);
  rt_stream_close(other_port->stream);
  rt_stream_close(other_port_late->stream);
  rt_stream_close(lp2->accepted[1]);
  for (uint32_t i = 0; i < 4; i++) {
    rt_stream_close(servers[i]->stream);
    probe_free(servers[i]);
  }
  rt_stream_close(server2->stream);
  sim_world_destroy(sw);
  for (uint32_t i = 0; i < 3; i++)
    probe_free(clients[i]);
  probe_free(other_port);
  probe_free(other_port_late);
  probe_free(server2);
  probe_free(lp);
  probe_free(lp2);
}

Test(sim_pipe_connect, a_later_call_extends_the_window) {
  sim_world_t *sw = world_new(1);
  hook_t h;
  conn_t c = conn_open(sw, &h);
  cr_assert_eq(sim_world_partition(sw, GROUP, PORT, 20 * MS), RT_OK);
  write_all(c.cp->stream, "abc", 3);
  probe_t *late = connect_probe(sw, PORT); /* round trip over at 4 ms */
  run_to(sw, 10 * MS);
  cr_assert_eq(sim_world_partition(sw, GROUP, PORT, 40 * MS), RT_OK);
  run_to(sw, 40 * MS - 1);
  cr_assert_eq(c.sp->len, 0, "not at the old end");
  cr_assert_eq(late->events_len, 0);
  run_to(sw, 40 * MS);
  cr_assert_eq(c.sp->len, 3);
  cr_assert_eq(c.sp->chunks[0].at, 40 * MS);
  cr_assert_eq(probe_first(late, RT_STREAM_CONNECTED), 40 * MS);
  rt_stream_close(c.cp->stream);
  rt_stream_close(c.sp->stream);
  rt_stream_close(late->stream);
  sim_world_destroy(sw);
  conn_free(&c);
  probe_free(late);
}

Test(sim_pipe_connect, a_later_call_shortens_the_window_not_the_latency) {
  sim_world_t *sw = world_new(1);
  hook_t h = {.port = PORT,
              .up = {.latency = 10 * MS},
              .down = {.latency = 10 * MS},
              .group = GROUP};
  sim_world_set_connect_links(sw, hook_links, &h);
  probe_t *lp = listen_probe(sw, PORT);
  probe_t *cp = connect_probe(sw, PORT);
  run_to(sw, 20 * MS);
  probe_t *sp = probe_spawn(sw, lp->accepted[0], true);

  /* Shortened to before the bytes were due: they keep their time. */
  cr_assert_eq(sim_world_partition(sw, GROUP, PORT, 100 * MS), RT_OK);
  write_all(cp->stream, "a", 1); /* due at 30 ms */
  run_to(sw, 25 * MS);
  cr_assert_eq(sim_world_partition(sw, GROUP, PORT, 27 * MS), RT_OK);
  run_to(sw, 30 * MS - 1);
  cr_assert_eq(sp->len, 0, "never before what was scheduled");
  run_to(sw, 30 * MS);
  cr_assert_eq(sp->len, 1);

  /* Shortened to after they were due: they come at the new end. */
  cr_assert_eq(sim_world_partition(sw, GROUP, PORT, 100 * MS), RT_OK);
  write_all(cp->stream, "b", 1);           /* due at 40 ms */
  probe_t *late = connect_probe(sw, PORT); /* round trip over at 50 ms */
  run_to(sw, 45 * MS);
  cr_assert_eq(sim_world_partition(sw, GROUP, PORT, 60 * MS), RT_OK);
  run_to(sw, 60 * MS - 1);
  cr_assert_eq(sp->len, 1);
  cr_assert_eq(late->events_len, 0);
  run_to(sw, 60 * MS);
  cr_assert_eq(sp->len, 2);
  cr_assert_eq(sp->chunks[1].at, 60 * MS);
  cr_assert_eq(probe_first(late, RT_STREAM_CONNECTED), 60 * MS);

  /* Shortened to now (or before): the window ends at once. */
  cr_assert_eq(sim_world_partition(sw, GROUP, PORT, 100 * MS), RT_OK);
  write_all(cp->stream, "c", 1); /* due at 70 ms */
  run_to(sw, 80 * MS);
  cr_assert_eq(sp->len, 2);
  cr_assert_eq(sim_world_partition(sw, GROUP, PORT, 0), RT_OK);
  run_to(sw, 80 * MS);
  cr_assert_eq(sp->len, 3);
  cr_assert_eq(sp->chunks[2].at, 80 * MS);
  cr_assert_eq(memcmp(sp->data, "abc", 3), 0);

  rt_stream_close(cp->stream);
  rt_stream_close(sp->stream);
  rt_stream_close(late->stream);
  rt_stream_close(lp->accepted[1]);
  sim_world_destroy(sw);
  probe_free(lp);
  probe_free(cp);
  probe_free(sp);
  probe_free(late);
}

Test(sim_pipe_connect, a_partition_and_stalls_hold_until_the_last_ends) {
  sim_world_t *sw = world_new(1);
  hook_t h = {.port = PORT,
              .up = {.latency = MS, .stall_at = 20 * MS, .stall_for = 5 * MS},
              .down = {.latency = MS},
              .group = GROUP};
  sim_world_set_connect_links(sw, hook_links, &h);
  probe_t *lp = listen_probe(sw, PORT);
  probe_t *cp = connect_probe(sw, PORT);
  run_to(sw, 2 * MS);
  probe_t *sp = probe_spawn(sw, lp->accepted[0], true);
  /* Overlapping: sim_stream_stall's window outlasts the partition. */
  cr_assert_eq(sim_world_partition(sw, GROUP, PORT, 10 * MS), RT_OK);
  sim_stream_stall(sp->stream, 15 * MS);
  write_all(cp->stream, "a", 1); /* due at 3 ms */
  run_to(sw, 15 * MS - 1);
  cr_assert_eq(sp->len, 0);
  run_to(sw, 15 * MS);
  cr_assert_eq(sp->len, 1);
  /* Chained: the partition releases into the link's configured stall. */
  cr_assert_eq(sim_world_partition(sw, GROUP, PORT, 20 * MS), RT_OK);
  write_all(cp->stream, "b", 1); /* due at 16 ms */
  run_to(sw, 25 * MS - 1);
  cr_assert_eq(sp->len, 1);
  run_to(sw, 25 * MS);
  cr_assert_eq(sp->len, 2);
  rt_stream_close(cp->stream);
  rt_stream_close(sp->stream);
  sim_world_destroy(sw);
  probe_free(lp);
  probe_free(cp);
  probe_free(sp);
}

Test(sim_pipe_connect, a_partition_of_group_0_is_einval) {
  sim_world_t *sw = world_new(1);
  cr_assert_eq(sim_world_partition(sw, 0, PORT, 10 * MS), RT_EINVAL);
  sim_world_destroy(sw);
}

Test(sim_pipe_connect, sixteen_pairs_fit_and_a_seventeenth_is_elimit) {
  sim_world_t *sw = world_new(1);
  /* Below and at the limit: pairs differ by group or by port. */
  for (uint32_t i = 0; i < SIM_PARTITIONS_MAX; i++) {
    uint32_t group = 1 + i / 2;
    uint16_t port = (uint16_t)(PORT + i % 2);
    rt_time_ns until = i == 0 ? 10 * MS : 100 * MS;
    cr_assert_eq(sim_world_partition(sw, group, port, until), RT_OK, "%u", i);
  }
  /* Above it. */
  cr_assert_eq(sim_world_partition(sw, 99, PORT, 100 * MS), RT_ELIMIT);
  /* A pair already held changes without a new slot; a window not after
   * now asks for none. */
  cr_assert_eq(sim_world_partition(sw, 2, PORT, 200 * MS), RT_OK);
  cr_assert_eq(sim_world_partition(sw, 99, PORT, 0), RT_OK);
  cr_assert_eq(sim_world_partition(sw, 99, PORT, 100 * MS), RT_ELIMIT);
  /* An ended window frees its slot: (1, PORT) ended at 10 ms. */
  run_to(sw, 10 * MS);
  cr_assert_eq(sim_world_partition(sw, 99, PORT, 100 * MS), RT_OK);
  cr_assert_eq(sim_world_partition(sw, 98, PORT, 100 * MS), RT_ELIMIT);
  /* Ending one by shortening frees its slot too. */
  cr_assert_eq(sim_world_partition(sw, 2, PORT, 10 * MS), RT_OK);
  cr_assert_eq(sim_world_partition(sw, 98, PORT, 100 * MS), RT_OK);
  sim_world_destroy(sw);
}

Test(sim_pipe_connect, pipes_closed_or_reset_in_a_partition_are_freed_cleanly) {
  /* Held bytes, connects under way and then closes and resets: the
   * partition's later changes must not touch what is gone (ASan). */
  sim_world_t *sw = world_new(1);
  hook_t h;
  conn_t c = conn_open(sw, &h);
  cr_assert_eq(sim_world_partition(sw, GROUP, PORT, 50 * MS), RT_OK);
  conn_t r = {.cp = connect_probe(sw, PORT)};    /* to be reset */
  probe_t *connecting = connect_probe(sw, PORT); /* closed while held */
  run_to(sw, MS * 5);
  cr_assert_eq(c.lp->accepted_len, 3);
  r.sp = probe_spawn(sw, c.lp->accepted[1], true);
  write_all(c.cp->stream, "held", 4);
  write_all(c.sp->stream, "held", 4);
  write_all(r.sp->stream, "held", 4);
  rt_stream_close(c.cp->stream); /* the client end, with bytes held */
  sim_stream_reset(r.sp->stream);
  rt_stream_close(connecting->stream);
  cr_assert_eq(sim_world_partition(sw, GROUP, PORT, 60 * MS), RT_OK);
  run_to(sw, 20 * MS);
  cr_assert_eq(probe_first(r.cp, RT_STREAM_CLOSED), 5 * MS,
               "a reset is not held");
  cr_assert_eq(r.cp->end, RT_ERESET);
  cr_assert_eq(sim_world_partition(sw, GROUP, PORT, 30 * MS), RT_OK);
  run_to(sw, 30 * MS);
  cr_assert_eq(c.sp->len, 4, "what the closed end sent before it closed");
  cr_assert_eq(c.sp->end, RT_EOF);
  rt_stream_close(c.sp->stream); /* frees c's pipe */
  rt_stream_close(r.cp->stream);
  rt_stream_close(r.sp->stream);      /* frees r's pipe */
  rt_stream_close(c.lp->accepted[2]); /* frees connecting's pipe */
  run_to(sw, 40 * MS);
  cr_assert_eq(timers_live(sw), 0);
  cr_assert_eq(sim_world_partition(sw, GROUP, PORT, 70 * MS), RT_OK);
  sim_world_destroy(sw);
  conn_free(&c);
  probe_free(r.cp);
  probe_free(r.sp);
  probe_free(connecting);
}
