/* simcli.c: overcookied-sim's flags (simcli.h). */
#include "simcli.h"

#include "rt_parse.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

void simcli_usage(FILE *out) {
  fprintf(
      out,
      "usage: overcookied-sim [options]\n"
      "  --seed N              seed of the run (default 1)\n"
      "  --players P           simulated players (default 40)\n"
      "  --duration T          active phase, e.g. 120s, 2m, 500ms; a bare\n"
      "                        number is seconds (default 120s)\n"
      "  --instances K         a cluster of K server instances sharing a\n"
      "                        simulated Redis and one Store (default 1;\n"
      "                        a swarm draws 2-5 for a third of its seeds\n"
      "                        unless given, and cluster faults unless\n"
      "                        --faults is)\n"
      "  --faults SPEC         faults during the active phase (below)\n"
      "  --swarm K             run seeds N..N+K-1, faults and mix drawn\n"
      "                        from each seed (unless --faults is given)\n"
      "  --jobs J              swarm seeds in J processes at once (1)\n"
      "  --json                the summary as JSON\n"
      "  --check-determinism   run each seed twice; show where they part\n"
      "  --game-length N       seconds per game (default 60)\n"
      "  --countdown S         seconds before a game counts (default 5)\n"
      "  --log-level L         debug, info, warn, error, off (default off)\n"
      "  --selftest-nondeterminism  like --check-determinism, with the\n"
      "                        second run nudged half way through (1 ns\n"
      "                        longer brain slices): shows that the check\n"
      "                        finds the first divergence\n"
      "  --determinism-checkpoints N  hash-chain checkpoints kept per run\n"
      "                        (default 65536; memory 8 B each, 88 B in the\n"
      "                        last pass): any run length, more passes when\n"
      "                        a divergence is found with fewer\n"
      "  --record DIR          write the run as a trace into DIR (one seed;\n"
      "                        tools/overcookied-replay DIR runs it again\n"
      "                        and checks every checkpoint)\n"
      "  --check-every N       invariant checks once N deliveries (default\n"
      "                        20000) or 100 ms of virtual time have passed\n"
      "                        since the last check\n"
      "Limits the server runs with (defaults: the server's; a swarm draws\n"
      "tight ones for about a third of its seeds, flags given win):\n"
      "  --players-max N       connected players (1013 above)   100000\n"
      "  --queue-max N         players waiting for a match      100000\n"
      "  --out-count-max N     a Client's outbound queue, msgs  64 (>= 4)\n"
      "  --out-bytes-max N     and bytes                        32768 (>= 1024)\n"
      "  --conn-high-water N   frames go to the connection\n"
      "                        while its backlog is below N     16384\n"
      "  --connections-max N   open connections (503 above)     20000\n"
      "  --mailbox-cap N       each connection actor's mailbox  256\n"
      "  --ws-message-max N    WebSocket message in (1009)      512\n"
      "  --link-buffer N       bytes in flight per link way     65536\n");
  /* Two calls: one literal would pass C99's 4,095 bytes. */
  fprintf(
      out,
      "SPEC: 'none', or KEY=VALUE items separated by commas:\n"
      "  slow=P     fraction of players on a capped downlink (300-3000 "
      "B/s)\n"
      "  stall=P    per player-minute: stops reading for 1 s to 2x the "
      "write wait\n"
      "  reset=P    per player-minute: connection reset mid-frame\n"
      "  churn=P    per player-minute: connection dropped, then resumed\n"
      "  store=P    each Store operation fails with probability P\n"
      "  latency=D  one-way link delay (default 5ms)\n"
      "  jitter=D   plus uniform [0, D] per segment (default 0)\n"
      "  until=T    the fault phase ends at virtual time T (default: the\n"
      "             end of --duration); play goes on fault-free after it,\n"
      "             and every game running at T must end, every player\n"
      "             gone by T be forgotten, within a bound of T\n"
      "  a cluster's (--instances 2 or more), per instance-minute:\n"
      "  crash=P    every actor and connection gone; back 1-5 s later\n"
      "             under a new id\n"
      "  pause=P    no turns for the lease plus 0.1-2 s, then awake\n"
      "  redis=P    (per minute) Redis down 0.1-3 s; half lose the data\n"
      "  partition=P  cut off Redis for 0.5-6 s\n"
      "  rlatency=D, rjitter=D  delay of the links to Redis (default 0)\n"
      "  P in [0, 1]; D with a unit ns, us, ms or s, at most 10s; T the\n"
      "  same, at most 24h. A swarm draws until= for about half its seeds.\n"
      "  e.g. slow=0.1,stall=0.05,reset=0.02,latency=20ms,jitter=5ms,"
      "churn=0.05,store=0.01,until=60s\n"
      "exit: 0 every check passed, 1 a check failed, 2 bad arguments\n");
}

