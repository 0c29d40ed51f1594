/* net_server.c: the connection actor, and starting and stopping the server.
 *
 * A connection actor moves through these modes (function per transition):
 *
 *   HTTP --upgrade_to_ws()--> WS --net_ws close handshake--> (stop)
 *    |                         |
 *    +--linger()--> LINGER     +--finish()--> (stop)
 *    |                (drain input until EOF, bounded by a timer)
 *    +--finish()--> (stop)
 *
 * Invariants:
 *  (1) Only this actor writes its stream; HTTP output that the stream did
 *      not take waits in `out` (bounded by NET_HTTP_OUT_MAX plus one
 *      response), and WebSocket frames wait in wslay.
 *  (2) While an API reply is deferred, or `out` is over its bound, no more
 *      requests are parsed (pipelined requests are answered in order).
 *  (3) Exactly one deadline timer is armed per connection, of the kind the
 *      mode needs; a stale firing (an older timer id) is ignored.
 *  (4) The session's closed() runs exactly once, from on_stop.
 */
#include "net_server.h"

#include "net_http.h"
#include "net_ws.h"
#include "rt_assert.h"
#include "rt_tap.h"

#include <inttypes.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "net_server_int.h"

static const rt_session_conn_ops_t session_conn_ops;

static conn_t *conn_of_session(rt_session_conn_t *sc) {
  return (conn_t *)((char *)sc - offsetof(conn_t, session_conn));
}

/* ---- Small helpers ------------------------------------------------------- */

static rt_world_t *conn_world(const conn_t *c) { return c->srv->world; }

static void finish(conn_t *c, net_close_reason_t reason) {
  if (c->stopping)
    return;
  c->stopping = true;
  if (c->reason != NET_CLOSE_SHUTDOWN) /* the cause, not how it ended */
    c->reason = reason;
  rt_stop(conn_world(c), c->id, RT_REASON_NORMAL);
}

static void set_deadline(conn_t *c, deadline_kind_t kind, rt_time_ns delay) {
  rt_world_t *w = conn_world(c);
  if (c->deadline_timer != 0)
    (void)rt_timer_cancel(w, c->deadline_timer);
  c->deadline_timer = 0;
  c->deadline_kind = (uint8_t)kind;
  if (kind == DEADLINE_NONE)
    return;
  if (rt_timer_start(w, c->id, delay, 0, TAG_DEADLINE, kind,
                     &c->deadline_timer) < 0)
    finish(c, NET_CLOSE_RESET); /* no timer, no bound: do not go on */
}

/* One timer per connection serves the pings, the silence check and, with
 * park (unless parked already, or parking at once: ws_park_after 0), the
 * park: memory per idle connection is the figure that matters here. Every
 * duration is at most NET_DURATION_MAX (net_server_start), so no sum here
 * overflows. */
static void ws_arm_keepalive(conn_t *c, bool park) {
  const net_server_config_t *cfg = &c->srv->cfg;
  rt_time_ns now = rt_now(conn_world(c));
  rt_time_ns due = c->last_rx + cfg->ws_pong_wait;
  if (c->next_ping < due)
    due = c->next_ping;
  c->park_armed = park && cfg->ws_park_after > 0 && !net_ws_parked(c->ws);
  if (c->park_armed && c->last_io + cfg->ws_park_after < due)
    due = c->last_io + cfg->ws_park_after;
  set_deadline(c, DEADLINE_WS_KEEPALIVE, due > now ? due - now : 0);
}

/* ---- HTTP output: Invariant (1) ------------------------------------------ */

static bool out_push(conn_t *c, rt_buf_t *buf) {
  if (buf == NULL)
    return false;
  if (c->out == NULL)
    c->out = malloc(CONN_OUT_PIECES * sizeof(*c->out));
  if (c->out == NULL || c->out_count == CONN_OUT_PIECES) {
    rt_buf_unref(buf);
    return false;
  }
  c->out[(c->out_head + c->out_count) % CONN_OUT_PIECES] =
      (out_piece_t){.buf = buf, .off = 0};
  c->out_count++;
  c->out_bytes += buf->len;
  return true;
}

static void out_clear(conn_t *c) {
  while (c->out_count > 0) {
    rt_buf_unref(c->out[c->out_head].buf);
    c->out_head = (c->out_head + 1) % CONN_OUT_PIECES;
    c->out_count--;
  }
  c->out_bytes = 0;
}

/* Write queued output; returns false when the connection failed. */
static bool out_flush(conn_t *c) {
  while (c->out_count > 0) {
    out_piece_t *p = &c->out[c->out_head];
    int64_t n =
        rt_stream_write(c->stream, p->buf->data + p->off, p->buf->len - p->off);
    if (n < 0) {
      finish(c, NET_CLOSE_RESET);
      return false;
    }
    if (n == 0)
      return true; /* WRITABLE brings us back */
    p->off += (uint32_t)n;
    c->out_bytes -= (uint64_t)n;
    c->srv->stats.bytes_out += (uint64_t)n;
    if (p->off == p->buf->len) {
      rt_buf_unref(p->buf);
      c->out_head = (c->out_head + 1) % CONN_OUT_PIECES;
      c->out_count--;
    }
  }
  if (c->mode == MODE_WS) { /* the 101 is out: no more HTTP output */
    free(c->out);
    c->out = NULL;
  }
  return true;
}

