/* sim_redis_db.c: the model's key table, values, expiry and memory count.
 *
 * Keys live in an open-addressing table (linear probing, deletion by
 * backward shift, at most half full) hashed with FNV-1a: no seed, so the
 * layout is a pure function of the operations, though nothing a client
 * sees depends on it (sim_redis_int.h). Collections are sorted arrays
 * (sets, hashes: by member; sorted sets: by score, then member) or plain
 * arrays (lists): small, simple, and in the order replies need.
 *
 * Expiry (sim_redis.h, guarantees (1), (2)): a key with expire_ms D exists
 * while now_ms <= D. sr_db_find drops a key it finds past D; sr_db_sweep
 * looks at a few slots per command and drops what it finds past D.
 */
#include "sim_redis_int.h"

#include "rt_assert.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DB_CAP_MIN 64u
#define VEC_CAP_MIN 4u

/* ---- Bytes and costs ----------------------------------------------------- */

int sr_bytes_cmp(const char *a, size_t alen, const char *b, size_t blen) {
  size_t n = alen < blen ? alen : blen;
  int r = n > 0 ? memcmp(a, b, n) : 0;
  if (r != 0)
    return r;
  return alen < blen ? -1 : alen > blen ? 1 : 0;
}

static int bytes_dup(sr_bytes_t *out, const char *p, size_t n) {
  char *copy = malloc(n + 1);
  if (copy == NULL)
    return RT_ENOMEM;
  if (n > 0)
    memcpy(copy, p, n);
  copy[n] = '\0';
  out->p = copy;
  out->len = n;
  return RT_OK;
}

static void bytes_free(sr_bytes_t *b) {
  free(b->p);
  b->p = NULL;
  b->len = 0;
}

static uint64_t item_cost(const sr_item_t *it) {
  return SR_ITEM_OVERHEAD + it->a.len + it->b.len;
}

/* Invariant (3): recomputed, for sr_db_check and deletion. */
static uint64_t key_cost(const sr_key_t *k) {
  uint64_t cost = SR_KEY_OVERHEAD + k->name.len + k->str.len;
  for (uint32_t i = 0; i < k->vec.len; i++)
    cost += item_cost(&k->vec.items[i]);
  return cost;
}

static uint64_t fnv1a(const char *p, size_t n) {
  uint64_t h = 14695981039346656037ull;
  for (size_t i = 0; i < n; i++) {
    h ^= (uint8_t)p[i];
    h *= 1099511628211ull;
  }
  return h;
}

/* ---- The table ----------------------------------------------------------- */

int sr_db_init(sr_db_t *db) {
  memset(db, 0, sizeof(*db));
  db->slots = calloc(DB_CAP_MIN, sizeof(*db->slots));
  if (db->slots == NULL)
    return RT_ENOMEM;
  db->cap = DB_CAP_MIN;
  return RT_OK;
}

static void key_free(sr_key_t *k) {
  bytes_free(&k->name);
  bytes_free(&k->str);
  for (uint32_t i = 0; i < k->vec.len; i++) {
    bytes_free(&k->vec.items[i].a);
    bytes_free(&k->vec.items[i].b);
  }
  free(k->vec.items);
  free(k);
}

static void free_all(sr_db_t *db) {
  for (uint32_t i = 0; i < db->cap; i++)
    if (db->slots[i] != NULL)
      key_free(db->slots[i]);
}

void sr_db_deinit(sr_db_t *db) {
  if (db->slots != NULL)
    free_all(db);
  free(db->slots);
  memset(db, 0, sizeof(*db));
}

void sr_db_flush(sr_db_t *db) {
  free_all(db);
  memset(db->slots, 0, db->cap * sizeof(*db->slots));
  db->len = 0;
  db->sweep = 0;
  db->used_bytes = 0;
}

