/* game_int.h: messages between the game's actors. Not for other layers. */
#ifndef GAME_INT_H
#define GAME_INT_H

#include "game.h"
#include "game_auth.h"
#include "game_check.h"
#include "game_proto.h"
#include "rt_idmap.h"
#include "rt_msg.h"
#include "rt_service.h"

#include <stdbool.h>
#include <stddef.h>

/* Results from outside the world (rt_tap.h externals): recorded on a live
 * server, fed back by a replay, so a replay needs neither the token key nor
 * the database. */
enum {
  GAME_EXT_AUTH_VERIFY = 1, /* rc: 0 or RT_E*; data: subject NUL name */
  GAME_EXT_AUTH_SIGN = 2,   /* rc: 0 or RT_E*; data: the token */
  /* 3 to 5 were the Store's calls while it ran one transaction per game
   * in its own turn: retired, so an older recording stops as diverged. */
  /* The Store's backend (game_store_int.h). rc: STORE_DONE, STORE_QUEUED
   * or a STORE_E_* error; data: a flags byte (STORE_FLAG_*), then for
   * STORE_DONE the answer: one outcome byte per game recorded (1 stored,
   * 2 already stored) or the JSON body of a read. */
  GAME_EXT_STORE_BEGIN = 6,
  GAME_EXT_STORE_POLL = 7,
  GAME_EXT_STORE_ABANDON = 8, /* rc: 0 */
};

/* Tags: one band of user tags for the whole game, so the Client's mailbox
 * rules and every actor's switch read from one list. */
enum {
  /* Client -> Manager */
  GAME_TAG_HELLO = RT_TAG_USER, /* buf: game_hello_t */
  GAME_TAG_JOIN,
  GAME_TAG_LEAVE,
  /* Manager -> Client */
  GAME_TAG_ASSIGN,   /* game_assign_t: your room and role */
  GAME_TAG_REPLACED, /* a newer connection took over: close 4000 */
  GAME_TAG_REFUSED,  /* too many players: close 1013 (try again later) */
  /* Client -> Room */
  GAME_TAG_CLICK,        /* game_click_t */
  GAME_TAG_COOKIE_CLICK, /* game_role_t */
  GAME_TAG_QUIT,         /* game_role_t */
  /* Room/Manager -> Client: a frame to send, in buf, by delivery class */
  GAME_TAG_OUT_MUST,   /* never dropped: QUEUED, GAME_START, COOKIE_SPAWN,
                          golden UPDATE, ERROR; a GAME_OVER goes as
                          GAME_TAG_OUT_OVER (below), but for a cluster's
                          game declared lost elsewhere (game_room.c) */
  GAME_TAG_OUT_DROP,   /* droppable: click UPDATE, OPPONENT_CLICK */
  GAME_TAG_OUT_TICK,   /* latest wins: tick UPDATE */
  GAME_TAG_ROOM_DONE,  /* Room or Manager -> Client: the room is over
                          (game_room_done_t) */
  GAME_TAG_ROOM_START, /* Manager -> Room: players are told; start */
  /* Manager -> Room */
  GAME_TAG_LEFT, /* game_seat_t: a player's connection is gone */
  GAME_TAG_BACK, /* game_seat_t: a player is back on a new connection */
  /* Room -> Manager */
  GAME_TAG_ENDED, /* game_ended_t; buf: the GAME_OVER frame */
  /* Store */
  GAME_TAG_STORE_RECORD,      /* buf: game_result_t; payload: u64 key */
  GAME_TAG_STORE_RECORDED,    /* u64 key */
  GAME_TAG_STORE_LEADERBOARD, /* game_query_t */
  GAME_TAG_STORE_HISTORY,     /* game_query_t; buf: subject */
  /* Timers */
  GAME_TAG_TIMER_COUNTDOWN,
  GAME_TAG_TIMER_TICK,
  GAME_TAG_TIMER_GOLDEN,
  GAME_TAG_TIMER_GRACE,
  GAME_TAG_TIMER_STORE_RETRY,
  GAME_TAG_TIMER_WRITE_WAIT,
  GAME_TAG_TIMER_DRAIN_POLL,
  GAME_TAG_TIMER_SEND_RETRY,
  GAME_TAG_TIMER_LOBBY_IDLE,
  GAME_TAG_TIMER_STORE_KICK,
  GAME_TAG_TIMER_STORE_TIMEOUT,
  /* The cluster (game_cluster.c). Appended, so that the tags above keep
   * their numbers: they are in every run hash and trace. */
  GAME_TAG_CL_JOIN,        /* Manager -> Cluster: buf game_cl_player_t */
  GAME_TAG_CL_UNQUEUE,     /* Manager -> Cluster: buf game_cl_player_t */
  GAME_TAG_CL_LOOKUP,      /* Manager -> Cluster: buf game_cl_player_t */
  GAME_TAG_CL_CLAIM,       /* Room -> Cluster: game_cl_claim_t; buf
                              game_result_t, the result it would store */
  GAME_TAG_CL_CLAIMED,     /* Cluster -> Room: game_cl_claim_t */
  GAME_TAG_CL_MATCHED,     /* Cluster -> Manager: buf game_cl_match_t */
  GAME_TAG_CL_MOVE,        /* Cluster -> Manager: buf game_cl_move_t */
  GAME_TAG_CL_LOST,        /* Cluster -> Manager: buf game_cl_player_t */
  GAME_TAG_CL_UNAVAILABLE, /* Cluster -> Manager: buf game_cl_player_t;
                              Manager -> Client: not queued after all */
  GAME_TAG_CL_DOWN,        /* Cluster -> Manager: Redis is unreachable */
  GAME_TAG_CL_FENCED,      /* Cluster -> Manager: this incarnation is dead */
  GAME_TAG_CL_TAKEN,       /* Cluster -> Manager: buf game_cl_player_t,
                              its ticket was taken by a JOIN elsewhere */
  GAME_TAG_MOVED,          /* Manager -> Client: close 4001 "moved" */
  GAME_TAG_FENCED,         /* Manager -> Room: stop, store nothing */
  GAME_TAG_TIMER_CL_CONNECT,
  GAME_TAG_TIMER_CL_RENEW,
  GAME_TAG_TIMER_CL_POLL,
  GAME_TAG_TIMER_CL_CLAIM,
  GAME_TAG_CL_RESET,    /* Cluster -> Manager: Redis lost its data (a restart
                           without it) while this incarnation was up */
  GAME_TAG_LOST_HERE,   /* Manager -> Room: end server_lost, stored here */
  GAME_TAG_CL_LEASE,    /* Cluster -> Manager: buf rt_time_ns, the instant this
                           incarnation's lease lapses by this instance's clock */
  GAME_TAG_NOT_NOW,     /* Manager -> Client: close 1013 (try again later),
                           no kick: this owner cannot vouch for its game */
  GAME_TAG_CL_FINISHED, /* Room -> Cluster: game_cl_claim_t, the result its
                           claim won is in the Store: Redis may forget it */
  GAME_TAG_OUT_OVER,    /* Room/Manager -> Client: a GAME_OVER frame in buf,
                           must-deliver; one the connection never sends is
                           handed back to the Manager (MISSED) */
  GAME_TAG_MISSED,      /* Client/Room -> Manager: buf game_missed_t, then
                           a GAME_OVER frame the player was never sent */
  GAME_TAG_OUT_CLICKED, /* Room -> Client: the opponent scored. Two
                           droppable frames in one message (the opponent's
                           two of every click): OPPONENT_CLICK with the
                           points in the payload (u8, 1 or 2: the game's
                           shared frame), then the click UPDATE in buf */
};

