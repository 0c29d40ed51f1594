/* test_net_server_ws.c: WebSocket behaviour after the upgrade: echoes,
 * message limits, protocol errors and their close codes, pings and
 * silence, shutdown, sessions, and a real client (net_ws_client).
 * Part of the net_server tests (test_net_server.c; net_server_fixture.h).
 */
#include "net_echo.h"
#include "net_server_fixture.h"
#include "net_ws.h"
#include "net_ws_client.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ========================================================================== */
/* WebSocket behaviour */
/* ========================================================================== */

Test(net_server, text_message_is_echoed) {
  fx_t *fx = fx_new();
  client_t *cl = ws_open(fx);
  cl_send_text(cl, "hello");
  settle(fx);
  const uint8_t want[] = {0x81, 0x05, 'h', 'e', 'l', 'l', 'o'};
  cl_expect_bytes(cl, want, sizeof(want));
  cl_send_text(cl, "{\"type\":\"CLICK\"}");
  cl_expect_text(cl, "{\"type\":\"CLICK\"}");
  cl_send_text(cl, "caf\xc3\xa9 \xf0\x9f\x8d\xaa"); /* valid UTF-8 */
  cl_expect_text(cl, "caf\xc3\xa9 \xf0\x9f\x8d\xaa");
  cl_send_text(cl, "");
  cl_expect_text(cl, "");
  cl_expect_quiet(cl);
  cr_assert_eq(fx->sessions[0].texts, 4);
  net_server_stats_t s = stats(fx);
  cr_assert_eq(s.ws_messages_in, 4);
  cr_assert_eq(s.ws_messages_out, 4);
  fx_free(fx);
}

Test(net_server, frames_sent_with_the_upgrade_request_are_not_lost) {
  fx_t *fx = fx_new();
  client_t *cl = cl_connect(fx);
  char req[512];
  int n = snprintf(req, sizeof(req),
                   "GET /ws HTTP/1.1\r\nHost: " HOST "\r\nUpgrade: websocket"
                   "\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " SAMPLE_KEY
                   "\r\nSec-WebSocket-Version: 13\r\n\r\n");
  uint8_t all[1024];
  memcpy(all, req, (size_t)n);
  size_t len = (size_t)n;
  len += ws_frame(all + len, sizeof(all) - len, true, OP_TEXT, true, "one", 3);
  len += ws_frame(all + len, sizeof(all) - len, true, OP_TEXT, true, "two", 3);
  cl_write(cl, all, len);
  cl_expect_switching(cl);
  cl_expect_text(cl, "one");
  cl_expect_text(cl, "two");
  fx_free(fx);
}

Test(net_server, messages_queued_before_a_close_are_sent_before_it) {
  fx_t *fx = fx_new();
  client_t *cl = ws_open(fx);
  cl_send_text(cl, "kick me");
  settle(fx);
  cl_expect_text(cl, "kick me");
  cl_expect_text(cl, "goodbye");
  expect_server_close(cl, RT_CLOSE_POLICY, "kicked");
  cr_assert_eq(fx->sessions[0].closed_calls, 1);
  cr_assert_eq(fx->sessions[0].close_code, RT_CLOSE_POLICY);
  fx_free(fx);
}

Test(net_server, message_of_512_bytes_is_ok_and_513_closes_1009) {
  fx_t *fx = fx_new();
  client_t *cl = ws_open(fx);
  send_text_of(cl, 511);
  expect_text_of(cl, 511);
  send_text_of(cl, 512);
  expect_text_of(cl, 512);
  cl_expect_quiet(cl);
  client_t *big = ws_open(fx);
  send_text_of(big, 513);
  expect_server_close(big, NET_WS_CLOSE_TOO_BIG, "");
  cr_assert_eq(fx->sessions[1].texts, 0, "the big message was not delivered");
  cr_assert_eq(fx->sessions[1].closed_calls, 1);
  cr_assert_eq(fx->sessions[1].close_code, NET_WS_CLOSE_TOO_BIG);
  cl_send_text(cl, "still here"); /* the other connection is unaffected */
  cl_expect_text(cl, "still here");
  net_server_stats_t s = stats(fx);
  cr_assert_eq(s.ws_close_codes[net_server_close_code_index(1009)], 1);
  /* The rest of the big frame was its answer: the connection drains its
   * input before it closes (linger), and is counted once closed. */
  cr_assert_eq(s.closes[NET_CLOSE_WS_DONE], 0);
  advance(fx, 3 * SEC);
  cr_assert_eq(stats(fx).closes[NET_CLOSE_WS_DONE], 1);
  fx_free(fx);
}

