/* test_game_sim.c: the whole game in the simulated world.
 *
 * Each test builds a seeded simulated world holding the server as every
 * program assembles it (server_start, tools/src/server.h: the game with an
 * in-memory Store and short timings, the API routes, the game's
 * session, token check, metrics and the Client's mailbox rules) on a
 * sim_listen port. Players are sim_bots (sim/sim_bot.h): they log in
 * over HTTP, upgrade to a WebSocket and play through the production code
 * over simulated links, so every rule is checked on the wire, with virtual
 * time that makes each instant exact and each run repeatable.
 *
 * Timings here: countdown 1 s, 10 s games, golden cookies every 2-3 s,
 * 3 s bonus, 2 s reconnect grace; links have 5 ms latency each way and no
 * jitter unless a test says otherwise, so a click sent at t reaches the
 * Room at t + 5 ms and its answer is back at t + 10 ms.
 *
 * A failing check prints the seed, the command that replays the test and
 * the tail of the bots' records. Environment: OC_SEED=<n> replaces a
 * test's seed; OC_DUMP_ALL=1 prints every record of every bot on failure;
 * OC_SIM_LOG=<level> (0 debug .. 3 error) turns the world's log on.
 * Every loop is bounded by virtual time or a count.
 *
 * The tests are in three files by theme, one binary: this one (matches:
 * scoring, endings, reconnects, golden cookies, clicks),
 * test_game_sim_wire.c (bad messages, tokens, login bodies, the flood
 * guard, the frontend's HTTP) and test_game_sim_load.c (a swarm, slow and
 * stalled readers, Store faults, the same seed replaying); the fixture
 * they share is game_sim_fixture.h.
 */
#include "game_sim_fixture.h"

#include "game.h"
#include "net_server.h"
#include "sim_bot.h"

#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <inttypes.h>
#include <string.h>

/* ---- Checks of this file ------------------------------------------------- */

static int json_bool(const cJSON *o, const char *name) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
  return cJSON_IsBool(v) ? cJSON_IsTrue(v) : -1;
}

/* Golden cookies appear only while the game runs: never at its end. */
static void check_spawns_in_game(fx_t *fx, const match_t *m) {
  for (int i = 0; i < 2; i++) {
    sim_bot_record_t r;
    for (uint32_t k = 0; nth(m->by_role[i], SIM_BOT_COOKIE_SPAWN, k, &r); k++)
      CHECK(fx, r.at - LATENCY > m->t_run && r.at - LATENCY < m->t_end,
            "COOKIE_SPAWN at %.6f, the game runs (%.6f, %.6f)",
            (double)(r.at - LATENCY) / SEC, (double)m->t_run / SEC,
            (double)m->t_end / SEC);
  }
}

/* ---- Tests: a match played to time --------------------------------------- */

typedef struct player_plan {
  sim_bot_t *bot;
  click_log_t log;
  rt_time_ns period;
  rt_time_ns next;
} player_plan_t;

