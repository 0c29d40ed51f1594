/* test_game_store.c: leaderboard and history (game/game_store.h) in
 * SQLite, in the simulated world, and in PostgreSQL, in the live world.
 *
 * The suite game_store runs every test on SQLite in memory; game_store_pg
 * runs the tests of what is stored and read (BOTH_BACKENDS) again on a
 * throwaway PostgreSQL server (tests/lib/pg_tmp.h), started once for the
 * binary, one database per test, with the Store in a live world (its
 * socket watched by libevent), plus PostgreSQL's own: groups in one
 * commit, a restart in the middle, reads while it is down.
 *
 * Each test builds a simulated world with a fixed seed, starts the Store on
 * ":memory:" (or a temporary file for the migration tests) and spawns one
 * probe actor. The probe is what a Room and the HTTP layer are to the Store:
 *   - told TAG_SEND, it records results (game_store_record) from inside its
 *     behaviour, so the Store answers it with GAME_TAG_STORE_RECORDED; it
 *     notes every acknowledged key and the virtual time it arrived;
 *   - told TAG_LEADERBOARD or TAG_HISTORY, it issues the query with itself
 *     as reply_to and notes the RT_TAG_HTTP_REPLY (status, body, time).
 * Faults come from game_store_config_t.fault: a table that fails the next N
 * operations of a kind with a chosen SQLite code.
 *
 * Virtual time makes the backoff exact: with retry_min 10 ms the third retry
 * of a record that failed three times commits at 10 + 20 + 40 = 70 ms.
 *
 * Every loop is bounded by a fixed table or a named maximum; every world run
 * is bounded by TURNS_MAX and must end idle. Replay a failure with:
 *   build/bin/test_game_store --filter 'game_store/<test name>'
 * (every world here uses SEED).
 */
#include "game_int.h"
#include "game_store.h"
#include "net_live.h"
#include "pg_tmp.h"
#include "rt_service.h"
#include "rt_world.h"
#include "sim_world.h"

#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MS RT_NS_PER_MS
#define SEED 20260101u
#define TURNS_MAX 10000000u /* per run: far above any test's need */

#define PROBE_RESULTS_MAX (GAME_STORE_PENDING_MAX + 8u)
#define PROBE_ACKS_MAX (GAME_STORE_PENDING_MAX + 8u)
#define PROBE_REPLIES_MAX 64u
#define PROBE_BODY_MAX (64u * 1024)

enum {
  TAG_SEND = RT_TAG_USER + 200, /* send_t: record results[first..+count) */
  TAG_LEADERBOARD,              /* query_t */
  TAG_HISTORY,                  /* query_t; subject: probe->subject */
};

typedef struct send {
  uint32_t first;
  uint32_t count;
  uint64_t key_base; /* result i is recorded with key key_base + i */
} send_t;

typedef struct query {
  uint64_t call_id;
  uint32_t limit;
  uint32_t pad_;
} query_t;

typedef struct reply {
  uint64_t call_id;
  int status;
  rt_time_ns at;
  char *body; /* NUL-terminated copy of the buffer */
  size_t len;
} reply_t;

typedef struct probe {
  const game_store_t *st;
  game_result_t results[PROBE_RESULTS_MAX];
  uint32_t sends_refused; /* game_store_record < 0 */
  uint64_t acks[PROBE_ACKS_MAX];
  rt_time_ns acks_at[PROBE_ACKS_MAX];
  uint32_t acks_len;
  char subject[RT_SUBJECT_MAX];
  reply_t replies[PROBE_REPLIES_MAX];
  uint32_t replies_len;
  uint32_t unexpected; /* messages with a tag the probe does not know */
} probe_t;

static void probe_behaviour(rt_actor_t *self, const rt_msg_t *msg) {
  probe_t *p = rt_state(self);
  rt_world_t *w = rt_actor_world(self);
  switch (msg->tag) {
  case TAG_SEND: {
    send_t s;
    RT_MSG_GET(msg, send_t, &s);
    cr_assert_leq((uint64_t)s.first + s.count, PROBE_RESULTS_MAX);
    for (uint32_t i = s.first; i < s.first + s.count; i++) {
      if (game_store_record(w, p->st, &p->results[i], s.key_base + i) < 0)
        p->sends_refused++;
    }
    break;
  }
  case TAG_LEADERBOARD:
  case TAG_HISTORY: {
    query_t q;
    RT_MSG_GET(msg, query_t, &q);
    rt_http_call_t call = {.method = "GET",
                           .path = msg->tag == TAG_HISTORY ? "/api/history"
                                                           : "/api/leaderboard",
                           .query = "",
                           .reply_to = rt_self(self),
                           .call_id = q.call_id};
    int rc =
        msg->tag == TAG_HISTORY
            ? game_store_query_history(w, p->st, &call, p->subject, q.limit)
            : game_store_query_leaderboard(w, p->st, &call, q.limit);
    cr_assert_geq(rc, 0, "query sent: %d", rc);
    break;
  }
  case GAME_TAG_STORE_RECORDED: {
    cr_assert_lt(p->acks_len, PROBE_ACKS_MAX);
    uint64_t key;
    RT_MSG_GET(msg, uint64_t, &key);
    p->acks[p->acks_len] = key;
    p->acks_at[p->acks_len] = rt_now(w);
    p->acks_len++;
    break;
  }
  case RT_TAG_HTTP_REPLY: {
    cr_assert_lt(p->replies_len, PROBE_REPLIES_MAX);
    rt_http_reply_t r;
    RT_MSG_GET(msg, rt_http_reply_t, &r);
    reply_t *out = &p->replies[p->replies_len++];
    out->call_id = r.call_id;
    out->status = r.status;
    out->at = rt_now(w);
    cr_assert_not_null(msg->buf, "a reply carries a body");
    cr_assert_lt(msg->buf->len, PROBE_BODY_MAX);
    out->len = msg->buf->len;
    out->body = malloc(out->len + 1);
    cr_assert_not_null(out->body);
    memcpy(out->body, msg->buf->data, out->len);
    out->body[out->len] = '\0';
    break;
  }
  default: p->unexpected++; break;
  }
}

/* ---- Faults -------------------------------------------------------------- */

typedef struct faults {
  int code;              /* what a failed operation returns */
  uint32_t fail_next[4]; /* by game_store_op_t: how many more to fail */
  uint32_t calls[4];     /* by game_store_op_t: operations attempted */
} faults_t;

static int fault_fn(void *ctx, game_store_op_t op) {
  faults_t *f = ctx;
  cr_assert(op >= GAME_STORE_OP_RECORD && op <= GAME_STORE_OP_HISTORY);
  f->calls[op]++;
  if (f->fail_next[op] > 0) {
    f->fail_next[op]--;
    return f->code;
  }
  return SQLITE_OK;
}

/* ---- The fixture --------------------------------------------------------- */

typedef struct fx {
  sim_world_t *sw;  /* SQLite */
  net_live_t *live; /* PostgreSQL */
  rt_world_t *w;
  game_store_t *st;
  probe_t *probe;
  rt_actor_id_t probe_id;
  faults_t faults;
  uint64_t next_call;
  uint32_t next_result;
} fx_t;

/* ---- PostgreSQL: one server for the binary, one database per test ------- */

/* Set by the BOTH_BACKENDS wrapper that runs the test body. */
static bool use_pg;
static pg_tmp_t pg_server; /* the runner's; tests read OC_TEST_PG_URI */

