/* test_net_server.c: the HTTP/WebSocket server (net/net_server.h) in the
 * simulated world.
 *
 * Each test builds a simulated world, loads a small static table (written to
 * a temporary directory, loaded into memory, then deleted), starts the
 * server on a sim_listen port and talks to it from test code: a client is
 * the far end of a sim_connect pipe with no owner actor, written with
 * rt_stream_write and read with rt_stream_read between runs of the world.
 * Time is virtual, so the 10 s, 30 s, 54 s and 60 s limits are checked at
 * exactly their deadline and just before it, instantly and repeatably.
 *
 * Responses are checked byte for byte: heads are rebuilt here from the
 * status line, the headers and the body length (independently of the
 * server's own formatting code) and compared whole; WebSocket frames are
 * built and parsed here per RFC 6455 section 5.2, with a fixed mask.
 *
 * Every loop is bounded: the world runs at most TURNS_MAX turns per call and
 * SETTLE_ROUNDS_MAX read-and-run rounds per settle; client reads and writes
 * are bounded too.
 */
#include "net_echo.h"
#include "net_http.h"
#include "net_server.h"
#include "net_static.h"
#include "net_ws.h"
#include "net_ws_client.h"
#include "rt_service.h"
#include "rt_stream.h"
#include "rt_world.h"
#include "sim_pipe.h"
#include "sim_world.h"

#include <criterion/criterion.h>
#include <inttypes.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MS RT_NS_PER_MS
#define SEC RT_NS_PER_S

#define PORT 8080
#define HOST "game.test:8080"
#define SAMPLE_KEY "dGhlIHNhbXBsZSBub25jZQ=="        /* RFC 6455 1.3 */
#define SAMPLE_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" /* RFC 6455 1.3 */

#define TURNS_MAX 1000000u        /* per sim_world_run: far above any need */
#define SETTLE_ROUNDS_MAX 200000u /* read-and-run rounds in one settle */
#define CLIENT_READS_MAX 4096u    /* reads in one pump of one client */
#define CLIENT_WRITE_ROUNDS_MAX 100000u
#define CLIENT_DATA_MAX (256u * 1024)
#define CLIENTS_MAX 16u
#define SESSIONS_MAX 16u
#define DEFERRED_MAX 16u
#define FRAME_PAYLOAD_MAX 1024u
#define HEAD_MAX 4096u

enum {
  TAG_DEFER = RT_TAG_USER, /* route -> replier: a call to answer later */
  TAG_GO,                  /* test -> ws client actor: start */
};

/* The static table, as files on disk before the load. */
#define INDEX_HTML                                                             \
  "<!doctype html><html><head><title>Overcookied</title>"                      \
  "<script src=\"/app.js\"></script></head><body>cookie</body></html>\n"
#define APP_JS "console.log('click the cookie');\n"
#define STYLE_CSS "body { margin: 0; background: #fdf6e3; }\n"
static const uint8_t LOGO_PNG[] = {0x89, 'P',  'N',  'G',  '\r', '\n', 0x1a,
                                   '\n', 0x00, 0x00, 0x00, 0x0d, 'I',  'H',
                                   'D',  'R',  0x00, 0xff, 0x00, 0x01};
#define SECRET_TXT "TOP SECRET: outside the web root\n"

#define HEALTH_BODY "{\"status\":\"healthy\"}"
#define REQ(method_target) method_target " HTTP/1.1\r\nHost: " HOST "\r\n\r\n"

/* ---- The fixture --------------------------------------------------------- */

typedef struct fx fx_t;

typedef struct sess {
  fx_t *fx;
  rt_session_conn_t *conn;
  rt_identity_t who;
  uint32_t texts;
  uint32_t closed_calls;
  uint16_t close_code;
} sess_t;

typedef struct defer_req {
  uint64_t call_id;
  rt_actor_id_t reply_to;
} defer_req_t;

typedef struct client {
  fx_t *fx;
  rt_stream_t *s; /* NULL once we closed it */
  bool hold;      /* read nothing for now: a peer that does not read */
  uint8_t data[CLIENT_DATA_MAX];
  size_t len;  /* bytes received */
  size_t off;  /* bytes already checked */
  int64_t end; /* 0 while open; RT_EOF or RT_ERESET once a read said so */
} client_t;

struct fx {
  sim_world_t *sw;
  rt_world_t *w;
  net_static_t *statics;
  net_server_t *srv;
  net_server_config_t cfg;
  client_t *clients[CLIENTS_MAX];
  uint32_t clients_len;
  /* Sessions: our handler records every call. */
  rt_session_handler_t handler;
  sess_t sessions[SESSIONS_MAX];
  uint32_t opens;
  uint32_t closed_total;
  uint32_t refused;
  bool refuse_sessions;
  /* Authentication hook. */
  uint32_t auth_calls;
  char auth_last[64];
  /* API routes. */
  uint32_t sync_calls;
  char seen_method[16], seen_path[64], seen_query[64], seen_auth[64];
  rt_actor_id_t replier;
  defer_req_t deferred[DEFERRED_MAX];
  uint32_t deferred_len;
  bool reply_mute;
  rt_time_ns reply_delay;
};

/* ---- Session handler ----------------------------------------------------- */

static void *sess_open(void *ctx, rt_actor_t *self, rt_session_conn_t *conn,
                       const rt_identity_t *who) {
  (void)self;
  fx_t *fx = ctx;
  if (fx->refuse_sessions) {
    fx->refused++;
    return NULL;
  }
  cr_assert_lt(fx->opens, SESSIONS_MAX);
  sess_t *s = &fx->sessions[fx->opens++];
  s->fx = fx;
  s->conn = conn;
  s->who = *who;
  return s;
}

static void sess_text(void *session, rt_actor_t *self, const uint8_t *data,
                      size_t len) {
  (void)self;
  sess_t *s = session;
  cr_assert_eq(s->closed_calls, 0, "text() after closed()");
  s->texts++;
  rt_buf_t *frame = rt_buf_copy(data, len);
  cr_assert_not_null(frame);
  cr_assert_eq(s->conn->ops->send_text(s->conn, frame), RT_OK);
  rt_buf_unref(frame);
  if (len == 7 && memcmp(data, "kick me", 7) == 0) {
    /* Last words, then a close, in the same turn (a GAME_OVER, a kick). */
    rt_buf_t *bye = rt_buf_copy("goodbye", 7);
    cr_assert_eq(s->conn->ops->send_text(s->conn, bye), RT_OK);
    rt_buf_unref(bye);
    s->conn->ops->close(s->conn, RT_CLOSE_POLICY, "kicked");
    rt_buf_t *late = rt_buf_copy("late", 4);
    cr_assert_eq(s->conn->ops->send_text(s->conn, late), RT_EPIPE,
                 "nothing is queued after a close");
    rt_buf_unref(late);
  }
}

static void sess_message(void *session, rt_actor_t *self, const rt_msg_t *msg) {
  (void)session;
  (void)self;
  (void)msg;
}

static void sess_drained(void *session, rt_actor_t *self) {
  (void)session;
  (void)self;
}

static void sess_closed(void *session, rt_actor_t *self, uint16_t code) {
  (void)self;
  sess_t *s = session;
  s->closed_calls++;
  s->close_code = code;
  s->fx->closed_total++;
}

/* ---- Authentication ------------------------------------------------------ */

static int auth_check(void *ctx, const char *token, rt_identity_t *out) {
  fx_t *fx = ctx;
  fx->auth_calls++;
  snprintf(fx->auth_last, sizeof(fx->auth_last), "%s", token);
  if (strcmp(token, "good-token") != 0)
    return RT_EINVAL;
  snprintf(out->subject, sizeof(out->subject), "u-42");
  snprintf(out->name, sizeof(out->name), "Ada");
  return RT_OK;
}

/* ---- API routes ---------------------------------------------------------- */

static int api_sync(void *ctx, rt_world_t *w, const rt_http_call_t *call,
                    rt_http_answer_t *answer) {
  (void)w;
  fx_t *fx = ctx;
  fx->sync_calls++;
  snprintf(fx->seen_method, sizeof(fx->seen_method), "%s", call->method);
  snprintf(fx->seen_path, sizeof(fx->seen_path), "%s", call->path);
  snprintf(fx->seen_query, sizeof(fx->seen_query), "%s", call->query);
  snprintf(fx->seen_auth, sizeof(fx->seen_auth), "%s",
           call->authorization != NULL ? call->authorization : "(none)");
  char body[128];
  int n = snprintf(body, sizeof(body), "sync %s", call->query);
  answer->status = 200;
  answer->content_type = "text/plain; charset=utf-8";
  answer->body = rt_buf_copy(body, (size_t)n);
  return RT_HTTP_ANSWERED;
}

/* Echoes the request body; no content type: the server's default. */
static int api_echo(void *ctx, rt_world_t *w, const rt_http_call_t *call,
                    rt_http_answer_t *answer) {
  (void)ctx;
  (void)w;
  answer->status = 200;
  answer->content_type = NULL;
  answer->body = rt_buf_copy(call->body, call->body_len);
  return RT_HTTP_ANSWERED;
}

static int api_fail(void *ctx, rt_world_t *w, const rt_http_call_t *call,
                    rt_http_answer_t *answer) {
  (void)ctx;
  (void)w;
  (void)call;
  (void)answer;
  return RT_EIO;
}

/* Defers to the replier actor, which answers reply_delay later. */
static int api_later(void *ctx, rt_world_t *w, const rt_http_call_t *call,
                     rt_http_answer_t *answer) {
  (void)answer;
  fx_t *fx = ctx;
  cr_assert_neq(call->reply_to, 0);
  defer_req_t req = {.call_id = call->call_id, .reply_to = call->reply_to};
  rt_msg_t m = RT_MSG_OF(TAG_DEFER, &req);
  cr_assert_eq(rt_send(w, fx->replier, &m), RT_PUSH_QUEUED);
  return RT_HTTP_DEFERRED;
}

static int send_reply(rt_world_t *w, rt_actor_id_t to, uint64_t call_id,
                      int status, const char *body) {
  rt_http_reply_t r = {.call_id = call_id, .status = status};
  rt_msg_t m = RT_MSG_OF(RT_TAG_HTTP_REPLY, &r);
  m.buf = rt_buf_copy(body, strlen(body));
  int rc = rt_send(w, to, &m);
  if (rc < 0)
    rt_buf_unref(m.buf);
  return rc;
}

static void replier_behaviour(rt_actor_t *self, const rt_msg_t *msg) {
  fx_t *fx = rt_state(self);
  rt_world_t *w = rt_actor_world(self);
  if (msg->tag == TAG_DEFER) {
    cr_assert_lt(fx->deferred_len, DEFERRED_MAX);
    RT_MSG_GET(msg, defer_req_t, &fx->deferred[fx->deferred_len]);
    if (!fx->reply_mute) {
      uint64_t timer;
      cr_assert_eq(rt_timer_start(w, rt_self(self), fx->reply_delay, 0,
                                  RT_TAG_TIMER, fx->deferred_len, &timer),
                   RT_OK);
    }
    fx->deferred_len++;
    return;
  }
  if (msg->tag == RT_TAG_TIMER) {
    rt_timer_event_t ev;
    RT_MSG_GET(msg, rt_timer_event_t, &ev);
    cr_assert_lt(ev.data, fx->deferred_len);
    const defer_req_t *req = &fx->deferred[ev.data];
    cr_assert_eq(
        send_reply(w, req->reply_to, req->call_id, 202, "{\"deferred\":1}"),
        RT_PUSH_QUEUED);
  }
}

/* ---- Static files -------------------------------------------------------- */

static void write_file(const char *dir, const char *name, const void *data,
                       size_t len) {
  char path[512];
  snprintf(path, sizeof(path), "%s/%s", dir, name);
  FILE *f = fopen(path, "wb");
  cr_assert_not_null(f, "cannot create %s", path);
  cr_assert_eq(fwrite(data, 1, len, f), len);
  cr_assert_eq(fclose(f), 0);
}

static void remove_file(const char *dir, const char *name) {
  char path[512];
  snprintf(path, sizeof(path), "%s/%s", dir, name);
  cr_assert_eq(unlink(path), 0, "cannot remove %s", path);
}

/* Write the table to a temporary web root (with a secret beside it, outside
 * the root), load it into memory, and delete the files: from then on no
 * request can reach the file system, which the traversal test relies on. */
static net_static_t *load_statics(void) {
  char root[] = "/tmp/oc_test_net_server_XXXXXX";
  cr_assert_not_null(mkdtemp(root));
  char web[sizeof(root) + 8];
  snprintf(web, sizeof(web), "%s/web", root);
  cr_assert_eq(mkdir(web, 0700), 0);
  write_file(root, "secret.txt", SECRET_TXT, strlen(SECRET_TXT));
  write_file(web, "index.html", INDEX_HTML, strlen(INDEX_HTML));
  write_file(web, "app.js", APP_JS, strlen(APP_JS));
  write_file(web, "style.css", STYLE_CSS, strlen(STYLE_CSS));
  write_file(web, "logo.png", LOGO_PNG, sizeof(LOGO_PNG));
  net_static_t *st = NULL;
  cr_assert_eq(net_static_load(web, &st), RT_OK);
  cr_assert_eq(net_static_count(st), 4);
  remove_file(web, "index.html");
  remove_file(web, "app.js");
  remove_file(web, "style.css");
  remove_file(web, "logo.png");
  remove_file(root, "secret.txt");
  cr_assert_eq(rmdir(web), 0);
  cr_assert_eq(rmdir(root), 0);
  return st;
}

/* ---- Fixture lifecycle --------------------------------------------------- */

static fx_t *fx_create(void) {
  fx_t *fx = calloc(1, sizeof(*fx));
  cr_assert_not_null(fx);
  sim_config_t sc = {.seed = 7, .log_level = RT_LOG_OFF};
  fx->sw = sim_world_create(&sc);
  cr_assert_not_null(fx->sw);
  fx->w = sim_world_rt(fx->sw);
  fx->statics = load_statics();
  fx->handler = (rt_session_handler_t){.ctx = fx,
                                       .open = sess_open,
                                       .text = sess_text,
                                       .message = sess_message,
                                       .drained = sess_drained,
                                       .closed = sess_closed};
  fx->reply_delay = 2 * SEC;
  rt_actor_spec_t spec = {.name = "replier",
                          .behaviour = replier_behaviour,
                          .state = fx,
                          .mailbox_cap = 16,
                          .overflow = RT_OVERFLOW_REJECT};
  cr_assert_eq(rt_spawn(fx->w, &spec, &fx->replier), RT_OK);
  net_server_config_t *c = &fx->cfg;
  c->statics = fx->statics;
  c->session = &fx->handler;
  c->routes[c->routes_len++] = (net_route_t){
      .method = "GET", .path = "/api/sync", .fn = api_sync, .ctx = fx};
  c->routes[c->routes_len++] = (net_route_t){
      .method = "POST", .path = "/api/echo", .fn = api_echo, .ctx = fx};
  c->routes[c->routes_len++] = (net_route_t){
      .method = "GET", .path = "/api/later", .fn = api_later, .ctx = fx};
  c->routes[c->routes_len++] = (net_route_t){
      .method = "GET", .path = "/api/fail", .fn = api_fail, .ctx = fx};
  return fx;
}

/* Start serving with fx->cfg as the test left it. */
static void fx_start(fx_t *fx) {
  rt_listener_t *l = NULL;
  cr_assert_eq(sim_listen(fx->sw, PORT, 0, &l), RT_OK);
  cr_assert_eq(net_server_start(fx->w, l, &fx->cfg, &fx->srv), RT_OK);
}

static fx_t *fx_new(void) {
  fx_t *fx = fx_create();
  fx_start(fx);
  return fx;
}

/* Stop every actor (sessions still open get closed() now), free the pipes,
 * the world and the server. fx stays readable for checks afterwards. */
static void fx_stop(fx_t *fx) {
  sim_world_destroy(fx->sw);
  fx->sw = NULL;
  fx->w = NULL;
  net_server_free(fx->srv);
  fx->srv = NULL;
  net_static_free(fx->statics);
  fx->statics = NULL;
}

static void fx_free(fx_t *fx) {
  if (fx->sw != NULL)
    fx_stop(fx);
  for (uint32_t i = 0; i < fx->clients_len; i++)
    free(fx->clients[i]);
  free(fx);
}

static net_server_stats_t stats(const fx_t *fx) {
  net_server_stats_t s;
  net_server_get_stats(fx->srv, &s);
  return s;
}

/* ---- Clients and time ---------------------------------------------------- */

static client_t *cl_connect_with(fx_t *fx, const sim_link_config_t *up,
                                 const sim_link_config_t *down) {
  cr_assert_lt(fx->clients_len, CLIENTS_MAX);
  client_t *cl = calloc(1, sizeof(*cl));
  cr_assert_not_null(cl);
  cl->fx = fx;
  cr_assert_eq(sim_connect(fx->sw, PORT, 0, up, down, &cl->s), RT_OK);
  fx->clients[fx->clients_len++] = cl;
  return cl;
}

static client_t *cl_connect(fx_t *fx) {
  return cl_connect_with(fx, NULL, NULL);
}

/* Read what has arrived; returns bytes read, plus one if the end was seen. */
static size_t cl_pump(client_t *cl) {
  if (cl->s == NULL || cl->end != 0 || cl->hold)
    return 0;
  size_t got = 0;
  for (uint32_t i = 0; i < CLIENT_READS_MAX; i++) {
    size_t room = sizeof(cl->data) - cl->len;
    cr_assert_gt(room, 0, "client buffer full");
    int64_t n = rt_stream_read(cl->s, cl->data + cl->len, room);
    if (n == 0)
      return got;
    if (n < 0) {
      cl->end = n;
      return got + 1;
    }
    cl->len += (size_t)n;
    got += (size_t)n;
  }
  return got;
}

static size_t pump_all(fx_t *fx) {
  size_t got = 0;
  for (uint32_t i = 0; i < fx->clients_len; i++)
    got += cl_pump(fx->clients[i]);
  return got;
}

/* Run the world up to `until`, then keep reading and running at that instant
 * until nothing moves (reads free pipe buffers, which wakes writers). */
static void run_to(fx_t *fx, rt_time_ns until) {
  for (uint32_t round = 0;; round++) {
    cr_assert_lt(round, SETTLE_ROUNDS_MAX, "the world does not settle");
    sim_run_result_t r = sim_world_run(fx->sw, until, TURNS_MAX);
    cr_assert_neq(r, SIM_RUN_TURNS, "more than %u turns in one run", TURNS_MAX);
    if (pump_all(fx) == 0)
      return;
  }
}

static void settle(fx_t *fx) { run_to(fx, rt_now(fx->w)); }

static void advance(fx_t *fx, rt_time_ns dt) { run_to(fx, rt_now(fx->w) + dt); }

/* Write all of data, running the world when the pipe is full. */
static void cl_write(client_t *cl, const void *data, size_t len) {
  size_t done = 0;
  for (uint32_t i = 0; done < len; i++) {
    cr_assert_lt(i, CLIENT_WRITE_ROUNDS_MAX, "the server stopped reading");
    int64_t n =
        rt_stream_write(cl->s, (const uint8_t *)data + done, len - done);
    cr_assert_geq(n, 0, "client write failed: %s", rt_err_name((int)n));
    done += (size_t)n;
    if (done < len)
      settle(cl->fx);
  }
}

static void cl_send(client_t *cl, const char *text) {
  cl_write(cl, text, strlen(text));
}

static void cl_close(client_t *cl) {
  rt_stream_close(cl->s);
  cl->s = NULL;
}

static size_t cl_unread(const client_t *cl) { return cl->len - cl->off; }

