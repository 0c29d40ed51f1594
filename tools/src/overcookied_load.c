/* overcookied-load: many players against one server, in one process.
 *
 * Each virtual player is an actor in a live world (libevent): it logs in
 * over HTTP, opens a WebSocket with the project's wslay client, queues,
 * plays (CLICK with seq at --rate per second with jitter, COOKIE_CLICK after
 * a human reaction time) and queues again after GAME_OVER. Latency is the
 * time from sending CLICK seq n to the UPDATE carrying seq n, measured after
 * the ramp. With --server-pid, the server's CPU time and RSS over the same
 * window give CPU per acknowledged click and memory per connection.
 *
 * Exit status: 0 when the run worked (at most 1 % of connections failed).
 */
#include "net_http_client.h"
#include "net_live.h"
#include "net_ws_client.h"
#include "rt_parse.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define PLAYERS_MAX 200000u
#define SEQ_RING 512u /* outstanding clicks remembered per player */
#define HIST_SUB 64u  /* sub-buckets per power of two */
#define HIST_POW 40u  /* up to 2^40 ns (18 minutes) */
#define REACTION_MIN_MS 180
#define REACTION_MAX_MS 450
#define LOGIN_BUF 4096u

enum {
  TAG_TICK = RT_TAG_USER, /* controller's ramp/report timer */
  TAG_CLICK,              /* player's click timer */
  TAG_COOKIE,             /* player's reaction timer */
  TAG_START,              /* start a player */
};

typedef enum { MODE_PLAY = 0, MODE_IDLE } mode_t_;

typedef struct options {
  char host[256];
  uint16_t port;
  uint32_t players;
  double rate;
  double duration_s;
  double ramp_s;
  mode_t_ mode;
  long server_pid;
  bool json;
  uint64_t seed;
} options_t;

/* ---- Latency histogram (log-linear, ~1.5 % resolution) ------------------- */

typedef struct hist {
  uint64_t counts[HIST_POW * HIST_SUB];
  uint64_t total;
  rt_time_ns max;
} hist_t;

static uint32_t hist_index(rt_time_ns v) {
  if (v < (rt_time_ns)HIST_SUB)
    return (uint32_t)(v < 0 ? 0 : v);
  uint32_t p = 63u - (uint32_t)__builtin_clzll((unsigned long long)v);
  uint32_t shift = p - 6u; /* HIST_SUB = 2^6 */
  uint32_t idx =
      (p - 5u) * HIST_SUB + (uint32_t)((v >> shift) & (HIST_SUB - 1));
  return idx < HIST_POW * HIST_SUB ? idx : HIST_POW * HIST_SUB - 1;
}

static rt_time_ns hist_value(uint32_t idx) {
  if (idx < HIST_SUB)
    return idx;
  uint32_t p = idx / HIST_SUB + 5u;
  uint32_t sub = idx % HIST_SUB;
  return ((rt_time_ns)(HIST_SUB + sub)) << (p - 6u);
}

static void hist_add(hist_t *h, rt_time_ns v) {
  h->counts[hist_index(v)]++;
  h->total++;
  if (v > h->max)
    h->max = v;
}

static rt_time_ns hist_quantile(const hist_t *h, double q) {
  if (h->total == 0)
    return 0;
  uint64_t want = (uint64_t)ceil(q * (double)h->total);
  uint64_t seen = 0;
  for (uint32_t i = 0; i < HIST_POW * HIST_SUB; i++) {
    seen += h->counts[i];
    if (seen >= want)
      return hist_value(i) < h->max ? hist_value(i) : h->max;
  }
  return h->max;
}

/* ---- Shared run state ---------------------------------------------------- */

typedef struct counters {
  uint64_t logins, login_failures;
  uint64_t connections, connect_failures;
  uint64_t unexpected_closes;
  uint64_t matches_started, matches_finished;
  uint64_t clicks_sent, acks, cookie_clicks;
  uint64_t window_clicks, window_acks; /* clicks sent in the window, and
                                          how many of those were acked */
  uint64_t late_clicks, window_late;   /* answered not_in_game: they crossed
                                          the game's end (see on_late_answer) */
  uint64_t errors;
  uint64_t msg_update, msg_opponent, msg_spawn, msg_start, msg_over, msg_queued,
      msg_other;
} counters_t;