/* A methods line (Allow, or a preflight's Access-Control-Allow-Methods):
 * the name, every route's method and HEAD, ", " between them, "\r\n"; the
 * lengths are bounded by config_valid. */
#define METHODS_LINE_MAX                                                       \
  (sizeof("Access-Control-Allow-Methods: \r\n") +                              \
   (NET_ROUTES_MAX + 1) * (NET_ROUTE_METHOD_LEN_MAX + 2))
#define PREFLIGHT_LINES                                                        \
  "Access-Control-Allow-Headers: Authorization, Content-Type\r\n"              \
  "Access-Control-Max-Age: %u\r\n"
/* The longest extra lines respond() is given for an API path: a methods
 * line and a preflight's lines after it (16: room for the Max-Age). */
#define EXTRA_HEADERS_MAX (METHODS_LINE_MAX + sizeof(PREFLIGHT_LINES) + 16)
/* What CORS adds to an answer (net_server.h, top). */
#define CORS_LINES                                                             \
  "Access-Control-Allow-Origin: %s\r\n"                                        \
  "Access-Control-Allow-Credentials: true\r\nVary: Origin\r\n"
#define CORS_LINES_MAX (sizeof(CORS_LINES) + NET_ORIGIN_LEN_MAX)

/* Queue a response. body is taken (may be NULL). An answer to a request
 * from a configured CORS origin says that origin may read it. */
static void respond(conn_t *c, int status, const char *content_type,
                    rt_buf_t *body, const char *extra_headers) {
  net_server_stats_t *st = &c->srv->stats;
  if (status >= 100 && status < 600)
    st->http_status[status / 100]++;
  char headers[EXTRA_HEADERS_MAX + CORS_LINES_MAX];
  if (c->cors_origin != NULL) {
    int n =
        snprintf(headers, sizeof(headers), "%s" CORS_LINES,
                 extra_headers != NULL ? extra_headers : "", c->cors_origin);
    RT_ASSERT(n > 0 && (size_t)n < sizeof(headers)); /* the bounds above */
    extra_headers = headers;
  }
  size_t len = body != NULL ? body->len : 0;
  rt_buf_t *head = net_http_response_head(status, content_type, len,
                                          c->keep_alive, extra_headers);
  bool ok = out_push(c, head);
  if (ok && body != NULL && !c->head_only)
    ok = out_push(c, body);
  else
    rt_buf_unref(body);
  if (!ok || !c->keep_alive)
    c->close_after_flush = true;
}

static void respond_text(conn_t *c, int status, const char *content_type,
                         const char *text, const char *extra_headers) {
  respond(c, status, content_type, rt_buf_copy(text, strlen(text)),
          extra_headers);
}

static void respond_error(conn_t *c, int status, const char *message) {
  char body[256];
  snprintf(body, sizeof(body), "{\"error\":\"%s\"}", message);
  respond_text(c, status, "application/json", body, NULL);
}

/* A 405 must say what the path does allow (RFC 9110 15.5.6). */

static void respond_405(conn_t *c, const char *allow_line) {
  respond_text(c, 405, "application/json", "{\"error\":\"method not allowed\"}",
               allow_line);
}

/* ---- Routing: the answers ------------------------------------------------ */

static const char not_found_page[] =
    "<!doctype html><html><head><meta charset=\"utf-8\"><title>Not found"
    "</title></head><body><h1>Not found</h1><p>There is no cookie here. "
    "<a href=\"/\">Back to the game</a>.</p></body></html>\n";

static void serve_static(conn_t *c, const net_static_file_t *f) {
  char headers[160];
  snprintf(headers, sizeof(headers),
           "Cache-Control: %s\r\nX-Content-Type-Options: nosniff\r\n",
           f->cache_control);
  respond(c, 200, f->content_type, rt_buf_ref(f->body), headers);
}

#define METRICS_TEXT_MAX (64u * 1024)

/* Rendered into scratch space of the largest size, then copied into a
 * buffer of its exact length: an answer that waits in `out` for a slow
 * reader must hold the bytes it counts against NET_HTTP_OUT_MAX, not 64
 * KiB (1000 pipelining readers that read nothing held 70 MB, against 18
 * MB for /health). */
static void serve_metrics(conn_t *c) {
  char *text = malloc(METRICS_TEXT_MAX);
  rt_buf_t *buf = NULL;
  if (text != NULL) {
    buf =
        rt_buf_copy(text, net_server__metrics(c->srv, text, METRICS_TEXT_MAX));
    free(text);
  }
  if (buf == NULL) {
    respond_error(c, 503, "out of memory");
    return;
  }
  respond(c, 200, "text/plain; version=0.0.4; charset=utf-8", buf,
          "Cache-Control: no-store\r\n");
}

/* With a metrics token configured, /metrics answers only a request whose
 * Authorization is "Bearer <token>", compared in constant time. The
 * answer is an external (rt_tap.h): a trace holds whether each request
 * passed, never the configured token, so a replay rebuilds the same
 * answers without it. (A request that carries the token is input, and its
 * bytes are recorded as they came, like a player's token.) */
