/* rt_msg.h: the unit of communication between actors.
 *
 * A message is a small tag, up to RT_MSG_INLINE_MAX bytes of inline payload
 * and optionally one reference to an immutable rt_buf_t. It is copied by value
 * into mailboxes (64 bytes, one cache line).
 *
 * Ownership: rt_send() takes the message's buffer reference when it returns
 * a value >= 0 (delivered, dropped or replaced: the runtime releases it);
 * on a negative return the sender still owns it. While a behaviour runs it
 * borrows the message; the runtime drops the buffer reference after the
 * behaviour returns, so an actor that keeps the buffer takes its own
 * reference with rt_buf_ref().
 *
 * Determinism: the run hash covers the tag, the inline payload bytes and the
 * buffer's bytes, never `ref`. Put ids in payloads, not pointers.
 */
#ifndef RT_MSG_H
#define RT_MSG_H

#include "rt_buf.h"

#include <stdint.h>
#include <string.h>

typedef uint64_t rt_actor_id_t; /* 0 is "no actor"; ids start at 1 */
typedef int64_t rt_time_ns;     /* world time, nanoseconds */

#define RT_TIME_NEVER INT64_MAX
#define RT_NS_PER_US 1000LL
#define RT_NS_PER_MS 1000000LL
#define RT_NS_PER_S 1000000000LL

#define RT_MSG_INLINE_MAX 32u

/* Tags below RT_TAG_USER are the runtime's own. */
enum {
  RT_TAG_NONE = 0,
  RT_TAG_DOWN = 1,       /* payload rt_down_t: a monitored actor stopped */
  RT_TAG_STREAM = 2,     /* payload rt_stream_event_t; ref: the rt_stream_t */
  RT_TAG_ACCEPT = 3,     /* payload rt_stream_event_t; ref: the rt_listener_t */
  RT_TAG_TIMER = 4,      /* default tag of a timer; payload rt_timer_event_t */
  RT_TAG_PORT = 5,       /* payload rt_stream_event_t; ref: the rt_port_t */
  RT_TAG_HTTP_REPLY = 8, /* payload rt_http_reply_t (rt_service.h); buf: body */
  RT_TAG_NET_FIRST = 10, /* 10..15: the connection layer's own (net/) */
  RT_TAG_NET_LAST = 15,
  RT_TAG_USER = 16,
};

typedef struct rt_msg {
  uint16_t tag;
  uint16_t len;       /* bytes of `inline_data` in use */
  uint32_t flags;     /* reserved, zero */
  rt_actor_id_t from; /* set by rt_send: the running actor, or 0 */
  rt_buf_t *buf;      /* owned reference or NULL */
  void *ref;          /* runtime signals only: the source object; not hashed */
  union {
    uint8_t bytes[RT_MSG_INLINE_MAX];
    uint64_t words[RT_MSG_INLINE_MAX / 8];
  } inline_data;
} rt_msg_t;

_Static_assert(sizeof(rt_msg_t) == 64, "a message is one cache line");

/* A message with `tag` and a copy of `len` bytes of `payload` (borrowed). */
static inline rt_msg_t rt_msg_make(uint16_t tag, const void *payload,
                                   uint16_t len) {
  rt_msg_t m;
  memset(&m, 0, sizeof(m));
  m.tag = tag;
  if (len > RT_MSG_INLINE_MAX)
    len = RT_MSG_INLINE_MAX; /* callers use RT_MSG_OF, which checks sizes */
  m.len = len;
  if (len > 0)
    memcpy(m.inline_data.bytes, payload, len);
  return m;
}

/* Build a message from a payload struct, checking its size at compile time. */
#define RT_MSG_OF(tag, payload_ptr)                                            \
  (RT_STATIC_CHECK_(sizeof(*(payload_ptr)) <= RT_MSG_INLINE_MAX),              \
   rt_msg_make((tag), (payload_ptr), (uint16_t)sizeof(*(payload_ptr))))
#define RT_STATIC_CHECK_(cond) ((void)sizeof(char[(cond) ? 1 : -1]))

/* Read the payload as `type`: copies out, so alignment never matters. */
#define RT_MSG_GET(msg, type, out_ptr)                                         \
  (RT_STATIC_CHECK_(sizeof(type) <= RT_MSG_INLINE_MAX),                        \
   memcpy((out_ptr), (msg)->inline_data.bytes, sizeof(type)))

/* Runtime payloads. */
typedef struct rt_down {
  uint64_t monitor;     /* the reference rt_monitor() returned */
  rt_actor_id_t target; /* the actor that stopped */
  int32_t reason;       /* its stop reason (RT_REASON_*) */
  uint32_t pad_;
} rt_down_t;

typedef struct rt_stream_event {
  uint64_t id;     /* stream, listener or port id */
  uint32_t events; /* RT_STREAM_* bits (RT_PORT_* for a port) */
  uint32_t pad_;
} rt_stream_event_t;

typedef struct rt_timer_event {
  uint64_t timer;  /* timer id */
  uint64_t data;   /* the value given at start */
  uint32_t missed; /* periodic firings coalesced into this delivery */
  uint32_t pad_;
} rt_timer_event_t;

#endif
