/* sim_redis_cmd.c: the commands, as Redis 7.0 runs them.
 *
 * Each follows its Redis counterpart's order of checks (t_string.c,
 * t_list.c, t_set.c, t_hash.c, t_zset.c, expire.c, db.c), since that order
 * decides which error a bad call gets: for example LRANGE parses its
 * indexes before it looks at the key, LINDEX after.
 */
#include "sim_redis_int.h"

#include "rt_assert.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Redis 7.0's defaults: a sorted set past these is a skiplist. */
#define ZSET_LISTPACK_ENTRIES 128u /* zset-max-listpack-entries */
#define ZSET_LISTPACK_VALUE 64u    /* zset-max-listpack-value */

static const char ERR_INVALID_FLOAT[] = "ERR value is not a valid float";
static const char ERR_NOT_POSITIVE[] =
    "ERR value is out of range, must be positive";

/* ---- Helpers ------------------------------------------------------------- */

static sr_db_t *db_of(sr_ctx_t *c) { return &c->m->db; }

static void reply_err(sr_ctx_t *c, const char *s) {
  sr_reply_error(c->out, s, strlen(s));
}

static void reply_not_modelled(sr_ctx_t *c, const char *what) {
  sr_reply_errorf(c->out, "ERR sim_redis: %s is not modelled", what);
}

/* Options compare as C strings, as Redis's strcasecmp does (an argument
 * with a NUL inside matches up to the NUL). */
static bool opt_is(const char *arg, const char *name) {
  return strcasecmp(arg, name) == 0;
}

bool sr_parse_ll(const char *p, size_t n, long long *out) {
  if (n == 0 || n >= 21)
    return false;
  if (n == 1 && p[0] == '0') {
    *out = 0;
    return true;
  }
  bool negative = p[0] == '-';
  size_t i = negative ? 1 : 0;
  if (i == n || p[i] < '1' || p[i] > '9')
    return false;
  unsigned long long v = 0;
  for (; i < n; i++) {
    if (p[i] < '0' || p[i] > '9')
      return false;
    unsigned digit = (unsigned)(p[i] - '0');
    if (v > (ULLONG_MAX - digit) / 10)
      return false;
    v = v * 10 + digit;
  }
  if (negative && v > (unsigned long long)LLONG_MAX + 1)
    return false;
  if (!negative && v > (unsigned long long)LLONG_MAX)
    return false;
  if (negative)
    *out = v == (unsigned long long)LLONG_MAX + 1 ? LLONG_MIN : -(long long)v;
  else
    *out = (long long)v;
  return true;
}

/* argv[i] as a long long, or false after "ERR value is not an integer". */
static bool arg_ll(sr_ctx_t *c, int i, long long *out) {
  if (sr_parse_ll(c->argv[i], c->lens[i], out))
    return true;
  reply_err(c, SR_ERR_NOT_INT);
  return false;
}

/* Redis's getDoubleFromObject: strtod over the whole argument, no leading
 * space, no NaN, no overflow. */
static bool parse_score(const char *p, size_t n, double *out) {
  if (n == 0 || isspace((unsigned char)p[0]))
    return false;
  char *end = NULL;
  errno = 0;
  double v = strtod(p, &end);
  if ((size_t)(end - p) != n || isnan(v))
    return false;
  if (errno == ERANGE && (v == HUGE_VAL || v == -HUGE_VAL || v == 0))
    return false;
  *out = v;
  return true;
}

/* The key argv[i] holding `type`, or NULL when there is none; false after
 * a WRONGTYPE reply. */
static bool lookup(sr_ctx_t *c, int i, sr_type_t type, sr_key_t **out) {
  sr_key_t *k = sr_db_find(db_of(c), c->argv[i], c->lens[i], c->now_ms);
  if (k != NULL && k->type != type) {
    reply_err(c, SR_ERR_WRONGTYPE);
    return false;
  }
  *out = k;
  return true;
}

