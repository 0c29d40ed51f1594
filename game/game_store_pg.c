/* game_store_pg.c: the Store's shared backend, PostgreSQL through libpq
 * (game_store_int.h).
 *
 * At start, a blocking connection creates or migrates the schema (the
 * server does not serve before that), then turns non-blocking. From then on
 * nothing waits: begin sends one statement with PQsendQueryParams and
 * answers STORE_QUEUED; the live world watches the socket through the
 * Store's port (rt_port.h); poll flushes, consumes input and, once libpq has
 * the whole answer, returns it. One request is in flight at a time.
 *
 * A group of finished games is one statement, so one round trip and one
 * commit: the games travel as one JSON array (jsonb_to_recordset), inserted
 * with ON CONFLICT (room_id) DO NOTHING, and the players' totals grow only
 * from the rows that insert returned (Guarantee (2) of game_store.h). A
 * connection that drops fails the request in flight with
 * STORE_E_UNAVAILABLE; the next request, paced by the Store's backoff,
 * starts a new connection (PQconnectStartParams, polled like the rest), and
 * the group is sent again: a game that did commit comes back as already
 * stored.
 *
 * The URI's password (or PGPASSWORD, ~/.pgpass) goes to libpq only: logs
 * name the host, port, database and user.
 */
#include "game_store_int.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIGRATION_LOCK 0x6f63736368656d61LL /* "ocschema" */

typedef enum pg_state {
  PG_DOWN = 0,   /* no connection: the next begin starts one */
  PG_CONNECTING, /* PQconnectPoll in progress */
  PG_READY,      /* connected, nothing in flight */
  PG_BUSY,       /* a request in flight */
} pg_state_t;

typedef struct pg_backend {
  store_backend_t base;
  const char *keywords[4];
  const char *values[4];
  char *uri;
  char desc[256]; /* host, port, database and user: no password */
  PGconn *conn;
  pg_state_t state;
  int watched_fd;
  uint32_t watched;
  /* The request in flight and what its answer has so far. */
  game_store_op_t op;
  uint32_t n;
  char (*room_ids)[32]; /* RECORD: the group's, in order */
  store_answer_t ans;
  int err;       /* 0, or the STORE_E_* of a failed result */
  PGconn *check; /* checkers' blocking connection, made when asked */
  /* A connect is given up after op_timeout, as a request is: libpq's
   * connect_timeout does not bound a non-blocking connect, and a server
   * that takes the TCP connection but never answers (stopped, or behind a
   * stuck proxy) would hold it until TCP gives up, hours later. */
  rt_time_ns connect_at, connect_timeout;
} pg_backend_t;

/* ---- SQL ----------------------------------------------------------------- */

static const char schema_v1[] =
    "CREATE TABLE games ("
    "  id bigserial PRIMARY KEY,"
    "  room_id text NOT NULL UNIQUE,"
    "  finished_at bigint NOT NULL,"
    "  p1_id text NOT NULL, p1_name text NOT NULL, p1_score integer NOT NULL,"
    "  p2_id text NOT NULL, p2_name text NOT NULL, p2_score integer NOT NULL,"
    "  winner text NOT NULL,"
    "  reason text NOT NULL);"
    "CREATE INDEX games_p1 ON games (p1_id, finished_at);"
    "CREATE INDEX games_p2 ON games (p2_id, finished_at);"
    "CREATE TABLE players ("
    "  id text PRIMARY KEY,"
    "  name text NOT NULL,"
    "  score bigint NOT NULL,"
    "  games bigint NOT NULL,"
    "  wins bigint NOT NULL);"
    "CREATE INDEX players_rank ON players (score DESC, name COLLATE \"C\");"
    "INSERT INTO overcookied_schema (version) VALUES (1);";

/* $1: the group as a JSON array of games, each with its place i. A room
 * id twice in one group is stored once, from its first place. A player's
 * name becomes the one of their last game in the group. */
