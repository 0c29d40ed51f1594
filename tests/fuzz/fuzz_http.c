/* fuzz_http.c: a client's bytes against the HTTP parser and the router.
 *
 * Input: byte 0 cuts the stream into reads of 1 + 17 * b bytes (at most a
 * connection's 4096-byte read), byte 1 picks the router's config (bit 0:
 * allowed origins listed, else the same-host check; bit 1: anonymous
 * upgrades, no token check); the rest is what one connection receives.
 * The bytes go to net_http_feed as net_server's http_process feeds them: a
 * read at a time, pipelined requests one after another, until an error, an
 * upgrade (the rest is the WebSocket's) or the end. Every request is routed
 * with net_server_route (the config is production's routes and more, and
 * the browser's files from game/web, built once per process), and its
 * answer's head is built.
 *
 * Rules checked, beyond no crash and no sanitizer report:
 *  (1) a feed not stopped by a request or an error takes every byte it is
 *      given (or the connection would spin on the same bytes);
 *  (2) a request's fields agree with each other and the limits: strings in
 *      the parser's arena and NUL-terminated there, no field value ending
 *      in whitespace, the body within its limit and as long as a lone
 *      Content-Length says, Host once (or absent in HTTP/1.0), an upgrade
 *      never with content nor in HTTP/1.0, the path and query found in the
 *      bytes sent;
 *  (3) the requests and the final state do not depend on where the reads
 *      cut the stream: the same bytes fed in one piece give the same
 *      requests, and the same error (except that a head over the limit is
 *      refused with 431 at the byte where a cut notices it, and another
 *      error further on may be found first when it all comes at once);
 *  (4) the route agrees with the request (its path and method, HEAD
 *      borrowing GET, files only for GET and HEAD, a 405's Allow line well
 *      formed within NET_ROUTE_ALLOW_MAX, 101 only for GET /ws with a valid
 *      key and token), and every answer's head can be built;
 *  (5) a query parameter or a path decoded into a small buffer fits it.
 */
#include "fuzz_check.h"
#include "net_http.h"
#include "net_server.h"
#include "net_static.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

#define INPUT_MAX (64u * 1024) /* longer inputs are cut: time, not depth */
#define READ_MAX 4096u         /* net_server's CONN_IN_CHUNK */
#define GOOD_TOKEN "good-token"
#define SMALL_CAP 16u

/* ---- The router's configs, built once ------------------------------------ */

enum { VARIANT_ORIGINS = 1, VARIANT_ANONYMOUS = 2, VARIANTS = 4 };

typedef struct context {
  net_static_t *statics;
  net_server_config_t cfg[VARIANTS];
} context_t;

static int authenticate(void *ctx, const char *token, rt_identity_t *who) {
  (void)ctx;
  FUZZ_CHECK(strlen(token) < NET_TOKEN_MAX, "a token longer than its buffer");
  if (strcmp(token, GOOD_TOKEN) != 0)
    return RT_EPROTO;
  memset(who, 0, sizeof(*who));
  snprintf(who->subject, sizeof(who->subject), "u-1");
  snprintf(who->name, sizeof(who->name), "ada");
  return 0;
}

/* Answers as a route does; checks that it was called as call_route does. */
static int api(void *ctx, rt_world_t *w, const rt_http_call_t *call,
               rt_http_answer_t *answer) {
  const net_route_t *r = ctx;
  (void)w;
  FUZZ_CHECK(strcmp(call->method, r->method) == 0, "called as %s",
             call->method);
  FUZZ_CHECK(strcmp(call->path, r->path) == 0, "called for %s", call->path);
  FUZZ_CHECK(call->body_len <= NET_HTTP_BODY_MAX, "body of %u bytes",
             call->body_len);
  answer->status = 200;
  answer->content_type = "application/json";
  answer->body = rt_buf_copy("{}", 2);
  return RT_HTTP_ANSWERED;
}

/* A session is never opened here: net_server_route only asks whether
 * there is one. */
static const rt_session_handler_t session;

