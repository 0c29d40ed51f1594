#include "net_http.h"
#include "net_http_client.h"

#include <criterion/criterion.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Feed a whole script, optionally one byte at a time; returns consumed. */
static size_t feed_all(net_http_parser_t *hp, const char *s, size_t len,
                       bool bytewise) {
  size_t used = 0;
  while (used < len && hp->state == NET_HTTP_NEED_MORE) {
    size_t chunk = bytewise ? 1 : len - used;
    size_t n = net_http_feed(hp, (const uint8_t *)s + used, chunk);
    used += n;
    if (n == 0 && hp->state == NET_HTTP_NEED_MORE)
      break;
  }
  return used;
}

static net_http_parser_t *new_parser(void) {
  net_http_parser_t *hp = malloc(sizeof(*hp));
  net_http_parser_init(hp);
  return hp;
}

Test(net_http, parses_a_simple_get) {
  net_http_parser_t *hp = new_parser();
  const char *req = "GET /api/leaderboard?limit=5 HTTP/1.1\r\nHost: x\r\n"
                    "Accept: */*\r\n\r\n";
  cr_assert_eq(feed_all(hp, req, strlen(req), false), strlen(req));
  cr_assert_eq(hp->state, NET_HTTP_REQUEST);
  const net_http_request_t *r = net_http_request(hp);
  cr_assert_str_eq(r->method, "GET");
  cr_assert_str_eq(r->path, "/api/leaderboard");
  cr_assert_str_eq(r->query, "limit=5");
  cr_assert_str_eq(net_http_header(r, "host"), "x");
  cr_assert_str_eq(net_http_header(r, "ACCEPT"), "*/*");
  cr_assert(r->keep_alive);
  cr_assert_not(r->upgrade);
  char v[16];
  cr_assert_eq(net_http_query_param(r, "limit", v, sizeof(v)), 1);
  cr_assert_str_eq(v, "5");
  cr_assert_eq(net_http_query_param(r, "nope", v, sizeof(v)), -1);
  free(hp);
}

Test(net_http, parses_one_byte_at_a_time) {
  net_http_parser_t *hp = new_parser();
  const char *req = "POST /api/login HTTP/1.1\r\nHost: h\r\nContent-Type: "
                    "application/json\r\nContent-Length: 14\r\n\r\n"
                    "{\"name\":\"Ada\"}";
  cr_assert_eq(feed_all(hp, req, strlen(req), true), strlen(req));
  cr_assert_eq(hp->state, NET_HTTP_REQUEST);
  const net_http_request_t *r = net_http_request(hp);
  cr_assert_str_eq(r->method, "POST");
  cr_assert_str_eq(net_http_header(r, "content-type"), "application/json");
  cr_assert_eq(r->body_len, 14);
  cr_assert_eq(memcmp(r->body, "{\"name\":\"Ada\"}", 14), 0);
  free(hp);
}

Test(net_http, whitespace_after_a_header_value_is_not_part_of_it) {
  const char *s = "GET / HTTP/1.1\r\nHost: h \t\r\nX-A: a b  \r\n"
                  "X-Empty: \t \r\nX-Last:\t13\t\r\n\r\n";
  for (int bytewise = 0; bytewise < 2; bytewise++) {
    net_http_parser_t *hp = new_parser();
    cr_assert_eq(feed_all(hp, s, strlen(s), bytewise), strlen(s));
    cr_assert_eq(hp->state, NET_HTTP_REQUEST);
    const net_http_request_t *r = net_http_request(hp);
    cr_assert_str_eq(net_http_header(r, "Host"), "h");
    cr_assert_str_eq(net_http_header(r, "X-A"), "a b");
    cr_assert_str_eq(net_http_header(r, "X-Empty"), "");
    cr_assert_str_eq(net_http_header(r, "X-Last"), "13");
    free(hp);
  }
}

Test(net_http, pipelined_requests_come_out_one_at_a_time_in_order) {
  net_http_parser_t *hp = new_parser();
  const char *reqs = "GET /a HTTP/1.1\r\nHost: h\r\n\r\n"
                     "GET /b HTTP/1.1\r\nHost: h\r\n\r\n"
                     "GET /c HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
  size_t len = strlen(reqs), used = 0;
  const char *expect[] = {"/a", "/b", "/c"};
  for (int i = 0; i < 3; i++) {
    used += net_http_feed(hp, (const uint8_t *)reqs + used, len - used);
    cr_assert_eq(hp->state, NET_HTTP_REQUEST, "request %d", i);
    cr_assert_str_eq(net_http_request(hp)->path, expect[i]);
    cr_assert_eq(net_http_request(hp)->keep_alive, i < 2);
    net_http_next(hp);
  }
  cr_assert_eq(used, len);
  free(hp);
}

