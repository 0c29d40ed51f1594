/* test_net_server.c: the HTTP/WebSocket server (net/net_server.h) in the
 * simulated world.
 *
 * Each test builds a simulated world, loads a small static table (written to
 * a temporary directory, loaded into memory, then deleted), starts the
 * server on a sim_listen port and talks to it from test code: a client is
 * the far end of a sim_connect pipe with no owner actor, written with
 * rt_stream_write and read with rt_stream_read between runs of the world.
 * Time is virtual, so the 10 s, 30 s, 54 s and 60 s limits are checked at
 * exactly their deadline and just before it, instantly and repeatably.
 *
 * Responses are checked byte for byte: heads are rebuilt here from the
 * status line, the headers and the body length (independently of the
 * server's own formatting code) and compared whole; WebSocket frames are
 * built and parsed here per RFC 6455 section 5.2, with a fixed mask.
 *
 * Every loop is bounded: the world runs at most TURNS_MAX turns per call and
 * SETTLE_ROUNDS_MAX read-and-run rounds per settle; client reads and writes
 * are bounded too.
 *
 * The tests are in test_net_server*.c by theme, one binary (net_server):
 * this file has HTTP (static files, /health, /metrics, pipelining and
 * malformed requests); _limits, _routes (API routes and CORS), _config,
 * _upgrade, _ws and _park the rest; net_server_fixture.h what they share.
 */
#include "net_server_fixture.h"

#include <criterion/criterion.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ========================================================================== */
/* HTTP: static files, 404, traversal, HEAD, /health, /metrics, 405 */
/* (the metrics token's tests follow the /metrics ones) */
/* ========================================================================== */

Test(net_server, get_root_serves_index_html_with_page_headers) {
  fx_t *fx = fx_new();
  client_t *cl = cl_connect(fx);
  cl_send(cl, REQ("GET /"));
  resp_t r;
  cl_expect_response(cl, &r, true);
  check_head(&r, "200 OK", "text/html; charset=utf-8", strlen(INDEX_HTML), true,
             STATIC_HTML_HEADERS);
  check_body_str(&r, INDEX_HTML);
  /* The same file by its own name. */
  cl_send(cl, REQ("GET /index.html"));
  cl_expect_response(cl, &r, true);
  check_head(&r, "200 OK", "text/html; charset=utf-8", strlen(INDEX_HTML), true,
             STATIC_HTML_HEADERS);
  check_body_str(&r, INDEX_HTML);
  cl_expect_quiet(cl); /* keep-alive: still open */
  fx_free(fx);
}

Test(net_server, static_assets_get_their_type_cache_control_and_nosniff) {
  fx_t *fx = fx_new();
  client_t *cl = cl_connect(fx);
  resp_t r;
  cl_send(cl, REQ("GET /app.js"));
  cl_expect_response(cl, &r, true);
  check_head(&r, "200 OK", "text/javascript; charset=utf-8", strlen(APP_JS),
             true, STATIC_CODE_HEADERS);
  check_body_str(&r, APP_JS);
  cl_send(cl, REQ("GET /style.css"));
  cl_expect_response(cl, &r, true);
  check_head(&r, "200 OK", "text/css; charset=utf-8", strlen(STYLE_CSS), true,
             STATIC_CODE_HEADERS);
  check_body_str(&r, STYLE_CSS);
  cl_send(cl, REQ("GET /logo.png"));
  cl_expect_response(cl, &r, true);
  check_head(&r, "200 OK", "image/png", sizeof(LOGO_PNG), true,
             STATIC_ASSET_HEADERS);
  check_body(&r, LOGO_PNG, sizeof(LOGO_PNG)); /* binary, NULs included */
  /* Percent-encoded names are decoded before the lookup. */
  cl_send(cl, REQ("GET /%61pp.js"));
  cl_expect_response(cl, &r, true);
  cr_assert_eq(r.status, 200);
  check_body_str(&r, APP_JS);
  fx_free(fx);
}

