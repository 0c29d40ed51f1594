/* sim_pipe.c: simulated connections (see sim_pipe.h for the model).
 *
 * Per direction, byte totals satisfy read <= arrived <= written and
 * written - read <= buffer (Invariant D1). Bytes in [read, written) sit in a
 * ring; segments record (end offset, arrival time) for [arrived, written),
 * in nondecreasing time (D2). One function timer per direction is armed
 * while segments are pending (D3). One more per end is armed while
 * sim_connect_async's round trip lasts, and cancelled when the end closes
 * or the pipe resets first (D4), so none fires on a freed end.
 *
 * Holds. Arrivals this way wait while any of three windows covers their
 * time: the link's configured stall, sim_stream_stall's, and the partition
 * of the pipe's (group, port) (sim_world_partition), which the world keeps
 * and the pipe looks up each time, so a pipe connected during a window is
 * held by it without being told. A hold only ever moves a time later, and
 * the same function of time (dir_release_at, nondecreasing) is applied to
 * every segment, so a hold cannot reorder segments (D2 holds after it).
 * A timer is armed for the release time it computed; when a partition
 * changes, its pipes re-arm (sim__pipes_repartition), since a shortened
 * window must not wait for its old end (an extended one would only cost
 * a spurious wake-up).
 */
#include "sim_int.h"

#include "rt_assert.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SIM_SEGMENTS_MIN 8u
#define SIM_RING_FIRST 4096u /* a ring's first size */
/* Spare rings and segment arrays a world keeps, of each. */
#define SIM_SPARES_MAX 256u

typedef struct sim_segment {
  uint64_t end;  /* byte total after this segment */
  rt_time_ns at; /* arrival time */
  bool eof;      /* the writer finished after `end` */
} sim_segment_t;

typedef struct sim_dir {
  sim_pipe_t *pipe;
  int index; /* this is pipe->dirs[index] */
  sim_link_config_t cfg;
  uint8_t *ring;
  uint32_t ring_len;
  uint64_t ring_base; /* the stream offset ring[0] starts from */
  uint64_t written, arrived, read;
  sim_segment_t *segs;
  uint32_t segs_len, segs_head, segs_count;
  rt_time_ns link_free_at;
  rt_time_ns last_at;
  /* Arrivals wait during the configured window [cfg.stall_at, cfg.stall_at +
   * cfg.stall_for) and during the window of sim_stream_stall, [stall_from,
   * stall_until). Kept apart: merging them into one window would stretch a
   * manual stall up to the end of a later configured one. */
  rt_time_ns stall_from;
  rt_time_ns stall_until;
  uint64_t timer;     /* 0: none armed */
  bool eof_sent;      /* writer shut down */
  bool eof_arrived;   /* reader may see EOF once all is read */
  bool want_writable; /* the writer saw a short write */
} sim_dir_t;

typedef struct sim_end {
  rt_stream_t stream; /* first: the runtime casts rt_stream_t* to this */
  sim_pipe_t *pipe;
  int index;
  bool destroyed;
  /* sim_connect_async's end, until its round trip is over: reads and
   * writes answer 0, as a live socket's do while it connects. */
  bool connecting;
  uint64_t connect_timer; /* 0: none armed */
  rt_time_ns connect_at;  /* when the round trip is over, holds aside */
} sim_end_t;

struct sim_pipe {
  /* Together at the start: what every read and write reads besides its
   * end and direction (sw, reset, refused; rng when a link has jitter). */
  sim_world_t *sw;
  bool reset;
  /* Nobody took the connection (sim_connect_async with no listener): the
   * pipe is reset once the connect's round trip is over, and its reads
   * and writes answer RT_ECONNREFUSED rather than RT_ERESET. */
  bool refused;
  /* Where a connect made it: the sim_listen port and the group the world's
   * connect-links hook gave it (0: none; sim_connect, sim_connect_async
   * and sim_pipe_create give none); sim_pipe_create's pipes have port 0.
   * Kept so a partition can find the pipes it holds. */
  uint16_t port;
  uint32_t group;
  rt_rng_t rng; /* jitter */
  sim_pipe_t *next, *prev;
  sim_end_t ends[2];
  sim_dir_t dirs[2]; /* dirs[i]: from ends[i] to ends[1 - i] */
  /* sim_connect's caller: its address, as the server end's peer, is made
   * from it (one address per connecting actor); 0: unknown. */
  rt_actor_id_t client_owner;
};

