/* test_game_store_sqlite.c: the Store (game/game_store.h) on SQLite in the
 * simulated world, where virtual time makes its backoff exact: faults
 * retried until committed once (Guarantees (1) and (4)), reads under fault,
 * the pending limit, resends merged into a waiting result, and the schema
 * of a database file and its migration. The fixture is
 * game_store_fixture.h (test_game_store.c tells the whole story); one
 * binary, test_game_store.
 */
#include "game_store_fixture.h"

#include "game_store.h"
#include "rt_world.h"
#include "sim_world.h"

#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Run the simulated world up to time t, or until it is idle. */
static void fx_run_until(fx_t *fx, rt_time_ns t) {
  sim_run_result_t r = sim_world_run(fx->sw, t, TURNS_MAX);
  cr_assert(r == SIM_RUN_IDLE || r == SIM_RUN_DEADLINE);
}

/* ---- Faults: Guarantees (1) and (4) -------------------------------------- */

typedef struct fault_case {
  int code;
  uint32_t failures;
} fault_case_t;

/* Fail the first `failures` record attempts with `code`; the result must be
 * committed once, acknowledged once, after 10 + 20 + 40 + ... ms. */
static void check_record_survives(int code, uint32_t failures) {
  fx_t fx;
  fx_open(&fx);
  fx.faults.code = code;
  fx.faults.fail_next[GAME_STORE_OP_RECORD] = failures;
  uint32_t a = fx_result(&fx, "room-f", 1000, "u-ada", "Ada", 9, "u-bob", "Bob",
                         4, "u-ada", "time");
  rt_time_ns backoff = 0, step = 10 * MS;
  for (uint32_t i = 0; i < failures; i++, step *= 2)
    backoff += step < 2000 * MS ? step : 2000 * MS;

  fx_send(&fx, a, 1, 7);
  /* Up to just before the last retry: not committed, not acknowledged. */
  if (failures > 0) {
    fx_run_until(&fx, backoff - 1);
    cr_assert_eq(fx.probe->acks_len, 0u, "no ack before the commit");
    game_store_stats_t s = fx_stats(&fx);
    cr_assert_eq(s.recorded, 0u);
    cr_assert_eq(s.pending, 1u);
    /* A read meanwhile sees nothing and is not held back. */
    uint64_t id = fx_ask(&fx, TAG_LEADERBOARD, NULL, 10);
    fx_run_until(&fx, backoff - 1);
    const reply_t *r = fx_reply(&fx, id);
    cr_assert_eq(r->status, 200);
    cr_assert_str_eq(r->body, "[]");
  }
  fx_run(&fx);
  cr_assert_eq(fx.probe->acks_len, 1u, "acknowledged once");
  cr_assert_eq(fx.probe->acks[0], 7u + a);
  cr_assert_geq(fx.probe->acks_at[0], backoff,
                "ack at %" PRId64 " ns, backoff %" PRId64 " ns",
                fx.probe->acks_at[0], backoff);
  cr_assert_lt(fx.probe->acks_at[0], backoff + 1 * MS,
               "and right after it: %" PRId64, fx.probe->acks_at[0]);
  cr_assert_eq(fx.faults.calls[GAME_STORE_OP_RECORD], failures + 1);

  game_store_stats_t s = fx_stats(&fx);
  cr_assert_eq(s.recorded, 1u, "committed exactly once");
  cr_assert_eq(s.duplicates, 0u);
  cr_assert_eq(s.pending, 0u);
  cr_assert_eq(s.retries, failures);
  cr_assert_eq(s.errors_busy, code == SQLITE_BUSY ? failures : 0u);
  cr_assert_eq(s.errors_full, code == SQLITE_FULL ? failures : 0u);
  cr_assert_eq(s.errors_io, (code & 0xff) == SQLITE_IOERR ? failures : 0u);
  cr_assert_eq(s.errors_other, 0u);
  cr_assert_eq(s.reads_failed, 0u);

  cJSON *board = fx_leaderboard(&fx, 10);
  cr_assert_eq(cJSON_GetArraySize(board), 2);
  expect_row(board, 0, "Ada", 9, 1, 1);
  expect_row(board, 1, "Bob", 4, 1, 0);
  cJSON_Delete(board);
  cJSON *h = fx_history(&fx, "u-bob", 10);
  cr_assert_eq(history_total(h), 1);
  cJSON_Delete(h);
  fx_close(&fx);
}

