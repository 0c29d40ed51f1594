/* net_server.h: the one port: HTTP for the page and the API, GET /ws
 * upgraded to a WebSocket session.
 *
 * One actor accepts (and refuses with 503 above the connection limit); one
 * actor per connection parses HTTP, answers static files, /health, /metrics
 * and the registered API routes, and after an upgrade runs the WebSocket
 * with wslay and hosts the session (rt_service.h) in the same actor: the
 * single writer of its stream. All of it reads and writes only through
 * rt_stream_t, so the same server runs on live sockets and simulated pipes.
 *
 * Limits and timeouts (PROTOCOL.md and the net issue), each closing cleanly:
 *   head 8 KiB -> 431, body 4 KiB -> 413 (net_http.h)
 *   no complete head within header_timeout (10 s)   -> close (slowloris)
 *   keep-alive idle for idle_timeout (30 s)         -> close
 *   more than connections_max connections (20,000)  -> 503 and close
 *   WebSocket message over ws_message_max (512 B)   -> close 1009
 *   unmasked client frame -> 1002; invalid UTF-8 -> 1007; binary -> 1003
 *   ping every ws_ping_period (54 s); silent for ws_pong_wait (60 s) -> close
 *   while frames go out, a ping with them at most every ws_probe_period
 *   (1 s): the session sees how long it has gone unanswered (unread_for)
 *   a close we started unanswered for ws_close_wait (5 s) -> drop
 * A WebSocket gives back wslay's context (net_ws_park) whenever a read or
 * write leaves nothing in flight, or, with ws_park_after set, once no frame
 * was read or sent for that long; one never heard holds none.
 *
 * Cross-origin API calls (CORS, the Fetch standard), for a frontend served
 * from another site: only for the configured cors_origins, none by default.
 * A request on a route's path whose Origin is one of them, byte for byte,
 * gets in its answer, whatever the status (a 401 too: the page must be
 * allowed to read it to react to it):
 *   Access-Control-Allow-Origin: <that origin>
 *   Access-Control-Allow-Credentials: true
 *   Vary: Origin
 * and an OPTIONS from it on a route's path is a preflight, answered 204
 * with those and Access-Control-Allow-Methods (the path's methods, as a 405
 * lists them), Access-Control-Allow-Headers: Authorization, Content-Type,
 * Access-Control-Max-Age: NET_CORS_MAX_AGE_S. Any other request is
 * answered as without CORS: no such header, and an OPTIONS stays a 405
 * with the path's Allow line (a browser's preflight fails on either; the
 * 405 keeps what every client but the configured frontend sees as it
 * was). Static files, /health, /metrics and /ws never carry CORS headers
 * (the WebSocket's Origin check is allowed_origins, a separate list), nor
 * do answers given before there is a whole request to route (400, 413,
 * 431 from the parser, the acceptor's 503 above the connection limit).
 */
#ifndef NET_SERVER_H
#define NET_SERVER_H

#include "net_http.h"
#include "net_peers.h"
#include "net_static.h"
#include "net_ws.h"
#include "rt_service.h"
#include "rt_stream.h"
#include "rt_world.h"

#include <stdbool.h>
#include <stdint.h>

#define NET_CONNECTIONS_MAX_DEFAULT 20000u
#define NET_ROUTES_MAX 16u
/* A route's method name ("GET") has 1 to this many characters: the names
 * of a path's routes make up the Allow line of its 405. */
#define NET_ROUTE_METHOD_LEN_MAX 16u
#define NET_ORIGINS_MAX 8u
#define NET_ORIGIN_LEN_MAX 256u /* an origin's characters, and its NUL */
/* Origins allowed cross-origin API calls: a frontend or two, a staging
 * copy; each goes into a header, so each is bounded by NET_ORIGIN_LEN_MAX. */
#define NET_CORS_ORIGINS_MAX 8u
/* How long a browser may reuse a preflight's answer (seconds). */
#define NET_CORS_MAX_AGE_S 600u
#define NET_HTTP_OUT_MAX (256u * 1024) /* stop reading requests above this */
#define NET_TOKEN_MAX 2048u
/* 0: a WebSocket parks as soon as nothing is in flight (net_server_config_t
 * .ws_park_after). */
#define NET_WS_PARK_AFTER_DEFAULT 0
/* Bounds net_server_start enforces: any timeout or period of the config
 * (so no deadline sum overflows), and ws_message_max (a buffer it grows). */
#define NET_DURATION_MAX ((rt_time_ns)86400 * RT_NS_PER_S)
#define NET_WS_MESSAGE_MAX_LIMIT (16u * 1024 * 1024)

typedef struct net_route {
  const char *method; /* "GET", "POST" */
  const char *path;   /* exact match */
  rt_http_fn *fn;
  void *ctx;
  /* Metered per client address (peers.requests_per_minute): login. */
  bool per_address_limited;
} net_route_t;

