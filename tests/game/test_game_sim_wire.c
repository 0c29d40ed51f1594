/* test_game_sim_wire.c: the game in the simulated world (test_game_sim.c
 * tells how), at its edges: what the server answers to bad messages,
 * forged and expired tokens and odd login bodies, its flood guard, and
 * the original frontend's HTTP (/auth/verify, /auth/logout, CORS). The
 * fixture is game_sim_fixture.h; one binary, test_game_sim.
 */
#include "game_sim_fixture.h"

#include "game.h"
#include "rt_stream.h"
#include "sim_bot.h"
#include "sim_pipe.h"

#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* ---- Messages and tokens ------------------------------------------------- */

Test(game_sim, bad_messages_get_errors_and_an_oversize_one_closes_with_1009) {
  fx_t *fx = fx_create(
      "bad_messages_get_errors_and_an_oversize_one_closes_with_1009", 1010);
  fx_start(fx);
  sim_bot_t *ada = bot_add(fx, "Ada", &LINK, &LINK);
  wait_state(fx, ada, SIM_BOT_OPEN, 5 * SEC);
  static const struct {
    const char *text;
    const char *code;
  } cases[] = {
      {"not json", "bad_json"},
      {"{\"type\":\"CLICK\"} trailing", "bad_json"},
      {"{\"type\":\"CLICK\\u0000x\"}", "bad_json"},
      {"[\"CLICK\"]", "bad_json"},
      {"{\"type\":5}", "bad_json"},
      {"{\"payload\":{}}", "bad_json"},
      {"{\"type\":\"DANCE\",\"payload\":{}}", "unknown_type"},
      {"{\"type\":\"click\"}", "unknown_type"},
      {"{\"type\":\"CLICK\",\"payload\":{\"count\":1,\"seq\":1}}",
       "not_in_game"},
      {"{\"type\":\"COOKIE_CLICK\"}", "not_in_game"},
      {"{\"type\":\"QUIT_GAME\"}", "not_in_game"},
  };
  size_t n = sizeof(cases) / sizeof(cases[0]);
  for (size_t i = 0; i < n; i++)
    CHECK(fx, sim_bot_send(ada, cases[i].text, strlen(cases[i].text)) == RT_OK,
          "send");
  CHECK(fx, sim_bot_leave(ada) == RT_OK, "LEAVE_QUEUE while idle: ignored");
  run_for(fx, 100 * MS);
  CHECK(fx, count_of(ada, SIM_BOT_ERROR) == n, "%u errors",
        count_of(ada, SIM_BOT_ERROR));
  for (size_t i = 0; i < n; i++) {
    sim_bot_record_t e;
    nth(ada, SIM_BOT_ERROR, (uint32_t)i, &e);
    CHECK(fx, strcmp(e.error_code, cases[i].code) == 0, "'%s': %s, expected %s",
          cases[i].text, e.error_code, cases[i].code);
  }
  CHECK(fx, sim_bot_state(ada) == SIM_BOT_OPEN, "errors keep it open");
  /* The limit is 512 bytes: at it, the message is read. */
  char big[600];
  const char *head = "{\"type\":\"JOIN_QUEUE\",\"pad\":\"";
  size_t hl = strlen(head);
  memcpy(big, head, hl);
  memset(big + hl, 'x', sizeof(big) - hl);
  memcpy(big + 512 - 2, "\"}", 2);
  CHECK(fx, sim_bot_send(ada, big, 512) == RT_OK, "512 bytes");
  run_for(fx, 100 * MS);
  CHECK(fx,
        count_of(ada, SIM_BOT_QUEUED) == 1 &&
            sim_bot_state(ada) == SIM_BOT_OPEN,
        "512 bytes are fine");
  /* One byte more closes the connection with 1009. */
  memset(big + hl, 'x', sizeof(big) - hl);
  memcpy(big + 513 - 2, "\"}", 2);
  CHECK(fx, sim_bot_send(ada, big, 513) == RT_OK, "513 bytes");
  sim_bot_record_t closed =
      wait_kind(fx, ada, SIM_BOT_CLOSED, 1, now_of(fx) + SEC);
  CHECK(fx, closed.code == 1009, "closed with %u", closed.code);
  CHECK(fx, count_of(ada, SIM_BOT_ERROR) == n, "no ERROR for it");
  run_for(fx, 100 * MS);
  game_stats_t st;
  game_get_stats(fx->game, &st);
  CHECK(fx, st.queued == 0 && st.players == 0, "gone from the queue");
  fx_free(fx);
}

