/* simrun_int.h: internals shared by the runner's files (sim/simrun*.c).
 *
 * The run (simrun.c) owns the world, the game and the server and drives
 * time in slices. Between slices every player due to act (simrun_players.c)
 * reads what its bots received (simrun_records.c) and acts
 * (simrun_actions.c), with faults on top (simrun_faults.c); the checks
 * (simrun_checks.c) and the summary (simrun_report.c) read the same state.
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
 *      brought, clicks per slice by CLICK_EVENTS_PER_SLICE
 *      (simrun_actions.c), the world by TURNS_PER_SLICE_MAX turns per
 *      slice (simrun.c), time by the phases.
 *  (3) Random draws come from per-player streams of the seed, in player
 *      order, so adding a player never shifts another's draws.
 */
#ifndef SIMRUN_INT_H
#define SIMRUN_INT_H

#include "server.h"
#include "sim_redis.h"
#include "simrun.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Short names, for the runner's files only. */
#define MS RT_NS_PER_MS
#define SEC RT_NS_PER_S
#define NEVER RT_TIME_NEVER

#define SIMRUN_BOTS_PER_PLAYER 2u
/* The messages a player's brain does nothing with (on_record in
 * simrun_records.c counts them and returns): unless its plan keeps its
 * records for a test, its bots count them rather than keep them, and no
 * record of theirs makes the brain look (a look with nothing due does
 * nothing, so the run is the same). */
#define SIMRUN_UNKEPT_KINDS                                                    \
  ((1u << SIM_BOT_UPDATE_TICK) | (1u << SIM_BOT_UPDATE_CLICK) |                \
   (1u << SIM_BOT_OPPONENT_CLICK))

/* RNG stream keys, each in the band of its subsystem (rt_rng.h). */
#define KEY_MIX RT_RNG_KEY(RT_RNG_SUB_TEST, 1)
#define KEY_SWARM_FAULTS RT_RNG_KEY(RT_RNG_SUB_SIM_FAULT, 1)
#define KEY_STORE_FAULTS RT_RNG_KEY(RT_RNG_SUB_SIM_FAULT, 2)
#define KEY_LIMITS RT_RNG_KEY(RT_RNG_SUB_SIM_FAULT, 3)
#define KEY_CLUSTER_DRAW RT_RNG_KEY(RT_RNG_SUB_SIM_FAULT, 5)
#define KEY_PLAN(i) RT_RNG_KEY(RT_RNG_SUB_TEST, 0x100000ull + (i))
#define KEY_BRAIN(i) RT_RNG_KEY(RT_RNG_SUB_TEST, 0x200000000ull + (i))
#define KEY_FAULTS(i) RT_RNG_KEY(RT_RNG_SUB_SIM_FAULT, 0x100000ull + (i))

/* ---- State --------------------------------------------------------------- */

/* The brain's state (the diagram above). */
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
} brain_state_t;

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

/* One of a player's bots: its connection (and its reconnects), with what
 * the player read of its records. */
typedef struct pbot {
  sim_bot_t *bot;
  bool retired;  /* replaced by a newer connection: its end is expected */
  bool dead;     /* to destroy after this slice's records */
  char room[32]; /* the latest GAME_START on connection room_conn */
  uint32_t room_conn;
  bool awaiting_over; /* that GAME_START, and no GAME_OVER or close since */
  uint32_t seen;      /* records read (kept ones: plan.keep_records) */
} pbot_t;

/* What a player believes it saw: its games and their scores, room ids and
 * GAME_OVERs as its bots received them, and what it did in them. */
typedef struct player_belief {
  char user_id[RT_SUBJECT_MAX];
  char opponent[RT_SUBJECT_MAX];
  /* The game the player believes it is in. */
  bool in_game;
  char room[32];
  char last_over_room[32];
  rt_time_ns t_run, t_end;
  uint64_t clicks_game;
  bool clicks_tracked; /* clicks_game covers the whole of this game */
  /* The golden cookie seen last, and the one this player clicked last. */
  bool spawn_open;
  double spawn_x, spawn_y;
  char target_room[32];
  double target_x, target_y;
  bool target_set;
  /* A history read after a game: it must show that game as it ended. */
  bool read_pending;
  char read_room[32];
  sim_bot_record_t read_over;
  /* What the player saw, for views and summaries. */
  uint32_t games_started, games_over, connections;
  uint64_t clicks_sent;
  sim_bot_record_t last_over;
} player_belief_t;

