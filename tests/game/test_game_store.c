/* test_game_store.c: leaderboard and history (game/game_store.h) in
 * SQLite, in the simulated world, and in PostgreSQL, in the live world.
 *
 * The suite game_store runs every test on SQLite in memory; game_store_pg
 * runs the tests of what is stored and read (BOTH_BACKENDS) again on a
 * throwaway PostgreSQL server (tests/lib/pg_tmp.h), started once for the
 * binary, one database per test, with the Store in a live world (its
 * socket watched by libevent), plus PostgreSQL's own: groups in one
 * commit, a restart in the middle, reads while it is down, and a server
 * of the test's own stalled with SIGSTOP (a request past op_timeout,
 * reads waiting up to GAME_STORE_READS_MAX).
 *
 * Each test builds a simulated world with a fixed seed, starts the Store on
 * ":memory:" (or a temporary file for the migration tests) and spawns one
 * probe actor. The probe is what a Room and the HTTP layer are to the Store:
 *   - told TAG_SEND, it records results (game_store_record) from inside its
 *     behaviour, so the Store answers it with GAME_TAG_STORE_RECORDED; it
 *     notes every acknowledged key and the virtual time it arrived;
 *   - told TAG_LEADERBOARD or TAG_HISTORY, it issues the query with itself
 *     as reply_to and notes the RT_TAG_HTTP_REPLY (status, body, time).
 * Faults come from game_store_config_t.fault: a table that fails the next N
 * operations of a kind with a chosen SQLite code.
 *
 * Virtual time makes the backoff exact: with retry_min 10 ms the third retry
 * of a record that failed three times commits at 10 + 20 + 40 = 70 ms.
 *
 * Every loop is bounded by a fixed table or a named maximum; every world run
 * is bounded by TURNS_MAX and must end idle. Replay a failure with:
 *   build/bin/test_game_store --filter 'game_store/<test name>'
 * (every world here uses SEED).
 *
 * The tests are in two files by theme, one binary: this one (what is
 * stored and read, on both backends, and PostgreSQL's own tests; the
 * runner's PostgreSQL server) and test_game_store_sqlite.c (faults and
 * retries, resends, schema and migration, on SQLite only); the fixture
 * they share is game_store_fixture.h.
 */
#include "game_store_fixture.h"

#include "game_store.h"
#include "net_live.h"
#include "pg_tmp.h"
#include "rt_world.h"
#include "sim_world.h"

#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>

/* ---- PostgreSQL: one server for the binary, one database per test ------- */

static pg_tmp_t pg_server; /* the runner's; tests read OC_TEST_PG_URI */

ReportHook(PRE_ALL)(struct criterion_test_set *set) {
  (void)set;
  if (pg_tmp_start(&pg_server) == 0)
    setenv("OC_TEST_PG_URI", pg_server.uri, 1);
}

ReportHook(POST_ALL)(struct criterion_global_stats *stats) {
  (void)stats;
  pg_tmp_stop(&pg_server);
}

/* A test of what is stored and read, run on both backends. */
#define BOTH_BACKENDS(name)                                                    \
  static void name(void);                                                      \
  Test(game_store, name) {                                                     \
    use_pg = false;                                                            \
    name();                                                                    \
  }                                                                            \
  Test(game_store_pg, name) {                                                  \
    use_pg = true;                                                             \
    name();                                                                    \
  }                                                                            \
  static void name(void)

/* ---- Checks of this file ------------------------------------------------ */

static int history_len(const cJSON *h) {
  return cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(h, "games"));
}

/* One history game from the asking player's perspective. */
typedef struct seen {
  const char *game_id;
  int64_t timestamp;
  int score, opponent_score;
  const char *opponent, *opponent_name;
  bool won;
  const char *winner, *reason;
  const char *player_name; /* the asking player's own */
} seen_t;

/* Our 9 fields, then the original server's 4 names beside them (its
 * frontend reads winnerId, playerName and the pictures). */
static void expect_game(const cJSON *h, int i, seen_t want) {
  const cJSON *g = history_game(h, i);
  cr_assert_eq(cJSON_GetArraySize(g), 13, "game %d has the 13 fields", i);
  expect_str(g, "gameId", want.game_id);
  expect_num(g, "timestamp", (double)want.timestamp);
  expect_num(g, "score", want.score);
  expect_num(g, "opponentScore", want.opponent_score);
  expect_str(g, "opponent", want.opponent);
  expect_str(g, "opponentName", want.opponent_name);
  expect_bool(g, "won", want.won);
  expect_str(g, "winner", want.winner);
  expect_str(g, "reason", want.reason);
  expect_str(g, "winnerId", want.winner);
  expect_str(g, "playerName", want.player_name);
  expect_str(g, "playerPicture", "");
  expect_str(g, "opponentPicture", "");
}

/* ---- Recording: Guarantee (3) -------------------------------------------- */