/* 120s, 2m, 500ms, 1.5s; a bare number is seconds. Digits and a point,
 * then the unit: strtod alone also reads hex ("0x10s") and exponents. */
static int parse_duration(const char *s, rt_time_ns max, rt_time_ns *out) {
  if (s == NULL || strspn(s, "0123456789.") == 0)
    return -1;
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (end != s + strspn(s, "0123456789."))
    return -1;
  double scale = 1e9;
  if (strcmp(end, "ms") == 0)
    scale = 1e6;
  else if (strcmp(end, "m") == 0)
    scale = 60e9;
  else if (strcmp(end, "s") != 0 && *end != '\0')
    return -1;
  double ns = v * scale;
  if (errno != 0 || !(ns >= 0) || ns > (double)max)
    return -1;
  *out = (rt_time_ns)(ns + 0.5);
  return 0;
}

static int bad(const char *what, const char *value) {
  fprintf(stderr, "overcookied-sim: bad %s '%s' (see --help)\n", what,
          value != NULL ? value : "(missing)");
  return -1;
}

/* --players-max N and the other limits: 1 parsed, 0 not a limit, -1 bad. */
static int parse_limit(simcli_options_t *o, const char *name, const char *v) {
  for (uint32_t i = 0; i < SIMRUN_LIMITS_COUNT; i++) {
    if (strcmp(name, simrun_limit_name(i)) != 0)
      continue;
    uint32_t lo, hi;
    simrun_limit_range(i, &lo, &hi);
    uint64_t n;
    if (rt_parse_u64(v, hi, &n) < 0 || n < lo) {
      fprintf(stderr, "overcookied-sim: bad --%s '%s' (%u..%u; see --help)\n",
              name, v != NULL ? v : "(missing)", lo, hi);
      return -1;
    }
    *simrun_limit_field(&o->limits, i) = (uint32_t)n;
    o->limit_set[i] = true;
    return 1;
  }
  return 0;
}

/* A flag without a value (--help aside): true when a is one. */
static bool parse_switch(const char *a, simcli_options_t *o) {
  if (strcmp(a, "--json") == 0) {
    o->json = true;
    return true;
  }
  if (strcmp(a, "--check-determinism") == 0) {
    o->check_determinism = true;
    return true;
  }
  if (strcmp(a, "--selftest-nondeterminism") == 0) {
    o->check_determinism = true;
    o->selftest_nondeterminism = true;
    return true;
  }
  return false;
}

/* Flag a with its value v (NULL: missing). 0, or -1 after a message on
 * stderr, also for a flag that is not one. */
