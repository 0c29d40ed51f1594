/* net_trace.h: the trace file format: records in, records out, checked.
 *
 * The live server records every input that crosses the world seam (accepts,
 * connects, read chunks, write acceptances, closes, time steps, storage
 * results) and
 * checkpoints of its output, so a replay can reproduce the run bit for bit.
 * This module is only the file format: a writer that appends opaque records
 * without ever touching the disk on the appending thread
 * (net_trace_writer.h), and a reader that validates every byte and says
 * exactly what is wrong when something is (net_trace_reader.h). This header
 * is what both share: the bytes, the record types, the header and the
 * payload fields. What each record's payload means belongs to the recorder
 * and the replay.
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
#define NET_TRACE_RECORD_HEAD 5u         /* type, len, head check */
#define NET_TRACE_RECORD_OVERHEAD 9u     /* head + CRC-32C */
#define NET_TRACE_PAYLOAD_MAX (1u << 20) /* fits the 3-byte length */
#define NET_TRACE_VARINT_MAX 10u         /* bytes of one encoded u64 */
/* The largest closing record (END: two varints): a file reserves room for
 * it, so every file can be closed without passing max_bytes. */
#define NET_TRACE_TAIL_MAX                                                     \
  (NET_TRACE_RECORD_OVERHEAD + 2 * NET_TRACE_VARINT_MAX)
#define NET_TRACE_FILES_MAX 999999u /* six digits in the name */
#define NET_TRACE_PATH_MAX 4096u
#define NET_TRACE_ERR_MAX 512u /* a message buffer that fits any message */

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
  NET_TRACE_T_CONNECT = 26,      /* what an outbound connect gave */

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

/* ---- The header ---------------------------------------------------------- */

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
/* 0, or RT_ELIMIT when a put did not fit. */
int net_trace_enc_finish(const net_trace_enc_t *e);

typedef struct net_trace_dec {
  const uint8_t *p; /* borrowed */
  size_t len;
  size_t pos;
  int err; /* 0, or RT_EPROTO from the first bad get on */
} net_trace_dec_t;

void net_trace_dec_init(net_trace_dec_t *d, const void *p, size_t len);
/* Each returns the value, or 0 (NULL) once d->err is set. */
uint64_t net_trace_get_u64(net_trace_dec_t *d);
int64_t net_trace_get_i64(net_trace_dec_t *d);
uint64_t net_trace_get_fixed64(net_trace_dec_t *d);
/* *n bytes, borrowed from the payload. */
const uint8_t *net_trace_get_bytes(net_trace_dec_t *d, size_t *n);
/* 0 when every get succeeded and the payload is used up; else RT_EPROTO. */
int net_trace_dec_finish(const net_trace_dec_t *d);

#endif