/* A process's CPU time from /proc: user and system. With this kernel's
 * tick-based accounting (250 Hz) only their sum is trustworthy: the split
 * comes from which mode each tick happened to sample, and for the same
 * binary and load the user share swung from 5 to 13 us per click. So only
 * the sum is reported; a profile (perf) says where the time goes. */
typedef struct {
  double user_s, sys_s;
} cpu_times_t;

typedef struct run {
  options_t opt;
  net_live_t *live;
  rt_world_t *w;
  net_ws_pool_t *ws_pool; /* the players' parked WebSocket contexts */
  counters_t c;         /* whole run */
  counters_t at_window; /* snapshot when the window opened */
  counters_t at_window_end;
  hist_t *hist;
  bool window_open;
  bool draining; /* the window closed: no more clicks, acks still count */
  rt_time_ns window_start, window_end;
  uint32_t started; /* players started so far */
  uint32_t connected_now;
  cpu_times_t cpu_start, cpu_end;
  long rss_base_kb, rss_end_kb;
  bool tty;
} run_t;

/* ---- /proc --------------------------------------------------------------- */

static cpu_times_t proc_cpu_times(long pid) {
  cpu_times_t t = {-1, -1};
  char path[64], buf[1024];
  snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return t;
  size_t n = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  buf[n] = '\0';
  const char *p = strrchr(buf, ')'); /* the name may contain spaces */
  if (p == NULL)
    return t;
  unsigned long utime = 0, stime = 0;
  /* After ")": state(3) ... utime is field 14, stime 15. */
  if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
             &utime, &stime) != 2)
    return t;
  double tick = (double)sysconf(_SC_CLK_TCK);
  t.user_s = (double)utime / tick;
  t.sys_s = (double)stime / tick;
  return t;
}

static long proc_rss_kb(long pid) {
  char path[64], line[256];
  snprintf(path, sizeof(path), "/proc/%ld/status", pid);
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return -1;
  long kb = -1;
  while (fgets(line, sizeof(line), f) != NULL)
    if (strncmp(line, "VmRSS:", 6) == 0)
      kb = strtol(line + 6, NULL, 10);
  fclose(f);
  return kb;
}

/* ---- A virtual player ---------------------------------------------------- */

typedef enum {
  P_LOGIN = 0,
  P_WS,
  P_LOBBY,
  P_QUEUED,
  P_PLAYING,
  P_DONE
} pstate_t;

typedef struct player {
  run_t *run;
  uint32_t index;
  rt_actor_id_t id;
  rt_rng_t rng;
  pstate_t state;
  bool counted; /* included in run->connected_now */
  rt_stream_t *stream;
  /* login */
  char req[LOGIN_BUF];
  uint32_t req_len, req_off;
  net_httpc_t *httpc;
  char token[1100];
  /* websocket */
  net_wsc_t *wsc;
  uint64_t click_timer, cookie_timer;
  int64_t next_seq;
  int64_t last_acked; /* the highest seq acknowledged */
  rt_time_ns sent_at[SEQ_RING];
  int64_t sent_seq[SEQ_RING];
  bool sent_in_window[SEQ_RING];
} player_t;

static void player_fail(player_t *p, bool connect_failure) {
  run_t *r = p->run;
  if (connect_failure)
    r->c.connect_failures++;
  else if (p->state != P_DONE)
    r->c.unexpected_closes++;
  p->state = P_DONE;
  rt_stop(r->w, p->id, RT_REASON_NORMAL);
}

static void send_json(player_t *p, const char *json) {
  net_ws_t *ws = net_wsc_ws(p->wsc);
  if (ws != NULL)
    net_ws_send_text(ws, (const uint8_t *)json, strlen(json));
}

static rt_time_ns click_interval(player_t *p) {
  double mean = 1e9 / p->run->opt.rate;
  double jitter = 0.5 + rt_rng_double(&p->rng); /* 0.5x .. 1.5x */
  return (rt_time_ns)(mean * jitter);
}