BOTH_BACKENDS(a_time_game_adds_score_games_and_wins_to_both_players) {
  fx_t fx;
  fx_open(&fx);
  uint32_t a = fx_result(&fx, "room-1", 1000, "u-ada", "Ada", 120, "u-bob",
                         "Bob", 80, "u-ada", "time");
  fx_record(&fx, a);
  cr_assert_eq(fx.probe->acks_len, 1u);
  cr_assert_eq(fx.probe->acks[0], a);
  cJSON *board = fx_leaderboard(&fx, 10);
  cr_assert_eq(cJSON_GetArraySize(board), 2);
  expect_row(board, 0, "Ada", 120, 1, 1);
  expect_row(board, 1, "Bob", 80, 1, 0);
  cJSON_Delete(board);
  /* A second time game accumulates. */
  uint32_t b = fx_result(&fx, "room-2", 2000, "u-bob", "Bob", 90, "u-ada",
                         "Ada", 30, "u-bob", "time");
  fx_record(&fx, b);
  board = fx_leaderboard(&fx, 10);
  cr_assert_eq(cJSON_GetArraySize(board), 2);
  expect_row(board, 0, "Bob", 170, 2, 1);
  expect_row(board, 1, "Ada", 150, 2, 1);
  cJSON_Delete(board);
  game_store_stats_t s = fx_stats(&fx);
  cr_assert_eq(s.recorded, 2u);
  cr_assert_eq(s.duplicates, 0u);
  cr_assert_eq(s.pending, 0u);
  cr_assert_eq(s.retries, 0u);
  fx_close(&fx);
}

BOTH_BACKENDS(a_draw_is_a_win_for_neither_player) {
  fx_t fx;
  fx_open(&fx);
  fx_record(&fx, fx_result(&fx, "room-d", 1000, "u-ada", "Ada", 50, "u-bob",
                           "Bob", 50, "draw", "time"));
  cJSON *board = fx_leaderboard(&fx, 10);
  cr_assert_eq(cJSON_GetArraySize(board), 2);
  expect_row(board, 0, "Ada", 50, 1, 0);
  expect_row(board, 1, "Bob", 50, 1, 0);
  cJSON_Delete(board);
  cJSON *h = fx_history(&fx, "u-ada", 10);
  expect_game(h, 0,
              (seen_t){"room-d", 1000, 50, 50, "u-bob", "Bob", false, "draw",
                       "time", "Ada"});
  cJSON_Delete(h);
  h = fx_history(&fx, "u-bob", 10);
  expect_game(h, 0,
              (seen_t){"room-d", 1000, 50, 50, "u-ada", "Ada", false, "draw",
                       "time", "Bob"});
  cJSON_Delete(h);
  fx_close(&fx);
}

BOTH_BACKENDS(quit_and_disconnect_games_are_history_only) {
  fx_t fx;
  fx_open(&fx);
  fx_record(&fx, fx_result(&fx, "room-q", 1000, "u-ada", "Ada", 40, "u-bob",
                           "Bob", 10, "u-ada", "quit"));
  fx_record(&fx, fx_result(&fx, "room-x", 2000, "u-ada", "Ada", 5, "u-bob",
                           "Bob", 60, "u-bob", "opponent_disconnected"));
  cr_assert_eq(fx.probe->acks_len, 2u, "both acknowledged");
  cJSON *board = fx_leaderboard(&fx, 10);
  cr_assert_eq(cJSON_GetArraySize(board), 0, "no totals from quit/disconnect");
  cJSON_Delete(board);
  cJSON *h = fx_history(&fx, "u-ada", 10);
  cr_assert_eq(history_total(h), 2);
  cr_assert_eq(history_len(h), 2);
  expect_game(h, 0,
              (seen_t){"room-x", 2000, 5, 60, "u-bob", "Bob", false, "u-bob",
                       "opponent_disconnected", "Ada"});
  expect_game(h, 1,
              (seen_t){"room-q", 1000, 40, 10, "u-bob", "Bob", true, "u-ada",
                       "quit", "Ada"});
  cJSON_Delete(h);
  /* A later time game adds only its own points. */
  fx_record(&fx, fx_result(&fx, "room-t", 3000, "u-ada", "Ada", 7, "u-bob",
                           "Bob", 3, "u-ada", "time"));
  board = fx_leaderboard(&fx, 10);
  cr_assert_eq(cJSON_GetArraySize(board), 2);
  expect_row(board, 0, "Ada", 7, 1, 1);
  expect_row(board, 1, "Bob", 3, 1, 0);
  cJSON_Delete(board);
  cr_assert_eq(fx_stats(&fx).recorded, 3u);
  fx_close(&fx);
}

/* ---- Recording: Guarantee (2) -------------------------------------------- */

