/* test_sim_replay.c: recording a live world and replaying it (net/
 * net_record.h, sim/sim_replay.h), and the tap underneath (runtime/rt_tap.h).
 *
 * The end-to-end tests record a real session: a net_live world on loopback
 * running the echo server (net/net_echo.h) while this test, as a plain
 * blocking socket client, sends bytes, reads the echoes back and hangs up;
 * the operator's teardown is recorded the way tools/src/overcookied.c does
 * it (stop_recording). Then the trace is replayed into a fresh replay world
 * set up the same way (or on purpose not), and the report is checked.
 *
 * Live runs use the real clock on a shared machine, so the client waits in
 * bounded slices (net_live_run_for, poll with a timeout) and only exact
 * content and counts are asserted, never timings. Replays are pure: their
 * results are exact.
 *
 * The unit tests at the end drive rt_external_take/put and the output hash
 * with hand-made taps on a simulated world.
 *
 * A failing test runs alone with:
 *   build/bin/test_sim_replay --filter 'sim_replay/<test name>'
 * Each test records into its own mkdtemp directory under /tmp, removed by
 * the suite's fini (also after a failed assertion).
 *
 * The tests are in two files by theme, one binary: this one (a recorded
 * session replayed: matching, diverging, stopping early, edited, lost and
 * damaged records) and test_sim_replay_tap.c (externals through a
 * recording, the tap unit by unit, the output hash, a failing recording);
 * the fixture they share is sim_replay_fixture.h.
 */
#include "sim_replay_fixture.h"

#include "net_record.h"
#include "net_trace.h"
#include "net_trace_reader.h"
#include "net_trace_writer.h"
#include "rt_world.h"
#include "sim_replay.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BIG_LEN (16u * 1024) /* one send bigger than a record can hold */

/* Each test in its own temporary directory (sim_replay_fixture.h). */
TestSuite(sim_replay, .init = tmp_init, .fini = tmp_fini);

/* The session most tests record: FIRST_LEN bytes, then SECOND_LEN. */
static void record_echo(const char *dir, session_t *out) {
  plan_t plan = {.first_len = FIRST_LEN, .second_len = SECOND_LEN};
  record_session(dir, &plan, out);
}

/* ---- Round trip ---------------------------------------------------------- */

Test(sim_replay, a_recorded_echo_session_replays_with_every_check_matching) {
  char dir[TMP_PATH_MAX];
  tmp_path(dir, "rec");
  session_t s;
  record_session(
      dir, &(plan_t){.first_len = FIRST_LEN, .second_len = SECOND_LEN}, &s);
  cr_assert_eq(s.sent, FIRST_LEN + SECOND_LEN);
  cr_assert_eq(s.echoed, s.sent);
  cr_assert_eq(s.stats.records_lost, 0);
  cr_assert_gt(s.stats.records, 0);
  cr_assert_eq(s.stats.files, 1);
  cr_assert_neq(s.output_hash, 0, "the recorder's tap hashes the output");

  sim_replay_report_t rep;
  cr_assert_eq(replay_echo(dir, &rep), SIM_REPLAY_DONE, "%s: %s", SAID(rep));
  cr_assert_eq(rep.accepts, 1);
  cr_assert_gt(rep.reads, 0);
  cr_assert_gt(rep.writes, 0);
  cr_assert_gt(rep.checkpoints, 0);
  cr_assert_gt(rep.passes, 0);
  cr_assert_eq(rep.externals, 0);
  cr_assert_eq(rep.bytes_in, s.sent);
  cr_assert_eq(rep.bytes_out, s.echoed);
  cr_assert_gt(rep.time, 0);
  cr_assert_eq(rep.what[0], '\0');
  /* The replay wrote what the live server wrote, and delivered the same
   * messages at the same times. */
  cr_assert_eq(rep.output_hash, s.output_hash,
               "output hash %016" PRIx64 ", live %016" PRIx64, rep.output_hash,
               s.output_hash);
  cr_assert_eq(rep.run_hash, s.run_hash,
               "run hash %016" PRIx64 ", live %016" PRIx64, rep.run_hash,
               s.run_hash);

  /* Again, from the first file rather than the directory: the same. */
  char file[FILE_PATH_MAX];
  snprintf(file, sizeof(file), "%s/trace-000001.oct", dir);
  sim_replay_report_t again;
  cr_assert_eq(replay_echo(file, &again), SIM_REPLAY_DONE, "%s: %s",
               SAID(again));
  cr_assert_eq(again.records, rep.records);
  cr_assert_eq(again.deliveries, rep.deliveries);
  cr_assert_eq(again.output_hash, rep.output_hash);
  cr_assert_eq(again.run_hash, rep.run_hash);
}

