/* game_store_sqlite.c: the Store's embedded backend (game_store_int.h).
 *
 * Every request runs at once, inside the Store's turn, and answers
 * STORE_DONE: a group of games is one BEGIN IMMEDIATE ... COMMIT, so with
 * synchronous=FULL one WAL sync covers the whole group. The simulator's
 * fault hook may fail a request before it touches the database.
 */
#include "game_store_int.h"

#include "rt_assert.h"

#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct sqlite_backend {
  store_backend_t base;
  game_store_fault_fn *fault;
  void *fault_ctx;
  sqlite3 *db;
  sqlite3_stmt *insert_game;
  sqlite3_stmt *upsert_player;
  sqlite3_stmt *leaderboard;
  sqlite3_stmt *history;
  sqlite3_stmt *history_count;
  sqlite3_stmt *find_game;
  sqlite3_stmt *count_games;
  sqlite3_stmt *latest_game;
} sqlite_backend_t;

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
    /* Another instance sharing the file may have migrated while we waited
     * for the write lock: read the version again under it, or its tables
     * would be created twice ("already exists"). */
    if (rc == SQLITE_OK)
      rc = user_version(db, &version);
    if (rc == SQLITE_OK && version < 1)
      rc = exec(db, schema_v1);
    if (rc == SQLITE_OK && version < 1)
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

static int prepare_all(sqlite_backend_t *b) {
  struct {
    sqlite3_stmt **stmt;
    const char *sql;
  } all[] = {
      {&b->insert_game,
       "INSERT OR IGNORE INTO games (room_id, finished_at, p1_id, p1_name,"
       " p1_score, p2_id, p2_name, p2_score, winner, reason)"
       " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"},
      {&b->upsert_player, "INSERT INTO players (id, name, score, games, wins)"
                          " VALUES (?1, ?2, ?3, 1, ?4)"
                          " ON CONFLICT(id) DO UPDATE SET name = excluded.name,"
                          " score = score + excluded.score, games = games + 1,"
                          " wins = wins + excluded.wins"},
      {&b->leaderboard, "SELECT name, score, games, wins FROM players"
                        " ORDER BY score DESC, name ASC, id ASC LIMIT ?1"},
      {&b->history,
       "SELECT room_id, finished_at, p1_id, p1_name, p1_score, p2_id, p2_name,"
       " p2_score, winner, reason FROM games WHERE p1_id = ?1 OR p2_id = ?1"
       " ORDER BY finished_at DESC, id DESC LIMIT ?2"},
      {&b->history_count,
       "SELECT COUNT(*) FROM games WHERE p1_id = ?1 OR p2_id = ?1"},
      {&b->find_game,
       "SELECT room_id, finished_at, p1_id, p1_name, p1_score, p2_id, p2_name,"
       " p2_score, winner, reason FROM games WHERE room_id = ?1"},
      {&b->count_games, "SELECT COUNT(*) FROM games"},
      {&b->latest_game,
       "SELECT room_id, finished_at, p1_id, p1_name, p1_score, p2_id, p2_name,"
       " p2_score, winner, reason FROM games WHERE p1_id = ?1 OR p2_id = ?1"
       " ORDER BY id DESC LIMIT 1"},
  };
  for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
    int rc = sqlite3_prepare_v3(b->db, all[i].sql, -1,
                                SQLITE_PREPARE_PERSISTENT, all[i].stmt, NULL);
    if (rc != SQLITE_OK)
      return rc;
  }
  return SQLITE_OK;
}

/* ---- Errors -------------------------------------------------------------- */

static int store_error(sqlite_backend_t *b, int rc) {
  rt_log(b->base.world, RT_LOG_WARN, "store.sqlite_error",
         "code=%d text=\"%s\"", rc, sqlite3_errstr(rc));
  switch (rc & 0xff) {
  case SQLITE_BUSY:
  case SQLITE_LOCKED: return STORE_E_BUSY;
  case SQLITE_FULL: return STORE_E_FULL;
  case SQLITE_IOERR: return STORE_E_IO;
  default: return STORE_E_OTHER;
  }
}