/* Printable form of bytes for failure messages. */
static const char *esc(const uint8_t *p, size_t n, char *out, size_t cap) {
  size_t o = 0;
  for (size_t i = 0; i < n && o + 5 < cap; i++) {
    uint8_t c = p[i];
    if (c == '\r') {
      out[o++] = '\\';
      out[o++] = 'r';
    } else if (c == '\n') {
      out[o++] = '\\';
      out[o++] = 'n';
    } else if (c >= 0x20 && c < 0x7f) {
      out[o++] = (char)c;
    } else {
      o += (size_t)snprintf(out + o, cap - o, "\\x%02x", c);
    }
  }
  out[o] = '\0';
  return out;
}

/* Nothing arrived and the connection is still open. */
static void cl_expect_quiet(client_t *cl) {
  cl_pump(cl);
  char text[512];
  cr_assert_eq(cl_unread(cl), 0, "unexpected bytes: %s",
               esc(cl->data + cl->off, cl_unread(cl), text, sizeof(text)));
  cr_assert_eq(cl->end, 0, "closed early: %s", rt_err_name((int)cl->end));
}

/* The server finished the connection: EOF and nothing unread before it. */
static void cl_expect_eof(client_t *cl) {
  cl_pump(cl);
  char text[512];
  cr_assert_eq(cl_unread(cl), 0, "unexpected bytes before EOF: %s",
               esc(cl->data + cl->off, cl_unread(cl), text, sizeof(text)));
  cr_assert_eq(cl->end, RT_EOF, "want EOF, got %s", rt_err_name((int)cl->end));
}

/* The next unread bytes are exactly want. */
static void cl_expect_bytes(client_t *cl, const void *want, size_t len) {
  char got_text[1024], want_text[1024];
  cr_assert_geq(
      cl_unread(cl), len, "only %zu bytes arrived, want %zu: %s", cl_unread(cl),
      len, esc(cl->data + cl->off, cl_unread(cl), got_text, sizeof(got_text)));
  cr_assert(memcmp(cl->data + cl->off, want, len) == 0, "got  %s\nwant %s",
            esc(cl->data + cl->off, len, got_text, sizeof(got_text)),
            esc(want, len, want_text, sizeof(want_text)));
  cl->off += len;
}

/* ---- HTTP responses ------------------------------------------------------ */

typedef struct resp {
  int status;
  char head[HEAD_MAX]; /* status line to the blank line, NUL-terminated */
  const uint8_t *body; /* into the client's buffer */
  size_t body_len;
} resp_t;

/* The value of header `name` (exact case, as the server writes it). */
static bool resp_header(const resp_t *r, const char *name, char *out,
                        size_t cap) {
  char key[128];
  snprintf(key, sizeof(key), "\r\n%s: ", name);
  const char *at = strstr(r->head, key);
  if (at == NULL)
    return false;
  at += strlen(key);
  const char *end = strstr(at, "\r\n");
  cr_assert_not_null(end);
  size_t n = (size_t)(end - at);
  cr_assert_lt(n, cap);
  memcpy(out, at, n);
  out[n] = '\0';
  return true;
}

/* Take one complete response from the unread bytes; has_body is false for
 * answers to HEAD and for 101. */
static bool cl_take_response(client_t *cl, resp_t *r, bool has_body) {
  const uint8_t *p = cl->data + cl->off;
  size_t avail = cl_unread(cl);
  size_t head_len = 0;
  for (size_t i = 3; i < avail && i < HEAD_MAX - 1; i++)
    if (memcmp(p + i - 3, "\r\n\r\n", 4) == 0) {
      head_len = i + 1;
      break;
    }
  if (head_len == 0)
    return false;
  memset(r, 0, sizeof(*r));
  memcpy(r->head, p, head_len);
  r->head[head_len] = '\0';
  cr_assert_eq(sscanf(r->head, "HTTP/1.1 %d ", &r->status), 1,
               "bad status line: %.80s", r->head);
  size_t content_length = 0;
  char v[32];
  if (resp_header(r, "Content-Length", v, sizeof(v)))
    content_length = strtoul(v, NULL, 10);
  if (!has_body)
    content_length = 0;
  if (avail - head_len < content_length)
    return false;
  r->body = p + head_len;
  r->body_len = content_length;
  cl->off += head_len + content_length;
  return true;
}

static void cl_expect_response(client_t *cl, resp_t *r, bool has_body) {
  settle(cl->fx);
  char text[512];
  cr_assert(cl_take_response(cl, r, has_body),
            "no complete response; unread: %s",
            esc(cl->data + cl->off, cl_unread(cl), text, sizeof(text)));
}

/* The whole head, rebuilt: status line, Content-Type (if any),
 * Content-Length, Connection, the extra lines, blank line. */
static void check_head(const resp_t *r, const char *status_line,
                       const char *content_type, size_t content_length,
                       bool keep_alive, const char *extra) {
  char want[HEAD_MAX];
  char type_line[256] = "";
  if (content_type != NULL)
    snprintf(type_line, sizeof(type_line), "Content-Type: %s\r\n",
             content_type);
  snprintf(want, sizeof(want),
           "HTTP/1.1 %s\r\n%sContent-Length: %zu\r\nConnection: %s\r\n%s\r\n",
           status_line, type_line, content_length,
           keep_alive ? "keep-alive" : "close", extra != NULL ? extra : "");
  cr_assert_str_eq(r->head, want);
}

static void check_body(const resp_t *r, const void *want, size_t len) {
  char got_text[1024], want_text[1024];
  cr_assert_eq(r->body_len, len, "body of %zu bytes, want %zu: %s", r->body_len,
               len, esc(r->body, r->body_len, got_text, sizeof(got_text)));
  cr_assert(memcmp(r->body, want, len) == 0, "body %s\nwant %s",
            esc(r->body, len, got_text, sizeof(got_text)),
            esc(want, len, want_text, sizeof(want_text)));
}

static void check_body_str(const resp_t *r, const char *want) {
  check_body(r, want, strlen(want));
}

#define STATIC_HTML_HEADERS                                                    \
  "Cache-Control: no-cache\r\nX-Content-Type-Options: nosniff\r\n"
/* Scripts and styles revalidate like pages (their names carry no content
 * hash); images may be cached briefly. */
#define STATIC_CODE_HEADERS STATIC_HTML_HEADERS
#define STATIC_ASSET_HEADERS                                                   \
  "Cache-Control: public, max-age=300\r\nX-Content-Type-Options: nosniff\r\n"
#define NO_STORE "Cache-Control: no-store\r\n"
#define ALLOW_GET_HEAD "Allow: GET, HEAD\r\n"

static void expect_health(client_t *cl) {
  resp_t r;
  cl_expect_response(cl, &r, true);
  check_head(&r, "200 OK", "application/json", strlen(HEALTH_BODY), true,
             NO_STORE);
  check_body_str(&r, HEALTH_BODY);
}

/* A JSON error answer that closes the connection, then EOF. */
static void expect_error_and_close(client_t *cl, const char *status_line,
                                   const char *body, const char *extra) {
  resp_t r;
  cl_expect_response(cl, &r, true);
  check_head(&r, status_line, "application/json", strlen(body), false, extra);
  check_body_str(&r, body);
  cl_expect_eof(cl);
}

/* ---- WebSocket frames (RFC 6455 5.2) ------------------------------------- */

enum {
  OP_CONT = 0x0,
  OP_TEXT = 0x1,
  OP_BINARY = 0x2,
  OP_CLOSE = 0x8,
  OP_PING = 0x9,
  OP_PONG = 0xa,
};

static const uint8_t MASK_KEY[4] = {0x37, 0xfa, 0x21, 0x3d};

/* One frame into out; returns its length. */
static size_t ws_frame(uint8_t *out, size_t cap, bool fin, uint8_t opcode,
                       bool masked, const void *payload, size_t len) {
  cr_assert_leq(len + 14, cap);
  size_t n = 0;
  out[n++] = (uint8_t)((fin ? 0x80 : 0) | opcode);
  uint8_t mask_bit = masked ? 0x80 : 0;
  if (len < 126) {
    out[n++] = (uint8_t)(mask_bit | len);
  } else if (len <= 0xffff) {
    out[n++] = (uint8_t)(mask_bit | 126);
    out[n++] = (uint8_t)(len >> 8);
    out[n++] = (uint8_t)len;
  } else {
    out[n++] = (uint8_t)(mask_bit | 127);
    for (int i = 7; i >= 0; i--)
      out[n++] = (uint8_t)((uint64_t)len >> (8 * i));
  }
  if (masked) {
    memcpy(out + n, MASK_KEY, 4);
    n += 4;
  }
  const uint8_t *src = payload;
  for (size_t i = 0; i < len; i++)
    out[n + i] = (uint8_t)(src[i] ^ (masked ? MASK_KEY[i % 4] : 0));
  return n + len;
}

static void cl_send_frame(client_t *cl, bool fin, uint8_t opcode,
                          const void *payload, size_t len) {
  uint8_t frame[FRAME_PAYLOAD_MAX + 16];
  size_t n = ws_frame(frame, sizeof(frame), fin, opcode, true, payload, len);
  cl_write(cl, frame, n);
}

static void cl_send_text(client_t *cl, const char *text) {
  cl_send_frame(cl, true, OP_TEXT, text, strlen(text));
}

static void cl_send_close(client_t *cl, uint16_t code, const char *reason) {
  uint8_t payload[128];
  size_t rlen = strlen(reason);
  cr_assert_leq(rlen, 123);
  payload[0] = (uint8_t)(code >> 8);
  payload[1] = (uint8_t)code;
  memcpy(payload + 2, reason, rlen);
  cl_send_frame(cl, true, OP_CLOSE, payload, rlen + 2);
}

typedef struct ws_in {
  bool fin;
  uint8_t opcode;
  uint8_t payload[FRAME_PAYLOAD_MAX];
  size_t len;
} ws_in_t;

/* Take one complete server frame from the unread bytes. */
static bool cl_take_frame(client_t *cl, ws_in_t *f) {
  const uint8_t *p = cl->data + cl->off;
  size_t avail = cl_unread(cl);
  if (avail < 2)
    return false;
  cr_assert_eq(p[0] & 0x70, 0, "reserved bits set: 0x%02x", p[0]);
  cr_assert_eq(p[1] & 0x80, 0, "a server frame must not be masked");
  size_t len = p[1] & 0x7f, hdr = 2;
  if (len == 126) {
    if (avail < 4)
      return false;
    len = (size_t)p[2] << 8 | p[3];
    hdr = 4;
  } else if (len == 127) {
    if (avail < 10)
      return false;
    len = 0;
    for (int i = 0; i < 8; i++)
      len = len << 8 | p[2 + i];
    hdr = 10;
  }
  if (avail < hdr + len)
    return false;
  cr_assert_leq(len, FRAME_PAYLOAD_MAX);
  f->fin = (p[0] & 0x80) != 0;
  f->opcode = p[0] & 0x0f;
  memcpy(f->payload, p + hdr, len);
  f->len = len;
  cl->off += hdr + len;
  return true;
}

static void cl_expect_frame(client_t *cl, uint8_t opcode, const void *payload,
                            size_t len) {
  settle(cl->fx);
  ws_in_t f;
  char text[512];
  cr_assert(cl_take_frame(cl, &f), "no complete frame; unread: %s",
            esc(cl->data + cl->off, cl_unread(cl), text, sizeof(text)));
  cr_assert(f.fin);
  cr_assert_eq(f.opcode, opcode, "opcode 0x%x, want 0x%x", f.opcode, opcode);
  char want_text[512];
  cr_assert_eq(f.len, len, "payload %s, want %s",
               esc(f.payload, f.len, text, sizeof(text)),
               esc(payload, len, want_text, sizeof(want_text)));
  cr_assert(memcmp(f.payload, payload, len) == 0, "payload %s, want %s",
            esc(f.payload, f.len, text, sizeof(text)),
            esc(payload, len, want_text, sizeof(want_text)));
}

static void cl_expect_text(client_t *cl, const char *text) {
  cl_expect_frame(cl, OP_TEXT, text, strlen(text));
}

static void cl_expect_close(client_t *cl, uint16_t code, const char *reason) {
  uint8_t payload[128];
  size_t rlen = strlen(reason);
  payload[0] = (uint8_t)(code >> 8);
  payload[1] = (uint8_t)code;
  memcpy(payload + 2, reason, rlen);
  cl_expect_frame(cl, OP_CLOSE, payload, rlen + 2);
}

/* ---- The upgrade --------------------------------------------------------- */

typedef struct upgrade {
  const char *target;  /* NULL: "/ws" */
  const char *key;     /* NULL: the RFC sample; "-": no header */
  const char *version; /* NULL: "13"; "-": no header */
  const char *origin;  /* NULL: no header */
} upgrade_t;

static void cl_send_upgrade(client_t *cl, const upgrade_t *u) {
  char key[128] = "", version[64] = "", origin[300] = "", req[1024];
  const char *k = u->key != NULL ? u->key : SAMPLE_KEY;
  if (strcmp(k, "-") != 0)
    snprintf(key, sizeof(key), "Sec-WebSocket-Key: %s\r\n", k);
  const char *v = u->version != NULL ? u->version : "13";
  if (strcmp(v, "-") != 0)
    snprintf(version, sizeof(version), "Sec-WebSocket-Version: %s\r\n", v);
  if (u->origin != NULL)
    snprintf(origin, sizeof(origin), "Origin: %s\r\n", u->origin);
  snprintf(req, sizeof(req),
           "GET %s HTTP/1.1\r\nHost: " HOST "\r\nUpgrade: websocket\r\n"
           "Connection: Upgrade\r\n%s%s%s\r\n",
           u->target != NULL ? u->target : "/ws", key, version, origin);
  cl_send(cl, req);
}

static const char SWITCHING[] =
    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
    "Connection: Upgrade\r\nSec-WebSocket-Accept: " SAMPLE_ACCEPT "\r\n\r\n";

static void cl_expect_switching(client_t *cl) {
  settle(cl->fx);
  cl_expect_bytes(cl, SWITCHING, strlen(SWITCHING));
}

/* A client whose upgrade succeeded (101 consumed). */
static client_t *ws_open_with(fx_t *fx, const upgrade_t *u) {
  client_t *cl = cl_connect(fx);
  cl_send_upgrade(cl, u);
  cl_expect_switching(cl);
  return cl;
}

static client_t *ws_open(fx_t *fx) {
  upgrade_t u = {0};
  return ws_open_with(fx, &u);
}

/* The upgrade is refused with status_line and a JSON error, then closed. */
static void expect_refused(fx_t *fx, const upgrade_t *u,
                           const char *status_line, const char *error,
                           const char *extra) {
  client_t *cl = cl_connect(fx);
  cl_send_upgrade(cl, u);
  char body[256];
  snprintf(body, sizeof(body), "{\"error\":\"%s\"}", error);
  expect_error_and_close(cl, status_line, body, extra);
}

/* ========================================================================== */
/* HTTP: static files, 404, traversal, HEAD, /health, /metrics, 405 */
/* (the metrics token's tests follow the /metrics ones) */
/* ========================================================================== */

Test(net_server, get_root_serves_index_html_with_page_headers) {
  fx_t *fx = fx_new();
  client_t *cl = cl_connect(fx);
  cl_send(cl, REQ("GET /"));
  resp_t r;
  cl_expect_response(cl, &r, true);
  check_head(&r, "200 OK", "text/html; charset=utf-8", strlen(INDEX_HTML), true,
             STATIC_HTML_HEADERS);
  check_body_str(&r, INDEX_HTML);
  /* The same file by its own name. */
  cl_send(cl, REQ("GET /index.html"));
  cl_expect_response(cl, &r, true);
  check_head(&r, "200 OK", "text/html; charset=utf-8", strlen(INDEX_HTML), true,
             STATIC_HTML_HEADERS);
  check_body_str(&r, INDEX_HTML);
  cl_expect_quiet(cl); /* keep-alive: still open */
  fx_free(fx);
}

Test(net_server, static_assets_get_their_type_cache_control_and_nosniff) {
  fx_t *fx = fx_new();
  client_t *cl = cl_connect(fx);
  resp_t r;
  cl_send(cl, REQ("GET /app.js"));
  cl_expect_response(cl, &r, true);
  check_head(&r, "200 OK", "text/javascript; charset=utf-8", strlen(APP_JS),
             true, STATIC_CODE_HEADERS);
  check_body_str(&r, APP_JS);
  cl_send(cl, REQ("GET /style.css"));
  cl_expect_response(cl, &r, true);
  check_head(&r, "200 OK", "text/css; charset=utf-8", strlen(STYLE_CSS), true,
             STATIC_CODE_HEADERS);
  check_body_str(&r, STYLE_CSS);
  cl_send(cl, REQ("GET /logo.png"));
  cl_expect_response(cl, &r, true);
  check_head(&r, "200 OK", "image/png", sizeof(LOGO_PNG), true,
             STATIC_ASSET_HEADERS);
  check_body(&r, LOGO_PNG, sizeof(LOGO_PNG)); /* binary, NULs included */
  /* Percent-encoded names are decoded before the lookup. */
  cl_send(cl, REQ("GET /%61pp.js"));
  cl_expect_response(cl, &r, true);
  cr_assert_eq(r.status, 200);
  check_body_str(&r, APP_JS);
  fx_free(fx);
}

Test(net_server, unknown_path_gets_the_404_page_and_keeps_the_connection) {
  fx_t *fx = fx_new();
  client_t *cl = cl_connect(fx);
  cl_send(cl, REQ("GET /no/such/cookie.js"));
  resp_t r;
  cl_expect_response(cl, &r, true);
  cr_assert_eq(r.status, 404);
  cr_assert(strncmp(r.head, "HTTP/1.1 404 Not Found\r\n", 24) == 0, "%s",
            r.head);
  char v[128];
  cr_assert(resp_header(&r, "Content-Type", v, sizeof(v)));
  cr_assert_str_eq(v, "text/html; charset=utf-8");
  cr_assert(resp_header(&r, "Connection", v, sizeof(v)));
  cr_assert_str_eq(v, "keep-alive");
  char body[2048];
  cr_assert_lt(r.body_len, sizeof(body));
  memcpy(body, r.body, r.body_len);
  body[r.body_len] = '\0';
  cr_assert(strncmp(body, "<!doctype html>", 15) == 0, "%s", body);
  cr_assert_not_null(strstr(body, "<h1>Not found</h1>"), "%s", body);
  /* The connection serves the next request. */
  cl_send(cl, REQ("GET /health"));
  expect_health(cl);
  cr_assert_eq(stats(fx).http_status[4], 1);
  fx_free(fx);
}

static bool has_bytes(const uint8_t *p, size_t n, const char *needle) {
  size_t k = strlen(needle);
  for (size_t i = 0; i + k <= n; i++)
    if (memcmp(p + i, needle, k) == 0)
      return true;
  return false;
}

Test(net_server, path_traversal_never_serves_anything_outside_the_table) {
  static const struct {
    const char *target;
    int status;
  } cases[] = {
      {"/../secret.txt", 404},
      {"/%2e%2e/secret.txt", 404},
      {"/%2E%2E/secret.txt", 404},
      {"/..%2fsecret.txt", 404},
      {"/%2e%2e%2f%2e%2e%2fetc%2fpasswd", 404},
      {"/web/../../etc/passwd", 404},
      {"/web/../secret.txt", 404},
      {"/./index.html", 404},
      {"//etc/passwd", 404},
      {"/..\\secret.txt", 404},
      {"/%00", 404},
      {"/index.html%00", 404},
      {"/index.html%00.png", 404},
      {"/%zz/index.html", 404},
      {"/index.html%", 404},
      {"/secret.txt", 404},
  };
  fx_t *fx = fx_new();
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    client_t *cl = cl_connect(fx);
    char req[512];
    snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: " HOST "\r\n\r\n",
             cases[i].target);
    cl_send(cl, req);
    resp_t r;
    cl_expect_response(cl, &r, true);
    cr_assert_eq(r.status, cases[i].status, "%s: status %d", cases[i].target,
                 r.status);
    cr_assert_not(has_bytes(r.body, r.body_len, "SECRET"), "%s",
                  cases[i].target);
    cr_assert_not(has_bytes(r.body, r.body_len, "Overcookied</title>"), "%s",
                  cases[i].target);
    cl_close(cl);
    settle(fx);
  }
  cr_assert_eq(stats(fx).http_status[2], 0, "nothing was served");
  fx_free(fx);
}

