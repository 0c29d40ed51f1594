/* overcookied-replay: play a recorded trace back, bit for bit, and show it.
 *
 *   overcookied-replay TRACE [--until T] [--from T] [--room ID] [--log]
 *                      [--chrome-trace OUT.json] [--static DIR]
 *   overcookied-replay [--until T] [--room ID] [--log] [--chrome-trace OUT]
 *                      --sim OVERCOOKIED-SIM-FLAGS...
 *
 * Replaying a simulator seed and replaying a recorded trace share this
 * program: a trace written by overcookied-sim --record holds the seed's
 * flags and checkpoints, so it is replayed by running the simulator again
 * and checking every checkpoint (sim/sim_trace.h); --sim runs a seed
 * without a trace. The same --until, --room, --log and --chrome-trace work
 * on both.
 *
 * TRACE is a recording directory (overcookied --record DIR) or one file of
 * it. The server's actors are built as the live server built them
 * (server.c, with the flags the trace holds) in the replay world
 * (sim/sim_replay.h), which feeds them the recorded inputs and checks every
 * write and every pass against the recording. The result is one line:
 * "replay: ok ..." (exit 0), or where the replay first did something else,
 * with the records before it (exit 1), or why the trace cannot be used
 * (exit 3). Bad arguments exit 2.
 *
 * --until T stops at T seconds of the recording's time; --from T shows the
 * log and timeline from T on (the replay and its checks still start at 0,
 * since the state at T is built by everything before). --log prints the
 * replayed run's key=value log (debug level). --room ID follows one match:
 * the log and the timeline keep only the room's actor and its players'
 * connections (found by a first replay, then shown by a second).
 * --chrome-trace writes a Chrome Trace Event Format timeline (Perfetto,
 * chrome://tracing): a track per actor, each delivered message as a slice
 * with a flow arrow from its sender, log events (drops, disconnects, room
 * starts and ends) as instant events.
 */
#include "net_record.h"
#include "net_trace_reader.h"
#include "rt_idmap.h"
#include "rt_parse.h"
#include "server.h"
#include "sim_replay.h"
#include "sim_trace.h"
#include "simcli.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { EXIT_OK = 0, EXIT_DIVERGED = 1, EXIT_USAGE = 2, EXIT_TRACE = 3 };

#define ARGS_MAX 64u
#define ROOM_ID_MAX 64u

typedef struct options {
  const char *trace;
  rt_time_ns until;
  rt_time_ns from; /* the log and timeline start here; checks run from 0 */
  const char *room;
  bool log;
  const char *chrome;
  const char *static_dir;
  /* --sim FLAGS...: replay a simulator seed (argv for simcli_parse). */
  int sim_argc;
  char **sim_argv;
} options_t;

static void usage(FILE *out) {
  fprintf(out,
          "usage: overcookied-replay TRACE [options]\n"
          "  TRACE                 a recording directory (overcookied --record)"
          "\n                        or one of its files\n"
          "  --until T             stop at T seconds of recorded time\n"
          "  --from T              show the log and timeline from T seconds\n"
          "                        on (everything before is still replayed\n"
          "                        and checked)\n"
          "  --room ID             follow one match (log and timeline)\n"
          "  --log                 print the replayed run's key=value log\n"
          "  --chrome-trace OUT    write a timeline for Perfetto or\n"
          "                        chrome://tracing (JSON)\n"
          "  --static DIR          the browser files, if not where the\n"
          "                        recording server had them\n"
          "  --sim FLAGS...        instead of a trace: run a simulator seed\n"
          "                        (overcookied-sim's flags, last) and show\n"
          "                        it the same way\n"
          "A trace written by overcookied-sim --record runs the simulator\n"
          "again with its flags and checks every checkpoint.\n");
}

/* Seconds of recorded time ("12.5" or "12.5s"). */
static int parse_seconds(const char *v, rt_time_ns *out) {
  return rt_parse_seconds(v, "s", (rt_time_ns)1000000000 * RT_NS_PER_S, out);
}

