/* test_game_cluster.c: the Cluster's link to Redis when Redis misbehaves.
 *
 * In a simulated world, the Cluster connects (rt_stream_connect) to a
 * fake Redis on a simulated port: one that is not there, one that takes
 * the connection and never answers, one that answers garbage, one that
 * answers a renew and then goes silent. Whatever it meets, the Cluster
 * must not crash or hang: it gives up within its op timeout, tells the
 * Manager matchmaking is down, and tries again with a growing, bounded
 * backoff. (Scripts against a real Redis: test_game_cluster_lua.c; the
 * whole cluster: tests/live/test_live_cluster.py.)
 */
#include "game_cluster.h"
#include "game_int.h"
#include "rt_stream.h"
#include "sim_world.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#define SEC RT_NS_PER_S
#define MS RT_NS_PER_MS
#define PORT 6379

typedef enum { FAKE_SILENT = 0, FAKE_GARBAGE, FAKE_ONE_RENEW } fake_mode_t;

typedef struct fake_redis {
  fake_mode_t mode;
  rt_listener_t *listener;
  rt_stream_t *conns[64];
  uint32_t accepted;
  uint64_t bytes_in;
  uint32_t renews_answered;
} fake_redis_t;

static void fake_behaviour(rt_actor_t *self, const rt_msg_t *msg) {
  fake_redis_t *f = rt_state(self);
  if (msg->tag == RT_TAG_ACCEPT) {
    rt_stream_t *s;
    while (rt_listener_accept(f->listener, &s) == 1) {
      cr_assert_lt(f->accepted, 64);
      f->conns[f->accepted++] = s;
      rt_stream_set_owner(s, rt_self(self));
    }
    return;
  }
  if (msg->tag != RT_TAG_STREAM)
    return;
  for (uint32_t i = 0; i < f->accepted; i++) {
    rt_stream_t *s = f->conns[i];
    if (s == NULL)
      continue;
    char buf[4096];
    int64_t n;
    while ((n = rt_stream_read(s, buf, sizeof(buf))) > 0) {
      f->bytes_in += (uint64_t)n;
      if (f->mode == FAKE_GARBAGE) {
        static const char junk[] = "?this is not RESP\r\n";
        (void)rt_stream_write(s, junk, sizeof(junk) - 1);
      } else if (f->mode == FAKE_ONE_RENEW && f->renews_answered == 0) {
        /* A renew's reply: {1, 0}. Then silence. */
        static const char ok[] = "*2\r\n:1\r\n:0\r\n";
        (void)rt_stream_write(s, ok, sizeof(ok) - 1);
        f->renews_answered++;
      }
    }
    if (n < 0) {
      rt_stream_close(s);
      f->conns[i] = NULL;
    }
  }
}

static void fake_stop(rt_actor_t *self, int reason) {
  (void)reason;
  fake_redis_t *f = rt_state(self);
  for (uint32_t i = 0; i < f->accepted; i++)
    if (f->conns[i] != NULL)
      rt_stream_close(f->conns[i]);
  rt_listener_close(f->listener);
}

typedef struct fx {
  sim_world_t *sw;
  rt_world_t *w;
  game_t *g;
  fake_redis_t fake;
} fx_t;

static void fx_start(fx_t *fx, bool with_fake, fake_mode_t mode) {
  memset(fx, 0, sizeof(*fx));
  sim_config_t sc = {.seed = 77, .log_level = RT_LOG_OFF};
  fx->sw = sim_world_create(&sc);
  fx->w = sim_world_rt(fx->sw);
  game_config_t cfg;
  game_config_defaults(&cfg);
  game_store_config_t st = {.path = ":memory:"};
  cr_assert_eq(
      game_create(fx->w, &cfg, "a-secret-for-the-cluster-test", &st, &fx->g),
      RT_OK);
  if (with_fake) {
    fx->fake.mode = mode;
    rt_actor_spec_t spec = {.name = "fake_redis",
                            .behaviour = fake_behaviour,
                            .on_stop = fake_stop,
                            .state = &fx->fake,
                            .mailbox_cap = 64};
    rt_actor_id_t id;
    cr_assert_eq(rt_spawn(fx->w, &spec, &id), RT_OK);
    cr_assert_eq(sim_listen(fx->sw, PORT, id, &fx->fake.listener), RT_OK);
  }
  game_cluster_config_t cc;
  game_cluster_config_defaults(&cc);
  cc.port = PORT;
  snprintf(cc.public_url, sizeof(cc.public_url), "ws://127.0.0.1:8080/ws");
  cr_assert_eq(game_cluster_start(fx->g, &cc), RT_OK);
}

static void fx_free(fx_t *fx) {
  sim_world_destroy(fx->sw);
  game_free(fx->g);
}

static game_cluster_stats_t stats(const fx_t *fx) {
  game_cluster_stats_t s;
  cr_assert_eq(game_cluster_get_stats(fx->g, &s), 1);
  return s;
}

Test(game_cluster, no_redis_is_retried_with_a_bounded_backoff) {
  fx_t fx;
  fx_start(&fx, false, FAKE_SILENT);
  sim_world_run(fx.sw, 60 * SEC, 0);
  game_cluster_stats_t s = stats(&fx);
  cr_assert_eq(s.up, 0);
  cr_assert_eq(s.connects, 0);
  /* Backoff from 100 ms doubling to 5 s, jittered in [b/2, b]: in 60 s
   * at least 60 / 5 tries, and far fewer than one per 100 ms. */
  uint64_t tries = s.redis_errors;
  cr_assert_geq(tries, 12, "tries %lu", (unsigned long)tries);
  cr_assert_leq(tries, 40, "tries %lu", (unsigned long)tries);
  fx_free(&fx);
}

