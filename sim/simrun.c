/* simrun.c: a run's life (simrun.h): creating it around the game and the
 * server, the phases of virtual time (the fault end F, the wind-down at
 * duration, the recovery and liveness deadlines) and driving the world in
 * slices, between which the players' brains look (simrun_players.c) and
 * the checks run (simrun_checks.c).
 */
#include "simrun_int.h"

#include "game_check.h"
#include "game_store.h"
#include "rt_assert.h"
#include "sim_trace.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TURNS_PER_SLICE_MAX 50000000ull /* a livelock, not a busy slice */
#define RECORD_RESEND (5 * SEC) /* game_room.c's resend of a result */
#define LIVENESS_SLACK (5 * SEC)
#define CLUSTER_SLACK (20 * SEC)

void simrun_config_default(simrun_config_t *cfg) {
  memset(cfg, 0, sizeof(*cfg));
  cfg->seed = 1;
  cfg->players = 40;
  cfg->duration = 120 * SEC;
  simrun_faults_default(&cfg->faults);
  game_config_defaults(&cfg->game);
  cfg->log_level = RT_LOG_OFF;
}

void simrun__fail(simrun_t *run, const char *fmt, ...) {
  if (run->failed)
    return;
  run->failed = true;
  run->failed_at = simrun__now(run);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(run->failure, sizeof(run->failure), fmt, ap);
  va_end(ap);
  rt_log(run->w, RT_LOG_ERROR, "simrun.violation", "what=\"%s\"", run->failure);
}

/* ---- Creating a run ------------------------------------------------------ */

int simrun_create(const simrun_config_t *cfg, simrun_t **out) {
  const char *why = NULL;
  if (cfg->players > SIMRUN_PLAYERS_MAX || cfg->duration < 0 ||
      cfg->duration > SIMRUN_DURATION_MAX ||
      game_config_check(&cfg->game, &why) < 0)
    return RT_EINVAL;
  simrun_t *run = calloc(1, sizeof(*run));
  if (run == NULL)
    return RT_ENOMEM;
  run->cfg = *cfg;
  if (run->cfg.check_every <= 0)
    run->cfg.check_every = 100 * MS;
  if (run->cfg.slice <= 0)
    run->cfg.slice = 2 * MS;
  if (run->cfg.check_deliveries == 0)
    run->cfg.check_deliveries = SIMRUN_CHECK_DELIVERIES;
  run->fault_end = cfg->duration;
  if (cfg->faults.until > 0 && cfg->faults.until < cfg->duration)
    run->fault_end = cfg->faults.until;
  sim_config_t sc = {.seed = cfg->seed,
                     .log_level = cfg->log_level,
                     .log_write = cfg->log_write,
                     .log_ctx = cfg->log_ctx,
                     .trace = cfg->trace,
                     .trace_ctx = cfg->trace_ctx};
  run->sw = sim_world_create(&sc);
  int err = RT_ENOMEM;
  if (run->sw == NULL)
    goto fail;
  run->w = sim_world_rt(run->sw);
  run->ws_pool = net_ws_pool_create(true);
  if (run->ws_pool == NULL)
    goto fail;
  rt_world_rng(run->w, KEY_STORE_FAULTS, &run->store_rng);
  if (cfg->instances > SIMRUN_INSTANCES_MAX) {
    err = RT_EINVAL;
    goto fail;
  }
  err = simrun__instances_start(run);
  if (err < 0)
    goto fail;
  rt_world_stats_t ws;
  rt_world_stats(run->w, &ws);
  /* Per instance: acceptor, Manager, Store (and Cluster); the model's
   * acceptor and the runner's Store in a cluster. */
  run->baseline_actors = ws.actors_live;
  run->next_check = run->cfg.check_every;
  run->next_check_deliveries = run->cfg.check_deliveries;
  err = simrun__ids_grow(run, cfg->players > 0 ? cfg->players : 16);
  if (err < 0)
    goto fail;
  *out = run;
  return RT_OK;
fail:
  simrun_destroy(run);
  return err;
}

