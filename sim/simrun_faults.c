/* simrun_faults.c: the faults a run meets (simrun.h): the --faults grammar
 * and a swarm's draw of it, the limits the server runs with (and a swarm's
 * tight ones), the Store's fault hook, and the faults on each connected
 * player (stalls, resets, churn) as Poisson events of its fault stream.
 */
#include "simrun_int.h"

#include "game_store.h"
#include "net_ws.h"
#include "sim_pipe.h"

#include <inttypes.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Faults: the grammar of simrun.h ------------------------------------- */

void simrun_faults_default(simrun_faults_t *f) {
  *f = (simrun_faults_t){.latency = 5 * MS};
}

static int parse_prob(const char *s, size_t len, double *out) {
  char buf[32];
  if (len == 0 || len >= sizeof(buf))
    return -1;
  memcpy(buf, s, len);
  buf[len] = '\0';
  for (size_t i = 0; i < len; i++)
    if (!((buf[i] >= '0' && buf[i] <= '9') || buf[i] == '.'))
      return -1;
  char *end;
  double v = strtod(buf, &end);
  if (*end != '\0' || !(v >= 0.0 && v <= 1.0))
    return -1;
  *out = v;
  return 0;
}

static int parse_duration(const char *s, size_t len, rt_time_ns max,
                          rt_time_ns *out) {
  char buf[32];
  if (len == 0 || len >= sizeof(buf))
    return -1;
  memcpy(buf, s, len);
  buf[len] = '\0';
  size_t digits = 0;
  while (digits < len &&
         ((buf[digits] >= '0' && buf[digits] <= '9') || buf[digits] == '.'))
    digits++;
  if (digits == 0)
    return -1;
  const char *unit = buf + digits;
  double scale;
  if (strcmp(unit, "ns") == 0)
    scale = 1;
  else if (strcmp(unit, "us") == 0)
    scale = 1e3;
  else if (strcmp(unit, "ms") == 0)
    scale = 1e6;
  else if (strcmp(unit, "s") == 0)
    scale = 1e9;
  else if (unit[0] == '\0')
    scale = 0; /* only 0 may go without a unit */
  else
    return -1;
  buf[digits] = '\0';
  char *end;
  double v = strtod(buf, &end);
  if (*end != '\0' || !(v >= 0.0))
    return -1;
  if (scale == 0) {
    if (v != 0.0)
      return -1;
    *out = 0;
    return 0;
  }
  double ns = v * scale;
  if (ns > (double)max)
    return -1;
  *out = (rt_time_ns)(ns + 0.5);
  return 0;
}

/* The one-process keys first (indexes below), then a cluster's. */
static const char fault_keys[][12] = {
    "slow",  "stall",  "reset", "churn",     "store",    "latency", "jitter",
    "until", "crash",  "pause", "redis",     "partition", "rlatency",
    "rjitter"};
enum { K_FIRST_DURATION = 5, K_UNTIL = 7, K_CLUSTER = 8 };

#define FAULT_KEYS (sizeof(fault_keys) / sizeof(fault_keys[0]))

