/* rt_world.c: actors, scheduling, signals, monitors and timers.
 *
 * Invariants (checked by rt_world_check, asserted where cheap):
 *  (1) An actor is in the run queue at most once (in_run_queue), and is there
 *      or is running whenever it has work, unless it is dead or its node is
 *      paused (then it is queued when the node resumes).
 *  (2) An actor in the id map is ALIVE; a DEAD actor is freed as soon as it
 *      is neither running nor in the run queue.
 *  (3) A signal is linked in at most one actor's pending list, and only in
 *      the list of the actor that owns its source.
 *  (4) A timer is in the heap iff it is armed, or cancelled while armed
 *      and not yet freed by the heap (never on its top); a fired one-shot
 *      timer lives only until its delivery (or cancel).
 *  (5) Time never goes backwards.
 */
#include "rt_port.h"
#include "runtime_int.h"

#include "rt_assert.h"
#include "rt_hash.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Signals ------------------------------------------------------------- */

static void ring_init(rt_signal_t *sentinel) {
  sentinel->prev = sentinel;
  sentinel->next = sentinel;
}

static bool ring_empty(const rt_signal_t *sentinel) {
  return sentinel->next == sentinel;
}

void rt__signal_unlink(rt_signal_t *sig) {
  if (sig->next == NULL)
    return;
  sig->prev->next = sig->next;
  sig->next->prev = sig->prev;
  sig->prev = NULL;
  sig->next = NULL;
}

static void schedule(rt_world_t *w, rt_actor_t *a);

static void signal_link(rt_world_t *w, rt_actor_t *a, rt_signal_t *sig) {
  RT_WASSERT(w, sig->next == NULL); /* Invariant (3) */
  rt_signal_t *tail = a->signals.prev;
  sig->prev = tail;
  sig->next = &a->signals;
  tail->next = sig;
  a->signals.prev = sig;
  schedule(w, a);
}

void rt__signal_post(rt_world_t *w, rt_actor_id_t owner, rt_signal_t *sig) {
  if (rt__signal_linked(sig) || owner == 0)
    return;
  rt_actor_t *a = rt_idmap_get(&w->actors, owner);
  if (a == NULL)
    return; /* the owner is gone; its stream will be closed by someone else */
  signal_link(w, a, sig);
}

uint64_t rt__next_stream_id(rt_world_t *w) { return ++w->next_stream_id; }

/* ---- World lifecycle ----------------------------------------------------- */

rt_world_t *rt_world_create(const rt_world_config_t *cfg,
                            const rt_backend_t *backend, void *backend_ctx) {
  if (cfg == NULL || backend == NULL)
    return NULL;
  rt_world_t *w = calloc(1, sizeof(*w));
  if (w == NULL)
    return NULL;
  w->cfg = *cfg;
  if (w->cfg.batch_max == 0)
    w->cfg.batch_max = RT_BATCH_DEFAULT;
  if (w->cfg.actors_max == 0)
    w->cfg.actors_max = RT_ACTORS_MAX_DEFAULT;
  if (w->cfg.timers_max == 0)
    w->cfg.timers_max = RT_TIMERS_MAX_DEFAULT;
  w->backend = *backend;
  w->backend_ctx = backend_ctx;
  w->hash = rt_mix64(cfg->seed ^ 0x6f766572636f6f6bULL); /* "overcook" */
  if (rt_idmap_init(&w->actors) < 0 || rt_idmap_init(&w->timers) < 0 ||
      rt_idmap_init(&w->monitors) < 0)
    goto fail;
  return w;
fail:
  rt_idmap_deinit(&w->actors);
  rt_idmap_deinit(&w->timers);
  rt_idmap_deinit(&w->monitors);
  free(w);
  return NULL;
}

static void free_timer(rt_world_t *w, rt_timer_t *t);

void rt_world_destroy(rt_world_t *w) {
  if (w == NULL)
    return;
  rt_world_stop_all(w, RT_REASON_SHUTDOWN);
  /* Function timers have no owner to cancel them. */
  uint32_t n = 0;
  uint64_t *ids = rt_idmap_sorted_keys(&w->timers, &n);
  for (uint32_t i = 0; i < n; i++)
    free_timer(w, rt_idmap_get(&w->timers, ids[i]));
  free(ids);
  RT_WASSERT(w, w->monitors.count == 0);
  /* Ports their owners left open. */
  while (w->ports != NULL)
    rt_port_close(w->ports);
  /* Dead actors still queued. */
  while (w->run_head != NULL) {
    rt_actor_t *a = w->run_head;
    w->run_head = a->run_next;
    RT_WASSERT(w, a->status == RT_ACTOR_DEAD);
    free(a);
  }
  rt_timer_heap_deinit(&w->heap);
  rt_mailbox_spares_free(&w->mailbox_spares);
  rt_idmap_deinit(&w->actors);
  rt_idmap_deinit(&w->timers);
  rt_idmap_deinit(&w->monitors);
  free(w);
}

