/* net_server_metrics.c: the server's stats and its /metrics text. */
#include "net_server_int.h"

#include "rt_assert.h"
#include "rt_tap.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Counted when asked (a walk over the connections), as a park or a wake
 * happens inside net_ws. */
static uint32_t parked_websockets(const net_server_t *srv) {
  uint32_t n = 0;
  for (uint32_t i = 0; i < srv->conns_len; i++) {
    const conn_t *c = srv->conns[i];
    if (c->mode == MODE_WS && c->ws != NULL && net_ws_parked(c->ws))
      n++;
  }
  return n;
}

void net_server_get_stats(const net_server_t *srv, net_server_stats_t *out) {
  *out = srv->stats;
  out->ws_parked = parked_websockets(srv);
}

/* 1013 is the game's "server full, try again later" (rt_service.h). */
static const uint16_t close_codes[] = {1000, 1001, 1002, 1003, 1006, 1007,
                                       1008, 1009, 1011, 1013, 4000, 4002};
#define CLOSE_CODES_LEN (sizeof(close_codes) / sizeof(close_codes[0]))

uint32_t net_server_close_code_index(uint16_t code) {
  for (uint32_t i = 0; i < CLOSE_CODES_LEN; i++)
    if (close_codes[i] == code)
      return i;
  return CLOSE_CODES_LEN; /* "other" */
}

static const char close_reason_names[NET_CLOSE_REASON_COUNT_][16] = {
    "peer",           "reset",         "http_done",     "http_error",
    "header_timeout", "idle_timeout",  "reply_timeout", "ws_done",
    "ws_silent",      "ws_close_wait", "shutdown",
};

/* A bounded appender: never writes past cap, always NUL-free output. */
typedef struct text {
  char *p;
  size_t len, cap;
} text_t;