int simrun_faults_parse(const char *spec, simrun_faults_t *out, char *why,
                        size_t cap) {
  simrun_faults_t f;
  simrun_faults_default(&f);
  if (spec == NULL || strcmp(spec, "none") == 0 || spec[0] == '\0') {
    *out = f;
    return 0;
  }
  bool seen[FAULT_KEYS] = {false};
  const char *p = spec;
  for (uint32_t items = 0; items <= FAULT_KEYS; items++) {
    const char *comma = strchr(p, ',');
    size_t len = comma != NULL ? (size_t)(comma - p) : strlen(p);
    const char *eq = memchr(p, '=', len);
    if (eq == NULL) {
      snprintf(why, cap, "'%.*s' is not KEY=VALUE", (int)len, p);
      return -1;
    }
    size_t klen = (size_t)(eq - p);
    const char *v = eq + 1;
    size_t vlen = len - klen - 1;
    uint32_t k = 0;
    while (k < FAULT_KEYS && !(strlen(fault_keys[k]) == klen &&
                               strncmp(fault_keys[k], p, klen) == 0))
      k++;
    if (k == FAULT_KEYS) {
      snprintf(why, cap,
               "unknown key '%.*s' (keys: slow, stall, reset, churn, store, "
               "latency, jitter, until; a cluster's: crash, pause, redis, "
               "partition, rlatency, rjitter)",
               (int)klen, p);
      return -1;
    }
    if (seen[k]) {
      snprintf(why, cap, "'%s' given twice", fault_keys[k]);
      return -1;
    }
    seen[k] = true;
    double *probs[] = {&f.slow,  &f.stall, &f.reset, &f.churn,    &f.store,
                       NULL,     NULL,     NULL,     &f.crash,    &f.pause,
                       &f.redis, &f.partition};
    rt_time_ns *durs[] = {NULL, NULL,     NULL,     NULL,       NULL,
                          &f.latency, &f.jitter, &f.until, NULL, NULL,
                          NULL, NULL,  &f.rlatency, &f.rjitter};
    bool prob = k < sizeof(probs) / sizeof(probs[0]) && probs[k] != NULL;
    int rc = prob ? parse_prob(v, vlen, probs[k])
                  : parse_duration(v, vlen,
                                   k == K_UNTIL ? SIMRUN_DURATION_MAX
                                                : 10 * SEC,
                                   durs[k]);
    if (rc < 0) {
      snprintf(why, cap,
               prob           ? "%s=%.*s: expected a probability in [0, 1]"
               : k == K_UNTIL ? "%s=%.*s: expected a virtual time such as 30s "
                                "(units ns, us, ms, s; at most 24 h)"
                              : "%s=%.*s: expected a duration such as 20ms "
                                "(units ns, us, ms, s; at most 10 s)",
               fault_keys[k], (int)vlen, v);
      return -1;
    }
    if (comma == NULL) {
      *out = f;
      return 0;
    }
    p = comma + 1;
  }
  snprintf(why, cap, "too many items");
  return -1;
}

static void format_duration(rt_time_ns d, char *out, size_t cap) {
  if (d % SEC == 0 && d > 0)
    snprintf(out, cap, "%" PRId64 "s", (int64_t)(d / SEC));
  else if (d % MS == 0)
    snprintf(out, cap, "%" PRId64 "ms", (int64_t)(d / MS));
  else if (d % RT_NS_PER_US == 0)
    snprintf(out, cap, "%" PRId64 "us", (int64_t)(d / RT_NS_PER_US));
  else
    snprintf(out, cap, "%" PRId64 "ns", (int64_t)d);
}

/* The shortest %g text that strtod reads back as v: %.17g always does but
 * reads badly, and a swarm's draws are rounded to 4 digits
 * (simrun_faults_draw), so they stay short; a user's 0.33333 keeps all its
 * digits (at %.4g it would replay as another run). */
static void format_probability(double v, char *out, size_t cap) {
  for (int digits = 4; digits <= 17; digits++) {
    snprintf(out, cap, "%.*g", digits, v);
    if (strtod(out, NULL) == v)
      return;
  }
}

static double round4(double v) { return floor(v * 10000.0 + 0.5) / 10000.0; }

void simrun_faults_format(const simrun_faults_t *f, char *out, size_t cap) {
  char lat[32], jit[32];
  format_duration(f->latency, lat, sizeof(lat));
  format_duration(f->jitter, jit, sizeof(jit));
  char p[5][32];
  const double v[5] = {f->slow, f->stall, f->reset, f->churn, f->store};
  for (int i = 0; i < 5; i++)
    format_probability(v[i], p[i], sizeof(p[i]));
  int n = snprintf(out, cap,
                   "slow=%s,stall=%s,reset=%s,churn=%s,store=%s,"
                   "latency=%s,jitter=%s",
                   p[0], p[1], p[2], p[3], p[4], lat, jit);
  if (f->until > 0 && n > 0 && (size_t)n < cap) {
    char until[32];
    format_duration(f->until, until, sizeof(until));
    n += snprintf(out + n, cap - (size_t)n, ",until=%s", until);
  }
  /* A cluster's, only when one is set: one process's text stays. */
  if ((f->crash > 0 || f->pause > 0 || f->redis > 0 || f->partition > 0 ||
       f->rlatency > 0 || f->rjitter > 0) &&
      n > 0 && (size_t)n < cap) {
    char c[4][32], rl[32], rj[32];
    const double cv[4] = {f->crash, f->pause, f->redis, f->partition};
    for (int i = 0; i < 4; i++)
      format_probability(cv[i], c[i], sizeof(c[i]));
    format_duration(f->rlatency, rl, sizeof(rl));
    format_duration(f->rjitter, rj, sizeof(rj));
    snprintf(out + n, cap - (size_t)n,
             ",crash=%s,pause=%s,redis=%s,partition=%s,rlatency=%s,rjitter=%s",
             c[0], c[1], c[2], c[3], rl, rj);
  }
}

