/* game_store.c: the Store actor (game_store.h) over a backend
 * (game_store_int.h): results in order, groups, retries, acknowledgements,
 * reads' JSON, and the externals that let a replay run without a database.
 */
#include "game_store.h"

#include "game_int.h"
#include "game_store_int.h"
#include "rt_assert.h"
#include "rt_tap.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STORE_MAILBOX_CAP 4096u
#define JSON_REPLY_MAX (256u * 1024)
#define ANSWER_MAX (JSON_REPLY_MAX + 1)

typedef struct pending {
  game_result_t result;
  rt_actor_id_t requester;
  uint64_t key;
} pending_t;

typedef struct read_req {
  game_query_t q;
  game_store_op_t op;
  char subject[RT_SUBJECT_MAX];
} read_req_t;

typedef enum busy { IDLE = 0, RECORDING, READING } busy_t;

struct game_store {
  rt_world_t *world;
  game_store_config_t cfg;
  store_backend_t *be;
  rt_port_t *port;
  rt_actor_id_t actor;
  pending_t *pending; /* ring of GAME_STORE_PENDING_MAX, oldest first */
  uint32_t pending_head, pending_count;
  read_req_t *reads; /* ring of GAME_STORE_READS_MAX */
  uint32_t reads_head, reads_count;
  game_result_t *group; /* the group in flight, in order */
  busy_t busy;
  uint32_t group_n;   /* RECORDING: the first group_n pending results */
  read_req_t reading; /* READING */
  rt_time_ns began_at;
  bool reads_turn;  /* alternate reads and groups when both wait */
  bool away;        /* the last failure said the database is away */
  uint32_t attempt; /* failures in a row */
  uint64_t retry_timer, kick_timer, timeout_timer;
  uint8_t *scratch; /* an answer's bytes for the recorder */
  game_store_stats_t stats;
};

bool game_store_is_postgres(const char *path) {
  return path != NULL && (strncmp(path, "postgres://", 11) == 0 ||
                          strncmp(path, "postgresql://", 13) == 0);
}

static const double latency_bounds_ms[GAME_STORE_LATENCY_BUCKETS] = {
    0.5, 1, 2, 5, 10, 25, 50, 100, 250, 1000, 5000, 0};

double game_store_latency_bound_ms(int i) {
  return i >= 0 && i < GAME_STORE_LATENCY_BUCKETS ? latency_bounds_ms[i] : 0;
}

void store_answer_clear(store_answer_t *ans) {
  free(ans->outcome);
  free(ans->games);
  free(ans->leaders);
  memset(ans, 0, sizeof(*ans));
}

/* ---- Reads' JSON --------------------------------------------------------- */

static char *leaderboard_json(const store_answer_t *ans) {
  cJSON *arr = cJSON_CreateArray();
  for (uint32_t i = 0; i < ans->nleaders; i++) {
    const store_leader_t *l = &ans->leaders[i];
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "name", l->name);
    cJSON_AddNumberToObject(e, "score", (double)l->score);
    cJSON_AddNumberToObject(e, "games", (double)l->games);
    cJSON_AddNumberToObject(e, "wins", (double)l->wins);
    cJSON_AddItemToArray(arr, e);
  }
  char *text = cJSON_PrintUnformatted(arr);
  cJSON_Delete(arr);
  return text;
}

/* One game as `me` saw it. After our fields come the original server's
 * names for what its frontend reads (PROTOCOL.md, HTTP endpoints):
 * winnerId (our winner), playerName (me), and playerPicture and
 * opponentPicture, "" since guests have none (the original's came from
 * Google). */