Test(game_sim,
     a_full_match_scores_each_accepted_click_doubling_inside_the_bonus) {
  fx_t *fx = fx_create(
      "a_full_match_scores_each_accepted_click_doubling_inside_the_bonus",
      1001);
  fx_start(fx);
  sim_bot_t *ada = bot_add(fx, "Ada", &LINK, &LINK);
  sim_bot_t *bob = bot_add(fx, "Bob", &LINK, &LINK);
  match_t m;
  match_start(fx, ada, bob, &m);
  player_plan_t plan[2];
  memset(plan, 0, sizeof(plan));
  plan[0] = (player_plan_t){
      .bot = ada, .period = 150 * MS, .next = m.t_run + 20 * MS};
  plan[1] = (player_plan_t){
      .bot = bob, .period = 250 * MS, .next = m.t_run + 27 * MS};
  /* Golden cookies: claimed 3 ms after they show, by Ada and Bob in turn.
   * Around Ada's first bonus end, two more clicks of hers reach the Room
   * 1 ns before it and exactly at it. */
  uint32_t spawns_seen = 0, claims_sent = 0;
  rt_time_ns claim_at = RT_TIME_NEVER;
  rt_time_ns edge[2] = {RT_TIME_NEVER, RT_TIME_NEVER};
  int64_t edge_seq[2] = {-1, -1};
  bool edges_planned = false;
  rt_time_ns stop_clicking = m.t_end - 100 * MS;
  while (now_of(fx) <= m.t_end + 500 * MS) {
    rt_time_ns now = now_of(fx);
    for (int i = 0; i < 2; i++) {
      if (plan[i].next <= now && plan[i].next < stop_clicking) {
        click(fx, plan[i].bot, &plan[i].log);
        plan[i].next += plan[i].period;
      }
    }
    for (int k = 0; k < 2; k++) {
      if (edge[k] == now) {
        click(fx, ada, &plan[0].log);
        edge_seq[k] = plan[0].log.seq[plan[0].log.n - 1];
        edge[k] = RT_TIME_NEVER;
      }
    }
    if (claim_at == now) {
      CHECK(fx, sim_bot_cookie_click(plan[claims_sent % 2].bot) == RT_OK,
            "cookie click");
      claims_sent++;
      claim_at = RT_TIME_NEVER;
    }
    uint32_t spawns = count_of(ada, SIM_BOT_COOKIE_SPAWN);
    if (spawns > spawns_seen) {
      spawns_seen = spawns;
      claim_at = now + 3 * MS;
    }
    sim_bot_record_t first_claim;
    if (!edges_planned && nth(ada, SIM_BOT_UPDATE_CLAIM, 0, &first_claim)) {
      CHECK(fx, strcmp(first_claim.claimed_by, sim_bot_user_id(ada)) == 0,
            "Ada claims first");
      rt_time_ns c = first_claim.at - LATENCY;
      edge[0] = c + fx->game_cfg.bonus - 1 - LATENCY;
      edge[1] = c + fx->game_cfg.bonus - LATENCY;
      edges_planned = true;
    }
    rt_time_ns next = now + STEP;
    rt_time_ns candidates[] = {plan[0].next, plan[1].next, edge[0], edge[1],
                               claim_at};
    for (size_t i = 0; i < sizeof(candidates) / sizeof(candidates[0]); i++)
      if (candidates[i] > now && candidates[i] < next)
        next = candidates[i];
    run_to(fx, next);
  }
  CHECK(fx, edges_planned && edge_seq[0] > 0 && edge_seq[1] > 0,
        "the bonus edge clicks were sent");
  CHECK(fx, claims_sent >= 3, "%u golden cookies claimed", claims_sent);
  /* The bonus window is [claim, claim + bonus). */
  sim_bot_record_t before, at_end, prev;
  CHECK(fx, ack_of(ada, edge_seq[0], &before), "edge ack");
  CHECK(fx, ack_of(ada, edge_seq[1], &at_end), "edge ack");
  CHECK(fx, ack_of(ada, edge_seq[0] - 1, &prev), "edge ack");
  int ra = role_of(&m, ada);
  CHECK(fx, score_of(&before, ra) - score_of(&prev, ra) == 2,
        "a click 1 ns before the bonus ends scores 2");
  CHECK(fx, score_of(&at_end, ra) - score_of(&before, ra) == 1,
        "a click at the bonus end scores 1");
  /* Every click scored what the rule says, and the totals are the sums. */
  int32_t want_ada = check_clicks(fx, &m, ada, &plan[0].log);
  int32_t want_bob = check_clicks(fx, &m, bob, &plan[1].log);
  CHECK(fx, want_ada > want_bob, "Ada should win: %d vs %d", want_ada,
        want_bob);
  sim_bot_record_t over;
  check_same_game_over(fx, &m, &over);
  check_spawns_in_game(fx, &m);
  CHECK(fx, score_of(&over, ra) == want_ada, "Ada %d, expected %d",
        score_of(&over, ra), want_ada);
  CHECK(fx, score_of(&over, 1 - ra) == want_bob, "Bob %d, expected %d",
        score_of(&over, 1 - ra), want_bob);
  CHECK(fx, strcmp(over.winner, sim_bot_user_id(ada)) == 0, "winner %s",
        over.winner);
  CHECK(fx, strcmp(over.reason, "time") == 0, "reason %s", over.reason);
  CHECK(fx, over.at == m.t_end + LATENCY, "GAME_OVER at %.6f, end %.6f",
        (double)over.at / SEC, (double)m.t_end / SEC);
  /* Ticks: the full state at the start, then one per second, 10 .. 1. */
  for (int i = 0; i < 2; i++) {
    sim_bot_t *b = m.by_role[i];
    CHECK(fx, count_of(b, SIM_BOT_UPDATE_TICK) == fx->game_cfg.game_seconds,
          "%u ticks", count_of(b, SIM_BOT_UPDATE_TICK));
    for (uint32_t k = 0; k < fx->game_cfg.game_seconds; k++) {
      sim_bot_record_t t;
      nth(b, SIM_BOT_UPDATE_TICK, k, &t);
      CHECK(fx, t.time_remaining == (int32_t)(fx->game_cfg.game_seconds - k),
            "tick %u says %d", k, t.time_remaining);
    }
    CHECK(fx, count_of(b, SIM_BOT_ERROR) == 0, "no errors");
    CHECK(fx, count_of(b, SIM_BOT_UPDATE_CLAIM) == claims_sent,
          "every claim told to both");
  }
  /* Bob saw every one of Ada's scored clicks as OPPONENT_CLICK. */
  int32_t opp = 0;
  sim_bot_record_t r;
  for (uint32_t i = 0; nth(bob, SIM_BOT_OPPONENT_CLICK, i, &r); i++)
    opp += r.count;
  CHECK(fx, opp == want_ada, "OPPONENT_CLICK sums to %d, expected %d", opp,
        want_ada);

  /* History and leaderboard, over HTTP. */
  int status;
  cJSON *h = http_get_json(fx, ada, "/api/history", true, &status);
  CHECK(fx, status == 200, "history status %d", status);
  CHECK(fx, json_num(h, "totalCount") == 1, "totalCount");
  const cJSON *games = cJSON_GetObjectItemCaseSensitive(h, "games");
  CHECK(fx, cJSON_GetArraySize(games) == 1, "one game");
  const cJSON *g = cJSON_GetArrayItem(games, 0);
  CHECK(fx, strcmp(json_str(g, "gameId"), m.start[0].room_id) == 0, "gameId");
  CHECK(fx, json_num(g, "score") == want_ada, "score");
  CHECK(fx, json_num(g, "opponentScore") == want_bob, "opponentScore");
  CHECK(fx, strcmp(json_str(g, "opponent"), sim_bot_user_id(bob)) == 0,
        "opponent");
  CHECK(fx, strcmp(json_str(g, "opponentName"), "Bob") == 0, "opponentName");
  CHECK(fx, json_bool(g, "won") == 1, "won");
  CHECK(fx, strcmp(json_str(g, "winner"), sim_bot_user_id(ada)) == 0, "winner");
  CHECK(fx, strcmp(json_str(g, "reason"), "time") == 0, "reason");
  CHECK(fx,
        json_num(g, "timestamp") ==
            (double)((SIM_EPOCH_DEFAULT_NS + m.t_end) / SEC),
        "timestamp %.0f", json_num(g, "timestamp"));
  /* The original server's names, for its frontend. */
  CHECK(fx, strcmp(json_str(g, "winnerId"), sim_bot_user_id(ada)) == 0,
        "winnerId");
  CHECK(fx, strcmp(json_str(g, "playerName"), "Ada") == 0, "playerName");
  CHECK(fx,
        strcmp(json_str(g, "playerPicture"), "") == 0 &&
            strcmp(json_str(g, "opponentPicture"), "") == 0,
        "no pictures");
  cJSON_Delete(h);
  h = http_get_json(fx, bob, "/api/history", true, &status);
  g = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(h, "games"), 0);
  CHECK(fx, status == 200 && json_num(h, "totalCount") == 1, "Bob's history");
  CHECK(fx, json_bool(g, "won") == 0 && json_num(g, "score") == want_bob,
        "Bob lost with his score");
  CHECK(fx, strcmp(json_str(g, "playerName"), "Bob") == 0, "Bob's own name");
  CHECK(fx, strcmp(json_str(g, "winnerId"), sim_bot_user_id(ada)) == 0,
        "Bob's winnerId");
  cJSON_Delete(h);
  cJSON *lb = http_get_json(fx, bob, "/api/leaderboard", false, &status);
  CHECK(fx, status == 200 && cJSON_GetArraySize(lb) == 2, "leaderboard");
  const cJSON *first = cJSON_GetArrayItem(lb, 0);
  const cJSON *second = cJSON_GetArrayItem(lb, 1);
  CHECK(fx, strcmp(json_str(first, "name"), "Ada") == 0, "Ada first");
  CHECK(fx, json_num(first, "score") == want_ada, "Ada's total");
  CHECK(fx, json_num(first, "games") == 1 && json_num(first, "wins") == 1,
        "Ada's games and wins");
  CHECK(fx, strcmp(json_str(second, "name"), "Bob") == 0, "Bob second");
  CHECK(fx, json_num(second, "score") == want_bob, "Bob's total");
  CHECK(fx, json_num(second, "games") == 1 && json_num(second, "wins") == 0,
        "Bob's games and wins");
  CHECK(fx,
        cJSON_GetObjectItemCaseSensitive(first, "userId") == NULL &&
            cJSON_GetObjectItemCaseSensitive(first, "id") == NULL,
        "never user ids");
  cJSON_Delete(lb);
  game_stats_t st;
  game_get_stats(fx->game, &st);
  CHECK(fx, st.rooms_finished[GAME_END_TIME] == 1, "one game by time");
  CHECK(fx, st.clicks_scored == plan[0].log.n + plan[1].log.n,
        "clicks scored %" PRIu64, st.clicks_scored);
  fx_free(fx);
}