Test(net_server, absolute_form_targets_are_routed_like_origin_form) {
  fx_t *fx = fx_new();
  client_t *cl = cl_connect(fx);
  cl_send(cl, REQ("GET http://127.0.0.1/health"));
  expect_health(cl);
  cl_send(cl, REQ("GET http://" HOST "/api/sync?limit=5"));
  resp_t r;
  cl_expect_response(cl, &r, true);
  check_body_str(&r, "sync limit=5");
  cr_assert_str_eq(fx->seen_path, "/api/sync");
  cr_assert_str_eq(fx->seen_query, "limit=5");
  cl_send(cl, REQ("GET http://" HOST));
  cl_expect_response(cl, &r, true);
  check_head(&r, "200 OK", "text/html; charset=utf-8", strlen(INDEX_HTML), true,
             STATIC_HTML_HEADERS);
  cl_expect_quiet(cl);
  upgrade_t u = {.target = "http://" HOST "/ws"};
  ws_open_with(fx, &u);
  cr_assert_eq(stats(fx).ws_upgrades, 1);
  fx_free(fx);
}

Test(net_server, head_sends_the_headers_of_get_without_a_body) {
  fx_t *fx = fx_new();
  client_t *cl = cl_connect(fx);
  /* The GET right behind it must start where the HEAD answer's head ends. */
  cl_send(cl, REQ("HEAD /") REQ("GET /health") REQ("HEAD /health"));
  resp_t r;
  cl_expect_response(cl, &r, false);
  check_head(&r, "200 OK", "text/html; charset=utf-8", strlen(INDEX_HTML), true,
             STATIC_HTML_HEADERS);
  expect_health(cl);
  cl_expect_response(cl, &r, false);
  check_head(&r, "200 OK", "application/json", strlen(HEALTH_BODY), true,
             NO_STORE);
  cl_expect_quiet(cl);
  fx_free(fx);
}

Test(net_server, health_answers_healthy) {
  fx_t *fx = fx_new();
  client_t *cl = cl_connect(fx);
  cl_send(cl, REQ("GET /health"));
  expect_health(cl);
  /* /health answers GET and HEAD only, and its 405 says so. */
  cl_send(cl, "POST /health HTTP/1.1\r\nHost: " HOST
              "\r\nContent-Length: 0\r\n\r\n");
  resp_t r;
  cl_expect_response(cl, &r, true);
  check_head(&r, "405 Method Not Allowed", "application/json",
             strlen("{\"error\":\"method not allowed\"}"), true,
             ALLOW_GET_HEAD);
  fx_free(fx);
}

/* Every sample line is "name{labels} value" or "name value" with an integer
 * value; comments start with "# HELP " or "# TYPE ". */
static void check_prometheus_text(const char *text) {
  const char *line = text;
  uint32_t lines = 0;
  while (*line != '\0') {
    cr_assert_lt(lines++, 1000u);
    const char *nl = strchr(line, '\n');
    cr_assert_not_null(nl, "last line not terminated");
    size_t n = (size_t)(nl - line);
    char buf[512];
    cr_assert_lt(n, sizeof(buf));
    memcpy(buf, line, n);
    buf[n] = '\0';
    if (buf[0] == '#') {
      cr_assert(strncmp(buf, "# HELP ", 7) == 0 ||
                    strncmp(buf, "# TYPE ", 7) == 0,
                "bad comment: %s", buf);
    } else {
      const char *sp = strrchr(buf, ' ');
      cr_assert_not_null(sp, "no value: %s", buf);
      cr_assert(strncmp(buf, "overcookied_", 12) == 0, "bad name: %s", buf);
      char *end = NULL;
      (void)strtoull(sp + 1, &end, 10);
      cr_assert(end != sp + 1 && *end == '\0', "bad value: %s", buf);
    }
    line = nl + 1;
  }
}

Test(net_server, metrics_export_connections_and_disconnect_counters) {
  fx_t *fx = fx_new();
  /* One connection that never sends a head: closed by the header timeout. */
  client_t *slow = cl_connect(fx);
  run_to(fx, 10 * SEC);
  cl_expect_eof(slow);
  client_t *ws = ws_open(fx);
  (void)ws;
  client_t *cl = cl_connect(fx);
  cl_send(cl, REQ("GET /metrics"));
  resp_t r;
  cl_expect_response(cl, &r, true);
  char len[32];
  cr_assert(resp_header(&r, "Content-Length", len, sizeof(len)));
  char want_head[512];
  snprintf(want_head, sizeof(want_head),
           "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; "
           "charset=utf-8\r\nContent-Length: %s\r\nConnection: keep-alive\r\n"
           "Cache-Control: no-store\r\n\r\n",
           len);
  cr_assert_str_eq(r.head, want_head);
  char body[16384];
  cr_assert_lt(r.body_len, sizeof(body));
  memcpy(body, r.body, r.body_len);
  body[r.body_len] = '\0';
  check_prometheus_text(body);
  static const char *const want[] = {
      "# TYPE overcookied_connections gauge\n",
      "\novercookied_connections{kind=\"all\"} 2\n",
      "\novercookied_connections{kind=\"websocket\"} 1\n",
      "\novercookied_connections_accepted_total 3\n",
      "\novercookied_connections_rejected_total{reason=\"limit\"} 0\n",
      "# TYPE overcookied_disconnects_total counter\n",
      "\novercookied_disconnects_total{reason=\"header_timeout\"} 1\n",
      "\novercookied_disconnects_total{reason=\"idle_timeout\"} 0\n",
      "\novercookied_disconnects_total{reason=\"peer\"} 0\n",
      "\novercookied_disconnects_total{reason=\"shutdown\"} 0\n",
      "\novercookied_http_requests_total{status=\"1xx\"} 1\n",
  };
  for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
    cr_assert_not_null(strstr(body, want[i]), "missing %s in:\n%s", want[i],
                       body);
  fx_free(fx);
}

/* Bytes the process has allocated and not yet freed. ASan replaces malloc,
 * so ask it when built with it (glibc's count then stays still). */
#if defined(__SANITIZE_ADDRESS__)
#define OC_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define OC_TEST_ASAN 1
#endif
#endif
#ifdef OC_TEST_ASAN
size_t __sanitizer_get_current_allocated_bytes(void);
static size_t heap_in_use(void) {
  return __sanitizer_get_current_allocated_bytes();
}
#else
static size_t heap_in_use(void) {
  struct mallinfo2 mi = mallinfo2();
  return mi.uordblks + mi.hblkhd;
}
#endif

/* A response waiting for a reader holds the memory it counts against
 * NET_HTTP_OUT_MAX: its length, not the 64 KiB /metrics renders into. */
Test(net_server, a_metrics_answer_waiting_for_its_reader_holds_its_length) {
  fx_t *fx = fx_new();
  client_t *probe = cl_connect(fx);
  cl_send(probe, REQ("GET /metrics"));
  resp_t r;
  cl_expect_response(probe, &r, true);
  size_t answer = strlen(r.head) + r.body_len;
  /* A reader that takes nothing, through a pipe that holds 64 bytes: the
   * answers wait in the connection's output. */
  sim_link_config_t down = {.buffer = 64};
  client_t *cl = cl_connect_with(fx, NULL, &down);
  cl_send(cl, REQ("GET /health"));
  expect_health(cl);
  cl->hold = true;
  size_t before = heap_in_use();
  enum { PIPELINED = 8 };
  for (int i = 0; i < PIPELINED; i++)
    cl_send(cl, REQ("GET /metrics"));
  settle(fx);
  size_t held = heap_in_use() - before;
  cr_assert_lt(held, PIPELINED * (answer + 1024),
               "%zu bytes held for %d answers of about %zu bytes", held,
               PIPELINED, answer);
  fx_free(fx);
}

Test(net_server, post_to_a_static_path_is_405) {
  fx_t *fx = fx_new();
  const char *body = "{\"error\":\"method not allowed\"}";
  static const char *const reqs[] = {
      "POST / HTTP/1.1\r\nHost: " HOST "\r\nContent-Length: 2\r\n\r\n{}",
      "POST /app.js HTTP/1.1\r\nHost: " HOST "\r\nContent-Length: 0\r\n\r\n",
      "PUT /index.html HTTP/1.1\r\nHost: " HOST "\r\nContent-Length: 0\r\n\r\n",
      "DELETE /logo.png HTTP/1.1\r\nHost: " HOST "\r\n\r\n",
  };
  client_t *cl = cl_connect(fx);
  for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
    cl_send(cl, reqs[i]);
    resp_t r;
    cl_expect_response(cl, &r, true);
    check_head(&r, "405 Method Not Allowed", "application/json", strlen(body),
               true, ALLOW_GET_HEAD);
    check_body_str(&r, body);
  }
  cl_expect_quiet(cl);
  fx_free(fx);
}

/* ========================================================================== */
/* Limits */
/* ========================================================================== */

/* A GET /health whose head (request line to blank line) is exactly len. */
static void build_head_of(char *out, size_t len) {
  const char *start = "GET /health HTTP/1.1\r\nHost: " HOST "\r\nX-Pad: ";
  const char *tail = "\r\n\r\n";
  size_t fixed = strlen(start) + strlen(tail);
  cr_assert_gt(len, fixed);
  size_t pad = len - fixed;
  memcpy(out, start, strlen(start));
  memset(out + strlen(start), 'a', pad);
  memcpy(out + strlen(start) + pad, tail, strlen(tail) + 1);
  cr_assert_eq(strlen(out), len);
}

Test(net_server, head_of_8192_bytes_is_served_and_8193_gets_431_and_close) {
  fx_t *fx = fx_new();
  static char req[NET_HTTP_HEAD_MAX + 2];
  const size_t sizes[] = {NET_HTTP_HEAD_MAX - 1, NET_HTTP_HEAD_MAX};
  cr_assert_eq(NET_HTTP_HEAD_MAX, 8192);
  for (size_t i = 0; i < 2; i++) {
    client_t *cl = cl_connect(fx);
    build_head_of(req, sizes[i]);
    cl_send(cl, req);
    expect_health(cl);
    cl_expect_quiet(cl);
  }
  client_t *cl = cl_connect(fx);
  build_head_of(req, NET_HTTP_HEAD_MAX + 1);
  cl_send(cl, req);
  expect_error_and_close(cl, "431 Request Header Fields Too Large",
                         "{\"error\":\"Request Header Fields Too Large\"}",
                         NULL);
  fx_free(fx);
}

Test(net_server, a_long_path_with_a_query_is_routed_not_refused_431) {
  fx_t *fx = fx_new();
  static char req[NET_HTTP_HEAD_MAX];
  int n = snprintf(req, sizeof(req),
                   "GET /%5000s? HTTP/1.1\r\nHost: " HOST "\r\n\r\n", "");
  cr_assert(n > 0 && (size_t)n < sizeof(req));
  memset(req + 5, 'a', 5000);
  client_t *cl = cl_connect(fx);
  cl_send(cl, req);
  resp_t r;
  cl_expect_response(cl, &r, true);
  check_head(&r, "404 Not Found", "text/html; charset=utf-8", r.body_len, true,
             NULL);
  cl_expect_quiet(cl);
  fx_free(fx);
}

Test(net_server, unfinished_head_is_refused_431_as_soon_as_it_passes_8192) {
  fx_t *fx = fx_new();
  static char req[NET_HTTP_HEAD_MAX + 8];
  build_head_of(req, NET_HTTP_HEAD_MAX + 4);
  client_t *cl = cl_connect(fx);
  /* 8192 bytes of a head with no end yet: legal so far, so no answer. */
  cl_write(cl, req, NET_HTTP_HEAD_MAX);
  settle(fx);
  cl_expect_quiet(cl);
  cl_write(cl, req + NET_HTTP_HEAD_MAX, 1); /* byte 8193 */
  expect_error_and_close(cl, "431 Request Header Fields Too Large",
                         "{\"error\":\"Request Header Fields Too Large\"}",
                         NULL);
  cr_assert_eq(rt_now(fx->w), 0, "refused at once, not by a timeout");
  fx_free(fx);
}

static void send_post_echo(client_t *cl, size_t body_len) {
  static uint8_t req[NET_HTTP_BODY_MAX + 512];
  int n = snprintf((char *)req, 256,
                   "POST /api/echo HTTP/1.1\r\nHost: " HOST
                   "\r\nContent-Type: application/json\r\n"
                   "Content-Length: %zu\r\n\r\n",
                   body_len);
  cr_assert_leq((size_t)n + body_len, sizeof(req));
  for (size_t i = 0; i < body_len; i++)
    req[(size_t)n + i] = (uint8_t)('a' + i % 26);
  cl_write(cl, req, (size_t)n + body_len);
}

static void expect_echoed_body(client_t *cl, size_t body_len) {
  resp_t r;
  cl_expect_response(cl, &r, true);
  check_head(&r, "200 OK", "application/json", body_len, true, NO_STORE);
  for (size_t i = 0; i < body_len; i++)
    cr_assert_eq(r.body[i], (uint8_t)('a' + i % 26), "body byte %zu", i);
}

Test(net_server, body_of_4096_bytes_is_accepted_and_4097_gets_413) {
  fx_t *fx = fx_new();
  cr_assert_eq(NET_HTTP_BODY_MAX, 4096);
  client_t *cl = cl_connect(fx);
  send_post_echo(cl, NET_HTTP_BODY_MAX - 1);
  expect_echoed_body(cl, NET_HTTP_BODY_MAX - 1);
  send_post_echo(cl, NET_HTTP_BODY_MAX);
  expect_echoed_body(cl, NET_HTTP_BODY_MAX);
  cl_expect_quiet(cl);
  client_t *big = cl_connect(fx);
  send_post_echo(big, NET_HTTP_BODY_MAX + 1);
  expect_error_and_close(big, "413 Payload Too Large",
                         "{\"error\":\"Payload Too Large\"}", NULL);
  fx_free(fx);
}

/* A chunked body of two chunks adding up to total bytes. */
static void send_chunked_echo(client_t *cl, size_t total) {
  static char req[NET_HTTP_BODY_MAX + 512];
  size_t first = total / 2, second = total - first;
  int n = snprintf(req, sizeof(req),
                   "POST /api/echo HTTP/1.1\r\nHost: " HOST
                   "\r\nTransfer-Encoding: chunked\r\n\r\n%zx\r\n",
                   first);
  size_t at = (size_t)n;
  for (size_t i = 0; i < first; i++)
    req[at++] = (char)('a' + i % 26);
  at += (size_t)snprintf(req + at, sizeof(req) - at, "\r\n%zx\r\n", second);
  for (size_t i = 0; i < second; i++)
    req[at++] = (char)('a' + (first + i) % 26);
  at += (size_t)snprintf(req + at, sizeof(req) - at, "\r\n0\r\n\r\n");
  cl_write(cl, req, at);
}

Test(net_server, chunked_body_is_held_to_4096_bytes_too) {
  fx_t *fx = fx_new();
  client_t *cl = cl_connect(fx);
  send_chunked_echo(cl, NET_HTTP_BODY_MAX);
  expect_echoed_body(cl, NET_HTTP_BODY_MAX);
  client_t *big = cl_connect(fx);
  send_chunked_echo(big, NET_HTTP_BODY_MAX + 1);
  expect_error_and_close(big, "413 Payload Too Large",
                         "{\"error\":\"Payload Too Large\"}", NULL);
  fx_free(fx);
}

Test(net_server, head_must_complete_within_10_s) {
  fx_t *fx = fx_new();
  client_t *cl = cl_connect(fx);
  cl_send(cl, "GET /health HTTP/1.1\r\nHost: " HOST "\r\n"); /* no blank line */
  settle(fx);
  run_to(fx, 10 * SEC - 100 * MS);
  cl_expect_quiet(cl);
  run_to(fx, 10 * SEC - 1);
  cl_expect_quiet(cl);
  cr_assert_eq(stats(fx).connections, 1);
  run_to(fx, 10 * SEC);
  cl_expect_eof(cl);
  net_server_stats_t s = stats(fx);
  cr_assert_eq(s.connections, 0);
  cr_assert_eq(s.closes[NET_CLOSE_HEADER_TIMEOUT], 1);
  fx_free(fx);
}

Test(net_server, head_sent_one_byte_a_second_is_still_cut_at_10_s) {
  fx_t *fx = fx_new();
  client_t *cl = cl_connect(fx);
  const char *req = REQ("GET /health");
  for (uint32_t k = 0; k < 10; k++) {
    run_to(fx, k * SEC);
    cl_expect_quiet(cl);
    cl_write(cl, req + k, 1); /* each byte is progress, but no excuse */
  }
  run_to(fx, 10 * SEC - 1);
  cl_expect_quiet(cl);
  run_to(fx, 10 * SEC);
  cl_expect_eof(cl);
  cr_assert_eq(stats(fx).closes[NET_CLOSE_HEADER_TIMEOUT], 1);
  fx_free(fx);
}

Test(net_server, idle_keep_alive_closes_at_30_s_and_not_before) {
  fx_t *fx = fx_new();
  client_t *cl = cl_connect(fx);
  cl_send(cl, REQ("GET /health"));
  expect_health(cl);
  run_to(fx, 30 * SEC - 100 * MS);
  cl_expect_quiet(cl);
  run_to(fx, 30 * SEC - 1);
  cl_expect_quiet(cl);
  cr_assert_eq(stats(fx).connections, 1);
  run_to(fx, 30 * SEC);
  cl_expect_eof(cl);
  net_server_stats_t s = stats(fx);
  cr_assert_eq(s.connections, 0);
  cr_assert_eq(s.closes[NET_CLOSE_IDLE_TIMEOUT], 1);
  fx_free(fx);
}

Test(net_server, each_request_restarts_the_idle_timer) {
  fx_t *fx = fx_new();
  client_t *cl = cl_connect(fx);
  cl_send(cl, REQ("GET /health"));
  expect_health(cl);
  run_to(fx, 20 * SEC);
  cl_send(cl, REQ("GET /health"));
  expect_health(cl);
  run_to(fx, 50 * SEC - 1);
  cl_expect_quiet(cl);
  run_to(fx, 50 * SEC);
  cl_expect_eof(cl);
  cr_assert_eq(stats(fx).closes[NET_CLOSE_IDLE_TIMEOUT], 1);
  fx_free(fx);
}

Test(net_server, a_request_begun_while_idle_gets_the_header_timeout) {
  fx_t *fx = fx_new();
  client_t *cl = cl_connect(fx);
  cl_send(cl, REQ("GET /health"));
  expect_health(cl);
  run_to(fx, 25 * SEC);
  cl_send(cl, "GET /he"); /* idle would end at 30 s; the head has until 35 s */
  run_to(fx, 35 * SEC - 1);
  cl_expect_quiet(cl);
  run_to(fx, 35 * SEC);
  cl_expect_eof(cl);
  net_server_stats_t s = stats(fx);
  cr_assert_eq(s.closes[NET_CLOSE_HEADER_TIMEOUT], 1);
  cr_assert_eq(s.closes[NET_CLOSE_IDLE_TIMEOUT], 0);
  fx_free(fx);
}

static const char BUSY[] =
    "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
    "Content-Length: 39\r\nConnection: close\r\nRetry-After: 5\r\n\r\n"
    "{\"error\":\"too many connections, later\"}";