/* As lookup, adding an empty key when there is none (the caller fills it:
 * invariant (1)); false after a WRONGTYPE or OOM reply. */
static bool lookup_or_add(sr_ctx_t *c, int i, sr_type_t type, sr_key_t **out) {
  if (!lookup(c, i, type, out))
    return false;
  if (*out == NULL)
    *out = sr_db_add(db_of(c), c->argv[i], c->lens[i], type);
  if (*out == NULL) {
    reply_err(c, SR_ERR_OOM);
    return false;
  }
  return true;
}

/* A collection could not grow (out of memory). */
static void reply_oom_after(sr_ctx_t *c, sr_key_t *k) {
  sr_db_delete_if_empty(db_of(c), k);
  reply_err(c, SR_ERR_OOM);
}

/* Redis's rank range: negative indexes count from the end; false when the
 * range is empty. */
static bool rank_range(long long len, long long *start, long long *end) {
  if (*start < 0)
    *start += len;
  if (*end < 0)
    *end += len;
  if (*start < 0)
    *start = 0;
  if (*start > *end || *start >= len)
    return false;
  if (*end >= len)
    *end = len - 1;
  return true;
}

/* ---- Keys and strings ---------------------------------------------------- */

void sr_cmd_get(sr_ctx_t *c) {
  sr_key_t *k;
  if (!lookup(c, 1, SR_STRING, &k))
    return;
  if (k == NULL)
    sr_reply_nil(c->out);
  else
    sr_reply_bulk(c->out, k->str.p, k->str.len);
}

typedef struct set_opts {
  bool nx, xx, get, keepttl, ex, px;
  int expire_arg; /* 0: none */
} set_opts_t;

/* Redis's parseExtendedStringArgumentsOrReply, for SET. */
static bool set_parse(sr_ctx_t *c, set_opts_t *o) {
  for (int j = 3; j < c->argc; j++) {
    const char *opt = c->argv[j];
    bool next = j + 1 < c->argc;
    if (opt_is(opt, "nx") && !o->xx) {
      o->nx = true;
    } else if (opt_is(opt, "xx") && !o->nx) {
      o->xx = true;
    } else if (opt_is(opt, "get")) {
      o->get = true;
    } else if (opt_is(opt, "keepttl") && !o->ex && !o->px) {
      o->keepttl = true;
    } else if (opt_is(opt, "ex") && !o->keepttl && !o->px && next) {
      o->ex = true;
      o->expire_arg = ++j;
    } else if (opt_is(opt, "px") && !o->keepttl && !o->ex && next) {
      o->px = true;
      o->expire_arg = ++j;
    } else if (opt_is(opt, "exat") || opt_is(opt, "pxat")) {
      reply_not_modelled(c, "SET EXAT/PXAT");
      return false;
    } else {
      reply_err(c, SR_ERR_SYNTAX);
      return false;
    }
  }
  return true;
}

/* The deadline of SET's EX or PX (getExpireMillisecondsOrReply). */
static bool set_deadline(sr_ctx_t *c, const set_opts_t *o, int64_t *out) {
  long long v;
  if (!arg_ll(c, o->expire_arg, &v))
    return false;
  if (v <= 0 || (o->ex && v > LLONG_MAX / 1000) ||
      (o->ex ? v * 1000 : v) > LLONG_MAX - c->now_ms) {
    reply_err(c, "ERR invalid expire time in 'set' command");
    return false;
  }
  *out = c->now_ms + (o->ex ? v * 1000 : v);
  return true;
}

/* Replace whatever `name` holds by a string (keeping its deadline when
 * keepttl); false when out of memory. */
