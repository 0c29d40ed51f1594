/* game_client.c: the Client, one per connection (the pump model).
 *
 * It runs as the session of a connection's actor (rt_service.h): the only
 * writer of that connection. Inbound, it decodes each text message into a
 * typed message for the Manager or its Room. Outbound, it owns a queue
 * bounded by count and by bytes, with PROTOCOL.md's delivery classes:
 *
 *   class         when the queue is under pressure
 *   tick UPDATE   a queued tick UPDATE is dropped (latest wins) and the new
 *                 one queued last, up to the hard limit: at most one tick
 *                 is ever queued, and nothing overtakes what came before
 *   droppable     dropped when over the soft limit (half of either bound)
 *   must-deliver  queued up to the hard limit; beyond it, 1008 and gone
 *
 * Frames leave the queue only while the connection's backlog is under its
 * high-water mark. If frames wait and none can leave for write_wait, the
 * client is too slow: 1008. Every drop and disconnect is counted. A
 * GAME_OVER this connection never handed on (it closed first, with the
 * frame queued or refused) goes back to the Manager, which keeps it for
 * the player's next connection (game_manager.c, Invariant (6)).
 *
 * A connection in the lobby (not queued, not in a game) that sends nothing
 * for lobby_idle is closed with 4002 "idle": a slot held by a client that
 * only answers pings is a slot taken from players. One timer per client,
 * armed while it is in the lobby, fires at the earliest the idle time
 * could have run out and looks again then.
 */
#include "game_int.h"

#include "game_bucket.h"
#include "game_proto.h"
#include "rt_assert.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CLIENT_MAILBOX_CAP 256u

typedef enum { CLASS_MUST = 0, CLASS_DROP, CLASS_TICK } out_class_t;

typedef struct out_item {
  rt_buf_t *buf;
  uint8_t cls;
} out_item_t;

typedef struct client {
  game_t *g;
  rt_session_conn_t *conn;
  rt_actor_id_t self;
  char subject[RT_SUBJECT_MAX]; /* the player's user id, for logs: the
                                   Manager keeps the whole identity */
  rt_actor_id_t room;
  uint32_t role;
  out_item_t *out; /* ring of out_cap slots, grown up to out_count_max */
  uint32_t out_cap;
  uint32_t out_head, out_count;
  uint32_t out_bytes;
  rt_time_ns progress_at; /* last time a frame left, or the queue was empty */
  uint64_t wait_timer;
  uint64_t poll_timer;
  game_bucket_t in;    /* the flood guard: in_rate, in_burst */
  rt_time_ns heard_at; /* the last message from the player */
  uint64_t idle_timer;
  rt_buf_t *over; /* the last GAME_OVER given, until it is sent */
  bool queued; /* asked to join the queue, not matched nor left since */
  bool moving; /* sent MOVE: close 4001 once the queue is out */
  bool closing;
} client_t;

static const rt_overflow_rule_t client_rules[] = {
    {GAME_TAG_OUT_TICK, RT_OVERFLOW_REPLACE},
    {GAME_TAG_OUT_DROP, RT_OVERFLOW_DROP_NEWEST},
};

void game_client_mailbox(uint32_t *cap, rt_overflow_t *policy,
                         const rt_overflow_rule_t **rules, uint32_t *len) {
  *cap = CLIENT_MAILBOX_CAP;
  *policy = RT_OVERFLOW_REJECT;
  *rules = client_rules;
  *len = sizeof(client_rules) / sizeof(client_rules[0]);
}

static rt_world_t *cworld(const client_t *c) { return c->g->world; }

static bool in_lobby(const client_t *c) { return c->room == 0 && !c->queued; }

/* Look again when the lobby idle time could first run out. */
static void arm_idle(client_t *c) {
  rt_time_ns idle = c->g->cfg.lobby_idle;
  if (idle == 0 || c->idle_timer != 0 || c->closing || !in_lobby(c))
    return;
  rt_time_ns due = c->heard_at + idle - rt_now(cworld(c));
  if (rt_timer_start(cworld(c), c->self, due > 0 ? due : 0, 0,
                     GAME_TAG_TIMER_LOBBY_IDLE, 0, &c->idle_timer) < 0)
    c->idle_timer = 0;
}