void simrun_cluster_draw(uint64_t seed, uint32_t *instances,
                         simrun_faults_t *f) {
  rt_rng_t rng;
  rt_rng_init(&rng, seed, KEY_CLUSTER_DRAW);
  bool cluster = rt_rng_double(&rng) < 1.0 / 3.0;
  uint32_t k = (uint32_t)rt_rng_range(&rng, 2, 5);
  if (*instances == 0)
    *instances = cluster ? k : 0;
  if (*instances < 2)
    return;
  double *probs[] = {&f->crash, &f->pause, &f->redis, &f->partition};
  const double hi[] = {0.6, 0.6, 0.6, 0.6};
  for (int i = 0; i < 4; i++) {
    bool on = rt_rng_double(&rng) < 0.6;
    double v = simrun__uniform(&rng, 0.05, hi[i]);
    *probs[i] = on ? round4(v) : 0.0;
  }
  f->rlatency = (rt_time_ns)rt_rng_range(&rng, 0, 5) * MS;
  f->rjitter = (rt_time_ns)rt_rng_range(&rng, 0, 3) * MS;
}


void simrun_faults_draw(uint64_t seed, rt_time_ns duration,
                        simrun_faults_t *out) {
  rt_rng_t rng;
  rt_rng_init(&rng, seed, KEY_SWARM_FAULTS);
  simrun_faults_default(out);
  /* Each fault is on for about 60% of seeds, so a swarm meets each one
   * alone and in company. */
  double *probs[] = {&out->slow, &out->stall, &out->reset, &out->churn,
                     &out->store};
  const double hi[] = {0.3, 0.5, 0.5, 0.5, 0.3};
  for (int i = 0; i < 5; i++) {
    bool on = rt_rng_double(&rng) < 0.6;
    double v = simrun__uniform(&rng, 0.01, hi[i]);
    *probs[i] = on ? round4(v) : 0.0;
  }
  out->latency = (rt_time_ns)rt_rng_range(&rng, 1, 40) * MS;
  out->jitter = (rt_time_ns)rt_rng_range(&rng, 0, out->latency / MS / 2) * MS;
  /* Drawn last, so the draws above stay what they were. Whole seconds when
   * the duration allows: the repro command reads well. */
  if (rt_rng_double(&rng) < 0.5 && duration >= 4 * MS) {
    rt_time_ns t = simrun__uniform_ns(&rng, duration / 4, duration - 1);
    rt_time_ns unit = duration >= 8 * SEC ? SEC : MS;
    out->until = t / unit * unit;
    if (out->until < unit)
      out->until = unit;
  }
}

/* ---- Limits -------------------------------------------------------------- */

static const char limit_names[SIMRUN_LIMITS_COUNT][20] = {
    "players-max",     "queue-max",       "out-count-max", "out-bytes-max",
    "conn-high-water", "connections-max", "mailbox-cap",   "ws-message-max",
    "link-buffer",     "ws-park-ms"};

void simrun_limits_default(simrun_limits_t *l) {
  game_config_t g;
  game_config_defaults(&g);
  uint32_t cap;
  rt_overflow_t policy;
  const rt_overflow_rule_t *rules;
  uint32_t rules_len;
  game_client_mailbox(&cap, &policy, &rules, &rules_len);
  *l = (simrun_limits_t){
      .players_max = g.players_max,
      .queue_max = g.queue_max,
      .out_count_max = g.out_count_max,
      .out_bytes_max = g.out_bytes_max,
      .conn_high_water = g.conn_high_water,
      .connections_max = NET_CONNECTIONS_MAX_DEFAULT,
      .mailbox_cap = cap,
      .ws_message_max = NET_WS_MESSAGE_MAX_DEFAULT,
      .link_buffer = SIM_BUFFER_DEFAULT,
      .ws_park_ms = (uint32_t)(NET_WS_PARK_AFTER_DEFAULT / RT_NS_PER_MS)};
}

