/* test_net_server_routes.c: the registered API routes (sync and deferred
 * answers, 100-continue, 405) and cross-origin API calls (CORS).
 * Part of the net_server tests (test_net_server.c; net_server_fixture.h).
 */
#include "net_server_fixture.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

/* ========================================================================== */
/* Registered API routes */
/* ========================================================================== */

Test(net_server, sync_route_answers_with_its_status_body_and_type) {
  fx_t *fx = fx_new();
  client_t *cl = cl_connect(fx);
  cl_send(cl, "GET /api/sync?limit=5&x=y HTTP/1.1\r\nHost: " HOST
              "\r\nAuthorization: Bearer abc.def\r\n\r\n");
  resp_t r;
  cl_expect_response(cl, &r, true);
  check_head(&r, "200 OK", "text/plain; charset=utf-8",
             strlen("sync limit=5&x=y"), true, NO_STORE);
  check_body_str(&r, "sync limit=5&x=y");
  cr_assert_eq(fx->sync_calls, 1);
  cr_assert_str_eq(fx->seen_method, "GET");
  cr_assert_str_eq(fx->seen_path, "/api/sync");
  cr_assert_str_eq(fx->seen_query, "limit=5&x=y");
  cr_assert_str_eq(fx->seen_auth, "Bearer abc.def");
  /* A route without a content type answers application/json. */
  cl_send(cl, "POST /api/echo HTTP/1.1\r\nHost: " HOST
              "\r\nContent-Length: 11\r\n\r\n{\"a\":[1,2]}");
  cl_expect_response(cl, &r, true);
  check_head(&r, "200 OK", "application/json", 11, true, NO_STORE);
  check_body_str(&r, "{\"a\":[1,2]}");
  /* A route that fails answers 500 and the connection goes on. */
  cl_send(cl, REQ("GET /api/fail"));
  cl_expect_response(cl, &r, true);
  check_head(&r, "500 Internal Server Error", "application/json",
             strlen("{\"error\":\"internal error\"}"), true, NULL);
  cl_send(cl, REQ("GET /health"));
  expect_health(cl);
  fx_free(fx);
}

#define CONTINUE "HTTP/1.1 100 Continue\r\n\r\n"
#define ECHO_HEAD(version, extra)                                              \
  "POST /api/echo HTTP/" version "\r\nHost: " HOST "\r\n"                      \
  "Content-Length: 2\r\n" extra "Expect: 100-continue\r\n\r\n"

static void expect_echo(client_t *cl, bool keep_alive) {
  resp_t r;
  cl_expect_response(cl, &r, true);
  check_head(&r, "200 OK", "application/json", 2, keep_alive, NO_STORE);
  check_body_str(&r, "{}");
}

Test(net_server, expect_100_continue_gets_100_before_the_body_is_sent) {
  fx_t *fx = fx_new();
  client_t *cl = cl_connect(fx);
  cl_send(cl, ECHO_HEAD("1.1", ""));
  settle(fx);
  cl_expect_bytes(cl, CONTINUE, strlen(CONTINUE));
  cl_expect_quiet(cl);
  cl_send(cl, "{}");
  expect_echo(cl, true);
  /* The content sent with the head anyway: no need to ask for it. */
  cl_send(cl, ECHO_HEAD("1.1", "") "{}");
  expect_echo(cl, true);
  cl_expect_quiet(cl);
  /* HTTP/1.0: the expectation is ignored (RFC 9110 10.1.1). */
  client_t *old = cl_connect(fx);
  cl_send(old, ECHO_HEAD("1.0", ""));
  cl_expect_quiet(old);
  cl_send(old, "{}");
  expect_echo(old, false);
  cr_assert_eq(stats(fx).http_status[1], 0, "100 is not a request's answer");
  fx_free(fx);
}

Test(net_server, expect_100_continue_that_is_refused_gets_its_status_at_once) {
  fx_t *fx = fx_new();
  client_t *cl = cl_connect(fx);
  cl_send(cl, "POST /api/echo HTTP/1.1\r\nHost: " HOST "\r\n"
              "Content-Length: 4097\r\nExpect: 100-continue\r\n\r\n");
  expect_error_and_close(cl, "413 Payload Too Large",
                         "{\"error\":\"Payload Too Large\"}", NULL);
  cl = cl_connect(fx);
  cl_send(cl, "POST /api/echo HTTP/1.1\r\nContent-Length: 2\r\n"
              "Expect: 100-continue\r\n\r\n"); /* no Host */
  expect_error_and_close(cl, "400 Bad Request", "{\"error\":\"Bad Request\"}",
                         NULL);
  fx_free(fx);
}

