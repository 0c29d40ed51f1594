/* net_server_fixture.c: the fixture the tests of the HTTP/WebSocket server
 * share (net_server_fixture.h); the tests are in test_net_server*.c.
 */
#include "net_server_fixture.h"

#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

int auth_check(void *ctx, const char *token, rt_identity_t *out) {
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
int api_echo(void *ctx, rt_world_t *w, const rt_http_call_t *call,
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

int send_reply(rt_world_t *w, rt_actor_id_t to, uint64_t call_id, int status,
               const char *body) {
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

const uint8_t LOGO_PNG[] = {0x89, 'P',  'N',  'G',  '\r', '\n', 0x1a,
                            '\n', 0x00, 0x00, 0x00, 0x0d, 'I',  'H',
                            'D',  'R',  0x00, 0xff, 0x00, 0x01};

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

fx_t *fx_create(void) {
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
void fx_start(fx_t *fx) {
  rt_listener_t *l = NULL;
  cr_assert_eq(sim_listen(fx->sw, PORT, 0, &l), RT_OK);
  cr_assert_eq(net_server_start(fx->w, l, &fx->cfg, &fx->srv), RT_OK);
}

fx_t *fx_new(void) {
  fx_t *fx = fx_create();
  fx_start(fx);
  return fx;
}

/* Stop every actor (sessions still open get closed() now), free the pipes,
 * the world and the server. fx stays readable for checks afterwards. */
void fx_stop(fx_t *fx) {
  sim_world_destroy(fx->sw);
  fx->sw = NULL;
  fx->w = NULL;
  net_server_free(fx->srv);
  fx->srv = NULL;
  net_static_free(fx->statics);
  fx->statics = NULL;
}

void fx_free(fx_t *fx) {
  if (fx->sw != NULL)
    fx_stop(fx);
  for (uint32_t i = 0; i < fx->clients_len; i++)
    free(fx->clients[i]);
  free(fx);
}

net_server_stats_t stats(const fx_t *fx) {
  net_server_stats_t s;
  net_server_get_stats(fx->srv, &s);
  return s;
}

/* ---- Clients and time ---------------------------------------------------- */

client_t *cl_connect_with(fx_t *fx, const sim_link_config_t *up,
                          const sim_link_config_t *down) {
  cr_assert_lt(fx->clients_len, CLIENTS_MAX);
  client_t *cl = calloc(1, sizeof(*cl));
  cr_assert_not_null(cl);
  cl->fx = fx;
  cr_assert_eq(sim_connect(fx->sw, PORT, 0, up, down, &cl->s), RT_OK);
  fx->clients[fx->clients_len++] = cl;
  return cl;
}

client_t *cl_connect(fx_t *fx) { return cl_connect_with(fx, NULL, NULL); }

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
void run_to(fx_t *fx, rt_time_ns until) {
  for (uint32_t round = 0;; round++) {
    cr_assert_lt(round, SETTLE_ROUNDS_MAX, "the world does not settle");
    sim_run_result_t r = sim_world_run(fx->sw, until, TURNS_MAX);
    cr_assert_neq(r, SIM_RUN_TURNS, "more than %u turns in one run", TURNS_MAX);
    if (pump_all(fx) == 0)
      return;
  }
}

void settle(fx_t *fx) { run_to(fx, rt_now(fx->w)); }

void advance(fx_t *fx, rt_time_ns dt) { run_to(fx, rt_now(fx->w) + dt); }

/* Write all of data, running the world when the pipe is full. */
void cl_write(client_t *cl, const void *data, size_t len) {
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

void cl_send(client_t *cl, const char *text) {
  cl_write(cl, text, strlen(text));
}

void cl_close(client_t *cl) {
  rt_stream_close(cl->s);
  cl->s = NULL;
}

size_t cl_unread(const client_t *cl) { return cl->len - cl->off; }

/* Printable form of bytes for failure messages. */
const char *esc(const uint8_t *p, size_t n, char *out, size_t cap) {
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
void cl_expect_quiet(client_t *cl) {
  cl_pump(cl);
  char text[512];
  cr_assert_eq(cl_unread(cl), 0, "unexpected bytes: %s",
               esc(cl->data + cl->off, cl_unread(cl), text, sizeof(text)));
  cr_assert_eq(cl->end, 0, "closed early: %s", rt_err_name((int)cl->end));
}

/* The server finished the connection: EOF and nothing unread before it. */
void cl_expect_eof(client_t *cl) {
  cl_pump(cl);
  char text[512];
  cr_assert_eq(cl_unread(cl), 0, "unexpected bytes before EOF: %s",
               esc(cl->data + cl->off, cl_unread(cl), text, sizeof(text)));
  cr_assert_eq(cl->end, RT_EOF, "want EOF, got %s", rt_err_name((int)cl->end));
}

/* The next unread bytes are exactly want. */
void cl_expect_bytes(client_t *cl, const void *want, size_t len) {
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

/* The value of header `name` (exact case, as the server writes it). */
bool resp_header(const resp_t *r, const char *name, char *out, size_t cap) {
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
bool cl_take_response(client_t *cl, resp_t *r, bool has_body) {
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

void cl_expect_response(client_t *cl, resp_t *r, bool has_body) {
  settle(cl->fx);
  char text[512];
  cr_assert(cl_take_response(cl, r, has_body),
            "no complete response; unread: %s",
            esc(cl->data + cl->off, cl_unread(cl), text, sizeof(text)));
}

/* The whole head, rebuilt: status line, Content-Type (if any),
 * Content-Length, Connection, the extra lines, blank line. */
void check_head(const resp_t *r, const char *status_line,
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

void check_body(const resp_t *r, const void *want, size_t len) {
  char got_text[1024], want_text[1024];
  cr_assert_eq(r->body_len, len, "body of %zu bytes, want %zu: %s", r->body_len,
               len, esc(r->body, r->body_len, got_text, sizeof(got_text)));
  cr_assert(memcmp(r->body, want, len) == 0, "body %s\nwant %s",
            esc(r->body, len, got_text, sizeof(got_text)),
            esc(want, len, want_text, sizeof(want_text)));
}

void check_body_str(const resp_t *r, const char *want) {
  check_body(r, want, strlen(want));
}

void expect_health(client_t *cl) {
  resp_t r;
  cl_expect_response(cl, &r, true);
  check_head(&r, "200 OK", "application/json", strlen(HEALTH_BODY), true,
             NO_STORE);
  check_body_str(&r, HEALTH_BODY);
}

/* A JSON error answer that closes the connection, then EOF. */
void expect_error_and_close(client_t *cl, const char *status_line,
                            const char *body, const char *extra) {
  resp_t r;
  cl_expect_response(cl, &r, true);
  check_head(&r, status_line, "application/json", strlen(body), false, extra);
  check_body_str(&r, body);
  cl_expect_eof(cl);
}

/* ---- WebSocket frames (RFC 6455 5.2) ------------------------------------- */

const uint8_t MASK_KEY[4] = {0x37, 0xfa, 0x21, 0x3d};

/* One frame into out; returns its length. */
size_t ws_frame(uint8_t *out, size_t cap, bool fin, uint8_t opcode, bool masked,
                const void *payload, size_t len) {
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

void cl_send_frame(client_t *cl, bool fin, uint8_t opcode, const void *payload,
                   size_t len) {
  uint8_t frame[FRAME_PAYLOAD_MAX + 16];
  size_t n = ws_frame(frame, sizeof(frame), fin, opcode, true, payload, len);
  cl_write(cl, frame, n);
}

void cl_send_text(client_t *cl, const char *text) {
  cl_send_frame(cl, true, OP_TEXT, text, strlen(text));
}

void cl_send_close(client_t *cl, uint16_t code, const char *reason) {
  uint8_t payload[128];
  size_t rlen = strlen(reason);
  cr_assert_leq(rlen, 123);
  payload[0] = (uint8_t)(code >> 8);
  payload[1] = (uint8_t)code;
  memcpy(payload + 2, reason, rlen);
  cl_send_frame(cl, true, OP_CLOSE, payload, rlen + 2);
}

/* Take one complete server frame from the unread bytes. */
bool cl_take_frame(client_t *cl, ws_in_t *f) {
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

void cl_expect_frame(client_t *cl, uint8_t opcode, const void *payload,
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

void cl_expect_text(client_t *cl, const char *text) {
  cl_expect_frame(cl, OP_TEXT, text, strlen(text));
}

void ping_seq_bytes(uint64_t seq, uint8_t out[8]) {
  for (int i = 7; i >= 0; i--, seq >>= 8)
    out[i] = (uint8_t)seq;
}

void cl_expect_ping(client_t *cl, uint64_t seq) {
  uint8_t want[8];
  ping_seq_bytes(seq, want);
  cl_expect_frame(cl, OP_PING, want, sizeof(want));
}

void cl_pong(client_t *cl, uint64_t seq) {
  uint8_t payload[8];
  ping_seq_bytes(seq, payload);
  cl_send_frame(cl, true, OP_PONG, payload, sizeof(payload));
}

bool cl_take_ping(client_t *cl, uint64_t seq) {
  settle(cl->fx);
  size_t off = cl->off;
  ws_in_t f;
  if (!cl_take_frame(cl, &f))
    return false;
  if (f.opcode != OP_PING) {
    cl->off = off; /* not a ping: left for the next read */
    return false;
  }
  uint8_t want[8];
  ping_seq_bytes(seq, want);
  cr_assert(f.len == sizeof(want) && memcmp(f.payload, want, f.len) == 0,
            "a ping, but not number %" PRIu64, seq);
  return true;
}

void cl_expect_close(client_t *cl, uint16_t code, const char *reason) {
  uint8_t payload[128];
  size_t rlen = strlen(reason);
  payload[0] = (uint8_t)(code >> 8);
  payload[1] = (uint8_t)code;
  memcpy(payload + 2, reason, rlen);
  cl_expect_frame(cl, OP_CLOSE, payload, rlen + 2);
}

void send_text_of(client_t *cl, size_t len) {
  static char text[FRAME_PAYLOAD_MAX];
  cr_assert_lt(len, sizeof(text));
  for (size_t i = 0; i < len; i++)
    text[i] = (char)('A' + i % 26);
  cl_send_frame(cl, true, OP_TEXT, text, len);
}

void expect_text_of(client_t *cl, size_t len) {
  static char text[FRAME_PAYLOAD_MAX];
  for (size_t i = 0; i < len; i++)
    text[i] = (char)('A' + i % 26);
  cl_expect_frame(cl, OP_TEXT, text, len);
}

/* The server closed with `code`; the client answers; the connection ends. */
void expect_server_close(client_t *cl, uint16_t code, const char *reason) {
  cl_expect_close(cl, code, reason);
  cl_send_close(cl, code, "");
  settle(cl->fx);
  cl_expect_eof(cl);
}

/* ---- The upgrade --------------------------------------------------------- */

void cl_send_upgrade(client_t *cl, const upgrade_t *u) {
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

void cl_expect_switching(client_t *cl) {
  settle(cl->fx);
  cl_expect_bytes(cl, SWITCHING, strlen(SWITCHING));
}

/* A client whose upgrade succeeded (101 consumed). */
client_t *ws_open_with(fx_t *fx, const upgrade_t *u) {
  client_t *cl = cl_connect(fx);
  cl_send_upgrade(cl, u);
  cl_expect_switching(cl);
  return cl;
}

client_t *ws_open(fx_t *fx) {
  upgrade_t u = {0};
  return ws_open_with(fx, &u);
}

/* The upgrade is refused with status_line and a JSON error, then closed. */
void expect_refused(fx_t *fx, const upgrade_t *u, const char *status_line,
                    const char *error, const char *extra) {
  client_t *cl = cl_connect(fx);
  cl_send_upgrade(cl, u);
  char body[256];
  snprintf(body, sizeof(body), "{\"error\":\"%s\"}", error);
  expect_error_and_close(cl, status_line, body, extra);
}
