/* net_ws_client.h: the client side of a WebSocket over an rt_stream_t.
 *
 * Sends the upgrade request, checks the 101 response (status, Upgrade,
 * Connection, Sec-WebSocket-Accept) with http_parser, then runs a wslay
 * client context. For the simulator's bots, the load generator and tests:
 * the same bytes a browser would send, over any world's streams.
 */
#ifndef NET_WS_CLIENT_H
#define NET_WS_CLIENT_H

#include "net_ws.h"

typedef enum net_wsc_state {
  NET_WSC_CONNECTING = 0, /* request sent or being sent, awaiting the 101 */
  NET_WSC_OPEN,           /* frames flow: use net_wsc_ws() */
  NET_WSC_REFUSED,        /* the server answered another status */
  NET_WSC_FAILED,         /* bad response or the stream failed */
} net_wsc_state_t;

typedef struct net_wsc net_wsc_t;

typedef struct net_wsc_config {
  const char *host;     /* Host header, e.g. "127.0.0.1:8080" */
  const char *target;   /* "/ws?token=..." */
  const char *origin;   /* NULL: no Origin header */
  rt_rng_t *rng;        /* key and masks (borrowed) */
  uint32_t message_max; /* 0: 64 KiB: a client may receive bigger messages */
  net_ws_pool_t *pool;  /* parked contexts (net_ws_config_t; borrowed, a
                           client pool, or NULL) */
} net_wsc_config_t;

/* Start the handshake on `stream` (borrowed). cb/ud as for net_ws. */
int net_wsc_create(rt_stream_t *stream, const net_wsc_config_t *cfg,
                   const net_ws_callbacks_t *cb, void *ud, net_wsc_t **out);
void net_wsc_destroy(net_wsc_t *c);

/* Call on every stream event: sends the rest of the request, reads the
 * response, then serves as net_ws_on_readable plus net_ws_flush. Returns
 * the state (negative RT_E* when the stream failed). */
int net_wsc_on_event(net_wsc_t *c);

net_wsc_state_t net_wsc_state(const net_wsc_t *c);
/* The HTTP status of the response (101, or the refusal's status). */
int net_wsc_http_status(const net_wsc_t *c);
/* The framing context once OPEN, else NULL. */
net_ws_t *net_wsc_ws(net_wsc_t *c);

#endif
