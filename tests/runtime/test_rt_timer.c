#include "rt_test_driver.h"
#include <string.h>

enum { TAG_T1 = RT_TAG_USER, TAG_T2 };

#define FIRES_MAX 128

typedef struct fires {
  rt_time_ns at[FIRES_MAX];
  uint64_t data[FIRES_MAX];
  uint32_t missed[FIRES_MAX];
  uint16_t tag[FIRES_MAX];
  int n;
} fires_t;

static void on_fire(rt_actor_t *self, const rt_msg_t *msg) {
  fires_t *f = rt_state(self);
  cr_assert_lt(f->n, FIRES_MAX);
  rt_timer_event_t ev;
  RT_MSG_GET(msg, rt_timer_event_t, &ev);
  f->at[f->n] = rt_now(rt_actor_world(self));
  f->data[f->n] = ev.data;
  f->missed[f->n] = ev.missed;
  f->tag[f->n] = msg->tag;
  f->n++;
}

static rt_actor_id_t spawn_timer_owner(rt_world_t *w, fires_t *f) {
  rt_actor_spec_t spec = {.behaviour = on_fire, .state = f, .mailbox_cap = 4};
  rt_actor_id_t id;
  cr_assert_eq(rt_spawn(w, &spec, &id), RT_OK);
  return id;
}

#define MS RT_NS_PER_MS

Test(rt_timer, equal_deadlines_fire_in_start_order) {
  test_backend_t tb = {0};
  rt_world_t *w = test_world(&tb, 0);
  fires_t f = {0};
  rt_actor_id_t a = spawn_timer_owner(w, &f);
  uint64_t t;
  for (uint64_t i = 0; i < 10; i++)
    cr_assert_eq(rt_timer_start(w, a, 100 * MS, 0, TAG_T1, i, &t), RT_OK);
  cr_assert_eq(rt_timer_start(w, a, 50 * MS, 0, TAG_T2, 100, &t), RT_OK);
  test_advance(w, 200 * MS);
  cr_assert_eq(f.n, 11);
  cr_assert_eq(f.data[0], 100, "the earlier deadline first");
  cr_assert_eq(f.at[0], 50 * MS);
  for (int i = 1; i <= 10; i++) {
    cr_assert_eq(f.data[i], (uint64_t)(i - 1));
    cr_assert_eq(f.at[i], 100 * MS);
    cr_assert_eq(f.tag[i], TAG_T1);
  }
  rt_world_destroy(w);
}

Test(rt_timer, does_not_fire_before_its_deadline) {
  test_backend_t tb = {0};
  rt_world_t *w = test_world(&tb, 0);
  fires_t f = {0};
  rt_actor_id_t a = spawn_timer_owner(w, &f);
  uint64_t t;
  cr_assert_eq(rt_timer_start(w, a, 10 * MS, 0, 0, 0, &t), RT_OK);
  test_advance(w, 10 * MS - 1);
  cr_assert_eq(f.n, 0);
  test_advance(w, 10 * MS);
  cr_assert_eq(f.n, 1);
  cr_assert_eq(f.tag[0], RT_TAG_TIMER, "tag 0 means the runtime's timer tag");
  rt_world_destroy(w);
}

Test(rt_timer, periodic_fires_every_period_until_cancelled) {
  test_backend_t tb = {0};
  rt_world_t *w = test_world(&tb, 0);
  fires_t f = {0};
  rt_actor_id_t a = spawn_timer_owner(w, &f);
  uint64_t t;
  cr_assert_eq(rt_timer_start(w, a, 5 * MS, 10 * MS, TAG_T1, 7, &t), RT_OK);
  test_advance(w, 50 * MS);
  cr_assert_eq(f.n, 5);
  for (int i = 0; i < 5; i++) {
    cr_assert_eq(f.at[i], (5 + 10 * i) * MS);
    cr_assert_eq(f.missed[i], 0);
  }
  cr_assert_eq(rt_timer_cancel(w, t), RT_OK);
  test_advance(w, 200 * MS);
  cr_assert_eq(f.n, 5);
  cr_assert_eq(rt_timer_cancel(w, t), RT_ENOTFOUND);
  rt_world_destroy(w);
}

