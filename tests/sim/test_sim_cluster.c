/* test_sim_cluster.c: a cluster of instances in one simulated world.
 *
 * Each test is a named scenario run by simrun (sim/simrun.h) with
 * cfg.instances >= 2: that many servers, each in its own node of the one
 * world on port SIMRUN_PORT + i, sharing a simulated Redis (sim_redis.h)
 * and one in-memory Store (sim/simrun_cluster.c). Players are sim_bots
 * speaking the real protocol; some are driven by their brains, some by the
 * test (`manual`). The run checks its own invariants as it goes, the
 * cluster's among them (simrun_cluster.c, C1-C4): simrun_finish must pass
 * in every scenario, whatever else it asserts.
 *
 * What is proved here, one scenario each (PROTOCOL.md, "Cluster (v2
 * additions)", and game_cluster.h's Guarantees):
 *   - two players on two instances are matched; the one whose game lives
 *     elsewhere gets MOVE naming the owner's port, and follows it;
 *   - an owner that crashes mid-game: its games end stored server_lost
 *     (C3), and their players are told so;
 *   - an instance restarted within its old incarnation's lease answers a
 *     player of that incarnation's game server_lost, never a MOVE to its
 *     own URL (a bug the first seeds found);
 *   - a paused owner that outlives its lease is fenced when it wakes;
 *   - an owner cut off Redis past its lease takes no player back into a
 *     game that the other instance has ended and told the player of;
 *   - Redis restarts, with its data and without, and every Cluster joins
 *     again; a room whose mailbox is full still hears that the data is
 *     gone; the games of an owner that crashes before it hears are
 *     forgotten, not failed;
 *   - an instance cut off Redis answers JOIN_QUEUE matchmaking_unavailable;
 *   - a cluster run is a function of its seed, and one instance runs as
 *     it did before clusters existed (instances 0 and 1 agree).
 *
 * Timings: countdown 1 s, 10 s games, golden cookies every 2-3 s, 2 s
 * grace, 3 s write wait, 3 s lease, links with 5 ms latency each way.
 * Every test has the same .timeout: Criterion 2.4.1's runner leaks under
 * LeakSanitizer when a test with an earlier deadline starts while another
 * timed test runs (test_net_live.c says more).
 *
 * A failing check prints the seed, the command that replays the test and
 * the run's first violation. OC_SEED=<n> replaces a test's seed;
 * OC_SIM_LOG=<level> (0 debug .. 3 error) turns the world's log on.
 */
#include "game.h"
#include "game_check.h"
#include "game_cluster.h"
#include "game_int.h"
#include "net_server.h"
#include "sim_bot.h"
#include "simrun.h"
#include "simrun_int.h"

#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MS RT_NS_PER_MS
#define SEC RT_NS_PER_S
#define LAT (5 * MS)
#define LEASE (3 * SEC) /* game_cluster's default, set explicitly */
#define RECORDS 16384u
#define ROOMS_MAX 64u /* rooms one instance runs in these small runs */

/* ---- The fixture --------------------------------------------------------- */

typedef struct clu {
  const char *name;
  uint64_t seed;
  simrun_config_t cfg;
  simrun_t *run;
} clu_t;

static void clu_report(const clu_t *c, const char *what, const char *file,
                       int line) {
  const char *v = c->run != NULL ? simrun_failure(c->run) : NULL;
  fprintf(stderr,
          "\n%s:%d: sim_cluster/%s failed at t=%.6f: %s\n"
          "  seed=%" PRIu64 "; replay: OC_SEED=%" PRIu64
          " build/bin/test_sim_cluster --filter 'sim_cluster/%s'\n"
          "  first violation: %s\n",
          file, line, c->name,
          c->run != NULL
              ? (double)rt_now(sim_world_rt(simrun_world(c->run))) / SEC
              : 0.0,
          what, c->seed, c->seed, c->name, v != NULL ? v : "(none)");
}