/* ---- Leaving ------------------------------------------------------------- */

static void kick(client_t *c, game_kick_reason_t why, uint16_t code,
                 const char *text) {
  if (c->closing)
    return;
  c->closing = true;
  c->g->stats.kicks[why]++;
  rt_log(cworld(c), RT_LOG_INFO, "client.kick", "player=%s code=%u reason=%s",
         c->subject, (unsigned)code, text);
  /* Out of the queue now, not when the close is over (a reader too slow
   * to take it keeps this actor up to the close wait): a match meanwhile
   * would start a game for a player who never hears of it, and the
   * result told when it comes back would be taken for its last game's
   * (the swarm's seed 11083). Lost, the message leaves the DOWN to it. */
  if (c->queued) {
    c->queued = false;
    rt_msg_t m = rt_msg_make(GAME_TAG_LEAVE, NULL, 0);
    (void)rt_send(cworld(c), c->g->manager, &m);
  }
  c->conn->ops->close(c->conn, code, text);
}

/* A close of the cluster's, not a kick: the player did nothing wrong.
 * `event` names it in the log. */
static void close_for(client_t *c, const char *event, uint16_t code,
                      const char *text) {
  if (c->closing)
    return;
  c->closing = true;
  rt_log(cworld(c), RT_LOG_INFO, event, "player=%s", c->subject);
  c->conn->ops->close(c->conn, code, text);
}

/* ---- The outbound queue -------------------------------------------------- */

static out_item_t *item(client_t *c, uint32_t i) {
  return &c->out[(c->out_head + i) % c->out_cap];
}

static bool over_soft(const client_t *c, uint32_t more) {
  const game_config_t *cfg = &c->g->cfg;
  return c->out_count + 1 > cfg->out_count_max / 2 ||
         c->out_bytes + more > cfg->out_bytes_max / 2;
}

static bool over_hard(const client_t *c, uint32_t more) {
  const game_config_t *cfg = &c->g->cfg;
  return c->out_count + 1 > cfg->out_count_max ||
         c->out_bytes + more > cfg->out_bytes_max;
}

static void arm_wait(client_t *c) {
  if (c->wait_timer != 0)
    return;
  rt_time_ns due = c->progress_at + c->g->cfg.write_wait - rt_now(cworld(c));
  if (rt_timer_start(cworld(c), c->self, due > 0 ? due : 0, 0,
                     GAME_TAG_TIMER_WRITE_WAIT, 0, &c->wait_timer) < 0)
    c->wait_timer = 0;
}

/* Hand frames to the connection while it is under its high-water mark. */
static void pump(client_t *c) {
  if (c->closing)
    return;
  size_t high = c->g->cfg.conn_high_water;
  while (c->out_count > 0 && c->conn->ops->backlog(c->conn) < high) {
    out_item_t *it = item(c, 0);
    int err = c->conn->ops->send_text(c->conn, it->buf);
    if (err < 0) {
      /* RT_EPIPE: the connection is closing (either side began the close
       * handshake) and will go within its close wait; nothing more goes
       * out, so nothing is stuck for the write wait to cut. */
      if (err == RT_EPIPE)
        c->closing = true;
      return;
    }
    c->g->stats.out_sent++;
    if (it->buf == c->over) {
      rt_buf_unref(c->over); /* on its way: the player hears it */
      c->over = NULL;
    }
    c->out_bytes -= it->buf->len;
    rt_buf_unref(it->buf);
    it->buf = NULL;
    c->out_head = (c->out_head + 1) % c->out_cap;
    c->out_count--;
    c->progress_at = rt_now(cworld(c));
  }
  if (c->out_count == 0) {
    c->progress_at = rt_now(cworld(c));
    /* After MOVE (PROTOCOL.md, Cluster), once it has left the queue: the
     * player's game is on another instance. */
    if (c->moving)
      close_for(c, "client.moved", RT_CLOSE_MOVED, "moved");
    return;
  }
  arm_wait(c);
  /* Held back by the backlog: a socket's kernel queue drains without an
   * event (no write was short), so look again soon. */
  if (c->poll_timer == 0 &&
      rt_timer_start(cworld(c), c->self, c->g->cfg.drain_poll, 0,
                     GAME_TAG_TIMER_DRAIN_POLL, 0, &c->poll_timer) < 0)
    c->poll_timer = 0;
}