Test(net_server, fragmented_message_is_held_to_512_bytes_in_total) {
  fx_t *fx = fx_new();
  static char text[600];
  for (size_t i = 0; i < sizeof(text); i++)
    text[i] = (char)('a' + i % 26);
  client_t *ok = ws_open(fx);
  cl_send_frame(ok, false, OP_TEXT, text, 200);
  cl_send_frame(ok, false, OP_CONT, text + 200, 200);
  cl_send_frame(ok, true, OP_CONT, text + 400, 112);
  cl_expect_frame(ok, OP_TEXT, text, 512);
  client_t *big = ws_open(fx);
  cl_send_frame(big, false, OP_TEXT, text, 200);
  cl_send_frame(big, false, OP_CONT, text + 200, 200);
  cl_send_frame(big, true, OP_CONT, text + 400, 113);
  expect_server_close(big, NET_WS_CLOSE_TOO_BIG, "");
  fx_free(fx);
}

Test(net_server, configured_message_limit_applies) {
  fx_t *fx = fx_create();
  fx->cfg.ws_message_max = 16;
  fx_start(fx);
  client_t *cl = ws_open(fx);
  send_text_of(cl, 16);
  expect_text_of(cl, 16);
  send_text_of(cl, 17);
  expect_server_close(cl, NET_WS_CLOSE_TOO_BIG, "");
  fx_free(fx);
}

Test(net_server, unmasked_client_frame_closes_1002) {
  fx_t *fx = fx_new();
  client_t *cl = ws_open(fx);
  uint8_t frame[32];
  size_t n = ws_frame(frame, sizeof(frame), true, OP_TEXT, false, "hi", 2);
  cr_assert_eq(n, 4);
  cl_write(cl, frame, n);
  expect_server_close(cl, NET_WS_CLOSE_PROTOCOL, "");
  cr_assert_eq(fx->sessions[0].texts, 0);
  cr_assert_eq(fx->sessions[0].close_code, NET_WS_CLOSE_PROTOCOL);
  fx_free(fx);
}

/* RFC 6455 7.4.1: each protocol error wslay's frame parser finds, and a
 * close payload of one byte, is answered with a 1002 close frame before
 * the connection ends, not with a dropped connection or an empty close. */
Test(net_server, frame_protocol_errors_close_1002_first) {
  uint8_t top_bit[14] = {0x81, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 0x10};
  memcpy(top_bit + 10, MASK_KEY, 4);
  static uint8_t ping126[200];
  size_t ping126_len =
      ws_frame(ping126, sizeof(ping126), true, OP_PING, true, ping126 + 150, 0);
  ping126[1] = 0x80 | 126; /* a control frame with a 126-byte length */
  ping126[2] = 0;
  ping126[3] = 126;
  memcpy(ping126 + 4, MASK_KEY, 4);
  memset(ping126 + 8, 'p', 126);
  ping126_len = 8 + 126;
  uint8_t frag_ping[16];
  size_t frag_ping_len =
      ws_frame(frag_ping, sizeof(frag_ping), false, OP_PING, true, "p", 1);
  uint8_t close1[16];
  size_t close1_len =
      ws_frame(close1, sizeof(close1), true, OP_CLOSE, true, "\x03", 1);
  struct {
    const uint8_t *bytes;
    size_t len;
  } bad[] = {{top_bit, sizeof(top_bit)},
             {ping126, ping126_len},
             {frag_ping, frag_ping_len},
             {close1, close1_len}};
  fx_t *fx = fx_new();
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    client_t *cl = ws_open(fx);
    cl_send_text(cl, "before");
    cl_expect_text(cl, "before"); /* the echo, then the bad frame */
    cl_write(cl, bad[i].bytes, bad[i].len);
    expect_server_close(cl, NET_WS_CLOSE_PROTOCOL, "");
    cr_assert_eq(fx->sessions[i].close_code, NET_WS_CLOSE_PROTOCOL,
                 "case %zu: %u", i, fx->sessions[i].close_code);
  }
  net_server_stats_t s = stats(fx);
  cr_assert_eq(s.ws_close_codes[net_server_close_code_index(1002)], 4);
  fx_free(fx);
}