static bool set_store(sr_ctx_t *c, sr_key_t *found, bool keepttl,
                      int64_t deadline) {
  sr_db_t *db = db_of(c);
  int64_t kept = found != NULL ? found->expire_ms : SR_NO_EXPIRE;
  if (found != NULL && found->type != SR_STRING) {
    sr_db_delete(db, found);
    found = NULL;
  }
  bool added = found == NULL;
  if (added)
    found = sr_db_add(db, c->argv[1], c->lens[1], SR_STRING);
  if (found == NULL)
    return false;
  if (sr_str_set(db, found, c->argv[2], c->lens[2]) < 0) {
    if (added)
      sr_db_delete(db, found);
    return false;
  }
  found->expire_ms = keepttl ? kept : deadline;
  return true;
}

void sr_cmd_set(sr_ctx_t *c) {
  set_opts_t o = {0};
  int64_t deadline = SR_NO_EXPIRE;
  if (!set_parse(c, &o))
    return;
  if (o.expire_arg != 0 && !set_deadline(c, &o, &deadline))
    return;
  size_t before_get = c->out->len;
  if (o.get) {
    sr_key_t *old;
    if (!lookup(c, 1, SR_STRING, &old))
      return;
    if (old == NULL)
      sr_reply_nil(c->out);
    else
      sr_reply_bulk(c->out, old->str.p, old->str.len);
  }
  sr_key_t *found = sr_db_find(db_of(c), c->argv[1], c->lens[1], c->now_ms);
  if ((o.nx && found != NULL) || (o.xx && found == NULL)) {
    if (!o.get)
      sr_reply_nil(c->out);
    return;
  }
  if (!set_store(c, found, o.keepttl, deadline)) {
    c->out->len = before_get; /* one reply only: the error */
    reply_err(c, SR_ERR_OOM);
    return;
  }
  if (!o.get)
    sr_reply_status(c->out, "OK");
}

void sr_cmd_exists(sr_ctx_t *c) {
  long long n = 0;
  for (int i = 1; i < c->argc; i++)
    if (sr_db_find(db_of(c), c->argv[i], c->lens[i], c->now_ms) != NULL)
      n++;
  sr_reply_int(c->out, n);
}

void sr_cmd_del(sr_ctx_t *c) {
  long long n = 0;
  for (int i = 1; i < c->argc; i++) {
    sr_key_t *k = sr_db_find(db_of(c), c->argv[i], c->lens[i], c->now_ms);
    if (k != NULL) {
      sr_db_delete(db_of(c), k);
      n++;
    }
  }
  sr_reply_int(c->out, n);
}

void sr_cmd_incr(sr_ctx_t *c) {
  sr_key_t *k;
  if (!lookup(c, 1, SR_STRING, &k))
    return;
  long long v = 0;
  if (k != NULL && !sr_parse_ll(k->str.p, k->str.len, &v)) {
    reply_err(c, SR_ERR_NOT_INT);
    return;
  }
  if (v == LLONG_MAX) {
    reply_err(c, "ERR increment or decrement would overflow");
    return;
  }
  v++;
  char text[24];
  int n = snprintf(text, sizeof(text), "%lld", v);
  bool added = k == NULL;
  if (added)
    k = sr_db_add(db_of(c), c->argv[1], c->lens[1], SR_STRING);
  if (k == NULL || sr_str_set(db_of(c), k, text, (size_t)n) < 0) {
    if (added && k != NULL)
      sr_db_delete(db_of(c), k);
    reply_err(c, SR_ERR_OOM);
    return;
  }
  sr_reply_int(c->out, v); /* the deadline stays, as in Redis */
}

/* ---- Expiry -------------------------------------------------------------- */

typedef struct expire_opts {
  bool nx, xx, gt, lt;
} expire_opts_t;