Test(net_server, connections_above_the_limit_get_503_until_one_closes) {
  fx_t *fx = fx_create();
  fx->cfg.connections_max = 3;
  fx_start(fx);
  client_t *a = cl_connect(fx);
  client_t *b = cl_connect(fx);
  settle(fx);
  cr_assert_eq(stats(fx).connections, 2); /* below */
  client_t *c = cl_connect(fx);
  settle(fx);
  cr_assert_eq(stats(fx).connections, 3); /* at: accepted */
  cl_send(c, REQ("GET /health"));
  expect_health(c);
  client_t *d = cl_connect(fx); /* above */
  settle(fx);
  cl_expect_bytes(d, BUSY, strlen(BUSY));
  cl_expect_eof(d);
  net_server_stats_t s = stats(fx);
  cr_assert_eq(s.connections, 3);
  cr_assert_eq(s.rejected_limit, 1);
  cr_assert_eq(s.accepted, 3);
  /* One leaves: the next is accepted and served, the one after refused. */
  cl_close(a);
  settle(fx);
  cr_assert_eq(stats(fx).connections, 2);
  client_t *e = cl_connect(fx);
  cl_send(e, REQ("GET /health"));
  expect_health(e);
  client_t *f = cl_connect(fx);
  settle(fx);
  resp_t r;
  cr_assert(cl_take_response(f, &r, true));
  cr_assert_eq(r.status, 503);
  cl_expect_eof(f);
  s = stats(fx);
  cr_assert_eq(s.connections, 3);
  cr_assert_eq(s.rejected_limit, 2);
  cr_assert_eq(s.accepted, 4);
  cl_send(b, REQ("GET /health")); /* the old ones were never disturbed */
  expect_health(b);
  fx_free(fx);
}

/* ========================================================================== */
/* Pipelining, partial reads and writes */
/* ========================================================================== */

Test(net_server, pipelined_requests_are_answered_in_order) {
  fx_t *fx = fx_new();
  client_t *cl = cl_connect(fx);
  cl_send(cl, REQ("GET /health") REQ("GET /app.js") REQ("GET /nope"));
  expect_health(cl);
  resp_t r;
  cl_expect_response(cl, &r, true);
  check_head(&r, "200 OK", "text/javascript; charset=utf-8", strlen(APP_JS),
             true, STATIC_CODE_HEADERS);
  check_body_str(&r, APP_JS);
  cl_expect_response(cl, &r, true);
  cr_assert_eq(r.status, 404);
  cl_expect_quiet(cl);
  cr_assert_eq(stats(fx).http_requests, 3);
  fx_free(fx);
}

/* More pipelined requests than the server queues answers for at once
 * (CONN_OUT_PIECES: parsing pauses until output drains, Invariant (2)). */
#define PIPELINED_MANY 100u

Test(net_server, many_pipelined_requests_are_all_answered_in_order) {
  fx_t *fx = fx_new();
  client_t *cl = cl_connect(fx);
  static char reqs[PIPELINED_MANY * 64];
  size_t len = 0;
  for (uint32_t i = 0; i < PIPELINED_MANY; i++)
    len += (size_t)snprintf(
        reqs + len, sizeof(reqs) - len,
        "GET /api/sync?n=%u HTTP/1.1\r\nHost: " HOST "\r\n\r\n", i);
  cl_write(cl, reqs, len);
  settle(fx);
  for (uint32_t i = 0; i < PIPELINED_MANY; i++) {
    resp_t r;
    char text[256];
    cr_assert(cl_take_response(cl, &r, true),
              "response %u of %u missing; "
              "unread: %s",
              i, PIPELINED_MANY,
              esc(cl->data + cl->off, cl_unread(cl), text, sizeof(text)));
    char want[32];
    snprintf(want, sizeof(want), "sync n=%u", i);
    check_body_str(&r, want);
  }
  cl_expect_quiet(cl);
  fx_free(fx);
}

Test(net_server, request_followed_by_half_close_is_still_answered) {
  fx_t *fx = fx_new();
  client_t *cl = cl_connect(fx);
  /* HTTP/1.0 closes after its answer anyway; HTTP/1.1 keeps alive, and the
   * EOF read right after the request must not drop the answer queued for it
   * (nor the second one, pipelined in the same write). */
  cl_send(cl, "GET /health HTTP/1.0\r\n\r\n");
  rt_stream_shutdown(cl->s); /* done sending; still reading */
  resp_t r;
  cl_expect_response(cl, &r, true);
  check_head(&r, "200 OK", "application/json", strlen(HEALTH_BODY), false,
             NO_STORE);
  check_body_str(&r, HEALTH_BODY);
  cl_expect_eof(cl);
  client_t *kept = cl_connect(fx);
  cl_send(kept, REQ("GET /health") REQ("GET /app.js"));
  rt_stream_shutdown(kept->s);
  expect_health(kept);
  cl_expect_response(kept, &r, true);
  check_body_str(&r, APP_JS);
  cl_expect_eof(kept);
  /* A deferred answer, too: the EOF is read after the reply came. */
  client_t *later = cl_connect(fx);
  cl_send(later, REQ("GET /api/later"));
  rt_stream_shutdown(later->s);
  settle(fx);
  cl_expect_quiet(later);
  advance(fx, 2 * SEC);
  cl_expect_response(later, &r, true);
  cr_assert_eq(r.status, 202);
  check_body_str(&r, "{\"deferred\":1}");
  cl_expect_eof(later);
  cr_assert_eq(stats(fx).connections, 0);
  fx_free(fx);
}

Test(net_server, one_byte_writes_over_tiny_pipes_deliver_exact_responses) {
  const uint32_t buffers[] = {1, 2, 7, 16};
  for (size_t b = 0; b < sizeof(buffers) / sizeof(buffers[0]); b++) {
    fx_t *fx = fx_new();
    sim_link_config_t up = {.buffer = 1, .mss = 1};
    sim_link_config_t down = {.buffer = buffers[b], .mss = 1};
    client_t *cl = cl_connect_with(fx, &up, &down);
    const char *req = REQ("GET /logo.png") REQ("GET /");
    size_t len = strlen(req);
    for (size_t i = 0; i < len; i++) {
      int64_t n = rt_stream_write(cl->s, req + i, 1);
      cr_assert_eq(n, 1, "byte %zu with buffer %u", i, buffers[b]);
      settle(fx);
    }
    resp_t r;
    cl_expect_response(cl, &r, true);
    check_head(&r, "200 OK", "image/png", sizeof(LOGO_PNG), true,
               STATIC_ASSET_HEADERS);
    check_body(&r, LOGO_PNG, sizeof(LOGO_PNG));
    cl_expect_response(cl, &r, true);
    check_head(&r, "200 OK", "text/html; charset=utf-8", strlen(INDEX_HTML),
               true, STATIC_HTML_HEADERS);
    check_body_str(&r, INDEX_HTML);
    cl_expect_quiet(cl);
    fx_free(fx);
  }
}

/* ========================================================================== */
/* Malformed requests */
/* ========================================================================== */

static void expect_400(const char *req) {
  fx_t *fx = fx_new();
  client_t *cl = cl_connect(fx);
  cl_send(cl, req);
  expect_error_and_close(cl, "400 Bad Request", "{\"error\":\"Bad Request\"}",
                         NULL);
  cr_assert_eq(stats(fx).http_status[4], 1);
  cl_close(cl);
  settle(fx);
  cr_assert_eq(stats(fx).closes[NET_CLOSE_HTTP_ERROR], 1);
  fx_free(fx);
}

Test(net_server, bad_request_line_is_400_and_close) {
  expect_400("GARBAGE\r\n\r\n");
  expect_400("GET /health HTTP/1.1 extra\r\nHost: " HOST "\r\n\r\n");
  expect_400("GET /he alth HTTP/1.1\r\nHost: " HOST "\r\n\r\n");
}

Test(net_server, bad_header_is_400_and_close) {
  expect_400("GET /health HTTP/1.1\r\nHost: " HOST "\r\nBad Header\r\n\r\n");
  expect_400("GET /health HTTP/1.1\r\nHost: " HOST "\r\nNo-Colon\r\n\r\n");
  expect_400("GET /health HTTP/1.1\r\nHost: " HOST
             "\r\nContent-Length: x\r\n\r\n");
}

Test(net_server, a_repeated_host_is_400_and_close) {
  expect_400("GET /health HTTP/1.1\r\nHost: " HOST "\r\nHost: " HOST
             "\r\n\r\n");
  expect_400("GET /health HTTP/1.1\r\nHost: " HOST "\r\nX: y\r\n"
             "host: evil.test\r\n\r\n");
}

Test(net_server, http11_without_host_is_400_and_http10_without_is_served) {
  expect_400("GET /health HTTP/1.1\r\n\r\n");
  fx_t *fx = fx_new();
  client_t *cl = cl_connect(fx);
  cl_send(cl, "GET /health HTTP/1.0\r\n\r\n");
  resp_t r;
  cl_expect_response(cl, &r, true);
  check_head(&r, "200 OK", "application/json", strlen(HEALTH_BODY), false,
             NO_STORE); /* 1.0 without keep-alive: closes */
  check_body_str(&r, HEALTH_BODY);
  cl_expect_eof(cl);
  fx_free(fx);
}

Test(net_server, a_chunked_trailer_is_not_a_header) {
  /* A trailer Host does not make up for a missing Host header. */
  expect_400("GET /health HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
             "0\r\nHost: x\r\n\r\n");
  /* A trailer Authorization never reaches a route. */
  fx_t *fx = fx_new();
  client_t *cl = cl_connect(fx);
  cl_send(cl, "GET /api/sync HTTP/1.1\r\nHost: " HOST
              "\r\nTransfer-Encoding: chunked\r\n\r\n"
              "0\r\nAuthorization: Bearer forged\r\n\r\n");
  resp_t r;
  cl_expect_response(cl, &r, true);
  cr_assert_eq(r.status, 200);
  cr_assert_eq(fx->sync_calls, 1);
  cr_assert_str_eq(fx->seen_auth, "(none)");
  cl_send(cl, REQ("GET /health"));
  expect_health(cl);
  fx_free(fx);
}

/* ========================================================================== */
/* Registered API routes */
/* ========================================================================== */

Test(net_server, sync_route_answers_with_its_status_body_and_type) {
  fx_t *fx = fx_new();
  client_t *cl = cl_connect(fx);
  cl_send(cl, "GET /api/sync?limit=5&x=y HTTP/1.1\r\nHost: " HOST
              "\r\nAuthorization: Bearer abc.def\r\n\r\n");
  resp_t r;
  cl_expect_response(cl, &r, true);
  check_head(&r, "200 OK", "text/plain; charset=utf-8",
             strlen("sync limit=5&x=y"), true, NO_STORE);
  check_body_str(&r, "sync limit=5&x=y");
  cr_assert_eq(fx->sync_calls, 1);
  cr_assert_str_eq(fx->seen_method, "GET");
  cr_assert_str_eq(fx->seen_path, "/api/sync");
  cr_assert_str_eq(fx->seen_query, "limit=5&x=y");
  cr_assert_str_eq(fx->seen_auth, "Bearer abc.def");
  /* A route without a content type answers application/json. */
  cl_send(cl, "POST /api/echo HTTP/1.1\r\nHost: " HOST
              "\r\nContent-Length: 11\r\n\r\n{\"a\":[1,2]}");
  cl_expect_response(cl, &r, true);
  check_head(&r, "200 OK", "application/json", 11, true, NO_STORE);
  check_body_str(&r, "{\"a\":[1,2]}");
  /* A route that fails answers 500 and the connection goes on. */
  cl_send(cl, REQ("GET /api/fail"));
  cl_expect_response(cl, &r, true);
  check_head(&r, "500 Internal Server Error", "application/json",
             strlen("{\"error\":\"internal error\"}"), true, NULL);
  cl_send(cl, REQ("GET /health"));
  expect_health(cl);
  fx_free(fx);
}

#define CONTINUE "HTTP/1.1 100 Continue\r\n\r\n"
#define ECHO_HEAD(version, extra)                                              \
  "POST /api/echo HTTP/" version "\r\nHost: " HOST "\r\n"                      \
  "Content-Length: 2\r\n" extra "Expect: 100-continue\r\n\r\n"

static void expect_echo(client_t *cl, bool keep_alive) {
  resp_t r;
  cl_expect_response(cl, &r, true);
  check_head(&r, "200 OK", "application/json", 2, keep_alive, NO_STORE);
  check_body_str(&r, "{}");
}

Test(net_server, expect_100_continue_gets_100_before_the_body_is_sent) {
  fx_t *fx = fx_new();
  client_t *cl = cl_connect(fx);
  cl_send(cl, ECHO_HEAD("1.1", ""));
  settle(fx);
  cl_expect_bytes(cl, CONTINUE, strlen(CONTINUE));
  cl_expect_quiet(cl);
  cl_send(cl, "{}");
  expect_echo(cl, true);
  /* The content sent with the head anyway: no need to ask for it. */
  cl_send(cl, ECHO_HEAD("1.1", "") "{}");
  expect_echo(cl, true);
  cl_expect_quiet(cl);
  /* HTTP/1.0: the expectation is ignored (RFC 9110 10.1.1). */
  client_t *old = cl_connect(fx);
  cl_send(old, ECHO_HEAD("1.0", ""));
  cl_expect_quiet(old);
  cl_send(old, "{}");
  expect_echo(old, false);
  cr_assert_eq(stats(fx).http_status[1], 0, "100 is not a request's answer");
  fx_free(fx);
}

Test(net_server, expect_100_continue_that_is_refused_gets_its_status_at_once) {
  fx_t *fx = fx_new();
  client_t *cl = cl_connect(fx);
  cl_send(cl, "POST /api/echo HTTP/1.1\r\nHost: " HOST "\r\n"
              "Content-Length: 4097\r\nExpect: 100-continue\r\n\r\n");
  expect_error_and_close(cl, "413 Payload Too Large",
                         "{\"error\":\"Payload Too Large\"}", NULL);
  cl = cl_connect(fx);
  cl_send(cl, "POST /api/echo HTTP/1.1\r\nContent-Length: 2\r\n"
              "Expect: 100-continue\r\n\r\n"); /* no Host */
  expect_error_and_close(cl, "400 Bad Request", "{\"error\":\"Bad Request\"}",
                         NULL);
  fx_free(fx);
}

Test(net_server, deferred_route_answers_on_reply_and_holds_pipelined_requests) {
  fx_t *fx = fx_new();
  client_t *cl = cl_connect(fx);
  cl_send(cl, REQ("GET /api/later") REQ("GET /health"));
  settle(fx);
  cr_assert_eq(fx->deferred_len, 1);
  cl_expect_quiet(cl); /* /health waits behind the deferred call */
  /* A reply for another call id is not this one's answer. */
  run_to(fx, 1 * SEC);
  cr_assert_eq(send_reply(fx->w, fx->deferred[0].reply_to,
                          fx->deferred[0].call_id + 1, 200, "{\"wrong\":1}"),
               RT_PUSH_QUEUED);
  settle(fx);
  cl_expect_quiet(cl);
  run_to(fx, 2 * SEC - 1);
  cl_expect_quiet(cl);
  run_to(fx, 2 * SEC); /* the replier answers now */
  resp_t r;
  cl_expect_response(cl, &r, true);
  check_head(&r, "202 Accepted", "application/json", strlen("{\"deferred\":1}"),
             true, NO_STORE);
  check_body_str(&r, "{\"deferred\":1}");
  expect_health(cl);
  cl_expect_quiet(cl);
  /* The next deferred call on the same connection works the same way. */
  cl_send(cl, REQ("GET /api/later"));
  settle(fx);
  cl_expect_quiet(cl);
  advance(fx, 2 * SEC);
  cl_expect_response(cl, &r, true);
  cr_assert_eq(r.status, 202);
  cr_assert_eq(fx->deferred_len, 2);
  cr_assert_gt(fx->deferred[1].call_id, fx->deferred[0].call_id);
  fx_free(fx);
}

Test(net_server, deferred_route_without_reply_gets_504_after_reply_timeout) {
  fx_t *fx = fx_new();
  fx->reply_mute = true;
  client_t *cl = cl_connect(fx);
  cl_send(cl, REQ("GET /api/later") REQ("GET /health"));
  settle(fx);
  run_to(fx, 10 * SEC - 1);
  cl_expect_quiet(cl);
  run_to(fx, 10 * SEC);
  expect_error_and_close(cl, "504 Gateway Timeout",
                         "{\"error\":\"the game did not answer in time\"}",
                         NULL);
  /* A reply that comes after the 504 changes nothing. */
  (void)send_reply(fx->w, fx->deferred[0].reply_to, fx->deferred[0].call_id,
                   200, "{}");
  advance(fx, 5 * SEC);
  cl_expect_eof(cl);
  net_server_stats_t s = stats(fx);
  cr_assert_eq(s.http_status[5], 1);
  cr_assert_eq(s.http_status[2], 0);
  cr_assert_eq(s.closes[NET_CLOSE_REPLY_TIMEOUT], 1);
  fx_free(fx);
}

Test(net_server, configured_reply_timeout_applies) {
  fx_t *fx = fx_create();
  fx->cfg.reply_timeout = 3 * SEC;
  fx_start(fx);
  fx->reply_mute = true;
  client_t *cl = cl_connect(fx);
  cl_send(cl, REQ("GET /api/later"));
  run_to(fx, 3 * SEC - 1);
  cl_expect_quiet(cl);
  run_to(fx, 3 * SEC);
  resp_t r;
  cl_expect_response(cl, &r, true);
  cr_assert_eq(r.status, 504);
  fx_free(fx);
}

Test(net_server, head_on_a_get_route_answers_like_get_without_a_body) {
  fx_t *fx = fx_new();
  client_t *cl = cl_connect(fx);
  /* The GET behind each must start where the HEAD answer's head ends. */
  cl_send(cl, REQ("HEAD /api/sync?limit=5") REQ("GET /health")
                  REQ("HEAD /api/later") REQ("GET /health"));
  resp_t r;
  cl_expect_response(cl, &r, false);
  check_head(&r, "200 OK", "text/plain; charset=utf-8", strlen("sync limit=5"),
             true, NO_STORE);
  cr_assert_eq(fx->sync_calls, 1);
  cr_assert_str_eq(fx->seen_method, "GET", "the route runs as registered");
  expect_health(cl);
  /* A deferred answer loses its body too. */
  advance(fx, 2 * SEC);
  cl_expect_response(cl, &r, false);
  check_head(&r, "202 Accepted", "application/json", strlen("{\"deferred\":1}"),
             true, NO_STORE);
  expect_health(cl);
  cl_expect_quiet(cl);
  fx_free(fx);
}

Test(net_server, wrong_method_on_a_route_path_is_405) {
  fx_t *fx = fx_new();
  client_t *cl = cl_connect(fx);
  const char *body = "{\"error\":\"method not allowed\"}";
  cl_send(cl, "POST /api/sync HTTP/1.1\r\nHost: " HOST
              "\r\nContent-Length: 0\r\n\r\n" REQ("GET /api/echo"));
  resp_t r;
  cl_expect_response(cl, &r, true);
  check_head(&r, "405 Method Not Allowed", "application/json", strlen(body),
             true, "Allow: GET, HEAD\r\n");
  check_body_str(&r, body);
  cl_expect_response(cl, &r, true);
  check_head(&r, "405 Method Not Allowed", "application/json", strlen(body),
             true, "Allow: POST\r\n");
  cr_assert_eq(fx->sync_calls, 0);
  fx_free(fx);
}

/* With a metrics token, /metrics answers only its bearer: no header, the
 * wrong token, one character short or long, and another scheme get 401;
 * the token gets 200, for GET and HEAD. */
