/* seam_canary.c: breaks the seam on purpose, so that the guard
 * (check_seam.sh) is seen to catch a wall clock, rand() and a thread. Never
 * linked into anything. */
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

long oc_seam_canary(void);

static void *nothing(void *arg) { return arg; }

long oc_seam_canary(void) {
  pthread_t t;
  if (pthread_create(&t, NULL, nothing, NULL) == 0)
    pthread_join(t, NULL);
  return (long)time(NULL) + rand();
}
