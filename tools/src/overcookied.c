/* overcookied: the live server.
 *
 * Wires the layers: the live world (net_live), the HTTP/WebSocket server
 * (net_server) with the browser client's files, and the game (Manager,
 * Rooms, a Client session per WebSocket, the SQLite Store, the HTTP API);
 * server.c does the assembly, which the replay tool shares. With --record
 * DIR every input that crosses the world seam goes into a trace
 * (net/net_record.h) that tools/overcookied-replay plays back.
 * SIGINT/SIGTERM stop accepting, send close frames and exit once the
 * connections are gone (or after a grace period).
 */
/* realpath is X/Open, beyond the project's POSIX baseline. */
#define _XOPEN_SOURCE 700

#include "net_live.h"
#include "net_record.h"
#include "server.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <unistd.h>

#define SHUTDOWN_GRACE_US 2000000
#define SECRET_MIN_LEN 16

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

typedef struct live_server {
  const server_options_t *opts;
  net_live_t *live;
  server_t server;
  net_record_t *rec; /* NULL: not recording */
  uint16_t port;
  struct event *drain_check;
  bool stopping;
} live_server_t;

static int do_listen(void *ctx, rt_listener_t **out) {
  live_server_t *s = ctx;
  int rc = net_live_listen(s->live, s->opts->bind, s->opts->port, 0, out);
  if (rc == 0)
    s->port = net_live_listener_port(*out);
  return rc;
}

/* After a shutdown request: exit as soon as every connection is gone. */
static void on_drain_check(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  live_server_t *s = arg;
  net_server_stats_t st;
  net_server_get_stats(s->server.srv, &st);
  if (st.connections == 0) {
    net_live_stop(s->live);
    return;
  }
  struct timeval tv = {0, 50000};
  event_add(s->drain_check, &tv);
}

static void on_signal(evutil_socket_t sig, short what, void *arg) {
  (void)what;
  live_server_t *s = arg;
  if (s->stopping) {
    net_live_stop(s->live); /* a second signal: now */
    return;
  }
  s->stopping = true;
  rt_log(net_live_world(s->live), RT_LOG_INFO, "server.signal",
         "signal=%d action=drain", (int)sig);
  if (s->rec != NULL)
    net_record_control(s->rec, NET_RECORD_CONTROL_SHUTDOWN);
  net_server_shutdown(s->server.srv);
  struct timeval grace = {SHUTDOWN_GRACE_US / 1000000,
                          SHUTDOWN_GRACE_US % 1000000};
  event_base_loopexit(net_live_base(s->live), &grace);
  on_drain_check(-1, 0, s);
}

/* The token key given by --secret, else OC_JWT_SECRET; NULL when neither
 * is set. A key shorter than SECRET_MIN_LEN is refused (-1 after a
 * message): replacing it by a random one would end every player's token,
 * and with it their history, at the next restart. */
static int given_secret(const server_options_t *o, const char **out) {
  const char *from = o->secret != NULL ? "--secret" : "OC_JWT_SECRET";
  const char *secret = o->secret != NULL ? o->secret : getenv("OC_JWT_SECRET");
  if (secret != NULL && strlen(secret) < SECRET_MIN_LEN) {
    fprintf(stderr,
            "overcookied: %s is %zu characters; it must be at least %d (it "
            "signs every player's token)\n",
            from, strlen(secret), SECRET_MIN_LEN);
    return -1;
  }
  *out = secret;
  return 0;
}

/* The token key: the given one, else random (tokens then die with the
 * process, which a warning says). A recording never holds it: token checks
 * are recorded as results (game_int.h, GAME_EXT_AUTH_*). */
static const char *choose_secret(const char *given, rt_world_t *w, char *buf,
                                 size_t cap) {
  if (given != NULL)
    return given;
  rt_log(w, RT_LOG_WARN, "server.secret",
         "reason=unset action=random note=tokens_end_with_this_process");
  for (size_t i = 0; i + 17 < cap && i < 64; i += 16)
    snprintf(buf + i, cap - i, "%016" PRIx64, random_seed());
  return buf;
}

/* The /metrics token: --metrics-token, else OC_METRICS_TOKEN; a short one
 * is refused like the token key (-1 after a message). */
static int metrics_token(server_options_t *o) {
  const char *from =
      o->metrics_token != NULL ? "--metrics-token" : "OC_METRICS_TOKEN";
  const char *token =
      o->metrics_token != NULL ? o->metrics_token : getenv("OC_METRICS_TOKEN");
  if (token != NULL && token[0] == '\0')
    token = NULL;
  if (token != NULL && strlen(token) < SECRET_MIN_LEN) {
    fprintf(stderr,
            "overcookied: %s is %zu characters; it must be at least "
            "%d\n",
            from, strlen(token), SECRET_MIN_LEN);
    return -1;
  }
  o->metrics_token = token;
  return 0;
}