void rt_world_stop_all(rt_world_t *w, int reason) {
  /* on_stop may spawn; a few passes reach a fixpoint in any sane program. */
  for (int pass = 0; pass < 8 && w->actors.count > 0; pass++) {
    uint32_t n = 0;
    uint64_t *ids = rt_idmap_sorted_keys(&w->actors, &n);
    RT_WASSERT(w, ids != NULL);
    for (uint32_t i = 0; i < n; i++)
      (void)rt_stop(w, ids[i], reason);
    free(ids);
  }
  RT_WASSERT(w, w->actors.count == 0);
}

/* ---- Facts --------------------------------------------------------------- */

rt_time_ns rt_now(const rt_world_t *w) { return w->now; }
int64_t rt_wall_ns(const rt_world_t *w) {
  return w->cfg.epoch_unix_ns + w->now;
}
uint64_t rt_world_seed(const rt_world_t *w) { return w->cfg.seed; }
uint64_t rt_world_hash(const rt_world_t *w) { return w->hash; }
uint64_t rt_world_deliveries(const rt_world_t *w) { return w->delivery_seq; }
uint64_t rt_world_timers_fired(const rt_world_t *w) {
  return w->stats.timers_fired;
}

void rt_world_stats(const rt_world_t *w, rt_world_stats_t *out) {
  *out = w->stats;
  out->actors_live = w->actors.count;
  out->timers_live = w->timers.count;
}

void rt_world_rng(const rt_world_t *w, uint64_t key, rt_rng_t *out) {
  rt_rng_init(out, w->cfg.seed, key);
}

void rt_world_set_time(rt_world_t *w, rt_time_ns now) {
  RT_WASSERT(w, now >= w->now); /* Invariant (5) */
  if (w->tap != NULL && w->tap->time != NULL && now != w->now)
    w->tap->time(w->tap_ctx, now);
  w->now = now;
}

/* ---- The tap (rt_tap.h) -------------------------------------------------- */

void rt_world_set_tap(rt_world_t *w, const rt_tap_t *tap, void *ctx) {
  RT_WASSERT(w, w->current == NULL);
  w->tap = tap;
  w->tap_ctx = tap != NULL ? ctx : NULL;
}

bool rt_world_tapped(const rt_world_t *w) { return w->tap != NULL; }
uint64_t rt_world_output_hash(const rt_world_t *w) { return w->output_hash; }

rt_actor_id_t rt_world_current(const rt_world_t *w, const char **name) {
  if (name != NULL)
    *name = w->current != NULL ? w->current->name : NULL;
  return w->current != NULL ? w->current->id : 0;
}

const char *rt_actor_name(const rt_world_t *w, rt_actor_id_t id) {
  const rt_actor_t *a = id != 0 ? rt_idmap_get(&w->actors, id) : NULL;
  return a != NULL ? a->name : NULL;
}

int rt_external_take(rt_world_t *w, uint32_t kind, int64_t *rc,
                     const uint8_t **data, size_t *len) {
  if (w->tap == NULL || w->tap->take == NULL)
    return 0;
  return w->tap->take(w->tap_ctx, kind, rc, data, len);
}

void rt_external_put(rt_world_t *w, uint32_t kind, int64_t rc, const void *data,
                     size_t len) {
  if (w->tap != NULL && w->tap->put != NULL)
    w->tap->put(w->tap_ctx, kind, rc, data, len);
}

static void tap_drive(rt_world_t *w, bool outer, rt_drive_t kind,
                      uint32_t turns_max) {
  if (outer && w->tap != NULL && w->tap->drive != NULL)
    w->tap->drive(w->tap_ctx, kind, turns_max);
}

static void tap_drive_end(rt_world_t *w, bool outer, rt_drive_t kind,
                          uint32_t result) {
  if (outer && w->tap != NULL && w->tap->drive_end != NULL)
    w->tap->drive_end(w->tap_ctx, kind, result);
}

