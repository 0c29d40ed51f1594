/* test_net_server_upgrade.c: the WebSocket upgrade: 101 and its accept key,
 * the version, key, Origin and token checks, and upgrades the server
 * refuses. Part of the net_server tests (test_net_server.c;
 * net_server_fixture.h).
 */
#include "net_server_fixture.h"
#include "net_ws.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

/* ========================================================================== */
/* WebSocket upgrade */
/* ========================================================================== */

Test(net_server, upgrade_returns_101_with_the_rfc_6455_sample_accept) {
  fx_t *fx = fx_new();
  client_t *cl = ws_open(fx); /* checks the 101 byte for byte */
  cl_expect_quiet(cl);
  net_server_stats_t s = stats(fx);
  cr_assert_eq(s.ws_upgrades, 1);
  cr_assert_eq(s.websockets, 1);
  cr_assert_eq(s.http_status[1], 1);
  cr_assert_eq(fx->opens, 1);
  cr_assert_str_eq(fx->sessions[0].who.subject, ""); /* anonymous */
  fx_free(fx);
}

Test(net_server, repeated_connection_lines_are_one_list_and_upgrade) {
  fx_t *fx = fx_new();
  client_t *cl = cl_connect(fx);
  cl_send(cl, "GET /ws HTTP/1.1\r\nHost: " HOST "\r\n"
              "Connection: keep-alive\r\nUpgrade: websocket\r\n"
              "Connection: Upgrade\r\nSec-WebSocket-Key: " SAMPLE_KEY "\r\n"
              "Sec-WebSocket-Version: 13\r\n\r\n");
  cl_expect_switching(cl);
  cl_send_text(cl, "hi");
  cl_expect_text(cl, "hi");
  cr_assert_eq(stats(fx).ws_upgrades, 1);
  fx_free(fx);
}

Test(net_server, wrong_websocket_version_is_426_with_version_13) {
  fx_t *fx = fx_new();
  const char *versions[] = {"12", "14", "8", "-", "13, 8"};
  for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
    upgrade_t u = {.version = versions[i]};
    expect_refused(fx, &u, "426 Upgrade Required",
                   "unsupported websocket version",
                   "Sec-WebSocket-Version: 13\r\n");
  }
  upgrade_t ok = {.version = "13"};
  ws_open_with(fx, &ok);
  /* Whitespace around a value is not part of it (RFC 9112 5.1). */
  upgrade_t padded = {.version = "13 \t", .key = SAMPLE_KEY " "};
  ws_open_with(fx, &padded);
  cr_assert_eq(stats(fx).ws_upgrades, 2);
  fx_free(fx);
}

Test(net_server, plain_get_of_the_websocket_path_is_426) {
  fx_t *fx = fx_new();
  client_t *cl = cl_connect(fx);
  cl_send(cl, REQ("GET /ws"));
  expect_error_and_close(cl, "426 Upgrade Required",
                         "{\"error\":\"websocket upgrade required\"}",
                         "Upgrade: websocket\r\n");
  fx_free(fx);
}

Test(net_server, bad_websocket_key_is_400) {
  fx_t *fx = fx_new();
  const char *keys[] = {
      "-",                         /* missing */
      "short",                     /* not 24 characters */
      "dGhlIHNhbXBsZSBub25jZQ",    /* 22: padding cut */
      "dGhlIHNhbXBsZSBub25jZQ=!",  /* not base64 */
      "AAAAAAAAAAAAAAAAAAAAAAAA",  /* 24 characters but 18 bytes */
      "dGhlIHNhbXBsZSBub25jZTE=",  /* 17 bytes */
      "dGhlIHNhbXBsZSBub25jZQ==x", /* 25 */
  };
  for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
    upgrade_t u = {.key = keys[i]};
    expect_refused(fx, &u, "400 Bad Request", "bad Sec-WebSocket-Key", NULL);
  }
  cr_assert_eq(stats(fx).ws_upgrades, 0);
  cr_assert_eq(fx->opens, 0);
  fx_free(fx);
}

