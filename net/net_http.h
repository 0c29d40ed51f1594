/* net_http.h: HTTP/1.1 requests in, responses out, and no I/O.
 *
 * A thin layer over http_parser (the parser Node.js used for years): bytes go
 * in through net_http_feed, complete requests come out one at a time, so the
 * caller answers pipelined requests in order. The same code parses bytes from
 * a socket, a simulated pipe or a test's script.
 *
 * Limits (each a named constant, each answered with a status):
 *   request line + headers  <= NET_HTTP_HEAD_MAX bytes   else 431
 *   header count            <= NET_HTTP_HEADERS_MAX      else 431
 *   body                    <= NET_HTTP_BODY_MAX bytes   else 413
 *   chunked trailer fields  <= NET_HTTP_TRAILER_MAX bytes else 431
 *     (names and values; they are dropped, never seen as headers)
 *   anything http_parser rejects, HTTP/1.1 without Host,
 *   or more than one Host line                                400
 *   an upgrade request with content                          400
 */
#ifndef NET_HTTP_H
#define NET_HTTP_H

#include "rt_buf.h"

#include <http_parser.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NET_HTTP_HEAD_MAX 8192u
#define NET_HTTP_HEADERS_MAX 64u
#define NET_HTTP_BODY_MAX 4096u
#define NET_HTTP_TRAILER_MAX 1024u
/* The arena holds the URL and headers NUL-terminated: the head's bytes plus
 * one terminator per string. */
#define NET_HTTP_ARENA (NET_HTTP_HEAD_MAX + 2 * NET_HTTP_HEADERS_MAX + 8)

typedef struct net_http_header {
  const char *name; /* as sent; compare case-insensitively */
  const char *value;
} net_http_header_t;

typedef struct net_http_request {
  const char *method; /* "GET", ... */
  int method_id;      /* enum http_method */
  const char *path;   /* request target up to '?', not decoded */
  const char *query;  /* after '?', or "" */
  net_http_header_t headers[NET_HTTP_HEADERS_MAX];
  uint32_t headers_len;
  const uint8_t *body;
  uint32_t body_len;
  bool keep_alive;
  bool upgrade; /* Upgrade requested: bytes after the head are
                   the new protocol's, not HTTP's. Never with
                   content (400) nor in HTTP/1.0 (Upgrade is
                   ignored there, RFC 9110 7.8) */
  uint16_t http_major, http_minor;
} net_http_request_t;

typedef enum net_http_state {
  NET_HTTP_NEED_MORE = 0, /* feed more bytes */
  NET_HTTP_REQUEST = 1,   /* a complete request: net_http_request() */
  NET_HTTP_ERROR = 2,     /* answer net_http_error_status() and close */
} net_http_state_t;

typedef struct net_http_parser {
  http_parser parser;
  net_http_request_t req;
  net_http_state_t state;
  int error_status;  /* 400, 413 or 431 */
  bool in_head;      /* between message begin and headers complete */
  bool started;      /* bytes of a request have arrived */
  bool header_done;  /* headers complete (parser paused there once) */
  bool continue_due; /* the head expects 100-continue: not yet sent */
  uint32_t head_bytes;
  uint32_t head_lines;    /* line ends seen in the head */
  uint8_t head_prev;      /* the head's last byte seen (line-end checks) */
  uint32_t trailer_bytes; /* names and values of dropped trailer fields */
  uint32_t arena_len;
  int last_cb;      /* 0 none, 1 field, 2 value: joins split chunks */
  char *cur_string; /* the string being appended to */
  char *url;        /* the request target in the arena, split into
                       path and query at the end of the head */
  /* Last, and not cleared by net_http_parser_init: written before read. */
  uint8_t body[NET_HTTP_BODY_MAX];
  char arena[NET_HTTP_ARENA];
} net_http_parser_t;

void net_http_parser_init(net_http_parser_t *hp);

/* Feed up to len bytes (borrowed). Returns how many were consumed; check
 * hp->state: REQUEST stops consuming at the end of that request (the rest is
 * the next pipelined request, or the upgraded protocol's bytes), ERROR stops
 * for good. After handling a REQUEST call net_http_next. */
size_t net_http_feed(net_http_parser_t *hp, const uint8_t *data, size_t len);

/* The complete request while state is NET_HTTP_REQUEST. */
const net_http_request_t *net_http_request(const net_http_parser_t *hp);

/* Forget the handled request and get ready for the next one. */
void net_http_next(net_http_parser_t *hp);

/* True once per request whose head asked for 100-continue (RFC 9110
 * 10.1.1) while its content has not all arrived: send "HTTP/1.1 100
 * Continue" now, or the client waits before sending it. A head that is
 * refused (413, 400, ...) is refused before this: its final status is the
 * answer, at once. */
bool net_http_take_continue(net_http_parser_t *hp);

/* True once any byte of an unfinished request has arrived (the header
 * timeout runs then). */
bool net_http_in_request(const net_http_parser_t *hp);

/* Header value by case-insensitive name, or NULL. */
const char *net_http_header(const net_http_request_t *req, const char *name);

/* True when the comma-separated header value list contains token
 * (case-insensitive), e.g. Connection: keep-alive, Upgrade. */
bool net_http_header_has_token(const char *value, const char *token);

/* True when any field line named `name` lists token. Repeated lines of a
 * list field are one list (RFC 9110 5.3): Connection: keep-alive plus
 * Connection: Upgrade lists upgrade, as http_parser also reads it. */
bool net_http_field_has_token(const net_http_request_t *req, const char *name,
                              const char *token);

/* Copy the percent-decoded value of query parameter `name` into out (NUL
 * terminated). Returns its length, or -1 when absent, or -2 when it does
 * not fit or is malformed. */
int net_http_query_param(const net_http_request_t *req, const char *name,
                         char *out, size_t cap);

/* Percent-decode src into out (NUL-terminated); '+' is not special in
 * paths. Returns the length, or -1 when malformed or out is too small or the
 * result would contain a NUL byte. */
int net_http_percent_decode(const char *src, size_t len, char *out, size_t cap);

/* The reason phrase for a status ("Not Found"); "Unknown" for others. */
const char *net_http_reason(int status);

/* A response head: status line, Content-Type (if not NULL), Content-Length,
 * Connection, the extra header lines (each "Name: value\r\n"; may be NULL),
 * blank line. A 1xx or 204 gets neither Content-Type nor Content-Length
 * (RFC 9110 8.6) and must have content_length 0. A new buffer owned by the
 * caller, or NULL (out of memory, too long, or content for a 1xx/204). */
rt_buf_t *net_http_response_head(int status, const char *content_type,
                                 size_t content_length, bool keep_alive,
                                 const char *extra_headers);

/* A whole small response: head plus body (copied). */
rt_buf_t *net_http_response(int status, const char *content_type,
                            const void *body, size_t body_len, bool keep_alive,
                            const char *extra_headers);

#endif
