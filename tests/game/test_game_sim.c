/* test_game_sim.c: the whole game in the simulated world.
 *
 * Each test builds a seeded simulated world holding the server as every
 * program assembles it (server_start, tools/src/server.h: the game with an
 * in-memory Store and short timings, the API routes, the game's
 * session, token check, metrics and the Client's mailbox rules) on a
 * sim_listen port. Players are sim_bots (sim/sim_bot.h): they log in
 * over HTTP, upgrade to a WebSocket and play through the production code
 * over simulated links, so every rule is checked on the wire, with virtual
 * time that makes each instant exact and each run repeatable.
 *
 * Timings here: countdown 1 s, 10 s games, golden cookies every 2-3 s,
 * 3 s bonus, 2 s reconnect grace; links have 5 ms latency each way and no
 * jitter unless a test says otherwise, so a click sent at t reaches the
 * Room at t + 5 ms and its answer is back at t + 10 ms.
 *
 * A failing check prints the seed, the command that replays the test and
 * the tail of the bots' records. Environment: OC_SEED=<n> replaces a
 * test's seed; OC_DUMP_ALL=1 prints every record of every bot on failure;
 * OC_SIM_LOG=<level> (0 debug .. 3 error) turns the world's log on.
 * Every loop is bounded by virtual time or a count.
 */
#include "game.h"
#include "game_config.h"
#include "game_store.h"
#include "net_server.h"
#include "rt_stream.h"
#include "rt_world.h"
#include "server.h"
#include "sim_bot.h"
#include "sim_pipe.h"
#include "sim_world.h"

#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MS RT_NS_PER_MS
#define SEC RT_NS_PER_S
#define PORT 8080
#define SECRET "test-secret-for-the-simulation"
#define LATENCY (5 * MS)
#define STEP (1 * MS)
#define TURNS_MAX 100000000ull /* per run_to: far above any need */
#define BOTS_MAX 64u
#define CLICKS_LOG_MAX 2048u
#define DUMP_RECORDS_MAX 40u
#define DUMP_BOTS_MAX 6u

static const sim_link_config_t LINK = {.latency = LATENCY};

/* ---- The fixture --------------------------------------------------------- */

/* Store faults: RECORD fails while from <= now < until, cycling through
 * BUSY, FULL and IOERR. */
typedef struct fault_plan {
  rt_world_t *w;
  rt_time_ns from, until;
  uint32_t record_calls;
  uint32_t failed;
} fault_plan_t;

typedef struct fx {
  const char *name;
  uint64_t seed;
  sim_world_t *sw;
  rt_world_t *w;
  game_config_t game_cfg;
  game_store_config_t store_cfg;
  fault_plan_t fault;
  game_t *game;
  net_server_t *srv;
  server_t server; /* game and srv are its */
  sim_bot_t *bots[BOTS_MAX];
  uint32_t bots_len;
  const char *cors_origin; /* --cors-origin, or NULL */
} fx_t;

static void fx_report(const fx_t *fx, const char *what, const char *file,
                      int line);

/* A check that, when it fails, prints the seed, the replay command and
 * what the bots saw, then fails the test with the message. */
#define CHECK(fx, cond, ...)                                                   \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fx_report((fx), #cond, __FILE__, __LINE__);                              \
      cr_assert_fail(__VA_ARGS__);                                             \
    }                                                                          \
  } while (0)

static int fault_hook(void *ctx, game_store_op_t op) {
  static const int codes[] = {SQLITE_BUSY, SQLITE_FULL, SQLITE_IOERR};
  fault_plan_t *f = ctx;
  if (op != GAME_STORE_OP_RECORD)
    return SQLITE_OK;
  f->record_calls++;
  rt_time_ns now = rt_now(f->w);
  if (now < f->from || now >= f->until)
    return SQLITE_OK;
  return codes[f->failed++ % 3];
}

static fx_t *fx_create(const char *name, uint64_t seed) {
  fx_t *fx = calloc(1, sizeof(*fx));
  cr_assert_not_null(fx);
  fx->name = name;
  fx->seed = seed;
  const char *env = getenv("OC_SEED");
  if (env != NULL && *env != '\0')
    fx->seed = strtoull(env, NULL, 10);
  game_config_defaults(&fx->game_cfg);
  fx->game_cfg.countdown = 1 * SEC;
  fx->game_cfg.game_seconds = 10;
  fx->game_cfg.golden_min_s = 2;
  fx->game_cfg.golden_max_s = 3;
  fx->game_cfg.bonus = 3 * SEC;
  fx->game_cfg.reconnect_grace = 2 * SEC;
  fx->store_cfg.path = ":memory:";
  return fx;
}

static int fx_listen(void *ctx, rt_listener_t **out) {
  return sim_listen(ctx, PORT, 0, out);
}

/* The server as every program builds it (server_start), with no static
 * files. */
static void fx_start(fx_t *fx) {
  const char *log = getenv("OC_SIM_LOG");
  sim_config_t sc = {.seed = fx->seed,
                     .log_level = log != NULL ? atoi(log) : RT_LOG_OFF};
  fx->sw = sim_world_create(&sc);
  cr_assert_not_null(fx->sw);
  fx->w = sim_world_rt(fx->sw);
  fx->fault.w = fx->w;
  server_options_t o;
  server_options_default(&o);
  o.static_dir = NULL;
  o.game = fx->game_cfg;
  if (fx->cors_origin != NULL)
    o.cors_origins[o.cors_origins_len++] = fx->cors_origin;
  char err[256];
  CHECK(fx,
        server_start(fx->w, &o, SECRET, &fx->store_cfg, fx_listen, fx->sw,
                     &fx->server, err, sizeof(err)) == RT_OK,
        "server_start");
  fx->game = fx->server.game;
  fx->srv = fx->server.srv;
}

static void fx_free(fx_t *fx) {
  sim_world_destroy(fx->sw);
  server_free(&fx->server);
  for (uint32_t i = 0; i < fx->bots_len; i++)
    sim_bot_destroy(fx->bots[i]);
  free(fx);
}

static void dump_record(const sim_bot_record_t *r) {
  fprintf(stderr, "    t=%.6f conn=%u %-14s p1=%d p2=%d", (double)r->at / SEC,
          r->conn, sim_bot_kind_name((sim_bot_kind_t)r->kind), r->p1_score,
          r->p2_score);
  if (r->has_seq)
    fprintf(stderr, " seq=%" PRId64, r->seq);
  if (r->time_remaining >= 0)
    fprintf(stderr, " timeRemaining=%d", r->time_remaining);
  if (r->code != 0)
    fprintf(stderr, " code=%u", (unsigned)r->code);
  if (r->resumed)
    fprintf(stderr, " resumed");
  if (r->winner[0] != '\0')
    fprintf(stderr, " winner=%s reason=%s", r->winner, r->reason);
  if (r->claimed_by[0] != '\0')
    fprintf(stderr, " claimedBy=%s", r->claimed_by);
  if (r->error_code[0] != '\0')
    fprintf(stderr, " error=%s", r->error_code);
  if (r->kind == SIM_BOT_COOKIE_SPAWN)
    fprintf(stderr, " x=%.3f y=%.3f", r->x, r->y);
  if (r->kind == SIM_BOT_GAME_START)
    fprintf(stderr, " role=%s room=%s opponent=%s", r->role, r->room_id,
            r->opponent);
  fputc('\n', stderr);
}

static void fx_report(const fx_t *fx, const char *what, const char *file,
                      int line) {
  fprintf(stderr,
          "\n%s:%d: game_sim/%s failed at t=%.6f: %s\n"
          "  seed=%" PRIu64 "; replay: OC_SEED=%" PRIu64
          " build/bin/test_game_sim --filter 'game_sim/%s'\n",
          file, line, fx->name, fx->w != NULL ? (double)rt_now(fx->w) / SEC : 0,
          what, fx->seed, fx->seed, fx->name);
  bool all = getenv("OC_DUMP_ALL") != NULL; /* every record of every bot */
  for (uint32_t i = 0; i < fx->bots_len && (all || i < DUMP_BOTS_MAX); i++) {
    const sim_bot_t *b = fx->bots[i];
    uint32_t n;
    const sim_bot_record_t *r = sim_bot_records(b, &n);
    fprintf(stderr, "  bot %u %s (%s): state=%d close=%u records=%u\n", i,
            sim_bot_name(b), sim_bot_user_id(b), (int)sim_bot_state(b),
            (unsigned)sim_bot_close_code(b), n);
    for (uint32_t k = n > DUMP_RECORDS_MAX && !all ? n - DUMP_RECORDS_MAX : 0;
         k < n; k++)
      dump_record(&r[k]);
  }
}

/* ---- Driving the world --------------------------------------------------- */

static rt_time_ns now_of(const fx_t *fx) { return rt_now(fx->w); }

/* Run every event up to and including time t. An idle world (no timer
 * pending) has nothing to do until then: its clock just moves. */
static void run_to(fx_t *fx, rt_time_ns t) {
  sim_run_result_t r = sim_world_run(fx->sw, t, TURNS_MAX);
  CHECK(fx, r != SIM_RUN_TURNS, "the world did not settle before t=%" PRId64,
        t);
  if (rt_now(fx->w) < t)
    rt_world_set_time(fx->w, t);
}

static void run_for(fx_t *fx, rt_time_ns d) { run_to(fx, now_of(fx) + d); }

static sim_bot_t *bot_spawn(fx_t *fx, const sim_bot_config_t *cfg) {
  CHECK(fx, fx->bots_len < BOTS_MAX, "too many bots");
  sim_bot_t *b = NULL;
  CHECK(fx, sim_bot_spawn(fx->sw, PORT, cfg, &b) == RT_OK, "sim_bot_spawn");
  fx->bots[fx->bots_len++] = b;
  return b;
}

static sim_bot_t *bot_add(fx_t *fx, const char *name,
                          const sim_link_config_t *up,
                          const sim_link_config_t *down) {
  sim_bot_config_t cfg = {.name = name, .records_max = 16384};
  if (up != NULL)
    cfg.up = *up;
  if (down != NULL)
    cfg.down = *down;
  return bot_spawn(fx, &cfg);
}

/* A second connection for a known player, or a bad token. */
static sim_bot_t *bot_with_token(fx_t *fx, const char *name, const char *token,
                                 const char *user_id) {
  sim_bot_config_t cfg = {.name = name,
                          .token = token,
                          .user_id = user_id,
                          .up = LINK,
                          .down = LINK,
                          .records_max = 16384};
  return bot_spawn(fx, &cfg);
}

/* The i-th (0-based) record of `kind`, copied, or false. */
static bool nth(const sim_bot_t *b, sim_bot_kind_t kind, uint32_t i,
                sim_bot_record_t *out) {
  uint32_t n;
  const sim_bot_record_t *r = sim_bot_records(b, &n);
  for (uint32_t k = 0; k < n; k++) {
    if (r[k].kind != kind)
      continue;
    if (i-- == 0) {
      *out = r[k];
      return true;
    }
  }
  return false;
}

static uint32_t count_of(const sim_bot_t *b, sim_bot_kind_t kind) {
  return sim_bot_count(b, kind);
}

/* Run in small steps until `b` has n records of `kind`; fail at deadline. */
static sim_bot_record_t wait_kind(fx_t *fx, sim_bot_t *b, sim_bot_kind_t kind,
                                  uint32_t n, rt_time_ns deadline) {
  while (count_of(b, kind) < n && now_of(fx) < deadline)
    run_for(fx, STEP);
  sim_bot_record_t r;
  CHECK(fx, nth(b, kind, n - 1, &r), "%s never got %s #%u by t=%.3f",
        sim_bot_name(b), sim_bot_kind_name(kind), n, (double)deadline / SEC);
  return r;
}

static void wait_state(fx_t *fx, sim_bot_t *b, sim_bot_state_t state,
                       rt_time_ns deadline) {
  while (sim_bot_state(b) != state && now_of(fx) < deadline)
    run_for(fx, STEP);
  CHECK(fx, sim_bot_state(b) == state, "%s: state %d, expected %d",
        sim_bot_name(b), (int)sim_bot_state(b), (int)state);
}

/* GET on a bot's HTTP connection; returns the parsed JSON body (owned). */
static cJSON *http_get_json(fx_t *fx, sim_bot_t *b, const char *path,
                            bool bearer, int *status) {
  CHECK(fx, sim_bot_http_get(b, path, bearer) == RT_OK, "GET %s", path);
  rt_time_ns deadline = now_of(fx) + 5 * SEC;
  const char *body = NULL;
  size_t len = 0;
  while (!sim_bot_http_result(b, status, &body, &len) && now_of(fx) < deadline)
    run_for(fx, STEP);
  CHECK(fx, sim_bot_http_result(b, status, &body, &len), "GET %s: no answer",
        path);
  cJSON *json = cJSON_ParseWithLength(body, len);
  CHECK(fx, json != NULL, "GET %s: not JSON: %s", path, body);
  return json;
}

static const char *json_str(const cJSON *o, const char *name) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
  return cJSON_IsString(v) ? v->valuestring : "(missing)";
}

static double json_num(const cJSON *o, const char *name) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
  return cJSON_IsNumber(v) ? v->valuedouble : -1e9;
}

static int json_bool(const cJSON *o, const char *name) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
  return cJSON_IsBool(v) ? cJSON_IsTrue(v) : -1;
}

/* ---- Matches ------------------------------------------------------------- */

typedef struct match {
  sim_bot_t *by_role[2]; /* [0]: p1, [1]: p2 */
  sim_bot_record_t start[2];
  rt_time_ns t0;    /* the Room sent GAME_START */
  rt_time_ns t_run; /* the countdown ended: clicks count from here */
  rt_time_ns t_end; /* the last tick: the game is over */
} match_t;

static int role_of(const match_t *m, const sim_bot_t *b) {
  return m->by_role[0] == b ? 0 : 1;
}

static int32_t score_of(const sim_bot_record_t *r, int role) {
  return role == 0 ? r->p1_score : r->p2_score;
}

/* Both bots join now (a first); returns when both saw GAME_START. */
static void match_start(fx_t *fx, sim_bot_t *a, sim_bot_t *b, match_t *m) {
  wait_state(fx, a, SIM_BOT_OPEN, now_of(fx) + 5 * SEC);
  wait_state(fx, b, SIM_BOT_OPEN, now_of(fx) + 5 * SEC);
  CHECK(fx, sim_bot_join(a) == RT_OK, "join");
  CHECK(fx, sim_bot_join(b) == RT_OK, "join");
  rt_time_ns deadline = now_of(fx) + 5 * SEC;
  sim_bot_record_t sa = wait_kind(fx, a, SIM_BOT_GAME_START, 1, deadline);
  sim_bot_record_t sb = wait_kind(fx, b, SIM_BOT_GAME_START, 1, deadline);
  CHECK(fx, count_of(a, SIM_BOT_QUEUED) == 1, "one QUEUED");
  CHECK(fx, count_of(b, SIM_BOT_QUEUED) == 1, "one QUEUED");
  CHECK(fx, strcmp(sa.room_id, sb.room_id) == 0, "same room");
  CHECK(fx, strcmp(sa.role, sb.role) != 0, "distinct roles");
  CHECK(fx, strcmp(sa.opponent, sim_bot_user_id(b)) == 0, "a's opponent");
  CHECK(fx, strcmp(sb.opponent, sim_bot_user_id(a)) == 0, "b's opponent");
  CHECK(fx, sa.time_remaining == (int32_t)fx->game_cfg.game_seconds,
        "timeRemaining %d", sa.time_remaining);
  CHECK(fx, !sa.resumed && !sb.resumed, "not resumed");
  int ra = strcmp(sa.role, "p1") == 0 ? 0 : 1;
  m->by_role[ra] = a;
  m->by_role[1 - ra] = b;
  m->start[ra] = sa;
  m->start[1 - ra] = sb;
  /* GAME_START left the Room at once: it arrived one link latency later. */
  CHECK(fx, sa.at == sb.at, "GAME_START at the same instant");
  m->t0 = sa.at - LATENCY;
  m->t_run = m->t0 + fx->game_cfg.countdown;
  m->t_end =
      m->t_run + (rt_time_ns)fx->game_cfg.game_seconds * fx->game_cfg.tick;
}

/* Clicks a test sent, for the scoring model. */
typedef struct click_log {
  rt_time_ns sent[CLICKS_LOG_MAX];
  int64_t seq[CLICKS_LOG_MAX];
  uint32_t n;
  int64_t next_seq;
} click_log_t;

static void click(fx_t *fx, sim_bot_t *b, click_log_t *log) {
  CHECK(fx, log->n < CLICKS_LOG_MAX, "click log full");
  int64_t seq = ++log->next_seq;
  CHECK(fx, sim_bot_click(b, seq) == RT_OK, "click");
  log->sent[log->n] = now_of(fx);
  log->seq[log->n] = seq;
  log->n++;
}

/* The claims `b` won, as Room times: a claim UPDATE leaves the Room at the
 * claim and arrives one latency later. */
