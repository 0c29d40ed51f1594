#include "rt_err.h"
#include "rt_mailbox.h"

#include <criterion/criterion.h>

enum { TAG_A = 20, TAG_B = 21, TAG_TICK = 22 };

static rt_msg_t msg_n(uint16_t tag, uint64_t n) { return RT_MSG_OF(tag, &n); }

static uint64_t payload_n(const rt_msg_t *m) {
  uint64_t n;
  RT_MSG_GET(m, uint64_t, &n);
  return n;
}

/* Fill a mailbox of capacity `cap` with TAG_A messages 0..cap-1. */
static void fill(rt_mailbox_t *mb, uint32_t cap) {
  for (uint32_t i = 0; i < cap; i++) {
    rt_msg_t m = msg_n(TAG_A, i);
    cr_assert_eq(rt_mailbox_push(mb, &m), RT_PUSH_QUEUED, "push %u", i);
  }
}

Test(rt_mailbox, init_rejects_zero_and_oversized_capacity) {
  rt_mailbox_t mb;
  cr_assert_eq(rt_mailbox_init(&mb, 0, RT_OVERFLOW_REJECT, NULL, 0), RT_EINVAL);
  cr_assert_eq(
      rt_mailbox_init(&mb, RT_MAILBOX_CAP_MAX + 1, RT_OVERFLOW_REJECT, NULL, 0),
      RT_EINVAL);
  cr_assert_eq(
      rt_mailbox_init(&mb, RT_MAILBOX_CAP_MAX, RT_OVERFLOW_REJECT, NULL, 0),
      RT_OK);
  rt_mailbox_deinit(&mb);
  rt_overflow_rule_t rules[RT_MAILBOX_RULES_MAX + 1] = {{0}};
  cr_assert_eq(rt_mailbox_init(&mb, 4, RT_OVERFLOW_REJECT, rules,
                               RT_MAILBOX_RULES_MAX + 1),
               RT_EINVAL);
}

Test(rt_mailbox, delivers_in_fifo_order_across_growth_and_wraparound) {
  rt_mailbox_t mb;
  cr_assert_eq(rt_mailbox_init(&mb, 100, RT_OVERFLOW_REJECT, NULL, 0), RT_OK);
  uint64_t next_in = 0, next_out = 0;
  /* Interleave pushes and pops so head wraps while the ring grows. */
  for (int round = 0; round < 40; round++) {
    for (int i = 0; i < 3; i++) {
      rt_msg_t m = msg_n(TAG_A, next_in++);
      cr_assert_eq(rt_mailbox_push(&mb, &m), RT_PUSH_QUEUED);
    }
    rt_msg_t out;
    cr_assert(rt_mailbox_pop(&mb, &out));
    cr_assert_eq(payload_n(&out), next_out++);
  }
  rt_msg_t out;
  while (rt_mailbox_pop(&mb, &out))
    cr_assert_eq(payload_n(&out), next_out++);
  cr_assert_eq(next_out, next_in);
  cr_assert_eq(mb.depth_max, 81);
  rt_mailbox_deinit(&mb);
}

Test(rt_mailbox, reject_below_at_and_above_capacity) {
  rt_mailbox_t mb;
  cr_assert_eq(rt_mailbox_init(&mb, 8, RT_OVERFLOW_REJECT, NULL, 0), RT_OK);
  fill(&mb, 7); /* below */
  rt_msg_t m = msg_n(TAG_A, 7);
  cr_assert_eq(rt_mailbox_push(&mb, &m), RT_PUSH_QUEUED); /* at */
  cr_assert_eq(rt_mailbox_count(&mb), 8);
  rt_buf_t *buf = rt_buf_copy("keep", 4);
  m = msg_n(TAG_A, 8);
  m.buf = buf;
  cr_assert_eq(rt_mailbox_push(&mb, &m), RT_EFULL); /* above */
  cr_assert_eq(buf->refs, 1, "the sender keeps its reference on reject");
  cr_assert_eq(mb.counts[RT_MB_REJECTED], 1);
  cr_assert_eq(rt_mailbox_count(&mb), 8);
  rt_buf_unref(buf);
  rt_msg_t out;
  cr_assert(rt_mailbox_pop(&mb, &out));
  cr_assert_eq(payload_n(&out), 0, "the queue kept the oldest");
  rt_mailbox_deinit(&mb);
}

