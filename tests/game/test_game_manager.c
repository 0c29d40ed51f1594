/* test_game_manager.c: the Manager at the instant a room ends.
 *
 * A Room tells the Manager it ended (GAME_TAG_ENDED) and stops in the same
 * turn. Until the Manager's next turn, the ENDED waits in its mailbox, and
 * news about one of that room's players can come first: a DOWN (a signal,
 * delivered before any message) when the player's connection drops, or a
 * HELLO queued before the ENDED when the player comes back. The Manager used
 * to assert that the room was alive (RT_WASSERT rc != RT_ENOACTOR in
 * tell_room) and abort the server; overcookied-sim found both cases (seeds
 * 26 and 27 of --players 200 --duration 90s --game-length 20 --faults
 * store=0.6,churn=0.9,reset=0.5,latency=1ms, before the fix). These tests
 * build each interleaving exactly, one turn at a time, with fake clients
 * (game_fake_client.h) in a simulated world.
 */
#include "game_check.h"
#include "game_fake_client.h"
#include "game_int.h"
#include "sim_world.h"

#include <criterion/criterion.h>
#include <inttypes.h>

#define SEC RT_NS_PER_S
#define STEPS_MAX 100000

typedef struct fx {
  sim_world_t *sw;
  rt_world_t *w;
  game_t *g;
  fake_client_t a, b, c;
} fx_t;

static void fx_start_batch(fx_t *fx, uint32_t batch_max) {
  memset(fx, 0, sizeof(*fx));
  sim_config_t sc = {
      .seed = 4242, .log_level = RT_LOG_OFF, .batch_max = batch_max};
  fx->sw = sim_world_create(&sc);
  cr_assert_not_null(fx->sw);
  fx->w = sim_world_rt(fx->sw);
  game_config_t cfg;
  game_config_defaults(&cfg);
  cfg.countdown = 1 * SEC;
  cfg.game_seconds = 10;
  game_store_config_t st = {.path = ":memory:"};
  cr_assert_eq(
      game_create(fx->w, &cfg, "a-secret-for-the-manager-test", &st, &fx->g),
      RT_OK);
  fake_spawn(fx->w, fx->g, &fx->a, "alice");
  fake_spawn(fx->w, fx->g, &fx->b, "bob");
  fake_tell(fx->w, &fx->a, FAKE_GO_HELLO);
  fake_tell(fx->w, &fx->b, FAKE_GO_HELLO);
  fake_tell(fx->w, &fx->a, FAKE_GO_JOIN);
  fake_tell(fx->w, &fx->b, FAKE_GO_JOIN);
  fake_run(fx->sw, 2 * SEC);
  cr_assert_neq(fx->a.room, 0);
  cr_assert_eq(fx->a.room, fx->b.room);
  cr_assert_eq(fake_count(&fx->b, "GAME_START"), 1);
}

static void fx_start(fx_t *fx) { fx_start_batch(fx, 0); }

static void fx_free(fx_t *fx) {
  sim_world_destroy(fx->sw);
  game_free(fx->g);
}

static void check_game(fx_t *fx) {
  char why[256];
  cr_assert_eq(game_check(fx->g, why, sizeof(why)), 0, "%s", why);
}

/* One turn (or one timer instant) at a time until the room is gone. */
static void step_until_room_gone(fx_t *fx, rt_actor_id_t room) {
  for (int i = 0; i < STEPS_MAX && rt_alive(fx->w, room); i++)
    cr_assert(sim_world_step(fx->sw), "the world went idle");
  cr_assert_not(rt_alive(fx->w, room));
}

