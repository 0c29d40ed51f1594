/* net_ws.h: RFC 6455 WebSocket framing with wslay over an rt_stream_t.
 *
 * wslay does the framing, masking, fragmentation, control frames and the
 * close handshake; this module wires its callbacks to a stream and adds the
 * protocol's rules wslay leaves to us: binary messages are refused (1003),
 * and a message larger than the limit closes with 1009 (wslay checks each
 * frame, we the total of a fragmented message: we put messages together).
 * Text that is not valid UTF-8 closes with 1007 (wslay's own check), and
 * so does a close frame whose reason is not (ours: wslay's misses a close
 * frame that arrives in pieces, and would echo its reason). No
 * I/O of its own: it reads and writes only through the stream, so it runs
 * over sockets and simulated pipes alike, and a client context serves the
 * simulator's bots and the load generator. wslay's context is made at the
 * first byte or message, so a WebSocket that is open but silent holds none,
 * and net_ws_park gives it back once nothing moves (at once with
 * park_idle).
 *
 * Single writer: only the stream's owner calls these functions.
 */
#ifndef NET_WS_H
#define NET_WS_H

#include "rt_rng.h"
#include "rt_stream.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NET_WS_MESSAGE_MAX_DEFAULT 512u
#define NET_WS_KEY_LEN 24u    /* base64 of 16 bytes */
#define NET_WS_ACCEPT_LEN 28u /* base64 of a SHA-1 digest */
#define NET_WS_PING_MAX 125u  /* a control frame's payload (RFC 6455 5.5) */
/* Bytes one net_ws_on_readable call takes from the stream at most: a client
 * that floods cannot keep its actor reading while others wait. */
#define NET_WS_READ_BUDGET (64u * 1024)

enum {
  NET_WS_CLOSE_NORMAL = 1000,
  NET_WS_CLOSE_GOING_AWAY = 1001,
  NET_WS_CLOSE_PROTOCOL = 1002,
  NET_WS_CLOSE_UNSUPPORTED = 1003,
  NET_WS_CLOSE_ABNORMAL = 1006, /* never sent: the connection just dropped */
  NET_WS_CLOSE_INVALID_DATA = 1007,
  NET_WS_CLOSE_POLICY = 1008,
  NET_WS_CLOSE_TOO_BIG = 1009,
  NET_WS_CLOSE_INTERNAL = 1011,
  NET_WS_CLOSE_REPLACED = 4000,
};

typedef struct net_ws net_ws_t;

/* Parked wslay contexts of one kind (server or client), kept for the next
 * WebSocket of that kind to take (net_ws_config_t.pool): a run of
 * thousands of connections, each sending a message now and then, shares
 * a few contexts still in cache instead of touching a cold one of its own
 * each time. Owned by what owns the connections (a server, a simulated
 * run's bots), and outlives every net_ws given it. */
typedef struct net_ws_pool net_ws_pool_t;

/* NULL when out of memory. */
net_ws_pool_t *net_ws_pool_create(bool client);
/* Frees the parked contexts (the WebSockets given it are gone). */
void net_ws_pool_destroy(net_ws_pool_t *pool);

typedef struct net_ws_callbacks {
  /* A complete text message (valid UTF-8, within the limit). data is
   * borrowed for the call. */
  void (*on_text)(void *ud, const uint8_t *data, size_t len);
  /* A pong arrived with `len` bytes of payload (borrowed for the call; an
   * unsolicited pong is allowed, so the caller matches it). May be NULL. */
  void (*on_pong)(void *ud, const uint8_t *data, size_t len);
} net_ws_callbacks_t;

typedef struct net_ws_config {
  bool client;          /* client context: masks its frames */
  uint32_t message_max; /* 0: NET_WS_MESSAGE_MAX_DEFAULT */
  rt_rng_t *mask_rng;   /* client only: where masks come from (borrowed);
                           a seeded stream keeps simulations repeatable */
  /* Park (net_ws_park) after every net_ws_on_readable and net_ws_flush
   * that leaves nothing in flight: wslay's context is held only while
   * frames move. */
  bool park_idle;
  /* Where a parked context goes, and a context is taken from first
   * (borrowed; of the same kind, client or not). NULL: a parked context
   * is freed, and a fresh one made. */
  net_ws_pool_t *pool;
  /* Counts every park, of either kind (borrowed; NULL: not counted). */
  uint64_t *park_count;
} net_ws_config_t;

