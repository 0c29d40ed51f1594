#include "net_ws.h"

#include "rt_assert.h"
#include "rt_utf8.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <wslay/wslay.h>

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

/* A wslay context and the connection it serves now. wslay keeps its
 * user_data for good, so it is the slot, and the callbacks find the
 * connection through it: a parked context serves the next connection of
 * its kind (ctx_make) without being made again. */
typedef struct ws_slot {
  wslay_event_context_ptr ctx;
  net_ws_t *ws;         /* NULL while pooled */
  struct ws_slot *next; /* in the pool */
} ws_slot_t;

struct net_ws {
  /* wslay's context (two buffers of 4 KiB: most of an idle connection's
   * memory) exists only while frames move: taken at the first byte or
   * message either way, given back by net_ws_park once nothing is in
   * flight. ctx is slot->ctx. */
  wslay_event_context_ptr ctx;
  ws_slot_t *slot;
  rt_stream_t *stream;
  net_ws_callbacks_t cb;
  void *ud;
  rt_rng_t *mask_rng;
  uint8_t *prefix;
  uint32_t prefix_len, prefix_off;
  /* Bytes read to learn whether a parked connection has input; handed to
   * the new context first, within the same net_ws_on_readable. */
  const uint8_t *wake;
  uint32_t wake_len, wake_off;
  /* Bytes handed to wslay that are not yet part of a finished frame: a
   * frame's header and payload are counted out when wslay reports its end.
   * Zero means wslay holds no input of its own (no partial header, no
   * partial frame), one condition for parking. Header sizes are RFC
   * 6455's; a header larger than that (never minimal) only keeps this
   * above zero, so a mistake here can stop parking, never lose bytes. */
  int64_t unframed;
  uint64_t frame_size; /* header and payload of the frame being read */
  int64_t taken;       /* bytes read from the stream during one recv */
  bool more;           /* the read budget ran out with bytes maybe left */
  int stream_error;    /* the stream's error once it failed; 0 before */
  bool failed;         /* wslay or the stream failed: nothing more to do */
  /* Reading stopped (our close, or wslay's 1009) and the peer then sent
   * bytes or EOF: its close reply, which wslay no longer parses. */
  bool peer_answered;
  /* The last wslay_event_send filled the gather buffer: a frame of ours
   * may be cut there, so nothing but its rest may follow it. */
  bool out_cut;
  /* The peer broke the protocol in a way wslay answers without 1002 (a
   * close whose payload is one byte): close_protocol_error's to do. */
  bool proto_error;
  uint16_t close_sent_code; /* the close we asked for (maybe still pending) */
  /* wslay sends control frames ahead of queued data and stops writing once
   * its close is out, so a close queued at once would drop the messages
   * queued before it (a GAME_OVER before a kick). Ours waits until wslay's
   * queue is empty: the close handshake's own deadline bounds a peer that
   * never reads. */
  bool close_pending;
  uint8_t close_reason_len;
  /* Data messages are put together here, not by wslay (no_buffering):
   * wslay would copy each frame into a chunk of its own and the chunks into
   * a message, three allocations and two copies for every message. Most
   * messages arrive as one frame read at once, and then `msg` points into
   * wslay's input buffer, which holds until on_msg_recv in the same step
   * of wslay_event_recv; other messages are copied into `msg_buf` (heap,
   * grown up to message_max, freed once delivered). */
  const uint8_t *msg;
  uint8_t *msg_buf;
  uint32_t msg_len, msg_buf_cap;
  uint32_t message_max;
  uint64_t frame_len; /* payload length of the data frame being read */
  bool frame_fin;
  bool frame_ctrl; /* the frame being read is a control frame: wslay's */
  /* A close frame's reason, checked here as it arrives (close_reason_*):
   * wslay checks it from byte 2 of every chunk rather than of the payload,
   * so a close frame that comes in pieces passed unchecked, and wslay sent
   * its reason back in the closing handshake: invalid UTF-8 from the
   * server (RFC 6455 5.5.1, 8.1). (wslay's check still runs first, and may
   * refuse a valid reason with 1007 when a code point spans two chunks:
   * a close the peer was making anyway.) Payload bytes seen (<= 125), and
   * the bytes of a code point begun. */
  bool frame_close;
  uint8_t close_seen;
  uint8_t close_cp_len;
  uint8_t close_cp[4];
  bool msg_too_big; /* closed with 1009: drop the rest of this message */
  bool in_message;  /* a data message began and has not ended */
  bool client;
  bool park_idle;       /* net_ws_config_t */
  net_ws_pool_t *pool;  /* net_ws_config_t */
  uint64_t *park_count; /* net_ws_config_t */
  /* Frames leave in one write per flush: wslay hands them to send_cb one
   * by one, and a send() per frame was most of a busy server's CPU (the
   * opponent of a clicker gets two frames per click). During a flush they
   * gather in a buffer on the flush's stack; what the stream does not take
   * waits in `pending` (heap, allocated only for a slow peer) and goes
   * first next time. */
  uint8_t *gather;
  uint32_t gather_len, gather_cap;
  uint8_t *pending;
  uint32_t pending_len, pending_off;
  char *close_reason; /* malloc'd by net_ws_close: most connections never
                         close with a reason while open */
};