static const char record_sql[] =
    "WITH batch AS ("
    "  SELECT * FROM jsonb_to_recordset($1::jsonb) AS b("
    "    i integer, room_id text, finished_at bigint, p1_id text,"
    "    p1_name text, p1_score integer, p2_id text, p2_name text,"
    "    p2_score integer, winner text, reason text)"
    "), ins AS ("
    "  INSERT INTO games (room_id, finished_at, p1_id, p1_name, p1_score,"
    "                     p2_id, p2_name, p2_score, winner, reason)"
    "  SELECT room_id, finished_at, p1_id, p1_name, p1_score,"
    "         p2_id, p2_name, p2_score, winner, reason FROM batch ORDER BY i"
    "  ON CONFLICT (room_id) DO NOTHING"
    "  RETURNING room_id, p1_id, p1_name, p1_score, p2_id, p2_name,"
    "            p2_score, winner, reason"
    "), firsts AS ("
    "  SELECT room_id, min(i) AS i FROM batch GROUP BY room_id"
    "), seats AS ("
    "  SELECT p1_id AS id, p1_name AS name, p1_score AS score,"
    "         (winner = p1_id)::int AS won, f.i"
    "  FROM ins JOIN firsts f USING (room_id) WHERE reason = 'time'"
    "  UNION ALL"
    "  SELECT p2_id, p2_name, p2_score, (winner = p2_id)::int, f.i"
    "  FROM ins JOIN firsts f USING (room_id) WHERE reason = 'time'"
    "), totals AS ("
    "  SELECT id, (array_agg(name ORDER BY i DESC))[1] AS name,"
    "         sum(score) AS score, count(*) AS games, sum(won) AS wins"
    "  FROM seats GROUP BY id"
    "), up AS ("
    "  INSERT INTO players (id, name, score, games, wins)"
    "  SELECT id, name, score, games, wins FROM totals"
    "  ON CONFLICT (id) DO UPDATE SET name = excluded.name,"
    "    score = players.score + excluded.score,"
    "    games = players.games + excluded.games,"
    "    wins = players.wins + excluded.wins"
    ")"
    "SELECT room_id FROM ins";

/* Names in byte order, as SQLite's BINARY collation orders them. */
static const char leaderboard_sql[] =
    "SELECT name, score, games, wins FROM players"
    " ORDER BY score DESC, name COLLATE \"C\" ASC, id COLLATE \"C\" ASC"
    " LIMIT $1";

static const char history_sql[] =
    "SELECT room_id, finished_at, p1_id, p1_name, p1_score, p2_id, p2_name,"
    " p2_score, winner, reason, count(*) OVER ()"
    " FROM games WHERE p1_id = $1 OR p2_id = $1"
    " ORDER BY finished_at DESC, id DESC LIMIT $2";

static const char find_sql[] =
    "SELECT room_id, finished_at, p1_id, p1_name, p1_score, p2_id, p2_name,"
    " p2_score, winner, reason FROM games WHERE room_id = $1";
static const char latest_sql[] =
    "SELECT room_id, finished_at, p1_id, p1_name, p1_score, p2_id, p2_name,"
    " p2_score, winner, reason FROM games WHERE p1_id = $1 OR p2_id = $1"
    " ORDER BY id DESC LIMIT 1";

/* ---- Errors -------------------------------------------------------------- */

/* A failed result's kind, from its SQLSTATE. */
static int classify(const PGresult *r) {
  const char *s = r != NULL ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
  if (s == NULL || strncmp(s, "08", 2) == 0 || strncmp(s, "57P", 3) == 0)
    return STORE_E_UNAVAILABLE; /* connection trouble, shutdown */
  if (strncmp(s, "53", 2) == 0)
    return STORE_E_FULL; /* disk full, out of memory, too many connections */
  if (strncmp(s, "40", 2) == 0 || strcmp(s, "55P03") == 0)
    return STORE_E_BUSY; /* serialization failure, deadlock, lock */
  if (strncmp(s, "58", 2) == 0 || strncmp(s, "XX", 2) == 0)
    return STORE_E_IO;
  return STORE_E_OTHER;
}

/* libpq's messages end in a newline: one log line each. */
static void log_pq(pg_backend_t *b, int level, const char *event,
                   const char *text) {
  char line[256];
  snprintf(line, sizeof(line), "%s", text != NULL ? text : "");
  for (char *c = line; *c != '\0'; c++)
    if (*c == '\n' || *c == '"')
      *c = *c == '"' ? '\'' : ' ';
  rt_log(b->base.world, level, event, "%s text=\"%s\"", b->desc, line);
}

/* PostgreSQL's notices (a migration's "already exists, skipping") go to
 * our log, not to libpq's default, stderr. */
static void on_notice(void *arg, const char *message) {
  log_pq(arg, RT_LOG_DEBUG, "store.pg_notice", message);
}

/* ---- The connection ------------------------------------------------------ */

