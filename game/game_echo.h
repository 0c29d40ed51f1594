/* game_echo.h: a connection actor that echoes bytes back.
 *
 * The server's placeholder until the game's Client actor exists: it shows the
 * whole path (listener, accept, stream signals, partial writes under
 * backpressure, close) working in any world.
 */
#ifndef GAME_ECHO_H
#define GAME_ECHO_H

#include "rt_stream.h"
#include "rt_world.h"

#define GAME_ECHO_PENDING_MAX 65536u

/* Spawn an acceptor for `listener` (which it takes: it becomes the owner and
 * closes it when it stops). Each accepted connection gets an echo actor. */
int game_echo_spawn_acceptor(rt_world_t *w, rt_listener_t *listener,
                             rt_actor_id_t *id_out);


#include "rt_service.h"

/* A WebSocket session that sends every text message back: the server's
 * session until the game's Client lands, and a fixture for net tests. */
extern const rt_session_handler_t game_echo_session;

#endif
