/* simrun.c: one simulated run (see simrun.h).
 *
 * A player's brain is a small state machine over what its bots received:
 *
 *   NEW --arrive--> CONNECTING --OPENED--> IDLE --JOIN--> QUEUED
 *                      ^   |                 ^  <--LEAVE--   |
 *                      |   +-REFUSED-> AWAY  |               GAME_START
 *             reconnect|                     |               v
 *                     AWAY <----CLOSED------ PLAYING <--(resumed)
 *                                             |  GAME_OVER: back to IDLE
 *   any --depart--> LEAVING --CLOSED--> GONE
 *
 * Invariants of this driver:
 *  (1) A player has at most SIMRUN_BOTS_PER_PLAYER bots: its current one
 *      and one it replaced, kept until that one's connection closed.
 *  (2) Every loop is bounded: players by count, records by what a slice
 *      brought, clicks per slice by CLICK_EVENTS_PER_SLICE, the world by
 *      TURNS_PER_SLICE_MAX turns per slice, time by the phases.
 *  (3) Random draws come from per-player streams of the seed, in player
 *      order, so adding a player never shifts another's draws.
 */
#include "simrun.h"

#include "game_check.h"
#include "game_store.h"
#include "net_ws.h"
#include "rt_hash.h"
#include "rt_stream.h"
#include "server.h"
#include "sim_pipe.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MS RT_NS_PER_MS
#define SEC RT_NS_PER_S
#define NEVER RT_TIME_NEVER

#define SIMRUN_BOTS_PER_PLAYER 2u
#define TURNS_PER_SLICE_MAX 50000000ull /* a livelock, not a busy slice */
#define CLICK_EVENTS_PER_SLICE 8u
#define SECRET "overcookied-sim-secret-0123456789abcdef"
#define RECORD_RESEND (5 * SEC) /* game_room.c's resend of a result */
#define LIVENESS_SLACK (5 * SEC)
#define RESUME_WAIT (3 * SEC) /* a resumed GAME_START, or the game ended */
#define REFUSALS_MAX 3u
#define OVERSIZE_MAX 2000u
#define READ_P 0.25 /* the chance a player reads its history after a game */
#define READ_POLL (50 * MS)

/* RNG stream keys, each in the band of its subsystem (rt_rng.h). */
#define KEY_MIX RT_RNG_KEY(RT_RNG_SUB_TEST, 1)
#define KEY_SWARM_FAULTS RT_RNG_KEY(RT_RNG_SUB_SIM_FAULT, 1)
#define KEY_STORE_FAULTS RT_RNG_KEY(RT_RNG_SUB_SIM_FAULT, 2)
#define KEY_PLAN(i) RT_RNG_KEY(RT_RNG_SUB_TEST, 0x100000ull + (i))
#define KEY_BRAIN(i) RT_RNG_KEY(RT_RNG_SUB_TEST, 0x200000000ull + (i))
#define KEY_FAULTS(i) RT_RNG_KEY(RT_RNG_SUB_SIM_FAULT, 0x100000ull + (i))

/* ---- Names --------------------------------------------------------------- */

static const char kind_names[SIMRUN_KIND_COUNT_][8] = {
    "clicker", "hunter", "quitter", "resumer", "leaver", "abuser", "twin"};

const char *simrun_kind_name(simrun_kind_t k) {
  return k < SIMRUN_KIND_COUNT_ ? kind_names[k] : "?";
}

static const char cov_names[SIMRUN_COV_COUNT_][24] = {
    "drop_by_backpressure", "disconnect_for_slowness", "resume",
    "replaced_connection",  "golden_cookie_race",      "storage_retry",
    "must_deliver_overflow", "websocket_parked", "flood_cut"};

const char *simrun_cov_name(simrun_cov_t c) {
  return c < SIMRUN_COV_COUNT_ ? cov_names[c] : "?";
}

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

static const char fault_keys[][8] = {"slow",    "stall",  "reset",
                                     "churn",   "store",  "latency",
                                     "jitter",  "until"};
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
               "latency, jitter, until)",
               (int)klen, p);
      return -1;
    }
    if (seen[k]) {
      snprintf(why, cap, "'%s' given twice", fault_keys[k]);
      return -1;
    }
    seen[k] = true;
    double *probs[] = {&f.slow, &f.stall, &f.reset, &f.churn, &f.store};
    rt_time_ns *durs[] = {&f.latency, &f.jitter, &f.until};
    int rc = k < 5 ? parse_prob(v, vlen, probs[k])
                   : parse_duration(v, vlen,
                                    k == 7 ? SIMRUN_DURATION_MAX : 10 * SEC,
                                    durs[k - 5]);
    if (rc < 0) {
      snprintf(why, cap,
               k < 5    ? "%s=%.*s: expected a probability in [0, 1]"
               : k == 7 ? "%s=%.*s: expected a virtual time such as 30s "
                          "(units ns, us, ms, s; at most 24 h)"
                        : "%s=%.*s: expected a duration such as 20ms (units "
                          "ns, us, ms, s; at most 10 s)",
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
    snprintf(out + n, cap - (size_t)n, ",until=%s", until);
  }
}

static double round4(double v) { return floor(v * 10000.0 + 0.5) / 10000.0; }

static double uniform(rt_rng_t *rng, double lo, double hi) {
  return lo + (hi - lo) * rt_rng_double(rng);
}

static rt_time_ns uniform_ns(rt_rng_t *rng, rt_time_ns lo, rt_time_ns hi) {
  return hi <= lo ? lo : (rt_time_ns)rt_rng_range(rng, lo, hi);
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
    double v = uniform(&rng, 0.01, hi[i]);
    *probs[i] = on ? round4(v) : 0.0;
  }
  out->latency = (rt_time_ns)rt_rng_range(&rng, 1, 40) * MS;
  out->jitter = (rt_time_ns)rt_rng_range(&rng, 0, out->latency / MS / 2) * MS;
  /* Drawn last, so the draws above stay what they were. Whole seconds when
   * the duration allows: the repro command reads well. */
  if (rt_rng_double(&rng) < 0.5 && duration >= 4 * MS) {
    rt_time_ns t = uniform_ns(&rng, duration / 4, duration - 1);
    rt_time_ns unit = duration >= 8 * SEC ? SEC : MS;
    out->until = t / unit * unit;
    if (out->until < unit)
      out->until = unit;
  }
}

/* ---- Limits -------------------------------------------------------------- */

#define KEY_LIMITS RT_RNG_KEY(RT_RNG_SUB_SIM_FAULT, 3)

static const char limit_names[SIMRUN_LIMITS_COUNT][20] = {
    "players-max",     "queue-max",   "out-count-max",
    "out-bytes-max",   "conn-high-water", "connections-max",
    "mailbox-cap",     "ws-message-max",  "link-buffer",
    "ws-park-ms"};

void simrun_limits_default(simrun_limits_t *l) {
  game_config_t g;
  game_config_defaults(&g);
  uint32_t cap;
  rt_overflow_t policy;
  const rt_overflow_rule_t *rules;
  uint32_t rules_len;
  game_client_mailbox(&cap, &policy, &rules, &rules_len);
  *l = (simrun_limits_t){.players_max = g.players_max,
                         .queue_max = g.queue_max,
                         .out_count_max = g.out_count_max,
                         .out_bytes_max = g.out_bytes_max,
                         .conn_high_water = g.conn_high_water,
                         .connections_max = NET_CONNECTIONS_MAX_DEFAULT,
                         .mailbox_cap = cap,
                         .ws_message_max = NET_WS_MESSAGE_MAX_DEFAULT,
                         .link_buffer = SIM_BUFFER_DEFAULT,
                         .ws_park_ms = (uint32_t)(NET_WS_PARK_AFTER_DEFAULT /
                                                  RT_NS_PER_MS)};
}

const char *simrun_limit_name(uint32_t i) {
  return i < SIMRUN_LIMITS_COUNT ? limit_names[i] : "?";
}

uint32_t *simrun_limit_field(simrun_limits_t *l, uint32_t i) {
  uint32_t *fields[SIMRUN_LIMITS_COUNT] = {
      &l->players_max,     &l->queue_max,   &l->out_count_max,
      &l->out_bytes_max,   &l->conn_high_water, &l->connections_max,
      &l->mailbox_cap,     &l->ws_message_max,  &l->link_buffer,
      &l->ws_park_ms};
  return i < SIMRUN_LIMITS_COUNT ? fields[i] : NULL;
}

