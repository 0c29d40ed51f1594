/* test_net_trace_writer.c: the trace writer: full buffers refuse, count
 * and mark the gap; full disks and bad directories or arguments are
 * errors, never a crash. Part of the net_trace tests (test_net_trace.c;
 * net_trace_fixture.h).
 */
#include "net_trace_fixture.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- The writer: full buffers, lost records, errors ---------------------- */

typedef struct pipe_ctx {
  int fds[2];
} pipe_ctx_t;

/* Route file 1 into a pipe nobody reads yet: the writer thread blocks in
 * write() like on a stalled disk. */
static int open_pipe(void *ctx, const char *path, uint32_t seq) {
  (void)path;
  pipe_ctx_t *pc = ctx;
  return seq == 1 ? pc->fds[1] : -EIO;
}

typedef struct drain {
  int fd;
  uint8_t *buf;
  size_t len, cap;
} drain_t;

static void *drain_main(void *arg) {
  drain_t *d = arg;
  for (;;) {
    if (d->cap - d->len < 65536) {
      d->cap = d->cap * 2 + 65536;
      d->buf = realloc(d->buf, d->cap);
    }
    ssize_t n = read(d->fd, d->buf + d->len, d->cap - d->len);
    if (n <= 0)
      return NULL;
    d->len += (size_t)n;
  }
}

/* One append's outcome, to compare with what the reader sees. */
enum { APPENDED = 1, REFUSED = 2 };

Test(net_trace, a_full_buffer_refuses_counts_and_marks_the_gap) {
  pipe_ctx_t pc;
  cr_assert_eq(pipe(pc.fds), 0);
  char *dir = make_dir();
  net_trace_header_t h = test_header();
  net_trace_writer_config_t cfg = cfg_of(0, NET_TRACE_BUFFER_BYTES_MIN);
  cfg.open_file = open_pipe;
  cfg.open_ctx = &pc;
  net_trace_writer_t *w;
  char err[ERR_CAP];
  cr_assert_eq(net_trace_writer_open_ex(dir, &h, &cfg, &w, err, sizeof(err)), 0,
               "%s", err);
  enum { N = 4000 };
  static uint8_t outcome[N];
  uint8_t p[2048];
  uint32_t i = 0, refused = 0;
  uint64_t refused_bytes = 0;
  /* Phase 1: nobody drains the pipe. If append ever waited for the writer
   * thread (stuck in write), this loop would hang, not fail: append must
   * refuse instead. */
  for (; i < N && refused < 5; i++) {
    size_t n = payload_of(i, 600, p, sizeof(p));
    int rc = net_trace_append(w, type_of(i), p, n);
    cr_assert(rc == 0 || rc == RT_EFULL, "append: %s", rt_err_name(rc));
    outcome[i] = rc == 0 ? APPENDED : REFUSED;
    if (rc == RT_EFULL) {
      refused++;
      refused_bytes += n;
    }
  }
  cr_assert_eq(refused, 5, "the buffers never filled");
  net_trace_writer_stats_t st;
  net_trace_writer_stats(w, &st);
  cr_assert_eq(st.records_lost, 5);
  cr_assert_eq(st.bytes_lost, refused_bytes);

  /* Phase 2: drain; appends succeed again once the writer catches up. */
  drain_t d = {.fd = pc.fds[0]};
  pthread_t th;
  cr_assert_eq(pthread_create(&th, NULL, drain_main, &d), 0);
  uint32_t ok_after = 0;
  for (int tries = 0; i < N && ok_after < 50 && tries < 100000; tries++) {
    size_t n = payload_of(i, 600, p, sizeof(p));
    int rc = net_trace_append(w, type_of(i), p, n);
    if (rc == RT_EFULL) { /* the writer has not caught up yet */
      refused++;
      outcome[i] = REFUSED;
      i++;
      struct timespec ts = {0, 200000};
      nanosleep(&ts, NULL);
      continue;
    }
    cr_assert_eq(rc, 0);
    outcome[i++] = APPENDED;
    ok_after++;
  }
  cr_assert_eq(ok_after, 50);
  uint32_t total = i;
  cr_assert_eq(net_trace_writer_close(w, &st, err, sizeof(err)), 0, "%s", err);
  cr_assert_eq(st.records_lost, refused);
  cr_assert_eq(st.records_appended, total - refused);
  pthread_join(th, NULL);
  close(pc.fds[0]);

  /* What went through the pipe is a trace: check it record by record. */
  char p1[NET_TRACE_PATH_MAX];
  path_of(p1, dir, 1);
  unlink(p1);
  spit(p1, d.buf, d.len);
  free(d.buf);
  net_trace_reader_t *r;
  cr_assert_eq(net_trace_reader_open(dir, &r, err, sizeof(err)), 0, "%s", err);
  net_trace_record_t rec;
  uint32_t k = 0;
  uint64_t marks = 0;
  while (k < total) {
    uint32_t run = 0;
    uint64_t run_bytes = 0;
    while (k < total && outcome[k] == REFUSED) {
      run++;
      run_bytes += payload_of(k, 600, p, sizeof(p));
      k++;
    }
    cr_assert_eq(net_trace_next(r, &rec), 1, "%s", net_trace_reader_error(r));
    if (run > 0) {
      /* The gap is marked where it happened, with its size. */
      cr_assert_eq(rec.type, NET_TRACE_T_LOST, "record %u", k);
      net_trace_dec_t dd;
      net_trace_dec_init(&dd, rec.payload, rec.len);
      cr_assert_eq(net_trace_get_u64(&dd), run);
      cr_assert_eq(net_trace_get_u64(&dd), run_bytes);
      cr_assert_eq(net_trace_dec_finish(&dd), 0);
      marks += run;
      if (k == total)
        break;
      cr_assert_eq(net_trace_next(r, &rec), 1);
    }
    size_t n = payload_of(k, 600, p, sizeof(p));
    cr_assert_eq(rec.type, type_of(k));
    cr_assert_eq(rec.len, n);
    cr_assert_eq(memcmp(rec.payload, p, n), 0);
    k++;
  }
  cr_assert_eq(net_trace_next(r, &rec), 0, "%s", net_trace_reader_error(r));
  cr_assert_eq(marks, refused);
  cr_assert_eq(net_trace_reader_lost(r), refused);
  net_trace_reader_close(r);
  remove_dir(dir);
}

