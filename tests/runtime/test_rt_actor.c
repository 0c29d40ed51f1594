#include "rt_test_driver.h"

#include <stdlib.h>

enum { TAG_PING = RT_TAG_USER, TAG_STOP_SELF, TAG_WORK };

#define LOG_MAX 256

/* A journal of deliveries shared by the actors of one test. */
typedef struct journal {
  rt_actor_id_t actor[LOG_MAX];
  uint16_t tag[LOG_MAX];
  uint64_t value[LOG_MAX];
  rt_actor_id_t from[LOG_MAX];
  int32_t reason[LOG_MAX];
  int n;
  int stops;
  int last_stop_reason;
  rt_actor_id_t stop_order[LOG_MAX];
} journal_t;

static void record(rt_actor_t *self, const rt_msg_t *msg) {
  journal_t *j = rt_state(self);
  cr_assert_lt(j->n, LOG_MAX);
  j->actor[j->n] = rt_self(self);
  j->tag[j->n] = msg->tag;
  j->from[j->n] = msg->from;
  j->value[j->n] = 0;
  j->reason[j->n] = 0;
  if (msg->tag == RT_TAG_DOWN) {
    rt_down_t d;
    RT_MSG_GET(msg, rt_down_t, &d);
    j->value[j->n] = d.target;
    j->reason[j->n] = d.reason;
  } else if (msg->len >= sizeof(uint64_t)) {
    RT_MSG_GET(msg, uint64_t, &j->value[j->n]);
  }
  j->n++;
  if (msg->tag == TAG_STOP_SELF)
    rt_stop(rt_actor_world(self), rt_self(self), RT_REASON_USER + 1);
}

static void on_stop_record(rt_actor_t *self, int reason) {
  journal_t *j = rt_state(self);
  j->stop_order[j->stops++] = rt_self(self);
  j->last_stop_reason = reason;
}

static rt_actor_id_t spawn(rt_world_t *w, journal_t *j, uint32_t cap,
                           rt_overflow_t policy) {
  rt_actor_spec_t spec = {.name = "rec",
                          .behaviour = record,
                          .on_stop = on_stop_record,
                          .state = j,
                          .mailbox_cap = cap,
                          .overflow = policy};
  rt_actor_id_t id = 0;
  cr_assert_eq(rt_spawn(w, &spec, &id), RT_OK);
  return id;
}

static int send_u64(rt_world_t *w, rt_actor_id_t to, uint16_t tag, uint64_t v) {
  rt_msg_t m = RT_MSG_OF(tag, &v);
  return rt_send(w, to, &m);
}

Test(rt_actor, ids_are_unique_and_increasing) {
  test_backend_t tb = {0};
  rt_world_t *w = test_world(&tb, 0);
  journal_t j = {0};
  rt_actor_id_t prev = 0;
  for (int i = 0; i < 100; i++) {
    rt_actor_id_t id = spawn(w, &j, 4, RT_OVERFLOW_REJECT);
    cr_assert_gt(id, prev);
    prev = id;
    if (i % 3 == 0)
      rt_stop(w, id, RT_REASON_NORMAL); /* ids are never reused */
  }
  rt_world_destroy(w);
}

Test(rt_actor, spawn_rejects_bad_specs) {
  test_backend_t tb = {0};
  rt_world_t *w = test_world(&tb, 0);
  rt_actor_id_t id;
  rt_actor_spec_t spec = {.behaviour = NULL, .mailbox_cap = 4};
  cr_assert_eq(rt_spawn(w, &spec, &id), RT_EINVAL);
  spec.behaviour = record;
  spec.mailbox_cap = 0;
  cr_assert_eq(rt_spawn(w, &spec, &id), RT_EINVAL);
  rt_world_destroy(w);
}

