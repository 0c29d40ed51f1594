/* overcookied-sim: the whole server in the simulated world, checked.
 *
 *   overcookied-sim --seed N --players P --duration T [--faults SPEC]
 *                   [--swarm K] [--jobs J] [--json] [--check-determinism]
 *
 * One run (simrun.h): Manager, Rooms, Clients and the Store behind the real
 * HTTP/WebSocket server, players that are sim_bots speaking the protocol,
 * a workload mix drawn from the seed, faults from SPEC, invariants checked
 * as the run goes and liveness checked after the fault phase. It prints a
 * summary (text, or --json) ending with the run's hash; exit 0 only when
 * every check passed, 1 when one failed (with the command that reproduces
 * it), 2 for bad arguments.
 *
 * --swarm K runs seeds N .. N+K-1, each with faults and mix drawn from the
 * seed itself (unless --faults is given), --jobs J of them at once in
 * forked processes; it fails if a seed fails or if some coverage point
 * (simrun_cov_t) was never reached. --check-determinism runs each seed
 * twice and names the first delivery where the runs part.
 *
 * The runs themselves never read the clock; this program reads nothing of
 * the wall clock either (the progress bar counts seeds).
 */
#include "simcli.h"
#include "simrun.h"
#include "sim_trace.h"

#include "rt_hash.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define CMD_MAX SIMCLI_CMD_MAX

typedef simcli_options_t options_t;
typedef simcli_plan_t seed_plan_t;

static int parse_args(int argc, char **argv, options_t *o) {
  return simcli_parse(argc, argv, o);
}
static void plan_seed(const options_t *o, uint64_t seed, seed_plan_t *out) {
  simcli_plan(o, seed, out);
}
static void config_of(const options_t *o, const seed_plan_t *sp,
                      simrun_config_t *cfg) {
  simcli_config(o, sp, cfg);
}
static void repro(const options_t *o, const seed_plan_t *sp, bool determinism,
                  char *out, size_t cap) {
  simcli_repro(o, sp, determinism, out, cap);
}

/* ---- Determinism: hash-chain checkpoints, then a window in detail -------
 *
 * Each run folds every delivery (time, actor, sender, tag, payload) into a
 * chain: c(n) = step(c(n-1), digest(delivery n)). Two runs part first at
 * delivery n exactly when c(n-1) agrees and c(n) does not, so comparing
 * the chain at checkpoints narrows the first divergence to a window
 * between two checkpoints, whatever the length of the run:
 *   pass 1: both runs keep c at every `step` deliveries, at most
 *           `checkpoints_max` values; when full, every other one is dropped
 *           and the step doubles (memory stays bounded at any length);
 *   pass k: both runs again, keeping c only inside the first window that
 *           differs, at a finer step (window / checkpoints_max);
 *   last:   step 1 over a window of at most checkpoints_max deliveries,
 *           each kept whole: the first differing one is the report.
 * A failing seed thus costs 2 runs per pass (2 passes up to 2^32 deliveries
 * with the default 2^16 checkpoints: 512 KiB, then 5.5 MiB for the last
 * pass's whole deliveries); a passing one costs 2 runs. */

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
             ? -1
             : 0;
}

