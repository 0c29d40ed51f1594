/* sim_int.h: internals shared inside sim/. */
#ifndef SIM_INT_H
#define SIM_INT_H

#include "sim_pipe.h"
#include "sim_world.h"

typedef struct sim_pipe sim_pipe_t;
typedef struct sim_listener sim_listener_t;

struct sim_world {
  rt_world_t *world;
  sim_config_t cfg;
  sim_pipe_t *pipes; /* every live pipe, newest first, for teardown */
  sim_listener_t *listeners[SIM_LISTENERS_MAX];
  sim_connect_links_fn *connect_links; /* NULL: default links, group 0 */
  void *connect_links_ctx;
};

void sim__pipes_destroy_all(sim_world_t *sw);
void sim__listeners_destroy_all(sim_world_t *sw);

/* sim_connect_async, whose pipe belongs to `group` (0: none). */
int sim__connect_async(sim_world_t *sw, uint16_t port, rt_actor_id_t owner,
                       const sim_link_config_t *up,
                       const sim_link_config_t *down, uint32_t group,
                       rt_stream_t **out);

#endif
