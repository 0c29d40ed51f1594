/* net_server_accept.c: the acceptor, and admission against the limits per
 * client address (net_peers.h). */
#include "net_server_int.h"

#include "rt_assert.h"
#include "rt_tap.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char address_busy_response[] =
    "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
    "Content-Length: 50\r\nConnection: close\r\nRetry-After: 5\r\n\r\n"
    "{\"error\":\"too many connections from your address\"}";

/* Best effort: one write into an empty send buffer, then close. */
static void refuse_stream(rt_stream_t *s, const char *response, size_t len) {
  (void)rt_stream_write(s, response, len);
  rt_stream_close(s);
}

/* The peer's address is an input from the world, recorded as an external
 * (rt_tap.h) so a replay gets the address the live server saw. */
static void peer_address(net_server_t *srv, rt_stream_t *s, char *out) {
  int64_t rc;
  const uint8_t *data;
  size_t len;
  int got = rt_external_take(srv->world, NET_EXT_PEER, &rc, &data, &len);
  if (got == 0) {
    rc = rt_stream_peer(s, out, RT_PEER_MAX);
    rt_external_put(srv->world, NET_EXT_PEER, rc, out, strlen(out));
    return;
  }
  out[0] = '\0';
  if (got > 0 && rc == 0 && len < RT_PEER_MAX) {
    memcpy(out, data, len);
    out[len] = '\0';
  }
}

/* Admit one accepted stream against the per-address limits: its key (0:
 * not counted) and whether it is the trusted proxy; false when refused
 * (the stream is closed). */
static bool admit_address(net_server_t *srv, rt_stream_t *s, uint64_t *key,
                          bool *via_proxy) {
  *key = 0;
  *via_proxy = false;
  if (!srv->peers_on)
    return true;
  char addr[RT_PEER_MAX];
  peer_address(srv, s, addr);
  if (srv->cfg.trusted_proxy != NULL &&
      strcmp(addr, srv->cfg.trusted_proxy) == 0) {
    *via_proxy = true; /* the proxy caps its clients; we meter requests */
    return true;
  }
  /* A loopback peer is a process on this machine: a reverse proxy not
   * named by --trusted-proxy (capping it would cap the whole site at one
   * address's share), a load generator, a test. Not limited per address. */
  if (net_peers_is_loopback(addr))
    return true;
  uint64_t k = net_peers_key(&srv->peers, addr);
  if (net_peers_connect(&srv->peers, k, rt_now(srv->world)) < 0) {
    refuse_stream(s, address_busy_response, sizeof(address_busy_response) - 1);
    srv->stats.rejected_address++;
    return false;
  }
  *key = k;
  return true;
}

void net_server__acceptor_behaviour(rt_actor_t *self, const rt_msg_t *msg) {
  net_server_t *srv = rt_state(self);
  if (msg->tag != RT_TAG_ACCEPT || srv->listener == NULL)
    return;
  for (int i = 0; i < ACCEPTS_PER_TURN; i++) {
    rt_stream_t *s = NULL;
    if (rt_listener_accept(srv->listener, &s) <= 0)
      return;
    if (srv->stats.connections >= srv->cfg.connections_max ||
        srv->shutting_down) {
      refuse_stream(s, net_server__busy_response,
                    strlen(net_server__busy_response));
      srv->stats.rejected_limit++;
      continue;
    }
    uint64_t key;
    bool via_proxy;
    if (!admit_address(srv, s, &key, &via_proxy))
      continue;
    if (net_server__conn_spawn(srv, s, key, via_proxy) < 0) {
      net_peers_disconnect(&srv->peers, key, rt_now(srv->world));
      rt_stream_close(s);
    }
  }
}

void net_server__acceptor_on_stop(rt_actor_t *self, int reason) {
  (void)reason;
  net_server_t *srv = rt_state(self);
  rt_listener_close(srv->listener);
  srv->listener = NULL;
  srv->acceptor = 0;
}
