/* test_sim_redis.c: the Redis model (sim/sim_redis.h) on its own, and
 * served over simulated pipes.
 *
 * What the differential test (test_sim_redis_diff.c) cannot show is here:
 * exact deadlines in virtual time (at, below and above a key's last
 * millisecond), the limits (memory, script steps, arguments, connections)
 * at, below and above, the data's invariants and digest, and the server:
 * pipelined requests answered in order, requests cut into small segments,
 * a crash that resets every connection, a restart with and without data,
 * protocol errors, and a client that does not read.
 *
 * Replies are checked as the bytes real Redis 7.0 sends (those texts were
 * read off a redis-server 7.0.15, and the differential test holds them).
 * Every world has a fixed seed; a failure replays with
 * build/bin/test_sim_redis --filter 'sim_redis*<test name>'.
 */
#include "game_cluster_lua.h"
#include "rt_stream.h"
#include "sim_pipe.h"
#include "sim_redis.h"
#include "sim_redis_int.h"
#include "sim_world.h"

#include <criterion/criterion.h>
#include <hiredis/hiredis.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define MS RT_NS_PER_MS
#define PORT 6379
#define ARGV_MAX 2048
#define CLIENT_DATA_MAX (16u << 20)
#define CLIENT_READS_PER_TURN 4096u

/* ---- Direct calls -------------------------------------------------------- */

/* Run argv (NULL-terminated) at `now`; the reply's bytes, NUL-ended, in
 * out (the caller deinits). */
static const char *run_at(sim_redis_t *m, sim_redis_client_t *client,
                          rt_time_ns now, sim_redis_buf_t *out, ...) {
  const char *argv[64];
  size_t lens[64];
  int argc = 0;
  va_list ap;
  va_start(ap, out);
  const char *a;
  while ((a = va_arg(ap, const char *)) != NULL) {
    cr_assert_lt(argc, 64);
    argv[argc] = a;
    lens[argc++] = strlen(a);
  }
  va_end(ap);
  sim_redis_buf_reset(out);
  cr_assert_eq(sim_redis_command(m, client, argc, argv, lens, now, out), 0);
  sr_buf_append(out, "", 1);
  out->len--;
  return (const char *)out->data;
}

#define Q(m, now, ...) run_at((m), NULL, (now), &out, __VA_ARGS__, NULL)

static void check_invariants(const sim_redis_t *m) {
  char why[256];
  cr_assert_eq(sr_db_check(&m->db, why, sizeof(why)), 0, "%s", why);
}

Test(sim_redis, a_key_exists_through_its_last_millisecond_and_not_after) {
  sim_redis_t *m = sim_redis_create(NULL);
  sim_redis_buf_t out;
  sim_redis_buf_init(&out);
  cr_assert_str_eq(Q(m, 0, "SET", "k", "v", "PX", "100"), "+OK\r\n");
  /* Redis: a key lives while now <= its deadline (db.c keyIsExpired). */
  cr_assert_str_eq(Q(m, 99 * MS, "PTTL", "k"), ":1\r\n");
  cr_assert_str_eq(Q(m, 100 * MS, "PTTL", "k"), ":0\r\n");
  cr_assert_str_eq(Q(m, 100 * MS + MS - 1, "GET", "k"), "$1\r\nv\r\n");
  cr_assert_str_eq(Q(m, 101 * MS, "GET", "k"), "$-1\r\n");
  cr_assert_str_eq(Q(m, 101 * MS, "PTTL", "k"), ":-2\r\n");
  sim_redis_stats_t st;
  sim_redis_get_stats(m, &st);
  cr_assert_eq(st.expired, 1);
  check_invariants(m);
  sim_redis_buf_deinit(&out);
  sim_redis_destroy(m);
}

Test(sim_redis, pexpire_to_now_or_before_deletes_at_once) {
  sim_redis_t *m = sim_redis_create(NULL);
  sim_redis_buf_t out;
  sim_redis_buf_init(&out);
  Q(m, 0, "RPUSH", "l", "a");
  cr_assert_str_eq(Q(m, 5 * MS, "PEXPIRE", "l", "1"), ":1\r\n");
  cr_assert_str_eq(Q(m, 6 * MS, "EXISTS", "l"), ":1\r\n");
  cr_assert_str_eq(Q(m, 6 * MS, "PEXPIRE", "l", "0"), ":1\r\n");
  cr_assert_str_eq(Q(m, 6 * MS, "EXISTS", "l"), ":0\r\n");
  cr_assert_str_eq(Q(m, 6 * MS, "PEXPIRE", "l", "-5"), ":0\r\n");
  sim_redis_buf_deinit(&out);
  sim_redis_destroy(m);
}

Test(sim_redis, a_script_sees_the_time_of_its_eval) {
  sim_redis_t *m = sim_redis_create(NULL);
  sim_redis_buf_t out;
  sim_redis_buf_init(&out);
  /* Set and read in one script: one time, so PTTL is the whole 50 ms. */
  cr_assert_str_eq(Q(m, 7 * MS, "EVAL",
                     "redis.call('SET', 'k', 'v', 'PX', 50) "
                     "return redis.call('PTTL', 'k')",
                     "0"),
                   ":50\r\n");
  sim_redis_buf_deinit(&out);
  sim_redis_destroy(m);
}

Test(sim_redis, smembers_answers_in_byte_order) {
  sim_redis_t *m = sim_redis_create(NULL);
  sim_redis_buf_t out;
  sim_redis_buf_init(&out);
  Q(m, 0, "SADD", "s", "b/1", "a/2", "c", "a/1", "10", "2");
  cr_assert_str_eq(Q(m, 0, "SMEMBERS", "s"),
                   "*6\r\n$2\r\n10\r\n$1\r\n2\r\n$3\r\na/1\r\n$3\r\na/2\r\n"
                   "$3\r\nb/1\r\n$1\r\nc\r\n");
  sim_redis_buf_deinit(&out);
  sim_redis_destroy(m);
}

