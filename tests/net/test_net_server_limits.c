/* test_net_server_limits.c: the server's limits: head and body sizes, the
 * timeouts, the connection cap, and the caps per address (net_peers.h).
 * Part of the net_server tests (test_net_server.c; net_server_fixture.h).
 */
#include "net_server_fixture.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ========================================================================== */
/* Limits */
/* ========================================================================== */

/* A GET /health whose head (request line to blank line) is exactly len. */
static void build_head_of(char *out, size_t len) {
  const char *start = "GET /health HTTP/1.1\r\nHost: " HOST "\r\nX-Pad: ";
  const char *tail = "\r\n\r\n";
  size_t fixed = strlen(start) + strlen(tail);
  cr_assert_gt(len, fixed);
  size_t pad = len - fixed;
  memcpy(out, start, strlen(start));
  memset(out + strlen(start), 'a', pad);
  memcpy(out + strlen(start) + pad, tail, strlen(tail) + 1);
  cr_assert_eq(strlen(out), len);
}

Test(net_server, head_of_8192_bytes_is_served_and_8193_gets_431_and_close) {
  fx_t *fx = fx_new();
  static char req[NET_HTTP_HEAD_MAX + 2];
  const size_t sizes[] = {NET_HTTP_HEAD_MAX - 1, NET_HTTP_HEAD_MAX};
  cr_assert_eq(NET_HTTP_HEAD_MAX, 8192);
  for (size_t i = 0; i < 2; i++) {
    client_t *cl = cl_connect(fx);
    build_head_of(req, sizes[i]);
    cl_send(cl, req);
    expect_health(cl);
    cl_expect_quiet(cl);
  }
  client_t *cl = cl_connect(fx);
  build_head_of(req, NET_HTTP_HEAD_MAX + 1);
  cl_send(cl, req);
  expect_error_and_close(cl, "431 Request Header Fields Too Large",
                         "{\"error\":\"Request Header Fields Too Large\"}",
                         NULL);
  fx_free(fx);
}

Test(net_server, a_long_path_with_a_query_is_routed_not_refused_431) {
  fx_t *fx = fx_new();
  static char req[NET_HTTP_HEAD_MAX];
  int n = snprintf(req, sizeof(req),
                   "GET /%5000s? HTTP/1.1\r\nHost: " HOST "\r\n\r\n", "");
  cr_assert(n > 0 && (size_t)n < sizeof(req));
  memset(req + 5, 'a', 5000);
  client_t *cl = cl_connect(fx);
  cl_send(cl, req);
  resp_t r;
  cl_expect_response(cl, &r, true);
  check_head(&r, "404 Not Found", "text/html; charset=utf-8", r.body_len, true,
             NULL);
  cl_expect_quiet(cl);
  fx_free(fx);
}

Test(net_server, unfinished_head_is_refused_431_as_soon_as_it_passes_8192) {
  fx_t *fx = fx_new();
  static char req[NET_HTTP_HEAD_MAX + 8];
  build_head_of(req, NET_HTTP_HEAD_MAX + 4);
  client_t *cl = cl_connect(fx);
  /* 8192 bytes of a head with no end yet: legal so far, so no answer. */
  cl_write(cl, req, NET_HTTP_HEAD_MAX);
  settle(fx);
  cl_expect_quiet(cl);
  cl_write(cl, req + NET_HTTP_HEAD_MAX, 1); /* byte 8193 */
  expect_error_and_close(cl, "431 Request Header Fields Too Large",
                         "{\"error\":\"Request Header Fields Too Large\"}",
                         NULL);
  cr_assert_eq(rt_now(fx->w), 0, "refused at once, not by a timeout");
  fx_free(fx);
}

static void send_post_echo(client_t *cl, size_t body_len) {
  static uint8_t req[NET_HTTP_BODY_MAX + 512];
  int n = snprintf((char *)req, 256,
                   "POST /api/echo HTTP/1.1\r\nHost: " HOST
                   "\r\nContent-Type: application/json\r\n"
                   "Content-Length: %zu\r\n\r\n",
                   body_len);
  cr_assert_leq((size_t)n + body_len, sizeof(req));
  for (size_t i = 0; i < body_len; i++)
    req[(size_t)n + i] = (uint8_t)('a' + i % 26);
  cl_write(cl, req, (size_t)n + body_len);
}