/* The same, for a WebSocket that is parked when the bad frame comes: the
 * frame wakes it, and it still says 1002. */
Test(net_server, a_parked_websocket_closes_1002_on_a_bad_frame) {
  fx_t *fx = fx_create();
  fx->cfg.ws_park_after = 1 * SEC;
  fx_start(fx);
  client_t *cl = ws_open(fx);
  cl_send_text(cl, "hi");
  cl_expect_text(cl, "hi");
  advance(fx, 3 * SEC);
  cr_assert_eq(stats(fx).ws_parks, 1, "parked before the bad frame");
  uint8_t frag_ping[16];
  size_t n =
      ws_frame(frag_ping, sizeof(frag_ping), false, OP_PING, true, "p", 1);
  cl_write(cl, frag_ping, n);
  expect_server_close(cl, NET_WS_CLOSE_PROTOCOL, "");
  fx_free(fx);
}

Test(net_server, invalid_utf8_text_closes_1007) {
  const char *bad[] = {
      "\xc3\x28",         /* bad continuation */
      "\xc0\xaf",         /* overlong */
      "\xed\xa0\x80",     /* surrogate */
      "\xf4\x90\x80\x80", /* above U+10FFFF */
      "ok\xff",           /* never valid */
  };
  fx_t *fx = fx_new();
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    client_t *cl = ws_open(fx);
    cl_send_text(cl, bad[i]);
    expect_server_close(cl, NET_WS_CLOSE_INVALID_DATA, "");
    cr_assert_eq(fx->sessions[i].texts, 0, "case %zu delivered", i);
    cr_assert_eq(fx->sessions[i].close_code, NET_WS_CLOSE_INVALID_DATA);
  }
  fx_free(fx);
}

Test(net_server, binary_message_closes_1003) {
  fx_t *fx = fx_new();
  client_t *cl = ws_open(fx);
  cl_send_frame(cl, true, OP_BINARY, "\x01\x02", 2);
  expect_server_close(cl, NET_WS_CLOSE_UNSUPPORTED, "text messages only");
  fx_free(fx);
}

Test(net_server,
     fragments_with_an_interleaved_ping_are_reassembled_and_ponged) {
  fx_t *fx = fx_new();
  client_t *cl = ws_open(fx);
  cl_send_frame(cl, false, OP_TEXT, "Hel", 3);
  settle(fx);
  cl_expect_quiet(cl); /* nothing until the message is whole */
  cl_send_frame(cl, true, OP_PING, "p!", 2);
  cl_expect_frame(cl, OP_PONG, "p!", 2); /* answered mid-message */
  cl_expect_quiet(cl);
  cl_send_frame(cl, false, OP_CONT, "lo, ", 4);
  settle(fx);
  cl_expect_quiet(cl);
  cl_send_frame(cl, true, OP_CONT, "world", 5);
  cl_expect_text(cl, "Hello, world");
  cl_expect_quiet(cl);
  cr_assert_eq(fx->sessions[0].texts, 1);
  cr_assert_eq(stats(fx).ws_messages_in, 1);
  fx_free(fx);
}

Test(net_server, client_close_is_answered_and_the_connection_ends) {
  fx_t *fx = fx_new();
  client_t *cl = ws_open(fx);
  cl_send_close(cl, NET_WS_CLOSE_NORMAL, "bye");
  cl_expect_close(cl, NET_WS_CLOSE_NORMAL, "bye");
  cl_expect_eof(cl);
  net_server_stats_t s = stats(fx);
  cr_assert_eq(s.connections, 0);
  cr_assert_eq(s.websockets, 0);
  cr_assert_eq(s.closes[NET_CLOSE_WS_DONE], 1);
  cr_assert_eq(fx->sessions[0].closed_calls, 1);
  cr_assert_eq(fx->sessions[0].close_code, NET_WS_CLOSE_NORMAL);
  fx_free(fx);
}

