/* sim_int.h: internals shared inside sim/. */
#ifndef SIM_INT_H
#define SIM_INT_H

#include "sim_bot.h"
#include "sim_pipe.h"
#include "sim_world.h"

typedef struct sim_pipe sim_pipe_t;
typedef struct sim_listener sim_listener_t;

/* One (group, port) partition (sim_world_partition). A slot is free when
 * its window has ended (until <= now) or was never used (group 0); each
 * pair has at most one slot, so a lookup finds one window or none. */
typedef struct sim_partition {
  uint32_t group; /* 0: never used */
  uint16_t port;
  rt_time_ns until;
} sim_partition_t;

typedef struct sim_spare {
  struct sim_spare *next;
} sim_spare_t;

struct sim_world {
  rt_world_t *world;
  sim_config_t cfg;
  sim_pipe_t *pipes; /* every live pipe, newest first, for teardown */
  sim_listener_t *listeners[SIM_LISTENERS_MAX];
  sim_connect_links_fn *connect_links; /* NULL: default links, group 0 */
  void *connect_links_ctx;
  sim_partition_t partitions[SIM_PARTITIONS_MAX];
  /* Rings and segment arrays of the first size, given back by directions
   * with nothing in flight (sim_pipe.c), last given first. */
  sim_spare_t *spare_rings, *spare_segs;
  uint32_t spare_rings_len, spare_segs_len;
};

void sim__pipes_destroy_all(sim_world_t *sw);
/* Frees the spare rings and segment arrays (at the world's end). */
void sim__spares_free(sim_world_t *sw);
void sim__listeners_destroy_all(sim_world_t *sw);

/* sim_connect_async, whose pipe belongs to `group` (0: none). */
int sim__connect_async(sim_world_t *sw, uint16_t port, rt_actor_id_t owner,
                       const sim_link_config_t *up,
                       const sim_link_config_t *down, uint32_t group,
                       rt_stream_t **out);

/* The first time at or after t when the partition of (group, port), if
 * any, no longer holds: t itself when none holds then. */
rt_time_ns sim__partition_release_at(const sim_world_t *sw, uint32_t group,
                                     uint16_t port, rt_time_ns t);

/* The partition of (group, port) changed: every such pipe re-arms its
 * arrival and connect timers against the new window. */
void sim__pipes_repartition(sim_world_t *sw, uint32_t group, uint16_t port);

/* sim_bot.c's reading of one server message: its kind, and its payload's
 * fields written into r as a bot's record keeps them. By rt_json's reader when
 * allow_fast and it takes the text (*fast), else by cJSON's; the two must
 * give the same answer (tests/sim/test_sim_bot_read.c). */
sim_bot_kind_t sim__bot_read(const uint8_t *data, size_t len, bool allow_fast,
                             sim_bot_record_t *r, bool *fast);

#endif