/* The queue starts small and doubles up to its bound: most players idle
 * in the lobby with nothing queued, and memory per connection counts. */
#define OUT_CAP_MIN 4u

static int grow_out(client_t *c) {
  uint32_t max = c->g->cfg.out_count_max;
  RT_ASSERT(c->out_cap < max);
  uint32_t cap = c->out_cap == 0 ? OUT_CAP_MIN : c->out_cap * 2;
  if (cap > max)
    cap = max;
  out_item_t *ring = malloc((size_t)cap * sizeof(*ring));
  if (ring == NULL)
    return RT_ENOMEM;
  for (uint32_t i = 0; i < c->out_count; i++)
    ring[i] = *item(c, i);
  free(c->out);
  c->out = ring;
  c->out_cap = cap;
  c->out_head = 0;
  return RT_OK;
}

/* Take the queued tick UPDATE out (at most one is queued), closing the
 * gap so the rest keep their order; false when there is none. The newer
 * tick then goes last: put in the older's place, it would overtake the
 * click UPDATEs queued since, and a reader would see a score go down. */
static bool remove_tick(client_t *c) {
  for (uint32_t i = c->out_count; i > 0; i--) {
    if (item(c, i - 1)->cls != CLASS_TICK)
      continue;
    out_item_t *it = item(c, i - 1);
    c->out_bytes -= it->buf->len;
    rt_buf_unref(it->buf);
    for (uint32_t j = i; j < c->out_count; j++)
      *item(c, j - 1) = *item(c, j);
    c->out_count--;
    return true;
  }
  return false;
}

/* A peer that has not answered a probe for write_wait has stopped
 * reading, even while its kernel buffers still take bytes (so nothing
 * queues here): 1008, as for output that cannot drain. Looked at as each
 * frame comes, and in a game one comes every tick. */
static bool not_reading(client_t *c) {
  if (c->conn->ops->unread_for(c->conn) < c->g->cfg.write_wait)
    return false;
  kick(c, GAME_KICK_WRITE_WAIT, RT_CLOSE_POLICY, "not reading");
  return true;
}

static void enqueue(client_t *c, rt_buf_t *buf, out_class_t cls) {
  if (c->closing || not_reading(c))
    return;
  if (c->out_count == 0)
    c->progress_at = rt_now(cworld(c)); /* waiting starts now */
  uint32_t len = buf->len;
  if (cls == CLASS_TICK && remove_tick(c))
    c->g->stats.out_tick_replaced++; /* latest wins, queued last (below) */
  /* A tick is the full state: dropping it while older droppables wait
   * would freeze the client's clock for as long as the pressure lasts.
   * Only one is ever queued (removed above), so it may use the room
   * between the soft and the hard limit. */
  if ((cls == CLASS_DROP && over_soft(c, len)) ||
      (cls == CLASS_TICK && over_hard(c, len))) {
    c->g->stats.out_dropped++;
    rt_log(cworld(c), RT_LOG_DEBUG, "client.drop",
           "player=%s reason=backpressure queued_bytes=%u", c->subject,
           c->out_bytes);
    pump(c);
    return;
  }
  if (cls == CLASS_MUST && over_hard(c, len)) {
    kick(c, GAME_KICK_MUST_OVERFLOW, RT_CLOSE_POLICY, "too slow");
    return;
  }
  if (c->out_count == c->out_cap && grow_out(c) < 0) {
    /* No memory for the queue: a droppable frame goes, a must-deliver
     * one cannot be promised. */
    if (cls == CLASS_MUST) {
      kick(c, GAME_KICK_MUST_OVERFLOW, RT_CLOSE_POLICY, "out of memory");
    } else {
      c->g->stats.out_dropped++;
      rt_log(cworld(c), RT_LOG_DEBUG, "client.drop",
             "player=%s reason=no_memory", c->subject);
    }
    return;
  }
  out_item_t *it = item(c, c->out_count);
  it->buf = rt_buf_ref(buf);
  it->cls = (uint8_t)cls;
  c->out_count++;
  c->out_bytes += len;
  pump(c);
}