Test(rt_actor, actors_limit_at_below_and_above) {
  rt_world_config_t cfg = {.seed = 1, .actors_max = 3, .log_level = RT_LOG_OFF};
  rt_backend_t be = {0};
  rt_world_t *w = rt_world_create(&cfg, &be, NULL);
  journal_t j = {0};
  spawn(w, &j, 1, RT_OVERFLOW_REJECT);
  spawn(w, &j, 1, RT_OVERFLOW_REJECT);                       /* below */
  rt_actor_id_t third = spawn(w, &j, 1, RT_OVERFLOW_REJECT); /* at */
  rt_actor_spec_t spec = {.behaviour = record, .state = &j, .mailbox_cap = 1};
  rt_actor_id_t id;
  cr_assert_eq(rt_spawn(w, &spec, &id), RT_ELIMIT); /* above */
  rt_stop(w, third, RT_REASON_NORMAL);
  cr_assert_eq(rt_spawn(w, &spec, &id), RT_OK, "a stop frees a place");
  rt_world_destroy(w);
}

Test(rt_actor, messages_arrive_in_order_with_the_sender_id) {
  test_backend_t tb = {0};
  rt_world_t *w = test_world(&tb, 0);
  journal_t j = {0};
  rt_actor_id_t a = spawn(w, &j, 64, RT_OVERFLOW_REJECT);
  for (uint64_t i = 0; i < 20; i++)
    cr_assert_eq(send_u64(w, a, TAG_PING, i), RT_PUSH_QUEUED);
  test_drain(w);
  cr_assert_eq(j.n, 20);
  for (int i = 0; i < 20; i++) {
    cr_assert_eq(j.value[i], (uint64_t)i);
    cr_assert_eq(j.from[i], 0, "sent from outside any actor");
  }
  rt_world_destroy(w);
}

static void forwarder(rt_actor_t *self, const rt_msg_t *msg) {
  rt_actor_id_t *to = rt_state(self);
  rt_msg_t m = *msg;
  m.buf = NULL;
  rt_send(rt_actor_world(self), *to, &m);
}

Test(rt_actor, from_names_the_sending_actor) {
  test_backend_t tb = {0};
  rt_world_t *w = test_world(&tb, 0);
  journal_t j = {0};
  rt_actor_id_t sink = spawn(w, &j, 8, RT_OVERFLOW_REJECT);
  rt_actor_spec_t spec = {
      .behaviour = forwarder, .state = &sink, .mailbox_cap = 8};
  rt_actor_id_t fwd;
  cr_assert_eq(rt_spawn(w, &spec, &fwd), RT_OK);
  send_u64(w, fwd, TAG_PING, 5);
  test_drain(w);
  cr_assert_eq(j.n, 1);
  cr_assert_eq(j.from[0], fwd);
  rt_world_destroy(w);
}

Test(rt_actor, a_turn_delivers_at_most_batch_max_then_yields) {
  test_backend_t tb = {0};
  rt_world_t *w = test_world(&tb, 4);
  journal_t j = {0};
  rt_actor_id_t a = spawn(w, &j, 64, RT_OVERFLOW_REJECT);
  rt_actor_id_t b = spawn(w, &j, 64, RT_OVERFLOW_REJECT);
  for (uint64_t i = 0; i < 10; i++) {
    send_u64(w, a, TAG_PING, i);
    send_u64(w, b, TAG_PING, i);
  }
  test_drain(w);
  cr_assert_eq(j.n, 20);
  rt_actor_id_t expect[20];
  int k = 0;
  int runs[] = {4, 4, 2};
  for (int r = 0; r < 3; r++) {
    for (int i = 0; i < runs[r]; i++)
      expect[k++] = a;
    for (int i = 0; i < runs[r]; i++)
      expect[k++] = b;
  }
  for (int i = 0; i < 20; i++)
    cr_assert_eq(j.actor[i], expect[i], "delivery %d", i);
  rt_world_destroy(w);
}

Test(rt_actor, scheduled_once_when_the_mailbox_becomes_non_empty) {
  test_backend_t tb = {0};
  rt_world_t *w = test_world(&tb, 0);
  journal_t j = {0};
  rt_actor_id_t a = spawn(w, &j, 8, RT_OVERFLOW_REJECT);
  send_u64(w, a, TAG_PING, 1);
  send_u64(w, a, TAG_PING, 2);
  send_u64(w, a, TAG_PING, 3);
  cr_assert_eq(tb.wakes, 1, "one wake for the idle-to-ready transition");
  cr_assert_eq(rt_world_run_ready(w, 100), 1, "one turn for three messages");
  cr_assert_not(rt_world_has_ready(w));
  send_u64(w, a, TAG_PING, 4);
  cr_assert_eq(tb.wakes, 2);
  rt_world_destroy(w);
}

