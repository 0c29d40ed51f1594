/* rt_world.h: the world seam and the actors that run in it.
 *
 * A world is everything an actor may touch: the clock, timers, randomness,
 * the log, other actors (by id) and byte streams (rt_stream.h). The same
 * actors run in any world; what differs is the backend that drives it:
 *   - net/net_live.h: libevent, the monotonic clock, real sockets;
 *   - sim/sim_world.h: a virtual clock that jumps to the next event and
 *     in-memory pipes with faults;
 *   - sim/sim_replay.h: a world fed from a recorded trace, which checks
 *     that the actors do what they did when it was recorded.
 * Every nondeterministic input enters through the backend, so a simulated run
 * is a pure function of its seed, and a live run can be recorded and replayed.
 * There are no globals: a process may hold any number of worlds.
 *
 * Scheduling (after the Pony runtime): an actor is queued to run when it gets
 * work (a message in an empty mailbox, or a signal) and is not already
 * queued or running; a turn delivers at most `batch_max` messages, then the
 * actor goes to the back of the run queue if it still has work. The run queue
 * is FIFO, so order depends only on the order of sends, which is what makes
 * runs repeatable.
 *
 * Backpressure rules, and what breaks if one is violated:
 *  (1) Every mailbox has a limit and an overflow policy (rt_mailbox.h). An
 *      unbounded mailbox lets one slow actor eat all memory.
 *  (2) Runtime notifications are signals (rt_signal.h), never mailbox
 *      messages. A dropped timer or stream event would hang an actor forever.
 *  (3) No actor waits for another: rt_send never blocks. A Room that waited
 *      for a Client would let one slow player stall a match.
 *
 * The run hash folds every delivered message (sequence, actor id, sender,
 * tag, payload hash, time) and every byte read from a stream into one 64-bit
 * value that identifies the run: two runs with the same hash delivered the
 * same messages at the same times.
 */
#ifndef RT_WORLD_H
#define RT_WORLD_H

#include "rt_err.h"
#include "rt_mailbox.h"
#include "rt_msg.h"
#include "rt_rng.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct rt_world rt_world_t;
typedef struct rt_actor rt_actor_t;
struct rt_port;   /* rt_port.h */
struct rt_stream; /* rt_stream.h */

/* ---- Limits and defaults ------------------------------------------------- */

#define RT_BATCH_DEFAULT 16u
#define RT_ACTORS_MAX_DEFAULT (1u << 20)
#define RT_TIMERS_MAX_DEFAULT (1u << 22)
#define RT_LOG_LINE_MAX 1024u

/* Stop reasons carried in DOWN messages. Games add their own above USER. */
enum {
  RT_REASON_NORMAL = 0,
  RT_REASON_SHUTDOWN = 1, /* the world was torn down */
  RT_REASON_NOPROC = 2,   /* monitored an actor that did not exist */
  RT_REASON_KILLED = 3,
  RT_REASON_USER = 100,
};

enum { RT_LOG_DEBUG = 0, RT_LOG_INFO, RT_LOG_WARN, RT_LOG_ERROR, RT_LOG_OFF };

/* ---- The backend: what drives a world ------------------------------------ */

typedef struct rt_backend {
  /* The world has new work (a ready actor, or a timer earlier than any
   * before): arrange for rt_world_pump soon. Not called from inside a pump.
   * May be NULL for a backend that polls (the simulator). */
  void (*wake)(void *ctx);
  /* Write one finished log line (ends in '\n'). NULL: stderr. */
  void (*log_write)(void *ctx, const char *line, size_t len);
  /* Watch fd for a port (rt_port.h): raise it with rt_port_notify when fd
   * is ready for the RT_PORT_* bits in events; events 0 stops watching.
   * NULL: this world cannot watch descriptors (rt_port_watch answers
   * RT_ENOTSUP). */
  int (*watch)(void *ctx, struct rt_port *port, int fd, uint32_t events);
  /* Open an outbound stream to host:port for `owner` (rt_stream_connect):
   * 0 and *out, or a negative error. The stream's owner later gets
   * RT_STREAM_CONNECTED|RT_STREAM_WRITABLE, or RT_STREAM_CLOSED when the
   * connect failed. NULL: this world cannot connect (RT_ENOTSUP). */
  int (*connect)(void *ctx, const char *host, uint16_t port,
                 rt_actor_id_t owner, struct rt_stream **out);
} rt_backend_t;