/* A recording in several files replays from its first; a later file alone
 * begins mid-run and is refused with what to replay instead. */
Test(sim_replay, a_later_file_of_a_recording_is_refused_alone) {
  char dir[TMP_PATH_MAX];
  tmp_path(dir, "rec");
  session_t s;
  record_session(dir,
                 &(plan_t){.file_bytes = NET_TRACE_FILE_BYTES_MIN,
                           .first_len = 20000,
                           .second_len = 20000},
                 &s);
  cr_assert_geq(s.stats.files, 2, "%u files", s.stats.files);
  sim_replay_report_t rep;
  cr_assert_eq(replay_echo(dir, &rep), SIM_REPLAY_DONE, "%s: %s", SAID(rep));
  cr_assert_eq(rep.bytes_in, s.sent);

  char file[FILE_PATH_MAX];
  snprintf(file, sizeof(file), "%s/trace-000002.oct", dir);
  sim_replay_config_t cfg = {.log_level = RT_LOG_OFF};
  sim_replay_t *r = NULL;
  char err[ERR_CAP] = "";
  cr_assert_eq(sim_replay_open(file, &cfg, &r, err, sizeof(err)), RT_EINVAL);
  cr_assert_null(r);
  cr_assert(strstr(err, "trace-000002.oct is file 2 of a recording") != NULL &&
                strstr(err, "trace-000001.oct") != NULL,
            "%s", err);
}

Test(sim_replay, a_faithful_copy_of_the_program_replays_as_well) {
  /* The control for the divergence tests below: the test's own copy of the
   * echo server, unchanged, passes every check of net_echo's recording. */
  char dir[TMP_PATH_MAX];
  tmp_path(dir, "rec");
  session_t s;
  record_echo(dir, &s);
  mirror_cfg_t cfg = {.mode = MIRROR_ECHO};
  setup_t setup = {.spawn = mirror_spawn, .spawn_ctx = &cfg};
  sim_replay_report_t rep;
  cr_assert_eq(replay(dir, &setup, RT_TIME_NEVER, &rep), SIM_REPLAY_DONE,
               "%s: %s", SAID(rep));
  cr_assert_eq(rep.bytes_out, s.echoed);
  cr_assert_eq(rep.output_hash, s.output_hash);
}

/* ---- Divergence ---------------------------------------------------------- */

Test(sim_replay, a_program_that_writes_other_bytes_diverges_at_the_write) {
  char dir[TMP_PATH_MAX];
  tmp_path(dir, "rec");
  session_t s;
  record_echo(dir, &s);

  mirror_cfg_t cfg = {.mode = MIRROR_SHOUT};
  setup_t setup = {.spawn = mirror_spawn, .spawn_ctx = &cfg};
  sim_replay_report_t rep;
  cr_assert_eq(replay(dir, &setup, RT_TIME_NEVER, &rep), SIM_REPLAY_DIVERGED,
               "%s: %s", SAID(rep));
  /* Listener 1, then the accepted connection: stream 2, handled by actor
   * 2 (the acceptor is 1) in its turn for a stream signal. */
  cr_assert_eq(rep.stream, 2, "stream %" PRIu64, rep.stream);
  cr_assert_eq(rep.actor, 2, "actor %" PRIu64, rep.actor);
  cr_assert_str_eq(rep.actor_name, "shout");
  cr_assert_eq(rep.tag, RT_TAG_STREAM);
  cr_assert_not_null(strstr(rep.what, "wrote"), "%s", rep.what);
  cr_assert_not_null(strstr(rep.what, "stream 2"), "%s", rep.what);
  /* The first chunk, upper-cased, is what the replay offered. */
  cr_assert_not_null(strstr(rep.what, "other contents"), "%s", rep.what);
  char shouted[8];
  for (size_t i = 0; i < sizeof(shouted) - 1; i++)
    shouted[i] = (char)(pattern(i) - 'a' + 'A');
  shouted[sizeof(shouted) - 1] = '\0';
  cr_assert_not_null(strstr(rep.what, shouted), "%s", rep.what);
  cr_assert_neq(rep.context[0], '\0');
  cr_assert_not_null(strstr(rep.context, "READ"), "%s", rep.context);
  cr_assert_not_null(strstr(rep.context, "WRITE"), "%s", rep.context);
  /* It stopped at the first write: nothing was written before it. */
  cr_assert_eq(rep.writes, 0);
  cr_assert_eq(rep.bytes_out, 0);
  cr_assert_eq(rep.reads, 1);
}