void rt_world_hash_input(rt_world_t *w, uint64_t kind, uint64_t id,
                         uint64_t value) {
  if (w->cfg.hash_disabled)
    return;
  uint64_t h = rt_hash_step(w->hash, kind);
  h = rt_hash_step(h, id);
  h = rt_hash_step(h, value);
  w->hash = rt_hash_step(h, (uint64_t)w->now);
}

/* ---- Actors -------------------------------------------------------------- */

rt_actor_id_t rt_self(const rt_actor_t *self) { return self->id; }
void *rt_state(const rt_actor_t *self) { return self->state; }
rt_world_t *rt_actor_world(const rt_actor_t *self) { return self->world; }
uint32_t rt_self_pending(const rt_actor_t *self) { return self->mailbox.count; }

bool rt_alive(const rt_world_t *w, rt_actor_id_t id) {
  return id != 0 && rt_idmap_get(&w->actors, id) != NULL;
}

const rt_mailbox_t *rt_actor_mailbox(const rt_world_t *w, rt_actor_id_t id) {
  rt_actor_t *a = id != 0 ? rt_idmap_get(&w->actors, id) : NULL;
  return a != NULL ? &a->mailbox : NULL;
}

static bool has_work(const rt_actor_t *a) {
  return !ring_empty(&a->signals) || a->mailbox.count > 0;
}

static bool node_paused(const rt_world_t *w, uint32_t node) {
  return (w->paused >> node) & 1u;
}

static void schedule(rt_world_t *w, rt_actor_t *a) {
  if (a->in_run_queue || a == w->current || a == w->running)
    return; /* Invariant (1): the turn's end re-queues a running actor */
  if (node_paused(w, a->node))
    return; /* Invariant (1): the resume queues it */
  a->in_run_queue = true;
  a->run_next = NULL;
  bool was_idle = w->run_head == NULL;
  if (w->run_tail != NULL)
    w->run_tail->run_next = a;
  else
    w->run_head = a;
  w->run_tail = a;
  if (was_idle && !w->in_pump && w->backend.wake != NULL)
    w->backend.wake(w->backend_ctx);
}

int rt_spawn(rt_world_t *w, const rt_actor_spec_t *spec,
             rt_actor_id_t *id_out) {
  if (spec == NULL || spec->behaviour == NULL || id_out == NULL)
    return RT_EINVAL;
  if (w->actors.count >= w->cfg.actors_max)
    return RT_ELIMIT;
  rt_actor_t *a = calloc(1, sizeof(*a));
  if (a == NULL)
    return RT_ENOMEM;
  int err = rt_mailbox_init(&a->mailbox, spec->mailbox_cap, spec->overflow,
                            spec->rules, spec->rules_len);
  if (err < 0)
    goto fail;
  a->mailbox.spares = &w->mailbox_spares;
  a->id = w->next_actor_id + 1;
  err = rt_idmap_put(&w->actors, a->id, a);
  if (err < 0)
    goto fail;
  w->next_actor_id = a->id;
  a->world = w;
  a->name = spec->name != NULL ? spec->name : "actor";
  a->behaviour = spec->behaviour;
  a->on_stop = spec->on_stop;
  a->state = spec->state;
  a->status = RT_ACTOR_ALIVE;
  a->node = w->current != NULL ? w->current->node : w->spawn_node;
  ring_init(&a->signals);
  w->stats.actors_spawned++;
  *id_out = a->id;
  return RT_OK;
fail:
  rt_mailbox_deinit(&a->mailbox);
  free(a);
  return err;
}

int rt_send(rt_world_t *w, rt_actor_id_t to, const rt_msg_t *msg) {
  rt_actor_t *a = to != 0 ? rt_idmap_get(&w->actors, to) : NULL;
  if (a == NULL) {
    w->stats.dead_letters++;
    return RT_ENOACTOR;
  }
  rt_msg_t m = *msg;
  m.from = w->current != NULL ? w->current->id : 0;
  m.ref = NULL;
  int r = rt_mailbox_push(&a->mailbox, &m);
  switch (r) {
  case RT_PUSH_QUEUED:
    w->stats.sent++;
    schedule(w, a);
    break;
  case RT_PUSH_DROPPED: w->stats.mailbox[RT_MB_DROPPED]++; break;
  case RT_PUSH_REPLACED: w->stats.mailbox[RT_MB_REPLACED]++; break;
  case RT_EFULL: w->stats.mailbox[RT_MB_REJECTED]++; break;
  default: break;
  }
  return r;
}

/* ---- Monitors ------------------------------------------------------------ */