Test(net_server, unknown_path_gets_the_404_page_and_keeps_the_connection) {
  fx_t *fx = fx_new();
  client_t *cl = cl_connect(fx);
  cl_send(cl, REQ("GET /no/such/cookie.js"));
  resp_t r;
  cl_expect_response(cl, &r, true);
  cr_assert_eq(r.status, 404);
  cr_assert(strncmp(r.head, "HTTP/1.1 404 Not Found\r\n", 24) == 0, "%s",
            r.head);
  char v[128];
  cr_assert(resp_header(&r, "Content-Type", v, sizeof(v)));
  cr_assert_str_eq(v, "text/html; charset=utf-8");
  cr_assert(resp_header(&r, "Connection", v, sizeof(v)));
  cr_assert_str_eq(v, "keep-alive");
  char body[2048];
  cr_assert_lt(r.body_len, sizeof(body));
  memcpy(body, r.body, r.body_len);
  body[r.body_len] = '\0';
  cr_assert(strncmp(body, "<!doctype html>", 15) == 0, "%s", body);
  cr_assert_not_null(strstr(body, "<h1>Not found</h1>"), "%s", body);
  /* The connection serves the next request. */
  cl_send(cl, REQ("GET /health"));
  expect_health(cl);
  cr_assert_eq(stats(fx).http_status[4], 1);
  fx_free(fx);
}

static bool has_bytes(const uint8_t *p, size_t n, const char *needle) {
  size_t k = strlen(needle);
  for (size_t i = 0; i + k <= n; i++)
    if (memcmp(p + i, needle, k) == 0)
      return true;
  return false;
}

Test(net_server, path_traversal_never_serves_anything_outside_the_table) {
  static const struct {
    const char *target;
    int status;
  } cases[] = {
      {"/../secret.txt", 404},
      {"/%2e%2e/secret.txt", 404},
      {"/%2E%2E/secret.txt", 404},
      {"/..%2fsecret.txt", 404},
      {"/%2e%2e%2f%2e%2e%2fetc%2fpasswd", 404},
      {"/web/../../etc/passwd", 404},
      {"/web/../secret.txt", 404},
      {"/./index.html", 404},
      {"//etc/passwd", 404},
      {"/..\\secret.txt", 404},
      {"/%00", 404},
      {"/index.html%00", 404},
      {"/index.html%00.png", 404},
      {"/%zz/index.html", 404},
      {"/index.html%", 404},
      {"/secret.txt", 404},
  };
  fx_t *fx = fx_new();
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    client_t *cl = cl_connect(fx);
    char req[512];
    snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: " HOST "\r\n\r\n",
             cases[i].target);
    cl_send(cl, req);
    resp_t r;
    cl_expect_response(cl, &r, true);
    cr_assert_eq(r.status, cases[i].status, "%s: status %d", cases[i].target,
                 r.status);
    cr_assert_not(has_bytes(r.body, r.body_len, "SECRET"), "%s",
                  cases[i].target);
    cr_assert_not(has_bytes(r.body, r.body_len, "Overcookied</title>"), "%s",
                  cases[i].target);
    cl_close(cl);
    settle(fx);
  }
  cr_assert_eq(stats(fx).http_status[2], 0, "nothing was served");
  fx_free(fx);
}

Test(net_server, absolute_form_targets_are_routed_like_origin_form) {
  fx_t *fx = fx_new();
  client_t *cl = cl_connect(fx);
  cl_send(cl, REQ("GET http://127.0.0.1/health"));
  expect_health(cl);
  cl_send(cl, REQ("GET http://" HOST "/api/sync?limit=5"));
  resp_t r;
  cl_expect_response(cl, &r, true);
  check_body_str(&r, "sync limit=5");
  cr_assert_str_eq(fx->seen_path, "/api/sync");
  cr_assert_str_eq(fx->seen_query, "limit=5");
  cl_send(cl, REQ("GET http://" HOST));
  cl_expect_response(cl, &r, true);
  check_head(&r, "200 OK", "text/html; charset=utf-8", strlen(INDEX_HTML), true,
             STATIC_HTML_HEADERS);
  cl_expect_quiet(cl);
  upgrade_t u = {.target = "http://" HOST "/ws"};
  ws_open_with(fx, &u);
  cr_assert_eq(stats(fx).ws_upgrades, 1);
  fx_free(fx);
}

Test(net_server, head_sends_the_headers_of_get_without_a_body) {
  fx_t *fx = fx_new();
  client_t *cl = cl_connect(fx);
  /* The GET right behind it must start where the HEAD answer's head ends. */
  cl_send(cl, REQ("HEAD /") REQ("GET /health") REQ("HEAD /health"));
  resp_t r;
  cl_expect_response(cl, &r, false);
  check_head(&r, "200 OK", "text/html; charset=utf-8", strlen(INDEX_HTML), true,
             STATIC_HTML_HEADERS);
  expect_health(cl);
  cl_expect_response(cl, &r, false);
  check_head(&r, "200 OK", "application/json", strlen(HEALTH_BODY), true,
             NO_STORE);
  cl_expect_quiet(cl);
  fx_free(fx);
}

