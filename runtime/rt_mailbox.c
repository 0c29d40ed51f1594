#include "rt_mailbox.h"

#include "rt_assert.h"
#include "rt_err.h"

#include <stdlib.h>
#include <string.h>

/* First allocation: small, so that an idle actor costs little. */
#define RT_MAILBOX_RING_MIN 4u
/* Spare rings kept (rt_mailbox_spares_t): 256 KiB. */
#define RT_MAILBOX_SPARES_MAX 1024u

void rt_mailbox_spares_free(rt_mailbox_spares_t *s) {
  while (s->head != NULL) {
    void *ring = s->head;
    memcpy(&s->head, ring, sizeof(void *));
    free(ring);
  }
  s->len = 0;
}

static rt_msg_t *spare_take(rt_mailbox_spares_t *s) {
  void *ring = s->head;
  if (ring == NULL)
    return malloc(RT_MAILBOX_RING_MIN * sizeof(rt_msg_t));
  memcpy(&s->head, ring, sizeof(void *));
  s->len--;
  return ring;
}

int rt_mailbox_init(rt_mailbox_t *mb, uint32_t cap, rt_overflow_t policy,
                    const rt_overflow_rule_t *rules, uint32_t rules_len) {
  memset(mb, 0, sizeof(*mb));
  if (cap == 0 || cap > RT_MAILBOX_CAP_MAX)
    return RT_EINVAL;
  if (rules_len > RT_MAILBOX_RULES_MAX || (rules_len > 0 && rules == NULL))
    return RT_EINVAL;
  if (policy > RT_OVERFLOW_REPLACE)
    return RT_EINVAL;
  for (uint32_t i = 0; i < rules_len; i++) {
    if (rules[i].policy > RT_OVERFLOW_REPLACE)
      return RT_EINVAL;
    mb->rules[i] = rules[i];
  }
  mb->cap = cap;
  mb->policy_default = (uint8_t)policy;
  mb->rules_len = (uint8_t)rules_len;
  return RT_OK;
}

void rt_mailbox_deinit(rt_mailbox_t *mb) {
  rt_msg_t msg;
  while (rt_mailbox_pop(mb, &msg))
    rt_buf_unref(msg.buf);
  free(mb->ring);
  mb->ring = NULL;
  mb->ring_len = 0;
}

rt_overflow_t rt_mailbox_policy(const rt_mailbox_t *mb, uint16_t tag) {
  for (uint32_t i = 0; i < mb->rules_len; i++)
    if (mb->rules[i].tag == tag)
      return (rt_overflow_t)mb->rules[i].policy;
  return (rt_overflow_t)mb->policy_default;
}

static uint32_t slot_index(const rt_mailbox_t *mb, uint32_t offset) {
  uint32_t i = mb->head + offset;
  return i >= mb->ring_len ? i - mb->ring_len : i;
}

/* Grow the ring (doubling, capped at the limit); keeps order. */
static int grow(rt_mailbox_t *mb) {
  RT_ASSERT(mb->ring_len < mb->cap);
  uint32_t len = mb->ring_len == 0 ? RT_MAILBOX_RING_MIN : mb->ring_len * 2;
  if (len > mb->cap)
    len = mb->cap;
  rt_msg_t *ring = len == RT_MAILBOX_RING_MIN && mb->spares != NULL
                       ? spare_take(mb->spares)
                       : malloc((size_t)len * sizeof(*ring));
  if (ring == NULL)
    return RT_ENOMEM;
  for (uint32_t i = 0; i < mb->count; i++)
    ring[i] = mb->ring[slot_index(mb, i)];
  free(mb->ring);
  mb->ring = ring;
  mb->ring_len = len;
  mb->head = 0;
  return RT_OK;
}

/* The position (0: oldest) of the newest queued message with `tag`, or
 * mb->count when there is none. */
static uint32_t newest_with_tag(const rt_mailbox_t *mb, uint16_t tag) {
  for (uint32_t n = mb->count; n > 0; n--)
    if (mb->ring[slot_index(mb, n - 1)].tag == tag)
      return n - 1;
  return mb->count;
}

int rt_mailbox_push(rt_mailbox_t *mb, const rt_msg_t *msg) {
  RT_ASSERT(mb->count <= mb->cap); /* Guarantee (1) */
  if (mb->count == mb->cap) {
    switch (rt_mailbox_policy(mb, msg->tag)) {
    case RT_OVERFLOW_REJECT: mb->counts[RT_MB_REJECTED]++; return RT_EFULL;
    case RT_OVERFLOW_DROP_NEWEST:
      mb->counts[RT_MB_DROPPED]++;
      rt_buf_unref(msg->buf);
      return RT_PUSH_DROPPED;
    case RT_OVERFLOW_REPLACE: {
      uint32_t old = newest_with_tag(mb, msg->tag);
      if (old == mb->count) {
        mb->counts[RT_MB_DROPPED]++;
        rt_buf_unref(msg->buf);
        return RT_PUSH_DROPPED;
      }
      /* Out of the queue, the gap closed; the new one goes last, so it
       * overtakes nothing that entered before it (Guarantee (2)). */
      mb->counts[RT_MB_REPLACED]++;
      rt_buf_unref(mb->ring[slot_index(mb, old)].buf);
      for (uint32_t i = old + 1; i < mb->count; i++)
        mb->ring[slot_index(mb, i - 1)] = mb->ring[slot_index(mb, i)];
      mb->ring[slot_index(mb, mb->count - 1)] = *msg;
      return RT_PUSH_REPLACED;
    }
    }
    RT_ASSERT(!"unknown overflow policy");
  }
  if (mb->count == mb->ring_len) {
    int err = grow(mb);
    if (err < 0)
      return err;
  }
  mb->ring[slot_index(mb, mb->count)] = *msg;
  mb->count++;
  if (mb->count > mb->depth_max)
    mb->depth_max = mb->count;
  return RT_PUSH_QUEUED;
}

bool rt_mailbox_pop(rt_mailbox_t *mb, rt_msg_t *out) {
  if (mb->count == 0)
    return false;
  *out = mb->ring[mb->head];
  mb->head = slot_index(mb, 1);
  mb->count--;
  if (mb->count > 0)
    return true;
  mb->head = 0;
  rt_mailbox_spares_t *s = mb->spares;
  if (s != NULL && mb->ring_len == RT_MAILBOX_RING_MIN &&
      s->len < RT_MAILBOX_SPARES_MAX) {
    memcpy(mb->ring, &s->head, sizeof(void *));
    s->head = mb->ring;
    s->len++;
    mb->ring = NULL;
    mb->ring_len = 0;
  }
  return true;
}
