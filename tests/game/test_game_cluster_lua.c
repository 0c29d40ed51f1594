/* test_game_cluster_lua.c: the Cluster's Lua scripts against a real Redis.
 *
 * Each script is one atomic step of game_cluster.h's guarantees; these
 * tests set up the keys a step meets (a lapsed lease, a ghost ticket, a
 * game declared lost, a fenced incarnation) and check the reply and every
 * key the step leaves. One throwaway redis-server per test (tests/lib/
 * redis_tmp.h), spoken to with hiredis's blocking client: this is test
 * code, never an actor.
 */
#include "game_cluster_lua.h"
#include "redis_tmp.h"

#include <criterion/criterion.h>
#include <hiredis/hiredis.h>
#include <stdarg.h>
#include <string.h>

static redis_tmp_t server;
static redisContext *rc;

static void setup(void) {
  cr_assert_eq(redis_tmp_start(&server), 0, "redis-server did not start");
  struct timeval tv = {.tv_sec = 5};
  rc = redisConnectWithTimeout("127.0.0.1", server.port, tv);
  cr_assert(rc != NULL && rc->err == 0);
}

static void teardown(void) {
  if (rc != NULL)
    redisFree(rc);
  rc = NULL;
  redis_tmp_stop(&server);
}

TestSuite(cluster_lua, .init = setup, .fini = teardown, .timeout = 30);

/* Run a script with its ARGV (NULL-terminated); the reply (caller frees). */
static redisReply *eval(const char *script, ...) {
  const char *argv[16] = {"EVAL", script, "0"};
  size_t lens[16];
  int argc = 3;
  va_list ap;
  va_start(ap, script);
  const char *a;
  while ((a = va_arg(ap, const char *)) != NULL && argc < 16)
    argv[argc++] = a;
  va_end(ap);
  for (int i = 0; i < argc; i++)
    lens[i] = strlen(argv[i]);
  redisReply *r = redisCommandArgv(rc, argc, argv, lens);
  cr_assert(r != NULL, "no reply");
  cr_assert_neq(r->type, REDIS_REPLY_ERROR, "script error: %s", r->str);
  return r;
}

/* A plain command's reply as text ("" for nil, the number for integers). */
static const char *cmd(char *out, size_t cap, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  redisReply *r = redisvCommand(rc, fmt, ap);
  va_end(ap);
  cr_assert(r != NULL);
  if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS)
    snprintf(out, cap, "%s", r->str);
  else if (r->type == REDIS_REPLY_INTEGER)
    snprintf(out, cap, "%lld", r->integer);
  else
    out[0] = '\0';
  freeReplyObject(r);
  return out;
}

static char buf[512];
#define Q(...) cmd(buf, sizeof(buf), __VA_ARGS__)

static const char *el(const redisReply *r, size_t i) {
  cr_assert_eq(r->type, REDIS_REPLY_ARRAY);
  cr_assert_lt(i, r->elements);
  return r->element[i]->type == REDIS_REPLY_STRING ? r->element[i]->str : NULL;
}

static long long eli(const redisReply *r, size_t i) {
  cr_assert_eq(r->type, REDIS_REPLY_ARRAY);
  cr_assert_lt(i, r->elements);
  cr_assert_eq(r->element[i]->type, REDIS_REPLY_INTEGER);
  return r->element[i]->integer;
}

static void renew(const char *me, const char *url) {
  redisReply *r = eval(LUA_RENEW, me, url, "3000", NULL);
  cr_assert_eq(eli(r, 0), 1);
  freeReplyObject(r);
}

static redisReply *join(const char *p, const char *me, const char *room) {
  return eval(LUA_MATCH, p, "name", me, room, "60000", "64", NULL);
}

/* The owner me claims room's end, with the result it will store: x won
 * 12:9 on time (every room here seats x or u first). */
static redisReply *claim(const char *room, const char *me) {
  return eval(LUA_CLAIM, room, me, "time", "x", "12", "9", "1700000000", NULL);
}

/* ---- Leases -------------------------------------------------------------- */

