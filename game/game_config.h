/* game_config.h: every rule's number, with PROTOCOL.md's defaults.
 *
 * The server takes them as flags (--countdown, --game-length, ...) so that
 * tests, benchmarks and the browser test can run short games.
 */
#ifndef GAME_CONFIG_H
#define GAME_CONFIG_H

#include "rt_msg.h"

#include <stdint.h>

typedef struct game_config {
  rt_time_ns countdown;       /* GAME_START to the first counted second: 5 s */
  uint32_t game_seconds;      /* 60 */
  rt_time_ns tick;            /* 1 s */
  rt_time_ns reconnect_grace; /* 10 s */
  uint32_t golden_min_s;      /* 5 */
  uint32_t golden_max_s;      /* 10 (inclusive) */
  rt_time_ns bonus;           /* 3 s of double points */
  uint32_t click_rate;        /* tokens per second, 30; 0: no limit */
  uint32_t click_burst;       /* bucket size, 30 */
  uint32_t in_rate;           /* flood guard: messages per second a
                                 connection may send on average, 60 */
  uint32_t in_burst;          /* and at once, 120; beyond: 1008 */
  rt_time_ns write_wait;      /* output stuck this long: 1008; 10 s */
  uint32_t out_count_max;     /* Client outbound queue: messages, 64 */
  uint32_t out_bytes_max;     /* and bytes, 32 KiB */
  uint32_t conn_high_water;   /* hand frames to the connection while its
                                 backlog is below this, 16 KiB */
  rt_time_ns drain_poll;      /* while held back by the backlog, look again
                                 this often: a socket's queue drains with no
                                 event to tell us, 50 ms */
  uint64_t seed;              /* rooms' random streams (0: the world seed) */
  int64_t token_lifetime_s;   /* 24 h */
  rt_time_ns lobby_idle;      /* a connection in the lobby (not queued,
                                 not in a game) that sends nothing this
                                 long is closed, 4002 "idle": 10 min;
                                 0: never */
  uint32_t players_max;       /* connected players, 100,000 */
  uint32_t queue_max;         /* waiting players, 100,000 */
} game_config_t;

/* PROTOCOL.md's defaults. */
void game_config_defaults(game_config_t *cfg);

/* 0, or RT_EINVAL with a static explanation in *why. */
int game_config_check(const game_config_t *cfg, const char **why);

#endif