#define NET_WS_GATHER 8192u
/* Parked contexts a pool keeps. */
#define NET_WS_POOL_MAX 64u
#define NET_WS_CLOSE_REASON_MAX 122u /* a close payload is <= 125 bytes */

/* ---- wslay callbacks ----------------------------------------------------- */

static net_ws_t *ws_of(void *user_data) { return ((ws_slot_t *)user_data)->ws; }

/* Bytes already in hand (the upgrade's prefix, a wake's first read) go to
 * wslay before the stream's: up to len of src[*off, src_len). */
static size_t take_held(const uint8_t *src, uint32_t src_len, uint32_t *off,
                        uint8_t *buf, size_t len) {
  size_t n = src_len - *off;
  if (n > len)
    n = len;
  memcpy(buf, src + *off, n);
  *off += (uint32_t)n;
  return n;
}

static ssize_t recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len,
                       int flags, void *user_data) {
  (void)flags;
  net_ws_t *ws = ws_of(user_data);
  size_t held = 0;
  if (ws->prefix_off < ws->prefix_len)
    held = take_held(ws->prefix, ws->prefix_len, &ws->prefix_off, buf, len);
  else if (ws->wake_off < ws->wake_len)
    held = take_held(ws->wake, ws->wake_len, &ws->wake_off, buf, len);
  if (held > 0) {
    ws->unframed += (int64_t)held;
    return (ssize_t)held;
  }
  if (ws->taken >= NET_WS_READ_BUDGET) {
    ws->more = true; /* fairness: let other connections run */
    wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
    return -1;
  }
  int64_t n = rt_stream_read(ws->stream, buf, len);
  if (n > 0) {
    ws->taken += n;
    ws->unframed += n;
    return (ssize_t)n;
  }
  if (n == 0) {
    wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
    return -1;
  }
  ws->stream_error = (int)n;
  wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
  return -1;
}

static ssize_t send_cb(wslay_event_context_ptr ctx, const uint8_t *data,
                       size_t len, int flags, void *user_data) {
  (void)flags;
  net_ws_t *ws = ws_of(user_data);
  RT_ASSERT(ws->gather != NULL); /* wslay sends only from send_queued */
  size_t room = ws->gather_cap - ws->gather_len;
  if (room == 0) {
    wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK); /* write, then more */
    return -1;
  }
  size_t n = len < room ? len : room;
  memcpy(ws->gather + ws->gather_len, data, n);
  ws->gather_len += (uint32_t)n;
  return (ssize_t)n;
}

static int genmask_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len,
                      void *user_data) {
  (void)ctx;
  net_ws_t *ws = ws_of(user_data);
  for (size_t i = 0; i < len; i += 8) {
    uint64_t r = rt_rng_next(ws->mask_rng);
    size_t n = len - i < 8 ? len - i : 8;
    memcpy(buf + i, &r, n);
  }
  return 0;
}

static void msg_reset(net_ws_t *ws) {
  if (ws->msg_buf_cap != 0) { /* msg_buf is on a colder line: look only then */
    free(ws->msg_buf);
    ws->msg_buf = NULL;
    ws->msg_buf_cap = 0;
  }
  ws->msg = NULL;
  ws->msg_len = 0;
}

/* The bytes a UTF-8 sequence has, by its first: 0 for a byte no sequence
 * begins with (rt_utf8_decode then judges the whole sequence). */
static size_t utf8_len(uint8_t lead) {
  return lead < 0x80                    ? 1
         : lead >= 0xc2 && lead <= 0xdf ? 2
         : lead >= 0xe0 && lead <= 0xef ? 3
         : lead >= 0xf0 && lead <= 0xf4 ? 4
                                        : 0;
}

/* A close frame whose reason is not UTF-8 is refused as wslay refuses
 * invalid text: 1007, and no more reading. This is queued before the end
 * of the frame, where wslay would queue its echo of the reason, so the
 * echo is never sent (wslay queues one close only). */
static void close_reason_bad(wslay_event_context_ptr ctx, net_ws_t *ws) {
  ws->frame_close = false; /* judged */
  wslay_event_shutdown_read(ctx);
  (void)wslay_event_queue_close(ctx, NET_WS_CLOSE_INVALID_DATA, NULL, 0);
}

