/* rt_signal.h: signals, the runtime's never-lost notifications.
 *
 * A timer firing, a monitored actor's DOWN, and a stream or listener event
 * must never be dropped because a mailbox is full, or a connection would hang
 * or a room would leak. So they do not go through mailboxes: each source
 * object (timer, monitor, stream, listener, port) embeds one rt_signal_t and links
 * it into its owner actor's pending list at most once. Repeated events on a
 * linked source are coalesced into it (stream event bits are OR-ed, periodic
 * timer firings counted as missed). The pending list is therefore bounded by
 * the number of sources an actor owns, and costs no allocation to signal.
 *
 * Signals are delivered before mailbox messages within a turn, as messages
 * with the runtime tags of rt_msg.h, and are hashed like any delivery.
 */
#ifndef RT_SIGNAL_H
#define RT_SIGNAL_H

#include <stdint.h>

typedef enum rt_signal_kind {
  RT_SIGNAL_TIMER = 1,
  RT_SIGNAL_DOWN,
  RT_SIGNAL_STREAM,
  RT_SIGNAL_LISTENER,
  RT_SIGNAL_PORT,
} rt_signal_kind_t;

typedef struct rt_signal {
  struct rt_signal *prev; /* in the owner's circular pending list; */
  struct rt_signal *next; /* both NULL while not linked */
  uint8_t kind;           /* rt_signal_kind_t */
} rt_signal_t;

#endif
