/* simrun_cluster.c: a run's instances (simrun.h, instances). One process is
 * one server in node 0, as ever. A cluster is several, each built by the
 * one server assembly (server_start) in its own node of the one world, on
 * its own port, joined through the Redis model (sim_redis.h) on
 * SIMRUN_REDIS_PORT, sharing one in-memory SQLite database (each instance
 * opens it, as instances on one machine share a file). The faults a
 * cluster meets (crash and restart, pause past the lease, Redis restarts,
 * partitions from Redis) and the invariants that span instances are here.
 *
 * Invariants of the cluster run (checked as it goes, simrun__cluster_check):
 *  (C1) A player is seated in a running game on at most one instance whose
 *       incarnation holds a live lease and is not marked dead. A paused or
 *       fenced owner may still hold a seat: it may not act on it (C3).
 *  (C2) Nobody is matched with himself (simrun_records.c, at GAME_START).
 *  (C3) A game whose owner crashed with it running ends stored: with the
 *       result its owner had claimed (end:R "done") if it had, as
 *       server_lost if it was still being played, and either way if it
 *       had ended with its claim on the way (it may land after the
 *       crash): checked at L1 for every room a crash took, field by field
 *       (nothing lost, never a result its owner did not reach).
 *  (C4) Every GAME_OVER a player sees is the shared Store's row, stored
 *       once (simrun_checks.c, as for one process, over the one Store).
 *  (C5) A game running on an instance that holds a live lease is one Redis
 *       gives to that instance's current incarnation, if Redis knows it.
 *  (C6) A game stored with a result (not server_lost) is one its owner
 *       claimed (end:R "done"): a fenced owner, or one whose game was found
 *       lost, records nothing (checked with every GAME_OVER a player sees,
 *       while Redis has kept its data through the run).
 *  (C7) No ticket is matched after its incarnation's lease lapsed, and no
 *       instance whose own lease lapsed matches: the checker reads every
 *       renewal and every match as the model runs them (an observer, not
 *       the data they wrote) and fails a match at Redis time t of a
 *       ticket of E, or by E, when t is past E's last renewal plus its
 *       lease plus SIMRUN_LEASE_SLACK_MS (0: Redis's clock decides, and
 *       the world has one clock).
 * Per-instance checks (rt_world_check, game_check) run on each instance
 * that is up and not paused: a paused one's views lag by design.
 */
#include "simrun_int.h"

#include "game_check.h"
#include "game_cluster.h"
#include "game_store.h"
#include "rt_assert.h"
#include "rt_hash.h"
#include "sim_pipe.h"
#include "sim_redis.h"

#include <hiredis/hiredis.h>

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define KEY_CLUSTER RT_RNG_KEY(RT_RNG_SUB_SIM_FAULT, 4)
#define RESTART_MIN (1 * SEC)
#define RESTART_MAX (5 * SEC)
#define REDIS_DOWN_MIN (100 * MS)
#define REDIS_DOWN_MAX (3 * SEC)
#define PARTITION_MIN (500 * MS)
#define PARTITION_MAX (6 * SEC)
#define PAUSE_PAST_LEASE_MIN (100 * MS)
#define PAUSE_PAST_LEASE_MAX (2 * SEC)
#define LEASE_DEFAULT (3 * SEC) /* game_cluster's */

static void observe(void *ctx, int argc, const char *const *argv,
                    const size_t *lens, const uint8_t *reply, size_t len,
                    rt_time_ns now);

/* ---- Instances ----------------------------------------------------------- */

const game_store_t *simrun__store(const simrun_t *run) {
  return run->reader != NULL ? run->reader : game_store(run->game);
}

static int inst_listen(void *ctx, rt_listener_t **out) {
  simrun_t *run = ctx;
  return sim_listen(run->sw, run->inst[run->starting].port, 0, out);
}

static rt_time_ns lease_of(const simrun_t *run) {
  return run->cfg.lease > 0 ? run->cfg.lease : LEASE_DEFAULT;
}

/* Build instance i (again, after a crash) in its node: the server as every
 * program builds it, with the run's rules and limits, no static files, the
 * Store failing through the run's hook, and in a cluster its Redis. */
static int inst_start(simrun_t *run, uint32_t i) {
  simrun_inst_t *in = &run->inst[i];
  const simrun_config_t *cfg = &run->cfg;
  server_options_t o;
  server_options_default(&o);
  o.static_dir = NULL;
  o.game = cfg->game;
  o.max_connections = cfg->connections_max;
  o.ws_message_max = cfg->ws_message_max;
  o.ws_park_after = cfg->ws_park_after;
  o.mailbox_cap = cfg->mailbox_cap;
  char redis[64], url[64];
  if (run->cluster) {
    snprintf(redis, sizeof(redis), "redis://127.0.0.1:%u", SIMRUN_REDIS_PORT);
    if (in->generation == 0)
      snprintf(in->id, sizeof(in->id), "i%u", i + 1);
    else
      snprintf(in->id, sizeof(in->id), "i%u.%u", i + 1, in->generation);
    snprintf(url, sizeof(url), "ws://127.0.0.1:%u/ws", in->port);
    o.redis = redis;
    o.instance_id = in->id;
    o.public_url = url;
    o.lease = cfg->lease;
  }
  game_store_config_t store = {.path = run->cluster ? run->db_uri : ":memory:",
                               .fault = simrun__store_fault,
                               .fault_ctx = run};
  rt_world_stats_t before, after;
  rt_world_stats(run->w, &before);
  (void)rt_world_set_node(run->w, in->node);
  run->starting = i;
  char err[256];
  int rc = server_start(run->w, &o, SIMRUN_SECRET, &store, inst_listen, run,
                        &in->server, err, sizeof(err));
  (void)rt_world_set_node(run->w, 0);
  rt_world_stats(run->w, &after);
  in->baseline = after.actors_live - before.actors_live;
  if (rc < 0) {
    rt_log(run->w, RT_LOG_ERROR, "simrun.instance_start",
           "instance=%s err=\"%s\"", in->id, err);
    return rc;
  }
  in->up = true;
  return RT_OK;
}