static void send_click(player_t *p) {
  run_t *r = p->run;
  int64_t seq = ++p->next_seq;
  char json[96];
  snprintf(json, sizeof(json),
           "{\"type\":\"CLICK\",\"payload\":{\"count\":1,\"seq\":%" PRId64 "}}",
           seq);
  send_json(p, json);
  p->sent_seq[seq % SEQ_RING] = seq;
  p->sent_at[seq % SEQ_RING] = rt_now(r->w);
  p->sent_in_window[seq % SEQ_RING] = r->window_open && !r->draining;
  r->c.clicks_sent++;
  if (p->sent_in_window[seq % SEQ_RING])
    r->c.window_clicks++;
}

static void on_ack(player_t *p, int64_t seq) {
  run_t *r = p->run;
  if (p->sent_seq[seq % SEQ_RING] != seq)
    return;
  r->c.acks++;
  if (seq > p->last_acked)
    p->last_acked = seq;
  rt_time_ns lat = rt_now(r->w) - p->sent_at[seq % SEQ_RING];
  p->sent_seq[seq % SEQ_RING] = 0;
  if (p->sent_in_window[seq % SEQ_RING]) {
    r->c.window_acks++;
    hist_add(r->hist, lat);
  }
}

/* A not_in_game ERROR answers a click (or golden-cookie claim) that crossed
 * the game's end: sent while this player was playing, handled by the server
 * after the room had finished. It may arrive just before GAME_OVER (the
 * connection's actor took the click before the room's last message). Such a
 * click can never be acknowledged, so it is retired as late rather than
 * counted as a missing ack. It is the oldest unanswered click above the
 * highest acknowledged seq: the server handles one connection's messages in
 * order, so an unanswered click below that was scored and its ack dropped,
 * and stays missing. Late clicks are reported apart, so a server that
 * wrongly answered not_in_game mid-game would show in the report. */
static void on_late_answer(player_t *p) {
  run_t *r = p->run;
  r->c.late_clicks++;
  int64_t first = p->next_seq - (int64_t)SEQ_RING + 1;
  if (first <= p->last_acked)
    first = p->last_acked + 1;
  for (int64_t seq = first < 1 ? 1 : first; seq <= p->next_seq; seq++) {
    if (p->sent_seq[seq % SEQ_RING] == seq) {
      p->sent_seq[seq % SEQ_RING] = 0;
      if (p->sent_in_window[seq % SEQ_RING])
        r->c.window_late++;
      return;
    }
  }
  /* None outstanding: it answered a golden-cookie claim. */
}

static void start_clicking(player_t *p) {
  if (p->run->opt.mode != MODE_PLAY || p->click_timer != 0)
    return;
  rt_timer_start(p->run->w, p->id, click_interval(p), 0, TAG_CLICK, 0,
                 &p->click_timer);
}

static void stop_timers(player_t *p) {
  if (p->click_timer != 0)
    rt_timer_cancel(p->run->w, p->click_timer);
  if (p->cookie_timer != 0)
    rt_timer_cancel(p->run->w, p->cookie_timer);
  p->click_timer = p->cookie_timer = 0;
}

static void on_game_message(void *ud, const uint8_t *data, size_t len) {
  player_t *p = ud;
  run_t *r = p->run;
  cJSON *m = cJSON_ParseWithLength((const char *)data, len);
  const cJSON *type = cJSON_GetObjectItemCaseSensitive(m, "type");
  const cJSON *payload = cJSON_GetObjectItemCaseSensitive(m, "payload");
  const char *t = cJSON_IsString(type) ? type->valuestring : "";
  if (strcmp(t, "UPDATE") == 0) {
    r->c.msg_update++;
    const cJSON *seq = cJSON_GetObjectItemCaseSensitive(payload, "seq");
    if (cJSON_IsNumber(seq))
      on_ack(p, (int64_t)seq->valuedouble);
  } else if (strcmp(t, "OPPONENT_CLICK") == 0) {
    r->c.msg_opponent++;
  } else if (strcmp(t, "COOKIE_SPAWN") == 0) {
    r->c.msg_spawn++;
    if (p->cookie_timer == 0 && r->opt.mode == MODE_PLAY) {
      rt_time_ns react =
          rt_rng_range(&p->rng, REACTION_MIN_MS, REACTION_MAX_MS) *
          RT_NS_PER_MS;
      rt_timer_start(r->w, p->id, react, 0, TAG_COOKIE, 0, &p->cookie_timer);
    }
  } else if (strcmp(t, "GAME_START") == 0) {
    r->c.msg_start++;
    const cJSON *resumed = cJSON_GetObjectItemCaseSensitive(payload, "resumed");
    if (!cJSON_IsTrue(resumed))
      r->c.matches_started++;
    p->state = P_PLAYING;
    start_clicking(p);
  } else if (strcmp(t, "GAME_OVER") == 0) {
    r->c.msg_over++;
    r->c.matches_finished++;
    stop_timers(p);
    p->state = P_QUEUED;
    send_json(p, "{\"type\":\"JOIN_QUEUE\"}");
  } else if (strcmp(t, "QUEUED") == 0) {
    r->c.msg_queued++;
  } else if (strcmp(t, "ERROR") == 0) {
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(payload, "code");
    if (cJSON_IsString(code) && strcmp(code->valuestring, "not_in_game") == 0)
      on_late_answer(p);
    else
      r->c.errors++;
  } else {
    r->c.msg_other++;
  }
  cJSON_Delete(m);
}

