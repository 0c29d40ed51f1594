/* test_rt_check.c: the delivery trace hook and rt_world_check.
 *
 * The trace (rt_world_config_t.trace) sees every delivery the run hash
 * folds in, in order, with what it folds; it is off by default.
 * rt_world_check holds on a healthy world, with messages still queued and
 * actors stopped with mail in their boxes, and fails on a world whose
 * bookkeeping was broken on purpose (runtime_int.h).
 */
#include "rt_test_driver.h"
#include "runtime_int.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#define TRACE_MAX 64u

enum { TAG_PING = RT_TAG_USER, TAG_FORWARD };

typedef struct seen {
  rt_delivery_t d[TRACE_MAX];
  uint32_t n;
} seen_t;

static void on_trace(void *ctx, const rt_delivery_t *d) {
  seen_t *s = ctx;
  cr_assert_lt(s->n, TRACE_MAX);
  s->d[s->n++] = *d;
}

static void forward(rt_actor_t *self, const rt_msg_t *msg) {
  rt_actor_id_t *next = rt_state(self);
  if (msg->tag == TAG_FORWARD && *next != 0) {
    rt_msg_t m = rt_msg_make(TAG_PING, msg->inline_data.bytes, msg->len);
    rt_send(rt_actor_world(self), *next, &m);
  }
}

static rt_world_t *traced_world(test_backend_t *tb, seen_t *s) {
  rt_world_config_t cfg = {
      .seed = 7, .log_level = RT_LOG_OFF, .trace = on_trace, .trace_ctx = s};
  rt_backend_t be = {.wake = test_wake, .log_write = test_log_discard};
  rt_world_t *w = rt_world_create(&cfg, &be, tb);
  cr_assert_not_null(w);
  return w;
}

static rt_actor_id_t spawn(rt_world_t *w, rt_actor_id_t *next, uint32_t cap) {
  rt_actor_spec_t spec = {.name = "fwd",
                          .behaviour = forward,
                          .state = next,
                          .mailbox_cap = cap,
                          .overflow = RT_OVERFLOW_REJECT};
  rt_actor_id_t id;
  cr_assert_eq(rt_spawn(w, &spec, &id), RT_OK);
  return id;
}

Test(rt_check, the_trace_sees_each_delivery_in_order_with_what_is_hashed) {
  test_backend_t tb = {0};
  seen_t s = {0};
  rt_world_t *w = traced_world(&tb, &s);
  rt_actor_id_t none = 0, b_next = 0;
  rt_actor_id_t b = spawn(w, &none, 8);
  b_next = b;
  rt_actor_id_t a = spawn(w, &b_next, 8);
  uint64_t word = 42;
  rt_msg_t m = rt_msg_make(TAG_FORWARD, &word, sizeof(word));
  cr_assert_eq(rt_send(w, a, &m), RT_PUSH_QUEUED);
  uint64_t timer;
  cr_assert_eq(rt_timer_start(w, b, 5 * RT_NS_PER_MS, 0, 0, 9, &timer), 0);
  test_advance(w, 10 * RT_NS_PER_MS);
  /* a: FORWARD from the driver; b: PING from a; b: the timer at 5 ms. */
  cr_assert_eq(s.n, 3);
  cr_assert_eq(rt_world_deliveries(w), 3);
  for (uint32_t i = 0; i < s.n; i++)
    cr_assert_eq(s.d[i].seq, i);
  cr_assert(s.d[0].actor == a && s.d[0].from == 0 && s.d[0].tag == TAG_FORWARD);
  cr_assert(s.d[1].actor == b && s.d[1].from == a && s.d[1].tag == TAG_PING);
  cr_assert(s.d[2].actor == b && s.d[2].tag == RT_TAG_TIMER &&
            s.d[2].at == 5 * RT_NS_PER_MS);
  cr_assert_str_eq(s.d[1].actor_name, "fwd");
  /* The payload hash covers the tag and the bytes: the same word under two
   * tags differs. */
  cr_assert_neq(s.d[0].payload_hash, s.d[1].payload_hash);
  rt_world_destroy(w);
}

