/* game_store.h: leaderboard and history, in SQLite or PostgreSQL, as an
 * actor.
 *
 * Guarantees:
 *  (1) A result is acknowledged (GAME_TAG_STORE_RECORDED) only after its
 *      transaction committed, so the Room sends GAME_OVER only for results
 *      that are stored: a result a player saw is never lost (with SQLite's
 *      GAME_STORE_SYNC_FULL, not even in a power cut).
 *  (2) Each game is stored exactly once: its room id is unique, a retried
 *      insert is ignored, and totals change only with the insert.
 *  (3) Only `time` games add to leaderboard totals; quit and disconnect
 *      games are history only. A draw is a win for neither player.
 *  (4) Storage errors (busy, full, I/O, the database away) are retried with
 *      exponential backoff from a timer, in order, without blocking anyone:
 *      Rooms wait for their acknowledgement as a message, and reads fail
 *      fast with 503 while the database is away.
 * Results that wait together commit together: one transaction (and one
 * round trip to PostgreSQL) for up to GAME_STORE_GROUP_MAX games.
 *
 * The event loop never waits for PostgreSQL: libpq's connection is
 * non-blocking and its socket is watched through a port (rt_port.h). SQLite
 * is embedded and runs inside the Store's turn. Either way the Store calls
 * its database only inside externals (rt_tap.h): a live trace replays
 * without a database, and the simulator uses SQLite in memory, whose
 * results a fault hook can replace with errors.
 *
 * The schema is created and migrated at start: SQLite's PRAGMA user_version,
 * PostgreSQL's table overcookied_schema, under an advisory lock so that
 * instances starting together migrate once.
 */
#ifndef GAME_STORE_H
#define GAME_STORE_H

#include "rt_service.h"
#include "rt_world.h"

#include <stdbool.h>
#include <stdint.h>

#define GAME_STORE_PENDING_MAX 4096u
#define GAME_STORE_READS_MAX 256u /* reads waiting; more answer 503 */
#define GAME_STORE_GROUP_MAX 256u /* games in one transaction */
#define GAME_STORE_SCHEMA_VERSION 1
/* Commit latency buckets of /metrics, upper bounds in ms (and +Inf). */
#define GAME_STORE_LATENCY_BUCKETS 12

typedef enum game_store_op {
  GAME_STORE_OP_RECORD = 1, /* the transaction recording one game */
  GAME_STORE_OP_LEADERBOARD,
  GAME_STORE_OP_HISTORY,
} game_store_op_t;

/* Return SQLITE_OK to let an operation run, or an SQLite error code
 * (SQLITE_BUSY, SQLITE_FULL, SQLITE_IOERR) to fail it as if SQLite had. */
typedef int game_store_fault_fn(void *ctx, game_store_op_t op);

/* SQLite's durability (PRAGMA synchronous in WAL mode):
 *  FULL   (the default) the WAL is synced before a commit returns, so every
 *         acknowledged result survives a power cut;
 *  NORMAL the WAL is synced only at checkpoints: a process crash loses
 *         nothing, a power cut may lose the last acknowledged results. */
typedef enum game_store_sync {
  GAME_STORE_SYNC_FULL = 0,
  GAME_STORE_SYNC_NORMAL = 1,
} game_store_sync_t;

typedef struct game_store_config {
  /* A SQLite file, ":memory:", or a PostgreSQL URI (postgres:// or
   * postgresql://, libpq's rules; a password may come from PGPASSWORD or
   * ~/.pgpass and is never logged). */
  const char *path;
  game_store_sync_t sync;     /* SQLite only */
  const char *vfs;            /* SQLite VFS name (tests); NULL: the default */
  game_store_fault_fn *fault; /* NULL: none */
  void *fault_ctx;
  rt_time_ns retry_min; /* 0: 10 ms */
  rt_time_ns retry_max; /* 0: 2 s */
  /* A request in flight longer than this drops the connection and is
   * retried (PostgreSQL). 0: 10 s */
  rt_time_ns op_timeout;
  /* The backend's name in stats and /metrics; NULL: its own. A replay,
   * whose store answers from the recording, names the recorded one. */
  const char *label;
} game_store_config_t;