/* ---- The cluster's messages ---------------------------------------------- */

typedef struct game_cl_player {
  char id[RT_SUBJECT_MAX];
  char name[RT_NAME_MAX];
} game_cl_player_t;

/* CL_LOST: the player's game was found lost (stored server_lost). */
typedef struct game_cl_lost {
  game_cl_player_t who;
  char room[32];
} game_cl_lost_t;

/* A pair taken by this instance, which owns the room: seat 0 the older
 * ticket. remote[i]: that player's ticket was another instance's (it is
 * being sent here with MOVE). */
typedef struct game_cl_match {
  game_cl_player_t seats[2];
  uint8_t remote[2];
  uint64_t seq; /* the room's sequence: its id with the room prefix */
} game_cl_match_t;

typedef struct game_cl_move {
  char id[RT_SUBJECT_MAX];
  char room[32];
  char url[256];
} game_cl_move_t;

enum {
  GAME_CL_CLAIM_DONE = 0,  /* the end is this room's: store the result */
  GAME_CL_CLAIM_LOST = 1,  /* the game was declared lost, or we are fenced:
                              end it server_lost, store nothing */
  GAME_CL_CLAIM_RETRY = 2, /* Redis cannot say now: ask again later */
};

typedef struct game_cl_claim {
  uint64_t seq;    /* the room's (its id) */
  uint32_t answer; /* GAME_CL_CLAIM_* (CLAIMED) */
  uint32_t pad_;
} game_cl_claim_t;

/* MISSED: whose GAME_OVER, and the connection that never sent it. */
typedef struct game_missed {
  char id[RT_SUBJECT_MAX];
  rt_actor_id_t client;
} game_missed_t;

typedef enum { GAME_ROLE_P1 = 0, GAME_ROLE_P2 = 1 } game_role_id_t;

typedef struct game_role {
  uint32_t role;
  uint32_t pad_;
} game_role_t;

typedef struct game_click {
  uint32_t role;
  uint32_t has_seq;
  int64_t seq;
} game_click_t;

typedef struct game_assign {
  rt_actor_id_t room;
  uint32_t role;
  uint32_t pad_;
} game_assign_t;

typedef struct game_seat {
  rt_actor_id_t client; /* the new connection (BACK), or 0 (LEFT) */
  uint32_t role;
  uint32_t pad_;
} game_seat_t;

