/* simrun_swarm.c: a swarm of seeds (simrun_swarm, simrun_report.h).
 *
 * Each seed runs in a forked child, which writes its simrun_result_t back
 * through a pipe; at most sc->jobs children run at once. A child that dies
 * before writing its whole result failed (a crash is a finding too). The
 * parent reads results as children end, so the per-seed lines come in the
 * order the seeds finish; the summary counts them all.
 */
#include "simrun_report.h"

#include "rt_assert.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct child {
  pid_t pid; /* 0: a free slot */
  int fd;
  uint64_t seed;
} child_t;

typedef struct swarm {
  const simrun_swarm_config_t *sc;
  FILE *out;
  uint64_t done, failed;
  uint64_t cov[SIMRUN_COV_COUNT_];
  uint64_t games, deliveries;
  uint64_t cluster_seeds; /* seeds that ran a cluster */
  uint64_t *failing; /* seeds, in the order they finished */
  child_t *kids;     /* sc->jobs slots */
  uint32_t next, running;
  bool tty;
} swarm_t;

/* ---- Progress ------------------------------------------------------------ */

static void progress(const swarm_t *s, bool final) {
  if (!s->tty)
    return;
  FILE *err = s->sc->err;
  const uint32_t width = 30;
  uint32_t fill = (uint32_t)(s->done * width / s->sc->seeds);
  fprintf(err, "\r[");
  for (uint32_t i = 0; i < width; i++)
    fputc(i < fill ? '=' : i == fill ? '>' : ' ', err);
  fprintf(err, "] %" PRIu64 "/%u seeds, %" PRIu64 " failed", s->done,
          s->sc->seeds, s->failed);
  if (final)
    fputc('\n', err);
  fflush(err);
}

static void clear_progress(const swarm_t *s) {
  if (s->tty)
    fprintf(s->sc->err, "\r\033[K");
}

/* ---- One seed ------------------------------------------------------------ */

/* Count a finished seed in and, unless JSON, print its line. */
static void swarm_record(swarm_t *s, const simrun_plan_t *plan,
                         const simrun_result_t *r) {
  s->done++;
  for (int i = 0; i < SIMRUN_COV_COUNT_; i++)
    s->cov[i] += r->sum.cov[i];
  s->games += r->sum.games_started;
  s->deliveries += r->sum.deliveries;
  s->cluster_seeds += r->sum.instances >= 2;
  bool ok = simrun_result_passed(r);
  if (!ok)
    s->failing[s->failed++] = plan->seed;
  if (s->sc->json)
    return;
  clear_progress(s);
  char limits[SIMRUN_LIMITS_TEXT_MAX];
  simrun_limits_format(&plan->limits, limits, sizeof(limits));
  fprintf(s->out,
          "seed=%" PRIu64 " %s games=%" PRIu64 " hash=%016" PRIx64
          " faults=%s mix=%s%s%s\n",
          plan->seed, ok ? "ok" : "FAIL", r->sum.games_started, r->sum.hash,
          plan->faults_text, plan->mix_text,
          limits[0] != '\0' ? " limits:" : "", limits);
  if (!ok) {
    char cmd[SIMRUN_REPRO_MAX];
    s->sc->repro(s->sc->ctx, plan, r->determinism_failed, cmd, sizeof(cmd));
    fprintf(s->out, "  FAIL seed=%" PRIu64 ": %s\n  repro: %s\n", plan->seed,
            !r->sum.passed ? r->sum.failure : r->determinism, cmd);
  }
  fflush(s->out);
  progress(s, false);
}

/* In the child: run one seed and write its result to fd. */
static _Noreturn void child_main(const simrun_swarm_config_t *sc, uint64_t seed,
                                 int fd) {
  simrun_plan_t plan;
  sc->plan(sc->ctx, seed, &plan);
  simrun_config_t cfg;
  sc->config(sc->ctx, &plan, &cfg);
  simrun_result_t res;
  memset(&res, 0, sizeof(res));
  if (!sc->check_determinism) {
    (void)simrun_run_once(&cfg, &plan.mix, NULL, NULL, &res.sum);
  } else if (simrun_check_determinism(&cfg, &plan.mix, sc->checkpoints_max,
                                      sc->nudge_second, &res, sc->err) < 0) {
    fprintf(sc->err, "%s: out of memory for the trace\n", sc->name);
    fflush(sc->err);
    _exit(3);
  }
  const char *p = (const char *)&res;
  size_t left = sizeof(res);
  while (left > 0) {
    ssize_t n = write(fd, p, left);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      _exit(3);
    p += n;
    left -= (size_t)n;
  }
  _exit(0);
}

