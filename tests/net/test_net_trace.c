#include "net_trace.h"
#include "net_trace_reader.h"
#include "net_trace_writer.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- Helpers ------------------------------------------------------------- */

#define ERR_CAP NET_TRACE_ERR_MAX
#define MAX_RECORDS 20000u

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

static char *make_dir(void) {
  char *d = strdup("/tmp/oc-trace-XXXXXX");
  cr_assert_not_null(mkdtemp(d));
  return d;
}

/* Remove a directory and the files in it (one level: all a trace has). */
static void remove_dir(char *d) {
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

static void path_of(char *out, const char *dir, uint32_t seq) {
  snprintf(out, NET_TRACE_PATH_MAX, "%s/trace-%06" PRIu32 ".oct", dir, seq);
}

static uint8_t *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  cr_assert_not_null(f, "open %s", path);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *b = malloc((size_t)n + 1);
  cr_assert_eq(fread(b, 1, (size_t)n, f), (size_t)n);
  fclose(f);
  *len = (size_t)n;
  return b;
}

static void spit(const char *path, const uint8_t *b, size_t len) {
  FILE *f = fopen(path, "wb");
  cr_assert_not_null(f, "create %s", path);
  cr_assert_eq(fwrite(b, 1, len, f), len);
  fclose(f);
}

static off_t file_size(const char *path) {
  struct stat st;
  if (stat(path, &st) != 0)
    return -1;
  return st.st_size;
}

static net_trace_header_t test_header(void) {
  net_trace_header_t h = {0};
  h.flags = 0x5;
  h.seed = 0x0123456789abcdefull;
  h.epoch_unix_ns = -1234567890123456789ll; /* a sign to round-trip */
  h.config = "--port 8080 --record-max-mb 256 --name caf\xc3\xa9";
  return h;
}

/* Record i's type and payload: (u64 i, bytes of a pattern of plen bytes). */
static uint8_t type_of(uint32_t i) { return kTypes[i % TYPES_N]; }

