/* game_manager.c: players, the matchmaking queue, rooms and reconnection.
 *
 * A player is known by the subject of its token, and has at most one live
 * connection (a Client actor, watched with a monitor) at a time.
 *
 * Invariants:
 *  (1) A player is IDLE, QUEUED or PLAYING, never two of them; QUEUED players
 *      are exactly the ones in the queue, in arrival order (FIFO).
 *  (2) A match takes two different players from the head of the queue, so
 *      nobody is matched with themselves or twice.
 *  (3) A PLAYING player's room seats it and is alive, or has just ended:
 *      a room tells the Manager it ended (GAME_TAG_ENDED) before it tells
 *      the players and stops, so between its last turn and ours the ENDED
 *      is queued here while a DOWN (a signal, delivered first) or a HELLO
 *      (queued earlier) about one of its players may still come first.
 *  (4) A player with no connection is kept only while PLAYING (to resume
 *      within the grace); otherwise it is forgotten at once.
 *  (5) A newer connection for a player replaces the older one, which is
 *      told to close with 4000; a DOWN from a replaced connection is ignored.
 *  (6) A player away when its room ended (no connection was told: in the
 *      grace, or moved here from another instance and not yet arrived)
 *      gets the GAME_OVER when it comes back within MISSED_KEEP_NS. So
 *      does one whose connection never sent it (closed with it queued, or
 *      too far behind to take it: MISSED); one back on a newer
 *      connection by then is told there at once, unless it is in a new
 *      game or queued (history has the result).
 */
#include "game_int.h"

#include "game_proto.h"
#include "rt_assert.h"
#include "rt_hash.h"
#include "rt_idmap.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MANAGER_MAILBOX_CAP 65536u

typedef enum { P_IDLE = 0, P_QUEUED, P_PLAYING } pstate_t;

typedef struct player {
  /* A lookup reads the hash and the chain, a check every field but the
   * name: those first, the name last (a check reads every player). */
  uint64_t id_hash;
  struct player *bucket_next;
  pstate_t state;
  rt_actor_id_t client; /* 0: no connection */
  uint64_t monitor;
  rt_actor_id_t room;
  uint32_t role;
  struct player *q_prev, *q_next;
  char id[RT_SUBJECT_MAX];
  char name[RT_NAME_MAX];
} player_t;

typedef struct room_entry {
  player_t *seats[2];
} room_entry_t;

/* A result its player missed (Invariant (6)), kept in arrival order. */
typedef struct missed {
  char id[RT_SUBJECT_MAX];
  rt_buf_t *frame; /* the GAME_OVER; NULL once told or replaced */
  rt_time_ns at;
  struct missed *next;
} missed_t;

#define MISSED_MAX 4096u
#define MISSED_KEEP_NS (60 * RT_NS_PER_S)

typedef struct manager {
  game_t *g;
  rt_actor_id_t id;
  player_t **buckets; /* by id_hash: chained */
  uint32_t bucket_mask;
  uint32_t players;
  rt_idmap_t by_client; /* client actor id -> player */
  rt_idmap_t rooms;     /* room actor id -> room_entry_t */
  player_t *q_head, *q_tail;
  uint32_t queued;
  uint32_t connected;
  uint64_t room_seq;
  rt_idmap_t missed; /* hash of a player id -> its missed_t */
  missed_t *missed_head, *missed_tail;
  uint32_t missed_count;
  /* Clustered: the lease of this incarnation lapses at this instant by
   * this instance's clock (GAME_TAG_CL_LEASE); 0 when none is held. */
  rt_time_ns lease_until;
} manager_t;

static rt_world_t *mworld(const manager_t *m) { return m->g->world; }

/* ---- The player table ---------------------------------------------------- */

static uint64_t hash_id(const char *id) {
  return rt_hash_bytes(id, strlen(id), 0x706c61796572ULL);
}

static player_t *find(const manager_t *m, const char *id) {
  uint64_t h = hash_id(id);
  for (player_t *p = m->buckets[h & m->bucket_mask]; p != NULL;
       p = p->bucket_next)
    if (p->id_hash == h && strcmp(p->id, id) == 0)
      return p;
  return NULL;
}

static int grow_buckets(manager_t *m) {
  uint32_t n = (m->bucket_mask + 1) * 2;
  player_t **b = calloc(n, sizeof(*b));
  if (b == NULL)
    return RT_ENOMEM;
  for (uint32_t i = 0; i <= m->bucket_mask; i++) {
    player_t *p = m->buckets[i];
    while (p != NULL) {
      player_t *next = p->bucket_next;
      p->bucket_next = b[p->id_hash & (n - 1)];
      b[p->id_hash & (n - 1)] = p;
      p = next;
    }
  }
  free(m->buckets);
  m->buckets = b;
  m->bucket_mask = n - 1;
  return RT_OK;
}

static player_t *add_player(manager_t *m, const rt_identity_t *who) {
  if (m->players >= m->g->cfg.players_max)
    return NULL;
  if (m->players + 1 > m->bucket_mask + 1 && grow_buckets(m) < 0)
    return NULL;
  player_t *p = calloc(1, sizeof(*p));
  if (p == NULL)
    return NULL;
  memcpy(p->id, who->subject, sizeof(p->id));
  p->id[sizeof(p->id) - 1] = '\0';
  p->id_hash = hash_id(p->id);
  uint32_t b = (uint32_t)(p->id_hash & m->bucket_mask);
  p->bucket_next = m->buckets[b];
  m->buckets[b] = p;
  m->players++;
  return p;
}

static void forget_player(manager_t *m, player_t *p) {
  RT_WASSERT(mworld(m), p->state == P_IDLE && p->client == 0); /* Inv. (4) */
  player_t **link = &m->buckets[p->id_hash & m->bucket_mask];
  while (*link != p)
    link = &(*link)->bucket_next;
  *link = p->bucket_next;
  m->players--;
  free(p);
}

