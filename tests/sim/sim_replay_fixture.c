/* sim_replay_fixture.c: the fixture the sim_replay tests share
 * (sim_replay_fixture.h): a temporary directory per test, echo servers of
 * the tests' own, recording a live session, replaying it, and editing a
 * trace's records in place. */
#include "sim_replay_fixture.h"

#include "net_echo.h"
#include "net_live.h"
#include "net_record.h"
#include "net_trace_reader.h"
#include "rt_stream.h"
#include "rt_tap.h"
#include "rt_world.h"
#include "sim_replay.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#define SLICE (5 * RT_NS_PER_MS) /* one net_live_run_for */
#define SLICES_MAX 400u          /* 2 s of slices: no wait gets near it */
#define POLL_MS 2                /* the client's wait per slice */
#define SEND_TIMEOUT_S 2         /* a blocking send never waits longer */
#define TMP_DIR_MAX 64u          /* "/tmp/oc-replay-XXXXXX" */

/* ---- A temporary directory per test -------------------------------------- */

/* Criterion's init and fini take no argument, so the test's directory lives
 * here. Each test runs in its own worker process: one directory per test. */
static char tmp_dir[TMP_DIR_MAX];

void tmp_path(char *out, const char *name) {
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

void tmp_init(void) {
  snprintf(tmp_dir, sizeof(tmp_dir), "/tmp/oc-replay-XXXXXX");
  cr_assert_not_null(mkdtemp(tmp_dir), "mkdtemp: %s", strerror(errno));
}

void tmp_fini(void) {
  if (tmp_dir[0] != '\0')
    remove_tree(tmp_dir, 3);
}

/* ---- The client's bytes -------------------------------------------------- */

/* Byte i of what the client sends: lower-case letters (so that upper-casing
 * changes every byte), not periodic in a chunk size. */
uint8_t pattern(uint64_t i) {
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
int mirror_spawn(rt_world_t *w, rt_listener_t *l, void *ctx) {
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

int echo_spawn(rt_world_t *w, rt_listener_t *l, void *ctx) {
  (void)ctx;
  rt_actor_id_t id;
  return net_echo_spawn_acceptor(w, l, &id);
}

/* ---- Recording a live session -------------------------------------------- */

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
void record_session(const char *dir, const plan_t *plan, session_t *out) {
  memset(out, 0, sizeof(*out));
  net_live_config_t lc = {.seed = SEED, .log_level = RT_LOG_OFF};
  net_live_t *live = net_live_create(&lc);
  cr_assert_not_null(live);
  rt_world_t *w = net_live_world(live);
  net_record_config_t rc = {.dir = dir,
                            .buffer_bytes = plan->buffer_bytes,
                            .max_bytes_per_file = plan->file_bytes,
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

/* ---- Replaying ----------------------------------------------------------- */

sim_replay_status_t replay(const char *path, const setup_t *setup,
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

sim_replay_status_t replay_echo(const char *path, sim_replay_report_t *rep) {
  setup_t setup = {.extra = EXTRA_NONE};
  return replay(path, &setup, RT_TIME_NEVER, rep);
}

/* ---- Edited traces ------------------------------------------------------- */

found_t find_record(const char *dir, uint8_t type, uint32_t nth) {
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

void xor_record(const char *dir, const found_t *f, uint32_t at, uint8_t mask) {
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

void edit_record(const char *dir, const found_t *f, int32_t at) {
  uint32_t pos = at >= 0 ? (uint32_t)at : f->len - (uint32_t)(-at);
  xor_record(dir, f, pos, 1u);
}
