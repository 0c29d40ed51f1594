/* net_server_route.c: how the server answers a parsed request, decided
 * apart from any connection (net_server_route, net_server.h). */
#include "net_server_int.h"

#include "rt_assert.h"
#include "rt_tap.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- Routing: the decision (net_server_route) ---------------------------- */

static bool origin_allowed(const net_server_config_t *cfg,
                           const net_http_request_t *req) {
  const char *origin = net_http_header(req, "Origin");
  if (origin == NULL)
    return true; /* not a browser: no cross-site request to forge */
  if (cfg->allowed_origins_len > 0) {
    for (uint32_t i = 0; i < cfg->allowed_origins_len; i++)
      if (strcasecmp(origin, cfg->allowed_origins[i]) == 0)
        return true;
    return false;
  }
  const char *host = net_http_header(req, "Host");
  if (host == NULL)
    return false;
  char same[NET_ORIGIN_LEN_MAX];
  const char *schemes[] = {"http://", "https://"};
  for (int i = 0; i < 2; i++) {
    int n = snprintf(same, sizeof(same), "%s%s", schemes[i], host);
    if (n > 0 && (size_t)n < sizeof(same) && strcasecmp(origin, same) == 0)
      return true;
  }
  return false;
}

static void refuse(net_route_decision_t *out, int status, const char *why,
                   const char *extra) {
  out->kind = NET_ROUTE_REFUSED;
  out->status = status;
  out->why = why;
  out->extra = extra;
}

static void not_allowed(net_route_decision_t *out, const char *allow_line) {
  out->kind = NET_ROUTE_NOT_ALLOWED;
  out->status = 405;
  snprintf(out->allow, sizeof(out->allow), "%s", allow_line);
}

/* GET /ws: the checks of an upgrade, in order; the token last, so that
 * authenticate sees only requests that are upgrades in every other way. */
static void route_upgrade(const net_server_config_t *cfg,
                          const net_http_request_t *req,
                          net_route_decision_t *out) {
  if (req->method_id != HTTP_GET) {
    refuse(out, 405, "websocket upgrade needs GET", "Allow: GET\r\n");
    return;
  }
  /* req->upgrade: http_parser saw Upgrade and Connection: upgrade, in a
   * request that may switch (net_http: not HTTP/1.0, no content). */
  if (!req->upgrade || !net_http_field_has_token(req, "Upgrade", "websocket") ||
      !net_http_field_has_token(req, "Connection", "upgrade")) {
    refuse(out, 426, "websocket upgrade required", "Upgrade: websocket\r\n");
    return;
  }
  const char *version = net_http_header(req, "Sec-WebSocket-Version");
  if (version == NULL || strcmp(version, "13") != 0) {
    refuse(out, 426, "unsupported websocket version",
           "Sec-WebSocket-Version: 13\r\n");
    return;
  }
  if (net_ws_accept_key(net_http_header(req, "Sec-WebSocket-Key"),
                        out->accept) < 0) {
    refuse(out, 400, "bad Sec-WebSocket-Key", NULL);
    return;
  }
  if (!origin_allowed(cfg, req)) {
    refuse(out, 403, "origin not allowed", NULL);
    return;
  }
  memset(&out->who, 0, sizeof(out->who));
  if (cfg->authenticate != NULL) {
    char token[NET_TOKEN_MAX];
    if (net_http_query_param(req, "token", token, sizeof(token)) <= 0 ||
        cfg->authenticate(cfg->auth_ctx, token, &out->who) < 0) {
      refuse(out, 401, "missing or invalid token", NULL);
      return;
    }
  }
  out->kind = NET_ROUTE_UPGRADE;
  out->status = 101;
}

/* The route for the request's method on its path, or NULL; *path_known
 * tells whether any route has that path. A HEAD without a HEAD route runs
 * the path's GET route: HEAD is GET without the content (RFC 9110 9.3.2),
 * and every general-purpose server must support it. */