struct sim_listener {
  rt_listener_t listener; /* first */
  sim_world_t *sw;
  uint16_t port;
  rt_stream_t **pending;
  uint32_t pending_head, pending_count, pending_cap;
};

static const rt_stream_ops_t sim_stream_ops;

static sim_end_t *end_of(const rt_stream_t *s) {
  RT_ASSERT(s->ops == &sim_stream_ops);
  return (sim_end_t *)s;
}

bool sim_stream_is_sim(const rt_stream_t *s) {
  return s->ops == &sim_stream_ops;
}

static rt_world_t *pipe_world(const sim_pipe_t *p) { return p->sw->world; }

/* ---- Direction bookkeeping ----------------------------------------------- */

static uint32_t dir_buffer(const sim_dir_t *d) { return d->cfg.buffer; }

static int dir_init(sim_dir_t *d, const sim_link_config_t *cfg) {
  memset(d, 0, sizeof(*d));
  if (cfg != NULL)
    d->cfg = *cfg;
  if (d->cfg.buffer == 0)
    d->cfg.buffer = SIM_BUFFER_DEFAULT;
  if (d->cfg.mss == 0)
    d->cfg.mss = SIM_MSS_DEFAULT;
  if (d->cfg.buffer > SIM_BUFFER_MAX || d->cfg.latency < 0 ||
      d->cfg.jitter < 0 || d->cfg.stall_at < 0 || d->cfg.stall_for < 0 ||
      d->cfg.stall_for > RT_TIME_NEVER - d->cfg.stall_at)
    return RT_EINVAL;
  return RT_OK;
}

/* ---- Spares -------------------------------------------------------------- */

/* A direction holds a ring and a segment array only while bytes are in
 * flight: once the reader has taken everything written, they go back to
 * the world (if of the first size), and the next write takes one. A run's
 * thousands of connections each send a message now and then; with a ring
 * of their own, each message was written to and read from lines that had
 * long left the cache. Spares are taken last given first, so the one taken
 * is likely still cached. */
static void *spare_take(sim_spare_t **list, uint32_t *len, size_t size) {
  sim_spare_t *s = *list;
  if (s == NULL)
    return malloc(size);
  *list = s->next;
  (*len)--;
  return s;
}

static void spare_give(sim_spare_t **list, uint32_t *len, void *mem) {
  if (*len == SIM_SPARES_MAX) {
    free(mem);
    return;
  }
  sim_spare_t *s = mem;
  s->next = *list;
  *list = s;
  (*len)++;
}

static void spares_free(sim_spare_t **list, uint32_t *len) {
  while (*list != NULL) {
    sim_spare_t *s = *list;
    *list = s->next;
    free(s);
  }
  *len = 0;
}

void sim__spares_free(sim_world_t *sw) {
  spares_free(&sw->spare_rings, &sw->spare_rings_len);
  spares_free(&sw->spare_segs, &sw->spare_segs_len);
}

/* The ring, once empty, and the segment array, once no segment waits. */
static void dir_give_back(sim_world_t *sw, sim_dir_t *d) {
  if (d->ring != NULL && d->read == d->written) {
    if (d->ring_len == SIM_RING_FIRST)
      spare_give(&sw->spare_rings, &sw->spare_rings_len, d->ring);
    else
      free(d->ring);
    d->ring = NULL;
    d->ring_len = 0;
  }
  if (d->segs != NULL && d->segs_count == 0) {
    if (d->segs_len == SIM_SEGMENTS_MIN)
      spare_give(&sw->spare_segs, &sw->spare_segs_len, d->segs);
    else
      free(d->segs);
    d->segs = NULL;
    d->segs_len = d->segs_head = 0;
  }
}

static void dir_deinit(rt_world_t *w, sim_dir_t *d) {
  if (d->timer != 0)
    (void)rt_timer_cancel(w, d->timer);
  d->timer = 0;
  free(d->ring);
  free(d->segs);
  d->ring = NULL;
  d->segs = NULL;
}

/* The first time at or after t (t >= now) that the partition of the
 * pipe's (group, port) does not hold; t when it has none. */