static const context_t *context(void) {
  static context_t ctx;
  static bool made;
  if (made)
    return &ctx;
  if (net_static_load(OC_SOURCE_DIR "/game/web", &ctx.statics) < 0)
    abort();
  /* Production's routes (tools/src/server.c), then more methods on their
   * paths and a HEAD route, so that every Allow line is reached. */
  static const struct {
    const char *method, *path;
  } routes[] = {
      {"POST", "/api/login"},  {"GET", "/api/leaderboard"},
      {"GET", "/api/history"}, {"DELETE", "/api/history"},
      {"PUT", "/api/login"},   {"HEAD", "/api/head"},
      {"GET", "/api/head"},    {"OPTIONS", "/api/head"},
  };
  for (int v = 0; v < VARIANTS; v++) {
    net_server_config_t *cfg = &ctx.cfg[v];
    cfg->statics = ctx.statics;
    cfg->session = &session;
    if ((v & VARIANT_ANONYMOUS) == 0)
      cfg->authenticate = authenticate;
    if (v & VARIANT_ORIGINS) {
      cfg->allowed_origins[0] = "http://localhost:8080";
      cfg->allowed_origins[1] = "https://cookies.example";
      cfg->allowed_origins_len = 2;
    }
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
      net_route_t *r = &cfg->routes[cfg->routes_len++];
      r->method = routes[i].method;
      r->path = routes[i].path;
      r->fn = api;
      r->ctx = r;
    }
  }
  made = true;
  return &ctx;
}

/* ---- What a parse produced, to compare two cuts -------------------------- */

typedef struct outcome {
  uint8_t *log; /* the requests, field by field */
  size_t len, cap;
  uint32_t requests;
  net_http_state_t state;
  int error_status;
} outcome_t;

static void log_put(outcome_t *o, const void *p, size_t n) {
  if (o->len + n > o->cap) {
    size_t cap = o->cap == 0 ? 4096 : o->cap;
    while (cap < o->len + n)
      cap *= 2;
    o->log = realloc(o->log, cap);
    if (o->log == NULL)
      abort();
    o->cap = cap;
  }
  memcpy(o->log + o->len, p, n);
  o->len += n;
}

static void log_str(outcome_t *o, const char *s) {
  log_put(o, s, strlen(s) + 1);
}

static void log_request(outcome_t *o, const net_http_request_t *req) {
  int fields[] = {req->method_id,    req->http_major, req->http_minor,
                  req->keep_alive,   req->upgrade,    (int)req->headers_len,
                  (int)req->body_len};
  log_put(o, fields, sizeof(fields));
  log_str(o, req->method);
  log_str(o, req->path);
  log_str(o, req->query);
  for (uint32_t i = 0; i < req->headers_len; i++) {
    log_str(o, req->headers[i].name);
    log_str(o, req->headers[i].value);
  }
  if (req->body_len > 0)
    log_put(o, req->body, req->body_len);
  o->requests++;
}

/* ---- Rule (2): one request on its own ------------------------------------ */

/* s is "", "/" (the parser's literals) or NUL-terminated inside the arena. */
static void check_string(const net_http_parser_t *hp, const char *s,
                         const char *what) {
  FUZZ_CHECK(s != NULL, "no %s", what);
  const char *arena = hp->arena;
  if (s >= arena && s < arena + sizeof(hp->arena)) {
    size_t room = (size_t)(arena + sizeof(hp->arena) - s);
    FUZZ_CHECK(memchr(s, '\0', room) != NULL, "%s runs off the arena", what);
    return;
  }
  FUZZ_CHECK(strcmp(s, "") == 0 || strcmp(s, "/") == 0,
             "%s \"%.40s\" points outside the arena", what, s);
}

static uint32_t count_fields(const net_http_request_t *req, const char *name) {
  uint32_t n = 0;
  for (uint32_t i = 0; i < req->headers_len; i++)
    if (strcasecmp(req->headers[i].name, name) == 0)
      n++;
  return n;
}

/* A Content-Length of digits only, else -1. */
static int64_t digits_value(const char *s) {
  int64_t v = 0;
  size_t n = strlen(s);
  if (n == 0 || n > 15)
    return -1;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9')
      return -1;
    v = v * 10 + (s[i] - '0');
  }
  return v;
}

