/* Nodes (rt_world.h): an actor belongs to its spawner's node, or to the
 * driver's; a paused node takes no turns while its work queues; a stopped
 * node loses every actor at once and nobody else. */
#include "rt_test_driver.h"

enum { TAG_PING = RT_TAG_USER, TAG_SPAWN, TAG_TICK };

#define SEEN_MAX 64

typedef struct seen {
  rt_actor_id_t actor[SEEN_MAX];
  uint16_t tag[SEEN_MAX];
  rt_time_ns at[SEEN_MAX];
  int n;
  int stops;
  rt_actor_id_t child; /* spawned on TAG_SPAWN */
} seen_t;

static void behave(rt_actor_t *self, const rt_msg_t *msg);

static rt_actor_id_t spawn_in(rt_world_t *w, seen_t *s, uint32_t cap) {
  rt_actor_spec_t spec = {.name = "node_test",
                          .behaviour = behave,
                          .on_stop = NULL,
                          .state = s,
                          .mailbox_cap = cap,
                          .overflow = RT_OVERFLOW_REJECT};
  rt_actor_id_t id = 0;
  cr_assert_eq(rt_spawn(w, &spec, &id), RT_OK);
  return id;
}

static void behave(rt_actor_t *self, const rt_msg_t *msg) {
  seen_t *s = rt_state(self);
  rt_world_t *w = rt_actor_world(self);
  cr_assert_lt(s->n, SEEN_MAX);
  s->actor[s->n] = rt_self(self);
  s->tag[s->n] = msg->tag;
  s->at[s->n] = rt_now(w);
  s->n++;
  if (msg->tag == TAG_SPAWN)
    s->child = spawn_in(w, s, 8);
}

static void on_stop_count(rt_actor_t *self, int reason) {
  (void)reason;
  ((seen_t *)rt_state(self))->stops++;
}

static rt_actor_id_t spawn_counted(rt_world_t *w, seen_t *s) {
  rt_actor_spec_t spec = {.name = "node_test",
                          .behaviour = behave,
                          .on_stop = on_stop_count,
                          .state = s,
                          .mailbox_cap = 8,
                          .overflow = RT_OVERFLOW_REJECT};
  rt_actor_id_t id = 0;
  cr_assert_eq(rt_spawn(w, &spec, &id), RT_OK);
  return id;
}

static void ping(rt_world_t *w, rt_actor_id_t to) {
  rt_msg_t m = rt_msg_make(TAG_PING, NULL, 0);
  cr_assert_geq(rt_send(w, to, &m), 0);
}

static void check_ok(rt_world_t *w) {
  char why[256];
  cr_assert_eq(rt_world_check(w, why, sizeof(why)), 0, "%s", why);
}

Test(rt_node, actors_belong_to_the_driver_node_and_children_to_their_parent) {
  test_backend_t tb = {0};
  rt_world_t *w = test_world(&tb, 0);
  seen_t s = {0};
  rt_actor_id_t a0 = spawn_in(w, &s, 8);
  cr_assert_eq(rt_world_set_node(w, 3), RT_OK);
  rt_actor_id_t a3 = spawn_in(w, &s, 8);
  cr_assert_eq(rt_world_set_node(w, 0), RT_OK);
  cr_assert_eq(rt_actor_node(w, a0), 0);
  cr_assert_eq(rt_actor_node(w, a3), 3);
  /* A child spawned by a node 3 behaviour is in node 3, whatever the
   * driver's node is now. */
  rt_msg_t m = rt_msg_make(TAG_SPAWN, NULL, 0);
  cr_assert_geq(rt_send(w, a3, &m), 0);
  test_drain(w);
  cr_assert_neq(s.child, 0);
  cr_assert_eq(rt_actor_node(w, s.child), 3);
  cr_assert_eq(rt_actor_node(w, 9999), 0, "no such actor: 0");
  cr_assert_eq(rt_world_set_node(w, RT_NODES_MAX - 1), RT_OK);
  cr_assert_eq(rt_world_set_node(w, RT_NODES_MAX), RT_EINVAL);
  rt_world_destroy(w);
}

