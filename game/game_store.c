#include "game_store.h"

#include "rt_tap.h"

#include "game_int.h"
#include "rt_assert.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STORE_MAILBOX_CAP 4096u
#define RECORDS_PER_TURN 32
#define JSON_REPLY_MAX (256u * 1024)

typedef struct pending {
  game_result_t result;
  rt_actor_id_t requester;
  uint64_t key;
} pending_t;

struct game_store {
  rt_world_t *world;
  game_store_config_t cfg;
  sqlite3 *db;
  sqlite3_stmt *insert_game;
  sqlite3_stmt *upsert_player;
  sqlite3_stmt *leaderboard;
  sqlite3_stmt *history;
  sqlite3_stmt *history_count;
  sqlite3_stmt *find_game; /* checkers only */
  sqlite3_stmt *count_games;
  rt_actor_id_t actor;
  pending_t *pending; /* ring of GAME_STORE_PENDING_MAX */
  uint32_t pending_head, pending_count;
  uint32_t attempt; /* failures in a row of the head record */
  uint64_t retry_timer;
  game_store_stats_t stats;
};

/* ---- Schema -------------------------------------------------------------- */

static const char schema_v1[] =
    "CREATE TABLE games ("
    "  id INTEGER PRIMARY KEY,"
    "  room_id TEXT NOT NULL UNIQUE,"
    "  finished_at INTEGER NOT NULL,"
    "  p1_id TEXT NOT NULL, p1_name TEXT NOT NULL, p1_score INTEGER NOT NULL,"
    "  p2_id TEXT NOT NULL, p2_name TEXT NOT NULL, p2_score INTEGER NOT NULL,"
    "  winner TEXT NOT NULL,"
    "  reason TEXT NOT NULL);"
    "CREATE INDEX games_p1 ON games(p1_id, finished_at);"
    "CREATE INDEX games_p2 ON games(p2_id, finished_at);"
    "CREATE TABLE players ("
    "  id TEXT PRIMARY KEY,"
    "  name TEXT NOT NULL,"
    "  score INTEGER NOT NULL,"
    "  games INTEGER NOT NULL,"
    "  wins INTEGER NOT NULL);"
    "CREATE INDEX players_rank ON players(score DESC, name);";

static int exec(sqlite3 *db, const char *sql) {
  return sqlite3_exec(db, sql, NULL, NULL, NULL);
}

static int user_version(sqlite3 *db, int *out) {
  sqlite3_stmt *st;
  int rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL);
  if (rc != SQLITE_OK)
    return rc;
  rc = sqlite3_step(st);
  *out = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
  sqlite3_finalize(st);
  return rc == SQLITE_ROW ? SQLITE_OK : rc;
}

/* Create or upgrade the schema. Each step is one transaction that also sets
 * user_version, so a crash mid-migration leaves the previous version. */
static int migrate(sqlite3 *db) {
  int version = 0;
  int rc = user_version(db, &version);
  if (rc != SQLITE_OK)
    return rc;
  if (version > GAME_STORE_SCHEMA_VERSION)
    return SQLITE_MISMATCH; /* written by a newer server: do not touch it */
  if (version < 1) {
    rc = exec(db, "BEGIN IMMEDIATE");
    if (rc == SQLITE_OK)
      rc = exec(db, schema_v1);
    if (rc == SQLITE_OK)
      rc = exec(db, "PRAGMA user_version = 1");
    if (rc == SQLITE_OK)
      rc = exec(db, "COMMIT");
    if (rc != SQLITE_OK) {
      exec(db, "ROLLBACK");
      return rc;
    }
  }
  return SQLITE_OK;
}

