/* net_trace_writer.c: the trace writer (net_trace_writer.h; the format is
 * net_trace.h).
 *
 * The appending thread (the event loop) encodes each record into the
 * buffer it fills; a background thread seals the records (fills in their
 * checks), cuts them into files by size and writes them. Invariants:
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
 *   net_trace_writer_open ──> [writing file 1] ──writer_rotate──> [file 2] ...
 *     (writer_write_buffer per buffer) │                            │
 *        net_trace_writer_close ──> writer_finish: END, fsync ──> joined
 *   any I/O error ──writer_fail──> [failed: buffers returned unwritten]
 *
 * Names say which thread runs a function: writer_* the writer thread,
 * appender_* the appending thread, open_* net_trace_writer_open (on the
 * appending thread, before the writer thread exists).
 */
#include "net_trace_writer.h"

#include "net_trace_int.h"
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

/* A LOST record: two varints. */
#define NET_TRACE_LOST_RECORD_MAX                                              \
  (NET_TRACE_RECORD_OVERHEAD + 2 * NET_TRACE_VARINT_MAX)

/* ---- Writer -------------------------------------------------------------- */

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

static int create_exclusive(void *ctx, const char *path, uint32_t seq) {
  (void)ctx;
  (void)seq;
  /* O_EXCL: never overwrite a trace, ours or an earlier recording's. */
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  return fd >= 0 ? fd : -errno;
}

static int create_file(net_trace_writer_t *w, const char *path, uint32_t seq) {
  if (w->open_file != NULL)
    return w->open_file(w->open_ctx, path, seq);
  return create_exclusive(NULL, path, seq);
}

/* Fill in a record's head check and CRC-32C (Invariant (4)). */
static void seal(uint8_t *rec) {
  size_t len = (size_t)net_trace__get_le(rec + 1, 3);
  rec[4] = net_trace__head_check(rec);
  net_trace__put_le(rec + NET_TRACE_RECORD_HEAD + len,
                    net_trace_crc32c(0, rec, NET_TRACE_RECORD_HEAD + len), 4);
}

/* ---- The writer thread --------------------------------------------------- */

/* Writer thread: the first I/O error ends the recording (Invariant (6)). */
static void writer_fail(net_trace_writer_t *w, int os_errno, const char *fmt,
                        ...) __attribute__((format(printf, 3, 4)));

