/* overcookied: the live server.
 *
 * Until the net and game layers land, it serves what the runtime can do so
 * far: a TCP echo on the live world, with clean shutdown on SIGINT/SIGTERM.
 */
#include "game_echo.h"
#include "net_live.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

typedef struct options {
  const char *bind;
  uint16_t port;
  uint64_t seed;
  bool seed_set;
  int log_level;
} options_t;

static void usage(FILE *out) {
  fprintf(out,
          "usage: overcookied [--bind ADDR] [--port N] [--seed N] "
          "[--log-level debug|info|warn|error]\n"
          "  --bind       address to listen on (default 127.0.0.1)\n"
          "  --port       TCP port (default 8080; 0 picks a free one)\n"
          "  --seed       seed of the world's random streams (default: random,"
          " logged)\n"
          "  --log-level  default info\n");
}

static int parse_level(const char *s) {
  const char *names[] = {"debug", "info", "warn", "error", "off"};
  for (int i = 0; i < 5; i++)
    if (strcmp(s, names[i]) == 0)
      return i;
  return -1;
}

static int parse_u64(const char *s, uint64_t max, uint64_t *out) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0' || v > max || s[0] == '-')
    return -1;
  *out = v;
  return 0;
}

static int parse_args(int argc, char **argv, options_t *o) {
  *o = (options_t){.bind = "127.0.0.1", .port = 8080, .log_level = RT_LOG_INFO};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    uint64_t n;
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      usage(stdout);
      exit(0);
    } else if (strcmp(a, "--bind") == 0 && v != NULL) {
      o->bind = v;
    } else if (strcmp(a, "--port") == 0 && v != NULL &&
               parse_u64(v, 65535, &n) == 0) {
      o->port = (uint16_t)n;
    } else if (strcmp(a, "--seed") == 0 && v != NULL &&
               parse_u64(v, UINT64_MAX, &n) == 0) {
      o->seed = n;
      o->seed_set = true;
    } else if (strcmp(a, "--log-level") == 0 && v != NULL &&
               parse_level(v) >= 0) {
      o->log_level = parse_level(v);
    } else {
      fprintf(stderr, "overcookied: bad or incomplete option '%s'\n", a);
      usage(stderr);
      return -1;
    }
    i++;
  }
  return 0;
}

static uint64_t random_seed(void) {
  uint64_t seed = 0;
  int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    if (read(fd, &seed, sizeof(seed)) != (ssize_t)sizeof(seed))
      seed = 0;
    close(fd);
  }
  return seed != 0 ? seed : (uint64_t)getpid() * 0x9e3779b97f4a7c15ULL;
}

/* Connections are descriptors: take the hard limit. */
static void raise_fd_limit(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

static void on_signal(evutil_socket_t sig, short what, void *arg) {
  (void)what;
  net_live_t *live = arg;
  rt_log(net_live_world(live), RT_LOG_INFO, "server.signal", "signal=%d",
         (int)sig);
  net_live_stop(live);
}

int main(int argc, char **argv) {
  options_t o;
  if (parse_args(argc, argv, &o) < 0)
    return 2;
  raise_fd_limit();
  signal(SIGPIPE, SIG_IGN);
  net_live_config_t cfg = {.seed = o.seed_set ? o.seed : random_seed(),
                           .log_level = o.log_level,
                           .hash_disabled = true};
  net_live_t *live = net_live_create(&cfg);
  if (live == NULL) {
    fprintf(stderr, "overcookied: cannot create the event loop\n");
    return 1;
  }
  rt_world_t *w = net_live_world(live);
  rt_listener_t *listener;
  int err = net_live_listen(live, o.bind, o.port, 0, &listener);
  if (err < 0) {
    fprintf(stderr, "overcookied: cannot listen on %s:%u: %s\n", o.bind,
            (unsigned)o.port, rt_strerror(err));
    net_live_destroy(live);
    return 1;
  }
  uint16_t port = net_live_listener_port(listener);
  rt_actor_id_t acceptor;
  err = game_echo_spawn_acceptor(w, listener, &acceptor);
  if (err < 0) {
    fprintf(stderr, "overcookied: %s\n", rt_strerror(err));
    rt_listener_close(listener);
    net_live_destroy(live);
    return 1;
  }
  struct event *sigint = evsignal_new(net_live_base(live), SIGINT, on_signal, live);
  struct event *sigterm =
      evsignal_new(net_live_base(live), SIGTERM, on_signal, live);
  event_add(sigint, NULL);
  event_add(sigterm, NULL);
  printf("overcookied: listening on http://%s:%u/ (TCP echo until the game "
         "lands)\n",
         o.bind, (unsigned)port);
  fflush(stdout);
  net_live_run(live);
  rt_log(w, RT_LOG_INFO, "server.stop", "reason=signal");
  event_free(sigint);
  event_free(sigterm);
  net_live_destroy(live);
  return 0;
}