static void put(text_t *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void put(text_t *t, const char *fmt, ...) {
  if (t->len >= t->cap)
    return;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(t->p + t->len, t->cap - t->len, fmt, ap);
  va_end(ap);
  if (n > 0)
    t->len = t->len + (size_t)n < t->cap ? t->len + (size_t)n : t->cap;
}

const char *net_server_close_reason_name(net_close_reason_t reason) {
  return reason < NET_CLOSE_REASON_COUNT_ ? close_reason_names[reason] : "?";
}

/* Connections, closes and HTTP/WebSocket traffic. */
static void metrics_connections(const net_server_t *srv, text_t *t) {
  const net_server_stats_t *s = &srv->stats;
  put(t,
      "# HELP overcookied_connections Open connections.\n"
      "# TYPE overcookied_connections gauge\n"
      "overcookied_connections{kind=\"all\"} %u\n"
      "overcookied_connections{kind=\"websocket\"} %u\n"
      "overcookied_connections{kind=\"websocket_parked\"} %u\n",
      s->connections, s->websockets, parked_websockets(srv));
  put(t,
      "# TYPE overcookied_connections_accepted_total counter\n"
      "overcookied_connections_accepted_total %" PRIu64 "\n"
      "# TYPE overcookied_connections_rejected_total counter\n"
      "overcookied_connections_rejected_total{reason=\"limit\"} %" PRIu64 "\n"
      "overcookied_connections_rejected_total{reason=\"per_address\"} %" PRIu64
      "\n"
      "# TYPE overcookied_requests_throttled_total counter\n"
      "overcookied_requests_throttled_total{reason=\"per_address\"} %" PRIu64
      "\n"
      "# TYPE overcookied_addresses gauge\n"
      "overcookied_addresses %u\n",
      s->accepted, s->rejected_limit, s->rejected_address, s->throttled,
      net_peers_count(&srv->peers));
  put(t,
      "# TYPE overcookied_ws_parks_total counter\n"
      "overcookied_ws_parks_total %" PRIu64 "\n"
      "# TYPE overcookied_ws_pings_total counter\n"
      "overcookied_ws_pings_total %" PRIu64 "\n"
      "# TYPE overcookied_ws_pongs_total counter\n"
      "overcookied_ws_pongs_total %" PRIu64 "\n",
      s->ws_parks, s->ws_pings, s->ws_pongs);
  put(t, "# TYPE overcookied_disconnects_total counter\n");
  for (uint32_t i = 0; i < NET_CLOSE_REASON_COUNT_; i++)
    put(t, "overcookied_disconnects_total{reason=\"%s\"} %" PRIu64 "\n",
        close_reason_names[i], s->closes[i]);
  put(t, "# TYPE overcookied_ws_close_codes_total counter\n");
  for (uint32_t i = 0; i <= CLOSE_CODES_LEN; i++) {
    if (i < CLOSE_CODES_LEN)
      put(t, "overcookied_ws_close_codes_total{code=\"%u\"} %" PRIu64 "\n",
          (unsigned)close_codes[i], s->ws_close_codes[i]);
    else
      put(t, "overcookied_ws_close_codes_total{code=\"other\"} %" PRIu64 "\n",
          s->ws_close_codes[i]);
  }
  put(t, "# TYPE overcookied_http_requests_total counter\n");
  for (int k = 1; k <= 5; k++)
    put(t, "overcookied_http_requests_total{status=\"%dxx\"} %" PRIu64 "\n", k,
        s->http_status[k]);
  put(t,
      "# TYPE overcookied_ws_messages_total counter\n"
      "overcookied_ws_messages_total{direction=\"in\"} %" PRIu64 "\n"
      "overcookied_ws_messages_total{direction=\"out\"} %" PRIu64 "\n"
      "# TYPE overcookied_bytes_total counter\n"
      "overcookied_bytes_total{direction=\"in\"} %" PRIu64 "\n"
      "overcookied_bytes_total{direction=\"out\"} %" PRIu64 "\n",
      s->ws_messages_in, s->ws_messages_out, s->bytes_in, s->bytes_out);
}

/* The connection actors' mailboxes and the runtime's overflow counts. */
static void metrics_mailboxes(const net_server_t *srv, text_t *t) {
  uint64_t depth_sum = 0;
  uint32_t depth_max = 0;
  for (uint32_t i = 0; i < srv->conns_len; i++) {
    const rt_mailbox_t *mb = rt_actor_mailbox(srv->world, srv->conns[i]->id);
    if (mb == NULL)
      continue;
    depth_sum += mb->count;
    if (mb->count > depth_max)
      depth_max = mb->count;
  }
  rt_world_stats_t ws;
  rt_world_stats(srv->world, &ws);
  put(t,
      "# TYPE overcookied_mailbox_depth gauge\n"
      "overcookied_mailbox_depth{actors=\"connections\",stat=\"sum\"} %" PRIu64
      "\n"
      "overcookied_mailbox_depth{actors=\"connections\",stat=\"max\"} %u\n"
      "# TYPE overcookied_mailbox_overflow_total counter\n"
      "overcookied_mailbox_overflow_total{outcome=\"rejected\"} %" PRIu64 "\n"
      "overcookied_mailbox_overflow_total{outcome=\"dropped\"} %" PRIu64 "\n"
      "overcookied_mailbox_overflow_total{outcome=\"replaced\"} %" PRIu64 "\n"
      "# TYPE overcookied_dead_letters_total counter\n"
      "overcookied_dead_letters_total %" PRIu64 "\n"
      "# TYPE overcookied_actors gauge\n"
      "overcookied_actors %u\n",
      depth_sum, depth_max, ws.mailbox[RT_MB_REJECTED],
      ws.mailbox[RT_MB_DROPPED], ws.mailbox[RT_MB_REPLACED], ws.dead_letters,
      ws.actors_live);
}

/* The /metrics text (Prometheus 0.0.4) into out; returns its length. */
size_t net_server__metrics(const net_server_t *srv, char *out, size_t cap) {
  text_t t = {.p = out, .len = 0, .cap = cap};
  metrics_connections(srv, &t);
  metrics_mailboxes(srv, &t);
  if (srv->cfg.metrics != NULL && t.len < t.cap)
    t.len += srv->cfg.metrics(srv->cfg.metrics_ctx, srv->world, t.p + t.len,
                              t.cap - t.len);
  return t.len < t.cap ? t.len : t.cap;
}
