/* runtime_int.h: internals shared inside runtime/. Not for other layers. */
#ifndef RUNTIME_INT_H
#define RUNTIME_INT_H

#include "rt_idmap.h"
#include "rt_signal.h"
#include "rt_tap.h"
#include "rt_world.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- Timer heap ---------------------------------------------------------- */
typedef struct rt_timer {
  rt_signal_t sig; /* linked into the owner's pending list once fired */
  uint64_t id;
  rt_time_ns deadline;
  uint64_t seq;        /* tie-breaker: start order */
  rt_time_ns period;   /* 0: one-shot */
  bool in_heap;        /* an entry of the heap is this timer */
  bool dead;           /* cancelled while in the heap: freed when it leaves */
  uint32_t missed;     /* firings coalesced while pending */
  rt_actor_t *owner;   /* NULL for function timers */
  struct rt_timer *owner_prev, *owner_next; /* owner's timer list */
  uint16_t tag;
  uint64_t data;
  rt_timer_fn *fn;
  void *fn_arg;
} rt_timer_t;

/* A heap entry holds its timer's key, so sifting compares within the
 * array and never touches a timer. */
typedef struct rt_timer_slot {
  rt_time_ns deadline;
  uint64_t seq;
  rt_timer_t *t;
} rt_timer_slot_t;

/* Cancelling is lazy: a cancelled timer that is still in the heap is only
 * marked dead, and freed when it reaches the top (which is never dead) or
 * when dead entries outnumber the live ones and the heap is rebuilt
 * without them. A sift then moves entries without writing to their timers
 * (a timer's position in the heap, written at every move so that a cancel
 * could find it, was a cache miss per level of every firing). */
/* Rebuilt without its dead entries once they are this many and more than
 * the live ones: memory stays within twice the live timers (plus this),
 * and the rebuild's cost is paid for by the cancels that made it due. */
#define RT_TIMER_HEAP_DEAD_MIN 64u

typedef struct rt_timer_heap {
  rt_timer_slot_t *items;
  uint32_t len;
  uint32_t cap;
  uint32_t dead; /* entries whose timer is dead */
} rt_timer_heap_t;

/* Frees the dead entries' timers; the live ones are their owners'. */
void rt_timer_heap_deinit(rt_timer_heap_t *h);
int rt_timer_heap_push(rt_timer_heap_t *h, rt_timer_t *t);
/* The earliest live timer, or NULL. */
rt_timer_t *rt_timer_heap_peek(const rt_timer_heap_t *h);
/* Takes the top out of the heap (it is live) and returns it. */
rt_timer_t *rt_timer_heap_pop(rt_timer_heap_t *h);
/* t, in the heap, is cancelled: it never comes out of it alive, and the
 * heap frees it. */
void rt_timer_heap_kill(rt_timer_heap_t *h, rt_timer_t *t);

/* ---- Monitors ------------------------------------------------------------ */
typedef struct rt_monitor_rec {
  rt_signal_t sig; /* linked into the watcher's list once fired */
  uint64_t ref;
  rt_actor_t *watcher;
  rt_actor_t *target; /* NULL once fired */
  rt_actor_id_t target_id;
  int32_t reason;
  struct rt_monitor_rec *t_prev, *t_next; /* target's list of watchers */
  struct rt_monitor_rec *w_prev, *w_next; /* watcher's list of monitors */
} rt_monitor_rec_t;

/* ---- Actors -------------------------------------------------------------- */
typedef enum { RT_ACTOR_ALIVE = 1, RT_ACTOR_DEAD } rt_actor_status_t;

struct rt_actor {
  /* What a send, a schedule and a turn read and write, in the first two
   * lines (the mailbox's own hot fields come first in it): a run of
   * thousands of actors sends each a message now and then, and every line
   * of an actor a delivery touches is likely a miss. */
  rt_actor_id_t id;
  void *state;
  rt_behaviour_fn *behaviour;
  rt_actor_t *run_next;
  rt_world_t *world;
  uint8_t status; /* rt_actor_status_t */
  bool in_run_queue;
  uint8_t node; /* rt_world_set_node: the process it belongs to */
  bool stop_requested;
  int32_t stop_reason;
  rt_signal_t signals; /* sentinel of the pending-signal ring */
  rt_mailbox_t mailbox;
  const char *name;
  rt_on_stop_fn *on_stop;
  rt_timer_t *timers;           /* owned timers (for cancel at stop) */
  rt_monitor_rec_t *watched_by; /* monitors whose target is this actor */
  rt_monitor_rec_t *watching;   /* monitors this actor holds */
};

/* ---- The world ----------------------------------------------------------- */
struct rt_world {
  rt_world_config_t cfg;
  rt_backend_t backend;
  void *backend_ctx;
  rt_time_ns now;
  uint64_t hash;
  uint64_t delivery_seq;
  uint64_t next_actor_id;
  uint64_t next_timer_id;
  uint64_t next_timer_seq;
  uint64_t next_monitor_ref;
  uint64_t next_stream_id;
  rt_idmap_t actors;
  rt_idmap_t timers;
  rt_idmap_t monitors;
  rt_timer_heap_t heap;
  rt_mailbox_spares_t mailbox_spares; /* every actor's mailbox shares them */
  rt_actor_t *run_head;
  rt_actor_t *run_tail;
  rt_actor_t *current; /* the actor whose behaviour is running */
  rt_actor_t *running; /* the actor in run_turn: current may be an on_stop
                          of an actor it stopped, and this one must not be
                          freed under its own behaviour */
  bool in_pump;        /* no wake calls while the driver is pumping */
  uint8_t spawn_node;  /* the node of actors the driver spawns */
  uint64_t paused;     /* bit n: node n takes no turns */
  rt_world_stats_t stats;
  const struct rt_tap *tap; /* rt_tap.h; NULL: none */
  void *tap_ctx;
  uint64_t output_hash;
  struct rt_port *ports; /* open ports (rt_port.h), newest first */
};

/* Link a source's signal into the pending list of actor `owner` (no-op if
 * already linked or the owner is gone) and schedule the owner. */
void rt__signal_post(rt_world_t *w, rt_actor_id_t owner, rt_signal_t *sig);
/* Unlink from whatever list holds it (no-op if not linked). */
void rt__signal_unlink(rt_signal_t *sig);
static inline bool rt__signal_linked(const rt_signal_t *sig) {
  return sig->next != NULL;
}
uint64_t rt__next_stream_id(rt_world_t *w);
/* A stream or listener signal was taken for delivery: fill *ev with its id
 * and pending events (cleared), return the source object. */
void *rt__source_take(rt_signal_t *sig, rt_stream_event_t *ev);

#endif