Test(cluster_lua, renew_sets_the_lease_until_declared_dead) {
  redisReply *r = eval(LUA_RENEW, "a/1", "ws://a/ws", "3000", NULL);
  cr_assert_eq(eli(r, 0), 1);
  cr_assert_eq(eli(r, 1), 0);
  freeReplyObject(r);
  cr_assert_str_eq(Q("GET oc:lease:a/1"), "ws://a/ws");
  long long ttl = atoll(Q("PTTL oc:lease:a/1"));
  cr_assert(ttl > 2000 && ttl <= 3000, "ttl %lld", ttl);
  cr_assert_str_eq(Q("SISMEMBER oc:epochs a/1"), "1");
  /* Someone acted on a/1's lapse: it may never renew again. */
  Q("SET oc:dead:a/1 1");
  Q("DEL oc:lease:a/1");
  r = eval(LUA_RENEW, "a/1", "ws://a/ws", "3000", NULL);
  cr_assert_eq(eli(r, 0), 0);
  freeReplyObject(r);
  cr_assert_str_eq(Q("EXISTS oc:lease:a/1"), "0");
}

Test(cluster_lua, renew_reaps_a_lapsed_incarnation_and_its_tickets) {
  renew("b/1", "ws://b/ws");
  redisReply *r = join("q", "b/1", "r-1");
  cr_assert_str_eq(el(r, 0), "queued");
  freeReplyObject(r);
  /* The player's ticket moved to c/1 since: not b/1's to purge. */
  renew("c/1", "ws://c/ws");
  Q("SADD oc:tickets:b/1 moved");
  Q("HSET oc:ticket:moved e c/1 n M");
  Q("ZADD oc:queue 99 moved");
  Q("DEL oc:lease:b/1"); /* b/1's lease lapsed */
  r = eval(LUA_RENEW, "a/1", "ws://a/ws", "3000", NULL);
  cr_assert_eq(eli(r, 0), 1);
  cr_assert_eq(eli(r, 1), 1, "one ticket purged, not the moved one");
  freeReplyObject(r);
  cr_assert_str_eq(Q("EXISTS oc:dead:b/1"), "1");
  cr_assert_str_eq(Q("EXISTS oc:ticket:q"), "0");
  cr_assert_str_eq(Q("ZSCORE oc:queue q"), "");
  cr_assert_str_eq(Q("ZSCORE oc:queue moved"), "99");
  cr_assert_str_eq(Q("SISMEMBER oc:epochs b/1"), "0");
  cr_assert_str_eq(Q("SISMEMBER oc:epochs c/1"), "1");
}

/* ---- Matchmaking --------------------------------------------------------- */

Test(cluster_lua, a_pair_across_instances_is_one_room_and_a_note) {
  renew("a/1", "ws://a/ws");
  renew("b/1", "ws://b/ws");
  redisReply *r = join("x", "a/1", "ra-1");
  cr_assert_str_eq(el(r, 0), "queued");
  freeReplyObject(r);
  r = join("y", "b/1", "rb-1");
  cr_assert_str_eq(el(r, 0), "matched");
  cr_assert_str_eq(el(r, 1), "x");
  cr_assert_str_eq(el(r, 3), "a/1");
  freeReplyObject(r);
  cr_assert_str_eq(Q("HGET oc:room:rb-1 e"), "b/1");
  cr_assert_str_eq(Q("HGET oc:room:rb-1 p1"), "x");
  cr_assert_str_eq(Q("HGET oc:room:rb-1 p2"), "y");
  cr_assert_str_eq(Q("GET oc:presence:x"), "rb-1");
  cr_assert_str_eq(Q("GET oc:presence:y"), "rb-1");
  cr_assert_str_eq(Q("LINDEX oc:inbox:a/1 0"), "M\tx\trb-1\tws://b/ws");
  cr_assert_str_eq(Q("ZCARD oc:queue"), "0");
  cr_assert_str_eq(Q("EXISTS oc:ticket:x"), "0");
}

