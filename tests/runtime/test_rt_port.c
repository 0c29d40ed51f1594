/* test_rt_port.c: ports (runtime/rt_port.h), readiness from a descriptor
 * the world does not carry as a stream.
 *
 * A port's notifications are signals: coalesced, delivered before messages,
 * never lost to a full mailbox, never delivered after close. Its id comes
 * from the streams' numbering, so a tap sees its notification like a
 * stream's, and a world that cannot watch says so.
 */
#include "rt_port.h"
#include "rt_tap.h"
#include "rt_test_driver.h"

typedef struct seen {
  int deliveries;
  uint32_t events;
  uint64_t id;
  rt_port_t *ref;
} seen_t;

static void on_msg(rt_actor_t *self, const rt_msg_t *msg) {
  seen_t *s = rt_state(self);
  if (msg->tag != RT_TAG_PORT)
    return;
  rt_stream_event_t ev;
  RT_MSG_GET(msg, rt_stream_event_t, &ev);
  s->deliveries++;
  s->events = ev.events;
  s->id = ev.id;
  s->ref = msg->ref;
}

static rt_actor_id_t spawn_seer(rt_world_t *w, seen_t *s) {
  rt_actor_spec_t spec = {.name = "seer",
                          .behaviour = on_msg,
                          .state = s,
                          .mailbox_cap = 1,
                          .overflow = RT_OVERFLOW_REJECT};
  rt_actor_id_t id = 0;
  cr_assert_eq(rt_spawn(w, &spec, &id), RT_OK);
  return id;
}

Test(rt_port, notifications_coalesce_into_one_delivery_with_every_bit) {
  test_backend_t tb = {0};
  rt_world_t *w = test_world(&tb, 16);
  seen_t s = {0};
  rt_actor_id_t a = spawn_seer(w, &s);
  rt_port_t *p = NULL;
  cr_assert_eq(rt_port_open(w, a, &p), RT_OK);
  rt_port_notify(p, RT_PORT_READ);
  rt_port_notify(p, RT_PORT_WRITE);
  rt_port_notify(p, RT_PORT_READ);
  test_drain(w);
  cr_assert_eq(s.deliveries, 1);
  cr_assert_eq(s.events, RT_PORT_READ | RT_PORT_WRITE);
  cr_assert_eq(s.id, p->id);
  cr_assert_eq(s.ref, p);
  rt_port_notify(p, RT_PORT_WRITE);
  test_drain(w);
  cr_assert_eq(s.deliveries, 2);
  cr_assert_eq(s.events, RT_PORT_WRITE, "bits delivered are cleared");
  rt_port_close(p);
  rt_world_destroy(w);
}

Test(rt_port, a_full_mailbox_does_not_lose_the_signal) {
  test_backend_t tb = {0};
  rt_world_t *w = test_world(&tb, 16);
  seen_t s = {0};
  rt_actor_id_t a = spawn_seer(w, &s);
  rt_msg_t m = rt_msg_make(RT_TAG_USER, NULL, 0);
  cr_assert_eq(rt_send(w, a, &m), RT_OK);
  cr_assert_lt(rt_send(w, a, &m), 0, "the mailbox of one is full");
  rt_port_t *p = NULL;
  cr_assert_eq(rt_port_open(w, a, &p), RT_OK);
  rt_port_notify(p, RT_PORT_READ);
  test_drain(w);
  cr_assert_eq(s.deliveries, 1);
  rt_world_destroy(w); /* closes the port its owner left open */
}

Test(rt_port, nothing_is_delivered_after_close) {
  test_backend_t tb = {0};
  rt_world_t *w = test_world(&tb, 16);
  seen_t s = {0};
  rt_actor_id_t a = spawn_seer(w, &s);
  rt_port_t *p = NULL;
  cr_assert_eq(rt_port_open(w, a, &p), RT_OK);
  rt_port_notify(p, RT_PORT_READ);
  rt_port_close(p);
  test_drain(w);
  cr_assert_eq(s.deliveries, 0);
  rt_world_destroy(w);
}

Test(rt_port, ids_follow_the_streams_numbering_and_are_found_by_replays) {
  test_backend_t tb = {0};
  rt_world_t *w = test_world(&tb, 16);
  seen_t s = {0};
  rt_actor_id_t a = spawn_seer(w, &s);
  rt_port_t *p1 = NULL, *p2 = NULL;
  cr_assert_eq(rt_port_open(w, a, &p1), RT_OK);
  cr_assert_eq(rt_port_open(w, a, &p2), RT_OK);
  cr_assert_eq(p2->id, p1->id + 1);
  cr_assert_eq(rt_world_port(w, p1->id), p1);
  cr_assert_eq(rt_world_port(w, p2->id), p2);
  uint64_t id1 = p1->id;
  rt_port_close(p1);
  cr_assert_null(rt_world_port(w, id1));
  cr_assert_eq(rt_world_port(w, p2->id), p2);
  rt_port_close(p2);
  rt_world_destroy(w);
}

Test(rt_port, a_world_that_cannot_watch_says_so) {
  test_backend_t tb = {0};
  rt_world_t *w = test_world(&tb, 16);
  seen_t s = {0};
  rt_port_t *p = NULL;
  cr_assert_eq(rt_port_open(w, spawn_seer(w, &s), &p), RT_OK);
  cr_assert_eq(rt_port_watch(p, 0, RT_PORT_READ), RT_ENOTSUP);
  cr_assert_eq(rt_port_watch(p, -1, 0), RT_OK, "stopping is always fine");
  rt_world_destroy(w);
}

typedef struct taps {
  int notifies;
  uint64_t source;
  uint32_t events;
} taps_t;

static void tap_notify(void *ctx, uint64_t source, uint32_t events) {
  taps_t *t = ctx;
  t->notifies++;
  t->source = source;
  t->events = events;
}

Test(rt_port, a_tap_sees_a_notification_from_outside_a_turn) {
  test_backend_t tb = {0};
  rt_world_t *w = test_world(&tb, 16);
  seen_t s = {0};
  rt_port_t *p = NULL;
  cr_assert_eq(rt_port_open(w, spawn_seer(w, &s), &p), RT_OK);
  taps_t t = {0};
  rt_tap_t tap = {.notify = tap_notify};
  rt_world_set_tap(w, &tap, &t);
  rt_port_notify(p, RT_PORT_WRITE);
  cr_assert_eq(t.notifies, 1);
  cr_assert_eq(t.source, p->id);
  cr_assert_eq(t.events, RT_PORT_WRITE);
  test_drain(w);
  rt_world_set_tap(w, NULL, NULL);
  rt_world_destroy(w);
}
