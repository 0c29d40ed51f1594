/* sim_world.h: the simulated world.
 *
 * A virtual clock that jumps straight to the next event, so a minute of play
 * takes microseconds; a seeded PRNG; in-memory pipes (sim_pipe.h). Nothing
 * here reads the wall clock or the OS: a run is a pure function of its seed
 * and its inputs, and its run hash (rt_world_hash) identifies it.
 *
 * Order of events (deterministic): ready actors run before the clock moves;
 * when none is ready the clock jumps to the earliest timer deadline and every
 * timer due then fires in (deadline, sequence) order.
 */
#ifndef SIM_WORLD_H
#define SIM_WORLD_H

#include "rt_stream.h"
#include "rt_world.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct sim_world sim_world_t;

#define SIM_LISTENERS_MAX 64u
#define SIM_ACCEPT_BACKLOG_DEFAULT 1024u

typedef struct sim_config {
  uint64_t seed;
  uint32_t batch_max; /* 0: runtime default */
  int log_level;      /* default RT_LOG_DEBUG (0); set RT_LOG_OFF for quiet */
  /* Log sink; NULL with a level below OFF: stderr. */
  void (*log_write)(void *ctx, const char *line, size_t len);
  void *log_ctx;
  uint32_t actors_max;   /* 0: runtime default */
  int64_t epoch_unix_ns; /* wall clock at time 0; 0: SIM_EPOCH_DEFAULT_NS */
  rt_trace_fn *trace;    /* delivery trace (rt_world.h); NULL: off */
  void *trace_ctx;       /* borrowed for the world's lifetime */
} sim_config_t;

/* 2026-01-01T00:00:00Z: a fixed wall clock keeps runs repeatable. */
#define SIM_EPOCH_DEFAULT_NS (1767225600LL * RT_NS_PER_S)

sim_world_t *sim_world_create(const sim_config_t *cfg);
/* Stops all actors, frees remaining pipes and listeners, then the world. */
void sim_world_destroy(sim_world_t *sw);
rt_world_t *sim_world_rt(sim_world_t *sw);

typedef enum sim_run_result {
  SIM_RUN_IDLE = 0,     /* nothing ready and no timer pending */
  SIM_RUN_DEADLINE = 1, /* the clock reached `until` */
  SIM_RUN_TURNS = 2,    /* turns_max turns ran first */
} sim_run_result_t;

/* Run until idle or until the clock would pass `until` (the clock is then
 * left at `until`), or until `turns_max` turns ran (0: no limit). */
sim_run_result_t sim_world_run(sim_world_t *sw, rt_time_ns until,
                               uint64_t turns_max);

/* One step: one actor turn if one is ready, else advance to the next timer
 * deadline and fire what is due. false when idle. For interleaving worlds. */
bool sim_world_step(sim_world_t *sw);

/* ---- Connections -----------------------------------------------------------
 * Bots and tests connect with sim_connect (sim_pipe.h). An actor connects
 * with rt_stream_connect, which in this world reaches the sim_listen port
 * `port` through the links the world's connect-links hook picks (below;
 * without one: instant, default buffer) and otherwise as sim_connect_async
 * does; host must be a numeric IPv4 or IPv6 address, as live (else
 * RT_EINVAL), and is otherwise ignored: the simulated network is one host.
 * No listener on the port: the stream gets RT_STREAM_CLOSED and reads
 * answer RT_ECONNREFUSED, as live. */

typedef struct sim_link_config sim_link_config_t; /* sim_pipe.h */

/* Picks the links of an actor's rt_stream_connect: up (client to server)
 * and down start zeroed (instant, default buffer); *group starts 0 and
 * names the connection for sim_world_partition.
 *
 * The program under test connects with rt_stream_connect alone, as it
 * does live, so a world of several servers and a simulated Redis needs
 * this one place to give each connection its network: the hook is told
 * who connects (`owner`, the connecting actor) and where (`port`), and
 * may fill up, down and *group. It runs inside rt_stream_connect (in the
 * connecting actor's turn), at most once per call: it must only fill its
 * outputs (no connects, writes or closes), and, to keep the run a
 * function of its seed, decide from its arguments and its own state. A
 * link sim_pipe_create rejects makes rt_stream_connect return RT_EINVAL. */
typedef void sim_connect_links_fn(void *ctx, rt_actor_id_t owner, uint16_t port,
                                  sim_link_config_t *up,
                                  sim_link_config_t *down, uint32_t *group);

/* Set the hook (ctx borrowed while it is set); NULL fn: defaults, as
 * before any hook, and group 0. Connections made before keep their links. */
void sim_world_set_connect_links(sim_world_t *sw, sim_connect_links_fn *fn,
                                 void *ctx);

/* ---- Partitions ------------------------------------------------------------
 * A cut between part of a cluster and a service (the servers of one group
 * and the Redis on its port, say), lifted at a set time, to test what the
 * program does while its peer is unreachable and after it comes back.
 *
 * Until world time `until`, nothing crosses between the client ends of
 * group `group` (group > 0; the group sim_connect_links_fn gave) and port
 * `port`: every such pipe, open now or connected before `until`, holds its
 * arrivals both ways until then (bytes written meanwhile wait, bounded by
 * the buffers as ever: the writer sees backpressure), and a connect made in
 * the window says RT_STREAM_CONNECTED no earlier than `until` (a refused
 * one: RT_STREAM_CLOSED no earlier than `until`). A later call extends or
 * shortens the window for that (group, port) (shortening: the held bytes
 * arrive from the new `until`, never before what was already scheduled);
 * an `until` not after now ends it at once. At most SIM_PARTITIONS_MAX
 * (group, port) pairs at once: RT_ELIMIT past it; an ended window frees its
 * slot. 0, RT_EINVAL (group 0) or RT_ELIMIT.
 *
 * What it guarantees, exactly (the window is a hold on arrivals, as
 * sim_stream_stall's is, not an outage of the link):
 *   - Order: held bytes and the EOF behind them arrive in the order
 *     written, at max(their own arrival time, `until`) (later if a stall
 *     holds them longer), together with any due by then; nothing
 *     overtakes (sim_pipe.h). Pipes released at the same time are served
 *     in the order their arrival timers were armed (a window's change
 *     re-arms its pipes oldest first), so a run repeats exactly.
 *   - No second latency: what was held arrives at `until` itself, not a
 *     latency after it, and a connect's round trip still counts from the
 *     connect (CONNECTED at max(connect + round trip, `until`)).
 *   - A connect still under way when a window starts or changes waits
 *     for the window too. Whether it is refused is decided when it is
 *     made, and its server end waits at the listener from then on, as
 *     with sim_connect_async: the server may accept it during the window,
 *     and sees nothing from it before `until`.
 *   - Not held: a reset (sim_stream_reset, a link's reset_after: both
 *     ends see RT_ERESET at once) and, once an end is closed, the RT_EPIPE
 *     its peer's writes get (its EOF is held like its bytes). Group 0
 *     pipes (sim_connect, sim_connect_async, sim_pipe_create) are never
 *     held. */
/* A test cuts a few groups from a few services at a time; a fixed table
 * keeps the lookup made for every arrival a short scan. */
#define SIM_PARTITIONS_MAX 16u

int sim_world_partition(sim_world_t *sw, uint32_t group, uint16_t port,
                        rt_time_ns until);

/* Listen on a simulated port (any number; a name for the server). */
int sim_listen(sim_world_t *sw, uint16_t port, rt_actor_id_t owner,
               rt_listener_t **out);

#endif
