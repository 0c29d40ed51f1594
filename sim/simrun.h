/* simrun.h: one simulated run of the whole server, with players and checks.
 *
 * A run wires the layers as the live server does (tools/src/server.c), but
 * over the simulated world: the game (Manager, Rooms, Clients, a ":memory:"
 * Store whose fault hook injects errors) behind net_server on a sim_listen
 * port, and players that are sim_bots speaking the real HTTP/WebSocket
 * protocol over sim_pipes. A "brain" per player (the runner's, not an actor)
 * reads what its bots received and decides what they do next, drawn from
 * the run's seed: clickers, golden-cookie hunters, quitters, players who
 * drop and resume, queue leavers, abusers, players who open a second
 * connection. Faults (simrun_faults_t) come on top.
 *
 * Phases of a run (virtual time):
 *   [0, F)          players arrive, play, leave and come back; faults.
 *                   F, the end of the fault phase, is faults.until
 *                   (`until=` in the grammar), or duration when unset
 *   F               faults end (stalls lift, armed resets are disarmed,
 *                   the Store stops failing); play goes on to duration
 *   R1 = F + B1     recovery: every game that was running at F ended
 *                   (B1 = countdown + game + grace + resend + retries +
 *                   write wait + 3 link trips + slack)
 *   R2 = F + B2     recovery: every player that had departed by F is
 *                   forgotten by the Manager, every room seating one ended
 *                   (B2 = B1 + close wait + 2 link trips + slack)
 *   duration        nobody joins any more; idle players leave, playing
 *                   ones finish their game
 *   L1 = duration + B1
 *                   liveness: every game ended; every player still
 *                   connected (and not on a capped link) saw the end of
 *                   its game; then every remaining player departs at once
 *   L2 = duration + B2
 *                   liveness: every actor of a departed player is freed
 *                   (no player, connection, room or pending result left)
 * With F = duration (the default), R1 = L1 and R2 = L2.
 *
 * Checks run as the run goes, with the world between turns: once
 * check_every of virtual time has passed since the last check of any kind
 * (at the end of a slice, the world quiescent), whenever check_deliveries
 * deliveries have passed since the last check of any kind (at the first
 * turn boundary after them: no more go unchecked, however much traffic a
 * little virtual time holds), and at L1 and L2: rt_world_check
 * (mailbox bounds, message accounting), game_check (game_check.h), and the
 * run's own: every GAME_OVER a player saw matches the Store's row for its room,
 * which exists (stored before it was shown), one GAME_OVER per player per room,
 * no player put twice in one room, a score at most twice its clicks, a
 * player's history (GET /api/history, read by some after a game) shows the
 * game it saw end as it ended, and every stored game is one that finished. The
 * first violation ends the run.
 *
 * Determinism: everything derives from the seed; no wall clock, no rand(),
 * no threads. Same config, same hash (simrun_summary_t.hash).
 *
 * A cluster (instances >= 2; sim/simrun_cluster.c): K servers in nodes 1..K
 * of the one world, on ports SIMRUN_PORT + i, joined through the Redis
 * model on SIMRUN_REDIS_PORT and sharing one in-memory Store; the players
 * and the model are node 0. Its faults (crash, pause, Redis restarts,
 * partitions) are in the --faults grammar below, its invariants (C1-C4) in
 * simrun_cluster.c. The liveness bounds grow by the time a cluster takes
 * to heal (restarts, backoff, a lease to lapse and be reaped).
 *
 * What programs do with runs (reports, swarms of seeds, the determinism
 * check) is in simrun_report.h.
 */
#ifndef SIMRUN_H
#define SIMRUN_H

#include "game.h"
#include "net_server.h"
#include "sim_bot.h"
#include "sim_world.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SIMRUN_PLAYERS_MAX 100000u
#define SIMRUN_DURATION_MAX (24LL * 3600 * RT_NS_PER_S)
#define SIMRUN_PORT 8080 /* a cluster's instance i listens on 8080 + i */
#define SIMRUN_REDIS_PORT 6379
#define SIMRUN_INSTANCES_MAX 8u
#define SIMRUN_FAILURE_MAX 512u
#define SIMRUN_FAULTS_TEXT_MAX 256u
#define SIMRUN_MIX_TEXT_MAX 256u