Test(rt_timer, a_periodic_timer_that_falls_behind_coalesces_and_counts) {
  test_backend_t tb = {0};
  rt_world_t *w = test_world(&tb, 0);
  fires_t f = {0};
  rt_actor_id_t a = spawn_timer_owner(w, &f);
  uint64_t t;
  cr_assert_eq(rt_timer_start(w, a, 10 * MS, 10 * MS, 0, 0, &t), RT_OK);
  /* The driver wakes late: 45 ms, past four deadlines at once. */
  rt_world_set_time(w, 45 * MS);
  rt_world_fire_timers(w);
  test_drain(w);
  cr_assert_eq(f.n, 1, "one delivery, not a burst");
  cr_assert_eq(f.missed[0], 3);
  cr_assert_eq(rt_world_next_deadline(w), 50 * MS, "the period keeps phase");
  rt_world_stats_t st;
  rt_world_stats(w, &st);
  cr_assert_eq(st.timers_missed, 3);
  rt_world_destroy(w);
}

Test(rt_timer, firings_while_the_owner_has_not_run_are_coalesced) {
  test_backend_t tb = {0};
  rt_world_t *w = test_world(&tb, 0);
  fires_t f = {0};
  rt_actor_id_t a = spawn_timer_owner(w, &f);
  uint64_t t;
  cr_assert_eq(rt_timer_start(w, a, 10 * MS, 10 * MS, 0, 0, &t), RT_OK);
  for (int i = 1; i <= 3; i++) { /* fire three times without running */
    rt_world_set_time(w, i * 10 * MS);
    rt_world_fire_timers(w);
  }
  test_drain(w);
  cr_assert_eq(f.n, 1);
  cr_assert_eq(f.missed[0], 2);
  rt_world_destroy(w);
}

Test(rt_timer, cancelling_a_due_but_undelivered_timer_prevents_delivery) {
  test_backend_t tb = {0};
  rt_world_t *w = test_world(&tb, 0);
  fires_t f = {0};
  rt_actor_id_t a = spawn_timer_owner(w, &f);
  uint64_t t;
  cr_assert_eq(rt_timer_start(w, a, 10 * MS, 0, 0, 0, &t), RT_OK);
  rt_world_set_time(w, 10 * MS);
  cr_assert_eq(rt_world_fire_timers(w), 1);
  cr_assert_eq(rt_timer_cancel(w, t), RT_OK);
  test_drain(w);
  cr_assert_eq(f.n, 0);
  rt_world_destroy(w);
}

Test(rt_timer, a_delivered_one_shot_is_gone) {
  test_backend_t tb = {0};
  rt_world_t *w = test_world(&tb, 0);
  fires_t f = {0};
  rt_actor_id_t a = spawn_timer_owner(w, &f);
  uint64_t t;
  cr_assert_eq(rt_timer_start(w, a, 0, 0, 0, 0, &t), RT_OK);
  test_advance(w, 1);
  cr_assert_eq(f.n, 1);
  cr_assert_eq(rt_timer_cancel(w, t), RT_ENOTFOUND);
  rt_world_stats_t st;
  rt_world_stats(w, &st);
  cr_assert_eq(st.timers_live, 0);
  rt_world_destroy(w);
}

