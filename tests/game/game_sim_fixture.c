/* game_sim_fixture.c: the fixture the game_sim tests share
 * (game_sim_fixture.h): the world and the server, bots, matches and the
 * scoring model. */
#include "game_sim_fixture.h"

#include "game.h"
#include "game_config.h"
#include "server.h"
#include "sim_bot.h"
#include "sim_pipe.h"
#include "sim_world.h"

#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SECRET "test-secret-for-the-simulation"
#define TURNS_MAX 100000000ull /* per run_to: far above any need */
#define DUMP_RECORDS_MAX 40u
#define DUMP_BOTS_MAX 6u

const sim_link_config_t LINK = {.latency = LATENCY};

/* ---- The fixture --------------------------------------------------------- */

fx_t *fx_create(const char *name, uint64_t seed) {
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
void fx_start(fx_t *fx) {
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

void fx_free(fx_t *fx) {
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

void fx_report(const fx_t *fx, const char *what, const char *file, int line) {
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

rt_time_ns now_of(const fx_t *fx) { return rt_now(fx->w); }

/* Run every event up to and including time t. An idle world (no timer
 * pending) has nothing to do until then: its clock just moves. */
void run_to(fx_t *fx, rt_time_ns t) {
  sim_run_result_t r = sim_world_run(fx->sw, t, TURNS_MAX);
  CHECK(fx, r != SIM_RUN_TURNS, "the world did not settle before t=%" PRId64,
        t);
  if (rt_now(fx->w) < t)
    rt_world_set_time(fx->w, t);
}

void run_for(fx_t *fx, rt_time_ns d) { run_to(fx, now_of(fx) + d); }

static sim_bot_t *bot_spawn(fx_t *fx, const sim_bot_config_t *cfg) {
  CHECK(fx, fx->bots_len < BOTS_MAX, "too many bots");
  sim_bot_t *b = NULL;
  CHECK(fx, sim_bot_spawn(fx->sw, PORT, cfg, &b) == RT_OK, "sim_bot_spawn");
  fx->bots[fx->bots_len++] = b;
  return b;
}

sim_bot_t *bot_add(fx_t *fx, const char *name, const sim_link_config_t *up,
                   const sim_link_config_t *down) {
  sim_bot_config_t cfg = {.name = name, .records_max = 16384};
  if (up != NULL)
    cfg.up = *up;
  if (down != NULL)
    cfg.down = *down;
  return bot_spawn(fx, &cfg);
}

/* A second connection for a known player, or a bad token. */
sim_bot_t *bot_with_token(fx_t *fx, const char *name, const char *token,
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
bool nth(const sim_bot_t *b, sim_bot_kind_t kind, uint32_t i,
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

uint32_t count_of(const sim_bot_t *b, sim_bot_kind_t kind) {
  return sim_bot_count(b, kind);
}

/* Run in small steps until `b` has n records of `kind`; fail at deadline. */
sim_bot_record_t wait_kind(fx_t *fx, sim_bot_t *b, sim_bot_kind_t kind,
                           uint32_t n, rt_time_ns deadline) {
  while (count_of(b, kind) < n && now_of(fx) < deadline)
    run_for(fx, STEP);
  sim_bot_record_t r;
  CHECK(fx, nth(b, kind, n - 1, &r), "%s never got %s #%u by t=%.3f",
        sim_bot_name(b), sim_bot_kind_name(kind), n, (double)deadline / SEC);
  return r;
}

void wait_state(fx_t *fx, sim_bot_t *b, sim_bot_state_t state,
                rt_time_ns deadline) {
  while (sim_bot_state(b) != state && now_of(fx) < deadline)
    run_for(fx, STEP);
  CHECK(fx, sim_bot_state(b) == state, "%s: state %d, expected %d",
        sim_bot_name(b), (int)sim_bot_state(b), (int)state);
}

/* GET on a bot's HTTP connection; returns the parsed JSON body (owned). */
cJSON *http_get_json(fx_t *fx, sim_bot_t *b, const char *path, bool bearer,
                     int *status) {
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

const char *json_str(const cJSON *o, const char *name) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
  return cJSON_IsString(v) ? v->valuestring : "(missing)";
}

double json_num(const cJSON *o, const char *name) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
  return cJSON_IsNumber(v) ? v->valuedouble : -1e9;
}

/* ---- Matches ------------------------------------------------------------- */

int role_of(const match_t *m, const sim_bot_t *b) {
  return m->by_role[0] == b ? 0 : 1;
}

int32_t score_of(const sim_bot_record_t *r, int role) {
  return role == 0 ? r->p1_score : r->p2_score;
}

/* Both bots join now (a first); returns when both saw GAME_START. */
void match_start(fx_t *fx, sim_bot_t *a, sim_bot_t *b, match_t *m) {
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

void click(fx_t *fx, sim_bot_t *b, click_log_t *log) {
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
bool ack_of(const sim_bot_t *b, int64_t seq, sim_bot_record_t *out) {
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
int32_t check_clicks(fx_t *fx, const match_t *m, sim_bot_t *b,
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

void check_same_game_over(fx_t *fx, const match_t *m, sim_bot_record_t *out) {
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
  /* It names its game (README, "Protocol additions"), on one instance too. */
  CHECK(fx,
        strcmp(o1.room_id, m->start[0].room_id) == 0 &&
            strcmp(o2.room_id, m->start[0].room_id) == 0,
        "GAME_OVER names %s and %s; the game is %s", o1.room_id, o2.room_id,
        m->start[0].room_id);
  *out = o1;
}

/* Both players click at the same instants every `period` from `from` until
 * `until` (send times); nobody touches a golden cookie. */
void click_together(fx_t *fx, match_t *m, click_log_t logs[2], rt_time_ns from,
                    rt_time_ns until, rt_time_ns period) {
  for (rt_time_ns t = from; t < until; t += period) {
    run_to(fx, t);
    click(fx, m->by_role[0], &logs[0]);
    click(fx, m->by_role[1], &logs[1]);
  }
}