/* The links of an instance's connections to Redis (its Cluster's): the
 * run's Redis latency and jitter, grouped by node so a partition cuts one
 * instance off. */
static void redis_links(void *ctx, rt_actor_id_t owner, uint16_t port,
                        sim_link_config_t *up, sim_link_config_t *down,
                        uint32_t *group) {
  simrun_t *run = ctx;
  if (port != SIMRUN_REDIS_PORT)
    return;
  up->latency = down->latency = run->cfg.faults.rlatency;
  up->jitter = down->jitter = run->cfg.faults.rjitter;
  *group = rt_actor_node(run->w, owner);
}

int simrun__instances_start(simrun_t *run) {
  uint32_t k = run->cfg.instances;
  run->cluster = k >= 2;
  run->inst_len = run->cluster ? k : 1;
  if (run->cluster) {
    rt_world_rng(run->w, KEY_CLUSTER, &run->cluster_rng);
    /* One database per run, shared by its instances' connections. */
    snprintf(run->db_uri, sizeof(run->db_uri),
             "file:simrun-%p?mode=memory&cache=shared", (void *)run);
    run->redis = sim_redis_create(NULL);
    run->epochs = calloc(SIMRUN_EPOCHS_MAX, sizeof(*run->epochs));
    if (run->redis == NULL || run->epochs == NULL)
      return RT_ENOMEM;
    sim_redis_set_observer(run->redis, observe, run);
    int rc = sim_redis_listen(run->redis, run->sw, SIMRUN_REDIS_PORT);
    if (rc < 0)
      return rc;
    game_store_config_t st = {.path = run->db_uri};
    rc = game_store_start(run->w, &st, &run->reader);
    if (rc < 0)
      return rc;
    run->redis_at = run->redis_back = NEVER;
    sim_world_set_connect_links(run->sw, redis_links, run);
  }
  for (uint32_t i = 0; i < run->inst_len; i++) {
    simrun_inst_t *in = &run->inst[i];
    in->port = (uint16_t)(SIMRUN_PORT + i);
    in->node = run->cluster ? i + 1 : 0;
    in->restart_at = in->pause_end = in->partition_end = NEVER;
    in->crash_at = in->pause_at = in->partition_at = NEVER;
    /* Processes never start in the same nanosecond: the ids a game draws
     * mix in its start time (game.c), as they would live. */
    if (i > 0)
      rt_world_set_time(run->w, rt_now(run->w) + RT_NS_PER_US);
    int rc = inst_start(run, i);
    if (rc < 0)
      return rc;
  }
  run->game = run->inst[0].server.game;
  run->srv = run->inst[0].server.srv;
  return RT_OK;
}

void simrun__instances_free(simrun_t *run) {
  for (uint32_t i = 0; i < run->inst_len; i++)
    server_free(&run->inst[i].server);
  for (uint32_t i = 0; i < run->retired_len; i++)
    server_free(&run->retired[i]);
  free(run->retired);
  free(run->lost_rooms);
  free(run->flushed_rooms);
  free(run->epochs);
  free(run->c1_set);
  if (run->resp != NULL)
    redisReaderFree(run->resp);
  game_store_free(run->reader);
  sim_redis_destroy(run->redis);
}

uint16_t simrun__move_port(const simrun_t *run, const char *url) {
  static const char prefix[] = "ws://127.0.0.1:";
  if (strncmp(url, prefix, sizeof(prefix) - 1) != 0)
    return 0;
  unsigned port = 0;
  if (sscanf(url + sizeof(prefix) - 1, "%5u/ws", &port) != 1)
    return 0;
  for (uint32_t i = 0; i < run->inst_len; i++)
    if (run->inst[i].port == port)
      return (uint16_t)port;
  return 0;
}

uint16_t simrun__pick_port(simrun_t *run, player_t *p) {
  if (!run->cluster)
    return 0; /* the one server's */
  if (p->moved)
    return p->port;
  if (rt_rng_double(&p->frng) < 0.5)
    p->port = run->inst[rt_rng_range(&p->frng, 0, run->inst_len - 1)].port;
  return p->port;
}

/* ---- Faults -------------------------------------------------------------- */

/* The next event of a Poisson process with `per_minute` chance a minute. */
static rt_time_ns next_event(rt_rng_t *rng, rt_time_ns now, double per_minute) {
  if (per_minute <= 0)
    return NEVER;
  double gap = -log(1.0 - rt_rng_double(rng)) / per_minute * 60.0;
  return now + (rt_time_ns)(gap * (double)SEC);
}