BOTH_BACKENDS(the_same_room_recorded_twice_is_stored_once_and_acked_twice) {
  fx_t fx;
  fx_open(&fx);
  uint32_t a = fx_result(&fx, "room-1", 1000, "u-ada", "Ada", 10, "u-bob",
                         "Bob", 5, "u-ada", "time");
  /* The retry a Room sends when it did not see the first acknowledgement;
   * even a different payload for the same room changes nothing. */
  uint32_t b = fx_result(&fx, "room-1", 1001, "u-ada", "Ada", 999, "u-bob",
                         "Bob", 5, "u-ada", "time");
  fx_send(&fx, a, 1, 100);
  fx_send(&fx, b, 1, 100);
  fx_run(&fx);
  cr_assert_eq(fx.probe->acks_len, 2u);
  cr_assert_eq(fx.probe->acks[0], 100u + a);
  cr_assert_eq(fx.probe->acks[1], 100u + b);
  game_store_stats_t s = fx_stats(&fx);
  cr_assert_eq(s.recorded, 1u);
  cr_assert_eq(s.duplicates, 1u);
  cJSON *board = fx_leaderboard(&fx, 10);
  expect_row(board, 0, "Ada", 10, 1, 1);
  expect_row(board, 1, "Bob", 5, 1, 0);
  cJSON_Delete(board);
  cJSON *h = fx_history(&fx, "u-ada", 10);
  cr_assert_eq(history_total(h), 1);
  expect_game(h, 0,
              (seen_t){"room-1", 1000, 10, 5, "u-bob", "Bob", true, "u-ada",
                       "time", "Ada"});
  cJSON_Delete(h);
  /* Once more, later, on its own. */
  fx_record(&fx, a);
  cr_assert_eq(fx.probe->acks_len, 3u);
  s = fx_stats(&fx);
  cr_assert_eq(s.recorded, 1u);
  cr_assert_eq(s.duplicates, 2u);
  fx_close(&fx);
}

/* ---- Reads --------------------------------------------------------------- */

BOTH_BACKENDS(leaderboard_orders_by_score_then_name_and_honours_limit) {
  fx_t fx;
  fx_open(&fx);
  /* Ids sort opposite to names, so a tie broken by id would show. */
  fx_record(&fx, fx_result(&fx, "r1", 10, "u-9", "Ada", 50, "u-1", "Zed", 50,
                           "draw", "time"));
  fx_record(&fx, fx_result(&fx, "r2", 20, "u-5", "Max", 70, "u-7", "Eve", 10,
                           "u-5", "time"));
  fx_record(&fx, fx_result(&fx, "r3", 30, "u-3", "Bea", 50, "u-2", "Cy", 49,
                           "u-3", "time"));
  cJSON *board = fx_leaderboard(&fx, 100);
  cr_assert_eq(cJSON_GetArraySize(board), 6);
  expect_row(board, 0, "Max", 70, 1, 1);
  expect_row(board, 1, "Ada", 50, 1, 0);
  expect_row(board, 2, "Bea", 50, 1, 1);
  expect_row(board, 3, "Zed", 50, 1, 0);
  expect_row(board, 4, "Cy", 49, 1, 0);
  expect_row(board, 5, "Eve", 10, 1, 0);
  cJSON_Delete(board);
  static const uint32_t limits[] = {1, 2, 5, 6, 7};
  for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
    board = fx_leaderboard(&fx, limits[i]);
    int want = limits[i] < 6 ? (int)limits[i] : 6;
    cr_assert_eq(cJSON_GetArraySize(board), want, "limit %u", limits[i]);
    expect_row(board, 0, "Max", 70, 1, 1);
    if (want >= 2)
      expect_row(board, 1, "Ada", 50, 1, 0);
    cJSON_Delete(board);
  }
  fx_close(&fx);
}

BOTH_BACKENDS(leaderboard_of_an_empty_store_is_an_empty_array) {
  fx_t fx;
  fx_open(&fx);
  cJSON *board = fx_leaderboard(&fx, 10);
  cr_assert_eq(cJSON_GetArraySize(board), 0);
  cJSON_Delete(board);
  cJSON *h = fx_history(&fx, "u-nobody", 10);
  cr_assert_eq(history_total(h), 0);
  cr_assert_eq(history_len(h), 0);
  cJSON_Delete(h);
  fx_close(&fx);
}

BOTH_BACKENDS(history_is_newest_first_from_each_players_perspective) {
  fx_t fx;
  fx_open(&fx);
  /* Recorded out of time order; Ada is p1, then p2, then p1. */
  fx_record(&fx, fx_result(&fx, "room-b", 2000, "u-bob", "Bob", 30, "u-ada",
                           "Ada", 45, "u-ada", "time"));
  fx_record(&fx, fx_result(&fx, "room-a", 1000, "u-ada", "Ada", 12, "u-bob",
                           "Bob", 20, "u-bob", "time"));
  fx_record(&fx, fx_result(&fx, "room-c", 3000, "u-ada", "Ada", 8, "u-cy", "Cy",
                           2, "u-cy", "quit"));
  fx_record(&fx, fx_result(&fx, "room-z", 4000, "u-bob", "Bob", 1, "u-cy", "Cy",
                           2, "u-cy", "time"));

  cJSON *h = fx_history(&fx, "u-ada", 10);
  cr_assert_eq(history_total(h), 3);
  cr_assert_eq(history_len(h), 3);
  expect_game(h, 0,
              (seen_t){"room-c", 3000, 8, 2, "u-cy", "Cy", false, "u-cy",
                       "quit", "Ada"});
  expect_game(h, 1,
              (seen_t){"room-b", 2000, 45, 30, "u-bob", "Bob", true, "u-ada",
                       "time", "Ada"});
  expect_game(h, 2,
              (seen_t){"room-a", 1000, 12, 20, "u-bob", "Bob", false, "u-bob",
                       "time", "Ada"});
  cJSON_Delete(h);

  h = fx_history(&fx, "u-bob", 10);
  cr_assert_eq(history_total(h), 3);
  expect_game(h, 0,
              (seen_t){"room-z", 4000, 1, 2, "u-cy", "Cy", false, "u-cy",
                       "time", "Bob"});
  expect_game(h, 1,
              (seen_t){"room-b", 2000, 30, 45, "u-ada", "Ada", false, "u-ada",
                       "time", "Bob"});
  expect_game(h, 2,
              (seen_t){"room-a", 1000, 20, 12, "u-ada", "Ada", true, "u-bob",
                       "time", "Bob"});
  cJSON_Delete(h);

  /* The limit cuts the list, not the count. */
  h = fx_history(&fx, "u-ada", 2);
  cr_assert_eq(history_total(h), 3);
  cr_assert_eq(history_len(h), 2);
  expect_str(history_game(h, 0), "gameId", "room-c");
  expect_str(history_game(h, 1), "gameId", "room-b");
  cJSON_Delete(h);
  h = fx_history(&fx, "u-ada", 1);
  cr_assert_eq(history_total(h), 3);
  cr_assert_eq(history_len(h), 1);
  cJSON_Delete(h);
  fx_close(&fx);
}