Test(sim_replay, an_extra_listener_set_up_first_is_caught_at_the_accept) {
  /* Ids come from the world in creation order: an extra listener (nobody's)
   * takes id 1, the recording's listener, and the real one gets 2, so the
   * accept the replay makes, on listener 2, is not the recorded one. */
  char dir[TMP_PATH_MAX];
  tmp_path(dir, "rec");
  session_t s;
  record_echo(dir, &s);
  setup_t setup = {.extra = EXTRA_LISTENER};
  sim_replay_report_t rep;
  cr_assert_eq(replay(dir, &setup, RT_TIME_NEVER, &rep), SIM_REPLAY_DIVERGED,
               "%s: %s", SAID(rep));
  cr_assert_not_null(strstr(rep.what, "stream"), "%s", rep.what);
  cr_assert_not_null(strstr(rep.what, "ACCEPT (1)"), "%s", rep.what);
  cr_assert_eq(rep.stream, 2);
  cr_assert_eq(rep.accepts, 0);
  cr_assert_eq(rep.reads, 0);
}

Test(sim_replay, an_extra_server_set_up_first_shifts_the_stream_ids) {
  /* A second echo server before the real one: its acceptor accepts the
   * recorded connection on listener 1, which the new stream gets id 3 for,
   * not the recorded 2. */
  char dir[TMP_PATH_MAX];
  tmp_path(dir, "rec");
  session_t s;
  record_echo(dir, &s);
  setup_t setup = {.extra = EXTRA_SERVER};
  sim_replay_report_t rep;
  cr_assert_eq(replay(dir, &setup, RT_TIME_NEVER, &rep), SIM_REPLAY_DIVERGED,
               "%s: %s", SAID(rep));
  cr_assert_not_null(strstr(rep.what, "stream id 3"), "%s", rep.what);
  cr_assert_not_null(strstr(rep.what, "was 2"), "%s", rep.what);
  cr_assert_eq(rep.stream, 2);
  cr_assert_eq(rep.actor, 1, "the first acceptor, in its turn");
  cr_assert_eq(rep.accepts, 0);
}

Test(sim_replay, a_replay_without_the_server_diverges_at_the_first_signal) {
  char dir[TMP_PATH_MAX];
  tmp_path(dir, "rec");
  session_t s;
  record_echo(dir, &s);
  setup_t setup = {.extra = EXTRA_NO_SERVER};
  sim_replay_report_t rep;
  cr_assert_eq(replay(dir, &setup, RT_TIME_NEVER, &rep), SIM_REPLAY_DIVERGED,
               "%s: %s", SAID(rep));
  cr_assert_not_null(strstr(rep.what, "signals stream 1"), "%s", rep.what);
  cr_assert_not_null(strstr(rep.what, "does not have"), "%s", rep.what);
  cr_assert_eq(rep.stream, 1);
  cr_assert_eq(rep.actor, 0, "between passes");
  cr_assert_eq(rep.records, 1);
  cr_assert_eq(rep.passes, 0);
}