Test(rt_actor, full_mailbox_rejects_and_the_world_counts_it) {
  test_backend_t tb = {0};
  rt_world_t *w = test_world(&tb, 0);
  journal_t j = {0};
  rt_actor_id_t a = spawn(w, &j, 2, RT_OVERFLOW_REJECT);
  cr_assert_eq(send_u64(w, a, TAG_PING, 1), RT_PUSH_QUEUED);
  cr_assert_eq(send_u64(w, a, TAG_PING, 2), RT_PUSH_QUEUED);
  cr_assert_eq(send_u64(w, a, TAG_PING, 3), RT_EFULL);
  rt_world_stats_t st;
  rt_world_stats(w, &st);
  cr_assert_eq(st.mailbox[RT_MB_REJECTED], 1);
  cr_assert_eq(st.sent, 2);
  cr_assert_eq(rt_actor_mailbox(w, a)->counts[RT_MB_REJECTED], 1);
  rt_world_destroy(w);
}

Test(rt_actor,
     stop_runs_on_stop_releases_mail_and_later_sends_are_dead_letters) {
  test_backend_t tb = {0};
  rt_world_t *w = test_world(&tb, 0);
  journal_t j = {0};
  rt_actor_id_t a = spawn(w, &j, 8, RT_OVERFLOW_REJECT);
  rt_buf_t *buf = rt_buf_copy("payload", 7);
  rt_msg_t m = RT_MSG_OF(TAG_PING, &(uint64_t){1});
  m.buf = rt_buf_ref(buf);
  cr_assert_eq(rt_send(w, a, &m), RT_PUSH_QUEUED);
  send_u64(w, a, TAG_PING, 2);
  cr_assert_eq(rt_stop(w, a, RT_REASON_USER), RT_OK);
  cr_assert_eq(j.stops, 1);
  cr_assert_eq(j.last_stop_reason, RT_REASON_USER);
  cr_assert_eq(buf->refs, 1, "queued buffers were released");
  cr_assert_not(rt_alive(w, a));
  cr_assert_eq(send_u64(w, a, TAG_PING, 3), RT_ENOACTOR);
  cr_assert_eq(rt_stop(w, a, 0), RT_ENOACTOR);
  test_drain(w);
  cr_assert_eq(j.n, 0, "nothing is delivered after the stop");
  rt_world_stats_t st;
  rt_world_stats(w, &st);
  cr_assert_eq(st.dropped_at_stop, 2);
  cr_assert_eq(st.dead_letters, 1);
  cr_assert_eq(st.actors_stopped, 1);
  rt_buf_unref(buf);
  rt_world_destroy(w);
}

Test(rt_actor, stopping_itself_takes_effect_after_the_current_message) {
  test_backend_t tb = {0};
  rt_world_t *w = test_world(&tb, 0);
  journal_t j = {0};
  rt_actor_id_t a = spawn(w, &j, 8, RT_OVERFLOW_REJECT);
  send_u64(w, a, TAG_PING, 1);
  send_u64(w, a, TAG_STOP_SELF, 2);
  send_u64(w, a, TAG_PING, 3);
  test_drain(w);
  cr_assert_eq(j.n, 2, "the message after the stop is not delivered");
  cr_assert_eq(j.stops, 1);
  cr_assert_eq(j.last_stop_reason, RT_REASON_USER + 1);
  cr_assert_not(rt_alive(w, a));
  rt_world_destroy(w);
}

Test(rt_actor, monitor_delivers_down_with_the_reason) {
  test_backend_t tb = {0};
  rt_world_t *w = test_world(&tb, 0);
  journal_t j = {0};
  rt_actor_id_t watcher = spawn(w, &j, 8, RT_OVERFLOW_REJECT);
  rt_actor_id_t target = spawn(w, &j, 8, RT_OVERFLOW_REJECT);
  uint64_t ref;
  cr_assert_eq(rt_monitor(w, watcher, target, &ref), RT_OK);
  rt_stop(w, target, RT_REASON_USER + 5);
  test_drain(w);
  cr_assert_eq(j.n, 1);
  cr_assert_eq(j.actor[0], watcher);
  cr_assert_eq(j.tag[0], RT_TAG_DOWN);
  cr_assert_eq(j.value[0], target);
  cr_assert_eq(j.reason[0], RT_REASON_USER + 5);
  cr_assert_eq(rt_demonitor(w, ref), RT_ENOTFOUND,
               "a delivered monitor is gone");
  rt_world_destroy(w);
}