Test(net_server, health_answers_healthy) {
  fx_t *fx = fx_new();
  client_t *cl = cl_connect(fx);
  cl_send(cl, REQ("GET /health"));
  expect_health(cl);
  /* /health answers GET and HEAD only, and its 405 says so. */
  cl_send(cl, "POST /health HTTP/1.1\r\nHost: " HOST
              "\r\nContent-Length: 0\r\n\r\n");
  resp_t r;
  cl_expect_response(cl, &r, true);
  check_head(&r, "405 Method Not Allowed", "application/json",
             strlen("{\"error\":\"method not allowed\"}"), true,
             ALLOW_GET_HEAD);
  fx_free(fx);
}

/* Every sample line is "name{labels} value" or "name value" with an integer
 * value; comments start with "# HELP " or "# TYPE ". */
static void check_prometheus_text(const char *text) {
  const char *line = text;
  uint32_t lines = 0;
  while (*line != '\0') {
    cr_assert_lt(lines++, 1000u);
    const char *nl = strchr(line, '\n');
    cr_assert_not_null(nl, "last line not terminated");
    size_t n = (size_t)(nl - line);
    char buf[512];
    cr_assert_lt(n, sizeof(buf));
    memcpy(buf, line, n);
    buf[n] = '\0';
    if (buf[0] == '#') {
      cr_assert(strncmp(buf, "# HELP ", 7) == 0 ||
                    strncmp(buf, "# TYPE ", 7) == 0,
                "bad comment: %s", buf);
    } else {
      const char *sp = strrchr(buf, ' ');
      cr_assert_not_null(sp, "no value: %s", buf);
      cr_assert(strncmp(buf, "overcookied_", 12) == 0, "bad name: %s", buf);
      char *end = NULL;
      (void)strtoull(sp + 1, &end, 10);
      cr_assert(end != sp + 1 && *end == '\0', "bad value: %s", buf);
    }
    line = nl + 1;
  }
}

Test(net_server, metrics_export_connections_and_disconnect_counters) {
  fx_t *fx = fx_new();
  /* One connection that never sends a head: closed by the header timeout. */
  client_t *slow = cl_connect(fx);
  run_to(fx, 10 * SEC);
  cl_expect_eof(slow);
  client_t *ws = ws_open(fx);
  (void)ws;
  client_t *cl = cl_connect(fx);
  cl_send(cl, REQ("GET /metrics"));
  resp_t r;
  cl_expect_response(cl, &r, true);
  char len[32];
  cr_assert(resp_header(&r, "Content-Length", len, sizeof(len)));
  char want_head[512];
  snprintf(want_head, sizeof(want_head),
           "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; "
           "charset=utf-8\r\nContent-Length: %s\r\nConnection: keep-alive\r\n"
           "Cache-Control: no-store\r\n\r\n",
           len);
  cr_assert_str_eq(r.head, want_head);
  char body[16384];
  cr_assert_lt(r.body_len, sizeof(body));
  memcpy(body, r.body, r.body_len);
  body[r.body_len] = '\0';
  check_prometheus_text(body);
  static const char *const want[] = {
      "# TYPE overcookied_connections gauge\n",
      "\novercookied_connections{kind=\"all\"} 2\n",
      "\novercookied_connections{kind=\"websocket\"} 1\n",
      "\novercookied_connections_accepted_total 3\n",
      "\novercookied_connections_rejected_total{reason=\"limit\"} 0\n",
      "# TYPE overcookied_disconnects_total counter\n",
      "\novercookied_disconnects_total{reason=\"header_timeout\"} 1\n",
      "\novercookied_disconnects_total{reason=\"idle_timeout\"} 0\n",
      "\novercookied_disconnects_total{reason=\"peer\"} 0\n",
      "\novercookied_disconnects_total{reason=\"shutdown\"} 0\n",
      "\novercookied_http_requests_total{status=\"1xx\"} 1\n",
  };
  for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
    cr_assert_not_null(strstr(body, want[i]), "missing %s in:\n%s", want[i],
                       body);
  fx_free(fx);
}

/* Bytes the process has allocated and not yet freed. ASan replaces malloc,
 * so ask it when built with it (glibc's count then stays still). */
