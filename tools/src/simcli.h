/* simcli.h: overcookied-sim's flags, shared with overcookied-replay.
 *
 * A simulated run is named by its flags: the reproduce command a failing
 * seed prints, and the header of a trace the simulator writes (--record).
 * overcookied-replay reads such a trace's flags back with the same parser
 * and runs the same seed, so both programs must agree on every flag.
 */
#ifndef SIMCLI_H
#define SIMCLI_H

#include "simrun_report.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define SWARM_MAX 1000000u
#define JOBS_MAX 256u
/* Hash-chain checkpoints kept per run by --check-determinism (8 bytes
 * each; the last pass keeps as many whole deliveries, 88 bytes each). */
#define CHECKPOINTS_DEFAULT (1u << 16)
#define CHECKPOINTS_MAX (1u << 24)

typedef struct simcli_options {
  uint64_t seed;
  uint32_t players;
  rt_time_ns duration;
  const char *faults_spec; /* NULL: none (single) or drawn (swarm) */
  uint32_t instances;      /* --instances; 0: one, or drawn (swarm) */
  uint32_t swarm;          /* 0: one run */
  uint32_t jobs;
  bool json;
  bool check_determinism;
  bool selftest_nondeterminism; /* perturb the second run: the check must
                                   catch it (tests of the checker) */
  uint64_t checkpoints_max;     /* --determinism-checkpoints */
  uint64_t check_deliveries;    /* --check-every */
  simrun_limits_t limits;       /* the flags' values */
  bool limit_set[SIMRUN_LIMITS_COUNT];
  bool game_length_set, countdown_set;
  uint32_t game_length;
  rt_time_ns countdown;
  int log_level;
  const char *record_dir; /* --record: write the run as a trace */
} simcli_options_t;

void simcli_usage(FILE *out);
/* What simcli_parse returns for --help (or -h): overcookied-sim prints
 * simcli_usage and exits 0; the replay calls a trace holding it bad. */
#define SIMCLI_HELP 1
/* Parse argv[1..argc) into o (defaults first). 0, SIMCLI_HELP, or -1
 * after a message on stderr. */
int simcli_parse(int argc, char **argv, simcli_options_t *o);
/* The faults, limits and mix of one seed: from the flags, or drawn from the
 * seed in a swarm. */
void simcli_plan(const simcli_options_t *o, uint64_t seed, simrun_plan_t *out);
void simcli_config(const simcli_options_t *o, const simrun_plan_t *sp,
                   simrun_config_t *cfg);
/* The one command that reproduces a seed exactly (a shell line). */
void simcli_repro(const simcli_options_t *o, const simrun_plan_t *sp,
                  bool determinism, char *out, size_t cap);
/* The same run's flags, one per line, for a trace header: simcli_parse
 * reads them back to the same plan. */
void simcli_args(const simcli_options_t *o, const simrun_plan_t *sp, char *out,
                 size_t cap);

#endif
