/* rt_assert.h: assertions that stay on in every build.
 *
 * A failed assertion is a programmer error: the process prints what failed and
 * where, with the seed of the world it ran in so the run can be replayed, and
 * aborts. RT_ASSERT takes no world (for leaf code); RT_WASSERT names one.
 */
#ifndef RT_ASSERT_H
#define RT_ASSERT_H

#include <stdint.h>

_Noreturn void rt_assert_fail(const char *expr, const char *file, int line,
                              uint64_t seed, int has_seed);

#define RT_ASSERT(expr)                                                        \
  ((expr) ? (void)0 : rt_assert_fail(#expr, __FILE__, __LINE__, 0, 0))

/* w: a const rt_world_t *; its seed goes into the message. */
#define RT_WASSERT(w, expr)                                                    \
  ((expr) ? (void)0                                                            \
          : rt_assert_fail(#expr, __FILE__, __LINE__, rt_world_seed(w), 1))

#endif