Test(net_server, silent_websocket_is_pinged_at_54_s_and_closed_at_60_s) {
  fx_t *fx = fx_new();
  client_t *cl = ws_open(fx);
  run_to(fx, 54 * SEC - 1);
  cl_expect_quiet(cl);
  run_to(fx, 54 * SEC);
  cl_expect_ping(cl, 1);
  run_to(fx, 60 * SEC - 1);
  cl_expect_quiet(cl);
  cr_assert_eq(stats(fx).websockets, 1);
  run_to(fx, 60 * SEC);
  cl_expect_eof(cl);
  net_server_stats_t s = stats(fx);
  cr_assert_eq(s.websockets, 0);
  cr_assert_eq(s.closes[NET_CLOSE_WS_SILENT], 1);
  cr_assert_eq(fx->sessions[0].closed_calls, 1);
  cr_assert_eq(fx->sessions[0].close_code, NET_WS_CLOSE_ABNORMAL);
  fx_free(fx);
}

/* Take every frame that arrived: count pings, check echoes of "tick". */
static void drain_frames(client_t *cl, uint32_t *pings, uint32_t *echoes) {
  ws_in_t f;
  for (uint32_t i = 0; i < 64 && cl_take_frame(cl, &f); i++) {
    if (f.opcode == OP_PING) {
      uint8_t want[8];
      ping_seq_bytes(++*pings, want);
      cr_assert(f.len == 8 && memcmp(f.payload, want, 8) == 0);
      continue;
    }
    cr_assert_eq(f.opcode, OP_TEXT);
    cr_assert_eq(f.len, 4);
    cr_assert(memcmp(f.payload, "tick", 4) == 0);
    (*echoes)++;
  }
  cr_assert_eq(cl_unread(cl), 0);
}

Test(net_server, websocket_that_keeps_talking_stays_open) {
  fx_t *fx = fx_new();
  client_t *talker = ws_open(fx);
  client_t *ponger = ws_open(fx);
  uint32_t talker_pings = 0, echoes = 0, ponger_pings = 0;
  /* Second by second to 200 s: the talker sends every 10 s and ignores
   * pings; the ponger sends nothing but answers each ping when it comes.
   * Each echo to the talker carries a probe until 16 are out; the
   * keepalive pings no more while one is out. */
  for (uint32_t t = 1; t <= 200; t++) {
    run_to(fx, t * SEC);
    if (t % 10 == 0)
      cl_send_text(talker, "tick");
    settle(fx);
    drain_frames(talker, &talker_pings, &echoes);
    ws_in_t f;
    for (uint32_t i = 0; i < 8 && cl_take_frame(ponger, &f); i++) {
      cr_assert_eq(f.opcode, OP_PING);
      cr_assert_eq(t % 54, 0, "a ping at %u s", t);
      ponger_pings++;
      cl_pong(ponger, ponger_pings);
    }
    settle(fx);
    cr_assert_eq(talker->end, 0, "talker closed at %u s", t);
    cr_assert_eq(ponger->end, 0, "ponger closed at %u s", t);
  }
  cr_assert_eq(echoes, 20);
  cr_assert_eq(talker_pings, 16); /* with the echoes, 10 to 160 s */
  cr_assert_eq(ponger_pings, 3);  /* 54, 108, 162 s */
  net_server_stats_t s = stats(fx);
  cr_assert_eq(s.websockets, 2);
  cr_assert_eq(s.closes[NET_CLOSE_WS_SILENT], 0);
  fx_free(fx);
}

Test(net_server, pong_answers_hold_the_connection_until_60_s_after_the_last) {
  fx_t *fx = fx_new();
  client_t *cl = ws_open(fx);
  for (uint32_t k = 1; k <= 3; k++) {
    run_to(fx, k * 54 * SEC);
    cl_expect_ping(cl, k);
    cl_pong(cl, k);
    settle(fx);
  }
  /* Last heard at 162 s; the ping at 216 s goes unanswered. */
  run_to(fx, 216 * SEC);
  cl_expect_ping(cl, 4);
  run_to(fx, 222 * SEC - 1);
  cl_expect_quiet(cl);
  run_to(fx, 222 * SEC);
  cl_expect_eof(cl);
  cr_assert_eq(stats(fx).closes[NET_CLOSE_WS_SILENT], 1);
  fx_free(fx);
}

