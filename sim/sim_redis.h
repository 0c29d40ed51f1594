/* sim_redis.h: an in-memory Redis for the simulator, held against the real
 * thing.
 *
 * It implements exactly what the Cluster actor (game/game_cluster.c) sends,
 * with Redis 7.0's replies, bytes and all:
 *   outside scripts   EVAL script numkeys args..., AUTH [user] password,
 *                     LPOP key [count], PING [msg], FLUSHALL [ASYNC|SYNC],
 *                     and every command below;
 *   in scripts        (redis.call / redis.pcall) EXISTS, GET, SET (EX, PX,
 *                     NX, XX, GET, KEEPTTL), DEL, INCR, SADD, SREM,
 *                     SMEMBERS, SISMEMBER, SCARD, HSET, HGET, HMGET, ZADD
 *                     (NX, XX, GT, LT, CH), ZREM, ZRANGE start stop
 *                     [WITHSCORES], ZSCORE, ZCARD, RPUSH, LPOP, LRANGE,
 *                     LINDEX, LTRIM, PEXPIRE (NX, XX, GT, LT), PTTL, PING,
 *                     FLUSHALL.
 * Scripts run in the real interpreter Redis embeds (Lua 5.1), with Redis's
 * conversions between Lua and RESP and its error texts (sim_redis_lua.c).
 * An option Redis has and the model does not (ZADD INCR, ZRANGE BYSCORE,
 * SET EXAT, ...) is answered "-ERR sim_redis: ... not modelled", never
 * with a guess.
 *
 * Guarantees:
 *  (1) Deterministic: a reply is a pure function of the commands before it
 *      and the times they carry. No clock is read: every command is given
 *      its time (`now`, world time; in a world, rt_now), and a key with a
 *      deadline D (ms) exists while now_ms <= D, as in Redis (db.c,
 *      keyIsExpired: now > when). A script sees one time throughout, as
 *      in Redis. Where real Redis answers in an unspecified order
 *      (SMEMBERS of a hashtable-encoded set) the model answers in byte
 *      order (memcmp); scripts must not depend on that order.
 *  (2) Expiry is lazy: a key past its deadline is dropped when a command
 *      meets it, and a few slots of the key table are swept per command
 *      (SIM_REDIS_SWEEP_SLOTS), so expired keys nobody reads are freed
 *      too. Neither is visible in any reply.
 *  (3) Bounded: keys, bytes of data, arguments, replies, query buffers,
 *      connections, script steps and Lua memory all have maxima (below);
 *      what happens past each is stated there.
 *  (4) Checked: tests/sim/test_sim_redis_diff.c runs seeded command
 *      sequences against a real redis-server and this model and compares
 *      every reply byte for byte.
 *
 * Not modelled: databases other than 0, inline (telnet) commands,
 * RESP3, pub/sub, persistence (a restart keeps or loses data as asked),
 * cjson/bit/struct/cmsgpack in scripts, math.random (real Redis carries its
 * state across scripts; here it would be a hidden global), and read-only
 * protection of library tables in scripts (globals are protected).
 */
#ifndef SIM_REDIS_H
#define SIM_REDIS_H

#include "sim_world.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- Limits -------------------------------------------------------------- */

/* Keys in the table; one more is refused with Redis's OOM error, as
 * maxmemory would. */
#define SIM_REDIS_KEYS_MAX (1u << 20)
/* Bytes of keys and values (with a fixed overhead per key and element);
 * past it, commands that may grow the data are refused with the OOM
 * error, checked before each command as Redis does with maxmemory. */
#define SIM_REDIS_MEMORY_DEFAULT (256ull << 20)
/* Arguments of one request (Redis: 1,048,576) and bytes of one argument
 * (Redis: proto-max-bulk-len, 512 MB). A request past either is a
 * protocol error: the connection is answered and closed. */
#define SIM_REDIS_ARGS_MAX 1024u
#define SIM_REDIS_ARG_MAX (1u << 20)
/* Bytes of one reply; a larger one is replaced by an error reply. */
#define SIM_REDIS_REPLY_MAX (16u << 20)
/* Lua instructions one script may run, then it is stopped with the error
 * a real SCRIPT KILL gives (real Redis runs it forever and answers BUSY
 * to everybody else; a simulation must not hang). */