Test(net_server, deferred_route_answers_on_reply_and_holds_pipelined_requests) {
  fx_t *fx = fx_new();
  client_t *cl = cl_connect(fx);
  cl_send(cl, REQ("GET /api/later") REQ("GET /health"));
  settle(fx);
  cr_assert_eq(fx->deferred_len, 1);
  cl_expect_quiet(cl); /* /health waits behind the deferred call */
  /* A reply for another call id is not this one's answer. */
  run_to(fx, 1 * SEC);
  cr_assert_eq(send_reply(fx->w, fx->deferred[0].reply_to,
                          fx->deferred[0].call_id + 1, 200, "{\"wrong\":1}"),
               RT_PUSH_QUEUED);
  settle(fx);
  cl_expect_quiet(cl);
  run_to(fx, 2 * SEC - 1);
  cl_expect_quiet(cl);
  run_to(fx, 2 * SEC); /* the replier answers now */
  resp_t r;
  cl_expect_response(cl, &r, true);
  check_head(&r, "202 Accepted", "application/json", strlen("{\"deferred\":1}"),
             true, NO_STORE);
  check_body_str(&r, "{\"deferred\":1}");
  expect_health(cl);
  cl_expect_quiet(cl);
  /* The next deferred call on the same connection works the same way. */
  cl_send(cl, REQ("GET /api/later"));
  settle(fx);
  cl_expect_quiet(cl);
  advance(fx, 2 * SEC);
  cl_expect_response(cl, &r, true);
  cr_assert_eq(r.status, 202);
  cr_assert_eq(fx->deferred_len, 2);
  cr_assert_gt(fx->deferred[1].call_id, fx->deferred[0].call_id);
  fx_free(fx);
}

Test(net_server, deferred_route_without_reply_gets_504_after_reply_timeout) {
  fx_t *fx = fx_new();
  fx->reply_mute = true;
  client_t *cl = cl_connect(fx);
  cl_send(cl, REQ("GET /api/later") REQ("GET /health"));
  settle(fx);
  run_to(fx, 10 * SEC - 1);
  cl_expect_quiet(cl);
  run_to(fx, 10 * SEC);
  expect_error_and_close(cl, "504 Gateway Timeout",
                         "{\"error\":\"the game did not answer in time\"}",
                         NULL);
  /* A reply that comes after the 504 changes nothing. */
  (void)send_reply(fx->w, fx->deferred[0].reply_to, fx->deferred[0].call_id,
                   200, "{}");
  advance(fx, 5 * SEC);
  cl_expect_eof(cl);
  net_server_stats_t s = stats(fx);
  cr_assert_eq(s.http_status[5], 1);
  cr_assert_eq(s.http_status[2], 0);
  cr_assert_eq(s.closes[NET_CLOSE_REPLY_TIMEOUT], 1);
  fx_free(fx);
}

Test(net_server, configured_reply_timeout_applies) {
  fx_t *fx = fx_create();
  fx->cfg.reply_timeout = 3 * SEC;
  fx_start(fx);
  fx->reply_mute = true;
  client_t *cl = cl_connect(fx);
  cl_send(cl, REQ("GET /api/later"));
  run_to(fx, 3 * SEC - 1);
  cl_expect_quiet(cl);
  run_to(fx, 3 * SEC);
  resp_t r;
  cl_expect_response(cl, &r, true);
  cr_assert_eq(r.status, 504);
  fx_free(fx);
}

