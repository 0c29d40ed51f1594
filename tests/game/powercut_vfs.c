/* powercut_vfs.c: an SQLite VFS for tests that can lose power
 * (powercut_vfs.h has the model and its simplifications).
 *
 * Invariants, per file (node_t):
 *  (1) durable + the unsynced log, applied in order, gives current: a sync
 *      applies the log to durable and empties it; a reboot applies some or
 *      none of it and then sets current to durable.
 *  (2) After the cut (dead), no image and no file list changes: every
 *      mutating call fails before touching anything.
 *  (3) The WAL index (shm) is shared by the handles of one file and
 *      cleared when the first of them maps it (as the unix VFS truncates
 *      the -shm file when it takes the DMS lock alone) and at a reboot.
 * Operation numbers (ops) count writes, truncates and syncs, attempted or
 * refused, so that "cut at K" names the K-th of them.
 */
#include "powercut_vfs.h"

#include "rt_assert.h"
#include "rt_rng.h"

#include <sqlite3.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Julian day of 2026-01-01T00:00:00Z in milliseconds: a fixed clock. */
#define FIXED_JULIAN_MS (210866760000000LL + 1767225600000LL)
#define SECTOR_BYTES 4096

typedef struct image {
  uint8_t *bytes;
  size_t len, cap;
} image_t;

/* A write or a truncate that reached current but not yet durable. */
typedef struct unsynced {
  int64_t offset; /* a truncate: the new size */
  uint8_t *data;  /* NULL for a truncate */
  uint32_t len;
} unsynced_t;

typedef struct node {
  bool used;
  char name[POWERCUT_NAME_MAX];
  image_t current, durable;
  unsynced_t *log; /* Invariant (1) */
  uint32_t log_len, log_cap;
  uint32_t handles; /* open sqlite3_files */
  uint8_t *shm[POWERCUT_SHM_REGIONS_MAX];
  int shm_region_bytes;
  uint32_t shm_handles; /* handles that mapped the shm: at most one */
} node_t;

struct powercut_vfs {
  sqlite3_vfs base; /* first: SQLite hands this pointer back */
  char name[64];
  uint64_t rng;
  uint64_t ops, cut_at;
  bool dead;
  uint32_t temp_seq; /* names of files SQLite opens without one */
  powercut_stats_t stats;
  node_t nodes[POWERCUT_FILES_MAX];
};

typedef struct handle {
  sqlite3_file base; /* first */
  powercut_vfs_t *vfs;
  node_t *node;
  bool delete_on_close;
  bool shm_mapped;
} handle_t;

/* ---- Helpers ------------------------------------------------------------- */

static int image_resize(image_t *img, size_t len) {
  if (len > POWERCUT_FILE_BYTES_MAX)
    return SQLITE_FULL;
  if (len > img->cap) {
    size_t cap = img->cap > 0 ? img->cap : 4096;
    while (cap < len)
      cap *= 2;
    uint8_t *bytes = realloc(img->bytes, cap);
    if (bytes == NULL)
      return SQLITE_NOMEM;
    img->bytes = bytes;
    img->cap = cap;
  }
  if (len > img->len)
    memset(img->bytes + img->len, 0, len - img->len);
  img->len = len;
  return SQLITE_OK;
}

static int image_write(image_t *img, const void *data, size_t len,
                       int64_t offset) {
  size_t end = (size_t)offset + len;
  if (end > img->len) {
    int rc = image_resize(img, end);
    if (rc != SQLITE_OK)
      return rc;
  }
  memcpy(img->bytes + offset, data, len);
  return SQLITE_OK;
}

static int image_copy(image_t *dst, const image_t *src) {
  int rc = image_resize(dst, src->len);
  if (rc == SQLITE_OK && src->len > 0)
    memcpy(dst->bytes, src->bytes, src->len);
  return rc;
}

static int unsynced_apply(const unsynced_t *u, image_t *img) {
  return u->data != NULL ? image_write(img, u->data, u->len, u->offset)
                         : image_resize(img, (size_t)u->offset);
}

static void log_clear(node_t *n) {
  for (uint32_t i = 0; i < n->log_len; i++)
    free(n->log[i].data);
  n->log_len = 0;
}

