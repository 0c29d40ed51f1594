/* rt_timer.c: the min-heap of timers, ordered by (deadline, seq): a 4-ary
 * heap whose entries carry their keys (runtime_int.h), so a sift reads one
 * array and not a timer per comparison; with tens of thousands of timers
 * (a connection holds several) the pointer chasing was most of a firing.
 * (deadline, seq) is a total order (seq is unique), so timers fire in the
 * same order whatever the heap's shape.
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

static void place(rt_timer_heap_t *h, uint32_t i, rt_timer_slot_t s) {
  h->items[i] = s;
  s.t->heap_index = i;
}

static void sift_up(rt_timer_heap_t *h, uint32_t i) {
  rt_timer_slot_t s = h->items[i];
  while (i > 0) {
    uint32_t parent = (i - 1) / ARITY;
    if (!earlier(&s, &h->items[parent]))
      break;
    place(h, i, h->items[parent]);
    i = parent;
  }
  place(h, i, s);
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
    place(h, i, h->items[best]);
    i = best;
  }
  place(h, i, s);
}

void rt_timer_heap_deinit(rt_timer_heap_t *h) {
  free(h->items);
  h->items = NULL;
  h->len = h->cap = 0;
}

int rt_timer_heap_push(rt_timer_heap_t *h, rt_timer_t *t) {
  RT_ASSERT(t->heap_index == UINT32_MAX);
  if (h->len == h->cap) {
    uint32_t cap = h->cap == 0 ? 64 : h->cap * 2;
    rt_timer_slot_t *items = realloc(h->items, (size_t)cap * sizeof(*items));
    if (items == NULL)
      return RT_ENOMEM;
    h->items = items;
    h->cap = cap;
  }
  h->len++;
  place(h, h->len - 1,
        (rt_timer_slot_t){.deadline = t->deadline, .seq = t->seq, .t = t});
  sift_up(h, h->len - 1);
  return RT_OK;
}

rt_timer_t *rt_timer_heap_peek(const rt_timer_heap_t *h) {
  return h->len > 0 ? h->items[0].t : NULL;
}

void rt_timer_heap_remove(rt_timer_heap_t *h, rt_timer_t *t) {
  uint32_t i = t->heap_index;
  RT_ASSERT(i < h->len);
  RT_ASSERT(h->items[i].t == t);
  /* Its key is the one it was pushed with: changed only out of the heap. */
  RT_ASSERT(h->items[i].deadline == t->deadline && h->items[i].seq == t->seq);
  t->heap_index = UINT32_MAX;
  h->len--;
  if (i == h->len)
    return;
  rt_timer_t *moved = h->items[h->len].t;
  place(h, i, h->items[h->len]);
  sift_down(h, i);
  sift_up(h, moved->heap_index);
}