static bool keep_counts(simrun_t *run, const server_t *dead) {
  if (run->retired_len == SIMRUN_RETIRED_MAX)
    return false;
  if (run->retired == NULL) {
    run->retired = calloc(SIMRUN_RETIRED_MAX, sizeof(*run->retired));
    if (run->retired == NULL)
      return false;
  }
  run->retired[run->retired_len++] = *dead;
  return true;
}

static bool was_flushed(const simrun_t *run, const char *room) {
  for (uint32_t k = 0; k < run->flushed_rooms_len; k++)
    if (strcmp(run->flushed_rooms[k], room) == 0)
      return true;
  return false;
}

static bool end_claimed(simrun_t *run, const char *room);

/* The rooms a crash takes, for (C3): those not stored yet. One whose
 * Redis record a restart without data took, while its owner, not told yet
 * (paused, say), ran it, is known nowhere now: forgotten, counted. One
 * whose end its owner had claimed must be stored with the owner's result
 * (its reaper stores it, game_cluster.h (2)); one still running,
 * server_lost; one that had ended, its claim sent but not yet run, either
 * (the claim may still land: the swarm's seed 30856). */
static void note_lost_rooms(simrun_t *run, const simrun_inst_t *in) {
  uint32_t n = 0;
  uint64_t *ids = game_live_rooms(in->server.game, &n);
  for (uint32_t k = 0; k < n; k++) {
    char room[32];
    game_result_t row;
    if (game_room_public_id(in->server.game, ids[k], room, sizeof(room)) != 1 ||
        game_store_find_game(simrun__store(run), room, &row) == 1)
      continue;
    if (was_flushed(run, room)) {
      run->sum.rooms_forgotten++;
      continue;
    }
    if (run->lost_rooms_len == SIMRUN_LOST_ROOMS_MAX)
      break; /* enough to check; more would only cost memory */
    if (run->lost_rooms == NULL &&
        (run->lost_rooms =
             calloc(SIMRUN_LOST_ROOMS_MAX, sizeof(*run->lost_rooms))) == NULL)
      break;
    simrun_lost_room_t *l = &run->lost_rooms[run->lost_rooms_len++];
    memset(l, 0, sizeof(*l));
    snprintf(l->room, sizeof(l->room), "%s", room);
    l->ended = game_room_result(in->server.game, ids[k], &l->result) == 1;
    l->claimed = l->ended && end_claimed(run, room);
  }
  if (n > 0)
    run->sum.cov[SIMRUN_COV_OWNER_CRASH]++;
  free(ids);
}

static void inst_crash(simrun_t *run, uint32_t i, rt_time_ns now) {
  simrun_inst_t *in = &run->inst[i];
  if (run->retired_len == SIMRUN_RETIRED_MAX)
    return; /* its counters would be lost: no more crashes this run */
  note_lost_rooms(run, in);
  rt_log(run->w, RT_LOG_INFO, "simrun.crash", "instance=%s node=%u", in->id,
         in->node);
  rt_world_node_resume(run->w, in->node);
  (void)rt_world_node_stop(run->w, in->node, RT_REASON_SHUTDOWN);
  run->baseline_actors -= in->baseline;
  (void)keep_counts(run, &in->server);
  memset(&in->server, 0, sizeof(in->server));
  in->up = in->paused = false;
  in->pause_end = NEVER;
  in->restart_at =
      now + simrun__uniform_ns(&run->cluster_rng, RESTART_MIN, RESTART_MAX);
  run->sum.crashes++;
}

static void inst_restart(simrun_t *run, uint32_t i) {
  simrun_inst_t *in = &run->inst[i];
  in->restart_at = NEVER;
  in->generation++;
  if (inst_start(run, i) < 0) {
    simrun__fail(run, "instance %u could not restart", i + 1);
    return;
  }
  if (i == 0) { /* simrun_game and simrun_server name the one running */
    run->game = in->server.game;
    run->srv = in->server.srv;
  }
  run->baseline_actors += in->baseline;
  rt_log(run->w, RT_LOG_INFO, "simrun.restart", "instance=%s", in->id);
}

static void inst_pause(simrun_t *run, uint32_t i, rt_time_ns now) {
  simrun_inst_t *in = &run->inst[i];
  rt_world_node_pause(run->w, in->node);
  in->paused = true;
  in->pause_end = now + lease_of(run) +
                  simrun__uniform_ns(&run->cluster_rng, PAUSE_PAST_LEASE_MIN,
                                     PAUSE_PAST_LEASE_MAX);
  run->sum.pauses++;
  rt_log(run->w, RT_LOG_INFO, "simrun.pause", "instance=%s until=%.3f", in->id,
         (double)in->pause_end / SEC);
}

static void inst_wake(simrun_t *run, uint32_t i) {
  simrun_inst_t *in = &run->inst[i];
  rt_world_node_resume(run->w, in->node);
  in->paused = false;
  in->pause_end = NEVER;
}

static void redis_down(simrun_t *run, rt_time_ns now) {
  sim_redis_stop(run->redis);
  run->redis_keep = rt_rng_double(&run->cluster_rng) < 0.5;
  run->redis_back = now + simrun__uniform_ns(&run->cluster_rng, REDIS_DOWN_MIN,
                                             REDIS_DOWN_MAX);
  run->sum.redis_restarts++;
  rt_log(run->w, RT_LOG_INFO, "simrun.redis_down", "keep_data=%d",
         run->redis_keep);
}

