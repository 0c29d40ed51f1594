/* test_sim_replay_tap.c: what a recording does with externals (rt_tap.h's
 * take and put) and the output hash: externals recorded live and taken
 * back in the replay, the tap driven unit by unit with hand-made taps on a
 * simulated world, the output hash, and a recording that fails being
 * heard of at once. The fixture is sim_replay_fixture.h (test_sim_replay.c
 * tells the whole story); one binary, test_sim_replay, whose suite (the
 * test's temporary directory) is in test_sim_replay.c.
 */
#include "sim_replay_fixture.h"

#include "net_record.h"
#include "rt_hash.h"
#include "rt_stream.h"
#include "rt_tap.h"
#include "rt_world.h"
#include "sim_pipe.h"
#include "sim_replay.h"
#include "sim_world.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- Externals through a recording --------------------------------------- */

Test(sim_replay, externals_recorded_live_are_taken_back_not_recomputed) {
  /* The keyed mirror XORs each chunk with a key it gets as an external.
   * Live, no recording answers: it computes the key (0x21) and the
   * recorder writes it down. The replay is configured to compute another
   * key (0x5a): it replays only if every key came from the recording. */
  char dir[TMP_PATH_MAX];
  tmp_path(dir, "rec");
  mirror_cfg_t live_cfg = {.mode = MIRROR_KEYED, .fresh_key = 0x21};
  plan_t plan = {.first_len = FIRST_LEN,
                 .second_len = SECOND_LEN,
                 .xor_key = 0x21,
                 .spawn = mirror_spawn,
                 .spawn_ctx = &live_cfg};
  session_t s;
  record_session(dir, &plan, &s);
  cr_assert_gt(live_cfg.keys_computed, 0);
  cr_assert_eq(live_cfg.keys_taken, 0);

  mirror_cfg_t replay_cfg = {.mode = MIRROR_KEYED, .fresh_key = 0x5a};
  setup_t setup = {.spawn = mirror_spawn, .spawn_ctx = &replay_cfg};
  sim_replay_report_t rep;
  cr_assert_eq(replay(dir, &setup, RT_TIME_NEVER, &rep), SIM_REPLAY_DONE,
               "%s: %s", SAID(rep));
  cr_assert_eq(replay_cfg.keys_computed, 0);
  cr_assert_eq(replay_cfg.keys_taken, live_cfg.keys_computed);
  cr_assert_eq(rep.externals, live_cfg.keys_computed);
  cr_assert_eq(rep.output_hash, s.output_hash);

  /* The plain echo asks for no key where the recording has one. */
  sim_replay_report_t plain;
  cr_assert_eq(replay_echo(dir, &plain), SIM_REPLAY_DIVERGED, "%s: %s",
               SAID(plain));
  cr_assert_not_null(strstr(plain.what, "EXTERNAL"), "%s", plain.what);
}

/* ---- The tap, unit by unit ----------------------------------------------- */

#define PROBE_DATA_MAX 64u

typedef struct probe {
  /* put */
  uint32_t puts;
  uint32_t put_kind;
  int64_t put_rc;
  uint8_t put_data[PROBE_DATA_MAX];
  size_t put_len;
  /* take */
  uint32_t takes;
  uint32_t take_kind;
  int take_result; /* what take returns */
  int64_t take_rc;
  const uint8_t *take_data;
  size_t take_len;
  /* writes */
  uint32_t writes;
  uint64_t write_stream;
  size_t write_len;
  int64_t write_rc;
} probe_t;

static void probe_put(void *ctx, uint32_t kind, int64_t rc, const void *data,
                      size_t len) {
  probe_t *p = ctx;
  p->puts++;
  p->put_kind = kind;
  p->put_rc = rc;
  cr_assert_leq(len, PROBE_DATA_MAX);
  if (len > 0)
    memcpy(p->put_data, data, len);
  p->put_len = len;
}

static int probe_take(void *ctx, uint32_t kind, int64_t *rc,
                      const uint8_t **data, size_t *len) {
  probe_t *p = ctx;
  p->takes++;
  p->take_kind = kind;
  if (p->take_result == 1) {
    *rc = p->take_rc;
    *data = p->take_data;
    *len = p->take_len;
  }
  return p->take_result;
}