Test(rt_actor, every_watcher_gets_its_own_down) {
  test_backend_t tb = {0};
  rt_world_t *w = test_world(&tb, 0);
  journal_t j = {0};
  rt_actor_id_t target = spawn(w, &j, 8, RT_OVERFLOW_REJECT);
  rt_actor_id_t watchers[3];
  for (int i = 0; i < 3; i++) {
    watchers[i] = spawn(w, &j, 8, RT_OVERFLOW_REJECT);
    uint64_t ref;
    cr_assert_eq(rt_monitor(w, watchers[i], target, &ref), RT_OK);
  }
  rt_stop(w, target, RT_REASON_NORMAL);
  test_drain(w);
  cr_assert_eq(j.n, 3);
  for (int i = 0; i < 3; i++)
    cr_assert_eq(j.tag[i], RT_TAG_DOWN);
  rt_world_destroy(w);
}

Test(rt_actor, monitoring_a_dead_actor_gives_noproc) {
  test_backend_t tb = {0};
  rt_world_t *w = test_world(&tb, 0);
  journal_t j = {0};
  rt_actor_id_t watcher = spawn(w, &j, 8, RT_OVERFLOW_REJECT);
  uint64_t ref;
  cr_assert_eq(rt_monitor(w, watcher, 9999, &ref), RT_OK);
  test_drain(w);
  cr_assert_eq(j.n, 1);
  cr_assert_eq(j.reason[0], RT_REASON_NOPROC);
  cr_assert_eq(j.value[0], 9999);
  rt_world_destroy(w);
}

Test(rt_actor, demonitor_withdraws_the_down) {
  test_backend_t tb = {0};
  rt_world_t *w = test_world(&tb, 0);
  journal_t j = {0};
  rt_actor_id_t watcher = spawn(w, &j, 8, RT_OVERFLOW_REJECT);
  rt_actor_id_t t1 = spawn(w, &j, 8, RT_OVERFLOW_REJECT);
  rt_actor_id_t t2 = spawn(w, &j, 8, RT_OVERFLOW_REJECT);
  uint64_t r1, r2;
  cr_assert_eq(rt_monitor(w, watcher, t1, &r1), RT_OK);
  cr_assert_eq(rt_monitor(w, watcher, t2, &r2), RT_OK);
  cr_assert_eq(rt_demonitor(w, r1), RT_OK);
  rt_stop(w, t1, RT_REASON_NORMAL);
  rt_stop(w, t2, RT_REASON_NORMAL);
  cr_assert_eq(rt_demonitor(w, r2), RT_OK, "a pending DOWN can be withdrawn");
  test_drain(w);
  cr_assert_eq(j.n, 0);
  rt_world_destroy(w);
}

Test(rt_actor, a_watcher_that_stops_first_gets_nothing_and_leaks_nothing) {
  test_backend_t tb = {0};
  rt_world_t *w = test_world(&tb, 0);
  journal_t j = {0};
  rt_actor_id_t watcher = spawn(w, &j, 8, RT_OVERFLOW_REJECT);
  rt_actor_id_t target = spawn(w, &j, 8, RT_OVERFLOW_REJECT);
  uint64_t ref;
  cr_assert_eq(rt_monitor(w, watcher, target, &ref), RT_OK);
  rt_stop(w, watcher, RT_REASON_NORMAL);
  rt_stop(w, target, RT_REASON_NORMAL);
  test_drain(w);
  cr_assert_eq(j.n, 0);
  cr_assert_eq(rt_demonitor(w, ref), RT_ENOTFOUND);
  rt_world_destroy(w);
}

