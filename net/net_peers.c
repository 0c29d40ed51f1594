/* net_peers.c: limits per client address (net_peers.h).
 *
 * Invariants:
 *  (1) An entry exists for every key with connections > 0.
 *  (2) An entry with no connections and a full bucket is stale: dropping
 *      it changes no answer (a new entry starts full), so the table may
 *      drop it at any time; it does so only when full.
 *  (3) count <= addresses_max.
 */
#include "net_peers.h"

#include "rt_assert.h"
#include "rt_err.h"
#include "rt_hash.h"

#include <stdlib.h>
#include <string.h>

#define MINUTE_NS (60 * RT_NS_PER_S)

typedef struct net_peer {
  uint32_t connections;
  /* The bucket in request-nanoseconds: each request costs MINUTE_NS, and
   * it refills at requests_per_minute per minute, so it holds `tokens /
   * MINUTE_NS` requests, at most requests_per_minute of them. */
  int64_t tokens;
  rt_time_ns refilled_at;
} net_peer_t;

static int64_t bucket_max(const net_peers_t *p) {
  return (int64_t)p->cfg.requests_per_minute * MINUTE_NS;
}

static void refill(const net_peers_t *p, net_peer_t *e, rt_time_ns now) {
  int64_t max = bucket_max(p);
  if (now > e->refilled_at) {
    /* rpm tokens a minute: rpm request-ns per ns of dt; a minute or more
     * refills it all (and keeps dt * rpm far from overflowing). */
    int64_t dt = now - e->refilled_at;
    int64_t add =
        dt >= MINUTE_NS ? max : dt * (int64_t)p->cfg.requests_per_minute;
    e->tokens = e->tokens > max - add ? max : e->tokens + add;
  }
  e->refilled_at = now;
}

static bool stale(const net_peers_t *p, net_peer_t *e, rt_time_ns now) {
  refill(p, e, now);
  return e->connections == 0 && e->tokens >= bucket_max(p);
}

int net_peers_init(net_peers_t *p, const net_peers_config_t *cfg,
                   uint64_t seed) {
  memset(p, 0, sizeof(*p));
  p->cfg = *cfg;
  if (p->cfg.addresses_max == 0)
    p->cfg.addresses_max = NET_PEER_ADDRESSES_MAX_DEFAULT;
  p->seed = seed;
  return rt_idmap_init(&p->map);
}

void net_peers_deinit(net_peers_t *p) {
  uint32_t n = 0;
  uint64_t *keys = rt_idmap_sorted_keys(&p->map, &n);
  for (uint32_t i = 0; keys != NULL && i < n; i++)
    free(rt_idmap_del(&p->map, keys[i]));
  free(keys);
  rt_idmap_deinit(&p->map);
}

bool net_peers_is_loopback(const char *addr) {
  return strncmp(addr, "127.", 4) == 0 || strcmp(addr, "::1") == 0;
}

uint64_t net_peers_key(const net_peers_t *p, const char *addr) {
  size_t len = strlen(addr);
  if (len == 0)
    return 0;
  uint64_t k = rt_hash_bytes(addr, len, p->seed ^ 0x70656572ULL /* "peer" */);
  return k != 0 ? k : 1; /* 0 is the idmap's empty slot */
}

/* Invariant (2): drop every stale entry, by key (never by slot order). */
static void sweep(net_peers_t *p, rt_time_ns now) {
  uint32_t n = 0;
  uint64_t *keys = rt_idmap_sorted_keys(&p->map, &n);
  for (uint32_t i = 0; keys != NULL && i < n; i++) {
    net_peer_t *e = rt_idmap_get(&p->map, keys[i]);
    if (stale(p, e, now))
      free(rt_idmap_del(&p->map, keys[i]));
  }
  free(keys);
}

/* The entry of key, made (with a full bucket) when absent; NULL when the
 * table is full (Invariant (3)) or out of memory. */
static net_peer_t *entry(net_peers_t *p, uint64_t key, rt_time_ns now) {
  net_peer_t *e = rt_idmap_get(&p->map, key);
  if (e != NULL)
    return e;
  if (p->map.count >= p->cfg.addresses_max)
    sweep(p, now);
  if (p->map.count >= p->cfg.addresses_max)
    return NULL;
  e = calloc(1, sizeof(*e));
  if (e == NULL)
    return NULL;
  e->tokens = bucket_max(p);
  e->refilled_at = now;
  if (rt_idmap_put(&p->map, key, e) < 0) {
    free(e);
    return NULL;
  }
  return e;
}

int net_peers_connect(net_peers_t *p, uint64_t key, rt_time_ns now) {
  if (key == 0)
    return RT_OK;
  net_peer_t *e = entry(p, key, now);
  if (e == NULL) {
    p->refused_full++;
    return RT_EFULL;
  }
  if (p->cfg.connections_max > 0 && e->connections >= p->cfg.connections_max) {
    p->refused_connections++;
    return RT_ELIMIT;
  }
  e->connections++;
  return RT_OK;
}

void net_peers_disconnect(net_peers_t *p, uint64_t key, rt_time_ns now) {
  if (key == 0)
    return;
  net_peer_t *e = rt_idmap_get(&p->map, key);
  RT_ASSERT(e != NULL && e->connections > 0); /* Invariant (1) */
  e->connections--;
  if (stale(p, e, now))
    free(rt_idmap_del(&p->map, key));
}

int net_peers_request(net_peers_t *p, uint64_t key, rt_time_ns now,
                      uint32_t *retry_s) {
  *retry_s = 0;
  if (key == 0 || p->cfg.requests_per_minute == 0)
    return RT_OK;
  net_peer_t *e = entry(p, key, now);
  if (e == NULL) {
    p->refused_full++;
    *retry_s = 60;
    return RT_EFULL;
  }
  refill(p, e, now);
  if (e->tokens < MINUTE_NS) {
    int64_t missing = MINUTE_NS - e->tokens;
    int64_t rpm = (int64_t)p->cfg.requests_per_minute;
    int64_t wait_ns = (missing + rpm - 1) / rpm;
    *retry_s = (uint32_t)((wait_ns + RT_NS_PER_S - 1) / RT_NS_PER_S);
    p->refused_requests++;
    return RT_ELIMIT;
  }
  e->tokens -= MINUTE_NS;
  return RT_OK;
}

uint32_t net_peers_connections(const net_peers_t *p, uint64_t key) {
  const net_peer_t *e = key != 0 ? rt_idmap_get(&p->map, key) : NULL;
  return e != NULL ? e->connections : 0;
}

uint32_t net_peers_count(const net_peers_t *p) { return p->map.count; }
