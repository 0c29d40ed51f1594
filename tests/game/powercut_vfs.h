/* powercut_vfs.h: an SQLite VFS for tests that can lose power.
 *
 * Every file lives in memory as two images: what was written (current) and
 * what was on the platter at the file's last xSync (durable). Every write,
 * truncate and sync is an operation with a number, counted from 1 since
 * the last boot. A power cut at operation K fails operation K and every
 * write, sync, truncate, delete and file creation after it with an I/O
 * error: the machine is dead and nothing more reaches the disk. A reboot
 * (with no file open) makes each file's durable image its image, so the
 * writes since its last sync are lost; or, adversarially, keeps a random
 * subset of them, each write whole. Shared memory (the WAL index) is
 * process memory and does not survive a reboot.
 *
 * Simplifications, each on the side of the real disk being harsher:
 *  - a write is lost or kept whole: no torn sectors, no damaged neighbours;
 *  - creating and deleting a file are durable at once (no directory sync);
 *  - reads see the current image (the page cache), until the reboot;
 *  - locks are no-ops: one connection at a time (asserted for the WAL
 *    index), as the Store has;
 *  - time is fixed and randomness comes from the seed, so a run repeats.
 * Limits: POWERCUT_FILES_MAX files of POWERCUT_FILE_BYTES_MAX each (more:
 * SQLITE_CANTOPEN, SQLITE_FULL), POWERCUT_UNSYNCED_MAX writes between two
 * syncs of a file (more: SQLITE_IOERR_WRITE).
 *
 * The VFS is registered under its name (never as the default); open a
 * database on it with sqlite3_open_v2(path, &db, flags, name). Not thread
 * safe: one thread, as the simulated world.
 */
#ifndef POWERCUT_VFS_H
#define POWERCUT_VFS_H

#include <stdbool.h>
#include <stdint.h>

#define POWERCUT_FILES_MAX 16u
#define POWERCUT_NAME_MAX 256u
#define POWERCUT_FILE_BYTES_MAX (64u << 20)
#define POWERCUT_UNSYNCED_MAX 65536u
#define POWERCUT_SHM_REGIONS_MAX 64u /* of 32 KiB: a WAL index of 2 MiB */

typedef struct powercut_vfs powercut_vfs_t;

typedef enum powercut_reboot {
  POWERCUT_REBOOT_LOSE_UNSYNCED = 0,  /* the durable images only */
  POWERCUT_REBOOT_KEEP_SOME_UNSYNCED, /* plus a seeded subset of the rest */
} powercut_reboot_t;

typedef struct powercut_stats {
  uint64_t writes, truncates, syncs;     /* done, over every boot */
  uint64_t refused;                      /* failed because the power was cut */
  uint64_t unsynced_lost, unsynced_kept; /* at reboots */
} powercut_stats_t;

/* Register a VFS called `name` (copied) with an empty disk. 0, or an
 * SQLite error code. */
int powercut_vfs_create(const char *name, uint64_t seed, powercut_vfs_t **out);
/* Unregister and free; no file may be open. */
void powercut_vfs_destroy(powercut_vfs_t *v);
const char *powercut_vfs_name(const powercut_vfs_t *v);

/* Cut the power at operation `op` of this boot (0: never). */
void powercut_vfs_cut_at(powercut_vfs_t *v, uint64_t op);
/* Writes, truncates and syncs attempted since the boot (the cut one too). */
uint64_t powercut_vfs_ops(const powercut_vfs_t *v);
bool powercut_vfs_is_dead(const powercut_vfs_t *v);
/* Power on again: no file may be open. Operations count from 1 again and
 * no cut is armed. */
void powercut_vfs_reboot(powercut_vfs_t *v, powercut_reboot_t how);
/* A new, empty disk (and a reboot). */
void powercut_vfs_wipe(powercut_vfs_t *v);
void powercut_vfs_get_stats(const powercut_vfs_t *v, powercut_stats_t *out);

#endif
