/* net_trace_reader.c: the trace reader (net_trace_reader.h; the format is
 * net_trace.h).
 *
 * Plain blocking reads into one buffer that holds the largest
 * record; every check named in the spec, in the order that lets it name
 * the fault: a damaged length is reported as damage (the head check), a
 * cut-short file as truncation, a newer format by its number.
 */
#include "net_trace_reader.h"

#include "net_trace_int.h"
#include "rt_assert.h"
#include "rt_utf8.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* What the reader asks of read() beyond one record: amortises the calls. */
#define NET_TRACE_READ_CHUNK (64u << 10)
#define NET_TRACE_READ_BUF                                                     \
  (NET_TRACE_RECORD_OVERHEAD + NET_TRACE_PAYLOAD_MAX + NET_TRACE_READ_CHUNK)

/* ---- Reader -------------------------------------------------------------- */

struct net_trace_reader {
  char dir[NET_TRACE_DIR_MAX];
  char path[NET_TRACE_PATH_MAX]; /* the file being read */
  int fd;
  uint32_t seq;        /* its number; 0 while unknown (a file not named so) */
  bool from_start;     /* began at file 1: LOST totals can be checked */
  uint32_t first_file; /* the file it began with */
  net_trace_header_t hdr;
  char config[NET_TRACE_CONFIG_MAX + 1];
  char config_next[NET_TRACE_CONFIG_MAX + 1];
  uint8_t *buf; /* cap bytes: grows to the largest record and a chunk */
  size_t cap;
  size_t start, end;
  bool eof;
  uint64_t off;   /* file offset of buf[start] */
  uint64_t index; /* the next record's */
  uint64_t lost;
  bool done;
  int err;
  net_trace_fault_t fault;
  char msg[NET_TRACE_ERR_MAX];
};

static int fault_code(net_trace_fault_t f) {
  switch (f) {
  case NET_TRACE_FAULT_NONE: return 0;
  case NET_TRACE_FAULT_TRUNCATED: return RT_EOF;
  case NET_TRACE_FAULT_MISSING_FILE: return RT_ENOTFOUND;
  case NET_TRACE_FAULT_IO: return RT_EIO;
  default: return RT_EPROTO;
  }
}