static void free_monitor(rt_world_t *w, rt_monitor_rec_t *rec) {
  if (rec->target != NULL) {
    if (rec->t_prev != NULL)
      rec->t_prev->t_next = rec->t_next;
    else
      rec->target->watched_by = rec->t_next;
    if (rec->t_next != NULL)
      rec->t_next->t_prev = rec->t_prev;
  }
  if (rec->w_prev != NULL)
    rec->w_prev->w_next = rec->w_next;
  else
    rec->watcher->watching = rec->w_next;
  if (rec->w_next != NULL)
    rec->w_next->w_prev = rec->w_prev;
  rt__signal_unlink(&rec->sig);
  rt_idmap_del(&w->monitors, rec->ref);
  free(rec);
}

int rt_monitor(rt_world_t *w, rt_actor_id_t watcher_id, rt_actor_id_t target,
               uint64_t *ref_out) {
  rt_actor_t *watcher =
      watcher_id != 0 ? rt_idmap_get(&w->actors, watcher_id) : NULL;
  if (watcher == NULL)
    return RT_ENOACTOR;
  rt_monitor_rec_t *rec = calloc(1, sizeof(*rec));
  if (rec == NULL)
    return RT_ENOMEM;
  rec->sig.kind = RT_SIGNAL_DOWN;
  rec->ref = w->next_monitor_ref + 1;
  int err = rt_idmap_put(&w->monitors, rec->ref, rec);
  if (err < 0) {
    free(rec);
    return err;
  }
  w->next_monitor_ref = rec->ref;
  rec->watcher = watcher;
  rec->target_id = target;
  rec->w_next = watcher->watching;
  if (watcher->watching != NULL)
    watcher->watching->w_prev = rec;
  watcher->watching = rec;
  rt_actor_t *t = target != 0 ? rt_idmap_get(&w->actors, target) : NULL;
  if (t == NULL) {
    rec->reason = RT_REASON_NOPROC;
    signal_link(w, watcher, &rec->sig);
  } else {
    rec->target = t;
    rec->t_next = t->watched_by;
    if (t->watched_by != NULL)
      t->watched_by->t_prev = rec;
    t->watched_by = rec;
  }
  *ref_out = rec->ref;
  return RT_OK;
}

int rt_demonitor(rt_world_t *w, uint64_t ref) {
  rt_monitor_rec_t *rec = ref != 0 ? rt_idmap_get(&w->monitors, ref) : NULL;
  if (rec == NULL)
    return RT_ENOTFOUND;
  free_monitor(w, rec);
  return RT_OK;
}

/* ---- Timers -------------------------------------------------------------- */

static void owner_list_remove(rt_timer_t *t) {
  if (t->owner == NULL)
    return;
  if (t->owner_prev != NULL)
    t->owner_prev->owner_next = t->owner_next;
  else
    t->owner->timers = t->owner_next;
  if (t->owner_next != NULL)
    t->owner_next->owner_prev = t->owner_prev;
  t->owner_prev = t->owner_next = NULL;
}

static void free_timer(rt_world_t *w, rt_timer_t *t) {
  owner_list_remove(t);
  rt__signal_unlink(&t->sig);
  rt_idmap_del(&w->timers, t->id);
  if (t->in_heap)
    rt_timer_heap_kill(&w->heap, t); /* the heap frees it */
  else
    free(t);
}

static int timer_arm(rt_world_t *w, rt_timer_t *t, rt_time_ns delay,
                     uint64_t *timer_out) {
  if (w->timers.count >= w->cfg.timers_max)
    return RT_ELIMIT;
  t->id = w->next_timer_id + 1;
  /* Saturating: a delay past the end of time is "never" (it never fires). */
  t->deadline = delay > RT_TIME_NEVER - w->now ? RT_TIME_NEVER : w->now + delay;
  t->seq = ++w->next_timer_seq;
  t->sig.kind = RT_SIGNAL_TIMER;
  int err = rt_idmap_put(&w->timers, t->id, t);
  if (err < 0)
    return err;
  err = rt_timer_heap_push(&w->heap, t);
  if (err < 0) {
    rt_idmap_del(&w->timers, t->id);
    return err;
  }
  w->next_timer_id = t->id;
  *timer_out = t->id;
  if (!w->in_pump && rt_timer_heap_peek(&w->heap) == t &&
      w->backend.wake != NULL)
    w->backend.wake(w->backend_ctx);
  return RT_OK;
}

