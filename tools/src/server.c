/* server.c: options and assembly of the server (server.h). */
#include "server.h"

#include "net_echo.h"
#include "rt_assert.h"
#include "rt_parse.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

void server_usage(FILE *out) {
  fputs("usage: overcookied [options]\n"
        "  --bind ADDR           address to listen on (default 127.0.0.1)\n"
        "  --port N              TCP port (default 8080; 0 picks a free one)\n"
        "  --db PATH|URI         where results are kept: a SQLite file\n"
        "                        (default overcookied.db) or PostgreSQL,\n"
        "                        postgres://user@host:port/dbname (the\n"
        "                        password from the URI, PGPASSWORD or\n"
        "                        ~/.pgpass; never logged)\n"
        "  --db-sync full|normal SQLite: full (default) syncs each commit,\n"
        "                        so a power cut loses no result a player\n"
        "                        saw; normal syncs at checkpoints only:\n"
        "                        faster, safe from crashes, not power cuts\n"
        "  --secret S            token signing key, at least 16 characters\n"
        "                        (default: $OC_JWT_SECRET, else random:\n"
        "                        tokens then end with the process)\n"
        "  --allowed-origin O    WebSocket Origin to accept, repeatable\n"
        "                        (default: the request's own host)\n"
        "  --cors-origin O       let pages from origin O call the HTTP API\n"
        "                        cross-origin with credentials (CORS),\n"
        "                        written as a browser sends it\n"
        "                        (http[s]://host[:port]), repeatable, at\n"
        "                        most 8 (default: none)\n"
        "  --static DIR          browser client files (default: beside the\n"
        "                        program, PREFIX/share/overcookied/web)\n"
        "  --max-connections N   default 20000; above it: 503\n"
        "  --max-connections-per-address N\n"
        "                        open at once from one address, default 256\n"
        "                        (0: no limit); above it: 503\n"
        "  --logins-per-minute N POST /api/login per address, default 60\n"
        "                        (0: no limit); above it: 429\n"
        "  --trusted-proxy ADDR  the reverse proxy's address: its requests\n"
        "                        count for the last X-Forwarded-For entry,\n"
        "                        its connections are not capped per address\n"
        "  --metrics-token T     /metrics only with Authorization: Bearer T\n"
        "                        (at least 16 characters; default:\n"
        "                        $OC_METRICS_TOKEN, else /metrics is open)\n"
        "  --record DIR          record every input into a trace in DIR\n"
        "                        (replay it with tools/overcookied-replay)\n"
        "  --record-max-mb N     rotate trace files at N MiB (default 256)\n"
        "  --ws-park-after S     keep a quiet WebSocket's wslay context for S\n"
        "                        seconds without a frame (default 0: give\n"
        "                        it back as soon as nothing is in flight)\n",
        out);
  fputs(
      "cluster (several instances share matchmaking; README, Cluster):\n"
      "  --redis URL           redis://[[user]:password@]host[:port]: join\n"
      "                        the cluster whose Redis this is (host\n"
      "                        numeric, IPv6 in [], or localhost; the\n"
      "                        password is never logged; with none in\n"
      "                        the URL, $OC_REDIS_PASSWORD if set;\n"
      "                        default: one process)\n"
      "  --instance-id ID      this instance's name (default: drawn, logged)\n"
      "  --public-url URL      where players reach this instance, sent in\n"
      "                        MOVE (default ws://BIND:PORT/ws)\n"
      "  --lease S             an instance is taken for dead S seconds\n"
      "                        after it last renewed (default 3)\n"
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
      "  --lobby-idle S        close a lobby connection (not queued, not\n"
      "                        playing) silent this long, 4002 \"idle\";\n"
      "                        default 600 (0: never)\n"
      "  --seed N              seed of the world's random streams"
      " (default: random, logged)\n"
      "  --log-level L         debug, info, warn, error (default info)\n"
      "  --echo                WebSocket sessions echo text, no token:"
      " for testing\n"
      "                        and benchmarking the network layer\n",
      out);
}

/* Seconds, possibly fractional ("0.25"), at most a day. */
static bool seconds_ok(const char *v, rt_time_ns *out) {
  return rt_parse_seconds(v, NULL, 86400 * RT_NS_PER_S, out) == RT_OK;
}

/* One of the game's rules with its value v: true when a is a rule flag
 * and v is valid for it. */
