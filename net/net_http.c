#include "net_http.h"

#include "rt_assert.h"

#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static net_http_parser_t *hp_of(http_parser *p) { return p->data; }

/* Append to the string being built in the arena. The head limit is checked
 * after each feed (net_http_feed), so within one feed the head may grow past
 * it: these checks are what bound the arena. */
static int arena_append(net_http_parser_t *hp, const char *at, size_t len) {
  if (hp->arena_len + len + 1 > sizeof(hp->arena)) {
    hp->error_status = 431;
    return -1;
  }
  memcpy(hp->arena + hp->arena_len, at, len);
  hp->arena_len += (uint32_t)len;
  hp->arena[hp->arena_len] = '\0';
  return 0;
}

/* Start a new string in the arena; returns it, or NULL when full. It
 * begins after the previous string's terminator, and needs a byte for its
 * own: both count against the arena. */
static char *arena_start(net_http_parser_t *hp) {
  uint32_t at = hp->arena_len + (hp->cur_string != NULL ? 1u : 0u);
  if (at + 1 > sizeof(hp->arena)) {
    hp->error_status = 431;
    return NULL;
  }
  hp->arena_len = at;
  hp->cur_string = hp->arena + at;
  hp->arena[at] = '\0';
  return hp->cur_string;
}

static int on_message_begin(http_parser *p) {
  net_http_parser_t *hp = hp_of(p);
  hp->in_head = true;
  hp->started = true;
  return 0;
}

static int on_url(http_parser *p, const char *at, size_t len) {
  net_http_parser_t *hp = hp_of(p);
  if (hp->url == NULL && (hp->url = arena_start(hp)) == NULL)
    return -1;
  return arena_append(hp, at, len);
}

/* Header callbacks after the head are a chunked body's trailer fields
 * (http_parser reports both alike). They are counted and dropped: a trailer
 * must not pass for a header (RFC 9110 6.5.1), or a trailer Host would
 * satisfy the Host check and a trailer Authorization would reach a route
 * that the head did not authorize. Dropping, rather than refusing, keeps
 * the requests of clients that send a checksum trailer working (RFC 9112
 * 7.1.2 lets a recipient discard trailers). */
static int trailer_bytes(net_http_parser_t *hp, size_t len) {
  if (hp->trailer_bytes + len > NET_HTTP_TRAILER_MAX) {
    hp->error_status = 431;
    return -1;
  }
  hp->trailer_bytes += (uint32_t)len;
  return 0;
}

/* The value being built has ended: drop its trailing whitespace in place.
 * http_parser skips the OWS before a field value but passes on the OWS
 * after it, which is no more part of the value (RFC 9112 5.1): without
 * this, "Sec-WebSocket-Version: 13 " is not version 13. */
static void end_value(net_http_parser_t *hp) {
  if (hp->last_cb != 2)
    return;
  uint32_t start = (uint32_t)(hp->cur_string - hp->arena);
  while (hp->arena_len > start && (hp->arena[hp->arena_len - 1] == ' ' ||
                                   hp->arena[hp->arena_len - 1] == '\t'))
    hp->arena_len--;
  hp->arena[hp->arena_len] = '\0';
}

static int on_header_field(http_parser *p, const char *at, size_t len) {
  net_http_parser_t *hp = hp_of(p);
  if (!hp->in_head)
    return trailer_bytes(hp, len);
  if (hp->last_cb != 1) {
    end_value(hp);
    if (hp->req.headers_len == NET_HTTP_HEADERS_MAX) {
      hp->error_status = 431;
      return -1;
    }
    net_http_header_t *h = &hp->req.headers[hp->req.headers_len++];
    h->value = "";
    if ((h->name = arena_start(hp)) == NULL)
      return -1;
    hp->last_cb = 1;
  }
  return arena_append(hp, at, len);
}

static int on_header_value(http_parser *p, const char *at, size_t len) {
  net_http_parser_t *hp = hp_of(p);
  if (!hp->in_head)
    return trailer_bytes(hp, len);
  if (hp->last_cb != 2) {
    RT_ASSERT(hp->req.headers_len > 0);
    net_http_header_t *h = &hp->req.headers[hp->req.headers_len - 1];
    if ((h->value = arena_start(hp)) == NULL)
      return -1;
    hp->last_cb = 2;
  }
  return arena_append(hp, at, len);
}