Test(cluster_lua, never_a_player_with_himself) {
  renew("a/1", "ws://a/ws");
  renew("b/1", "ws://b/ws");
  redisReply *r = join("x", "a/1", "r-1");
  cr_assert_str_eq(el(r, 0), "queued");
  freeReplyObject(r);
  /* x again, from b: its ticket moves (a is told), x is not its own
   * opponent. */
  r = join("x", "b/1", "r-2");
  cr_assert_str_eq(el(r, 0), "queued");
  freeReplyObject(r);
  cr_assert_str_eq(Q("ZCARD oc:queue"), "1");
  cr_assert_str_eq(Q("HGET oc:ticket:x e"), "b/1");
  cr_assert_str_eq(Q("SISMEMBER oc:tickets:a/1 x"), "0");
  cr_assert_str_eq(Q("LINDEX oc:inbox:a/1 0"), "T\tx");
}

Test(cluster_lua, a_ghost_ticket_is_purged_never_matched) {
  renew("a/1", "ws://a/ws");
  renew("g/1", "ws://g/ws");
  redisReply *r = join("ghost", "g/1", "r-1");
  freeReplyObject(r);
  Q("DEL oc:lease:g/1"); /* g/1 died; nobody has reaped it yet */
  r = join("x", "a/1", "r-2");
  cr_assert_str_eq(el(r, 0), "queued");
  cr_assert_eq(eli(r, 1), 1);
  freeReplyObject(r);
  cr_assert_str_eq(Q("EXISTS oc:dead:g/1"), "1");
  cr_assert_str_eq(Q("EXISTS oc:ticket:ghost"), "0");
  cr_assert_str_eq(Q("ZCARD oc:queue"), "1");
}

Test(cluster_lua, a_dead_incarnation_takes_no_ticket) {
  renew("a/1", "ws://a/ws");
  Q("SET oc:dead:a/1 1");
  redisReply *r = join("x", "a/1", "r-1");
  cr_assert_str_eq(el(r, 0), "fenced");
  freeReplyObject(r);
  cr_assert_str_eq(Q("ZCARD oc:queue"), "0");
}

Test(cluster_lua, a_player_in_a_live_game_is_sent_there) {
  renew("a/1", "ws://a/ws");
  renew("b/1", "ws://b/ws");
  freeReplyObject(join("x", "a/1", "r-1"));
  freeReplyObject(join("y", "a/1", "r-2")); /* a owns r-2 */
  redisReply *r = join("x", "b/1", "r-3");
  cr_assert_str_eq(el(r, 0), "playing");
  cr_assert_str_eq(el(r, 1), "r-2");
  cr_assert_str_eq(el(r, 2), "a/1");
  cr_assert_str_eq(el(r, 3), "ws://a/ws");
  freeReplyObject(r);
  cr_assert_str_eq(Q("ZCARD oc:queue"), "0");
}

/* Swarm seed 100089: x's game's owner a/1 stalled past its lease, and x
 * joined again on b/1 before anyone reaped a/1. x is free to play, but a/1
 * is marked dead in the same step: else it renews on waking (nothing
 * reaped it) and plays the game on, x seated in two rooms of two owners
 * with live leases. */
Test(cluster_lua,
     a_player_whose_owner_lapsed_plays_again_and_the_owner_is_fenced) {
  renew("a/1", "ws://a/ws");
  renew("b/1", "ws://b/ws");
  freeReplyObject(join("x", "a/1", "r-1"));
  freeReplyObject(join("y", "a/1", "r-2")); /* a owns r-2 */
  Q("DEL oc:lease:a/1");                    /* a stalled: its lease lapsed */
  redisReply *r = join("x", "b/1", "r-3");
  cr_assert_str_eq(el(r, 0), "queued");
  freeReplyObject(r);
  cr_assert_str_eq(Q("EXISTS oc:dead:a/1"), "1", "the lapsed owner fenced");
  r = eval(LUA_RENEW, "a/1", "ws://a/ws", "3000", NULL);
  cr_assert_eq(eli(r, 0), 0, "a wakes fenced");
  freeReplyObject(r);
  cr_assert_str_eq(Q("EXISTS oc:lease:a/1"), "0");
}

