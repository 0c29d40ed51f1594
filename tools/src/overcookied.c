/* overcookied: the live server.
 *
 * Wires the layers: the live world (net_live), the HTTP/WebSocket server
 * (net_server) with the browser client's files, and the game (Manager,
 * Rooms, a Client session per WebSocket, the SQLite Store, the HTTP API).
 * SIGINT/SIGTERM stop accepting, send close frames and exit once the
 * connections are gone (or after a grace period).
 */
#include "game.h"
#include "game_echo.h"
#include "net_live.h"
#include "net_server.h"

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

#define SHUTDOWN_GRACE_US 2000000
#define SECRET_MIN_LEN 16

typedef struct options {
  const char *bind;
  uint16_t port;
  uint64_t seed;
  bool seed_set;
  int log_level;
  const char *db;
  const char *secret;
  const char *static_dir;
  const char *origins[NET_ORIGINS_MAX];
  uint32_t origins_len;
  uint32_t max_connections;
  game_config_t game;
  bool echo;
} options_t;

static void usage(FILE *out) {
  fprintf(out,
          "usage: overcookied [options]\n"
          "  --bind ADDR           address to listen on (default 127.0.0.1)\n"
          "  --port N              TCP port (default 8080; 0 picks a free one)\n"
          "  --db PATH             SQLite database (default overcookied.db)\n"
          "  --secret S            token signing key (default: $OC_JWT_SECRET,"
          " else random)\n"
          "  --allowed-origin O    WebSocket Origin to accept, repeatable\n"
          "                        (default: the request's own host)\n"
          "  --static DIR          browser client files (default game/web)\n"
          "  --max-connections N   default 20000; above it: 503\n"
          "game rules (seconds; fractions allowed where it makes sense):\n"
          "  --countdown S         default 5\n"
          "  --game-length N       whole seconds, default 60\n"
          "  --reconnect-grace S   default 10\n"
          "  --golden-min N        whole seconds, default 5\n"
          "  --golden-max N        whole seconds, default 10\n"
          "  --bonus S             double points after a golden cookie, "
          "default 3\n"
          "  --click-rate N        clicks per second per player, default 30"
          " (0: no limit)\n"
          "  --seed N              seed of the world's random streams"
          " (default: random, logged)\n"
          "  --log-level L         debug, info, warn, error (default info)\n"
          "  --echo                WebSocket sessions echo text, no token:"
          " for testing\n"
          "                        and benchmarking the network layer\n");
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

/* Seconds, possibly fractional, into nanoseconds; at most a day. */
static int parse_seconds(const char *s, rt_time_ns *out) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno != 0 || end == s || *end != '\0' || !(v >= 0) || v > 86400)
    return -1;
  *out = (rt_time_ns)(v * 1e9 + 0.5);
  return 0;
}