static void watch(pg_backend_t *b, uint32_t events) {
  int fd = b->conn != NULL ? PQsocket(b->conn) : -1;
  if (fd < 0)
    events = 0;
  if (b->base.port == NULL || (fd == b->watched_fd && events == b->watched))
    return;
  if (rt_port_watch(b->base.port, fd, events) == RT_OK) {
    b->watched_fd = events != 0 ? fd : -1;
    b->watched = events;
  }
}

static void clear_request(pg_backend_t *b) {
  store_answer_clear(&b->ans);
  free(b->room_ids);
  b->room_ids = NULL;
  b->n = 0;
  b->err = 0;
}

/* Close the connection; the next begin makes a new one. */
static void drop(pg_backend_t *b, store_answer_t *ans) {
  if (b->conn != NULL) {
    watch(b, 0); /* before PQfinish closes the descriptor */
    PQfinish(b->conn);
    b->conn = NULL;
    if (ans != NULL && b->state != PG_CONNECTING)
      ans->flags |= STORE_FLAG_LOST;
  }
  b->state = PG_DOWN;
  clear_request(b);
}

static void start_connect(pg_backend_t *b) {
  b->conn = PQconnectStartParams(b->keywords, b->values, 1);
  if (b->conn == NULL || PQstatus(b->conn) == CONNECTION_BAD) {
    log_pq(b, RT_LOG_WARN, "store.pg_connect",
           b->conn != NULL ? PQerrorMessage(b->conn) : "out of memory");
    drop(b, NULL);
    return;
  }
  b->state = PG_CONNECTING;
  b->connect_at = rt_now(b->base.world);
  PQsetNoticeProcessor(b->conn, on_notice, b);
  watch(b, RT_PORT_WRITE); /* libpq: start as if PGRES_POLLING_WRITING */
}

static int connect_step(pg_backend_t *b, store_answer_t *ans) {
  switch (PQconnectPoll(b->conn)) {
  case PGRES_POLLING_READING: watch(b, RT_PORT_READ); break;
  case PGRES_POLLING_WRITING: watch(b, RT_PORT_WRITE); break;
  case PGRES_POLLING_OK:
    if (PQsetnonblocking(b->conn, 1) != 0) {
      drop(b, NULL);
      break;
    }
    b->state = PG_READY;
    ans->flags |= STORE_FLAG_CONNECTED;
    watch(b, RT_PORT_READ);
    break;
  default:
    log_pq(b, RT_LOG_WARN, "store.pg_connect", PQerrorMessage(b->conn));
    drop(b, NULL);
    break;
  }
  return STORE_QUEUED;
}

/* ---- Answers ------------------------------------------------------------- */

static void copy_value(const PGresult *r, int row, int col, char *dst,
                       size_t cap) {
  snprintf(dst, cap, "%s", PQgetvalue(r, row, col));
}

static int64_t int_value(const PGresult *r, int row, int col) {
  return strtoll(PQgetvalue(r, row, col), NULL, 10);
}

static void row_to_result(const PGresult *r, int row, game_result_t *out) {
  memset(out, 0, sizeof(*out));
  copy_value(r, row, 0, out->room_id, sizeof(out->room_id));
  out->finished_at_s = int_value(r, row, 1);
  copy_value(r, row, 2, out->p1_id, sizeof(out->p1_id));
  copy_value(r, row, 3, out->p1_name, sizeof(out->p1_name));
  out->p1_score = (int32_t)int_value(r, row, 4);
  copy_value(r, row, 5, out->p2_id, sizeof(out->p2_id));
  copy_value(r, row, 6, out->p2_name, sizeof(out->p2_name));
  out->p2_score = (int32_t)int_value(r, row, 7);
  copy_value(r, row, 8, out->winner, sizeof(out->winner));
  copy_value(r, row, 9, out->reason, sizeof(out->reason));
}

/* Each game of the group: 1 when insert returned its room id (the first
 * time it appears), 2 when it was already stored. */
static int take_record(pg_backend_t *b, const PGresult *r) {
  int rows = PQntuples(r);
  bool *claimed = calloc((size_t)rows + 1, sizeof(bool));
  b->ans.outcome = calloc(b->n, 1);
  if (claimed == NULL || b->ans.outcome == NULL) {
    free(claimed);
    return STORE_E_OTHER;
  }
  for (uint32_t i = 0; i < b->n; i++) {
    b->ans.outcome[i] = 2;
    for (int k = 0; k < rows; k++) {
      if (!claimed[k] && strcmp(PQgetvalue(r, k, 0), b->room_ids[i]) == 0) {
        claimed[k] = true;
        b->ans.outcome[i] = 1;
        break;
      }
    }
  }
  free(claimed);
  return 0;
}

