/* sim_redis_int.h: the Redis model's parts, shared by sim_redis*.c only.
 *
 *   sim_redis.c         the model, the command table, dispatch (arity,
 *                       AUTH, OOM), and the RESP reply encoder
 *   sim_redis_db.c      the key table, values, expiry, memory accounting
 *   sim_redis_cmd.c     the commands
 *   sim_redis_lua.c     EVAL: the interpreter, redis.call, conversions
 *   sim_redis_server.c  the actors that serve simulated connections
 *
 * Invariants of the data (checked by sr_db_check in the tests):
 *  (1) A key's value is never empty: a list, set, hash or sorted set that
 *      loses its last element is deleted, as Redis does.
 *  (2) A set's members and a hash's fields are sorted by memcmp order and
 *      unique; a sorted set's elements are sorted by (score, member), as
 *      ZRANGE returns them, and members are unique.
 *  (3) db.used_bytes is the sum of sr_key_cost over the keys.
 */
#ifndef SIM_REDIS_INT_H
#define SIM_REDIS_INT_H

#include "sim_redis.h"

#include <stdarg.h>

typedef struct lua_State lua_State;

#define SR_NO_EXPIRE INT64_MIN /* a key with no deadline */
#define SR_KEY_OVERHEAD 64u    /* bytes counted per key, beside its bytes */
#define SR_ITEM_OVERHEAD 16u   /* and per element of a collection */

/* Bytes, NUL-terminated (p[len] == 0), owned. */
typedef struct sr_bytes {
  char *p;
  size_t len;
} sr_bytes_t;

/* An element of a collection: a list's or set's value (a), a hash's field
 * (a) and value (b), a sorted set's member (a) and score. */
typedef struct sr_item {
  sr_bytes_t a, b;
  double score;
} sr_item_t;

typedef struct sr_vec {
  sr_item_t *items;
  uint32_t len, cap;
} sr_vec_t;

typedef enum sr_type {
  SR_STRING = 1,
  SR_LIST,
  SR_SET,
  SR_HASH,
  SR_ZSET,
} sr_type_t;

typedef struct sr_key {
  sr_bytes_t name;
  uint64_t hash;
  int64_t expire_ms; /* the last ms the key exists, or SR_NO_EXPIRE */
  sr_type_t type;
  sr_bytes_t str; /* SR_STRING */
  sr_vec_t vec;   /* the others */
  /* SR_ZSET: Redis 7.0 would hold it as a skiplist, not a listpack
   * (sim_redis_cmd.c, zset_store): it then keeps a score of -0 as -0. */
  bool zset_skiplist;
} sr_key_t;

/* Open addressing, linear probing, backward-shift deletion; at most half
 * full. Iterated only to sweep, digest or free: never in a reply. */
typedef struct sr_db {
  sr_key_t **slots;
  uint32_t cap, len;
  uint32_t sweep; /* the next slot the sweep looks at */
  uint64_t used_bytes;
  uint64_t expired;
} sr_db_t;

typedef struct sr_lua sr_lua_t; /* sim_redis_lua.c */

/* One command being run. */
typedef struct sr_ctx {
  sim_redis_t *m;
  int argc;
  const char *const *argv;
  const size_t *lens;
  int64_t now_ms;
  sim_redis_buf_t *out;
  bool in_script;
  bool oom; /* memory was over the limit before the top-level command */
} sr_ctx_t;

typedef void sr_cmd_fn(sr_ctx_t *c);

enum {
  SR_CMD_WRITE = 1u << 0,    /* may grow the data: refused when OOM */
  SR_CMD_NOSCRIPT = 1u << 1, /* not from scripts */
  SR_CMD_NOAUTH = 1u << 2,   /* allowed before AUTH */
};

typedef struct sr_cmd {
  const char *name; /* lower case, as Redis names it in errors */
  int arity;        /* argc exactly, or at least -arity when negative */
  uint32_t flags;
  sr_cmd_fn *fn;
} sr_cmd_t;

struct sim_redis {
  sim_redis_config_t cfg;
  sr_db_t db;
  sr_lua_t *lua;
  sim_redis_buf_t script_out; /* replies of redis.call, parsed back */
  sim_redis_stats_t stats;
  struct sr_server *server;  /* sim_redis_server.c; NULL when not serving */
  sim_world_t *served_world; /* the last sim_redis_listen's, for restarts */
  uint16_t served_port;
  sim_redis_observer_fn observer; /* sim_redis_set_observer */
  void *observer_ctx;
};

/* ---- sim_redis.c --------------------------------------------------------- */

const sr_cmd_t *sr_cmd_find(const char *name, size_t len);
bool sr_cmd_arity_ok(const sr_cmd_t *cmd, int argc);
/* Run a command already found and checked (arity, auth, OOM). */
void sr_cmd_run(sr_ctx_t *c, const sr_cmd_t *cmd);

void sr_buf_append(sim_redis_buf_t *b, const void *p, size_t n);
void sr_reply_status(sim_redis_buf_t *b, const char *s);
/* "-" s "\r\n"; s starts with its code (ERR, WRONGTYPE, ...); CR and LF
 * in s become spaces, as Redis makes them. */