static int reader_fail(net_trace_reader_t *r, net_trace_fault_t fault,
                       const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int reader_fail(net_trace_reader_t *r, net_trace_fault_t fault,
                       const char *fmt, ...) {
  if (r->err != 0)
    return r->err; /* sticky: the first fault is the one to report */
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(r->msg, sizeof(r->msg), fmt, ap);
  va_end(ap);
  r->fault = fault;
  r->err = fault_code(fault);
  return r->err;
}

/* The file ends too early. The last file of a crashed recording does; a
 * file with a successor cannot (the writer syncs a file before it creates
 * the next), so then it is damage. */
static int reader_truncated(net_trace_reader_t *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int reader_truncated(net_trace_reader_t *r, const char *fmt, ...) {
  char what[NET_TRACE_ERR_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof(what), fmt, ap);
  va_end(ap);
  char next[NET_TRACE_PATH_MAX];
  struct stat st;
  if (r->seq > 0 && r->seq < NET_TRACE_FILES_MAX &&
      net_trace__file_path(next, r->dir, r->seq + 1) && stat(next, &st) == 0)
    return reader_fail(r, NET_TRACE_FAULT_CORRUPT,
                       "%s; yet %s follows, so this file was damaged, not cut "
                       "short by a crash",
                       what, next);
  return reader_fail(r, NET_TRACE_FAULT_TRUNCATED, "%s", what);
}

/* Room for `want` bytes and a chunk after them, at most NET_TRACE_READ_BUF.
 * The buffer starts at one chunk, which holds any header and most records:
 * a small trace is read with 64 KiB, not with the megabyte its largest
 * possible record would need (a fuzzer opens thousands a second). */
static int reader_grow(net_trace_reader_t *r, size_t want) {
  size_t cap = want + NET_TRACE_READ_CHUNK;
  if (cap > NET_TRACE_READ_BUF)
    cap = NET_TRACE_READ_BUF;
  uint8_t *grown = realloc(r->buf, cap);
  if (grown == NULL)
    return reader_fail(r, NET_TRACE_FAULT_IO,
                       "%s: out of memory for a record of %zu bytes", r->path,
                       want);
  r->buf = grown;
  r->cap = cap;
  return 0;
}

/* Make `want` bytes available at buf[start] if the file has them. Returns
 * the bytes available (fewer than want only at the end of the file), or a
 * negative error. Bounded: each read adds bytes or reaches the end. */
static int64_t reader_fill(net_trace_reader_t *r, size_t want) {
  RT_ASSERT(want <= NET_TRACE_READ_BUF);
  if (r->end - r->start < want && !r->eof) {
    if (r->start > 0) {
      memmove(r->buf, r->buf + r->start, r->end - r->start);
      r->end -= r->start;
      r->start = 0;
    }
    if (want > r->cap && reader_grow(r, want) < 0)
      return r->err;
    while (r->end < want && !r->eof) {
      ssize_t n = read(r->fd, r->buf + r->end, r->cap - r->end);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return reader_fail(r, NET_TRACE_FAULT_IO,
                           "%s: read failed at byte %" PRIu64 ": %s", r->path,
                           r->off + (r->end - r->start), strerror(errno));
      if (n == 0)
        r->eof = true;
      r->end += (size_t)n;
    }
  }
  return (int64_t)(r->end - r->start);
}

static void reader_consume(net_trace_reader_t *r, size_t n) {
  RT_ASSERT(n <= r->end - r->start);
  r->start += n;
  r->off += n;
}

/* Open r->path as the current file. */
static int reader_open_file(net_trace_reader_t *r, const char *why) {
  if (r->fd >= 0)
    close(r->fd);
  r->start = r->end = 0;
  r->eof = false;
  r->off = 0;
  r->fd = open(r->path, O_RDONLY | O_CLOEXEC);
  if (r->fd >= 0)
    return 0;
  if (errno == ENOENT)
    return reader_fail(r, NET_TRACE_FAULT_MISSING_FILE, "missing file %s%s",
                       r->path, why);
  return reader_fail(r, NET_TRACE_FAULT_IO, "%s: cannot open: %s", r->path,
                     strerror(errno));
}

/* The header's first 20 bytes, which keep their shape in every version
 * (net_trace.h): magic, version, length and their check, in the order that
 * names the fault. 0 with the header's whole length in *hlen, or a
 * negative error. */
static int reader_read_header_prefix(net_trace_reader_t *r, uint32_t *hlen) {
  int64_t got = reader_fill(r, 20);
  if (got < 0)
    return (int)got;
  size_t avail = (size_t)got;
  const uint8_t *b = r->buf + r->start;
  if (memcmp(b, NET_TRACE_MAGIC, avail < 8 ? avail : 8) != 0)
    return reader_fail(
        r, NET_TRACE_FAULT_BAD_MAGIC,
        "%s: not a trace file (bad magic: it does not begin with "
        "\"OCTRACE\")",
        r->path);
  if (avail == 0)
    return reader_truncated(r,
                            "%s: truncated: the file is empty (the recording "
                            "stopped before its header)",
                            r->path);
  if (avail < 20)
    return reader_truncated(r,
                            "%s: truncated in the header (%zu bytes; a header "
                            "has at least %u)",
                            r->path, avail, NET_TRACE_HEADER_FIXED);
  if (net_trace__get_le(b + 16, 4) != net_trace_crc32c(0, b, 16))
    return reader_fail(
        r, NET_TRACE_FAULT_CORRUPT,
        "%s: header damaged: the check of its first 16 bytes does "
        "not match",
        r->path);
  uint32_t version = (uint32_t)net_trace__get_le(b + 8, 4);
  if (version != NET_TRACE_VERSION)
    return reader_fail(r, NET_TRACE_FAULT_BAD_VERSION,
                       "%s: trace version %" PRIu32
                       ", this build reads version %u",
                       r->path, version, NET_TRACE_VERSION);
  uint32_t len = (uint32_t)net_trace__get_le(b + 12, 4);
  if (len < NET_TRACE_HEADER_FIXED || len > NET_TRACE_HEADER_MAX)
    return reader_fail(r, NET_TRACE_FAULT_CORRUPT,
                       "%s: header length %" PRIu32 " is not within [%u, %u]",
                       r->path, len, NET_TRACE_HEADER_FIXED,
                       NET_TRACE_HEADER_MAX);
  *hlen = len;
  return 0;
}

/* Read and check the current file's header (at its start). */
static int reader_read_header(net_trace_reader_t *r, net_trace_header_t *h,
                              char *config, uint32_t *seq,
                              uint64_t *first_record) {
  uint32_t hlen = 0;
  int rc = reader_read_header_prefix(r, &hlen);
  if (rc != 0)
    return rc;
  int64_t got = reader_fill(r, hlen);
  if (got < 0)
    return (int)got;
  if ((size_t)got < hlen)
    return reader_truncated(
        r, "%s: truncated in the header (expected %" PRIu32 " bytes, %zu left)",
        r->path, hlen, (size_t)got);
  const uint8_t *b = r->buf + r->start; /* reader_fill may have moved it */
  if (net_trace__get_le(b + hlen - 4, 4) != net_trace_crc32c(0, b, hlen - 4))
    return reader_fail(r, NET_TRACE_FAULT_CORRUPT,
                       "%s: header damaged: its checksum does not match",
                       r->path);
  uint32_t config_len = (uint32_t)net_trace__get_le(b + 52, 4);
  if (config_len != hlen - NET_TRACE_HEADER_FIXED)
    return reader_fail(r, NET_TRACE_FAULT_CORRUPT,
                       "%s: header damaged: config length %" PRIu32
                       " disagrees with header length %" PRIu32,
                       r->path, config_len, hlen);
  if (!rt_utf8_valid(b + 56, config_len))
    return reader_fail(r, NET_TRACE_FAULT_CORRUPT,
                       "%s: header damaged: its config is not UTF-8", r->path);
  /* The format has no NUL in a config (the writer takes a C string), and
   * the reader hands it on as one: a NUL would cut the flags a replay runs
   * with short of the config_len bytes the checks covered. */
  if (memchr(b + 56, '\0', config_len) != NULL)
    return reader_fail(r, NET_TRACE_FAULT_CORRUPT,
                       "%s: header damaged: its config holds a NUL byte",
                       r->path);
  net_trace__header_decode(b, h, config, seq, first_record);
  reader_consume(r, hlen);
  return 0;
}

/* NEXT_FILE was read: move to the next file and check that it continues
 * this recording where the last one stopped. */
static int reader_next_file(net_trace_reader_t *r) {
  if (r->seq == 0 || r->seq >= NET_TRACE_FILES_MAX)
    return reader_fail(
        r, NET_TRACE_FAULT_CORRUPT,
        "%s: continues in a file that cannot exist (file %" PRIu32
        " of at most %u)",
        r->path, r->seq, NET_TRACE_FILES_MAX);
  char why[NET_TRACE_PATH_MAX + 32];
  snprintf(why, sizeof(why), " (%s continues there)", r->path);
  r->seq++;
  if (!net_trace__file_path(r->path, r->dir, r->seq))
    return reader_fail(r, NET_TRACE_FAULT_IO, "%s: path too long", r->dir);
  int rc = reader_open_file(r, why);
  if (rc != 0)
    return rc;
  net_trace_header_t h;
  uint32_t seq;
  uint64_t first;
  rc = reader_read_header(r, &h, r->config_next, &seq, &first);
  if (rc != 0)
    return rc;
  if (seq != r->seq)
    return reader_fail(r, NET_TRACE_FAULT_SEQUENCE,
                       "%s: holds file %" PRIu32
                       " of its recording, not file %" PRIu32,
                       r->path, seq, r->seq);
  if (first != r->index)
    return reader_fail(r, NET_TRACE_FAULT_SEQUENCE,
                       "%s: begins at record %" PRIu64
                       ", but the file before it ended before record %" PRIu64,
                       r->path, first, r->index);
  if (h.flags != r->hdr.flags || h.seed != r->hdr.seed ||
      h.epoch_unix_ns != r->hdr.epoch_unix_ns ||
      h.config_len != r->hdr.config_len ||
      memcmp(h.config, r->hdr.config, h.config_len) != 0)
    return reader_fail(
        r, NET_TRACE_FAULT_SEQUENCE,
        "%s: belongs to another recording (its seed, flags, clock "
        "or config differ from the first file's)",
        r->path);
  return 0;
}

/* After a closing record nothing may follow in its file. */
static int reader_expect_file_end(net_trace_reader_t *r, const char *what,
                                  uint64_t at) {
  int64_t got = reader_fill(r, 1);
  if (got < 0)
    return (int)got;
  if (got > 0)
    return reader_fail(r, NET_TRACE_FAULT_CORRUPT,
                       "%s: bytes follow the %s record at byte %" PRIu64,
                       r->path, what, at);
  return 0;
}

/* One framing record's u64 fields. */
static bool decode_fields(const uint8_t *p, size_t len, uint64_t *a,
                          uint64_t *b, bool two) {
  net_trace_dec_t d;
  net_trace_dec_init(&d, p, len);
  *a = net_trace_get_u64(&d);
  *b = two ? net_trace_get_u64(&d) : 0;
  return net_trace_dec_finish(&d) == 0;
}

/* Read the next record's bytes and check its framing: the head check, a
 * type this version defines, the length limit and the CRC-32C, in the order
 * that names the fault (a damaged length is damage, not a truncation). 0
 * with *rec (its payload valid until the next reader_fill), or a negative
 * error. */
static int reader_read_checked(net_trace_reader_t *r, net_trace_record_t *rec) {
  uint64_t at = r->off;
  uint64_t idx = r->index;
  int64_t got = reader_fill(r, NET_TRACE_RECORD_HEAD);
  if (got < 0)
    return (int)got;
  if (got == 0)
    return reader_truncated(r,
                            "%s: truncated at byte %" PRIu64
                            ", before record %" PRIu64
                            ": no END record (the recording stopped without "
                            "closing: it crashed, or is still being written)",
                            r->path, at, idx);
  if (got < NET_TRACE_RECORD_HEAD)
    return reader_truncated(
        r,
        "%s: truncated in the middle of record %" PRIu64 " at byte %" PRIu64
        " (expected at least %u bytes, %zu left)",
        r->path, idx, at, NET_TRACE_RECORD_OVERHEAD, (size_t)got);
  const uint8_t *b = r->buf + r->start;
  if (net_trace__head_check(b) != b[4])
    return reader_fail(r, NET_TRACE_FAULT_CORRUPT,
                       "%s: record %" PRIu64 " at byte %" PRIu64
                       ": head check mismatch (its type or length is damaged)",
                       r->path, idx, at);
  uint8_t type = b[0];
  size_t len = (size_t)net_trace__get_le(b + 1, 3);
  if (!net_trace__type_is_user(type) && type != NET_TRACE_T_END &&
      type != NET_TRACE_T_NEXT_FILE && type != NET_TRACE_T_LOST)
    return reader_fail(r, NET_TRACE_FAULT_CORRUPT,
                       "%s: record %" PRIu64 " at byte %" PRIu64
                       ": type %u is not defined in trace version %u",
                       r->path, idx, at, type, NET_TRACE_VERSION);
  if (len > NET_TRACE_PAYLOAD_MAX)
    return reader_fail(r, NET_TRACE_FAULT_CORRUPT,
                       "%s: record %" PRIu64 " at byte %" PRIu64
                       ": length %zu exceeds the limit %u",
                       r->path, idx, at, len, NET_TRACE_PAYLOAD_MAX);
  size_t size = NET_TRACE_RECORD_OVERHEAD + len;
  got = reader_fill(r, size);
  if (got < 0)
    return (int)got;
  if ((size_t)got < size)
    return reader_truncated(r,
                            "%s: truncated in the middle of record %" PRIu64
                            " at byte %" PRIu64
                            " (expected %zu bytes, %zu left)",
                            r->path, idx, at, size, (size_t)got);
  b = r->buf + r->start;
  uint32_t stored =
      (uint32_t)net_trace__get_le(b + NET_TRACE_RECORD_HEAD + len, 4);
  uint32_t computed = net_trace_crc32c(0, b, NET_TRACE_RECORD_HEAD + len);
  if (stored != computed)
    return reader_fail(r, NET_TRACE_FAULT_CORRUPT,
                       "%s: record %" PRIu64 " at byte %" PRIu64
                       ": checksum mismatch (stored %08" PRIx32
                       ", computed %08" PRIx32 ")",
                       r->path, idx, at, stored, computed);
  const uint8_t *payload = b + NET_TRACE_RECORD_HEAD;
  reader_consume(r, size); /* payload stays valid until the next reader_fill */
  r->index++;
  rec->type = type;
  rec->len = (uint32_t)len;
  rec->payload = payload;
  rec->index = idx;
  rec->file_seq = r->seq;
  rec->offset = at;
  return 0;
}

/* Act on a record just read if it is a framing one: NEXT_FILE moves to the
 * next file, END ends the recording, LOST adds to the count of lost
 * records. 1 (a record for the caller: an input, an output or LOST), 0
 * (END), 2 (moved to the next file), or a negative error. */
static int reader_follow_framing(net_trace_reader_t *r,
                                 const net_trace_record_t *rec) {
  uint64_t idx = rec->index;
  uint64_t at = rec->offset;
  uint64_t f1 = 0, f2 = 0;
  int rc = 0;
  switch (rec->type) {
  case NET_TRACE_T_NEXT_FILE:
    if (!decode_fields(rec->payload, rec->len, &f1, &f2, false) ||
        f1 != r->index)
      return reader_fail(r, NET_TRACE_FAULT_CORRUPT,
                         "%s: record %" PRIu64 " at byte %" PRIu64
                         ": NEXT_FILE does not name record %" PRIu64
                         " as the next",
                         r->path, idx, at, r->index);
    rc = reader_expect_file_end(r, "NEXT_FILE", at);
    if (rc == 0)
      rc = reader_next_file(r);
    return rc != 0 ? rc : 2;
  case NET_TRACE_T_END:
    if (!decode_fields(rec->payload, rec->len, &f1, &f2, true) || f1 != idx)
      return reader_fail(r, NET_TRACE_FAULT_CORRUPT,
                         "%s: record %" PRIu64 " at byte %" PRIu64
                         ": END does not count %" PRIu64 " records before it",
                         r->path, idx, at, idx);
    if (r->from_start && f2 != r->lost)
      return reader_fail(r, NET_TRACE_FAULT_CORRUPT,
                         "%s: END says %" PRIu64
                         " records were lost, the LOST records say %" PRIu64,
                         r->path, f2, r->lost);
    rc = reader_expect_file_end(r, "END", at);
    if (rc != 0)
      return rc;
    r->done = true;
    return 0;
  case NET_TRACE_T_LOST:
    if (!decode_fields(rec->payload, rec->len, &f1, &f2, true) || f1 == 0)
      return reader_fail(r, NET_TRACE_FAULT_CORRUPT,
                         "%s: record %" PRIu64 " at byte %" PRIu64
                         ": a LOST record that counts nothing",
                         r->path, idx, at);
    r->lost += f1;
    break;
  default: break;
  }
  return 1;
}

/* Read one record: 1 (a record for the caller), 0 (END), 2 (moved to the
 * next file), or a negative error. rec is set only with 1. */
static int reader_record(net_trace_reader_t *r, net_trace_record_t *rec) {
  net_trace_record_t got;
  int rc = reader_read_checked(r, &got);
  if (rc != 0)
    return rc;
  rc = reader_follow_framing(r, &got);
  if (rc == 1)
    *rec = got;
  return rc;
}

int net_trace_next(net_trace_reader_t *r, net_trace_record_t *rec) {
  RT_ASSERT(r != NULL);
  RT_ASSERT(rec != NULL);
  if (r->err != 0)
    return r->err;
  if (r->done)
    return 0;
  /* Bounded: each pass returns, or moves to a later file (at most
   * NET_TRACE_FILES_MAX of them). */
  for (uint32_t pass = 0; pass <= NET_TRACE_FILES_MAX; pass++) {
    int rc = reader_record(r, rec);
    if (rc != 2)
      return rc;
  }
  return reader_fail(r, NET_TRACE_FAULT_CORRUPT, "%s: too many files", r->dir);
}

/* "trace-NNNNNN.oct" as a file's last path component: N, else 0. */
static uint32_t name_seq(const char *base) {
  const char *pre = "trace-";
  if (strlen(base) != 16 || strncmp(base, pre, 6) != 0 ||
      strcmp(base + 12, ".oct") != 0)
    return 0;
  uint32_t n = 0;
  for (size_t i = 6; i < 12; i++) {
    if (base[i] < '0' || base[i] > '9')
      return 0;
    n = n * 10 + (uint32_t)(base[i] - '0');
  }
  return n;
}

/* Where to start: a directory's file 1, or the file named. */
static int reader_locate(net_trace_reader_t *r, const char *path,
                         uint32_t *expect_seq) {
  struct stat st;
  if (strlen(path) >= NET_TRACE_DIR_MAX)
    return reader_fail(r, NET_TRACE_FAULT_IO, "trace path too long");
  if (stat(path, &st) != 0) {
    if (errno == ENOENT)
      return reader_fail(r, NET_TRACE_FAULT_MISSING_FILE,
                         "%s: no such file or "
                         "directory",
                         path);
    return reader_fail(r, NET_TRACE_FAULT_IO, "%s: %s", path, strerror(errno));
  }
  if (S_ISDIR(st.st_mode)) {
    snprintf(r->dir, sizeof(r->dir), "%s", path);
    *expect_seq = 1;
    net_trace__file_path(r->path, r->dir, 1);
    return 0;
  }
  snprintf(r->path, sizeof(r->path), "%s", path);
  const char *slash = strrchr(path, '/');
  if (slash == NULL) {
    snprintf(r->dir, sizeof(r->dir), ".");
  } else if (slash == path) {
    snprintf(r->dir, sizeof(r->dir), "/");
  } else {
    snprintf(r->dir, sizeof(r->dir), "%.*s", (int)(slash - path), path);
  }
  *expect_seq = name_seq(slash == NULL ? path : slash + 1);
  return 0;
}

int net_trace_reader_open(const char *path, net_trace_reader_t **out, char *err,
                          size_t err_cap) {
  RT_ASSERT(path != NULL);
  RT_ASSERT(out != NULL);
  *out = NULL;
  net_trace__say(err, err_cap, "%s", "");
  net_trace_reader_t *r = calloc(1, sizeof(*r));
  if (r == NULL) {
    net_trace__say(err, err_cap, "out of memory for the trace reader");
    return RT_ENOMEM;
  }
  r->fd = -1;
  r->cap = NET_TRACE_READ_CHUNK; /* grown by reader_fill as records need */
  r->buf = malloc(r->cap);
  if (r->buf == NULL) {
    free(r);
    net_trace__say(err, err_cap, "out of memory for the trace reader");
    return RT_ENOMEM;
  }
  uint32_t expect_seq = 0;
  uint32_t seq = 0;
  uint64_t first = 0;
  int rc = reader_locate(r, path, &expect_seq);
  r->seq = expect_seq;
  if (rc == 0)
    rc = reader_open_file(r, expect_seq == 1 ? " (no trace here)" : "");
  if (rc == 0)
    rc = reader_read_header(r, &r->hdr, r->config, &seq, &first);
  if (rc == 0 && expect_seq != 0 && seq != expect_seq)
    rc = reader_fail(r, NET_TRACE_FAULT_SEQUENCE,
                     "%s: holds file %" PRIu32
                     " of its recording, not file %" PRIu32,
                     r->path, seq, expect_seq);
  if (rc == 0 && (seq == 1) != (first == 0))
    rc = reader_fail(r, NET_TRACE_FAULT_SEQUENCE,
                     "%s: file %" PRIu32
                     " of its recording begins at record %" PRIu64,
                     r->path, seq, first);
  if (rc != 0) {
    net_trace__say(err, err_cap, "%s", r->msg);
    net_trace_reader_close(r);
    return rc;
  }
  r->seq = seq;
  r->index = first;
  r->from_start = seq == 1;
  r->first_file = seq;
  *out = r;
  return 0;
}

const net_trace_header_t *net_trace_reader_header(const net_trace_reader_t *r) {
  RT_ASSERT(r != NULL);
  return &r->hdr;
}

const char *net_trace_reader_error(const net_trace_reader_t *r) {
  RT_ASSERT(r != NULL);
  return r->msg;
}

net_trace_fault_t net_trace_reader_fault(const net_trace_reader_t *r) {
  RT_ASSERT(r != NULL);
  return r->fault;
}

uint64_t net_trace_reader_lost(const net_trace_reader_t *r) {
  RT_ASSERT(r != NULL);
  return r->lost;
}

void net_trace_reader_close(net_trace_reader_t *r) {
  if (r == NULL)
    return;
  if (r->fd >= 0)
    close(r->fd);
  free(r->buf);
  free(r);
}

uint32_t net_trace_reader_first_file(const net_trace_reader_t *r) {
  return r->first_file;
}