/* ---- Faults ---------------------------------------------------------------
 *
 * The --faults grammar (simrun_faults_parse):
 *   SPEC  := "none" | ITEM ("," ITEM)*
 *   ITEM  := KEY "=" VALUE, each KEY at most once
 *   slow=P     fraction of players whose downlink is capped (300-3000 B/s)
 *   stall=P    per player and minute connected: the chance it stops reading
 *              for a window of 1 s to twice the write wait
 *   reset=P    per player and minute connected: the chance its connection
 *              is reset mid-frame (within the next 1-3000 bytes down)
 *   churn=P    per player and minute connected: the chance its connection
 *              drops (closed or reset at once); the player reconnects
 *   store=P    the chance each Store operation fails (BUSY, FULL, IOERR)
 *   latency=D  one-way delay of every link (default 5ms)
 *   jitter=D   plus a uniform draw in [0, D] per segment (default 0)
 *   until=T    the fault phase ends at virtual time T (default: at the
 *              end of the active phase, duration); a T past duration
 *              ends it at duration
 * And for a cluster (instances >= 2), per instance and minute of the fault
 * phase:
 *   crash=P    the chance it crashes (every actor and connection of it
 *              gone at once) and restarts 1-5 s later under a new id
 *   pause=P    the chance it stops taking turns for long enough to lose
 *              its lease (the lease plus 0.1-2 s), then wakes up
 *   redis=P    the chance Redis restarts (per minute, not per instance),
 *              down 0.1-3 s; half the restarts lose the data
 *   partition=P  the chance it is cut off from Redis for 0.5-6 s
 *   rlatency=D   one-way delay of every link to Redis (default 0)
 *   rjitter=D    plus a uniform draw in [0, D] per segment (default 0)
 * P is a decimal in [0, 1]; D a decimal with a unit ns, us, ms or s (0
 * needs none), at most 10 s; T likewise, at most 24 h. Faults apply during
 * [0, until).
 */
typedef struct simrun_faults {
  double slow, stall, reset, churn, store;
  rt_time_ns latency, jitter;
  rt_time_ns until; /* the end of the fault phase; 0: duration */
  /* A cluster's (instances >= 2; the grammar's keys below). */
  double crash, pause, redis, partition;
  rt_time_ns rlatency, rjitter;
  /* Not in the grammar (tests): every Store operation fails in
   * [store_down_from, store_down_until). */
  rt_time_ns store_down_from, store_down_until;
} simrun_faults_t;

/* Defaults: no faults, latency 5 ms, no jitter. */
void simrun_faults_default(simrun_faults_t *f);
/* 0, or -1 with a message in why. */
int simrun_faults_parse(const char *spec, simrun_faults_t *out, char *why,
                        size_t cap);
/* The spec that parses back to f (the grammar's keys only). */
void simrun_faults_format(const simrun_faults_t *f, char *out, size_t cap);
/* Swarm mode: fault probabilities drawn from the seed itself, and the end
 * of the fault phase: about half the seeds get one in [duration/4,
 * duration), so play goes on fault-free before the end. */
void simrun_faults_draw(uint64_t seed, rt_time_ns duration,
                        simrun_faults_t *out);
/* Swarm mode: with *instances 0, about a third of seeds run a cluster of
 * 2 to 5 instances (the others leave it 0); with *instances given, it
 * stays. A cluster gets cluster faults drawn into f (its cluster keys; the
 * rest stays). Its own stream of the seed: the other draws stay what they
 * were. */
void simrun_cluster_draw(uint64_t seed, uint32_t *instances,
                         simrun_faults_t *f);

/* ---- Limits ---------------------------------------------------------------
 *
 * The player and queue limits the server runs with (overcookied-sim flags):
 * the game's (game_config_t), the server's (net_server_config_t) and the
 * simulated links' socket buffers. */