static bool pexpire_parse(sr_ctx_t *c, expire_opts_t *o) {
  for (int j = 3; j < c->argc; j++) {
    const char *opt = c->argv[j];
    if (opt_is(opt, "nx"))
      o->nx = true;
    else if (opt_is(opt, "xx"))
      o->xx = true;
    else if (opt_is(opt, "gt"))
      o->gt = true;
    else if (opt_is(opt, "lt"))
      o->lt = true;
    else {
      sr_reply_errorf(c->out, "ERR Unsupported option %s", opt);
      return false;
    }
  }
  if (o->nx && (o->xx || o->gt || o->lt)) {
    reply_err(c, "ERR NX and XX, GT or LT options at the same time are not "
                 "compatible");
    return false;
  }
  if (o->gt && o->lt) {
    reply_err(c, "ERR GT and LT options at the same time are not compatible");
    return false;
  }
  return true;
}

/* Whether NX/XX/GT/LT let `when` replace the key's deadline (no deadline
 * counts as an infinite one). */
static bool pexpire_allowed(const expire_opts_t *o, int64_t cur, int64_t when) {
  bool has = cur != SR_NO_EXPIRE;
  if ((o->nx && has) || (o->xx && !has))
    return false;
  if (o->gt && (!has || when <= cur))
    return false;
  if (o->lt && has && when >= cur)
    return false;
  return true;
}

void sr_cmd_pexpire(sr_ctx_t *c) {
  expire_opts_t o = {0};
  long long when;
  if (!pexpire_parse(c, &o) || !arg_ll(c, 2, &when))
    return;
  if (when > LLONG_MAX - c->now_ms) {
    reply_err(c, "ERR invalid expire time in 'pexpire' command");
    return;
  }
  when += c->now_ms;
  sr_key_t *k = sr_db_find(db_of(c), c->argv[1], c->lens[1], c->now_ms);
  if (k == NULL || !pexpire_allowed(&o, k->expire_ms, when)) {
    sr_reply_int(c->out, 0);
    return;
  }
  /* Redis's checkAlreadyExpired is when <= now, while a key lives until
   * now > when: PEXPIRE k 0 deletes at once. */
  if (when <= c->now_ms)
    sr_db_delete(db_of(c), k);
  else
    k->expire_ms = when;
  sr_reply_int(c->out, 1);
}

void sr_cmd_pttl(sr_ctx_t *c) {
  sr_key_t *k = sr_db_find(db_of(c), c->argv[1], c->lens[1], c->now_ms);
  if (k == NULL)
    sr_reply_int(c->out, -2);
  else if (k->expire_ms == SR_NO_EXPIRE)
    sr_reply_int(c->out, -1);
  else
    sr_reply_int(c->out, k->expire_ms - c->now_ms); /* >= 0: it exists */
}

/* ---- Sets ---------------------------------------------------------------- */

void sr_cmd_sadd(sr_ctx_t *c) {
  sr_key_t *k;
  if (!lookup_or_add(c, 1, SR_SET, &k))
    return;
  long long added = 0;
  for (int i = 2; i < c->argc; i++) {
    uint32_t at;
    if (sr_vec_find_sorted(&k->vec, c->argv[i], c->lens[i], &at) >= 0)
      continue;
    if (sr_vec_insert(db_of(c), k, at, c->argv[i], c->lens[i], NULL, 0, 0) <
        0) {
      reply_oom_after(c, k);
      return;
    }
    added++;
  }
  sr_reply_int(c->out, added);
}

void sr_cmd_srem(sr_ctx_t *c) {
  sr_key_t *k;
  if (!lookup(c, 1, SR_SET, &k))
    return;
  long long removed = 0;
  for (int i = 2; k != NULL && i < c->argc; i++) {
    int64_t at = sr_vec_find_sorted(&k->vec, c->argv[i], c->lens[i], NULL);
    if (at >= 0) {
      sr_vec_remove(db_of(c), k, (uint32_t)at);
      removed++;
    }
  }
  sr_db_delete_if_empty(db_of(c), k);
  sr_reply_int(c->out, removed);
}

/* In byte order: real Redis answers in its hash table's order, which is
 * unspecified (sim_redis.h, guarantee (1)). */
