#include "rt_err.h"

const char *rt_err_name(int err) {
  switch (err) {
  case RT_OK: return "RT_OK";
#define RT_ERR_NAME_(name, num, msg)                                           \
  case -(num): return "RT_" #name;
    RT_ERRNO_MAP(RT_ERR_NAME_)
#undef RT_ERR_NAME_
  default: return "RT_E?";
  }
}

const char *rt_strerror(int err) {
  switch (err) {
  case RT_OK: return "success";
#define RT_ERR_MSG_(name, num, msg)                                            \
  case -(num): return msg;
    RT_ERRNO_MAP(RT_ERR_MSG_)
#undef RT_ERR_MSG_
  default: return "unknown error";
  }
}

#include "rt_assert.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

_Noreturn void rt_assert_fail(const char *expr, const char *file, int line,
                              uint64_t seed, int has_seed) {
  if (has_seed)
    fprintf(stderr, "assertion failed: %s at %s:%d (world seed=%" PRIu64 ")\n",
            expr, file, line, seed);
  else
    fprintf(stderr, "assertion failed: %s at %s:%d\n", expr, file, line);
  fflush(stderr);
  abort();
}
