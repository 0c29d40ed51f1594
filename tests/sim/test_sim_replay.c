/* test_sim_replay.c: recording a live world and replaying it (net/
 * net_record.h, sim/sim_replay.h), and the tap underneath (runtime/rt_tap.h).
 *
 * The end-to-end tests record a real session: a net_live world on loopback
 * running the echo server (net/net_echo.h) while this test, as a plain
 * blocking socket client, sends bytes, reads the echoes back and hangs up;
 * the operator's teardown is recorded the way tools/src/overcookied.c does
 * it (stop_recording). Then the trace is replayed into a fresh replay world
 * set up the same way (or on purpose not), and the report is checked.
 *
 * Live runs use the real clock on a shared machine, so the client waits in
 * bounded slices (net_live_run_for, poll with a timeout) and only exact
 * content and counts are asserted, never timings. Replays are pure: their
 * results are exact.
 *
 * The unit tests at the end drive rt_external_take/put and the output hash
 * with hand-made taps on a simulated world.
 *
 * A failing test runs alone with:
 *   build/bin/test_sim_replay --filter 'sim_replay/<test name>'
 * Each test records into its own mkdtemp directory under /tmp, removed by
 * the suite's fini (also after a failed assertion).
 */
#include "net_echo.h"
#include "net_live.h"
#include "net_record.h"
#include "net_trace.h"
#include "net_trace_reader.h"
#include "net_trace_writer.h"
#include "rt_hash.h"
#include "rt_stream.h"
#include "rt_tap.h"
#include "rt_world.h"
#include "sim_pipe.h"
#include "sim_replay.h"
#include "sim_world.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define SEED 0x5eedu
#define ERR_CAP (NET_TRACE_ERR_MAX + 256u)
#define SLICE (5 * RT_NS_PER_MS) /* one net_live_run_for */
#define SLICES_MAX 400u          /* 2 s of slices: no wait gets near it */
#define POLL_MS 2                /* the client's wait per slice */
#define SEND_TIMEOUT_S 2         /* a blocking send never waits longer */
#define TMP_DIR_MAX 64u          /* "/tmp/oc-replay-XXXXXX" */
#define TMP_PATH_MAX 256u        /* a path in it */
#define FILE_PATH_MAX (TMP_PATH_MAX + 32u) /* a trace file in one */
#define RECORDS_MAX 100000u                /* bounds a scan of one trace */

#define FIRST_LEN 300u       /* the session's first message */
#define SECOND_LEN 1000u     /* and its second */
#define BIG_LEN (16u * 1024) /* one send bigger than a record can hold */

/* ---- A temporary directory per test -------------------------------------- */

/* Criterion's init and fini take no argument, so the test's directory lives
 * here. Each test runs in its own worker process: one directory per test. */
static char tmp_dir[TMP_DIR_MAX];

static void tmp_path(char *out, const char *name) {
  snprintf(out, TMP_PATH_MAX, "%s/%s", tmp_dir, name);
}

/* Remove dir and what is in it, at most `depth` levels down (a trace
 * directory inside the test's directory: 2). Does not follow links. */
static void remove_tree(const char *dir, int depth) {
  DIR *dp = opendir(dir);
  if (dp != NULL) {
    struct dirent *e;
    while ((e = readdir(dp)) != NULL) {
      if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
        continue;
      char p[TMP_PATH_MAX * 2];
      snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
      struct stat st;
      if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode) && depth > 1)
        remove_tree(p, depth - 1);
      else
        unlink(p);
    }
    closedir(dp);
  }
  rmdir(dir);
}

static void tmp_init(void) {
  snprintf(tmp_dir, sizeof(tmp_dir), "/tmp/oc-replay-XXXXXX");
  cr_assert_not_null(mkdtemp(tmp_dir), "mkdtemp: %s", strerror(errno));
}

static void tmp_fini(void) {
  if (tmp_dir[0] != '\0')
    remove_tree(tmp_dir, 3);
}

TestSuite(sim_replay, .init = tmp_init, .fini = tmp_fini);

/* ---- The client's bytes -------------------------------------------------- */

/* Byte i of what the client sends: lower-case letters (so that upper-casing
 * changes every byte), not periodic in a chunk size. */
static uint8_t pattern(uint64_t i) {
  return (uint8_t)('a' + (i ^ (i >> 7) ^ (i >> 13)) % 26);
}

static void fill(uint8_t *buf, uint64_t from, size_t n) {
  for (size_t k = 0; k < n; k++)
    buf[k] = pattern(from + k);
}

/* ---- Echo servers of the test's own -------------------------------------- */

/* A copy of net_echo's acceptor and connection (net/net_echo.c) making
 * the same stream calls in the same order, with a twist per mode: the
 * faithful copy must replay a net_echo recording as net_echo does (so a
 * divergence seen with the others is the twist's, not the copy's). */

#define MIRROR_CHUNK 4096u /* net_echo's ECHO_CHUNK: the replay checks it */
#define MIRROR_ROUNDS 64
#define MIRROR_ACCEPTS 256
#define EXT_KIND_KEY 901u  /* the keyed mirror's external */
#define EXT_KEY_TAG "KEY!" /* the external's bytes */

typedef enum mirror_mode {
  MIRROR_ECHO,   /* as net_echo */
  MIRROR_SHOUT,  /* writes the bytes upper-cased */
  MIRROR_KEYED,  /* writes them XORed with a key that is an external result */
  MIRROR_CHATTY, /* as net_echo, plus a message to itself per signal */
} mirror_mode_t;

typedef struct mirror_cfg {
  mirror_mode_t mode;
  uint8_t fresh_key; /* MIRROR_KEYED: the key when no recording answers */
  uint32_t keys_computed, keys_taken;
} mirror_cfg_t;

typedef struct mirror_conn {
  rt_stream_t *stream;
  mirror_cfg_t *cfg; /* borrowed from the test */
  uint8_t pending[MIRROR_CHUNK];
  uint32_t off, len;
} mirror_conn_t;

typedef struct mirror_acceptor {
  rt_listener_t *listener;
  mirror_cfg_t *cfg;
} mirror_acceptor_t;

/* The key for one chunk: a recorded one when replaying, else the configured
 * one, which a recorder writes down. Negative: the replay diverged. */
static int mirror_key(rt_world_t *w, mirror_cfg_t *cfg, uint8_t *key) {
  int64_t rc = 0;
  const uint8_t *data = NULL;
  size_t len = 0;
  int got = rt_external_take(w, EXT_KIND_KEY, &rc, &data, &len);
  if (got < 0)
    return got;
  if (got == 0) {
    rc = cfg->fresh_key;
    data = (const uint8_t *)EXT_KEY_TAG;
    len = strlen(EXT_KEY_TAG);
    rt_external_put(w, EXT_KIND_KEY, rc, data, len);
    cfg->keys_computed++;
  } else {
    cfg->keys_taken++;
  }
  cr_assert_eq(len, strlen(EXT_KEY_TAG));
  cr_assert_eq(memcmp(data, EXT_KEY_TAG, len), 0);
  *key = (uint8_t)rc;
  return RT_OK;
}

static int mirror_pump(rt_world_t *w, mirror_conn_t *c) {
  for (int rounds = 0; rounds < MIRROR_ROUNDS; rounds++) {
    while (c->len > 0) {
      int64_t n = rt_stream_write(c->stream, c->pending + c->off, c->len);
      if (n < 0)
        return (int)n;
      if (n == 0)
        return RT_OK;
      c->off += (uint32_t)n;
      c->len -= (uint32_t)n;
    }
    int64_t n = rt_stream_read(c->stream, c->pending, sizeof(c->pending));
    if (n <= 0)
      return n == 0 ? RT_OK : (int)n;
    c->off = 0;
    c->len = (uint32_t)n;
    if (c->cfg->mode == MIRROR_SHOUT) {
      for (uint32_t i = 0; i < c->len; i++)
        if (c->pending[i] >= 'a' && c->pending[i] <= 'z')
          c->pending[i] = (uint8_t)(c->pending[i] - 'a' + 'A');
    } else if (c->cfg->mode == MIRROR_KEYED) {
      uint8_t key;
      int err = mirror_key(w, c->cfg, &key);
      if (err < 0)
        return err;
      for (uint32_t i = 0; i < c->len; i++)
        c->pending[i] ^= key;
    }
  }
  rt_stream_notify(c->stream, RT_STREAM_READABLE);
  return RT_OK;
}