static bool parse_rule(const char *a, const char *v, game_config_t *g) {
  uint64_t n;
  if (strcmp(a, "--countdown") == 0)
    return seconds_ok(v, &g->countdown);
  if (strcmp(a, "--reconnect-grace") == 0)
    return seconds_ok(v, &g->reconnect_grace);
  if (strcmp(a, "--bonus") == 0)
    return seconds_ok(v, &g->bonus);
  if (strcmp(a, "--lobby-idle") == 0)
    return seconds_ok(v, &g->lobby_idle);
  if (strcmp(a, "--game-length") == 0 && rt_parse_u64(v, 3600, &n) == 0) {
    g->game_seconds = (uint32_t)n;
    return true;
  }
  if (strcmp(a, "--golden-min") == 0 && rt_parse_u64(v, 3600, &n) == 0) {
    g->golden_min_s = (uint32_t)n;
    return true;
  }
  if (strcmp(a, "--golden-max") == 0 && rt_parse_u64(v, 3600, &n) == 0) {
    g->golden_max_s = (uint32_t)n;
    return true;
  }
  if (strcmp(a, "--click-rate") == 0 && rt_parse_u64(v, 100000, &n) == 0) {
    g->click_rate = (uint32_t)n;
    g->click_burst = n > 0 ? (uint32_t)n : 1;
    return true;
  }
  return false;
}

/* One of the server's flags with its value v: true when a is one and v is
 * valid for it. An empty address, path, key or origin means nothing, and
 * an empty value would be a line of its own in a trace's flags: text
 * flags refuse "". */
static bool parse_flag(const char *a, const char *v, server_options_t *o) {
  const char *text = v != NULL && v[0] != '\0' ? v : NULL;
  const char **text_field =
      strcmp(a, "--bind") == 0            ? &o->bind
      : strcmp(a, "--db") == 0            ? &o->db
      : strcmp(a, "--secret") == 0        ? &o->secret
      : strcmp(a, "--static") == 0        ? &o->static_dir
      : strcmp(a, "--record") == 0        ? &o->record_dir
      : strcmp(a, "--metrics-token") == 0 ? &o->metrics_token
      : strcmp(a, "--trusted-proxy") == 0 ? &o->trusted_proxy
      : strcmp(a, "--redis") == 0         ? &o->redis
      : strcmp(a, "--instance-id") == 0   ? &o->instance_id
      : strcmp(a, "--public-url") == 0    ? &o->public_url
                                          : NULL;
  uint64_t n;
  if (text_field != NULL) {
    if (text != NULL)
      *text_field = text;
    return text != NULL;
  }
  if (strcmp(a, "--port") == 0 && rt_parse_u64(v, 65535, &n) == 0) {
    o->port = (uint16_t)n;
    return true;
  }
  if (strcmp(a, "--seed") == 0 && rt_parse_u64(v, UINT64_MAX, &n) == 0) {
    o->seed = n;
    o->seed_set = true;
    return true;
  }
  if (strcmp(a, "--record-max-mb") == 0 && rt_parse_u64(v, 1u << 20, &n) == 0 &&
      n > 0) {
    o->record_max_mb = n;
    return true;
  }
  if (strcmp(a, "--allowed-origin") == 0 && text != NULL &&
      o->origins_len < NET_ORIGINS_MAX && strlen(v) < NET_ORIGIN_LEN_MAX) {
    o->origins[o->origins_len++] = v;
    return true;
  }
  if (strcmp(a, "--max-connections-per-address") == 0 &&
      rt_parse_u64(v, 10000000, &n) == 0) {
    o->peers.connections_max = (uint32_t)n;
    return true;
  }
  if (strcmp(a, "--logins-per-minute") == 0 &&
      rt_parse_u64(v, NET_PEER_REQUESTS_PER_MINUTE_MAX, &n) == 0) {
    o->peers.requests_per_minute = (uint32_t)n;
    return true;
  }
  /* Refused unless a browser's Origin could equal it (a trailing '/' or
   * upper case never would): better at start than silently never. */
  if (strcmp(a, "--cors-origin") == 0 && text != NULL &&
      o->cors_origins_len < NET_CORS_ORIGINS_MAX &&
      net_server_origin_valid(v)) {
    o->cors_origins[o->cors_origins_len++] = v;
    return true;
  }
  if (strcmp(a, "--max-connections") == 0 &&
      rt_parse_u64(v, 10000000, &n) == 0 && n > 0) {
    o->max_connections = (uint32_t)n;
    return true;
  }
  if (strcmp(a, "--lease") == 0)
    return seconds_ok(v, &o->lease) && o->lease >= 100 * RT_NS_PER_MS;
  if (strcmp(a, "--ws-park-after") == 0)
    return seconds_ok(v, &o->ws_park_after);
  if (strcmp(a, "--db-sync") == 0 && v != NULL &&
      (strcmp(v, "full") == 0 || strcmp(v, "normal") == 0)) {
    o->db_sync =
        strcmp(v, "full") == 0 ? GAME_STORE_SYNC_FULL : GAME_STORE_SYNC_NORMAL;
    return true;
  }
  if (strcmp(a, "--log-level") == 0 && rt_log_level_parse(v) >= 0) {
    o->log_level = rt_log_level_parse(v);
    return true;
  }
  return parse_rule(a, v, &o->game);
}