Test(rt_mailbox, drop_newest_discards_and_counts_the_new_message) {
  rt_mailbox_t mb;
  cr_assert_eq(rt_mailbox_init(&mb, 4, RT_OVERFLOW_DROP_NEWEST, NULL, 0),
               RT_OK);
  fill(&mb, 4);
  rt_buf_t *buf = rt_buf_copy("x", 1);
  rt_buf_ref(buf); /* ours, to observe the mailbox releasing its own */
  rt_msg_t m = msg_n(TAG_A, 99);
  m.buf = buf;
  cr_assert_eq(rt_mailbox_push(&mb, &m), RT_PUSH_DROPPED);
  cr_assert_eq(buf->refs, 1, "the mailbox released the dropped reference");
  cr_assert_eq(mb.counts[RT_MB_DROPPED], 1);
  rt_buf_unref(buf);
  for (uint64_t i = 0; i < 4; i++) {
    rt_msg_t out;
    cr_assert(rt_mailbox_pop(&mb, &out));
    cr_assert_eq(payload_n(&out), i);
  }
  rt_mailbox_deinit(&mb);
}

/* The newest tick goes out and the new one is queued last: it overtakes
 * nothing that entered before it (4 was produced before 5). */
Test(rt_mailbox, replace_discards_the_newest_of_the_tag_and_queues_last) {
  rt_mailbox_t mb;
  cr_assert_eq(rt_mailbox_init(&mb, 4, RT_OVERFLOW_REPLACE, NULL, 0), RT_OK);
  rt_msg_t seq[4] = {msg_n(TAG_TICK, 1), msg_n(TAG_B, 2), msg_n(TAG_TICK, 3),
                     msg_n(TAG_B, 4)};
  for (int i = 0; i < 4; i++)
    cr_assert_eq(rt_mailbox_push(&mb, &seq[i]), RT_PUSH_QUEUED);
  rt_msg_t tick = msg_n(TAG_TICK, 5);
  cr_assert_eq(rt_mailbox_push(&mb, &tick), RT_PUSH_REPLACED);
  cr_assert_eq(mb.counts[RT_MB_REPLACED], 1);
  cr_assert_eq(rt_mailbox_count(&mb), 4);
  uint64_t expect[4] = {1, 2, 4, 5};
  for (int i = 0; i < 4; i++) {
    rt_msg_t out;
    cr_assert(rt_mailbox_pop(&mb, &out));
    cr_assert_eq(payload_n(&out), expect[i]);
  }
  rt_mailbox_deinit(&mb);
}

/* The same across the ring's end: the queue starts at slot 3 of 4. */
Test(rt_mailbox, replace_keeps_the_order_across_the_rings_end) {
  rt_mailbox_t mb;
  cr_assert_eq(rt_mailbox_init(&mb, 4, RT_OVERFLOW_REPLACE, NULL, 0), RT_OK);
  rt_msg_t out;
  for (int i = 0; i < 3; i++) {
    rt_msg_t m = msg_n(TAG_B, 0);
    cr_assert_eq(rt_mailbox_push(&mb, &m), RT_PUSH_QUEUED);
    cr_assert(rt_mailbox_pop(&mb, &out));
  }
  rt_msg_t seq[4] = {msg_n(TAG_B, 1), msg_n(TAG_TICK, 2), msg_n(TAG_B, 3),
                     msg_n(TAG_B, 4)};
  for (int i = 0; i < 4; i++)
    cr_assert_eq(rt_mailbox_push(&mb, &seq[i]), RT_PUSH_QUEUED);
  rt_msg_t tick = msg_n(TAG_TICK, 5);
  cr_assert_eq(rt_mailbox_push(&mb, &tick), RT_PUSH_REPLACED);
  uint64_t expect[4] = {1, 3, 4, 5};
  for (int i = 0; i < 4; i++) {
    cr_assert(rt_mailbox_pop(&mb, &out));
    cr_assert_eq(payload_n(&out), expect[i]);
  }
  cr_assert_not(rt_mailbox_pop(&mb, &out));
  rt_mailbox_deinit(&mb);
}

Test(rt_mailbox, replace_with_no_same_tag_queued_drops_the_new_message) {
  rt_mailbox_t mb;
  cr_assert_eq(rt_mailbox_init(&mb, 2, RT_OVERFLOW_REPLACE, NULL, 0), RT_OK);
  fill(&mb, 2);
  rt_msg_t m = msg_n(TAG_B, 7);
  cr_assert_eq(rt_mailbox_push(&mb, &m), RT_PUSH_DROPPED);
  cr_assert_eq(mb.counts[RT_MB_DROPPED], 1);
  cr_assert_eq(mb.counts[RT_MB_REPLACED], 0);
  rt_mailbox_deinit(&mb);
}