static uint32_t claims_of(const sim_bot_t *observer, const char *user_id,
                          rt_time_ns *out, uint32_t cap) {
  uint32_t n = 0;
  sim_bot_record_t r;
  for (uint32_t i = 0; nth(observer, SIM_BOT_UPDATE_CLAIM, i, &r); i++)
    if (strcmp(r.claimed_by, user_id) == 0 && n < cap)
      out[n++] = r.at - LATENCY;
  return n;
}

/* PROTOCOL.md's rule: 0 outside [t_run, t_end); 2 inside a bonus window
 * [claim, claim + bonus) of this player; else 1. */
static int32_t model_points(const fx_t *fx, const match_t *m,
                            const rt_time_ns *claims, uint32_t nclaims,
                            rt_time_ns at_room) {
  if (at_room < m->t_run || at_room >= m->t_end)
    return 0;
  for (uint32_t i = 0; i < nclaims; i++)
    if (claims[i] <= at_room && at_room < claims[i] + fx->game_cfg.bonus)
      return 2;
  return 1;
}

/* The click UPDATE that answered `seq`, copied. */
static bool ack_of(const sim_bot_t *b, int64_t seq, sim_bot_record_t *out) {
  uint32_t n;
  const sim_bot_record_t *r = sim_bot_records(b, &n);
  for (uint32_t k = 0; k < n; k++) {
    if (r[k].kind == SIM_BOT_UPDATE_CLICK && r[k].has_seq && r[k].seq == seq) {
      *out = r[k];
      return true;
    }
  }
  return false;
}

/* Every logged click was answered, and each answer's score moved by what
 * the model says; returns the model's total. */
static int32_t check_clicks(fx_t *fx, const match_t *m, sim_bot_t *b,
                            const click_log_t *log) {
  int role = role_of(m, b);
  rt_time_ns claims[64];
  uint32_t nclaims = claims_of(b, sim_bot_user_id(b), claims, 64);
  int32_t total = 0, prev = 0;
  for (uint32_t i = 0; i < log->n; i++) {
    sim_bot_record_t ack;
    CHECK(fx, ack_of(b, log->seq[i], &ack), "%s: no answer to seq %" PRId64,
          sim_bot_name(b), log->seq[i]);
    int32_t want = model_points(fx, m, claims, nclaims, log->sent[i] + LATENCY);
    int32_t got = score_of(&ack, role) - prev;
    CHECK(fx, got == want,
          "%s: click seq %" PRId64 " sent at %.6f scored %d, expected %d",
          sim_bot_name(b), log->seq[i], (double)log->sent[i] / SEC, got, want);
    CHECK(fx, ack.at == log->sent[i] + 2 * LATENCY,
          "%s: seq %" PRId64 " answered after %" PRId64 " ns", sim_bot_name(b),
          log->seq[i], ack.at - log->sent[i]);
    prev = score_of(&ack, role);
    total += want;
  }
  return total;
}

/* Forget logged clicks sent at or after `from`; returns how many. */
static uint32_t log_trim(click_log_t *log, rt_time_ns from) {
  uint32_t n = log->n;
  while (log->n > 0 && log->sent[log->n - 1] >= from)
    log->n--;
  return n - log->n;
}

/* Golden cookies appear only while the game runs: never at its end. */
static void check_spawns_in_game(fx_t *fx, const match_t *m) {
  for (int i = 0; i < 2; i++) {
    sim_bot_record_t r;
    for (uint32_t k = 0; nth(m->by_role[i], SIM_BOT_COOKIE_SPAWN, k, &r); k++)
      CHECK(fx, r.at - LATENCY > m->t_run && r.at - LATENCY < m->t_end,
            "COOKIE_SPAWN at %.6f, the game runs (%.6f, %.6f)",
            (double)(r.at - LATENCY) / SEC, (double)m->t_run / SEC,
            (double)m->t_end / SEC);
  }
}

static void check_same_game_over(fx_t *fx, const match_t *m,
                                 sim_bot_record_t *out) {
  sim_bot_record_t o1, o2;
  CHECK(fx, nth(m->by_role[0], SIM_BOT_GAME_OVER, 0, &o1), "p1 GAME_OVER");
  CHECK(fx, nth(m->by_role[1], SIM_BOT_GAME_OVER, 0, &o2), "p2 GAME_OVER");
  CHECK(fx, count_of(m->by_role[0], SIM_BOT_GAME_OVER) == 1, "one GAME_OVER");
  CHECK(fx, count_of(m->by_role[1], SIM_BOT_GAME_OVER) == 1, "one GAME_OVER");
  CHECK(fx, strcmp(o1.winner, o2.winner) == 0, "winner %s vs %s", o1.winner,
        o2.winner);
  CHECK(fx, strcmp(o1.reason, o2.reason) == 0, "reason");
  CHECK(fx, o1.p1_score == o2.p1_score && o1.p2_score == o2.p2_score,
        "scores %d:%d vs %d:%d", o1.p1_score, o1.p2_score, o2.p1_score,
        o2.p2_score);
  *out = o1;
}

/* ---- Tests: a match played to time --------------------------------------- */

typedef struct player_plan {
  sim_bot_t *bot;
  click_log_t log;
  rt_time_ns period;
  rt_time_ns next;
} player_plan_t;

Test(game_sim,
     a_full_match_scores_each_accepted_click_doubling_inside_the_bonus) {
  fx_t *fx = fx_create(
      "a_full_match_scores_each_accepted_click_doubling_inside_the_bonus",
      1001);
  fx_start(fx);
  sim_bot_t *ada = bot_add(fx, "Ada", &LINK, &LINK);
  sim_bot_t *bob = bot_add(fx, "Bob", &LINK, &LINK);
  match_t m;
  match_start(fx, ada, bob, &m);
  player_plan_t plan[2];
  memset(plan, 0, sizeof(plan));
  plan[0] = (player_plan_t){
      .bot = ada, .period = 150 * MS, .next = m.t_run + 20 * MS};
  plan[1] = (player_plan_t){
      .bot = bob, .period = 250 * MS, .next = m.t_run + 27 * MS};
  /* Golden cookies: claimed 3 ms after they show, by Ada and Bob in turn.
   * Around Ada's first bonus end, two more clicks of hers reach the Room
   * 1 ns before it and exactly at it. */
  uint32_t spawns_seen = 0, claims_sent = 0;
  rt_time_ns claim_at = RT_TIME_NEVER;
  rt_time_ns edge[2] = {RT_TIME_NEVER, RT_TIME_NEVER};
  int64_t edge_seq[2] = {-1, -1};
  bool edges_planned = false;
  rt_time_ns stop_clicking = m.t_end - 100 * MS;
  while (now_of(fx) <= m.t_end + 500 * MS) {
    rt_time_ns now = now_of(fx);
    for (int i = 0; i < 2; i++) {
      if (plan[i].next <= now && plan[i].next < stop_clicking) {
        click(fx, plan[i].bot, &plan[i].log);
        plan[i].next += plan[i].period;
      }
    }
    for (int k = 0; k < 2; k++) {
      if (edge[k] == now) {
        click(fx, ada, &plan[0].log);
        edge_seq[k] = plan[0].log.seq[plan[0].log.n - 1];
        edge[k] = RT_TIME_NEVER;
      }
    }
    if (claim_at == now) {
      CHECK(fx, sim_bot_cookie_click(plan[claims_sent % 2].bot) == RT_OK,
            "cookie click");
      claims_sent++;
      claim_at = RT_TIME_NEVER;
    }
    uint32_t spawns = count_of(ada, SIM_BOT_COOKIE_SPAWN);
    if (spawns > spawns_seen) {
      spawns_seen = spawns;
      claim_at = now + 3 * MS;
    }
    sim_bot_record_t first_claim;
    if (!edges_planned && nth(ada, SIM_BOT_UPDATE_CLAIM, 0, &first_claim)) {
      CHECK(fx, strcmp(first_claim.claimed_by, sim_bot_user_id(ada)) == 0,
            "Ada claims first");
      rt_time_ns c = first_claim.at - LATENCY;
      edge[0] = c + fx->game_cfg.bonus - 1 - LATENCY;
      edge[1] = c + fx->game_cfg.bonus - LATENCY;
      edges_planned = true;
    }
    rt_time_ns next = now + STEP;
    rt_time_ns candidates[] = {plan[0].next, plan[1].next, edge[0], edge[1],
                               claim_at};
    for (size_t i = 0; i < sizeof(candidates) / sizeof(candidates[0]); i++)
      if (candidates[i] > now && candidates[i] < next)
        next = candidates[i];
    run_to(fx, next);
  }
  CHECK(fx, edges_planned && edge_seq[0] > 0 && edge_seq[1] > 0,
        "the bonus edge clicks were sent");
  CHECK(fx, claims_sent >= 3, "%u golden cookies claimed", claims_sent);
  /* The bonus window is [claim, claim + bonus). */
  sim_bot_record_t before, at_end, prev;
  CHECK(fx, ack_of(ada, edge_seq[0], &before), "edge ack");
  CHECK(fx, ack_of(ada, edge_seq[1], &at_end), "edge ack");
  CHECK(fx, ack_of(ada, edge_seq[0] - 1, &prev), "edge ack");
  int ra = role_of(&m, ada);
  CHECK(fx, score_of(&before, ra) - score_of(&prev, ra) == 2,
        "a click 1 ns before the bonus ends scores 2");
  CHECK(fx, score_of(&at_end, ra) - score_of(&before, ra) == 1,
        "a click at the bonus end scores 1");
  /* Every click scored what the rule says, and the totals are the sums. */
  int32_t want_ada = check_clicks(fx, &m, ada, &plan[0].log);
  int32_t want_bob = check_clicks(fx, &m, bob, &plan[1].log);
  CHECK(fx, want_ada > want_bob, "Ada should win: %d vs %d", want_ada,
        want_bob);
  sim_bot_record_t over;
  check_same_game_over(fx, &m, &over);
  check_spawns_in_game(fx, &m);
  CHECK(fx, score_of(&over, ra) == want_ada, "Ada %d, expected %d",
        score_of(&over, ra), want_ada);
  CHECK(fx, score_of(&over, 1 - ra) == want_bob, "Bob %d, expected %d",
        score_of(&over, 1 - ra), want_bob);
  CHECK(fx, strcmp(over.winner, sim_bot_user_id(ada)) == 0, "winner %s",
        over.winner);
  CHECK(fx, strcmp(over.reason, "time") == 0, "reason %s", over.reason);
  CHECK(fx, over.at == m.t_end + LATENCY, "GAME_OVER at %.6f, end %.6f",
        (double)over.at / SEC, (double)m.t_end / SEC);
  /* Ticks: the full state at the start, then one per second, 10 .. 1. */
  for (int i = 0; i < 2; i++) {
    sim_bot_t *b = m.by_role[i];
    CHECK(fx, count_of(b, SIM_BOT_UPDATE_TICK) == fx->game_cfg.game_seconds,
          "%u ticks", count_of(b, SIM_BOT_UPDATE_TICK));
    for (uint32_t k = 0; k < fx->game_cfg.game_seconds; k++) {
      sim_bot_record_t t;
      nth(b, SIM_BOT_UPDATE_TICK, k, &t);
      CHECK(fx, t.time_remaining == (int32_t)(fx->game_cfg.game_seconds - k),
            "tick %u says %d", k, t.time_remaining);
    }
    CHECK(fx, count_of(b, SIM_BOT_ERROR) == 0, "no errors");
    CHECK(fx, count_of(b, SIM_BOT_UPDATE_CLAIM) == claims_sent,
          "every claim told to both");
  }
  /* Bob saw every one of Ada's scored clicks as OPPONENT_CLICK. */
  int32_t opp = 0;
  sim_bot_record_t r;
  for (uint32_t i = 0; nth(bob, SIM_BOT_OPPONENT_CLICK, i, &r); i++)
    opp += r.count;
  CHECK(fx, opp == want_ada, "OPPONENT_CLICK sums to %d, expected %d", opp,
        want_ada);

  /* History and leaderboard, over HTTP. */
  int status;
  cJSON *h = http_get_json(fx, ada, "/api/history", true, &status);
  CHECK(fx, status == 200, "history status %d", status);
  CHECK(fx, json_num(h, "totalCount") == 1, "totalCount");
  const cJSON *games = cJSON_GetObjectItemCaseSensitive(h, "games");
  CHECK(fx, cJSON_GetArraySize(games) == 1, "one game");
  const cJSON *g = cJSON_GetArrayItem(games, 0);
  CHECK(fx, strcmp(json_str(g, "gameId"), m.start[0].room_id) == 0, "gameId");
  CHECK(fx, json_num(g, "score") == want_ada, "score");
  CHECK(fx, json_num(g, "opponentScore") == want_bob, "opponentScore");
  CHECK(fx, strcmp(json_str(g, "opponent"), sim_bot_user_id(bob)) == 0,
        "opponent");
  CHECK(fx, strcmp(json_str(g, "opponentName"), "Bob") == 0, "opponentName");
  CHECK(fx, json_bool(g, "won") == 1, "won");
  CHECK(fx, strcmp(json_str(g, "winner"), sim_bot_user_id(ada)) == 0, "winner");
  CHECK(fx, strcmp(json_str(g, "reason"), "time") == 0, "reason");
  CHECK(fx,
        json_num(g, "timestamp") ==
            (double)((SIM_EPOCH_DEFAULT_NS + m.t_end) / SEC),
        "timestamp %.0f", json_num(g, "timestamp"));
  /* The original server's names, for its frontend. */
  CHECK(fx, strcmp(json_str(g, "winnerId"), sim_bot_user_id(ada)) == 0,
        "winnerId");
  CHECK(fx, strcmp(json_str(g, "playerName"), "Ada") == 0, "playerName");
  CHECK(fx,
        strcmp(json_str(g, "playerPicture"), "") == 0 &&
            strcmp(json_str(g, "opponentPicture"), "") == 0,
        "no pictures");
  cJSON_Delete(h);
  h = http_get_json(fx, bob, "/api/history", true, &status);
  g = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(h, "games"), 0);
  CHECK(fx, status == 200 && json_num(h, "totalCount") == 1, "Bob's history");
  CHECK(fx, json_bool(g, "won") == 0 && json_num(g, "score") == want_bob,
        "Bob lost with his score");
  CHECK(fx, strcmp(json_str(g, "playerName"), "Bob") == 0, "Bob's own name");
  CHECK(fx, strcmp(json_str(g, "winnerId"), sim_bot_user_id(ada)) == 0,
        "Bob's winnerId");
  cJSON_Delete(h);
  cJSON *lb = http_get_json(fx, bob, "/api/leaderboard", false, &status);
  CHECK(fx, status == 200 && cJSON_GetArraySize(lb) == 2, "leaderboard");
  const cJSON *first = cJSON_GetArrayItem(lb, 0);
  const cJSON *second = cJSON_GetArrayItem(lb, 1);
  CHECK(fx, strcmp(json_str(first, "name"), "Ada") == 0, "Ada first");
  CHECK(fx, json_num(first, "score") == want_ada, "Ada's total");
  CHECK(fx, json_num(first, "games") == 1 && json_num(first, "wins") == 1,
        "Ada's games and wins");
  CHECK(fx, strcmp(json_str(second, "name"), "Bob") == 0, "Bob second");
  CHECK(fx, json_num(second, "score") == want_bob, "Bob's total");
  CHECK(fx, json_num(second, "games") == 1 && json_num(second, "wins") == 0,
        "Bob's games and wins");
  CHECK(fx,
        cJSON_GetObjectItemCaseSensitive(first, "userId") == NULL &&
            cJSON_GetObjectItemCaseSensitive(first, "id") == NULL,
        "never user ids");
  cJSON_Delete(lb);
  game_stats_t st;
  game_get_stats(fx->game, &st);
  CHECK(fx, st.rooms_finished[GAME_END_TIME] == 1, "one game by time");
  CHECK(fx, st.clicks_scored == plan[0].log.n + plan[1].log.n,
        "clicks scored %" PRIu64, st.clicks_scored);
  fx_free(fx);
}

/* Both players click at the same instants every `period` from `from` until
 * `until` (send times); nobody touches a golden cookie. */
static void click_together(fx_t *fx, match_t *m, click_log_t logs[2],
                           rt_time_ns from, rt_time_ns until,
                           rt_time_ns period) {
  for (rt_time_ns t = from; t < until; t += period) {
    run_to(fx, t);
    click(fx, m->by_role[0], &logs[0]);
    click(fx, m->by_role[1], &logs[1]);
  }
}