static int take_rows(pg_backend_t *b, const PGresult *r) {
  int rows = PQntuples(r);
  /* Columns as our statements name them; anything else (a schema some
   * other program changed) is an error, never a read past the row. */
  int want = b->op == GAME_STORE_OP_RECORD        ? 1
             : b->op == GAME_STORE_OP_LEADERBOARD ? 4
                                                  : 11;
  if (PQnfields(r) < want)
    return STORE_E_OTHER;
  switch (b->op) {
  case GAME_STORE_OP_RECORD: return take_record(b, r);
  case GAME_STORE_OP_LEADERBOARD:
    b->ans.leaders = calloc((size_t)rows + 1, sizeof(*b->ans.leaders));
    if (b->ans.leaders == NULL)
      return STORE_E_OTHER;
    for (int k = 0; k < rows; k++) {
      store_leader_t *l = &b->ans.leaders[b->ans.nleaders++];
      copy_value(r, k, 0, l->name, sizeof(l->name));
      l->score = int_value(r, k, 1);
      l->games = int_value(r, k, 2);
      l->wins = int_value(r, k, 3);
    }
    return 0;
  case GAME_STORE_OP_HISTORY:
    b->ans.games = calloc((size_t)rows + 1, sizeof(*b->ans.games));
    if (b->ans.games == NULL)
      return STORE_E_OTHER;
    for (int k = 0; k < rows; k++)
      row_to_result(r, k, &b->ans.games[b->ans.ngames++]);
    b->ans.total = rows > 0 ? int_value(r, 0, 10) : 0;
    return 0;
  }
  return STORE_E_OTHER;
}

static void take_result(pg_backend_t *b, const PGresult *r) {
  ExecStatusType s = PQresultStatus(r);
  if (b->err != 0)
    return; /* the first failure is the answer */
  if (s == PGRES_TUPLES_OK) {
    b->err = take_rows(b, r);
  } else if (s != PGRES_COMMAND_OK) {
    b->err = classify(r);
    log_pq(b, RT_LOG_WARN, "store.pg_error", PQresultErrorMessage(r));
  }
}

/* ---- Requests ------------------------------------------------------------ */

static char *group_json(const store_request_t *req) {
  cJSON *arr = cJSON_CreateArray();
  for (uint32_t i = 0; arr != NULL && i < req->n; i++) {
    const game_result_t *g = &req->games[i];
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "i", i);
    cJSON_AddStringToObject(o, "room_id", g->room_id);
    cJSON_AddNumberToObject(o, "finished_at", (double)g->finished_at_s);
    cJSON_AddStringToObject(o, "p1_id", g->p1_id);
    cJSON_AddStringToObject(o, "p1_name", g->p1_name);
    cJSON_AddNumberToObject(o, "p1_score", g->p1_score);
    cJSON_AddStringToObject(o, "p2_id", g->p2_id);
    cJSON_AddStringToObject(o, "p2_name", g->p2_name);
    cJSON_AddNumberToObject(o, "p2_score", g->p2_score);
    cJSON_AddStringToObject(o, "winner", g->winner);
    cJSON_AddStringToObject(o, "reason", g->reason);
    cJSON_AddItemToArray(arr, o);
  }
  char *text = cJSON_PrintUnformatted(arr);
  cJSON_Delete(arr);
  return text;
}

/* Send req's statement; 1 when sent, 0 when libpq refused it, a STORE_E_*
 * when it could not be built. */
static int send_request(pg_backend_t *b, const store_request_t *req) {
  char limit[16];
  snprintf(limit, sizeof(limit), "%u", req->limit);
  switch (req->op) {
  case GAME_STORE_OP_RECORD: {
    b->room_ids = calloc(req->n, sizeof(*b->room_ids));
    char *json = group_json(req);
    if (b->room_ids == NULL || json == NULL) {
      cJSON_free(json);
      return STORE_E_OTHER;
    }
    for (uint32_t i = 0; i < req->n; i++)
      snprintf(b->room_ids[i], sizeof(b->room_ids[i]), "%s",
               req->games[i].room_id);
    const char *params[1] = {json};
    int ok =
        PQsendQueryParams(b->conn, record_sql, 1, NULL, params, NULL, NULL, 0);
    cJSON_free(json);
    return ok;
  }
  case GAME_STORE_OP_LEADERBOARD: {
    const char *params[1] = {limit};
    return PQsendQueryParams(b->conn, leaderboard_sql, 1, NULL, params, NULL,
                             NULL, 0);
  }
  case GAME_STORE_OP_HISTORY: {
    const char *params[2] = {req->subject, limit};
    return PQsendQueryParams(b->conn, history_sql, 2, NULL, params, NULL, NULL,
                             0);
  }
  }
  return STORE_E_OTHER;
}