/* RFC 6455 4.2.1: the key is base64 of 16 bytes, so 24 characters: 22 from
 * the alphabet, the 22nd with its low 4 bits zero, then "==". Lenient
 * decoders read '=' anywhere as a zero digit and drop the unused bits. */
Test(net_server,
     websocket_key_not_exactly_16_bytes_in_canonical_base64_is_400) {
  fx_t *fx = fx_new();
  const char *keys[] = {
      "AAAAAAAAAAAAAAAAAAAAA===",  /* 15 bytes and a half */
      "AAAAAAAAAAAAAAAAAAAA====",  /* 15 bytes */
      "AAAAAAAAAAAAAAAAAAA=A===",  /* '=' inside */
      "=AAAAAAAAAAAAAAAAAAAAA==",  /* '=' first */
      "dGhlIHNhbXBsZSBub25jZR==",  /* the sample with an unused bit set */
      "dGhlIHNhbXBsZSBub25jZf==",  /* all four unused bits set */
      "dGhlIHNhbXBsZSBub25jZQ=A",  /* one '=' */
      "dGhlIHNhbXBsZSBub25j-Q==",  /* base64url, not base64 */
      "dGhlIHNhbXBsZSBub25j_Q==",  /* base64url, not base64 */
      "dGhlIHNhbXBsZSBu b25jZQ==", /* a space inside: 25 */
      "dGhlIHNhbXBsZSBub25jZQ\t=", /* a tab for a '=' */
  };
  for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
    upgrade_t u = {.key = keys[i]};
    expect_refused(fx, &u, "400 Bad Request", "bad Sec-WebSocket-Key", NULL);
  }
  cr_assert_eq(stats(fx).ws_upgrades, 0);
  cr_assert_eq(fx->opens, 0);
  /* Control: the sample still upgrades. */
  ws_open(fx);
  cr_assert_eq(stats(fx).ws_upgrades, 1);
  fx_free(fx);
}

/* Every symbol at every position: positions 0..20 take all 64; the 22nd
 * symbol only the four whose low 4 bits are zero (A, Q, g, w); '=' only at
 * 22 and 23; nothing else anywhere. 64 x 24 + 24 checks. */
Test(net_server, accept_key_takes_exactly_the_canonical_base64_of_16_bytes) {
  static const char alphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  char out[NET_WS_ACCEPT_LEN + 1];
  cr_assert_eq(net_ws_accept_key(SAMPLE_KEY, out), RT_OK);
  cr_assert_str_eq(out, SAMPLE_ACCEPT);
  char key[NET_WS_KEY_LEN + 1];
  for (size_t pos = 0; pos < 22; pos++) {
    for (size_t v = 0; v < 64; v++) {
      memcpy(key, "AAAAAAAAAAAAAAAAAAAAAA==", sizeof(key));
      key[pos] = alphabet[v];
      bool want = pos < 21 || (v & 15) == 0;
      cr_assert_eq(net_ws_accept_key(key, out) == RT_OK, want, "%s", key);
    }
    memcpy(key, "AAAAAAAAAAAAAAAAAAAAAA==", sizeof(key));
    key[pos] = '=';
    cr_assert_eq(net_ws_accept_key(key, out), RT_EINVAL, "%s", key);
  }
  for (size_t pos = 22; pos < 24; pos++) {
    for (size_t v = 0; v < 64; v++) {
      memcpy(key, "AAAAAAAAAAAAAAAAAAAAAA==", sizeof(key));
      key[pos] = alphabet[v];
      cr_assert_eq(net_ws_accept_key(key, out), RT_EINVAL, "%s", key);
    }
  }
  static const char *const others[] = {
      "AAAAAAAAAAAAAAAAAAAAA===",
      "AAAAAAAAAAAAAAAAAAAA====",
      "AAAAAAAAAAAAAAAAAAA=A===",
      "AAAAAAAAAAAAAAAAAAAAAAAA",
      "AAAAAAAAAAAAAAAAAAAAAA=",
      "AAAAAAAAAAAAAAAAAAAAAA===",
      " AAAAAAAAAAAAAAAAAAAAA==",
      "AAAAAAAAAAAAAAAAAAAAAA\n=",
      "",
  };
  for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++)
    cr_assert_eq(net_ws_accept_key(others[i], out), RT_EINVAL, "'%s'",
                 others[i]);
  cr_assert_eq(net_ws_accept_key(NULL, out), RT_EINVAL);
}

