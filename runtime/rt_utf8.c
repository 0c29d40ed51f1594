#include "rt_utf8.h"

int rt_utf8_decode(const uint8_t *s, size_t len, uint32_t *cp) {
  if (len == 0)
    return -1;
  uint8_t c = s[0];
  if (c < 0x80) {
    *cp = c;
    return 1;
  }
  size_t need;
  uint32_t v;
  if (c >= 0xc2 && c <= 0xdf) {
    need = 1;
    v = c & 0x1f;
  } else if (c >= 0xe0 && c <= 0xef) {
    need = 2;
    v = c & 0x0f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    need = 3;
    v = c & 0x07;
  } else {
    return -1; /* a continuation byte, an overlong lead (c0, c1), or > f4 */
  }
  if (need >= len)
    return -1;
  for (size_t k = 1; k <= need; k++) {
    if ((s[k] & 0xc0) != 0x80)
      return -1;
    v = (v << 6) | (s[k] & 0x3f);
  }
  if ((need == 2 && v < 0x800) || (need == 3 && v < 0x10000) || v > 0x10ffff ||
      (v >= 0xd800 && v <= 0xdfff))
    return -1;
  *cp = v;
  return (int)need + 1;
}

bool rt_utf8_valid(const uint8_t *s, size_t len) {
  size_t i = 0;
  while (i < len) {
    if (s[i] < 0x80) { /* the common case: ASCII JSON */
      i++;
      continue;
    }
    uint32_t cp;
    int n = rt_utf8_decode(s + i, len - i, &cp);
    if (n < 0)
      return false;
    i += (size_t)n;
  }
  return true;
}