static int pg_begin(store_backend_t *base, const store_request_t *req,
                    store_answer_t *ans) {
  pg_backend_t *b = (pg_backend_t *)base;
  if (b->state == PG_CONNECTING &&
      rt_now(b->base.world) - b->connect_at >= b->connect_timeout) {
    rt_log(b->base.world, RT_LOG_WARN, "store.pg_connect",
           "%s error=no answer within %" PRId64 " ms", b->desc,
           (int64_t)(b->connect_timeout / RT_NS_PER_MS));
    drop(b, NULL);
    return STORE_E_TIMEOUT; /* the next begin connects anew */
  }
  if (b->state == PG_DOWN)
    start_connect(b);
  if (b->state != PG_READY)
    return STORE_E_UNAVAILABLE;
  clear_request(b);
  b->op = req->op;
  b->n = req->n;
  int sent = send_request(b, req);
  if (sent < 0) {
    clear_request(b);
    return sent;
  }
  if (sent == 0) {
    log_pq(b, RT_LOG_WARN, "store.pg_send", PQerrorMessage(b->conn));
    drop(b, ans);
    return STORE_E_UNAVAILABLE;
  }
  b->state = PG_BUSY;
  int f = PQflush(b->conn);
  if (f < 0) {
    drop(b, ans);
    return STORE_E_UNAVAILABLE;
  }
  watch(b, RT_PORT_READ | (f == 1 ? RT_PORT_WRITE : 0));
  return STORE_QUEUED;
}

/* The connection failed: the request in flight, if any, fails with it. */
static int lost(pg_backend_t *b, store_answer_t *ans) {
  bool busy = b->state == PG_BUSY;
  log_pq(b, RT_LOG_WARN, "store.pg_lost", PQerrorMessage(b->conn));
  drop(b, ans);
  return busy ? STORE_E_UNAVAILABLE : STORE_QUEUED;
}

static int pg_poll(store_backend_t *base, uint32_t events,
                   store_answer_t *ans) {
  pg_backend_t *b = (pg_backend_t *)base;
  if (b->state == PG_DOWN)
    return STORE_QUEUED;
  if (b->state == PG_CONNECTING)
    return connect_step(b, ans);
  if (events & RT_PORT_WRITE) {
    int f = PQflush(b->conn);
    if (f < 0)
      return lost(b, ans);
    if (f == 0)
      watch(b, RT_PORT_READ);
  }
  if (!PQconsumeInput(b->conn) || PQstatus(b->conn) == CONNECTION_BAD)
    return lost(b, ans);
  if (b->state != PG_BUSY)
    return STORE_QUEUED; /* notices, or nothing */
  while (!PQisBusy(b->conn)) {
    PGresult *r = PQgetResult(b->conn);
    if (r == NULL) { /* the request is complete */
      b->state = PG_READY;
      int err = b->err;
      if (err == 0) {
        store_answer_t got = b->ans;
        memset(&b->ans, 0, sizeof(b->ans));
        got.flags = ans->flags;
        *ans = got;
      }
      clear_request(b);
      if (PQstatus(b->conn) == CONNECTION_BAD)
        drop(b, ans);
      return err != 0 ? err : STORE_DONE;
    }
    take_result(b, r);
    PQclear(r);
  }
  return STORE_QUEUED;
}

static void pg_abandon(store_backend_t *base) {
  pg_backend_t *b = (pg_backend_t *)base;
  rt_log(b->base.world, RT_LOG_WARN, "store.pg_abandon", "%s state=%d", b->desc,
         (int)b->state);
  drop(b, NULL);
}

/* ---- Checkers' reads: a blocking connection of their own ---------------- */