Test(net_server, origin_of_the_same_host_is_allowed_and_others_get_403) {
  fx_t *fx = fx_new();
  const char *allowed[] = {NULL, "http://" HOST, "https://" HOST,
                           "HTTP://GAME.TEST:8080"};
  for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++) {
    upgrade_t u = {.origin = allowed[i]};
    ws_open_with(fx, &u);
  }
  const char *refused[] = {"http://evil.test",
                           "http://game.test:8081",
                           "http://game.test",
                           "http://" HOST ".evil.test",
                           "null",
                           ""};
  for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
    upgrade_t u = {.origin = refused[i]};
    expect_refused(fx, &u, "403 Forbidden", "origin not allowed", NULL);
  }
  cr_assert_eq(stats(fx).ws_upgrades, 4);
  cr_assert_eq(fx->opens, 4);
  fx_free(fx);
}

Test(net_server, configured_origins_replace_the_same_host_rule) {
  fx_t *fx = fx_create();
  fx->cfg.allowed_origins[0] = "https://play.example";
  fx->cfg.allowed_origins[1] = "http://localhost:5173";
  fx->cfg.allowed_origins_len = 2;
  fx_start(fx);
  const char *allowed[] = {"https://play.example", "http://localhost:5173",
                           NULL};
  for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++) {
    upgrade_t u = {.origin = allowed[i]};
    ws_open_with(fx, &u);
  }
  const char *refused[] = {"http://" HOST, "https://play.example:443",
                           "http://play.example", "https://evil.example"};
  for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
    upgrade_t u = {.origin = refused[i]};
    expect_refused(fx, &u, "403 Forbidden", "origin not allowed", NULL);
  }
  cr_assert_eq(fx->opens, 3);
  fx_free(fx);
}

Test(net_server, missing_or_rejected_token_is_401_without_upgrade) {
  fx_t *fx = fx_create();
  fx->cfg.authenticate = auth_check;
  fx->cfg.auth_ctx = fx;
  fx_start(fx);
  upgrade_t missing = {.target = "/ws"};
  expect_refused(fx, &missing, "401 Unauthorized", "missing or invalid token",
                 NULL);
  upgrade_t other = {.target = "/ws?tok=good-token"};
  expect_refused(fx, &other, "401 Unauthorized", "missing or invalid token",
                 NULL);
  upgrade_t empty = {.target = "/ws?token="};
  expect_refused(fx, &empty, "401 Unauthorized", "missing or invalid token",
                 NULL);
  cr_assert_eq(fx->auth_calls, 0, "no token, no check");
  upgrade_t bad = {.target = "/ws?token=bad-token"};
  expect_refused(fx, &bad, "401 Unauthorized", "missing or invalid token",
                 NULL);
  cr_assert_eq(fx->auth_calls, 1);
  cr_assert_str_eq(fx->auth_last, "bad-token");
  net_server_stats_t s = stats(fx);
  cr_assert_eq(s.ws_upgrades, 0);
  cr_assert_eq(s.websockets, 0);
  cr_assert_eq(fx->opens, 0);
  fx_free(fx);
}

Test(net_server, accepted_token_gives_the_session_its_identity) {
  fx_t *fx = fx_create();
  fx->cfg.authenticate = auth_check;
  fx->cfg.auth_ctx = fx;
  fx_start(fx);
  upgrade_t u = {.target = "/ws?room=1&token=good-token"};
  client_t *cl = ws_open_with(fx, &u);
  cr_assert_eq(fx->auth_calls, 1);
  cr_assert_eq(fx->opens, 1);
  cr_assert_str_eq(fx->sessions[0].who.subject, "u-42");
  cr_assert_str_eq(fx->sessions[0].who.name, "Ada");
  cl_send_text(cl, "hi");
  cl_expect_text(cl, "hi");
  /* The token is percent-decoded before the check. */
  upgrade_t enc = {.target = "/ws?token=good%2Dtoken"};
  ws_open_with(fx, &enc);
  cr_assert_str_eq(fx->auth_last, "good-token");
  cr_assert_eq(fx->opens, 2);
  cr_assert_str_eq(fx->sessions[1].who.subject, "u-42");
  fx_free(fx);
}

