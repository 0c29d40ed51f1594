/* net_trace.c: the trace file format (spec in net_trace.h).
 *
 * Writer. The appending thread (the event loop) encodes each record into
 * the buffer it fills; a background thread seals the records (fills in
 * their checks), cuts them into files by size and writes them. Invariants:
 *  (1) There are exactly two buffers. The appending thread owns `fill`; the
 *      other is in exactly one place: w->spare (free), w->pending (queued)
 *      or the writer thread's hands (being written). A hand-off needs the
 *      spare, so at most one buffer waits for the disk at any time.
 *  (2) The writer thread holds `mu` only to move a buffer pointer or copy
 *      counters and its error message: never across I/O, never across a
 *      loop over data. So the appending thread, which takes `mu` only to
 *      hand a buffer off, flush or read stats, waits at most for a few
 *      instructions, never for the disk.
 *  (3) After net_trace_writer_open, the appending thread makes no file
 *      system call: append, flush and stats touch memory only; only close
 *      waits (for the writer thread, by joining it).
 *  (4) A buffer holds whole records in the file format, except the head
 *      check and CRC-32C, which the writer thread fills in before writing:
 *      the checksum work stays off the event loop.
 *  (5) A file never grows past max_bytes unless it holds a single record:
 *      before each record the writer keeps room for that record and for the
 *      largest closing record (NET_TRACE_TAIL_MAX).
 *  (6) io_err goes from 0 to an error once, set by the writer thread. From
 *      then on nothing more is written; buffers come back unwritten, so the
 *      appending thread still never waits. The appending thread learns of
 *      it whenever it takes mu anyway (a hand-off, a flush) and keeps a
 *      copy, seen_err: append reports it without touching shared memory.
 *      No atomics: everything shared is under mu, which is simple to check
 *      (and what helgrind and ThreadSanitizer understand).
 *
 *   net_trace_writer_open ──> [writing file 1] ──w_rotate──> [file 2] ...
 *        (w_write_buffer per buffer)   │                       │
 *        net_trace_writer_close ──> w_finish: END, fsync ──> joined
 *   any I/O error ──w_fail──> [failed: buffers returned unwritten]
 *
 * Reader. Plain blocking reads into one buffer that holds the largest
 * record; every check named in the spec, in the order that lets it name
 * the fault: a damaged length is reported as damage (the head check), a
 * cut-short file as truncation, a newer format by its number.
 */
#include "net_trace.h"

#include "rt_assert.h"
#include "rt_utf8.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#define NET_TRACE_NAME_FMT "trace-%06" PRIu32 ".oct"
/* A LOST record: two varints. */
#define NET_TRACE_LOST_RECORD_MAX                                              \
  (NET_TRACE_RECORD_OVERHEAD + 2 * NET_TRACE_VARINT_MAX)
/* A directory name leaves room for "/trace-NNNNNN.oct" in a path. */
#define NET_TRACE_DIR_MAX (NET_TRACE_PATH_MAX - 32u)
/* What the reader asks of read() beyond one record: amortises the calls. */
#define NET_TRACE_READ_CHUNK (64u << 10)
#define NET_TRACE_READ_BUF                                                     \
  (NET_TRACE_RECORD_OVERHEAD + NET_TRACE_PAYLOAD_MAX + NET_TRACE_READ_CHUNK)

/* ---- Checks ---------------------------------------------------------------- */

/* CRC-32C, reflected polynomial 0x82f63b78, one table lookup per byte
 * (about 1 GB/s: far more than a recording needs, and off the event loop).
 * tests/net/test_net_trace.c checks it against the bitwise definition. */
static const uint32_t crc32c_table[256] = {
    0x00000000u, 0xf26b8303u, 0xe13b70f7u, 0x1350f3f4u, 0xc79a971fu, 0x35f1141cu,
    0x26a1e7e8u, 0xd4ca64ebu, 0x8ad958cfu, 0x78b2dbccu, 0x6be22838u, 0x9989ab3bu,
    0x4d43cfd0u, 0xbf284cd3u, 0xac78bf27u, 0x5e133c24u, 0x105ec76fu, 0xe235446cu,
    0xf165b798u, 0x030e349bu, 0xd7c45070u, 0x25afd373u, 0x36ff2087u, 0xc494a384u,
    0x9a879fa0u, 0x68ec1ca3u, 0x7bbcef57u, 0x89d76c54u, 0x5d1d08bfu, 0xaf768bbcu,
    0xbc267848u, 0x4e4dfb4bu, 0x20bd8edeu, 0xd2d60dddu, 0xc186fe29u, 0x33ed7d2au,
    0xe72719c1u, 0x154c9ac2u, 0x061c6936u, 0xf477ea35u, 0xaa64d611u, 0x580f5512u,
    0x4b5fa6e6u, 0xb93425e5u, 0x6dfe410eu, 0x9f95c20du, 0x8cc531f9u, 0x7eaeb2fau,
    0x30e349b1u, 0xc288cab2u, 0xd1d83946u, 0x23b3ba45u, 0xf779deaeu, 0x05125dadu,
    0x1642ae59u, 0xe4292d5au, 0xba3a117eu, 0x4851927du, 0x5b016189u, 0xa96ae28au,
    0x7da08661u, 0x8fcb0562u, 0x9c9bf696u, 0x6ef07595u, 0x417b1dbcu, 0xb3109ebfu,
    0xa0406d4bu, 0x522bee48u, 0x86e18aa3u, 0x748a09a0u, 0x67dafa54u, 0x95b17957u,
    0xcba24573u, 0x39c9c670u, 0x2a993584u, 0xd8f2b687u, 0x0c38d26cu, 0xfe53516fu,
    0xed03a29bu, 0x1f682198u, 0x5125dad3u, 0xa34e59d0u, 0xb01eaa24u, 0x42752927u,
    0x96bf4dccu, 0x64d4cecfu, 0x77843d3bu, 0x85efbe38u, 0xdbfc821cu, 0x2997011fu,
    0x3ac7f2ebu, 0xc8ac71e8u, 0x1c661503u, 0xee0d9600u, 0xfd5d65f4u, 0x0f36e6f7u,
    0x61c69362u, 0x93ad1061u, 0x80fde395u, 0x72966096u, 0xa65c047du, 0x5437877eu,
    0x4767748au, 0xb50cf789u, 0xeb1fcbadu, 0x197448aeu, 0x0a24bb5au, 0xf84f3859u,
    0x2c855cb2u, 0xdeeedfb1u, 0xcdbe2c45u, 0x3fd5af46u, 0x7198540du, 0x83f3d70eu,
    0x90a324fau, 0x62c8a7f9u, 0xb602c312u, 0x44694011u, 0x5739b3e5u, 0xa55230e6u,
    0xfb410cc2u, 0x092a8fc1u, 0x1a7a7c35u, 0xe811ff36u, 0x3cdb9bddu, 0xceb018deu,
    0xdde0eb2au, 0x2f8b6829u, 0x82f63b78u, 0x709db87bu, 0x63cd4b8fu, 0x91a6c88cu,
    0x456cac67u, 0xb7072f64u, 0xa457dc90u, 0x563c5f93u, 0x082f63b7u, 0xfa44e0b4u,
    0xe9141340u, 0x1b7f9043u, 0xcfb5f4a8u, 0x3dde77abu, 0x2e8e845fu, 0xdce5075cu,
    0x92a8fc17u, 0x60c37f14u, 0x73938ce0u, 0x81f80fe3u, 0x55326b08u, 0xa759e80bu,
    0xb4091bffu, 0x466298fcu, 0x1871a4d8u, 0xea1a27dbu, 0xf94ad42fu, 0x0b21572cu,
    0xdfeb33c7u, 0x2d80b0c4u, 0x3ed04330u, 0xccbbc033u, 0xa24bb5a6u, 0x502036a5u,
    0x4370c551u, 0xb11b4652u, 0x65d122b9u, 0x97baa1bau, 0x84ea524eu, 0x7681d14du,
    0x2892ed69u, 0xdaf96e6au, 0xc9a99d9eu, 0x3bc21e9du, 0xef087a76u, 0x1d63f975u,
    0x0e330a81u, 0xfc588982u, 0xb21572c9u, 0x407ef1cau, 0x532e023eu, 0xa145813du,
    0x758fe5d6u, 0x87e466d5u, 0x94b49521u, 0x66df1622u, 0x38cc2a06u, 0xcaa7a905u,
    0xd9f75af1u, 0x2b9cd9f2u, 0xff56bd19u, 0x0d3d3e1au, 0x1e6dcdeeu, 0xec064eedu,
    0xc38d26c4u, 0x31e6a5c7u, 0x22b65633u, 0xd0ddd530u, 0x0417b1dbu, 0xf67c32d8u,
    0xe52cc12cu, 0x1747422fu, 0x49547e0bu, 0xbb3ffd08u, 0xa86f0efcu, 0x5a048dffu,
    0x8ecee914u, 0x7ca56a17u, 0x6ff599e3u, 0x9d9e1ae0u, 0xd3d3e1abu, 0x21b862a8u,
    0x32e8915cu, 0xc083125fu, 0x144976b4u, 0xe622f5b7u, 0xf5720643u, 0x07198540u,
    0x590ab964u, 0xab613a67u, 0xb831c993u, 0x4a5a4a90u, 0x9e902e7bu, 0x6cfbad78u,
    0x7fab5e8cu, 0x8dc0dd8fu, 0xe330a81au, 0x115b2b19u, 0x020bd8edu, 0xf0605beeu,
    0x24aa3f05u, 0xd6c1bc06u, 0xc5914ff2u, 0x37faccf1u, 0x69e9f0d5u, 0x9b8273d6u,
    0x88d28022u, 0x7ab90321u, 0xae7367cau, 0x5c18e4c9u, 0x4f48173du, 0xbd23943eu,
    0xf36e6f75u, 0x0105ec76u, 0x12551f82u, 0xe03e9c81u, 0x34f4f86au, 0xc69f7b69u,
    0xd5cf889du, 0x27a40b9eu, 0x79b737bau, 0x8bdcb4b9u, 0x988c474du, 0x6ae7c44eu,
    0xbe2da0a5u, 0x4c4623a6u, 0x5f16d052u, 0xad7d5351u,
};

