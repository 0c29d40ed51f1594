/* bench-net: WebSocket load against a running overcookied, from one process.
 *
 *   bench-net idle --port P [--connections N] [--server-pid PID] [--hold]
 *   bench-net echo --port P [--clients N] [--seconds S] [--bytes B]
 *
 * Every client is an actor of a live world (net_live) with one stream and a
 * net_wsc WebSocket client context: the same upgrade request and frames a
 * browser sends, with no library of ours between the bytes and the kernel
 * but libevent, wslay and http_parser.
 *
 * idle: open N WebSockets (at most CONNECTING_MAX handshakes in flight, so
 *   the listen queue never overflows into SYN retries); each sends one small
 *   message and waits for its echo, which proves it is held by a live
 *   connection actor. With --server-pid, the server's VmRSS is read before
 *   the first connect and once all are held. With --hold, the program prints
 *   the "held" line and keeps its clients running until a line (or EOF)
 *   arrives on stdin, so a test can inspect the server meanwhile. Then
 *   every client still open sends close 1000 and waits for the answer.
 * echo: N clients each send a message, wait for its echo, and send the next
 *   (request/response, one in flight per client) for S seconds after a
 *   warm-up; round trips per second and latency percentiles (1 us buckets).
 *
 * Output: one key=value line per phase ("held ...", "closed ...", "echo
 * ..."), parsed by tools/bench-net and tests/live/test_live_idle.py. Exit 0
 * when every connection opened, echoed and closed cleanly.
 *
 * A benchmark reads the real clock (clock_gettime) for its own figures;
 * the actors still see time only through the world.
 */
#include "net_live.h"
#include "net_ws_client.h"

#include <event2/event.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define TAG_CLOSE (RT_TAG_USER + 1)

#define CONNECTIONS_MAX 100000u
#define CONNECTING_MAX 256u     /* handshakes in flight */
#define MESSAGE_BYTES_MAX 512u  /* the server's limit */
#define LATENCY_BUCKETS 100000u /* 1 us each: up to 100 ms, then "over" */
#define CONNECT_LIMIT_NS (60 * RT_NS_PER_S)
#define CLOSE_LIMIT_NS (30 * RT_NS_PER_S)
#define SETTLE_NS (300 * RT_NS_PER_MS) /* before reading the server's RSS */
#define WARMUP_NS (500 * RT_NS_PER_MS)

typedef enum { MODE_IDLE = 0, MODE_ECHO } mode_t_;

typedef enum {
  CL_CONNECTING = 0, /* TCP connect and upgrade */
  CL_OPEN,           /* upgraded; a message is in flight or was echoed */
  CL_CLOSING,        /* our close 1000 is queued or sent */
  CL_DONE,           /* finished (counted), actor stopping */
} client_state_t;

typedef struct bench bench_t;

typedef struct client {
  bench_t *b;
  rt_stream_t *stream;
  net_wsc_t *wsc;
  rt_actor_id_t id;
  uint8_t state;
  bool echoed_once;     /* counted in b->held */
  bool awaiting;        /* a message of ours is not echoed yet */
  bool close_requested; /* counted in b->closing until it ends */
  uint64_t sent_ns;
} client_t;

typedef enum {
  FAIL_CONNECT = 0, /* connect, spawn or stream error before the upgrade */
  FAIL_REFUSED,     /* the server answered the upgrade with another status */
  FAIL_HANDSHAKE,   /* a bad 101 */
  FAIL_DROPPED,     /* the connection ended while open, not by us */
  FAIL_BAD_ECHO,    /* an echo that was not what we sent */
  FAIL_COUNT_
} fail_t;

static const char *const fail_names[FAIL_COUNT_] = {
    "connect", "refused", "handshake", "dropped", "bad_echo"};

typedef enum { PHASE_CONNECT = 0, PHASE_RUN, PHASE_CLOSE } phase_t;

struct bench {
  net_live_t *live;
  rt_world_t *w;
  net_ws_pool_t *ws_pool; /* the clients' parked WebSocket contexts */
  mode_t_ mode;
  phase_t phase;
  uint16_t port;
  char host[32];
  client_t *clients;
  uint32_t n;
  uint32_t next;        /* clients started so far */
  bool starting;        /* inside start_more */
  uint32_t connecting;  /* handshakes in flight */
  uint32_t held;        /* opened and echoed once */
  uint32_t failed_open; /* ended before being held */
  uint32_t closing;     /* close requested, not ended yet */
  uint32_t closed_clean, closed_dirty;
  uint64_t fails[FAIL_COUNT_];
  int last_refused_status;
  rt_rng_t rng; /* handshake keys and masks (borrowed by every client) */
  uint8_t msg[MESSAGE_BYTES_MAX];
  uint32_t msg_len;
  /* echo */
  bool measuring;
  bool stop_sending;
  uint64_t round_trips;
  uint32_t *latency_us; /* LATENCY_BUCKETS counters */
  uint64_t latency_over;
  uint64_t latency_max_ns;
};

