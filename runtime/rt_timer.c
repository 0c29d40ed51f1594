/* rt_timer.c: the min-heap of timers, ordered by (deadline, seq): a 4-ary
 * heap whose entries carry their keys (runtime_int.h), so a sift reads one
 * array and not a timer per comparison; with tens of thousands of timers
 * (a connection holds several) the pointer chasing was most of a firing.
 * Cancels are lazy (runtime_int.h), so a sift writes to no timer either.
 * (deadline, seq) is a total order (seq is unique), so timers fire in the
 * same order whatever the heap's shape, and dead entries change nothing
 * but its shape: the top is always live.
 * The world's timer API (start, cancel, fire) is in rt_world.c. */
#include "runtime_int.h"

#include "rt_assert.h"

#include <stdlib.h>

#define ARITY 4u

static bool earlier(const rt_timer_slot_t *a, const rt_timer_slot_t *b) {
  if (a->deadline != b->deadline)
    return a->deadline < b->deadline;
  return a->seq < b->seq;
}

static void sift_up(rt_timer_heap_t *h, uint32_t i) {
  rt_timer_slot_t s = h->items[i];
  while (i > 0) {
    uint32_t parent = (i - 1) / ARITY;
    if (!earlier(&s, &h->items[parent]))
      break;
    h->items[i] = h->items[parent];
    i = parent;
  }
  h->items[i] = s;
}

static void sift_down(rt_timer_heap_t *h, uint32_t i) {
  rt_timer_slot_t s = h->items[i];
  for (;;) {
    uint32_t first = ARITY * i + 1;
    if (first >= h->len)
      break;
    uint32_t end = first + ARITY < h->len ? first + ARITY : h->len;
    uint32_t best = first;
    for (uint32_t c = first + 1; c < end; c++)
      if (earlier(&h->items[c], &h->items[best]))
        best = c;
    if (!earlier(&h->items[best], &s))
      break;
    h->items[i] = h->items[best];
    i = best;
  }
  h->items[i] = s;
}

/* The top leaves the heap (its timer untouched). */
static rt_timer_t *take_top(rt_timer_heap_t *h) {
  rt_timer_t *t = h->items[0].t;
  h->len--;
  if (h->len > 0) {
    h->items[0] = h->items[h->len];
    sift_down(h, 0);
  }
  return t;
}

/* Dead entries that reached the top are freed: the top is live again. */
static void drop_dead_top(rt_timer_heap_t *h) {
  while (h->len > 0 && h->items[0].t->dead) {
    rt_timer_t *t = take_top(h);
    h->dead--;
    free(t);
  }
}

/* Every dead entry freed, the live ones heapified anew. */
static void rebuild(rt_timer_heap_t *h) {
  uint32_t kept = 0;
  for (uint32_t i = 0; i < h->len; i++) {
    if (h->items[i].t->dead)
      free(h->items[i].t);
    else
      h->items[kept++] = h->items[i];
  }
  h->len = kept;
  h->dead = 0;
  for (uint32_t i = kept > 1 ? (kept - 2) / ARITY + 1 : 0; i-- > 0;)
    sift_down(h, i);
}

void rt_timer_heap_deinit(rt_timer_heap_t *h) {
  for (uint32_t i = 0; i < h->len; i++)
    if (h->items[i].t->dead)
      free(h->items[i].t);
  free(h->items);
  h->items = NULL;
  h->len = h->cap = h->dead = 0;
}

int rt_timer_heap_push(rt_timer_heap_t *h, rt_timer_t *t) {
  RT_ASSERT(!t->in_heap && !t->dead);
  if (h->len == h->cap) {
    uint32_t cap = h->cap == 0 ? 64 : h->cap * 2;
    rt_timer_slot_t *items = realloc(h->items, (size_t)cap * sizeof(*items));
    if (items == NULL)
      return RT_ENOMEM;
    h->items = items;
    h->cap = cap;
  }
  t->in_heap = true;
  h->items[h->len] =
      (rt_timer_slot_t){.deadline = t->deadline, .seq = t->seq, .t = t};
  h->len++;
  sift_up(h, h->len - 1);
  return RT_OK;
}

rt_timer_t *rt_timer_heap_peek(const rt_timer_heap_t *h) {
  return h->len > 0 ? h->items[0].t : NULL;
}

rt_timer_t *rt_timer_heap_pop(rt_timer_heap_t *h) {
  RT_ASSERT(h->len > 0);
  rt_timer_t *t = take_top(h);
  RT_ASSERT(!t->dead);
  /* Its key is the one it was pushed with: changed only out of the heap. */
  t->in_heap = false;
  drop_dead_top(h);
  return t;
}

void rt_timer_heap_kill(rt_timer_heap_t *h, rt_timer_t *t) {
  RT_ASSERT(t->in_heap && !t->dead);
  t->dead = true;
  h->dead++;
  if (h->items[0].t == t)
    drop_dead_top(h);
  else if (h->dead >= RT_TIMER_HEAP_DEAD_MIN && h->dead > h->len - h->dead)
    rebuild(h);
}
