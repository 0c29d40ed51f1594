/* test_net_peers.c: limits per client address (net/net_peers.h). */
#include "net_peers.h"

#include "rt_err.h"

#include <criterion/criterion.h>

#define SEC RT_NS_PER_S

static net_peers_t *peers_new(uint32_t conns, uint32_t rpm, uint32_t max) {
  static net_peers_t p;
  net_peers_config_t cfg = {.connections_max = conns,
                            .requests_per_minute = rpm,
                            .addresses_max = max};
  cr_assert_eq(net_peers_init(&p, &cfg, 42), RT_OK);
  return &p;
}

Test(net_peers, connections_at_below_and_above_the_cap) {
  net_peers_t *p = peers_new(3, 0, 0);
  uint64_t a = net_peers_key(p, "192.0.2.7");
  uint64_t b = net_peers_key(p, "192.0.2.8");
  cr_assert_neq(a, 0);
  cr_assert_neq(a, b);
  for (int i = 0; i < 3; i++)
    cr_assert_eq(net_peers_connect(p, a, 0), RT_OK, "connection %d", i);
  cr_assert_eq(net_peers_connect(p, a, 0), RT_ELIMIT, "the fourth");
  cr_assert_eq(net_peers_connections(p, a), 3);
  cr_assert_eq(net_peers_connect(p, b, 0), RT_OK, "another address");
  net_peers_disconnect(p, a, 1);
  cr_assert_eq(net_peers_connect(p, a, 2), RT_OK, "room again");
  cr_assert_eq(p->refused_connections, 1);
  for (int i = 0; i < 3; i++)
    net_peers_disconnect(p, a, 3);
  net_peers_disconnect(p, b, 3);
  cr_assert_eq(net_peers_count(p), 0, "entries go with their last one");
  net_peers_deinit(p);
}

Test(net_peers, an_unknown_address_is_never_limited) {
  net_peers_t *p = peers_new(1, 1, 1);
  cr_assert_eq(net_peers_key(p, ""), 0);
  uint32_t retry;
  for (int i = 0; i < 10; i++) {
    cr_assert_eq(net_peers_connect(p, 0, 0), RT_OK);
    cr_assert_eq(net_peers_request(p, 0, 0, &retry), RT_OK);
  }
  cr_assert_eq(net_peers_count(p), 0);
  net_peers_deinit(p);
}

Test(net_peers, requests_at_below_and_above_the_rate_then_refilled) {
  net_peers_t *p = peers_new(0, 6, 0); /* 6 a minute: one per 10 s */
  uint64_t a = net_peers_key(p, "2001:db8::1");
  uint32_t retry;
  for (int i = 0; i < 6; i++)
    cr_assert_eq(net_peers_request(p, a, 0, &retry), RT_OK, "burst %d", i);
  cr_assert_eq(net_peers_request(p, a, 0, &retry), RT_ELIMIT);
  cr_assert_eq(retry, 10, "one token is 10 s away, said %u", retry);
  cr_assert_eq(net_peers_request(p, a, 10 * SEC - 1, &retry), RT_ELIMIT);
  cr_assert_eq(retry, 1);
  cr_assert_eq(net_peers_request(p, a, 10 * SEC, &retry), RT_OK);
  cr_assert_eq(net_peers_request(p, a, 10 * SEC, &retry), RT_ELIMIT);
  cr_assert_eq(
      net_peers_request(p, net_peers_key(p, "192.0.2.1"), 10 * SEC, &retry),
      RT_OK, "another address has its own bucket");
  /* A minute later the bucket is full again, never fuller. */
  for (int i = 0; i < 6; i++)
    cr_assert_eq(net_peers_request(p, a, 200 * SEC, &retry), RT_OK);
  cr_assert_eq(net_peers_request(p, a, 200 * SEC, &retry), RT_ELIMIT);
  cr_assert_eq(p->refused_requests, 4);
  net_peers_deinit(p);
}

Test(net_peers, a_full_table_drops_stale_entries_then_refuses) {
  net_peers_t *p = peers_new(0, 60, 2);
  uint64_t a = net_peers_key(p, "192.0.2.1");
  uint64_t b = net_peers_key(p, "192.0.2.2");
  uint64_t c = net_peers_key(p, "192.0.2.3");
  uint32_t retry;
  cr_assert_eq(net_peers_connect(p, a, 0), RT_OK);
  cr_assert_eq(net_peers_request(p, b, 0, &retry), RT_OK); /* no connection */
  cr_assert_eq(net_peers_count(p), 2);
  /* At 0.5 s b's bucket is not full yet: the table is full. */
  cr_assert_eq(net_peers_request(p, c, SEC / 2, &retry), RT_EFULL);
  cr_assert_eq(net_peers_connect(p, c, SEC / 2), RT_EFULL);
  /* At 1 s it is: b is stale and goes, c gets its place; a stays. */
  cr_assert_eq(net_peers_connect(p, c, SEC), RT_OK);
  cr_assert_eq(net_peers_count(p), 2);
  cr_assert_eq(net_peers_connections(p, a), 1);
  cr_assert_eq(p->refused_full, 2);
  net_peers_disconnect(p, a, SEC);
  net_peers_disconnect(p, c, SEC);
  net_peers_deinit(p);
}

Test(net_peers, loopback_addresses_are_known_as_such) {
  cr_assert(net_peers_is_loopback("127.0.0.1"));
  cr_assert(net_peers_is_loopback("127.255.0.9"));
  cr_assert(net_peers_is_loopback("::1"));
  cr_assert_not(net_peers_is_loopback("10.0.0.1"));
  cr_assert_not(net_peers_is_loopback("128.0.0.1"));
  cr_assert_not(net_peers_is_loopback("::2"));
  cr_assert_not(net_peers_is_loopback(""));
}
