#include "rt_stream.h"

#include "rt_assert.h"
#include "rt_hash.h"
#include "runtime_int.h"

/* Kinds of input folded into the run hash by rt_world_hash_input. */
enum { HASH_READ = 0x5245 /* "RE" */, HASH_WRITE = 0x5752 /* "WR" */ };

void rt_stream_init(rt_stream_t *s, rt_world_t *w, const rt_stream_ops_t *ops) {
  RT_WASSERT(w, ops != NULL);
  memset(s, 0, sizeof(*s));
  s->sig.kind = RT_SIGNAL_STREAM;
  s->ops = ops;
  s->world = w;
  s->id = rt__next_stream_id(w);
}

/* The tap, if any, of s's world (rt_tap.h). */
static const rt_tap_t *tap_of(const rt_world_t *w) { return w->tap; }

void rt_stream_notify(rt_stream_t *s, uint32_t events) {
  if (s->closed)
    return;
  const rt_tap_t *tap = tap_of(s->world);
  if (tap != NULL && tap->notify != NULL && s->world->current == NULL)
    tap->notify(s->world->tap_ctx, s->id, events);
  s->events |= events;
  rt__signal_post(s->world, s->owner, &s->sig);
}

void rt_stream_set_owner(rt_stream_t *s, rt_actor_id_t owner) {
  rt__signal_unlink(&s->sig);
  s->owner = owner;
  if (s->events != 0)
    rt__signal_post(s->world, owner, &s->sig);
}

int64_t rt_stream_read(rt_stream_t *s, void *buf, size_t cap) {
  RT_WASSERT(s->world, !s->closed);
  int64_t n = s->ops->read(s, buf, cap);
  const rt_tap_t *tap = tap_of(s->world);
  if (tap != NULL && tap->read != NULL)
    tap->read(s->world->tap_ctx, s->id, n, buf);
  if (n > 0) {
    s->bytes_in += (uint64_t)n;
    /* Hash the bytes only for a hash that is kept (the live server turns
     * it off unless recording): they are every byte the server reads. */
    if (!s->world->cfg.hash_disabled)
      rt_world_hash_input(s->world, HASH_READ, s->id,
                          rt_hash_bytes(buf, (size_t)n, 0));
  } else if (n < 0) {
    rt_world_hash_input(s->world, HASH_READ, s->id, (uint64_t)n);
  }
  return n;
}

int64_t rt_stream_write(rt_stream_t *s, const void *buf, size_t len) {
  RT_WASSERT(s->world, !s->closed);
  int64_t n = s->ops->write(s, buf, len);
  if (n > 0)
    s->bytes_out += (uint64_t)n;
  rt_world_t *w = s->world;
  if (w->tap != NULL) {
    if (n > 0) {
      uint64_t h = rt_hash_bytes(buf, (size_t)n, s->id);
      s->out_hash = rt_hash_step(s->out_hash, h);
      w->output_hash = rt_hash_step(w->output_hash, h);
    }
    if (w->tap->write != NULL)
      w->tap->write(w->tap_ctx, s->id, buf, len, n);
  }
  /* How much a write accepted is an input from the world (the peer's pace). */
  rt_world_hash_input(s->world, HASH_WRITE, s->id, (uint64_t)n);
  return n;
}

size_t rt_stream_backlog(const rt_stream_t *s) {
  size_t v = s->ops->backlog(s);
  const rt_tap_t *tap = tap_of(s->world);
  if (tap != NULL && tap->backlog != NULL)
    tap->backlog(s->world->tap_ctx, s->id, v);
  return v;
}

int rt_stream_peer(const rt_stream_t *s, char *out, size_t cap) {
  RT_WASSERT(s->world, cap >= RT_PEER_MAX);
  out[0] = '\0';
  if (s->ops->peer == NULL || s->ops->peer(s, out, cap) < 0) {
    out[0] = '\0';
    return RT_ENOTFOUND;
  }
  return RT_OK;
}