int rt_timer_start(rt_world_t *w, rt_actor_id_t owner, rt_time_ns delay,
                   rt_time_ns period, uint16_t tag, uint64_t data,
                   uint64_t *timer_out) {
  if (delay < 0 || period < 0 || timer_out == NULL)
    return RT_EINVAL;
  rt_actor_t *a = owner != 0 ? rt_idmap_get(&w->actors, owner) : NULL;
  if (a == NULL)
    return RT_ENOACTOR;
  rt_timer_t *t = calloc(1, sizeof(*t));
  if (t == NULL)
    return RT_ENOMEM;
  t->period = period;
  t->tag = tag != 0 ? tag : RT_TAG_TIMER;
  t->data = data;
  int err = timer_arm(w, t, delay, timer_out);
  if (err < 0) {
    free(t);
    return err;
  }
  t->owner = a;
  t->owner_next = a->timers;
  if (a->timers != NULL)
    a->timers->owner_prev = t;
  a->timers = t;
  return RT_OK;
}

int rt_timer_start_fn(rt_world_t *w, rt_time_ns delay, rt_time_ns period,
                      rt_timer_fn *fn, void *arg, uint64_t *timer_out) {
  if (delay < 0 || period < 0 || fn == NULL || timer_out == NULL)
    return RT_EINVAL;
  rt_timer_t *t = calloc(1, sizeof(*t));
  if (t == NULL)
    return RT_ENOMEM;
  t->period = period;
  t->fn = fn;
  t->fn_arg = arg;
  int err = timer_arm(w, t, delay, timer_out);
  if (err < 0)
    free(t);
  return err;
}

int rt_timer_cancel(rt_world_t *w, uint64_t timer) {
  rt_timer_t *t = timer != 0 ? rt_idmap_get(&w->timers, timer) : NULL;
  if (t == NULL)
    return RT_ENOTFOUND;
  free_timer(w, t);
  return RT_OK;
}

rt_time_ns rt_world_next_deadline(const rt_world_t *w) {
  return w->heap.len > 0 ? w->heap.items[0].deadline : RT_TIME_NEVER;
}

uint32_t rt_world_fire_timers(rt_world_t *w) {
  bool outer = !w->in_pump;
  w->in_pump = true;
  tap_drive(w, outer, RT_DRIVE_FIRE, 0);
  uint32_t fired = 0;
  rt_timer_t *t;
  while (w->heap.len > 0 && w->heap.items[0].deadline <= w->now) {
    t = rt_timer_heap_pop(&w->heap);
    w->stats.timers_fired++;
    fired++;
    uint32_t behind = 0;
    if (t->period > 0 && t->period > RT_TIME_NEVER - t->deadline) {
      t->deadline = RT_TIME_NEVER; /* the next firing is past the end of time */
      t->seq = ++w->next_timer_seq;
      int err = rt_timer_heap_push(&w->heap, t);
      RT_WASSERT(w, err == RT_OK);
    } else if (t->period > 0) {
      t->deadline += t->period;
      if (t->deadline <= w->now) {
        /* The driver fell behind (a live world under load): coalesce the
         * firings we missed instead of delivering a burst. */
        rt_time_ns steps = (w->now - t->deadline) / t->period + 1;
        t->deadline += steps * t->period;
        behind = (uint32_t)(steps > UINT32_MAX ? UINT32_MAX : steps);
      }
      t->seq = ++w->next_timer_seq;
      int err = rt_timer_heap_push(&w->heap, t);
      RT_WASSERT(w, err == RT_OK); /* the slot it just left is free */
    }
    if (t->fn != NULL) {
      uint64_t id = t->id;
      t->fn(w, t->fn_arg, id);
      /* fn may have cancelled its own timer. */
      rt_timer_t *still = rt_idmap_get(&w->timers, id);
      if (still != NULL && still->period == 0)
        free_timer(w, still);
      continue;
    }
    if (rt__signal_linked(&t->sig)) {
      t->missed += 1 + behind;
      w->stats.timers_missed += 1 + behind;
    } else {
      t->missed += behind;
      w->stats.timers_missed += behind;
      signal_link(w, t->owner, &t->sig);
    }
  }
  tap_drive_end(w, outer, RT_DRIVE_FIRE, fired);
  if (outer)
    w->in_pump = false;
  return fired;
}

/* ---- Stopping ------------------------------------------------------------ */