/* ---- The queue: Invariant (1) -------------------------------------------- */

static void queue_push(manager_t *m, player_t *p) {
  p->state = P_QUEUED;
  p->q_prev = m->q_tail;
  p->q_next = NULL;
  if (m->q_tail != NULL)
    m->q_tail->q_next = p;
  else
    m->q_head = p;
  m->q_tail = p;
  m->queued++;
}

static void queue_remove(manager_t *m, player_t *p) {
  RT_WASSERT(mworld(m), p->state == P_QUEUED);
  if (p->q_prev != NULL)
    p->q_prev->q_next = p->q_next;
  else
    m->q_head = p->q_next;
  if (p->q_next != NULL)
    p->q_next->q_prev = p->q_prev;
  else
    m->q_tail = p->q_prev;
  p->q_prev = p->q_next = NULL;
  p->state = P_IDLE;
  m->queued--;
}

/* ---- Results a player missed: Invariant (6) ------------------------------ */

static uint64_t missed_key(const char *id) { return hash_id(id) | 1; }

static void missed_forget(manager_t *m, missed_t *x) {
  if (rt_idmap_get(&m->missed, missed_key(x->id)) == x)
    rt_idmap_del(&m->missed, missed_key(x->id));
  rt_buf_unref(x->frame);
  x->frame = NULL;
}

/* Drop what is too old, or over the bound, oldest first. */
static void missed_expire(manager_t *m) {
  rt_time_ns now = rt_now(mworld(m));
  while (m->missed_head != NULL && (now - m->missed_head->at > MISSED_KEEP_NS ||
                                    m->missed_count > MISSED_MAX)) {
    missed_t *x = m->missed_head;
    m->missed_head = x->next;
    if (m->missed_head == NULL)
      m->missed_tail = NULL;
    missed_forget(m, x);
    free(x);
    m->missed_count--;
  }
}

static void missed_put(manager_t *m, const char *id, rt_buf_t *frame) {
  missed_t *x = calloc(1, sizeof(*x));
  if (x == NULL)
    return;
  memcpy(x->id, id, sizeof(x->id));
  x->frame = rt_buf_ref(frame);
  x->at = rt_now(mworld(m));
  missed_t *old = rt_idmap_get(&m->missed, missed_key(id));
  if (old != NULL)
    missed_forget(m, old); /* the newer result is the one to tell */
  if (rt_idmap_put(&m->missed, missed_key(id), x) < 0) {
    rt_buf_unref(x->frame);
    free(x);
    return;
  }
  if (m->missed_tail != NULL)
    m->missed_tail->next = x;
  else
    m->missed_head = x;
  m->missed_tail = x;
  m->missed_count++;
  missed_expire(m);
}

/* The GAME_OVER player `id` missed, if it is still kept (taken), or NULL. */
static rt_buf_t *missed_take(manager_t *m, const char *id) {
  if (m->missed_count == 0)
    return NULL;
  missed_expire(m);
  missed_t *x = rt_idmap_get(&m->missed, missed_key(id));
  if (x == NULL || strcmp(x->id, id) != 0)
    return NULL;
  rt_buf_t *frame = rt_buf_ref(x->frame);
  missed_forget(m, x);
  return frame;
}

static void missed_free(manager_t *m) {
  while (m->missed_head != NULL) {
    missed_t *x = m->missed_head;
    m->missed_head = x->next;
    rt_buf_unref(x->frame);
    free(x);
  }
  rt_idmap_deinit(&m->missed);
}

/* ---- Messages to clients ------------------------------------------------- */

static void send_frame(manager_t *m, player_t *p, rt_buf_t *frame) {
  game_send_frame(m->g, p->client, GAME_TAG_OUT_MUST, frame);
  rt_buf_unref(frame);
}

/* A GAME_OVER; takes the frame. One the connection cannot take comes
 * back as MISSED, like one it never sends. */
static void send_over(manager_t *m, player_t *p, rt_buf_t *frame) {
  if (frame == NULL)
    return;
  if (game_send_frame(m->g, p->client, GAME_TAG_OUT_OVER, frame) < 0 &&
      p->client != 0)
    game__over_unsent(m->g, p->id, p->client, frame);
  rt_buf_unref(frame);
}

static void send_error(manager_t *m, rt_actor_id_t client, const char *code,
                       const char *message) {
  m->g->stats.errors_sent++;
  rt_buf_t *frame = game_proto_error(code, message);
  game_send_frame(m->g, client, GAME_TAG_OUT_MUST, frame);
  rt_buf_unref(frame);
}

static void send_assign(manager_t *m, player_t *p) {
  game_assign_t a = {.room = p->room, .role = p->role};
  rt_msg_t msg = RT_MSG_OF(GAME_TAG_ASSIGN, &a);
  if (rt_send(mworld(m), p->client, &msg) == RT_EFULL) {
    m->g->stats.kicks[GAME_KICK_MAILBOX_FULL]++;
    rt_stop(mworld(m), p->client, RT_REASON_USER);
  }
}

/* Tell a PLAYING player's room that its connection left or came back.
 * false when the room has just ended (Invariant (3)): its ENDED is already
 * queued for the Manager and will settle the player. */
static bool tell_room(manager_t *m, player_t *p, uint16_t tag) {
  game_seat_t s = {.client = p->client, .role = p->role};
  rt_msg_t msg = RT_MSG_OF(tag, &s);
  int rc = rt_send(mworld(m), p->room, &msg);
  if (rc == RT_ENOACTOR) {
    RT_WASSERT(mworld(m), rt_idmap_get(&m->rooms, p->room) != NULL);
    rt_log(mworld(m), RT_LOG_INFO, "manager.room_ended",
           "room=%" PRIu64 " player=%s tag=%u note=ended_is_queued", p->room,
           p->id, (unsigned)tag);
    return false;
  }
  if (rc == RT_EFULL)
    rt_log(mworld(m), RT_LOG_ERROR, "manager.room_full",
           "room=%" PRIu64 " tag=%u", p->room, (unsigned)tag);
  return true;
}