static void mirror_conn_behaviour(rt_actor_t *self, const rt_msg_t *msg) {
  if (msg->tag != RT_TAG_STREAM)
    return;
  rt_world_t *w = rt_actor_world(self);
  mirror_conn_t *c = rt_state(self);
  if (c->cfg->mode == MIRROR_CHATTY) {
    rt_msg_t note = rt_msg_make(RT_TAG_USER, NULL, 0);
    cr_assert_eq(rt_send(w, rt_self(self), &note), RT_PUSH_QUEUED);
  }
  if (mirror_pump(w, c) < 0)
    rt_stop(w, rt_self(self), RT_REASON_NORMAL);
}

static void mirror_conn_on_stop(rt_actor_t *self, int reason) {
  (void)reason;
  mirror_conn_t *c = rt_state(self);
  rt_stream_close(c->stream);
  free(c);
}

static void mirror_acceptor_behaviour(rt_actor_t *self, const rt_msg_t *msg) {
  mirror_acceptor_t *a = rt_state(self);
  rt_world_t *w = rt_actor_world(self);
  if (msg->tag != RT_TAG_ACCEPT)
    return;
  for (int i = 0; i < MIRROR_ACCEPTS; i++) {
    rt_stream_t *s = NULL;
    if (rt_listener_accept(a->listener, &s) <= 0)
      return;
    mirror_conn_t *c = calloc(1, sizeof(*c));
    cr_assert_not_null(c);
    c->stream = s;
    c->cfg = a->cfg;
    rt_actor_spec_t spec = {.name = a->cfg->mode == MIRROR_SHOUT ? "shout"
                                                                 : "mirror",
                            .behaviour = mirror_conn_behaviour,
                            .on_stop = mirror_conn_on_stop,
                            .state = c,
                            .mailbox_cap = 4,
                            .overflow = RT_OVERFLOW_REJECT};
    rt_actor_id_t id;
    cr_assert_eq(rt_spawn(w, &spec, &id), RT_OK);
    rt_stream_set_owner(s, id);
    rt_stream_notify(s, RT_STREAM_READABLE);
  }
}

static void mirror_acceptor_on_stop(rt_actor_t *self, int reason) {
  (void)reason;
  mirror_acceptor_t *a = rt_state(self);
  rt_listener_close(a->listener);
  free(a);
}

/* As net_echo_spawn_acceptor. ctx: a mirror_cfg_t, borrowed. */
static int mirror_spawn(rt_world_t *w, rt_listener_t *l, void *ctx) {
  mirror_acceptor_t *a = calloc(1, sizeof(*a));
  cr_assert_not_null(a);
  a->listener = l;
  a->cfg = ctx;
  rt_actor_spec_t spec = {.name = "mirror-acceptor",
                          .behaviour = mirror_acceptor_behaviour,
                          .on_stop = mirror_acceptor_on_stop,
                          .state = a,
                          .mailbox_cap = 16,
                          .overflow = RT_OVERFLOW_REJECT};
  rt_actor_id_t id;
  cr_assert_eq(rt_spawn(w, &spec, &id), RT_OK);
  l->owner = id;
  rt_listener_notify(l);
  return RT_OK;
}

typedef int spawn_fn(rt_world_t *w, rt_listener_t *l, void *ctx);

static int echo_spawn(rt_world_t *w, rt_listener_t *l, void *ctx) {
  (void)ctx;
  rt_actor_id_t id;
  return net_echo_spawn_acceptor(w, l, &id);
}

/* ---- Recording a live session -------------------------------------------- */

typedef struct plan {
  uint32_t buffer_bytes; /* the trace writer's; 0: its default */
  size_t first_len;      /* sent at once before the loop first runs */
  size_t second_len;     /* sent after the first came back; 0: none */
  uint8_t xor_key;       /* what the server does to each byte (0: echo) */
  spawn_fn *spawn;       /* NULL: net_echo */
  void *spawn_ctx;
} plan_t;

typedef struct session {
  uint64_t sent, echoed;
  uint64_t output_hash, run_hash; /* the live world's, after teardown */
  net_record_stats_t stats;
} session_t;

static int client_connect(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  cr_assert_geq(fd, 0, "socket: %s", strerror(errno));
  struct timeval tv = {.tv_sec = SEND_TIMEOUT_S};
  cr_assert_eq(setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)), 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
  cr_assert_eq(inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr), 1);
  /* Blocking: the kernel completes the handshake into the listener's
   * backlog; the server accepts it when its loop next runs. */
  cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0,
               "connect: %s", strerror(errno));
  return fd;
}

static void client_send(int fd, session_t *s, size_t n) {
  uint8_t *buf = malloc(n);
  cr_assert_not_null(buf);
  fill(buf, s->sent, n);
  size_t done = 0;
  for (int tries = 0; done < n && tries < 64; tries++) {
    ssize_t k = send(fd, buf + done, n - done, MSG_NOSIGNAL);
    cr_assert_gt(k, 0, "send: %s", strerror(errno));
    done += (size_t)k;
  }
  cr_assert_eq(done, n);
  free(buf);
  s->sent += n;
}

/* What arrived on the client socket, checked against what was sent. */
static void client_drain(int fd, session_t *s, uint8_t key) {
  uint8_t buf[8192];
  for (int i = 0; i < 64; i++) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, POLL_MS) <= 0)
      return;
    ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n <= 0)
      return;
    for (ssize_t k = 0; k < n; k++)
      cr_assert_eq(buf[k], pattern(s->echoed + (uint64_t)k) ^ key,
                   "echoed byte %" PRIu64 " is %u, want %u",
                   s->echoed + (uint64_t)k, buf[k],
                   pattern(s->echoed + (uint64_t)k) ^ key);
    s->echoed += (uint64_t)n;
  }
}

/* Run the loop in slices until everything sent came back. */
static void run_until_echoed(net_live_t *live, int fd, session_t *s,
                             uint8_t key) {
  for (uint32_t i = 0; i < SLICES_MAX && s->echoed < s->sent; i++) {
    cr_assert_eq(net_live_run_for(live, SLICE), RT_OK);
    client_drain(fd, s, key);
  }
  cr_assert_eq(s->echoed, s->sent, "echoed %" PRIu64 " of %" PRIu64 " bytes",
               s->echoed, s->sent);
}

/* Run the loop in slices until only the acceptor is left. */
static void run_until_actors(net_live_t *live, uint32_t live_actors) {
  rt_world_stats_t st;
  rt_world_stats(net_live_world(live), &st);
  for (uint32_t i = 0; i < SLICES_MAX && st.actors_live > live_actors; i++) {
    cr_assert_eq(net_live_run_for(live, SLICE), RT_OK);
    rt_world_stats(net_live_world(live), &st);
  }
  cr_assert_eq(st.actors_live, live_actors);
}

/* Record one client session with the echo server into dir. */
static void record_session(const char *dir, const plan_t *plan,
                           session_t *out) {
  memset(out, 0, sizeof(*out));
  net_live_config_t lc = {.seed = SEED, .log_level = RT_LOG_OFF};
  net_live_t *live = net_live_create(&lc);
  cr_assert_not_null(live);
  rt_world_t *w = net_live_world(live);
  net_record_config_t rc = {.dir = dir,
                            .buffer_bytes = plan->buffer_bytes,
                            .config = "test_sim_replay echo",
                            .flags = NET_RECORD_F_LIVE | NET_RECORD_F_RUN_HASH};
  char err[ERR_CAP] = "";
  net_record_t *rec = NULL;
  cr_assert_eq(net_record_start(w, &rc, &rec, err, sizeof(err)), RT_OK, "%s",
               err);
  rt_listener_t *l = NULL;
  cr_assert_eq(net_live_listen(live, "127.0.0.1", 0, 0, &l), RT_OK);
  spawn_fn *spawn = plan->spawn != NULL ? plan->spawn : echo_spawn;
  cr_assert_eq(spawn(w, l, plan->spawn_ctx), RT_OK);

  int fd = client_connect(net_live_listener_port(l));
  client_send(fd, out, plan->first_len);
  run_until_echoed(live, fd, out, plan->xor_key);
  if (plan->second_len > 0) {
    client_send(fd, out, plan->second_len);
    run_until_echoed(live, fd, out, plan->xor_key);
  }
  close(fd);
  run_until_actors(live, 1); /* the connection saw EOF and stopped */

  /* As tools/src/overcookied.c stop_recording: the teardown is recorded,
   * performed while still recording, then the trace is closed. */
  net_record_control(rec, NET_RECORD_CONTROL_TEARDOWN);
  rt_world_stop_all(w, RT_REASON_SHUTDOWN);
  out->output_hash = rt_world_output_hash(w);
  out->run_hash = rt_world_hash(w);
  cr_assert_eq(net_record_stop(rec, &out->stats, err, sizeof(err)), RT_OK, "%s",
               err);
  net_live_destroy(live);
}