Test(net_server, metrics_token_guards_metrics_and_nothing_else) {
  fx_t *fx = fx_create();
  fx->cfg.metrics_token = "0123456789abcdef";
  fx_start(fx);
  static const char *const refused[] = {
      "",
      "Authorization: Bearer 0123456789abcdeX\r\n",
      "Authorization: Bearer 0123456789abcde\r\n",
      "Authorization: Bearer 0123456789abcdef0\r\n",
      "Authorization: Basic 0123456789abcdef\r\n",
  };
  for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
    client_t *cl = cl_connect(fx);
    char req[256];
    snprintf(req, sizeof(req),
             "GET /metrics HTTP/1.1\r\nHost: " HOST "\r\n%s\r\n", refused[i]);
    cl_send(cl, req);
    resp_t r;
    cl_expect_response(cl, &r, true);
    cr_assert_eq(r.status, 401, "case %zu: %d", i, r.status);
    cr_assert(strstr(r.head, "WWW-Authenticate: Bearer") != NULL);
  }
  for (int head = 0; head < 2; head++) {
    client_t *cl = cl_connect(fx);
    char req[256];
    snprintf(req, sizeof(req),
             "%s /metrics HTTP/1.1\r\nHost: " HOST
             "\r\nAuthorization: bearer 0123456789abcdef\r\n\r\n",
             head ? "HEAD" : "GET");
    cl_send(cl, req);
    resp_t r;
    cl_expect_response(cl, &r, head == 0);
    cr_assert_eq(r.status, 200);
    if (head == 0)
      cr_assert(strstr((const char *)r.body, "overcookied_connections") !=
                NULL);
  }
  client_t *cl = cl_connect(fx);
  cl_send(cl, REQ("GET /health"));
  resp_t r;
  cl_expect_response(cl, &r, true);
  cr_assert_eq(r.status, 200, "the rest of the server needs no token");
  fx_free(fx);
}

/* ---- Per-address limits (net_peers.h) ------------------------------------ */

static void peer_behaviour(rt_actor_t *self, const rt_msg_t *msg) {
  (void)self;
  (void)msg;
}

/* An actor for clients to connect from, and the address the server sees
 * for them: sim_connect gives the server end the connecting actor's
 * address, 10.a.b.c from its id (sim/sim_pipe.c). */
static void peer_spawn(fx_t *fx, rt_actor_id_t *who, char *addr) {
  rt_actor_spec_t spec = {.name = "peer",
                          .behaviour = peer_behaviour,
                          .mailbox_cap = 4,
                          .overflow = RT_OVERFLOW_REJECT};
  cr_assert_eq(rt_spawn(fx->w, &spec, who), RT_OK);
  if (addr != NULL)
    snprintf(addr, RT_PEER_MAX, "10.%u.%u.%u", (unsigned)(*who >> 16) & 255u,
             (unsigned)(*who >> 8) & 255u, (unsigned)*who & 255u);
}

/* POST /api/echo, metered per address. */
static void limit_echo_route(fx_t *fx) {
  for (uint32_t i = 0; i < fx->cfg.routes_len; i++)
    if (strcmp(fx->cfg.routes[i].path, "/api/echo") == 0)
      fx->cfg.routes[i].per_address_limited = true;
}

/* A client seen at who's address (an actor made at the first call). */
static client_t *cl_connect_from(fx_t *fx, rt_actor_id_t *who, char *addr) {
  if (*who == 0)
    peer_spawn(fx, who, addr);
  cr_assert_lt(fx->clients_len, CLIENTS_MAX);
  client_t *cl = calloc(1, sizeof(*cl));
  cr_assert_not_null(cl);
  cl->fx = fx;
  cr_assert_eq(sim_connect(fx->sw, PORT, *who, NULL, NULL, &cl->s), RT_OK);
  fx->clients[fx->clients_len++] = cl;
  return cl;
}

static int get_status(client_t *cl, const char *req) {
  cl_send(cl, req);
  resp_t r;
  cl_expect_response(cl, &r, true);
  return r.status;
}

Test(net_server, connections_per_address_below_at_and_above_the_cap) {
  fx_t *fx = fx_create();
  fx->cfg.peers.connections_max = 2;
  fx_start(fx);
  rt_actor_id_t a = 0, b = 0;
  client_t *a1 = cl_connect_from(fx, &a, NULL);
  client_t *a2 = cl_connect_from(fx, &a, NULL);
  cr_assert_eq(get_status(a1, REQ("GET /health")), 200);
  cr_assert_eq(get_status(a2, REQ("GET /health")), 200);
  client_t *a3 = cl_connect_from(fx, &a, NULL);
  settle(fx);
  resp_t r;
  cr_assert(cl_take_response(a3, &r, true), "a 503 was sent");
  cr_assert_eq(r.status, 503);
  static const char want[] =
      "{\"error\":\"too many connections from your address\"}";
  cr_assert_eq(r.body_len, sizeof(want) - 1, "Content-Length is its length");
  cr_assert(memcmp(r.body, want, sizeof(want) - 1) == 0);
  cl_expect_eof(a3);
  client_t *b1 = cl_connect_from(fx, &b, NULL);
  cr_assert_eq(get_status(b1, REQ("GET /health")), 200, "another address");
  /* One of a's closes: a has room again. */
  rt_stream_close(a1->s);
  a1->s = NULL;
  settle(fx);
  client_t *a4 = cl_connect_from(fx, &a, NULL);
  cr_assert_eq(get_status(a4, REQ("GET /health")), 200);
  net_server_stats_t s = stats(fx);
  cr_assert_eq(s.rejected_address, 1);
  cr_assert_eq(s.rejected_limit, 0);
  /* Connections of unknown address (the other tests' clients) are never
   * counted. */
  for (int i = 0; i < 4; i++)
    cr_assert_eq(get_status(cl_connect(fx), REQ("GET /health")), 200);
  fx_free(fx);
}

static const char *post_echo(char *buf, size_t cap, const char *xff) {
  snprintf(buf, cap,
           "POST /api/echo HTTP/1.1\r\nHost: " HOST "\r\n%s%s%s"
           "Content-Length: 2\r\n\r\nhi",
           xff != NULL ? "X-Forwarded-For: " : "", xff != NULL ? xff : "",
           xff != NULL ? "\r\n" : "");
  return buf;
}

Test(net_server, a_rate_limited_route_answers_429_per_address) {
  fx_t *fx = fx_create();
  fx->cfg.peers.requests_per_minute = 2; /* one per 30 s, 2 at once */
  limit_echo_route(fx);
  fx_start(fx);
  rt_actor_id_t a = 0, b = 0;
  client_t *ca = cl_connect_from(fx, &a, NULL);
  char req[256];
  cr_assert_eq(get_status(ca, post_echo(req, sizeof(req), NULL)), 200);
  cr_assert_eq(get_status(ca, post_echo(req, sizeof(req), NULL)), 200);
  cl_send(ca, post_echo(req, sizeof(req), NULL));
  resp_t r;
  cl_expect_response(ca, &r, true);
  cr_assert_eq(r.status, 429);
  cr_assert(strstr(r.head, "Retry-After: 30\r\n") != NULL, "%s", r.head);
  /* Other routes and other addresses are not metered with it. */
  cr_assert_eq(get_status(ca, REQ("GET /health")), 200);
  client_t *cb = cl_connect_from(fx, &b, NULL);
  cr_assert_eq(get_status(cb, post_echo(req, sizeof(req), NULL)), 200);
  /* Without a trusted proxy, X-Forwarded-For changes nothing. */
  cr_assert_eq(get_status(ca, post_echo(req, sizeof(req), "192.0.2.9")), 429);
  advance(fx, 30 * SEC); /* one token back (and ca closed as idle) */
  ca = cl_connect_from(fx, &a, NULL);
  cr_assert_eq(get_status(ca, post_echo(req, sizeof(req), NULL)), 200);
  cr_assert_eq(get_status(ca, post_echo(req, sizeof(req), NULL)), 429);
  cr_assert_eq(stats(fx).throttled, 3);
  fx_free(fx);
}

Test(net_server,
     through_the_trusted_proxy_requests_count_for_the_address_it_adds) {
  fx_t *fx = fx_create();
  fx->cfg.peers.connections_max = 1;
  fx->cfg.peers.requests_per_minute = 1;
  limit_echo_route(fx);
  rt_actor_id_t proxy = 0;
  char proxy_addr[RT_PEER_MAX];
  peer_spawn(fx, &proxy, proxy_addr);
  fx->cfg.trusted_proxy = proxy_addr;
  fx_start(fx);
  client_t *p1 = cl_connect_from(fx, &proxy, NULL);
  /* The proxy's own connections are not capped per address. */
  client_t *p2 = cl_connect_from(fx, &proxy, NULL);
  client_t *p3 = cl_connect_from(fx, &proxy, NULL);
  char req[256];
  cr_assert_eq(get_status(p1, post_echo(req, sizeof(req), "192.0.2.1")), 200);
  cr_assert_eq(get_status(p2, post_echo(req, sizeof(req), "192.0.2.1")), 429,
               "the same client through another proxy connection");
  cr_assert_eq(get_status(p3, post_echo(req, sizeof(req), "192.0.2.2")), 200);
  /* Only the last entry is the proxy's word; the ones before are the
   * client's, who may write anything there. */
  cr_assert_eq(
      get_status(p3, post_echo(req, sizeof(req), "203.0.113.5, 192.0.2.1")),
      429);
  cr_assert_eq(
      get_status(p3, post_echo(req, sizeof(req), "192.0.2.1, 192.0.2.3")), 200);
  fx_free(fx);
}

Test(net_server, a_405_allows_every_method_of_the_path) {
  fx_t *fx = fx_create();
  net_server_config_t *c = &fx->cfg;
  c->routes[c->routes_len++] = (net_route_t){
      .method = "DELETE", .path = "/api/sync", .fn = api_echo, .ctx = fx};
  fx_start(fx);
  client_t *cl = cl_connect(fx);
  cl_send(cl, "PUT /api/sync HTTP/1.1\r\nHost: " HOST
              "\r\nContent-Length: 0\r\n\r\n");
  resp_t r;
  cl_expect_response(cl, &r, true);
  check_head(&r, "405 Method Not Allowed", "application/json",
             strlen("{\"error\":\"method not allowed\"}"), true,
             "Allow: GET, HEAD, DELETE\r\n");
  /* The WebSocket path takes GET only. */
  cl = cl_connect(fx);
  cl_send(cl,
          "POST /ws HTTP/1.1\r\nHost: " HOST "\r\nContent-Length: 0\r\n\r\n");
  expect_error_and_close(cl, "405 Method Not Allowed",
                         "{\"error\":\"websocket upgrade needs GET\"}",
                         "Allow: GET\r\n");
  fx_free(fx);
}

/* ========================================================================== */
/* Cross-origin API calls (CORS) */
/* ========================================================================== */

#define FRONTEND "http://localhost:3000"
#define PLAY "https://play.example"
/* A request with an Origin (and more header lines, each ending "\r\n"). */
#define REQ_FROM(method_target, origin, more)                                  \
  method_target " HTTP/1.1\r\nHost: " HOST "\r\nOrigin: " origin "\r\n" more   \
                "\r\n"
/* What an answer to a configured origin adds, after the route's lines. */
#define CORS(origin)                                                           \
  "Access-Control-Allow-Origin: " origin "\r\n"                                \
  "Access-Control-Allow-Credentials: true\r\nVary: Origin\r\n"
#define PREFLIGHT_HEAD(methods, origin)                                        \
  "HTTP/1.1 204 No Content\r\nConnection: keep-alive\r\n"                      \
  "Access-Control-Allow-Methods: " methods "\r\n"                              \
  "Access-Control-Allow-Headers: Authorization, Content-Type\r\n"              \
  "Access-Control-Max-Age: 600\r\n" CORS(origin) "\r\n"
/* What a browser sends before a GET with Authorization, or a JSON POST. */
#define ASKS(method)                                                           \
  "Access-Control-Request-Method: " method "\r\n"                              \
  "Access-Control-Request-Headers: authorization,content-type\r\n"

static fx_t *fx_new_cors(void) {
  fx_t *fx = fx_create();
  fx->cfg.cors_origins[0] = PLAY;
  fx->cfg.cors_origins[1] = FRONTEND;
  fx->cfg.cors_origins_len = 2;
  fx_start(fx);
  return fx;
}

Test(net_server,
     an_api_answer_to_a_configured_origin_allows_it_with_credentials) {
  fx_t *fx = fx_new_cors();
  client_t *cl = cl_connect(fx);
  cl_send(cl, REQ_FROM("GET /api/sync?limit=5", FRONTEND,
                       "Authorization: Bearer abc.def\r\n"));
  resp_t r;
  cl_expect_response(cl, &r, true);
  check_head(&r, "200 OK", "text/plain; charset=utf-8", strlen("sync limit=5"),
             true, NO_STORE CORS(FRONTEND));
  check_body_str(&r, "sync limit=5");
  cr_assert_str_eq(fx->seen_auth, "Bearer abc.def");
  /* The other origin, a POST. */
  cl_send(cl, "POST /api/echo HTTP/1.1\r\nHost: " HOST "\r\nOrigin: " PLAY
              "\r\nContent-Type: application/json\r\n"
              "Content-Length: 2\r\n\r\n{}");
  cl_expect_response(cl, &r, true);
  check_head(&r, "200 OK", "application/json", 2, true, NO_STORE CORS(PLAY));
  /* A deferred answer names the origin of the request it answers. */
  cl_send(cl, REQ_FROM("GET /api/later", FRONTEND, ""));
  advance(fx, 2 * SEC);
  cl_expect_response(cl, &r, true);
  check_head(&r, "202 Accepted", "application/json", strlen("{\"deferred\":1}"),
             true, NO_STORE CORS(FRONTEND));
  /* The next request, without an Origin, gets none of it. */
  cl_send(cl, REQ("GET /api/sync"));
  cl_expect_response(cl, &r, true);
  check_head(&r, "200 OK", "text/plain; charset=utf-8", strlen("sync "), true,
             NO_STORE);
  cl_expect_quiet(cl);
  fx_free(fx);
}

Test(net_server,
     a_preflight_from_a_configured_origin_is_204_with_the_paths_methods) {
  fx_t *fx = fx_new_cors();
  client_t *cl = cl_connect(fx);
  /* Preflight, then the real request, then another path's preflight, then
   * a request elsewhere: answered in order on one connection. */
  cl_send(cl, REQ_FROM("OPTIONS /api/sync", FRONTEND, ASKS("GET"))
                  REQ_FROM("GET /api/sync", FRONTEND,
                           "Authorization: Bearer abc.def\r\n")
                      REQ_FROM("OPTIONS /api/echo", PLAY, ASKS("POST"))
                          REQ("GET /health"));
  resp_t r;
  cl_expect_response(cl, &r, true);
  cr_assert_str_eq(r.head, PREFLIGHT_HEAD("GET, HEAD", FRONTEND));
  cr_assert_eq(r.body_len, 0);
  cl_expect_response(cl, &r, true);
  check_head(&r, "200 OK", "text/plain; charset=utf-8", strlen("sync "), true,
             NO_STORE CORS(FRONTEND));
  cr_assert_eq(fx->sync_calls, 1, "the preflight never reaches the route");
  cl_expect_response(cl, &r, true);
  cr_assert_str_eq(r.head, PREFLIGHT_HEAD("POST", PLAY));
  expect_health(cl);
  cl_expect_quiet(cl);
  /* A path with several methods lists them all, as its 405 does. */
  fx_free(fx);
  fx = fx_create();
  fx->cfg.cors_origins[0] = FRONTEND;
  fx->cfg.cors_origins_len = 1;
  fx->cfg.routes[fx->cfg.routes_len++] = (net_route_t){
      .method = "DELETE", .path = "/api/sync", .fn = api_echo, .ctx = fx};
  fx_start(fx);
  cl = cl_connect(fx);
  cl_send(cl, REQ_FROM("OPTIONS /api/sync", FRONTEND, ASKS("DELETE")));
  cl_expect_response(cl, &r, true);
  cr_assert_str_eq(r.head, PREFLIGHT_HEAD("GET, HEAD, DELETE", FRONTEND));
  cr_assert_eq(stats(fx).http_status[2], 1);
  fx_free(fx);
}

Test(net_server, errors_of_the_api_carry_cors_to_a_configured_origin) {
  fx_t *fx = fx_new_cors();
  fx->reply_mute = true;
  client_t *cl = cl_connect(fx);
  resp_t r;
  cl_send(cl, REQ_FROM("GET /api/fail", PLAY, ""));
  cl_expect_response(cl, &r, true);
  check_head(&r, "500 Internal Server Error", "application/json",
             strlen("{\"error\":\"internal error\"}"), true, CORS(PLAY));
  /* A method the path does not take. */
  cl_send(cl, "PUT /api/sync HTTP/1.1\r\nHost: " HOST "\r\nOrigin: " PLAY
              "\r\nContent-Length: 0\r\n\r\n");
  cl_expect_response(cl, &r, true);
  check_head(&r, "405 Method Not Allowed", "application/json",
             strlen("{\"error\":\"method not allowed\"}"), true,
             ALLOW_GET_HEAD CORS(PLAY));
  /* A deferred call nobody answers: its 504. */
  cl_send(cl, REQ_FROM("GET /api/later", FRONTEND, ""));
  advance(fx, 10 * SEC);
  expect_error_and_close(cl, "504 Gateway Timeout",
                         "{\"error\":\"the game did not answer in time\"}",
                         CORS(FRONTEND));
  /* Before there is a request to route, there is no path: none. */
  cl = cl_connect(fx);
  cl_send(cl, "POST /api/echo HTTP/1.1\r\nHost: " HOST "\r\nOrigin: " PLAY
              "\r\nContent-Length: 4097\r\n\r\n");
  expect_error_and_close(cl, "413 Payload Too Large",
                         "{\"error\":\"Payload Too Large\"}", NULL);
  fx_free(fx);
}

/* Nothing changes for anyone but the configured origins: no CORS line,
 * and an OPTIONS is the 405 it always was. */
Test(net_server, an_origin_not_configured_gets_no_cors_and_options_stays_405) {
  const char *method_body = "{\"error\":\"method not allowed\"}";
  for (int configured = 0; configured < 2; configured++) {
    fx_t *fx = configured ? fx_new_cors() : fx_new();
    client_t *cl = cl_connect(fx);
    /* Not byte for byte one of them: each is another origin to a browser,
     * or one no browser writes. */
    const char *others[] = {"https://evil.example",
                            "HTTP://LOCALHOST:3000",
                            FRONTEND "/",
                            "http://localhost:3001",
                            "https://localhost:3000",
                            "null",
                            configured ? "https://play.example.evil"
                                       : FRONTEND};
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
      char req[512];
      snprintf(req, sizeof(req),
               "GET /api/sync HTTP/1.1\r\nHost: " HOST "\r\nOrigin: %s\r\n\r\n"
               "OPTIONS /api/sync HTTP/1.1\r\nHost: " HOST
               "\r\nOrigin: %s\r\n" ASKS("GET") "\r\n",
               others[i], others[i]);
      cl_send(cl, req);
      resp_t r;
      cl_expect_response(cl, &r, true);
      check_head(&r, "200 OK", "text/plain; charset=utf-8", strlen("sync "),
                 true, NO_STORE);
      cl_expect_response(cl, &r, true);
      check_head(&r, "405 Method Not Allowed", "application/json",
                 strlen(method_body), true, ALLOW_GET_HEAD);
      check_body_str(&r, method_body);
    }
    /* Without an Origin: the same. */
    cl_send(cl, REQ("OPTIONS /api/sync"));
    resp_t r;
    cl_expect_response(cl, &r, true);
    check_head(&r, "405 Method Not Allowed", "application/json",
               strlen(method_body), true, ALLOW_GET_HEAD);
    /* A configured origin off the API's paths: the page, /health and the
     * 404 page are not the API. */
    cl_send(cl, REQ_FROM("GET /", FRONTEND, "")
                    REQ_FROM("GET /health", FRONTEND, "")
                        REQ_FROM("OPTIONS /nothing", FRONTEND, ASKS("GET")));
    cl_expect_response(cl, &r, true);
    check_head(&r, "200 OK", "text/html; charset=utf-8", strlen(INDEX_HTML),
               true, STATIC_HTML_HEADERS);
    expect_health(cl);
    cl_expect_response(cl, &r, true);
    cr_assert_eq(r.status, 404);
    cr_assert_null(strstr(r.head, "Access-Control"));
    cl_expect_quiet(cl);
    cr_assert_eq(fx->sync_calls, sizeof(others) / sizeof(others[0]));
    fx_free(fx);
  }
}