Test(cluster_lua, unqueue_takes_only_a_ticket_still_mine) {
  renew("a/1", "ws://a/ws");
  renew("b/1", "ws://b/ws");
  freeReplyObject(join("x", "a/1", "r-1"));
  redisReply *r = eval(LUA_UNQUEUE, "x", "b/1", NULL);
  cr_assert_eq(r->integer, 0);
  freeReplyObject(r);
  r = eval(LUA_UNQUEUE, "x", "a/1", NULL);
  cr_assert_eq(r->integer, 1);
  freeReplyObject(r);
  cr_assert_str_eq(Q("ZCARD oc:queue"), "0");
  cr_assert_str_eq(Q("SCARD oc:tickets:a/1"), "0");
}

/* ---- Where a game is, and how it ends ------------------------------------ */

static void cross_game(void) {
  renew("a/1", "ws://a/ws");
  renew("b/1", "ws://b/ws");
  freeReplyObject(join("x", "a/1", "r-1"));
  freeReplyObject(join("y", "b/1", "r-2")); /* b owns r-2 */
}

Test(cluster_lua, lookup_sends_a_player_to_the_live_owner) {
  cross_game();
  redisReply *r = eval(LUA_LOOKUP, "x", "a/1", NULL);
  cr_assert_str_eq(el(r, 0), "move");
  cr_assert_str_eq(el(r, 1), "r-2");
  cr_assert_str_eq(el(r, 2), "ws://b/ws");
  freeReplyObject(r);
  r = eval(LUA_LOOKUP, "y", "b/1", NULL);
  cr_assert_str_eq(el(r, 0), "here");
  freeReplyObject(r);
  r = eval(LUA_LOOKUP, "nobody", "a/1", NULL);
  cr_assert_str_eq(el(r, 0), "none");
  freeReplyObject(r);
}

Test(cluster_lua, a_dead_owners_game_is_lost_once_and_the_owner_fenced) {
  cross_game();
  Q("DEL oc:lease:b/1"); /* b stalled past its lease */
  redisReply *r = eval(LUA_LOOKUP, "x", "a/1", NULL);
  cr_assert_str_eq(el(r, 0), "lost");
  cr_assert_str_eq(el(r, 1), "r-2");
  cr_assert_str_eq(el(r, 2), "x");
  cr_assert_str_eq(el(r, 4), "y");
  freeReplyObject(r);
  cr_assert_str_eq(Q("GET oc:end:r-2"), "lost");
  cr_assert_str_eq(Q("EXISTS oc:dead:b/1"), "1");
  /* y, back anywhere, hears the same. */
  r = eval(LUA_LOOKUP, "y", "a/1", NULL);
  cr_assert_str_eq(el(r, 0), "lost");
  freeReplyObject(r);
  /* b wakes: its claim loses, its renew finds it dead. */
  r = claim("r-2", "b/1");
  cr_assert_str_eq(r->str, "lost");
  freeReplyObject(r);
  r = eval(LUA_RENEW, "b/1", "ws://b/ws", "3000", NULL);
  cr_assert_eq(eli(r, 0), 0);
  freeReplyObject(r);
}