static void record_echo(const char *dir, session_t *out) {
  plan_t plan = {.first_len = FIRST_LEN, .second_len = SECOND_LEN};
  record_session(dir, &plan, out);
}

/* ---- Replaying ----------------------------------------------------------- */

typedef enum extra {
  EXTRA_NONE,
  EXTRA_NO_SERVER, /* less: no listener, no acceptor at all */
  EXTRA_LISTENER,  /* a listener nobody owns, before the real one */
  EXTRA_SERVER,    /* a second echo server, set up before the real one */
} extra_t;

typedef struct setup {
  extra_t extra;
  spawn_fn *spawn; /* NULL: net_echo */
  void *spawn_ctx;
} setup_t;

static sim_replay_status_t replay(const char *path, const setup_t *setup,
                                  rt_time_ns until, sim_replay_report_t *rep) {
  sim_replay_config_t cfg = {.log_level = RT_LOG_OFF};
  sim_replay_t *r = NULL;
  char err[ERR_CAP] = "";
  cr_assert_eq(sim_replay_open(path, &cfg, &r, err, sizeof(err)), RT_OK, "%s",
               err);
  rt_world_t *w = sim_replay_world(r);
  /* The live program listened before anything else made a stream. */
  if (setup->extra == EXTRA_LISTENER || setup->extra == EXTRA_SERVER) {
    rt_listener_t *first = NULL;
    cr_assert_eq(sim_replay_listen(r, 0, &first), RT_OK);
    if (setup->extra == EXTRA_SERVER)
      cr_assert_eq(echo_spawn(w, first, NULL), RT_OK);
  }
  if (setup->extra != EXTRA_NO_SERVER) {
    rt_listener_t *l = NULL;
    cr_assert_eq(sim_replay_listen(r, 0, &l), RT_OK);
    spawn_fn *spawn = setup->spawn != NULL ? setup->spawn : echo_spawn;
    cr_assert_eq(spawn(w, l, setup->spawn_ctx), RT_OK);
  }
  sim_replay_status_t st = sim_replay_run(r, until, rep);
  cr_assert_eq(rep->status, st);
  sim_replay_close(r);
  return st;
}

static sim_replay_status_t replay_echo(const char *path,
                                       sim_replay_report_t *rep) {
  setup_t setup = {.extra = EXTRA_NONE};
  return replay(path, &setup, RT_TIME_NEVER, rep);
}

/* A report's status and sentence, for an assertion's "%s: %s". */
#define SAID(rep) sim_replay_status_name((rep).status), (rep).what

/* ---- Round trip ---------------------------------------------------------- */

Test(sim_replay, a_recorded_echo_session_replays_with_every_check_matching) {
  char dir[TMP_PATH_MAX];
  tmp_path(dir, "rec");
  session_t s;
  record_session(
      dir, &(plan_t){.first_len = FIRST_LEN, .second_len = SECOND_LEN}, &s);
  cr_assert_eq(s.sent, FIRST_LEN + SECOND_LEN);
  cr_assert_eq(s.echoed, s.sent);
  cr_assert_eq(s.stats.records_lost, 0);
  cr_assert_gt(s.stats.records, 0);
  cr_assert_eq(s.stats.files, 1);
  cr_assert_neq(s.output_hash, 0, "the recorder's tap hashes the output");

  sim_replay_report_t rep;
  cr_assert_eq(replay_echo(dir, &rep), SIM_REPLAY_DONE, "%s: %s", SAID(rep));
  cr_assert_eq(rep.accepts, 1);
  cr_assert_gt(rep.reads, 0);
  cr_assert_gt(rep.writes, 0);
  cr_assert_gt(rep.checkpoints, 0);
  cr_assert_gt(rep.passes, 0);
  cr_assert_eq(rep.externals, 0);
  cr_assert_eq(rep.bytes_in, s.sent);
  cr_assert_eq(rep.bytes_out, s.echoed);
  cr_assert_gt(rep.time, 0);
  cr_assert_eq(rep.what[0], '\0');
  /* The replay wrote what the live server wrote, and delivered the same
   * messages at the same times. */
  cr_assert_eq(rep.output_hash, s.output_hash,
               "output hash %016" PRIx64 ", live %016" PRIx64, rep.output_hash,
               s.output_hash);
  cr_assert_eq(rep.run_hash, s.run_hash,
               "run hash %016" PRIx64 ", live %016" PRIx64, rep.run_hash,
               s.run_hash);

  /* Again, from the first file rather than the directory: the same. */
  char file[FILE_PATH_MAX];
  snprintf(file, sizeof(file), "%s/trace-000001.oct", dir);
  sim_replay_report_t again;
  cr_assert_eq(replay_echo(file, &again), SIM_REPLAY_DONE, "%s: %s",
               SAID(again));
  cr_assert_eq(again.records, rep.records);
  cr_assert_eq(again.deliveries, rep.deliveries);
  cr_assert_eq(again.output_hash, rep.output_hash);
  cr_assert_eq(again.run_hash, rep.run_hash);
}

Test(sim_replay, a_faithful_copy_of_the_program_replays_as_well) {
  /* The control for the divergence tests below: the test's own copy of the
   * echo server, unchanged, passes every check of net_echo's recording. */
  char dir[TMP_PATH_MAX];
  tmp_path(dir, "rec");
  session_t s;
  record_echo(dir, &s);
  mirror_cfg_t cfg = {.mode = MIRROR_ECHO};
  setup_t setup = {.spawn = mirror_spawn, .spawn_ctx = &cfg};
  sim_replay_report_t rep;
  cr_assert_eq(replay(dir, &setup, RT_TIME_NEVER, &rep), SIM_REPLAY_DONE,
               "%s: %s", SAID(rep));
  cr_assert_eq(rep.bytes_out, s.echoed);
  cr_assert_eq(rep.output_hash, s.output_hash);
}

/* ---- Divergence ---------------------------------------------------------- */

Test(sim_replay, a_program_that_writes_other_bytes_diverges_at_the_write) {
  char dir[TMP_PATH_MAX];
  tmp_path(dir, "rec");
  session_t s;
  record_echo(dir, &s);

  mirror_cfg_t cfg = {.mode = MIRROR_SHOUT};
  setup_t setup = {.spawn = mirror_spawn, .spawn_ctx = &cfg};
  sim_replay_report_t rep;
  cr_assert_eq(replay(dir, &setup, RT_TIME_NEVER, &rep), SIM_REPLAY_DIVERGED,
               "%s: %s", SAID(rep));
  /* Listener 1, then the accepted connection: stream 2, handled by actor
   * 2 (the acceptor is 1) in its turn for a stream signal. */
  cr_assert_eq(rep.stream, 2, "stream %" PRIu64, rep.stream);
  cr_assert_eq(rep.actor, 2, "actor %" PRIu64, rep.actor);
  cr_assert_str_eq(rep.actor_name, "shout");
  cr_assert_eq(rep.tag, RT_TAG_STREAM);
  cr_assert_not_null(strstr(rep.what, "wrote"), "%s", rep.what);
  cr_assert_not_null(strstr(rep.what, "stream 2"), "%s", rep.what);
  /* The first chunk, upper-cased, is what the replay offered. */
  cr_assert_not_null(strstr(rep.what, "other contents"), "%s", rep.what);
  char shouted[8];
  for (size_t i = 0; i < sizeof(shouted) - 1; i++)
    shouted[i] = (char)(pattern(i) - 'a' + 'A');
  shouted[sizeof(shouted) - 1] = '\0';
  cr_assert_not_null(strstr(rep.what, shouted), "%s", rep.what);
  cr_assert_neq(rep.context[0], '\0');
  cr_assert_not_null(strstr(rep.context, "READ"), "%s", rep.context);
  cr_assert_not_null(strstr(rep.context, "WRITE"), "%s", rep.context);
  /* It stopped at the first write: nothing was written before it. */
  cr_assert_eq(rep.writes, 0);
  cr_assert_eq(rep.bytes_out, 0);
  cr_assert_eq(rep.reads, 1);
}