Test(net_trace, a_record_too_large_is_refused_and_marked_even_at_the_end) {
  char *dir = make_dir();
  net_trace_header_t h = test_header();
  net_trace_writer_config_t cfg = cfg_of(0, NET_TRACE_BUFFER_BYTES_MIN);
  net_trace_writer_t *w;
  char err[ERR_CAP];
  cr_assert_eq(net_trace_writer_open_ex(dir, &h, &cfg, &w, err, sizeof(err)),
               0);
  static uint8_t big[NET_TRACE_PAYLOAD_MAX + 1];
  cr_assert_eq(net_trace_append(w, NET_TRACE_T_READ, "a", 1), 0);
  /* Too large for this writer's 4 KiB buffers. */
  cr_assert_eq(net_trace_append(w, NET_TRACE_T_READ, big, 5000), RT_ELIMIT);
  cr_assert_eq(net_trace_append(w, NET_TRACE_T_READ, "b", 1), 0);
  /* Too large for any writer; and nothing after it but close. */
  cr_assert_eq(net_trace_append(w, NET_TRACE_T_READ, big, sizeof(big)),
               RT_ELIMIT);
  cr_assert_eq(net_trace_append(w, NET_TRACE_T_READ, big, sizeof(big)),
               RT_ELIMIT);
  net_trace_writer_stats_t st;
  cr_assert_eq(net_trace_writer_close(w, &st, err, sizeof(err)), 0);
  cr_assert_eq(st.records_lost, 3);

  net_trace_reader_t *r;
  cr_assert_eq(net_trace_reader_open(dir, &r, err, sizeof(err)), 0);
  net_trace_record_t rec;
  const uint8_t want_types[] = {NET_TRACE_T_READ, NET_TRACE_T_LOST,
                                NET_TRACE_T_READ, NET_TRACE_T_LOST};
  const uint64_t want_lost[] = {0, 1, 0, 2};
  for (size_t k = 0; k < 4; k++) {
    cr_assert_eq(net_trace_next(r, &rec), 1);
    cr_assert_eq(rec.type, want_types[k], "record %zu", k);
    if (rec.type == NET_TRACE_T_LOST) {
      net_trace_dec_t dd;
      net_trace_dec_init(&dd, rec.payload, rec.len);
      cr_assert_eq(net_trace_get_u64(&dd), want_lost[k]);
    }
  }
  cr_assert_eq(net_trace_next(r, &rec), 0, "%s", net_trace_reader_error(r));
  cr_assert_eq(net_trace_reader_lost(r), 3);
  net_trace_reader_close(r);
  remove_dir(dir);
}

static int open_dev_full(void *ctx, const char *path, uint32_t seq) {
  uint32_t full_from = *(const uint32_t *)ctx;
  if (seq < full_from) {
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    return fd >= 0 ? fd : -errno;
  }
  int fd = open("/dev/full", O_WRONLY | O_CLOEXEC);
  return fd >= 0 ? fd : -errno;
}