static int parse_valued(const char *a, const char *v, simcli_options_t *o) {
  uint64_t n;
  int limit;
  if (strcmp(a, "--seed") == 0) {
    if (rt_parse_u64(v, UINT64_MAX, &n) < 0)
      return bad("--seed", v);
    o->seed = n;
  } else if (strcmp(a, "--players") == 0) {
    if (rt_parse_u64(v, SIMRUN_PLAYERS_MAX, &n) < 0)
      return bad("--players (0..100000)", v);
    o->players = (uint32_t)n;
  } else if (strcmp(a, "--duration") == 0) {
    if (parse_duration(v, SIMRUN_DURATION_MAX, &o->duration) < 0)
      return bad("--duration (e.g. 120s, at most 24 h)", v);
  } else if (strcmp(a, "--instances") == 0) {
    if (rt_parse_u64(v, SIMRUN_INSTANCES_MAX, &n) < 0 || n == 0)
      return bad("--instances (1..8)", v);
    o->instances = (uint32_t)n;
  } else if (strcmp(a, "--faults") == 0) {
    if (v == NULL)
      return bad("--faults", v);
    o->faults_spec = v;
  } else if (strcmp(a, "--swarm") == 0) {
    if (rt_parse_u64(v, SWARM_MAX, &n) < 0 || n == 0)
      return bad("--swarm (1..1000000)", v);
    o->swarm = (uint32_t)n;
  } else if (strcmp(a, "--jobs") == 0) {
    if (rt_parse_u64(v, JOBS_MAX, &n) < 0 || n == 0)
      return bad("--jobs (1..256)", v);
    o->jobs = (uint32_t)n;
  } else if (strcmp(a, "--game-length") == 0) {
    if (rt_parse_u64(v, 3600, &n) < 0 || n == 0)
      return bad("--game-length (1..3600)", v);
    o->game_length = (uint32_t)n;
    o->game_length_set = true;
  } else if (strcmp(a, "--countdown") == 0) {
    if (parse_duration(v, 3600 * RT_NS_PER_S, &o->countdown) < 0)
      return bad("--countdown", v);
    o->countdown_set = true;
  } else if (strcmp(a, "--log-level") == 0) {
    if (rt_log_level_parse(v) < 0)
      return bad("--log-level", v);
    o->log_level = rt_log_level_parse(v);
  } else if (strcmp(a, "--determinism-checkpoints") == 0) {
    if (rt_parse_u64(v, CHECKPOINTS_MAX, &n) < 0 || n < 2)
      return bad("--determinism-checkpoints (2..16777216)", v);
    o->checkpoints_max = n;
  } else if (strcmp(a, "--record") == 0) {
    if (v == NULL)
      return bad("--record (a directory)", v);
    o->record_dir = v;
  } else if (strcmp(a, "--check-every") == 0) {
    if (rt_parse_u64(v, UINT64_MAX / 2, &n) < 0 || n == 0)
      return bad("--check-every (deliveries, at least 1)", v);
    o->check_deliveries = n;
  } else if (a[0] == '-' && a[1] == '-' &&
             (limit = parse_limit(o, a + 2, v)) != 0) {
    if (limit < 0)
      return -1;
  } else {
    fprintf(stderr, "overcookied-sim: unknown option '%s' (see --help)\n", a);
    return -1;
  }
  return 0;
}

/* What holds only of the flags together. 0, or -1 after a message. */
static int parse_check(const simcli_options_t *o) {
  if (o->record_dir != NULL && (o->swarm > 0 || o->check_determinism)) {
    fprintf(stderr, "overcookied-sim: --record writes one run: not with "
                    "--swarm or --check-determinism\n");
    return -1;
  }
  if (o->faults_spec != NULL) {
    simrun_faults_t f;
    char why[256];
    if (simrun_faults_parse(o->faults_spec, &f, why, sizeof(why)) < 0) {
      fprintf(stderr, "overcookied-sim: bad --faults '%s': %s\n",
              o->faults_spec, why);
      return -1;
    }
  }
  return 0;
}

int simcli_parse(int argc, char **argv, simcli_options_t *o) {
  *o = (simcli_options_t){.seed = 1,
                          .players = 40,
                          .duration = 120 * RT_NS_PER_S,
                          .jobs = 1,
                          .log_level = RT_LOG_OFF,
                          .checkpoints_max = CHECKPOINTS_DEFAULT,
                          .check_deliveries = SIMRUN_CHECK_DELIVERIES};
  simrun_limits_default(&o->limits);
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
      return SIMCLI_HELP;
    if (parse_switch(argv[i], o))
      continue;
    if (parse_valued(argv[i], i + 1 < argc ? argv[i + 1] : NULL, o) < 0)
      return -1;
    i++; /* its value */
  }
  return parse_check(o);
}

void simcli_plan(const simcli_options_t *o, uint64_t seed, simrun_plan_t *out) {
  memset(out, 0, sizeof(*out));
  out->seed = seed;
  if (o->faults_spec != NULL) {
    char why[256];
    (void)simrun_faults_parse(o->faults_spec, &out->faults, why, sizeof(why));
  } else if (o->swarm > 0) {
    simrun_faults_draw(seed, o->duration, &out->faults);
  } else {
    simrun_faults_default(&out->faults);
  }
  if (o->swarm > 0)
    simrun_limits_draw(seed, &out->limits);
  else
    simrun_limits_default(&out->limits);
  simrun_limits_t given = o->limits;
  for (uint32_t i = 0; i < SIMRUN_LIMITS_COUNT; i++)
    if (o->limit_set[i])
      *simrun_limit_field(&out->limits, i) = *simrun_limit_field(&given, i);
  out->instances = o->instances;
  if (o->swarm > 0 && o->faults_spec == NULL)
    simrun_cluster_draw(seed, &out->instances, &out->faults);
  simrun_mix_draw(seed, &out->mix);
  simrun_faults_format(&out->faults, out->faults_text,
                       sizeof(out->faults_text));
  simrun_mix_format(&out->mix, out->mix_text, sizeof(out->mix_text));
}

