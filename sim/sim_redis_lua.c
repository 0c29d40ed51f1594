/* sim_redis_lua.c: EVAL, in the interpreter Redis embeds (Lua 5.1).
 *
 * What a script meets is Redis 7.0's scripting environment (eval.c,
 * script_lua.c), reproduced where a script can tell:
 *  - the libraries base, table, string and math, without print, dofile,
 *    loadfile, setfenv, getfenv, newproxy, debug (and, here, without
 *    math.random: sim_redis.h);
 *  - globals read-only: reading a missing one is "Script attempted to
 *    access nonexistent global variable 'x'", writing any is "Attempt to
 *    modify a readonly table". Redis patches Lua for this; here the
 *    environment is an empty proxy whose __index reads the real globals and
 *    whose __newindex refuses;
 *  - KEYS and ARGV, and redis.call, redis.pcall, redis.error_reply,
 *    redis.status_reply, redis.sha1hex, redis.log;
 *  - the conversions: a command's reply to Lua (integer -> number, bulk ->
 *    string, nil bulk or nil array -> false, array -> table, status ->
 *    {ok=...}, error -> {err=...}), and the script's value to RESP (number
 *    -> integer, truncated; string -> bulk; true -> 1; false and nil ->
 *    nil bulk; {err=s} -> error; {ok=s} -> status; a table -> array up to
 *    its first nil);
 *  - the error texts: a compile error, a runtime error (through Redis's
 *    own error handler, in Lua below, which names the script's sha1 and
 *    line), a failed redis.call.
 * A script sees the EVAL's time throughout (sr_ctx_t.now_ms), as Redis
 * freezes it for a script.
 *
 * The seam (DESIGN.md): liblua5.1 itself calls rand, srand, time and
 * clock, but only from os.* (never loaded here) and math.random and
 * math.randomseed (removed): no script reaches them, and this library
 * references none of them (tests/sim/check_seam.sh checks it).
 *
 * Limits (sim_redis.h): SIM_REDIS_SCRIPT_STEPS_MAX instructions, counted
 * by a hook every SR_HOOK_EVERY as Redis's own hook is; past them the
 * script ends as a SCRIPT KILL ends one. SIM_REDIS_LUA_MEMORY_MAX bytes,
 * through the allocator. Converting a script's reply recurses once per
 * nested table, bounded as in Redis by lua_checkstack (LUAI_MAXCSTACK).
 */
#include "sim_redis_int.h"

#include "rt_assert.h"

#include <lauxlib.h>
#include <limits.h>
#include <lua.h>
#include <lualib.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SR_HOOK_EVERY 100000 /* instructions between hook calls, as Redis */
#define SR_VERSION "7.0.15"  /* the Redis the model follows */
#define SR_VERSION_NUM 0x0007000f
#define SR_FNAME_LEN 42u /* "f_" and 40 hex digits */

struct sr_lua {
  lua_State *L;
  sim_redis_t *m;
  size_t mem_used;
  bool mem_limited; /* SIM_REDIS_LUA_MEMORY_MAX applies (during an EVAL) */
  uint64_t steps;
  int handler_ref; /* Redis's __redis__err__handler */
  int globals_ref; /* the real globals, behind the read-only proxy */
  int scripts_ref; /* "f_<sha1>" -> compiled script */
  uint32_t scripts;
  sr_ctx_t *running; /* the EVAL in progress */
  char fname[SR_FNAME_LEN + 1];
  const char *argv[SIM_REDIS_ARGS_MAX]; /* one redis.call's arguments */
  size_t lens[SIM_REDIS_ARGS_MAX];
};

/* Redis 7.0's error handler, word for word: it names where the error
 * happened (the caller's line when the error came from a C function such
 * as redis.call or error). */
static const char ERROR_HANDLER[] = "local dbg = debug\n"
                                    "debug = nil\n"
                                    "return function(err)\n"
                                    "  local i = dbg.getinfo(2,'nSl')\n"
                                    "  if i and i.what == 'C' then\n"
                                    "    i = dbg.getinfo(3,'nSl')\n"
                                    "  end\n"
                                    "  if type(err) ~= 'table' then\n"
                                    "    err = {err='ERR ' .. tostring(err)}\n"
                                    "  end\n"
                                    "  if i then\n"
                                    "    err['source'] = i.source\n"
                                    "    err['line'] = i.currentline\n"
                                    "  end\n"
                                    "  return err\n"
                                    "end\n";

