/* overcookied-sim: the whole server in the simulated world, checked.
 *
 *   overcookied-sim --seed N --players P --duration T [--faults SPEC]
 *                   [--swarm K] [--jobs J] [--json] [--check-determinism]
 *
 * One run (sim/simrun.h): Manager, Rooms, Clients and the Store behind the
 * real HTTP/WebSocket server, players that are sim_bots speaking the
 * protocol, a workload mix drawn from the seed, faults from SPEC,
 * invariants checked as the run goes and liveness checked after the fault
 * phase. It prints a summary (text, or --json) ending with the run's hash;
 * exit 0 only when every check passed, 1 when one failed (with the command
 * that reproduces it), 2 for bad arguments, 3 when the determinism check
 * ran out of memory.
 *
 * --swarm K runs seeds N .. N+K-1, each with faults and mix drawn from the
 * seed itself (unless --faults is given), --jobs J of them at once in
 * forked processes; it fails if a seed fails or if some coverage point
 * (simrun_cov_t) was never reached. --check-determinism runs each seed
 * twice and names the first delivery where the runs part.
 *
 * A thin command line: the flags are simcli.h's, the runs, reports,
 * swarms and the determinism check sim/simrun_report.h's.
 */
#include "net_trace.h"
#include "simcli.h"
#include "simrun_report.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

/* ---- The swarm's callbacks: ctx is the options ----------------------------
 */

static void plan_seed(const void *ctx, uint64_t seed, simrun_plan_t *out) {
  simcli_plan(ctx, seed, out);
}

static void config_of(const void *ctx, const simrun_plan_t *plan,
                      simrun_config_t *out) {
  simcli_config(ctx, plan, out);
}

static void repro_of(const void *ctx, const simrun_plan_t *plan,
                     bool determinism, char *out, size_t cap) {
  simcli_repro(ctx, plan, determinism, out, cap);
}

static int run_swarm(const simcli_options_t *o) {
  simrun_swarm_config_t sc = {.first_seed = o->seed,
                              .seeds = o->swarm,
                              .jobs = o->jobs,
                              .json = o->json,
                              .check_determinism = o->check_determinism,
                              .nudge_second = o->selftest_nondeterminism,
                              .checkpoints_max = o->checkpoints_max,
                              .name = "overcookied-sim",
                              .err = stderr,
                              .plan = plan_seed,
                              .config = config_of,
                              .repro = repro_of,
                              .ctx = o};
  return simrun_swarm(&sc, stdout) == 0 ? 0 : 1;
}

/* One seed: run it (twice with --check-determinism, recorded with
 * --record) and print its summary. */
static int run_seed(const simcli_options_t *o) {
  simrun_plan_t plan;
  simcli_plan(o, o->seed, &plan);
  simrun_config_t cfg;
  simcli_config(o, &plan, &cfg);
  simrun_result_t res;
  memset(&res, 0, sizeof(res));
  if (o->check_determinism) {
    FILE *report = o->json ? stderr : stdout;
    if (simrun_check_determinism(&cfg, &plan.mix, o->checkpoints_max,
                                 o->selftest_nondeterminism, &res,
                                 report) < 0) {
      fprintf(stderr, "overcookied-sim: out of memory for the trace\n");
      return 3;
    }
  } else if (o->record_dir != NULL) {
    char args[NET_TRACE_CONFIG_MAX];
    simcli_args(o, &plan, args, sizeof(args));
    (void)simrun_run_once(&cfg, &plan.mix, o->record_dir, args, &res.sum);
  } else {
    (void)simrun_run_once(&cfg, &plan.mix, NULL, NULL, &res.sum);
  }
  char repro[SIMRUN_REPRO_MAX];
  simcli_repro(o, &plan, res.determinism_failed, repro, sizeof(repro));
  if (o->json)
    simrun_report_json(stdout, &cfg, &plan, &res, repro);
  else
    simrun_report_text(stdout, &cfg, &plan, &res, repro);
  return simrun_result_passed(&res) ? 0 : 1;
}

int main(int argc, char **argv) {
  simcli_options_t o;
  int parsed = simcli_parse(argc, argv, &o);
  if (parsed == SIMCLI_HELP) {
    simcli_usage(stdout);
    return 0;
  }
  if (parsed < 0)
    return 2;
  signal(SIGPIPE, SIG_IGN);
  return o.swarm > 0 ? run_swarm(&o) : run_seed(&o);
}
