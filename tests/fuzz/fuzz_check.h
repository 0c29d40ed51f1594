/* fuzz_check.h: what every fuzz target (tests/fuzz/fuzz_*.c) shares.
 *
 * FUZZ_CHECK states a rule that must hold whatever the input: a broken one
 * prints the rule, where, and why, then aborts, which libFuzzer reports as
 * a crash with the input that caused it (and the corpus runner,
 * fuzz_main.c, as a failed ctest). A rejection of bad input is never a
 * broken rule: only a crash, a sanitizer report or an inconsistent result.
 */
#ifndef FUZZ_CHECK_H
#define FUZZ_CHECK_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define FUZZ_CHECK(cond, ...)                                                  \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: broken rule: %s: ", __FILE__, __LINE__, #cond);  \
      fprintf(stderr, __VA_ARGS__);                                            \
      fputc('\n', stderr);                                                     \
      abort();                                                                 \
    }                                                                          \
  } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