/* base64url without padding, for forged tokens. */
static void b64url(const char *in, char *out, size_t cap) {
  static const char abc[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  size_t len = strlen(in), o = 0;
  for (size_t i = 0; i < len; i += 3) {
    uint32_t v = (uint32_t)(uint8_t)in[i] << 16;
    if (i + 1 < len)
      v |= (uint32_t)(uint8_t)in[i + 1] << 8;
    if (i + 2 < len)
      v |= (uint8_t)in[i + 2];
    size_t chars = len - i >= 3 ? 4 : len - i + 1;
    for (size_t k = 0; k < chars && o + 1 < cap; k++)
      out[o++] = abc[(v >> (18 - 6 * k)) & 63];
  }
  out[o] = '\0';
}

static void expect_refused(fx_t *fx, const char *label, const char *token) {
  sim_bot_t *b = bot_with_token(fx, label, token, "nobody");
  sim_bot_record_t r = wait_kind(fx, b, SIM_BOT_REFUSED, 1, now_of(fx) + SEC);
  CHECK(fx, r.code == 401 && sim_bot_ws_status(b) == 401,
        "%s: upgrade answered %u", label, r.code);
  CHECK(fx, count_of(b, SIM_BOT_OPENED) == 0, "%s: never opened", label);
}

Test(game_sim, bad_expired_and_unsigned_tokens_are_refused_401_at_the_upgrade) {
  fx_t *fx = fx_create(
      "bad_expired_and_unsigned_tokens_are_refused_401_at_the_upgrade", 1011);
  fx_start(fx);
  sim_bot_t *ada = bot_add(fx, "Ada", &LINK, &LINK);
  wait_state(fx, ada, SIM_BOT_OPEN, 5 * SEC);
  char token[SIM_BOT_TOKEN_MAX];
  snprintf(token, sizeof(token), "%s", sim_bot_token(ada));
  const char *dot1 = strchr(token, '.');
  const char *dot2 = dot1 != NULL ? strchr(dot1 + 1, '.') : NULL;
  CHECK(fx, dot1 != NULL && dot2 != NULL, "a JWT: %s", token);
  expect_refused(fx, "garbage", "garbage");
  expect_refused(fx, "no token", "");
  /* alg none: the same claims, no signature. */
  char head[128], forged[SIM_BOT_TOKEN_MAX];
  b64url("{\"alg\":\"none\",\"typ\":\"JWT\"}", head, sizeof(head));
  snprintf(forged, sizeof(forged), "%s.%.*s.", head, (int)(dot2 - dot1 - 1),
           dot1 + 1);
  expect_refused(fx, "alg none", forged);
  /* alg none, keeping the old signature. */
  snprintf(forged, sizeof(forged), "%s%s", head, dot1);
  expect_refused(fx, "alg none, signed", forged);
  /* A signature that is not the server's. */
  snprintf(forged, sizeof(forged), "%s", token);
  char *sig = forged + (dot2 - token) + 1;
  sig[0] = sig[0] == 'A' ? 'B' : 'A';
  expect_refused(fx, "forged signature", forged);
  /* Claims changed under the old signature. */
  char claims[256];
  snprintf(claims, sizeof(claims),
           "{\"sub\":\"%s\",\"name\":\"Ada\",\"exp\":9999999999}",
           sim_bot_user_id(ada));
  char c64[400];
  b64url(claims, c64, sizeof(c64));
  snprintf(forged, sizeof(forged), "%.*s.%s%s", (int)(dot1 - token), token, c64,
           dot2);
  expect_refused(fx, "longer life", forged);
  /* The real token works until it expires, 24 h after the login. */
  CHECK(fx, sim_bot_disconnect(ada, SIM_BOT_CLOSE_HANDSHAKE) == RT_OK, "bye");
  sim_bot_record_t closed =
      wait_kind(fx, ada, SIM_BOT_CLOSED, 1, now_of(fx) + SEC);
  CHECK(fx, closed.code == 1000, "handshake echoed %u", closed.code);
  run_to(fx, 24 * 3600 * SEC - SEC);
  sim_bot_t *late = bot_with_token(fx, "Ada late", token, sim_bot_user_id(ada));
  wait_state(fx, late, SIM_BOT_OPEN, now_of(fx) + SEC);
  CHECK(fx, sim_bot_ws_status(late) == 101, "still valid");
  int status;
  cJSON *h = http_get_json(fx, late, "/api/history", true, &status);
  CHECK(fx, status == 200, "history with a valid token");
  cJSON_Delete(h);
  run_to(fx, 24 * 3600 * SEC + SEC);
  expect_refused(fx, "expired", token);
  h = http_get_json(fx, late, "/api/history", true, &status);
  CHECK(fx, status == 401, "history with an expired token: %d", status);
  cJSON_Delete(h);
  fx_free(fx);
}

/* ---- Login bodies -------------------------------------------------------- */

#define LOGIN_ANSWER_MAX 2048u

/* POST /api/login with `body` (len bytes, NULs and all) on a fresh
 * connection; returns the status and copies the answer's body to out. */
static int login_raw(fx_t *fx, const char *body, size_t len, char *out,
                     size_t cap) {
  rt_stream_t *s = NULL;
  CHECK(fx, sim_connect(fx->sw, PORT, 0, &LINK, &LINK, &s) == RT_OK, "connect");
  char req[1024];
  int h = snprintf(req, sizeof(req),
                   "POST /api/login HTTP/1.1\r\nHost: game.test\r\n"
                   "Content-Type: application/json\r\nContent-Length: %zu\r\n"
                   "Connection: close\r\n\r\n",
                   len);
  cr_assert(h > 0 && (size_t)h + len < sizeof(req));
  memcpy(req + h, body, len);
  CHECK(fx,
        rt_stream_write(s, req, (size_t)h + len) == (int64_t)h + (int64_t)len,
        "write the request");
  char in[LOGIN_ANSWER_MAX];
  size_t got = 0;
  rt_time_ns deadline = now_of(fx) + 2 * SEC;
  bool end = false;
  while (!end && now_of(fx) < deadline) {
    run_for(fx, STEP);
    for (;;) {
      int64_t n = rt_stream_read(s, in + got, sizeof(in) - 1 - got);
      if (n <= 0) {
        end = n < 0;
        break;
      }
      got += (size_t)n;
      cr_assert_lt(got, sizeof(in) - 1, "answer too long");
    }
  }
  rt_stream_close(s);
  in[got] = '\0';
  int status = 0;
  CHECK(fx, sscanf(in, "HTTP/1.1 %d ", &status) == 1, "a status line: %s", in);
  const char *b = strstr(in, "\r\n\r\n");
  CHECK(fx, b != NULL, "a whole head: %s", in);
  snprintf(out, cap, "%s", b + 4);
  return status;
}

static int login_str(fx_t *fx, const char *body, char *out, size_t cap) {
  return login_raw(fx, body, strlen(body), out, cap);
}

#define BODY_ERROR "{\"error\":\"body must be {\\\"name\\\": string}\"}"
#define NAME_ERROR "{\"error\":\"name must be 1-24 printable characters\"}"

/* The body is one JSON value and nothing after it but JSON whitespace:
 * cJSON stops after the first value, and "{...} trailing garbage" is not
 * the JSON the endpoint takes. */
Test(game_sim, a_login_body_with_anything_after_the_json_value_is_400) {
  fx_t *fx =
      fx_create("a_login_body_with_anything_after_the_json_value_is_400", 1012);
  fx_start(fx);
  char out[LOGIN_ANSWER_MAX];
  static const struct {
    const char *body;
    size_t len;
  } bad[] = {
#define B(lit) {lit, sizeof(lit) - 1}
      B("{\"name\":\"Ada\"} trailing garbage"),
      B("{\"name\":\"Ada\"}\0xx"),
      B("{\"name\":\"Ada\"}\0"),
      B("{\"name\":\"Ada\"}x"),
      B("{\"name\":\"Ada\"}{\"name\":\"Eve\"}"),
      B("{\"name\":\"Ada\"} {}"),
      B("{\"name\":\"Ada\"}\x01"),
      B("{\"name\":\"Ada\"}\f"), /* whitespace to cJSON, not to JSON */
      B("{\"name\":\"Ada\"}\v"),
      B("{\"name\":\x01\"Ada\"}"), /* a control byte between tokens */
      B("{\"name\":\0\"Ada\"}"),
#undef B
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    int status = login_raw(fx, bad[i].body, bad[i].len, out, sizeof(out));
    CHECK(fx, status == 400, "case %zu: %d %s", i, status, out);
    CHECK(fx, strcmp(out, BODY_ERROR) == 0, "case %zu: %s", i, out);
  }
  /* JSON whitespace after the value, or around it, is fine. */
  CHECK(fx, login_str(fx, "{\"name\":\"Ada\"} \r\n\t", out, sizeof(out)) == 200,
        "%s", out);
  CHECK(fx,
        login_str(fx, " \n{ \"name\" : \"Ada\" }\n", out, sizeof(out)) == 200,
        "%s", out);
  fx_free(fx);
}

/* cJSON's strings end at their first NUL, so a name with U+0000 in it was
 * checked and signed as the part before it: "A\u0000\u202eevil" logged in
 * as "A". A NUL is not printable: 400, the error for a bad name. */
Test(game_sim, a_login_name_holding_u0000_is_400) {
  fx_t *fx = fx_create("a_login_name_holding_u0000_is_400", 1013);
  fx_start(fx);
  char out[LOGIN_ANSWER_MAX];
  static const char *const bad[] = {
      "{\"name\":\"A\\u0000\\u202eevil\"}",
      "{\"name\":\"Ada\\u0000\"}",
      "{\"name\":\"\\u0000Ada\"}",
      "{\"name\":\"\\u0000\"}",
      "{\"name\":\"A\\\\\\u0000\"}",          /* a backslash, then U+0000 */
      "{\"name\\u0000x\":\"Ada\"}",           /* a key read as "name" */
      "{\"name\":\"Ada\",\"x\":\"\\u0000\"}", /* any string */
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    int status = login_str(fx, bad[i], out, sizeof(out));
    CHECK(fx, status == 400, "%s: %d %s", bad[i], status, out);
    CHECK(fx, strcmp(out, NAME_ERROR) == 0, "%s: %s", bad[i], out);
  }
  /* A raw NUL byte in the string is not JSON at all. */
  static const char raw[] = "{\"name\":\"A\0evil\"}";
  int status = login_raw(fx, raw, sizeof(raw) - 1, out, sizeof(out));
  CHECK(fx, status == 400 && strcmp(out, BODY_ERROR) == 0, "raw NUL: %d %s",
        status, out);
  /* The six characters \u0000 written out (an escaped backslash) are a
   * printable name, not a NUL. */
  status = login_str(fx, "{\"name\":\"A\\\\u0000\"}", out, sizeof(out));
  CHECK(fx, status == 200, "%d %s", status, out);
  cJSON *j = cJSON_Parse(out);
  CHECK(fx, j != NULL, "%s", out);
  CHECK(fx, strcmp(json_str(j, "name"), "A\\u0000") == 0, "%s", out);
  cJSON_Delete(j);
  /* Other escapes still decode: \u00e9 is a printable name. */
  status = login_str(fx, "{\"name\":\"\\u00e9l\\u00e8ve\"}", out, sizeof(out));
  CHECK(fx, status == 200, "%d %s", status, out);
  fx_free(fx);
}

/* POST /api/login accepts 24 four-byte characters (PROTOCOL.md: 1-24
 * printable characters) and answers 200 with a token; that token passes
 * the check the WebSocket upgrade and /api/history make. */
Test(game_sim, the_longest_name_login_takes_gives_a_token_the_upgrade_takes) {
  fx_t *fx = fx_create(
      "the_longest_name_login_takes_gives_a_token_the_upgrade_takes", 2003);
  fx_start(fx);
  char body[256] = "{\"name\":\"";
  for (int i = 0; i < 24; i++)
    strcat(body, "\xf0\x9f\x8d\xaa");
  strcat(body, "\"}");
  rt_http_call_t call = {.method = "POST",
                         .path = "/api/login",
                         .query = "",
                         .body = (const uint8_t *)body,
                         .body_len = (uint32_t)strlen(body)};
  rt_http_answer_t ans = {0};
  CHECK(fx, game_api_login(fx->game, fx->w, &call, &ans) == RT_HTTP_ANSWERED,
        "answered");
  CHECK(fx, ans.status == 200, "login: %d", ans.status);
  cJSON *j = cJSON_ParseWithLength((const char *)ans.body->data, ans.body->len);
  const char *token = json_str(j, "token");
  rt_identity_t who;
  int rc = game_authenticate(fx->game, token, &who);
  CHECK(fx, rc == 0, "login's own token refused by the upgrade check: %d", rc);
  cJSON_Delete(j);
  rt_buf_unref(ans.body);
  fx_free(fx);
}

/* ---- The flood guard ----------------------------------------------------- */

/* A burst of CLICK frames (4096: one 64 KiB read holds ~2,900) used to fill
 * the Room's mailbox before its click limit saw any, and the opponent's
 * QUIT_GAME in the same instant was refused and lost. The Client's flood
 * guard passes in_burst of them and closes the flooder with 1008. */
Test(game_sim, a_click_flood_is_cut_and_the_opponents_quit_gets_through) {
  fx_t *fx = fx_create(
      "a_click_flood_is_cut_and_the_opponents_quit_gets_through", 2001);
  fx_start(fx);
  sim_bot_t *ada = bot_add(fx, "Ada", &LINK, &LINK);
  sim_bot_t *bob = bot_add(fx, "Bob", &LINK, &LINK);
  match_t m;
  match_start(fx, ada, bob, &m);
  run_to(fx, m.t_run + 500 * MS);
  CHECK(fx, sim_bot_clicks(ada, 4096, -1) == RT_OK, "flood");
  CHECK(fx, sim_bot_quit(bob) == RT_OK, "quit");
  run_to(fx, m.t_run + 1500 * MS);
  CHECK(fx, count_of(bob, SIM_BOT_GAME_OVER) == 1,
        "Bob quit at %.3f; no GAME_OVER by %.3f (his QUIT_GAME was lost)",
        (double)(m.t_run + 500 * MS) / SEC, (double)now_of(fx) / SEC);
  CHECK(fx,
        sim_bot_state(ada) != SIM_BOT_OPEN && sim_bot_close_code(ada) == 1008,
        "the flooder: state %d close %u", (int)sim_bot_state(ada),
        (unsigned)sim_bot_close_code(ada));
  game_stats_t st;
  game_get_stats(fx->game, &st);
  CHECK(fx, st.kicks[GAME_KICK_FLOOD] == 1, "flood kicks %" PRIu64,
        st.kicks[GAME_KICK_FLOOD]);
  fx_free(fx);
}

/* A flooder who waits in the queue leaves it as it is kicked, not when
 * its connection is over: Ada here reads nothing, so the close of her
 * connection takes its close wait, and Bob, who joins a moment after the
 * kick, was matched with her. She never heard of that game, and on
 * coming back was told its end as if it were her last game's (the
 * overcookied-sim swarm's seed 11083, a slow reader kicked while an
 * abuser's JOIN_QUEUE had queued her). */
Test(game_sim, a_player_kicked_while_queued_is_matched_with_nobody) {
  fx_t *fx =
      fx_create("a_player_kicked_while_queued_is_matched_with_nobody", 2005);
  fx_start(fx);
  sim_bot_t *ada = bot_add(fx, "Ada", &LINK, &LINK);
  sim_bot_t *bob = bot_add(fx, "Bob", &LINK, &LINK);
  wait_state(fx, ada, SIM_BOT_OPEN, now_of(fx) + SEC);
  wait_state(fx, bob, SIM_BOT_OPEN, now_of(fx) + SEC);
  CHECK(fx, sim_bot_join(ada) == RT_OK, "Ada joins");
  wait_kind(fx, ada, SIM_BOT_QUEUED, 1, now_of(fx) + SEC);
  CHECK(fx, sim_bot_set_reading(ada, false) == RT_OK, "Ada stops reading");
  CHECK(fx, sim_bot_clicks(ada, 4096, -1) == RT_OK, "flood");
  run_for(fx, 100 * MS);
  game_stats_t st;
  game_get_stats(fx->game, &st);
  CHECK(fx, st.kicks[GAME_KICK_FLOOD] == 1, "flood kicks %" PRIu64,
        st.kicks[GAME_KICK_FLOOD]);
  CHECK(fx, st.connected == 2, "Ada's connection is over already (%u)",
        st.connected);
  CHECK(fx, sim_bot_join(bob) == RT_OK, "Bob joins");
  wait_kind(fx, bob, SIM_BOT_QUEUED, 1, now_of(fx) + SEC);
  run_for(fx, SEC);
  CHECK(fx, count_of(bob, SIM_BOT_GAME_START) == 0,
        "Bob was matched with Ada, kicked before he joined");
  game_get_stats(fx->game, &st);
  CHECK(fx, st.rooms_started == 0, "%" PRIu64 " games started",
        st.rooms_started);
  CHECK(fx, st.queued == 1, "%u queued, not Bob alone", st.queued);
  fx_free(fx);
}

/* The story of the swarm's seed 20350, its first half: Ada stopped
 * reading late in a game, so its GAME_OVER waited in her connection's
 * queue behind the bytes she had not read, and the connection went with
 * it unsent. She was never told how the game ended (the history had it).
 * A connection that never sent a GAME_OVER now hands it back, and the
 * Manager keeps it for her next connection (Invariant (6)). */
static void stalled_past_the_end(fx_t *fx, sim_bot_t **ada, sim_bot_t **bob,
                                 match_t *m) {
  fx->game_cfg.conn_high_water = 256; /* frames wait in the Client soon */
  fx->game_cfg.write_wait = 30 * SEC; /* and nothing cuts her meanwhile */
  fx_start(fx);
  const sim_link_config_t narrow = {.latency = LATENCY, .buffer = 256};
  *ada = bot_add(fx, "Ada", &LINK, &narrow);
  *bob = bot_add(fx, "Bob", &LINK, &LINK);
  match_start(fx, *ada, *bob, m);
  CHECK(fx, sim_bot_set_reading(*ada, false) == RT_OK, "Ada stops reading");
  for (rt_time_ns t = m->t_run + 100 * MS; t < m->t_end - SEC; t += 100 * MS) {
    run_to(fx, t);
    CHECK(fx, sim_bot_click(*bob, -1) == RT_OK, "Bob clicks");
  }
  wait_kind(fx, *bob, SIM_BOT_GAME_OVER, 1, m->t_end + 2 * SEC);
  run_for(fx, 200 * MS);
  game_stats_t st;
  game_get_stats(fx->game, &st);
  CHECK(fx, st.rooms_finished[GAME_END_TIME] == 1, "the game is over");
  CHECK(fx, st.overs_unsent == 0, "handed back while the connection lives");
}

/* Ada's GAME_OVER, on her connection `conn`, names her game and agrees
 * with Bob's; she sees it once. */
static void told_once(fx_t *fx, sim_bot_t *ada, uint32_t conn, sim_bot_t *bob,
                      const match_t *m) {
  sim_bot_record_t oa =
      wait_kind(fx, ada, SIM_BOT_GAME_OVER, 1, now_of(fx) + 10 * SEC);
  sim_bot_record_t ob;
  CHECK(fx, nth(bob, SIM_BOT_GAME_OVER, 0, &ob), "Bob's GAME_OVER");
  CHECK(fx, oa.conn == conn, "told on connection %u, not %u", oa.conn, conn);
  CHECK(fx, strcmp(oa.room_id, m->start[0].room_id) == 0,
        "Ada's GAME_OVER names %s; the game was %s", oa.room_id,
        m->start[0].room_id);
  CHECK(
      fx,
      strcmp(oa.winner, ob.winner) == 0 && strcmp(oa.reason, ob.reason) == 0 &&
          oa.p1_score == ob.p1_score && oa.p2_score == ob.p2_score,
      "Ada was told %s %s %d:%d, Bob %s %s %d:%d", oa.reason, oa.winner,
      oa.p1_score, oa.p2_score, ob.reason, ob.winner, ob.p1_score, ob.p2_score);
  run_for(fx, 2 * SEC);
  CHECK(fx, count_of(ada, SIM_BOT_GAME_OVER) == 1, "Ada saw %u GAME_OVERs",
        count_of(ada, SIM_BOT_GAME_OVER));
}

Test(game_sim, a_game_over_a_connection_never_sent_is_kept_for_the_next) {
  fx_t *fx = fx_create(
      "a_game_over_a_connection_never_sent_is_kept_for_the_next", 2006);
  sim_bot_t *ada, *bob;
  match_t m;
  stalled_past_the_end(fx, &ada, &bob, &m);
  CHECK(fx, sim_bot_disconnect(ada, SIM_BOT_CLOSE_RESET) == RT_OK, "reset");
  run_for(fx, 500 * MS);
  game_stats_t st;
  game_get_stats(fx->game, &st);
  CHECK(fx, st.overs_unsent == 1, "GAME_OVERs handed back: %" PRIu64,
        st.overs_unsent);
  CHECK(fx, st.players == 1, "Ada, idle and gone, is forgotten (%u)",
        st.players);
  CHECK(fx, sim_bot_set_reading(ada, true) == RT_OK, "reading");
  CHECK(fx, sim_bot_reconnect(ada) == RT_OK, "Ada comes back");
  told_once(fx, ada, 2, bob, &m);
  fx_free(fx);
}

/* The same, but Ada comes back (another tab) before her old connection is
 * gone: the new one replaces it, its HELLO finds nothing kept, and it is
 * told once the old one, which reads nothing, has closed and handed the
 * GAME_OVER back. */
Test(game_sim, a_game_over_a_connection_never_sent_reaches_the_newer_one) {
  fx_t *fx = fx_create(
      "a_game_over_a_connection_never_sent_reaches_the_newer_one", 2007);
  sim_bot_t *ada, *bob;
  match_t m;
  stalled_past_the_end(fx, &ada, &bob, &m);
  sim_bot_t *tab =
      bot_with_token(fx, "Ada's tab", sim_bot_token(ada), sim_bot_user_id(ada));
  told_once(fx, tab, 1, bob, &m);
  CHECK(fx, count_of(ada, SIM_BOT_GAME_OVER) == 0, "the old one read it");
  game_stats_t st;
  game_get_stats(fx->game, &st);
  CHECK(fx, st.overs_unsent == 1 && st.overs_unsent_told == 1,
        "handed back %" PRIu64 ", told at once %" PRIu64, st.overs_unsent,
        st.overs_unsent_told);
  fx_free(fx);
}

/* Bob's one click at a human rate, in the instant of Ada's burst, is
 * scored and answered (it used to be refused by the Room's full mailbox). */
Test(game_sim, a_click_flood_does_not_lose_the_opponents_click) {
  fx_t *fx = fx_create("a_click_flood_does_not_lose_the_opponents_click", 2004);
  fx_start(fx);
  sim_bot_t *ada = bot_add(fx, "Ada", &LINK, &LINK);
  sim_bot_t *bob = bot_add(fx, "Bob", &LINK, &LINK);
  match_t m;
  match_start(fx, ada, bob, &m);
  run_to(fx, m.t_run + 500 * MS);
  CHECK(fx, sim_bot_clicks(ada, 4096, -1) == RT_OK, "flood");
  CHECK(fx, sim_bot_click(bob, 1) == RT_OK, "click");
  run_to(fx, m.t_run + 1500 * MS);
  sim_bot_record_t ack;
  CHECK(fx, ack_of(bob, 1, &ack), "Bob's click got no answer");
  CHECK(fx, score_of(&ack, role_of(&m, bob)) == 1, "Bob's click scored %d",
        score_of(&ack, role_of(&m, bob)));
  fx_free(fx);
}

/* The same floods, every millisecond, while Bob comes back on a new
 * connection: the Manager's BACK to the Room used to be refused, so Bob,
 * connected, got no resumed GAME_START and lost when the grace ran out. */
Test(game_sim, a_click_flood_does_not_lose_the_opponents_resume) {
  fx_t *fx =
      fx_create("a_click_flood_does_not_lose_the_opponents_resume", 2002);
  fx->game_cfg.game_seconds = 30;
  fx_start(fx);
  sim_bot_t *ada = bot_add(fx, "Ada", &LINK, &LINK);
  sim_bot_t *bob = bot_add(fx, "Bob", &LINK, &LINK);
  match_t m;
  match_start(fx, ada, bob, &m);
  run_to(fx, m.t_run + 500 * MS);
  CHECK(fx, sim_bot_disconnect(bob, SIM_BOT_CLOSE_RESET) == RT_OK, "reset");
  run_to(fx, m.t_run + 1000 * MS);
  CHECK(fx, sim_bot_reconnect(bob) == RT_OK, "reconnect");
  for (int i = 0; i < 60; i++) {
    if (sim_bot_state(ada) == SIM_BOT_OPEN)
      CHECK(fx, sim_bot_clicks(ada, 1024, -1) == RT_OK, "flood");
    run_for(fx, MS);
  }
  run_for(fx, 500 * MS);
  CHECK(fx, sim_bot_state(bob) == SIM_BOT_OPEN, "Bob is connected");
  CHECK(fx, count_of(bob, SIM_BOT_GAME_START) == 2,
        "Bob, back since %.3f, got %u GAME_START",
        (double)(m.t_run + 1000 * MS) / SEC, count_of(bob, SIM_BOT_GAME_START));
  fx_free(fx);
}

/* The guard's bounds: in_burst messages at once pass, one more is cut;
 * after a second at in_rate, in_rate more pass again. Small limits so the
 * Room's click limit (off here) does not answer first. */
Test(game_sim, the_flood_guard_passes_its_burst_and_cuts_one_more) {
  for (int over = 0; over <= 1; over++) {
    fx_t *fx = fx_create("the_flood_guard_passes_its_burst_and_cuts_one_more",
                         2006 + (uint64_t)over);
    fx->game_cfg.click_rate = 0;
    fx->game_cfg.in_rate = 10;
    fx->game_cfg.in_burst = 20;
    fx_start(fx);
    sim_bot_t *ada = bot_add(fx, "Ada", &LINK, &LINK);
    sim_bot_t *bob = bot_add(fx, "Bob", &LINK, &LINK);
    match_t m;
    match_start(fx, ada, bob, &m);
    run_to(fx, m.t_run + 500 * MS);
    /* The JOIN_QUEUE sent before the match took a token; a second's
     * refill since has put it back (10 per second, up to 20). */
    CHECK(fx, sim_bot_clicks(ada, 20 + (uint32_t)over, -1) == RT_OK, "burst");
    run_for(fx, 200 * MS);
    if (over) {
      CHECK(fx, sim_bot_close_code(ada) == 1008,
            "one more than the burst: "
            "close %u",
            (unsigned)sim_bot_close_code(ada));
    } else {
      CHECK(fx, sim_bot_state(ada) == SIM_BOT_OPEN, "the burst passes");
      run_for(fx, SEC);
      CHECK(fx, sim_bot_clicks(ada, 10, -1) == RT_OK, "a second's worth");
      run_for(fx, 200 * MS);
      CHECK(fx, sim_bot_state(ada) == SIM_BOT_OPEN, "the refill passes");
      run_for(fx, SEC);
      uint32_t acked = count_of(ada, SIM_BOT_UPDATE_CLICK);
      CHECK(fx, acked == 30, "every click passed on and answered: %u", acked);
    }
    fx_free(fx);
  }
}

/* ---- Tests: the original frontend's HTTP (PROTOCOL.md) ------------------- */

#define RAW_ANSWER_MAX 4096u

typedef struct raw_answer {
  int status;
  char head[RAW_ANSWER_MAX]; /* status line to the blank line */
  char body[RAW_ANSWER_MAX];
} raw_answer_t;

/* One request (sent whole; it asks for Connection: close) on a new
 * connection, as a browser sends what the bots do not: OPTIONS, Origin,
 * POST /auth/logout. The answer is read until the server closes. */
static void http_raw(fx_t *fx, const char *request, raw_answer_t *out) {
  rt_stream_t *s = NULL;
  CHECK(fx, sim_connect(fx->sw, PORT, 0, &LINK, &LINK, &s) == RT_OK, "connect");
  size_t len = strlen(request);
  CHECK(fx, rt_stream_write(s, request, len) == (int64_t)len, "write");
  char in[2 * RAW_ANSWER_MAX];
  size_t got = 0;
  rt_time_ns deadline = now_of(fx) + 2 * SEC;
  bool end = false;
  while (!end && now_of(fx) < deadline) {
    run_for(fx, STEP);
    for (;;) {
      int64_t n = rt_stream_read(s, in + got, sizeof(in) - 1 - got);
      if (n <= 0) {
        end = n < 0;
        break;
      }
      got += (size_t)n;
      cr_assert_lt(got, sizeof(in) - 1, "answer too long");
    }
  }
  rt_stream_close(s);
  CHECK(fx, end, "the server closed the connection: %.*s", (int)got, in);
  in[got] = '\0';
  memset(out, 0, sizeof(*out));
  CHECK(fx, sscanf(in, "HTTP/1.1 %d ", &out->status) == 1, "status: %s", in);
  const char *b = strstr(in, "\r\n\r\n");
  CHECK(fx, b != NULL, "a whole head: %s", in);
  snprintf(out->head, sizeof(out->head), "%.*s", (int)(b + 4 - in), in);
  snprintf(out->body, sizeof(out->body), "%s", b + 4);
}

/* GET /auth/verify with this Authorization value ("" for none). */
static void verify_raw(fx_t *fx, const char *authorization, raw_answer_t *out) {
  char req[2 * RAW_ANSWER_MAX];
  snprintf(req, sizeof(req),
           "GET /auth/verify HTTP/1.1\r\nHost: game.test\r\n%s%s%s"
           "Content-Type: application/json\r\nConnection: close\r\n\r\n",
           authorization[0] != '\0' ? "Authorization: " : "", authorization,
           authorization[0] != '\0' ? "\r\n" : "");
  http_raw(fx, req, out);
}

#define TOKEN_ERROR "{\"error\":\"missing or invalid bearer token\"}"

/* The frontend keeps {id, name, email, picture, token} from /auth/verify
 * and deletes its session on anything but a 2xx. */
Test(game_sim, auth_verify_answers_the_session_of_a_good_token_and_401_else) {
  fx_t *fx = fx_create(
      "auth_verify_answers_the_session_of_a_good_token_and_401_else", 3001);
  fx_start(fx);
  sim_bot_t *ada = bot_add(fx, "Ada", &LINK, &LINK);
  wait_state(fx, ada, SIM_BOT_OPEN, 5 * SEC);
  int status;
  cJSON *v = http_get_json(fx, ada, "/auth/verify", true, &status);
  CHECK(fx, status == 200, "verify: %d", status);
  CHECK(fx, cJSON_GetArraySize(v) == 5, "five fields");
  CHECK(fx, strcmp(json_str(v, "id"), sim_bot_user_id(ada)) == 0, "id %s",
        json_str(v, "id"));
  CHECK(fx, strcmp(json_str(v, "name"), "Ada") == 0, "name");
  CHECK(fx, strcmp(json_str(v, "email"), "") == 0, "email");
  CHECK(fx, strcmp(json_str(v, "picture"), "") == 0, "picture");
  CHECK(fx, strcmp(json_str(v, "token"), sim_bot_token(ada)) == 0, "token");
  cJSON_Delete(v);
  /* No token, another scheme, an empty token, one that is not a JWT, ours
   * cut short, a well-formed one whose signature is not ours: 401 with the
   * history's error. */
  char bad[RAW_ANSWER_MAX];
  const char *token = sim_bot_token(ada);
  const char *refused[] = {
      "",       "Basic YWRhOmFkYQ==", "Bearer ", "Bearer not.a.token", bad,
      bad + 256};
  snprintf(bad, 256, "Bearer %.*s", (int)strlen(token) - 1, token);
  snprintf(bad + 256, sizeof(bad) - 256,
           "Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1LTEiLCJu"
           "YW1lIjoiRXZlIiwiZXhwIjo0MTAyNDQ0ODAwfQ.ws1Z6lZx9BFdBqvAJ0kYJ3JbV"
           "yUuO4qeVh0ZTzjO0H0");
  for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
    raw_answer_t a;
    verify_raw(fx, refused[i], &a);
    CHECK(fx, a.status == 401, "case %zu: %d", i, a.status);
    CHECK(fx, strcmp(a.body, TOKEN_ERROR) == 0, "case %zu: %s", i, a.body);
    CHECK(fx, strstr(a.head, "Access-Control") == NULL, "no CORS configured");
  }
  /* "bearer" in any case, as the history takes it. */
  char lower[RAW_ANSWER_MAX];
  snprintf(lower, sizeof(lower), "bearer %s", token);
  raw_answer_t a;
  verify_raw(fx, lower, &a);
  CHECK(fx, a.status == 200, "bearer: %d %s", a.status, a.body);
  fx_free(fx);
}