void simrun_limit_range(uint32_t i, uint32_t *min, uint32_t *max) {
  /* game_config_check's and the server's floors; a mailbox needs room for
   * a burst of the game's frames; a link at least one segment. */
  static const uint32_t lo[SIMRUN_LIMITS_COUNT] = {
      1, 1, 4, 1024, 1, 1, 16, 16, SIM_MSS_DEFAULT, 1};
  static const uint32_t hi[SIMRUN_LIMITS_COUNT] = {
      SIMRUN_PLAYERS_MAX * 2, SIMRUN_PLAYERS_MAX * 2, 1u << 20, 1u << 30,
      1u << 30,               SIMRUN_PLAYERS_MAX * 4, 1u << 20,
      NET_WS_MESSAGE_MAX_LIMIT, SIM_BUFFER_MAX,
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

void simrun_mix_draw(uint64_t seed, simrun_mix_t *out) {
  rt_rng_t rng;
  rt_rng_init(&rng, seed, KEY_MIX);
  double sum = 0;
  for (int k = 0; k < SIMRUN_KIND_COUNT_; k++) {
    /* Plain clickers and hunters are the crowd; the rest are spice. */
    double base = k == SIMRUN_CLICKER || k == SIMRUN_HUNTER ? 1.0 : 0.05;
    double top = k == SIMRUN_CLICKER || k == SIMRUN_HUNTER ? 3.0 : 1.0;
    out->share[k] = uniform(&rng, base, top);
    sum += out->share[k];
  }
  for (int k = 0; k < SIMRUN_KIND_COUNT_; k++)
    out->share[k] /= sum;
}

void simrun_mix_format(const simrun_mix_t *m, char *out, size_t cap) {
  size_t len = 0;
  out[0] = '\0';
  for (int k = 0; k < SIMRUN_KIND_COUNT_ && len < cap; k++) {
    int n = snprintf(out + len, cap - len, "%s%s:%.2f", k > 0 ? "," : "",
                     kind_names[k], m->share[k]);
    if (n < 0)
      break;
    len += (size_t)n;
  }
}

void simrun_config_default(simrun_config_t *cfg) {
  memset(cfg, 0, sizeof(*cfg));
  cfg->seed = 1;
  cfg->players = 40;
  cfg->duration = 120 * SEC;
  simrun_faults_default(&cfg->faults);
  game_config_defaults(&cfg->game);
  cfg->log_level = RT_LOG_OFF;
}

/* ---- State --------------------------------------------------------------- */

typedef enum {
  B_NEW = 0,
  B_CONNECTING,
  B_IDLE,
  B_QUEUED,
  B_PLAYING,
  B_RESUMING, /* back after a drop mid-game: a resumed GAME_START or not */
  B_AWAY,     /* disconnected; reconnect_at */
  B_LEAVING,  /* departing: waiting for the connection to end */
  B_GONE,
} belief_t;

/* Edge cases at exact instants (FoundationDB's "buggify" in spirit): an
 * action timed so that its effect reaches the Room exactly at, or 1 ns
 * around, the end of the countdown, the end of the game or the end of a
 * bonus, where orderings are easiest to get wrong. Exact with no jitter
 * and no bandwidth cap; near misses otherwise, which are edges too. */
typedef enum {
  EDGE_NONE = 0,
  EDGE_CLICK,  /* a CLICK arrives then */
  EDGE_COOKIE, /* a COOKIE_CLICK arrives then */
  EDGE_QUIT,   /* a QUIT_GAME arrives then */
  EDGE_CLOSE,  /* the close handshake starts then; the player comes back */
  EDGE_RESET,  /* the connection resets then; the player comes back */
  EDGE_TWIN,   /* a second connection starts then */
  EDGE_KIND_COUNT_
} edge_t;

#define EDGE_P 0.3 /* the chance a game gets an edge (and a claim, too) */

typedef struct pbot {
  sim_bot_t *bot;
  bool retired;  /* replaced by a newer connection: its end is expected */
  bool dead;     /* to destroy after this slice's records */
  char room[32]; /* the latest GAME_START on connection room_conn */
  uint32_t room_conn;
  bool awaiting_over; /* that GAME_START, and no GAME_OVER or close since */
  uint32_t seen;      /* records read (kept ones: plan.keep_records) */
} pbot_t;

typedef struct player {
  simrun_player_t plan;
  uint32_t index;
  char name[16];
  rt_rng_t rng;                        /* behaviour */
  rt_rng_t frng;                       /* faults */
  pbot_t bots[SIMRUN_BOTS_PER_PLAYER]; /* Invariant (1) */
  uint32_t cur;                        /* the current bot's slot */
  belief_t belief;
  bool registered; /* in the user id map */
  char user_id[RT_SUBJECT_MAX];
  char opponent[RT_SUBJECT_MAX];
  /* The game the player believes it is in. */
  bool in_game;
  char room[32];
  char last_over_room[32];
  uint64_t clicks_game;
  bool clicks_tracked; /* clicks_game covers the whole of this game */
  int64_t seq_next;
  bool use_seq;
  rt_time_ns t_run, t_end;
  /* Schedule (NEVER: nothing planned). */
  rt_time_ns next_join, leave_at, next_click, click_end, cookie_at, quit_at,
      away_at, twin_at, abuse_at, reconnect_at, resume_deadline;
  rt_time_ns stall_at, stall_end, reset_at, churn_at;
  rt_time_ns away_for; /* how long a resumer stays away */
  rt_time_ns edge_at;  /* an edge_t action, exactly then */
  uint8_t edge_kind;
  rt_time_ns wake_at; /* the earliest of the above: nothing to do before,
                         unless a record arrives */
  bool stalled, reset_armed, departing;
  /* The golden cookie seen last, and the one this player clicked last. */
  bool spawn_open;
  double spawn_x, spawn_y;
  char target_room[32];
  double target_x, target_y;
  bool target_set;
  uint32_t refusals;
  /* A history read after a game: it must show that game as it ended. */
  bool read_pending;
  char read_room[32];
  sim_bot_record_t read_over;
  /* What the player saw, for views and summaries. */
  uint32_t games_started, games_over, connections;
  uint64_t clicks_sent;
  sim_bot_record_t last_over;
} player_t;

struct simrun {
  simrun_config_t cfg;
  sim_world_t *sw;
  rt_world_t *w;
  game_t *game;
  net_server_t *srv;
  rt_rng_t store_rng;
  rt_time_ns fault_end; /* F (simrun.h) */
  bool faults_over;     /* past F */
  bool winding;         /* past duration */
  /* Recovery checks (simrun.h, R1 and R2): rooms running at F (actor ids)
   * and players departed by F (indices), both sorted. */
  uint64_t *rec_rooms;
  uint32_t rec_rooms_len;
  uint32_t *rec_players;
  uint32_t rec_players_len;
  bool r1_done, r2_done;
  uint64_t next_check_deliveries;
  rt_time_ns link_max; /* the slowest one-way link: latency + jitter */
  player_t *players;
  uint32_t players_len, players_cap;
  /* Per player, packed so a slice's look at 1,000 players touches a few
   * cache lines, not 1,000 players and 2,000 bots: a copy of wake_at and
   * edge_at as of its last look, and whether a bot of it kept a record
   * since (set by the bots' on_record). A player with wake > now and no
   * news is skipped exactly as before; these only find it faster. */
  rt_time_ns *wake, *edge;
  uint8_t *news;
  /* user id -> player index + 1, open addressing (lookups only). */
  uint32_t *ids;
  uint32_t ids_mask;
  uint32_t baseline_actors;
  rt_time_ns next_check;
  bool failed;
  rt_time_ns failed_at;
  char failure[SIMRUN_FAILURE_MAX];
  rt_time_ns next_edge; /* the earliest edge_at: a slice ends there */
  simrun_summary_t sum; /* counters kept as the run goes */
};

static rt_time_ns now_of(const simrun_t *run) { return rt_now(run->w); }

static void fail(simrun_t *run, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void fail(simrun_t *run, const char *fmt, ...) {
  if (run->failed)
    return;
  run->failed = true;
  run->failed_at = now_of(run);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(run->failure, sizeof(run->failure), fmt, ap);
  va_end(ap);
  rt_log(run->w, RT_LOG_ERROR, "simrun.violation", "what=\"%s\"", run->failure);
}

/* ---- User ids ------------------------------------------------------------ */

static uint64_t id_hash(const char *id) {
  return rt_hash_bytes(id, strlen(id), 0x757365726964ULL);
}

static int ids_grow(simrun_t *run, uint32_t players) {
  uint32_t slots = 64;
  while (slots < 2 * players)
    slots *= 2;
  if (run->ids != NULL && slots <= run->ids_mask + 1)
    return 0;
  uint32_t *ids = calloc(slots, sizeof(*ids));
  if (ids == NULL)
    return RT_ENOMEM;
  for (uint32_t i = 0; run->ids != NULL && i <= run->ids_mask; i++) {
    uint32_t v = run->ids[i];
    if (v == 0)
      continue;
    uint32_t s = (uint32_t)(id_hash(run->players[v - 1].user_id) & (slots - 1));
    while (ids[s] != 0)
      s = (s + 1) & (slots - 1);
    ids[s] = v;
  }
  free(run->ids);
  run->ids = ids;
  run->ids_mask = slots - 1;
  return 0;
}

static void ids_put(simrun_t *run, player_t *p) {
  uint32_t s = (uint32_t)(id_hash(p->user_id) & run->ids_mask);
  for (uint32_t n = 0; n <= run->ids_mask && run->ids[s] != 0; n++)
    s = (s + 1) & run->ids_mask;
  run->ids[s] = p->index + 1;
  p->registered = true;
}

static player_t *ids_find(const simrun_t *run, const char *id) {
  uint32_t s = (uint32_t)(id_hash(id) & run->ids_mask);
  for (uint32_t n = 0; n <= run->ids_mask && run->ids[s] != 0; n++) {
    player_t *p = &run->players[run->ids[s] - 1];
    if (strcmp(p->user_id, id) == 0)
      return p;
    s = (s + 1) & run->ids_mask;
  }
  return NULL;
}

/* ---- The Store's fault hook ---------------------------------------------- */

static int store_fault(void *ctx, game_store_op_t op) {
  static const int codes[] = {SQLITE_BUSY, SQLITE_FULL, SQLITE_IOERR};
  (void)op;
  simrun_t *run = ctx;
  rt_time_ns now = now_of(run);
  const simrun_faults_t *f = &run->cfg.faults;
  bool down = now >= f->store_down_from && now < f->store_down_until;
  /* run->fault_end is F from the start: no error at or after it. */
  if (!down && !(now < run->fault_end && f->store > 0 &&
                 rt_rng_double(&run->store_rng) < f->store))
    return SQLITE_OK;
  uint64_t n = run->sum.faults_injected[4]++;
  return codes[n % 3];
}

static void destroy_bot(simrun_t *run, pbot_t *pb);

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
  rt_world_rng(run->w, KEY_STORE_FAULTS, &run->store_rng);
  game_store_config_t store = {
      .path = ":memory:", .fault = store_fault, .fault_ctx = run};
  err = game_create(run->w, &run->cfg.game, SECRET, &store, &run->game);
  if (err < 0)
    goto fail;
  /* The server as tools/src/overcookied.c wires it (no static files),
   * with its route table (server_routes). */
  net_server_config_t scfg = {
      .session = game_session(run->game),
      .authenticate = game_authenticate,
      .auth_ctx = run->game,
      .metrics = game_metrics,
      .metrics_ctx = run->game,
      .connections_max = cfg->connections_max,
      .ws_message_max = cfg->ws_message_max,
      .ws_park_after = cfg->ws_park_after,
  };
  server_routes(run->game, &scfg);
  game_client_mailbox(&scfg.mailbox_cap, &scfg.overflow, &scfg.rules,
                      &scfg.rules_len);
  if (cfg->mailbox_cap > 0)
    scfg.mailbox_cap = cfg->mailbox_cap;
  rt_listener_t *l = NULL;
  err = sim_listen(run->sw, SIMRUN_PORT, 0, &l);
  if (err < 0)
    goto fail;
  err = net_server_start(run->w, l, &scfg, &run->srv);
  if (err < 0) {
    rt_listener_close(l);
    goto fail;
  }
  rt_world_stats_t ws;
  rt_world_stats(run->w, &ws);
  run->baseline_actors = ws.actors_live; /* acceptor, Manager, Store */
  run->next_check = run->cfg.check_every;
  run->next_check_deliveries = run->cfg.check_deliveries;
  err = ids_grow(run, cfg->players > 0 ? cfg->players : 16);
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
  net_server_free(run->srv);
  game_free(run->game);
  for (uint32_t i = 0; i < run->players_len; i++)
    for (uint32_t k = 0; k < SIMRUN_BOTS_PER_PLAYER; k++)
      destroy_bot(run, &run->players[i].bots[k]);
  free(run->players);
  free(run->wake);
  free(run->edge);
  free(run->news);
  free(run->ids);
  free(run->rec_rooms);
  free(run->rec_players);
  free(run);
}

/* ---- Players ------------------------------------------------------------- */

void simrun_player_draw(const simrun_t *run, const simrun_mix_t *mix,
                        uint32_t i, simrun_player_t *out) {
  rt_rng_t rng;
  rt_rng_init(&rng, run->cfg.seed, KEY_PLAN(i));
  const simrun_faults_t *f = &run->cfg.faults;
  memset(out, 0, sizeof(*out));
  double u = rt_rng_double(&rng), acc = 0;
  out->kind = SIMRUN_CLICKER;
  for (int k = 0; k < SIMRUN_KIND_COUNT_; k++) {
    acc += mix->share[k];
    if (u < acc) {
      out->kind = (simrun_kind_t)k;
      break;
    }
  }
  rt_time_ns window = run->cfg.duration / 3;
  if (window > 20 * SEC)
    window = 20 * SEC;
  out->arrive_at = uniform_ns(&rng, 0, window);
  out->up.latency = out->down.latency = f->latency;
  out->up.jitter = out->down.jitter = f->jitter;
  out->up.buffer = out->down.buffer = run->cfg.link_buffer;
  if (rt_rng_double(&rng) < f->slow)
    out->down.bandwidth = (uint64_t)rt_rng_range(&rng, 300, 3000);
  out->click_rate =
      out->kind == SIMRUN_ABUSER ? uniform(&rng, 5, 15) : uniform(&rng, 1.5, 9);
  out->burst_p = uniform(&rng, 0, 0.15);
  out->burst_max = (uint32_t)rt_rng_range(&rng, 3, 40);
  if (out->kind == SIMRUN_HUNTER)
    out->reaction = uniform_ns(&rng, 80 * MS, 600 * MS);
  else if (rt_rng_double(&rng) < 0.3)
    out->reaction = uniform_ns(&rng, 300 * MS, 1500 * MS);
  out->games_max =
      rt_rng_double(&rng) < 0.2 ? (uint32_t)rt_rng_range(&rng, 1, 3) : 0;
}

static void schedule_clear(player_t *p) {
  p->next_join = p->leave_at = p->next_click = p->click_end = NEVER;
  p->cookie_at = p->quit_at = p->away_at = p->twin_at = p->abuse_at = NEVER;
  p->reconnect_at = p->resume_deadline = p->edge_at = NEVER;
  p->stall_at = p->stall_end = p->reset_at = p->churn_at = NEVER;
}

int simrun_add_player(simrun_t *run, const simrun_player_t *plan,
                      uint32_t *index_out) {
  if (run->players_len >= SIMRUN_PLAYERS_MAX ||
      plan->kind >= SIMRUN_KIND_COUNT_)
    return RT_EINVAL;
  if (run->players_len == run->players_cap) {
    uint32_t cap = run->players_cap == 0 ? 64 : run->players_cap * 2;
    player_t *grown = realloc(run->players, (size_t)cap * sizeof(*grown));
    if (grown == NULL)
      return RT_ENOMEM;
    run->players = grown;
    rt_time_ns *wake = realloc(run->wake, (size_t)cap * sizeof(*wake));
    if (wake == NULL)
      return RT_ENOMEM;
    run->wake = wake;
    rt_time_ns *edge = realloc(run->edge, (size_t)cap * sizeof(*edge));
    if (edge == NULL)
      return RT_ENOMEM;
    run->edge = edge;
    uint8_t *news = realloc(run->news, (size_t)cap * sizeof(*news));
    if (news == NULL)
      return RT_ENOMEM;
    run->news = news;
    run->players_cap = cap;
  }
  int err = ids_grow(run, run->players_len + 1);
  if (err < 0)
    return err;
  uint32_t i = run->players_len;
  player_t *p = &run->players[i];
  memset(p, 0, sizeof(*p));
  p->plan = *plan;
  p->index = i;
  snprintf(p->name, sizeof(p->name), "p%u", i);
  rt_world_rng(run->w, KEY_BRAIN(i), &p->rng);
  rt_world_rng(run->w, KEY_FAULTS(i), &p->frng);
  p->use_seq = rt_rng_double(&p->rng) < 0.5;
  schedule_clear(p);
  p->belief = B_NEW;
  run->wake[i] = p->wake_at; /* 0: looked at in the next slice */
  run->edge[i] = p->edge_at;
  run->news[i] = 0;
  if (plan->down.bandwidth > 0)
    run->sum.faults_injected[0]++;
  const sim_link_config_t *links[2] = {&plan->up, &plan->down};
  for (int k = 0; k < 2; k++)
    if (links[k]->latency + links[k]->jitter > run->link_max)
      run->link_max = links[k]->latency + links[k]->jitter;
  run->players_len++;
  run->sum.players++;
  *index_out = i;
  return RT_OK;
}

int simrun_populate(simrun_t *run, const simrun_mix_t *mix) {
  for (uint32_t i = 0; i < run->cfg.players; i++) {
    simrun_player_t plan;
    simrun_player_draw(run, mix, run->players_len, &plan);
    uint32_t index;
    int err = simrun_add_player(run, &plan, &index);
    if (err < 0)
      return err;
  }
  return RT_OK;
}

static sim_bot_t *cur_bot(const player_t *p) { return p->bots[p->cur].bot; }

static bool bot_open(const player_t *p) {
  sim_bot_t *b = cur_bot(p);
  return b != NULL && sim_bot_state(b) == SIM_BOT_OPEN;
}

static void on_bot_record(void *ctx, uint64_t player) {
  simrun_t *run = ctx;
  run->news[player] = 1;
}

static int spawn_bot(simrun_t *run, player_t *p, uint32_t slot,
                     const char *token, const char *user_id) {
  sim_bot_config_t bc = {.name = p->name,
                         .token = token,
                         .user_id = user_id,
                         .up = p->plan.up,
                         .down = p->plan.down,
                         .records_max = p->plan.keep_records
                                            ? p->plan.records_max
                                            : SIM_BOT_RECORDS_MAX,
                         .on_record = on_bot_record,
                         .on_record_ctx = run,
                         .on_record_tag = p->index};
  sim_bot_t *b = NULL;
  int err = sim_bot_spawn(run->sw, SIMRUN_PORT, &bc, &b);
  if (err < 0)
    return err;
  p->bots[slot] = (pbot_t){.bot = b};
  return RT_OK;
}

static void destroy_bot(simrun_t *run, pbot_t *pb) {
  if (pb->bot == NULL)
    return;
  run->sum.frames_sent += sim_bot_frames_sent(pb->bot);
  sim_bot_destroy(pb->bot);
  memset(pb, 0, sizeof(*pb));
}

/* The player is done: its bot goes when its records are read. */
static void gone(simrun_t *run, player_t *p) {
  if (p->belief != B_GONE)
    run->sum.departures++;
  p->belief = B_GONE;
  if (p->bots[p->cur].bot != NULL)
    p->bots[p->cur].dead = true;
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

static bool faulty(const simrun_t *run, const player_t *p) {
  return !p->plan.no_faults && !p->plan.manual && !run->faults_over;
}

static void faults_arm(simrun_t *run, player_t *p, rt_time_ns now) {
  if (!faulty(run, p))
    return;
  const simrun_faults_t *f = &run->cfg.faults;
  p->stall_at = next_event(&p->frng, now, f->stall);
  p->reset_at = next_event(&p->frng, now, f->reset);
  p->churn_at = next_event(&p->frng, now, f->churn);
}

static void lift_stall(player_t *p) {
  if (!p->stalled)
    return;
  p->stalled = false;
  p->stall_end = NEVER;
  if (cur_bot(p) != NULL)
    (void)sim_bot_set_reading(cur_bot(p), true);
}

/* ---- Leaving and coming back --------------------------------------------- */

static void go_away(simrun_t *run, player_t *p, rt_time_ns back_in) {
  (void)run;
  p->belief = B_AWAY;
  p->reconnect_at = now_of(run) + back_in;
  p->stall_at = p->reset_at = p->churn_at = NEVER;
  p->reset_armed = false;
}

static void depart(simrun_t *run, player_t *p) {
  if (p->belief == B_LEAVING || p->belief == B_GONE)
    return;
  p->departing = true;
  sim_bot_t *b = cur_bot(p);
  if (b == NULL || sim_bot_state(b) != SIM_BOT_OPEN) {
    if (b != NULL && sim_bot_state(b) == SIM_BOT_CONNECTING)
      return; /* leave once it opens */
    gone(run, p);
    return;
  }
  double u = rt_rng_double(&p->rng);
  sim_bot_close_how_t how = u < 0.6    ? SIM_BOT_CLOSE_HANDSHAKE
                            : u < 0.85 ? SIM_BOT_CLOSE_STREAM
                                       : SIM_BOT_CLOSE_RESET;
  if (p->belief == B_QUEUED && rt_rng_double(&p->rng) < 0.5)
    (void)sim_bot_leave(b);
  (void)sim_bot_disconnect(b, how);
  p->belief = B_LEAVING; /* counted in gone() once it closed */
}

/* ---- Reading what the bots saw ------------------------------------------- */

static int err_index(const char *code) {
  static const char *const codes[] = {"bad_json", "unknown_type", "not_in_game",
                                      "rate_limited"};
  for (int i = 0; i < 4; i++)
    if (strcmp(code, codes[i]) == 0)
      return i;
  return SIMRUN_ERR_OTHER;
}

/* Every GAME_OVER a player sees is its room's stored result, stored once,
 * seen once. */
static void check_game_over(simrun_t *run, player_t *p, pbot_t *pb,
                            const sim_bot_record_t *r) {
  if (!pb->awaiting_over || r->conn != pb->room_conn) {
    fail(run, "%s (%s): GAME_OVER on connection %u with no GAME_START on it",
         p->name, p->user_id, r->conn);
    return;
  }
  if (strcmp(pb->room, p->last_over_room) == 0) {
    fail(run, "%s (%s): a second GAME_OVER for %s", p->name, p->user_id,
         pb->room);
    return;
  }
  game_result_t row;
  int found = game_store_find_game(game_store(run->game), pb->room, &row);
  if (found != 1) {
    fail(run, "%s (%s): GAME_OVER for %s, which the Store does not hold",
         p->name, p->user_id, pb->room);
    return;
  }
  if (row.p1_score != r->p1_score || row.p2_score != r->p2_score ||
      strcmp(row.winner, r->winner) != 0 ||
      strcmp(row.reason, r->reason) != 0) {
    fail(run,
         "%s: %s shows %d:%d winner=%s reason=%s; the Store has %d:%d "
         "winner=%s reason=%s",
         p->name, pb->room, r->p1_score, r->p2_score, r->winner, r->reason,
         row.p1_score, row.p2_score, row.winner, row.reason);
    return;
  }
  bool p1 = strcmp(row.p1_id, p->user_id) == 0;
  if (!p1 && strcmp(row.p2_id, p->user_id) != 0) {
    fail(run, "%s (%s): GAME_OVER for %s, which seats %s and %s", p->name,
         p->user_id, pb->room, row.p1_id, row.p2_id);
    return;
  }
  int32_t mine = p1 ? row.p1_score : row.p2_score;
  if (strcmp(p->room, pb->room) == 0 && p->clicks_tracked &&
      (uint64_t)mine > 2 * p->clicks_game)
    fail(run, "%s: scored %d in %s with %" PRIu64 " clicks sent", p->name, mine,
         pb->room, p->clicks_game);
}

static void on_opened(simrun_t *run, player_t *p, pbot_t *pb) {
  rt_time_ns now = now_of(run);
  p->connections++;
  if (!p->registered && sim_bot_user_id(pb->bot)[0] != '\0') {
    snprintf(p->user_id, sizeof(p->user_id), "%s", sim_bot_user_id(pb->bot));
    ids_put(run, p);
  }
  if (pb->retired || p->belief == B_LEAVING)
    return;
  if (p->departing) {
    p->belief = B_IDLE; /* open at last: now it can leave */
    depart(run, p);
    return;
  }
  if (p->in_game) {
    p->belief = B_RESUMING;
    p->resume_deadline = now + RESUME_WAIT;
  } else {
    p->belief = B_IDLE;
    p->next_join = now + uniform_ns(&p->rng, 100 * MS, 1500 * MS);
  }
  faults_arm(run, p, now);
}

/* Time an edge action so that it takes effect at `target` (+-1 ns). */
static void plan_edge(player_t *p, edge_t kind, rt_time_ns target,
                      rt_time_ns now) {
  rt_time_ns at = target + rt_rng_range(&p->rng, -1, 1);
  if (kind != EDGE_RESET && kind != EDGE_TWIN)
    at -= p->plan.up.latency; /* a frame takes the up link */
  if (at <= now)
    return;
  p->edge_at = at;
  p->edge_kind = (uint8_t)kind;
}

/* Plan a game seen from its start, or joined late (resumed, with
 * time_remaining seconds left). */
static void new_game_plan(simrun_t *run, player_t *p,
                          const sim_bot_record_t *start) {
  const game_config_t *g = &run->cfg.game;
  rt_time_ns now = now_of(run);
  rt_time_ns length = (rt_time_ns)g->game_seconds * g->tick;
  if (start->resumed && start->time_remaining >= 0) {
    p->t_end = now + (rt_time_ns)start->time_remaining * g->tick;
    p->t_run = p->t_end - length;
  } else {
    p->t_run = now + g->countdown;
    p->t_end = p->t_run + length;
  }
  p->clicks_game = 0;
  p->clicks_tracked = !start->resumed && !p->plan.manual; /* a test clicks */
  p->next_click = p->plan.click_rate > 0
                      ? p->t_run + uniform_ns(&p->rng, -500 * MS, 500 * MS)
                      : NEVER;
  p->click_end = p->t_end + uniform_ns(&p->rng, -300 * MS, 300 * MS);
  p->quit_at = p->away_at = p->twin_at = p->abuse_at = p->cookie_at = NEVER;
  p->spawn_open = false;
  rt_time_ns mid_lo = p->t_run + SEC, mid_hi = p->t_end - 2 * SEC;
  p->edge_at = NEVER;
  if (!start->resumed && !p->plan.manual && !p->plan.no_faults &&
      rt_rng_double(&p->rng) < EDGE_P) {
    /* The Room started the game one down-link latency ago. */
    rt_time_ns t0 = now - p->plan.down.latency;
    rt_time_ns target = t0 + g->countdown;
    if (rt_rng_double(&p->rng) < 0.6)
      target += length;
    plan_edge(p, (edge_t)rt_rng_range(&p->rng, EDGE_CLICK, EDGE_TWIN), target,
              now);
  }
  switch (p->plan.kind) {
  case SIMRUN_QUITTER:
    if (rt_rng_double(&p->rng) < 0.6)
      p->quit_at = uniform_ns(&p->rng, p->t_run - 2 * SEC, p->t_end);
    break;
  case SIMRUN_RESUMER:
    if (rt_rng_double(&p->rng) < 0.7) {
      p->away_at = uniform_ns(&p->rng, mid_lo, mid_hi);
      rt_time_ns grace = g->reconnect_grace;
      p->away_for = rt_rng_double(&p->rng) < 0.8
                        ? uniform_ns(&p->rng, 200 * MS, grace * 8 / 10)
                        : uniform_ns(&p->rng, grace * 11 / 10, grace * 16 / 10);
    }
    break;
  case SIMRUN_TWIN:
    if (rt_rng_double(&p->rng) < 0.6)
      p->twin_at = uniform_ns(&p->rng, mid_lo, mid_hi);
    break;
  case SIMRUN_ABUSER:
    p->abuse_at = uniform_ns(&p->rng, p->t_run - 2 * SEC, p->t_end);
    break;
  default:
    break;
  }
}

static void on_game_start(simrun_t *run, player_t *p, pbot_t *pb,
                          const sim_bot_record_t *r) {
  snprintf(pb->room, sizeof(pb->room), "%s", r->room_id);
  pb->room_conn = r->conn;
  pb->awaiting_over = true;
  if (pb->retired)
    return;
  /* Resuming the game we were in (even if we had given up waiting). */
  bool known = strcmp(p->room, r->room_id) == 0 &&
               strcmp(r->room_id, p->last_over_room) != 0;
  if (!r->resumed || !known) {
    if (strcmp(r->room_id, p->last_over_room) == 0 ||
        (!r->resumed && strcmp(r->room_id, p->room) == 0)) {
      fail(run, "%s (%s): put in %s a second time", p->name, p->user_id,
           r->room_id);
      return;
    }
    p->games_started += !r->resumed;
    snprintf(p->room, sizeof(p->room), "%s", r->room_id);
    snprintf(p->opponent, sizeof(p->opponent), "%s", r->opponent);
    new_game_plan(run, p, r);
  }
  p->in_game = true;
  if (p->belief != B_LEAVING)
    p->belief = B_PLAYING;
}

/* Some players look at their history (GET /api/history, through the HTTP
 * API and the Store's read path) or the leaderboard after a game. */
static void maybe_read(simrun_t *run, player_t *p, pbot_t *pb,
                       const sim_bot_record_t *over) {
  if (p->plan.manual || pb->retired || p->read_pending ||
      rt_rng_double(&p->rng) >= READ_P)
    return;
  bool history = rt_rng_double(&p->rng) < 0.8;
  if (sim_bot_http_get(pb->bot,
                       history ? "/api/history?limit=5"
                               : "/api/leaderboard?limit=20",
                       history) != RT_OK)
    return;
  run->sum.reads++;
  p->read_pending = true;
  snprintf(p->read_room, sizeof(p->read_room), "%s", history ? pb->room : "");
  p->read_over = *over;
}

static double json_num(const cJSON *o, const char *name) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
  return cJSON_IsNumber(v) ? v->valuedouble : -1e9;
}

static const char *json_str(const cJSON *o, const char *name) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
  return cJSON_IsString(v) ? v->valuestring : "";
}

/* The history shows the game the player just saw end, with its scores. */
static void check_history(simrun_t *run, player_t *p, const char *body,
                          size_t len) {
  cJSON *root = cJSON_ParseWithLength(body, len);
  const cJSON *games = cJSON_GetObjectItemCaseSensitive(root, "games");
  const cJSON *found = NULL, *g = NULL;
  cJSON_ArrayForEach(g, games) {
    if (strcmp(json_str(g, "gameId"), p->read_room) == 0)
      found = g;
  }
  const sim_bot_record_t *o = &p->read_over;
  if (found == NULL) {
    fail(run, "%s (%s): its history lacks %s, whose GAME_OVER it saw", p->name,
         p->user_id, p->read_room);
  } else {
    double mine = json_num(found, "score"),
           theirs = json_num(found, "opponentScore");
    bool p1 = mine == o->p1_score && theirs == o->p2_score;
    bool p2 = mine == o->p2_score && theirs == o->p1_score;
    if ((!p1 && !p2) || strcmp(json_str(found, "reason"), o->reason) != 0 ||
        strcmp(json_str(found, "winner"), o->winner) != 0)
      fail(run,
           "%s: history has %s at %.0f:%.0f winner=%s reason=%s; its "
           "GAME_OVER said %d:%d winner=%s reason=%s",
           p->name, p->read_room, mine, theirs, json_str(found, "winner"),
           json_str(found, "reason"), o->p1_score, o->p2_score, o->winner,
           o->reason);
  }
  cJSON_Delete(root);
}

static void poll_read(simrun_t *run, player_t *p) {
  sim_bot_t *b = cur_bot(p);
  int status = 0;
  const char *body = NULL;
  size_t len = 0;
  if (!p->read_pending || b == NULL ||
      !sim_bot_http_result(b, &status, &body, &len))
    return;
  p->read_pending = false;
  if (status == 503) {
    run->sum.reads_unavailable++; /* the Store failed: said so, fast */
    return;
  }
  if (status != 200) {
    /* 0: the connection failed (a fault); anything else is wrong. */
    if (status != 0)
      fail(run, "%s: GET answered %d", p->name, status);
    return;
  }
  if (p->read_room[0] != '\0')
    check_history(run, p, body, len);
}

static void on_game_over(simrun_t *run, player_t *p, pbot_t *pb,
                         const sim_bot_record_t *r) {
  run->sum.game_overs_seen++;
  check_game_over(run, p, pb, r);
  if (!run->failed)
    maybe_read(run, p, pb, r);
  snprintf(p->last_over_room, sizeof(p->last_over_room), "%s", pb->room);
  pb->awaiting_over = false;
  p->games_over++;
  p->last_over = *r;
  if (pb->retired || strcmp(pb->room, p->room) != 0)
    return;
  p->in_game = false;
  p->next_click = p->cookie_at = p->quit_at = p->away_at = NEVER;
  p->twin_at = p->abuse_at = NEVER;
  if (p->belief == B_LEAVING)
    return;
  if (p->plan.games_max > 0 && p->games_over >= p->plan.games_max) {
    depart(run, p);
    return;
  }
  p->belief = B_IDLE;
  p->next_join = now_of(run) + uniform_ns(&p->rng, 300 * MS, 3 * SEC);
}

static void on_closed(simrun_t *run, player_t *p, pbot_t *pb) {
  pb->awaiting_over = false;
  if (pb->retired || pb != &p->bots[p->cur]) {
    pb->dead = true; /* Invariant (1): the replaced one is done */
    return;
  }
  lift_stall(p);
  p->reset_armed = false;
  if (p->departing || p->belief == B_LEAVING) {
    gone(run, p);
    return;
  }
  if (p->belief == B_AWAY)
    return; /* we dropped it ourselves: the comeback is planned */
  /* The server or the network ended it: come back soon. */
  go_away(run, p, uniform_ns(&p->rng, 100 * MS, 3 * SEC));
}

static void on_refused(simrun_t *run, player_t *p, pbot_t *pb) {
  run->sum.players_refused++;
  if (pb->retired) {
    pb->dead = true;
    return;
  }
  bool has_token = sim_bot_token(pb->bot)[0] != '\0';
  if (has_token && ++p->refusals <= REFUSALS_MAX && !p->departing) {
    go_away(run, p, SEC);
    return;
  }
  gone(run, p);
}

static void on_record(simrun_t *run, player_t *p, pbot_t *pb,
                      const sim_bot_record_t *r) {
  run->sum.frames_received++;
  switch ((sim_bot_kind_t)r->kind) {
  case SIM_BOT_OPENED:
    on_opened(run, p, pb);
    return;
  case SIM_BOT_QUEUED:
    if (p->belief == B_IDLE)
      p->belief = B_QUEUED;
    return;
  case SIM_BOT_GAME_START:
    on_game_start(run, p, pb, r);
    return;
  case SIM_BOT_GAME_OVER:
    on_game_over(run, p, pb, r);
    return;
  case SIM_BOT_COOKIE_SPAWN:
    if (pb->retired || !p->in_game)
      return;
    p->spawn_open = true;
    p->spawn_x = r->x;
    p->spawn_y = r->y;
    if (p->plan.reaction > 0 && !p->plan.manual)
      p->cookie_at = now_of(run) + p->plan.reaction * 8 / 10 +
                     uniform_ns(&p->rng, 0, p->plan.reaction * 4 / 10);
    return;
  case SIM_BOT_UPDATE_CLAIM:
    p->spawn_open = false;
    p->cookie_at = NEVER;
    /* My claim: a click exactly at the end of my bonus. */
    if (!pb->retired && !p->plan.manual && !p->plan.no_faults &&
        p->edge_at == NEVER && strcmp(r->claimed_by, p->user_id) == 0 &&
        rt_rng_double(&p->rng) < EDGE_P)
      plan_edge(p, EDGE_CLICK,
                r->at - p->plan.down.latency + run->cfg.game.bonus,
                now_of(run));
    return;
  case SIM_BOT_ERROR:
    run->sum.errors_seen[err_index(r->error_code)]++;
    return;
  case SIM_BOT_CLOSED:
    on_closed(run, p, pb);
    return;
  case SIM_BOT_REFUSED:
    on_refused(run, p, pb);
    return;
  default:
    return;
  }
}

static void read_records(simrun_t *run, player_t *p) {
  for (uint32_t k = 0; k < SIMRUN_BOTS_PER_PLAYER; k++) {
    pbot_t *pb = &p->bots[k];
    if (pb->bot == NULL)
      continue;
    uint32_t n;
    const sim_bot_record_t *recs = sim_bot_records(pb->bot, &n);
    /* Handlers send commands and may spawn the other slot's bot; none adds
     * records to this one before its next turn. */
    for (uint32_t i = pb->seen; i < n; i++)
      on_record(run, p, pb, &recs[i]);
    pb->seen = n;
    if (!p->plan.keep_records) {
      sim_bot_records_clear(pb->bot);
      pb->seen = 0;
    }
  }
}

/* ---- Acting -------------------------------------------------------------- */

static void send_clicks(simrun_t *run, player_t *p, uint32_t n) {
  int64_t seq = p->use_seq ? p->seq_next : -1;
  if (sim_bot_clicks(cur_bot(p), n, seq) < 0)
    return;
  p->seq_next += n;
  p->clicks_game += n;
  p->clicks_sent += n;
  run->sum.clicks_sent += n;
}

static void cookie_click(simrun_t *run, player_t *p) {
  if (!p->spawn_open || sim_bot_cookie_click(cur_bot(p)) < 0)
    return;
  run->sum.cookie_clicks++;
  /* A race: the opponent clicked this very cookie too. */
  player_t *o = ids_find(run, p->opponent);
  if (o != NULL && o->target_set && strcmp(o->target_room, p->room) == 0 &&
      o->target_x == p->spawn_x && o->target_y == p->spawn_y)
    run->sum.cov[SIMRUN_COV_GOLDEN_RACE]++;
  snprintf(p->target_room, sizeof(p->target_room), "%s", p->room);
  p->target_x = p->spawn_x;
  p->target_y = p->spawn_y;
  p->target_set = true;
  p->spawn_open = false;
}

static void twin(simrun_t *run, player_t *p) {
  uint32_t other = 1 - p->cur;
  if (p->bots[other].bot != NULL)
    return; /* Invariant (1): the previous one has not closed yet */
  sim_bot_t *old = cur_bot(p);
  char token[SIM_BOT_TOKEN_MAX];
  snprintf(token, sizeof(token), "%s", sim_bot_token(old));
  if (spawn_bot(run, p, other, token, p->user_id) < 0)
    return;
  p->bots[p->cur].retired = true;
  p->cur = other;
  lift_stall(p);
  p->reset_armed = false;
  p->belief = B_CONNECTING;
}

static void abuse(simrun_t *run, player_t *p) {
  sim_bot_t *b = cur_bot(p);
  uint32_t what = (uint32_t)rt_rng_below(&p->rng, 7);
  switch (what) {
  case 0: /* a flood, far above the rate limit */
    send_clicks(run, p, (uint32_t)rt_rng_range(&p->rng, 60, 400));
    return;
  case 1:
    (void)sim_bot_send(b, "{\"type\":\"CLICK\"", 15);
    return;
  case 2:
    (void)sim_bot_send(b, "{\"type\":\"DANCE\",\"payload\":{}}", 29);
    return;
  case 3: { /* oversize: the server closes with 1009 */
    char big[OVERSIZE_MAX];
    size_t len = (size_t)rt_rng_range(&p->rng, 513, OVERSIZE_MAX - 1);
    int head = snprintf(big, sizeof(big), "{\"type\":\"CLICK\",\"pad\":\"");
    memset(big + head, 'x', len - (size_t)head - 2);
    memcpy(big + len - 2, "\"}", 2);
    (void)sim_bot_send(b, big, len);
    return;
  }
  case 4:
    (void)sim_bot_send(b, "\xff\xfe\xfd", 3);
    return; /* bad UTF-8 */
  case 5:
    (void)sim_bot_join(b);
    return; /* ignored while playing */
  default:
    (void)sim_bot_send(b, "[1,2,3]", 7);
    return;
  }
}

static void edge(simrun_t *run, player_t *p) {
  sim_bot_t *b = cur_bot(p);
  edge_t kind = (edge_t)p->edge_kind;
  p->edge_at = NEVER;
  p->edge_kind = EDGE_NONE;
  run->sum.edges++;
  switch (kind) {
  case EDGE_CLICK:
    send_clicks(run, p, 1);
    return;
  case EDGE_COOKIE:
    p->spawn_open = true; /* whether or not one is up: the Room decides */
    cookie_click(run, p);
    return;
  case EDGE_QUIT:
    (void)sim_bot_quit(b);
    return;
  case EDGE_CLOSE:
  case EDGE_RESET:
    (void)sim_bot_disconnect(b, kind == EDGE_CLOSE ? SIM_BOT_CLOSE_HANDSHAKE
                                                   : SIM_BOT_CLOSE_RESET);
    go_away(run, p, uniform_ns(&p->rng, 0, run->cfg.game.reconnect_grace));
    return;
  case EDGE_TWIN:
    twin(run, p);
    return;
  default:
    return;
  }
}

static void act_playing(simrun_t *run, player_t *p, rt_time_ns now) {
  if (p->edge_at <= now) {
    edge(run, p);
    if (p->belief != B_PLAYING || !bot_open(p))
      return;
  }
  for (uint32_t i = 0; i < CLICK_EVENTS_PER_SLICE && p->next_click <= now;
       i++) {
    if (p->next_click < p->click_end) {
      uint32_t n = 1;
      if (rt_rng_double(&p->rng) < p->plan.burst_p)
        n = (uint32_t)rt_rng_range(&p->rng, 2, p->plan.burst_max);
      send_clicks(run, p, n);
      double gap = -log(1.0 - rt_rng_double(&p->rng)) / p->plan.click_rate;
      p->next_click += (rt_time_ns)(gap * 1e9) + 1;
    } else {
      p->next_click = NEVER;
    }
  }
  if (p->cookie_at <= now) {
    p->cookie_at = NEVER;
    cookie_click(run, p);
  }
  if (p->quit_at <= now) {
    p->quit_at = NEVER;
    (void)sim_bot_quit(cur_bot(p));
  }
  if (p->abuse_at <= now) {
    abuse(run, p);
    p->abuse_at = now + uniform_ns(&p->rng, 2 * SEC, 10 * SEC);
    if (p->abuse_at > p->t_end + 2 * SEC)
      p->abuse_at = NEVER;
    if (!bot_open(p))
      return;
  }
  if (p->twin_at <= now) {
    p->twin_at = NEVER;
    twin(run, p);
    return;
  }
  if (p->away_at <= now) {
    p->away_at = NEVER;
    sim_bot_close_how_t how = rt_rng_double(&p->rng) < 0.5
                                  ? SIM_BOT_CLOSE_STREAM
                                  : SIM_BOT_CLOSE_RESET;
    (void)sim_bot_disconnect(cur_bot(p), how);
    go_away(run, p, p->away_for);
  }
}

/* Random faults on a connected player (the fault phase only). */
static void act_faults(simrun_t *run, player_t *p, rt_time_ns now) {
  const game_config_t *g = &run->cfg.game;
  sim_bot_t *b = cur_bot(p);
  if (p->stall_end <= now)
    lift_stall(p);
  if (p->stall_at <= now) {
    p->stall_at = next_event(&p->frng, now, run->cfg.faults.stall);
    if (!p->stalled && sim_bot_set_reading(b, false) == RT_OK) {
      p->stalled = true;
      p->stall_end = now + uniform_ns(&p->frng, SEC, 2 * g->write_wait);
      if (p->stall_end > run->fault_end)
        p->stall_end = run->fault_end;
      run->sum.faults_injected[1]++;
    }
  }
  if (p->reset_at <= now) {
    p->reset_at = next_event(&p->frng, now, run->cfg.faults.reset);
    if (sim_bot_reset_in(b, (uint64_t)rt_rng_range(&p->frng, 1, 3000)) == 0) {
      p->reset_armed = true;
      run->sum.faults_injected[2]++;
    }
  }
  if (p->churn_at <= now) {
    p->churn_at = NEVER;
    sim_bot_close_how_t how = rt_rng_double(&p->frng) < 0.5
                                  ? SIM_BOT_CLOSE_STREAM
                                  : SIM_BOT_CLOSE_RESET;
    if (sim_bot_disconnect(b, how) == RT_OK) {
      run->sum.faults_injected[3]++;
      go_away(run, p, uniform_ns(&p->frng, 100 * MS, 3 * SEC));
    }
  }
}

static void act(simrun_t *run, player_t *p, rt_time_ns now) {
  switch (p->belief) {
  case B_NEW:
    if (now >= p->plan.arrive_at) {
      if (spawn_bot(run, p, 0, NULL, NULL) < 0) {
        gone(run, p);
        return;
      }
      p->belief = B_CONNECTING;
    }
    return;
  case B_AWAY:
    if (now < p->reconnect_at)
      return;
    p->reconnect_at = NEVER;
    if (p->departing || (run->winding && !p->in_game)) {
      gone(run, p);
      return;
    }
    if (sim_bot_reconnect(cur_bot(p)) == RT_OK) {
      run->sum.reconnects++;
      p->belief = B_CONNECTING;
    }
    return;
  case B_CONNECTING:
  case B_LEAVING:
  case B_GONE:
    return;
  default:
    break;
  }
  if (!bot_open(p))
    return;
  if (faulty(run, p))
    act_faults(run, p, now);
  if (p->belief == B_AWAY || !bot_open(p))
    return;
  sim_bot_t *b = cur_bot(p);
  switch (p->belief) {
  case B_RESUMING:
    if (now >= p->resume_deadline) {
      p->in_game = false; /* the game ended while we were away */
      p->belief = B_IDLE;
      p->next_join = now;
    }
    return;
  case B_IDLE:
    if (run->winding) {
      depart(run, p);
      return;
    }
    if (now < p->next_join)
      return;
    p->next_join = NEVER;
    if (p->plan.kind == SIMRUN_ABUSER && rt_rng_double(&p->rng) < 0.3)
      (void)sim_bot_click(b, -1); /* not in a game: an ERROR */
    (void)sim_bot_join(b);
    p->belief = B_QUEUED;
    if (p->plan.kind == SIMRUN_LEAVER && rt_rng_double(&p->rng) < 0.7)
      p->leave_at = now + uniform_ns(&p->rng, 50 * MS, 3 * SEC);
    return;
  case B_QUEUED:
    if (run->winding) {
      depart(run, p);
      return;
    }
    if (p->leave_at <= now) {
      p->leave_at = NEVER;
      (void)sim_bot_leave(b);
      p->belief = B_IDLE;
      p->next_join = now + uniform_ns(&p->rng, 200 * MS, 3 * SEC);
    }
    return;
  case B_PLAYING:
    act_playing(run, p, now);
    return;
  default:
    return;
  }
}

static void reap(simrun_t *run, player_t *p) {
  for (uint32_t k = 0; k < SIMRUN_BOTS_PER_PLAYER; k++)
    if (p->bots[k].bot != NULL && p->bots[k].dead &&
        (k != p->cur || p->belief == B_GONE))
      destroy_bot(run, &p->bots[k]);
}

static rt_time_ns min_ns(rt_time_ns a, rt_time_ns b) { return a < b ? a : b; }

static rt_time_ns wake_of(const player_t *p) {
  rt_time_ns t = p->belief == B_NEW ? p->plan.arrive_at : NEVER;
  t = min_ns(t, min_ns(p->next_join, p->leave_at));
  t = min_ns(t, min_ns(p->next_click, p->cookie_at));
  t = min_ns(t, min_ns(p->quit_at, p->away_at));
  t = min_ns(t, min_ns(p->twin_at, p->abuse_at));
  t = min_ns(t, min_ns(p->reconnect_at, p->resume_deadline));
  t = min_ns(t, min_ns(p->stall_at, p->stall_end));
  t = min_ns(t, min_ns(p->reset_at, p->churn_at));
  return min_ns(t, p->edge_at);
}

static bool has_records(const player_t *p) {
  for (uint32_t k = 0; k < SIMRUN_BOTS_PER_PLAYER; k++) {
    uint32_t n;
    if (p->bots[k].bot != NULL &&
        (sim_bot_records(p->bots[k].bot, &n), n > p->bots[k].seen))
      return true;
  }
  return false;
}

static void brains(simrun_t *run) {
  rt_time_ns now = now_of(run);
  run->next_edge = NEVER;
  for (uint32_t i = 0; i < run->players_len && !run->failed; i++) {
    if (now < run->wake[i] && !run->news[i]) {
      /* The test below, without touching the player: a player gone with
       * no bot has edge NEVER (set on its last look). */
      if (run->edge[i] < run->next_edge)
        run->next_edge = run->edge[i];
      continue;
    }
    player_t *p = &run->players[i];
    run->news[i] = 0; /* read_records below reads all of it */
    if (p->belief == B_GONE && cur_bot(p) == NULL) {
      run->wake[i] = run->edge[i] = NEVER; /* for good */
      continue;
    }
    if (now < p->wake_at && !has_records(p)) {
      if (p->edge_at < run->next_edge)
        run->next_edge = p->edge_at;
      continue; /* nothing new, nothing due */
    }
    read_records(run, p);
    poll_read(run, p);
    if (!p->plan.manual || p->belief == B_NEW)
      act(run, p, now); /* a manual player's bot arrives; the test drives */
    reap(run, p);
    if (p->belief != B_PLAYING)
      p->edge_at = NEVER; /* an edge belongs to the game it was timed for */
    if (p->edge_at < run->next_edge)
      run->next_edge = p->edge_at;
    /* A bot that is not open yet (or still closing) is waited for through
     * its records; a dead one is reaped on the next look. */
    p->wake_at = wake_of(p);
    if (p->read_pending && p->wake_at > now + READ_POLL)
      p->wake_at = now + READ_POLL;
    if (p->bots[0].dead || p->bots[1].dead)
      p->wake_at = now;
    run->wake[i] = p->wake_at;
    run->edge[i] = p->edge_at;
  }
}

/* ---- Phases -------------------------------------------------------------- */

/* F: faults stop; what runs and who left is noted for R1 and R2. */
static void end_faults(simrun_t *run) {
  run->faults_over = true;
  for (uint32_t i = 0; i < run->players_len; i++) {
    player_t *p = &run->players[i];
    p->stall_at = p->reset_at = p->churn_at = NEVER;
    lift_stall(p);
    if (p->reset_armed && cur_bot(p) != NULL)
      (void)sim_bot_reset_in(cur_bot(p), 0);
    p->reset_armed = false;
    p->wake_at = 0;
    run->wake[i] = 0;
  }
  uint32_t n = 0;
  uint64_t *ids = game_live_rooms(run->game, &n);
  if (ids == NULL && n > 0) {
    fail(run, "out of memory noting the rooms at the fault end");
    return;
  }
  run->rec_rooms = ids;
  run->rec_rooms_len = n;
  run->rec_players = calloc(run->players_len + 1, sizeof(uint32_t));
  if (run->rec_players == NULL) {
    fail(run, "out of memory noting the players at the fault end");
    return;
  }
  for (uint32_t i = 0; i < run->players_len; i++)
    if (run->players[i].belief == B_GONE && run->players[i].registered)
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
    p->wake_at = 0; /* everyone looks: time to leave or to finish */
    run->wake[i] = 0;
    p->next_join = NEVER;
  }
}