static uint64_t clock_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* VmRSS of a process in KiB, or -1. */
static long rss_kib(const char *pid) {
  char path[64];
  snprintf(path, sizeof(path), "/proc/%s/status", pid);
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return -1;
  char line[256];
  long kib = -1;
  while (fgets(line, sizeof(line), f) != NULL)
    if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
      break;
  fclose(f);
  return kib;
}

static void raise_fd_limit(uint32_t need) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
    return;
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  if (rl.rlim_cur < (rlim_t)need + 64)
    fprintf(stderr,
            "bench-net: RLIMIT_NOFILE is %llu, %u connections need "
            "more\n",
            (unsigned long long)rl.rlim_cur, need);
}

/* ---- Phase bookkeeping --------------------------------------------------- */

static void check_phase(bench_t *b) {
  if (b->phase == PHASE_CONNECT && b->held + b->failed_open == b->n)
    net_live_stop(b->live);
  else if (b->phase == PHASE_CLOSE && b->closing == 0)
    net_live_stop(b->live);
}

static void start_more(bench_t *b);

/* The client is over: count it, release it, stop its actor. */
static void client_end(client_t *c, bool clean, fail_t why) {
  bench_t *b = c->b;
  if (c->state == CL_DONE)
    return;
  if (c->state == CL_CONNECTING) {
    b->connecting--;
    b->failed_open++;
    b->fails[why]++;
  } else if (c->close_requested) {
    b->closing--;
    if (clean) {
      b->closed_clean++;
    } else {
      b->closed_dirty++;
      b->fails[why]++;
    }
  } else { /* open: ended before we asked */
    b->fails[why]++;
    if (!c->echoed_once)
      b->failed_open++;
    else
      b->closed_dirty++;
  }
  c->state = CL_DONE;
  rt_stop(b->w, c->id, RT_REASON_NORMAL);
  start_more(b);
  check_phase(b);
}

/* ---- Messages ------------------------------------------------------------ */

static void send_message(client_t *c) {
  net_ws_t *ws = net_wsc_ws(c->wsc);
  c->sent_ns = clock_ns();
  c->awaiting = true;
  if (net_ws_send_text(ws, c->b->msg, c->b->msg_len) < 0)
    client_end(c, false, FAIL_DROPPED);
}

static void record_latency(bench_t *b, uint64_t ns) {
  uint64_t us = ns / 1000;
  if (us < LATENCY_BUCKETS)
    b->latency_us[us]++;
  else
    b->latency_over++;
  if (ns > b->latency_max_ns)
    b->latency_max_ns = ns;
  b->round_trips++;
}

static void on_text(void *ud, const uint8_t *data, size_t len) {
  client_t *c = ud;
  bench_t *b = c->b;
  uint64_t now = clock_ns();
  if (c->state != CL_OPEN || !c->awaiting)
    return; /* late echo while closing */
  if (len != b->msg_len || memcmp(data, b->msg, len) != 0) {
    client_end(c, false, FAIL_BAD_ECHO);
    return;
  }
  c->awaiting = false;
  if (!c->echoed_once) {
    c->echoed_once = true;
    b->held++;
    check_phase(b);
  }
  if (b->mode != MODE_ECHO || b->stop_sending)
    return;
  if (b->measuring)
    record_latency(b, now - c->sent_ns);
  send_message(c); /* net_wsc_on_event flushes it after this read */
}

static const net_ws_callbacks_t client_callbacks = {.on_text = on_text};

/* ---- The client actor ---------------------------------------------------- */