static PGconn *checker(pg_backend_t *b) {
  if (b->check != NULL && PQstatus(b->check) != CONNECTION_OK) {
    PQfinish(b->check);
    b->check = NULL;
  }
  if (b->check == NULL) {
    b->check = PQconnectdbParams(b->keywords, b->values, 1);
    if (b->check != NULL)
      PQsetNoticeProcessor(b->check, on_notice, b);
  }
  return b->check != NULL && PQstatus(b->check) == CONNECTION_OK ? b->check
                                                                 : NULL;
}

static int pg_one_game(store_backend_t *base, const char *sql,
                       const char *param, game_result_t *out) {
  PGconn *c = checker((pg_backend_t *)base);
  if (c == NULL)
    return RT_EIO;
  const char *params[1] = {param};
  PGresult *r = PQexecParams(c, sql, 1, NULL, params, NULL, NULL, 0);
  int rc = RT_EIO;
  if (PQresultStatus(r) == PGRES_TUPLES_OK) {
    rc = PQntuples(r) > 0 ? 1 : 0;
    if (rc == 1)
      row_to_result(r, 0, out);
  }
  PQclear(r);
  return rc;
}

static int pg_find_game(store_backend_t *base, const char *room_id,
                        game_result_t *out) {
  return pg_one_game(base, find_sql, room_id, out);
}

static int pg_latest_game_of(store_backend_t *base, const char *id,
                             game_result_t *out) {
  return pg_one_game(base, latest_sql, id, out);
}

static int64_t pg_count_games(store_backend_t *base) {
  PGconn *c = checker((pg_backend_t *)base);
  if (c == NULL)
    return RT_EIO;
  PGresult *r = PQexec(c, "SELECT count(*) FROM games");
  int64_t n = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1
                  ? int_value(r, 0, 0)
                  : RT_EIO;
  PQclear(r);
  return n;
}

static void pg_free(store_backend_t *base) {
  pg_backend_t *b = (pg_backend_t *)base;
  drop(b, NULL);
  if (b->check != NULL)
    PQfinish(b->check);
  free(b->uri);
  free(b);
}

static const store_backend_ops_t pg_ops = {
    .begin = pg_begin,
    .poll = pg_poll,
    .abandon = pg_abandon,
    .find_game = pg_find_game,
    .count_games = pg_count_games,
    .latest_game_of = pg_latest_game_of,
    .free = pg_free,
};

/* ---- Opening: connect, migrate ------------------------------------------- */

/* "host=... port=... dbname=... user=...": what the logs may say. */
static void describe_uri(const char *uri, char *out, size_t cap) {
  char *err = NULL;
  PQconninfoOption *opts = PQconninfoParse(uri, &err);
  size_t used = 0;
  out[0] = '\0';
  for (PQconninfoOption *o = opts; o != NULL && o->keyword != NULL; o++) {
    if (o->val == NULL ||
        (strcmp(o->keyword, "host") != 0 &&
         strcmp(o->keyword, "hostaddr") != 0 &&
         strcmp(o->keyword, "port") != 0 && strcmp(o->keyword, "dbname") != 0 &&
         strcmp(o->keyword, "user") != 0))
      continue;
    int n = snprintf(out + used, cap - used, "%s%s=%s", used > 0 ? " " : "",
                     o->keyword, o->val);
    if (n < 0 || (size_t)n >= cap - used) {
      out[used] = '\0';
      break;
    }
    used += (size_t)n;
  }
  if (used == 0)
    snprintf(out, cap, "%s", opts == NULL ? "an unreadable URI" : "defaults");
  PQconninfoFree(opts);
  PQfreemem(err);
}

void game_store_describe(const char *path, char *out, size_t cap) {
  if (cap == 0)
    return;
  if (!game_store_is_postgres(path)) {
    snprintf(out, cap, "%s", path != NULL ? path : "");
    return;
  }
  char desc[GAME_STORE_DESCRIBE_MAX - 12];
  describe_uri(path, desc, sizeof(desc));
  snprintf(out, cap, "postgres %s", desc);
}

static bool exec_ok(PGconn *c, const char *sql, ExecStatusType want,
                    PGresult **keep) {
  PGresult *r = PQexec(c, sql);
  bool ok = PQresultStatus(r) == want;
  if (keep != NULL && ok)
    *keep = r;
  else
    PQclear(r);
  return ok;
}

/* Create or upgrade the schema in one transaction, under an advisory lock
 * so that instances starting together migrate once. */
