/* sim_bot.c: a simulated player (see sim_bot.h).
 *
 * The bot is one actor owning at most two streams at a time: an HTTP
 * connection (the login, or a GET a test asked for) and a WebSocket
 * connection. Stream events are told apart by stream id.
 *
 *   LOGGING_IN --http_finish()--> CONNECTING --ws_mark_open()--> OPEN
 *       |                            |                            |
 *       +-----login refused----------+--upgrade refused--> FAILED  |
 *                                                                 v
 *                  CONNECTING <--ws_connect()-- DISCONNECTED <--ws_end()
 *
 * Invariants:
 *  (1) ws_stream and wsc are both set or both NULL; likewise http and an
 *      HTTP purpose other than PURPOSE_NONE.
 *  (2) Frames given before the WebSocket opens wait in `pending` (at most
 *      SIM_BOT_PENDING_MAX); any other frame that cannot go out is counted
 *      in frames_unsent, never silently lost.
 *  (3) At most records_max records are kept; the rest are counted.
 *  (4) Every loop is bounded: reads per turn, clicks per command, records.
 */
#include "sim_bot.h"
#include "sim_int.h"

#include "net_http_client.h"

#include "net_ws_client.h"
#include "rt_assert.h"
#include "rt_json.h"
#include "rt_parse.h"
#include "rt_stream.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
  TAG_START = RT_TAG_USER, /* log in or connect */
  TAG_TEXT,                /* buf: one frame */
  TAG_CLICKS,              /* bot_clicks_t */
  TAG_DISCONNECT,          /* u32: sim_bot_close_how_t */
  TAG_RECONNECT,
  TAG_READING,  /* u32: 0 or 1 */
  TAG_HTTP_GET, /* buf: the path; u32: bearer */
  TAG_RESET_IN, /* u64: bytes */
};

typedef struct bot_clicks {
  uint32_t n;
  uint32_t pad_;
  int64_t first_seq;
} bot_clicks_t;

typedef enum { PURPOSE_NONE = 0, PURPOSE_LOGIN, PURPOSE_GET } http_purpose_t;

#define HTTP_REQUEST_MAX (SIM_BOT_TOKEN_MAX + 1024u)
#define HTTP_READS_PER_TURN 16
#define HOST_MAX 128u
#define ORIGIN_MAX 256u
#define CLICK_TEXT_MAX 96u
#define OPP_TEXT_MAX 64u
#define OPP_NUMBERS_FROM offsetof(sim_bot_record_t, code)
#define OPP_NUMBERS_LEN                                                        \
  (offsetof(sim_bot_record_t, role) - offsetof(sim_bot_record_t, code))

struct sim_bot {
  /* What a turn with a frame touches comes first, in a few lines: a run
   * visits thousands of bots in turn, and the cold buffers below (login,
   * names, the HTTP request) spread the hot fields over three pages. */
  sim_world_t *sw;
  rt_world_t *w;
  rt_actor_id_t id;
  bool alive;
  bool reading;
  sim_bot_state_t state;
  /* WebSocket: Invariant (1) */
  rt_stream_t *ws_stream;
  net_wsc_t *wsc;
  uint32_t conn_no;
  uint16_t close_code;
  uint16_t close_started; /* the code of a close the bot sent, else 0 */
  int ws_status;
  /* Invariant (2) */
  uint32_t pending_head, pending_count;
  uint64_t frames_sent, frames_unsent;
  /* Invariant (3) */
  sim_bot_record_t *records;
  uint32_t records_len, records_cap, records_max;
  uint32_t records_inited; /* slots [0, this) were cleared once */
  void (*on_record)(void *ctx, uint64_t tag);
  void *on_record_ctx;
  uint64_t on_record_tag;
  uint64_t records_dropped;
  rt_rng_t rng; /* WebSocket masks, among others */
  rt_buf_t *pending[SIM_BOT_PENDING_MAX];
  uint32_t unkept_kinds; /* sim_bot_config_t */
  net_ws_pool_t *ws_pool; /* sim_bot_config_t */
  uint64_t unkept;       /* messages of those kinds read */
  /* The last OPPONENT_CLICK read (see bot_on_text): its text, and its
   * record's numbers (the bytes from `code` up to the strings). */
  uint32_t opp_len; /* 0: none yet */
  uint8_t opp_text[OPP_TEXT_MAX];
  uint8_t opp_numbers[OPP_NUMBERS_LEN];
  /* HTTP: Invariant (1) */
  rt_stream_t *http;
  uint8_t http_purpose;
  net_httpc_t *httpc; /* the last exchange's response (allocated on use) */
  uint32_t http_req_len, http_req_off;
  bool http_busy; /* a GET was asked for and is not answered yet */
  bool http_answered;
  int http_status;
  uint16_t port;
  sim_link_config_t up, down;
  bool has_origin;
  bool has_token;
  char name[RT_NAME_MAX];
  char user_id[RT_SUBJECT_MAX];
  char host[HOST_MAX];
  char origin[ORIGIN_MAX];
  char token[SIM_BOT_TOKEN_MAX];
  char http_req[HTTP_REQUEST_MAX];
};

static const char kind_names[SIM_BOT_KIND_COUNT_][16] = {
    [0] = "NONE",
    [SIM_BOT_QUEUED] = "QUEUED",
    [SIM_BOT_GAME_START] = "GAME_START",
    [SIM_BOT_UPDATE_TICK] = "UPDATE(tick)",
    [SIM_BOT_UPDATE_CLICK] = "UPDATE(click)",
    [SIM_BOT_UPDATE_CLAIM] = "UPDATE(claim)",
    [SIM_BOT_OPPONENT_CLICK] = "OPPONENT_CLICK",
    [SIM_BOT_COOKIE_SPAWN] = "COOKIE_SPAWN",
    [SIM_BOT_GAME_OVER] = "GAME_OVER",
    [SIM_BOT_ERROR] = "ERROR",
    [SIM_BOT_UNKNOWN] = "UNKNOWN",
    [SIM_BOT_OPENED] = "(opened)",
    [SIM_BOT_CLOSED] = "(closed)",
    [SIM_BOT_REFUSED] = "(refused)",
    [SIM_BOT_MOVE] = "MOVE",
};

