/* bench-runtime: message throughput of the runtime in both worlds.
 *
 * A ring of N actors passes tokens: each actor forwards every token it gets
 * to the next actor until the token has made its hops. With T tokens in
 * flight the run queue stays busy, as it would with many rooms. Prints one
 * line per world with messages per second (wall clock: this is a benchmark,
 * not a test; the figures vary with the machine's load).
 */
#include "net_live.h"
#include "sim_world.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TAG_TOKEN (RT_TAG_USER + 1)

typedef struct ring {
  rt_actor_id_t *ids;
  uint32_t n;
  uint64_t remaining; /* deliveries left before the run is done */
  net_live_t *live;   /* NULL in the simulated world */
} ring_t;

typedef struct member {
  ring_t *ring;
  uint32_t index;
} member_t;

typedef struct token {
  uint64_t hops_left;
} token_t;

static void member_behaviour(rt_actor_t *self, const rt_msg_t *msg) {
  member_t *m = rt_state(self);
  ring_t *r = m->ring;
  token_t tok;
  RT_MSG_GET(msg, token_t, &tok);
  if (--r->remaining == 0 && r->live != NULL)
    net_live_stop(r->live);
  if (tok.hops_left == 0)
    return;
  tok.hops_left--;
  rt_msg_t out = RT_MSG_OF(TAG_TOKEN, &tok);
  int rc = rt_send(rt_actor_world(self), r->ids[(m->index + 1) % r->n], &out);
  if (rc != RT_PUSH_QUEUED) {
    fprintf(stderr, "send failed: %s\n", rt_strerror(rc));
    exit(1);
  }
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Spawn the ring and inject the tokens; returns the member states. */
static member_t *ring_setup(rt_world_t *w, ring_t *r, uint32_t actors,
                            uint32_t tokens, uint64_t messages) {
  r->n = actors;
  r->ids = calloc(actors, sizeof(*r->ids));
  member_t *members = calloc(actors, sizeof(*members));
  if (r->ids == NULL || members == NULL)
    exit(1);
  for (uint32_t i = 0; i < actors; i++) {
    members[i] = (member_t){.ring = r, .index = i};
    rt_actor_spec_t spec = {.name = "ring",
                            .behaviour = member_behaviour,
                            .state = &members[i],
                            .mailbox_cap = tokens + 1,
                            .overflow = RT_OVERFLOW_REJECT};
    if (rt_spawn(w, &spec, &r->ids[i]) < 0)
      exit(1);
  }
  uint64_t per_token = messages / tokens;
  r->remaining = per_token * tokens;
  for (uint32_t t = 0; t < tokens; t++) {
    token_t tok = {.hops_left = per_token - 1};
    rt_msg_t m = RT_MSG_OF(TAG_TOKEN, &tok);
    if (rt_send(w, r->ids[(uint64_t)t * actors / tokens], &m) < 0)
      exit(1);
  }
  return members;
}

static void report(const char *world, uint64_t messages, double secs,
                   uint64_t hash) {
  double rate = (double)messages / secs;
  printf("%s ring: %.1f M msgs/s (%.0f ns/msg, %.3f s", world, rate / 1e6,
         1e9 / rate, secs);
  if (hash != 0)
    printf(", run hash %016" PRIx64, hash);
  else
    printf(", run hash off");
  printf(")\n");
}

static double run_sim(uint32_t actors, uint32_t tokens, uint64_t messages,
                      uint64_t *hash_out) {
  sim_config_t cfg = {.seed = 1, .log_level = RT_LOG_OFF};
  sim_world_t *sw = sim_world_create(&cfg);
  ring_t r = {0};
  member_t *members =
      ring_setup(sim_world_rt(sw), &r, actors, tokens, messages);
  double t0 = now_s();
  sim_world_run(sw, RT_TIME_NEVER, 0);
  double dt = now_s() - t0;
  if (r.remaining != 0) {
    fprintf(stderr, "sim ring: %" PRIu64 " deliveries missing\n", r.remaining);
    exit(1);
  }
  *hash_out = rt_world_hash(sim_world_rt(sw));
  sim_world_destroy(sw);
  free(members);
  free(r.ids);
  return dt;
}

static double run_live(uint32_t actors, uint32_t tokens, uint64_t messages) {
  net_live_config_t cfg = {
      .seed = 1, .log_level = RT_LOG_WARN, .hash_disabled = true};
  net_live_t *live = net_live_create(&cfg);
  ring_t r = {.live = live};
  member_t *members =
      ring_setup(net_live_world(live), &r, actors, tokens, messages);
  double t0 = now_s();
  net_live_run(live);
  double dt = now_s() - t0;
  if (r.remaining != 0) {
    fprintf(stderr, "live ring: %" PRIu64 " deliveries missing\n", r.remaining);
    exit(1);
  }
  net_live_destroy(live);
  free(members);
  free(r.ids);
  return dt;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

#define RUNS_MAX 99

int main(int argc, char **argv) {
  uint32_t actors = 1000, tokens = 1000, runs = 5;
  uint64_t messages = 10000000;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--actors") == 0)
      actors = (uint32_t)strtoul(argv[i + 1], NULL, 10);
    else if (strcmp(argv[i], "--tokens") == 0)
      tokens = (uint32_t)strtoul(argv[i + 1], NULL, 10);
    else if (strcmp(argv[i], "--messages") == 0)
      messages = strtoull(argv[i + 1], NULL, 10);
    else if (strcmp(argv[i], "--runs") == 0)
      runs = (uint32_t)strtoul(argv[i + 1], NULL, 10);
  }
  if (actors == 0 || tokens == 0 || messages < tokens || runs == 0 ||
      runs > RUNS_MAX) {
    fprintf(stderr, "usage: bench-runtime [--actors N] [--tokens T] "
                    "[--messages M] [--runs R (1..99, median reported)]\n");
    return 2;
  }
  uint64_t total = messages / tokens * tokens;
  double sim[RUNS_MAX], live[RUNS_MAX];
  uint64_t hash = 0, first_hash = 0;
  /* Alternate the worlds so drift in machine load hits both alike. */
  for (uint32_t i = 0; i < runs; i++) {
    sim[i] = run_sim(actors, tokens, messages, &hash);
    if (i == 0)
      first_hash = hash;
    else if (hash != first_hash) {
      fprintf(stderr, "sim ring: hash changed between runs: nondeterminism\n");
      return 1;
    }
    live[i] = run_live(actors, tokens, messages);
  }
  qsort(sim, runs, sizeof(double), cmp_double);
  qsort(live, runs, sizeof(double), cmp_double);
  printf("ring of %u actors, %u tokens, %" PRIu64 " messages, median of %u "
         "runs, one core\n",
         actors, tokens, total, runs);
  report("sim", total, sim[runs / 2], hash);
  report("live", total, live[runs / 2], 0);
  return 0;
}