/* A request whose head (request line + headers + blank line) is exactly
 * `head_len` bytes, padded with one long header. */
static char *head_of_size(size_t head_len) {
  const char *pre = "GET / HTTP/1.1\r\nHost: h\r\nX-Pad: ";
  const char *post = "\r\n\r\n";
  size_t fixed = strlen(pre) + strlen(post);
  cr_assert_gt(head_len, fixed);
  char *s = malloc(head_len + 1);
  strcpy(s, pre);
  memset(s + strlen(pre), 'p', head_len - fixed);
  strcpy(s + head_len - strlen(post), post);
  cr_assert_eq(strlen(s), head_len);
  return s;
}

static void expect_head(size_t head_len, net_http_state_t state, int status) {
  for (int bytewise = 0; bytewise < 2; bytewise++) {
    net_http_parser_t *hp = new_parser();
    char *s = head_of_size(head_len);
    feed_all(hp, s, head_len, bytewise);
    cr_assert_eq(hp->state, state, "head of %zu bytes (bytewise %d)", head_len,
                 bytewise);
    if (state == NET_HTTP_ERROR)
      cr_assert_eq(hp->error_status, status);
    free(s);
    free(hp);
  }
}

Test(net_http, head_limit_below_at_and_above) {
  expect_head(NET_HTTP_HEAD_MAX - 1, NET_HTTP_REQUEST, 0);
  expect_head(NET_HTTP_HEAD_MAX, NET_HTTP_REQUEST, 0);
  expect_head(NET_HTTP_HEAD_MAX + 1, NET_HTTP_ERROR, 431);
  expect_head(NET_HTTP_HEAD_MAX * 4, NET_HTTP_ERROR, 431);
}

/* The whole head may be one long target: splitting off its query must not
 * need room beyond the head's own bytes. */
Test(net_http, a_target_with_a_query_may_fill_the_head_limit) {
  const char *pre = "GET /", *post = "?q=1 HTTP/1.1\r\nHost: h\r\n\r\n";
  size_t len = NET_HTTP_HEAD_MAX, pad = len - strlen(pre) - strlen(post);
  char *s = malloc(len + 1);
  strcpy(s, pre);
  memset(s + strlen(pre), 'a', pad);
  strcpy(s + strlen(pre) + pad, post);
  for (int bytewise = 0; bytewise < 2; bytewise++) {
    net_http_parser_t *hp = new_parser();
    feed_all(hp, s, len, bytewise);
    cr_assert_eq(hp->state, NET_HTTP_REQUEST, "bytewise %d", bytewise);
    const net_http_request_t *r = net_http_request(hp);
    cr_assert_eq(strlen(r->path), 1 + pad);
    cr_assert_eq(strspn(r->path + 1, "a"), pad);
    cr_assert_str_eq(r->query, "q=1");
    free(hp);
  }
  free(s);
}

static void expect_target(const char *target, const char *path,
                          const char *query) {
  char s[512];
  snprintf(s, sizeof(s), "GET %s HTTP/1.1\r\nHost: h\r\n\r\n", target);
  net_http_parser_t *hp = new_parser();
  feed_all(hp, s, strlen(s), false);
  if (path == NULL) {
    cr_assert_eq(hp->state, NET_HTTP_ERROR, "%s", target);
    cr_assert_eq(hp->error_status, 400, "%s", target);
  } else {
    cr_assert_eq(hp->state, NET_HTTP_REQUEST, "%s", target);
    cr_assert_str_eq(net_http_request(hp)->path, path, "%s", target);
    cr_assert_str_eq(net_http_request(hp)->query, query, "%s", target);
  }
  free(hp);
}