static bool found_in(const uint8_t *data, size_t len, const char *s) {
  size_t n = strlen(s);
  if (n == 0)
    return true;
  for (size_t i = 0; i + n <= len; i++)
    if (data[i] == (uint8_t)s[0] && memcmp(data + i, s, n) == 0)
      return true;
  return false;
}

static void check_request(const net_http_parser_t *hp,
                          const net_http_request_t *req, const uint8_t *data,
                          size_t len) {
  FUZZ_CHECK(req->method != NULL, "no method");
  FUZZ_CHECK(strcmp(req->method,
                    http_method_str((enum http_method)req->method_id)) == 0,
             "method %s is not method %d", req->method, req->method_id);
  FUZZ_CHECK(req->http_major == 1, "HTTP/%u", req->http_major);
  check_string(hp, req->path, "path");
  check_string(hp, req->query, "query");
  FUZZ_CHECK(found_in(data, len, req->path), "path \"%.40s\" was not sent",
             req->path);
  FUZZ_CHECK(found_in(data, len, req->query), "query \"%.40s\" was not sent",
             req->query);
  FUZZ_CHECK(req->headers_len <= NET_HTTP_HEADERS_MAX, "%u headers",
             req->headers_len);
  for (uint32_t i = 0; i < req->headers_len; i++) {
    const char *v = req->headers[i].value;
    check_string(hp, req->headers[i].name, "header name");
    check_string(hp, v, "header value");
    size_t vn = strlen(v);
    FUZZ_CHECK(vn == 0 || (v[vn - 1] != ' ' && v[vn - 1] != '\t'),
               "value of %s ends in whitespace", req->headers[i].name);
  }
  FUZZ_CHECK(req->body_len <= NET_HTTP_BODY_MAX, "body of %u bytes",
             req->body_len);
  FUZZ_CHECK(req->body == hp->body, "body outside the parser");
  uint32_t hosts = count_fields(req, "Host");
  FUZZ_CHECK(hosts == 1 || (hosts == 0 && req->http_minor == 0),
             "%u Host lines in HTTP/1.%u", hosts, req->http_minor);
  if (req->upgrade) {
    FUZZ_CHECK(req->body_len == 0, "an upgrade with %u bytes of content",
               req->body_len);
    FUZZ_CHECK(req->http_minor >= 1, "an upgrade in HTTP/1.0");
  }
  const char *cl = net_http_header(req, "Content-Length");
  if (cl != NULL && count_fields(req, "Content-Length") == 1 &&
      count_fields(req, "Transfer-Encoding") == 0 && digits_value(cl) >= 0)
    FUZZ_CHECK((int64_t)req->body_len == digits_value(cl),
               "Content-Length %s but %u bytes of body", cl, req->body_len);
}

/* ---- Rule (5): decoders within small buffers ----------------------------- */

static void check_small_decodes(const net_http_request_t *req) {
  static const char *params[] = {"token", "limit", ""};
  char out[SMALL_CAP + 1];
  for (size_t i = 0; i < sizeof(params) / sizeof(params[0]); i++) {
    out[SMALL_CAP] = 0x5a;
    int n = net_http_query_param(req, params[i], out, SMALL_CAP);
    FUZZ_CHECK(out[SMALL_CAP] == 0x5a, "query_param wrote past its buffer");
    FUZZ_CHECK(n >= -2 && n < (int)SMALL_CAP, "query_param returned %d", n);
    if (n >= 0)
      FUZZ_CHECK(strlen(out) == (size_t)n, "query_param's length %d", n);
  }
  out[SMALL_CAP] = 0x5a;
  int n = net_http_percent_decode(req->path, strlen(req->path), out, SMALL_CAP);
  FUZZ_CHECK(out[SMALL_CAP] == 0x5a, "percent_decode wrote past its buffer");
  FUZZ_CHECK(n >= -1 && n < (int)SMALL_CAP, "percent_decode returned %d", n);
  if (n >= 0)
    FUZZ_CHECK(strlen(out) == (size_t)n, "percent_decode's length %d", n);
}

/* ---- Rule (4): the route ------------------------------------------------- */

static bool is_get(const net_http_request_t *req) {
  return req->method_id == HTTP_GET || req->method_id == HTTP_HEAD;
}