/* B1 (simrun.h): the longest a game running (or about to start) at some
 * instant takes to end and have its result stored, faults off. */
static rt_time_ns bound_b1(const simrun_t *run) {
  const game_config_t *g = &run->cfg.game;
  rt_time_ns retry_max = 2 * SEC; /* game_store.c's default */
  /* A JOIN sent just before the end starts a game a round trip later;
   * that game's GAME_OVER takes one more trip down. */
  return 3 * run->link_max + g->countdown +
         (rt_time_ns)g->game_seconds * g->tick + g->reconnect_grace +
         RECORD_RESEND + 2 * retry_max + g->write_wait + LIVENESS_SLACK;
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

/* ---- Checks -------------------------------------------------------------- */

int simrun_check(simrun_t *run) {
  if (run->failed)
    return -1;
  char why[SIMRUN_FAILURE_MAX];
  run->sum.checks++;
  if (rt_world_check(run->w, why, sizeof(why)) < 0) {
    fail(run, "runtime: %s", why);
    return -1;
  }
  if (game_check(run->game, why, sizeof(why)) < 0) {
    fail(run, "game: %s", why);
    return -1;
  }
  return 0;
}

/* R1: every room that was running at F has ended. */
static void check_r1(simrun_t *run) {
  run->r1_done = true;
  for (uint32_t i = 0; i < run->rec_rooms_len && !run->failed; i++)
    if (game_room_live(run->game, run->rec_rooms[i]))
      fail(run,
           "liveness: room actor %" PRIu64 ", running when the faults "
           "ended at %.3f s, still runs at R1",
           run->rec_rooms[i], (double)run->fault_end / SEC);
}

/* R2: every player that had departed by F is forgotten by the Manager (no
 * room seats it, no connection is attached to it). */
static void check_r2(simrun_t *run) {
  run->r2_done = true;
  for (uint32_t i = 0; i < run->rec_players_len && !run->failed; i++) {
    const player_t *p = &run->players[run->rec_players[i]];
    rt_actor_id_t room = 0;
    uint32_t role = 0;
    int seat = game_player_seat(run->game, p->user_id, &room, &role);
    if (seat >= 0)
      fail(run,
           "liveness: %s (%s) departed before the faults ended at %.3f s; "
           "at R2 the Manager still holds it (%s)",
           p->name, p->user_id, (double)run->fault_end / SEC,
           seat == 1 ? "playing" : "idle");
  }
}

/* L1: every game ended, and every player still connected (on an uncapped
 * link) saw its end. */
static void check_l1(simrun_t *run) {
  game_stats_t gs;
  game_get_stats(run->game, &gs);
  if (gs.rooms != 0) {
    fail(run, "liveness: %u games still running at L1 (%.3f s)", gs.rooms,
         (double)now_of(run) / SEC);
    return;
  }
  if (gs.queued != 0) {
    fail(run, "liveness: %u players still queued at L1", gs.queued);
    return;
  }
  for (uint32_t i = 0; i < run->players_len && !run->failed; i++) {
    player_t *p = &run->players[i];
    const pbot_t *pb = &p->bots[p->cur];
    if (pb->bot == NULL || p->plan.down.bandwidth > 0 || !pb->awaiting_over ||
        sim_bot_state(pb->bot) != SIM_BOT_OPEN)
      continue;
    fail(run, "liveness: %s (%s) saw %s start on connection %u and no end",
         p->name, p->user_id, pb->room, pb->room_conn);
  }
}

static void depart_all(simrun_t *run) {
  for (uint32_t i = 0; i < run->players_len; i++) {
    player_t *p = &run->players[i];
    read_records(run, p); /* the last of what it saw */
    for (uint32_t k = 0; k < SIMRUN_BOTS_PER_PLAYER; k++)
      destroy_bot(run, &p->bots[k]);
    if (p->belief != B_GONE)
      run->sum.departures++;
    p->belief = B_GONE;
    run->wake[i] = run->edge[i] = NEVER;
  }
}

/* L2: every actor of a departed player is freed; every finished game is
 * stored exactly once. */
static void check_l2(simrun_t *run) {
  game_stats_t gs;
  game_get_stats(run->game, &gs);
  uint32_t rooms_live = 0, clients_live = 0;
  game_live_counts(run->game, &rooms_live, &clients_live);
  net_server_stats_t ns;
  net_server_get_stats(run->srv, &ns);
  game_store_stats_t ss;
  game_store_get_stats(game_store(run->game), &ss);
  rt_world_stats_t ws;
  rt_world_stats(run->w, &ws);
  if (gs.players != 0 || gs.connected != 0 || gs.queued != 0 || gs.rooms != 0)
    fail(run,
         "liveness: at L2 the Manager still has %u players (%u "
         "connected, %u queued) and %u rooms",
         gs.players, gs.connected, gs.queued, gs.rooms);
  else if (rooms_live != 0 || clients_live != 0)
    fail(run, "liveness: at L2 %u rooms and %u clients still run", rooms_live,
         clients_live);
  else if (ns.connections != 0)
    fail(run, "liveness: at L2 the server holds %u connections",
         ns.connections);
  else if (ss.pending != 0)
    fail(run, "liveness: at L2 the Store holds %u pending results", ss.pending);
  else if (ws.actors_live != run->baseline_actors)
    fail(run,
         "liveness: at L2 %u actors live, expected %u (acceptor, "
         "Manager, Store)",
         ws.actors_live, run->baseline_actors);
  else if (ws.timers_live != 0)
    fail(run, "liveness: at L2 %u timers armed", ws.timers_live);
  if (run->failed)
    return;
  uint64_t finished = 0;
  for (int i = 0; i < GAME_END_REASON_COUNT_; i++)
    finished += gs.rooms_finished[i];
  int64_t rows = game_store_count_games(game_store(run->game));
  if (rows < 0 || (uint64_t)rows != finished || ss.recorded != finished)
    fail(run,
         "the Store holds %" PRId64 " games (%" PRIu64 " recorded), %" PRIu64
         " finished",
         rows, ss.recorded, finished);
}

/* ---- Driving ------------------------------------------------------------- */

/* Run the world to `until`, stopping between turns after every
 * check_deliveries deliveries to check (a turn delivers at least one
 * message and at most the batch, so asking for remaining / batch turns
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
      run->next_check_deliveries =
          rt_world_deliveries(run->w) + run->cfg.check_deliveries;
      run->sum.checks_by_deliveries++;
      if (simrun_check(run) < 0)
        return -1;
    }
    if (rr != SIM_RUN_TURNS)
      break;
    turns += ask;
    if (turns >= TURNS_PER_SLICE_MAX) {
      fail(run, "no progress: %llu turns without the clock reaching %.6f s",
           TURNS_PER_SLICE_MAX, (double)until / SEC);
      return -1;
    }
  }
  if (now_of(run) < until)
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
  while (!run->failed && now_of(run) < t) {
    rt_time_ns now = now_of(run);
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
    if (run_slice(run, next) < 0)
      return -1;
    if (now_of(run) >= run->next_check) {
      run->next_check += run->cfg.check_every;
      if (simrun_check(run) < 0)
        return -1;
    }
    now = now_of(run);
    if (!run->faults_over && now >= run->fault_end)
      end_faults(run);
    if (!run->winding && now >= run->cfg.duration)
      wind_down(run);
    if (run->faults_over && !run->r1_done && now >= simrun_r1(run))
      check_r1(run);
    if (run->faults_over && !run->r2_done && now >= simrun_r2(run))
      check_r2(run);
    if (run->failed)
      return -1;
    brains(run);
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
  check_l1(run);
  if (run->failed)
    return -1;
  depart_all(run);
  if (simrun_run_to(run, simrun_l2(run)) < 0)
    return -1;
  if (simrun_check(run) < 0)
    return -1;
  check_l2(run);
  return run->failed ? -1 : 0;
}

/* ---- Reports ------------------------------------------------------------- */

void simrun_summary(const simrun_t *run, simrun_summary_t *out) {
  *out = run->sum;
  out->seed = run->cfg.seed;
  game_stats_t gs;
  game_get_stats(run->game, &gs);
  out->games_started = gs.rooms_started;
  for (int i = 0; i < GAME_END_REASON_COUNT_; i++)
    out->games_finished[i] = gs.rooms_finished[i];
  int64_t rows = game_store_count_games(game_store(run->game));
  out->games_stored = rows > 0 ? (uint64_t)rows : 0;
  out->clicks_scored = gs.clicks_scored;
  out->clicks_countdown = gs.clicks_countdown;
  out->clicks_rate_limited = gs.clicks_rate_limited;
  out->golden_spawns = gs.golden_spawns;
  out->golden_claims = gs.golden_claims;
  out->golden_contested = gs.golden_contested;
  out->out_dropped = gs.out_dropped;
  out->out_tick_replaced = gs.out_tick_replaced;
  for (int i = 0; i < GAME_KICK_REASON_COUNT_; i++)
    out->kicks[i] = gs.kicks[i];
  out->resumed = gs.resumed;
  net_server_stats_t ns;
  net_server_get_stats(run->srv, &ns);
  out->ws_messages_in = ns.ws_messages_in;
  out->ws_messages_out = ns.ws_messages_out;
  out->http_requests = ns.http_requests;
  for (int i = 0; i < NET_CLOSE_REASON_COUNT_; i++)
    out->closes[i] = ns.closes[i];
  for (int i = 0; i < 16; i++)
    out->close_codes[i] = ns.ws_close_codes[i];
  game_store_stats_t ss;
  game_store_get_stats(game_store(run->game), &ss);
  out->store_recorded = ss.recorded;
  out->store_duplicates = ss.duplicates;
  out->store_retries = ss.retries;
  out->store_errors =
      ss.errors_busy + ss.errors_full + ss.errors_io + ss.errors_other;
  out->store_reads_failed = ss.reads_failed;
  rt_world_stats_t ws;
  rt_world_stats(run->w, &ws);
  for (int i = 0; i < RT_MB_REASON_COUNT_; i++)
    out->mailbox[i] = ws.mailbox[i];
  out->dead_letters = ws.dead_letters;
  out->dropped_at_stop = ws.dropped_at_stop;
  out->deliveries = rt_world_deliveries(run->w);
  out->actors_spawned = ws.actors_spawned;
  for (uint32_t i = 0; i < run->players_len; i++) {
    const player_t *p = &run->players[i];
    for (uint32_t k = 0; k < SIMRUN_BOTS_PER_PLAYER; k++)
      if (p->bots[k].bot != NULL)
        out->frames_sent += sim_bot_frames_sent(p->bots[k].bot);
  }
  out->cov[SIMRUN_COV_DROP_BACKPRESSURE] =
      gs.out_dropped + ws.mailbox[RT_MB_DROPPED];
  out->cov[SIMRUN_COV_DISCONNECT_SLOW] = gs.kicks[GAME_KICK_WRITE_WAIT] +
                                         gs.kicks[GAME_KICK_MUST_OVERFLOW] +
                                         gs.kicks[GAME_KICK_MAILBOX_FULL];
  out->cov[SIMRUN_COV_RESUME] = gs.resumed;
  out->cov[SIMRUN_COV_REPLACED] = gs.kicks[GAME_KICK_REPLACED];
  out->cov[SIMRUN_COV_STORE_RETRY] = ss.retries;
  out->cov[SIMRUN_COV_MUST_OVERFLOW] = gs.kicks[GAME_KICK_MUST_OVERFLOW];
  out->cov[SIMRUN_COV_PARKED] = ns.ws_parks;
  out->cov[SIMRUN_COV_FLOOD] = gs.kicks[GAME_KICK_FLOOD];
  out->rooms_lost = gs.rooms_lost;
  out->fault_end = run->fault_end;
  out->end_time = now_of(run);
  out->hash = rt_world_hash(run->w);
  out->passed = !run->failed;
  out->failed_at = run->failed_at;
  snprintf(out->failure, sizeof(out->failure), "%s", run->failure);
}

const char *simrun_failure(const simrun_t *run) {
  return run->failed ? run->failure : NULL;
}

sim_world_t *simrun_world(simrun_t *run) { return run->sw; }
game_t *simrun_game(simrun_t *run) { return run->game; }
net_server_t *simrun_server(simrun_t *run) { return run->srv; }

sim_bot_t *simrun_bot(simrun_t *run, uint32_t player) {
  return player < run->players_len ? cur_bot(&run->players[player]) : NULL;
}

void simrun_player_view(const simrun_t *run, uint32_t player,
                        simrun_player_view_t *out) {
  memset(out, 0, sizeof(*out));
  if (player >= run->players_len)
    return;
  const player_t *p = &run->players[player];
  out->games_started = p->games_started;
  out->games_over = p->games_over;
  out->connections = p->connections;
  out->clicks_sent = p->clicks_sent;
  out->departed = p->belief == B_GONE;
  snprintf(out->user_id, sizeof(out->user_id), "%s", p->user_id);
  snprintf(out->room_id, sizeof(out->room_id), "%s", p->room);
  out->last_over = p->last_over;
}