static void writer_fail(net_trace_writer_t *w, int os_errno, const char *fmt,
                        ...) {
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
static bool writer_write_all(net_trace_writer_t *w, const uint8_t *p,
                             size_t n) {
  size_t done = 0;
  while (done < n && !w->failed) {
    ssize_t k = write(w->fd, p + done, n - done);
    if (k < 0 && errno == EINTR)
      continue;
    if (k <= 0) {
      int e = k < 0 ? errno : EIO;
      char path[NET_TRACE_PATH_MAX];
      net_trace__file_path(path, w->dir, w->seq);
      writer_fail(w, e, "%s: write failed at byte %" PRIu64 ": %s", path,
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
static bool writer_sync(net_trace_writer_t *w, int fd, const char *what) {
  if (fsync(fd) == 0 || errno == EINVAL)
    return true;
  int e = errno;
  char path[NET_TRACE_PATH_MAX];
  net_trace__file_path(path, w->dir, w->seq);
  writer_fail(w, e, "%s: fsync of %s failed: %s", path, what, strerror(e));
  return false;
}

/* The current file's descriptor is open: write its header. */
static bool writer_begin_file(net_trace_writer_t *w) {
  uint8_t h[NET_TRACE_HEADER_MAX];
  size_t n = net_trace__header_encode(h, &w->hdr, w->seq, w->records_total);
  w->files++;
  w->file_bytes = n;
  w->file_written = 0;
  w->file_records = 0;
  if (!writer_write_all(w, h, n))
    return false;
  /* The new name is durable only once its directory is synced. */
  return w->dir_fd < 0 || writer_sync(w, w->dir_fd, "the directory");
}

static bool writer_close_file(net_trace_writer_t *w) {
  if (!writer_sync(w, w->fd, "the file"))
    return false;
  int rc = close(w->fd);
  w->fd = -1;
  if (rc != 0) {
    int e = errno;
    char path[NET_TRACE_PATH_MAX];
    net_trace__file_path(path, w->dir, w->seq);
    writer_fail(w, e, "%s: close failed: %s", path, strerror(e));
    return false;
  }
  return true;
}

/* Write a framing record with one or two u64 fields. */
static bool writer_put_framing(net_trace_writer_t *w, uint8_t type, uint64_t a,
                               uint64_t b, bool two) {
  uint8_t rec[NET_TRACE_TAIL_MAX];
  net_trace_enc_t e;
  net_trace_enc_init(&e, rec + NET_TRACE_RECORD_HEAD, 2 * NET_TRACE_VARINT_MAX);
  net_trace_put_u64(&e, a);
  if (two)
    net_trace_put_u64(&e, b);
  RT_ASSERT(!e.overflow);
  rec[0] = type;
  net_trace__put_le(rec + 1, e.len, 3);
  seal(rec);
  size_t size = NET_TRACE_RECORD_OVERHEAD + e.len;
  w->records_total++;
  w->file_records++;
  w->file_bytes += size;
  return writer_write_all(w, rec, size);
}

/* Close this file with NEXT_FILE and begin the next one. */
static bool writer_rotate(net_trace_writer_t *w) {
  if (!writer_put_framing(w, NET_TRACE_T_NEXT_FILE, w->records_total + 1, 0,
                          false))
    return false;
  if (!writer_close_file(w))
    return false;
  char path[NET_TRACE_PATH_MAX];
  if (w->seq >= NET_TRACE_FILES_MAX) {
    writer_fail(w, 0, "%s: the recording needs more than %u files", w->dir,
                NET_TRACE_FILES_MAX);
    return false;
  }
  w->seq++;
  net_trace__file_path(path, w->dir, w->seq); /* fits: checked at open */
  int fd = create_file(w, path, w->seq);
  if (fd < 0) {
    writer_fail(w, -fd, "%s: cannot create: %s", path, strerror(-fd));
    return false;
  }
  w->fd = fd;
  return writer_begin_file(w);
}

/* Seal the records of one buffer and write them, cutting files by size
 * (Invariant (5)). Consecutive records go out in one write. */
static void writer_write_buffer(net_trace_writer_t *w, uint8_t *buf,
                                size_t len) {
  size_t pos = 0;
  size_t run = 0;                   /* first byte not yet written */
  while (pos < len && !w->failed) { /* pos grows by >= 9 bytes a pass */
    uint8_t *rec = buf + pos;
    size_t size =
        NET_TRACE_RECORD_OVERHEAD + (size_t)net_trace__get_le(rec + 1, 3);
    RT_ASSERT(size <= len - pos);
    seal(rec);
    if (w->file_records > 0 &&
        w->file_bytes + size + NET_TRACE_TAIL_MAX > w->max_file_bytes) {
      if (!writer_write_all(w, buf + run, pos - run) || !writer_rotate(w))
        return;
      run = pos;
    }
    w->file_bytes += size;
    w->file_records++;
    w->records_total++;
    pos += size;
  }
  if (!w->failed)
    writer_write_all(w, buf + run, pos - run);
}

/* Close: END, fsync, close. */
static void writer_finish(net_trace_writer_t *w, uint64_t lost_total) {
  if (!w->failed && writer_put_framing(w, NET_TRACE_T_END, w->records_total,
                                       lost_total, true))
    writer_close_file(w);
  if (w->fd >= 0) {
    close(w->fd);
    w->fd = -1;
  }
}

/* Under mu: what the writer thread did, for stats. */
static void writer_publish_locked(net_trace_writer_t *w) {
  if (!w->failed)
    w->pub_records_written = w->records_total;
  w->pub_bytes_written = w->bytes_written;
  w->pub_files = w->files;
}

static void *writer_main(void *arg) {
  net_trace_writer_t *w = arg;
  writer_begin_file(w);
  for (;;) { /* one buffer a pass, until close */
    pthread_mutex_lock(&w->mu);
    writer_publish_locked(w);
    while (w->pending == NULL && !w->closing)
      pthread_cond_wait(&w->work_cv, &w->mu);
    uint8_t *buf = w->pending;
    size_t len = w->pending_len;
    uint64_t final_lost = w->final_lost;
    w->pending = NULL;
    w->pending_len = 0;
    pthread_mutex_unlock(&w->mu);

    if (buf == NULL) { /* closing, and everything is written */
      writer_finish(w, final_lost);
      pthread_mutex_lock(&w->mu);
      writer_publish_locked(w);
      pthread_mutex_unlock(&w->mu);
      return NULL;
    }
    writer_write_buffer(w, buf, len); /* a no-op once failed (Invariant (6)) */
    pthread_mutex_lock(&w->mu);
    RT_ASSERT(w->spare == NULL);
    w->spare = buf;
    pthread_cond_signal(&w->spare_cv);
    pthread_mutex_unlock(&w->mu);
  }
}

/* ---- The appending thread ------------------------------------------------ */

static void appender_put(net_trace_writer_t *w, uint8_t type,
                         const void *payload, size_t len) {
  RT_ASSERT(w->fill_len + NET_TRACE_RECORD_OVERHEAD + len <= w->buf_cap);
  uint8_t *rec = w->fill + w->fill_len;
  rec[0] = type;
  net_trace__put_le(rec + 1, len, 3);
  rec[4] = 0; /* both checks are sealed by the writer thread */
  if (len > 0)
    memcpy(rec + NET_TRACE_RECORD_HEAD, payload, len);
  net_trace__put_le(rec + NET_TRACE_RECORD_HEAD + len, 0, 4);
  w->fill_len += NET_TRACE_RECORD_OVERHEAD + len;
}

static void appender_put_lost(net_trace_writer_t *w) {
  uint8_t p[2 * NET_TRACE_VARINT_MAX];
  net_trace_enc_t e;
  net_trace_enc_init(&e, p, sizeof(p));
  net_trace_put_u64(&e, w->lost_pending);
  net_trace_put_u64(&e, w->lost_pending_bytes);
  appender_put(w, NET_TRACE_T_LOST, p, e.len);
  w->lost_marked += w->lost_pending;
  w->lost_pending = 0;
  w->lost_pending_bytes = 0;
}

/* Under mu, the spare in hand: queue the filled buffer, take the spare. */
static void appender_swap_locked(net_trace_writer_t *w) {
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
static bool appender_try_handoff(net_trace_writer_t *w) {
  pthread_mutex_lock(&w->mu);
  w->seen_err = w->io_err;
  bool ok = w->spare != NULL || w->fill_len == 0;
  if (w->spare != NULL && w->fill_len > 0)
    appender_swap_locked(w);
  pthread_mutex_unlock(&w->mu);
  return ok;
}

/* Close only: wait for the spare. The writer thread returns every buffer
 * it takes, failed or not (Invariants (1), (6)), so this ends. */
static void appender_handoff_wait_locked(net_trace_writer_t *w) {
  while (w->spare == NULL)
    pthread_cond_wait(&w->spare_cv, &w->mu);
  appender_swap_locked(w);
}

static int appender_count_lost(net_trace_writer_t *w, size_t len, int err,
                               bool mark) {
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
  (void)appender_count_lost(w, len, 0, w->seen_err == 0);
}

int net_trace_append(net_trace_writer_t *w, uint8_t type, const void *payload,
                     size_t len) {
  RT_ASSERT(w != NULL);
  RT_ASSERT(net_trace__type_is_user(type));
  RT_ASSERT(payload != NULL || len == 0);
  RT_ASSERT(pthread_equal(pthread_self(), w->owner));
  if (w->seen_err != 0) /* nothing reaches disk */
    return appender_count_lost(w, len, w->seen_err, false);
  if (len > w->payload_max)
    return appender_count_lost(w, len, RT_ELIMIT, true);
  size_t need = NET_TRACE_RECORD_OVERHEAD + len +
                (w->lost_pending > 0 ? NET_TRACE_LOST_RECORD_MAX : 0);
  if (w->fill_len + need > w->buf_cap && !appender_try_handoff(w))
    return appender_count_lost(w, len, RT_EFULL, true);
  if (w->seen_err != 0) /* learnt at that hand-off */
    return appender_count_lost(w, len, w->seen_err, false);
  if (w->lost_pending > 0)
    appender_put_lost(w); /* the gap, just before the first record after it */
  appender_put(w, type, payload, len);
  w->records_appended++;
  /* Half full: start the disk early if it is idle, so a burst finds the
   * other buffer free. Not on every append: a wakeup costs a syscall. */
  if (w->fill_len >= w->buf_cap / 2)
    appender_try_handoff(w);
  return 0;
}

int net_trace_flush(net_trace_writer_t *w) {
  RT_ASSERT(w != NULL);
  RT_ASSERT(pthread_equal(pthread_self(), w->owner));
  appender_try_handoff(w); /* also refreshes seen_err */
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
  net_trace__say(buf, cap, "%s", w->err_msg);
  pthread_mutex_unlock(&w->mu);
}

/* ---- Open and close ------------------------------------------------------ */

static void free_writer(net_trace_writer_t *w, bool sync_ready) {
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
      appender_handoff_wait_locked(w);
    appender_put_lost(w);
  }
  appender_handoff_wait_locked(w); /* the last buffer, possibly empty */
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
  net_trace__say(err, err_cap, "%s", w->err_msg);
  free_writer(w, true);
  return st.err;
}

int net_trace_writer_open(const char *dir, const net_trace_header_t *hdr,
                          uint64_t max_bytes_per_file, net_trace_writer_t **out,
                          char *err, size_t err_cap) {
  net_trace_writer_config_t cfg = {.max_bytes_per_file = max_bytes_per_file};
  return net_trace_writer_open_ex(dir, hdr, &cfg, out, err, err_cap);
}

/* Check the arguments of open; 0 or RT_EINVAL with a sentence. */
static int open_check_args(const char *dir, const char *config,
                           const net_trace_writer_config_t *cfg, char *err,
                           size_t err_cap) {
  size_t dir_len = strlen(dir);
  if (dir_len == 0 || dir_len >= NET_TRACE_DIR_MAX) {
    net_trace__say(err, err_cap,
                   "trace directory name is empty or too long (%zu bytes)",
                   dir_len);
    return RT_EINVAL;
  }
  size_t config_len = strnlen(config, NET_TRACE_CONFIG_MAX + 1);
  if (config_len > NET_TRACE_CONFIG_MAX) {
    net_trace__say(err, err_cap, "trace config is longer than %u bytes",
                   NET_TRACE_CONFIG_MAX);
    return RT_EINVAL;
  }
  if (!rt_utf8_valid((const uint8_t *)config, config_len)) {
    net_trace__say(err, err_cap, "trace config is not valid UTF-8");
    return RT_EINVAL;
  }
  if (cfg->max_bytes_per_file < NET_TRACE_FILE_BYTES_MIN ||
      cfg->max_bytes_per_file > NET_TRACE_FILE_BYTES_MAX) {
    net_trace__say(err, err_cap,
                   "trace file size %" PRIu64 " is not within [%u, %llu] bytes",
                   cfg->max_bytes_per_file, NET_TRACE_FILE_BYTES_MIN,
                   NET_TRACE_FILE_BYTES_MAX);
    return RT_EINVAL;
  }
  if (cfg->buffer_bytes < NET_TRACE_BUFFER_BYTES_MIN ||
      cfg->buffer_bytes > NET_TRACE_BUFFER_BYTES_MAX) {
    net_trace__say(err, err_cap,
                   "trace buffer size %" PRIu32 " is not within [%u, %u]",
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
static int open_first_file(net_trace_writer_t *w, char *err, size_t err_cap) {
  if (mkdir(w->dir, 0755) != 0 && errno != EEXIST) {
    net_trace__say(err, err_cap, "%s: cannot create the trace directory: %s",
                   w->dir, strerror(errno));
    return RT_EIO;
  }
  if (w->open_file == NULL) {
    w->dir_fd = open(w->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (w->dir_fd < 0) {
      net_trace__say(err, err_cap, "%s: cannot open the trace directory: %s",
                     w->dir, strerror(errno));
      return RT_EIO;
    }
    char found[256];
    int held = dir_holds_trace(w->dir_fd, found, sizeof(found));
    if (held < 0) {
      net_trace__say(err, err_cap, "%s: cannot read the trace directory: %s",
                     w->dir, strerror(errno));
      return RT_EIO;
    }
    if (held > 0) {
      net_trace__say(
          err, err_cap,
          "%s/%s: the directory already holds a trace; record into a new one",
          w->dir, found);
      return RT_EINVAL;
    }
  }
  char path[NET_TRACE_PATH_MAX];
  net_trace__file_path(path, w->dir, 1);
  int fd = create_file(w, path, 1);
  if (fd == -EEXIST) {
    net_trace__say(
        err, err_cap,
        "%s: the directory already holds a trace; record into a new one", path);
    return RT_EINVAL;
  }
  if (fd < 0) {
    net_trace__say(err, err_cap, "%s: cannot create: %s", path, strerror(-fd));
    return RT_EIO;
  }
  w->fd = fd;
  w->seq = 1;
  return 0;
}

/* A writer with its buffers and locks, set from checked arguments; no
 * file yet. NULL when out of memory. */
static net_trace_writer_t *open_alloc(const char *dir,
                                      const net_trace_header_t *hdr,
                                      const char *config,
                                      const net_trace_writer_config_t *cfg) {
  net_trace_writer_t *w = calloc(1, sizeof(*w));
  if (w == NULL)
    return NULL;
  w->fd = -1;
  w->dir_fd = -1;
  snprintf(w->dir, sizeof(w->dir), "%s", dir);
  w->hdr = *hdr;
  w->hdr.version = NET_TRACE_VERSION;
  w->hdr.config_len = (uint32_t)strlen(config);
  memcpy(w->config, config, w->hdr.config_len);
  w->hdr.config = w->config;
  w->max_file_bytes = cfg->max_bytes_per_file;
  w->buf_cap = cfg->buffer_bytes;
  /* Room for a record and the LOST record that may precede it. */
  w->payload_max =
      w->buf_cap - NET_TRACE_RECORD_OVERHEAD - NET_TRACE_LOST_RECORD_MAX;
  if (w->payload_max > NET_TRACE_PAYLOAD_MAX)
    w->payload_max = NET_TRACE_PAYLOAD_MAX;
  w->open_file = cfg->open_file;
  w->open_ctx = cfg->open_ctx;
  w->bufs[0] = malloc(w->buf_cap);
  w->bufs[1] = malloc(w->buf_cap);
  if (w->bufs[0] == NULL || w->bufs[1] == NULL)
    goto fail;
  w->fill = w->bufs[0];
  w->spare = w->bufs[1];
  if (pthread_mutex_init(&w->mu, NULL) != 0)
    goto fail;
  if (pthread_cond_init(&w->work_cv, NULL) != 0) {
    pthread_mutex_destroy(&w->mu);
    goto fail;
  }
  if (pthread_cond_init(&w->spare_cv, NULL) != 0) {
    pthread_cond_destroy(&w->work_cv);
    pthread_mutex_destroy(&w->mu);
    goto fail;
  }
  return w;

fail:
  free_writer(w, false);
  return NULL;
}

/* Start the writer thread on file 1 (open_first_file made it). 0, or
 * RT_ENOMEM with a sentence in err. */
static int open_start_thread(net_trace_writer_t *w, char *err, size_t err_cap) {
  w->owner = pthread_self();
  /* The writer thread takes no signals: they stay with the event loop, and
   * a write to a closed pipe returns EPIPE instead of killing the process
   * (SIGPIPE is thread-directed, and stays pending on a blocked thread). */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int trc = pthread_create(&w->thread, NULL, writer_main, w);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (trc != 0) {
    net_trace__say(err, err_cap, "cannot start the trace writer thread: %s",
                   strerror(trc));
    if (w->open_file == NULL) {
      char path[NET_TRACE_PATH_MAX];
      net_trace__file_path(path, w->dir, 1);
      unlink(path); /* so that a retry in the same directory works */
    }
    return RT_ENOMEM;
  }
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
  net_trace__say(err, err_cap, "%s", "");
  net_trace_writer_config_t cfg = {0};
  if (cfg_in != NULL)
    cfg = *cfg_in;
  if (cfg.max_bytes_per_file == 0)
    cfg.max_bytes_per_file = NET_TRACE_FILE_BYTES_DEFAULT;
  if (cfg.buffer_bytes == 0)
    cfg.buffer_bytes = NET_TRACE_BUFFER_BYTES_DEFAULT;
  const char *config = hdr->config != NULL ? hdr->config : "";
  int rc = open_check_args(dir, config, &cfg, err, err_cap);
  if (rc != 0)
    return rc;
  net_trace_writer_t *w = open_alloc(dir, hdr, config, &cfg);
  if (w == NULL) {
    net_trace__say(err, err_cap, "out of memory for the trace writer");
    return RT_ENOMEM;
  }
  rc = open_first_file(w, err, err_cap);
  if (rc == 0)
    rc = open_start_thread(w, err, err_cap);
  if (rc != 0) {
    free_writer(w, true);
    return rc;
  }
  *out = w;
  return 0;
}
