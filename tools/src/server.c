/* server.c: options and assembly of the server (server.h). */
#include "server.h"

#include "game_echo.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

void server_usage(FILE *out) {
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
          "  --record DIR          record every input into a trace in DIR\n"
          "                        (replay it with tools/overcookied-replay)\n"
          "  --record-max-mb N     rotate trace files at N MiB (default 256)\n"
          "  --ws-park-after S     free a quiet WebSocket's wslay context after\n"
          "                        S seconds without a frame (default 10)\n"
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

/* Decimal digits only: strtoull alone takes leading spaces and a sign
 * (" -1" would wrap to 2^64 - 1). */
static int parse_u64(const char *s, uint64_t max, uint64_t *out) {
  if (s[0] < '0' || s[0] > '9')
    return -1;
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno != 0 || *end != '\0' || v > max)
    return -1;
  *out = v;
  return 0;
}

/* Seconds, possibly fractional, into nanoseconds; at most a day. Digits
 * and a point only: strtod alone also reads hex ("0x10"), exponents,
 * "inf" and leading spaces. */
static int parse_seconds(const char *s, rt_time_ns *out) {
  if (s[0] == '\0' || strspn(s, "0123456789.") != strlen(s))
    return -1;
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno != 0 || end == s || *end != '\0' || !(v >= 0) || v > 86400)
    return -1;
  *out = (rt_time_ns)(v * 1e9 + 0.5);
  return 0;
}

int server_options_parse(int argc, char **argv, int first,
                         server_options_t *o) {
  *o = (server_options_t){.bind = "127.0.0.1",
                          .port = 8080,
                          .log_level = RT_LOG_INFO,
                          .db = "overcookied.db",
                          .static_dir = "game/web",
                          .max_connections = NET_CONNECTIONS_MAX_DEFAULT,
                          .record_max_mb = 256};
  game_config_defaults(&o->game);
  for (int i = first; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    /* An empty address, path, key or origin means nothing, and an empty
     * value would be a line of its own in a trace's flags: refused. */
    const char *text = v != NULL && v[0] != '\0' ? v : NULL;
    uint64_t n;
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      return SERVER_OPTIONS_HELP;
    } else if (strcmp(a, "--echo") == 0) {
      o->echo = true;
      continue;
    } else if (strcmp(a, "--bind") == 0 && text != NULL) {
      o->bind = v;
    } else if (strcmp(a, "--port") == 0 && v != NULL &&
               parse_u64(v, 65535, &n) == 0) {
      o->port = (uint16_t)n;
    } else if (strcmp(a, "--seed") == 0 && v != NULL &&
               parse_u64(v, UINT64_MAX, &n) == 0) {
      o->seed = n;
      o->seed_set = true;
    } else if (strcmp(a, "--db") == 0 && text != NULL) {
      o->db = v;
    } else if (strcmp(a, "--secret") == 0 && text != NULL) {
      o->secret = v;
    } else if (strcmp(a, "--static") == 0 && text != NULL) {
      o->static_dir = v;
    } else if (strcmp(a, "--record") == 0 && text != NULL) {
      o->record_dir = v;
    } else if (strcmp(a, "--record-max-mb") == 0 && v != NULL &&
               parse_u64(v, 1u << 20, &n) == 0 && n > 0) {
      o->record_max_mb = n;
    } else if (strcmp(a, "--allowed-origin") == 0 && text != NULL &&
               o->origins_len < NET_ORIGINS_MAX &&
               strlen(v) < NET_ORIGIN_LEN_MAX) {
      o->origins[o->origins_len++] = v;
    } else if (strcmp(a, "--max-connections") == 0 && v != NULL &&
               parse_u64(v, 10000000, &n) == 0 && n > 0) {
      o->max_connections = (uint32_t)n;
    } else if (strcmp(a, "--ws-park-after") == 0 && v != NULL &&
               parse_seconds(v, &o->ws_park_after) == 0 &&
               o->ws_park_after > 0) {
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
      server_usage(stderr);
      return -1;
    }
    i++;
  }
  return 0;
}

/* Nanoseconds as exact decimal seconds. */
static int put_seconds(char *out, size_t cap, const char *flag,
                       rt_time_ns ns) {
  return snprintf(out, cap, "\n%s\n%" PRId64 ".%09" PRId64, flag,
                  (int64_t)(ns / RT_NS_PER_S), (int64_t)(ns % RT_NS_PER_S));
}