/* ---- Tracing deliveries (optional) --------------------------------------- */

/* One delivery, with what the run hash folds in (rt_world_set_trace). */
typedef struct rt_delivery {
  uint64_t seq;           /* 0, 1, 2, ...: this delivery's sequence number */
  rt_time_ns at;          /* world time */
  rt_actor_id_t actor;    /* the receiver */
  rt_actor_id_t from;     /* the sender; 0: the runtime or a driver */
  uint64_t payload_hash;  /* tag, inline bytes and buffer bytes */
  const char *actor_name; /* the receiver's spec name (a static string) */
  uint16_t tag;
  uint32_t node; /* the receiver's node (rt_world_set_node) */
} rt_delivery_t;

/* Called just before each delivery, outside any behaviour's view. It must
 * not call into the world. d is borrowed for the call. */
typedef void rt_trace_fn(void *ctx, const rt_delivery_t *d);

typedef struct rt_world_config {
  uint64_t seed;       /* root of every random stream */
  uint32_t batch_max;  /* messages per turn; 0: RT_BATCH_DEFAULT */
  uint32_t actors_max; /* 0: RT_ACTORS_MAX_DEFAULT */
  uint32_t timers_max; /* 0: RT_TIMERS_MAX_DEFAULT */
  int log_level;       /* RT_LOG_*; lines below it are not formatted */
  bool hash_disabled;  /* skip the run hash (a live server may) */
  /* Wall-clock time (Unix epoch, ns) at world time 0: the live world reads
   * the real clock once at start; a simulation picks one. Only rt_wall_ns
   * derives from it, so token expiry and timestamps replay exactly. */
  int64_t epoch_unix_ns;
  /* Delivery trace, for determinism checks (who diverged first, and where).
   * Off by default; when NULL it costs one predictable branch per delivery.
   * trace_ctx is borrowed for the world's lifetime. */
  rt_trace_fn *trace;
  void *trace_ctx;
} rt_world_config_t;

/* backend is copied; backend_ctx is borrowed for the world's lifetime.
 * NULL when out of memory or the config is invalid. */
rt_world_t *rt_world_create(const rt_world_config_t *cfg,
                            const rt_backend_t *backend, void *backend_ctx);

/* Stop every actor (on_stop runs, in id order, with RT_REASON_SHUTDOWN),
 * then free what the world owns. The backend frees its streams after. */
void rt_world_destroy(rt_world_t *w);

/* Stop every live actor in id order with `reason`; the world stays usable. */
void rt_world_stop_all(rt_world_t *w, int reason);

/* ---- Driving a world (backends only) ------------------------------------- */

/* Move the clock to `now` (never backwards). */
void rt_world_set_time(rt_world_t *w, rt_time_ns now);

/* Earliest timer deadline, or RT_TIME_NEVER. */
rt_time_ns rt_world_next_deadline(const rt_world_t *w);

/* Fire every timer due at the current time, in (deadline, sequence) order.
 * Returns how many fired. */
uint32_t rt_world_fire_timers(rt_world_t *w);

bool rt_world_has_ready(const rt_world_t *w);

/* Run up to turns_max actor turns from the run queue. Returns turns run. */
uint32_t rt_world_run_ready(rt_world_t *w, uint32_t turns_max);

/* Fire due timers, then run turns until nothing is ready or turns_max is
 * reached. Returns turns run. */
uint32_t rt_world_pump(rt_world_t *w, uint32_t turns_max);

/* Fold an input that did not arrive as a message into the run hash. */
void rt_world_hash_input(rt_world_t *w, uint64_t kind, uint64_t id,
                         uint64_t value);

/* ---- Facts about a world ------------------------------------------------- */

rt_time_ns rt_now(const rt_world_t *w);
/* Wall-clock time now, Unix epoch nanoseconds: epoch_unix_ns + rt_now. */
int64_t rt_wall_ns(const rt_world_t *w);
uint64_t rt_world_seed(const rt_world_t *w);
uint64_t rt_world_hash(const rt_world_t *w);
/* Messages delivered so far: the sequence number of the next delivery. */
uint64_t rt_world_deliveries(const rt_world_t *w);
/* Timer firings so far (rt_world_stats_t.timers_fired, without the copy). */
uint64_t rt_world_timers_fired(const rt_world_t *w);

