#include "rt_rng.h"

#include "rt_assert.h"

/* GCC and Clang on 64-bit targets; __extension__ keeps -Wpedantic quiet. */
__extension__ typedef unsigned __int128 rt_u128;

uint64_t rt_splitmix64(uint64_t *state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

void rt_rng_init(rt_rng_t *rng, uint64_t seed, uint64_t key) {
  /* Mix the key in through its own splitmix step so that nearby keys (room 1,
   * room 2) start far apart. */
  uint64_t k = key;
  uint64_t state = seed ^ rt_splitmix64(&k);
  for (int i = 0; i < 4; i++)
    rng->s[i] = rt_splitmix64(&state);
  /* xoshiro must not start from all zeros; splitmix64 cannot yield four
   * zeros in a row, but say so. */
  RT_ASSERT((rng->s[0] | rng->s[1] | rng->s[2] | rng->s[3]) != 0);
}

static inline uint64_t rotl(uint64_t x, int k) {
  return (x << k) | (x >> (64 - k));
}

uint64_t rt_rng_next(rt_rng_t *rng) {
  uint64_t *s = rng->s;
  const uint64_t result = rotl(s[1] * 5, 7) * 9;
  const uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return result;
}

uint64_t rt_rng_below(rt_rng_t *rng, uint64_t bound) {
  RT_ASSERT(bound > 0);
  /* Lemire's nearly divisionless method on 128-bit products. */
  uint64_t x = rt_rng_next(rng);
  rt_u128 m = (rt_u128)x * bound;
  uint64_t low = (uint64_t)m;
  if (low < bound) {
    uint64_t threshold = -bound % bound;
    while (low < threshold) {
      x = rt_rng_next(rng);
      m = (rt_u128)x * bound;
      low = (uint64_t)m;
    }
  }
  return (uint64_t)(m >> 64);
}

int64_t rt_rng_range(rt_rng_t *rng, int64_t lo, int64_t hi) {
  RT_ASSERT(lo <= hi);
  uint64_t span = (uint64_t)hi - (uint64_t)lo;
  if (span == UINT64_MAX)
    return (int64_t)rt_rng_next(rng);
  return (int64_t)((uint64_t)lo + rt_rng_below(rng, span + 1));
}

double rt_rng_double(rt_rng_t *rng) {
  return (double)(rt_rng_next(rng) >> 11) * 0x1.0p-53;
}
