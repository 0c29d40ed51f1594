/* sim_trace.c: checkpoints of a simulated run, written or checked. */
#include "sim_trace.h"

#include "net_record.h"
#include "net_trace_reader.h"
#include "net_trace_writer.h"
#include "rt_hash.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sim_trace {
  bool writing;
  net_trace_writer_t *writer;
  net_trace_reader_t *reader;
  uint64_t chain;
  uint64_t deliveries;
  rt_delivery_t last;
  bool stopped;
  sim_replay_status_t status;
  uint64_t checkpoints;
  uint64_t records;
  uint64_t record_index;
  char what[512];
};

static uint64_t digest(const rt_delivery_t *d) {
  uint64_t h = rt_hash_step(0x73696d7472616365ULL, d->seq);
  h = rt_hash_step(h, (uint64_t)d->at);
  h = rt_hash_step(h, d->actor);
  h = rt_hash_step(h, d->from);
  h = rt_hash_step(h, d->tag);
  return rt_hash_step(h, d->payload_hash);
}

static void stop_with(sim_trace_t *t, sim_replay_status_t status,
                      const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void stop_with(sim_trace_t *t, sim_replay_status_t status,
                      const char *fmt, ...) {
  if (t->stopped)
    return;
  t->stopped = true;
  t->status = status;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(t->what, sizeof(t->what), fmt, ap);
  va_end(ap);
}

int sim_trace_create(const char *dir, uint64_t seed, int64_t epoch_unix_ns,
                     const char *config, sim_trace_t **out, char *err,
                     size_t err_cap) {
  sim_trace_t *t = calloc(1, sizeof(*t));
  if (t == NULL)
    return RT_ENOMEM;
  t->writing = true;
  net_trace_header_t hdr = {.flags = NET_RECORD_F_SIM,
                            .seed = seed,
                            .epoch_unix_ns = epoch_unix_ns,
                            .config = config};
  int rc = net_trace_writer_open(dir, &hdr, 0, &t->writer, err, err_cap);
  if (rc < 0) {
    free(t);
    return rc;
  }
  *out = t;
  return RT_OK;
}

int sim_trace_open(const char *path, sim_trace_t **out, char *err,
                   size_t err_cap) {
  sim_trace_t *t = calloc(1, sizeof(*t));
  if (t == NULL)
    return RT_ENOMEM;
  int rc = net_trace_reader_open(path, &t->reader, err, err_cap);
  if (rc < 0) {
    free(t);
    return rc;
  }
  if ((net_trace_reader_header(t->reader)->flags & NET_RECORD_F_SIM) == 0) {
    snprintf(err, err_cap, "%s is not a simulated run's trace", path);
    net_trace_reader_close(t->reader);
    free(t);
    return RT_EINVAL;
  }
  *out = t;
  return RT_OK;
}

const net_trace_header_t *sim_trace_header(const sim_trace_t *t) {
  return t->writing ? NULL : net_trace_reader_header(t->reader);
}

static void write_checkpoint(sim_trace_t *t, uint64_t kind, uint64_t run_hash) {
  uint8_t b[128];
  net_trace_enc_t e;
  net_trace_enc_init(&e, b, sizeof(b));
  net_trace_put_u64(&e, kind);
  net_trace_put_u64(&e, t->deliveries);
  net_trace_put_u64(&e, (uint64_t)t->last.at);
  net_trace_put_fixed64(&e, t->chain);
  net_trace_put_u64(&e, t->last.actor);
  net_trace_put_u64(&e, t->last.tag);
  net_trace_put_u64(&e, t->last.from);
  net_trace_put_fixed64(&e, run_hash);
  /* A refused record (the disk is behind) is marked LOST in the trace;
   * checking such a trace says so. */
  if (net_trace_enc_finish(&e) == 0)
    (void)net_trace_append(t->writer, NET_TRACE_T_CHECKPOINT, b, e.len);
}

/* A checkpoint as the recording holds it (write_checkpoint's fields). */
typedef struct recorded_checkpoint {
  uint64_t kind;
  uint64_t deliveries;
  uint64_t at;
  uint64_t chain;
  uint64_t actor;
  uint64_t tag;
  uint64_t from;
  uint64_t hash;
} recorded_checkpoint_t;

/* Checking: the recording's next checkpoint into *cp. false, with t
 * stopped, when the recording ends, fails, lost records or holds something
 * else there. */
static bool read_checkpoint(sim_trace_t *t, recorded_checkpoint_t *cp) {
  net_trace_record_t rec;
  int rc = net_trace_next(t->reader, &rec);
  if (rc == 0) {
    stop_with(t, SIM_REPLAY_DIVERGED,
              "the run goes on past the recording's end (delivery %" PRIu64
              ", t=%.6f)",
              t->deliveries, (double)t->last.at / 1e9);
    return false;
  }
  if (rc < 0) {
    stop_with(t, SIM_REPLAY_TRACE_ERROR, "%s",
              net_trace_reader_error(t->reader));
    return false;
  }
  t->records++;
  t->record_index = rec.index;
  if (rec.type == NET_TRACE_T_LOST) {
    stop_with(t, SIM_REPLAY_TRACE_ERROR,
              "the recording lost records at record %" PRIu64
              " (its writer fell behind the disk)",
              rec.index);
    return false;
  }
  net_trace_dec_t d;
  net_trace_dec_init(&d, rec.payload, rec.len);
  cp->kind = net_trace_get_u64(&d);
  cp->deliveries = net_trace_get_u64(&d);
  cp->at = net_trace_get_u64(&d);
  cp->chain = net_trace_get_fixed64(&d);
  cp->actor = net_trace_get_u64(&d);
  cp->tag = net_trace_get_u64(&d);
  cp->from = net_trace_get_u64(&d);
  cp->hash = net_trace_get_fixed64(&d);
  if (rec.type != NET_TRACE_T_CHECKPOINT || net_trace_dec_finish(&d) < 0) {
    stop_with(t, SIM_REPLAY_TRACE_ERROR,
              "record %" PRIu64 " (%s) is not a simulated run's checkpoint",
              rec.index, net_trace_type_name(rec.type));
    return false;
  }
  return true;
}

/* Checking: the next checkpoint must be this one. */
static void check_checkpoint(sim_trace_t *t, uint64_t kind, uint64_t run_hash) {
  if (t->stopped)
    return;
  recorded_checkpoint_t cp;
  if (!read_checkpoint(t, &cp))
    return;
  if (cp.kind != kind || cp.deliveries != t->deliveries) {
    stop_with(t, SIM_REPLAY_DIVERGED,
              "the run %s at delivery %" PRIu64 " (t=%.6f); the recording "
              "%s at delivery %" PRIu64 " (t=%.6f)",
              kind == SIM_TRACE_CP_END ? "ended" : "goes on", t->deliveries,
              (double)t->last.at / 1e9,
              cp.kind == SIM_TRACE_CP_END ? "ended" : "went on", cp.deliveries,
              (double)cp.at / 1e9);
    return;
  }
  if (cp.chain != t->chain || cp.at != (uint64_t)t->last.at) {
    stop_with(t, SIM_REPLAY_DIVERGED,
              "deliveries %" PRIu64 "..%" PRIu64 " differ: the last one is "
              "at t=%.6f, actor %" PRIu64 " (%s), tag %u, from %" PRIu64
              "; the recording's was at t=%.6f, actor %" PRIu64 ", tag %" PRIu64
              ", from %" PRIu64
              " (tools/overcookied-sim --check-determinism names the first)",
              cp.deliveries > SIM_TRACE_EVERY
                  ? cp.deliveries - SIM_TRACE_EVERY + 1
                  : 1,
              cp.deliveries, (double)t->last.at / 1e9, t->last.actor,
              t->last.actor_name != NULL ? t->last.actor_name : "?",
              (unsigned)t->last.tag, t->last.from, (double)cp.at / 1e9,
              cp.actor, cp.tag, cp.from);
    return;
  }
  if (kind == SIM_TRACE_CP_END && cp.hash != run_hash) {
    stop_with(t, SIM_REPLAY_DIVERGED,
              "the run ends with hash %016" PRIx64
              "; the recording's was %016" PRIx64
              " (same deliveries, different bytes read or written)",
              run_hash, cp.hash);
    return;
  }
  t->checkpoints++;
}

void sim_trace_delivery(void *ctx, const rt_delivery_t *d) {
  sim_trace_t *t = ctx;
  t->chain = rt_hash_step(t->chain, digest(d));
  t->deliveries++;
  t->last = *d;
  if (t->deliveries % SIM_TRACE_EVERY != 0)
    return;
  if (t->writing)
    write_checkpoint(t, SIM_TRACE_CP_WINDOW, 0);
  else
    check_checkpoint(t, SIM_TRACE_CP_WINDOW, 0);
}

sim_replay_status_t sim_trace_finish(sim_trace_t *t, uint64_t run_hash,
                                     bool until_reached,
                                     sim_replay_report_t *rep) {
  if (t->writing) {
    write_checkpoint(t, SIM_TRACE_CP_END, run_hash);
  } else if (!until_reached) {
    check_checkpoint(t, SIM_TRACE_CP_END, run_hash);
    net_trace_record_t rec;
    int rc = t->stopped ? 0 : net_trace_next(t->reader, &rec);
    if (rc < 0)
      stop_with(t, SIM_REPLAY_TRACE_ERROR, "%s",
                net_trace_reader_error(t->reader));
    else if (rc > 0)
      stop_with(t, SIM_REPLAY_TRACE_ERROR,
                "record %" PRIu64 " (%s) follows the run's end", rec.index,
                net_trace_type_name(rec.type));
  }
  sim_replay_status_t status = t->stopped      ? t->status
                               : until_reached ? SIM_REPLAY_UNTIL
                                               : SIM_REPLAY_DONE;
  if (rep != NULL) {
    memset(rep, 0, sizeof(*rep));
    rep->status = status;
    rep->records = t->records;
    rep->checkpoints = t->checkpoints;
    rep->deliveries = t->deliveries;
    rep->time = t->last.at;
    rep->run_hash = run_hash;
    rep->record_index = t->record_index;
    snprintf(rep->what, sizeof(rep->what), "%s", t->what);
  }
  return status;
}

int sim_trace_close(sim_trace_t *t, char *err, size_t err_cap) {
  if (t == NULL)
    return RT_OK;
  int rc = RT_OK;
  if (t->writing)
    rc = net_trace_writer_close(t->writer, NULL, err, err_cap);
  else
    net_trace_reader_close(t->reader);
  free(t);
  return rc;
}