Test(net_trace, a_full_disk_is_an_error_never_a_crash) {
  char *dir = make_dir();
  net_trace_header_t h = test_header();
  uint32_t full_from = 1;
  net_trace_writer_config_t cfg = cfg_of(0, NET_TRACE_BUFFER_BYTES_MIN);
  cfg.open_file = open_dev_full;
  cfg.open_ctx = &full_from;
  net_trace_writer_t *w;
  char err[ERR_CAP];
  cr_assert_eq(net_trace_writer_open_ex(dir, &h, &cfg, &w, err, sizeof(err)), 0,
               "%s", err);
  /* The failure is found by the writer thread; append reports it once it
   * is known, and never blocks meanwhile. */
  uint8_t p[512] = {0};
  int rc = 0;
  for (int tries = 0; tries < 200000 && rc != RT_EIO; tries++) {
    rc = net_trace_append(w, NET_TRACE_T_READ, p, sizeof(p));
    cr_assert(rc == 0 || rc == RT_EFULL || rc == RT_EIO, "%s", rt_err_name(rc));
    net_trace_flush(w);
    if (tries % 64 == 63) {
      struct timespec ts = {0, 100000};
      nanosleep(&ts, NULL);
    }
  }
  cr_assert_eq(rc, RT_EIO);
  cr_assert_eq(net_trace_flush(w), RT_EIO);
  net_trace_writer_error(w, err, sizeof(err));
  cr_assert(strstr(err, "No space left on device") != NULL, "%s", err);
  net_trace_writer_stats_t st;
  cr_assert_eq(net_trace_writer_close(w, &st, err, sizeof(err)), RT_EIO);
  cr_assert_eq(st.os_errno, ENOSPC);
  cr_assert(strstr(err, "trace-000001.oct: write failed at byte 0") != NULL,
            "%s", err);
  remove_dir(dir);
}

Test(net_trace, a_disk_that_fills_after_a_rotation_leaves_a_readable_start) {
  char *dir = make_dir();
  uint32_t full_from = 2;
  net_trace_writer_config_t cfg = cfg_of(NET_TRACE_FILE_BYTES_MIN, 0);
  cfg.open_file = open_dev_full;
  cfg.open_ctx = &full_from;
  net_trace_header_t h = test_header();
  net_trace_writer_t *w;
  char err[ERR_CAP];
  cr_assert_eq(net_trace_writer_open_ex(dir, &h, &cfg, &w, err, sizeof(err)),
               0);
  uint8_t p[512];
  for (uint32_t i = 0; i < 2000; i++) {
    size_t n = payload_of(i, size_small(i), p, sizeof(p));
    int rc = net_trace_append(w, type_of(i), p, n);
    cr_assert(rc == 0 || rc == RT_EFULL || rc == RT_EIO);
  }
  net_trace_writer_stats_t st;
  cr_assert_eq(net_trace_writer_close(w, &st, err, sizeof(err)), RT_EIO);
  cr_assert(strstr(err, "trace-000002.oct: write failed") != NULL, "%s", err);
  cr_assert_eq(st.os_errno, ENOSPC);
  /* File 1 is whole and says the recording goes on: file 2 is missing. */
  static seen_t s;
  read_trace(dir, size_small, &s);
  cr_assert_eq(s.fault, NET_TRACE_FAULT_MISSING_FILE, "%s", s.err);
  cr_assert_gt(s.n, 0);
  remove_dir(dir);
}

Test(net_trace, an_unwritable_directory_fails_at_open) {
  net_trace_header_t h = test_header();
  net_trace_writer_t *w;
  char err[ERR_CAP];
  /* Under a regular file. */
  char *dir = make_dir();
  char f[256], sub[NET_TRACE_PATH_MAX];
  snprintf(f, sizeof(f), "%s/plain", dir);
  spit(f, (const uint8_t *)"x", 1);
  snprintf(sub, sizeof(sub), "%s/trace", f);
  cr_assert_eq(net_trace_writer_open(sub, &h, 0, &w, err, sizeof(err)), RT_EIO);
  cr_assert(strstr(err, "Not a directory") != NULL, "%s", err);
  /* A read-only place (sysfs refuses new files even to root). */
  struct stat st;
  if (stat("/sys", &st) == 0) {
    cr_assert_eq(net_trace_writer_open("/sys", &h, 0, &w, err, sizeof(err)),
                 RT_EIO);
    cr_assert(strstr(err, "cannot create") != NULL, "%s", err);
  }
  remove_dir(dir);
}