static rt_time_ns pipe_release_at(const sim_pipe_t *p, rt_time_ns t) {
  if (p->group == 0)
    return t;
  return sim__partition_release_at(p->sw, p->group, p->port, t);
}

#define SIM_HOLDS 3 /* windows in dir_release_at */

/* The first time at or after t (t >= now) outside every window that holds
 * arrivals this way. They may overlap or abut in any order. A window only
 * moves t to its end and t never re-enters a window it has passed, so
 * each pass that changes t leaves one window behind for good: SIM_HOLDS
 * passes that change it, then one that does not. */
static rt_time_ns dir_release_at(const sim_dir_t *d, rt_time_ns t) {
  rt_time_ns cfg_until = d->cfg.stall_at + d->cfg.stall_for;
  for (int pass = 0; pass <= SIM_HOLDS; pass++) {
    rt_time_ns before = t;
    if (t >= d->stall_from && t < d->stall_until)
      t = d->stall_until;
    if (t >= d->cfg.stall_at && t < cfg_until)
      t = cfg_until;
    t = pipe_release_at(d->pipe, t);
    if (t == before)
      return t;
  }
  RT_WASSERT(pipe_world(d->pipe), !"a hold window moved t back");
  return t;
}

static bool dir_stalled_at(const sim_dir_t *d, rt_time_ns t) {
  return dir_release_at(d, t) != t;
}

/* Grow the ring to hold `need` unread bytes. Byte k of the stream lives at
 * ring[(k - ring_base) % ring_len], so growing re-places the unread bytes.
 * An empty ring starts again at ring[0] (ring_base = written): a message
 * then lands in the line the last one used, which may still be in cache,
 * instead of walking the whole ring. (memcpy into cold lines was a third
 * of a cluster run's last-level write misses; this took a sixth of those
 * away, cachegrind.) */
static int ring_reserve(sim_dir_t *d, uint64_t need) {
  if (d->read == d->written)
    d->ring_base = d->written;
  if (need <= d->ring_len)
    return RT_OK;
  uint32_t len = d->ring_len == 0 ? SIM_RING_FIRST : d->ring_len;
  while (len < need)
    len *= 2;
  if (len > dir_buffer(d))
    len = dir_buffer(d);
  sim_world_t *sw = d->pipe->sw;
  uint8_t *ring = len == SIM_RING_FIRST
                      ? spare_take(&sw->spare_rings, &sw->spare_rings_len, len)
                      : malloc(len);
  if (ring == NULL)
    return RT_ENOMEM;
  for (uint64_t k = d->read; k < d->written; k++)
    ring[(k - d->ring_base) % len] = d->ring[(k - d->ring_base) % d->ring_len];
  free(d->ring);
  d->ring = ring;
  d->ring_len = len;
  return RT_OK;
}

/* Copy between the ring and a flat buffer for stream bytes [from, from+n). */
static void ring_put(sim_dir_t *d, uint64_t from, const uint8_t *src,
                     uint64_t n) {
  uint32_t at = (uint32_t)((from - d->ring_base) % d->ring_len);
  uint64_t first = n < d->ring_len - at ? n : d->ring_len - at;
  memcpy(d->ring + at, src, first);
  memcpy(d->ring, src + first, n - first);
}

static void ring_get(const sim_dir_t *d, uint64_t from, uint8_t *dst,
                     uint64_t n) {
  uint32_t at = (uint32_t)((from - d->ring_base) % d->ring_len);
  uint64_t first = n < d->ring_len - at ? n : d->ring_len - at;
  memcpy(dst, d->ring + at, first);
  memcpy(dst + first, d->ring, n - first);
}

static int segs_push(sim_dir_t *d, sim_segment_t seg) {
  if (d->segs_count == d->segs_len) {
    uint32_t len = d->segs_len == 0 ? SIM_SEGMENTS_MIN : d->segs_len * 2;
    sim_world_t *sw = d->pipe->sw;
    size_t size = (size_t)len * sizeof(sim_segment_t);
    sim_segment_t *segs =
        len == SIM_SEGMENTS_MIN
            ? spare_take(&sw->spare_segs, &sw->spare_segs_len, size)
            : malloc(size);
    if (segs == NULL)
      return RT_ENOMEM;
    for (uint32_t i = 0; i < d->segs_count; i++)
      segs[i] = d->segs[(d->segs_head + i) % d->segs_len];
    free(d->segs);
    d->segs = segs;
    d->segs_len = len;
    d->segs_head = 0;
  }
  d->segs[(d->segs_head + d->segs_count) % d->segs_len] = seg;
  d->segs_count++;
  return RT_OK;
}

