#include "sim_world.h"

#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdlib.h>

enum { TAG_TOKEN = RT_TAG_USER, TAG_WAKE };

#define WORKLOAD_ACTORS 1000u
#define WORKLOAD_TOKENS 1000u
#define WORKLOAD_HOPS 1000u /* 1,000 tokens x 1,000 hops = 1,000,000 sends */

typedef struct workload workload_t;

typedef struct member {
  workload_t *wl;
  rt_rng_t rng;
  uint64_t acc;
} member_t;

struct workload {
  rt_actor_id_t ids[WORKLOAD_ACTORS];
  member_t members[WORKLOAD_ACTORS];
  uint64_t deliveries;
  uint64_t timers;
};

typedef struct token {
  uint64_t hops_left;
  uint64_t value;
} token_t;

static void member_behaviour(rt_actor_t *self, const rt_msg_t *msg) {
  member_t *m = rt_state(self);
  rt_world_t *w = rt_actor_world(self);
  m->wl->deliveries++;
  token_t tok = {0};
  if (msg->tag == TAG_TOKEN) {
    RT_MSG_GET(msg, token_t, &tok);
  } else {
    rt_timer_event_t ev;
    RT_MSG_GET(msg, rt_timer_event_t, &ev);
    tok.hops_left = ev.data; /* a timer carries a token of its own */
  }
  m->acc = m->acc * 31 + tok.value + (uint64_t)rt_now(w);
  if (tok.hops_left == 0)
    return;
  tok.hops_left--;
  tok.value = rt_rng_next(&m->rng);
  if (rt_rng_below(&m->rng, 64) == 0) {
    /* Park the token on a random timer instead of sending it now. */
    uint64_t t;
    rt_time_ns delay = (rt_time_ns)rt_rng_below(&m->rng, 10 * RT_NS_PER_MS);
    cr_assert_eq(
        rt_timer_start(w, rt_self(self), delay, 0, TAG_WAKE, tok.hops_left, &t),
        RT_OK);
    m->wl->timers++;
    return;
  }
  rt_actor_id_t to = m->wl->ids[rt_rng_below(&m->rng, WORKLOAD_ACTORS)];
  rt_msg_t out = RT_MSG_OF(TAG_TOKEN, &tok);
  cr_assert_eq(rt_send(w, to, &out), RT_PUSH_QUEUED);
}

static void workload_setup(sim_world_t *sw, workload_t *wl) {
  rt_world_t *w = sim_world_rt(sw);
  for (uint32_t i = 0; i < WORKLOAD_ACTORS; i++) {
    wl->members[i].wl = wl;
    rt_world_rng(w, RT_RNG_KEY(RT_RNG_SUB_TEST, i), &wl->members[i].rng);
    rt_actor_spec_t spec = {.name = "member",
                            .behaviour = member_behaviour,
                            .state = &wl->members[i],
                            .mailbox_cap = WORKLOAD_TOKENS,
                            .overflow = RT_OVERFLOW_REJECT};
    cr_assert_eq(rt_spawn(w, &spec, &wl->ids[i]), RT_OK);
  }
  for (uint32_t t = 0; t < WORKLOAD_TOKENS; t++) {
    token_t tok = {.hops_left = WORKLOAD_HOPS, .value = t};
    rt_msg_t m = RT_MSG_OF(TAG_TOKEN, &tok);
    cr_assert_eq(rt_send(w, wl->ids[t], &m), RT_PUSH_QUEUED);
  }
}

typedef struct run_result {
  uint64_t hash;
  uint64_t deliveries;
  uint64_t timers;
  rt_time_ns end;
} run_result_t;

static run_result_t run_workload(uint64_t seed) {
  sim_config_t cfg = {.seed = seed, .log_level = RT_LOG_OFF};
  sim_world_t *sw = sim_world_create(&cfg);
  cr_assert_not_null(sw);
  workload_t *wl = calloc(1, sizeof(*wl));
  workload_setup(sw, wl);
  cr_assert_eq(sim_world_run(sw, RT_TIME_NEVER, 0), SIM_RUN_IDLE);
  run_result_t r = {.hash = rt_world_hash(sim_world_rt(sw)),
                    .deliveries = wl->deliveries,
                    .timers = wl->timers,
                    .end = rt_now(sim_world_rt(sw))};
  sim_world_destroy(sw);
  free(wl);
  return r;
}

Test(sim_world, a_random_workload_gives_the_same_hash_for_the_same_seed,
     .timeout = 120) {
  run_result_t a = run_workload(1234);
  run_result_t b = run_workload(1234);
  cr_assert_eq(a.deliveries, (uint64_t)WORKLOAD_TOKENS * (WORKLOAD_HOPS + 1));
  cr_assert_gt(a.timers, 1000, "timers took part: %" PRIu64, a.timers);
  cr_assert_gt(a.end, 0, "virtual time moved");
  cr_assert_eq(a.hash, b.hash, "%016" PRIx64 " != %016" PRIx64, a.hash, b.hash);
  cr_assert_eq(a.end, b.end);
  run_result_t c = run_workload(1235);
  cr_assert_neq(a.hash, c.hash, "another seed, another run");
}

