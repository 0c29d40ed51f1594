/* fuzz_trace.c: a trace file from a stranger against the trace reader.
 *
 * A trace comes with a bug report, and overcookied-replay reads it with
 * net_trace_reader_open / net_trace_next. The input is a recording's files
 * one after another: it is cut before every "OCTRACE\0" (a header's magic)
 * after its first byte, into at most FILES_MAX files, written as
 * trace-000001.oct, ... into a directory of this process's own (on
 * /dev/shm when there is one: each input is a few file writes). The reader
 * reads the directory from file 1 to its end, and, when there are several
 * files, reads again from file 2 opened by name (a recording's later file,
 * whose LOST totals cannot be checked).
 *
 * Under libFuzzer a custom mutator reseals most mutated inputs (fills in
 * every CRC-32C and head check where the bytes say a header or record is,
 * as tools/fuzz-replay does), so mutations get past the checksums to the
 * checks behind them; tests/fuzz/trace.dict has the format's words.
 *
 * Rules checked, beyond no crash and no sanitizer report:
 *  (1) every result is one the API names, a failure comes with a sentence
 *      and a fault that matches its code, and errors are sticky;
 *  (2) the header is the first file's bytes: version 1, the seed, clock
 *      and flags at their offsets, its config those bytes, UTF-8, no NUL;
 *  (3) each record returned is in the files at the place it says, as they
 *      are: the type and length in its head, the payload byte for byte, a
 *      head check and CRC-32C that match (computed here, apart from
 *      net_trace.c); records come in order (index and file increasing),
 *      of input and output types or LOST; LOST records sum to the reader's
 *      lost count;
 *  (4) the reader stops: at most one record per 9 bytes of input, then a
 *      clean END (0) or an error, and stays there.
 */
#include "fuzz_check.h"
#include "net_trace_reader.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define INPUT_MAX (256u * 1024)
#define FILES_MAX 4u
#define MAGIC "OCTRACE" /* with its NUL: 8 bytes */
#define MAGIC_LEN 8u
#define PATH_MAX_ 512u

/* ---- Checks, written here apart from net_trace.c ------------------------- */

static uint32_t crc32c_table[256];

static void crc32c_init(void) {
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++)
      c = (c & 1u) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
    crc32c_table[i] = c;
  }
}

static uint32_t crc32c(const uint8_t *p, size_t n) {
  uint32_t c = 0xffffffffu;
  for (size_t i = 0; i < n; i++)
    c = crc32c_table[(c ^ p[i]) & 0xffu] ^ (c >> 8);
  return c ^ 0xffffffffu;
}

static uint8_t crc8(const uint8_t *p) { /* poly 0x07, init 0xff, 4 bytes */
  uint8_t c = 0xffu;
  for (int i = 0; i < 4; i++) {
    c ^= p[i];
    for (int k = 0; k < 8; k++)
      c = (uint8_t)((c & 0x80u) ? ((unsigned)c << 1) ^ 0x07u
                                : (unsigned)c << 1);
  }
  return c;
}

static uint64_t le(const uint8_t *p, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; i++)
    v |= (uint64_t)p[i] << (8 * i);
  return v;
}

/* LEB128, as the format writes it; false when it does not decode. */
static bool varint(const uint8_t *p, size_t len, size_t *pos, uint64_t *out) {
  uint64_t v = 0;
  for (size_t i = 0; i < 10 && *pos + i < len; i++) {
    v |= (uint64_t)(p[*pos + i] & 0x7fu) << (7 * i);
    if ((p[*pos + i] & 0x80u) == 0) {
      *pos += i + 1;
      *out = v;
      return true;
    }
  }
  return false;
}

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

/* ---- The input as files -------------------------------------------------- */

typedef struct files {
  const uint8_t *start[FILES_MAX];
  size_t len[FILES_MAX];
  uint32_t count;
} files_t;

static const uint8_t *find_magic(const uint8_t *p, size_t len) {
  const uint8_t *end = p + len;
  while (end - p >= (ptrdiff_t)MAGIC_LEN) {
    const uint8_t *o = memchr(p, 'O', (size_t)(end - p) - MAGIC_LEN + 1);
    if (o == NULL)
      return NULL;
    if (memcmp(o, MAGIC, MAGIC_LEN) == 0)
      return o;
    p = o + 1;
  }
  return NULL;
}

