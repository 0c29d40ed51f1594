/* net_trace_writer.h: writing a trace (the format is net_trace.h).
 *
 * A writer has one appending thread (the event loop: the one that opened it)
 * and one background thread of its own that does all file I/O. Appending
 * copies the record into an in-memory buffer and never calls into the file
 * system; when the buffer is full the record is refused with RT_EFULL and
 * counted, and a LOST record marks the gap in the trace.
 */
#ifndef NET_TRACE_WRITER_H
#define NET_TRACE_WRITER_H

#include "net_trace.h"

#include <stddef.h>
#include <stdint.h>

/* Rotation: each file holds at most max_bytes, except a file whose single
 * record does not fit an empty file (a record is never split). */
#define NET_TRACE_FILE_BYTES_DEFAULT (256ull << 20) /* --record-max-mb */
#define NET_TRACE_FILE_BYTES_MIN (16u << 10)        /* a full header and more */
#define NET_TRACE_FILE_BYTES_MAX (1ull << 40)

/* The writer's two buffers, each this size: one filling, one being written.
 * Appends are refused once the filling one is full while the other is still
 * on its way to disk. */
#define NET_TRACE_BUFFER_BYTES_DEFAULT (4u << 20)
#define NET_TRACE_BUFFER_BYTES_MIN (4u << 10)
#define NET_TRACE_BUFFER_BYTES_MAX (64u << 20)

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
 * copied (NULL: defaults). On failure returns RT_EINVAL (a bad argument, or
 * dir already holds a trace), RT_EIO (the file system said no) or
 * RT_ENOMEM, with a sentence in err (err_cap bytes; err may be NULL). */
int net_trace_writer_open_ex(const char *dir, const net_trace_header_t *hdr,
                             const net_trace_writer_config_t *cfg,
                             net_trace_writer_t **out, char *err,
                             size_t err_cap);
/* The same with default buffers; max_bytes_per_file 0: the default. */
int net_trace_writer_open(const char *dir, const net_trace_header_t *hdr,
                          uint64_t max_bytes_per_file, net_trace_writer_t **out,
                          char *err, size_t err_cap);

/* Append one record: copies len bytes of payload (borrowed) into memory and
 * returns; never does file I/O. type: 16..239 (asserted). Returns 0, or:
 *   RT_EFULL   both buffers are full (the disk is behind): the record is
 *              dropped, counted, and a LOST record marks the gap;
 *   RT_ELIMIT  len > the record limit (NET_TRACE_PAYLOAD_MAX, less for
 *              tiny buffers): dropped, counted and marked the same way;
 *   RT_EIO     the writer failed (net_trace_writer_error says why), as
 *              learnt at the last hand-off or flush; nothing more
 *              reaches the disk; counted.
 * The appending thread waits at most for the writer to swap two pointers
 * (Invariant (2) in net_trace_writer.c), never for the disk. */
int net_trace_append(net_trace_writer_t *w, uint8_t type, const void *payload,
                     size_t len);
/* Count one record of len payload bytes as lost without offering it (the
 * caller could not even build it, say for want of memory): a LOST record
 * marks the gap, as for a refused append. */
void net_trace_lose(net_trace_writer_t *w, size_t len);
/* Hint: hand what is buffered to the writer thread now if it is idle (say
 * once per event-loop pass). Never waits for the disk. Returns 0, or RT_EIO
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

#endif
