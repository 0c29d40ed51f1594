/* pg_tmp.c: runs tools/lib/pgtmp (OC_SOURCE_DIR, from CMake) and queries
 * with libpq. See pg_tmp.h for the guarantees. */
#include "pg_tmp.h"

#include <errno.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef OC_SOURCE_DIR
#error "OC_SOURCE_DIR must name the source tree (tests/CMakeLists.txt)"
#endif

#define PGTMP_SCRIPT OC_SOURCE_DIR "/tools/lib/pgtmp"

/* Run argv; when out is not NULL, collect its stdout (at most out_size - 1
 * bytes, the rest is read and dropped so the child never blocks). Returns
 * the exit status, or -1 when it could not run or died of a signal. The
 * child's own waits are bounded (Guarantee (1)), so waitpid is too. */
static int run(char *const argv[], char *out, size_t out_size) {
  int fds[2];
  if (pipe(fds) != 0)
    return -1;
  pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    return -1;
  }
  if (pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    close(fds[0]);
    close(fds[1]);
    execv(argv[0], argv);
    fprintf(stderr, "pg_tmp: cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(127);
  }
  close(fds[1]);
  size_t used = 0;
  char drop[256];
  for (;;) {
    char *dst = out != NULL && used + 1 < out_size ? out + used : drop;
    size_t room = dst == drop ? sizeof(drop) : out_size - 1 - used;
    ssize_t n = read(fds[0], dst, room);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    if (dst != drop)
      used += (size_t)n;
  }
  close(fds[0]);
  if (out != NULL && out_size > 0)
    out[used] = '\0';
  int status;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR)
      return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int script(const char *cmd, const pg_tmp_t *pg) {
  if (pg->dir[0] == '\0')
    return -1;
  char *argv[] = {(char *)"/usr/bin/python3", (char *)PGTMP_SCRIPT,
                  (char *)cmd, (char *)pg->dir, NULL};
  return run(argv, NULL, 0) == 0 ? 0 : -1;
}

static void remove_dir(const char *dir) {
  char *argv[] = {(char *)"/bin/rm", (char *)"-rf", (char *)dir, NULL};
  (void)run(argv, NULL, 0);
}

int pg_tmp_start(pg_tmp_t *pg) {
  memset(pg, 0, sizeof(*pg));
  char dir[PG_TMP_DIR_MAX] = "/tmp/oc-pg-XXXXXX";
  if (mkdtemp(dir) == NULL) {
    fprintf(stderr, "pg_tmp: mkdtemp: %s\n", strerror(errno));
    return -1;
  }
  char pid[24];
  snprintf(pid, sizeof(pid), "%ld", (long)getpid()); /* Guarantee (2) */
  char *argv[] = {(char *)"/usr/bin/python3", (char *)PGTMP_SCRIPT,
                  (char *)"start", dir, (char *)"--watch", pid, NULL};
  char uri[PG_TMP_URI_MAX];
  int rc = run(argv, uri, sizeof(uri));
  uri[strcspn(uri, "\n")] = '\0';
  if (rc != 0 || strncmp(uri, "postgresql://", 13) != 0) {
    fprintf(stderr, "pg_tmp: pgtmp start %s failed (exit %d)\n", dir, rc);
    remove_dir(dir);
    return -1;
  }
  snprintf(pg->dir, sizeof(pg->dir), "%s", dir);
  snprintf(pg->uri, sizeof(pg->uri), "%s", uri);
  return 0;
}

int pg_tmp_restart(pg_tmp_t *pg) { return script("restart", pg); }
int pg_tmp_down(pg_tmp_t *pg) { return script("down", pg); }
int pg_tmp_up(pg_tmp_t *pg) { return script("up", pg); }

int pg_tmp_stop(pg_tmp_t *pg) {
  if (pg->dir[0] == '\0')
    return 0;
  int rc = script("stop", pg);
  remove_dir(pg->dir); /* also ends the watcher (it polls for the dir) */
  memset(pg, 0, sizeof(*pg));
  return rc;
}

int pg_tmp_query(const char *uri, const char *sql, char *out,
                 size_t out_size) {
  if (out == NULL || out_size == 0)
    return -1;
  out[0] = '\0';
  char timeout[16];
  snprintf(timeout, sizeof(timeout), "%d", PG_TMP_CONNECT_TIMEOUT_S);
  /* expand_dbname: the URI's fields, then connect_timeout on top. */
  const char *keys[] = {"dbname", "connect_timeout", NULL};
  const char *vals[] = {uri, timeout, NULL};
  PGconn *conn = PQconnectdbParams(keys, vals, 1);
  if (conn == NULL) {
    snprintf(out, out_size, "out of memory");
    return -1;
  }
  int rc = -1;
  PGresult *res = NULL;
  if (PQstatus(conn) != CONNECTION_OK) {
    snprintf(out, out_size, "%s", PQerrorMessage(conn));
    goto done;
  }
  res = PQexec(conn, sql);
  ExecStatusType st = PQresultStatus(res);
  if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
    snprintf(out, out_size, "%s", PQerrorMessage(conn));
    goto done;
  }
  if (st == PGRES_COMMAND_OK || PQntuples(res) == 0 || PQnfields(res) == 0 ||
      PQgetisnull(res, 0, 0)) {
    rc = 1;
    goto done;
  }
  const char *value = PQgetvalue(res, 0, 0);
  size_t len = strlen(value);
  if (len + 1 > out_size) {
    snprintf(out, out_size, "value of %zu bytes does not fit", len);
    goto done;
  }
  memcpy(out, value, len + 1);
  rc = 0;
done:
  if (rc < 0)
    fprintf(stderr, "pg_tmp: %s: %s", sql, out);
  PQclear(res);
  PQfinish(conn);
  return rc;
}