Test(net_http, absolute_form_targets_split_like_origin_form) {
  expect_target("/health", "/health", "");
  expect_target("/a?b=1#frag", "/a", "b=1");
  expect_target("//not-a-host/p", "//not-a-host/p", "");
  expect_target("http://127.0.0.1/health", "/health", "");
  expect_target("http://game.test:8080/api/x?limit=5", "/api/x", "limit=5");
  expect_target("HTTPS://GAME.TEST/ws?token=t#f", "/ws", "token=t");
  expect_target("http://[::1]:8080/p", "/p", "");
  expect_target("http://h", "/", ""); /* an empty path is "/" */
  expect_target("http://h?q=1", "/", "q=1");
  expect_target("http://user@h/p", NULL, NULL); /* userinfo: an error */
  expect_target("http:///p", NULL, NULL);       /* no host */
}

Test(net_http, an_endless_head_is_refused_without_waiting_for_its_end) {
  net_http_parser_t *hp = new_parser();
  char *s = head_of_size(NET_HTTP_HEAD_MAX * 2);
  /* Never send the blank line. */
  feed_all(hp, s, NET_HTTP_HEAD_MAX + 100, false);
  cr_assert_eq(hp->state, NET_HTTP_ERROR);
  cr_assert_eq(hp->error_status, 431);
  free(s);
  free(hp);
}

/* A head longer than the arena, all in one feed: the head limit is checked
 * after each feed, so within one the arena's own checks bound it, and the
 * byte after the arena is never written. A parser with a canary after it;
 * every filler length around the arena's size, so that one of them has the
 * arena full but for one byte when the next header begins (a NUL was once
 * written one past the arena there, past the end of the parser: found by
 * tests/fuzz/fuzz_http.c). */
typedef struct guarded_parser {
  net_http_parser_t hp;
  char canary[8];
} guarded_parser_t;

Test(net_http, a_head_filling_the_arena_in_one_feed_writes_nothing_past_it) {
  _Static_assert(offsetof(net_http_parser_t, arena) + NET_HTTP_ARENA ==
                     sizeof(net_http_parser_t),
                 "the arena ends the parser: the canary is right after it");
  guarded_parser_t *g = malloc(sizeof(*g));
  char *s = malloc(NET_HTTP_ARENA + 64);
  for (size_t fill = NET_HTTP_ARENA - 32; fill < NET_HTTP_ARENA + 32; fill++) {
    net_http_parser_init(&g->hp);
    memset(g->canary, 'c', sizeof(g->canary));
    size_t len = (size_t)sprintf(s, "GET / HTTP/1.1\r\nHost: h\r\nX: ");
    memset(s + len, 'v', fill - len);
    len = fill;
    len += (size_t)sprintf(s + len, "\r\nY: w\r\n\r\n");
    feed_all(&g->hp, s, len, false);
    cr_assert_eq(g->hp.state, NET_HTTP_ERROR, "fill %zu", fill);
    cr_assert_eq(g->hp.error_status, 431, "fill %zu", fill);
    for (size_t i = 0; i < sizeof(g->canary); i++)
      cr_assert_eq(g->canary[i], 'c', "fill %zu: byte %zu after the arena",
                   fill, i);
  }
  free(s);
  free(g);
}

static void expect_headers(uint32_t count, net_http_state_t state) {
  net_http_parser_t *hp = new_parser();
  char *s = malloc(8192);
  size_t len = (size_t)sprintf(s, "GET / HTTP/1.1\r\nHost: h\r\n");
  for (uint32_t i = 1; i < count; i++)
    len += (size_t)sprintf(s + len, "X%u: v\r\n", i);
  len += (size_t)sprintf(s + len, "\r\n");
  feed_all(hp, s, len, false);
  cr_assert_eq(hp->state, state, "%u headers", count);
  if (state == NET_HTTP_ERROR)
    cr_assert_eq(hp->error_status, 431);
  free(s);
  free(hp);
}

Test(net_http, header_count_limit_below_at_and_above) {
  expect_headers(NET_HTTP_HEADERS_MAX - 1, NET_HTTP_REQUEST);
  expect_headers(NET_HTTP_HEADERS_MAX, NET_HTTP_REQUEST);
  expect_headers(NET_HTTP_HEADERS_MAX + 1, NET_HTTP_ERROR);
}

