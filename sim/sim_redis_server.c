/* sim_redis_server.c: the model served over simulated pipes.
 *
 * An acceptor actor owns the listener (sim_listen) and spawns one actor per
 * accepted stream. A connection actor reads bytes into a hiredis reader,
 * which decodes each request (a RESP array of bulk strings), runs it
 * (sim_redis_command, at rt_now) and writes the replies in order.
 *
 * Rules, and what breaks without each:
 *  (1) A turn runs at most SR_COMMANDS_PER_TURN requests and reads at most
 *      SR_READ_BUDGET bytes, then re-queues itself (rt_stream_notify): one
 *      client flooding pipelined requests must not starve the others.
 *  (2) Reading stops while more than SR_OUT_HIGH bytes of replies wait to
 *      be written, and resumes on WRITABLE: a client that never reads its
 *      replies must not grow the model's memory without end.
 *  (3) A request is bounded while it is decoded: SIM_REDIS_ARGS_MAX
 *      arguments, SIM_REDIS_ARG_MAX bytes each, SR_REQUEST_MAX in all (the
 *      reader's object functions refuse more before allocating it), and
 *      SR_QUERY_MAX bytes read but not decoded. Past those, Redis's
 *      protocol error is answered and the connection closed, as Redis does.
 *  (4) The server's state outlives every actor that points at it: it is
 *      freed by whichever of the acceptor and the connections stops last
 *      (server_maybe_free), so a world torn down under a serving model, or
 *      sim_redis_stop, leaves nothing dangling.
 */
#include "sim_redis_int.h"

#include "rt_assert.h"
#include "rt_stream.h"
#include "sim_pipe.h"

#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define SR_READ_CHUNK 16384u
#define SR_READ_BUDGET (256u * 1024)
#define SR_COMMANDS_PER_TURN 256u
#define SR_OUT_HIGH (256u * 1024)
#define SR_REQUEST_MAX (8u << 20)
#define SR_QUERY_MAX (SIM_REDIS_ARG_MAX + 65536u)
#define SR_ACCEPTS_PER_TURN 64u
#define SR_MAILBOX_CAP 4u /* the actors take signals only */

typedef struct sr_server sr_server_t;

typedef struct sr_conn {
  sr_server_t *srv;
  rt_actor_id_t id;
  rt_stream_t *stream;  /* owned */
  redisReader *reader;  /* owned */
  size_t request_bytes; /* of the request being decoded */
  const char *limit;    /* the limit (3) a request broke, or NULL */
  sim_redis_client_t client;
  sim_redis_buf_t out; /* replies; out_off of them written */
  size_t out_off;
  bool closing; /* a protocol error: close once out is written */
} sr_conn_t;

struct sr_server {
  sim_redis_t *m;
  rt_world_t *w;
  rt_actor_id_t acceptor; /* 0 once stopped */
  rt_listener_t *listener;
  sr_conn_t *conns[SIM_REDIS_CONNS_MAX]; /* by increasing actor id */
  uint32_t conns_len;
  redisReplyObjectFunctions *base; /* hiredis's own object functions */
  redisReplyObjectFunctions fn;    /* the same, bounded (3) */
};

/* Invariant (4). */
static void server_maybe_free(sr_server_t *srv) {
  if (srv->acceptor != 0 || srv->conns_len > 0)
    return;
  srv->m->server = NULL;
  free(srv);
}

/* ---- Bounded decoding: rule (3) ------------------------------------------ */

static void *create_string(const redisReadTask *task, char *str, size_t len) {
  sr_conn_t *c = task->privdata;
  RT_ASSERT(c != NULL); /* set by conn_start */
  c->request_bytes += len;
  if (len > SIM_REDIS_ARG_MAX || c->request_bytes > SR_REQUEST_MAX) {
    c->limit = "invalid bulk length";
    return NULL;
  }
  return c->srv->base->createString(task, str, len);
}