static void trace_free(trace_t *t) {
  free(t->cps);
  free(t->evs);
  free(t->names);
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

static void print_event(FILE *out, const char *label, const trace_t *t,
                        uint64_t seq) {
  if (seq < t->from || seq - t->from >= t->len) {
    fprintf(out, "  %s: no delivery #%" PRIu64 " (the run had ended)\n", label,
            seq);
    return;
  }
  const rt_delivery_t *d = &t->evs[seq - t->from];
  fprintf(out,
          "  %s: seq=%" PRIu64 " t=%.9f actor=%" PRIu64 " (%s) from=%" PRIu64
          " tag=%u%s payload=%016" PRIx64 "\n",
          label, d->seq, (double)d->at / RT_NS_PER_S, d->actor,
          t->names[seq - t->from], d->from, (unsigned)d->tag,
          tag_name(d->tag), d->payload_hash);
}

/* ---- Running ------------------------------------------------------------- */

typedef struct result {
  simrun_summary_t sum;
  bool determinism_failed;
  char determinism[SIMRUN_FAILURE_MAX];
} result_t;

static int run_once(const options_t *o, const seed_plan_t *sp, trace_t *trace,
                    bool nudge, simrun_summary_t *out) {
  simrun_config_t cfg;
  config_of(o, sp, &cfg);
  if (nudge) /* half way through: the first divergence lies deep */
    cfg.nudge_at = o->duration / 2 > 0 ? o->duration / 2 : 1;
  if (trace != NULL) {
    cfg.trace = on_delivery;
    cfg.trace_ctx = trace;
  }
  /* --record: the run as a trace (its flags and checkpoints). */
  sim_trace_t *rec = NULL;
  char why[NET_TRACE_ERR_MAX];
  if (o->record_dir != NULL && trace == NULL) {
    char args[NET_TRACE_CONFIG_MAX];
    simcli_args(o, sp, args, sizeof(args));
    int rc = sim_trace_create(o->record_dir, sp->seed, SIM_EPOCH_DEFAULT_NS,
                              args, &rec, why, sizeof(why));
    if (rc < 0) {
      memset(out, 0, sizeof(*out));
      out->seed = sp->seed;
      snprintf(out->failure, sizeof(out->failure), "cannot record: %.400s", why);
      return -1;
    }
    cfg.trace = sim_trace_delivery;
    cfg.trace_ctx = rec;
  }
  simrun_t *run = NULL;
  int err = simrun_create(&cfg, &run);
  if (err < 0) {
    (void)sim_trace_close(rec, why, sizeof(why));
    memset(out, 0, sizeof(*out));
    out->seed = sp->seed;
    snprintf(out->failure, sizeof(out->failure), "cannot start: %s",
             rt_strerror(err));
    return -1;
  }
  err = simrun_populate(run, &sp->mix);
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

/* The first index where two checkpoint lists differ, or where one ends. */
static uint64_t first_difference(const trace_t *a, const trace_t *b) {
  uint64_t n = a->len < b->len ? a->len : b->len;
  for (uint64_t i = 0; i < n; i++)
    if (a->cps[i] != b->cps[i])
      return i;
  return n;
}

/* Two runs of one seed must deliver the same messages at the same times. */
static void check_determinism(const options_t *o, const seed_plan_t *sp,
                              result_t *res, FILE *report) {
  uint64_t cap = o->checkpoints_max;
  trace_t t1, t2;
  simrun_summary_t again;
  if (trace_init(&t1, 0, UINT64_MAX, 1, true, cap) < 0 ||
      trace_init(&t2, 0, UINT64_MAX, 1, true, cap) < 0) {
    fprintf(stderr, "overcookied-sim: out of memory for the trace\n");
    exit(3);
  }
  (void)run_once(o, sp, &t1, false, &res->sum);
  /* Run 2 keeps the step run 1 ended with (it adapts the same way while
   * the runs agree; fixed, its checkpoints line up with run 1's). */
  t2.step = t1.step;
  t2.adaptive = false;
  t2.cap = cap + 1;
  free(t2.cps);
  t2.cps = calloc(t2.cap, sizeof(*t2.cps));
  if (t2.cps == NULL) {
    fprintf(stderr, "overcookied-sim: out of memory for the trace\n");
    exit(3);
  }
  (void)run_once(o, sp, &t2, o->selftest_nondeterminism, &again);
  uint64_t seen1 = t1.seen, seen2 = t2.seen;
  uint64_t i = first_difference(&t1, &t2);
  bool same = i == t1.len && i == t2.len && seen1 == seen2 &&
              t1.chain == t2.chain;
  if (same && again.hash == res->sum.hash) {
    fprintf(report,
            "determinism: seed %" PRIu64 ": two runs agree (%" PRIu64
            " deliveries, %" PRIu64 " checkpoints every %" PRIu64
            ", hash=%016" PRIx64 ")\n",
            sp->seed, seen1, t1.len, t1.step, res->sum.hash);
    trace_free(&t1);
    trace_free(&t2);
    return;
  }
  res->determinism_failed = true;
  if (same) {
    snprintf(res->determinism, sizeof(res->determinism),
             "the runs delivered the same %" PRIu64 " messages but end with "
             "hashes %016" PRIx64 " and %016" PRIx64 " (an input differs: "
             "bytes read or written)",
             seen1, res->sum.hash, again.hash);
    fprintf(report, "determinism: seed %" PRIu64 ": %s\n", sp->seed,
            res->determinism);
    trace_free(&t1);
    trace_free(&t2);
    return;
  }
  /* Narrow down: the window of `step` deliveries after the last checkpoint
   * the runs share, until the step is 1. */
  uint32_t passes = 1;
  while (!t1.events) {
    uint64_t from = t1.from + i * t1.step, width = t1.step;
    uint64_t step = (width + cap - 1) / cap;
    trace_free(&t1);
    trace_free(&t2);
    if (trace_init(&t1, from, from + width, step, false, cap) < 0 ||
        trace_init(&t2, from, from + width, step, false, cap) < 0) {
      fprintf(stderr, "overcookied-sim: out of memory for the trace\n");
      exit(3);
    }
    simrun_summary_t ignored;
    (void)run_once(o, sp, &t1, false, &ignored);
    (void)run_once(o, sp, &t2, o->selftest_nondeterminism, &ignored);
    i = first_difference(&t1, &t2);
    passes++;
  }
  uint64_t at = t1.from + i;
  snprintf(res->determinism, sizeof(res->determinism),
           "runs part at delivery #%" PRIu64 " (run 1: %" PRIu64
           " deliveries, hash %016" PRIx64 "; run 2: %" PRIu64
           ", hash %016" PRIx64 "; found in %u passes)",
           at, seen1, res->sum.hash, seen2, again.hash, passes);
  fprintf(report, "determinism: seed %" PRIu64 ": %s\n", sp->seed,
          res->determinism);
  print_event(report, "run 1", &t1, at);
  print_event(report, "run 2", &t2, at);
  trace_free(&t1);
  trace_free(&t2);
}

static void run_seed(const options_t *o, const seed_plan_t *sp, result_t *res,
                     FILE *report) {
  memset(res, 0, sizeof(*res));
  if (o->check_determinism)
    check_determinism(o, sp, res, report);
  else
    (void)run_once(o, sp, NULL, false, &res->sum);
}

static bool result_passed(const result_t *r) {
  return r->sum.passed && !r->determinism_failed;
}

/* ---- Reports ------------------------------------------------------------- */

static const char end_names[GAME_END_REASON_COUNT_][24] = {
    "time", "quit", "opponent_disconnected"};
static const char kick_names[GAME_KICK_REASON_COUNT_][16] = {
    "must_overflow", "write_wait", "mailbox_full", "replaced", "server_full",
    "flood"};
/* The codes worth a name; net_server counts the rest as "other". */
static const uint16_t close_codes[] = {1000, 1001, 1002, 1003, 1006, 1007,
                                       1008, 1009, 1011, 1013, 4000};
#define CLOSE_CODES_LEN (sizeof(close_codes) / sizeof(close_codes[0]))
#define CLOSE_OTHER net_server_close_code_index(0)
static const char err_names[SIMRUN_ERR_COUNT_][16] = {
    "bad_json", "unknown_type", "not_in_game", "rate_limited", "other"};
static const char fault_names[5][16] = {
    "slow_links", "stalls", "resets_armed", "churn_drops", "store_errors"};

static void print_text(FILE *out, const options_t *o, const seed_plan_t *sp,
                       const result_t *r) {
  const simrun_summary_t *s = &r->sum;
  fprintf(out, "seed=%" PRIu64 " players=%u duration=%.3fs end=%.3fs\n",
          s->seed, s->players, (double)o->duration / RT_NS_PER_S,
          (double)s->end_time / RT_NS_PER_S);
  char limits[SIMRUN_LIMITS_TEXT_MAX];
  simrun_limits_format(&sp->limits, limits, sizeof(limits));
  fprintf(out, "faults: %s\nmix: %s\nlimits:%s\n", sp->faults_text,
          sp->mix_text, limits[0] != '\0' ? limits : " defaults");
  fprintf(out,
          "fault phase: ends at %.3fs; then %" PRIu64 " games were running, "
          "%" PRIu64 " players had left\n",
          (double)s->fault_end / RT_NS_PER_S, s->recovery_rooms,
          s->recovery_players);
  fprintf(out, "games: started=%" PRIu64, s->games_started);
  for (int i = 0; i < GAME_END_REASON_COUNT_; i++)
    fprintf(out, " %s=%" PRIu64, end_names[i], s->games_finished[i]);
  fprintf(out,
          " rooms_lost=%" PRIu64 " stored=%" PRIu64 " game_overs_seen=%" PRIu64
          "\n",
          s->rooms_lost, s->games_stored, s->game_overs_seen);
  fprintf(out,
          "clicks: sent=%" PRIu64 " scored=%" PRIu64 " countdown=%" PRIu64
          " rate_limited=%" PRIu64 " cookie_clicks=%" PRIu64
          " golden_spawns=%" PRIu64 " claims=%" PRIu64 " contested=%" PRIu64
          "\n",
          s->clicks_sent, s->clicks_scored, s->clicks_countdown,
          s->clicks_rate_limited, s->cookie_clicks, s->golden_spawns,
          s->golden_claims, s->golden_contested);
  fprintf(out,
          "messages: ws_in=%" PRIu64 " ws_out=%" PRIu64 " http=%" PRIu64
          " api_reads=%" PRIu64 " api_reads_503=%" PRIu64
          " player_frames_sent=%" PRIu64 " player_records=%" PRIu64
          " deliveries=%" PRIu64 "\n",
          s->ws_messages_in, s->ws_messages_out, s->http_requests, s->reads,
          s->reads_unavailable, s->frames_sent, s->frames_received,
          s->deliveries);
  fprintf(out, "errors_seen:");
  for (int i = 0; i < SIMRUN_ERR_COUNT_; i++)
    fprintf(out, " %s=%" PRIu64, err_names[i], s->errors_seen[i]);
  fprintf(out,
          "\ndrops: backpressure=%" PRIu64 " tick_replaced=%" PRIu64
          " mailbox_dropped=%" PRIu64 " mailbox_replaced=%" PRIu64
          " mailbox_rejected=%" PRIu64 " dead_letters=%" PRIu64
          " released_at_stop=%" PRIu64 "\n",
          s->out_dropped, s->out_tick_replaced, s->mailbox[RT_MB_DROPPED],
          s->mailbox[RT_MB_REPLACED], s->mailbox[RT_MB_REJECTED],
          s->dead_letters, s->dropped_at_stop);
  fprintf(out, "disconnects: kicks");
  for (int i = 0; i < GAME_KICK_REASON_COUNT_; i++)
    fprintf(out, " %s=%" PRIu64, kick_names[i], s->kicks[i]);
  fprintf(out, "\n  connections_closed");
  for (int i = 0; i < NET_CLOSE_REASON_COUNT_; i++)
    if (s->closes[i] > 0)
      fprintf(out, " %s=%" PRIu64, net_server_close_reason_name((net_close_reason_t)i), s->closes[i]);
  fprintf(out, "\n  ws_close_codes");
  for (uint32_t i = 0; i < CLOSE_CODES_LEN; i++) {
    uint64_t n = s->close_codes[net_server_close_code_index(close_codes[i])];
    if (n > 0)
      fprintf(out, " %u=%" PRIu64, (unsigned)close_codes[i], n);
  }
  if (s->close_codes[CLOSE_OTHER] > 0)
    fprintf(out, " other=%" PRIu64, s->close_codes[CLOSE_OTHER]);
  fprintf(out,
          "\n  resumed=%" PRIu64 " reconnects=%" PRIu64 " departures=%" PRIu64
          " refused=%u\n",
          s->resumed, s->reconnects, s->departures, s->players_refused);
  fprintf(out,
          "store: recorded=%" PRIu64 " duplicates=%" PRIu64 " errors=%" PRIu64
          " retries=%" PRIu64 " reads_failed=%" PRIu64 "\n",
          s->store_recorded, s->store_duplicates, s->store_errors,
          s->store_retries, s->store_reads_failed);
  fprintf(out, "faults_injected:");
  for (int i = 0; i < 5; i++)
    fprintf(out, " %s=%" PRIu64, fault_names[i], s->faults_injected[i]);
  fprintf(out, " edge_actions=%" PRIu64 "\ncoverage:", s->edges);
  for (int i = 0; i < SIMRUN_COV_COUNT_; i++)
    fprintf(out, " %s=%" PRIu64, simrun_cov_name((simrun_cov_t)i), s->cov[i]);
  fprintf(out,
          "\nchecks: %" PRIu64 " invariant checks (%" PRIu64
          " after every %" PRIu64 " deliveries), %s\n",
          s->checks, s->checks_by_deliveries, o->check_deliveries,
          result_passed(r) ? "all passed" : "FAILED");
  if (!s->passed)
    fprintf(out, "FAIL at t=%.6fs: %s\n", (double)s->failed_at / RT_NS_PER_S,
            s->failure);
  if (r->determinism_failed)
    fprintf(out, "FAIL determinism: %s\n", r->determinism);
  if (!result_passed(r)) {
    char cmd[CMD_MAX];
    repro(o, sp, r->determinism_failed, cmd, sizeof(cmd));
    fprintf(out, "repro: %s\n", cmd);
  }
  fprintf(out, "hash=%016" PRIx64 "\n", s->hash);
}

static void json_str(FILE *out, const char *s) {
  fputc('"', out);
  for (; *s != '\0'; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\')
      fprintf(out, "\\%c", c);
    else if (c < 0x20)
      fprintf(out, "\\u%04x", c);
    else
      fputc(c, out);
  }
  fputc('"', out);
}

static void print_json(FILE *out, const options_t *o, const seed_plan_t *sp,
                       const result_t *r) {
  const simrun_summary_t *s = &r->sum;
  fprintf(out,
          "{\"seed\":%" PRIu64 ",\"players\":%u,\"duration_ms\":%" PRId64
          ",\"end_ms\":%" PRId64 ",\"faults\":",
          s->seed, s->players, (int64_t)(o->duration / RT_NS_PER_MS),
          (int64_t)(s->end_time / RT_NS_PER_MS));
  json_str(out, sp->faults_text);
  fprintf(out, ",\"mix\":");
  json_str(out, sp->mix_text);
  fprintf(out, ",\"limits\":{");
  simrun_limits_t lim = sp->limits;
  for (uint32_t i = 0; i < SIMRUN_LIMITS_COUNT; i++)
    fprintf(out, "%s\"%s\":%u", i ? "," : "", simrun_limit_name(i),
            *simrun_limit_field(&lim, i));
  fprintf(out,
          "},\"fault_phase\":{\"end_ms\":%" PRId64
          ",\"games_running\":%" PRIu64 ",\"players_departed\":%" PRIu64 "}",
          (int64_t)(s->fault_end / RT_NS_PER_MS), s->recovery_rooms,
          s->recovery_players);
  fprintf(out, ",\"games\":{\"started\":%" PRIu64, s->games_started);
  for (int i = 0; i < GAME_END_REASON_COUNT_; i++)
    fprintf(out, ",\"%s\":%" PRIu64, end_names[i], s->games_finished[i]);
  fprintf(out,
          ",\"rooms_lost\":%" PRIu64 ",\"stored\":%" PRIu64
          ",\"game_overs_seen\":%" PRIu64 "}",
          s->rooms_lost, s->games_stored, s->game_overs_seen);
  fprintf(out,
          ",\"clicks\":{\"sent\":%" PRIu64 ",\"scored\":%" PRIu64
          ",\"countdown\":%" PRIu64 ",\"rate_limited\":%" PRIu64
          ",\"cookie_clicks\":%" PRIu64 ",\"golden_spawns\":%" PRIu64
          ",\"golden_claims\":%" PRIu64 ",\"golden_contested\":%" PRIu64 "}",
          s->clicks_sent, s->clicks_scored, s->clicks_countdown,
          s->clicks_rate_limited, s->cookie_clicks, s->golden_spawns,
          s->golden_claims, s->golden_contested);
  fprintf(out,
          ",\"messages\":{\"ws_in\":%" PRIu64 ",\"ws_out\":%" PRIu64
          ",\"http\":%" PRIu64 ",\"api_reads\":%" PRIu64
          ",\"api_reads_503\":%" PRIu64 ",\"player_frames_sent\":%" PRIu64
          ",\"player_records\":%" PRIu64 ",\"deliveries\":%" PRIu64 "}",
          s->ws_messages_in, s->ws_messages_out, s->http_requests, s->reads,
          s->reads_unavailable, s->frames_sent, s->frames_received,
          s->deliveries);
  fprintf(out, ",\"errors_seen\":{");
  for (int i = 0; i < SIMRUN_ERR_COUNT_; i++)
    fprintf(out, "%s\"%s\":%" PRIu64, i ? "," : "", err_names[i],
            s->errors_seen[i]);
  fprintf(out,
          "},\"drops\":{\"backpressure\":%" PRIu64 ",\"tick_replaced\":%" PRIu64
          ",\"mailbox_dropped\":%" PRIu64 ",\"mailbox_replaced\":%" PRIu64
          ",\"mailbox_rejected\":%" PRIu64 ",\"dead_letters\":%" PRIu64
          ",\"released_at_stop\":%" PRIu64 "}",
          s->out_dropped, s->out_tick_replaced, s->mailbox[RT_MB_DROPPED],
          s->mailbox[RT_MB_REPLACED], s->mailbox[RT_MB_REJECTED],
          s->dead_letters, s->dropped_at_stop);
  fprintf(out, ",\"disconnects\":{\"kicks\":{");
  for (int i = 0; i < GAME_KICK_REASON_COUNT_; i++)
    fprintf(out, "%s\"%s\":%" PRIu64, i ? "," : "", kick_names[i], s->kicks[i]);
  fprintf(out, "},\"connections_closed\":{");
  for (int i = 0; i < NET_CLOSE_REASON_COUNT_; i++)
    fprintf(out, "%s\"%s\":%" PRIu64, i ? "," : "",
            net_server_close_reason_name((net_close_reason_t)i), s->closes[i]);
  fprintf(out, "},\"ws_close_codes\":{");
  for (uint32_t i = 0; i < CLOSE_CODES_LEN; i++)
    fprintf(out, "%s\"%u\":%" PRIu64, i ? "," : "", (unsigned)close_codes[i],
            s->close_codes[net_server_close_code_index(close_codes[i])]);
  fprintf(out, ",\"other\":%" PRIu64, s->close_codes[CLOSE_OTHER]);
  fprintf(out,
          "},\"resumed\":%" PRIu64 ",\"reconnects\":%" PRIu64
          ",\"departures\":%" PRIu64 ",\"refused\":%u}",
          s->resumed, s->reconnects, s->departures, s->players_refused);
  fprintf(out,
          ",\"store\":{\"recorded\":%" PRIu64 ",\"duplicates\":%" PRIu64
          ",\"errors\":%" PRIu64 ",\"retries\":%" PRIu64
          ",\"reads_failed\":%" PRIu64 "}",
          s->store_recorded, s->store_duplicates, s->store_errors,
          s->store_retries, s->store_reads_failed);
  fprintf(out, ",\"faults_injected\":{");
  for (int i = 0; i < 5; i++)
    fprintf(out, "%s\"%s\":%" PRIu64, i ? "," : "", fault_names[i],
            s->faults_injected[i]);
  fprintf(out, ",\"edge_actions\":%" PRIu64 "},\"coverage\":{", s->edges);
  for (int i = 0; i < SIMRUN_COV_COUNT_; i++)
    fprintf(out, "%s\"%s\":%" PRIu64, i ? "," : "",
            simrun_cov_name((simrun_cov_t)i), s->cov[i]);
  fprintf(out,
          "},\"checks\":%" PRIu64 ",\"checks_by_deliveries\":%" PRIu64
          ",\"check_every\":%" PRIu64 ",\"passed\":%s",
          s->checks, s->checks_by_deliveries, o->check_deliveries,
          result_passed(r) ? "true" : "false");
  if (!s->passed) {
    fprintf(out, ",\"failed_at_ms\":%" PRId64 ",\"failure\":",
            (int64_t)(s->failed_at / RT_NS_PER_MS));
    json_str(out, s->failure);
  }
  if (r->determinism_failed) {
    fprintf(out, ",\"determinism\":");
    json_str(out, r->determinism);
  }
  if (!result_passed(r)) {
    char cmd[CMD_MAX];
    repro(o, sp, r->determinism_failed, cmd, sizeof(cmd));
    fprintf(out, ",\"repro\":");
    json_str(out, cmd);
  }
  fprintf(out, ",\"hash\":\"%016" PRIx64 "\"}\n", s->hash);
}

/* ---- Swarm --------------------------------------------------------------- */

typedef struct child {
  pid_t pid;
  int fd;
  uint64_t seed;
} child_t;

typedef struct swarm {
  const options_t *o;
  uint64_t done, failed;
  uint64_t cov[SIMRUN_COV_COUNT_];
  uint64_t games, deliveries;
  uint64_t *failing; /* seeds, in the order they finished */
  bool tty;
} swarm_t;

static void progress(const swarm_t *s, bool final) {
  if (!s->tty)
    return;
  const uint32_t width = 30;
  uint32_t fill = (uint32_t)(s->done * width / s->o->swarm);
  fprintf(stderr, "\r[");
  for (uint32_t i = 0; i < width; i++)
    fputc(i < fill ? '=' : i == fill ? '>' : ' ', stderr);
  fprintf(stderr, "] %" PRIu64 "/%u seeds, %" PRIu64 " failed", s->done,
          s->o->swarm, s->failed);
  if (final)
    fputc('\n', stderr);
  fflush(stderr);
}

static void clear_progress(const swarm_t *s) {
  if (s->tty)
    fprintf(stderr, "\r\033[K");
}

static void swarm_record(swarm_t *s, const seed_plan_t *sp, const result_t *r) {
  s->done++;
  for (int i = 0; i < SIMRUN_COV_COUNT_; i++)
    s->cov[i] += r->sum.cov[i];
  s->games += r->sum.games_started;
  s->deliveries += r->sum.deliveries;
  bool ok = result_passed(r);
  if (!ok)
    s->failing[s->failed++] = sp->seed;
  if (s->o->json)
    return;
  clear_progress(s);
  char limits[SIMRUN_LIMITS_TEXT_MAX];
  simrun_limits_format(&sp->limits, limits, sizeof(limits));
  printf("seed=%" PRIu64 " %s games=%" PRIu64 " hash=%016" PRIx64
         " faults=%s mix=%s%s%s\n",
         sp->seed, ok ? "ok" : "FAIL", r->sum.games_started, r->sum.hash,
         sp->faults_text, sp->mix_text, limits[0] != '\0' ? " limits:" : "",
         limits);
  if (!ok) {
    char cmd[CMD_MAX];
    repro(s->o, sp, r->determinism_failed, cmd, sizeof(cmd));
    printf("  FAIL seed=%" PRIu64 ": %s\n  repro: %s\n", sp->seed,
           !r->sum.passed ? r->sum.failure : r->determinism, cmd);
  }
  fflush(stdout);
  progress(s, false);
}

/* A child runs one seed and writes its result_t to fd. */
static void child_main(const options_t *o, const seed_plan_t *sp, int fd) {
  result_t res;
  run_seed(o, sp, &res, stderr);
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
  seed_plan_t sp;
  plan_seed(s->o, c->seed, &sp);
  result_t res;
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
  swarm_record(s, &sp, &res);
}

static int run_swarm(const options_t *o) {
  swarm_t s = {.o = o, .tty = isatty(STDERR_FILENO) != 0};
  s.failing = calloc(o->swarm, sizeof(*s.failing));
  child_t *kids = calloc(o->jobs, sizeof(*kids));
  if (s.failing == NULL || kids == NULL) {
    fprintf(stderr, "overcookied-sim: out of memory\n");
    free(s.failing);
    free(kids);
    return 1;
  }
  uint32_t next = 0, running = 0;
  progress(&s, false);
  while (next < o->swarm || running > 0) {
    /* Start seeds while there is room (bounded by --jobs). */
    while (next < o->swarm && running < o->jobs) {
      uint64_t seed = o->seed + next;
      int fds[2];
      if (pipe(fds) < 0) {
        perror("overcookied-sim: pipe");
        break;
      }
      fflush(stdout);
      fflush(stderr);
      pid_t pid = fork();
      if (pid < 0) {
        perror("overcookied-sim: fork");
        close(fds[0]);
        close(fds[1]);
        break;
      }
      if (pid == 0) {
        close(fds[0]);
        seed_plan_t sp;
        plan_seed(o, seed, &sp);
        child_main(o, &sp, fds[1]);
      }
      close(fds[1]);
      uint32_t slot = 0;
      while (kids[slot].pid != 0)
        slot++;
      kids[slot] = (child_t){.pid = pid, .fd = fds[0], .seed = seed};
      running++;
      next++;
    }
    if (running == 0)
      break; /* could not start any: give up (reported above) */
    int status = 0;
    pid_t pid = waitpid(-1, &status, 0);
    if (pid < 0) {
      if (errno == EINTR)
        continue;
      perror("overcookied-sim: waitpid");
      break;
    }
    for (uint32_t i = 0; i < o->jobs; i++) {
      if (kids[i].pid == pid) {
        collect(&s, &kids[i], status);
        kids[i].pid = 0;
        running--;
        break;
      }
    }
  }
  clear_progress(&s);
  progress(&s, true);
  bool coverage_ok = true;
  for (int i = 0; i < SIMRUN_COV_COUNT_; i++)
    coverage_ok = coverage_ok && s.cov[i] > 0;
  bool all_ran = s.done == o->swarm;
  if (o->json) {
    printf("{\"seeds\":%u,\"first_seed\":%" PRIu64 ",\"done\":%" PRIu64
           ",\"failed\":%" PRIu64 ",\"games\":%" PRIu64 ",\"coverage\":{",
           o->swarm, o->seed, s.done, s.failed, s.games);
    for (int i = 0; i < SIMRUN_COV_COUNT_; i++)
      printf("%s\"%s\":%" PRIu64, i ? "," : "",
             simrun_cov_name((simrun_cov_t)i), s.cov[i]);
    printf("},\"failing_seeds\":[");
    for (uint64_t i = 0; i < s.failed; i++)
      printf("%s%" PRIu64, i ? "," : "", s.failing[i]);
    printf("],\"passed\":%s}\n",
           s.failed == 0 && coverage_ok && all_ran ? "true" : "false");
  } else {
    printf("swarm: %" PRIu64 "/%u seeds run, %" PRIu64 " failed, %" PRIu64
           " games, %" PRIu64 " deliveries\ncoverage:",
           s.done, o->swarm, s.failed, s.games, s.deliveries);
    for (int i = 0; i < SIMRUN_COV_COUNT_; i++)
      printf(" %s=%" PRIu64, simrun_cov_name((simrun_cov_t)i), s.cov[i]);
    printf("\n");
    for (int i = 0; i < SIMRUN_COV_COUNT_; i++)
      if (s.cov[i] == 0)
        printf("FAIL coverage: %s was never reached\n",
               simrun_cov_name((simrun_cov_t)i));
    for (uint64_t i = 0; i < s.failed; i++) {
      seed_plan_t sp;
      plan_seed(o, s.failing[i], &sp);
      char cmd[CMD_MAX];
      repro(o, &sp, o->check_determinism, cmd, sizeof(cmd));
      printf("FAIL seed=%" PRIu64 ": %s\n", s.failing[i], cmd);
    }
    printf("%s\n", s.failed == 0 && coverage_ok && all_ran ? "swarm: passed"
                                                           : "swarm: FAILED");
  }
  free(s.failing);
  free(kids);
  return s.failed == 0 && coverage_ok && all_ran ? 0 : 1;
}

int main(int argc, char **argv) {
  options_t o;
  int parsed = parse_args(argc, argv, &o);
  if (parsed == SIMCLI_HELP) {
    simcli_usage(stdout);
    return 0;
  }
  if (parsed < 0)
    return 2;
  signal(SIGPIPE, SIG_IGN);
  if (o.swarm > 0)
    return run_swarm(&o);
  seed_plan_t sp;
  plan_seed(&o, o.seed, &sp);
  result_t res;
  run_seed(&o, &sp, &res, o.json ? stderr : stdout);
  if (o.json)
    print_json(stdout, &o, &sp, &res);
  else
    print_text(stdout, &o, &sp, &res);
  return result_passed(&res) ? 0 : 1;
}
