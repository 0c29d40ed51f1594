/* net_trace_reader.h: reading a trace back (the format is net_trace.h).
 *
 * A reader is single-threaded and does blocking I/O (it belongs to tools,
 * not to a live event loop).
 */
#ifndef NET_TRACE_READER_H
#define NET_TRACE_READER_H

#include "net_trace.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct net_trace_reader net_trace_reader_t;

/* What stopped a reader; the return codes are coarser. */
typedef enum net_trace_fault {
  NET_TRACE_FAULT_NONE = 0,
  NET_TRACE_FAULT_TRUNCATED,    /* RT_EOF: the recording just stops */
  NET_TRACE_FAULT_CORRUPT,      /* RT_EPROTO: a check failed */
  NET_TRACE_FAULT_BAD_MAGIC,    /* RT_EPROTO: not a trace file */
  NET_TRACE_FAULT_BAD_VERSION,  /* RT_EPROTO: another format version */
  NET_TRACE_FAULT_SEQUENCE,     /* RT_EPROTO: files out of order or mixed */
  NET_TRACE_FAULT_MISSING_FILE, /* RT_ENOTFOUND */
  NET_TRACE_FAULT_IO,           /* RT_EIO: the file system said no, or
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
int net_trace_reader_open(const char *path, net_trace_reader_t **out, char *err,
                          size_t err_cap);

/* The next input or output record, crossing files in order: 1 and *rec; 0
 * at a clean END; or a negative RT_E* (see net_trace_fault_t), with the
 * sentence in net_trace_reader_error. LOST records are returned (the
 * replay must know where inputs are missing); NEXT_FILE and END are not.
 * Errors are sticky: every later call returns the same. After RT_EOF
 * (TRUNCATED) the records already returned are all whole and checked: a
 * crashed recording is usable up to there. */
int net_trace_next(net_trace_reader_t *r, net_trace_record_t *rec);

/* The first file's header; config is NUL-terminated. Borrowed from r. */
const net_trace_header_t *net_trace_reader_header(const net_trace_reader_t *r);
/* The number its header gives the file the reader began with (1: the
 * recording's first, whatever the file is called now). */
uint32_t net_trace_reader_first_file(const net_trace_reader_t *r);
/* "" until an error, then the sentence. Borrowed from r. */
const char *net_trace_reader_error(const net_trace_reader_t *r);
net_trace_fault_t net_trace_reader_fault(const net_trace_reader_t *r);
/* Sum of the LOST records read so far. */
uint64_t net_trace_reader_lost(const net_trace_reader_t *r);
void net_trace_reader_close(net_trace_reader_t *r);

#endif
