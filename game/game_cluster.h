/* game_cluster.h: instances that share matchmaking through Redis.
 *
 * One process is one instance: single-threaded, deterministic, the same
 * actors as ever. Instances share matchmaking (one queue, one ticket per
 * player), know which instance owns which game (presence) and hold leases,
 * all in Redis, through one more actor, the Cluster. It reaches Redis over a
 * stream it opens through the world (rt_stream_connect) and speaks RESP with
 * hiredis's formatter and reader, so its traffic is recorded and replayed
 * like any connection, and a replay needs no Redis.
 *
 * What lives where (keys under "oc:"; each step is one Lua script, which
 * Redis runs atomically):
 *   lease:E     the incarnation E ("<instance id>/<8 hex>") is alive; its
 *               value is E's public URL; set every renew, expires after
 *               lease. E's incarnation never comes back: a restart, or a
 *               fenced instance rejoining, draws a new E.
 *   dead:E      someone acted on E's lease having lapsed (purged its tickets,
 *               ended its games server_lost): E is fenced and may not renew
 *   epochs      the incarnations to watch; every renew reaps the lapsed
 *   queue       the tickets, oldest first (a sorted set by arrival)
 *   ticket:P    P's ticket: its incarnation and name; tickets:E indexes them
 *   room:R      a room: owner incarnation, players, names, and once its
 *               owner claims the end, the result it stores; rooms:E
 *               lists E's rooms, so that whoever reaps E ends them, or
 *               stores the result E claimed but held no row of (below)
 *   presence:P  the room P plays in, for a reconnect anywhere
 *   end:R       "done" (the owner claimed the end: its result stands) or
 *               "lost" (its owner died): whoever sets it first decides,
 *               so a game ends once
 *   inbox:E     notes for E: a ticket of E's was matched elsewhere (MOVE its
 *               player), or taken by a JOIN on another instance
 *
 * Guarantees:
 *  (1) A pair is taken in one script: one ticket per player cluster-wide,
 *      never a player with himself, never a ticket whose incarnation's
 *      lease has lapsed (such a ticket is purged on the way).
 *  (2) A room's owner finishes it only after setting end:R to "done"; the
 *      instance that reaps a lapsed owner (every renew looks), or a
 *      reconnect that finds the owner's lease lapsed, sets it to "lost"
 *      first, marking the owner dead, and stores the game server_lost.
 *      So a game is stored with its owner's result or as server_lost,
 *      never both; a fenced owner (its renew finds dead:E) stores nothing
 *      and closes its players. The claim keeps the owner's result in
 *      Redis until the owner's Store holds the row (FINISHED): an owner
 *      that dies in between has its reaper store that result, the same
 *      row (the Store keeps a room's first), so no claimed game is lost.
 *  (3) While Redis is unreachable no ticket is taken (JOIN_QUEUE answers
 *      matchmaking_unavailable), rooms play on, and a room that ends waits
 *      to claim its end; Redis back, all resumes. Once the lease has lapsed
 *      by this instance's clock (counted from when its last accepted renew
 *      left), a player coming back to one of its games is closed 1013 (try
 *      again later), not taken back: another instance may have ended the
 *      game server_lost and told the player so. (Storing at once while
 *      the lease still held by the owner's clock raced a reaper whose
 *      server_lost could land first: the players saw a result the Store
 *      did not hold.)
 *  (4) Redis restarting without its data: an incarnation that was up and is
 *      no longer among the watched ones (and not dead) learns it at its
 *      next renew. Its games, known nowhere else now, end server_lost,
 *      stored by their rooms; its players stay connected and free; it joins
 *      again under a new incarnation. Games of an owner that had crashed
 *      and was not yet reaped are lost with the data (never stored).
 */
#ifndef GAME_CLUSTER_H
#define GAME_CLUSTER_H

#include "rt_world.h"

#include <stddef.h>
#include <stdint.h>

#define GAME_CLUSTER_ID_MAX 48u   /* an instance id, and its NUL */
#define GAME_CLUSTER_URL_MAX 256u /* a public URL, and its NUL */
#define GAME_CLUSTER_AUTH_MAX 128u