/* On a public address: an Origin check against the request's own Host
 * trusts a header that a DNS-rebinding page controls, so the allowed
 * origin should be explicit; and /metrics should not be open. */
static void warn_public(const server_options_t *o) {
  bool loopback = strcmp(o->bind, "localhost") == 0 ||
                  strncmp(o->bind, "127.", 4) == 0 ||
                  strcmp(o->bind, "::1") == 0;
  if (loopback)
    return;
  if (o->metrics_token == NULL)
    fprintf(stderr,
            "overcookied: WARNING: /metrics is open to anyone who reaches "
            "%s; set --metrics-token (or OC_METRICS_TOKEN) and give it to "
            "Prometheus as a bearer token\n",
            o->bind);
  if (o->origins_len == 0 && !o->echo)
    fprintf(stderr,
            "overcookied: WARNING: listening on %s without --allowed-origin: "
            "WebSocket origins are checked against the request's own Host, "
            "which a DNS-rebinding page controls; name your site's origin "
            "with --allowed-origin https://your.site\n",
            o->bind);
}

/* A frontend allowed to call the API cross-origin (--cors-origin) also
 * opens the game's WebSocket, which checks Origin against another list
 * (--allowed-origin, or the request's own Host): say so when that check
 * would refuse it, rather than let the game fail with a 403 later. */
static void warn_cors_without_websocket(const server_options_t *o) {
  for (uint32_t i = 0; i < o->cors_origins_len; i++) {
    bool allowed = false;
    for (uint32_t k = 0; k < o->origins_len; k++)
      allowed = allowed || strcasecmp(o->cors_origins[i], o->origins[k]) == 0;
    if (!allowed)
      fprintf(stderr,
              "overcookied: WARNING: --cors-origin %s is not an "
              "--allowed-origin: its pages may call the API but not open "
              "the game's WebSocket; add --allowed-origin %s\n",
              o->cors_origins[i], o->cors_origins[i]);
  }
}

/* The browser files when --static is not given: beside the executable,
 * in the install prefix (PREFIX/bin/overcookied ->
 * PREFIX/share/overcookied/web) or the build tree (BUILD/bin/overcookied
 * -> BUILD/share/overcookied/web, a link to game/web made by CMake), from
 * any working directory. 0, or -1 with the place looked at in buf. */
static int find_static_dir(char *buf, size_t cap) {
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (n <= 0) {
    snprintf(buf, cap, "(the executable's path is unknown)");
    return -1;
  }
  exe[n] = '\0';
  char *slash = strrchr(exe, '/');
  if (slash != NULL)
    *slash = '\0';
  int len = snprintf(buf, cap, "%.*s/../share/overcookied/web",
                     (int)(cap > 64 ? cap - 64 : 0), exe);
  if (len < 0 || (size_t)len >= cap)
    return -1;
  char index[PATH_MAX + 16];
  snprintf(index, sizeof(index), "%s/index.html", buf);
  char real[PATH_MAX];
  if (access(index, R_OK) != 0 || realpath(buf, real) == NULL)
    return -1;
  snprintf(buf, cap, "%s", real);
  return 0;
}

static int start_recording(live_server_t *s, char *err, size_t cap) {
  /* The static files' absolute path, so a replay run from elsewhere on
   * this machine finds them. */
  server_options_t o = *s->opts;
  char static_abs[PATH_MAX];
  if (realpath(o.static_dir, static_abs) != NULL)
    o.static_dir = static_abs;
  char config[SERVER_CONFIG_MAX];
  if (server_options_format(&o, config, sizeof(config)) < 0) {
    snprintf(err, cap,
             "the server's flags (origins, --static path) do not fit in a "
             "trace's %u bytes: shorten them",
             (unsigned)NET_TRACE_CONFIG_MAX);
    return RT_ELIMIT;
  }
  net_record_config_t rc = {
      .dir = s->opts->record_dir,
      .max_bytes_per_file = s->opts->record_max_mb << 20,
      .config = config,
      .flags = NET_RECORD_F_LIVE | NET_RECORD_F_RUN_HASH,
  };
  return net_record_start(net_live_world(s->live), &rc, &s->rec, err, cap);
}

/* Stop the actors while still recording (their last writes and closes are
 * inputs too), then finish the trace. */
static int stop_recording(live_server_t *s) {
  if (s->rec == NULL)
    return 0;
  rt_world_t *w = net_live_world(s->live);
  net_record_control(s->rec, NET_RECORD_CONTROL_TEARDOWN);
  rt_world_stop_all(w, RT_REASON_SHUTDOWN);
  net_record_stats_t st;
  char err[NET_TRACE_ERR_MAX];
  int rc = net_record_stop(s->rec, &st, err, sizeof(err));
  s->rec = NULL;
  if (rc < 0) {
    fprintf(stderr, "overcookied: the recording failed: %s\n", err);
    return rc;
  }
  fprintf(stderr,
          "overcookied: recorded %" PRIu64 " records, %" PRIu64
          " bytes in %u file(s) to %s%s\n",
          st.records, st.bytes_written, st.files, s->opts->record_dir,
          st.records_lost > 0 ? " (some were LOST: the disk was behind)" : "");
  return 0;
}