/* (C3) The rooms crashes took that nobody stored before Redis lost its
 * data are known nowhere now: forgotten, counted, no longer checked. (A
 * durable record of games in progress would keep them; see simrun.h.) */
static void forget_lost_rooms(simrun_t *run) {
  uint32_t kept = 0;
  for (uint32_t k = 0; k < run->lost_rooms_len; k++) {
    game_result_t row;
    if (game_store_find_game(simrun__store(run), run->lost_rooms[k].room,
                             &row) == 1)
      run->lost_rooms[kept++] = run->lost_rooms[k];
    else
      run->sum.rooms_forgotten++;
  }
  run->lost_rooms_len = kept;
}

/* The rooms running as Redis lost its data, for note_lost_rooms. All of
 * them: one left out would fail the run when a crash takes it. */
static void note_flushed_rooms(simrun_t *run) {
  for (uint32_t i = 0; i < run->inst_len && !run->failed; i++) {
    const simrun_inst_t *in = &run->inst[i];
    if (!in->up)
      continue;
    uint32_t n = 0;
    uint64_t *ids = game_live_rooms(in->server.game, &n);
    char(*grown)[32] =
        n == 0 ? run->flushed_rooms
               : realloc(run->flushed_rooms,
                         (size_t)(run->flushed_rooms_len + n) * sizeof(*grown));
    if (n > 0 && (ids == NULL || grown == NULL)) {
      free(ids);
      simrun__fail(run, "out of memory noting the rooms Redis lost");
      return;
    }
    run->flushed_rooms = grown;
    for (uint32_t k = 0; k < n; k++)
      if (game_room_public_id(in->server.game, ids[k],
                              run->flushed_rooms[run->flushed_rooms_len],
                              32) == 1)
        run->flushed_rooms_len++;
    free(ids);
  }
}

static void redis_up(simrun_t *run) {
  if (!run->redis_keep) {
    sim_redis_flush(run->redis);
    forget_lost_rooms(run);
    note_flushed_rooms(run);
    run->redis_flushes++;
  }
  if (sim_redis_listen(run->redis, run->sw, SIMRUN_REDIS_PORT) < 0)
    simrun__fail(run, "the Redis model could not serve again");
  run->redis_back = NEVER;
  run->redis_recovering = true;
}

static void inst_partition(simrun_t *run, uint32_t i, rt_time_ns now) {
  simrun_inst_t *in = &run->inst[i];
  in->partition_end =
      now + simrun__uniform_ns(&run->cluster_rng, PARTITION_MIN, PARTITION_MAX);
  if (sim_world_partition(run->sw, in->node, SIMRUN_REDIS_PORT,
                          in->partition_end) < 0) {
    in->partition_end = NEVER;
    return;
  }
  run->sum.partitions++;
  rt_log(run->w, RT_LOG_INFO, "simrun.partition", "instance=%s until=%.3f",
         in->id, (double)in->partition_end / SEC);
}

static void arm(simrun_t *run, rt_time_ns now) {
  const simrun_faults_t *f = &run->cfg.faults;
  for (uint32_t i = 0; i < run->inst_len; i++) {
    simrun_inst_t *in = &run->inst[i];
    if (in->crash_at == NEVER)
      in->crash_at = next_event(&run->cluster_rng, now, f->crash);
    if (in->pause_at == NEVER)
      in->pause_at = next_event(&run->cluster_rng, now, f->pause);
    if (in->partition_at == NEVER)
      in->partition_at = next_event(&run->cluster_rng, now, f->partition);
  }
  if (run->redis_at == NEVER)
    run->redis_at = next_event(&run->cluster_rng, now, f->redis);
}

void simrun__cluster_faults(simrun_t *run, rt_time_ns now) {
  if (!run->cluster)
    return;
  if (!run->armed) {
    run->armed = true;
    arm(run, now);
  }
  for (uint32_t i = 0; i < run->inst_len && !run->failed; i++) {
    simrun_inst_t *in = &run->inst[i];
    if (in->paused && now >= in->pause_end)
      inst_wake(run, i);
    if (!in->up && now >= in->restart_at)
      inst_restart(run, i);
    if (run->faults_over)
      continue;
    if (now >= in->crash_at) {
      in->crash_at = NEVER;
      if (in->up)
        inst_crash(run, i, now);
    }
    if (now >= in->pause_at) {
      in->pause_at = NEVER;
      if (in->up && !in->paused)
        inst_pause(run, i, now);
    }
    if (now >= in->partition_end)
      in->partition_end = NEVER; /* healed by the world at that instant */
    if (now >= in->partition_at) {
      in->partition_at = NEVER;
      if (in->partition_end == NEVER)
        inst_partition(run, i, now);
    }
  }
  if (run->redis_back != NEVER && now >= run->redis_back)
    redis_up(run);
  if (!run->faults_over && now >= run->redis_at) {
    run->redis_at = NEVER;
    if (run->redis_back == NEVER)
      redis_down(run, now);
  }
  if (!run->faults_over)
    arm(run, now);
}

void simrun__cluster_faults_end(simrun_t *run) {
  if (!run->cluster)
    return;
  for (uint32_t i = 0; i < run->inst_len; i++) {
    simrun_inst_t *in = &run->inst[i];
    in->crash_at = in->pause_at = in->partition_at = NEVER;
  }
  run->redis_at = NEVER;
}

