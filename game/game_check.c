/* game_check.c: the whole-game check (see game_check.h). Each actor module
 * checks its own state (game__*_check); this file walks them in id order and
 * checks what lies between them. */
#include "game_check.h"

#include "game_int.h"
#include "game_store.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FAIL(...) (snprintf(why, cap, __VA_ARGS__), -1)

/* Each seat of a running Room is a player the Manager has in that Room. */
static int check_seated(const game_t *g, uint64_t room_id, const void *room,
                        char *why, size_t cap) {
  const char *ids[2];
  game__room_seats(room, &ids[0], &ids[1]);
  for (uint32_t k = 0; k < 2; k++) {
    rt_actor_id_t in = 0;
    uint32_t role = 0;
    int seat = game__manager_seat(g, ids[k], &in, &role);
    if (seat != 1 || in != room_id || role != k)
      return FAIL("room %" PRIu64 " seats %s as p%u; the Manager has it %s "
                  "(room %" PRIu64 ", p%u)",
                  room_id, ids[k], k + 1,
                  seat < 0    ? "unknown"
                  : seat == 0 ? "not playing"
                              : "playing",
                  in, role + 1);
  }
  return 0;
}

typedef struct check_ctx {
  const game_t *g;
  bool quiescent;
  char *why;
  size_t cap;
} check_ctx_t;

static int check_room(void *ctx, uint64_t id, const void *room) {
  const check_ctx_t *c = ctx;
  int rc = game__room_check(c->g, room, c->quiescent, c->why, c->cap);
  if (rc == 0 && c->quiescent && c->g->manager_state != NULL &&
      !game__room_detached(room))
    rc = check_seated(c->g, id, room, c->why, c->cap);
  return rc;
}

static int check_client(void *ctx, uint64_t id, const void *client) {
  (void)id;
  const check_ctx_t *c = ctx;
  return game__client_check(c->g, client, c->quiescent, c->why, c->cap);
}

static int check_counters(const game_t *g, char *why, size_t cap) {
  const game_stats_t *s = &g->stats;
  uint64_t finished = 0;
  for (int i = 0; i < GAME_END_REASON_COUNT_; i++)
    finished += s->rooms_finished[i];
  /* Each room ends exactly once: started = finished + running, and in a
   * cluster + ended server_lost (declared lost elsewhere as it ended) +
   * fenced (taken from a fenced instance) (+ lost, a bug). */
  if (s->rooms_started != finished + g->rooms_live.count +
                              s->rooms_server_lost + s->rooms_fenced +
                              s->rooms_lost)
    return FAIL("rooms: %" PRIu64 " started, %" PRIu64 " finished, %u running, "
                "%" PRIu64 " server_lost, %" PRIu64 " fenced, %" PRIu64 " lost",
                s->rooms_started, finished, g->rooms_live.count,
                s->rooms_server_lost, s->rooms_fenced, s->rooms_lost);
  if (s->rooms_lost > 0)
    return FAIL("%" PRIu64 " rooms stopped before their result was stored",
                s->rooms_lost);
  game_store_stats_t st;
  game_store_get_stats(g->store, &st);
  if (st.pending > GAME_STORE_PENDING_MAX)
    return FAIL("store: %u results pending, over %u", st.pending,
                GAME_STORE_PENDING_MAX);
  return 0;
}

int game_check(const game_t *g, char *why, size_t cap) {
  bool quiescent = !rt_world_has_ready(g->world);
  int rc = game__manager_check(g, quiescent, why, cap);
  check_ctx_t c = {.g = g, .quiescent = quiescent, .why = why, .cap = cap};
  if (rc == 0)
    rc = rt_idmap_check_each(&g->rooms_live, check_room, &c);
  if (rc == 0)
    rc = rt_idmap_check_each(&g->clients_live, check_client, &c);
  if (rc == 0)
    rc = check_counters(g, why, cap);
  return rc;
}

void game_live_counts(const game_t *g, uint32_t *rooms, uint32_t *clients) {
  *rooms = g->rooms_live.count;
  *clients = g->clients_live.count;
}

uint64_t *game_live_rooms(const game_t *g, uint32_t *n) {
  return rt_idmap_sorted_keys(&g->rooms_live, n);
}

int game_room_public_id(const game_t *g, rt_actor_id_t room, char *out,
                        size_t cap) {
  const void *r = room != 0 ? rt_idmap_get(&g->rooms_live, room) : NULL;
  if (r == NULL)
    return 0;
  const char *id = game__room_public_id(r);
  size_t n = strnlen(id, cap - 1); /* cap > 0 */
  memcpy(out, id, n);
  out[n] = '\0';
  return 1;
}

int game_room_result(const game_t *g, rt_actor_id_t room, game_result_t *out) {
  const void *r = room != 0 ? rt_idmap_get(&g->rooms_live, room) : NULL;
  return r != NULL ? game__room_result(r, out) : 0;
}

bool game_room_detached(const game_t *g, rt_actor_id_t room) {
  const void *r = room != 0 ? rt_idmap_get(&g->rooms_live, room) : NULL;
  return r != NULL && game__room_detached(r);
}

bool game_room_live(const game_t *g, rt_actor_id_t room) {
  return room != 0 && rt_idmap_get(&g->rooms_live, room) != NULL;
}

int game_player_seat(const game_t *g, const char *id, rt_actor_id_t *room,
                     uint32_t *role) {
  return game__manager_seat(g, id, room, role);
}

bool game_player_queued(const game_t *g, const char *id) {
  return game__manager_queued(g, id);
}

void game_each_seat(const game_t *g, game_seat_fn *fn, void *ctx) {
  game__manager_each_seat(g, fn, ctx, true);
}

void game_each_seat_unordered(const game_t *g, game_seat_fn *fn, void *ctx) {
  game__manager_each_seat(g, fn, ctx, false);
}

typedef struct each_room {
  game_room_check_fn *fn;
  void *ctx;
} each_room_t;

static int each_room(void *ctx, uint64_t id, const void *room) {
  const each_room_t *e = ctx;
  return e->fn(e->ctx, id, game__room_public_id(room),
               game__room_detached(room));
}

int game_check_each_room(const game_t *g, game_room_check_fn *fn, void *ctx) {
  each_room_t e = {.fn = fn, .ctx = ctx};
  return rt_idmap_check_each(&g->rooms_live, each_room, &e);
}
