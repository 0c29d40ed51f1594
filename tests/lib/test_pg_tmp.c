/* test_pg_tmp.c: the throwaway PostgreSQL helper (tests/lib/pg_tmp.h)
 * itself, against a real server: it starts, answers a query, comes back on
 * the same URI after a restart and after an outage, and leaves nothing
 * behind when stopped. Label `pg` in ctest. */
#include "pg_tmp.h"

#include <criterion/criterion.h>
#include <string.h>
#include <sys/stat.h>

#define OUT_MAX 256

static pg_tmp_t pg;

static void stop_server(void) { pg_tmp_stop(&pg); }

static void query_is(const char *sql, const char *want) {
  char out[OUT_MAX];
  int rc = pg_tmp_query(pg.uri, sql, out, sizeof(out));
  cr_assert_eq(rc, 0, "%s: rc %d, %s", sql, rc, out);
  cr_assert_str_eq(out, want, "%s", sql);
}

Test(pg_tmp, starts_answers_restarts_and_stops, .fini = stop_server) {
  cr_assert_eq(pg_tmp_start(&pg), 0);
  cr_assert(strncmp(pg.uri, "postgresql://overcookied:", 25) == 0, "%s",
            pg.uri);
  cr_assert(strstr(pg.uri, "@127.0.0.1:") != NULL, "%s", pg.uri);
  query_is("select 1", "1");
  query_is("select current_user", "overcookied");
  query_is("select current_setting('fsync')", "on");

  query_is("create table t (v int); insert into t values (7); select 'ok'",
           "ok");
  char uri[PG_TMP_URI_MAX];
  memcpy(uri, pg.uri, sizeof(uri));
  cr_assert_eq(pg_tmp_restart(&pg), 0);
  cr_assert_str_eq(pg.uri, uri, "the URI outlives a restart");
  query_is("select v from t", "7");

  cr_assert_eq(pg_tmp_down(&pg), 0);
  char out[OUT_MAX];
  cr_assert_lt(pg_tmp_query(pg.uri, "select 1", out, sizeof(out)), 0,
               "down: no connection");
  cr_assert_eq(pg_tmp_up(&pg), 0);
  query_is("select count(*) from t", "1");

  char dir[PG_TMP_DIR_MAX];
  memcpy(dir, pg.dir, sizeof(dir));
  cr_assert_eq(pg_tmp_stop(&pg), 0);
  struct stat sb;
  cr_assert_neq(stat(dir, &sb), 0, "%s is removed", dir);
  cr_assert_lt(pg_tmp_query(uri, "select 1", out, sizeof(out)), 0,
               "stopped: no connection");
}

Test(pg_tmp, query_reports_no_row_null_and_errors, .fini = stop_server) {
  cr_assert_eq(pg_tmp_start(&pg), 0);
  char out[OUT_MAX];
  cr_assert_eq(pg_tmp_query(pg.uri, "select 1 where false", out, sizeof(out)),
               1);
  cr_assert_str_eq(out, "");
  cr_assert_eq(pg_tmp_query(pg.uri, "select null", out, sizeof(out)), 1);
  cr_assert_eq(pg_tmp_query(pg.uri, "create table u (v int)", out, sizeof(out)),
               1);
  cr_assert_lt(pg_tmp_query(pg.uri, "select nope", out, sizeof(out)), 0);
  cr_assert(strstr(out, "nope") != NULL, "%s", out);
  /* At the limit: 3 bytes and the NUL fit in 4; 4 bytes do not. */
  char small[4];
  cr_assert_eq(pg_tmp_query(pg.uri, "select 'abc'", small, sizeof(small)), 0);
  cr_assert_str_eq(small, "abc");
  cr_assert_lt(pg_tmp_query(pg.uri, "select 'abcd'", small, sizeof(small)), 0);
}

Test(pg_tmp, stop_is_safe_twice_and_unstarted) {
  pg_tmp_t never;
  memset(&never, 0, sizeof(never));
  cr_assert_eq(pg_tmp_stop(&never), 0);
  cr_assert_eq(pg_tmp_stop(&never), 0);
}