typedef struct simrun_limits {
  uint32_t players_max;     /* connected players (game): 1013 above */
  uint32_t queue_max;       /* waiting players (game) */
  uint32_t out_count_max;   /* a Client's outbound queue: messages */
  uint32_t out_bytes_max;   /* and bytes */
  uint32_t conn_high_water; /* frames go to the connection below this */
  uint32_t connections_max; /* open connections (server): 503 above */
  uint32_t mailbox_cap;     /* each connection actor's mailbox */
  uint32_t ws_message_max;  /* a WebSocket message in: 1009 above */
  uint32_t link_buffer;     /* each direction of each simulated link */
  uint32_t ws_park_ms;      /* a WebSocket quiet this long parks (server); 0: as
                               soon as nothing is in flight (the default) */
} simrun_limits_t;

#define SIMRUN_LIMITS_COUNT 10u
#define SIMRUN_LIMITS_TEXT_MAX 320u

/* The server's defaults (what tools/src/overcookied.c runs with). */
void simrun_limits_default(simrun_limits_t *l);
/* Swarm mode: about a third of seeds run with tight limits (small
 * outbound queues, high-water marks and link buffers), where a stalled
 * reader overflows its queue with never-dropped messages; and about a
 * third park WebSockets after 1 to 50 ms of quiet (net_ws_park) instead of
 * at once, so that the server's timed parking runs all through play too. */
void simrun_limits_draw(uint64_t seed, simrun_limits_t *out);
/* Limit i (0 .. SIMRUN_LIMITS_COUNT-1): its flag name ("players-max"),
 * a pointer to its field, its smallest and largest values. */
const char *simrun_limit_name(uint32_t i);
uint32_t *simrun_limit_field(simrun_limits_t *l, uint32_t i);
void simrun_limit_range(uint32_t i, uint32_t *min, uint32_t *max);
/* The flags that differ from the defaults (" --out-count-max 4 ..."), or
 * "" when none does. */
void simrun_limits_format(const simrun_limits_t *l, char *out, size_t cap);

/* ---- Players ------------------------------------------------------------- */

typedef enum simrun_kind {
  SIMRUN_CLICKER = 0, /* clicks at a human rate, with bursts */
  SIMRUN_HUNTER,      /* also claims golden cookies after a reaction time */
  SIMRUN_QUITTER,     /* sometimes sends QUIT_GAME mid-game */
  SIMRUN_RESUMER,     /* drops mid-game, comes back (mostly within grace) */
  SIMRUN_LEAVER,      /* joins and leaves the queue before being matched */
  SIMRUN_ABUSER,      /* floods, bad JSON, unknown types, oversize frames */
  SIMRUN_TWIN,        /* opens a second connection: the first is replaced */
  SIMRUN_KIND_COUNT_
} simrun_kind_t;

/* The workload mix: the share of each kind, drawn from the seed. */
typedef struct simrun_mix {
  double share[SIMRUN_KIND_COUNT_]; /* sums to 1 */
} simrun_mix_t;

void simrun_mix_draw(uint64_t seed, simrun_mix_t *out);
void simrun_mix_format(const simrun_mix_t *m, char *out, size_t cap);

typedef struct simrun_player {
  simrun_kind_t kind;
  rt_time_ns arrive_at;
  sim_link_config_t up, down; /* every connection of the player */
  double click_rate; /* mean clicks per second while playing; 0: none */
  double burst_p;    /* chance a click is a burst of 2..burst_max */
  uint32_t burst_max;
  rt_time_ns reaction;  /* golden cookie claim delay; 0: ignores them */
  uint32_t games_max;   /* games before leaving; 0: until the end */
  bool manual;          /* a test drives its bot: the brain only watches */
  bool keep_records;    /* leave the bot's records for the test to read */
  bool no_faults;       /* no random fault (stall, reset, churn) nor edge
                           action */
  uint32_t instance; /* a cluster's instance it connects to first */
  uint32_t records_max; /* with keep_records; 0: SIM_BOT_RECORDS_DEFAULT */
} simrun_player_t;

/* ---- A run --------------------------------------------------------------- */