void simrun_destroy(simrun_t *run) {
  if (run == NULL)
    return;
  if (run->sw != NULL)
    sim_world_destroy(run->sw); /* stops every actor, bots included */
  simrun__instances_free(run);
  for (uint32_t i = 0; i < run->players_len; i++)
    for (uint32_t k = 0; k < SIMRUN_BOTS_PER_PLAYER; k++)
      simrun__destroy_bot(run, &run->players[i].bots[k]);
  free(run->players);
  free(run->wake);
  free(run->edge);
  free(run->news);
  free(run->ids);
  free(run->rec_rooms);
  free(run->rec_players);
  net_ws_pool_destroy(run->ws_pool); /* after every bot */
  free(run);
}

/* ---- Phases -------------------------------------------------------------- */

/* F: faults stop; what runs and who left is noted for R1 and R2. */
static void end_faults(simrun_t *run) {
  run->faults_over = true;
  for (uint32_t i = 0; i < run->players_len; i++) {
    player_t *p = &run->players[i];
    p->sched.stall_at = p->sched.reset_at = p->sched.churn_at = NEVER;
    simrun__lift_stall(p);
    if (p->reset_armed && simrun__cur_bot(p) != NULL)
      (void)sim_bot_reset_in(simrun__cur_bot(p), 0);
    p->reset_armed = false;
    p->sched.wake_at = 0;
    run->wake[i] = 0;
  }
  run->wake_min = 0;
  simrun__cluster_faults_end(run);
  for (uint32_t i = 0; i < run->inst_len; i++) {
    const simrun_inst_t *in = &run->inst[i];
    if (!in->up)
      continue;
    uint32_t n = 0;
    uint64_t *ids = game_live_rooms(in->server.game, &n);
    uint64_t *all = n == 0 ? NULL
                           : realloc(run->rec_rooms, (run->rec_rooms_len + n) *
                                                         sizeof(uint64_t));
    if (n > 0 && (ids == NULL || all == NULL)) {
      free(ids);
      simrun__fail(run, "out of memory noting the rooms at the fault end");
      return;
    }
    if (n > 0) {
      run->rec_rooms = all;
      memcpy(all + run->rec_rooms_len, ids, n * sizeof(uint64_t));
      run->rec_rooms_len += n;
    }
    free(ids);
  }
  run->rec_players = calloc(run->players_len + 1, sizeof(uint32_t));
  if (run->rec_players == NULL) {
    simrun__fail(run, "out of memory noting the players at the fault end");
    return;
  }
  for (uint32_t i = 0; i < run->players_len; i++)
    if (run->players[i].state == B_GONE && run->players[i].registered)
      run->rec_players[run->rec_players_len++] = i;
  run->sum.recovery_rooms = run->rec_rooms_len;
  run->sum.recovery_players = run->rec_players_len;
  rt_log(run->w, RT_LOG_INFO, "simrun.faults_end", "rooms=%u departed=%u",
         run->rec_rooms_len, run->rec_players_len);
}

static void wind_down(simrun_t *run) {
  run->winding = true;
  if (!run->faults_over)
    end_faults(run);
  for (uint32_t i = 0; i < run->players_len; i++) {
    player_t *p = &run->players[i];
    p->sched.wake_at = 0; /* everyone looks: time to leave or to finish */
    run->wake[i] = 0;
    p->sched.next_join = NEVER;
  }
  run->wake_min = 0;
}

/* B1 (simrun.h): the longest a game running (or about to start) at some
 * instant takes to end and have its result stored, faults off. */
static rt_time_ns bound_b1(const simrun_t *run) {
  const game_config_t *g = &run->cfg.game;
  rt_time_ns retry_max = 2 * SEC; /* game_store.c's default */
  /* A JOIN sent just before the end starts a game a round trip later;
   * that game's GAME_OVER takes one more trip down. */
  rt_time_ns b1 = 3 * run->link_max + g->countdown +
                  (rt_time_ns)g->game_seconds * g->tick + g->reconnect_grace +
                  RECORD_RESEND + 2 * retry_max + g->write_wait +
                  LIVENESS_SLACK;
  /* A cluster's faults end with an instance still restarting (5 s), Redis
   * coming back (3 s) and its Clusters' backoff (5 s), a lease to lapse
   * (3 s) and a renew to reap it (1 s), and a MOVE or two to follow. */
  if (run->cluster)
    b1 += CLUSTER_SLACK + run->cfg.lease + run->cfg.faults.rlatency * 4 +
          run->cfg.faults.rjitter * 4;
  return b1;
}