ReportHook(PRE_ALL)(struct criterion_test_set *set) {
  (void)set;
  if (pg_tmp_start(&pg_server) == 0)
    setenv("OC_TEST_PG_URI", pg_server.uri, 1);
}

ReportHook(POST_ALL)(struct criterion_global_stats *stats) {
  (void)stats;
  pg_tmp_stop(&pg_server);
}

/* A fresh database on the binary's server: its URI in uri. */
static void pg_fresh_database(char *uri, size_t cap) {
  const char *base = getenv("OC_TEST_PG_URI");
  cr_assert_not_null(base, "the PostgreSQL server for the tests started");
  static unsigned made;
  char name[64], sql[128], out[256];
  snprintf(name, sizeof(name), "store_%ld_%u", (long)getpid(), made++);
  snprintf(sql, sizeof(sql), "CREATE DATABASE %s", name);
  int rc = pg_tmp_query(base, sql, out, sizeof(out));
  cr_assert_geq(rc, 0, "%s: %s", sql, out);
  const char *slash = strrchr(base, '/');
  cr_assert_not_null(slash);
  snprintf(uri, cap, "%.*s/%s", (int)(slash - base), base, name);
}

static void fx_open_cfg(fx_t *fx, const game_store_config_t *cfg) {
  memset(fx, 0, sizeof(*fx));
  if (game_store_is_postgres(cfg->path)) {
    net_live_config_t lc = {.seed = SEED, .log_level = RT_LOG_OFF};
    fx->live = net_live_create(&lc);
    cr_assert_not_null(fx->live);
    fx->w = net_live_world(fx->live);
  } else {
    sim_config_t sc = {.seed = SEED, .log_level = RT_LOG_OFF};
    fx->sw = sim_world_create(&sc);
    cr_assert_not_null(fx->sw);
    fx->w = sim_world_rt(fx->sw);
  }
  game_store_config_t c = *cfg;
  if (c.fault != NULL)
    c.fault_ctx = &fx->faults;
  cr_assert_eq(game_store_start(fx->w, &c, &fx->st), RT_OK, "seed %u", SEED);
  fx->probe = calloc(1, sizeof(*fx->probe));
  cr_assert_not_null(fx->probe);
  fx->probe->st = fx->st;
  rt_actor_spec_t spec = {.name = "probe",
                          .behaviour = probe_behaviour,
                          .state = fx->probe,
                          .mailbox_cap = 2 * PROBE_ACKS_MAX,
                          .overflow = RT_OVERFLOW_REJECT};
  cr_assert_eq(rt_spawn(fx->w, &spec, &fx->probe_id), RT_OK);
}

/* In memory, with the fault hook and a 10 ms .. 2 s backoff; or, for
 * game_store_pg, a fresh PostgreSQL database. */
static void fx_open(fx_t *fx) {
  char uri[PG_TMP_URI_MAX + 64];
  game_store_config_t cfg = {.path = ":memory:",
                             .fault = fault_fn,
                             .retry_min = 10 * MS,
                             .retry_max = 2000 * MS};
  if (use_pg) {
    pg_fresh_database(uri, sizeof(uri));
    cfg = (game_store_config_t){
        .path = uri, .retry_min = 10 * MS, .retry_max = 200 * MS};
  }
  fx_open_cfg(fx, &cfg);
  game_store_stats_t st;
  game_store_get_stats(fx->st, &st);
  cr_assert_str_eq(st.backend, use_pg ? "postgres" : "sqlite");
}

static void fx_close(fx_t *fx) {
  if (fx->live != NULL)
    net_live_destroy(fx->live); /* stops the Store and the probe */
  else
    sim_world_destroy(fx->sw);
  game_store_free(fx->st);
  for (uint32_t i = 0; i < fx->probe->replies_len; i++)
    free(fx->probe->replies[i].body);
  cr_assert_eq(fx->probe->unexpected, 0u);
  free(fx->probe);
}

/* The live world never goes idle by itself: run it until the Store has
 * nothing waiting or in flight and no actor has work (at most 20 s). */
static void fx_run_live(fx_t *fx) {
  for (int i = 0; i < 20000; i++) {
    net_live_run_for(fx->live, 1 * MS);
    game_store_stats_t s;
    game_store_get_stats(fx->st, &s);
    if (!rt_world_has_ready(fx->w) && s.pending == 0 && !s.in_flight &&
        s.reads_waiting == 0 && rt_world_next_deadline(fx->w) == RT_TIME_NEVER)
      return;
  }
  cr_assert_fail("the Store did not settle in 20 s");
}

static void fx_run(fx_t *fx) {
  if (fx->live != NULL) {
    fx_run_live(fx);
    return;
  }
  cr_assert_eq(sim_world_run(fx->sw, RT_TIME_NEVER, TURNS_MAX), SIM_RUN_IDLE,
               "the world goes idle (seed %u)", SEED);
}

/* A test of what is stored and read, run on both backends. */
#define BOTH_BACKENDS(name)                                                    \
  static void name(void);                                                      \
  Test(game_store, name) {                                                     \
    use_pg = false;                                                            \
    name();                                                                    \
  }                                                                            \
  Test(game_store_pg, name) {                                                  \
    use_pg = true;                                                             \
    name();                                                                    \
  }                                                                            \
  static void name(void)

static void fx_run_until(fx_t *fx, rt_time_ns t) {
  sim_run_result_t r = sim_world_run(fx->sw, t, TURNS_MAX);
  cr_assert(r == SIM_RUN_IDLE || r == SIM_RUN_DEADLINE);
}

static game_store_stats_t fx_stats(const fx_t *fx) {
  game_store_stats_t s;
  game_store_get_stats(fx->st, &s);
  return s;
}

/* A result; the next slot of the probe's table. Returns its index. */
static uint32_t fx_result(fx_t *fx, const char *room, int64_t at_s,
                          const char *p1, const char *p1_name, int32_t s1,
                          const char *p2, const char *p2_name, int32_t s2,
                          const char *winner, const char *reason) {
  cr_assert_lt(fx->next_result, PROBE_RESULTS_MAX);
  uint32_t i = fx->next_result++;
  game_result_t *r = &fx->probe->results[i];
  memset(r, 0, sizeof(*r));
  snprintf(r->room_id, sizeof(r->room_id), "%s", room);
  r->finished_at_s = at_s;
  snprintf(r->p1_id, sizeof(r->p1_id), "%s", p1);
  snprintf(r->p1_name, sizeof(r->p1_name), "%s", p1_name);
  snprintf(r->p2_id, sizeof(r->p2_id), "%s", p2);
  snprintf(r->p2_name, sizeof(r->p2_name), "%s", p2_name);
  r->p1_score = s1;
  r->p2_score = s2;
  snprintf(r->winner, sizeof(r->winner), "%s", winner);
  snprintf(r->reason, sizeof(r->reason), "%s", reason);
  return i;
}

/* Ask the probe to record results [first, first + count) with keys
 * key_base + i. Does not run the world. */
static void fx_send(fx_t *fx, uint32_t first, uint32_t count,
                    uint64_t key_base) {
  send_t s = {.first = first, .count = count, .key_base = key_base};
  rt_msg_t m = RT_MSG_OF(TAG_SEND, &s);
  cr_assert_eq(rt_send(fx->w, fx->probe_id, &m), RT_PUSH_QUEUED);
}

/* Record one result (key = index) and run to idle. */
static void fx_record(fx_t *fx, uint32_t index) {
  fx_send(fx, index, 1, 0);
  fx_run(fx);
}

