/* net_trace_int.h: internals shared by the trace format's three files:
 * the format itself (net_trace.c), the writer (net_trace_writer.c) and the
 * reader (net_trace_reader.c). Nothing outside them includes it.
 */
#ifndef NET_TRACE_INT_H
#define NET_TRACE_INT_H

#include "net_trace.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NET_TRACE_NAME_FMT "trace-%06" PRIu32 ".oct"
/* A directory name leaves room for "/trace-NNNNNN.oct" in a path. */
#define NET_TRACE_DIR_MAX (NET_TRACE_PATH_MAX - 32u)

/* ---- Little-endian fields ------------------------------------------------ */

static inline void net_trace__put_le(uint8_t *p, uint64_t v, size_t n) {
  for (size_t i = 0; i < n; i++)
    p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint64_t net_trace__get_le(const uint8_t *p, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; i++)
    v |= (uint64_t)p[i] << (8 * i);
  return v;
}

/* An input or output type (16..239), the only ones a caller appends. */
static inline bool net_trace__type_is_user(unsigned type) {
  return type >= NET_TRACE_T_USER_MIN && type <= NET_TRACE_T_USER_MAX;
}

/* ---- net_trace.c --------------------------------------------------------- */

/* The CRC-8 head check of a record's 4 head bytes (type, len). */
uint8_t net_trace__head_check(const uint8_t *head);

/* Encode a header into out (NET_TRACE_HEADER_MAX bytes): its length. */
size_t net_trace__header_encode(uint8_t *out, const net_trace_header_t *h,
                                uint32_t seq, uint64_t first_record);

/* The fields of a header whose checks passed, read back from its bytes b:
 * into h, its config copied into config (NET_TRACE_CONFIG_MAX + 1 bytes)
 * and NUL-terminated. */
void net_trace__header_decode(const uint8_t *b, net_trace_header_t *h,
                              char *config, uint32_t *seq,
                              uint64_t *first_record);

/* printf into err (cap bytes); nothing when err is NULL or cap 0. */
void net_trace__say(char *err, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* dir/trace-NNNNNN.oct into out (NET_TRACE_PATH_MAX); false if too long. */
bool net_trace__file_path(char *out, const char *dir, uint32_t seq);

#endif