Test(rt_mailbox, replace_below_capacity_just_queues) {
  rt_mailbox_t mb;
  cr_assert_eq(rt_mailbox_init(&mb, 3, RT_OVERFLOW_REPLACE, NULL, 0), RT_OK);
  rt_msg_t a = msg_n(TAG_TICK, 1), b = msg_n(TAG_TICK, 2);
  cr_assert_eq(rt_mailbox_push(&mb, &a), RT_PUSH_QUEUED);
  cr_assert_eq(rt_mailbox_push(&mb, &b), RT_PUSH_QUEUED);
  cr_assert_eq(rt_mailbox_count(&mb), 2);
  cr_assert_eq(mb.counts[RT_MB_REPLACED], 0);
  rt_mailbox_deinit(&mb);
}

Test(rt_mailbox, policy_is_chosen_per_tag) {
  rt_overflow_rule_t rules[] = {{TAG_TICK, RT_OVERFLOW_REPLACE},
                                {TAG_B, RT_OVERFLOW_DROP_NEWEST}};
  rt_mailbox_t mb;
  cr_assert_eq(rt_mailbox_init(&mb, 2, RT_OVERFLOW_REJECT, rules, 2), RT_OK);
  cr_assert_eq(rt_mailbox_policy(&mb, TAG_TICK), RT_OVERFLOW_REPLACE);
  cr_assert_eq(rt_mailbox_policy(&mb, TAG_B), RT_OVERFLOW_DROP_NEWEST);
  cr_assert_eq(rt_mailbox_policy(&mb, TAG_A), RT_OVERFLOW_REJECT);
  rt_msg_t t1 = msg_n(TAG_TICK, 1), a = msg_n(TAG_A, 2);
  cr_assert_eq(rt_mailbox_push(&mb, &t1), RT_PUSH_QUEUED);
  cr_assert_eq(rt_mailbox_push(&mb, &a), RT_PUSH_QUEUED);
  rt_msg_t t2 = msg_n(TAG_TICK, 3), b = msg_n(TAG_B, 4), a2 = msg_n(TAG_A, 5);
  cr_assert_eq(rt_mailbox_push(&mb, &t2), RT_PUSH_REPLACED);
  cr_assert_eq(rt_mailbox_push(&mb, &b), RT_PUSH_DROPPED);
  cr_assert_eq(rt_mailbox_push(&mb, &a2), RT_EFULL);
  cr_assert_eq(mb.counts[RT_MB_REPLACED], 1);
  cr_assert_eq(mb.counts[RT_MB_DROPPED], 1);
  cr_assert_eq(mb.counts[RT_MB_REJECTED], 1);
  rt_msg_t out;
  cr_assert(rt_mailbox_pop(&mb, &out));
  cr_assert_eq(payload_n(&out), 2);
  cr_assert(rt_mailbox_pop(&mb, &out));
  cr_assert_eq(payload_n(&out), 3);
  rt_mailbox_deinit(&mb);
}

Test(rt_mailbox, memory_grows_with_use_not_with_the_limit) {
  rt_mailbox_t mb;
  cr_assert_eq(rt_mailbox_init(&mb, 1u << 16, RT_OVERFLOW_REJECT, NULL, 0),
               RT_OK);
  cr_assert_eq(mb.ring_len, 0, "an unused mailbox allocates nothing");
  fill(&mb, 5);
  cr_assert_leq(mb.ring_len, 8);
  rt_mailbox_deinit(&mb);
}

/* With spares, a mailbox holds a ring only while messages wait: the ring of
 * an emptied one serves the next mailbox pushed to, and the messages of
 * each come out as they went in. A ring that grew is its mailbox's own. */