Test(net_server, head_on_a_get_route_answers_like_get_without_a_body) {
  fx_t *fx = fx_new();
  client_t *cl = cl_connect(fx);
  /* The GET behind each must start where the HEAD answer's head ends. */
  cl_send(cl, REQ("HEAD /api/sync?limit=5") REQ("GET /health")
                  REQ("HEAD /api/later") REQ("GET /health"));
  resp_t r;
  cl_expect_response(cl, &r, false);
  check_head(&r, "200 OK", "text/plain; charset=utf-8", strlen("sync limit=5"),
             true, NO_STORE);
  cr_assert_eq(fx->sync_calls, 1);
  cr_assert_str_eq(fx->seen_method, "GET", "the route runs as registered");
  expect_health(cl);
  /* A deferred answer loses its body too. */
  advance(fx, 2 * SEC);
  cl_expect_response(cl, &r, false);
  check_head(&r, "202 Accepted", "application/json", strlen("{\"deferred\":1}"),
             true, NO_STORE);
  expect_health(cl);
  cl_expect_quiet(cl);
  fx_free(fx);
}

Test(net_server, wrong_method_on_a_route_path_is_405) {
  fx_t *fx = fx_new();
  client_t *cl = cl_connect(fx);
  const char *body = "{\"error\":\"method not allowed\"}";
  cl_send(cl, "POST /api/sync HTTP/1.1\r\nHost: " HOST
              "\r\nContent-Length: 0\r\n\r\n" REQ("GET /api/echo"));
  resp_t r;
  cl_expect_response(cl, &r, true);
  check_head(&r, "405 Method Not Allowed", "application/json", strlen(body),
             true, "Allow: GET, HEAD\r\n");
  check_body_str(&r, body);
  cl_expect_response(cl, &r, true);
  check_head(&r, "405 Method Not Allowed", "application/json", strlen(body),
             true, "Allow: POST\r\n");
  cr_assert_eq(fx->sync_calls, 0);
  fx_free(fx);
}

Test(net_server, a_405_allows_every_method_of_the_path) {
  fx_t *fx = fx_create();
  net_server_config_t *c = &fx->cfg;
  c->routes[c->routes_len++] = (net_route_t){
      .method = "DELETE", .path = "/api/sync", .fn = api_echo, .ctx = fx};
  fx_start(fx);
  client_t *cl = cl_connect(fx);
  cl_send(cl, "PUT /api/sync HTTP/1.1\r\nHost: " HOST
              "\r\nContent-Length: 0\r\n\r\n");
  resp_t r;
  cl_expect_response(cl, &r, true);
  check_head(&r, "405 Method Not Allowed", "application/json",
             strlen("{\"error\":\"method not allowed\"}"), true,
             "Allow: GET, HEAD, DELETE\r\n");
  /* The WebSocket path takes GET only. */
  cl = cl_connect(fx);
  cl_send(cl,
          "POST /ws HTTP/1.1\r\nHost: " HOST "\r\nContent-Length: 0\r\n\r\n");
  expect_error_and_close(cl, "405 Method Not Allowed",
                         "{\"error\":\"websocket upgrade needs GET\"}",
                         "Allow: GET\r\n");
  fx_free(fx);
}

/* ========================================================================== */
/* Cross-origin API calls (CORS) */
/* ========================================================================== */

#define FRONTEND "http://localhost:3000"
#define PLAY "https://play.example"
/* A request with an Origin (and more header lines, each ending "\r\n"). */
#define REQ_FROM(method_target, origin, more)                                  \
  method_target " HTTP/1.1\r\nHost: " HOST "\r\nOrigin: " origin "\r\n" more   \
                "\r\n"
/* What an answer to a configured origin adds, after the route's lines. */
#define CORS(origin)                                                           \
  "Access-Control-Allow-Origin: " origin "\r\n"                                \
  "Access-Control-Allow-Credentials: true\r\nVary: Origin\r\n"
#define PREFLIGHT_HEAD(methods, origin)                                        \
  "HTTP/1.1 204 No Content\r\nConnection: keep-alive\r\n"                      \
  "Access-Control-Allow-Methods: " methods "\r\n"                              \
  "Access-Control-Allow-Headers: Authorization, Content-Type\r\n"              \
  "Access-Control-Max-Age: 600\r\n" CORS(origin) "\r\n"

static fx_t *fx_new_cors(void) {
  fx_t *fx = fx_create();
  fx->cfg.cors_origins[0] = PLAY;
  fx->cfg.cors_origins[1] = FRONTEND;
  fx->cfg.cors_origins_len = 2;
  fx_start(fx);
  return fx;
}

