/* simrun_determinism.c: two runs of one seed must deliver the same
 * messages at the same times (simrun_check_determinism, simrun_report.h).
 *
 * Hash-chain checkpoints, then a window in detail. Each run folds every
 * delivery (time, actor, sender, tag, payload) into a chain:
 * c(n) = step(c(n-1), digest(delivery n)). Two runs part first at delivery
 * n exactly when c(n-1) agrees and c(n) does not, so comparing the chain
 * at checkpoints narrows the first divergence to a window between two
 * checkpoints, whatever the length of the run:
 *   pass 1: both runs keep c at every `step` deliveries, at most
 *           `checkpoints_max` values; when full, every other one is dropped
 *           and the step doubles (memory stays bounded at any length);
 *   pass k: both runs again, keeping c only inside the first window that
 *           differs, at a finer step (window / checkpoints_max);
 *   last:   step 1 over a window of at most checkpoints_max deliveries,
 *           each kept whole: the first differing one is the report.
 * A failing seed thus costs 2 runs per pass (2 passes up to 2^32 deliveries
 * with the default 2^16 checkpoints: 512 KiB, then 5.5 MiB for the last
 * pass's whole deliveries); a passing one costs 2 runs.
 */
#include "simrun_report.h"

#include "rt_assert.h"
#include "rt_hash.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct trace {
  uint64_t from, to; /* deliveries kept: seq in [from, to) */
  uint64_t step;     /* keep c after every step-th of them */
  bool adaptive;     /* pass 1: double the step when full */
  bool events;       /* keep the deliveries themselves (step 1) */
  uint64_t cap;      /* checkpoints_max */
  uint64_t *cps;     /* cps[i]: c after delivery from + (i+1)*step - 1 */
  rt_delivery_t *evs;
  char (*names)[24];
  uint64_t len;
  bool oom;
  uint64_t chain, seen;
} trace_t;

static uint64_t digest(const rt_delivery_t *d) {
  uint64_t h = rt_hash_step(0x7472616365ULL, (uint64_t)d->at);
  h = rt_hash_step(h, d->actor);
  h = rt_hash_step(h, d->from);
  h = rt_hash_step(h, d->tag);
  return rt_hash_step(h, d->payload_hash);
}

/* 0, or RT_ENOMEM (then trace_free frees what was allocated). */
static int trace_init(trace_t *t, uint64_t from, uint64_t to, uint64_t step,
                      bool adaptive, uint64_t cap) {
  *t = (trace_t){.from = from,
                 .to = to,
                 .step = step,
                 .adaptive = adaptive,
                 .events = step == 1 && !adaptive,
                 .cap = cap,
                 .chain = 0x636861696eULL};
  t->cps = calloc(cap, sizeof(*t->cps));
  if (t->events) {
    t->evs = calloc(cap, sizeof(*t->evs));
    t->names = calloc(cap, sizeof(*t->names));
  }
  return t->cps == NULL || (t->events && (t->evs == NULL || t->names == NULL))
             ? RT_ENOMEM
             : RT_OK;
}

/* Frees the checkpoints; freeing twice is harmless. */
static void trace_free(trace_t *t) {
  free(t->cps);
  free(t->evs);
  free(t->names);
  t->cps = NULL;
  t->evs = NULL;
  t->names = NULL;
}

static void on_delivery(void *ctx, const rt_delivery_t *d) {
  trace_t *t = ctx;
  uint64_t n = t->seen++;
  t->chain = rt_hash_step(t->chain, digest(d));
  if (n < t->from || n >= t->to || (n - t->from + 1) % t->step != 0)
    return;
  if (t->len == t->cap) {
    if (!t->adaptive) {
      t->oom = true; /* cannot happen: windows are sized to fit */
      return;
    }
    for (uint64_t i = 0; i < t->cap / 2; i++)
      t->cps[i] = t->cps[2 * i + 1];
    t->len = t->cap / 2;
    t->step *= 2;
    if ((n - t->from + 1) % t->step != 0)
      return;
  }
  if (t->events) {
    t->evs[t->len] = *d;
    snprintf(t->names[t->len], sizeof(t->names[0]), "%s",
             d->actor_name != NULL ? d->actor_name : "?");
    t->evs[t->len].actor_name = NULL;
  }
  t->cps[t->len++] = t->chain;
}

