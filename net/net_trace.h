/* net_trace.h: the trace file format: records in, records out, checked.
 *
 * The live server records every input that crosses the world seam (accepts,
 * read chunks, write acceptances, closes, time steps, storage results) and
 * checkpoints of its output, so a replay can reproduce the run bit for bit.
 * This module is only the file format: a writer that appends opaque records
 * without ever touching the disk on the appending thread, and a reader that
 * validates every byte and says exactly what is wrong when something is.
 * What each record's payload means belongs to the recorder and the replay.
 *
 * ---- Format, version 1 (all integers little-endian) ------------------------
 *
 * A recording is the files DIR/trace-000001.oct, trace-000002.oct, ... Each
 * file is a header, then records, then (normally) one closing record:
 *   file    := header record* closing?
 *   closing := NEXT_FILE (the recording continues in the next file)
 *            | END       (the recording finished cleanly)
 * A file with no closing record was cut short: the recording crashed (the
 * last file; readable up to its last whole record) or a file was damaged.
 *
 * Header (60 + n bytes):
 *   off  size  field
 *   0    8     magic "OCTRACE\0"
 *   8    4     version (1)
 *   12   4     header_len: the whole header, 60 + n
 *   16   4     prefix check: CRC-32C of bytes [0, 16)
 *   20   4     flags (the recorder's; opaque here)
 *   24   4     file_seq: 1, 2, ... (matches the file's name)
 *   28   8     seed (the recording's PRNG seed)
 *   36   8     epoch_unix_ns (signed: wall clock at world time 0)
 *   44   8     first_record: index of this file's first record
 *   52   4     config_len n <= NET_TRACE_CONFIG_MAX
 *   56   n     config: free-form UTF-8 (the server's flags), no NUL
 *   56+n 4     header check: CRC-32C of bytes [0, 56 + n)
 * The first 20 bytes (magic, version, length, their check) keep this shape
 * in every future version, so any reader can tell "a newer version" (an
 * intact prefix with another number) from "a damaged header". The seed,
 * epoch, flags and config repeat in every file and must agree.
 *
 * Record (9 + len bytes):
 *   off    size  field
 *   0      1     type (NET_TRACE_T_*)
 *   1      3     len: payload bytes, <= NET_TRACE_PAYLOAD_MAX
 *   4      1     head check: CRC-8 (poly 0x07, init 0xFF) of bytes [0, 4)
 *   5      len   payload (opaque; see the field helpers below)
 *   5+len  4     check: CRC-32C of bytes [0, 5 + len)
 * Records are numbered from 0 across the whole recording (closing and LOST
 * records included), so a file's first_record plus its position gives any
 * record's index.
 *
 * Why these checks. CRC-32C (Castagnoli; iSCSI, ext4, LevelDB and RocksDB
 * logs) rather than a truncated 64-bit hash from rt_hash.h: a CRC detects
 * every error burst no longer than its width with certainty, so damage to
 * any one byte (or any 4 adjacent bytes) of a record is always caught, where
 * a hash catches it with probability 1 - 2^-32. The one-byte head check lets
 * the reader trust a record's length before reading its payload: a file that
 * ends inside a record whose head checks out was cut short (truncated), not
 * damaged, and a damaged length is reported as damage rather than as a
 * truncation. The length is a fixed 3 bytes, not a varint, so that the
 * bytes the head check covers never depend on the bytes being checked.
 *
 * Framing records, written by this layer only:
 *   END        u64 records before it, u64 records lost in all (LOST sums)
 *   NEXT_FILE  u64 index of the next record (the next file's first_record)
 *   LOST       u64 records lost at this point, u64 their payload bytes
 * (u64 here is the varint of net_trace_put_u64.)
 *
 * ---- Threads ---------------------------------------------------------------
 * A writer has one appending thread (the event loop: the one that opened it)
 * and one background thread of its own that does all file I/O. Appending
 * copies the record into an in-memory buffer and never calls into the file
 * system; when the buffer is full the record is refused with -RT_EFULL and
 * counted, and a LOST record marks the gap in the trace. A reader is
 * single-threaded and does blocking I/O (it belongs to tools, not to a live
 * event loop).
 */
#ifndef NET_TRACE_H
#define NET_TRACE_H

#include "rt_err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- Format constants ---------------------------------------------------- */

#define NET_TRACE_MAGIC "OCTRACE" /* with its NUL: 8 bytes */
#define NET_TRACE_MAGIC_LEN 8u
#define NET_TRACE_VERSION 1u
#define NET_TRACE_HEADER_FIXED 60u /* header bytes besides the config */
#define NET_TRACE_CONFIG_MAX 4096u
#define NET_TRACE_HEADER_MAX (NET_TRACE_HEADER_FIXED + NET_TRACE_CONFIG_MAX)
#define NET_TRACE_RECORD_HEAD 5u      /* type, len, head check */
#define NET_TRACE_RECORD_OVERHEAD 9u  /* head + CRC-32C */
#define NET_TRACE_PAYLOAD_MAX (1u << 20) /* fits the 3-byte length */
#define NET_TRACE_VARINT_MAX 10u         /* bytes of one encoded u64 */
/* The largest closing record (END: two varints): a file reserves room for
 * it, so every file can be closed without passing max_bytes. */