/* Read a finished child's result; a child that died first failed. */
static void collect(swarm_t *s, child_t *c, int status) {
  simrun_plan_t plan;
  s->sc->plan(s->sc->ctx, c->seed, &plan);
  simrun_result_t res;
  memset(&res, 0, sizeof(res));
  size_t got = 0;
  char *p = (char *)&res;
  while (got < sizeof(res)) {
    ssize_t n = read(c->fd, p + got, sizeof(res) - got);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    got += (size_t)n;
  }
  close(c->fd);
  if (got != sizeof(res)) {
    memset(&res, 0, sizeof(res));
    res.sum.seed = c->seed;
    if (WIFSIGNALED(status))
      snprintf(res.sum.failure, sizeof(res.sum.failure),
               "the run crashed (signal %d)", WTERMSIG(status));
    else
      snprintf(res.sum.failure, sizeof(res.sum.failure),
               "the run died (exit %d)", WEXITSTATUS(status));
  }
  swarm_record(s, &plan, &res);
}

/* ---- The children -------------------------------------------------------- */

/* Fork the child of the next seed. 0, or -1 when it could not start (said
 * on err). */
static int start_next(swarm_t *s) {
  const simrun_swarm_config_t *sc = s->sc;
  uint64_t seed = sc->first_seed + s->next;
  int fds[2];
  if (pipe(fds) < 0) {
    fprintf(sc->err, "%s: pipe: %s\n", sc->name, strerror(errno));
    return -1;
  }
  fflush(NULL); /* nothing buffered is written twice */
  pid_t pid = fork();
  if (pid < 0) {
    fprintf(sc->err, "%s: fork: %s\n", sc->name, strerror(errno));
    close(fds[0]);
    close(fds[1]);
    return -1;
  }
  if (pid == 0) {
    close(fds[0]);
    child_main(sc, seed, fds[1]);
  }
  close(fds[1]);
  uint32_t slot = 0;
  while (s->kids[slot].pid != 0)
    slot++;
  RT_ASSERT(slot < sc->jobs);
  s->kids[slot] = (child_t){.pid = pid, .fd = fds[0], .seed = seed};
  s->running++;
  s->next++;
  return 0;
}

/* Wait for a child to end and collect its result. 0, or -1 when waiting
 * failed (said on err). */
static int reap_one(swarm_t *s) {
  int status = 0;
  pid_t pid = waitpid(-1, &status, 0);
  if (pid < 0 && errno == EINTR)
    return 0;
  if (pid < 0) {
    fprintf(s->sc->err, "%s: waitpid: %s\n", s->sc->name, strerror(errno));
    return -1;
  }
  for (uint32_t i = 0; i < s->sc->jobs; i++) {
    if (s->kids[i].pid == pid) {
      collect(s, &s->kids[i], status);
      s->kids[i].pid = 0;
      s->running--;
      break;
    }
  }
  return 0;
}

/* ---- The summary --------------------------------------------------------- */

static void summary_json(const swarm_t *s, bool passed) {
  const simrun_swarm_config_t *sc = s->sc;
  fprintf(s->out,
          "{\"seeds\":%u,\"first_seed\":%" PRIu64 ",\"done\":%" PRIu64
          ",\"failed\":%" PRIu64 ",\"games\":%" PRIu64 ",\"coverage\":{",
          sc->seeds, sc->first_seed, s->done, s->failed, s->games);
  for (int i = 0; i < SIMRUN_COV_COUNT_; i++)
    fprintf(s->out, "%s\"%s\":%" PRIu64, i ? "," : "",
            simrun_cov_name((simrun_cov_t)i), s->cov[i]);
  fprintf(s->out, "},\"failing_seeds\":[");
  for (uint64_t i = 0; i < s->failed; i++)
    fprintf(s->out, "%s%" PRIu64, i ? "," : "", s->failing[i]);
  fprintf(s->out, "],\"passed\":%s}\n", passed ? "true" : "false");
}