static void expect_body(size_t body_len, bool chunked, net_http_state_t state) {
  net_http_parser_t *hp = new_parser();
  char *s = malloc(body_len + 256);
  size_t len;
  if (chunked) {
    len = (size_t)sprintf(s,
                          "POST /api/login HTTP/1.1\r\nHost: h\r\n"
                          "Transfer-Encoding: chunked\r\n\r\n%zx\r\n",
                          body_len);
    memset(s + len, 'b', body_len);
    len += body_len;
    len += (size_t)sprintf(s + len, "\r\n0\r\n\r\n");
  } else {
    len = (size_t)sprintf(s,
                          "POST /api/login HTTP/1.1\r\nHost: h\r\n"
                          "Content-Length: %zu\r\n\r\n",
                          body_len);
    memset(s + len, 'b', body_len);
    len += body_len;
  }
  feed_all(hp, s, len, false);
  cr_assert_eq(hp->state, state, "body %zu chunked %d", body_len, chunked);
  if (state == NET_HTTP_ERROR)
    cr_assert_eq(hp->error_status, 413);
  else
    cr_assert_eq(net_http_request(hp)->body_len, body_len);
  free(s);
  free(hp);
}

Test(net_http, body_limit_below_at_and_above) {
  for (int chunked = 0; chunked < 2; chunked++) {
    expect_body(NET_HTTP_BODY_MAX - 1, chunked, NET_HTTP_REQUEST);
    expect_body(NET_HTTP_BODY_MAX, chunked, NET_HTTP_REQUEST);
    expect_body(NET_HTTP_BODY_MAX + 1, chunked, NET_HTTP_ERROR);
  }
}

Test(net_http, an_announced_oversize_body_is_refused_before_it_arrives) {
  net_http_parser_t *hp = new_parser();
  const char *s =
      "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 999999\r\n\r\n";
  feed_all(hp, s, strlen(s), false);
  cr_assert_eq(hp->state, NET_HTTP_ERROR);
  cr_assert_eq(hp->error_status, 413);
  free(hp);
}

/* A chunked POST with one trailer field "X-T: <pad>" whose name and value
 * are `bytes` long together. */
static char *trailer_of_size(size_t bytes) {
  const char *pre = "POST /api/echo HTTP/1.1\r\nHost: h\r\n"
                    "Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\nX-T: ";
  cr_assert_gt(bytes, 3);
  char *s = malloc(strlen(pre) + bytes + 8);
  strcpy(s, pre);
  memset(s + strlen(pre), 't', bytes - 3);
  strcpy(s + strlen(pre) + bytes - 3, "\r\n\r\n");
  return s;
}

Test(net_http, trailer_fields_are_dropped_and_held_to_their_limit) {
  const size_t sizes[] = {NET_HTTP_TRAILER_MAX - 1, NET_HTTP_TRAILER_MAX,
                          NET_HTTP_TRAILER_MAX + 1};
  for (int bytewise = 0; bytewise < 2; bytewise++)
    for (size_t i = 0; i < 3; i++) {
      net_http_parser_t *hp = new_parser();
      char *s = trailer_of_size(sizes[i]);
      feed_all(hp, s, strlen(s), bytewise);
      if (sizes[i] > NET_HTTP_TRAILER_MAX) {
        cr_assert_eq(hp->state, NET_HTTP_ERROR, "%zu bytes", sizes[i]);
        cr_assert_eq(hp->error_status, 431);
      } else {
        cr_assert_eq(hp->state, NET_HTTP_REQUEST, "%zu bytes", sizes[i]);
        const net_http_request_t *r = net_http_request(hp);
        cr_assert_eq(r->headers_len, 2, "the trailer is not a header");
        cr_assert_null(net_http_header(r, "X-T"));
        cr_assert_eq(r->body_len, 2);
      }
      free(s);
      free(hp);
    }
}

Test(net_http, a_trailer_is_never_taken_for_a_header) {
  net_http_parser_t *hp = new_parser();
  const char *s = "GET /api/history HTTP/1.1\r\nHost: h\r\n"
                  "Transfer-Encoding: chunked\r\n\r\n"
                  "0\r\nAuthorization: Bearer forged\r\nHost: other\r\n\r\n"
                  "GET /next HTTP/1.1\r\nHost: h\r\n\r\n";
  size_t first = strlen(s) - strlen("GET /next HTTP/1.1\r\nHost: h\r\n\r\n");
  cr_assert_eq(feed_all(hp, s, strlen(s), false), first);
  cr_assert_eq(hp->state, NET_HTTP_REQUEST);
  const net_http_request_t *r = net_http_request(hp);
  cr_assert_null(net_http_header(r, "Authorization"));
  cr_assert_str_eq(net_http_header(r, "Host"), "h");
  cr_assert_eq(r->headers_len, 2);
  /* The next request parses as usual behind it. */
  net_http_next(hp);
  cr_assert_eq(feed_all(hp, s + first, strlen(s) - first, false),
               strlen(s) - first);
  cr_assert_eq(hp->state, NET_HTTP_REQUEST);
  cr_assert_str_eq(net_http_request(hp)->path, "/next");
  free(hp);
}