static int prepare_all(game_store_t *st) {
  struct {
    sqlite3_stmt **stmt;
    const char *sql;
  } all[] = {
      {&st->insert_game,
       "INSERT OR IGNORE INTO games (room_id, finished_at, p1_id, p1_name,"
       " p1_score, p2_id, p2_name, p2_score, winner, reason)"
       " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"},
      {&st->upsert_player,
       "INSERT INTO players (id, name, score, games, wins)"
       " VALUES (?1, ?2, ?3, 1, ?4)"
       " ON CONFLICT(id) DO UPDATE SET name = excluded.name,"
       " score = score + excluded.score, games = games + 1,"
       " wins = wins + excluded.wins"},
      {&st->leaderboard, "SELECT name, score, games, wins FROM players"
                         " ORDER BY score DESC, name ASC, id ASC LIMIT ?1"},
      {&st->history,
       "SELECT room_id, finished_at, p1_id, p1_name, p1_score, p2_id, p2_name,"
       " p2_score, winner, reason FROM games WHERE p1_id = ?1 OR p2_id = ?1"
       " ORDER BY finished_at DESC, id DESC LIMIT ?2"},
      {&st->history_count,
       "SELECT COUNT(*) FROM games WHERE p1_id = ?1 OR p2_id = ?1"},
      {&st->find_game,
       "SELECT room_id, finished_at, p1_id, p1_name, p1_score, p2_id, p2_name,"
       " p2_score, winner, reason FROM games WHERE room_id = ?1"},
      {&st->count_games, "SELECT COUNT(*) FROM games"},
  };
  for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
    int rc = sqlite3_prepare_v3(st->db, all[i].sql, -1,
                                SQLITE_PREPARE_PERSISTENT, all[i].stmt, NULL);
    if (rc != SQLITE_OK)
      return rc;
  }
  return SQLITE_OK;
}

/* ---- Errors -------------------------------------------------------------- */

static void count_error(game_store_t *st, int rc) {
  switch (rc & 0xff) {
  case SQLITE_BUSY:
  case SQLITE_LOCKED: st->stats.errors_busy++; break;
  case SQLITE_FULL: st->stats.errors_full++; break;
  case SQLITE_IOERR: st->stats.errors_io++; break;
  default: st->stats.errors_other++; break;
  }
  rt_log(st->world, RT_LOG_WARN, "store.error", "code=%d text=\"%s\"", rc,
         sqlite3_errstr(rc));
}

static int fault(game_store_t *st, game_store_op_t op) {
  return st->cfg.fault != NULL ? st->cfg.fault(st->cfg.fault_ctx, op)
                               : SQLITE_OK;
}

/* ---- Recording: Guarantees (1) to (4) ------------------------------------ */

static int step_done(sqlite3_stmt *s) {
  int rc = sqlite3_step(s);
  sqlite3_reset(s);
  return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int add_player(game_store_t *st, const char *id, const char *name,
                      int32_t score, bool won) {
  sqlite3_stmt *s = st->upsert_player;
  sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
  sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC);
  sqlite3_bind_int(s, 3, score);
  sqlite3_bind_int(s, 4, won ? 1 : 0);
  return step_done(s);
}

/* One transaction for one game. Returns an SQLite code. */
static int record_sql(game_store_t *st, const game_result_t *r) {
  int rc = fault(st, GAME_STORE_OP_RECORD);
  if (rc != SQLITE_OK)
    return rc;
  rc = exec(st->db, "BEGIN IMMEDIATE");
  if (rc != SQLITE_OK)
    return rc;
  sqlite3_stmt *s = st->insert_game;
  sqlite3_bind_text(s, 1, r->room_id, -1, SQLITE_STATIC);
  sqlite3_bind_int64(s, 2, r->finished_at_s);
  sqlite3_bind_text(s, 3, r->p1_id, -1, SQLITE_STATIC);
  sqlite3_bind_text(s, 4, r->p1_name, -1, SQLITE_STATIC);
  sqlite3_bind_int(s, 5, r->p1_score);
  sqlite3_bind_text(s, 6, r->p2_id, -1, SQLITE_STATIC);
  sqlite3_bind_text(s, 7, r->p2_name, -1, SQLITE_STATIC);
  sqlite3_bind_int(s, 8, r->p2_score);
  sqlite3_bind_text(s, 9, r->winner, -1, SQLITE_STATIC);
  sqlite3_bind_text(s, 10, r->reason, -1, SQLITE_STATIC);
  rc = step_done(s);
  bool inserted = rc == SQLITE_OK && sqlite3_changes(st->db) == 1;
  bool duplicate = rc == SQLITE_OK && !inserted; /* Guarantee (2) */
  if (rc == SQLITE_OK && inserted && strcmp(r->reason, "time") == 0) {
    rc = add_player(st, r->p1_id, r->p1_name, r->p1_score,
                    strcmp(r->winner, r->p1_id) == 0);
    if (rc == SQLITE_OK)
      rc = add_player(st, r->p2_id, r->p2_name, r->p2_score,
                      strcmp(r->winner, r->p2_id) == 0);
  }
  if (rc == SQLITE_OK)
    rc = exec(st->db, "COMMIT");
  if (rc != SQLITE_OK) {
    exec(st->db, "ROLLBACK");
    return rc;
  }
  if (inserted)
    st->stats.recorded++;
  if (duplicate)
    st->stats.duplicates++;
  return SQLITE_OK;
}