const char *sim_bot_kind_name(sim_bot_kind_t kind) {
  return kind > 0 && kind < SIM_BOT_KIND_COUNT_ ? kind_names[kind] : "?";
}

/* ---- Records: Invariant (3) ---------------------------------------------- */

/* A run reads and clears a bot's records every slice, a few at a time:
 * the array starts small (a record is 424 bytes, and 64 of them were a
 * quarter of a 1,000-player run's heap) and doubles when a test keeps
 * them. A record's numbers are its first 64 bytes, one cache line; its
 * strings (the other six lines) are cleared only in a slot that held one
 * since, or that was never used: clearing all 424 bytes of every record
 * was 40% of a cluster run's last-level write misses (cachegrind). */
#define RECORDS_FIRST 8u

static sim_bot_record_t *record_new(sim_bot_t *b, sim_bot_kind_t kind) {
  if (b->records_len == b->records_max) {
    b->records_dropped++;
    return NULL;
  }
  if (b->records_len == b->records_cap) {
    uint32_t cap = b->records_cap == 0 ? RECORDS_FIRST : b->records_cap * 2;
    if (cap > b->records_max)
      cap = b->records_max;
    sim_bot_record_t *grown = realloc(b->records, (size_t)cap * sizeof(*grown));
    if (grown == NULL) {
      b->records_dropped++;
      return NULL;
    }
    b->records = grown;
    b->records_cap = cap;
  }
  uint32_t at = b->records_len++;
  sim_bot_record_t *r = &b->records[at];
  if (at >= b->records_inited || r->strs) {
    memset(r, 0, sizeof(*r));
    if (at >= b->records_inited)
      b->records_inited = at + 1;
  } else {
    memset(r, 0, offsetof(sim_bot_record_t, role));
#ifndef NDEBUG /* the Debug (sanitizer) build checks the claim above */
    static const sim_bot_record_t empty;
    size_t strings = offsetof(sim_bot_record_t, role);
    RT_ASSERT(memcmp((const char *)r + strings, (const char *)&empty + strings,
                     sizeof(*r) - strings) == 0);
#endif
  }
  r->at = rt_now(b->w);
  r->conn = b->conn_no;
  r->kind = (uint16_t)kind;
  r->time_remaining = -1;
  if (b->on_record != NULL)
    b->on_record(b->on_record_ctx, b->on_record_tag);
  return r;
}

static void record_event(sim_bot_t *b, sim_bot_kind_t kind, int code) {
  sim_bot_record_t *r = record_new(b, kind);
  if (r != NULL)
    r->code = (uint16_t)(code >= 0 && code <= UINT16_MAX ? code : 0);
  rt_log(b->w, RT_LOG_DEBUG, "bot.event",
         "bot=%" PRIu64 " conn=%u event=%s code=%d", b->id, b->conn_no,
         sim_bot_kind_name(kind), code);
}

/* ---- Server messages ----------------------------------------------------- */

/* The payload fields a record keeps. Each slot holds the first member of
 * that name, which is what cJSON_GetObjectItemCaseSensitive would find: one
 * pass over the members instead of a scan per field (those scans were a
 * tenth of a simulated run's instructions). */
enum {
  F_P1_SCORE,
  F_P2_SCORE,
  F_TIME_REMAINING,
  F_COUNT,
  F_SEQ,
  F_X,
  F_Y,
  F_RESUMED,
  F_ROLE,
  F_ROOM_ID,
  F_OPPONENT,
  F_WINNER,
  F_CLAIMED_BY,
  F_REASON,
  F_CODE,
  F_URL,
  F_COUNT_
};

/* One value as a record reads it, from either reader below. */
typedef enum { V_NONE = 0, V_NUMBER, V_STRING, V_TRUE, V_OTHER } value_kind_t;

typedef struct value {
  value_kind_t kind;
  double num;      /* V_NUMBER */
  const char *str; /* V_STRING: len bytes, no NUL among them */
  size_t len;
} value_t;

/* A server message as a record reads it: "type" (the first member of that
 * name, when it is a string) and the payload's fields. */
typedef struct message {
  value_t type;
  bool payload; /* "payload" is an object */
  value_t f[F_COUNT_];
} message_t;

static int field_of(const char *k, size_t n) {
  switch (n > 0 ? k[0] : '\0') {
  case 'p':
    return rt_json_is(k, n, "p1Score")   ? F_P1_SCORE
           : rt_json_is(k, n, "p2Score") ? F_P2_SCORE
                                         : -1;
  case 't': return rt_json_is(k, n, "timeRemaining") ? F_TIME_REMAINING : -1;
  case 'c':
    return rt_json_is(k, n, "count")  ? F_COUNT
           : rt_json_is(k, n, "code") ? F_CODE
                                      : -1;
  case 's': return rt_json_is(k, n, "seq") ? F_SEQ : -1;
  case 'x': return n == 1 ? F_X : -1;
  case 'y': return n == 1 ? F_Y : -1;
  case 'r':
    return rt_json_is(k, n, "resumed")  ? F_RESUMED
           : rt_json_is(k, n, "role")   ? F_ROLE
           : rt_json_is(k, n, "roomId") ? F_ROOM_ID
           : rt_json_is(k, n, "reason") ? F_REASON
                                        : -1;
  case 'o': return rt_json_is(k, n, "opponent") ? F_OPPONENT : -1;
  case 'w': return rt_json_is(k, n, "winner") ? F_WINNER : -1;
  case 'g':
    return rt_json_is(k, n, "goldenCookieClaimedBy") ? F_CLAIMED_BY : -1;
  case 'u': return rt_json_is(k, n, "url") ? F_URL : -1;
  default: return -1;
  }
}

/* ---- cJSON's reading: every message rt_json's does not take ---- */