Test(game_sim, equal_clicks_end_in_a_draw_that_is_a_win_for_nobody) {
  fx_t *fx =
      fx_create("equal_clicks_end_in_a_draw_that_is_a_win_for_nobody", 1002);
  fx_start(fx);
  sim_bot_t *ada = bot_add(fx, "Ada", &LINK, &LINK);
  sim_bot_t *bob = bot_add(fx, "Bob", &LINK, &LINK);
  match_t m;
  match_start(fx, ada, bob, &m);
  click_log_t logs[2];
  memset(logs, 0, sizeof(logs));
  click_together(fx, &m, logs, m.t_run + 10 * MS, m.t_end - 50 * MS, 200 * MS);
  wait_kind(fx, ada, SIM_BOT_GAME_OVER, 1, m.t_end + SEC);
  wait_kind(fx, bob, SIM_BOT_GAME_OVER, 1, m.t_end + SEC);
  int32_t s1 = check_clicks(fx, &m, m.by_role[0], &logs[0]);
  int32_t s2 = check_clicks(fx, &m, m.by_role[1], &logs[1]);
  CHECK(fx, s1 == s2 && s1 == 50, "scores %d and %d", s1, s2);
  sim_bot_record_t over;
  check_same_game_over(fx, &m, &over);
  check_spawns_in_game(fx, &m);
  CHECK(fx, strcmp(over.winner, "draw") == 0, "winner %s", over.winner);
  CHECK(fx, strcmp(over.reason, "time") == 0, "reason %s", over.reason);
  CHECK(fx, over.p1_score == s1 && over.p2_score == s2, "final scores");
  int status;
  for (int i = 0; i < 2; i++) {
    cJSON *h = http_get_json(fx, m.by_role[i], "/api/history", true, &status);
    const cJSON *g =
        cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(h, "games"), 0);
    CHECK(fx, status == 200 && json_num(h, "totalCount") == 1, "history");
    CHECK(fx, json_bool(g, "won") == 0, "a draw is won by nobody");
    CHECK(fx, strcmp(json_str(g, "winner"), "draw") == 0, "winner draw");
    CHECK(fx, strcmp(json_str(g, "winnerId"), "draw") == 0, "winnerId draw");
    cJSON_Delete(h);
  }
  cJSON *lb =
      http_get_json(fx, ada, "/api/leaderboard?limit=5", false, &status);
  CHECK(fx, status == 200 && cJSON_GetArraySize(lb) == 2, "leaderboard");
  for (int i = 0; i < 2; i++) {
    const cJSON *e = cJSON_GetArrayItem(lb, i);
    CHECK(fx,
          json_num(e, "score") == s1 && json_num(e, "games") == 1 &&
              json_num(e, "wins") == 0,
          "entry %d", i);
  }
  /* Equal totals: by name. */
  CHECK(fx, strcmp(json_str(cJSON_GetArrayItem(lb, 0), "name"), "Ada") == 0,
        "ties by name");
  cJSON_Delete(lb);
  fx_free(fx);
}

/* History of a finished quit or disconnect game, and an empty leaderboard
 * (only games played to time add to it). */
static void check_recorded_not_ranked(fx_t *fx, const match_t *m,
                                      sim_bot_t *winner, sim_bot_t *loser,
                                      const char *reason) {
  int status;
  cJSON *h = http_get_json(fx, winner, "/api/history", true, &status);
  const cJSON *g =
      cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(h, "games"), 0);
  CHECK(fx, status == 200 && json_num(h, "totalCount") == 1, "history");
  CHECK(fx, strcmp(json_str(g, "gameId"), m->start[0].room_id) == 0, "gameId");
  CHECK(fx, strcmp(json_str(g, "reason"), reason) == 0, "reason %s",
        json_str(g, "reason"));
  CHECK(fx, json_bool(g, "won") == 1, "won");
  CHECK(fx, strcmp(json_str(g, "opponent"), sim_bot_user_id(loser)) == 0,
        "opponent");
  cJSON_Delete(h);
  cJSON *lb = http_get_json(fx, winner, "/api/leaderboard", false, &status);
  CHECK(fx, status == 200 && cJSON_IsArray(lb) && cJSON_GetArraySize(lb) == 0,
        "a %s game is not ranked", reason);
  cJSON_Delete(lb);
}

Test(game_sim,
     a_player_who_quits_loses_and_the_opponent_wins_with_reason_quit) {
  fx_t *fx = fx_create(
      "a_player_who_quits_loses_and_the_opponent_wins_with_reason_quit", 1003);
  fx_start(fx);
  sim_bot_t *ada = bot_add(fx, "Ada", &LINK, &LINK);
  sim_bot_t *bob = bot_add(fx, "Bob", &LINK, &LINK);
  match_t m;
  match_start(fx, ada, bob, &m);
  click_log_t logs[2];
  memset(logs, 0, sizeof(logs));
  click_together(fx, &m, logs, m.t_run + 10 * MS, m.t_run + 2 * SEC, 250 * MS);
  rt_time_ns quit_at = m.t_run + 3 * SEC;
  run_to(fx, quit_at);
  CHECK(fx, sim_bot_quit(ada) == RT_OK, "quit");
  sim_bot_record_t over_bob =
      wait_kind(fx, bob, SIM_BOT_GAME_OVER, 1, quit_at + SEC);
  wait_kind(fx, ada, SIM_BOT_GAME_OVER, 1, quit_at + SEC);
  sim_bot_record_t over;
  check_same_game_over(fx, &m, &over);
  CHECK(fx, strcmp(over.winner, sim_bot_user_id(bob)) == 0, "Bob wins");
  CHECK(fx, strcmp(over.reason, "quit") == 0, "reason %s", over.reason);
  CHECK(fx, over_bob.at == quit_at + 2 * LATENCY, "GAME_OVER at once");
  int32_t s1 = check_clicks(fx, &m, m.by_role[0], &logs[0]);
  int32_t s2 = check_clicks(fx, &m, m.by_role[1], &logs[1]);
  CHECK(fx, over.p1_score == s1 && over.p2_score == s2, "scores");
  /* The room is gone: no more ticks, and both are free to play again. */
  run_for(fx, 2 * SEC);
  CHECK(fx, count_of(bob, SIM_BOT_UPDATE_TICK) == 4, "ticks stopped: %u",
        count_of(bob, SIM_BOT_UPDATE_TICK));
  check_recorded_not_ranked(fx, &m, bob, ada, "quit");
  CHECK(fx, sim_bot_join(ada) == RT_OK, "join");
  wait_kind(fx, ada, SIM_BOT_QUEUED, 2, now_of(fx) + SEC);
  game_stats_t st;
  game_get_stats(fx->game, &st);
  CHECK(fx,
        st.rooms_finished[GAME_END_QUIT] == 1 && st.rooms == 0 &&
            st.queued == 1,
        "stats: quit %" PRIu64 " rooms %u queued %u",
        st.rooms_finished[GAME_END_QUIT], st.rooms, st.queued);
  fx_free(fx);
}

Test(game_sim, a_player_gone_past_the_grace_loses_by_opponent_disconnected) {
  fx_t *fx = fx_create(
      "a_player_gone_past_the_grace_loses_by_opponent_disconnected", 1004);
  fx_start(fx);
  sim_bot_t *ada = bot_add(fx, "Ada", &LINK, &LINK);
  sim_bot_t *bob = bot_add(fx, "Bob", &LINK, &LINK);
  match_t m;
  match_start(fx, ada, bob, &m);
  click_log_t logs[2];
  memset(logs, 0, sizeof(logs));
  click_together(fx, &m, logs, m.t_run + 10 * MS, m.t_run + 2 * SEC, 250 * MS);
  /* The connection just ends: no close frame (a closed laptop lid). */
  rt_time_ns gone_at = m.t_run + 2500 * MS;
  run_to(fx, gone_at);
  CHECK(fx, sim_bot_disconnect(ada, SIM_BOT_CLOSE_STREAM) == RT_OK, "drop");
  /* The server reads EOF one latency later; the grace runs from there. */
  rt_time_ns grace_end = gone_at + LATENCY + fx->game_cfg.reconnect_grace;
  run_to(fx, grace_end + LATENCY - 1);
  CHECK(fx, count_of(bob, SIM_BOT_GAME_OVER) == 0, "not before the grace");
  sim_bot_record_t over =
      wait_kind(fx, bob, SIM_BOT_GAME_OVER, 1, grace_end + SEC);
  CHECK(fx, over.at == grace_end + LATENCY, "GAME_OVER at %.6f",
        (double)over.at / SEC);
  CHECK(fx, strcmp(over.winner, sim_bot_user_id(bob)) == 0, "Bob wins");
  CHECK(fx, strcmp(over.reason, "opponent_disconnected") == 0, "reason %s",
        over.reason);
  int32_t s1 = check_clicks(fx, &m, m.by_role[0], &logs[0]);
  int32_t s2 = check_clicks(fx, &m, m.by_role[1], &logs[1]);
  CHECK(fx, over.p1_score == s1 && over.p2_score == s2, "scores");
  CHECK(fx,
        sim_bot_state(ada) == SIM_BOT_DISCONNECTED &&
            count_of(ada, SIM_BOT_GAME_OVER) == 0,
        "Ada is gone");
  /* The room kept running during the grace. */
  CHECK(fx, count_of(bob, SIM_BOT_UPDATE_TICK) == 5, "ticks %u",
        count_of(bob, SIM_BOT_UPDATE_TICK));
  check_recorded_not_ranked(fx, &m, bob, ada, "opponent_disconnected");
  game_stats_t st;
  game_get_stats(fx->game, &st);
  CHECK(fx, st.rooms_finished[GAME_END_DISCONNECTED] == 1, "stats");
  CHECK(fx, st.players == 1 && st.connected == 1, "Ada forgotten: %u, %u",
        st.players, st.connected);
  fx_free(fx);
}

Test(game_sim, a_player_back_within_the_grace_resumes_with_the_current_state) {
  fx_t *fx = fx_create(
      "a_player_back_within_the_grace_resumes_with_the_current_state", 1005);
  fx_start(fx);
  sim_bot_t *ada = bot_add(fx, "Ada", &LINK, &LINK);
  sim_bot_t *bob = bot_add(fx, "Bob", &LINK, &LINK);
  match_t m;
  match_start(fx, ada, bob, &m);
  int ra = role_of(&m, ada);
  click_log_t logs[2];
  memset(logs, 0, sizeof(logs));
  /* Both click until Ada's connection is reset, then Bob alone. */
  rt_time_ns reset_at = m.t_run + 3500 * MS;
  click_together(fx, &m, logs, m.t_run + 10 * MS, reset_at, 300 * MS);
  run_to(fx, reset_at);
  CHECK(fx, count_of(ada, SIM_BOT_COOKIE_SPAWN) >= 1,
        "a golden cookie is out (nobody claims it)");
  CHECK(fx, sim_bot_disconnect(ada, SIM_BOT_CLOSE_RESET) == RT_OK, "reset");
  rt_time_ns back_at = reset_at + 1 * SEC;
  for (rt_time_ns t = reset_at + 40 * MS; t < back_at; t += 300 * MS) {
    run_to(fx, t);
    click(fx, bob, &logs[1 - ra]);
  }
  run_to(fx, back_at);
  CHECK(fx, sim_bot_reconnect(ada) == RT_OK, "reconnect");
  sim_bot_record_t start =
      wait_kind(fx, ada, SIM_BOT_GAME_START, 2, back_at + SEC);
  /* The upgrade reached the server one latency after it was sent. */
  rt_time_ns resumed_at = back_at + LATENCY;
  CHECK(fx, start.conn == 2 && start.resumed, "resumed on the new connection");
  CHECK(fx, start.at == resumed_at + LATENCY, "GAME_START at %.6f",
        (double)start.at / SEC);
  CHECK(fx,
        strcmp(start.room_id, m.start[ra].room_id) == 0 &&
            strcmp(start.role, m.start[ra].role) == 0 &&
            strcmp(start.opponent, sim_bot_user_id(bob)) == 0,
        "same room, role and opponent");
  /* The current state: the Room's clock and every click it took so far. */
  int32_t seconds_run = (int32_t)((resumed_at - m.t_run) / SEC);
  CHECK(fx,
        start.time_remaining ==
            (int32_t)fx->game_cfg.game_seconds - seconds_run,
        "timeRemaining %d", start.time_remaining);
  int32_t want[2] = {0, 0};
  for (int i = 0; i < 2; i++)
    for (uint32_t k = 0; k < logs[i].n; k++)
      want[i] += logs[i].sent[k] + LATENCY < resumed_at ? 1 : 0;
  CHECK(fx, start.p1_score == want[0] && start.p2_score == want[1],
        "scores %d:%d, expected %d:%d", start.p1_score, start.p2_score, want[0],
        want[1]);
  /* The active golden cookie, where Bob sees it. */
  sim_bot_record_t spawn, bob_spawn = {0}, r;
  CHECK(fx,
        nth(ada, SIM_BOT_COOKIE_SPAWN, count_of(ada, SIM_BOT_COOKIE_SPAWN) - 1,
            &spawn),
        "spawn");
  for (uint32_t i = 0; nth(bob, SIM_BOT_COOKIE_SPAWN, i, &r); i++)
    if (r.at - LATENCY <= resumed_at)
      bob_spawn = r;
  CHECK(fx, spawn.conn == 2 && spawn.at == start.at, "COOKIE_SPAWN follows");
  CHECK(fx, spawn.x == bob_spawn.x && spawn.y == bob_spawn.y,
        "the same cookie: %.3f,%.3f vs %.3f,%.3f", spawn.x, spawn.y,
        bob_spawn.x, bob_spawn.y);
  /* Play goes on and ends by time; Ada's new clicks count. */
  click_together(fx, &m, logs, back_at + 100 * MS, m.t_end - 100 * MS,
                 300 * MS);
  sim_bot_record_t over =
      wait_kind(fx, ada, SIM_BOT_GAME_OVER, 1, m.t_end + SEC);
  wait_kind(fx, bob, SIM_BOT_GAME_OVER, 1, m.t_end + SEC);
  CHECK(fx, over.conn == 2 && strcmp(over.reason, "time") == 0, "by time");
  CHECK(fx, over.at == m.t_end + LATENCY, "at the end");
  int32_t s[2];
  for (int i = 0; i < 2; i++)
    s[i] = check_clicks(fx, &m, m.by_role[i], &logs[i]);
  sim_bot_record_t same;
  check_same_game_over(fx, &m, &same);
  CHECK(fx, over.p1_score == s[0] && over.p2_score == s[1],
        "final %d:%d, expected %d:%d", over.p1_score, over.p2_score, s[0],
        s[1]);
  CHECK(fx, count_of(ada, SIM_BOT_CLOSED) == 1, "one drop");
  game_stats_t st;
  game_get_stats(fx->game, &st);
  CHECK(fx, st.resumed == 1 && st.rooms_finished[GAME_END_TIME] == 1, "stats");
  fx_free(fx);
}

/* A lobby connection (not queued, not playing) silent for lobby_idle is
 * closed with 4002 "idle", not a moment before; a message starts the idle
 * time again; a queued player and players in a game (silent or not) are
 * never closed for it, and a player back in the lobby after a game gets
 * the whole idle time from there. */
Test(game_sim, a_silent_lobby_connection_closes_4002_and_no_one_else_does) {
  fx_t *fx = fx_create(
      "a_silent_lobby_connection_closes_4002_and_no_one_else_does", 1044);
  const rt_time_ns idle_s = 5 * SEC;
  fx->game_cfg.lobby_idle = idle_s;
  fx_start(fx);
  sim_bot_t *idle = bot_add(fx, "Idle", &LINK, &LINK);
  sim_bot_t *chatty = bot_add(fx, "Chatty", &LINK, &LINK);
  sim_bot_t *queued = bot_add(fx, "Queued", &LINK, &LINK);
  wait_state(fx, idle, SIM_BOT_OPEN, 5 * SEC);
  wait_state(fx, chatty, SIM_BOT_OPEN, 5 * SEC);
  wait_state(fx, queued, SIM_BOT_OPEN, 5 * SEC);
  rt_time_ns opened = now_of(fx);
  CHECK(fx, sim_bot_join(queued) == RT_OK, "join");
  run_to(fx, opened + 3 * SEC);
  rt_time_ns chatted = now_of(fx);
  CHECK(fx, sim_bot_leave(chatty) == RT_OK, "a message");
  /* Just under the idle time after its open, Idle is still there. */
  run_to(fx, opened + idle_s - 10 * MS - LATENCY);
  CHECK(fx, count_of(idle, SIM_BOT_CLOSED) == 0, "not closed early");
  sim_bot_record_t c = wait_kind(fx, idle, SIM_BOT_CLOSED, 1, opened + 6 * SEC);
  CHECK(fx, c.code == 4002, "idle closes with %u", c.code);
  CHECK(fx, count_of(chatty, SIM_BOT_CLOSED) == 0, "its message counted");
  run_to(fx, chatted + idle_s - 10 * MS);
  CHECK(fx, count_of(chatty, SIM_BOT_CLOSED) == 0, "not before its time");
  c = wait_kind(fx, chatty, SIM_BOT_CLOSED, 1, chatted + 6 * SEC);
  CHECK(fx, c.code == 4002, "chatty closes with %u", c.code);
  CHECK(fx, count_of(queued, SIM_BOT_CLOSED) == 0, "a queued player stays");
  /* Two silent players in a game longer than the idle time. */
  CHECK(fx, sim_bot_leave(queued) == RT_OK, "leave");
  sim_bot_t *ada = bot_add(fx, "Ada", &LINK, &LINK);
  sim_bot_t *bea = bot_add(fx, "Bea", &LINK, &LINK);
  match_t m;
  match_start(fx, ada, bea, &m);
  CHECK(fx, m.t_end - m.t0 > 2 * idle_s, "games longer than the idle time");
  sim_bot_record_t over =
      wait_kind(fx, ada, SIM_BOT_GAME_OVER, 1, m.t_end + SEC);
  CHECK(fx, count_of(ada, SIM_BOT_CLOSED) == 0, "nobody is idle in a game");
  CHECK(fx, count_of(bea, SIM_BOT_CLOSED) == 0, "nobody is idle in a game");
  /* Back in the lobby: the idle time runs from the end of the game. */
  run_to(fx, over.at + idle_s - 100 * MS);
  CHECK(fx, count_of(ada, SIM_BOT_CLOSED) == 0, "a whole idle time after");
  c = wait_kind(fx, ada, SIM_BOT_CLOSED, 1, over.at + idle_s + SEC);
  CHECK(fx, c.code == 4002, "then idle: %u", c.code);
  game_stats_t st;
  game_get_stats(fx->game, &st);
  CHECK(fx, st.kicks[GAME_KICK_IDLE] == 5, "counted: %" PRIu64,
        st.kicks[GAME_KICK_IDLE]);
  run_for(fx, 2 * SEC); /* the close handshakes end */
  net_server_stats_t ns;
  net_server_get_stats(fx->srv, &ns);
  CHECK(fx, ns.ws_close_codes[net_server_close_code_index(4002)] == 5,
        "4002 counted: %" PRIu64,
        ns.ws_close_codes[net_server_close_code_index(4002)]);
  fx_free(fx);
}

