/* test_net_trace.c: the trace format (net/net_trace.h), its checks and
 * fields; records of every type written and read back; rotation from file
 * to file. The tests are in test_net_trace*.c by theme, one binary
 * (net_trace): _damage has the reader on damaged traces, _writer the
 * writer's full buffers and errors; net_trace_fixture.h what they share.
 */
#include "net_trace_fixture.h"

#include <criterion/criterion.h>
#include <inttypes.h>
#include <string.h>

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
  cr_assert_str_eq(net_trace_type_name(NET_TRACE_T_CONNECT), "CONNECT");
  cr_assert_eq(NET_TRACE_T_CONNECT, 26, "a recorded type keeps its number");
  cr_assert_str_eq(net_trace_type_name(NET_TRACE_T_END), "END");
  cr_assert_str_eq(net_trace_type_name(99), "?");
}

/* ---- Round trip ---------------------------------------------------------- */

static size_t size_mixed(uint32_t i) {
  if (i % 997 == 5)
    return 100000; /* a large storage result now and then */
  return (i * 37u) % 300u;
}

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
