/* net_trace_fixture.h: what the tests of the trace format, writer and
 * reader (net/net_trace*.h) share: temporary directories, a generator of
 * records (record i's type, payload and size), and writing a trace of n of
 * them and reading one back, each record checked against the generator.
 * The tests are in test_net_trace*.c, by theme, linked into one binary.
 */
#ifndef NET_TRACE_FIXTURE_H
#define NET_TRACE_FIXTURE_H

#include "net_trace.h"
#include "net_trace_reader.h"
#include "net_trace_writer.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define ERR_CAP NET_TRACE_ERR_MAX
#define MAX_RECORDS 20000u

/* A generator of payload sizes: record i's. */
typedef size_t size_fn(uint32_t i);

/* What reading a trace gave. */
typedef struct seen {
  uint32_t n;          /* user records returned */
  uint32_t lost_marks; /* LOST records returned */
  int rc;              /* the last net_trace_next result */
  int open_rc;
  net_trace_fault_t fault;
  char err[ERR_CAP];
  uint32_t file_seq[MAX_RECORDS];
  uint64_t offset[MAX_RECORDS];
  uint32_t len[MAX_RECORDS];
  uint64_t index[MAX_RECORDS];
} seen_t;

/* A fresh directory under /tmp (malloc'd: remove_dir frees it). */
char *make_dir(void);

/* Remove a directory and the files in it (one level: all a trace has). */
void remove_dir(char *d);

/* The path of file seq of the trace in dir (NET_TRACE_PATH_MAX bytes). */
void path_of(char *out, const char *dir, uint32_t seq);

/* Replace the file at path with the len bytes of b. */
void spit(const char *path, const uint8_t *b, size_t len);

/* The size of the file at path; -1 if there is none. */
off_t file_size(const char *path);

/* The header every test trace is written with. */
net_trace_header_t test_header(void);

/* Record i's type and payload: (u64 i, bytes of a pattern of plen bytes). */
uint8_t type_of(uint32_t i);
size_t payload_of(uint32_t i, size_t plen, uint8_t *out, size_t cap);

/* Check that rec is record i (sized plen) of the generator. */
void expect_record(const net_trace_record_t *rec, uint32_t i, size_t plen);

/* Payload sizes of record i: up to 39 bytes. */
size_t size_small(uint32_t i);

/* Write n records of the generator into dir; returns close's result. */
int write_trace(const char *dir, uint32_t n, size_fn *sz,
                const net_trace_writer_config_t *cfg,
                net_trace_writer_stats_t *st);

/* Read path to the end or the first error, checking every user record
 * against the generator (a damaged trace must never yield a wrong one). */
void read_trace(const char *path, size_fn *sz, seen_t *s);

/* A writer config of max_bytes per file and buffer_bytes (0: defaults). */
net_trace_writer_config_t cfg_of(uint64_t max_bytes, uint32_t buffer_bytes);

/* The length of a file's header with test_header's config. */
size_t header_len(void);

#endif