static bool metrics_allowed(conn_t *c, const net_http_request_t *req) {
  const char *token = c->srv->cfg.metrics_token;
  if (token == NULL)
    return true;
  rt_world_t *w = c->srv->world;
  int64_t rc;
  const uint8_t *data;
  size_t len;
  int got = rt_external_take(w, NET_EXT_METRICS_AUTH, &rc, &data, &len);
  if (got < 0)
    return false;
  if (got == 0) {
    const char *auth = net_http_header(req, "Authorization");
    size_t tlen = strlen(token);
    rc = auth != NULL && strncasecmp(auth, "Bearer ", 7) == 0 &&
         strlen(auth + 7) == tlen && CRYPTO_memcmp(auth + 7, token, tlen) == 0;
    rt_external_put(w, NET_EXT_METRICS_AUTH, rc, NULL, 0);
  }
  return rc == 1;
}

/* A HEAD that runs a GET route calls it as a GET: the route answers what it
 * was registered for, and respond() drops the body (c->head_only). */
/* The key a request counts for: the connection's address, or through the
 * trusted proxy the last X-Forwarded-For entry, which the proxy appended
 * (entries before it are the client's word). 0: unknown. */
static uint64_t request_key(const conn_t *c, const net_http_request_t *req) {
  if (!c->via_proxy)
    return c->peer_key;
  const char *xff = net_http_header(req, "X-Forwarded-For");
  if (xff == NULL)
    return 0;
  const char *last = strrchr(xff, ',');
  last = last != NULL ? last + 1 : xff;
  while (*last == ' ' || *last == '\t')
    last++;
  char addr[RT_PEER_MAX];
  size_t n = strspn(last, "0123456789abcdefABCDEF.:");
  if (n == 0 || n >= sizeof(addr) || last[n] != '\0')
    return 0;
  memcpy(addr, last, n);
  addr[n] = '\0';
  return net_peers_key(&c->srv->peers, addr);
}

/* A metered route over its rate for this address: 429 with Retry-After. */
static bool throttled(conn_t *c, const net_route_t *r,
                      const net_http_request_t *req) {
  if (!r->per_address_limited || !c->srv->peers_on)
    return false;
  uint32_t retry_s;
  int rc = net_peers_request(&c->srv->peers, request_key(c, req),
                             rt_now(conn_world(c)), &retry_s);
  if (rc == RT_OK)
    return false;
  c->srv->stats.throttled++;
  char headers[64];
  snprintf(headers, sizeof(headers), "Retry-After: %u\r\n", (unsigned)retry_s);
  respond_text(c, 429, "application/json",
               "{\"error\":\"too many requests from your address\"}", headers);
  return true;
}

static void call_route(conn_t *c, const net_route_t *r,
                       const net_http_request_t *req) {
  if (throttled(c, r, req))
    return;
  rt_http_call_t call = {
      .method = r->method,
      .path = req->path,
      .query = req->query,
      .authorization = net_http_header(req, "Authorization"),
      .body = req->body,
      .body_len = req->body_len,
      .reply_to = c->id,
      .call_id = ++c->call_id,
  };
  rt_http_answer_t answer = {0};
  int rc = r->fn(r->ctx, conn_world(c), &call, &answer);
  if (rc == RT_HTTP_DEFERRED) {
    c->awaiting = true;
    set_deadline(c, DEADLINE_REPLY, c->srv->cfg.reply_timeout);
    return;
  }
  if (rc < 0) {
    rt_buf_unref(answer.body);
    respond_error(c, 500, "internal error");
    return;
  }
  respond(c, answer.status,
          answer.content_type != NULL ? answer.content_type
                                      : "application/json",
          answer.body, "Cache-Control: no-store\r\n");
}

/* A refused upgrade: the connection closes after the answer. */
static void refuse_upgrade(conn_t *c, const net_route_decision_t *d) {
  c->keep_alive = false;
  char body[160];
  snprintf(body, sizeof(body), "{\"error\":\"%s\"}", d->why);
  respond(c, d->status, "application/json", rt_buf_copy(body, strlen(body)),
          d->extra);
}

static void upgrade_to_ws(conn_t *c, const net_route_decision_t *d);

/* Whether some route has this path (the API's paths get CORS). */
static bool path_has_routes(const net_server_t *srv, const char *path) {
  for (uint32_t i = 0; i < srv->cfg.routes_len; i++)
    if (strcmp(srv->cfg.routes[i].path, path) == 0)
      return true;
  return false;
}

/* The configured CORS origin that is the request's Origin byte for byte,
 * or NULL. Exact: a browser writes its origin one way only
 * (net_server_origin_valid), and the answer names it back. */
static const char *cors_origin_of(const net_server_t *srv,
                                  const net_http_request_t *req) {
  const char *origin = net_http_header(req, "Origin");
  if (origin == NULL)
    return NULL;
  for (uint32_t i = 0; i < srv->cfg.cors_origins_len; i++)
    if (strcmp(origin, srv->cfg.cors_origins[i]) == 0)
      return srv->cfg.cors_origins[i];
  return NULL;
}

/* A preflight from a configured origin on a route's path: 204 with what
 * the path allows, the methods of the 405's Allow line (allow, from
 * net_server_route); respond() adds the origin's lines. */
