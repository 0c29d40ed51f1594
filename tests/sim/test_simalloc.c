/* test_simalloc.c: the simulator programs' cJSON allocator
 * (tools/src/simalloc.h).
 *
 * Blocks are 16-byte aligned and hold what was asked for at, below and
 * above SIMALLOC_SMALL_MAX; a freed block is reused for its class; cJSON
 * parses, prints and deletes through it once installed. Criterion runs each
 * test in its own process, so the allocator's state starts empty.
 */
#include "simalloc.h"

#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

Test(simalloc, blocks_are_aligned_and_hold_their_size) {
  void *blocks[SIMALLOC_SMALL_MAX + 40];
  size_t n = sizeof(blocks) / sizeof(blocks[0]);
  for (size_t size = 0; size < n; size++) {
    blocks[size] = simalloc_malloc(size);
    cr_assert_not_null(blocks[size]);
    cr_assert_eq((uintptr_t)blocks[size] % 16, 0, "size %zu", size);
    memset(blocks[size], (int)(size & 0xff), size);
  }
  for (size_t size = 0; size < n; size++) {
    const uint8_t *b = blocks[size];
    for (size_t i = 0; i < size; i++)
      cr_assert_eq(b[i], (uint8_t)(size & 0xff), "size %zu byte %zu", size, i);
  }
  for (size_t size = 0; size < n; size++)
    simalloc_free(blocks[size]);
}

Test(simalloc, a_freed_block_is_reused_for_its_class) {
  void *a = simalloc_malloc(64);
  simalloc_free(a);
  cr_assert_eq(simalloc_malloc(60), a); /* same 16-byte class */
  void *b = simalloc_malloc(64);
  cr_assert_neq(b, a);
  simalloc_free(b);
  void *c = simalloc_malloc(200); /* another class: not b */
  cr_assert_neq(c, b);
  simalloc_free(c);
  simalloc_free(a);
}

Test(simalloc, at_and_above_the_small_limit) {
  void *at = simalloc_malloc(SIMALLOC_SMALL_MAX);
  void *above = simalloc_malloc(SIMALLOC_SMALL_MAX + 1);
  void *big = simalloc_malloc(1u << 20);
  cr_assert_not_null(at);
  cr_assert_not_null(above);
  cr_assert_not_null(big);
  cr_assert_eq((uintptr_t)above % 16, 0);
  cr_assert_eq((uintptr_t)big % 16, 0);
  memset(at, 1, SIMALLOC_SMALL_MAX);
  memset(above, 2, SIMALLOC_SMALL_MAX + 1);
  memset(big, 3, 1u << 20);
  simalloc_free(big);
  simalloc_free(above);
  simalloc_free(at);
  simalloc_free(NULL);
}

Test(simalloc, many_blocks_span_chunks) {
  enum { N = 3 * SIMALLOC_CHUNK / 80 };
  static void *blocks[N];
  for (size_t i = 0; i < N; i++) {
    blocks[i] = simalloc_malloc(64);
    cr_assert_not_null(blocks[i]);
    memset(blocks[i], (int)(i & 0xff), 64);
  }
  for (size_t i = 0; i < N; i++) {
    cr_assert_eq(((uint8_t *)blocks[i])[63], (uint8_t)(i & 0xff));
    simalloc_free(blocks[i]);
  }
}

Test(simalloc, cjson_round_trips_through_it) {
  bool installed = simalloc_install_cjson(); /* false under ASan */
  const char text[] = "{\"type\":\"UPDATE\",\"payload\":{\"p1Score\":3,"
                      "\"p2Score\":4,\"seq\":9007199254740991,\"name\":"
                      "\"a long enough name to need a larger block\"}}";
  for (int round = 0; round < 3; round++) {
    cJSON *root = cJSON_ParseWithLength(text, sizeof(text) - 1);
    cr_assert_not_null(root);
    char *out = cJSON_PrintUnformatted(root);
    cr_assert_not_null(out);
    cJSON *again = cJSON_Parse(out);
    cr_assert(cJSON_Compare(root, again, true));
    cJSON_Delete(again);
    cJSON_free(out);
    cJSON_Delete(root);
  }
  cJSON_InitHooks(NULL);
  (void)installed;
}