static void *create_array(const redisReadTask *task, int elements) {
  sr_conn_t *c = task->privdata;
  RT_ASSERT(c != NULL); /* set by conn_start */
  if (elements > (int)SIM_REDIS_ARGS_MAX) {
    c->limit = "invalid multibulk length";
    return NULL;
  }
  return c->srv->base->createArray(task, elements);
}

/* ---- A connection -------------------------------------------------------- */

static size_t pending(const sr_conn_t *c) { return c->out.len - c->out_off; }

static void conn_protocol_error(sr_conn_t *c, const char *why) {
  sr_reply_error2(&c->out, "ERR Protocol error: ", why, strlen(why));
  c->closing = true;
  c->srv->m->stats.protocol_errors++;
  rt_log(c->srv->w, RT_LOG_WARN, "sim_redis.protocol_error",
         "conn=%" PRIu64 " why=\"%s\"", c->id, why);
}

/* Write what the stream takes; 0, or the stream's error. */
static int conn_flush(sr_conn_t *c) {
  while (pending(c) > 0) {
    int64_t n =
        rt_stream_write(c->stream, c->out.data + c->out_off, pending(c));
    if (n < 0)
      return (int)n;
    if (n == 0)
      break; /* WRITABLE follows */
    c->out_off += (size_t)n;
  }
  if (pending(c) == 0) {
    sim_redis_buf_reset(&c->out);
    c->out_off = 0;
  } else if (c->out_off > c->out.len / 2) {
    memmove(c->out.data, c->out.data + c->out_off, pending(c));
    c->out.len = pending(c);
    c->out_off = 0;
  }
  return RT_OK;
}

/* Why element e of a request is not a bulk string, in Redis's words. */
static char type_char(const redisReply *e) {
  switch (e->type) {
  case REDIS_REPLY_ARRAY: return '*';
  case REDIS_REPLY_INTEGER: return ':';
  case REDIS_REPLY_STATUS: return '+';
  case REDIS_REPLY_ERROR: return '-';
  default: return '$';
  }
}

/* Run one decoded request; false after a protocol error. */
static bool conn_run(sr_conn_t *c, const redisReply *r) {
  if (r->type != REDIS_REPLY_ARRAY) {
    conn_protocol_error(c, "sim_redis takes RESP arrays only (no inline "
                           "commands)");
    return false;
  }
  const char *argv[SIM_REDIS_ARGS_MAX];
  size_t lens[SIM_REDIS_ARGS_MAX];
  RT_WASSERT(c->srv->w, r->elements <= SIM_REDIS_ARGS_MAX); /* rule (3) */
  for (size_t i = 0; i < r->elements; i++) {
    const redisReply *e = r->element[i];
    if (e->type != REDIS_REPLY_STRING) {
      char why[32] = "expected '$', got ' '";
      why[19] = e->type == REDIS_REPLY_NIL ? '$' : type_char(e);
      conn_protocol_error(c, e->type == REDIS_REPLY_NIL ? "invalid bulk length"
                                                        : why);
      return false;
    }
    argv[i] = e->str;
    lens[i] = e->len;
  }
  int err = sim_redis_command(c->srv->m, &c->client, (int)r->elements, argv,
                              lens, rt_now(c->srv->w), &c->out);
  if (err == RT_EPROTO) { /* answered: close once it is written */
    c->closing = true;
  } else if (err <
             0) { /* out of memory: the replies are lost, and the client */
    sim_redis_buf_reset(&c->out);
    c->out_off = 0;
    c->closing = true;
  }
  return err == RT_OK;
}

/* The next request: 1 when one ran, 0 when more bytes are needed, -1 when
 * the connection must close. */
static int conn_next(sr_conn_t *c) {
  void *reply = NULL;
  if (redisReaderGetReply(c->reader, &reply) != REDIS_OK) {
    conn_protocol_error(c, c->limit != NULL ? c->limit : c->reader->errstr);
    return -1;
  }
  if (reply == NULL)
    return 0;
  c->request_bytes = 0;
  bool ok = conn_run(c, reply);
  freeReplyObject(reply);
  return ok ? 1 : -1;
}