Test(game_manager, a_drop_in_the_instant_the_room_ends_forgets_the_player) {
  fx_t fx;
  fx_start(&fx);
  rt_actor_id_t room = fx.a.room;
  fake_tell(fx.w, &fx.a, FAKE_GO_QUIT);
  step_until_room_gone(&fx, room);
  /* The ENDED is queued, the Manager has not run: Bob's connection drops
   * now, and its DOWN will be delivered first. */
  game_stats_t st;
  game_get_stats(fx.g, &st);
  cr_assert_eq(st.rooms, 1, "the Manager has not seen the ENDED yet");
  cr_assert_eq(rt_stop(fx.w, fx.b.id, RT_REASON_NORMAL), RT_OK);
  fake_run(fx.sw, rt_now(fx.w) + SEC);
  game_get_stats(fx.g, &st);
  cr_assert_eq(st.rooms, 0);
  cr_assert_eq(st.players, 1, "Bob is forgotten, Alice stays");
  cr_assert_eq(st.connected, 1);
  cr_assert_eq(st.rooms_finished[GAME_END_QUIT], 1);
  check_game(&fx);
  fx_free(&fx);
}

/* Bob's connection goes (the room starts his grace; unless `keep_old`:
 * it stays, as a tab left open) and Bob comes back, on fx->c, in the
 * instant Alice's quit ends the room: Alice's turn, the room's finish
 * turn, then `ahead` messages the room ignores are queued at it and Bob's
 * HELLO goes. */
static void bob_back_as_alice_quits(fx_t *fx, uint32_t ahead, bool keep_old) {
  if (!keep_old)
    cr_assert_eq(rt_stop(fx->w, fx->b.id, RT_REASON_NORMAL), RT_OK);
  fake_run(fx->sw, rt_now(fx->w) + 100 * RT_NS_PER_MS);
  fake_spawn(fx->w, fx->g, &fx->c, "bob");
  fake_tell(fx->w, &fx->a, FAKE_GO_QUIT);
  cr_assert(sim_world_step(fx->sw)); /* Alice: QUIT to the room */
  cr_assert(sim_world_step(fx->sw)); /* the room: finish, record */
  rt_msg_t ignored = rt_msg_make(GAME_TAG_JOIN, NULL, 0); /* not a room's */
  for (uint32_t i = 0; i < ahead; i++)
    cr_assert_geq(rt_send(fx->w, fx->a.room, &ignored), 0);
  fake_tell(fx->w, &fx->c, FAKE_GO_HELLO);
}

Test(game_manager, a_hello_queued_before_the_rooms_end_resumes_nothing) {
  fx_t fx;
  fx_start(&fx);
  rt_actor_id_t room = fx.a.room;
  /* Then the Store's acknowledgement and the Room's last turn, whose ENDED
   * lands behind the HELLO. */
  bob_back_as_alice_quits(&fx, 0, false);
  step_until_room_gone(&fx, room);
  game_stats_t st;
  game_get_stats(fx.g, &st);
  cr_assert_eq(st.rooms, 1, "the Manager has HELLO and ENDED queued");
  fake_run(fx.sw, rt_now(fx.w) + SEC);
  game_get_stats(fx.g, &st);
  cr_assert_eq(st.rooms, 0);
  cr_assert_eq(st.players, 2);
  cr_assert_eq(st.connected, 2);
  cr_assert_eq(fake_count(&fx.c, "GAME_START"), 0, "nothing to resume");
  cr_assert_eq(fx.c.room, 0, "no room assigned");
  /* The room told Bob's old connection (gone): the new one hears the
   * result from the Manager, once. */
  cr_assert_eq(fake_count(&fx.c, "GAME_OVER"), 1, "the result it missed");
  cr_assert_eq(fake_count(&fx.a, "GAME_OVER"), 1);
  check_game(&fx);
  /* Bob plays again. */
  fake_tell(fx.w, &fx.a, FAKE_GO_JOIN);
  fake_tell(fx.w, &fx.c, FAKE_GO_JOIN);
  fake_run(fx.sw, rt_now(fx.w) + SEC);
  cr_assert_eq(fake_count(&fx.c, "GAME_START"), 1);
  check_game(&fx);
  fx_free(&fx);
}

/* Bob comes back as the room ends. With one message a turn and k messages
 * the room ignores queued ahead of the Store's acknowledgement, the
 * Manager runs his HELLO at different points of the room's end:
 *  - after the room stopped (small k): nothing to resume, no room;
 *  - while it is alive (larger k): he is assigned the room and the room is
 *    told (BACK), but the acknowledgement is ahead of the BACK and the room
 *    stops with the BACK unread.
 * Either way the room told only Alice, and Bob's new connection must hear
 * the result once, from the Manager, and be back in the lobby. */