/* ========================================================================== */
/* WebSocket upgrade */
/* ========================================================================== */

Test(net_server, upgrade_returns_101_with_the_rfc_6455_sample_accept) {
  fx_t *fx = fx_new();
  client_t *cl = ws_open(fx); /* checks the 101 byte for byte */
  cl_expect_quiet(cl);
  net_server_stats_t s = stats(fx);
  cr_assert_eq(s.ws_upgrades, 1);
  cr_assert_eq(s.websockets, 1);
  cr_assert_eq(s.http_status[1], 1);
  cr_assert_eq(fx->opens, 1);
  cr_assert_str_eq(fx->sessions[0].who.subject, ""); /* anonymous */
  fx_free(fx);
}

Test(net_server, repeated_connection_lines_are_one_list_and_upgrade) {
  fx_t *fx = fx_new();
  client_t *cl = cl_connect(fx);
  cl_send(cl, "GET /ws HTTP/1.1\r\nHost: " HOST "\r\n"
              "Connection: keep-alive\r\nUpgrade: websocket\r\n"
              "Connection: Upgrade\r\nSec-WebSocket-Key: " SAMPLE_KEY "\r\n"
              "Sec-WebSocket-Version: 13\r\n\r\n");
  cl_expect_switching(cl);
  cl_send_text(cl, "hi");
  cl_expect_text(cl, "hi");
  cr_assert_eq(stats(fx).ws_upgrades, 1);
  fx_free(fx);
}

Test(net_server, wrong_websocket_version_is_426_with_version_13) {
  fx_t *fx = fx_new();
  const char *versions[] = {"12", "14", "8", "-", "13, 8"};
  for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
    upgrade_t u = {.version = versions[i]};
    expect_refused(fx, &u, "426 Upgrade Required",
                   "unsupported websocket version",
                   "Sec-WebSocket-Version: 13\r\n");
  }
  upgrade_t ok = {.version = "13"};
  ws_open_with(fx, &ok);
  /* Whitespace around a value is not part of it (RFC 9112 5.1). */
  upgrade_t padded = {.version = "13 \t", .key = SAMPLE_KEY " "};
  ws_open_with(fx, &padded);
  cr_assert_eq(stats(fx).ws_upgrades, 2);
  fx_free(fx);
}

Test(net_server, plain_get_of_the_websocket_path_is_426) {
  fx_t *fx = fx_new();
  client_t *cl = cl_connect(fx);
  cl_send(cl, REQ("GET /ws"));
  expect_error_and_close(cl, "426 Upgrade Required",
                         "{\"error\":\"websocket upgrade required\"}",
                         "Upgrade: websocket\r\n");
  fx_free(fx);
}

Test(net_server, bad_websocket_key_is_400) {
  fx_t *fx = fx_new();
  const char *keys[] = {
      "-",                         /* missing */
      "short",                     /* not 24 characters */
      "dGhlIHNhbXBsZSBub25jZQ",    /* 22: padding cut */
      "dGhlIHNhbXBsZSBub25jZQ=!",  /* not base64 */
      "AAAAAAAAAAAAAAAAAAAAAAAA",  /* 24 characters but 18 bytes */
      "dGhlIHNhbXBsZSBub25jZTE=",  /* 17 bytes */
      "dGhlIHNhbXBsZSBub25jZQ==x", /* 25 */
  };
  for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
    upgrade_t u = {.key = keys[i]};
    expect_refused(fx, &u, "400 Bad Request", "bad Sec-WebSocket-Key", NULL);
  }
  cr_assert_eq(stats(fx).ws_upgrades, 0);
  cr_assert_eq(fx->opens, 0);
  fx_free(fx);
}

/* RFC 6455 4.2.1: the key is base64 of 16 bytes, so 24 characters: 22 from
 * the alphabet, the 22nd with its low 4 bits zero, then "==". Lenient
 * decoders read '=' anywhere as a zero digit and drop the unused bits. */
Test(net_server,
     websocket_key_not_exactly_16_bytes_in_canonical_base64_is_400) {
  fx_t *fx = fx_new();
  const char *keys[] = {
      "AAAAAAAAAAAAAAAAAAAAA===",  /* 15 bytes and a half */
      "AAAAAAAAAAAAAAAAAAAA====",  /* 15 bytes */
      "AAAAAAAAAAAAAAAAAAA=A===",  /* '=' inside */
      "=AAAAAAAAAAAAAAAAAAAAA==",  /* '=' first */
      "dGhlIHNhbXBsZSBub25jZR==",  /* the sample with an unused bit set */
      "dGhlIHNhbXBsZSBub25jZf==",  /* all four unused bits set */
      "dGhlIHNhbXBsZSBub25jZQ=A",  /* one '=' */
      "dGhlIHNhbXBsZSBub25j-Q==",  /* base64url, not base64 */
      "dGhlIHNhbXBsZSBub25j_Q==",  /* base64url, not base64 */
      "dGhlIHNhbXBsZSBu b25jZQ==", /* a space inside: 25 */
      "dGhlIHNhbXBsZSBub25jZQ\t=", /* a tab for a '=' */
  };
  for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
    upgrade_t u = {.key = keys[i]};
    expect_refused(fx, &u, "400 Bad Request", "bad Sec-WebSocket-Key", NULL);
  }
  cr_assert_eq(stats(fx).ws_upgrades, 0);
  cr_assert_eq(fx->opens, 0);
  /* Control: the sample still upgrades. */
  ws_open(fx);
  cr_assert_eq(stats(fx).ws_upgrades, 1);
  fx_free(fx);
}

/* Every symbol at every position: positions 0..20 take all 64; the 22nd
 * symbol only the four whose low 4 bits are zero (A, Q, g, w); '=' only at
 * 22 and 23; nothing else anywhere. 64 x 24 + 24 checks. */
Test(net_server, accept_key_takes_exactly_the_canonical_base64_of_16_bytes) {
  static const char alphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  char out[NET_WS_ACCEPT_LEN + 1];
  cr_assert_eq(net_ws_accept_key(SAMPLE_KEY, out), RT_OK);
  cr_assert_str_eq(out, SAMPLE_ACCEPT);
  char key[NET_WS_KEY_LEN + 1];
  for (size_t pos = 0; pos < 22; pos++) {
    for (size_t v = 0; v < 64; v++) {
      memcpy(key, "AAAAAAAAAAAAAAAAAAAAAA==", sizeof(key));
      key[pos] = alphabet[v];
      bool want = pos < 21 || (v & 15) == 0;
      cr_assert_eq(net_ws_accept_key(key, out) == RT_OK, want, "%s", key);
    }
    memcpy(key, "AAAAAAAAAAAAAAAAAAAAAA==", sizeof(key));
    key[pos] = '=';
    cr_assert_eq(net_ws_accept_key(key, out), RT_EINVAL, "%s", key);
  }
  for (size_t pos = 22; pos < 24; pos++) {
    for (size_t v = 0; v < 64; v++) {
      memcpy(key, "AAAAAAAAAAAAAAAAAAAAAA==", sizeof(key));
      key[pos] = alphabet[v];
      cr_assert_eq(net_ws_accept_key(key, out), RT_EINVAL, "%s", key);
    }
  }
  static const char *const others[] = {
      "AAAAAAAAAAAAAAAAAAAAA===",
      "AAAAAAAAAAAAAAAAAAAA====",
      "AAAAAAAAAAAAAAAAAAA=A===",
      "AAAAAAAAAAAAAAAAAAAAAAAA",
      "AAAAAAAAAAAAAAAAAAAAAA=",
      "AAAAAAAAAAAAAAAAAAAAAA===",
      " AAAAAAAAAAAAAAAAAAAAA==",
      "AAAAAAAAAAAAAAAAAAAAAA\n=",
      "",
  };
  for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++)
    cr_assert_eq(net_ws_accept_key(others[i], out), RT_EINVAL, "'%s'",
                 others[i]);
  cr_assert_eq(net_ws_accept_key(NULL, out), RT_EINVAL);
}

Test(net_server, origin_of_the_same_host_is_allowed_and_others_get_403) {
  fx_t *fx = fx_new();
  const char *allowed[] = {NULL, "http://" HOST, "https://" HOST,
                           "HTTP://GAME.TEST:8080"};
  for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++) {
    upgrade_t u = {.origin = allowed[i]};
    ws_open_with(fx, &u);
  }
  const char *refused[] = {"http://evil.test",
                           "http://game.test:8081",
                           "http://game.test",
                           "http://" HOST ".evil.test",
                           "null",
                           ""};
  for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
    upgrade_t u = {.origin = refused[i]};
    expect_refused(fx, &u, "403 Forbidden", "origin not allowed", NULL);
  }
  cr_assert_eq(stats(fx).ws_upgrades, 4);
  cr_assert_eq(fx->opens, 4);
  fx_free(fx);
}

Test(net_server, configured_origins_replace_the_same_host_rule) {
  fx_t *fx = fx_create();
  fx->cfg.allowed_origins[0] = "https://play.example";
  fx->cfg.allowed_origins[1] = "http://localhost:5173";
  fx->cfg.allowed_origins_len = 2;
  fx_start(fx);
  const char *allowed[] = {"https://play.example", "http://localhost:5173",
                           NULL};
  for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++) {
    upgrade_t u = {.origin = allowed[i]};
    ws_open_with(fx, &u);
  }
  const char *refused[] = {"http://" HOST, "https://play.example:443",
                           "http://play.example", "https://evil.example"};
  for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
    upgrade_t u = {.origin = refused[i]};
    expect_refused(fx, &u, "403 Forbidden", "origin not allowed", NULL);
  }
  cr_assert_eq(fx->opens, 3);
  fx_free(fx);
}

Test(net_server, missing_or_rejected_token_is_401_without_upgrade) {
  fx_t *fx = fx_create();
  fx->cfg.authenticate = auth_check;
  fx->cfg.auth_ctx = fx;
  fx_start(fx);
  upgrade_t missing = {.target = "/ws"};
  expect_refused(fx, &missing, "401 Unauthorized", "missing or invalid token",
                 NULL);
  upgrade_t other = {.target = "/ws?tok=good-token"};
  expect_refused(fx, &other, "401 Unauthorized", "missing or invalid token",
                 NULL);
  upgrade_t empty = {.target = "/ws?token="};
  expect_refused(fx, &empty, "401 Unauthorized", "missing or invalid token",
                 NULL);
  cr_assert_eq(fx->auth_calls, 0, "no token, no check");
  upgrade_t bad = {.target = "/ws?token=bad-token"};
  expect_refused(fx, &bad, "401 Unauthorized", "missing or invalid token",
                 NULL);
  cr_assert_eq(fx->auth_calls, 1);
  cr_assert_str_eq(fx->auth_last, "bad-token");
  net_server_stats_t s = stats(fx);
  cr_assert_eq(s.ws_upgrades, 0);
  cr_assert_eq(s.websockets, 0);
  cr_assert_eq(fx->opens, 0);
  fx_free(fx);
}

Test(net_server, accepted_token_gives_the_session_its_identity) {
  fx_t *fx = fx_create();
  fx->cfg.authenticate = auth_check;
  fx->cfg.auth_ctx = fx;
  fx_start(fx);
  upgrade_t u = {.target = "/ws?room=1&token=good-token"};
  client_t *cl = ws_open_with(fx, &u);
  cr_assert_eq(fx->auth_calls, 1);
  cr_assert_eq(fx->opens, 1);
  cr_assert_str_eq(fx->sessions[0].who.subject, "u-42");
  cr_assert_str_eq(fx->sessions[0].who.name, "Ada");
  cl_send_text(cl, "hi");
  cl_expect_text(cl, "hi");
  /* The token is percent-decoded before the check. */
  upgrade_t enc = {.target = "/ws?token=good%2Dtoken"};
  ws_open_with(fx, &enc);
  cr_assert_str_eq(fx->auth_last, "good-token");
  cr_assert_eq(fx->opens, 2);
  cr_assert_str_eq(fx->sessions[1].who.subject, "u-42");
  fx_free(fx);
}

Test(net_server, without_a_session_handler_the_websocket_path_is_404) {
  fx_t *fx = fx_create();
  fx->cfg.session = NULL;
  fx_start(fx);
  client_t *cl = cl_connect(fx);
  upgrade_t u = {0};
  cl_send_upgrade(cl, &u);
  resp_t r;
  cl_expect_response(cl, &r, true);
  cr_assert_eq(r.status, 404);
  cr_assert_eq(stats(fx).ws_upgrades, 0);
  fx_free(fx);
}

Test(net_server, upgrade_request_elsewhere_is_answered_then_closed) {
  /* After a head with Upgrade, the bytes are the new protocol's, not HTTP's
   * (net_http.h): when the server does not switch, it cannot go on parsing
   * HTTP on that connection. */
  fx_t *fx = fx_new();
  client_t *cl = cl_connect(fx);
  cl_send(cl, "GET /health HTTP/1.1\r\nHost: " HOST "\r\nUpgrade: websocket\r\n"
              "Connection: Upgrade\r\n\r\n" REQ("GET /health"));
  resp_t r;
  cl_expect_response(cl, &r, true);
  check_head(&r, "200 OK", "application/json", strlen(HEALTH_BODY), false,
             NO_STORE);
  check_body_str(&r, HEALTH_BODY);
  cl_expect_eof(cl);
  fx_free(fx);
}

Test(net_server, an_upgrade_with_content_is_400_and_never_switches) {
  const char *bodies[] = {"Content-Length: 2\r\n\r\n\x81\x80",
                          "Transfer-Encoding: chunked\r\n\r\n"
                          "2\r\n\x81\x80\r\n0\r\n\r\n"};
  for (size_t i = 0; i < 2; i++) {
    fx_t *fx = fx_new();
    client_t *cl = cl_connect(fx);
    char req[512];
    snprintf(req, sizeof(req),
             "GET /ws HTTP/1.1\r\nHost: " HOST "\r\nUpgrade: websocket\r\n"
             "Connection: Upgrade\r\nSec-WebSocket-Key: " SAMPLE_KEY "\r\n"
             "Sec-WebSocket-Version: 13\r\n%s",
             bodies[i]);
    cl_send(cl, req);
    expect_error_and_close(cl, "400 Bad Request", "{\"error\":\"Bad Request\"}",
                           NULL);
    cr_assert_eq(stats(fx).ws_upgrades, 0);
    cr_assert_eq(fx->opens, 0);
    fx_free(fx);
  }
}