Test(game_sim, equal_clicks_end_in_a_draw_that_is_a_win_for_nobody) {
  fx_t *fx =
      fx_create("equal_clicks_end_in_a_draw_that_is_a_win_for_nobody", 1002);
  fx_start(fx);
  sim_bot_t *ada = bot_add(fx, "Ada", &LINK, &LINK);
  sim_bot_t *bob = bot_add(fx, "Bob", &LINK, &LINK);
  match_t m;
  match_start(fx, ada, bob, &m);
  click_log_t logs[2];
  memset(logs, 0, sizeof(logs));
  click_together(fx, &m, logs, m.t_run + 10 * MS, m.t_end - 50 * MS, 200 * MS);
  wait_kind(fx, ada, SIM_BOT_GAME_OVER, 1, m.t_end + SEC);
  wait_kind(fx, bob, SIM_BOT_GAME_OVER, 1, m.t_end + SEC);
  int32_t s1 = check_clicks(fx, &m, m.by_role[0], &logs[0]);
  int32_t s2 = check_clicks(fx, &m, m.by_role[1], &logs[1]);
  CHECK(fx, s1 == s2 && s1 == 50, "scores %d and %d", s1, s2);
  sim_bot_record_t over;
  check_same_game_over(fx, &m, &over);
  check_spawns_in_game(fx, &m);
  CHECK(fx, strcmp(over.winner, "draw") == 0, "winner %s", over.winner);
  CHECK(fx, strcmp(over.reason, "time") == 0, "reason %s", over.reason);
  CHECK(fx, over.p1_score == s1 && over.p2_score == s2, "final scores");
  int status;
  for (int i = 0; i < 2; i++) {
    cJSON *h = http_get_json(fx, m.by_role[i], "/api/history", true, &status);
    const cJSON *g =
        cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(h, "games"), 0);
    CHECK(fx, status == 200 && json_num(h, "totalCount") == 1, "history");
    CHECK(fx, json_bool(g, "won") == 0, "a draw is won by nobody");
    CHECK(fx, strcmp(json_str(g, "winner"), "draw") == 0, "winner draw");
    CHECK(fx, strcmp(json_str(g, "winnerId"), "draw") == 0, "winnerId draw");
    cJSON_Delete(h);
  }
  cJSON *lb =
      http_get_json(fx, ada, "/api/leaderboard?limit=5", false, &status);
  CHECK(fx, status == 200 && cJSON_GetArraySize(lb) == 2, "leaderboard");
  for (int i = 0; i < 2; i++) {
    const cJSON *e = cJSON_GetArrayItem(lb, i);
    CHECK(fx,
          json_num(e, "score") == s1 && json_num(e, "games") == 1 &&
              json_num(e, "wins") == 0,
          "entry %d", i);
  }
  /* Equal totals: by name. */
  CHECK(fx, strcmp(json_str(cJSON_GetArrayItem(lb, 0), "name"), "Ada") == 0,
        "ties by name");
  cJSON_Delete(lb);
  fx_free(fx);
}

/* History of a finished quit or disconnect game, and an empty leaderboard
 * (only games played to time add to it). */
static void check_recorded_not_ranked(fx_t *fx, const match_t *m,
                                      sim_bot_t *winner, sim_bot_t *loser,
                                      const char *reason) {
  int status;
  cJSON *h = http_get_json(fx, winner, "/api/history", true, &status);
  const cJSON *g =
      cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(h, "games"), 0);
  CHECK(fx, status == 200 && json_num(h, "totalCount") == 1, "history");
  CHECK(fx, strcmp(json_str(g, "gameId"), m->start[0].room_id) == 0, "gameId");
  CHECK(fx, strcmp(json_str(g, "reason"), reason) == 0, "reason %s",
        json_str(g, "reason"));
  CHECK(fx, json_bool(g, "won") == 1, "won");
  CHECK(fx, strcmp(json_str(g, "opponent"), sim_bot_user_id(loser)) == 0,
        "opponent");
  cJSON_Delete(h);
  cJSON *lb = http_get_json(fx, winner, "/api/leaderboard", false, &status);
  CHECK(fx, status == 200 && cJSON_IsArray(lb) && cJSON_GetArraySize(lb) == 0,
        "a %s game is not ranked", reason);
  cJSON_Delete(lb);
}