static bool back_as_the_room_ends(uint32_t k) {
  fx_t fx;
  fx_start_batch(&fx, 1);
  rt_actor_id_t room = fx.a.room;
  bob_back_as_alice_quits(&fx, k, false);
  for (int i = 0; i < STEPS_MAX && fx.c.room == 0 && rt_alive(fx.w, room); i++)
    cr_assert(sim_world_step(fx.sw));
  bool assigned = fx.c.room == room;
  step_until_room_gone(&fx, room);
  fake_run(fx.sw, rt_now(fx.w) + SEC);
  cr_assert_eq(fake_count(&fx.c, "GAME_OVER"), 1, "k=%u: the result, once", k);
  cr_assert_eq(fx.c.over_from, game_manager_actor(fx.g), "k=%u", k);
  cr_assert_eq(fx.c.room, 0, "k=%u: back in the lobby", k);
  cr_assert_eq(fake_count(&fx.c, "GAME_START"), 0, "k=%u", k);
  cr_assert_eq(fake_count(&fx.a, "GAME_OVER"), 1);
  game_stats_t st;
  game_get_stats(fx.g, &st);
  cr_assert_eq(st.rooms, 0);
  cr_assert_eq(st.connected, 2);
  check_game(&fx);
  fx_free(&fx);
  return assigned;
}

Test(game_manager, a_player_back_as_the_room_ends_still_hears_the_result) {
  uint32_t assigned = 0;
  for (uint32_t k = 0; k <= 6; k++)
    assigned += back_as_the_room_ends(k);
  cr_assert(assigned > 0 && assigned < 7,
            "both interleavings: %u of 7 assigned", assigned);
}

/* The swarm's seed 36113: Bob's second tab says HELLO as the room ends,
 * his first still open. The room tells the first (its seat's), the
 * Manager used to tell the second too, and Bob heard the end twice. The
 * first, being replaced, sends it or hands it back; the Manager tells the
 * second only what no connection was told. */
Test(game_manager, a_second_tab_as_the_room_ends_hears_the_result_once) {
  fx_t fx;
  fx_start(&fx);
  rt_actor_id_t room = fx.a.room;
  bob_back_as_alice_quits(&fx, 0, true);
  step_until_room_gone(&fx, room);
  fake_run(fx.sw, rt_now(fx.w) + SEC);
  cr_assert(fx.b.replaced, "the second tab replaced the first");
  uint32_t first = fake_count(&fx.b, "GAME_OVER");
  uint32_t second = fake_count(&fx.c, "GAME_OVER");
  cr_assert_eq(first + second, 1, "Bob heard the end %u + %u times", first,
               second);
  cr_assert_eq(fx.c.room, 0, "the second tab is in the lobby");
  cr_assert_eq(fake_count(&fx.a, "GAME_OVER"), 1);
  check_game(&fx);
  fx_free(&fx);
}

/* Two runs of the server with the same --seed and the same secret
 * (OC_JWT_SECRET keeps tokens valid across restarts), an hour apart: the
 * second run's first guest must not get the first run's first guest's id
 * (both tokens would be valid, their histories merged). */
static void login_once(uint64_t seed, int64_t epoch_ns, char *user_id,
                       size_t cap) {
  sim_config_t sc = {
      .seed = seed, .log_level = RT_LOG_OFF, .epoch_unix_ns = epoch_ns};
  sim_world_t *sw = sim_world_create(&sc);
  rt_world_t *w = sim_world_rt(sw);
  game_config_t cfg;
  game_config_defaults(&cfg);
  game_store_config_t st = {.path = ":memory:"};
  game_t *g = NULL;
  cr_assert_eq(game_create(w, &cfg, "the-same-secret", &st, &g), RT_OK);
  static const char body[] = "{\"name\":\"Guest\"}";
  rt_http_call_t call = {.method = "POST",
                         .path = "/api/login",
                         .query = "",
                         .body = (const uint8_t *)body,
                         .body_len = sizeof(body) - 1};
  rt_http_answer_t ans = {0};
  cr_assert_eq(game_api_login(g, w, &call, &ans), RT_HTTP_ANSWERED);
  cr_assert_eq(ans.status, 200);
  cJSON *j = cJSON_ParseWithLength((const char *)ans.body->data, ans.body->len);
  snprintf(user_id, cap, "%s",
           cJSON_GetObjectItemCaseSensitive(j, "userId")->valuestring);
  cJSON_Delete(j);
  rt_buf_unref(ans.body);
  sim_world_destroy(sw);
  game_free(g);
}