Test(net_server, upgrade_in_http_1_0_is_answered_as_plain_http) {
  fx_t *fx = fx_new();
  /* /ws: what a GET /ws without an upgrade gets (426), never a 101. */
  client_t *cl = cl_connect(fx);
  cl_send(cl, "GET /ws HTTP/1.0\r\nUpgrade: websocket\r\n"
              "Connection: Upgrade\r\nSec-WebSocket-Key: " SAMPLE_KEY "\r\n"
              "Sec-WebSocket-Version: 13\r\n\r\n");
  expect_error_and_close(cl, "426 Upgrade Required",
                         "{\"error\":\"websocket upgrade required\"}",
                         "Upgrade: websocket\r\n");
  cr_assert_eq(stats(fx).ws_upgrades, 0);
  cr_assert_eq(fx->opens, 0);
  /* Elsewhere the Upgrade is ignored: keep-alive holds, HTTP goes on. */
  cl = cl_connect(fx);
  cl_send(cl, "GET /health HTTP/1.0\r\nUpgrade: websocket\r\n"
              "Connection: keep-alive, Upgrade\r\n\r\n"
              "GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  for (int i = 0; i < 2; i++)
    expect_health(cl);
  cl_expect_quiet(cl);
  fx_free(fx);
}

/* ========================================================================== */
/* WebSocket behaviour */
/* ========================================================================== */

Test(net_server, text_message_is_echoed) {
  fx_t *fx = fx_new();
  client_t *cl = ws_open(fx);
  cl_send_text(cl, "hello");
  settle(fx);
  const uint8_t want[] = {0x81, 0x05, 'h', 'e', 'l', 'l', 'o'};
  cl_expect_bytes(cl, want, sizeof(want));
  cl_send_text(cl, "{\"type\":\"CLICK\"}");
  cl_expect_text(cl, "{\"type\":\"CLICK\"}");
  cl_send_text(cl, "caf\xc3\xa9 \xf0\x9f\x8d\xaa"); /* valid UTF-8 */
  cl_expect_text(cl, "caf\xc3\xa9 \xf0\x9f\x8d\xaa");
  cl_send_text(cl, "");
  cl_expect_text(cl, "");
  cl_expect_quiet(cl);
  cr_assert_eq(fx->sessions[0].texts, 4);
  net_server_stats_t s = stats(fx);
  cr_assert_eq(s.ws_messages_in, 4);
  cr_assert_eq(s.ws_messages_out, 4);
  fx_free(fx);
}

Test(net_server, frames_sent_with_the_upgrade_request_are_not_lost) {
  fx_t *fx = fx_new();
  client_t *cl = cl_connect(fx);
  char req[512];
  int n = snprintf(req, sizeof(req),
                   "GET /ws HTTP/1.1\r\nHost: " HOST "\r\nUpgrade: websocket"
                   "\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " SAMPLE_KEY
                   "\r\nSec-WebSocket-Version: 13\r\n\r\n");
  uint8_t all[1024];
  memcpy(all, req, (size_t)n);
  size_t len = (size_t)n;
  len += ws_frame(all + len, sizeof(all) - len, true, OP_TEXT, true, "one", 3);
  len += ws_frame(all + len, sizeof(all) - len, true, OP_TEXT, true, "two", 3);
  cl_write(cl, all, len);
  cl_expect_switching(cl);
  cl_expect_text(cl, "one");
  cl_expect_text(cl, "two");
  fx_free(fx);
}

static void send_text_of(client_t *cl, size_t len) {
  static char text[FRAME_PAYLOAD_MAX];
  cr_assert_lt(len, sizeof(text));
  for (size_t i = 0; i < len; i++)
    text[i] = (char)('A' + i % 26);
  cl_send_frame(cl, true, OP_TEXT, text, len);
}

static void expect_text_of(client_t *cl, size_t len) {
  static char text[FRAME_PAYLOAD_MAX];
  for (size_t i = 0; i < len; i++)
    text[i] = (char)('A' + i % 26);
  cl_expect_frame(cl, OP_TEXT, text, len);
}

/* The server closed with `code`; the client answers; the connection ends. */
static void expect_server_close(client_t *cl, uint16_t code,
                                const char *reason) {
  cl_expect_close(cl, code, reason);
  cl_send_close(cl, code, "");
  settle(cl->fx);
  cl_expect_eof(cl);
}

Test(net_server, messages_queued_before_a_close_are_sent_before_it) {
  fx_t *fx = fx_new();
  client_t *cl = ws_open(fx);
  cl_send_text(cl, "kick me");
  settle(fx);
  cl_expect_text(cl, "kick me");
  cl_expect_text(cl, "goodbye");
  expect_server_close(cl, RT_CLOSE_POLICY, "kicked");
  cr_assert_eq(fx->sessions[0].closed_calls, 1);
  cr_assert_eq(fx->sessions[0].close_code, RT_CLOSE_POLICY);
  fx_free(fx);
}

Test(net_server, message_of_512_bytes_is_ok_and_513_closes_1009) {
  fx_t *fx = fx_new();
  client_t *cl = ws_open(fx);
  send_text_of(cl, 511);
  expect_text_of(cl, 511);
  send_text_of(cl, 512);
  expect_text_of(cl, 512);
  cl_expect_quiet(cl);
  client_t *big = ws_open(fx);
  send_text_of(big, 513);
  expect_server_close(big, NET_WS_CLOSE_TOO_BIG, "");
  cr_assert_eq(fx->sessions[1].texts, 0, "the big message was not delivered");
  cr_assert_eq(fx->sessions[1].closed_calls, 1);
  cr_assert_eq(fx->sessions[1].close_code, NET_WS_CLOSE_TOO_BIG);
  cl_send_text(cl, "still here"); /* the other connection is unaffected */
  cl_expect_text(cl, "still here");
  net_server_stats_t s = stats(fx);
  cr_assert_eq(s.ws_close_codes[net_server_close_code_index(1009)], 1);
  /* The rest of the big frame was its answer: the connection drains its
   * input before it closes (linger), and is counted once closed. */
  cr_assert_eq(s.closes[NET_CLOSE_WS_DONE], 0);
  advance(fx, 3 * SEC);
  cr_assert_eq(stats(fx).closes[NET_CLOSE_WS_DONE], 1);
  fx_free(fx);
}

Test(net_server, fragmented_message_is_held_to_512_bytes_in_total) {
  fx_t *fx = fx_new();
  static char text[600];
  for (size_t i = 0; i < sizeof(text); i++)
    text[i] = (char)('a' + i % 26);
  client_t *ok = ws_open(fx);
  cl_send_frame(ok, false, OP_TEXT, text, 200);
  cl_send_frame(ok, false, OP_CONT, text + 200, 200);
  cl_send_frame(ok, true, OP_CONT, text + 400, 112);
  cl_expect_frame(ok, OP_TEXT, text, 512);
  client_t *big = ws_open(fx);
  cl_send_frame(big, false, OP_TEXT, text, 200);
  cl_send_frame(big, false, OP_CONT, text + 200, 200);
  cl_send_frame(big, true, OP_CONT, text + 400, 113);
  expect_server_close(big, NET_WS_CLOSE_TOO_BIG, "");
  fx_free(fx);
}

Test(net_server, configured_message_limit_applies) {
  fx_t *fx = fx_create();
  fx->cfg.ws_message_max = 16;
  fx_start(fx);
  client_t *cl = ws_open(fx);
  send_text_of(cl, 16);
  expect_text_of(cl, 16);
  send_text_of(cl, 17);
  expect_server_close(cl, NET_WS_CLOSE_TOO_BIG, "");
  fx_free(fx);
}

Test(net_server, unmasked_client_frame_closes_1002) {
  fx_t *fx = fx_new();
  client_t *cl = ws_open(fx);
  uint8_t frame[32];
  size_t n = ws_frame(frame, sizeof(frame), true, OP_TEXT, false, "hi", 2);
  cr_assert_eq(n, 4);
  cl_write(cl, frame, n);
  expect_server_close(cl, NET_WS_CLOSE_PROTOCOL, "");
  cr_assert_eq(fx->sessions[0].texts, 0);
  cr_assert_eq(fx->sessions[0].close_code, NET_WS_CLOSE_PROTOCOL);
  fx_free(fx);
}

/* RFC 6455 7.4.1: each protocol error wslay's frame parser finds, and a
 * close payload of one byte, is answered with a 1002 close frame before
 * the connection ends, not with a dropped connection or an empty close. */
Test(net_server, frame_protocol_errors_close_1002_first) {
  uint8_t top_bit[14] = {0x81, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 0x10};
  memcpy(top_bit + 10, MASK_KEY, 4);
  static uint8_t ping126[200];
  size_t ping126_len =
      ws_frame(ping126, sizeof(ping126), true, OP_PING, true, ping126 + 150, 0);
  ping126[1] = 0x80 | 126; /* a control frame with a 126-byte length */
  ping126[2] = 0;
  ping126[3] = 126;
  memcpy(ping126 + 4, MASK_KEY, 4);
  memset(ping126 + 8, 'p', 126);
  ping126_len = 8 + 126;
  uint8_t frag_ping[16];
  size_t frag_ping_len =
      ws_frame(frag_ping, sizeof(frag_ping), false, OP_PING, true, "p", 1);
  uint8_t close1[16];
  size_t close1_len =
      ws_frame(close1, sizeof(close1), true, OP_CLOSE, true, "\x03", 1);
  struct {
    const uint8_t *bytes;
    size_t len;
  } bad[] = {{top_bit, sizeof(top_bit)},
             {ping126, ping126_len},
             {frag_ping, frag_ping_len},
             {close1, close1_len}};
  fx_t *fx = fx_new();
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    client_t *cl = ws_open(fx);
    cl_send_text(cl, "before");
    cl_expect_text(cl, "before"); /* the echo, then the bad frame */
    cl_write(cl, bad[i].bytes, bad[i].len);
    expect_server_close(cl, NET_WS_CLOSE_PROTOCOL, "");
    cr_assert_eq(fx->sessions[i].close_code, NET_WS_CLOSE_PROTOCOL,
                 "case %zu: %u", i, fx->sessions[i].close_code);
  }
  net_server_stats_t s = stats(fx);
  cr_assert_eq(s.ws_close_codes[net_server_close_code_index(1002)], 4);
  fx_free(fx);
}

/* The same, for a WebSocket that is parked when the bad frame comes: the
 * frame wakes it, and it still says 1002. */
Test(net_server, a_parked_websocket_closes_1002_on_a_bad_frame) {
  fx_t *fx = fx_create();
  fx->cfg.ws_park_after = 1 * SEC;
  fx_start(fx);
  client_t *cl = ws_open(fx);
  cl_send_text(cl, "hi");
  cl_expect_text(cl, "hi");
  advance(fx, 3 * SEC);
  cr_assert_eq(stats(fx).ws_parks, 1, "parked before the bad frame");
  uint8_t frag_ping[16];
  size_t n =
      ws_frame(frag_ping, sizeof(frag_ping), false, OP_PING, true, "p", 1);
  cl_write(cl, frag_ping, n);
  expect_server_close(cl, NET_WS_CLOSE_PROTOCOL, "");
  fx_free(fx);
}

Test(net_server, invalid_utf8_text_closes_1007) {
  const char *bad[] = {
      "\xc3\x28",         /* bad continuation */
      "\xc0\xaf",         /* overlong */
      "\xed\xa0\x80",     /* surrogate */
      "\xf4\x90\x80\x80", /* above U+10FFFF */
      "ok\xff",           /* never valid */
  };
  fx_t *fx = fx_new();
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    client_t *cl = ws_open(fx);
    cl_send_text(cl, bad[i]);
    expect_server_close(cl, NET_WS_CLOSE_INVALID_DATA, "");
    cr_assert_eq(fx->sessions[i].texts, 0, "case %zu delivered", i);
    cr_assert_eq(fx->sessions[i].close_code, NET_WS_CLOSE_INVALID_DATA);
  }
  fx_free(fx);
}

Test(net_server, binary_message_closes_1003) {
  fx_t *fx = fx_new();
  client_t *cl = ws_open(fx);
  cl_send_frame(cl, true, OP_BINARY, "\x01\x02", 2);
  expect_server_close(cl, NET_WS_CLOSE_UNSUPPORTED, "text messages only");
  fx_free(fx);
}

Test(net_server,
     fragments_with_an_interleaved_ping_are_reassembled_and_ponged) {
  fx_t *fx = fx_new();
  client_t *cl = ws_open(fx);
  cl_send_frame(cl, false, OP_TEXT, "Hel", 3);
  settle(fx);
  cl_expect_quiet(cl); /* nothing until the message is whole */
  cl_send_frame(cl, true, OP_PING, "p!", 2);
  cl_expect_frame(cl, OP_PONG, "p!", 2); /* answered mid-message */
  cl_expect_quiet(cl);
  cl_send_frame(cl, false, OP_CONT, "lo, ", 4);
  settle(fx);
  cl_expect_quiet(cl);
  cl_send_frame(cl, true, OP_CONT, "world", 5);
  cl_expect_text(cl, "Hello, world");
  cl_expect_quiet(cl);
  cr_assert_eq(fx->sessions[0].texts, 1);
  cr_assert_eq(stats(fx).ws_messages_in, 1);
  fx_free(fx);
}

Test(net_server, client_close_is_answered_and_the_connection_ends) {
  fx_t *fx = fx_new();
  client_t *cl = ws_open(fx);
  cl_send_close(cl, NET_WS_CLOSE_NORMAL, "bye");
  cl_expect_close(cl, NET_WS_CLOSE_NORMAL, "bye");
  cl_expect_eof(cl);
  net_server_stats_t s = stats(fx);
  cr_assert_eq(s.connections, 0);
  cr_assert_eq(s.websockets, 0);
  cr_assert_eq(s.closes[NET_CLOSE_WS_DONE], 1);
  cr_assert_eq(fx->sessions[0].closed_calls, 1);
  cr_assert_eq(fx->sessions[0].close_code, NET_WS_CLOSE_NORMAL);
  fx_free(fx);
}

Test(net_server, silent_websocket_is_pinged_at_54_s_and_closed_at_60_s) {
  fx_t *fx = fx_new();
  client_t *cl = ws_open(fx);
  run_to(fx, 54 * SEC - 1);
  cl_expect_quiet(cl);
  run_to(fx, 54 * SEC);
  cl_expect_frame(cl, OP_PING, "", 0);
  run_to(fx, 60 * SEC - 1);
  cl_expect_quiet(cl);
  cr_assert_eq(stats(fx).websockets, 1);
  run_to(fx, 60 * SEC);
  cl_expect_eof(cl);
  net_server_stats_t s = stats(fx);
  cr_assert_eq(s.websockets, 0);
  cr_assert_eq(s.closes[NET_CLOSE_WS_SILENT], 1);
  cr_assert_eq(fx->sessions[0].closed_calls, 1);
  cr_assert_eq(fx->sessions[0].close_code, NET_WS_CLOSE_ABNORMAL);
  fx_free(fx);
}

/* Take every frame that arrived: count pings, check echoes of "tick". */
static void drain_frames(client_t *cl, uint32_t *pings, uint32_t *echoes) {
  ws_in_t f;
  for (uint32_t i = 0; i < 64 && cl_take_frame(cl, &f); i++) {
    if (f.opcode == OP_PING) {
      cr_assert_eq(f.len, 0);
      (*pings)++;
      continue;
    }
    cr_assert_eq(f.opcode, OP_TEXT);
    cr_assert_eq(f.len, 4);
    cr_assert(memcmp(f.payload, "tick", 4) == 0);
    (*echoes)++;
  }
  cr_assert_eq(cl_unread(cl), 0);
}

Test(net_server, websocket_that_keeps_talking_stays_open) {
  fx_t *fx = fx_new();
  client_t *talker = ws_open(fx);
  client_t *ponger = ws_open(fx);
  uint32_t talker_pings = 0, echoes = 0, ponger_pings = 0;
  /* Second by second to 200 s: the talker sends every 10 s and ignores
   * pings; the ponger sends nothing but answers each ping when it comes. */
  for (uint32_t t = 1; t <= 200; t++) {
    run_to(fx, t * SEC);
    if (t % 10 == 0)
      cl_send_text(talker, "tick");
    settle(fx);
    drain_frames(talker, &talker_pings, &echoes);
    ws_in_t f;
    for (uint32_t i = 0; i < 8 && cl_take_frame(ponger, &f); i++) {
      cr_assert_eq(f.opcode, OP_PING);
      cr_assert_eq(t % 54, 0, "a ping at %u s", t);
      ponger_pings++;
      cl_send_frame(ponger, true, OP_PONG, "", 0);
    }
    settle(fx);
    cr_assert_eq(talker->end, 0, "talker closed at %u s", t);
    cr_assert_eq(ponger->end, 0, "ponger closed at %u s", t);
  }
  cr_assert_eq(echoes, 20);
  cr_assert_eq(talker_pings, 3); /* 54, 108, 162 s */
  cr_assert_eq(ponger_pings, 3);
  net_server_stats_t s = stats(fx);
  cr_assert_eq(s.websockets, 2);
  cr_assert_eq(s.closes[NET_CLOSE_WS_SILENT], 0);
  fx_free(fx);
}

Test(net_server, pong_answers_hold_the_connection_until_60_s_after_the_last) {
  fx_t *fx = fx_new();
  client_t *cl = ws_open(fx);
  for (uint32_t k = 1; k <= 3; k++) {
    run_to(fx, k * 54 * SEC);
    cl_expect_frame(cl, OP_PING, "", 0);
    cl_send_frame(cl, true, OP_PONG, "", 0);
    settle(fx);
  }
  /* Last heard at 162 s; the ping at 216 s goes unanswered. */
  run_to(fx, 216 * SEC);
  cl_expect_frame(cl, OP_PING, "", 0);
  run_to(fx, 222 * SEC - 1);
  cl_expect_quiet(cl);
  run_to(fx, 222 * SEC);
  cl_expect_eof(cl);
  cr_assert_eq(stats(fx).closes[NET_CLOSE_WS_SILENT], 1);
  fx_free(fx);
}

Test(net_server, shutdown_sends_1001_to_websockets_and_stops_accepting) {
  fx_t *fx = fx_new();
  client_t *answers = ws_open(fx);
  client_t *mute = ws_open(fx);
  client_t *http = cl_connect(fx);
  cl_send(http, REQ("GET /health"));
  expect_health(http);
  run_to(fx, 1 * SEC);
  net_server_shutdown(fx->srv);
  settle(fx);
  cl_expect_close(answers, NET_WS_CLOSE_GOING_AWAY, "server shutting down");
  cl_expect_close(mute, NET_WS_CLOSE_GOING_AWAY, "server shutting down");
  cl_expect_eof(http); /* idle keep-alive: just closed */
  rt_stream_t *s = NULL;
  cr_assert_eq(sim_connect(fx->sw, PORT, 0, NULL, NULL, &s), RT_ECONNREFUSED);
  /* The one that answers is done at once. */
  cl_send_close(answers, NET_WS_CLOSE_GOING_AWAY, "");
  settle(fx);
  cl_expect_eof(answers);
  cr_assert_eq(fx->sessions[0].closed_calls, 1);
  cr_assert_eq(fx->sessions[0].close_code, NET_WS_CLOSE_GOING_AWAY);
  /* The mute one is dropped after ws_close_wait (5 s). */
  run_to(fx, 6 * SEC - 1);
  cl_expect_quiet(mute);
  run_to(fx, 6 * SEC);
  cl_expect_eof(mute);
  cr_assert_eq(fx->sessions[1].closed_calls, 1);
  cr_assert_eq(fx->sessions[1].close_code, NET_WS_CLOSE_GOING_AWAY);
  net_server_stats_t st = stats(fx);
  cr_assert_eq(st.connections, 0);
  cr_assert_eq(st.ws_close_codes[net_server_close_code_index(1001)], 2);
  fx_free(fx);
}

Test(net_server, session_closed_is_called_exactly_once_per_session) {
  fx_t *fx = fx_new();
  client_t *by_close = ws_open(fx);     /* session 0 */
  client_t *by_reset = ws_open(fx);     /* session 1 */
  client_t *by_limit = ws_open(fx);     /* session 2 */
  client_t *by_reset_mid = ws_open(fx); /* session 3: reset mid-message */
  ws_open(fx);                          /* session 4: open until the end */
  cl_send_close(by_close, NET_WS_CLOSE_NORMAL, "");
  settle(fx);
  sim_stream_reset(by_reset->s);
  settle(fx);
  cr_assert_eq(by_reset->end, RT_ERESET);
  send_text_of(by_limit, 513);
  expect_server_close(by_limit, NET_WS_CLOSE_TOO_BIG, "");
  cl_send_text(by_reset_mid, "about to vanish");
  sim_stream_reset(by_reset_mid->s);
  advance(fx, 10 * SEC);
  const uint16_t codes[] = {NET_WS_CLOSE_NORMAL, NET_WS_CLOSE_ABNORMAL,
                            NET_WS_CLOSE_TOO_BIG, NET_WS_CLOSE_ABNORMAL};
  for (uint32_t i = 0; i < 4; i++) {
    cr_assert_eq(fx->sessions[i].closed_calls, 1, "session %u", i);
    cr_assert_eq(fx->sessions[i].close_code, codes[i], "session %u: %u", i,
                 fx->sessions[i].close_code);
  }
  cr_assert_eq(fx->sessions[4].closed_calls, 0);
  cr_assert_eq(stats(fx).closes[NET_CLOSE_RESET], 2);
  fx_stop(fx); /* stops the last connection's actor */
  cr_assert_eq(fx->opens, 5);
  for (uint32_t i = 0; i < 5; i++)
    cr_assert_eq(fx->sessions[i].closed_calls, 1, "session %u", i);
  cr_assert_eq(fx->sessions[4].close_code, NET_WS_CLOSE_ABNORMAL);
  cr_assert_eq(fx->closed_total, 5);
  fx_free(fx);
}

Test(net_server, refused_session_closes_1011_and_gets_no_closed_call) {
  fx_t *fx = fx_new();
  fx->refuse_sessions = true;
  client_t *cl = ws_open(fx);
  expect_server_close(cl, NET_WS_CLOSE_INTERNAL, "session refused");
  cr_assert_eq(fx->refused, 1);
  cr_assert_eq(fx->closed_total, 0);
  fx_free(fx);
}

Test(net_server, websocket_over_one_byte_pipes_echoes_exactly) {
  fx_t *fx = fx_new();
  sim_link_config_t up = {.buffer = 1, .mss = 1};
  sim_link_config_t down = {.buffer = 1, .mss = 1};
  client_t *cl = cl_connect_with(fx, &up, &down);
  upgrade_t u = {0};
  cl_send_upgrade(cl, &u); /* one byte per settle, by the pipe's size */
  cl_expect_switching(cl);
  send_text_of(cl, 300);
  expect_text_of(cl, 300);
  cl_send_frame(cl, true, OP_PING, "x", 1);
  cl_expect_frame(cl, OP_PONG, "x", 1);
  cl_send_close(cl, NET_WS_CLOSE_NORMAL, "done");
  cl_expect_close(cl, NET_WS_CLOSE_NORMAL, "done");
  cl_expect_eof(cl);
  fx_free(fx);
}

/* ---- Parking: wslay's context only while frames move --------------------- */

static uint32_t parked(const fx_t *fx) { return stats(fx).ws_parked; }

Test(net_server, a_websocket_never_heard_holds_no_wslay_context) {
  fx_t *fx = fx_new();
  client_t *quiet = ws_open(fx);
  client_t *talker = ws_open(fx);
  settle(fx);
  cr_assert_eq(parked(fx), 2);
  cl_send_text(talker, "hi");
  cl_expect_text(talker, "hi");
  cr_assert_eq(parked(fx), 1, "the talker has a context, the quiet one not");
  cl_expect_quiet(quiet);
  cl_send_text(quiet, "me too");
  cl_expect_text(quiet, "me too");
  cr_assert_eq(parked(fx), 0);
  fx_free(fx);
}