/* x86-64 has CRC-32C in hardware (SSE4.2's crc32 instruction computes
 * exactly this polynomial, bit-reflected like the table): eight bytes per
 * instruction instead of one table step per byte. Recording calls this for
 * every record on the event loop, so it matters there. Chosen at run time;
 * the table serves other CPUs. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define CRC32C_HW 1
__attribute__((target("sse4.2"))) static uint32_t
crc32c_hw(uint32_t crc, const uint8_t *b, size_t n) {
  uint64_t c = crc;
  for (; n >= 8; n -= 8, b += 8) {
    uint64_t w;
    memcpy(&w, b, 8);
    c = __builtin_ia32_crc32di(c, w);
  }
  uint32_t c32 = (uint32_t)c;
  for (; n > 0; n--, b++)
    c32 = __builtin_ia32_crc32qi(c32, *b);
  return c32;
}
#endif

uint32_t net_trace_crc32c(uint32_t crc, const void *p, size_t n) {
  const uint8_t *b = p;
  crc = ~crc;
#ifdef CRC32C_HW
  if (__builtin_cpu_supports("sse4.2"))
    return ~crc32c_hw(crc, b, n);
#endif
  for (size_t i = 0; i < n; i++)
    crc = crc32c_table[(crc ^ b[i]) & 0xffu] ^ (crc >> 8);
  return ~crc;
}

/* CRC-8, polynomial x^8 + x^2 + x + 1, over a record's 4 head bytes. Any
 * generator of degree 8 with a constant term catches every burst of at most
 * 8 bits, so any one damaged head byte (the check included) is caught. The
 * initial 0xff makes an all-zero head fail. Bitwise: 32 steps per record. */
static uint8_t head_check(const uint8_t *head) {
  uint8_t crc = 0xffu;
  for (size_t i = 0; i < 4; i++) {
    crc ^= head[i];
    for (int bit = 0; bit < 8; bit++)
      crc = (uint8_t)((crc & 0x80u) ? ((unsigned)crc << 1) ^ 0x07u
                                    : (unsigned)crc << 1);
  }
  return crc;
}

/* ---- Little-endian fields -------------------------------------------------- */

static void put_le(uint8_t *p, uint64_t v, size_t n) {
  for (size_t i = 0; i < n; i++)
    p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; i++)
    v |= (uint64_t)p[i] << (8 * i);
  return v;
}

/* ---- Names --------------------------------------------------------------- */

const char *net_trace_type_name(uint8_t type) {
  switch (type) {
  case NET_TRACE_T_END: return "END";
  case NET_TRACE_T_NEXT_FILE: return "NEXT_FILE";
  case NET_TRACE_T_LOST: return "LOST";
  case NET_TRACE_T_TIME: return "TIME";
  case NET_TRACE_T_PASS: return "PASS";
  case NET_TRACE_T_ACCEPT: return "ACCEPT";
  case NET_TRACE_T_READ: return "READ";
  case NET_TRACE_T_WRITE: return "WRITE";
  case NET_TRACE_T_CLOSE: return "CLOSE";
  case NET_TRACE_T_STREAM_EVENT: return "STREAM_EVENT";
  case NET_TRACE_T_EXTERNAL: return "EXTERNAL";
  case NET_TRACE_T_BACKLOG: return "BACKLOG";
  case NET_TRACE_T_CONTROL: return "CONTROL";
  case NET_TRACE_T_CHECKPOINT: return "CHECKPOINT";
  case NET_TRACE_T_SHUTDOWN: return "SHUTDOWN";
  default: return "?";
  }
}

static bool type_is_user(unsigned type) {
  return type >= NET_TRACE_T_USER_MIN && type <= NET_TRACE_T_USER_MAX;
}

/* ---- Payload fields --------------------------------------------------------- */

void net_trace_enc_init(net_trace_enc_t *e, void *buf, size_t cap) {
  RT_ASSERT(e != NULL);
  RT_ASSERT(buf != NULL || cap == 0);
  e->buf = buf;
  e->cap = cap;
  e->len = 0;
  e->overflow = false;
}

/* Room for n more bytes, or the encoder is marked overflowed (sticky). */
static bool enc_room(net_trace_enc_t *e, size_t n) {
  if (!e->overflow && e->cap - e->len >= n)
    return true;
  e->overflow = true;
  return false;
}

/* The varint of v into p (at least NET_TRACE_VARINT_MAX bytes): its length. */
static size_t varint_encode(uint8_t *p, uint64_t v) {
  size_t n = 0;
  while (v >= 0x80u) {
    p[n++] = (uint8_t)(v | 0x80u);
    v >>= 7;
  }
  p[n++] = (uint8_t)v;
  return n;
}

void net_trace_put_u64(net_trace_enc_t *e, uint64_t v) {
  RT_ASSERT(e != NULL);
  uint8_t tmp[NET_TRACE_VARINT_MAX];
  size_t n = varint_encode(tmp, v);
  if (enc_room(e, n)) {
    memcpy(e->buf + e->len, tmp, n);
    e->len += n;
  }
}

void net_trace_put_i64(net_trace_enc_t *e, int64_t v) {
  /* Zigzag: small magnitudes of either sign stay short. */
  uint64_t u = (uint64_t)v;
  net_trace_put_u64(e, (u << 1) ^ (0 - (u >> 63)));
}

void net_trace_put_fixed64(net_trace_enc_t *e, uint64_t v) {
  RT_ASSERT(e != NULL);
  if (enc_room(e, 8)) {
    put_le(e->buf + e->len, v, 8);
    e->len += 8;
  }
}

void net_trace_put_bytes(net_trace_enc_t *e, const void *p, size_t n) {
  RT_ASSERT(e != NULL);
  RT_ASSERT(p != NULL || n == 0);
  net_trace_put_u64(e, n);
  if (enc_room(e, n) && n > 0) {
    memcpy(e->buf + e->len, p, n);
    e->len += n;
  }
}

int net_trace_enc_finish(const net_trace_enc_t *e) {
  RT_ASSERT(e != NULL);
  return e->overflow ? RT_ELIMIT : 0;
}

void net_trace_dec_init(net_trace_dec_t *d, const void *p, size_t len) {
  RT_ASSERT(d != NULL);
  RT_ASSERT(p != NULL || len == 0);
  d->p = p;
  d->len = len;
  d->pos = 0;
  d->err = 0;
}