/* Tokens are stateless: a logout revokes nothing, answers 204 with no
 * content, and the token goes on working until it expires. */
Test(game_sim, auth_logout_is_204_without_content_and_revokes_nothing) {
  fx_t *fx =
      fx_create("auth_logout_is_204_without_content_and_revokes_nothing", 3002);
  fx_start(fx);
  sim_bot_t *ada = bot_add(fx, "Ada", &LINK, &LINK);
  wait_state(fx, ada, SIM_BOT_OPEN, 5 * SEC);
  char req[RAW_ANSWER_MAX];
  const char *auths[] = {sim_bot_token(ada), "garbage", NULL};
  for (size_t i = 0; i < sizeof(auths) / sizeof(auths[0]); i++) {
    snprintf(req, sizeof(req),
             "POST /auth/logout HTTP/1.1\r\nHost: game.test\r\n%s%s%s"
             "Content-Type: application/json\r\nContent-Length: 0\r\n"
             "Connection: close\r\n\r\n",
             auths[i] != NULL ? "Authorization: Bearer " : "",
             auths[i] != NULL ? auths[i] : "", auths[i] != NULL ? "\r\n" : "");
    raw_answer_t a;
    http_raw(fx, req, &a);
    CHECK(fx, a.status == 204, "case %zu: %d", i, a.status);
    CHECK(fx,
          strcmp(a.head, "HTTP/1.1 204 No Content\r\nConnection: close\r\n"
                         "Cache-Control: no-store\r\n\r\n") == 0,
          "case %zu: %s", i, a.head);
    CHECK(fx, a.body[0] == '\0', "no content: %s", a.body);
  }
  /* Only POST: a GET is told so. */
  raw_answer_t a;
  http_raw(fx,
           "GET /auth/logout HTTP/1.1\r\nHost: game.test\r\n"
           "Connection: close\r\n\r\n",
           &a);
  CHECK(fx, a.status == 405 && strstr(a.head, "\r\nAllow: POST\r\n") != NULL,
        "%s", a.head);
  int status;
  cJSON *v = http_get_json(fx, ada, "/auth/verify", true, &status);
  CHECK(fx, status == 200, "the token still verifies: %d", status);
  cJSON_Delete(v);
  CHECK(fx, sim_bot_state(ada) == SIM_BOT_OPEN, "the WebSocket is untouched");
  fx_free(fx);
}