BOTH_BACKENDS(history_breaks_timestamp_ties_by_recording_order) {
  fx_t fx;
  fx_open(&fx);
  fx_record(&fx, fx_result(&fx, "first", 500, "u-ada", "Ada", 1, "u-bob", "Bob",
                           0, "u-ada", "time"));
  fx_record(&fx, fx_result(&fx, "second", 500, "u-ada", "Ada", 2, "u-bob",
                           "Bob", 0, "u-ada", "time"));
  cJSON *h = fx_history(&fx, "u-ada", 10);
  expect_str(history_game(h, 0), "gameId", "second");
  expect_str(history_game(h, 1), "gameId", "first");
  cJSON_Delete(h);
  fx_close(&fx);
}

BOTH_BACKENDS(names_are_stored_and_returned_byte_for_byte) {
  fx_t fx;
  fx_open(&fx);
  const char *odd = "<script>\"'\\ \xc3\xa9\xf0\x9f\x8d\xaa";
  fx_record(&fx,
            fx_result(&fx, "room-n", 10, "u-ada", odd, 3, "u-bob",
                      "Robert'); DROP TABLE players;--", 1, "u-ada", "time"));
  cJSON *board = fx_leaderboard(&fx, 10);
  expect_row(board, 0, odd, 3, 1, 1);
  expect_row(board, 1, "Robert'); DROP TABLE players;--", 1, 1, 0);
  cJSON_Delete(board);
  cJSON *h = fx_history(&fx, "u-bob", 10);
  expect_str(history_game(h, 0), "opponentName", odd);
  expect_str(history_game(h, 0), "playerName",
             "Robert'); DROP TABLE players;--");
  cJSON_Delete(h);
  h = fx_history(&fx, "u-ada", 10);
  expect_str(history_game(h, 0), "playerName", odd);
  expect_str(history_game(h, 0), "opponentName",
             "Robert'); DROP TABLE players;--");
  cJSON_Delete(h);
  fx_close(&fx);
}

/* ---- Groups: results waiting together commit together ------------------- */

BOTH_BACKENDS(results_sent_in_one_turn_commit_in_one_transaction) {
  fx_t fx;
  fx_open(&fx);
  char room[32], id[16];
  for (int i = 0; i < 40; i++) {
    snprintf(room, sizeof(room), "room-g%02d", i);
    snprintf(id, sizeof(id), "u-%02d", i % 7);
    fx_result(&fx, room, 1000 + i, id, "P", i, "u-z", "Z", 1, id, "time");
  }
  fx_send(&fx, 0, 40, 100);
  fx_run(&fx);
  cr_assert_eq(fx.probe->acks_len, 40u);
  for (uint32_t i = 0; i < 40; i++)
    cr_assert_eq(fx.probe->acks[i], 100u + i, "acknowledged in order");
  game_store_stats_t s = fx_stats(&fx);
  cr_assert_eq(s.recorded, 40u);
  cr_assert_eq(s.commits, 1u, "one transaction for the group");
  uint64_t latencies = 0;
  for (int i = 0; i < GAME_STORE_LATENCY_BUCKETS; i++)
    latencies += s.latency_count[i];
  cr_assert_eq(latencies, 1u, "one commit latency observed");
  cr_assert_eq(game_store_count_games(fx.st), 40);
  cJSON *board = fx_leaderboard(&fx, 10);
  /* u-04 played rooms 4, 11, ..., 39 and won each: 129 points. */
  expect_row(board, 0, "P", 129, 6, 6);
  cJSON_Delete(board);
  fx_close(&fx);
}

/* GAME_STORE_GROUP_MAX, below, at and above: n results arriving together
 * commit as one transaction of min(n, 256) games, and the rest in the next.
 * The simulated world is stepped to the first commit to see who was in it. */