void server_options_default(server_options_t *o) {
  *o = (server_options_t){
      .bind = "127.0.0.1",
      .port = 8080,
      .log_level = RT_LOG_INFO,
      .db = "overcookied.db",
      .max_connections = NET_CONNECTIONS_MAX_DEFAULT,
      .peers = {.connections_max = NET_PEER_CONNECTIONS_DEFAULT,
                .requests_per_minute = NET_PEER_REQUESTS_PER_MINUTE_DEFAULT},
      .record_max_mb = 256};
  game_config_defaults(&o->game);
}

int server_options_parse(int argc, char **argv, int first,
                         server_options_t *o) {
  server_options_default(o);
  for (int i = first; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)
      return SERVER_OPTIONS_HELP;
    if (strcmp(a, "--echo") == 0) {
      o->echo = true;
      continue;
    }
    if (!parse_flag(a, i + 1 < argc ? argv[i + 1] : NULL, o)) {
      fprintf(stderr, "overcookied: bad or incomplete option '%s'\n", a);
      server_usage(stderr);
      return -1;
    }
    i++;
  }
  return 0;
}

/* Nanoseconds as exact decimal seconds. */
static int put_seconds(char *out, size_t cap, const char *flag, rt_time_ns ns) {
  return snprintf(out, cap, "\n%s\n%" PRId64 ".%09" PRId64, flag,
                  (int64_t)(ns / RT_NS_PER_S), (int64_t)(ns % RT_NS_PER_S));
}

/* The cluster's flags, resolved (the public URL as used), with the Redis
 * password replaced by SERVER_REDIS_PASSWORD_REDACTED. */
static int format_cluster(const server_options_t *o, char *out, size_t cap) {
  game_cluster_config_t c;
  char why[128];
  if (server_cluster_config(o, &c, why, sizeof(why)) < 0)
    return -1;
  bool v6 = strchr(c.host, ':') != NULL; /* written in brackets */
  int n =
      c.password[0] != '\0'
          ? snprintf(out, cap, "\n--redis\nredis://%s:%s@%s%s%s:%u", c.user,
                     SERVER_REDIS_PASSWORD_REDACTED, v6 ? "[" : "", c.host,
                     v6 ? "]" : "", (unsigned)c.port)
          : snprintf(out, cap, "\n--redis\nredis://%s%s%s:%u", v6 ? "[" : "",
                     c.host, v6 ? "]" : "", (unsigned)c.port);
  int u = n < 0 || (size_t)n >= cap
              ? -1
              : snprintf(out + n, cap - (size_t)n, "\n--public-url\n%s",
                         c.public_url);
  n = u < 0 ? -1 : n + u;
  if (n < 0 || (size_t)n >= cap)
    return -1;
  int m = 0;
  if (o->instance_id != NULL)
    m = snprintf(out + n, cap - (size_t)n, "\n--instance-id\n%s",
                 o->instance_id);
  if (m < 0 || (size_t)(n + m) >= cap)
    return -1;
  int k = 0;
  if (o->lease != 0)
    k = snprintf(
        out + n + m, cap - (size_t)(n + m), "\n--lease\n%" PRId64 ".%09" PRId64,
        (int64_t)(o->lease / RT_NS_PER_S), (int64_t)(o->lease % RT_NS_PER_S));
  return k < 0 ? -1 : n + m + k;
}