typedef struct simrun_config {
  uint64_t seed;
  uint32_t players;    /* players drawn by simrun_populate */
  rt_time_ns duration; /* the active phase */
  simrun_faults_t faults;
  game_config_t game; /* the rules (game_config_defaults, then edits);
                         simrun_limits_apply sets its limits */
  /* The server's and links' limits (simrun_limits_t); 0: defaults. */
  uint32_t connections_max, mailbox_cap, ws_message_max, link_buffer;
  rt_time_ns ws_park_after; /* 0: the server's default (at once) */
  /* A cluster: this many instances (2 .. SIMRUN_INSTANCES_MAX) sharing a
   * simulated Redis (sim_redis.h) and one Store; 0 or 1: one process, as
   * ever, with no Redis. */
  uint32_t instances;
  rt_time_ns lease; /* a cluster's lease; 0: game_cluster's default */
  rt_time_ns check_every;   /* invariant checks; 0: 100 ms */
  /* And whenever this many deliveries passed since the last check; 0:
   * SIMRUN_CHECK_DELIVERIES. */
  uint64_t check_deliveries;
  rt_time_ns slice; /* how often brains look; 0: 2 ms */
  /* Tests: every bot keeps every record, even of the kinds a brain does
   * nothing with (SIMRUN_UNKEPT_KINDS); the run must be the same. */
  bool keep_all_records;
  /* Tests of the determinism check: from this virtual time on (0: never),
   * brain slices are 1 ns longer, so the run parts from an unnudged one
   * there. */
  rt_time_ns nudge_at;
  int log_level;      /* RT_LOG_*; default 0 = debug: set OFF to quiet */
  rt_trace_fn *trace; /* delivery trace (determinism checks); NULL: off */
  void *trace_ctx;
  /* Log sink; NULL: stderr (sim_config_t.log_write). */
  void (*log_write)(void *ctx, const char *line, size_t len);
  void *log_ctx;
} simrun_config_t;

#define SIMRUN_CHECK_DELIVERIES 20000u

/* Defaults: PROTOCOL.md's rules, 40 players, 120 s, no faults, quiet. */
void simrun_config_default(simrun_config_t *cfg);
/* Put the limits into a config (game rules and server). */
void simrun_limits_apply(const simrun_limits_t *l, simrun_config_t *cfg);

typedef enum simrun_cov {
  SIMRUN_COV_DROP_BACKPRESSURE = 0, /* a droppable frame dropped */
  SIMRUN_COV_DISCONNECT_SLOW,       /* a client cut for slowness (1008) */
  SIMRUN_COV_RESUME,                /* a player resumed within the grace */
  SIMRUN_COV_REPLACED,              /* a connection replaced (4000) */
  SIMRUN_COV_GOLDEN_RACE,           /* both players claimed one cookie */
  SIMRUN_COV_STORE_RETRY,           /* the Store retried after an error */
  SIMRUN_COV_MUST_OVERFLOW,         /* a never-dropped frame did not fit:
                                       the client cut with 1008 */
  SIMRUN_COV_PARKED,                /* a quiet WebSocket was parked */
  SIMRUN_COV_FLOOD,                 /* a flooding client cut (1008) */
  /* A cluster's; a run of one instance reaches none of them. */
  SIMRUN_COV_CROSS_MATCH,    /* two players on two instances matched */
  SIMRUN_COV_MOVE_FOLLOWED,  /* a MOVE followed to a resumed GAME_START */
  SIMRUN_COV_OWNER_CRASH,    /* an instance crashed with a game running */
  SIMRUN_COV_STALE_FENCED,   /* a paused owner woke up fenced */
  SIMRUN_COV_REDIS_RECOVERED, /* a Cluster joined again after a restart */
  SIMRUN_COV_TICKET_PURGED,  /* a dead instance's ticket purged */
  SIMRUN_COV_SENT_ON,        /* a reconnect to a non-owner sent on (MOVE) */
  SIMRUN_COV_COUNT_
} simrun_cov_t;

/* The points a run of one process can reach: those before the cluster's. */
#define SIMRUN_COV_ONE_PROCESS_COUNT_ SIMRUN_COV_CROSS_MATCH

const char *simrun_cov_name(simrun_cov_t c);