/* Rules (1) and (2). false: end the connection now. */
static bool conn_work(sr_conn_t *c) {
  uint32_t commands = 0;
  size_t bytes = 0;
  while (!c->closing) {
    if (pending(c) > SR_OUT_HIGH) {
      if (conn_flush(c) < 0)
        return false;
      if (pending(c) > SR_OUT_HIGH)
        return true; /* WRITABLE follows the short write */
    }
    if (commands == SR_COMMANDS_PER_TURN || bytes >= SR_READ_BUDGET) {
      rt_stream_notify(c->stream, RT_STREAM_READABLE);
      return true;
    }
    int rc = conn_next(c);
    if (rc != 0) {
      commands++;
      continue; /* after -1, closing is set */
    }
    char buf[SR_READ_CHUNK];
    int64_t n = rt_stream_read(c->stream, buf, sizeof(buf));
    if (n == 0)
      return true;
    if (n < 0)
      return false; /* EOF or reset: Redis drops the client */
    bytes += (size_t)n;
    if (redisReaderFeed(c->reader, buf, (size_t)n) != REDIS_OK ||
        c->reader->len - c->reader->pos > SR_QUERY_MAX)
      return false; /* Redis closes such a client without a word */
  }
  return true;
}

static void conn_behaviour(rt_actor_t *self, const rt_msg_t *msg) {
  sr_conn_t *c = rt_state(self);
  if (msg->tag != RT_TAG_STREAM)
    return;
  bool alive = conn_work(c);
  if (alive && conn_flush(c) < 0)
    alive = false;
  if (alive && c->closing && pending(c) == 0)
    alive = false;
  if (!alive)
    (void)rt_stop(c->srv->w, c->id, RT_REASON_NORMAL);
}

static void conn_on_stop(rt_actor_t *self, int reason) {
  (void)reason;
  sr_conn_t *c = rt_state(self);
  sr_server_t *srv = c->srv;
  for (uint32_t i = 0; i < srv->conns_len; i++) {
    if (srv->conns[i] == c) {
      memmove(&srv->conns[i], &srv->conns[i + 1],
              (srv->conns_len - i - 1) * sizeof(srv->conns[0]));
      srv->conns_len--;
      break;
    }
  }
  rt_stream_close(c->stream);
  redisReaderFree(c->reader);
  sim_redis_buf_deinit(&c->out);
  free(c);
  server_maybe_free(srv);
}

static void conn_free(sr_conn_t *c) {
  if (c->reader != NULL)
    redisReaderFree(c->reader);
  free(c);
}

/* Serve an accepted stream (taken). */
static void conn_start(sr_server_t *srv, rt_stream_t *s) {
  static const char full[] = "-ERR max number of clients reached\r\n";
  sr_conn_t *c = NULL;
  if (srv->conns_len == SIM_REDIS_CONNS_MAX ||
      (c = calloc(1, sizeof(*c))) == NULL) {
    (void)rt_stream_write(s, full, sizeof(full) - 1);
    rt_stream_close(s);
    srv->m->stats.refused++;
    rt_log(srv->w, RT_LOG_WARN, "sim_redis.refused", "conns=%u",
           srv->conns_len);
    return;
  }
  c->srv = srv;
  c->stream = s;
  c->reader = redisReaderCreateWithFunctions(&srv->fn);
  sim_redis_client_init(srv->m, &c->client);
  sim_redis_buf_init(&c->out);
  rt_actor_spec_t spec = {.name = "sim_redis.conn",
                          .behaviour = conn_behaviour,
                          .on_stop = conn_on_stop,
                          .state = c,
                          .mailbox_cap = SR_MAILBOX_CAP,
                          .overflow = RT_OVERFLOW_DROP_NEWEST};
  if (c->reader == NULL || rt_spawn(srv->w, &spec, &c->id) < 0) {
    conn_free(c);
    rt_stream_close(s);
    return;
  }
  redisReaderSetPrivdata(c->reader, c);
  srv->conns[srv->conns_len++] = c;
  srv->m->stats.connections++;
  rt_stream_set_owner(s, c->id);
  rt_stream_notify(s, RT_STREAM_READABLE); /* bytes may be there already */
}

