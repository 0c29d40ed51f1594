/* redis_tmp.c: see redis_tmp.h. */
#define _GNU_SOURCE
#include "redis_tmp.h"

#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint16_t pick_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0)
    return 0;
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof(sa);
  uint16_t port = 0;
  if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
      getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
    port = ntohs(sa.sin_port);
  close(fd);
  return port;
}

static bool answers(uint16_t port) {
  struct timeval tv = {.tv_sec = 1};
  redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
  bool ok = false;
  if (c != NULL && c->err == 0) {
    redisReply *r = redisCommand(c, "PING");
    ok = r != NULL && r->type == REDIS_REPLY_STATUS &&
         strcmp(r->str, "PONG") == 0;
    if (r != NULL)
      freeReplyObject(r);
  }
  if (c != NULL)
    redisFree(c);
  return ok;
}

static int spawn(redis_tmp_t *r) {
  char port[8];
  snprintf(port, sizeof(port), "%u", (unsigned)r->port);
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0)
    return -1;
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
      _exit(127);
    char log[96];
    snprintf(log, sizeof(log), "%s/redis.log", r->dir);
    execlp("redis-server", "redis-server", "--port", port, "--bind",
           "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", r->dir,
           "--logfile", log, (char *)NULL);
    _exit(127);
  }
  r->pid = pid;
  int64_t deadline = now_ms() + REDIS_TMP_TIMEOUT_MS;
  while (now_ms() < deadline) {
    if (answers(r->port))
      return 0;
    if (waitpid(pid, NULL, WNOHANG) == pid) {
      r->pid = 0;
      fprintf(stderr, "redis_tmp: redis-server exited (see %s)\n", r->dir);
      return -1;
    }
    usleep(20000);
  }
  fprintf(stderr, "redis_tmp: redis-server did not answer on %u\n",
          (unsigned)r->port);
  return -1;
}

int redis_tmp_start(redis_tmp_t *r) {
  memset(r, 0, sizeof(*r));
  snprintf(r->dir, sizeof(r->dir), "/tmp/oc-redis-XXXXXX");
  if (mkdtemp(r->dir) == NULL) {
    r->dir[0] = '\0';
    return -1;
  }
  r->port = pick_port();
  if (r->port == 0 || spawn(r) < 0) {
    redis_tmp_stop(r);
    return -1;
  }
  return 0;
}

static void kill_server(redis_tmp_t *r) {
  if (r->pid > 0) {
    kill(r->pid, SIGKILL);
    waitpid(r->pid, NULL, 0);
    r->pid = 0;
  }
}

int redis_tmp_restart(redis_tmp_t *r) {
  kill_server(r);
  return spawn(r);
}

void redis_tmp_stop(redis_tmp_t *r) {
  kill_server(r);
  if (r->dir[0] != '\0') {
    char cmd[96];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", r->dir);
    if (system(cmd) != 0)
      fprintf(stderr, "redis_tmp: could not remove %s\n", r->dir);
    r->dir[0] = '\0';
  }
}
