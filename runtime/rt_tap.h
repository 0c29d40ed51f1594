/* rt_tap.h: watching what crosses the world seam, to record or replay it.
 *
 * A live run is a function of its inputs: the clock at each pass, which
 * sources the backend signalled, every byte a read returned, how much each
 * write took, what each accept gave, and results from outside the world
 * that are not bytes on a stream (a storage query, a token check). A tap
 * sees each of them, in the order they happened, so a recorder (net/) can
 * write them down and a replay (sim/) can feed them back in that order to
 * the same actors and get the same run.
 *
 * What the runtime reports, and when:
 *  - driver calls, always outside turns: the clock set to a new value
 *    (time), a pump, timer firing or run (drive, then drive_end with the
 *    turns run), and notifications a backend raised from outside any turn
 *    (notify; an actor re-arming its own stream inside a turn is not an
 *    input: a replay re-does it by itself);
 *  - stream calls, inside turns: read (the bytes), write (what was offered
 *    and how much was taken), backlog, accept, shutdown and close;
 *  - externals: rt_external_take asks the tap for a recorded result first
 *    (a replay answers; then the caller must not compute it), and
 *    rt_external_put hands it a computed one (a recorder writes it down).
 *
 * Outputs are checked, not recorded: while a tap is set the runtime folds
 * every byte a write accepted into a hash per stream and one per world
 * (rt_world_output_hash), which recorders write as checkpoints and replays
 * compare.
 *
 * Every hook may be NULL. A world without a tap pays one predictable branch
 * per call. Hooks must not call into the world, except that `close` may read
 * the stream it is given.
 */
#ifndef RT_TAP_H
#define RT_TAP_H

#include "rt_stream.h"
#include "rt_world.h"

#include <stddef.h>
#include <stdint.h>

/* What a driver call did (rt_tap_t.drive). */
typedef enum rt_drive {
  RT_DRIVE_PUMP = 1, /* rt_world_pump */
  RT_DRIVE_FIRE = 2, /* rt_world_fire_timers */
  RT_DRIVE_RUN = 3,  /* rt_world_run_ready */
} rt_drive_t;

typedef struct rt_tap {
  void (*time)(void *ctx, rt_time_ns now);
  void (*drive)(void *ctx, rt_drive_t kind, uint32_t turns_max);
  /* turns: what the call returned (timers fired, for RT_DRIVE_FIRE). */
  void (*drive_end)(void *ctx, rt_drive_t kind, uint32_t result);
  /* A stream's or listener's id (they share one numbering). */
  void (*notify)(void *ctx, uint64_t source, uint32_t events);
  /* rc as the accept returned it; stream: the new stream's id when rc 1. */
  void (*accept)(void *ctx, uint64_t listener, int rc, uint64_t stream);
  /* An outbound connect (rt_stream_connect) to host:port: rc as it
   * returned, and the new stream's id when rc is 0. */
  void (*connect)(void *ctx, const char *host, uint16_t port, int rc,
                  uint64_t stream);
  /* rc as the read returned it; buf holds rc bytes when rc > 0. */
  void (*read)(void *ctx, uint64_t stream, int64_t rc, const void *buf);
  /* len bytes offered at buf; rc as the write returned it. */
  void (*write)(void *ctx, uint64_t stream, const void *buf, size_t len,
                int64_t rc);
  void (*backlog)(void *ctx, uint64_t stream, size_t value);
  void (*shutdown)(void *ctx, uint64_t stream);
  /* Just before the backend frees s: its totals and output hash are final. */
  void (*close)(void *ctx, const rt_stream_t *s);
  /* A replay: 1 with the recorded result (*data borrowed until the next
   * call into the tap), or a negative error when the recording has another
   * input here (the replay has diverged; the caller fails the operation).
   * A recorder leaves take NULL. */
  int (*take)(void *ctx, uint32_t kind, int64_t *rc, const uint8_t **data,
              size_t *len);
  void (*put)(void *ctx, uint32_t kind, int64_t rc, const void *data,
              size_t len);
} rt_tap_t;

/* Set (or with NULL, clear) the world's tap; tap and ctx are borrowed until
 * cleared or the world is destroyed. Outside turns. */
void rt_world_set_tap(rt_world_t *w, const rt_tap_t *tap, void *ctx);
bool rt_world_tapped(const rt_world_t *w);

/* The hash of every byte written and accepted on any stream, in order, while
 * a tap was set (stream id and bytes folded in); 0 before. */
uint64_t rt_world_output_hash(const rt_world_t *w);

/* The actor whose behaviour is running (0 outside turns); *name (may be
 * NULL) gets its spec name. For reports. */
rt_actor_id_t rt_world_current(const rt_world_t *w, const char **name);

/* The spec name of a live actor, or NULL. */
const char *rt_actor_name(const rt_world_t *w, rt_actor_id_t id);

/* ---- Externals --------------------------------------------------------------
 * A result from outside the world that arrives by a call rather than on a
 * stream: kinds are the caller's (game_int.h numbers its own). The pattern:
 *
 *   int64_t rc; const uint8_t *data; size_t len;
 *   int got = rt_external_take(w, KIND, &rc, &data, &len);
 *   if (got < 0) fail the operation;            (replay diverged)
 *   if (got == 0) { compute rc and data; rt_external_put(w, KIND, rc, ...); }
 *   use rc and data.
 */

/* 1: *rc, *data and *len hold the recorded result (data borrowed until the
 * next world call); 0: compute it; or a negative error (see rt_tap_t.take). */
int rt_external_take(rt_world_t *w, uint32_t kind, int64_t *rc,
                     const uint8_t **data, size_t *len);
/* The computed result, for a recorder; borrowed for the call. */
void rt_external_put(rt_world_t *w, uint32_t kind, int64_t rc, const void *data,
                     size_t len);

#endif
