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
};

void sim__pipes_destroy_all(sim_world_t *sw);
void sim__listeners_destroy_all(sim_world_t *sw);

#endif