static int log_append(node_t *n, const void *data, uint32_t len,
                      int64_t offset) {
  if (n->log_len == POWERCUT_UNSYNCED_MAX)
    return SQLITE_IOERR_WRITE;
  if (n->log_len == n->log_cap) {
    uint32_t cap = n->log_cap > 0 ? n->log_cap * 2 : 64;
    unsynced_t *log = realloc(n->log, cap * sizeof(*log));
    if (log == NULL)
      return SQLITE_NOMEM;
    n->log = log;
    n->log_cap = cap;
  }
  unsynced_t u = {.offset = offset, .data = NULL, .len = len};
  if (data != NULL) {
    u.data = malloc(len > 0 ? len : 1);
    if (u.data == NULL)
      return SQLITE_NOMEM;
    memcpy(u.data, data, len);
  }
  n->log[n->log_len++] = u;
  return SQLITE_OK;
}

static void shm_clear(node_t *n) {
  for (uint32_t i = 0; i < POWERCUT_SHM_REGIONS_MAX; i++) {
    free(n->shm[i]);
    n->shm[i] = NULL;
  }
  n->shm_region_bytes = 0;
}

/* The file is gone; its slot keeps the buffers for the next file, so that
 * a test running many disks one after the other does not fault in fresh
 * pages for each (that was most of its time). */
static void node_delete(node_t *n) {
  RT_ASSERT(n->handles == 0);
  log_clear(n);
  shm_clear(n);
  n->used = false;
  n->name[0] = '\0';
  n->current.len = 0;
  n->durable.len = 0;
}

static void node_free(node_t *n) {
  node_delete(n);
  free(n->log);
  free(n->current.bytes);
  free(n->durable.bytes);
  memset(n, 0, sizeof(*n));
}

static node_t *node_find(powercut_vfs_t *v, const char *name) {
  for (uint32_t i = 0; i < POWERCUT_FILES_MAX; i++) {
    if (v->nodes[i].used && strcmp(v->nodes[i].name, name) == 0)
      return &v->nodes[i];
  }
  return NULL;
}

/* Creating a file is durable at once (a simplification). */
static node_t *node_create(powercut_vfs_t *v, const char *name) {
  if (strlen(name) >= POWERCUT_NAME_MAX)
    return NULL;
  for (uint32_t i = 0; i < POWERCUT_FILES_MAX; i++) {
    node_t *n = &v->nodes[i];
    if (!n->used) {
      n->used = true;
      snprintf(n->name, sizeof(n->name), "%s", name);
      return n;
    }
  }
  return NULL;
}

/* Number the next write, truncate or sync; false once the power is cut.
 * Invariant (2). */
static bool op_allowed(powercut_vfs_t *v) {
  if (!v->dead) {
    v->ops++;
    if (v->cut_at != 0 && v->ops >= v->cut_at)
      v->dead = true;
  }
  if (v->dead)
    v->stats.refused++;
  return !v->dead;
}

/* ---- sqlite3_io_methods -------------------------------------------------- */

static int pc_close(sqlite3_file *f) {
  handle_t *h = (handle_t *)f;
  node_t *n = h->node;
  RT_ASSERT(n->handles > 0);
  if (h->shm_mapped) {
    n->shm_handles--;
    if (n->shm_handles == 0)
      shm_clear(n);
  }
  n->handles--;
  /* A temporary file is never durable: gone whether or not power is on. */
  if (h->delete_on_close && n->handles == 0)
    node_delete(n);
  return SQLITE_OK;
}

static int pc_read(sqlite3_file *f, void *out, int amount, sqlite3_int64 at) {
  const image_t *img = &((handle_t *)f)->node->current;
  size_t want = (size_t)amount, have = 0;
  if ((size_t)at < img->len)
    have = img->len - (size_t)at < want ? img->len - (size_t)at : want;
  if (have > 0)
    memcpy(out, img->bytes + at, have);
  if (have == want)
    return SQLITE_OK;
  memset((uint8_t *)out + have, 0, want - have); /* SQLite requires it */
  return SQLITE_IOERR_SHORT_READ;
}

static int pc_write(sqlite3_file *f, const void *data, int amount,
                    sqlite3_int64 at) {
  handle_t *h = (handle_t *)f;
  if (!op_allowed(h->vfs))
    return SQLITE_IOERR_WRITE;
  if ((uint64_t)at + (uint64_t)amount > POWERCUT_FILE_BYTES_MAX)
    return SQLITE_FULL;
  int rc = log_append(h->node, data, (uint32_t)amount, at);
  if (rc == SQLITE_OK)
    rc = image_write(&h->node->current, data, (size_t)amount, at);
  if (rc == SQLITE_OK)
    h->vfs->stats.writes++;
  return rc;
}