static cJSON *history_row(const game_result_t *r, const char *me) {
  bool i_am_p1 = strcmp(r->p1_id, me) == 0;
  cJSON *g = cJSON_CreateObject();
  cJSON_AddStringToObject(g, "gameId", r->room_id);
  cJSON_AddNumberToObject(g, "timestamp", (double)r->finished_at_s);
  cJSON_AddNumberToObject(g, "score", i_am_p1 ? r->p1_score : r->p2_score);
  cJSON_AddNumberToObject(g, "opponentScore",
                          i_am_p1 ? r->p2_score : r->p1_score);
  cJSON_AddStringToObject(g, "opponent", i_am_p1 ? r->p2_id : r->p1_id);
  cJSON_AddStringToObject(g, "opponentName", i_am_p1 ? r->p2_name : r->p1_name);
  cJSON_AddBoolToObject(g, "won", strcmp(r->winner, me) == 0);
  cJSON_AddStringToObject(g, "winner", r->winner);
  cJSON_AddStringToObject(g, "reason", r->reason);
  cJSON_AddStringToObject(g, "winnerId", r->winner);
  cJSON_AddStringToObject(g, "playerName", i_am_p1 ? r->p1_name : r->p2_name);
  cJSON_AddStringToObject(g, "playerPicture", "");
  cJSON_AddStringToObject(g, "opponentPicture", "");
  return g;
}

static char *history_json(const store_answer_t *ans, const char *me) {
  cJSON *games = cJSON_CreateArray();
  for (uint32_t i = 0; i < ans->ngames; i++)
    cJSON_AddItemToArray(games, history_row(&ans->games[i], me));
  cJSON *body = cJSON_CreateObject();
  cJSON_AddItemToObject(body, "games", games);
  cJSON_AddNumberToObject(body, "totalCount", (double)ans->total);
  char *text = cJSON_PrintUnformatted(body);
  cJSON_Delete(body);
  return text;
}

/* ---- Calls into the backend, as externals -------------------------------- */

/* An answer as the recorder keeps it: the flags byte, then the outcomes of
 * a group or a read's JSON. Returns the length, or 0 when it does not fit
 * (then the call counts as failed). */
static size_t encode_answer(game_store_t *st, int rc,
                            const store_answer_t *ans) {
  st->scratch[0] = ans->flags;
  if (rc != STORE_DONE)
    return 1;
  if (st->busy == RECORDING) {
    memcpy(st->scratch + 1, ans->outcome, st->group_n);
    return 1 + st->group_n;
  }
  char *text = st->reading.op == GAME_STORE_OP_LEADERBOARD
                   ? leaderboard_json(ans)
                   : history_json(ans, st->reading.subject);
  size_t len = text != NULL ? strlen(text) : 0;
  if (text == NULL || 1 + len > ANSWER_MAX) {
    cJSON_free(text);
    return 0;
  }
  memcpy(st->scratch + 1, text, len);
  cJSON_free(text);
  return 1 + len;
}

/* Call the backend (begin when req is set, else poll) unless a replay has
 * its answer: rc, and in *data and *len the answer's bytes (flags
 * first). */
static int64_t call_backend(game_store_t *st, uint32_t kind,
                            const store_request_t *req, uint32_t events,
                            const uint8_t **data, size_t *len) {
  int64_t rc;
  int got = rt_external_take(st->world, kind, &rc, data, len);
  if (got < 0)
    return STORE_E_OTHER; /* a replay that diverged: it stops anyway */
  if (got == 1) {
    if (*len < 1 ||
        (rc == STORE_DONE && st->busy == RECORDING && *len != 1 + st->group_n))
      return STORE_E_OTHER;
    return rc;
  }
  store_answer_t ans = {0};
  rc = req != NULL ? st->be->ops->begin(st->be, req, &ans)
                   : st->be->ops->poll(st->be, events, &ans);
  size_t n = encode_answer(st, (int)rc, &ans);
  if (n == 0) {
    rc = STORE_E_OTHER;
    n = 1;
  }
  store_answer_clear(&ans);
  rt_external_put(st->world, kind, rc, st->scratch, n);
  *data = st->scratch;
  *len = n;
  return rc;
}