static void split(const uint8_t *data, size_t size, files_t *f) {
  f->count = 0;
  const uint8_t *at = data, *end = data + size;
  while (f->count < FILES_MAX) {
    const uint8_t *next = f->count + 1 < FILES_MAX && end - at > 1
                              ? find_magic(at + 1, (size_t)(end - at - 1))
                              : NULL;
    f->start[f->count] = at;
    f->len[f->count] = (size_t)((next != NULL ? next : end) - at);
    f->count++;
    if (next == NULL)
      return;
    at = next;
  }
}

typedef struct context {
  char dir[PATH_MAX_];
  int fd[FILES_MAX]; /* trace-00000N.oct, open for writing, or -1 */
} context_t;

static void file_name(char *out, const char *dir, uint32_t seq) {
  int n = snprintf(out, PATH_MAX_, "%s/trace-%06u.oct", dir, seq);
  FUZZ_CHECK(n > 0 && n < (int)PATH_MAX_, "a path too long in %s", dir);
}

static context_t *ctx_made;

static void remove_dir(void) {
  char path[PATH_MAX_];
  for (uint32_t i = 0; i < FILES_MAX; i++) {
    if (ctx_made->fd[i] >= 0)
      close(ctx_made->fd[i]);
    file_name(path, ctx_made->dir, i + 1);
    unlink(path);
  }
  rmdir(ctx_made->dir);
}

static context_t *context(void) {
  static context_t ctx;
  if (ctx_made != NULL)
    return ctx_made;
  crc32c_init();
  struct stat st;
  const char *base =
      stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode)
          ? "/dev/shm"
          : (getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp");
  snprintf(ctx.dir, sizeof(ctx.dir), "%s/fuzz-trace-XXXXXX", base);
  if (mkdtemp(ctx.dir) == NULL) {
    perror("fuzz_trace: mkdtemp");
    abort();
  }
  for (uint32_t i = 0; i < FILES_MAX; i++)
    ctx.fd[i] = -1;
  ctx_made = &ctx;
  atexit(remove_dir);
  return &ctx;
}

/* The files stay open between inputs (rewritten in place, then cut to
 * length): a file created, written and closed per input cost more than the
 * reading. A file the input does not have is removed. */
static void write_files(context_t *ctx, const files_t *f) {
  char path[PATH_MAX_];
  for (uint32_t i = 0; i < f->count; i++) {
    if (ctx->fd[i] < 0) {
      file_name(path, ctx->dir, i + 1);
      ctx->fd[i] = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
      FUZZ_CHECK(ctx->fd[i] >= 0, "cannot write %s: %s", path, strerror(errno));
    }
    size_t off = 0;
    while (off < f->len[i]) {
      ssize_t n =
          pwrite(ctx->fd[i], f->start[i] + off, f->len[i] - off, (off_t)off);
      FUZZ_CHECK(n > 0, "cannot write file %u: %s", i + 1, strerror(errno));
      off += (size_t)n;
    }
    FUZZ_CHECK(ftruncate(ctx->fd[i], (off_t)f->len[i]) == 0,
               "cannot cut file %u: %s", i + 1, strerror(errno));
  }
  for (uint32_t i = f->count; i < FILES_MAX && ctx->fd[i] >= 0; i++) {
    close(ctx->fd[i]);
    ctx->fd[i] = -1;
    file_name(path, ctx->dir, i + 1);
    unlink(path);
  }
}

/* ---- Reading, and the rules ---------------------------------------------- */

static void check_failure(int rc, net_trace_fault_t fault, const char *msg) {
  static const int codes[] = {0,         RT_EOF,    RT_EPROTO,    RT_EPROTO,
                              RT_EPROTO, RT_EPROTO, RT_ENOTFOUND, RT_EIO};
  FUZZ_CHECK(fault > NET_TRACE_FAULT_NONE && fault <= NET_TRACE_FAULT_IO,
             "fault %d for %d", (int)fault, rc);
  FUZZ_CHECK(codes[fault] == rc, "fault %d returned as %d", (int)fault, rc);
  FUZZ_CHECK(msg != NULL && msg[0] != '\0', "error %d without a sentence", rc);
}