rt_time_ns simrun__cluster_next(const simrun_t *run) {
  if (!run->cluster)
    return NEVER;
  rt_time_ns next = run->redis_back;
  if (!run->faults_over && run->redis_at < next)
    next = run->redis_at;
  for (uint32_t i = 0; i < run->inst_len; i++) {
    const simrun_inst_t *in = &run->inst[i];
    const rt_time_ns t[] = {in->pause_end, in->restart_at,
                            run->faults_over ? NEVER : in->crash_at,
                            run->faults_over ? NEVER : in->pause_at,
                            run->faults_over ? NEVER : in->partition_at};
    for (size_t k = 0; k < sizeof(t) / sizeof(t[0]); k++)
      if (t[k] < next)
        next = t[k];
  }
  return next;
}

/* ---- Checks -------------------------------------------------------------- */

/* (C7) The bound stated: how long past its lapse, in Redis's time, a
 * lease may still let its ticket be matched. */
#define SIMRUN_LEASE_SLACK_MS 0

static simrun_epoch_t *epoch_find(simrun_t *run, const char *e, size_t len) {
  for (uint32_t i = 0; i < run->epochs_len; i++)
    if (run->epochs[i].len == len && memcmp(run->epochs[i].e, e, len) == 0)
      return &run->epochs[i];
  return NULL;
}

/* A renewal: E's lease key lives through now + lease (ms), as SET PX. */
static void saw_renew(simrun_t *run, const char *const *argv,
                      const size_t *lens, const redisReply *r, int64_t now) {
  if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
      r->element[0]->type != REDIS_REPLY_INTEGER || r->element[0]->integer != 1)
    return; /* fenced, or Redis lost the data: nothing renewed */
  long long lease = strtoll(argv[5], NULL, 10);
  simrun_epoch_t *ep = epoch_find(run, argv[3], lens[3]);
  if (ep == NULL) {
    if (run->epochs_len == SIMRUN_EPOCHS_MAX || lens[3] >= SIMRUN_EPOCH_MAX) {
      simrun__fail(run,
                   "cluster: more incarnations than (C7) tracks (%u), or one "
                   "of %zu bytes",
                   SIMRUN_EPOCHS_MAX, lens[3]);
      return;
    }
    ep = &run->epochs[run->epochs_len++];
    memcpy(ep->e, argv[3], lens[3]);
    ep->e[lens[3]] = '\0';
    ep->len = lens[3];
  }
  ep->lapse_ms = now + lease;
}

/* (C7) on a lease: E's, at Redis time now, in the role named. */
static void lease_held(simrun_t *run, const char *e, size_t len, int64_t now,
                       const char *role, const char *player) {
  const simrun_epoch_t *ep = epoch_find(run, e, len);
  if (ep == NULL)
    simrun__fail(run,
                 "cluster: (C7) %s %.*s matched %s at %.3f s, and it never "
                 "renewed a lease",
                 role, (int)len, e, player, (double)now / 1000);
  else if (now > ep->lapse_ms + SIMRUN_LEASE_SLACK_MS)
    simrun__fail(run,
                 "cluster: (C7) %s %s matched %s at %.3f s, %.3f s after its "
                 "lease lapsed (at %.3f s)",
                 role, ep->e, player, (double)now / 1000,
                 (double)(now - ep->lapse_ms) / 1000,
                 (double)ep->lapse_ms / 1000);
}

static void saw_match(simrun_t *run, const char *const *argv,
                      const size_t *lens, const redisReply *r, int64_t now) {
  if (r->type != REDIS_REPLY_ARRAY || r->elements < 4 ||
      r->element[0]->type != REDIS_REPLY_STRING ||
      strcmp(r->element[0]->str, "matched") != 0 ||
      r->element[1]->type != REDIS_REPLY_STRING ||
      r->element[3]->type != REDIS_REPLY_STRING)
    return;
  run->sum.matches_checked++;
  const redisReply *opp = r->element[3];
  lease_held(run, argv[5], lens[5], now, "the matching incarnation", argv[3]);
  if (!run->failed)
    lease_held(run, opp->str, opp->len, now, "the ticket's incarnation",
               r->element[1]->str);
}

/* One whole reply the model wrote, decoded by hiredis's reader (one per
 * run, kept between replies: a check reads thousands); NULL when it is not
 * one whole reply. The caller frees it. */
static redisReply *read_reply(simrun_t *run, const uint8_t *data, size_t len) {
  if (run->resp == NULL && (run->resp = redisReaderCreate()) == NULL)
    return NULL;
  void *rep = NULL;
  if (redisReaderFeed(run->resp, (const char *)data, len) != REDIS_OK ||
      redisReaderGetReply(run->resp, &rep) != REDIS_OK || rep == NULL) {
    if (rep != NULL)
      freeReplyObject(rep);
    redisReaderFree(run->resp); /* an error or a part: start afresh */
    run->resp = NULL;
    return NULL;
  }
  return rep;
}

