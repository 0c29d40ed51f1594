/* net_live.h: the live world, on libevent.
 *
 * The world's clock is libevent's monotonic clock, counted from the world's
 * creation; its timers are one libevent timer armed at the runtime's earliest
 * deadline; its run queue is drained by one libevent event activated when
 * actors become ready (bounded turns per pass, so sockets are polled between
 * passes). Streams are non-blocking TCP sockets (net_stream.c).
 */
#ifndef NET_LIVE_H
#define NET_LIVE_H

#include "rt_stream.h"
#include "rt_world.h"

#include <stdint.h>

typedef struct net_live net_live_t;
struct event_base;

#define NET_TURNS_PER_PASS_DEFAULT 1024u
#define NET_LISTEN_BACKLOG 4096

typedef struct net_live_config {
  uint64_t seed;           /* logged at start: the run's randomness */
  uint32_t batch_max;      /* 0: runtime default */
  uint32_t turns_per_pass; /* 0: NET_TURNS_PER_PASS_DEFAULT */
  int log_level;
  bool hash_disabled;
  uint32_t actors_max;
} net_live_config_t;

net_live_t *net_live_create(const net_live_config_t *cfg);
/* Stops the actors, then frees the world and the event base. */
void net_live_destroy(net_live_t *live);
rt_world_t *net_live_world(net_live_t *live);
struct event_base *net_live_base(net_live_t *live);

/* Run the event loop until net_live_stop. */
int net_live_run(net_live_t *live);
/* Run until net_live_stop or `duration` of world time passed. */
int net_live_run_for(net_live_t *live, rt_time_ns duration);
/* Make the running loop return (callable from an actor or a signal hook). */
void net_live_stop(net_live_t *live);

/* Listen on host:port (port 0: any free port). The owner receives
 * RT_TAG_ACCEPT signals; accepted streams start with no owner. */
int net_live_listen(net_live_t *live, const char *host, uint16_t port,
                    rt_actor_id_t owner, rt_listener_t **out);
/* The port a live listener is bound to. */
uint16_t net_live_listener_port(const rt_listener_t *l);

/* Connect to host:port without blocking: rt_stream_connect on the live
 * world, whose backend this is (a tap sees it). host is a numeric IPv4 or
 * IPv6 address (no name lookup, which would block): else RT_EINVAL. The
 * owner gets RT_STREAM_CONNECTED|RT_STREAM_WRITABLE when it completes, or
 * RT_STREAM_CLOSED when it failed, even at once (reads then fail with
 * RT_ECONNREFUSED, or RT_EIO for an address that cannot be reached). */
int net_live_connect(net_live_t *live, const char *host, uint16_t port,
                     rt_actor_id_t owner, rt_stream_t **out);

#endif