Test(sim_replay, a_program_with_more_messages_inside_diverges_at_the_pass) {
  /* Same bytes out, one more delivery per stream signal: the writes all
   * match, the pass's checkpoint does not. */
  char dir[TMP_PATH_MAX];
  tmp_path(dir, "rec");
  session_t s;
  record_echo(dir, &s);
  mirror_cfg_t cfg = {.mode = MIRROR_CHATTY};
  setup_t setup = {.spawn = mirror_spawn, .spawn_ctx = &cfg};
  sim_replay_report_t rep;
  cr_assert_eq(replay(dir, &setup, RT_TIME_NEVER, &rep), SIM_REPLAY_DIVERGED,
               "%s: %s", SAID(rep));
  cr_assert_not_null(strstr(rep.what, "deliveries"), "%s", rep.what);
  cr_assert_eq(rep.actor, 0, "checked after the pass, between turns");
  cr_assert_eq(rep.stream, 0);
  cr_assert_gt(rep.writes, 0, "the writes before it matched");
  cr_assert_eq(rep.checkpoints, 0, "the first pass already differs");
  cr_assert_not_null(strstr(rep.context, "CHECKPOINT"), "%s", rep.context);
}

/* ---- Edited traces -------------------------------------------------------
 * (find_record, xor_record and edit_record: sim_replay_fixture.h) */

Test(sim_replay, a_close_with_another_output_hash_diverges_at_the_close) {
  /* CLOSE: stream, bytes in, bytes out, then the stream's output hash (the
   * last 8 bytes). */
  char dir[TMP_PATH_MAX];
  tmp_path(dir, "rec");
  session_t s;
  record_echo(dir, &s);
  found_t f = find_record(dir, NET_TRACE_T_CLOSE, 0);
  edit_record(dir, &f, -1);
  sim_replay_report_t rep;
  cr_assert_eq(replay_echo(dir, &rep), SIM_REPLAY_DIVERGED, "%s: %s",
               SAID(rep));
  cr_assert_not_null(strstr(rep.what, "stream 2 closed after"), "%s", rep.what);
  cr_assert_eq(rep.stream, 2);
  cr_assert_eq(rep.record_index, f.index);
  cr_assert_eq(rep.bytes_out, s.echoed, "every write matched before it");
}

Test(sim_replay, a_checkpoint_with_other_hashes_diverges_after_the_pass) {
  /* CHECKPOINT: kind, result, deliveries, timer firings, then the run hash
   * and the output hash (8 bytes each, last). */
  char dir[TMP_PATH_MAX];
  tmp_path(dir, "rec");
  session_t s;
  record_echo(dir, &s);
  found_t f = find_record(dir, NET_TRACE_T_CHECKPOINT, 0);
  edit_record(dir, &f, -1);
  sim_replay_report_t rep;
  cr_assert_eq(replay_echo(dir, &rep), SIM_REPLAY_DIVERGED, "%s: %s",
               SAID(rep));
  cr_assert_not_null(strstr(rep.what, "output hash"), "%s", rep.what);
  cr_assert_eq(rep.record_index, f.index);
  cr_assert_eq(rep.checkpoints, 0);

  edit_record(dir, &f, -1); /* restored */
  edit_record(dir, &f, -9); /* the run hash's last byte */
  cr_assert_eq(replay_echo(dir, &rep), SIM_REPLAY_DIVERGED, "%s: %s",
               SAID(rep));
  cr_assert_not_null(strstr(rep.what, "run hash"), "%s", rep.what);
  cr_assert_eq(rep.record_index, f.index);

  edit_record(dir, &f, -9); /* restored: the original replays again */
  cr_assert_eq(replay_echo(dir, &rep), SIM_REPLAY_DONE, "%s: %s", SAID(rep));
}

static size_t varint_len(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    n++;
  }
  return n;
}

/* Values no recorder writes, with valid checksums (a crafted trace): the
 * replay refuses them as trace errors instead of handing them to actors,
 * which would trust them (an accept "result" of 5 with no stream). */
Test(sim_replay, an_accept_result_no_recorder_writes_is_a_trace_error) {
  char dir[TMP_PATH_MAX];
  tmp_path(dir, "rec");
  session_t s;
  record_echo(dir, &s);
  /* ACCEPT: u64 listener, i64 rc (1: zigzag byte 0x02), u64 stream. */
  found_t f = find_record(dir, NET_TRACE_T_ACCEPT, 0);
  xor_record(dir, &f, 1, 0x08); /* zigzag 0x02 -> 0x0a: rc 5 */
  sim_replay_report_t rep;
  cr_assert_eq(replay_echo(dir, &rep), SIM_REPLAY_TRACE_ERROR, "%s: %s",
               SAID(rep));
  cr_assert_not_null(strstr(rep.what, "accept result of 5"), "%s", rep.what);
}