static int parse_args(int argc, char **argv, options_t *o) {
  *o = (options_t){.until = RT_TIME_NEVER};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      usage(stdout);
      exit(EXIT_OK);
    } else if (strcmp(a, "--log") == 0) {
      o->log = true;
    } else if ((strcmp(a, "--until") == 0 || strcmp(a, "--from") == 0) &&
               v != NULL) {
      rt_time_ns t;
      if (parse_seconds(v, &t) < 0) {
        fprintf(stderr, "overcookied-replay: bad %s '%s' (seconds)\n", a, v);
        return -1;
      }
      *(strcmp(a, "--until") == 0 ? &o->until : &o->from) = t;
      i++;
    } else if (strcmp(a, "--room") == 0 && v != NULL &&
               strlen(v) < ROOM_ID_MAX) {
      o->room = v;
      i++;
    } else if (strcmp(a, "--chrome-trace") == 0 && v != NULL) {
      o->chrome = v;
      i++;
    } else if (strcmp(a, "--static") == 0 && v != NULL) {
      o->static_dir = v;
      i++;
    } else if (strcmp(a, "--sim") == 0) {
      /* The rest are overcookied-sim's flags; argv[i] stands in for the
       * program name. */
      o->sim_argc = argc - i;
      o->sim_argv = argv + i;
      break;
    } else if (a[0] != '-' && o->trace == NULL) {
      o->trace = a;
    } else {
      fprintf(stderr, "overcookied-replay: bad or incomplete option '%s'\n", a);
      usage(stderr);
      return -1;
    }
  }
  if (o->from > o->until) {
    fprintf(stderr, "overcookied-replay: --from is after --until\n");
    return -1;
  }
  if ((o->trace == NULL) == (o->sim_argv == NULL)) {
    fprintf(stderr, "overcookied-replay: a trace, or --sim and a seed's "
                    "flags (see --help)\n");
    return -1;
  }
  return 0;
}

/* ---- Following one room -------------------------------------------------- */

/* The actors of one match: its Room, and the connections that exchanged
 * messages with it. A set of ids (values unused). */
typedef struct follow {
  const char *room_id;
  rt_actor_id_t room_actor;
  rt_idmap_t actors;
  rt_world_t *world;
} follow_t;

static bool follows(const follow_t *f, rt_actor_id_t id) {
  return id != 0 && rt_idmap_get(&f->actors, id) != NULL;
}

static void follow_add(follow_t *f, rt_actor_id_t id) {
  if (id != 0 && !follows(f, id))
    (void)rt_idmap_put(&f->actors, id, (void *)1);
}

/* "key=value" in a log line: the value's start and length, or NULL. */
static const char *field(const char *line, size_t len, const char *key,
                         size_t *vlen) {
  size_t klen = strlen(key);
  for (size_t i = 0; i + klen + 1 <= len; i++) {
    if ((i == 0 || line[i - 1] == ' ') && memcmp(line + i, key, klen) == 0 &&
        line[i + klen] == '=') {
      const char *v = line + i + klen + 1;
      size_t n = 0;
      while (v + n < line + len && v[n] != ' ' && v[n] != '\n')
        n++;
      *vlen = n;
      return v;
    }
  }
  return NULL;
}

static rt_actor_id_t line_actor(const char *line, size_t len) {
  size_t n;
  const char *v = field(line, len, "actor", &n);
  return v != NULL ? (rt_actor_id_t)strtoull(v, NULL, 10) : 0;
}

static bool line_mentions_room(const char *line, size_t len, const char *id) {
  size_t n;
  const char *v = field(line, len, "room", &n);
  return v != NULL && n == strlen(id) && memcmp(v, id, n) == 0;
}

/* ---- The timeline (Chrome Trace Event Format) ---------------------------- */

typedef struct track {
  double last_ts; /* µs: the actor's latest slice, where its sends start */
} track_t;

typedef struct chrome {
  FILE *out;
  bool first;
  rt_idmap_t tracks; /* actor id -> track_t (ids are nonzero) */
  track_t world;     /* tid 0: what happened outside any actor */
  bool world_named;
  rt_time_ns at; /* world time of the last event */
  uint32_t step; /* events already at that time: spread by 1 ns */
  uint64_t events;
  bool failed;
} chrome_t;