/* Bot-side ERROR codes counted. */
enum {
  SIMRUN_ERR_BAD_JSON = 0,
  SIMRUN_ERR_UNKNOWN_TYPE,
  SIMRUN_ERR_NOT_IN_GAME,
  SIMRUN_ERR_RATE_LIMITED,
  SIMRUN_ERR_OTHER,
  SIMRUN_ERR_COUNT_
};

typedef struct simrun_summary {
  uint64_t seed;
  uint32_t players;
  uint32_t players_refused; /* login or upgrade refused */
  uint64_t games_started;
  uint64_t games_finished[GAME_END_REASON_COUNT_];
  uint64_t games_stored;
  uint64_t game_overs_seen; /* GAME_OVERs the players received */
  uint64_t clicks_sent;     /* CLICK frames the players sent */
  uint64_t clicks_scored, clicks_countdown, clicks_rate_limited;
  uint64_t cookie_clicks, golden_spawns, golden_claims, golden_contested;
  uint64_t frames_sent;     /* by players */
  /* Records the players' bots made: a kept one counts once its brain
   * reads it, a message counted and not kept (the kinds
   * SIMRUN_UNKEPT_KINDS, simrun_int.h) as it arrives; the same at a run's
   * end. */
  uint64_t frames_received;
  uint64_t frames_unkept; /* of those, counted and not kept */
  uint64_t ws_messages_in, ws_messages_out;
  uint64_t http_requests;
  uint64_t errors_seen[SIMRUN_ERR_COUNT_];
  uint64_t out_dropped, out_tick_replaced;
  uint64_t mailbox[RT_MB_REASON_COUNT_];
  uint64_t dead_letters, dropped_at_stop;
  uint64_t kicks[GAME_KICK_REASON_COUNT_];
  uint64_t closes[NET_CLOSE_REASON_COUNT_];
  uint64_t close_codes[16]; /* by net_server_close_code_index */
  uint64_t store_recorded, store_duplicates, store_retries, store_errors;
  uint64_t store_reads_failed;
  uint64_t faults_injected[5]; /* slow links, stalls, resets armed, churn
                                  drops, store errors */
  uint64_t resumed, reconnects, departures;
  uint64_t edges;             /* actions timed at an exact instant */
  uint64_t reads;             /* GET /api/history or /api/leaderboard */
  uint64_t reads_unavailable; /* answered 503: the Store failed */
  uint64_t cov[SIMRUN_COV_COUNT_];
  /* A cluster's: instances, faults, what the Clusters counted. */
  uint32_t instances;
  uint64_t crashes, pauses, redis_restarts, partitions;
  uint64_t moves_seen, matches_cross, fenced, tickets_purged, server_lost;
  uint64_t claims_stored;   /* games a dead owner claimed, stored for it */
  uint64_t matches_checked; /* (C7) matches whose leases were checked */
  uint64_t redis_digest; /* the model's data at the end (in hash) */
  /* Games a crash took whose record Redis lost (a restart without data),
   * before or after the crash, before anyone stored them: known nowhere,
   * so never stored. */
  uint64_t rooms_forgotten;
  uint64_t checks;               /* invariant checks run */
  uint64_t checks_by_deliveries; /* of which after check_deliveries */
  uint64_t recovery_rooms;       /* rooms running at the fault end (R1) */
  uint64_t recovery_players;     /* players departed by then (R2) */
  uint64_t rooms_lost;           /* rooms stopped unfinished: always 0 when
                                    the run passed (game_check fails on one) */
  rt_time_ns fault_end;          /* F, virtual */
  uint64_t deliveries;
  uint64_t actors_spawned;
  rt_time_ns end_time; /* virtual */
  uint64_t hash;       /* rt_world_hash at the end */
  bool passed;
  rt_time_ns failed_at;
  char failure[SIMRUN_FAILURE_MAX]; /* the first violation, or "" */
} simrun_summary_t;

typedef struct simrun simrun_t;

/* cfg is copied. Builds the world, the game and the server. */
int simrun_create(const simrun_config_t *cfg, simrun_t **out);
/* Frees everything, bots included. */
void simrun_destroy(simrun_t *run);