static void expect_echoed_body(client_t *cl, size_t body_len) {
  resp_t r;
  cl_expect_response(cl, &r, true);
  check_head(&r, "200 OK", "application/json", body_len, true, NO_STORE);
  for (size_t i = 0; i < body_len; i++)
    cr_assert_eq(r.body[i], (uint8_t)('a' + i % 26), "body byte %zu", i);
}

Test(net_server, body_of_4096_bytes_is_accepted_and_4097_gets_413) {
  fx_t *fx = fx_new();
  cr_assert_eq(NET_HTTP_BODY_MAX, 4096);
  client_t *cl = cl_connect(fx);
  send_post_echo(cl, NET_HTTP_BODY_MAX - 1);
  expect_echoed_body(cl, NET_HTTP_BODY_MAX - 1);
  send_post_echo(cl, NET_HTTP_BODY_MAX);
  expect_echoed_body(cl, NET_HTTP_BODY_MAX);
  cl_expect_quiet(cl);
  client_t *big = cl_connect(fx);
  send_post_echo(big, NET_HTTP_BODY_MAX + 1);
  expect_error_and_close(big, "413 Payload Too Large",
                         "{\"error\":\"Payload Too Large\"}", NULL);
  fx_free(fx);
}

/* A chunked body of two chunks adding up to total bytes. */
static void send_chunked_echo(client_t *cl, size_t total) {
  static char req[NET_HTTP_BODY_MAX + 512];
  size_t first = total / 2, second = total - first;
  int n = snprintf(req, sizeof(req),
                   "POST /api/echo HTTP/1.1\r\nHost: " HOST
                   "\r\nTransfer-Encoding: chunked\r\n\r\n%zx\r\n",
                   first);
  size_t at = (size_t)n;
  for (size_t i = 0; i < first; i++)
    req[at++] = (char)('a' + i % 26);
  at += (size_t)snprintf(req + at, sizeof(req) - at, "\r\n%zx\r\n", second);
  for (size_t i = 0; i < second; i++)
    req[at++] = (char)('a' + (first + i) % 26);
  at += (size_t)snprintf(req + at, sizeof(req) - at, "\r\n0\r\n\r\n");
  cl_write(cl, req, at);
}

Test(net_server, chunked_body_is_held_to_4096_bytes_too) {
  fx_t *fx = fx_new();
  client_t *cl = cl_connect(fx);
  send_chunked_echo(cl, NET_HTTP_BODY_MAX);
  expect_echoed_body(cl, NET_HTTP_BODY_MAX);
  client_t *big = cl_connect(fx);
  send_chunked_echo(big, NET_HTTP_BODY_MAX + 1);
  expect_error_and_close(big, "413 Payload Too Large",
                         "{\"error\":\"Payload Too Large\"}", NULL);
  fx_free(fx);
}

Test(net_server, head_must_complete_within_10_s) {
  fx_t *fx = fx_new();
  client_t *cl = cl_connect(fx);
  cl_send(cl, "GET /health HTTP/1.1\r\nHost: " HOST "\r\n"); /* no blank line */
  settle(fx);
  run_to(fx, 10 * SEC - 100 * MS);
  cl_expect_quiet(cl);
  run_to(fx, 10 * SEC - 1);
  cl_expect_quiet(cl);
  cr_assert_eq(stats(fx).connections, 1);
  run_to(fx, 10 * SEC);
  cl_expect_eof(cl);
  net_server_stats_t s = stats(fx);
  cr_assert_eq(s.connections, 0);
  cr_assert_eq(s.closes[NET_CLOSE_HEADER_TIMEOUT], 1);
  fx_free(fx);
}

