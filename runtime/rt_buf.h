/* rt_buf.h: reference-counted immutable byte buffers.
 *
 * A broadcast frame is encoded once into a buffer and the same buffer is
 * queued for every recipient: each holder owns one reference. A buffer is
 * writable only by its creator before it is first shared (refs == 1); after
 * that it is immutable. Single-threaded: a world and its buffers live on one
 * thread, so the count is a plain integer.
 */
#ifndef RT_BUF_H
#define RT_BUF_H

#include <stddef.h>
#include <stdint.h>

/* The largest buffer the runtime will allocate: a limit on everything. */
#define RT_BUF_LEN_MAX (16u * 1024 * 1024)

typedef struct rt_buf {
  uint32_t refs;
  uint32_t len;
  uint8_t data[];
} rt_buf_t;

/* A new buffer of `len` bytes (contents undefined), one reference owned by
 * the caller. NULL when out of memory or len > RT_BUF_LEN_MAX. */
rt_buf_t *rt_buf_create(size_t len);

/* A new buffer holding a copy of `data` (borrowed). */
rt_buf_t *rt_buf_copy(const void *data, size_t len);

/* Take one more reference; returns buf for chaining. */
rt_buf_t *rt_buf_ref(rt_buf_t *buf);

/* Drop one reference (NULL is a no-op); frees on the last. */
void rt_buf_unref(rt_buf_t *buf);

#endif