static void expect_400(const char *s) {
  net_http_parser_t *hp = new_parser();
  feed_all(hp, s, strlen(s), false);
  cr_assert_eq(hp->state, NET_HTTP_ERROR, "%s", s);
  cr_assert_eq(hp->error_status, 400, "%s", s);
  free(hp);
}

Test(net_http, malformed_requests_get_400) {
  expect_400("GARBAGE\r\n\r\n");
  expect_400("GET / HTTP/1.1\r\nBad Header\r\n\r\n"); /* no colon */
  expect_400("GET / HTTP/1.1\r\n\r\n");               /* no Host in 1.1 */
  expect_400("GET / HTTP/1.1\r\nHost: h\r\nHost: h\r\n\r\n"); /* 2 Hosts */
  expect_400("GET / HTTP/1.0\r\nHost: a\r\nhost: b\r\n\r\n");
  /* A trailer is not a header: still no Host. */
  expect_400("GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
             "0\r\nHost: x\r\n\r\n");
  expect_400("GET / HTTP/1.1\r\nHost: h\r\nContent-Length: x\r\n\r\n");
  expect_400("\x01\x02\x03\r\n\r\n");
}

Test(net_http, versions_other_than_1_x_get_505) {
  const char *reqs[] = {"GET /\r\n\r\n", "GET / HTTP/2.0\r\nHost: h\r\n\r\n"};
  for (int i = 0; i < 2; i++) {
    net_http_parser_t *hp = new_parser();
    feed_all(hp, reqs[i], strlen(reqs[i]), false);
    cr_assert_eq(hp->state, NET_HTTP_ERROR, "%s", reqs[i]);
    cr_assert_eq(hp->error_status, 505);
    free(hp);
  }
}

Test(net_http, http_1_0_needs_no_host_and_closes_by_default) {
  net_http_parser_t *hp = new_parser();
  const char *s = "GET /health HTTP/1.0\r\n\r\n";
  feed_all(hp, s, strlen(s), false);
  cr_assert_eq(hp->state, NET_HTTP_REQUEST);
  cr_assert_not(net_http_request(hp)->keep_alive);
  free(hp);
}

Test(net_http, an_upgrade_stops_at_the_head_and_leaves_the_rest) {
  net_http_parser_t *hp = new_parser();
  const char *head = "GET /ws?token=abc HTTP/1.1\r\nHost: h\r\n"
                     "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n";
  char buf[512];
  snprintf(buf, sizeof(buf), "%s\x81\x85XXXXframe", head);
  size_t len = strlen(buf);
  size_t used = net_http_feed(hp, (const uint8_t *)buf, len);
  cr_assert_eq(hp->state, NET_HTTP_REQUEST);
  cr_assert(net_http_request(hp)->upgrade);
  cr_assert_eq(used, strlen(head), "frame bytes are left for WebSocket");
  char token[16];
  cr_assert_eq(
      net_http_query_param(net_http_request(hp), "token", token, sizeof(token)),
      3);
  free(hp);
}

#define UPGRADE_HEAD(version)                                                  \
  "GET /ws HTTP/" version "\r\nHost: h\r\nUpgrade: websocket\r\n"              \
  "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"     \
  "Sec-WebSocket-Version: 13\r\n"

Test(net_http, an_upgrade_with_content_is_refused_400) {
  /* The content would otherwise be taken for the new protocol's bytes. */
  expect_400(UPGRADE_HEAD("1.1") "Content-Length: 5\r\n\r\nhello");
  expect_400(UPGRADE_HEAD("1.1") "Transfer-Encoding: chunked\r\n\r\n"
                                 "5\r\nhello\r\n0\r\n\r\n");
  /* No content: Content-Length: 0 is fine. */
  net_http_parser_t *hp = new_parser();
  const char *s = UPGRADE_HEAD("1.1") "Content-Length: 0\r\n\r\n\x81";
  cr_assert_eq(feed_all(hp, s, strlen(s), false), strlen(s) - 1);
  cr_assert_eq(hp->state, NET_HTTP_REQUEST);
  cr_assert(net_http_request(hp)->upgrade);
  free(hp);
}