Test(game_store, busy_full_and_io_errors_are_retried_until_committed_once) {
  static const fault_case_t cases[] = {
      {SQLITE_BUSY, 0},  {SQLITE_BUSY, 1},  {SQLITE_BUSY, 3},
      {SQLITE_FULL, 2},  {SQLITE_IOERR, 4}, {SQLITE_IOERR_WRITE, 2},
      {SQLITE_BUSY, 10}, /* past retry_max: 10..1280 ms then 2 s */
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
    check_record_survives(cases[i].code, cases[i].failures);
}

Test(game_store, results_queued_during_an_outage_commit_in_order) {
  fx_t fx;
  fx_open(&fx);
  fx.faults.code = SQLITE_IOERR;
  fx.faults.fail_next[GAME_STORE_OP_RECORD] = 3;
  uint32_t a = fx_result(&fx, "room-a", 100, "u-ada", "Ada", 1, "u-bob", "Bob",
                         0, "u-ada", "time");
  uint32_t b = fx_result(&fx, "room-b", 200, "u-ada", "Ada", 2, "u-bob", "Bob",
                         0, "u-ada", "time");
  uint32_t c = fx_result(&fx, "room-c", 300, "u-ada", "Ada", 4, "u-bob", "Bob",
                         0, "u-ada", "time");
  fx_send(&fx, a, 1, 0);
  fx_run_until(&fx, 15 * MS); /* a failed twice, waits for the third try */
  cr_assert_eq(fx_stats(&fx).retries, 2u);
  fx_send(&fx, b, 1, 0);
  fx_send(&fx, a, 1, 0); /* a Room resending while the first is pending */
  fx_send(&fx, c, 1, 0);
  fx_run_until(&fx, 20 * MS);
  cr_assert_eq(fx.probe->acks_len, 0u, "nothing jumps the queue");
  cr_assert_eq(fx_stats(&fx).pending, 3u, "the resend joined a's wait");
  fx_run(&fx);
  cr_assert_eq(fx.probe->acks_len, 3u);
  cr_assert_eq(fx.probe->acks[0], a);
  cr_assert_eq(fx.probe->acks[1], b);
  cr_assert_eq(fx.probe->acks[2], c);
  for (uint32_t i = 0; i < 3; i++)
    cr_assert_geq(fx.probe->acks_at[i], 70 * MS);
  game_store_stats_t s = fx_stats(&fx);
  cr_assert_eq(s.recorded, 3u);
  cr_assert_eq(s.duplicates, 0u);
  cr_assert_eq(s.resends_merged, 1u);
  cr_assert_eq(s.retries, 3u);
  cr_assert_eq(s.errors_io, 3u);
  cJSON *board = fx_leaderboard(&fx, 10);
  expect_row(board, 0, "Ada", 7, 3, 3);
  cJSON_Delete(board);
  fx_close(&fx);
}

Test(game_store, reads_under_fault_answer_503_at_once) {
  static const int codes[] = {SQLITE_BUSY, SQLITE_FULL, SQLITE_IOERR};
  for (size_t i = 0; i < 3; i++) {
    fx_t fx;
    fx_open(&fx);
    fx_record(&fx, fx_result(&fx, "room-1", 1000, "u-ada", "Ada", 9, "u-bob",
                             "Bob", 4, "u-ada", "time"));
    fx.faults.code = codes[i];
    fx.faults.fail_next[GAME_STORE_OP_LEADERBOARD] = 1;
    fx.faults.fail_next[GAME_STORE_OP_HISTORY] = 1;
    rt_time_ns t0 = rt_now(fx.w);
    uint64_t lb = fx_ask(&fx, TAG_LEADERBOARD, NULL, 10);
    fx_run(&fx);
    uint64_t hi = fx_ask(&fx, TAG_HISTORY, "u-ada", 10);
    fx_run(&fx);
    const uint64_t ids[] = {lb, hi};
    for (size_t k = 0; k < 2; k++) {
      const reply_t *r = fx_reply(&fx, ids[k]);
      cr_assert_eq(r->status, 503, "code %d: status %d", codes[i], r->status);
      cr_assert_eq(r->at, t0, "no waiting: answered at the same instant");
      cJSON *j = cJSON_ParseWithLength(r->body, r->len);
      cr_assert(cJSON_IsObject(j), "JSON error body: %s", r->body);
      cr_assert(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(j, "error")));
      cJSON_Delete(j);
    }
    game_store_stats_t s = fx_stats(&fx);
    cr_assert_eq(s.reads_failed, 2u);
    cr_assert_eq(s.errors_busy, codes[i] == SQLITE_BUSY ? 2u : 0u);
    cr_assert_eq(s.errors_full, codes[i] == SQLITE_FULL ? 2u : 0u);
    cr_assert_eq(s.errors_io, codes[i] == SQLITE_IOERR ? 2u : 0u);
    cr_assert_eq(s.retries, 0u, "reads are not retried");
    cr_assert_eq(s.pending, 0u);
    /* The fault passed: the same reads succeed. */
    cJSON *board = fx_leaderboard(&fx, 10);
    cr_assert_eq(cJSON_GetArraySize(board), 2);
    cJSON_Delete(board);
    cJSON *h = fx_history(&fx, "u-ada", 10);
    cr_assert_eq(history_total(h), 1);
    cJSON_Delete(h);
    cr_assert_eq(fx_stats(&fx).reads_failed, 2u);
    fx_close(&fx);
  }
}