static void client_on_event(client_t *c) {
  bench_t *b = c->b;
  int st = net_wsc_on_event(c->wsc);
  if (c->state == CL_DONE)
    return; /* ended inside a callback */
  if (st < 0 || st == NET_WSC_REFUSED || st == NET_WSC_FAILED) {
    fail_t why = FAIL_DROPPED;
    if (c->state == CL_CONNECTING) {
      why = st == NET_WSC_REFUSED ? FAIL_REFUSED
            : st == NET_WSC_FAILED && net_wsc_http_status(c->wsc) != 0
                ? FAIL_HANDSHAKE
                : FAIL_CONNECT;
      if (st == NET_WSC_REFUSED)
        b->last_refused_status = net_wsc_http_status(c->wsc);
    }
    client_end(c, false, why);
    return;
  }
  if (st == NET_WSC_CONNECTING)
    return;
  net_ws_t *ws = net_wsc_ws(c->wsc);
  if (c->state == CL_CONNECTING) {
    c->state = CL_OPEN;
    b->connecting--;
    start_more(b);
    send_message(c);
    if (c->state == CL_DONE)
      return;
    if (net_ws_flush(ws) < 0) {
      client_end(c, false, FAIL_DROPPED);
      return;
    }
  }
  /* Done once the close handshake is over (wslay answers a close the
   * server starts by itself). Clean only when it was our close 1000 that
   * the server answered; a close the server started (shutdown, a limit)
   * counts as a drop here. */
  if (net_ws_finished(ws))
    client_end(c, c->state == CL_CLOSING, FAIL_DROPPED);
}

static void client_on_close(client_t *c) {
  if (c->state != CL_OPEN)
    return;
  c->state = CL_CLOSING;
  net_ws_t *ws = net_wsc_ws(c->wsc);
  net_ws_close(ws, NET_WS_CLOSE_NORMAL, "bye");
  if (net_ws_flush(ws) < 0)
    client_end(c, false, FAIL_DROPPED);
}

static void client_behaviour(rt_actor_t *self, const rt_msg_t *msg) {
  client_t *c = rt_state(self);
  if (c->state == CL_DONE)
    return;
  if (msg->tag == RT_TAG_STREAM)
    client_on_event(c);
  else if (msg->tag == TAG_CLOSE)
    client_on_close(c);
}

static void client_on_stop(rt_actor_t *self, int reason) {
  (void)reason;
  client_t *c = rt_state(self);
  net_wsc_destroy(c->wsc);
  c->wsc = NULL;
  if (c->stream != NULL)
    rt_stream_close(c->stream);
  c->stream = NULL;
}

/* Start one client: spawn its actor, connect, begin the upgrade. */
static void start_client(bench_t *b, client_t *c) {
  *c = (client_t){.b = b, .state = CL_CONNECTING};
  b->connecting++;
  rt_actor_spec_t spec = {.name = "bench-client",
                          .behaviour = client_behaviour,
                          .on_stop = client_on_stop,
                          .state = c,
                          .mailbox_cap = 4,
                          .overflow = RT_OVERFLOW_REJECT};
  if (rt_spawn(b->w, &spec, &c->id) < 0) {
    c->state = CL_DONE;
    b->connecting--;
    b->failed_open++;
    b->fails[FAIL_CONNECT]++;
    return;
  }
  int err = net_live_connect(b->live, "127.0.0.1", b->port, c->id, &c->stream);
  net_wsc_config_t cfg = {
      .host = b->host, .target = "/ws", .rng = &b->rng, .pool = b->ws_pool};
  if (err == RT_OK)
    err = net_wsc_create(c->stream, &cfg, &client_callbacks, c, &c->wsc);
  if (err < 0) {
    client_end(c, false, FAIL_CONNECT);
    return;
  }
  /* The request goes out once the connect completes (CONNECTED). */
}

static void start_more(bench_t *b) {
  /* A client that fails at once ends inside start_client and calls here
   * again: the outer loop goes on instead (no recursion per failure). */
  if (b->starting)
    return;
  b->starting = true;
  while (b->phase == PHASE_CONNECT && b->next < b->n &&
         b->connecting < CONNECTING_MAX) {
    client_t *c = &b->clients[b->next++];
    start_client(b, c);
  }
  b->starting = false;
}

/* ---- Phases -------------------------------------------------------------- */

/* Open every client; returns seconds taken. */
static double phase_connect(bench_t *b) {
  uint64_t t0 = clock_ns();
  b->phase = PHASE_CONNECT;
  start_more(b);
  if (b->held + b->failed_open < b->n)
    net_live_run_for(b->live, CONNECT_LIMIT_NS);
  return (double)(clock_ns() - t0) / 1e9;
}

