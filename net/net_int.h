/* net_int.h: internals shared inside net/. */
#ifndef NET_INT_H
#define NET_INT_H

#include "net_live.h"

#include <event2/event.h>

/* Wrap an accepted or connected socket (non-blocking) as a stream. */
int net__stream_create(net_live_t *live, evutil_socket_t fd, bool connecting,
                       rt_stream_t **out);

#endif