Test(game_sim, a_second_connection_replaces_the_first_which_closes_with_4000) {
  fx_t *fx = fx_create(
      "a_second_connection_replaces_the_first_which_closes_with_4000", 1006);
  fx_start(fx);
  sim_bot_t *ada = bot_add(fx, "Ada", &LINK, &LINK);
  sim_bot_t *bob = bot_add(fx, "Bob", &LINK, &LINK);
  match_t m;
  match_start(fx, ada, bob, &m);
  int ra = role_of(&m, ada);
  click_log_t logs[2];
  memset(logs, 0, sizeof(logs));
  click_together(fx, &m, logs, m.t_run + 10 * MS, m.t_run + 2 * SEC, 300 * MS);
  /* Ada opens the game in a second tab. */
  rt_time_ns tab_at = m.t_run + 2500 * MS;
  run_to(fx, tab_at);
  sim_bot_t *tab =
      bot_with_token(fx, "Ada's tab", sim_bot_token(ada), sim_bot_user_id(ada));
  sim_bot_record_t closed = wait_kind(fx, ada, SIM_BOT_CLOSED, 1, tab_at + SEC);
  CHECK(fx, closed.code == 4000, "the first closes with %u", closed.code);
  CHECK(fx, sim_bot_close_code(ada) == 4000, "close code");
  sim_bot_record_t start =
      wait_kind(fx, tab, SIM_BOT_GAME_START, 1, tab_at + SEC);
  CHECK(fx,
        start.resumed && strcmp(start.role, m.start[ra].role) == 0 &&
            strcmp(start.room_id, m.start[ra].room_id) == 0,
        "the tab takes the seat");
  /* The tab plays on for Ada. */
  m.by_role[ra] = tab;
  click_log_t tab_log;
  memset(&tab_log, 0, sizeof(tab_log));
  tab_log.next_seq = 1000;
  for (rt_time_ns t = tab_at + 200 * MS; t < m.t_end - 100 * MS;
       t += 300 * MS) {
    run_to(fx, t);
    click(fx, tab, &tab_log);
    click(fx, bob, &logs[1 - ra]);
  }
  sim_bot_record_t over =
      wait_kind(fx, tab, SIM_BOT_GAME_OVER, 1, m.t_end + SEC);
  wait_kind(fx, bob, SIM_BOT_GAME_OVER, 1, m.t_end + SEC);
  CHECK(fx, count_of(ada, SIM_BOT_GAME_OVER) == 0, "not to the old one");
  CHECK(fx, strcmp(over.reason, "time") == 0, "by time");
  int32_t before = check_clicks(fx, &m, bob, &logs[1 - ra]);
  (void)before;
  /* Ada's score: her clicks on the first connection plus the tab's. */
  int32_t ada_score = (int32_t)logs[ra].n + (int32_t)tab_log.n;
  CHECK(fx, score_of(&over, ra) == ada_score, "Ada %d, expected %d",
        score_of(&over, ra), ada_score);
  CHECK(fx, score_of(&over, 1 - ra) == (int32_t)logs[1 - ra].n, "Bob");
  game_stats_t st;
  game_get_stats(fx->game, &st);
  CHECK(fx, st.kicks[GAME_KICK_REPLACED] == 1,
        "one replacement, counted %" PRIu64, st.kicks[GAME_KICK_REPLACED]);
  net_server_stats_t ns;
  net_server_get_stats(fx->srv, &ns);
  CHECK(fx, ns.ws_close_codes[net_server_close_code_index(4000)] == 1,
        "4000 counted");
  fx_free(fx);
}

Test(game_sim,
     a_golden_cookie_clicked_by_both_at_once_is_claimed_exactly_once) {
  fx_t *fx = fx_create(
      "a_golden_cookie_clicked_by_both_at_once_is_claimed_exactly_once", 1007);
  fx_start(fx);
  sim_bot_t *ada = bot_add(fx, "Ada", &LINK, &LINK);
  sim_bot_t *bob = bot_add(fx, "Bob", &LINK, &LINK);
  match_t m;
  match_start(fx, ada, bob, &m);
  click_log_t logs[2];
  memset(logs, 0, sizeof(logs));
  uint32_t races = 0;
  for (uint32_t spawn = 1; spawn <= 3; spawn++) {
    sim_bot_record_t s =
        wait_kind(fx, ada, SIM_BOT_COOKIE_SPAWN, spawn, m.t_end);
    if (s.at + 200 * MS >= m.t_end)
      break;
    /* Both at the same instant over equal links; who is asked first
     * alternates. */
    run_to(fx, s.at + 2 * MS);
    sim_bot_t *first = spawn % 2 ? ada : bob, *second = spawn % 2 ? bob : ada;
    CHECK(fx, sim_bot_cookie_click(first) == RT_OK, "cookie click");
    CHECK(fx, sim_bot_cookie_click(second) == RT_OK, "cookie click");
    run_for(fx, 50 * MS);
    races++;
    sim_bot_record_t ca, cb;
    CHECK(fx,
          count_of(ada, SIM_BOT_UPDATE_CLAIM) == races &&
              count_of(bob, SIM_BOT_UPDATE_CLAIM) == races,
          "one claim per cookie: %u and %u after %u races",
          count_of(ada, SIM_BOT_UPDATE_CLAIM),
          count_of(bob, SIM_BOT_UPDATE_CLAIM), races);
    nth(ada, SIM_BOT_UPDATE_CLAIM, races - 1, &ca);
    nth(bob, SIM_BOT_UPDATE_CLAIM, races - 1, &cb);
    CHECK(fx, strcmp(ca.claimed_by, cb.claimed_by) == 0, "the same claimer");
    CHECK(fx,
          strcmp(ca.claimed_by, sim_bot_user_id(ada)) == 0 ||
              strcmp(ca.claimed_by, sim_bot_user_id(bob)) == 0,
          "a player claims it");
    CHECK(fx, ca.at == s.at + 2 * MS + 2 * LATENCY, "claimed at arrival");
    /* Right after: only the claimer's clicks double. */
    click(fx, ada, &logs[role_of(&m, ada)]);
    click(fx, bob, &logs[role_of(&m, bob)]);
    run_for(fx, 50 * MS);
    sim_bot_t *winner =
        strcmp(ca.claimed_by, sim_bot_user_id(ada)) == 0 ? ada : bob;
    sim_bot_t *loser = winner == ada ? bob : ada;
    sim_bot_record_t wa, la;
    const click_log_t *wl = &logs[role_of(&m, winner)];
    const click_log_t *ll = &logs[role_of(&m, loser)];
    CHECK(fx, ack_of(winner, wl->seq[wl->n - 1], &wa), "ack");
    CHECK(fx, ack_of(loser, ll->seq[ll->n - 1], &la), "ack");
    int32_t before_w = races == 1 ? 0 : score_of(&ca, role_of(&m, winner));
    CHECK(fx, score_of(&wa, role_of(&m, winner)) - before_w == 2,
          "the claimer's click scores 2");
    (void)la;
  }
  CHECK(fx, races >= 2, "%u races", races);
  sim_bot_record_t over;
  wait_kind(fx, ada, SIM_BOT_GAME_OVER, 1, m.t_end + SEC);
  wait_kind(fx, bob, SIM_BOT_GAME_OVER, 1, m.t_end + SEC);
  check_same_game_over(fx, &m, &over);
  check_spawns_in_game(fx, &m);
  /* Every click by the rule, with each player's own claims. */
  int32_t s1 = check_clicks(fx, &m, m.by_role[0], &logs[0]);
  int32_t s2 = check_clicks(fx, &m, m.by_role[1], &logs[1]);
  CHECK(fx, over.p1_score == s1 && over.p2_score == s2, "scores");
  game_stats_t st;
  game_get_stats(fx->game, &st);
  CHECK(fx, st.golden_claims == races && st.golden_contested == races,
        "claims %" PRIu64 " contested %" PRIu64, st.golden_claims,
        st.golden_contested);
  fx_free(fx);
}

Test(game_sim,
     countdown_clicks_are_acknowledged_unscored_and_late_clicks_refused) {
  fx_t *fx = fx_create(
      "countdown_clicks_are_acknowledged_unscored_and_late_clicks_refused",
      1008);
  fx_start(fx);
  sim_bot_t *ada = bot_add(fx, "Ada", &LINK, &LINK);
  sim_bot_t *bob = bot_add(fx, "Bob", &LINK, &LINK);
  match_t m;
  match_start(fx, ada, bob, &m);
  run_to(fx, m.t_run - 300 * MS);
  CHECK(fx, sim_bot_click(ada, 1) == RT_OK, "click");
  CHECK(fx, sim_bot_click(ada, 2) == RT_OK, "click");
  CHECK(fx, sim_bot_cookie_click(bob) == RT_OK, "cookie click");
  run_to(fx, m.t_run - 100 * MS);
  sim_bot_record_t a1, a2;
  CHECK(fx, ack_of(ada, 1, &a1) && ack_of(ada, 2, &a2), "acknowledged");
  CHECK(fx,
        a1.p1_score == 0 && a1.p2_score == 0 && a2.p1_score == 0 &&
            a2.p2_score == 0,
        "scored nothing");
  CHECK(fx, a1.at == m.t_run - 300 * MS + 2 * LATENCY, "answered at once");
  CHECK(fx,
        count_of(bob, SIM_BOT_OPPONENT_CLICK) == 0 &&
            count_of(bob, SIM_BOT_UPDATE_CLICK) == 0 &&
            count_of(bob, SIM_BOT_UPDATE_CLAIM) == 0 &&
            count_of(bob, SIM_BOT_ERROR) == 0,
        "nothing for Bob");
  game_stats_t st;
  game_get_stats(fx->game, &st);
  CHECK(fx, st.clicks_countdown == 2 && st.clicks_scored == 0, "stats");
  sim_bot_record_t over =
      wait_kind(fx, ada, SIM_BOT_GAME_OVER, 1, m.t_end + SEC);
  CHECK(fx,
        over.p1_score == 0 && over.p2_score == 0 &&
            strcmp(over.winner, "draw") == 0,
        "0:0, a draw");
  /* After the end: each game message is answered not_in_game. */
  run_for(fx, 100 * MS);
  CHECK(fx, sim_bot_click(ada, 3) == RT_OK, "click");
  CHECK(fx, sim_bot_cookie_click(ada) == RT_OK, "cookie click");
  CHECK(fx, sim_bot_quit(ada) == RT_OK, "quit");
  run_for(fx, 100 * MS);
  sim_bot_record_t e, ack;
  CHECK(fx, count_of(ada, SIM_BOT_ERROR) == 3, "%u errors",
        count_of(ada, SIM_BOT_ERROR));
  for (uint32_t i = 0; i < 3; i++) {
    nth(ada, SIM_BOT_ERROR, i, &e);
    CHECK(fx, strcmp(e.error_code, "not_in_game") == 0, "code %s",
          e.error_code);
  }
  CHECK(fx, !ack_of(ada, 3, &ack), "no answer to a late click");
  CHECK(fx,
        count_of(ada, SIM_BOT_GAME_OVER) == 1 &&
            sim_bot_state(ada) == SIM_BOT_OPEN,
        "still connected");
  fx_free(fx);
}

Test(game_sim,
     fifty_clicks_in_one_instant_score_the_burst_with_one_rate_error) {
  fx_t *fx = fx_create(
      "fifty_clicks_in_one_instant_score_the_burst_with_one_rate_error", 1009);
  fx_start(fx);
  sim_bot_t *ada = bot_add(fx, "Ada", &LINK, &LINK);
  sim_bot_t *bob = bot_add(fx, "Bob", &LINK, &LINK);
  match_t m;
  match_start(fx, ada, bob, &m);
  int rb = role_of(&m, bob);
  uint32_t burst = fx->game_cfg.click_burst;
  rt_time_ns t = m.t_run + 500 * MS;
  run_to(fx, t);
  CHECK(fx, sim_bot_clicks(bob, 50, 1) == RT_OK, "50 clicks");
  run_for(fx, 50 * MS);
  sim_bot_record_t ack;
  for (int64_t seq = 1; seq <= 50; seq++) {
    bool got = ack_of(bob, seq, &ack);
    CHECK(fx, got == (seq <= (int64_t)burst), "seq %" PRId64 " answered: %d",
          seq, got);
    if (got)
      CHECK(fx, score_of(&ack, rb) == seq, "seq %" PRId64 " scores", seq);
  }
  sim_bot_record_t e;
  CHECK(fx,
        count_of(bob, SIM_BOT_ERROR) == 1 && nth(bob, SIM_BOT_ERROR, 0, &e) &&
            strcmp(e.error_code, "rate_limited") == 0,
        "one rate_limited ERROR, not one per refused click");
  CHECK(fx,
        count_of(ada, SIM_BOT_OPPONENT_CLICK) == burst &&
            count_of(ada, SIM_BOT_ERROR) == 0,
        "Ada sees the scored clicks only");
  game_stats_t st;
  game_get_stats(fx->game, &st);
  CHECK(fx, st.clicks_scored == burst && st.clicks_rate_limited == 50 - burst,
        "stats %" PRIu64 " %" PRIu64, st.clicks_scored, st.clicks_rate_limited);
  /* Half a second refills 15 tokens: 5 clicks pass, no new ERROR. */
  run_to(fx, t + 500 * MS);
  CHECK(fx, sim_bot_clicks(bob, 5, 51) == RT_OK, "5 clicks");
  run_for(fx, 50 * MS);
  CHECK(fx, ack_of(bob, 55, &ack) && score_of(&ack, rb) == (int32_t)burst + 5,
        "refilled");
  CHECK(fx, count_of(bob, SIM_BOT_ERROR) == 1, "no new ERROR");
  /* A second later the bucket is full again and the ERROR may repeat. */
  run_to(fx, t + 1500 * MS);
  CHECK(fx, sim_bot_clicks(bob, 50, 101) == RT_OK, "50 clicks");
  run_for(fx, 50 * MS);
  CHECK(fx,
        ack_of(bob, 100 + burst, &ack) &&
            score_of(&ack, rb) == 2 * (int32_t)burst + 5,
        "a full bucket");
  CHECK(fx, !ack_of(bob, 101 + burst, &ack), "then refused");
  CHECK(fx, count_of(bob, SIM_BOT_ERROR) == 2, "one ERROR per second");
  fx_free(fx);
}