/* A cluster's points are owed once the swarm ran a cluster: a swarm of
 * one-process seeds (given --faults, say) cannot reach them. */
static bool cov_required(const swarm_t *s, int i) {
  return i < SIMRUN_COV_ONE_PROCESS_COUNT_ || s->cluster_seeds > 0;
}

static void summary_text(const swarm_t *s, bool passed) {
  const simrun_swarm_config_t *sc = s->sc;
  fprintf(s->out,
          "swarm: %" PRIu64 "/%u seeds run, %" PRIu64 " failed, %" PRIu64
          " games, %" PRIu64 " deliveries\ncoverage:",
          s->done, sc->seeds, s->failed, s->games, s->deliveries);
  for (int i = 0; i < SIMRUN_COV_COUNT_; i++)
    fprintf(s->out, " %s=%" PRIu64, simrun_cov_name((simrun_cov_t)i),
            s->cov[i]);
  fprintf(s->out, "\n");
  for (int i = 0; i < SIMRUN_COV_COUNT_; i++)
    if (s->cov[i] == 0 && cov_required(s, i))
      fprintf(s->out, "FAIL coverage: %s was never reached\n",
              simrun_cov_name((simrun_cov_t)i));
  for (uint64_t i = 0; i < s->failed; i++) {
    simrun_plan_t plan;
    sc->plan(sc->ctx, s->failing[i], &plan);
    char cmd[SIMRUN_REPRO_MAX];
    sc->repro(sc->ctx, &plan, sc->check_determinism, cmd, sizeof(cmd));
    fprintf(s->out, "FAIL seed=%" PRIu64 ": %s\n", s->failing[i], cmd);
  }
  fprintf(s->out, "%s\n", passed ? "swarm: passed" : "swarm: FAILED");
}

int simrun_swarm(const simrun_swarm_config_t *sc, FILE *out) {
  RT_ASSERT(sc != NULL);
  RT_ASSERT(out != NULL);
  RT_ASSERT(sc->seeds >= 1);
  RT_ASSERT(sc->jobs >= 1);
  RT_ASSERT(sc->plan != NULL);
  RT_ASSERT(sc->config != NULL);
  RT_ASSERT(sc->repro != NULL);
  RT_ASSERT(sc->name != NULL);
  RT_ASSERT(sc->err != NULL);
  if (sc->check_determinism)
    RT_ASSERT(sc->checkpoints_max >= 2);
  swarm_t s = {.sc = sc, .out = out, .tty = isatty(fileno(sc->err)) != 0};
  s.failing = calloc(sc->seeds, sizeof(*s.failing));
  s.kids = calloc(sc->jobs, sizeof(*s.kids));
  if (s.failing == NULL || s.kids == NULL) {
    fprintf(sc->err, "%s: out of memory\n", sc->name);
    free(s.failing);
    free(s.kids);
    return -1;
  }
  progress(&s, false);
  while (s.next < sc->seeds || s.running > 0) {
    /* Start seeds while there is room (bounded by jobs). */
    while (s.next < sc->seeds && s.running < sc->jobs)
      if (start_next(&s) < 0)
        break;
    if (s.running == 0)
      break; /* could not start any: give up (said above) */
    if (reap_one(&s) < 0)
      break;
  }
  clear_progress(&s);
  progress(&s, true);
  bool coverage_ok = true;
  for (int i = 0; i < SIMRUN_COV_COUNT_; i++)
    coverage_ok = coverage_ok && (s.cov[i] > 0 || !cov_required(&s, i));
  bool passed = s.failed == 0 && coverage_ok && s.done == sc->seeds;
  if (sc->json)
    summary_json(&s, passed);
  else
    summary_text(&s, passed);
  free(s.failing);
  free(s.kids);
  return passed ? 0 : -1;
}