static const net_ws_callbacks_t ws_callbacks = {.on_text = on_game_message};

static int open_connection(player_t *p) {
  run_t *r = p->run;
  int err =
      net_live_connect(r->live, r->opt.host, r->opt.port, p->id, &p->stream);
  if (err < 0)
    return err;
  return RT_OK;
}

static void httpc_free(player_t *p) {
  if (p->httpc != NULL)
    net_httpc_deinit(p->httpc);
  free(p->httpc);
  p->httpc = NULL;
}

static void start_ws(player_t *p) {
  run_t *r = p->run;
  rt_stream_close(p->stream);
  p->stream = NULL;
  httpc_free(p);
  if (open_connection(p) < 0) {
    player_fail(p, true);
    return;
  }
  char host[300], target[1200];
  snprintf(host, sizeof(host), "%s:%u", r->opt.host, (unsigned)r->opt.port);
  snprintf(target, sizeof(target), "/ws?token=%s", p->token);
  net_wsc_config_t cfg = {
      .host = host, .target = target, .rng = &p->rng, .pool = r->ws_pool};
  if (net_wsc_create(p->stream, &cfg, &ws_callbacks, p, &p->wsc) < 0) {
    player_fail(p, true);
    return;
  }
  p->state = P_WS;
}

static void login_readable(player_t *p) {
  run_t *r = p->run;
  while (p->req_off < p->req_len) {
    int64_t n = rt_stream_write(p->stream, p->req + p->req_off,
                                p->req_len - p->req_off);
    if (n < 0) {
      player_fail(p, true);
      return;
    }
    if (n == 0)
      return;
    p->req_off += (uint32_t)n;
  }
  uint8_t buf[4096];
  for (int i = 0; i < 16; i++) {
    int64_t n = rt_stream_read(p->stream, buf, sizeof(buf));
    if (n == 0)
      return;
    net_httpc_state_t st =
        n > 0 ? net_httpc_feed(p->httpc, buf, (size_t)n) : NET_HTTPC_FAILED;
    if (st == NET_HTTPC_WAITING)
      continue;
    cJSON *body = st == NET_HTTPC_DONE && net_httpc_status(p->httpc) == 200
                      ? cJSON_Parse(p->httpc->body)
                      : NULL;
    const cJSON *token = cJSON_GetObjectItemCaseSensitive(body, "token");
    bool ok =
        cJSON_IsString(token) && strlen(token->valuestring) < sizeof(p->token);
    if (ok)
      snprintf(p->token, sizeof(p->token), "%s", token->valuestring);
    cJSON_Delete(body);
    if (!ok) {
      r->c.login_failures++;
      player_fail(p, true);
      return;
    }
    r->c.logins++;
    start_ws(p);
    return;
  }
  rt_stream_notify(p->stream, RT_STREAM_READABLE);
}

static void ws_event(player_t *p) {
  run_t *r = p->run;
  int st = net_wsc_on_event(p->wsc);
  if (st < 0 || st == NET_WSC_FAILED || st == NET_WSC_REFUSED) {
    player_fail(p, p->state == P_WS);
    return;
  }
  if (p->state == P_WS && st == NET_WSC_OPEN) {
    r->c.connections++;
    r->connected_now++;
    p->counted = true;
    p->state = P_LOBBY;
    if (r->opt.mode == MODE_PLAY) {
      send_json(p, "{\"type\":\"JOIN_QUEUE\"}");
      p->state = P_QUEUED;
    }
    net_ws_flush(net_wsc_ws(p->wsc));
  }
  net_ws_t *ws = net_wsc_ws(p->wsc);
  if (ws != NULL && net_ws_finished(ws))
    player_fail(p, false);
}

