/* test_net_server_park.c: parking: a WebSocket holds wslay's context only
 * while frames move (by default it gives it back as soon as nothing is in
 * flight; with ws_park_after, once quiet that long), and wakes for its next
 * frame with nothing lost.
 * Part of the net_server tests (test_net_server.c; net_server_fixture.h).
 */
#include "net_server_fixture.h"

#include <criterion/criterion.h>
#include <string.h>

/* ---- Parking: wslay's context only while frames move --------------------- */

static uint32_t parked(const fx_t *fx) { return stats(fx).ws_parked; }

/* Three WebSockets, each sent part of a message: half a header, half a
 * payload, the first fragment of a fragmented message. */
typedef struct partial {
  client_t *head, *body, *frag;
  uint8_t frame[64];
  size_t n;
} partial_t;

static void partial_begin(fx_t *fx, partial_t *p) {
  p->head = ws_open(fx);
  p->body = ws_open(fx);
  p->frag = ws_open(fx);
  p->n = ws_frame(p->frame, sizeof(p->frame), true, OP_TEXT, true, "split here",
                  10);
  cl_write(p->head, p->frame, 1);
  cl_write(p->body, p->frame, 8); /* 6 bytes of header, 2 of payload */
  cl_send_frame(p->frag, false, OP_TEXT, "Hel", 3);
}

static void partial_rest(partial_t *p) {
  cl_write(p->head, p->frame + 1, p->n - 1);
  cl_write(p->body, p->frame + 8, p->n - 8);
  cl_send_frame(p->frag, true, OP_CONT, "lo", 2);
}

static void partial_expect(partial_t *p) {
  cl_expect_text(p->head, "split here");
  cl_expect_text(p->body, "split here");
  cl_expect_text(p->frag, "Hello");
}

/* A WebSocket whose server-to-client pipe holds 64 bytes, reading nothing
 * until hold is cleared, that sent a 300-byte text: its echo waits. */
static client_t *slow_reader(fx_t *fx) {
  sim_link_config_t down = {.buffer = 64};
  client_t *cl = cl_connect_with(fx, NULL, &down);
  upgrade_t u = {0};
  cl_send_upgrade(cl, &u);
  cl_expect_switching(cl);
  cl->hold = true;
  send_text_of(cl, 300);
  return cl;
}

/* By default a WebSocket gives its context back after each message: the
 * echo's read and write leave nothing in flight. */
Test(net_server, by_default_a_websocket_parks_after_every_message) {
  fx_t *fx = fx_new();
  client_t *a = ws_open(fx);
  client_t *b = ws_open(fx);
  settle(fx);
  cr_assert_eq(parked(fx), 2);
  for (int round = 0; round < 3; round++) {
    uint64_t parks = stats(fx).ws_parks;
    cl_send_text(a, "hi");
    cl_expect_text(a, "hi");
    cr_assert_eq(parked(fx), 2, "round %d: a holds its context", round);
    cl_send_text(b, "there");
    cl_expect_text(b, "there");
    cr_assert_eq(parked(fx), 2, "round %d: b holds its context", round);
    cr_assert_geq(stats(fx).ws_parks, parks + 2, "round %d", round);
  }
  cr_assert_eq(fx->sessions[0].texts, 3);
  cr_assert_eq(fx->sessions[1].texts, 3);
  fx_free(fx);
}

/* At once, as with a delay: half a header, half a payload, the first
 * fragment of a message, or output a reader has not taken keep the
 * context; the rest of the input, or the reader taking the output, gives
 * it back with no time passing. */
Test(net_server, parking_at_once_waits_for_whole_frames_and_output) {
  fx_t *fx = fx_new();
  partial_t p;
  partial_begin(fx, &p);
  client_t *slow = slow_reader(fx);
  settle(fx);
  cr_assert_eq(parked(fx), 0);
  partial_rest(&p);
  partial_expect(&p);
  cr_assert_eq(parked(fx), 3, "the three whole messages park");
  slow->hold = false;
  expect_text_of(slow, 300);
  cr_assert_eq(parked(fx), 4, "the output taken, the slow one parks");
  fx_free(fx);
}