Test(net_http, upgrade_in_http_1_0_is_ignored_and_http_goes_on) {
  for (int bytewise = 0; bytewise < 2; bytewise++) {
    net_http_parser_t *hp = new_parser();
    const char *first = UPGRADE_HEAD("1.0") "Connection: keep-alive\r\n\r\n";
    const char *second = "GET /next HTTP/1.0\r\n\r\n";
    char s[512];
    snprintf(s, sizeof(s), "%s%s", first, second);
    cr_assert_eq(feed_all(hp, s, strlen(s), bytewise), strlen(first));
    cr_assert_eq(hp->state, NET_HTTP_REQUEST);
    cr_assert_not(net_http_request(hp)->upgrade);
    cr_assert(net_http_request(hp)->keep_alive);
    net_http_next(hp);
    cr_assert_eq(feed_all(hp, second, strlen(second), bytewise),
                 strlen(second));
    cr_assert_eq(hp->state, NET_HTTP_REQUEST, "the next request is HTTP");
    cr_assert_str_eq(net_http_request(hp)->path, "/next");
    free(hp);
  }
}

Test(net_http, a_100_continue_is_due_once_while_the_content_is_awaited) {
  const char *head = "POST /api/login HTTP/1.1\r\nHost: h\r\n"
                     "Expect: 100-Continue\r\nContent-Length: 2\r\n\r\n";
  net_http_parser_t *hp = new_parser();
  cr_assert_eq(feed_all(hp, head, strlen(head), false), strlen(head));
  cr_assert_eq(hp->state, NET_HTTP_NEED_MORE);
  cr_assert(net_http_take_continue(hp));
  cr_assert_not(net_http_take_continue(hp), "once");
  cr_assert_eq(feed_all(hp, "{}", 2, false), 2);
  cr_assert_eq(hp->state, NET_HTTP_REQUEST);
  net_http_next(hp);
  /* Content with the head: nothing to wait for. */
  char s[256];
  snprintf(s, sizeof(s), "%s{}", head);
  feed_all(hp, s, strlen(s), false);
  cr_assert_eq(hp->state, NET_HTTP_REQUEST);
  cr_assert_not(net_http_take_continue(hp));
  free(hp);
}

Test(net_http, a_head_is_refused_before_its_content_arrives) {
  const char *heads[] = {
      "POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\n", /* no Host */
      "POST / HTTP/1.1\r\nHost: a\r\nHost: b\r\nContent-Length: 2\r\n\r\n",
      "POST http://u@h/ HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n",
  };
  for (size_t i = 0; i < sizeof(heads) / sizeof(heads[0]); i++) {
    net_http_parser_t *hp = new_parser();
    feed_all(hp, heads[i], strlen(heads[i]), false);
    cr_assert_eq(hp->state, NET_HTTP_ERROR, "%s", heads[i]);
    cr_assert_eq(hp->error_status, 400);
    free(hp);
  }
}

Test(net_http, header_tokens_match_case_insensitively) {
  cr_assert(net_http_header_has_token("keep-alive, Upgrade", "upgrade"));
  cr_assert(net_http_header_has_token("Upgrade", "upgrade"));
  cr_assert_not(net_http_header_has_token("upgraded", "upgrade"));
  cr_assert_not(net_http_header_has_token(NULL, "upgrade"));
}

Test(net_http, repeated_list_fields_are_one_list) {
  net_http_parser_t *hp = new_parser();
  const char *s = "GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\n"
                  "Upgrade: h2c\r\nconnection: Upgrade\r\n"
                  "upgrade: websocket\r\n\r\n";
  feed_all(hp, s, strlen(s), false);
  cr_assert_eq(hp->state, NET_HTTP_REQUEST);
  const net_http_request_t *r = net_http_request(hp);
  cr_assert(r->upgrade, "http_parser reads the two lines as one list");
  cr_assert(net_http_field_has_token(r, "Connection", "upgrade"));
  cr_assert(net_http_field_has_token(r, "connection", "keep-alive"));
  cr_assert(net_http_field_has_token(r, "Upgrade", "websocket"));
  cr_assert_not(net_http_field_has_token(r, "Connection", "close"));
  cr_assert_not(net_http_field_has_token(r, "X-None", "upgrade"));
  free(hp);
}