static void teardown(rt_world_t *w, rt_actor_t *a, int reason) {
  RT_WASSERT(w, a->status == RT_ACTOR_ALIVE);
  RT_WASSERT(w, w->running != a);
  rt_idmap_del(&w->actors, a->id);
  a->status = RT_ACTOR_DEAD; /* Invariant (2): sends to it now fail */
  w->stats.actors_stopped++;
  if (a->on_stop != NULL) {
    rt_actor_t *prev = w->current;
    w->current = a;
    a->on_stop(a, reason);
    w->current = prev;
  }
  while (a->timers != NULL)
    free_timer(w, a->timers);
  while (a->watching != NULL)
    free_monitor(w, a->watching);
  /* What remains pending are stream and listener signals: their sources
   * outlive this actor (someone must close them) but owe it nothing. */
  while (!ring_empty(&a->signals))
    rt__signal_unlink(a->signals.next);
  w->stats.dropped_at_stop += a->mailbox.count;
  rt_mailbox_deinit(&a->mailbox);
  while (a->watched_by != NULL) {
    rt_monitor_rec_t *rec = a->watched_by;
    a->watched_by = rec->t_next;
    if (a->watched_by != NULL)
      a->watched_by->t_prev = NULL;
    rec->target = NULL;
    rec->t_prev = rec->t_next = NULL;
    rec->reason = reason;
    signal_link(w, rec->watcher, &rec->sig);
  }
  if (!a->in_run_queue)
    free(a);
}

int rt_stop(rt_world_t *w, rt_actor_id_t id, int reason) {
  rt_actor_t *a = id != 0 ? rt_idmap_get(&w->actors, id) : NULL;
  if (a == NULL)
    return RT_ENOACTOR;
  if (a == w->running) { /* deferred to the end of its turn */
    if (!a->stop_requested) {
      a->stop_requested = true;
      a->stop_reason = reason;
    }
    return RT_OK;
  }
  teardown(w, a, reason);
  return RT_OK;
}

/* ---- Nodes --------------------------------------------------------------- */

int rt_world_set_node(rt_world_t *w, uint32_t node) {
  RT_WASSERT(w, w->current == NULL);
  if (node >= RT_NODES_MAX)
    return RT_EINVAL;
  w->spawn_node = (uint8_t)node;
  return RT_OK;
}

uint32_t rt_actor_node(const rt_world_t *w, rt_actor_id_t id) {
  const rt_actor_t *a = id != 0 ? rt_idmap_get(&w->actors, id) : NULL;
  return a != NULL ? a->node : 0;
}

bool rt_world_node_paused(const rt_world_t *w, uint32_t node) {
  return node < RT_NODES_MAX && node_paused(w, node);
}

void rt_world_node_pause(rt_world_t *w, uint32_t node) {
  RT_WASSERT(w, w->current == NULL);
  if (node < RT_NODES_MAX)
    w->paused |= 1ull << node;
}

void rt_world_node_resume(rt_world_t *w, uint32_t node) {
  RT_WASSERT(w, w->current == NULL);
  if (!rt_world_node_paused(w, node))
    return;
  w->paused &= ~(1ull << node);
  uint32_t n = 0;
  uint64_t *ids = rt_idmap_sorted_keys(&w->actors, &n);
  RT_WASSERT(w, ids != NULL || n == 0);
  for (uint32_t i = 0; i < n; i++) {
    rt_actor_t *a = rt_idmap_get(&w->actors, ids[i]);
    if (a->node == node && has_work(a))
      schedule(w, a);
  }
  free(ids);
}

uint32_t rt_world_node_stop(rt_world_t *w, uint32_t node, int reason) {
  RT_WASSERT(w, w->current == NULL);
  uint32_t stopped = 0;
  /* on_stop may spawn in the node; a few passes reach a fixpoint. */
  for (int pass = 0; pass < 8; pass++) {
    uint32_t n = 0, before = stopped;
    uint64_t *ids = rt_idmap_sorted_keys(&w->actors, &n);
    RT_WASSERT(w, ids != NULL || n == 0);
    for (uint32_t i = 0; i < n; i++) {
      const rt_actor_t *a = rt_idmap_get(&w->actors, ids[i]);
      if (a != NULL && a->node == node && rt_stop(w, ids[i], reason) == RT_OK)
        stopped++;
    }
    free(ids);
    if (stopped == before)
      break;
  }
  return stopped;
}

/* ---- Running ------------------------------------------------------------- */

