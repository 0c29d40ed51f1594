#include "rt_idmap.h"

#include "rt_assert.h"
#include "rt_err.h"

#include <stdbool.h>
#include <stdlib.h>

#define RT_IDMAP_SLOTS_MIN 16u
#define RT_IDMAP_SLOTS_MAX (1u << 30)

static uint32_t slot_of(const rt_idmap_t *m, uint64_t key) {
  /* Fibonacci hashing spreads sequential ids across the table. */
  return (uint32_t)((key * 0x9e3779b97f4a7c15ULL) >> 32) & m->mask;
}

static int alloc_slots(rt_idmap_t *m, uint32_t slots) {
  m->slots = calloc(slots, sizeof(*m->slots));
  if (m->slots == NULL)
    return RT_ENOMEM;
  m->mask = slots - 1;
  m->count = 0;
  return RT_OK;
}

int rt_idmap_init(rt_idmap_t *m) { return alloc_slots(m, RT_IDMAP_SLOTS_MIN); }

void rt_idmap_deinit(rt_idmap_t *m) {
  free(m->slots);
  m->slots = NULL;
  m->count = 0;
}

void *rt_idmap_get(const rt_idmap_t *m, uint64_t key) {
  RT_ASSERT(key != 0);
  for (uint32_t i = slot_of(m, key);; i = (i + 1) & m->mask) {
    const rt_idmap_slot_t *slot = &m->slots[i];
    if (slot->key == key)
      return slot->val;
    if (slot->key == 0)
      return NULL;
  }
}

static void insert_fresh(rt_idmap_t *m, uint64_t key, void *val) {
  uint32_t i = slot_of(m, key);
  while (m->slots[i].key != 0)
    i = (i + 1) & m->mask;
  m->slots[i] = (rt_idmap_slot_t){.key = key, .val = val};
  m->count++;
}

static int grow(rt_idmap_t *m) {
  uint32_t slots = (m->mask + 1) * 2;
  if (slots > RT_IDMAP_SLOTS_MAX)
    return RT_ELIMIT;
  rt_idmap_t bigger;
  int err = alloc_slots(&bigger, slots);
  if (err < 0)
    return err;
  for (uint32_t i = 0; i <= m->mask; i++)
    if (m->slots[i].key != 0)
      insert_fresh(&bigger, m->slots[i].key, m->slots[i].val);
  rt_idmap_deinit(m);
  *m = bigger;
  return RT_OK;
}

int rt_idmap_put(rt_idmap_t *m, uint64_t key, void *val) {
  RT_ASSERT(key != 0);
  RT_ASSERT(rt_idmap_get(m, key) == NULL);
  if ((m->count + 1) * 2 > m->mask + 1) {
    int err = grow(m);
    if (err < 0)
      return err;
  }
  insert_fresh(m, key, val);
  return RT_OK;
}

void *rt_idmap_del(rt_idmap_t *m, uint64_t key) {
  uint32_t i = slot_of(m, key);
  while (m->slots[i].key != key) {
    if (m->slots[i].key == 0)
      return NULL;
    i = (i + 1) & m->mask;
  }
  void *val = m->slots[i].val;
  /* Backward-shift deletion: pull later members of the probe run into the
   * hole so lookups never stop early. */
  uint32_t hole = i;
  for (uint32_t j = (i + 1) & m->mask; m->slots[j].key != 0;
       j = (j + 1) & m->mask) {
    uint32_t home = slot_of(m, m->slots[j].key);
    /* Move j into the hole unless its home lies cyclically in (hole, j]. */
    bool home_between =
        hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
    if (!home_between) {
      m->slots[hole] = m->slots[j];
      hole = j;
    }
  }
  m->slots[hole] = (rt_idmap_slot_t){.key = 0, .val = NULL};
  m->count--;
  return val;
}

/* Ascending, in place: an LSD radix sort, 11 bits a pass and only as many
 * passes as the largest key needs (ids are small: two or three). The
 * checks sort every actor's id on every check; qsort through a comparator
 * was 4% of a 4,000-player simulated cluster. Stable, so the result is
 * what any sort gives (keys are distinct). 0, or RT_ENOMEM. */
#define RADIX_BITS 11u
#define RADIX (1u << RADIX_BITS)
static int sort_u64(uint64_t *a, uint32_t n) {
  if (n < 2)
    return RT_OK;
  uint64_t all = 0;
  for (uint32_t i = 0; i < n; i++)
    all |= a[i];
  uint64_t *tmp = malloc((size_t)n * sizeof(*tmp));
  if (tmp == NULL)
    return RT_ENOMEM;
  uint64_t *from = a, *to = tmp;
  for (uint32_t shift = 0; shift < 64 && (all >> shift) != 0;
       shift += RADIX_BITS) {
    uint32_t count[RADIX] = {0};
    for (uint32_t i = 0; i < n; i++)
      count[(from[i] >> shift) & (RADIX - 1)]++;
    uint32_t sum = 0;
    for (uint32_t d = 0; d < RADIX; d++) {
      uint32_t c = count[d];
      count[d] = sum;
      sum += c;
    }
    for (uint32_t i = 0; i < n; i++)
      to[count[(from[i] >> shift) & (RADIX - 1)]++] = from[i];
    uint64_t *swap = from;
    from = to;
    to = swap;
  }
  if (from != a)
    for (uint32_t i = 0; i < n; i++)
      a[i] = from[i];
  free(tmp);
  return RT_OK;
}

uint64_t *rt_idmap_sorted_keys(const rt_idmap_t *m, uint32_t *n_out) {
  uint64_t *keys =
      malloc((size_t)(m->count > 0 ? m->count : 1) * sizeof(*keys));
  if (keys == NULL) {
    *n_out = 0;
    return NULL;
  }
  uint32_t n = 0;
  for (uint32_t i = 0; i <= m->mask; i++)
    if (m->slots[i].key != 0)
      keys[n++] = m->slots[i].key;
  RT_ASSERT(n == m->count);
  if (sort_u64(keys, n) < 0) {
    free(keys);
    *n_out = 0;
    return NULL;
  }
  *n_out = n;
  return keys;
}

int rt_idmap_check_each(const rt_idmap_t *m, rt_idmap_check_fn *fn, void *ctx) {
  int rc = 0;
  for (uint32_t i = 0; i <= m->mask && rc == 0; i++)
    if (m->slots[i].key != 0)
      rc = fn(ctx, m->slots[i].key, m->slots[i].val);
  if (rc == 0)
    return 0;
  uint32_t n = 0;
  uint64_t *keys = rt_idmap_sorted_keys(m, &n);
  if (keys == NULL)
    return rc; /* out of memory: the failure found stands */
  int again = 0;
  for (uint32_t i = 0; i < n && again == 0; i++)
    again = fn(ctx, keys[i], rt_idmap_get(m, keys[i]));
  free(keys);
  RT_ASSERT(again != 0); /* fn is pure: what failed fails again */
  return again;
}