static void chrome_emit(chrome_t *c, cJSON *ev) {
  char *text = cJSON_PrintUnformatted(ev);
  cJSON_Delete(ev);
  if (text == NULL) {
    c->failed = true;
    return;
  }
  if (fprintf(c->out, "%s%s", c->first ? "\n" : ",\n", text) < 0)
    c->failed = true;
  c->first = false;
  c->events++;
  cJSON_free(text);
}

static cJSON *chrome_event(const char *ph, const char *name, uint64_t tid,
                           double ts) {
  cJSON *ev = cJSON_CreateObject();
  cJSON_AddStringToObject(ev, "ph", ph);
  cJSON_AddStringToObject(ev, "name", name);
  cJSON_AddNumberToObject(ev, "pid", 1);
  cJSON_AddNumberToObject(ev, "tid", (double)tid);
  cJSON_AddNumberToObject(ev, "ts", ts);
  return ev;
}

/* Events at one world time are spread 1 ns apart, in delivery order, so
 * slices on a track never overlap and their order shows. */
static double chrome_ts(chrome_t *c, rt_time_ns at) {
  if (at != c->at) {
    c->at = at;
    c->step = 0;
  }
  return (double)at / 1e3 + (double)(c->step++) / 1e3;
}

static track_t *chrome_track(chrome_t *c, rt_actor_id_t id, const char *name) {
  track_t *t = id != 0 ? rt_idmap_get(&c->tracks, id) : NULL;
  if (t != NULL || (id == 0 && c->world_named))
    return id != 0 ? t : &c->world;
  if (id == 0) {
    t = &c->world;
    c->world_named = true;
  } else {
    t = calloc(1, sizeof(*t));
    if (t == NULL || rt_idmap_put(&c->tracks, id, t) < 0) {
      free(t);
      c->failed = true;
      return NULL;
    }
  }
  char label[96];
  if (id == 0)
    snprintf(label, sizeof(label), "world");
  else
    snprintf(label, sizeof(label), "%s %" PRIu64, name != NULL ? name : "actor",
             id);
  cJSON *ev = chrome_event("M", "thread_name", id, 0);
  cJSON *args = cJSON_AddObjectToObject(ev, "args");
  cJSON_AddStringToObject(args, "name", label);
  chrome_emit(c, ev);
  return t;
}

static const char *tag_name(uint16_t tag, char *buf, size_t cap) {
  switch (tag) {
  case RT_TAG_DOWN: return "down";
  case RT_TAG_STREAM: return "stream";
  case RT_TAG_ACCEPT: return "accept";
  case RT_TAG_TIMER: return "timer";
  case RT_TAG_HTTP_REPLY: return "http_reply";
  case RT_TAG_NET_FIRST: return "net_shutdown";
  case RT_TAG_NET_FIRST + 1: return "net_deadline";
  default: break;
  }
  const char *n = game_tag_name(tag);
  if (n != NULL)
    return n;
  snprintf(buf, cap, "tag %u", (unsigned)tag);
  return buf;
}

static void chrome_delivery(chrome_t *c, rt_world_t *w,
                            const rt_delivery_t *d) {
  track_t *to = chrome_track(c, d->actor, d->actor_name);
  track_t *from =
      d->from != 0 ? chrome_track(c, d->from, rt_actor_name(w, d->from)) : NULL;
  if (to == NULL)
    return;
  double ts = chrome_ts(c, d->at);
  char buf[24];
  cJSON *ev =
      chrome_event("X", tag_name(d->tag, buf, sizeof(buf)), d->actor, ts);
  cJSON_AddStringToObject(ev, "cat", "message");
  cJSON_AddNumberToObject(ev, "dur", 0.001);
  cJSON *args = cJSON_AddObjectToObject(ev, "args");
  cJSON_AddNumberToObject(args, "seq", (double)d->seq);
  cJSON_AddNumberToObject(args, "from", (double)d->from);
  chrome_emit(c, ev);
  if (from != NULL) {
    /* The arrow starts at the sender's latest slice: the turn that sent. */
    cJSON *s = chrome_event("s", "send", d->from, from->last_ts);
    cJSON_AddStringToObject(s, "cat", "flow");
    cJSON_AddNumberToObject(s, "id", (double)d->seq);
    chrome_emit(c, s);
    cJSON *f = chrome_event("f", "send", d->actor, ts);
    cJSON_AddStringToObject(f, "cat", "flow");
    cJSON_AddStringToObject(f, "bp", "e");
    cJSON_AddNumberToObject(f, "id", (double)d->seq);
    chrome_emit(c, f);
  }
  to->last_ts = ts;
}

