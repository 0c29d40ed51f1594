/* net_echo.c: the raw-byte echo actor and the WebSocket echo session
 * (net_echo.h). */
#include "net_echo.h"

#include "rt_assert.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* Bytes read but not yet written back. Reading stops while any are pending,
 * so a peer that does not read its echoes stalls its own input: backpressure
 * end to end, with one bounded buffer per connection. */
#define ECHO_CHUNK 4096u

typedef struct echo_state {
  rt_stream_t *stream;
  uint8_t pending[ECHO_CHUNK];
  uint32_t pending_off, pending_len;
} echo_state_t;

typedef struct acceptor_state {
  rt_listener_t *listener;
  uint64_t accepted;
} acceptor_state_t;

/* Flush pending bytes; then read and echo until the stream has nothing more
 * or cannot take more. Returns a negative error when the connection ended. */
static int echo_pump(echo_state_t *st) {
  for (int rounds = 0; rounds < 64; rounds++) {
    while (st->pending_len > 0) {
      int64_t n = rt_stream_write(st->stream, st->pending + st->pending_off,
                                  st->pending_len);
      if (n < 0)
        return (int)n;
      if (n == 0)
        return RT_OK; /* WRITABLE will call us again */
      st->pending_off += (uint32_t)n;
      st->pending_len -= (uint32_t)n;
    }
    int64_t n = rt_stream_read(st->stream, st->pending, sizeof(st->pending));
    if (n <= 0)
      return n == 0 ? RT_OK : (int)n;
    st->pending_off = 0;
    st->pending_len = (uint32_t)n;
  }
  /* Bounded work per turn; come back for the rest after the others. */
  rt_stream_notify(st->stream, RT_STREAM_READABLE);
  return RT_OK;
}

static void echo_behaviour(rt_actor_t *self, const rt_msg_t *msg) {
  echo_state_t *st = rt_state(self);
  if (msg->tag != RT_TAG_STREAM)
    return;
  int err = echo_pump(st);
  if (err < 0) {
    rt_log(rt_actor_world(self), RT_LOG_DEBUG, "echo.closed",
           "stream=%" PRIu64 " err=%s", st->stream->id, rt_err_name(err));
    rt_stop(rt_actor_world(self), rt_self(self), RT_REASON_NORMAL);
  }
}

static void echo_on_stop(rt_actor_t *self, int reason) {
  (void)reason;
  echo_state_t *st = rt_state(self);
  rt_stream_close(st->stream);
  free(st);
}

static void acceptor_behaviour(rt_actor_t *self, const rt_msg_t *msg) {
  acceptor_state_t *st = rt_state(self);
  rt_world_t *w = rt_actor_world(self);
  if (msg->tag != RT_TAG_ACCEPT)
    return;
  /* Bounded per message; the listener reminds us of the rest. */
  for (int i = 0; i < 256; i++) {
    rt_stream_t *s = NULL;
    int r = rt_listener_accept(st->listener, &s);
    if (r <= 0)
      return;
    echo_state_t *es = calloc(1, sizeof(*es));
    if (es == NULL) {
      rt_stream_close(s);
      continue;
    }
    es->stream = s;
    rt_actor_spec_t spec = {.name = "echo",
                            .behaviour = echo_behaviour,
                            .on_stop = echo_on_stop,
                            .state = es,
                            .mailbox_cap = 4,
                            .overflow = RT_OVERFLOW_REJECT};
    rt_actor_id_t id;
    if (rt_spawn(w, &spec, &id) < 0) {
      rt_stream_close(s);
      free(es);
      continue;
    }
    st->accepted++;
    rt_stream_set_owner(s, id);
    /* Bytes may have arrived before we owned it. */
    rt_stream_notify(s, RT_STREAM_READABLE);
  }
}

static void acceptor_on_stop(rt_actor_t *self, int reason) {
  (void)reason;
  acceptor_state_t *st = rt_state(self);
  rt_listener_close(st->listener);
  free(st);
}

int net_echo_spawn_acceptor(rt_world_t *w, rt_listener_t *listener,
                            rt_actor_id_t *id_out) {
  acceptor_state_t *st = calloc(1, sizeof(*st));
  if (st == NULL)
    return RT_ENOMEM;
  st->listener = listener;
  rt_actor_spec_t spec = {.name = "acceptor",
                          .behaviour = acceptor_behaviour,
                          .on_stop = acceptor_on_stop,
                          .state = st,
                          .mailbox_cap = 16,
                          .overflow = RT_OVERFLOW_REJECT};
  int err = rt_spawn(w, &spec, id_out);
  if (err < 0) {
    free(st);
    return err;
  }
  listener->owner = *id_out;
  rt_listener_notify(listener); /* connections may be pending already */
  return RT_OK;
}

/* ---- WebSocket echo session ---------------------------------------------- */

typedef struct echo_session {
  rt_session_conn_t *conn;
} echo_session_t;

static void *echo_session_open(void *ctx, rt_actor_t *self,
                               rt_session_conn_t *conn,
                               const rt_identity_t *who) {
  (void)ctx;
  echo_session_t *es = calloc(1, sizeof(*es));
  if (es == NULL)
    return NULL;
  es->conn = conn;
  rt_log(rt_actor_world(self), RT_LOG_DEBUG, "echo.open", "subject=%s",
         who->subject[0] != '\0' ? who->subject : "-");
  return es;
}

static void echo_session_text(void *session, rt_actor_t *self,
                              const uint8_t *data, size_t len) {
  (void)self;
  echo_session_t *es = session;
  rt_buf_t *frame = rt_buf_copy(data, len);
  if (frame == NULL)
    return;
  (void)es->conn->ops->send_text(es->conn, frame);
  rt_buf_unref(frame);
}

static void echo_session_message(void *session, rt_actor_t *self,
                                 const rt_msg_t *msg) {
  (void)session;
  (void)self;
  (void)msg;
}

static void echo_session_drained(void *session, rt_actor_t *self) {
  (void)session;
  (void)self;
}

static void echo_session_closed(void *session, rt_actor_t *self,
                                uint16_t code) {
  rt_log(rt_actor_world(self), RT_LOG_DEBUG, "echo.closed", "code=%u",
         (unsigned)code);
  free(session);
}

const rt_session_handler_t net_echo_session = {
    .ctx = NULL,
    .open = echo_session_open,
    .text = echo_session_text,
    .message = echo_session_message,
    .drained = echo_session_drained,
    .closed = echo_session_closed,
};
