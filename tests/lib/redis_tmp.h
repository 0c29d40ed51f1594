/* redis_tmp.h: a throwaway redis-server for Criterion tests.
 *
 * Started on 127.0.0.1 on a port picked free, with no persistence (a
 * restart loses every key), its files in a fresh directory under /tmp that
 * redis_tmp_stop removes.
 *
 * Guarantees:
 *  (1) Every wait is bounded (REDIS_TMP_TIMEOUT_MS).
 *  (2) No server outlives the test process: the child asks the kernel to
 *      kill it when its parent dies (PR_SET_PDEATHSIG).
 *  (3) Errors are returned (negative, reason on stderr), never asserted.
 * Blocking calls, for tests only: never from an actor.
 */
#ifndef REDIS_TMP_H
#define REDIS_TMP_H

#include <stdint.h>
#include <sys/types.h>

#define REDIS_TMP_TIMEOUT_MS 10000

typedef struct redis_tmp {
  char dir[64]; /* "" when not started */
  uint16_t port;
  pid_t pid; /* 0 when not running */
} redis_tmp_t;

/* Make the directory, pick a port and start the server; 0 once it answers
 * PING, or -1. */
int redis_tmp_start(redis_tmp_t *r);
/* Kill the server (SIGKILL: its data is gone) and start it again on the
 * same port. */
int redis_tmp_restart(redis_tmp_t *r);
/* Kill the server and remove its directory; safe to call twice. */
void redis_tmp_stop(redis_tmp_t *r);

#endif