Test(game_store, pending_holds_4096_results_and_refuses_the_next) {
  fx_t fx;
  fx_open(&fx);
  fx.faults.code = SQLITE_BUSY;
  fx.faults.fail_next[GAME_STORE_OP_RECORD] = UINT32_MAX; /* an outage */
  uint32_t total = GAME_STORE_PENDING_MAX + 1;
  for (uint32_t i = 0; i < total; i++) {
    char room[32];
    snprintf(room, sizeof(room), "room-%05u", i);
    fx_result(&fx, room, 1000 + i, "u-ada", "Ada", 1, "u-bob", "Bob", 0,
              "u-ada", "time");
  }
  /* In slices the Store's mailbox takes, running the world in between. */
  for (uint32_t first = 0; first < total; first += 1000) {
    uint32_t n = total - first < 1000 ? total - first : 1000;
    fx_send(&fx, first, n, 0);
    fx_run_until(&fx, rt_now(fx.w) + 1 * MS);
  }
  cr_assert_eq(fx.probe->sends_refused, 0u);
  game_store_stats_t s = fx_stats(&fx);
  cr_assert_eq(s.pending, GAME_STORE_PENDING_MAX, "at the limit");
  cr_assert_eq(fx.probe->acks_len, 0u);
  /* The outage ends. */
  fx.faults.fail_next[GAME_STORE_OP_RECORD] = 0;
  fx_run(&fx);
  s = fx_stats(&fx);
  cr_assert_eq(s.pending, 0u);
  cr_assert_eq(s.recorded, GAME_STORE_PENDING_MAX);
  cr_assert_eq(fx.probe->acks_len, GAME_STORE_PENDING_MAX,
               "the one over the limit is not acknowledged");
  for (uint32_t i = 0; i < GAME_STORE_PENDING_MAX; i++)
    cr_assert_eq(fx.probe->acks[i], i, "in order");
  /* Its Room asks again, and now it is stored. */
  fx_record(&fx, GAME_STORE_PENDING_MAX);
  cr_assert_eq(fx.probe->acks_len, GAME_STORE_PENDING_MAX + 1);
  cr_assert_eq(fx_stats(&fx).recorded, GAME_STORE_PENDING_MAX + 1);
  fx_close(&fx);
}