static void close_reason_chunk(wslay_event_context_ptr ctx, net_ws_t *ws,
                               const uint8_t *data, size_t len) {
  for (size_t i = 0; i < len && ws->frame_close; i++) {
    if (ws->close_seen < 125)
      ws->close_seen++; /* control payloads are <= 125 bytes (wslay) */
    if (ws->close_seen <= 2)
      continue; /* the status code */
    ws->close_cp[ws->close_cp_len++] = data[i];
    size_t need = utf8_len(ws->close_cp[0]);
    uint32_t cp;
    if (need == 0 || (ws->close_cp_len == need &&
                      rt_utf8_decode(ws->close_cp, need, &cp) != (int)need)) {
      close_reason_bad(ctx, ws);
      return;
    }
    if (ws->close_cp_len == need)
      ws->close_cp_len = 0;
  }
}

/* A frame begins. wslay has checked the frame's own length against the
 * limit; with no buffering it no longer adds up a fragmented message's
 * frames, so the total is checked here, at the same point and with the
 * same close (1009 at once, no more reading) as wslay's own check. */
static void
on_frame_start_cb(wslay_event_context_ptr ctx,
                  const struct wslay_event_on_frame_recv_start_arg *arg,
                  void *user_data) {
  net_ws_t *ws = ws_of(user_data);
  uint64_t len = arg->payload_length;
  /* RFC 6455 5.2: 2 bytes, the extended length, the mask (client frames) */
  ws->frame_size = 2u +
                   (len < 126        ? 0u
                    : len <= 0xFFFFu ? 2u
                                     : 8u) +
                   (ws->client ? 0u : 4u) + len;
  ws->frame_ctrl = (arg->opcode & 0x8u) != 0;
  ws->frame_close = arg->opcode == WSLAY_CONNECTION_CLOSE;
  ws->close_seen = ws->close_cp_len = 0;
  if (ws->frame_ctrl)
    return;              /* wslay buffers control frames itself */
  ws->in_message = true; /* until on_msg_recv */
  if (arg->opcode != WSLAY_CONTINUATION_FRAME) {
    msg_reset(ws);
    ws->msg_too_big = false;
  }
  ws->frame_len = arg->payload_length;
  ws->frame_fin = arg->fin != 0;
  if (!ws->msg_too_big && ws->msg_len + arg->payload_length > ws->message_max) {
    ws->msg_too_big = true;
    wslay_event_shutdown_read(ctx);
    (void)wslay_event_queue_close(ctx, NET_WS_CLOSE_TOO_BIG, NULL, 0);
    msg_reset(ws);
  }
}

static void
on_frame_chunk_cb(wslay_event_context_ptr ctx,
                  const struct wslay_event_on_frame_recv_chunk_arg *arg,
                  void *user_data) {
  net_ws_t *ws = ws_of(user_data);
  if (ws->frame_close)
    close_reason_chunk(ctx, ws, arg->data, arg->data_length);
  if (ws->frame_ctrl || ws->msg_too_big || arg->data_length == 0)
    return;
  RT_ASSERT(ws->msg_len + arg->data_length <= ws->message_max);
  if (ws->msg_len == 0 && ws->frame_fin && arg->data_length == ws->frame_len) {
    ws->msg = arg->data; /* the whole message, in wslay's input buffer */
    ws->msg_len = (uint32_t)arg->data_length;
    return;
  }
  /* A message in wslay's buffer was whole: no chunk follows it. */
  RT_ASSERT(ws->msg == NULL || ws->msg == ws->msg_buf);
  uint32_t need = ws->msg_len + (uint32_t)arg->data_length;
  if (need > ws->msg_buf_cap) {
    uint32_t cap = ws->msg_buf_cap == 0 ? 256u : ws->msg_buf_cap;
    while (cap < need)
      cap = cap <= UINT32_MAX / 2 ? cap * 2 : need; /* no wrap to 0 */
    if (cap > ws->message_max)
      cap = ws->message_max;
    uint8_t *grown = realloc(ws->msg_buf, cap);
    if (grown == NULL) {
      /* No memory for this message: refuse it as wslay did (its chunk
       * allocation failing ended the reading). */
      ws->msg_too_big = true;
      wslay_event_shutdown_read(ctx);
      (void)wslay_event_queue_close(ctx, NET_WS_CLOSE_INTERNAL, NULL, 0);
      msg_reset(ws);
      return;
    }
    ws->msg_buf = grown;
    ws->msg_buf_cap = cap;
  }
  memcpy(ws->msg_buf + ws->msg_len, arg->data, arg->data_length);
  ws->msg = ws->msg_buf;
  ws->msg_len = need;
}