static void tick_nothing(rt_world_t *w, void *arg, uint64_t timer) {
  (void)w;
  (void)arg;
  (void)timer;
}

/* Bob is away (in his grace) when Alice quits: the room told nobody on
 * his side. Back later, he hears the result (Invariant (6)); later than
 * the Manager keeps it, he hears nothing. */
static void bob_away_as_alice_quits(fx_t *fx) {
  cr_assert_eq(rt_stop(fx->w, fx->b.id, RT_REASON_NORMAL), RT_OK);
  fake_run(fx->sw, rt_now(fx->w) + 100 * RT_NS_PER_MS);
  fake_tell(fx->w, &fx->a, FAKE_GO_QUIT);
  fake_run(fx->sw, rt_now(fx->w) + SEC);
  cr_assert_eq(fake_count(&fx->a, "GAME_OVER"), 1);
  game_stats_t st;
  game_get_stats(fx->g, &st);
  cr_assert_eq(st.rooms, 0);
  cr_assert_eq(st.players, 1, "Bob is forgotten");
}

Test(game_manager, a_player_away_as_the_room_ends_hears_it_when_back) {
  fx_t fx;
  fx_start(&fx);
  bob_away_as_alice_quits(&fx);
  uint64_t t;
  cr_assert_eq(rt_timer_start_fn(fx.w, 59 * SEC, 0, tick_nothing, NULL, &t),
               RT_OK);
  fake_run(fx.sw, rt_now(fx.w) + 59 * SEC);
  fake_spawn(fx.w, fx.g, &fx.c, "bob");
  fake_tell(fx.w, &fx.c, FAKE_GO_HELLO);
  fake_run(fx.sw, rt_now(fx.w) + SEC);
  cr_assert_eq(fake_count(&fx.c, "GAME_OVER"), 1);
  cr_assert_eq(fake_count(&fx.c, "GAME_START"), 0);
  check_game(&fx);
  /* Told once: another connection hears nothing more. */
  rt_actor_id_t first = fx.c.id;
  fake_spawn(fx.w, fx.g, &fx.c, "bob");
  fake_tell(fx.w, &fx.c, FAKE_GO_HELLO);
  fake_run(fx.sw, rt_now(fx.w) + SEC);
  cr_assert_neq(fx.c.id, first);
  cr_assert_eq(fake_count(&fx.c, "GAME_OVER"), 0);
  fx_free(&fx);
}

Test(game_manager, a_result_missed_is_kept_a_minute_only) {
  fx_t fx;
  fx_start(&fx);
  bob_away_as_alice_quits(&fx);
  /* Fake clients arm no timers: one to make the minute pass. */
  uint64_t t;
  cr_assert_eq(rt_timer_start_fn(fx.w, 61 * SEC, 0, tick_nothing, NULL, &t),
               RT_OK);
  fake_run(fx.sw, rt_now(fx.w) + 61 * SEC);
  fake_spawn(fx.w, fx.g, &fx.c, "bob");
  fake_tell(fx.w, &fx.c, FAKE_GO_HELLO);
  fake_run(fx.sw, rt_now(fx.w) + SEC);
  cr_assert_eq(fake_count(&fx.c, "GAME_OVER"), 0);
  fx_free(&fx);
}

Test(game_manager, a_restart_with_the_same_seed_gives_new_user_ids) {
  char first[RT_SUBJECT_MAX], second[RT_SUBJECT_MAX];
  login_once(7, SIM_EPOCH_DEFAULT_NS, first, sizeof(first));
  login_once(7, SIM_EPOCH_DEFAULT_NS + 3600 * SEC, second, sizeof(second));
  cr_assert_str_neq(first, second,
                    "two guests of two runs share the user id %s", first);
}