Test(net_server, without_a_session_handler_the_websocket_path_is_404) {
  fx_t *fx = fx_create();
  fx->cfg.session = NULL;
  fx_start(fx);
  client_t *cl = cl_connect(fx);
  upgrade_t u = {0};
  cl_send_upgrade(cl, &u);
  resp_t r;
  cl_expect_response(cl, &r, true);
  cr_assert_eq(r.status, 404);
  cr_assert_eq(stats(fx).ws_upgrades, 0);
  fx_free(fx);
}

Test(net_server, upgrade_request_elsewhere_is_answered_then_closed) {
  /* After a head with Upgrade, the bytes are the new protocol's, not HTTP's
   * (net_http.h): when the server does not switch, it cannot go on parsing
   * HTTP on that connection. */
  fx_t *fx = fx_new();
  client_t *cl = cl_connect(fx);
  cl_send(cl, "GET /health HTTP/1.1\r\nHost: " HOST "\r\nUpgrade: websocket\r\n"
              "Connection: Upgrade\r\n\r\n" REQ("GET /health"));
  resp_t r;
  cl_expect_response(cl, &r, true);
  check_head(&r, "200 OK", "application/json", strlen(HEALTH_BODY), false,
             NO_STORE);
  check_body_str(&r, HEALTH_BODY);
  cl_expect_eof(cl);
  fx_free(fx);
}

Test(net_server, an_upgrade_with_content_is_400_and_never_switches) {
  const char *bodies[] = {"Content-Length: 2\r\n\r\n\x81\x80",
                          "Transfer-Encoding: chunked\r\n\r\n"
                          "2\r\n\x81\x80\r\n0\r\n\r\n"};
  for (size_t i = 0; i < 2; i++) {
    fx_t *fx = fx_new();
    client_t *cl = cl_connect(fx);
    char req[512];
    snprintf(req, sizeof(req),
             "GET /ws HTTP/1.1\r\nHost: " HOST "\r\nUpgrade: websocket\r\n"
             "Connection: Upgrade\r\nSec-WebSocket-Key: " SAMPLE_KEY "\r\n"
             "Sec-WebSocket-Version: 13\r\n%s",
             bodies[i]);
    cl_send(cl, req);
    expect_error_and_close(cl, "400 Bad Request", "{\"error\":\"Bad Request\"}",
                           NULL);
    cr_assert_eq(stats(fx).ws_upgrades, 0);
    cr_assert_eq(fx->opens, 0);
    fx_free(fx);
  }
}

Test(net_server, upgrade_in_http_1_0_is_answered_as_plain_http) {
  fx_t *fx = fx_new();
  /* /ws: what a GET /ws without an upgrade gets (426), never a 101. */
  client_t *cl = cl_connect(fx);
  cl_send(cl, "GET /ws HTTP/1.0\r\nUpgrade: websocket\r\n"
              "Connection: Upgrade\r\nSec-WebSocket-Key: " SAMPLE_KEY "\r\n"
              "Sec-WebSocket-Version: 13\r\n\r\n");
  expect_error_and_close(cl, "426 Upgrade Required",
                         "{\"error\":\"websocket upgrade required\"}",
                         "Upgrade: websocket\r\n");
  cr_assert_eq(stats(fx).ws_upgrades, 0);
  cr_assert_eq(fx->opens, 0);
  /* Elsewhere the Upgrade is ignored: keep-alive holds, HTTP goes on. */
  cl = cl_connect(fx);
  cl_send(cl, "GET /health HTTP/1.0\r\nUpgrade: websocket\r\n"
              "Connection: keep-alive, Upgrade\r\n\r\n"
              "GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  for (int i = 0; i < 2; i++)
    expect_health(cl);
  cl_expect_quiet(cl);
  fx_free(fx);
}