static int pc_truncate(sqlite3_file *f, sqlite3_int64 size) {
  handle_t *h = (handle_t *)f;
  if (!op_allowed(h->vfs))
    return SQLITE_IOERR_TRUNCATE;
  if ((uint64_t)size > POWERCUT_FILE_BYTES_MAX)
    return SQLITE_FULL;
  int rc = log_append(h->node, NULL, 0, size);
  if (rc == SQLITE_OK)
    rc = image_resize(&h->node->current, (size_t)size);
  if (rc == SQLITE_OK)
    h->vfs->stats.truncates++;
  return rc;
}

/* Invariant (1): the log reaches durable, in order. */
static int pc_sync(sqlite3_file *f, int flags) {
  (void)flags; /* NORMAL, FULL, DATAONLY: all the same to a model disk */
  handle_t *h = (handle_t *)f;
  if (!op_allowed(h->vfs))
    return SQLITE_IOERR_FSYNC;
  node_t *n = h->node;
  for (uint32_t i = 0; i < n->log_len; i++) {
    int rc = unsynced_apply(&n->log[i], &n->durable);
    RT_ASSERT(rc == SQLITE_OK); /* within the limits: current took it */
    (void)rc;
  }
  log_clear(n);
  h->vfs->stats.syncs++;
  return SQLITE_OK;
}

static int pc_file_size(sqlite3_file *f, sqlite3_int64 *out) {
  *out = (sqlite3_int64)((handle_t *)f)->node->current.len;
  return SQLITE_OK;
}

/* One connection at a time: every lock is granted. */
static int pc_lock(sqlite3_file *f, int level) {
  (void)f;
  (void)level;
  return SQLITE_OK;
}

static int pc_check_reserved_lock(sqlite3_file *f, int *out) {
  (void)f;
  *out = 0;
  return SQLITE_OK;
}

static int pc_file_control(sqlite3_file *f, int op, void *arg) {
  (void)f;
  (void)op;
  (void)arg;
  return SQLITE_NOTFOUND;
}

static int pc_sector_size(sqlite3_file *f) {
  (void)f;
  return SECTOR_BYTES;
}

/* No SQLITE_IOCAP_POWERSAFE_OVERWRITE and no SEQUENTIAL: SQLite assumes the
 * least of the disk, as it must for a disk that reorders writes. */
static int pc_device_characteristics(sqlite3_file *f) {
  (void)f;
  return 0;
}

/* Invariant (3). */
static int pc_shm_map(sqlite3_file *f, int region, int region_bytes, int extend,
                      void volatile **out) {
  handle_t *h = (handle_t *)f;
  node_t *n = h->node;
  *out = NULL;
  if (!h->shm_mapped) {
    RT_ASSERT(n->shm_handles == 0); /* one connection at a time */
    shm_clear(n);
    h->shm_mapped = true;
    n->shm_handles = 1;
  }
  if (region < 0 || (uint32_t)region >= POWERCUT_SHM_REGIONS_MAX)
    return SQLITE_IOERR_SHMSIZE;
  if (n->shm_region_bytes == 0)
    n->shm_region_bytes = region_bytes;
  RT_ASSERT(n->shm_region_bytes == region_bytes);
  if (n->shm[region] == NULL && extend) {
    n->shm[region] = calloc(1, (size_t)region_bytes);
    if (n->shm[region] == NULL)
      return SQLITE_NOMEM;
  }
  *out = n->shm[region];
  return SQLITE_OK;
}

static int pc_shm_lock(sqlite3_file *f, int offset, int count, int flags) {
  (void)f;
  (void)offset;
  (void)count;
  (void)flags;
  return SQLITE_OK;
}

static void pc_shm_barrier(sqlite3_file *f) {
  (void)f;
  atomic_thread_fence(memory_order_seq_cst);
}

static int pc_shm_unmap(sqlite3_file *f, int delete_flag) {
  (void)delete_flag; /* the index goes with its last mapping either way */
  handle_t *h = (handle_t *)f;
  if (h->shm_mapped) {
    h->shm_mapped = false;
    h->node->shm_handles--;
    if (h->node->shm_handles == 0)
      shm_clear(h->node);
  }
  return SQLITE_OK;
}

