/* sim_redis.c: the Redis model: its life, the command table, dispatch, and
 * the RESP reply encoder.
 *
 * Dispatch follows Redis 7.0's processCommand, in its order, because the
 * order decides which error a bad request gets:
 *   1. an empty request gets no reply at all;
 *   2. an unknown command: "ERR unknown command '<name>', with args
 *      beginning with: '<a>' '<b>' ";
 *   3. a wrong number of arguments: "ERR wrong number of arguments for
 *      '<name>' command";
 *   4. not authenticated while a password is required: "NOAUTH ...";
 *   5. over memory_max and the command may grow the data: "OOM ...";
 *   6. the command, which checks its own arguments.
 * Scripts call commands through sr_cmd_find and sr_cmd_run with checks of
 * their own (sim_redis_lua.c), as Redis's scriptCall does.
 *
 * hiredis decodes RESP but has no encoder for replies (its formatter writes
 * requests only), so the encoder is here: a handful of functions that
 * append one RESP2 value each, as Redis's addReply* do.
 */
#include "sim_redis_int.h"

#include "rt_assert.h"
#include "rt_parse.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char SR_ERR_WRONGTYPE[] =
    "WRONGTYPE Operation against a key holding the wrong kind of value";
const char SR_ERR_NOT_INT[] = "ERR value is not an integer or out of range";
const char SR_ERR_SYNTAX[] = "ERR syntax error";
const char SR_ERR_OOM[] =
    "OOM command not allowed when used memory > 'maxmemory'.";

#define BUF_CAP_MIN 256u
#define UNKNOWN_ARGS_MAX 128 /* bytes of arguments quoted, as Redis */

/* ---- The command table --------------------------------------------------- */

static void cmd_auth_unreachable(sr_ctx_t *c) {
  (void)c; /* AUTH needs the client: sim_redis_command runs it */
  RT_ASSERT(!"AUTH is run by sim_redis_command");
}

/* Arity and flags as Redis 7.0's command table has them. */
static const sr_cmd_t commands[] = {
    {"get", 2, 0, sr_cmd_get},
    {"set", -3, SR_CMD_WRITE, sr_cmd_set},
    {"exists", -2, 0, sr_cmd_exists},
    {"del", -2, 0, sr_cmd_del},
    {"incr", 2, SR_CMD_WRITE, sr_cmd_incr},
    {"sadd", -3, SR_CMD_WRITE, sr_cmd_sadd},
    {"srem", -3, 0, sr_cmd_srem},
    {"smembers", 2, 0, sr_cmd_smembers},
    {"sismember", 3, 0, sr_cmd_sismember},
    {"scard", 2, 0, sr_cmd_scard},
    {"hset", -4, SR_CMD_WRITE, sr_cmd_hset},
    {"hget", 3, 0, sr_cmd_hget},
    {"hmget", -3, 0, sr_cmd_hmget},
    {"zadd", -4, SR_CMD_WRITE, sr_cmd_zadd},
    {"zrem", -3, 0, sr_cmd_zrem},
    {"zrange", -4, 0, sr_cmd_zrange},
    {"zscore", 3, 0, sr_cmd_zscore},
    {"zcard", 2, 0, sr_cmd_zcard},
    {"rpush", -3, SR_CMD_WRITE, sr_cmd_rpush},
    {"lpop", -2, 0, sr_cmd_lpop},
    {"lrange", 4, 0, sr_cmd_lrange},
    {"lindex", 3, 0, sr_cmd_lindex},
    {"ltrim", 4, 0, sr_cmd_ltrim},
    {"pexpire", -3, 0, sr_cmd_pexpire},
    {"pttl", 2, 0, sr_cmd_pttl},
    {"ping", -1, 0, sr_cmd_ping},
    {"flushall", -1, 0, sr_cmd_flushall},
    {"eval", -3, SR_CMD_NOSCRIPT, sr_cmd_eval},
    {"auth", -2, SR_CMD_NOSCRIPT | SR_CMD_NOAUTH, cmd_auth_unreachable},
};

const sr_cmd_t *sr_cmd_find(const char *name, size_t len) {
  for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
    const sr_cmd_t *cmd = &commands[i];
    if (strlen(cmd->name) == len && strncasecmp(cmd->name, name, len) == 0)
      return cmd;
  }
  return NULL;
}

bool sr_cmd_arity_ok(const sr_cmd_t *cmd, int argc) {
  return cmd->arity > 0 ? argc == cmd->arity : argc >= -cmd->arity;
}

void sr_cmd_run(sr_ctx_t *c, const sr_cmd_t *cmd) {
  RT_ASSERT(sr_cmd_arity_ok(cmd, c->argc));
  cmd->fn(c);
}

