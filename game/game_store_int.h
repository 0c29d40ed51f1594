/* game_store_int.h: the Store's backends, SQLite and PostgreSQL.
 *
 * The Store actor (game_store.c) keeps the promises of game_store.h: the
 * order of results, groups, retries with backoff, acknowledgements, reads'
 * JSON. A backend only runs one request at a time against its database:
 *  - begin starts a request. SQLite runs it at once and answers STORE_DONE;
 *    PostgreSQL sends it on a non-blocking connection and answers
 *    STORE_QUEUED, then raises the Store's port when its socket is ready,
 *    and poll (called on RT_TAG_PORT) gives the answer once it is complete.
 *  - A request fails with a STORE_E_* kind; STORE_E_UNAVAILABLE when there
 *    is no connection (begin then starts connecting again: the Store's
 *    backoff paces the attempts), STORE_E_TIMEOUT when a connect has gone
 *    unanswered for op_timeout (it is dropped; the next begin starts
 *    another).
 * The Store calls a backend only inside an external (rt_tap.h), so a replay
 * gets every answer from the recording and never calls one.
 */
#ifndef GAME_STORE_INT_H
#define GAME_STORE_INT_H

#include "game_store.h"
#include "rt_port.h"

#include <stdint.h>

enum {
  STORE_QUEUED = 0, /* the answer comes later, through poll */
  STORE_DONE = 1,   /* the answer is in *ans */
};

/* Why a request failed; negative, as rc of the externals. */
enum {
  STORE_E_BUSY = -1, /* locked, serialization failure, deadlock */
  STORE_E_FULL = -2, /* disk or quota full */
  STORE_E_IO = -3,
  STORE_E_UNAVAILABLE = -4, /* no connection: down, connecting, dropped */
  STORE_E_TIMEOUT = -5,     /* the Store gave up waiting (game_store.c), or
                               a connect had no answer in op_timeout */
  STORE_E_OTHER = -6,
};
#define STORE_E_KINDS 6

/* Connection news a backend reports with its answers (the externals' flags
 * byte), so that a replay counts them too. */
enum {
  STORE_FLAG_CONNECTED = 1u << 0, /* a new connection is ready */
  STORE_FLAG_LOST = 1u << 1,      /* the connection was lost */
};

typedef struct store_request {
  game_store_op_t op;
  const game_result_t *games; /* GAME_STORE_OP_RECORD: in order */
  uint32_t n;
  uint32_t limit;      /* reads */
  const char *subject; /* GAME_STORE_OP_HISTORY */
} store_request_t;

typedef struct store_leader {
  char name[RT_NAME_MAX];
  int64_t score, games, wins;
} store_leader_t;

/* A request's answer; arrays malloc'ed by the backend, freed by
 * store_answer_clear. */
typedef struct store_answer {
  uint8_t flags;        /* STORE_FLAG_* */
  uint8_t *outcome;     /* RECORD: n bytes, 1 stored now, 2 already stored */
  game_result_t *games; /* HISTORY: newest first */
  uint32_t ngames;
  int64_t total;           /* HISTORY: all of the player's games */
  store_leader_t *leaders; /* LEADERBOARD: best first */
  uint32_t nleaders;
} store_answer_t;

void store_answer_clear(store_answer_t *ans);

typedef struct store_backend store_backend_t;

typedef struct store_backend_ops {
  /* STORE_DONE with *ans, STORE_QUEUED, or a STORE_E_* error. */
  int (*begin)(store_backend_t *b, const store_request_t *req,
               store_answer_t *ans);
  /* The port was raised with `events` (RT_PORT_*): STORE_DONE with the
   * answer to the request in flight, STORE_QUEUED when there is none yet,
   * or the STORE_E_* error that failed it. ans->flags is set either way. */
  int (*poll)(store_backend_t *b, uint32_t events, store_answer_t *ans);
  /* Give up the request in flight: drop the connection. */
  void (*abandon)(store_backend_t *b);
  /* Checkers' reads (game_store.h), blocking, between turns. */
  int (*find_game)(store_backend_t *b, const char *room_id, game_result_t *out);
  int64_t (*count_games)(store_backend_t *b);
  /* The newest stored game seating player `id`: 1, 0 or RT_EIO. */
  int (*latest_game_of)(store_backend_t *b, const char *id, game_result_t *out);
  void (*free)(store_backend_t *b);
} store_backend_ops_t;

struct store_backend {
  const store_backend_ops_t *ops;
  const char *name;  /* "sqlite" or "postgres", for /metrics */
  rt_world_t *world; /* for logs and the port */
  rt_port_t *port;   /* the Store's, set once it is open */
};

/* Open the database and create or migrate its schema. Negative RT_E* (and
 * a log line saying why) when it cannot. */
int store_sqlite_open(rt_world_t *w, const game_store_config_t *cfg,
                      store_backend_t **out);
int store_pg_open(rt_world_t *w, const game_store_config_t *cfg,
                  store_backend_t **out);

#endif
