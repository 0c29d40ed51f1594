/* net_record.c: a tap that writes the world's seam into a trace.
 *
 * Each hook encodes one record into a scratch buffer and appends it; the
 * writer copies it into memory and returns. Invariant: records are appended
 * in the order the hooks are called, which is the order the world saw its
 * inputs, so the replay can demand them in that order.
 */
#include "net_record.h"

#include "rt_assert.h"
#include "rt_hash.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Small records: fields only. A READ, EXTERNAL or CONNECT carries bytes and
 * uses the growable scratch buffer. */
#define SMALL_MAX 96u

struct net_record {
  rt_world_t *world;
  net_trace_writer_t *writer;
  uint8_t *scratch;
  size_t scratch_cap;
  rt_time_ns last_time;  /* of the last TIME record */
  rt_time_ns last_flush; /* world time of the last hand-off */
  bool warned;           /* the recording's first trouble was logged */
};

static void append(net_record_t *r, uint8_t type, const net_trace_enc_t *e) {
  if (net_trace_enc_finish(e) < 0) {
    /* Cannot happen for the fixed layouts; say so rather than drop. */
    rt_log(r->world, RT_LOG_ERROR, "record.encode", "type=%s",
           net_trace_type_name(type));
    return;
  }
  /* A refused record is counted by the writer and marked LOST in the
   * trace; the replay stops there and says so. */
  (void)net_trace_append(r->writer, type, e->buf, e->len);
}

/* Room for a record with n payload bytes: the scratch buffer, grown. NULL
 * when the bytes could never fit a record (the writer marks it lost). */
static uint8_t *scratch(net_record_t *r, size_t n) {
  size_t need = n + 64;
  if (need > NET_TRACE_PAYLOAD_MAX + 64u)
    return NULL;
  if (need > r->scratch_cap) {
    size_t cap = r->scratch_cap > 0 ? r->scratch_cap : 4096;
    while (cap < need)
      cap *= 2;
    uint8_t *p = realloc(r->scratch, cap);
    if (p == NULL)
      return NULL;
    r->scratch = p;
    r->scratch_cap = cap;
  }
  return r->scratch;
}

/* ---- Hooks --------------------------------------------------------------- */

/* An operator must hear at once, not at shutdown, that the trace stopped
 * (a full disk, a failed rotation) or has gaps (the disk fell behind):
 * one warning, the first time either is seen. */
static void warn_once(net_record_t *r, int failed) {
  net_trace_writer_stats_t st;
  net_trace_writer_stats(r->writer, &st);
  if (failed == 0 && st.records_lost == 0)
    return;
  r->warned = true;
  char why[256];
  net_trace_writer_error(r->writer, why, sizeof(why));
  rt_log(r->world, RT_LOG_WARN, "record.trouble",
         "records_lost=%" PRIu64 " error=\"%s\" (the replay stops at the "
         "first gap)",
         st.records_lost, why[0] != '\0' ? why : "none: the disk is behind");
}

static void on_time(void *ctx, rt_time_ns now) {
  net_record_t *r = ctx;
  uint8_t b[SMALL_MAX];
  net_trace_enc_t e;
  net_trace_enc_init(&e, b, sizeof(b));
  net_trace_put_u64(&e, (uint64_t)(now - r->last_time));
  r->last_time = now;
  append(r, NET_TRACE_T_TIME, &e);
}

static void on_drive(void *ctx, rt_drive_t kind, uint32_t turns_max) {
  net_record_t *r = ctx;
  uint8_t b[SMALL_MAX];
  net_trace_enc_t e;
  net_trace_enc_init(&e, b, sizeof(b));
  net_trace_put_u64(&e, (uint64_t)kind);
  net_trace_put_u64(&e, turns_max);
  append(r, NET_TRACE_T_PASS, &e);
}