Test(rt_check, no_trace_by_default_and_the_hash_is_the_same_with_one) {
  uint64_t hashes[2];
  for (int traced = 0; traced < 2; traced++) {
    test_backend_t tb = {0};
    seen_t s = {0};
    rt_world_t *w = traced ? traced_world(&tb, &s) : test_world(&tb, 0);
    rt_actor_id_t none = 0;
    rt_actor_id_t a = spawn(w, &none, 8);
    rt_msg_t m = rt_msg_make(TAG_PING, NULL, 0);
    cr_assert_eq(rt_send(w, a, &m), RT_PUSH_QUEUED);
    test_drain(w);
    cr_assert_eq(s.n, traced ? 1u : 0u);
    hashes[traced] = rt_world_hash(w);
    rt_world_destroy(w);
  }
  cr_assert_eq(hashes[0], hashes[1], "tracing changes nothing");
}

Test(rt_check, a_healthy_world_passes_with_mail_queued_and_actors_stopped) {
  test_backend_t tb = {0};
  rt_world_t *w = test_world(&tb, 0);
  rt_actor_id_t none = 0;
  rt_actor_id_t a = spawn(w, &none, 4), b = spawn(w, &none, 4);
  char why[256];
  for (int i = 0; i < 4; i++) {
    rt_msg_t m = rt_msg_make(TAG_PING, NULL, 0);
    cr_assert_eq(rt_send(w, a, &m), RT_PUSH_QUEUED);
    cr_assert_eq(rt_send(w, b, &m), RT_PUSH_QUEUED);
  }
  rt_msg_t m = rt_msg_make(TAG_PING, NULL, 0);
  cr_assert_eq(rt_send(w, a, &m), RT_EFULL, "at the limit: rejected");
  cr_assert_eq(rt_world_check(w, why, sizeof(why)), 0, "%s", why);
  cr_assert_eq(rt_stop(w, b, RT_REASON_NORMAL), RT_OK); /* 4 released */
  cr_assert_eq(rt_world_check(w, why, sizeof(why)), 0, "%s", why);
  test_drain(w);
  cr_assert_eq(rt_world_check(w, why, sizeof(why)), 0, "%s", why);
  rt_world_stats_t st;
  rt_world_stats(w, &st);
  cr_assert_eq(st.dropped_at_stop, 4);
  cr_assert_eq(st.delivered - st.delivered_signals, 4);
  rt_world_destroy(w);
}

Test(rt_check, a_message_gone_missing_is_caught) {
  test_backend_t tb = {0};
  rt_world_t *w = test_world(&tb, 0);
  rt_actor_id_t none = 0;
  rt_actor_id_t a = spawn(w, &none, 4);
  rt_msg_t m = rt_msg_make(TAG_PING, NULL, 0);
  cr_assert_eq(rt_send(w, a, &m), RT_PUSH_QUEUED);
  test_drain(w);
  char why[256];
  w->stats.sent++; /* as if a queued message vanished without a trace */
  cr_assert_eq(rt_world_check(w, why, sizeof(why)), -1);
  cr_assert(strstr(why, "unaccounted") != NULL, "%s", why);
  w->stats.sent--;
  cr_assert_eq(rt_world_check(w, why, sizeof(why)), 0, "%s", why);
  rt_world_destroy(w);
}

Test(rt_check, a_mailbox_over_its_limit_is_caught) {
  test_backend_t tb = {0};
  rt_world_t *w = test_world(&tb, 0);
  rt_actor_id_t none = 0;
  rt_actor_id_t a = spawn(w, &none, 4);
  rt_actor_t *actor = rt_idmap_get(&w->actors, a);
  char why[256];
  actor->mailbox.depth_max = actor->mailbox.cap; /* at the limit: fine */
  cr_assert_eq(rt_world_check(w, why, sizeof(why)), 0, "%s", why);
  actor->mailbox.depth_max = actor->mailbox.cap + 1;
  cr_assert_eq(rt_world_check(w, why, sizeof(why)), -1);
  cr_assert(strstr(why, "over its limit") != NULL, "%s", why);
  actor->mailbox.depth_max = 0;
  rt_world_destroy(w);
}