Test(game_sim, bad_messages_get_errors_and_an_oversize_one_closes_with_1009) {
  fx_t *fx = fx_create(
      "bad_messages_get_errors_and_an_oversize_one_closes_with_1009", 1010);
  fx_start(fx);
  sim_bot_t *ada = bot_add(fx, "Ada", &LINK, &LINK);
  wait_state(fx, ada, SIM_BOT_OPEN, 5 * SEC);
  static const struct {
    const char *text;
    const char *code;
  } cases[] = {
      {"not json", "bad_json"},
      {"{\"type\":\"CLICK\"} trailing", "bad_json"},
      {"{\"type\":\"CLICK\\u0000x\"}", "bad_json"},
      {"[\"CLICK\"]", "bad_json"},
      {"{\"type\":5}", "bad_json"},
      {"{\"payload\":{}}", "bad_json"},
      {"{\"type\":\"DANCE\",\"payload\":{}}", "unknown_type"},
      {"{\"type\":\"click\"}", "unknown_type"},
      {"{\"type\":\"CLICK\",\"payload\":{\"count\":1,\"seq\":1}}",
       "not_in_game"},
      {"{\"type\":\"COOKIE_CLICK\"}", "not_in_game"},
      {"{\"type\":\"QUIT_GAME\"}", "not_in_game"},
  };
  size_t n = sizeof(cases) / sizeof(cases[0]);
  for (size_t i = 0; i < n; i++)
    CHECK(fx, sim_bot_send(ada, cases[i].text, strlen(cases[i].text)) == RT_OK,
          "send");
  CHECK(fx, sim_bot_leave(ada) == RT_OK, "LEAVE_QUEUE while idle: ignored");
  run_for(fx, 100 * MS);
  CHECK(fx, count_of(ada, SIM_BOT_ERROR) == n, "%u errors",
        count_of(ada, SIM_BOT_ERROR));
  for (size_t i = 0; i < n; i++) {
    sim_bot_record_t e;
    nth(ada, SIM_BOT_ERROR, (uint32_t)i, &e);
    CHECK(fx, strcmp(e.error_code, cases[i].code) == 0, "'%s': %s, expected %s",
          cases[i].text, e.error_code, cases[i].code);
  }
  CHECK(fx, sim_bot_state(ada) == SIM_BOT_OPEN, "errors keep it open");
  /* The limit is 512 bytes: at it, the message is read. */
  char big[600];
  const char *head = "{\"type\":\"JOIN_QUEUE\",\"pad\":\"";
  size_t hl = strlen(head);
  memcpy(big, head, hl);
  memset(big + hl, 'x', sizeof(big) - hl);
  memcpy(big + 512 - 2, "\"}", 2);
  CHECK(fx, sim_bot_send(ada, big, 512) == RT_OK, "512 bytes");
  run_for(fx, 100 * MS);
  CHECK(fx,
        count_of(ada, SIM_BOT_QUEUED) == 1 &&
            sim_bot_state(ada) == SIM_BOT_OPEN,
        "512 bytes are fine");
  /* One byte more closes the connection with 1009. */
  memset(big + hl, 'x', sizeof(big) - hl);
  memcpy(big + 513 - 2, "\"}", 2);
  CHECK(fx, sim_bot_send(ada, big, 513) == RT_OK, "513 bytes");
  sim_bot_record_t closed =
      wait_kind(fx, ada, SIM_BOT_CLOSED, 1, now_of(fx) + SEC);
  CHECK(fx, closed.code == 1009, "closed with %u", closed.code);
  CHECK(fx, count_of(ada, SIM_BOT_ERROR) == n, "no ERROR for it");
  run_for(fx, 100 * MS);
  game_stats_t st;
  game_get_stats(fx->game, &st);
  CHECK(fx, st.queued == 0 && st.players == 0, "gone from the queue");
  fx_free(fx);
}

