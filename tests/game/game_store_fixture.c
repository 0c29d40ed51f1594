/* game_store_fixture.c: the fixture the game_store tests share
 * (game_store_fixture.h): the probe actor, the fault table, the Store on
 * either backend, and reading and checking its answers. */
#include "game_store_fixture.h"

#include "game_int.h"
#include "game_store.h"
#include "net_live.h"
#include "pg_tmp.h"
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

#define PROBE_BODY_MAX (64u * 1024)

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

/* ---- The probe ----------------------------------------------------------- */

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

/* Set by the BOTH_BACKENDS wrapper that runs the test body. */
bool use_pg;

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

void fx_open_cfg(fx_t *fx, const game_store_config_t *cfg) {
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
void fx_open(fx_t *fx) {
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

void fx_close(fx_t *fx) {
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

void fx_run(fx_t *fx) {
  if (fx->live != NULL) {
    fx_run_live(fx);
    return;
  }
  cr_assert_eq(sim_world_run(fx->sw, RT_TIME_NEVER, TURNS_MAX), SIM_RUN_IDLE,
               "the world goes idle (seed %u)", SEED);
}

game_store_stats_t fx_stats(const fx_t *fx) {
  game_store_stats_t s;
  game_store_get_stats(fx->st, &s);
  return s;
}

/* A result; the next slot of the probe's table. Returns its index. */
uint32_t fx_result(fx_t *fx, const char *room, int64_t at_s, const char *p1,
                   const char *p1_name, int32_t s1, const char *p2,
                   const char *p2_name, int32_t s2, const char *winner,
                   const char *reason) {
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
void fx_send(fx_t *fx, uint32_t first, uint32_t count, uint64_t key_base) {
  send_t s = {.first = first, .count = count, .key_base = key_base};
  rt_msg_t m = RT_MSG_OF(TAG_SEND, &s);
  cr_assert_eq(rt_send(fx->w, fx->probe_id, &m), RT_PUSH_QUEUED);
}

/* Record one result (key = index) and run to idle. */
void fx_record(fx_t *fx, uint32_t index) {
  fx_send(fx, index, 1, 0);
  fx_run(fx);
}

/* Issue a query through the probe; returns its call id. */
uint64_t fx_ask(fx_t *fx, uint16_t tag, const char *subject, uint32_t limit) {
  query_t q = {.call_id = ++fx->next_call, .limit = limit};
  if (subject != NULL)
    snprintf(fx->probe->subject, sizeof(fx->probe->subject), "%s", subject);
  rt_msg_t m = RT_MSG_OF(tag, &q);
  cr_assert_eq(rt_send(fx->w, fx->probe_id, &m), RT_PUSH_QUEUED);
  return q.call_id;
}

const reply_t *fx_reply(const fx_t *fx, uint64_t call_id) {
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

cJSON *fx_leaderboard(fx_t *fx, uint32_t limit) {
  cJSON *j = fx_get(fx, TAG_LEADERBOARD, NULL, limit);
  cr_assert(cJSON_IsArray(j));
  return j;
}

cJSON *fx_history(fx_t *fx, const char *subject, uint32_t limit) {
  cJSON *j = fx_get(fx, TAG_HISTORY, subject, limit);
  cr_assert(cJSON_IsObject(j));
  cr_assert_eq(cJSON_GetArraySize(j), 2, "games and totalCount only");
  cr_assert(cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(j, "games")));
  cr_assert(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(j, "totalCount")));
  return j;
}

int history_total(const cJSON *h) {
  return cJSON_GetObjectItemCaseSensitive(h, "totalCount")->valueint;
}

const cJSON *history_game(const cJSON *h, int i) {
  const cJSON *games = cJSON_GetObjectItemCaseSensitive(h, "games");
  const cJSON *g = cJSON_GetArrayItem(games, i);
  cr_assert_not_null(g, "game %d", i);
  return g;
}

void expect_str(const cJSON *o, const char *key, const char *want) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  cr_assert(cJSON_IsString(v), "\"%s\" is a string", key);
  cr_assert_str_eq(v->valuestring, want, "\"%s\"", key);
}

void expect_num(const cJSON *o, const char *key, double want) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  cr_assert(cJSON_IsNumber(v), "\"%s\" is a number", key);
  cr_assert(v->valuedouble == want, "\"%s\" = %g, want %g", key, v->valuedouble,
            want);
}

void expect_bool(const cJSON *o, const char *key, bool want) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  cr_assert(cJSON_IsBool(v), "\"%s\" is a bool", key);
  cr_assert_eq(cJSON_IsTrue(v) != 0, want, "\"%s\"", key);
}

/* A leaderboard row: exactly name, score, games, wins (never an id). */
void expect_row(const cJSON *board, int i, const char *name, int score,
                int games, int wins) {
  const cJSON *e = cJSON_GetArrayItem(board, i);
  cr_assert_not_null(e, "row %d", i);
  cr_assert_eq(cJSON_GetArraySize(e), 4, "row %d has 4 fields", i);
  expect_str(e, "name", name);
  expect_num(e, "score", score);
  expect_num(e, "games", games);
  expect_num(e, "wins", wins);
}