Test(sim_world, two_worlds_interleaved_in_one_process_do_not_interfere,
     .timeout = 120) {
  run_result_t alone1 = run_workload(1);
  run_result_t alone2 = run_workload(2);
  sim_config_t c1 = {.seed = 1, .log_level = RT_LOG_OFF};
  sim_config_t c2 = {.seed = 2, .log_level = RT_LOG_OFF};
  sim_world_t *w1 = sim_world_create(&c1), *w2 = sim_world_create(&c2);
  workload_t *wl1 = calloc(1, sizeof(*wl1)), *wl2 = calloc(1, sizeof(*wl2));
  workload_setup(w1, wl1);
  workload_setup(w2, wl2);
  bool more1 = true, more2 = true;
  for (uint64_t i = 0; (more1 || more2) && i < 100000000; i++) {
    if (more1)
      more1 = sim_world_step(w1);
    if (more2 && i % 3 != 0) /* uneven interleaving on purpose */
      more2 = sim_world_step(w2);
  }
  cr_assert_not(more1 || more2, "both worlds went idle");
  cr_assert_eq(rt_world_hash(sim_world_rt(w1)), alone1.hash);
  cr_assert_eq(rt_world_hash(sim_world_rt(w2)), alone2.hash);
  cr_assert_neq(alone1.hash, alone2.hash);
  sim_world_destroy(w1);
  sim_world_destroy(w2);
  free(wl1);
  free(wl2);
}

static void count_timer(rt_actor_t *self, const rt_msg_t *msg) {
  (void)msg;
  int *n = rt_state(self);
  (*n)++;
}

Test(sim_world, the_clock_jumps_to_the_next_event_and_stops_at_the_deadline) {
  sim_config_t cfg = {.seed = 1, .log_level = RT_LOG_OFF};
  sim_world_t *sw = sim_world_create(&cfg);
  rt_world_t *w = sim_world_rt(sw);
  int fired = 0;
  rt_actor_spec_t spec = {
      .behaviour = count_timer, .state = &fired, .mailbox_cap = 1};
  rt_actor_id_t a;
  cr_assert_eq(rt_spawn(w, &spec, &a), RT_OK);
  uint64_t t;
  cr_assert_eq(rt_timer_start(w, a, 60 * RT_NS_PER_S, RT_NS_PER_S, 0, 0, &t),
               RT_OK);
  cr_assert_eq(sim_world_run(sw, 30 * RT_NS_PER_S, 0), SIM_RUN_DEADLINE);
  cr_assert_eq(rt_now(w), 30 * RT_NS_PER_S, "left at the deadline");
  cr_assert_eq(fired, 0);
  cr_assert_eq(sim_world_run(sw, 70 * RT_NS_PER_S, 0), SIM_RUN_DEADLINE);
  cr_assert_eq(fired, 11, "60 s to 70 s inclusive");
  cr_assert_eq(rt_timer_cancel(w, t), RT_OK);
  cr_assert_eq(sim_world_run(sw, RT_TIME_NEVER, 0), SIM_RUN_IDLE);
  sim_world_destroy(sw);
}

static void self_sender(rt_actor_t *self, const rt_msg_t *msg) {
  rt_send(rt_actor_world(self), rt_self(self), msg);
}

Test(sim_world, a_livelock_is_bounded_by_turns_max) {
  sim_config_t cfg = {.seed = 1, .log_level = RT_LOG_OFF};
  sim_world_t *sw = sim_world_create(&cfg);
  rt_world_t *w = sim_world_rt(sw);
  rt_actor_spec_t spec = {.behaviour = self_sender, .mailbox_cap = 2};
  rt_actor_id_t a;
  cr_assert_eq(rt_spawn(w, &spec, &a), RT_OK);
  rt_msg_t m = rt_msg_make(TAG_TOKEN, NULL, 0);
  rt_send(w, a, &m);
  cr_assert_eq(sim_world_run(sw, RT_TIME_NEVER, 10000), SIM_RUN_TURNS);
  sim_world_destroy(sw);
}

typedef struct logbuf {
  char text[4096];
  size_t len;
} logbuf_t;

static void log_to_buf(void *ctx, const char *line, size_t len) {
  logbuf_t *b = ctx;
  if (b->len + len < sizeof(b->text)) {
    memcpy(b->text + b->len, line, len);
    b->len += len;
  }
}

static void logger(rt_actor_t *self, const rt_msg_t *msg) {
  rt_timer_event_t ev;
  RT_MSG_GET(msg, rt_timer_event_t, &ev);
  rt_log(rt_actor_world(self), RT_LOG_INFO, "tick", "n=%" PRIu64, ev.data);
}

static void run_logged(logbuf_t *out) {
  sim_config_t cfg = {.seed = 9,
                      .log_level = RT_LOG_INFO,
                      .log_write = log_to_buf,
                      .log_ctx = out};
  sim_world_t *sw = sim_world_create(&cfg);
  rt_world_t *w = sim_world_rt(sw);
  rt_actor_spec_t spec = {.behaviour = logger, .mailbox_cap = 1};
  rt_actor_id_t a;
  cr_assert_eq(rt_spawn(w, &spec, &a), RT_OK);
  uint64_t t;
  for (uint64_t i = 0; i < 5; i++)
    rt_timer_start(w, a, (rt_time_ns)(i * 1500 * RT_NS_PER_MS), 0, 0, i, &t);
  sim_world_run(sw, RT_TIME_NEVER, 0);
  sim_world_destroy(sw);
  out->text[out->len] = '\0';
}

Test(sim_world, a_simulated_run_logs_identically_twice) {
  logbuf_t a = {0}, b = {0};
  run_logged(&a);
  run_logged(&b);
  cr_assert_gt(a.len, 0);
  cr_assert_str_eq(a.text, b.text);
  cr_assert(strstr(a.text, "t=4.500000 level=info event=tick actor=1 n=3\n") !=
                NULL,
            "%s", a.text);
}