static void check_group_limit(uint32_t n) {
  fx_t fx;
  fx_open(&fx);
  char room[32];
  for (uint32_t i = 0; i < n; i++) {
    snprintf(room, sizeof(room), "room-l%03u", i);
    fx_result(&fx, room, 1000 + i, "u-ada", "Ada", 1, "u-bob", "Bob", 0,
              "u-ada", "time");
  }
  fx_send(&fx, 0, n, 100);
  uint32_t first = n < GAME_STORE_GROUP_MAX ? n : GAME_STORE_GROUP_MAX;
  for (uint32_t step = 0; fx_stats(&fx).commits == 0; step++) {
    cr_assert_lt(step, 10u * n, "n %u: a commit within %u steps", n, 10 * n);
    cr_assert(sim_world_step(fx.sw), "n %u: idle before a commit", n);
  }
  game_store_stats_t s = fx_stats(&fx);
  cr_assert_eq(s.commits, 1u, "n %u", n);
  cr_assert_eq(s.recorded, first, "n %u: the first commit's games", n);
  cr_assert_eq(s.pending, n - first, "n %u: the rest wait for the next", n);
  fx_run(&fx);
  s = fx_stats(&fx);
  cr_assert_eq(s.commits, n > GAME_STORE_GROUP_MAX ? 2u : 1u, "n %u", n);
  cr_assert_eq(fx.faults.calls[GAME_STORE_OP_RECORD], s.commits,
               "n %u: one transaction per commit, none failed", n);
  cr_assert_eq(s.recorded, n, "n %u", n);
  cr_assert_eq(s.duplicates, 0u, "n %u", n);
  cr_assert_eq(s.pending, 0u, "n %u", n);
  cr_assert_eq(fx.probe->acks_len, n, "n %u: each acknowledged once", n);
  for (uint32_t i = 0; i < n; i++)
    cr_assert_eq(fx.probe->acks[i], 100u + i, "n %u: in order", n);
  cr_assert_eq(game_store_count_games(fx.st), n, "n %u: each stored once", n);
  for (uint32_t i = 0; i < n; i++) {
    game_result_t got;
    cr_assert_eq(
        game_store_find_game(fx.st, fx.probe->results[i].room_id, &got), 1,
        "n %u: game %u stored", n, i);
    cr_assert_eq(got.finished_at_s, 1000 + (int64_t)i);
  }
  cJSON *board = fx_leaderboard(&fx, 10);
  expect_row(board, 0, "Ada", (int)n, (int)n, (int)n);
  cJSON_Delete(board);
  fx_close(&fx);
}

Test(game_store, a_group_holds_256_results_and_the_257th_commits_next) {
  check_group_limit(GAME_STORE_GROUP_MAX - 1);
  check_group_limit(GAME_STORE_GROUP_MAX);
  check_group_limit(GAME_STORE_GROUP_MAX + 1);
}

/* ---- PostgreSQL away: a server of the test's own ------------------------ */

static void fx_run_for(fx_t *fx, rt_time_ns d) {
  cr_assert_not_null(fx->live);
  net_live_run_for(fx->live, d);
}

Test(game_store_pg, down_then_up_loses_nothing_and_stores_each_game_once) {
  pg_tmp_t own = {0};
  cr_assert_eq(pg_tmp_start(&own), 0, "a PostgreSQL of this test's own");
  fx_t fx;
  game_store_config_t cfg = {
      .path = own.uri, .retry_min = 10 * MS, .retry_max = 200 * MS};
  fx_open_cfg(&fx, &cfg);
  char room[32];
  for (int i = 0; i < 200; i++) {
    snprintf(room, sizeof(room), "room-d%03d", i);
    fx_result(&fx, room, 2000 + i, "u-ada", "Ada", 3, "u-bob", "Bob", 1,
              "u-ada", "time");
  }
  fx_send(&fx, 0, 100, 0);
  fx_run(&fx);
  cr_assert_eq(fx.probe->acks_len, 100u);

  /* Down: results wait, reads fail fast with 503. */
  cr_assert_eq(pg_tmp_down(&own), 0);
  fx_send(&fx, 100, 60, 0);
  fx_run_for(&fx, 500 * MS);
  uint64_t id = fx_ask(&fx, TAG_LEADERBOARD, NULL, 10);
  fx_run_for(&fx, 50 * MS);
  const reply_t *r = fx_reply(&fx, id);
  cr_assert_eq(r->status, 503, "a read while the database is down: %s",
               r->body);
  game_store_stats_t s = fx_stats(&fx);
  cr_assert_eq(fx.probe->acks_len, 100u, "nothing acknowledged while down");
  cr_assert_eq(s.pending, 60u);
  cr_assert_geq(s.errors_unavailable, 1u);

  /* Up again: the 60 commit, then 40 more, each game once. */
  cr_assert_eq(pg_tmp_up(&own), 0);
  fx_send(&fx, 160, 40, 0);
  fx_run(&fx);
  cr_assert_eq(fx.probe->acks_len, 200u, "every result acknowledged");
  for (uint32_t i = 0; i < 200; i++)
    cr_assert_eq(fx.probe->acks[i], i, "in order");
  s = fx_stats(&fx);
  cr_assert_eq(s.recorded + s.duplicates, 200u);
  cr_assert_geq(s.reconnects, 1u);
  cr_assert_eq(game_store_count_games(fx.st), 200, "each game once");
  cJSON *board = fx_leaderboard(&fx, 10);
  expect_row(board, 0, "Ada", 600, 200, 200);
  expect_row(board, 1, "Bob", 200, 200, 0);
  cJSON_Delete(board);
  fx_close(&fx);
  pg_tmp_stop(&own);
}