Test(game_sim,
     a_player_who_quits_loses_and_the_opponent_wins_with_reason_quit) {
  fx_t *fx = fx_create(
      "a_player_who_quits_loses_and_the_opponent_wins_with_reason_quit", 1003);
  fx_start(fx);
  sim_bot_t *ada = bot_add(fx, "Ada", &LINK, &LINK);
  sim_bot_t *bob = bot_add(fx, "Bob", &LINK, &LINK);
  match_t m;
  match_start(fx, ada, bob, &m);
  click_log_t logs[2];
  memset(logs, 0, sizeof(logs));
  click_together(fx, &m, logs, m.t_run + 10 * MS, m.t_run + 2 * SEC, 250 * MS);
  rt_time_ns quit_at = m.t_run + 3 * SEC;
  run_to(fx, quit_at);
  CHECK(fx, sim_bot_quit(ada) == RT_OK, "quit");
  sim_bot_record_t over_bob =
      wait_kind(fx, bob, SIM_BOT_GAME_OVER, 1, quit_at + SEC);
  wait_kind(fx, ada, SIM_BOT_GAME_OVER, 1, quit_at + SEC);
  sim_bot_record_t over;
  check_same_game_over(fx, &m, &over);
  CHECK(fx, strcmp(over.winner, sim_bot_user_id(bob)) == 0, "Bob wins");
  CHECK(fx, strcmp(over.reason, "quit") == 0, "reason %s", over.reason);
  CHECK(fx, over_bob.at == quit_at + 2 * LATENCY, "GAME_OVER at once");
  int32_t s1 = check_clicks(fx, &m, m.by_role[0], &logs[0]);
  int32_t s2 = check_clicks(fx, &m, m.by_role[1], &logs[1]);
  CHECK(fx, over.p1_score == s1 && over.p2_score == s2, "scores");
  /* The room is gone: no more ticks, and both are free to play again. */
  run_for(fx, 2 * SEC);
  CHECK(fx, count_of(bob, SIM_BOT_UPDATE_TICK) == 4, "ticks stopped: %u",
        count_of(bob, SIM_BOT_UPDATE_TICK));
  check_recorded_not_ranked(fx, &m, bob, ada, "quit");
  CHECK(fx, sim_bot_join(ada) == RT_OK, "join");
  wait_kind(fx, ada, SIM_BOT_QUEUED, 2, now_of(fx) + SEC);
  game_stats_t st;
  game_get_stats(fx->game, &st);
  CHECK(fx,
        st.rooms_finished[GAME_END_QUIT] == 1 && st.rooms == 0 &&
            st.queued == 1,
        "stats: quit %" PRIu64 " rooms %u queued %u",
        st.rooms_finished[GAME_END_QUIT], st.rooms, st.queued);
  fx_free(fx);
}

Test(game_sim, a_player_gone_past_the_grace_loses_by_opponent_disconnected) {
  fx_t *fx = fx_create(
      "a_player_gone_past_the_grace_loses_by_opponent_disconnected", 1004);
  fx_start(fx);
  sim_bot_t *ada = bot_add(fx, "Ada", &LINK, &LINK);
  sim_bot_t *bob = bot_add(fx, "Bob", &LINK, &LINK);
  match_t m;
  match_start(fx, ada, bob, &m);
  click_log_t logs[2];
  memset(logs, 0, sizeof(logs));
  click_together(fx, &m, logs, m.t_run + 10 * MS, m.t_run + 2 * SEC, 250 * MS);
  /* The connection just ends: no close frame (a closed laptop lid). */
  rt_time_ns gone_at = m.t_run + 2500 * MS;
  run_to(fx, gone_at);
  CHECK(fx, sim_bot_disconnect(ada, SIM_BOT_CLOSE_STREAM) == RT_OK, "drop");
  /* The server reads EOF one latency later; the grace runs from there. */
  rt_time_ns grace_end = gone_at + LATENCY + fx->game_cfg.reconnect_grace;
  run_to(fx, grace_end + LATENCY - 1);
  CHECK(fx, count_of(bob, SIM_BOT_GAME_OVER) == 0, "not before the grace");
  sim_bot_record_t over =
      wait_kind(fx, bob, SIM_BOT_GAME_OVER, 1, grace_end + SEC);
  CHECK(fx, over.at == grace_end + LATENCY, "GAME_OVER at %.6f",
        (double)over.at / SEC);
  CHECK(fx, strcmp(over.winner, sim_bot_user_id(bob)) == 0, "Bob wins");
  CHECK(fx, strcmp(over.reason, "opponent_disconnected") == 0, "reason %s",
        over.reason);
  int32_t s1 = check_clicks(fx, &m, m.by_role[0], &logs[0]);
  int32_t s2 = check_clicks(fx, &m, m.by_role[1], &logs[1]);
  CHECK(fx, over.p1_score == s1 && over.p2_score == s2, "scores");
  CHECK(fx,
        sim_bot_state(ada) == SIM_BOT_DISCONNECTED &&
            count_of(ada, SIM_BOT_GAME_OVER) == 0,
        "Ada is gone");
  /* The room kept running during the grace. */
  CHECK(fx, count_of(bob, SIM_BOT_UPDATE_TICK) == 5, "ticks %u",
        count_of(bob, SIM_BOT_UPDATE_TICK));
  check_recorded_not_ranked(fx, &m, bob, ada, "opponent_disconnected");
  game_stats_t st;
  game_get_stats(fx->game, &st);
  CHECK(fx, st.rooms_finished[GAME_END_DISCONNECTED] == 1, "stats");
  CHECK(fx, st.players == 1 && st.connected == 1, "Ada forgotten: %u, %u",
        st.players, st.connected);
  fx_free(fx);
}