static void player_behaviour(rt_actor_t *self, const rt_msg_t *msg) {
  player_t *p = rt_state(self);
  switch (msg->tag) {
  case TAG_START: {
    if (open_connection(p) < 0) {
      player_fail(p, true);
      return;
    }
    char host[300], body[64];
    snprintf(host, sizeof(host), "%s:%u", p->run->opt.host,
             (unsigned)p->run->opt.port);
    snprintf(body, sizeof(body), "{\"name\":\"load%u\"}", p->index);
    int n = net_httpc_request(p->req, sizeof(p->req), "POST", host,
                              "/api/login", NULL, body, false);
    p->httpc = malloc(sizeof(*p->httpc));
    if (p->httpc != NULL)
      net_httpc_init(p->httpc);
    if (n < 0 || p->httpc == NULL) {
      player_fail(p, true);
      return;
    }
    p->req_len = (uint32_t)n;
    return;
  }
  case RT_TAG_STREAM:
    if (p->state == P_LOGIN)
      login_readable(p);
    else
      ws_event(p);
    return;
  case TAG_CLICK:
    p->click_timer = 0;
    if (p->state != P_PLAYING || p->run->draining)
      return;
    send_click(p);
    net_ws_flush(net_wsc_ws(p->wsc));
    start_clicking(p);
    return;
  case TAG_COOKIE:
    p->cookie_timer = 0;
    if (p->state == P_PLAYING) {
      send_json(p, "{\"type\":\"COOKIE_CLICK\"}");
      p->run->c.cookie_clicks++;
      net_ws_flush(net_wsc_ws(p->wsc));
    }
    return;
  default: return;
  }
}

static void player_on_stop(rt_actor_t *self, int reason) {
  (void)reason;
  player_t *p = rt_state(self);
  if (p->counted)
    p->run->connected_now--;
  net_wsc_destroy(p->wsc);
  httpc_free(p);
  if (p->stream != NULL)
    rt_stream_close(p->stream);
  free(p);
}

/* ---- The controller: ramp, window, report -------------------------------- */

#define CONTROL_TICK_NS (100 * RT_NS_PER_MS)
#define DRAIN_NS (1 * RT_NS_PER_S)

static void spawn_player(run_t *r) {
  player_t *p = calloc(1, sizeof(*p));
  if (p == NULL)
    return;
  p->run = r;
  p->index = r->started++;
  rt_world_rng(r->w, RT_RNG_KEY(RT_RNG_SUB_BOT, p->index), &p->rng);
  rt_actor_spec_t spec = {.name = "player",
                          .behaviour = player_behaviour,
                          .on_stop = player_on_stop,
                          .state = p,
                          .mailbox_cap = 16,
                          .overflow = RT_OVERFLOW_REJECT};
  if (rt_spawn(r->w, &spec, &p->id) < 0) {
    free(p);
    r->c.connect_failures++;
    return;
  }
  rt_msg_t m = rt_msg_make(TAG_START, NULL, 0);
  rt_send(r->w, p->id, &m);
}

static void progress(run_t *r) {
  if (!r->tty)
    return;
  double t = (double)rt_now(r->w) / 1e9;
  fprintf(stderr,
          "\r%6.1fs players %u/%u connected %u matches %" PRIu64
          " clicks %" PRIu64 " acks %" PRIu64 " p99 %.1f ms   ",
          t, r->started, r->opt.players, r->connected_now, r->c.matches_started,
          r->c.clicks_sent, r->c.acks,
          (double)hist_quantile(r->hist, 0.99) / 1e6);
  fflush(stderr);
}

