/* net_peers.h: limits per client address.
 *
 * One client must not take every connection slot, nor log in without end:
 * net_server counts open connections per address and meters rate-limited
 * routes (POST /api/login) per address with a token bucket. The defaults
 * (NET_PEER_*_DEFAULT) are far above what a household behind one NAT
 * address does, and every one is a flag.
 *
 * Addresses are keyed by a seeded 64-bit hash of their text (two addresses
 * with one key would share a budget; the seed keeps anyone from choosing
 * such a pair). The table is bounded: at most addresses_max entries, an
 * entry lives while it has connections or its bucket is refilling, and a
 * full table is swept of the others, in key order, before it refuses.
 *
 * No I/O, no clock: the caller passes the time, and the address comes from
 * the world (rt_stream_peer), recorded by the caller.
 */
#ifndef NET_PEERS_H
#define NET_PEERS_H

#include "rt_idmap.h"
#include "rt_msg.h"

#include <stdbool.h>
#include <stdint.h>

#define NET_PEER_CONNECTIONS_DEFAULT 256u        /* open at once, per address */
#define NET_PEER_REQUESTS_PER_MINUTE_DEFAULT 60u /* rate-limited routes */
#define NET_PEER_ADDRESSES_MAX_DEFAULT 65536u
#define NET_PEER_REQUESTS_PER_MINUTE_MAX 1000000u

typedef struct net_peers_config {
  uint32_t connections_max;     /* per address; 0: no limit */
  uint32_t requests_per_minute; /* per address on rate-limited routes, also
                                   the burst; 0: no limit; at most
                                   NET_PEER_REQUESTS_PER_MINUTE_MAX */
  uint32_t addresses_max;       /* entries; 0: the default */
} net_peers_config_t;

typedef struct net_peers {
  net_peers_config_t cfg;
  uint64_t seed;
  rt_idmap_t map;               /* key -> net_peer_t */
  uint64_t refused_connections; /* over connections_max */
  uint64_t refused_requests;    /* over requests_per_minute */
  uint64_t refused_full;        /* the table was full */
} net_peers_t;

int net_peers_init(net_peers_t *p, const net_peers_config_t *cfg,
                   uint64_t seed);
void net_peers_deinit(net_peers_t *p);

/* 127.0.0.0/8 or ::1, as rt_stream_peer writes them. */
bool net_peers_is_loopback(const char *addr);

/* The key of an address's text; 0 for "" (unknown: no limit applies). */
uint64_t net_peers_key(const net_peers_t *p, const char *addr);

/* A connection from key opens: RT_OK (counted), RT_ELIMIT (the address
 * has connections_max open) or RT_EFULL (no room for a new address). Key
 * 0 is always RT_OK and never counted. */
int net_peers_connect(net_peers_t *p, uint64_t key, rt_time_ns now);
/* A connection counted by net_peers_connect has closed. */
void net_peers_disconnect(net_peers_t *p, uint64_t key, rt_time_ns now);

/* A request on a rate-limited route from key: RT_OK (a token taken),
 * RT_ELIMIT (none left: *retry_s is when one will be), RT_EFULL. */
int net_peers_request(net_peers_t *p, uint64_t key, rt_time_ns now,
                      uint32_t *retry_s);

/* Open connections from key (tests, checks). */
uint32_t net_peers_connections(const net_peers_t *p, uint64_t key);
uint32_t net_peers_count(const net_peers_t *p);

#endif