Test(net_server, a_websocket_never_heard_holds_no_wslay_context) {
  fx_t *fx = fx_create();
  fx->cfg.ws_park_after = 10 * SEC; /* the talker keeps its context */
  fx_start(fx);
  client_t *quiet = ws_open(fx);
  client_t *talker = ws_open(fx);
  settle(fx);
  cr_assert_eq(parked(fx), 2);
  cl_send_text(talker, "hi");
  cl_expect_text(talker, "hi");
  cr_assert_eq(parked(fx), 1, "the talker has a context, the quiet one not");
  cl_expect_quiet(quiet);
  cl_send_text(quiet, "me too");
  cl_expect_text(quiet, "me too");
  cr_assert_eq(parked(fx), 0);
  fx_free(fx);
}

Test(net_server, a_websocket_quiet_for_10_s_is_parked_and_wakes_for_a_message) {
  fx_t *fx = fx_create();
  fx->cfg.ws_park_after = 10 * SEC;
  fx_start(fx);
  client_t *cl = ws_open(fx);
  for (int round = 0; round < 3; round++) {
    cl_send_text(cl, "tick");
    /* From the second round, a probe rides with the echo. */
    cr_assert_eq(cl_take_ping(cl, (uint64_t)round), round > 0);
    cl_expect_text(cl, "tick");
    if (round > 0)
      cl_pong(cl, (uint64_t)round);
    rt_time_ns t0 = rt_now(fx->w);
    run_to(fx, t0 + 10 * SEC - 1);
    cr_assert_eq(parked(fx), 0, "round %d: parked before 10 s", round);
    run_to(fx, t0 + 10 * SEC);
    cr_assert_eq(parked(fx), 1, "round %d: not parked at 10 s", round);
  }
  cr_assert_eq(fx->sessions[0].texts, 3);
  cr_assert_eq(stats(fx).ws_parks, 3);
  fx_free(fx);
}

Test(net_server, configured_park_after_applies) {
  fx_t *fx = fx_create();
  fx->cfg.ws_park_after = 2 * SEC;
  fx_start(fx);
  client_t *cl = ws_open(fx);
  cl_send_text(cl, "tick");
  cl_expect_text(cl, "tick");
  rt_time_ns t0 = rt_now(fx->w);
  run_to(fx, t0 + 2 * SEC - 1);
  cr_assert_eq(parked(fx), 0);
  run_to(fx, t0 + 2 * SEC);
  cr_assert_eq(parked(fx), 1);
  fx_free(fx);
}

/* Half a header, half a payload, the first fragment of a message: wslay
 * holds part of the input each time, so none may be parked; the rest then
 * completes each message exactly. */
Test(net_server, parking_waits_for_whole_frames_and_whole_messages) {
  fx_t *fx = fx_create();
  fx->cfg.ws_park_after = 1 * SEC;
  fx_start(fx);
  partial_t p;
  partial_begin(fx, &p);
  settle(fx);
  advance(fx, 5 * SEC);
  cr_assert_eq(parked(fx), 0);
  partial_rest(&p);
  client_t *all[] = {p.head, p.body, p.frag};
  for (int i = 0; i < 3; i++)
    cr_assert(cl_take_ping(all[i], 1), "a probe 5 s in"); /* unanswered */
  partial_expect(&p);
  advance(fx, 2 * SEC);
  cr_assert_eq(parked(fx), 3);
  fx_free(fx);
}

Test(net_server, a_websocket_with_output_waiting_is_not_parked) {
  fx_t *fx = fx_create();
  fx->cfg.ws_park_after = 1 * SEC;
  fx_start(fx);
  client_t *cl = slow_reader(fx);
  settle(fx);
  advance(fx, 5 * SEC);
  cr_assert_eq(parked(fx), 0);
  cl->hold = false;
  expect_text_of(cl, 300);
  advance(fx, 2 * SEC);
  cr_assert_eq(parked(fx), 1);
  fx_free(fx);
}

/* A refused park is not polled: while the reader takes nothing, nothing
 * moves and no timer fires (it fired every ws_park_after before: 100,000
 * times in these 100 ms); the output draining re-arms the park. */
Test(net_server, a_refused_park_waits_for_bytes_to_move) {
  fx_t *fx = fx_create();
  fx->cfg.ws_park_after = 1000; /* 1 us */
  fx_start(fx);
  client_t *cl = slow_reader(fx);
  settle(fx);
  advance(fx, 1 * MS);
  uint64_t fired = rt_world_timers_fired(fx->w);
  advance(fx, 100 * MS);
  cr_assert_leq(rt_world_timers_fired(fx->w) - fired, 1);
  cr_assert_eq(parked(fx), 0);
  cl->hold = false;
  expect_text_of(cl, 300);
  advance(fx, 1 * MS);
  cr_assert_eq(parked(fx), 1);
  fx_free(fx);
}

