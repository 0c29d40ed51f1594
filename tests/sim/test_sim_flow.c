/* test_sim_flow.c: flow control, faults and liveness, end to end.
 *
 * Each test is a named scenario run by simrun (sim/simrun.h): the
 * whole server in the simulated world, players that are sim_bots speaking
 * the real protocol, the run's invariant checks on every 100 ms of virtual
 * time and its liveness checks at the end. A scenario sets up its players
 * (some driven by their brains, some by the test: `manual`), runs, and
 * asserts the outcome it is about. simrun_finish must pass in every one:
 * whatever else happened, every check held.
 *
 * Timings: countdown 1 s, 10 s games, golden cookies every 2-3 s, 2 s
 * grace, 3 s write wait (PROTOCOL.md's are 5, 60, 5-10, 10 and 10 s), links
 * with 5 ms latency each way and no jitter unless a test says otherwise.
 *
 * A failing check prints the seed, the command that replays the test and
 * the run's first violation. OC_SEED=<n> replaces a test's seed;
 * OC_SIM_LOG=<level> (0 debug .. 3 error) turns the world's log on.
 *
 * The swarm here is small for CI (SWARM_SEEDS seeds). The nightly run is
 *   tools/overcookied-sim --seed 1 --swarm 1000 --jobs 2
 * (40 players, 120 s each, PROTOCOL.md's rules, faults and mix drawn from
 * each seed).
 */
#include "game.h"
#include "game_check.h"
#include "game_int.h"
#include "net_server.h"
#include "rt_stream.h"
#include "sim_bot.h"
#include "simrun.h"

#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MS RT_NS_PER_MS
#define SEC RT_NS_PER_S
#define LAT (5 * MS)
#define SWARM_SEEDS 24u
#define RECORDS 16384u

/* ---- The fixture --------------------------------------------------------- */

typedef struct flow {
  const char *name;
  uint64_t seed;
  simrun_config_t cfg;
  simrun_t *run;
} flow_t;

static void flow_report(const flow_t *f, const char *what, const char *file,
                        int line) {
  const char *v = f->run != NULL ? simrun_failure(f->run) : NULL;
  fprintf(stderr,
          "\n%s:%d: sim_flow/%s failed at t=%.6f: %s\n"
          "  seed=%" PRIu64 "; replay: OC_SEED=%" PRIu64
          " build/bin/test_sim_flow --filter 'sim_flow/%s'\n"
          "  first violation: %s\n",
          file, line, f->name,
          f->run != NULL
              ? (double)rt_now(sim_world_rt(simrun_world(f->run))) / SEC
              : 0.0,
          what, f->seed, f->seed, f->name, v != NULL ? v : "(none)");
}

