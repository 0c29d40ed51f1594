#include "rt_buf.h"

#include "rt_assert.h"

#include <stdlib.h>
#include <string.h>

rt_buf_t *rt_buf_create(size_t len) {
  if (len > RT_BUF_LEN_MAX)
    return NULL;
  rt_buf_t *buf = malloc(sizeof(*buf) + len);
  if (buf == NULL)
    return NULL;
  buf->refs = 1;
  buf->len = (uint32_t)len;
  return buf;
}

rt_buf_t *rt_buf_copy(const void *data, size_t len) {
  rt_buf_t *buf = rt_buf_create(len);
  if (buf != NULL && len > 0)
    memcpy(buf->data, data, len);
  return buf;
}

rt_buf_t *rt_buf_ref(rt_buf_t *buf) {
  RT_ASSERT(buf != NULL);
  RT_ASSERT(buf->refs > 0);
  RT_ASSERT(buf->refs < UINT32_MAX);
  buf->refs++;
  return buf;
}

void rt_buf_unref(rt_buf_t *buf) {
  if (buf == NULL)
    return;
  RT_ASSERT(buf->refs > 0);
  if (--buf->refs == 0)
    free(buf);
}