/* ---- Buffers and the reply encoder --------------------------------------- */

void sim_redis_buf_init(sim_redis_buf_t *b) { memset(b, 0, sizeof(*b)); }

void sim_redis_buf_deinit(sim_redis_buf_t *b) {
  free(b->data);
  memset(b, 0, sizeof(*b));
}

void sim_redis_buf_reset(sim_redis_buf_t *b) {
  b->len = 0;
  b->failed = false;
}

void sr_buf_append(sim_redis_buf_t *b, const void *p, size_t n) {
  if (b->failed)
    return;
  if (b->len + n > b->cap) {
    size_t cap = b->cap < BUF_CAP_MIN ? BUF_CAP_MIN : b->cap;
    while (cap < b->len + n)
      cap *= 2;
    uint8_t *data = realloc(b->data, cap);
    if (data == NULL) {
      b->failed = true;
      return;
    }
    b->data = data;
    b->cap = cap;
  }
  if (n > 0)
    memcpy(b->data + b->len, p, n);
  b->len += n;
}

/* type, then the text with CR and LF made spaces (Redis's sdsmapchars on
 * status and error replies: a reply must stay one line). */
static void reply_line(sim_redis_buf_t *b, char type, const char *head,
                       size_t head_len, const char *s, size_t n) {
  sr_buf_append(b, &type, 1);
  size_t start = b->len;
  sr_buf_append(b, head, head_len);
  sr_buf_append(b, s, n);
  if (b->failed)
    return;
  for (size_t i = start; i < b->len; i++)
    if (b->data[i] == '\r' || b->data[i] == '\n')
      b->data[i] = ' ';
  sr_buf_append(b, "\r\n", 2);
}

void sr_reply_status(sim_redis_buf_t *b, const char *s) {
  reply_line(b, '+', "", 0, s, strlen(s));
}

void sr_reply_error(sim_redis_buf_t *b, const char *s, size_t n) {
  reply_line(b, '-', "", 0, s, n);
}

void sr_reply_error2(sim_redis_buf_t *b, const char *head, const char *s,
                     size_t n) {
  reply_line(b, '-', head, strlen(head), s, n);
}