static void on_write_wait(client_t *c, const rt_msg_t *msg) {
  rt_timer_event_t ev;
  RT_MSG_GET(msg, rt_timer_event_t, &ev);
  if (ev.timer != c->wait_timer)
    return;
  c->wait_timer = 0;
  pump(c);
  if (c->out_count == 0 || c->closing)
    return;
  if (rt_now(cworld(c)) - c->progress_at >= c->g->cfg.write_wait)
    kick(c, GAME_KICK_WRITE_WAIT, RT_CLOSE_POLICY, "output stalled");
  else
    arm_wait(c);
}

static void send_error(client_t *c, const char *code, const char *message) {
  rt_buf_t *frame = game_proto_error(code, message);
  if (frame == NULL)
    return;
  c->g->stats.errors_sent++;
  enqueue(c, frame, CLASS_MUST);
  rt_buf_unref(frame);
}

/* ---- Inbound ------------------------------------------------------------- */

static void to_manager(client_t *c, uint16_t tag) {
  rt_msg_t m = rt_msg_make(tag, NULL, 0);
  if (rt_send(cworld(c), c->g->manager, &m) < 0)
    send_error(c, "busy", "the server is busy, try again");
}

static void to_room(client_t *c, uint16_t tag, const void *payload,
                    uint16_t len) {
  if (c->room == 0) {
    send_error(c, "not_in_game", "not in a game");
    return;
  }
  rt_msg_t m = rt_msg_make(tag, payload, len);
  int rc = rt_send(cworld(c), c->room, &m);
  if (rc == RT_ENOACTOR) {
    c->room = 0;
    send_error(c, "not_in_game", "the game is over");
  }
  /* RT_EFULL: the room is flooded; a click more or less is the rate limit's
   * business, and the room's mailbox counts it. */
}

static void client_text(void *session, rt_actor_t *self, const uint8_t *data,
                        size_t len) {
  (void)self;
  client_t *c = session;
  if (c->closing)
    return; /* the rest of a read that ended in a kick */
  /* The flood guard, before any work: one read can hold thousands of
   * messages, and passed on they would fill the Room's or the Manager's
   * mailbox, whose refusals would then fall on the opponent's messages
   * and the Manager's. The Room's click limit is finer and answers. */
  const game_config_t *cfg = &c->g->cfg;
  if (!game_bucket_take(&c->in, cfg->in_rate, cfg->in_burst,
                        rt_now(cworld(c)))) {
    kick(c, GAME_KICK_FLOOD, RT_CLOSE_POLICY, "flooding");
    return;
  }
  c->heard_at = rt_now(cworld(c));
  game_in_t in;
  switch (game_proto_decode(data, len, &in)) {
  case GAME_DECODE_OK: break;
  case GAME_DECODE_BAD_JSON:
    send_error(c, "bad_json", "expected {\"type\": string, \"payload\": {}}");
    return;
  case GAME_DECODE_UNKNOWN_TYPE:
    send_error(c, "unknown_type", "unknown message type");
    return;
  case GAME_DECODE_TOO_BIG:
    send_error(c, "bad_json", "message too large");
    return;
  }
  switch (in.type) {
  case GAME_IN_JOIN_QUEUE:
    c->queued = c->room == 0;
    to_manager(c, GAME_TAG_JOIN);
    return;
  case GAME_IN_LEAVE_QUEUE:
    c->queued = false;
    arm_idle(c); /* heard just now: the idle time starts here */
    to_manager(c, GAME_TAG_LEAVE);
    return;
  case GAME_IN_CLICK: {
    game_click_t k = {.role = c->role, .has_seq = in.has_seq, .seq = in.seq};
    to_room(c, GAME_TAG_CLICK, &k, sizeof(k));
    return;
  }
  case GAME_IN_COOKIE_CLICK:
  case GAME_IN_QUIT: {
    game_role_t r = {.role = c->role};
    to_room(c, in.type == GAME_IN_QUIT ? GAME_TAG_QUIT : GAME_TAG_COOKIE_CLICK,
            &r, sizeof(r));
    return;
  }
  }
}

/* ---- Messages from the game's actors ------------------------------------- */