#define FRONTEND "http://localhost:3000"
#define CORS_LINES                                                             \
  "Access-Control-Allow-Origin: " FRONTEND "\r\n"                              \
  "Access-Control-Allow-Credentials: true\r\nVary: Origin\r\n"

/* A request from the frontend's origin: method, target, more lines. */
static void from_frontend(fx_t *fx, const char *method_target, const char *more,
                          raw_answer_t *out) {
  char req[2 * RAW_ANSWER_MAX];
  snprintf(req, sizeof(req),
           "%s HTTP/1.1\r\nHost: game.test\r\nOrigin: " FRONTEND "\r\n%s"
           "Connection: close\r\n\r\n",
           method_target, more);
  http_raw(fx, req, out);
}

/* The server every program assembles (server_start) takes its CORS
 * origins from the options: the frontend's preflights and calls on the
 * game's routes get them, errors and deferred answers included. */
Test(game_sim, a_cors_origin_in_the_options_reaches_every_api_route) {
  fx_t *fx =
      fx_create("a_cors_origin_in_the_options_reaches_every_api_route", 3003);
  fx->cors_origin = FRONTEND;
  fx_start(fx);
  sim_bot_t *ada = bot_add(fx, "Ada", &LINK, &LINK);
  wait_state(fx, ada, SIM_BOT_OPEN, 5 * SEC);
  static const struct {
    const char *path, *asks, *methods;
  } preflights[] = {
      {"/auth/verify", "GET", "GET, HEAD"},
      {"/auth/logout", "POST", "POST"},
      {"/api/history", "GET", "GET, HEAD"},
      {"/api/leaderboard", "GET", "GET, HEAD"},
      {"/api/login", "POST", "POST"},
  };
  for (size_t i = 0; i < sizeof(preflights) / sizeof(preflights[0]); i++) {
    char target[128], asks[256], want[1024];
    snprintf(target, sizeof(target), "OPTIONS %s", preflights[i].path);
    snprintf(asks, sizeof(asks),
             "Access-Control-Request-Method: %s\r\n"
             "Access-Control-Request-Headers: authorization,content-type\r\n",
             preflights[i].asks);
    raw_answer_t a;
    from_frontend(fx, target, asks, &a);
    snprintf(want, sizeof(want),
             "HTTP/1.1 204 No Content\r\nConnection: close\r\n"
             "Access-Control-Allow-Methods: %s\r\n"
             "Access-Control-Allow-Headers: Authorization, Content-Type\r\n"
             "Access-Control-Max-Age: 600\r\n" CORS_LINES "\r\n",
             preflights[i].methods);
    CHECK(fx, strcmp(a.head, want) == 0, "%s: %s", preflights[i].path, a.head);
  }
  char auth[RAW_ANSWER_MAX];
  snprintf(auth, sizeof(auth), "Authorization: Bearer %s\r\n",
           sim_bot_token(ada));
  raw_answer_t a;
  from_frontend(fx, "GET /auth/verify", auth, &a);
  CHECK(fx, a.status == 200 && strstr(a.head, CORS_LINES) != NULL, "%s",
        a.head);
  from_frontend(fx, "GET /auth/verify", "", &a);
  CHECK(fx, a.status == 401 && strstr(a.head, CORS_LINES) != NULL, "%s",
        a.head);
  CHECK(fx, strcmp(a.body, TOKEN_ERROR) == 0, "%s", a.body);
  from_frontend(fx, "GET /api/history", auth, &a); /* deferred: the Store */
  CHECK(fx, a.status == 200 && strstr(a.head, CORS_LINES) != NULL, "%s",
        a.head);
  from_frontend(fx, "POST /auth/logout", auth, &a);
  CHECK(fx, a.status == 204 && strstr(a.head, CORS_LINES) != NULL, "%s",
        a.head);
  /* Not the API: no CORS. Not the origin: no CORS, and OPTIONS is 405. */
  from_frontend(fx, "GET /health", "", &a);
  CHECK(fx, a.status == 200 && strstr(a.head, "Access-Control") == NULL, "%s",
        a.head);
  http_raw(fx,
           "OPTIONS /auth/verify HTTP/1.1\r\nHost: game.test\r\n"
           "Origin: http://localhost:3001\r\n"
           "Access-Control-Request-Method: GET\r\nConnection: close\r\n\r\n",
           &a);
  CHECK(fx, a.status == 405 && strstr(a.head, "Access-Control") == NULL, "%s",
        a.head);
  fx_free(fx);
}