static void controller_behaviour(rt_actor_t *self, const rt_msg_t *msg) {
  run_t *r = rt_state(self);
  (void)self;
  if (msg->tag != TAG_TICK)
    return;
  rt_time_ns now = rt_now(r->w);
  rt_time_ns ramp = (rt_time_ns)(r->opt.ramp_s * 1e9);
  uint32_t due =
      ramp <= 0
          ? r->opt.players
          : (uint32_t)((double)r->opt.players * (double)now / (double)ramp);
  if (due > r->opt.players)
    due = r->opt.players;
  while (r->started < due)
    spawn_player(r);
  if (!r->window_open && now >= ramp && r->started == r->opt.players) {
    r->window_open = true;
    r->window_start = now;
    r->at_window = r->c;
    if (r->opt.server_pid > 0)
      r->cpu_start = proc_cpu_times(r->opt.server_pid);
  }
  if (r->window_open && !r->draining &&
      now - r->window_start >= (rt_time_ns)(r->opt.duration_s * 1e9)) {
    /* The window closes: measure, stop clicking, and give the last
     * clicks' acks time to arrive before counting any as missing. */
    r->window_end = now;
    r->draining = true;
    r->at_window_end = r->c;
    if (r->opt.server_pid > 0) {
      r->cpu_end = proc_cpu_times(r->opt.server_pid);
      r->rss_end_kb = proc_rss_kb(r->opt.server_pid);
    }
  }
  if (r->draining && now - r->window_end >= DRAIN_NS)
    net_live_stop(r->live);
  progress(r);
}

/* ---- Report -------------------------------------------------------------- */

static void report(const run_t *r) {
  const counters_t *c = &r->c, *w0 = &r->at_window;
  double window_s = (double)(r->window_end - r->window_start) / 1e9;
  const counters_t *w1 = r->draining ? &r->at_window_end : c;
  uint64_t acks = w1->acks - w0->acks; /* acks that arrived in the window */
  uint64_t clicks = c->window_clicks;
  int64_t missing = (int64_t)c->window_clicks - (int64_t)c->window_acks -
                    (int64_t)c->window_late;
  double cpu = (r->cpu_end.user_s + r->cpu_end.sys_s) -
               (r->cpu_start.user_s + r->cpu_start.sys_s);
  double us_per_ack =
      acks > 0 && r->opt.server_pid > 0 ? cpu * 1e6 / (double)acks : 0;
  double bytes_per_conn = r->opt.server_pid > 0 && c->connections > 0
                              ? (double)(r->rss_end_kb - r->rss_base_kb) *
                                    1024.0 / (double)c->connections
                              : 0;
  double ms = 1e6;
  if (r->tty)
    fprintf(stderr, "\n");
  if (r->opt.json) {
    printf("{\"players\":%u,\"rate\":%.3f,\"window_s\":%.3f,"
           "\"logins\":%" PRIu64 ",\"connections\":%" PRIu64
           ",\"connect_failures\":%" PRIu64 ",\"unexpected_closes\":%" PRIu64
           ",\"matches_started\":%" PRIu64 ",\"matches_finished\":%" PRIu64
           ",\"clicks_sent\":%" PRIu64 ",\"acks\":%" PRIu64
           ",\"acks_missing\":%" PRId64 ",\"late_clicks\":%" PRIu64
           ",\"errors\":%" PRIu64
           ",\"latency_ms\":{\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,"
           "\"p999\":%.3f,\"max\":%.3f},\"server_cpu_s\":%.3f,"
           "\"cpu_us_per_ack\":%.2f,\"server_rss_kb\":%ld,"
           "\"bytes_per_connection\":%.0f}\n",
           r->opt.players, r->opt.rate, window_s, c->logins, c->connections,
           c->connect_failures, c->unexpected_closes, c->matches_started / 2,
           c->matches_finished / 2, clicks, acks, missing, c->late_clicks,
           c->errors, (double)hist_quantile(r->hist, 0.5) / ms,
           (double)hist_quantile(r->hist, 0.9) / ms,
           (double)hist_quantile(r->hist, 0.99) / ms,
           (double)hist_quantile(r->hist, 0.999) / ms,
           (double)r->hist->max / ms, cpu, us_per_ack, r->rss_end_kb,
           bytes_per_conn);
    return;
  }
  printf(
      "players %u (rate %.1f clicks/s each), window %.1f s after a %.1f s ramp\n",
      r->opt.players, r->opt.rate, window_s, r->opt.ramp_s);
  printf("logins %" PRIu64 ", connections %" PRIu64 ", failed %" PRIu64
         ", unexpected closes %" PRIu64 "\n",
         c->logins, c->connections, c->connect_failures, c->unexpected_closes);
  /* Each match is seen by its two players. */
  printf("matches started %" PRIu64 ", finished %" PRIu64 "\n",
         c->matches_started / 2, c->matches_finished / 2);
  printf("in the window: clicks %" PRIu64 ", acks %" PRIu64 ", missing %" PRId64
         "; late (crossed a game's end) %" PRIu64 ", errors %" PRIu64 "\n",
         clicks, acks, missing, c->late_clicks, c->errors);
  printf("messages: UPDATE %" PRIu64 ", OPPONENT_CLICK %" PRIu64
         ", COOKIE_SPAWN %" PRIu64 ", GAME_START %" PRIu64
         ", GAME_OVER %" PRIu64 ", QUEUED %" PRIu64 ", other %" PRIu64 "\n",
         c->msg_update, c->msg_opponent, c->msg_spawn, c->msg_start,
         c->msg_over, c->msg_queued, c->msg_other);
  printf("click-to-ack latency: p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, "
         "p99.9 %.2f ms, max %.2f ms\n",
         (double)hist_quantile(r->hist, 0.5) / ms,
         (double)hist_quantile(r->hist, 0.9) / ms,
         (double)hist_quantile(r->hist, 0.99) / ms,
         (double)hist_quantile(r->hist, 0.999) / ms, (double)r->hist->max / ms);
  if (r->opt.server_pid > 0)
    printf("server: %.2f s CPU in the window, %.1f us per acknowledged click, "
           "RSS %ld KiB, %.0f bytes per connection\n",
           cpu, us_per_ack, r->rss_end_kb, bytes_per_conn);
}