/* The checks walk every map in id order (rt_idmap_sorted_keys); its sort
 * must hold for any ids, small ones (a few radix passes) and ones with the
 * top bits set (all of them), against a plain insertion sort. */
static void sorted_keys_case(uint64_t (*key)(uint32_t i), uint32_t n) {
  rt_idmap_t m;
  cr_assert_eq(rt_idmap_init(&m), RT_OK);
  static int token;
  for (uint32_t i = 0; i < n; i++)
    cr_assert_eq(rt_idmap_put(&m, key(i), &token), RT_OK, "put %u", i);
  uint32_t got = 0;
  uint64_t *keys = rt_idmap_sorted_keys(&m, &got);
  cr_assert_eq(got, n);
  cr_assert(n == 0 || keys != NULL);
  uint64_t *want = malloc((size_t)(n > 0 ? n : 1) * sizeof(*want));
  cr_assert_not_null(want);
  for (uint32_t i = 0; i < n; i++) {
    uint64_t k = key(i);
    uint32_t j = i;
    for (; j > 0 && want[j - 1] > k; j--)
      want[j] = want[j - 1];
    want[j] = k;
  }
  for (uint32_t i = 0; i < n; i++)
    cr_assert_eq(keys[i], want[i], "key %u: %llu, want %llu", i,
                 (unsigned long long)keys[i], (unsigned long long)want[i]);
  free(want);
  free(keys);
  rt_idmap_deinit(&m);
}

/* Distinct nonzero keys in a scrambled order: i times a constant modulo a
 * prime above n, or times an odd constant modulo 2^64. */
static uint64_t key_small(uint32_t i) {
  return (uint64_t)i * 7919u % 100003u + 1;
}
static uint64_t key_wide(uint32_t i) {
  return ((uint64_t)i + 1) * 0x9e3779b97f4a7c15ULL;
}
static uint64_t key_top(uint32_t i) { return (1ULL << 63) + (i ^ 0x5555u); }

Test(rt_idmap, sorted_keys_are_ascending_for_any_ids) {
  sorted_keys_case(key_small, 0);
  sorted_keys_case(key_small, 1);
  sorted_keys_case(key_small, 2);
  sorted_keys_case(key_small, 3000);
  sorted_keys_case(key_wide, 3000);
  sorted_keys_case(key_top, 3000);
}

/* rt_idmap_check_each: fails with the smallest failing key, whatever the
 * slot order, and visits every entry when all pass. */
typedef struct check_each_ctx {
  uint64_t bad_from; /* keys >= this (and divisible by 3) fail */
  uint64_t named;    /* the key the last failure named */
  uint32_t calls;
} check_each_ctx_t;

static int fail_some(void *ctx, uint64_t key, const void *val) {
  check_each_ctx_t *c = ctx;
  cr_assert_eq(val, (const void *)(uintptr_t)key);
  c->calls++;
  if (key >= c->bad_from && key % 3 == 0) {
    c->named = key;
    return -7;
  }
  return 0;
}