/* ---- The acceptor -------------------------------------------------------- */

static void acceptor_behaviour(rt_actor_t *self, const rt_msg_t *msg) {
  sr_server_t *srv = rt_state(self);
  if (msg->tag != RT_TAG_ACCEPT)
    return;
  for (uint32_t i = 0; i < SR_ACCEPTS_PER_TURN; i++) {
    rt_stream_t *s = NULL;
    if (rt_listener_accept(srv->listener, &s) <= 0)
      return;
    conn_start(srv, s);
  }
  rt_listener_notify(srv->listener); /* more may wait: come back */
}

static void acceptor_on_stop(rt_actor_t *self, int reason) {
  sr_server_t *srv = rt_state(self);
  if (reason == RT_REASON_SHUTDOWN) /* the world is going: no restarts */
    srv->m->served_world = NULL;
  if (srv->listener != NULL)
    rt_listener_close(srv->listener);
  srv->listener = NULL;
  srv->acceptor = 0;
  server_maybe_free(srv);
}

int sim_redis_listen(sim_redis_t *m, sim_world_t *sw, uint16_t port) {
  if (m->server != NULL)
    return RT_EINVAL;
  sr_server_t *srv = calloc(1, sizeof(*srv));
  redisReader *probe = redisReaderCreate();
  if (srv == NULL || probe == NULL) {
    free(srv);
    if (probe != NULL)
      redisReaderFree(probe);
    return RT_ENOMEM;
  }
  srv->base = probe->fn; /* hiredis's static table: outlives the probe */
  redisReaderFree(probe);
  srv->fn = *srv->base;
  srv->fn.createString = create_string;
  srv->fn.createArray = create_array;
  srv->m = m;
  srv->w = sim_world_rt(sw);
  rt_actor_spec_t spec = {.name = "sim_redis.acceptor",
                          .behaviour = acceptor_behaviour,
                          .on_stop = acceptor_on_stop,
                          .state = srv,
                          .mailbox_cap = SR_MAILBOX_CAP,
                          .overflow = RT_OVERFLOW_DROP_NEWEST};
  int err = rt_spawn(srv->w, &spec, &srv->acceptor);
  if (err < 0) {
    free(srv);
    return err;
  }
  m->server = srv;
  m->served_world = sw;
  m->served_port = port;
  err = sim_listen(sw, port, srv->acceptor, &srv->listener);
  if (err < 0) {
    srv->listener = NULL;
    (void)rt_stop(srv->w, srv->acceptor, RT_REASON_NORMAL); /* frees srv */
    return err;
  }
  rt_log(srv->w, RT_LOG_INFO, "sim_redis.listen", "port=%u", (unsigned)port);
  return RT_OK;
}

void sim_redis_stop(sim_redis_t *m) {
  sr_server_t *srv = m->server;
  if (srv == NULL)
    return;
  rt_world_t *w = srv->w;
  rt_log(w, RT_LOG_INFO, "sim_redis.stop", "conns=%u", srv->conns_len);
  for (uint32_t i = srv->conns_len; i-- > 0;) {
    if (i >= srv->conns_len)
      continue;
    sr_conn_t *c = srv->conns[i];
    sim_stream_reset(c->stream);
    (void)rt_stop(w, c->id, RT_REASON_KILLED);
  }
  if (srv->acceptor != 0)
    (void)rt_stop(w, srv->acceptor, RT_REASON_KILLED);
  RT_WASSERT(w, m->server == NULL); /* not from the model's own actors */
}

int sim_redis_restart(sim_redis_t *m, bool keep_data) {
  if (m->served_world == NULL)
    return RT_EINVAL;
  sim_redis_stop(m);
  if (!keep_data)
    sim_redis_flush(m);
  return sim_redis_listen(m, m->served_world, m->served_port);
}

uint32_t sim_redis_connections(const sim_redis_t *m) {
  return m->server != NULL ? m->server->conns_len : 0;
}