/* ---- The allocator and the step hook ------------------------------------- */

static void *lua_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  sr_lua_t *l = ud;
  if (nsize == 0) {
    free(ptr);
    l->mem_used -= osize;
    return NULL;
  }
  if (l->mem_limited && nsize > osize &&
      l->mem_used + (nsize - osize) > SIM_REDIS_LUA_MEMORY_MAX)
    return NULL;
  void *p = realloc(ptr, nsize);
  if (p != NULL)
    l->mem_used = l->mem_used - osize + nsize;
  return p;
}

static sr_lua_t *lua_owner(lua_State *L) {
  void *ud = NULL;
  (void)lua_getallocf(L, &ud);
  return ud;
}

static void push_error(lua_State *L, const char *s, size_t n);

/* As Redis's luaMaskCountHook on SCRIPT KILL: the hook then fires on every
 * line, so a pcall in the script cannot swallow the end. */
static void count_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  sr_lua_t *l = lua_owner(L);
  l->steps += SR_HOOK_EVERY;
  if (l->steps <= SIM_REDIS_SCRIPT_STEPS_MAX)
    return;
  lua_sethook(L, count_hook, LUA_MASKLINE, 0);
  static const char killed[] = "Script killed by user with SCRIPT KILL...";
  push_error(L, killed, sizeof(killed) - 1);
  lua_error(L);
}

/* ---- Errors as Redis makes them ------------------------------------------ */

static bool is_crlf(char ch) { return ch == '\r' || ch == '\n'; }

/* Redis's luaPushErrorBuff: "-CODE msg" or "msg" becomes {err="CODE msg"}
 * (code ERR when none is given), CR and LF trimmed from msg's ends. */
static void push_error(lua_State *L, const char *s, size_t n) {
  const char *code = "ERR", *msg = s;
  size_t code_len = 3, msg_len = n;
  if (n > 0 && s[0] == '-') {
    const char *space = memchr(s, ' ', n);
    if (space == NULL) {
      msg = s + 1;
      msg_len = n - 1;
    } else {
      code = s + 1;
      code_len = (size_t)(space - s - 1);
      msg = space + 1;
      msg_len = n - (size_t)(space + 1 - s);
    }
  }
  while (msg_len > 0 && is_crlf(msg[0])) {
    msg++;
    msg_len--;
  }
  while (msg_len > 0 && is_crlf(msg[msg_len - 1]))
    msg_len--;
  lua_newtable(L);
  lua_pushstring(L, "err");
  lua_pushlstring(L, code, code_len);
  lua_pushliteral(L, " ");
  lua_pushlstring(L, msg, msg_len);
  lua_concat(L, 3);
  lua_settable(L, -3);
}

static void push_error_str(lua_State *L, const char *s) {
  push_error(L, s, strlen(s));
}

/* ---- A command's reply to Lua (redisProtocolToLuaType) ------------------- */

static const char *line_end(const char *p, const char *end) {
  const char *eol = memchr(p, '\r', (size_t)(end - p));
  RT_ASSERT(eol != NULL && eol + 1 < end && eol[1] == '\n');
  return eol;
}

static long long header_value(const char *p, const char *eol) {
  long long v = 0;
  bool ok = sr_parse_ll(p + 1, (size_t)(eol - p - 1), &v);
  RT_ASSERT(ok);
  return v;
}

/* Push the RESP value at p (the model's own reply, so well formed and
 * nested at most once); returns the byte after it. */