/* ---- Replies ------------------------------------------------------------- */

static void reply_recorded(game_store_t *st, rt_actor_id_t to, uint64_t key) {
  rt_msg_t m = RT_MSG_OF(GAME_TAG_STORE_RECORDED, &key);
  /* The Room's mailbox is bounded; a Room that is gone no longer cares. */
  (void)rt_send(st->world, to, &m);
}

static void reply_text(game_store_t *st, const game_query_t *q, int status,
                       const char *text, size_t len) {
  rt_buf_t *buf = rt_buf_copy(text, len);
  rt_http_reply_t r = {.call_id = q->call_id, .status = status};
  rt_msg_t m = RT_MSG_OF(RT_TAG_HTTP_REPLY, &r);
  m.buf = buf;
  if (rt_send(st->world, q->reply_to, &m) < 0)
    rt_buf_unref(buf);
}

static void reply_unavailable(game_store_t *st, const game_query_t *q) {
  st->stats.reads_failed++;
  static const char body[] = "{\"error\":\"storage unavailable, try again\"}";
  reply_text(st, q, 503, body, sizeof(body) - 1);
}

/* ---- Errors and news ----------------------------------------------------- */

static void count_error(game_store_t *st, int64_t rc) {
  switch (rc) {
  case STORE_E_BUSY: st->stats.errors_busy++; break;
  case STORE_E_FULL: st->stats.errors_full++; break;
  case STORE_E_IO: st->stats.errors_io++; break;
  case STORE_E_UNAVAILABLE: st->stats.errors_unavailable++; break;
  case STORE_E_TIMEOUT: st->stats.errors_timeout++; break;
  default: st->stats.errors_other++; break;
  }
}

static void note_flags(game_store_t *st, uint8_t flags) {
  if (flags & STORE_FLAG_CONNECTED) {
    st->stats.reconnects++;
    rt_log(st->world, RT_LOG_INFO, "store.connected", "backend=%s",
           st->be->name);
  }
  if (flags & STORE_FLAG_LOST)
    rt_log(st->world, RT_LOG_WARN, "store.connection_lost", "backend=%s",
           st->be->name);
}

/* ---- Running requests ---------------------------------------------------- */

static void kick_soon(game_store_t *st) {
  if (st->kick_timer == 0 &&
      rt_timer_start(st->world, st->actor, 0, 0, GAME_TAG_TIMER_STORE_KICK, 0,
                     &st->kick_timer) < 0)
    st->kick_timer = 0;
}

static void cancel(game_store_t *st, uint64_t *timer) {
  if (*timer != 0)
    rt_timer_cancel(st->world, *timer);
  *timer = 0;
}

/* While the database is away, reads answer 503 at once. */
static void fail_waiting_reads(game_store_t *st) {
  while (st->reads_count > 0) {
    reply_unavailable(st, &st->reads[st->reads_head].q);
    st->reads_head = (st->reads_head + 1) % GAME_STORE_READS_MAX;
    st->reads_count--;
  }
}

static void back_off(game_store_t *st, int64_t rc) {
  st->away = rc == STORE_E_UNAVAILABLE || rc == STORE_E_TIMEOUT;
  st->attempt++;
  rt_time_ns delay = st->cfg.retry_min;
  for (uint32_t i = 1; i < st->attempt && delay < st->cfg.retry_max; i++)
    delay *= 2;
  if (delay > st->cfg.retry_max)
    delay = st->cfg.retry_max;
  st->stats.retries++;
  if (rt_timer_start(st->world, st->actor, delay, 0, GAME_TAG_TIMER_STORE_RETRY,
                     0, &st->retry_timer) < 0)
    st->retry_timer = 0;
  if (st->away)
    fail_waiting_reads(st);
}