/* The transaction's outcome is an external (rt_tap.h): a live server
 * records it, a replay takes it from the recording instead of a database. */
static int record_one(game_store_t *st, const game_result_t *r) {
  int64_t rc;
  const uint8_t *data;
  size_t len;
  int got =
      rt_external_take(st->world, GAME_EXT_STORE_RECORD, &rc, &data, &len);
  if (got < 0)
    return SQLITE_IOERR; /* a replay that diverged: it stops anyway */
  if (got == 0) {
    uint64_t recorded = st->stats.recorded, dups = st->stats.duplicates;
    rc = record_sql(st, r);
    uint8_t what = st->stats.recorded != recorded ? 1
                   : st->stats.duplicates != dups ? 2
                                                  : 0;
    rt_external_put(st->world, GAME_EXT_STORE_RECORD, rc, &what,
                    rc == SQLITE_OK ? 1 : 0);
    return (int)rc;
  }
  if (rc == SQLITE_OK && len == 1 && data[0] == 1)
    st->stats.recorded++;
  if (rc == SQLITE_OK && len == 1 && data[0] == 2)
    st->stats.duplicates++;
  return (int)rc;
}

static void reply_recorded(game_store_t *st, rt_actor_id_t to, uint64_t key) {
  rt_msg_t m = RT_MSG_OF(GAME_TAG_STORE_RECORDED, &key);
  /* The Room's mailbox is bounded; a Room that is gone no longer cares. */
  (void)rt_send(st->world, to, &m);
}

static void arm_retry(game_store_t *st) {
  rt_time_ns delay = st->cfg.retry_min;
  for (uint32_t i = 1; i < st->attempt && delay < st->cfg.retry_max; i++)
    delay *= 2;
  if (delay > st->cfg.retry_max)
    delay = st->cfg.retry_max;
  st->stats.retries++;
  if (rt_timer_start(st->world, st->actor, delay, 0, GAME_TAG_TIMER_STORE_RETRY,
                     0, &st->retry_timer) < 0)
    st->retry_timer = 0;
}

/* Commit pending results in order, a bounded number per turn. */
static void drain_pending(game_store_t *st) {
  if (st->retry_timer != 0)
    return; /* backing off */
  for (int i = 0; i < RECORDS_PER_TURN && st->pending_count > 0; i++) {
    pending_t *p = &st->pending[st->pending_head];
    int rc = record_one(st, &p->result);
    if (rc != SQLITE_OK) {
      count_error(st, rc);
      st->attempt++;
      arm_retry(st);
      return;
    }
    st->attempt = 0;
    reply_recorded(st, p->requester, p->key);
    st->pending_head = (st->pending_head + 1) % GAME_STORE_PENDING_MAX;
    st->pending_count--;
  }
  if (st->pending_count > 0) /* more: continue after the others' turns */
    rt_timer_start(st->world, st->actor, 0, 0, GAME_TAG_TIMER_STORE_RETRY, 0,
                   &st->retry_timer);
}