/* When a player acts next (NEVER: nothing planned). */
typedef struct player_schedule {
  rt_time_ns next_join, leave_at, next_click, click_end, cookie_at, quit_at,
      away_at, twin_at, abuse_at, reconnect_at, resume_deadline;
  rt_time_ns stall_at, stall_end, reset_at, churn_at;
  rt_time_ns away_for; /* how long a resumer stays away */
  rt_time_ns edge_at;  /* an edge_t action, exactly then */
  uint8_t edge_kind;
  rt_time_ns wake_at; /* the earliest of the above: nothing to do before,
                         unless a record arrives */
} player_schedule_t;

/* A player: what it plans (simrun_player_t: its kind, rates, arrival and
 * links), what it believes it saw, when it acts next, and the state of its
 * brain and connections. */
typedef struct player {
  simrun_player_t plan;
  player_belief_t belief;
  player_schedule_t sched;
  uint32_t index;
  char name[16];
  rt_rng_t rng;                        /* behaviour */
  rt_rng_t frng;                       /* faults */
  pbot_t bots[SIMRUN_BOTS_PER_PLAYER]; /* Invariant (1) */
  uint32_t cur;                        /* the current bot's slot */
  brain_state_t state;
  bool registered; /* in the user id map */
  bool use_seq;    /* numbers its clicks (drawn once) */
  int64_t seq_next;
  bool stalled, reset_armed, departing;
  uint32_t refusals;
  uint16_t port;      /* the instance its next connection goes to */
  uint32_t moves_row; /* MOVEs followed in a row (PROTOCOL.md: at most 3) */
  bool moved;         /* its connection follows a MOVE */
} player_t;

/* One instance of the server: a server_start in node `node` of the world,
 * listening on `port`. One process is inst[0] in node 0 with no Redis; a
 * cluster's instance i is in node i + 1. A crash stops the node and keeps
 * the dead server (its counters) among the run's retired ones. */
typedef struct simrun_inst {
  server_t server;
  uint16_t port;
  uint32_t node;
  uint32_t generation; /* restarts so far */
  bool up;             /* not crashed (a paused one is up) */
  bool paused;
  rt_time_ns pause_end, restart_at, partition_end;
  uint32_t baseline; /* actors server_start left running */
  char id[24];       /* "i<n>", then "i<n>.<generation>" */
  /* Faults: per instance, from the run's cluster fault stream. */
  rt_time_ns crash_at, pause_at, partition_at;
} simrun_inst_t;

#define SIMRUN_RETIRED_MAX 256u /* crashed incarnations kept for counts */
#define SIMRUN_LOST_ROOMS_MAX 4096u /* rooms crashes took, checked at L1 */
/* (C7) incarnations whose renewals the checker has seen; a run that meets
 * more fails, saying so (a 120 s run with every fault meets a few dozen). */
#define SIMRUN_EPOCHS_MAX 1024u
#define SIMRUN_EPOCH_MAX 72u /* GAME_CLUSTER_ID_MAX + "/<8 hex>", NUL */
/* (C3) A room a crash took, not stored then, and the row L1 must find:
 * the result its owner had claimed (end:R "done"); server_lost for a game
 * still running; either for one that had ended with its claim not yet
 * run (it may reach Redis after the crash, sent before it). */
typedef struct simrun_lost_room {
  char room[32];
  bool ended;           /* the room had its result */
  bool claimed;         /* and Redis held its claim */
  game_result_t result; /* when ended: the owner's */
} simrun_lost_room_t;
typedef struct simrun_epoch {
  char e[SIMRUN_EPOCH_MAX];
  size_t len;       /* of e */
  int64_t lapse_ms; /* Redis time (ms) the lease key lives through */
} simrun_epoch_t;
/* (C1) a seated player's id (borrowed from its Manager for one pass). */
typedef struct simrun_seat {
  uint64_t hash;
  const char *id; /* NULL: an empty slot */
  uint32_t inst;
} simrun_seat_t;
#define SIMRUN_SECRET "overcookied-sim-secret-0123456789abcdef"