int server_cluster_config(const server_options_t *o, game_cluster_config_t *c,
                          char *why, size_t why_cap) {
  game_cluster_config_defaults(c);
  const char *reason = NULL;
  if (game_cluster_parse_url(o->redis, c, &reason) < 0) {
    snprintf(why, why_cap, "--redis: %s", reason);
    return RT_EINVAL;
  }
  /* The password may come from the environment, off the command line
   * (which every user of the machine reads in /proc), as PGPASSWORD does
   * for PostgreSQL; one in the URL wins. A recording holds no password
   * (format_cluster): a replay of one made with a password is given it
   * the same way, or its AUTH differs. */
  const char *pw = getenv("OC_REDIS_PASSWORD");
  if (pw != NULL && pw[0] != '\0' &&
      (c->password[0] == '\0' ||
       strcmp(c->password, SERVER_REDIS_PASSWORD_REDACTED) == 0)) {
    size_t n = strlen(pw);
    if (n >= sizeof(c->password)) {
      snprintf(why, why_cap, "OC_REDIS_PASSWORD: at most %u characters",
               (unsigned)sizeof(c->password) - 1);
      return RT_EINVAL;
    }
    memcpy(c->password, pw, n + 1);
  }
  if (o->instance_id != NULL) {
    size_t n = strlen(o->instance_id);
    if (n >= sizeof(c->instance_id) ||
        strpbrk(o->instance_id, "/\t\n ") != NULL) {
      snprintf(why, why_cap,
               "--instance-id: at most %u characters, no "
               "'/' or spaces",
               (unsigned)sizeof(c->instance_id) - 1);
      return RT_EINVAL;
    }
    memcpy(c->instance_id, o->instance_id, n + 1);
  }
  if (o->public_url != NULL) {
    if (strlen(o->public_url) >= sizeof(c->public_url) ||
        (strncmp(o->public_url, "ws://", 5) != 0 &&
         strncmp(o->public_url, "wss://", 6) != 0) ||
        strpbrk(o->public_url, "\t\n ") != NULL) {
      snprintf(why, why_cap, "--public-url: a ws:// or wss:// URL");
      return RT_EINVAL;
    }
    snprintf(c->public_url, sizeof(c->public_url), "%s", o->public_url);
  } else if (o->port == 0) {
    snprintf(why, why_cap,
             "a cluster instance needs --port or --public-url "
             "(other instances send players to it)");
    return RT_EINVAL;
  } else {
    const char *host = strcmp(o->bind, "0.0.0.0") == 0 ? "127.0.0.1" : o->bind;
    snprintf(c->public_url, sizeof(c->public_url), "ws://%s:%u/ws", host,
             (unsigned)o->port);
  }
  if (o->lease != 0) {
    c->lease = o->lease;
    if (c->renew > o->lease / 3)
      c->renew = o->lease / 3;
  }
  return RT_OK;
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
  RT_ASSERT(o->static_dir != NULL); /* a live server serves its files */
  const game_config_t *g = &o->game;
  PUT(snprintf(out + len, cap - len,
               "--game-length\n%u\n--golden-min\n%u\n--golden-max\n%u\n"
               "--click-rate\n%u\n--max-connections\n%u\n--static\n%s",
               g->game_seconds, g->golden_min_s, g->golden_max_s, g->click_rate,
               o->max_connections, o->static_dir));
  PUT(put_seconds(out + len, cap - len, "--countdown", g->countdown));
  PUT(put_seconds(out + len, cap - len, "--reconnect-grace",
                  g->reconnect_grace));
  PUT(put_seconds(out + len, cap - len, "--bonus", g->bonus));
  PUT(put_seconds(out + len, cap - len, "--lobby-idle", g->lobby_idle));
  for (uint32_t i = 0; i < o->origins_len; i++)
    PUT(snprintf(out + len, cap - len, "\n--allowed-origin\n%s",
                 o->origins[i]));
  for (uint32_t i = 0; i < o->cors_origins_len; i++)
    PUT(snprintf(out + len, cap - len, "\n--cors-origin\n%s",
                 o->cors_origins[i]));
  if (o->ws_park_after != 0)
    PUT(put_seconds(out + len, cap - len, "--ws-park-after", o->ws_park_after));
  PUT(snprintf(out + len, cap - len,
               "\n--max-connections-per-address\n%u\n--logins-per-minute\n%u",
               o->peers.connections_max, o->peers.requests_per_minute));
  if (o->trusted_proxy != NULL)
    PUT(snprintf(out + len, cap - len, "\n--trusted-proxy\n%s",
                 o->trusted_proxy));
  if (o->echo)
    PUT(snprintf(out + len, cap - len, "\n--echo"));
  /* Which backend, never its URI: /metrics names it, and a replay (whose
   * store answers from the recording) must name the same. */
  if (game_store_is_postgres(o->db))
    PUT(snprintf(out + len, cap - len, "\n--db\npostgres://"));
  /* The cluster's flags shape every byte sent to Redis (the replay checks
   * them), so they are all here, but the password, which the replay does
   * not need unless the recording used one (tools/overcookied-replay). */
  if (o->redis != NULL)
    PUT(format_cluster(o, out + len, cap - len));
  /* Whether /metrics wanted a token shapes the answers; the token itself
   * stays out of the trace, which holds each check's result instead. */
  if (o->metrics_token != NULL)
    PUT(snprintf(out + len, cap - len, "\n--metrics-token\n%s",
                 SERVER_METRICS_TOKEN_REDACTED));
#undef PUT
  return 0;
}