Test(cluster_lua, the_owners_claim_ends_the_game_once) {
  cross_game();
  redisReply *r = claim("r-2", "b/1");
  cr_assert_str_eq(r->str, "done");
  freeReplyObject(r);
  cr_assert_str_eq(Q("GET oc:end:r-2"), "done");
  cr_assert_str_eq(Q("EXISTS oc:presence:x"), "0");
  cr_assert_str_eq(Q("EXISTS oc:presence:y"), "0");
  /* The result is kept, a day, until the owner's row is in. */
  cr_assert_str_eq(Q("HGET oc:room:r-2 reason"), "time");
  cr_assert_str_eq(Q("HGET oc:room:r-2 winner"), "x");
  cr_assert_str_eq(Q("HGET oc:room:r-2 s1"), "12");
  cr_assert_str_eq(Q("HGET oc:room:r-2 s2"), "9");
  cr_assert_str_eq(Q("HGET oc:room:r-2 at"), "1700000000");
  long long ttl = atoll(Q("PTTL oc:room:r-2"));
  cr_assert(ttl > 86000000 && ttl <= 86400000, "kept a day: %lld", ttl);
  cr_assert_str_eq(Q("SISMEMBER oc:rooms:b/1 r-2"), "1");
  /* A claim sent again (the reply was lost) is still the owner's. */
  r = claim("r-2", "b/1");
  cr_assert_str_eq(r->str, "done");
  freeReplyObject(r);
  /* The row is in: Redis forgets the room. */
  r = eval(LUA_FINISHED, "r-2", NULL);
  cr_assert_eq(r->integer, 1);
  freeReplyObject(r);
  cr_assert_str_eq(Q("EXISTS oc:room:r-2"), "0");
  cr_assert_str_eq(Q("SISMEMBER oc:rooms:b/1 r-2"), "0");
  /* The owner dying after the end changes nothing: nothing to lose. */
  Q("DEL oc:lease:b/1");
  r = eval(LUA_LOOKUP, "x", "a/1", NULL);
  cr_assert_str_eq(el(r, 0), "none");
  freeReplyObject(r);
  cr_assert_str_eq(Q("GET oc:end:r-2"), "done");
}

Test(cluster_lua, a_fenced_owner_claims_nothing) {
  cross_game();
  Q("SET oc:dead:b/1 1");
  redisReply *r = claim("r-2", "b/1");
  cr_assert_str_eq(r->str, "lost");
  freeReplyObject(r);
  cr_assert_str_eq(Q("EXISTS oc:end:r-2"), "0");
}

Test(cluster_lua, the_reaper_ends_a_dead_owners_games_once) {
  cross_game();                                        /* b owns r-2 (x, y) */
  freeReplyObject(join("u", "b/1", "r-3"));            /* queued on b */
  freeReplyObject(join("v", "b/1", "r-4"));            /* b owns r-4 (u, v) */
  redisReply *r = claim("r-4", "b/1");                 /* r-4 ended ... */
  freeReplyObject(r);
  freeReplyObject(eval(LUA_FINISHED, "r-4", NULL)); /* ... and is stored */
  Q("DEL oc:lease:b/1");
  r = eval(LUA_RENEW, "a/1", "ws://a/ws", "3000", NULL);
  cr_assert_eq(eli(r, 0), 1);
  cr_assert_eq(r->elements, 12, "one game to store: r-2, not the ended r-4");
  cr_assert_str_eq(el(r, 2), "r-2");
  cr_assert_str_eq(el(r, 3), "x");
  cr_assert_str_eq(el(r, 5), "y");
  for (size_t i = 7; i < 12; i++)
    cr_assert_str_eq(el(r, i), "", "a lost game has no result: %zu", i);
  freeReplyObject(r);
  cr_assert_str_eq(Q("GET oc:end:r-2"), "lost");
  cr_assert_str_eq(Q("GET oc:end:r-4"), "done");
  cr_assert_str_eq(Q("EXISTS oc:dead:b/1"), "1");
  /* Reaped once, but stored by nobody yet: every renew returns it (the
   * reply that carried it may have been lost with its connection), to
   * any instance, until one's STORED says its Store holds the row. */
  renew("b/2", "ws://b/ws");
  r = eval(LUA_RENEW, "b/2", "ws://b/ws", "3000", NULL);
  cr_assert_eq(r->elements, 12, "still awaiting its row");
  cr_assert_str_eq(el(r, 2), "r-2");
  freeReplyObject(r);
  r = eval(LUA_STORED, "r-2", NULL);
  freeReplyObject(r);
  r = eval(LUA_RENEW, "a/1", "ws://a/ws", "3000", NULL);
  cr_assert_eq(r->elements, 2, "stored: returned no more");
  freeReplyObject(r);
  long long ttl = atoll(Q("PTTL oc:room:r-2"));
  cr_assert(ttl > 500000 && ttl <= 600000, "kept ten minutes: %lld", ttl);
  /* x, back, hears it. */
  r = eval(LUA_LOOKUP, "x", "a/1", NULL);
  cr_assert_str_eq(el(r, 0), "lost");
  freeReplyObject(r);
}