const char *simrun_limit_name(uint32_t i) {
  return i < SIMRUN_LIMITS_COUNT ? limit_names[i] : "?";
}

uint32_t *simrun_limit_field(simrun_limits_t *l, uint32_t i) {
  uint32_t *fields[SIMRUN_LIMITS_COUNT] = {
      &l->players_max,   &l->queue_max,       &l->out_count_max,
      &l->out_bytes_max, &l->conn_high_water, &l->connections_max,
      &l->mailbox_cap,   &l->ws_message_max,  &l->link_buffer,
      &l->ws_park_ms};
  return i < SIMRUN_LIMITS_COUNT ? fields[i] : NULL;
}

void simrun_limit_range(uint32_t i, uint32_t *min, uint32_t *max) {
  /* game_config_check's and the server's floors; a mailbox needs room for
   * a burst of the game's frames; a link at least one segment. */
  static const uint32_t lo[SIMRUN_LIMITS_COUNT] = {
      1, 1, 4, 1024, 1, 1, 16, 16, SIM_MSS_DEFAULT, 0};
  static const uint32_t hi[SIMRUN_LIMITS_COUNT] = {
      SIMRUN_PLAYERS_MAX * 2,
      SIMRUN_PLAYERS_MAX * 2,
      1u << 20,
      1u << 30,
      1u << 30,
      SIMRUN_PLAYERS_MAX * 4,
      1u << 20,
      NET_WS_MESSAGE_MAX_LIMIT,
      SIM_BUFFER_MAX,
      (uint32_t)(NET_DURATION_MAX / RT_NS_PER_MS)};
  *min = i < SIMRUN_LIMITS_COUNT ? lo[i] : 0;
  *max = i < SIMRUN_LIMITS_COUNT ? hi[i] : 0;
}

void simrun_limits_draw(uint64_t seed, simrun_limits_t *out) {
  rt_rng_t rng;
  rt_rng_init(&rng, seed, KEY_LIMITS);
  simrun_limits_default(out);
  if (rt_rng_double(&rng) < 0.35) {
    /* Tight: a reader that stalls in a game fills its link, the
     * connection's backlog and the Client's queue within the write wait,
     * and the next never-dropped frame (a COOKIE_SPAWN, a claim, an ERROR)
     * cannot fit. */
    out->out_count_max = (uint32_t)rt_rng_range(&rng, 4, 12);
    out->out_bytes_max = (uint32_t)rt_rng_range(&rng, 1024, 8192);
    out->conn_high_water = (uint32_t)rt_rng_range(&rng, 256, 4096);
    out->link_buffer = (uint32_t)rt_rng_range(&rng, 2048, 16384);
  }
  /* Parking between clicks, mid-frame on slow links, with output stuck
   * behind a stalled reader: net_ws_park must refuse or wake cleanly. */
  if (rt_rng_double(&rng) < 0.35)
    out->ws_park_ms = (uint32_t)rt_rng_range(&rng, 1, 50);
}

void simrun_limits_format(const simrun_limits_t *l, char *out, size_t cap) {
  simrun_limits_t d, copy = *l;
  simrun_limits_default(&d);
  size_t len = 0;
  out[0] = '\0';
  for (uint32_t i = 0; i < SIMRUN_LIMITS_COUNT && len < cap; i++) {
    uint32_t v = *simrun_limit_field(&copy, i);
    if (v == *simrun_limit_field(&d, i))
      continue;
    int n = snprintf(out + len, cap - len, " --%s %u", limit_names[i], v);
    if (n < 0)
      break;
    len += (size_t)n;
  }
}

void simrun_limits_apply(const simrun_limits_t *l, simrun_config_t *cfg) {
  cfg->game.players_max = l->players_max;
  cfg->game.queue_max = l->queue_max;
  cfg->game.out_count_max = l->out_count_max;
  cfg->game.out_bytes_max = l->out_bytes_max;
  cfg->game.conn_high_water = l->conn_high_water;
  cfg->connections_max = l->connections_max;
  cfg->mailbox_cap = l->mailbox_cap;
  cfg->ws_message_max = l->ws_message_max;
  cfg->link_buffer = l->link_buffer;
  cfg->ws_park_after = (rt_time_ns)l->ws_park_ms * RT_NS_PER_MS;
}