Test(game_sim, a_player_back_within_the_grace_resumes_with_the_current_state) {
  fx_t *fx = fx_create(
      "a_player_back_within_the_grace_resumes_with_the_current_state", 1005);
  fx_start(fx);
  sim_bot_t *ada = bot_add(fx, "Ada", &LINK, &LINK);
  sim_bot_t *bob = bot_add(fx, "Bob", &LINK, &LINK);
  match_t m;
  match_start(fx, ada, bob, &m);
  int ra = role_of(&m, ada);
  click_log_t logs[2];
  memset(logs, 0, sizeof(logs));
  /* Both click until Ada's connection is reset, then Bob alone. */
  rt_time_ns reset_at = m.t_run + 3500 * MS;
  click_together(fx, &m, logs, m.t_run + 10 * MS, reset_at, 300 * MS);
  run_to(fx, reset_at);
  CHECK(fx, count_of(ada, SIM_BOT_COOKIE_SPAWN) >= 1,
        "a golden cookie is out (nobody claims it)");
  CHECK(fx, sim_bot_disconnect(ada, SIM_BOT_CLOSE_RESET) == RT_OK, "reset");
  rt_time_ns back_at = reset_at + 1 * SEC;
  for (rt_time_ns t = reset_at + 40 * MS; t < back_at; t += 300 * MS) {
    run_to(fx, t);
    click(fx, bob, &logs[1 - ra]);
  }
  run_to(fx, back_at);
  CHECK(fx, sim_bot_reconnect(ada) == RT_OK, "reconnect");
  sim_bot_record_t start =
      wait_kind(fx, ada, SIM_BOT_GAME_START, 2, back_at + SEC);
  /* The upgrade reached the server one latency after it was sent. */
  rt_time_ns resumed_at = back_at + LATENCY;
  CHECK(fx, start.conn == 2 && start.resumed, "resumed on the new connection");
  CHECK(fx, start.at == resumed_at + LATENCY, "GAME_START at %.6f",
        (double)start.at / SEC);
  CHECK(fx,
        strcmp(start.room_id, m.start[ra].room_id) == 0 &&
            strcmp(start.role, m.start[ra].role) == 0 &&
            strcmp(start.opponent, sim_bot_user_id(bob)) == 0,
        "same room, role and opponent");
  /* The current state: the Room's clock and every click it took so far. */
  int32_t seconds_run = (int32_t)((resumed_at - m.t_run) / SEC);
  CHECK(fx,
        start.time_remaining ==
            (int32_t)fx->game_cfg.game_seconds - seconds_run,
        "timeRemaining %d", start.time_remaining);
  int32_t want[2] = {0, 0};
  for (int i = 0; i < 2; i++)
    for (uint32_t k = 0; k < logs[i].n; k++)
      want[i] += logs[i].sent[k] + LATENCY < resumed_at ? 1 : 0;
  CHECK(fx, start.p1_score == want[0] && start.p2_score == want[1],
        "scores %d:%d, expected %d:%d", start.p1_score, start.p2_score, want[0],
        want[1]);
  /* The active golden cookie, where Bob sees it. */
  sim_bot_record_t spawn, bob_spawn = {0}, r;
  CHECK(fx,
        nth(ada, SIM_BOT_COOKIE_SPAWN, count_of(ada, SIM_BOT_COOKIE_SPAWN) - 1,
            &spawn),
        "spawn");
  for (uint32_t i = 0; nth(bob, SIM_BOT_COOKIE_SPAWN, i, &r); i++)
    if (r.at - LATENCY <= resumed_at)
      bob_spawn = r;
  CHECK(fx, spawn.conn == 2 && spawn.at == start.at, "COOKIE_SPAWN follows");
  CHECK(fx, spawn.x == bob_spawn.x && spawn.y == bob_spawn.y,
        "the same cookie: %.3f,%.3f vs %.3f,%.3f", spawn.x, spawn.y,
        bob_spawn.x, bob_spawn.y);
  /* Play goes on and ends by time; Ada's new clicks count. */
  click_together(fx, &m, logs, back_at + 100 * MS, m.t_end - 100 * MS,
                 300 * MS);
  sim_bot_record_t over =
      wait_kind(fx, ada, SIM_BOT_GAME_OVER, 1, m.t_end + SEC);
  wait_kind(fx, bob, SIM_BOT_GAME_OVER, 1, m.t_end + SEC);
  CHECK(fx, over.conn == 2 && strcmp(over.reason, "time") == 0, "by time");
  CHECK(fx, over.at == m.t_end + LATENCY, "at the end");
  int32_t s[2];
  for (int i = 0; i < 2; i++)
    s[i] = check_clicks(fx, &m, m.by_role[i], &logs[i]);
  sim_bot_record_t same;
  check_same_game_over(fx, &m, &same);
  CHECK(fx, over.p1_score == s[0] && over.p2_score == s[1],
        "final %d:%d, expected %d:%d", over.p1_score, over.p2_score, s[0],
        s[1]);
  CHECK(fx, count_of(ada, SIM_BOT_CLOSED) == 1, "one drop");
  game_stats_t st;
  game_get_stats(fx->game, &st);
  CHECK(fx, st.resumed == 1 && st.rooms_finished[GAME_END_TIME] == 1, "stats");
  fx_free(fx);
}

/* A lobby connection (not queued, not playing) silent for lobby_idle is
 * closed with 4002 "idle", not a moment before; a message starts the idle
 * time again; a queued player and players in a game (silent or not) are
 * never closed for it, and a player back in the lobby after a game gets
 * the whole idle time from there. */