/* ---- PostgreSQL stalled: a server of the test's own, stopped ------------ */

/* A stall: every process of a throwaway server stopped with SIGSTOP, the
 * postmaster first (so that it forks no new one), then its children, the
 * backend of the Store's connection among them (stopping the postmaster
 * alone leaves that backend serving). The kernel still takes connections
 * and bytes for them: a request is sent and never answered, a new
 * connection never gets past its startup. */
#define STALL_PIDS_MAX 64u
#define STALL_WAIT_MS 2000 /* for the kernel to stop them all */

typedef struct stall {
  pg_tmp_t server;
  pid_t pids[STALL_PIDS_MAX]; /* stopped, postmaster first */
  uint32_t n;
} stall_t;

/* The stalled tests' own server: at file scope because Criterion's .fini
 * takes no argument, and .fini is what resumes and stops the server after
 * a failed assertion too. One test per process, so one at a time. */
static stall_t stalled;

static pid_t postmaster_pid(const pg_tmp_t *pg) {
  char path[PG_TMP_DIR_MAX + 32];
  snprintf(path, sizeof(path), "%s/data/postmaster.pid", pg->dir);
  FILE *f = fopen(path, "r");
  cr_assert_not_null(f, "%s", path);
  long pid = 0;
  int got = fscanf(f, "%ld", &pid);
  fclose(f);
  cr_assert_eq(got, 1, "%s holds a pid", path);
  cr_assert_gt(pid, 1);
  return (pid_t)pid;
}

/* pid's state and parent from /proc/pid/stat; false when it is gone. The
 * command name may hold spaces and parentheses: the fields follow the
 * last ')'. */
static bool proc_stat(pid_t pid, char *state, pid_t *ppid) {
  char path[64], line[512];
  snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return false;
  bool ok = fgets(line, sizeof(line), f) != NULL;
  fclose(f);
  const char *end = ok ? strrchr(line, ')') : NULL;
  long parent = 0;
  if (end == NULL || sscanf(end + 1, " %c %ld", state, &parent) != 2)
    return false;
  *ppid = (pid_t)parent;
  return true;
}

/* Whether pid shows as stopped ('T'), or is gone, within ms_max ms:
 * SIGSTOP takes effect when the kernel next schedules it. */
static bool stopped_within(pid_t pid, int ms_max) {
  for (int ms = 0; ms <= ms_max; ms++) {
    char state;
    pid_t ppid;
    if (!proc_stat(pid, &state, &ppid))
      return true;
    if (state == 'T')
      return true;
    struct timespec one_ms = {0, 1000000};
    nanosleep(&one_ms, NULL);
  }
  return false;
}

/* Stop pid and note it; a child that exited meanwhile is skipped. */
static void stall_stop(stall_t *s, pid_t pid) {
  cr_assert_lt(s->n, STALL_PIDS_MAX, "more processes than expected");
  if (kill(pid, SIGSTOP) != 0) {
    cr_assert_eq(errno, ESRCH, "SIGSTOP %ld: %s", (long)pid, strerror(errno));
    return;
  }
  s->pids[s->n++] = pid;
}

static void stall_start(stall_t *s) {
  cr_assert_eq(s->n, 0u, "not stalled yet");
  pid_t pm = postmaster_pid(&s->server);
  stall_stop(s, pm);
  DIR *proc = opendir("/proc");
  cr_assert_not_null(proc);
  for (struct dirent *e = readdir(proc); e != NULL; e = readdir(proc)) {
    char *end;
    long pid = strtol(e->d_name, &end, 10);
    char state;
    pid_t ppid;
    if (*end == '\0' && pid > 0 && proc_stat((pid_t)pid, &state, &ppid) &&
        ppid == pm)
      stall_stop(s, (pid_t)pid);
  }
  closedir(proc);
  cr_assert_gt(s->n, 1u, "the postmaster and its children");
  for (uint32_t i = 0; i < s->n; i++)
    cr_assert(stopped_within(s->pids[i], STALL_WAIT_MS), "process %ld stopped",
              (long)s->pids[i]);
}

/* Resume them, children first. Safe when nothing is stopped. */
static void stall_end(stall_t *s) {
  while (s->n > 0)
    (void)kill(s->pids[--s->n], SIGCONT);
}

/* The tests' .fini: whatever happened, resume the server and stop it. */
static void stall_cleanup(void) {
  stall_end(&stalled);
  pg_tmp_stop(&stalled.server);
}