/* One argument per line: a path may hold spaces, never a newline. */
int server_options_format(const server_options_t *o, char *out, size_t cap) {
  size_t len = 0;
  int n;
#define PUT(expr)                                                              \
  do {                                                                         \
    n = (expr);                                                                \
    if (n < 0 || (size_t)n >= cap - len) {                                     \
      out[0] = '\0';                                                           \
      return RT_ELIMIT;                                                        \
    }                                                                          \
    len += (size_t)n;                                                          \
  } while (0)
  out[0] = '\0';
  const game_config_t *g = &o->game;
  PUT(snprintf(out + len, cap - len,
               "--game-length\n%u\n--golden-min\n%u\n--golden-max\n%u\n"
               "--click-rate\n%u\n--max-connections\n%u\n--static\n%s",
               g->game_seconds, g->golden_min_s, g->golden_max_s,
               g->click_rate, o->max_connections, o->static_dir));
  PUT(put_seconds(out + len, cap - len, "--countdown", g->countdown));
  PUT(put_seconds(out + len, cap - len, "--reconnect-grace",
                  g->reconnect_grace));
  PUT(put_seconds(out + len, cap - len, "--bonus", g->bonus));
  for (uint32_t i = 0; i < o->origins_len; i++)
    PUT(snprintf(out + len, cap - len, "\n--allowed-origin\n%s",
                 o->origins[i]));
  if (o->ws_park_after != 0)
    PUT(put_seconds(out + len, cap - len, "--ws-park-after", o->ws_park_after));
  if (o->echo)
    PUT(snprintf(out + len, cap - len, "\n--echo"));
#undef PUT
  return 0;
}

int server_start(rt_world_t *w, const server_options_t *o, const char *secret,
                 const char *store_path, server_listen_fn *listen,
                 void *listen_ctx, server_t *out, char *err, size_t err_cap) {
  *out = (server_t){0};
  game_config_t gc = o->game;
  gc.seed = rt_world_seed(w);
  game_store_config_t store = {.path = store_path != NULL ? store_path : o->db};
  int rc = game_create(w, &gc, secret, &store, &out->game);
  if (rc < 0) {
    snprintf(err, err_cap, "cannot start the game (database %s): %s",
             store.path, rt_strerror(rc));
    return rc;
  }
  rc = net_static_load(o->static_dir, &out->statics);
  if (rc < 0) {
    snprintf(err, err_cap, "cannot load %s: %s", o->static_dir,
             rt_strerror(rc));
    return rc;
  }
  if (net_static_count(out->statics) == 0)
    rt_log(w, RT_LOG_WARN, "server.static", "dir=%s files=0", o->static_dir);
  rt_listener_t *listener = NULL;
  rc = listen(listen_ctx, &listener);
  if (rc < 0) {
    snprintf(err, err_cap, "cannot listen on %s:%u: %s", o->bind,
             (unsigned)o->port, rt_strerror(rc));
    return rc;
  }
  net_server_config_t scfg = {
      .connections_max = o->max_connections,
      .ws_park_after = o->ws_park_after,
      .statics = out->statics,
      .session = game_session(out->game),
      .authenticate = game_authenticate,
      .auth_ctx = out->game,
      .metrics = game_metrics,
      .metrics_ctx = out->game,
      .routes = {{"POST", "/api/login", game_api_login, out->game},
                 {"GET", "/api/leaderboard", game_api_leaderboard, out->game},
                 {"GET", "/api/history", game_api_history, out->game}},
      .routes_len = 3,
  };
  game_client_mailbox(&scfg.mailbox_cap, &scfg.overflow, &scfg.rules,
                      &scfg.rules_len);
  if (o->echo) {
    scfg.session = &game_echo_session;
    scfg.authenticate = NULL;
  }
  for (uint32_t i = 0; i < o->origins_len; i++)
    scfg.allowed_origins[i] = o->origins[i];
  scfg.allowed_origins_len = o->origins_len;
  rc = net_server_start(w, listener, &scfg, &out->srv);
  if (rc < 0) {
    rt_listener_close(listener);
    snprintf(err, err_cap, "cannot start the server: %s", rt_strerror(rc));
    return rc;
  }
  return RT_OK;
}

void server_free(server_t *s) {
  net_server_free(s->srv);
  game_free(s->game);
  net_static_free(s->statics);
  *s = (server_t){0};
}
