/* net_server_int.h: the server's connections and state, shared by its files
 * (net_server.c: connections, HTTP, WebSocket, the server; net_server_route.c:
 * the routing decision; net_server_accept.c: the acceptor and per-address
 * admission; net_server_metrics.c: stats and /metrics). Not for other
 * modules. */
#ifndef NET_SERVER_INT_H
#define NET_SERVER_INT_H

#include "net_server.h"

#include "net_http.h"
#include "net_ws.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
  TAG_SHUTDOWN = RT_TAG_NET_FIRST,
  TAG_DEADLINE = RT_TAG_NET_FIRST + 1,
};

typedef enum { MODE_HTTP = 0, MODE_WS, MODE_LINGER } conn_mode_t;

typedef enum {
  DEADLINE_NONE = 0,
  DEADLINE_HEADER,
  DEADLINE_IDLE,
  DEADLINE_REPLY,
  DEADLINE_WS_KEEPALIVE, /* the next ping, or silence for ws_pong_wait */
  DEADLINE_WS_CLOSE,
  DEADLINE_LINGER,
} deadline_kind_t;

#define CONN_IN_CHUNK 4096u
#define CONN_OUT_PIECES 16u /* 8 pipelined responses (head and body) */
#define CONN_LINGER_NS (2 * RT_NS_PER_S)
#define ACCEPTS_PER_TURN 256
#define READS_PER_TURN 16
#define MAILBOX_CAP_DEFAULT 64u

/* Probes (net_server_probe.c): at most PROBES_OUT_MAX pings out, one
 * after every PROBE_BYTES of frames (no sooner than PROBE_GAP_MIN after the
 * last) or each ws_probe_period. Only a reader slower than PROBE_BYTES a
 * write wait (about 50 B/s by default, less than a game's ticks) looks
 * stopped. */
#define PROBES_OUT_MAX 16u
#define PROBE_BYTES 512u
#define PROBE_GAP_MIN (100 * RT_NS_PER_MS)

typedef struct out_piece {
  rt_buf_t *buf;
  uint32_t off;
} out_piece_t;

typedef struct conn {
  net_server_t *srv;
  rt_actor_t *self; /* valid only during this actor's turns */
  rt_actor_id_t id;
  rt_stream_t *stream;
  uint32_t slot; /* index in srv->conns */
  uint8_t mode;
  bool stopping; /* finish() was called: the actor stops after this turn */
  net_close_reason_t reason;
  /* HTTP */
  net_http_parser_t *hp;
  uint8_t *in;
  uint32_t in_off, in_len;
  /* CONN_OUT_PIECES slots, made by the first response and freed once a
   * WebSocket's 101 has left: an idle WebSocket holds none. */
  out_piece_t *out;
  uint32_t out_head, out_count;
  uint64_t out_bytes;
  bool close_after_flush;
  bool awaiting;
  uint64_t call_id;
  bool keep_alive;
  bool head_only;
  /* The configured CORS origin (srv->cfg's string) that the request being
   * answered came from, or NULL: set for each request by route(), kept
   * while its answer is deferred. */
  const char *cors_origin;
  /* Deadline: Invariant (3) */
  uint64_t deadline_timer;
  uint8_t deadline_kind;
  /* WebSocket */
  net_ws_t *ws;
  rt_time_ns next_ping;
  /* Pings carry their number (8 bytes, big endian); those after pong_seq
   * are out, at most PROBES_OUT_MAX. A pong answers its ping and every
   * one before it: the peer read up to there. */
  uint64_t ping_seq, pong_seq;
  rt_time_ns ping_at;  /* when the last ping went out */
  uint32_t ping_bytes; /* frame bytes sent since */
  /* While pings are out: the last pong, or the oldest ping out if it is
   * younger. The peer has not been seen reading since (unread_for). */
  rt_time_ns heard_at;
  rt_time_ns last_rx;
  rt_time_ns last_io; /* a frame read or queued: ws_park_after counts from it */
  bool park_armed;    /* the keepalive deadline includes the park check; off
                       * while parked, and after a refused park until bytes
                       * move again */
  rt_session_conn_t session_conn;
  void *session;
  bool session_open;
  size_t backlog_seen;
  uint64_t peer_key; /* net_peers key counted for this connection; 0: none */
  bool via_proxy;    /* from cfg.trusted_proxy: X-Forwarded-For counts */
} conn_t;

struct net_server {
  rt_world_t *world;
  net_server_config_t cfg;
  rt_overflow_rule_t rules[RT_MAILBOX_RULES_MAX];
  rt_listener_t *listener;
  rt_actor_id_t acceptor;
  bool shutting_down;
  conn_t **conns;
  uint32_t conns_len, conns_cap;
  net_server_stats_t stats;
  net_ws_pool_t *ws_pool; /* its WebSockets' parked contexts */
  net_peers_t peers;
  bool peers_on; /* some per-address limit is set */
};

/* The Allow line of /health, /metrics and static files. */
#define ALLOW_GET_HEAD "Allow: GET, HEAD\r\n"

/* net_server.c */
extern const char net_server__busy_response[]; /* 503 at connections_max */
/* A connection actor for an accepted stream (taken on success). */
int net_server__conn_spawn(net_server_t *srv, rt_stream_t *s, uint64_t peer_key,
                           bool via_proxy);
/* net_server_accept.c */
void net_server__acceptor_behaviour(rt_actor_t *self, const rt_msg_t *msg);
void net_server__acceptor_on_stop(rt_actor_t *self, int reason);
/* net_server_probe.c: pings, and what their pongs say of the reader. */
void net_server__ping(conn_t *c, rt_time_ns now); /* unless 16 are out */
void net_server__probe(conn_t *c, size_t len, rt_time_ns now); /* a frame */
void net_server__on_pong(void *ud, const uint8_t *data, size_t len);
rt_time_ns net_server__unread_for(const rt_session_conn_t *sc);
/* net_server_config.c: fill the zero options, then check every bound. */
void net_server__apply_defaults(net_server_config_t *cfg);
bool net_server__config_valid(const net_server_config_t *cfg);
/* net_server_metrics.c */
size_t net_server__metrics(const net_server_t *srv, char *out, size_t cap);

#endif