/* RFC 9110 5.6.2: a field name is a token. http_parser, built lenient,
 * takes a space in a name, and then reads "Content-Length : 14" as the
 * length; a proxy that ignores that line frames the body differently: a
 * request-smuggling shape, which RFC 9112 5.1 answers with 400. */
static bool is_tchar(unsigned char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
         (c >= 'A' && c <= 'Z') || (c != '\0' && strchr("!#$%&'*+-.^_`|~", c));
}

static bool field_names_valid(const net_http_request_t *req) {
  for (uint32_t i = 0; i < req->headers_len; i++) {
    const char *name = req->headers[i].name;
    if (name[0] == '\0')
      return false;
    for (const char *c = name; *c != '\0'; c++)
      if (!is_tchar((unsigned char)*c))
        return false;
  }
  return true;
}

static int on_headers_complete(http_parser *p) {
  net_http_parser_t *hp = hp_of(p);
  end_value(hp);
  hp->in_head = false;
  if (!field_names_valid(&hp->req)) {
    hp->error_status = 400; /* refuse before reading the body */
    return -1;
  }
  if (p->content_length != ULLONG_MAX &&
      p->content_length > NET_HTTP_BODY_MAX) {
    hp->error_status = 413; /* refuse before reading the body */
    return -1;
  }
  /* Stop here once so that net_http_feed can measure the head exactly. */
  http_parser_pause(p, 1);
  return 0;
}

static int on_body(http_parser *p, const char *at, size_t len) {
  net_http_parser_t *hp = hp_of(p);
  if (hp->req.body_len + len > NET_HTTP_BODY_MAX) {
    hp->error_status = 413; /* chunked bodies have no Content-Length */
    return -1;
  }
  memcpy(hp->body + hp->req.body_len, at, len);
  hp->req.body_len += (uint32_t)len;
  return 0;
}

/* Line endings in the head are CRLF, and no line starts with whitespace
 * (RFC 9112 2.2, 5.2): a bare LF or CR, and obsolete line folding, are
 * refused with 400. http_parser, built lenient, takes all three, while a
 * proxy in front may split the same bytes into other lines. Checks the head
 * bytes [at, at + n), carrying the last byte across calls. */
static bool head_lines_valid(net_http_parser_t *hp, const char *at, size_t n) {
  unsigned char prev = hp->head_prev;
  bool ok = true;
  for (size_t i = 0; i < n && ok; i++) {
    unsigned char c = (unsigned char)at[i];
    if (c == '\n')
      ok = prev == '\r';
    else if (prev == '\r')
      ok = false; /* a CR not followed by LF */
    else if ((c == ' ' || c == '\t') && prev == '\n' && hp->head_lines > 0)
      ok = false; /* a field line folded, or whitespace before a name */
    if (c == '\n')
      hp->head_lines++;
    prev = c;
  }
  hp->head_prev = prev;
  return ok;
}