Test(rt_timer, an_owners_timers_die_with_it) {
  test_backend_t tb = {0};
  rt_world_t *w = test_world(&tb, 0);
  fires_t f = {0};
  rt_actor_id_t a = spawn_timer_owner(w, &f);
  uint64_t t1, t2;
  cr_assert_eq(rt_timer_start(w, a, 10 * MS, 0, 0, 0, &t1), RT_OK);
  cr_assert_eq(rt_timer_start(w, a, 10 * MS, 10 * MS, 0, 0, &t2), RT_OK);
  rt_stop(w, a, RT_REASON_NORMAL);
  rt_world_stats_t st;
  rt_world_stats(w, &st);
  cr_assert_eq(st.timers_live, 0);
  cr_assert_eq(rt_world_next_deadline(w), RT_TIME_NEVER);
  cr_assert_eq(rt_timer_start(w, a, 1, 0, 0, 0, &t1), RT_ENOACTOR);
  rt_world_destroy(w);
}

Test(rt_timer, a_timer_fires_even_when_the_owners_mailbox_is_full) {
  test_backend_t tb = {0};
  rt_world_t *w = test_world(&tb, 0);
  fires_t f = {0};
  rt_actor_spec_t spec = {.behaviour = on_fire, .state = &f, .mailbox_cap = 1};
  rt_actor_id_t a;
  cr_assert_eq(rt_spawn(w, &spec, &a), RT_OK);
  rt_timer_event_t filler = {0};
  rt_msg_t m = RT_MSG_OF(TAG_T2, &filler);
  cr_assert_eq(rt_send(w, a, &m), RT_PUSH_QUEUED);
  cr_assert_eq(rt_send(w, a, &m), RT_EFULL);
  uint64_t t;
  cr_assert_eq(rt_timer_start(w, a, 0, 0, TAG_T1, 0, &t), RT_OK);
  rt_world_fire_timers(w);
  test_drain(w);
  cr_assert_eq(f.n, 2);
  cr_assert_eq(f.tag[0], TAG_T1);
  rt_world_destroy(w);
}

typedef struct fn_calls {
  int n;
  rt_time_ns at[8];
  rt_world_t *w;
  uint64_t self_cancel;
} fn_calls_t;

static void count_fn(rt_world_t *w, void *arg, uint64_t timer) {
  fn_calls_t *c = arg;
  c->at[c->n++] = rt_now(w);
  if (c->n == 3)
    cr_assert_eq(rt_timer_cancel(w, timer), RT_OK,
                 "a function may cancel itself");
}

Test(rt_timer, function_timers_run_in_order_and_may_cancel_themselves) {
  test_backend_t tb = {0};
  rt_world_t *w = test_world(&tb, 0);
  fn_calls_t c = {0};
  uint64_t t;
  cr_assert_eq(rt_timer_start_fn(w, 1 * MS, 2 * MS, count_fn, &c, &t), RT_OK);
  test_advance(w, 100 * MS);
  cr_assert_eq(c.n, 3);
  cr_assert_eq(c.at[0], 1 * MS);
  cr_assert_eq(c.at[2], 5 * MS);
  rt_world_destroy(w);
}

Test(rt_timer, timers_limit_at_below_and_above) {
  rt_world_config_t cfg = {.seed = 1, .timers_max = 2, .log_level = RT_LOG_OFF};
  rt_backend_t be = {0};
  rt_world_t *w = rt_world_create(&cfg, &be, NULL);
  fires_t f = {0};
  rt_actor_id_t a = spawn_timer_owner(w, &f);
  uint64_t t1, t2, t3;
  cr_assert_eq(rt_timer_start(w, a, 5, 0, 0, 0, &t1), RT_OK);     /* below */
  cr_assert_eq(rt_timer_start(w, a, 5, 0, 0, 0, &t2), RT_OK);     /* at */
  cr_assert_eq(rt_timer_start(w, a, 5, 0, 0, 0, &t3), RT_ELIMIT); /* above */
  cr_assert_eq(rt_timer_cancel(w, t1), RT_OK);
  cr_assert_eq(rt_timer_start(w, a, 5, 0, 0, 0, &t3), RT_OK);
  rt_world_destroy(w);
}

