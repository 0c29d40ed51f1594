/* test_sim_redis_diff.c: the Redis model (sim/sim_redis.h) held against a
 * real redis-server, reply for reply.
 *
 * A seed draws a sequence of steps: the Cluster's own scripts
 * (game/game_cluster_lua.h, included as they are) sent by three
 * "instances" whose commands interleave, each with its incarnation, over
 * small pools of players, names, rooms, urls, lease and presence times;
 * the Cluster's inbox poll (LPOP inbox 64); an observer that reads state
 * (GET, EXISTS, ZRANGE, SMEMBERS, HMGET, PTTL, LRANGE, ...) and writes
 * behind the scripts' backs (a lease deleted or shortened, a ghost ticket,
 * a foreign room); commands that must fail (wrong types, wrong arity,
 * bad numbers, unknown commands, scripts that raise, convert odd values
 * or do not compile); AUTH when the seed sets a password, reconnects,
 * FLUSHALL as a data-losing restart, new incarnations, and waits that let
 * leases lapse. Each step goes to a real redis-server (tests/lib/
 * redis_tmp.h) over a plain socket, its reply read as raw bytes, and to
 * the model through sim_redis_command; the two replies must be the same
 * bytes. The command sequence is a function of the seed alone.
 *
 * Replies not compared byte for byte, and why:
 *  - SMEMBERS: Redis answers in its hash table's order (a set of
 *    non-integers is hashtable-encoded in 7.0; its order depends on a
 *    hash seed drawn at server start), the model in byte order. Compared
 *    as multisets of members.
 *  - LUA_RENEW: after its two counts it lists the lost rooms in the order
 *    SMEMBERS gave the lapsed incarnations and their rooms, so the same
 *    holds. Compared as: the first two elements exactly, then the rest as
 *    a multiset of 10-tuples (room, p1, n1, p2, n2, and the claimed
 *    result's reason, winner, s1, s2, at). Which rooms, which players,
 *    which results and how many is still exact; only their order is
 *    free. (The Cluster stores each tuple on its own, in any order.)
 *  - PTTL: a time. -2 and -1 exactly; a remaining time within the
 *    step's uncertainty (below).
 * No other script's reply depends on a set's order, and no script's
 * effects do, as long as no command fails inside LUA_RENEW's loops over
 * SMEMBERS: one failing halfway (a key of the wrong type) leaves the
 * effects of the iterations before it, which follow the set's order. The
 * Cluster never gives a key another type, so the generator's foreign
 * writes do so only to keys those loops do not read (WRITE_KEYS).
 *
 * Time. Real Redis reads its own clock; the model is given one. Each run
 * measures CLOCK_MONOTONIC just before a step's request is written (t0)
 * and just after its reply is read (t1): Redis ran the step at some
 * instant in [t0, t1]; the model runs it at the midpoint, in run time (ns
 * since the run started). So a deadline the model records (now + px, in
 * ms) differs from Redis's by at most the step's round trip plus 1 ms of
 * clock phase, and so does each expiry check. Exactness then needs only
 * that no step runs near a deadline:
 *  (1) Before a step, if the model holds a deadline within GUARD_MS of
 *      now (either side), the step waits until GUARD_MS past it, and the
 *      check is repeated right before the request is written.
 *  (2) Every step must take less than SLOW_MS (so GUARD_MS covers the
 *      deadline's own uncertainty, the step's, and the clock phase). A
 *      slower step makes the run void: it is thrown away and rerun from
 *      its seed (same commands), at most ATTEMPTS times; a seed that never
 *      runs clean is reported as skipped, and too many skips fail.
 *  (3) Rule (1) hides a key's last millisecond, so one kind of step looks
 *      at it on purpose (edge_probe): a script's frozen clock tells when
 *      Redis is exactly at a deadline, and the model is then run at exactly
 *      its own. An expiry one millisecond off fails there.
 * Waiting costs a run time but not the test: RUNS_PARALLEL runs proceed
 * at once, each against its own redis-server, interleaved step by step in
 * this one thread, so while one waits for a lease to lapse the others
 * work. Whether a lease has lapsed at a given step depends on how fast the
 * machine ran, so two runs of a seed may see different expiries; each run
 * is still exact, and a mismatch prints its seed, the first differing
 * command, both replies and the steps before it. A full run also fails
 * when a path of the scripts (COVERAGE: matched, playing, lost, fenced,
 * ...) was never reached: a path never taken is a path never checked.
 *
 * Usage: test_sim_redis_diff [--seeds N] [--first S] [--steps N]
 *                            [--seed S] [--parallel K] [--verbose]
 * (ctest runs the default: 200 seeds of 100 steps.)
 */
#define _GNU_SOURCE
#include "game_cluster_lua.h"
#include "redis_tmp.h"
#include "rt_rng.h"
#include "sim_redis.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SEEDS_DEFAULT 200u
#define STEPS_DEFAULT 100u
#define RUNS_PARALLEL 12u /* redis-servers, and runs at once */
#define ATTEMPTS 4        /* of one seed, before it is skipped */
#define GUARD_MS 40       /* (1) */
#define SLOW_MS 14        /* (2): SLOW_MS + (SLOW_MS + 1) + 2 < GUARD_MS */
#define MS 1000000LL
#define MODEL_EPOCH_NS (1000 * MS) /* run time 0 in the model's clock */

#define INSTANCES 3
#define OBSERVER INSTANCES
#define CLIENTS (INSTANCES + 1)
#define GENERATIONS 3 /* incarnations per instance: a/1, a/2, a/3, a/1 ... */
#define ARGS_MAX 16
#define STORE_MAX 40000 /* two arguments past SIM_REDIS_UNAUTH_ARG_MAX */
#define HISTORY 6
#define REPLY_MAX (1u << 20)
#define PASSWORD "s3cret pw"

/* ---- Time ---------------------------------------------------------------- */