static void probe_write(void *ctx, uint64_t stream, const void *buf, size_t len,
                        int64_t rc) {
  (void)buf;
  probe_t *p = ctx;
  p->writes++;
  p->write_stream = stream;
  p->write_len = len;
  p->write_rc = rc;
}

static sim_world_t *quiet_sim(void) {
  sim_config_t cfg = {.seed = SEED, .log_level = RT_LOG_OFF};
  sim_world_t *sw = sim_world_create(&cfg);
  cr_assert_not_null(sw);
  return sw;
}

Test(sim_replay, externals_without_a_tap_are_computed_and_put_goes_nowhere) {
  sim_world_t *sw = quiet_sim();
  rt_world_t *w = sim_world_rt(sw);
  cr_assert(!rt_world_tapped(w));
  int64_t rc = -1;
  const uint8_t *data = NULL;
  size_t len = 0;
  cr_assert_eq(rt_external_take(w, 7, &rc, &data, &len), 0);
  rt_external_put(w, 7, 5, "abc", 3); /* a no-op: nothing to see, no crash */
  rt_external_put(w, 7, 0, NULL, 0);

  /* A tap that hooks neither: the same. */
  probe_t p = {.take_result = 1};
  rt_tap_t none = {0};
  rt_world_set_tap(w, &none, &p);
  cr_assert(rt_world_tapped(w));
  cr_assert_eq(rt_external_take(w, 7, &rc, &data, &len), 0);
  rt_external_put(w, 7, 5, "abc", 3);
  cr_assert_eq(p.takes, 0);
  cr_assert_eq(p.puts, 0);
  rt_world_set_tap(w, NULL, NULL);
  cr_assert(!rt_world_tapped(w));
  sim_world_destroy(sw);
}

Test(sim_replay, a_recording_tap_sees_each_put_and_is_never_asked_to_take) {
  sim_world_t *sw = quiet_sim();
  rt_world_t *w = sim_world_rt(sw);
  probe_t p = {0};
  rt_tap_t recorder = {.put = probe_put};
  rt_world_set_tap(w, &recorder, &p);

  int64_t rc = 0;
  const uint8_t *data = NULL;
  size_t len = 0;
  cr_assert_eq(rt_external_take(w, 11, &rc, &data, &len), 0, "compute it");
  rt_external_put(w, 11, -3, "abc", 3);
  cr_assert_eq(p.puts, 1);
  cr_assert_eq(p.put_kind, 11);
  cr_assert_eq(p.put_rc, -3);
  cr_assert_eq(p.put_len, 3);
  cr_assert_eq(memcmp(p.put_data, "abc", 3), 0);

  rt_external_put(w, 12, INT64_MAX, NULL, 0);
  cr_assert_eq(p.puts, 2);
  cr_assert_eq(p.put_kind, 12);
  cr_assert_eq(p.put_rc, INT64_MAX);
  cr_assert_eq(p.put_len, 0);

  /* Cleared: puts no longer reach it. */
  rt_world_set_tap(w, NULL, NULL);
  rt_external_put(w, 13, 1, "x", 1);
  cr_assert_eq(p.puts, 2);
  sim_world_destroy(sw);
}

