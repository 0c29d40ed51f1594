#include "net_ws_client.h"

#include "net_http.h"

#include "rt_assert.h"

#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define WSC_REQUEST_MAX 4096u
#define WSC_RESPONSE_MAX 8192u
#define WSC_MESSAGE_MAX_DEFAULT (64u * 1024)

struct net_wsc {
  /* An open connection's every frame reads these: first, in one line (the
   * handshake's buffers below are cold after it). */
  rt_stream_t *stream;
  net_ws_t *ws;
  net_wsc_state_t state;
  uint32_t message_max;
  net_ws_callbacks_t cb;
  void *ud;
  rt_rng_t *rng;
  net_ws_pool_t *pool; /* net_wsc_config_t */
  uint32_t request_len, request_off;
  uint32_t response_bytes;
  bool head_done;
  bool saw_upgrade, saw_connection, accept_ok;
  int last_cb; /* 1 field, 2 value */
  uint32_t field_len;
  uint32_t value_len;
  http_parser parser;
  char expect_accept[NET_WS_ACCEPT_LEN + 1];
  char field[64];
  char value[128];
  char request[WSC_REQUEST_MAX];
};

/* ---- Response head parsing ----------------------------------------------- */

static void header_done(net_wsc_t *c) {
  c->field[c->field_len < sizeof(c->field) ? c->field_len : 0] = '\0';
  c->value[c->value_len < sizeof(c->value) ? c->value_len : 0] = '\0';
  if (strcasecmp(c->field, "Upgrade") == 0)
    c->saw_upgrade = net_http_header_has_token(c->value, "websocket");
  else if (strcasecmp(c->field, "Connection") == 0)
    c->saw_connection = net_http_header_has_token(c->value, "upgrade");
  else if (strcasecmp(c->field, "Sec-WebSocket-Accept") == 0)
    c->accept_ok = strcmp(c->value, c->expect_accept) == 0;
  c->field_len = c->value_len = 0;
}

static int append(char *dst, uint32_t *len, size_t cap, const char *at,
                  size_t n) {
  if (*len + n >= cap) {
    *len = (uint32_t)cap; /* too long to be one we care about: ignored */
    return 0;
  }
  memcpy(dst + *len, at, n);
  *len += (uint32_t)n;
  return 0;
}

static int on_field(http_parser *p, const char *at, size_t n) {
  net_wsc_t *c = p->data;
  if (c->last_cb == 2)
    header_done(c);
  c->last_cb = 1;
  return append(c->field, &c->field_len, sizeof(c->field), at, n);
}

static int on_value(http_parser *p, const char *at, size_t n) {
  net_wsc_t *c = p->data;
  c->last_cb = 2;
  return append(c->value, &c->value_len, sizeof(c->value), at, n);
}

static int on_headers_complete(http_parser *p) {
  net_wsc_t *c = p->data;
  if (c->last_cb == 2)
    header_done(c);
  c->head_done = true;
  http_parser_pause(p, 1); /* the rest are frames */
  return 0;
}

static const http_parser_settings wsc_settings = {
    .on_header_field = on_field,
    .on_header_value = on_value,
    .on_headers_complete = on_headers_complete,
};

/* ---- Lifecycle ----------------------------------------------------------- */

int net_wsc_create(rt_stream_t *stream, const net_wsc_config_t *cfg,
                   const net_ws_callbacks_t *cb, void *ud, net_wsc_t **out) {
  if (cfg->rng == NULL || cfg->host == NULL || cfg->target == NULL)
    return RT_EINVAL;
  net_wsc_t *c = calloc(1, sizeof(*c));
  if (c == NULL)
    return RT_ENOMEM;
  c->stream = stream;
  c->cb = *cb;
  c->ud = ud;
  c->rng = cfg->rng;
  c->pool = cfg->pool;
  c->message_max =
      cfg->message_max != 0 ? cfg->message_max : WSC_MESSAGE_MAX_DEFAULT;
  char key[NET_WS_KEY_LEN + 1];
  net_ws_client_key(cfg->rng, key);
  int err = net_ws_accept_key(key, c->expect_accept);
  RT_ASSERT(err == RT_OK);
  char origin[512] = "";
  if (cfg->origin != NULL)
    snprintf(origin, sizeof(origin), "Origin: %s\r\n", cfg->origin);
  int n = snprintf(c->request, sizeof(c->request),
                   "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                   "Sec-WebSocket-Version: 13\r\n%s\r\n",
                   cfg->target, cfg->host, key, origin);
  if (n < 0 || (size_t)n >= sizeof(c->request)) {
    free(c);
    return RT_EINVAL;
  }
  c->request_len = (uint32_t)n;
  http_parser_init(&c->parser, HTTP_RESPONSE);
  c->parser.data = c;
  *out = c;
  return RT_OK;
}