Test(sim_replay, an_extra_listener_set_up_first_is_caught_at_the_accept) {
  /* Ids come from the world in creation order: an extra listener (nobody's)
   * takes id 1, the recording's listener, and the real one gets 2, so the
   * accept the replay makes, on listener 2, is not the recorded one. */
  char dir[TMP_PATH_MAX];
  tmp_path(dir, "rec");
  session_t s;
  record_echo(dir, &s);
  setup_t setup = {.extra = EXTRA_LISTENER};
  sim_replay_report_t rep;
  cr_assert_eq(replay(dir, &setup, RT_TIME_NEVER, &rep), SIM_REPLAY_DIVERGED,
               "%s: %s", SAID(rep));
  cr_assert_not_null(strstr(rep.what, "stream"), "%s", rep.what);
  cr_assert_not_null(strstr(rep.what, "ACCEPT (1)"), "%s", rep.what);
  cr_assert_eq(rep.stream, 2);
  cr_assert_eq(rep.accepts, 0);
  cr_assert_eq(rep.reads, 0);
}

Test(sim_replay, an_extra_server_set_up_first_shifts_the_stream_ids) {
  /* A second echo server before the real one: its acceptor accepts the
   * recorded connection on listener 1, which the new stream gets id 3 for,
   * not the recorded 2. */
  char dir[TMP_PATH_MAX];
  tmp_path(dir, "rec");
  session_t s;
  record_echo(dir, &s);
  setup_t setup = {.extra = EXTRA_SERVER};
  sim_replay_report_t rep;
  cr_assert_eq(replay(dir, &setup, RT_TIME_NEVER, &rep), SIM_REPLAY_DIVERGED,
               "%s: %s", SAID(rep));
  cr_assert_not_null(strstr(rep.what, "stream id 3"), "%s", rep.what);
  cr_assert_not_null(strstr(rep.what, "was 2"), "%s", rep.what);
  cr_assert_eq(rep.stream, 2);
  cr_assert_eq(rep.actor, 1, "the first acceptor, in its turn");
  cr_assert_eq(rep.accepts, 0);
}

Test(sim_replay, a_replay_without_the_server_diverges_at_the_first_signal) {
  char dir[TMP_PATH_MAX];
  tmp_path(dir, "rec");
  session_t s;
  record_echo(dir, &s);
  setup_t setup = {.extra = EXTRA_NO_SERVER};
  sim_replay_report_t rep;
  cr_assert_eq(replay(dir, &setup, RT_TIME_NEVER, &rep), SIM_REPLAY_DIVERGED,
               "%s: %s", SAID(rep));
  cr_assert_not_null(strstr(rep.what, "signals stream 1"), "%s", rep.what);
  cr_assert_not_null(strstr(rep.what, "does not have"), "%s", rep.what);
  cr_assert_eq(rep.stream, 1);
  cr_assert_eq(rep.actor, 0, "between passes");
  cr_assert_eq(rep.records, 1);
  cr_assert_eq(rep.passes, 0);
}

Test(sim_replay, a_program_with_more_messages_inside_diverges_at_the_pass) {
  /* Same bytes out, one more delivery per stream signal: the writes all
   * match, the pass's checkpoint does not. */
  char dir[TMP_PATH_MAX];
  tmp_path(dir, "rec");
  session_t s;
  record_echo(dir, &s);
  mirror_cfg_t cfg = {.mode = MIRROR_CHATTY};
  setup_t setup = {.spawn = mirror_spawn, .spawn_ctx = &cfg};
  sim_replay_report_t rep;
  cr_assert_eq(replay(dir, &setup, RT_TIME_NEVER, &rep), SIM_REPLAY_DIVERGED,
               "%s: %s", SAID(rep));
  cr_assert_not_null(strstr(rep.what, "deliveries"), "%s", rep.what);
  cr_assert_eq(rep.actor, 0, "checked after the pass, between turns");
  cr_assert_eq(rep.stream, 0);
  cr_assert_gt(rep.writes, 0, "the writes before it matched");
  cr_assert_eq(rep.checkpoints, 0, "the first pass already differs");
  cr_assert_not_null(strstr(rep.context, "CHECKPOINT"), "%s", rep.context);
}

/* ---- Edited traces ------------------------------------------------------- */

/* A record's payload changed in place and its CRC-32C resealed, as a
 * different program's recording would differ: the trace reads cleanly, and
 * the replay must name the check that fails. */

typedef struct found {
  uint64_t offset, index;
  uint32_t len, file_seq;
} found_t;

/* The nth (from 0) record of `type`. */
static found_t find_record(const char *dir, uint8_t type, uint32_t nth) {
  net_trace_reader_t *rd = NULL;
  char err[ERR_CAP] = "";
  cr_assert_eq(net_trace_reader_open(dir, &rd, err, sizeof(err)), RT_OK, "%s",
               err);
  net_trace_record_t rec;
  uint32_t seen = 0;
  found_t f = {0};
  bool ok = false;
  for (uint32_t i = 0; i < RECORDS_MAX && !ok; i++) {
    int rc = net_trace_next(rd, &rec);
    cr_assert_eq(rc, 1, "no record %u of type %s: %s", nth,
                 net_trace_type_name(type), net_trace_reader_error(rd));
    if (rec.type == type && seen++ == nth) {
      f = (found_t){.offset = rec.offset,
                    .index = rec.index,
                    .len = rec.len,
                    .file_seq = rec.file_seq};
      ok = true;
    }
  }
  net_trace_reader_close(rd);
  cr_assert(ok);
  cr_assert_eq(f.file_seq, 1);
  return f;
}

/* XOR payload byte `at` of the record with mask, and reseal its CRC. */
static void xor_record(const char *dir, const found_t *f, uint32_t at,
                       uint8_t mask) {
  char file[FILE_PATH_MAX];
  snprintf(file, sizeof(file), "%s/trace-000001.oct", dir);
  size_t size = NET_TRACE_RECORD_OVERHEAD + f->len;
  uint8_t *b = malloc(size);
  cr_assert_not_null(b);
  FILE *fp = fopen(file, "r+b");
  cr_assert_not_null(fp);
  cr_assert_eq(fseek(fp, (long)f->offset, SEEK_SET), 0);
  cr_assert_eq(fread(b, 1, size, fp), size);
  cr_assert_lt(at, f->len);
  b[NET_TRACE_RECORD_HEAD + at] ^= mask;
  uint32_t crc = net_trace_crc32c(0, b, NET_TRACE_RECORD_HEAD + f->len);
  for (int k = 0; k < 4; k++)
    b[NET_TRACE_RECORD_HEAD + f->len + (uint32_t)k] = (uint8_t)(crc >> (8 * k));
  cr_assert_eq(fseek(fp, (long)f->offset, SEEK_SET), 0);
  cr_assert_eq(fwrite(b, 1, size, fp), size);
  cr_assert_eq(fclose(fp), 0);
  free(b);
}

/* Flip bit 0 of payload byte `at` (negative: from the end) of the record,
 * and reseal the record's CRC-32C. */
static void edit_record(const char *dir, const found_t *f, int32_t at) {
  uint32_t pos = at >= 0 ? (uint32_t)at : f->len - (uint32_t)(-at);
  xor_record(dir, f, pos, 1u);
}

Test(sim_replay, a_close_with_another_output_hash_diverges_at_the_close) {
  /* CLOSE: stream, bytes in, bytes out, then the stream's output hash (the
   * last 8 bytes). */
  char dir[TMP_PATH_MAX];
  tmp_path(dir, "rec");
  session_t s;
  record_echo(dir, &s);
  found_t f = find_record(dir, NET_TRACE_T_CLOSE, 0);
  edit_record(dir, &f, -1);
  sim_replay_report_t rep;
  cr_assert_eq(replay_echo(dir, &rep), SIM_REPLAY_DIVERGED, "%s: %s",
               SAID(rep));
  cr_assert_not_null(strstr(rep.what, "stream 2 closed after"), "%s", rep.what);
  cr_assert_eq(rep.stream, 2);
  cr_assert_eq(rep.record_index, f.index);
  cr_assert_eq(rep.bytes_out, s.echoed, "every write matched before it");
}