/* The model's observer: every renewal and every match the Clusters ran. */
static void observe(void *ctx, int argc, const char *const *argv,
                    const size_t *lens, const uint8_t *reply, size_t len,
                    rt_time_ns now) {
  simrun_t *run = ctx;
  if (run->failed || argc < 4 || strcasecmp(argv[0], "EVAL") != 0)
    return;
  game_cluster_step_t step = game_cluster_step_of(argv[1], lens[1]);
  /* RENEW's ARGV[1..4] and MATCH's ARGV[1..7] are argv[3..]. */
  if (!(step == GAME_CLUSTER_STEP_RENEW && argc >= 7) &&
      !(step == GAME_CLUSTER_STEP_MATCH && argc >= 10))
    return;
  redisReply *rep = read_reply(run, reply, len);
  if (rep == NULL) {
    simrun__fail(run, "cluster: (C7) cannot read the model's reply");
    return;
  }
  int64_t now_ms = now / RT_NS_PER_MS; /* the model's own rounding */
  if (step == GAME_CLUSTER_STEP_RENEW)
    saw_renew(run, argv, lens, rep, now_ms);
  else
    saw_match(run, argv, lens, rep, now_ms);
  freeReplyObject(rep);
}

/* The checks read the model as it stands (sim_redis_peek): no command is
 * run, nothing swept, no observer called, so how often a run checks
 * changes nothing it does. Whether `key` exists now (of any type). */
static bool model_exists(simrun_t *run, const char *key) {
  char v[2];
  return sim_redis_peek(run->redis, key, NULL, simrun__now(run), v,
                        sizeof(v)) != 0;
}

/* Redis holds end:R "done": the room's owner claimed its end. */
static bool end_claimed(simrun_t *run, const char *room) {
  char key[64], end[16];
  snprintf(key, sizeof(key), "oc:end:%s", room);
  return sim_redis_peek(run->redis, key, NULL, simrun__now(run), end,
                        sizeof(end)) == 1 &&
         strcmp(end, "done") == 0;
}

/* (C6) A game stored with a result (not server_lost) was claimed by its
 * owner. Unknowable once Redis lost its data during the run (then true). */
bool simrun__end_claimed(simrun_t *run, const char *room) {
  if (!run->cluster || run->redis_flushes > 0)
    return true;
  return end_claimed(run, room);
}

/* The instance's incarnation holds a live lease and is not marked dead. */
static bool lease_live(simrun_t *run, const simrun_inst_t *in) {
  const char *e = game_cluster_epoch(in->server.game);
  if (e[0] == '\0')
    return false;
  char key[128];
  snprintf(key, sizeof(key), "oc:lease:%s", e);
  if (!model_exists(run, key))
    return false;
  snprintf(key, sizeof(key), "oc:dead:%s", e);
  return !model_exists(run, key);
}

/* (C1) over every seat of every live instance: a player seen seated on a
 * second one fails. One pass over each Manager's rooms, the seats' ids
 * put in a small open-addressed set (hash, instance) that lives in the
 * cache: looking every known player up on every instance, then the
 * runner's own players by id, were a tenth of a 4,000-player cluster's
 * checks. */
typedef struct c1_pass {
  simrun_t *run;
  uint32_t inst; /* the instance whose seats are walked */
  bool naming;   /* a failure fails the run (else it is only noted) */
  bool found;    /* a player seated on two instances was seen */
} c1_pass_t;

/* Twice the slots, the pass's seats rehashed. */
static int c1_grow(simrun_t *run) {
  uint32_t slots = 2 * (run->c1_mask + 1);
  simrun_seat_t *set = calloc(slots, sizeof(*set));
  if (set == NULL)
    return RT_ENOMEM;
  for (uint32_t i = 0; i <= run->c1_mask; i++) {
    if (run->c1_set[i].id == NULL)
      continue;
    uint32_t s = (uint32_t)run->c1_set[i].hash & (slots - 1);
    while (set[s].id != NULL)
      s = (s + 1) & (slots - 1);
    set[s] = run->c1_set[i];
  }
  free(run->c1_set);
  run->c1_set = set;
  run->c1_mask = slots - 1;
  return RT_OK;
}

static void c1_seat(void *ctx, const char *id, rt_actor_id_t room,
                    uint32_t role) {
  (void)room;
  (void)role;
  c1_pass_t *c = ctx;
  simrun_t *run = c->run;
  if (run->failed)
    return;
  if (2 * (run->c1_len + 1) > run->c1_mask + 1 && c1_grow(run) < 0) {
    simrun__fail(run, "cluster: (C1) out of memory");
    return;
  }
  uint64_t h = rt_hash_bytes(id, strlen(id), 0x63315f7365617473ULL);
  uint32_t s = (uint32_t)h & run->c1_mask;
  for (; run->c1_set[s].id != NULL; s = (s + 1) & run->c1_mask) {
    const simrun_seat_t *e = &run->c1_set[s];
    if (e->hash != h || strcmp(e->id, id) != 0)
      continue;
    if (e->inst != c->inst && !c->naming) {
      c->found = true;
    } else if (e->inst != c->inst) {
      const player_t *p = simrun__ids_find(run, id);
      simrun__fail(run,
                   "cluster: %s (%s) plays on %s and on %s, both holding "
                   "live leases",
                   p != NULL ? p->name : "a player", id, run->inst[e->inst].id,
                   run->inst[c->inst].id);
    }
    return; /* seated twice on one instance: its own game_check's */
  }
  run->c1_set[s] = (simrun_seat_t){.hash = h, .id = id, .inst = c->inst};
  run->c1_len++;
}

/* One pass over every live instance's seats: whether a player was seen
 * seated on two (failing the run with its name when naming). */