Test(rt_mailbox, an_emptied_mailbox_gives_its_ring_to_the_next_one) {
  rt_mailbox_spares_t spares = {0};
  rt_mailbox_t a, b;
  cr_assert_eq(rt_mailbox_init(&a, 64, RT_OVERFLOW_REJECT, NULL, 0), RT_OK);
  cr_assert_eq(rt_mailbox_init(&b, 64, RT_OVERFLOW_REJECT, NULL, 0), RT_OK);
  a.spares = b.spares = &spares;
  rt_msg_t m = msg_n(TAG_A, 1), out;
  cr_assert_eq(rt_mailbox_push(&a, &m), RT_PUSH_QUEUED);
  const rt_msg_t *ring = a.ring;
  cr_assert(rt_mailbox_pop(&a, &out));
  cr_assert_eq(payload_n(&out), 1);
  cr_assert_null(a.ring, "given back once empty");
  cr_assert_eq(spares.len, 1);
  for (uint64_t n = 10; n < 13; n++) {
    m = msg_n(TAG_A, n);
    cr_assert_eq(rt_mailbox_push(&b, &m), RT_PUSH_QUEUED);
  }
  cr_assert_eq(b.ring, ring, "the spare taken");
  cr_assert_eq(spares.len, 0);
  for (uint64_t n = 10; n < 13; n++) {
    cr_assert(rt_mailbox_pop(&b, &out));
    cr_assert_eq(payload_n(&out), n);
  }
  cr_assert_eq(spares.len, 1);
  for (uint64_t n = 20; n < 26; n++) { /* grows past the first size */
    m = msg_n(TAG_A, n);
    cr_assert_eq(rt_mailbox_push(&a, &m), RT_PUSH_QUEUED);
  }
  for (uint64_t n = 20; n < 26; n++) {
    cr_assert(rt_mailbox_pop(&a, &out));
    cr_assert_eq(payload_n(&out), n);
  }
  cr_assert_not_null(a.ring, "a grown ring stays");
  cr_assert_eq(spares.len, 0, "the spare became the first ring, now freed");
  rt_mailbox_deinit(&a);
  rt_mailbox_deinit(&b);
  rt_mailbox_spares_free(&spares);
  cr_assert_null(spares.head);
}

/* The spares are bounded: 1,024 kept; beyond them an emptied mailbox keeps
 * its ring (freed with it: no leak under the sanitizers either way). */
Test(rt_mailbox, spares_keep_at_most_1024_rings) {
  enum { N = 1026 };
  static rt_mailbox_t boxes[N];
  rt_mailbox_spares_t spares = {0};
  rt_msg_t m = msg_n(TAG_A, 1), out;
  for (uint32_t i = 0; i < N; i++) {
    cr_assert_eq(rt_mailbox_init(&boxes[i], 8, RT_OVERFLOW_REJECT, NULL, 0),
                 RT_OK);
    boxes[i].spares = &spares;
    cr_assert_eq(rt_mailbox_push(&boxes[i], &m), RT_PUSH_QUEUED);
  }
  for (uint32_t i = 0; i < N; i++) {
    cr_assert(rt_mailbox_pop(&boxes[i], &out));
    cr_assert_eq(spares.len, i + 1 < 1024 ? i + 1 : 1024, "after %u", i);
    cr_assert_eq(boxes[i].ring == NULL, i < 1024, "mailbox %u", i);
  }
  for (uint32_t i = 0; i < N; i++)
    rt_mailbox_deinit(&boxes[i]);
  rt_mailbox_spares_free(&spares);
  cr_assert_eq(spares.len, 0);
}

Test(rt_mailbox, capacity_one_holds_exactly_one) {
  rt_mailbox_t mb;
  cr_assert_eq(rt_mailbox_init(&mb, 1, RT_OVERFLOW_REJECT, NULL, 0), RT_OK);
  rt_msg_t a = msg_n(TAG_A, 1);
  cr_assert_eq(rt_mailbox_push(&mb, &a), RT_PUSH_QUEUED);
  cr_assert_eq(rt_mailbox_push(&mb, &a), RT_EFULL);
  rt_msg_t out;
  cr_assert(rt_mailbox_pop(&mb, &out));
  cr_assert_not(rt_mailbox_pop(&mb, &out));
  cr_assert_eq(rt_mailbox_push(&mb, &a), RT_PUSH_QUEUED);
  rt_mailbox_deinit(&mb);
}

Test(rt_mailbox, deinit_releases_queued_buffers) {
  rt_mailbox_t mb;
  cr_assert_eq(rt_mailbox_init(&mb, 4, RT_OVERFLOW_REJECT, NULL, 0), RT_OK);
  rt_buf_t *buf = rt_buf_copy("shared", 6);
  for (int i = 0; i < 3; i++) {
    rt_msg_t m = msg_n(TAG_A, (uint64_t)i);
    m.buf = rt_buf_ref(buf);
    cr_assert_eq(rt_mailbox_push(&mb, &m), RT_PUSH_QUEUED);
  }
  cr_assert_eq(buf->refs, 4);
  rt_mailbox_deinit(&mb);
  cr_assert_eq(buf->refs, 1);
  rt_buf_unref(buf);
}
