/* net_trace_fixture.c: the helpers the tests of the trace share
 * (net_trace_fixture.h); the tests are in test_net_trace*.c.
 */
#include "net_trace_fixture.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Every input and output type the header names, and two it does not (the
 * format passes unnamed user types through). */
static const uint8_t kTypes[] = {
    NET_TRACE_T_TIME,         NET_TRACE_T_PASS,
    NET_TRACE_T_ACCEPT,       NET_TRACE_T_READ,
    NET_TRACE_T_WRITE,        NET_TRACE_T_CLOSE,
    NET_TRACE_T_STREAM_EVENT, NET_TRACE_T_EXTERNAL,
    NET_TRACE_T_CHECKPOINT,   99,
    NET_TRACE_T_USER_MAX,
};
#define TYPES_N (sizeof(kTypes) / sizeof(kTypes[0]))

char *make_dir(void) {
  char *d = strdup("/tmp/oc-trace-XXXXXX");
  cr_assert_not_null(mkdtemp(d));
  return d;
}

/* Remove a directory and the files in it (one level: all a trace has). */
void remove_dir(char *d) {
  DIR *dp = opendir(d);
  if (dp != NULL) {
    struct dirent *e;
    while ((e = readdir(dp)) != NULL) {
      if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
        continue;
      char p[NET_TRACE_PATH_MAX];
      snprintf(p, sizeof(p), "%s/%s", d, e->d_name);
      unlink(p);
    }
    closedir(dp);
  }
  rmdir(d);
  free(d);
}

void path_of(char *out, const char *dir, uint32_t seq) {
  snprintf(out, NET_TRACE_PATH_MAX, "%s/trace-%06" PRIu32 ".oct", dir, seq);
}

void spit(const char *path, const uint8_t *b, size_t len) {
  FILE *f = fopen(path, "wb");
  cr_assert_not_null(f, "create %s", path);
  cr_assert_eq(fwrite(b, 1, len, f), len);
  fclose(f);
}

off_t file_size(const char *path) {
  struct stat st;
  if (stat(path, &st) != 0)
    return -1;
  return st.st_size;
}

net_trace_header_t test_header(void) {
  net_trace_header_t h = {0};
  h.flags = 0x5;
  h.seed = 0x0123456789abcdefull;
  h.epoch_unix_ns = -1234567890123456789ll; /* a sign to round-trip */
  h.config = "--port 8080 --record-max-mb 256 --name caf\xc3\xa9";
  return h;
}

/* Record i's type and payload: (u64 i, bytes of a pattern of plen bytes). */
uint8_t type_of(uint32_t i) { return kTypes[i % TYPES_N]; }

size_t payload_of(uint32_t i, size_t plen, uint8_t *out, size_t cap) {
  net_trace_enc_t e;
  net_trace_enc_init(&e, out, cap);
  net_trace_put_u64(&e, i);
  uint8_t pat[NET_TRACE_PAYLOAD_MAX];
  for (size_t k = 0; k < plen && k < sizeof(pat); k++)
    pat[k] = (uint8_t)(i * 31u + k * 7u);
  net_trace_put_bytes(&e, pat, plen);
  cr_assert_eq(net_trace_enc_finish(&e), 0);
  return e.len;
}

/* Check that rec is record i (sized plen) of the generator. */
void expect_record(const net_trace_record_t *rec, uint32_t i, size_t plen) {
  static uint8_t want[NET_TRACE_PAYLOAD_MAX + 32]; /* test-only scratch */
  size_t n = payload_of(i, plen, want, sizeof(want));
  cr_assert_eq(rec->type, type_of(i), "record %u: type %u, want %u", i,
               rec->type, type_of(i));
  cr_assert_eq(rec->len, n, "record %u: len %u, want %zu", i, rec->len, n);
  cr_assert_eq(memcmp(rec->payload, want, n), 0, "record %u: payload", i);
}

size_t size_small(uint32_t i) { return (i * 13u) % 40u; }

/* Write n records of the generator into dir; returns close's result. */
int write_trace(const char *dir, uint32_t n, size_fn *sz,
                const net_trace_writer_config_t *cfg,
                net_trace_writer_stats_t *st) {
  net_trace_header_t h = test_header();
  net_trace_writer_t *w;
  char err[ERR_CAP];
  int rc = net_trace_writer_open_ex(dir, &h, cfg, &w, err, sizeof(err));
  cr_assert_eq(rc, 0, "open: %s", err);
  uint8_t *p = malloc(NET_TRACE_PAYLOAD_MAX + 32);
  for (uint32_t i = 0; i < n; i++) {
    size_t len = payload_of(i, sz(i), p, NET_TRACE_PAYLOAD_MAX + 32);
    /* A test may outpace a slow disk: wait for room, do not lose. */
    int arc = -1;
    for (int tries = 0; tries < 100000 && arc != 0; tries++) {
      arc = net_trace_append(w, type_of(i), p, len);
      if (arc == RT_EFULL) {
        net_trace_flush(w);
        struct timespec ts = {0, 100000};
        nanosleep(&ts, NULL);
      } else {
        cr_assert_eq(arc, 0, "append %u: %s", i, rt_err_name(arc));
      }
    }
    cr_assert_eq(arc, 0, "append %u never found room", i);
    if (i % 64 == 0)
      net_trace_flush(w);
  }
  free(p);
  return net_trace_writer_close(w, st, err, sizeof(err));
}

/* Read path to the end or the first error, checking every user record
 * against the generator (a damaged trace must never yield a wrong one). */
void read_trace(const char *path, size_fn *sz, seen_t *s) {
  memset(s, 0, sizeof(*s));
  net_trace_reader_t *r;
  s->open_rc = net_trace_reader_open(path, &r, s->err, sizeof(s->err));
  if (s->open_rc != 0) {
    s->rc = s->open_rc;
    cr_assert_neq(s->err[0], '\0', "an error comes with a sentence");
    return;
  }
  net_trace_record_t rec;
  for (uint32_t k = 0; k < 2 * MAX_RECORDS; k++) {
    s->rc = net_trace_next(r, &rec);
    if (s->rc != 1)
      break;
    if (rec.type == NET_TRACE_T_LOST) {
      s->lost_marks++;
      continue;
    }
    cr_assert_lt(s->n, MAX_RECORDS);
    expect_record(&rec, s->n, sz(s->n));
    s->file_seq[s->n] = rec.file_seq;
    s->offset[s->n] = rec.offset;
    s->len[s->n] = rec.len;
    s->index[s->n] = rec.index;
    s->n++;
  }
  s->fault = net_trace_reader_fault(r);
  snprintf(s->err, sizeof(s->err), "%s", net_trace_reader_error(r));
  if (s->rc < 0) {
    cr_assert_neq(s->err[0], '\0', "an error comes with a sentence");
    /* Sticky: the same error again, never a record. */
    cr_assert_eq(net_trace_next(r, &rec), s->rc);
  } else if (s->rc == 0) {
    cr_assert_eq(net_trace_next(r, &rec), 0);
  }
  net_trace_reader_close(r);
}

net_trace_writer_config_t cfg_of(uint64_t max_bytes, uint32_t buffer_bytes) {
  net_trace_writer_config_t c = {0};
  c.max_bytes_per_file = max_bytes;
  c.buffer_bytes = buffer_bytes;
  return c;
}

size_t header_len(void) {
  return NET_TRACE_HEADER_FIXED + strlen(test_header().config);
}