Test(sim_replay, a_replaying_tap_answers_take_and_its_errors_propagate) {
  sim_world_t *sw = quiet_sim();
  rt_world_t *w = sim_world_rt(sw);
  static const uint8_t recorded[] = {'x', 'y', 0, 'z'};
  probe_t p = {.take_result = 1,
               .take_rc = 42,
               .take_data = recorded,
               .take_len = sizeof(recorded)};
  rt_tap_t replayer = {.take = probe_take};
  rt_world_set_tap(w, &replayer, &p);

  int64_t rc = 0;
  const uint8_t *data = NULL;
  size_t len = 0;
  cr_assert_eq(rt_external_take(w, 21, &rc, &data, &len), 1);
  cr_assert_eq(p.takes, 1);
  cr_assert_eq(p.take_kind, 21);
  cr_assert_eq(rc, 42);
  cr_assert_eq(data, recorded);
  cr_assert_eq(len, sizeof(recorded));
  rt_external_put(w, 21, 1, "q", 1); /* no put hook: nothing happens */

  /* The recording has something else here: the caller gets the error. */
  p.take_result = RT_EIO;
  cr_assert_eq(rt_external_take(w, 22, &rc, &data, &len), RT_EIO);
  p.take_result = RT_ENOMEM;
  cr_assert_eq(rt_external_take(w, 23, &rc, &data, &len), RT_ENOMEM);
  cr_assert_eq(p.takes, 3);
  cr_assert_eq(p.take_kind, 23);
  /* And a take that says "compute it" is passed on as such. */
  p.take_result = 0;
  cr_assert_eq(rt_external_take(w, 24, &rc, &data, &len), 0);

  /* Both hooks: take asked first, put when it says compute. */
  probe_t both = {.take_result = 0};
  rt_tap_t full = {.take = probe_take, .put = probe_put};
  rt_world_set_tap(w, &full, &both);
  cr_assert_eq(rt_external_take(w, 25, &rc, &data, &len), 0);
  rt_external_put(w, 25, 9, "ok", 2);
  cr_assert_eq(both.takes, 1);
  cr_assert_eq(both.puts, 1);
  cr_assert_eq(both.put_kind, 25);
  rt_world_set_tap(w, NULL, NULL);
  sim_world_destroy(sw);
}

/* ---- The output hash ----------------------------------------------------- */

Test(sim_replay, the_output_hash_folds_accepted_bytes_only_while_tapped) {
  sim_world_t *sw = quiet_sim();
  rt_world_t *w = sim_world_rt(sw);
  /* A 16-byte buffer from a to b, so a write can be cut short. */
  sim_link_config_t small = {.buffer = 16};
  rt_stream_t *a = NULL, *b = NULL;
  cr_assert_eq(sim_pipe_create(sw, &small, NULL, &a, &b), RT_OK);
  cr_assert_neq(a->id, b->id);

  /* Untapped: bytes flow, nothing is hashed. */
  cr_assert_eq(rt_stream_write(a, "hello", 5), 5);
  cr_assert_eq(rt_world_output_hash(w), 0);
  cr_assert_eq(a->out_hash, 0);
  cr_assert_eq(a->bytes_out, 5);

  probe_t p = {0};
  rt_tap_t tap = {.write = probe_write};
  rt_world_set_tap(w, &tap, &p);
  cr_assert_eq(rt_world_output_hash(w), 0, "nothing written while tapped");

  /* Each accepted byte is folded with its stream's id, per stream and per
   * world, in order. */
  cr_assert_eq(rt_stream_write(a, "world", 5), 5);
  uint64_t h1 = rt_hash_step(0, rt_hash_bytes("world", 5, a->id));
  cr_assert_eq(a->out_hash, h1);
  cr_assert_eq(rt_world_output_hash(w), h1);
  cr_assert_eq(b->out_hash, 0);
  cr_assert_eq(p.writes, 1);
  cr_assert_eq(p.write_stream, a->id);
  cr_assert_eq(p.write_len, 5);
  cr_assert_eq(p.write_rc, 5);

  /* The same bytes on the other stream hash differently (its id). */
  cr_assert_eq(rt_stream_write(b, "world", 5), 5);
  uint64_t hb = rt_hash_bytes("world", 5, b->id);
  cr_assert_eq(b->out_hash, rt_hash_step(0, hb));
  cr_assert_neq(b->out_hash, a->out_hash);
  uint64_t h2 = rt_hash_step(h1, hb);
  cr_assert_eq(rt_world_output_hash(w), h2);
  cr_assert_eq(a->out_hash, h1, "a's hash is a's bytes only");

  /* A short write: only what was accepted counts (16 - 10 = 6 bytes). The
   * tap still sees what was offered. */
  cr_assert_eq(rt_stream_write(a, "0123456789", 10), 6);
  uint64_t h3 = rt_hash_bytes("012345", 6, a->id);
  cr_assert_eq(a->out_hash, rt_hash_step(h1, h3));
  cr_assert_eq(rt_world_output_hash(w), rt_hash_step(h2, h3));
  cr_assert_eq(p.write_len, 10);
  cr_assert_eq(p.write_rc, 6);

  /* A full buffer accepts nothing and changes nothing. */
  uint64_t before = rt_world_output_hash(w);
  cr_assert_eq(rt_stream_write(a, "x", 1), 0);
  cr_assert_eq(rt_world_output_hash(w), before);
  cr_assert_eq(a->out_hash, rt_hash_step(h1, h3));
  cr_assert_eq(p.writes, 4);
  cr_assert_eq(p.write_rc, 0);

  /* Untapped again: the hashes stay where they are. */
  rt_world_set_tap(w, NULL, NULL);
  cr_assert_eq(rt_stream_write(b, "more", 4), 4);
  cr_assert_eq(rt_world_output_hash(w), before);
  cr_assert_eq(b->out_hash, rt_hash_step(0, hb));
  cr_assert_eq(p.writes, 4);

  rt_stream_close(a);
  rt_stream_close(b);
  sim_world_destroy(sw);
}

