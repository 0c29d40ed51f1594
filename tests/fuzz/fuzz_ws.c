/* fuzz_ws.c: a client's bytes as WebSocket frames into the server's net_ws.
 *
 * Input: byte 0 sets the server's side (bits 0-1: message limit 512, 125,
 * 16 or 4096; bit 2: echo every text message back, as a session answers;
 * bit 3: a slow peer whose stream takes at most 7 bytes a write; bit 4: a
 * ping from the server every third read; bit 5: the server closes with
 * 1000 after the second read; bit 6: the first read arrives with the
 * upgrade, as net_ws_create's prefix); byte 1 cuts the rest into reads of
 * 1 + 8 * b bytes; the rest is what the client sends after the upgrade.
 * The bytes come through a stream in memory (rt_stream.h's interface, in a
 * bare world made once per process: no simulation), one read's worth at a
 * time, and each read is handled as net_server's ws_readable and
 * ws_after_io handle it: read until no more, flush, stop once finished or
 * failed. Then the client's EOF.
 *
 * Each input runs twice: once parking the WebSocket (net_ws_park) between
 * every two reads, once never (unless no park freed anything: then the two
 * runs are one).
 *
 * Rules checked, beyond no crash and no sanitizer report:
 *  (1) a message delivered is within the limit and valid UTF-8 (checked
 *      here by a decoder of its own);
 *  (2) what the server sends is well-formed server frames (RFC 6455 5.2):
 *      unmasked, no reserved bits, known opcodes, minimal lengths, control
 *      frames whole and at most 125 bytes, a close code that may be sent,
 *      nothing after a close; its text messages are, in order, the ones
 *      the session sent (a prefix of them, if a close cut the rest);
 *  (3) a park that succeeds leaves the WebSocket parked, and parking
 *      changes nothing: both runs deliver the same messages, send the same
 *      bytes and end the same way (net_ws.h: a fresh context "behaves as
 *      the freed one would have").
 */
#include "fuzz_check.h"
#include "net_ws.h"
#include "rt_stream.h"

#include <stdbool.h>
#include <string.h>

#define INPUT_MAX (64u * 1024)
#define SLOW_WRITE 7u
#define ROUNDS_MAX 64u /* net_ws_on_readable calls per read, at most */
/* A client's message takes at least 6 bytes (a masked frame's header), so
 * an input of n bytes holds at most n / 6 + 1 of them. What the server
 * sends is a few bytes per read (pings, a close) and at most as much again
 * as it reads (echoes, pongs): OUTPUT_FOR(n, reads) bounds it. */
#define MESSAGES_FOR(n) ((n) / 6 + 1)
#define OUTPUT_FOR(n, reads) (2 * (n) + 8 * (reads) + 256)

/* ---- UTF-8, decoded here apart from the code under test ------------------ */