typedef struct net_server_config {
  uint32_t connections_max;  /* 0: NET_CONNECTIONS_MAX_DEFAULT */
  rt_time_ns header_timeout; /* 0: 10 s */
  rt_time_ns idle_timeout;   /* 0: 30 s */
  rt_time_ns reply_timeout;  /* a deferred API reply; 0: 10 s */
  rt_time_ns ws_ping_period; /* 0: 54 s */
  rt_time_ns ws_pong_wait;   /* 0: 60 s */
  /* While frames go out, a ping goes with them this often (a probe), and
   * after every 512 bytes of them: a pong proves the peer read everything
   * before its ping, and unread_for (rt_service.h) is the time since the
   * peer was last seen reading, while some are out. 0: 1 s. */
  rt_time_ns ws_probe_period;
  rt_time_ns ws_close_wait; /* 0: 5 s */
  /* Quiet this long: net_ws_park. 0 (the default): at once, after every
   * read and write that leaves nothing in flight; the context goes to a
   * pool the next active WebSocket takes it from (net_ws_config_t
   * .park_idle). */
  rt_time_ns ws_park_after;
  uint32_t ws_message_max;  /* 0: 512 */
  /* Origins allowed to open a WebSocket ("http://host:port"). None: the
   * request's own Host, over http or https. */
  const char *allowed_origins[NET_ORIGINS_MAX];
  uint32_t allowed_origins_len;
  /* Origins whose pages may call the API routes with credentials (CORS,
   * top of this file), each valid for net_server_origin_valid. None: no
   * CORS header is ever sent. Not the WebSocket's allowed_origins. */
  const char *cors_origins[NET_CORS_ORIGINS_MAX];
  uint32_t cors_origins_len;
  const net_static_t *statics; /* borrowed; may be NULL */
  net_route_t routes[NET_ROUTES_MAX];
  uint32_t routes_len;
  /* Validates the `token` query parameter of GET /ws before the upgrade
   * (401 when it fails). NULL: anonymous sessions are allowed. */
  rt_authenticate_fn *authenticate;
  void *auth_ctx;
  /* The WebSocket session; NULL: /ws answers 404. Borrowed. Its mailbox
   * settings apply to every connection actor. */
  const rt_session_handler_t *session;
  uint32_t mailbox_cap; /* 0: 64 */
  rt_overflow_t overflow;
  const rt_overflow_rule_t *rules; /* borrowed for the server's lifetime */
  uint32_t rules_len;
  /* More metrics (the game's) appended to /metrics. */
  rt_metrics_fn *metrics;
  void *metrics_ctx;
  /* Borrowed. Non-NULL: /metrics answers only "Authorization: Bearer
   * <token>" (else 401), to keep it off a public port. */
  const char *metrics_token;
  /* Limits per client address (net_peers.h); all 0: none, and no address
   * is asked for. */
  net_peers_config_t peers;
  /* Borrowed. The address of a reverse proxy whose X-Forwarded-For is
   * believed: a request through it counts for the last address that
   * header names (the one the proxy added), and its own connections are
   * not capped per address. NULL: X-Forwarded-For is ignored. */
  const char *trusted_proxy;
} net_server_config_t;

/* External results of the connection layer (rt_tap.h): kinds from 64 on,
 * apart from the game's. */
enum {
  NET_EXT_METRICS_AUTH = 64, /* rc: 1 allowed, 0 refused */
  NET_EXT_PEER = 65,         /* rc: 0 or RT_ENOTFOUND; data: the address */
};

/* ---- Routing ----------------------------------------------------------------
 * How the server answers a parsed request follows from the request and the
 * config alone (the token check is the config's authenticate), so it is
 * decided apart from any connection, with no I/O, as wslay frames apart
 * from any socket; the connection actor carries the decision out. Tests and
 * tests/fuzz/fuzz_http.c route requests with it directly. In order:
 *   /ws, when there is a session  upgrade, or refused: 405 not GET, 426 not
 *                                  an upgrade or not version 13, 400 bad
 *                                  key, 403 origin, 401 token
 *   /health, /metrics              their answer to GET and HEAD, else 405
 *   a route's path                 the route (HEAD borrows GET), else 405
 *   a file of statics              the file to GET and HEAD, else 405
 *   anything else                  404 */

/* "Allow: ", every route's method and HEAD, ", " between them, "\r\n". */
#define NET_ROUTE_ALLOW_MAX                                                    \
  (sizeof("Allow: \r\n") +                                                     \
   (NET_ROUTES_MAX + 1) * (NET_ROUTE_METHOD_LEN_MAX + 2))

typedef enum net_route_kind {
  NET_ROUTE_UPGRADE = 0, /* switch to a WebSocket: 101 with accept, for who */
  NET_ROUTE_REFUSED,     /* the upgrade refused: status, why, extra */
  NET_ROUTE_HEALTH,      /* 200 */
  NET_ROUTE_METRICS,     /* 200 */
  NET_ROUTE_API,         /* call route (status 0: the route answers) */
  NET_ROUTE_STATIC,      /* 200 with file */
  NET_ROUTE_NOT_ALLOWED, /* 405 with the Allow line in allow */
  NET_ROUTE_NOT_FOUND,   /* 404 */
} net_route_kind_t;