Test(game_sim, a_silent_lobby_connection_closes_4002_and_no_one_else_does) {
  fx_t *fx = fx_create(
      "a_silent_lobby_connection_closes_4002_and_no_one_else_does", 1044);
  const rt_time_ns idle_s = 5 * SEC;
  fx->game_cfg.lobby_idle = idle_s;
  fx_start(fx);
  sim_bot_t *idle = bot_add(fx, "Idle", &LINK, &LINK);
  sim_bot_t *chatty = bot_add(fx, "Chatty", &LINK, &LINK);
  sim_bot_t *queued = bot_add(fx, "Queued", &LINK, &LINK);
  wait_state(fx, idle, SIM_BOT_OPEN, 5 * SEC);
  wait_state(fx, chatty, SIM_BOT_OPEN, 5 * SEC);
  wait_state(fx, queued, SIM_BOT_OPEN, 5 * SEC);
  rt_time_ns opened = now_of(fx);
  CHECK(fx, sim_bot_join(queued) == RT_OK, "join");
  run_to(fx, opened + 3 * SEC);
  rt_time_ns chatted = now_of(fx);
  CHECK(fx, sim_bot_leave(chatty) == RT_OK, "a message");
  /* Just under the idle time after its open, Idle is still there. */
  run_to(fx, opened + idle_s - 10 * MS - LATENCY);
  CHECK(fx, count_of(idle, SIM_BOT_CLOSED) == 0, "not closed early");
  sim_bot_record_t c = wait_kind(fx, idle, SIM_BOT_CLOSED, 1, opened + 6 * SEC);
  CHECK(fx, c.code == 4002, "idle closes with %u", c.code);
  CHECK(fx, count_of(chatty, SIM_BOT_CLOSED) == 0, "its message counted");
  run_to(fx, chatted + idle_s - 10 * MS);
  CHECK(fx, count_of(chatty, SIM_BOT_CLOSED) == 0, "not before its time");
  c = wait_kind(fx, chatty, SIM_BOT_CLOSED, 1, chatted + 6 * SEC);
  CHECK(fx, c.code == 4002, "chatty closes with %u", c.code);
  CHECK(fx, count_of(queued, SIM_BOT_CLOSED) == 0, "a queued player stays");
  /* Two silent players in a game longer than the idle time. */
  CHECK(fx, sim_bot_leave(queued) == RT_OK, "leave");
  sim_bot_t *ada = bot_add(fx, "Ada", &LINK, &LINK);
  sim_bot_t *bea = bot_add(fx, "Bea", &LINK, &LINK);
  match_t m;
  match_start(fx, ada, bea, &m);
  CHECK(fx, m.t_end - m.t0 > 2 * idle_s, "games longer than the idle time");
  sim_bot_record_t over =
      wait_kind(fx, ada, SIM_BOT_GAME_OVER, 1, m.t_end + SEC);
  CHECK(fx, count_of(ada, SIM_BOT_CLOSED) == 0, "nobody is idle in a game");
  CHECK(fx, count_of(bea, SIM_BOT_CLOSED) == 0, "nobody is idle in a game");
  /* Back in the lobby: the idle time runs from the end of the game. */
  run_to(fx, over.at + idle_s - 100 * MS);
  CHECK(fx, count_of(ada, SIM_BOT_CLOSED) == 0, "a whole idle time after");
  c = wait_kind(fx, ada, SIM_BOT_CLOSED, 1, over.at + idle_s + SEC);
  CHECK(fx, c.code == 4002, "then idle: %u", c.code);
  game_stats_t st;
  game_get_stats(fx->game, &st);
  CHECK(fx, st.kicks[GAME_KICK_IDLE] == 5, "counted: %" PRIu64,
        st.kicks[GAME_KICK_IDLE]);
  run_for(fx, 2 * SEC); /* the close handshakes end */
  net_server_stats_t ns;
  net_server_get_stats(fx->srv, &ns);
  CHECK(fx, ns.ws_close_codes[net_server_close_code_index(4002)] == 5,
        "4002 counted: %" PRIu64,
        ns.ws_close_codes[net_server_close_code_index(4002)]);
  fx_free(fx);
}

Test(game_sim, a_second_connection_replaces_the_first_which_closes_with_4000) {
  fx_t *fx = fx_create(
      "a_second_connection_replaces_the_first_which_closes_with_4000", 1006);
  fx_start(fx);
  sim_bot_t *ada = bot_add(fx, "Ada", &LINK, &LINK);
  sim_bot_t *bob = bot_add(fx, "Bob", &LINK, &LINK);
  match_t m;
  match_start(fx, ada, bob, &m);
  int ra = role_of(&m, ada);
  click_log_t logs[2];
  memset(logs, 0, sizeof(logs));
  click_together(fx, &m, logs, m.t_run + 10 * MS, m.t_run + 2 * SEC, 300 * MS);
  /* Ada opens the game in a second tab. */
  rt_time_ns tab_at = m.t_run + 2500 * MS;
  run_to(fx, tab_at);
  sim_bot_t *tab =
      bot_with_token(fx, "Ada's tab", sim_bot_token(ada), sim_bot_user_id(ada));
  sim_bot_record_t closed = wait_kind(fx, ada, SIM_BOT_CLOSED, 1, tab_at + SEC);
  CHECK(fx, closed.code == 4000, "the first closes with %u", closed.code);
  CHECK(fx, sim_bot_close_code(ada) == 4000, "close code");
  sim_bot_record_t start =
      wait_kind(fx, tab, SIM_BOT_GAME_START, 1, tab_at + SEC);
  CHECK(fx,
        start.resumed && strcmp(start.role, m.start[ra].role) == 0 &&
            strcmp(start.room_id, m.start[ra].room_id) == 0,
        "the tab takes the seat");
  /* The tab plays on for Ada. */
  m.by_role[ra] = tab;
  click_log_t tab_log;
  memset(&tab_log, 0, sizeof(tab_log));
  tab_log.next_seq = 1000;
  for (rt_time_ns t = tab_at + 200 * MS; t < m.t_end - 100 * MS;
       t += 300 * MS) {
    run_to(fx, t);
    click(fx, tab, &tab_log);
    click(fx, bob, &logs[1 - ra]);
  }
  sim_bot_record_t over =
      wait_kind(fx, tab, SIM_BOT_GAME_OVER, 1, m.t_end + SEC);
  wait_kind(fx, bob, SIM_BOT_GAME_OVER, 1, m.t_end + SEC);
  CHECK(fx, count_of(ada, SIM_BOT_GAME_OVER) == 0, "not to the old one");
  CHECK(fx, strcmp(over.reason, "time") == 0, "by time");
  int32_t before = check_clicks(fx, &m, bob, &logs[1 - ra]);
  (void)before;
  /* Ada's score: her clicks on the first connection plus the tab's. */
  int32_t ada_score = (int32_t)logs[ra].n + (int32_t)tab_log.n;
  CHECK(fx, score_of(&over, ra) == ada_score, "Ada %d, expected %d",
        score_of(&over, ra), ada_score);
  CHECK(fx, score_of(&over, 1 - ra) == (int32_t)logs[1 - ra].n, "Bob");
  game_stats_t st;
  game_get_stats(fx->game, &st);
  CHECK(fx, st.kicks[GAME_KICK_REPLACED] == 1,
        "one replacement, counted %" PRIu64, st.kicks[GAME_KICK_REPLACED]);
  net_server_stats_t ns;
  net_server_get_stats(fx->srv, &ns);
  CHECK(fx, ns.ws_close_codes[net_server_close_code_index(4000)] == 1,
        "4000 counted");
  fx_free(fx);
}