static void check_decision(const net_server_config_t *cfg,
                           const net_http_request_t *req,
                           const net_route_decision_t *d) {
  bool ws = strcmp(req->path, "/ws") == 0;
  switch (d->kind) {
  case NET_ROUTE_UPGRADE:
    FUZZ_CHECK(ws && req->method_id == HTTP_GET && req->upgrade,
               "101 for %s %s", req->method, req->path);
    FUZZ_CHECK(d->status == 101 && strlen(d->accept) == NET_WS_ACCEPT_LEN,
               "status %d, accept \"%s\"", d->status, d->accept);
    if (cfg->authenticate != NULL)
      FUZZ_CHECK(strcmp(d->who.subject, "u-1") == 0, "upgraded for \"%s\"",
                 d->who.subject);
    else
      FUZZ_CHECK(d->who.subject[0] == '\0', "anonymous, yet \"%s\"",
                 d->who.subject);
    return;
  case NET_ROUTE_REFUSED:
    FUZZ_CHECK(ws && d->why != NULL, "refused %s", req->path);
    FUZZ_CHECK(d->status == 400 || d->status == 401 || d->status == 403 ||
                   d->status == 405 || d->status == 426,
               "refused with %d", d->status);
    return;
  case NET_ROUTE_HEALTH:
  case NET_ROUTE_METRICS:
    FUZZ_CHECK(is_get(req) && d->status == 200, "%s %s answered %d",
               req->method, req->path, d->status);
    FUZZ_CHECK(strcmp(req->path, d->kind == NET_ROUTE_HEALTH ? "/health"
                                                             : "/metrics") == 0,
               "builtin for %s", req->path);
    return;
  case NET_ROUTE_API: {
    const net_route_t *r = d->route;
    FUZZ_CHECK(r >= cfg->routes && r < cfg->routes + cfg->routes_len,
               "a route outside the config");
    FUZZ_CHECK(strcmp(r->path, req->path) == 0, "route %s for %s", r->path,
               req->path);
    FUZZ_CHECK(
        strcmp(r->method, req->method) == 0 ||
            (req->method_id == HTTP_HEAD && strcmp(r->method, "GET") == 0),
        "route %s for method %s", r->method, req->method);
    return;
  }
  case NET_ROUTE_STATIC:
    FUZZ_CHECK(d->file != NULL && is_get(req) && d->status == 200,
               "file for %s %s", req->method, req->path);
    return;
  case NET_ROUTE_NOT_ALLOWED: {
    size_t n = strnlen(d->allow, sizeof(d->allow));
    FUZZ_CHECK(n < sizeof(d->allow), "an Allow line without its end");
    FUZZ_CHECK(strncmp(d->allow, "Allow: ", 7) == 0 && n > 9 &&
                   strcmp(d->allow + n - 2, "\r\n") == 0 && d->status == 405,
               "405 with \"%s\"", d->allow);
    return;
  }
  case NET_ROUTE_NOT_FOUND:
    FUZZ_CHECK(d->status == 404, "not found, yet %d", d->status);
    return;
  }
  FUZZ_CHECK(false, "route kind %d", (int)d->kind);
}

static void route(const net_server_config_t *cfg,
                  const net_http_request_t *req) {
  net_route_decision_t d;
  net_server_route(cfg, req, &d);
  check_decision(cfg, req, &d);
  int status = d.status;
  const char *extra = d.kind == NET_ROUTE_NOT_ALLOWED ? d.allow
                      : d.kind == NET_ROUTE_REFUSED   ? d.extra
                                                      : NULL;
  if (d.kind == NET_ROUTE_API) { /* as call_route calls it */
    rt_http_call_t call = {
        .method = d.route->method,
        .path = req->path,
        .query = req->query,
        .authorization = net_http_header(req, "Authorization"),
        .body = req->body,
        .body_len = req->body_len,
    };
    rt_http_answer_t answer = {0};
    FUZZ_CHECK(d.route->fn(d.route->ctx, NULL, &call, &answer) ==
                   RT_HTTP_ANSWERED,
               "the route did not answer");
    status = answer.status;
    rt_buf_unref(answer.body);
  }
  /* A 1xx or 204 head has no content (net_http refuses one that would). */
  bool bodiless = (status >= 100 && status < 200) || status == 204;
  rt_buf_t *head = net_http_response_head(
      status, "application/json", bodiless ? 0 : 64, req->keep_alive, extra);
  FUZZ_CHECK(head != NULL, "no head for a %d answer", status);
  char line[16];
  int n = snprintf(line, sizeof(line), "HTTP/1.1 %d ", status);
  FUZZ_CHECK(head->len > (uint32_t)n &&
                 memcmp(head->data, line, (size_t)n) == 0 &&
                 memcmp(head->data + head->len - 4, "\r\n\r\n", 4) == 0,
             "a malformed head for %d", status);
  rt_buf_unref(head);
  check_small_decodes(req);
}