Test(net_trace, a_directory_that_holds_a_trace_is_refused) {
  char *dir = make_dir();
  net_trace_writer_config_t cfg = cfg_of(0, 0);
  cr_assert_eq(write_trace(dir, 3, size_small, &cfg, NULL), 0);
  net_trace_header_t h = test_header();
  net_trace_writer_t *w;
  char err[ERR_CAP];
  cr_assert_eq(net_trace_writer_open(dir, &h, 0, &w, err, sizeof(err)),
               RT_EINVAL);
  cr_assert(strstr(err, "already holds a trace") != NULL, "%s", err);
  static seen_t s; /* and the old one is untouched */
  read_trace(dir, size_small, &s);
  cr_assert_eq(s.rc, 0);
  cr_assert_eq(s.n, 3);
  remove_dir(dir);
}

/* An old trace's later file alone (its first was deleted) would make the
 * first rotation fail (O_EXCL) long after the start: refused up front. */
Test(net_trace, a_directory_with_a_later_trace_file_is_refused) {
  char *dir = make_dir();
  char f[NET_TRACE_PATH_MAX];
  snprintf(f, sizeof(f), "%s/trace-000002.oct", dir);
  spit(f, (const uint8_t *)"x", 1);
  net_trace_header_t h = test_header();
  net_trace_writer_t *w;
  char err[ERR_CAP];
  cr_assert_eq(net_trace_writer_open(dir, &h, 0, &w, err, sizeof(err)),
               RT_EINVAL);
  cr_assert(strstr(err, "trace-000002.oct: the directory already holds a "
                        "trace") != NULL,
            "%s", err);
  remove_dir(dir);
}

Test(net_trace, bad_arguments_are_refused_with_a_reason) {
  char *dir = make_dir();
  net_trace_header_t h = test_header();
  net_trace_writer_t *w;
  char err[ERR_CAP];
  static char long_config[NET_TRACE_CONFIG_MAX + 2];
  memset(long_config, 'x', NET_TRACE_CONFIG_MAX + 1);
  h.config = long_config;
  cr_assert_eq(net_trace_writer_open(dir, &h, 0, &w, err, sizeof(err)),
               RT_EINVAL);
  cr_assert(strstr(err, "config") != NULL, "%s", err);
  long_config[NET_TRACE_CONFIG_MAX] = '\0'; /* exactly at the limit: fine */
  cr_assert_eq(net_trace_writer_open(dir, &h, 0, &w, err, sizeof(err)), 0, "%s",
               err);
  cr_assert_eq(net_trace_writer_close(w, NULL, err, sizeof(err)), 0);
  net_trace_reader_t *r;
  cr_assert_eq(net_trace_reader_open(dir, &r, err, sizeof(err)), 0, "%s", err);
  cr_assert_eq(net_trace_reader_header(r)->config_len, NET_TRACE_CONFIG_MAX);
  net_trace_reader_close(r);
  remove_dir(dir);

  dir = make_dir();
  h.config = "\xff\xfe not UTF-8";
  cr_assert_eq(net_trace_writer_open(dir, &h, 0, &w, err, sizeof(err)),
               RT_EINVAL);
  h = test_header();
  cr_assert_eq(net_trace_writer_open(dir, &h, NET_TRACE_FILE_BYTES_MIN - 1, &w,
                                     err, sizeof(err)),
               RT_EINVAL);
  cr_assert(strstr(err, "file size") != NULL, "%s", err);
  net_trace_writer_config_t cfg = cfg_of(0, NET_TRACE_BUFFER_BYTES_MIN - 1);
  cr_assert_eq(net_trace_writer_open_ex(dir, &h, &cfg, &w, err, sizeof(err)),
               RT_EINVAL);
  cfg = cfg_of(0, NET_TRACE_BUFFER_BYTES_MAX + 1);
  cr_assert_eq(net_trace_writer_open_ex(dir, &h, &cfg, &w, err, sizeof(err)),
               RT_EINVAL);
  remove_dir(dir);
}

static int open_dev_null(void *ctx, const char *path, uint32_t seq) {
  (void)ctx;
  (void)path;
  (void)seq;
  int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
  return fd >= 0 ? fd : -errno;
}

Test(net_trace, appending_a_framing_type_is_a_programmer_error,
     .signal = SIGABRT) {
  char *dir = make_dir();
  net_trace_header_t h = test_header();
  net_trace_writer_config_t cfg = cfg_of(0, 0);
  cfg.open_file = open_dev_null; /* nothing left behind by the abort */
  net_trace_writer_t *w;
  char err[ERR_CAP];
  cr_assert_eq(net_trace_writer_open_ex(dir, &h, &cfg, &w, err, sizeof(err)),
               0);
  remove_dir(dir);
  net_trace_append(w, NET_TRACE_T_END, NULL, 0);
}