struct simrun {
  simrun_config_t cfg;
  sim_world_t *sw;
  rt_world_t *w;
  net_ws_pool_t *ws_pool; /* the bots' parked WebSocket contexts */
  simrun_inst_t inst[SIMRUN_INSTANCES_MAX];
  uint32_t inst_len; /* 1 for one process */
  bool cluster;      /* inst_len >= 2: Redis and shared Store */
  server_t *retired; /* crashed incarnations, freed at the end */
  uint32_t retired_len;
  struct sim_redis *redis;      /* the model; NULL for one process */
  game_store_t *reader;         /* the runner's Store handle (cluster) */
  char db_uri[64];              /* the shared in-memory database */
  rt_rng_t cluster_rng;         /* cluster faults, in instance order */
  rt_time_ns redis_at, redis_back; /* the next Redis restart; its end */
  bool redis_keep;
  bool redis_recovering; /* back, and some Cluster not joined yet */
  uint32_t redis_flushes; /* restarts that lost the data */
  bool armed;            /* cluster faults drawn */
  uint32_t starting;     /* the instance server_start is building */
  struct redisReader *resp; /* decodes the model's replies for checks */
  simrun_epoch_t *epochs;   /* (C7), in first-renewal order */
  /* (C1): the seats of one pass, open addressing (at most half full). */
  struct simrun_seat *c1_set;
  uint32_t c1_mask, c1_len;
  uint32_t epochs_len;
  simrun_lost_room_t *lost_rooms; /* (C3) SIMRUN_LOST_ROOMS_MAX */
  uint32_t lost_rooms_len;
  /* (C3) rooms running when Redis came back without its data: the Redis
   * record of each is gone, and its owner alone knows it until its next
   * renew tells it (game_cluster.h, (4)). */
  char (*flushed_rooms)[32];
  uint32_t flushed_rooms_len;
  game_t *game;      /* inst[0]'s, or the reader's in a cluster */
  net_server_t *srv; /* inst[0]'s */
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
   * news has nothing to do; these find such a player without touching
   * it. */
  rt_time_ns *wake, *edge;
  uint8_t *news;
  /* And over all of them, so that most slices need no look at all: the
   * earliest wake as of the last look (0 when one was changed since, so
   * the next look is whole), and whether any news came since it began. */
  rt_time_ns wake_min;
  bool news_any;
  /* user id -> player index + 1, open addressing (lookups only). */
  uint32_t *ids;
  uint32_t ids_mask;
  uint32_t baseline_actors;
  /* Every check_every of virtual time the run stops (a slice ends there, and
   * the brains look: part of what a run is, whether or not a check runs);
   * a check by time runs once check_every has passed since the last check
   * of any kind, at `last_check`. */
  rt_time_ns next_check;
  rt_time_ns last_check;
  bool failed;
  rt_time_ns failed_at;
  char failure[SIMRUN_FAILURE_MAX];
  rt_time_ns next_edge; /* the earliest edge_at: a slice ends there */
  simrun_summary_t sum; /* counters kept as the run goes */
};

/* ---- Shared steps (simrun__*: internal to the runner) -------------------- */

static inline rt_time_ns simrun__now(const simrun_t *run) {
  return rt_now(run->w);
}

/* The player's current bot, or NULL. */
static inline sim_bot_t *simrun__cur_bot(const player_t *p) {
  return p->bots[p->cur].bot;
}

static inline bool simrun__bot_open(const player_t *p) {
  sim_bot_t *b = simrun__cur_bot(p);
  return b != NULL && sim_bot_state(b) == SIM_BOT_OPEN;
}

static inline double simrun__uniform(rt_rng_t *rng, double lo, double hi) {
  return lo + (hi - lo) * rt_rng_double(rng);
}

static inline rt_time_ns simrun__uniform_ns(rt_rng_t *rng, rt_time_ns lo,
                                            rt_time_ns hi) {
  return hi <= lo ? lo : (rt_time_ns)rt_rng_range(rng, lo, hi);
}