Test(rt_node, a_paused_node_takes_no_turns_and_its_work_waits) {
  test_backend_t tb = {0};
  rt_world_t *w = test_world(&tb, 0);
  seen_t s = {0};
  rt_actor_id_t a0 = spawn_in(w, &s, 8);
  rt_world_set_node(w, 1);
  rt_actor_id_t b1 = spawn_in(w, &s, 8);
  rt_actor_id_t c1 = spawn_in(w, &s, 8);
  rt_world_set_node(w, 0);
  /* Queued before the pause: still held. */
  ping(w, c1);
  rt_world_node_pause(w, 1);
  cr_assert(rt_world_node_paused(w, 1));
  cr_assert_not(rt_world_node_paused(w, 0));
  ping(w, b1);
  ping(w, a0);
  uint64_t timer = 0;
  cr_assert_eq(rt_timer_start(w, b1, 5, 0, TAG_TICK, 0, &timer), RT_OK);
  test_advance(w, 10);
  check_ok(w); /* work waiting in a paused node is no violation */
  cr_assert_eq(s.n, 1, "only node 0 ran");
  cr_assert_eq(s.actor[0], a0);
  /* The mailbox bound holds while paused. */
  for (int i = 0; i < 7; i++)
    ping(w, b1);
  rt_msg_t m = rt_msg_make(TAG_PING, NULL, 0);
  cr_assert_eq(rt_send(w, b1, &m), RT_EFULL);
  rt_world_node_resume(w, 1);
  rt_world_node_resume(w, 1); /* twice: nothing more */
  test_drain(w);
  check_ok(w);
  /* In id order: b1 (its ping, the tick, seven more), then c1. */
  cr_assert_eq(s.n, 1 + 9 + 1);
  cr_assert_eq(s.actor[1], b1);
  cr_assert_eq(s.at[1], 10, "it ran when resumed, not before");
  int ticks = 0;
  for (int i = 1; i < s.n; i++)
    ticks += s.tag[i] == TAG_TICK;
  cr_assert_eq(ticks, 1);
  cr_assert_eq(s.actor[s.n - 1], c1);
  rt_world_destroy(w);
}

Test(rt_node, stopping_a_node_stops_its_actors_and_no_other) {
  test_backend_t tb = {0};
  rt_world_t *w = test_world(&tb, 0);
  seen_t s0 = {0}, s2 = {0};
  rt_actor_id_t a0 = spawn_counted(w, &s0);
  rt_world_set_node(w, 2);
  rt_actor_id_t b2 = spawn_counted(w, &s2);
  rt_actor_id_t c2 = spawn_counted(w, &s2);
  rt_world_set_node(w, 0);
  uint64_t ref = 0;
  cr_assert_eq(rt_monitor(w, a0, b2, &ref), RT_OK);
  ping(w, b2);
  ping(w, c2);
  rt_world_node_pause(w, 2); /* a stalled node can crash too */
  cr_assert_eq(rt_world_node_stop(w, 2, RT_REASON_USER + 7), 2u);
  cr_assert_not(rt_alive(w, b2));
  cr_assert_not(rt_alive(w, c2));
  cr_assert(rt_alive(w, a0));
  cr_assert_eq(s2.stops, 2);
  cr_assert_eq(s0.stops, 0);
  test_drain(w);
  check_ok(w);
  /* The watcher outside heard of it. */
  cr_assert_eq(s0.n, 1);
  cr_assert_eq(s0.tag[0], RT_TAG_DOWN);
  cr_assert_eq(rt_world_node_stop(w, 2, 0), 0u, "nothing left");
  rt_world_node_resume(w, 2);
  /* The node can be used again (a restart). */
  rt_world_set_node(w, 2);
  rt_actor_id_t d2 = spawn_counted(w, &s2);
  rt_world_set_node(w, 0);
  ping(w, d2);
  test_drain(w);
  cr_assert_eq(s2.n, 1);
  cr_assert_eq(s2.actor[0], d2);
  rt_world_stats_t st;
  rt_world_stats(w, &st);
  cr_assert_eq(st.dropped_at_stop, 2u, "the two queued pings were released");
  rt_world_destroy(w);
}