static value_t value_of_cjson(const cJSON *v) {
  value_t out = {.kind = V_NONE};
  if (v == NULL)
    return out;
  out.kind = V_OTHER;
  if (cJSON_IsNumber(v)) {
    out.kind = V_NUMBER;
    out.num = v->valuedouble;
  } else if (cJSON_IsString(v)) {
    out.kind = V_STRING;
    out.str = v->valuestring;
    out.len = strlen(v->valuestring);
  } else if (cJSON_IsTrue(v)) {
    out.kind = V_TRUE;
  }
  return out;
}

/* m's strings point into the tree returned, which the caller frees after
 * reading them (NULL: the text is no JSON cJSON takes; m says so). A
 * payload that is not an object has no members by name (cJSON finds none
 * either). Bounded by the message, which the WebSocket limit bounds. */
static cJSON *read_cjson(const char *js, size_t len, message_t *m) {
  memset(m, 0, sizeof(*m));
  cJSON *root = cJSON_ParseWithLength(js, len);
  m->type = value_of_cjson(cJSON_GetObjectItemCaseSensitive(root, "type"));
  const cJSON *p = cJSON_GetObjectItemCaseSensitive(root, "payload");
  if (!cJSON_IsObject(p))
    return root;
  m->payload = true;
  const cJSON *member;
  cJSON_ArrayForEach(member, p) {
    if (member->string == NULL)
      continue;
    int i = field_of(member->string, strlen(member->string));
    if (i >= 0 && m->f[i].kind == V_NONE)
      m->f[i] = value_of_cjson(member);
  }
  return root;
}

/* ---- rt_json's reading: the server's messages, without a tree ----
 *
 * cJSON's reading of every message was over a quarter of a cluster run's
 * instructions (a tree with a malloc per member and string, strtod for
 * every number). rt_json reads the server's messages in place, and the
 * texts it does not take exactly as cJSON would go to read_cjson.
 * tests/sim/test_sim_bot_read.c holds the two readers to the same records
 * for the server's messages and a million mangled ones. */

static value_t value_of_json(const rt_json_value_t *v) {
  switch (v->kind) {
  case RT_JSON_NONE: return (value_t){.kind = V_NONE};
  case RT_JSON_NUMBER: return (value_t){.kind = V_NUMBER, .num = v->num};
  case RT_JSON_STRING:
    return (value_t){.kind = V_STRING, .str = v->str, .len = v->len};
  case RT_JSON_TRUE: return (value_t){.kind = V_TRUE};
  default: return (value_t){.kind = V_OTHER};
  }
}

/* m from js, or false: the text is for read_cjson. What follows the object
 * is not read, as cJSON_ParseWithLength does not read it. */
static bool read_json(const char *js, size_t len, message_t *m) {
  memset(m, 0, sizeof(*m));
  rt_json_t j;
  if (!rt_json_read(&j, js, len, RT_JSON_REST_ANY))
    return false;
  rt_json_value_t root = rt_json_root(&j);
  rt_json_value_t type = rt_json_get(&j, &root, "type");
  m->type = value_of_json(&type);
  rt_json_value_t p = rt_json_get(&j, &root, "payload");
  if (p.kind != RT_JSON_OBJECT)
    return true;
  m->payload = true;
  for (int i = rt_json_first(&j, &p); i >= 0; i = rt_json_next(&j, &p, i)) {
    size_t name_len;
    const char *name = rt_json_name(&j, i, &name_len);
    int f = field_of(name, name_len);
    if (f >= 0 && m->f[f].kind == V_NONE) {
      rt_json_value_t v = rt_json_value(&j, i);
      m->f[f] = value_of_json(&v);
    }
  }
  return true;
}

/* ---- From a message to a record ---- */

static sim_bot_kind_t classify(const message_t *m) {
  static const struct {
    char name[16];
    sim_bot_kind_t kind;
  } types[] = {
      {"QUEUED", SIM_BOT_QUEUED},
      {"GAME_START", SIM_BOT_GAME_START},
      {"OPPONENT_CLICK", SIM_BOT_OPPONENT_CLICK},
      {"COOKIE_SPAWN", SIM_BOT_COOKIE_SPAWN},
      {"GAME_OVER", SIM_BOT_GAME_OVER},
      {"ERROR", SIM_BOT_ERROR},
      {"MOVE", SIM_BOT_MOVE},
  };
  if (m->type.kind != V_STRING)
    return SIM_BOT_UNKNOWN;
  const char *type = m->type.str;
  size_t n = m->type.len;
  if (rt_json_is(type, n, "UPDATE")) {
    if (m->f[F_CLAIMED_BY].kind != V_NONE)
      return SIM_BOT_UPDATE_CLAIM;
    if (m->f[F_TIME_REMAINING].kind != V_NONE)
      return SIM_BOT_UPDATE_TICK;
    return SIM_BOT_UPDATE_CLICK;
  }
  for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
    if (rt_json_is(type, n, types[i].name))
      return types[i].kind;
  return SIM_BOT_UNKNOWN;
}

static void get_int(const value_t *v, int32_t *out) {
  if (v->kind == V_NUMBER)
    *out = (int32_t)v->num;
}

/* Whether it wrote one: at most cap - 1 bytes and a NUL. */
static bool get_str(const value_t *v, char *out, size_t cap) {
  if (v->kind != V_STRING)
    return false;
  size_t n = v->len < cap - 1 ? v->len : cap - 1;
  memcpy(out, v->str, n);
  out[n] = '\0';
  return true;
}

