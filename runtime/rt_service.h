/* rt_service.h: what a connection layer offers the game, in runtime types.
 *
 * DESIGN.md's dependency rule says game/ knows neither net/ nor sim/. Yet the
 * game's Client must write WebSocket messages, and the game must answer HTTP
 * API calls and check tokens. These contracts sit in runtime/ so that both
 * sides can see them: net/ implements the connection side (WebSocket over a
 * stream, HTTP routing), game/ implements the handlers, and tools/ plugs one
 * into the other.
 */
#ifndef RT_SERVICE_H
#define RT_SERVICE_H

#include "rt_buf.h"
#include "rt_msg.h"
#include "rt_world.h"

#include <stddef.h>
#include <stdint.h>

#define RT_SUBJECT_MAX 64u
#define RT_NAME_MAX 97u /* 24 characters of up to 4 UTF-8 bytes, and a NUL */

/* Who is on the other end, as established by a verified token. */
typedef struct rt_identity {
  char subject[RT_SUBJECT_MAX]; /* user id */
  char name[RT_NAME_MAX];       /* display name */
} rt_identity_t;

/* Check a bearer token. 0 and *out on success, a negative error otherwise.
 * Called synchronously, inside the connection's actor. */
typedef int rt_authenticate_fn(void *ctx, const char *token,
                               rt_identity_t *out);

/* ---- Sessions: a message connection (WebSocket) as the game sees it ------ */

/* Close codes a session may ask for (RFC 6455 and PROTOCOL.md). */
enum {
  RT_CLOSE_NORMAL = 1000,
  RT_CLOSE_POLICY = 1008, /* too slow: output did not drain */
  RT_CLOSE_INTERNAL = 1011,
  RT_CLOSE_RESTART = 1012,  /* this instance was fenced: connect again */
  RT_CLOSE_TRY_LATER = 1013,
  RT_CLOSE_REPLACED = 4000, /* a newer connection for the same player */
  RT_CLOSE_MOVED = 4001,    /* the game is on another instance (MOVE) */
  RT_CLOSE_IDLE = 4002,     /* quiet in the lobby for too long */
};

typedef struct rt_session_conn rt_session_conn_t;

typedef struct rt_session_conn_ops {
  /* Queue one text message; frame is borrowed (its bytes are copied or
   * referenced). 0, or RT_EPIPE once closing, RT_ENOMEM. */
  int (*send_text)(rt_session_conn_t *c, const rt_buf_t *frame);
  /* Bytes queued towards the peer and not yet taken by it. */
  size_t (*backlog)(const rt_session_conn_t *c);
  /* How long the peer has not shown that it reads: the age of the probe
   * (a WebSocket ping sent with output) whose answer has not come back;
   * 0 when none is waiting. A peer whose kernel buffers still take bytes
   * has a backlog of 0 and may yet have stopped reading. */
  rt_time_ns (*unread_for)(const rt_session_conn_t *c);
  /* Start the close handshake with `code` (and a short reason). */
  void (*close)(rt_session_conn_t *c, uint16_t code, const char *reason);
} rt_session_conn_ops_t;

struct rt_session_conn {
  const rt_session_conn_ops_t *ops;
};

/* The session runs inside the connection's actor: one actor per connection,
 * the single writer of its stream (DESIGN.md, the pump model). */
typedef struct rt_session_handler {
  void *ctx;
  /* A connection opened for `who`. Returns the session's state, or NULL to
   * refuse (the connection closes with 1011). */
  void *(*open)(void *ctx, rt_actor_t *self, rt_session_conn_t *conn,
                const rt_identity_t *who);
  /* One complete, valid UTF-8 text message, at most the message limit. */
  void (*text)(void *session, rt_actor_t *self, const uint8_t *data,
               size_t len);
  /* A message from another actor (tags >= RT_TAG_USER). */
  void (*message)(void *session, rt_actor_t *self, const rt_msg_t *msg);
  /* The connection took queued output: room for more. */
  void (*drained)(void *session, rt_actor_t *self);
  /* The connection is gone (code: the close code sent or received, 1006
   * when it just dropped). Free the session. Called exactly once. */
  void (*closed)(void *session, rt_actor_t *self, uint16_t code);
} rt_session_handler_t;

/* ---- HTTP API calls ------------------------------------------------------ */

typedef struct rt_http_call {
  const char *method;
  const char *path;
  const char *query;         /* after '?', "" when none */
  const char *authorization; /* the Authorization header, or NULL */
  const uint8_t *body;
  uint32_t body_len;
  rt_actor_id_t reply_to; /* the connection's actor, for deferred replies */
  uint64_t call_id;       /* echo it in the reply */
} rt_http_call_t;

typedef struct rt_http_answer {
  int status;
  const char *content_type; /* static string */
  rt_buf_t *body;           /* owned; NULL for none */
} rt_http_answer_t;

enum {
  RT_HTTP_ANSWERED = 0, /* *answer is filled in */
  RT_HTTP_DEFERRED = 1, /* an RT_TAG_HTTP_REPLY will reach reply_to */
};

/* Answer a call now, or defer it to an actor that will reply. Negative:
 * the server answers 500. */
typedef int rt_http_fn(void *ctx, rt_world_t *w, const rt_http_call_t *call,
                       rt_http_answer_t *answer);

/* A deferred reply: RT_TAG_HTTP_REPLY (rt_msg.h) with this payload and the
 * JSON body in msg.buf. */
typedef struct rt_http_reply {
  uint64_t call_id;
  int32_t status;
  uint32_t pad_;
} rt_http_reply_t;

/* Append metrics in Prometheus text format to out; return bytes written
 * (at most cap). */
typedef size_t rt_metrics_fn(void *ctx, rt_world_t *w, char *out, size_t cap);

#endif
