/* server.h: the server's options and its assembly: the one function that
 * builds the server's actors, routes and mailbox rules.
 *
 * Everything that runs the server goes through server_start: the live
 * server (overcookied), the replay tool (overcookied-replay), the
 * simulator's runner (sim/simrun.h) and the test fixtures. So a route or a
 * mailbox rule added for the live server is in the simulator too, and a
 * replay builds exactly the actors the live server built, in the same
 * order, with the same rules. The live server writes the options that
 * shape behaviour into its trace (server_options_format), which the replay
 * parses back with the same parser.
 */
#ifndef SERVER_H
#define SERVER_H

#include "game.h"
#include "game_cluster.h"
#include "net_server.h"
#include "net_static.h"
#include "net_trace.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* The formatted flags go into a trace header, which holds at most
 * NET_TRACE_CONFIG_MAX bytes; the + 1 is the terminating NUL. */
#define SERVER_CONFIG_MAX (NET_TRACE_CONFIG_MAX + 1u)

typedef struct server_options {
  const char *bind;
  uint16_t port;
  uint64_t seed;
  bool seed_set;
  int log_level;
  const char *db;            /* SQLite path or PostgreSQL URI */
  game_store_sync_t db_sync; /* SQLite's durability */
  const char *secret;
  const char *metrics_token; /* NULL: /metrics is open */
  const char *trusted_proxy; /* NULL: X-Forwarded-For is ignored */
  net_peers_config_t peers;  /* per-address limits (net_peers.h) */
  /* NULL: no static files (the simulator); overcookied, given no
   * --static, puts the files beside the program here first. */
  const char *static_dir;
  const char *origins[NET_ORIGINS_MAX]; /* --allowed-origin: WebSocket */
  uint32_t origins_len;
  /* --cors-origin: pages that may call the API cross-origin (CORS). */
  const char *cors_origins[NET_CORS_ORIGINS_MAX];
  uint32_t cors_origins_len;
  uint32_t max_connections;
  rt_time_ns ws_park_after; /* 0: net_server's default, at once */
  /* Not flags (the simulator's limits): 0 takes the default. */
  uint32_t ws_message_max; /* a WebSocket message in: net_server's */
  uint32_t mailbox_cap;    /* each connection actor's: the Client's */
  game_config_t game;
  /* The cluster (game_cluster.h); redis NULL: one process, as ever. */
  const char *redis;       /* redis://[[user]:password@]host[:port] */
  const char *instance_id; /* NULL: drawn at start, logged */
  const char *public_url;  /* NULL: ws://BIND:PORT/ws */
  rt_time_ns lease;        /* 0: game_cluster's default */
  bool echo;
  const char *record_dir; /* NULL: not recording */
  uint64_t record_max_mb;
} server_options_t;

/* What a trace holds for --metrics-token: that one was set, not which. */
/* And in place of a Redis password (see server_options_format). */
#define SERVER_REDIS_PASSWORD_REDACTED "REDACTED"
#define SERVER_METRICS_TOKEN_REDACTED "(redacted; the trace holds each check)"

void server_usage(FILE *out);
/* The defaults, as the live server runs with no flags. */
void server_options_default(server_options_t *o);
/* What server_options_parse returns for --help (or -h): the caller prints
 * server_usage and exits 0, or, reading a trace's flags, calls the trace
 * bad. The parser never exits: a replay must not stop in the middle. */
#define SERVER_OPTIONS_HELP 1
/* Parse argv[first..argc) into o (defaults first). 0, SERVER_OPTIONS_HELP,
 * or -1 after a message on stderr naming the bad option. */
int server_options_parse(int argc, char **argv, int first, server_options_t *o);
/* The options that shape what the server does (rules, limits, origins,
 * static files, echo), as flags server_options_parse reads back, one per
 * line; not the address, database, key or seed. 0, or RT_ELIMIT when they
 * do not fit in cap (out then holds no flags: a cut list would replay as
 * a different server). */
int server_options_format(const server_options_t *o, char *out, size_t cap);

/* The cluster's settings from o (which has redis set): 0, or RT_EINVAL
 * with a sentence in why. */
int server_cluster_config(const server_options_t *o, game_cluster_config_t *c,
                          char *why, size_t why_cap);

/* The assembled server. */
typedef struct server {
  game_t *game;
  net_static_t *statics;
  net_server_t *srv;
} server_t;

/* Opens the listener at its place in the setup order. */
typedef int server_listen_fn(void *ctx, rt_listener_t **out);

/* Build the game, load the static files, listen, start the HTTP and
 * WebSocket server, in this order. store: how to open the Store (borrowed;
 * NULL: SQLite at o->db; the replay and the simulator pass ":memory:", the
 * simulator with its fault hook). 0, or an RT_E* with a sentence in err. */
int server_start(rt_world_t *w, const server_options_t *o, const char *secret,
                 const game_store_config_t *store, server_listen_fn *listen,
                 void *listen_ctx, server_t *out, char *err, size_t err_cap);
/* After the world's actors have stopped. */
void server_free(server_t *s);

#endif