void sr_cmd_smembers(sr_ctx_t *c) {
  sr_key_t *k;
  if (!lookup(c, 1, SR_SET, &k))
    return;
  uint32_t n = k != NULL ? k->vec.len : 0;
  sr_reply_array(c->out, n);
  for (uint32_t i = 0; i < n; i++)
    sr_reply_bulk(c->out, k->vec.items[i].a.p, k->vec.items[i].a.len);
}

void sr_cmd_sismember(sr_ctx_t *c) {
  sr_key_t *k;
  if (!lookup(c, 1, SR_SET, &k))
    return;
  bool in = k != NULL &&
            sr_vec_find_sorted(&k->vec, c->argv[2], c->lens[2], NULL) >= 0;
  sr_reply_int(c->out, in ? 1 : 0);
}

void sr_cmd_scard(sr_ctx_t *c) {
  sr_key_t *k;
  if (lookup(c, 1, SR_SET, &k))
    sr_reply_int(c->out, k != NULL ? k->vec.len : 0);
}

/* ---- Hashes -------------------------------------------------------------- */

void sr_cmd_hset(sr_ctx_t *c) {
  if (c->argc % 2 == 1) {
    reply_err(c, "ERR wrong number of arguments for 'hset' command");
    return;
  }
  sr_key_t *k;
  if (!lookup_or_add(c, 1, SR_HASH, &k))
    return;
  long long created = 0;
  for (int i = 2; i < c->argc; i += 2) {
    uint32_t at;
    int64_t found = sr_vec_find_sorted(&k->vec, c->argv[i], c->lens[i], &at);
    int err = found >= 0
                  ? sr_item_set_b(db_of(c), k, (uint32_t)found, c->argv[i + 1],
                                  c->lens[i + 1])
                  : sr_vec_insert(db_of(c), k, at, c->argv[i], c->lens[i],
                                  c->argv[i + 1], c->lens[i + 1], 0);
    if (err < 0) {
      reply_oom_after(c, k);
      return;
    }
    created += found < 0;
  }
  sr_reply_int(c->out, created);
}

static void reply_field(sr_ctx_t *c, const sr_key_t *k, int i) {
  int64_t at = k == NULL
                   ? -1
                   : sr_vec_find_sorted(&k->vec, c->argv[i], c->lens[i], NULL);
  if (at < 0)
    sr_reply_nil(c->out);
  else
    sr_reply_bulk(c->out, k->vec.items[at].b.p, k->vec.items[at].b.len);
}

void sr_cmd_hget(sr_ctx_t *c) {
  sr_key_t *k;
  if (lookup(c, 1, SR_HASH, &k))
    reply_field(c, k, 2);
}

void sr_cmd_hmget(sr_ctx_t *c) {
  sr_key_t *k;
  if (!lookup(c, 1, SR_HASH, &k))
    return;
  sr_reply_array(c->out, c->argc - 2);
  for (int i = 2; i < c->argc; i++)
    reply_field(c, k, i);
}

/* ---- Sorted sets --------------------------------------------------------- */

typedef struct zadd_opts {
  bool nx, xx, gt, lt, ch, incr;
  int first;                /* argv index of the first score */
  long long added, updated; /* results */
} zadd_opts_t;

static bool zadd_flag(zadd_opts_t *o, const char *opt) {
  bool *flag = opt_is(opt, "nx")     ? &o->nx
               : opt_is(opt, "xx")   ? &o->xx
               : opt_is(opt, "gt")   ? &o->gt
               : opt_is(opt, "lt")   ? &o->lt
               : opt_is(opt, "ch")   ? &o->ch
               : opt_is(opt, "incr") ? &o->incr
                                     : NULL;
  if (flag != NULL)
    *flag = true;
  return flag != NULL;
}

/* Options, pairs and every score, before anything changes: a ZADD runs
 * whole or not at all. */