/* Rule (2): the header, against file 1's bytes (or the file opened). */
static void check_header(const net_trace_header_t *h, const uint8_t *b,
                         size_t len) {
  FUZZ_CHECK(len >= 60, "a header from a file of %zu bytes", len);
  FUZZ_CHECK(h->version == 1 && le(b + 8, 4) == 1, "version %u", h->version);
  FUZZ_CHECK(h->flags == le(b + 20, 4) && h->seed == le(b + 28, 8) &&
                 (uint64_t)h->epoch_unix_ns == le(b + 36, 8),
             "the header's fields are not the file's");
  FUZZ_CHECK(h->config_len == le(b + 52, 4) && 60 + h->config_len <= len &&
                 h->config_len <= NET_TRACE_CONFIG_MAX,
             "config of %u bytes", h->config_len);
  FUZZ_CHECK(memcmp(h->config, b + 56, h->config_len) == 0 &&
                 h->config[h->config_len] == '\0',
             "the config is not the file's");
  FUZZ_CHECK(strlen(h->config) == h->config_len,
             "a config of %u bytes holding a NUL", h->config_len);
  FUZZ_CHECK(utf8_valid((const uint8_t *)h->config, h->config_len),
             "a config that is not UTF-8");
}

/* Rule (3): one record, against the bytes of its file. */
static void check_record(const files_t *f, uint32_t first_seq,
                         const net_trace_record_t *rec) {
  FUZZ_CHECK(rec->type == NET_TRACE_T_LOST ||
                 (rec->type >= NET_TRACE_T_USER_MIN &&
                  rec->type <= NET_TRACE_T_USER_MAX),
             "record of type %u", rec->type);
  FUZZ_CHECK(rec->len <= NET_TRACE_PAYLOAD_MAX, "record of %u bytes", rec->len);
  FUZZ_CHECK(rec->file_seq >= first_seq && rec->file_seq <= f->count,
             "record in file %u of %u", rec->file_seq, f->count);
  const uint8_t *b = f->start[rec->file_seq - 1];
  size_t len = f->len[rec->file_seq - 1];
  FUZZ_CHECK(rec->offset >= 60 && rec->offset + 9 + rec->len <= len,
             "record at byte %llu of %u bytes, in a file of %zu",
             (unsigned long long)rec->offset, rec->len, len);
  const uint8_t *r = b + rec->offset;
  FUZZ_CHECK(r[0] == rec->type && le(r + 1, 3) == rec->len,
             "the record's head is not its file's");
  FUZZ_CHECK(rec->len == 0 || memcmp(rec->payload, r + 5, rec->len) == 0,
             "the payload is not its file's");
  FUZZ_CHECK(crc8(r) == r[4], "a head check that does not match");
  FUZZ_CHECK(crc32c(r, 5 + rec->len) == le(r + 5 + rec->len, 4),
             "a CRC-32C that does not match");
}