void rt_stream_shutdown(rt_stream_t *s) {
  RT_WASSERT(s->world, !s->closed);
  const rt_tap_t *tap = tap_of(s->world);
  if (tap != NULL && tap->shutdown != NULL)
    tap->shutdown(s->world->tap_ctx, s->id);
  s->ops->shutdown(s);
}

void rt_stream_close(rt_stream_t *s) {
  if (s == NULL)
    return;
  RT_WASSERT(s->world, !s->closed);
  s->closed = 1;
  rt__signal_unlink(&s->sig);
  const rt_tap_t *tap = tap_of(s->world);
  if (tap != NULL && tap->close != NULL)
    tap->close(s->world->tap_ctx, s);
  s->ops->destroy(s);
}

int rt_stream_connect(rt_world_t *w, const char *host, uint16_t port,
                      rt_actor_id_t owner, rt_stream_t **out) {
  RT_WASSERT(w, host != NULL);
  RT_WASSERT(w, out != NULL);
  *out = NULL;
  int rc = RT_ENOTSUP;
  if (w->backend.connect != NULL)
    rc = w->backend.connect(w->backend_ctx, host, port, owner, out);
  RT_WASSERT(w, rc <= 0);
  if (rc == RT_OK) { /* the backend's promise (rt_backend_t.connect) */
    RT_WASSERT(w, *out != NULL);
    RT_WASSERT(w, (*out)->owner == owner);
  }
  if (rc < 0)
    *out = NULL;
  const rt_tap_t *tap = tap_of(w);
  if (tap != NULL && tap->connect != NULL)
    tap->connect(w->tap_ctx, host, port, rc, rc == RT_OK ? (*out)->id : 0);
  return rc;
}

/* ---- Listeners ----------------------------------------------------------- */

void rt_listener_init(rt_listener_t *l, rt_world_t *w,
                      const rt_listener_ops_t *ops, rt_actor_id_t owner) {
  RT_WASSERT(w, ops != NULL);
  memset(l, 0, sizeof(*l));
  l->sig.kind = RT_SIGNAL_LISTENER;
  l->ops = ops;
  l->world = w;
  l->id = rt__next_stream_id(w);
  l->owner = owner;
}

void rt_listener_notify(rt_listener_t *l) {
  if (l->closed)
    return;
  const rt_tap_t *tap = tap_of(l->world);
  if (tap != NULL && tap->notify != NULL && l->world->current == NULL)
    tap->notify(l->world->tap_ctx, l->id, RT_STREAM_READABLE);
  l->events |= RT_STREAM_READABLE;
  rt__signal_post(l->world, l->owner, &l->sig);
}

int rt_listener_accept(rt_listener_t *l, rt_stream_t **out) {
  RT_WASSERT(l->world, !l->closed);
  int rc = l->ops->accept(l, out);
  const rt_tap_t *tap = tap_of(l->world);
  if (tap != NULL && tap->accept != NULL)
    tap->accept(l->world->tap_ctx, l->id, rc, rc == 1 ? (*out)->id : 0);
  return rc;
}

void rt_listener_close(rt_listener_t *l) {
  if (l == NULL)
    return;
  RT_WASSERT(l->world, !l->closed);
  l->closed = 1;
  rt__signal_unlink(&l->sig);
  l->ops->destroy(l);
}

void *rt__source_take(rt_signal_t *sig, rt_stream_event_t *ev) {
  memset(ev, 0, sizeof(*ev));
  if (sig->kind == RT_SIGNAL_STREAM) {
    rt_stream_t *s = (rt_stream_t *)sig;
    ev->id = s->id;
    ev->events = s->events;
    s->events = 0;
    return s;
  }
  RT_ASSERT(sig->kind == RT_SIGNAL_LISTENER);
  rt_listener_t *l = (rt_listener_t *)sig;
  ev->id = l->id;
  ev->events = l->events;
  l->events = 0;
  return l;
}