Test(net_server, shutdown_sends_1001_to_websockets_and_stops_accepting) {
  fx_t *fx = fx_new();
  client_t *answers = ws_open(fx);
  client_t *mute = ws_open(fx);
  client_t *http = cl_connect(fx);
  cl_send(http, REQ("GET /health"));
  expect_health(http);
  run_to(fx, 1 * SEC);
  net_server_shutdown(fx->srv);
  settle(fx);
  cl_expect_close(answers, NET_WS_CLOSE_GOING_AWAY, "server shutting down");
  cl_expect_close(mute, NET_WS_CLOSE_GOING_AWAY, "server shutting down");
  cl_expect_eof(http); /* idle keep-alive: just closed */
  rt_stream_t *s = NULL;
  cr_assert_eq(sim_connect(fx->sw, PORT, 0, NULL, NULL, &s), RT_ECONNREFUSED);
  /* The one that answers is done at once. */
  cl_send_close(answers, NET_WS_CLOSE_GOING_AWAY, "");
  settle(fx);
  cl_expect_eof(answers);
  cr_assert_eq(fx->sessions[0].closed_calls, 1);
  cr_assert_eq(fx->sessions[0].close_code, NET_WS_CLOSE_GOING_AWAY);
  /* The mute one is dropped after ws_close_wait (5 s). */
  run_to(fx, 6 * SEC - 1);
  cl_expect_quiet(mute);
  run_to(fx, 6 * SEC);
  cl_expect_eof(mute);
  cr_assert_eq(fx->sessions[1].closed_calls, 1);
  cr_assert_eq(fx->sessions[1].close_code, NET_WS_CLOSE_GOING_AWAY);
  net_server_stats_t st = stats(fx);
  cr_assert_eq(st.connections, 0);
  cr_assert_eq(st.ws_close_codes[net_server_close_code_index(1001)], 2);
  fx_free(fx);
}

Test(net_server, session_closed_is_called_exactly_once_per_session) {
  fx_t *fx = fx_new();
  client_t *by_close = ws_open(fx);     /* session 0 */
  client_t *by_reset = ws_open(fx);     /* session 1 */
  client_t *by_limit = ws_open(fx);     /* session 2 */
  client_t *by_reset_mid = ws_open(fx); /* session 3: reset mid-message */
  ws_open(fx);                          /* session 4: open until the end */
  cl_send_close(by_close, NET_WS_CLOSE_NORMAL, "");
  settle(fx);
  sim_stream_reset(by_reset->s);
  settle(fx);
  cr_assert_eq(by_reset->end, RT_ERESET);
  send_text_of(by_limit, 513);
  expect_server_close(by_limit, NET_WS_CLOSE_TOO_BIG, "");
  cl_send_text(by_reset_mid, "about to vanish");
  sim_stream_reset(by_reset_mid->s);
  advance(fx, 10 * SEC);
  const uint16_t codes[] = {NET_WS_CLOSE_NORMAL, NET_WS_CLOSE_ABNORMAL,
                            NET_WS_CLOSE_TOO_BIG, NET_WS_CLOSE_ABNORMAL};
  for (uint32_t i = 0; i < 4; i++) {
    cr_assert_eq(fx->sessions[i].closed_calls, 1, "session %u", i);
    cr_assert_eq(fx->sessions[i].close_code, codes[i], "session %u: %u", i,
                 fx->sessions[i].close_code);
  }
  cr_assert_eq(fx->sessions[4].closed_calls, 0);
  cr_assert_eq(stats(fx).closes[NET_CLOSE_RESET], 2);
  fx_stop(fx); /* stops the last connection's actor */
  cr_assert_eq(fx->opens, 5);
  for (uint32_t i = 0; i < 5; i++)
    cr_assert_eq(fx->sessions[i].closed_calls, 1, "session %u", i);
  cr_assert_eq(fx->sessions[4].close_code, NET_WS_CLOSE_ABNORMAL);
  cr_assert_eq(fx->closed_total, 5);
  fx_free(fx);
}

Test(net_server, refused_session_closes_1011_and_gets_no_closed_call) {
  fx_t *fx = fx_new();
  fx->refuse_sessions = true;
  client_t *cl = ws_open(fx);
  expect_server_close(cl, NET_WS_CLOSE_INTERNAL, "session refused");
  cr_assert_eq(fx->refused, 1);
  cr_assert_eq(fx->closed_total, 0);
  fx_free(fx);
}