static int parse_args(int argc, char **argv, options_t *o) {
  *o = (options_t){.bind = "127.0.0.1",
                   .port = 8080,
                   .log_level = RT_LOG_INFO,
                   .db = "overcookied.db",
                   .static_dir = "game/web",
                   .max_connections = NET_CONNECTIONS_MAX_DEFAULT};
  game_config_defaults(&o->game);
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    uint64_t n;
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      usage(stdout);
      exit(0);
    } else if (strcmp(a, "--echo") == 0) {
      o->echo = true;
      continue;
    } else if (strcmp(a, "--bind") == 0 && v != NULL) {
      o->bind = v;
    } else if (strcmp(a, "--port") == 0 && v != NULL &&
               parse_u64(v, 65535, &n) == 0) {
      o->port = (uint16_t)n;
    } else if (strcmp(a, "--seed") == 0 && v != NULL &&
               parse_u64(v, UINT64_MAX, &n) == 0) {
      o->seed = n;
      o->seed_set = true;
    } else if (strcmp(a, "--db") == 0 && v != NULL) {
      o->db = v;
    } else if (strcmp(a, "--secret") == 0 && v != NULL) {
      o->secret = v;
    } else if (strcmp(a, "--static") == 0 && v != NULL) {
      o->static_dir = v;
    } else if (strcmp(a, "--allowed-origin") == 0 && v != NULL &&
               o->origins_len < NET_ORIGINS_MAX &&
               strlen(v) < NET_ORIGIN_LEN_MAX) {
      o->origins[o->origins_len++] = v;
    } else if (strcmp(a, "--max-connections") == 0 && v != NULL &&
               parse_u64(v, 10000000, &n) == 0 && n > 0) {
      o->max_connections = (uint32_t)n;
    } else if (strcmp(a, "--countdown") == 0 && v != NULL &&
               parse_seconds(v, &o->game.countdown) == 0) {
    } else if (strcmp(a, "--reconnect-grace") == 0 && v != NULL &&
               parse_seconds(v, &o->game.reconnect_grace) == 0) {
    } else if (strcmp(a, "--bonus") == 0 && v != NULL &&
               parse_seconds(v, &o->game.bonus) == 0) {
    } else if (strcmp(a, "--game-length") == 0 && v != NULL &&
               parse_u64(v, 3600, &n) == 0) {
      o->game.game_seconds = (uint32_t)n;
    } else if (strcmp(a, "--golden-min") == 0 && v != NULL &&
               parse_u64(v, 3600, &n) == 0) {
      o->game.golden_min_s = (uint32_t)n;
    } else if (strcmp(a, "--golden-max") == 0 && v != NULL &&
               parse_u64(v, 3600, &n) == 0) {
      o->game.golden_max_s = (uint32_t)n;
    } else if (strcmp(a, "--click-rate") == 0 && v != NULL &&
               parse_u64(v, 100000, &n) == 0) {
      o->game.click_rate = (uint32_t)n;
      o->game.click_burst = n > 0 ? (uint32_t)n : 1;
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

typedef struct server {
  net_live_t *live;
  net_server_t *srv;
  struct event *drain_check;
  bool stopping;
} server_t;

/* After a shutdown request: exit as soon as every connection is gone. */
static void on_drain_check(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  server_t *s = arg;
  net_server_stats_t st;
  net_server_get_stats(s->srv, &st);
  if (st.connections == 0) {
    net_live_stop(s->live);
    return;
  }
  struct timeval tv = {0, 50000};
  event_add(s->drain_check, &tv);
}

static void on_signal(evutil_socket_t sig, short what, void *arg) {
  (void)what;
  server_t *s = arg;
  if (s->stopping) {
    net_live_stop(s->live); /* a second signal: now */
    return;
  }
  s->stopping = true;
  rt_log(net_live_world(s->live), RT_LOG_INFO, "server.signal",
         "signal=%d action=drain", (int)sig);
  net_server_shutdown(s->srv);
  struct timeval grace = {SHUTDOWN_GRACE_US / 1000000,
                          SHUTDOWN_GRACE_US % 1000000};
  event_base_loopexit(net_live_base(s->live), &grace);
  on_drain_check(-1, 0, s);
}

/* The token key: flag, else environment, else random (tokens then die with
 * the process, which a warning says). */
static const char *choose_secret(const options_t *o, rt_world_t *w,
                                 char *buf, size_t cap) {
  const char *secret = o->secret != NULL ? o->secret : getenv("OC_JWT_SECRET");
  if (secret != NULL && strlen(secret) >= SECRET_MIN_LEN)
    return secret;
  if (secret != NULL)
    rt_log(w, RT_LOG_WARN, "server.secret",
           "reason=too_short min_len=%d action=random", SECRET_MIN_LEN);
  else
    rt_log(w, RT_LOG_WARN, "server.secret",
           "reason=unset action=random note=tokens_end_with_this_process");
  for (size_t i = 0; i + 17 < cap && i < 64; i += 16)
    snprintf(buf + i, cap - i, "%016" PRIx64, random_seed());
  return buf;
}

int main(int argc, char **argv) {
  options_t o;
  if (parse_args(argc, argv, &o) < 0)
    return 2;
  const char *why = NULL;
  if (game_config_check(&o.game, &why) < 0) {
    fprintf(stderr, "overcookied: %s\n", why);
    return 2;
  }
  raise_fd_limit();
  signal(SIGPIPE, SIG_IGN);
  net_live_config_t cfg = {.seed = o.seed_set ? o.seed : random_seed(),
                           .log_level = o.log_level,
                           .hash_disabled = true};
  server_t s = {0};
  s.live = net_live_create(&cfg);
  if (s.live == NULL) {
    fprintf(stderr, "overcookied: cannot create the event loop\n");
    return 1;
  }
  rt_world_t *w = net_live_world(s.live);
  char secret_buf[80];
  const char *secret = choose_secret(&o, w, secret_buf, sizeof(secret_buf));
  o.game.seed = cfg.seed;
  game_store_config_t store = {.path = o.db};
  game_t *game = NULL;
  int err = game_create(w, &o.game, secret, &store, &game);
  if (err < 0) {
    fprintf(stderr, "overcookied: cannot start the game (database %s): %s\n",
            o.db, rt_strerror(err));
    net_live_destroy(s.live);
    return 1;
  }
  net_static_t *statics = NULL;
  err = net_static_load(o.static_dir, &statics);
  if (err < 0) {
    fprintf(stderr, "overcookied: cannot load %s: %s\n", o.static_dir,
            rt_strerror(err));
    net_live_destroy(s.live);
    game_free(game);
    return 1;
  }
  if (net_static_count(statics) == 0)
    rt_log(w, RT_LOG_WARN, "server.static", "dir=%s files=0", o.static_dir);
  rt_listener_t *listener;
  err = net_live_listen(s.live, o.bind, o.port, 0, &listener);
  if (err < 0) {
    fprintf(stderr, "overcookied: cannot listen on %s:%u: %s\n", o.bind,
            (unsigned)o.port, rt_strerror(err));
    net_static_free(statics);
    net_live_destroy(s.live);
    game_free(game);
    return 1;
  }
  uint16_t port = net_live_listener_port(listener);
  net_server_config_t scfg = {
      .connections_max = o.max_connections,
      .statics = statics,
      .session = game_session(game),
      .authenticate = game_authenticate,
      .auth_ctx = game,
      .metrics = game_metrics,
      .metrics_ctx = game,
      .routes = {{"POST", "/api/login", game_api_login, game},
                 {"GET", "/api/leaderboard", game_api_leaderboard, game},
                 {"GET", "/api/history", game_api_history, game}},
      .routes_len = 3,
  };
  game_client_mailbox(&scfg.mailbox_cap, &scfg.overflow, &scfg.rules,
                      &scfg.rules_len);
  if (o.echo) {
    scfg.session = &game_echo_session;
    scfg.authenticate = NULL;
  }
  for (uint32_t i = 0; i < o.origins_len; i++)
    scfg.allowed_origins[i] = o.origins[i];
  scfg.allowed_origins_len = o.origins_len;
  err = net_server_start(w, listener, &scfg, &s.srv);
  if (err < 0) {
    fprintf(stderr, "overcookied: %s\n", rt_strerror(err));
    rt_listener_close(listener);
    net_static_free(statics);
    net_live_destroy(s.live);
    game_free(game);
    return 1;
  }
  struct event_base *base = net_live_base(s.live);
  struct event *sigint = evsignal_new(base, SIGINT, on_signal, &s);
  struct event *sigterm = evsignal_new(base, SIGTERM, on_signal, &s);
  s.drain_check = evtimer_new(base, on_drain_check, &s);
  event_add(sigint, NULL);
  event_add(sigterm, NULL);
  rt_log(w, RT_LOG_INFO, "server.start",
         "url=http://%s:%u/ static_files=%u max_connections=%u db=%s "
         "seed=%" PRIu64 " countdown_ms=%" PRId64 " game_s=%u",
         o.bind, (unsigned)port, net_static_count(statics), o.max_connections,
         o.db, cfg.seed, (int64_t)(o.game.countdown / RT_NS_PER_MS),
         o.game.game_seconds);
  printf("overcookied: listening on http://%s:%u/\n", o.bind, (unsigned)port);
  fflush(stdout);
  net_live_run(s.live);
  rt_log(w, RT_LOG_INFO, "server.stop", "reason=%s",
         s.stopping ? "signal" : "loop_ended");
  event_free(sigint);
  event_free(sigterm);
  event_free(s.drain_check);
  net_live_destroy(s.live); /* stops every actor, then frees the world */
  net_server_free(s.srv);
  game_free(game);
  net_static_free(statics);
  return 0;
}