/* B2: departures reach the server one trip later; a close handshake the
 * server started waits at most its ws_close_wait (5 s). */
static rt_time_ns bound_b2(const simrun_t *run) {
  return bound_b1(run) + 2 * run->link_max + 5 * SEC + LIVENESS_SLACK;
}

rt_time_ns simrun_l1(const simrun_t *run) {
  return run->cfg.duration + bound_b1(run);
}

rt_time_ns simrun_l2(const simrun_t *run) {
  return run->cfg.duration + bound_b2(run);
}

rt_time_ns simrun_fault_end(const simrun_t *run) { return run->fault_end; }

rt_time_ns simrun_r1(const simrun_t *run) {
  return run->fault_end + bound_b1(run);
}

rt_time_ns simrun_r2(const simrun_t *run) {
  return run->fault_end + bound_b2(run);
}

static void depart_all(simrun_t *run) {
  for (uint32_t i = 0; i < run->players_len; i++) {
    player_t *p = &run->players[i];
    simrun__read_records(run, p); /* the last of what it saw */
    for (uint32_t k = 0; k < SIMRUN_BOTS_PER_PLAYER; k++)
      simrun__destroy_bot(run, &p->bots[k]);
    if (p->state != B_GONE)
      run->sum.departures++;
    p->state = B_GONE;
    run->wake[i] = run->edge[i] = NEVER;
  }
  run->wake_min = 0; /* next_edge is recomputed */
}

/* ---- Driving ------------------------------------------------------------- */

/* Run the world to `until`, stopping between turns once check_deliveries
 * deliveries passed since the last check, to check (a turn delivers at least
 * one message and at most the batch, so asking for remaining / batch turns
 * never overshoots the mark by more than a turn). */
static int run_slice(simrun_t *run, rt_time_ns until) {
  uint64_t turns = 0;
  for (;;) {
    uint64_t done = rt_world_deliveries(run->w);
    uint64_t left = run->next_check_deliveries > done
                        ? run->next_check_deliveries - done
                        : 0;
    uint64_t ask = left / RT_BATCH_DEFAULT;
    if (ask == 0)
      ask = 1;
    sim_run_result_t rr = sim_world_run(run->sw, until, ask);
    if (rt_world_deliveries(run->w) >= run->next_check_deliveries) {
      run->sum.checks_by_deliveries++; /* simrun_check moves the mark */
      if (simrun_check(run) < 0)
        return -1;
    }
    if (rr != SIM_RUN_TURNS)
      break;
    turns += ask;
    if (turns >= TURNS_PER_SLICE_MAX) {
      simrun__fail(run,
                   "no progress: %llu turns without the clock reaching %.6f s",
                   TURNS_PER_SLICE_MAX, (double)until / SEC);
      return -1;
    }
  }
  if (simrun__now(run) < until)
    rt_world_set_time(run->w, until);
  return 0;
}

/* The next instant a phase changes or a recovery check is due. */
static rt_time_ns next_phase(const simrun_t *run) {
  if (!run->faults_over)
    return run->fault_end;
  if (!run->r1_done)
    return simrun_r1(run);
  if (!run->r2_done)
    return simrun_r2(run);
  return NEVER;
}