Test(rt_timer, rejects_negative_delays) {
  test_backend_t tb = {0};
  rt_world_t *w = test_world(&tb, 0);
  fires_t f = {0};
  rt_actor_id_t a = spawn_timer_owner(w, &f);
  uint64_t t;
  cr_assert_eq(rt_timer_start(w, a, -1, 0, 0, 0, &t), RT_EINVAL);
  cr_assert_eq(rt_timer_start(w, a, 1, -1, 0, 0, &t), RT_EINVAL);
  rt_world_destroy(w);
}

Test(rt_timer, heap_order_holds_under_random_starts_and_cancels) {
  test_backend_t tb = {0};
  rt_world_t *w = test_world(&tb, 0);
  fires_t f = {0};
  rt_actor_id_t a = spawn_timer_owner(w, &f);
  rt_rng_t rng;
  rt_rng_init(&rng, 11, 0);
  uint64_t ids[400];
  for (int i = 0; i < 400; i++)
    cr_assert_eq(rt_timer_start(w, a, (rt_time_ns)rt_rng_below(&rng, 1000), 0,
                                0, (uint64_t)i, &ids[i]),
                 RT_OK);
  for (int i = 0; i < 400; i += 3)
    cr_assert_eq(rt_timer_cancel(w, ids[i]), RT_OK);
  rt_time_ns last = -1;
  int fired = 0;
  while (rt_world_next_deadline(w) != RT_TIME_NEVER) {
    rt_time_ns d = rt_world_next_deadline(w);
    cr_assert_geq(d, last);
    last = d;
    rt_world_set_time(w, d);
    fired += (int)rt_world_fire_timers(w);
    f.n = 0;
    test_drain(w);
  }
  cr_assert_eq(fired, 400 - 134);
  rt_world_destroy(w);
}

/* Cancels are lazy (runtime_int.h): a cancelled timer stays in the heap,
 * marked, until it reaches the top or the dead outnumber the live and the
 * heap is rebuilt without them. Neither may change what fires or when:
 * 2,000 function timers on 50 deadlines (many ties), 70% cancelled in a
 * random order (the earliest one often among them, and the heap rebuilt
 * many times), some from inside a firing; what fires is every survivor,
 * by deadline and then start order, and the world's check holds after
 * every step. */
#define LAZY_N 2000

typedef struct lazy {
  rt_world_t *w;
  uint64_t ids[LAZY_N];
  bool cancelled[LAZY_N];
  uint32_t fired[LAZY_N];
  uint32_t n;
  rt_rng_t rng;
} lazy_t;

static void lazy_fn(rt_world_t *w, void *arg, uint64_t timer) {
  lazy_t *l = arg;
  uint32_t i = 0;
  while (i < LAZY_N && l->ids[i] != timer)
    i++;
  cr_assert_lt(i, LAZY_N);
  cr_assert(!l->cancelled[i], "timer %u fired after its cancel", i);
  l->fired[l->n++] = i;
  /* Now and then a firing cancels a later timer. */
  uint32_t k = (uint32_t)rt_rng_below(&l->rng, LAZY_N);
  if (rt_rng_below(&l->rng, 4) == 0 && !l->cancelled[k] && k != i &&
      rt_timer_cancel(w, l->ids[k]) == RT_OK)
    l->cancelled[k] = true;
}