Test(net_server, head_sent_one_byte_a_second_is_still_cut_at_10_s) {
  fx_t *fx = fx_new();
  client_t *cl = cl_connect(fx);
  const char *req = REQ("GET /health");
  for (uint32_t k = 0; k < 10; k++) {
    run_to(fx, k * SEC);
    cl_expect_quiet(cl);
    cl_write(cl, req + k, 1); /* each byte is progress, but no excuse */
  }
  run_to(fx, 10 * SEC - 1);
  cl_expect_quiet(cl);
  run_to(fx, 10 * SEC);
  cl_expect_eof(cl);
  cr_assert_eq(stats(fx).closes[NET_CLOSE_HEADER_TIMEOUT], 1);
  fx_free(fx);
}

Test(net_server, idle_keep_alive_closes_at_30_s_and_not_before) {
  fx_t *fx = fx_new();
  client_t *cl = cl_connect(fx);
  cl_send(cl, REQ("GET /health"));
  expect_health(cl);
  run_to(fx, 30 * SEC - 100 * MS);
  cl_expect_quiet(cl);
  run_to(fx, 30 * SEC - 1);
  cl_expect_quiet(cl);
  cr_assert_eq(stats(fx).connections, 1);
  run_to(fx, 30 * SEC);
  cl_expect_eof(cl);
  net_server_stats_t s = stats(fx);
  cr_assert_eq(s.connections, 0);
  cr_assert_eq(s.closes[NET_CLOSE_IDLE_TIMEOUT], 1);
  fx_free(fx);
}

Test(net_server, each_request_restarts_the_idle_timer) {
  fx_t *fx = fx_new();
  client_t *cl = cl_connect(fx);
  cl_send(cl, REQ("GET /health"));
  expect_health(cl);
  run_to(fx, 20 * SEC);
  cl_send(cl, REQ("GET /health"));
  expect_health(cl);
  run_to(fx, 50 * SEC - 1);
  cl_expect_quiet(cl);
  run_to(fx, 50 * SEC);
  cl_expect_eof(cl);
  cr_assert_eq(stats(fx).closes[NET_CLOSE_IDLE_TIMEOUT], 1);
  fx_free(fx);
}

Test(net_server, a_request_begun_while_idle_gets_the_header_timeout) {
  fx_t *fx = fx_new();
  client_t *cl = cl_connect(fx);
  cl_send(cl, REQ("GET /health"));
  expect_health(cl);
  run_to(fx, 25 * SEC);
  cl_send(cl, "GET /he"); /* idle would end at 30 s; the head has until 35 s */
  run_to(fx, 35 * SEC - 1);
  cl_expect_quiet(cl);
  run_to(fx, 35 * SEC);
  cl_expect_eof(cl);
  net_server_stats_t s = stats(fx);
  cr_assert_eq(s.closes[NET_CLOSE_HEADER_TIMEOUT], 1);
  cr_assert_eq(s.closes[NET_CLOSE_IDLE_TIMEOUT], 0);
  fx_free(fx);
}

static const char BUSY[] =
    "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
    "Content-Length: 39\r\nConnection: close\r\nRetry-After: 5\r\n\r\n"
    "{\"error\":\"too many connections, later\"}";

Test(net_server, connections_above_the_limit_get_503_until_one_closes) {
  fx_t *fx = fx_create();
  fx->cfg.connections_max = 3;
  fx_start(fx);
  client_t *a = cl_connect(fx);
  client_t *b = cl_connect(fx);
  settle(fx);
  cr_assert_eq(stats(fx).connections, 2); /* below */
  client_t *c = cl_connect(fx);
  settle(fx);
  cr_assert_eq(stats(fx).connections, 3); /* at: accepted */
  cl_send(c, REQ("GET /health"));
  expect_health(c);
  client_t *d = cl_connect(fx); /* above */
  settle(fx);
  cl_expect_bytes(d, BUSY, strlen(BUSY));
  cl_expect_eof(d);
  net_server_stats_t s = stats(fx);
  cr_assert_eq(s.connections, 3);
  cr_assert_eq(s.rejected_limit, 1);
  cr_assert_eq(s.accepted, 3);
  /* One leaves: the next is accepted and served, the one after refused. */
  cl_close(a);
  settle(fx);
  cr_assert_eq(stats(fx).connections, 2);
  client_t *e = cl_connect(fx);
  cl_send(e, REQ("GET /health"));
  expect_health(e);
  client_t *f = cl_connect(fx);
  settle(fx);
  resp_t r;
  cr_assert(cl_take_response(f, &r, true));
  cr_assert_eq(r.status, 503);
  cl_expect_eof(f);
  s = stats(fx);
  cr_assert_eq(s.connections, 3);
  cr_assert_eq(s.rejected_limit, 2);
  cr_assert_eq(s.accepted, 4);
  cl_send(b, REQ("GET /health")); /* the old ones were never disturbed */
  expect_health(b);
  fx_free(fx);
}