/* Issue a query through the probe; returns its call id. */
static uint64_t fx_ask(fx_t *fx, uint16_t tag, const char *subject,
                       uint32_t limit) {
  query_t q = {.call_id = ++fx->next_call, .limit = limit};
  if (subject != NULL)
    snprintf(fx->probe->subject, sizeof(fx->probe->subject), "%s", subject);
  rt_msg_t m = RT_MSG_OF(tag, &q);
  cr_assert_eq(rt_send(fx->w, fx->probe_id, &m), RT_PUSH_QUEUED);
  return q.call_id;
}

static const reply_t *fx_reply(const fx_t *fx, uint64_t call_id) {
  const reply_t *found = NULL;
  for (uint32_t i = 0; i < fx->probe->replies_len; i++) {
    if (fx->probe->replies[i].call_id == call_id) {
      cr_assert_null(found, "one reply per call");
      found = &fx->probe->replies[i];
    }
  }
  cr_assert_not_null(found, "call %" PRIu64 " was answered", call_id);
  return found;
}

/* Query, run to idle, expect 200 and JSON; the caller deletes the result. */
static cJSON *fx_get(fx_t *fx, uint16_t tag, const char *subject,
                     uint32_t limit) {
  uint64_t id = fx_ask(fx, tag, subject, limit);
  fx_run(fx);
  const reply_t *r = fx_reply(fx, id);
  cr_assert_eq(r->status, 200, "status %d body %s", r->status, r->body);
  cJSON *j = cJSON_ParseWithLength(r->body, r->len);
  cr_assert_not_null(j, "JSON body: %s", r->body);
  return j;
}

static cJSON *fx_leaderboard(fx_t *fx, uint32_t limit) {
  cJSON *j = fx_get(fx, TAG_LEADERBOARD, NULL, limit);
  cr_assert(cJSON_IsArray(j));
  return j;
}

static cJSON *fx_history(fx_t *fx, const char *subject, uint32_t limit) {
  cJSON *j = fx_get(fx, TAG_HISTORY, subject, limit);
  cr_assert(cJSON_IsObject(j));
  cr_assert_eq(cJSON_GetArraySize(j), 2, "games and totalCount only");
  cr_assert(cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(j, "games")));
  cr_assert(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(j, "totalCount")));
  return j;
}

static int history_total(const cJSON *h) {
  return cJSON_GetObjectItemCaseSensitive(h, "totalCount")->valueint;
}

static const cJSON *history_game(const cJSON *h, int i) {
  const cJSON *games = cJSON_GetObjectItemCaseSensitive(h, "games");
  const cJSON *g = cJSON_GetArrayItem(games, i);
  cr_assert_not_null(g, "game %d", i);
  return g;
}

static int history_len(const cJSON *h) {
  return cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(h, "games"));
}

static void expect_str(const cJSON *o, const char *key, const char *want) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  cr_assert(cJSON_IsString(v), "\"%s\" is a string", key);
  cr_assert_str_eq(v->valuestring, want, "\"%s\"", key);
}

static void expect_num(const cJSON *o, const char *key, double want) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  cr_assert(cJSON_IsNumber(v), "\"%s\" is a number", key);
  cr_assert(v->valuedouble == want, "\"%s\" = %g, want %g", key, v->valuedouble,
            want);
}

static void expect_bool(const cJSON *o, const char *key, bool want) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  cr_assert(cJSON_IsBool(v), "\"%s\" is a bool", key);
  cr_assert_eq(cJSON_IsTrue(v) != 0, want, "\"%s\"", key);
}

/* A leaderboard row: exactly name, score, games, wins (never an id). */
static void expect_row(const cJSON *board, int i, const char *name, int score,
                       int games, int wins) {
  const cJSON *e = cJSON_GetArrayItem(board, i);
  cr_assert_not_null(e, "row %d", i);
  cr_assert_eq(cJSON_GetArraySize(e), 4, "row %d has 4 fields", i);
  expect_str(e, "name", name);
  expect_num(e, "score", score);
  expect_num(e, "games", games);
  expect_num(e, "wins", wins);
}

/* One history game from the asking player's perspective. */
typedef struct seen {
  const char *game_id;
  int64_t timestamp;
  int score, opponent_score;
  const char *opponent, *opponent_name;
  bool won;
  const char *winner, *reason;
  const char *player_name; /* the asking player's own */
} seen_t;

/* Our 9 fields, then the original server's 4 names beside them (its
 * frontend reads winnerId, playerName and the pictures). */
static void expect_game(const cJSON *h, int i, seen_t want) {
  const cJSON *g = history_game(h, i);
  cr_assert_eq(cJSON_GetArraySize(g), 13, "game %d has the 13 fields", i);
  expect_str(g, "gameId", want.game_id);
  expect_num(g, "timestamp", (double)want.timestamp);
  expect_num(g, "score", want.score);
  expect_num(g, "opponentScore", want.opponent_score);
  expect_str(g, "opponent", want.opponent);
  expect_str(g, "opponentName", want.opponent_name);
  expect_bool(g, "won", want.won);
  expect_str(g, "winner", want.winner);
  expect_str(g, "reason", want.reason);
  expect_str(g, "winnerId", want.winner);
  expect_str(g, "playerName", want.player_name);
  expect_str(g, "playerPicture", "");
  expect_str(g, "opponentPicture", "");
}

/* ---- Recording: Guarantee (3) -------------------------------------------- */

BOTH_BACKENDS(a_time_game_adds_score_games_and_wins_to_both_players) {
  fx_t fx;
  fx_open(&fx);
  uint32_t a = fx_result(&fx, "room-1", 1000, "u-ada", "Ada", 120, "u-bob",
                         "Bob", 80, "u-ada", "time");
  fx_record(&fx, a);
  cr_assert_eq(fx.probe->acks_len, 1u);
  cr_assert_eq(fx.probe->acks[0], a);
  cJSON *board = fx_leaderboard(&fx, 10);
  cr_assert_eq(cJSON_GetArraySize(board), 2);
  expect_row(board, 0, "Ada", 120, 1, 1);
  expect_row(board, 1, "Bob", 80, 1, 0);
  cJSON_Delete(board);
  /* A second time game accumulates. */
  uint32_t b = fx_result(&fx, "room-2", 2000, "u-bob", "Bob", 90, "u-ada",
                         "Ada", 30, "u-bob", "time");
  fx_record(&fx, b);
  board = fx_leaderboard(&fx, 10);
  cr_assert_eq(cJSON_GetArraySize(board), 2);
  expect_row(board, 0, "Bob", 170, 2, 1);
  expect_row(board, 1, "Ada", 150, 2, 1);
  cJSON_Delete(board);
  game_store_stats_t s = fx_stats(&fx);
  cr_assert_eq(s.recorded, 2u);
  cr_assert_eq(s.duplicates, 0u);
  cr_assert_eq(s.pending, 0u);
  cr_assert_eq(s.retries, 0u);
  fx_close(&fx);
}

BOTH_BACKENDS(a_draw_is_a_win_for_neither_player) {
  fx_t fx;
  fx_open(&fx);
  fx_record(&fx, fx_result(&fx, "room-d", 1000, "u-ada", "Ada", 50, "u-bob",
                           "Bob", 50, "draw", "time"));
  cJSON *board = fx_leaderboard(&fx, 10);
  cr_assert_eq(cJSON_GetArraySize(board), 2);
  expect_row(board, 0, "Ada", 50, 1, 0);
  expect_row(board, 1, "Bob", 50, 1, 0);
  cJSON_Delete(board);
  cJSON *h = fx_history(&fx, "u-ada", 10);
  expect_game(h, 0,
              (seen_t){"room-d", 1000, 50, 50, "u-bob", "Bob", false, "draw",
                       "time", "Ada"});
  cJSON_Delete(h);
  h = fx_history(&fx, "u-bob", 10);
  expect_game(h, 0,
              (seen_t){"room-d", 1000, 50, 50, "u-ada", "Ada", false, "draw",
                       "time", "Bob"});
  cJSON_Delete(h);
  fx_close(&fx);
}