static void chrome_instant(chrome_t *c, rt_time_ns at, rt_actor_id_t actor,
                           const char *line, size_t len) {
  size_t n;
  const char *ev_name = field(line, len, "event", &n);
  char name[64];
  snprintf(name, sizeof(name), "%.*s", ev_name != NULL ? (int)n : 3,
           ev_name != NULL ? ev_name : "log");
  if (chrome_track(c, actor, NULL) == NULL)
    return;
  cJSON *ev = chrome_event("i", name, actor, chrome_ts(c, at));
  cJSON_AddStringToObject(ev, "s", "t");
  cJSON_AddStringToObject(ev, "cat", "log");
  cJSON *args = cJSON_AddObjectToObject(ev, "args");
  char text[RT_LOG_LINE_MAX + 1];
  size_t tl = len < RT_LOG_LINE_MAX ? len : RT_LOG_LINE_MAX;
  memcpy(text, line, tl);
  while (tl > 0 && text[tl - 1] == '\n')
    tl--;
  text[tl] = '\0';
  cJSON_AddStringToObject(args, "line", text);
  chrome_emit(c, ev);
}

static int chrome_open(chrome_t *c, const char *path) {
  memset(c, 0, sizeof(*c));
  c->first = true;
  if (rt_idmap_init(&c->tracks) < 0)
    return -1;
  c->out = fopen(path, "w");
  if (c->out == NULL) {
    rt_idmap_deinit(&c->tracks);
    return -1;
  }
  fputs("{\"displayTimeUnit\":\"ms\",\"traceEvents\":[", c->out);
  cJSON *ev = chrome_event("M", "process_name", 0, 0);
  cJSON *args = cJSON_AddObjectToObject(ev, "args");
  cJSON_AddStringToObject(args, "name", "overcookied (replayed)");
  chrome_emit(c, ev);
  return 0;
}

static int chrome_close(chrome_t *c) {
  fputs("\n]}\n", c->out);
  uint32_t n = 0;
  uint64_t *ids = rt_idmap_sorted_keys(&c->tracks, &n);
  for (uint32_t i = 0; ids != NULL && i < n; i++)
    free(rt_idmap_get(&c->tracks, ids[i]));
  free(ids);
  rt_idmap_deinit(&c->tracks);
  int rc = (fclose(c->out) != 0 || c->failed) ? -1 : 0;
  return rc;
}

/* ---- One replay ---------------------------------------------------------- */

typedef enum { MODE_FIND_ROOM, MODE_SHOW } mode_t_;

typedef struct run {
  const options_t *o;
  mode_t_ mode;
  follow_t *follow; /* --room: NULL otherwise */
  chrome_t *chrome; /* NULL: none */
  rt_world_t *world;
  server_t server;
  bool ended; /* the run is over: what teardown logs is not shown */
} run_t;

static void on_delivery(void *ctx, const rt_delivery_t *d) {
  run_t *r = ctx;
  if (r->ended)
    return;
  follow_t *f = r->follow;
  if (r->mode == MODE_FIND_ROOM) {
    if (f->room_actor == 0)
      return;
    const char *from_name =
        r->world != NULL ? rt_actor_name(r->world, d->from) : NULL;
    if (d->actor == f->room_actor && from_name != NULL &&
        strcmp(from_name, "conn") == 0)
      follow_add(f, d->from);
    if (d->from == f->room_actor && d->actor_name != NULL &&
        strcmp(d->actor_name, "conn") == 0)
      follow_add(f, d->actor);
    return;
  }
  if (f != NULL && !follows(f, d->actor) && !follows(f, d->from))
    return;
  if (d->at < r->o->from)
    return;
  if (r->chrome != NULL && r->world != NULL)
    chrome_delivery(r->chrome, r->world, d);
}