#define SIM_REDIS_SCRIPT_STEPS_MAX (50u * 1000 * 1000)
/* Bytes the Lua interpreter may allocate: scripts past it fail with
 * "not enough memory" (real Redis has no such limit). */
#define SIM_REDIS_LUA_MEMORY_MAX (64u << 20)
/* Compiled scripts kept (real Redis 7.0 keeps every EVAL script until
 * SCRIPT FLUSH); past it the cache is emptied, which nobody can see. */
#define SIM_REDIS_SCRIPTS_MAX 256u
/* Key-table slots swept for expired keys per command (guarantee (2)). */
#define SIM_REDIS_SWEEP_SLOTS 8u
/* Connections served at once (Redis: maxclients 10000); one more is
 * answered "-ERR max number of clients reached" and closed. */
#define SIM_REDIS_CONNS_MAX 1024u
#define SIM_REDIS_PASSWORD_MAX 128u

/* ---- The model ----------------------------------------------------------- */

typedef struct sim_redis sim_redis_t;

typedef struct sim_redis_config {
  /* "" : the default user has no password (AUTH <password> is an error,
   * AUTH default <anything> succeeds), as a fresh redis-server. Else every
   * connection must AUTH first ("-NOAUTH"), as with requirepass. */
  char requirepass[SIM_REDIS_PASSWORD_MAX];
  uint64_t memory_max; /* 0: SIM_REDIS_MEMORY_DEFAULT */
} sim_redis_config_t;

/* A connection's state as Redis keeps it per client: only whether it is
 * authenticated. Embeddable; sim_redis_client_init sets it up. */
typedef struct sim_redis_client {
  bool authenticated;
} sim_redis_client_t;

/* Replies, appended as RESP bytes. Embeddable: _init, then _deinit. */
typedef struct sim_redis_buf {
  uint8_t *data;
  size_t len, cap;
  bool failed; /* an append did not fit (out of memory): data is short */
} sim_redis_buf_t;

void sim_redis_buf_init(sim_redis_buf_t *b);
void sim_redis_buf_deinit(sim_redis_buf_t *b);
/* Forget the bytes, keep the memory. */
void sim_redis_buf_reset(sim_redis_buf_t *b);

/* cfg is copied; NULL: the defaults. NULL when out of memory. */
sim_redis_t *sim_redis_create(const sim_redis_config_t *cfg);
/* Stops serving (sim_redis_stop), then frees everything. NULL is fine. */
void sim_redis_destroy(sim_redis_t *m);

void sim_redis_client_init(const sim_redis_t *m, sim_redis_client_t *client);

/* Before AUTH, while a password is required, Redis 7.0 takes requests of
 * at most this many arguments, each of at most this many bytes; a larger
 * one is a protocol error and the connection is closed (networking.c,
 * processMultibulkBuffer: a guard against unauthenticated memory use). */
#define SIM_REDIS_UNAUTH_ARGS_MAX 10u
#define SIM_REDIS_UNAUTH_ARG_MAX 16384u

/* Run one command at world time `now` and append its reply to *out.
 * argv[i] is lens[i] bytes followed by a NUL (hiredis's reader and Lua
 * both end their strings so); all borrowed. client: the connection's state
 * (borrowed, updated by AUTH), or NULL for an authenticated one. Returns
 * 0; RT_EPROTO when the request broke the protocol (past the limits
 * above): the reply, Redis's protocol error, is appended, and the
 * connection must be closed after it; or RT_ENOMEM when the reply could
 * not be appended (out->failed). */
int sim_redis_command(sim_redis_t *m, sim_redis_client_t *client, int argc,
                      const char *const *argv, const size_t *lens,
                      rt_time_ns now, sim_redis_buf_t *out);

