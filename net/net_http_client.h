/* net_http_client.h: one HTTP/1.1 request and its response, no I/O.
 *
 * For the load generator, the simulator's bots and tests: build a request's
 * bytes, then feed the response's bytes as they arrive; http_parser (in
 * response mode) does the parsing. Bounded: the head and body have limits,
 * and anything else is an error, never a crash.
 */
#ifndef NET_HTTP_CLIENT_H
#define NET_HTTP_CLIENT_H

#include <http_parser.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NET_HTTPC_REQUEST_MAX 8192u
#define NET_HTTPC_BODY_MAX (64u * 1024)
/* A body this long (its NUL included) needs no allocation; a longer one
 * grows on the heap up to NET_HTTPC_BODY_MAX. The simulator keeps one
 * client per bot: a fixed 64 KiB buffer was half a 4,000-player run's
 * memory. */
#define NET_HTTPC_BODY_INLINE 512u
#define NET_HTTPC_HEAD_MAX 8192u

typedef enum net_httpc_state {
  NET_HTTPC_WAITING = 0, /* feed more bytes */
  NET_HTTPC_DONE,        /* status and body are complete */
  NET_HTTPC_FAILED,      /* malformed or over a limit */
} net_httpc_state_t;

typedef struct net_httpc {
  http_parser parser;
  net_httpc_state_t state;
  uint32_t head_bytes;
  bool head_done;
  uint32_t body_len;
  uint32_t body_cap; /* bytes body holds, its NUL included */
  char *body;        /* NUL-terminated: inline_body, or on the heap */
  char inline_body[NET_HTTPC_BODY_INLINE];
} net_httpc_t;

/* Format a request: method, target, Host, optional bearer token, optional
 * JSON body. Returns its length, or -1 when it does not fit in cap. */
int net_httpc_request(char *out, size_t cap, const char *method,
                      const char *host, const char *target, const char *bearer,
                      const char *json_body, bool keep_alive);

/* Ready c for one response: c is new memory, or was deinitialised. The
 * body points into c: c must not move while in use. */
void net_httpc_init(net_httpc_t *c);
/* Free what the body grew to; init it again to reuse it. */
void net_httpc_deinit(net_httpc_t *c);

/* Feed response bytes; returns the state afterwards. */
net_httpc_state_t net_httpc_feed(net_httpc_t *c, const uint8_t *data,
                                 size_t len);

/* The peer closed: a body without a length ends here. */
net_httpc_state_t net_httpc_eof(net_httpc_t *c);

/* The response's status (valid once DONE). */
int net_httpc_status(const net_httpc_t *c);

#endif