static const char *push_resp(lua_State *L, const char *p, const char *end,
                             int depth) {
  RT_ASSERT(depth < 4 && p < end);
  const char *eol = line_end(p, end);
  long long v;
  switch (p[0]) {
  case ':': lua_pushnumber(L, (lua_Number)header_value(p, eol)); return eol + 2;
  case '+':
    lua_newtable(L);
    lua_pushstring(L, "ok");
    lua_pushlstring(L, p + 1, (size_t)(eol - p - 1));
    lua_settable(L, -3);
    return eol + 2;
  case '-': push_error(L, p, (size_t)(eol - p)); return eol + 2;
  case '$':
    if ((v = header_value(p, eol)) < 0) {
      lua_pushboolean(L, 0);
      return eol + 2;
    }
    lua_pushlstring(L, eol + 2, (size_t)v);
    return eol + 2 + v + 2;
  default:
    RT_ASSERT(p[0] == '*');
    if ((v = header_value(p, eol)) < 0) {
      lua_pushboolean(L, 0);
      return eol + 2;
    }
    lua_newtable(L);
    p = eol + 2;
    for (long long j = 0; j < v; j++) {
      p = push_resp(L, p, end, depth + 1);
      lua_rawseti(L, -2, (int)(j + 1));
    }
    return p;
  }
}

/* ---- redis.call and redis.pcall ------------------------------------------ */

/* Lua arguments to command arguments (luaArgsToRedisArgv): numbers as
 * "%.17g", strings as they are. NULL, or the error. */
static const char *script_argv(sr_lua_t *l, lua_State *L, int argc) {
  if (argc == 0)
    return "Please specify at least one argument for this redis lib call";
  if (argc > (int)SIM_REDIS_ARGS_MAX)
    return "sim_redis: more than SIM_REDIS_ARGS_MAX arguments";
  for (int i = 1; i <= argc; i++) {
    if (lua_type(L, i) == LUA_TNUMBER) {
      char num[64];
      snprintf(num, sizeof(num), "%.17g", (double)lua_tonumber(L, i));
      lua_pushstring(L, num);
      lua_replace(L, i);
    } else if (lua_type(L, i) != LUA_TSTRING) {
      return "Lua redis lib command arguments must be strings or integers";
    }
    l->argv[i - 1] = lua_tolstring(L, i, &l->lens[i - 1]);
  }
  return NULL;
}

/* scriptCall's checks, in its order. NULL, or the error (with its code
 * after a '-' when it is not ERR). */
static const char *script_check(const sr_ctx_t *outer, const sr_cmd_t *cmd,
                                int argc) {
  if (cmd == NULL)
    return "Unknown Redis command called from script";
  if (!sr_cmd_arity_ok(cmd, argc))
    return "Wrong number of args calling Redis command from script";
  if (cmd->flags & SR_CMD_NOSCRIPT)
    return "This Redis command is not allowed from script";
  if (outer->oom && (cmd->flags & SR_CMD_WRITE))
    return "-OOM command not allowed when used memory > 'maxmemory'.";
  return NULL;
}

static int redis_generic(lua_State *L, bool raise) {
  sr_lua_t *l = lua_touserdata(L, lua_upvalueindex(1));
  sr_ctx_t *outer = l->running;
  RT_ASSERT(outer != NULL);
  int argc = lua_gettop(L);
  const char *err = script_argv(l, L, argc);
  const sr_cmd_t *cmd = NULL;
  if (err == NULL) {
    cmd = sr_cmd_find(l->argv[0], l->lens[0]);
    err = script_check(outer, cmd, argc);
  }
  if (err != NULL) {
    push_error_str(L, err);
    return raise ? lua_error(L) : 1;
  }
  sim_redis_buf_t *out = &l->m->script_out;
  sim_redis_buf_reset(out);
  sr_ctx_t sub = {.m = l->m,
                  .argc = argc,
                  .argv = l->argv,
                  .lens = l->lens,
                  .now_ms = outer->now_ms,
                  .out = out,
                  .in_script = true,
                  .oom = outer->oom};
  sr_cmd_run(&sub, cmd);
  l->m->stats.script_calls++;
  if (out->failed)
    return luaL_error(L, "not enough memory");
  const char *end = (const char *)out->data + out->len;
  const char *after = push_resp(L, (const char *)out->data, end, 0);
  RT_ASSERT(after == end);
  if (raise && out->data[0] == '-')
    return lua_error(L);
  return 1;
}

static int lua_redis_call(lua_State *L) { return redis_generic(L, true); }
static int lua_redis_pcall(lua_State *L) { return redis_generic(L, false); }