static void fill_record(sim_bot_record_t *r, const value_t f[F_COUNT_]) {
  get_int(&f[F_P1_SCORE], &r->p1_score);
  get_int(&f[F_P2_SCORE], &r->p2_score);
  get_int(&f[F_TIME_REMAINING], &r->time_remaining);
  get_int(&f[F_COUNT], &r->count);
  if (f[F_SEQ].kind == V_NUMBER) {
    r->has_seq = true;
    r->seq = (int64_t)f[F_SEQ].num;
  }
  if (f[F_X].kind == V_NUMBER && f[F_Y].kind == V_NUMBER) {
    r->x = f[F_X].num;
    r->y = f[F_Y].num;
  }
  r->resumed = f[F_RESUMED].kind == V_TRUE;
  r->strs |= get_str(&f[F_ROLE], r->role, sizeof(r->role));
  r->strs |= get_str(&f[F_ROOM_ID], r->room_id, sizeof(r->room_id));
  r->strs |= get_str(&f[F_OPPONENT], r->opponent, sizeof(r->opponent));
  r->strs |= get_str(&f[F_WINNER], r->winner, sizeof(r->winner));
  r->strs |= get_str(&f[F_CLAIMED_BY], r->claimed_by, sizeof(r->claimed_by));
  r->strs |= get_str(&f[F_REASON], r->reason, sizeof(r->reason));
  r->strs |= get_str(&f[F_CODE], r->error_code, sizeof(r->error_code));
  r->strs |= get_str(&f[F_URL], r->url, sizeof(r->url));
}

/* The message in data, by rt_json's reader when it takes the text (allow_fast)
 * or cJSON's; returns cJSON's tree to free once m is read, or NULL. */
static cJSON *read_message(const uint8_t *data, size_t len, bool allow_fast,
                           message_t *m, bool *fast) {
  *fast = allow_fast && read_json((const char *)data, len, m);
  return *fast ? NULL : read_cjson((const char *)data, len, m);
}

sim_bot_kind_t sim__bot_read(const uint8_t *data, size_t len, bool allow_fast,
                             sim_bot_record_t *r, bool *fast) {
  message_t m;
  cJSON *root = read_message(data, len, allow_fast, &m, fast);
  sim_bot_kind_t kind = classify(&m);
  if (m.payload)
    fill_record(r, m.f);
  cJSON_Delete(root);
  return kind;
}

static void ws_mark_open(sim_bot_t *b) {
  if (b->state != SIM_BOT_CONNECTING)
    return;
  b->state = SIM_BOT_OPEN;
  b->ws_status = 101;
  record_event(b, SIM_BOT_OPENED, 101);
}

/* A message of a kind the driver does not keep is counted; true then. */
static bool unkept(sim_bot_t *b, sim_bot_kind_t kind) {
  if ((b->unkept_kinds & (1u << kind)) == 0)
    return false;
  b->unkept++;
  return true;
}

/* The OPPONENT_CLICK it reads again: a frame with the bytes of the last
 * OPPONENT_CLICK read gets that one's record. The server sends OPPONENT_CLICK
 * as one of two shared frames (game.c), a third of what a playing bot reads,
 * and reading a text is a function of its bytes alone. Only a record without
 * strings is kept (an OPPONENT_CLICK has none). The Debug build reads every
 * such frame again and checks that the two records agree. */
static bool opp_again(sim_bot_t *b, const uint8_t *data, size_t len) {
  if (b->opp_len == 0 || len != b->opp_len ||
      memcmp(data, b->opp_text, len) != 0)
    return false;
#ifndef NDEBUG
  sim_bot_record_t fresh;
  memset(&fresh, 0, sizeof(fresh));
  fresh.time_remaining = -1;
  bool fast;
  RT_ASSERT(sim__bot_read(data, len, true, &fresh, &fast) ==
            SIM_BOT_OPPONENT_CLICK);
  RT_ASSERT(memcmp((char *)&fresh + OPP_NUMBERS_FROM, b->opp_numbers,
                   OPP_NUMBERS_LEN) == 0);
#endif
  if (unkept(b, SIM_BOT_OPPONENT_CLICK))
    return true;
  sim_bot_record_t *r = record_new(b, SIM_BOT_OPPONENT_CLICK);
  if (r != NULL)
    memcpy((char *)r + OPP_NUMBERS_FROM, b->opp_numbers, OPP_NUMBERS_LEN);
  return true;
}

static void opp_keep(sim_bot_t *b, const uint8_t *data, size_t len,
                     const sim_bot_record_t *r) {
  if (len == 0 || len > OPP_TEXT_MAX || r->strs)
    return;
  memcpy(b->opp_text, data, len);
  memcpy(b->opp_numbers, (const char *)r + OPP_NUMBERS_FROM, OPP_NUMBERS_LEN);
  b->opp_len = (uint32_t)len;
}

/* net_ws callback: one complete text message from the server. */
static void bot_on_text(void *ud, const uint8_t *data, size_t len) {
  sim_bot_t *b = ud;
  ws_mark_open(b); /* frames may come with the 101, in the same read */
  if (opp_again(b, data, len))
    return;
  message_t m;
  bool fast;
  cJSON *root = read_message(data, len, true, &m, &fast);
  sim_bot_kind_t kind = classify(&m);
  sim_bot_record_t scratch; /* an OPPONENT_CLICK not kept: for opp_keep */
  sim_bot_record_t *r = NULL;
  if (!unkept(b, kind)) {
    r = record_new(b, kind);
  } else if (kind == SIM_BOT_OPPONENT_CLICK) {
    memset(&scratch, 0, sizeof(scratch));
    scratch.time_remaining = -1; /* as record_new leaves it */
    r = &scratch;
  }
  if (r != NULL && m.payload)
    fill_record(r, m.f);
  if (r != NULL && kind == SIM_BOT_OPPONENT_CLICK)
    opp_keep(b, data, len, r);
  cJSON_Delete(root);
}

static void pending_clear(sim_bot_t *b);

/* ---- The WebSocket ------------------------------------------------------- */

static void ws_teardown(sim_bot_t *b) {
  net_wsc_destroy(b->wsc);
  b->wsc = NULL;
  rt_stream_close(b->ws_stream);
  b->ws_stream = NULL;
}

/* The connection ended (EOF, reset, close handshake done, or we dropped
 * it): record the server's close code; for a close the bot started, whose
 * answer net_ws drains unparsed, the bot's own; else 1006. */