static void on_frame_end_cb(wslay_event_context_ptr ctx, void *user_data) {
  net_ws_t *ws = ws_of(user_data);
  if (ws->frame_close && ws->close_cp_len != 0)
    close_reason_bad(ctx, ws); /* the reason ends inside a code point */
  ws->frame_close = false;
  ws->unframed -= (int64_t)ws->frame_size;
  ws->frame_size = 0;
}

static void on_msg_recv_cb(wslay_event_context_ptr ctx,
                           const struct wslay_event_on_msg_recv_arg *arg,
                           void *user_data) {
  net_ws_t *ws = ws_of(user_data);
  if (arg->opcode == WSLAY_TEXT_FRAME || arg->opcode == WSLAY_BINARY_FRAME)
    ws->in_message = false;
  switch (arg->opcode) {
  case WSLAY_TEXT_FRAME:
    /* Valid UTF-8 already: wslay checks every text frame as it arrives
     * (across the fragments of a message) and closes with 1007 itself, so
     * an invalid message never gets here. tests/net checks both. */
    if (!ws->msg_too_big && ws->cb.on_text != NULL &&
        wslay_event_get_read_enabled(ctx))
      ws->cb.on_text(ws->ud, ws->msg != NULL ? ws->msg : (const uint8_t *)"",
                     ws->msg_len);
    msg_reset(ws);
    return;
  case WSLAY_BINARY_FRAME:
    if (!ws->msg_too_big)
      net_ws_close(ws, NET_WS_CLOSE_UNSUPPORTED, "text messages only");
    msg_reset(ws);
    return;
  case WSLAY_PONG:
    if (ws->cb.on_pong != NULL)
      ws->cb.on_pong(ws->ud, arg->msg, arg->msg_length);
    return;
  case WSLAY_CONNECTION_CLOSE:
    /* A one-byte payload is no status code: RFC 6455 5.5.1 allows 0 or at
     * least 2 bytes. wslay takes it as none and replies with an empty
     * close; it is a protocol error (1002). */
    if (arg->msg_length == 1)
      ws->proto_error = true;
    return;
  default: return; /* ping: wslay queued the pong */
  }
}

/* ---- Lifecycle ----------------------------------------------------------- */

/* Parked contexts, last parked first: the one taken next is the one most
 * likely still in cache. */
struct net_ws_pool {
  bool client;
  ws_slot_t *head;
  uint32_t len;
};

static void slot_free(ws_slot_t *slot) {
  wslay_event_context_free(slot->ctx);
  free(slot);
}

net_ws_pool_t *net_ws_pool_create(bool client) {
  net_ws_pool_t *pool = calloc(1, sizeof(*pool));
  if (pool != NULL)
    pool->client = client;
  return pool;
}

void net_ws_pool_destroy(net_ws_pool_t *pool) {
  if (pool == NULL)
    return;
  while (pool->head != NULL) {
    ws_slot_t *slot = pool->head;
    pool->head = slot->next;
    slot_free(slot);
  }
  free(pool);
}

/* A parked context to the pool, or freed (no pool, or a full one). */
static void slot_park(net_ws_pool_t *pool, ws_slot_t *slot) {
  slot->ws = NULL;
  if (pool == NULL || pool->len == NET_WS_POOL_MAX) {
    slot_free(slot);
    return;
  }
  slot->next = pool->head;
  pool->head = slot;
  pool->len++;
}

static ws_slot_t *slot_take(net_ws_pool_t *pool) {
  ws_slot_t *slot = pool != NULL ? pool->head : NULL;
  if (slot != NULL) {
    pool->head = slot->next;
    pool->len--;
  }
  return slot;
}

static void ctx_drop(net_ws_t *ws) {
  slot_free(ws->slot);
  ws->slot = NULL;
  ws->ctx = NULL;
}

/* Take wslay's context (again, after a park): a pooled one, or a fresh
 * one. Either is exactly the parked one, as parking waits for a frame
 * boundary with nothing queued, nothing half read and no close begun: what
 * wslay keeps between messages then is its configuration, set here. */