/* The same seed and inputs, including faults, give the same run. */
static uint64_t faulty_run_hash(void) {
  fx_t fx;
  fx_open(&fx);
  fx.faults.code = SQLITE_BUSY;
  fx.faults.fail_next[GAME_STORE_OP_RECORD] = 5;
  fx.faults.fail_next[GAME_STORE_OP_LEADERBOARD] = 1;
  for (uint32_t i = 0; i < 8; i++) {
    char room[32];
    snprintf(room, sizeof(room), "room-%u", i % 6);
    fx_send(&fx,
            fx_result(&fx, room, 100 * i, "u-ada", "Ada", (int32_t)i, "u-bob",
                      "Bob", 3, i % 2 ? "u-bob" : "draw", "time"),
            1, 0);
    fx_ask(&fx, TAG_LEADERBOARD, NULL, 10);
    fx_run_until(&fx, rt_now(fx.w) + 7 * MS);
  }
  fx_run(&fx);
  cr_assert_eq(fx.probe->acks_len, 8u);
  uint64_t h = rt_world_hash(fx.w);
  fx_close(&fx);
  return h;
}

Test(game_store, a_run_with_faults_replays_to_the_same_hash) {
  uint64_t a = faulty_run_hash(), b = faulty_run_hash();
  cr_assert_eq(a, b, "%016" PRIx64 " != %016" PRIx64 " (seed %u)", a, b, SEED);
}

/* ---- Schema and migration ------------------------------------------------ */

typedef struct tmpdb {
  char dir[64];
  char path[96];
} tmpdb_t;

static void tmpdb_make(tmpdb_t *t) {
  snprintf(t->dir, sizeof(t->dir), "/tmp/oc_test_store_XXXXXX");
  cr_assert_not_null(mkdtemp(t->dir));
  snprintf(t->path, sizeof(t->path), "%s/store.db", t->dir);
}

static void tmpdb_remove(const tmpdb_t *t) {
  static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
  char p[128];
  for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
    snprintf(p, sizeof(p), "%s%s", t->path, suffixes[i]);
    unlink(p);
  }
  cr_assert_eq(rmdir(t->dir), 0, "%s emptied", t->dir);
}

static int db_user_version(const char *path) {
  sqlite3 *db = NULL;
  cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL),
               SQLITE_OK);
  sqlite3_stmt *s = NULL;
  cr_assert_eq(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, NULL),
               SQLITE_OK);
  cr_assert_eq(sqlite3_step(s), SQLITE_ROW);
  int v = sqlite3_column_int(s, 0);
  sqlite3_finalize(s);
  sqlite3_close(db);
  return v;
}

static int db_count(const char *path, const char *sql) {
  sqlite3 *db = NULL;
  cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL),
               SQLITE_OK);
  sqlite3_stmt *s = NULL;
  cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK, "%s", sql);
  cr_assert_eq(sqlite3_step(s), SQLITE_ROW);
  int n = sqlite3_column_int(s, 0);
  sqlite3_finalize(s);
  sqlite3_close(db);
  return n;
}

Test(game_store, a_file_database_keeps_its_rows_across_restarts) {
  tmpdb_t t;
  tmpdb_make(&t);
  game_store_config_t cfg = {.path = t.path};
  fx_t fx;
  fx_open_cfg(&fx, &cfg);
  fx_record(&fx, fx_result(&fx, "room-1", 1000, "u-ada", "Ada", 10, "u-bob",
                           "Bob", 5, "u-ada", "time"));
  cr_assert_eq(fx.probe->acks_len, 1u);
  fx_close(&fx);
  cr_assert_eq(db_user_version(t.path), GAME_STORE_SCHEMA_VERSION);

  /* A restart: the same file, a new world. */
  fx_open_cfg(&fx, &cfg);
  cJSON *board = fx_leaderboard(&fx, 10);
  cr_assert_eq(cJSON_GetArraySize(board), 2);
  expect_row(board, 0, "Ada", 10, 1, 1);
  cJSON_Delete(board);
  /* The unique room id survived too: a late retry is still a duplicate. */
  fx_record(&fx, fx_result(&fx, "room-1", 1000, "u-ada", "Ada", 10, "u-bob",
                           "Bob", 5, "u-ada", "time"));
  cr_assert_eq(fx.probe->acks_len, 1u);
  cr_assert_eq(fx_stats(&fx).duplicates, 1u);
  fx_record(&fx, fx_result(&fx, "room-2", 2000, "u-bob", "Bob", 8, "u-ada",
                           "Ada", 1, "u-bob", "time"));
  cJSON *h = fx_history(&fx, "u-ada", 10);
  cr_assert_eq(history_total(h), 2);
  expect_str(history_game(h, 0), "gameId", "room-2");
  expect_str(history_game(h, 1), "gameId", "room-1");
  cJSON_Delete(h);
  fx_close(&fx);

  cr_assert_eq(db_user_version(t.path), GAME_STORE_SCHEMA_VERSION);
  cr_assert_eq(db_count(t.path, "SELECT COUNT(*) FROM games"), 2);
  cr_assert_eq(db_count(t.path, "SELECT COUNT(*) FROM players"), 2);
  tmpdb_remove(&t);
}