/* base64url without padding, for forged tokens. */
static void b64url(const char *in, char *out, size_t cap) {
  static const char abc[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  size_t len = strlen(in), o = 0;
  for (size_t i = 0; i < len; i += 3) {
    uint32_t v = (uint32_t)(uint8_t)in[i] << 16;
    if (i + 1 < len)
      v |= (uint32_t)(uint8_t)in[i + 1] << 8;
    if (i + 2 < len)
      v |= (uint8_t)in[i + 2];
    size_t chars = len - i >= 3 ? 4 : len - i + 1;
    for (size_t k = 0; k < chars && o + 1 < cap; k++)
      out[o++] = abc[(v >> (18 - 6 * k)) & 63];
  }
  out[o] = '\0';
}

static void expect_refused(fx_t *fx, const char *label, const char *token) {
  sim_bot_t *b = bot_with_token(fx, label, token, "nobody");
  sim_bot_record_t r = wait_kind(fx, b, SIM_BOT_REFUSED, 1, now_of(fx) + SEC);
  CHECK(fx, r.code == 401 && sim_bot_ws_status(b) == 401,
        "%s: upgrade answered %u", label, r.code);
  CHECK(fx, count_of(b, SIM_BOT_OPENED) == 0, "%s: never opened", label);
}

Test(game_sim, bad_expired_and_unsigned_tokens_are_refused_401_at_the_upgrade) {
  fx_t *fx = fx_create(
      "bad_expired_and_unsigned_tokens_are_refused_401_at_the_upgrade", 1011);
  fx_start(fx);
  sim_bot_t *ada = bot_add(fx, "Ada", &LINK, &LINK);
  wait_state(fx, ada, SIM_BOT_OPEN, 5 * SEC);
  char token[SIM_BOT_TOKEN_MAX];
  snprintf(token, sizeof(token), "%s", sim_bot_token(ada));
  const char *dot1 = strchr(token, '.');
  const char *dot2 = dot1 != NULL ? strchr(dot1 + 1, '.') : NULL;
  CHECK(fx, dot1 != NULL && dot2 != NULL, "a JWT: %s", token);
  expect_refused(fx, "garbage", "garbage");
  expect_refused(fx, "no token", "");
  /* alg none: the same claims, no signature. */
  char head[128], forged[SIM_BOT_TOKEN_MAX];
  b64url("{\"alg\":\"none\",\"typ\":\"JWT\"}", head, sizeof(head));
  snprintf(forged, sizeof(forged), "%s.%.*s.", head, (int)(dot2 - dot1 - 1),
           dot1 + 1);
  expect_refused(fx, "alg none", forged);
  /* alg none, keeping the old signature. */
  snprintf(forged, sizeof(forged), "%s%s", head, dot1);
  expect_refused(fx, "alg none, signed", forged);
  /* A signature that is not the server's. */
  snprintf(forged, sizeof(forged), "%s", token);
  char *sig = forged + (dot2 - token) + 1;
  sig[0] = sig[0] == 'A' ? 'B' : 'A';
  expect_refused(fx, "forged signature", forged);
  /* Claims changed under the old signature. */
  char claims[256];
  snprintf(claims, sizeof(claims),
           "{\"sub\":\"%s\",\"name\":\"Ada\",\"exp\":9999999999}",
           sim_bot_user_id(ada));
  char c64[400];
  b64url(claims, c64, sizeof(c64));
  snprintf(forged, sizeof(forged), "%.*s.%s%s", (int)(dot1 - token), token, c64,
           dot2);
  expect_refused(fx, "longer life", forged);
  /* The real token works until it expires, 24 h after the login. */
  CHECK(fx, sim_bot_disconnect(ada, SIM_BOT_CLOSE_HANDSHAKE) == RT_OK, "bye");
  sim_bot_record_t closed =
      wait_kind(fx, ada, SIM_BOT_CLOSED, 1, now_of(fx) + SEC);
  CHECK(fx, closed.code == 1000, "handshake echoed %u", closed.code);
  run_to(fx, 24 * 3600 * SEC - SEC);
  sim_bot_t *late = bot_with_token(fx, "Ada late", token, sim_bot_user_id(ada));
  wait_state(fx, late, SIM_BOT_OPEN, now_of(fx) + SEC);
  CHECK(fx, sim_bot_ws_status(late) == 101, "still valid");
  int status;
  cJSON *h = http_get_json(fx, late, "/api/history", true, &status);
  CHECK(fx, status == 200, "history with a valid token");
  cJSON_Delete(h);
  run_to(fx, 24 * 3600 * SEC + SEC);
  expect_refused(fx, "expired", token);
  h = http_get_json(fx, late, "/api/history", true, &status);
  CHECK(fx, status == 401, "history with an expired token: %d", status);
  cJSON_Delete(h);
  fx_free(fx);
}

/* ---- Matchmaking: a swarm ------------------------------------------------ */

#define SWARM 40u
#define SWARM_ACTIONS_MAX 12u

typedef enum { BELIEF_IDLE = 0, BELIEF_QUEUED, BELIEF_PLAYING } belief_t;

typedef struct swarm_bot {
  sim_bot_t *b;
  rt_time_ns spawn_at;
  belief_t belief;
  rt_time_ns next_action;
  rt_time_ns quit_at;
  uint32_t actions;
  bool last_was_join;
  rt_time_ns last_join_at;
  uint32_t starts_seen, overs_seen;
} swarm_bot_t;

/* ---- Login bodies -------------------------------------------------------- */

#define LOGIN_ANSWER_MAX 2048u

/* POST /api/login with `body` (len bytes, NULs and all) on a fresh
 * connection; returns the status and copies the answer's body to out. */
static int login_raw(fx_t *fx, const char *body, size_t len, char *out,
                     size_t cap) {
  rt_stream_t *s = NULL;
  CHECK(fx, sim_connect(fx->sw, PORT, 0, &LINK, &LINK, &s) == RT_OK, "connect");
  char req[1024];
  int h = snprintf(req, sizeof(req),
                   "POST /api/login HTTP/1.1\r\nHost: game.test\r\n"
                   "Content-Type: application/json\r\nContent-Length: %zu\r\n"
                   "Connection: close\r\n\r\n",
                   len);
  cr_assert(h > 0 && (size_t)h + len < sizeof(req));
  memcpy(req + h, body, len);
  CHECK(fx,
        rt_stream_write(s, req, (size_t)h + len) == (int64_t)h + (int64_t)len,
        "write the request");
  char in[LOGIN_ANSWER_MAX];
  size_t got = 0;
  rt_time_ns deadline = now_of(fx) + 2 * SEC;
  bool end = false;
  while (!end && now_of(fx) < deadline) {
    run_for(fx, STEP);
    for (;;) {
      int64_t n = rt_stream_read(s, in + got, sizeof(in) - 1 - got);
      if (n <= 0) {
        end = n < 0;
        break;
      }
      got += (size_t)n;
      cr_assert_lt(got, sizeof(in) - 1, "answer too long");
    }
  }
  rt_stream_close(s);
  in[got] = '\0';
  int status = 0;
  CHECK(fx, sscanf(in, "HTTP/1.1 %d ", &status) == 1, "a status line: %s", in);
  const char *b = strstr(in, "\r\n\r\n");
  CHECK(fx, b != NULL, "a whole head: %s", in);
  snprintf(out, cap, "%s", b + 4);
  return status;
}

static int login_str(fx_t *fx, const char *body, char *out, size_t cap) {
  return login_raw(fx, body, strlen(body), out, cap);
}

#define BODY_ERROR "{\"error\":\"body must be {\\\"name\\\": string}\"}"
#define NAME_ERROR "{\"error\":\"name must be 1-24 printable characters\"}"

/* The body is one JSON value and nothing after it but JSON whitespace:
 * cJSON stops after the first value, and "{...} trailing garbage" is not
 * the JSON the endpoint takes. */
Test(game_sim, a_login_body_with_anything_after_the_json_value_is_400) {
  fx_t *fx =
      fx_create("a_login_body_with_anything_after_the_json_value_is_400", 1012);
  fx_start(fx);
  char out[LOGIN_ANSWER_MAX];
  static const struct {
    const char *body;
    size_t len;
  } bad[] = {
#define B(lit) {lit, sizeof(lit) - 1}
      B("{\"name\":\"Ada\"} trailing garbage"),
      B("{\"name\":\"Ada\"}\0xx"),
      B("{\"name\":\"Ada\"}\0"),
      B("{\"name\":\"Ada\"}x"),
      B("{\"name\":\"Ada\"}{\"name\":\"Eve\"}"),
      B("{\"name\":\"Ada\"} {}"),
      B("{\"name\":\"Ada\"}\x01"),
      B("{\"name\":\"Ada\"}\f"), /* whitespace to cJSON, not to JSON */
      B("{\"name\":\"Ada\"}\v"),
      B("{\"name\":\x01\"Ada\"}"), /* a control byte between tokens */
      B("{\"name\":\0\"Ada\"}"),
#undef B
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    int status = login_raw(fx, bad[i].body, bad[i].len, out, sizeof(out));
    CHECK(fx, status == 400, "case %zu: %d %s", i, status, out);
    CHECK(fx, strcmp(out, BODY_ERROR) == 0, "case %zu: %s", i, out);
  }
  /* JSON whitespace after the value, or around it, is fine. */
  CHECK(fx, login_str(fx, "{\"name\":\"Ada\"} \r\n\t", out, sizeof(out)) == 200,
        "%s", out);
  CHECK(fx,
        login_str(fx, " \n{ \"name\" : \"Ada\" }\n", out, sizeof(out)) == 200,
        "%s", out);
  fx_free(fx);
}

/* cJSON's strings end at their first NUL, so a name with U+0000 in it was
 * checked and signed as the part before it: "A\u0000\u202eevil" logged in
 * as "A". A NUL is not printable: 400, the error for a bad name. */
Test(game_sim, a_login_name_holding_u0000_is_400) {
  fx_t *fx = fx_create("a_login_name_holding_u0000_is_400", 1013);
  fx_start(fx);
  char out[LOGIN_ANSWER_MAX];
  static const char *const bad[] = {
      "{\"name\":\"A\\u0000\\u202eevil\"}",
      "{\"name\":\"Ada\\u0000\"}",
      "{\"name\":\"\\u0000Ada\"}",
      "{\"name\":\"\\u0000\"}",
      "{\"name\":\"A\\\\\\u0000\"}",          /* a backslash, then U+0000 */
      "{\"name\\u0000x\":\"Ada\"}",           /* a key read as "name" */
      "{\"name\":\"Ada\",\"x\":\"\\u0000\"}", /* any string */
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    int status = login_str(fx, bad[i], out, sizeof(out));
    CHECK(fx, status == 400, "%s: %d %s", bad[i], status, out);
    CHECK(fx, strcmp(out, NAME_ERROR) == 0, "%s: %s", bad[i], out);
  }
  /* A raw NUL byte in the string is not JSON at all. */
  static const char raw[] = "{\"name\":\"A\0evil\"}";
  int status = login_raw(fx, raw, sizeof(raw) - 1, out, sizeof(out));
  CHECK(fx, status == 400 && strcmp(out, BODY_ERROR) == 0, "raw NUL: %d %s",
        status, out);
  /* The six characters \u0000 written out (an escaped backslash) are a
   * printable name, not a NUL. */
  status = login_str(fx, "{\"name\":\"A\\\\u0000\"}", out, sizeof(out));
  CHECK(fx, status == 200, "%d %s", status, out);
  cJSON *j = cJSON_Parse(out);
  CHECK(fx, j != NULL, "%s", out);
  CHECK(fx, strcmp(json_str(j, "name"), "A\\u0000") == 0, "%s", out);
  cJSON_Delete(j);
  /* Other escapes still decode: \u00e9 is a printable name. */
  status = login_str(fx, "{\"name\":\"\\u00e9l\\u00e8ve\"}", out, sizeof(out));
  CHECK(fx, status == 200, "%d %s", status, out);
  fx_free(fx);
}

static rt_time_ns rand_between(rt_rng_t *rng, rt_time_ns lo, rt_time_ns hi) {
  return (rt_time_ns)rt_rng_range(rng, lo, hi);
}

Test(game_sim,
     a_swarm_joining_and_leaving_is_matched_in_pairs_of_distinct_players) {
  fx_t *fx = fx_create(
      "a_swarm_joining_and_leaving_is_matched_in_pairs_of_distinct_players",
      1012);
  fx_start(fx);
  rt_rng_t rng;
  rt_world_rng(fx->w, RT_RNG_KEY(RT_RNG_SUB_TEST, 1), &rng);
  swarm_bot_t sb[SWARM];
  memset(sb, 0, sizeof(sb));
  for (uint32_t i = 0; i < SWARM; i++) {
    sb[i].spawn_at = rand_between(&rng, 0, 5 * SEC);
    sb[i].quit_at = RT_TIME_NEVER;
  }
  /* Scripted joins and leaves until script_end; then one last join for
   * everyone idle, until joins_end; then the games run out (bounded). */
  const rt_time_ns script_end = 40 * SEC, joins_end = 55 * SEC;
  const rt_time_ns settle_max = 120 * SEC;
  bool final_round = false;
  for (rt_time_ns t = 0; t <= settle_max; t += 10 * MS) {
    run_to(fx, t);
    if (t > joins_end) {
      game_stats_t now_st;
      game_get_stats(fx->game, &now_st);
      if (now_st.rooms == 0) {
        run_for(fx, SEC); /* the last GAME_OVERs are on their way */
        break;
      }
      continue;
    }
    if (!final_round && t >= script_end) {
      /* Last round: everyone not playing or queued joins once more. */
      final_round = true;
      for (uint32_t i = 0; i < SWARM; i++)
        sb[i].next_action = t + rand_between(&rng, 0, 2 * SEC);
    }
    for (uint32_t i = 0; i < SWARM; i++) {
      swarm_bot_t *s = &sb[i];
      if (s->b == NULL) {
        if (t < s->spawn_at)
          continue;
        char name[16];
        snprintf(name, sizeof(name), "p%02u", i);
        sim_link_config_t link = {.latency =
                                      rand_between(&rng, 1 * MS, 30 * MS),
                                  .jitter = rand_between(&rng, 0, 5 * MS)};
        s->b = bot_add(fx, name, &link, &link);
        s->next_action = t + rand_between(&rng, 500 * MS, 3 * SEC);
        continue;
      }
      uint32_t starts = count_of(s->b, SIM_BOT_GAME_START);
      uint32_t overs = count_of(s->b, SIM_BOT_GAME_OVER);
      if (starts > s->starts_seen) {
        s->starts_seen = starts;
        s->belief = BELIEF_PLAYING;
        s->quit_at = rt_rng_below(&rng, 3) == 0
                         ? t + rand_between(&rng, 0, 3 * SEC)
                         : RT_TIME_NEVER;
      }
      if (overs > s->overs_seen) {
        s->overs_seen = overs;
        s->belief = BELIEF_IDLE;
        s->quit_at = RT_TIME_NEVER;
        s->next_action = t + rand_between(&rng, 0, 2 * SEC);
      }
      if (sim_bot_state(s->b) != SIM_BOT_OPEN)
        continue;
      if (s->belief == BELIEF_PLAYING && t >= s->quit_at) {
        CHECK(fx, sim_bot_quit(s->b) == RT_OK, "quit");
        s->quit_at = RT_TIME_NEVER;
      }
      bool scripted = !final_round && s->actions < SWARM_ACTIONS_MAX;
      bool last_join = final_round && s->belief == BELIEF_IDLE &&
                       s->next_action != RT_TIME_NEVER && t <= joins_end;
      if (t < s->next_action || s->belief == BELIEF_PLAYING ||
          (!scripted && !last_join))
        continue;
      if (s->belief == BELIEF_IDLE) {
        CHECK(fx, sim_bot_join(s->b) == RT_OK, "join");
        s->belief = BELIEF_QUEUED;
        s->last_was_join = true;
        s->last_join_at = t;
      } else if (scripted && rt_rng_below(&rng, 2) == 0) {
        CHECK(fx, sim_bot_leave(s->b) == RT_OK, "leave");
        s->belief = BELIEF_IDLE;
        s->last_was_join = false;
      }
      s->actions++;
      s->next_action = final_round ? RT_TIME_NEVER
                                   : t + rand_between(&rng, 100 * MS, 3 * SEC);
    }
  }
  /* Every room seats two distinct players who see each other. */
  game_stats_t st;
  game_get_stats(fx->game, &st);
  uint32_t rooms = 0, waiting = 0;
  for (uint32_t i = 0; i < SWARM; i++) {
    sim_bot_t *b = sb[i].b;
    CHECK(fx, b != NULL && sim_bot_state(b) == SIM_BOT_OPEN, "bot %u", i);
    uint32_t n;
    const sim_bot_record_t *r = sim_bot_records(b, &n);
    bool in_room = false;
    char room[32] = "";
    for (uint32_t k = 0; k < n; k++) {
      if (r[k].kind == SIM_BOT_ERROR)
        CHECK(fx, strcmp(r[k].error_code, "not_in_game") == 0,
              "bot %u: error %s", i, r[k].error_code);
      if (r[k].kind == SIM_BOT_GAME_START) {
        /* Never in two rooms: a start only after the previous game's end. */
        CHECK(fx, !in_room, "%s: GAME_START for %s while in %s",
              sim_bot_name(b), r[k].room_id, room);
        CHECK(fx, !r[k].resumed, "nobody reconnects here");
        CHECK(fx, strcmp(r[k].opponent, sim_bot_user_id(b)) != 0,
              "bot %u matched with itself", i);
        in_room = true;
        snprintf(room, sizeof(room), "%s", r[k].room_id);
        /* The opponent got the same room, with the other role, seeing us. */
        uint32_t found = 0;
        for (uint32_t j = 0; j < SWARM; j++) {
          if (j == i)
            continue;
          sim_bot_record_t o;
          for (uint32_t q = 0; nth(sb[j].b, SIM_BOT_GAME_START, q, &o); q++) {
            if (strcmp(o.room_id, r[k].room_id) != 0)
              continue;
            found++;
            CHECK(fx, strcmp(sim_bot_user_id(sb[j].b), r[k].opponent) == 0,
                  "room %s: bot %u is not the opponent", o.room_id, j);
            CHECK(fx, strcmp(o.opponent, sim_bot_user_id(b)) == 0,
                  "room %s: the opponent sees another", o.room_id);
            CHECK(fx, strcmp(o.role, r[k].role) != 0, "distinct roles");
          }
        }
        CHECK(fx, found == 1, "room %s has %u other players", r[k].room_id,
              found);
        if (strcmp(r[k].role, "p1") == 0)
          rooms++;
      }
      if (r[k].kind == SIM_BOT_GAME_OVER) {
        CHECK(fx, in_room, "bot %u: GAME_OVER outside a room", i);
        in_room = false;
      }
    }
    CHECK(fx, !in_room, "%s: a game never ended", sim_bot_name(b));
    /* Still waiting: joined last, and no game started since. */
    const sim_bot_record_t *last = sim_bot_last(b, SIM_BOT_GAME_START);
    if (sb[i].last_was_join && (last == NULL || last->at < sb[i].last_join_at))
      waiting++;
  }
  CHECK(fx, rooms == st.rooms_started, "%u rooms seen, %" PRIu64 " started",
        rooms, st.rooms_started);
  CHECK(fx, rooms >= SWARM / 2, "only %u rooms", rooms);
  CHECK(fx,
        st.rooms_finished[GAME_END_TIME] + st.rooms_finished[GAME_END_QUIT] +
                st.rooms_finished[GAME_END_DISCONNECTED] ==
            rooms,
        "every room finished");
  CHECK(fx, waiting <= 1, "%u players still waiting", waiting);
  CHECK(fx, st.queued == waiting, "the Manager queues %u, bots say %u",
        st.queued, waiting);
  CHECK(fx, st.players == SWARM && st.connected == SWARM && st.rooms == 0,
        "players %u connected %u rooms %u", st.players, st.connected, st.rooms);
  fx_free(fx);
}

/* ---- Flow control -------------------------------------------------------- */

/* GET returning the raw body (copied into out). */
static int http_get_text(fx_t *fx, sim_bot_t *b, const char *path, char *out,
                         size_t cap) {
  CHECK(fx, sim_bot_http_get(b, path, false) == RT_OK, "GET %s", path);
  rt_time_ns deadline = now_of(fx) + 5 * SEC;
  int status = 0;
  const char *body = NULL;
  size_t len = 0;
  while (!sim_bot_http_result(b, &status, &body, &len) && now_of(fx) < deadline)
    run_for(fx, STEP);
  CHECK(fx, sim_bot_http_result(b, &status, &body, &len), "GET %s", path);
  snprintf(out, cap, "%.*s", (int)len, body);
  return status;
}

/* The value of one exact metric line ("name{labels} value"), or -1. */
static double metric(const char *text, const char *series) {
  size_t n = strlen(series);
  for (const char *p = text; (p = strstr(p, series)) != NULL; p += n)
    if ((p == text || p[-1] == '\n') && p[n] == ' ')
      return strtod(p + n + 1, NULL);
  return -1;
}

Test(game_sim, a_slow_reader_loses_only_droppable_messages_and_slows_nobody) {
  fx_t *fx = fx_create(
      "a_slow_reader_loses_only_droppable_messages_and_slows_nobody", 1013);
  /* 300 B/s cannot carry ~2.6 KB/s of the opponent's clicks. The Client
   * hands frames to the connection below 2 KiB of backlog (16 KiB by
   * default): at 300 B/s that is ~7 s of data in flight rather than ~55 s,
   * which would outlast the 60 s pong wait of a reader that never writes. */
  fx->game_cfg.conn_high_water = 2048;
  fx_start(fx);
  sim_link_config_t slow = {.latency = LATENCY, .bandwidth = 300};
  sim_bot_t *ada = bot_add(fx, "Ada", &LINK, &slow);
  sim_bot_t *bob = bot_add(fx, "Bob", &LINK, &LINK);
  match_t m;
  /* GAME_START is ~200 bytes: at 300 B/s it reaches Ada later than Bob. */
  wait_state(fx, ada, SIM_BOT_OPEN, 10 * SEC);
  wait_state(fx, bob, SIM_BOT_OPEN, 10 * SEC);
  CHECK(fx, sim_bot_join(ada) == RT_OK && sim_bot_join(bob) == RT_OK, "join");
  sim_bot_record_t sb =
      wait_kind(fx, bob, SIM_BOT_GAME_START, 1, now_of(fx) + 5 * SEC);
  sim_bot_record_t sa =
      wait_kind(fx, ada, SIM_BOT_GAME_START, 1, now_of(fx) + 5 * SEC);
  int rb = strcmp(sb.role, "p1") == 0 ? 0 : 1;
  m.by_role[rb] = bob;
  m.by_role[1 - rb] = ada;
  m.start[rb] = sb;
  m.start[1 - rb] = sa;
  m.t0 = sb.at - LATENCY;
  m.t_run = m.t0 + fx->game_cfg.countdown;
  m.t_end = m.t_run + (rt_time_ns)fx->game_cfg.game_seconds * SEC;
  /* Frames queued together leave in one write, and a simulated segment
   * arrives whole: GAME_START shares its write with the first state UPDATE
   * (~300 bytes, a second at 300 B/s). */
  CHECK(fx, sa.at > sb.at && sa.at < m.t_run + SEC, "Ada's GAME_START is late");
  click_log_t log;
  memset(&log, 0, sizeof(log));
  for (rt_time_ns t = m.t_run + 10 * MS; t < m.t_end - 50 * MS; t += 40 * MS) {
    run_to(fx, t);
    click(fx, bob, &log);
  }
  sim_bot_record_t over_b =
      wait_kind(fx, bob, SIM_BOT_GAME_OVER, 1, m.t_end + SEC);
  CHECK(fx, over_b.at == m.t_end + LATENCY, "Bob's end is on time");
  /* Bob's answers all came back in exactly the links' latency. */
  int32_t bob_score = check_clicks(fx, &m, bob, &log);
  sim_bot_record_t over_a =
      wait_kind(fx, ada, SIM_BOT_GAME_OVER, 1, m.t_end + 40 * SEC);
  CHECK(fx, over_a.at > over_b.at + 2 * SEC, "Ada's end is late: %.3f",
        (double)over_a.at / SEC);
  CHECK(fx,
        strcmp(over_a.winner, over_b.winner) == 0 &&
            strcmp(over_a.reason, "time") == 0 &&
            over_a.p1_score == over_b.p1_score &&
            over_a.p2_score == over_b.p2_score,
        "the same GAME_OVER");
  CHECK(fx, score_of(&over_b, rb) == bob_score, "Bob's score");
  /* Never dropped: GAME_START, every COOKIE_SPAWN (the same ones, in
   * order), GAME_OVER last; no ERROR. */
  uint32_t spawns = count_of(bob, SIM_BOT_COOKIE_SPAWN);
  CHECK(fx, spawns >= 3 && count_of(ada, SIM_BOT_COOKIE_SPAWN) == spawns,
        "spawns: Ada %u, Bob %u", count_of(ada, SIM_BOT_COOKIE_SPAWN), spawns);
  for (uint32_t i = 0; i < spawns; i++) {
    sim_bot_record_t a = {0}, b = {0};
    nth(ada, SIM_BOT_COOKIE_SPAWN, i, &a);
    nth(bob, SIM_BOT_COOKIE_SPAWN, i, &b);
    CHECK(fx, a.x == b.x && a.y == b.y && a.at >= b.at, "spawn %u", i);
  }
  uint32_t n;
  const sim_bot_record_t *r = sim_bot_records(ada, &n);
  CHECK(fx, r[n - 1].kind == SIM_BOT_GAME_OVER, "GAME_OVER comes last");
  CHECK(fx,
        count_of(ada, SIM_BOT_ERROR) == 0 &&
            count_of(ada, SIM_BOT_GAME_START) == 1,
        "one GAME_START, no ERROR");
  /* Ticks coalesce: fewer, still counting down. */
  uint32_t ticks_a = count_of(ada, SIM_BOT_UPDATE_TICK);
  uint32_t ticks_b = count_of(bob, SIM_BOT_UPDATE_TICK);
  CHECK(fx, ticks_b == fx->game_cfg.game_seconds && ticks_a < ticks_b,
        "ticks: Ada %u, Bob %u", ticks_a, ticks_b);
  int32_t last_tr = INT32_MAX;
  for (uint32_t i = 0; nth(ada, SIM_BOT_UPDATE_TICK, i, &sa); i++) {
    CHECK(fx, sa.time_remaining < last_tr, "ticks in order");
    last_tr = sa.time_remaining;
  }
  /* Latest wins: the last state always gets through, however slow. */
  CHECK(fx, last_tr == 1, "Ada's clock stopped at %d", last_tr);
  /* Every droppable frame for Ada arrived, was dropped or replaced, and
   * the counters say so. */
  game_stats_t st;
  game_get_stats(fx->game, &st);
  rt_world_stats_t ws;
  rt_world_stats(fx->w, &ws);
  uint32_t droppable_a = count_of(ada, SIM_BOT_OPPONENT_CLICK) +
                         count_of(ada, SIM_BOT_UPDATE_CLICK);
  CHECK(fx, st.out_dropped > 0 && st.out_tick_replaced > 0,
        "drops %" PRIu64 ", ticks replaced %" PRIu64, st.out_dropped,
        st.out_tick_replaced);
  /* Each of Bob's clicks made two droppable frames for Ada, each second a
   * tick: each arrived, or was dropped, or (ticks) replaced by a newer. */
  CHECK(fx,
        droppable_a + st.out_dropped + ws.mailbox[RT_MB_DROPPED] ==
            2 * (uint64_t)log.n,
        "Ada: %u droppable frames + %" PRIu64 " dropped, Bob clicked %u",
        droppable_a, st.out_dropped, log.n);
  CHECK(fx,
        ticks_a + st.out_tick_replaced + ws.mailbox[RT_MB_REPLACED] == ticks_b,
        "ticks: %u + %" PRIu64 " replaced", ticks_a, st.out_tick_replaced);
  CHECK(fx,
        st.kicks[GAME_KICK_WRITE_WAIT] == 0 &&
            st.kicks[GAME_KICK_MUST_OVERFLOW] == 0 &&
            sim_bot_state(ada) == SIM_BOT_OPEN,
        "slow is not stalled: Ada stays");
  /* /metrics exports the same counts. */
  size_t text_cap = 64 * 1024;
  char *text = malloc(text_cap);
  CHECK(fx, text != NULL, "malloc");
  CHECK(fx, http_get_text(fx, bob, "/metrics", text, text_cap) == 200,
        "metrics");
  CHECK(fx,
        metric(text, "overcookied_drops_total{reason=\"backpressure\"}") ==
            (double)st.out_dropped,
        "metrics: backpressure drops");
  CHECK(fx,
        metric(text, "overcookied_drops_total{reason=\"tick_replaced\"}") ==
            (double)st.out_tick_replaced,
        "metrics: ticks replaced");
  free(text);
  fx_free(fx);
}

Test(game_sim, a_stalled_reader_is_cut_with_1008_and_its_opponent_wins) {
  fx_t *fx = fx_create(
      "a_stalled_reader_is_cut_with_1008_and_its_opponent_wins", 1014);
  fx->game_cfg.conn_high_water = 2048;
  fx->game_cfg.write_wait = 3 * SEC;
  fx->game_cfg.game_seconds = 30; /* long enough to end otherwise */
  fx_start(fx);
  sim_bot_t *ada = bot_add(fx, "Ada", &LINK, &LINK);
  sim_bot_t *bob = bot_add(fx, "Bob", &LINK, &LINK);
  match_t m;
  match_start(fx, ada, bob, &m);
  run_to(fx, m.t_run);
  CHECK(fx, sim_bot_set_reading(ada, false) == RT_OK, "stall");
  rt_time_ns stalled_at = m.t_run;
  click_log_t log;
  memset(&log, 0, sizeof(log));
  rt_time_ns kicked_at = 0, gone_at = 0;
  uint32_t i1008 = net_server_close_code_index(1008);
  for (rt_time_ns t = m.t_run + 10 * MS;
       t < m.t_end && count_of(bob, SIM_BOT_GAME_OVER) == 0; t += 50 * MS) {
    for (rt_time_ns u = t; u < t + 50 * MS; u += MS) {
      run_to(fx, u);
      game_stats_t st;
      game_get_stats(fx->game, &st);
      if (kicked_at == 0 && st.kicks[GAME_KICK_WRITE_WAIT] > 0)
        kicked_at = u;
      net_server_stats_t ns;
      net_server_get_stats(fx->srv, &ns);
      if (gone_at == 0 && ns.ws_close_codes[i1008] > 0)
        gone_at = u;
    }
    if (count_of(bob, SIM_BOT_GAME_OVER) == 0)
      click(fx, bob, &log);
  }
  sim_bot_record_t over = wait_kind(fx, bob, SIM_BOT_GAME_OVER, 1, m.t_end);
  CHECK(fx, kicked_at > 0 && gone_at > 0, "kicked %.3f, gone %.3f",
        (double)kicked_at / SEC, (double)gone_at / SEC);
  /* Cut once its output made no progress for write_wait... */
  CHECK(fx,
        kicked_at >= stalled_at + fx->game_cfg.write_wait &&
            kicked_at <= stalled_at + fx->game_cfg.write_wait + 2 * SEC,
        "kicked %.3f s after the stall",
        (double)(kicked_at - stalled_at) / SEC);
  /* ...the connection is gone at most the close wait (5 s) later... */
  CHECK(fx, gone_at - kicked_at <= 5 * SEC, "gone %.3f s after the kick",
        (double)(gone_at - kicked_at) / SEC);
  /* ...and the grace runs from there. */
  CHECK(fx, over.at == gone_at + fx->game_cfg.reconnect_grace + LATENCY,
        "GAME_OVER %.3f s after the connection went",
        (double)(over.at - gone_at) / SEC);
  CHECK(fx,
        strcmp(over.winner, sim_bot_user_id(bob)) == 0 &&
            strcmp(over.reason, "opponent_disconnected") == 0,
        "Bob wins by opponent_disconnected");
  /* Clicks that reached the Room after it finished (GAME_OVER was on its
   * way) are refused; every earlier one scored. */
  uint32_t late = log_trim(&log, over.at - 2 * LATENCY);
  CHECK(fx, late <= 1 && count_of(bob, SIM_BOT_ERROR) == late,
        "%u late clicks, %u errors", late, count_of(bob, SIM_BOT_ERROR));
  CHECK(fx,
        score_of(&over, role_of(&m, bob)) == check_clicks(fx, &m, bob, &log),
        "Bob's score");
  game_stats_t st;
  game_get_stats(fx->game, &st);
  CHECK(fx,
        st.kicks[GAME_KICK_WRITE_WAIT] == 1 &&
            st.kicks[GAME_KICK_MUST_OVERFLOW] == 0,
        "one write_wait kick");
  /* Reading again, Ada finds what was sent, then the 1008 close frame. */
  CHECK(fx, sim_bot_set_reading(ada, true) == RT_OK, "read");
  sim_bot_record_t closed =
      wait_kind(fx, ada, SIM_BOT_CLOSED, 1, now_of(fx) + SEC);
  CHECK(fx, closed.code == 1008, "closed with %u", closed.code);
  CHECK(fx, count_of(ada, SIM_BOT_GAME_OVER) == 0, "too late for Ada");
  fx_free(fx);
}

/* ---- The Store under faults ---------------------------------------------- */

Test(game_sim, store_faults_at_the_end_delay_game_over_and_record_it_once) {
  fx_t *fx = fx_create(
      "store_faults_at_the_end_delay_game_over_and_record_it_once", 1015);
  fx->store_cfg.fault = fault_hook;
  fx->store_cfg.fault_ctx = &fx->fault;
  fx_start(fx);
  sim_bot_t *ada = bot_add(fx, "Ada", &LINK, &LINK);
  sim_bot_t *bob = bot_add(fx, "Bob", &LINK, &LINK);
  match_t m;
  match_start(fx, ada, bob, &m);
  /* Longer than the Room's 5 s resend: the result reaches the Store twice. */
  fx->fault.from = 0;
  fx->fault.until = m.t_end + 7 * SEC;
  click_log_t logs[2];
  memset(logs, 0, sizeof(logs));
  click_together(fx, &m, logs, m.t_run + 10 * MS, m.t_end - 50 * MS, 500 * MS);
  /* The game is over but not yet recorded: clicks are refused, no
   * GAME_OVER yet. */
  run_to(fx, m.t_end + 1 * SEC);
  CHECK(fx, count_of(ada, SIM_BOT_GAME_OVER) == 0, "no GAME_OVER yet");
  CHECK(fx, sim_bot_click(ada, 999) == RT_OK, "click");
  run_for(fx, 100 * MS);
  sim_bot_record_t e, ack;
  CHECK(fx,
        nth(ada, SIM_BOT_ERROR, 0, &e) &&
            strcmp(e.error_code, "not_in_game") == 0 && !ack_of(ada, 999, &ack),
        "a click after the end is refused");
  run_to(fx, fx->fault.until + LATENCY - 1);
  CHECK(fx,
        count_of(ada, SIM_BOT_GAME_OVER) == 0 &&
            count_of(bob, SIM_BOT_GAME_OVER) == 0,
        "no GAME_OVER while the Store fails");
  sim_bot_record_t over =
      wait_kind(fx, ada, SIM_BOT_GAME_OVER, 1, fx->fault.until + 3 * SEC);
  wait_kind(fx, bob, SIM_BOT_GAME_OVER, 1, fx->fault.until + 3 * SEC);
  CHECK(fx,
        over.at >= fx->fault.until + LATENCY &&
            over.at <= fx->fault.until + 2 * SEC + LATENCY,
        "GAME_OVER %.3f s after the Store recovered",
        (double)(over.at - fx->fault.until) / SEC);
  sim_bot_record_t same;
  check_same_game_over(fx, &m, &same);
  CHECK(fx,
        same.p1_score == (int32_t)logs[0].n &&
            same.p2_score == (int32_t)logs[1].n &&
            strcmp(same.reason, "time") == 0,
        "the result is the game's");
  run_for(fx, 10 * SEC); /* let any resend settle */
  game_store_stats_t ss;
  game_store_get_stats(game_store(fx->game), &ss);
  CHECK(fx, ss.errors_busy > 0 && ss.errors_full > 0 && ss.errors_io > 0,
        "busy %" PRIu64 " full %" PRIu64 " io %" PRIu64, ss.errors_busy,
        ss.errors_full, ss.errors_io);
  /* The Room's resend during the outage joined the waiting result. */
  CHECK(fx,
        ss.recorded == 1 && ss.duplicates == 0 && ss.resends_merged == 1 &&
            ss.pending == 0,
        "recorded %" PRIu64 " duplicates %" PRIu64 " merged %" PRIu64
        " pending %u",
        ss.recorded, ss.duplicates, ss.resends_merged, ss.pending);
  CHECK(fx, ss.retries == fx->fault.failed, "a retry per failure");
  int status;
  for (int i = 0; i < 2; i++) {
    cJSON *h = http_get_json(fx, m.by_role[i], "/api/history", true, &status);
    CHECK(fx,
          status == 200 && json_num(h, "totalCount") == 1 &&
              cJSON_GetArraySize(
                  cJSON_GetObjectItemCaseSensitive(h, "games")) == 1,
          "in history exactly once");
    cJSON_Delete(h);
  }
  cJSON *lb = http_get_json(fx, ada, "/api/leaderboard", false, &status);
  CHECK(fx, status == 200 && cJSON_GetArraySize(lb) == 2, "leaderboard");
  for (int i = 0; i < 2; i++)
    CHECK(fx, json_num(cJSON_GetArrayItem(lb, i), "games") == 1,
          "counted once in the totals");
  cJSON_Delete(lb);
  game_stats_t st;
  game_get_stats(fx->game, &st);
  CHECK(fx, st.rooms_finished[GAME_END_TIME] == 1 && st.rooms == 0,
        "the room finished once");
  fx_free(fx);
}

/* ---- Determinism --------------------------------------------------------- */

typedef struct replay_result {
  uint64_t hash;
  uint64_t deliveries;
  uint32_t records[2];
  sim_bot_record_t last[2];
  char user[2][RT_SUBJECT_MAX];
} replay_result_t;

/* A match with jittery links, a golden race, a drop and a resume. */
static void replay_once(fx_t *fx, replay_result_t *out) {
  fx_start(fx);
  sim_link_config_t jittery = {.latency = 3 * MS, .jitter = 4 * MS};
  sim_bot_t *ada = bot_add(fx, "Ada", &jittery, &jittery);
  sim_bot_t *bob = bot_add(fx, "Bob", &jittery, &LINK);
  wait_state(fx, ada, SIM_BOT_OPEN, 5 * SEC);
  wait_state(fx, bob, SIM_BOT_OPEN, 5 * SEC);
  CHECK(fx, sim_bot_join(ada) == RT_OK && sim_bot_join(bob) == RT_OK, "join");
  sim_bot_record_t s = wait_kind(fx, bob, SIM_BOT_GAME_START, 1, 10 * SEC);
  rt_time_ns t_run = s.at - LATENCY + fx->game_cfg.countdown;
  uint32_t spawns = 0;
  for (rt_time_ns t = t_run; t < t_run + 12 * SEC; t += 37 * MS) {
    run_to(fx, t);
    CHECK(fx, sim_bot_click(ada, -1) == RT_OK, "click");
    if ((t / (37 * MS)) % 3 == 0)
      CHECK(fx, sim_bot_clicks(bob, 2, t / MS) == RT_OK, "clicks");
    if (count_of(bob, SIM_BOT_COOKIE_SPAWN) > spawns) {
      spawns = count_of(bob, SIM_BOT_COOKIE_SPAWN);
      CHECK(fx,
            sim_bot_cookie_click(ada) == RT_OK &&
                sim_bot_cookie_click(bob) == RT_OK,
            "race");
    }
    if (t >= t_run + 3 * SEC && t < t_run + 3 * SEC + 37 * MS)
      CHECK(fx, sim_bot_disconnect(ada, SIM_BOT_CLOSE_RESET) == RT_OK, "drop");
    if (t >= t_run + 4 * SEC && t < t_run + 4 * SEC + 37 * MS)
      CHECK(fx, sim_bot_reconnect(ada) == RT_OK, "back");
  }
  run_for(fx, 2 * SEC);
  CHECK(fx, count_of(bob, SIM_BOT_GAME_OVER) == 1, "the game ended");
  out->hash = rt_world_hash(fx->w);
  out->deliveries = rt_world_deliveries(fx->w);
  sim_bot_t *bots[2] = {ada, bob};
  for (int i = 0; i < 2; i++) {
    uint32_t n;
    const sim_bot_record_t *r = sim_bot_records(bots[i], &n);
    out->records[i] = n;
    memcpy(&out->last[i], &r[n - 1], sizeof(out->last[i]));
    snprintf(out->user[i], sizeof(out->user[i]), "%s",
             sim_bot_user_id(bots[i]));
  }
}

Test(game_sim, the_same_seed_replays_the_same_match_bit_for_bit) {
  replay_result_t a, b, c;
  memset(&a, 0, sizeof(a));
  memset(&b, 0, sizeof(b));
  memset(&c, 0, sizeof(c));
  const char *name = "the_same_seed_replays_the_same_match_bit_for_bit";
  fx_t *fx = fx_create(name, 1016);
  uint64_t seed = fx->seed;
  replay_once(fx, &a);
  fx_free(fx);
  fx = fx_create(name, 1016);
  replay_once(fx, &b);
  CHECK(fx, a.hash == b.hash && a.deliveries == b.deliveries,
        "hash %016" PRIx64 " vs %016" PRIx64 ", deliveries %" PRIu64
        " vs %" PRIu64,
        a.hash, b.hash, a.deliveries, b.deliveries);
  for (int i = 0; i < 2; i++) {
    CHECK(fx, a.records[i] == b.records[i], "records");
    CHECK(fx, memcmp(&a.last[i], &b.last[i], sizeof(a.last[i])) == 0,
          "the same last record");
    CHECK(fx, strcmp(a.user[i], b.user[i]) == 0, "the same user ids");
  }
  fx_free(fx);
  /* Another seed is another run. */
  fx = fx_create(name, seed + 1);
  fx->seed = seed + 1;
  replay_once(fx, &c);
  CHECK(fx, c.hash != a.hash, "seeds %" PRIu64 " and %" PRIu64 " agree", seed,
        seed + 1);
  fx_free(fx);
}

/* ---- The flood guard ----------------------------------------------------- */

/* A burst of CLICK frames (4096: one 64 KiB read holds ~2,900) used to fill
 * the Room's mailbox before its click limit saw any, and the opponent's
 * QUIT_GAME in the same instant was refused and lost. The Client's flood
 * guard passes in_burst of them and closes the flooder with 1008. */
Test(game_sim, a_click_flood_is_cut_and_the_opponents_quit_gets_through) {
  fx_t *fx = fx_create(
      "a_click_flood_is_cut_and_the_opponents_quit_gets_through", 2001);
  fx_start(fx);
  sim_bot_t *ada = bot_add(fx, "Ada", &LINK, &LINK);
  sim_bot_t *bob = bot_add(fx, "Bob", &LINK, &LINK);
  match_t m;
  match_start(fx, ada, bob, &m);
  run_to(fx, m.t_run + 500 * MS);
  CHECK(fx, sim_bot_clicks(ada, 4096, -1) == RT_OK, "flood");
  CHECK(fx, sim_bot_quit(bob) == RT_OK, "quit");
  run_to(fx, m.t_run + 1500 * MS);
  CHECK(fx, count_of(bob, SIM_BOT_GAME_OVER) == 1,
        "Bob quit at %.3f; no GAME_OVER by %.3f (his QUIT_GAME was lost)",
        (double)(m.t_run + 500 * MS) / SEC, (double)now_of(fx) / SEC);
  CHECK(fx,
        sim_bot_state(ada) != SIM_BOT_OPEN && sim_bot_close_code(ada) == 1008,
        "the flooder: state %d close %u", (int)sim_bot_state(ada),
        (unsigned)sim_bot_close_code(ada));
  game_stats_t st;
  game_get_stats(fx->game, &st);
  CHECK(fx, st.kicks[GAME_KICK_FLOOD] == 1, "flood kicks %" PRIu64,
        st.kicks[GAME_KICK_FLOOD]);
  fx_free(fx);
}

/* Bob's one click at a human rate, in the instant of Ada's burst, is
 * scored and answered (it used to be refused by the Room's full mailbox). */
Test(game_sim, a_click_flood_does_not_lose_the_opponents_click) {
  fx_t *fx = fx_create("a_click_flood_does_not_lose_the_opponents_click", 2004);
  fx_start(fx);
  sim_bot_t *ada = bot_add(fx, "Ada", &LINK, &LINK);
  sim_bot_t *bob = bot_add(fx, "Bob", &LINK, &LINK);
  match_t m;
  match_start(fx, ada, bob, &m);
  run_to(fx, m.t_run + 500 * MS);
  CHECK(fx, sim_bot_clicks(ada, 4096, -1) == RT_OK, "flood");
  CHECK(fx, sim_bot_click(bob, 1) == RT_OK, "click");
  run_to(fx, m.t_run + 1500 * MS);
  sim_bot_record_t ack;
  CHECK(fx, ack_of(bob, 1, &ack), "Bob's click got no answer");
  CHECK(fx, score_of(&ack, role_of(&m, bob)) == 1, "Bob's click scored %d",
        score_of(&ack, role_of(&m, bob)));
  fx_free(fx);
}

/* The same floods, every millisecond, while Bob comes back on a new
 * connection: the Manager's BACK to the Room used to be refused, so Bob,
 * connected, got no resumed GAME_START and lost when the grace ran out. */
Test(game_sim, a_click_flood_does_not_lose_the_opponents_resume) {
  fx_t *fx =
      fx_create("a_click_flood_does_not_lose_the_opponents_resume", 2002);
  fx->game_cfg.game_seconds = 30;
  fx_start(fx);
  sim_bot_t *ada = bot_add(fx, "Ada", &LINK, &LINK);
  sim_bot_t *bob = bot_add(fx, "Bob", &LINK, &LINK);
  match_t m;
  match_start(fx, ada, bob, &m);
  run_to(fx, m.t_run + 500 * MS);
  CHECK(fx, sim_bot_disconnect(bob, SIM_BOT_CLOSE_RESET) == RT_OK, "reset");
  run_to(fx, m.t_run + 1000 * MS);
  CHECK(fx, sim_bot_reconnect(bob) == RT_OK, "reconnect");
  for (int i = 0; i < 60; i++) {
    if (sim_bot_state(ada) == SIM_BOT_OPEN)
      CHECK(fx, sim_bot_clicks(ada, 1024, -1) == RT_OK, "flood");
    run_for(fx, MS);
  }
  run_for(fx, 500 * MS);
  CHECK(fx, sim_bot_state(bob) == SIM_BOT_OPEN, "Bob is connected");
  CHECK(fx, count_of(bob, SIM_BOT_GAME_START) == 2,
        "Bob, back since %.3f, got %u GAME_START",
        (double)(m.t_run + 1000 * MS) / SEC, count_of(bob, SIM_BOT_GAME_START));
  fx_free(fx);
}

/* The guard's bounds: in_burst messages at once pass, one more is cut;
 * after a second at in_rate, in_rate more pass again. Small limits so the
 * Room's click limit (off here) does not answer first. */
Test(game_sim, the_flood_guard_passes_its_burst_and_cuts_one_more) {
  for (int over = 0; over <= 1; over++) {
    fx_t *fx = fx_create("the_flood_guard_passes_its_burst_and_cuts_one_more",
                         2006 + (uint64_t)over);
    fx->game_cfg.click_rate = 0;
    fx->game_cfg.in_rate = 10;
    fx->game_cfg.in_burst = 20;
    fx_start(fx);
    sim_bot_t *ada = bot_add(fx, "Ada", &LINK, &LINK);
    sim_bot_t *bob = bot_add(fx, "Bob", &LINK, &LINK);
    match_t m;
    match_start(fx, ada, bob, &m);
    run_to(fx, m.t_run + 500 * MS);
    /* The JOIN_QUEUE sent before the match took a token; a second's
     * refill since has put it back (10 per second, up to 20). */
    CHECK(fx, sim_bot_clicks(ada, 20 + (uint32_t)over, -1) == RT_OK, "burst");
    run_for(fx, 200 * MS);
    if (over) {
      CHECK(fx, sim_bot_close_code(ada) == 1008,
            "one more than the burst: "
            "close %u",
            (unsigned)sim_bot_close_code(ada));
    } else {
      CHECK(fx, sim_bot_state(ada) == SIM_BOT_OPEN, "the burst passes");
      run_for(fx, SEC);
      CHECK(fx, sim_bot_clicks(ada, 10, -1) == RT_OK, "a second's worth");
      run_for(fx, 200 * MS);
      CHECK(fx, sim_bot_state(ada) == SIM_BOT_OPEN, "the refill passes");
      run_for(fx, SEC);
      uint32_t acked = count_of(ada, SIM_BOT_UPDATE_CLICK);
      CHECK(fx, acked == 30, "every click passed on and answered: %u", acked);
    }
    fx_free(fx);
  }
}

/* POST /api/login accepts 24 four-byte characters (PROTOCOL.md: 1-24
 * printable characters) and answers 200 with a token; that token passes
 * the check the WebSocket upgrade and /api/history make. */
Test(game_sim, the_longest_name_login_takes_gives_a_token_the_upgrade_takes) {
  fx_t *fx = fx_create(
      "the_longest_name_login_takes_gives_a_token_the_upgrade_takes", 2003);
  fx_start(fx);
  char body[256] = "{\"name\":\"";
  for (int i = 0; i < 24; i++)
    strcat(body, "\xf0\x9f\x8d\xaa");
  strcat(body, "\"}");
  rt_http_call_t call = {.method = "POST",
                         .path = "/api/login",
                         .query = "",
                         .body = (const uint8_t *)body,
                         .body_len = (uint32_t)strlen(body)};
  rt_http_answer_t ans = {0};
  CHECK(fx, game_api_login(fx->game, fx->w, &call, &ans) == RT_HTTP_ANSWERED,
        "answered");
  CHECK(fx, ans.status == 200, "login: %d", ans.status);
  cJSON *j = cJSON_ParseWithLength((const char *)ans.body->data, ans.body->len);
  const char *token = json_str(j, "token");
  rt_identity_t who;
  int rc = game_authenticate(fx->game, token, &who);
  CHECK(fx, rc == 0, "login's own token refused by the upgrade check: %d", rc);
  cJSON_Delete(j);
  rt_buf_unref(ans.body);
  fx_free(fx);
}

/* Under backpressure a newer tick supersedes a queued one, and is queued
 * last: put in the older's place it would overtake the click UPDATEs
 * produced before it, and a slow reader would see the opponent's score go
 * down (from 50 to 26 here, before). PROTOCOL.md: messages arrive in the
 * order produced, except that a droppable one may be dropped or replaced. */
Test(game_sim, a_slow_reader_never_sees_a_score_go_down) {
  fx_t *fx = fx_create("a_slow_reader_never_sees_a_score_go_down", 2005);
  fx->game_cfg.conn_high_water = 2048;
  fx_start(fx);
  sim_link_config_t slow = {.latency = LATENCY, .bandwidth = 300};
  sim_bot_t *ada = bot_add(fx, "Ada", &LINK, &slow);
  sim_bot_t *bob = bot_add(fx, "Bob", &LINK, &LINK);
  wait_state(fx, ada, SIM_BOT_OPEN, 10 * SEC);
  wait_state(fx, bob, SIM_BOT_OPEN, 10 * SEC);
  CHECK(fx, sim_bot_join(ada) == RT_OK && sim_bot_join(bob) == RT_OK, "join");
  sim_bot_record_t sb =
      wait_kind(fx, bob, SIM_BOT_GAME_START, 1, now_of(fx) + 5 * SEC);
  int rb = strcmp(sb.role, "p1") == 0 ? 0 : 1;
  rt_time_ns t_run = sb.at - LATENCY + fx->game_cfg.countdown;
  rt_time_ns t_end = t_run + (rt_time_ns)fx->game_cfg.game_seconds * SEC;
  for (rt_time_ns t = t_run + 10 * MS; t < t_end - 50 * MS; t += 40 * MS) {
    run_to(fx, t);
    CHECK(fx, sim_bot_click(bob, -1) == RT_OK, "click");
  }
  wait_kind(fx, ada, SIM_BOT_GAME_OVER, 1, t_end + 40 * SEC);
  uint32_t n;
  const sim_bot_record_t *r = sim_bot_records(ada, &n);
  int32_t seen = 0;
  for (uint32_t k = 0; k < n; k++) {
    if (r[k].kind != SIM_BOT_UPDATE_TICK && r[k].kind != SIM_BOT_UPDATE_CLICK &&
        r[k].kind != SIM_BOT_GAME_OVER)
      continue;
    int32_t s = rb == 0 ? r[k].p1_score : r[k].p2_score;
    CHECK(fx, s >= seen, "Ada saw Bob's score go from %d to %d at %.3f (%s)",
          seen, s, (double)r[k].at / SEC,
          sim_bot_kind_name((sim_bot_kind_t)r[k].kind));
    seen = s;
  }
  fx_free(fx);
}

/* ---- Tests: the original frontend's HTTP (PROTOCOL.md) ------------------- */

#define RAW_ANSWER_MAX 4096u

typedef struct raw_answer {
  int status;
  char head[RAW_ANSWER_MAX]; /* status line to the blank line */
  char body[RAW_ANSWER_MAX];
} raw_answer_t;

/* One request (sent whole; it asks for Connection: close) on a new
 * connection, as a browser sends what the bots do not: OPTIONS, Origin,
 * POST /auth/logout. The answer is read until the server closes. */
static void http_raw(fx_t *fx, const char *request, raw_answer_t *out) {
  rt_stream_t *s = NULL;
  CHECK(fx, sim_connect(fx->sw, PORT, 0, &LINK, &LINK, &s) == RT_OK, "connect");
  size_t len = strlen(request);
  CHECK(fx, rt_stream_write(s, request, len) == (int64_t)len, "write");
  char in[2 * RAW_ANSWER_MAX];
  size_t got = 0;
  rt_time_ns deadline = now_of(fx) + 2 * SEC;
  bool end = false;
  while (!end && now_of(fx) < deadline) {
    run_for(fx, STEP);
    for (;;) {
      int64_t n = rt_stream_read(s, in + got, sizeof(in) - 1 - got);
      if (n <= 0) {
        end = n < 0;
        break;
      }
      got += (size_t)n;
      cr_assert_lt(got, sizeof(in) - 1, "answer too long");
    }
  }
  rt_stream_close(s);
  CHECK(fx, end, "the server closed the connection: %.*s", (int)got, in);
  in[got] = '\0';
  memset(out, 0, sizeof(*out));
  CHECK(fx, sscanf(in, "HTTP/1.1 %d ", &out->status) == 1, "status: %s", in);
  const char *b = strstr(in, "\r\n\r\n");
  CHECK(fx, b != NULL, "a whole head: %s", in);
  snprintf(out->head, sizeof(out->head), "%.*s", (int)(b + 4 - in), in);
  snprintf(out->body, sizeof(out->body), "%s", b + 4);
}

/* GET /auth/verify with this Authorization value ("" for none). */
static void verify_raw(fx_t *fx, const char *authorization, raw_answer_t *out) {
  char req[2 * RAW_ANSWER_MAX];
  snprintf(req, sizeof(req),
           "GET /auth/verify HTTP/1.1\r\nHost: game.test\r\n%s%s%s"
           "Content-Type: application/json\r\nConnection: close\r\n\r\n",
           authorization[0] != '\0' ? "Authorization: " : "", authorization,
           authorization[0] != '\0' ? "\r\n" : "");
  http_raw(fx, req, out);
}

#define TOKEN_ERROR "{\"error\":\"missing or invalid bearer token\"}"

/* The frontend keeps {id, name, email, picture, token} from /auth/verify
 * and deletes its session on anything but a 2xx. */
Test(game_sim, auth_verify_answers_the_session_of_a_good_token_and_401_else) {
  fx_t *fx = fx_create(
      "auth_verify_answers_the_session_of_a_good_token_and_401_else", 3001);
  fx_start(fx);
  sim_bot_t *ada = bot_add(fx, "Ada", &LINK, &LINK);
  wait_state(fx, ada, SIM_BOT_OPEN, 5 * SEC);
  int status;
  cJSON *v = http_get_json(fx, ada, "/auth/verify", true, &status);
  CHECK(fx, status == 200, "verify: %d", status);
  CHECK(fx, cJSON_GetArraySize(v) == 5, "five fields");
  CHECK(fx, strcmp(json_str(v, "id"), sim_bot_user_id(ada)) == 0, "id %s",
        json_str(v, "id"));
  CHECK(fx, strcmp(json_str(v, "name"), "Ada") == 0, "name");
  CHECK(fx, strcmp(json_str(v, "email"), "") == 0, "email");
  CHECK(fx, strcmp(json_str(v, "picture"), "") == 0, "picture");
  CHECK(fx, strcmp(json_str(v, "token"), sim_bot_token(ada)) == 0, "token");
  cJSON_Delete(v);
  /* No token, another scheme, an empty token, one that is not a JWT, ours
   * cut short, a well-formed one whose signature is not ours: 401 with the
   * history's error. */
  char bad[RAW_ANSWER_MAX];
  const char *token = sim_bot_token(ada);
  const char *refused[] = {
      "",       "Basic YWRhOmFkYQ==", "Bearer ", "Bearer not.a.token", bad,
      bad + 256};
  snprintf(bad, 256, "Bearer %.*s", (int)strlen(token) - 1, token);
  snprintf(bad + 256, sizeof(bad) - 256,
           "Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1LTEiLCJu"
           "YW1lIjoiRXZlIiwiZXhwIjo0MTAyNDQ0ODAwfQ.ws1Z6lZx9BFdBqvAJ0kYJ3JbV"
           "yUuO4qeVh0ZTzjO0H0");
  for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
    raw_answer_t a;
    verify_raw(fx, refused[i], &a);
    CHECK(fx, a.status == 401, "case %zu: %d", i, a.status);
    CHECK(fx, strcmp(a.body, TOKEN_ERROR) == 0, "case %zu: %s", i, a.body);
    CHECK(fx, strstr(a.head, "Access-Control") == NULL, "no CORS configured");
  }
  /* "bearer" in any case, as the history takes it. */
  char lower[RAW_ANSWER_MAX];
  snprintf(lower, sizeof(lower), "bearer %s", token);
  raw_answer_t a;
  verify_raw(fx, lower, &a);
  CHECK(fx, a.status == 200, "bearer: %d %s", a.status, a.body);
  fx_free(fx);
}