void simcli_config(const simcli_options_t *o, const simrun_plan_t *sp,
                   simrun_config_t *cfg) {
  simrun_config_default(cfg);
  cfg->seed = sp->seed;
  cfg->players = o->players;
  cfg->duration = o->duration;
  cfg->faults = sp->faults;
  cfg->log_level = o->log_level;
  if (o->game_length_set)
    cfg->game.game_seconds = o->game_length;
  if (o->countdown_set)
    cfg->game.countdown = o->countdown;
  simrun_limits_apply(&sp->limits, cfg);
  cfg->check_deliveries = o->check_deliveries;
  cfg->instances = sp->instances;
}

/* A duration as parse_duration reads it back to the same nanosecond:
 * whole milliseconds as "Nms" (the common case, short), else exact
 * seconds (--duration 1.0000005s must not replay as 1000ms). */
static void format_exact(rt_time_ns d, char *out, size_t cap) {
  if (d % RT_NS_PER_MS == 0)
    snprintf(out, cap, "%" PRId64 "ms", (int64_t)(d / RT_NS_PER_MS));
  else
    snprintf(out, cap, "%" PRId64 ".%09" PRId64 "s", (int64_t)(d / RT_NS_PER_S),
             (int64_t)(d % RT_NS_PER_S));
}

/* The one command that replays a seed exactly. */
void simcli_repro(const simcli_options_t *o, const simrun_plan_t *sp,
                  bool determinism, char *out, size_t cap) {
  char duration[32], countdown[32];
  format_exact(o->duration, duration, sizeof(duration));
  format_exact(o->countdown, countdown, sizeof(countdown));
  size_t len = (size_t)snprintf(
      out, cap,
      "tools/overcookied-sim --seed %" PRIu64 " --players %u --duration "
      "%s --faults '%s'",
      sp->seed, o->players, duration, sp->faults_text);
  if (len < cap && sp->instances >= 2)
    len += (size_t)snprintf(out + len, cap - len, " --instances %u",
                            sp->instances);
  if (len < cap && o->game_length_set)
    len += (size_t)snprintf(out + len, cap - len, " --game-length %u",
                            o->game_length);
  if (len < cap && o->countdown_set)
    len += (size_t)snprintf(out + len, cap - len, " --countdown %s", countdown);
  if (len < cap) {
    char limits[SIMRUN_LIMITS_TEXT_MAX];
    simrun_limits_format(&sp->limits, limits, sizeof(limits));
    len += (size_t)snprintf(out + len, cap - len, "%s", limits);
  }
  if (len < cap && o->check_deliveries != SIMRUN_CHECK_DELIVERIES)
    len += (size_t)snprintf(out + len, cap - len, " --check-every %" PRIu64,
                            o->check_deliveries);
  if (len < cap && determinism)
    snprintf(out + len, cap - len, " --check-determinism");
}

void simcli_args(const simcli_options_t *o, const simrun_plan_t *sp, char *out,
                 size_t cap) {
  size_t len = 0;
  int n;
#define PUT(...)                                                               \
  do {                                                                         \
    n = snprintf(out + len, cap - len, __VA_ARGS__);                           \
    if (n < 0 || (size_t)n >= cap - len)                                       \
      return;                                                                  \
    len += (size_t)n;                                                          \
  } while (0)
  out[0] = '\0';
  PUT("--seed\n%" PRIu64 "\n--players\n%u\n--duration\n%" PRId64 ".%09" PRId64
      "s\n--faults\n%s",
      sp->seed, o->players, (int64_t)(o->duration / RT_NS_PER_S),
      (int64_t)(o->duration % RT_NS_PER_S), sp->faults_text);
  if (sp->instances >= 2)
    PUT("\n--instances\n%u", sp->instances);
  if (o->game_length_set)
    PUT("\n--game-length\n%u", o->game_length);
  if (o->countdown_set)
    PUT("\n--countdown\n%" PRId64 ".%09" PRId64 "s",
        (int64_t)(o->countdown / RT_NS_PER_S),
        (int64_t)(o->countdown % RT_NS_PER_S));
  char limits[SIMRUN_LIMITS_TEXT_MAX];
  simrun_limits_format(&sp->limits, limits, sizeof(limits));
  for (char *p = limits; *p != '\0'; p++)
    if (*p == ' ')
      *p = '\n';
  PUT("%s", limits);
  if (o->check_deliveries != SIMRUN_CHECK_DELIVERIES)
    PUT("\n--check-every\n%" PRIu64, o->check_deliveries);
#undef PUT
}