#define CHECK(c, cond, ...)                                                    \
  do {                                                                         \
    if (!(cond)) {                                                             \
      clu_report((c), #cond, __FILE__, __LINE__);                              \
      cr_assert_fail(__VA_ARGS__);                                             \
    }                                                                          \
  } while (0)

/* A cluster of `instances` with the short timings above. */
static void clu_init(clu_t *c, const char *name, uint64_t seed,
                     uint32_t instances) {
  memset(c, 0, sizeof(*c));
  c->name = name;
  c->seed = seed;
  const char *env = getenv("OC_SEED");
  if (env != NULL && *env != '\0')
    c->seed = strtoull(env, NULL, 10);
  simrun_config_default(&c->cfg);
  c->cfg.seed = c->seed;
  const char *log = getenv("OC_SIM_LOG"); /* 0 debug .. 3 error */
  if (log != NULL && *log != '\0')
    c->cfg.log_level = atoi(log);
  c->cfg.players = 0;
  c->cfg.instances = instances;
  c->cfg.lease = LEASE;
  c->cfg.duration = 40 * SEC;
  c->cfg.game.countdown = 1 * SEC;
  c->cfg.game.game_seconds = 10;
  c->cfg.game.golden_min_s = 2;
  c->cfg.game.golden_max_s = 3;
  c->cfg.game.reconnect_grace = 2 * SEC;
  c->cfg.game.write_wait = 3 * SEC;
}

static void clu_start(clu_t *c) {
  CHECK(c, simrun_create(&c->cfg, &c->run) == RT_OK, "simrun_create");
}

static void clu_free(clu_t *c) { simrun_destroy(c->run); }

static rt_time_ns now_of(clu_t *c) {
  return rt_now(sim_world_rt(simrun_world(c->run)));
}

static void run_to(clu_t *c, rt_time_ns t) {
  CHECK(c, simrun_run_to(c->run, t) == 0, "a check failed before t=%.3f",
        (double)t / SEC);
}

static void finish(clu_t *c) {
  CHECK(c, simrun_finish(c->run) == 0, "the run's checks failed: %s",
        simrun_failure(c->run));
}

static simrun_summary_t summary(clu_t *c) {
  simrun_summary_t s;
  simrun_summary(c->run, &s);
  return s;
}

/* A brain-driven clicker on `instance` who plays `games` games (0: until
 * the end), arriving at `arrive`; no random faults of its own. */
static simrun_player_t clicker(uint32_t instance, uint32_t games,
                               rt_time_ns arrive) {
  simrun_player_t p;
  memset(&p, 0, sizeof(p));
  p.kind = SIMRUN_CLICKER;
  p.up.latency = p.down.latency = LAT;
  p.click_rate = 4;
  p.games_max = games;
  p.arrive_at = arrive;
  p.no_faults = true;
  p.instance = instance;
  return p;
}

/* A player the test drives, on `instance`, keeping every record. */
static simrun_player_t manual(uint32_t instance) {
  simrun_player_t p = clicker(instance, 0, 0);
  p.click_rate = 0;
  p.manual = true;
  p.keep_records = true;
  p.records_max = RECORDS;
  return p;
}

static uint32_t add(clu_t *c, const simrun_player_t *p) {
  uint32_t i = 0;
  CHECK(c, simrun_add_player(c->run, p, &i) == RT_OK, "add player");
  return i;
}

/* `n` clickers spread over the instances in turn, from instance 0. */
static void add_clickers(clu_t *c, uint32_t n, uint32_t games,
                         rt_time_ns arrive) {
  for (uint32_t k = 0; k < n; k++) {
    simrun_player_t p = clicker(k % c->cfg.instances, games, arrive);
    (void)add(c, &p);
  }
}

static sim_bot_t *bot_of(clu_t *c, uint32_t i) {
  sim_bot_t *b = simrun_bot(c->run, i);
  CHECK(c, b != NULL, "p%u has no bot", i);
  return b;
}

static uint32_t count_of(clu_t *c, uint32_t i, sim_bot_kind_t kind) {
  sim_bot_t *b = simrun_bot(c->run, i);
  return b != NULL ? sim_bot_count(b, kind) : 0;
}

/* Run in 1 ms steps until player i has n records of kind (or fail). */
static sim_bot_record_t wait_kind(clu_t *c, uint32_t i, sim_bot_kind_t kind,
                                  uint32_t n, rt_time_ns deadline) {
  while (count_of(c, i, kind) < n && now_of(c) < deadline)
    run_to(c, now_of(c) + MS);
  CHECK(c, count_of(c, i, kind) >= n, "p%u never got %s #%u by %.3f s", i,
        sim_bot_kind_name(kind), n, (double)deadline / SEC);
  uint32_t len;
  const sim_bot_record_t *r = sim_bot_records(bot_of(c, i), &len);
  for (uint32_t k = 0, seen = 0; k < len; k++)
    if (r[k].kind == kind && ++seen == n)
      return r[k];
  cr_assert_fail("unreachable");
  return r[0];
}

static void wait_open(clu_t *c, uint32_t i, rt_time_ns deadline) {
  while ((simrun_bot(c->run, i) == NULL ||
          sim_bot_state(simrun_bot(c->run, i)) != SIM_BOT_OPEN) &&
         now_of(c) < deadline)
    run_to(c, now_of(c) + MS);
  CHECK(c,
        simrun_bot(c->run, i) != NULL &&
            sim_bot_state(simrun_bot(c->run, i)) == SIM_BOT_OPEN,
        "p%u is not connected by %.3f s", i, (double)deadline / SEC);
}

/* The port a MOVE's url names ("ws://127.0.0.1:<port>/ws"), or 0. Parsed
 * here, apart from the runner's own parser (an oracle is independent). */
static uint16_t url_port(const char *url) {
  static const char prefix[] = "ws://127.0.0.1:";
  if (strncmp(url, prefix, sizeof(prefix) - 1) != 0)
    return 0;
  char *end = NULL;
  unsigned long port = strtoul(url + sizeof(prefix) - 1, &end, 10);
  if (end == NULL || strcmp(end, "/ws") != 0 || port == 0 || port > 65535)
    return 0;
  return (uint16_t)port;
}

/* The public ids of the rooms running on instance i now (at most cap);
 * their count. */
static uint32_t live_rooms(clu_t *c, uint32_t i, char (*ids)[32],
                           uint32_t cap) {
  game_t *g = simrun_instance_game(c->run, i);
  if (g == NULL)
    return 0;
  uint32_t n = 0, kept = 0;
  uint64_t *rooms = game_live_rooms(g, &n);
  for (uint32_t k = 0; k < n && kept < cap; k++)
    if (game_room_public_id(g, rooms[k], ids[kept], 32) == 1)
      kept++;
  free(rooms);
  return kept;
}

/* The instance running the most rooms now (ties: the lowest), and those
 * rooms' ids in ids; fails when no instance runs one. */
static uint32_t busiest(clu_t *c, char (*ids)[32], uint32_t *n) {
  uint32_t best = 0, best_n = 0;
  char tmp[ROOMS_MAX][32];
  for (uint32_t i = 0; i < c->cfg.instances; i++) {
    uint32_t k = live_rooms(c, i, tmp, ROOMS_MAX);
    if (k > best_n) {
      best = i;
      best_n = k;
      memcpy(ids, tmp, sizeof(tmp));
    }
  }
  CHECK(c, best_n > 0, "no instance runs a game at %.3f s",
        (double)now_of(c) / SEC);
  *n = best_n;
  return best;
}

static bool in_list(const char *room, char (*ids)[32], uint32_t n) {
  for (uint32_t k = 0; k < n; k++)
    if (strcmp(room, ids[k]) == 0)
      return true;
  return false;
}

/* Two manual players, a on instance 0 and b on instance 1, join one after
 * the other and are matched across; the one whose game lives on the other
 * instance is sent there (MOVE) and the test follows it, as a browser
 * does. *owner is the instance whose room they play in; *moved the player
 * that moved; its MOVE record in *move. */
static void cross_pair(clu_t *c, uint32_t a, uint32_t b, uint32_t *owner,
                       uint32_t *moved, sim_bot_record_t *move) {
  wait_open(c, a, 2 * SEC);
  wait_open(c, b, 2 * SEC);
  CHECK(c, sim_bot_join(bot_of(c, a)) == RT_OK, "join a");
  run_to(c, now_of(c) + 100 * MS); /* a's ticket is in Redis first */
  CHECK(c, sim_bot_join(bot_of(c, b)) == RT_OK, "join b");
  rt_time_ns deadline = now_of(c) + 2 * SEC;
  while (count_of(c, a, SIM_BOT_MOVE) + count_of(c, b, SIM_BOT_MOVE) == 0 &&
         now_of(c) < deadline)
    run_to(c, now_of(c) + MS);
  uint32_t ma = count_of(c, a, SIM_BOT_MOVE), mb = count_of(c, b, SIM_BOT_MOVE);
  CHECK(c, ma + mb == 1,
        "one MOVE between the two (a on i1 got %u, b on i2 got %u)", ma, mb);
  *moved = ma == 1 ? a : b;
  uint32_t stay = ma == 1 ? b : a;
  *move = *sim_bot_last(bot_of(c, *moved), SIM_BOT_MOVE);
  /* The mover is sent to the other one's instance: a is on 0, b on 1. */
  uint16_t want = (uint16_t)(SIMRUN_PORT + (*moved == a ? 1 : 0));
  CHECK(c, url_port(move->url) == want,
        "p%u's MOVE names %s, not port %u (the other instance)", *moved,
        move->url, want);
  CHECK(c, move->room_id[0] != '\0', "a MOVE without its roomId");
  *owner = (uint32_t)(want - SIMRUN_PORT);
  CHECK(c, sim_bot_reconnect_to(bot_of(c, *moved), want) == RT_OK,
        "follow the MOVE");
  sim_bot_record_t s1 =
      wait_kind(c, stay, SIM_BOT_GAME_START, 1, now_of(c) + 3 * SEC);
  sim_bot_record_t s2 =
      wait_kind(c, *moved, SIM_BOT_GAME_START, 1, now_of(c) + 3 * SEC);
  CHECK(c, strcmp(s1.room_id, s2.room_id) == 0, "p%u plays in %s and p%u in %s",
        stay, s1.room_id, *moved, s2.room_id);
  CHECK(c, strcmp(s2.room_id, move->room_id) == 0,
        "the MOVE named %s, the owner seated p%u in %s", move->room_id, *moved,
        s2.room_id);
  CHECK(c, s2.resumed, "the owner takes a moved player as a resume");
  CHECK(c, s2.conn == 2, "the moved player plays on its second connection");
  CHECK(c, strcmp(s1.opponent, sim_bot_user_id(bot_of(c, *moved))) == 0,
        "p%u's opponent is %s", stay, s1.opponent);
}

/* cross_pair for two manual players added now: a on instance 0, b on 1. */
static void manual_pair(clu_t *c, uint32_t *a, uint32_t *b, uint32_t *owner,
                        uint32_t *moved, sim_bot_record_t *move) {
  simrun_player_t ma = manual(0), mb = manual(1);
  *a = add(c, &ma);
  *b = add(c, &mb);
  cross_pair(c, *a, *b, owner, moved, move);
}

/* ---- Matching across instances ------------------------------------------- */

Test(sim_cluster,
     players_on_two_instances_are_matched_and_the_mover_follows_to_the_owner,
     .timeout = 60) {
  clu_t c;
  clu_init(&c,
           "players_on_two_instances_are_matched_and_the_mover_follows_"
           "to_the_owner",
           101, 2);
  clu_start(&c);
  simrun_player_t ma = manual(0), mb = manual(1);
  uint32_t a = add(&c, &ma);
  uint32_t b = add(&c, &mb);
  /* Brain players come once the pair is matched, on both instances. */
  add_clickers(&c, 12, 0, 3 * SEC);
  uint32_t owner = 0, moved = 0;
  sim_bot_record_t move;
  cross_pair(&c, a, b, &owner, &moved, &move);
  /* The manual pair's game ends by time; both see it end, in one room. */
  sim_bot_record_t oa = wait_kind(&c, a, SIM_BOT_GAME_OVER, 1, 20 * SEC);
  sim_bot_record_t ob = wait_kind(&c, b, SIM_BOT_GAME_OVER, 1, 20 * SEC);
  CHECK(&c, strcmp(oa.reason, "time") == 0 && strcmp(ob.reason, "time") == 0,
        "the pair's game ended %s / %s", oa.reason, ob.reason);
  finish(&c);
  simrun_summary_t s = summary(&c);
  CHECK(&c, s.instances == 2, "instances=%u", s.instances);
  CHECK(&c, s.cov[SIMRUN_COV_CROSS_MATCH] > 0, "no cross-instance match");
  CHECK(&c, s.cov[SIMRUN_COV_MOVE_FOLLOWED] > 0, "no MOVE followed");
  CHECK(&c, s.moves_seen > 0, "no MOVE seen");
  /* (C7) read every match: at least the pair's and the clickers'. */
  CHECK(&c, s.matches_checked >= s.matches_cross && s.matches_checked > 1,
        "matches checked: %" PRIu64 " (%" PRIu64 " across)", s.matches_checked,
        s.matches_cross);
  CHECK(&c, s.server_lost == 0, "%" PRIu64 " games lost with no fault",
        s.server_lost);
  /* Every stored game is one both its players saw end, once, and every
   * game a player saw end is stored (C4 checks each against its row). */
  uint64_t overs = 0;
  for (uint32_t i = 0; i < s.players; i++) {
    simrun_player_view_t v;
    simrun_player_view(c.run, i, &v);
    overs += v.games_over;
    if (i >= 2)
      CHECK(&c, v.games_over > 0, "p%u saw no game end", i);
  }
  CHECK(&c, s.games_stored > 1, "games stored: %" PRIu64, s.games_stored);
  CHECK(&c, overs == 2 * s.games_stored,
        "players saw %" PRIu64 " GAME_OVERs for %" PRIu64 " stored games",
        overs, s.games_stored);
  CHECK(&c, s.game_overs_seen == overs, "game_overs_seen=%" PRIu64,
        s.game_overs_seen);
  CHECK(&c, s.games_started == s.games_stored,
        "started %" PRIu64 ", stored %" PRIu64, s.games_started,
        s.games_stored);
  clu_free(&c);
}

/* A bug the 12-seed cluster swarm found (overcookied-sim --seed 6
 * --instances 3 ..., tests/CMakeLists.txt sim_cli_cluster_swarm): a
 * player who missed the end of game A on instance X (X keeps that
 * GAME_OVER for 60 s, game_manager.c Invariant (6)), then plays game B
 * elsewhere and comes back to X during B, is handed A's GAME_OVER by X:
 * a stale result, which the client takes for B's end (GAME_OVER carries
 * no roomId), in place of the MOVE to B's owner. In one process a
 * player cannot start B without its HELLO taking A's result first. */
Test(sim_cluster,
     a_result_missed_on_one_instance_names_its_game_and_the_player_is_sent_on,
     .timeout = 60) {
  clu_t c;
  clu_init(&c,
           "a_result_missed_on_one_instance_names_its_game_and_the_player_"
           "is_sent_on",
           111, 2);
  clu_start(&c);
  simrun_player_t m0 = manual(0), m1 = manual(1), m2 = manual(0),
                  m3 = manual(1);
  uint32_t a = add(&c, &m0);
  uint32_t b = add(&c, &m1);
  uint32_t pc = add(&c, &m2);
  uint32_t pd = add(&c, &m3);
  uint32_t owner = 0, moved = 0;
  sim_bot_record_t move;
  cross_pair(&c, a, b, &owner, &moved, &move);
  /* The player who plays on the owner's instance from the start, and the
   * other instance, where B will be. */
  uint32_t p = moved == a ? b : a;
  uint32_t q = p == a ? b : a;
  uint32_t other = 1 - owner;
  CHECK(&c, p == (owner == 0 ? a : b), "p%u is on the owner", p);
  /* p leaves game A for good: A ends while p is away, so the owner keeps
   * p's GAME_OVER (Invariant (6)). */
  CHECK(&c, sim_bot_disconnect(bot_of(&c, p), SIM_BOT_CLOSE_RESET) == RT_OK,
        "drop p");
  sim_bot_record_t qa = wait_kind(&c, q, SIM_BOT_GAME_OVER, 1, 20 * SEC);
  CHECK(&c, count_of(&c, p, SIM_BOT_GAME_OVER) == 0, "p was told A's end");
  /* p comes back on the other instance and plays B there, with the
   * manual player who waits there. */
  uint32_t partner = other == 0 ? pc : pd;
  (void)qa;
  CHECK(&c,
        sim_bot_reconnect_to(bot_of(&c, p), (uint16_t)(SIMRUN_PORT + other)) ==
            RT_OK,
        "p to the other instance");
  wait_open(&c, p, now_of(&c) + 2 * SEC);
  run_to(&c, now_of(&c) + 200 * MS); /* its LOOKUP finds no game */
  CHECK(&c, count_of(&c, p, SIM_BOT_MOVE) == 0, "p was sent back");
  wait_open(&c, partner, now_of(&c) + 2 * SEC);
  CHECK(&c, sim_bot_join(bot_of(&c, partner)) == RT_OK, "partner joins");
  run_to(&c, now_of(&c) + 100 * MS);
  CHECK(&c, sim_bot_join(bot_of(&c, p)) == RT_OK, "p joins");
  uint32_t starts = count_of(&c, p, SIM_BOT_GAME_START);
  sim_bot_record_t sb =
      wait_kind(&c, p, SIM_BOT_GAME_START, starts + 1, now_of(&c) + 2 * SEC);
  CHECK(&c, !sb.resumed && sb.conn == 2,
        "p's game B starts on its second connection");
  CHECK(&c, count_of(&c, p, SIM_BOT_MOVE) == 0, "B is on p's instance");
  /* Mid-B, p drops and comes back to the owner of A. */
  run_to(&c, now_of(&c) + 3 * SEC);
  uint32_t overs = count_of(&c, p, SIM_BOT_GAME_OVER);
  CHECK(&c,
        sim_bot_reconnect_to(bot_of(&c, p), (uint16_t)(SIMRUN_PORT + owner)) ==
            RT_OK,
        "p back to A's instance");
  sim_bot_record_t mv = wait_kind(&c, p, SIM_BOT_MOVE, 1, now_of(&c) + 2 * SEC);
  /* The result p missed is told on coming back (Invariant (6)), and names
   * game A (PROTOCOL.md: a cluster's GAME_OVER carries its roomId), so it
   * is never taken for B's end; and p is still sent on to B (until
   * session 10 the missed result was told instead of looking B up). */
  CHECK(&c, count_of(&c, p, SIM_BOT_GAME_OVER) == overs + 1,
        "p was not told the result it missed");
  const sim_bot_record_t *late = sim_bot_last(bot_of(&c, p), SIM_BOT_GAME_OVER);
  CHECK(&c, strcmp(late->room_id, move.room_id) == 0,
        "the late GAME_OVER names %s; A was %s", late->room_id, move.room_id);
  CHECK(&c, strcmp(late->room_id, sb.room_id) != 0,
        "the late GAME_OVER names B, which runs");
  CHECK(&c, url_port(mv.url) == SIMRUN_PORT + other,
        "p sent to %s, not to B's owner", mv.url);
  CHECK(&c, strcmp(mv.room_id, sb.room_id) == 0, "MOVE for %s, B is %s",
        mv.room_id, sb.room_id);
  CHECK(&c,
        sim_bot_reconnect_to(bot_of(&c, p), (uint16_t)(SIMRUN_PORT + other)) ==
            RT_OK,
        "follow");
  sim_bot_record_t ob =
      wait_kind(&c, p, SIM_BOT_GAME_OVER, overs + 2, now_of(&c) + 15 * SEC);
  CHECK(&c, strcmp(ob.room_id, sb.room_id) == 0, "B's end names %s, B is %s",
        ob.room_id, sb.room_id);
  finish(&c);
  clu_free(&c);
}

/* ---- Crashes ------------------------------------------------------------- */

Test(sim_cluster,
     an_owner_that_crashes_mid_game_ends_its_games_server_lost_and_says_so,
     .timeout = 60) {
  clu_t c;
  clu_init(&c,
           "an_owner_that_crashes_mid_game_ends_its_games_server_lost_and_"
           "says_so",
           202, 2);
  clu_start(&c);
  /* One game each: the last GAME_OVER a player saw is that game's. */
  add_clickers(&c, 16, 1, 0);
  run_to(&c, 6 * SEC); /* games started at about 1-2 s run to 12 s */
  char rooms[ROOMS_MAX][32];
  uint32_t n = 0;
  uint32_t victim = busiest(&c, rooms, &n);
  /* The players seated in those rooms, as they saw it (GAME_START). */
  bool seated[16] = {false};
  uint32_t seated_n = 0;
  for (uint32_t i = 0; i < 16; i++) {
    simrun_player_view_t v;
    simrun_player_view(c.run, i, &v);
    seated[i] = in_list(v.room_id, rooms, n) && v.games_over == 0;
    seated_n += seated[i];
  }
  CHECK(&c, seated_n == 2 * n, "%u players seated in the %u rooms of i%u",
        seated_n, n, victim + 1);
  CHECK(&c, simrun_instance_crash(c.run, victim, 1 * SEC) == RT_OK, "crash");
  CHECK(&c, simrun_instance_game(c.run, victim) == NULL,
        "a crashed instance has no game");
  CHECK(&c, simrun_instance_crash(c.run, victim, 1 * SEC) == RT_EINVAL,
        "crashing an instance that is down");
  finish(&c);
  simrun_summary_t s = summary(&c);
  CHECK(&c, s.cov[SIMRUN_COV_OWNER_CRASH] > 0, "no owner crash counted");
  CHECK(&c, s.crashes == 1, "crashes=%" PRIu64, s.crashes);
  CHECK(&c, s.server_lost >= n,
        "%" PRIu64 " games stored server_lost; the crash took %u",
        s.server_lost, n);
  for (uint32_t i = 0; i < 16; i++) {
    if (!seated[i])
      continue;
    simrun_player_view_t v;
    simrun_player_view(c.run, i, &v);
    CHECK(&c, v.games_over == 1, "p%u (in %s) saw %u games end", i, v.room_id,
          v.games_over);
    CHECK(&c, strcmp(v.last_over.reason, "server_lost") == 0,
          "p%u's game %s ended %s (winner %s), not server_lost", i, v.room_id,
          v.last_over.reason, v.last_over.winner);
    CHECK(&c, strcmp(v.last_over.winner, "none") == 0,
          "p%u: a lost game has no winner, not %s", i, v.last_over.winner);
  }
  clu_free(&c);
}

/* An owner whose game ends by time crashes before its Store holds the
 * row: once Redis holds its claim (claimed), or the instant the game ends,
 * the claim on its way to Redis (not claimed). By L1 the game is stored
 * with the owner's result, field by field, not server_lost. */
static void crash_after_the_end(const char *name, uint64_t seed, bool claimed) {
  clu_t c;
  clu_init(&c, name, seed, 2);
  if (claimed) {
    /* The Store fails from before the game ends until after the owner is
     * reaped: the owner's write waits, and the reaper's waits too. */
    c.cfg.faults.store_down_from = 9 * SEC;
    c.cfg.faults.store_down_until = 20 * SEC;
  } else {
    c.cfg.faults.rlatency = 5 * MS; /* a claim takes 5 ms to arrive */
  }
  clu_start(&c);
  run_to(&c, 200 * MS); /* both Clusters up (4 round trips) before a JOIN */
  uint32_t a, b, owner, moved;
  sim_bot_record_t move;
  manual_pair(&c, &a, &b, &owner, &moved, &move);
  run_to(&c, now_of(&c) + 1500 * MS); /* past the countdown */
  CHECK(&c, sim_bot_clicks(bot_of(&c, a), 5, 1) == RT_OK, "a clicks");
  /* The game ends by time, about 11 s in. */
  game_t *g = simrun_instance_game(c.run, owner);
  uint32_t n = 0;
  uint64_t *ids = game_live_rooms(g, &n);
  CHECK(&c, n == 1, "%u rooms on the owner", n);
  rt_actor_id_t room = ids[0];
  free(ids);
  game_result_t res;
  while (!(game_room_result(g, room, &res) == 1 &&
           (!claimed || simrun__end_claimed(c.run, move.room_id))) &&
         now_of(&c) < 15 * SEC)
    run_to(&c, now_of(&c) + MS);
  CHECK(&c, game_room_result(g, room, &res) == 1, "the game never ended");
  CHECK(&c, strcmp(res.reason, "time") == 0, "ended %s", res.reason);
  game_result_t row;
  if (claimed) {
    CHECK(&c, simrun__end_claimed(c.run, move.room_id), "never claimed");
    run_to(&c, now_of(&c) + 200 * MS);
    CHECK(&c,
          game_store_find_game(simrun__store(c.run), move.room_id, &row) == 0,
          "the row is in before the crash (the Store is down)");
  } else {
    CHECK(&c, !simrun__end_claimed(c.run, move.room_id),
          "the claim ran at once");
  }
  CHECK(&c, simrun_instance_crash(c.run, owner, 2 * SEC) == RT_OK, "crash");
  finish(&c);
  CHECK(&c, game_store_find_game(simrun__store(c.run), move.room_id, &row) == 1,
        "%s is not stored", move.room_id);
  CHECK(&c,
        strcmp(row.reason, res.reason) == 0 &&
            strcmp(row.winner, res.winner) == 0 &&
            row.p1_score == res.p1_score && row.p2_score == res.p2_score &&
            row.finished_at_s == res.finished_at_s &&
            strcmp(row.p1_id, res.p1_id) == 0 &&
            strcmp(row.p2_id, res.p2_id) == 0 &&
            strcmp(row.p1_name, res.p1_name) == 0 &&
            strcmp(row.p2_name, res.p2_name) == 0,
        "stored %s %s %d:%d, the owner's was %s %s %d:%d", row.reason,
        row.winner, row.p1_score, row.p2_score, res.reason, res.winner,
        res.p1_score, res.p2_score);
  CHECK(&c, row.p1_score + row.p2_score > 0, "a click scored");
  simrun_summary_t s = summary(&c);
  CHECK(&c, s.claims_stored >= 1, "claims stored: %" PRIu64, s.claims_stored);
  CHECK(&c, s.server_lost == 0, "%" PRIu64 " games server_lost", s.server_lost);
  clu_free(&c);
}

/* The swarm's seed 14204 (5 instances, Store faults, crashes): an owner
 * claimed its game's end in Redis (end:R "done"), its Store could not
 * write the row yet, and it crashed. A reaper skipped a room whose end
 * was claimed, so nobody stored the game: L1 failed (C3). The claim now
 * leaves the result in Redis until the owner's row is in, and the reaper
 * stores it: the row the owner would have written, not server_lost. */
Test(sim_cluster,
     an_owner_that_crashes_after_claiming_its_end_has_its_result_stored,
     .timeout = 60) {
  crash_after_the_end(
      "an_owner_that_crashes_after_claiming_its_end_has_its_result_stored", 214,
      true);
}

/* The swarm's seed 30856 (2 instances, 2 ms to Redis): the owner crashed
 * 0.3 ms after its game ended, its claim already sent. The claim ran
 * after the crash, so the reaper stored the owner's result, and C3, which
 * asked server_lost of every game not claimed at the crash, failed the
 * run. A game that had ended may be stored either way; one still running
 * must be server_lost. */
Test(sim_cluster,
     an_owner_that_crashes_with_its_claim_on_the_way_has_its_result_stored,
     .timeout = 60) {
  crash_after_the_end(
      "an_owner_that_crashes_with_its_claim_on_the_way_has_its_result_stored",
      215, false);
}

/* A bug the first seeds found: the restarted instance (a new incarnation
 * on the old URL) found the old incarnation's lease still live and
 * answered LOOKUP with a MOVE to that URL, its own, and so on forever. */
Test(sim_cluster,
     an_instance_restarted_within_its_old_lease_does_not_send_players_to_itself,
     .timeout = 60) {
  clu_t c;
  clu_init(&c,
           "an_instance_restarted_within_its_old_lease_does_not_send_players_"
           "to_itself",
           303, 2);
  clu_start(&c);
  simrun_player_t ma = manual(0), mb = manual(1);
  uint32_t a = add(&c, &ma);
  uint32_t b = add(&c, &mb);
  add_clickers(&c, 10, 0, 3 * SEC);
  uint32_t owner = 0, moved = 0;
  sim_bot_record_t move;
  cross_pair(&c, a, b, &owner, &moved, &move);
  run_to(&c, 6 * SEC); /* brain players are in games on both by now */
  char before[32];
  snprintf(before, sizeof(before), "%s", simrun_instance_id(c.run, owner));
  CHECK(&c, simrun_instance_crash(c.run, owner, 200 * MS) == RT_OK, "crash");
  wait_kind(&c, a, SIM_BOT_CLOSED, 1, now_of(&c) + SEC);
  run_to(&c, now_of(&c) + 1 * SEC); /* back up, far within the 3 s lease */
  CHECK(&c, simrun_instance_game(c.run, owner) != NULL, "not restarted");
  CHECK(&c, strcmp(simrun_instance_id(c.run, owner), before) != 0,
        "a restart runs under a new id, not %s", before);
  /* Both come back to the restarted owner. */
  uint16_t port = (uint16_t)(SIMRUN_PORT + owner);
  uint32_t pair[2] = {a, b};
  uint32_t moves[2];
  for (int k = 0; k < 2; k++) {
    moves[k] = count_of(&c, pair[k], SIM_BOT_MOVE);
    CHECK(&c, sim_bot_reconnect_to(bot_of(&c, pair[k]), port) == RT_OK,
          "reconnect p%u", pair[k]);
  }
  for (int k = 0; k < 2; k++) {
    sim_bot_record_t over =
        wait_kind(&c, pair[k], SIM_BOT_GAME_OVER, 1, now_of(&c) + 3 * SEC);
    CHECK(&c, strcmp(over.reason, "server_lost") == 0,
          "p%u's game ended %s after its owner crashed", pair[k], over.reason);
    CHECK(&c, strcmp(over.winner, "none") == 0, "winner %s", over.winner);
    CHECK(&c, count_of(&c, pair[k], SIM_BOT_MOVE) == moves[k],
          "p%u was sent on (MOVE %s) by the instance it came back to", pair[k],
          sim_bot_last(bot_of(&c, pair[k]), SIM_BOT_MOVE)->url);
  }
  finish(&c);
  simrun_summary_t s = summary(&c);
  CHECK(&c, s.crashes == 1, "crashes=%" PRIu64, s.crashes);
  CHECK(&c, s.cov[SIMRUN_COV_OWNER_CRASH] > 0, "no owner crash counted");
  clu_free(&c);
}

/* The same, with the brains alone: every player the crash cut off comes
 * back, half of them to the restarted instance; nobody is bounced. */
Test(sim_cluster, players_back_on_a_quickly_restarted_instance_are_not_bounced,
     .timeout = 60) {
  clu_t c;
  clu_init(&c, "players_back_on_a_quickly_restarted_instance_are_not_bounced",
           304, 2);
  clu_start(&c);
  add_clickers(&c, 20, 0, 0);
  run_to(&c, 6 * SEC);
  char rooms[ROOMS_MAX][32];
  uint32_t n = 0;
  uint32_t victim = busiest(&c, rooms, &n);
  CHECK(&c, simrun_instance_crash(c.run, victim, 200 * MS) == RT_OK, "crash");
  run_to(&c, 20 * SEC);
  CHECK(&c, simrun_instance_crash(c.run, victim, 200 * MS) == RT_OK,
        "crash again");
  finish(&c);
  simrun_summary_t s = summary(&c);
  CHECK(&c, s.crashes == 2, "crashes=%" PRIu64, s.crashes);
  CHECK(&c, s.reconnects > 0, "nobody came back");
  clu_free(&c);
}

/* A run keeps every crashed incarnation's counters (SIMRUN_RETIRED_MAX of
 * them): up to that many crashes are taken, with players in games, the
 * next is refused, and the run still passes every check with each crash
 * counted. */
Test(sim_cluster,
     crashes_up_to_the_retired_limit_are_taken_and_the_next_refused,
     .timeout = 60) {
  clu_t c;
  clu_init(&c, "crashes_up_to_the_retired_limit_are_taken_and_the_next_refused",
           808, 2);
  c.cfg.duration = 20 * SEC;
  clu_start(&c);
  add_clickers(&c, 8, 0, 0);
  run_to(&c, 2 * SEC);
  for (uint32_t k = 0; k < SIMRUN_RETIRED_MAX; k++) {
    uint32_t i = k % 2;
    rt_time_ns deadline = now_of(&c) + 1 * SEC;
    while (simrun_instance_game(c.run, i) == NULL && now_of(&c) < deadline)
      run_to(&c, now_of(&c) + MS);
    CHECK(&c, simrun_instance_crash(c.run, i, 5 * MS) == RT_OK, "crash %u",
          k + 1);
    run_to(&c, now_of(&c) + 20 * MS);
  }
  run_to(&c, now_of(&c) + 100 * MS);
  CHECK(&c, simrun_instance_game(c.run, 0) != NULL, "instance 0 is down");
  CHECK(&c, simrun_instance_crash(c.run, 0, 5 * MS) == RT_EINVAL,
        "a crash past the limit was taken");
  finish(&c);
  simrun_summary_t s = summary(&c);
  CHECK(&c, s.crashes == SIMRUN_RETIRED_MAX, "crashes=%" PRIu64, s.crashes);
  clu_free(&c);
}

/* ---- Pauses -------------------------------------------------------------- */

Test(sim_cluster, a_paused_owner_that_outlives_its_lease_is_fenced,
     .timeout = 60) {
  clu_t c;
  clu_init(&c, "a_paused_owner_that_outlives_its_lease_is_fenced", 404, 2);
  clu_start(&c);
  add_clickers(&c, 16, 0, 0);
  run_to(&c, 5 * SEC);
  char rooms[ROOMS_MAX][32];
  uint32_t n = 0;
  uint32_t victim = busiest(&c, rooms, &n);
  CHECK(&c, simrun_instance_pause(c.run, victim, LEASE + 2 * SEC) == RT_OK,
        "pause");
  CHECK(&c, simrun_instance_pause(c.run, victim, SEC) == RT_EINVAL,
        "pausing a paused instance");
  finish(&c);
  simrun_summary_t s = summary(&c);
  CHECK(&c, s.pauses == 1, "pauses=%" PRIu64, s.pauses);
  CHECK(&c, s.fenced > 0, "the paused owner was not fenced");
  CHECK(&c, s.cov[SIMRUN_COV_STALE_FENCED] > 0, "no fence covered");
  /* Its games were reaped by the other instance while it slept. */
  CHECK(&c, s.server_lost > 0, "no game of the paused owner ended lost");
  clu_free(&c);
}

/* A bug the 4,000-seed cluster swarm found (overcookied-sim --seed 6634
 * --instances 2 ...): an owner cut off Redis plays on past its lease; the
 * other instance reaps it, and a player of its game who reconnects there
 * hears that the game is over (server_lost). Coming back to the owner,
 * still cut off, the player was taken back into that game (GAME_START,
 * resumed). An owner past its lease by its own clock now closes such a
 * connection 1013 (try again later), and the player hears nothing new;
 * within the lease, it still takes the player back. */
Test(sim_cluster, an_owner_past_its_lease_takes_nobody_back_into_its_game,
     .timeout = 60) {
  clu_t c;
  clu_init(&c, "an_owner_past_its_lease_takes_nobody_back_into_its_game", 606,
           2);
  /* The room still waits for the player when it comes back to the owner. */
  c.cfg.game.reconnect_grace = 10 * SEC;
  clu_start(&c);
  uint32_t a, b, owner, moved;
  sim_bot_record_t move;
  manual_pair(&c, &a, &b, &owner, &moved, &move);
  uint32_t p = moved, other = 1 - owner;
  CHECK(&c, simrun_instance_partition(c.run, owner, LEASE + 5 * SEC) == RT_OK,
        "cut the owner off Redis");
  rt_time_ns cut_at = now_of(&c);
  /* Within the lease the owner still vouches for its game: p, dropped,
   * comes back to it and plays on (GAME_START, resumed). */
  CHECK(&c, sim_bot_disconnect(bot_of(&c, p), SIM_BOT_CLOSE_RESET) == RT_OK,
        "drop p");
  CHECK(&c,
        sim_bot_reconnect_to(bot_of(&c, p), (uint16_t)(SIMRUN_PORT + owner)) ==
            RT_OK,
        "p back to the owner within its lease");
  sim_bot_record_t back = wait_kind(&c, p, SIM_BOT_GAME_START, 2, cut_at + SEC);
  CHECK(&c, back.resumed && strcmp(back.room_id, move.room_id) == 0,
        "p came back to %s (resumed %d), not to its game %s", back.room_id,
        (int)back.resumed, move.room_id);
  CHECK(&c, sim_bot_disconnect(bot_of(&c, p), SIM_BOT_CLOSE_RESET) == RT_OK,
        "drop p again");
  /* Past the owner's lease and the other instance's next renew. */
  run_to(&c, cut_at + LEASE + 1500 * MS);
  CHECK(&c,
        sim_bot_reconnect_to(bot_of(&c, p), (uint16_t)(SIMRUN_PORT + other)) ==
            RT_OK,
        "p to the other instance");
  sim_bot_record_t over =
      wait_kind(&c, p, SIM_BOT_GAME_OVER, 1, now_of(&c) + 2 * SEC);
  CHECK(&c, strcmp(over.reason, "server_lost") == 0,
        "p's game ended %s, its owner cut off past its lease", over.reason);
  CHECK(&c, strcmp(over.room_id, move.room_id) == 0, "GAME_OVER for %s, not %s",
        over.room_id, move.room_id);
  /* Back to the owner, which is still cut off. */
  uint32_t starts = count_of(&c, p, SIM_BOT_GAME_START);
  uint32_t opens = count_of(&c, p, SIM_BOT_OPENED);
  game_stats_t before;
  game_get_stats(simrun_instance_game(c.run, owner), &before);
  net_server_stats_t ns_before;
  net_server_get_stats(simrun_instance_server(c.run, owner), &ns_before);
  CHECK(&c,
        sim_bot_reconnect_to(bot_of(&c, p), (uint16_t)(SIMRUN_PORT + owner)) ==
            RT_OK,
        "p back to the owner");
  sim_bot_record_t opened =
      wait_kind(&c, p, SIM_BOT_OPENED, opens + 1, now_of(&c) + 2 * SEC);
  /* Until that connection closes, or a GAME_START comes on it. */
  rt_time_ns deadline = now_of(&c) + 2 * SEC;
  const sim_bot_record_t *closed = NULL;
  while (now_of(&c) < deadline &&
         count_of(&c, p, SIM_BOT_GAME_START) == starts &&
         ((closed = sim_bot_last(bot_of(&c, p), SIM_BOT_CLOSED)) == NULL ||
          closed->conn != opened.conn))
    run_to(&c, now_of(&c) + MS);
  CHECK(&c, count_of(&c, p, SIM_BOT_GAME_START) == starts,
        "p was taken back into %s, a game it was told is over", over.room_id);
  closed = sim_bot_last(bot_of(&c, p), SIM_BOT_CLOSED);
  CHECK(&c, closed != NULL && closed->conn == opened.conn,
        "the owner kept p's connection %u open", opened.conn);
  /* The code as the owner sent it: the bot's wslay takes 1012-1014 (IANA,
   * after RFC 6455) for a protocol error, and sees the close as 1006. */
  net_server_stats_t ns_after;
  net_server_get_stats(simrun_instance_server(c.run, owner), &ns_after);
  uint32_t k = net_server_close_code_index(1013);
  CHECK(&c, ns_after.ws_close_codes[k] == ns_before.ws_close_codes[k] + 1,
        "the owner closed %" PRIu64 " WebSockets 1013, not one",
        ns_after.ws_close_codes[k] - ns_before.ws_close_codes[k]);
  game_stats_t after;
  game_get_stats(simrun_instance_game(c.run, owner), &after);
  CHECK(&c, after.resumes_refused == before.resumes_refused + 1,
        "resumes refused: %" PRIu64 " then %" PRIu64, before.resumes_refused,
        after.resumes_refused);
  finish(&c);
  simrun_summary_t s = summary(&c);
  CHECK(&c, s.partitions == 1, "partitions=%" PRIu64, s.partitions);
  CHECK(&c, s.fenced > 0, "the owner was not fenced once back");
  clu_free(&c);
}

/* Run in 1 ms steps for at most `span`, until a check fails: the first
 * violation, or NULL when none came (the mutation-style tests). */
static const char *run_until_failure(clu_t *c, rt_time_ns span) {
  rt_time_ns deadline = now_of(c) + span;
  while (now_of(c) < deadline && simrun_run_to(c->run, now_of(c) + MS) == 0)
    ;
  return simrun_failure(c->run);
}

/* (C7) does not take Redis's word for a lease: a ticket whose instance
 * stopped renewing is matched once something else kept its lease key
 * alive (here the test, behind the Clusters' backs), and the checker,
 * which reads the renewals themselves, fails the match. */
Test(sim_cluster, a_ticket_matched_after_its_lease_lapsed_fails_the_run,
     .timeout = 60) {
  clu_t c;
  clu_init(&c, "a_ticket_matched_after_its_lease_lapsed_fails_the_run", 505, 2);
  clu_start(&c);
  simrun_player_t ma = manual(1), mb = manual(0);
  uint32_t a = add(&c, &ma);
  uint32_t b = add(&c, &mb);
  wait_open(&c, a, 2 * SEC);
  wait_open(&c, b, 2 * SEC);
  CHECK(&c, sim_bot_join(bot_of(&c, a)) == RT_OK, "join a");
  run_to(&c, now_of(&c) + 100 * MS); /* a's ticket is in Redis */
  char e2[96], key[128];
  snprintf(e2, sizeof(e2), "%s",
           game_cluster_epoch(simrun_instance_game(c.run, 1)));
  CHECK(&c, e2[0] != '\0', "instance 1 has no incarnation");
  CHECK(&c, simrun_instance_pause(c.run, 1, LEASE + 3 * SEC) == RT_OK, "pause");
  snprintf(key, sizeof(key), "oc:lease:%s", e2);
  const char *keep[] = {"PEXPIRE", key, "60000"};
  CHECK(&c, simrun_redis_tamper(c.run, 3, keep) == RT_OK, "tamper");
  const char *bad[] = {"NOSUCHCOMMAND"};
  CHECK(&c, simrun_redis_tamper(c.run, 1, bad) == RT_EINVAL,
        "an error reply is not taken");
  /* Past the lease by E2's last renewal; Redis still holds the key. */
  run_to(&c, now_of(&c) + LEASE + 500 * MS);
  CHECK(&c, sim_bot_join(bot_of(&c, b)) == RT_OK, "join b");
  const char *why = run_until_failure(&c, 2 * SEC);
  CHECK(&c, why != NULL, "the match of a lapsed ticket went unnoticed");
  CHECK(&c,
        strstr(why, "(C7) the ticket's incarnation") != NULL &&
            strstr(why, e2) != NULL && strstr(why, "after its lease lapsed"),
        "another failure: %s", why);
  clu_free(&c);
}

/* (C1) A player whose presence Redis lost (here the test deletes it) is
 * matched again on the other instance while its first game still seats
 * it (the owner keeps the seat through the reconnect grace): two live
 * instances seat one player, and the run fails. */
Test(sim_cluster, a_player_seated_on_two_live_instances_fails_the_run,
     .timeout = 60) {
  clu_t c;
  clu_init(&c, "a_player_seated_on_two_live_instances_fails_the_run", 606, 2);
  clu_start(&c);
  simrun_player_t ma = manual(0), mb = manual(1), mc = manual(0);
  uint32_t a = add(&c, &ma);
  uint32_t b = add(&c, &mb);
  uint32_t third = add(&c, &mc);
  uint32_t owner = 0, moved = 0;
  sim_bot_record_t move;
  cross_pair(&c, a, b, &owner, &moved, &move);
  uint32_t other = 1 - owner;
  /* The third player waits in the queue on the other instance. */
  CHECK(&c,
        sim_bot_reconnect_to(bot_of(&c, third),
                             (uint16_t)(SIMRUN_PORT + other)) == RT_OK,
        "third to the other instance");
  run_to(&c, now_of(&c) + 200 * MS);
  wait_open(&c, third, now_of(&c) + 2 * SEC);
  CHECK(&c, sim_bot_join(bot_of(&c, third)) == RT_OK, "join third");
  run_to(&c, now_of(&c) + 100 * MS);
  char key[128];
  snprintf(key, sizeof(key), "oc:presence:%s", sim_bot_user_id(bot_of(&c, a)));
  const char *lose[] = {"DEL", key};
  CHECK(&c, simrun_redis_tamper(c.run, 2, lose) == RT_OK, "tamper");
  CHECK(&c,
        sim_bot_reconnect_to(bot_of(&c, a), (uint16_t)(SIMRUN_PORT + other)) ==
            RT_OK,
        "a to the other instance");
  run_to(&c, now_of(&c) + 200 * MS);
  wait_open(&c, a, now_of(&c) + 2 * SEC);
  CHECK(&c, sim_bot_join(bot_of(&c, a)) == RT_OK, "join a again");
  const char *why = run_until_failure(&c, 1 * SEC);
  CHECK(&c, why != NULL, "a player seated on two instances went unnoticed");
  CHECK(&c,
        strstr(why, "plays on") != NULL &&
            strstr(why, sim_bot_user_id(bot_of(&c, a))) != NULL,
        "another failure: %s", why);
  clu_free(&c);
}

/* (C5) Redis names another incarnation the owner of a game that runs on an
 * instance holding a live lease (here the test writes it): the next check
 * fails the run, naming the room, the instance and the owner Redis
 * names. */
Test(sim_cluster, a_room_redis_gives_to_another_owner_fails_the_run,
     .timeout = 60) {
  clu_t c;
  clu_init(&c, "a_room_redis_gives_to_another_owner_fails_the_run", 607, 2);
  clu_start(&c);
  uint32_t a, b, owner, moved;
  sim_bot_record_t move;
  manual_pair(&c, &a, &b, &owner, &moved, &move);
  char ids[ROOMS_MAX][32];
  CHECK(&c, live_rooms(&c, owner, ids, ROOMS_MAX) == 1,
        "one game on its owner");
  /* Checks pass while Redis and the owner agree. */
  run_to(&c, now_of(&c) + 500 * MS);
  simrun_summary_t s = summary(&c);
  CHECK(&c, s.passed, "%s", s.failure);
  char key[64];
  snprintf(key, sizeof(key), "oc:room:%s", ids[0]);
  const char *steal[] = {"HSET", key, "e", "E-elsewhere"};
  CHECK(&c, simrun_redis_tamper(c.run, 4, steal) == RT_OK, "tamper");
  const char *why = run_until_failure(&c, 1 * SEC);
  CHECK(&c, why != NULL, "a room Redis gave to another went unnoticed");
  CHECK(&c,
        strstr(why, ids[0]) != NULL &&
            strstr(why, simrun_instance_id(c.run, owner)) != NULL &&
            strstr(why, "Redis names E-elsewhere its owner") != NULL,
        "another failure: %s", why);
  clu_free(&c);
}

/* ---- Redis --------------------------------------------------------------- */

/* Redis loses its data (FLUSHALL), and g's Manager hears it as its
 * Cluster would tell it (CL_RESET): every room there is let go. */
static void lose_redis_data(clu_t *c, game_t *g) {
  const char *flush[] = {"FLUSHALL"};
  CHECK(c, simrun_redis_tamper(c->run, 1, flush) == RT_OK, "tamper");
  rt_world_t *w = sim_world_rt(simrun_world(c->run));
  rt_msg_t reset = rt_msg_make(GAME_TAG_CL_RESET, NULL, 0);
  CHECK(c, rt_send(w, game_manager_actor(g), &reset) == RT_PUSH_QUEUED,
        "tell the Manager");
}

static void redis_restart(const char *name, uint64_t seed, bool keep) {
  clu_t c;
  clu_init(&c, name, seed, 2);
  clu_start(&c);
  add_clickers(&c, 16, 0, 0);
  run_to(&c, 5 * SEC);
  simrun_summary_t before = summary(&c);
  CHECK(&c, simrun_redis_restart(c.run, 1 * SEC, keep) == RT_OK, "restart");
  CHECK(&c, simrun_redis_restart(c.run, 1 * SEC, keep) == RT_EINVAL,
        "restarting a Redis that is down");
  finish(&c);
  simrun_summary_t s = summary(&c);
  CHECK(&c, s.redis_restarts == 1, "redis_restarts=%" PRIu64, s.redis_restarts);
  CHECK(&c, s.cov[SIMRUN_COV_REDIS_RECOVERED] > 0,
        "the Clusters never joined again");
  /* Matchmaking went on afterwards. */
  CHECK(&c, s.games_started > before.games_started + 2,
        "games started: %" PRIu64 " before the restart, %" PRIu64 " in all",
        before.games_started, s.games_started);
  clu_free(&c);
}

Test(sim_cluster, a_redis_restart_that_keeps_its_data_is_recovered_from,
     .timeout = 60) {
  redis_restart("a_redis_restart_that_keeps_its_data_is_recovered_from", 505,
                true);
}

Test(sim_cluster, a_redis_restart_that_loses_its_data_is_recovered_from,
     .timeout = 60) {
  redis_restart("a_redis_restart_that_loses_its_data_is_recovered_from", 506,
                false);
}

/* (C3) A bug in the checker the swarm found (seed 11131, 5 instances):
 * Redis came back without its data while an owner was paused, and the
 * owner crashed as it woke, before its next renew could tell it. Its
 * games were then known nowhere, as those of an owner that crashed
 * before the data was lost (game_cluster.h, (4)), but L1 only forgave
 * the latter, and failed the run. Both are forgotten, and counted. */
Test(
    sim_cluster,
    a_game_whose_owner_crashes_before_it_hears_redis_lost_its_data_is_forgotten,
    .timeout = 60) {
  clu_t c;
  clu_init(&c,
           "a_game_whose_owner_crashes_before_it_hears_redis_lost_its_data_is_"
           "forgotten",
           507, 2);
  clu_start(&c);
  add_clickers(&c, 16, 0, 0);
  run_to(&c, 5 * SEC);
  char rooms[ROOMS_MAX][32];
  uint32_t n = 0;
  uint32_t owner = busiest(&c, rooms, &n);
  CHECK(&c, simrun_instance_pause(c.run, owner, 10 * SEC) == RT_OK, "pause");
  CHECK(&c, simrun_redis_restart(c.run, 500 * MS, false) == RT_OK, "restart");
  run_to(&c, now_of(&c) + 2 * SEC); /* Redis is back, empty */
  CHECK(&c, simrun_instance_crash(c.run, owner, SEC) == RT_OK, "crash");
  finish(&c);
  simrun_summary_t s = summary(&c);
  CHECK(&c, s.rooms_forgotten >= n,
        "%" PRIu64 " rooms forgotten; the crash took %u that Redis had lost",
        s.rooms_forgotten, n);
  for (uint32_t k = 0; k < n; k++) {
    game_result_t row;
    CHECK(&c, game_store_find_game(simrun__store(c.run), rooms[k], &row) == 0,
          "%s is stored (%s), though nobody knew of it", rooms[k], row.reason);
  }
  clu_free(&c);
}

/* A room whose mailbox is full when its Manager learns that Redis lost
 * its data still hears it (a timer of its own, due now, is a signal no
 * full mailbox refuses): its game ends server_lost at once and both
 * players are told, instead of playing on to record a game whose seats
 * the Manager has already freed. The test loses the data (FLUSHALL),
 * tells the Manager as its Cluster would, and fills the room's mailbox
 * with messages rooms ignore before the Manager takes its turn. */
Test(sim_cluster, a_room_with_a_full_mailbox_still_hears_redis_lost_its_data,
     .timeout = 60) {
  clu_t c;
  clu_init(&c, "a_room_with_a_full_mailbox_still_hears_redis_lost_its_data",
           707, 2);
  clu_start(&c);
  uint32_t a, b, owner, moved;
  sim_bot_record_t move;
  manual_pair(&c, &a, &b, &owner, &moved, &move);
  run_to(&c, now_of(&c) + 500 * MS); /* the countdown runs */
  game_t *g = simrun_instance_game(c.run, owner);
  uint32_t n = 0;
  uint64_t *rooms = game_live_rooms(g, &n);
  CHECK(&c, n == 1, "%u rooms on the owner", n);
  rt_actor_id_t room = rooms[0];
  free(rooms);
  lose_redis_data(&c, g);
  rt_world_t *w = sim_world_rt(simrun_world(c.run));
  const rt_mailbox_t *box = rt_actor_mailbox(w, room);
  CHECK(&c, box != NULL && box->count < box->cap, "the room's mailbox");
  while (box->count < box->cap) {
    rt_msg_t f = rt_msg_make(GAME_TAG_CL_RESET, NULL, 0); /* rooms ignore it */
    CHECK(&c, rt_send(w, room, &f) == RT_PUSH_QUEUED, "fill");
  }
  rt_time_ns told = now_of(&c);
  uint32_t pair[2] = {a, b};
  for (int k = 0; k < 2; k++) {
    sim_bot_record_t over =
        wait_kind(&c, pair[k], SIM_BOT_GAME_OVER, 1, told + 1 * SEC);
    CHECK(&c, strcmp(over.reason, "server_lost") == 0,
          "p%u's game ended %s, not server_lost", pair[k], over.reason);
  }
  game_stats_t st;
  game_get_stats(g, &st);
  CHECK(&c, st.rooms_told_by_timer == 1, "rooms told by a timer: %" PRIu64,
        st.rooms_told_by_timer);
  CHECK(&c, st.rooms_server_lost == 1, "rooms ended server_lost: %" PRIu64,
        st.rooms_server_lost);
  finish(&c);
  clu_free(&c);
}

/* Seed 50603 of the swarm (2 instances, Redis restarted without its data,
 * Store faults): a room its Manager let go when Redis lost its data (the
 * room ends server_lost and stores that itself) waited for its failing
 * Store, and meanwhile a player's connection closed. A Manager tells a
 * room it let go nothing more, so the seat still named that connection,
 * and the check that every seated connection is alive failed the run.
 * The room did right: its GAME_OVER to a connection gone goes to the
 * Manager, which keeps it for the player, who hears it on coming back. */
Test(sim_cluster,
     a_player_who_leaves_a_room_let_go_before_it_stores_hears_its_end_later,
     .timeout = 60) {
  clu_t c;
  clu_init(&c,
           "a_player_who_leaves_a_room_let_go_before_it_stores_hears_its_"
           "end_later",
           708, 2);
  c.cfg.faults.store_down_from = 2 * SEC;
  c.cfg.faults.store_down_until = 6 * SEC;
  clu_start(&c);
  run_to(&c, 200 * MS); /* both Clusters up before a JOIN */
  uint32_t a, b, owner, moved;
  sim_bot_record_t move;
  manual_pair(&c, &a, &b, &owner, &moved, &move);
  run_to(&c, 2500 * MS); /* the game runs; the Store is down */
  game_t *g = simrun_instance_game(c.run, owner);
  lose_redis_data(&c, g);
  run_to(&c, now_of(&c) + 100 * MS);
  CHECK(&c, sim_bot_disconnect(bot_of(&c, a), SIM_BOT_CLOSE_RESET) == RT_OK,
        "a leaves");
  run_to(&c, now_of(&c) + 500 * MS);
  uint32_t n = 0;
  free(game_live_rooms(g, &n));
  CHECK(&c, n == 1, "the room is not waiting for its Store (%u rooms)", n);
  CHECK(&c, count_of(&c, a, SIM_BOT_GAME_OVER) == 0, "a heard the end");
  CHECK(&c, simrun_check(c.run) == 0, "%s", simrun_failure(c.run));
  sim_bot_record_t ob =
      wait_kind(&c, b, SIM_BOT_GAME_OVER, 1, 10 * SEC); /* Store back */
  CHECK(&c, strcmp(ob.reason, "server_lost") == 0, "b: %s", ob.reason);
  CHECK(&c,
        sim_bot_reconnect_to(bot_of(&c, a), (uint16_t)(SIMRUN_PORT + owner)) ==
            RT_OK,
        "a comes back");
  sim_bot_record_t oa = wait_kind(&c, a, SIM_BOT_GAME_OVER, 1, 12 * SEC);
  CHECK(&c,
        strcmp(oa.reason, "server_lost") == 0 &&
            strcmp(oa.room_id, move.room_id) == 0,
        "a heard %s of %s", oa.reason, oa.room_id);
  finish(&c);
  clu_free(&c);
}

/* ---- Partitions ---------------------------------------------------------- */

Test(sim_cluster,
     an_instance_cut_off_redis_answers_join_matchmaking_unavailable,
     .timeout = 60) {
  clu_t c;
  clu_init(&c, "an_instance_cut_off_redis_answers_join_matchmaking_unavailable",
           606, 2);
  clu_start(&c);
  /* early joins as the cut starts (its request waits for the op timeout);
   * late joins once the Cluster knows; both on the cut instance. */
  simrun_player_t pe = manual(1), pl = manual(1);
  uint32_t early = add(&c, &pe);
  uint32_t late = add(&c, &pl);
  add_clickers(&c, 10, 0, 0);
  run_to(&c, 5 * SEC);
  wait_open(&c, early, 6 * SEC);
  wait_open(&c, late, 6 * SEC);
  rt_time_ns cut_at = now_of(&c), heal_at = cut_at + 4 * SEC;
  CHECK(&c, simrun_instance_partition(c.run, 1, 4 * SEC) == RT_OK, "cut");
  run_to(&c, cut_at + 100 * MS);
  CHECK(&c, sim_bot_join(bot_of(&c, early)) == RT_OK, "join early");
  run_to(&c, cut_at + 2500 * MS);
  CHECK(&c, sim_bot_join(bot_of(&c, late)) == RT_OK, "join late");
  uint32_t pair[2] = {early, late};
  for (int k = 0; k < 2; k++) {
    sim_bot_record_t e = wait_kind(&c, pair[k], SIM_BOT_ERROR, 1, heal_at);
    CHECK(&c, strcmp(e.error_code, "matchmaking_unavailable") == 0,
          "p%u's JOIN during the cut answered %s", pair[k], e.error_code);
    CHECK(&c, e.at < heal_at, "answered after the cut healed");
    CHECK(&c, count_of(&c, pair[k], SIM_BOT_GAME_START) == 0,
          "p%u matched while its instance was cut off", pair[k]);
    CHECK(&c, sim_bot_state(bot_of(&c, pair[k])) == SIM_BOT_OPEN,
          "the connection stays open (PROTOCOL.md)");
  }
  /* The cut outlasted the lease: the other instance reaped this one's
   * incarnation, which finds itself fenced when Redis answers again and
   * closes its players (game_cluster.h, (2)). Back on it, a JOIN is
   * taken again. */
  run_to(&c, heal_at + 1 * SEC);
  if (sim_bot_state(bot_of(&c, late)) != SIM_BOT_OPEN)
    CHECK(&c, sim_bot_reconnect_to(bot_of(&c, late), SIMRUN_PORT + 1) == RT_OK,
          "reconnect");
  wait_open(&c, late, now_of(&c) + 2 * SEC);
  uint32_t errors = count_of(&c, late, SIM_BOT_ERROR);
  uint32_t queued = count_of(&c, late, SIM_BOT_QUEUED);
  CHECK(&c, sim_bot_join(bot_of(&c, late)) == RT_OK, "join after the cut");
  wait_kind(&c, late, SIM_BOT_QUEUED, queued + 1, now_of(&c) + 2 * SEC);
  run_to(&c, now_of(&c) + 500 * MS);
  CHECK(&c, count_of(&c, late, SIM_BOT_ERROR) == errors,
        "a JOIN after the cut healed was refused: %s",
        sim_bot_last(bot_of(&c, late), SIM_BOT_ERROR)->error_code);
  finish(&c);
  simrun_summary_t s = summary(&c);
  CHECK(&c, s.partitions == 1, "partitions=%" PRIu64, s.partitions);
  CHECK(&c, s.fenced > 0, "cut off past its lease, and not fenced");
  clu_free(&c);
}

/* ---- Determinism --------------------------------------------------------- */

static void cluster_config(simrun_config_t *cfg, uint64_t seed,
                           uint32_t instances) {
  simrun_config_default(cfg);
  cfg->seed = seed;
  cfg->players = 20;
  cfg->duration = 30 * SEC;
  cfg->instances = instances;
  cfg->game.game_seconds = 10;
  cfg->game.countdown = 1 * SEC;
  char why[256];
  cr_assert_eq(simrun_faults_parse("crash=0.5,pause=0.5,redis=0.5,"
                                   "partition=0.5,rlatency=2ms,rjitter=1ms",
                                   &cfg->faults, why, sizeof(why)),
               0, "%s", why);
}

static simrun_summary_t run_once(const simrun_config_t *cfg) {
  simrun_mix_t mix;
  simrun_mix_draw(cfg->seed, &mix);
  simrun_summary_t s;
  int rc = simrun_run_once(cfg, &mix, NULL, NULL, &s);
  if (rc != 0)
    fprintf(stderr,
            "sim_cluster: seed %" PRIu64 " with %u instances failed: %s\n",
            cfg->seed, cfg->instances, s.failure);
  cr_assert_eq(rc, 0, "seed %" PRIu64 ": %s", cfg->seed, s.failure);
  return s;
}

Test(sim_cluster, a_cluster_run_with_faults_is_a_function_of_its_seed,
     .timeout = 60) {
  uint64_t seed = 707;
  const char *env = getenv("OC_SEED");
  if (env != NULL && *env != '\0')
    seed = strtoull(env, NULL, 10);
  simrun_config_t cfg;
  cluster_config(&cfg, seed, 3);
  simrun_summary_t one = run_once(&cfg), two = run_once(&cfg);
  cr_assert_eq(one.hash, two.hash,
               "seed %" PRIu64 ": %016" PRIx64 " then %016" PRIx64, seed,
               one.hash, two.hash);
  cr_assert_eq(one.redis_digest, two.redis_digest);
  cr_assert_eq(one.deliveries, two.deliveries);
  cr_assert_eq(one.crashes, two.crashes);
  cr_assert_eq(one.pauses, two.pauses);
  cr_assert_eq(one.redis_restarts, two.redis_restarts);
  cr_assert_eq(one.partitions, two.partitions);
  cr_assert(one.crashes + one.pauses + one.redis_restarts + one.partitions > 0,
            "seed %" PRIu64 ": no cluster fault drawn", seed);
  cluster_config(&cfg, seed + 1, 3);
  simrun_summary_t other = run_once(&cfg);
  cr_assert_neq(one.hash, other.hash, "seeds %" PRIu64 " and %" PRIu64 " agree",
                seed, seed + 1);
}

Test(sim_cluster, one_instance_runs_as_if_there_were_no_cluster,
     .timeout = 60) {
  uint64_t seed = 708;
  const char *env = getenv("OC_SEED");
  if (env != NULL && *env != '\0')
    seed = strtoull(env, NULL, 10);
  simrun_config_t cfg;
  cluster_config(&cfg, seed, 0);
  /* The cluster's keys mean nothing to one process. */
  simrun_summary_t zero = run_once(&cfg);
  cfg.instances = 1;
  simrun_summary_t one = run_once(&cfg);
  cr_assert_eq(zero.hash, one.hash,
               "seed %" PRIu64 ": instances 0 %016" PRIx64
               ", instances 1 %016" PRIx64,
               seed, zero.hash, one.hash);
  simrun_faults_default(&cfg.faults);
  cfg.instances = 0;
  simrun_summary_t plain = run_once(&cfg);
  cr_assert_eq(zero.hash, plain.hash,
               "cluster fault keys changed a one-process run");
  cr_assert_eq(zero.instances, 0u);
  cr_assert_eq(
      zero.crashes + zero.pauses + zero.redis_restarts + zero.partitions, 0u);
  for (int i = SIMRUN_COV_ONE_PROCESS_COUNT_; i < SIMRUN_COV_COUNT_; i++)
    cr_assert_eq(zero.cov[i], 0u, "%s reached by one process",
                 simrun_cov_name((simrun_cov_t)i));
}