/* ---- The rest of the redis table ----------------------------------------- */

static int lua_redis_error_reply(lua_State *L) {
  if (lua_gettop(L) != 1 || lua_type(L, -1) != LUA_TSTRING) {
    push_error_str(L, "wrong number or type of arguments");
    return 1;
  }
  const char *s = lua_tostring(L, 1);
  if (s[0] != '-')
    s = lua_pushfstring(L, "-%s", s);
  push_error_str(L, s);
  return 1;
}

static int lua_redis_status_reply(lua_State *L) {
  if (lua_gettop(L) != 1 || lua_type(L, -1) != LUA_TSTRING) {
    push_error_str(L, "wrong number or type of arguments");
    return 1;
  }
  lua_newtable(L);
  lua_pushstring(L, "ok");
  lua_pushvalue(L, -3);
  lua_settable(L, -3);
  return 1;
}

static void sha1_hex(const char *p, size_t n, char out[41]) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  int ok = EVP_Digest(p, n, md, &md_len, EVP_sha1(), NULL);
  RT_ASSERT(ok == 1 && md_len == 20);
  for (unsigned i = 0; i < md_len; i++)
    snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static int lua_redis_sha1hex(lua_State *L) {
  if (lua_gettop(L) != 1) {
    push_error_str(L, "wrong number of arguments");
    return lua_error(L);
  }
  size_t n = 0;
  const char *s = lua_tolstring(L, 1, &n);
  char hex[41];
  sha1_hex(s != NULL ? s : "", s != NULL ? n : 0, hex);
  lua_pushstring(L, hex);
  return 1;
}

/* redis.log checks its arguments as Redis does and logs nothing. */
static int lua_redis_log(lua_State *L) {
  if (lua_gettop(L) < 2)
    return luaL_error(L, "redis.log() requires two arguments or more.");
  if (!lua_isnumber(L, 1))
    return luaL_error(L, "First argument must be a number (log level).");
  lua_Number level = lua_tonumber(L, 1);
  if (level < 0 || level > 3)
    return luaL_error(L, "Invalid debug level.");
  return 0;
}

/* ---- Setting up the interpreter ------------------------------------------ */

static void open_libs(lua_State *L) {
  static const luaL_Reg libs[] = {
      {"", luaopen_base},
      {LUA_TABLIBNAME, luaopen_table},
      {LUA_STRLIBNAME, luaopen_string},
      {LUA_MATHLIBNAME, luaopen_math},
      {LUA_DBLIBNAME, luaopen_debug},
  };
  for (size_t i = 0; i < sizeof(libs) / sizeof(libs[0]); i++) {
    lua_pushcfunction(L, libs[i].func);
    lua_pushstring(L, libs[i].name);
    lua_call(L, 1, 0);
  }
  static const char *const removed[] = {"print",   "dofile",  "loadfile",
                                        "setfenv", "getfenv", "newproxy"};
  for (size_t i = 0; i < sizeof(removed) / sizeof(removed[0]); i++) {
    lua_pushnil(L);
    lua_setglobal(L, removed[i]);
  }
  lua_getglobal(L, LUA_MATHLIBNAME);
  lua_pushnil(L);
  lua_setfield(L, -2, "random");
  lua_pushnil(L);
  lua_setfield(L, -2, "randomseed");
  lua_pop(L, 1);
}

static void set_function(lua_State *L, sr_lua_t *l, const char *name,
                         lua_CFunction fn) {
  lua_pushlightuserdata(L, l);
  lua_pushcclosure(L, fn, 1);
  lua_setfield(L, -2, name);
}

