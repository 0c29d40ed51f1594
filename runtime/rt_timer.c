/* rt_timer.c: the binary min-heap of timers, ordered by (deadline, seq).
 * The world's timer API (start, cancel, fire) is in rt_world.c. */
#include "runtime_int.h"

#include "rt_assert.h"

#include <stdlib.h>

static bool earlier(const rt_timer_t *a, const rt_timer_t *b) {
  if (a->deadline != b->deadline)
    return a->deadline < b->deadline;
  return a->seq < b->seq;
}

static void place(rt_timer_heap_t *h, uint32_t i, rt_timer_t *t) {
  h->items[i] = t;
  t->heap_index = i;
}

static void sift_up(rt_timer_heap_t *h, uint32_t i) {
  rt_timer_t *t = h->items[i];
  while (i > 0) {
    uint32_t parent = (i - 1) / 2;
    if (!earlier(t, h->items[parent]))
      break;
    place(h, i, h->items[parent]);
    i = parent;
  }
  place(h, i, t);
}

static void sift_down(rt_timer_heap_t *h, uint32_t i) {
  rt_timer_t *t = h->items[i];
  for (;;) {
    uint32_t child = 2 * i + 1;
    if (child >= h->len)
      break;
    if (child + 1 < h->len && earlier(h->items[child + 1], h->items[child]))
      child++;
    if (!earlier(h->items[child], t))
      break;
    place(h, i, h->items[child]);
    i = child;
  }
  place(h, i, t);
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
    rt_timer_t **items = realloc(h->items, (size_t)cap * sizeof(*items));
    if (items == NULL)
      return RT_ENOMEM;
    h->items = items;
    h->cap = cap;
  }
  h->len++;
  place(h, h->len - 1, t);
  sift_up(h, h->len - 1);
  return RT_OK;
}

rt_timer_t *rt_timer_heap_peek(const rt_timer_heap_t *h) {
  return h->len > 0 ? h->items[0] : NULL;
}

void rt_timer_heap_remove(rt_timer_heap_t *h, rt_timer_t *t) {
  uint32_t i = t->heap_index;
  RT_ASSERT(i < h->len);
  RT_ASSERT(h->items[i] == t);
  t->heap_index = UINT32_MAX;
  h->len--;
  if (i == h->len)
    return;
  rt_timer_t *moved = h->items[h->len];
  place(h, i, moved);
  sift_down(h, i);
  sift_up(h, moved->heap_index);
}