/* Told of every top-level command sim_redis_command ran, after it ran:
 * its arguments (as given), the reply it appended (RESP bytes) and its
 * time. A checker's view, for invariants that must not trust the data the
 * commands wrote (simrun's C7 reads each lease renewal and each match from
 * here). It may not call back into the model. */
typedef void (*sim_redis_observer_fn)(void *ctx, int argc,
                                      const char *const *argv,
                                      const size_t *lens, const uint8_t *reply,
                                      size_t reply_len, rt_time_ns now);
/* One observer at a time; NULL removes it. */
void sim_redis_set_observer(sim_redis_t *m, sim_redis_observer_fn fn,
                            void *ctx);

/* Lose every key (a restart without data, or FLUSHALL). */
void sim_redis_flush(sim_redis_t *m);

/* Facts, for checkers and tests. Keys that exist at `now`. */
uint64_t sim_redis_key_count(const sim_redis_t *m, rt_time_ns now);
/* A hash of the data that exists at `now`, independent of the order keys
 * and set members were written in: two models holding the same keys, values
 * and deadlines have the same digest. For a cluster run's hash. */
uint64_t sim_redis_digest(const sim_redis_t *m, rt_time_ns now);
/* A checker's read, with no effect on the model: the value of string key
 * `key` (field NULL) or of field `field` of hash `key`, as GET or HGET
 * would answer at `now`, copied into out (cut to cap - 1 bytes, always
 * NUL-terminated). 1 when it exists, 0 when the key or field does not
 * (an expired key counts as gone, and stays unswept), -1 when the key
 * holds another type. Unlike sim_redis_command it counts no command,
 * sweeps nothing and calls no observer: how often a run checks changes
 * nothing the run does. */
int sim_redis_peek(const sim_redis_t *m, const char *key, const char *field,
                   rt_time_ns now, char *out, size_t cap);
/* 1 when some key (expired or not yet swept) has a deadline in [from,
 * to] (world time, ms resolution), else 0. The differential test keeps
 * its steps away from deadlines with it. */
int sim_redis_deadline_within(const sim_redis_t *m, rt_time_ns from,
                              rt_time_ns to);

typedef struct sim_redis_stats {
  uint64_t commands;     /* top-level commands run (EVAL counts once) */
  uint64_t script_calls; /* redis.call and redis.pcall */
  uint64_t errors;       /* error replies to top-level commands */
  uint64_t expired;      /* keys dropped past their deadline */
  uint64_t connections;  /* accepted, ever */
  uint64_t refused;      /* connections over SIM_REDIS_CONNS_MAX */
  uint64_t protocol_errors;
  uint64_t used_bytes; /* now, as counted against memory_max */
} sim_redis_stats_t;

void sim_redis_get_stats(const sim_redis_t *m, sim_redis_stats_t *out);

/* ---- Serving over simulated pipes (sim_redis_server.c) ------------------- */

/* Serve RESP on a simulated port of sw (sim_listen): an acceptor actor owns
 * the listener and spawns one actor per accepted connection, which reads
 * requests (RESP arrays of bulk strings, decoded by hiredis's reader), runs
 * each at rt_now and writes the replies in order. A model serves one world
 * at a time. 0, or RT_EADDR (port taken), RT_ELIMIT, RT_ENOMEM, or
 * RT_EINVAL when it already serves. */
int sim_redis_listen(sim_redis_t *m, sim_world_t *sw, uint16_t port);

/* Stop serving, as a crashed process: every connection is reset (both ends
 * see RT_ERESET) and the port closed (connects are refused). The data
 * stays; a restart is sim_redis_stop, sim_redis_flush when the data is
 * lost, then sim_redis_listen when the server is back. Call it between
 * turns or from an actor's turn. No-op when not serving. */
void sim_redis_stop(sim_redis_t *m);

/* A restart in one step, on the port and world last served: stop, lose
 * the data unless keep_data, serve again. 0, or sim_redis_listen's error;
 * RT_EINVAL when the model never served. */
int sim_redis_restart(sim_redis_t *m, bool keep_data);

/* Connections being served now. */
uint32_t sim_redis_connections(const sim_redis_t *m);

#endif