BOTH_BACKENDS(quit_and_disconnect_games_are_history_only) {
  fx_t fx;
  fx_open(&fx);
  fx_record(&fx, fx_result(&fx, "room-q", 1000, "u-ada", "Ada", 40, "u-bob",
                           "Bob", 10, "u-ada", "quit"));
  fx_record(&fx, fx_result(&fx, "room-x", 2000, "u-ada", "Ada", 5, "u-bob",
                           "Bob", 60, "u-bob", "opponent_disconnected"));
  cr_assert_eq(fx.probe->acks_len, 2u, "both acknowledged");
  cJSON *board = fx_leaderboard(&fx, 10);
  cr_assert_eq(cJSON_GetArraySize(board), 0, "no totals from quit/disconnect");
  cJSON_Delete(board);
  cJSON *h = fx_history(&fx, "u-ada", 10);
  cr_assert_eq(history_total(h), 2);
  cr_assert_eq(history_len(h), 2);
  expect_game(h, 0,
              (seen_t){"room-x", 2000, 5, 60, "u-bob", "Bob", false, "u-bob",
                       "opponent_disconnected", "Ada"});
  expect_game(h, 1,
              (seen_t){"room-q", 1000, 40, 10, "u-bob", "Bob", true, "u-ada",
                       "quit", "Ada"});
  cJSON_Delete(h);
  /* A later time game adds only its own points. */
  fx_record(&fx, fx_result(&fx, "room-t", 3000, "u-ada", "Ada", 7, "u-bob",
                           "Bob", 3, "u-ada", "time"));
  board = fx_leaderboard(&fx, 10);
  cr_assert_eq(cJSON_GetArraySize(board), 2);
  expect_row(board, 0, "Ada", 7, 1, 1);
  expect_row(board, 1, "Bob", 3, 1, 0);
  cJSON_Delete(board);
  cr_assert_eq(fx_stats(&fx).recorded, 3u);
  fx_close(&fx);
}

/* ---- Recording: Guarantee (2) -------------------------------------------- */

BOTH_BACKENDS(the_same_room_recorded_twice_is_stored_once_and_acked_twice) {
  fx_t fx;
  fx_open(&fx);
  uint32_t a = fx_result(&fx, "room-1", 1000, "u-ada", "Ada", 10, "u-bob",
                         "Bob", 5, "u-ada", "time");
  /* The retry a Room sends when it did not see the first acknowledgement;
   * even a different payload for the same room changes nothing. */
  uint32_t b = fx_result(&fx, "room-1", 1001, "u-ada", "Ada", 999, "u-bob",
                         "Bob", 5, "u-ada", "time");
  fx_send(&fx, a, 1, 100);
  fx_send(&fx, b, 1, 100);
  fx_run(&fx);
  cr_assert_eq(fx.probe->acks_len, 2u);
  cr_assert_eq(fx.probe->acks[0], 100u + a);
  cr_assert_eq(fx.probe->acks[1], 100u + b);
  game_store_stats_t s = fx_stats(&fx);
  cr_assert_eq(s.recorded, 1u);
  cr_assert_eq(s.duplicates, 1u);
  cJSON *board = fx_leaderboard(&fx, 10);
  expect_row(board, 0, "Ada", 10, 1, 1);
  expect_row(board, 1, "Bob", 5, 1, 0);
  cJSON_Delete(board);
  cJSON *h = fx_history(&fx, "u-ada", 10);
  cr_assert_eq(history_total(h), 1);
  expect_game(h, 0,
              (seen_t){"room-1", 1000, 10, 5, "u-bob", "Bob", true, "u-ada",
                       "time", "Ada"});
  cJSON_Delete(h);
  /* Once more, later, on its own. */
  fx_record(&fx, a);
  cr_assert_eq(fx.probe->acks_len, 3u);
  s = fx_stats(&fx);
  cr_assert_eq(s.recorded, 1u);
  cr_assert_eq(s.duplicates, 2u);
  fx_close(&fx);
}

/* ---- Reads --------------------------------------------------------------- */

BOTH_BACKENDS(leaderboard_orders_by_score_then_name_and_honours_limit) {
  fx_t fx;
  fx_open(&fx);
  /* Ids sort opposite to names, so a tie broken by id would show. */
  fx_record(&fx, fx_result(&fx, "r1", 10, "u-9", "Ada", 50, "u-1", "Zed", 50,
                           "draw", "time"));
  fx_record(&fx, fx_result(&fx, "r2", 20, "u-5", "Max", 70, "u-7", "Eve", 10,
                           "u-5", "time"));
  fx_record(&fx, fx_result(&fx, "r3", 30, "u-3", "Bea", 50, "u-2", "Cy", 49,
                           "u-3", "time"));
  cJSON *board = fx_leaderboard(&fx, 100);
  cr_assert_eq(cJSON_GetArraySize(board), 6);
  expect_row(board, 0, "Max", 70, 1, 1);
  expect_row(board, 1, "Ada", 50, 1, 0);
  expect_row(board, 2, "Bea", 50, 1, 1);
  expect_row(board, 3, "Zed", 50, 1, 0);
  expect_row(board, 4, "Cy", 49, 1, 0);
  expect_row(board, 5, "Eve", 10, 1, 0);
  cJSON_Delete(board);
  static const uint32_t limits[] = {1, 2, 5, 6, 7};
  for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
    board = fx_leaderboard(&fx, limits[i]);
    int want = limits[i] < 6 ? (int)limits[i] : 6;
    cr_assert_eq(cJSON_GetArraySize(board), want, "limit %u", limits[i]);
    expect_row(board, 0, "Max", 70, 1, 1);
    if (want >= 2)
      expect_row(board, 1, "Ada", 50, 1, 0);
    cJSON_Delete(board);
  }
  fx_close(&fx);
}

BOTH_BACKENDS(leaderboard_of_an_empty_store_is_an_empty_array) {
  fx_t fx;
  fx_open(&fx);
  cJSON *board = fx_leaderboard(&fx, 10);
  cr_assert_eq(cJSON_GetArraySize(board), 0);
  cJSON_Delete(board);
  cJSON *h = fx_history(&fx, "u-nobody", 10);
  cr_assert_eq(history_total(h), 0);
  cr_assert_eq(history_len(h), 0);
  cJSON_Delete(h);
  fx_close(&fx);
}

