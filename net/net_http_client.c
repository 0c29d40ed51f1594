#include "net_http_client.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Room for `need` bytes and the NUL, doubling up to the limit. */
static int body_reserve(net_httpc_t *c, size_t need) {
  if (need + 1 <= c->body_cap)
    return 0;
  size_t cap = (size_t)c->body_cap * 2;
  if (cap < need + 1)
    cap = need + 1;
  if (cap > NET_HTTPC_BODY_MAX + 1)
    cap = NET_HTTPC_BODY_MAX + 1;
  char *body = c->body == c->inline_body ? malloc(cap) : realloc(c->body, cap);
  if (body == NULL)
    return -1;
  if (c->body == c->inline_body)
    memcpy(body, c->inline_body, c->body_len + 1);
  c->body = body;
  c->body_cap = (uint32_t)cap;
  return 0;
}

static int on_body(http_parser *p, const char *at, size_t len) {
  net_httpc_t *c = p->data;
  if (c->body_len + len > NET_HTTPC_BODY_MAX ||
      body_reserve(c, c->body_len + len) < 0)
    return -1;
  memcpy(c->body + c->body_len, at, len);
  c->body_len += (uint32_t)len;
  c->body[c->body_len] = '\0';
  return 0;
}

static int on_headers_complete(http_parser *p) {
  net_httpc_t *c = p->data;
  c->head_done = true;
  return 0;
}

static int on_message_complete(http_parser *p) {
  net_httpc_t *c = p->data;
  c->state = NET_HTTPC_DONE;
  http_parser_pause(p, 1); /* bytes after it belong to the next response */
  return 0;
}

static const http_parser_settings httpc_settings = {
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

int net_httpc_request(char *out, size_t cap, const char *method,
                      const char *host, const char *target, const char *bearer,
                      const char *json_body, bool keep_alive) {
  size_t body_len = json_body != NULL ? strlen(json_body) : 0;
  char auth[1200] = "";
  if (bearer != NULL) {
    int a =
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s\r\n", bearer);
    if (a < 0 || (size_t)a >= sizeof(auth))
      return -1;
  }
  char content[96] = "";
  if (json_body != NULL)
    snprintf(content, sizeof(content),
             "Content-Type: application/json\r\nContent-Length: %zu\r\n",
             body_len);
  int n = snprintf(out, cap,
                   "%s %s HTTP/1.1\r\nHost: %s\r\n%s%sConnection: %s"
                   "\r\n\r\n%s",
                   method, target, host, auth, content,
                   keep_alive ? "keep-alive" : "close",
                   json_body != NULL ? json_body : "");
  if (n < 0 || (size_t)n >= cap)
    return -1;
  return n;
}

void net_httpc_init(net_httpc_t *c) {
  /* All but the inline body, which is written up to body_len and
   * NUL-terminated there. */
  memset(c, 0, offsetof(net_httpc_t, inline_body));
  c->body = c->inline_body;
  c->body_cap = NET_HTTPC_BODY_INLINE;
  c->body[0] = '\0';
  http_parser_init(&c->parser, HTTP_RESPONSE);
  c->parser.data = c;
}

void net_httpc_deinit(net_httpc_t *c) {
  if (c->body != c->inline_body)
    free(c->body);
  c->body = c->inline_body;
  c->body_cap = NET_HTTPC_BODY_INLINE;
  c->body_len = 0;
  c->body[0] = '\0';
}

net_httpc_state_t net_httpc_feed(net_httpc_t *c, const uint8_t *data,
                                 size_t len) {
  if (c->state != NET_HTTPC_WAITING || len == 0)
    return c->state;
  size_t n =
      http_parser_execute(&c->parser, &httpc_settings, (const char *)data, len);
  if (!c->head_done)
    c->head_bytes += (uint32_t)n;
  enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
  if (c->state == NET_HTTPC_DONE)
    return c->state;
  if ((e != HPE_OK && e != HPE_PAUSED) || c->head_bytes > NET_HTTPC_HEAD_MAX)
    c->state = NET_HTTPC_FAILED;
  return c->state;
}

net_httpc_state_t net_httpc_eof(net_httpc_t *c) {
  if (c->state != NET_HTTPC_WAITING)
    return c->state;
  http_parser_execute(&c->parser, &httpc_settings, NULL, 0);
  if (c->state != NET_HTTPC_DONE)
    c->state = NET_HTTPC_FAILED;
  return c->state;
}

int net_httpc_status(const net_httpc_t *c) { return c->parser.status_code; }