/* ---- Arguments ----------------------------------------------------------- */

static void usage(FILE *out) {
  fprintf(out,
          "usage: overcookied-load [--url http://127.0.0.1:8080] [--players N]"
          " [--rate R]\n"
          "         [--duration D] [--ramp S] [--mode play|idle] "
          "[--server-pid PID] [--json] [--seed N]\n");
}

static int parse_url(const char *url, options_t *o) {
  const char *p = strncmp(url, "http://", 7) == 0 ? url + 7 : url;
  const char *colon = strchr(p, ':');
  const char *end = p + strcspn(p, "/");
  if (colon == NULL || colon > end)
    return -1;
  size_t hl = (size_t)(colon - p);
  if (hl == 0 || hl >= sizeof(o->host))
    return -1;
  memcpy(o->host, p, hl);
  o->host[hl] = '\0';
  char digits[8];
  size_t pl = (size_t)(end - colon - 1);
  if (pl >= sizeof(digits))
    return -1;
  memcpy(digits, colon + 1, pl);
  digits[pl] = '\0';
  uint64_t port;
  if (rt_parse_u64(digits, 65535, &port) < 0 || port == 0)
    return -1;
  o->port = (uint16_t)port;
  return 0;
}

/* Strict numbers (rt_parse.h): digits, and for rates and seconds points;
 * no sign, space, hex, exponent or inf. A rate reads as seconds do. */
static bool parse_count(const char *v, uint64_t max, uint64_t *out) {
  return rt_parse_u64(v, max, out) == 0;
}

static bool parse_real(const char *v, const char *unit, double max,
                       double *out) {
  rt_time_ns ns;
  if (rt_parse_seconds(v, unit, (rt_time_ns)(max * RT_NS_PER_S), &ns) != 0)
    return false;
  *out = (double)ns / RT_NS_PER_S;
  return true;
}

/* One flag with its value: true when it is known and its value good. */
static bool parse_flag(const char *a, const char *v, options_t *o) {
  uint64_t n;
  if (strcmp(a, "--url") == 0)
    return parse_url(v, o) == 0;
  if (strcmp(a, "--players") == 0 && parse_count(v, PLAYERS_MAX, &n)) {
    o->players = (uint32_t)n;
    return true;
  }
  if (strcmp(a, "--rate") == 0)
    return parse_real(v, NULL, 1000, &o->rate);
  if (strcmp(a, "--duration") == 0)
    return parse_real(v, "s", 86400, &o->duration_s);
  if (strcmp(a, "--ramp") == 0)
    return parse_real(v, "s", 86400, &o->ramp_s);
  if (strcmp(a, "--mode") == 0) {
    bool play = strcmp(v, "play") == 0, idle = strcmp(v, "idle") == 0;
    o->mode = idle ? MODE_IDLE : MODE_PLAY;
    return play || idle;
  }
  if (strcmp(a, "--server-pid") == 0 && parse_count(v, INT32_MAX, &n)) {
    o->server_pid = (long)n;
    return true;
  }
  if (strcmp(a, "--seed") == 0 && parse_count(v, UINT64_MAX, &n)) {
    o->seed = n;
    return true;
  }
  return false;
}