static void on_log(void *ctx, const char *line, size_t len) {
  run_t *r = ctx;
  if (r->ended)
    return;
  follow_t *f = r->follow;
  rt_actor_id_t actor = line_actor(line, len);
  if (r->mode == MODE_FIND_ROOM) {
    size_t n;
    const char *ev = field(line, len, "event", &n);
    if (f->room_actor == 0 && ev != NULL && n == 10 &&
        memcmp(ev, "room.start", 10) == 0 &&
        line_mentions_room(line, len, f->room_id)) {
      f->room_actor = actor;
      follow_add(f, actor);
    }
    return;
  }
  if (f != NULL && !follows(f, actor) &&
      !line_mentions_room(line, len, f->room_id))
    return;
  if (r->o->from > 0 && (r->world == NULL || rt_now(r->world) < r->o->from))
    return;
  if (r->o->log)
    fwrite(line, 1, len, stdout);
  if (r->chrome != NULL) /* the world is set once built */
    chrome_instant(r->chrome, r->world != NULL ? rt_now(r->world) : 0, actor,
                   line, len);
}

static void on_control(void *ctx, uint32_t code) {
  run_t *r = ctx;
  if (code == NET_RECORD_CONTROL_SHUTDOWN && r->server.srv != NULL)
    net_server_shutdown(r->server.srv);
}

typedef struct listen_ctx {
  sim_replay_t *replay;
} listen_ctx_t;

static int do_listen(void *ctx, rt_listener_t **out) {
  listen_ctx_t *l = ctx;
  return sim_replay_listen(l->replay, 0, out);
}

/* The recorded flags, one per line, as argv for server_options_parse. The
 * strings point into buf. Every '\n' ends a field, so an empty line is an
 * empty argument, as the live server saw it (strtok would drop it and
 * shift the flags after it). */
static int split_config(char *buf, char **argv, int cap) {
  int argc = 1;
  argv[0] = "overcookied";
  if (buf[0] == '\0')
    return argc; /* no flags at all */
  for (char *t = buf; t != NULL;) {
    if (argc == cap)
      return -1;
    argv[argc++] = t;
    char *nl = strchr(t, '\n');
    if (nl != NULL)
      *nl++ = '\0';
    t = nl;
  }
  return argc;
}

/* What is being replayed. */
typedef enum { KIND_LIVE, KIND_SIM_TRACE, KIND_SIM_SEED } kind_t;

/* A live recording in the replay world: 0 (EXIT_*) with *rep filled, or
 * EXIT_TRACE with err set when it cannot even start. */
static int replay_live(run_t *run, sim_replay_report_t *rep, char *err,
                       size_t err_cap) {
  const options_t *o = run->o;
  bool want_log = run->mode == MODE_FIND_ROOM || o->log || run->chrome != NULL;
  sim_replay_config_t cfg = {
      .log_level = want_log ? RT_LOG_DEBUG : RT_LOG_OFF,
      .log_write = on_log,
      .log_ctx = run,
      .trace = on_delivery,
      .trace_ctx = run,
      .control = on_control,
      .control_ctx = run,
  };
  sim_replay_t *replay = NULL;
  if (sim_replay_open(o->trace, &cfg, &replay, err, err_cap) < 0)
    return EXIT_TRACE;
  const net_trace_header_t *hdr = sim_replay_header(replay);
  char config[NET_TRACE_CONFIG_MAX + 1];
  snprintf(config, sizeof(config), "%s", hdr->config);
  char *argv[ARGS_MAX];
  int argc = split_config(config, argv, (int)ARGS_MAX);
  server_options_t so;
  /* --help in a trace is not a server: a trace error, not a usage text. */
  if (argc < 0 || server_options_parse(argc, argv, 1, &so) != 0) {
    snprintf(err, err_cap, "the trace's server flags are not understood: %s",
             hdr->config);
    sim_replay_close(replay);
    return EXIT_TRACE;
  }
  /* A trace from before a limit existed names none: its server ran
   * without it, and so does the replay (their defaults are on now). */
  if (strstr(hdr->config, "\n--max-connections-per-address\n") == NULL)
    so.peers = (net_peers_config_t){0};
  if (strstr(hdr->config, "\n--lobby-idle\n") == NULL)
    so.game.lobby_idle = 0;
  if (o->static_dir != NULL)
    so.static_dir = o->static_dir;
  run->world = sim_replay_world(replay);
  listen_ctx_t lc = {.replay = replay};
  /* Token checks come from the recording: the key is never needed. */
  game_store_config_t store = {
      .path = ":memory:",
      .label = game_store_is_postgres(so.db) ? "postgres" : NULL};
  int rc = server_start(run->world, &so, "replay-holds-no-token-key", &store,
                        do_listen, &lc, &run->server, err, err_cap);
  if (rc < 0) {
    sim_replay_close(replay);
    server_free(&run->server);
    run->world = NULL;
    return EXIT_TRACE;
  }
  err[0] = '\0';
  sim_replay_status_t st = sim_replay_run(replay, o->until, rep);
  run->ended = o->until != RT_TIME_NEVER; /* a whole recording's teardown
                                             was recorded and is shown */
  sim_replay_close(replay);
  server_free(&run->server);
  run->world = NULL;
  return st == SIM_REPLAY_DONE || st == SIM_REPLAY_UNTIL ? EXIT_OK
         : st == SIM_REPLAY_DIVERGED                     ? EXIT_DIVERGED
                                                         : EXIT_TRACE;
}