BOTH_BACKENDS(history_is_newest_first_from_each_players_perspective) {
  fx_t fx;
  fx_open(&fx);
  /* Recorded out of time order; Ada is p1, then p2, then p1. */
  fx_record(&fx, fx_result(&fx, "room-b", 2000, "u-bob", "Bob", 30, "u-ada",
                           "Ada", 45, "u-ada", "time"));
  fx_record(&fx, fx_result(&fx, "room-a", 1000, "u-ada", "Ada", 12, "u-bob",
                           "Bob", 20, "u-bob", "time"));
  fx_record(&fx, fx_result(&fx, "room-c", 3000, "u-ada", "Ada", 8, "u-cy", "Cy",
                           2, "u-cy", "quit"));
  fx_record(&fx, fx_result(&fx, "room-z", 4000, "u-bob", "Bob", 1, "u-cy", "Cy",
                           2, "u-cy", "time"));

  cJSON *h = fx_history(&fx, "u-ada", 10);
  cr_assert_eq(history_total(h), 3);
  cr_assert_eq(history_len(h), 3);
  expect_game(h, 0,
              (seen_t){"room-c", 3000, 8, 2, "u-cy", "Cy", false, "u-cy",
                       "quit", "Ada"});
  expect_game(h, 1,
              (seen_t){"room-b", 2000, 45, 30, "u-bob", "Bob", true, "u-ada",
                       "time", "Ada"});
  expect_game(h, 2,
              (seen_t){"room-a", 1000, 12, 20, "u-bob", "Bob", false, "u-bob",
                       "time", "Ada"});
  cJSON_Delete(h);

  h = fx_history(&fx, "u-bob", 10);
  cr_assert_eq(history_total(h), 3);
  expect_game(h, 0,
              (seen_t){"room-z", 4000, 1, 2, "u-cy", "Cy", false, "u-cy",
                       "time", "Bob"});
  expect_game(h, 1,
              (seen_t){"room-b", 2000, 30, 45, "u-ada", "Ada", false, "u-ada",
                       "time", "Bob"});
  expect_game(h, 2,
              (seen_t){"room-a", 1000, 20, 12, "u-ada", "Ada", true, "u-bob",
                       "time", "Bob"});
  cJSON_Delete(h);

  /* The limit cuts the list, not the count. */
  h = fx_history(&fx, "u-ada", 2);
  cr_assert_eq(history_total(h), 3);
  cr_assert_eq(history_len(h), 2);
  expect_str(history_game(h, 0), "gameId", "room-c");
  expect_str(history_game(h, 1), "gameId", "room-b");
  cJSON_Delete(h);
  h = fx_history(&fx, "u-ada", 1);
  cr_assert_eq(history_total(h), 3);
  cr_assert_eq(history_len(h), 1);
  cJSON_Delete(h);
  fx_close(&fx);
}

BOTH_BACKENDS(history_breaks_timestamp_ties_by_recording_order) {
  fx_t fx;
  fx_open(&fx);
  fx_record(&fx, fx_result(&fx, "first", 500, "u-ada", "Ada", 1, "u-bob", "Bob",
                           0, "u-ada", "time"));
  fx_record(&fx, fx_result(&fx, "second", 500, "u-ada", "Ada", 2, "u-bob",
                           "Bob", 0, "u-ada", "time"));
  cJSON *h = fx_history(&fx, "u-ada", 10);
  expect_str(history_game(h, 0), "gameId", "second");
  expect_str(history_game(h, 1), "gameId", "first");
  cJSON_Delete(h);
  fx_close(&fx);
}

BOTH_BACKENDS(names_are_stored_and_returned_byte_for_byte) {
  fx_t fx;
  fx_open(&fx);
  const char *odd = "<script>\"'\\ \xc3\xa9\xf0\x9f\x8d\xaa";
  fx_record(&fx,
            fx_result(&fx, "room-n", 10, "u-ada", odd, 3, "u-bob",
                      "Robert'); DROP TABLE players;--", 1, "u-ada", "time"));
  cJSON *board = fx_leaderboard(&fx, 10);
  expect_row(board, 0, odd, 3, 1, 1);
  expect_row(board, 1, "Robert'); DROP TABLE players;--", 1, 1, 0);
  cJSON_Delete(board);
  cJSON *h = fx_history(&fx, "u-bob", 10);
  expect_str(history_game(h, 0), "opponentName", odd);
  expect_str(history_game(h, 0), "playerName",
             "Robert'); DROP TABLE players;--");
  cJSON_Delete(h);
  h = fx_history(&fx, "u-ada", 10);
  expect_str(history_game(h, 0), "playerName", odd);
  expect_str(history_game(h, 0), "opponentName",
             "Robert'); DROP TABLE players;--");
  cJSON_Delete(h);
  fx_close(&fx);
}

/* ---- Faults: Guarantees (1) and (4) -------------------------------------- */

typedef struct fault_case {
  int code;
  uint32_t failures;
} fault_case_t;

/* Fail the first `failures` record attempts with `code`; the result must be
 * committed once, acknowledged once, after 10 + 20 + 40 + ... ms. */
static void check_record_survives(int code, uint32_t failures) {
  fx_t fx;
  fx_open(&fx);
  fx.faults.code = code;
  fx.faults.fail_next[GAME_STORE_OP_RECORD] = failures;
  uint32_t a = fx_result(&fx, "room-f", 1000, "u-ada", "Ada", 9, "u-bob", "Bob",
                         4, "u-ada", "time");
  rt_time_ns backoff = 0, step = 10 * MS;
  for (uint32_t i = 0; i < failures; i++, step *= 2)
    backoff += step < 2000 * MS ? step : 2000 * MS;

  fx_send(&fx, a, 1, 7);
  /* Up to just before the last retry: not committed, not acknowledged. */
  if (failures > 0) {
    fx_run_until(&fx, backoff - 1);
    cr_assert_eq(fx.probe->acks_len, 0u, "no ack before the commit");
    game_store_stats_t s = fx_stats(&fx);
    cr_assert_eq(s.recorded, 0u);
    cr_assert_eq(s.pending, 1u);
    /* A read meanwhile sees nothing and is not held back. */
    uint64_t id = fx_ask(&fx, TAG_LEADERBOARD, NULL, 10);
    fx_run_until(&fx, backoff - 1);
    const reply_t *r = fx_reply(&fx, id);
    cr_assert_eq(r->status, 200);
    cr_assert_str_eq(r->body, "[]");
  }
  fx_run(&fx);
  cr_assert_eq(fx.probe->acks_len, 1u, "acknowledged once");
  cr_assert_eq(fx.probe->acks[0], 7u + a);
  cr_assert_geq(fx.probe->acks_at[0], backoff,
                "ack at %" PRId64 " ns, backoff %" PRId64 " ns",
                fx.probe->acks_at[0], backoff);
  cr_assert_lt(fx.probe->acks_at[0], backoff + 1 * MS,
               "and right after it: %" PRId64, fx.probe->acks_at[0]);
  cr_assert_eq(fx.faults.calls[GAME_STORE_OP_RECORD], failures + 1);

  game_store_stats_t s = fx_stats(&fx);
  cr_assert_eq(s.recorded, 1u, "committed exactly once");
  cr_assert_eq(s.duplicates, 0u);
  cr_assert_eq(s.pending, 0u);
  cr_assert_eq(s.retries, failures);
  cr_assert_eq(s.errors_busy, code == SQLITE_BUSY ? failures : 0u);
  cr_assert_eq(s.errors_full, code == SQLITE_FULL ? failures : 0u);
  cr_assert_eq(s.errors_io, (code & 0xff) == SQLITE_IOERR ? failures : 0u);
  cr_assert_eq(s.errors_other, 0u);
  cr_assert_eq(s.reads_failed, 0u);

  cJSON *board = fx_leaderboard(&fx, 10);
  cr_assert_eq(cJSON_GetArraySize(board), 2);
  expect_row(board, 0, "Ada", 9, 1, 1);
  expect_row(board, 1, "Bob", 4, 1, 0);
  cJSON_Delete(board);
  cJSON *h = fx_history(&fx, "u-bob", 10);
  cr_assert_eq(history_total(h), 1);
  cJSON_Delete(h);
  fx_close(&fx);
}