void net_wsc_destroy(net_wsc_t *c) {
  if (c == NULL)
    return;
  net_ws_destroy(c->ws);
  free(c);
}

net_wsc_state_t net_wsc_state(const net_wsc_t *c) { return c->state; }
int net_wsc_http_status(const net_wsc_t *c) { return c->parser.status_code; }
net_ws_t *net_wsc_ws(net_wsc_t *c) {
  return c->state == NET_WSC_OPEN ? c->ws : NULL;
}

/* ---- Driving ------------------------------------------------------------- */

static int fail(net_wsc_t *c, net_wsc_state_t state) {
  c->state = state;
  return (int)state;
}

static int open_ws(net_wsc_t *c, const uint8_t *rest, size_t rest_len) {
  if (c->parser.status_code != 101)
    return fail(c, NET_WSC_REFUSED);
  if (!c->saw_upgrade || !c->saw_connection || !c->accept_ok)
    return fail(c, NET_WSC_FAILED);
  net_ws_config_t wcfg = {.client = true,
                          .message_max = c->message_max,
                          .mask_rng = c->rng,
                          .park_idle = true,
                          .pool = c->pool};
  c->ws = net_ws_create(c->stream, &wcfg, &c->cb, c->ud, rest, rest_len);
  if (c->ws == NULL)
    return fail(c, NET_WSC_FAILED);
  c->state = NET_WSC_OPEN;
  return net_wsc_on_event(c);
}

/* Read the response head byte-exactly; bytes after it are frames. */
static int read_head(net_wsc_t *c) {
  uint8_t buf[1024];
  for (int i = 0; i < 16; i++) {
    int64_t n = rt_stream_read(c->stream, buf, sizeof(buf));
    if (n == 0)
      return (int)c->state;
    if (n < 0)
      return fail(c, NET_WSC_FAILED);
    size_t used = http_parser_execute(&c->parser, &wsc_settings,
                                      (const char *)buf, (size_t)n);
    c->response_bytes += (uint32_t)used;
    enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
    if (c->head_done && e == HPE_PAUSED) {
      /* Paused on the head's final LF: it is part of the head. */
      used += 1;
      return open_ws(c, buf + used, (size_t)n - used);
    }
    if (e != HPE_OK || c->response_bytes > WSC_RESPONSE_MAX)
      return fail(c, NET_WSC_FAILED);
  }
  rt_stream_notify(c->stream, RT_STREAM_READABLE);
  return (int)c->state;
}

int net_wsc_on_event(net_wsc_t *c) {
  switch (c->state) {
  case NET_WSC_CONNECTING:
    while (c->request_off < c->request_len) {
      int64_t n = rt_stream_write(c->stream, c->request + c->request_off,
                                  c->request_len - c->request_off);
      if (n < 0)
        return fail(c, NET_WSC_FAILED);
      if (n == 0)
        return (int)c->state;
      c->request_off += (uint32_t)n;
    }
    return read_head(c);
  case NET_WSC_OPEN: {
    int64_t n = net_ws_on_readable(c->ws);
    if (n < 0)
      return (int)n;
    if (net_ws_wants_more(c->ws))
      rt_stream_notify(c->stream, RT_STREAM_READABLE);
    int err = net_ws_flush(c->ws);
    return err < 0 ? err : (int)c->state;
  }
  case NET_WSC_REFUSED:
  case NET_WSC_FAILED: return (int)c->state;
  }
  return (int)c->state;
}