/* Turn the first pending signal into a message. Frees what is spent. */
static bool take_signal(rt_world_t *w, rt_actor_t *a, rt_msg_t *msg) {
  if (ring_empty(&a->signals))
    return false;
  rt_signal_t *sig = a->signals.next;
  rt__signal_unlink(sig);
  memset(msg, 0, sizeof(*msg));
  switch ((rt_signal_kind_t)sig->kind) {
  case RT_SIGNAL_TIMER: {
    rt_timer_t *t = (rt_timer_t *)sig;
    rt_timer_event_t ev = {
        .timer = t->id, .data = t->data, .missed = t->missed};
    *msg = RT_MSG_OF(t->tag, &ev);
    t->missed = 0;
    if (t->period == 0)
      free_timer(w, t);
    return true;
  }
  case RT_SIGNAL_DOWN: {
    rt_monitor_rec_t *rec = (rt_monitor_rec_t *)sig;
    rt_down_t down = {
        .monitor = rec->ref, .target = rec->target_id, .reason = rec->reason};
    *msg = RT_MSG_OF(RT_TAG_DOWN, &down);
    free_monitor(w, rec);
    return true;
  }
  case RT_SIGNAL_STREAM:
  case RT_SIGNAL_LISTENER: {
    /* rt_stream_t and rt_listener_t both begin with sig, id and events at
     * the offsets read by rt__source_take (rt_stream.c). */
    uint16_t tag =
        sig->kind == RT_SIGNAL_STREAM ? RT_TAG_STREAM : RT_TAG_ACCEPT;
    rt_stream_event_t ev;
    void *source = rt__source_take(sig, &ev);
    *msg = RT_MSG_OF(tag, &ev);
    msg->ref = source;
    return true;
  }
  case RT_SIGNAL_PORT: {
    rt_port_t *p = (rt_port_t *)sig;
    rt_stream_event_t ev = {.id = p->id, .events = p->events};
    p->events = 0;
    *msg = RT_MSG_OF(RT_TAG_PORT, &ev);
    msg->ref = p;
    return true;
  }
  }
  RT_WASSERT(w, !"unknown signal kind");
  return false;
}

static void deliver(rt_world_t *w, rt_actor_t *a, const rt_msg_t *msg) {
  if (!w->cfg.hash_disabled || w->cfg.trace != NULL) {
    uint64_t ph = rt_hash_bytes(msg->inline_data.bytes, msg->len, msg->tag);
    if (msg->buf != NULL)
      ph = rt_hash_bytes(msg->buf->data, msg->buf->len, ph);
    if (w->cfg.trace != NULL) {
      rt_delivery_t d = {.seq = w->delivery_seq,
                         .at = w->now,
                         .actor = a->id,
                         .from = msg->from,
                         .payload_hash = ph,
                         .actor_name = a->name,
                         .tag = msg->tag,
                         .node = a->node};
      w->cfg.trace(w->cfg.trace_ctx, &d);
    }
    if (!w->cfg.hash_disabled) {
      uint64_t h = rt_hash_step(w->hash, w->delivery_seq);
      h = rt_hash_step(h, a->id);
      h = rt_hash_step(h, msg->from);
      h = rt_hash_step(h, ph);
      w->hash = rt_hash_step(h, (uint64_t)w->now);
    }
  }
  w->delivery_seq++;
  w->stats.delivered++;
  a->behaviour(a, msg);
}

static void run_turn(rt_world_t *w, rt_actor_t *a) {
  RT_WASSERT(w, w->current == NULL); /* turns never nest */
  w->current = a;
  w->running = a;
  for (uint32_t i = 0; i < w->cfg.batch_max; i++) {
    rt_msg_t msg;
    if (take_signal(w, a, &msg))
      w->stats.delivered_signals++;
    else if (!rt_mailbox_pop(&a->mailbox, &msg))
      break;
    deliver(w, a, &msg);
    rt_buf_unref(msg.buf);
    if (a->stop_requested)
      break;
  }
  w->current = NULL;
  w->running = NULL;
  if (a->stop_requested)
    teardown(w, a, a->stop_reason);
  else if (has_work(a))
    schedule(w, a);
}

bool rt_world_has_ready(const rt_world_t *w) { return w->run_head != NULL; }

uint32_t rt_world_run_ready(rt_world_t *w, uint32_t turns_max) {
  bool outer = !w->in_pump;
  w->in_pump = true;
  tap_drive(w, outer, RT_DRIVE_RUN, turns_max);
  uint32_t turns = 0;
  while (turns < turns_max && w->run_head != NULL) {
    rt_actor_t *a = w->run_head;
    w->run_head = a->run_next;
    if (w->run_head == NULL)
      w->run_tail = NULL;
    a->in_run_queue = false;
    a->run_next = NULL;
    if (a->status == RT_ACTOR_DEAD) {
      free(a); /* Invariant (2) */
      continue;
    }
    if (node_paused(w, a->node))
      continue; /* queued before the pause: the resume queues it again */
    run_turn(w, a);
    turns++;
  }
  tap_drive_end(w, outer, RT_DRIVE_RUN, turns);
  if (outer)
    w->in_pump = false;
  return turns;
}