Test(rt_timer, lazy_cancels_change_nothing_that_fires) {
  test_backend_t tb = {0};
  rt_world_t *w = test_world(&tb, 0);
  static lazy_t l;
  memset(&l, 0, sizeof(l));
  l.w = w;
  rt_rng_init(&l.rng, 17, 0);
  rt_time_ns due[LAZY_N];
  for (uint32_t i = 0; i < LAZY_N; i++) {
    due[i] = (rt_time_ns)(1 + rt_rng_below(&l.rng, 50)) * MS;
    cr_assert_eq(rt_timer_start_fn(w, due[i], 0, lazy_fn, &l, &l.ids[i]),
                 RT_OK);
  }
  char why[256];
  for (uint32_t c = 0; c < LAZY_N * 7 / 10; c++) {
    uint32_t k = (uint32_t)rt_rng_below(&l.rng, LAZY_N);
    if (c % 16 == 0) { /* the earliest live one: the top of the heap */
      k = LAZY_N;
      for (uint32_t i = 0; i < LAZY_N; i++)
        if (!l.cancelled[i] && (k == LAZY_N || due[i] < due[k]))
          k = i;
    }
    if (l.cancelled[k])
      continue;
    rt_time_ns before = rt_world_next_deadline(w);
    cr_assert_eq(rt_timer_cancel(w, l.ids[k]), RT_OK);
    cr_assert_eq(rt_timer_cancel(w, l.ids[k]), RT_ENOTFOUND);
    l.cancelled[k] = true;
    cr_assert_geq(rt_world_next_deadline(w), before);
    cr_assert_eq(rt_world_check(w, why, sizeof(why)), 0, "%s", why);
  }
  /* The next deadline is the earliest live timer's, never a cancelled
   * one's. */
  rt_time_ns first = RT_TIME_NEVER;
  for (uint32_t i = 0; i < LAZY_N; i++)
    if (!l.cancelled[i] && due[i] < first)
      first = due[i];
  cr_assert_eq(rt_world_next_deadline(w), first);
  while (rt_world_next_deadline(w) != RT_TIME_NEVER) {
    rt_world_set_time(w, rt_world_next_deadline(w));
    rt_world_fire_timers(w);
    cr_assert_eq(rt_world_check(w, why, sizeof(why)), 0, "%s", why);
  }
  /* Every survivor fired once, by (deadline, start order). */
  uint32_t expect = 0;
  for (uint32_t i = 0; i < LAZY_N; i++)
    expect += !l.cancelled[i];
  cr_assert_eq(l.n, expect);
  for (uint32_t j = 1; j < l.n; j++) {
    uint32_t a = l.fired[j - 1], b = l.fired[j];
    cr_assert(due[a] < due[b] || (due[a] == due[b] && a < b),
              "timer %u (due %lld) fired before timer %u (due %lld)", a,
              (long long)due[a], b, (long long)due[b]);
  }
  rt_world_destroy(w);
}

/* Time saturates at RT_TIME_NEVER: a delay past the end of time (a caller's
 * "never") is a timer that never fires, not a wrapped, negative deadline
 * that fires at once; likewise a period whose next firing would wrap. */
Test(rt_timer, a_delay_past_the_end_of_time_never_fires) {
  test_backend_t tb = {0};
  rt_world_t *w = test_world(&tb, 16);
  fires_t f = {0};
  rt_actor_id_t id = spawn_timer_owner(w, &f);
  rt_world_set_time(w, RT_NS_PER_S);
  uint64_t t;
  cr_assert_eq(rt_timer_start(w, id, RT_TIME_NEVER, 0, TAG_T1, 1, &t), RT_OK);
  cr_assert_eq(rt_world_next_deadline(w), RT_TIME_NEVER);
  rt_world_set_time(w, 2 * RT_NS_PER_S);
  rt_world_fire_timers(w);
  test_drain(w);
  cr_assert_eq(f.n, 0);
  rt_world_destroy(w);
}

Test(rt_timer, a_period_past_the_end_of_time_fires_once) {
  test_backend_t tb = {0};
  rt_world_t *w = test_world(&tb, 16);
  fires_t f = {0};
  rt_actor_id_t id = spawn_timer_owner(w, &f);
  uint64_t t;
  cr_assert_eq(rt_timer_start(w, id, 1, RT_TIME_NEVER, TAG_T1, 1, &t), RT_OK);
  rt_world_set_time(w, 1);
  rt_world_fire_timers(w);
  test_drain(w);
  cr_assert_eq(f.n, 1);
  cr_assert_eq(rt_world_next_deadline(w), RT_TIME_NEVER);
  rt_world_destroy(w);
}