static void client_message(void *session, rt_actor_t *self,
                           const rt_msg_t *msg) {
  (void)self;
  client_t *c = session;
  switch (msg->tag) {
  case GAME_TAG_OUT_OVER:
    if (msg->buf != NULL) {
      rt_buf_unref(c->over);
      c->over = rt_buf_ref(msg->buf);
      enqueue(c, msg->buf, CLASS_MUST);
    }
    return;
  case GAME_TAG_OUT_MUST:
  case GAME_TAG_OUT_DROP:
  case GAME_TAG_OUT_TICK:
    if (msg->buf != NULL)
      enqueue(c, msg->buf,
              msg->tag == GAME_TAG_OUT_MUST   ? CLASS_MUST
              : msg->tag == GAME_TAG_OUT_DROP ? CLASS_DROP
                                              : CLASS_TICK);
    return;
  case GAME_TAG_OUT_CLICKED: {
    uint8_t points = msg->len == 1 ? msg->inline_data.bytes[0] : 0;
    if (points == 1 || points == 2)
      enqueue(c, c->g->opponent_click[points], CLASS_DROP);
    if (msg->buf != NULL)
      enqueue(c, msg->buf, CLASS_DROP);
    return;
  }
  case GAME_TAG_ASSIGN: {
    game_assign_t a;
    RT_MSG_GET(msg, game_assign_t, &a);
    c->room = a.room;
    c->role = a.role;
    c->queued = false;
    return;
  }
  case GAME_TAG_ROOM_DONE: {
    game_room_done_t d;
    RT_MSG_GET(msg, game_room_done_t, &d);
    if (c->room != 0 && d.room == c->room) {
      c->room = 0;
      c->heard_at = rt_now(cworld(c)); /* back in the lobby: from now */
      arm_idle(c);
    }
    return;
  }
  case GAME_TAG_TIMER_LOBBY_IDLE:
    c->idle_timer = 0;
    if (in_lobby(c) && rt_now(cworld(c)) - c->heard_at >= c->g->cfg.lobby_idle)
      kick(c, GAME_KICK_IDLE, RT_CLOSE_IDLE, "idle");
    else
      arm_idle(c);
    return;
  case GAME_TAG_REPLACED:
    kick(c, GAME_KICK_REPLACED, RT_CLOSE_REPLACED, "replaced");
    return;
  case GAME_TAG_REFUSED:
    kick(c, GAME_KICK_SERVER_FULL, RT_CLOSE_TRY_LATER, "server full");
    return;
  case GAME_TAG_CL_UNAVAILABLE:
    /* Not queued after all (matchmaking is unavailable): the lobby. */
    if (c->room == 0 && c->queued) {
      c->queued = false;
      arm_idle(c);
    }
    return;
  case GAME_TAG_MOVED:
    c->moving = true;
    c->queued = false;
    c->room = 0;
    pump(c);
    return;
  case GAME_TAG_NOT_NOW:
    /* Its game is here, but this instance cannot vouch for it now (its
     * lease lapsed): the player comes back later. */
    close_for(c, "client.not_now", RT_CLOSE_TRY_LATER, "try again later");
    return;
  case GAME_TAG_FENCED:
    /* This instance lost its lease: its games are over elsewhere. The
     * player connects again and hears how (GAME_OVER server_lost). */
    close_for(c, "client.fenced", RT_CLOSE_RESTART, "server_lost");
    return;
  case GAME_TAG_TIMER_WRITE_WAIT: on_write_wait(c, msg); return;
  case GAME_TAG_TIMER_DRAIN_POLL:
    c->poll_timer = 0;
    pump(c);
    return;
  default: return;
  }
}

static void client_drained(void *session, rt_actor_t *self) {
  (void)self;
  pump(session);
}

/* ---- Lifecycle ----------------------------------------------------------- */