/* What logs and errors may say of path: a SQLite path as it is, a
 * PostgreSQL URI as its host, port, database and user (never its
 * password). Always NUL-ended. */
#define GAME_STORE_DESCRIBE_MAX 256u
void game_store_describe(const char *path, char *out, size_t cap);

/* Whether path names a PostgreSQL database. */
bool game_store_is_postgres(const char *path);

/* One finished game, as the Room saw it. Fixed-size strings, zero-filled,
 * so it travels as the bytes of a buffer and hashes the same every run. */
typedef struct game_result {
  char room_id[32];
  int64_t finished_at_s;
  char p1_id[RT_SUBJECT_MAX];
  char p1_name[RT_NAME_MAX];
  char p2_id[RT_SUBJECT_MAX];
  char p2_name[RT_NAME_MAX];
  int32_t p1_score;
  int32_t p2_score;
  char winner[RT_SUBJECT_MAX]; /* a player id or "draw" */
  char reason[32];             /* time, quit, opponent_disconnected */
} game_result_t;

typedef struct game_store_stats {
  const char *backend;     /* "sqlite" or "postgres" */
  uint64_t recorded;       /* games committed */
  uint64_t duplicates;     /* records of an already stored game */
  uint64_t resends_merged; /* a record already waiting, asked again */
  uint64_t commits;        /* transactions that recorded games */
  uint64_t errors_busy;
  uint64_t errors_full;
  uint64_t errors_io;
  uint64_t errors_unavailable; /* no connection to the database */
  uint64_t errors_timeout;     /* a request in flight too long */
  uint64_t errors_other;
  uint64_t retries;
  uint64_t reconnects;    /* connections made again after a loss */
  uint64_t reads_failed;  /* leaderboard/history answered 503 */
  uint32_t pending;       /* results waiting to be committed */
  uint32_t reads_waiting; /* reads queued behind the request in flight */
  bool in_flight;         /* a request is with the backend */
  /* Commit latency, from a group's request to its commit, world time:
   * counts per bucket (not cumulative; the last is +Inf), their sum. */
  uint64_t latency_count[GAME_STORE_LATENCY_BUCKETS];
  uint64_t latency_sum_ns;
} game_store_stats_t;

/* The upper bound of latency bucket i in ms; the last is +Inf (0). */
double game_store_latency_bound_ms(int i);

typedef struct game_store game_store_t;

/* Open the database, migrate it and spawn the Store actor. */
int game_store_start(rt_world_t *w, const game_store_config_t *cfg,
                     game_store_t **out);
rt_actor_id_t game_store_actor(const game_store_t *st);
void game_store_get_stats(const game_store_t *st, game_store_stats_t *out);
/* Close the database; after the world's actors stopped. */
void game_store_free(game_store_t *st);

/* For checkers and tests, between turns (never from an actor), with no
 * fault injected: the stored game of `room_id`. 1 and *out when found, 0
 * when not, a negative error when the database fails. */
int game_store_find_game(const game_store_t *st, const char *room_id,
                         game_result_t *out);
/* The newest stored game seating player `id` (for a checker shown a
 * GAME_OVER of a game it never saw start): 1 and *out, 0, or an error. */
int game_store_latest_game_of(const game_store_t *st, const char *id,
                              game_result_t *out);
/* The number of stored games, or a negative error. */
int64_t game_store_count_games(const game_store_t *st);

/* Ask the Store (from an actor) to record a result (copied); the Store
 * answers the sender with GAME_TAG_STORE_RECORDED (payload: the u64 key)
 * once it is committed. */
int game_store_record(rt_world_t *w, const game_store_t *st,
                      const game_result_t *r, uint64_t key);

/* Deferred HTTP answers: the Store replies to call->reply_to with
 * RT_TAG_HTTP_REPLY. */
int game_store_query_leaderboard(rt_world_t *w, const game_store_t *st,
                                 const rt_http_call_t *call, uint32_t limit);
int game_store_query_history(rt_world_t *w, const game_store_t *st,
                             const rt_http_call_t *call, const char *subject,
                             uint32_t limit);

#endif