static const char *tag_name(uint16_t tag) {
  return tag == 1   ? " (DOWN)"
         : tag == 2 ? " (STREAM)"
         : tag == 3 ? " (ACCEPT)"
         : tag == 4 ? " (TIMER)"
         : tag == 8 ? " (HTTP_REPLY)"
                    : "";
}

/* Where an actor runs: a cluster's instance n is node n (simrun_cluster.c;
 * "i<n>", or "i<n>.<k>" after restarts); node 0 is one process's server,
 * or in a cluster the players, the Redis model and the runner. */
static void node_name(uint32_t node, char *out, size_t cap) {
  if (node == 0)
    snprintf(out, cap, "node 0");
  else
    snprintf(out, cap, "instance i%u (node %u)", node, node);
}

static void print_event(FILE *out, const char *label, const trace_t *t,
                        uint64_t seq) {
  if (seq < t->from || seq - t->from >= t->len) {
    fprintf(out, "  %s: no delivery #%" PRIu64 " (the run had ended)\n", label,
            seq);
    return;
  }
  const rt_delivery_t *d = &t->evs[seq - t->from];
  char where[48];
  node_name(d->node, where, sizeof(where));
  fprintf(out,
          "  %s: seq=%" PRIu64 " t=%.9f actor=%" PRIu64 " (%s) on %s from=%" PRIu64
          " tag=%u%s payload=%016" PRIx64 "\n",
          label, d->seq, (double)d->at / RT_NS_PER_S, d->actor,
          t->names[seq - t->from], where, d->from, (unsigned)d->tag,
          tag_name(d->tag), d->payload_hash);
}

/* The first index where two checkpoint lists differ, or where one ends. */
static uint64_t first_difference(const trace_t *a, const trace_t *b) {
  uint64_t n = a->len < b->len ? a->len : b->len;
  for (uint64_t i = 0; i < n; i++)
    if (a->cps[i] != b->cps[i])
      return i;
  return n;
}

/* One run of cfg with its deliveries folded into t (cfg's own delivery
 * trace is replaced); nudged, with brain slices 1 ns longer from half
 * way through, so that the first divergence lies deep. */
static void run_traced(const simrun_config_t *cfg, const simrun_mix_t *mix,
                       trace_t *t, bool nudge, simrun_summary_t *out) {
  simrun_config_t traced = *cfg;
  if (nudge)
    traced.nudge_at = traced.duration / 2 > 0 ? traced.duration / 2 : 1;
  traced.trace = on_delivery;
  traced.trace_ctx = t;
  (void)simrun_run_once(&traced, mix, NULL, NULL, out);
}

/* Pass 1: both runs whole. Run 2 keeps the step run 1 ended with (it
 * adapts the same way while the runs agree; fixed, its checkpoints line
 * up with run 1's). 0, or RT_ENOMEM with both traces freed. */
static int first_pass(const simrun_config_t *cfg, const simrun_mix_t *mix,
                      uint64_t cap, bool nudge_second, trace_t *t1, trace_t *t2,
                      simrun_summary_t *sum1, simrun_summary_t *sum2) {
  int err = trace_init(t1, 0, UINT64_MAX, 1, true, cap);
  if (err == RT_OK)
    err = trace_init(t2, 0, UINT64_MAX, 1, true, cap + 1);
  if (err < 0) {
    trace_free(t1);
    trace_free(t2);
    return err;
  }
  run_traced(cfg, mix, t1, false, sum1);
  t2->step = t1->step;
  t2->adaptive = false;
  run_traced(cfg, mix, t2, nudge_second, sum2);
  return RT_OK;
}