static void on_arrival(rt_world_t *w, void *arg, uint64_t timer);

static void dir_arm(sim_pipe_t *p, int index) {
  sim_dir_t *d = &p->dirs[index];
  if (d->timer != 0 || d->segs_count == 0)
    return;
  rt_world_t *w = pipe_world(p);
  rt_time_ns at = d->segs[d->segs_head].at;
  if (at < rt_now(w))
    at = rt_now(w); /* held back: due now, unless a window holds it longer */
  at = dir_release_at(d, at);
  rt_time_ns delay = at > rt_now(w) ? at - rt_now(w) : 0;
  int err = rt_timer_start_fn(w, delay, 0, on_arrival, d, &d->timer);
  RT_WASSERT(w, err == RT_OK);
}

static void on_arrival(rt_world_t *w, void *arg, uint64_t timer) {
  (void)timer;
  sim_dir_t *d = arg;
  sim_pipe_t *p = d->pipe;
  int index = d->index;
  d->timer = 0;
  rt_time_ns now = rt_now(w);
  if (dir_stalled_at(d, now)) {
    dir_arm(p, index);
    return;
  }
  bool arrived = false, eof = false;
  while (d->segs_count > 0 && d->segs[d->segs_head].at <= now) {
    sim_segment_t seg = d->segs[d->segs_head];
    d->segs_head = (d->segs_head + 1) % d->segs_len;
    d->segs_count--;
    RT_WASSERT(w, seg.end >= d->arrived);
    if (seg.end > d->arrived)
      arrived = true;
    d->arrived = seg.end;
    if (seg.eof) {
      d->eof_arrived = true;
      eof = true;
    }
  }
  dir_give_back(p->sw, d);
  sim_end_t *reader = &p->ends[1 - index];
  if (!reader->destroyed && (arrived || eof))
    rt_stream_notify(&reader->stream, (arrived ? RT_STREAM_READABLE : 0) |
                                          (eof ? RT_STREAM_CLOSED : 0));
  dir_arm(p, index);
}

/* Queue [written, written + len) (or an EOF marker) for arrival. */
static int dir_transmit(sim_pipe_t *p, int index, uint64_t len, bool eof) {
  sim_dir_t *d = &p->dirs[index];
  rt_world_t *w = pipe_world(p);
  rt_time_ns now = rt_now(w);
  uint64_t offset = d->written;
  uint64_t left = len;
  do {
    uint64_t seg_len = left < d->cfg.mss ? left : d->cfg.mss;
    rt_time_ns start = d->link_free_at > now ? d->link_free_at : now;
    rt_time_ns tx = 0;
    if (d->cfg.bandwidth > 0 && seg_len > 0)
      tx = (rt_time_ns)((seg_len * (uint64_t)RT_NS_PER_S + d->cfg.bandwidth -
                         1) /
                        d->cfg.bandwidth);
    d->link_free_at = start + tx;
    rt_time_ns at = d->link_free_at + d->cfg.latency;
    if (d->cfg.jitter > 0)
      at += (rt_time_ns)rt_rng_below(&p->rng, (uint64_t)d->cfg.jitter + 1);
    if (at < d->last_at)
      at = d->last_at; /* Invariant D2: no overtaking */
    d->last_at = at;
    offset += seg_len;
    left -= seg_len;
    sim_segment_t seg = {.end = offset, .at = at, .eof = eof && left == 0};
    int err = segs_push(d, seg);
    if (err < 0)
      return err;
  } while (left > 0);
  dir_arm(p, index);
  return RT_OK;
}

/* ---- Stream operations --------------------------------------------------- */

/* No connect ends at e after this (its pipe was reset, or e closed):
 * Invariant D4. */
static void end_connect_cancel(rt_world_t *w, sim_end_t *e) {
  if (e->connect_timer != 0)
    (void)rt_timer_cancel(w, e->connect_timer);
  e->connect_timer = 0;
  e->connecting = false;
}