/* The Store on the stalled tests' own server, with op_timeout. */
static void stall_open(fx_t *fx, rt_time_ns op_timeout) {
  memset(&stalled, 0, sizeof(stalled));
  cr_assert_eq(pg_tmp_start(&stalled.server), 0,
               "a PostgreSQL of this test's own");
  game_store_config_t cfg = {.path = stalled.server.uri,
                             .retry_min = 10 * MS,
                             .retry_max = 200 * MS,
                             .op_timeout = op_timeout};
  fx_open_cfg(fx, &cfg);
}

/* A request in flight for op_timeout is given up: the connection dropped,
 * the Store backs off (and, the database away, answers reads 503), and
 * once the server answers again, on a new connection, the result commits
 * exactly once and is acknowledged. The stalled backend, resumed, may still
 * run the abandoned request (its bytes reached the socket before the close;
 * here it usually does): then the retry finds the game stored. */
Test(game_store_pg,
     a_request_stalled_for_op_timeout_is_dropped_then_stored_once,
     .fini = stall_cleanup) {
  fx_t fx;
  stall_open(&fx, 1000 * MS);
  uint32_t a = fx_result(&fx, "room-s1", 1000, "u-ada", "Ada", 3, "u-bob",
                         "Bob", 1, "u-ada", "time");
  uint32_t b = fx_result(&fx, "room-s2", 2000, "u-ada", "Ada", 5, "u-bob",
                         "Bob", 2, "u-ada", "time");
  fx_record(&fx, a);
  cr_assert_eq(fx.probe->acks_len, 1u);
  uint64_t reconnects = fx_stats(&fx).reconnects;

  stall_start(&stalled);
  rt_time_ns sent_at = rt_now(fx.w);
  fx_send(&fx, b, 1, 0);
  /* Before op_timeout: in flight, not acknowledged, not given up. */
  fx_run_for(&fx, 500 * MS);
  game_store_stats_t s = fx_stats(&fx);
  cr_assert(s.in_flight, "the request waits for the stopped server");
  cr_assert_eq(s.errors_timeout, 0u);
  cr_assert_eq(s.pending, 1u);
  cr_assert_eq(fx.probe->acks_len, 1u, "not acknowledged");

  /* At op_timeout: given up, backing off. */
  for (int i = 0; i < 300 && fx_stats(&fx).errors_timeout == 0; i++)
    fx_run_for(&fx, 10 * MS);
  rt_time_ns took = rt_now(fx.w) - sent_at;
  s = fx_stats(&fx);
  cr_assert_eq(s.errors_timeout, 1u, "given up within 3 s");
  cr_assert_geq(took, 1000 * MS, "not before op_timeout: %" PRId64 " ns", took);
  cr_assert_geq(s.retries, 1u, "backing off");
  cr_assert_eq(s.pending, 1u, "the result still waits");
  cr_assert_eq(fx.probe->acks_len, 1u, "not acknowledged");
  /* The database is away: a read fails at once. */
  uint64_t id = fx_ask(&fx, TAG_LEADERBOARD, NULL, 10);
  fx_run_for(&fx, 50 * MS);
  cr_assert_eq(fx_reply(&fx, id)->status, 503);
  /* Still stopped: the retries find no connection, nothing is in flight
   * (so nothing more times out), nothing is acknowledged. */
  fx_run_for(&fx, 500 * MS);
  s = fx_stats(&fx);
  cr_assert_eq(s.errors_timeout, 1u);
  cr_assert_geq(s.errors_unavailable, 1u);
  cr_assert(!s.in_flight);
  cr_assert_eq(fx.probe->acks_len, 1u, "not acknowledged");

  /* Resumed: a new connection, the result stored once, acknowledged once. */
  stall_end(&stalled);
  fx_run(&fx);
  cr_assert_eq(fx.probe->acks_len, 2u, "acknowledged once");
  cr_assert_eq(fx.probe->acks[1], b);
  s = fx_stats(&fx);
  cr_assert_eq(s.pending, 0u);
  cr_assert_eq(s.recorded + s.duplicates, 2u, "a once and b once");
  cr_assert_eq(s.reconnects, reconnects + 1, "a new connection");
  cr_assert_eq(s.errors_timeout, 1u);
  cr_assert_eq(game_store_count_games(fx.st), 2, "each game stored once");
  game_result_t got;
  cr_assert_eq(game_store_find_game(fx.st, "room-s2", &got), 1);
  cr_assert_eq(got.p1_score, 5);
  cJSON *board = fx_leaderboard(&fx, 10);
  expect_row(board, 0, "Ada", 8, 2, 2);
  expect_row(board, 1, "Bob", 3, 2, 0);
  cJSON_Delete(board);
  fx_close(&fx);
}

/* A connect the server never answers (its postmaster stopped: the kernel
 * takes the TCP connection, nobody speaks) is given up after op_timeout
 * too, and another begun, until the server answers; libpq's own
 * connect_timeout does not bound a non-blocking connect. */