static void ws_end(sim_bot_t *b) {
  if (b->wsc == NULL)
    return;
  if (net_wsc_state(b->wsc) != NET_WSC_OPEN) {
    /* Never opened: the upgrade failed or was refused. */
    b->ws_status = net_wsc_http_status(b->wsc);
    record_event(b, SIM_BOT_REFUSED, b->ws_status);
    ws_teardown(b);
    b->state = SIM_BOT_FAILED;
    pending_clear(b);
    return;
  }
  uint16_t peer = net_ws_peer_close_code(net_wsc_ws(b->wsc));
  b->close_code = peer != 0               ? peer
                  : b->close_started != 0 ? b->close_started
                                          : 1006;
  record_event(b, SIM_BOT_CLOSED, b->close_code);
  ws_teardown(b);
  b->state = SIM_BOT_DISCONNECTED;
}

static void ws_flush(sim_bot_t *b) {
  net_ws_t *ws = b->wsc != NULL ? net_wsc_ws(b->wsc) : NULL;
  if (ws == NULL)
    return;
  if (net_ws_flush(ws) < 0 || net_ws_finished(ws))
    ws_end(b);
}

static void send_now(sim_bot_t *b, const uint8_t *data, size_t len) {
  net_ws_t *ws = b->wsc != NULL ? net_wsc_ws(b->wsc) : NULL;
  if (ws == NULL || net_ws_send_text(ws, data, len) < 0) {
    b->frames_unsent++;
    return;
  }
  b->frames_sent++;
}

static void flush_pending(sim_bot_t *b) {
  while (b->pending_count > 0) {
    rt_buf_t *buf = b->pending[b->pending_head];
    b->pending[b->pending_head] = NULL;
    b->pending_head = (b->pending_head + 1) % SIM_BOT_PENDING_MAX;
    b->pending_count--;
    send_now(b, buf->data, buf->len);
    rt_buf_unref(buf);
  }
}

static void pending_clear(sim_bot_t *b) {
  while (b->pending_count > 0) {
    rt_buf_unref(b->pending[b->pending_head]);
    b->pending[b->pending_head] = NULL;
    b->pending_head = (b->pending_head + 1) % SIM_BOT_PENDING_MAX;
    b->pending_count--;
    b->frames_unsent++;
  }
}

/* One frame from a command: now, later (Invariant (2)), or counted. */
static void send_text(sim_bot_t *b, const uint8_t *data, size_t len) {
  switch (b->state) {
  case SIM_BOT_OPEN: send_now(b, data, len); return;
  case SIM_BOT_LOGGING_IN:
  case SIM_BOT_CONNECTING:
    if (b->pending_count < SIM_BOT_PENDING_MAX) {
      rt_buf_t *buf = rt_buf_copy(data, len);
      if (buf != NULL) {
        b->pending[(b->pending_head + b->pending_count) % SIM_BOT_PENDING_MAX] =
            buf;
        b->pending_count++;
        return;
      }
    }
    b->frames_unsent++;
    return;
  case SIM_BOT_DISCONNECTED:
  case SIM_BOT_FAILED: b->frames_unsent++; return;
  }
}

/* Drive the WebSocket after a stream event (or a start). */
static void ws_drive(sim_bot_t *b) {
  if (b->wsc == NULL)
    return;
  bool was_open = net_wsc_state(b->wsc) == NET_WSC_OPEN;
  if (was_open && !b->reading) {
    ws_flush(b); /* a stalled reader still writes */
    return;
  }
  int rc = net_wsc_on_event(b->wsc);
  net_wsc_state_t st = net_wsc_state(b->wsc);
  if (st == NET_WSC_REFUSED || st == NET_WSC_FAILED) {
    ws_end(b);
    return;
  }
  if (st == NET_WSC_OPEN) {
    ws_mark_open(b);
    flush_pending(b);
  }
  if (rc < 0) {
    ws_end(b);
    return;
  }
  if (st == NET_WSC_OPEN)
    ws_flush(b);
}

static void ws_connect(sim_bot_t *b) {
  char target[SIM_BOT_TOKEN_MAX + 16];
  if (b->token[0] == '\0')
    snprintf(target, sizeof(target), "/ws");
  else
    snprintf(target, sizeof(target), "/ws?token=%s", b->token);
  b->conn_no++;
  b->close_code = 0;
  b->close_started = 0;
  b->ws_status = 0;
  b->state = SIM_BOT_CONNECTING;
  rt_stream_t *s = NULL;
  int err = sim_connect(b->sw, b->port, b->id, &b->up, &b->down, &s);
  if (err < 0) {
    record_event(b, SIM_BOT_REFUSED, 0);
    b->state = SIM_BOT_FAILED;
    pending_clear(b);
    return;
  }
  net_wsc_config_t wc = {.host = b->host,
                         .target = target,
                         .origin = b->has_origin ? b->origin : NULL,
                         .rng = &b->rng,
                         .pool = b->ws_pool};
  net_ws_callbacks_t cb = {.on_text = bot_on_text};
  err = net_wsc_create(s, &wc, &cb, b, &b->wsc);
  if (err < 0) {
    rt_stream_close(s);
    record_event(b, SIM_BOT_REFUSED, 0);
    b->state = SIM_BOT_FAILED;
    pending_clear(b);
    return;
  }
  b->ws_stream = s;
  ws_drive(b); /* sends the upgrade request */
}

/* ---- HTTP ---------------------------------------------------------------- */

static void http_close(sim_bot_t *b) {
  rt_stream_close(b->http);
  b->http = NULL;
  b->http_purpose = PURPOSE_NONE;
}

/* The login answered: keep the token and open the WebSocket. */
static void login_done(sim_bot_t *b, int status) {
  cJSON *root = status == 200
                    ? cJSON_ParseWithLength(b->httpc->body, b->httpc->body_len)
                    : NULL;
  const cJSON *token = cJSON_GetObjectItemCaseSensitive(root, "token");
  const cJSON *user = cJSON_GetObjectItemCaseSensitive(root, "userId");
  bool ok = cJSON_IsString(token) && cJSON_IsString(user) &&
            strlen(token->valuestring) < sizeof(b->token) &&
            strlen(user->valuestring) < sizeof(b->user_id);
  if (ok) {
    snprintf(b->token, sizeof(b->token), "%s", token->valuestring);
    snprintf(b->user_id, sizeof(b->user_id), "%s", user->valuestring);
    b->has_token = true;
  }
  cJSON_Delete(root);
  if (!ok) {
    b->ws_status = status;
    record_event(b, SIM_BOT_REFUSED, status);
    b->state = SIM_BOT_FAILED;
    pending_clear(b);
    return;
  }
  rt_log(b->w, RT_LOG_DEBUG, "bot.login", "bot=%" PRIu64 " user=%s", b->id,
         b->user_id);
  ws_connect(b);
}