/* Decode a varint at p[0, len): its length, or 0 when it runs off the end,
 * is longer than 10 bytes, overflows 64 bits or is not the shortest form
 * (one value, one encoding: a payload can be compared byte for byte). */
static size_t varint_decode(const uint8_t *p, size_t len, uint64_t *out) {
  uint64_t v = 0;
  for (size_t i = 0; i < len && i < NET_TRACE_VARINT_MAX; i++) {
    uint64_t b = p[i];
    if (i == NET_TRACE_VARINT_MAX - 1 && b > 1)
      return 0; /* bits past 64 */
    v |= (b & 0x7fu) << (7 * i);
    if ((b & 0x80u) == 0) {
      if (i > 0 && b == 0)
        return 0; /* overlong */
      *out = v;
      return i + 1;
    }
  }
  return 0;
}

uint64_t net_trace_get_u64(net_trace_dec_t *d) {
  RT_ASSERT(d != NULL);
  uint64_t v = 0;
  if (d->err != 0)
    return 0;
  size_t n = varint_decode(d->p + d->pos, d->len - d->pos, &v);
  if (n == 0) {
    d->err = RT_EPROTO;
    return 0;
  }
  d->pos += n;
  return v;
}

int64_t net_trace_get_i64(net_trace_dec_t *d) {
  uint64_t u = net_trace_get_u64(d);
  return (int64_t)((u >> 1) ^ (0 - (u & 1)));
}

uint64_t net_trace_get_fixed64(net_trace_dec_t *d) {
  RT_ASSERT(d != NULL);
  if (d->err != 0)
    return 0;
  if (d->len - d->pos < 8) {
    d->err = RT_EPROTO;
    return 0;
  }
  uint64_t v = get_le(d->p + d->pos, 8);
  d->pos += 8;
  return v;
}

const uint8_t *net_trace_get_bytes(net_trace_dec_t *d, size_t *n) {
  RT_ASSERT(n != NULL);
  *n = 0;
  uint64_t len = net_trace_get_u64(d);
  if (d->err != 0)
    return NULL;
  if (len > d->len - d->pos) {
    d->err = RT_EPROTO;
    return NULL;
  }
  const uint8_t *p = d->p + d->pos;
  d->pos += (size_t)len;
  *n = (size_t)len;
  return p;
}

int net_trace_dec_finish(const net_trace_dec_t *d) {
  RT_ASSERT(d != NULL);
  if (d->err != 0)
    return d->err;
  return d->pos == d->len ? 0 : RT_EPROTO;
}

/* ---- Messages -------------------------------------------------------------- */

static void say(char *err, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void say(char *err, size_t cap, const char *fmt, ...) {
  if (err == NULL || cap == 0)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, cap, fmt, ap);
  va_end(ap);
}

/* dir/trace-NNNNNN.oct into out (NET_TRACE_PATH_MAX); false if too long. */
static bool file_path(char *out, const char *dir, uint32_t seq) {
  int n = snprintf(out, NET_TRACE_PATH_MAX, "%s/" NET_TRACE_NAME_FMT, dir, seq);
  return n > 0 && (size_t)n < NET_TRACE_PATH_MAX;
}

/* ---- Header ---------------------------------------------------------------- */

/* Encode a header into out (NET_TRACE_HEADER_MAX bytes): its length. */
static size_t header_encode(uint8_t *out, const net_trace_header_t *h,
                            uint32_t seq, uint64_t first_record) {
  RT_ASSERT(h->config_len <= NET_TRACE_CONFIG_MAX);
  size_t len = NET_TRACE_HEADER_FIXED + h->config_len;
  memcpy(out, NET_TRACE_MAGIC, NET_TRACE_MAGIC_LEN);
  put_le(out + 8, NET_TRACE_VERSION, 4);
  put_le(out + 12, len, 4);
  put_le(out + 16, net_trace_crc32c(0, out, 16), 4);
  put_le(out + 20, h->flags, 4);
  put_le(out + 24, seq, 4);
  put_le(out + 28, h->seed, 8);
  put_le(out + 36, (uint64_t)h->epoch_unix_ns, 8);
  put_le(out + 44, first_record, 8);
  put_le(out + 52, h->config_len, 4);
  if (h->config_len > 0)
    memcpy(out + 56, h->config, h->config_len);
  put_le(out + len - 4, net_trace_crc32c(0, out, len - 4), 4);
  return len;
}

/* ---- Writer ---------------------------------------------------------------- */

struct net_trace_writer {
  /* Set at open, then read-only for both threads. */
  char dir[NET_TRACE_DIR_MAX];
  net_trace_header_t hdr; /* hdr.config points at config below */
  char config[NET_TRACE_CONFIG_MAX];
  uint64_t max_file_bytes;
  size_t buf_cap;
  size_t payload_max;
  net_trace_open_fn *open_file;
  void *open_ctx;
  pthread_t owner; /* the appending thread */
  pthread_t thread;
  uint8_t *bufs[2]; /* for freeing; Invariant (1) says where each one is */

  /* The appending thread's. */
  uint8_t *fill;
  size_t fill_len;
  uint64_t lost_pending; /* refused since the last LOST record */
  uint64_t lost_pending_bytes;
  uint64_t lost_marked; /* covered by LOST records so far */
  uint64_t records_appended;
  uint64_t records_lost;
  uint64_t bytes_lost;
  int seen_err; /* io_err as last seen under mu (Invariant (6)) */

  /* Shared, under mu (Invariant (2)). */
  pthread_mutex_t mu;
  pthread_cond_t work_cv;  /* the writer thread waits for pending/closing */
  pthread_cond_t spare_cv; /* the appending thread waits (close only) */
  uint8_t *pending;
  size_t pending_len;
  uint8_t *spare;
  bool closing;
  uint64_t final_lost; /* END's lost total, set with closing */
  uint64_t pub_records_written;
  uint64_t pub_bytes_written;
  uint32_t pub_files;
  int pub_os_errno;
  char err_msg[NET_TRACE_ERR_MAX];
  int io_err; /* Invariant (6) */

  /* The writer thread's (fd of file 1 and dir_fd are set by open). */
  int fd;
  int dir_fd; /* fsynced after a file is created; -1 with open_file */
  uint32_t seq;
  uint64_t file_bytes;   /* this file's size once its pending run is out */
  uint64_t file_written; /* bytes of this file already written */
  uint64_t file_records;
  uint64_t records_total; /* records sealed, all files */
  uint64_t bytes_written;
  uint32_t files;
  bool failed;
};

static int open_default(void *ctx, const char *path, uint32_t seq) {
  (void)ctx;
  (void)seq;
  /* O_EXCL: never overwrite a trace, ours or an earlier recording's. */
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  return fd >= 0 ? fd : -errno;
}

static int w_open(net_trace_writer_t *w, const char *path, uint32_t seq) {
  if (w->open_file != NULL)
    return w->open_file(w->open_ctx, path, seq);
  return open_default(NULL, path, seq);
}

/* Fill in a record's head check and CRC-32C (Invariant (4)). */
static void seal(uint8_t *rec) {
  size_t len = (size_t)get_le(rec + 1, 3);
  rec[4] = head_check(rec);
  put_le(rec + NET_TRACE_RECORD_HEAD + len,
         net_trace_crc32c(0, rec, NET_TRACE_RECORD_HEAD + len), 4);
}

