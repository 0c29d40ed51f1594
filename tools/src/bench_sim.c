/* bench-sim: how fast the simulated world runs the whole server.
 *
 *   bench-sim [--players N] [--duration T] [--seed S] [--faults SPEC]
 *             [--instances K]
 *
 * One simrun (simrun.h) with N players (default 1,000) that arrive within
 * 20 s and play full games (PROTOCOL.md's 5 s countdown and 60 s), with the
 * run's invariant checks on; with --instances K (2 .. SIMRUN_INSTANCES_MAX)
 * a cluster of K instances sharing the simulated Redis, each player
 * connecting first to one drawn from the seed (default 1: one process, no
 * Redis, the same run and hash as before the flag). Timed with the
 * monotonic clock: simulated seconds per wall-clock second for the busy
 * part (until the last games started have ended) and for the whole run
 * (with the liveness tail), and deliveries per second. A benchmark, not a
 * test: the wall clock is read here, in tools/, never inside the run.
 */
#include "simrun.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double wall_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int usage(void) {
  fprintf(stderr, "usage: bench-sim [--players N] [--duration SECONDS] "
                  "[--seed S] [--faults SPEC] [--instances K]\n");
  return 2;
}

int main(int argc, char **argv) {
  simrun_config_t cfg;
  simrun_config_default(&cfg);
  cfg.players = 1000;
  cfg.duration = 70 * RT_NS_PER_S;
  const char *spec = "none";
  /* 1 and 0 are the same run (simrun.h: "0 or 1: one process"); 1 is
   * what the flag says by default. */
  cfg.instances = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--players") == 0)
      cfg.players = (uint32_t)strtoul(argv[i + 1], NULL, 10);
    else if (strcmp(argv[i], "--duration") == 0)
      cfg.duration = (rt_time_ns)(strtod(argv[i + 1], NULL) * 1e9);
    else if (strcmp(argv[i], "--seed") == 0)
      cfg.seed = strtoull(argv[i + 1], NULL, 10);
    else if (strcmp(argv[i], "--faults") == 0)
      spec = argv[i + 1];
    else if (strcmp(argv[i], "--instances") == 0)
      cfg.instances = (uint32_t)strtoul(argv[i + 1], NULL, 10);
    else
      return usage();
  }
  if (argc % 2 == 0 || cfg.players == 0 || cfg.players > SIMRUN_PLAYERS_MAX ||
      cfg.duration <= 0 || cfg.instances == 0 ||
      cfg.instances > SIMRUN_INSTANCES_MAX)
    return usage();
  char why[256];
  if (simrun_faults_parse(spec, &cfg.faults, why, sizeof(why)) < 0) {
    fprintf(stderr, "bench-sim: bad --faults: %s\n", why);
    return 2;
  }
  simrun_mix_t mix;
  simrun_mix_draw(cfg.seed, &mix);
  double t0 = wall_s();
  simrun_t *run = NULL;
  if (simrun_create(&cfg, &run) < 0 || simrun_populate(run, &mix) < 0) {
    fprintf(stderr, "bench-sim: cannot set up the run\n");
    simrun_destroy(run);
    return 1;
  }
  double t1 = wall_s();
  /* Busy: games keep starting until `duration`; the last end a game later. */
  rt_time_ns busy = cfg.duration + cfg.game.countdown +
                    (rt_time_ns)cfg.game.game_seconds * cfg.game.tick;
  int rc = simrun_run_to(run, busy);
  double t2 = wall_s();
  if (rc == 0)
    rc = simrun_finish(run);
  double t3 = wall_s();
  simrun_summary_t s;
  simrun_summary(run, &s);
  simrun_destroy(run);
  double busy_wall = t2 - t1, all_wall = t3 - t1;
  /* One instance prints what it always printed (README quotes it). */
  if (cfg.instances >= 2)
    printf("bench-sim: %u players, %u instances, seed %" PRIu64 ", faults %s\n",
           cfg.players, cfg.instances, cfg.seed, spec);
  else
    printf("bench-sim: %u players, seed %" PRIu64 ", faults %s\n", cfg.players,
           cfg.seed, spec);
  printf("  setup %.3f s wall\n", t1 - t0);
  printf("  busy  %.1f simulated s in %.3f s wall: %.1f simulated s per "
         "wall s\n",
         (double)busy / RT_NS_PER_S, busy_wall,
         (double)busy / RT_NS_PER_S / busy_wall);
  printf("  whole %.1f simulated s in %.3f s wall: %.1f simulated s per "
         "wall s\n",
         (double)s.end_time / RT_NS_PER_S, all_wall,
         (double)s.end_time / RT_NS_PER_S / all_wall);
  printf("  %" PRIu64 " games, %" PRIu64 " clicks, %" PRIu64
         " deliveries (%.2f M/s), %" PRIu64 " invariant checks, %s\n",
         s.games_started, s.clicks_sent, s.deliveries,
         (double)s.deliveries / all_wall / 1e6, s.checks,
         s.passed ? "all passed" : s.failure);
  if (cfg.instances >= 2)
    printf("  %" PRIu64 " matches across instances, %" PRIu64
           " moves followed, %" PRIu64 " fenced, %" PRIu64 " tickets purged\n",
           s.matches_cross, s.moves_seen, s.fenced, s.tickets_purged);
  printf("  hash=%016" PRIx64 "\n", s.hash);
  return s.passed ? 0 : 1;
}
