/* simrun_report.h: what a program does with runs (simrun.h): a seed's plan
 * and result, the result as text or JSON, the determinism check (each
 * seed run twice) and swarms of seeds run in forked processes.
 *
 * overcookied-sim is a thin command line over these: its flags
 * (tools/src/simcli.h) become plans and run configs, and the callbacks of
 * a swarm. The runs themselves never read the clock; neither does anything
 * here (a swarm's progress bar counts seeds).
 */
#ifndef SIMRUN_REPORT_H
#define SIMRUN_REPORT_H

#include "simrun.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* The command that reproduces a run, as a program writes it. */
#define SIMRUN_REPRO_MAX 1024u

/* A seed as a program plans it: the faults, limits and mix it runs with
 * (from the program's flags, or drawn from the seed in a swarm), and their
 * text for reports. */
typedef struct simrun_plan {
  uint64_t seed;
  simrun_faults_t faults;
  simrun_limits_t limits;
  simrun_mix_t mix;
  uint32_t instances; /* 0 or 1: one process; else a cluster */
  char faults_text[SIMRUN_FAULTS_TEXT_MAX];
  char mix_text[SIMRUN_MIX_TEXT_MAX];
} simrun_plan_t;

/* What a seed came to: its run's summary and, when the determinism check
 * ran, the check's verdict. */
typedef struct simrun_result {
  simrun_summary_t sum;
  bool determinism_failed;
  char determinism[SIMRUN_FAILURE_MAX]; /* where the runs parted, or "" */
} simrun_result_t;

/* Every check passed, determinism included. */
bool simrun_result_passed(const simrun_result_t *r);

/* ---- Reports --------------------------------------------------------------
 *
 * One run's result for people (text, a few lines) or programs (one line of
 * JSON), ending with the run's hash. cfg is the run's (its duration and
 * check period are shown); plan names its faults, mix and limits; repro,
 * the command that reproduces the run, is shown when it failed. All are
 * borrowed. */

void simrun_report_text(FILE *out, const simrun_config_t *cfg,
                        const simrun_plan_t *plan, const simrun_result_t *r,
                        const char *repro);
void simrun_report_json(FILE *out, const simrun_config_t *cfg,
                        const simrun_plan_t *plan, const simrun_result_t *r,
                        const char *repro);

/* ---- The determinism check ------------------------------------------------
 *
 * Runs cfg (with mix's players) twice: both must deliver the same messages
 * at the same times and end with the same hash. Each run folds every
 * delivery into a hash chain kept at up to checkpoints_max checkpoints
 * (at least 2: 8 bytes each, and 88 bytes each in the last pass); when the
 * runs part, more passes narrow the first divergence down to one delivery,
 * whatever the length of the run. nudge_second makes the second run's
 * brain slices 1 ns longer from half way (the check's self-test: it must
 * find that point). The verdict goes into res (res->sum: the first run's
 * summary) and, one line or three, to report. 0, or RT_ENOMEM when the
 * checkpoints do not fit in memory (then nothing was reported). */
int simrun_check_determinism(const simrun_config_t *cfg,
                             const simrun_mix_t *mix, uint64_t checkpoints_max,
                             bool nudge_second, simrun_result_t *res,
                             FILE *report);

/* ---- Swarms ---------------------------------------------------------------
 *
 * Seeds first_seed .. first_seed + seeds - 1, each run in a forked process,
 * at most `jobs` at once; each seed's faults, limits and mix come from the
 * program (usually drawn from the seed itself). The swarm fails when a seed
 * fails or when some coverage point (simrun_cov_t) was reached by none. */

/* The program's side of a swarm; ctx is simrun_swarm_config_t.ctx. */
typedef void simrun_plan_fn(const void *ctx, uint64_t seed, simrun_plan_t *out);
typedef void simrun_config_fn(const void *ctx, const simrun_plan_t *plan,
                              simrun_config_t *out);
/* The command that reproduces plan's run, with determinism: that checks
 * its determinism. At most cap bytes with the NUL. */
typedef void simrun_repro_fn(const void *ctx, const simrun_plan_t *plan,
                             bool determinism, char *out, size_t cap);

typedef struct simrun_swarm_config {
  uint64_t first_seed;
  uint32_t seeds; /* at least 1 */
  uint32_t jobs;  /* processes at once, at least 1 */
  bool json;      /* one JSON summary, and no line per seed */
  /* Each seed through simrun_check_determinism, with these. */
  bool check_determinism;
  bool nudge_second;
  uint64_t checkpoints_max;
  const char *name; /* the program's, before messages on err */
  FILE *err;        /* messages, the determinism reports of the seeds, and
                       a progress bar when it is a terminal */
  simrun_plan_fn *plan;
  simrun_config_fn *config;
  simrun_repro_fn *repro;
  const void *ctx;
} simrun_swarm_config_t;

/* Run the swarm: a line on out per seed as it finishes (unless json), then
 * the summary. 0 when every seed ran and passed and every coverage point
 * was reached; -1 when not, or when the swarm could not run (said on
 * err). */
int simrun_swarm(const simrun_swarm_config_t *sc, FILE *out);

#endif