static void respond_preflight(conn_t *c, const char *allow) {
  RT_ASSERT(c->cors_origin != NULL);
  RT_ASSERT(strncmp(allow, "Allow: ", 7) == 0);
  char lines[EXTRA_HEADERS_MAX];
  size_t len = (size_t)snprintf(lines, sizeof(lines),
                                "Access-Control-Allow-Methods: %s", allow + 7);
  RT_ASSERT(len < sizeof(lines));
  int n = snprintf(lines + len, sizeof(lines) - len, PREFLIGHT_LINES,
                   NET_CORS_MAX_AGE_S);
  RT_ASSERT(n > 0 && (size_t)n < sizeof(lines) - len);
  respond(c, 204, NULL, NULL, lines);
}

static void route(conn_t *c, const net_http_request_t *req) {
  net_server_t *srv = c->srv;
  /* After a head that asks to upgrade, the parser has stopped for good
   * (net_http.h: the bytes after it are the new protocol's): when we answer
   * without switching, the connection must close after the answer. */
  c->keep_alive = req->keep_alive && !req->upgrade && !srv->shutting_down;
  c->head_only = req->method_id == HTTP_HEAD;
  c->cors_origin = NULL; /* the API's paths only, below */
  net_route_decision_t d;
  net_server_route(&srv->cfg, req, &d);
  bool route_path = path_has_routes(srv, req->path);
  if (route_path &&
      (d.kind == NET_ROUTE_API || d.kind == NET_ROUTE_NOT_ALLOWED))
    c->cors_origin = cors_origin_of(srv, req);
  switch (d.kind) {
  case NET_ROUTE_UPGRADE: upgrade_to_ws(c, &d); return;
  case NET_ROUTE_REFUSED: refuse_upgrade(c, &d); return;
  case NET_ROUTE_HEALTH:
    respond_text(c, 200, "application/json", "{\"status\":\"healthy\"}",
                 "Cache-Control: no-store\r\n");
    return;
  case NET_ROUTE_METRICS:
    if (metrics_allowed(c, req))
      serve_metrics(c);
    else
      respond_text(c, 401, "application/json",
                   "{\"error\":\"missing or invalid bearer token\"}",
                   "WWW-Authenticate: Bearer realm=\"metrics\"\r\n");
    return;
  case NET_ROUTE_API: call_route(c, d.route, req); return;
  case NET_ROUTE_STATIC: serve_static(c, d.file); return;
  case NET_ROUTE_NOT_ALLOWED:
    if (route_path && req->method_id == HTTP_OPTIONS && c->cors_origin != NULL)
      respond_preflight(c, d.allow);
    else
      respond_405(c, d.allow);
    return;
  case NET_ROUTE_NOT_FOUND:
    respond_text(c, 404, "text/html; charset=utf-8", not_found_page, NULL);
    return;
  }
}

/* ---- WebSocket ----------------------------------------------------------- */

static void ws_on_text(void *ud, const uint8_t *data, size_t len) {
  conn_t *c = ud;
  c->srv->stats.ws_messages_in++;
  if (c->session_open && c->self != NULL)
    c->srv->cfg.session->text(c->session, c->self, data, len);
}

static const net_ws_callbacks_t ws_callbacks = {.on_text = ws_on_text,
                                                .on_pong = net_server__on_pong};

/* The request passed every check of net_server_route (d->accept, d->who). */
static void upgrade_to_ws(conn_t *c, const net_route_decision_t *d) {
  net_server_t *srv = c->srv;
  char head[256];
  int n = snprintf(head, sizeof(head),
                   "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
                   d->accept);
  srv->stats.http_status[1]++;
  net_ws_config_t wcfg = {.client = false,
                          .message_max = srv->cfg.ws_message_max,
                          .park_idle = srv->cfg.ws_park_after == 0,
                          .pool = srv->ws_pool,
                          .park_count = &srv->stats.ws_parks};
  c->ws = net_ws_create(c->stream, &wcfg, &ws_callbacks, c, c->in + c->in_off,
                        c->in_len - c->in_off);
  if (c->ws == NULL || !out_push(c, rt_buf_copy(head, (size_t)n))) {
    net_ws_destroy(c->ws); /* never counted as a WebSocket */
    c->ws = NULL;
    finish(c, NET_CLOSE_RESET);
    return;
  }
  free(c->hp);
  c->hp = NULL;
  free(c->in);
  c->in = NULL;
  c->in_off = c->in_len = 0;
  c->mode = MODE_WS;
  srv->stats.ws_upgrades++;
  srv->stats.websockets++;
  c->last_rx = c->last_io = rt_now(conn_world(c));
  c->next_ping = c->last_rx + srv->cfg.ws_ping_period;
  c->ping_at = c->last_rx; /* the first probe comes a period after this */
  ws_arm_keepalive(c, true);
  c->session_conn.ops = &session_conn_ops;
  c->session = srv->cfg.session->open(srv->cfg.session->ctx, c->self,
                                      &c->session_conn, &d->who);
  if (c->session == NULL) {
    net_ws_close(c->ws, NET_WS_CLOSE_INTERNAL, "session refused");
    set_deadline(c, DEADLINE_WS_CLOSE, srv->cfg.ws_close_wait);
    return;
  }
  c->session_open = true;
  /* Frames that arrived with the head are already buffered. */
  rt_stream_notify(c->stream, RT_STREAM_READABLE);
}

static void ws_after_io(conn_t *c);
static void linger(conn_t *c);