typedef struct rt_world_stats {
  uint64_t actors_spawned;
  uint64_t actors_stopped;
  uint32_t actors_live;
  uint32_t timers_live;
  uint64_t sent;              /* rt_send calls that reached a mailbox */
  uint64_t delivered;         /* messages and signals handed to behaviours */
  uint64_t delivered_signals; /* of which signals (timers, DOWN, streams) */
  uint64_t dead_letters;      /* sends to actors that do not exist */
  uint64_t dropped_at_stop;   /* queued messages released by a stop */
  uint64_t mailbox[RT_MB_REASON_COUNT_]; /* overflow outcomes, all actors */
  uint64_t timers_fired;
  uint64_t timers_missed; /* periodic firings coalesced while pending */
} rt_world_stats_t;

void rt_world_stats(const rt_world_t *w, rt_world_stats_t *out);

/* Check the runtime's invariants (rt_world.c) over every live actor, and
 * that every message is accounted for: each one queued (`sent`) was
 * delivered, released by a stop, or is still queued. Between turns only;
 * O(actors). 0, or -1 with the first violation in why (cap bytes). */
int rt_world_check(const rt_world_t *w, char *why, size_t cap);

/* ---- Randomness ---------------------------------------------------------- */

/* A random stream for `key` (RT_RNG_KEY) derived from the world's seed. */
void rt_world_rng(const rt_world_t *w, uint64_t key, rt_rng_t *out);

/* ---- Actors -------------------------------------------------------------- */

/* Handle one message. `msg` is borrowed for the call (see rt_msg.h). */
typedef void rt_behaviour_fn(rt_actor_t *self, const rt_msg_t *msg);
/* Called once when the actor stops, before its DOWNs go out: free the
 * state, close streams. The actor can still send but no longer receive. */
typedef void rt_on_stop_fn(rt_actor_t *self, int reason);

typedef struct rt_actor_spec {
  const char *name; /* static string, for logs */
  rt_behaviour_fn *behaviour;
  rt_on_stop_fn *on_stop;          /* may be NULL */
  void *state;                     /* owned by the actor from spawn on */
  uint32_t mailbox_cap;            /* the bound; see rt_mailbox.h */
  rt_overflow_t overflow;          /* default policy */
  const rt_overflow_rule_t *rules; /* per-tag policies (copied) */
  uint32_t rules_len;
} rt_actor_spec_t;

/* Spawn an actor. On success *id_out is its id (unique in the world and
 * greater than every earlier id). On failure on_stop is not called and the
 * caller keeps the state. */
int rt_spawn(rt_world_t *w, const rt_actor_spec_t *spec, rt_actor_id_t *id_out);

/* Send *msg to actor `to`. Returns RT_PUSH_QUEUED/DROPPED/REPLACED (the
 * runtime took the message's buffer) or a negative error: RT_ENOACTOR (also
 * counted as a dead letter), RT_EFULL (REJECT policy), RT_ENOMEM; then the
 * caller still owns the buffer. msg is borrowed. */
int rt_send(rt_world_t *w, rt_actor_id_t to, const rt_msg_t *msg);

/* Stop an actor: if it is running, after its current message; otherwise now.
 * Queued messages are released and counted; its timers are cancelled; its
 * monitors receive DOWN with `reason`. RT_ENOACTOR if it is not alive. */
int rt_stop(rt_world_t *w, rt_actor_id_t id, int reason);

bool rt_alive(const rt_world_t *w, rt_actor_id_t id);

/* Watch `target` for `watcher`: when target stops, watcher gets one
 * RT_TAG_DOWN message (rt_down_t) with the reason. A target that is not
 * alive yields a DOWN with RT_REASON_NOPROC. *ref_out names the monitor. */
int rt_monitor(rt_world_t *w, rt_actor_id_t watcher, rt_actor_id_t target,
               uint64_t *ref_out);

/* Remove a monitor; no DOWN for it is delivered afterwards (one already
 * pending is withdrawn). RT_ENOTFOUND when it is gone already. */