/* The answer is complete (ok) or the exchange failed (!ok). */
static void http_finish(sim_bot_t *b, bool ok) {
  int status = ok ? net_httpc_status(b->httpc) : 0;
  uint8_t purpose = b->http_purpose;
  http_close(b);
  b->http_status = status;
  if (purpose == PURPOSE_LOGIN) {
    login_done(b, status);
    return;
  }
  b->http_answered = true;
  b->http_busy = false;
}

static void http_drive(sim_bot_t *b) {
  while (b->http_req_off < b->http_req_len) {
    int64_t n = rt_stream_write(b->http, b->http_req + b->http_req_off,
                                b->http_req_len - b->http_req_off);
    if (n < 0) {
      http_finish(b, false);
      return;
    }
    if (n == 0)
      return; /* WRITABLE brings us back */
    b->http_req_off += (uint32_t)n;
  }
  for (int i = 0; i < HTTP_READS_PER_TURN; i++) {
    char buf[4096];
    int64_t n = rt_stream_read(b->http, buf, sizeof(buf));
    if (n == 0)
      return;
    if (n < 0) {
      /* EOF may end a body without a length; then the parser completes. */
      net_httpc_state_t st =
          n == RT_EOF ? net_httpc_eof(b->httpc) : NET_HTTPC_FAILED;
      http_finish(b, st == NET_HTTPC_DONE);
      return;
    }
    net_httpc_state_t st =
        net_httpc_feed(b->httpc, (const uint8_t *)buf, (size_t)n);
    if (st != NET_HTTPC_WAITING) {
      http_finish(b, st == NET_HTTPC_DONE);
      return;
    }
  }
  rt_stream_notify(b->http, RT_STREAM_READABLE); /* more, after others */
}

/* Send one request on a new connection. body may be NULL. */
static int http_start(sim_bot_t *b, http_purpose_t purpose, const char *method,
                      const char *path, const char *body, bool bearer) {
  if (b->http != NULL)
    return RT_EFULL;
  int n = net_httpc_request(b->http_req, sizeof(b->http_req), method, b->host,
                            path, bearer ? b->token : NULL, body, false);
  if (n < 0)
    return RT_EINVAL;
  if (b->httpc == NULL) {
    if ((b->httpc = malloc(sizeof(*b->httpc))) == NULL)
      return RT_ENOMEM;
    net_httpc_init(b->httpc);
  }
  int err = sim_connect(b->sw, b->port, b->id, &b->up, &b->down, &b->http);
  if (err < 0) {
    b->http = NULL;
    return err;
  }
  b->http_purpose = (uint8_t)purpose;
  b->http_req_len = (uint32_t)n;
  b->http_req_off = 0;
  b->http_status = 0;
  net_httpc_deinit(b->httpc); /* the last response's */
  net_httpc_init(b->httpc);
  http_drive(b);
  return RT_OK;
}

static void login_start(sim_bot_t *b) {
  cJSON *req = cJSON_CreateObject();
  cJSON_AddStringToObject(req, "name", b->name);
  char *body = cJSON_PrintUnformatted(req);
  cJSON_Delete(req);
  int err = body != NULL ? http_start(b, PURPOSE_LOGIN, "POST", "/api/login",
                                      body, false)
                         : RT_ENOMEM;
  cJSON_free(body);
  if (err < 0) {
    record_event(b, SIM_BOT_REFUSED, 0);
    b->state = SIM_BOT_FAILED;
    pending_clear(b);
  }
}

/* ---- Commands ------------------------------------------------------------ */

static void do_clicks(sim_bot_t *b, const rt_msg_t *msg) {
  bot_clicks_t c;
  RT_MSG_GET(msg, bot_clicks_t, &c);
  RT_WASSERT(b->w, c.n <= SIM_BOT_CLICKS_MAX);
  static const char head[] = "{\"type\":\"CLICK\",\"payload\":{\"count\":1";
  for (uint32_t i = 0; i < c.n; i++) {
    char text[CLICK_TEXT_MAX];
    size_t n = sizeof(head) - 1;
    memcpy(text, head, n);
    if (c.first_seq >= 0) {
      memcpy(text + n, ",\"seq\":", 7);
      n += 7;
      n += rt_i64_text(c.first_seq + (int64_t)i, text + n);
    }
    memcpy(text + n, "}}", 2);
    send_text(b, (const uint8_t *)text, n + 2);
  }
}

static void do_disconnect(sim_bot_t *b, uint32_t how) {
  if (b->wsc == NULL)
    return;
  net_ws_t *ws = net_wsc_ws(b->wsc);
  if (how == SIM_BOT_CLOSE_HANDSHAKE && ws != NULL) {
    net_ws_close(ws, 1000, "bye");
    b->close_started = 1000;
    ws_flush(b); /* the server's answer ends it (ws_drive) */
    return;
  }
  if (how == SIM_BOT_CLOSE_RESET)
    sim_stream_reset(b->ws_stream);
  pending_clear(b); /* frames for a connection that never opened */
  b->close_code = 1006;
  record_event(b, SIM_BOT_CLOSED, 1006);
  ws_teardown(b);
  b->state = SIM_BOT_DISCONNECTED;
}

static void do_http_get(sim_bot_t *b, const rt_msg_t *msg) {
  uint32_t bearer;
  RT_MSG_GET(msg, uint32_t, &bearer);
  char path[1024];
  size_t len = msg->buf != NULL ? msg->buf->len : 0;
  int err = RT_EINVAL;
  if (len > 0 && len < sizeof(path)) {
    memcpy(path, msg->buf->data, len);
    path[len] = '\0';
    err = http_start(b, PURPOSE_GET, "GET", path, NULL, bearer != 0);
  }
  if (err < 0) { /* answered at once, as a failure */
    b->http_status = 0;
    b->http_answered = true;
    b->http_busy = false;
  }
}