/* The WebSocket is over: the session hears of it (Invariant (4)), its
 * close is counted and net_ws freed. The TCP connection may linger on. */
static void ws_end(conn_t *c, rt_actor_t *self) {
  net_server_t *srv = c->srv;
  if (c->session_open) {
    c->session_open = false;
    srv->cfg.session->closed(c->session, self, net_ws_close_code(c->ws));
  }
  if (c->ws != NULL) {
    srv->stats.ws_close_codes[net_server_close_code_index(
        net_ws_close_code(c->ws))]++;
    srv->stats.websockets--;
    net_ws_destroy(c->ws);
    c->ws = NULL;
  }
}

static void ws_readable(conn_t *c) {
  if (c->stopping)
    return;
  int64_t n = net_ws_on_readable(c->ws);
  if (n > 0)
    c->last_rx = c->last_io = rt_now(conn_world(c));
  if (n < 0) {
    finish(c, net_ws_closing(c->ws) ? NET_CLOSE_WS_DONE : NET_CLOSE_RESET);
    return;
  }
  if (net_ws_wants_more(c->ws))
    rt_stream_notify(c->stream, RT_STREAM_READABLE);
  ws_after_io(c);
}

/* After any WebSocket activity: flush, tell the session about drained
 * output, and notice the end of the close handshake. */
static void ws_after_io(conn_t *c) {
  if (c->stopping)
    return;
  if (c->out_count > 0 && !out_flush(c))
    return;
  if (c->out_count == 0 && net_ws_flush(c->ws) < 0) {
    finish(c, NET_CLOSE_RESET);
    return;
  }
  if (net_ws_finished(c->ws)) {
    if (net_ws_peer_close_code(c->ws) == 0 && !net_ws_failed(c->ws) &&
        c->self != NULL) {
      /* Our close went out and the peer answered with bytes it sent
       * before reading it (a flooder's, say), or its EOF. Closing now,
       * with its input unread, would reset the connection, and a reset
       * can discard our close frame (1008, 1009) before the peer reads
       * it: the WebSocket ends here, and the connection closes its
       * side and drains what still comes (for at most CONN_LINGER_NS). */
      if (c->reason != NET_CLOSE_SHUTDOWN)
        c->reason = NET_CLOSE_WS_DONE;
      ws_end(c, c->self);
      linger(c);
      return;
    }
    finish(c, NET_CLOSE_WS_DONE);
    return;
  }
  if (net_ws_closing(c->ws) && c->deadline_kind != DEADLINE_WS_CLOSE)
    set_deadline(c, DEADLINE_WS_CLOSE, c->srv->cfg.ws_close_wait);
  else if (c->srv->cfg.ws_park_after > 0 && !c->park_armed &&
           c->deadline_kind == DEADLINE_WS_KEEPALIVE && !net_ws_parked(c->ws))
    ws_arm_keepalive(c, true); /* bytes moved: park once they stop */
  size_t backlog = net_ws_backlog(c->ws) + c->out_bytes;
  if (backlog < c->backlog_seen && c->session_open && c->self != NULL)
    c->srv->cfg.session->drained(c->session, c->self);
  c->backlog_seen = backlog;
}

static int session_send_text(rt_session_conn_t *sc, const rt_buf_t *frame) {
  conn_t *c = conn_of_session(sc);
  if (c->ws == NULL || net_ws_closing(c->ws))
    return RT_EPIPE;
  int err = net_ws_send_text(c->ws, frame->data, frame->len);
  if (err == RT_OK) {
    rt_time_ns now = rt_now(conn_world(c));
    c->srv->stats.ws_messages_out++;
    c->backlog_seen += frame->len;
    c->last_io = now;
    net_server__probe(c, frame->len, now);
  }
  return err;
}

static size_t session_backlog(const rt_session_conn_t *sc) {
  const conn_t *c =
      (const conn_t *)((const char *)sc - offsetof(conn_t, session_conn));
  return c->ws != NULL ? net_ws_backlog(c->ws) + c->out_bytes : 0;
}

static void session_close(rt_session_conn_t *sc, uint16_t code,
                          const char *reason) {
  conn_t *c = conn_of_session(sc);
  if (c->ws == NULL)
    return;
  net_ws_close(c->ws, code, reason);
  set_deadline(c, DEADLINE_WS_CLOSE, c->srv->cfg.ws_close_wait);
}

static const rt_session_conn_ops_t session_conn_ops = {
    .send_text = session_send_text,
    .backlog = session_backlog,
    .unread_for = net_server__unread_for,
    .close = session_close,
};

/* ---- HTTP input ---------------------------------------------------------- */

/* Shut our side after the last response and drain the peer's input until
 * it closes: closing with unread input would reset the connection and could
 * destroy the response in flight. */
static void linger(conn_t *c) {
  rt_stream_shutdown(c->stream);
  c->mode = MODE_LINGER;
  set_deadline(c, DEADLINE_LINGER, CONN_LINGER_NS);
  rt_stream_notify(c->stream, RT_STREAM_READABLE);
}

static void linger_readable(conn_t *c) {
  uint8_t sink[1024];
  for (int i = 0; i < READS_PER_TURN; i++) {
    int64_t n = rt_stream_read(c->stream, sink, sizeof(sink));
    if (n == 0)
      return;
    if (n < 0) {
      finish(c, c->reason);
      return;
    }
  }
  rt_stream_notify(c->stream, RT_STREAM_READABLE); /* more later, fairly */
}