/* Close every open client with 1000; returns seconds taken. */
static double phase_close(bench_t *b) {
  uint64_t t0 = clock_ns();
  b->phase = PHASE_CLOSE;
  for (uint32_t i = 0; i < b->next; i++) {
    client_t *c = &b->clients[i];
    if (c->state != CL_OPEN)
      continue;
    c->close_requested = true;
    b->closing++;
    rt_msg_t m = rt_msg_make(TAG_CLOSE, NULL, 0);
    if (rt_send(b->w, c->id, &m) < 0)
      client_end(c, false, FAIL_DROPPED); /* its mailbox holds only this */
  }
  if (b->closing > 0)
    net_live_run_for(b->live, CLOSE_LIMIT_NS);
  return (double)(clock_ns() - t0) / 1e9;
}

static void print_fails(const bench_t *b) {
  for (int i = 0; i < FAIL_COUNT_; i++)
    if (b->fails[i] > 0)
      printf(" fail_%s=%" PRIu64, fail_names[i], b->fails[i]);
  if (b->last_refused_status != 0)
    printf(" refused_status=%d", b->last_refused_status);
}

static uint64_t percentile_us(const bench_t *b, double p) {
  uint64_t total = b->round_trips;
  if (total == 0)
    return 0;
  uint64_t rank = (uint64_t)(p * (double)total);
  if (rank >= total)
    rank = total - 1;
  uint64_t seen = 0;
  for (uint32_t i = 0; i < LATENCY_BUCKETS; i++) {
    seen += b->latency_us[i];
    if (seen > rank)
      return i;
  }
  return b->latency_max_ns / 1000;
}

/* ---- Main ---------------------------------------------------------------- */

typedef struct options {
  mode_t_ mode;
  uint16_t port;
  uint32_t n;
  const char *server_pid;
  bool hold;
  double seconds;
  uint32_t bytes;
} options_t;

static int usage(void) {
  fprintf(stderr,
          "usage: bench-net idle --port P [--connections N] [--server-pid PID]"
          " [--hold]\n"
          "       bench-net echo --port P [--clients N] [--seconds S]"
          " [--bytes B]\n");
  return 2;
}

static int parse(int argc, char **argv, options_t *o) {
  *o = (options_t){.n = 0, .seconds = 5.0, .bytes = 32};
  if (argc < 2)
    return -1;
  if (strcmp(argv[1], "idle") == 0)
    o->mode = MODE_IDLE;
  else if (strcmp(argv[1], "echo") == 0)
    o->mode = MODE_ECHO;
  else
    return -1;
  o->n = o->mode == MODE_IDLE ? 10000 : 100;
  for (int i = 2; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--hold") == 0) {
      o->hold = true;
      continue;
    }
    if (v == NULL)
      return -1;
    i++;
    if (strcmp(a, "--port") == 0)
      o->port = (uint16_t)strtoul(v, NULL, 10);
    else if (strcmp(a, "--connections") == 0 || strcmp(a, "--clients") == 0)
      o->n = (uint32_t)strtoul(v, NULL, 10);
    else if (strcmp(a, "--server-pid") == 0)
      o->server_pid = v;
    else if (strcmp(a, "--seconds") == 0)
      o->seconds = strtod(v, NULL);
    else if (strcmp(a, "--bytes") == 0)
      o->bytes = (uint32_t)strtoul(v, NULL, 10);
    else
      return -1;
  }
  if (o->port == 0 || o->n == 0 || o->n > CONNECTIONS_MAX || o->bytes == 0 ||
      o->bytes > MESSAGE_BYTES_MAX || !(o->seconds > 0) || o->seconds > 3600)
    return -1;
  return 0;
}

static bench_t *bench_create(const options_t *o) {
  bench_t *b = calloc(1, sizeof(*b));
  if (b == NULL)
    return NULL;
  net_live_config_t cfg = {
      .seed = 1, .log_level = RT_LOG_WARN, .hash_disabled = true};
  b->live = net_live_create(&cfg);
  b->clients = calloc(o->n, sizeof(*b->clients));
  b->latency_us = calloc(LATENCY_BUCKETS, sizeof(*b->latency_us));
  b->ws_pool = net_ws_pool_create(true);
  if (b->live == NULL || b->clients == NULL || b->latency_us == NULL ||
      b->ws_pool == NULL) {
    if (b->live != NULL)
      net_live_destroy(b->live);
    net_ws_pool_destroy(b->ws_pool);
    free(b->clients);
    free(b->latency_us);
    free(b);
    return NULL;
  }
  b->w = net_live_world(b->live);
  b->mode = o->mode;
  b->n = o->n;
  b->port = o->port;
  snprintf(b->host, sizeof(b->host), "127.0.0.1:%u", (unsigned)o->port);
  rt_world_rng(b->w, RT_RNG_KEY(RT_RNG_SUB_TEST, 1), &b->rng);
  /* Printable ASCII: a valid text message of any length. */
  b->msg_len = o->mode == MODE_IDLE ? 16 : o->bytes;
  for (uint32_t i = 0; i < b->msg_len; i++)
    b->msg[i] = (uint8_t)('a' + i % 26);
  return b;
}