/* Writer thread: the first I/O error ends the recording (Invariant (6)). */
static void w_fail(net_trace_writer_t *w, int os_errno, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void w_fail(net_trace_writer_t *w, int os_errno, const char *fmt, ...) {
  if (w->failed)
    return;
  w->failed = true;
  char msg[NET_TRACE_ERR_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  if (w->fd >= 0) {
    close(w->fd);
    w->fd = -1;
  }
  pthread_mutex_lock(&w->mu);
  memcpy(w->err_msg, msg, sizeof(msg));
  w->pub_os_errno = os_errno;
  w->io_err = RT_EIO;
  pthread_mutex_unlock(&w->mu);
}

/* Write n bytes to the current file, or fail. Bounded: each pass writes at
 * least one byte or ends (EINTR aside). */
static bool w_write_all(net_trace_writer_t *w, const uint8_t *p, size_t n) {
  size_t done = 0;
  while (done < n && !w->failed) {
    ssize_t k = write(w->fd, p + done, n - done);
    if (k < 0 && errno == EINTR)
      continue;
    if (k <= 0) {
      int e = k < 0 ? errno : EIO;
      char path[NET_TRACE_PATH_MAX];
      file_path(path, w->dir, w->seq);
      w_fail(w, e, "%s: write failed at byte %" PRIu64 ": %s", path,
             w->file_written, strerror(e));
      return false;
    }
    done += (size_t)k;
    w->file_written += (uint64_t)k;
    w->bytes_written += (uint64_t)k;
  }
  return !w->failed;
}

/* fsync, where the descriptor supports it: a pipe or a device (EINVAL)
 * has nothing to make durable. */
static bool w_sync(net_trace_writer_t *w, int fd, const char *what) {
  if (fsync(fd) == 0 || errno == EINVAL)
    return true;
  int e = errno;
  char path[NET_TRACE_PATH_MAX];
  file_path(path, w->dir, w->seq);
  w_fail(w, e, "%s: fsync of %s failed: %s", path, what, strerror(e));
  return false;
}

/* The current file's descriptor is open: write its header. */
static bool w_begin_file(net_trace_writer_t *w) {
  uint8_t h[NET_TRACE_HEADER_MAX];
  size_t n = header_encode(h, &w->hdr, w->seq, w->records_total);
  w->files++;
  w->file_bytes = n;
  w->file_written = 0;
  w->file_records = 0;
  if (!w_write_all(w, h, n))
    return false;
  /* The new name is durable only once its directory is synced. */
  return w->dir_fd < 0 || w_sync(w, w->dir_fd, "the directory");
}

static bool w_close_file(net_trace_writer_t *w) {
  if (!w_sync(w, w->fd, "the file"))
    return false;
  int rc = close(w->fd);
  w->fd = -1;
  if (rc != 0) {
    int e = errno;
    char path[NET_TRACE_PATH_MAX];
    file_path(path, w->dir, w->seq);
    w_fail(w, e, "%s: close failed: %s", path, strerror(e));
    return false;
  }
  return true;
}

/* Write a framing record with one or two u64 fields. */
static bool w_put_framing(net_trace_writer_t *w, uint8_t type, uint64_t a,
                          uint64_t b, bool two) {
  uint8_t rec[NET_TRACE_TAIL_MAX];
  net_trace_enc_t e;
  net_trace_enc_init(&e, rec + NET_TRACE_RECORD_HEAD, 2 * NET_TRACE_VARINT_MAX);
  net_trace_put_u64(&e, a);
  if (two)
    net_trace_put_u64(&e, b);
  RT_ASSERT(!e.overflow);
  rec[0] = type;
  put_le(rec + 1, e.len, 3);
  seal(rec);
  size_t size = NET_TRACE_RECORD_OVERHEAD + e.len;
  w->records_total++;
  w->file_records++;
  w->file_bytes += size;
  return w_write_all(w, rec, size);
}

/* Close this file with NEXT_FILE and begin the next one. */
static bool w_rotate(net_trace_writer_t *w) {
  if (!w_put_framing(w, NET_TRACE_T_NEXT_FILE, w->records_total + 1, 0, false))
    return false;
  if (!w_close_file(w))
    return false;
  char path[NET_TRACE_PATH_MAX];
  if (w->seq >= NET_TRACE_FILES_MAX) {
    w_fail(w, 0, "%s: the recording needs more than %u files", w->dir,
           NET_TRACE_FILES_MAX);
    return false;
  }
  w->seq++;
  file_path(path, w->dir, w->seq); /* fits: checked at open */
  int fd = w_open(w, path, w->seq);
  if (fd < 0) {
    w_fail(w, -fd, "%s: cannot create: %s", path, strerror(-fd));
    return false;
  }
  w->fd = fd;
  return w_begin_file(w);
}

/* Seal the records of one buffer and write them, cutting files by size
 * (Invariant (5)). Consecutive records go out in one write. */
static void w_write_buffer(net_trace_writer_t *w, uint8_t *buf, size_t len) {
  size_t pos = 0;
  size_t run = 0; /* first byte not yet written */
  while (pos < len && !w->failed) { /* pos grows by >= 9 bytes a pass */
    uint8_t *rec = buf + pos;
    size_t size = NET_TRACE_RECORD_OVERHEAD + (size_t)get_le(rec + 1, 3);
    RT_ASSERT(size <= len - pos);
    seal(rec);
    if (w->file_records > 0 &&
        w->file_bytes + size + NET_TRACE_TAIL_MAX > w->max_file_bytes) {
      if (!w_write_all(w, buf + run, pos - run) || !w_rotate(w))
        return;
      run = pos;
    }
    w->file_bytes += size;
    w->file_records++;
    w->records_total++;
    pos += size;
  }
  if (!w->failed)
    w_write_all(w, buf + run, pos - run);
}

/* Close: END, fsync, close. */
static void w_finish(net_trace_writer_t *w, uint64_t lost_total) {
  if (!w->failed &&
      w_put_framing(w, NET_TRACE_T_END, w->records_total, lost_total, true))
    w_close_file(w);
  if (w->fd >= 0) {
    close(w->fd);
    w->fd = -1;
  }
}

/* Under mu: what the writer thread did, for stats. */
static void w_publish_locked(net_trace_writer_t *w) {
  if (!w->failed)
    w->pub_records_written = w->records_total;
  w->pub_bytes_written = w->bytes_written;
  w->pub_files = w->files;
}

static void *w_main(void *arg) {
  net_trace_writer_t *w = arg;
  w_begin_file(w);
  for (;;) { /* one buffer a pass, until close */
    pthread_mutex_lock(&w->mu);
    w_publish_locked(w);
    while (w->pending == NULL && !w->closing)
      pthread_cond_wait(&w->work_cv, &w->mu);
    uint8_t *buf = w->pending;
    size_t len = w->pending_len;
    uint64_t final_lost = w->final_lost;
    w->pending = NULL;
    w->pending_len = 0;
    pthread_mutex_unlock(&w->mu);

    if (buf == NULL) { /* closing, and everything is written */
      w_finish(w, final_lost);
      pthread_mutex_lock(&w->mu);
      w_publish_locked(w);
      pthread_mutex_unlock(&w->mu);
      return NULL;
    }
    w_write_buffer(w, buf, len); /* a no-op once failed (Invariant (6)) */
    pthread_mutex_lock(&w->mu);
    RT_ASSERT(w->spare == NULL);
    w->spare = buf;
    pthread_cond_signal(&w->spare_cv);
    pthread_mutex_unlock(&w->mu);
  }
}

/* ---- Writer: the appending thread ------------------------------------------ */

static void a_put(net_trace_writer_t *w, uint8_t type, const void *payload,
                  size_t len) {
  RT_ASSERT(w->fill_len + NET_TRACE_RECORD_OVERHEAD + len <= w->buf_cap);
  uint8_t *rec = w->fill + w->fill_len;
  rec[0] = type;
  put_le(rec + 1, len, 3);
  rec[4] = 0; /* both checks are sealed by the writer thread */
  if (len > 0)
    memcpy(rec + NET_TRACE_RECORD_HEAD, payload, len);
  put_le(rec + NET_TRACE_RECORD_HEAD + len, 0, 4);
  w->fill_len += NET_TRACE_RECORD_OVERHEAD + len;
}

static void a_put_lost(net_trace_writer_t *w) {
  uint8_t p[2 * NET_TRACE_VARINT_MAX];
  net_trace_enc_t e;
  net_trace_enc_init(&e, p, sizeof(p));
  net_trace_put_u64(&e, w->lost_pending);
  net_trace_put_u64(&e, w->lost_pending_bytes);
  a_put(w, NET_TRACE_T_LOST, p, e.len);
  w->lost_marked += w->lost_pending;
  w->lost_pending = 0;
  w->lost_pending_bytes = 0;
}

/* Under mu, the spare in hand: queue the filled buffer, take the spare. */
static void a_swap_locked(net_trace_writer_t *w) {
  w->seen_err = w->io_err;
  RT_ASSERT(w->pending == NULL); /* Invariant (1) */
  w->pending = w->fill;
  w->pending_len = w->fill_len;
  w->fill = w->spare;
  w->fill_len = 0;
  w->spare = NULL;
  pthread_cond_signal(&w->work_cv);
}

/* Hand the filled buffer over if the writer thread is free. Never waits
 * beyond the writer's pointer swaps (Invariant (2)). */
static bool a_try_handoff(net_trace_writer_t *w) {
  pthread_mutex_lock(&w->mu);
  w->seen_err = w->io_err;
  bool ok = w->spare != NULL || w->fill_len == 0;
  if (w->spare != NULL && w->fill_len > 0)
    a_swap_locked(w);
  pthread_mutex_unlock(&w->mu);
  return ok;
}

/* Close only: wait for the spare. The writer thread returns every buffer
 * it takes, failed or not (Invariants (1), (6)), so this ends. */
static void a_handoff_wait_locked(net_trace_writer_t *w) {
  while (w->spare == NULL)
    pthread_cond_wait(&w->spare_cv, &w->mu);
  a_swap_locked(w);
}

static int a_lose(net_trace_writer_t *w, size_t len, int err, bool mark) {
  w->records_lost++;
  w->bytes_lost += len;
  if (mark) {
    w->lost_pending++;
    w->lost_pending_bytes += len;
  }
  return err;
}

void net_trace_lose(net_trace_writer_t *w, size_t len) {
  RT_ASSERT(w != NULL);
  RT_ASSERT(pthread_equal(pthread_self(), w->owner));
  (void)a_lose(w, len, 0, w->seen_err == 0);
}

int net_trace_append(net_trace_writer_t *w, uint8_t type, const void *payload,
                     size_t len) {
  RT_ASSERT(w != NULL);
  RT_ASSERT(type_is_user(type));
  RT_ASSERT(payload != NULL || len == 0);
  RT_ASSERT(pthread_equal(pthread_self(), w->owner));
  if (w->seen_err != 0)
    return a_lose(w, len, w->seen_err, false); /* nothing reaches disk */
  if (len > w->payload_max)
    return a_lose(w, len, RT_ELIMIT, true);
  size_t need = NET_TRACE_RECORD_OVERHEAD + len +
                (w->lost_pending > 0 ? NET_TRACE_LOST_RECORD_MAX : 0);
  if (w->fill_len + need > w->buf_cap && !a_try_handoff(w))
    return a_lose(w, len, RT_EFULL, true);
  if (w->seen_err != 0) /* learnt at that hand-off */
    return a_lose(w, len, w->seen_err, false);
  if (w->lost_pending > 0)
    a_put_lost(w); /* the gap, just before the first record after it */
  a_put(w, type, payload, len);
  w->records_appended++;
  /* Half full: start the disk early if it is idle, so a burst finds the
   * other buffer free. Not on every append: a wakeup costs a syscall. */
  if (w->fill_len >= w->buf_cap / 2)
    a_try_handoff(w);
  return 0;
}

int net_trace_flush(net_trace_writer_t *w) {
  RT_ASSERT(w != NULL);
  RT_ASSERT(pthread_equal(pthread_self(), w->owner));
  a_try_handoff(w); /* also refreshes seen_err */
  return w->seen_err;
}

static void stats_locked(net_trace_writer_t *w, net_trace_writer_stats_t *out) {
  memset(out, 0, sizeof(*out));
  out->records_appended = w->records_appended;
  out->records_lost = w->records_lost;
  out->bytes_lost = w->bytes_lost;
  out->records_written = w->pub_records_written;
  out->bytes_written = w->pub_bytes_written;
  out->files = w->pub_files;
  out->err = w->io_err;
  out->os_errno = w->pub_os_errno;
}

void net_trace_writer_stats(net_trace_writer_t *w,
                            net_trace_writer_stats_t *out) {
  RT_ASSERT(w != NULL);
  RT_ASSERT(out != NULL);
  RT_ASSERT(pthread_equal(pthread_self(), w->owner));
  pthread_mutex_lock(&w->mu);
  stats_locked(w, out);
  pthread_mutex_unlock(&w->mu);
}

void net_trace_writer_error(net_trace_writer_t *w, char *buf, size_t cap) {
  RT_ASSERT(w != NULL);
  pthread_mutex_lock(&w->mu);
  say(buf, cap, "%s", w->err_msg);
  pthread_mutex_unlock(&w->mu);
}

static void writer_free(net_trace_writer_t *w, bool sync_ready) {
  if (w->fd >= 0)
    close(w->fd);
  if (w->dir_fd >= 0)
    close(w->dir_fd);
  if (sync_ready) {
    pthread_cond_destroy(&w->spare_cv);
    pthread_cond_destroy(&w->work_cv);
    pthread_mutex_destroy(&w->mu);
  }
  free(w->bufs[0]);
  free(w->bufs[1]);
  free(w);
}

int net_trace_writer_close(net_trace_writer_t *w,
                           net_trace_writer_stats_t *stats, char *err,
                           size_t err_cap) {
  RT_ASSERT(w != NULL);
  RT_ASSERT(pthread_equal(pthread_self(), w->owner));
  pthread_mutex_lock(&w->mu);
  if (w->io_err == 0 && w->lost_pending > 0) {
    /* The last gap gets its marker too: make room, waiting if need be. */
    if (w->fill_len + NET_TRACE_LOST_RECORD_MAX > w->buf_cap)
      a_handoff_wait_locked(w);
    a_put_lost(w);
  }
  a_handoff_wait_locked(w); /* the last buffer, possibly empty */
  w->closing = true;
  w->final_lost = w->lost_marked;
  pthread_cond_signal(&w->work_cv);
  pthread_mutex_unlock(&w->mu);
  pthread_join(w->thread, NULL);

  /* The writer thread is gone: everything is ours again. */
  net_trace_writer_stats_t st;
  stats_locked(w, &st);
  if (stats != NULL)
    *stats = st;
  say(err, err_cap, "%s", w->err_msg);
  writer_free(w, true);
  return st.err;
}

int net_trace_writer_open(const char *dir, const net_trace_header_t *hdr,
                          uint64_t max_bytes_per_file,
                          net_trace_writer_t **out, char *err,
                          size_t err_cap) {
  net_trace_writer_config_t cfg = {.max_bytes_per_file = max_bytes_per_file};
  return net_trace_writer_open_ex(dir, hdr, &cfg, out, err, err_cap);
}

/* Check the arguments of open; 0 or -RT_EINVAL with a sentence. */
static int writer_check_args(const char *dir, const char *config,
                             const net_trace_writer_config_t *cfg, char *err,
                             size_t err_cap) {
  size_t dir_len = strlen(dir);
  if (dir_len == 0 || dir_len >= NET_TRACE_DIR_MAX) {
    say(err, err_cap, "trace directory name is empty or too long (%zu bytes)",
        dir_len);
    return RT_EINVAL;
  }
  size_t config_len = strnlen(config, NET_TRACE_CONFIG_MAX + 1);
  if (config_len > NET_TRACE_CONFIG_MAX) {
    say(err, err_cap, "trace config is longer than %u bytes",
        NET_TRACE_CONFIG_MAX);
    return RT_EINVAL;
  }
  if (!rt_utf8_valid((const uint8_t *)config, config_len)) {
    say(err, err_cap, "trace config is not valid UTF-8");
    return RT_EINVAL;
  }
  if (cfg->max_bytes_per_file < NET_TRACE_FILE_BYTES_MIN ||
      cfg->max_bytes_per_file > NET_TRACE_FILE_BYTES_MAX) {
    say(err, err_cap,
        "trace file size %" PRIu64 " is not within [%u, %llu] bytes",
        cfg->max_bytes_per_file, NET_TRACE_FILE_BYTES_MIN,
        NET_TRACE_FILE_BYTES_MAX);
    return RT_EINVAL;
  }
  if (cfg->buffer_bytes < NET_TRACE_BUFFER_BYTES_MIN ||
      cfg->buffer_bytes > NET_TRACE_BUFFER_BYTES_MAX) {
    say(err, err_cap, "trace buffer size %" PRIu32 " is not within [%u, %u]",
        cfg->buffer_bytes, NET_TRACE_BUFFER_BYTES_MIN,
        NET_TRACE_BUFFER_BYTES_MAX);
    return RT_EINVAL;
  }
  return 0;
}

/* Whether the directory holds any trace-*.oct file (its name into found).
 * Checked before file 1 is created: an old trace's later files would make
 * a rotation fail (O_EXCL) long after the start, and mix two recordings.
 * Borrows dir_fd. 1, 0, or a negative RT_E* when it cannot be read. */
static int dir_holds_trace(int dir_fd, char *found, size_t found_cap) {
  int fd = dup(dir_fd);
  if (fd < 0)
    return RT_EIO;
  DIR *d = fdopendir(fd);
  if (d == NULL) {
    close(fd);
    return RT_EIO;
  }
  int rc = 0;
  for (struct dirent *e = readdir(d); e != NULL; e = readdir(d)) {
    size_t n = strlen(e->d_name);
    if (n >= 10 && strncmp(e->d_name, "trace-", 6) == 0 &&
        strcmp(e->d_name + n - 4, ".oct") == 0) {
      snprintf(found, found_cap, "%s", e->d_name);
      rc = 1;
      break;
    }
  }
  closedir(d);
  return rc;
}

/* Create dir if missing, and file 1 in it; the writer keeps the fds. */
static int writer_create_first(net_trace_writer_t *w, char *err,
                               size_t err_cap) {
  if (mkdir(w->dir, 0755) != 0 && errno != EEXIST) {
    say(err, err_cap, "%s: cannot create the trace directory: %s", w->dir,
        strerror(errno));
    return RT_EIO;
  }
  if (w->open_file == NULL) {
    w->dir_fd = open(w->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (w->dir_fd < 0) {
      say(err, err_cap, "%s: cannot open the trace directory: %s", w->dir,
          strerror(errno));
      return RT_EIO;
    }
    char found[256];
    int held = dir_holds_trace(w->dir_fd, found, sizeof(found));
    if (held < 0) {
      say(err, err_cap, "%s: cannot read the trace directory: %s", w->dir,
          strerror(errno));
      return RT_EIO;
    }
    if (held > 0) {
      say(err, err_cap,
          "%s/%s: the directory already holds a trace; record into a new one",
          w->dir, found);
      return RT_EINVAL;
    }
  }
  char path[NET_TRACE_PATH_MAX];
  file_path(path, w->dir, 1);
  int fd = w_open(w, path, 1);
  if (fd == -EEXIST) {
    say(err, err_cap,
        "%s: the directory already holds a trace; record into a new one",
        path);
    return RT_EINVAL;
  }
  if (fd < 0) {
    say(err, err_cap, "%s: cannot create: %s", path, strerror(-fd));
    return RT_EIO;
  }
  w->fd = fd;
  w->seq = 1;
  return 0;
}

int net_trace_writer_open_ex(const char *dir, const net_trace_header_t *hdr,
                             const net_trace_writer_config_t *cfg_in,
                             net_trace_writer_t **out, char *err,
                             size_t err_cap) {
  RT_ASSERT(dir != NULL);
  RT_ASSERT(hdr != NULL);
  RT_ASSERT(out != NULL);
  *out = NULL;
  say(err, err_cap, "%s", "");
  net_trace_writer_config_t cfg = {0};
  if (cfg_in != NULL)
    cfg = *cfg_in;
  if (cfg.max_bytes_per_file == 0)
    cfg.max_bytes_per_file = NET_TRACE_FILE_BYTES_DEFAULT;
  if (cfg.buffer_bytes == 0)
    cfg.buffer_bytes = NET_TRACE_BUFFER_BYTES_DEFAULT;
  const char *config = hdr->config != NULL ? hdr->config : "";
  int rc = writer_check_args(dir, config, &cfg, err, err_cap);
  if (rc != 0)
    return rc;

  bool sync_ready = false;
  net_trace_writer_t *w = calloc(1, sizeof(*w));
  if (w == NULL)
    goto nomem;
  w->fd = -1;
  w->dir_fd = -1;
  snprintf(w->dir, sizeof(w->dir), "%s", dir);
  w->hdr = *hdr;
  w->hdr.version = NET_TRACE_VERSION;
  w->hdr.config_len = (uint32_t)strlen(config);
  memcpy(w->config, config, w->hdr.config_len);
  w->hdr.config = w->config;
  w->max_file_bytes = cfg.max_bytes_per_file;
  w->buf_cap = cfg.buffer_bytes;
  /* Room for a record and the LOST record that may precede it. */
  w->payload_max = w->buf_cap - NET_TRACE_RECORD_OVERHEAD -
                   NET_TRACE_LOST_RECORD_MAX;
  if (w->payload_max > NET_TRACE_PAYLOAD_MAX)
    w->payload_max = NET_TRACE_PAYLOAD_MAX;
  w->open_file = cfg.open_file;
  w->open_ctx = cfg.open_ctx;
  w->bufs[0] = malloc(w->buf_cap);
  w->bufs[1] = malloc(w->buf_cap);
  if (w->bufs[0] == NULL || w->bufs[1] == NULL)
    goto nomem_free;
  w->fill = w->bufs[0];
  w->spare = w->bufs[1];
  if (pthread_mutex_init(&w->mu, NULL) != 0)
    goto nomem_free;
  if (pthread_cond_init(&w->work_cv, NULL) != 0) {
    pthread_mutex_destroy(&w->mu);
    goto nomem_free;
  }
  if (pthread_cond_init(&w->spare_cv, NULL) != 0) {
    pthread_cond_destroy(&w->work_cv);
    pthread_mutex_destroy(&w->mu);
    goto nomem_free;
  }
  sync_ready = true;
  rc = writer_create_first(w, err, err_cap);
  if (rc != 0)
    goto fail;

  w->owner = pthread_self();
  /* The writer thread takes no signals: they stay with the event loop, and
   * a write to a closed pipe returns EPIPE instead of killing the process
   * (SIGPIPE is thread-directed, and stays pending on a blocked thread). */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int trc = pthread_create(&w->thread, NULL, w_main, w);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (trc != 0) {
    say(err, err_cap, "cannot start the trace writer thread: %s",
        strerror(trc));
    if (w->open_file == NULL) {
      char path[NET_TRACE_PATH_MAX];
      file_path(path, w->dir, 1);
      unlink(path); /* so that a retry in the same directory works */
    }
    rc = RT_ENOMEM;
    goto fail;
  }
  *out = w;
  return 0;

nomem_free:
  writer_free(w, false);
nomem:
  say(err, err_cap, "out of memory for the trace writer");
  return RT_ENOMEM;
fail:
  writer_free(w, sync_ready);
  return rc;
}

/* ---- Reader ------------------------------------------------------------------ */

struct net_trace_reader {
  char dir[NET_TRACE_DIR_MAX];
  char path[NET_TRACE_PATH_MAX]; /* the file being read */
  int fd;
  uint32_t seq;    /* its number; 0 while unknown (a file not named so) */
  bool from_start; /* began at file 1: LOST totals can be checked */
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

static int r_fail(net_trace_reader_t *r, net_trace_fault_t fault,
                  const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int r_fail(net_trace_reader_t *r, net_trace_fault_t fault,
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
static int r_truncated(net_trace_reader_t *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int r_truncated(net_trace_reader_t *r, const char *fmt, ...) {
  char what[NET_TRACE_ERR_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof(what), fmt, ap);
  va_end(ap);
  char next[NET_TRACE_PATH_MAX];
  struct stat st;
  if (r->seq > 0 && r->seq < NET_TRACE_FILES_MAX &&
      file_path(next, r->dir, r->seq + 1) && stat(next, &st) == 0)
    return r_fail(r, NET_TRACE_FAULT_CORRUPT,
                  "%s; yet %s follows, so this file was damaged, not cut "
                  "short by a crash",
                  what, next);
  return r_fail(r, NET_TRACE_FAULT_TRUNCATED, "%s", what);
}

/* Room for `want` bytes and a chunk after them, at most NET_TRACE_READ_BUF.
 * The buffer starts at one chunk, which holds any header and most records:
 * a small trace is read with 64 KiB, not with the megabyte its largest
 * possible record would need (a fuzzer opens thousands a second). */
static int r_grow(net_trace_reader_t *r, size_t want) {
  size_t cap = want + NET_TRACE_READ_CHUNK;
  if (cap > NET_TRACE_READ_BUF)
    cap = NET_TRACE_READ_BUF;
  uint8_t *grown = realloc(r->buf, cap);
  if (grown == NULL)
    return r_fail(r, NET_TRACE_FAULT_IO,
                  "%s: out of memory for a record of %zu bytes", r->path,
                  want);
  r->buf = grown;
  r->cap = cap;
  return 0;
}

/* Make `want` bytes available at buf[start] if the file has them. Returns
 * the bytes available (fewer than want only at the end of the file), or a
 * negative error. Bounded: each read adds bytes or reaches the end. */
static int64_t r_fill(net_trace_reader_t *r, size_t want) {
  RT_ASSERT(want <= NET_TRACE_READ_BUF);
  if (r->end - r->start < want && !r->eof) {
    if (r->start > 0) {
      memmove(r->buf, r->buf + r->start, r->end - r->start);
      r->end -= r->start;
      r->start = 0;
    }
    if (want > r->cap && r_grow(r, want) < 0)
      return r->err;
    while (r->end < want && !r->eof) {
      ssize_t n = read(r->fd, r->buf + r->end, r->cap - r->end);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return r_fail(r, NET_TRACE_FAULT_IO,
                      "%s: read failed at byte %" PRIu64 ": %s", r->path,
                      r->off + (r->end - r->start), strerror(errno));
      if (n == 0)
        r->eof = true;
      r->end += (size_t)n;
    }
  }
  return (int64_t)(r->end - r->start);
}

static void r_consume(net_trace_reader_t *r, size_t n) {
  RT_ASSERT(n <= r->end - r->start);
  r->start += n;
  r->off += n;
}

/* Open r->path as the current file. */
static int r_open_file(net_trace_reader_t *r, const char *why) {
  if (r->fd >= 0)
    close(r->fd);
  r->start = r->end = 0;
  r->eof = false;
  r->off = 0;
  r->fd = open(r->path, O_RDONLY | O_CLOEXEC);
  if (r->fd >= 0)
    return 0;
  if (errno == ENOENT)
    return r_fail(r, NET_TRACE_FAULT_MISSING_FILE, "missing file %s%s",
                  r->path, why);
  return r_fail(r, NET_TRACE_FAULT_IO, "%s: cannot open: %s", r->path,
                strerror(errno));
}

/* Read and check the current file's header (at its start). */
static int r_read_header(net_trace_reader_t *r, net_trace_header_t *h,
                         char *config, uint32_t *seq, uint64_t *first_record) {
  int64_t got = r_fill(r, 20);
  if (got < 0)
    return (int)got;
  size_t avail = (size_t)got;
  const uint8_t *b = r->buf + r->start;
  if (memcmp(b, NET_TRACE_MAGIC, avail < 8 ? avail : 8) != 0)
    return r_fail(r, NET_TRACE_FAULT_BAD_MAGIC,
                  "%s: not a trace file (bad magic: it does not begin with "
                  "\"OCTRACE\")",
                  r->path);
  if (avail == 0)
    return r_truncated(r, "%s: truncated: the file is empty (the recording "
                          "stopped before its header)",
                       r->path);
  if (avail < 20)
    return r_truncated(r,
                       "%s: truncated in the header (%zu bytes; a header "
                       "has at least %u)",
                       r->path, avail, NET_TRACE_HEADER_FIXED);
  if (get_le(b + 16, 4) != net_trace_crc32c(0, b, 16))
    return r_fail(r, NET_TRACE_FAULT_CORRUPT,
                  "%s: header damaged: the check of its first 16 bytes does "
                  "not match",
                  r->path);
  uint32_t version = (uint32_t)get_le(b + 8, 4);
  if (version != NET_TRACE_VERSION)
    return r_fail(r, NET_TRACE_FAULT_BAD_VERSION,
                  "%s: trace version %" PRIu32
                  ", this build reads version %u",
                  r->path, version, NET_TRACE_VERSION);
  uint32_t hlen = (uint32_t)get_le(b + 12, 4);
  if (hlen < NET_TRACE_HEADER_FIXED || hlen > NET_TRACE_HEADER_MAX)
    return r_fail(r, NET_TRACE_FAULT_CORRUPT,
                  "%s: header length %" PRIu32 " is not within [%u, %u]",
                  r->path, hlen, NET_TRACE_HEADER_FIXED, NET_TRACE_HEADER_MAX);
  got = r_fill(r, hlen);
  if (got < 0)
    return (int)got;
  if ((size_t)got < hlen)
    return r_truncated(r,
                       "%s: truncated in the header (expected %" PRIu32
                       " bytes, %zu left)",
                       r->path, hlen, (size_t)got);
  b = r->buf + r->start; /* r_fill may have moved it */
  if (get_le(b + hlen - 4, 4) != net_trace_crc32c(0, b, hlen - 4))
    return r_fail(r, NET_TRACE_FAULT_CORRUPT,
                  "%s: header damaged: its checksum does not match", r->path);
  uint32_t config_len = (uint32_t)get_le(b + 52, 4);
  if (config_len != hlen - NET_TRACE_HEADER_FIXED)
    return r_fail(r, NET_TRACE_FAULT_CORRUPT,
                  "%s: header damaged: config length %" PRIu32
                  " disagrees with header length %" PRIu32,
                  r->path, config_len, hlen);
  if (!rt_utf8_valid(b + 56, config_len))
    return r_fail(r, NET_TRACE_FAULT_CORRUPT,
                  "%s: header damaged: its config is not UTF-8", r->path);
  /* The format has no NUL in a config (the writer takes a C string), and
   * the reader hands it on as one: a NUL would cut the flags a replay runs
   * with short of the config_len bytes the checks covered. */
  if (memchr(b + 56, '\0', config_len) != NULL)
    return r_fail(r, NET_TRACE_FAULT_CORRUPT,
                  "%s: header damaged: its config holds a NUL byte", r->path);
  memset(h, 0, sizeof(*h));
  h->version = version;
  h->flags = (uint32_t)get_le(b + 20, 4);
  *seq = (uint32_t)get_le(b + 24, 4);
  h->seed = get_le(b + 28, 8);
  h->epoch_unix_ns = (int64_t)get_le(b + 36, 8);
  *first_record = get_le(b + 44, 8);
  memcpy(config, b + 56, config_len);
  config[config_len] = '\0';
  h->config = config;
  h->config_len = config_len;
  r_consume(r, hlen);
  return 0;
}

/* NEXT_FILE was read: move to the next file and check that it continues
 * this recording where the last one stopped. */
static int r_next_file(net_trace_reader_t *r) {
  if (r->seq == 0 || r->seq >= NET_TRACE_FILES_MAX)
    return r_fail(r, NET_TRACE_FAULT_CORRUPT,
                  "%s: continues in a file that cannot exist (file %" PRIu32
                  " of at most %u)",
                  r->path, r->seq, NET_TRACE_FILES_MAX);
  char why[NET_TRACE_PATH_MAX + 32];
  snprintf(why, sizeof(why), " (%s continues there)", r->path);
  r->seq++;
  if (!file_path(r->path, r->dir, r->seq))
    return r_fail(r, NET_TRACE_FAULT_IO, "%s: path too long", r->dir);
  int rc = r_open_file(r, why);
  if (rc != 0)
    return rc;
  net_trace_header_t h;
  uint32_t seq;
  uint64_t first;
  rc = r_read_header(r, &h, r->config_next, &seq, &first);
  if (rc != 0)
    return rc;
  if (seq != r->seq)
    return r_fail(r, NET_TRACE_FAULT_SEQUENCE,
                  "%s: holds file %" PRIu32 " of its recording, not file %" PRIu32,
                  r->path, seq, r->seq);
  if (first != r->index)
    return r_fail(r, NET_TRACE_FAULT_SEQUENCE,
                  "%s: begins at record %" PRIu64
                  ", but the file before it ended before record %" PRIu64,
                  r->path, first, r->index);
  if (h.flags != r->hdr.flags || h.seed != r->hdr.seed ||
      h.epoch_unix_ns != r->hdr.epoch_unix_ns ||
      h.config_len != r->hdr.config_len ||
      memcmp(h.config, r->hdr.config, h.config_len) != 0)
    return r_fail(r, NET_TRACE_FAULT_SEQUENCE,
                  "%s: belongs to another recording (its seed, flags, clock "
                  "or config differ from the first file's)",
                  r->path);
  return 0;
}

/* After a closing record nothing may follow in its file. */
static int r_expect_file_end(net_trace_reader_t *r, const char *what,
                             uint64_t at) {
  int64_t got = r_fill(r, 1);
  if (got < 0)
    return (int)got;
  if (got > 0)
    return r_fail(r, NET_TRACE_FAULT_CORRUPT,
                  "%s: bytes follow the %s record at byte %" PRIu64, r->path,
                  what, at);
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

/* Read one record: 1 (a record for the caller), 0 (END), 2 (moved to the
 * next file), or a negative error. */
static int r_record(net_trace_reader_t *r, net_trace_record_t *rec) {
  uint64_t at = r->off;
  uint64_t idx = r->index;
  int64_t got = r_fill(r, NET_TRACE_RECORD_HEAD);
  if (got < 0)
    return (int)got;
  if (got == 0)
    return r_truncated(r,
                       "%s: truncated at byte %" PRIu64 ", before record %" PRIu64
                       ": no END record (the recording stopped without "
                       "closing: it crashed, or is still being written)",
                       r->path, at, idx);
  if (got < NET_TRACE_RECORD_HEAD)
    return r_truncated(r,
                       "%s: truncated in the middle of record %" PRIu64
                       " at byte %" PRIu64
                       " (expected at least %u bytes, %zu left)",
                       r->path, idx, at, NET_TRACE_RECORD_OVERHEAD,
                       (size_t)got);
  const uint8_t *b = r->buf + r->start;
  if (head_check(b) != b[4])
    return r_fail(r, NET_TRACE_FAULT_CORRUPT,
                  "%s: record %" PRIu64 " at byte %" PRIu64
                  ": head check mismatch (its type or length is damaged)",
                  r->path, idx, at);
  uint8_t type = b[0];
  size_t len = (size_t)get_le(b + 1, 3);
  if (!type_is_user(type) && type != NET_TRACE_T_END &&
      type != NET_TRACE_T_NEXT_FILE && type != NET_TRACE_T_LOST)
    return r_fail(r, NET_TRACE_FAULT_CORRUPT,
                  "%s: record %" PRIu64 " at byte %" PRIu64
                  ": type %u is not defined in trace version %u",
                  r->path, idx, at, type, NET_TRACE_VERSION);
  if (len > NET_TRACE_PAYLOAD_MAX)
    return r_fail(r, NET_TRACE_FAULT_CORRUPT,
                  "%s: record %" PRIu64 " at byte %" PRIu64
                  ": length %zu exceeds the limit %u",
                  r->path, idx, at, len, NET_TRACE_PAYLOAD_MAX);
  size_t size = NET_TRACE_RECORD_OVERHEAD + len;
  got = r_fill(r, size);
  if (got < 0)
    return (int)got;
  if ((size_t)got < size)
    return r_truncated(r,
                       "%s: truncated in the middle of record %" PRIu64
                       " at byte %" PRIu64 " (expected %zu bytes, %zu left)",
                       r->path, idx, at, size, (size_t)got);
  b = r->buf + r->start;
  uint32_t stored = (uint32_t)get_le(b + NET_TRACE_RECORD_HEAD + len, 4);
  uint32_t computed = net_trace_crc32c(0, b, NET_TRACE_RECORD_HEAD + len);
  if (stored != computed)
    return r_fail(r, NET_TRACE_FAULT_CORRUPT,
                  "%s: record %" PRIu64 " at byte %" PRIu64
                  ": checksum mismatch (stored %08" PRIx32
                  ", computed %08" PRIx32 ")",
                  r->path, idx, at, stored, computed);
  const uint8_t *payload = b + NET_TRACE_RECORD_HEAD;
  r_consume(r, size); /* payload stays valid until the next r_fill */
  r->index++;

  uint64_t f1 = 0, f2 = 0;
  int rc = 0;
  switch (type) {
  case NET_TRACE_T_NEXT_FILE:
    if (!decode_fields(payload, len, &f1, &f2, false) || f1 != r->index)
      return r_fail(r, NET_TRACE_FAULT_CORRUPT,
                    "%s: record %" PRIu64 " at byte %" PRIu64
                    ": NEXT_FILE does not name record %" PRIu64 " as the next",
                    r->path, idx, at, r->index);
    rc = r_expect_file_end(r, "NEXT_FILE", at);
    if (rc == 0)
      rc = r_next_file(r);
    return rc != 0 ? rc : 2;
  case NET_TRACE_T_END:
    if (!decode_fields(payload, len, &f1, &f2, true) || f1 != idx)
      return r_fail(r, NET_TRACE_FAULT_CORRUPT,
                    "%s: record %" PRIu64 " at byte %" PRIu64
                    ": END does not count %" PRIu64 " records before it",
                    r->path, idx, at, idx);
    if (r->from_start && f2 != r->lost)
      return r_fail(r, NET_TRACE_FAULT_CORRUPT,
                    "%s: END says %" PRIu64
                    " records were lost, the LOST records say %" PRIu64,
                    r->path, f2, r->lost);
    rc = r_expect_file_end(r, "END", at);
    if (rc != 0)
      return rc;
    r->done = true;
    return 0;
  case NET_TRACE_T_LOST:
    if (!decode_fields(payload, len, &f1, &f2, true) || f1 == 0)
      return r_fail(r, NET_TRACE_FAULT_CORRUPT,
                    "%s: record %" PRIu64 " at byte %" PRIu64
                    ": a LOST record that counts nothing",
                    r->path, idx, at);
    r->lost += f1;
    break;
  default:
    break;
  }
  rec->type = type;
  rec->len = (uint32_t)len;
  rec->payload = payload;
  rec->index = idx;
  rec->file_seq = r->seq;
  rec->offset = at;
  return 1;
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
    int rc = r_record(r, rec);
    if (rc != 2)
      return rc;
  }
  return r_fail(r, NET_TRACE_FAULT_CORRUPT, "%s: too many files", r->dir);
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
static int r_locate(net_trace_reader_t *r, const char *path,
                    uint32_t *expect_seq) {
  struct stat st;
  if (strlen(path) >= NET_TRACE_DIR_MAX)
    return r_fail(r, NET_TRACE_FAULT_IO, "trace path too long");
  if (stat(path, &st) != 0) {
    if (errno == ENOENT)
      return r_fail(r, NET_TRACE_FAULT_MISSING_FILE, "%s: no such file or "
                    "directory", path);
    return r_fail(r, NET_TRACE_FAULT_IO, "%s: %s", path, strerror(errno));
  }
  if (S_ISDIR(st.st_mode)) {
    snprintf(r->dir, sizeof(r->dir), "%s", path);
    *expect_seq = 1;
    file_path(r->path, r->dir, 1);
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

int net_trace_reader_open(const char *path, net_trace_reader_t **out,
                          char *err, size_t err_cap) {
  RT_ASSERT(path != NULL);
  RT_ASSERT(out != NULL);
  *out = NULL;
  say(err, err_cap, "%s", "");
  net_trace_reader_t *r = calloc(1, sizeof(*r));
  if (r == NULL) {
    say(err, err_cap, "out of memory for the trace reader");
    return RT_ENOMEM;
  }
  r->fd = -1;
  r->cap = NET_TRACE_READ_CHUNK; /* grown by r_fill as records need */
  r->buf = malloc(r->cap);
  if (r->buf == NULL) {
    free(r);
    say(err, err_cap, "out of memory for the trace reader");
    return RT_ENOMEM;
  }
  uint32_t expect_seq = 0;
  uint32_t seq = 0;
  uint64_t first = 0;
  int rc = r_locate(r, path, &expect_seq);
  r->seq = expect_seq;
  if (rc == 0)
    rc = r_open_file(r, expect_seq == 1 ? " (no trace here)" : "");
  if (rc == 0)
    rc = r_read_header(r, &r->hdr, r->config, &seq, &first);
  if (rc == 0 && expect_seq != 0 && seq != expect_seq)
    rc = r_fail(r, NET_TRACE_FAULT_SEQUENCE,
                "%s: holds file %" PRIu32 " of its recording, not file %" PRIu32,
                r->path, seq, expect_seq);
  if (rc == 0 && (seq == 1) != (first == 0))
    rc = r_fail(r, NET_TRACE_FAULT_SEQUENCE,
                "%s: file %" PRIu32 " of its recording begins at record %" PRIu64,
                r->path, seq, first);
  if (rc != 0) {
    say(err, err_cap, "%s", r->msg);
    net_trace_reader_close(r);
    return rc;
  }
  r->seq = seq;
  r->index = first;
  r->from_start = seq == 1;
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