static void pipe_reset(sim_pipe_t *p) {
  if (p->reset)
    return;
  p->reset = true;
  rt_world_t *w = pipe_world(p);
  for (int i = 0; i < 2; i++)
    end_connect_cancel(w, &p->ends[i]);
  for (int i = 0; i < 2; i++) {
    sim_dir_t *d = &p->dirs[i];
    if (d->timer != 0)
      (void)rt_timer_cancel(w, d->timer);
    d->timer = 0;
    d->segs_count = 0;
    d->read = d->arrived = d->written;
  }
  for (int i = 0; i < 2; i++)
    if (!p->ends[i].destroyed)
      rt_stream_notify(&p->ends[i].stream, RT_STREAM_CLOSED);
}

static int64_t sim_read(rt_stream_t *s, void *buf, size_t cap) {
  sim_end_t *e = end_of(s);
  sim_pipe_t *p = e->pipe;
  if (p->reset)
    return p->refused ? RT_ECONNREFUSED : RT_ERESET;
  if (e->connecting)
    return 0;
  sim_dir_t *d = &p->dirs[1 - e->index];
  uint64_t avail = d->arrived - d->read;
  if (avail == 0)
    return d->eof_arrived && d->arrived == d->written ? RT_EOF : 0;
  uint64_t n = avail < cap ? avail : cap;
  ring_get(d, d->read, buf, n);
  d->read += n;
  dir_give_back(p->sw, d);
  sim_end_t *writer = &p->ends[1 - e->index];
  if (d->want_writable && !writer->destroyed) {
    d->want_writable = false;
    rt_stream_notify(&writer->stream, RT_STREAM_WRITABLE);
  }
  return (int64_t)n;
}

static int64_t sim_write(rt_stream_t *s, const void *buf, size_t len) {
  sim_end_t *e = end_of(s);
  sim_pipe_t *p = e->pipe;
  if (p->reset)
    return p->refused ? RT_ECONNREFUSED : RT_ERESET;
  if (e->connecting)
    return 0; /* WRITABLE comes with CONNECTED */
  sim_dir_t *d = &p->dirs[e->index];
  if (d->eof_sent || p->ends[1 - e->index].destroyed)
    return RT_EPIPE;
  uint64_t space = dir_buffer(d) - (d->written - d->read); /* Invariant D1 */
  uint64_t n = len < space ? len : space;
  bool reset_now = false;
  if (d->cfg.reset_after > 0 && d->written + n >= d->cfg.reset_after) {
    n = d->cfg.reset_after - d->written; /* cut mid-message */
    reset_now = true;
  }
  if (n > 0) {
    int err = ring_reserve(d, d->written - d->read + n);
    if (err < 0)
      return err;
    ring_put(d, d->written, buf, n);
    err = dir_transmit(p, e->index, n, false);
    if (err < 0)
      return err;
    d->written += n;
  }
  if (reset_now) {
    pipe_reset(p);
    return n > 0 ? (int64_t)n : RT_ERESET;
  }
  if (n < len)
    d->want_writable = true;
  return (int64_t)n;
}

static size_t sim_backlog(const rt_stream_t *s) {
  const sim_end_t *e = end_of(s);
  const sim_dir_t *d = &e->pipe->dirs[e->index];
  return (size_t)(d->written - d->read);
}

static void sim_shutdown(rt_stream_t *s) {
  sim_end_t *e = end_of(s);
  sim_pipe_t *p = e->pipe;
  sim_dir_t *d = &p->dirs[e->index];
  if (p->reset || d->eof_sent)
    return;
  d->eof_sent = true;
  int err = dir_transmit(p, e->index, 0, true);
  RT_WASSERT(pipe_world(p), err == RT_OK);
}

static void pipe_free(sim_pipe_t *p) {
  sim_world_t *sw = p->sw;
  if (p->prev != NULL)
    p->prev->next = p->next;
  else
    sw->pipes = p->next;
  if (p->next != NULL)
    p->next->prev = p->prev;
  dir_deinit(sw->world, &p->dirs[0]);
  dir_deinit(sw->world, &p->dirs[1]);
  end_connect_cancel(sw->world, &p->ends[0]);
  end_connect_cancel(sw->world, &p->ends[1]);
  free(p);
}

