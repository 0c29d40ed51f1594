/* simalloc.c: a small-block allocator for cJSON (see simalloc.h).
 *
 * A block is 16 * n bytes, n in [1, CLASSES]: an 8-byte header holding n,
 * then the caller's 16 * n - 8 bytes, 16-byte aligned (blocks start at 8
 * mod 16 in a chunk). A large block comes from malloc with a 16-byte prefix
 * whose last 8 bytes hold 0. A free small block keeps its header and links
 * to the next free block of its class through its first 8 bytes.
 *
 * Invariants: (1) every block on free[n] has header n; (2) chunk_used <=
 * SIMALLOC_CHUNK; (3) chunks are never freed, so a block's memory stays
 * valid for reuse whatever order blocks come back in.
 */
#include "simalloc.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>

#define GRAIN 16u
#define HEADER 8u
#define CLASSES ((SIMALLOC_SMALL_MAX + HEADER) / GRAIN)

_Static_assert((SIMALLOC_SMALL_MAX + HEADER) % GRAIN == 0,
               "the largest class fills its blocks");
_Static_assert(SIMALLOC_CHUNK % GRAIN == 0, "chunks hold whole grains");

typedef struct free_block {
  struct free_block *next;
} free_block_t;

typedef struct chunk {
  struct chunk *prev; /* keeps every chunk reachable until exit */
} chunk_t;

/* The one process-wide state (simalloc.h says why). */
static struct {
  free_block_t *free[CLASSES + 1]; /* index n: blocks of 16 * n bytes */
  chunk_t *chunk;                  /* the chunk being carved */
  uint32_t chunk_used;             /* bytes of it carved */
} sa;

/* A new block of class n from the current chunk, or a fresh one. */
static void *carve(uint32_t n) {
  uint32_t bytes = n * GRAIN;
  if (sa.chunk == NULL || sa.chunk_used + bytes > SIMALLOC_CHUNK) {
    chunk_t *c = malloc(SIMALLOC_CHUNK);
    if (c == NULL)
      return NULL;
    c->prev = sa.chunk;
    sa.chunk = c;
    /* The link takes the first grain; blocks then start at 8 mod 16 so
     * that what follows their header is 16-byte aligned. */
    sa.chunk_used = GRAIN + HEADER;
    if (sa.chunk_used + bytes > SIMALLOC_CHUNK)
      return NULL; /* cannot happen: the largest class fits a chunk */
  }
  uint8_t *block = (uint8_t *)sa.chunk + sa.chunk_used;
  sa.chunk_used += bytes;
  *(uint64_t *)block = n;
  return block + HEADER;
}

void *simalloc_malloc(size_t size) {
  if (size <= SIMALLOC_SMALL_MAX) {
    uint32_t n = (uint32_t)((size + HEADER + GRAIN - 1) / GRAIN);
    free_block_t *b = sa.free[n];
    if (b != NULL) {
      sa.free[n] = b->next; /* Invariant (1): the header already says n */
      return b;
    }
    return carve(n);
  }
  if (size > SIZE_MAX - GRAIN)
    return NULL;
  uint8_t *raw = malloc(size + GRAIN);
  if (raw == NULL)
    return NULL;
  *(uint64_t *)(raw + GRAIN - HEADER) = 0;
  return raw + GRAIN;
}

void simalloc_free(void *p) {
  if (p == NULL)
    return;
  uint64_t n = *(const uint64_t *)((const uint8_t *)p - HEADER);
  if (n == 0) {
    free((uint8_t *)p - GRAIN);
    return;
  }
  if (n > CLASSES)
    abort(); /* not a simalloc block: a caller freed what it did not own */
  free_block_t *b = p;
  b->next = sa.free[n];
  sa.free[n] = b;
}

#if defined(__SANITIZE_ADDRESS__)
#define SIMALLOC_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SIMALLOC_UNDER_ASAN 1
#endif
#endif

bool simalloc_install_cjson(void) {
#ifdef SIMALLOC_UNDER_ASAN
  return false;
#else
  cJSON_Hooks hooks = {.malloc_fn = simalloc_malloc, .free_fn = simalloc_free};
  cJSON_InitHooks(&hooks);
  return true;
#endif
}