uint32_t rt_world_pump(rt_world_t *w, uint32_t turns_max) {
  bool outer = !w->in_pump;
  w->in_pump = true;
  tap_drive(w, outer, RT_DRIVE_PUMP, turns_max);
  rt_world_fire_timers(w);
  uint32_t turns = rt_world_run_ready(w, turns_max);
  tap_drive_end(w, outer, RT_DRIVE_PUMP, turns);
  if (outer)
    w->in_pump = false;
  return turns;
}

/* ---- Checking ------------------------------------------------------------ */

static int check_fail(char *why, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int check_fail(char *why, size_t cap, const char *fmt, ...) {
  if (why != NULL && cap > 0) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, cap, fmt, ap);
    va_end(ap);
  }
  return -1;
}

typedef struct check_actors {
  const rt_world_t *w;
  char *why;
  size_t cap;
  uint64_t in_mailboxes; /* summed over the actors that passed */
} check_actors_t;

static int check_actor(void *ctx, uint64_t id, const void *val) {
  (void)id;
  check_actors_t *c = ctx;
  const rt_actor_t *a = val;
  const rt_mailbox_t *mb = &a->mailbox;
  char *why = c->why;
  size_t cap = c->cap;
  if (a->status != RT_ACTOR_ALIVE) /* Invariant (2) */
    return check_fail(why, cap, "actor %" PRIu64 " (%s) in the map but dead",
                      a->id, a->name);
  if (mb->count > mb->cap || mb->depth_max > mb->cap)
    return check_fail(why, cap,
                      "actor %" PRIu64 " (%s): mailbox %u, high %u, over its "
                      "limit %u",
                      a->id, a->name, mb->count, mb->depth_max, mb->cap);
  if (has_work(a) && !a->in_run_queue &&
      !node_paused(c->w, a->node)) /* Invariant (1) */
    return check_fail(why, cap,
                      "actor %" PRIu64 " (%s) has work but is not "
                      "queued",
                      a->id, a->name);
  c->in_mailboxes += mb->count;
  return 0;
}

int rt_world_check(const rt_world_t *w, char *why, size_t cap) {
  if (w->current != NULL)
    return check_fail(why, cap, "rt_world_check called inside a turn");
  /* The run queue: each entry flagged, no cycle (bounded by what exists). */
  uint64_t bound = (uint64_t)w->actors.count + w->stats.actors_stopped + 1;
  uint64_t queued = 0;
  for (const rt_actor_t *a = w->run_head; a != NULL; a = a->run_next) {
    if (++queued > bound)
      return check_fail(why, cap, "run queue longer than the actors: a cycle");
    if (!a->in_run_queue)
      return check_fail(why, cap,
                        "actor %" PRIu64 " in the run queue unflagged", a->id);
  }
  check_actors_t c = {.w = w, .why = why, .cap = cap};
  int rc = rt_idmap_check_each(&w->actors, check_actor, &c);
  if (rc != 0)
    return rc;
  uint64_t in_mailboxes = c.in_mailboxes;
  /* Invariant (4): the heap holds armed timers only, besides cancelled
   * ones it has yet to free, and never one of those on top. */
  if (w->heap.dead > w->heap.len ||
      w->heap.len - w->heap.dead > w->timers.count)
    return check_fail(why, cap,
                      "timer heap of %u (%u cancelled) larger than the "
                      "timers %u",
                      w->heap.len, w->heap.dead, w->timers.count);
  if (w->heap.len > 0 && w->heap.items[0].t->dead)
    return check_fail(why, cap, "a cancelled timer on top of the heap");
  /* Every queued message is delivered, released at a stop, or queued now. */
  uint64_t delivered_msgs = w->stats.delivered - w->stats.delivered_signals;
  if (w->stats.sent != delivered_msgs + w->stats.dropped_at_stop + in_mailboxes)
    return check_fail(
        why, cap,
        "messages unaccounted: queued %" PRIu64 " != delivered %" PRIu64
        " + released at stop %" PRIu64 " + queued now %" PRIu64,
        w->stats.sent, delivered_msgs, w->stats.dropped_at_stop, in_mailboxes);
  return 0;
}