/* Tokens are stateless: a logout revokes nothing, answers 204 with no
 * content, and the token goes on working until it expires. */
Test(game_sim, auth_logout_is_204_without_content_and_revokes_nothing) {
  fx_t *fx =
      fx_create("auth_logout_is_204_without_content_and_revokes_nothing", 3002);
  fx_start(fx);
  sim_bot_t *ada = bot_add(fx, "Ada", &LINK, &LINK);
  wait_state(fx, ada, SIM_BOT_OPEN, 5 * SEC);
  char req[RAW_ANSWER_MAX];
  const char *auths[] = {sim_bot_token(ada), "garbage", NULL};
  for (size_t i = 0; i < sizeof(auths) / sizeof(auths[0]); i++) {
    snprintf(req, sizeof(req),
             "POST /auth/logout HTTP/1.1\r\nHost: game.test\r\n%s%s%s"
             "Content-Type: application/json\r\nContent-Length: 0\r\n"
             "Connection: close\r\n\r\n",
             auths[i] != NULL ? "Authorization: Bearer " : "",
             auths[i] != NULL ? auths[i] : "", auths[i] != NULL ? "\r\n" : "");
    raw_answer_t a;
    http_raw(fx, req, &a);
    CHECK(fx, a.status == 204, "case %zu: %d", i, a.status);
    CHECK(fx,
          strcmp(a.head, "HTTP/1.1 204 No Content\r\nConnection: close\r\n"
                         "Cache-Control: no-store\r\n\r\n") == 0,
          "case %zu: %s", i, a.head);
    CHECK(fx, a.body[0] == '\0', "no content: %s", a.body);
  }
  /* Only POST: a GET is told so. */
  raw_answer_t a;
  http_raw(fx,
           "GET /auth/logout HTTP/1.1\r\nHost: game.test\r\n"
           "Connection: close\r\n\r\n",
           &a);
  CHECK(fx, a.status == 405 && strstr(a.head, "\r\nAllow: POST\r\n") != NULL,
        "%s", a.head);
  int status;
  cJSON *v = http_get_json(fx, ada, "/auth/verify", true, &status);
  CHECK(fx, status == 200, "the token still verifies: %d", status);
  cJSON_Delete(v);
  CHECK(fx, sim_bot_state(ada) == SIM_BOT_OPEN, "the WebSocket is untouched");
  fx_free(fx);
}