static int ctx_make(net_ws_t *ws) {
  if (ws->ctx != NULL)
    return RT_OK;
  if (ws->failed)
    return RT_EPIPE;
  ws_slot_t *slot = slot_take(ws->pool);
  if (slot == NULL) {
    struct wslay_event_callbacks callbacks = {
        .recv_callback = recv_cb,
        .send_callback = send_cb,
        .genmask_callback = ws->client ? genmask_cb : NULL,
        .on_frame_recv_start_callback = on_frame_start_cb,
        .on_frame_recv_chunk_callback = on_frame_chunk_cb,
        .on_frame_recv_end_callback = on_frame_end_cb,
        .on_msg_recv_callback = on_msg_recv_cb,
    };
    slot = calloc(1, sizeof(*slot));
    int rc =
        slot == NULL ? -1
        : ws->client
            ? wslay_event_context_client_init(&slot->ctx, &callbacks, slot)
            : wslay_event_context_server_init(&slot->ctx, &callbacks, slot);
    if (rc != 0) {
      free(slot);
      ws->failed = true;
      ws->stream_error = RT_ENOMEM;
      return RT_ENOMEM;
    }
    wslay_event_config_set_no_buffering(slot->ctx, 1); /* see net_ws.msg */
  }
  slot->ws = ws;
  ws->slot = slot;
  ws->ctx = slot->ctx;
  wslay_event_config_set_max_recv_msg_length(ws->ctx, ws->message_max);
  ws->unframed = 0;
  ws->frame_size = 0;
  ws->in_message = false;
  return RT_OK;
}

net_ws_t *net_ws_create(rt_stream_t *stream, const net_ws_config_t *cfg,
                        const net_ws_callbacks_t *cb, void *ud,
                        const uint8_t *prefix, size_t prefix_len) {
  RT_ASSERT(!cfg->client || cfg->mask_rng != NULL);
  RT_ASSERT(cfg->pool == NULL || cfg->pool->client == cfg->client);
  net_ws_t *ws = calloc(1, sizeof(*ws));
  if (ws == NULL)
    return NULL;
  ws->stream = stream;
  ws->cb = *cb;
  ws->ud = ud;
  ws->client = cfg->client;
  ws->park_idle = cfg->park_idle;
  ws->pool = cfg->pool;
  ws->park_count = cfg->park_count;
  ws->mask_rng = cfg->mask_rng;
  ws->message_max =
      cfg->message_max != 0 ? cfg->message_max : NET_WS_MESSAGE_MAX_DEFAULT;
  if (prefix_len > 0) {
    ws->prefix = malloc(prefix_len);
    if (ws->prefix == NULL) {
      free(ws);
      return NULL;
    }
    memcpy(ws->prefix, prefix, prefix_len);
    ws->prefix_len = (uint32_t)prefix_len;
  }
  return ws;
}

void net_ws_destroy(net_ws_t *ws) {
  if (ws == NULL)
    return;
  if (ws->ctx != NULL)
    ctx_drop(ws);
  free(ws->pending);
  free(ws->prefix);
  free(ws->msg_buf);
  free(ws->close_reason);
  free(ws);
}

/* ---- I/O ----------------------------------------------------------------- */

static int fail_with(net_ws_t *ws, int err) {
  ws->failed = true;
  if (err < 0)
    ws->stream_error = err;
  return ws->stream_error != 0 ? ws->stream_error : RT_EPROTO;
}

/* Write pending bytes; true when none are left. */
static int write_pending(net_ws_t *ws, bool *drained) {
  *drained = true;
  if (ws->pending_off == ws->pending_len)
    return RT_OK;
  int64_t n = rt_stream_write(ws->stream, ws->pending + ws->pending_off,
                              ws->pending_len - ws->pending_off);
  if (n < 0)
    return fail_with(ws, (int)n);
  ws->pending_off += (uint32_t)n;
  if (ws->pending_off < ws->pending_len) {
    *drained = false;
    return RT_OK;
  }
  free(ws->pending);
  ws->pending = NULL;
  ws->pending_len = ws->pending_off = 0;
  return RT_OK;
}

/* Keep what the stream did not take of a gathered write. */
static int keep_rest(net_ws_t *ws, const uint8_t *rest, size_t len) {
  RT_ASSERT(ws->pending == NULL);
  ws->pending = malloc(len);
  if (ws->pending == NULL)
    return fail_with(ws, RT_ENOMEM);
  memcpy(ws->pending, rest, len);
  ws->pending_len = (uint32_t)len;
  ws->pending_off = 0;
  return RT_OK;
}

/* wslay_event_want_write, asked cheaply first: it reads wslay's two queue
 * heads, each a small allocation of its own, on every flush of every
 * connection, while the count of queued messages (those in the queues and
 * the one being sent) sits in the context itself and is zero after most
 * reads. */
static bool want_write(const net_ws_t *ws) {
  return ws->ctx != NULL && wslay_event_get_queued_msg_count(ws->ctx) > 0 &&
         wslay_event_want_write(ws->ctx);
}

