/* simalloc.h: a small-block allocator for cJSON in the simulator programs.
 *
 * cJSON allocates every node, key and string of a message on its own and
 * frees them one by one; in a simulated run (bots parsing what they receive,
 * the server decoding clicks and encoding updates) glibc's malloc and free
 * behind that were about a fifth of all instructions: a message's dozen
 * same-sized frees overflow glibc's per-thread cache and take the slow
 * path. simalloc keeps a free list per 16-byte size class (blocks up to
 * SIMALLOC_SMALL_MAX bytes) carved from chunks it never gives back, so an
 * allocation or a free is a few instructions; larger blocks go to malloc.
 *
 * Installed with cJSON_InitHooks by the simulator programs' main()
 * (overcookied-sim, bench-sim) and by nothing else: the library code and the
 * live server keep cJSON's default. It changes no simulated outcome: no
 * code orders or hashes by address. Under AddressSanitizer
 * simalloc_install_cjson() installs nothing, so the sanitizer keeps
 * checking every cJSON block.
 *
 * One thread: cJSON's hooks carry no context, so the free lists are the one
 * piece of process-wide state, and only the simulator's thread uses cJSON
 * (a swarm forks, each child has its own copy). Chunks live until exit.
 */
#ifndef SIMALLOC_H
#define SIMALLOC_H

#include <stdbool.h>
#include <stddef.h>

#define SIMALLOC_SMALL_MAX 504u    /* larger requests go to malloc */
#define SIMALLOC_CHUNK (64u * 1024) /* bytes carved at a time */

void *simalloc_malloc(size_t size);
void simalloc_free(void *p); /* NULL is a no-op */

/* Make cJSON allocate with simalloc; true when installed (false under
 * AddressSanitizer). Call before any cJSON allocation is live. */
bool simalloc_install_cjson(void);

#endif