#if defined(__SANITIZE_ADDRESS__)
#define OC_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define OC_TEST_ASAN 1
#endif
#endif
#ifdef OC_TEST_ASAN
size_t __sanitizer_get_current_allocated_bytes(void);
static size_t heap_in_use(void) {
  return __sanitizer_get_current_allocated_bytes();
}
#else
static size_t heap_in_use(void) {
  struct mallinfo2 mi = mallinfo2();
  return mi.uordblks + mi.hblkhd;
}
#endif

/* A response waiting for a reader holds the memory it counts against
 * NET_HTTP_OUT_MAX: its length, not the 64 KiB /metrics renders into. */
Test(net_server, a_metrics_answer_waiting_for_its_reader_holds_its_length) {
  fx_t *fx = fx_new();
  client_t *probe = cl_connect(fx);
  cl_send(probe, REQ("GET /metrics"));
  resp_t r;
  cl_expect_response(probe, &r, true);
  size_t answer = strlen(r.head) + r.body_len;
  /* A reader that takes nothing, through a pipe that holds 64 bytes: the
   * answers wait in the connection's output. */
  sim_link_config_t down = {.buffer = 64};
  client_t *cl = cl_connect_with(fx, NULL, &down);
  cl_send(cl, REQ("GET /health"));
  expect_health(cl);
  cl->hold = true;
  size_t before = heap_in_use();
  enum { PIPELINED = 8 };
  for (int i = 0; i < PIPELINED; i++)
    cl_send(cl, REQ("GET /metrics"));
  settle(fx);
  size_t held = heap_in_use() - before;
  cr_assert_lt(held, PIPELINED * (answer + 1024),
               "%zu bytes held for %d answers of about %zu bytes", held,
               PIPELINED, answer);
  fx_free(fx);
}

Test(net_server, post_to_a_static_path_is_405) {
  fx_t *fx = fx_new();
  const char *body = "{\"error\":\"method not allowed\"}";
  static const char *const reqs[] = {
      "POST / HTTP/1.1\r\nHost: " HOST "\r\nContent-Length: 2\r\n\r\n{}",
      "POST /app.js HTTP/1.1\r\nHost: " HOST "\r\nContent-Length: 0\r\n\r\n",
      "PUT /index.html HTTP/1.1\r\nHost: " HOST "\r\nContent-Length: 0\r\n\r\n",
      "DELETE /logo.png HTTP/1.1\r\nHost: " HOST "\r\n\r\n",
  };
  client_t *cl = cl_connect(fx);
  for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
    cl_send(cl, reqs[i]);
    resp_t r;
    cl_expect_response(cl, &r, true);
    check_head(&r, "405 Method Not Allowed", "application/json", strlen(body),
               true, ALLOW_GET_HEAD);
    check_body_str(&r, body);
  }
  cl_expect_quiet(cl);
  fx_free(fx);
}

/* With a metrics token, /metrics answers only its bearer: no header, the
 * wrong token, one character short or long, and another scheme get 401;
 * the token gets 200, for GET and HEAD. */
Test(net_server, metrics_token_guards_metrics_and_nothing_else) {
  fx_t *fx = fx_create();
  fx->cfg.metrics_token = "0123456789abcdef";
  fx_start(fx);
  static const char *const refused[] = {
      "",
      "Authorization: Bearer 0123456789abcdeX\r\n",
      "Authorization: Bearer 0123456789abcde\r\n",
      "Authorization: Bearer 0123456789abcdef0\r\n",
      "Authorization: Basic 0123456789abcdef\r\n",
  };
  for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
    client_t *cl = cl_connect(fx);
    char req[256];
    snprintf(req, sizeof(req),
             "GET /metrics HTTP/1.1\r\nHost: " HOST "\r\n%s\r\n", refused[i]);
    cl_send(cl, req);
    resp_t r;
    cl_expect_response(cl, &r, true);
    cr_assert_eq(r.status, 401, "case %zu: %d", i, r.status);
    cr_assert(strstr(r.head, "WWW-Authenticate: Bearer") != NULL);
  }
  for (int head = 0; head < 2; head++) {
    client_t *cl = cl_connect(fx);
    char req[256];
    snprintf(req, sizeof(req),
             "%s /metrics HTTP/1.1\r\nHost: " HOST
             "\r\nAuthorization: bearer 0123456789abcdef\r\n\r\n",
             head ? "HEAD" : "GET");
    cl_send(cl, req);
    resp_t r;
    cl_expect_response(cl, &r, head == 0);
    cr_assert_eq(r.status, 200);
    if (head == 0)
      cr_assert(strstr((const char *)r.body, "overcookied_connections") !=
                NULL);
  }
  client_t *cl = cl_connect(fx);
  cl_send(cl, REQ("GET /health"));
  resp_t r;
  cl_expect_response(cl, &r, true);
  cr_assert_eq(r.status, 200, "the rest of the server needs no token");
  fx_free(fx);
}