static void open_redis(lua_State *L, sr_lua_t *l) {
  lua_newtable(L);
  set_function(L, l, "call", lua_redis_call);
  set_function(L, l, "pcall", lua_redis_pcall);
  set_function(L, l, "error_reply", lua_redis_error_reply);
  set_function(L, l, "status_reply", lua_redis_status_reply);
  set_function(L, l, "sha1hex", lua_redis_sha1hex);
  set_function(L, l, "log", lua_redis_log);
  static const char *const levels[] = {"LOG_DEBUG", "LOG_VERBOSE", "LOG_NOTICE",
                                       "LOG_WARNING"};
  for (int i = 0; i < 4; i++) {
    lua_pushnumber(L, i);
    lua_setfield(L, -2, levels[i]);
  }
  lua_pushstring(L, SR_VERSION);
  lua_setfield(L, -2, "REDIS_VERSION");
  lua_pushnumber(L, SR_VERSION_NUM);
  lua_setfield(L, -2, "REDIS_VERSION_NUM");
  lua_setglobal(L, "redis");
}

static int global_index(lua_State *L) {
  lua_pushvalue(L, 2);
  lua_rawget(L, lua_upvalueindex(1));
  if (!lua_isnil(L, -1))
    return 1;
  return luaL_error(
      L, "Script attempted to access nonexistent global variable '%s'",
      lua_tostring(L, 2));
}

static int global_newindex(lua_State *L) {
  return luaL_error(L, "Attempt to modify a readonly table");
}

/* The environment of every script from now on: an empty table whose reads
 * go to the real globals and whose writes fail. */
static void protect_globals(lua_State *L, sr_lua_t *l) {
  lua_pushvalue(L, LUA_GLOBALSINDEX);
  lua_pushvalue(L, -1);
  l->globals_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_newtable(L); /* the proxy */
  lua_newtable(L); /* its metatable */
  lua_pushvalue(L, -3);
  lua_pushcclosure(L, global_index, 1);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, global_newindex);
  lua_setfield(L, -2, "__newindex");
  lua_setmetatable(L, -2);
  lua_pushvalue(L, -1);
  lua_setfield(L, -3, "_G");
  lua_replace(L, LUA_GLOBALSINDEX);
  lua_pop(L, 1);
}

static int setup(lua_State *L) {
  sr_lua_t *l = lua_touserdata(L, 1);
  lua_settop(L, 0);
  open_libs(L);
  open_redis(L, l);
  int err = luaL_loadbuffer(L, ERROR_HANDLER, sizeof(ERROR_HANDLER) - 1,
                            "@err_handler");
  RT_ASSERT(err == 0);
  lua_call(L, 0, 1);
  lua_pushvalue(L, -1);
  lua_setglobal(L, "__redis__err__handler");
  l->handler_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_newtable(L);
  l->scripts_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  protect_globals(L, l);
  return 0;
}

sr_lua_t *sr_lua_create(sim_redis_t *m) {
  sr_lua_t *l = calloc(1, sizeof(*l));
  if (l == NULL)
    return NULL;
  l->m = m;
  l->L = lua_newstate(lua_alloc, l);
  if (l->L == NULL || lua_cpcall(l->L, setup, l) != 0) {
    sr_lua_destroy(l);
    return NULL;
  }
  return l;
}

void sr_lua_destroy(sr_lua_t *l) {
  if (l == NULL)
    return;
  if (l->L != NULL)
    lua_close(l->L);
  free(l);
}

/* ---- A script's value to RESP (luaReplyToRedisReply) --------------------- */

/* (long long) of a double, as x86's conversion gives it where C leaves it
 * undefined (NaN, out of range): the smallest long long. */
static long long number_to_ll(lua_Number v) {
  if (!(v >= -9223372036854775808.0 && v < 9223372036854775808.0))
    return LLONG_MIN;
  return (long long)v;
}

/* The string in field `name` of the table on top, if that is a string
 * (rawget, as Redis). */
static const char *string_field(lua_State *L, const char *name) {
  lua_pushstring(L, name);
  lua_rawget(L, -2);
  const char *s = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
  lua_pop(L, 1); /* still referenced by the table */
  return s;
}

/* RESP3-era reply tables Redis 7.0 also takes in RESP2. */
static bool has_unmodelled_field(lua_State *L) {
  static const struct {
    const char *name;
    int type;
  } fields[] = {{"double", LUA_TNUMBER},
                {"big_number", LUA_TSTRING},
                {"verbatim_string", LUA_TTABLE},
                {"map", LUA_TTABLE},
                {"set", LUA_TTABLE}};
  for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
    lua_pushstring(L, fields[i].name);
    lua_rawget(L, -2);
    bool present = lua_type(L, -1) == fields[i].type;
    lua_pop(L, 1);
    if (present)
      return true;
  }
  return false;
}