static bool zadd_parse(sr_ctx_t *c, zadd_opts_t *o) {
  int j = 2;
  while (j < c->argc && zadd_flag(o, c->argv[j]))
    j++;
  o->first = j;
  int elements = c->argc - j;
  const char *err = NULL;
  if (elements % 2 != 0 || elements == 0)
    err = SR_ERR_SYNTAX;
  else if (o->nx && o->xx)
    err = "ERR XX and NX options at the same time are not compatible";
  else if ((o->gt && o->nx) || (o->lt && o->nx) || (o->gt && o->lt))
    err = "ERR GT, LT, and/or NX options at the same time are not "
          "compatible";
  else if (o->incr && elements > 2)
    err = "ERR INCR option supports a single increment-element pair";
  for (int i = j; err == NULL && i < c->argc; i += 2) {
    double score;
    if (!parse_score(c->argv[i], c->lens[i], &score))
      err = ERR_INVALID_FLOAT;
  }
  if (err != NULL)
    reply_err(c, err);
  else if (o->incr)
    reply_not_modelled(c, "ZADD INCR");
  return err == NULL && !o->incr;
}

/* Insert or move (score, member). A listpack stores a score as text, and
 * writes 0 for -0 (what ZSCORE then shows), a skiplist keeps the double:
 * the model keeps -0 only where Redis would hold a skiplist. */
static int zset_store(sr_db_t *db, sr_key_t *k, double score, const char *m,
                      size_t len) {
  if (!k->zset_skiplist && score == 0)
    score = 0.0;
  uint32_t at = sr_zset_position(&k->vec, score, m, len);
  return sr_vec_insert(db, k, at, m, len, NULL, 0, score);
}

/* Redis's zsetAdd, without INCR. */
static int zadd_one(sr_db_t *db, sr_key_t *k, zadd_opts_t *o, double score,
                    const char *m, size_t len) {
  int64_t at = sr_zset_find(&k->vec, m, len);
  if (at >= 0) {
    double cur = k->vec.items[at].score;
    if (o->nx || (o->gt && score <= cur) || (o->lt && score >= cur) ||
        score == cur)
      return RT_OK;
    sr_vec_remove(db, k, (uint32_t)at);
    o->updated++;
    return zset_store(db, k, score, m, len);
  }
  if (o->xx)
    return RT_OK;
  if (k->vec.len + 1 > ZSET_LISTPACK_ENTRIES || len > ZSET_LISTPACK_VALUE)
    k->zset_skiplist = true; /* zsetConvert, before the insert */
  o->added++;
  return zset_store(db, k, score, m, len);
}

static sr_key_t *zadd_create(sr_ctx_t *c, const zadd_opts_t *o) {
  size_t longest = 0;
  for (int i = o->first + 1; i < c->argc; i += 2)
    longest = c->lens[i] > longest ? c->lens[i] : longest;
  sr_key_t *k = sr_db_add(db_of(c), c->argv[1], c->lens[1], SR_ZSET);
  if (k != NULL) /* zsetTypeCreate(elements, longest member) */
    k->zset_skiplist =
        (size_t)(c->argc - o->first) / 2 > ZSET_LISTPACK_ENTRIES ||
        longest > ZSET_LISTPACK_VALUE;
  return k;
}

void sr_cmd_zadd(sr_ctx_t *c) {
  zadd_opts_t o = {0};
  sr_key_t *k;
  if (!zadd_parse(c, &o) || !lookup(c, 1, SR_ZSET, &k))
    return;
  if (k == NULL && o.xx) {
    sr_reply_int(c->out, 0);
    return;
  }
  if (k == NULL && (k = zadd_create(c, &o)) == NULL) {
    reply_err(c, SR_ERR_OOM);
    return;
  }
  for (int i = o.first; i < c->argc; i += 2) {
    double score;
    RT_ASSERT(parse_score(c->argv[i], c->lens[i], &score));
    if (zadd_one(db_of(c), k, &o, score, c->argv[i + 1], c->lens[i + 1]) < 0) {
      reply_oom_after(c, k);
      return;
    }
  }
  sr_reply_int(c->out, o.ch ? o.added + o.updated : o.added);
}