Test(game_cluster, a_silent_redis_is_given_up_within_the_op_timeout) {
  fx_t fx;
  fx_start(&fx, true, FAKE_SILENT);
  sim_world_run(fx.sw, 2500 * MS, 0);
  cr_assert_eq(stats(&fx).redis_errors, 1, "dropped once within 2.5 s");
  cr_assert_gt(fx.fake.bytes_in, 0, "it was asked (the renew)");
  sim_world_run(fx.sw, 30 * SEC, 0);
  game_cluster_stats_t s = stats(&fx);
  cr_assert_eq(s.up, 0);
  cr_assert_geq(fx.fake.accepted, 3, "and tried again");
  cr_assert_eq(s.redis_errors, fx.fake.accepted);
  fx_free(&fx);
}

Test(game_cluster, garbage_from_redis_drops_the_link_not_the_server) {
  fx_t fx;
  fx_start(&fx, true, FAKE_GARBAGE);
  sim_world_run(fx.sw, 10 * SEC, 0);
  game_cluster_stats_t s = stats(&fx);
  cr_assert_eq(s.up, 0);
  cr_assert_eq(s.connects, 0);
  cr_assert_geq(s.redis_errors, 2);
  cr_assert_eq(s.redis_errors, fx.fake.accepted);
  fx_free(&fx);
}

Test(game_cluster, redis_gone_silent_after_joining_is_down_within_the_timeout) {
  fx_t fx;
  fx_start(&fx, true, FAKE_ONE_RENEW);
  sim_world_run(fx.sw, 500 * MS, 0);
  cr_assert_eq(stats(&fx).up, 1, "joined: the renew was answered");
  cr_assert(game__cluster_up(fx.g));
  /* The next renew (1 s) and polls get nothing: down by 1 s + 2 s. */
  sim_world_run(fx.sw, 3200 * MS, 0);
  game_cluster_stats_t s = stats(&fx);
  cr_assert_eq(s.up, 0);
  cr_assert_not(game__cluster_up(fx.g));
  cr_assert_eq(s.redis_errors, 1);
  fx_free(&fx);
}

/* ---- --redis URLs -------------------------------------------------------- */

typedef struct url_case {
  const char *url;
  const char *host; /* NULL: refused */
  uint16_t port;
  const char *user, *password;
} url_case_t;

/* What an operator may write, and what is refused with a sentence (never
 * naming the password): IPv4, localhost, IPv6 in brackets, credentials. */
Test(game_cluster, redis_urls_are_parsed_or_refused_with_a_reason) {
  static const url_case_t cases[] = {
      {"redis://127.0.0.1", "127.0.0.1", 6379, "", ""},
      {"redis://10.0.0.20:6380/", "10.0.0.20", 6380, "", ""},
      {"redis://localhost:7000", "127.0.0.1", 7000, "", ""},
      {"redis://[::1]", "::1", 6379, "", ""},
      {"redis://[::1]:6380", "::1", 6380, "", ""},
      {"redis://[fd00::20]:6379/", "fd00::20", 6379, "", ""},
      {"redis://[::ffff:10.0.0.1]:1", "::ffff:10.0.0.1", 1, "", ""},
      {"redis://:pw@[::1]:6380", "::1", 6380, "", "pw"},
      {"redis://u:p:w@127.0.0.1", "127.0.0.1", 6379, "u", "p:w"},
      {"redis://a@b:c@127.0.0.1", "127.0.0.1", 6379, "a@b", "c"},
      {"http://127.0.0.1", NULL, 0, NULL, NULL},
      {"redis://", NULL, 0, NULL, NULL},
      {"redis://:6379", NULL, 0, NULL, NULL},
      {"redis://example.com", NULL, 0, NULL, NULL},
      {"redis://10.0.0", NULL, 0, NULL, NULL},
      {"redis://127.0.0.1:", NULL, 0, NULL, NULL},
      {"redis://127.0.0.1:0", NULL, 0, NULL, NULL},
      {"redis://127.0.0.1:65536", NULL, 0, NULL, NULL},
      {"redis://127.0.0.1:6x", NULL, 0, NULL, NULL},
      {"redis://127.0.0.1/0", NULL, 0, NULL, NULL},
      {"redis://::1:6379", NULL, 0, NULL, NULL},
      {"redis://[::1", NULL, 0, NULL, NULL},
      {"redis://[]:6379", NULL, 0, NULL, NULL},
      {"redis://[::1]x", NULL, 0, NULL, NULL},
      {"redis://[::1]:", NULL, 0, NULL, NULL},
      {"redis://[127.0.0.1]", NULL, 0, NULL, NULL},
      {"redis://[localhost]", NULL, 0, NULL, NULL},
      {"redis://[:::1]", NULL, 0, NULL, NULL},
      {"redis://secret@127.0.0.1", NULL, 0, NULL, NULL},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    const url_case_t *k = &cases[i];
    game_cluster_config_t cfg;
    game_cluster_config_defaults(&cfg);
    const char *why = NULL;
    int rc = game_cluster_parse_url(k->url, &cfg, &why);
    if (k->host == NULL) {
      cr_assert_eq(rc, RT_EINVAL, "%s was taken", k->url);
      cr_assert(why != NULL && why[0] != '\0', "%s: no reason", k->url);
      cr_assert_null(strstr(why, "secret"), "%s: %s", k->url, why);
      continue;
    }
    cr_assert_eq(rc, RT_OK, "%s refused: %s", k->url, why);
    cr_assert_str_eq(cfg.host, k->host, "%s", k->url);
    cr_assert_eq(cfg.port, k->port, "%s: port %u", k->url, cfg.port);
    cr_assert_str_eq(cfg.user, k->user, "%s", k->url);
    cr_assert_str_eq(cfg.password, k->password, "%s", k->url);
  }
}
