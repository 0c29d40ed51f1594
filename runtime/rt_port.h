/* rt_port.h: readiness from outside the world, for a connection the world
 * does not carry as a stream.
 *
 * Some clients own their socket and speak their protocol themselves: libpq
 * connects, authenticates and frames PostgreSQL's messages on a descriptor
 * of its own. The actor holding such a client cannot read it through
 * rt_stream.h, but it must still never wait on it: it asks the world to
 * watch the descriptor (rt_port_watch) and is signalled, like a stream's
 * owner, when it becomes readable or writable.
 *
 * A port is a signal source (rt_signal.h): the backend raises it with
 * RT_PORT_* bits and the owner gets one RT_TAG_PORT delivery (payload
 * rt_stream_event_t, ref the port) for all bits raised since the last.
 * Ports take their ids from the streams' numbering, so a tap (rt_tap.h)
 * records a notification from outside any turn as it records a stream's,
 * and a replay raises the same port again (rt_world_port finds it).
 *
 * What the owner learns from the descriptor must cross the seam as well:
 * it calls its client only inside an external (rt_external_take/put), so a
 * replay, which has no descriptor, gets the same answers from the recording
 * and never watches anything. Only a live world watches; the others answer
 * RT_ENOTSUP.
 */
#ifndef RT_PORT_H
#define RT_PORT_H

#include "rt_signal.h"
#include "rt_world.h"

#include <stdint.h>

enum {
  RT_PORT_READ = 1u << 0,
  RT_PORT_WRITE = 1u << 1,
};

typedef struct rt_port {
  rt_signal_t sig; /* runtime-owned */
  rt_world_t *world;
  uint64_t id;          /* from the streams' numbering */
  rt_actor_id_t owner;  /* gets RT_TAG_PORT */
  uint32_t events;      /* raised, not yet delivered */
  uint32_t watching;    /* the RT_PORT_* bits the backend watches */
  void *backend_data;   /* the backend's, for its watch */
  struct rt_port *next; /* the world's ports */
} rt_port_t;

/* A port for `owner`. Outside turns or inside; RT_ENOMEM. */
int rt_port_open(rt_world_t *w, rt_actor_id_t owner, rt_port_t **out);
/* Watch fd for the RT_PORT_* bits in events (0: stop watching; a new fd
 * replaces the old one). 0, RT_ENOTSUP where the world cannot watch, or
 * the backend's error. */
int rt_port_watch(rt_port_t *p, int fd, uint32_t events);
/* Backends (and replays): fd became ready for `events`. */
void rt_port_notify(rt_port_t *p, uint32_t events);
/* Stop watching and free the port; no signal for it is delivered after. */
void rt_port_close(rt_port_t *p);

/* The open port with this id, or NULL (replays). */
rt_port_t *rt_world_port(rt_world_t *w, uint64_t id);

#endif
