/* game_check.h: whole-game invariant checks, for simulators and tests.
 *
 * game_check walks the game's actors' state read-only and returns the first
 * broken invariant, in the style of SQLite's whole-object checks. It checks:
 *  - the Manager (game_manager.c, Invariants (1) to (5)): every player is
 *    idle, queued or playing; the queue is exactly the queued players, in
 *    order, within queue_max; a playing player's room seats it, so a player
 *    is in at most one room; a player without a connection is kept only
 *    while playing; the connection table maps each connection to its player;
 *  - the Manager's tables against the live actors: each room in its table is
 *    a running Room and every running Room is in it; each attached
 *    connection is a live Client; each seat of each Room is a player the
 *    Manager has playing in that Room;
 *  - each Room (game_room.c, Invariants (1) to (5)): each score equals its
 *    accepted clicks, doubled inside that seat's own bonus windows (an audit
 *    recomputed from the claims, apart from the scoring path); at most one
 *    golden cookie, only while running; a finished room's result is its
 *    game; no tick arrives more than a tick late and none due is pending;
 *  - each Client: its outbound queue within both bounds, at most one tick
 *    queued, and no output stuck past the write wait without a kick;
 *  - the counters: every started room is running or finished once, and no
 *    room stopped unfinished; the Store's pending results within bounds.
 *
 * Call it between turns. The checks that compare one actor's view with
 * another's need every message sent to have been delivered; they run only
 * when no actor is ready (a simulator between sim_world_run calls). The game
 * must not depend on sim/ or net/, so a simulator reaches this through
 * tools/ wiring. Cost: O(players + rooms + clients) and an allocation.
 */
#ifndef GAME_CHECK_H
#define GAME_CHECK_H

#include "game.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* 0 when every invariant holds; -1 with the first violation in why (cap
 * bytes, NUL-terminated). g is borrowed. */
int game_check(const game_t *g, char *why, size_t cap);

/* How many Room and Client actors run now (liveness checks). */
void game_live_counts(const game_t *g, uint32_t *rooms, uint32_t *clients);

/* The actor ids of the running Rooms, ascending, in a malloc'd array (the
 * caller frees it; NULL when there are none or memory ran out: see *n). */
uint64_t *game_live_rooms(const game_t *g, uint32_t *n);
bool game_room_live(const game_t *g, rt_actor_id_t room);
/* A live room the Manager let go (Redis lost its data): it seats nobody
 * and is storing its server_lost. */
bool game_room_detached(const game_t *g, rt_actor_id_t room);
/* A live room's id ("roomId"): 1 with it in out, or 0 when not live. */
int game_room_public_id(const game_t *g, rt_actor_id_t room, char *out,
                        size_t cap);

/* A live room's result once its game has ended (it may be claiming its
 * end or storing it): 1 with it in *out, or 0 (not live, or playing). */
int game_room_result(const game_t *g, rt_actor_id_t room, game_result_t *out);

/* The Manager's view of player `id` (a user id): 1 with its room and role
 * when playing, 0 when known but not playing, -1 when unknown. */
int game_player_seat(const game_t *g, const char *id, rt_actor_id_t *room,
                     uint32_t *role);
/* Whether the Manager has player `id` (a user id) in its queue. */
bool game_player_queued(const game_t *g, const char *id);
/* Every player the Manager seats (those game_player_seat answers 1 for),
 * by room id ascending, p1 then p2: fn(ctx, user id, room, role). One pass
 * over the Manager's rooms, for a checker that would otherwise look up
 * every player it knows on every instance. fn must not change g. */
typedef void game_seat_fn(void *ctx, const char *id, rt_actor_id_t room,
                          uint32_t role);
void game_each_seat(const game_t *g, game_seat_fn *fn, void *ctx);
/* The same seats in no stated order (the Manager's table as it lies): for
 * a checker that only learns whether something is wrong, and walks again
 * with game_each_seat to name what, so that what it names never depends
 * on a table's layout. One pass, no sort, no lookup per room. */
void game_each_seat_unordered(const game_t *g, game_seat_fn *fn, void *ctx);

/* A check of every live room: fn(ctx, actor id, its public id ("roomId"),
 * whether it is detached) until one answers nonzero, which is returned (0:
 * all passed). The first failing room in ascending actor id is the one
 * that answers, as a walk over game_live_rooms would find it; fn must be
 * pure (rt_idmap_check_each). g is borrowed. */
typedef int game_room_check_fn(void *ctx, rt_actor_id_t room,
                               const char *public_id, bool detached);
int game_check_each_room(const game_t *g, game_room_check_fn *fn, void *ctx);

#endif