/* simrun.c: the run's first violation (later ones are ignored). */
void simrun__fail(simrun_t *run, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* simrun_faults.c */
/* The Store's fault hook (game_store_config_t.fault, ctx the run):
 * SQLITE_OK, or an error while the Store is held down or, before F, with
 * the probability store=. */
int simrun__store_fault(void *ctx, game_store_op_t op);
/* Random faults may hit p now (not manual, not no_faults, before F). */
bool simrun__faulty(const simrun_t *run, const player_t *p);
/* Schedule p's next stall, reset and churn from now. */
void simrun__faults_arm(simrun_t *run, player_t *p, rt_time_ns now);
void simrun__lift_stall(player_t *p);
/* The faults due on a connected player (the fault phase only). */
void simrun__act_faults(simrun_t *run, player_t *p, rt_time_ns now);

/* simrun_players.c */
/* Room in the user id map for this many players. 0 or RT_ENOMEM. */
int simrun__ids_grow(simrun_t *run, uint32_t players);
void simrun__ids_put(simrun_t *run, player_t *p);
player_t *simrun__ids_find(const simrun_t *run, const char *id);
/* A new bot in p's slot; token and user_id NULL: it logs in first. */
int simrun__spawn_bot(simrun_t *run, player_t *p, uint32_t slot,
                      const char *token, const char *user_id);
void simrun__destroy_bot(simrun_t *run, pbot_t *pb);
void simrun__gone(simrun_t *run, player_t *p);
/* Away, back in back_in (a reconnect). */
void simrun__go_away(simrun_t *run, player_t *p, rt_time_ns back_in);
void simrun__depart(simrun_t *run, player_t *p);
/* Every player due to act, or with news from its bots, looks and acts. */
void simrun__brains(simrun_t *run);

/* simrun_records.c */
void simrun__read_records(simrun_t *run, player_t *p);
/* The answer to a history or leaderboard read, once it came. */
void simrun__poll_read(simrun_t *run, player_t *p);

/* simrun_actions.c */
void simrun__act(simrun_t *run, player_t *p, rt_time_ns now);

/* simrun_cluster.c */
/* Start the run's instances (one process, or a cluster with its Redis
 * model and shared Store). 0, or a negative RT_E*. */
int simrun__instances_start(simrun_t *run);
void simrun__instances_free(simrun_t *run);
/* Cluster faults due by now (between slices), and their ends. */
void simrun__cluster_faults(simrun_t *run, rt_time_ns now);
/* The fault phase ended: every paused node wakes, partitions heal, Redis
 * and crashed instances come back. */
void simrun__cluster_faults_end(simrun_t *run);
/* The earliest cluster fault event after now (a slice ends there). */
rt_time_ns simrun__cluster_next(const simrun_t *run);
/* The cluster's own invariants (simrun.h), with the world between turns. */
int simrun__cluster_check(simrun_t *run);
/* (C6): the game was claimed by its owner (or cannot be known). */
bool simrun__end_claimed(simrun_t *run, const char *room);
/* (C3), at L1. */
void simrun__check_lost_rooms(simrun_t *run);
/* The cluster's counters and coverage into a summary. */
void simrun__cluster_counts(const simrun_t *run, simrun_summary_t *out);
/* Between slices: whether a Redis restart is recovered. */
void simrun__cluster_watch(simrun_t *run);
/* The Store every instance shares (the reader in a cluster). */
const game_store_t *simrun__store(const simrun_t *run);
/* A MOVE's url to the port of its instance; 0 when it names none. */
uint16_t simrun__move_port(const simrun_t *run, const char *url);
/* The port a player (re)connects to: its instance, or in a cluster any
 * instance drawn at random (players wander, as behind a balancer). */
uint16_t simrun__pick_port(simrun_t *run, player_t *p);

/* simrun_checks.c */
void simrun__check_game_over(simrun_t *run, player_t *p, pbot_t *pb,
                             const sim_bot_record_t *r);
void simrun__check_history(simrun_t *run, player_t *p, const char *body,
                           size_t len);
void simrun__check_r1(simrun_t *run);
void simrun__check_r2(simrun_t *run);
void simrun__check_l1(simrun_t *run);
void simrun__check_l2(simrun_t *run);

#endif