Test(game_store, busy_full_and_io_errors_are_retried_until_committed_once) {
  static const fault_case_t cases[] = {
      {SQLITE_BUSY, 0},  {SQLITE_BUSY, 1},  {SQLITE_BUSY, 3},
      {SQLITE_FULL, 2},  {SQLITE_IOERR, 4}, {SQLITE_IOERR_WRITE, 2},
      {SQLITE_BUSY, 10}, /* past retry_max: 10..1280 ms then 2 s */
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
    check_record_survives(cases[i].code, cases[i].failures);
}

Test(game_store, results_queued_during_an_outage_commit_in_order) {
  fx_t fx;
  fx_open(&fx);
  fx.faults.code = SQLITE_IOERR;
  fx.faults.fail_next[GAME_STORE_OP_RECORD] = 3;
  uint32_t a = fx_result(&fx, "room-a", 100, "u-ada", "Ada", 1, "u-bob", "Bob",
                         0, "u-ada", "time");
  uint32_t b = fx_result(&fx, "room-b", 200, "u-ada", "Ada", 2, "u-bob", "Bob",
                         0, "u-ada", "time");
  uint32_t c = fx_result(&fx, "room-c", 300, "u-ada", "Ada", 4, "u-bob", "Bob",
                         0, "u-ada", "time");
  fx_send(&fx, a, 1, 0);
  fx_run_until(&fx, 15 * MS); /* a failed twice, waits for the third try */
  cr_assert_eq(fx_stats(&fx).retries, 2u);
  fx_send(&fx, b, 1, 0);
  fx_send(&fx, a, 1, 0); /* a Room resending while the first is pending */
  fx_send(&fx, c, 1, 0);
  fx_run_until(&fx, 20 * MS);
  cr_assert_eq(fx.probe->acks_len, 0u, "nothing jumps the queue");
  cr_assert_eq(fx_stats(&fx).pending, 3u, "the resend joined a's wait");
  fx_run(&fx);
  cr_assert_eq(fx.probe->acks_len, 3u);
  cr_assert_eq(fx.probe->acks[0], a);
  cr_assert_eq(fx.probe->acks[1], b);
  cr_assert_eq(fx.probe->acks[2], c);
  for (uint32_t i = 0; i < 3; i++)
    cr_assert_geq(fx.probe->acks_at[i], 70 * MS);
  game_store_stats_t s = fx_stats(&fx);
  cr_assert_eq(s.recorded, 3u);
  cr_assert_eq(s.duplicates, 0u);
  cr_assert_eq(s.resends_merged, 1u);
  cr_assert_eq(s.retries, 3u);
  cr_assert_eq(s.errors_io, 3u);
  cJSON *board = fx_leaderboard(&fx, 10);
  expect_row(board, 0, "Ada", 7, 3, 3);
  cJSON_Delete(board);
  fx_close(&fx);
}

Test(game_store, reads_under_fault_answer_503_at_once) {
  static const int codes[] = {SQLITE_BUSY, SQLITE_FULL, SQLITE_IOERR};
  for (size_t i = 0; i < 3; i++) {
    fx_t fx;
    fx_open(&fx);
    fx_record(&fx, fx_result(&fx, "room-1", 1000, "u-ada", "Ada", 9, "u-bob",
                             "Bob", 4, "u-ada", "time"));
    fx.faults.code = codes[i];
    fx.faults.fail_next[GAME_STORE_OP_LEADERBOARD] = 1;
    fx.faults.fail_next[GAME_STORE_OP_HISTORY] = 1;
    rt_time_ns t0 = rt_now(fx.w);
    uint64_t lb = fx_ask(&fx, TAG_LEADERBOARD, NULL, 10);
    fx_run(&fx);
    uint64_t hi = fx_ask(&fx, TAG_HISTORY, "u-ada", 10);
    fx_run(&fx);
    const uint64_t ids[] = {lb, hi};
    for (size_t k = 0; k < 2; k++) {
      const reply_t *r = fx_reply(&fx, ids[k]);
      cr_assert_eq(r->status, 503, "code %d: status %d", codes[i], r->status);
      cr_assert_eq(r->at, t0, "no waiting: answered at the same instant");
      cJSON *j = cJSON_ParseWithLength(r->body, r->len);
      cr_assert(cJSON_IsObject(j), "JSON error body: %s", r->body);
      cr_assert(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(j, "error")));
      cJSON_Delete(j);
    }
    game_store_stats_t s = fx_stats(&fx);
    cr_assert_eq(s.reads_failed, 2u);
    cr_assert_eq(s.errors_busy, codes[i] == SQLITE_BUSY ? 2u : 0u);
    cr_assert_eq(s.errors_full, codes[i] == SQLITE_FULL ? 2u : 0u);
    cr_assert_eq(s.errors_io, codes[i] == SQLITE_IOERR ? 2u : 0u);
    cr_assert_eq(s.retries, 0u, "reads are not retried");
    cr_assert_eq(s.pending, 0u);
    /* The fault passed: the same reads succeed. */
    cJSON *board = fx_leaderboard(&fx, 10);
    cr_assert_eq(cJSON_GetArraySize(board), 2);
    cJSON_Delete(board);
    cJSON *h = fx_history(&fx, "u-ada", 10);
    cr_assert_eq(history_total(h), 1);
    cJSON_Delete(h);
    cr_assert_eq(fx_stats(&fx).reads_failed, 2u);
    fx_close(&fx);
  }
}

Test(game_store, pending_holds_4096_results_and_refuses_the_next) {
  fx_t fx;
  fx_open(&fx);
  fx.faults.code = SQLITE_BUSY;
  fx.faults.fail_next[GAME_STORE_OP_RECORD] = UINT32_MAX; /* an outage */
  uint32_t total = GAME_STORE_PENDING_MAX + 1;
  for (uint32_t i = 0; i < total; i++) {
    char room[32];
    snprintf(room, sizeof(room), "room-%05u", i);
    fx_result(&fx, room, 1000 + i, "u-ada", "Ada", 1, "u-bob", "Bob", 0,
              "u-ada", "time");
  }
  /* In slices the Store's mailbox takes, running the world in between. */
  for (uint32_t first = 0; first < total; first += 1000) {
    uint32_t n = total - first < 1000 ? total - first : 1000;
    fx_send(&fx, first, n, 0);
    fx_run_until(&fx, rt_now(fx.w) + 1 * MS);
  }
  cr_assert_eq(fx.probe->sends_refused, 0u);
  game_store_stats_t s = fx_stats(&fx);
  cr_assert_eq(s.pending, GAME_STORE_PENDING_MAX, "at the limit");
  cr_assert_eq(fx.probe->acks_len, 0u);
  /* The outage ends. */
  fx.faults.fail_next[GAME_STORE_OP_RECORD] = 0;
  fx_run(&fx);
  s = fx_stats(&fx);
  cr_assert_eq(s.pending, 0u);
  cr_assert_eq(s.recorded, GAME_STORE_PENDING_MAX);
  cr_assert_eq(fx.probe->acks_len, GAME_STORE_PENDING_MAX,
               "the one over the limit is not acknowledged");
  for (uint32_t i = 0; i < GAME_STORE_PENDING_MAX; i++)
    cr_assert_eq(fx.probe->acks[i], i, "in order");
  /* Its Room asks again, and now it is stored. */
  fx_record(&fx, GAME_STORE_PENDING_MAX);
  cr_assert_eq(fx.probe->acks_len, GAME_STORE_PENDING_MAX + 1);
  cr_assert_eq(fx_stats(&fx).recorded, GAME_STORE_PENDING_MAX + 1);
  fx_close(&fx);
}