static void record_latency(game_store_t *st) {
  rt_time_ns took = rt_now(st->world) - st->began_at;
  int i = 0;
  while (i < GAME_STORE_LATENCY_BUCKETS - 1 &&
         (double)took > latency_bounds_ms[i] * (double)RT_NS_PER_MS)
    i++;
  st->stats.latency_count[i]++;
  st->stats.latency_sum_ns += (uint64_t)took;
}

/* The group in flight committed: acknowledge each game (Guarantee (1)). */
static void group_done(game_store_t *st, const uint8_t *outcome) {
  for (uint32_t i = 0; i < st->group_n; i++) {
    pending_t *p = &st->pending[st->pending_head];
    if (outcome[i] == 1)
      st->stats.recorded++;
    else
      st->stats.duplicates++;
    reply_recorded(st, p->requester, p->key);
    st->pending_head = (st->pending_head + 1) % GAME_STORE_PENDING_MAX;
    st->pending_count--;
  }
  st->stats.commits++;
  record_latency(st);
}

/* A request's end: its answer (rc STORE_DONE) or its error. */
static void finish(game_store_t *st, int64_t rc, const uint8_t *data,
                   size_t len) {
  busy_t was = st->busy;
  st->busy = IDLE;
  cancel(st, &st->timeout_timer);
  if (rc == STORE_DONE) {
    st->attempt = 0;
    st->away = false;
    if (was == RECORDING)
      group_done(st, data + 1);
    else
      reply_text(st, &st->reading.q, 200, (const char *)data + 1, len - 1);
    kick_soon(st); /* the next request after the others' turns */
    return;
  }
  count_error(st, rc);
  rt_log(st->world, RT_LOG_WARN, "store.error",
         "backend=%s request=%s kind=%" PRId64 " pending=%u", st->be->name,
         was == RECORDING ? "record" : "read", -rc, st->pending_count);
  if (was == READING) {
    reply_unavailable(st, &st->reading.q);
    /* A read that failed is answered, not retried; only a database that
     * is away makes the Store back off (and answer reads 503 at once). */
    if (rc == STORE_E_UNAVAILABLE || rc == STORE_E_TIMEOUT)
      back_off(st, rc);
    else
      kick_soon(st);
    return;
  }
  back_off(st, rc); /* the group stays first, to be sent again */
}

static void start(game_store_t *st, const store_request_t *req) {
  st->began_at = rt_now(st->world);
  const uint8_t *data;
  size_t len;
  int64_t rc = call_backend(st, GAME_EXT_STORE_BEGIN, req, 0, &data, &len);
  note_flags(st, data[0]);
  if (rc == STORE_QUEUED) {
    if (rt_timer_start(st->world, st->actor, st->cfg.op_timeout, 0,
                       GAME_TAG_TIMER_STORE_TIMEOUT, 0, &st->timeout_timer) < 0)
      st->timeout_timer = 0;
    return;
  }
  finish(st, rc, data, len);
}

static void start_group(game_store_t *st) {
  uint32_t n = st->pending_count < GAME_STORE_GROUP_MAX ? st->pending_count
                                                        : GAME_STORE_GROUP_MAX;
  for (uint32_t i = 0; i < n; i++)
    st->group[i] =
        st->pending[(st->pending_head + i) % GAME_STORE_PENDING_MAX].result;
  st->busy = RECORDING;
  st->group_n = n;
  store_request_t req = {
      .op = GAME_STORE_OP_RECORD, .games = st->group, .n = n};
  start(st, &req);
}

static void start_read(game_store_t *st) {
  st->reading = st->reads[st->reads_head];
  st->reads_head = (st->reads_head + 1) % GAME_STORE_READS_MAX;
  st->reads_count--;
  st->busy = READING;
  store_request_t req = {.op = st->reading.op,
                         .limit = st->reading.q.limit,
                         .subject = st->reading.subject};
  start(st, &req);
}

/* Start the next request when none is in flight: a group of every result
 * waiting (up to GROUP_MAX), or a read, in turn. While a group backs off
 * after an error, reads still run (a busy or full database may still
 * answer them), unless the database is away. */