Test(net_server,
     an_api_answer_to_a_configured_origin_allows_it_with_credentials) {
  fx_t *fx = fx_new_cors();
  client_t *cl = cl_connect(fx);
  cl_send(cl, REQ_FROM("GET /api/sync?limit=5", FRONTEND,
                       "Authorization: Bearer abc.def\r\n"));
  resp_t r;
  cl_expect_response(cl, &r, true);
  check_head(&r, "200 OK", "text/plain; charset=utf-8", strlen("sync limit=5"),
             true, NO_STORE CORS(FRONTEND));
  check_body_str(&r, "sync limit=5");
  cr_assert_str_eq(fx->seen_auth, "Bearer abc.def");
  /* The other origin, a POST. */
  cl_send(cl, "POST /api/echo HTTP/1.1\r\nHost: " HOST "\r\nOrigin: " PLAY
              "\r\nContent-Type: application/json\r\n"
              "Content-Length: 2\r\n\r\n{}");
  cl_expect_response(cl, &r, true);
  check_head(&r, "200 OK", "application/json", 2, true, NO_STORE CORS(PLAY));
  /* A deferred answer names the origin of the request it answers. */
  cl_send(cl, REQ_FROM("GET /api/later", FRONTEND, ""));
  advance(fx, 2 * SEC);
  cl_expect_response(cl, &r, true);
  check_head(&r, "202 Accepted", "application/json", strlen("{\"deferred\":1}"),
             true, NO_STORE CORS(FRONTEND));
  /* The next request, without an Origin, gets none of it. */
  cl_send(cl, REQ("GET /api/sync"));
  cl_expect_response(cl, &r, true);
  check_head(&r, "200 OK", "text/plain; charset=utf-8", strlen("sync "), true,
             NO_STORE);
  cl_expect_quiet(cl);
  fx_free(fx);
}

Test(net_server,
     a_preflight_from_a_configured_origin_is_204_with_the_paths_methods) {
  fx_t *fx = fx_new_cors();
  client_t *cl = cl_connect(fx);
  /* Preflight, then the real request, then another path's preflight, then
   * a request elsewhere: answered in order on one connection. */
  cl_send(cl, REQ_FROM("OPTIONS /api/sync", FRONTEND, ASKS("GET"))
                  REQ_FROM("GET /api/sync", FRONTEND,
                           "Authorization: Bearer abc.def\r\n")
                      REQ_FROM("OPTIONS /api/echo", PLAY, ASKS("POST"))
                          REQ("GET /health"));
  resp_t r;
  cl_expect_response(cl, &r, true);
  cr_assert_str_eq(r.head, PREFLIGHT_HEAD("GET, HEAD", FRONTEND));
  cr_assert_eq(r.body_len, 0);
  cl_expect_response(cl, &r, true);
  check_head(&r, "200 OK", "text/plain; charset=utf-8", strlen("sync "), true,
             NO_STORE CORS(FRONTEND));
  cr_assert_eq(fx->sync_calls, 1, "the preflight never reaches the route");
  cl_expect_response(cl, &r, true);
  cr_assert_str_eq(r.head, PREFLIGHT_HEAD("POST", PLAY));
  expect_health(cl);
  cl_expect_quiet(cl);
  /* A path with several methods lists them all, as its 405 does. */
  fx_free(fx);
  fx = fx_create();
  fx->cfg.cors_origins[0] = FRONTEND;
  fx->cfg.cors_origins_len = 1;
  fx->cfg.routes[fx->cfg.routes_len++] = (net_route_t){
      .method = "DELETE", .path = "/api/sync", .fn = api_echo, .ctx = fx};
  fx_start(fx);
  cl = cl_connect(fx);
  cl_send(cl, REQ_FROM("OPTIONS /api/sync", FRONTEND, ASKS("DELETE")));
  cl_expect_response(cl, &r, true);
  cr_assert_str_eq(r.head, PREFLIGHT_HEAD("GET, HEAD, DELETE", FRONTEND));
  cr_assert_eq(stats(fx).http_status[2], 1);
  fx_free(fx);
}