/* The same seed and inputs, including faults, give the same run. */
static uint64_t faulty_run_hash(void) {
  fx_t fx;
  fx_open(&fx);
  fx.faults.code = SQLITE_BUSY;
  fx.faults.fail_next[GAME_STORE_OP_RECORD] = 5;
  fx.faults.fail_next[GAME_STORE_OP_LEADERBOARD] = 1;
  for (uint32_t i = 0; i < 8; i++) {
    char room[32];
    snprintf(room, sizeof(room), "room-%u", i % 6);
    fx_send(&fx,
            fx_result(&fx, room, 100 * i, "u-ada", "Ada", (int32_t)i, "u-bob",
                      "Bob", 3, i % 2 ? "u-bob" : "draw", "time"),
            1, 0);
    fx_ask(&fx, TAG_LEADERBOARD, NULL, 10);
    fx_run_until(&fx, rt_now(fx.w) + 7 * MS);
  }
  fx_run(&fx);
  cr_assert_eq(fx.probe->acks_len, 8u);
  uint64_t h = rt_world_hash(fx.w);
  fx_close(&fx);
  return h;
}

Test(game_store, a_run_with_faults_replays_to_the_same_hash) {
  uint64_t a = faulty_run_hash(), b = faulty_run_hash();
  cr_assert_eq(a, b, "%016" PRIx64 " != %016" PRIx64 " (seed %u)", a, b, SEED);
}

/* ---- Schema and migration ------------------------------------------------ */

typedef struct tmpdb {
  char dir[64];
  char path[96];
} tmpdb_t;

static void tmpdb_make(tmpdb_t *t) {
  snprintf(t->dir, sizeof(t->dir), "/tmp/oc_test_store_XXXXXX");
  cr_assert_not_null(mkdtemp(t->dir));
  snprintf(t->path, sizeof(t->path), "%s/store.db", t->dir);
}

static void tmpdb_remove(const tmpdb_t *t) {
  static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
  char p[128];
  for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
    snprintf(p, sizeof(p), "%s%s", t->path, suffixes[i]);
    unlink(p);
  }
  cr_assert_eq(rmdir(t->dir), 0, "%s emptied", t->dir);
}

static int db_user_version(const char *path) {
  sqlite3 *db = NULL;
  cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL),
               SQLITE_OK);
  sqlite3_stmt *s = NULL;
  cr_assert_eq(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, NULL),
               SQLITE_OK);
  cr_assert_eq(sqlite3_step(s), SQLITE_ROW);
  int v = sqlite3_column_int(s, 0);
  sqlite3_finalize(s);
  sqlite3_close(db);
  return v;
}

static int db_count(const char *path, const char *sql) {
  sqlite3 *db = NULL;
  cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL),
               SQLITE_OK);
  sqlite3_stmt *s = NULL;
  cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK, "%s", sql);
  cr_assert_eq(sqlite3_step(s), SQLITE_ROW);
  int n = sqlite3_column_int(s, 0);
  sqlite3_finalize(s);
  sqlite3_close(db);
  return n;
}

Test(game_store, a_file_database_keeps_its_rows_across_restarts) {
  tmpdb_t t;
  tmpdb_make(&t);
  game_store_config_t cfg = {.path = t.path};
  fx_t fx;
  fx_open_cfg(&fx, &cfg);
  fx_record(&fx, fx_result(&fx, "room-1", 1000, "u-ada", "Ada", 10, "u-bob",
                           "Bob", 5, "u-ada", "time"));
  cr_assert_eq(fx.probe->acks_len, 1u);
  fx_close(&fx);
  cr_assert_eq(db_user_version(t.path), GAME_STORE_SCHEMA_VERSION);

  /* A restart: the same file, a new world. */
  fx_open_cfg(&fx, &cfg);
  cJSON *board = fx_leaderboard(&fx, 10);
  cr_assert_eq(cJSON_GetArraySize(board), 2);
  expect_row(board, 0, "Ada", 10, 1, 1);
  cJSON_Delete(board);
  /* The unique room id survived too: a late retry is still a duplicate. */
  fx_record(&fx, fx_result(&fx, "room-1", 1000, "u-ada", "Ada", 10, "u-bob",
                           "Bob", 5, "u-ada", "time"));
  cr_assert_eq(fx.probe->acks_len, 1u);
  cr_assert_eq(fx_stats(&fx).duplicates, 1u);
  fx_record(&fx, fx_result(&fx, "room-2", 2000, "u-bob", "Bob", 8, "u-ada",
                           "Ada", 1, "u-bob", "time"));
  cJSON *h = fx_history(&fx, "u-ada", 10);
  cr_assert_eq(history_total(h), 2);
  expect_str(history_game(h, 0), "gameId", "room-2");
  expect_str(history_game(h, 1), "gameId", "room-1");
  cJSON_Delete(h);
  fx_close(&fx);

  cr_assert_eq(db_user_version(t.path), GAME_STORE_SCHEMA_VERSION);
  cr_assert_eq(db_count(t.path, "SELECT COUNT(*) FROM games"), 2);
  cr_assert_eq(db_count(t.path, "SELECT COUNT(*) FROM players"), 2);
  tmpdb_remove(&t);
}

Test(game_store,
     a_database_from_a_newer_schema_is_refused_and_keeps_its_version) {
  /* A newer server's database: our tables (so only the version can refuse
   * it), a table of its own, a row, and user_version 99. */
  tmpdb_t t;
  tmpdb_make(&t);
  game_store_config_t cfg = {.path = t.path};
  fx_t fx;
  fx_open_cfg(&fx, &cfg);
  fx_record(&fx, fx_result(&fx, "room-1", 1000, "u-ada", "Ada", 10, "u-bob",
                           "Bob", 5, "u-ada", "time"));
  fx_close(&fx);
  sqlite3 *db = NULL;
  cr_assert_eq(sqlite3_open(t.path, &db), SQLITE_OK);
  cr_assert_eq(sqlite3_exec(db,
                            "CREATE TABLE future (x INTEGER);"
                            "PRAGMA user_version = 99;",
                            NULL, NULL, NULL),
               SQLITE_OK);
  sqlite3_close(db);

  sim_config_t sc = {.seed = SEED, .log_level = RT_LOG_OFF};
  sim_world_t *sw = sim_world_create(&sc);
  cr_assert_not_null(sw);
  game_store_t *st = NULL;
  int err = game_store_start(sim_world_rt(sw), &cfg, &st);
  cr_assert_lt(err, 0, "refused: %d", err);
  cr_assert_null(st, "no store handed out");
  rt_world_stats_t ws;
  rt_world_stats(sim_world_rt(sw), &ws);
  cr_assert_eq(ws.actors_spawned, 0u, "no Store actor");
  sim_world_destroy(sw);

  cr_assert_eq(db_user_version(t.path), 99, "left at its version");
  cr_assert_eq(db_count(t.path, "SELECT COUNT(*) FROM games"), 1);
  cr_assert_eq(db_count(t.path, "SELECT COUNT(*) FROM future"), 0);
  tmpdb_remove(&t);
}