Test(game_sim,
     a_golden_cookie_clicked_by_both_at_once_is_claimed_exactly_once) {
  fx_t *fx = fx_create(
      "a_golden_cookie_clicked_by_both_at_once_is_claimed_exactly_once", 1007);
  fx_start(fx);
  sim_bot_t *ada = bot_add(fx, "Ada", &LINK, &LINK);
  sim_bot_t *bob = bot_add(fx, "Bob", &LINK, &LINK);
  match_t m;
  match_start(fx, ada, bob, &m);
  click_log_t logs[2];
  memset(logs, 0, sizeof(logs));
  uint32_t races = 0;
  for (uint32_t spawn = 1; spawn <= 3; spawn++) {
    sim_bot_record_t s =
        wait_kind(fx, ada, SIM_BOT_COOKIE_SPAWN, spawn, m.t_end);
    if (s.at + 200 * MS >= m.t_end)
      break;
    /* Both at the same instant over equal links; who is asked first
     * alternates. */
    run_to(fx, s.at + 2 * MS);
    sim_bot_t *first = spawn % 2 ? ada : bob, *second = spawn % 2 ? bob : ada;
    CHECK(fx, sim_bot_cookie_click(first) == RT_OK, "cookie click");
    CHECK(fx, sim_bot_cookie_click(second) == RT_OK, "cookie click");
    run_for(fx, 50 * MS);
    races++;
    sim_bot_record_t ca, cb;
    CHECK(fx,
          count_of(ada, SIM_BOT_UPDATE_CLAIM) == races &&
              count_of(bob, SIM_BOT_UPDATE_CLAIM) == races,
          "one claim per cookie: %u and %u after %u races",
          count_of(ada, SIM_BOT_UPDATE_CLAIM),
          count_of(bob, SIM_BOT_UPDATE_CLAIM), races);
    nth(ada, SIM_BOT_UPDATE_CLAIM, races - 1, &ca);
    nth(bob, SIM_BOT_UPDATE_CLAIM, races - 1, &cb);
    CHECK(fx, strcmp(ca.claimed_by, cb.claimed_by) == 0, "the same claimer");
    CHECK(fx,
          strcmp(ca.claimed_by, sim_bot_user_id(ada)) == 0 ||
              strcmp(ca.claimed_by, sim_bot_user_id(bob)) == 0,
          "a player claims it");
    CHECK(fx, ca.at == s.at + 2 * MS + 2 * LATENCY, "claimed at arrival");
    /* Right after: only the claimer's clicks double. */
    click(fx, ada, &logs[role_of(&m, ada)]);
    click(fx, bob, &logs[role_of(&m, bob)]);
    run_for(fx, 50 * MS);
    sim_bot_t *winner =
        strcmp(ca.claimed_by, sim_bot_user_id(ada)) == 0 ? ada : bob;
    sim_bot_t *loser = winner == ada ? bob : ada;
    sim_bot_record_t wa, la;
    const click_log_t *wl = &logs[role_of(&m, winner)];
    const click_log_t *ll = &logs[role_of(&m, loser)];
    CHECK(fx, ack_of(winner, wl->seq[wl->n - 1], &wa), "ack");
    CHECK(fx, ack_of(loser, ll->seq[ll->n - 1], &la), "ack");
    int32_t before_w = races == 1 ? 0 : score_of(&ca, role_of(&m, winner));
    CHECK(fx, score_of(&wa, role_of(&m, winner)) - before_w == 2,
          "the claimer's click scores 2");
    (void)la;
  }
  CHECK(fx, races >= 2, "%u races", races);
  sim_bot_record_t over;
  wait_kind(fx, ada, SIM_BOT_GAME_OVER, 1, m.t_end + SEC);
  wait_kind(fx, bob, SIM_BOT_GAME_OVER, 1, m.t_end + SEC);
  check_same_game_over(fx, &m, &over);
  check_spawns_in_game(fx, &m);
  /* Every click by the rule, with each player's own claims. */
  int32_t s1 = check_clicks(fx, &m, m.by_role[0], &logs[0]);
  int32_t s2 = check_clicks(fx, &m, m.by_role[1], &logs[1]);
  CHECK(fx, over.p1_score == s1 && over.p2_score == s2, "scores");
  game_stats_t st;
  game_get_stats(fx->game, &st);
  CHECK(fx, st.golden_claims == races && st.golden_contested == races,
        "claims %" PRIu64 " contested %" PRIu64, st.golden_claims,
        st.golden_contested);
  fx_free(fx);
}