static bool c1_pass(simrun_t *run, const bool live[], bool naming) {
  if (run->c1_set == NULL) {
    if ((run->c1_set = calloc(64, sizeof(*run->c1_set))) == NULL) {
      simrun__fail(run, "cluster: (C1) out of memory");
      return false;
    }
    run->c1_mask = 63;
  } else { /* it keeps the size the busiest pass needed */
    memset(run->c1_set, 0, (size_t)(run->c1_mask + 1) * sizeof(*run->c1_set));
  }
  run->c1_len = 0;
  bool seen = false;
  for (uint32_t i = 0; i < run->inst_len && !run->failed; i++) {
    if (!live[i])
      continue;
    c1_pass_t c = {.run = run, .inst = i, .naming = naming};
    if (naming)
      game_each_seat(run->inst[i].server.game, c1_seat, &c);
    else
      game_each_seat_unordered(run->inst[i].server.game, c1_seat, &c);
    seen = seen || c.found;
  }
  return seen;
}

/* A pass in the Managers' slot order finds whether any player is seated
 * twice; only then a second, by room id, names the one a walk by id meets
 * first (sorting each Manager's rooms on every check was most of C1). */
static void check_one_room(simrun_t *run, const bool live[]) {
  if (c1_pass(run, live, false) && !run->failed)
    (void)c1_pass(run, live, true);
}

/* (C5) A game running on an instance that holds a live lease is the one
 * Redis names it the owner of, under its current incarnation: never a game
 * Redis gave to another (a room let go after a data loss seats nobody,
 * and a game whose end was claimed is no longer in Redis). */
typedef struct c5_room {
  simrun_t *run;
  const char *epoch; /* the instance's incarnation */
  /* The room the walk ended on (its Room's, borrowed) and the owner Redis
   * names for it. */
  const char *room;
  char owner[GAME_CLUSTER_ID_MAX + 16];
} c5_room_t;

static int c5_room(void *ctx, rt_actor_id_t id, const char *room,
                   bool detached) {
  (void)id;
  c5_room_t *c = ctx;
  if (detached)
    return 0;
  char key[64];
  snprintf(key, sizeof(key), "oc:room:%s", room);
  c->room = room;
  return sim_redis_peek(c->run->redis, key, "e", simrun__now(c->run), c->owner,
                        sizeof(c->owner)) == 1 &&
         c->owner[0] != '\0' && strcmp(c->owner, c->epoch) != 0;
}

static void check_owners(simrun_t *run, const bool live[]) {
  for (uint32_t i = 0; i < run->inst_len && !run->failed; i++) {
    const simrun_inst_t *in = &run->inst[i];
    if (!live[i] || in->paused)
      continue;
    c5_room_t c = {.run = run, .epoch = game_cluster_epoch(in->server.game)};
    if (game_check_each_room(in->server.game, c5_room, &c) != 0)
      simrun__fail(run,
                   "cluster: %s runs on %s (incarnation %s, lease live) but "
                   "Redis names %s its owner",
                   c.room, in->id, c.epoch, c.owner);
  }
}

int simrun__cluster_check(simrun_t *run) {
  if (!run->cluster || run->failed)
    return run->failed ? -1 : 0;
  char why[SIMRUN_FAILURE_MAX];
  for (uint32_t i = 0; i < run->inst_len; i++) {
    const simrun_inst_t *in = &run->inst[i];
    if (!in->up || in->paused)
      continue;
    if (game_check(in->server.game, why, sizeof(why)) < 0) {
      simrun__fail(run, "game on %s: %s", in->id, why);
      return -1;
    }
  }
  bool live[SIMRUN_INSTANCES_MAX];
  for (uint32_t i = 0; i < run->inst_len; i++)
    live[i] = run->inst[i].up && lease_live(run, &run->inst[i]);
  check_one_room(run, live);
  check_owners(run, live);
  return run->failed ? -1 : 0;
}

/* Whether the stored row is the room's own result, field by field. */
static bool same_result(const game_result_t *row, const game_result_t *want) {
  return strcmp(row->reason, want->reason) == 0 &&
         strcmp(row->winner, want->winner) == 0 &&
         row->p1_score == want->p1_score && row->p2_score == want->p2_score &&
         row->finished_at_s == want->finished_at_s &&
         strcmp(row->p1_id, want->p1_id) == 0 &&
         strcmp(row->p2_id, want->p2_id) == 0;
}

/* (C3) at L1: every room a crash took is stored: with the result its
 * owner had claimed, as server_lost if it still ran, else either. */
void simrun__check_lost_rooms(simrun_t *run) {
  for (uint32_t k = 0; k < run->lost_rooms_len && !run->failed; k++) {
    const simrun_lost_room_t *l = &run->lost_rooms[k];
    game_result_t row;
    int found = game_store_find_game(simrun__store(run), l->room, &row);
    if (found != 1) {
      simrun__fail(run,
                   "cluster: %s was running when its owner crashed and is "
                   "not stored at L1",
                   l->room);
      continue;
    }
    const game_result_t *want = &l->result;
    bool lost = strcmp(row.reason, "server_lost") == 0;
    if (!l->ended && !lost)
      simrun__fail(run,
                   "cluster: %s was running when its owner crashed, and is "
                   "stored as %s (winner %s), not server_lost",
                   l->room, row.reason, row.winner);
    else if (l->ended && !(lost && !l->claimed) && !same_result(&row, want))
      simrun__fail(run,
                   "cluster: %s, whose owner crashed after %s its end (%s, "
                   "winner %s, %d:%d), is stored as %s (winner %s, %d:%d)",
                   l->room, l->claimed ? "claiming" : "ending", want->reason,
                   want->winner, want->p1_score, want->p2_score, row.reason,
                   row.winner, row.p1_score, row.p2_score);
  }
}