void sr_reply_error(sim_redis_buf_t *b, const char *s, size_t n);
/* The same, of head (a C string) then n bytes of s. */
void sr_reply_error2(sim_redis_buf_t *b, const char *head, const char *s,
                     size_t n);
void sr_reply_errorf(sim_redis_buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void sr_reply_int(sim_redis_buf_t *b, long long v);
void sr_reply_bulk(sim_redis_buf_t *b, const char *p, size_t n);
void sr_reply_nil(sim_redis_buf_t *b);       /* $-1 */
void sr_reply_nil_array(sim_redis_buf_t *b); /* *-1 */
void sr_reply_array(sim_redis_buf_t *b, long long n);
/* A sorted set's score, as Redis 7.0 writes one (d2string: integers
 * printed as such, else %.17g; inf, -inf). */
void sr_reply_score(sim_redis_buf_t *b, double score);

extern const char SR_ERR_WRONGTYPE[];
extern const char SR_ERR_NOT_INT[];
extern const char SR_ERR_SYNTAX[];
extern const char SR_ERR_OOM[];

/* ---- sim_redis_db.c ------------------------------------------------------ */

int sr_db_init(sr_db_t *db);
void sr_db_deinit(sr_db_t *db);
void sr_db_flush(sr_db_t *db);
/* The live key, or NULL (an expired one is dropped on the way). */
sr_key_t *sr_db_find(sr_db_t *db, const char *name, size_t len, int64_t now_ms);
/* The live key, or NULL, changing nothing (a checker's read). */
const sr_key_t *sr_db_peek(const sr_db_t *db, const char *name, size_t len,
                           int64_t now_ms);
/* A new empty key of `type` (none may exist by that name); NULL when out
 * of memory or SIM_REDIS_KEYS_MAX keys exist. */
sr_key_t *sr_db_add(sr_db_t *db, const char *name, size_t len, sr_type_t type);
void sr_db_delete(sr_db_t *db, sr_key_t *k);
/* Drop the key if its collection is empty (invariant (1)). */
void sr_db_delete_if_empty(sr_db_t *db, sr_key_t *k);
void sr_db_sweep(sr_db_t *db, int64_t now_ms, uint32_t slots);
uint64_t sr_db_count(const sr_db_t *db, int64_t now_ms);
uint64_t sr_db_digest(const sr_db_t *db, int64_t now_ms);
bool sr_db_deadline_within(const sr_db_t *db, int64_t from_ms, int64_t to_ms);
/* 0, or -1 with the first broken invariant in why. */
int sr_db_check(const sr_db_t *db, char *why, size_t cap);

int sr_str_set(sr_db_t *db, sr_key_t *k, const char *p, size_t n);
/* Collections; every size change is counted in db->used_bytes. */
int sr_vec_insert(sr_db_t *db, sr_key_t *k, uint32_t at, const char *a,
                  size_t alen, const char *b, size_t blen, double score);
void sr_vec_remove(sr_db_t *db, sr_key_t *k, uint32_t at);
int sr_item_set_b(sr_db_t *db, sr_key_t *k, uint32_t at, const char *b,
                  size_t blen);
/* Sets and hashes: the index of `a`, or -1 and *at, where it would go. */
int64_t sr_vec_find_sorted(const sr_vec_t *v, const char *a, size_t alen,
                           uint32_t *at);
/* Sorted sets: the index of member `a` (linear), or -1. */
int64_t sr_zset_find(const sr_vec_t *v, const char *a, size_t alen);
/* Where (score, a) goes in a sorted set's order. */
uint32_t sr_zset_position(const sr_vec_t *v, double score, const char *a,
                          size_t alen);
int sr_bytes_cmp(const char *a, size_t alen, const char *b, size_t blen);

/* ---- sim_redis_cmd.c ----------------------------------------------------- */

sr_cmd_fn sr_cmd_get, sr_cmd_set, sr_cmd_exists, sr_cmd_del, sr_cmd_incr,
    sr_cmd_sadd, sr_cmd_srem, sr_cmd_smembers, sr_cmd_sismember, sr_cmd_scard,
    sr_cmd_hset, sr_cmd_hget, sr_cmd_hmget, sr_cmd_zadd, sr_cmd_zrem,
    sr_cmd_zrange, sr_cmd_zscore, sr_cmd_zcard, sr_cmd_rpush, sr_cmd_lpop,
    sr_cmd_lrange, sr_cmd_lindex, sr_cmd_ltrim, sr_cmd_pexpire, sr_cmd_pttl,
    sr_cmd_ping, sr_cmd_flushall;

/* Redis's string2ll: the whole string a decimal long long, no spaces, no
 * '+', no leading zeros. */
bool sr_parse_ll(const char *p, size_t n, long long *out);

/* ---- sim_redis_lua.c ----------------------------------------------------- */

sr_lua_t *sr_lua_create(sim_redis_t *m);
void sr_lua_destroy(sr_lua_t *l);
sr_cmd_fn sr_cmd_eval;

#endif