static const net_route_t *find_route(const net_server_config_t *cfg,
                                     const net_http_request_t *req,
                                     bool *path_known) {
  const net_route_t *get = NULL;
  *path_known = false;
  for (uint32_t i = 0; i < cfg->routes_len; i++) {
    const net_route_t *r = &cfg->routes[i];
    if (strcmp(r->path, req->path) != 0)
      continue;
    *path_known = true;
    if (strcmp(r->method, req->method) == 0)
      return r;
    if (get == NULL && strcmp(r->method, "GET") == 0)
      get = r;
  }
  return req->method_id == HTTP_HEAD ? get : NULL;
}

/* The Allow line for a path that has routes: their methods, in the order
 * they were registered, with HEAD after GET when find_route lends HEAD the
 * GET route. "Allow: ", every route's method and HEAD, ", " between them,
 * "\r\n": the lengths are bounded by config_valid (NET_ROUTE_ALLOW_MAX). */
static void route_allow_line(const net_server_config_t *cfg, const char *path,
                             char out[NET_ROUTE_ALLOW_MAX]) {
  bool head_route = false;
  for (uint32_t i = 0; i < cfg->routes_len; i++)
    if (strcmp(cfg->routes[i].path, path) == 0 &&
        strcmp(cfg->routes[i].method, "HEAD") == 0)
      head_route = true;
  size_t len = (size_t)snprintf(out, NET_ROUTE_ALLOW_MAX, "Allow: ");
  const char *sep = "";
  for (uint32_t i = 0; i < cfg->routes_len; i++) {
    const net_route_t *r = &cfg->routes[i];
    if (strcmp(r->path, path) != 0)
      continue;
    bool lend_head = !head_route && strcmp(r->method, "GET") == 0;
    len += (size_t)snprintf(out + len, NET_ROUTE_ALLOW_MAX - len, "%s%s%s", sep,
                            r->method, lend_head ? ", HEAD" : "");
    head_route = head_route || lend_head; /* HEAD once */
    sep = ", ";
  }
  len += (size_t)snprintf(out + len, NET_ROUTE_ALLOW_MAX - len, "\r\n");
  RT_ASSERT(len < NET_ROUTE_ALLOW_MAX);
}

/* A file of the browser client, by its percent-decoded path. */
static void route_static(const net_server_config_t *cfg,
                         const net_http_request_t *req,
                         net_route_decision_t *out) {
  char path[NET_STATIC_PATH_MAX];
  const net_static_file_t *f = NULL;
  if (net_http_percent_decode(req->path, strlen(req->path), path,
                              sizeof(path)) >= 0)
    f = net_static_find(cfg->statics, path);
  if (f == NULL) {
    out->kind = NET_ROUTE_NOT_FOUND;
    out->status = 404;
    return;
  }
  if (req->method_id != HTTP_GET && req->method_id != HTTP_HEAD) {
    not_allowed(out, ALLOW_GET_HEAD);
    return;
  }
  out->kind = NET_ROUTE_STATIC;
  out->status = 200;
  out->file = f;
}

void net_server_route(const net_server_config_t *cfg,
                      const net_http_request_t *req,
                      net_route_decision_t *out) {
  RT_ASSERT(cfg != NULL);
  RT_ASSERT(req != NULL && req->path != NULL && req->method != NULL);
  memset(out, 0, sizeof(*out));
  if (strcmp(req->path, "/ws") == 0 && cfg->session != NULL) {
    route_upgrade(cfg, req, out);
    return;
  }
  bool get = req->method_id == HTTP_GET || req->method_id == HTTP_HEAD;
  bool builtin =
      strcmp(req->path, "/health") == 0 || strcmp(req->path, "/metrics") == 0;
  if (builtin && !get) {
    not_allowed(out, ALLOW_GET_HEAD);
    return;
  }
  if (builtin) {
    out->kind = strcmp(req->path, "/health") == 0 ? NET_ROUTE_HEALTH
                                                  : NET_ROUTE_METRICS;
    out->status = 200;
    return;
  }
  bool path_known;
  const net_route_t *r = find_route(cfg, req, &path_known);
  if (r != NULL) {
    out->kind = NET_ROUTE_API;
    out->route = r;
    return;
  }
  if (path_known) {
    out->kind = NET_ROUTE_NOT_ALLOWED;
    out->status = 405;
    route_allow_line(cfg, req->path, out->allow);
    return;
  }
  route_static(cfg, req, out);
}