static void reply_value(lua_State *L, sim_redis_buf_t *out);

static void reply_table(lua_State *L, sim_redis_buf_t *out) {
  const char *s;
  if ((s = string_field(L, "err")) != NULL) {
    sr_reply_error(out, s, strlen(s)); /* "-%s": cut at a NUL */
    return;
  }
  if ((s = string_field(L, "ok")) != NULL) {
    sr_reply_status(out, s);
    return;
  }
  if (has_unmodelled_field(L)) {
    sr_reply_errorf(out, "ERR sim_redis: a script reply with a double, "
                         "big_number, verbatim_string, map or set field is "
                         "not modelled");
    return;
  }
  int n = 0;
  for (;; n++) {
    lua_rawgeti(L, -1, n + 1);
    bool end = lua_isnil(L, -1);
    lua_pop(L, 1);
    if (end)
      break;
  }
  sr_reply_array(out, n);
  for (int j = 1; j <= n; j++) {
    lua_rawgeti(L, -1, j);
    reply_value(L, out);
  }
}

/* Reply the value on top of the stack, and pop it. */
static void reply_value(lua_State *L, sim_redis_buf_t *out) {
  if (!lua_checkstack(L, 4)) {
    sr_reply_errorf(out, "ERR reached lua stack limit");
    lua_pop(L, 1);
    return;
  }
  size_t n;
  const char *s;
  switch (lua_type(L, -1)) {
  case LUA_TSTRING:
    s = lua_tolstring(L, -1, &n);
    sr_reply_bulk(out, s, n);
    break;
  case LUA_TBOOLEAN:
    lua_toboolean(L, -1) ? sr_reply_int(out, 1) : sr_reply_nil(out);
    break;
  case LUA_TNUMBER: sr_reply_int(out, number_to_ll(lua_tonumber(L, -1))); break;
  case LUA_TTABLE: reply_table(L, out); break;
  default: sr_reply_nil(out);
  }
  lua_pop(L, 1);
}

/* ---- EVAL ---------------------------------------------------------------- */

typedef struct eval_job {
  sr_lua_t *l;
  sr_ctx_t *c;
  int numkeys;
} eval_job_t;

/* Push the compiled script (from the cache, or compiled now); false after
 * replying the compile error. */
static bool push_script(lua_State *L, sr_lua_t *l, sr_ctx_t *c) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, l->scripts_ref);
  lua_pushlstring(L, l->fname, SR_FNAME_LEN);
  lua_rawget(L, -2);
  if (lua_isfunction(L, -1)) {
    lua_remove(L, -2);
    return true;
  }
  lua_pop(L, 2);
  if (luaL_loadbuffer(L, c->argv[1], c->lens[1], "@user_script") != 0) {
    size_t n;
    const char *msg = lua_tolstring(L, -1, &n);
    sr_reply_error2(c->out, "ERR Error compiling script (new function): ", msg,
                    n);
    lua_pop(L, 1);
    return false;
  }
  if (l->scripts == SIM_REDIS_SCRIPTS_MAX) { /* forget them all */
    luaL_unref(L, LUA_REGISTRYINDEX, l->scripts_ref);
    lua_newtable(L);
    l->scripts_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    l->scripts = 0;
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, l->scripts_ref);
  lua_pushlstring(L, l->fname, SR_FNAME_LEN);
  lua_pushvalue(L, -3);
  lua_rawset(L, -3);
  lua_pop(L, 1);
  l->scripts++;
  return true;
}

static void set_array(lua_State *L, sr_lua_t *l, const char *name,
                      const char *const *argv, const size_t *lens, int n) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, l->globals_ref);
  lua_pushstring(L, name);
  lua_createtable(L, n, 0);
  for (int j = 0; j < n; j++) {
    lua_pushlstring(L, argv[j], lens[j]);
    lua_rawseti(L, -2, j + 1);
  }
  lua_rawset(L, -3);
  lua_pop(L, 1);
}