static int send_queued(net_ws_t *ws) {
  bool drained;
  int err = write_pending(ws, &drained);
  if (err < 0 || !drained)
    return err; /* WRITABLE brings us back */
  uint8_t buf[NET_WS_GATHER];
  for (int round = 0; round < 16 && want_write(ws); round++) {
    ws->gather = buf;
    ws->gather_len = 0;
    ws->gather_cap = sizeof(buf);
    int rc = wslay_event_send(ws->ctx);
    uint32_t len = ws->gather_len;
    ws->gather = NULL;
    ws->out_cut = len == sizeof(buf);
    if (rc != 0)
      return fail_with(ws, RT_EPROTO);
    if (len == 0)
      break;
    int64_t n = rt_stream_write(ws->stream, buf, len);
    if (n < 0)
      return fail_with(ws, (int)n);
    if ((uint32_t)n < len)
      return keep_rest(ws, buf + n, len - (uint32_t)n);
    if (len < sizeof(buf))
      break; /* wslay had no more */
  }
  return RT_OK;
}

int net_ws_flush(net_ws_t *ws) {
  if (ws->failed)
    return ws->stream_error != 0 ? ws->stream_error : RT_EPROTO;
  int err = send_queued(ws);
  if (err == RT_OK && !ws->close_pending && ws->park_idle)
    (void)net_ws_park(ws);
  if (err < 0 || !ws->close_pending ||
      wslay_event_get_queued_msg_count(ws->ctx) > 0 || ws->pending != NULL)
    return err;              /* (a pending close implies a context) */
  ws->close_pending = false; /* everything before it is out: now the close */
  if (!wslay_event_get_close_sent(ws->ctx) &&
      wslay_event_queue_close(ws->ctx, ws->close_sent_code,
                              (const uint8_t *)ws->close_reason,
                              ws->close_reason_len) != 0)
    return RT_OK; /* wslay already closing (the peer's close answered) */
  return send_queued(ws);
}

/* RFC 6455 7.4.1: a peer that breaks the protocol gets 1002. wslay sends
 * an empty close instead after the errors its frame parser finds (a 64-bit
 * length with its top bit set, a control frame over 125 bytes or cut into
 * fragments) and replies to a one-byte close payload with an empty close.
 * So its context, with that close queued and not yet sent, is dropped, and
 * a fresh one sends 1002 the way every close of ours goes out: after the
 * frames already made (in `pending`), with reading over. What the old
 * context still held unsent is not sent: the peer broke the protocol.
 * When a frame of ours may be cut in the gather buffer (out_cut), no other
 * frame may follow it, and the connection fails as before; so does a
 * stream error. Returns 0, or the error that ends the connection. */
static int close_protocol_error(net_ws_t *ws, int recv_rc) {
  ws->proto_error = false;
  if (recv_rc == WSLAY_ERR_NOMEM)
    return fail_with(ws, RT_ENOMEM);
  if (ws->stream_error != 0 || ws->out_cut ||
      wslay_event_get_close_sent(ws->ctx))
    return fail_with(ws, RT_EPROTO);
  ctx_drop(ws);
  msg_reset(ws);
  ws->msg_too_big = false;
  int err = ctx_make(ws);
  if (err < 0)
    return err;
  if (ws->close_sent_code == 0)
    net_ws_close(ws, NET_WS_CLOSE_PROTOCOL, NULL);
  else
    ws->close_pending = true; /* ours, asked before: sent on the new one */
  wslay_event_shutdown_read(ws->ctx);
  return RT_OK;
}

/* wslay_event_recv, then what a protocol error asks for. */
static int recv_frames(net_ws_t *ws) {
  int rc = wslay_event_recv(ws->ctx);
  if (rc != 0 || ws->proto_error)
    return close_protocol_error(ws, rc);
  return RT_OK;
}

/* Parked: a context is made only if the stream has bytes (a readable
 * event may find none). The first bytes go to it through recv_cb. */
static int64_t wake_and_recv(net_ws_t *ws) {
  uint8_t first[256];
  int64_t n = rt_stream_read(ws->stream, first, sizeof(first));
  if (n <= 0) {
    if (n < 0) {
      ws->stream_error = (int)n;
      ws->failed = true;
    }
    return n;
  }
  ws->taken = n;
  if (ctx_make(ws) < 0)
    return RT_ENOMEM;
  ws->wake = first;
  ws->wake_len = (uint32_t)n;
  ws->wake_off = 0;
  int rc = recv_frames(ws);
  /* wslay reads until it would block unless reading stopped (a close, an
   * error), and what follows those is not read anyway. */
  RT_ASSERT(rc != 0 || ws->wake_off == ws->wake_len ||
            !wslay_event_get_read_enabled(ws->ctx));
  ws->wake = NULL;
  ws->wake_len = ws->wake_off = 0;
  return rc == 0 ? n : rc;
}