/* ws_park_after at its most: a WebSocket is pinged on time and never
 * parked (the keepalive's deadline sums stay in range). */
Test(net_server, park_after_at_its_most_still_pings) {
  fx_t *fx = fx_create();
  fx->cfg.ws_park_after = NET_DURATION_MAX;
  fx_start(fx);
  client_t *cl = ws_open(fx);
  cl_send_text(cl, "x");
  cl_expect_text(cl, "x");
  advance(fx, 54 * SEC);
  cl_expect_ping(cl, 1);
  cr_assert_eq(parked(fx), 0);
  fx_free(fx);
}

Test(net_server, a_parked_websocket_is_pinged_and_its_pong_heard) {
  fx_t *fx = fx_new();
  client_t *cl = ws_open(fx);
  settle(fx);
  cr_assert_eq(parked(fx), 1);
  run_to(fx, 54 * SEC);
  cl_expect_ping(cl, 1);
  cl_pong(cl, 1);
  settle(fx);
  run_to(fx, 64 * SEC);
  cr_assert_eq(parked(fx), 1, "parked again 10 s after the pong");
  run_to(fx, 108 * SEC);
  cl_expect_ping(cl, 2); /* the pong kept it open past 60 s */
  cr_assert_eq(stats(fx).websockets, 1);
  fx_free(fx);
}

Test(net_server,
     a_parked_websocket_answers_a_close_and_gets_the_shutdown_1001) {
  fx_t *fx = fx_new();
  client_t *closer = ws_open(fx);
  client_t *stayer = ws_open(fx);
  cl_send_text(stayer, "x");
  cl_expect_text(stayer, "x");
  advance(fx, 10 * SEC);
  cr_assert_eq(parked(fx), 2);
  cl_send_close(closer, NET_WS_CLOSE_NORMAL, "bye");
  cl_expect_close(closer, NET_WS_CLOSE_NORMAL, "bye");
  cl_expect_eof(closer);
  net_server_shutdown(fx->srv);
  settle(fx);
  expect_server_close(stayer, NET_WS_CLOSE_GOING_AWAY, "server shutting down");
  cr_assert_eq(fx->sessions[0].close_code, NET_WS_CLOSE_NORMAL);
  cr_assert_eq(fx->sessions[1].close_code, NET_WS_CLOSE_GOING_AWAY);
  fx_free(fx);
}

/* The hardest case for parking: one byte at a time, with a park tried
 * between every two bytes. Each frame boundary parks and the next byte
 * wakes a fresh context; nothing may be lost or misread. */
Test(net_server, parking_between_any_two_bytes_loses_nothing) {
  fx_t *fx = fx_create();
  fx->cfg.ws_park_after = 1000; /* 1 us: a park tried between bytes */
  fx_start(fx);
  client_t *cl = ws_open(fx);
  static char long_text[300];
  for (size_t i = 0; i < sizeof(long_text); i++)
    long_text[i] = (char)('A' + i % 26);
  uint8_t all[1024];
  size_t len = 0;
  len += ws_frame(all + len, sizeof(all) - len, true, OP_TEXT, true, "one", 3);
  len += ws_frame(all + len, sizeof(all) - len, false, OP_TEXT, true, "tw", 2);
  len += ws_frame(all + len, sizeof(all) - len, true, OP_PING, true, "p", 1);
  len += ws_frame(all + len, sizeof(all) - len, true, OP_CONT, true, "o", 1);
  len += ws_frame(all + len, sizeof(all) - len, true, OP_TEXT, true, "", 0);
  len += ws_frame(all + len, sizeof(all) - len, true, OP_TEXT, true, long_text,
                  sizeof(long_text));
  uint32_t parks = 0;
  for (size_t i = 0; i < len; i++) {
    cl_write(cl, all + i, 1);
    advance(fx, 2000);
    parks += parked(fx);
  }
  cl_expect_text(cl, "one");
  cl_expect_frame(cl, OP_PONG, "p", 1);
  cl_expect_text(cl, "two");
  cl_expect_text(cl, "");
  cl_expect_frame(cl, OP_TEXT, long_text, sizeof(long_text));
  cl_expect_quiet(cl);
  cr_assert_eq(fx->sessions[0].texts, 4);
  /* Parked after each of the 4 messages ended (not within one). */
  cr_assert_geq(parks, 4);
  fx_free(fx);
}
