/* game_bucket.h: a token bucket on world time, in integer micro-tokens so
 * that a run replays exactly.
 *
 * `rate` tokens per second accrue up to `burst`; each take spends one. The
 * Room meters a seat's clicks with one (PROTOCOL.md's human rate), the
 * Client every message of its connection (the flood guard).
 */
#ifndef GAME_BUCKET_H
#define GAME_BUCKET_H

#include "rt_msg.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct game_bucket {
  int64_t tokens_u; /* micro-tokens */
  rt_time_ns at;    /* when tokens_u was last brought up to date */
} game_bucket_t;

/* A full bucket at `now`. */
void game_bucket_fill(game_bucket_t *b, uint32_t burst, rt_time_ns now);

/* Spend one token at `now`; false (nothing spent) when there is none. */
bool game_bucket_take(game_bucket_t *b, uint32_t rate, uint32_t burst,
                      rt_time_ns now);

#endif