static void sim_destroy(rt_stream_t *s) {
  sim_end_t *e = end_of(s);
  sim_pipe_t *p = e->pipe;
  end_connect_cancel(pipe_world(p), e);
  sim_shutdown(s);
  e->destroyed = true;
  /* Bytes towards a closed end will never be read. */
  sim_dir_t *in = &p->dirs[1 - e->index];
  in->read = in->arrived;
  if (p->ends[1 - e->index].destroyed)
    pipe_free(p);
}

/* The server end of a sim_connect sees the connecting actor as
 * 10.a.b.c (its id's low 24 bits): each simulated player has an address
 * of its own, which all its connections share. */
static int sim_peer(const rt_stream_t *s, char *out, size_t cap) {
  const sim_end_t *e = end_of(s);
  rt_actor_id_t id = e->pipe->client_owner;
  if (id == 0 || e->index != 1)
    return RT_ENOTFOUND;
  snprintf(out, cap, "10.%u.%u.%u", (unsigned)(id >> 16) & 255u,
           (unsigned)(id >> 8) & 255u, (unsigned)id & 255u);
  return RT_OK;
}

static const rt_stream_ops_t sim_stream_ops = {
    .read = sim_read,
    .write = sim_write,
    .backlog = sim_backlog,
    .shutdown = sim_shutdown,
    .destroy = sim_destroy,
    .peer = sim_peer,
};

int sim_pipe_create(sim_world_t *sw, const sim_link_config_t *a_to_b,
                    const sim_link_config_t *b_to_a, rt_stream_t **a,
                    rt_stream_t **b) {
  sim_pipe_t *p = calloc(1, sizeof(*p));
  if (p == NULL)
    return RT_ENOMEM;
  int err = dir_init(&p->dirs[0], a_to_b);
  if (err == RT_OK)
    err = dir_init(&p->dirs[1], b_to_a);
  for (int i = 0; i < 2; i++) {
    p->dirs[i].pipe = p;
    p->dirs[i].index = i;
  }
  if (err < 0) {
    free(p);
    return err;
  }
  p->sw = sw;
  for (int i = 0; i < 2; i++) {
    rt_stream_init(&p->ends[i].stream, sw->world, &sim_stream_ops);
    p->ends[i].pipe = p;
    p->ends[i].index = i;
  }
  rt_world_rng(sw->world, RT_RNG_KEY(RT_RNG_SUB_SIM_NET, p->ends[0].stream.id),
               &p->rng);
  p->next = sw->pipes;
  if (sw->pipes != NULL)
    sw->pipes->prev = p;
  sw->pipes = p;
  *a = &p->ends[0].stream;
  *b = &p->ends[1].stream;
  return RT_OK;
}

void sim_stream_stall(rt_stream_t *end, rt_time_ns until) {
  sim_end_t *e = end_of(end);
  sim_pipe_t *p = e->pipe;
  int index = 1 - e->index; /* the direction towards `end` */
  sim_dir_t *d = &p->dirs[index];
  rt_time_ns now = rt_now(pipe_world(p));
  if (now >= d->stall_from && now < d->stall_until) {
    if (until > d->stall_until)
      d->stall_until = until; /* extend, never shorten, the stall in force */
  } else {
    d->stall_from = now;
    d->stall_until = until;
  }
}

void sim_stream_reset(rt_stream_t *end) { pipe_reset(end_of(end)->pipe); }

void sim_stream_reset_in(rt_stream_t *end, uint64_t bytes) {
  sim_end_t *e = end_of(end);
  sim_dir_t *d = &e->pipe->dirs[1 - e->index]; /* the direction towards end */
  d->cfg.reset_after = bytes > 0 ? d->written + bytes : 0;
}

void sim__pipes_destroy_all(sim_world_t *sw) {
  while (sw->pipes != NULL)
    pipe_free(sw->pipes);
}

/* ---- Listeners ----------------------------------------------------------- */

static int sim_accept(rt_listener_t *l, rt_stream_t **out) {
  sim_listener_t *sl = (sim_listener_t *)l;
  if (sl->pending_count == 0)
    return 0;
  *out = sl->pending[sl->pending_head];
  sl->pending_head = (sl->pending_head + 1) % sl->pending_cap;
  sl->pending_count--;
  return 1;
}