int64_t net_ws_on_readable(net_ws_t *ws) {
  if (ws->failed)
    return ws->stream_error != 0 ? ws->stream_error : RT_EPROTO;
  ws->taken = 0;
  ws->more = false;
  if (ws->ctx == NULL && ws->prefix_off == ws->prefix_len) {
    int64_t n = wake_and_recv(ws);
    if (n == 0)
      return 0;
    if (n < 0) {
      ws->failed = true;
      return ws->stream_error != 0 ? ws->stream_error : (int)n;
    }
  } else if (ctx_make(ws) < 0) {
    return RT_ENOMEM;
  } else if (wslay_event_want_read(ws->ctx)) {
    int err = recv_frames(ws);
    if (err < 0)
      return err;
  }
  if (!wslay_event_get_read_enabled(ws->ctx)) {
    /* Reading is over (a close was received, or we closed): drain and drop
     * what the peer still sends so its writes do not stall. Once our close
     * went out, anything from the peer, or its EOF, is its answer. */
    uint8_t sink[512];
    bool close_out = wslay_event_get_close_sent(ws->ctx) != 0;
    for (int i = 0; i < 64; i++) {
      int64_t n = rt_stream_read(ws->stream, sink, sizeof(sink));
      if (n == 0)
        break;
      if (n < 0) {
        if (close_out) {
          ws->peer_answered = true;
          return ws->taken;
        }
        ws->stream_error = (int)n;
        ws->failed = true;
        return n;
      }
      ws->taken += n;
      if (close_out)
        ws->peer_answered = true;
    }
    if (ws->taken >= 64 * (int64_t)sizeof(sink))
      ws->more = true;
  }
  if (ws->park_idle)
    (void)net_ws_park(ws);
  return ws->taken;
}

int net_ws_send_text(net_ws_t *ws, const uint8_t *data, size_t len) {
  if (ws->failed || ws->close_pending)
    return RT_EPIPE;
  int err = ctx_make(ws);
  if (err < 0)
    return err;
  struct wslay_event_msg msg = {
      .opcode = WSLAY_TEXT_FRAME, .msg = data, .msg_length = len};
  int rc = wslay_event_queue_msg(ws->ctx, &msg);
  if (rc == WSLAY_ERR_NOMEM)
    return RT_ENOMEM;
  return rc == 0 ? RT_OK : RT_EPIPE;
}

int net_ws_send_ping(net_ws_t *ws, const uint8_t *data, size_t len) {
  if (len > NET_WS_PING_MAX)
    return RT_EINVAL;
  if (ws->failed || ctx_make(ws) < 0)
    return RT_EPIPE;
  struct wslay_event_msg msg = {
      .opcode = WSLAY_PING, .msg = data, .msg_length = len};
  return wslay_event_queue_msg(ws->ctx, &msg) == 0 ? RT_OK : RT_EPIPE;
}

void net_ws_close(net_ws_t *ws, uint16_t code, const char *reason) {
  if (ws->failed || ctx_make(ws) < 0 || wslay_event_get_close_sent(ws->ctx) ||
      ws->close_sent_code != 0)
    return;
  size_t rlen = reason != NULL ? strlen(reason) : 0;
  if (rlen > NET_WS_CLOSE_REASON_MAX)
    rlen = NET_WS_CLOSE_REASON_MAX; /* control payloads <= 125 bytes */
  if (rlen > 0) {
    ws->close_reason = malloc(rlen);
    if (ws->close_reason != NULL)
      memcpy(ws->close_reason, reason, rlen);
    else
      rlen = 0; /* out of memory: the code alone still says it */
  }
  ws->close_reason_len = (uint8_t)rlen;
  ws->close_sent_code = code;
  ws->close_pending = true; /* queued by net_ws_flush, after the data */
  wslay_event_shutdown_read(ws->ctx);
}

size_t net_ws_backlog(const net_ws_t *ws) {
  return (ws->ctx != NULL ? wslay_event_get_queued_msg_length(ws->ctx) : 0) +
         (ws->pending_len - ws->pending_off) + rt_stream_backlog(ws->stream);
}

bool net_ws_wants_more(const net_ws_t *ws) { return ws->more; }

bool net_ws_finished(const net_ws_t *ws) {
  if (ws->failed)
    return true;
  return ws->ctx != NULL && wslay_event_get_close_sent(ws->ctx) &&
         (wslay_event_get_close_received(ws->ctx) || ws->peer_answered) &&
         !want_write(ws) && ws->pending == NULL;
}

bool net_ws_failed(const net_ws_t *ws) { return ws->failed; }

bool net_ws_closing(const net_ws_t *ws) {
  return ws->close_sent_code != 0 ||
         (ws->ctx != NULL && (wslay_event_get_close_sent(ws->ctx) ||
                              wslay_event_get_close_received(ws->ctx)));
}