static int fault(sqlite_backend_t *b, game_store_op_t op) {
  return b->fault != NULL ? b->fault(b->fault_ctx, op) : SQLITE_OK;
}

/* ---- Recording: a group in one transaction ------------------------------ */

static int step_done(sqlite3_stmt *s) {
  int rc = sqlite3_step(s);
  sqlite3_reset(s);
  return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int add_player(sqlite_backend_t *b, const char *id, const char *name,
                      int32_t score, bool won) {
  sqlite3_stmt *s = b->upsert_player;
  sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
  sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC);
  sqlite3_bind_int(s, 3, score);
  sqlite3_bind_int(s, 4, won ? 1 : 0);
  return step_done(s);
}

/* One game inside the open transaction: *stored 1 when inserted, 2 when
 * it was already there (Guarantee (2): totals change only with the
 * insert). */
static int record_game(sqlite_backend_t *b, const game_result_t *r,
                       uint8_t *stored) {
  sqlite3_stmt *s = b->insert_game;
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
  int rc = step_done(s);
  if (rc != SQLITE_OK)
    return rc;
  bool inserted = sqlite3_changes(b->db) == 1;
  *stored = inserted ? 1 : 2;
  if (inserted && strcmp(r->reason, "time") == 0) {
    rc = add_player(b, r->p1_id, r->p1_name, r->p1_score,
                    strcmp(r->winner, r->p1_id) == 0);
    if (rc == SQLITE_OK)
      rc = add_player(b, r->p2_id, r->p2_name, r->p2_score,
                      strcmp(r->winner, r->p2_id) == 0);
  }
  return rc;
}

static int record_group(sqlite_backend_t *b, const store_request_t *req,
                        store_answer_t *ans) {
  ans->outcome = calloc(req->n, 1);
  if (ans->outcome == NULL)
    return STORE_E_OTHER;
  int rc = exec(b->db, "BEGIN IMMEDIATE");
  for (uint32_t i = 0; rc == SQLITE_OK && i < req->n; i++)
    rc = record_game(b, &req->games[i], &ans->outcome[i]);
  if (rc == SQLITE_OK)
    rc = exec(b->db, "COMMIT");
  if (rc != SQLITE_OK) {
    exec(b->db, "ROLLBACK");
    return store_error(b, rc);
  }
  return STORE_DONE;
}

/* ---- Reads --------------------------------------------------------------- */

static void column_copy(sqlite3_stmt *s, int col, char *dst, size_t cap) {
  const unsigned char *v = sqlite3_column_text(s, col);
  snprintf(dst, cap, "%s", v != NULL ? (const char *)v : "");
}

static int leaderboard(sqlite_backend_t *b, const store_request_t *req,
                       store_answer_t *ans) {
  ans->leaders = calloc(req->limit > 0 ? req->limit : 1, sizeof(*ans->leaders));
  if (ans->leaders == NULL)
    return STORE_E_OTHER;
  sqlite3_stmt *s = b->leaderboard;
  sqlite3_bind_int(s, 1, (int)req->limit);
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW && ans->nleaders < req->limit) {
    store_leader_t *l = &ans->leaders[ans->nleaders++];
    column_copy(s, 0, l->name, sizeof(l->name));
    l->score = sqlite3_column_int64(s, 1);
    l->games = sqlite3_column_int64(s, 2);
    l->wins = sqlite3_column_int64(s, 3);
  }
  sqlite3_reset(s);
  return rc == SQLITE_DONE || rc == SQLITE_ROW ? STORE_DONE
                                               : store_error(b, rc);
}

