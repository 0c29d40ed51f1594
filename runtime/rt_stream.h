/* rt_stream.h: byte streams and listeners, the connections of every world.
 *
 * A stream is a bidirectional byte pipe with a bounded send buffer, provided
 * by a backend: a non-blocking socket (net/), a simulated pipe (sim/), or a
 * recorded connection (replay). Protocol code (HTTP, WebSocket) reads and
 * writes through these calls only, so the same code runs over all three.
 *
 * Notifications go to the stream's owner actor as RT_TAG_STREAM signals with
 * the RT_STREAM_* bits that happened since the last delivery. They are edges,
 * not levels: READABLE means bytes arrived since read last returned 0, and
 * is not repeated for bytes left unread. So an owner reads until read
 * returns 0, or, when it stops early (a per-turn budget, backpressure),
 * comes back by itself: rt_stream_notify on its own stream re-queues the
 * event fairly behind other actors. WRITABLE follows a short write once room
 * frees up.
 *
 * Contracts:
 *  - read returns bytes read (> 0), 0 when nothing is available now, or
 *    RT_EOF (peer finished writing, all bytes read) / RT_ERESET.
 *  - write returns bytes accepted, possibly fewer than asked and possibly 0
 *    when the send buffer is full; WRITABLE follows once room frees up. Or
 *    RT_EPIPE / RT_ERESET.
 *  - backlog is the bytes accepted by write that the peer has not yet taken.
 *  - close detaches the stream from its owner and frees it; no signal for it
 *    is delivered afterwards.
 * Every read passes through rt_stream_read, which folds the bytes into the
 * world's run hash; a world's tap (rt_tap.h) sees every call, which is how
 * a live run is recorded and replayed.
 */
#ifndef RT_STREAM_H
#define RT_STREAM_H

#include "rt_signal.h"
#include "rt_world.h"

#include <stddef.h>
#include <stdint.h>

enum {
  RT_STREAM_READABLE = 1u << 0,
  RT_STREAM_WRITABLE = 1u << 1,
  RT_STREAM_CLOSED = 1u << 2,    /* EOF or reset: a read says which */
  RT_STREAM_CONNECTED = 1u << 3, /* an outgoing connect completed */
};

typedef struct rt_stream rt_stream_t;
typedef struct rt_listener rt_listener_t;

typedef struct rt_stream_ops {
  int64_t (*read)(rt_stream_t *s, void *buf, size_t cap);
  int64_t (*write)(rt_stream_t *s, const void *buf, size_t len);
  size_t (*backlog)(const rt_stream_t *s);
  /* Finish writing: the peer reads EOF after the bytes already accepted. */
  void (*shutdown)(rt_stream_t *s);
  /* Release the backend's resources, including the struct embedding s. */
  void (*destroy)(rt_stream_t *s);
  /* The peer's address as text ("192.0.2.7", "2001:db8::1"), NUL-ended in
   * out (cap >= RT_PEER_MAX): 0, or RT_ENOTFOUND. NULL: never known. */
  int (*peer)(const rt_stream_t *s, char *out, size_t cap);
} rt_stream_ops_t;

/* Room for an address as rt_stream_peer writes it (INET6_ADDRSTRLEN is
 * 46). */
#define RT_PEER_MAX 64u

/* Embedded as the first member of a backend's connection struct. */
struct rt_stream {
  rt_signal_t sig; /* runtime-owned */
  const rt_stream_ops_t *ops;
  rt_world_t *world;
  uint64_t id;         /* unique in the world, increasing */
  rt_actor_id_t owner; /* who gets notifications; 0: nobody yet */
  uint32_t events;     /* pending, not yet delivered */
  uint32_t closed;     /* rt_stream_close was called */
  uint64_t bytes_in;   /* totals, for metrics */
  uint64_t bytes_out;
  uint64_t out_hash; /* of the bytes written, while tapped (rt_tap.h) */
};

/* Backends: initialise the embedded stream and give it an id. */
void rt_stream_init(rt_stream_t *s, rt_world_t *w, const rt_stream_ops_t *ops);
/* Backends: events happened; signal the owner (coalesced). */
void rt_stream_notify(rt_stream_t *s, uint32_t events);

/* Hand the stream to `owner`; pending events follow it. */
void rt_stream_set_owner(rt_stream_t *s, rt_actor_id_t owner);

int64_t rt_stream_read(rt_stream_t *s, void *buf, size_t cap);
int64_t rt_stream_write(rt_stream_t *s, const void *buf, size_t len);
size_t rt_stream_backlog(const rt_stream_t *s);
/* The peer's address (rt_stream_ops_t.peer): 0, or RT_ENOTFOUND with ""
 * in out. An input from the world like a read: a caller above the seam
 * that acts on it records it (an rt_tap external), as net_server does. */
int rt_stream_peer(const rt_stream_t *s, char *out, size_t cap);
void rt_stream_shutdown(rt_stream_t *s);
/* Takes s: it is freed. */
void rt_stream_close(rt_stream_t *s);

/* Connect to host (a numeric address) and port without waiting, through
 * the world's backend (rt_backend_t.connect): 0 and *out, a stream owned by
 * `owner`, which gets RT_STREAM_CONNECTED|RT_STREAM_WRITABLE when the
 * connect completes or RT_STREAM_CLOSED when it failed (a read then says
 * why: RT_ECONNREFUSED, RT_ERESET). RT_ENOTSUP in a world that cannot
 * connect; RT_EINVAL for an address it cannot use. A connect is an input:
 * a tap sees its result (rt_tap_t.connect), so a replay gives the actor
 * the same stream id, and then its recorded bytes, with no peer at all. */
int rt_stream_connect(rt_world_t *w, const char *host, uint16_t port,
                      rt_actor_id_t owner, rt_stream_t **out);

/* ---- Listeners ----------------------------------------------------------- */

typedef struct rt_listener_ops {
  /* One pending connection: 1 and *out (a stream with no owner, owned by
   * the caller), 0 when none is pending, or a negative error. */
  int (*accept)(rt_listener_t *l, rt_stream_t **out);
  void (*destroy)(rt_listener_t *l);
} rt_listener_ops_t;

struct rt_listener {
  rt_signal_t sig; /* runtime-owned */
  const rt_listener_ops_t *ops;
  rt_world_t *world;
  uint64_t id;
  rt_actor_id_t owner; /* gets RT_TAG_ACCEPT when connections are pending */
  uint32_t events;
  uint32_t closed;
};

void rt_listener_init(rt_listener_t *l, rt_world_t *w,
                      const rt_listener_ops_t *ops, rt_actor_id_t owner);
/* Backends: connections are pending. */
void rt_listener_notify(rt_listener_t *l);
int rt_listener_accept(rt_listener_t *l, rt_stream_t **out);
void rt_listener_close(rt_listener_t *l);

#endif
