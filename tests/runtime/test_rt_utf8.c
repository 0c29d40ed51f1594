#include "rt_utf8.h"

#include <criterion/criterion.h>
#include <string.h>

static bool valid(const char *s, size_t n) {
  return rt_utf8_valid((const uint8_t *)s, n);
}

Test(rt_utf8, ascii_and_every_sequence_length_decode) {
  uint32_t cp;
  cr_assert_eq(rt_utf8_decode((const uint8_t *)"A", 1, &cp), 1);
  cr_assert_eq(cp, 'A');
  cr_assert_eq(rt_utf8_decode((const uint8_t *)"\xc3\xa9", 2, &cp), 2);
  cr_assert_eq(cp, 0xe9);
  cr_assert_eq(rt_utf8_decode((const uint8_t *)"\xe2\x82\xac", 3, &cp), 3);
  cr_assert_eq(cp, 0x20ac);
  cr_assert_eq(rt_utf8_decode((const uint8_t *)"\xf0\x9f\x8d\xaa", 4, &cp), 4);
  cr_assert_eq(cp, 0x1f36a); /* the cookie */
}

Test(rt_utf8, the_code_space_edges_at_below_and_above) {
  cr_assert(valid("\x7f", 1));
  cr_assert(valid("\xc2\x80", 2));             /* U+0080, lowest 2-byte */
  cr_assert_not(valid("\xc1\xbf", 2));         /* overlong U+007F */
  cr_assert(valid("\xe0\xa0\x80", 3));         /* U+0800 */
  cr_assert_not(valid("\xe0\x9f\xbf", 3));     /* overlong U+07FF */
  cr_assert(valid("\xed\x9f\xbf", 3));         /* U+D7FF, below surrogates */
  cr_assert_not(valid("\xed\xa0\x80", 3));     /* U+D800, a surrogate */
  cr_assert_not(valid("\xed\xbf\xbf", 3));     /* U+DFFF */
  cr_assert(valid("\xee\x80\x80", 3));         /* U+E000, above them */
  cr_assert(valid("\xf0\x90\x80\x80", 4));     /* U+10000 */
  cr_assert_not(valid("\xf0\x8f\xbf\xbf", 4)); /* overlong U+FFFF */
  cr_assert(valid("\xf4\x8f\xbf\xbf", 4));     /* U+10FFFF, the last */
  cr_assert_not(valid("\xf4\x90\x80\x80", 4)); /* U+110000 */
  cr_assert_not(valid("\xf5\x80\x80\x80", 4));
}

Test(rt_utf8, truncated_and_stray_bytes_are_invalid) {
  uint32_t cp;
  cr_assert_eq(rt_utf8_decode((const uint8_t *)"", 0, &cp), -1);
  cr_assert_not(valid("\xe2\x82", 2)); /* cut before its last byte */
  cr_assert_not(valid("\x80", 1));     /* a lone continuation */
  cr_assert_not(valid("\xc3\x28", 2)); /* lead without continuation */
  cr_assert_not(valid("ok\xff", 3));
  cr_assert(valid("", 0));
  cr_assert(valid("{\"type\":\"CLICK\"}", strlen("{\"type\":\"CLICK\"}")));
}