#define NET_TRACE_TAIL_MAX                                                     \
  (NET_TRACE_RECORD_OVERHEAD + 2 * NET_TRACE_VARINT_MAX)
#define NET_TRACE_FILES_MAX 999999u /* six digits in the name */
#define NET_TRACE_PATH_MAX 4096u
#define NET_TRACE_ERR_MAX 512u /* a message buffer that fits any message */

/* Rotation: each file holds at most max_bytes, except a file whose single
 * record does not fit an empty file (a record is never split). */
#define NET_TRACE_FILE_BYTES_DEFAULT (256ull << 20) /* --record-max-mb */
#define NET_TRACE_FILE_BYTES_MIN (16u << 10) /* a full header and more */
#define NET_TRACE_FILE_BYTES_MAX (1ull << 40)

/* The writer's two buffers, each this size: one filling, one being written.
 * Appends are refused once the filling one is full while the other is still
 * on its way to disk. */
#define NET_TRACE_BUFFER_BYTES_DEFAULT (4u << 20)
#define NET_TRACE_BUFFER_BYTES_MIN (4u << 10)
#define NET_TRACE_BUFFER_BYTES_MAX (64u << 20)

/* ---- Record types --------------------------------------------------------
 * One byte, in bands so the format can grow without renumbering:
 *   0          never a record (a run of zeros is damage, not data)
 *   1..15      framing, written by this layer only
 *   16..127    inputs at the world seam
 *   128..239   outputs and checks
 *   240..255   reserved
 * A new input or output type needs no change here beyond a name: the writer
 * accepts and the reader returns any type in 16..239. A new framing type, or
 * a changed meaning, needs a new NET_TRACE_VERSION. */
enum {
  NET_TRACE_T_NONE = 0,
  NET_TRACE_T_END = 1,
  NET_TRACE_T_NEXT_FILE = 2,
  NET_TRACE_T_LOST = 3,
  NET_TRACE_T_FRAMING_MAX_ = 15,

  NET_TRACE_T_USER_MIN = 16,
  /* Inputs (net_record.h says what each payload holds). */
  NET_TRACE_T_TIME = 16,         /* world time stepped to a value */
  NET_TRACE_T_PASS = 17,         /* a driver call began (pump, timers, run) */
  NET_TRACE_T_ACCEPT = 18,       /* what an accept gave */
  NET_TRACE_T_READ = 19,         /* what a read gave, with its bytes */
  NET_TRACE_T_WRITE = 20,        /* how many bytes a write accepted */
  NET_TRACE_T_CLOSE = 21,        /* a stream closed, with its output check */
  NET_TRACE_T_STREAM_EVENT = 22, /* RT_STREAM_* bits signalled */
  NET_TRACE_T_EXTERNAL = 23,     /* a storage result or token check */
  NET_TRACE_T_BACKLOG = 24,      /* what a backlog query answered */
  NET_TRACE_T_CONTROL = 25,      /* the operator's hand: shutdown, teardown */

  /* Outputs and checks. */
  NET_TRACE_T_CHECKPOINT = 128, /* a driver call ended: hashes to compare */
  NET_TRACE_T_SHUTDOWN = 129,   /* a stream's sending side was finished */
  NET_TRACE_T_USER_MAX = 239,
};

/* "READ", "END", ...; "?" for a type with no name. Never NULL. */
const char *net_trace_type_name(uint8_t type);

/* CRC-32C (Castagnoli) of n bytes at p, continuing from crc (0 to start).
 * Borrows p. net_trace_crc32c(0, "123456789", 9) == 0xe3069283. */
uint32_t net_trace_crc32c(uint32_t crc, const void *p, size_t n);

/* ---- The header ----------------------------------------------------------- */

typedef struct net_trace_header {
  uint32_t version;      /* the reader fills it; the writer ignores it */
  uint32_t flags;        /* the recorder's */
  uint64_t seed;         /* the recording's PRNG seed */
  int64_t epoch_unix_ns; /* wall clock at world time 0 */
  /* UTF-8, at most NET_TRACE_CONFIG_MAX bytes. The writer copies it as a
   * NUL-terminated string (NULL: empty) and ignores config_len; the
   * reader's points into the reader, NUL-terminated, with config_len. */
  const char *config;
  uint32_t config_len;
} net_trace_header_t;