Test(sim_replay, a_checkpoint_with_other_hashes_diverges_after_the_pass) {
  /* CHECKPOINT: kind, result, deliveries, timer firings, then the run hash
   * and the output hash (8 bytes each, last). */
  char dir[TMP_PATH_MAX];
  tmp_path(dir, "rec");
  session_t s;
  record_echo(dir, &s);
  found_t f = find_record(dir, NET_TRACE_T_CHECKPOINT, 0);
  edit_record(dir, &f, -1);
  sim_replay_report_t rep;
  cr_assert_eq(replay_echo(dir, &rep), SIM_REPLAY_DIVERGED, "%s: %s",
               SAID(rep));
  cr_assert_not_null(strstr(rep.what, "output hash"), "%s", rep.what);
  cr_assert_eq(rep.record_index, f.index);
  cr_assert_eq(rep.checkpoints, 0);

  edit_record(dir, &f, -1); /* restored */
  edit_record(dir, &f, -9); /* the run hash's last byte */
  cr_assert_eq(replay_echo(dir, &rep), SIM_REPLAY_DIVERGED, "%s: %s",
               SAID(rep));
  cr_assert_not_null(strstr(rep.what, "run hash"), "%s", rep.what);
  cr_assert_eq(rep.record_index, f.index);

  edit_record(dir, &f, -9); /* restored: the original replays again */
  cr_assert_eq(replay_echo(dir, &rep), SIM_REPLAY_DONE, "%s: %s", SAID(rep));
}

static size_t varint_len(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    n++;
  }
  return n;
}

/* Values no recorder writes, with valid checksums (a crafted trace): the
 * replay refuses them as trace errors instead of handing them to actors,
 * which would trust them (an accept "result" of 5 with no stream). */
Test(sim_replay, an_accept_result_no_recorder_writes_is_a_trace_error) {
  char dir[TMP_PATH_MAX];
  tmp_path(dir, "rec");
  session_t s;
  record_echo(dir, &s);
  /* ACCEPT: u64 listener, i64 rc (1: zigzag byte 0x02), u64 stream. */
  found_t f = find_record(dir, NET_TRACE_T_ACCEPT, 0);
  xor_record(dir, &f, 1, 0x08); /* zigzag 0x02 -> 0x0a: rc 5 */
  sim_replay_report_t rep;
  cr_assert_eq(replay_echo(dir, &rep), SIM_REPLAY_TRACE_ERROR, "%s: %s",
               SAID(rep));
  cr_assert_not_null(strstr(rep.what, "accept result of 5"), "%s", rep.what);
}

/* Found by mutating traces: a notification for source 0 (no stream or
 * listener has it) once reached the id map, which asserts on key 0. */
Test(sim_replay, a_notification_for_source_0_is_an_unknown_stream) {
  char dir[TMP_PATH_MAX];
  tmp_path(dir, "rec");
  session_t s;
  record_echo(dir, &s);
  /* STREAM_EVENT: u64 source, u64 events; the first is the listener's. */
  found_t f = find_record(dir, NET_TRACE_T_STREAM_EVENT, 0);
  net_trace_reader_t *rd = NULL;
  char err[ERR_CAP] = "";
  cr_assert_eq(net_trace_reader_open(dir, &rd, err, sizeof(err)), RT_OK, "%s",
               err);
  net_trace_record_t rec;
  uint64_t source = 0;
  while (net_trace_next(rd, &rec) == 1)
    if (rec.index == f.index) {
      net_trace_dec_t d;
      net_trace_dec_init(&d, rec.payload, rec.len);
      source = net_trace_get_u64(&d);
      break;
    }
  net_trace_reader_close(rd);
  cr_assert(source > 0 && source < 0x80, "a one-byte id: %" PRIu64, source);
  xor_record(dir, &f, 0, (uint8_t)source); /* the id becomes 0 */
  sim_replay_report_t rep;
  cr_assert_eq(replay_echo(dir, &rep), SIM_REPLAY_DIVERGED, "%s: %s",
               SAID(rep));
  cr_assert_not_null(strstr(rep.what, "signals stream 0"), "%s", rep.what);
}

Test(sim_replay, a_checkpoint_with_other_timer_firings_diverges) {
  char dir[TMP_PATH_MAX];
  tmp_path(dir, "rec");
  session_t s;
  record_echo(dir, &s);
  found_t f = find_record(dir, NET_TRACE_T_CHECKPOINT, 0);
  net_trace_reader_t *rd = NULL;
  char err[ERR_CAP] = "";
  cr_assert_eq(net_trace_reader_open(dir, &rd, err, sizeof(err)), RT_OK, "%s",
               err);
  net_trace_record_t rec;
  uint32_t at = 0;
  while (net_trace_next(rd, &rec) == 1)
    if (rec.index == f.index) {
      net_trace_dec_t d;
      net_trace_dec_init(&d, rec.payload, rec.len);
      for (int i = 0; i < 3; i++) /* kind, result, deliveries */
        at += (uint32_t)varint_len(net_trace_get_u64(&d));
      break;
    }
  net_trace_reader_close(rd);
  xor_record(dir, &f, at, 0x02); /* the firings' count, +-2 */
  sim_replay_report_t rep;
  cr_assert_eq(replay_echo(dir, &rep), SIM_REPLAY_DIVERGED, "%s: %s",
               SAID(rep));
  cr_assert_not_null(strstr(rep.what, "timers have fired"), "%s", rep.what);
}

Test(sim_replay, a_write_that_took_more_than_offered_is_a_trace_error) {
  char dir[TMP_PATH_MAX];
  tmp_path(dir, "rec");
  session_t s;
  record_echo(dir, &s);
  /* The first write that took all of an even number of bytes: WRITE is
   * u64 stream, u64 offered, i64 rc; bit 1 of rc's first byte is its value's
   * bit 0 (zigzag), so flipping it makes rc = offered + 1. */
  net_trace_reader_t *rd = NULL;
  char err[ERR_CAP] = "";
  cr_assert_eq(net_trace_reader_open(dir, &rd, err, sizeof(err)), RT_OK, "%s",
               err);
  net_trace_record_t rec;
  uint32_t nth = 0, at = 0;
  bool found = false;
  while (!found && net_trace_next(rd, &rec) == 1) {
    if (rec.type != NET_TRACE_T_WRITE)
      continue;
    net_trace_dec_t d;
    net_trace_dec_init(&d, rec.payload, rec.len);
    uint64_t stream = net_trace_get_u64(&d);
    uint64_t offered = net_trace_get_u64(&d);
    int64_t rc = net_trace_get_i64(&d);
    if (rc > 0 && (uint64_t)rc == offered && offered % 2 == 0) {
      at = (uint32_t)(varint_len(stream) + varint_len(offered));
      found = true;
    } else {
      nth++;
    }
  }
  net_trace_reader_close(rd);
  cr_assert(found, "no whole even write in the recording");
  found_t f = find_record(dir, NET_TRACE_T_WRITE, nth);
  xor_record(dir, &f, at, 0x02);
  sim_replay_report_t rep;
  cr_assert_eq(replay_echo(dir, &rep), SIM_REPLAY_TRACE_ERROR, "%s: %s",
               SAID(rep));
  cr_assert_not_null(strstr(rep.what, "a write took"), "%s", rep.what);
}

/* ---- Stopping early ------------------------------------------------------ */

Test(sim_replay, until_stops_at_the_requested_time_with_every_check_matched) {
  char dir[TMP_PATH_MAX];
  tmp_path(dir, "rec");
  session_t s;
  record_echo(dir, &s);
  setup_t setup = {.extra = EXTRA_NONE};
  sim_replay_report_t full;
  cr_assert_eq(replay(dir, &setup, RT_TIME_NEVER, &full), SIM_REPLAY_DONE,
               "%s: %s", SAID(full));
  cr_assert_gt(full.time, 1);

  rt_time_ns until = full.time / 2;
  sim_replay_report_t half;
  cr_assert_eq(replay(dir, &setup, until, &half), SIM_REPLAY_UNTIL, "%s: %s",
               SAID(half));
  cr_assert_leq(half.time, until, "time %" PRId64 " past until %" PRId64,
                half.time, until);
  cr_assert_lt(half.passes, full.passes);
  cr_assert_lt(half.records, full.records);
  cr_assert_eq(half.what[0], '\0');

  /* Just before the end: every pass but the last ones. */
  sim_replay_report_t late;
  cr_assert_eq(replay(dir, &setup, full.time - 1, &late), SIM_REPLAY_UNTIL,
               "%s: %s", SAID(late));
  cr_assert_lt(late.time, full.time);
  cr_assert_geq(late.passes, half.passes);

  /* At 0: the clock never moves, so no pass runs. */
  sim_replay_report_t zero;
  cr_assert_eq(replay(dir, &setup, 0, &zero), SIM_REPLAY_UNTIL, "%s: %s",
               SAID(zero));
  cr_assert_eq(zero.time, 0);
  cr_assert_eq(zero.passes, 0);

  /* At the end exactly: the whole recording. */
  sim_replay_report_t end;
  cr_assert_eq(replay(dir, &setup, full.time, &end), SIM_REPLAY_DONE, "%s: %s",
               SAID(end));
  cr_assert_eq(end.records, full.records);
}