/* The slot holding `name`, or the empty slot where it would go. */
static uint32_t slot_of(const sr_db_t *db, const char *name, size_t len,
                        uint64_t hash) {
  uint32_t mask = db->cap - 1;
  uint32_t i = (uint32_t)hash & mask;
  while (db->slots[i] != NULL) {
    const sr_key_t *k = db->slots[i];
    if (k->hash == hash && sr_bytes_cmp(k->name.p, k->name.len, name, len) == 0)
      return i;
    i = (i + 1) & mask;
  }
  return i;
}

static int grow(sr_db_t *db) {
  uint32_t cap = db->cap * 2;
  sr_key_t **old = db->slots;
  uint32_t old_cap = db->cap;
  db->slots = calloc(cap, sizeof(*db->slots));
  if (db->slots == NULL) {
    db->slots = old;
    return RT_ENOMEM;
  }
  db->cap = cap;
  for (uint32_t i = 0; i < old_cap; i++) {
    sr_key_t *k = old[i];
    if (k != NULL)
      db->slots[slot_of(db, k->name.p, k->name.len, k->hash)] = k;
  }
  free(old);
  db->sweep = 0;
  return RT_OK;
}

/* Backward-shift deletion: later keys of the probe run move up, so no
 * tombstones are needed. */
static void slot_clear(sr_db_t *db, uint32_t hole) {
  uint32_t mask = db->cap - 1;
  uint32_t j = hole;
  for (;;) {
    j = (j + 1) & mask;
    sr_key_t *k = db->slots[j];
    if (k == NULL)
      break;
    uint32_t home = (uint32_t)k->hash & mask;
    /* k may fill the hole unless its home lies cyclically in (hole, j]. */
    bool stays =
        hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
    if (!stays) {
      db->slots[hole] = k;
      hole = j;
    }
  }
  db->slots[hole] = NULL;
}

static bool expired(const sr_key_t *k, int64_t now_ms) {
  return k->expire_ms != SR_NO_EXPIRE && now_ms > k->expire_ms;
}

sr_key_t *sr_db_find(sr_db_t *db, const char *name, size_t len,
                     int64_t now_ms) {
  uint32_t i = slot_of(db, name, len, fnv1a(name, len));
  sr_key_t *k = db->slots[i];
  if (k == NULL || !expired(k, now_ms))
    return k;
  db->expired++;
  sr_db_delete(db, k);
  return NULL;
}

const sr_key_t *sr_db_peek(const sr_db_t *db, const char *name, size_t len,
                           int64_t now_ms) {
  const sr_key_t *k = db->slots[slot_of(db, name, len, fnv1a(name, len))];
  return k == NULL || expired(k, now_ms) ? NULL : k;
}

sr_key_t *sr_db_add(sr_db_t *db, const char *name, size_t len, sr_type_t type) {
  if (db->len >= SIM_REDIS_KEYS_MAX)
    return NULL;
  if ((db->len + 1) * 2 > db->cap && grow(db) < 0)
    return NULL;
  sr_key_t *k = calloc(1, sizeof(*k));
  if (k == NULL || bytes_dup(&k->name, name, len) < 0) {
    free(k);
    return NULL;
  }
  k->hash = fnv1a(name, len);
  k->expire_ms = SR_NO_EXPIRE;
  k->type = type;
  uint32_t i = slot_of(db, name, len, k->hash);
  RT_ASSERT(db->slots[i] == NULL);
  db->slots[i] = k;
  db->len++;
  db->used_bytes += key_cost(k);
  return k;
}

void sr_db_delete(sr_db_t *db, sr_key_t *k) {
  uint32_t i = slot_of(db, k->name.p, k->name.len, k->hash);
  RT_ASSERT(db->slots[i] == k);
  uint64_t cost = key_cost(k);
  RT_ASSERT(db->used_bytes >= cost);
  db->used_bytes -= cost;
  slot_clear(db, i);
  db->len--;
  key_free(k);
}

void sr_db_delete_if_empty(sr_db_t *db, sr_key_t *k) {
  if (k != NULL && k->type != SR_STRING && k->vec.len == 0)
    sr_db_delete(db, k);
}