Test(rt_actor, down_arrives_even_when_the_watchers_mailbox_is_full) {
  test_backend_t tb = {0};
  rt_world_t *w = test_world(&tb, 0);
  journal_t j = {0};
  rt_actor_id_t watcher = spawn(w, &j, 1, RT_OVERFLOW_REJECT);
  rt_actor_id_t target = spawn(w, &j, 1, RT_OVERFLOW_REJECT);
  uint64_t ref;
  cr_assert_eq(rt_monitor(w, watcher, target, &ref), RT_OK);
  cr_assert_eq(send_u64(w, watcher, TAG_PING, 1), RT_PUSH_QUEUED);
  cr_assert_eq(send_u64(w, watcher, TAG_PING, 2), RT_EFULL);
  rt_stop(w, target, RT_REASON_NORMAL);
  test_drain(w);
  cr_assert_eq(j.n, 2);
  cr_assert_eq(j.tag[0], RT_TAG_DOWN, "signals come before mailbox messages");
  cr_assert_eq(j.tag[1], TAG_PING);
  rt_world_destroy(w);
}

static void broadcaster(rt_actor_t *self, const rt_msg_t *msg) {
  rt_actor_id_t *to = rt_state(self);
  (void)msg;
  rt_buf_t *frame = rt_buf_copy("{\"type\":\"UPDATE\"}", 17);
  for (int i = 0; i < 3; i++) {
    rt_msg_t m = RT_MSG_OF(TAG_WORK, &(uint64_t){(uint64_t)i});
    m.buf = rt_buf_ref(frame);
    cr_assert_geq(rt_send(rt_actor_world(self), to[i], &m), 0);
  }
  cr_assert_eq(frame->refs, 4, "one buffer, shared by three messages");
  rt_buf_unref(frame);
}

typedef struct keeper {
  rt_buf_t *kept;
} keeper_t;

static void keep_buf(rt_actor_t *self, const rt_msg_t *msg) {
  keeper_t *k = rt_state(self);
  cr_assert_not_null(msg->buf);
  cr_assert_eq(msg->buf->len, 17);
  k->kept = rt_buf_ref(msg->buf);
}

Test(rt_actor, a_broadcast_buffer_is_shared_and_released_by_its_holders) {
  test_backend_t tb = {0};
  rt_world_t *w = test_world(&tb, 0);
  keeper_t keepers[3] = {{0}};
  rt_actor_id_t ids[3];
  for (int i = 0; i < 3; i++) {
    rt_actor_spec_t spec = {
        .behaviour = keep_buf, .state = &keepers[i], .mailbox_cap = 4};
    cr_assert_eq(rt_spawn(w, &spec, &ids[i]), RT_OK);
  }
  rt_actor_spec_t spec = {
      .behaviour = broadcaster, .state = ids, .mailbox_cap = 4};
  rt_actor_id_t b;
  cr_assert_eq(rt_spawn(w, &spec, &b), RT_OK);
  send_u64(w, b, TAG_PING, 0);
  test_drain(w);
  rt_buf_t *frame = keepers[0].kept;
  cr_assert_eq(frame->refs, 3, "each keeper holds one; the runtime none");
  for (int i = 0; i < 3; i++) {
    cr_assert_eq(keepers[i].kept, frame);
    rt_buf_unref(keepers[i].kept);
  }
  rt_world_destroy(w);
}

Test(rt_actor, world_destroy_stops_everyone_in_id_order) {
  test_backend_t tb = {0};
  rt_world_t *w = test_world(&tb, 0);
  journal_t j = {0};
  rt_actor_id_t ids[5];
  for (int i = 0; i < 5; i++)
    ids[i] = spawn(w, &j, 4, RT_OVERFLOW_REJECT);
  rt_world_destroy(w);
  cr_assert_eq(j.stops, 5);
  for (int i = 0; i < 5; i++)
    cr_assert_eq(j.stop_order[i], ids[i]);
  cr_assert_eq(j.last_stop_reason, RT_REASON_SHUTDOWN);
}

/* B, in its turn, stops A; A's on_stop stops B (a room stopping its
 * clients). B is still running: its stop waits for the end of its turn
 * (it was freed under its own behaviour, as A's on_stop made A the
 * current actor), and B's second message is not delivered. */
typedef struct pair {
  rt_actor_id_t a, b;
  int b_turns, b_stops;
} pair_t;