/* A replay runs once: after UNTIL the records past it are consumed, so a
 * second run must not claim the whole recording matched. */
Test(sim_replay, a_second_run_of_one_replay_is_refused_not_done) {
  char dir[TMP_PATH_MAX];
  tmp_path(dir, "rec");
  session_t s;
  record_echo(dir, &s);
  sim_replay_config_t cfg = {.log_level = RT_LOG_OFF};
  sim_replay_t *r = NULL;
  char err[ERR_CAP] = "";
  cr_assert_eq(sim_replay_open(dir, &cfg, &r, err, sizeof(err)), RT_OK, "%s",
               err);
  rt_listener_t *l = NULL;
  cr_assert_eq(sim_replay_listen(r, 0, &l), RT_OK);
  cr_assert_eq(echo_spawn(sim_replay_world(r), l, NULL), RT_OK);
  sim_replay_report_t first, second;
  cr_assert_eq(sim_replay_run(r, 1, &first), SIM_REPLAY_UNTIL, "%s: %s",
               SAID(first));
  cr_assert_eq(sim_replay_run(r, RT_TIME_NEVER, &second),
               SIM_REPLAY_TRACE_ERROR);
  cr_assert(strstr(second.what, "already run") != NULL, "%s", second.what);
  sim_replay_close(r);
}

/* ---- Lost records -------------------------------------------------------- */

Test(sim_replay, a_record_the_writer_refused_is_a_trace_error_at_the_gap) {
  /* The smallest writer buffer (NET_TRACE_BUFFER_BYTES_MIN, 4 KiB) limits a
   * record's payload to the buffer less a record's overhead and room for a
   * LOST record (net_trace.c: payload_max = 4096 - 9 - 29 = 4058 bytes).
   * The echo reads up to 4096 bytes at a time (net_echo.c ECHO_CHUNK), so
   * when 16 KiB wait on the socket its first read returns 4096 bytes, and
   * that READ record (4096 bytes and its fields) is refused with
   * RT_ELIMIT: counted, and a LOST record marks the gap. */
  char dir[TMP_PATH_MAX];
  tmp_path(dir, "rec");
  session_t s;
  plan_t plan = {.buffer_bytes = NET_TRACE_BUFFER_BYTES_MIN,
                 .first_len = BIG_LEN};
  record_session(dir, &plan, &s);
  cr_assert_eq(s.echoed, BIG_LEN);
  cr_assert_gt(s.stats.records_lost, 0);

  sim_replay_report_t rep;
  cr_assert_eq(replay_echo(dir, &rep), SIM_REPLAY_TRACE_ERROR, "%s: %s",
               SAID(rep));
  cr_assert_not_null(strstr(rep.what, "lost"), "%s", rep.what);
  cr_assert_eq(rep.bytes_in, 0, "the lost read was the first");
  cr_assert_eq(rep.accepts, 1);
  cr_assert_neq(rep.context[0], '\0');
  cr_assert_not_null(strstr(rep.context, "LOST"), "%s", rep.context);
}

/* ---- Damaged traces ------------------------------------------------------ */

typedef struct located {
  uint64_t offset; /* in trace-000001.oct */
  uint32_t len;
  uint64_t index;
  uint64_t count; /* records in the trace */
} located_t;

/* The record in the middle of the recording (by index) with a payload. */
static located_t locate_middle(const char *dir) {
  net_trace_reader_t *rd = NULL;
  char err[ERR_CAP] = "";
  cr_assert_eq(net_trace_reader_open(dir, &rd, err, sizeof(err)), RT_OK, "%s",
               err);
  net_trace_record_t rec;
  uint64_t count = 0;
  int rc;
  while (count < RECORDS_MAX && (rc = net_trace_next(rd, &rec)) == 1)
    count++;
  cr_assert_eq(rc, 0, "%s", net_trace_reader_error(rd));
  net_trace_reader_close(rd);
  cr_assert_gt(count, 8);

  cr_assert_eq(net_trace_reader_open(dir, &rd, err, sizeof(err)), RT_OK);
  located_t at = {.count = count};
  bool found = false;
  for (uint64_t i = 0; i < count && !found; i++) {
    cr_assert_eq(net_trace_next(rd, &rec), 1);
    if (i >= count / 2 && rec.len > 0) {
      at.offset = rec.offset;
      at.len = rec.len;
      at.index = rec.index;
      cr_assert_eq(rec.file_seq, 1);
      found = true;
    }
  }
  net_trace_reader_close(rd);
  cr_assert(found);
  return at;
}

static void first_file(char *out, const char *dir) {
  snprintf(out, FILE_PATH_MAX, "%s/trace-000001.oct", dir);
}

Test(sim_replay, a_flipped_byte_is_a_checksum_error_not_a_crash) {
  char dir[TMP_PATH_MAX], file[FILE_PATH_MAX];
  tmp_path(dir, "rec");
  first_file(file, dir);
  session_t s;
  record_echo(dir, &s);
  located_t at = locate_middle(dir);

  /* The first payload byte of that record: its head still checks out, so
   * the reader reads it whole and the CRC-32C finds the damage. */
  FILE *f = fopen(file, "r+b");
  cr_assert_not_null(f);
  long pos = (long)(at.offset + NET_TRACE_RECORD_HEAD);
  cr_assert_eq(fseek(f, pos, SEEK_SET), 0);
  int c = fgetc(f);
  cr_assert_neq(c, EOF);
  cr_assert_eq(fseek(f, pos, SEEK_SET), 0);
  cr_assert_neq(fputc(c ^ 0x10, f), EOF);
  cr_assert_eq(fclose(f), 0);

  sim_replay_report_t rep;
  cr_assert_eq(replay_echo(dir, &rep), SIM_REPLAY_TRACE_ERROR, "%s: %s",
               SAID(rep));
  cr_assert_not_null(strstr(rep.what, "checksum"), "%s", rep.what);
  char idx[32];
  snprintf(idx, sizeof(idx), "record %" PRIu64, at.index);
  cr_assert_not_null(strstr(rep.what, idx), "want %s in: %s", idx, rep.what);
  /* Everything before the damage was replayed. */
  cr_assert_eq(rep.records, at.index, "records %" PRIu64, rep.records);
}

Test(sim_replay, a_cut_trace_is_a_trace_error_that_says_truncated) {
  char dir[TMP_PATH_MAX], file[FILE_PATH_MAX];
  tmp_path(dir, "rec");
  first_file(file, dir);
  session_t s;
  record_echo(dir, &s);
  located_t at = locate_middle(dir);

  /* Cut inside the record, past its head: a crash mid-write looks so. */
  cr_assert_eq(truncate(file, (off_t)(at.offset + NET_TRACE_RECORD_HEAD + 2)),
               0, "truncate: %s", strerror(errno));
  sim_replay_report_t rep;
  cr_assert_eq(replay_echo(dir, &rep), SIM_REPLAY_TRACE_ERROR, "%s: %s",
               SAID(rep));
  cr_assert_not_null(strstr(rep.what, "truncated"), "%s", rep.what);
  cr_assert_eq(rep.records, at.index);

  /* Cut at the record's first byte: no END, the same verdict. */
  cr_assert_eq(truncate(file, (off_t)at.offset), 0);
  cr_assert_eq(replay_echo(dir, &rep), SIM_REPLAY_TRACE_ERROR, "%s: %s",
               SAID(rep));
  cr_assert_not_null(strstr(rep.what, "truncated"), "%s", rep.what);
  cr_assert_eq(rep.records, at.index);
}