static const sqlite3_io_methods io_methods = {
    .iVersion = 2, /* the shm methods; no memory-mapped I/O */
    .xClose = pc_close,
    .xRead = pc_read,
    .xWrite = pc_write,
    .xTruncate = pc_truncate,
    .xSync = pc_sync,
    .xFileSize = pc_file_size,
    .xLock = pc_lock,
    .xUnlock = pc_lock,
    .xCheckReservedLock = pc_check_reserved_lock,
    .xFileControl = pc_file_control,
    .xSectorSize = pc_sector_size,
    .xDeviceCharacteristics = pc_device_characteristics,
    .xShmMap = pc_shm_map,
    .xShmLock = pc_shm_lock,
    .xShmBarrier = pc_shm_barrier,
    .xShmUnmap = pc_shm_unmap,
};

/* ---- sqlite3_vfs --------------------------------------------------------- */

static int pc_open(sqlite3_vfs *base, const char *name, sqlite3_file *f,
                   int flags, int *out_flags) {
  powercut_vfs_t *v = base->pAppData;
  handle_t *h = (handle_t *)f;
  memset(h, 0, sizeof(*h));
  char temp[32];
  if (name == NULL) {
    snprintf(temp, sizeof(temp), "powercut-temp-%u", ++v->temp_seq);
    name = temp;
  }
  node_t *n = node_find(v, name);
  if (n != NULL && (flags & SQLITE_OPEN_EXCLUSIVE) != 0)
    return SQLITE_CANTOPEN;
  if (n == NULL) {
    if ((flags & SQLITE_OPEN_CREATE) == 0 || v->dead) /* Invariant (2) */
      return SQLITE_CANTOPEN;
    n = node_create(v, name);
    if (n == NULL)
      return SQLITE_CANTOPEN;
  }
  n->handles++;
  h->vfs = v;
  h->node = n;
  h->delete_on_close = (flags & SQLITE_OPEN_DELETEONCLOSE) != 0;
  h->base.pMethods = &io_methods;
  if (out_flags != NULL)
    *out_flags = flags;
  return SQLITE_OK;
}

/* Durable at once (a simplification); refused once the power is cut. */
static int pc_delete(sqlite3_vfs *base, const char *name, int sync_dir) {
  (void)sync_dir;
  powercut_vfs_t *v = base->pAppData;
  if (v->dead) { /* Invariant (2) */
    v->stats.refused++;
    return SQLITE_IOERR_DELETE;
  }
  node_t *n = node_find(v, name);
  if (n == NULL)
    return SQLITE_IOERR_DELETE_NOENT;
  /* SQLite closes a journal or WAL before deleting it; the model has no
   * unlinked-but-open files. */
  RT_ASSERT(n->handles == 0);
  node_delete(n);
  return SQLITE_OK;
}

static int pc_access(sqlite3_vfs *base, const char *name, int flags, int *out) {
  (void)flags; /* EXISTS, READWRITE: every file is read-write */
  *out = node_find(base->pAppData, name) != NULL;
  return SQLITE_OK;
}

static int pc_full_pathname(sqlite3_vfs *base, const char *name, int out_len,
                            char *out) {
  (void)base;
  if (strlen(name) >= (size_t)out_len)
    return SQLITE_CANTOPEN;
  snprintf(out, (size_t)out_len, "%s", name);
  return SQLITE_OK;
}

static void *pc_dl_open(sqlite3_vfs *base, const char *name) {
  (void)base;
  (void)name;
  return NULL; /* no extensions */
}

static void pc_dl_error(sqlite3_vfs *base, int len, char *out) {
  (void)base;
  snprintf(out, (size_t)len, "no extensions on the powercut VFS");
}

static void (*pc_dl_sym(sqlite3_vfs *base, void *lib, const char *sym))(void) {
  (void)base;
  (void)lib;
  (void)sym;
  return NULL;
}

static void pc_dl_close(sqlite3_vfs *base, void *lib) {
  (void)base;
  (void)lib;
}

static int pc_randomness(sqlite3_vfs *base, int len, char *out) {
  powercut_vfs_t *v = base->pAppData;
  for (int i = 0; i < len; i++)
    out[i] = (char)(rt_splitmix64(&v->rng) & 0xff);
  return len;
}

static int pc_sleep(sqlite3_vfs *base, int us) {
  (void)base;
  return us; /* no one to wait for: one connection */
}

static int pc_current_time_int64(sqlite3_vfs *base, sqlite3_int64 *out) {
  (void)base;
  *out = FIXED_JULIAN_MS;
  return SQLITE_OK;
}