void sr_cmd_zrem(sr_ctx_t *c) {
  sr_key_t *k;
  if (!lookup(c, 1, SR_ZSET, &k))
    return;
  long long removed = 0;
  for (int i = 2; k != NULL && i < c->argc; i++) {
    int64_t at = sr_zset_find(&k->vec, c->argv[i], c->lens[i]);
    if (at >= 0) {
      sr_vec_remove(db_of(c), k, (uint32_t)at);
      removed++;
    }
  }
  sr_db_delete_if_empty(db_of(c), k);
  sr_reply_int(c->out, removed);
}

static bool zrange_options(sr_ctx_t *c, bool *withscores) {
  for (int j = 4; j < c->argc; j++) {
    const char *opt = c->argv[j];
    if (opt_is(opt, "withscores")) {
      *withscores = true;
    } else if ((opt_is(opt, "limit") && c->argc - j - 1 >= 2) ||
               opt_is(opt, "rev") || opt_is(opt, "bylex") ||
               opt_is(opt, "byscore")) {
      reply_not_modelled(c, "ZRANGE BYSCORE, BYLEX, REV or LIMIT");
      return false;
    } else {
      reply_err(c, SR_ERR_SYNTAX);
      return false;
    }
  }
  return true;
}

void sr_cmd_zrange(sr_ctx_t *c) {
  bool withscores = false;
  long long start, end;
  if (!zrange_options(c, &withscores) || !arg_ll(c, 2, &start) ||
      !arg_ll(c, 3, &end))
    return;
  sr_key_t *k = sr_db_find(db_of(c), c->argv[1], c->lens[1], c->now_ms);
  if (k == NULL) {
    sr_reply_array(c->out, 0);
    return;
  }
  if (k->type != SR_ZSET) {
    reply_err(c, SR_ERR_WRONGTYPE);
    return;
  }
  if (!rank_range(k->vec.len, &start, &end)) {
    sr_reply_array(c->out, 0);
    return;
  }
  sr_reply_array(c->out, (end - start + 1) * (withscores ? 2 : 1));
  for (long long i = start; i <= end; i++) {
    const sr_item_t *it = &k->vec.items[i];
    sr_reply_bulk(c->out, it->a.p, it->a.len);
    if (withscores)
      sr_reply_score(c->out, it->score);
  }
}

void sr_cmd_zscore(sr_ctx_t *c) {
  sr_key_t *k;
  if (!lookup(c, 1, SR_ZSET, &k))
    return;
  int64_t at = k == NULL ? -1 : sr_zset_find(&k->vec, c->argv[2], c->lens[2]);
  if (at < 0)
    sr_reply_nil(c->out);
  else
    sr_reply_score(c->out, k->vec.items[at].score);
}

void sr_cmd_zcard(sr_ctx_t *c) {
  sr_key_t *k;
  if (lookup(c, 1, SR_ZSET, &k))
    sr_reply_int(c->out, k != NULL ? k->vec.len : 0);
}

/* ---- Lists --------------------------------------------------------------- */

void sr_cmd_rpush(sr_ctx_t *c) {
  sr_key_t *k;
  if (!lookup_or_add(c, 1, SR_LIST, &k))
    return;
  for (int i = 2; i < c->argc; i++) {
    if (sr_vec_insert(db_of(c), k, k->vec.len, c->argv[i], c->lens[i], NULL, 0,
                      0) < 0) {
      reply_oom_after(c, k);
      return;
    }
  }
  sr_reply_int(c->out, k->vec.len);
}

static void pop_front(sr_ctx_t *c, sr_key_t *k) {
  sr_reply_bulk(c->out, k->vec.items[0].a.p, k->vec.items[0].a.len);
  sr_vec_remove(db_of(c), k, 0);
}