static bool utf8_valid(const uint8_t *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    uint8_t c = s[i];
    size_t len;
    uint32_t cp, min;
    if (c < 0x80) {
      i++;
      continue;
    } else if ((c & 0xe0) == 0xc0) {
      len = 2, cp = c & 0x1f, min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
      len = 3, cp = c & 0x0f, min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
      len = 4, cp = c & 0x07, min = 0x10000;
    } else {
      return false;
    }
    if (n - i < len)
      return false;
    for (size_t k = 1; k < len; k++) {
      if ((s[i + k] & 0xc0) != 0x80)
        return false;
      cp = (cp << 6) | (s[i + k] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
      return false;
    i += len;
  }
  return true;
}

/* ---- The stream: the client's bytes in, the server's out ----------------- */

typedef struct mem_stream {
  rt_stream_t s; /* first: rt_stream_t's backends embed it */
  const uint8_t *in;
  size_t in_off, in_end; /* readable now: [in_off, in_end) */
  bool eof;              /* the client finished: every byte was offered */
  bool slow;
  uint8_t *out;
  size_t out_len, out_cap;
} mem_stream_t;

static int64_t mem_read(rt_stream_t *s, void *buf, size_t cap) {
  mem_stream_t *m = (mem_stream_t *)s;
  size_t n = m->in_end - m->in_off;
  if (n == 0)
    return m->eof ? RT_EOF : 0;
  if (n > cap)
    n = cap;
  memcpy(buf, m->in + m->in_off, n);
  m->in_off += n;
  return (int64_t)n;
}

static int64_t mem_write(rt_stream_t *s, const void *buf, size_t len) {
  mem_stream_t *m = (mem_stream_t *)s;
  size_t n = m->slow && len > SLOW_WRITE ? SLOW_WRITE : len;
  FUZZ_CHECK(m->out_len + n <= m->out_cap,
             "the server sent over %zu bytes, for %zu read", m->out_cap,
             m->in_off);
  memcpy(m->out + m->out_len, buf, n);
  m->out_len += n;
  return (int64_t)n;
}

static size_t mem_backlog(const rt_stream_t *s) {
  (void)s;
  return 0; /* the client takes what was written at once */
}

static void mem_shutdown(rt_stream_t *s) { (void)s; }
static void mem_destroy(rt_stream_t *s) { (void)s; }

static const rt_stream_ops_t mem_ops = {
    .read = mem_read,
    .write = mem_write,
    .backlog = mem_backlog,
    .shutdown = mem_shutdown,
    .destroy = mem_destroy,
};

/* A bare world for the streams, made once: no actor ever runs in it. */
static rt_world_t *world(void) {
  static rt_world_t *w;
  if (w == NULL) {
    rt_world_config_t wc = {
        .seed = 1, .log_level = RT_LOG_OFF, .hash_disabled = true};
    rt_backend_t be = {0};
    w = rt_world_create(&wc, &be, NULL);
    if (w == NULL)
      abort();
  }
  return w;
}

/* ---- One run ------------------------------------------------------------- */

enum {
  OPT_LIMIT = 3,
  OPT_ECHO = 1 << 2,
  OPT_SLOW = 1 << 3,
  OPT_PING = 1 << 4,
  OPT_CLOSE = 1 << 5,
  OPT_PREFIX = 1 << 6,
};

typedef struct run {
  net_ws_t *ws;
  mem_stream_t stream;
  uint32_t message_max;
  bool echo;
  /* Messages delivered, each as a 4-byte length and its bytes. */
  uint8_t *log;
  size_t log_len, log_cap;
  uint32_t messages, messages_max;
  /* Messages the session sent (echoed), in order: where each is in log. */
  uint32_t sent;
  size_t *sent_at;
  uint32_t *sent_len;
  uint16_t close_code;
  bool failed, finished;
  uint32_t parks; /* contexts freed by net_ws_park */
} run_t;

static void on_text(void *ud, const uint8_t *data, size_t len) {
  run_t *r = ud;
  /* Rule (1). */
  FUZZ_CHECK(len <= r->message_max, "a message of %zu bytes, limit %u", len,
             r->message_max);
  FUZZ_CHECK(utf8_valid(data, len), "a text message that is not UTF-8");
  FUZZ_CHECK(r->messages < r->messages_max &&
                 r->log_len + 4 + len <= r->log_cap,
             "over %u messages, or over %zu bytes of them", r->messages_max,
             r->log_cap);
  uint32_t n = (uint32_t)len;
  memcpy(r->log + r->log_len, &n, 4);
  memcpy(r->log + r->log_len + 4, data, len);
  size_t at = r->log_len + 4;
  r->log_len += 4 + len;
  r->messages++;
  if (r->echo && net_ws_send_text(r->ws, data, len) == RT_OK) {
    r->sent_at[r->sent] = at;
    r->sent_len[r->sent] = n;
    r->sent++;
  }
}

static const net_ws_callbacks_t callbacks = {.on_text = on_text};

/* ws_readable and ws_after_io of net_server: false once the WebSocket is
 * over (failed, or finished). */
static bool handle_readable(run_t *r) {
  for (uint32_t round = 0; round < ROUNDS_MAX; round++) {
    int64_t n = net_ws_on_readable(r->ws);
    if (n < 0)
      return false;
    if (!net_ws_wants_more(r->ws))
      break;
  }
  if (net_ws_flush(r->ws) < 0)
    return false;
  (void)net_ws_backlog(r->ws);
  return !net_ws_finished(r->ws);
}

static void run(const uint8_t *data, size_t len, uint8_t opts, size_t cut,
                bool park, run_t *r) {
  static const uint32_t limits[] = {0, 125, 16, 4096};
  r->message_max = limits[opts & OPT_LIMIT] != 0 ? limits[opts & OPT_LIMIT]
                                                 : NET_WS_MESSAGE_MAX_DEFAULT;
  r->echo = (opts & OPT_ECHO) != 0;
  mem_stream_t *m = &r->stream;
  rt_stream_init(&m->s, world(), &mem_ops);
  m->in = data;
  m->slow = (opts & OPT_SLOW) != 0;
  m->out_cap = OUTPUT_FOR(len, len / cut + 2);
  m->out = malloc(m->out_cap);
  r->messages_max = MESSAGES_FOR(len);
  r->log_cap = len + 4 * (size_t)r->messages_max;
  r->log = malloc(r->log_cap);
  r->sent_at = malloc(r->messages_max * sizeof(*r->sent_at));
  r->sent_len = malloc(r->messages_max * sizeof(*r->sent_len));
  if (m->out == NULL || r->log == NULL || r->sent_at == NULL ||
      r->sent_len == NULL)
    abort();
  size_t prefix = (opts & OPT_PREFIX) != 0 ? (len < cut ? len : cut) : 0;
  net_ws_config_t cfg = {.client = false,
                         .message_max = limits[opts & OPT_LIMIT]};
  r->ws = net_ws_create(&m->s, &cfg, &callbacks, r, data, prefix);
  if (r->ws == NULL)
    abort();
  m->in_off = m->in_end = prefix;
  bool open = true;
  for (uint32_t step = 0; open; step++) {
    if (step > 0 || prefix == 0) { /* the prefix was the first read */
      if (m->in_end == len)
        break;
      m->in_end = len - m->in_end < cut ? len : m->in_end + cut;
    }
    if (park && !net_ws_parked(r->ws) && net_ws_park(r->ws)) {
      FUZZ_CHECK(net_ws_parked(r->ws), "parked, yet not parked"); /* (3) */
      r->parks++;
    }
    if ((opts & OPT_PING) && step % 3 == 2)
      (void)net_ws_send_ping(r->ws, (const uint8_t *)"probe", 5);
    if ((opts & OPT_CLOSE) && step == 2)
      net_ws_close(r->ws, NET_WS_CLOSE_NORMAL, "bye");
    open = handle_readable(r);
  }
  if (open) { /* the client's EOF */
    m->eof = true;
    (void)handle_readable(r);
  }
  r->close_code = net_ws_close_code(r->ws);
  r->failed = net_ws_failed(r->ws);
  r->finished = net_ws_finished(r->ws);
  net_ws_destroy(r->ws);
  r->ws = NULL;
}

static void run_free(run_t *r) {
  free(r->stream.out);
  free(r->log);
  free(r->sent_at);
  free(r->sent_len);
  free(r);
}

/* ---- Rule (2): the server's frames, decoded here ------------------------- */

static bool close_code_sendable(uint16_t code) {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011) ||
         (code >= 3000 && code <= 4999);
}