static int pc_current_time(sqlite3_vfs *base, double *out) {
  (void)base;
  *out = (double)FIXED_JULIAN_MS / 86400000.0;
  return SQLITE_OK;
}

static int pc_get_last_error(sqlite3_vfs *base, int len, char *out) {
  (void)base;
  (void)len;
  (void)out;
  return 0;
}

/* ---- The test's controls ------------------------------------------------- */

int powercut_vfs_create(const char *name, uint64_t seed, powercut_vfs_t **out) {
  powercut_vfs_t *v = calloc(1, sizeof(*v));
  if (v == NULL)
    return SQLITE_NOMEM;
  if (strlen(name) >= sizeof(v->name)) {
    free(v);
    return SQLITE_MISUSE;
  }
  snprintf(v->name, sizeof(v->name), "%s", name);
  v->rng = seed;
  v->base = (sqlite3_vfs){
      .iVersion = 2, /* xCurrentTimeInt64 */
      .szOsFile = sizeof(handle_t),
      .mxPathname = POWERCUT_NAME_MAX - 1,
      .zName = v->name,
      .pAppData = v,
      .xOpen = pc_open,
      .xDelete = pc_delete,
      .xAccess = pc_access,
      .xFullPathname = pc_full_pathname,
      .xDlOpen = pc_dl_open,
      .xDlError = pc_dl_error,
      .xDlSym = pc_dl_sym,
      .xDlClose = pc_dl_close,
      .xRandomness = pc_randomness,
      .xSleep = pc_sleep,
      .xCurrentTime = pc_current_time,
      .xGetLastError = pc_get_last_error,
      .xCurrentTimeInt64 = pc_current_time_int64,
  };
  int rc = sqlite3_vfs_register(&v->base, 0);
  if (rc != SQLITE_OK) {
    free(v);
    return rc;
  }
  *out = v;
  return SQLITE_OK;
}

void powercut_vfs_destroy(powercut_vfs_t *v) {
  if (v == NULL)
    return;
  sqlite3_vfs_unregister(&v->base);
  for (uint32_t i = 0; i < POWERCUT_FILES_MAX; i++)
    node_free(&v->nodes[i]);
  free(v);
}

const char *powercut_vfs_name(const powercut_vfs_t *v) { return v->name; }

void powercut_vfs_cut_at(powercut_vfs_t *v, uint64_t op) { v->cut_at = op; }

uint64_t powercut_vfs_ops(const powercut_vfs_t *v) { return v->ops; }

bool powercut_vfs_is_dead(const powercut_vfs_t *v) { return v->dead; }

/* What the platter holds when the power comes back: durable, plus, in the
 * adversarial mode, each unsynced write with probability 1/2 (in order, so
 * a kept write lands over the kept ones before it). */
static void node_reboot(powercut_vfs_t *v, node_t *n, powercut_reboot_t how) {
  RT_ASSERT(n->handles == 0);
  for (uint32_t i = 0; i < n->log_len; i++) {
    bool keep = how == POWERCUT_REBOOT_KEEP_SOME_UNSYNCED &&
                (rt_splitmix64(&v->rng) & 1) != 0;
    if (keep && unsynced_apply(&n->log[i], &n->durable) == SQLITE_OK)
      v->stats.unsynced_kept++;
    else
      v->stats.unsynced_lost++;
  }
  log_clear(n);
  int rc = image_copy(&n->current, &n->durable);
  RT_ASSERT(rc == SQLITE_OK); /* out of memory: the test cannot go on */
  (void)rc;
  shm_clear(n);
}

void powercut_vfs_reboot(powercut_vfs_t *v, powercut_reboot_t how) {
  for (uint32_t i = 0; i < POWERCUT_FILES_MAX; i++)
    if (v->nodes[i].used)
      node_reboot(v, &v->nodes[i], how);
  v->ops = 0;
  v->cut_at = 0;
  v->dead = false;
}

void powercut_vfs_wipe(powercut_vfs_t *v) {
  for (uint32_t i = 0; i < POWERCUT_FILES_MAX; i++)
    if (v->nodes[i].used)
      node_delete(&v->nodes[i]);
  v->ops = 0;
  v->cut_at = 0;
  v->dead = false;
}

void powercut_vfs_get_stats(const powercut_vfs_t *v, powercut_stats_t *out) {
  *out = v->stats;
}