static void bench_destroy(bench_t *b) {
  net_live_destroy(b->live); /* stops the remaining client actors */
  net_ws_pool_destroy(b->ws_pool);
  free(b->clients);
  free(b->latency_us);
  free(b);
}

static void on_stdin(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  net_live_stop(arg);
}

/* Keep the clients running (answering pings, noticing a server that
 * closes) until stdin has a line or ends. The caller bounds the wait. */
static void hold_until_stdin(bench_t *b) {
  b->phase = PHASE_RUN;
  struct event *ev = event_new(net_live_base(b->live), STDIN_FILENO, EV_READ,
                               on_stdin, b->live);
  if (ev == NULL || event_add(ev, NULL) != 0) {
    char line[64];
    if (fgets(line, sizeof(line), stdin) == NULL) /* blocking fallback */
      clearerr(stdin);
  } else {
    net_live_run(b->live);
  }
  if (ev != NULL)
    event_free(ev);
}

static int run_idle(bench_t *b, const options_t *o) {
  long before = o->server_pid != NULL ? rss_kib(o->server_pid) : -1;
  double connect_s = phase_connect(b);
  net_live_run_for(b->live, SETTLE_NS); /* let the server finish its work */
  long held = o->server_pid != NULL ? rss_kib(o->server_pid) : -1;
  printf("held connections=%u held=%u failed=%u connect_s=%.2f", b->n, b->held,
         b->failed_open, connect_s);
  print_fails(b);
  if (o->server_pid != NULL)
    printf(" server_rss_before_kib=%ld server_rss_held_kib=%ld", before, held);
  printf(" client_rss_kib=%ld\n", rss_kib("self"));
  fflush(stdout);
  if (o->hold)
    hold_until_stdin(b);
  double close_s = phase_close(b);
  printf("closed clean=%u dirty=%u stuck=%u close_s=%.2f", b->closed_clean,
         b->closed_dirty, b->closing, close_s);
  print_fails(b);
  printf("\n");
  fflush(stdout);
  return b->held == b->n && b->closed_clean == b->n ? 0 : 1;
}

static int run_echo(bench_t *b, const options_t *o) {
  double connect_s = phase_connect(b);
  if (b->held < b->n) {
    printf("echo clients=%u held=%u connect_s=%.2f", b->n, b->held, connect_s);
    print_fails(b);
    printf("\n");
    return 1;
  }
  b->phase = PHASE_RUN;
  net_live_run_for(b->live, WARMUP_NS);
  b->measuring = true;
  uint64_t t0 = clock_ns();
  net_live_run_for(b->live, (rt_time_ns)(o->seconds * 1e9));
  double secs = (double)(clock_ns() - t0) / 1e9;
  b->measuring = false;
  b->stop_sending = true;
  double rate = (double)b->round_trips / secs;
  printf("echo clients=%u bytes=%u seconds=%.2f round_trips=%" PRIu64
         " rate=%.0f p50_us=%" PRIu64 " p90_us=%" PRIu64 " p99_us=%" PRIu64
         " max_us=%" PRIu64 " over_100ms=%" PRIu64,
         b->n, b->msg_len, secs, b->round_trips, rate, percentile_us(b, 0.50),
         percentile_us(b, 0.90), percentile_us(b, 0.99),
         b->latency_max_ns / 1000, b->latency_over);
  print_fails(b);
  printf("\n");
  fflush(stdout);
  phase_close(b);
  printf("closed clean=%u dirty=%u stuck=%u\n", b->closed_clean,
         b->closed_dirty, b->closing);
  return b->closed_clean == b->n ? 0 : 1;
}

int main(int argc, char **argv) {
  options_t o;
  if (parse(argc, argv, &o) < 0)
    return usage();
  raise_fd_limit(o.n);
  bench_t *b = bench_create(&o);
  if (b == NULL) {
    fprintf(stderr, "bench-net: out of memory\n");
    return 1;
  }
  int rc = o.mode == MODE_IDLE ? run_idle(b, &o) : run_echo(b, &o);
  bench_destroy(b);
  return rc;
}
