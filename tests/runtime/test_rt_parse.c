/* test_rt_parse.c: strict decimal numbers (runtime/rt_parse.h). */
#include "rt_err.h"
#include "rt_parse.h"
#include "rt_rng.h"

#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>

static int u64(const char *s, uint64_t max, uint64_t *out) {
  return rt_parse_u64(s, max, out);
}

Test(rt_parse, u64_takes_digits_at_and_below_max_refuses_above) {
  uint64_t v = 7;
  cr_assert_eq(u64("0", 10, &v), RT_OK);
  cr_assert_eq(v, 0);
  cr_assert_eq(u64("9", 10, &v), RT_OK);
  cr_assert_eq(v, 9);
  cr_assert_eq(u64("10", 10, &v), RT_OK);
  cr_assert_eq(v, 10);
  cr_assert_eq(u64("11", 10, &v), RT_EINVAL);
  cr_assert_eq(v, 10, "a refused value leaves *out as it was");
  cr_assert_eq(u64("18446744073709551615", UINT64_MAX, &v), RT_OK);
  cr_assert_eq(v, UINT64_MAX);
  cr_assert_eq(u64("18446744073709551616", UINT64_MAX, &v), RT_EINVAL);
}

Test(rt_parse, u64_refuses_what_strtoull_would_bend) {
  uint64_t v = 3;
  const char *bad[] = {NULL, "",   " 1",  "-1",  "+1", "0x10", "1e3",
                       "1 ", "1.", "inf", "nan", "1a", "\t2"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    cr_assert_eq(u64(bad[i], UINT64_MAX, &v), RT_EINVAL, "'%s'",
                 bad[i] != NULL ? bad[i] : "(null)");
  cr_assert_eq(v, 3);
}

Test(rt_parse, seconds_at_below_and_above_max) {
  rt_time_ns t = -1;
  rt_time_ns day = 86400 * RT_NS_PER_S;
  cr_assert_eq(rt_parse_seconds("86400", NULL, day, &t), RT_OK);
  cr_assert_eq(t, day);
  cr_assert_eq(rt_parse_seconds("86399.999999999", NULL, day, &t), RT_OK);
  cr_assert_eq(t, day - 1);
  cr_assert_eq(rt_parse_seconds("86400.000001", NULL, day, &t), RT_EINVAL);
  cr_assert_eq(t, day - 1);
  cr_assert_eq(rt_parse_seconds("0", NULL, day, &t), RT_OK);
  cr_assert_eq(t, 0);
  cr_assert_eq(rt_parse_seconds("0.25", NULL, day, &t), RT_OK);
  cr_assert_eq(t, RT_NS_PER_S / 4);
  cr_assert_eq(rt_parse_seconds(".5", NULL, day, &t), RT_OK);
  cr_assert_eq(t, RT_NS_PER_S / 2);
}

Test(rt_parse, seconds_take_their_unit_only_when_asked) {
  rt_time_ns t = 0;
  rt_time_ns max = 1000 * RT_NS_PER_S;
  cr_assert_eq(rt_parse_seconds("12.5s", "s", max, &t), RT_OK);
  cr_assert_eq(t, 12500 * 1000000LL);
  cr_assert_eq(rt_parse_seconds("12.5", "s", max, &t), RT_OK);
  cr_assert_eq(rt_parse_seconds("12.5s", NULL, max, &t), RT_EINVAL);
  cr_assert_eq(rt_parse_seconds("12.5s", "", max, &t), RT_EINVAL);
  cr_assert_eq(rt_parse_seconds("12.5ms", "s", max, &t), RT_EINVAL);
  cr_assert_eq(rt_parse_seconds("s", "s", max, &t), RT_EINVAL);
}

Test(rt_parse, seconds_refuse_what_strtod_would_bend) {
  rt_time_ns t = 5;
  const char *bad[] = {NULL,   "",    ".",   "1.2.3", " 1", "-1", "+1",
                       "0x10", "1e3", "inf", "nan",   "1 ", "1,5"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    cr_assert_eq(rt_parse_seconds(bad[i], NULL, RT_NS_PER_S * 100, &t),
                 RT_EINVAL, "'%s'", bad[i] != NULL ? bad[i] : "(null)");
  cr_assert_eq(t, 5);
}

/* rt_i64_text writes what printf's PRId64 writes: the edges, every power of
 * ten and its neighbours, and a million values of every size. */
static void same_as_printf(int64_t v) {
  char want[32], got[RT_I64_TEXT_MAX];
  int n = snprintf(want, sizeof(want), "%" PRId64, v);
  size_t len = rt_i64_text(v, got);
  cr_assert(len == (size_t)n && strcmp(got, want) == 0, "%s: wrote %s (%zu)",
            want, got, len);
}

Test(rt_i64_text, writes_what_printf_writes) {
  same_as_printf(0);
  same_as_printf(INT64_MIN);
  same_as_printf(INT64_MAX);
  int64_t p = 1; /* 10^0 to 10^18 */
  for (int i = 0; i <= 18; i++) {
    for (int64_t d = -1; d <= 1; d++) {
      same_as_printf(p + d);
      same_as_printf(-(p + d));
    }
    if (i < 18)
      p *= 10;
  }
  rt_rng_t rng;
  rt_rng_init(&rng, 5, 0);
  for (int i = 0; i < 1000000; i++) {
    uint64_t bits = rt_rng_next(&rng);
    same_as_printf((int64_t)(bits >> rt_rng_below(&rng, 64)));
    same_as_printf(-(int64_t)(bits >> (1 + rt_rng_below(&rng, 63))));
  }
}