Test(net_http, percent_decoding_rejects_bad_escapes_and_nul) {
  char out[32];
  cr_assert_eq(net_http_percent_decode("a%20b", 5, out, sizeof(out)), 3);
  cr_assert_str_eq(out, "a b");
  cr_assert_eq(net_http_percent_decode("%2e%2E/", 7, out, sizeof(out)), 3);
  cr_assert_str_eq(out, "../");
  cr_assert_eq(net_http_percent_decode("%zz", 3, out, sizeof(out)), -1);
  cr_assert_eq(net_http_percent_decode("%2", 2, out, sizeof(out)), -1);
  cr_assert_eq(net_http_percent_decode("%00", 3, out, sizeof(out)), -1);
  cr_assert_eq(net_http_percent_decode("abcdef", 6, out, 4), -1);
}

Test(net_http, responses_have_status_length_and_connection) {
  rt_buf_t *b = net_http_response(404, "text/plain", "nope", 4, false, NULL);
  cr_assert_not_null(b);
  char text[256];
  memcpy(text, b->data, b->len);
  text[b->len] = '\0';
  cr_assert_str_eq(text,
                   "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n"
                   "Content-Length: 4\r\nConnection: close\r\n\r\nnope");
  rt_buf_unref(b);
}

/* RFC 9110 8.6: no Content-Length (nor a type) in a 1xx or 204; a 204
 * with content is refused rather than sent with a body it cannot have. */
Test(net_http, a_204_has_no_content_length_and_no_type) {
  rt_buf_t *b = net_http_response_head(204, "application/json", 0, true,
                                       "Vary: Origin\r\n");
  cr_assert_not_null(b);
  char text[256];
  memcpy(text, b->data, b->len);
  text[b->len] = '\0';
  cr_assert_str_eq(text, "HTTP/1.1 204 No Content\r\nConnection: keep-alive"
                         "\r\nVary: Origin\r\n\r\n");
  rt_buf_unref(b);
  cr_assert_null(net_http_response_head(204, NULL, 1, true, NULL));
  b = net_http_response_head(200, NULL, 0, true, NULL);
  cr_assert_not_null(b);
  memcpy(text, b->data, b->len);
  text[b->len] = '\0';
  cr_assert_not_null(strstr(text, "\r\nContent-Length: 0\r\n"),
                     "a 200 says its empty content's length");
  rt_buf_unref(b);
}

/* The request's final status after feeding it whole, then byte by byte. */
static void expect_status(const char *req, int status) {
  for (int bytewise = 0; bytewise < 2; bytewise++) {
    net_http_parser_t *hp = new_parser();
    feed_all(hp, req, strlen(req), bytewise == 1);
    if (status == 0) {
      cr_assert_eq(hp->state, NET_HTTP_REQUEST, "%s (bytewise %d)", req,
                   bytewise);
    } else {
      cr_assert_eq(hp->state, NET_HTTP_ERROR, "%s (bytewise %d)", req,
                   bytewise);
      cr_assert_eq(hp->error_status, status, "%s: %d", req, hp->error_status);
    }
    free(hp);
  }
}

Test(net_http, a_field_name_with_whitespace_before_the_colon_is_400) {
  expect_status("POST /api/login HTTP/1.1\r\nHost: h\r\n"
                "Content-Length : 14\r\n\r\n{\"name\":\"Ada\"}",
                400);
  expect_status("GET / HTTP/1.1\r\nHost\t: h\r\n\r\n", 400);
  expect_status("GET / HTTP/1.1\r\nHost: h\r\nX Y: 1\r\n\r\n", 400);
  expect_status("GET / HTTP/1.1\r\nHost: h\r\nX\"Y: 1\r\n\r\n", 400);
  /* Every tchar is allowed in a name. */
  expect_status("GET / HTTP/1.1\r\nHost: h\r\n"
                "!#$%&'*+-.^_`|~09azAZ: 1\r\n\r\n",
                0);
}

Test(net_http, bare_lf_and_bare_cr_line_endings_are_400) {
  expect_status("GET / HTTP/1.1\nHost: h\r\n\r\n", 400);
  expect_status("GET / HTTP/1.1\r\nHost: h\n\r\n", 400);
  expect_status("GET / HTTP/1.1\r\nHost: h\r\n\n", 400);
  expect_status("GET / HTTP/1.1\rHost: h\r\n\r\n", 400);
  expect_status("GET / HTTP/1.1\r\nHost: h\rX: 1\r\n\r\n", 400);
  /* The content is not the head: a LF there is data. */
  expect_status("POST /api/login HTTP/1.1\r\nHost: h\r\n"
                "Content-Length: 3\r\n\r\na\nb",
                0);
}