static void append_str(sim_redis_buf_t *b, const char *s) {
  sr_buf_append(b, s, strlen(s));
}

/* A failed script: Redis's luaCallFunction turns the handler's table into
 * "<err> script: <sha1>, on <source>:<line>." */
static void reply_script_error(lua_State *L, sr_lua_t *l,
                               sim_redis_buf_t *out) {
  if (!lua_istable(L, -1)) {
    const char *msg =
        lua_isstring(L, -1) ? lua_tostring(L, -1) : "execution failure";
    sr_reply_errorf(out, "ERR Error running script %s, %.100s\n", l->fname + 2,
                    msg);
    return;
  }
  const char *fields[3] = {"err", "source", "line"};
  const char *got[3] = {NULL, NULL, NULL};
  for (int i = 0; i < 3; i++) {
    lua_getfield(L, -1 - i, fields[i]); /* each stays on the stack */
    got[i] = lua_isstring(L, -1) ? lua_tostring(L, -1) : NULL;
  }
  sim_redis_buf_t text;
  sim_redis_buf_init(&text);
  append_str(&text, got[0] != NULL ? got[0] : "");
  if (got[1] != NULL && got[2] != NULL) {
    append_str(&text, " script: ");
    append_str(&text, l->fname + 2);
    append_str(&text, ", on ");
    append_str(&text, got[1]);
    append_str(&text, ":");
    append_str(&text, got[2]);
    append_str(&text, ".");
  }
  if (text.failed)
    out->failed = true;
  else
    sr_reply_error(out, (const char *)text.data, text.len);
  sim_redis_buf_deinit(&text);
  lua_pop(L, 3);
}

static int eval_protected(lua_State *L) {
  eval_job_t *job = lua_touserdata(L, 1);
  sr_lua_t *l = job->l;
  sr_ctx_t *c = job->c;
  lua_settop(L, 0);
  if (!push_script(L, l, c))
    return 0;
  set_array(L, l, "KEYS", c->argv + 3, c->lens + 3, job->numkeys);
  set_array(L, l, "ARGV", c->argv + 3 + job->numkeys,
            c->lens + 3 + job->numkeys, c->argc - 3 - job->numkeys);
  lua_rawgeti(L, LUA_REGISTRYINDEX, l->handler_ref);
  lua_insert(L, -2);
  l->steps = 0;
  lua_sethook(L, count_hook, LUA_MASKCOUNT, SR_HOOK_EVERY);
  l->running = c;
  int err = lua_pcall(L, 0, 1, -2);
  l->running = NULL;
  lua_sethook(L, NULL, 0, 0);
  if (err != 0)
    reply_script_error(L, l, c->out);
  else
    reply_value(L, c->out);
  return 0;
}

void sr_cmd_eval(sr_ctx_t *c) {
  sr_lua_t *l = c->m->lua;
  long long numkeys;
  if (!sr_parse_ll(c->argv[2], c->lens[2], &numkeys)) {
    sr_reply_error(c->out, SR_ERR_NOT_INT, strlen(SR_ERR_NOT_INT));
    return;
  }
  if (numkeys > c->argc - 3) {
    sr_reply_errorf(c->out,
                    "ERR Number of keys can't be greater than number of args");
    return;
  }
  if (numkeys < 0) {
    sr_reply_errorf(c->out, "ERR Number of keys can't be negative");
    return;
  }
  memcpy(l->fname, "f_", 2);
  sha1_hex(c->argv[1], c->lens[1], l->fname + 2);
  eval_job_t job = {.l = l, .c = c, .numkeys = (int)numkeys};
  size_t start = c->out->len;
  l->mem_limited = true;
  int err = lua_cpcall(l->L, eval_protected, &job);
  l->mem_limited = false;
  if (err != 0) { /* out of memory outside the script: not Redis's text */
    c->out->len = start;
    sr_reply_errorf(c->out, "ERR sim_redis: %s", lua_tostring(l->L, -1));
  }
  lua_settop(l->L, 0);
  l->running = NULL;
  if (l->mem_used > SIM_REDIS_LUA_MEMORY_MAX / 2)
    lua_gc(l->L, LUA_GCCOLLECT, 0);
}