/* Coverage from what the Clusters counted, live and crashed, and the
 * Redis restarts every Cluster came back from. */
void simrun__cluster_counts(const simrun_t *run, simrun_summary_t *out) {
  if (!run->cluster)
    return;
  out->instances = run->inst_len;
  const server_t *all[SIMRUN_INSTANCES_MAX + SIMRUN_RETIRED_MAX];
  uint32_t n = 0;
  for (uint32_t i = 0; i < run->inst_len; i++)
    if (run->inst[i].up)
      all[n++] = &run->inst[i].server;
  for (uint32_t i = 0; i < run->retired_len; i++)
    all[n++] = &run->retired[i];
  for (uint32_t i = 0; i < n; i++) {
    game_cluster_stats_t cs;
    if (game_cluster_get_stats(all[i]->game, &cs) != 1)
      continue;
    out->matches_cross += cs.matches_cross;
    out->fenced += cs.fenced;
    out->tickets_purged += cs.tickets_purged;
    out->server_lost += cs.server_lost;
    out->claims_stored += cs.claims_stored;
  }
  out->cov[SIMRUN_COV_CROSS_MATCH] = out->matches_cross;
  out->cov[SIMRUN_COV_STALE_FENCED] = out->fenced;
  out->cov[SIMRUN_COV_TICKET_PURGED] = out->tickets_purged;
  out->redis_digest = sim_redis_digest(run->redis, simrun__now(run));
}

/* After a Redis restart: once every instance that is up and awake is
 * joined again, the restart is recovered. */
void simrun__cluster_watch(simrun_t *run) {
  if (!run->cluster || !run->redis_recovering)
    return;
  for (uint32_t i = 0; i < run->inst_len; i++) {
    const simrun_inst_t *in = &run->inst[i];
    game_cluster_stats_t cs;
    if (in->up && !in->paused &&
        (game_cluster_get_stats(in->server.game, &cs) != 1 || cs.up != 1))
      return;
  }
  run->redis_recovering = false;
  run->sum.cov[SIMRUN_COV_REDIS_RECOVERED]++;
}

/* ---- On demand (simrun.h) ------------------------------------------------ */

static bool inst_ok(const simrun_t *run, uint32_t i) {
  return run->cluster && i < run->inst_len && run->inst[i].up;
}

int simrun_instance_crash(simrun_t *run, uint32_t i, rt_time_ns down) {
  if (!inst_ok(run, i) || down < 0 || run->retired_len == SIMRUN_RETIRED_MAX)
    return RT_EINVAL;
  rt_time_ns now = simrun__now(run);
  inst_crash(run, i, now);
  run->inst[i].restart_at = now + down;
  return RT_OK;
}

int simrun_instance_pause(simrun_t *run, uint32_t i, rt_time_ns pause) {
  if (!inst_ok(run, i) || run->inst[i].paused || pause <= 0)
    return RT_EINVAL;
  rt_time_ns now = simrun__now(run);
  inst_pause(run, i, now);
  run->inst[i].pause_end = now + pause;
  return RT_OK;
}

int simrun_instance_partition(simrun_t *run, uint32_t i, rt_time_ns cut) {
  if (!inst_ok(run, i) || cut <= 0)
    return RT_EINVAL;
  simrun_inst_t *in = &run->inst[i];
  in->partition_end = simrun__now(run) + cut;
  if (sim_world_partition(run->sw, in->node, SIMRUN_REDIS_PORT,
                          in->partition_end) < 0)
    return RT_EINVAL;
  run->sum.partitions++;
  return RT_OK;
}

int simrun_redis_restart(simrun_t *run, rt_time_ns down, bool keep_data) {
  if (!run->cluster || run->redis_back != NEVER || down <= 0)
    return RT_EINVAL;
  rt_time_ns now = simrun__now(run);
  redis_down(run, now);
  run->redis_keep = keep_data;
  run->redis_back = now + down;
  return RT_OK;
}

int simrun_redis_tamper(simrun_t *run, int argc, const char *const *argv) {
  if (!run->cluster || argc <= 0 || argc > 8)
    return RT_EINVAL;
  size_t lens[8];
  for (int i = 0; i < argc; i++)
    lens[i] = strlen(argv[i]);
  sim_redis_buf_t b;
  sim_redis_buf_init(&b);
  int rc = sim_redis_command(run->redis, NULL, argc, argv, lens,
                             simrun__now(run), &b);
  if (rc == 0 && (b.len == 0 || b.data[0] == '-'))
    rc = RT_EINVAL;
  sim_redis_buf_deinit(&b);
  return rc < 0 ? RT_EINVAL : RT_OK;
}

game_t *simrun_instance_game(simrun_t *run, uint32_t i) {
  return i < run->inst_len && run->inst[i].up ? run->inst[i].server.game : NULL;
}

net_server_t *simrun_instance_server(simrun_t *run, uint32_t i) {
  return i < run->inst_len && run->inst[i].up ? run->inst[i].server.srv : NULL;
}

const char *simrun_instance_id(const simrun_t *run, uint32_t i) {
  return i < run->inst_len ? run->inst[i].id : "";
}