static void sim_listener_destroy(rt_listener_t *l) {
  sim_listener_t *sl = (sim_listener_t *)l;
  while (sl->pending_count > 0) {
    rt_stream_t *s;
    sim_accept(l, &s);
    rt_stream_close(s);
  }
  for (uint32_t i = 0; i < SIM_LISTENERS_MAX; i++)
    if (sl->sw->listeners[i] == sl)
      sl->sw->listeners[i] = NULL;
  free(sl->pending);
  free(sl);
}

static const rt_listener_ops_t sim_listener_ops = {
    .accept = sim_accept,
    .destroy = sim_listener_destroy,
};

static sim_listener_t *listener_find(sim_world_t *sw, uint16_t port);

int sim_listen(sim_world_t *sw, uint16_t port, rt_actor_id_t owner,
               rt_listener_t **out) {
  if (listener_find(sw, port) != NULL)
    return RT_EADDR;
  uint32_t slot = 0;
  while (slot < SIM_LISTENERS_MAX && sw->listeners[slot] != NULL)
    slot++;
  if (slot == SIM_LISTENERS_MAX)
    return RT_ELIMIT;
  sim_listener_t *sl = calloc(1, sizeof(*sl));
  if (sl == NULL)
    return RT_ENOMEM;
  sl->pending_cap = SIM_ACCEPT_BACKLOG_DEFAULT;
  sl->pending = calloc(sl->pending_cap, sizeof(*sl->pending));
  if (sl->pending == NULL) {
    free(sl);
    return RT_ENOMEM;
  }
  rt_listener_init(&sl->listener, sw->world, &sim_listener_ops, owner);
  sl->sw = sw;
  sl->port = port;
  sw->listeners[slot] = sl;
  *out = &sl->listener;
  return RT_OK;
}

static sim_listener_t *listener_find(sim_world_t *sw, uint16_t port) {
  for (uint32_t i = 0; i < SIM_LISTENERS_MAX; i++)
    if (sw->listeners[i] != NULL && sw->listeners[i]->port == port)
      return sw->listeners[i];
  return NULL;
}

/* Queue a server end; RT_ECONNREFUSED when the backlog is full. */
static int listener_enqueue(sim_listener_t *sl, rt_stream_t *server_end) {
  if (sl->pending_count == sl->pending_cap)
    return RT_ECONNREFUSED;
  sl->pending[(sl->pending_head + sl->pending_count) % sl->pending_cap] =
      server_end;
  sl->pending_count++;
  rt_listener_notify(&sl->listener);
  return RT_OK;
}

void sim__listeners_destroy_all(sim_world_t *sw) {
  for (uint32_t i = 0; i < SIM_LISTENERS_MAX; i++)
    if (sw->listeners[i] != NULL)
      rt_listener_close(&sw->listeners[i]->listener);
}

/* The listener on `port` that takes a connection now, or NULL. */
static sim_listener_t *listener_taking(sim_world_t *sw, uint16_t port) {
  sim_listener_t *sl = listener_find(sw, port);
  if (sl == NULL || sl->listener.closed || sl->pending_count == sl->pending_cap)
    return NULL;
  return sl;
}

/* A pipe whose server end waits at sl (NULL: nobody takes it, and the
 * pipe is refused); its client end, owned by `owner`, into *out. */
static int pipe_to(sim_world_t *sw, sim_listener_t *sl, uint16_t port,
                   uint32_t group, rt_actor_id_t owner,
                   const sim_link_config_t *up, const sim_link_config_t *down,
                   rt_stream_t **out) {
  rt_stream_t *client, *server;
  int err = sim_pipe_create(sw, up, down, &client, &server);
  if (err < 0)
    return err;
  sim_pipe_t *p = end_of(client)->pipe;
  p->client_owner = owner;
  p->port = port;
  p->group = group;
  if (sl != NULL) {
    err = listener_enqueue(sl, server);
    RT_WASSERT(sw->world, err == RT_OK);
  } else {
    p->refused = true;
    end_of(server)->destroyed = true; /* nobody will ever hold it */
  }
  rt_stream_set_owner(client, owner);
  *out = client;
  return RT_OK;
}