Test(game_store,
     a_database_from_a_newer_schema_is_refused_and_keeps_its_version) {
  /* A newer server's database: our tables (so only the version can refuse
   * it), a table of its own, a row, and user_version 99. */
  tmpdb_t t;
  tmpdb_make(&t);
  game_store_config_t cfg = {.path = t.path};
  fx_t fx;
  fx_open_cfg(&fx, &cfg);
  fx_record(&fx, fx_result(&fx, "room-1", 1000, "u-ada", "Ada", 10, "u-bob",
                           "Bob", 5, "u-ada", "time"));
  fx_close(&fx);
  sqlite3 *db = NULL;
  cr_assert_eq(sqlite3_open(t.path, &db), SQLITE_OK);
  cr_assert_eq(sqlite3_exec(db,
                            "CREATE TABLE future (x INTEGER);"
                            "PRAGMA user_version = 99;",
                            NULL, NULL, NULL),
               SQLITE_OK);
  sqlite3_close(db);

  sim_config_t sc = {.seed = SEED, .log_level = RT_LOG_OFF};
  sim_world_t *sw = sim_world_create(&sc);
  cr_assert_not_null(sw);
  game_store_t *st = NULL;
  int err = game_store_start(sim_world_rt(sw), &cfg, &st);
  cr_assert_lt(err, 0, "refused: %d", err);
  cr_assert_null(st, "no store handed out");
  rt_world_stats_t ws;
  rt_world_stats(sim_world_rt(sw), &ws);
  cr_assert_eq(ws.actors_spawned, 0u, "no Store actor");
  sim_world_destroy(sw);

  cr_assert_eq(db_user_version(t.path), 99, "left at its version");
  cr_assert_eq(db_count(t.path, "SELECT COUNT(*) FROM games"), 1);
  cr_assert_eq(db_count(t.path, "SELECT COUNT(*) FROM future"), 0);
  tmpdb_remove(&t);
}

Test(game_store, an_empty_file_is_refused_at_version_99_too) {
  /* A file with no tables at all but a newer version: still refused. */
  tmpdb_t t;
  tmpdb_make(&t);
  sqlite3 *db = NULL;
  cr_assert_eq(sqlite3_open(t.path, &db), SQLITE_OK);
  cr_assert_eq(sqlite3_exec(db, "PRAGMA user_version = 99;", NULL, NULL, NULL),
               SQLITE_OK);
  sqlite3_close(db);
  sim_config_t sc = {.seed = SEED, .log_level = RT_LOG_OFF};
  sim_world_t *sw = sim_world_create(&sc);
  game_store_config_t cfg = {.path = t.path};
  game_store_t *st = NULL;
  cr_assert_lt(game_store_start(sim_world_rt(sw), &cfg, &st), 0);
  cr_assert_null(st);
  sim_world_destroy(sw);
  cr_assert_eq(db_user_version(t.path), 99);
  cr_assert_eq(db_count(t.path, "SELECT COUNT(*) FROM sqlite_master"
                                " WHERE name IN ('games', 'players')"),
               0, "no tables of ours added");
  tmpdb_remove(&t);
}