Test(sim_redis, lua_values_convert_as_redis_converts_them) {
  sim_redis_t *m = sim_redis_create(NULL);
  sim_redis_buf_t out;
  sim_redis_buf_init(&out);
  cr_assert_str_eq(Q(m, 0, "EVAL", "return {1, nil, 2}", "0"), "*1\r\n:1\r\n");
  cr_assert_str_eq(Q(m, 0, "EVAL", "return -3.7", "0"), ":-3\r\n");
  cr_assert_str_eq(Q(m, 0, "EVAL", "return 1e20", "0"),
                   ":-9223372036854775808\r\n");
  cr_assert_str_eq(Q(m, 0, "EVAL", "return {true, false}", "0"),
                   "*2\r\n:1\r\n$-1\r\n");
  cr_assert_str_eq(Q(m, 0, "EVAL", "return {err='a\\nb'}", "0"), "-a b\r\n");
  cr_assert_str_eq(Q(m, 0, "EVAL", "return {err=5}", "0"), "*0\r\n");
  cr_assert_str_eq(Q(m, 0, "EVAL", "return redis.error_reply('boom')", "0"),
                   "-ERR boom\r\n");
  cr_assert_str_eq(Q(m, 0, "EVAL", "return type(redis.call('GET', 'x'))", "0"),
                   "$7\r\nboolean\r\n");
  cr_assert_str_eq(Q(m, 0, "EVAL", "return redis.call('SET', 'k', 0.1)", "0"),
                   "+OK\r\n");
  cr_assert_str_eq(Q(m, 0, "GET", "k"), "$19\r\n0.10000000000000001\r\n");
  sim_redis_buf_deinit(&out);
  sim_redis_destroy(m);
}

Test(sim_redis, script_errors_name_the_script_and_line) {
  sim_redis_t *m = sim_redis_create(NULL);
  sim_redis_buf_t out;
  sim_redis_buf_init(&out);
  cr_assert_str_eq(
      Q(m, 0, "EVAL", "return redis.call('GET')", "0"),
      "-ERR Wrong number of args calling Redis command from script script: "
      "72273adc3c5955bf8543f1ad6ce893355b89617d, on @user_script:1.\r\n");
  cr_assert_str_eq(Q(m, 0, "EVAL", "return nil .. 'x'", "0"),
                   "-ERR user_script:1: attempt to concatenate a nil value "
                   "script: c1e665fd995974aa8a06dc6f5ddbac7aa6d0c7d6, on "
                   "@user_script:1.\r\n");
  cr_assert_str_eq(Q(m, 0, "EVAL", "return x", "0"),
                   "-ERR user_script:1: Script attempted to access "
                   "nonexistent global variable 'x' script: "
                   "03c387736bb5cc009ff35151572cee04677aa374, on "
                   "@user_script:1.\r\n");
  cr_assert_str_eq(Q(m, 0, "EVAL", "return syntax error here", "0"),
                   "-ERR Error compiling script (new function): "
                   "user_script:1: '<eof>' expected near 'error'\r\n");
  cr_assert_str_eq(Q(m, 0, "EVAL", "return redis.pcall('GET')", "0"),
                   "-ERR Wrong number of args calling Redis command from "
                   "script\r\n");
  sim_redis_buf_deinit(&out);
  sim_redis_destroy(m);
}

Test(sim_redis, auth_with_and_without_a_password) {
  sim_redis_config_t cfg = {.requirepass = "pw"};
  sim_redis_t *m = sim_redis_create(&cfg);
  sim_redis_client_t client;
  sim_redis_client_init(m, &client);
  sim_redis_buf_t out;
  sim_redis_buf_init(&out);
  cr_assert_str_eq(run_at(m, &client, 0, &out, "PING", NULL),
                   "-NOAUTH Authentication required.\r\n");
  /* Unknown commands and wrong arity are told before NOAUTH, as Redis. */
  cr_assert_str_eq(run_at(m, &client, 0, &out, "GET", NULL),
                   "-ERR wrong number of arguments for 'get' command\r\n");
  cr_assert_str_eq(
      run_at(m, &client, 0, &out, "AUTH", "nope", NULL),
      "-WRONGPASS invalid username-password pair or user is disabled.\r\n");
  cr_assert_str_eq(run_at(m, &client, 0, &out, "AUTH", "default", "pw", NULL),
                   "+OK\r\n");
  cr_assert_str_eq(run_at(m, &client, 0, &out, "PING", NULL), "+PONG\r\n");
  sim_redis_destroy(m);
  m = sim_redis_create(NULL);
  sim_redis_client_init(m, &client);
  cr_assert_str_eq(run_at(m, &client, 0, &out, "AUTH", "pw", NULL),
                   "-ERR AUTH <password> called without any password "
                   "configured for the default user. Are you sure your "
                   "configuration is correct?\r\n");
  cr_assert_str_eq(run_at(m, &client, 0, &out, "AUTH", "default", "x", NULL),
                   "+OK\r\n");
  sim_redis_buf_deinit(&out);
  sim_redis_destroy(m);
}