/* Run until a signal drains the server, or the loop ends. */
static void serve(live_server_t *s, uint64_t seed) {
  const server_options_t *o = s->opts;
  rt_world_t *w = net_live_world(s->live);
  struct event_base *base = net_live_base(s->live);
  struct event *sigint = evsignal_new(base, SIGINT, on_signal, s);
  struct event *sigterm = evsignal_new(base, SIGTERM, on_signal, s);
  s->drain_check = evtimer_new(base, on_drain_check, s);
  event_add(sigint, NULL);
  event_add(sigterm, NULL);
  char db[GAME_STORE_DESCRIBE_MAX];
  game_store_describe(o->db, db, sizeof(db));
  rt_log(w, RT_LOG_INFO, "server.start",
         "url=http://%s:%u/ static_files=%u max_connections=%u db=\"%s\" "
         "db_sync=%s seed=%" PRIu64 " countdown_ms=%" PRId64
         " game_s=%u record=%s",
         o->bind, (unsigned)s->port, net_static_count(s->server.statics),
         o->max_connections, db,
         o->db_sync == GAME_STORE_SYNC_NORMAL ? "normal" : "full", seed,
         (int64_t)(o->game.countdown / RT_NS_PER_MS), o->game.game_seconds,
         o->record_dir != NULL ? o->record_dir : "off");
  printf("overcookied: listening on http://%s:%u/\n", o->bind,
         (unsigned)s->port);
  fflush(stdout);
  net_live_run(s->live);
  rt_log(w, RT_LOG_INFO, "server.stop", "reason=%s",
         s->stopping ? "signal" : "loop_ended");
  event_free(sigint);
  event_free(sigterm);
  event_free(s->drain_check);
  s->drain_check = NULL;
}

int main(int argc, char **argv) {
  server_options_t o;
  int parsed = server_options_parse(argc, argv, 1, &o);
  if (parsed == SERVER_OPTIONS_HELP) {
    server_usage(stdout);
    return 0;
  }
  if (parsed < 0)
    return 2;
  const char *why = NULL;
  if (game_config_check(&o.game, &why) < 0) {
    fprintf(stderr, "overcookied: %s\n", why);
    return 2;
  }
  const char *given = NULL;
  if (given_secret(&o, &given) < 0)
    return 2;
  char static_buf[PATH_MAX];
  if (o.static_dir == NULL) {
    if (find_static_dir(static_buf, sizeof(static_buf)) < 0)
      fprintf(stderr,
              "overcookied: WARNING: no browser files at %s: every page "
              "will be 404 (the API and WebSockets still work); pass "
              "--static DIR\n",
              static_buf);
    o.static_dir = static_buf;
  }
  if (metrics_token(&o) < 0)
    return 2;
  warn_public(&o);
  warn_cors_without_websocket(&o);
  raise_fd_limit();
  signal(SIGPIPE, SIG_IGN);
  net_live_config_t cfg = {.seed = o.seed_set ? o.seed : random_seed(),
                           .log_level = o.log_level,
                           /* The run hash is a recording's check. */
                           .hash_disabled = o.record_dir == NULL};
  live_server_t s = {.opts = &o};
  s.live = net_live_create(&cfg);
  if (s.live == NULL) {
    fprintf(stderr, "overcookied: cannot create the event loop\n");
    return 1;
  }
  rt_world_t *w = net_live_world(s.live);
  char err[NET_TRACE_ERR_MAX];
  if (o.record_dir != NULL && start_recording(&s, err, sizeof(err)) < 0) {
    fprintf(stderr, "overcookied: cannot record into %s: %s\n", o.record_dir,
            err);
    net_live_destroy(s.live);
    return 1;
  }
  char secret_buf[80];
  const char *secret = choose_secret(given, w, secret_buf, sizeof(secret_buf));
  int rc = server_start(w, &o, secret, NULL, do_listen, &s, &s.server, err,
                        sizeof(err));
  if (rc < 0) {
    fprintf(stderr, "overcookied: %s\n", err);
    stop_recording(&s);
    net_live_destroy(s.live);
    server_free(&s.server);
    return 1;
  }
  serve(&s, cfg.seed);
  int status = stop_recording(&s) < 0 ? 1 : 0;
  net_live_destroy(s.live); /* stops every actor, then frees the world */
  server_free(&s.server);
  return status;
}