static void on_drive_end(void *ctx, rt_drive_t kind, uint32_t result) {
  net_record_t *r = ctx;
  uint8_t b[SMALL_MAX];
  net_trace_enc_t e;
  net_trace_enc_init(&e, b, sizeof(b));
  net_trace_put_u64(&e, (uint64_t)kind);
  net_trace_put_u64(&e, result);
  net_trace_put_u64(&e, rt_world_deliveries(r->world));
  net_trace_put_u64(&e, rt_world_timers_fired(r->world));
  net_trace_put_fixed64(&e, rt_world_hash(r->world));
  net_trace_put_fixed64(&e, rt_world_output_hash(r->world));
  append(r, NET_TRACE_T_CHECKPOINT, &e);
  /* Hand the buffer to the disk now and then, not every pass: waking the
   * writer thread costs a syscall. */
  rt_time_ns now = rt_now(r->world);
  if (now - r->last_flush >= NET_RECORD_FLUSH_NS) {
    r->last_flush = now;
    int failed = net_trace_flush(r->writer);
    if (!r->warned)
      warn_once(r, failed);
  }
}

static void on_notify(void *ctx, uint64_t source, uint32_t events) {
  net_record_t *r = ctx;
  uint8_t b[SMALL_MAX];
  net_trace_enc_t e;
  net_trace_enc_init(&e, b, sizeof(b));
  net_trace_put_u64(&e, source);
  net_trace_put_u64(&e, events);
  append(r, NET_TRACE_T_STREAM_EVENT, &e);
}

static void on_accept(void *ctx, uint64_t listener, int rc, uint64_t stream) {
  net_record_t *r = ctx;
  uint8_t b[SMALL_MAX];
  net_trace_enc_t e;
  net_trace_enc_init(&e, b, sizeof(b));
  net_trace_put_u64(&e, listener);
  net_trace_put_i64(&e, rc);
  net_trace_put_u64(&e, stream);
  append(r, NET_TRACE_T_ACCEPT, &e);
}

/* A record of (u64 id, i64 rc, bytes): READ, EXTERNAL and CONNECT. */
static void append_with_bytes(net_record_t *r, uint8_t type, uint64_t id,
                              int64_t rc, const void *data, size_t len) {
  uint8_t *b = scratch(r, len);
  if (b == NULL) {
    /* Too big for any record, or no memory for it: the writer marks the
     * gap LOST, so a replay stops there rather than go wrong. */
    net_trace_lose(r->writer, len);
    return;
  }
  net_trace_enc_t e;
  net_trace_enc_init(&e, b, r->scratch_cap);
  net_trace_put_u64(&e, id);
  net_trace_put_i64(&e, rc);
  net_trace_put_bytes(&e, data, len);
  append(r, type, &e);
}

static void on_read(void *ctx, uint64_t stream, int64_t rc, const void *buf) {
  if (rc == 0)
    return; /* implied: see "Left out" in net_record.h */
  append_with_bytes(ctx, NET_TRACE_T_READ, stream, rc, buf,
                    rc > 0 ? (size_t)rc : 0);
}

static void on_write(void *ctx, uint64_t stream, const void *buf, size_t len,
                     int64_t rc) {
  net_record_t *r = ctx;
  uint8_t b[SMALL_MAX];
  net_trace_enc_t e;
  net_trace_enc_init(&e, b, sizeof(b));
  net_trace_put_u64(&e, stream);
  net_trace_put_u64(&e, len);
  net_trace_put_i64(&e, rc);
  net_trace_put_fixed64(&e, rt_hash_bytes(buf, len, 0));
  append(r, NET_TRACE_T_WRITE, &e);
}

static void on_backlog(void *ctx, uint64_t stream, size_t value) {
  net_record_t *r = ctx;
  if (value == 0)
    return; /* implied: see "Left out" in net_record.h */
  uint8_t b[SMALL_MAX];
  net_trace_enc_t e;
  net_trace_enc_init(&e, b, sizeof(b));
  net_trace_put_u64(&e, stream);
  net_trace_put_u64(&e, value);
  append(r, NET_TRACE_T_BACKLOG, &e);
}

static void on_shutdown(void *ctx, uint64_t stream) {
  net_record_t *r = ctx;
  uint8_t b[SMALL_MAX];
  net_trace_enc_t e;
  net_trace_enc_init(&e, b, sizeof(b));
  net_trace_put_u64(&e, stream);
  append(r, NET_TRACE_T_SHUTDOWN, &e);
}

static void on_close(void *ctx, const rt_stream_t *s) {
  net_record_t *r = ctx;
  uint8_t b[SMALL_MAX];
  net_trace_enc_t e;
  net_trace_enc_init(&e, b, sizeof(b));
  net_trace_put_u64(&e, s->id);
  net_trace_put_u64(&e, s->bytes_in);
  net_trace_put_u64(&e, s->bytes_out);
  net_trace_put_fixed64(&e, s->out_hash);
  append(r, NET_TRACE_T_CLOSE, &e);
}