/* Found by mutating traces: a notification for source 0 (no stream or
 * listener has it) once reached the id map, which asserts on key 0. */
Test(sim_replay, a_notification_for_source_0_is_an_unknown_stream) {
  char dir[TMP_PATH_MAX];
  tmp_path(dir, "rec");
  session_t s;
  record_echo(dir, &s);
  /* STREAM_EVENT: u64 source, u64 events; the first is the listener's. */
  found_t f = find_record(dir, NET_TRACE_T_STREAM_EVENT, 0);
  net_trace_reader_t *rd = NULL;
  char err[ERR_CAP] = "";
  cr_assert_eq(net_trace_reader_open(dir, &rd, err, sizeof(err)), RT_OK, "%s",
               err);
  net_trace_record_t rec;
  uint64_t source = 0;
  while (net_trace_next(rd, &rec) == 1)
    if (rec.index == f.index) {
      net_trace_dec_t d;
      net_trace_dec_init(&d, rec.payload, rec.len);
      source = net_trace_get_u64(&d);
      break;
    }
  net_trace_reader_close(rd);
  cr_assert(source > 0 && source < 0x80, "a one-byte id: %" PRIu64, source);
  xor_record(dir, &f, 0, (uint8_t)source); /* the id becomes 0 */
  sim_replay_report_t rep;
  cr_assert_eq(replay_echo(dir, &rep), SIM_REPLAY_DIVERGED, "%s: %s",
               SAID(rep));
  cr_assert_not_null(strstr(rep.what, "signals stream 0"), "%s", rep.what);
}

Test(sim_replay, a_checkpoint_with_other_timer_firings_diverges) {
  char dir[TMP_PATH_MAX];
  tmp_path(dir, "rec");
  session_t s;
  record_echo(dir, &s);
  found_t f = find_record(dir, NET_TRACE_T_CHECKPOINT, 0);
  net_trace_reader_t *rd = NULL;
  char err[ERR_CAP] = "";
  cr_assert_eq(net_trace_reader_open(dir, &rd, err, sizeof(err)), RT_OK, "%s",
               err);
  net_trace_record_t rec;
  uint32_t at = 0;
  while (net_trace_next(rd, &rec) == 1)
    if (rec.index == f.index) {
      net_trace_dec_t d;
      net_trace_dec_init(&d, rec.payload, rec.len);
      for (int i = 0; i < 3; i++) /* kind, result, deliveries */
        at += (uint32_t)varint_len(net_trace_get_u64(&d));
      break;
    }
  net_trace_reader_close(rd);
  xor_record(dir, &f, at, 0x02); /* the firings' count, +-2 */
  sim_replay_report_t rep;
  cr_assert_eq(replay_echo(dir, &rep), SIM_REPLAY_DIVERGED, "%s: %s",
               SAID(rep));
  cr_assert_not_null(strstr(rep.what, "timers have fired"), "%s", rep.what);
}