/* ---- Per-address limits (net_peers.h) ------------------------------------ */

static void peer_behaviour(rt_actor_t *self, const rt_msg_t *msg) {
  (void)self;
  (void)msg;
}

/* An actor for clients to connect from, and the address the server sees
 * for them: sim_connect gives the server end the connecting actor's
 * address, 10.a.b.c from its id (sim/sim_pipe.c). */
static void peer_spawn(fx_t *fx, rt_actor_id_t *who, char *addr) {
  rt_actor_spec_t spec = {.name = "peer",
                          .behaviour = peer_behaviour,
                          .mailbox_cap = 4,
                          .overflow = RT_OVERFLOW_REJECT};
  cr_assert_eq(rt_spawn(fx->w, &spec, who), RT_OK);
  if (addr != NULL)
    snprintf(addr, RT_PEER_MAX, "10.%u.%u.%u", (unsigned)(*who >> 16) & 255u,
             (unsigned)(*who >> 8) & 255u, (unsigned)*who & 255u);
}

/* POST /api/echo, metered per address. */
static void limit_echo_route(fx_t *fx) {
  for (uint32_t i = 0; i < fx->cfg.routes_len; i++)
    if (strcmp(fx->cfg.routes[i].path, "/api/echo") == 0)
      fx->cfg.routes[i].per_address_limited = true;
}

/* A client seen at who's address (an actor made at the first call). */
static client_t *cl_connect_from(fx_t *fx, rt_actor_id_t *who, char *addr) {
  if (*who == 0)
    peer_spawn(fx, who, addr);
  cr_assert_lt(fx->clients_len, CLIENTS_MAX);
  client_t *cl = calloc(1, sizeof(*cl));
  cr_assert_not_null(cl);
  cl->fx = fx;
  cr_assert_eq(sim_connect(fx->sw, PORT, *who, NULL, NULL, &cl->s), RT_OK);
  fx->clients[fx->clients_len++] = cl;
  return cl;
}

static int get_status(client_t *cl, const char *req) {
  cl_send(cl, req);
  resp_t r;
  cl_expect_response(cl, &r, true);
  return r.status;
}

Test(net_server, connections_per_address_below_at_and_above_the_cap) {
  fx_t *fx = fx_create();
  fx->cfg.peers.connections_max = 2;
  fx_start(fx);
  rt_actor_id_t a = 0, b = 0;
  client_t *a1 = cl_connect_from(fx, &a, NULL);
  client_t *a2 = cl_connect_from(fx, &a, NULL);
  cr_assert_eq(get_status(a1, REQ("GET /health")), 200);
  cr_assert_eq(get_status(a2, REQ("GET /health")), 200);
  client_t *a3 = cl_connect_from(fx, &a, NULL);
  settle(fx);
  resp_t r;
  cr_assert(cl_take_response(a3, &r, true), "a 503 was sent");
  cr_assert_eq(r.status, 503);
  static const char want[] =
      "{\"error\":\"too many connections from your address\"}";
  cr_assert_eq(r.body_len, sizeof(want) - 1, "Content-Length is its length");
  cr_assert(memcmp(r.body, want, sizeof(want) - 1) == 0);
  cl_expect_eof(a3);
  client_t *b1 = cl_connect_from(fx, &b, NULL);
  cr_assert_eq(get_status(b1, REQ("GET /health")), 200, "another address");
  /* One of a's closes: a has room again. */
  rt_stream_close(a1->s);
  a1->s = NULL;
  settle(fx);
  client_t *a4 = cl_connect_from(fx, &a, NULL);
  cr_assert_eq(get_status(a4, REQ("GET /health")), 200);
  net_server_stats_t s = stats(fx);
  cr_assert_eq(s.rejected_address, 1);
  cr_assert_eq(s.rejected_limit, 0);
  /* Connections of unknown address (the other tests' clients) are never
   * counted. */
  for (int i = 0; i < 4; i++)
    cr_assert_eq(get_status(cl_connect(fx), REQ("GET /health")), 200);
  fx_free(fx);
}

