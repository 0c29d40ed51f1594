/* net_echo.h: echo servers, the network layer's test sessions.
 *
 * Two ways to send back what a peer sends, each showing a whole path of
 * net/ working in any world without the game: a connection actor that
 * echoes raw bytes (listener, accept, stream signals, partial writes under
 * backpressure, close), and a WebSocket session that echoes text messages
 * (the HTTP upgrade, wslay framing, parking). net's tests use both;
 * `overcookied --echo` serves the session, which tools/bench-net measures.
 */
#ifndef NET_ECHO_H
#define NET_ECHO_H

#include "rt_service.h"
#include "rt_stream.h"
#include "rt_world.h"

/* Spawn an acceptor for `listener` (which it takes: it becomes the owner and
 * closes it when it stops). Each accepted connection gets an echo actor. */
int net_echo_spawn_acceptor(rt_world_t *w, rt_listener_t *listener,
                            rt_actor_id_t *id_out);

/* A WebSocket session that sends every text message back; it needs no
 * token. */
extern const rt_session_handler_t net_echo_session;

#endif