#define FRONTEND "http://localhost:3000"
#define CORS_LINES                                                             \
  "Access-Control-Allow-Origin: " FRONTEND "\r\n"                              \
  "Access-Control-Allow-Credentials: true\r\nVary: Origin\r\n"

/* A request from the frontend's origin: method, target, more lines. */
static void from_frontend(fx_t *fx, const char *method_target, const char *more,
                          raw_answer_t *out) {
  char req[2 * RAW_ANSWER_MAX];
  snprintf(req, sizeof(req),
           "%s HTTP/1.1\r\nHost: game.test\r\nOrigin: " FRONTEND "\r\n%s"
           "Connection: close\r\n\r\n",
           method_target, more);
  http_raw(fx, req, out);
}

/* The server every program assembles (server_start) takes its CORS
 * origins from the options: the frontend's preflights and calls on the
 * game's routes get them, errors and deferred answers included. */
Test(game_sim, a_cors_origin_in_the_options_reaches_every_api_route) {
  fx_t *fx =
      fx_create("a_cors_origin_in_the_options_reaches_every_api_route", 3003);
  fx->cors_origin = FRONTEND;
  fx_start(fx);
  sim_bot_t *ada = bot_add(fx, "Ada", &LINK, &LINK);
  wait_state(fx, ada, SIM_BOT_OPEN, 5 * SEC);
  static const struct {
    const char *path, *asks, *methods;
  } preflights[] = {
      {"/auth/verify", "GET", "GET, HEAD"},
      {"/auth/logout", "POST", "POST"},
      {"/api/history", "GET", "GET, HEAD"},
      {"/api/leaderboard", "GET", "GET, HEAD"},
      {"/api/login", "POST", "POST"},
  };
  for (size_t i = 0; i < sizeof(preflights) / sizeof(preflights[0]); i++) {
    char target[128], asks[256], want[1024];
    snprintf(target, sizeof(target), "OPTIONS %s", preflights[i].path);
    snprintf(asks, sizeof(asks),
             "Access-Control-Request-Method: %s\r\n"
             "Access-Control-Request-Headers: authorization,content-type\r\n",
             preflights[i].asks);
    raw_answer_t a;
    from_frontend(fx, target, asks, &a);
    snprintf(want, sizeof(want),
             "HTTP/1.1 204 No Content\r\nConnection: close\r\n"
             "Access-Control-Allow-Methods: %s\r\n"
             "Access-Control-Allow-Headers: Authorization, Content-Type\r\n"
             "Access-Control-Max-Age: 600\r\n" CORS_LINES "\r\n",
             preflights[i].methods);
    CHECK(fx, strcmp(a.head, want) == 0, "%s: %s", preflights[i].path, a.head);
  }
  char auth[RAW_ANSWER_MAX];
  snprintf(auth, sizeof(auth), "Authorization: Bearer %s\r\n",
           sim_bot_token(ada));
  raw_answer_t a;
  from_frontend(fx, "GET /auth/verify", auth, &a);
  CHECK(fx, a.status == 200 && strstr(a.head, CORS_LINES) != NULL, "%s",
        a.head);
  from_frontend(fx, "GET /auth/verify", "", &a);
  CHECK(fx, a.status == 401 && strstr(a.head, CORS_LINES) != NULL, "%s",
        a.head);
  CHECK(fx, strcmp(a.body, TOKEN_ERROR) == 0, "%s", a.body);
  from_frontend(fx, "GET /api/history", auth, &a); /* deferred: the Store */
  CHECK(fx, a.status == 200 && strstr(a.head, CORS_LINES) != NULL, "%s",
        a.head);
  from_frontend(fx, "POST /auth/logout", auth, &a);
  CHECK(fx, a.status == 204 && strstr(a.head, CORS_LINES) != NULL, "%s",
        a.head);
  /* Not the API: no CORS. Not the origin: no CORS, and OPTIONS is 405. */
  from_frontend(fx, "GET /health", "", &a);
  CHECK(fx, a.status == 200 && strstr(a.head, "Access-Control") == NULL, "%s",
        a.head);
  http_raw(fx,
           "OPTIONS /auth/verify HTTP/1.1\r\nHost: game.test\r\n"
           "Origin: http://localhost:3001\r\n"
           "Access-Control-Request-Method: GET\r\nConnection: close\r\n\r\n",
           &a);
  CHECK(fx, a.status == 405 && strstr(a.head, "Access-Control") == NULL, "%s",
        a.head);
  fx_free(fx);
}