static int migrate(pg_backend_t *b) {
  PGconn *c = b->conn;
  /* Names are UTF-8, sent as they are: a database in another encoding
   * would refuse some of them for ever, and a refused result blocks every
   * result behind it (they commit in order). Say so at start instead. */
  const char *enc = PQparameterStatus(c, "server_encoding");
  if (enc == NULL ||
      (strcmp(enc, "UTF8") != 0 && strcmp(enc, "SQL_ASCII") != 0)) {
    rt_log(b->base.world, RT_LOG_ERROR, "store.open",
           "%s server_encoding=%s note=create_the_database_with_ENCODING_UTF8",
           b->desc, enc != NULL ? enc : "?");
    return RT_EPROTO;
  }
  char lock[96];
  snprintf(lock, sizeof(lock), "SELECT pg_advisory_xact_lock(%lld)",
           (long long)MIGRATION_LOCK);
  PGresult *v = NULL;
  bool ok =
      exec_ok(c, "BEGIN", PGRES_COMMAND_OK, NULL) &&
      exec_ok(c, lock, PGRES_TUPLES_OK, NULL) &&
      exec_ok(c,
              "CREATE TABLE IF NOT EXISTS overcookied_schema"
              " (version integer NOT NULL)",
              PGRES_COMMAND_OK, NULL) &&
      exec_ok(c, "SELECT coalesce(max(version), 0) FROM overcookied_schema",
              PGRES_TUPLES_OK, &v);
  int version = ok ? (int)int_value(v, 0, 0) : -1;
  PQclear(v);
  if (ok && version > GAME_STORE_SCHEMA_VERSION) {
    rt_log(b->base.world, RT_LOG_ERROR, "store.open",
           "%s schema_version=%d known=%d note=written_by_a_newer_server",
           b->desc, version, GAME_STORE_SCHEMA_VERSION);
    exec_ok(c, "ROLLBACK", PGRES_COMMAND_OK, NULL);
    return RT_EPROTO;
  }
  if (ok && version < 1)
    ok = exec_ok(c, schema_v1, PGRES_COMMAND_OK, NULL);
  if (ok)
    ok = exec_ok(c, "COMMIT", PGRES_COMMAND_OK, NULL);
  if (!ok) {
    log_pq(b, RT_LOG_ERROR, "store.open", PQerrorMessage(c));
    exec_ok(c, "ROLLBACK", PGRES_COMMAND_OK, NULL);
    return RT_EIO;
  }
  return RT_OK;
}

int store_pg_open(rt_world_t *w, const game_store_config_t *cfg,
                  store_backend_t **out) {
  pg_backend_t *b = calloc(1, sizeof(*b));
  if (b == NULL)
    return RT_ENOMEM;
  b->base.ops = &pg_ops;
  b->base.name = "postgres";
  b->base.world = w;
  b->watched_fd = -1;
  b->connect_timeout = cfg->op_timeout > 0 ? cfg->op_timeout : 10 * RT_NS_PER_S;
  b->uri = strdup(cfg->path);
  if (b->uri == NULL) {
    free(b);
    return RT_ENOMEM;
  }
  describe_uri(b->uri, b->desc, sizeof(b->desc));
  /* Defaults first: the URI's own settings come after and win. */
  b->keywords[0] = "connect_timeout";
  b->values[0] = "5";
  b->keywords[1] = "application_name";
  b->values[1] = "overcookied";
  b->keywords[2] = "dbname";
  b->values[2] = b->uri;
  b->keywords[3] = NULL;
  b->values[3] = NULL;
  /* At start the server serves nothing yet: a blocking connect is fine. */
  b->conn = PQconnectdbParams(b->keywords, b->values, 1);
  if (b->conn == NULL || PQstatus(b->conn) != CONNECTION_OK) {
    log_pq(b, RT_LOG_ERROR, "store.open",
           b->conn != NULL ? PQerrorMessage(b->conn) : "out of memory");
    pg_free(&b->base);
    return RT_ECONNREFUSED;
  }
  PQsetNoticeProcessor(b->conn, on_notice, b);
  int err = migrate(b);
  if (err == RT_OK && PQsetnonblocking(b->conn, 1) != 0)
    err = RT_EIO;
  if (err < 0) {
    pg_free(&b->base);
    return err;
  }
  b->state = PG_READY;
  rt_log(w, RT_LOG_INFO, "store.open", "backend=postgres %s", b->desc);
  *out = &b->base;
  return RT_OK;
}