static void on_record(game_store_t *st, const rt_msg_t *msg) {
  if (msg->buf == NULL || msg->buf->len != sizeof(game_result_t))
    return;
  if (st->pending_count == GAME_STORE_PENDING_MAX) {
    /* Full: the Room keeps its result and asks again (it never got an
     * acknowledgement). Said loudly: this only happens in a long outage. */
    rt_log(st->world, RT_LOG_ERROR, "store.pending_full", "pending=%u",
           st->pending_count);
    return;
  }
  pending_t *p = &st->pending[(st->pending_head + st->pending_count) %
                              GAME_STORE_PENDING_MAX];
  memcpy(&p->result, msg->buf->data, sizeof(p->result));
  /* Every string ends inside its field, whoever filled it in. */
  game_result_t *r = &p->result;
  r->room_id[sizeof(r->room_id) - 1] = '\0';
  r->p1_id[sizeof(r->p1_id) - 1] = '\0';
  r->p1_name[sizeof(r->p1_name) - 1] = '\0';
  r->p2_id[sizeof(r->p2_id) - 1] = '\0';
  r->p2_name[sizeof(r->p2_name) - 1] = '\0';
  r->winner[sizeof(r->winner) - 1] = '\0';
  r->reason[sizeof(r->reason) - 1] = '\0';
  p->requester = msg->from;
  RT_MSG_GET(msg, uint64_t, &p->key);
  st->pending_count++;
  drain_pending(st);
}

/* ---- Reads --------------------------------------------------------------- */

static void reply_text(game_store_t *st, const game_query_t *q, int status,
                       const char *text, size_t len) {
  rt_buf_t *buf = NULL;
  if (text != NULL && len <= JSON_REPLY_MAX) {
    buf = rt_buf_copy(text, len);
  } else {
    status = 503;
    buf = rt_buf_copy("{\"error\":\"storage unavailable\"}", 31);
  }
  rt_http_reply_t r = {.call_id = q->call_id, .status = status};
  rt_msg_t m = RT_MSG_OF(RT_TAG_HTTP_REPLY, &r);
  m.buf = buf;
  if (rt_send(st->world, q->reply_to, &m) < 0)
    rt_buf_unref(buf);
}

static void reply_unavailable(game_store_t *st, const game_query_t *q, int rc) {
  count_error(st, rc);
  st->stats.reads_failed++;
  static const char body[] = "{\"error\":\"storage unavailable, try again\"}";
  reply_text(st, q, 503, body, sizeof(body) - 1);
}

/* A read's answer: SQLITE_OK and the JSON text in *out (cJSON_free it), or
 * an SQLite error code. */
typedef int read_fn(game_store_t *st, const game_query_t *q, const char *me,
                    char **out);

/* Print body into *out; takes body. */
static int print_json(cJSON *body, char **out) {
  *out = cJSON_PrintUnformatted(body);
  cJSON_Delete(body);
  return *out != NULL ? SQLITE_OK : SQLITE_NOMEM;
}

static int leaderboard_json(game_store_t *st, const game_query_t *q,
                            const char *me, char **out) {
  (void)me;
  int rc = fault(st, GAME_STORE_OP_LEADERBOARD);
  if (rc != SQLITE_OK)
    return rc;
  cJSON *arr = cJSON_CreateArray();
  sqlite3_stmt *s = st->leaderboard;
  sqlite3_bind_int(s, 1, (int)q->limit);
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "name", (const char *)sqlite3_column_text(s, 0));
    cJSON_AddNumberToObject(e, "score", sqlite3_column_int(s, 1));
    cJSON_AddNumberToObject(e, "games", sqlite3_column_int(s, 2));
    cJSON_AddNumberToObject(e, "wins", sqlite3_column_int(s, 3));
    cJSON_AddItemToArray(arr, e);
  }
  sqlite3_reset(s);
  if (rc != SQLITE_DONE) {
    cJSON_Delete(arr);
    return rc;
  }
  return print_json(arr, out);
}