/* A context over `stream` (borrowed: the caller closes it after
 * net_ws_destroy). prefix holds bytes already read from the stream that
 * belong to the WebSocket (after the HTTP head); copied. NULL on ENOMEM. */
net_ws_t *net_ws_create(rt_stream_t *stream, const net_ws_config_t *cfg,
                        const net_ws_callbacks_t *cb, void *ud,
                        const uint8_t *prefix, size_t prefix_len);
void net_ws_destroy(net_ws_t *ws);

/* The stream has bytes: read and dispatch every complete message. Pongs and
 * close replies are queued; the caller sends them with net_ws_flush (so it
 * can keep bytes of its own, such as the 101 response, ahead of them).
 * Returns the bytes taken from the stream (> 0: the peer was heard), or a
 * negative error when the connection failed (then close it). */
int64_t net_ws_on_readable(net_ws_t *ws);

/* True when the last net_ws_on_readable stopped at its budget: call it
 * again later (notify the stream to yourself). */
bool net_ws_wants_more(const net_ws_t *ws);

/* Send queued frames as far as the stream takes them. 0 or negative. */
int net_ws_flush(net_ws_t *ws);

/* Queue one text message (copied). RT_EPIPE after a close was queued. */
int net_ws_send_text(net_ws_t *ws, const uint8_t *data, size_t len);
/* Queue a ping carrying `len` bytes (at most NET_WS_PING_MAX; copied). 0,
 * RT_EPIPE once failed or closed, RT_EINVAL when too long. */
int net_ws_send_ping(net_ws_t *ws, const uint8_t *data, size_t len);
/* Queue a close frame (once) and stop reading further data messages. */
void net_ws_close(net_ws_t *ws, uint16_t code, const char *reason);

/* Bytes queued in wslay plus bytes the stream has not delivered. */
size_t net_ws_backlog(const net_ws_t *ws);
/* True when nothing more will happen: the close handshake completed (both
 * close frames passed and all is sent; or, after ours, anything from the
 * peer or its EOF, which net_ws does not parse) or the connection failed. */
bool net_ws_finished(const net_ws_t *ws);
/* The stream failed or the peer broke the protocol. */
bool net_ws_failed(const net_ws_t *ws);
bool net_ws_closing(const net_ws_t *ws); /* a close was sent or received */
/* The close code sent, else received, else NET_WS_CLOSE_ABNORMAL. */
uint16_t net_ws_close_code(const net_ws_t *ws);
/* The close code the peer sent (0 if none yet). */
uint16_t net_ws_peer_close_code(const net_ws_t *ws);

/* Give back wslay's context (about 8 KiB) while nothing moves: to the pool
 * (net_ws_config_t.pool), else freed; only at a frame boundary with wslay
 * holding no input, no message half-read, nothing queued or pending, and no
 * close begun. Any later read or send takes a pooled context or makes a
 * fresh one, which behaves as the given-back one would have. Returns true
 * when parked (or already so), false when something is in flight. */
bool net_ws_park(net_ws_t *ws);
bool net_ws_parked(const net_ws_t *ws);

/* ---- Handshake helpers --------------------------------------------------- */

/* Sec-WebSocket-Accept for a client's Sec-WebSocket-Key (SHA-1 and base64
 * from OpenSSL). RT_EINVAL unless the key is the canonical base64 of 16
 * bytes: 22 symbols, the last with its low 4 bits zero, and "==". out gets
 * NET_WS_ACCEPT_LEN chars and a NUL. */
int net_ws_accept_key(const char *client_key, char out[NET_WS_ACCEPT_LEN + 1]);

/* A fresh client key from rng: base64 of 16 random bytes. */
void net_ws_client_key(rt_rng_t *rng, char out[NET_WS_KEY_LEN + 1]);

#endif
