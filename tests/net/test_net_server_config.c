/* test_net_server_config.c: the bounds of the server's configuration
 * (durations, message limit, route methods, origins) as net_server_start
 * checks them. Part of the net_server tests (test_net_server.c;
 * net_server_fixture.h).
 */
#include "net_server_fixture.h"

#include <criterion/criterion.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

/* ========================================================================== */
/* The configuration's bounds */
/* ========================================================================== */

/* net_server_start's answer for fx->cfg; a refused config leaves the
 * listener with the caller, so it is closed here. */
static int try_start(fx_t *fx) {
  rt_listener_t *l = NULL;
  cr_assert_eq(sim_listen(fx->sw, PORT, 0, &l), RT_OK);
  int rc = net_server_start(fx->w, l, &fx->cfg, &fx->srv);
  if (rc < 0)
    rt_listener_close(l);
  return rc;
}

/* Every duration of the config is refused below 1 ns (0 is the default)
 * and above NET_DURATION_MAX, "never" included, so no deadline sum can
 * overflow; at NET_DURATION_MAX a server starts. Likewise ws_message_max
 * around NET_WS_MESSAGE_MAX_LIMIT. */
Test(net_server, config_durations_and_message_limit_are_bounded) {
  static const size_t fields[] = {offsetof(net_server_config_t, header_timeout),
                                  offsetof(net_server_config_t, idle_timeout),
                                  offsetof(net_server_config_t, reply_timeout),
                                  offsetof(net_server_config_t, ws_ping_period),
                                  offsetof(net_server_config_t, ws_pong_wait),
                                  offsetof(net_server_config_t, ws_close_wait),
                                  offsetof(net_server_config_t, ws_park_after)};
  static const rt_time_ns refused[] = {-1, NET_DURATION_MAX + 1, RT_TIME_NEVER};
  for (size_t f = 0; f < sizeof(fields) / sizeof(fields[0]); f++) {
    for (size_t v = 0; v < sizeof(refused) / sizeof(refused[0]); v++) {
      fx_t *fx = fx_create();
      *(rt_time_ns *)((char *)&fx->cfg + fields[f]) = refused[v];
      cr_assert_eq(try_start(fx), RT_EINVAL, "field %zu value %zu", f, v);
      fx_free(fx);
    }
    fx_t *fx = fx_create();
    *(rt_time_ns *)((char *)&fx->cfg + fields[f]) = NET_DURATION_MAX;
    cr_assert_eq(try_start(fx), RT_OK, "field %zu at its most", f);
    fx_free(fx);
  }
  fx_t *fx = fx_create();
  fx->cfg.ws_message_max = NET_WS_MESSAGE_MAX_LIMIT + 1;
  cr_assert_eq(try_start(fx), RT_EINVAL);
  fx_free(fx);
  fx = fx_create();
  fx->cfg.ws_message_max = NET_WS_MESSAGE_MAX_LIMIT;
  cr_assert_eq(try_start(fx), RT_OK);
  fx_free(fx);
}

/* A route's method goes into the Allow line of a 405: 1 to
 * NET_ROUTE_METHOD_LEN_MAX characters. */
Test(net_server, route_method_names_are_bounded) {
  const size_t lens[] = {0, NET_ROUTE_METHOD_LEN_MAX - 1,
                         NET_ROUTE_METHOD_LEN_MAX,
                         NET_ROUTE_METHOD_LEN_MAX + 1};
  for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
    fx_t *fx = fx_create();
    char method[NET_ROUTE_METHOD_LEN_MAX + 2];
    memset(method, 'M', lens[i]);
    method[lens[i]] = '\0';
    fx->cfg.routes[0].method = method;
    bool ok = lens[i] > 0 && lens[i] <= NET_ROUTE_METHOD_LEN_MAX;
    cr_assert_eq(try_start(fx), ok ? RT_OK : RT_EINVAL, "length %zu", lens[i]);
    fx_free(fx);
  }
}

/* Origins as a browser writes them are the only ones that could match,
 * and each goes into a header line: anything else is refused. */