Test(game_sim,
     countdown_clicks_are_acknowledged_unscored_and_late_clicks_refused) {
  fx_t *fx = fx_create(
      "countdown_clicks_are_acknowledged_unscored_and_late_clicks_refused",
      1008);
  fx_start(fx);
  sim_bot_t *ada = bot_add(fx, "Ada", &LINK, &LINK);
  sim_bot_t *bob = bot_add(fx, "Bob", &LINK, &LINK);
  match_t m;
  match_start(fx, ada, bob, &m);
  run_to(fx, m.t_run - 300 * MS);
  CHECK(fx, sim_bot_click(ada, 1) == RT_OK, "click");
  CHECK(fx, sim_bot_click(ada, 2) == RT_OK, "click");
  CHECK(fx, sim_bot_cookie_click(bob) == RT_OK, "cookie click");
  run_to(fx, m.t_run - 100 * MS);
  sim_bot_record_t a1, a2;
  CHECK(fx, ack_of(ada, 1, &a1) && ack_of(ada, 2, &a2), "acknowledged");
  CHECK(fx,
        a1.p1_score == 0 && a1.p2_score == 0 && a2.p1_score == 0 &&
            a2.p2_score == 0,
        "scored nothing");
  CHECK(fx, a1.at == m.t_run - 300 * MS + 2 * LATENCY, "answered at once");
  CHECK(fx,
        count_of(bob, SIM_BOT_OPPONENT_CLICK) == 0 &&
            count_of(bob, SIM_BOT_UPDATE_CLICK) == 0 &&
            count_of(bob, SIM_BOT_UPDATE_CLAIM) == 0 &&
            count_of(bob, SIM_BOT_ERROR) == 0,
        "nothing for Bob");
  game_stats_t st;
  game_get_stats(fx->game, &st);
  CHECK(fx, st.clicks_countdown == 2 && st.clicks_scored == 0, "stats");
  sim_bot_record_t over =
      wait_kind(fx, ada, SIM_BOT_GAME_OVER, 1, m.t_end + SEC);
  CHECK(fx,
        over.p1_score == 0 && over.p2_score == 0 &&
            strcmp(over.winner, "draw") == 0,
        "0:0, a draw");
  /* After the end: each game message is answered not_in_game. */
  run_for(fx, 100 * MS);
  CHECK(fx, sim_bot_click(ada, 3) == RT_OK, "click");
  CHECK(fx, sim_bot_cookie_click(ada) == RT_OK, "cookie click");
  CHECK(fx, sim_bot_quit(ada) == RT_OK, "quit");
  run_for(fx, 100 * MS);
  sim_bot_record_t e, ack;
  CHECK(fx, count_of(ada, SIM_BOT_ERROR) == 3, "%u errors",
        count_of(ada, SIM_BOT_ERROR));
  for (uint32_t i = 0; i < 3; i++) {
    nth(ada, SIM_BOT_ERROR, i, &e);
    CHECK(fx, strcmp(e.error_code, "not_in_game") == 0, "code %s",
          e.error_code);
  }
  CHECK(fx, !ack_of(ada, 3, &ack), "no answer to a late click");
  CHECK(fx,
        count_of(ada, SIM_BOT_GAME_OVER) == 1 &&
            sim_bot_state(ada) == SIM_BOT_OPEN,
        "still connected");
  fx_free(fx);
}

Test(game_sim,
     fifty_clicks_in_one_instant_score_the_burst_with_one_rate_error) {
  fx_t *fx = fx_create(
      "fifty_clicks_in_one_instant_score_the_burst_with_one_rate_error", 1009);
  fx_start(fx);
  sim_bot_t *ada = bot_add(fx, "Ada", &LINK, &LINK);
  sim_bot_t *bob = bot_add(fx, "Bob", &LINK, &LINK);
  match_t m;
  match_start(fx, ada, bob, &m);
  int rb = role_of(&m, bob);
  uint32_t burst = fx->game_cfg.click_burst;
  rt_time_ns t = m.t_run + 500 * MS;
  run_to(fx, t);
  CHECK(fx, sim_bot_clicks(bob, 50, 1) == RT_OK, "50 clicks");
  run_for(fx, 50 * MS);
  sim_bot_record_t ack;
  for (int64_t seq = 1; seq <= 50; seq++) {
    bool got = ack_of(bob, seq, &ack);
    CHECK(fx, got == (seq <= (int64_t)burst), "seq %" PRId64 " answered: %d",
          seq, got);
    if (got)
      CHECK(fx, score_of(&ack, rb) == seq, "seq %" PRId64 " scores", seq);
  }
  sim_bot_record_t e;
  CHECK(fx,
        count_of(bob, SIM_BOT_ERROR) == 1 && nth(bob, SIM_BOT_ERROR, 0, &e) &&
            strcmp(e.error_code, "rate_limited") == 0,
        "one rate_limited ERROR, not one per refused click");
  CHECK(fx,
        count_of(ada, SIM_BOT_OPPONENT_CLICK) == burst &&
            count_of(ada, SIM_BOT_ERROR) == 0,
        "Ada sees the scored clicks only");
  game_stats_t st;
  game_get_stats(fx->game, &st);
  CHECK(fx, st.clicks_scored == burst && st.clicks_rate_limited == 50 - burst,
        "stats %" PRIu64 " %" PRIu64, st.clicks_scored, st.clicks_rate_limited);
  /* Half a second refills 15 tokens: 5 clicks pass, no new ERROR. */
  run_to(fx, t + 500 * MS);
  CHECK(fx, sim_bot_clicks(bob, 5, 51) == RT_OK, "5 clicks");
  run_for(fx, 50 * MS);
  CHECK(fx, ack_of(bob, 55, &ack) && score_of(&ack, rb) == (int32_t)burst + 5,
        "refilled");
  CHECK(fx, count_of(bob, SIM_BOT_ERROR) == 1, "no new ERROR");
  /* A second later the bucket is full again and the ERROR may repeat. */
  run_to(fx, t + 1500 * MS);
  CHECK(fx, sim_bot_clicks(bob, 50, 101) == RT_OK, "50 clicks");
  run_for(fx, 50 * MS);
  CHECK(fx,
        ack_of(bob, 100 + burst, &ack) &&
            score_of(&ack, rb) == 2 * (int32_t)burst + 5,
        "a full bucket");
  CHECK(fx, !ack_of(bob, 101 + burst, &ack), "then refused");
  CHECK(fx, count_of(bob, SIM_BOT_ERROR) == 2, "one ERROR per second");
  fx_free(fx);
}