/* ---- Feeding, as net_server's http_process does -------------------------- */

static void parse(const uint8_t *data, size_t len, size_t cut,
                  const net_server_config_t *cfg, outcome_t *o) {
  net_http_parser_t *hp = malloc(sizeof(*hp)); /* ASan sees past its end */
  if (hp == NULL)
    abort();
  net_http_parser_init(hp);
  size_t read_pos = 0, in_off = 0, in_len = 0;
  const uint8_t *in = data;
  uint32_t continues = 0;
  for (;;) {
    if (in_off == in_len) {
      if (read_pos == len)
        break; /* the peer's EOF */
      size_t n = len - read_pos < cut ? len - read_pos : cut;
      in = data + read_pos;
      in_off = 0;
      in_len = n;
      read_pos += n;
    }
    size_t used = net_http_feed(hp, in + in_off, in_len - in_off);
    FUZZ_CHECK(used <= in_len - in_off, "fed %zu, used %zu", in_len - in_off,
               used);
    in_off += used;
    if (hp->state == NET_HTTP_ERROR)
      break;
    if (hp->state == NET_HTTP_NEED_MORE) {
      /* Rule (1). */
      FUZZ_CHECK(in_off == in_len, "%zu bytes left unparsed, no request",
                 in_len - in_off);
      if (net_http_take_continue(hp))
        continues++;
      FUZZ_CHECK(continues <= 1, "100-continue twice for one request");
      continue;
    }
    FUZZ_CHECK(hp->state == NET_HTTP_REQUEST, "state %d", (int)hp->state);
    const net_http_request_t *req = net_http_request(hp);
    check_request(hp, req, data, len);
    log_request(o, req);
    if (cfg != NULL)
      route(cfg, req);
    if (req->upgrade)
      break; /* the rest of the bytes are the WebSocket's */
    net_http_next(hp);
    continues = 0;
  }
  o->state = hp->state;
  o->error_status = hp->state == NET_HTTP_ERROR ? hp->error_status : 0;
  if (hp->state == NET_HTTP_ERROR)
    FUZZ_CHECK(o->error_status == 400 || o->error_status == 413 ||
                   o->error_status == 431 || o->error_status == 505,
               "refused with %d", o->error_status);
  free(hp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2)
    return 0;
  size_t cut = 1 + (size_t)data[0] * 17;
  if (cut > READ_MAX)
    cut = READ_MAX;
  const net_server_config_t *cfg = &context()->cfg[data[1] % VARIANTS];
  data += 2;
  size -= 2;
  if (size > INPUT_MAX)
    size = INPUT_MAX;
  outcome_t cut_up = {0}, whole = {0};
  parse(data, size, cut, cfg, &cut_up);
  parse(data, size, size > 0 ? size : 1, NULL, &whole); /* Rule (3) */
  FUZZ_CHECK(cut_up.state == whole.state, "state %d cut every %zu, %d whole",
             (int)cut_up.state, cut, (int)whole.state);
  FUZZ_CHECK(
      cut_up.requests == whole.requests && cut_up.len == whole.len &&
          (cut_up.len == 0 || memcmp(cut_up.log, whole.log, cut_up.len) == 0),
      "%u requests cut every %zu bytes, %u whole, or they differ",
      cut_up.requests, cut, whole.requests);
  FUZZ_CHECK(cut_up.error_status == whole.error_status ||
                 cut_up.error_status == 431 || whole.error_status == 431,
             "refused with %d cut every %zu bytes, %d whole",
             cut_up.error_status, cut, whole.error_status);
  free(cut_up.log);
  free(whole.log);
  return 0;
}