static void pair_b(rt_actor_t *self, const rt_msg_t *msg) {
  (void)msg;
  pair_t *p = rt_state(self);
  p->b_turns++;
  rt_stop(rt_actor_world(self), p->a, RT_REASON_NORMAL);
  cr_assert_eq(rt_self(self), p->b); /* still alive and ours */
}

static void pair_b_on_stop(rt_actor_t *self, int reason) {
  (void)reason;
  pair_t *p = rt_state(self);
  p->b_stops++;
}

static void pair_a(rt_actor_t *self, const rt_msg_t *msg) {
  (void)self;
  (void)msg;
}

static void pair_a_on_stop(rt_actor_t *self, int reason) {
  (void)reason;
  pair_t *p = rt_state(self);
  rt_stop(rt_actor_world(self), p->b, RT_REASON_NORMAL);
}

Test(rt_actor, an_on_stop_that_stops_the_running_actor_waits_for_its_turn) {
  test_backend_t tb = {0};
  rt_world_t *w = test_world(&tb, 16);
  pair_t p = {0};
  rt_actor_spec_t sa = {.name = "a",
                        .behaviour = pair_a,
                        .on_stop = pair_a_on_stop,
                        .state = &p,
                        .mailbox_cap = 4};
  rt_actor_spec_t sb = {.name = "b",
                        .behaviour = pair_b,
                        .on_stop = pair_b_on_stop,
                        .state = &p,
                        .mailbox_cap = 4};
  cr_assert_eq(rt_spawn(w, &sa, &p.a), RT_OK);
  cr_assert_eq(rt_spawn(w, &sb, &p.b), RT_OK);
  cr_assert_geq(send_u64(w, p.b, TAG_WORK, 1), 0);
  cr_assert_geq(send_u64(w, p.b, TAG_WORK, 2), 0);
  test_drain(w);
  cr_assert_eq(p.b_turns, 1);
  cr_assert_eq(p.b_stops, 1);
  char why[128];
  cr_assert_eq(rt_world_check(w, why, sizeof(why)), 0, "%s", why);
  rt_world_destroy(w);
}

Test(rt_actor, stopping_a_queued_actor_frees_it_safely) {
  test_backend_t tb = {0};
  rt_world_t *w = test_world(&tb, 0);
  journal_t j = {0};
  rt_actor_id_t a = spawn(w, &j, 4, RT_OVERFLOW_REJECT);
  send_u64(w, a, TAG_PING, 1); /* now in the run queue */
  rt_stop(w, a, RT_REASON_NORMAL);
  test_drain(w); /* pops the dead actor: must not deliver */
  cr_assert_eq(j.n, 0);
  rt_world_destroy(w);
}

typedef struct logcap {
  char text[2048];
  size_t len;
} logcap_t;

static void capture(void *ctx, const char *line, size_t len) {
  logcap_t *c = ctx;
  if (c->len + len < sizeof(c->text)) {
    memcpy(c->text + c->len, line, len);
    c->len += len;
    c->text[c->len] = '\0';
  }
}

Test(rt_log, lines_are_key_value_and_stamped_with_world_time) {
  logcap_t cap = {0};
  rt_world_config_t cfg = {.seed = 1, .log_level = RT_LOG_INFO};
  rt_backend_t be = {.log_write = capture};
  rt_world_t *w = rt_world_create(&cfg, &be, &cap);
  rt_world_set_time(w, 12 * RT_NS_PER_S + 345678 * RT_NS_PER_US);
  rt_log(w, RT_LOG_DEBUG, "hidden", "x=%d", 1);
  rt_log(w, RT_LOG_INFO, "room.start", "room=%d players=%d", 3, 2);
  cr_assert_str_eq(
      cap.text, "t=12.345678 level=info event=room.start room=3 players=2\n");
  cap.len = 0;
  char big[3000];
  memset(big, 'a', sizeof(big) - 1);
  big[sizeof(big) - 1] = '\0';
  rt_log(w, RT_LOG_WARN, "big", "v=%s", big);
  cr_assert_lt(cap.len, RT_LOG_LINE_MAX);
  cr_assert_str_eq(cap.text + cap.len - 4, "...\n", "a cut line says so");
  rt_world_destroy(w);
}