static void *client_open(void *ctx, rt_actor_t *self, rt_session_conn_t *conn,
                         const rt_identity_t *who) {
  game_t *g = ctx;
  client_t *c = calloc(1, sizeof(*c));
  if (c == NULL)
    return NULL;
  c->g = g;
  c->conn = conn;
  c->self = rt_self(self);
  snprintf(c->subject, sizeof(c->subject), "%s", who->subject);
  c->progress_at = rt_now(g->world);
  c->heard_at = c->progress_at;
  game_bucket_fill(&c->in, g->cfg.in_burst, c->progress_at);
  if (rt_idmap_put(&g->clients_live, c->self, c) < 0) {
    free(c->out);
    free(c);
    return NULL;
  }
  game_hello_t hello = {.who = *who};
  rt_msg_t m = rt_msg_make(GAME_TAG_HELLO, NULL, 0);
  m.buf = rt_buf_copy(&hello, sizeof(hello));
  if (m.buf == NULL || rt_send(g->world, g->manager, &m) < 0) {
    rt_buf_unref(m.buf);
    rt_idmap_del(&g->clients_live, c->self);
    free(c->out);
    free(c);
    return NULL; /* refused: the connection closes with 1011 */
  }
  arm_idle(c);
  return c;
}

static void client_closed(void *session, rt_actor_t *self, uint16_t code) {
  (void)self;
  client_t *c = session;
  rt_log(cworld(c), RT_LOG_DEBUG, "client.closed", "player=%s code=%u",
         c->subject, (unsigned)code);
  /* The Manager learns of it from its monitor (DOWN). */
  if (c->over != NULL) {
    rt_log(cworld(c), RT_LOG_INFO, "client.over_unsent", "player=%s",
           c->subject);
    game__over_unsent(c->g, c->subject, c->self, c->over);
    rt_buf_unref(c->over);
  }
  rt_idmap_del(&c->g->clients_live, c->self);
  for (uint32_t i = 0; i < c->out_count; i++)
    rt_buf_unref(item(c, i)->buf);
  free(c->out);
  free(c);
}

const rt_session_handler_t *game_session(const game_t *g) {
  return &g->session;
}

void game__client_handler(game_t *g, rt_session_handler_t *out) {
  *out = (rt_session_handler_t){
      .ctx = g,
      .open = client_open,
      .text = client_text,
      .message = client_message,
      .drained = client_drained,
      .closed = client_closed,
  };
}

/* ---- Checks (game_check.h) ----------------------------------------------- */

#define FAIL(...) (snprintf(why, cap, __VA_ARGS__), -1)

int game__client_check(const game_t *g, const void *client, bool quiescent,
                       char *why, size_t cap) {
  const client_t *c = client;
  const game_config_t *cfg = &g->cfg;
  /* The outbound queue stays within both of its bounds. */
  if (c->out_count > cfg->out_count_max || c->out_bytes > cfg->out_bytes_max)
    return FAIL("client %" PRIu64 " (%s): %u frames, %u bytes queued, over "
                "%u/%u",
                c->self, c->subject, c->out_count, c->out_bytes,
                cfg->out_count_max, cfg->out_bytes_max);
  uint64_t bytes = 0;
  uint32_t ticks = 0;
  bool over_queued = false;
  for (uint32_t i = 0; i < c->out_count; i++) {
    const out_item_t *it = &c->out[(c->out_head + i) % c->out_cap];
    bytes += it->buf->len;
    ticks += it->cls == CLASS_TICK;
    over_queued |= it->buf == c->over;
  }
  if (bytes != c->out_bytes || ticks > 1)
    return FAIL("client %" PRIu64 ": %" PRIu64 " bytes in %u frames (%u "
                "ticks), counted %u",
                c->self, bytes, c->out_count, ticks, c->out_bytes);
  /* A GAME_OVER not yet sent waits in the queue, or the connection is
   * closing without it (and will hand it back): never dropped unseen. */
  if (c->over != NULL && !over_queued && !c->closing)
    return FAIL("client %" PRIu64 " (%s): a GAME_OVER neither queued nor "
                "sent, and the connection open",
                c->self, c->subject);
  /* Output that cannot drain is cut after write_wait, not later: with
   * nothing ready, the write-wait timer would have fired by now. */
  rt_time_ns stuck = rt_now(g->world) - c->progress_at;
  if (quiescent && c->out_count > 0 && !c->closing && stuck > cfg->write_wait)
    return FAIL("client %" PRIu64 " (%s): output stuck %" PRId64 " ms, "
                "past the write wait",
                c->self, c->subject, (int64_t)(stuck / RT_NS_PER_MS));
  return 0;
}