/* ---- A simulated run: the same seed again -------------------------------- */

typedef struct sim_ctx {
  run_t *run;
  sim_trace_t *check; /* the recording's checkpoints; NULL: none */
} sim_ctx_t;

static void on_sim_delivery(void *ctx, const rt_delivery_t *d) {
  sim_ctx_t *c = ctx;
  if (c->check != NULL)
    sim_trace_delivery(c->check, d);
  on_delivery(c->run, d);
}

/* Run the simulator with flags argv[1..argc) (a trace's, or --sim's), and
 * with a trace to check against when given. */
static int replay_sim(run_t *run, int argc, char **argv, sim_trace_t *check,
                      sim_replay_report_t *rep, simrun_summary_t *sum,
                      char *err, size_t err_cap) {
  const options_t *o = run->o;
  simcli_options_t so;
  int parsed = simcli_parse(argc, argv, &so);
  if (parsed == SIMCLI_HELP && check == NULL) { /* --sim --help: the user's */
    simcli_usage(stdout);
    exit(EXIT_OK);
  }
  if (parsed != 0 || so.swarm > 0) {
    snprintf(err, err_cap, "the simulator's flags are not understood%s",
             so.swarm > 0 ? " (one seed, not a swarm)" : "");
    /* --sim's flags are the user's; a trace's are the trace's fault. */
    return check == NULL ? EXIT_USAGE : EXIT_TRACE;
  }
  simrun_plan_t plan;
  simcli_plan(&so, so.seed, &plan);
  simrun_config_t cfg;
  simcli_config(&so, &plan, &cfg);
  bool want_log = run->mode == MODE_FIND_ROOM || o->log || run->chrome != NULL;
  cfg.log_level = want_log ? RT_LOG_DEBUG : RT_LOG_OFF;
  cfg.log_write = on_log;
  cfg.log_ctx = run;
  sim_ctx_t sc = {.run = run, .check = check};
  cfg.trace = on_sim_delivery;
  cfg.trace_ctx = &sc;
  simrun_t *sim = NULL;
  int rc = simrun_create(&cfg, &sim);
  if (rc < 0) {
    snprintf(err, err_cap, "cannot start the simulator: %s", rt_strerror(rc));
    return EXIT_TRACE;
  }
  run->world = sim_world_rt(simrun_world(sim));
  rc = simrun_populate(sim, &plan.mix);
  bool until = o->until != RT_TIME_NEVER;
  if (rc == 0 && until)
    (void)simrun_run_to(sim, o->until);
  else if (rc == 0)
    (void)simrun_finish(sim);
  simrun_summary(sim, sum);
  run->ended = until; /* a finished run has already wound down */
  simrun_destroy(sim);
  run->world = NULL;
  err[0] = '\0';
  sim_replay_status_t st;
  if (check != NULL) {
    st = sim_trace_finish(check, sum->hash, until, rep);
  } else {
    memset(rep, 0, sizeof(*rep));
    st = until ? SIM_REPLAY_UNTIL : SIM_REPLAY_DONE;
    rep->status = st;
    rep->deliveries = sum->deliveries;
    rep->time = sum->end_time;
    rep->run_hash = sum->hash;
  }
  return st == SIM_REPLAY_DONE || st == SIM_REPLAY_UNTIL ? EXIT_OK
         : st == SIM_REPLAY_DIVERGED                     ? EXIT_DIVERGED
                                                         : EXIT_TRACE;
}