/* Read a recording to its end from path; first_seq is the file opened. */
static void read_all(const files_t *f, const char *path, uint32_t first_seq,
                     size_t size) {
  net_trace_reader_t *r = NULL;
  char err[NET_TRACE_ERR_MAX];
  int rc = net_trace_reader_open(path, &r, err, sizeof(err));
  if (rc != 0) {
    FUZZ_CHECK(r == NULL, "open failed with %d, yet a reader", rc);
    FUZZ_CHECK(rc == RT_EOF || rc == RT_EPROTO || rc == RT_ENOTFOUND ||
                   rc == RT_EIO,
               "open returned %d", rc);
    FUZZ_CHECK(err[0] != '\0', "open failed (%d) without a sentence", rc);
    return;
  }
  check_header(net_trace_reader_header(r), f->start[first_seq - 1],
               f->len[first_seq - 1]);
  uint64_t lost = 0, index = 0, records = 0;
  uint32_t seq = first_seq;
  net_trace_record_t rec;
  for (;;) {
    memset(&rec, 0, sizeof(rec));
    rc = net_trace_next(r, &rec);
    if (rc != 1)
      break;
    records++;
    /* Rule (4). */
    FUZZ_CHECK(records <= size / 9 + 1, "%llu records from %zu bytes",
               (unsigned long long)records, size);
    check_record(f, first_seq, &rec);
    FUZZ_CHECK(records == 1 || rec.index > index, "record %llu after %llu",
               (unsigned long long)rec.index, (unsigned long long)index);
    FUZZ_CHECK(rec.file_seq >= seq, "file %u after file %u", rec.file_seq, seq);
    index = rec.index;
    seq = rec.file_seq;
    if (rec.type == NET_TRACE_T_LOST) {
      size_t pos = 0;
      uint64_t n = 0;
      FUZZ_CHECK(varint(rec.payload, rec.len, &pos, &n) && n > 0,
                 "a LOST record counting nothing");
      lost += n;
    }
    FUZZ_CHECK(net_trace_reader_lost(r) == lost, "lost %llu, the records %llu",
               (unsigned long long)net_trace_reader_lost(r),
               (unsigned long long)lost);
  }
  /* Rules (1) and (4): an end, and it stays. */
  FUZZ_CHECK(rc == 0 || rc == RT_EOF || rc == RT_EPROTO || rc == RT_ENOTFOUND ||
                 rc == RT_EIO,
             "next returned %d", rc);
  if (rc == 0)
    FUZZ_CHECK(net_trace_reader_fault(r) == NET_TRACE_FAULT_NONE &&
                   net_trace_reader_error(r)[0] == '\0',
               "a clean end with a fault");
  else
    check_failure(rc, net_trace_reader_fault(r), net_trace_reader_error(r));
  FUZZ_CHECK(net_trace_next(r, &rec) == rc, "the end did not stay %d", rc);
  net_trace_reader_close(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  context_t *ctx = context();
  if (size > INPUT_MAX)
    size = INPUT_MAX;
  files_t f;
  split(data, size, &f);
  write_files(ctx, &f);
  read_all(&f, ctx->dir, 1, size);
  if (f.count > 1) {
    char path[PATH_MAX_];
    file_name(path, ctx->dir, 2);
    read_all(&f, path, 2, size);
  }
  return 0;
}

/* ---- Resealing (libFuzzer only) ------------------------------------------ */

#ifndef OC_FUZZ_MAIN
size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size,
                               unsigned int seed);

static void put_le(uint8_t *p, uint64_t v, size_t n) {
  for (size_t i = 0; i < n; i++)
    p[i] = (uint8_t)(v >> (8 * i));
}

/* Fill in the checks of one file where its bytes say a header and records
 * are: the header's prefix check and checksum, each record's head check
 * and CRC-32C. */
static void reseal_file(uint8_t *b, size_t len) {
  if (len < 20)
    return;
  put_le(b + 16, crc32c(b, 16), 4);
  uint64_t hlen = le(b + 12, 4);
  if (hlen < 60 || hlen > len)
    return;
  put_le(b + hlen - 4, crc32c(b, (size_t)hlen - 4), 4);
  size_t off = (size_t)hlen;
  while (off + 5 <= len) {
    b[off + 4] = crc8(b + off);
    size_t n = (size_t)le(b + off + 1, 3);
    if (n > len - off - 5 || len - off - 5 - n < 4)
      return;
    put_le(b + off + 5 + n, crc32c(b + off, 5 + n), 4);
    off += 9 + n;
  }
}

/* Seven mutations in eight are resealed; the eighth keeps its broken checks,
 * so that the reader's refusals stay covered. */
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size,
                               unsigned int seed) {
  context();
  size = LLVMFuzzerMutate(data, size, max_size);
  if (seed % 8 == 0)
    return size;
  files_t f;
  split(data, size, &f);
  for (uint32_t i = 0; i < f.count; i++)
    reseal_file(data + (f.start[i] - data), f.len[i]); /* writable: ours */
  return size;
}
#endif