/* ---- The Store's fault hook ---------------------------------------------- */

int simrun__store_fault(void *ctx, game_store_op_t op) {
  static const int codes[] = {SQLITE_BUSY, SQLITE_FULL, SQLITE_IOERR};
  (void)op;
  simrun_t *run = ctx;
  rt_time_ns now = simrun__now(run);
  const simrun_faults_t *f = &run->cfg.faults;
  bool down = now >= f->store_down_from && now < f->store_down_until;
  /* run->fault_end is F from the start: no error at or after it. */
  if (!down && !(now < run->fault_end && f->store > 0 &&
                 rt_rng_double(&run->store_rng) < f->store))
    return SQLITE_OK;
  uint64_t n = run->sum.faults_injected[4]++;
  return codes[n % 3];
}

/* ---- Faults on a player -------------------------------------------------- */

/* The next event of a per-minute probability, as a Poisson process. */
static rt_time_ns next_event(rt_rng_t *rng, rt_time_ns now, double per_min) {
  if (per_min <= 0)
    return NEVER;
  double p = per_min < 0.999 ? per_min : 0.999;
  double rate = -log(1.0 - p); /* events per minute */
  double u = rt_rng_double(rng);
  double minutes = -log(1.0 - u) / rate;
  double ns = minutes * 60.0 * 1e9;
  if (ns > 1e15)
    return NEVER;
  return now + (rt_time_ns)ns + 1;
}

bool simrun__faulty(const simrun_t *run, const player_t *p) {
  return !p->plan.no_faults && !p->plan.manual && !run->faults_over;
}

void simrun__faults_arm(simrun_t *run, player_t *p, rt_time_ns now) {
  if (!simrun__faulty(run, p))
    return;
  const simrun_faults_t *f = &run->cfg.faults;
  p->sched.stall_at = next_event(&p->frng, now, f->stall);
  p->sched.reset_at = next_event(&p->frng, now, f->reset);
  p->sched.churn_at = next_event(&p->frng, now, f->churn);
}

void simrun__lift_stall(player_t *p) {
  if (!p->stalled)
    return;
  p->stalled = false;
  p->sched.stall_end = NEVER;
  if (simrun__cur_bot(p) != NULL)
    (void)sim_bot_set_reading(simrun__cur_bot(p), true);
}

/* Random faults on a connected player (the fault phase only). */
void simrun__act_faults(simrun_t *run, player_t *p, rt_time_ns now) {
  const game_config_t *g = &run->cfg.game;
  sim_bot_t *b = simrun__cur_bot(p);
  if (p->sched.stall_end <= now)
    simrun__lift_stall(p);
  if (p->sched.stall_at <= now) {
    p->sched.stall_at = next_event(&p->frng, now, run->cfg.faults.stall);
    if (!p->stalled && sim_bot_set_reading(b, false) == RT_OK) {
      p->stalled = true;
      p->sched.stall_end =
          now + simrun__uniform_ns(&p->frng, SEC, 2 * g->write_wait);
      if (p->sched.stall_end > run->fault_end)
        p->sched.stall_end = run->fault_end;
      run->sum.faults_injected[1]++;
    }
  }
  if (p->sched.reset_at <= now) {
    p->sched.reset_at = next_event(&p->frng, now, run->cfg.faults.reset);
    if (sim_bot_reset_in(b, (uint64_t)rt_rng_range(&p->frng, 1, 3000)) == 0) {
      p->reset_armed = true;
      run->sum.faults_injected[2]++;
    }
  }
  if (p->sched.churn_at <= now) {
    p->sched.churn_at = NEVER;
    sim_bot_close_how_t how = rt_rng_double(&p->frng) < 0.5
                                  ? SIM_BOT_CLOSE_STREAM
                                  : SIM_BOT_CLOSE_RESET;
    if (sim_bot_disconnect(b, how) == RT_OK) {
      run->sum.faults_injected[3]++;
      simrun__go_away(run, p, simrun__uniform_ns(&p->frng, 100 * MS, 3 * SEC));
    }
  }
}