static void kick(game_store_t *st) {
  if (st->busy != IDLE)
    return;
  bool groups = st->pending_count > 0 && st->retry_timer == 0;
  bool reads = st->reads_count > 0 && !(st->away && st->retry_timer != 0);
  bool read = reads && (!groups || st->reads_turn);
  if (reads && groups)
    st->reads_turn = !st->reads_turn;
  if (read)
    start_read(st);
  else if (groups)
    start_group(st);
}

/* The port was raised: the backend has news for the request in flight or
 * for its connection. */
static void on_port(game_store_t *st, const rt_msg_t *msg) {
  rt_stream_event_t ev;
  RT_MSG_GET(msg, rt_stream_event_t, &ev);
  const uint8_t *data;
  size_t len;
  int64_t rc =
      call_backend(st, GAME_EXT_STORE_POLL, NULL, ev.events, &data, &len);
  note_flags(st, data[0]);
  if (rc == STORE_QUEUED)
    return;
  if (st->busy == IDLE) {
    if (rc < 0) /* lost while idle: the next request reconnects */
      count_error(st, rc);
    return;
  }
  finish(st, rc, data, len);
}

/* The request in flight took too long: drop the connection (the backend
 * makes a new one on the next request) and retry. */
static void on_timeout(game_store_t *st) {
  st->timeout_timer = 0;
  if (st->busy == IDLE)
    return;
  int64_t rc;
  const uint8_t *data;
  size_t len;
  int got =
      rt_external_take(st->world, GAME_EXT_STORE_ABANDON, &rc, &data, &len);
  if (got == 0) {
    st->be->ops->abandon(st->be);
    rt_external_put(st->world, GAME_EXT_STORE_ABANDON, 0, NULL, 0);
  }
  uint8_t flags = STORE_FLAG_LOST;
  finish(st, STORE_E_TIMEOUT, &flags, 1);
}

/* ---- Messages ------------------------------------------------------------ */

/* Whether the same requester already waits for this room under this key:
 * a Room resends its result every few seconds until acknowledged, and
 * through a long outage every resend would otherwise queue (and later
 * commit as a duplicate) again. */
static bool already_pending(const game_store_t *st, const game_result_t *r,
                            rt_actor_id_t from, uint64_t key) {
  for (uint32_t i = 0; i < st->pending_count; i++) {
    const pending_t *p =
        &st->pending[(st->pending_head + i) % GAME_STORE_PENDING_MAX];
    if (p->requester == from && p->key == key &&
        strncmp(p->result.room_id, r->room_id, sizeof(r->room_id)) == 0)
      return true;
  }
  return false;
}

static void on_record(game_store_t *st, const rt_msg_t *msg) {
  if (msg->buf == NULL || msg->buf->len != sizeof(game_result_t))
    return;
  uint64_t key;
  RT_MSG_GET(msg, uint64_t, &key);
  if (already_pending(st, (const game_result_t *)msg->buf->data, msg->from,
                      key)) {
    st->stats.resends_merged++;
    return;
  }
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
  p->key = key;
  st->pending_count++;
}

static void on_read(game_store_t *st, const rt_msg_t *msg, game_store_op_t op) {
  read_req_t rq = {.op = op};
  RT_MSG_GET(msg, game_query_t, &rq.q);
  if (op == GAME_STORE_OP_HISTORY) {
    size_t len = msg->buf != NULL ? msg->buf->len : 0;
    if (len == 0 || len >= sizeof(rq.subject))
      return;
    memcpy(rq.subject, msg->buf->data, len);
  }
  if ((st->away && st->retry_timer != 0) ||
      st->reads_count == GAME_STORE_READS_MAX) {
    reply_unavailable(st, &rq.q); /* away, or too many waiting: fail fast */
    return;
  }
  st->reads[(st->reads_head + st->reads_count) % GAME_STORE_READS_MAX] = rq;
  st->reads_count++;
  kick(st); /* after any results before it: they are pending already */
}

