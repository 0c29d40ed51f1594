/* rt_idmap.h: a map from nonzero 64-bit ids to pointers.
 *
 * Linear probing with backward-shift deletion (no tombstones); the load stays
 * at most 1/2, so lookups are one or two probes. Key 0 marks an empty slot:
 * ids start at 1. Slot order is never used for anything that affects a run;
 * rt_idmap_sorted_keys iterates by id (rt_idmap_check_each walks slots only
 * to learn that every entry passes, or for a pass that no order changes).
 */
#ifndef RT_IDMAP_H
#define RT_IDMAP_H

#include <stdint.h>

/* A key and its value side by side: a lookup touches one cache line, not
 * one in a key array and another in a value array (with thousands of
 * connections the map is far larger than the L1, and every message sent
 * looks its receiver up here). */
typedef struct rt_idmap_slot {
  uint64_t key;
  void *val;
} rt_idmap_slot_t;

typedef struct rt_idmap {
  rt_idmap_slot_t *slots;
  uint32_t mask; /* slots - 1; slots is a power of two */
  uint32_t count;
} rt_idmap_t;

int rt_idmap_init(rt_idmap_t *m);
void rt_idmap_deinit(rt_idmap_t *m);
void *rt_idmap_get(const rt_idmap_t *m, uint64_t key);
/* key must not be present: RT_ENOMEM or RT_ELIMIT when it cannot grow. */
int rt_idmap_put(rt_idmap_t *m, uint64_t key, void *val);
/* Removes and returns the value, or NULL when absent. */
void *rt_idmap_del(rt_idmap_t *m, uint64_t key);
/* All keys, ascending, in a malloc'd array (the caller frees); *n_out.
 * NULL (and *n_out 0) when out of memory. */
uint64_t *rt_idmap_sorted_keys(const rt_idmap_t *m, uint32_t *n_out);

/* A check of every entry: fn(ctx, key, val) for each until one answers
 * nonzero, which is returned (0: all passed). fn must be pure (the same
 * answer twice, no effect beyond its ctx). The entries are walked in slot
 * order, with no sort and no lookup per key (a run checks thousands of
 * actors ten times a simulated second); when one fails, they are walked
 * again by ascending key, so the entry a failure names is the smallest
 * failing key, as a walk by rt_idmap_sorted_keys would name (slot order
 * decides nothing). An fn that always answers 0 makes it a plain walk in
 * slot order, for a pass whose outcome does not depend on the order (its
 * effects on ctx then need not be pure: nothing is walked twice). */
typedef int rt_idmap_check_fn(void *ctx, uint64_t key, const void *val);
int rt_idmap_check_each(const rt_idmap_t *m, rt_idmap_check_fn *fn, void *ctx);

#endif