Test(net_server, an_origin_is_valid_only_as_a_browser_writes_it) {
  const char *valid[] = {
      "http://localhost:3000", "https://play.example",
      "http://127.0.0.1:8080", "https://a-b.c-d.example:65535",
      "http://[::1]:3000",     "http://x:1",
      "https://[2001:db8::1]", "http://localhost"};
  for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++)
    cr_assert(net_server_origin_valid(valid[i]), "'%s'", valid[i]);
  const char *invalid[] = {"",
                           "null",
                           "*",
                           "localhost:3000",
                           "ftp://play.example",
                           "http://",
                           "https://",
                           "http://localhost:3000/",
                           "https://play.example/x",
                           "https://Play.example",
                           "HTTPS://play.example",
                           "http://a b",
                           "http://a\r\nSet-Cookie: x=1",
                           "http://user@host",
                           "http://host:",
                           "http://host:0",
                           "http://host:03000",
                           "http://host:65536",
                           "http://host:123456",
                           "http://host:80",
                           "https://host:443",
                           "http://[]:80",
                           "http://[::1",
                           "http://[::G]",
                           "http://host?x"};
  for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++)
    cr_assert(!net_server_origin_valid(invalid[i]), "'%s'", invalid[i]);
  /* Length: at most NET_ORIGIN_LEN_MAX - 1 characters. */
  char origin[NET_ORIGIN_LEN_MAX + 2];
  const size_t lens[] = {NET_ORIGIN_LEN_MAX - 2, NET_ORIGIN_LEN_MAX - 1,
                         NET_ORIGIN_LEN_MAX, NET_ORIGIN_LEN_MAX + 1};
  for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
    memcpy(origin, "http://", 7);
    memset(origin + 7, 'a', lens[i] - 7);
    origin[lens[i]] = '\0';
    cr_assert_eq(net_server_origin_valid(origin), lens[i] < NET_ORIGIN_LEN_MAX,
                 "length %zu", lens[i]);
  }
}

/* Up to NET_CORS_ORIGINS_MAX origins, each valid; the longest one allowed
 * is named back whole in an answer. */
Test(net_server, cors_origins_are_bounded_in_number_and_form) {
  char names[NET_CORS_ORIGINS_MAX][32];
  const uint32_t counts[] = {NET_CORS_ORIGINS_MAX - 1, NET_CORS_ORIGINS_MAX,
                             NET_CORS_ORIGINS_MAX + 1};
  for (size_t k = 0; k < sizeof(counts) / sizeof(counts[0]); k++) {
    fx_t *fx = fx_create();
    for (uint32_t i = 0; i < counts[k] && i < NET_CORS_ORIGINS_MAX; i++) {
      snprintf(names[i], sizeof(names[i]), "http://site%u.example", i);
      fx->cfg.cors_origins[i] = names[i];
    }
    fx->cfg.cors_origins_len = counts[k];
    bool ok = counts[k] <= NET_CORS_ORIGINS_MAX;
    cr_assert_eq(try_start(fx), ok ? RT_OK : RT_EINVAL, "%u origins",
                 counts[k]);
    fx_free(fx);
  }
  const char *refused[] = {NULL, "http://localhost:3000/", "null"};
  for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
    fx_t *fx = fx_create();
    fx->cfg.cors_origins[0] = refused[i];
    fx->cfg.cors_origins_len = 1;
    cr_assert_eq(try_start(fx), RT_EINVAL, "origin %zu", i);
    fx_free(fx);
  }
  char longest[NET_ORIGIN_LEN_MAX];
  memcpy(longest, "http://", 7);
  memset(longest + 7, 'a', NET_ORIGIN_LEN_MAX - 8);
  longest[NET_ORIGIN_LEN_MAX - 1] = '\0';
  fx_t *fx = fx_create();
  fx->cfg.cors_origins[0] = longest;
  fx->cfg.cors_origins_len = 1;
  cr_assert_eq(try_start(fx), RT_OK);
  client_t *cl = cl_connect(fx);
  char req[1024];
  snprintf(req, sizeof(req),
           "OPTIONS /api/echo HTTP/1.1\r\nHost: " HOST
           "\r\nOrigin: %s\r\n" ASKS("POST") "\r\n",
           longest);
  cl_send(cl, req);
  resp_t r;
  cl_expect_response(cl, &r, true);
  char got[NET_ORIGIN_LEN_MAX + 1];
  cr_assert_eq(r.status, 204);
  cr_assert(resp_header(&r, "Access-Control-Allow-Origin", got, sizeof(got)));
  cr_assert_str_eq(got, longest);
  fx_free(fx);
}
