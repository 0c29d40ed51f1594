/* sim_replay.c: a world whose every input comes from a trace.
 *
 * One reader, consumed strictly in order by two kinds of caller: the driver
 * loop (sim_replay_run) takes the records that happen between passes (time,
 * notifications, passes, operator actions), and the streams, the listener,
 * the backend and the tap take the ones that happen inside turns (reads,
 * writes, accepts, connects, backlogs, closes, externals) when an actor
 * makes the call. Each caller demands the record it needs next; anything
 * else is a divergence.
 *
 * Invariant: after the first divergence or trace error (r->stopped), no
 * record is read again; stream calls fail (reset) so that the turn in
 * progress ends quickly, and the driver returns.
 */
#include "sim_replay.h"

#include "net_record.h"
#include "net_trace_reader.h"
#include "rt_assert.h"
#include "rt_hash.h"
#include "rt_idmap.h"
#include "rt_port.h"
#include "rt_tap.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct seen {
  uint64_t index;
  rt_time_ns time;
  uint8_t type;
  uint64_t a, b; /* the first two fields (b signed for results) */
} seen_t;

struct sim_replay {
  rt_world_t *world;
  net_trace_reader_t *reader;
  sim_replay_config_t cfg;
  rt_idmap_t sources; /* id -> replay_stream_t or replay_listener_t */
  bool run_hash;
  bool stopped;
  bool closing;
  bool ran;                 /* sim_replay_run was called: it runs once */
  rt_time_ns time;          /* the recorded clock */
  sim_replay_report_t *rep; /* &setup until the run, then the run's */
  /* What the setup did before sim_replay_run (a connect takes a record,
   * and may diverge): the run's report starts from it. */
  sim_replay_report_t setup;
  seen_t ring[SIM_REPLAY_CONTEXT];
  uint64_t seen_count;
  rt_delivery_t last; /* the delivery being handled */
  bool have_last;
  uint8_t *ext; /* a copy of the last external's bytes */
  size_t ext_cap;
  net_trace_record_t held; /* read ahead by peek, not yet taken */
  int held_rc;             /* its net_trace_next result; 0: none held */
  bool holding;
};

typedef struct replay_stream {
  rt_stream_t stream; /* first */
  sim_replay_t *r;
} replay_stream_t;

typedef struct replay_listener {
  rt_listener_t listener; /* first */
  sim_replay_t *r;
} replay_listener_t;

/* Tags in the low bits of the map's values tell the two kinds apart. */
#define KIND_LISTENER ((uintptr_t)1)

const char *sim_replay_status_name(sim_replay_status_t s) {
  switch (s) {
  case SIM_REPLAY_DONE: return "done";
  case SIM_REPLAY_UNTIL: return "until";
  case SIM_REPLAY_DIVERGED: return "diverged";
  case SIM_REPLAY_TRACE_ERROR: return "trace_error";
  }
  return "?";
}

/* ---- Reports ------------------------------------------------------------- */

static void format_context(sim_replay_t *r) {
  char *out = r->rep->context;
  size_t cap = sizeof(r->rep->context), len = 0;
  out[0] = '\0';
  uint64_t n =
      r->seen_count < SIM_REPLAY_CONTEXT ? r->seen_count : SIM_REPLAY_CONTEXT;
  for (uint64_t i = r->seen_count - n; i < r->seen_count && len < cap; i++) {
    const seen_t *s = &r->ring[i % SIM_REPLAY_CONTEXT];
    int k = snprintf(out + len, cap - len,
                     "  record %" PRIu64 " t=%.6f %s %" PRIu64 " %" PRId64 "\n",
                     s->index, (double)s->time / 1e9,
                     net_trace_type_name(s->type), s->a, (int64_t)s->b);
    if (k < 0)
      break;
    len += (size_t)k;
  }
}

