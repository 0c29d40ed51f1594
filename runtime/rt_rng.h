/* rt_rng.h: the project's only source of randomness.
 *
 * xoshiro256** (Blackman and Vigna), seeded through splitmix64. Each
 * subsystem draws from its own stream, derived from the world seed and a
 * stream key, so adding draws in one subsystem never shifts another's
 * sequence and the order in which streams are created does not matter.
 * Never rand(): it is global state and differs between libcs.
 */
#ifndef RT_RNG_H
#define RT_RNG_H

#include <stdint.h>

typedef struct rt_rng {
  uint64_t s[4];
} rt_rng_t;

/* Stream keys: one band per subsystem, an index inside it. */
#define RT_RNG_KEY(subsystem, index)                                           \
  (((uint64_t)(subsystem) << 48) ^ (uint64_t)(index))

enum {
  RT_RNG_SUB_WORLD = 1,     /* the world's own draws */
  RT_RNG_SUB_SIM_NET = 2,   /* simulated links: jitter */
  RT_RNG_SUB_SIM_FAULT = 3, /* fault schedules */
  RT_RNG_SUB_ROOM = 4,      /* one stream per game room */
  RT_RNG_SUB_BOT = 5,       /* simulated players */
  RT_RNG_SUB_TEST = 6,      /* tests and benchmarks */
  RT_RNG_SUB_NET = 7,       /* live-world needs (e.g. WebSocket masks) */
};

/* A stream of seed `seed` and key `key`. Distinct keys give independent
 * streams; the same (seed, key) always gives the same sequence. */
void rt_rng_init(rt_rng_t *rng, uint64_t seed, uint64_t key);

uint64_t rt_rng_next(rt_rng_t *rng);

/* Uniform in [0, bound); bound > 0. Unbiased (Lemire's method). */
uint64_t rt_rng_below(rt_rng_t *rng, uint64_t bound);

/* Uniform in [lo, hi], inclusive; lo <= hi. */
int64_t rt_rng_range(rt_rng_t *rng, int64_t lo, int64_t hi);

/* Uniform double in [0, 1) with 53 random bits. */
double rt_rng_double(rt_rng_t *rng);

/* splitmix64 step: also a good 64-bit mixer for seeds. */
uint64_t rt_splitmix64(uint64_t *state);

#endif
