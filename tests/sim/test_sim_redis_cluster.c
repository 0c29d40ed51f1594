/* test_sim_redis_cluster.c: the Redis model serving the Cluster's own code.
 *
 * The real Cluster actor (game/game_cluster.c) joins through
 * rt_stream_connect in a simulated world, which reaches the model's port:
 * AUTH and the first renew pipelined, renews every second, the inbox
 * polled every 50 ms. It must come up and stay up with no error, leave
 * its lease and incarnation where game_cluster.h says, lose the link when
 * the model crashes and join again by itself, with the data or without it
 * (then a new lease on an empty Redis). A model that answered one of
 * those commands wrongly would show here as errors or a Cluster that
 * never comes up.
 */
#include "game_cluster.h"
#include "game_int.h"
#include "sim_redis.h"
#include "sim_world.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#define SEC RT_NS_PER_S
#define MS RT_NS_PER_MS
#define PORT 6379

typedef struct cfx {
  sim_world_t *sw;
  rt_world_t *w;
  game_t *g;
  sim_redis_t *m;
  sim_redis_buf_t out;
} cfx_t;

static void cfx_start(cfx_t *fx, const char *password) {
  memset(fx, 0, sizeof(*fx));
  sim_config_t sc = {.seed = 91, .log_level = RT_LOG_OFF};
  fx->sw = sim_world_create(&sc);
  fx->w = sim_world_rt(fx->sw);
  sim_redis_config_t rc = {0};
  snprintf(rc.requirepass, sizeof(rc.requirepass), "%s", password);
  fx->m = sim_redis_create(&rc);
  cr_assert_not_null(fx->m);
  cr_assert_eq(sim_redis_listen(fx->m, fx->sw, PORT), RT_OK);
  sim_redis_buf_init(&fx->out);
  game_config_t cfg;
  game_config_defaults(&cfg);
  game_store_config_t st = {.path = ":memory:"};
  cr_assert_eq(
      game_create(fx->w, &cfg, "a-secret-for-the-cluster-test", &st, &fx->g),
      RT_OK);
  game_cluster_config_t cc;
  game_cluster_config_defaults(&cc);
  cc.port = PORT;
  snprintf(cc.password, sizeof(cc.password), "%s", password);
  snprintf(cc.public_url, sizeof(cc.public_url), "ws://10.0.0.1:8080/ws");
  cr_assert_eq(game_cluster_start(fx->g, &cc), RT_OK);
}

static void cfx_free(cfx_t *fx) {
  sim_world_destroy(fx->sw);
  game_free(fx->g);
  sim_redis_buf_deinit(&fx->out);
  sim_redis_destroy(fx->m);
}

static game_cluster_stats_t stats(const cfx_t *fx) {
  game_cluster_stats_t s;
  cr_assert_eq(game_cluster_get_stats(fx->g, &s), 1);
  return s;
}

/* A command straight to the model, at the world's time; its reply. */
static const char *ask(cfx_t *fx, const char *a0, const char *a1,
                       const char *a2) {
  const char *argv[3] = {a0, a1, a2};
  size_t lens[3] = {strlen(a0), strlen(a1), a2 != NULL ? strlen(a2) : 0};
  sim_redis_buf_reset(&fx->out);
  cr_assert_eq(sim_redis_command(fx->m, NULL, a2 != NULL ? 3 : 2, argv, lens,
                                 rt_now(fx->w), &fx->out),
               RT_OK);
  sim_redis_buf_t *b = &fx->out;
  cr_assert_lt(b->len, b->cap);
  b->data[b->len] = '\0';
  return (const char *)b->data;
}

/* The incarnation's lease holds the public URL, and it is watched. */
static void check_lease(cfx_t *fx) {
  char key[128];
  snprintf(key, sizeof(key), "oc:lease:%s", game_cluster_epoch(fx->g));
  cr_assert_str_eq(ask(fx, "GET", key, NULL),
                   "$21\r\nws://10.0.0.1:8080/ws\r\n");
  cr_assert_str_eq(ask(fx, "SISMEMBER", "oc:epochs", game_cluster_epoch(fx->g)),
                   ":1\r\n");
}

Test(sim_redis_cluster, the_cluster_joins_and_stays_up) {
  cfx_t fx;
  cfx_start(&fx, "");
  sim_world_run(fx.sw, 10 * SEC, 0);
  game_cluster_stats_t s = stats(&fx);
  cr_assert_eq(s.up, 1);
  cr_assert_eq(s.redis_errors, 0);
  cr_assert_eq(s.connects, 1);
  cr_assert_geq(s.lease_renewals, 9, "a renew a second");
  cr_assert_geq(s.round_trips, 150, "and the polls");
  check_lease(&fx);
  sim_redis_stats_t ms;
  sim_redis_get_stats(fx.m, &ms);
  cr_assert_eq(ms.errors, 0, "no command was refused");
  cfx_free(&fx);
}

Test(sim_redis_cluster, the_cluster_authenticates_with_its_password) {
  cfx_t fx;
  cfx_start(&fx, "s3cret pw");
  sim_world_run(fx.sw, 3 * SEC, 0);
  game_cluster_stats_t s = stats(&fx);
  cr_assert_eq(s.up, 1);
  cr_assert_eq(s.redis_errors, 0);
  check_lease(&fx);
  cfx_free(&fx);
}

Test(sim_redis_cluster, after_a_crash_the_cluster_joins_again) {
  cfx_t fx;
  cfx_start(&fx, "");
  sim_world_run(fx.sw, 3 * SEC, 0);
  cr_assert_eq(stats(&fx).up, 1);
  /* Back at once with the data: the same incarnation renews on. */
  char before[GAME_CLUSTER_ID_MAX + 16];
  snprintf(before, sizeof(before), "%s", game_cluster_epoch(fx.g));
  cr_assert_eq(sim_redis_restart(fx.m, true), RT_OK);
  sim_world_run(fx.sw, 10 * SEC, 0);
  game_cluster_stats_t s = stats(&fx);
  cr_assert_eq(s.up, 1);
  cr_assert_geq(s.reconnects, 1);
  cr_assert_str_eq(game_cluster_epoch(fx.g), before);
  check_lease(&fx);
  /* Down for 4 s and back empty: a new lease on an empty Redis. */
  sim_redis_stop(fx.m);
  sim_world_run(fx.sw, 14 * SEC, 0);
  cr_assert_eq(stats(&fx).up, 0);
  sim_redis_flush(fx.m);
  cr_assert_eq(sim_redis_listen(fx.m, fx.sw, PORT), RT_OK);
  sim_world_run(fx.sw, 30 * SEC, 0);
  cr_assert_eq(stats(&fx).up, 1);
  check_lease(&fx);
  cfx_free(&fx);
}
