/* net_int.h: internals shared inside net/. */
#ifndef NET_INT_H
#define NET_INT_H

#include "net_live.h"

#include <event2/event.h>

/* Wrap an accepted or connected socket (non-blocking) as a stream. */
int net__stream_create(net_live_t *live, evutil_socket_t fd, bool connecting,
                       rt_stream_t **out);

/* A connecting stream whose connect(2) failed at once with errno err: it
 * ends the way a connect that fails later does, with RT_STREAM_CLOSED
 * raised from the loop (not inside the caller's turn) and reads and writes
 * answering the error. */
void net__stream_connect_failed(rt_stream_t *s, int err);

#endif
