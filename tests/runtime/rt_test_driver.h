/* A minimal driver for runtime tests: a world with no I/O backend whose
 * clock the test moves by hand. Shows that runtime/ needs no other layer. */
#ifndef RT_TEST_DRIVER_H
#define RT_TEST_DRIVER_H

#include "rt_world.h"

#include <criterion/criterion.h>

typedef struct test_backend {
  int wakes;
} test_backend_t;

static void test_wake(void *ctx) { ((test_backend_t *)ctx)->wakes++; }

static void test_log_discard(void *ctx, const char *line, size_t len) {
  (void)ctx;
  (void)line;
  (void)len;
}

static inline rt_world_t *test_world(test_backend_t *tb, uint32_t batch) {
  rt_world_config_t cfg = {
      .seed = 7, .batch_max = batch, .log_level = RT_LOG_OFF};
  rt_backend_t be = {.wake = test_wake, .log_write = test_log_discard};
  rt_world_t *w = rt_world_create(&cfg, &be, tb);
  cr_assert_not_null(w);
  return w;
}

/* Run until nothing is ready (bounded). */
static inline void test_drain(rt_world_t *w) {
  for (int i = 0; i < 1000000 && rt_world_has_ready(w); i++)
    rt_world_run_ready(w, 1);
  cr_assert_not(rt_world_has_ready(w), "the world did not go idle");
}

/* Advance the clock to `until`, firing timers and running actors in order. */
static inline void test_advance(rt_world_t *w, rt_time_ns until) {
  for (int i = 0; i < 1000000; i++) {
    test_drain(w);
    rt_time_ns next = rt_world_next_deadline(w);
    if (next > until)
      break;
    if (next > rt_now(w))
      rt_world_set_time(w, next);
    rt_world_fire_timers(w);
  }
  test_drain(w);
  if (until > rt_now(w))
    rt_world_set_time(w, until);
}

#endif