Test(sim_replay, a_write_that_took_more_than_offered_is_a_trace_error) {
  char dir[TMP_PATH_MAX];
  tmp_path(dir, "rec");
  session_t s;
  record_echo(dir, &s);
  /* The first write that took all of an even number of bytes: WRITE is
   * u64 stream, u64 offered, i64 rc; bit 1 of rc's first byte is its value's
   * bit 0 (zigzag), so flipping it makes rc = offered + 1. */
  net_trace_reader_t *rd = NULL;
  char err[ERR_CAP] = "";
  cr_assert_eq(net_trace_reader_open(dir, &rd, err, sizeof(err)), RT_OK, "%s",
               err);
  net_trace_record_t rec;
  uint32_t nth = 0, at = 0;
  bool found = false;
  while (!found && net_trace_next(rd, &rec) == 1) {
    if (rec.type != NET_TRACE_T_WRITE)
      continue;
    net_trace_dec_t d;
    net_trace_dec_init(&d, rec.payload, rec.len);
    uint64_t stream = net_trace_get_u64(&d);
    uint64_t offered = net_trace_get_u64(&d);
    int64_t rc = net_trace_get_i64(&d);
    if (rc > 0 && (uint64_t)rc == offered && offered % 2 == 0) {
      at = (uint32_t)(varint_len(stream) + varint_len(offered));
      found = true;
    } else {
      nth++;
    }
  }
  net_trace_reader_close(rd);
  cr_assert(found, "no whole even write in the recording");
  found_t f = find_record(dir, NET_TRACE_T_WRITE, nth);
  xor_record(dir, &f, at, 0x02);
  sim_replay_report_t rep;
  cr_assert_eq(replay_echo(dir, &rep), SIM_REPLAY_TRACE_ERROR, "%s: %s",
               SAID(rep));
  cr_assert_not_null(strstr(rep.what, "a write took"), "%s", rep.what);
}

/* ---- Stopping early ------------------------------------------------------ */

Test(sim_replay, until_stops_at_the_requested_time_with_every_check_matched) {
  char dir[TMP_PATH_MAX];
  tmp_path(dir, "rec");
  session_t s;
  record_echo(dir, &s);
  setup_t setup = {.extra = EXTRA_NONE};
  sim_replay_report_t full;
  cr_assert_eq(replay(dir, &setup, RT_TIME_NEVER, &full), SIM_REPLAY_DONE,
               "%s: %s", SAID(full));
  cr_assert_gt(full.time, 1);

  rt_time_ns until = full.time / 2;
  sim_replay_report_t half;
  cr_assert_eq(replay(dir, &setup, until, &half), SIM_REPLAY_UNTIL, "%s: %s",
               SAID(half));
  cr_assert_leq(half.time, until, "time %" PRId64 " past until %" PRId64,
                half.time, until);
  cr_assert_lt(half.passes, full.passes);
  cr_assert_lt(half.records, full.records);
  cr_assert_eq(half.what[0], '\0');

  /* Just before the end: every pass but the last ones. */
  sim_replay_report_t late;
  cr_assert_eq(replay(dir, &setup, full.time - 1, &late), SIM_REPLAY_UNTIL,
               "%s: %s", SAID(late));
  cr_assert_lt(late.time, full.time);
  cr_assert_geq(late.passes, half.passes);

  /* At 0: the clock never moves, so no pass runs. */
  sim_replay_report_t zero;
  cr_assert_eq(replay(dir, &setup, 0, &zero), SIM_REPLAY_UNTIL, "%s: %s",
               SAID(zero));
  cr_assert_eq(zero.time, 0);
  cr_assert_eq(zero.passes, 0);

  /* At the end exactly: the whole recording. */
  sim_replay_report_t end;
  cr_assert_eq(replay(dir, &setup, full.time, &end), SIM_REPLAY_DONE, "%s: %s",
               SAID(end));
  cr_assert_eq(end.records, full.records);
}

/* A replay runs once: after UNTIL the records past it are consumed, so a
 * second run must not claim the whole recording matched. */
Test(sim_replay, a_second_run_of_one_replay_is_refused_not_done) {
  char dir[TMP_PATH_MAX];
  tmp_path(dir, "rec");
  session_t s;
  record_echo(dir, &s);
  sim_replay_config_t cfg = {.log_level = RT_LOG_OFF};
  sim_replay_t *r = NULL;
  char err[ERR_CAP] = "";
  cr_assert_eq(sim_replay_open(dir, &cfg, &r, err, sizeof(err)), RT_OK, "%s",
               err);
  rt_listener_t *l = NULL;
  cr_assert_eq(sim_replay_listen(r, 0, &l), RT_OK);
  cr_assert_eq(echo_spawn(sim_replay_world(r), l, NULL), RT_OK);
  sim_replay_report_t first, second;
  cr_assert_eq(sim_replay_run(r, 1, &first), SIM_REPLAY_UNTIL, "%s: %s",
               SAID(first));
  cr_assert_eq(sim_replay_run(r, RT_TIME_NEVER, &second),
               SIM_REPLAY_TRACE_ERROR);
  cr_assert(strstr(second.what, "already run") != NULL, "%s", second.what);
  sim_replay_close(r);
}