static const char *post_echo(char *buf, size_t cap, const char *xff) {
  snprintf(buf, cap,
           "POST /api/echo HTTP/1.1\r\nHost: " HOST "\r\n%s%s%s"
           "Content-Length: 2\r\n\r\nhi",
           xff != NULL ? "X-Forwarded-For: " : "", xff != NULL ? xff : "",
           xff != NULL ? "\r\n" : "");
  return buf;
}

Test(net_server, a_rate_limited_route_answers_429_per_address) {
  fx_t *fx = fx_create();
  fx->cfg.peers.requests_per_minute = 2; /* one per 30 s, 2 at once */
  limit_echo_route(fx);
  fx_start(fx);
  rt_actor_id_t a = 0, b = 0;
  client_t *ca = cl_connect_from(fx, &a, NULL);
  char req[256];
  cr_assert_eq(get_status(ca, post_echo(req, sizeof(req), NULL)), 200);
  cr_assert_eq(get_status(ca, post_echo(req, sizeof(req), NULL)), 200);
  cl_send(ca, post_echo(req, sizeof(req), NULL));
  resp_t r;
  cl_expect_response(ca, &r, true);
  cr_assert_eq(r.status, 429);
  cr_assert(strstr(r.head, "Retry-After: 30\r\n") != NULL, "%s", r.head);
  /* Other routes and other addresses are not metered with it. */
  cr_assert_eq(get_status(ca, REQ("GET /health")), 200);
  client_t *cb = cl_connect_from(fx, &b, NULL);
  cr_assert_eq(get_status(cb, post_echo(req, sizeof(req), NULL)), 200);
  /* Without a trusted proxy, X-Forwarded-For changes nothing. */
  cr_assert_eq(get_status(ca, post_echo(req, sizeof(req), "192.0.2.9")), 429);
  advance(fx, 30 * SEC); /* one token back (and ca closed as idle) */
  ca = cl_connect_from(fx, &a, NULL);
  cr_assert_eq(get_status(ca, post_echo(req, sizeof(req), NULL)), 200);
  cr_assert_eq(get_status(ca, post_echo(req, sizeof(req), NULL)), 429);
  cr_assert_eq(stats(fx).throttled, 3);
  fx_free(fx);
}

Test(net_server,
     through_the_trusted_proxy_requests_count_for_the_address_it_adds) {
  fx_t *fx = fx_create();
  fx->cfg.peers.connections_max = 1;
  fx->cfg.peers.requests_per_minute = 1;
  limit_echo_route(fx);
  rt_actor_id_t proxy = 0;
  char proxy_addr[RT_PEER_MAX];
  peer_spawn(fx, &proxy, proxy_addr);
  fx->cfg.trusted_proxy = proxy_addr;
  fx_start(fx);
  client_t *p1 = cl_connect_from(fx, &proxy, NULL);
  /* The proxy's own connections are not capped per address. */
  client_t *p2 = cl_connect_from(fx, &proxy, NULL);
  client_t *p3 = cl_connect_from(fx, &proxy, NULL);
  char req[256];
  cr_assert_eq(get_status(p1, post_echo(req, sizeof(req), "192.0.2.1")), 200);
  cr_assert_eq(get_status(p2, post_echo(req, sizeof(req), "192.0.2.1")), 429,
               "the same client through another proxy connection");
  cr_assert_eq(get_status(p3, post_echo(req, sizeof(req), "192.0.2.2")), 200);
  /* Only the last entry is the proxy's word; the ones before are the
   * client's, who may write anything there. */
  cr_assert_eq(
      get_status(p3, post_echo(req, sizeof(req), "203.0.113.5, 192.0.2.1")),
      429);
  cr_assert_eq(
      get_status(p3, post_echo(req, sizeof(req), "192.0.2.1, 192.0.2.3")), 200);
  fx_free(fx);
}
