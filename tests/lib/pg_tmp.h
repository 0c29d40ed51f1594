/* pg_tmp.h: a throwaway PostgreSQL server for Criterion tests.
 *
 * A thin C face on tools/lib/pgtmp (the script is the one place that knows
 * how to initdb, pick a port, start and stop the server; the Python live
 * tests use it too). The server listens on 127.0.0.1 on a picked port, with
 * a password user and database `overcookied`; its files live in a fresh
 * directory under /tmp that pg_tmp_stop removes.
 *
 * Guarantees:
 *  (1) Every call is bounded: the script bounds each of its waits
 *      (PGTMP_TIMEOUT, default 30 s) and the query connects with a
 *      connect_timeout of PG_TMP_CONNECT_TIMEOUT_S.
 *  (2) No server outlives the process that started it: pg_tmp_start asks
 *      the script to watch this process (--watch getpid()), so a test
 *      killed by its timeout, or failing before pg_tmp_stop, leaves no
 *      server and no directory behind (within about a second).
 *  (3) Errors are returned (negative), never asserted: a test decides
 *      what a failure means, and the reason is printed on stderr.
 * Blocking calls, for tests only: never from an actor.
 */
#ifndef PG_TMP_H
#define PG_TMP_H

#include <stddef.h>

#define PG_TMP_DIR_MAX 64
#define PG_TMP_URI_MAX 256
#define PG_TMP_CONNECT_TIMEOUT_S 10

typedef struct pg_tmp {
  char dir[PG_TMP_DIR_MAX]; /* the server's files; "" when not started */
  char uri[PG_TMP_URI_MAX]; /* postgresql://overcookied:PW@127.0.0.1:P/overcookied */
} pg_tmp_t;

/* Create the directory, initdb and start a server; fills pg->uri.
 * 0, or -1 (the script's reason on stderr; nothing is left running). */
int pg_tmp_start(pg_tmp_t *pg);
/* Stop and start again on the same port and data: the URI stays valid. */
int pg_tmp_restart(pg_tmp_t *pg);
/* An outage: stop the server, keep its data (pg_tmp_up starts it again on
 * the same port). */
int pg_tmp_down(pg_tmp_t *pg);
int pg_tmp_up(pg_tmp_t *pg);
/* Stop the server (fast, then immediate, then SIGKILL) and remove its
 * directory. Safe on a pg_tmp_t that never started or already stopped. */
int pg_tmp_stop(pg_tmp_t *pg);

/* Run one SQL statement on `uri` (borrowed) and copy the first column of
 * the first row, as text, into out (NUL-terminated).
 *   0   a value was copied;
 *   1   the statement returned no row, or NULL (out is "");
 *  -1   connection or statement failed, or the value does not fit in
 *       out_size (out holds libpq's message, cut to fit). */
int pg_tmp_query(const char *uri, const char *sql, char *out, size_t out_size);

#endif
