#include "sim_int.h"

#include "rt_assert.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>

static void sim_log_write(void *ctx, const char *line, size_t len) {
  sim_world_t *sw = ctx;
  if (sw->cfg.log_write != NULL)
    sw->cfg.log_write(sw->cfg.log_ctx, line, len);
  else
    fwrite(line, 1, len, stderr);
}

/* rt_backend_t.connect: host must be a numeric IPv4 or IPv6 address, as
 * in the live world, so that a program that connects here does not fail
 * live on its address; which address does not matter: the simulated
 * network is one host, whose ports name its listeners (sim_listen). */
static int sim_backend_connect(void *ctx, const char *host, uint16_t port,
                               rt_actor_id_t owner, rt_stream_t **out) {
  sim_world_t *sw = ctx;
  struct in6_addr addr; /* room for either family */
  if (inet_pton(AF_INET, host, &addr) != 1 &&
      inet_pton(AF_INET6, host, &addr) != 1)
    return RT_EINVAL;
  if (sw->connect_links == NULL)
    return sim__connect_async(sw, port, owner, NULL, NULL, 0, out);
  sim_link_config_t up = {0}, down = {0};
  uint32_t group = 0;
  sw->connect_links(sw->connect_links_ctx, owner, port, &up, &down, &group);
  return sim__connect_async(sw, port, owner, &up, &down, group, out);
}

void sim_world_set_connect_links(sim_world_t *sw, sim_connect_links_fn *fn,
                                 void *ctx) {
  RT_ASSERT(sw != NULL);
  sw->connect_links = fn;
  sw->connect_links_ctx = fn != NULL ? ctx : NULL;
}

/* ---- Partitions ----------------------------------------------------------
 * Invariant P1: each (group, port) pair has at most one slot in
 * sw->partitions, whatever its window's state, so a lookup finds one
 * window or none and two slots never disagree about a pair. A slot whose
 * window has ended (until <= now) holds nothing and may be taken by
 * another pair. Slots are searched by index: the same calls take the same
 * slots in every run. */

static bool partition_ended(const sim_world_t *sw, const sim_partition_t *pt) {
  return pt->group == 0 || pt->until <= rt_now(sw->world);
}

/* The pair's own slot (Invariant P1), whether its window is on or not. */
static sim_partition_t *partition_find(sim_world_t *sw, uint32_t group,
                                       uint16_t port) {
  for (uint32_t i = 0; i < SIM_PARTITIONS_MAX; i++) {
    sim_partition_t *pt = &sw->partitions[i];
    if (pt->group == group && pt->port == port)
      return pt;
  }
  return NULL;
}

static sim_partition_t *partition_free_slot(sim_world_t *sw) {
  for (uint32_t i = 0; i < SIM_PARTITIONS_MAX; i++)
    if (partition_ended(sw, &sw->partitions[i]))
      return &sw->partitions[i];
  return NULL;
}

int sim_world_partition(sim_world_t *sw, uint32_t group, uint16_t port,
                        rt_time_ns until) {
  RT_ASSERT(sw != NULL);
  if (group == 0)
    return RT_EINVAL;
  sim_partition_t *pt = partition_find(sw, group, port);
  if (pt == NULL) {
    if (until <= rt_now(sw->world))
      return RT_OK; /* no window, and none asked for: nothing changes */
    pt = partition_free_slot(sw);
    if (pt == NULL)
      return RT_ELIMIT;
  }
  pt->group = group;
  pt->port = port;
  pt->until = until;
  rt_log(sw->world, RT_LOG_INFO, "sim_world.partition",
         "group=%" PRIu32 " port=%u until=%" PRId64, group, (unsigned)port,
         until);
  /* Timers armed for the old window now fire at the wrong time: a
   * shortened window must not wait for its old end. */
  sim__pipes_repartition(sw, group, port);
  return RT_OK;
}

rt_time_ns sim__partition_release_at(const sim_world_t *sw, uint32_t group,
                                     uint16_t port, rt_time_ns t) {
  RT_WASSERT(sw->world, group != 0);
  for (uint32_t i = 0; i < SIM_PARTITIONS_MAX; i++) {
    const sim_partition_t *pt = &sw->partitions[i];
    if (pt->group == group && pt->port == port)
      return t < pt->until ? pt->until : t; /* Invariant P1: the only one */
  }
  return t;
}

sim_world_t *sim_world_create(const sim_config_t *cfg) {
  sim_world_t *sw = calloc(1, sizeof(*sw));
  if (sw == NULL)
    return NULL;
  sw->cfg = *cfg;
  rt_world_config_t wc = {
      .seed = cfg->seed,
      .batch_max = cfg->batch_max,
      .actors_max = cfg->actors_max,
      .log_level = cfg->log_level,
      .epoch_unix_ns =
          cfg->epoch_unix_ns != 0 ? cfg->epoch_unix_ns : SIM_EPOCH_DEFAULT_NS,
      .trace = cfg->trace,
      .trace_ctx = cfg->trace_ctx,
  };
  /* The simulator polls; nobody needs waking. */
  rt_backend_t backend = {
      .wake = NULL, .log_write = sim_log_write, .connect = sim_backend_connect};
  sw->world = rt_world_create(&wc, &backend, sw);
  if (sw->world == NULL) {
    free(sw);
    return NULL;
  }
  return sw;
}

void sim_world_destroy(sim_world_t *sw) {
  if (sw == NULL)
    return;
  rt_world_stop_all(sw->world, RT_REASON_SHUTDOWN);
  /* Listeners first: closing one closes the server ends still waiting in
   * its accept queue, which live inside pipes freed just after. */
  sim__listeners_destroy_all(sw);
  sim__pipes_destroy_all(sw);
  sim__spares_free(sw);
  rt_world_destroy(sw->world);
  free(sw);
}

rt_world_t *sim_world_rt(sim_world_t *sw) { return sw->world; }

bool sim_world_step(sim_world_t *sw) {
  rt_world_t *w = sw->world;
  if (rt_world_has_ready(w)) {
    rt_world_run_ready(w, 1);
    return true;
  }
  rt_time_ns next = rt_world_next_deadline(w);
  if (next == RT_TIME_NEVER)
    return false;
  if (next > rt_now(w))
    rt_world_set_time(w, next);
  rt_world_fire_timers(w);
  return true;
}

sim_run_result_t sim_world_run(sim_world_t *sw, rt_time_ns until,
                               uint64_t turns_max) {
  rt_world_t *w = sw->world;
  uint64_t turns = 0;
  for (;;) {
    while (rt_world_has_ready(w)) {
      if (turns_max != 0 && turns >= turns_max)
        return SIM_RUN_TURNS;
      uint32_t budget = 4096;
      if (turns_max != 0 && turns_max - turns < budget)
        budget = (uint32_t)(turns_max - turns);
      turns += rt_world_run_ready(w, budget);
    }
    rt_time_ns next = rt_world_next_deadline(w);
    if (next == RT_TIME_NEVER)
      return SIM_RUN_IDLE;
    if (next > until) {
      if (until > rt_now(w))
        rt_world_set_time(w, until);
      return SIM_RUN_DEADLINE;
    }
    if (next > rt_now(w))
      rt_world_set_time(w, next);
    rt_world_fire_timers(w);
  }
}