/* ---- Matchmaking: Invariant (2) ------------------------------------------ */

/* Seat two players in a new room `seq` and start it. A seat with no
 * connection (clustered: a player being moved here) is told nothing yet:
 * its arrival is a resume. */
static void open_room(manager_t *m, player_t *seats[2], uint64_t seq) {
  RT_WASSERT(mworld(m), seats[0] != seats[1]);
  room_entry_t *e = calloc(1, sizeof(*e));
  if (e == NULL)
    return;
  game_seat_info_t info[2];
  for (int i = 0; i < 2; i++) {
    memset(&info[i], 0, sizeof(info[i]));
    info[i].client = seats[i]->client;
    memcpy(info[i].id, seats[i]->id, sizeof(info[i].id));
    memcpy(info[i].name, seats[i]->name, sizeof(info[i].name));
    seats[i]->state = P_PLAYING;
    seats[i]->role = (uint32_t)i;
  }
  rt_actor_id_t room = 0;
  int err = game_room_spawn(m->g, seq, &info[0], &info[1], &room);
  if (err < 0) {
    rt_log(mworld(m), RT_LOG_ERROR, "manager.room_spawn", "err=%s",
           rt_err_name(err));
    for (int i = 0; i < 2; i++)
      seats[i]->state = P_IDLE;
    free(e);
    return;
  }
  e->seats[0] = seats[0];
  e->seats[1] = seats[1];
  if (rt_idmap_put(&m->rooms, room, e) < 0) {
    free(e);
    rt_stop(mworld(m), room, RT_REASON_KILLED);
    return;
  }
  /* Each client learns its room (ASSIGN) before the room's first turn
   * sends GAME_START: a player never sees the game before its clicks have
   * a route. */
  for (int i = 0; i < 2; i++) {
    seats[i]->room = room;
    if (seats[i]->client != 0)
      send_assign(m, seats[i]);
  }
  rt_msg_t start = rt_msg_make(GAME_TAG_ROOM_START, NULL, 0);
  (void)rt_send(mworld(m), room, &start);
}

static void start_match(manager_t *m) {
  player_t *seats[2] = {m->q_head, m->q_head->q_next};
  RT_WASSERT(mworld(m), seats[1] != NULL);
  queue_remove(m, seats[0]);
  queue_remove(m, seats[1]);
  open_room(m, seats, ++m->room_seq);
}

/* ---- The cluster (game_cluster.h) ----------------------------------------
 * Clustered, the queue holds this instance's players whose tickets are in
 * Redis; the Cluster takes pairs there, and this instance owns the rooms
 * it is told of (CL_MATCHED). A player whose game is elsewhere is sent
 * there (MOVE), one whose game's owner died hears server_lost. */

static bool clustered(const manager_t *m) { return m->g->cluster != 0; }

static bool to_cluster(manager_t *m, uint16_t tag, const player_t *p) {
  game_cl_player_t who;
  memset(&who, 0, sizeof(who));
  memcpy(who.id, p->id, sizeof(who.id));
  memcpy(who.name, p->name, sizeof(who.name));
  rt_msg_t msg = rt_msg_make(tag, NULL, 0);
  msg.buf = rt_buf_copy(&who, sizeof(who));
  if (msg.buf == NULL || rt_send(mworld(m), m->g->cluster, &msg) < 0) {
    rt_buf_unref(msg.buf);
    return false;
  }
  return true;
}

static void unavailable(manager_t *m, player_t *p) {
  m->g->stats.mm_unavailable++;
  send_error(m, p->client, "matchmaking_unavailable",
             "matchmaking is unavailable, try again shortly");
  /* Back in the lobby: the Client's idle time runs again. */
  rt_msg_t back = rt_msg_make(GAME_TAG_CL_UNAVAILABLE, NULL, 0);
  (void)rt_send(mworld(m), p->client, &back);
}

static void join_cluster(manager_t *m, player_t *p) {
  if (!game__cluster_up(m->g) || !to_cluster(m, GAME_TAG_CL_JOIN, p)) {
    unavailable(m, p);
    return;
  }
  queue_push(m, p);
  send_frame(m, p, game_proto_queued());
}

static bool read_buf(const rt_msg_t *msg, void *out, size_t len) {
  if (msg->buf == NULL || msg->buf->len != len)
    return false;
  memcpy(out, msg->buf->data, len);
  return true;
}

/* A seat of a room this instance owns: the local player, or one being
 * moved here (known with no connection until it arrives). NULL when the
 * player is already in a game here, or the table is full. */
static player_t *seat_for(manager_t *m, const game_cl_player_t *who) {
  player_t *p = find(m, who->id);
  if (p == NULL) {
    rt_identity_t id;
    memset(&id, 0, sizeof(id));
    memcpy(id.subject, who->id, sizeof(id.subject));
    p = add_player(m, &id);
    if (p == NULL)
      return NULL;
    memcpy(p->name, who->name, sizeof(p->name));
  }
  if (p->state == P_PLAYING)
    return NULL;
  if (p->state == P_QUEUED)
    queue_remove(m, p);
  return p;
}

static void release_seat(manager_t *m, player_t *p) {
  if (p != NULL && p->state == P_IDLE && p->client == 0)
    forget_player(m, p);
}

