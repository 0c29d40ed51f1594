/* fuzz_main.c: the plain main of every fuzz target, for ctest.
 *
 * A target (tests/fuzz/fuzz_*.c) defines LLVMFuzzerTestOneInput. Built with
 * clang's -fsanitize=fuzzer (tools/fuzz), libFuzzer drives it; built with
 * this file instead (the fuzz_*_corpus programs, on every build), it runs
 * the inputs it is given once each, in name order, which is how ctest
 * replays each target's committed corpus. A broken rule aborts inside the
 * target; this runner only reads files.
 *
 * Each input is read into a buffer of exactly its size, as libFuzzer
 * passes it, so that ASan catches a read one byte past the input.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define INPUT_FILE_MAX (4u << 20) /* the corpora hold small files */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    perror(path);
    return -1;
  }
  uint8_t *buf = malloc(INPUT_FILE_MAX);
  size_t n = buf != NULL ? fread(buf, 1, INPUT_FILE_MAX, f) : 0;
  int failed = buf == NULL || ferror(f) || !feof(f);
  fclose(f);
  if (failed) {
    fprintf(stderr, "%s: cannot read it whole (at most %u bytes)\n", path,
            INPUT_FILE_MAX);
    free(buf);
    return -1;
  }
  /* Exactly n bytes (at least one, for malloc's sake). */
  uint8_t *input = malloc(n > 0 ? n : 1);
  if (input == NULL) {
    free(buf);
    return -1;
  }
  memcpy(input, buf, n);
  free(buf);
  LLVMFuzzerTestOneInput(input, n);
  free(input);
  printf("ok %s (%zu bytes)\n", path, n);
  fflush(stdout);
  return 0;
}

static int by_name(const struct dirent **a, const struct dirent **b) {
  return strcmp((*a)->d_name, (*b)->d_name);
}

/* Each argument is an input file or a directory of them. Exit 2 when one
 * cannot be read (or there is none); a broken rule aborts. */
int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
    return 2;
  }
  uint32_t runs = 0;
  for (int i = 1; i < argc; i++) {
    struct dirent **names = NULL;
    int n = scandir(argv[i], &names, NULL, by_name);
    if (n < 0) { /* not a directory: a file */
      if (run_file(argv[i]) < 0)
        return 2;
      runs++;
      continue;
    }
    int rc = 0;
    for (int j = 0; j < n; j++) {
      char path[4096];
      if (rc == 0 && names[j]->d_name[0] != '.') {
        snprintf(path, sizeof(path), "%s/%s", argv[i], names[j]->d_name);
        rc = run_file(path);
        runs++;
      }
      free(names[j]);
    }
    free(names);
    if (rc < 0)
      return 2;
  }
  printf("%u inputs, every check held\n", runs);
  return runs > 0 ? 0 : 2;
}