/* One replay of whatever was asked, live or simulated. */
static int replay_once(run_t *run, kind_t kind, sim_replay_report_t *rep,
                       simrun_summary_t *sum, char *err, size_t err_cap) {
  const options_t *o = run->o;
  if (kind == KIND_LIVE)
    return replay_live(run, rep, err, err_cap);
  if (kind == KIND_SIM_SEED)
    return replay_sim(run, o->sim_argc, o->sim_argv, NULL, rep, sum, err,
                      err_cap);
  sim_trace_t *check = NULL;
  if (sim_trace_open(o->trace, &check, err, err_cap) < 0)
    return EXIT_TRACE;
  char config[NET_TRACE_CONFIG_MAX + 1];
  snprintf(config, sizeof(config), "%s", sim_trace_header(check)->config);
  char *argv[ARGS_MAX];
  int argc = split_config(config, argv, (int)ARGS_MAX);
  int status = EXIT_TRACE;
  if (argc < 0)
    snprintf(err, err_cap, "the trace's simulator flags are too many");
  else
    status = replay_sim(run, argc, argv, check, rep, sum, err, err_cap);
  (void)sim_trace_close(check, NULL, 0);
  return status;
}

/* Which kind a trace is, from its header; KIND_LIVE when unsure (the live
 * path then says what is wrong with it). */
static kind_t kind_of(const options_t *o) {
  if (o->sim_argv != NULL)
    return KIND_SIM_SEED;
  net_trace_reader_t *r = NULL;
  if (net_trace_reader_open(o->trace, &r, NULL, 0) < 0)
    return KIND_LIVE;
  bool sim = (net_trace_reader_header(r)->flags & NET_RECORD_F_SIM) != 0;
  net_trace_reader_close(r);
  return sim ? KIND_SIM_TRACE : KIND_LIVE;
}

static void print_report(kind_t kind, const sim_replay_report_t *rep,
                         const simrun_summary_t *sum, int status) {
  const char *verdict = status == EXIT_OK         ? "ok"
                        : status == EXIT_DIVERGED ? "DIVERGED"
                                                  : "TRACE ERROR";
  const char *how = rep->status == SIM_REPLAY_UNTIL  ? "stopped (--until)"
                    : rep->status != SIM_REPLAY_DONE ? "stopped"
                    : kind == KIND_LIVE              ? "the whole recording"
                                                     : "the whole run";
  if (kind == KIND_LIVE) {
    printf("replay: %s: %s at t=%.6f s: %" PRIu64 " records, %" PRIu64
           " passes, %" PRIu64 " checkpoints matched, %" PRIu64
           " accepts, %" PRIu64 " connects, %" PRIu64 " reads (%" PRIu64
           " bytes), %" PRIu64 " writes (%" PRIu64 " bytes, %" PRIu64
           " short), %" PRIu64 " externals, %" PRIu64 " deliveries\n",
           verdict, how, (double)rep->time / 1e9, rep->records, rep->passes,
           rep->checkpoints, rep->accepts, rep->connects, rep->reads,
           rep->bytes_in, rep->writes, rep->bytes_out, rep->writes_short,
           rep->externals, rep->deliveries);
  } else {
    printf("replay: %s: %s (simulated seed %" PRIu64 ") at t=%.6f s: %" PRIu64
           " deliveries, %" PRIu64 " checkpoints matched\n",
           verdict, how, sum->seed, (double)rep->time / 1e9, rep->deliveries,
           rep->checkpoints);
    if (rep->status == SIM_REPLAY_DONE && !sum->passed)
      printf("replay: the run fails its checks, as recorded: %s\n",
             sum->failure);
  }
  if (status == EXIT_OK) {
    if (kind == KIND_LIVE)
      printf("replay: output hash %016" PRIx64 ", run hash %016" PRIx64 "\n",
             rep->output_hash, rep->run_hash);
    else
      printf("replay: hash=%016" PRIx64 "\n", rep->run_hash);
    return;
  }
  printf("replay: at record %" PRIu64 " (t=%.6f s)", rep->record_index,
         (double)rep->time / 1e9);
  if (rep->stream != 0)
    printf(", stream %" PRIu64, rep->stream);
  if (rep->actor != 0) {
    char buf[24];
    printf(", actor %" PRIu64 " (%s) handling message %" PRIu64
           " (%s from actor %" PRIu64 ")",
           rep->actor, rep->actor_name != NULL ? rep->actor_name : "?",
           rep->delivery, tag_name(rep->tag, buf, sizeof(buf)), rep->from);
  }
  printf(":\nreplay: %s\n", rep->what);
  if (rep->context[0] != '\0')
    printf("replay: the records before it:\n%s", rep->context);
}

