/* test_net_server_probe.c: probes, the pings that show whether a peer
 * reads (net_server_probe.c), and unread_for, what the session sees.
 * Part of the net_server tests (test_net_server.c; net_server_fixture.h).
 */
#include "net_server_fixture.h"

#include <criterion/criterion.h>
#include <string.h>

static rt_time_ns unread_for(fx_t *fx, uint32_t session) {
  rt_session_conn_t *conn = fx->sessions[session].conn;
  return conn->ops->unread_for(conn);
}

Test(net_server, a_probe_rides_with_a_frame_a_period_after_the_last_ping) {
  fx_t *fx = fx_new();
  client_t *cl = ws_open(fx);
  cl_send_text(cl, "early");
  cr_assert_not(cl_take_ping(cl, 1), "no probe within the first second");
  cl_expect_text(cl, "early");
  cr_assert_eq(unread_for(fx, 0), 0);
  run_to(fx, 1 * SEC);
  cl_send_text(cl, "later");
  cr_assert(cl_take_ping(cl, 1), "a probe with the echo a second in");
  cl_expect_text(cl, "later");
  rt_time_ns sent = rt_now(fx->w);
  advance(fx, 500 * MS);
  cr_assert_eq(unread_for(fx, 0), rt_now(fx->w) - sent);
  /* Within the period, no other probe: one is out. */
  cl_send_text(cl, "again");
  cr_assert_not(cl_take_ping(cl, 2));
  cl_expect_text(cl, "again");
  cr_assert_eq(stats(fx).ws_pings, 1);
  fx_free(fx);
}

Test(net_server, only_the_pong_that_echoes_a_ping_out_answers_it) {
  fx_t *fx = fx_new();
  client_t *cl = ws_open(fx);
  run_to(fx, 2 * SEC);
  cl_send_text(cl, "x");
  cr_assert(cl_take_ping(cl, 1));
  cl_expect_text(cl, "x");
  advance(fx, 100 * MS);
  uint8_t seq[8];
  ping_seq_bytes(2, seq); /* not sent yet */
  cl_send_frame(cl, true, OP_PONG, seq, sizeof(seq));
  cl_send_frame(cl, true, OP_PONG, "", 0);               /* unsolicited */
  cl_send_frame(cl, true, OP_PONG, "\0\0\0\0\0\0\0", 7); /* too short */
  settle(fx);
  cr_assert_eq(unread_for(fx, 0), 100 * MS, "still unread");
  cr_assert_eq(stats(fx).ws_pongs, 0);
  cl_pong(cl, 1);
  settle(fx);
  cr_assert_eq(unread_for(fx, 0), 0);
  cr_assert_eq(stats(fx).ws_pongs, 1);
  cl_pong(cl, 1); /* again: answered already */
  settle(fx);
  cr_assert_eq(stats(fx).ws_pongs, 1);
  cr_assert_eq(stats(fx).websockets, 1, "pongs never close");
  fx_free(fx);
}

/* A reader that is slow but moving: while pings are out, one goes after
 * every 512 bytes of frames (and 100 ms), at most 16; a pong answers its
 * ping and all before it, and unread_for counts from the last pong. */
Test(net_server, while_pings_are_out_one_goes_each_512_bytes_up_to_16) {
  fx_t *fx = fx_new();
  client_t *cl = ws_open(fx);
  char msg[201];
  memset(msg, 'm', 200);
  msg[200] = '\0';
  run_to(fx, 1 * SEC);
  uint32_t pings = 0;
  for (uint32_t i = 0; i < 80; i++) {
    cl_send_text(cl, msg);
    if (cl_take_ping(cl, pings + 1))
      pings++;
    cl_expect_text(cl, msg);
    if (i == 8)
      /* the first with the first frame, then one each 3 frames (600 B) */
      cr_assert_eq(pings, 3, "%u pings after 9 frames", pings);
    advance(fx, 150 * MS);
  }
  cr_assert_eq(pings, 16, "no more than 16 out");
  cr_assert_eq(stats(fx).ws_pings, 16);
  cl_pong(cl, 3); /* the reader took up to the third */
  settle(fx);
  rt_time_ns heard = rt_now(fx->w);
  advance(fx, 1 * SEC);
  cr_assert_eq(unread_for(fx, 0), rt_now(fx->w) - heard);
  cl_send_text(cl, msg);
  cr_assert(cl_take_ping(cl, 17), "room for one more");
  cl_expect_text(cl, msg);
  cl_pong(cl, 17); /* and all before it */
  settle(fx);
  cr_assert_eq(unread_for(fx, 0), 0);
  cr_assert_eq(stats(fx).ws_pongs, 2);
  fx_free(fx);
}

static void echo_of(fx_t *fx, client_t *cl, size_t len, uint64_t ping) {
  char msg[512];
  memset(msg, 'e', len);
  msg[len] = '\0';
  cl_send_text(cl, msg);
  bool pinged = cl_take_ping(cl, ping);
  cl_expect_text(cl, msg);
  advance(fx, 150 * MS);
  cr_assert_eq(stats(fx).ws_pings, pinged ? ping : ping - 1);
}

/* PROBE_BYTES at, below and above: 511 bytes of frames after a ping ask
 * nothing, the 512th asks, and so do 600 at once. */
Test(net_server, a_probe_goes_at_512_bytes_not_before) {
  fx_t *fx = fx_new();
  client_t *cl = ws_open(fx);
  run_to(fx, 1 * SEC);
  echo_of(fx, cl, 10, 1); /* a period: ping 1 */
  cr_assert_eq(stats(fx).ws_pings, 1);
  echo_of(fx, cl, 300, 2);
  echo_of(fx, cl, 211, 2); /* 511 since: none */
  cr_assert_eq(stats(fx).ws_pings, 1, "below 512 bytes");
  echo_of(fx, cl, 1, 2); /* 512: ping 2 */
  cr_assert_eq(stats(fx).ws_pings, 2, "at 512 bytes");
  echo_of(fx, cl, 500, 3);
  cr_assert_eq(stats(fx).ws_pings, 2);
  echo_of(fx, cl, 100, 3); /* 600: ping 3 */
  cr_assert_eq(stats(fx).ws_pings, 3, "above 512 bytes");
  fx_free(fx);
}

/* A burst of frames in one instant asks once, however long. */
Test(net_server, a_burst_of_frames_asks_once) {
  fx_t *fx = fx_new();
  client_t *cl = ws_open(fx);
  run_to(fx, 1 * SEC);
  char msg[401];
  memset(msg, 'b', 400);
  msg[400] = '\0';
  for (int i = 0; i < 10; i++)
    cl_send_text(cl, msg);
  settle(fx);
  cr_assert(cl_take_ping(cl, 1));
  for (int i = 0; i < 10; i++) {
    cr_assert_not(cl_take_ping(cl, 2), "a second ping within 100 ms");
    cl_expect_text(cl, msg);
  }
  fx_free(fx);
}