static void on_cl_matched(manager_t *m, const rt_msg_t *msg) {
  game_cl_match_t mt;
  if (!read_buf(msg, &mt, sizeof(mt)))
    return;
  for (int i = 0; i < 2; i++) {
    mt.seats[i].id[sizeof(mt.seats[i].id) - 1] = '\0';
    mt.seats[i].name[sizeof(mt.seats[i].name) - 1] = '\0';
  }
  player_t *seats[2] = {seat_for(m, &mt.seats[0]), NULL};
  if (seats[0] != NULL)
    seats[1] = seat_for(m, &mt.seats[1]);
  if (seats[0] == NULL || seats[1] == NULL || seats[0] == seats[1]) {
    rt_log(mworld(m), RT_LOG_ERROR, "manager.cluster_match",
           "p1=%s p2=%s note=cannot_seat", mt.seats[0].id, mt.seats[1].id);
    release_seat(m, seats[0]);
    if (seats[1] != seats[0])
      release_seat(m, seats[1]);
    return;
  }
  open_room(m, seats, mt.seq);
}

static void on_cl_move(manager_t *m, const rt_msg_t *msg) {
  game_cl_move_t mv;
  if (!read_buf(msg, &mv, sizeof(mv)))
    return;
  mv.id[sizeof(mv.id) - 1] = mv.room[sizeof(mv.room) - 1] = '\0';
  mv.url[sizeof(mv.url) - 1] = '\0';
  player_t *p = find(m, mv.id);
  if (p == NULL || p->client == 0 || p->state == P_PLAYING)
    return;
  if (p->state == P_QUEUED)
    queue_remove(m, p);
  rt_log(mworld(m), RT_LOG_INFO, "manager.move", "player=%s room=%s url=%s",
         p->id, mv.room, mv.url);
  m->g->stats.moves++;
  send_frame(m, p, game_proto_move(mv.url, mv.room));
  rt_msg_t moved = rt_msg_make(GAME_TAG_MOVED, NULL, 0);
  (void)rt_send(mworld(m), p->client, &moved);
}

static player_t *player_of(manager_t *m, const rt_msg_t *msg) {
  game_cl_player_t who;
  if (!read_buf(msg, &who, sizeof(who)))
    return NULL;
  who.id[sizeof(who.id) - 1] = '\0';
  player_t *p = find(m, who.id);
  return p != NULL && p->client != 0 ? p : NULL;
}

static void on_cl_lost(manager_t *m, const rt_msg_t *msg) {
  game_cl_lost_t lost;
  if (!read_buf(msg, &lost, sizeof(lost)))
    return;
  lost.who.id[sizeof(lost.who.id) - 1] = '\0';
  lost.room[sizeof(lost.room) - 1] = '\0';
  player_t *p = find(m, lost.who.id);
  if (p == NULL || p->client == 0 || p->state == P_PLAYING)
    return;
  m->g->stats.server_lost_told++;
  send_over(m, p,
            game_proto_game_over("none", "server_lost", (game_scores_t){0},
                                 lost.room));
}

static void on_cl_unavailable(manager_t *m, const rt_msg_t *msg) {
  player_t *p = player_of(m, msg);
  if (p == NULL || p->state != P_QUEUED)
    return;
  queue_remove(m, p);
  unavailable(m, p);
}

/* Redis is away: the tickets may be gone with it. Every queued player is
 * told, and may ask again. */
static void on_cl_down(manager_t *m) {
  while (m->q_head != NULL) {
    player_t *p = m->q_head;
    queue_remove(m, p);
    unavailable(m, p);
  }
}

/* Another connection of the player joined the queue on another instance
 * and took the ticket: this one is replaced, as on one instance. */
static void on_cl_taken(manager_t *m, const rt_msg_t *msg) {
  player_t *p = player_of(m, msg);
  if (p == NULL || p->state != P_QUEUED)
    return;
  queue_remove(m, p);
  rt_msg_t r = rt_msg_make(GAME_TAG_REPLACED, NULL, 0);
  if (rt_send(mworld(m), p->client, &r) < 0)
    rt_stop(mworld(m), p->client, RT_REASON_USER);
}

/* Tell a room it is let go (`tag`), also when its mailbox is full: a
 * timer of the room's own, due now, is a signal, which no full mailbox
 * refuses (rt_signal.h). It reaches the room before the messages queued
 * there, which changes nothing they could do: a room let go scores no
 * click (LOST_HERE ends its game, FENCED stops it). A room that cannot
 * be told either way is stopped, as a room that cannot store: never left
 * to play on and record a game whose seats are already free. */
static void let_room_know(manager_t *m, rt_actor_id_t room, uint16_t tag) {
  rt_msg_t f = rt_msg_make(tag, NULL, 0);
  int rc = rt_send(mworld(m), room, &f);
  if (rc != RT_EFULL)
    return; /* queued, or the room is gone */
  m->g->stats.rooms_told_by_timer++;
  uint64_t timer;
  if (rt_timer_start(mworld(m), room, 0, 0, tag, 0, &timer) == RT_OK)
    return;
  rt_log(mworld(m), RT_LOG_ERROR, "manager.room_untold",
         "room=%" PRIu64 " tag=%s", room, game_tag_name(tag));
  rt_stop(mworld(m), room, RT_REASON_USER);
}

/* Every room of the table is told `tag` and let go, and its players are
 * free at once: none is seated here any more. */
static void let_rooms_go(manager_t *m, uint16_t tag) {
  uint32_t n = 0;
  uint64_t *rooms = rt_idmap_sorted_keys(&m->rooms, &n);
  for (uint32_t i = 0; i < n; i++) {
    room_entry_t *e = rt_idmap_del(&m->rooms, rooms[i]);
    let_room_know(m, rooms[i], tag);
    for (int k = 0; k < 2; k++) {
      e->seats[k]->state = P_IDLE;
      e->seats[k]->room = 0;
      release_seat(m, e->seats[k]);
    }
    free(e);
  }
  free(rooms);
}

/* A renew was accepted: the lease holds until then by our clock. */
static void on_cl_lease(manager_t *m, const rt_msg_t *msg) {
  if (msg->buf != NULL && msg->buf->len == sizeof(m->lease_until))
    memcpy(&m->lease_until, msg->buf->data, sizeof(m->lease_until));
}