static bool http_paused(const conn_t *c) {
  return c->awaiting || c->close_after_flush ||
         c->out_bytes > NET_HTTP_OUT_MAX || c->out_count + 2 > CONN_OUT_PIECES;
}

/* The interim answer to Expect: 100-continue: the client sends the content
 * once it has this. Not counted in the status metrics: it is not the
 * request's answer. Invariant (2) left room for it: no request is parsed
 * unless two pieces are free. */
static void send_continue(conn_t *c) {
  static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
  if (!out_push(c, rt_buf_copy(cont, sizeof(cont) - 1)))
    c->close_after_flush = true; /* out of memory: give up on this one */
}

/* Parse and answer buffered requests until input runs out or Invariant (2)
 * pauses us. */
static void http_process(conn_t *c) {
  while (c->mode == MODE_HTTP && !http_paused(c) && c->in_off < c->in_len) {
    size_t used =
        net_http_feed(c->hp, c->in + c->in_off, c->in_len - c->in_off);
    c->in_off += (uint32_t)used;
    if (c->hp->state == NET_HTTP_ERROR) {
      c->keep_alive = false;
      c->head_only = false;
      c->cors_origin = NULL; /* no request, no path: not the API's */
      respond_error(c, c->hp->error_status,
                    net_http_reason(c->hp->error_status));
      c->reason = NET_CLOSE_HTTP_ERROR;
      return;
    }
    if (c->hp->state == NET_HTTP_NEED_MORE) {
      if (net_http_take_continue(c->hp))
        send_continue(c);
      if (net_http_in_request(c->hp) && c->deadline_kind == DEADLINE_IDLE)
        set_deadline(c, DEADLINE_HEADER, c->srv->cfg.header_timeout);
      continue;
    }
    c->srv->stats.http_requests++;
    route(c, net_http_request(c->hp));
    if (c->mode != MODE_HTTP)
      return; /* upgraded (or finishing) */
    net_http_next(c->hp);
    if (!c->awaiting)
      set_deadline(c, DEADLINE_IDLE, c->srv->cfg.idle_timeout);
  }
}

static void http_after_io(conn_t *c) {
  if (c->stopping || !out_flush(c))
    return;
  if (c->out_count == 0 && c->close_after_flush) {
    if (c->reason == NET_CLOSE_PEER)
      c->reason = NET_CLOSE_HTTP_DONE;
    linger(c);
    return;
  }
  if (c->mode == MODE_WS)
    ws_after_io(c);
}

static void http_readable(conn_t *c) {
  bool paused = false;
  for (int i = 0; i < READS_PER_TURN && c->mode == MODE_HTTP && !c->stopping;
       i++) {
    http_process(c);
    if (c->mode != MODE_HTTP)
      break;
    if (http_paused(c)) {
      paused = true;
      break;
    }
    if (c->in_off == c->in_len) {
      c->in_off = c->in_len = 0;
      int64_t n = rt_stream_read(c->stream, c->in, CONN_IN_CHUNK);
      if (n == 0)
        break;
      if (n == RT_EOF && c->out_count > 0) {
        /* The peer finished sending (a half-close) right behind requests
         * whose answers are still queued: deliver them, then close. */
        c->keep_alive = false;
        c->close_after_flush = true;
        break;
      }
      if (n < 0) {
        finish(c, n == RT_EOF ? NET_CLOSE_PEER : NET_CLOSE_RESET);
        return;
      }
      c->srv->stats.bytes_in += (uint64_t)n;
      c->in_len = (uint32_t)n;
    }
    if (i == READS_PER_TURN - 1)
      rt_stream_notify(c->stream, RT_STREAM_READABLE); /* fairness */
  }
  http_after_io(c);
  /* Paused by output (Invariant (2)) that has drained just now: the requests
   * still buffered, and bytes not yet read, will get no new READABLE edge
   * (rt_stream.h), so come back for them, behind the other actors. */
  if (paused && c->mode == MODE_HTTP && !c->stopping && !http_paused(c))
    rt_stream_notify(c->stream, RT_STREAM_READABLE);
}

/* ---- The connection actor ------------------------------------------------ */

/* Ping on schedule; close a connection silent for ws_pong_wait; give back
 * wslay's context once quiet for ws_park_after (net_ws_park); re-arm for
 * whichever comes first. */
static void ws_keepalive(conn_t *c) {
  const net_server_config_t *cfg = &c->srv->cfg;
  rt_time_ns now = rt_now(conn_world(c));
  if (now - c->last_rx >= cfg->ws_pong_wait) {
    finish(c, NET_CLOSE_WS_SILENT);
    return;
  }
  if (now >= c->next_ping) {
    while (c->next_ping <= now)
      c->next_ping += cfg->ws_ping_period;
    if (!net_ws_closing(c->ws)) {
      if (c->ping_seq == c->pong_seq)
        net_server__ping(c, now); /* else the pings out ask already */
      c->last_io = now;
      ws_after_io(c);
    }
    if (c->stopping || c->deadline_kind == DEADLINE_WS_CLOSE)
      return; /* the close handshake has its own deadline */
  }
  bool park = true;
  if (cfg->ws_park_after > 0 && !net_ws_parked(c->ws) &&
      now - c->last_io >= cfg->ws_park_after &&
      !net_ws_park(c->ws)) /* (net_ws_park counts it in ws_parks) */
    /* Something in flight (output a reader has not taken, half a frame):
     * the next bytes to move re-arm the park (ws_after_io), so a stuck
     * connection costs no tries while nothing moves. */
    park = false;
  ws_arm_keepalive(c, park);
}