int rt_demonitor(rt_world_t *w, uint64_t ref);

/* ---- Nodes ---------------------------------------------------------------
 *
 * A node is one process of a simulated cluster: every actor belongs to one,
 * 0 unless a driver says otherwise. An actor spawned by a behaviour (or an
 * on_stop) belongs to its spawner's node; one spawned by the driver, to the
 * node set by rt_world_set_node. So a driver that sets node n, builds a
 * server and sets 0 again has every actor of that server, then and later,
 * in node n, and can stall or crash it as a whole:
 *  - paused, a node's actors take no turns: messages, timers and stream
 *    events queue for them as ever (their mailboxes' bounds apply), and the
 *    clock goes on; resumed, those with work are queued in id order;
 *  - stopped, every actor of the node stops at once, as rt_stop does.
 * Nodes are not hashed: which actor is in which follows from the order
 * things were spawned in, which the hash already covers. */
#define RT_NODES_MAX 64u

/* The node of actors the driver spawns from now on (< RT_NODES_MAX).
 * Outside any turn. RT_EINVAL past the maximum. */
int rt_world_set_node(rt_world_t *w, uint32_t node);
/* The node of a live actor; 0 for one that does not exist. */
uint32_t rt_actor_node(const rt_world_t *w, rt_actor_id_t id);
/* Pause or resume a node; outside any turn. Pausing a paused node, or
 * resuming a running one, does nothing. */
void rt_world_node_pause(rt_world_t *w, uint32_t node);
void rt_world_node_resume(rt_world_t *w, uint32_t node);
bool rt_world_node_paused(const rt_world_t *w, uint32_t node);
/* Stop every live actor of the node, in id order, with `reason` (and any
 * its on_stops spawn there). Outside any turn. Returns how many stopped. */
uint32_t rt_world_node_stop(rt_world_t *w, uint32_t node, int reason);

/* Inside a behaviour. */
rt_actor_id_t rt_self(const rt_actor_t *self);
void *rt_state(const rt_actor_t *self);
rt_world_t *rt_actor_world(const rt_actor_t *self);
/* Messages still queued for the running actor (not counting the one being
 * handled): lets a behaviour batch work until its mailbox runs dry without
 * looking itself up by id. */
uint32_t rt_self_pending(const rt_actor_t *self);

/* The mailbox of a live actor, for metrics and tests; NULL if not alive. */
const rt_mailbox_t *rt_actor_mailbox(const rt_world_t *w, rt_actor_id_t id);

/* ---- Timers -------------------------------------------------------------- */

/* Start a timer for `owner`: it fires `delay` from now, then every `period`
 * if period > 0. Each firing delivers a message tagged `tag` (RT_TAG_TIMER
 * when 0) with an rt_timer_event_t. Timers are ordered by (deadline, start
 * sequence), so equal deadlines fire in the order they were started. An
 * owner's timers are cancelled when it stops. */
int rt_timer_start(rt_world_t *w, rt_actor_id_t owner, rt_time_ns delay,
                   rt_time_ns period, uint16_t tag, uint64_t data,
                   uint64_t *timer_out);

/* A timer that calls fn(w, arg, timer) directly when it fires, outside any
 * actor: for backends (simulated links) and drivers. arg is borrowed. */
typedef void rt_timer_fn(rt_world_t *w, void *arg, uint64_t timer);
int rt_timer_start_fn(rt_world_t *w, rt_time_ns delay, rt_time_ns period,
                      rt_timer_fn *fn, void *arg, uint64_t *timer_out);

/* Cancel: no delivery happens after this returns, even one already due.
 * RT_ENOTFOUND for a finished or unknown timer. */
int rt_timer_cancel(rt_world_t *w, uint64_t timer);

/* ---- Logging ------------------------------------------------------------- */

/* One key=value line: "t=<world seconds> level=<l> event=<event> [actor=<id>]
 * <fmt...>". fmt should itself be key=value pairs. Lines over
 * RT_LOG_LINE_MAX are cut and end in "...". */
void rt_log(rt_world_t *w, int level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* "debug" .. "off" (a flag's value): the level, or RT_EINVAL. */
int rt_log_level_parse(const char *name);

#endif