static void row_to_result(sqlite3_stmt *s, game_result_t *out) {
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

static int history(sqlite_backend_t *b, const store_request_t *req,
                   store_answer_t *ans) {
  sqlite3_stmt *c = b->history_count;
  sqlite3_bind_text(c, 1, req->subject, -1, SQLITE_TRANSIENT);
  int rc = sqlite3_step(c);
  ans->total = rc == SQLITE_ROW ? sqlite3_column_int64(c, 0) : 0;
  sqlite3_reset(c);
  if (rc != SQLITE_ROW)
    return store_error(b, rc);
  ans->games = calloc(req->limit > 0 ? req->limit : 1, sizeof(*ans->games));
  if (ans->games == NULL)
    return STORE_E_OTHER;
  sqlite3_stmt *s = b->history;
  sqlite3_bind_text(s, 1, req->subject, -1, SQLITE_TRANSIENT);
  sqlite3_bind_int(s, 2, (int)req->limit);
  while ((rc = sqlite3_step(s)) == SQLITE_ROW && ans->ngames < req->limit)
    row_to_result(s, &ans->games[ans->ngames++]);
  sqlite3_reset(s);
  return rc == SQLITE_DONE || rc == SQLITE_ROW ? STORE_DONE
                                               : store_error(b, rc);
}

/* ---- The backend --------------------------------------------------------- */

static int sqlite_begin(store_backend_t *base, const store_request_t *req,
                        store_answer_t *ans) {
  sqlite_backend_t *b = (sqlite_backend_t *)base;
  int rc = fault(b, req->op);
  if (rc != SQLITE_OK)
    return store_error(b, rc);
  switch (req->op) {
  case GAME_STORE_OP_RECORD: return record_group(b, req, ans);
  case GAME_STORE_OP_LEADERBOARD: return leaderboard(b, req, ans);
  case GAME_STORE_OP_HISTORY: return history(b, req, ans);
  }
  return STORE_E_OTHER;
}

/* Never raised: every request is answered by begin. */
static int sqlite_poll(store_backend_t *b, uint32_t events,
                       store_answer_t *ans) {
  (void)b;
  (void)events;
  (void)ans;
  return STORE_QUEUED;
}

static void sqlite_abandon(store_backend_t *b) { (void)b; }

/* The one game a statement with one text parameter finds: 1, 0 or RT_EIO. */
static int one_game(sqlite3_stmt *s, const char *param, game_result_t *out) {
  sqlite3_bind_text(s, 1, param, -1, SQLITE_TRANSIENT);
  int rc = sqlite3_step(s);
  if (rc == SQLITE_ROW)
    row_to_result(s, out);
  sqlite3_reset(s);
  return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : RT_EIO;
}

static int sqlite_find_game(store_backend_t *base, const char *room_id,
                            game_result_t *out) {
  return one_game(((sqlite_backend_t *)base)->find_game, room_id, out);
}

static int sqlite_latest_game_of(store_backend_t *base, const char *id,
                                 game_result_t *out) {
  return one_game(((sqlite_backend_t *)base)->latest_game, id, out);
}

static int64_t sqlite_count_games(store_backend_t *base) {
  sqlite_backend_t *b = (sqlite_backend_t *)base;
  sqlite3_stmt *s = b->count_games;
  int rc = sqlite3_step(s);
  int64_t n = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : RT_EIO;
  sqlite3_reset(s);
  return n;
}

/* Its statements and connection, which may be opened again. */
static void close_db(sqlite_backend_t *b) {
  sqlite3_stmt **all[] = {&b->insert_game, &b->upsert_player, &b->leaderboard,
                          &b->history,     &b->history_count, &b->find_game,
                          &b->count_games, &b->latest_game};
  for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
    sqlite3_finalize(*all[i]);
    *all[i] = NULL;
  }
  sqlite3_close(b->db);
  b->db = NULL;
}

static void sqlite_free(store_backend_t *base) {
  sqlite_backend_t *b = (sqlite_backend_t *)base;
  close_db(b);
  free(b);
}