static void on_deadline(conn_t *c, const rt_msg_t *msg) {
  rt_timer_event_t ev;
  RT_MSG_GET(msg, rt_timer_event_t, &ev);
  if (ev.timer != c->deadline_timer)
    return; /* Invariant (3): stale */
  c->deadline_timer = 0;
  switch ((deadline_kind_t)ev.data) {
  case DEADLINE_HEADER: finish(c, NET_CLOSE_HEADER_TIMEOUT); return;
  case DEADLINE_IDLE: finish(c, NET_CLOSE_IDLE_TIMEOUT); return;
  case DEADLINE_REPLY:
    c->awaiting = false;
    c->keep_alive = false;
    respond_error(c, 504, "the game did not answer in time");
    c->reason = NET_CLOSE_REPLY_TIMEOUT;
    http_after_io(c);
    return;
  case DEADLINE_WS_KEEPALIVE: ws_keepalive(c); return;
  case DEADLINE_WS_CLOSE: finish(c, NET_CLOSE_WS_CLOSE_WAIT); return;
  case DEADLINE_LINGER: finish(c, c->reason); return;
  case DEADLINE_NONE: return;
  }
}

static void on_http_reply(conn_t *c, const rt_msg_t *msg) {
  rt_http_reply_t r;
  RT_MSG_GET(msg, rt_http_reply_t, &r);
  if (!c->awaiting || r.call_id != c->call_id || c->mode != MODE_HTTP)
    return; /* late or unknown: the connection moved on */
  c->awaiting = false;
  respond(c, r.status, "application/json",
          msg->buf != NULL ? rt_buf_ref(msg->buf) : NULL,
          "Cache-Control: no-store\r\n");
  set_deadline(c, DEADLINE_IDLE, c->srv->cfg.idle_timeout);
  http_readable(c); /* pipelined requests may be waiting */
}

static void on_shutdown(conn_t *c) {
  if (c->mode == MODE_WS) {
    net_ws_close(c->ws, NET_WS_CLOSE_GOING_AWAY, "server shutting down");
    c->reason = NET_CLOSE_SHUTDOWN;
    ws_after_io(c);
    return;
  }
  if (c->mode == MODE_HTTP && !c->awaiting && c->out_count == 0 &&
      (c->hp == NULL || !net_http_in_request(c->hp))) {
    finish(c, NET_CLOSE_SHUTDOWN);
    return;
  }
  c->keep_alive = false;
}

static void on_stream(conn_t *c, const rt_msg_t *msg) {
  rt_stream_event_t ev;
  RT_MSG_GET(msg, rt_stream_event_t, &ev);
  switch ((conn_mode_t)c->mode) {
  case MODE_HTTP: http_readable(c); return;
  case MODE_WS:
    if (ev.events & (RT_STREAM_READABLE | RT_STREAM_CLOSED))
      ws_readable(c);
    else
      ws_after_io(c);
    return;
  case MODE_LINGER: linger_readable(c); return;
  }
}

static void conn_behaviour(rt_actor_t *self, const rt_msg_t *msg) {
  conn_t *c = rt_state(self);
  if (c->stopping)
    return; /* finishing: nothing more to do this turn */
  c->self = self;
  switch (msg->tag) {
  case RT_TAG_STREAM: on_stream(c, msg); break;
  case TAG_DEADLINE: on_deadline(c, msg); break;
  case TAG_SHUTDOWN: on_shutdown(c); break;
  case RT_TAG_HTTP_REPLY: on_http_reply(c, msg); break;
  default:
    if (msg->tag >= RT_TAG_USER && c->session_open) {
      c->srv->cfg.session->message(c->session, self, msg);
      /* Flush once the mailbox is empty: frames queued by a run of
       * messages leave in one write (net_ws gathers them), not one each. */
      if (rt_self_pending(self) == 0)
        ws_after_io(c);
    }
    break;
  }
  c->self = NULL;
}

static void conns_remove(net_server_t *srv, conn_t *c) {
  RT_ASSERT(c->slot < srv->conns_len && srv->conns[c->slot] == c);
  conn_t *last = srv->conns[--srv->conns_len];
  srv->conns[c->slot] = last;
  last->slot = c->slot;
}

static void conn_on_stop(rt_actor_t *self, int reason) {
  (void)reason;
  conn_t *c = rt_state(self);
  net_server_t *srv = c->srv;
  ws_end(c, self);
  srv->stats.closes[c->reason]++;
  srv->stats.connections--;
  net_peers_disconnect(&srv->peers, c->peer_key, rt_now(srv->world));
  out_clear(c);
  free(c->out);
  rt_stream_close(c->stream);
  free(c->hp);
  free(c->in);
  conns_remove(srv, c);
  free(c);
}

/* ---- The acceptor -------------------------------------------------------- */