int main(int argc, char **argv) {
  options_t o;
  if (parse_args(argc, argv, &o) < 0)
    return EXIT_USAGE;
  kind_t kind = kind_of(&o);
  char err[NET_TRACE_ERR_MAX + 256];
  sim_replay_report_t rep;
  simrun_summary_t sum;
  memset(&sum, 0, sizeof(sum));
  follow_t follow = {.room_id = o.room};
  if (o.room != NULL) {
    if (rt_idmap_init(&follow.actors) < 0)
      return EXIT_TRACE;
    run_t find = {.o = &o, .mode = MODE_FIND_ROOM, .follow = &follow};
    err[0] = '\0';
    int status = replay_once(&find, kind, &rep, &sum, err, sizeof(err));
    if ((status == EXIT_TRACE || status == EXIT_USAGE) && err[0] != '\0') {
      fprintf(stderr, "overcookied-replay: %s\n", err);
      rt_idmap_deinit(&follow.actors);
      return status;
    }
    if (follow.room_actor == 0) {
      fprintf(stderr, "overcookied-replay: no room %s starts in this run%s\n",
              o.room, o.until != RT_TIME_NEVER ? " (before --until)" : "");
      rt_idmap_deinit(&follow.actors);
      return EXIT_USAGE;
    }
  }
  chrome_t chrome;
  if (o.chrome != NULL && chrome_open(&chrome, o.chrome) < 0) {
    fprintf(stderr, "overcookied-replay: cannot write %s: %s\n", o.chrome,
            strerror(errno));
    if (o.room != NULL)
      rt_idmap_deinit(&follow.actors);
    return EXIT_USAGE;
  }
  run_t show = {.o = &o,
                .mode = MODE_SHOW,
                .follow = o.room != NULL ? &follow : NULL,
                .chrome = o.chrome != NULL ? &chrome : NULL};
  err[0] = '\0';
  memset(&rep, 0, sizeof(rep));
  int status = replay_once(&show, kind, &rep, &sum, err, sizeof(err));
  fflush(stdout);
  if (o.chrome != NULL && chrome_close(&chrome) < 0) {
    fprintf(stderr, "overcookied-replay: writing %s failed\n", o.chrome);
    status = status == EXIT_OK ? EXIT_TRACE : status;
  }
  if (o.room != NULL)
    rt_idmap_deinit(&follow.actors);
  if ((status == EXIT_TRACE || status == EXIT_USAGE) && err[0] != '\0') {
    /* It could not start: the trace cannot be opened, or the server or
     * the simulator not built from its flags. */
    fprintf(stderr, "overcookied-replay: %s\n", err);
    return status;
  }
  print_report(kind, &rep, &sum, status);
  if (o.chrome != NULL)
    printf("replay: timeline %s (%" PRIu64 " events)\n", o.chrome,
           chrome.events);
  return status;
}