void sr_reply_errorf(sim_redis_buf_t *b, const char *fmt, ...) {
  char text[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(text, sizeof(text), fmt, ap);
  va_end(ap);
  RT_ASSERT(n >= 0);
  size_t len = (size_t)n < sizeof(text) ? (size_t)n : sizeof(text) - 1;
  sr_reply_error(b, text, len);
}

static void reply_header(sim_redis_buf_t *b, char type, long long v) {
  char head[RT_I64_TEXT_MAX + 3];
  head[0] = type;
  size_t n = 1 + rt_i64_text(v, head + 1);
  head[n++] = '\r';
  head[n++] = '\n';
  sr_buf_append(b, head, n);
}

void sr_reply_int(sim_redis_buf_t *b, long long v) { reply_header(b, ':', v); }

void sr_reply_bulk(sim_redis_buf_t *b, const char *p, size_t n) {
  reply_header(b, '$', (long long)n);
  sr_buf_append(b, p, n);
  sr_buf_append(b, "\r\n", 2);
}

void sr_reply_nil(sim_redis_buf_t *b) { sr_buf_append(b, "$-1\r\n", 5); }

void sr_reply_nil_array(sim_redis_buf_t *b) { sr_buf_append(b, "*-1\r\n", 5); }

void sr_reply_array(sim_redis_buf_t *b, long long n) {
  reply_header(b, '*', n);
}

/* Redis 7.0's addReplyDouble in RESP2: "%.17g", and inf spelled out. */
void sr_reply_score(sim_redis_buf_t *b, double score) {
  if (isinf(score)) {
    const char *s = score > 0 ? "inf" : "-inf";
    sr_reply_bulk(b, s, strlen(s));
    return;
  }
  char text[64];
  int n = snprintf(text, sizeof(text), "%.17g", score);
  sr_reply_bulk(b, text, (size_t)n);
}

/* ---- The model ----------------------------------------------------------- */

sim_redis_t *sim_redis_create(const sim_redis_config_t *cfg) {
  sim_redis_t *m = calloc(1, sizeof(*m));
  if (m == NULL)
    return NULL;
  if (cfg != NULL)
    m->cfg = *cfg;
  m->cfg.requirepass[SIM_REDIS_PASSWORD_MAX - 1] = '\0';
  if (m->cfg.memory_max == 0)
    m->cfg.memory_max = SIM_REDIS_MEMORY_DEFAULT;
  sim_redis_buf_init(&m->script_out);
  if (sr_db_init(&m->db) < 0)
    goto fail;
  m->lua = sr_lua_create(m);
  if (m->lua == NULL)
    goto fail;
  return m;
fail:
  sr_db_deinit(&m->db);
  free(m);
  return NULL;
}

void sim_redis_destroy(sim_redis_t *m) {
  if (m == NULL)
    return;
  sim_redis_stop(m);
  sr_lua_destroy(m->lua);
  sr_db_deinit(&m->db);
  sim_redis_buf_deinit(&m->script_out);
  free(m);
}

void sim_redis_client_init(const sim_redis_t *m, sim_redis_client_t *client) {
  /* Redis: a new client is authenticated when the default user needs no
   * password. */
  client->authenticated = m->cfg.requirepass[0] == '\0';
}

void sim_redis_flush(sim_redis_t *m) { sr_db_flush(&m->db); }

static int64_t to_ms(rt_time_ns now) {
  RT_ASSERT(now >= 0);
  return now / RT_NS_PER_MS;
}

uint64_t sim_redis_key_count(const sim_redis_t *m, rt_time_ns now) {
  return sr_db_count(&m->db, to_ms(now));
}

uint64_t sim_redis_digest(const sim_redis_t *m, rt_time_ns now) {
  return sr_db_digest(&m->db, to_ms(now));
}

#define PEEK_SCAN_MAX 16u

int sim_redis_peek(const sim_redis_t *m, const char *key, const char *field,
                   rt_time_ns now, char *out, size_t cap) {
  RT_ASSERT(m != NULL && key != NULL && out != NULL && cap > 0);
  out[0] = '\0';
  const sr_key_t *k = sr_db_peek(&m->db, key, strlen(key), to_ms(now));
  if (k == NULL)
    return 0;
  const sr_bytes_t *v = &k->str;
  if (field == NULL && k->type != SR_STRING)
    return -1;
  if (field != NULL) {
    if (k->type != SR_HASH)
      return -1;
    /* A small hash by its fields' lengths first (they lie in the items;
     * each field's bytes in a block of its own): a binary search reads
     * the bytes of every field it passes. Fields are unique, so the first
     * match is the one. */
    size_t flen = strlen(field);
    int64_t i = -1;
    if (k->vec.len <= PEEK_SCAN_MAX) {
      for (uint32_t j = 0; j < k->vec.len && i < 0; j++)
        if (k->vec.items[j].a.len == flen &&
            memcmp(k->vec.items[j].a.p, field, flen) == 0)
          i = j;
    } else {
      i = sr_vec_find_sorted(&k->vec, field, flen, NULL);
    }
    if (i < 0)
      return 0;
    v = &k->vec.items[i].b;
  }
  size_t n = v->len < cap - 1 ? v->len : cap - 1;
  memcpy(out, v->p, n);
  out[n] = '\0';
  return 1;
}

int sim_redis_deadline_within(const sim_redis_t *m, rt_time_ns from,
                              rt_time_ns to) {
  return sr_db_deadline_within(&m->db, to_ms(from), to_ms(to)) ? 1 : 0;
}

void sim_redis_get_stats(const sim_redis_t *m, sim_redis_stats_t *out) {
  *out = m->stats;
  out->expired = m->db.expired;
  out->used_bytes = m->db.used_bytes;
}

/* ---- AUTH ---------------------------------------------------------------- */

static bool bytes_eq(const char *a, size_t alen, const char *b) {
  return alen == strlen(b) && memcmp(a, b, alen) == 0;
}

/* AUTH [user] password against the default user, as Redis 7.0 answers. */
static void cmd_auth(sr_ctx_t *c, sim_redis_client_t *client) {
  const char *pass = c->m->cfg.requirepass;
  if (c->argc > 3) {
    sr_reply_error(c->out, SR_ERR_SYNTAX, strlen(SR_ERR_SYNTAX));
    return;
  }
  bool ok;
  if (c->argc == 2 && pass[0] == '\0') {
    sr_reply_errorf(c->out, "ERR AUTH <password> called without any password "
                            "configured for the default user. Are you sure "
                            "your configuration is correct?");
    return;
  }
  if (c->argc == 2)
    ok = bytes_eq(c->argv[1], c->lens[1], pass);
  else
    ok = bytes_eq(c->argv[1], c->lens[1], "default") &&
         (pass[0] == '\0' || bytes_eq(c->argv[2], c->lens[2], pass));
  if (!ok) {
    sr_reply_errorf(c->out, "WRONGPASS invalid username-password pair or "
                            "user is disabled.");
    return;
  }
  if (client != NULL)
    client->authenticated = true;
  sr_reply_status(c->out, "OK");
}

/* ---- Dispatch ------------------------------------------------------------ */

/* Redis's text: the name and up to ~128 bytes of arguments, each quoted and
 * cut at a NUL as %s cuts it. */
static void reply_unknown(sr_ctx_t *c) {
  char args[UNKNOWN_ARGS_MAX * 2 + 8];
  size_t len = 0;
  args[0] = '\0';
  for (int i = 1; i < c->argc && len < UNKNOWN_ARGS_MAX; i++) {
    int n = snprintf(args + len, sizeof(args) - len, "'%.*s' ",
                     (int)(UNKNOWN_ARGS_MAX - len), c->argv[i]);
    RT_ASSERT(n >= 0 && (size_t)n < sizeof(args) - len);
    len += (size_t)n;
  }
  sr_reply_errorf(c->out,
                  "ERR unknown command '%.128s', with args beginning with: %s",
                  c->argv[0], args);
}

static void dispatch(sr_ctx_t *c, sim_redis_client_t *client) {
  const sr_cmd_t *cmd = sr_cmd_find(c->argv[0], c->lens[0]);
  if (cmd == NULL) {
    reply_unknown(c);
    return;
  }
  if (!sr_cmd_arity_ok(cmd, c->argc)) {
    sr_reply_errorf(c->out, "ERR wrong number of arguments for '%s' command",
                    cmd->name);
    return;
  }
  bool authenticated = client == NULL || client->authenticated ||
                       c->m->cfg.requirepass[0] == '\0';
  if (!authenticated && !(cmd->flags & SR_CMD_NOAUTH)) {
    sr_reply_errorf(c->out, "NOAUTH Authentication required.");
    return;
  }
  if (c->oom && (cmd->flags & SR_CMD_WRITE)) {
    sr_reply_error(c->out, SR_ERR_OOM, strlen(SR_ERR_OOM));
    return;
  }
  if (cmd->fn == cmd_auth_unreachable)
    cmd_auth(c, client);
  else
    sr_cmd_run(c, cmd);
}

/* SIM_REDIS_UNAUTH_ARGS_MAX and _ARG_MAX: checked as Redis reads the
 * request, so before anything else (the command is not even looked up). */
static int unauthenticated_limits(sim_redis_t *m,
                                  const sim_redis_client_t *client, int argc,
                                  const size_t *lens, sim_redis_buf_t *out) {
  if (client == NULL || client->authenticated || m->cfg.requirepass[0] == 0)
    return RT_OK;
  const char *why = NULL;
  if ((unsigned)argc > SIM_REDIS_UNAUTH_ARGS_MAX)
    why = "ERR Protocol error: unauthenticated multibulk length";
  for (int i = 0; why == NULL && i < argc; i++)
    if (lens[i] > SIM_REDIS_UNAUTH_ARG_MAX)
      why = "ERR Protocol error: unauthenticated bulk length";
  if (why == NULL)
    return RT_OK;
  sr_reply_error(out, why, strlen(why));
  m->stats.protocol_errors++;
  return RT_EPROTO;
}

int sim_redis_command(sim_redis_t *m, sim_redis_client_t *client, int argc,
                      const char *const *argv, const size_t *lens,
                      rt_time_ns now, sim_redis_buf_t *out) {
  RT_ASSERT(m != NULL && out != NULL);
  RT_ASSERT(argc >= 0);
  for (int i = 0; i < argc; i++)
    RT_ASSERT(argv[i][lens[i]] == '\0');
  if (argc == 0)
    return RT_OK; /* Redis skips an empty request without a reply */
  int err = unauthenticated_limits(m, client, argc, lens, out);
  if (err < 0)
    return out->failed ? RT_ENOMEM : err;
  sr_ctx_t c = {.m = m,
                .argc = argc,
                .argv = argv,
                .lens = lens,
                .now_ms = to_ms(now),
                .out = out,
                .oom = m->db.used_bytes > m->cfg.memory_max};
  size_t start = out->len;
  m->stats.commands++;
  dispatch(&c, client);
  sr_db_sweep(&m->db, c.now_ms, SIM_REDIS_SWEEP_SLOTS);
  if (!out->failed && out->len - start > SIM_REDIS_REPLY_MAX) {
    out->len = start;
    sr_reply_errorf(out, "ERR sim_redis: a reply over SIM_REDIS_REPLY_MAX "
                         "bytes");
  }
  if (out->failed)
    return RT_ENOMEM;
  if (out->data[start] == '-')
    m->stats.errors++;
  if (m->observer != NULL)
    m->observer(m->observer_ctx, argc, argv, lens, out->data + start,
                out->len - start, now);
  return RT_OK;
}

void sim_redis_set_observer(sim_redis_t *m, sim_redis_observer_fn fn,
                            void *ctx) {
  RT_ASSERT(m != NULL);
  m->observer = fn;
  m->observer_ctx = ctx;
}