void sr_db_sweep(sr_db_t *db, int64_t now_ms, uint32_t slots) {
  for (uint32_t n = 0; n < slots && db->len > 0; n++) {
    uint32_t i = db->sweep % db->cap;
    sr_key_t *k = db->slots[i];
    if (k != NULL && expired(k, now_ms)) {
      db->expired++;
      sr_db_delete(db, k); /* a later key may have moved into slot i */
      continue;
    }
    db->sweep = (i + 1) % db->cap;
  }
}

/* ---- Facts --------------------------------------------------------------- */

uint64_t sr_db_count(const sr_db_t *db, int64_t now_ms) {
  uint64_t n = 0;
  for (uint32_t i = 0; i < db->cap; i++)
    if (db->slots[i] != NULL && !expired(db->slots[i], now_ms))
      n++;
  return n;
}

static uint64_t mix(uint64_t h, uint64_t v) {
  h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
  return h * 0xff51afd7ed558ccdull;
}

static uint64_t key_digest(const sr_key_t *k) {
  uint64_t h = mix(fnv1a(k->name.p, k->name.len), (uint64_t)k->type);
  h = mix(h, (uint64_t)k->expire_ms);
  h = mix(h, fnv1a(k->str.p, k->str.len));
  for (uint32_t i = 0; i < k->vec.len; i++) {
    const sr_item_t *it = &k->vec.items[i];
    uint64_t score;
    memcpy(&score, &it->score, sizeof(score));
    h = mix(h, fnv1a(it->a.p, it->a.len));
    h = mix(mix(h, fnv1a(it->b.p, it->b.len)), score);
  }
  return h;
}

/* A sum of per-key digests: independent of the table's layout. Collections
 * are in a canonical order already (invariant (2)). */
uint64_t sr_db_digest(const sr_db_t *db, int64_t now_ms) {
  uint64_t sum = 0;
  for (uint32_t i = 0; i < db->cap; i++)
    if (db->slots[i] != NULL && !expired(db->slots[i], now_ms))
      sum += key_digest(db->slots[i]);
  return sum;
}

bool sr_db_deadline_within(const sr_db_t *db, int64_t from_ms, int64_t to_ms) {
  for (uint32_t i = 0; i < db->cap; i++) {
    const sr_key_t *k = db->slots[i];
    if (k != NULL && k->expire_ms != SR_NO_EXPIRE && k->expire_ms >= from_ms &&
        k->expire_ms <= to_ms)
      return true;
  }
  return false;
}

static bool vec_ordered(const sr_key_t *k, uint32_t i) {
  const sr_item_t *x = &k->vec.items[i - 1], *y = &k->vec.items[i];
  int by_name = sr_bytes_cmp(x->a.p, x->a.len, y->a.p, y->a.len);
  if (k->type == SR_SET || k->type == SR_HASH)
    return by_name < 0;
  if (k->type == SR_ZSET)
    return x->score < y->score || (x->score == y->score && by_name < 0);
  return true;
}

int sr_db_check(const sr_db_t *db, char *why, size_t cap) {
  uint64_t used = 0, len = 0;
  for (uint32_t i = 0; i < db->cap; i++) {
    const sr_key_t *k = db->slots[i];
    if (k == NULL)
      continue;
    len++;
    used += key_cost(k);
    if (k->type != SR_STRING && k->vec.len == 0) {
      snprintf(why, cap, "invariant (1): key '%s' is empty", k->name.p);
      return -1;
    }
    for (uint32_t j = 1; j < k->vec.len; j++) {
      if (!vec_ordered(k, j)) {
        snprintf(why, cap, "invariant (2): key '%s' out of order at %u",
                 k->name.p, j);
        return -1;
      }
    }
  }
  if (used != db->used_bytes || len != db->len) {
    snprintf(why, cap, "invariant (3): used %llu counted %llu",
             (unsigned long long)used, (unsigned long long)db->used_bytes);
    return -1;
  }
  return 0;
}