typedef struct game_cluster_config {
  char host[64]; /* Redis: a numeric address */
  uint16_t port;
  char user[GAME_CLUSTER_AUTH_MAX];      /* "" : AUTH with the password only */
  char password[GAME_CLUSTER_AUTH_MAX];  /* "": no AUTH; never logged */
  char instance_id[GAME_CLUSTER_ID_MAX]; /* "": drawn at start, logged */
  char public_url[GAME_CLUSTER_URL_MAX]; /* ws://host:port/ws, for MOVE */
  rt_time_ns lease;                      /* a lease's life: 3 s */
  rt_time_ns renew;                      /* renewed this often: 1 s */
  rt_time_ns poll;        /* the inbox is read this often: 50 ms */
  rt_time_ns op_timeout;  /* a reply later than this: reconnect; 2 s */
  rt_time_ns backoff_min; /* reconnect after 100 ms, doubling ... */
  rt_time_ns backoff_max; /* ... up to 5 s */
} game_cluster_config_t;

/* The defaults above; host, port and public_url still to fill. */
void game_cluster_config_defaults(game_cluster_config_t *cfg);

/* Parse "redis://[[user]:password@]host[:port][/]" into cfg's host, port,
 * user and password. 0, or RT_EINVAL with a static reason in *why (the
 * password is never part of it). host must be numeric (no lookups in the
 * event loop): IPv4, or IPv6 in brackets ("[::1]", stored without them);
 * "localhost" is taken as 127.0.0.1. */
int game_cluster_parse_url(const char *url, game_cluster_config_t *cfg,
                           const char **why);

typedef struct game_cluster_stats {
  uint64_t round_trips;    /* replies received */
  uint64_t latency_sum_ns; /* their total wait */
  uint64_t latency_max_ns; /* and the longest */
  uint64_t connects;       /* connections that reached a renew */
  uint64_t reconnects;     /* of which after a lost connection */
  uint64_t redis_errors;   /* timeouts, resets, error replies */
  uint64_t lease_renewals; /* renews Redis accepted */
  uint64_t fenced;         /* times this instance found itself dead */
  uint64_t matches_local;  /* both players here */
  uint64_t matches_cross;  /* one of them on another instance */
  uint64_t tickets_purged; /* dead instances' tickets removed */
  uint64_t server_lost;    /* games found lost, stored server_lost */
  uint64_t claims_stored;  /* games a dead owner claimed the end of but had
                              no row for, stored with its claimed result */
  uint64_t unavailable;    /* JOINs Redis could not take */
  uint64_t data_lost;      /* times Redis came back without our lease */
  uint32_t up;             /* 1 while Redis answers */
} game_cluster_stats_t;

typedef struct game game_t;

/* Join the cluster: spawn the Cluster actor, which connects and registers.
 * Without it the game is one process, exactly as before. */
int game_cluster_start(game_t *g, const game_cluster_config_t *cfg);
/* 1 and *out when clustered, else 0. */
int game_cluster_get_stats(const game_t *g, game_cluster_stats_t *out);
/* The current incarnation ("" when not clustered). */
const char *game_cluster_epoch(const game_t *g);

/* Which step an EVAL's script is, for a checker that watches what Redis
 * runs (the simulator's C7). The steps' arguments and replies are those
 * game_cluster_lua.h documents; a checker reads them from there:
 *   RENEW  ARGV[1] incarnation, ARGV[3] lease ms; reply[0] 1 when renewed
 *   MATCH  ARGV[3] incarnation; reply {'matched', opponent, name,
 *          opponent's ticket's incarnation, purged} when matched */
typedef enum game_cluster_step {
  GAME_CLUSTER_STEP_OTHER = 0, /* not one of the Cluster's scripts */
  GAME_CLUSTER_STEP_RENEW,
  GAME_CLUSTER_STEP_MATCH,
  GAME_CLUSTER_STEP_UNQUEUE,
  GAME_CLUSTER_STEP_LOOKUP,
  GAME_CLUSTER_STEP_CLAIM,
  GAME_CLUSTER_STEP_STORED,
  GAME_CLUSTER_STEP_FINISHED,
} game_cluster_step_t;

game_cluster_step_t game_cluster_step_of(const char *script, size_t len);

#endif