static size_t payload_of(uint32_t i, size_t plen, uint8_t *out, size_t cap) {
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
static void expect_record(const net_trace_record_t *rec, uint32_t i,
                          size_t plen) {
  static uint8_t want[NET_TRACE_PAYLOAD_MAX + 32]; /* test-only scratch */
  size_t n = payload_of(i, plen, want, sizeof(want));
  cr_assert_eq(rec->type, type_of(i), "record %u: type %u, want %u", i,
               rec->type, type_of(i));
  cr_assert_eq(rec->len, n, "record %u: len %u, want %zu", i, rec->len, n);
  cr_assert_eq(memcmp(rec->payload, want, n), 0, "record %u: payload", i);
}

typedef size_t size_fn(uint32_t i);

static size_t size_small(uint32_t i) { return (i * 13u) % 40u; }
static size_t size_mixed(uint32_t i) {
  if (i % 997 == 5)
    return 100000; /* a large storage result now and then */
  return (i * 37u) % 300u;
}

/* Write n records of the generator into dir; returns close's result. */
static int write_trace(const char *dir, uint32_t n, size_fn *sz,
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

/* What reading a trace gave. */
typedef struct seen {
  uint32_t n;          /* user records returned */
  uint32_t lost_marks; /* LOST records returned */
  int rc;              /* the last net_trace_next result */
  int open_rc;
  net_trace_fault_t fault;
  char err[ERR_CAP];
  uint32_t file_seq[MAX_RECORDS];
  uint64_t offset[MAX_RECORDS];
  uint32_t len[MAX_RECORDS];
  uint64_t index[MAX_RECORDS];
} seen_t;

/* Read path to the end or the first error, checking every user record
 * against the generator (a damaged trace must never yield a wrong one). */
static void read_trace(const char *path, size_fn *sz, seen_t *s) {
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

static net_trace_writer_config_t cfg_of(uint64_t max_bytes,
                                        uint32_t buffer_bytes) {
  net_trace_writer_config_t c = {0};
  c.max_bytes_per_file = max_bytes;
  c.buffer_bytes = buffer_bytes;
  return c;
}

static size_t header_len(void) {
  return NET_TRACE_HEADER_FIXED + strlen(test_header().config);
}

/* ---- Checks and fields --------------------------------------------------- */

static uint32_t crc32c_bitwise(const uint8_t *p, size_t n) {
  uint32_t c = 0xffffffffu;
  for (size_t i = 0; i < n; i++) {
    c ^= p[i];
    for (int b = 0; b < 8; b++)
      c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
  }
  return ~c;
}

Test(net_trace, crc32c_matches_known_vectors_and_the_definition) {
  cr_assert_eq(net_trace_crc32c(0, "123456789", 9), 0xe3069283u);
  uint8_t z[32] = {0}, ff[32];
  memset(ff, 0xff, sizeof(ff));
  cr_assert_eq(net_trace_crc32c(0, z, 32), 0x8a9136aau); /* RFC 3720 B.4 */
  cr_assert_eq(net_trace_crc32c(0, ff, 32), 0x62a8ab43u);
  uint8_t buf[1024];
  uint64_t x = 88172645463325252ull;
  for (size_t i = 0; i < sizeof(buf); i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    buf[i] = (uint8_t)x;
  }
  for (size_t n = 0; n <= sizeof(buf); n += 37)
    cr_assert_eq(net_trace_crc32c(0, buf, n), crc32c_bitwise(buf, n));
  /* Every tail length at every alignment (the hardware path takes eight
   * bytes at a time, then one). */
  for (size_t off = 0; off < 8; off++)
    for (size_t n = 0; n <= 64; n++)
      cr_assert_eq(net_trace_crc32c(0, buf + off, n),
                   crc32c_bitwise(buf + off, n), "offset %zu length %zu", off,
                   n);
  /* Continuing a CRC over a split gives the same as one pass. */
  uint32_t a = net_trace_crc32c(0, buf, 100);
  cr_assert_eq(net_trace_crc32c(a, buf + 100, 900),
               net_trace_crc32c(0, buf, 1000));
}

Test(net_trace, fields_round_trip_at_their_edges) {
  const uint64_t us[] = {0,     1,          127,        128,       16383,
                         16384, UINT32_MAX, 1ull << 63, UINT64_MAX};
  const int64_t is[] = {0, 1, -1, 63, -64, 64, INT64_MAX, INT64_MIN};
  uint8_t buf[512];
  net_trace_enc_t e;
  net_trace_enc_init(&e, buf, sizeof(buf));
  for (size_t i = 0; i < sizeof(us) / sizeof(us[0]); i++)
    net_trace_put_u64(&e, us[i]);
  for (size_t i = 0; i < sizeof(is) / sizeof(is[0]); i++)
    net_trace_put_i64(&e, is[i]);
  net_trace_put_fixed64(&e, 0xfeedfacecafebeefull);
  net_trace_put_bytes(&e, "hello", 5);
  net_trace_put_bytes(&e, NULL, 0);
  cr_assert_eq(net_trace_enc_finish(&e), 0);

  net_trace_dec_t d;
  net_trace_dec_init(&d, buf, e.len);
  for (size_t i = 0; i < sizeof(us) / sizeof(us[0]); i++)
    cr_assert_eq(net_trace_get_u64(&d), us[i]);
  for (size_t i = 0; i < sizeof(is) / sizeof(is[0]); i++)
    cr_assert_eq(net_trace_get_i64(&d), is[i]);
  cr_assert_eq(net_trace_get_fixed64(&d), 0xfeedfacecafebeefull);
  size_t n;
  const uint8_t *p = net_trace_get_bytes(&d, &n);
  cr_assert_eq(n, 5);
  cr_assert_eq(memcmp(p, "hello", 5), 0);
  net_trace_get_bytes(&d, &n);
  cr_assert_eq(n, 0);
  cr_assert_eq(net_trace_dec_finish(&d), 0);
  /* Small values stay small. */
  net_trace_enc_init(&e, buf, sizeof(buf));
  net_trace_put_i64(&e, -1);
  cr_assert_eq(e.len, 1);
}

Test(net_trace, encoder_overflow_is_sticky_and_reported) {
  uint8_t buf[4];
  net_trace_enc_t e;
  net_trace_enc_init(&e, buf, sizeof(buf));
  net_trace_put_u64(&e, 1);
  net_trace_put_fixed64(&e, 2); /* does not fit */
  net_trace_put_u64(&e, 3);     /* would fit, but after a failure */
  cr_assert_eq(e.len, 1);
  cr_assert_eq(net_trace_enc_finish(&e), RT_ELIMIT);
}

Test(net_trace, decoder_rejects_bad_fields) {
  net_trace_dec_t d;
  const uint8_t cut[] = {0x80};            /* varint runs off the end */
  const uint8_t overlong[] = {0x80, 0x00}; /* 0, not in its shortest form */
  const uint8_t too_big[] = {0xff, 0xff, 0xff, 0xff, 0xff,
                             0xff, 0xff, 0xff, 0xff, 0x02}; /* > 64 bits */
  const uint8_t long_bytes[] = {0x05, 'a', 'b'}; /* claims 5, has 2 */
  net_trace_dec_init(&d, cut, sizeof(cut));
  net_trace_get_u64(&d);
  cr_assert_eq(net_trace_dec_finish(&d), RT_EPROTO);
  net_trace_dec_init(&d, overlong, sizeof(overlong));
  net_trace_get_u64(&d);
  cr_assert_eq(net_trace_dec_finish(&d), RT_EPROTO);
  net_trace_dec_init(&d, too_big, sizeof(too_big));
  net_trace_get_u64(&d);
  cr_assert_eq(net_trace_dec_finish(&d), RT_EPROTO);
  size_t n;
  net_trace_dec_init(&d, long_bytes, sizeof(long_bytes));
  cr_assert_null(net_trace_get_bytes(&d, &n));
  cr_assert_eq(n, 0);
  cr_assert_eq(net_trace_dec_finish(&d), RT_EPROTO);
  /* Sticky: a later get returns 0 and keeps the error. */
  cr_assert_eq(net_trace_get_u64(&d), 0);
  cr_assert_eq(d.err, RT_EPROTO);
  /* Left-over bytes are an error too: a payload is read whole. */
  const uint8_t two[] = {0x01, 0x02};
  net_trace_dec_init(&d, two, sizeof(two));
  cr_assert_eq(net_trace_get_u64(&d), 1);
  cr_assert_eq(net_trace_dec_finish(&d), RT_EPROTO);
  net_trace_dec_init(&d, two, 1);
  cr_assert_eq(net_trace_get_fixed64(&d), 0);
  cr_assert_eq(net_trace_dec_finish(&d), RT_EPROTO);
}

Test(net_trace, type_names_cover_the_enum) {
  cr_assert_str_eq(net_trace_type_name(NET_TRACE_T_READ), "READ");
  cr_assert_str_eq(net_trace_type_name(NET_TRACE_T_CHECKPOINT), "CHECKPOINT");
  cr_assert_str_eq(net_trace_type_name(NET_TRACE_T_END), "END");
  cr_assert_str_eq(net_trace_type_name(99), "?");
}

/* ---- Round trip ---------------------------------------------------------- */

Test(net_trace, many_records_of_every_type_round_trip) {
  char *dir = make_dir();
  net_trace_writer_config_t cfg = cfg_of(0, 0); /* defaults: one file */
  net_trace_writer_stats_t st;
  cr_assert_eq(write_trace(dir, 12000, size_mixed, &cfg, &st), 0);
  cr_assert_eq(st.records_appended, 12000);
  cr_assert_eq(st.records_lost, 0);
  cr_assert_eq(st.records_written, 12001); /* and END */
  cr_assert_eq(st.files, 1);
  cr_assert_eq(st.err, 0);
  char p1[NET_TRACE_PATH_MAX];
  path_of(p1, dir, 1);
  cr_assert_eq((uint64_t)file_size(p1), st.bytes_written);

  static seen_t s;
  read_trace(dir, size_mixed, &s);
  cr_assert_eq(s.rc, 0, "%s", s.err);
  cr_assert_eq(s.n, 12000);
  cr_assert_eq(s.lost_marks, 0);
  for (uint32_t i = 0; i < s.n; i++)
    cr_assert_eq(s.index[i], i);

  net_trace_reader_t *r;
  char err[ERR_CAP];
  cr_assert_eq(net_trace_reader_open(dir, &r, err, sizeof(err)), 0);
  const net_trace_header_t *h = net_trace_reader_header(r);
  net_trace_header_t want = test_header();
  cr_assert_eq(h->version, NET_TRACE_VERSION);
  cr_assert_eq(h->flags, want.flags);
  cr_assert_eq(h->seed, want.seed);
  cr_assert_eq(h->epoch_unix_ns, want.epoch_unix_ns);
  cr_assert_str_eq(h->config, want.config);
  cr_assert_eq(h->config_len, strlen(want.config));
  cr_assert_str_eq(net_trace_reader_error(r), "");
  cr_assert_eq(net_trace_reader_fault(r), NET_TRACE_FAULT_NONE);
  net_trace_reader_close(r);
  remove_dir(dir);
}

static size_t size_zero(uint32_t i) {
  (void)i;
  return 0;
}

Test(net_trace, an_empty_recording_and_an_empty_config_round_trip) {
  char *dir = make_dir();
  net_trace_header_t h = {0}; /* config NULL: empty */
  net_trace_writer_t *w;
  char err[ERR_CAP];
  cr_assert_eq(net_trace_writer_open(dir, &h, 0, &w, err, sizeof(err)), 0);
  cr_assert_eq(net_trace_writer_close(w, NULL, err, sizeof(err)), 0);
  static seen_t s;
  read_trace(dir, size_zero, &s);
  cr_assert_eq(s.rc, 0, "%s", s.err);
  cr_assert_eq(s.n, 0);
  char p1[NET_TRACE_PATH_MAX];
  path_of(p1, dir, 1);
  /* A header and END(0, 0). */
  cr_assert_eq(file_size(p1), NET_TRACE_HEADER_FIXED + 9 + 2);
  remove_dir(dir);
}

/* ---- Rotation ------------------------------------------------------------ */

/* Fixed-size records: payload_of(i, 1000 - varint(i) - 2) is 1000 bytes for
 * i < 128 (one-byte varints). */
static size_t size_fixed(uint32_t i) {
  (void)i;
  return 1000 - 1 - 2;
}

/* Records 0..n-1 of 1009 bytes each, max_bytes = header + k records + the
 * closing reserve + delta: how many records file 1 holds. */
static uint32_t records_in_first_file(uint32_t k, int delta) {
  char *dir = make_dir();
  const size_t rec = NET_TRACE_RECORD_OVERHEAD + 1000;
  uint64_t max = header_len() + k * rec + NET_TRACE_TAIL_MAX + delta;
  net_trace_writer_config_t cfg = cfg_of(max, 0);
  cr_assert_eq(write_trace(dir, 3 * k, size_fixed, &cfg, NULL), 0);
  static seen_t s;
  read_trace(dir, size_fixed, &s);
  cr_assert_eq(s.rc, 0, "%s", s.err);
  cr_assert_eq(s.n, 3 * k);
  uint32_t in_first = 0;
  for (uint32_t i = 0; i < s.n; i++)
    in_first += s.file_seq[i] == 1;
  /* Every file within the limit (each holds many records). */
  for (uint32_t seq = 1; seq < 100; seq++) {
    char p[NET_TRACE_PATH_MAX];
    path_of(p, dir, seq);
    off_t sz = file_size(p);
    if (sz < 0)
      break;
    cr_assert_leq((uint64_t)sz, max, "file %u: %lld > %" PRIu64, seq,
                  (long long)sz, max);
  }
  remove_dir(dir);
  return in_first;
}

Test(net_trace, rotation_at_the_limit_keeps_exactly_what_fits) {
  cr_assert_eq(records_in_first_file(20, 0), 20);
}

Test(net_trace, rotation_one_byte_below_the_limit_moves_a_record_on) {
  cr_assert_eq(records_in_first_file(20, -1), 19);
}

Test(net_trace, rotation_one_byte_above_the_limit_changes_nothing) {
  cr_assert_eq(records_in_first_file(20, +1), 20);
}

static size_t size_huge(uint32_t i) {
  (void)i;
  return 20000; /* more than a 16 KiB file */
}

Test(net_trace, a_record_larger_than_a_file_gets_a_file_of_its_own) {
  char *dir = make_dir();
  net_trace_writer_config_t cfg = cfg_of(NET_TRACE_FILE_BYTES_MIN, 0);
  net_trace_writer_stats_t st;
  cr_assert_eq(write_trace(dir, 5, size_huge, &cfg, &st), 0);
  cr_assert_eq(st.files, 5);
  static seen_t s;
  read_trace(dir, size_huge, &s);
  cr_assert_eq(s.rc, 0, "%s", s.err);
  cr_assert_eq(s.n, 5);
  for (uint32_t i = 0; i < 5; i++) {
    cr_assert_eq(s.file_seq[i], i + 1);
    cr_assert_eq(s.offset[i], header_len()); /* first in its file */
    cr_assert_eq(s.index[i], 2 * i);         /* NEXT_FILE between */
  }
  remove_dir(dir);
}

/* Records around the reader's first buffer (one read chunk, 64 KiB, which
 * grows only as a record needs) and of the largest size, between small
 * ones: each reads back whole. */
static size_t size_around_a_chunk(uint32_t i) {
  static const size_t sizes[] = {10,
                                 (64u << 10) - 40,
                                 (64u << 10) - 9,
                                 64u << 10,
                                 (64u << 10) + 1,
                                 10,
                                 NET_TRACE_PAYLOAD_MAX - 8,
                                 300000,
                                 3};
  return sizes[i % (sizeof(sizes) / sizeof(sizes[0]))];
}

Test(net_trace, records_larger_than_a_read_chunk_read_back_whole) {
  char *dir = make_dir();
  net_trace_writer_config_t cfg = cfg_of(0, 0);
  cr_assert_eq(write_trace(dir, 9, size_around_a_chunk, &cfg, NULL), 0);
  static seen_t s;
  read_trace(dir, size_around_a_chunk, &s);
  cr_assert_eq(s.rc, 0, "%s", s.err);
  cr_assert_eq(s.n, 9);
  remove_dir(dir);
}

Test(net_trace, a_directory_reads_in_order_and_a_middle_file_reads_on) {
  char *dir = make_dir();
  net_trace_writer_config_t cfg = cfg_of(NET_TRACE_FILE_BYTES_MIN, 0);
  net_trace_writer_stats_t st;
  cr_assert_eq(write_trace(dir, 3000, size_small, &cfg, &st), 0);
  cr_assert_gt(st.files, 4);
  static seen_t s;
  read_trace(dir, size_small, &s);
  cr_assert_eq(s.rc, 0, "%s", s.err);
  cr_assert_eq(s.n, 3000);
  /* In order: files ascend, indices ascend by one except over NEXT_FILE. */
  uint32_t starts[64] = {0};
  for (uint32_t i = 1; i < s.n; i++) {
    cr_assert_geq(s.file_seq[i], s.file_seq[i - 1]);
    uint64_t step = s.index[i] - s.index[i - 1];
    cr_assert_eq(step, s.file_seq[i] == s.file_seq[i - 1] ? 1 : 2);
    if (s.file_seq[i] != s.file_seq[i - 1] && s.file_seq[i] < 64)
      starts[s.file_seq[i]] = i;
  }
  cr_assert_eq(s.file_seq[s.n - 1], st.files);

  /* Start at file 3 by name: records from there on, same indices. */
  char p3[NET_TRACE_PATH_MAX];
  path_of(p3, dir, 3);
  net_trace_reader_t *r;
  char err[ERR_CAP];
  cr_assert_eq(net_trace_reader_open(p3, &r, err, sizeof(err)), 0, "%s", err);
  net_trace_record_t rec;
  uint32_t i = starts[3];
  int rc;
  while ((rc = net_trace_next(r, &rec)) == 1) {
    cr_assert_eq(rec.index, s.index[i]);
    expect_record(&rec, i, size_small(i));
    i++;
  }
  cr_assert_eq(rc, 0, "%s", net_trace_reader_error(r));
  cr_assert_eq(i, 3000);
  net_trace_reader_close(r);
  remove_dir(dir);
}

/* ---- Damage -------------------------------------------------------------- */

/* The number of user records wholly before byte off of file seq. */
static uint32_t whole_before(const seen_t *clean, uint32_t seq, uint64_t off) {
  uint32_t n = 0;
  for (uint32_t i = 0; i < clean->n; i++)
    if (clean->file_seq[i] < seq ||
        (clean->file_seq[i] == seq &&
         clean->offset[i] + NET_TRACE_RECORD_OVERHEAD + clean->len[i] <= off))
      n++;
  return n;
}

/* Flip bytes [from, to) of file seq one at a time (three ways each): every
 * flip is an error, named as damage (bad magic in the magic), and every
 * record returned before it is whole and right. */
static void flip_each_byte(const char *dir, uint32_t seq, size_t from,
                           size_t to, const seen_t *clean) {
  char p[NET_TRACE_PATH_MAX];
  path_of(p, dir, seq);
  size_t len;
  uint8_t *orig = slurp(p, &len);
  if (to > len)
    to = len;
  static seen_t s;
  const uint8_t masks[] = {0x01, 0x80, 0xff};
  for (size_t off = from; off < to; off++) {
    for (size_t m = 0; m < sizeof(masks); m++) {
      orig[off] ^= masks[m];
      spit(p, orig, len);
      orig[off] ^= masks[m];
      read_trace(dir, size_small, &s);
      cr_assert_lt(s.rc, 0, "file %u byte %zu ^%02x: accepted", seq, off,
                   masks[m]);
      cr_assert_eq(s.rc, RT_EPROTO, "file %u byte %zu ^%02x: %s", seq, off,
                   masks[m], s.err);
      if (s.open_rc == 0)
        cr_assert_eq(s.fault,
                     off < NET_TRACE_MAGIC_LEN ? NET_TRACE_FAULT_BAD_MAGIC
                                               : NET_TRACE_FAULT_CORRUPT,
                     "file %u byte %zu: %s", seq, off, s.err);
      cr_assert_eq(s.n, whole_before(clean, seq, off),
                   "file %u byte %zu ^%02x: %u records, want %u (%s)", seq, off,
                   masks[m], s.n, whole_before(clean, seq, off), s.err);
    }
  }
  spit(p, orig, len);
  free(orig);
}

Test(net_trace, flipping_any_byte_of_a_small_trace_is_caught) {
  char *dir = make_dir();
  net_trace_writer_config_t cfg = cfg_of(0, 0);
  cr_assert_eq(write_trace(dir, 40, size_small, &cfg, NULL), 0);
  static seen_t clean;
  read_trace(dir, size_small, &clean);
  cr_assert_eq(clean.rc, 0);
  char p1[NET_TRACE_PATH_MAX];
  path_of(p1, dir, 1);
  flip_each_byte(dir, 1, 0, (size_t)file_size(p1), &clean);
  remove_dir(dir);
}

Test(net_trace, flipping_any_byte_across_a_file_boundary_is_caught) {
  char *dir = make_dir();
  net_trace_writer_config_t cfg = cfg_of(NET_TRACE_FILE_BYTES_MIN, 0);
  cr_assert_eq(write_trace(dir, 1000, size_small, &cfg, NULL), 0);
  static seen_t clean;
  read_trace(dir, size_small, &clean);
  cr_assert_eq(clean.rc, 0);
  char p1[NET_TRACE_PATH_MAX];
  path_of(p1, dir, 1);
  size_t len1 = (size_t)file_size(p1);
  /* The last records of file 1 and its NEXT_FILE; file 2's header and
   * first records. */
  flip_each_byte(dir, 1, len1 - 200, len1, &clean);
  flip_each_byte(dir, 2, 0, header_len() + 200, &clean);
  remove_dir(dir);
}

/* Keep the first len bytes of file 1 as the whole trace. */
static void cut_copy(const uint8_t *orig, size_t len, const char *dir) {
  char p[NET_TRACE_PATH_MAX];
  path_of(p, dir, 1);
  spit(p, orig, len);
}

Test(net_trace, truncation_at_every_byte_is_reported_and_usable) {
  char *dir = make_dir();
  net_trace_writer_config_t cfg = cfg_of(0, 0);
  cr_assert_eq(write_trace(dir, 30, size_small, &cfg, NULL), 0);
  static seen_t clean;
  read_trace(dir, size_small, &clean);
  char p1[NET_TRACE_PATH_MAX];
  path_of(p1, dir, 1);
  size_t len;
  uint8_t *orig = slurp(p1, &len);
  char *cut = make_dir();
  static seen_t s;
  for (size_t l = 0; l < len; l++) {
    cut_copy(orig, l, cut);
    read_trace(cut, size_small, &s);
    cr_assert_eq(s.rc, RT_EOF, "cut at %zu: %s", l, s.err);
    cr_assert(strstr(s.err, "truncated") != NULL, "cut at %zu: %s", l, s.err);
    if (s.open_rc == 0)
      cr_assert_eq(s.fault, NET_TRACE_FAULT_TRUNCATED);
    else
      cr_assert_lt(l, header_len(), "cut at %zu: open failed", l);
    cr_assert_eq(s.n, whole_before(&clean, 1, l), "cut at %zu", l);
  }
  cut_copy(orig, len, cut);
  read_trace(cut, size_small, &s);
  cr_assert_eq(s.rc, 0);
  cr_assert_eq(s.n, 30);

  /* The message names the record, where it starts, and what is missing. */
  size_t at = clean.offset[17];
  cut_copy(orig, at + 31, cut);
  read_trace(cut, size_small, &s);
  char want[256];
  snprintf(want, sizeof(want),
           "truncated in the middle of record 17 at byte %zu (expected %u "
           "bytes, 31 left)",
           at, NET_TRACE_RECORD_OVERHEAD + clean.len[17]);
  cr_assert(strstr(s.err, want) != NULL, "%s", s.err);
  /* Cut between records: no END. */
  cut_copy(orig, at, cut);
  read_trace(cut, size_small, &s);
  cr_assert(strstr(s.err, "before record 17: no END record") != NULL, "%s",
            s.err);
  free(orig);
  remove_dir(cut);
  remove_dir(dir);
}

Test(net_trace, a_cut_file_with_a_successor_is_damage_not_a_crash) {
  char *dir = make_dir();
  net_trace_writer_config_t cfg = cfg_of(NET_TRACE_FILE_BYTES_MIN, 0);
  cr_assert_eq(write_trace(dir, 1000, size_small, &cfg, NULL), 0);
  char p1[NET_TRACE_PATH_MAX];
  path_of(p1, dir, 1);
  cr_assert_eq(truncate(p1, file_size(p1) - 3), 0);
  static seen_t s;
  read_trace(dir, size_small, &s);
  cr_assert_eq(s.rc, RT_EPROTO, "%s", s.err);
  cr_assert_eq(s.fault, NET_TRACE_FAULT_CORRUPT);
  cr_assert(strstr(s.err, "damaged") != NULL, "%s", s.err);
  remove_dir(dir);
}

Test(net_trace, bytes_after_the_end_record_are_damage) {
  char *dir = make_dir();
  net_trace_writer_config_t cfg = cfg_of(0, 0);
  cr_assert_eq(write_trace(dir, 10, size_small, &cfg, NULL), 0);
  char p1[NET_TRACE_PATH_MAX];
  path_of(p1, dir, 1);
  FILE *f = fopen(p1, "ab");
  fputc(0, f);
  fclose(f);
  static seen_t s;
  read_trace(dir, size_small, &s);
  cr_assert_eq(s.rc, RT_EPROTO);
  cr_assert_eq(s.n, 10);
  cr_assert(strstr(s.err, "bytes follow the END record") != NULL, "%s", s.err);
  remove_dir(dir);
}

Test(net_trace, wrong_magic_is_not_a_trace) {
  char *dir = make_dir();
  char p1[NET_TRACE_PATH_MAX];
  path_of(p1, dir, 1);
  const char *junk = "GIF89a, or anything else that is not a trace file";
  spit(p1, (const uint8_t *)junk, strlen(junk));
  net_trace_reader_t *r;
  char err[ERR_CAP];
  cr_assert_eq(net_trace_reader_open(dir, &r, err, sizeof(err)), RT_EPROTO);
  cr_assert(strstr(err, "not a trace file") != NULL, "%s", err);
  /* Even a prefix of four bytes is judged by what it has. */
  spit(p1, (const uint8_t *)"OCTR", 4);
  cr_assert_eq(net_trace_reader_open(p1, &r, err, sizeof(err)), RT_EOF);
  spit(p1, (const uint8_t *)"OCTX", 4);
  cr_assert_eq(net_trace_reader_open(p1, &r, err, sizeof(err)), RT_EPROTO);
  remove_dir(dir);
}

/* Rewrite file seq's header as version v, with every check recomputed: an
 * intact header from another version, not damage. */
static void set_version(const char *dir, uint32_t seq, uint32_t v) {
  char p[NET_TRACE_PATH_MAX];
  path_of(p, dir, seq);
  size_t len;
  uint8_t *b = slurp(p, &len);
  for (int i = 0; i < 4; i++)
    b[8 + i] = (uint8_t)(v >> (8 * i));
  uint32_t c = net_trace_crc32c(0, b, 16);
  for (int i = 0; i < 4; i++)
    b[16 + i] = (uint8_t)(c >> (8 * i));
  size_t hl = header_len();
  c = net_trace_crc32c(0, b, hl - 4);
  for (int i = 0; i < 4; i++)
    b[hl - 4 + i] = (uint8_t)(c >> (8 * i));
  spit(p, b, len);
  free(b);
}

Test(net_trace, wrong_version_names_both_versions) {
  char *dir = make_dir();
  net_trace_writer_config_t cfg = cfg_of(NET_TRACE_FILE_BYTES_MIN, 0);
  cr_assert_eq(write_trace(dir, 1000, size_small, &cfg, NULL), 0);
  set_version(dir, 2, 7); /* a later file: found by next */
  static seen_t s;
  read_trace(dir, size_small, &s);
  cr_assert_eq(s.rc, RT_EPROTO);
  cr_assert_eq(s.fault, NET_TRACE_FAULT_BAD_VERSION);
  cr_assert(strstr(s.err, "trace version 7, this build reads version 1"), "%s",
            s.err);
  set_version(dir, 1, 2); /* the first: found by open */
  read_trace(dir, size_small, &s);
  cr_assert_eq(s.open_rc, RT_EPROTO);
  cr_assert(strstr(s.err, "trace version 2, this build reads version 1"), "%s",
            s.err);
  remove_dir(dir);
}

/* A NUL in the config, under valid checks: the format has none (the writer
 * takes a C string) and the replay reads the config as one, so it would run
 * with the flags before the NUL. fuzz_trace found the reader taking it. */
Test(net_trace, a_config_holding_a_nul_is_damage) {
  char *dir = make_dir();
  net_trace_writer_config_t cfg = cfg_of(NET_TRACE_FILE_BYTES_MIN, 0);
  cr_assert_eq(write_trace(dir, 10, size_small, &cfg, NULL), 0);
  char p[NET_TRACE_PATH_MAX];
  path_of(p, dir, 1);
  size_t len;
  uint8_t *b = slurp(p, &len);
  b[56 + 6] = 0; /* "--port\0..." */
  size_t hl = header_len();
  uint32_t c = net_trace_crc32c(0, b, hl - 4);
  for (int i = 0; i < 4; i++)
    b[hl - 4 + i] = (uint8_t)(c >> (8 * i));
  spit(p, b, len);
  free(b);
  net_trace_reader_t *r;
  char err[ERR_CAP];
  cr_assert_eq(net_trace_reader_open(dir, &r, err, sizeof(err)), RT_EPROTO);
  cr_assert(strstr(err, "config holds a NUL") != NULL, "%s", err);
  remove_dir(dir);
}

Test(net_trace, a_missing_middle_file_is_named) {
  char *dir = make_dir();
  net_trace_writer_config_t cfg = cfg_of(NET_TRACE_FILE_BYTES_MIN, 0);
  cr_assert_eq(write_trace(dir, 2000, size_small, &cfg, NULL), 0);
  char p2[NET_TRACE_PATH_MAX];
  path_of(p2, dir, 2);
  static seen_t clean;
  read_trace(dir, size_small, &clean);
  cr_assert_eq(unlink(p2), 0);
  static seen_t s;
  read_trace(dir, size_small, &s);
  cr_assert_eq(s.rc, RT_ENOTFOUND);
  cr_assert_eq(s.fault, NET_TRACE_FAULT_MISSING_FILE);
  char want[NET_TRACE_PATH_MAX + 32];
  snprintf(want, sizeof(want), "missing file %s", p2);
  cr_assert(strstr(s.err, want) != NULL, "%s", s.err);
  cr_assert_eq(s.n, whole_before(&clean, 2, 0)); /* all of file 1 */
  remove_dir(dir);
}

Test(net_trace, a_file_from_another_recording_or_out_of_place_is_caught) {
  char *a = make_dir(), *b = make_dir();
  net_trace_writer_config_t cfg = cfg_of(NET_TRACE_FILE_BYTES_MIN, 0);
  cr_assert_eq(write_trace(a, 2000, size_small, &cfg, NULL), 0);
  /* b: same records, another seed. */
  net_trace_header_t h = test_header();
  h.seed ^= 1;
  net_trace_writer_t *w;
  char err[ERR_CAP];
  cr_assert_eq(net_trace_writer_open_ex(b, &h, &cfg, &w, err, sizeof(err)), 0);
  uint8_t p[512];
  for (uint32_t i = 0; i < 2000; i++) {
    size_t n = payload_of(i, size_small(i), p, sizeof(p));
    while (net_trace_append(w, type_of(i), p, n) == RT_EFULL)
      net_trace_flush(w);
  }
  cr_assert_eq(net_trace_writer_close(w, NULL, err, sizeof(err)), 0);

  char pa2[NET_TRACE_PATH_MAX], pb2[NET_TRACE_PATH_MAX],
      pa3[NET_TRACE_PATH_MAX];
  path_of(pa2, a, 2);
  path_of(pb2, b, 2);
  path_of(pa3, a, 3);
  size_t len2, len3;
  uint8_t *a2 = slurp(pa2, &len2), *b2 = slurp(pb2, &len3);
  spit(pa2, b2, len3);
  static seen_t s;
  read_trace(a, size_small, &s);
  cr_assert_eq(s.fault, NET_TRACE_FAULT_SEQUENCE, "%s", s.err);
  cr_assert(strstr(s.err, "another recording") != NULL, "%s", s.err);
  free(b2);

  /* File 3 copied over file 2. */
  uint8_t *a3 = slurp(pa3, &len3);
  spit(pa2, a3, len3);
  read_trace(a, size_small, &s);
  cr_assert_eq(s.fault, NET_TRACE_FAULT_SEQUENCE, "%s", s.err);
  cr_assert(strstr(s.err, "holds file 3") != NULL, "%s", s.err);
  /* Opened by a name that disagrees with its header, too. */
  read_trace(pa2, size_small, &s);
  cr_assert_eq(s.open_rc, RT_EPROTO, "%s", s.err);
  free(a3);
  spit(pa2, a2, len2);
  free(a2);
  remove_dir(a);
  remove_dir(b);
}

Test(net_trace, a_missing_trace_is_not_found) {
  char *dir = make_dir();
  net_trace_reader_t *r;
  char err[ERR_CAP];
  cr_assert_eq(net_trace_reader_open(dir, &r, err, sizeof(err)), RT_ENOTFOUND);
  cr_assert(strstr(err, "missing file") != NULL, "%s", err);
  char nowhere[NET_TRACE_PATH_MAX];
  snprintf(nowhere, sizeof(nowhere), "%s/none/trace-000001.oct", dir);
  cr_assert_eq(net_trace_reader_open(nowhere, &r, err, sizeof(err)),
               RT_ENOTFOUND);
  remove_dir(dir);
}

/* ---- The writer: full buffers, lost records, errors ---------------------- */

typedef struct pipe_ctx {
  int fds[2];
} pipe_ctx_t;

/* Route file 1 into a pipe nobody reads yet: the writer thread blocks in
 * write() like on a stalled disk. */
static int open_pipe(void *ctx, const char *path, uint32_t seq) {
  (void)path;
  pipe_ctx_t *pc = ctx;
  return seq == 1 ? pc->fds[1] : -EIO;
}

typedef struct drain {
  int fd;
  uint8_t *buf;
  size_t len, cap;
} drain_t;

static void *drain_main(void *arg) {
  drain_t *d = arg;
  for (;;) {
    if (d->cap - d->len < 65536) {
      d->cap = d->cap * 2 + 65536;
      d->buf = realloc(d->buf, d->cap);
    }
    ssize_t n = read(d->fd, d->buf + d->len, d->cap - d->len);
    if (n <= 0)
      return NULL;
    d->len += (size_t)n;
  }
}

/* One append's outcome, to compare with what the reader sees. */
enum { APPENDED = 1, REFUSED = 2 };

Test(net_trace, a_full_buffer_refuses_counts_and_marks_the_gap) {
  pipe_ctx_t pc;
  cr_assert_eq(pipe(pc.fds), 0);
  char *dir = make_dir();
  net_trace_header_t h = test_header();
  net_trace_writer_config_t cfg = cfg_of(0, NET_TRACE_BUFFER_BYTES_MIN);
  cfg.open_file = open_pipe;
  cfg.open_ctx = &pc;
  net_trace_writer_t *w;
  char err[ERR_CAP];
  cr_assert_eq(net_trace_writer_open_ex(dir, &h, &cfg, &w, err, sizeof(err)), 0,
               "%s", err);
  enum { N = 4000 };
  static uint8_t outcome[N];
  uint8_t p[2048];
  uint32_t i = 0, refused = 0;
  uint64_t refused_bytes = 0;
  /* Phase 1: nobody drains the pipe. If append ever waited for the writer
   * thread (stuck in write), this loop would hang, not fail: append must
   * refuse instead. */
  for (; i < N && refused < 5; i++) {
    size_t n = payload_of(i, 600, p, sizeof(p));
    int rc = net_trace_append(w, type_of(i), p, n);
    cr_assert(rc == 0 || rc == RT_EFULL, "append: %s", rt_err_name(rc));
    outcome[i] = rc == 0 ? APPENDED : REFUSED;
    if (rc == RT_EFULL) {
      refused++;
      refused_bytes += n;
    }
  }
  cr_assert_eq(refused, 5, "the buffers never filled");
  net_trace_writer_stats_t st;
  net_trace_writer_stats(w, &st);
  cr_assert_eq(st.records_lost, 5);
  cr_assert_eq(st.bytes_lost, refused_bytes);

  /* Phase 2: drain; appends succeed again once the writer catches up. */
  drain_t d = {.fd = pc.fds[0]};
  pthread_t th;
  cr_assert_eq(pthread_create(&th, NULL, drain_main, &d), 0);
  uint32_t ok_after = 0;
  for (int tries = 0; i < N && ok_after < 50 && tries < 100000; tries++) {
    size_t n = payload_of(i, 600, p, sizeof(p));
    int rc = net_trace_append(w, type_of(i), p, n);
    if (rc == RT_EFULL) { /* the writer has not caught up yet */
      refused++;
      outcome[i] = REFUSED;
      i++;
      struct timespec ts = {0, 200000};
      nanosleep(&ts, NULL);
      continue;
    }
    cr_assert_eq(rc, 0);
    outcome[i++] = APPENDED;
    ok_after++;
  }
  cr_assert_eq(ok_after, 50);
  uint32_t total = i;
  cr_assert_eq(net_trace_writer_close(w, &st, err, sizeof(err)), 0, "%s", err);
  cr_assert_eq(st.records_lost, refused);
  cr_assert_eq(st.records_appended, total - refused);
  pthread_join(th, NULL);
  close(pc.fds[0]);

  /* What went through the pipe is a trace: check it record by record. */
  char p1[NET_TRACE_PATH_MAX];
  path_of(p1, dir, 1);
  unlink(p1);
  spit(p1, d.buf, d.len);
  free(d.buf);
  net_trace_reader_t *r;
  cr_assert_eq(net_trace_reader_open(dir, &r, err, sizeof(err)), 0, "%s", err);
  net_trace_record_t rec;
  uint32_t k = 0;
  uint64_t marks = 0;
  while (k < total) {
    uint32_t run = 0;
    uint64_t run_bytes = 0;
    while (k < total && outcome[k] == REFUSED) {
      run++;
      run_bytes += payload_of(k, 600, p, sizeof(p));
      k++;
    }
    cr_assert_eq(net_trace_next(r, &rec), 1, "%s", net_trace_reader_error(r));
    if (run > 0) {
      /* The gap is marked where it happened, with its size. */
      cr_assert_eq(rec.type, NET_TRACE_T_LOST, "record %u", k);
      net_trace_dec_t dd;
      net_trace_dec_init(&dd, rec.payload, rec.len);
      cr_assert_eq(net_trace_get_u64(&dd), run);
      cr_assert_eq(net_trace_get_u64(&dd), run_bytes);
      cr_assert_eq(net_trace_dec_finish(&dd), 0);
      marks += run;
      if (k == total)
        break;
      cr_assert_eq(net_trace_next(r, &rec), 1);
    }
    size_t n = payload_of(k, 600, p, sizeof(p));
    cr_assert_eq(rec.type, type_of(k));
    cr_assert_eq(rec.len, n);
    cr_assert_eq(memcmp(rec.payload, p, n), 0);
    k++;
  }
  cr_assert_eq(net_trace_next(r, &rec), 0, "%s", net_trace_reader_error(r));
  cr_assert_eq(marks, refused);
  cr_assert_eq(net_trace_reader_lost(r), refused);
  net_trace_reader_close(r);
  remove_dir(dir);
}

Test(net_trace, a_record_too_large_is_refused_and_marked_even_at_the_end) {
  char *dir = make_dir();
  net_trace_header_t h = test_header();
  net_trace_writer_config_t cfg = cfg_of(0, NET_TRACE_BUFFER_BYTES_MIN);
  net_trace_writer_t *w;
  char err[ERR_CAP];
  cr_assert_eq(net_trace_writer_open_ex(dir, &h, &cfg, &w, err, sizeof(err)),
               0);
  static uint8_t big[NET_TRACE_PAYLOAD_MAX + 1];
  cr_assert_eq(net_trace_append(w, NET_TRACE_T_READ, "a", 1), 0);
  /* Too large for this writer's 4 KiB buffers. */
  cr_assert_eq(net_trace_append(w, NET_TRACE_T_READ, big, 5000), RT_ELIMIT);
  cr_assert_eq(net_trace_append(w, NET_TRACE_T_READ, "b", 1), 0);
  /* Too large for any writer; and nothing after it but close. */
  cr_assert_eq(net_trace_append(w, NET_TRACE_T_READ, big, sizeof(big)),
               RT_ELIMIT);
  cr_assert_eq(net_trace_append(w, NET_TRACE_T_READ, big, sizeof(big)),
               RT_ELIMIT);
  net_trace_writer_stats_t st;
  cr_assert_eq(net_trace_writer_close(w, &st, err, sizeof(err)), 0);
  cr_assert_eq(st.records_lost, 3);

  net_trace_reader_t *r;
  cr_assert_eq(net_trace_reader_open(dir, &r, err, sizeof(err)), 0);
  net_trace_record_t rec;
  const uint8_t want_types[] = {NET_TRACE_T_READ, NET_TRACE_T_LOST,
                                NET_TRACE_T_READ, NET_TRACE_T_LOST};
  const uint64_t want_lost[] = {0, 1, 0, 2};
  for (size_t k = 0; k < 4; k++) {
    cr_assert_eq(net_trace_next(r, &rec), 1);
    cr_assert_eq(rec.type, want_types[k], "record %zu", k);
    if (rec.type == NET_TRACE_T_LOST) {
      net_trace_dec_t dd;
      net_trace_dec_init(&dd, rec.payload, rec.len);
      cr_assert_eq(net_trace_get_u64(&dd), want_lost[k]);
    }
  }
  cr_assert_eq(net_trace_next(r, &rec), 0, "%s", net_trace_reader_error(r));
  cr_assert_eq(net_trace_reader_lost(r), 3);
  net_trace_reader_close(r);
  remove_dir(dir);
}

static int open_dev_full(void *ctx, const char *path, uint32_t seq) {
  uint32_t full_from = *(const uint32_t *)ctx;
  if (seq < full_from) {
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    return fd >= 0 ? fd : -errno;
  }
  int fd = open("/dev/full", O_WRONLY | O_CLOEXEC);
  return fd >= 0 ? fd : -errno;
}

Test(net_trace, a_full_disk_is_an_error_never_a_crash) {
  char *dir = make_dir();
  net_trace_header_t h = test_header();
  uint32_t full_from = 1;
  net_trace_writer_config_t cfg = cfg_of(0, NET_TRACE_BUFFER_BYTES_MIN);
  cfg.open_file = open_dev_full;
  cfg.open_ctx = &full_from;
  net_trace_writer_t *w;
  char err[ERR_CAP];
  cr_assert_eq(net_trace_writer_open_ex(dir, &h, &cfg, &w, err, sizeof(err)), 0,
               "%s", err);
  /* The failure is found by the writer thread; append reports it once it
   * is known, and never blocks meanwhile. */
  uint8_t p[512] = {0};
  int rc = 0;
  for (int tries = 0; tries < 200000 && rc != RT_EIO; tries++) {
    rc = net_trace_append(w, NET_TRACE_T_READ, p, sizeof(p));
    cr_assert(rc == 0 || rc == RT_EFULL || rc == RT_EIO, "%s", rt_err_name(rc));
    net_trace_flush(w);
    if (tries % 64 == 63) {
      struct timespec ts = {0, 100000};
      nanosleep(&ts, NULL);
    }
  }
  cr_assert_eq(rc, RT_EIO);
  cr_assert_eq(net_trace_flush(w), RT_EIO);
  net_trace_writer_error(w, err, sizeof(err));
  cr_assert(strstr(err, "No space left on device") != NULL, "%s", err);
  net_trace_writer_stats_t st;
  cr_assert_eq(net_trace_writer_close(w, &st, err, sizeof(err)), RT_EIO);
  cr_assert_eq(st.os_errno, ENOSPC);
  cr_assert(strstr(err, "trace-000001.oct: write failed at byte 0") != NULL,
            "%s", err);
  remove_dir(dir);
}

Test(net_trace, a_disk_that_fills_after_a_rotation_leaves_a_readable_start) {
  char *dir = make_dir();
  uint32_t full_from = 2;
  net_trace_writer_config_t cfg = cfg_of(NET_TRACE_FILE_BYTES_MIN, 0);
  cfg.open_file = open_dev_full;
  cfg.open_ctx = &full_from;
  net_trace_header_t h = test_header();
  net_trace_writer_t *w;
  char err[ERR_CAP];
  cr_assert_eq(net_trace_writer_open_ex(dir, &h, &cfg, &w, err, sizeof(err)),
               0);
  uint8_t p[512];
  for (uint32_t i = 0; i < 2000; i++) {
    size_t n = payload_of(i, size_small(i), p, sizeof(p));
    int rc = net_trace_append(w, type_of(i), p, n);
    cr_assert(rc == 0 || rc == RT_EFULL || rc == RT_EIO);
  }
  net_trace_writer_stats_t st;
  cr_assert_eq(net_trace_writer_close(w, &st, err, sizeof(err)), RT_EIO);
  cr_assert(strstr(err, "trace-000002.oct: write failed") != NULL, "%s", err);
  cr_assert_eq(st.os_errno, ENOSPC);
  /* File 1 is whole and says the recording goes on: file 2 is missing. */
  static seen_t s;
  read_trace(dir, size_small, &s);
  cr_assert_eq(s.fault, NET_TRACE_FAULT_MISSING_FILE, "%s", s.err);
  cr_assert_gt(s.n, 0);
  remove_dir(dir);
}

Test(net_trace, an_unwritable_directory_fails_at_open) {
  net_trace_header_t h = test_header();
  net_trace_writer_t *w;
  char err[ERR_CAP];
  /* Under a regular file. */
  char *dir = make_dir();
  char f[256], sub[NET_TRACE_PATH_MAX];
  snprintf(f, sizeof(f), "%s/plain", dir);
  spit(f, (const uint8_t *)"x", 1);
  snprintf(sub, sizeof(sub), "%s/trace", f);
  cr_assert_eq(net_trace_writer_open(sub, &h, 0, &w, err, sizeof(err)), RT_EIO);
  cr_assert(strstr(err, "Not a directory") != NULL, "%s", err);
  /* A read-only place (sysfs refuses new files even to root). */
  struct stat st;
  if (stat("/sys", &st) == 0) {
    cr_assert_eq(net_trace_writer_open("/sys", &h, 0, &w, err, sizeof(err)),
                 RT_EIO);
    cr_assert(strstr(err, "cannot create") != NULL, "%s", err);
  }
  remove_dir(dir);
}

Test(net_trace, a_directory_that_holds_a_trace_is_refused) {
  char *dir = make_dir();
  net_trace_writer_config_t cfg = cfg_of(0, 0);
  cr_assert_eq(write_trace(dir, 3, size_small, &cfg, NULL), 0);
  net_trace_header_t h = test_header();
  net_trace_writer_t *w;
  char err[ERR_CAP];
  cr_assert_eq(net_trace_writer_open(dir, &h, 0, &w, err, sizeof(err)),
               RT_EINVAL);
  cr_assert(strstr(err, "already holds a trace") != NULL, "%s", err);
  static seen_t s; /* and the old one is untouched */
  read_trace(dir, size_small, &s);
  cr_assert_eq(s.rc, 0);
  cr_assert_eq(s.n, 3);
  remove_dir(dir);
}

/* An old trace's later file alone (its first was deleted) would make the
 * first rotation fail (O_EXCL) long after the start: refused up front. */
Test(net_trace, a_directory_with_a_later_trace_file_is_refused) {
  char *dir = make_dir();
  char f[NET_TRACE_PATH_MAX];
  snprintf(f, sizeof(f), "%s/trace-000002.oct", dir);
  spit(f, (const uint8_t *)"x", 1);
  net_trace_header_t h = test_header();
  net_trace_writer_t *w;
  char err[ERR_CAP];
  cr_assert_eq(net_trace_writer_open(dir, &h, 0, &w, err, sizeof(err)),
               RT_EINVAL);
  cr_assert(strstr(err, "trace-000002.oct: the directory already holds a "
                        "trace") != NULL,
            "%s", err);
  remove_dir(dir);
}

Test(net_trace, bad_arguments_are_refused_with_a_reason) {
  char *dir = make_dir();
  net_trace_header_t h = test_header();
  net_trace_writer_t *w;
  char err[ERR_CAP];
  static char long_config[NET_TRACE_CONFIG_MAX + 2];
  memset(long_config, 'x', NET_TRACE_CONFIG_MAX + 1);
  h.config = long_config;
  cr_assert_eq(net_trace_writer_open(dir, &h, 0, &w, err, sizeof(err)),
               RT_EINVAL);
  cr_assert(strstr(err, "config") != NULL, "%s", err);
  long_config[NET_TRACE_CONFIG_MAX] = '\0'; /* exactly at the limit: fine */
  cr_assert_eq(net_trace_writer_open(dir, &h, 0, &w, err, sizeof(err)), 0, "%s",
               err);
  cr_assert_eq(net_trace_writer_close(w, NULL, err, sizeof(err)), 0);
  net_trace_reader_t *r;
  cr_assert_eq(net_trace_reader_open(dir, &r, err, sizeof(err)), 0, "%s", err);
  cr_assert_eq(net_trace_reader_header(r)->config_len, NET_TRACE_CONFIG_MAX);
  net_trace_reader_close(r);
  remove_dir(dir);

  dir = make_dir();
  h.config = "\xff\xfe not UTF-8";
  cr_assert_eq(net_trace_writer_open(dir, &h, 0, &w, err, sizeof(err)),
               RT_EINVAL);
  h = test_header();
  cr_assert_eq(net_trace_writer_open(dir, &h, NET_TRACE_FILE_BYTES_MIN - 1, &w,
                                     err, sizeof(err)),
               RT_EINVAL);
  cr_assert(strstr(err, "file size") != NULL, "%s", err);
  net_trace_writer_config_t cfg = cfg_of(0, NET_TRACE_BUFFER_BYTES_MIN - 1);
  cr_assert_eq(net_trace_writer_open_ex(dir, &h, &cfg, &w, err, sizeof(err)),
               RT_EINVAL);
  cfg = cfg_of(0, NET_TRACE_BUFFER_BYTES_MAX + 1);
  cr_assert_eq(net_trace_writer_open_ex(dir, &h, &cfg, &w, err, sizeof(err)),
               RT_EINVAL);
  remove_dir(dir);
}

static int open_dev_null(void *ctx, const char *path, uint32_t seq) {
  (void)ctx;
  (void)path;
  (void)seq;
  int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
  return fd >= 0 ? fd : -errno;
}

Test(net_trace, appending_a_framing_type_is_a_programmer_error,
     .signal = SIGABRT) {
  char *dir = make_dir();
  net_trace_header_t h = test_header();
  net_trace_writer_config_t cfg = cfg_of(0, 0);
  cfg.open_file = open_dev_null; /* nothing left behind by the abort */
  net_trace_writer_t *w;
  char err[ERR_CAP];
  cr_assert_eq(net_trace_writer_open_ex(dir, &h, &cfg, &w, err, sizeof(err)),
               0);
  remove_dir(dir);
  net_trace_append(w, NET_TRACE_T_END, NULL, 0);
}