/* Add cfg.players players drawn from the seed and the mix. */
int simrun_populate(simrun_t *run, const simrun_mix_t *mix);
/* Add one player; *index_out is its number (0, 1, ...). */
int simrun_add_player(simrun_t *run, const simrun_player_t *p,
                      uint32_t *index_out);

/* Run until virtual time t, checking as it goes. 0, or -1 after the first
 * violation (then the run is over: see simrun_summary). */
int simrun_run_to(simrun_t *run, rt_time_ns t);
/* The rest: to the end of the active phase, wind down, the liveness checks
 * at L1 and L2 and the final checks. 0 when every check passed. */
int simrun_finish(simrun_t *run);
/* Check now (also done by simrun_run_to): 0 or -1. */
int simrun_check(simrun_t *run);

void simrun_summary(const simrun_t *run, simrun_summary_t *out);

/* A whole run: create it, add cfg.players players drawn from mix, finish,
 * summarize into out and destroy it. With record_dir, the run is also
 * written there as a trace (sim_trace.h) whose header holds record_args,
 * the program's flags one per line (cfg->trace must then be NULL). 0 when
 * every check passed; else -1 with out->failure saying why: a check, or
 * that the run could not start, add its players or record. */
int simrun_run_once(const simrun_config_t *cfg, const simrun_mix_t *mix,
                    const char *record_dir, const char *record_args,
                    simrun_summary_t *out);
/* The first violation, or NULL. */
const char *simrun_failure(const simrun_t *run);

/* ---- For tests ----------------------------------------------------------- */

sim_world_t *simrun_world(simrun_t *run);
game_t *simrun_game(simrun_t *run);
net_server_t *simrun_server(simrun_t *run);
/* The player's current bot (NULL before it arrives or after it departed). */
sim_bot_t *simrun_bot(simrun_t *run, uint32_t player);
rt_time_ns simrun_l1(const simrun_t *run); /* the liveness deadlines */
rt_time_ns simrun_l2(const simrun_t *run);
rt_time_ns simrun_fault_end(const simrun_t *run); /* F */
rt_time_ns simrun_r1(const simrun_t *run);        /* the recovery deadlines */
rt_time_ns simrun_r2(const simrun_t *run);

/* A cluster's faults, on demand (tests; the runs draw theirs from
 * --faults): crash instance i now (it restarts after `down`), pause it for
 * `pause`, cut it off Redis for `cut`, restart Redis after `down` with or
 * without its data. 0, or RT_EINVAL (no such instance, not a cluster, or
 * the instance is down already; a crash also once a run has had
 * SIMRUN_RETIRED_MAX of them, whose counters it keeps). */
int simrun_instance_crash(simrun_t *run, uint32_t i, rt_time_ns down);
int simrun_instance_pause(simrun_t *run, uint32_t i, rt_time_ns pause);
int simrun_instance_partition(simrun_t *run, uint32_t i, rt_time_ns cut);
int simrun_redis_restart(simrun_t *run, rt_time_ns down, bool keep_data);
/* One command run on the Redis model now, as a client nobody checks
 * would (a test that breaks what Redis holds behind the Clusters' backs,
 * to see the invariants catch it). 0 when the model answered with
 * anything but an error; RT_EINVAL when not a cluster or it did not. */
int simrun_redis_tamper(simrun_t *run, int argc, const char *const *argv);
/* Instance i's game and its HTTP/WebSocket server (NULL while it is
 * down), and its current id. */
game_t *simrun_instance_game(simrun_t *run, uint32_t i);
net_server_t *simrun_instance_server(simrun_t *run, uint32_t i);
const char *simrun_instance_id(const simrun_t *run, uint32_t i);

typedef struct simrun_player_view {
  uint32_t games_started; /* GAME_STARTs (not resumed) */
  uint32_t games_over;    /* GAME_OVERs */
  uint32_t connections;   /* WebSocket connections opened */
  uint64_t clicks_sent;
  bool departed;
  char user_id[RT_SUBJECT_MAX];
  char room_id[32];           /* the latest game's */
  sim_bot_record_t last_over; /* valid when games_over > 0 */
} simrun_player_view_t;

void simrun_player_view(const simrun_t *run, uint32_t player,
                        simrun_player_view_t *out);

#endif