/* One game as `me` saw it. After our fields come the original server's
 * names for what its frontend reads (PROTOCOL.md, HTTP endpoints):
 * winnerId (our winner), playerName (me), and playerPicture and
 * opponentPicture, "" since guests have none (the original's came from
 * Google). */
static cJSON *history_row(sqlite3_stmt *s, const char *me) {
  const char *p1 = (const char *)sqlite3_column_text(s, 2);
  bool i_am_p1 = strcmp(p1, me) == 0;
  int mine = i_am_p1 ? 4 : 7, theirs = i_am_p1 ? 7 : 4;
  const char *winner = (const char *)sqlite3_column_text(s, 8);
  cJSON *g = cJSON_CreateObject();
  cJSON_AddStringToObject(g, "gameId", (const char *)sqlite3_column_text(s, 0));
  cJSON_AddNumberToObject(g, "timestamp", (double)sqlite3_column_int64(s, 1));
  cJSON_AddNumberToObject(g, "score", sqlite3_column_int(s, mine));
  cJSON_AddNumberToObject(g, "opponentScore", sqlite3_column_int(s, theirs));
  cJSON_AddStringToObject(g, "opponent",
                          (const char *)sqlite3_column_text(s, theirs - 2));
  cJSON_AddStringToObject(g, "opponentName",
                          (const char *)sqlite3_column_text(s, theirs - 1));
  cJSON_AddBoolToObject(g, "won", strcmp(winner, me) == 0);
  cJSON_AddStringToObject(g, "winner", winner);
  cJSON_AddStringToObject(g, "reason", (const char *)sqlite3_column_text(s, 9));
  cJSON_AddStringToObject(g, "winnerId", winner);
  cJSON_AddStringToObject(g, "playerName",
                          (const char *)sqlite3_column_text(s, mine - 1));
  cJSON_AddStringToObject(g, "playerPicture", "");
  cJSON_AddStringToObject(g, "opponentPicture", "");
  return g;
}

static int history_json(game_store_t *st, const game_query_t *q, const char *me,
                        char **out) {
  int rc = fault(st, GAME_STORE_OP_HISTORY);
  if (rc != SQLITE_OK)
    return rc;
  sqlite3_stmt *c = st->history_count;
  sqlite3_bind_text(c, 1, me, -1, SQLITE_TRANSIENT);
  rc = sqlite3_step(c);
  int64_t total = rc == SQLITE_ROW ? sqlite3_column_int64(c, 0) : 0;
  sqlite3_reset(c);
  if (rc != SQLITE_ROW)
    return rc;
  cJSON *games = cJSON_CreateArray();
  sqlite3_stmt *s = st->history;
  sqlite3_bind_text(s, 1, me, -1, SQLITE_TRANSIENT);
  sqlite3_bind_int(s, 2, (int)q->limit);
  while ((rc = sqlite3_step(s)) == SQLITE_ROW)
    cJSON_AddItemToArray(games, history_row(s, me));
  sqlite3_reset(s);
  if (rc != SQLITE_DONE) {
    cJSON_Delete(games);
    return rc;
  }
  cJSON *body = cJSON_CreateObject();
  cJSON_AddItemToObject(body, "games", games);
  cJSON_AddNumberToObject(body, "totalCount", (double)total);
  return print_json(body, out);
}

/* Answer a read: from the database, or in a replay from the recording
 * (the answer is an external, rt_tap.h). */
static void answer_read(game_store_t *st, const game_query_t *q, uint32_t kind,
                        read_fn *fn, const char *me) {
  int64_t rc;
  const uint8_t *data;
  size_t len;
  int got = rt_external_take(st->world, kind, &rc, &data, &len);
  if (got < 0)
    return; /* a replay that diverged: it stops anyway */
  char *text = NULL;
  if (got == 0) {
    rc = fn(st, q, me, &text);
    len = text != NULL ? strlen(text) : 0;
    data = (const uint8_t *)text;
    rt_external_put(st->world, kind, rc, text, len);
  }
  if (rc != SQLITE_OK)
    reply_unavailable(st, q, (int)rc);
  else
    reply_text(st, q, 200, (const char *)data, len);
  cJSON_free(text);
}