Test(sim_redis, the_cluster_scripts_make_a_cross_instance_match) {
  sim_redis_t *m = sim_redis_create(NULL);
  sim_redis_buf_t out;
  sim_redis_buf_init(&out);
  cr_assert_str_eq(Q(m, 0, "EVAL", LUA_RENEW, "0", "a/1", "ws://a", "3000"),
                   "*2\r\n:1\r\n:0\r\n");
  Q(m, 0, "EVAL", LUA_RENEW, "0", "b/1", "ws://b", "3000");
  cr_assert_str_eq(
      Q(m, MS, "EVAL", LUA_MATCH, "0", "x", "X", "a/1", "r1", "60000", "64"),
      "*2\r\n$6\r\nqueued\r\n:0\r\n");
  cr_assert_str_eq(
      Q(m, 2 * MS, "EVAL", LUA_MATCH, "0", "y", "Y", "b/1", "r2", "60000",
        "64"),
      "*5\r\n$7\r\nmatched\r\n$1\r\nx\r\n$1\r\nX\r\n$3\r\na/1\r\n:0\r\n");
  cr_assert_str_eq(Q(m, 3 * MS, "LPOP", "oc:inbox:a/1", "64"),
                   "*1\r\n$13\r\nM\tx\tr2\tws://b\r\n");
  /* a/1's lease lapses, b's is renewed: x, back on b, plays there. */
  Q(m, 2000 * MS, "EVAL", LUA_RENEW, "0", "b/1", "ws://b", "3000");
  cr_assert_str_eq(Q(m, 3001 * MS, "EVAL", LUA_LOOKUP, "0", "x", "b/1"),
                   "*2\r\n$4\r\nhere\r\n$2\r\nr2\r\n");
  check_invariants(m);
  sim_redis_buf_deinit(&out);
  sim_redis_destroy(m);
}

