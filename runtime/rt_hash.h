/* rt_hash.h: the 64-bit hashes behind run identities and checkpoints.
 *
 * Not cryptographic; chosen for speed and good avalanche so that any change
 * in a delivered message changes the run's hash. Word-at-a-time, so hashing a
 * message's inline payload costs a handful of multiplies.
 */
#ifndef RT_HASH_H
#define RT_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* The MurmurHash3 finaliser: a bijective 64-bit mixer. */
static inline uint64_t rt_mix64(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}

/* Fold one 64-bit value into a running hash. */
static inline uint64_t rt_hash_step(uint64_t h, uint64_t v) {
  return rt_mix64(h ^ (v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2)));
}

/* Hash `len` bytes at `data`, starting from `seed`. Borrows data. */
static inline uint64_t rt_hash_bytes(const void *data, size_t len,
                                     uint64_t seed) {
  const unsigned char *p = data;
  uint64_t h = seed ^ (len * 0x9e3779b97f4a7c15ULL);
  while (len >= 8) {
    uint64_t w;
    memcpy(&w, p, 8);
    h = rt_mix64(h ^ w) * 0x9e3779b97f4a7c15ULL;
    p += 8;
    len -= 8;
  }
  if (len > 0) {
    uint64_t w = 0;
    memcpy(&w, p, len);
    h = rt_mix64(h ^ w ^ ((uint64_t)len << 56));
  }
  return rt_mix64(h);
}

#endif