Test(sim_replay, opening_what_is_not_a_live_recording_fails_with_a_sentence) {
  sim_replay_t *r = NULL;
  char err[ERR_CAP];
  char path[TMP_PATH_MAX];

  tmp_path(path, "missing");
  strcpy(err, "");
  int rc = sim_replay_open(path, NULL, &r, err, sizeof(err));
  cr_assert_lt(rc, 0);
  cr_assert_null(r);
  cr_assert_gt(strlen(err), 10, "err: '%s'", err);
  cr_assert_not_null(strstr(err, "missing"), "%s", err);

  /* Not a trace at all. */
  tmp_path(path, "junk.oct");
  FILE *f = fopen(path, "wb");
  cr_assert_not_null(f);
  fputs("this is not a trace file, just some text long enough\n", f);
  cr_assert_eq(fclose(f), 0);
  strcpy(err, "");
  cr_assert_lt(sim_replay_open(path, NULL, &r, err, sizeof(err)), 0);
  cr_assert_null(r);
  cr_assert_gt(strlen(err), 10, "err: '%s'", err);

  /* A simulated run's trace: replayed from its seed, not here. */
  char dir[TMP_PATH_MAX];
  tmp_path(dir, "sim");
  net_trace_header_t hdr = {.flags = NET_RECORD_F_SIM, .seed = 3};
  net_trace_writer_t *wr = NULL;
  cr_assert_eq(net_trace_writer_open(dir, &hdr, 0, &wr, err, sizeof(err)),
               RT_OK, "%s", err);
  cr_assert_eq(net_trace_writer_close(wr, NULL, err, sizeof(err)), RT_OK);
  strcpy(err, "");
  cr_assert_eq(sim_replay_open(dir, NULL, &r, err, sizeof(err)), RT_EINVAL);
  cr_assert_null(r);
  cr_assert_not_null(strstr(err, "simulated"), "%s", err);
}

/* ---- Externals through a recording --------------------------------------- */

Test(sim_replay, externals_recorded_live_are_taken_back_not_recomputed) {
  /* The keyed mirror XORs each chunk with a key it gets as an external.
   * Live, no recording answers: it computes the key (0x21) and the
   * recorder writes it down. The replay is configured to compute another
   * key (0x5a): it replays only if every key came from the recording. */
  char dir[TMP_PATH_MAX];
  tmp_path(dir, "rec");
  mirror_cfg_t live_cfg = {.mode = MIRROR_KEYED, .fresh_key = 0x21};
  plan_t plan = {.first_len = FIRST_LEN,
                 .second_len = SECOND_LEN,
                 .xor_key = 0x21,
                 .spawn = mirror_spawn,
                 .spawn_ctx = &live_cfg};
  session_t s;
  record_session(dir, &plan, &s);
  cr_assert_gt(live_cfg.keys_computed, 0);
  cr_assert_eq(live_cfg.keys_taken, 0);

  mirror_cfg_t replay_cfg = {.mode = MIRROR_KEYED, .fresh_key = 0x5a};
  setup_t setup = {.spawn = mirror_spawn, .spawn_ctx = &replay_cfg};
  sim_replay_report_t rep;
  cr_assert_eq(replay(dir, &setup, RT_TIME_NEVER, &rep), SIM_REPLAY_DONE,
               "%s: %s", SAID(rep));
  cr_assert_eq(replay_cfg.keys_computed, 0);
  cr_assert_eq(replay_cfg.keys_taken, live_cfg.keys_computed);
  cr_assert_eq(rep.externals, live_cfg.keys_computed);
  cr_assert_eq(rep.output_hash, s.output_hash);

  /* The plain echo asks for no key where the recording has one. */
  sim_replay_report_t plain;
  cr_assert_eq(replay_echo(dir, &plain), SIM_REPLAY_DIVERGED, "%s: %s",
               SAID(plain));
  cr_assert_not_null(strstr(plain.what, "EXTERNAL"), "%s", plain.what);
}

/* ---- The tap, unit by unit ----------------------------------------------- */

#define PROBE_DATA_MAX 64u

typedef struct probe {
  /* put */
  uint32_t puts;
  uint32_t put_kind;
  int64_t put_rc;
  uint8_t put_data[PROBE_DATA_MAX];
  size_t put_len;
  /* take */
  uint32_t takes;
  uint32_t take_kind;
  int take_result; /* what take returns */
  int64_t take_rc;
  const uint8_t *take_data;
  size_t take_len;
  /* writes */
  uint32_t writes;
  uint64_t write_stream;
  size_t write_len;
  int64_t write_rc;
} probe_t;

static void probe_put(void *ctx, uint32_t kind, int64_t rc, const void *data,
                      size_t len) {
  probe_t *p = ctx;
  p->puts++;
  p->put_kind = kind;
  p->put_rc = rc;
  cr_assert_leq(len, PROBE_DATA_MAX);
  if (len > 0)
    memcpy(p->put_data, data, len);
  p->put_len = len;
}

static int probe_take(void *ctx, uint32_t kind, int64_t *rc,
                      const uint8_t **data, size_t *len) {
  probe_t *p = ctx;
  p->takes++;
  p->take_kind = kind;
  if (p->take_result == 1) {
    *rc = p->take_rc;
    *data = p->take_data;
    *len = p->take_len;
  }
  return p->take_result;
}

static void probe_write(void *ctx, uint64_t stream, const void *buf, size_t len,
                        int64_t rc) {
  (void)buf;
  probe_t *p = ctx;
  p->writes++;
  p->write_stream = stream;
  p->write_len = len;
  p->write_rc = rc;
}

static sim_world_t *quiet_sim(void) {
  sim_config_t cfg = {.seed = SEED, .log_level = RT_LOG_OFF};
  sim_world_t *sw = sim_world_create(&cfg);
  cr_assert_not_null(sw);
  return sw;
}

Test(sim_replay, externals_without_a_tap_are_computed_and_put_goes_nowhere) {
  sim_world_t *sw = quiet_sim();
  rt_world_t *w = sim_world_rt(sw);
  cr_assert(!rt_world_tapped(w));
  int64_t rc = -1;
  const uint8_t *data = NULL;
  size_t len = 0;
  cr_assert_eq(rt_external_take(w, 7, &rc, &data, &len), 0);
  rt_external_put(w, 7, 5, "abc", 3); /* a no-op: nothing to see, no crash */
  rt_external_put(w, 7, 0, NULL, 0);

  /* A tap that hooks neither: the same. */
  probe_t p = {.take_result = 1};
  rt_tap_t none = {0};
  rt_world_set_tap(w, &none, &p);
  cr_assert(rt_world_tapped(w));
  cr_assert_eq(rt_external_take(w, 7, &rc, &data, &len), 0);
  rt_external_put(w, 7, 5, "abc", 3);
  cr_assert_eq(p.takes, 0);
  cr_assert_eq(p.puts, 0);
  rt_world_set_tap(w, NULL, NULL);
  cr_assert(!rt_world_tapped(w));
  sim_world_destroy(sw);
}

Test(sim_replay, a_recording_tap_sees_each_put_and_is_never_asked_to_take) {
  sim_world_t *sw = quiet_sim();
  rt_world_t *w = sim_world_rt(sw);
  probe_t p = {0};
  rt_tap_t recorder = {.put = probe_put};
  rt_world_set_tap(w, &recorder, &p);

  int64_t rc = 0;
  const uint8_t *data = NULL;
  size_t len = 0;
  cr_assert_eq(rt_external_take(w, 11, &rc, &data, &len), 0, "compute it");
  rt_external_put(w, 11, -3, "abc", 3);
  cr_assert_eq(p.puts, 1);
  cr_assert_eq(p.put_kind, 11);
  cr_assert_eq(p.put_rc, -3);
  cr_assert_eq(p.put_len, 3);
  cr_assert_eq(memcmp(p.put_data, "abc", 3), 0);

  rt_external_put(w, 12, INT64_MAX, NULL, 0);
  cr_assert_eq(p.puts, 2);
  cr_assert_eq(p.put_kind, 12);
  cr_assert_eq(p.put_rc, INT64_MAX);
  cr_assert_eq(p.put_len, 0);

  /* Cleared: puts no longer reach it. */
  rt_world_set_tap(w, NULL, NULL);
  rt_external_put(w, 13, 1, "x", 1);
  cr_assert_eq(p.puts, 2);
  sim_world_destroy(sw);
}