Test(game_store, a_database_at_the_current_version_is_opened_as_is) {
  /* Version 1 already: no second CREATE TABLE (which would fail). */
  tmpdb_t t;
  tmpdb_make(&t);
  game_store_config_t cfg = {.path = t.path};
  fx_t fx;
  fx_open_cfg(&fx, &cfg);
  fx_close(&fx);
  fx_open_cfg(&fx, &cfg);
  fx_close(&fx);
  fx_open_cfg(&fx, &cfg);
  cJSON *board = fx_leaderboard(&fx, 10);
  cr_assert_eq(cJSON_GetArraySize(board), 0);
  cJSON_Delete(board);
  fx_close(&fx);
  cr_assert_eq(db_user_version(t.path), 1);
  tmpdb_remove(&t);
}

/* Instances sharing a file start together: a start that finds the file
 * locked by another process waits for it (store_sqlite_open's busy
 * handler) instead of failing. The other process here is a child that
 * holds an exclusive lock on the fresh file for 300 ms. */
Test(game_store, a_start_waits_for_another_process_that_holds_the_file) {
  tmpdb_t t;
  tmpdb_make(&t);
  int ready[2];
  cr_assert_eq(pipe(ready), 0);
  pid_t child = fork();
  cr_assert_neq(child, -1);
  if (child == 0) {
    sqlite3 *db = NULL;
    int ok = sqlite3_open(t.path, &db) == SQLITE_OK &&
             sqlite3_exec(db, "BEGIN EXCLUSIVE", NULL, NULL, NULL) == SQLITE_OK;
    char c = ok ? 'y' : 'n';
    if (write(ready[1], &c, 1) != 1)
      _exit(2);
    nanosleep(&(struct timespec){.tv_nsec = 300 * 1000 * 1000}, NULL);
    ok = ok && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK;
    sqlite3_close(db);
    _exit(ok ? 0 : 1);
  }
  char c = 0;
  cr_assert_eq(read(ready[0], &c, 1), 1);
  cr_assert_eq(c, 'y', "the child could not lock the file");
  game_store_config_t cfg = {.path = t.path};
  fx_t fx;
  fx_open_cfg(&fx, &cfg); /* while the child holds the lock */
  int status = 0;
  cr_assert_eq(waitpid(child, &status, 0), child);
  cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
            "the child held the lock and let it go");
  fx_record(&fx, fx_result(&fx, "room-1", 1000, "u-ada", "Ada", 10, "u-bob",
                           "Bob", 5, "u-ada", "time"));
  cr_assert_eq(fx.probe->acks_len, 1u);
  fx_close(&fx);
  cr_assert_eq(db_user_version(t.path), GAME_STORE_SCHEMA_VERSION);
  close(ready[0]);
  close(ready[1]);
  tmpdb_remove(&t);
}

/* A Room resends its result every few seconds until acknowledged. Through
 * an outage those resends join the one already waiting instead of queueing
 * (and later committing) again. */
Test(game_store, resends_of_a_waiting_result_are_merged_into_it) {
  fx_t fx;
  fx_open(&fx);
  fx.faults.code = SQLITE_BUSY;
  fx.faults.fail_next[GAME_STORE_OP_RECORD] = 6; /* 10+20+...+320 ms */
  uint32_t a = fx_result(&fx, "room-m", 1000, "u-ada", "Ada", 3, "u-bob", "Bob",
                         2, "u-ada", "time");
  fx_send(&fx, a, 1, 50);
  fx_run_until(&fx, 100 * MS);
  fx_send(&fx, a, 1, 50); /* the same key: a resend */
  fx_run_until(&fx, 200 * MS);
  fx_send(&fx, a, 1, 50);
  fx_send(&fx, a, 1, 51); /* another key: a new request, kept */
  fx_run_until(&fx, 300 * MS);
  game_store_stats_t s = fx_stats(&fx);
  cr_assert_eq(s.pending, 2u, "the resends joined the waiting result");
  cr_assert_eq(s.resends_merged, 2u);
  fx_run(&fx);
  cr_assert_eq(fx.probe->acks_len, 2u);
  cr_assert_eq(fx.probe->acks[0], 50u + a);
  cr_assert_eq(fx.probe->acks[1], 51u + a);
  s = fx_stats(&fx);
  cr_assert_eq(s.recorded, 1u);
  cr_assert_eq(s.duplicates, 1u);
  fx_close(&fx);
}