/* ---- Values -------------------------------------------------------------- */

int sr_str_set(sr_db_t *db, sr_key_t *k, const char *p, size_t n) {
  RT_ASSERT(k->type == SR_STRING);
  sr_bytes_t b;
  if (bytes_dup(&b, p, n) < 0)
    return RT_ENOMEM;
  db->used_bytes = db->used_bytes - k->str.len + n;
  bytes_free(&k->str);
  k->str = b;
  return RT_OK;
}

static int vec_reserve(sr_vec_t *v) {
  if (v->len < v->cap)
    return RT_OK;
  uint32_t cap = v->cap < VEC_CAP_MIN ? VEC_CAP_MIN : v->cap * 2;
  sr_item_t *items = realloc(v->items, cap * sizeof(*items));
  if (items == NULL)
    return RT_ENOMEM;
  v->items = items;
  v->cap = cap;
  return RT_OK;
}

int sr_vec_insert(sr_db_t *db, sr_key_t *k, uint32_t at, const char *a,
                  size_t alen, const char *b, size_t blen, double score) {
  sr_vec_t *v = &k->vec;
  RT_ASSERT(k->type != SR_STRING && at <= v->len);
  sr_item_t it = {.score = score};
  if (vec_reserve(v) < 0 || bytes_dup(&it.a, a, alen) < 0)
    return RT_ENOMEM;
  if (b != NULL && bytes_dup(&it.b, b, blen) < 0) {
    bytes_free(&it.a);
    return RT_ENOMEM;
  }
  memmove(&v->items[at + 1], &v->items[at], (v->len - at) * sizeof(it));
  v->items[at] = it;
  v->len++;
  db->used_bytes += item_cost(&it);
  return RT_OK;
}

void sr_vec_remove(sr_db_t *db, sr_key_t *k, uint32_t at) {
  sr_vec_t *v = &k->vec;
  RT_ASSERT(at < v->len);
  db->used_bytes -= item_cost(&v->items[at]);
  bytes_free(&v->items[at].a);
  bytes_free(&v->items[at].b);
  memmove(&v->items[at], &v->items[at + 1],
          (v->len - at - 1) * sizeof(v->items[0]));
  v->len--;
}

int sr_item_set_b(sr_db_t *db, sr_key_t *k, uint32_t at, const char *b,
                  size_t blen) {
  RT_ASSERT(at < k->vec.len);
  sr_item_t *it = &k->vec.items[at];
  sr_bytes_t copy;
  if (bytes_dup(&copy, b, blen) < 0)
    return RT_ENOMEM;
  db->used_bytes = db->used_bytes - it->b.len + blen;
  bytes_free(&it->b);
  it->b = copy;
  return RT_OK;
}

int64_t sr_vec_find_sorted(const sr_vec_t *v, const char *a, size_t alen,
                           uint32_t *at) {
  uint32_t lo = 0, hi = v->len;
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    const sr_bytes_t *x = &v->items[mid].a;
    int r = sr_bytes_cmp(x->p, x->len, a, alen);
    if (r == 0)
      return mid;
    if (r < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (at != NULL)
    *at = lo;
  return -1;
}

int64_t sr_zset_find(const sr_vec_t *v, const char *a, size_t alen) {
  for (uint32_t i = 0; i < v->len; i++)
    if (sr_bytes_cmp(v->items[i].a.p, v->items[i].a.len, a, alen) == 0)
      return i;
  return -1;
}

uint32_t sr_zset_position(const sr_vec_t *v, double score, const char *a,
                          size_t alen) {
  uint32_t lo = 0, hi = v->len;
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    const sr_item_t *x = &v->items[mid];
    bool before =
        x->score < score ||
        (x->score == score && sr_bytes_cmp(x->a.p, x->a.len, a, alen) < 0);
    if (before)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}