/* The server's HTTP API: the one route table. Logins are metered per
 * client address (net_peers.h). */
static void server_routes(game_t *g, net_server_config_t *cfg) {
  const net_route_t routes[] = {
      {"POST", "/api/login", game_api_login, g, true},
      {"GET", "/api/leaderboard", game_api_leaderboard, g, false},
      {"GET", "/api/history", game_api_history, g, false},
      /* The original frontend's session check and logout (PROTOCOL.md,
       * "The original frontend"). */
      {"GET", "/auth/verify", game_api_verify, g, false},
      {"POST", "/auth/logout", game_api_logout, g, false},
  };
  uint32_t n = (uint32_t)(sizeof(routes) / sizeof(routes[0]));
  _Static_assert(sizeof(routes) / sizeof(routes[0]) <= NET_ROUTES_MAX,
                 "the route table fits net_server's");
  for (uint32_t i = 0; i < n; i++)
    cfg->routes[i] = routes[i];
  cfg->routes_len = n;
}

/* The server's connection layer: the game's session, token check, API
 * routes, metrics and the Client's mailbox rules, with the options'
 * limits. The one place these are written: every program and test that
 * runs the server gets them from here. */
static void net_config(const server_options_t *o, server_t *s,
                       net_server_config_t *out) {
  *out = (net_server_config_t){
      .connections_max = o->max_connections,
      .ws_message_max = o->ws_message_max,
      .ws_park_after = o->ws_park_after,
      .statics = s->statics,
      .session = game_session(s->game),
      .authenticate = game_authenticate,
      .auth_ctx = s->game,
      .metrics = game_metrics,
      .metrics_ctx = s->game,
  };
  server_routes(s->game, out);
  game_client_mailbox(&out->mailbox_cap, &out->overflow, &out->rules,
                      &out->rules_len);
  if (o->mailbox_cap > 0)
    out->mailbox_cap = o->mailbox_cap;
  if (o->echo) {
    out->session = &net_echo_session;
    out->authenticate = NULL;
  }
  out->metrics_token = o->metrics_token;
  out->peers = o->peers;
  out->trusted_proxy = o->trusted_proxy;
  for (uint32_t i = 0; i < o->origins_len; i++)
    out->allowed_origins[i] = o->origins[i];
  out->allowed_origins_len = o->origins_len;
  for (uint32_t i = 0; i < o->cors_origins_len; i++)
    out->cors_origins[i] = o->cors_origins[i];
  out->cors_origins_len = o->cors_origins_len;
}

int server_start(rt_world_t *w, const server_options_t *o, const char *secret,
                 const game_store_config_t *store, server_listen_fn *listen,
                 void *listen_ctx, server_t *out, char *err, size_t err_cap) {
  *out = (server_t){0};
  game_config_t gc = o->game;
  gc.seed = rt_world_seed(w);
  game_store_config_t own = {.path = o->db, .sync = o->db_sync};
  if (store == NULL)
    store = &own;
  int rc = game_create(w, &gc, secret, store, &out->game);
  if (rc < 0) {
    char db[GAME_STORE_DESCRIBE_MAX];
    game_store_describe(store->path, db, sizeof(db));
    snprintf(err, err_cap, "cannot start the game (database %s): %s", db,
             rt_strerror(rc));
    return rc;
  }
  if (o->redis != NULL) {
    game_cluster_config_t cc;
    char why[160];
    rc = server_cluster_config(o, &cc, why, sizeof(why));
    if (rc < 0) {
      snprintf(err, err_cap, "%s", why);
      return rc;
    }
    rc = game_cluster_start(out->game, &cc);
    if (rc < 0) {
      snprintf(err, err_cap, "cannot join the cluster: %s", rt_strerror(rc));
      return rc;
    }
  }
  if (o->static_dir != NULL) {
    rc = net_static_load(o->static_dir, &out->statics);
    if (rc < 0) {
      snprintf(err, err_cap, "cannot load %s: %s", o->static_dir,
               rt_strerror(rc));
      return rc;
    }
    if (net_static_count(out->statics) == 0)
      rt_log(w, RT_LOG_WARN, "server.static", "dir=%s files=0", o->static_dir);
  }
  rt_listener_t *listener = NULL;
  rc = listen(listen_ctx, &listener);
  if (rc < 0) {
    snprintf(err, err_cap, "cannot listen on %s:%u: %s", o->bind,
             (unsigned)o->port, rt_strerror(rc));
    return rc;
  }
  net_server_config_t scfg;
  net_config(o, out, &scfg);
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