/* ========================================================================== */
/* Pipelining, partial reads and writes */
/* ========================================================================== */

Test(net_server, pipelined_requests_are_answered_in_order) {
  fx_t *fx = fx_new();
  client_t *cl = cl_connect(fx);
  cl_send(cl, REQ("GET /health") REQ("GET /app.js") REQ("GET /nope"));
  expect_health(cl);
  resp_t r;
  cl_expect_response(cl, &r, true);
  check_head(&r, "200 OK", "text/javascript; charset=utf-8", strlen(APP_JS),
             true, STATIC_CODE_HEADERS);
  check_body_str(&r, APP_JS);
  cl_expect_response(cl, &r, true);
  cr_assert_eq(r.status, 404);
  cl_expect_quiet(cl);
  cr_assert_eq(stats(fx).http_requests, 3);
  fx_free(fx);
}

/* More pipelined requests than the server queues answers for at once
 * (CONN_OUT_PIECES: parsing pauses until output drains, Invariant (2)). */
#define PIPELINED_MANY 100u

Test(net_server, many_pipelined_requests_are_all_answered_in_order) {
  fx_t *fx = fx_new();
  client_t *cl = cl_connect(fx);
  static char reqs[PIPELINED_MANY * 64];
  size_t len = 0;
  for (uint32_t i = 0; i < PIPELINED_MANY; i++)
    len += (size_t)snprintf(
        reqs + len, sizeof(reqs) - len,
        "GET /api/sync?n=%u HTTP/1.1\r\nHost: " HOST "\r\n\r\n", i);
  cl_write(cl, reqs, len);
  settle(fx);
  for (uint32_t i = 0; i < PIPELINED_MANY; i++) {
    resp_t r;
    char text[256];
    cr_assert(cl_take_response(cl, &r, true),
              "response %u of %u missing; "
              "unread: %s",
              i, PIPELINED_MANY,
              esc(cl->data + cl->off, cl_unread(cl), text, sizeof(text)));
    char want[32];
    snprintf(want, sizeof(want), "sync n=%u", i);
    check_body_str(&r, want);
  }
  cl_expect_quiet(cl);
  fx_free(fx);
}

Test(net_server, request_followed_by_half_close_is_still_answered) {
  fx_t *fx = fx_new();
  client_t *cl = cl_connect(fx);
  /* HTTP/1.0 closes after its answer anyway; HTTP/1.1 keeps alive, and the
   * EOF read right after the request must not drop the answer queued for it
   * (nor the second one, pipelined in the same write). */
  cl_send(cl, "GET /health HTTP/1.0\r\n\r\n");
  rt_stream_shutdown(cl->s); /* done sending; still reading */
  resp_t r;
  cl_expect_response(cl, &r, true);
  check_head(&r, "200 OK", "application/json", strlen(HEALTH_BODY), false,
             NO_STORE);
  check_body_str(&r, HEALTH_BODY);
  cl_expect_eof(cl);
  client_t *kept = cl_connect(fx);
  cl_send(kept, REQ("GET /health") REQ("GET /app.js"));
  rt_stream_shutdown(kept->s);
  expect_health(kept);
  cl_expect_response(kept, &r, true);
  check_body_str(&r, APP_JS);
  cl_expect_eof(kept);
  /* A deferred answer, too: the EOF is read after the reply came. */
  client_t *later = cl_connect(fx);
  cl_send(later, REQ("GET /api/later"));
  rt_stream_shutdown(later->s);
  settle(fx);
  cl_expect_quiet(later);
  advance(fx, 2 * SEC);
  cl_expect_response(later, &r, true);
  cr_assert_eq(r.status, 202);
  check_body_str(&r, "{\"deferred\":1}");
  cl_expect_eof(later);
  cr_assert_eq(stats(fx).connections, 0);
  fx_free(fx);
}

