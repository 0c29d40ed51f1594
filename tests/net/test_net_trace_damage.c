/* test_net_trace_damage.c: the trace reader on damaged traces: every
 * flipped byte and every cut caught, named and never a wrong record;
 * wrong magic or version, missing and misplaced files. Part of the
 * net_trace tests (test_net_trace.c; net_trace_fixture.h).
 */
#include "net_trace_fixture.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- Damage -------------------------------------------------------------- */

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