typedef struct game_ended {
  rt_actor_id_t room;
  uint64_t room_seq;
  /* The connections the room sent GAME_OVER to, by role (0: none). A
   * player back on a newer one in the instant the room ended missed it:
   * the Manager sends it the frame in buf. */
  rt_actor_id_t told[2];
} game_ended_t;

typedef struct game_room_done {
  rt_actor_id_t room;
} game_room_done_t;

typedef struct game_query {
  rt_actor_id_t reply_to;
  uint64_t call_id;
  uint32_t limit;
  uint32_t pad_;
} game_query_t;

typedef struct game_hello {
  rt_identity_t who;
} game_hello_t;

/* ---- The game's shared context (one per world) --------------------------- */

struct game {
  rt_world_t *world;
  game_config_t cfg;
  game_auth_t auth;
  rt_rng_t ids;         /* user ids for logins */
  uint32_t room_prefix; /* makes room ids unique across restarts */
  /* OPPONENT_CLICK has two possible payloads ({"count":1} and 2): encoded
   * once, shared by every room (index: the points). */
  rt_buf_t *opponent_click[3];
  game_proto_forms_t forms; /* the click UPDATE's, likewise */
  game_store_t *store;
  rt_actor_id_t manager;
  rt_session_handler_t session;
  game_stats_t stats;
  /* Read-only views for game_check (game_check.h), kept by the actors
   * themselves: live rooms and clients by actor id, the Manager's state. */
  rt_idmap_t rooms_live;   /* room actor id -> its room state */
  uint32_t rooms_detached; /* live rooms the Manager let go (LOST_HERE):
                              storing their server_lost, seating nobody */
  rt_idmap_t clients_live; /* connection actor id -> its client state */
  void *manager_state;     /* NULL once the Manager stopped */
  /* The cluster (game_cluster.h): 0 and NULL when this is one process. */
  rt_actor_id_t cluster;
  void *cluster_state;
};

/* Whole-object checks (game_check.c calls them). Each returns 0, or -1 with
 * the first violation in why. `quiescent`: no actor is ready, so every
 * message sent has been delivered (the checks that compare actors' views of
 * each other need it). */
int game__manager_check(const game_t *g, bool quiescent, char *why, size_t cap);
/* The Manager's view of player `id`: 1 with its room and role when it is
 * PLAYING, 0 when it is known but not playing, -1 when unknown. */
int game__manager_seat(const game_t *g, const char *id, rt_actor_id_t *room,
                       uint32_t *role);
bool game__manager_queued(const game_t *g, const char *id);
/* By room id ascending when sorted, else in the table's slot order. */
void game__manager_each_seat(const game_t *g, game_seat_fn *fn, void *ctx,
                             bool sorted);
int game__room_check(const game_t *g, const void *room, bool quiescent,
                     char *why, size_t cap);
int game__client_check(const game_t *g, const void *client, bool quiescent,
                       char *why, size_t cap);
/* A live room the Manager let go (LOST_HERE): it seats nobody any more. */
bool game__room_detached(const void *room);
/* A live room's id ("roomId", the Store's key). */
const char *game__room_public_id(const void *room);
/* A live room's result, once it has ended (1; else 0). */
int game__room_result(const void *room, game_result_t *out);
/* The two player ids seated in a live room. */
void game__room_seats(const void *room, const char **p1, const char **p2);

/* Spawn a room for two seated players; it sends GAME_START itself. */
typedef struct game_seat_info {
  char id[RT_SUBJECT_MAX];
  char name[RT_NAME_MAX];
  rt_actor_id_t client;
} game_seat_info_t;

/* A room's id: "r<prefix>-<seq>" (the Store keys results by it). */
void game__room_id(const game_t *g, uint64_t seq, char *out, size_t cap);

/* game_cluster.c, for the Manager: the Cluster's incarnation is dead or
 * Redis unreachable (matchmaking is off). */
bool game__cluster_up(const game_t *g);

int game_room_spawn(game_t *g, uint64_t seq, const game_seat_info_t *p1,
                    const game_seat_info_t *p2, rt_actor_id_t *out);
int game_manager_spawn(game_t *g, rt_actor_id_t *out);
/* Fill in the Client's session handler (game_client.c). */
void game__client_handler(game_t *g, rt_session_handler_t *out);

/* Send a frame to a client by class (GAME_TAG_OUT_*): takes nothing, refs
 * the buffer. A client whose mailbox refuses a never-dropped frame is
 * disconnected (its connection actor stopped): counted. 0, or the send's
 * error (nothing was queued). */
int game_send_frame(game_t *g, rt_actor_id_t client, uint16_t tag,
                    rt_buf_t *frame);
/* Hand a GAME_OVER that player `id` was never sent, on connection
 * `client`, back to the Manager (GAME_TAG_MISSED): it keeps it for the
 * player (its Invariant (6)). */
void game__over_unsent(game_t *g, const char *id, rt_actor_id_t client,
                       const rt_buf_t *frame);

#endif