/* Redis lost its data while this incarnation was up: nobody else knows
 * our games any more, so each ends here as server_lost, stored by its
 * room, and its players are free at once (a player may be matched anew
 * elsewhere before the room has stored it: it must not be seated here
 * meanwhile). The players stay connected; the room tells them. */
static void on_cl_reset(manager_t *m) {
  m->lease_until = 0; /* the next incarnation's renew brings one */
  let_rooms_go(m, GAME_TAG_LOST_HERE);
  on_cl_down(m);
}

/* This incarnation was declared dead: its games are server_lost elsewhere.
 * Every room stops storing nothing, every player is closed (1012) to come
 * back and hear it, and the table starts again. */
static void on_cl_fenced(manager_t *m) {
  m->lease_until = 0;
  let_rooms_go(m, GAME_TAG_FENCED);
  on_cl_down(m);
  uint32_t n = 0;
  uint64_t *clients = rt_idmap_sorted_keys(&m->by_client, &n);
  for (uint32_t i = 0; i < n; i++) {
    rt_msg_t f = rt_msg_make(GAME_TAG_FENCED, NULL, 0);
    if (rt_send(mworld(m), clients[i], &f) < 0)
      rt_stop(mworld(m), clients[i], RT_REASON_USER);
  }
  free(clients);
}

/* ---- Handlers ------------------------------------------------------------ */

static player_t *by_client(const manager_t *m, rt_actor_id_t client) {
  return client != 0 ? rt_idmap_get(&m->by_client, client) : NULL;
}

static void detach_client(manager_t *m, player_t *p) {
  if (p->client == 0)
    return;
  rt_idmap_del(&m->by_client, p->client);
  (void)rt_demonitor(mworld(m), p->monitor);
  p->client = 0;
  p->monitor = 0;
  m->connected--;
}

static int attach_client(manager_t *m, player_t *p, rt_actor_id_t client) {
  int err = rt_idmap_put(&m->by_client, client, p);
  if (err < 0)
    return err;
  err = rt_monitor(mworld(m), m->id, client, &p->monitor);
  if (err < 0) {
    rt_idmap_del(&m->by_client, client);
    return err;
  }
  p->client = client;
  m->connected++;
  return RT_OK;
}

static void on_hello(manager_t *m, const rt_msg_t *msg) {
  rt_buf_t *over = NULL;
  if (msg->buf == NULL || msg->buf->len != sizeof(game_hello_t))
    return;
  game_hello_t hello;
  memcpy(&hello, msg->buf->data, sizeof(hello));
  hello.who.subject[sizeof(hello.who.subject) - 1] = '\0';
  hello.who.name[sizeof(hello.who.name) - 1] = '\0';
  rt_actor_id_t client = msg->from;
  player_t *p = find(m, hello.who.subject);
  if (p != NULL && p->state == P_PLAYING && clustered(m) &&
      rt_now(mworld(m)) >= m->lease_until) {
    /* A resume, but this incarnation's lease has lapsed by its own clock
     * (Redis out of reach, or this process stalled): another instance may
     * have ended the game server_lost and told the player so already, and
     * taking the player back would show a game that is over (the cluster
     * swarm's seed 6634). The room plays on (game_cluster.h, (3)); the
     * player tries again later (1013) and hears from whoever can vouch:
     * this instance once renewed, any instance once it is fenced. */
    m->g->stats.resumes_refused++;
    rt_log(mworld(m), RT_LOG_INFO, "manager.not_now",
           "player=%s room=%" PRIu64 " note=lease_lapsed", p->id, p->room);
    rt_msg_t r = rt_msg_make(GAME_TAG_NOT_NOW, NULL, 0);
    if (rt_send(mworld(m), client, &r) < 0)
      rt_stop(mworld(m), client, RT_REASON_USER);
    return;
  }
  if (p == NULL) {
    p = add_player(m, &hello.who);
    if (p == NULL) {
      send_error(m, client, "server_full", "too many players, try later");
      rt_msg_t r = rt_msg_make(GAME_TAG_REFUSED, NULL, 0);
      if (rt_send(mworld(m), client, &r) < 0)
        rt_stop(mworld(m), client, RT_REASON_USER);
      return;
    }
  }
  memcpy(p->name, hello.who.name, sizeof(p->name));
  if (p->client != 0 && p->client != client) {
    /* Invariant (5): the newer connection wins. */
    rt_msg_t r = rt_msg_make(GAME_TAG_REPLACED, NULL, 0);
    if (rt_send(mworld(m), p->client, &r) < 0) {
      /* Too far behind to be told: it goes all the same. */
      m->g->stats.kicks[GAME_KICK_MAILBOX_FULL]++;
      rt_stop(mworld(m), p->client, RT_REASON_USER);
    }
    detach_client(m, p); /* its kick() counts the replacement */
  }
  if (p->client == 0 && attach_client(m, p, client) < 0) {
    if (p->state == P_IDLE)
      forget_player(m, p);
    return;
  }
  if (p->state == P_PLAYING) {
    /* The room may have ended this instant (Invariant (3)): then there is
     * nothing to resume, and its ENDED makes the player idle. */
    if (rt_alive(mworld(m), p->room)) {
      send_assign(m, p);
      (void)tell_room(m, p, GAME_TAG_BACK);
    } else {
      rt_log(mworld(m), RT_LOG_INFO, "manager.room_ended",
             "room=%" PRIu64 " player=%s tag=hello note=ended_is_queued",
             p->room, p->id);
    }
  } else if (p->state == P_QUEUED) {
    send_frame(m, p, game_proto_queued());
  } else {
    if ((over = missed_take(m, p->id)) != NULL) {
      rt_log(mworld(m), RT_LOG_INFO, "manager.game_over_missed", "player=%s",
             p->id);
      send_over(m, p, over); /* Invariant (6) */
    }
    /* Is this player's game on another instance? Asked even after a
     * missed result: in a cluster the player may have played elsewhere
     * since, and be in a game there now (that GAME_OVER names its room). */
    if (clustered(m))
      (void)to_cluster(m, GAME_TAG_CL_LOOKUP, p);
  }
}