uint16_t net_ws_close_code(const net_ws_t *ws) {
  if (ws->ctx != NULL && wslay_event_get_close_sent(ws->ctx)) {
    uint16_t c = wslay_event_get_status_code_sent(ws->ctx);
    if (c != WSLAY_CODE_NO_STATUS_RCVD && c != WSLAY_CODE_ABNORMAL_CLOSURE)
      return c;
  }
  if (ws->close_sent_code != 0)
    return ws->close_sent_code;
  uint16_t peer = net_ws_peer_close_code(ws);
  return peer != 0 ? peer : NET_WS_CLOSE_ABNORMAL;
}

uint16_t net_ws_peer_close_code(const net_ws_t *ws) {
  if (ws->ctx == NULL || !wslay_event_get_close_received(ws->ctx))
    return 0;
  uint16_t c = wslay_event_get_status_code_received(ws->ctx);
  return c == WSLAY_CODE_NO_STATUS_RCVD ? NET_WS_CLOSE_NORMAL : c;
}

bool net_ws_park(net_ws_t *ws) {
  if (ws->ctx == NULL)
    return true;
  if (ws->failed || ws->close_pending || ws->close_sent_code != 0 ||
      ws->pending != NULL || ws->unframed != 0 || ws->in_message ||
      ws->prefix_off != ws->prefix_len ||
      wslay_event_get_queued_msg_count(ws->ctx) != 0 ||
      !wslay_event_get_read_enabled(ws->ctx) ||
      !wslay_event_get_write_enabled(ws->ctx) ||
      wslay_event_get_close_sent(ws->ctx) ||
      wslay_event_get_close_received(ws->ctx))
    return false;
  RT_ASSERT(ws->msg_buf == NULL);
  slot_park(ws->pool, ws->slot);
  ws->slot = NULL;
  ws->ctx = NULL;
  if (ws->park_count != NULL)
    (*ws->park_count)++;
  free(ws->prefix);
  ws->prefix = NULL;
  ws->prefix_len = ws->prefix_off = 0;
  return true;
}

bool net_ws_parked(const net_ws_t *ws) { return ws->ctx == NULL; }

/* ---- Handshake helpers --------------------------------------------------- */

int net_ws_accept_key(const char *client_key, char out[NET_WS_ACCEPT_LEN + 1]) {
  if (client_key == NULL || strlen(client_key) != NET_WS_KEY_LEN)
    return RT_EINVAL;
  /* The key must be base64 of exactly 16 bytes (RFC 6455 4.2.1): 22
   * symbols, the last with its low 4 bits zero, and "==". EVP_DecodeBlock
   * alone is lenient: it reads '=' anywhere as a zero digit and drops the
   * unused bits, so "AAAAAAAAAAAAAAAAAAAAA===" would pass as 18 bytes.
   * Encoding the 16 bytes again must give the key back, character for
   * character: that is the one spelling of 16 bytes. */
  unsigned char raw[NET_WS_KEY_LEN];
  int n =
      EVP_DecodeBlock(raw, (const unsigned char *)client_key, NET_WS_KEY_LEN);
  if (n != 18)
    return RT_EINVAL;
  char again[NET_WS_KEY_LEN + 1];
  if (EVP_EncodeBlock((unsigned char *)again, raw, 16) != NET_WS_KEY_LEN ||
      memcmp(again, client_key, NET_WS_KEY_LEN) != 0)
    return RT_EINVAL;
  char joined[NET_WS_KEY_LEN + sizeof(WS_GUID)];
  memcpy(joined, client_key, NET_WS_KEY_LEN);
  memcpy(joined + NET_WS_KEY_LEN, WS_GUID, sizeof(WS_GUID) - 1);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int dlen = 0;
  if (EVP_Digest(joined, NET_WS_KEY_LEN + sizeof(WS_GUID) - 1, digest, &dlen,
                 EVP_sha1(), NULL) != 1 ||
      dlen != 20)
    return RT_EIO;
  int m = EVP_EncodeBlock((unsigned char *)out, digest, 20);
  RT_ASSERT(m == NET_WS_ACCEPT_LEN);
  out[NET_WS_ACCEPT_LEN] = '\0';
  return RT_OK;
}

void net_ws_client_key(rt_rng_t *rng, char out[NET_WS_KEY_LEN + 1]) {
  unsigned char raw[16];
  uint64_t a = rt_rng_next(rng), b = rt_rng_next(rng);
  memcpy(raw, &a, 8);
  memcpy(raw + 8, &b, 8);
  int m = EVP_EncodeBlock((unsigned char *)out, raw, 16);
  RT_ASSERT(m == NET_WS_KEY_LEN);
  out[NET_WS_KEY_LEN] = '\0';
}
