/* rt_parse.c: strict decimal numbers, and their text (rt_parse.h). */
#include "rt_parse.h"

#include "rt_err.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

int rt_parse_u64(const char *s, uint64_t max, uint64_t *out) {
  if (s == NULL || s[0] < '0' || s[0] > '9')
    return RT_EINVAL;
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno != 0 || *end != '\0' || v > max)
    return RT_EINVAL;
  *out = v;
  return RT_OK;
}

int rt_parse_seconds(const char *s, const char *unit, rt_time_ns max,
                     rt_time_ns *out) {
  if (s == NULL)
    return RT_EINVAL;
  size_t digits = strspn(s, "0123456789.");
  if (digits == 0)
    return RT_EINVAL;
  const char *rest = s + digits;
  bool unit_ok = *rest == '\0' ||
                 (unit != NULL && unit[0] != '\0' && strcmp(rest, unit) == 0);
  if (!unit_ok)
    return RT_EINVAL;
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  /* "1.2.3" stops strtod early; "." alone reads nothing. */
  if (errno != 0 || end != rest || !(v >= 0))
    return RT_EINVAL;
  double ns = v * 1e9;
  if (ns > (double)max)
    return RT_EINVAL;
  *out = (rt_time_ns)(ns + 0.5);
  return RT_OK;
}

size_t rt_i64_text(int64_t v, char out[RT_I64_TEXT_MAX]) {
  char tmp[RT_I64_TEXT_MAX];
  size_t n = 0, o = 0;
  uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
  do {
    tmp[n++] = (char)('0' + u % 10);
    u /= 10;
  } while (u != 0);
  if (v < 0)
    out[o++] = '-';
  while (n > 0)
    out[o++] = tmp[--n];
  out[o] = '\0';
  return o;
}