/* A GAME_OVER a connection of the player never sent (Invariant (6)).
 * The connection's DOWN (a signal) has mostly come first: the player is
 * then forgotten (it was idle), or playing again with no connection. */
static void on_missed(manager_t *m, const rt_msg_t *msg) {
  game_missed_t h;
  if (msg->buf == NULL || msg->buf->len <= sizeof(h))
    return;
  memcpy(&h, msg->buf->data, sizeof(h));
  h.id[sizeof(h.id) - 1] = '\0';
  player_t *p = find(m, h.id);
  const char *what;
  if (p != NULL && p->client != 0 && p->client != h.client) {
    /* Back on a newer connection, whose HELLO found nothing kept. */
    if (p->state != P_IDLE) {
      what = "given_up"; /* queued or in a new game: history has it */
      m->g->stats.overs_unsent_given_up++;
    } else {
      what = "told";
      m->g->stats.overs_unsent_told++;
      send_over(
          m, p,
          rt_buf_copy(msg->buf->data + sizeof(h), msg->buf->len - sizeof(h)));
    }
  } else if (p != NULL && p->state != P_IDLE) {
    what = "given_up"; /* a new game since, its connection gone too */
    m->g->stats.overs_unsent_given_up++;
  } else {
    /* A result kept already is an older game's: this one ended later. */
    rt_buf_t *frame =
        rt_buf_copy(msg->buf->data + sizeof(h), msg->buf->len - sizeof(h));
    what = frame != NULL ? "kept" : "no_memory";
    if (frame != NULL)
      missed_put(m, h.id, frame);
    rt_buf_unref(frame);
  }
  rt_log(mworld(m), RT_LOG_INFO, "manager.game_over_unsent",
         "player=%s action=%s", h.id, what);
}

static void on_join(manager_t *m, const rt_msg_t *msg) {
  player_t *p = by_client(m, msg->from);
  if (p == NULL || p->state != P_IDLE)
    return; /* a second JOIN_QUEUE while queued or playing is ignored */
  if (m->queued >= m->g->cfg.queue_max) {
    send_error(m, p->client, "queue_full", "the queue is full, try later");
    return;
  }
  if (clustered(m)) {
    join_cluster(m, p);
    return;
  }
  queue_push(m, p);
  send_frame(m, p, game_proto_queued());
  while (m->queued >= 2)
    start_match(m);
}

static void on_leave(manager_t *m, const rt_msg_t *msg) {
  player_t *p = by_client(m, msg->from);
  if (p != NULL && p->state == P_QUEUED) {
    queue_remove(m, p);
    if (clustered(m))
      (void)to_cluster(m, GAME_TAG_CL_UNQUEUE, p);
  }
}

static void on_down(manager_t *m, const rt_msg_t *msg) {
  rt_down_t d;
  RT_MSG_GET(msg, rt_down_t, &d);
  player_t *p = by_client(m, d.target);
  if (p == NULL || p->monitor != d.monitor)
    return; /* Invariant (5): a replaced connection */
  rt_idmap_del(&m->by_client, p->client);
  p->client = 0;
  p->monitor = 0;
  m->connected--;
  switch (p->state) {
  case P_QUEUED:
    queue_remove(m, p);
    if (clustered(m))
      (void)to_cluster(m, GAME_TAG_CL_UNQUEUE, p);
    forget_player(m, p);
    return;
  case P_PLAYING:
    /* The room runs the grace; a room that has just ended sends ENDED,
     * which forgets the player (Invariant (4)). */
    (void)tell_room(m, p, GAME_TAG_LEFT);
    return;
  case P_IDLE: forget_player(m, p); return;
  }
}

/* A player back on a new connection in the instant its room ended (the
 * room stopped before it heard, or before its HELLO came): the room told
 * an older connection, or none. Told none, this one gets the result. Told
 * an older one (being replaced), that one sends it, or, closing first,
 * hands it back (MISSED) and this one is told then: never both, or the
 * player would hear it twice (the swarm's seed 36113, a second tab).
 * Either way this one leaves the room it may have been assigned. */
static void tell_missed_end(manager_t *m, player_t *p, const game_ended_t *e,
                            rt_buf_t *over) {
  rt_log(mworld(m), RT_LOG_INFO, "manager.game_over_late",
         "room=%" PRIu64 " player=%s told=%s", e->room, p->id,
         e->told[p->role] == 0 ? "none" : "older");
  if (e->told[p->role] == 0)
    send_over(m, p, rt_buf_ref(over));
  game_room_done_t done = {.room = e->room};
  rt_msg_t msg = RT_MSG_OF(GAME_TAG_ROOM_DONE, &done);
  (void)rt_send(mworld(m), p->client, &msg); /* full: it is being kicked */
}

static void on_ended(manager_t *m, const rt_msg_t *msg) {
  game_ended_t e;
  RT_MSG_GET(msg, game_ended_t, &e);
  room_entry_t *entry = rt_idmap_del(&m->rooms, e.room);
  if (entry == NULL)
    return;
  for (int i = 0; i < 2; i++) {
    player_t *p = entry->seats[i];
    RT_WASSERT(mworld(m), p->state == P_PLAYING && p->room == e.room);
    p->state = P_IDLE;
    p->room = 0;
    if (p->client == 0 && e.told[p->role] == 0 && msg->buf != NULL)
      missed_put(m, p->id, msg->buf); /* Invariant (6) */
    if (p->client == 0)
      forget_player(m, p);
    else if (p->client != e.told[p->role] && msg->buf != NULL)
      tell_missed_end(m, p, &e, msg->buf);
  }
  free(entry);
}