/* ---- Lost records -------------------------------------------------------- */

Test(sim_replay, a_record_the_writer_refused_is_a_trace_error_at_the_gap) {
  /* The smallest writer buffer (NET_TRACE_BUFFER_BYTES_MIN, 4 KiB) limits a
   * record's payload to the buffer less a record's overhead and room for a
   * LOST record (net_trace.c: payload_max = 4096 - 9 - 29 = 4058 bytes).
   * The echo reads up to 4096 bytes at a time (net_echo.c ECHO_CHUNK), so
   * when 16 KiB wait on the socket its first read returns 4096 bytes, and
   * that READ record (4096 bytes and its fields) is refused with
   * RT_ELIMIT: counted, and a LOST record marks the gap. */
  char dir[TMP_PATH_MAX];
  tmp_path(dir, "rec");
  session_t s;
  plan_t plan = {.buffer_bytes = NET_TRACE_BUFFER_BYTES_MIN,
                 .first_len = BIG_LEN};
  record_session(dir, &plan, &s);
  cr_assert_eq(s.echoed, BIG_LEN);
  cr_assert_gt(s.stats.records_lost, 0);

  sim_replay_report_t rep;
  cr_assert_eq(replay_echo(dir, &rep), SIM_REPLAY_TRACE_ERROR, "%s: %s",
               SAID(rep));
  cr_assert_not_null(strstr(rep.what, "lost"), "%s", rep.what);
  cr_assert_eq(rep.bytes_in, 0, "the lost read was the first");
  cr_assert_eq(rep.accepts, 1);
  cr_assert_neq(rep.context[0], '\0');
  cr_assert_not_null(strstr(rep.context, "LOST"), "%s", rep.context);
}

/* ---- Damaged traces ------------------------------------------------------ */

typedef struct located {
  uint64_t offset; /* in trace-000001.oct */
  uint32_t len;
  uint64_t index;
  uint64_t count; /* records in the trace */
} located_t;

/* The record in the middle of the recording (by index) with a payload. */
static located_t locate_middle(const char *dir) {
  net_trace_reader_t *rd = NULL;
  char err[ERR_CAP] = "";
  cr_assert_eq(net_trace_reader_open(dir, &rd, err, sizeof(err)), RT_OK, "%s",
               err);
  net_trace_record_t rec;
  uint64_t count = 0;
  int rc;
  while (count < RECORDS_MAX && (rc = net_trace_next(rd, &rec)) == 1)
    count++;
  cr_assert_eq(rc, 0, "%s", net_trace_reader_error(rd));
  net_trace_reader_close(rd);
  cr_assert_gt(count, 8);

  cr_assert_eq(net_trace_reader_open(dir, &rd, err, sizeof(err)), RT_OK);
  located_t at = {.count = count};
  bool found = false;
  for (uint64_t i = 0; i < count && !found; i++) {
    cr_assert_eq(net_trace_next(rd, &rec), 1);
    if (i >= count / 2 && rec.len > 0) {
      at.offset = rec.offset;
      at.len = rec.len;
      at.index = rec.index;
      cr_assert_eq(rec.file_seq, 1);
      found = true;
    }
  }
  net_trace_reader_close(rd);
  cr_assert(found);
  return at;
}

static void first_file(char *out, const char *dir) {
  snprintf(out, FILE_PATH_MAX, "%s/trace-000001.oct", dir);
}