/* ---- Payload fields -------------------------------------------------------
 * A payload is a sequence of fields the recorder chooses; these helpers
 * write and read the common ones. Errors are sticky: a sequence of puts or
 * gets needs one check at the end.
 *   u64      LEB128 varint, 1..10 bytes, canonical (shortest) only
 *   i64      zigzag, then as u64
 *   fixed64  8 bytes (a hash: cheaper than its 10-byte varint)
 *   bytes    u64 length, then the bytes */

typedef struct net_trace_enc {
  uint8_t *buf; /* borrowed */
  size_t cap;
  size_t len;
  bool overflow; /* a put did not fit: nothing after it was written */
} net_trace_enc_t;

void net_trace_enc_init(net_trace_enc_t *e, void *buf, size_t cap);
void net_trace_put_u64(net_trace_enc_t *e, uint64_t v);
void net_trace_put_i64(net_trace_enc_t *e, int64_t v);
void net_trace_put_fixed64(net_trace_enc_t *e, uint64_t v);
/* Copies n bytes from p (borrowed). */
void net_trace_put_bytes(net_trace_enc_t *e, const void *p, size_t n);
/* 0, or -RT_ELIMIT when a put did not fit. */
int net_trace_enc_finish(const net_trace_enc_t *e);

typedef struct net_trace_dec {
  const uint8_t *p; /* borrowed */
  size_t len;
  size_t pos;
  int err; /* 0, or -RT_EPROTO from the first bad get on */
} net_trace_dec_t;

void net_trace_dec_init(net_trace_dec_t *d, const void *p, size_t len);
/* Each returns the value, or 0 (NULL) once d->err is set. */
uint64_t net_trace_get_u64(net_trace_dec_t *d);
int64_t net_trace_get_i64(net_trace_dec_t *d);
uint64_t net_trace_get_fixed64(net_trace_dec_t *d);
/* *n bytes, borrowed from the payload. */
const uint8_t *net_trace_get_bytes(net_trace_dec_t *d, size_t *n);
/* 0 when every get succeeded and the payload is used up; else -RT_EPROTO. */
int net_trace_dec_finish(const net_trace_dec_t *d);

/* ---- Writer ---------------------------------------------------------------- */

typedef struct net_trace_writer net_trace_writer_t;

/* Where file `seq`'s bytes go: a file descriptor open for writing (the
 * writer takes it and closes it), or a negative errno. Called from
 * net_trace_writer_open for file 1, on the writer's thread for the others.
 * NULL: create `path` (DIR/trace-NNNNNN.oct), refusing to overwrite one. A
 * test routes a file to /dev/full or a pipe with it; a deployment could ship
 * the trace elsewhere. A descriptor that cannot be fsynced (a pipe, a
 * device) is fine: fsync's EINVAL is ignored. */
typedef int net_trace_open_fn(void *ctx, const char *path, uint32_t seq);

typedef struct net_trace_writer_config {
  uint64_t max_bytes_per_file; /* 0: NET_TRACE_FILE_BYTES_DEFAULT */
  uint32_t buffer_bytes;       /* each of two; 0: ..._BUFFER_BYTES_DEFAULT */
  net_trace_open_fn *open_file;
  void *open_ctx; /* borrowed until close */
} net_trace_writer_config_t;

typedef struct net_trace_writer_stats {
  /* The appending thread's view. */
  uint64_t records_appended; /* accepted by net_trace_append */
  uint64_t records_lost;     /* refused: full, too large, or after an error */
  uint64_t bytes_lost;       /* their payload bytes */
  /* The writer thread's: what reached the file system. */
  uint64_t records_written; /* every kind, LOST and closing ones included */
  uint64_t bytes_written;   /* headers included */
  uint32_t files;           /* files begun */
  int err;                  /* the first I/O error (negative RT_E*), or 0 */
  int os_errno;             /* its errno (ENOSPC: the disk is full) */
} net_trace_writer_stats_t;

/* Start a recording in dir (created if missing; it must not already hold
 * trace-000001.oct): creates the first file, so a bad directory fails here
 * rather than later, and starts the writer thread. hdr is copied; cfg is
 * copied (NULL: defaults). On failure returns -RT_EINVAL (a bad argument, or
 * dir already holds a trace), -RT_EIO (the file system said no) or
 * -RT_ENOMEM, with a sentence in err (err_cap bytes; err may be NULL). */
int net_trace_writer_open_ex(const char *dir, const net_trace_header_t *hdr,
                             const net_trace_writer_config_t *cfg,
                             net_trace_writer_t **out, char *err,
                             size_t err_cap);
/* The same with default buffers; max_bytes_per_file 0: the default. */
int net_trace_writer_open(const char *dir, const net_trace_header_t *hdr,
                          uint64_t max_bytes_per_file,
                          net_trace_writer_t **out, char *err, size_t err_cap);