static int on_message_complete(http_parser *p) {
  net_http_parser_t *hp = hp_of(p);
  hp->state = NET_HTTP_REQUEST;
  http_parser_pause(p, 1); /* one request at a time: pipelining in order */
  return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

static void reset_request(net_http_parser_t *hp) {
  memset(&hp->req, 0, sizeof(hp->req));
  hp->state = NET_HTTP_NEED_MORE;
  hp->error_status = 0;
  hp->in_head = false;
  hp->started = false;
  hp->header_done = false;
  hp->continue_due = false;
  hp->head_bytes = 0;
  hp->head_prev = 0;
  hp->head_lines = 0;
  hp->trailer_bytes = 0;
  hp->arena_len = 0;
  hp->last_cb = 0;
  hp->cur_string = NULL;
  hp->url = NULL;
}

void net_http_parser_init(net_http_parser_t *hp) {
  /* All but the body and the arena (most of its size): every byte of
   * those is written before it is read, as it is after reset_request
   * between two requests. A server clears one per connection. */
  memset(hp, 0, offsetof(net_http_parser_t, body));
  http_parser_init(&hp->parser, HTTP_REQUEST);
  hp->parser.data = hp;
  reset_request(hp);
}

static void fail(net_http_parser_t *hp, int status) {
  hp->state = NET_HTTP_ERROR;
  hp->error_status = status;
}

_Static_assert(NET_HTTP_ARENA <= UINT16_MAX,
               "http_parser_parse_url's offsets are 16 bits");

/* Point path and query into the target, terminated in place (the arena is
 * ours): no copy, so a target of any length the head limit allows fits.
 * The absolute form (http://host:port/path?query) routes like the origin
 * form (RFC 9112 3.2.2): http_parser_parse_url finds the path past the
 * authority, and an empty path is "/". Returns 0, or -1 for a target we do
 * not serve: userinfo (RFC 9110 4.2.4 calls it an error) or the authority
 * form, which is for proxies (CONNECT). */
static int split_target(net_http_parser_t *hp) {
  net_http_request_t *r = &hp->req;
  r->path = "";
  r->query = "";
  char *url = hp->url;
  if (url == NULL)
    return 0;
  struct http_parser_url u;
  http_parser_url_init(&u);
  if (http_parser_parse_url(url, strlen(url), 0, &u) != 0 ||
      (u.field_set & (1u << UF_USERINFO)) != 0)
    return -1;
  /* Locate both before terminating either: the path ends on the '?'. */
  bool has_path = (u.field_set & (1u << UF_PATH)) != 0;
  bool has_query = (u.field_set & (1u << UF_QUERY)) != 0;
  char *path = url + u.field_data[UF_PATH].off;
  char *query = url + u.field_data[UF_QUERY].off;
  if (has_path)
    path[u.field_data[UF_PATH].len] = '\0';
  if (has_query)
    query[u.field_data[UF_QUERY].len] = '\0';
  r->path = has_path ? path : "/";
  r->query = has_query ? query : "";
  return 0;
}

static uint32_t field_lines(const net_http_request_t *req, const char *name) {
  uint32_t n = 0;
  for (uint32_t i = 0; i < req->headers_len; i++)
    if (strcasecmp(req->headers[i].name, name) == 0)
      n++;
  return n;
}

/* RFC 9112 3.2: 400 for an HTTP/1.1 request without Host, and for any
 * request with more than one Host line (which Host would the same-origin
 * check believe?). */
static bool host_valid(const net_http_request_t *req) {
  uint32_t hosts = field_lines(req, "Host");
  return hosts == 1 || (hosts == 0 && req->http_minor == 0);
}

static bool has_body(const http_parser *p) {
  return (p->flags & F_CHUNKED) != 0 ||
         (p->content_length > 0 && p->content_length != ULLONG_MAX);
}

/* A head that asks to switch protocols (http_parser sets `upgrade` for
 * Upgrade with Connection: upgrade). Returns 0, or the status to refuse
 * the request with. */
static int check_upgrade(net_http_parser_t *hp) {
  http_parser *p = &hp->parser;
  if (!p->upgrade)
    return 0;
  if (p->http_major == 1 && p->http_minor == 0) {
    /* RFC 9110 7.8: a server MUST ignore Upgrade in an HTTP/1.0 request
     * (and RFC 6455 needs 1.1). http_parser decides between upgrade and
     * HTTP when it re-reads the head's last LF, after this pause, so
     * clearing the flag makes it read on as HTTP. */
    p->upgrade = 0;
    return 0;
  }
  /* With content, http_parser would read it as HTTP and stop after it,
   * while we would hand those bytes to the new protocol as its first
   * frames. The WebSocket handshake carries no content (RFC 6455 4.1) and
   * nothing else upgrades here, so refuse rather than read it first. */
  return has_body(p) ? 400 : 0;
}

/* Fill in the request's fields from its head, and check them now, before
 * any content is read: a request refused here is refused at once, and is
 * never told to send its content (net_http_take_continue). Returns 0, or
 * the status to refuse it with. */
static int finish_head(net_http_parser_t *hp) {
  net_http_request_t *r = &hp->req;
  http_parser *p = &hp->parser;
  r->method_id = p->method;
  r->method = http_method_str((enum http_method)p->method);
  r->http_major = p->http_major;
  r->http_minor = p->http_minor;
  r->keep_alive = http_should_keep_alive(p) != 0;
  r->body = hp->body;
  if (r->http_major != 1)
    return 505; /* HTTP/0.9 or 2+ over this parser: not spoken here */
  if (split_target(hp) < 0 || !host_valid(r))
    return 400;
  int status = check_upgrade(hp);
  r->upgrade = p->upgrade != 0;
  return status;
}

/* RFC 9110 10.1.1: a client that sends Expect: 100-continue waits for an
 * interim 100 before it sends the content (curl: for a second). An
 * HTTP/1.0 request's expectation MUST be ignored, and without content
 * there is nothing to wait for. */
static bool expects_continue(const net_http_parser_t *hp) {
  return hp->req.http_minor >= 1 && has_body(&hp->parser) &&
         net_http_field_has_token(&hp->req, "Expect", "100-continue");
}

/* The parser paused at the end of the head (on_headers_complete). Returns
 * true to read on (the body, or the next request), false to stop: the
 * head was refused, or the connection switches protocols. */
static bool head_done(net_http_parser_t *hp, size_t *used) {
  /* http_parser stops *on* the head's final LF and re-reads it when
   * resumed, so the head is one byte longer than what it consumed. */
  hp->header_done = true;
  hp->head_bytes += 1;
  if (hp->head_bytes > NET_HTTP_HEAD_MAX) {
    fail(hp, 431);
    return false;
  }
  int status = finish_head(hp);
  if (status != 0) {
    fail(hp, status);
    return false;
  }
  hp->continue_due = expects_continue(hp);
  if (!hp->parser.upgrade)
    return true;
  /* The bytes after the LF belong to the new protocol; this parser is not
   * used again on this connection. */
  *used += 1;
  hp->state = NET_HTTP_REQUEST;
  return false;
}

size_t net_http_feed(net_http_parser_t *hp, const uint8_t *data, size_t len) {
  if (hp->state != NET_HTTP_NEED_MORE || len == 0)
    return 0;
  size_t used = 0;
  while (used < len && hp->state == NET_HTTP_NEED_MORE) {
    const char *at = (const char *)data + used;
    size_t n = http_parser_execute(&hp->parser, &settings, at, len - used);
    enum http_errno err = HTTP_PARSER_ERRNO(&hp->parser);
    bool was_in_head = !hp->header_done;
    /* Paused on the head's final LF, which it re-reads: one byte more. */
    size_t head_n =
        was_in_head && !hp->in_head && err == HPE_PAUSED ? n + 1 : n;
    if (was_in_head && !head_lines_valid(hp, at, head_n)) {
      fail(hp, 400);
      break;
    }
    used += n;
    if (was_in_head)
      hp->head_bytes += (uint32_t)n;
    if (err == HPE_PAUSED) {
      http_parser_pause(&hp->parser, 0);
      /* Paused at the end of the head, or of the request (the loop ends
       * on NET_HTTP_REQUEST). */
      if (was_in_head && !hp->in_head && !head_done(hp, &used))
        break;
      continue;
    }
    if (err != HPE_OK) {
      fail(hp, hp->error_status != 0 ? hp->error_status : 400);
      break;
    }
    if (was_in_head && hp->head_bytes > NET_HTTP_HEAD_MAX) {
      fail(hp, 431);
      break;
    }
    if (n == 0)
      break;
  }
  return used;
}

const net_http_request_t *net_http_request(const net_http_parser_t *hp) {
  RT_ASSERT(hp->state == NET_HTTP_REQUEST);
  return &hp->req;
}

void net_http_next(net_http_parser_t *hp) { reset_request(hp); }

bool net_http_take_continue(net_http_parser_t *hp) {
  if (!hp->continue_due || hp->state != NET_HTTP_NEED_MORE)
    return false;
  hp->continue_due = false;
  return true;
}

bool net_http_in_request(const net_http_parser_t *hp) {
  return hp->started || hp->state != NET_HTTP_NEED_MORE;
}

const char *net_http_header(const net_http_request_t *req, const char *name) {
  for (uint32_t i = 0; i < req->headers_len; i++)
    if (strcasecmp(req->headers[i].name, name) == 0)
      return req->headers[i].value;
  return NULL;
}

bool net_http_header_has_token(const char *value, const char *token) {
  if (value == NULL)
    return false;
  size_t tlen = strlen(token);
  const char *p = value;
  while (*p != '\0') {
    while (*p == ' ' || *p == '\t' || *p == ',')
      p++;
    const char *start = p;
    while (*p != '\0' && *p != ',')
      p++;
    const char *end = p;
    while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
      end--;
    if ((size_t)(end - start) == tlen && strncasecmp(start, token, tlen) == 0)
      return true;
  }
  return false;
}

bool net_http_field_has_token(const net_http_request_t *req, const char *name,
                              const char *token) {
  for (uint32_t i = 0; i < req->headers_len; i++)
    if (strcasecmp(req->headers[i].name, name) == 0 &&
        net_http_header_has_token(req->headers[i].value, token))
      return true;
  return false;
}

static int hex_value(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

int net_http_percent_decode(const char *src, size_t len, char *out,
                            size_t cap) {
  size_t o = 0;
  for (size_t i = 0; i < len; i++) {
    char c = src[i];
    if (c == '%') {
      if (i + 2 >= len)
        return -1;
      int hi = hex_value(src[i + 1]), lo = hex_value(src[i + 2]);
      if (hi < 0 || lo < 0)
        return -1;
      c = (char)(hi * 16 + lo);
      if (c == '\0')
        return -1;
      i += 2;
    }
    if (o + 1 >= cap)
      return -1;
    out[o++] = c;
  }
  if (cap == 0)
    return -1;
  out[o] = '\0';
  return (int)o;
}

int net_http_query_param(const net_http_request_t *req, const char *name,
                         char *out, size_t cap) {
  size_t nlen = strlen(name);
  const char *p = req->query;
  while (p != NULL && *p != '\0') {
    const char *amp = strchr(p, '&');
    size_t plen = amp != NULL ? (size_t)(amp - p) : strlen(p);
    if (plen > nlen && strncmp(p, name, nlen) == 0 && p[nlen] == '=') {
      /* Query values use '+' for space (form encoding). */
      const char *v = p + nlen + 1;
      size_t vlen = plen - nlen - 1;
      char tmp[NET_HTTP_HEAD_MAX];
      if (vlen >= sizeof(tmp))
        return -2;
      for (size_t i = 0; i < vlen; i++)
        tmp[i] = v[i] == '+' ? ' ' : v[i];
      int n = net_http_percent_decode(tmp, vlen, out, cap);
      return n < 0 ? -2 : n;
    }
    p = amp != NULL ? amp + 1 : NULL;
  }
  return -1;
}

const char *net_http_reason(int status) {
  const char *s = http_status_str((enum http_status)status);
  return s != NULL && strcmp(s, "<unknown>") != 0 ? s : "Unknown";
}

#define NET_HTTP_RESPONSE_HEAD_MAX 2048u

/* A 1xx or 204 has no content by definition, and a server must not send
 * Content-Length with one (RFC 9110 8.6); nor a type for content that
 * cannot exist. */
static bool status_has_no_content(int status) {
  return (status >= 100 && status < 200) || status == 204;
}

rt_buf_t *net_http_response_head(int status, const char *content_type,
                                 size_t content_length, bool keep_alive,
                                 const char *extra_headers) {
  char head[NET_HTTP_RESPONSE_HEAD_MAX];
  char length[48] = "";
  if (status_has_no_content(status)) {
    if (content_length != 0)
      return NULL; /* a body it must not have: refuse, never cut it */
    content_type = NULL;
  } else {
    snprintf(length, sizeof(length), "Content-Length: %zu\r\n", content_length);
  }
  int n = snprintf(head, sizeof(head),
                   "HTTP/1.1 %d %s\r\n"
                   "%s%s%s"
                   "%s"
                   "Connection: %s\r\n"
                   "%s"
                   "\r\n",
                   status, net_http_reason(status),
                   content_type != NULL ? "Content-Type: " : "",
                   content_type != NULL ? content_type : "",
                   content_type != NULL ? "\r\n" : "", length,
                   keep_alive ? "keep-alive" : "close",
                   extra_headers != NULL ? extra_headers : "");
  if (n < 0 || (size_t)n >= sizeof(head))
    return NULL;
  return rt_buf_copy(head, (size_t)n);
}

rt_buf_t *net_http_response(int status, const char *content_type,
                            const void *body, size_t body_len, bool keep_alive,
                            const char *extra_headers) {
  rt_buf_t *head = net_http_response_head(status, content_type, body_len,
                                          keep_alive, extra_headers);
  if (head == NULL)
    return NULL;
  rt_buf_t *all = rt_buf_create(head->len + body_len);
  if (all != NULL) {
    memcpy(all->data, head->data, head->len);
    if (body_len > 0)
      memcpy(all->data + head->len, body, body_len);
  }
  rt_buf_unref(head);
  return all;
}