static void stop_with(sim_replay_t *r, sim_replay_status_t status,
                      uint64_t stream, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void stop_with(sim_replay_t *r, sim_replay_status_t status,
                      uint64_t stream, const char *fmt, ...) {
  if (r->stopped)
    return;
  r->stopped = true;
  sim_replay_report_t *rep = r->rep;
  if (rep == NULL)
    return;
  rep->status = status;
  rep->stream = stream;
  rep->record_index =
      r->seen_count > 0
          ? r->ring[(r->seen_count - 1) % SIM_REPLAY_CONTEXT].index
          : 0;
  rep->actor = rt_world_current(r->world, &rep->actor_name);
  if (r->have_last && rep->actor != 0) {
    rep->delivery = r->last.seq;
    rep->tag = r->last.tag;
    rep->from = r->last.from;
  }
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(rep->what, sizeof(rep->what), fmt, ap);
  va_end(ap);
  format_context(r);
}

/* ---- Reading records ----------------------------------------------------- */

static void remember(sim_replay_t *r, const net_trace_record_t *rec) {
  seen_t *s = &r->ring[r->seen_count++ % SIM_REPLAY_CONTEXT];
  s->index = rec->index;
  s->time = r->time;
  s->type = rec->type;
  net_trace_dec_t d;
  net_trace_dec_init(&d, rec->payload, rec->len);
  s->a = net_trace_get_u64(&d);
  /* The second field is a signed result in these. */
  if (rec->type == NET_TRACE_T_ACCEPT || rec->type == NET_TRACE_T_READ ||
      rec->type == NET_TRACE_T_EXTERNAL || rec->type == NET_TRACE_T_CONNECT)
    s->b = (uint64_t)net_trace_get_i64(&d);
  else
    s->b = net_trace_get_u64(&d);
  if (r->rep != NULL)
    r->rep->records++;
}

/* The next record: 1 and *rec, 0 at a clean end, -1 after stopping with a
 * trace error (damage, a cut, a gap). */
static int pull(sim_replay_t *r, net_trace_record_t *rec) {
  if (r->stopped)
    return -1;
  int rc;
  if (r->holding) {
    r->holding = false;
    rc = r->held_rc;
    *rec = r->held;
  } else {
    rc = net_trace_next(r->reader, rec);
  }
  if (rc == 0)
    return 0;
  if (rc < 0) {
    stop_with(r, SIM_REPLAY_TRACE_ERROR, 0, "%s",
              net_trace_reader_error(r->reader));
    if (r->rep != NULL) /* the record that could not be read */
      r->rep->record_index = r->seen_count > 0 ? r->rep->record_index + 1 : 0;
    return -1;
  }
  remember(r, rec);
  if (rec->type == NET_TRACE_T_LOST) {
    net_trace_dec_t d;
    net_trace_dec_init(&d, rec->payload, rec->len);
    uint64_t lost = net_trace_get_u64(&d);
    uint64_t bytes = net_trace_get_u64(&d);
    stop_with(r, SIM_REPLAY_TRACE_ERROR, 0,
              "the recording lost %" PRIu64 " records (%" PRIu64 " bytes) at "
              "record %" PRIu64 ": the recorder refused them (its buffers "
              "were full, the disk behind, or a record over the size limit), "
              "so the run cannot be replayed past t=%.6f",
              lost, bytes, rec->index, (double)r->time / 1e9);
    return -1;
  }
  return 1;
}

/* Is the next record `type` about stream `id`? Reads it ahead (its payload
 * stays valid: the reader is not called again until it is taken). */
static bool next_is(sim_replay_t *r, uint8_t type, uint64_t id) {
  if (r->stopped)
    return false;
  if (!r->holding) {
    r->held_rc = net_trace_next(r->reader, &r->held);
    r->holding = true;
  }
  if (r->held_rc <= 0 || r->held.type != type)
    return false;
  net_trace_dec_t d;
  net_trace_dec_init(&d, r->held.payload, r->held.len);
  return net_trace_get_u64(&d) == id;
}

static const char *what_of(uint8_t type) {
  switch (type) {
  case NET_TRACE_T_READ: return "read";
  case NET_TRACE_T_WRITE: return "wrote";
  case NET_TRACE_T_ACCEPT: return "accepted";
  case NET_TRACE_T_CONNECT: return "connected";
  case NET_TRACE_T_BACKLOG: return "asked the backlog";
  case NET_TRACE_T_SHUTDOWN: return "shut down";
  case NET_TRACE_T_CLOSE: return "closed";
  case NET_TRACE_T_EXTERNAL: return "asked for an external result";
  default: return net_trace_type_name(type);
  }
}

/* Inside a turn: the next record must be `type` about `id` (a stream, a
 * listener, or an external's kind). true with d positioned after the id. */
static bool want(sim_replay_t *r, uint8_t type, uint64_t id, net_trace_dec_t *d,
                 net_trace_record_t *rec) {
  if (r->stopped)
    return false;
  int rc = pull(r, rec);
  if (rc == 0) {
    stop_with(r, SIM_REPLAY_DIVERGED, id,
              "the replay %s (%" PRIu64 ") after the recording ended",
              what_of(type), id);
    return false;
  }
  if (rc < 0)
    return false;
  net_trace_dec_init(d, rec->payload, rec->len);
  uint64_t got = net_trace_get_u64(d);
  if (rec->type != type || got != id) {
    stop_with(r, SIM_REPLAY_DIVERGED, id,
              "the replay %s (stream or kind %" PRIu64 "); the recording "
              "has %s (%" PRIu64 ") here",
              what_of(type), id, net_trace_type_name(rec->type), got);
    return false;
  }
  return true;
}

/* A payload that does not decode passed its CRC: written by another
 * program, or a bug. Either way, not replayable. */
static bool fields_ok(sim_replay_t *r, const net_trace_dec_t *d,
                      const net_trace_record_t *rec) {
  if (net_trace_dec_finish(d) == 0)
    return true;
  stop_with(r, SIM_REPLAY_TRACE_ERROR, 0,
            "record %" PRIu64 " (%s) has fields this replay does not "
            "understand",
            rec->index, net_trace_type_name(rec->type));
  return false;
}

/* ---- Streams ------------------------------------------------------------- */

static int64_t rs_read(rt_stream_t *s, void *buf, size_t cap) {
  sim_replay_t *r = ((replay_stream_t *)s)->r;
  net_trace_dec_t d;
  net_trace_record_t rec;
  if (r->closing || r->stopped)
    return RT_ERESET;
  if (!next_is(r, NET_TRACE_T_READ, s->id))
    return 0; /* a read of 0 is not recorded (net_record.h) */
  if (!want(r, NET_TRACE_T_READ, s->id, &d, &rec))
    return RT_ERESET;
  int64_t rc = net_trace_get_i64(&d);
  size_t n = 0;
  const uint8_t *bytes = net_trace_get_bytes(&d, &n);
  if (!fields_ok(r, &d, &rec))
    return RT_ERESET;
  if (rc > 0 && ((size_t)rc != n || n > cap)) {
    stop_with(r, SIM_REPLAY_DIVERGED, s->id,
              "stream %" PRIu64 ": the replay read with room for %zu bytes; "
              "the recording read %zu",
              s->id, cap, n);
    return RT_ERESET;
  }
  if (rc > 0) {
    memcpy(buf, bytes, n);
    if (r->rep != NULL) {
      r->rep->reads++;
      r->rep->bytes_in += n;
    }
  }
  return rc;
}

/* Up to 48 bytes of what the replay wrote, printable. */
static void preview(const void *buf, size_t len, char *out, size_t cap) {
  const unsigned char *p = buf;
  size_t o = 0;
  for (size_t i = 0; i < len && i < 48 && o + 5 < cap; i++)
    o += (size_t)snprintf(
        out + o, cap - o,
        p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\' ? "%c" : "\\x%02x", p[i]);
  out[o] = '\0';
}

static int64_t rs_write(rt_stream_t *s, const void *buf, size_t len) {
  sim_replay_t *r = ((replay_stream_t *)s)->r;
  net_trace_dec_t d;
  net_trace_record_t rec;
  if (r->closing || !want(r, NET_TRACE_T_WRITE, s->id, &d, &rec))
    return RT_ERESET;
  uint64_t offered = net_trace_get_u64(&d);
  int64_t rc = net_trace_get_i64(&d);
  uint64_t hash = net_trace_get_fixed64(&d);
  if (!fields_ok(r, &d, &rec))
    return RT_ERESET;
  if (rc > (int64_t)offered) { /* not a recorder's: a write takes <= len */
    stop_with(r, SIM_REPLAY_TRACE_ERROR, 0,
              "record %" PRIu64 ": a write took %" PRId64 " of %" PRIu64
              " bytes",
              rec.index, rc, offered);
    return RT_ERESET;
  }
  if (offered != len || hash != rt_hash_bytes(buf, len, 0)) {
    char text[256];
    preview(buf, len, text, sizeof(text));
    stop_with(r, SIM_REPLAY_DIVERGED, s->id,
              "stream %" PRIu64 ": the replay wrote %zu bytes \"%s\"; the "
              "recording wrote %" PRIu64 " bytes%s",
              s->id, len, text, offered,
              offered == len ? " with other contents" : "");
    return RT_ERESET;
  }
  if (r->rep != NULL) {
    r->rep->writes++;
    if (rc > 0)
      r->rep->bytes_out += (uint64_t)rc;
    if (rc >= 0 && (size_t)rc < len)
      r->rep->writes_short++;
  }
  return rc;
}

static size_t rs_backlog(const rt_stream_t *s) {
  sim_replay_t *r = ((const replay_stream_t *)s)->r;
  net_trace_dec_t d;
  net_trace_record_t rec;
  if (r->closing || !next_is(r, NET_TRACE_T_BACKLOG, s->id) ||
      !want(r, NET_TRACE_T_BACKLOG, s->id, &d, &rec))
    return 0; /* a backlog of 0 is not recorded (net_record.h) */
  uint64_t v = net_trace_get_u64(&d);
  return fields_ok(r, &d, &rec) ? (size_t)v : 0;
}

static void rs_shutdown(rt_stream_t *s) { (void)s; /* checked by the tap */ }

static void rs_destroy(rt_stream_t *s) {
  replay_stream_t *rs = (replay_stream_t *)s;
  rt_idmap_del(&rs->r->sources, s->id);
  free(rs);
}

static const rt_stream_ops_t replay_stream_ops = {
    .read = rs_read,
    .write = rs_write,
    .backlog = rs_backlog,
    .shutdown = rs_shutdown,
    .destroy = rs_destroy,
};

/* A stream the live program was given (by an accept or a connect), made
 * again with the id it had, owned by nobody yet: its reads, writes,
 * backlogs and close are then fed and checked from the trace alike,
 * however it was made. 0 and *out; or RT_ENOMEM, or RT_EIO when it gets
 * another id (the replay has diverged), after stopping. */
static int stream_remake(sim_replay_t *r, uint64_t id, const char *made,
                         rt_stream_t **out) {
  replay_stream_t *rs = calloc(1, sizeof(*rs));
  if (rs == NULL) {
    stop_with(r, SIM_REPLAY_TRACE_ERROR, 0, "out of memory");
    return RT_ENOMEM;
  }
  rs->r = r;
  rt_stream_init(&rs->stream, r->world, &replay_stream_ops);
  if (rs->stream.id != id || rt_idmap_put(&r->sources, id, rs) < 0) {
    stop_with(r, SIM_REPLAY_DIVERGED, id,
              "%s got stream id %" PRIu64 "; the recording's was %" PRIu64
              " (was the server set up with other flags?)",
              made, rs->stream.id, id);
    free(rs);
    return RT_EIO;
  }
  *out = &rs->stream;
  return RT_OK;
}

/* ---- The listener -------------------------------------------------------- */

static int rl_accept(rt_listener_t *l, rt_stream_t **out) {
  sim_replay_t *r = ((replay_listener_t *)l)->r;
  net_trace_dec_t d;
  net_trace_record_t rec;
  if (r->closing || !want(r, NET_TRACE_T_ACCEPT, l->id, &d, &rec))
    return 0;
  int64_t rc = net_trace_get_i64(&d);
  uint64_t id = net_trace_get_u64(&d);
  if (!fields_ok(r, &d, &rec))
    return RT_EIO;
  if (rc > 1 || rc < INT32_MIN) {
    /* A live accept gives 1, 0 or an RT_E* code; anything else was not
     * written by a recorder, and an actor must never see it. */
    stop_with(r, SIM_REPLAY_TRACE_ERROR, 0,
              "record %" PRIu64 ": an accept result of %" PRId64, rec.index,
              rc);
    return RT_EIO;
  }
  if (rc != 1)
    return (int)rc;
  int err = stream_remake(r, id, "an accepted connection", out);
  if (err < 0)
    return err;
  if (r->rep != NULL)
    r->rep->accepts++;
  return 1;
}

static void rl_destroy(rt_listener_t *l) {
  replay_listener_t *rl = (replay_listener_t *)l;
  rt_idmap_del(&rl->r->sources, l->id);
  free(rl);
}

static const rt_listener_ops_t replay_listener_ops = {
    .accept = rl_accept,
    .destroy = rl_destroy,
};

int sim_replay_listen(sim_replay_t *r, rt_actor_id_t owner,
                      rt_listener_t **out) {
  replay_listener_t *rl = calloc(1, sizeof(*rl));
  if (rl == NULL)
    return RT_ENOMEM;
  rl->r = r;
  rt_listener_init(&rl->listener, r->world, &replay_listener_ops, owner);
  void *tagged = (void *)((uintptr_t)rl | KIND_LISTENER);
  if (rt_idmap_put(&r->sources, rl->listener.id, tagged) < 0) {
    free(rl);
    return RT_ENOMEM;
  }
  *out = &rl->listener;
  return RT_OK;
}

/* ---- Connects ------------------------------------------------------------ */

/* The next record must be a CONNECT to `endpoint` (net_record_endpoint):
 * true with its stream id and result, which are checked to be ones a
 * recorder writes; false after stopping. */
static bool take_connect(sim_replay_t *r, const char *endpoint, uint64_t *id,
                         int64_t *rc) {
  char ours[64], theirs[64];
  preview(endpoint, strlen(endpoint), ours, sizeof(ours));
  net_trace_record_t rec;
  int got = pull(r, &rec);
  if (got <= 0) {
    if (got == 0)
      stop_with(r, SIM_REPLAY_DIVERGED, 0,
                "the replay connected to %s after the recording ended", ours);
    return false;
  }
  net_trace_dec_t d;
  net_trace_dec_init(&d, rec.payload, rec.len);
  *id = net_trace_get_u64(&d);
  if (rec.type != NET_TRACE_T_CONNECT) {
    stop_with(r, SIM_REPLAY_DIVERGED, 0,
              "the replay connected to %s; the recording has %s (%" PRIu64
              ") here",
              ours, net_trace_type_name(rec.type), *id);
    return false;
  }
  *rc = net_trace_get_i64(&d);
  size_t n = 0;
  const uint8_t *bytes = net_trace_get_bytes(&d, &n);
  if (!fields_ok(r, &d, &rec))
    return false;
  if (n != strlen(endpoint) || memcmp(bytes, endpoint, n) != 0) {
    preview(bytes, n, theirs, sizeof(theirs));
    stop_with(r, SIM_REPLAY_DIVERGED, *id,
              "the replay connected to %s; the recording connected to %s here",
              ours, theirs);
    return false;
  }
  /* A live connect gives 0 and a stream, or an RT_E* code and none;
   * anything else was not written by a recorder. */
  if (*rc > 0 || *rc < INT32_MIN || (*rc == 0) != (*id != 0)) {
    stop_with(r, SIM_REPLAY_TRACE_ERROR, 0,
              "record %" PRIu64 ": a connect result of %" PRId64
              " with stream %" PRIu64,
              rec.index, *rc, *id);
    return false;
  }
  return true;
}

/* rt_backend_t.connect: what the live connect to host:port gave, taken
 * from the trace (the next record must be it): its error, or the stream
 * it made, with its id, for `owner`, whose bytes and signals (CONNECTED,
 * or CLOSED and the error a read gave) then come from the trace. RT_EIO
 * when the replay connects elsewhere or where the recording did not. */
static int replay_connect(void *ctx, const char *host, uint16_t port,
                          rt_actor_id_t owner, rt_stream_t **out) {
  sim_replay_t *r = ctx;
  char endpoint[NET_RECORD_ENDPOINT_MAX];
  net_record_endpoint(endpoint, sizeof(endpoint), host, port);
  uint64_t id = 0;
  int64_t rc = 0;
  if (r->closing || !take_connect(r, endpoint, &id, &rc))
    return RT_EIO;
  if (rc < 0)
    return (int)rc;
  int err = stream_remake(r, id, "an outbound connection", out);
  if (err < 0)
    return err;
  rt_stream_set_owner(*out, owner);
  if (r->rep != NULL)
    r->rep->connects++;
  return RT_OK;
}

/* ---- The tap: closes, shutdowns and externals, checked ------------------- */

static void tap_shutdown(void *ctx, uint64_t stream) {
  sim_replay_t *r = ctx;
  net_trace_dec_t d;
  net_trace_record_t rec;
  if (!r->closing && want(r, NET_TRACE_T_SHUTDOWN, stream, &d, &rec))
    (void)fields_ok(r, &d, &rec);
}

static void tap_close(void *ctx, const rt_stream_t *s) {
  sim_replay_t *r = ctx;
  net_trace_dec_t d;
  net_trace_record_t rec;
  if (r->closing || !want(r, NET_TRACE_T_CLOSE, s->id, &d, &rec))
    return;
  uint64_t in = net_trace_get_u64(&d);
  uint64_t out = net_trace_get_u64(&d);
  uint64_t hash = net_trace_get_fixed64(&d);
  if (!fields_ok(r, &d, &rec))
    return;
  if (in != s->bytes_in || out != s->bytes_out || hash != s->out_hash) {
    stop_with(r, SIM_REPLAY_DIVERGED, s->id,
              "stream %" PRIu64 " closed after %" PRIu64
              " bytes in and %" PRIu64 " out (output hash %016" PRIx64
              "); the recording's "
              "had %" PRIu64 " in and %" PRIu64 " out (%016" PRIx64 ")",
              s->id, s->bytes_in, s->bytes_out, s->out_hash, in, out, hash);
    return;
  }
  if (r->rep != NULL)
    r->rep->checkpoints++;
}

static int tap_take(void *ctx, uint32_t kind, int64_t *rc, const uint8_t **data,
                    size_t *len) {
  sim_replay_t *r = ctx;
  net_trace_dec_t d;
  net_trace_record_t rec;
  if (r->closing || !want(r, NET_TRACE_T_EXTERNAL, kind, &d, &rec))
    return RT_EIO;
  *rc = net_trace_get_i64(&d);
  size_t n = 0;
  const uint8_t *bytes = net_trace_get_bytes(&d, &n);
  if (!fields_ok(r, &d, &rec))
    return RT_EIO;
  if (n + 1 > r->ext_cap) {
    uint8_t *p = realloc(r->ext, n + 1);
    if (p == NULL) {
      stop_with(r, SIM_REPLAY_TRACE_ERROR, 0, "out of memory");
      return RT_ENOMEM;
    }
    r->ext = p;
    r->ext_cap = n + 1;
  }
  memcpy(r->ext, bytes, n);
  r->ext[n] = '\0';
  *data = r->ext;
  *len = n;
  if (r->rep != NULL)
    r->rep->externals++;
  return 1;
}

static const rt_tap_t replay_tap = {
    .shutdown = tap_shutdown,
    .close = tap_close,
    .take = tap_take,
};

static void on_delivery(void *ctx, const rt_delivery_t *dl) {
  sim_replay_t *r = ctx;
  r->last = *dl;
  r->have_last = true;
  if (r->cfg.trace != NULL)
    r->cfg.trace(r->cfg.trace_ctx, dl);
}

static void on_log(void *ctx, const char *line, size_t len) {
  sim_replay_t *r = ctx;
  if (r->cfg.log_write != NULL)
    r->cfg.log_write(r->cfg.log_ctx, line, len);
  else
    fwrite(line, 1, len, stderr);
}

/* ---- Open, run, close ---------------------------------------------------- */

int sim_replay_open(const char *path, const sim_replay_config_t *cfg,
                    sim_replay_t **out, char *err, size_t err_cap) {
  sim_replay_t *r = calloc(1, sizeof(*r));
  if (r == NULL)
    return RT_ENOMEM;
  if (cfg != NULL)
    r->cfg = *cfg;
  int rc = net_trace_reader_open(path, &r->reader, err, err_cap);
  if (rc < 0) {
    free(r);
    return rc;
  }
  const net_trace_header_t *h = net_trace_reader_header(r->reader);
  if ((h->flags & NET_RECORD_F_LIVE) == 0) {
    if (err != NULL && err_cap > 0)
      snprintf(err, err_cap, "%s holds no live server's inputs (flags %#x): %s",
               path, h->flags,
               (h->flags & NET_RECORD_F_SIM) != 0
                   ? "a simulated run is replayed from its seed"
                   : "not a recording of this server");
    net_trace_reader_close(r->reader);
    free(r);
    return RT_EINVAL;
  }
  /* A later file begins mid-run: its inputs need the state the earlier
   * files built, so replaying it alone could only diverge. */
  uint32_t first = net_trace_reader_first_file(r->reader);
  if (first != 1) {
    if (err != NULL && err_cap > 0)
      snprintf(err, err_cap,
               "%s is file %" PRIu32 " of a recording, which begins at its "
               "first file: replay the directory, or trace-000001.oct in it",
               path, first);
    net_trace_reader_close(r->reader);
    free(r);
    return RT_EINVAL;
  }
  r->run_hash = (h->flags & NET_RECORD_F_RUN_HASH) != 0;
  rc = rt_idmap_init(&r->sources);
  if (rc < 0) {
    net_trace_reader_close(r->reader);
    free(r);
    return rc;
  }
  rt_world_config_t wc = {
      .seed = h->seed,
      .log_level = r->cfg.log_level,
      .hash_disabled = !r->run_hash,
      .epoch_unix_ns = h->epoch_unix_ns,
      .trace = on_delivery,
      .trace_ctx = r,
  };
  rt_backend_t backend = {
      .wake = NULL, .log_write = on_log, .connect = replay_connect};
  r->world = rt_world_create(&wc, &backend, r);
  if (r->world == NULL) {
    rt_idmap_deinit(&r->sources);
    net_trace_reader_close(r->reader);
    free(r);
    return RT_ENOMEM;
  }
  rt_world_set_tap(r->world, &replay_tap, r);
  r->setup.status = SIM_REPLAY_DONE;
  r->rep = &r->setup;
  *out = r;
  return RT_OK;
}

rt_world_t *sim_replay_world(sim_replay_t *r) { return r->world; }

const net_trace_header_t *sim_replay_header(const sim_replay_t *r) {
  return net_trace_reader_header(r->reader);
}

static void notify(sim_replay_t *r, uint64_t source, uint32_t events) {
  void *v = source != 0 ? rt_idmap_get(&r->sources, source) : NULL;
  rt_port_t *port = v == NULL ? rt_world_port(r->world, source) : NULL;
  if (port != NULL) { /* a database client's descriptor (rt_port.h) */
    rt_port_notify(port, events);
    return;
  }
  if (v == NULL) {
    stop_with(r, SIM_REPLAY_DIVERGED, source,
              "the recording signals stream %" PRIu64
              ", which the replay does not have (closed earlier, or the "
              "server was set up differently)",
              source);
    return;
  }
  if ((uintptr_t)v & KIND_LISTENER)
    rt_listener_notify(
        &((replay_listener_t *)((uintptr_t)v & ~KIND_LISTENER))->listener);
  else
    rt_stream_notify(&((replay_stream_t *)v)->stream, events);
}

static void pass(sim_replay_t *r, rt_drive_t kind, uint32_t turns_max) {
  uint32_t result;
  switch (kind) {
  case RT_DRIVE_PUMP: result = rt_world_pump(r->world, turns_max); break;
  case RT_DRIVE_FIRE: result = rt_world_fire_timers(r->world); break;
  case RT_DRIVE_RUN: result = rt_world_run_ready(r->world, turns_max); break;
  default:
    stop_with(r, SIM_REPLAY_TRACE_ERROR, 0, "a pass of unknown kind %u",
              (unsigned)kind);
    return;
  }
  r->rep->passes++;
  net_trace_record_t rec;
  int rc = pull(r, &rec);
  if (rc <= 0) {
    if (rc == 0)
      stop_with(r, SIM_REPLAY_TRACE_ERROR, 0,
                "the recording ends inside a pass");
    return;
  }
  net_trace_dec_t d;
  net_trace_dec_init(&d, rec.payload, rec.len);
  uint64_t k = net_trace_get_u64(&d);
  uint64_t want_result = net_trace_get_u64(&d);
  uint64_t deliveries = net_trace_get_u64(&d);
  uint64_t fired = net_trace_get_u64(&d);
  uint64_t run_hash = net_trace_get_fixed64(&d);
  uint64_t out_hash = net_trace_get_fixed64(&d);
  if (rec.type != NET_TRACE_T_CHECKPOINT) {
    stop_with(r, SIM_REPLAY_DIVERGED, 0,
              "the pass ended after %u turns; the recording's did more: "
              "it has %s here",
              result, net_trace_type_name(rec.type));
    return;
  }
  if (!fields_ok(r, &d, &rec))
    return;
  uint64_t got_deliveries = rt_world_deliveries(r->world);
  if (k != (uint64_t)kind || want_result != result ||
      deliveries != got_deliveries) {
    stop_with(r, SIM_REPLAY_DIVERGED, 0,
              "the pass ran %u turns and %" PRIu64 " deliveries in all; the "
              "recording's ran %" PRIu64 " and %" PRIu64,
              result, got_deliveries, want_result, deliveries);
    return;
  }
  if (fired != rt_world_timers_fired(r->world)) {
    stop_with(r, SIM_REPLAY_DIVERGED, 0,
              "after the pass %" PRIu64 " timers have fired in all; the "
              "recording's had %" PRIu64,
              rt_world_timers_fired(r->world), fired);
    return;
  }
  if (out_hash != rt_world_output_hash(r->world)) {
    stop_with(r, SIM_REPLAY_DIVERGED, 0,
              "after the pass the output hash is %016" PRIx64
              "; the recording's is %016" PRIx64,
              rt_world_output_hash(r->world), out_hash);
    return;
  }
  if (r->run_hash && run_hash != rt_world_hash(r->world)) {
    stop_with(r, SIM_REPLAY_DIVERGED, 0,
              "after the pass the run hash is %016" PRIx64
              "; the recording's is %016" PRIx64
              " (same outputs, different messages inside)",
              rt_world_hash(r->world), run_hash);
    return;
  }
  r->rep->checkpoints++;
}

/* A TIME record: move the recorded clock, or stop once it passes until. */
static void step_time(sim_replay_t *r, const net_trace_record_t *rec,
                      net_trace_dec_t *d, rt_time_ns until) {
  uint64_t delta = net_trace_get_u64(d);
  if (!fields_ok(r, d, rec))
    return;
  if (delta > (uint64_t)(RT_TIME_NEVER - 1 - r->time)) {
    stop_with(r, SIM_REPLAY_TRACE_ERROR, 0,
              "record %" PRIu64 " moves the clock past any time", rec->index);
    return;
  }
  rt_time_ns t = r->time + (rt_time_ns)delta;
  if (t > until) {
    r->stopped = true;
    r->rep->status = SIM_REPLAY_UNTIL;
    return;
  }
  r->time = t;
  rt_world_set_time(r->world, t);
}

/* A record that happens between passes, for the driver loop to act on:
 * time, a notification, a pass or an operator action. */
static void between_passes(sim_replay_t *r, const net_trace_record_t *rec,
                           rt_time_ns until) {
  net_trace_dec_t d;
  net_trace_dec_init(&d, rec->payload, rec->len);
  switch (rec->type) {
  case NET_TRACE_T_TIME: step_time(r, rec, &d, until); break;
  case NET_TRACE_T_STREAM_EVENT: {
    uint64_t source = net_trace_get_u64(&d);
    uint64_t events = net_trace_get_u64(&d);
    if (fields_ok(r, &d, rec))
      notify(r, source, (uint32_t)events);
    break;
  }
  case NET_TRACE_T_PASS: {
    uint64_t kind = net_trace_get_u64(&d);
    uint64_t turns_max = net_trace_get_u64(&d);
    if (fields_ok(r, &d, rec))
      pass(r, (rt_drive_t)kind,
           (uint32_t)(turns_max > UINT32_MAX ? UINT32_MAX : turns_max));
    break;
  }
  case NET_TRACE_T_CONTROL: {
    uint64_t code = net_trace_get_u64(&d);
    if (!fields_ok(r, &d, rec))
      break;
    if (code == NET_RECORD_CONTROL_TEARDOWN)
      rt_world_stop_all(r->world, RT_REASON_SHUTDOWN);
    else if (r->cfg.control != NULL)
      r->cfg.control(r->cfg.control_ctx, (uint32_t)code);
    break;
  }
  default:
    stop_with(r, SIM_REPLAY_DIVERGED, 0,
              "the recording has %s here, between passes; the replay did "
              "not do it",
              net_trace_type_name(rec->type));
    break;
  }
}

sim_replay_status_t sim_replay_run(sim_replay_t *r, rt_time_ns until,
                                   sim_replay_report_t *rep) {
  memset(rep, 0, sizeof(*rep));
  if (r->ran) {
    /* One run per replay: the records it read are gone. */
    rep->status = SIM_REPLAY_TRACE_ERROR;
    snprintf(rep->what, sizeof(rep->what),
             "this replay has already run; open the trace again");
    return rep->status;
  }
  r->ran = true;
  *rep = r->setup; /* DONE, or how the setup diverged */
  r->rep = rep;
  while (!r->stopped) {
    net_trace_record_t rec;
    int rc = pull(r, &rec);
    if (rc == 0)
      break; /* END: every check matched */
    if (rc < 0)
      break;
    between_passes(r, &rec, until);
  }
  rep->time = rt_now(r->world);
  rep->deliveries = rt_world_deliveries(r->world);
  rep->run_hash = rt_world_hash(r->world);
  rep->output_hash = rt_world_output_hash(r->world);
  r->rep = NULL;
  return rep->status;
}

void sim_replay_close(sim_replay_t *r) {
  if (r == NULL)
    return;
  r->closing = true;
  rt_world_set_tap(r->world, NULL, NULL);
  rt_world_destroy(r->world);
  /* Actors close their streams when they stop; free what one did not. */
  uint32_t n = 0;
  uint64_t *ids = rt_idmap_sorted_keys(&r->sources, &n);
  for (uint32_t i = 0; ids != NULL && i < n; i++)
    free((void *)((uintptr_t)rt_idmap_get(&r->sources, ids[i]) &
                  ~KIND_LISTENER));
  free(ids);
  rt_idmap_deinit(&r->sources);
  net_trace_reader_close(r->reader);
  free(r->ext);
  free(r);
}
