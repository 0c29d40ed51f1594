/* rt_parse.h: strict decimal numbers from command lines and trace headers.
 *
 * strtoull and strtod alone are lenient in ways a flag must not be: they
 * skip leading spaces, take a sign (" -1" wraps to 2^64 - 1), read hex
 * ("0x10"), exponents ("1e3"), "inf" and "nan". These take decimal digits
 * (and, for seconds, one run of digits and points) and nothing else, so a
 * value reads back the same in a replay as it did on the command line.
 * Each returns 0, or RT_EINVAL and leaves *out untouched.
 */
#ifndef RT_PARSE_H
#define RT_PARSE_H

#include "rt_msg.h"

#include <stddef.h>
#include <stdint.h>

/* Decimal digits only, at most max. s may be NULL (a missing value). */
int rt_parse_u64(const char *s, uint64_t max, uint64_t *out);

/* Seconds as digits and points ("12", "0.25"), then the suffix `unit`
 * (NULL or "": none allowed; otherwise the suffix is optional, e.g. "s"
 * takes "12.5" and "12.5s"); at most max nanoseconds, rounded to the
 * nearest. s may be NULL. */
int rt_parse_seconds(const char *s, const char *unit, rt_time_ns max,
                     rt_time_ns *out);

/* And back: v's decimal digits (and a '-') into out, then a NUL; returns
 * their count. What printf's "%" PRId64 writes, without printf's format
 * parsing (a few hundred instructions a call, on every frame a simulated
 * run sends). */
#define RT_I64_TEXT_MAX 21 /* "-9223372036854775808" and the NUL */
size_t rt_i64_text(int64_t v, char out[RT_I64_TEXT_MAX]);

#endif