Test(net_server, one_byte_writes_over_tiny_pipes_deliver_exact_responses) {
  const uint32_t buffers[] = {1, 2, 7, 16};
  for (size_t b = 0; b < sizeof(buffers) / sizeof(buffers[0]); b++) {
    fx_t *fx = fx_new();
    sim_link_config_t up = {.buffer = 1, .mss = 1};
    sim_link_config_t down = {.buffer = buffers[b], .mss = 1};
    client_t *cl = cl_connect_with(fx, &up, &down);
    const char *req = REQ("GET /logo.png") REQ("GET /");
    size_t len = strlen(req);
    for (size_t i = 0; i < len; i++) {
      int64_t n = rt_stream_write(cl->s, req + i, 1);
      cr_assert_eq(n, 1, "byte %zu with buffer %u", i, buffers[b]);
      settle(fx);
    }
    resp_t r;
    cl_expect_response(cl, &r, true);
    check_head(&r, "200 OK", "image/png", sizeof(LOGO_PNG), true,
               STATIC_ASSET_HEADERS);
    check_body(&r, LOGO_PNG, sizeof(LOGO_PNG));
    cl_expect_response(cl, &r, true);
    check_head(&r, "200 OK", "text/html; charset=utf-8", strlen(INDEX_HTML),
               true, STATIC_HTML_HEADERS);
    check_body_str(&r, INDEX_HTML);
    cl_expect_quiet(cl);
    fx_free(fx);
  }
}

/* ========================================================================== */
/* Malformed requests */
/* ========================================================================== */

static void expect_400(const char *req) {
  fx_t *fx = fx_new();
  client_t *cl = cl_connect(fx);
  cl_send(cl, req);
  expect_error_and_close(cl, "400 Bad Request", "{\"error\":\"Bad Request\"}",
                         NULL);
  cr_assert_eq(stats(fx).http_status[4], 1);
  cl_close(cl);
  settle(fx);
  cr_assert_eq(stats(fx).closes[NET_CLOSE_HTTP_ERROR], 1);
  fx_free(fx);
}

Test(net_server, bad_request_line_is_400_and_close) {
  expect_400("GARBAGE\r\n\r\n");
  expect_400("GET /health HTTP/1.1 extra\r\nHost: " HOST "\r\n\r\n");
  expect_400("GET /he alth HTTP/1.1\r\nHost: " HOST "\r\n\r\n");
}

Test(net_server, bad_header_is_400_and_close) {
  expect_400("GET /health HTTP/1.1\r\nHost: " HOST "\r\nBad Header\r\n\r\n");
  expect_400("GET /health HTTP/1.1\r\nHost: " HOST "\r\nNo-Colon\r\n\r\n");
  expect_400("GET /health HTTP/1.1\r\nHost: " HOST
             "\r\nContent-Length: x\r\n\r\n");
}

Test(net_server, a_repeated_host_is_400_and_close) {
  expect_400("GET /health HTTP/1.1\r\nHost: " HOST "\r\nHost: " HOST
             "\r\n\r\n");
  expect_400("GET /health HTTP/1.1\r\nHost: " HOST "\r\nX: y\r\n"
             "host: evil.test\r\n\r\n");
}

Test(net_server, http11_without_host_is_400_and_http10_without_is_served) {
  expect_400("GET /health HTTP/1.1\r\n\r\n");
  fx_t *fx = fx_new();
  client_t *cl = cl_connect(fx);
  cl_send(cl, "GET /health HTTP/1.0\r\n\r\n");
  resp_t r;
  cl_expect_response(cl, &r, true);
  check_head(&r, "200 OK", "application/json", strlen(HEALTH_BODY), false,
             NO_STORE); /* 1.0 without keep-alive: closes */
  check_body_str(&r, HEALTH_BODY);
  cl_expect_eof(cl);
  fx_free(fx);
}

Test(net_server, a_chunked_trailer_is_not_a_header) {
  /* A trailer Host does not make up for a missing Host header. */
  expect_400("GET /health HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
             "0\r\nHost: x\r\n\r\n");
  /* A trailer Authorization never reaches a route. */
  fx_t *fx = fx_new();
  client_t *cl = cl_connect(fx);
  cl_send(cl, "GET /api/sync HTTP/1.1\r\nHost: " HOST
              "\r\nTransfer-Encoding: chunked\r\n\r\n"
              "0\r\nAuthorization: Bearer forged\r\n\r\n");
  resp_t r;
  cl_expect_response(cl, &r, true);
  cr_assert_eq(r.status, 200);
  cr_assert_eq(fx->sync_calls, 1);
  cr_assert_str_eq(fx->seen_auth, "(none)");
  cl_send(cl, REQ("GET /health"));
  expect_health(cl);
  fx_free(fx);
}