int sim_connect(sim_world_t *sw, uint16_t port, rt_actor_id_t owner,
                const sim_link_config_t *up, const sim_link_config_t *down,
                rt_stream_t **out) {
  sim_listener_t *sl = listener_taking(sw, port);
  if (sl == NULL)
    return RT_ECONNREFUSED;
  return pipe_to(sw, sl, port, 0, owner, up, down, out);
}

static void on_connect_done(rt_world_t *w, void *arg, uint64_t timer);

/* Arm e's connect timer for the end of its round trip, or of the
 * partition that holds its pipe then, whichever is later. */
static void end_connect_arm(sim_end_t *e) {
  rt_world_t *w = pipe_world(e->pipe);
  RT_WASSERT(w, e->connecting);
  RT_WASSERT(w, e->connect_timer == 0);
  rt_time_ns now = rt_now(w);
  rt_time_ns at =
      pipe_release_at(e->pipe, e->connect_at > now ? e->connect_at : now);
  int err =
      rt_timer_start_fn(w, at - now, 0, on_connect_done, e, &e->connect_timer);
  RT_WASSERT(w, err == RT_OK);
}

/* The connect's round trip is over: CONNECTED, or the refusal. */
static void on_connect_done(rt_world_t *w, void *arg, uint64_t timer) {
  (void)timer;
  sim_end_t *e = arg;
  /* Armed for the window's end, and re-armed whenever it changed. */
  RT_WASSERT(w, pipe_release_at(e->pipe, rt_now(w)) == rt_now(w));
  e->connect_timer = 0;
  e->connecting = false;
  if (e->pipe->refused)
    pipe_reset(e->pipe); /* CLOSED; reads say RT_ECONNREFUSED */
  else
    rt_stream_notify(&e->stream, RT_STREAM_CONNECTED | RT_STREAM_WRITABLE);
}

int sim_connect_async(sim_world_t *sw, uint16_t port, rt_actor_id_t owner,
                      const sim_link_config_t *up,
                      const sim_link_config_t *down, rt_stream_t **out) {
  return sim__connect_async(sw, port, owner, up, down, 0, out);
}

int sim__connect_async(sim_world_t *sw, uint16_t port, rt_actor_id_t owner,
                       const sim_link_config_t *up,
                       const sim_link_config_t *down, uint32_t group,
                       rt_stream_t **out) {
  int err =
      pipe_to(sw, listener_taking(sw, port), port, group, owner, up, down, out);
  if (err < 0)
    return err;
  sim_end_t *e = end_of(*out);
  const sim_dir_t *dirs = e->pipe->dirs;
  /* A SYN there and its answer back; jitter aside, as the handshake's
   * segments are not modelled. */
  rt_time_ns round_trip = dirs[0].cfg.latency + dirs[1].cfg.latency;
  e->connecting = true;
  e->connect_at = rt_now(sw->world) + round_trip;
  end_connect_arm(e);
  return RT_OK;
}

/* Re-arm one pipe's timers against the current windows: cancel, then arm
 * again as if new (dir_arm, end_connect_arm compute from the segments and
 * connect_at, which a hold never changes). */
static void pipe_rearm(sim_pipe_t *p) {
  rt_world_t *w = pipe_world(p);
  if (p->reset)
    return; /* Invariant D4: no timers left */
  for (int i = 0; i < 2; i++) {
    sim_dir_t *d = &p->dirs[i];
    if (d->timer != 0)
      (void)rt_timer_cancel(w, d->timer);
    d->timer = 0;
    dir_arm(p, i);
  }
  for (int i = 0; i < 2; i++) {
    sim_end_t *e = &p->ends[i];
    if (e->connect_timer == 0)
      continue;
    (void)rt_timer_cancel(w, e->connect_timer);
    e->connect_timer = 0;
    end_connect_arm(e);
  }
}

void sim__pipes_repartition(sim_world_t *sw, uint32_t group, uint16_t port) {
  RT_WASSERT(sw->world, group != 0);
  /* Oldest first: timers due together fire in the order they were armed,
   * so the pipes this releases at once are served in the order they were
   * made. sw->pipes is newest first; the walk to its tail is O(pipes),
   * paid once per sim_world_partition call. */
  sim_pipe_t *p = sw->pipes;
  while (p != NULL && p->next != NULL)
    p = p->next;
  for (; p != NULL; p = p->prev)
    if (p->group == group && p->port == port)
      pipe_rearm(p);
}