Test(cluster_lua, a_claimed_game_whose_owner_dies_before_its_row_is_stored_so) {
  /* The swarm's seed 14204: b claimed r-2's end, its Store had not
   * written the row, and b crashed. The reaper stores b's result. */
  cross_game();
  redisReply *r = claim("r-2", "b/1");
  cr_assert_str_eq(r->str, "done");
  freeReplyObject(r);
  Q("DEL oc:lease:b/1");
  r = eval(LUA_RENEW, "a/1", "ws://a/ws", "3000", NULL);
  cr_assert_eq(eli(r, 0), 1);
  cr_assert_eq(r->elements, 12, "r-2 awaits its row");
  const char *want[] = {"r-2",  "x", "name", "y", "name",
                        "time", "x", "12",   "9", "1700000000"};
  for (size_t i = 0; i < 10; i++)
    cr_assert_str_eq(el(r, 2 + i), want[i], "field %zu", i);
  freeReplyObject(r);
  cr_assert_str_eq(Q("GET oc:end:r-2"), "done", "still the owner's end");
  cr_assert_str_eq(Q("EXISTS oc:dead:b/1"), "1");
  /* Returned until stored; a player back hears no game (it is over). */
  r = eval(LUA_LOOKUP, "x", "a/1", "ws://a/ws", NULL);
  cr_assert_str_eq(el(r, 0), "none");
  freeReplyObject(r);
  r = eval(LUA_RENEW, "a/1", "ws://a/ws", "3000", NULL);
  cr_assert_eq(r->elements, 12);
  freeReplyObject(r);
  freeReplyObject(eval(LUA_STORED, "r-2", NULL));
  r = eval(LUA_RENEW, "a/1", "ws://a/ws", "3000", NULL);
  cr_assert_eq(r->elements, 2, "stored: returned no more");
  freeReplyObject(r);
}

Test(cluster_lua, finished_forgets_a_claimed_room_even_once_reaped) {
  /* b was reaped (cut off) while its Store wrote the row; its FINISHED
   * then lands: nobody need store the row again. */
  cross_game();
  freeReplyObject(claim("r-2", "b/1"));
  Q("DEL oc:lease:b/1");
  redisReply *r = eval(LUA_RENEW, "a/1", "ws://a/ws", "3000", NULL);
  cr_assert_eq(r->elements, 12);
  freeReplyObject(r);
  r = eval(LUA_FINISHED, "r-2", NULL);
  cr_assert_eq(r->integer, 1);
  freeReplyObject(r);
  cr_assert_str_eq(Q("ZCARD oc:unstored"), "0");
  cr_assert_str_eq(Q("EXISTS oc:room:r-2"), "0");
  /* Not a claimed end (lost, or unknown): FINISHED touches nothing. */
  renew("c/1", "ws://c/ws");
  freeReplyObject(join("p", "c/1", "r-5"));
  freeReplyObject(join("q", "c/1", "r-6"));
  Q("SET oc:end:r-6 lost");
  r = eval(LUA_FINISHED, "r-6", NULL);
  cr_assert_eq(r->integer, 0);
  freeReplyObject(r);
  cr_assert_str_eq(Q("EXISTS oc:room:r-6"), "1");
}

/* ---- What the first simulated cluster swarms found (session 10) ---------- */