static void check_output(const run_t *r) {
  const uint8_t *p = r->stream.out;
  size_t len = r->stream.out_len, at = 0;
  uint32_t texts = 0;
  bool closed = false;
  while (at < len) {
    size_t start = at;
    if (len - at < 2)
      return; /* a slow peer may hold part of a frame */
    uint8_t b0 = p[at], b1 = p[at + 1];
    unsigned opcode = b0 & 0x0fu;
    bool fin = (b0 & 0x80u) != 0;
    FUZZ_CHECK(!closed, "a frame after the close, at byte %zu", start);
    FUZZ_CHECK((b0 & 0x70u) == 0, "reserved bits 0x%02x", b0);
    FUZZ_CHECK((b1 & 0x80u) == 0, "a masked server frame");
    FUZZ_CHECK(opcode == 1 || opcode == 8 || opcode == 9 || opcode == 10,
               "opcode %u", opcode);
    uint64_t n = b1 & 0x7fu;
    at += 2;
    if (n == 126) {
      if (len - at < 2)
        return;
      n = (uint64_t)p[at] << 8 | p[at + 1];
      FUZZ_CHECK(n >= 126, "a length of %llu in 2 bytes",
                 (unsigned long long)n);
      at += 2;
    } else if (n == 127) {
      if (len - at < 8)
        return;
      n = 0;
      for (int i = 0; i < 8; i++)
        n = n << 8 | p[at + i];
      FUZZ_CHECK(n > 0xffff && n < (1ull << 63), "a length of %llu in 8 bytes",
                 (unsigned long long)n);
      at += 8;
    }
    if (len - at < n)
      return;
    const uint8_t *payload = p + at;
    at += (size_t)n;
    if (opcode >= 8)
      FUZZ_CHECK(fin && n <= 125, "a control frame of %llu bytes, fin %d",
                 (unsigned long long)n, fin);
    if (opcode == 8) {
      FUZZ_CHECK(n != 1, "a close payload of 1 byte");
      if (n >= 2) {
        uint16_t code = (uint16_t)(payload[0] << 8 | payload[1]);
        FUZZ_CHECK(close_code_sendable(code), "close code %u", code);
        FUZZ_CHECK(utf8_valid(payload + 2, (size_t)n - 2),
                   "a close reason that is not UTF-8");
      }
      closed = true;
    }
    if (opcode == 1) {
      FUZZ_CHECK(fin, "a fragmented text message");
      FUZZ_CHECK(texts < r->sent, "text message %u, the session sent %u",
                 texts + 1, r->sent);
      FUZZ_CHECK(n == r->sent_len[texts] &&
                     memcmp(payload, r->log + r->sent_at[texts], (size_t)n) ==
                         0,
                 "text message %u is not what the session sent", texts + 1);
      texts++;
    }
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2)
    return 0;
  uint8_t opts = data[0];
  size_t cut = 1 + (size_t)data[1] * 8;
  data += 2;
  size -= 2;
  if (size > INPUT_MAX)
    size = INPUT_MAX;
  run_t *parked = calloc(1, sizeof(*parked));
  run_t *plain = calloc(1, sizeof(*plain));
  if (plain == NULL || parked == NULL)
    abort();
  run(data, size, opts, cut, true, parked);
  check_output(parked);
  if (parked->parks == 0) {
    /* A park that frees nothing changes nothing (net_ws_park returns at
     * once): a run never parked would be this one again. */
    run_free(parked);
    free(plain);
    return 0;
  }
  run(data, size, opts, cut, false, plain);
  check_output(plain);
  /* Rule (3). */
  FUZZ_CHECK(plain->messages == parked->messages &&
                 plain->log_len == parked->log_len &&
                 memcmp(plain->log, parked->log, plain->log_len) == 0,
             "%u messages never parked, %u parked, or they differ",
             plain->messages, parked->messages);
  FUZZ_CHECK(plain->stream.out_len == parked->stream.out_len &&
                 memcmp(plain->stream.out, parked->stream.out,
                        plain->stream.out_len) == 0,
             "%zu bytes sent never parked, %zu parked, or they differ",
             plain->stream.out_len, parked->stream.out_len);
  FUZZ_CHECK(plain->close_code == parked->close_code &&
                 plain->failed == parked->failed &&
                 plain->finished == parked->finished,
             "ended with %u%s%s never parked, %u%s%s parked", plain->close_code,
             plain->failed ? " failed" : "", plain->finished ? " finished" : "",
             parked->close_code, parked->failed ? " failed" : "",
             parked->finished ? " finished" : "");
  run_free(plain);
  run_free(parked);
  return 0;
}