Test(sim_redis, a_score_of_minus_zero_reads_as_redis_stores_it) {
  sim_redis_t *m = sim_redis_create(NULL);
  sim_redis_buf_t out;
  sim_redis_buf_init(&out);
  /* A small sorted set is a listpack: -0 comes back 0. */
  Q(m, 0, "ZADD", "z", "-0", "m", "1.1", "n");
  cr_assert_str_eq(Q(m, 0, "ZSCORE", "z", "m"), "$1\r\n0\r\n");
  cr_assert_str_eq(Q(m, 0, "ZSCORE", "z", "n"),
                   "$18\r\n1.1000000000000001\r\n");
  /* A member over 64 bytes makes it a skiplist, which keeps -0. */
  Q(m, 0, "ZADD", "z", "5",
    "a-member-longer-than-sixty-four-bytes-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
  Q(m, 0, "ZADD", "z", "-0", "m3");
  cr_assert_str_eq(Q(m, 0, "ZSCORE", "z", "m3"), "$2\r\n-0\r\n");
  check_invariants(m);
  sim_redis_buf_deinit(&out);
  sim_redis_destroy(m);
}

Test(sim_redis, writes_past_memory_max_answer_oom_and_deletes_still_work) {
  sim_redis_config_t cfg = {.memory_max = 4096};
  sim_redis_t *m = sim_redis_create(&cfg);
  sim_redis_buf_t out;
  sim_redis_buf_init(&out);
  char key[32];
  int i = 0;
  /* Checked before each command: the one that crosses the limit runs. */
  for (;; i++) {
    snprintf(key, sizeof(key), "k%d", i);
    const char *r = Q(m, 0, "SET", key, "0123456789012345678901234567890");
    if (r[0] == '-') {
      cr_assert_str_eq(r, "-OOM command not allowed when used memory > "
                          "'maxmemory'.\r\n");
      break;
    }
  }
  sim_redis_stats_t st;
  sim_redis_get_stats(m, &st);
  cr_assert_gt(st.used_bytes, 4096);
  cr_assert_lt(st.used_bytes, 4096 + 200);
  cr_assert_str_eq(
      Q(m, 0, "EVAL", "return redis.call('SET', 'x', 'y')", "0"),
      "-OOM command not allowed when used memory > 'maxmemory'. script: "
      "9bbf1ff93e31f3103291317468e5af9beafeff5d, on @user_script:1.\r\n");
  cr_assert_str_eq(Q(m, 0, "DEL", "k0", "k1"), ":2\r\n");
  cr_assert_str_eq(Q(m, 0, "SET", "k0", "v"), "+OK\r\n");
  check_invariants(m);
  sim_redis_buf_deinit(&out);
  sim_redis_destroy(m);
}

Test(sim_redis, a_script_past_its_steps_is_killed_and_the_model_goes_on) {
  sim_redis_t *m = sim_redis_create(NULL);
  sim_redis_buf_t out;
  sim_redis_buf_init(&out);
  /* pcall cannot catch it: the hook fires on every line from then on. */
  const char *r =
      Q(m, 0, "EVAL", "while true do pcall(function() end) end", "0");
  static const char killed[] =
      "-ERR Script killed by user with SCRIPT KILL... script: ";
  cr_assert(strncmp(r, killed, strlen(killed)) == 0, "%s", r);
  cr_assert_str_eq(Q(m, 0, "EVAL", "return 42", "0"), ":42\r\n");
  sim_redis_buf_deinit(&out);
  sim_redis_destroy(m);
}

Test(sim_redis, expired_keys_nobody_reads_are_swept) {
  sim_redis_t *m = sim_redis_create(NULL);
  sim_redis_buf_t out;
  sim_redis_buf_init(&out);
  char key[32];
  for (int i = 0; i < 100; i++) {
    snprintf(key, sizeof(key), "k%d", i);
    Q(m, 0, "SET", key, "v", "PX", "1");
  }
  cr_assert_eq(sim_redis_key_count(m, 0), 100);
  cr_assert_eq(sim_redis_key_count(m, 2 * MS), 0);
  /* SIM_REDIS_SWEEP_SLOTS looks per command: the 256 slots of the table
   * and one look more per key dropped take (256 + 100) / 8 < 48. */
  for (int i = 0; i < 48; i++)
    Q(m, 2 * MS, "PING");
  sim_redis_stats_t st;
  sim_redis_get_stats(m, &st);
  cr_assert_eq(st.expired, 100);
  cr_assert_eq(st.used_bytes, 0);
  check_invariants(m);
  sim_redis_buf_deinit(&out);
  sim_redis_destroy(m);
}

/* A checker's read (sim_redis_peek) answers as GET and HGET answer and
 * leaves the model as it was: no command counted, no expired key dropped,
 * no observer called. */
static int peek_observed;
static void peek_observer(void *ctx, int argc, const char *const *argv,
                          const size_t *lens, const uint8_t *reply, size_t len,
                          rt_time_ns now) {
  (void)ctx, (void)argc, (void)argv, (void)lens, (void)reply, (void)len;
  (void)now;
  peek_observed++;
}

/* Hashes of 3 fields, of 16 and 17 (at the peek's linear scan's limit,
 * PEEK_SCAN_MAX, and past it: a binary search) and of 40: field i of the
 * one of n fields, and its value. */
#define PEEK_SIZES 4
static const int peek_sizes[PEEK_SIZES] = {3, 16, 17, 40};
typedef struct peek_names {
  char key[16], field[16], value[16];
} peek_names_t;

static peek_names_t peek_names(int n, int i) {
  peek_names_t x;
  snprintf(x.key, sizeof(x.key), "big%d", n);
  snprintf(x.field, sizeof(x.field), "f%02d", i);
  snprintf(x.value, sizeof(x.value), "v%d", i);
  return x;
}

Test(sim_redis, a_peek_answers_as_get_and_hget_and_changes_nothing) {
  sim_redis_t *m = sim_redis_create(NULL);
  sim_redis_buf_t out;
  sim_redis_buf_init(&out);
  Q(m, 0, "SET", "s", "value", "PX", "10");
  Q(m, 0, "HSET", "h", "e", "epoch-1", "b", "", "a", "x");
  Q(m, 0, "RPUSH", "l", "a");
  for (int k = 0; k < PEEK_SIZES; k++) {
    for (int i = 0; i < peek_sizes[k]; i++) {
      peek_names_t x = peek_names(peek_sizes[k], i);
      Q(m, 0, "HSET", x.key, x.field, x.value);
    }
  }
  sim_redis_set_observer(m, peek_observer, NULL);
  sim_redis_stats_t before, after;
  sim_redis_get_stats(m, &before);
  char v[8];
  cr_assert_eq(sim_redis_peek(m, "s", NULL, 10 * MS, v, sizeof(v)), 1);
  cr_assert_str_eq(v, "value");
  cr_assert_eq(sim_redis_peek(m, "s", NULL, 10 * MS, v, 4), 1);
  cr_assert_str_eq(v, "val"); /* cut to cap - 1 */
  cr_assert_eq(sim_redis_peek(m, "h", "e", 0, v, sizeof(v)), 1);
  cr_assert_str_eq(v, "epoch-1");
  cr_assert_eq(sim_redis_peek(m, "h", "b", 0, v, sizeof(v)), 1);
  cr_assert_str_eq(v, "");
  cr_assert_eq(sim_redis_peek(m, "h", "c", 0, v, sizeof(v)), 0);
  cr_assert_str_eq(v, "");
  /* Fields of one length (compared by their bytes), and a hash past the
   * peek's linear scan (a binary search, as HGET's). */
  for (int k = 0; k < PEEK_SIZES; k++) {
    const peek_names_t big = peek_names(peek_sizes[k], 0);
    for (int i = 0; i < peek_sizes[k]; i++) {
      peek_names_t x = peek_names(peek_sizes[k], i);
      cr_assert_eq(sim_redis_peek(m, x.key, x.field, 0, v, sizeof(v)), 1, "%s",
                   x.field);
      cr_assert_str_eq(v, x.value);
    }
    cr_assert_eq(sim_redis_peek(m, big.key, "f2", 0, v, sizeof(v)), 0);
    cr_assert_eq(sim_redis_peek(m, big.key, "f99", 0, v, sizeof(v)), 0);
    cr_assert_eq(sim_redis_peek(m, big.key, "", 0, v, sizeof(v)), 0);
  }
  cr_assert_eq(sim_redis_peek(m, "nope", NULL, 0, v, sizeof(v)), 0);
  cr_assert_eq(sim_redis_peek(m, "nope", "e", 0, v, sizeof(v)), 0);
  /* Another type: GET and HGET answer WRONGTYPE. */
  cr_assert_eq(sim_redis_peek(m, "h", NULL, 0, v, sizeof(v)), -1);
  cr_assert_eq(sim_redis_peek(m, "s", "e", 0, v, sizeof(v)), -1);
  cr_assert_eq(sim_redis_peek(m, "l", NULL, 0, v, sizeof(v)), -1);
  /* Past its last millisecond the key is gone, and stays in the table. */
  cr_assert_eq(sim_redis_peek(m, "s", NULL, 11 * MS, v, sizeof(v)), 0);
  sim_redis_get_stats(m, &after);
  cr_assert_eq(after.commands, before.commands);
  cr_assert_eq(after.expired, 0);
  cr_assert_eq(after.used_bytes, before.used_bytes);
  cr_assert_eq(peek_observed, 0);
  cr_assert_eq(sim_redis_key_count(m, 0), 7);
  /* GET, run as a command, drops it. */
  cr_assert_str_eq(Q(m, 11 * MS, "GET", "s"), "$-1\r\n");
  sim_redis_get_stats(m, &after);
  cr_assert_eq(after.expired, 1);
  cr_assert_eq(peek_observed, 1);
  check_invariants(m);
  sim_redis_buf_deinit(&out);
  sim_redis_destroy(m);
}

Test(sim_redis, the_digest_is_the_data_not_the_order_it_came_in) {
  sim_redis_t *a = sim_redis_create(NULL), *b = sim_redis_create(NULL);
  sim_redis_buf_t out;
  sim_redis_buf_init(&out);
  Q(a, 0, "SADD", "s", "x", "y");
  Q(a, 0, "SET", "k", "v", "PX", "100");
  Q(b, 0, "SET", "k", "v", "PX", "100");
  Q(b, 0, "SADD", "s", "y");
  Q(b, 0, "SADD", "s", "x");
  cr_assert_eq(sim_redis_digest(a, 0), sim_redis_digest(b, 0));
  Q(b, 0, "HSET", "h", "f", "v");
  cr_assert_neq(sim_redis_digest(a, 0), sim_redis_digest(b, 0));
  Q(b, 0, "DEL", "h");
  cr_assert_eq(sim_redis_digest(a, 0), sim_redis_digest(b, 0));
  /* Past k's deadline both hold only s. */
  Q(a, 0, "PEXPIRE", "k", "50");
  cr_assert_neq(sim_redis_digest(a, 0), sim_redis_digest(b, 0));
  cr_assert_eq(sim_redis_digest(a, 200 * MS), sim_redis_digest(b, 200 * MS));
  sim_redis_buf_deinit(&out);
  sim_redis_destroy(a);
  sim_redis_destroy(b);
}

/* Random commands over a few keys of every type keep the invariants of
 * sim_redis_int.h. */
Test(sim_redis, random_commands_keep_the_invariants) {
  static const char *const cmds[][6] = {{"SADD", "K", "a", "b"},
                                        {"SREM", "K", "a"},
                                        {"RPUSH", "K", "x", "y"},
                                        {"LPOP", "K", "3"},
                                        {"LTRIM", "K", "1", "-1"},
                                        {"HSET", "K", "f", "v", "g", "w"},
                                        {"ZADD", "K", "2", "m"},
                                        {"ZADD", "K", "1", "n", "3", "m"},
                                        {"ZREM", "K", "m"},
                                        {"SET", "K", "v", "PX", "5"},
                                        {"DEL", "K"},
                                        {"INCR", "K"},
                                        {"PEXPIRE", "K", "3"},
                                        {"FLUSHALL"}};
  static const char *const keys[] = {"a", "b", "c", "d"};
  sim_redis_t *m = sim_redis_create(NULL);
  sim_redis_buf_t out;
  sim_redis_buf_init(&out);
  rt_rng_t rng;
  rt_rng_init(&rng, 17, RT_RNG_KEY(RT_RNG_SUB_TEST, 1));
  for (int step = 0; step < 20000; step++) {
    const char *const *c = cmds[rt_rng_below(&rng, 14)];
    const char *argv[6];
    size_t lens[6];
    int argc = 0;
    for (; argc < 6 && c[argc] != NULL; argc++) {
      argv[argc] =
          strcmp(c[argc], "K") == 0 ? keys[rt_rng_below(&rng, 4)] : c[argc];
      lens[argc] = strlen(argv[argc]);
    }
    sim_redis_buf_reset(&out);
    sim_redis_command(m, NULL, argc, argv, lens, step * MS, &out);
    if (step % 97 == 0)
      check_invariants(m);
  }
  check_invariants(m);
  sim_redis_buf_deinit(&out);
  sim_redis_destroy(m);
}

/* ---- Served over simulated pipes ----------------------------------------- */

/* A client actor: it owns its stream and keeps every byte it reads. */
typedef struct client {
  rt_actor_id_t id;
  rt_stream_t *stream;
  uint8_t *data;
  size_t len, parsed;
  int64_t end; /* 0, or the read's error: RT_EOF, RT_ERESET */
  bool reading;
} client_t;

static void client_behaviour(rt_actor_t *self, const rt_msg_t *msg) {
  client_t *c = rt_state(self);
  cr_assert_eq(msg->tag, RT_TAG_STREAM);
  for (uint32_t i = 0; i < CLIENT_READS_PER_TURN && c->reading && !c->end;
       i++) {
    cr_assert_lt(c->len, CLIENT_DATA_MAX);
    int64_t n =
        rt_stream_read(c->stream, c->data + c->len, CLIENT_DATA_MAX - c->len);
    if (n == 0)
      return;
    if (n < 0)
      c->end = n;
    else
      c->len += (size_t)n;
  }
}

typedef struct fixture {
  sim_world_t *sw;
  sim_redis_t *m;
  client_t clients[4];
} fixture_t;

static void fixture_init(fixture_t *f, const sim_redis_config_t *cfg) {
  memset(f, 0, sizeof(*f));
  sim_config_t sc = {.seed = 7, .log_level = RT_LOG_OFF};
  f->sw = sim_world_create(&sc);
  cr_assert_not_null(f->sw);
  f->m = sim_redis_create(cfg);
  cr_assert_not_null(f->m);
  cr_assert_eq(sim_redis_listen(f->m, f->sw, PORT), 0);
}

static void fixture_deinit(fixture_t *f) {
  sim_world_destroy(f->sw); /* stops the model's actors first */
  cr_assert_eq(sim_redis_connections(f->m), 0);
  sim_redis_destroy(f->m);
  for (int i = 0; i < 4; i++)
    free(f->clients[i].data);
}

static int connect_client(fixture_t *f, client_t *c,
                          const sim_link_config_t *link) {
  c->data = calloc(1, CLIENT_DATA_MAX);
  c->reading = true;
  rt_actor_spec_t spec = {.name = "client",
                          .behaviour = client_behaviour,
                          .state = c,
                          .mailbox_cap = 4};
  cr_assert_eq(rt_spawn(sim_world_rt(f->sw), &spec, &c->id), 0);
  return sim_connect(f->sw, PORT, c->id, link, link, &c->stream);
}

/* Write one request (argv, NULL-terminated); all of it must be taken. */
static void send_cmd(client_t *c, ...) {
  const char *argv[ARGV_MAX];
  size_t lens[ARGV_MAX];
  int argc = 0;
  va_list ap;
  va_start(ap, c);
  const char *a;
  while ((a = va_arg(ap, const char *)) != NULL) {
    argv[argc] = a;
    lens[argc++] = strlen(a);
  }
  va_end(ap);
  char *req = NULL;
  int n = redisFormatCommandArgv(&req, argc, argv, lens);
  cr_assert_gt(n, 0);
  cr_assert_eq(rt_stream_write(c->stream, req, (size_t)n), n);
  free(req);
}

static void tick(rt_world_t *w, void *arg, uint64_t timer) {
  (void)w, (void)arg, (void)timer;
}

/* Run the world for `span` of world time (a timer at its end, so that the
 * clock gets there even when nothing else is pending). */
static void run_for(fixture_t *f, rt_time_ns span) {
  rt_world_t *w = sim_world_rt(f->sw);
  rt_time_ns until = rt_now(w) + span;
  uint64_t timer = 0;
  cr_assert_eq(rt_timer_start_fn(w, span, 0, tick, NULL, &timer), 0);
  sim_world_run(f->sw, until, 0);
  cr_assert_eq(rt_now(w), until);
}

/* The client's next reply, as bytes (NUL-ended, static for the call). */
static const char *next_reply(client_t *c, char *buf, size_t cap) {
  redisReader *rd = redisReaderCreate();
  redisReaderFeed(rd, (const char *)c->data + c->parsed, c->len - c->parsed);
  void *reply = NULL;
  cr_assert_eq(redisReaderGetReply(rd, &reply), REDIS_OK);
  cr_assert_not_null(reply, "no complete reply (%zu bytes unread)",
                     c->len - c->parsed);
  freeReplyObject(reply);
  size_t used = c->len - c->parsed - (size_t)(rd->len - rd->pos);
  redisReaderFree(rd);
  cr_assert_lt(used, cap);
  memcpy(buf, c->data + c->parsed, used);
  buf[used] = '\0';
  c->parsed += used;
  return buf;
}

#define REPLY(c) next_reply((c), text, sizeof(text))

Test(sim_redis_server, pipelined_requests_get_their_replies_in_order) {
  fixture_t f;
  fixture_init(&f, NULL);
  client_t *c = &f.clients[0];
  cr_assert_eq(connect_client(&f, c, NULL), 0);
  send_cmd(c, "SET", "k", "v", NULL);
  send_cmd(c, "GET", "k", NULL);
  send_cmd(c, "EVAL", LUA_RENEW, "0", "a/1", "ws://a", "3000", NULL);
  send_cmd(c, "LPOP", "oc:inbox:a/1", "64", NULL);
  send_cmd(c, "PING", NULL);
  run_for(&f, 10 * MS);
  char text[256];
  cr_assert_str_eq(REPLY(c), "+OK\r\n");
  cr_assert_str_eq(REPLY(c), "$1\r\nv\r\n");
  cr_assert_str_eq(REPLY(c), "*2\r\n:1\r\n:0\r\n");
  cr_assert_str_eq(REPLY(c), "*-1\r\n");
  cr_assert_str_eq(REPLY(c), "+PONG\r\n");
  cr_assert_eq(c->parsed, c->len);
  fixture_deinit(&f);
}

Test(sim_redis_server, requests_cut_into_small_segments_are_decoded) {
  fixture_t f;
  fixture_init(&f, NULL);
  client_t *c = &f.clients[0];
  sim_link_config_t slow = {.latency = MS, .mss = 3, .bandwidth = 100000};
  cr_assert_eq(connect_client(&f, c, &slow), 0);
  send_cmd(c, "RPUSH", "l", "a", "bb", "ccc", NULL);
  send_cmd(c, "LRANGE", "l", "0", "-1", NULL);
  run_for(&f, 1000 * MS);
  char text[256];
  cr_assert_str_eq(REPLY(c), ":3\r\n");
  cr_assert_str_eq(REPLY(c), "*3\r\n$1\r\na\r\n$2\r\nbb\r\n$3\r\nccc\r\n");
  fixture_deinit(&f);
}

Test(sim_redis_server, keys_expire_in_world_time) {
  fixture_t f;
  fixture_init(&f, NULL);
  client_t *c = &f.clients[0];
  cr_assert_eq(connect_client(&f, c, NULL), 0);
  send_cmd(c, "SET", "k", "v", "PX", "100", NULL); /* at 0 */
  run_for(&f, 100 * MS);
  send_cmd(c, "GET", "k", NULL); /* at 100 ms: its last millisecond */
  run_for(&f, MS);
  send_cmd(c, "GET", "k", NULL); /* at 101 ms */
  run_for(&f, MS);
  char text[64];
  cr_assert_str_eq(REPLY(c), "+OK\r\n");
  cr_assert_str_eq(REPLY(c), "$1\r\nv\r\n");
  cr_assert_str_eq(REPLY(c), "$-1\r\n");
  fixture_deinit(&f);
}

Test(sim_redis_server, a_password_is_asked_of_every_connection) {
  sim_redis_config_t cfg = {.requirepass = "pw"};
  fixture_t f;
  fixture_init(&f, &cfg);
  client_t *a = &f.clients[0], *b = &f.clients[1];
  cr_assert_eq(connect_client(&f, a, NULL), 0);
  cr_assert_eq(connect_client(&f, b, NULL), 0);
  send_cmd(a, "AUTH", "pw", NULL);
  send_cmd(a, "PING", NULL);
  send_cmd(b, "PING", NULL);
  run_for(&f, 10 * MS);
  char text[64];
  cr_assert_str_eq(REPLY(a), "+OK\r\n");
  cr_assert_str_eq(REPLY(a), "+PONG\r\n");
  cr_assert_str_eq(REPLY(b), "-NOAUTH Authentication required.\r\n");
  fixture_deinit(&f);
}

Test(sim_redis_server, a_crash_resets_every_connection_and_refuses_new_ones) {
  fixture_t f;
  fixture_init(&f, NULL);
  client_t *a = &f.clients[0], *b = &f.clients[1];
  cr_assert_eq(connect_client(&f, a, NULL), 0);
  cr_assert_eq(connect_client(&f, b, NULL), 0);
  send_cmd(a, "SET", "k", "v", NULL);
  run_for(&f, 10 * MS);
  cr_assert_eq(sim_redis_connections(f.m), 2);
  sim_redis_stop(f.m);
  run_for(&f, 10 * MS);
  cr_assert_eq(a->end, RT_ERESET);
  cr_assert_eq(b->end, RT_ERESET);
  cr_assert_eq(sim_redis_connections(f.m), 0);
  client_t *c = &f.clients[2];
  cr_assert_eq(connect_client(&f, c, NULL), RT_ECONNREFUSED);
  /* Back with its data. */
  cr_assert_eq(sim_redis_listen(f.m, f.sw, PORT), 0);
  cr_assert_eq(connect_client(&f, &f.clients[3], NULL), 0);
  send_cmd(&f.clients[3], "GET", "k", NULL);
  run_for(&f, 10 * MS);
  char text[64];
  cr_assert_str_eq(REPLY(&f.clients[3]), "$1\r\nv\r\n");
  free(c->data);
  c->data = NULL;
  fixture_deinit(&f);
}

Test(sim_redis_server, a_restart_without_data_loses_every_key) {
  fixture_t f;
  fixture_init(&f, NULL);
  client_t *a = &f.clients[0], *b = &f.clients[1];
  cr_assert_eq(connect_client(&f, a, NULL), 0);
  send_cmd(a, "SET", "k", "v", NULL);
  run_for(&f, 10 * MS);
  cr_assert_eq(sim_redis_restart(f.m, false), 0);
  run_for(&f, 10 * MS);
  cr_assert_eq(a->end, RT_ERESET);
  cr_assert_eq(connect_client(&f, b, NULL), 0);
  send_cmd(b, "GET", "k", NULL);
  run_for(&f, 10 * MS);
  char text[64];
  cr_assert_str_eq(REPLY(b), "$-1\r\n");
  fixture_deinit(&f);
}

Test(sim_redis_server, an_inline_command_is_answered_then_closed) {
  fixture_t f;
  fixture_init(&f, NULL);
  client_t *c = &f.clients[0];
  cr_assert_eq(connect_client(&f, c, NULL), 0);
  send_cmd(c, "PING", NULL);
  cr_assert_eq(rt_stream_write(c->stream, "PING\r\n", 6), 6);
  run_for(&f, 10 * MS);
  char text[256];
  cr_assert_str_eq(REPLY(c), "+PONG\r\n");
  cr_assert(strncmp(REPLY(c), "-ERR Protocol error: ", 21) == 0);
  cr_assert_eq(c->end, RT_EOF);
  sim_redis_stats_t st;
  sim_redis_get_stats(f.m, &st);
  cr_assert_eq(st.protocol_errors, 1);
  fixture_deinit(&f);
}

Test(sim_redis_server, before_auth_a_request_past_ten_arguments_is_refused) {
  sim_redis_config_t cfg = {.requirepass = "pw"};
  fixture_t f;
  fixture_init(&f, &cfg);
  client_t *a = &f.clients[0], *b = &f.clients[1], *c = &f.clients[2];
  cr_assert_eq(connect_client(&f, a, NULL), 0);
  cr_assert_eq(connect_client(&f, b, NULL), 0);
  cr_assert_eq(connect_client(&f, c, NULL), 0);
  /* 10 arguments: NOAUTH, the connection stays; 11: refused, closed. */
  send_cmd(a, "NOPE", "1", "2", "3", "4", "5", "6", "7", "8", "9", NULL);
  send_cmd(a, "NOPE", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", NULL);
  send_cmd(a, "PING", NULL);
  /* A value of 16384 bytes is read, one of 16385 is not. */
  char value[SIM_REDIS_UNAUTH_ARG_MAX + 2];
  memset(value, 'x', sizeof(value) - 1);
  value[sizeof(value) - 1] = '\0';
  send_cmd(c, "PING", value + 1, NULL);
  send_cmd(c, "PING", value, NULL);
  /* After AUTH, both are fine. */
  send_cmd(b, "AUTH", "pw", NULL);
  send_cmd(b, "EXISTS", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10",
           NULL);
  send_cmd(b, "PING", value, NULL);
  run_for(&f, 10 * MS);
  char text[SIM_REDIS_UNAUTH_ARG_MAX + 64];
  cr_assert_str_eq(REPLY(a), "-ERR unknown command 'NOPE', with args "
                             "beginning with: '1' '2' '3' '4' '5' '6' "
                             "'7' '8' '9' \r\n");
  cr_assert_str_eq(REPLY(a),
                   "-ERR Protocol error: unauthenticated multibulk length\r\n");
  cr_assert_eq(a->parsed, a->len, "PING was answered after the error");
  cr_assert_eq(a->end, RT_EOF);
  cr_assert_str_eq(REPLY(c), "-NOAUTH Authentication required.\r\n");
  cr_assert_str_eq(REPLY(c),
                   "-ERR Protocol error: unauthenticated bulk length\r\n");
  cr_assert_eq(c->end, RT_EOF);
  cr_assert_str_eq(REPLY(b), "+OK\r\n");
  cr_assert_str_eq(REPLY(b), ":0\r\n");
  cr_assert_eq(strlen(REPLY(b)), strlen("$16385\r\n") + strlen(value) + 2);
  cr_assert_eq(b->end, 0);
  fixture_deinit(&f);
}

/* A request of n arguments: EXISTS and n - 1 keys. */
static void send_exists(client_t *c, int n) {
  const char **argv = calloc((size_t)n, sizeof(*argv));
  size_t *lens = calloc((size_t)n, sizeof(*lens));
  argv[0] = "EXISTS";
  lens[0] = 6;
  for (int i = 1; i < n; i++) {
    argv[i] = "k";
    lens[i] = 1;
  }
  char *req = NULL;
  int len = redisFormatCommandArgv(&req, n, argv, lens);
  cr_assert_eq(rt_stream_write(c->stream, req, (size_t)len), len);
  free(req);
  free(argv);
  free(lens);
}

Test(sim_redis_server, a_request_of_args_max_arguments_is_run_one_more_is_not) {
  fixture_t f;
  fixture_init(&f, NULL);
  client_t *c = &f.clients[0];
  sim_link_config_t big = {.buffer = 1u << 20};
  cr_assert_eq(connect_client(&f, c, &big), 0);
  send_exists(c, SIM_REDIS_ARGS_MAX - 1);
  send_exists(c, SIM_REDIS_ARGS_MAX);
  send_exists(c, SIM_REDIS_ARGS_MAX + 1);
  run_for(&f, 10 * MS);
  char text[256];
  cr_assert_str_eq(REPLY(c), ":0\r\n");
  cr_assert_str_eq(REPLY(c), ":0\r\n");
  cr_assert_str_eq(REPLY(c),
                   "-ERR Protocol error: invalid multibulk length\r\n");
  cr_assert_eq(c->end, RT_EOF);
  fixture_deinit(&f);
}

Test(sim_redis_server, the_connection_past_conns_max_is_refused) {
  fixture_t f;
  fixture_init(&f, NULL);
  client_t *many = calloc(SIM_REDIS_CONNS_MAX + 1, sizeof(*many));
  for (uint32_t i = 0; i <= SIM_REDIS_CONNS_MAX; i++) {
    many[i].data = calloc(1, 256);
    many[i].reading = true;
    rt_actor_spec_t spec = {.name = "client",
                            .behaviour = client_behaviour,
                            .state = &many[i],
                            .mailbox_cap = 4};
    cr_assert_eq(rt_spawn(sim_world_rt(f.sw), &spec, &many[i].id), 0);
    cr_assert_eq(
        sim_connect(f.sw, PORT, many[i].id, NULL, NULL, &many[i].stream), 0);
    if (i % 256 == 255)
      run_for(&f, MS); /* within the listener's accept backlog */
  }
  run_for(&f, 10 * MS);
  cr_assert_eq(sim_redis_connections(f.m), SIM_REDIS_CONNS_MAX);
  client_t *last = &many[SIM_REDIS_CONNS_MAX];
  cr_assert_eq(last->len, 36);
  cr_assert(memcmp(last->data, "-ERR max number of clients reached\r\n", 36) ==
            0);
  cr_assert_eq(last->end, RT_EOF);
  cr_assert_eq(many[SIM_REDIS_CONNS_MAX - 1].end, 0);
  sim_redis_stats_t st;
  sim_redis_get_stats(f.m, &st);
  cr_assert_eq(st.refused, 1);
  fixture_deinit(&f);
  for (uint32_t i = 0; i <= SIM_REDIS_CONNS_MAX; i++)
    free(many[i].data);
  free(many);
}

Test(sim_redis_server, a_client_that_does_not_read_stops_the_server_reading) {
  fixture_t f;
  fixture_init(&f, NULL);
  client_t *c = &f.clients[0];
  cr_assert_eq(connect_client(&f, c, NULL), 0);
  char value[4096];
  memset(value, 'x', sizeof(value) - 1);
  value[sizeof(value) - 1] = '\0';
  send_cmd(c, "SET", "big", value, NULL);
  run_for(&f, 10 * MS);
  c->reading = false;
  /* 300 replies of 4 KB: far more than the pipe's buffer and the
   * server's SR_OUT_HIGH together. */
  for (int i = 0; i < 300; i++)
    send_cmd(c, "GET", "big", NULL);
  run_for(&f, 100 * MS);
  sim_redis_stats_t st;
  sim_redis_get_stats(f.m, &st);
  uint64_t stalled = st.commands;
  cr_assert_lt(stalled, 1 + 300, "the server read on");
  run_for(&f, 100 * MS);
  sim_redis_get_stats(f.m, &st);
  cr_assert_eq(st.commands, stalled, "the server ran more while stalled");
  c->reading = true;
  rt_stream_notify(c->stream, RT_STREAM_READABLE);
  run_for(&f, 1000 * MS);
  sim_redis_get_stats(f.m, &st);
  cr_assert_eq(st.commands, 1 + 300);
  char text[8192];
  cr_assert_str_eq(REPLY(c), "+OK\r\n");
  for (int i = 0; i < 300; i++)
    cr_assert_eq(strlen(REPLY(c)), 4095 + 9);
  fixture_deinit(&f);
}