Test(net_server, errors_of_the_api_carry_cors_to_a_configured_origin) {
  fx_t *fx = fx_new_cors();
  fx->reply_mute = true;
  client_t *cl = cl_connect(fx);
  resp_t r;
  cl_send(cl, REQ_FROM("GET /api/fail", PLAY, ""));
  cl_expect_response(cl, &r, true);
  check_head(&r, "500 Internal Server Error", "application/json",
             strlen("{\"error\":\"internal error\"}"), true, CORS(PLAY));
  /* A method the path does not take. */
  cl_send(cl, "PUT /api/sync HTTP/1.1\r\nHost: " HOST "\r\nOrigin: " PLAY
              "\r\nContent-Length: 0\r\n\r\n");
  cl_expect_response(cl, &r, true);
  check_head(&r, "405 Method Not Allowed", "application/json",
             strlen("{\"error\":\"method not allowed\"}"), true,
             ALLOW_GET_HEAD CORS(PLAY));
  /* A deferred call nobody answers: its 504. */
  cl_send(cl, REQ_FROM("GET /api/later", FRONTEND, ""));
  advance(fx, 10 * SEC);
  expect_error_and_close(cl, "504 Gateway Timeout",
                         "{\"error\":\"the game did not answer in time\"}",
                         CORS(FRONTEND));
  /* Before there is a request to route, there is no path: none. */
  cl = cl_connect(fx);
  cl_send(cl, "POST /api/echo HTTP/1.1\r\nHost: " HOST "\r\nOrigin: " PLAY
              "\r\nContent-Length: 4097\r\n\r\n");
  expect_error_and_close(cl, "413 Payload Too Large",
                         "{\"error\":\"Payload Too Large\"}", NULL);
  fx_free(fx);
}

/* Nothing changes for anyone but the configured origins: no CORS line,
 * and an OPTIONS is the 405 it always was. */
Test(net_server, an_origin_not_configured_gets_no_cors_and_options_stays_405) {
  const char *method_body = "{\"error\":\"method not allowed\"}";
  for (int configured = 0; configured < 2; configured++) {
    fx_t *fx = configured ? fx_new_cors() : fx_new();
    client_t *cl = cl_connect(fx);
    /* Not byte for byte one of them: each is another origin to a browser,
     * or one no browser writes. */
    const char *others[] = {"https://evil.example",
                            "HTTP://LOCALHOST:3000",
                            FRONTEND "/",
                            "http://localhost:3001",
                            "https://localhost:3000",
                            "null",
                            configured ? "https://play.example.evil"
                                       : FRONTEND};
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
      char req[512];
      snprintf(req, sizeof(req),
               "GET /api/sync HTTP/1.1\r\nHost: " HOST "\r\nOrigin: %s\r\n\r\n"
               "OPTIONS /api/sync HTTP/1.1\r\nHost: " HOST
               "\r\nOrigin: %s\r\n" ASKS("GET") "\r\n",
               others[i], others[i]);
      cl_send(cl, req);
      resp_t r;
      cl_expect_response(cl, &r, true);
      check_head(&r, "200 OK", "text/plain; charset=utf-8", strlen("sync "),
                 true, NO_STORE);
      cl_expect_response(cl, &r, true);
      check_head(&r, "405 Method Not Allowed", "application/json",
                 strlen(method_body), true, ALLOW_GET_HEAD);
      check_body_str(&r, method_body);
    }
    /* Without an Origin: the same. */
    cl_send(cl, REQ("OPTIONS /api/sync"));
    resp_t r;
    cl_expect_response(cl, &r, true);
    check_head(&r, "405 Method Not Allowed", "application/json",
               strlen(method_body), true, ALLOW_GET_HEAD);
    /* A configured origin off the API's paths: the page, /health and the
     * 404 page are not the API. */
    cl_send(cl, REQ_FROM("GET /", FRONTEND, "")
                    REQ_FROM("GET /health", FRONTEND, "")
                        REQ_FROM("OPTIONS /nothing", FRONTEND, ASKS("GET")));
    cl_expect_response(cl, &r, true);
    check_head(&r, "200 OK", "text/html; charset=utf-8", strlen(INDEX_HTML),
               true, STATIC_HTML_HEADERS);
    expect_health(cl);
    cl_expect_response(cl, &r, true);
    cr_assert_eq(r.status, 404);
    cr_assert_null(strstr(r.head, "Access-Control"));
    cl_expect_quiet(cl);
    cr_assert_eq(fx->sync_calls, sizeof(others) / sizeof(others[0]));
    fx_free(fx);
  }
}