static void manager_behaviour(rt_actor_t *self, const rt_msg_t *msg) {
  manager_t *m = rt_state(self);
  switch (msg->tag) {
  case GAME_TAG_HELLO: on_hello(m, msg); break;
  case GAME_TAG_JOIN: on_join(m, msg); break;
  case GAME_TAG_LEAVE: on_leave(m, msg); break;
  case RT_TAG_DOWN: on_down(m, msg); break;
  case GAME_TAG_ENDED: on_ended(m, msg); break;
  case GAME_TAG_MISSED: on_missed(m, msg); break;
  case GAME_TAG_CL_MATCHED: on_cl_matched(m, msg); break;
  case GAME_TAG_CL_MOVE: on_cl_move(m, msg); break;
  case GAME_TAG_CL_LOST: on_cl_lost(m, msg); break;
  case GAME_TAG_CL_UNAVAILABLE: on_cl_unavailable(m, msg); break;
  case GAME_TAG_CL_DOWN: on_cl_down(m); break;
  case GAME_TAG_CL_TAKEN: on_cl_taken(m, msg); break;
  case GAME_TAG_CL_FENCED: on_cl_fenced(m); break;
  case GAME_TAG_CL_RESET: on_cl_reset(m); break;
  case GAME_TAG_CL_LEASE: on_cl_lease(m, msg); break;
  default: break;
  }
  m->g->stats.players = m->players;
  m->g->stats.connected = m->connected;
  m->g->stats.queued = m->queued;
  m->g->stats.rooms = m->rooms.count;
}

static void manager_on_stop(rt_actor_t *self, int reason) {
  (void)reason;
  manager_t *m = rt_state(self);
  for (uint32_t i = 0; i <= m->bucket_mask; i++) {
    player_t *p = m->buckets[i];
    while (p != NULL) {
      player_t *next = p->bucket_next;
      free(p);
      p = next;
    }
  }
  uint32_t n = 0;
  uint64_t *rooms = rt_idmap_sorted_keys(&m->rooms, &n);
  for (uint32_t i = 0; i < n; i++)
    free(rt_idmap_get(&m->rooms, rooms[i]));
  free(rooms);
  rt_idmap_deinit(&m->rooms);
  rt_idmap_deinit(&m->by_client);
  missed_free(m);
  free(m->buckets);
  m->g->manager = 0;
  m->g->manager_state = NULL;
  free(m);
}

int game_manager_spawn(game_t *g, rt_actor_id_t *out) {
  manager_t *m = calloc(1, sizeof(*m));
  if (m == NULL)
    return RT_ENOMEM;
  m->g = g;
  m->bucket_mask = 1023;
  m->buckets = calloc(m->bucket_mask + 1, sizeof(*m->buckets));
  int err = m->buckets == NULL ? RT_ENOMEM : rt_idmap_init(&m->by_client);
  if (err == RT_OK)
    err = rt_idmap_init(&m->rooms);
  if (err == RT_OK)
    err = rt_idmap_init(&m->missed);
  if (err < 0)
    goto fail;
  rt_actor_spec_t spec = {.name = "manager",
                          .behaviour = manager_behaviour,
                          .on_stop = manager_on_stop,
                          .state = m,
                          .mailbox_cap = MANAGER_MAILBOX_CAP,
                          .overflow = RT_OVERFLOW_REJECT};
  err = rt_spawn(g->world, &spec, &m->id);
  if (err < 0)
    goto fail;
  g->manager_state = m;
  *out = m->id;
  return RT_OK;
fail:
  rt_idmap_deinit(&m->by_client);
  rt_idmap_deinit(&m->rooms);
  rt_idmap_deinit(&m->missed);
  free(m->buckets);
  free(m);
  return err;
}

/* ---- Checks (game_check.h): Invariants (1) to (5), and the tables against
 * the live actors
 * ----------------------------------------------------------------- */

#define FAIL(...) (snprintf(why, cap, __VA_ARGS__), -1)

static int check_player(const manager_t *m, const player_t *p, uint32_t bucket,
                        char *why, size_t cap) {
  if (p->id_hash != hash_id(p->id) || (p->id_hash & m->bucket_mask) != bucket)
    return FAIL("player %s: filed under the wrong hash", p->id);
  if (p->state != P_IDLE && p->state != P_QUEUED && p->state != P_PLAYING)
    return FAIL("player %s: state %d", p->id, (int)p->state);
  if (p->client == 0 && p->state != P_PLAYING) /* Invariant (4) */
    return FAIL("player %s: kept with no connection while %s", p->id,
                p->state == P_IDLE ? "idle" : "queued");
  if (p->client != 0 && rt_idmap_get(&m->by_client, p->client) != p)
    return FAIL("player %s: client %" PRIu64 " not mapped back to it", p->id,
                p->client);
  if (p->state == P_PLAYING) {
    const room_entry_t *e = rt_idmap_get(&m->rooms, p->room);
    if (e == NULL) /* Invariant (3) */
      return FAIL("player %s: playing in room %" PRIu64 ", not in the table",
                  p->id, p->room);
    if (p->role > 1 || e->seats[p->role] != p)
      return FAIL("player %s: room %" PRIu64 " does not seat it as p%u", p->id,
                  p->room, p->role + 1);
  } else if (p->room != 0) {
    return FAIL("player %s: not playing but has room %" PRIu64, p->id, p->room);
  }
  return 0;
}

static int check_queue(const manager_t *m, char *why, size_t cap) {
  uint32_t n = 0;
  const player_t *prev = NULL;
  for (const player_t *p = m->q_head; p != NULL; p = p->q_next) {
    if (++n > m->players) /* bounded by what exists: a cycle otherwise */
      return FAIL("queue longer than the players: a cycle");
    if (p->state != P_QUEUED) /* Invariant (1) */
      return FAIL("player %s in the queue but not QUEUED", p->id);
    if (p->q_prev != prev)
      return FAIL("queue links broken at %s", p->id);
    prev = p;
  }
  if (m->q_tail != prev || n != m->queued)
    return FAIL("queue holds %u, counted %u", n, m->queued);
  if (m->queued > m->g->cfg.queue_max)
    return FAIL("queue %u over its limit %u", m->queued, m->g->cfg.queue_max);
  return 0;
}