const char net_server__busy_response[] =
    "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
    "Content-Length: 39\r\nConnection: close\r\nRetry-After: 5\r\n\r\n"
    "{\"error\":\"too many connections, later\"}";

static int conns_add(net_server_t *srv, conn_t *c) {
  if (srv->conns_len == srv->conns_cap) {
    uint32_t cap = srv->conns_cap == 0 ? 64 : srv->conns_cap * 2;
    conn_t **grown = realloc(srv->conns, (size_t)cap * sizeof(*grown));
    if (grown == NULL)
      return RT_ENOMEM;
    srv->conns = grown;
    srv->conns_cap = cap;
  }
  c->slot = srv->conns_len;
  srv->conns[srv->conns_len++] = c;
  return RT_OK;
}

int net_server__conn_spawn(net_server_t *srv, rt_stream_t *s, uint64_t peer_key,
                           bool via_proxy) {
  conn_t *c = calloc(1, sizeof(*c));
  if (c == NULL)
    return RT_ENOMEM;
  c->srv = srv;
  c->stream = s;
  c->peer_key = peer_key;
  c->via_proxy = via_proxy;
  c->hp = malloc(sizeof(*c->hp));
  c->in = malloc(CONN_IN_CHUNK);
  int err = c->hp == NULL || c->in == NULL ? RT_ENOMEM : conns_add(srv, c);
  if (err < 0) {
    free(c->hp);
    free(c->in);
    free(c);
    return err;
  }
  net_http_parser_init(c->hp);
  rt_actor_spec_t spec = {.name = "conn",
                          .behaviour = conn_behaviour,
                          .on_stop = conn_on_stop,
                          .state = c,
                          .mailbox_cap = srv->cfg.mailbox_cap,
                          .overflow = srv->cfg.overflow,
                          .rules = srv->rules,
                          .rules_len = srv->cfg.rules_len};
  err = rt_spawn(srv->world, &spec, &c->id);
  if (err < 0) {
    conns_remove(srv, c);
    free(c->hp);
    free(c->in);
    free(c);
    return err;
  }
  srv->stats.connections++;
  srv->stats.accepted++;
  set_deadline(c, DEADLINE_HEADER, srv->cfg.header_timeout);
  rt_stream_set_owner(s, c->id);
  return RT_OK;
}

/* ---- The server ---------------------------------------------------------- */

int net_server_start(rt_world_t *w, rt_listener_t *listener,
                     const net_server_config_t *cfg, net_server_t **out) {
  net_server_config_t checked = *cfg;
  net_server__apply_defaults(&checked);
  if (!net_server__config_valid(&checked))
    return RT_EINVAL;
  net_server_t *srv = calloc(1, sizeof(*srv));
  if (srv == NULL)
    return RT_ENOMEM;
  srv->world = w;
  srv->cfg = checked;
  for (uint32_t i = 0; i < cfg->rules_len; i++)
    srv->rules[i] = cfg->rules[i];
  srv->cfg.rules = srv->rules;
  srv->peers_on = checked.peers.connections_max > 0 ||
                  checked.peers.requests_per_minute > 0;
  srv->ws_pool = net_ws_pool_create(false);
  if (srv->ws_pool == NULL ||
      net_peers_init(&srv->peers, &checked.peers, rt_world_seed(w)) < 0) {
    net_ws_pool_destroy(srv->ws_pool);
    free(srv);
    return RT_ENOMEM;
  }
  srv->listener = listener;
  rt_actor_spec_t spec = {.name = "acceptor",
                          .behaviour = net_server__acceptor_behaviour,
                          .on_stop = net_server__acceptor_on_stop,
                          .state = srv,
                          .mailbox_cap = 4,
                          .overflow = RT_OVERFLOW_REJECT};
  int err = rt_spawn(w, &spec, &srv->acceptor);
  if (err < 0) {
    net_peers_deinit(&srv->peers);
    net_ws_pool_destroy(srv->ws_pool);
    free(srv);
    return err;
  }
  listener->owner = srv->acceptor;
  rt_listener_notify(listener); /* connections may be waiting already */
  *out = srv;
  return RT_OK;
}

void net_server_shutdown(net_server_t *srv) {
  srv->shutting_down = true;
  if (srv->acceptor != 0)
    rt_stop(srv->world, srv->acceptor, RT_REASON_NORMAL);
  /* Iterate over a copy of the ids: a stop edits srv->conns. */
  uint32_t n = srv->conns_len;
  rt_actor_id_t *ids = malloc((size_t)(n > 0 ? n : 1) * sizeof(*ids));
  if (ids == NULL)
    return;
  for (uint32_t i = 0; i < n; i++)
    ids[i] = srv->conns[i]->id;
  for (uint32_t i = 0; i < n; i++) {
    rt_msg_t m = rt_msg_make(TAG_SHUTDOWN, NULL, 0);
    if (rt_send(srv->world, ids[i], &m) == RT_EFULL)
      rt_stop(srv->world, ids[i], RT_REASON_SHUTDOWN);
  }
  free(ids);
}

void net_server_free(net_server_t *srv) {
  if (srv == NULL)
    return;
  RT_ASSERT(srv->conns_len == 0); /* the world's actors stopped first */
  net_peers_deinit(&srv->peers);
  net_ws_pool_destroy(srv->ws_pool);
  free(srv->conns);
  free(srv);
}