int simrun_run_to(simrun_t *run, rt_time_ns t) {
  while (!run->failed && simrun__now(run) < t) {
    rt_time_ns now = simrun__now(run);
    rt_time_ns next = now + run->cfg.slice +
                      (run->cfg.nudge_at > 0 && now >= run->cfg.nudge_at);
    if (next > t)
      next = t;
    if (next > run->next_check)
      next = run->next_check;
    if (!run->winding && next > run->cfg.duration && now < run->cfg.duration)
      next = run->cfg.duration;
    rt_time_ns phase = next_phase(run);
    if (phase > now && next > phase)
      next = phase;
    if (run->next_edge > now && next > run->next_edge)
      next = run->next_edge;
    rt_time_ns fault = simrun__cluster_next(run);
    if (fault > now && next > fault)
      next = fault;
    if (run_slice(run, next) < 0)
      return -1;
    simrun__cluster_faults(run, simrun__now(run));
    simrun__cluster_watch(run);
    if (simrun__now(run) >= run->next_check)
      run->next_check += run->cfg.check_every;
    if (simrun__now(run) - run->last_check >= run->cfg.check_every &&
        simrun_check(run) < 0)
      return -1;
    now = simrun__now(run);
    if (!run->faults_over && now >= run->fault_end)
      end_faults(run);
    if (!run->winding && now >= run->cfg.duration)
      wind_down(run);
    if (run->faults_over && !run->r1_done && now >= simrun_r1(run))
      simrun__check_r1(run);
    if (run->faults_over && !run->r2_done && now >= simrun_r2(run))
      simrun__check_r2(run);
    if (run->failed)
      return -1;
    simrun__brains(run);
  }
  return run->failed ? -1 : 0;
}

int simrun_finish(simrun_t *run) {
  if (simrun_run_to(run, run->cfg.duration) < 0)
    return -1;
  if (!run->winding)
    wind_down(run);
  if (simrun_run_to(run, simrun_l1(run)) < 0)
    return -1;
  if (simrun_check(run) < 0)
    return -1;
  simrun__check_l1(run);
  if (run->failed)
    return -1;
  depart_all(run);
  if (simrun_run_to(run, simrun_l2(run)) < 0)
    return -1;
  if (simrun_check(run) < 0)
    return -1;
  simrun__check_l2(run);
  return run->failed ? -1 : 0;
}

/* ---- A whole run --------------------------------------------------------- */

/* A run that did not start: its seed, what it could not do and why. */
static int not_started(const simrun_config_t *cfg, simrun_summary_t *out,
                       const char *what, const char *why) {
  memset(out, 0, sizeof(*out));
  out->seed = cfg->seed;
  snprintf(out->failure, sizeof(out->failure), "%s: %.400s", what, why);
  return -1;
}

int simrun_run_once(const simrun_config_t *cfg, const simrun_mix_t *mix,
                    const char *record_dir, const char *record_args,
                    simrun_summary_t *out) {
  RT_ASSERT(cfg != NULL);
  RT_ASSERT(mix != NULL);
  RT_ASSERT(out != NULL);
  if (record_dir != NULL) {
    RT_ASSERT(record_args != NULL);
    RT_ASSERT(cfg->trace == NULL);
  }
  simrun_config_t run_cfg = *cfg;
  sim_trace_t *rec = NULL;
  char why[NET_TRACE_ERR_MAX];
  if (record_dir != NULL) {
    if (sim_trace_create(record_dir, cfg->seed, SIM_EPOCH_DEFAULT_NS,
                         record_args, &rec, why, sizeof(why)) < 0)
      return not_started(cfg, out, "cannot record", why);
    run_cfg.trace = sim_trace_delivery;
    run_cfg.trace_ctx = rec;
  }
  simrun_t *run = NULL;
  int err = simrun_create(&run_cfg, &run);
  if (err < 0) {
    (void)sim_trace_close(rec, why, sizeof(why));
    return not_started(cfg, out, "cannot start", rt_strerror(err));
  }
  err = simrun_populate(run, mix);
  if (err == 0)
    (void)simrun_finish(run);
  simrun_summary(run, out);
  if (err < 0) {
    out->passed = false;
    snprintf(out->failure, sizeof(out->failure), "cannot add players: %s",
             rt_strerror(err));
  }
  simrun_destroy(run);
  if (rec != NULL) {
    (void)sim_trace_finish(rec, out->hash, false, NULL);
    if (sim_trace_close(rec, why, sizeof(why)) < 0 && out->passed) {
      out->passed = false;
      snprintf(out->failure, sizeof(out->failure), "the trace failed: %.400s",
               why);
    }
  }
  return out->passed ? 0 : -1;
}

/* ---- Accessors ----------------------------------------------------------- */

const char *simrun_failure(const simrun_t *run) {
  return run->failed ? run->failure : NULL;
}

sim_world_t *simrun_world(simrun_t *run) { return run->sw; }

game_t *simrun_game(simrun_t *run) { return run->game; }

net_server_t *simrun_server(simrun_t *run) { return run->srv; }