typedef struct check_ctx {
  const manager_t *m;
  bool quiescent;
  char *why;
  size_t cap;
} check_ctx_t;

static int check_room(void *ctx, uint64_t id, const void *val) {
  const check_ctx_t *c = ctx;
  const room_entry_t *e = val;
  char *why = c->why;
  size_t cap = c->cap;
  if (e->seats[0] == NULL || e->seats[1] == NULL ||
      e->seats[0] == e->seats[1]) /* Invariant (2) */
    return FAIL("room %" PRIu64 ": seats %p and %p", id, (void *)e->seats[0],
                (void *)e->seats[1]);
  for (int k = 0; k < 2; k++) {
    const player_t *p = e->seats[k];
    if (p->state != P_PLAYING || p->room != id || p->role != (uint32_t)k)
      return FAIL("room %" PRIu64 ": seat p%d (%s) is elsewhere (room %" PRIu64
                  ")",
                  id, k + 1, p->id, p->room);
  }
  /* Invariant (3): a room in the table is a live room actor. */
  if (c->quiescent && rt_idmap_get(&c->m->g->rooms_live, id) == NULL)
    return FAIL("room %" PRIu64 " in the table but no such room runs", id);
  return 0;
}

static int check_rooms(const manager_t *m, bool quiescent, char *why,
                       size_t cap) {
  check_ctx_t c = {.m = m, .quiescent = quiescent, .why = why, .cap = cap};
  int rc = rt_idmap_check_each(&m->rooms, check_room, &c);
  if (rc == 0 && quiescent &&
      m->rooms.count + m->g->rooms_detached != m->g->rooms_live.count)
    rc = FAIL("the table has %u rooms (and %u let go), %u room actors run",
              m->rooms.count, m->g->rooms_detached,
              m->g->rooms_live.count);
  return rc;
}

/* Every connection the Manager knows is a live actor: its DOWN would have
 * been delivered otherwise. */
static int check_attached(void *ctx, uint64_t id, const void *val) {
  const check_ctx_t *c = ctx;
  char *why = c->why;
  size_t cap = c->cap;
  if (!rt_alive(c->m->g->world, id))
    return FAIL("client %" PRIu64 " of player %s is gone, still attached", id,
                ((const player_t *)val)->id);
  return 0;
}

int game__manager_check(const game_t *g, bool quiescent, char *why,
                        size_t cap) {
  const manager_t *m = g->manager_state;
  if (m == NULL)
    return 0;
  uint32_t players = 0, connected = 0;
  for (uint32_t b = 0; b <= m->bucket_mask; b++) {
    for (const player_t *p = m->buckets[b]; p != NULL; p = p->bucket_next) {
      if (++players > m->players)
        return FAIL("more players in the table than counted (%u)", m->players);
      int rc = check_player(m, p, b, why, cap);
      if (rc != 0)
        return rc;
      connected += p->client != 0;
    }
  }
  if (players != m->players)
    return FAIL("%u players in the table, counted %u", players, m->players);
  if (players > g->cfg.players_max)
    return FAIL("%u players over the limit %u", players, g->cfg.players_max);
  if (connected != m->connected || m->by_client.count != connected)
    return FAIL("connected: %u players, counted %u, mapped %u", connected,
                m->connected, m->by_client.count);
  int rc = check_queue(m, why, cap);
  if (rc == 0)
    rc = check_rooms(m, quiescent, why, cap);
  if (rc != 0 || !quiescent)
    return rc;
  check_ctx_t c = {.m = m, .quiescent = quiescent, .why = why, .cap = cap};
  return rt_idmap_check_each(&m->by_client, check_attached, &c);
}

static void room_seats(const room_entry_t *e, uint64_t room, game_seat_fn *fn,
                       void *ctx) {
  for (uint32_t k = 0; k < 2; k++)
    if (e->seats[k] != NULL && e->seats[k]->state == P_PLAYING &&
        e->seats[k]->room == room)
      fn(ctx, e->seats[k]->id, room, e->seats[k]->role);
}

typedef struct seat_walk {
  game_seat_fn *fn;
  void *ctx;
} seat_walk_t;

static int seat_walk(void *ctx, uint64_t room, const void *entry) {
  const seat_walk_t *walk = ctx;
  room_seats(entry, room, walk->fn, walk->ctx);
  return 0;
}

void game__manager_each_seat(const game_t *g, game_seat_fn *fn, void *ctx,
                             bool sorted) {
  const manager_t *m = g->manager_state;
  if (m == NULL)
    return;
  if (!sorted) { /* a walk in slot order that never stops */
    seat_walk_t walk = {.fn = fn, .ctx = ctx};
    (void)rt_idmap_check_each(&m->rooms, seat_walk, &walk);
    return;
  }
  uint32_t n = 0;
  uint64_t *ids = rt_idmap_sorted_keys(&m->rooms, &n);
  for (uint32_t i = 0; i < n; i++)
    room_seats(rt_idmap_get(&m->rooms, ids[i]), ids[i], fn, ctx);
  free(ids);
}

int game__manager_seat(const game_t *g, const char *id, rt_actor_id_t *room,
                       uint32_t *role) {
  const manager_t *m = g->manager_state;
  const player_t *p = m != NULL ? find(m, id) : NULL;
  if (p == NULL)
    return -1;
  if (p->state != P_PLAYING)
    return 0;
  *room = p->room;
  *role = p->role;
  return 1;
}

bool game__manager_queued(const game_t *g, const char *id) {
  const manager_t *m = g->manager_state;
  const player_t *p = m != NULL ? find(m, id) : NULL;
  return p != NULL && p->state == P_QUEUED;
}