void sr_cmd_lpop(sr_ctx_t *c) {
  if (c->argc > 3) {
    reply_err(c, "ERR wrong number of arguments for 'lpop' command");
    return;
  }
  bool has_count = c->argc == 3;
  long long count = 0;
  if (has_count &&
      (!sr_parse_ll(c->argv[2], c->lens[2], &count) || count < 0)) {
    reply_err(c, ERR_NOT_POSITIVE);
    return;
  }
  sr_key_t *k;
  if (!lookup(c, 1, SR_LIST, &k))
    return;
  if (k == NULL) {
    has_count ? sr_reply_nil_array(c->out) : sr_reply_nil(c->out);
    return;
  }
  if (!has_count) {
    pop_front(c, k);
  } else {
    long long n = count < k->vec.len ? count : k->vec.len;
    sr_reply_array(c->out, n);
    for (long long i = 0; i < n; i++)
      pop_front(c, k);
  }
  sr_db_delete_if_empty(db_of(c), k);
}

void sr_cmd_lrange(sr_ctx_t *c) {
  long long start, end;
  if (!arg_ll(c, 2, &start) || !arg_ll(c, 3, &end))
    return;
  sr_key_t *k;
  if (!lookup(c, 1, SR_LIST, &k))
    return;
  if (k == NULL || !rank_range(k->vec.len, &start, &end)) {
    sr_reply_array(c->out, 0);
    return;
  }
  sr_reply_array(c->out, end - start + 1);
  for (long long i = start; i <= end; i++)
    sr_reply_bulk(c->out, k->vec.items[i].a.p, k->vec.items[i].a.len);
}

void sr_cmd_lindex(sr_ctx_t *c) {
  sr_key_t *k;
  if (!lookup(c, 1, SR_LIST, &k))
    return;
  if (k == NULL) {
    sr_reply_nil(c->out);
    return;
  }
  long long i;
  if (!arg_ll(c, 2, &i))
    return;
  if (i < 0)
    i += k->vec.len;
  if (i < 0 || i >= k->vec.len)
    sr_reply_nil(c->out);
  else
    sr_reply_bulk(c->out, k->vec.items[i].a.p, k->vec.items[i].a.len);
}

void sr_cmd_ltrim(sr_ctx_t *c) {
  long long start, end;
  if (!arg_ll(c, 2, &start) || !arg_ll(c, 3, &end))
    return;
  sr_key_t *k;
  if (!lookup(c, 1, SR_LIST, &k))
    return;
  if (k != NULL) {
    long long len = k->vec.len;
    bool keep = rank_range(len, &start, &end);
    long long left = keep ? start : len, right = keep ? len - end - 1 : 0;
    for (long long i = 0; i < right; i++)
      sr_vec_remove(db_of(c), k, k->vec.len - 1);
    for (long long i = 0; i < left; i++)
      sr_vec_remove(db_of(c), k, 0);
    sr_db_delete_if_empty(db_of(c), k);
  }
  sr_reply_status(c->out, "OK");
}

/* ---- Server -------------------------------------------------------------- */

void sr_cmd_ping(sr_ctx_t *c) {
  if (c->argc > 2)
    reply_err(c, "ERR wrong number of arguments for 'ping' command");
  else if (c->argc == 1)
    sr_reply_status(c->out, "PONG");
  else
    sr_reply_bulk(c->out, c->argv[1], c->lens[1]);
}

void sr_cmd_flushall(sr_ctx_t *c) {
  if (c->argc > 2 || (c->argc == 2 && !opt_is(c->argv[1], "sync") &&
                      !opt_is(c->argv[1], "async"))) {
    reply_err(c, SR_ERR_SYNTAX);
    return;
  }
  sr_db_flush(db_of(c));
  sr_reply_status(c->out, "OK");
}