static void on_stream(sim_bot_t *b, const rt_msg_t *msg) {
  rt_stream_event_t ev;
  RT_MSG_GET(msg, rt_stream_event_t, &ev);
  if (b->http != NULL && ev.id == b->http->id)
    http_drive(b);
  else if (b->ws_stream != NULL && ev.id == b->ws_stream->id)
    ws_drive(b);
}

static void bot_behaviour(rt_actor_t *self, const rt_msg_t *msg) {
  sim_bot_t *b = rt_state(self);
  switch (msg->tag) {
  case RT_TAG_STREAM: on_stream(b, msg); return;
  case TAG_START:
    if (b->has_token)
      ws_connect(b);
    else
      login_start(b);
    return;
  case TAG_TEXT:
    if (msg->buf != NULL)
      send_text(b, msg->buf->data, msg->buf->len);
    ws_flush(b);
    return;
  case TAG_CLICKS:
    do_clicks(b, msg);
    ws_flush(b);
    return;
  case TAG_DISCONNECT: {
    uint32_t how;
    RT_MSG_GET(msg, uint32_t, &how);
    do_disconnect(b, how);
    return;
  }
  case TAG_RECONNECT: {
    uint32_t port = 0; /* no payload: the same port */
    if (msg->len == sizeof(port))
      RT_MSG_GET(msg, uint32_t, &port);
    if (!b->has_token)
      return; /* never logged in: nothing to reconnect with */
    if (port != 0 && port != b->port) {
      b->port = (uint16_t)port;
      snprintf(b->host, sizeof(b->host), "sim:%u", (unsigned)port);
    }
    if (b->wsc != NULL)
      do_disconnect(b, SIM_BOT_CLOSE_STREAM);
    ws_connect(b);
    return;
  }
  case TAG_READING: {
    uint32_t on;
    RT_MSG_GET(msg, uint32_t, &on);
    bool was = b->reading;
    b->reading = on != 0;
    /* Events are edges: bytes that came while we ignored them need a
     * fresh one. */
    if (b->reading && !was && b->ws_stream != NULL)
      rt_stream_notify(b->ws_stream, RT_STREAM_READABLE);
    return;
  }
  case TAG_HTTP_GET: do_http_get(b, msg); return;
  case TAG_RESET_IN: {
    uint64_t bytes;
    RT_MSG_GET(msg, uint64_t, &bytes);
    if (b->ws_stream != NULL)
      sim_stream_reset_in(b->ws_stream, bytes);
    return;
  }
  default: return;
  }
}

static void bot_on_stop(rt_actor_t *self, int reason) {
  (void)reason;
  sim_bot_t *b = rt_state(self);
  b->alive = false;
  if (b->wsc != NULL)
    ws_teardown(b);
  if (b->http != NULL)
    http_close(b);
  pending_clear(b);
}

/* ---- The public face ----------------------------------------------------- */

static bool copy_str(char *dst, size_t cap, const char *src) {
  if (src == NULL)
    return true;
  if (strlen(src) >= cap)
    return false;
  snprintf(dst, cap, "%s", src);
  return true;
}

int sim_bot_spawn(sim_world_t *sw, uint16_t port, const sim_bot_config_t *cfg,
                  sim_bot_t **out) {
  uint32_t records_max =
      cfg->records_max != 0 ? cfg->records_max : SIM_BOT_RECORDS_DEFAULT;
  if (records_max > SIM_BOT_RECORDS_MAX)
    return RT_EINVAL;
  sim_bot_t *b = calloc(1, sizeof(*b));
  if (b == NULL)
    return RT_ENOMEM;
  b->sw = sw;
  b->w = sim_world_rt(sw);
  b->port = port;
  b->up = cfg->up;
  b->down = cfg->down;
  b->records_max = records_max;
  b->on_record = cfg->on_record;
  b->unkept_kinds = cfg->unkept_kinds;
  b->ws_pool = cfg->ws_pool;
  b->on_record_ctx = cfg->on_record_ctx;
  b->on_record_tag = cfg->on_record_tag;
  b->reading = true;
  snprintf(b->host, sizeof(b->host), "sim:%u", (unsigned)port);
  snprintf(b->name, sizeof(b->name), "bot");
  bool ok = copy_str(b->name, sizeof(b->name), cfg->name) &&
            copy_str(b->host, sizeof(b->host), cfg->host) &&
            copy_str(b->origin, sizeof(b->origin), cfg->origin) &&
            copy_str(b->token, sizeof(b->token), cfg->token) &&
            copy_str(b->user_id, sizeof(b->user_id), cfg->user_id);
  if (!ok) {
    free(b);
    return RT_EINVAL;
  }
  b->has_origin = cfg->origin != NULL;
  b->has_token = cfg->token != NULL;
  b->state = b->has_token ? SIM_BOT_CONNECTING : SIM_BOT_LOGGING_IN;
  rt_actor_spec_t spec = {.name = "bot",
                          .behaviour = bot_behaviour,
                          .on_stop = bot_on_stop,
                          .state = b,
                          .mailbox_cap = SIM_BOT_MAILBOX_CAP,
                          .overflow = RT_OVERFLOW_REJECT};
  int err = rt_spawn(b->w, &spec, &b->id);
  if (err < 0) {
    free(b);
    return err;
  }
  b->alive = true;
  uint64_t key = cfg->rng_key != 0 ? cfg->rng_key : b->id;
  rt_world_rng(b->w, RT_RNG_KEY(RT_RNG_SUB_BOT, key), &b->rng);
  rt_msg_t start = rt_msg_make(TAG_START, NULL, 0);
  err = rt_send(b->w, b->id, &start);
  RT_WASSERT(b->w, err == RT_PUSH_QUEUED); /* an empty mailbox */
  *out = b;
  return RT_OK;
}

