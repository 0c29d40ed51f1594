#include "game_bucket.h"

#define MICRO 1000000LL

void game_bucket_fill(game_bucket_t *b, uint32_t burst, rt_time_ns now) {
  b->tokens_u = (int64_t)burst * MICRO;
  b->at = now;
}

bool game_bucket_take(game_bucket_t *b, uint32_t rate, uint32_t burst,
                      rt_time_ns now) {
  int64_t cap = (int64_t)burst * MICRO;
  rt_time_ns elapsed = now - b->at;
  /* rate tokens a second are rate micro-tokens a microsecond. elapsed is
   * capped at the time a refill from empty takes, so the product cannot
   * overflow however long it was. */
  rt_time_ns full_after = (rt_time_ns)burst * RT_NS_PER_S / (rate ? rate : 1);
  if (elapsed > full_after)
    elapsed = full_after;
  int64_t tokens = b->tokens_u + elapsed * (int64_t)rate / 1000;
  b->tokens_u = tokens > cap ? cap : tokens;
  b->at = now;
  if (b->tokens_u < MICRO)
    return false;
  b->tokens_u -= MICRO;
  return true;
}
