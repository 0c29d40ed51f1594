/* game.h: Overcookied, as actors in any world.
 *
 * game_create spawns the Manager (players, matchmaking queue, rooms,
 * reconnection) and the Store (SQLite). Everything else plugs into the
 * connection layer through rt_service.h: the Client is a session
 * (game_session) hosted by each WebSocket connection's actor; tokens are
 * checked by game_authenticate; the HTTP API is three rt_http_fn; metrics
 * are appended by game_metrics. The game knows neither net/ nor sim/.
 */
#ifndef GAME_H
#define GAME_H

#include "game_config.h"
#include "game_store.h"
#include "rt_service.h"
#include "rt_world.h"

typedef struct game game_t;

/* Disconnects of a Client by the server, by reason (exported). */
typedef enum game_kick_reason {
  GAME_KICK_MUST_OVERFLOW = 0, /* a never-dropped message did not fit: 1008 */
  GAME_KICK_WRITE_WAIT,        /* output stuck for write_wait: 1008 */
  GAME_KICK_MAILBOX_FULL,      /* its mailbox refused a never-dropped one */
  GAME_KICK_REPLACED,          /* a newer connection for the player: 4000 */
  GAME_KICK_SERVER_FULL,       /* players_max reached: 1013 */
  GAME_KICK_FLOOD,             /* over in_rate/in_burst messages: 1008 */
  GAME_KICK_IDLE,              /* quiet in the lobby for lobby_idle: 4002 */
  GAME_KICK_REASON_COUNT_
} game_kick_reason_t;

typedef enum game_end_reason {
  GAME_END_TIME = 0,
  GAME_END_QUIT,
  GAME_END_DISCONNECTED,
  GAME_END_REASON_COUNT_
} game_end_reason_t;

typedef struct game_stats {
  uint32_t players;   /* known to the Manager now */
  uint32_t connected; /* with a live connection */
  uint32_t queued;
  uint32_t rooms; /* running now */
  uint64_t rooms_started;
  uint64_t rooms_finished[GAME_END_REASON_COUNT_];
  uint64_t rooms_lost; /* stopped unfinished, not at shutdown: a bug */
  uint64_t rooms_server_lost; /* clustered: ended server_lost here */
  uint64_t resumed;    /* reconnections within the grace */
  uint64_t clicks_scored;
  uint64_t clicks_countdown; /* acknowledged, scored nothing */
  uint64_t clicks_rate_limited;
  uint64_t golden_spawns;
  uint64_t golden_claims;
  uint64_t golden_contested;  /* claims that lost a race */
  uint64_t out_sent;          /* frames handed to connections */
  uint64_t out_tick_replaced; /* a newer tick took a queued tick's place */
  uint64_t out_dropped;       /* droppable frames dropped under backpressure */
  uint64_t kicks[GAME_KICK_REASON_COUNT_];
  uint64_t errors_sent; /* ERROR messages */
  /* Clustered (game_cluster.h) */
  uint64_t moves;            /* MOVE frames sent */
  uint64_t server_lost_told; /* GAME_OVER server_lost on a reconnect */
  uint64_t mm_unavailable;   /* JOIN_QUEUE answered matchmaking_unavailable */
  uint64_t rooms_fenced; /* stopped unrecorded: this instance was fenced */
  uint64_t resumes_refused;     /* a resume while the lease had lapsed: 1013 */
  uint64_t rooms_told_by_timer; /* let go with a full mailbox (a signal) */
  /* GAME_OVERs a connection never sent (it closed first, or was too far
   * behind to take them): kept for the player's next connection (missed),
   * or told at once to the one it is already back on, or given up (it
   * was in a new game by then; history has the result). */
  uint64_t overs_unsent, overs_unsent_told, overs_unsent_given_up;
} game_stats_t;

/* secret: token key (copied). store: how to open the Store. */
int game_create(rt_world_t *w, const game_config_t *cfg, const char *secret,
                const game_store_config_t *store, game_t **out);
/* After the world's actors have stopped. */
void game_free(game_t *g);

/* The Client: host it in every WebSocket connection. */
const rt_session_handler_t *game_session(const game_t *g);
/* The mailbox every connection actor needs for the Client's messages:
 * tick UPDATEs replace (latest wins), droppables drop, the rest reject. */
void game_client_mailbox(uint32_t *cap, rt_overflow_t *policy,
                         const rt_overflow_rule_t **rules, uint32_t *len);

/* Verify a token (ctx: the game_t). */
int game_authenticate(void *ctx, const char *token, rt_identity_t *who);

/* The HTTP API (ctx: the game_t): POST /api/login, GET /api/leaderboard,
 * GET /api/history. */
int game_api_login(void *ctx, rt_world_t *w, const rt_http_call_t *call,
                   rt_http_answer_t *answer);
int game_api_leaderboard(void *ctx, rt_world_t *w, const rt_http_call_t *call,
                         rt_http_answer_t *answer);
int game_api_history(void *ctx, rt_world_t *w, const rt_http_call_t *call,
                     rt_http_answer_t *answer);
/* For the original frontend (PROTOCOL.md, "The original frontend"):
 * GET /auth/verify with a Bearer token answers {"id","name","email":"",
 * "picture":"","token"} or 401; POST /auth/logout answers 204. */
int game_api_verify(void *ctx, rt_world_t *w, const rt_http_call_t *call,
                    rt_http_answer_t *answer);
int game_api_logout(void *ctx, rt_world_t *w, const rt_http_call_t *call,
                    rt_http_answer_t *answer);

/* Game metrics in Prometheus text (ctx: the game_t). */
size_t game_metrics(void *ctx, rt_world_t *w, char *out, size_t cap);

void game_get_stats(const game_t *g, game_stats_t *out);
/* "click", "out_tick", ...: the name of one of the game's message tags
 * (timelines, logs); NULL for a tag that is not the game's. */
const char *game_tag_name(uint16_t tag);
const game_store_t *game_store(const game_t *g);
rt_actor_id_t game_manager_actor(const game_t *g);

#endif