static int64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void sleep_ns(int64_t ns) {
  if (ns <= 0)
    return;
  struct timespec ts = {.tv_sec = ns / 1000000000LL,
                        .tv_nsec = ns % 1000000000LL};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

/* ---- Commands ------------------------------------------------------------ */

typedef enum { CMP_EXACT = 0, CMP_SET, CMP_RENEW, CMP_TTL, CMP_EDGE } cmp_t;

typedef struct cmd {
  int client;
  int argc;
  const char *argv[ARGS_MAX];
  size_t lens[ARGS_MAX];
  const char *script_name; /* argv[1]'s name when it is a Cluster script */
  cmp_t cmp;
  char store[STORE_MAX];
  size_t store_len;
} cmd_t;

static void cmd_raw(cmd_t *c, const char *p, size_t n) {
  if (c->argc == ARGS_MAX || c->store_len + n + 1 > STORE_MAX) {
    fprintf(stderr, "diff: a generated command is too big\n");
    abort();
  }
  char *dst = c->store + c->store_len;
  memcpy(dst, p, n);
  dst[n] = '\0';
  c->store_len += n + 1;
  c->argv[c->argc] = dst;
  c->lens[c->argc++] = n;
}

static void cmd_arg(cmd_t *c, const char *s) { cmd_raw(c, s, strlen(s)); }

static void cmd_fmt(cmd_t *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void cmd_fmt(cmd_t *c, const char *fmt, ...) {
  char text[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(text, sizeof(text), fmt, ap);
  va_end(ap);
  cmd_arg(c, text);
}

/* Several plain arguments, NULL-terminated. */
static void cmd_args(cmd_t *c, ...) {
  va_list ap;
  va_start(ap, c);
  const char *s;
  while ((s = va_arg(ap, const char *)) != NULL)
    cmd_arg(c, s);
  va_end(ap);
}

/* EVAL script 0: the body is not copied (a static string). */
static void cmd_eval(cmd_t *c, const char *name, const char *body,
                     int numkeys) {
  cmd_arg(c, "EVAL");
  c->argv[c->argc] = body;
  c->lens[c->argc++] = strlen(body);
  c->script_name = name;
  cmd_fmt(c, "%d", numkeys);
}

/* Printable: bytes outside ASCII escaped, a Cluster script by name. */
static void describe(const char *p, size_t n, char *out, size_t cap) {
  size_t len = 0;
  for (size_t i = 0; i < n && len + 5 < cap; i++) {
    unsigned char ch = (unsigned char)p[i];
    if (ch >= 32 && ch < 127 && ch != '\\')
      out[len++] = (char)ch;
    else
      len += (size_t)snprintf(out + len, cap - len, "\\x%02x", ch);
  }
  if (len + 5 >= cap && cap > 4)
    memcpy(out + cap - 4, "...", 4), len = cap - 1;
  out[len < cap ? len : cap - 1] = '\0';
}

static void describe_cmd(const cmd_t *c, char *out, size_t cap) {
  size_t len = (size_t)snprintf(out, cap, "client %d:", c->client);
  for (int i = 0; i < c->argc && len + 8 < cap; i++) {
    char arg[160];
    if (i == 1 && c->script_name != NULL)
      snprintf(arg, sizeof(arg), "<%s>", c->script_name);
    else
      describe(c->argv[i], c->lens[i], arg, sizeof(arg));
    len += (size_t)snprintf(out + len, cap - len, " \"%s\"", arg);
  }
}

/* ---- A connection to the real server ------------------------------------- */

typedef struct conn {
  int fd;
  redisReader *reader;
  sim_redis_client_t model; /* the same connection's state in the model */
  bool needs_auth;          /* the generator has not yet sent AUTH */
} conn_t;

static int conn_open(conn_t *c, uint16_t port) {
  c->fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_port = htons(port),
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  struct timeval tv = {.tv_sec = 10};
  int one = 1;
  if (c->fd < 0 ||
      setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
      setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0 ||
      connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
    perror("diff: connect to redis-server");
    return -1;
  }
  c->reader = redisReaderCreate();
  return c->reader != NULL ? 0 : -1;
}

static void conn_close(conn_t *c) {
  if (c->fd >= 0)
    close(c->fd);
  if (c->reader != NULL)
    redisReaderFree(c->reader);
  c->fd = -1;
  c->reader = NULL;
}

/* Send argv; the raw bytes of the one reply into *out. */
static int conn_call(conn_t *c, const cmd_t *cmd, sim_redis_buf_t *out) {
  char *req = NULL;
  const char *argv[ARGS_MAX];
  memcpy(argv, cmd->argv, sizeof(argv));
  int n = redisFormatCommandArgv(&req, cmd->argc, argv, cmd->lens);
  if (n < 0 || write(c->fd, req, (size_t)n) != n) {
    free(req);
    return -1;
  }
  free(req);
  void *reply = NULL;
  while (reply == NULL) {
    char buf[16384];
    ssize_t got = read(c->fd, buf, sizeof(buf));
    if (got <= 0 || out->len + (size_t)got > REPLY_MAX)
      return -1;
    uint8_t *data = realloc(out->data, out->len + (size_t)got);
    if (data == NULL)
      return -1;
    out->data = data;
    memcpy(out->data + out->len, buf, (size_t)got);
    out->len += (size_t)got;
    out->cap = out->len;
    if (redisReaderFeed(c->reader, buf, (size_t)got) != REDIS_OK ||
        redisReaderGetReply(c->reader, &reply) != REDIS_OK)
      return -1;
  }
  freeReplyObject(reply);
  return 0;
}

/* ---- A run: one seed against one server ---------------------------------- */

typedef struct run {
  uint64_t seed;
  int attempt;
  uint32_t step, steps;
  rt_rng_t rng;
  redis_tmp_t *server;
  redisContext *admin; /* the slot's, authenticated for good */
  sim_redis_t *model;
  conn_t conns[CLIENTS];
  bool password;
  int generation[INSTANCES];
  bool needs_renew[INSTANCES]; /* connected or reborn, not yet renewed */
  int64_t start_ns, ready_ns, uncertainty_ns;
  bool voided;
  uint64_t *coverage; /* COV_COUNT counters, the tally's */
  char history[HISTORY][512];
  uint32_t history_len;
} run_t;

static bool admin_ok(redisContext *admin, const char *fmt, const char *arg) {
  redisReply *r = redisCommand(admin, fmt, arg);
  bool ok = r != NULL && r->type == REDIS_REPLY_STATUS;
  if (r != NULL)
    freeReplyObject(r);
  return ok;
}

static int run_start(run_t *r) {
  rt_rng_init(&r->rng, r->seed, RT_RNG_KEY(RT_RNG_SUB_TEST, 0x5ed15));
  r->password = rt_rng_below(&r->rng, 10) < 3;
  sim_redis_config_t cfg = {0};
  if (r->password)
    snprintf(cfg.requirepass, sizeof(cfg.requirepass), "%s", PASSWORD);
  if (!admin_ok(r->admin, "FLUSHALL%s", "") ||
      !admin_ok(r->admin, "CONFIG SET requirepass %s", cfg.requirepass))
    return -1;
  r->model = sim_redis_create(&cfg);
  if (r->model == NULL)
    return -1;
  for (int i = 0; i < CLIENTS; i++) {
    if (conn_open(&r->conns[i], r->server->port) < 0)
      return -1;
    sim_redis_client_init(r->model, &r->conns[i].model);
    r->conns[i].needs_auth = r->password;
  }
  for (int i = 0; i < INSTANCES; i++) {
    r->generation[i] = 0;
    r->needs_renew[i] = true;
  }
  r->step = 0;
  r->uncertainty_ns = 0;
  r->voided = false;
  r->history_len = 0;
  r->start_ns = r->ready_ns = mono_ns();
  return 0;
}

static void run_stop(run_t *r) {
  for (int i = 0; i < CLIENTS; i++)
    conn_close(&r->conns[i]);
  sim_redis_destroy(r->model);
  r->model = NULL;
}

static int reconnect(run_t *r, int client) {
  conn_t *c = &r->conns[client];
  conn_close(c);
  if (conn_open(c, r->server->port) < 0)
    return -1;
  sim_redis_client_init(r->model, &c->model);
  c->needs_auth = r->password;
  if (client < INSTANCES)
    r->needs_renew[client] = true;
  return 0;
}

/* ---- Pools --------------------------------------------------------------- */

static const char *const PLAYERS[] = {"p1", "p2", "p3", "p4", "p5", "p6"};
static const char *const NAMES[] = {"Ann",    "Bob", "Zo\xc3\xab",
                                    "a\r\nb", "",    "Dee Dee"};
static const char *const ROOMS[] = {"r1", "r2", "r3", "r4", "r5"};
/* Mostly the Cluster's 3 s; short ones lapse within a run. */
static const char *const LEASES[] = {"3000", "3000", "3000", "3000",
                                     "300",  "150",  "90",   "40"};
static const char *const PRESENCES[] = {"60", "250", "1000", "60000"};
static const char *const GHOSTS[] = {"0", "1", "64"};
/* A claim's result: reason, winner, scores, finished at. */
static const char *const REASONS[] = {"time", "quit", "opponent_disconnected"};
static const char *const WINNERS[] = {"p1", "p2", "draw"};
static const char *const SCORES[] = {"0", "7", "131"};
static const char *const SHORT_MS[] = {"30", "80", "200", "100000"};
/* Keys of every type the scripts make, and a few of their own, for
 * commands that read or remove. */
static const char *const KEYS[] = {
    "oc:lease:a/1", "oc:epochs",   "oc:queue",       "oc:ticket:p1",
    "oc:inbox:a/1", "oc:qseq",     "oc:presence:p2", "oc:room:r1",
    "oc:end:r1",    "oc:dead:b/1", "oc:tickets:a/1", "oc:rooms:b/1",
    "w:list",       "w:set",       "w:str",          "w:zset"};
/* Keys a command may give another type. Not the ones LUA_RENEW's loops
 * over SMEMBERS read (oc:tickets:*, oc:ticket:*, oc:queue, oc:rooms:*,
 * oc:room:*): a command failing inside such a loop leaves the effects of
 * the iterations before it, which depend on the set's order, unspecified
 * in Redis. The Cluster never gives a key another type, so a script
 * failing halfway is not something it meets. */
static const char *const WRITE_KEYS[] = {
    "oc:lease:a/1",   "oc:epochs", "oc:inbox:a/1", "oc:qseq",
    "oc:presence:p2", "oc:end:r1", "oc:dead:b/1",  "w:list",
    "w:set",          "w:str",     "w:zset"};

#define PICK(r, pool)                                                          \
  (pool)[rt_rng_below(&(r)->rng, sizeof(pool) / sizeof((pool)[0]))]

static bool chance(run_t *r, unsigned percent) {
  return rt_rng_below(&r->rng, 100) < percent;
}

/* An incarnation: the instance's current one, or any in the pools. */
static void incarnation(const run_t *r, int instance, int generation, char *out,
                        size_t cap) {
  (void)r;
  snprintf(out, cap, "%c/%d", 'a' + instance, generation % GENERATIONS + 1);
}

static void my_epoch(const run_t *r, int instance, char *out, size_t cap) {
  incarnation(r, instance, r->generation[instance], out, cap);
}

static void any_epoch(run_t *r, char *out, size_t cap) {
  int instance = (int)rt_rng_below(&r->rng, INSTANCES);
  incarnation(r, instance, (int)rt_rng_below(&r->rng, GENERATIONS), out, cap);
}

/* ---- Steps: the Cluster's own ---------------------------------------------
 */

static void gen_renew(run_t *r, cmd_t *c) {
  char e[16];
  my_epoch(r, c->client, e, sizeof(e));
  cmd_eval(c, "LUA_RENEW", LUA_RENEW, 0);
  cmd_arg(c, e);
  cmd_fmt(c, "ws://%c.example:8001/ws", 'a' + c->client);
  cmd_arg(c, PICK(r, LEASES));
  static const char *const was_up[] = {"1", "1", "0"};
  cmd_arg(c, PICK(r, was_up));
  c->cmp = CMP_RENEW;
}

static void gen_match(run_t *r, cmd_t *c) {
  char e[16];
  my_epoch(r, c->client, e, sizeof(e));
  cmd_eval(c, "LUA_MATCH", LUA_MATCH, 0);
  cmd_args(c, PICK(r, PLAYERS), PICK(r, NAMES), e, PICK(r, ROOMS),
           PICK(r, PRESENCES), PICK(r, GHOSTS), NULL);
  cmd_fmt(c, "ws://%c.example:8001/ws", 'a' + c->client);
}

static void gen_unqueue(run_t *r, cmd_t *c) {
  char e[16];
  my_epoch(r, c->client, e, sizeof(e));
  cmd_eval(c, "LUA_UNQUEUE", LUA_UNQUEUE, 0);
  cmd_args(c, PICK(r, PLAYERS), e, NULL);
}

static void gen_lookup(run_t *r, cmd_t *c) {
  char e[16];
  my_epoch(r, c->client, e, sizeof(e));
  cmd_eval(c, "LUA_LOOKUP", LUA_LOOKUP, 0);
  cmd_args(c, PICK(r, PLAYERS), e, NULL);
  cmd_fmt(c, "ws://%c.example:8001/ws", 'a' + c->client);
}

static void gen_stored(run_t *r, cmd_t *c) {
  cmd_eval(c, "LUA_STORED", LUA_STORED, 0);
  cmd_args(c, PICK(r, ROOMS), NULL);
}

static void gen_claim(run_t *r, cmd_t *c) {
  char e[16];
  my_epoch(r, c->client, e, sizeof(e));
  cmd_eval(c, "LUA_CLAIM", LUA_CLAIM, 0);
  cmd_args(c, PICK(r, ROOMS), e, PICK(r, REASONS), PICK(r, WINNERS),
           PICK(r, SCORES), PICK(r, SCORES), NULL);
  cmd_fmt(c, "%u", 1700000000u + (unsigned)rt_rng_below(&r->rng, 100));
}

static void gen_finished(run_t *r, cmd_t *c) {
  cmd_eval(c, "LUA_FINISHED", LUA_FINISHED, 0);
  cmd_args(c, PICK(r, ROOMS), NULL);
}

static void gen_poll(run_t *r, cmd_t *c) {
  char e[16];
  my_epoch(r, c->client, e, sizeof(e));
  cmd_arg(c, "LPOP");
  cmd_fmt(c, "oc:inbox:%s", e);
  static const char *const counts[] = {"64", "64", "1", "2"};
  cmd_arg(c, PICK(r, counts));
}

/* ---- Steps from templates: the observer, foreign writes, odd calls ------- */

/* A command whose arguments may hold, drawn once per command: {E} an
 * incarnation, {P} a player, {Q} another draw of a player, {R} a room, {N}
 * a name, {T} a short time (ms), {S} a presence time (ms), {K} a key of
 * any type, {W} a key a command may give another type (WRITE_KEYS). */
typedef struct template {
  cmp_t cmp;
  const char *argv[ARGS_MAX];
}
template_t;

/* The observer reads what the scripts leave. */
static const template_t OBSERVE[] = {
    {CMP_EXACT, {"GET", "oc:lease:{E}"}},
    {CMP_EXACT, {"EXISTS", "oc:dead:{E}", "oc:lease:{E}"}},
    {CMP_EXACT, {"ZRANGE", "oc:queue", "0", "-1", "WITHSCORES"}},
    {CMP_SET, {"SMEMBERS", "oc:epochs"}},
    {CMP_SET, {"SMEMBERS", "oc:tickets:{E}"}},
    {CMP_SET, {"SMEMBERS", "oc:rooms:{E}"}},
    {CMP_EXACT, {"HMGET", "oc:room:{R}", "e", "p1", "n1", "p2", "n2"}},
    {CMP_EXACT, {"HMGET", "oc:room:{R}", "reason", "winner", "s1", "s2", "at"}},
    {CMP_EXACT, {"HGET", "oc:ticket:{P}", "e"}},
    {CMP_EXACT, {"GET", "oc:presence:{P}"}},
    {CMP_EXACT, {"GET", "oc:end:{R}"}},
    {CMP_TTL, {"PTTL", "oc:lease:{E}"}},
    {CMP_TTL, {"PTTL", "oc:dead:{E}"}},
    {CMP_TTL, {"PTTL", "oc:presence:{P}"}},
    {CMP_TTL, {"PTTL", "oc:room:{R}"}},
    {CMP_EXACT, {"LRANGE", "oc:inbox:{E}", "0", "-1"}},
    {CMP_EXACT, {"LINDEX", "oc:inbox:{E}", "-1"}},
    {CMP_EXACT, {"ZSCORE", "oc:queue", "{P}"}},
    {CMP_EXACT, {"ZCARD", "oc:queue"}},
    {CMP_EXACT, {"SCARD", "oc:epochs"}},
    {CMP_EXACT, {"SISMEMBER", "oc:epochs", "{E}"}},
    {CMP_EXACT, {"GET", "oc:qseq"}},
};

/* Writes behind the scripts' backs, each of the type the scripts expect:
 * a lease gone or shortened, a fenced incarnation, a ghost ticket, a
 * foreign room, notes. */
static const template_t MUTATE[] = {
    {CMP_EXACT, {"DEL", "oc:lease:{E}"}},
    {CMP_EXACT, {"PEXPIRE", "oc:lease:{E}", "{T}"}},
    {CMP_EXACT, {"SET", "oc:dead:{E}", "1", "EX", "86400"}},
    {CMP_EXACT, {"DEL", "oc:dead:{E}"}},
    {CMP_EXACT, {"HSET", "oc:ticket:{P}", "e", "{E}", "n", "{N}"}},
    {CMP_EXACT, {"ZADD", "oc:queue", "{T}", "{P}"}},
    {CMP_EXACT, {"SADD", "oc:tickets:{E}", "{P}"}},
    {CMP_EXACT, {"RPUSH", "oc:inbox:{E}", "T\t{P}"}},
    {CMP_EXACT, {"SET", "oc:presence:{P}", "{R}", "PX", "{S}"}},
    {CMP_EXACT,
     {"HSET", "oc:room:{R}", "e", "{E}", "p1", "{P}", "n1", "{N}", "p2", "{Q}",
      "n2", "Bob"}},
    {CMP_EXACT, {"PEXPIRE", "oc:room:{R}", "{T}"}},
    {CMP_EXACT, {"SADD", "oc:rooms:{E}", "{R}"}},
    {CMP_EXACT, {"SADD", "oc:epochs", "{E}"}},
    {CMP_EXACT, {"SREM", "oc:epochs", "{E}"}},
    {CMP_EXACT, {"SET", "oc:end:{R}", "done", "EX", "86400"}},
};

/* Plain commands with odd arguments: wrong types, arity, numbers, options,
 * unknown commands. */
static const template_t WILD[] = {
    {CMP_EXACT, {"GET", "{K}"}},
    {CMP_EXACT, {"INCR", "{W}"}},
    {CMP_EXACT, {"incr", "{W}"}},
    {CMP_EXACT, {"LPOP", "{K}"}},
    {CMP_EXACT, {"LPOP", "{K}", "-1"}},
    {CMP_EXACT, {"LPOP", "{K}", "0"}},
    {CMP_EXACT, {"LPOP", "{K}", "abc"}},
    {CMP_EXACT, {"LPOP", "{K}", "1", "2"}},
    {CMP_EXACT, {"SET", "{W}", "v", "PX", "0"}},
    {CMP_EXACT, {"SET", "{W}", "v", "EX", "1x"}},
    {CMP_EXACT, {"SET", "{W}", "v", "NX", "XX"}},
    {CMP_EXACT, {"SET", "{W}", "v", "GET"}},
    {CMP_EXACT, {"SET", "{W}", "v", "KEEPTTL"}},
    {CMP_EXACT, {"SET", "{W}", "v", "XX"}},
    {CMP_EXACT, {"SET", "{W}", "v", "nx", "px", "{S}"}},
    {CMP_EXACT, {"SET", "{W}", "v", "EX", "1", "EX", "2"}},
    {CMP_EXACT, {"SET", "{W}", "v", "PX"}},
    {CMP_EXACT, {"PEXPIRE", "{K}", "100", "bogus"}},
    {CMP_EXACT, {"PEXPIRE", "{K}", "100", "nx", "xx"}},
    {CMP_EXACT, {"PEXPIRE", "{K}", "100", "gt", "lt"}},
    {CMP_EXACT, {"PEXPIRE", "{K}", "0"}},
    {CMP_EXACT, {"PEXPIRE", "{K}", "-5"}},
    {CMP_EXACT, {"PEXPIRE", "{K}", "{S}", "gt"}},
    {CMP_EXACT, {"PEXPIRE", "{K}", "{S}", "lt"}},
    {CMP_EXACT, {"PEXPIRE", "{K}", "{S}", "nx"}},
    {CMP_EXACT, {"PEXPIRE", "{K}", "{S}", "xx"}},
    {CMP_EXACT, {"PEXPIRE", "{K}", "abc"}},
    {CMP_EXACT, {"ZADD", "{W}", "abc", "p1"}},
    {CMP_EXACT, {"ZADD", "{W}", "1", "p1", "2"}},
    {CMP_EXACT, {"ZADD", "{W}", "nx", "xx", "1", "p1"}},
    {CMP_EXACT, {"ZADD", "{W}", "1.5", "p1"}},
    {CMP_EXACT, {"ZADD", "{W}", "-0", "p2"}},
    {CMP_EXACT, {"ZADD", "{W}", "inf", "p3", "-inf", "p4"}},
    {CMP_EXACT, {"ZADD", "{W}", "xx", "ch", "5", "p1"}},
    {CMP_EXACT, {"ZADD", "{W}", "gt", "ch", "7", "p1", "8", "p9"}},
    {CMP_EXACT, {"ZADD", "{W}", "nan", "p1"}},
    {CMP_EXACT, {"ZADD", "{W}", "0x10", "p5", "1e-300", "p6"}},
    {CMP_EXACT, {"ZADD", "{W}", "1"}},
    {CMP_EXACT, {"ZRANGE", "{K}", "a", "b"}},
    {CMP_EXACT, {"ZRANGE", "{K}", "0", "-1", "WITHSCORES"}},
    {CMP_EXACT, {"ZRANGE", "{K}", "-2", "-1"}},
    {CMP_EXACT, {"ZRANGE", "{K}", "0", "-1", "bogus"}},
    {CMP_EXACT, {"ZSCORE", "{K}", "p1"}},
    {CMP_EXACT, {"ZREM", "{K}", "p1", "p2"}},
    {CMP_EXACT, {"ZCARD", "{K}"}},
    {CMP_EXACT, {"HSET", "{W}", "f"}},
    {CMP_EXACT, {"HSET", "{W}", "f", "v"}},
    {CMP_EXACT, {"HSET"}},
    {CMP_EXACT, {"HGET", "{K}", "f"}},
    {CMP_EXACT, {"HMGET", "{K}", "f", "e"}},
    {CMP_EXACT, {"LRANGE", "{K}", "0", "-1"}},
    {CMP_EXACT, {"LRANGE", "{K}", "x", "1"}},
    {CMP_EXACT, {"LINDEX", "{K}", "x"}},
    {CMP_EXACT, {"LINDEX", "{K}", "-1"}},
    {CMP_EXACT, {"LTRIM", "{K}", "1", "-1"}},
    {CMP_EXACT, {"LTRIM", "{K}", "5", "1"}},
    {CMP_EXACT, {"RPUSH", "{W}", "a", "b", "c"}},
    {CMP_EXACT, {"SADD", "{W}", "a", "b"}},
    {CMP_EXACT, {"SREM", "{K}", "a"}},
    {CMP_EXACT, {"SISMEMBER", "{K}", "a"}},
    {CMP_EXACT, {"SCARD", "{K}"}},
    {CMP_SET, {"Smembers", "{K}"}},
    {CMP_EXACT, {"EXISTS", "{K}", "{K}"}},
    {CMP_EXACT, {"DEL", "{K}", "w:none"}},
    {CMP_TTL, {"PTTL", "{K}"}},
    {CMP_EXACT, {"FOO", "a", "b"}},
    {CMP_EXACT, {"fooooo"}},
    {CMP_EXACT,
     {"NOPE", "an argument longer than a hundred and twenty-eight bytes, "
              "so that Redis's quoting of it in the error is cut short, "
              "somewhere around here, or here"}},
    {CMP_EXACT, {"GET"}},
    {CMP_EXACT, {"GET", "a", "b"}},
    {CMP_EXACT, {"PING"}},
    {CMP_EXACT, {"PING", "hello there"}},
    {CMP_EXACT, {"PING", "a", "b"}},
    {CMP_EXACT, {"FLUSHALL", "bogus"}},
    {CMP_EXACT, {"EVAL", "return 1", "-1"}},
    {CMP_EXACT, {"EVAL", "return 1", "5"}},
    {CMP_EXACT, {"EVAL", "return 1", "abc"}},
    {CMP_EXACT, {"AUTH", "a", "b", "c"}},
};

/* At and past the limits Redis puts on a request before AUTH
 * (SIM_REDIS_UNAUTH_ARGS_MAX, SIM_REDIS_UNAUTH_ARG_MAX). */
static const template_t UNAUTH[] = {
    {CMP_EXACT, {"SET", "{W}", "{l}"}},
    {CMP_EXACT, {"SET", "{W}", "{L}"}},
    {CMP_EXACT, {"PING", "{L}"}},
    {CMP_EXACT, {"EXISTS", "{K}", "2", "3", "4", "5", "6", "7", "8", "9"}},
    {CMP_EXACT,
     {"EXISTS", "{K}", "2", "3", "4", "5", "6", "7", "8", "9", "10"}},
    {CMP_EXACT, {"NOPE", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10"}},
};

typedef struct draws {
  char epoch[16];
  const char *player, *other, *room, *name, *short_ms, *presence, *key,
      *write_key;
} draws_t;

static void draw(run_t *r, draws_t *d) {
  any_epoch(r, d->epoch, sizeof(d->epoch));
  d->player = PICK(r, PLAYERS);
  d->other = PICK(r, PLAYERS);
  d->room = PICK(r, ROOMS);
  d->name = PICK(r, NAMES);
  d->short_ms = PICK(r, SHORT_MS);
  d->presence = PICK(r, PRESENCES);
  d->key = PICK(r, KEYS);
  d->write_key = PICK(r, WRITE_KEYS);
}

static const char *placeholder(const draws_t *d, char name) {
  switch (name) {
  case 'E': return d->epoch;
  case 'P': return d->player;
  case 'Q': return d->other;
  case 'R': return d->room;
  case 'N': return d->name;
  case 'T': return d->short_ms;
  case 'S': return d->presence;
  case 'K': return d->key;
  case 'W': return d->write_key;
  default: return NULL;
  }
}

/* {l} and {L}: a value at SIM_REDIS_UNAUTH_ARG_MAX bytes, and one past. */
static bool expand_long(cmd_t *c, const char *arg) {
  if (strcmp(arg, "{l}") != 0 && strcmp(arg, "{L}") != 0)
    return false;
  size_t n = SIM_REDIS_UNAUTH_ARG_MAX + (arg[1] == 'L');
  char *value = malloc(n);
  memset(value, 'x', n);
  cmd_raw(c, value, n);
  free(value);
  return true;
}

/* One argument with its placeholders filled. */
static void expand(cmd_t *c, const char *arg, const draws_t *d) {
  if (expand_long(c, arg))
    return;
  char out[512];
  size_t len = 0;
  for (const char *p = arg; *p != '\0';) {
    const char *value = p[0] == '{' && p[1] != '\0' && p[2] == '}'
                            ? placeholder(d, p[1])
                            : NULL;
    const char *piece = value != NULL ? value : p;
    size_t n = value != NULL ? strlen(value) : 1;
    if (len + n >= sizeof(out))
      abort();
    memcpy(out + len, piece, n);
    len += n;
    p += value != NULL ? 3 : 1;
  }
  cmd_raw(c, out, len);
}

static void gen_template(run_t *r, cmd_t *c, const template_t *t, size_t n) {
  const template_t *pick = &t[rt_rng_below(&r->rng, n)];
  draws_t d;
  draw(r, &d);
  for (int i = 0; i < ARGS_MAX && pick->argv[i] != NULL; i++)
    expand(c, pick->argv[i], &d);
  c->cmp = pick->cmp;
}

static void gen_observe(run_t *r, cmd_t *c) {
  gen_template(r, c, OBSERVE, sizeof(OBSERVE) / sizeof(OBSERVE[0]));
}

static void gen_mutate(run_t *r, cmd_t *c) {
  gen_template(r, c, MUTATE, sizeof(MUTATE) / sizeof(MUTATE[0]));
}

static void gen_wild(run_t *r, cmd_t *c) {
  if (chance(r, 10))
    gen_template(r, c, UNAUTH, sizeof(UNAUTH) / sizeof(UNAUTH[0]));
  else
    gen_template(r, c, WILD, sizeof(WILD) / sizeof(WILD[0]));
}

/* Scripts that raise, convert odd values, or do not compile. */
static const char *const WILD_SCRIPTS[] = {
    "return redis.call('GET')",
    "return redis.call('GET', KEYS[1])",
    "return {err='My error'}",
    "return {ok='fine'}",
    "return redis.error_reply('X y')",
    "return redis.error_reply('boom')",
    "return redis.status_reply('OK')",
    "return {1, nil, 2}",
    "return {1.5, -2.7, 'x', false, true, {1, {2}}, 1e20}",
    "return redis.pcall('INCR', KEYS[1])",
    "return redis.call('INCR', KEYS[1])",
    "return +",
    "return x",
    "x = 1",
    "return redis.call('EVAL', 'return 1', '0')",
    "return redis.call('NOPE')",
    "return redis.call('HMGET', KEYS[1], 'e', 'zz')",
    "return #redis.call('ZRANGE', 'oc:queue', 0, -1)",
    "return redis.call('ZRANGE', 'oc:queue', 0, -1, 'WITHSCORES')",
    "return redis.sha1hex(ARGV[1] or '')",
    "return tostring(3.25) .. (ARGV[1] or '')",
    "return {redis.call('SET', KEYS[1], 'v', 'NX'), redis.call('GET', "
    "KEYS[1])}",
    "return redis.call('SET', KEYS[1], 'v', 'PX', 0)",
    "return redis.call('LPOP', KEYS[1], 2)",
    "return redis.call('PTTL', KEYS[1]) >= -2",
    "error('raw')",
    "error({err='tbl'})",
    "local t = redis.pcall('GET', 'a', 'b') return t.err",
    "return redis.call('EXISTS', KEYS[1], KEYS[1])",
    "return {ARGV[1], ARGV[2], #ARGV}",
    "return {redis.call('PING'), redis.pcall('ZADD', KEYS[1], 'x', 'm')}",
    "local n = 0\nfor i = 1, 10 do n = n + i end\nreturn redis.call('RPUSH', "
    "KEYS[1], n)",
    "return redis.call('SET', KEYS[1], 1.5, 'KEEPTTL')",
    "return redis.call('LRANGE', KEYS[1], 0, -1)",
    "return redis.call('ZSCORE', KEYS[1], ARGV[1] or 'p1')",
};

static void gen_wild_script(run_t *r, cmd_t *c) {
  cmd_eval(c, NULL, PICK(r, WILD_SCRIPTS), 1);
  cmd_arg(c, PICK(r, WRITE_KEYS));
  if (chance(r, 70))
    cmd_arg(c, PICK(r, PLAYERS));
  if (chance(r, 30))
    cmd_arg(c, "-0");
}

static void gen_auth(run_t *r, cmd_t *c) {
  conn_t *conn = &r->conns[c->client];
  unsigned kind = (unsigned)rt_rng_below(&r->rng, 10);
  cmd_arg(c, "AUTH");
  if (kind < 6 || !r->password) { /* the right one, as the Cluster sends it */
    if (kind % 2 == 1)
      cmd_arg(c, "default");
    cmd_arg(c, r->password ? PASSWORD : "whatever");
    conn->needs_auth = false;
  } else if (kind < 8) {
    cmd_arg(c, "wrong");
  } else {
    cmd_args(c, kind == 8 ? "default" : "bob", "wrong", NULL);
  }
}

/* Rule (1) keeps every other step 30 ms from a deadline, so it cannot
 * tell "gone at D" from "gone after D". This step can: it sets a key with
 * PX EDGE_PX and asks real Redis, in one script, the key's PTTL and
 * whether it exists, again and again. A script sees one time for EXISTS
 * and an equal or later one for PTTL, so a reply {0, 1} means Redis is in
 * the key's last millisecond, D: the model, run at exactly its own D, must
 * answer the same bytes. The first {-2, 0} is D + 1 (or later): the model
 * at its D + 1 ms must answer that. */
#define EDGE_KEY "w:edge"
#define EDGE_PX "2"
#define EDGE_SPIN_MS 50
static const char EDGE_SCRIPT[] =
    "return {redis.call('PTTL', KEYS[1]), redis.call('EXISTS', KEYS[1])}";

static void gen_edge(run_t *r, cmd_t *c) {
  (void)r;
  cmd_args(c, "SET", EDGE_KEY, "v", "PX", EDGE_PX, NULL);
  c->cmp = CMP_EDGE;
}

/* ---- The step table ------------------------------------------------------ */

typedef enum {
  ST_COMMAND = 0, /* a command is in *c */
  ST_WAIT,        /* nothing to send: wait */
  ST_ERROR,       /* the run could not go on */
} step_kind_t;

typedef void gen_fn(run_t *r, cmd_t *c);

typedef struct step_spec {
  unsigned weight;
  bool instance; /* sent by an instance (else the observer) */
  gen_fn *gen;
} step_spec_t;

static const step_spec_t STEPS[] = {
    {18, true, gen_renew},    {18, true, gen_match},
    {5, true, gen_unqueue},   {8, true, gen_lookup},
    {8, true, gen_claim},     {8, true, gen_poll},
    {4, true, gen_stored},    {4, true, gen_finished},
    {14, false, gen_observe}, {6, false, gen_mutate},
    {4, false, gen_wild},     {4, false, gen_wild_script},
    {1, false, gen_edge},
};

/* Steps that send nothing, or change connections: weights out of 1000. */
#define W_WAIT 35
#define W_FLUSH 8
#define W_RECONNECT 15
#define W_REINCARNATE 15
#define W_AUTH 10

static int pick_client(run_t *r, bool instance) {
  return instance ? (int)rt_rng_below(&r->rng, INSTANCES) : OBSERVER;
}

static void gen_regular(run_t *r, cmd_t *c) {
  unsigned total = 0;
  for (size_t i = 0; i < sizeof(STEPS) / sizeof(STEPS[0]); i++)
    total += STEPS[i].weight;
  unsigned x = (unsigned)rt_rng_below(&r->rng, total);
  size_t i = 0;
  while (x >= STEPS[i].weight)
    x -= STEPS[i++].weight;
  c->client = pick_client(r, STEPS[i].instance);
  /* A connection that owes AUTH mostly sends it first (the Cluster
   * always does); the rest of the time its command meets NOAUTH. */
  if (r->conns[c->client].needs_auth) {
    if (chance(r, 85))
      gen_auth(r, c);
    else if (chance(r, 40))
      gen_template(r, c, UNAUTH, sizeof(UNAUTH) / sizeof(UNAUTH[0]));
    else
      STEPS[i].gen(r, c);
    return;
  }
  /* And an instance renews first, as the Cluster does once connected. */
  if (c->client < INSTANCES && r->needs_renew[c->client] && chance(r, 90)) {
    r->needs_renew[c->client] = false;
    gen_renew(r, c);
    return;
  }
  STEPS[i].gen(r, c);
}

/* Draw the next step. *wait_ns for ST_WAIT. */
static step_kind_t gen_step(run_t *r, cmd_t *c, int64_t *wait_ns) {
  memset(c, 0, sizeof(*c));
  unsigned x = (unsigned)rt_rng_below(&r->rng, 1000);
  if (x < W_WAIT) {
    *wait_ns = rt_rng_range(&r->rng, 20, 350) * MS;
    return ST_WAIT;
  }
  x -= W_WAIT;
  if (x < W_FLUSH) { /* Redis restarted without its data */
    c->client = OBSERVER;
    cmd_arg(c, "FLUSHALL");
    for (int i = 0; i < CLIENTS; i++)
      if (chance(r, 50) && reconnect(r, i) < 0)
        return ST_ERROR;
    return ST_COMMAND;
  }
  x -= W_FLUSH;
  if (x < W_RECONNECT + W_REINCARNATE) {
    int client = (int)rt_rng_below(&r->rng, CLIENTS);
    if (x >= W_RECONNECT && client < INSTANCES)
      r->generation[client]++; /* a restarted instance: a new incarnation */
    *wait_ns = 0;
    return reconnect(r, client) < 0 ? ST_ERROR : ST_WAIT;
  }
  x -= W_RECONNECT + W_REINCARNATE;
  if (x < W_AUTH) {
    c->client = (int)rt_rng_below(&r->rng, CLIENTS);
    gen_auth(r, c);
    return ST_COMMAND;
  }
  gen_regular(r, c);
  return ST_COMMAND;
}

/* ---- Comparing ----------------------------------------------------------- */

static redisReply *parse(const sim_redis_buf_t *b) {
  redisReader *rd = redisReaderCreate();
  void *reply = NULL;
  if (redisReaderFeed(rd, (const char *)b->data, b->len) != REDIS_OK ||
      redisReaderGetReply(rd, &reply) != REDIS_OK)
    reply = NULL;
  redisReaderFree(rd);
  return reply;
}

static int elem_cmp(const redisReply *a, const redisReply *b) {
  if (a->type != b->type)
    return a->type < b->type ? -1 : 1;
  if (a->type == REDIS_REPLY_INTEGER)
    return a->integer < b->integer ? -1 : a->integer > b->integer;
  size_t n = a->len < b->len ? a->len : b->len;
  int c = n > 0 ? memcmp(a->str, b->str, n) : 0;
  return c != 0 ? c : (a->len < b->len ? -1 : a->len > b->len);
}

/* Groups of `width` elements from `first` on, sorted in place. */
static void sort_groups(redisReply *r, size_t first, size_t width) {
  for (size_t i = first + width; i + width <= r->elements; i += width) {
    for (size_t j = i; j > first; j -= width) {
      int c = 0;
      for (size_t k = 0; k < width && c == 0; k++)
        c = elem_cmp(r->element[j - width + k], r->element[j + k]);
      if (c <= 0)
        break;
      for (size_t k = 0; k < width; k++) {
        redisReply *t = r->element[j - width + k];
        r->element[j - width + k] = r->element[j + k];
        r->element[j + k] = t;
      }
    }
  }
}

static bool same_arrays(redisReply *a, redisReply *b, size_t first,
                        size_t width) {
  if (a->type != REDIS_REPLY_ARRAY || b->type != REDIS_REPLY_ARRAY ||
      a->elements != b->elements || a->elements < first ||
      (a->elements - first) % width != 0)
    return false;
  sort_groups(a, first, width);
  sort_groups(b, first, width);
  for (size_t i = 0; i < a->elements; i++) {
    if (a->element[i]->type == REDIS_REPLY_ARRAY ||
        elem_cmp(a->element[i], b->element[i]) != 0)
      return false;
  }
  return true;
}

static bool same_ttl(const redisReply *a, const redisReply *b,
                     int64_t tolerance_ms) {
  if (a->type != REDIS_REPLY_INTEGER || b->type != REDIS_REPLY_INTEGER)
    return false;
  if (a->integer < 0 || b->integer < 0)
    return a->integer == b->integer;
  return llabs(a->integer - b->integer) <= tolerance_ms;
}

static bool replies_match(const cmd_t *c, const sim_redis_buf_t *real,
                          const sim_redis_buf_t *model, int64_t tolerance_ms) {
  if (real->len == model->len &&
      memcmp(real->data, model->data, real->len) == 0)
    return true;
  if (c->cmp == CMP_EXACT)
    return false;
  redisReply *a = parse(real), *b = parse(model);
  bool same = false;
  if (a != NULL && b != NULL) {
    if (a->type == REDIS_REPLY_ERROR || b->type == REDIS_REPLY_ERROR)
      same = false; /* errors are compared exactly (above) */
    else if (c->cmp == CMP_SET)
      same = same_arrays(a, b, 0, 1);
    else if (c->cmp == CMP_RENEW)
      same = same_arrays(a, b, 2, 10);
    else
      same = same_ttl(a, b, tolerance_ms);
  }
  if (a != NULL)
    freeReplyObject(a);
  if (b != NULL)
    freeReplyObject(b);
  return same;
}

/* ---- Coverage ------------------------------------------------------------ */

/* Paths the Cluster's scripts took, read from real Redis's replies: a
 * differential test that never reaches a path does not check it. */
typedef enum {
  COV_RENEWED = 0,
  COV_RENEW_FENCED,
  COV_RENEW_PURGED,
  COV_RENEW_LOST,
  COV_MATCHED,
  COV_QUEUED,
  COV_PLAYING,
  COV_MATCH_FENCED,
  COV_MATCH_PURGED,
  COV_UNQUEUED,
  COV_UNQUEUE_GONE,
  COV_LOOKUP_NONE,
  COV_LOOKUP_HERE,
  COV_LOOKUP_MOVE,
  COV_LOOKUP_LOST,
  COV_CLAIM_DONE,
  COV_CLAIM_LOST,
  COV_CLUSTER_ERROR,
  COV_SCRIPT_ERROR,
  COV_NOAUTH,
  COV_WRONGTYPE,
  COV_EDGE_AT,
  COV_EDGE_PAST,
  COV_UNAUTH,
  COV_RENEW_DATA_LOST,
  COV_MATCH_LAPSED,
  COV_STORED,
  COV_RENEW_CLAIMED,
  COV_FINISHED,
  COV_FINISHED_NOT,
  COV_COUNT
} coverage_t;

static const char *const COVERAGE[COV_COUNT] = {
    "renew:renewed",   "renew:fenced",  "renew:purged",  "renew:lost",
    "match:matched",   "match:queued",  "match:playing", "match:fenced",
    "match:purged",    "unqueue:1",     "unqueue:0",     "lookup:none",
    "lookup:here",     "lookup:move",   "lookup:lost",   "claim:done",
    "claim:lost",      "cluster:error", "script:error",  "NOAUTH",
    "WRONGTYPE",       "edge:at",       "edge:past",     "unauth:closed",
    "renew:data_lost", "match:lapsed",  "stored",        "renew:claimed",
    "finished:1",      "finished:0"};

static bool str_is(const redisReply *r, const char *s) {
  return (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) &&
         r->len == strlen(s) && memcmp(r->str, s, r->len) == 0;
}

static int first_is(const redisReply *r, const char *const *words, int n) {
  if (r->type != REDIS_REPLY_ARRAY || r->elements == 0)
    return -1;
  for (int i = 0; i < n; i++)
    if (str_is(r->element[0], words[i]))
      return i;
  return -1;
}

static void cover_script(const char *name, const redisReply *r,
                         uint64_t *counts) {
  static const char *const match[] = {"matched", "queued", "playing", "fenced"};
  static const char *const lookup[] = {"none", "here", "move", "lost"};
  const redisReply *last = r->type == REDIS_REPLY_ARRAY && r->elements > 0
                               ? r->element[r->elements - 1]
                               : r;
  int i;
  if (strcmp(name, "LUA_RENEW") == 0 && r->elements >= 2) {
    long long what = r->element[0]->integer;
    counts[what == 1   ? COV_RENEWED
           : what == 2 ? COV_RENEW_DATA_LOST
                       : COV_RENEW_FENCED]++;
    counts[COV_RENEW_PURGED] += r->element[1]->integer > 0;
    counts[COV_RENEW_LOST] += r->elements > 2;
    /* A game its dead owner claimed: a reason in the tuple. */
    for (size_t at = 2 + 5; at < r->elements; at += 10)
      if (r->element[at]->type == REDIS_REPLY_STRING &&
          r->element[at]->len > 0) {
        counts[COV_RENEW_CLAIMED]++;
        break;
      }
  } else if (strcmp(name, "LUA_MATCH") == 0 &&
             (i = first_is(r, match, 4)) >= 0) {
    counts[COV_MATCHED + i]++;
    counts[COV_MATCH_PURGED] += i < 2 && last->integer > 0;
  } else if (strcmp(name, "LUA_UNQUEUE") == 0) {
    counts[r->integer == 1 ? COV_UNQUEUED : COV_UNQUEUE_GONE]++;
  } else if (strcmp(name, "LUA_LOOKUP") == 0 &&
             (i = first_is(r, lookup, 4)) >= 0) {
    counts[COV_LOOKUP_NONE + i]++;
  } else if (strcmp(name, "LUA_CLAIM") == 0) {
    counts[str_is(r, "done") ? COV_CLAIM_DONE : COV_CLAIM_LOST]++;
  } else if (strcmp(name, "LUA_MATCH") == 0 && r->type == REDIS_REPLY_ARRAY &&
             r->elements == 1 && str_is(r->element[0], "lapsed")) {
    counts[COV_MATCH_LAPSED]++;
  } else if (strcmp(name, "LUA_STORED") == 0) {
    counts[COV_STORED]++;
  } else if (strcmp(name, "LUA_FINISHED") == 0) {
    counts[r->integer == 1 ? COV_FINISHED : COV_FINISHED_NOT]++;
  }
}

static void cover(const cmd_t *c, const sim_redis_buf_t *real,
                  uint64_t *counts) {
  redisReply *r = parse(real);
  if (r == NULL)
    return;
  bool script = c->argc > 1 && strcasecmp(c->argv[0], "EVAL") == 0;
  if (r->type == REDIS_REPLY_ERROR) {
    if (strncmp(r->str, "NOAUTH", 6) == 0)
      counts[COV_NOAUTH]++;
    else if (strncmp(r->str, "WRONGTYPE", 9) == 0)
      counts[COV_WRONGTYPE]++;
    else if (strncmp(r->str, "ERR Protocol error: unauth", 26) == 0)
      counts[COV_UNAUTH]++;
    if (script)
      counts[c->script_name != NULL ? COV_CLUSTER_ERROR : COV_SCRIPT_ERROR]++;
  } else if (script && c->script_name != NULL) {
    cover_script(c->script_name, r, counts);
  }
  freeReplyObject(r);
}

/* ---- Running a step ------------------------------------------------------ */

static int64_t model_time(const run_t *r, int64_t mono) {
  return mono - r->start_ns + MODEL_EPOCH_NS;
}

/* Rule (1): the earliest time from `at` on with no deadline within
 * GUARD_MS. */
static int64_t clear_of_deadlines(const run_t *r, int64_t at) {
  for (;;) {
    int64_t t = model_time(r, at);
    if (!sim_redis_deadline_within(r->model, t - GUARD_MS * MS,
                                   t + GUARD_MS * MS))
      return at;
    at += MS;
  }
}

static void remember(run_t *r, const cmd_t *c, const sim_redis_buf_t *reply) {
  char *line = r->history[r->history_len++ % HISTORY];
  describe_cmd(c, line, 256);
  size_t len = strlen(line);
  snprintf(line + len, 512 - len, " -> ");
  len = strlen(line);
  describe((const char *)reply->data, reply->len, line + len, 512 - len);
}

static void report(const run_t *r, const cmd_t *c, const sim_redis_buf_t *real,
                   const sim_redis_buf_t *model) {
  char text[4096];
  fprintf(stderr, "\nMISMATCH seed=%" PRIu64 " step=%u\n", r->seed, r->step);
  uint32_t first = r->history_len > HISTORY ? r->history_len - HISTORY : 0;
  for (uint32_t i = first; i < r->history_len; i++)
    fprintf(stderr, "  before: %s\n", r->history[i % HISTORY]);
  describe_cmd(c, text, sizeof(text));
  fprintf(stderr, "  command: %s\n", text);
  describe((const char *)real->data, real->len, text, sizeof(text));
  fprintf(stderr, "  redis:   %s\n", text);
  describe((const char *)model->data, model->len, text, sizeof(text));
  fprintf(stderr, "  model:   %s\n", text);
  fprintf(stderr, "  replay:  test_sim_redis_diff --seed %" PRIu64 "\n",
          r->seed);
}

typedef enum { DONE_OK = 0, DONE_MISMATCH, DONE_VOID, DONE_ERROR } done_t;

/* Send c to both; compare. The model's time for it in *model_ns. */
static done_t exchange(run_t *r, const cmd_t *c, bool verbose,
                       int64_t *model_ns) {
  sim_redis_buf_t real, model;
  sim_redis_buf_init(&real);
  sim_redis_buf_init(&model);
  conn_t *conn = &r->conns[c->client];
  int64_t t0 = mono_ns();
  int rc = conn_call(conn, c, &real);
  int64_t t1 = mono_ns();
  done_t done = DONE_OK;
  if (rc < 0) {
    fprintf(stderr, "diff: seed %" PRIu64 ": redis-server did not answer\n",
            r->seed);
    done = DONE_ERROR;
  } else if (t1 - t0 > SLOW_MS * MS) {
    done = DONE_VOID; /* rule (2) */
    if (verbose) {
      char text[512];
      describe_cmd(c, text, sizeof(text));
      fprintf(stderr, "diff: seed %" PRIu64 " step %u took %.1f ms: %s\n",
              r->seed, r->step, (double)(t1 - t0) / MS, text);
    }
  } else {
    int64_t took = t1 - t0 + MS; /* and 1 ms of clock phase */
    if (took > r->uncertainty_ns)
      r->uncertainty_ns = took;
    *model_ns = model_time(r, t0 + (t1 - t0) / 2);
    int err = sim_redis_command(r->model, &conn->model, c->argc, c->argv,
                                c->lens, *model_ns, &model);
    int64_t tolerance_ms = (r->uncertainty_ns + took) / MS + 2;
    if (!replies_match(c, &real, &model, tolerance_ms)) {
      report(r, c, &real, &model);
      done = DONE_MISMATCH;
    }
    cover(c, &real, r->coverage);
    remember(r, c, &real);
    /* A protocol error: Redis closed the connection after its reply. */
    if (err == RT_EPROTO && done == DONE_OK && reconnect(r, c->client) < 0)
      done = DONE_ERROR;
    if (verbose)
      fprintf(stderr, "seed %" PRIu64 " step %u: %s\n", r->seed, r->step,
              r->history[(r->history_len - 1) % HISTORY]);
  }
  sim_redis_buf_deinit(&real);
  sim_redis_buf_deinit(&model);
  return done;
}

/* ---- The boundary probe (gen_edge's step) -------------------------------- */

/* One spin: the real reply; 1 at D (the model checked), 2 past it, 0
 * before, -1 on a mismatch or no answer. */
static int edge_spin(run_t *r, const cmd_t *probe, int64_t deadline_ms,
                     bool seen_at) {
  sim_redis_buf_t real, model;
  sim_redis_buf_init(&real);
  sim_redis_buf_init(&model);
  int rc = conn_call(&r->conns[OBSERVER], probe, &real) < 0 ? -1 : 0;
  redisReply *rep = rc == 0 ? parse(&real) : NULL;
  if (rep != NULL && rep->type == REDIS_REPLY_ARRAY && rep->elements == 2) {
    long long ttl = rep->element[0]->integer;
    rc = ttl == 0 ? 1 : ttl < 0 ? 2 : 0;
    if ((rc == 1 && !seen_at) || rc == 2) {
      int64_t at = (deadline_ms + (rc == 2)) * MS;
      (void)sim_redis_command(r->model, &r->conns[OBSERVER].model, probe->argc,
                              probe->argv, probe->lens, at, &model);
      if (real.len != model.len || memcmp(real.data, model.data, real.len)) {
        report(r, probe, &real, &model);
        fprintf(stderr, "  (the model at %s its deadline)\n",
                rc == 1 ? "exactly" : "1 ms past");
        rc = -1;
      }
    }
  }
  if (rep != NULL)
    freeReplyObject(rep);
  sim_redis_buf_deinit(&real);
  sim_redis_buf_deinit(&model);
  return rc;
}

static done_t edge_probe(run_t *r, const cmd_t *set, bool verbose) {
  int64_t set_ns = 0;
  done_t done = exchange(r, set, verbose, &set_ns);
  if (done != DONE_OK)
    return done;
  int64_t deadline_ms = set_ns / MS + atoi(EDGE_PX);
  cmd_t probe;
  memset(&probe, 0, sizeof(probe));
  probe.client = OBSERVER;
  cmd_eval(&probe, "EDGE_SCRIPT", EDGE_SCRIPT, 1);
  cmd_arg(&probe, EDGE_KEY);
  bool seen_at = false;
  int64_t until = mono_ns() + EDGE_SPIN_MS * MS;
  while (mono_ns() < until) {
    int rc = edge_spin(r, &probe, deadline_ms, seen_at);
    if (rc < 0)
      return DONE_MISMATCH;
    if (rc == 1 && !seen_at) {
      seen_at = true;
      r->coverage[COV_EDGE_AT]++;
    }
    if (rc == 2) {
      r->coverage[COV_EDGE_PAST]++;
      return DONE_OK;
    }
  }
  return DONE_VOID; /* never saw it lapse: too slow to tell */
}

/* One step of run r, now that it is ready. DONE_OK: more may follow. */
static done_t run_step(run_t *r, bool verbose, cmd_t *pending, bool *has) {
  if (!*has) {
    int64_t wait_ns = 0;
    step_kind_t kind = gen_step(r, pending, &wait_ns);
    if (kind == ST_ERROR)
      return DONE_ERROR;
    if (kind == ST_WAIT) {
      r->step++;
      r->ready_ns = mono_ns() + wait_ns;
      return DONE_OK;
    }
    *has = true;
  }
  int64_t now = mono_ns();
  int64_t clear = clear_of_deadlines(r, now);
  if (clear > now) { /* rule (1): come back later, same command */
    r->ready_ns = clear;
    return DONE_OK;
  }
  *has = false;
  r->step++;
  int64_t model_ns;
  if (pending->cmp == CMP_EDGE)
    return edge_probe(r, pending, verbose);
  return exchange(r, pending, verbose, &model_ns);
}

/* ---- The scheduler: RUNS_PARALLEL runs, one thread ----------------------- */

typedef struct slot {
  redis_tmp_t server;
  redisContext *admin;
  run_t run;
  cmd_t pending; /* drawn, waiting for rule (1) */
  bool has_pending;
  bool busy;
} slot_t;

typedef struct options {
  uint64_t first, seeds;
  uint32_t steps, parallel;
  bool verbose;
} options_t;

typedef struct tally {
  uint64_t next_seed, done, mismatches, voided, skipped;
  bool error;
  uint64_t coverage[COV_COUNT];
} tally_t;

static int slot_open(slot_t *s) {
  if (redis_tmp_start(&s->server) < 0)
    return -1;
  struct timeval tv = {.tv_sec = 5};
  s->admin = redisConnectWithTimeout("127.0.0.1", s->server.port, tv);
  return s->admin != NULL && s->admin->err == 0 ? 0 : -1;
}

static void slot_close(slot_t *s) {
  if (s->admin != NULL)
    redisFree(s->admin);
  redis_tmp_stop(&s->server);
}

static bool slot_begin(slot_t *s, uint64_t seed, int attempt,
                       const options_t *o, tally_t *t) {
  run_t *r = &s->run;
  memset(r, 0, sizeof(*r));
  r->coverage = t->coverage;
  r->seed = seed;
  r->attempt = attempt;
  r->steps = o->steps;
  r->server = &s->server;
  r->admin = s->admin;
  s->has_pending = false;
  s->busy = run_start(r) == 0;
  return s->busy;
}

/* A run ended with `done`: tally it, and start the next seed (or the same
 * again after a void). */
static void slot_end(slot_t *s, done_t done, const options_t *o, tally_t *t) {
  run_t *r = &s->run;
  uint64_t seed = r->seed;
  int attempt = r->attempt;
  run_stop(r);
  s->busy = false;
  if (done == DONE_VOID && attempt + 1 < ATTEMPTS) {
    t->voided++;
    if (!slot_begin(s, seed, attempt + 1, o, t))
      t->error = true;
    return;
  }
  t->done++;
  t->mismatches += done == DONE_MISMATCH;
  t->skipped += done == DONE_VOID;
  t->error |= done == DONE_ERROR;
  if (done == DONE_VOID)
    fprintf(stderr,
            "diff: seed %" PRIu64 " skipped: a step took over %d ms "
            "%d times\n",
            seed, SLOW_MS, ATTEMPTS);
  if (t->next_seed < o->first + o->seeds && !t->mismatches && !t->error &&
      !slot_begin(s, t->next_seed++, 0, o, t))
    t->error = true;
}

static slot_t *earliest(slot_t *slots, uint32_t n) {
  slot_t *best = NULL;
  for (uint32_t i = 0; i < n; i++)
    if (slots[i].busy &&
        (best == NULL || slots[i].run.ready_ns < best->run.ready_ns))
      best = &slots[i];
  return best;
}

static void schedule(slot_t *slots, const options_t *o, tally_t *t) {
  for (uint32_t i = 0; i < o->parallel && t->next_seed < o->first + o->seeds;
       i++)
    if (!slot_begin(&slots[i], t->next_seed++, 0, o, t))
      t->error = true;
  slot_t *s;
  while (!t->error && t->mismatches == 0 &&
         (s = earliest(slots, o->parallel)) != NULL) {
    sleep_ns(s->run.ready_ns - mono_ns());
    done_t done = run_step(&s->run, o->verbose, &s->pending, &s->has_pending);
    if (done == DONE_OK && s->run.step >= s->run.steps && !s->has_pending)
      slot_end(s, DONE_OK, o, t);
    else if (done != DONE_OK)
      slot_end(s, done, o, t);
  }
  for (uint32_t i = 0; i < o->parallel; i++)
    if (slots[i].busy)
      run_stop(&slots[i].run);
}

/* ---- main ---------------------------------------------------------------- */

/* A full run must reach every path of COVERAGE. */
#define COVERAGE_SEEDS 100u

static bool covered(const tally_t *t, bool required) {
  bool all = true;
  fprintf(stderr, "diff: coverage");
  for (int i = 0; i < COV_COUNT; i++) {
    fprintf(stderr, " %s=%" PRIu64, COVERAGE[i], t->coverage[i]);
    all &= t->coverage[i] > 0;
  }
  fprintf(stderr, "\n");
  if (required && !all)
    fprintf(stderr, "diff: a path was never reached (=0 above)\n");
  return all || !required;
}

static bool parse_u64(const char *s, uint64_t *out) {
  char *end = NULL;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0' || s[0] == '-')
    return false;
  *out = v;
  return true;
}

static int parse_options(int argc, char **argv, options_t *o) {
  *o = (options_t){.first = 1,
                   .seeds = SEEDS_DEFAULT,
                   .steps = STEPS_DEFAULT,
                   .parallel = RUNS_PARALLEL};
  for (int i = 1; i < argc; i++) {
    uint64_t v = 0;
    const char *flag = argv[i];
    if (strcmp(flag, "--verbose") == 0) {
      o->verbose = true;
      continue;
    }
    if (i + 1 >= argc || !parse_u64(argv[++i], &v))
      return -1;
    if (strcmp(flag, "--seed") == 0)
      o->first = v, o->seeds = 1;
    else if (strcmp(flag, "--first") == 0)
      o->first = v;
    else if (strcmp(flag, "--seeds") == 0 && v > 0)
      o->seeds = v;
    else if (strcmp(flag, "--steps") == 0 && v > 0 && v <= 100000)
      o->steps = (uint32_t)v;
    else if (strcmp(flag, "--parallel") == 0 && v > 0 && v <= 64)
      o->parallel = (uint32_t)v;
    else
      return -1;
  }
  if (o->parallel > o->seeds)
    o->parallel = (uint32_t)o->seeds;
  return 0;
}

int main(int argc, char **argv) {
  options_t o;
  if (parse_options(argc, argv, &o) < 0) {
    fprintf(stderr,
            "usage: %s [--seeds N] [--first S] [--seed S] "
            "[--steps N] [--parallel K] [--verbose]\n",
            argv[0]);
    return 2;
  }
  slot_t *slots = calloc(o.parallel, sizeof(*slots));
  tally_t t = {.next_seed = o.first};
  int64_t began = mono_ns();
  for (uint32_t i = 0; i < o.parallel && !t.error; i++)
    if (slot_open(&slots[i]) < 0)
      t.error = true;
  if (!t.error)
    schedule(slots, &o, &t);
  for (uint32_t i = 0; i < o.parallel; i++)
    slot_close(&slots[i]);
  free(slots);
  fprintf(stderr,
          "diff: %" PRIu64 " seeds x %u steps from seed %" PRIu64 ": %" PRIu64
          " mismatches, %" PRIu64 " reruns after slow steps, "
          "%" PRIu64 " skipped, %.1f s\n",
          t.done, o.steps, o.first, t.mismatches, t.voided, t.skipped,
          (double)(mono_ns() - began) / 1e9);
  bool too_noisy = t.skipped * 10 > o.seeds;
  return t.error || t.mismatches > 0 || too_noisy ||
                 !covered(&t, o.seeds >= COVERAGE_SEEDS)
             ? 1
             : 0;
}