/* Append one record: copies len bytes of payload (borrowed) into memory and
 * returns; never does file I/O. type: 16..239 (asserted). Returns 0, or:
 *   -RT_EFULL   both buffers are full (the disk is behind): the record is
 *               dropped, counted, and a LOST record marks the gap;
 *   -RT_ELIMIT  len > the record limit (NET_TRACE_PAYLOAD_MAX, less for
 *               tiny buffers): dropped, counted and marked the same way;
 *   -RT_EIO     the writer failed (net_trace_writer_error says why), as
 *               learnt at the last hand-off or flush; nothing more
 *               reaches the disk; counted.
 * The appending thread waits at most for the writer to swap two pointers
 * (Invariant (2) in net_trace.c), never for the disk. */
int net_trace_append(net_trace_writer_t *w, uint8_t type, const void *payload,
                     size_t len);
/* Count one record of len payload bytes as lost without offering it (the
 * caller could not even build it, say for want of memory): a LOST record
 * marks the gap, as for a refused append. */
void net_trace_lose(net_trace_writer_t *w, size_t len);
/* Hint: hand what is buffered to the writer thread now if it is idle (say
 * once per event-loop pass). Never waits for the disk. Returns 0, or -RT_EIO
 * once the writer has failed (the recording is over). */
int net_trace_flush(net_trace_writer_t *w);
void net_trace_writer_stats(net_trace_writer_t *w,
                            net_trace_writer_stats_t *out);
/* The first I/O error as a sentence ("" when none); cap bytes into buf. */
void net_trace_writer_error(net_trace_writer_t *w, char *buf, size_t cap);
/* Finish: marks pending losses, writes END, fsyncs, joins the writer
 * thread and frees w (taken). Waits for the disk. Returns 0, or the first
 * I/O error with its sentence in err; stats (may be NULL) gets the final
 * counters. */
int net_trace_writer_close(net_trace_writer_t *w,
                           net_trace_writer_stats_t *stats, char *err,
                           size_t err_cap);

/* ---- Reader ---------------------------------------------------------------- */

typedef struct net_trace_reader net_trace_reader_t;

/* What stopped a reader; the return codes are coarser. */
typedef enum net_trace_fault {
  NET_TRACE_FAULT_NONE = 0,
  NET_TRACE_FAULT_TRUNCATED,    /* -RT_EOF: the recording just stops */
  NET_TRACE_FAULT_CORRUPT,      /* -RT_EPROTO: a check failed */
  NET_TRACE_FAULT_BAD_MAGIC,    /* -RT_EPROTO: not a trace file */
  NET_TRACE_FAULT_BAD_VERSION,  /* -RT_EPROTO: another format version */
  NET_TRACE_FAULT_SEQUENCE,     /* -RT_EPROTO: files out of order or mixed */
  NET_TRACE_FAULT_MISSING_FILE, /* -RT_ENOTFOUND */
  NET_TRACE_FAULT_IO,           /* -RT_EIO: the file system said no, or
                                   there was no memory for a record */
} net_trace_fault_t;

typedef struct net_trace_record {
  uint8_t type;
  uint32_t len;
  const uint8_t *payload; /* borrowed from the reader until the next call */
  uint64_t index;         /* across the recording, from 0 */
  uint32_t file_seq;
  uint64_t offset; /* of the record's first byte in its file */
} net_trace_record_t;

/* Open a recording: a directory (reads trace-000001.oct on), or one file
 * (reads it and the files after it in its directory). Validates the first
 * header. 0, or a negative RT_E* with a sentence in err (err may be NULL). */
int net_trace_reader_open(const char *path, net_trace_reader_t **out,
                          char *err, size_t err_cap);

/* The next input or output record, crossing files in order: 1 and *rec; 0
 * at a clean END; or a negative RT_E* (see net_trace_fault_t), with the
 * sentence in net_trace_reader_error. LOST records are returned (the
 * replay must know where inputs are missing); NEXT_FILE and END are not.
 * Errors are sticky: every later call returns the same. After -RT_EOF
 * (TRUNCATED) the records already returned are all whole and checked: a
 * crashed recording is usable up to there. */
int net_trace_next(net_trace_reader_t *r, net_trace_record_t *rec);

/* The first file's header; config is NUL-terminated. Borrowed from r. */
const net_trace_header_t *net_trace_reader_header(const net_trace_reader_t *r);
/* "" until an error, then the sentence. Borrowed from r. */
const char *net_trace_reader_error(const net_trace_reader_t *r);
net_trace_fault_t net_trace_reader_fault(const net_trace_reader_t *r);
/* Sum of the LOST records read so far. */
uint64_t net_trace_reader_lost(const net_trace_reader_t *r);
void net_trace_reader_close(net_trace_reader_t *r);

#endif