void sim_bot_destroy(sim_bot_t *bot) {
  if (bot == NULL)
    return;
  if (bot->alive)
    rt_stop(bot->w, bot->id, RT_REASON_KILLED); /* on_stop runs now */
  RT_ASSERT(!bot->alive);
  free(bot->records);
  if (bot->httpc != NULL)
    net_httpc_deinit(bot->httpc);
  free(bot->httpc);
  free(bot);
}

/* Queue a command; takes buf (may be NULL) in every case. */
static int command(sim_bot_t *b, uint16_t tag, const void *payload,
                   uint16_t len, rt_buf_t *buf) {
  if (!b->alive) {
    rt_buf_unref(buf);
    return RT_ENOACTOR;
  }
  rt_msg_t m = rt_msg_make(tag, payload, len);
  m.buf = buf;
  int rc = rt_send(b->w, b->id, &m);
  if (rc < 0) {
    rt_buf_unref(buf);
    return rc;
  }
  return RT_OK;
}

int sim_bot_send(sim_bot_t *bot, const char *text, size_t len) {
  if (len > SIM_BOT_TEXT_MAX)
    return RT_EINVAL;
  rt_buf_t *buf = rt_buf_copy(text, len);
  if (buf == NULL)
    return RT_ENOMEM;
  return command(bot, TAG_TEXT, NULL, 0, buf);
}

static int send_literal(sim_bot_t *bot, const char *text) {
  return sim_bot_send(bot, text, strlen(text));
}

int sim_bot_join(sim_bot_t *bot) {
  return send_literal(bot, "{\"type\":\"JOIN_QUEUE\"}");
}

int sim_bot_leave(sim_bot_t *bot) {
  return send_literal(bot, "{\"type\":\"LEAVE_QUEUE\"}");
}

int sim_bot_click(sim_bot_t *bot, int64_t seq) {
  return sim_bot_clicks(bot, 1, seq);
}

int sim_bot_clicks(sim_bot_t *bot, uint32_t n, int64_t first_seq) {
  if (n == 0 || n > SIM_BOT_CLICKS_MAX)
    return RT_EINVAL;
  bot_clicks_t c = {.n = n, .first_seq = first_seq < 0 ? -1 : first_seq};
  return command(bot, TAG_CLICKS, &c, sizeof(c), NULL);
}

int sim_bot_cookie_click(sim_bot_t *bot) {
  return send_literal(bot, "{\"type\":\"COOKIE_CLICK\",\"payload\":{}}");
}

int sim_bot_quit(sim_bot_t *bot) {
  return send_literal(bot, "{\"type\":\"QUIT_GAME\"}");
}

int sim_bot_disconnect(sim_bot_t *bot, sim_bot_close_how_t how) {
  uint32_t h = (uint32_t)how;
  if (h > SIM_BOT_CLOSE_RESET)
    return RT_EINVAL;
  return command(bot, TAG_DISCONNECT, &h, sizeof(h), NULL);
}

int sim_bot_reconnect(sim_bot_t *bot) { return sim_bot_reconnect_to(bot, 0); }

int sim_bot_reconnect_to(sim_bot_t *bot, uint16_t port) {
  uint32_t p = port;
  return command(bot, TAG_RECONNECT, &p, port != 0 ? sizeof(p) : 0, NULL);
}

int sim_bot_set_reading(sim_bot_t *bot, bool reading) {
  uint32_t on = reading ? 1 : 0;
  return command(bot, TAG_READING, &on, sizeof(on), NULL);
}

int sim_bot_reset_in(sim_bot_t *bot, uint64_t bytes) {
  return command(bot, TAG_RESET_IN, &bytes, sizeof(bytes), NULL);
}

int sim_bot_http_get(sim_bot_t *bot, const char *path, bool bearer) {
  if (bot->http_busy || bot->state == SIM_BOT_LOGGING_IN)
    return RT_EFULL;
  size_t len = strlen(path);
  if (len == 0 || len >= 1024 || path[0] != '/')
    return RT_EINVAL;
  uint32_t b = bearer ? 1 : 0;
  int rc = command(bot, TAG_HTTP_GET, &b, sizeof(b), rt_buf_copy(path, len));
  if (rc == RT_OK) {
    bot->http_busy = true;
    bot->http_answered = false;
  }
  return rc;
}

/* ---- Accessors ----------------------------------------------------------- */

const sim_bot_record_t *sim_bot_records(const sim_bot_t *bot, uint32_t *len) {
  *len = bot->records_len;
  return bot->records;
}

uint32_t sim_bot_count(const sim_bot_t *bot, sim_bot_kind_t kind) {
  uint32_t n = 0;
  for (uint32_t i = 0; i < bot->records_len; i++)
    n += bot->records[i].kind == kind;
  return n;
}

const sim_bot_record_t *sim_bot_last(const sim_bot_t *bot,
                                     sim_bot_kind_t kind) {
  for (uint32_t i = bot->records_len; i > 0; i--)
    if (bot->records[i - 1].kind == kind)
      return &bot->records[i - 1];
  return NULL;
}

void sim_bot_records_clear(sim_bot_t *bot) { bot->records_len = 0; }

uint64_t sim_bot_unkept(const sim_bot_t *bot) { return bot->unkept; }

sim_bot_state_t sim_bot_state(const sim_bot_t *bot) { return bot->state; }
const char *sim_bot_user_id(const sim_bot_t *bot) { return bot->user_id; }
const char *sim_bot_token(const sim_bot_t *bot) { return bot->token; }
const char *sim_bot_name(const sim_bot_t *bot) { return bot->name; }
uint16_t sim_bot_close_code(const sim_bot_t *bot) { return bot->close_code; }
int sim_bot_ws_status(const sim_bot_t *bot) { return bot->ws_status; }
uint64_t sim_bot_frames_sent(const sim_bot_t *bot) { return bot->frames_sent; }

bool sim_bot_http_result(const sim_bot_t *bot, int *status, const char **body,
                         size_t *len) {
  *status = bot->http_status;
  *body = bot->httpc != NULL ? bot->httpc->body : "";
  *len = bot->httpc != NULL ? bot->httpc->body_len : 0;
  return bot->http_answered;
}