Test(game_store_pg, a_connect_that_hangs_is_given_up_after_op_timeout,
     .fini = stall_cleanup) {
  fx_t fx;
  stall_open(&fx, 1000 * MS);
  uint32_t a = fx_result(&fx, "room-c1", 1000, "u-ada", "Ada", 3, "u-bob",
                         "Bob", 1, "u-ada", "time");
  uint32_t b = fx_result(&fx, "room-c2", 2000, "u-ada", "Ada", 5, "u-bob",
                         "Bob", 2, "u-ada", "time");
  fx_record(&fx, a);
  cr_assert_eq(fx.probe->acks_len, 1u);
  stall_start(&stalled);
  fx_send(&fx, b, 1, 0);
  /* The request times out (1), its connection is dropped, the retry's
   * connect hangs and times out too (2), and the next one again (3). */
  for (int i = 0; i < 600 && fx_stats(&fx).errors_timeout < 3; i++)
    fx_run_for(&fx, 10 * MS);
  game_store_stats_t s = fx_stats(&fx);
  cr_assert_geq(s.errors_timeout, 3u, "connects given up: %" PRIu64,
                s.errors_timeout);
  cr_assert_eq(s.pending, 1u);
  cr_assert_eq(fx.probe->acks_len, 1u, "not acknowledged");
  stall_end(&stalled);
  fx_run(&fx);
  cr_assert_eq(fx.probe->acks_len, 2u, "acknowledged once");
  s = fx_stats(&fx);
  cr_assert_eq(s.pending, 0u);
  cr_assert_eq(s.recorded + s.duplicates, 2u, "a once and b once");
  cr_assert_eq(game_store_count_games(fx.st), 2, "each game stored once");
  fx_close(&fx);
}

/* GAME_STORE_READS_MAX, below, at and above: behind a request the stalled
 * server does not answer, 255 and then 256 reads wait; the next one answers
 * 503 at once; once the server answers, every waiting read is answered. */
Test(game_store_pg, reads_wait_up_to_256_deep_and_the_next_answers_503,
     .fini = stall_cleanup) {
  fx_t fx;
  stall_open(&fx, 60000 * MS); /* far beyond the stall: no timeout */
  fx_record(&fx, fx_result(&fx, "room-r", 1000, "u-ada", "Ada", 3, "u-bob",
                           "Bob", 1, "u-ada", "time"));
  cr_assert_eq(fx.probe->acks_len, 1u);

  stall_start(&stalled);
  uint64_t ids[1 + GAME_STORE_READS_MAX];
  ids[0] = fx_ask(&fx, TAG_LEADERBOARD, NULL, 10);
  fx_run_for(&fx, 50 * MS);
  game_store_stats_t s = fx_stats(&fx);
  cr_assert(s.in_flight, "the first read waits for the stopped server");
  cr_assert_eq(s.reads_waiting, 0u);
  for (uint32_t i = 1; i < GAME_STORE_READS_MAX; i++)
    ids[i] = fx_ask(&fx, TAG_LEADERBOARD, NULL, 10);
  fx_run_for(&fx, 100 * MS);
  s = fx_stats(&fx);
  cr_assert_eq(s.reads_waiting, GAME_STORE_READS_MAX - 1, "below");
  cr_assert_eq(fx.probe->replies_len, 0u, "none answered");
  ids[GAME_STORE_READS_MAX] = fx_ask(&fx, TAG_LEADERBOARD, NULL, 10);
  fx_run_for(&fx, 50 * MS);
  s = fx_stats(&fx);
  cr_assert_eq(s.reads_waiting, GAME_STORE_READS_MAX, "at");
  cr_assert_eq(fx.probe->replies_len, 0u, "none answered");
  cr_assert_eq(s.reads_failed, 0u);
  /* Above: answered 503 while the server is still stopped, so at once. */
  uint64_t over = fx_ask(&fx, TAG_LEADERBOARD, NULL, 10);
  fx_run_for(&fx, 50 * MS);
  s = fx_stats(&fx);
  cr_assert_eq(fx.probe->replies_len, 1u, "the one over the limit");
  const reply_t *r = fx_reply(&fx, over);
  cr_assert_eq(r->status, 503, "above: %s", r->body);
  cr_assert_eq(s.reads_failed, 1u);
  cr_assert_eq(s.reads_waiting, GAME_STORE_READS_MAX, "the others still wait");
  cr_assert(s.in_flight);

  stall_end(&stalled);
  fx_run(&fx);
  cr_assert_eq(fx.probe->replies_len, GAME_STORE_READS_MAX + 2);
  r = fx_reply(&fx, ids[0]);
  cr_assert_eq(r->status, 200, "%s", r->body);
  cJSON *board = cJSON_ParseWithLength(r->body, r->len);
  cr_assert_not_null(board, "%s", r->body);
  expect_row(board, 0, "Ada", 3, 1, 1);
  expect_row(board, 1, "Bob", 1, 1, 0);
  cJSON_Delete(board);
  for (uint32_t i = 1; i <= GAME_STORE_READS_MAX; i++) {
    const reply_t *ri = fx_reply(&fx, ids[i]);
    cr_assert_eq(ri->status, 200, "read %u: %s", i, ri->body);
    cr_assert_str_eq(ri->body, r->body, "read %u", i);
  }
  s = fx_stats(&fx);
  cr_assert_eq(s.reads_failed, 1u);
  cr_assert_eq(s.reads_waiting, 0u);
  fx_close(&fx);
}