static void on_leaderboard(game_store_t *st, const rt_msg_t *msg) {
  game_query_t q;
  RT_MSG_GET(msg, game_query_t, &q);
  answer_read(st, &q, GAME_EXT_STORE_LEADERBOARD, leaderboard_json, NULL);
}

static void on_history(game_store_t *st, const rt_msg_t *msg) {
  game_query_t q;
  RT_MSG_GET(msg, game_query_t, &q);
  char me[RT_SUBJECT_MAX];
  size_t len = msg->buf != NULL ? msg->buf->len : 0;
  if (len == 0 || len >= sizeof(me))
    return;
  memcpy(me, msg->buf->data, len);
  me[len] = '\0';
  answer_read(st, &q, GAME_EXT_STORE_HISTORY, history_json, me);
}

/* ---- The actor ----------------------------------------------------------- */

static void store_behaviour(rt_actor_t *self, const rt_msg_t *msg) {
  game_store_t *st = rt_state(self);
  switch (msg->tag) {
  case GAME_TAG_STORE_RECORD: on_record(st, msg); break;
  case GAME_TAG_STORE_LEADERBOARD: on_leaderboard(st, msg); break;
  case GAME_TAG_STORE_HISTORY: on_history(st, msg); break;
  case GAME_TAG_TIMER_STORE_RETRY:
    st->retry_timer = 0;
    drain_pending(st);
    break;
  default: break;
  }
}

static void store_on_stop(rt_actor_t *self, int reason) {
  (void)reason;
  game_store_t *st = rt_state(self);
  if (st->pending_count > 0)
    rt_log(st->world, RT_LOG_ERROR, "store.stop_with_pending",
           "pending=%u note=not_acknowledged_so_not_shown_to_players",
           st->pending_count);
  st->actor = 0;
}

int game_store_start(rt_world_t *w, const game_store_config_t *cfg,
                     game_store_t **out) {
  game_store_t *st = calloc(1, sizeof(*st));
  if (st == NULL)
    return RT_ENOMEM;
  st->world = w;
  st->cfg = *cfg;
  if (st->cfg.retry_min <= 0)
    st->cfg.retry_min = 10 * RT_NS_PER_MS;
  if (st->cfg.retry_max < st->cfg.retry_min)
    st->cfg.retry_max = 2 * RT_NS_PER_S;
  st->pending = calloc(GAME_STORE_PENDING_MAX, sizeof(*st->pending));
  int err = RT_EIO;
  if (st->pending == NULL) {
    err = RT_ENOMEM;
    goto fail;
  }
  int rc = sqlite3_open_v2(
      cfg->path, &st->db,
      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
      cfg->vfs);
  if (rc == SQLITE_OK)
    rc = migrate(st->db); /* first: a newer schema's file stays untouched */
  if (rc == SQLITE_OK)
    rc = exec(st->db, "PRAGMA journal_mode = WAL");
  if (rc == SQLITE_OK)
    rc = exec(st->db, cfg->sync == GAME_STORE_SYNC_NORMAL
                          ? "PRAGMA synchronous = NORMAL"
                          : "PRAGMA synchronous = FULL");
  if (rc == SQLITE_OK)
    rc = prepare_all(st);
  if (rc != SQLITE_OK) {
    rt_log(w, RT_LOG_ERROR, "store.open", "path=%s code=%d text=\"%s\"",
           cfg->path, rc, st->db != NULL ? sqlite3_errmsg(st->db) : "?");
    goto fail;
  }
  rt_actor_spec_t spec = {.name = "store",
                          .behaviour = store_behaviour,
                          .on_stop = store_on_stop,
                          .state = st,
                          .mailbox_cap = STORE_MAILBOX_CAP,
                          .overflow = RT_OVERFLOW_REJECT};
  err = rt_spawn(w, &spec, &st->actor);
  if (err < 0)
    goto fail;
  *out = st;
  return RT_OK;
fail:
  game_store_free(st);
  return err;
}