/* ---- A recording that fails is heard of at once -------------------------- */

typedef struct log_lines {
  uint32_t trouble; /* "record.trouble" warnings */
} log_lines_t;

static void count_trouble(void *ctx, const char *line, size_t len) {
  log_lines_t *l = ctx;
  (void)len;
  if (strstr(line, "level=warn event=record.trouble") != NULL)
    l->trouble++;
}

static void tick_nop(rt_actor_t *self, const rt_msg_t *msg) {
  (void)self;
  (void)msg;
}

static int open_full(void *ctx, const char *path, uint32_t seq) {
  (void)ctx;
  (void)path;
  (void)seq;
  int fd = open("/dev/full", O_WRONLY | O_CLOEXEC);
  return fd >= 0 ? fd : -errno;
}

/* A disk that is full from the start: the recorder says so in one warning
 * while the world runs (it used to be silent until the trace was closed),
 * and only once however long the run goes on. */
Test(sim_replay, a_failing_recording_is_warned_of_once_while_it_runs) {
  log_lines_t lines = {0};
  sim_config_t sc = {.seed = SEED,
                     .log_level = RT_LOG_WARN,
                     .log_write = count_trouble,
                     .log_ctx = &lines};
  sim_world_t *sw = sim_world_create(&sc);
  cr_assert_not_null(sw);
  rt_world_t *w = sim_world_rt(sw);
  char dir[TMP_PATH_MAX];
  tmp_path(dir, "full");
  net_record_config_t rc = {.dir = dir,
                            .config = "full disk",
                            .flags = NET_RECORD_F_SIM,
                            .open_file = open_full};
  char err[ERR_CAP] = "";
  net_record_t *rec = NULL;
  cr_assert_eq(net_record_start(w, &rc, &rec, err, sizeof(err)), RT_OK, "%s",
               err);
  /* An actor ticking every 5 ms makes passes, and so records and
   * hand-offs to the writer, well past the first failed write. */
  rt_actor_spec_t spec = {
      .name = "tick", .behaviour = tick_nop, .mailbox_cap = 4};
  rt_actor_id_t id;
  cr_assert_eq(rt_spawn(w, &spec, &id), RT_OK);
  uint64_t t;
  cr_assert_eq(rt_timer_start(w, id, 5 * RT_NS_PER_MS, 5 * RT_NS_PER_MS,
                              RT_TAG_USER, 0, &t),
               RT_OK);
  for (int i = 1; i <= 2000 && lines.trouble == 0; i++) {
    sim_world_run(sw, (rt_time_ns)i * NET_RECORD_FLUSH_NS, 0);
    struct timespec ts = {0, 200000}; /* the writer thread's turn */
    nanosleep(&ts, NULL);
  }
  cr_assert_eq(lines.trouble, 1, "no warning while the recording failed");
  sim_world_run(sw, 3000 * NET_RECORD_FLUSH_NS, 0);
  cr_assert_eq(lines.trouble, 1, "warned %u times", lines.trouble);
  net_record_stats_t st;
  cr_assert_neq(net_record_stop(rec, &st, err, sizeof(err)), RT_OK);
  sim_world_destroy(sw);
}