Test(cluster_lua, an_owner_at_my_own_url_that_is_not_me_is_an_earlier_process) {
  /* a/1 owned r-2 and crashed; a/2 restarted at the same URL within a/1's
   * lease. A MOVE there would send the player back to a/2 forever. */
  renew("a/1", "ws://a/ws");
  renew("b/1", "ws://b/ws");
  freeReplyObject(join("x", "b/1", "r-1"));
  freeReplyObject(join("y", "a/1", "r-2")); /* a/1 owns r-2 */
  renew("a/2", "ws://a/ws");
  redisReply *r = eval(LUA_LOOKUP, "x", "a/2", "ws://a/ws", NULL);
  cr_assert_str_eq(el(r, 0), "lost", "got %s", el(r, 0));
  cr_assert_str_eq(el(r, 1), "r-2");
  freeReplyObject(r);
  cr_assert_str_eq(Q("GET oc:end:r-2"), "lost");
  cr_assert_str_eq(Q("EXISTS oc:dead:a/1"), "1");
  /* Another instance still sends the player to a live owner at its URL. */
  renew("a/3", "ws://a/ws");
  renew("c/1", "ws://c/ws");
  freeReplyObject(join("p", "c/1", "r-3"));
  freeReplyObject(join("q", "a/3", "r-4")); /* a/3 owns r-4 */
  r = eval(LUA_LOOKUP, "p", "b/1", "ws://b/ws", NULL);
  cr_assert_str_eq(el(r, 0), "move");
  cr_assert_str_eq(el(r, 2), "ws://a/ws");
  freeReplyObject(r);
  /* And MATCH, asked by the restarted one, does not call it "playing". */
  r = eval(LUA_MATCH, "p", "name", "a/4", "r-5", "60000", "64", "ws://a/ws",
           NULL);
  cr_assert_str_eq(el(r, 0), "lapsed", "a/4 has no lease yet: %s", el(r, 0));
  freeReplyObject(r);
  renew("a/4", "ws://a/ws");
  r = eval(LUA_MATCH, "p", "name", "a/4", "r-5", "60000", "64", "ws://a/ws",
           NULL);
  cr_assert_str_neq(el(r, 0), "playing", "sent to an earlier process");
  freeReplyObject(r);
}

Test(cluster_lua, no_match_while_my_own_lease_lapsed) {
  renew("a/1", "ws://a/ws");
  renew("b/1", "ws://b/ws");
  freeReplyObject(join("x", "b/1", "r-1"));
  Q("DEL oc:lease:a/1"); /* cut off past its lease, not reaped yet */
  redisReply *r = eval(LUA_MATCH, "y", "name", "a/1", "r-2", "60000", "64",
                       "ws://a/ws", NULL);
  cr_assert_str_eq(el(r, 0), "lapsed");
  freeReplyObject(r);
  cr_assert_str_eq(Q("ZCARD oc:queue"), "1", "x still waits");
  cr_assert_str_eq(Q("EXISTS oc:room:r-2"), "0");
}

Test(cluster_lua, a_renew_after_redis_lost_its_data_says_so_and_renews_nothing) {
  redisReply *r = eval(LUA_RENEW, "a/1", "ws://a/ws", "3000", "0", NULL);
  cr_assert_eq(eli(r, 0), 1, "a first renew is no data loss");
  freeReplyObject(r);
  r = eval(LUA_RENEW, "a/1", "ws://a/ws", "3000", "1", NULL);
  cr_assert_eq(eli(r, 0), 1, "a renew with the data there");
  freeReplyObject(r);
  Q("FLUSHALL");
  r = eval(LUA_RENEW, "a/1", "ws://a/ws", "3000", "1", NULL);
  cr_assert_eq(eli(r, 0), 2, "Redis lost its data");
  freeReplyObject(r);
  cr_assert_str_eq(Q("EXISTS oc:lease:a/1"), "0", "nothing renewed");
  /* The next incarnation joins as new. */
  r = eval(LUA_RENEW, "a/2", "ws://a/ws", "3000", "0", NULL);
  cr_assert_eq(eli(r, 0), 1);
  freeReplyObject(r);
  /* A dead incarnation is told it is dead, not that data was lost. */
  Q("SET oc:dead:a/1 1");
  r = eval(LUA_RENEW, "a/1", "ws://a/ws", "3000", "1", NULL);
  cr_assert_eq(eli(r, 0), 0);
  freeReplyObject(r);
}