Test(sim_replay, a_flipped_byte_is_a_checksum_error_not_a_crash) {
  char dir[TMP_PATH_MAX], file[FILE_PATH_MAX];
  tmp_path(dir, "rec");
  first_file(file, dir);
  session_t s;
  record_echo(dir, &s);
  located_t at = locate_middle(dir);

  /* The first payload byte of that record: its head still checks out, so
   * the reader reads it whole and the CRC-32C finds the damage. */
  FILE *f = fopen(file, "r+b");
  cr_assert_not_null(f);
  long pos = (long)(at.offset + NET_TRACE_RECORD_HEAD);
  cr_assert_eq(fseek(f, pos, SEEK_SET), 0);
  int c = fgetc(f);
  cr_assert_neq(c, EOF);
  cr_assert_eq(fseek(f, pos, SEEK_SET), 0);
  cr_assert_neq(fputc(c ^ 0x10, f), EOF);
  cr_assert_eq(fclose(f), 0);

  sim_replay_report_t rep;
  cr_assert_eq(replay_echo(dir, &rep), SIM_REPLAY_TRACE_ERROR, "%s: %s",
               SAID(rep));
  cr_assert_not_null(strstr(rep.what, "checksum"), "%s", rep.what);
  char idx[32];
  snprintf(idx, sizeof(idx), "record %" PRIu64, at.index);
  cr_assert_not_null(strstr(rep.what, idx), "want %s in: %s", idx, rep.what);
  /* Everything before the damage was replayed. */
  cr_assert_eq(rep.records, at.index, "records %" PRIu64, rep.records);
}

Test(sim_replay, a_cut_trace_is_a_trace_error_that_says_truncated) {
  char dir[TMP_PATH_MAX], file[FILE_PATH_MAX];
  tmp_path(dir, "rec");
  first_file(file, dir);
  session_t s;
  record_echo(dir, &s);
  located_t at = locate_middle(dir);

  /* Cut inside the record, past its head: a crash mid-write looks so. */
  cr_assert_eq(truncate(file, (off_t)(at.offset + NET_TRACE_RECORD_HEAD + 2)),
               0, "truncate: %s", strerror(errno));
  sim_replay_report_t rep;
  cr_assert_eq(replay_echo(dir, &rep), SIM_REPLAY_TRACE_ERROR, "%s: %s",
               SAID(rep));
  cr_assert_not_null(strstr(rep.what, "truncated"), "%s", rep.what);
  cr_assert_eq(rep.records, at.index);

  /* Cut at the record's first byte: no END, the same verdict. */
  cr_assert_eq(truncate(file, (off_t)at.offset), 0);
  cr_assert_eq(replay_echo(dir, &rep), SIM_REPLAY_TRACE_ERROR, "%s: %s",
               SAID(rep));
  cr_assert_not_null(strstr(rep.what, "truncated"), "%s", rep.what);
  cr_assert_eq(rep.records, at.index);
}

Test(sim_replay, opening_what_is_not_a_live_recording_fails_with_a_sentence) {
  sim_replay_t *r = NULL;
  char err[ERR_CAP];
  char path[TMP_PATH_MAX];

  tmp_path(path, "missing");
  strcpy(err, "");
  int rc = sim_replay_open(path, NULL, &r, err, sizeof(err));
  cr_assert_lt(rc, 0);
  cr_assert_null(r);
  cr_assert_gt(strlen(err), 10, "err: '%s'", err);
  cr_assert_not_null(strstr(err, "missing"), "%s", err);

  /* Not a trace at all. */
  tmp_path(path, "junk.oct");
  FILE *f = fopen(path, "wb");
  cr_assert_not_null(f);
  fputs("this is not a trace file, just some text long enough\n", f);
  cr_assert_eq(fclose(f), 0);
  strcpy(err, "");
  cr_assert_lt(sim_replay_open(path, NULL, &r, err, sizeof(err)), 0);
  cr_assert_null(r);
  cr_assert_gt(strlen(err), 10, "err: '%s'", err);

  /* A simulated run's trace: replayed from its seed, not here. */
  char dir[TMP_PATH_MAX];
  tmp_path(dir, "sim");
  net_trace_header_t hdr = {.flags = NET_RECORD_F_SIM, .seed = 3};
  net_trace_writer_t *wr = NULL;
  cr_assert_eq(net_trace_writer_open(dir, &hdr, 0, &wr, err, sizeof(err)),
               RT_OK, "%s", err);
  cr_assert_eq(net_trace_writer_close(wr, NULL, err, sizeof(err)), RT_OK);
  strcpy(err, "");
  cr_assert_eq(sim_replay_open(dir, NULL, &r, err, sizeof(err)), RT_EINVAL);
  cr_assert_null(r);
  cr_assert_not_null(strstr(err, "simulated"), "%s", err);
}