rt_actor_id_t game_store_actor(const game_store_t *st) { return st->actor; }

void game_store_get_stats(const game_store_t *st, game_store_stats_t *out) {
  *out = st->stats;
  out->pending = st->pending_count;
}

void game_store_free(game_store_t *st) {
  if (st == NULL)
    return;
  sqlite3_finalize(st->insert_game);
  sqlite3_finalize(st->upsert_player);
  sqlite3_finalize(st->leaderboard);
  sqlite3_finalize(st->history);
  sqlite3_finalize(st->history_count);
  sqlite3_finalize(st->find_game);
  sqlite3_finalize(st->count_games);
  sqlite3_close(st->db);
  free(st->pending);
  free(st);
}

int game_store_record(rt_world_t *w, const game_store_t *st,
                      const game_result_t *r, uint64_t key) {
  rt_msg_t m = RT_MSG_OF(GAME_TAG_STORE_RECORD, &key);
  m.buf = rt_buf_copy(r, sizeof(*r));
  if (m.buf == NULL)
    return RT_ENOMEM;
  int rc = rt_send(w, st->actor, &m);
  if (rc < 0)
    rt_buf_unref(m.buf);
  return rc;
}

int game_store_query_leaderboard(rt_world_t *w, const game_store_t *st,
                                 const rt_http_call_t *call, uint32_t limit) {
  game_query_t q = {
      .reply_to = call->reply_to, .call_id = call->call_id, .limit = limit};
  rt_msg_t m = RT_MSG_OF(GAME_TAG_STORE_LEADERBOARD, &q);
  return rt_send(w, st->actor, &m);
}

int game_store_query_history(rt_world_t *w, const game_store_t *st,
                             const rt_http_call_t *call, const char *subject,
                             uint32_t limit) {
  game_query_t q = {
      .reply_to = call->reply_to, .call_id = call->call_id, .limit = limit};
  rt_msg_t m = RT_MSG_OF(GAME_TAG_STORE_HISTORY, &q);
  m.buf = rt_buf_copy(subject, strlen(subject));
  if (m.buf == NULL)
    return RT_ENOMEM;
  int rc = rt_send(w, st->actor, &m);
  if (rc < 0)
    rt_buf_unref(m.buf);
  return rc;
}

/* ---- Checkers' reads ----------------------------------------------------- */

static void column_copy(sqlite3_stmt *s, int col, char *dst, size_t cap) {
  const unsigned char *v = sqlite3_column_text(s, col);
  snprintf(dst, cap, "%s", v != NULL ? (const char *)v : "");
}

int game_store_find_game(const game_store_t *st, const char *room_id,
                         game_result_t *out) {
  sqlite3_stmt *s = st->find_game;
  sqlite3_bind_text(s, 1, room_id, -1, SQLITE_TRANSIENT);
  int rc = sqlite3_step(s);
  if (rc == SQLITE_ROW) {
    memset(out, 0, sizeof(*out));
    column_copy(s, 0, out->room_id, sizeof(out->room_id));
    out->finished_at_s = sqlite3_column_int64(s, 1);
    column_copy(s, 2, out->p1_id, sizeof(out->p1_id));
    column_copy(s, 3, out->p1_name, sizeof(out->p1_name));
    out->p1_score = sqlite3_column_int(s, 4);
    column_copy(s, 5, out->p2_id, sizeof(out->p2_id));
    column_copy(s, 6, out->p2_name, sizeof(out->p2_name));
    out->p2_score = sqlite3_column_int(s, 7);
    column_copy(s, 8, out->winner, sizeof(out->winner));
    column_copy(s, 9, out->reason, sizeof(out->reason));
  }
  sqlite3_reset(s);
  return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : RT_EIO;
}

int64_t game_store_count_games(const game_store_t *st) {
  sqlite3_stmt *s = st->count_games;
  int rc = sqlite3_step(s);
  int64_t n = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : RT_EIO;
  sqlite3_reset(s);
  return n;
}