Test(net_server, a_websocket_quiet_for_10_s_is_parked_and_wakes_for_a_message) {
  fx_t *fx = fx_new();
  client_t *cl = ws_open(fx);
  for (int round = 0; round < 3; round++) {
    cl_send_text(cl, "tick");
    cl_expect_text(cl, "tick");
    rt_time_ns t0 = rt_now(fx->w);
    run_to(fx, t0 + 10 * SEC - 1);
    cr_assert_eq(parked(fx), 0, "round %d: parked before 10 s", round);
    run_to(fx, t0 + 10 * SEC);
    cr_assert_eq(parked(fx), 1, "round %d: not parked at 10 s", round);
  }
  cr_assert_eq(fx->sessions[0].texts, 3);
  cr_assert_eq(stats(fx).ws_parks, 3);
  fx_free(fx);
}

Test(net_server, configured_park_after_applies) {
  fx_t *fx = fx_create();
  fx->cfg.ws_park_after = 2 * SEC;
  fx_start(fx);
  client_t *cl = ws_open(fx);
  cl_send_text(cl, "tick");
  cl_expect_text(cl, "tick");
  rt_time_ns t0 = rt_now(fx->w);
  run_to(fx, t0 + 2 * SEC - 1);
  cr_assert_eq(parked(fx), 0);
  run_to(fx, t0 + 2 * SEC);
  cr_assert_eq(parked(fx), 1);
  fx_free(fx);
}

/* Half a header, half a payload, the first fragment of a message: wslay
 * holds part of the input each time, so none may be parked; the rest then
 * completes each message exactly. */
Test(net_server, parking_waits_for_whole_frames_and_whole_messages) {
  fx_t *fx = fx_create();
  fx->cfg.ws_park_after = 1 * SEC;
  fx_start(fx);
  client_t *head = ws_open(fx);
  client_t *body = ws_open(fx);
  client_t *frag = ws_open(fx);
  uint8_t frame[64];
  size_t n =
      ws_frame(frame, sizeof(frame), true, OP_TEXT, true, "split here", 10);
  cl_write(head, frame, 1);
  cl_write(body, frame, 8); /* 6 bytes of header, 2 of payload */
  cl_send_frame(frag, false, OP_TEXT, "Hel", 3);
  settle(fx);
  advance(fx, 5 * SEC);
  cr_assert_eq(parked(fx), 0);
  cl_write(head, frame + 1, n - 1);
  cl_write(body, frame + 8, n - 8);
  cl_send_frame(frag, true, OP_CONT, "lo", 2);
  cl_expect_text(head, "split here");
  cl_expect_text(body, "split here");
  cl_expect_text(frag, "Hello");
  advance(fx, 2 * SEC);
  cr_assert_eq(parked(fx), 3);
  fx_free(fx);
}

Test(net_server, a_websocket_with_output_waiting_is_not_parked) {
  fx_t *fx = fx_create();
  fx->cfg.ws_park_after = 1 * SEC;
  fx_start(fx);
  sim_link_config_t down = {.buffer = 64};
  client_t *cl = cl_connect_with(fx, NULL, &down);
  upgrade_t u = {0};
  cl_send_upgrade(cl, &u);
  cl_expect_switching(cl);
  cl->hold = true;
  send_text_of(cl, 300); /* its echo fills the pipe and waits */
  settle(fx);
  advance(fx, 5 * SEC);
  cr_assert_eq(parked(fx), 0);
  cl->hold = false;
  expect_text_of(cl, 300);
  advance(fx, 2 * SEC);
  cr_assert_eq(parked(fx), 1);
  fx_free(fx);
}

/* A refused park is not polled: while the reader takes nothing, nothing
 * moves and no timer fires (it fired every ws_park_after before: 100,000
 * times in these 100 ms); the output draining re-arms the park. */
Test(net_server, a_refused_park_waits_for_bytes_to_move) {
  fx_t *fx = fx_create();
  fx->cfg.ws_park_after = 1000; /* 1 us */
  fx_start(fx);
  sim_link_config_t down = {.buffer = 64};
  client_t *cl = cl_connect_with(fx, NULL, &down);
  upgrade_t u = {0};
  cl_send_upgrade(cl, &u);
  cl_expect_switching(cl);
  cl->hold = true;
  send_text_of(cl, 300); /* its echo fills the pipe and waits */
  settle(fx);
  advance(fx, 1 * MS);
  uint64_t fired = rt_world_timers_fired(fx->w);
  advance(fx, 100 * MS);
  cr_assert_leq(rt_world_timers_fired(fx->w) - fired, 1);
  cr_assert_eq(parked(fx), 0);
  cl->hold = false;
  expect_text_of(cl, 300);
  advance(fx, 1 * MS);
  cr_assert_eq(parked(fx), 1);
  fx_free(fx);
}

/* net_server_start's answer for fx->cfg; a refused config leaves the
 * listener with the caller, so it is closed here. */
static int try_start(fx_t *fx) {
  rt_listener_t *l = NULL;
  cr_assert_eq(sim_listen(fx->sw, PORT, 0, &l), RT_OK);
  int rc = net_server_start(fx->w, l, &fx->cfg, &fx->srv);
  if (rc < 0)
    rt_listener_close(l);
  return rc;
}

/* Every duration of the config is refused below 1 ns (0 is the default)
 * and above NET_DURATION_MAX, "never" included, so no deadline sum can
 * overflow; at NET_DURATION_MAX a server starts. Likewise ws_message_max
 * around NET_WS_MESSAGE_MAX_LIMIT. */
Test(net_server, config_durations_and_message_limit_are_bounded) {
  static const size_t fields[] = {offsetof(net_server_config_t, header_timeout),
                                  offsetof(net_server_config_t, idle_timeout),
                                  offsetof(net_server_config_t, reply_timeout),
                                  offsetof(net_server_config_t, ws_ping_period),
                                  offsetof(net_server_config_t, ws_pong_wait),
                                  offsetof(net_server_config_t, ws_close_wait),
                                  offsetof(net_server_config_t, ws_park_after)};
  static const rt_time_ns refused[] = {-1, NET_DURATION_MAX + 1, RT_TIME_NEVER};
  for (size_t f = 0; f < sizeof(fields) / sizeof(fields[0]); f++) {
    for (size_t v = 0; v < sizeof(refused) / sizeof(refused[0]); v++) {
      fx_t *fx = fx_create();
      *(rt_time_ns *)((char *)&fx->cfg + fields[f]) = refused[v];
      cr_assert_eq(try_start(fx), RT_EINVAL, "field %zu value %zu", f, v);
      fx_free(fx);
    }
    fx_t *fx = fx_create();
    *(rt_time_ns *)((char *)&fx->cfg + fields[f]) = NET_DURATION_MAX;
    cr_assert_eq(try_start(fx), RT_OK, "field %zu at its most", f);
    fx_free(fx);
  }
  fx_t *fx = fx_create();
  fx->cfg.ws_message_max = NET_WS_MESSAGE_MAX_LIMIT + 1;
  cr_assert_eq(try_start(fx), RT_EINVAL);
  fx_free(fx);
  fx = fx_create();
  fx->cfg.ws_message_max = NET_WS_MESSAGE_MAX_LIMIT;
  cr_assert_eq(try_start(fx), RT_OK);
  fx_free(fx);
}

/* A route's method goes into the Allow line of a 405: 1 to
 * NET_ROUTE_METHOD_LEN_MAX characters. */
Test(net_server, route_method_names_are_bounded) {
  const size_t lens[] = {0, NET_ROUTE_METHOD_LEN_MAX - 1,
                         NET_ROUTE_METHOD_LEN_MAX,
                         NET_ROUTE_METHOD_LEN_MAX + 1};
  for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
    fx_t *fx = fx_create();
    char method[NET_ROUTE_METHOD_LEN_MAX + 2];
    memset(method, 'M', lens[i]);
    method[lens[i]] = '\0';
    fx->cfg.routes[0].method = method;
    bool ok = lens[i] > 0 && lens[i] <= NET_ROUTE_METHOD_LEN_MAX;
    cr_assert_eq(try_start(fx), ok ? RT_OK : RT_EINVAL, "length %zu", lens[i]);
    fx_free(fx);
  }
}

/* Origins as a browser writes them are the only ones that could match,
 * and each goes into a header line: anything else is refused. */
Test(net_server, an_origin_is_valid_only_as_a_browser_writes_it) {
  const char *valid[] = {
      "http://localhost:3000", "https://play.example",
      "http://127.0.0.1:8080", "https://a-b.c-d.example:65535",
      "http://[::1]:3000",     "http://x:1",
      "https://[2001:db8::1]", "http://localhost"};
  for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++)
    cr_assert(net_server_origin_valid(valid[i]), "'%s'", valid[i]);
  const char *invalid[] = {"",
                           "null",
                           "*",
                           "localhost:3000",
                           "ftp://play.example",
                           "http://",
                           "https://",
                           "http://localhost:3000/",
                           "https://play.example/x",
                           "https://Play.example",
                           "HTTPS://play.example",
                           "http://a b",
                           "http://a\r\nSet-Cookie: x=1",
                           "http://user@host",
                           "http://host:",
                           "http://host:0",
                           "http://host:03000",
                           "http://host:65536",
                           "http://host:123456",
                           "http://host:80",
                           "https://host:443",
                           "http://[]:80",
                           "http://[::1",
                           "http://[::G]",
                           "http://host?x"};
  for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++)
    cr_assert(!net_server_origin_valid(invalid[i]), "'%s'", invalid[i]);
  /* Length: at most NET_ORIGIN_LEN_MAX - 1 characters. */
  char origin[NET_ORIGIN_LEN_MAX + 2];
  const size_t lens[] = {NET_ORIGIN_LEN_MAX - 2, NET_ORIGIN_LEN_MAX - 1,
                         NET_ORIGIN_LEN_MAX, NET_ORIGIN_LEN_MAX + 1};
  for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
    memcpy(origin, "http://", 7);
    memset(origin + 7, 'a', lens[i] - 7);
    origin[lens[i]] = '\0';
    cr_assert_eq(net_server_origin_valid(origin), lens[i] < NET_ORIGIN_LEN_MAX,
                 "length %zu", lens[i]);
  }
}

/* Up to NET_CORS_ORIGINS_MAX origins, each valid; the longest one allowed
 * is named back whole in an answer. */
Test(net_server, cors_origins_are_bounded_in_number_and_form) {
  char names[NET_CORS_ORIGINS_MAX][32];
  const uint32_t counts[] = {NET_CORS_ORIGINS_MAX - 1, NET_CORS_ORIGINS_MAX,
                             NET_CORS_ORIGINS_MAX + 1};
  for (size_t k = 0; k < sizeof(counts) / sizeof(counts[0]); k++) {
    fx_t *fx = fx_create();
    for (uint32_t i = 0; i < counts[k] && i < NET_CORS_ORIGINS_MAX; i++) {
      snprintf(names[i], sizeof(names[i]), "http://site%u.example", i);
      fx->cfg.cors_origins[i] = names[i];
    }
    fx->cfg.cors_origins_len = counts[k];
    bool ok = counts[k] <= NET_CORS_ORIGINS_MAX;
    cr_assert_eq(try_start(fx), ok ? RT_OK : RT_EINVAL, "%u origins",
                 counts[k]);
    fx_free(fx);
  }
  const char *refused[] = {NULL, "http://localhost:3000/", "null"};
  for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
    fx_t *fx = fx_create();
    fx->cfg.cors_origins[0] = refused[i];
    fx->cfg.cors_origins_len = 1;
    cr_assert_eq(try_start(fx), RT_EINVAL, "origin %zu", i);
    fx_free(fx);
  }
  char longest[NET_ORIGIN_LEN_MAX];
  memcpy(longest, "http://", 7);
  memset(longest + 7, 'a', NET_ORIGIN_LEN_MAX - 8);
  longest[NET_ORIGIN_LEN_MAX - 1] = '\0';
  fx_t *fx = fx_create();
  fx->cfg.cors_origins[0] = longest;
  fx->cfg.cors_origins_len = 1;
  cr_assert_eq(try_start(fx), RT_OK);
  client_t *cl = cl_connect(fx);
  char req[1024];
  snprintf(req, sizeof(req),
           "OPTIONS /api/echo HTTP/1.1\r\nHost: " HOST
           "\r\nOrigin: %s\r\n" ASKS("POST") "\r\n",
           longest);
  cl_send(cl, req);
  resp_t r;
  cl_expect_response(cl, &r, true);
  char got[NET_ORIGIN_LEN_MAX + 1];
  cr_assert_eq(r.status, 204);
  cr_assert(resp_header(&r, "Access-Control-Allow-Origin", got, sizeof(got)));
  cr_assert_str_eq(got, longest);
  fx_free(fx);
}

/* ws_park_after at its most: a WebSocket is pinged on time and never
 * parked (the keepalive's deadline sums stay in range). */
Test(net_server, park_after_at_its_most_still_pings) {
  fx_t *fx = fx_create();
  fx->cfg.ws_park_after = NET_DURATION_MAX;
  fx_start(fx);
  client_t *cl = ws_open(fx);
  cl_send_text(cl, "x");
  cl_expect_text(cl, "x");
  advance(fx, 54 * SEC);
  cl_expect_frame(cl, OP_PING, "", 0);
  cr_assert_eq(parked(fx), 0);
  fx_free(fx);
}

Test(net_server, a_parked_websocket_is_pinged_and_its_pong_heard) {
  fx_t *fx = fx_new();
  client_t *cl = ws_open(fx);
  settle(fx);
  cr_assert_eq(parked(fx), 1);
  run_to(fx, 54 * SEC);
  cl_expect_frame(cl, OP_PING, "", 0);
  cl_send_frame(cl, true, OP_PONG, "", 0);
  settle(fx);
  run_to(fx, 64 * SEC);
  cr_assert_eq(parked(fx), 1, "parked again 10 s after the pong");
  run_to(fx, 108 * SEC);
  cl_expect_frame(cl, OP_PING, "", 0); /* the pong kept it open past 60 s */
  cr_assert_eq(stats(fx).websockets, 1);
  fx_free(fx);
}

Test(net_server,
     a_parked_websocket_answers_a_close_and_gets_the_shutdown_1001) {
  fx_t *fx = fx_new();
  client_t *closer = ws_open(fx);
  client_t *stayer = ws_open(fx);
  cl_send_text(stayer, "x");
  cl_expect_text(stayer, "x");
  advance(fx, 10 * SEC);
  cr_assert_eq(parked(fx), 2);
  cl_send_close(closer, NET_WS_CLOSE_NORMAL, "bye");
  cl_expect_close(closer, NET_WS_CLOSE_NORMAL, "bye");
  cl_expect_eof(closer);
  net_server_shutdown(fx->srv);
  settle(fx);
  expect_server_close(stayer, NET_WS_CLOSE_GOING_AWAY, "server shutting down");
  cr_assert_eq(fx->sessions[0].close_code, NET_WS_CLOSE_NORMAL);
  cr_assert_eq(fx->sessions[1].close_code, NET_WS_CLOSE_GOING_AWAY);
  fx_free(fx);
}

/* The hardest case for parking: one byte at a time, with a park tried
 * between every two bytes. Each frame boundary parks and the next byte
 * wakes a fresh context; nothing may be lost or misread. */
Test(net_server, parking_between_any_two_bytes_loses_nothing) {
  fx_t *fx = fx_create();
  fx->cfg.ws_park_after = 1000; /* 1 us: a park tried between bytes */
  fx_start(fx);
  client_t *cl = ws_open(fx);
  static char long_text[300];
  for (size_t i = 0; i < sizeof(long_text); i++)
    long_text[i] = (char)('A' + i % 26);
  uint8_t all[1024];
  size_t len = 0;
  len += ws_frame(all + len, sizeof(all) - len, true, OP_TEXT, true, "one", 3);
  len += ws_frame(all + len, sizeof(all) - len, false, OP_TEXT, true, "tw", 2);
  len += ws_frame(all + len, sizeof(all) - len, true, OP_PING, true, "p", 1);
  len += ws_frame(all + len, sizeof(all) - len, true, OP_CONT, true, "o", 1);
  len += ws_frame(all + len, sizeof(all) - len, true, OP_TEXT, true, "", 0);
  len += ws_frame(all + len, sizeof(all) - len, true, OP_TEXT, true, long_text,
                  sizeof(long_text));
  uint32_t parks = 0;
  for (size_t i = 0; i < len; i++) {
    cl_write(cl, all + i, 1);
    advance(fx, 2000);
    parks += parked(fx);
  }
  cl_expect_text(cl, "one");
  cl_expect_frame(cl, OP_PONG, "p", 1);
  cl_expect_text(cl, "two");
  cl_expect_text(cl, "");
  cl_expect_frame(cl, OP_TEXT, long_text, sizeof(long_text));
  cl_expect_quiet(cl);
  cr_assert_eq(fx->sessions[0].texts, 4);
  /* Parked after each of the 4 messages ended (not within one). */
  cr_assert_geq(parks, 4);
  fx_free(fx);
}

/* A real client: net_ws_client in an actor, against net_echo_session. */
typedef struct wsc_probe {
  net_wsc_t *wsc;
  rt_rng_t rng;
  int state;
  bool sent;
  char got[64];
  uint32_t got_count;
} wsc_probe_t;

static void wsc_on_text(void *ud, const uint8_t *data, size_t len) {
  wsc_probe_t *p = ud;
  cr_assert_lt(len, sizeof(p->got));
  memcpy(p->got, data, len);
  p->got[len] = '\0';
  p->got_count++;
}

static void wsc_behaviour(rt_actor_t *self, const rt_msg_t *msg) {
  wsc_probe_t *p = rt_state(self);
  if (msg->tag != RT_TAG_STREAM && msg->tag != TAG_GO)
    return;
  p->state = net_wsc_on_event(p->wsc);
  if (p->state == NET_WSC_OPEN && !p->sent) {
    net_ws_t *ws = net_wsc_ws(p->wsc);
    cr_assert_eq(net_ws_send_text(ws, (const uint8_t *)"hello, cookie", 13),
                 RT_OK);
    cr_assert_eq(net_ws_flush(ws), RT_OK);
    p->sent = true;
  }
}

Test(net_server, net_ws_client_talks_to_net_echo_session) {
  fx_t *fx = fx_create();
  fx->cfg.session = &net_echo_session;
  fx_start(fx);
  wsc_probe_t *p = calloc(1, sizeof(*p));
  cr_assert_not_null(p);
  rt_world_rng(fx->w, RT_RNG_KEY(RT_RNG_SUB_TEST, 1), &p->rng);
  rt_actor_spec_t spec = {.name = "wsc",
                          .behaviour = wsc_behaviour,
                          .state = p,
                          .mailbox_cap = 8,
                          .overflow = RT_OVERFLOW_REJECT};
  rt_actor_id_t id;
  cr_assert_eq(rt_spawn(fx->w, &spec, &id), RT_OK);
  rt_stream_t *s = NULL;
  cr_assert_eq(sim_connect(fx->sw, PORT, id, NULL, NULL, &s), RT_OK);
  net_wsc_config_t wc = {
      .host = HOST, .target = "/ws", .origin = "http://" HOST, .rng = &p->rng};
  net_ws_callbacks_t cb = {.on_text = wsc_on_text};
  cr_assert_eq(net_wsc_create(s, &wc, &cb, p, &p->wsc), RT_OK);
  rt_msg_t go = rt_msg_make(TAG_GO, NULL, 0);
  cr_assert_eq(rt_send(fx->w, id, &go), RT_PUSH_QUEUED);
  settle(fx);
  cr_assert_eq(p->state, NET_WSC_OPEN);
  cr_assert_eq(net_wsc_http_status(p->wsc), 101);
  cr_assert_eq(p->got_count, 1);
  cr_assert_str_eq(p->got, "hello, cookie");
  net_server_stats_t st = stats(fx);
  cr_assert_eq(st.ws_messages_in, 1);
  cr_assert_eq(st.ws_messages_out, 1);
  fx_stop(fx);
  net_wsc_destroy(p->wsc);
  free(p);
  fx_free(fx);
}