static int parse_args(int argc, char **argv, options_t *o) {
  *o = (options_t){.port = 8080,
                   .players = 100,
                   .rate = 5,
                   .duration_s = 10,
                   .ramp_s = 2,
                   .mode = MODE_PLAY,
                   .seed = 1};
  snprintf(o->host, sizeof(o->host), "127.0.0.1");
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--json") == 0) {
      o->json = true;
      continue;
    }
    if (strcmp(a, "--help") == 0) {
      usage(stdout);
      exit(0);
    }
    if (v == NULL || !parse_flag(a, v, o)) {
      fprintf(stderr, "overcookied-load: %s %s: not understood\n", a,
              v != NULL ? v : "(no value)");
      return -1;
    }
    i++;
  }
  if (o->players == 0 || o->players > PLAYERS_MAX || !(o->rate > 0) ||
      o->rate > 1000 || !(o->duration_s > 0) || o->ramp_s < 0)
    return -1;
  return 0;
}

/* Every way out of main: what the run holds is freed, then `status`. */
static int run_exit(run_t *r, int status) {
  if (r->live != NULL)
    net_live_destroy(r->live);
  net_ws_pool_destroy(r->ws_pool); /* after every player's WebSocket */
  free(r->hist);
  free(r);
  return status;
}

int main(int argc, char **argv) {
  run_t *r = calloc(1, sizeof(*r));
  if (r == NULL)
    return 1;
  r->hist = calloc(1, sizeof(*r->hist));
  if (r->hist == NULL)
    return run_exit(r, 1);
  if (parse_args(argc, argv, &r->opt) < 0) {
    usage(stderr);
    return run_exit(r, 2);
  }
  signal(SIGPIPE, SIG_IGN);
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  r->tty = isatty(STDERR_FILENO) && !r->opt.json;
  if (r->opt.server_pid > 0)
    r->rss_base_kb = proc_rss_kb(r->opt.server_pid);
  net_live_config_t cfg = {
      .seed = r->opt.seed, .log_level = RT_LOG_ERROR, .hash_disabled = true};
  r->live = net_live_create(&cfg);
  r->ws_pool = net_ws_pool_create(true);
  if (r->live == NULL || r->ws_pool == NULL)
    return run_exit(r, 1);
  r->w = net_live_world(r->live);
  rt_actor_spec_t spec = {.name = "controller",
                          .behaviour = controller_behaviour,
                          .state = r,
                          .mailbox_cap = 4,
                          .overflow = RT_OVERFLOW_REJECT};
  rt_actor_id_t controller;
  uint64_t timer;
  if (rt_spawn(r->w, &spec, &controller) < 0 ||
      rt_timer_start(r->w, controller, 0, CONTROL_TICK_NS, TAG_TICK, 0,
                     &timer) < 0)
    return run_exit(r, 1);
  /* The whole run is bounded: ramp + window + a margin. */
  rt_time_ns limit = (rt_time_ns)((r->opt.ramp_s + r->opt.duration_s) * 1e9) +
                     30 * RT_NS_PER_S;
  net_live_run_for(r->live, limit);
  if (!r->window_open || r->window_end == 0) {
    r->window_end = rt_now(r->w);
    if (r->opt.server_pid > 0) {
      r->cpu_end = proc_cpu_times(r->opt.server_pid);
      r->rss_end_kb = proc_rss_kb(r->opt.server_pid);
    }
  }
  report(r);
  uint64_t attempts = r->opt.players;
  /* connect_failures includes failed logins. */
  uint64_t failed = r->c.connect_failures + r->c.unexpected_closes;
  bool broken = failed * 100 > attempts || !r->window_open;
  if (broken)
    fprintf(stderr,
            "overcookied-load: run broken: %" PRIu64 " of %" PRIu64
            " connections failed\n",
            failed, attempts);
  return run_exit(r, broken ? 1 : 0);
}