typedef struct net_route_decision {
  net_route_kind_t kind;
  int status;
  const net_route_t *route;      /* NET_ROUTE_API: one of cfg's routes */
  const net_static_file_t *file; /* NET_ROUTE_STATIC: in cfg's statics */
  const char *why;               /* NET_ROUTE_REFUSED: a static sentence */
  const char *extra; /* NET_ROUTE_REFUSED: static header lines, or NULL */
  char allow[NET_ROUTE_ALLOW_MAX];    /* NET_ROUTE_NOT_ALLOWED: the line */
  char accept[NET_WS_ACCEPT_LEN + 1]; /* NET_ROUTE_UPGRADE */
  rt_identity_t who; /* NET_ROUTE_UPGRADE: the token's; zero if anonymous */
} net_route_decision_t;

/* Decide how to answer req under cfg (both borrowed; the pointers in out
 * point into cfg or at static strings). Nothing outside is called but
 * cfg->authenticate, for a request that passes every other upgrade check. */
void net_server_route(const net_server_config_t *cfg,
                      const net_http_request_t *req, net_route_decision_t *out);

/* Why connections ended: counted and exported. */
typedef enum net_close_reason {
  NET_CLOSE_PEER = 0,   /* the client closed or finished */
  NET_CLOSE_RESET,      /* reset or I/O error */
  NET_CLOSE_HTTP_DONE,  /* Connection: close answered */
  NET_CLOSE_HTTP_ERROR, /* 4xx/5xx that ends the connection */
  NET_CLOSE_HEADER_TIMEOUT,
  NET_CLOSE_IDLE_TIMEOUT,
  NET_CLOSE_REPLY_TIMEOUT,
  NET_CLOSE_WS_DONE,       /* close handshake completed */
  NET_CLOSE_WS_SILENT,     /* no frame for ws_pong_wait */
  NET_CLOSE_WS_CLOSE_WAIT, /* our close was not answered */
  NET_CLOSE_SHUTDOWN,
  NET_CLOSE_REASON_COUNT_
} net_close_reason_t;

typedef struct net_server_stats {
  uint32_t connections; /* open now */
  uint32_t websockets;  /* of which upgraded */
  uint32_t ws_parked;   /* of which hold no wslay context (net_ws_park) */
  uint64_t ws_parks;    /* times a WebSocket gave its context back */
  uint64_t ws_pings;    /* pings sent: keepalives and probes */
  uint64_t ws_pongs;    /* pongs that answered the ping waiting */
  uint64_t accepted;
  uint64_t rejected_limit;   /* 503 above connections_max */
  uint64_t rejected_address; /* 503 above peers.connections_max */
  uint64_t throttled;        /* 429 above peers.requests_per_minute */
  uint64_t http_requests;
  uint64_t http_status[6]; /* by class: [2] = 2xx ... [5] = 5xx */
  uint64_t ws_upgrades;
  uint64_t ws_messages_in;
  uint64_t ws_messages_out;
  uint64_t bytes_in;
  uint64_t bytes_out;
  uint64_t closes[NET_CLOSE_REASON_COUNT_];
  uint64_t ws_close_codes[16]; /* see net_server_close_code_index */
} net_server_stats_t;

typedef struct net_server net_server_t;

/* True when `origin` is written as a browser writes an Origin header
 * (RFC 6454 6.2), so that a request's Origin can equal it byte for byte:
 * "http://" or "https://", a host of lowercase letters, digits, '-' and
 * '.' (or a bracketed IPv6 address of lowercase hex digits, ':' and '.'),
 * then maybe ':' and a port in 1..65535 without leading zeros that is not
 * the scheme's default; nothing after it, not even '/'; fewer than
 * NET_ORIGIN_LEN_MAX characters. "null" and "*" are not origins one can
 * allow. */
bool net_server_origin_valid(const char *origin);

/* Start serving connections from `listener` (taken: the acceptor owns and
 * closes it). cfg is copied (the pointers in it are borrowed). RT_EINVAL
 * (the listener not taken) when, after the defaults, a duration is not in
 * (0, NET_DURATION_MAX], ws_message_max is above NET_WS_MESSAGE_MAX_LIMIT,
 * a table is longer than its maximum or a CORS origin is not valid for
 * net_server_origin_valid. */
int net_server_start(rt_world_t *w, rt_listener_t *listener,
                     const net_server_config_t *cfg, net_server_t **out);

/* Stop accepting; ask every connection to finish (WebSockets get 1001). The
 * world keeps running so the close frames can go out. */
void net_server_shutdown(net_server_t *srv);

/* Free the server after its world's actors have stopped. */
void net_server_free(net_server_t *srv);

void net_server_get_stats(const net_server_t *srv, net_server_stats_t *out);

/* "peer", "reset", ... as exported in /metrics. */
const char *net_server_close_reason_name(net_close_reason_t reason);

/* The slot of ws_close_codes for a close code. */
uint32_t net_server_close_code_index(uint16_t code);

#endif