/* The runs part within the window of t1->step deliveries after the last
 * checkpoint they share (*i): run both again over that window at a finer
 * step, until the step is 1 and *i is the first differing delivery. 0, or
 * RT_ENOMEM with both traces freed. */
static int narrow(const simrun_config_t *cfg, const simrun_mix_t *mix,
                  uint64_t cap, bool nudge_second, trace_t *t1, trace_t *t2,
                  uint64_t *i, uint32_t *passes) {
  while (!t1->events) {
    uint64_t from = t1->from + *i * t1->step, width = t1->step;
    uint64_t step = (width + cap - 1) / cap;
    trace_free(t1);
    trace_free(t2);
    int err = trace_init(t1, from, from + width, step, false, cap);
    if (err == RT_OK)
      err = trace_init(t2, from, from + width, step, false, cap);
    if (err < 0) {
      trace_free(t1);
      trace_free(t2);
      return err;
    }
    simrun_summary_t ignored;
    run_traced(cfg, mix, t1, false, &ignored);
    run_traced(cfg, mix, t2, nudge_second, &ignored);
    *i = first_difference(t1, t2);
    (*passes)++;
  }
  return RT_OK;
}

int simrun_check_determinism(const simrun_config_t *cfg,
                             const simrun_mix_t *mix, uint64_t checkpoints_max,
                             bool nudge_second, simrun_result_t *res,
                             FILE *report) {
  RT_ASSERT(cfg != NULL);
  RT_ASSERT(mix != NULL);
  RT_ASSERT(checkpoints_max >= 2);
  RT_ASSERT(res != NULL);
  RT_ASSERT(report != NULL);
  memset(res, 0, sizeof(*res));
  trace_t t1, t2;
  simrun_summary_t again;
  int err = first_pass(cfg, mix, checkpoints_max, nudge_second, &t1, &t2,
                       &res->sum, &again);
  if (err < 0)
    return err;
  uint64_t seen1 = t1.seen, seen2 = t2.seen;
  uint64_t i = first_difference(&t1, &t2);
  bool same =
      i == t1.len && i == t2.len && seen1 == seen2 && t1.chain == t2.chain;
  if (same && again.hash == res->sum.hash) {
    fprintf(report,
            "determinism: seed %" PRIu64 ": two runs agree (%" PRIu64
            " deliveries, %" PRIu64 " checkpoints every %" PRIu64
            ", hash=%016" PRIx64 ")\n",
            cfg->seed, seen1, t1.len, t1.step, res->sum.hash);
    trace_free(&t1);
    trace_free(&t2);
    return RT_OK;
  }
  res->determinism_failed = true;
  uint32_t passes = 1;
  if (same) {
    snprintf(res->determinism, sizeof(res->determinism),
             "the runs delivered the same %" PRIu64 " messages but end with "
             "hashes %016" PRIx64 " and %016" PRIx64 " (an input differs: "
             "bytes read or written)",
             seen1, res->sum.hash, again.hash);
  } else {
    err =
        narrow(cfg, mix, checkpoints_max, nudge_second, &t1, &t2, &i, &passes);
    if (err < 0)
      return err;
    char where[48] = "";
    if (i < t1.len && t1.evs != NULL && t1.evs[i].node != 0) {
      char name[40];
      node_name(t1.evs[i].node, name, sizeof(name));
      snprintf(where, sizeof(where), " on %s", name);
    }
    snprintf(res->determinism, sizeof(res->determinism),
             "runs part at delivery #%" PRIu64 "%s (run 1: %" PRIu64
             " deliveries, hash %016" PRIx64 "; run 2: %" PRIu64
             ", hash %016" PRIx64 "; found in %u passes)",
             t1.from + i, where, seen1, res->sum.hash, seen2, again.hash,
             passes);
  }
  fprintf(report, "determinism: seed %" PRIu64 ": %s\n", cfg->seed,
          res->determinism);
  if (!same) {
    print_event(report, "run 1", &t1, t1.from + i);
    print_event(report, "run 2", &t2, t1.from + i);
  }
  trace_free(&t1);
  trace_free(&t2);
  return RT_OK;
}