Test(rt_idmap, check_each_names_the_smallest_failing_key) {
  uint64_t (*keys[])(uint32_t) = {key_small, key_wide, key_top};
  for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
    rt_idmap_t m;
    cr_assert_eq(rt_idmap_init(&m), RT_OK);
    uint64_t min_bad = UINT64_MAX, bad_from = keys[k](1500);
    for (uint32_t i = 0; i < 3000; i++) {
      uint64_t key = keys[k](i);
      cr_assert_eq(rt_idmap_put(&m, key, (void *)(uintptr_t)key), RT_OK);
      if (key >= bad_from && key % 3 == 0 && key < min_bad)
        min_bad = key;
    }
    cr_assert_neq(min_bad, UINT64_MAX);
    check_each_ctx_t c = {.bad_from = bad_from};
    cr_assert_eq(rt_idmap_check_each(&m, fail_some, &c), -7);
    cr_assert_eq(c.named, min_bad, "named %llu, want %llu",
                 (unsigned long long)c.named, (unsigned long long)min_bad);
    c = (check_each_ctx_t){.bad_from = UINT64_MAX};
    cr_assert_eq(rt_idmap_check_each(&m, fail_some, &c), 0);
    cr_assert_eq(c.calls, 3000);
    rt_idmap_deinit(&m);
  }
}

/* The timer heap keeps cancelled timers until they reach its top, or until
 * they are at least RT_TIMER_HEAP_DEAD_MIN and outnumber the live ones:
 * then it is rebuilt without them. Both conditions at, below and above,
 * cancelling only timers that are not on top. */
static void timer_fn(rt_world_t *w, void *arg, uint64_t timer) {
  (void)w, (void)arg, (void)timer;
}

static void start_timers(rt_world_t *w, uint64_t *ids, uint32_t n) {
  for (uint32_t i = 0; i < n; i++)
    cr_assert_eq(rt_timer_start_fn(w, (rt_time_ns)(i + 1) * RT_NS_PER_MS, 0,
                                   timer_fn, NULL, &ids[i]),
                 RT_OK);
}

Test(rt_check, cancelled_timers_are_dropped_at_the_heaps_limits) {
  const uint32_t min = RT_TIMER_HEAP_DEAD_MIN;
  test_backend_t tb = {0};
  rt_world_t *w = test_world(&tb, 0);
  char why[256];
  static uint64_t ids[1024];
  /* min + 36 timers; the last min - 1 cancelled: the dead outnumber the
   * live, but are fewer than min: kept. */
  uint32_t n = min + 36;
  start_timers(w, ids, n);
  for (uint32_t k = 0; k < min - 1; k++)
    cr_assert_eq(rt_timer_cancel(w, ids[n - 1 - k]), RT_OK);
  cr_assert_eq(w->heap.dead, min - 1);
  cr_assert_eq(w->heap.len, n);
  cr_assert_eq(rt_world_check(w, why, sizeof(why)), 0, "%s", why);
  /* The min-th: dropped, all of them. */
  cr_assert_eq(rt_timer_cancel(w, ids[n - min]), RT_OK);
  cr_assert_eq(w->heap.dead, 0);
  cr_assert_eq(w->heap.len, n - min);
  cr_assert_eq(rt_world_check(w, why, sizeof(why)), 0, "%s", why);
  rt_world_destroy(w);

  /* 4 * min timers; half cancelled, min and more, but not outnumbering
   * the live: kept; one more: dropped. */
  w = test_world(&tb, 0);
  n = 4 * min;
  start_timers(w, ids, n);
  for (uint32_t k = 0; k < n / 2; k++)
    cr_assert_eq(rt_timer_cancel(w, ids[n - 1 - k]), RT_OK);
  cr_assert_eq(w->heap.dead, n / 2);
  cr_assert_eq(w->heap.len, n);
  cr_assert_eq(rt_timer_cancel(w, ids[n / 2 - 1]), RT_OK);
  cr_assert_eq(w->heap.dead, 0);
  cr_assert_eq(w->heap.len, n / 2 - 1);
  /* What is left fires, in order, and nothing more. */
  rt_world_set_time(w, (rt_time_ns)n * RT_NS_PER_MS);
  cr_assert_eq(rt_world_fire_timers(w), n / 2 - 1);
  cr_assert_eq(w->heap.len, 0);
  cr_assert_eq(rt_world_check(w, why, sizeof(why)), 0, "%s", why);
  rt_world_destroy(w);
}