static const store_backend_ops_t sqlite_ops = {
    .begin = sqlite_begin,
    .poll = sqlite_poll,
    .abandon = sqlite_abandon,
    .find_game = sqlite_find_game,
    .count_games = sqlite_count_games,
    .latest_game_of = sqlite_latest_game_of,
    .free = sqlite_free,
};

/* Instances of a cluster on one machine share the file and start
 * together: at start, a busy database is waited for (OPEN_WAITS_MAX waits
 * of OPEN_WAIT_MS, 10 s in all) rather than failed. SQLite also answers
 * BUSY without waiting where a wait could deadlock (a connection upgrading
 * its read lock while another upgrades its write lock): then the whole
 * open starts again, from the same budget. The waits are SQLite's own
 * sleep, as its busy timeout's were, and happen only at start. In play, a
 * busy database is the Store's backoff's business (never a wait in the
 * event loop): the handler is removed once the database is open. */
#define OPEN_WAIT_MS 10
#define OPEN_WAITS_MAX 1000u

static int open_busy(void *ctx, int n) {
  (void)n;
  uint32_t *waits = ctx;
  if (*waits >= OPEN_WAITS_MAX)
    return 0;
  (*waits)++;
  sqlite3_sleep(OPEN_WAIT_MS);
  return 1;
}

/* One attempt; *step names the step that failed. */
static int open_once(sqlite_backend_t *b, const game_store_config_t *cfg,
                     uint32_t *waits, const char **step) {
  *step = "open";
  int rc = sqlite3_open_v2(cfg->path, &b->db,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                               SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX,
                           cfg->vfs);
  if (rc == SQLITE_OK)
    rc = sqlite3_busy_handler(b->db, open_busy, waits);
  if (rc == SQLITE_OK && (*step = "migrate"))
    rc = migrate(b->db); /* first: a newer schema's file stays untouched */
  if (rc == SQLITE_OK && (*step = "journal_mode"))
    rc = exec(b->db, "PRAGMA journal_mode = WAL");
  if (rc == SQLITE_OK && (*step = "synchronous"))
    rc = exec(b->db, cfg->sync == GAME_STORE_SYNC_NORMAL
                         ? "PRAGMA synchronous = NORMAL"
                         : "PRAGMA synchronous = FULL");
  if (rc == SQLITE_OK && (*step = "prepare"))
    rc = prepare_all(b);
  if (rc == SQLITE_OK)
    rc = sqlite3_busy_handler(b->db, NULL, NULL);
  return rc;
}

int store_sqlite_open(rt_world_t *w, const game_store_config_t *cfg,
                      store_backend_t **out) {
  sqlite_backend_t *b = calloc(1, sizeof(*b));
  if (b == NULL)
    return RT_ENOMEM;
  b->base.ops = &sqlite_ops;
  b->base.name = "sqlite";
  b->base.world = w;
  b->fault = cfg->fault;
  b->fault_ctx = cfg->fault_ctx;
  uint32_t waits = 0, attempts = 1;
  const char *step = "open";
  int rc = open_once(b, cfg, &waits, &step);
  while ((rc & 0xff) == SQLITE_BUSY && waits < OPEN_WAITS_MAX) {
    close_db(b);
    waits++;
    sqlite3_sleep(OPEN_WAIT_MS);
    attempts++;
    rc = open_once(b, cfg, &waits, &step);
  }
  if (rc != SQLITE_OK) {
    rt_log(w, RT_LOG_ERROR, "store.open",
           "path=%s step=%s attempts=%" PRIu32 " code=%d text=\"%s\"",
           cfg->path, step, attempts, rc,
           b->db != NULL ? sqlite3_errmsg(b->db) : "?");
    sqlite_free(&b->base);
    return RT_EIO;
  }
  if (attempts > 1)
    rt_log(w, RT_LOG_INFO, "store.open_retried", "path=%s attempts=%" PRIu32,
           cfg->path, attempts);
  *out = &b->base;
  return RT_OK;
}