Test(net_server, websocket_over_one_byte_pipes_echoes_exactly) {
  fx_t *fx = fx_new();
  sim_link_config_t up = {.buffer = 1, .mss = 1};
  sim_link_config_t down = {.buffer = 1, .mss = 1};
  client_t *cl = cl_connect_with(fx, &up, &down);
  upgrade_t u = {0};
  cl_send_upgrade(cl, &u); /* one byte per settle, by the pipe's size */
  cl_expect_switching(cl);
  send_text_of(cl, 300);
  expect_text_of(cl, 300);
  cl_send_frame(cl, true, OP_PING, "x", 1);
  cl_expect_frame(cl, OP_PONG, "x", 1);
  cl_send_close(cl, NET_WS_CLOSE_NORMAL, "done");
  cl_expect_close(cl, NET_WS_CLOSE_NORMAL, "done");
  cl_expect_eof(cl);
  fx_free(fx);
}

/* A real client: net_ws_client in an actor, against net_echo_session. */
typedef struct wsc_probe {
  net_wsc_t *wsc;
  rt_rng_t rng;
  int state;
  bool sent;
  char got[64];
  uint32_t got_count;
} wsc_probe_t;

static void wsc_on_text(void *ud, const uint8_t *data, size_t len) {
  wsc_probe_t *p = ud;
  cr_assert_lt(len, sizeof(p->got));
  memcpy(p->got, data, len);
  p->got[len] = '\0';
  p->got_count++;
}

static void wsc_behaviour(rt_actor_t *self, const rt_msg_t *msg) {
  wsc_probe_t *p = rt_state(self);
  if (msg->tag != RT_TAG_STREAM && msg->tag != TAG_GO)
    return;
  p->state = net_wsc_on_event(p->wsc);
  if (p->state == NET_WSC_OPEN && !p->sent) {
    net_ws_t *ws = net_wsc_ws(p->wsc);
    cr_assert_eq(net_ws_send_text(ws, (const uint8_t *)"hello, cookie", 13),
                 RT_OK);
    cr_assert_eq(net_ws_flush(ws), RT_OK);
    p->sent = true;
  }
}

Test(net_server, net_ws_client_talks_to_net_echo_session) {
  fx_t *fx = fx_create();
  fx->cfg.session = &net_echo_session;
  fx_start(fx);
  wsc_probe_t *p = calloc(1, sizeof(*p));
  cr_assert_not_null(p);
  rt_world_rng(fx->w, RT_RNG_KEY(RT_RNG_SUB_TEST, 1), &p->rng);
  rt_actor_spec_t spec = {.name = "wsc",
                          .behaviour = wsc_behaviour,
                          .state = p,
                          .mailbox_cap = 8,
                          .overflow = RT_OVERFLOW_REJECT};
  rt_actor_id_t id;
  cr_assert_eq(rt_spawn(fx->w, &spec, &id), RT_OK);
  rt_stream_t *s = NULL;
  cr_assert_eq(sim_connect(fx->sw, PORT, id, NULL, NULL, &s), RT_OK);
  net_wsc_config_t wc = {
      .host = HOST, .target = "/ws", .origin = "http://" HOST, .rng = &p->rng};
  net_ws_callbacks_t cb = {.on_text = wsc_on_text};
  cr_assert_eq(net_wsc_create(s, &wc, &cb, p, &p->wsc), RT_OK);
  rt_msg_t go = rt_msg_make(TAG_GO, NULL, 0);
  cr_assert_eq(rt_send(fx->w, id, &go), RT_PUSH_QUEUED);
  settle(fx);
  cr_assert_eq(p->state, NET_WSC_OPEN);
  cr_assert_eq(net_wsc_http_status(p->wsc), 101);
  cr_assert_eq(p->got_count, 1);
  cr_assert_str_eq(p->got, "hello, cookie");
  net_server_stats_t st = stats(fx);
  cr_assert_eq(st.ws_messages_in, 1);
  cr_assert_eq(st.ws_messages_out, 1);
  fx_stop(fx);
  net_wsc_destroy(p->wsc);
  free(p);
  fx_free(fx);
}