Test(sim_replay, a_replaying_tap_answers_take_and_its_errors_propagate) {
  sim_world_t *sw = quiet_sim();
  rt_world_t *w = sim_world_rt(sw);
  static const uint8_t recorded[] = {'x', 'y', 0, 'z'};
  probe_t p = {.take_result = 1,
               .take_rc = 42,
               .take_data = recorded,
               .take_len = sizeof(recorded)};
  rt_tap_t replayer = {.take = probe_take};
  rt_world_set_tap(w, &replayer, &p);

  int64_t rc = 0;
  const uint8_t *data = NULL;
  size_t len = 0;
  cr_assert_eq(rt_external_take(w, 21, &rc, &data, &len), 1);
  cr_assert_eq(p.takes, 1);
  cr_assert_eq(p.take_kind, 21);
  cr_assert_eq(rc, 42);
  cr_assert_eq(data, recorded);
  cr_assert_eq(len, sizeof(recorded));
  rt_external_put(w, 21, 1, "q", 1); /* no put hook: nothing happens */

  /* The recording has something else here: the caller gets the error. */
  p.take_result = RT_EIO;
  cr_assert_eq(rt_external_take(w, 22, &rc, &data, &len), RT_EIO);
  p.take_result = RT_ENOMEM;
  cr_assert_eq(rt_external_take(w, 23, &rc, &data, &len), RT_ENOMEM);
  cr_assert_eq(p.takes, 3);
  cr_assert_eq(p.take_kind, 23);
  /* And a take that says "compute it" is passed on as such. */
  p.take_result = 0;
  cr_assert_eq(rt_external_take(w, 24, &rc, &data, &len), 0);

  /* Both hooks: take asked first, put when it says compute. */
  probe_t both = {.take_result = 0};
  rt_tap_t full = {.take = probe_take, .put = probe_put};
  rt_world_set_tap(w, &full, &both);
  cr_assert_eq(rt_external_take(w, 25, &rc, &data, &len), 0);
  rt_external_put(w, 25, 9, "ok", 2);
  cr_assert_eq(both.takes, 1);
  cr_assert_eq(both.puts, 1);
  cr_assert_eq(both.put_kind, 25);
  rt_world_set_tap(w, NULL, NULL);
  sim_world_destroy(sw);
}

/* ---- The output hash ----------------------------------------------------- */

Test(sim_replay, the_output_hash_folds_accepted_bytes_only_while_tapped) {
  sim_world_t *sw = quiet_sim();
  rt_world_t *w = sim_world_rt(sw);
  /* A 16-byte buffer from a to b, so a write can be cut short. */
  sim_link_config_t small = {.buffer = 16};
  rt_stream_t *a = NULL, *b = NULL;
  cr_assert_eq(sim_pipe_create(sw, &small, NULL, &a, &b), RT_OK);
  cr_assert_neq(a->id, b->id);

  /* Untapped: bytes flow, nothing is hashed. */
  cr_assert_eq(rt_stream_write(a, "hello", 5), 5);
  cr_assert_eq(rt_world_output_hash(w), 0);
  cr_assert_eq(a->out_hash, 0);
  cr_assert_eq(a->bytes_out, 5);

  probe_t p = {0};
  rt_tap_t tap = {.write = probe_write};
  rt_world_set_tap(w, &tap, &p);
  cr_assert_eq(rt_world_output_hash(w), 0, "nothing written while tapped");

  /* Each accepted byte is folded with its stream's id, per stream and per
   * world, in order. */
  cr_assert_eq(rt_stream_write(a, "world", 5), 5);
  uint64_t h1 = rt_hash_step(0, rt_hash_bytes("world", 5, a->id));
  cr_assert_eq(a->out_hash, h1);
  cr_assert_eq(rt_world_output_hash(w), h1);
  cr_assert_eq(b->out_hash, 0);
  cr_assert_eq(p.writes, 1);
  cr_assert_eq(p.write_stream, a->id);
  cr_assert_eq(p.write_len, 5);
  cr_assert_eq(p.write_rc, 5);

  /* The same bytes on the other stream hash differently (its id). */
  cr_assert_eq(rt_stream_write(b, "world", 5), 5);
  uint64_t hb = rt_hash_bytes("world", 5, b->id);
  cr_assert_eq(b->out_hash, rt_hash_step(0, hb));
  cr_assert_neq(b->out_hash, a->out_hash);
  uint64_t h2 = rt_hash_step(h1, hb);
  cr_assert_eq(rt_world_output_hash(w), h2);
  cr_assert_eq(a->out_hash, h1, "a's hash is a's bytes only");

  /* A short write: only what was accepted counts (16 - 10 = 6 bytes). The
   * tap still sees what was offered. */
  cr_assert_eq(rt_stream_write(a, "0123456789", 10), 6);
  uint64_t h3 = rt_hash_bytes("012345", 6, a->id);
  cr_assert_eq(a->out_hash, rt_hash_step(h1, h3));
  cr_assert_eq(rt_world_output_hash(w), rt_hash_step(h2, h3));
  cr_assert_eq(p.write_len, 10);
  cr_assert_eq(p.write_rc, 6);

  /* A full buffer accepts nothing and changes nothing. */
  uint64_t before = rt_world_output_hash(w);
  cr_assert_eq(rt_stream_write(a, "x", 1), 0);
  cr_assert_eq(rt_world_output_hash(w), before);
  cr_assert_eq(a->out_hash, rt_hash_step(h1, h3));
  cr_assert_eq(p.writes, 4);
  cr_assert_eq(p.write_rc, 0);

  /* Untapped again: the hashes stay where they are. */
  rt_world_set_tap(w, NULL, NULL);
  cr_assert_eq(rt_stream_write(b, "more", 4), 4);
  cr_assert_eq(rt_world_output_hash(w), before);
  cr_assert_eq(b->out_hash, rt_hash_step(0, hb));
  cr_assert_eq(p.writes, 4);

  rt_stream_close(a);
  rt_stream_close(b);
  sim_world_destroy(sw);
}

/* ---- A recording that fails is heard of at once -------------------------- */

typedef struct log_lines {
  uint32_t trouble; /* "record.trouble" warnings */
} log_lines_t;

static void count_trouble(void *ctx, const char *line, size_t len) {
  log_lines_t *l = ctx;
  (void)len;
  if (strstr(line, "level=warn event=record.trouble") != NULL)
    l->trouble++;
}

static void tick_nop(rt_actor_t *self, const rt_msg_t *msg) {
  (void)self;
  (void)msg;
}

static int open_full(void *ctx, const char *path, uint32_t seq) {
  (void)ctx;
  (void)path;
  (void)seq;
  int fd = open("/dev/full", O_WRONLY | O_CLOEXEC);
  return fd >= 0 ? fd : -errno;
}

/* A disk that is full from the start: the recorder says so in one warning
 * while the world runs (it used to be silent until the trace was closed),
 * and only once however long the run goes on. */
Test(sim_replay, a_failing_recording_is_warned_of_once_while_it_runs) {
  log_lines_t lines = {0};
  sim_config_t sc = {.seed = SEED,
                     .log_level = RT_LOG_WARN,
                     .log_write = count_trouble,
                     .log_ctx = &lines};
  sim_world_t *sw = sim_world_create(&sc);
  cr_assert_not_null(sw);
  rt_world_t *w = sim_world_rt(sw);
  char dir[TMP_PATH_MAX];
  tmp_path(dir, "full");
  net_record_config_t rc = {.dir = dir,
                            .config = "full disk",
                            .flags = NET_RECORD_F_SIM,
                            .open_file = open_full};
  char err[ERR_CAP] = "";
  net_record_t *rec = NULL;
  cr_assert_eq(net_record_start(w, &rc, &rec, err, sizeof(err)), RT_OK, "%s",
               err);
  /* An actor ticking every 5 ms makes passes, and so records and
   * hand-offs to the writer, well past the first failed write. */
  rt_actor_spec_t spec = {
      .name = "tick", .behaviour = tick_nop, .mailbox_cap = 4};
  rt_actor_id_t id;
  cr_assert_eq(rt_spawn(w, &spec, &id), RT_OK);
  uint64_t t;
  cr_assert_eq(rt_timer_start(w, id, 5 * RT_NS_PER_MS, 5 * RT_NS_PER_MS,
                              RT_TAG_USER, 0, &t),
               RT_OK);
  for (int i = 1; i <= 2000 && lines.trouble == 0; i++) {
    sim_world_run(sw, (rt_time_ns)i * NET_RECORD_FLUSH_NS, 0);
    struct timespec ts = {0, 200000}; /* the writer thread's turn */
    nanosleep(&ts, NULL);
  }
  cr_assert_eq(lines.trouble, 1, "no warning while the recording failed");
  sim_world_run(sw, 3000 * NET_RECORD_FLUSH_NS, 0);
  cr_assert_eq(lines.trouble, 1, "warned %u times", lines.trouble);
  net_record_stats_t st;
  cr_assert_neq(net_record_stop(rec, &st, err, sizeof(err)), RT_OK);
  sim_world_destroy(sw);
}