#define CHECK(f, cond, ...)                                                    \
  do {                                                                         \
    if (!(cond)) {                                                             \
      flow_report((f), #cond, __FILE__, __LINE__);                             \
      cr_assert_fail(__VA_ARGS__);                                             \
    }                                                                          \
  } while (0)

static void flow_init(flow_t *f, const char *name, uint64_t seed) {
  memset(f, 0, sizeof(*f));
  f->name = name;
  f->seed = seed;
  const char *env = getenv("OC_SEED");
  if (env != NULL && *env != '\0')
    f->seed = strtoull(env, NULL, 10);
  simrun_config_default(&f->cfg);
  f->cfg.seed = f->seed;
  const char *log = getenv("OC_SIM_LOG"); /* 0 debug .. 3 error */
  if (log != NULL && *log != '\0')
    f->cfg.log_level = atoi(log);
  f->cfg.players = 0;
  f->cfg.duration = 30 * SEC;
  f->cfg.game.countdown = 1 * SEC;
  f->cfg.game.game_seconds = 10;
  f->cfg.game.golden_min_s = 2;
  f->cfg.game.golden_max_s = 3;
  f->cfg.game.reconnect_grace = 2 * SEC;
  f->cfg.game.write_wait = 3 * SEC;
}

static void flow_start(flow_t *f) {
  CHECK(f, simrun_create(&f->cfg, &f->run) == RT_OK, "simrun_create");
}

static void flow_free(flow_t *f) { simrun_destroy(f->run); }

static rt_time_ns now_of(flow_t *f) {
  return rt_now(sim_world_rt(simrun_world(f->run)));
}

static void run_to(flow_t *f, rt_time_ns t) {
  CHECK(f, simrun_run_to(f->run, t) == 0, "a check failed before t=%.3f",
        (double)t / SEC);
}

static void finish(flow_t *f) {
  CHECK(f, simrun_finish(f->run) == 0, "the run's checks failed: %s",
        simrun_failure(f->run));
}

/* A player who plays `games` games at `rate` clicks a second. */
static simrun_player_t plan(double rate, uint32_t games) {
  simrun_player_t p;
  memset(&p, 0, sizeof(p));
  p.kind = SIMRUN_CLICKER;
  p.up.latency = p.down.latency = LAT;
  p.click_rate = rate;
  p.games_max = games;
  p.no_faults = true;
  p.keep_records = true;
  p.records_max = RECORDS;
  return p;
}

static uint32_t add(flow_t *f, const simrun_player_t *p) {
  uint32_t i = 0;
  CHECK(f, simrun_add_player(f->run, p, &i) == RT_OK, "add player");
  return i;
}

static void view(flow_t *f, uint32_t i, simrun_player_view_t *v) {
  simrun_player_view(f->run, i, v);
}

static uint32_t count_of(flow_t *f, uint32_t i, sim_bot_kind_t kind) {
  sim_bot_t *b = simrun_bot(f->run, i);
  return b != NULL ? sim_bot_count(b, kind) : 0;
}

/* Run in steps of `step` until player i has n records of kind (or fail). */
static sim_bot_record_t wait_kind(flow_t *f, uint32_t i, sim_bot_kind_t kind,
                                  uint32_t n, rt_time_ns deadline) {
  while (count_of(f, i, kind) < n && now_of(f) < deadline)
    run_to(f, now_of(f) + MS);
  CHECK(f, count_of(f, i, kind) >= n, "p%u never got %s #%u by %.3f s", i,
        sim_bot_kind_name(kind), n, (double)deadline / SEC);
  uint32_t len;
  const sim_bot_record_t *r = sim_bot_records(simrun_bot(f->run, i), &len);
  for (uint32_t k = 0, seen = 0; k < len; k++)
    if (r[k].kind == kind && ++seen == n)
      return r[k];
  cr_assert_fail("unreachable");
  return r[0];
}

static void wait_open(flow_t *f, uint32_t i, rt_time_ns deadline) {
  while ((simrun_bot(f->run, i) == NULL ||
          sim_bot_state(simrun_bot(f->run, i)) != SIM_BOT_OPEN) &&
         now_of(f) < deadline)
    run_to(f, now_of(f) + MS);
  CHECK(f,
        simrun_bot(f->run, i) != NULL &&
            sim_bot_state(simrun_bot(f->run, i)) == SIM_BOT_OPEN,
        "p%u is not connected", i);
}

static game_stats_t stats(flow_t *f) {
  game_stats_t s;
  game_get_stats(simrun_game(f->run), &s);
  return s;
}

/* ---- The fault grammar --------------------------------------------------- */

Test(sim_flow,
     the_fault_grammar_takes_each_key_at_its_limits_and_refuses_the_rest) {
  simrun_faults_t f;
  char why[256];
  cr_assert_eq(simrun_faults_parse("none", &f, why, sizeof(why)), 0);
  cr_assert(f.slow == 0 && f.store == 0 && f.latency == 5 * MS);
  cr_assert_eq(simrun_faults_parse("slow=0.1,stall=0.05,reset=0.02,"
                                   "latency=20ms,jitter=5ms,churn=0.05,"
                                   "store=0.01",
                                   &f, why, sizeof(why)),
               0, "%s", why);
  cr_assert(f.slow == 0.1 && f.stall == 0.05 && f.reset == 0.02 &&
            f.churn == 0.05 && f.store == 0.01);
  cr_assert(f.latency == 20 * MS && f.jitter == 5 * MS);
  /* At, below and above each limit. */
  cr_assert_eq(simrun_faults_parse("store=1", &f, why, sizeof(why)), 0);
  cr_assert_eq(simrun_faults_parse("store=0", &f, why, sizeof(why)), 0);
  cr_assert_eq(simrun_faults_parse("store=1.0001", &f, why, sizeof(why)), -1);
  cr_assert(strstr(why, "probability") != NULL, "%s", why);
  cr_assert_eq(simrun_faults_parse("latency=10s", &f, why, sizeof(why)), 0);
  cr_assert(f.latency == 10 * SEC);
  cr_assert_eq(simrun_faults_parse("latency=10001ms", &f, why, sizeof(why)),
               -1);
  cr_assert_eq(simrun_faults_parse("jitter=0", &f, why, sizeof(why)), 0);
  cr_assert_eq(simrun_faults_parse("jitter=5", &f, why, sizeof(why)), -1,
               "a bare number needs a unit");
  cr_assert_eq(simrun_faults_parse("latency=250us", &f, why, sizeof(why)), 0);
  cr_assert(f.latency == 250 * RT_NS_PER_US);
  /* until=T: the end of the fault phase, a virtual time up to 24 h. */
  cr_assert_eq(simrun_faults_parse("none", &f, why, sizeof(why)), 0);
  cr_assert(f.until == 0, "no end given: the end of the active phase");
  cr_assert_eq(simrun_faults_parse("stall=0.5,until=30s", &f, why, sizeof(why)),
               0, "%s", why);
  cr_assert(f.until == 30 * SEC && f.stall == 0.5);
  cr_assert_eq(simrun_faults_parse("until=86400s", &f, why, sizeof(why)), 0);
  cr_assert_eq(simrun_faults_parse("until=86401s", &f, why, sizeof(why)), -1);
  cr_assert(strstr(why, "virtual time") != NULL, "%s", why);
  cr_assert_eq(simrun_faults_parse("until=90", &f, why, sizeof(why)), -1,
               "a bare number needs a unit");
  const char *bad[] = {"slow",
                       "slow=",
                       "=0.1",
                       "bogus=1",
                       "slow=-1",
                       "slow=0.1,",
                       "slow=0.1,slow=0.2",
                       "slow=x",
                       "latency=5min",
                       "until=",
                       "until=1s,until=2s",
                       "store=0.5e"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    why[0] = '\0';
    cr_assert_eq(simrun_faults_parse(bad[i], &f, why, sizeof(why)), -1,
                 "'%s' parsed", bad[i]);
    cr_assert(why[0] != '\0', "'%s': no message", bad[i]);
  }
  /* What format writes, parse reads back. */
  simrun_faults_t drawn, back;
  char text[SIMRUN_FAULTS_TEXT_MAX];
  uint32_t ends = 0;
  for (uint64_t seed = 1; seed <= 50; seed++) {
    rt_time_ns duration = (seed % 2 ? 120 : 7) * SEC;
    simrun_faults_draw(seed, duration, &drawn);
    simrun_faults_format(&drawn, text, sizeof(text));
    cr_assert_eq(simrun_faults_parse(text, &back, why, sizeof(why)), 0, "%s",
                 why);
    cr_assert(memcmp(&drawn, &back, sizeof(back)) == 0, "%s", text);
    if (drawn.until > 0) {
      ends++;
      cr_assert(drawn.until >= duration / 4 - SEC && drawn.until < duration,
                "seed %" PRIu64 ": until=%" PRId64, seed, (int64_t)drawn.until);
      cr_assert(strstr(text, ",until=") != NULL, "%s", text);
    }
  }
  cr_assert(ends > 10 && ends < 40, "%u of 50 seeds draw a fault end", ends);
}

Test(sim_flow, the_limits_format_as_flags_and_a_swarm_draws_tight_ones) {
  simrun_limits_t l, d;
  simrun_limits_default(&l);
  simrun_limits_default(&d);
  char text[SIMRUN_LIMITS_TEXT_MAX];
  simrun_limits_format(&l, text, sizeof(text));
  cr_assert_str_eq(text, "");
  l.out_count_max = 4;
  l.players_max = 3;
  l.ws_park_ms = 7;
  simrun_limits_format(&l, text, sizeof(text));
  cr_assert_str_eq(text, " --players-max 3 --out-count-max 4 --ws-park-ms 7");
  uint32_t tight = 0, parking = 0;
  for (uint64_t seed = 1; seed <= 100; seed++) {
    simrun_limits_draw(seed, &l);
    if (l.ws_park_ms != d.ws_park_ms) {
      parking++;
      cr_assert(l.ws_park_ms >= 1 && l.ws_park_ms <= 50, "%u", l.ws_park_ms);
    }
    simrun_config_t cfg;
    simrun_config_default(&cfg);
    simrun_limits_apply(&l, &cfg);
    cr_assert_eq(cfg.ws_park_after, (rt_time_ns)l.ws_park_ms * RT_NS_PER_MS);
    l.ws_park_ms = d.ws_park_ms;
    if (memcmp(&l, &d, sizeof(l)) == 0)
      continue;
    tight++;
    cr_assert(l.out_count_max >= 4 && l.out_count_max < d.out_count_max);
    cr_assert(l.link_buffer < d.link_buffer);
    const char *why = NULL;
    cr_assert_eq(game_config_check(&cfg.game, &why), 0, "%s", why);
  }
  cr_assert(tight > 15 && tight < 60, "%u of 100 seeds run tight", tight);
  cr_assert(parking > 15 && parking < 60, "%u of 100 seeds park", parking);
}

/* ---- Flow control -------------------------------------------------------- */

Test(
    sim_flow,
    a_slow_reader_gets_ticks_coalesced_and_drops_counted_and_still_sees_game_over) {
  flow_t f;
  flow_init(&f,
            "a_slow_reader_gets_ticks_coalesced_and_drops_counted_and_"
            "still_sees_game_over",
            501);
  /* 300 B/s cannot carry the opponent's ~2 KB/s of clicks. Frames go to the
   * connection below 2 KiB of backlog (16 KiB by default), so what is in
   * flight stays a few seconds' worth. */
  f.cfg.game.conn_high_water = 2048;
  flow_start(&f);
  simrun_player_t slow = plan(2, 1), fast = plan(20, 1);
  slow.down.bandwidth = 300;
  uint32_t s = add(&f, &slow), q = add(&f, &fast);
  finish(&f);
  simrun_player_view_t vs, vq;
  view(&f, s, &vs);
  view(&f, q, &vq);
  CHECK(&f, vs.games_over == 1 && vq.games_over == 1, "GAME_OVER: %u and %u",
        vs.games_over, vq.games_over);
  CHECK(&f, strcmp(vs.last_over.reason, "time") == 0, "reason %s",
        vs.last_over.reason);
  game_stats_t st = stats(&f);
  /* Droppables were dropped, and counted; ticks were coalesced. */
  CHECK(&f, st.out_dropped > 0, "no drops counted");
  CHECK(&f, st.out_tick_replaced > 0, "no tick replaced");
  CHECK(&f,
        st.kicks[GAME_KICK_WRITE_WAIT] == 0 &&
            st.kicks[GAME_KICK_MUST_OVERFLOW] == 0,
        "slow is not stuck: nobody is cut");
  simrun_summary_t sum;
  simrun_summary(f.run, &sum);
  CHECK(&f, sum.cov[SIMRUN_COV_DROP_BACKPRESSURE] > 0, "coverage");
  flow_free(&f);
}

/* The slow reader's opponent, driven by the test: every click is answered
 * in exactly the two link latencies, and the game ends on time for it. */
Test(sim_flow, the_opponent_of_a_slow_client_sees_no_added_delay) {
  flow_t f;
  flow_init(&f, "the_opponent_of_a_slow_client_sees_no_added_delay", 502);
  f.cfg.game.conn_high_water = 2048;
  flow_start(&f);
  simrun_player_t slow = plan(3, 1), me = plan(0, 0);
  slow.down.bandwidth = 300;
  me.manual = true;
  uint32_t s = add(&f, &slow), m = add(&f, &me);
  (void)s;
  wait_open(&f, m, 5 * SEC);
  sim_bot_t *b = simrun_bot(f.run, m);
  CHECK(&f, sim_bot_join(b) == RT_OK, "join");
  sim_bot_record_t start = wait_kind(&f, m, SIM_BOT_GAME_START, 1, 10 * SEC);
  rt_time_ns t0 = start.at - LAT;
  rt_time_ns t_run = t0 + f.cfg.game.countdown;
  rt_time_ns t_end = t_run + 10 * SEC;
  int role = strcmp(start.role, "p1") == 0 ? 0 : 1;
  /* 25 clicks a second (under the rate limit), with sequence numbers. */
  rt_time_ns sent[512];
  int64_t n = 0;
  for (rt_time_ns t = t_run + 10 * MS; t < t_end - 100 * MS && n < 512;
       t += 40 * MS) {
    run_to(&f, t);
    CHECK(&f, sim_bot_click(b, n) == RT_OK, "click");
    sent[n++] = t;
  }
  sim_bot_record_t over = wait_kind(&f, m, SIM_BOT_GAME_OVER, 1, t_end + SEC);
  CHECK(&f, over.at == t_end + LAT, "GAME_OVER at %.6f, the end is %.6f",
        (double)over.at / SEC, (double)t_end / SEC);
  /* Each click answered exactly 2 latencies later, scoring one point. */
  uint32_t len;
  const sim_bot_record_t *r = sim_bot_records(b, &len);
  int64_t acked = 0;
  int32_t prev = 0;
  for (uint32_t k = 0; k < len; k++) {
    if (r[k].kind != SIM_BOT_UPDATE_CLICK || !r[k].has_seq)
      continue;
    CHECK(&f, r[k].seq == acked && r[k].seq < n, "ack for seq %" PRId64,
          r[k].seq);
    CHECK(&f, r[k].at == sent[r[k].seq] + 2 * LAT,
          "seq %" PRId64 " answered after %.3f ms", r[k].seq,
          (double)(r[k].at - sent[r[k].seq]) / MS);
    int32_t score = role == 0 ? r[k].p1_score : r[k].p2_score;
    CHECK(&f, score == prev + 1, "seq %" PRId64 " scored %d", r[k].seq,
          score - prev);
    prev = score;
    acked++;
  }
  CHECK(&f, acked == n, "%" PRId64 " of %" PRId64 " clicks answered", acked, n);
  CHECK(&f, (role == 0 ? over.p1_score : over.p2_score) == (int32_t)n,
        "final score");
  /* Meanwhile the slow one was under pressure. */
  CHECK(&f, stats(&f).out_dropped > 0, "the slow client dropped nothing");
  finish(&f);
  flow_free(&f);
}

/* Players a (driven by the test: a brain would notice its connection end,
 * its own writes failing once the server closed, and come back) and b (20
 * clicks a second) start a game; a stops reading as it runs. Returns when
 * a was cut for the write wait (0: not within 20 s); *t_run: the stall. */
static rt_time_ns stall_until_cut(flow_t *f, uint32_t *a, uint32_t *b,
                                  rt_time_ns *t_run) {
  simrun_player_t stalled = plan(0, 0), opponent = plan(20, 1);
  stalled.manual = true;
  *a = add(f, &stalled);
  *b = add(f, &opponent);
  wait_open(f, *a, 5 * SEC);
  CHECK(f, sim_bot_join(simrun_bot(f->run, *a)) == RT_OK, "join");
  sim_bot_record_t start = wait_kind(f, *a, SIM_BOT_GAME_START, 1, 10 * SEC);
  *t_run = start.at - LAT + f->cfg.game.countdown;
  run_to(f, *t_run);
  CHECK(f, sim_bot_set_reading(simrun_bot(f->run, *a), false) == RT_OK,
        "stall");
  while (now_of(f) < *t_run + 20 * SEC) {
    run_to(f, now_of(f) + MS);
    if (stats(f).kicks[GAME_KICK_WRITE_WAIT] > 0)
      return now_of(f);
  }
  return 0;
}

/* After the cut: b wins by opponent_disconnected; a, reading again, finds
 * the close frame, 1008, and never saw a GAME_OVER. */
static void check_after_cut(flow_t *f, uint32_t a, uint32_t b,
                            rt_time_ns kicked_at) {
  sim_bot_record_t over =
      wait_kind(f, b, SIM_BOT_GAME_OVER, 1, kicked_at + 10 * SEC);
  simrun_player_view_t va, vb;
  view(f, a, &va);
  view(f, b, &vb);
  CHECK(f,
        strcmp(over.winner, vb.user_id) == 0 &&
            strcmp(over.reason, "opponent_disconnected") == 0,
        "winner %s by %s", over.winner, over.reason);
  net_server_stats_t ns;
  net_server_get_stats(simrun_server(f->run), &ns);
  CHECK(f, ns.ws_close_codes[net_server_close_code_index(1008)] == 1,
        "one 1008 close");
  CHECK(f, sim_bot_set_reading(simrun_bot(f->run, a), true) == RT_OK, "read");
  sim_bot_record_t closed =
      wait_kind(f, a, SIM_BOT_CLOSED, 1, now_of(f) + 2 * SEC);
  CHECK(f, closed.code == 1008, "closed with %u", closed.code);
  CHECK(f, va.games_over == 0, "too late for the stalled one");
}

Test(
    sim_flow,
    a_stalled_reader_is_cut_after_the_write_wait_with_1008_and_its_opponent_wins) {
  flow_t f;
  flow_init(&f,
            "a_stalled_reader_is_cut_after_the_write_wait_with_1008_and_"
            "its_opponent_wins",
            503);
  f.cfg.game.conn_high_water = 2048;
  f.cfg.game.game_seconds = 30; /* long enough to end otherwise */
  f.cfg.duration = 60 * SEC;
  flow_start(&f);
  uint32_t a, b;
  rt_time_ns t_run, kicked_at = stall_until_cut(&f, &a, &b, &t_run);
  /* Cut once its output made no progress for the write wait (the queue
   * starts waiting when it first backs up, shortly after the stall). */
  CHECK(&f,
        kicked_at >= t_run + f.cfg.game.write_wait &&
            kicked_at <= t_run + f.cfg.game.write_wait + 2 * SEC,
        "cut %.3f s after the stall", (double)(kicked_at - t_run) / SEC);
  check_after_cut(&f, a, b, kicked_at);
  finish(&f);
  flow_free(&f);
}

/* The same stall behind a link that buffers a megabyte, as kernels on
 * loopback do: nothing backs up in the server for the whole game, so only
 * the probes' missing pongs show the stall, and the cut comes the write
 * wait after the last pong, not when the buffers are full. */
Test(sim_flow,
     a_stalled_reader_behind_deep_buffers_is_cut_after_the_write_wait) {
  flow_t f;
  flow_init(&f,
            "a_stalled_reader_behind_deep_buffers_is_cut_after_the_write_wait",
            517);
  f.cfg.link_buffer = 1u << 20;
  f.cfg.game.game_seconds = 30;
  f.cfg.duration = 60 * SEC;
  flow_start(&f);
  uint32_t a, b;
  rt_time_ns t_run, kicked_at = stall_until_cut(&f, &a, &b, &t_run);
  /* The last pong came at most a probe period (1 s) before the stall, and
   * the cut comes with the first frame after the write wait (a tick a
   * second, and the opponent's clicks). */
  CHECK(&f,
        kicked_at >= t_run + f.cfg.game.write_wait - SEC &&
            kicked_at <= t_run + f.cfg.game.write_wait + SEC,
        "cut %.3f s after the stall", (double)(kicked_at - t_run) / SEC);
  game_stats_t st = stats(&f);
  CHECK(&f, st.out_dropped == 0, "nothing backed up: %" PRIu64 " dropped",
        st.out_dropped);
  check_after_cut(&f, a, b, kicked_at);
  finish(&f);
  flow_free(&f);
}

/* A manual player on a 300 B/s downlink (*s) joins, and is matched with a
 * clicker of 20 a second for one game (*o): its GAME_START. */
static sim_bot_record_t slow_reader_plays(flow_t *f, uint32_t *s, uint32_t *o) {
  simrun_player_t slow = plan(0, 0), opponent = plan(20, 1);
  slow.manual = true;
  slow.down.bandwidth = 300;
  *s = add(f, &slow);
  *o = add(f, &opponent);
  wait_open(f, *s, 5 * SEC);
  CHECK(f, sim_bot_join(simrun_bot(f->run, *s)) == RT_OK, "join");
  return wait_kind(f, *s, SIM_BOT_GAME_START, 1, 10 * SEC);
}

/* A slow reader closes mid-game while output waits for it: the close
 * handshake ends its connection (not the write wait: nobody is cut), the
 * grace runs out and its opponent wins. */
Test(sim_flow, a_slow_reader_that_closes_mid_game_loses_and_is_not_cut) {
  flow_t f;
  flow_init(&f, "a_slow_reader_that_closes_mid_game_loses_and_is_not_cut", 509);
  f.cfg.game.conn_high_water = 2048;
  flow_start(&f);
  uint32_t s, o;
  sim_bot_record_t start = slow_reader_plays(&f, &s, &o);
  run_to(&f, start.at + 5 * SEC); /* its output backs up meanwhile */
  CHECK(&f,
        sim_bot_disconnect(simrun_bot(f.run, s), SIM_BOT_CLOSE_HANDSHAKE) ==
            RT_OK,
        "close");
  sim_bot_record_t over =
      wait_kind(&f, o, SIM_BOT_GAME_OVER, 1, now_of(&f) + 15 * SEC);
  simrun_player_view_t vo;
  view(&f, o, &vo);
  CHECK(&f,
        strcmp(over.reason, "opponent_disconnected") == 0 &&
            strcmp(over.winner, vo.user_id) == 0,
        "winner %s by %s", over.winner, over.reason);
  game_stats_t st = stats(&f);
  CHECK(&f, st.kicks[GAME_KICK_WRITE_WAIT] == 0, "cut as if stuck");
  finish(&f);
  flow_free(&f);
}

/* Seed 39439 of the swarm: a slow reader's game ends while the last of its
 * output (up to conn_high_water, 16 KiB) is still on its 300 B/s link,
 * nearly a minute of it. The server does not cut a reader that reads,
 * however slowly, so its GAME_OVER comes after L1's bound, which the
 * check forgives. A JOIN_QUEUE the player sends meanwhile (it believes it
 * still plays: an abuser's "ignored while playing") finds the game over
 * and queues it, with nobody left to match it; that is forgiven too. */
Test(sim_flow,
     a_slow_reader_queued_while_its_game_over_is_on_the_wire_is_live) {
  flow_t f;
  flow_init(&f,
            "a_slow_reader_queued_while_its_game_over_is_on_the_wire_is_live",
            512);
  flow_start(&f);
  uint32_t s, o;
  (void)slow_reader_plays(&f, &s, &o);
  sim_bot_t *b = simrun_bot(f.run, s);
  sim_bot_record_t over = wait_kind(&f, o, SIM_BOT_GAME_OVER, 1, 30 * SEC);
  run_to(&f, over.at + SEC);
  CHECK(&f, count_of(&f, s, SIM_BOT_GAME_OVER) == 0, "the end came early");
  CHECK(&f, sim_bot_join(b) == RT_OK, "join again");
  run_to(&f, simrun_l1(f.run) - MS);
  CHECK(&f, stats(&f).queued == 1, "%u queued", stats(&f).queued);
  CHECK(&f, count_of(&f, s, SIM_BOT_GAME_OVER) == 0,
        "the end came before L1: the case is not made");
  finish(&f);
  flow_free(&f);
}

/* The same queued player on a healthy link is a liveness failure, named. */
Test(sim_flow, the_liveness_check_catches_a_player_left_queued) {
  flow_t f;
  flow_init(&f, "the_liveness_check_catches_a_player_left_queued", 513);
  flow_start(&f);
  simrun_player_t alone = plan(0, 0);
  alone.manual = true;
  uint32_t a = add(&f, &alone);
  wait_open(&f, a, 5 * SEC);
  CHECK(&f, sim_bot_join(simrun_bot(f.run, a)) == RT_OK, "join");
  cr_assert_eq(simrun_finish(f.run), -1, "a player left queued passed");
  simrun_player_view_t v;
  view(&f, a, &v);
  cr_assert(strstr(simrun_failure(f.run), "1 players still queued at L1") !=
                    NULL &&
                strstr(simrun_failure(f.run), v.user_id) != NULL,
            "%s", simrun_failure(f.run));
  flow_free(&f);
}

Test(sim_flow, a_must_deliver_overflow_disconnects_with_1008) {
  flow_t f;
  flow_init(&f, "a_must_deliver_overflow_disconnects_with_1008", 504);
  /* The flood guard would cut these 1,500 frames first (a test of its own
   * in tests/game); here they must reach the Client. */
  f.cfg.game.in_rate = 1000000;
  f.cfg.game.in_burst = 1000000;
  flow_start(&f);
  simrun_player_t me = plan(0, 0);
  me.manual = true;
  uint32_t m = add(&f, &me);
  wait_open(&f, m, 5 * SEC);
  sim_bot_t *b = simrun_bot(f.run, m);
  CHECK(&f, sim_bot_set_reading(b, false) == RT_OK, "stall");
  /* Each bad frame earns an ERROR, which is never dropped. Once the link
   * and the connection hold their fill, the Client's queue takes 64 more;
   * the next one cannot fit: 1008 at once, not after the write wait. */
  rt_time_ns began = now_of(&f);
  for (int i = 0; i < 1500 && stats(&f).kicks[GAME_KICK_MUST_OVERFLOW] == 0;
       i++) {
    CHECK(&f, sim_bot_send(b, "{oops", 5) == RT_OK, "send");
    if (i % 50 == 49)
      run_to(&f, now_of(&f) + MS);
  }
  run_to(&f, now_of(&f) + 20 * MS);
  game_stats_t st = stats(&f);
  CHECK(&f, st.kicks[GAME_KICK_MUST_OVERFLOW] == 1, "%" PRIu64 " kicks",
        st.kicks[GAME_KICK_MUST_OVERFLOW]);
  CHECK(&f,
        st.kicks[GAME_KICK_WRITE_WAIT] == 0 &&
            now_of(&f) - began < f.cfg.game.write_wait,
        "cut by the overflow, before the write wait");
  CHECK(&f, sim_bot_set_reading(b, true) == RT_OK, "read");
  sim_bot_record_t closed =
      wait_kind(&f, m, SIM_BOT_CLOSED, 1, now_of(&f) + 5 * SEC);
  CHECK(&f, closed.code == 1008, "closed with %u", closed.code);
  CHECK(&f, count_of(&f, m, SIM_BOT_ERROR) > 64, "%u ERRORs first",
        count_of(&f, m, SIM_BOT_ERROR));
  finish(&f);
  flow_free(&f);
}

/* ---- Faults -------------------------------------------------------------- */

Test(sim_flow, a_reset_mid_frame_drops_the_connection_and_the_player_resumes) {
  flow_t f;
  flow_init(&f,
            "a_reset_mid_frame_drops_the_connection_and_the_player_"
            "resumes",
            505);
  flow_start(&f);
  simrun_player_t p = plan(4, 1);
  uint32_t a = add(&f, &p), b = add(&f, &p);
  (void)b;
  sim_bot_record_t start = wait_kind(&f, a, SIM_BOT_GAME_START, 1, 10 * SEC);
  rt_time_ns t_run = start.at - LAT + f.cfg.game.countdown;
  run_to(&f, t_run + 3 * SEC);
  sim_bot_t *bot = simrun_bot(f.run, a);
  uint32_t before;
  (void)sim_bot_records(bot, &before);
  /* The next frame down (a tick or a click update, tens of bytes) is cut
   * after 7 of its bytes: the pipe resets mid-frame. */
  CHECK(&f, sim_bot_reset_in(bot, 7) == RT_OK, "arm");
  sim_bot_record_t closed =
      wait_kind(&f, a, SIM_BOT_CLOSED, 1, now_of(&f) + 2 * SEC);
  CHECK(&f, closed.code == 1006 && closed.conn == 1, "closed %u on %u",
        closed.code, closed.conn);
  uint32_t after;
  const sim_bot_record_t *r = sim_bot_records(bot, &after);
  for (uint32_t k = before; k < after; k++)
    CHECK(&f,
          r[k].kind == SIM_BOT_CLOSED || r[k].kind == SIM_BOT_OPENED ||
              r[k].conn == 1,
          "nothing of the cut frame was parsed");
  net_server_stats_t ns;
  net_server_get_stats(simrun_server(f.run), &ns);
  CHECK(&f, ns.closes[NET_CLOSE_RESET] >= 1, "the server saw the reset");
  /* The brain comes back within the grace: resumed, then the game ends by
   * time for both. */
  sim_bot_record_t back =
      wait_kind(&f, a, SIM_BOT_GAME_START, 2, now_of(&f) + 5 * SEC);
  CHECK(&f, back.resumed && back.conn == 2, "resumed on connection 2");
  finish(&f);
  simrun_player_view_t va, vb;
  view(&f, a, &va);
  view(&f, b, &vb);
  CHECK(&f, va.games_over == 1 && vb.games_over == 1, "both saw the end");
  CHECK(&f,
        strcmp(va.last_over.reason, "time") == 0 &&
            strcmp(vb.last_over.reason, "time") == 0,
        "ended by time");
  CHECK(&f, stats(&f).resumed == 1, "one resume");
  flow_free(&f);
}

Test(sim_flow, a_storage_outage_during_game_end_loses_nothing) {
  flow_t f;
  flow_init(&f, "a_storage_outage_during_game_end_loses_nothing", 506);
  /* Every game ends around 1 + 10 s; the Store fails every operation from
   * 10 s to 19 s: longer than a Room's 5 s resend, so results arrive twice
   * and are stored once. */
  f.cfg.faults.store_down_from = 10 * SEC;
  f.cfg.faults.store_down_until = 19 * SEC;
  flow_start(&f);
  const uint32_t players = 12;
  for (uint32_t i = 0; i < players; i++) {
    simrun_player_t p = plan(3 + i % 4, 1);
    p.arrive_at = (rt_time_ns)i * 10 * MS;
    add(&f, &p);
  }
  run_to(&f, 18 * SEC);
  CHECK(&f, stats(&f).rooms == players / 2, "every game waits for the Store");
  for (uint32_t i = 0; i < players; i++)
    CHECK(&f, count_of(&f, i, SIM_BOT_GAME_OVER) == 0,
          "p%u saw GAME_OVER before its game was stored", i);
  finish(&f);
  game_store_stats_t ss;
  game_store_get_stats(game_store(simrun_game(f.run)), &ss);
  simrun_summary_t sum;
  simrun_summary(f.run, &sum);
  CHECK(&f, ss.errors_busy + ss.errors_full + ss.errors_io > 0, "errors");
  CHECK(&f, ss.resends_merged > 0 && ss.duplicates == 0,
        "a resent result joins the waiting one: merged %" PRIu64
        ", duplicates %" PRIu64,
        ss.resends_merged, ss.duplicates);
  CHECK(&f, ss.recorded == players / 2 && sum.games_stored == players / 2,
        "recorded %" PRIu64 ", rows %" PRIu64, ss.recorded, sum.games_stored);
  CHECK(&f, sum.game_overs_seen == players, "%" PRIu64 " GAME_OVERs seen",
        sum.game_overs_seen);
  for (uint32_t i = 0; i < players; i++) {
    simrun_player_view_t v;
    view(&f, i, &v);
    CHECK(&f, v.games_over == 1 && v.last_over.at >= 19 * SEC,
          "p%u: %u GAME_OVERs, the last at %.3f", i, v.games_over,
          (double)v.last_over.at / SEC);
  }
  flow_free(&f);
}

/* ---- The checks themselves can fail -------------------------------------- */

Test(sim_flow, the_checks_catch_a_room_the_manager_lost_and_a_lost_count) {
  flow_t f;
  flow_init(&f, "the_checks_catch_a_room_the_manager_lost_and_a_lost_count",
            507);
  flow_start(&f);
  simrun_player_t p = plan(3, 1);
  add(&f, &p);
  add(&f, &p);
  run_to(&f, 5 * SEC);
  game_t *g = simrun_game(f.run);
  char why[256];
  CHECK(&f, game_check(g, why, sizeof(why)) == 0, "%s", why);
  /* Hide the running room from the registry: the Manager's table no
   * longer matches the live actors. */
  cr_assert_eq(g->rooms_live.count, 1);
  uint32_t n;
  uint64_t *ids = rt_idmap_sorted_keys(&g->rooms_live, &n);
  void *room = rt_idmap_del(&g->rooms_live, ids[0]);
  cr_assert_eq(game_check(g, why, sizeof(why)), -1);
  cr_assert(strstr(why, "no such room runs") != NULL, "%s", why);
  cr_assert_eq(simrun_check(f.run), -1, "the run's check sees it too");
  cr_assert(strstr(simrun_failure(f.run), "game:") != NULL);
  cr_assert_eq(rt_idmap_put(&g->rooms_live, ids[0], room), 0);
  free(ids);
  /* A started room that is neither running nor finished. */
  g->stats.rooms_started++;
  cr_assert_eq(game_check(g, why, sizeof(why)), -1);
  cr_assert(strstr(why, "started") != NULL, "%s", why);
  g->stats.rooms_started--;
  cr_assert_eq(game_check(g, why, sizeof(why)), 0, "%s", why);
  flow_free(&f);
}

Test(sim_flow, the_checks_also_run_after_every_n_deliveries) {
  flow_t f;
  flow_init(&f, "the_checks_also_run_after_every_n_deliveries", 509);
  f.cfg.check_every = 3600 * SEC; /* no check by virtual time */
  f.cfg.check_deliveries = UINT64_MAX / 2;
  flow_start(&f);
  simrun_player_t p = plan(8, 1);
  add(&f, &p);
  add(&f, &p);
  run_to(&f, 3 * SEC);
  game_t *g = simrun_game(f.run);
  /* A started room that is neither running nor finished: no check runs in
   * the next second, so nothing notices. */
  g->stats.rooms_started++;
  run_to(&f, 6 * SEC);
  simrun_summary_t s;
  simrun_summary(f.run, &s);
  CHECK(&f, s.checks_by_deliveries == 0, "%" PRIu64, s.checks_by_deliveries);
  flow_free(&f);

  /* The same run checked after every 50 deliveries sees it at once. */
  flow_init(&f, "the_checks_also_run_after_every_n_deliveries", 509);
  f.cfg.check_every = 3600 * SEC;
  f.cfg.check_deliveries = 50;
  flow_start(&f);
  add(&f, &p);
  add(&f, &p);
  run_to(&f, 3 * SEC);
  simrun_summary(f.run, &s);
  uint64_t checks = s.checks_by_deliveries, at = s.deliveries;
  CHECK(&f, at > 100 && checks >= at / 50 - 1 && checks <= at / 50,
        "%" PRIu64 " checks in %" PRIu64 " deliveries", checks, at);
  g = simrun_game(f.run);
  g->stats.rooms_started++;
  cr_assert_eq(simrun_run_to(f.run, 6 * SEC), -1, "the broken count passed");
  simrun_summary(f.run, &s);
  cr_assert(strstr(s.failure, "started") != NULL, "%s", s.failure);
  cr_assert(s.deliveries - at <= 50 + RT_BATCH_DEFAULT,
            "noticed %" PRIu64 " deliveries later", s.deliveries - at);
  g->stats.rooms_started--;
  flow_free(&f);
}

/* The count of deliveries that may pass unchecked starts again at every
 * check: when checks by time come before check_deliveries deliveries
 * have passed, none is needed by deliveries; when they stop coming, one
 * is. The gap between two checks never exceeds check_deliveries plus a
 * turn's batch. */
Test(sim_flow, any_check_restarts_the_count_of_deliveries) {
  flow_t f;
  flow_init(&f, "any_check_restarts_the_count_of_deliveries", 511);
  f.cfg.check_every = 10 * MS;
  f.cfg.check_deliveries = 100;
  flow_start(&f);
  simrun_player_t p = plan(8, 1);
  for (int i = 0; i < 8; i++)
    add(&f, &p);
  run_to(&f, 8 * SEC);
  simrun_summary_t s;
  simrun_summary(f.run, &s);
  /* Eight players clicking make a few deliveries in 10 ms and a few
   * hundred a second: counted from the last check by deliveries alone,
   * a dozen checks or more would have been. */
  CHECK(&f, s.deliveries > 12 * 100, "%" PRIu64 " deliveries", s.deliveries);
  CHECK(&f, s.checks_by_deliveries == 0, "%" PRIu64 " checks by deliveries",
        s.checks_by_deliveries);
  flow_free(&f);

  /* Checks by time once an hour: those by deliveries take over, one after
   * every 100 deliveries (a turn's batch more at most). */
  flow_init(&f, "any_check_restarts_the_count_of_deliveries", 511);
  f.cfg.check_every = 3600 * SEC;
  f.cfg.check_deliveries = 100;
  flow_start(&f);
  for (int i = 0; i < 8; i++)
    add(&f, &p);
  run_to(&f, 8 * SEC);
  simrun_summary(f.run, &s);
  CHECK(&f,
        s.checks_by_deliveries >= s.deliveries / (100 + RT_BATCH_DEFAULT) &&
            s.checks_by_deliveries <= s.deliveries / 100,
        "%" PRIu64 " checks in %" PRIu64 " deliveries", s.checks_by_deliveries,
        s.deliveries);
  flow_free(&f);
}

/* And the virtual time that may pass unchecked starts again at every check:
 * checks by deliveries coming more often than check_every leave no check by
 * time to do, while the run still stops every check_every (the same run,
 * hash and all, as one that checks there). */
Test(sim_flow, any_check_restarts_the_count_of_time) {
  flow_t f;
  simrun_player_t p = plan(8, 1);
  simrun_summary_t s[2];
  for (int k = 0; k < 2; k++) {
    flow_init(&f, "any_check_restarts_the_count_of_time", 514);
    f.cfg.check_every = 100 * MS;
    /* Eight players clicking make a few hundred deliveries a second: the
     * first run checks after every 5, the second after the default. */
    if (k == 0)
      f.cfg.check_deliveries = 5;
    flow_start(&f);
    for (int i = 0; i < 8; i++)
      add(&f, &p);
    run_to(&f, 12 * SEC);
    simrun_summary(f.run, &s[k]);
    flow_free(&f);
  }
  uint64_t by_time = s[0].checks - s[0].checks_by_deliveries;
  cr_assert(s[0].checks_by_deliveries > 120, "%" PRIu64 " checks",
            s[0].checks_by_deliveries);
  /* 120 instants of checking by time in 12 s: those with traffic in the
   * 100 ms before them need none. */
  cr_assert(by_time < 60, "%" PRIu64 " checks by time", by_time);
  cr_assert(s[1].checks - s[1].checks_by_deliveries >= 110,
            "%" PRIu64 " checks by time at the default",
            s[1].checks - s[1].checks_by_deliveries);
  cr_assert_eq(s[0].hash, s[1].hash, "checking changed the run");
  cr_assert_eq(s[0].deliveries, s[1].deliveries);
}

/* A bot counts, and does not keep, the messages a brain does nothing with
 * (click and tick UPDATEs, OPPONENT_CLICK): no record of theirs is written
 * or read, and none makes a brain look. A look with nothing due does
 * nothing, so the run is the same as with every record kept, and so is the
 * count of what the players received. */
Test(sim_flow, messages_counted_not_kept_leave_the_run_as_it_was) {
  flow_t f;
  simrun_player_t p = plan(8, 1);
  p.keep_records = false; /* as the swarm's players: records read, then gone */
  simrun_summary_t s[2];
  for (int k = 0; k < 2; k++) {
    flow_init(&f, "messages_counted_not_kept_leave_the_run_as_it_was", 515);
    f.cfg.keep_all_records = k == 1;
    flow_start(&f);
    for (int i = 0; i < 8; i++)
      add(&f, &p);
    run_to(&f, 90 * SEC); /* the games end, the players leave */
    simrun_summary(f.run, &s[k]);
    flow_free(&f);
  }
  cr_assert_gt(s[0].frames_unkept, 1000, "%" PRIu64 " not kept",
               s[0].frames_unkept);
  cr_assert_eq(s[1].frames_unkept, 0);
  cr_assert_eq(s[0].frames_received, s[1].frames_received,
               "%" PRIu64 " records against %" PRIu64, s[0].frames_received,
               s[1].frames_received);
  cr_assert_eq(s[0].hash, s[1].hash, "not keeping records changed the run");
  cr_assert_eq(s[0].deliveries, s[1].deliveries);
  cr_assert_eq(s[0].games_stored, s[1].games_stored);
  cr_assert_eq(s[0].games_stored, 4, "%" PRIu64 " games", s[0].games_stored);
  cr_assert_eq(s[0].departures, 8, "%" PRIu64 " left", s[0].departures);
}

/* ---- The fault phase's end ----------------------------------------------- */

Test(sim_flow, faults_stop_at_until_and_play_recovers_within_the_bound) {
  flow_t f;
  flow_init(&f, "faults_stop_at_until_and_play_recovers_within_the_bound", 510);
  f.cfg.players = 16;
  f.cfg.duration = 40 * SEC;
  char why[256];
  cr_assert_eq(simrun_faults_parse("stall=0.9,reset=0.6,churn=0.6,store=0.3,"
                                   "until=12s",
                                   &f.cfg.faults, why, sizeof(why)),
               0, "%s", why);
  simrun_mix_t mix;
  simrun_mix_draw(f.seed, &mix);
  flow_start(&f);
  CHECK(&f, simrun_populate(f.run, &mix) == RT_OK, "populate");
  CHECK(&f, simrun_fault_end(f.run) == 12 * SEC, "F");
  CHECK(&f,
        simrun_r1(f.run) < simrun_l1(f.run) &&
            simrun_r2(f.run) < simrun_l2(f.run),
        "recovery deadlines before the final ones");
  run_to(&f, 12 * SEC);
  simrun_summary_t at_f, later;
  simrun_summary(f.run, &at_f);
  CHECK(&f,
        at_f.faults_injected[1] + at_f.faults_injected[2] +
                at_f.faults_injected[3] >
            0,
        "faults before F");
  CHECK(&f, at_f.recovery_rooms > 0, "games running at F");
  run_to(&f, 40 * SEC);
  simrun_summary(f.run, &later);
  for (int i = 1; i < 5; i++)
    CHECK(&f, later.faults_injected[i] == at_f.faults_injected[i],
          "fault %d injected after F: %" PRIu64 " then %" PRIu64, i,
          at_f.faults_injected[i], later.faults_injected[i]);
  CHECK(&f, later.games_started > at_f.games_started, "play went on after F");
  finish(&f);
  simrun_summary(f.run, &later);
  CHECK(&f, later.fault_end == 12 * SEC && later.rooms_lost == 0, "summary");
  flow_free(&f);
}

Test(sim_flow, the_recovery_check_catches_a_room_that_outlives_the_bound) {
  flow_t f;
  flow_init(&f, "the_recovery_check_catches_a_room_that_outlives_the_bound",
            511);
  f.cfg.duration = 60 * SEC;
  f.cfg.faults.until = 5 * SEC;
  f.cfg.check_every = 3600 * SEC; /* the whole-game checks would see the */
  f.cfg.check_deliveries = UINT64_MAX / 2; /* fake room first */
  flow_start(&f);
  simrun_player_t p = plan(3, 1);
  add(&f, &p);
  add(&f, &p);
  run_to(&f, 4 * SEC);
  /* A room that never ends, standing for a Room stuck after the faults. */
  game_t *g = simrun_game(f.run);
  int stuck = 0;
  const uint64_t fake = 0x7fffffffull;
  cr_assert_eq(rt_idmap_put(&g->rooms_live, fake, &stuck), 0);
  run_to(&f, simrun_r1(f.run) - MS);
  cr_assert_eq(simrun_run_to(f.run, simrun_r1(f.run) + MS), -1,
               "a room alive at R1 went unnoticed");
  cr_assert(strstr(simrun_failure(f.run), "running when the faults ended") !=
                NULL,
            "%s", simrun_failure(f.run));
  rt_idmap_del(&g->rooms_live, fake);
  flow_free(&f);
}

static void ignore(rt_actor_t *self, const rt_msg_t *msg) {
  (void)self;
  (void)msg;
}

Test(sim_flow, the_liveness_check_catches_an_actor_left_behind) {
  flow_t f;
  flow_init(&f, "the_liveness_check_catches_an_actor_left_behind", 508);
  f.cfg.duration = 5 * SEC;
  flow_start(&f);
  /* An actor nobody stops, standing for a leaked Client or Room. */
  rt_actor_spec_t spec = {
      .name = "leak", .behaviour = ignore, .mailbox_cap = 1};
  rt_actor_id_t id;
  cr_assert_eq(rt_spawn(sim_world_rt(simrun_world(f.run)), &spec, &id), 0);
  cr_assert_eq(simrun_finish(f.run), -1, "the leak went unnoticed");
  cr_assert(strstr(simrun_failure(f.run), "actors live") != NULL, "%s",
            simrun_failure(f.run));
  flow_free(&f);
}

/* ---- A swarm ------------------------------------------------------------- */

Test(sim_flow, a_swarm_of_seeds_with_random_faults_passes_and_covers_every_path,
     .timeout = 120) {
  uint64_t cov[SIMRUN_COV_COUNT_] = {0};
  uint64_t first = 7000;
  const char *env = getenv("OC_SEED");
  if (env != NULL && *env != '\0')
    first = strtoull(env, NULL, 10);
  for (uint64_t seed = first; seed < first + SWARM_SEEDS; seed++) {
    /* What `overcookied-sim --swarm` runs for this seed, with short games:
     * the replay command below is exact. */
    flow_t f;
    memset(&f, 0, sizeof(f));
    f.name = "a_swarm_of_seeds_with_random_faults_passes_and_covers_every_path";
    f.seed = seed;
    simrun_config_default(&f.cfg);
    f.cfg.seed = seed;
    f.cfg.players = 24;
    f.cfg.duration = 40 * SEC;
    f.cfg.game.game_seconds = 10;
    f.cfg.game.countdown = 1 * SEC;
    simrun_faults_draw(seed, f.cfg.duration, &f.cfg.faults);
    simrun_limits_t limits;
    simrun_limits_draw(seed, &limits);
    simrun_limits_apply(&limits, &f.cfg);
    simrun_mix_t mix;
    simrun_mix_draw(seed, &mix);
    flow_start(&f);
    CHECK(&f, simrun_populate(f.run, &mix) == RT_OK, "populate");
    if (simrun_finish(f.run) != 0) {
      char spec[SIMRUN_FAULTS_TEXT_MAX], flags[SIMRUN_LIMITS_TEXT_MAX];
      simrun_faults_format(&f.cfg.faults, spec, sizeof(spec));
      simrun_limits_format(&limits, flags, sizeof(flags));
      fprintf(stderr,
              "sim_flow swarm: seed %" PRIu64 " failed: %s\n  replay: "
              "tools/overcookied-sim --seed %" PRIu64 " --players 24 "
              "--duration 40s --game-length 10 --countdown 1 --faults '%s'%s\n",
              seed, simrun_failure(f.run), seed, spec, flags);
      cr_assert_fail("seed %" PRIu64 ": %s", seed, simrun_failure(f.run));
    }
    simrun_summary_t s;
    simrun_summary(f.run, &s);
    for (int i = 0; i < SIMRUN_COV_COUNT_; i++)
      cov[i] += s.cov[i];
    flow_free(&f);
  }
  for (int i = 0; i < SIMRUN_COV_ONE_PROCESS_COUNT_; i++)
    cr_expect(cov[i] > 0, "%s never reached in %u seeds",
              simrun_cov_name((simrun_cov_t)i), SWARM_SEEDS);
}