Test(game_store, an_empty_file_is_refused_at_version_99_too) {
  /* A file with no tables at all but a newer version: still refused. */
  tmpdb_t t;
  tmpdb_make(&t);
  sqlite3 *db = NULL;
  cr_assert_eq(sqlite3_open(t.path, &db), SQLITE_OK);
  cr_assert_eq(sqlite3_exec(db, "PRAGMA user_version = 99;", NULL, NULL, NULL),
               SQLITE_OK);
  sqlite3_close(db);
  sim_config_t sc = {.seed = SEED, .log_level = RT_LOG_OFF};
  sim_world_t *sw = sim_world_create(&sc);
  game_store_config_t cfg = {.path = t.path};
  game_store_t *st = NULL;
  cr_assert_lt(game_store_start(sim_world_rt(sw), &cfg, &st), 0);
  cr_assert_null(st);
  sim_world_destroy(sw);
  cr_assert_eq(db_user_version(t.path), 99);
  cr_assert_eq(db_count(t.path, "SELECT COUNT(*) FROM sqlite_master"
                                " WHERE name IN ('games', 'players')"),
               0, "no tables of ours added");
  tmpdb_remove(&t);
}

Test(game_store, a_database_at_the_current_version_is_opened_as_is) {
  /* Version 1 already: no second CREATE TABLE (which would fail). */
  tmpdb_t t;
  tmpdb_make(&t);
  game_store_config_t cfg = {.path = t.path};
  fx_t fx;
  fx_open_cfg(&fx, &cfg);
  fx_close(&fx);
  fx_open_cfg(&fx, &cfg);
  fx_close(&fx);
  fx_open_cfg(&fx, &cfg);
  cJSON *board = fx_leaderboard(&fx, 10);
  cr_assert_eq(cJSON_GetArraySize(board), 0);
  cJSON_Delete(board);
  fx_close(&fx);
  cr_assert_eq(db_user_version(t.path), 1);
  tmpdb_remove(&t);
}

/* ---- Groups: results waiting together commit together ------------------- */

BOTH_BACKENDS(results_sent_in_one_turn_commit_in_one_transaction) {
  fx_t fx;
  fx_open(&fx);
  char room[32], id[16];
  for (int i = 0; i < 40; i++) {
    snprintf(room, sizeof(room), "room-g%02d", i);
    snprintf(id, sizeof(id), "u-%02d", i % 7);
    fx_result(&fx, room, 1000 + i, id, "P", i, "u-z", "Z", 1, id, "time");
  }
  fx_send(&fx, 0, 40, 100);
  fx_run(&fx);
  cr_assert_eq(fx.probe->acks_len, 40u);
  for (uint32_t i = 0; i < 40; i++)
    cr_assert_eq(fx.probe->acks[i], 100u + i, "acknowledged in order");
  game_store_stats_t s = fx_stats(&fx);
  cr_assert_eq(s.recorded, 40u);
  cr_assert_eq(s.commits, 1u, "one transaction for the group");
  uint64_t latencies = 0;
  for (int i = 0; i < GAME_STORE_LATENCY_BUCKETS; i++)
    latencies += s.latency_count[i];
  cr_assert_eq(latencies, 1u, "one commit latency observed");
  cr_assert_eq(game_store_count_games(fx.st), 40);
  cJSON *board = fx_leaderboard(&fx, 10);
  /* u-04 played rooms 4, 11, ..., 39 and won each: 129 points. */
  expect_row(board, 0, "P", 129, 6, 6);
  cJSON_Delete(board);
  fx_close(&fx);
}

/* ---- PostgreSQL away: a server of the test's own ------------------------ */

static void fx_run_for(fx_t *fx, rt_time_ns d) {
  cr_assert_not_null(fx->live);
  net_live_run_for(fx->live, d);
}

Test(game_store_pg, down_then_up_loses_nothing_and_stores_each_game_once) {
  pg_tmp_t own = {0};
  cr_assert_eq(pg_tmp_start(&own), 0, "a PostgreSQL of this test's own");
  fx_t fx;
  game_store_config_t cfg = {
      .path = own.uri, .retry_min = 10 * MS, .retry_max = 200 * MS};
  fx_open_cfg(&fx, &cfg);
  char room[32];
  for (int i = 0; i < 200; i++) {
    snprintf(room, sizeof(room), "room-d%03d", i);
    fx_result(&fx, room, 2000 + i, "u-ada", "Ada", 3, "u-bob", "Bob", 1,
              "u-ada", "time");
  }
  fx_send(&fx, 0, 100, 0);
  fx_run(&fx);
  cr_assert_eq(fx.probe->acks_len, 100u);

  /* Down: results wait, reads fail fast with 503. */
  cr_assert_eq(pg_tmp_down(&own), 0);
  fx_send(&fx, 100, 60, 0);
  fx_run_for(&fx, 500 * MS);
  uint64_t id = fx_ask(&fx, TAG_LEADERBOARD, NULL, 10);
  fx_run_for(&fx, 50 * MS);
  const reply_t *r = fx_reply(&fx, id);
  cr_assert_eq(r->status, 503, "a read while the database is down: %s",
               r->body);
  game_store_stats_t s = fx_stats(&fx);
  cr_assert_eq(fx.probe->acks_len, 100u, "nothing acknowledged while down");
  cr_assert_eq(s.pending, 60u);
  cr_assert_geq(s.errors_unavailable, 1u);

  /* Up again: the 60 commit, then 40 more, each game once. */
  cr_assert_eq(pg_tmp_up(&own), 0);
  fx_send(&fx, 160, 40, 0);
  fx_run(&fx);
  cr_assert_eq(fx.probe->acks_len, 200u, "every result acknowledged");
  for (uint32_t i = 0; i < 200; i++)
    cr_assert_eq(fx.probe->acks[i], i, "in order");
  s = fx_stats(&fx);
  cr_assert_eq(s.recorded + s.duplicates, 200u);
  cr_assert_geq(s.reconnects, 1u);
  cr_assert_eq(game_store_count_games(fx.st), 200, "each game once");
  cJSON *board = fx_leaderboard(&fx, 10);
  expect_row(board, 0, "Ada", 600, 200, 200);
  expect_row(board, 1, "Bob", 200, 200, 0);
  cJSON_Delete(board);
  fx_close(&fx);
  pg_tmp_stop(&own);
}

/* A Room resends its result every few seconds until acknowledged. Through
 * an outage those resends join the one already waiting instead of queueing
 * (and later committing) again. */
Test(game_store, resends_of_a_waiting_result_are_merged_into_it) {
  fx_t fx;
  fx_open(&fx);
  fx.faults.code = SQLITE_BUSY;
  fx.faults.fail_next[GAME_STORE_OP_RECORD] = 6; /* 10+20+...+320 ms */
  uint32_t a = fx_result(&fx, "room-m", 1000, "u-ada", "Ada", 3, "u-bob", "Bob",
                         2, "u-ada", "time");
  fx_send(&fx, a, 1, 50);
  fx_run_until(&fx, 100 * MS);
  fx_send(&fx, a, 1, 50); /* the same key: a resend */
  fx_run_until(&fx, 200 * MS);
  fx_send(&fx, a, 1, 50);
  fx_send(&fx, a, 1, 51); /* another key: a new request, kept */
  fx_run_until(&fx, 300 * MS);
  game_store_stats_t s = fx_stats(&fx);
  cr_assert_eq(s.pending, 2u, "the resends joined the waiting result");
  cr_assert_eq(s.resends_merged, 2u);
  fx_run(&fx);
  cr_assert_eq(fx.probe->acks_len, 2u);
  cr_assert_eq(fx.probe->acks[0], 50u + a);
  cr_assert_eq(fx.probe->acks[1], 51u + a);
  s = fx_stats(&fx);
  cr_assert_eq(s.recorded, 1u);
  cr_assert_eq(s.duplicates, 1u);
  fx_close(&fx);
}