Test(net_http, obsolete_line_folding_is_400) {
  expect_status("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\r\n b\r\n\r\n", 400);
  expect_status("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\r\n\tb\r\n\r\n", 400);
  /* Whitespace before the first field name, too (RFC 9112 2.2). */
  expect_status("GET / HTTP/1.1\r\n Host: h\r\n\r\n", 400);
  /* Whitespace inside a value stays fine. */
  expect_status("GET / HTTP/1.1\r\nHost: h\r\nX-A: a \t b\r\n\r\n", 0);
}

Test(net_http, line_end_checks_start_again_with_each_pipelined_request) {
  net_http_parser_t *hp = new_parser();
  const char *two = "GET /a HTTP/1.1\r\nHost: h\r\n\r\n"
                    "GET /b HTTP/1.1\nHost: h\r\n\r\n";
  size_t used = feed_all(hp, two, strlen(two), false);
  cr_assert_eq(hp->state, NET_HTTP_REQUEST);
  cr_assert_str_eq(net_http_request(hp)->path, "/a");
  net_http_next(hp);
  feed_all(hp, two + used, strlen(two) - used, false);
  cr_assert_eq(hp->state, NET_HTTP_ERROR);
  cr_assert_eq(hp->error_status, 400);
  free(hp);
}

/* ---- net_httpc: the response side ---------------------------------------- */

/* A 200 response whose body is n bytes of 'b', its body fed `step` bytes at
 * a time into c (initialised here). The state after the last feed. */
static net_httpc_state_t httpc_feed_body(net_httpc_t *c, size_t n,
                                         size_t step) {
  char head[128];
  int h = snprintf(head, sizeof(head),
                   "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", n);
  net_httpc_init(c);
  net_httpc_state_t st = net_httpc_feed(c, (const uint8_t *)head, (size_t)h);
  char *body = malloc(n + 1);
  cr_assert_not_null(body);
  memset(body, 'b', n);
  for (size_t off = 0; off < n && st == NET_HTTPC_WAITING; off += step)
    st = net_httpc_feed(c, (const uint8_t *)body + off,
                        n - off < step ? n - off : step);
  free(body);
  return st;
}

/* The body starts in the client's inline bytes and grows on the heap up
 * to NET_HTTPC_BODY_MAX; one byte more fails the response. Under the
 * sanitizers this also shows deinit frees what grew. */
Test(net_httpc, a_body_grows_from_its_inline_bytes_up_to_the_limit) {
  const size_t sizes[] = {0,
                          1,
                          NET_HTTPC_BODY_INLINE - 1,
                          NET_HTTPC_BODY_INLINE,
                          NET_HTTPC_BODY_INLINE + 1,
                          5000,
                          NET_HTTPC_BODY_MAX - 1,
                          NET_HTTPC_BODY_MAX};
  const size_t steps[] = {1, 7, 4096, NET_HTTPC_BODY_MAX};
  net_httpc_t *c = malloc(sizeof(*c));
  cr_assert_not_null(c);
  for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
    for (size_t k = 0; k < sizeof(steps) / sizeof(steps[0]); k++) {
      size_t n = sizes[i];
      cr_assert_eq(httpc_feed_body(c, n, steps[k]), NET_HTTPC_DONE,
                   "a body of %zu bytes in steps of %zu", n, steps[k]);
      cr_assert_eq(net_httpc_status(c), 200);
      cr_assert_eq(c->body_len, n);
      cr_assert_eq(strlen(c->body), n, "NUL-terminated at %zu", n);
      cr_assert(n == 0 || (c->body[0] == 'b' && c->body[n - 1] == 'b'));
      net_httpc_deinit(c);
    }
  cr_assert_eq(httpc_feed_body(c, NET_HTTPC_BODY_MAX + 1, 4096),
               NET_HTTPC_FAILED);
  net_httpc_deinit(c);
  /* Deinitialised, it serves again, inline. */
  cr_assert_eq(httpc_feed_body(c, 3, 1), NET_HTTPC_DONE);
  cr_assert_str_eq(c->body, "bbb");
  net_httpc_deinit(c);
  free(c);
}