/* ---- The actor ----------------------------------------------------------- */

static void store_behaviour(rt_actor_t *self, const rt_msg_t *msg) {
  game_store_t *st = rt_state(self);
  switch (msg->tag) {
  case GAME_TAG_STORE_RECORD:
    on_record(st, msg);
    /* Results still in the mailbox join this one's group: the last of
     * them starts it (rooms that end in one instant commit together). */
    if (rt_self_pending(self) == 0)
      kick(st);
    break;
  case GAME_TAG_STORE_LEADERBOARD:
    on_read(st, msg, GAME_STORE_OP_LEADERBOARD);
    break;
  case GAME_TAG_STORE_HISTORY: on_read(st, msg, GAME_STORE_OP_HISTORY); break;
  case RT_TAG_PORT: on_port(st, msg); break;
  case GAME_TAG_TIMER_STORE_KICK:
    st->kick_timer = 0;
    kick(st);
    break;
  case GAME_TAG_TIMER_STORE_RETRY:
    st->retry_timer = 0;
    kick(st);
    break;
  case GAME_TAG_TIMER_STORE_TIMEOUT: on_timeout(st); break;
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
  rt_port_close(st->port); /* before the backend closes its socket */
  st->port = NULL;
  if (st->be != NULL)
    st->be->port = NULL;
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
  if (st->cfg.op_timeout <= 0)
    st->cfg.op_timeout = 10 * RT_NS_PER_S;
  st->pending = calloc(GAME_STORE_PENDING_MAX, sizeof(*st->pending));
  st->reads = calloc(GAME_STORE_READS_MAX, sizeof(*st->reads));
  st->group = calloc(GAME_STORE_GROUP_MAX, sizeof(*st->group));
  st->scratch =
      malloc(ANSWER_MAX > 1 + GAME_STORE_GROUP_MAX ? ANSWER_MAX
                                                   : 1 + GAME_STORE_GROUP_MAX);
  int err = RT_ENOMEM;
  if (st->pending == NULL || st->reads == NULL || st->group == NULL ||
      st->scratch == NULL)
    goto fail;
  err = game_store_is_postgres(cfg->path) ? store_pg_open(w, cfg, &st->be)
                                          : store_sqlite_open(w, cfg, &st->be);
  if (err < 0)
    goto fail;
  st->stats.backend = cfg->label != NULL ? cfg->label : st->be->name;
  rt_actor_spec_t spec = {.name = "store",
                          .behaviour = store_behaviour,
                          .on_stop = store_on_stop,
                          .state = st,
                          .mailbox_cap = STORE_MAILBOX_CAP,
                          .overflow = RT_OVERFLOW_REJECT};
  err = rt_spawn(w, &spec, &st->actor);
  if (err < 0)
    goto fail;
  err = rt_port_open(w, st->actor, &st->port);
  if (err < 0) {
    rt_stop(w, st->actor, RT_REASON_NORMAL);
    goto fail;
  }
  st->be->port = st->port;
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
  out->reads_waiting = st->reads_count;
  out->in_flight = st->busy != IDLE;
}

void game_store_free(game_store_t *st) {
  if (st == NULL)
    return;
  if (st->be != NULL)
    st->be->ops->free(st->be);
  free(st->pending);
  free(st->reads);
  free(st->group);
  free(st->scratch);
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

int game_store_find_game(const game_store_t *st, const char *room_id,
                         game_result_t *out) {
  memset(out, 0, sizeof(*out));
  return st->be->ops->find_game(st->be, room_id, out);
}

int game_store_latest_game_of(const game_store_t *st, const char *id,
                              game_result_t *out) {
  return st->be->ops->latest_game_of(st->be, id, out);
}

int64_t game_store_count_games(const game_store_t *st) {
  return st->be->ops->count_games(st->be);
}
