/* test_game_room.c: a Room between its end and its stored result.
 *
 * A Room that finished waits for the Store's acknowledgement before it sends
 * GAME_OVER (game_store.h, Guarantee (1)); a Store outage makes that wait
 * long. A player who comes back then gets GAME_START (resumed) and, later,
 * GAME_OVER. The Room used to leave a golden cookie active past the end, so
 * that player also got a COOKIE_SPAWN for a game that was over (PROTOCOL.md:
 * cookies appear only while the game runs); overcookied-sim's game_check
 * found it ("a golden cookie outside the game"). Fake clients
 * (game_fake_client.h) stand in for connections.
 */
#include "game_check.h"
#include "game_fake_client.h"
#include "game_int.h"
#include "sim_world.h"

#include <criterion/criterion.h>
#include <inttypes.h>
#include <sqlite3.h>

#define SEC RT_NS_PER_S

typedef struct outage {
  bool down;
  uint32_t failed;
} outage_t;

static int store_fault(void *ctx, game_store_op_t op) {
  outage_t *o = ctx;
  if (op != GAME_STORE_OP_RECORD || !o->down)
    return SQLITE_OK;
  o->failed++;
  return SQLITE_IOERR;
}

/* A simulated world, and a game's config with a 1 s countdown and 10 s
 * games. */
static sim_world_t *room_world(uint64_t seed, game_config_t *cfg) {
  sim_config_t sc = {.seed = seed, .log_level = RT_LOG_OFF};
  game_config_defaults(cfg);
  cfg->countdown = 1 * SEC;
  cfg->game_seconds = 10;
  return sim_world_create(&sc);
}

Test(game_room,
     a_player_back_while_the_result_is_stored_sees_no_golden_cookie) {
  game_config_t cfg;
  sim_world_t *sw = room_world(77, &cfg);
  rt_world_t *w = sim_world_rt(sw);
  cfg.golden_min_s = 1;
  cfg.golden_max_s = 1;
  outage_t outage = {0};
  game_store_config_t st = {
      .path = ":memory:", .fault = store_fault, .fault_ctx = &outage};
  game_t *g = NULL;
  cr_assert_eq(game_create(w, &cfg, "a-secret-for-the-room-test", &st, &g),
               RT_OK);
  fake_client_t a, b, a2;
  fake_spawn(w, g, &a, "alice");
  fake_spawn(w, g, &b, "bob");
  fake_tell(w, &a, FAKE_GO_HELLO);
  fake_tell(w, &b, FAKE_GO_HELLO);
  fake_tell(w, &a, FAKE_GO_JOIN);
  fake_tell(w, &b, FAKE_GO_JOIN);
  /* The countdown ends at 1 s, the first cookie shows at 2 s. */
  fake_run(sw, 2500 * RT_NS_PER_MS);
  cr_assert_eq(fake_count(&a, "COOKIE_SPAWN"), 1);
  /* The Store goes down; Bob quits: the room is over, its result waits. */
  outage.down = true;
  fake_tell(w, &b, FAKE_GO_QUIT);
  fake_run(sw, 3 * SEC);
  cr_assert_gt(outage.failed, 0);
  cr_assert_eq(fake_count(&a, "GAME_OVER"), 0, "not stored, not shown");
  /* Alice comes back on a new connection. */
  fake_spawn(w, g, &a2, "alice");
  fake_tell(w, &a2, FAKE_GO_HELLO);
  fake_run(sw, 4 * SEC);
  cr_assert(a.replaced);
  cr_assert_eq(fake_count(&a2, "GAME_START"), 1, "resumed");
  cr_assert_eq(fake_count(&a2, "COOKIE_SPAWN"), 0,
               "a cookie for a game that is over");
  char why[256];
  cr_assert_eq(game_check(g, why, sizeof(why)), 0, "%s", why);
  /* The Store is back: the result is stored, then shown. */
  outage.down = false;
  fake_run(sw, 10 * SEC);
  cr_assert_eq(fake_count(&a2, "GAME_OVER"), 1);
  cr_assert_eq(game_check(g, why, sizeof(why)), 0, "%s", why);
  sim_world_destroy(sw);
  game_free(g);
}

/* The opponent's two frames of a click (OPPONENT_CLICK and the click
 * UPDATE) go to its connection as one message (GAME_TAG_OUT_CLICKED). A
 * mailbox too full to take it refuses both frames at once, and the Room
 * counts two drops: every droppable frame is still delivered or counted
 * as dropped, as when each went alone. */
Test(game_room, a_full_mailbox_drops_both_frames_of_a_click_and_counts_two) {
  game_config_t cfg;
  sim_world_t *sw = room_world(78, &cfg);
  rt_world_t *w = sim_world_rt(sw);
  cfg.golden_min_s = 8; /* no cookie while the clicks arrive */
  cfg.golden_max_s = 8;
  cfg.click_rate = 0; /* every click scores */
  game_store_config_t st = {.path = ":memory:"};
  game_t *g = NULL;
  cr_assert_eq(game_create(w, &cfg, "a-secret-for-the-room-test", &st, &g),
               RT_OK);
  fake_client_t a, b;
  fake_spawn(w, g, &a, "alice");
  fake_spawn_cap(w, g, &b, "bob", 4);
  fake_tell(w, &a, FAKE_GO_HELLO);
  fake_tell(w, &b, FAKE_GO_HELLO);
  fake_tell(w, &a, FAKE_GO_JOIN);
  fake_tell(w, &b, FAKE_GO_JOIN);
  fake_run(sw, 1500 * RT_NS_PER_MS); /* the game runs */
  cr_assert_eq(fake_count(&b, "GAME_START"), 1);
  game_stats_t before;
  game_get_stats(g, &before);
  uint32_t seen = fake_count(&b, "OPPONENT_CLICK") + fake_count(&b, "UPDATE");
  const uint32_t clicks = 12; /* under a turn's batch: one turn of the Room */
  rt_msg_t go = rt_msg_make(FAKE_GO_CLICKS, &clicks, sizeof(clicks));
  cr_assert_eq(rt_send(w, a.id, &go), RT_PUSH_QUEUED);
  fake_run(sw, 1900 * RT_NS_PER_MS); /* before the next tick */
  game_stats_t after;
  game_get_stats(g, &after);
  cr_assert_eq(after.clicks_scored - before.clicks_scored, clicks);
  uint32_t opp = fake_count(&b, "OPPONENT_CLICK");
  uint32_t got = opp + fake_count(&b, "UPDATE") - seen;
  uint64_t dropped = after.out_dropped - before.out_dropped;
  cr_assert_gt(dropped, 0, "Bob's mailbox (4) took every click's frames");
  cr_assert_eq(got % 2, 0, "frames come in pairs: %u", got);
  cr_assert_eq(got / 2, opp, "an OPPONENT_CLICK with each UPDATE");
  cr_assert_eq(got + dropped, 2u * clicks,
               "Bob: %u frames, %" PRIu64 " dropped, %u clicks", got, dropped,
               clicks);
  cr_assert_eq(fake_count(&b, "GAME_OVER"), 0);
  sim_world_destroy(sw);
  game_free(g);
}
