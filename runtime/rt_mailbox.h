/* rt_mailbox.h: bounded FIFO rings with named overflow policies.
 *
 * Guarantees:
 *  (1) At most `cap` messages are ever queued (cap is fixed at init).
 *  (2) Messages leave in the order they entered. A REPLACE takes the
 *      newest queued message of the same tag out and queues the new one
 *      last: the rest keep their order, and nothing is overtaken.
 *  (3) Every message that is not queued is counted under exactly one reason:
 *      rejected (the sender keeps it), dropped (the newest is discarded) or
 *      replaced (the older queued one is discarded).
 *  (4) Memory grows with use: the ring starts empty and doubles up to `cap`,
 *      so a million idle actors with large limits cost little. With spares
 *      (rt_mailbox_t.spares), a ring of the first size goes back to them
 *      whenever the mailbox empties, and the next push takes one.
 *
 * The overflow policy applies only when the mailbox is full; it is chosen
 * per message tag by rules given at init, falling back to a default.
 */
#ifndef RT_MAILBOX_H
#define RT_MAILBOX_H

#include "rt_msg.h"

#include <stdbool.h>
#include <stdint.h>

#define RT_MAILBOX_CAP_MAX (1u << 20)
#define RT_MAILBOX_RULES_MAX 8u

typedef enum rt_overflow {
  RT_OVERFLOW_REJECT = 0,  /* RT_EFULL; the sender keeps the message */
  RT_OVERFLOW_DROP_NEWEST, /* discard the new message, count it */
  RT_OVERFLOW_REPLACE,     /* latest wins: discard the newest queued one of
                              the same tag, queue the new one last; with
                              none queued, drop the new one */
} rt_overflow_t;

/* What happened to a pushed message (values >= 0 mean "taken"). */
enum {
  RT_PUSH_QUEUED = 0,
  RT_PUSH_DROPPED = 1,
  RT_PUSH_REPLACED = 2,
};

/* Why a message did not reach the queue; indexes rt_mailbox_t.counts. */
typedef enum rt_mb_reason {
  RT_MB_REJECTED = 0,
  RT_MB_DROPPED,
  RT_MB_REPLACED,
  RT_MB_REASON_COUNT_
} rt_mb_reason_t;

typedef struct rt_overflow_rule {
  uint16_t tag;
  uint8_t policy; /* rt_overflow_t */
} rt_overflow_rule_t;

/* Rings of the first size that emptied mailboxes gave back, shared by the
 * mailboxes of one world and taken last given first: an actor is sent a
 * message now and then and takes it within the turn, so a ring of its own
 * is a line that has left the cache by its next message, where a shared
 * one was just used by another actor. */
typedef struct rt_mailbox_spares {
  void *head; /* each ring's first bytes point to the next */
  uint32_t len;
} rt_mailbox_spares_t;

/* Frees the spare rings. */
void rt_mailbox_spares_free(rt_mailbox_spares_t *s);

typedef struct rt_mailbox {
  rt_msg_t *ring;
  rt_mailbox_spares_t *spares; /* borrowed; NULL: none (set after init) */
  uint32_t ring_len; /* allocated slots, <= cap */
  uint32_t cap;      /* the limit */
  uint32_t head;     /* index of the oldest message */
  uint32_t count;
  uint32_t depth_max; /* high-water mark */
  uint8_t policy_default;
  uint8_t rules_len;
  rt_overflow_rule_t rules[RT_MAILBOX_RULES_MAX];
  uint64_t counts[RT_MB_REASON_COUNT_];
} rt_mailbox_t;

/* cap in [1, RT_MAILBOX_CAP_MAX]; rules (borrowed, copied) may be NULL when
 * rules_len is 0; rules_len <= RT_MAILBOX_RULES_MAX. RT_EINVAL otherwise. */
int rt_mailbox_init(rt_mailbox_t *mb, uint32_t cap, rt_overflow_t policy,
                    const rt_overflow_rule_t *rules, uint32_t rules_len);

/* Releases queued messages' buffers and the ring. */
void rt_mailbox_deinit(rt_mailbox_t *mb);

/* The policy that applies to messages tagged `tag`. */
rt_overflow_t rt_mailbox_policy(const rt_mailbox_t *mb, uint16_t tag);

/* Push a copy of *msg. Returns RT_PUSH_QUEUED, RT_PUSH_DROPPED or
 * RT_PUSH_REPLACED (the mailbox took the buffer reference), or RT_EFULL /
 * RT_ENOMEM (the caller still owns it). */
int rt_mailbox_push(rt_mailbox_t *mb, const rt_msg_t *msg);

/* Pop the oldest message into *out (the caller takes its buffer). */
bool rt_mailbox_pop(rt_mailbox_t *mb, rt_msg_t *out);

static inline uint32_t rt_mailbox_count(const rt_mailbox_t *mb) {
  return mb->count;
}

#endif
