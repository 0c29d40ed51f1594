#include "rt_port.h"

#include "rt_assert.h"
#include "runtime_int.h"

#include <stdlib.h>

int rt_port_open(rt_world_t *w, rt_actor_id_t owner, rt_port_t **out) {
  rt_port_t *p = calloc(1, sizeof(*p));
  if (p == NULL)
    return RT_ENOMEM;
  p->sig.kind = RT_SIGNAL_PORT;
  p->world = w;
  p->id = rt__next_stream_id(w);
  p->owner = owner;
  p->next = w->ports;
  w->ports = p;
  *out = p;
  return RT_OK;
}

int rt_port_watch(rt_port_t *p, int fd, uint32_t events) {
  rt_world_t *w = p->world;
  if (w->backend.watch == NULL)
    return events == 0 ? RT_OK : RT_ENOTSUP;
  int rc = w->backend.watch(w->backend_ctx, p, fd, events);
  if (rc == RT_OK)
    p->watching = events;
  return rc;
}

void rt_port_notify(rt_port_t *p, uint32_t events) {
  rt_world_t *w = p->world;
  if (w->tap != NULL && w->tap->notify != NULL && w->current == NULL)
    w->tap->notify(w->tap_ctx, p->id, events);
  p->events |= events;
  rt__signal_post(w, p->owner, &p->sig);
}

void rt_port_close(rt_port_t *p) {
  if (p == NULL)
    return;
  rt_world_t *w = p->world;
  if (p->watching != 0 && w->backend.watch != NULL)
    (void)w->backend.watch(w->backend_ctx, p, -1, 0);
  rt__signal_unlink(&p->sig);
  for (rt_port_t **at = &w->ports; *at != NULL; at = &(*at)->next) {
    if (*at == p) {
      *at = p->next;
      break;
    }
  }
  free(p);
}

rt_port_t *rt_world_port(rt_world_t *w, uint64_t id) {
  for (rt_port_t *p = w->ports; p != NULL; p = p->next)
    if (p->id == id)
      return p;
  return NULL;
}