size_t net_record_endpoint(char *out, size_t cap, const char *host,
                           uint16_t port) {
  RT_ASSERT(cap >= NET_RECORD_ENDPOINT_MAX);
  RT_ASSERT(host != NULL);
  int n = snprintf(out, cap, "%.*s:%u", (int)NET_RECORD_HOST_MAX, host,
                   (unsigned)port);
  RT_ASSERT(n > 0);
  RT_ASSERT((size_t)n < cap);
  return (size_t)n;
}

/* A CONNECT: a (u64 id, i64 rc, bytes) record, as READ and EXTERNAL. */
static void on_connect(void *ctx, const char *host, uint16_t port, int rc,
                       uint64_t stream) {
  char endpoint[NET_RECORD_ENDPOINT_MAX];
  size_t len = net_record_endpoint(endpoint, sizeof(endpoint), host, port);
  append_with_bytes(ctx, NET_TRACE_T_CONNECT, stream, rc, endpoint, len);
}

static void on_put(void *ctx, uint32_t kind, int64_t rc, const void *data,
                   size_t len) {
  append_with_bytes(ctx, NET_TRACE_T_EXTERNAL, kind, rc, data, len);
}

static const rt_tap_t record_tap = {
    .time = on_time,
    .drive = on_drive,
    .drive_end = on_drive_end,
    .notify = on_notify,
    .accept = on_accept,
    .connect = on_connect,
    .read = on_read,
    .write = on_write,
    .backlog = on_backlog,
    .shutdown = on_shutdown,
    .close = on_close,
    .take = NULL,
    .put = on_put,
};

/* ---- Lifecycle ----------------------------------------------------------- */

int net_record_start(rt_world_t *w, const net_record_config_t *cfg,
                     net_record_t **out, char *err, size_t err_cap) {
  if (rt_world_tapped(w)) {
    if (err != NULL && err_cap > 0)
      snprintf(err, err_cap, "the world is already tapped");
    return RT_EINVAL;
  }
  net_record_t *r = calloc(1, sizeof(*r));
  if (r == NULL)
    return RT_ENOMEM;
  r->world = w;
  r->last_time = rt_now(w);
  r->last_flush = rt_now(w);
  net_trace_header_t hdr = {
      .flags = cfg->flags,
      .seed = rt_world_seed(w),
      .epoch_unix_ns = rt_wall_ns(w) - rt_now(w),
      .config = cfg->config,
  };
  net_trace_writer_config_t wc = {
      .max_bytes_per_file = cfg->max_bytes_per_file,
      .buffer_bytes = cfg->buffer_bytes,
      .open_file = cfg->open_file,
      .open_ctx = cfg->open_ctx,
  };
  int rc =
      net_trace_writer_open_ex(cfg->dir, &hdr, &wc, &r->writer, err, err_cap);
  if (rc < 0) {
    free(r);
    return rc;
  }
  /* A TIME record first when the world is already past 0, so a replay
   * starts its clock where this one is. */
  if (rt_now(w) != 0) {
    r->last_time = 0;
    on_time(r, rt_now(w));
  }
  rt_world_set_tap(w, &record_tap, r);
  *out = r;
  return RT_OK;
}

void net_record_control(net_record_t *r, uint32_t code) {
  uint8_t b[SMALL_MAX];
  net_trace_enc_t e;
  net_trace_enc_init(&e, b, sizeof(b));
  net_trace_put_u64(&e, code);
  append(r, NET_TRACE_T_CONTROL, &e);
}

int net_record_stop(net_record_t *r, net_record_stats_t *stats, char *err,
                    size_t err_cap) {
  if (r == NULL)
    return RT_OK;
  rt_world_set_tap(r->world, NULL, NULL);
  net_trace_writer_stats_t ws;
  int rc = net_trace_writer_close(r->writer, &ws, err, err_cap);
  if (stats != NULL)
    *stats = (net_record_stats_t){.records = ws.records_appended,
                                  .records_lost = ws.records_lost,
                                  .bytes_written = ws.bytes_written,
                                  .files = ws.files};
  free(r->scratch);
  free(r);
  return rc;
}
