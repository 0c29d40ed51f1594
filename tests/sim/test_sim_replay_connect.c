/* test_sim_replay_connect.c: an actor's outbound connect (rt_stream_connect)
 * recorded live and replayed with no peer at all (net/net_record.h's
 * CONNECT record, sim/sim_replay.h).
 *
 * A dialer (tests/lib/dialer.h) connects in its first turn, as the Cluster
 * actor will reach Redis, sends bytes and checks their echo. Live, the
 * peer is a plain socket of this test's (served between slices of the
 * loop), net_echo on a listener in the same world, or nobody (a closed
 * port, a bad address). The replay runs the same dialer in a replay world
 * with none of them: its connect, the signals and every byte come from
 * the trace, and the hashes must match the live run's. Then the replay's
 * program connects elsewhere, or the trace is edited, and the report must
 * say where. One binary, test_sim_replay; its suite (the test's temporary
 * directory) is in test_sim_replay.c.
 */
#include "sim_replay_fixture.h"

#include "dialer.h"
#include "net_live.h"
#include "net_record.h"
#include "net_trace_reader.h"
#include "rt_stream.h"
#include "rt_world.h"
#include "sim_replay.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define SLICE (5 * RT_NS_PER_MS) /* one net_live_run_for */
#define SLICES_MAX 400u          /* 2 s of slices: no wait gets near it */
#define DIAL_LEN 3000u           /* the dialer's bytes: several chunks */
#define PEER_CHUNK 4096u
#define SEND_TIMEOUT_S 2 /* the socket peer's blocking send */
#define HOST "127.0.0.1"
#define BAD_HOST "redis.internal" /* a name: no world looks it up */

/* ---- The live side ---------------------------------------------------------
 */

typedef enum peer_kind {
  PEER_SOCKET, /* a plain socket of the test's, outside the world */
  PEER_ACTOR,  /* net_echo on a listener in the same world */
  PEER_NONE,   /* nobody listens on the port */
} peer_kind_t;

/* The socket peer: accepts one connection and echoes what it reads. */
typedef struct socket_peer {
  int listen_fd;
  int fd; /* -1 until accepted */
  uint16_t port;
} socket_peer_t;

static void socket_peer_open(socket_peer_t *p) {
  struct sockaddr_in sa = {.sin_family = AF_INET};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(sa);
  p->fd = -1;
  p->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  cr_assert_geq(p->listen_fd, 0, "socket: %s", strerror(errno));
  cr_assert_eq(bind(p->listen_fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
  cr_assert_eq(listen(p->listen_fd, 4), 0);
  cr_assert_eq(getsockname(p->listen_fd, (struct sockaddr *)&sa, &len), 0);
  p->port = ntohs(sa.sin_port);
}

/* Accept the dialer if it is there, then echo whatever arrived. */
static void socket_peer_serve(socket_peer_t *p) {
  if (p->fd < 0) {
    struct pollfd pl = {.fd = p->listen_fd, .events = POLLIN};
    if (poll(&pl, 1, 0) <= 0)
      return;
    p->fd = accept(p->listen_fd, NULL, NULL);
    cr_assert_geq(p->fd, 0, "accept: %s", strerror(errno));
    struct timeval tv = {.tv_sec = SEND_TIMEOUT_S};
    cr_assert_eq(setsockopt(p->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)),
                 0);
  }
  uint8_t buf[PEER_CHUNK];
  for (int i = 0; i < 64; i++) {
    ssize_t n = recv(p->fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n <= 0)
      return;
    cr_assert_eq(send(p->fd, buf, (size_t)n, MSG_NOSIGNAL), n, "send: %s",
                 strerror(errno));
  }
}

static void socket_peer_close(socket_peer_t *p) {
  if (p->fd >= 0)
    close(p->fd);
  close(p->listen_fd);
}

typedef struct dial_run {
  peer_kind_t peer;
  const char *host; /* NULL: HOST */
  uint32_t send_len;
  /* What happened live. */
  uint16_t port;
  dialer_t dialer;
  uint64_t output_hash, run_hash;
  net_record_stats_t stats;
} dial_run_t;

static void stop_live(void *ctx) { net_live_stop(ctx); }

/* A port nobody listens on: bind one, note it, close it. A plain socket,
 * not a live listener, which would take a stream id the replay lacks. */
static uint16_t closed_port(void) {
  socket_peer_t p;
  socket_peer_open(&p);
  socket_peer_close(&p);
  return p.port;
}

/* Until the dialer stopped and only `actors` are left, serving the socket
 * peer between slices. */
static void run_live(net_live_t *live, dial_run_t *run, socket_peer_t *peer,
                     uint32_t actors) {
  rt_world_stats_t st;
  rt_world_stats(net_live_world(live), &st);
  for (uint32_t i = 0;
       i < SLICES_MAX && (!run->dialer.stopped || st.actors_live > actors);
       i++) {
    cr_assert_eq(net_live_run_for(live, SLICE), RT_OK);
    if (peer != NULL)
      socket_peer_serve(peer);
    rt_world_stats(net_live_world(live), &st);
  }
  cr_assert(run->dialer.stopped, "the dialer never finished: events %#x",
            run->dialer.events);
  cr_assert_eq(st.actors_live, actors);
}

/* Set up the peer (in the world: a listener, first), then the dialer. */
static void setup_live(net_live_t *live, dial_run_t *run, socket_peer_t *peer) {
  rt_world_t *w = net_live_world(live);
  if (run->peer == PEER_SOCKET) {
    socket_peer_open(peer);
    run->port = peer->port;
  } else if (run->peer == PEER_ACTOR) {
    rt_listener_t *l = NULL;
    cr_assert_eq(net_live_listen(live, HOST, 0, 0, &l), RT_OK);
    run->port = net_live_listener_port(l);
    cr_assert_eq(echo_spawn(w, l, NULL), RT_OK);
  } else {
    run->port = closed_port();
  }
  run->dialer = (dialer_t){.host = run->host != NULL ? run->host : HOST,
                           .port = run->port,
                           .send_len = run->send_len,
                           .done = stop_live,
                           .done_ctx = live};
  rt_actor_id_t id;
  dialer_spawn(w, &run->dialer, &id);
}

/* Record the dialer's run into dir. */
static void record_dial(const char *dir, dial_run_t *run) {
  net_live_config_t lc = {.seed = SEED, .log_level = RT_LOG_OFF};
  net_live_t *live = net_live_create(&lc);
  cr_assert_not_null(live);
  rt_world_t *w = net_live_world(live);
  net_record_config_t rc = {.dir = dir,
                            .config = "test_sim_replay dial",
                            .flags = NET_RECORD_F_LIVE | NET_RECORD_F_RUN_HASH};
  char err[ERR_CAP] = "";
  net_record_t *rec = NULL;
  cr_assert_eq(net_record_start(w, &rc, &rec, err, sizeof(err)), RT_OK, "%s",
               err);
  socket_peer_t peer;
  setup_live(live, run, &peer);
  /* net_echo's acceptor outlives its connection, which sees EOF. */
  run_live(live, run, run->peer == PEER_SOCKET ? &peer : NULL,
           run->peer == PEER_ACTOR ? 1 : 0);
  net_record_control(rec, NET_RECORD_CONTROL_TEARDOWN);
  rt_world_stop_all(w, RT_REASON_SHUTDOWN);
  run->output_hash = rt_world_output_hash(w);
  run->run_hash = rt_world_hash(w);
  cr_assert_eq(net_record_stop(rec, &run->stats, err, sizeof(err)), RT_OK, "%s",
               err);
  cr_assert_eq(run->stats.records_lost, 0);
  net_live_destroy(live);
  if (run->peer == PEER_SOCKET)
    socket_peer_close(&peer);
  run->dialer.done = NULL; /* the live world is gone */
}

/* ---- The replay side -------------------------------------------------------
 */

typedef struct dial_replay {
  peer_kind_t peer; /* PEER_ACTOR: net_echo set up as it was live */
  const char *host; /* where the replay's dialer connects */
  uint16_t port;
  dialer_t dialer; /* the replay's, afterwards */
} dial_replay_t;

static sim_replay_status_t replay_dial(const char *dir, dial_replay_t *dr,
                                       uint32_t send_len,
                                       sim_replay_report_t *rep) {
  sim_replay_config_t cfg = {.log_level = RT_LOG_OFF};
  sim_replay_t *r = NULL;
  char err[ERR_CAP] = "";
  cr_assert_eq(sim_replay_open(dir, &cfg, &r, err, sizeof(err)), RT_OK, "%s",
               err);
  rt_world_t *w = sim_replay_world(r);
  if (dr->peer == PEER_ACTOR) {
    rt_listener_t *l = NULL;
    cr_assert_eq(sim_replay_listen(r, 0, &l), RT_OK);
    cr_assert_eq(echo_spawn(w, l, NULL), RT_OK);
  }
  dr->dialer =
      (dialer_t){.host = dr->host, .port = dr->port, .send_len = send_len};
  rt_actor_id_t id;
  dialer_spawn(w, &dr->dialer, &id);
  sim_replay_status_t st = sim_replay_run(r, RT_TIME_NEVER, rep);
  cr_assert_eq(rep->status, st);
  sim_replay_close(r);
  return st;
}

/* Replay as recorded: the same peer setup, the same host and port. */
static sim_replay_status_t replay_as_recorded(const char *dir,
                                              const dial_run_t *run,
                                              dial_replay_t *dr,
                                              sim_replay_report_t *rep) {
  *dr = (dial_replay_t){
      .peer = run->peer, .host = run->dialer.host, .port = run->port};
  return replay_dial(dir, dr, run->send_len, rep);
}

/* The replay's dialer saw what the live one saw. */
static void assert_same_dialer(const dialer_t *replayed, const dialer_t *live) {
  cr_assert_eq(replayed->connect_rc, live->connect_rc, "connect gave %s",
               rt_err_name(replayed->connect_rc));
  cr_assert_eq(replayed->stream_id, live->stream_id);
  cr_assert_eq(replayed->signals, live->signals);
  cr_assert_eq(replayed->events, live->events, "events %#x, live %#x",
               replayed->events, live->events);
  cr_assert_eq(replayed->end, live->end, "the stream ended with %s",
               rt_err_name((int)replayed->end));
  cr_assert_eq(replayed->end_write, live->end_write);
  cr_assert_eq(replayed->sent, live->sent);
  cr_assert_eq(replayed->received, live->received);
  cr_assert(replayed->stopped);
}

static void assert_same_run(const sim_replay_report_t *rep,
                            const dial_run_t *run) {
  cr_assert_eq(rep->output_hash, run->output_hash,
               "output hash %016" PRIx64 ", live %016" PRIx64, rep->output_hash,
               run->output_hash);
  cr_assert_eq(rep->run_hash, run->run_hash,
               "run hash %016" PRIx64 ", live %016" PRIx64, rep->run_hash,
               run->run_hash);
  cr_assert_gt(rep->checkpoints, 0);
  cr_assert_eq(rep->what[0], '\0', "%s", rep->what);
}

/* ---- Connects replayed -----------------------------------------------------
 */

Test(sim_replay, a_connect_to_a_socket_peer_replays_with_no_peer_at_all) {
  char dir[TMP_PATH_MAX];
  tmp_path(dir, "rec");
  dial_run_t run = {.peer = PEER_SOCKET, .send_len = DIAL_LEN};
  record_dial(dir, &run);
  cr_assert_eq(run.dialer.connect_rc, RT_OK);
  cr_assert(run.dialer.events & RT_STREAM_CONNECTED);
  cr_assert_eq(run.dialer.received, DIAL_LEN);

  dial_replay_t dr;
  sim_replay_report_t rep;
  cr_assert_eq(replay_as_recorded(dir, &run, &dr, &rep), SIM_REPLAY_DONE,
               "%s: %s", SAID(rep));
  assert_same_dialer(&dr.dialer, &run.dialer);
  assert_same_run(&rep, &run);
  cr_assert_eq(rep.connects, 1);
  cr_assert_eq(rep.accepts, 0);
  cr_assert_eq(rep.bytes_in, DIAL_LEN);
  cr_assert_eq(rep.bytes_out, DIAL_LEN);
}

Test(sim_replay, a_connect_to_an_echo_actor_of_the_same_world_replays) {
  /* Both ends in one trace: the connect makes stream 2, the accept 3. */
  char dir[TMP_PATH_MAX];
  tmp_path(dir, "rec");
  dial_run_t run = {.peer = PEER_ACTOR, .send_len = DIAL_LEN};
  record_dial(dir, &run);
  cr_assert_eq(run.dialer.received, DIAL_LEN);
  cr_assert_eq(run.dialer.stream_id, 2);

  dial_replay_t dr;
  sim_replay_report_t rep;
  cr_assert_eq(replay_as_recorded(dir, &run, &dr, &rep), SIM_REPLAY_DONE,
               "%s: %s", SAID(rep));
  assert_same_dialer(&dr.dialer, &run.dialer);
  assert_same_run(&rep, &run);
  cr_assert_eq(rep.connects, 1);
  cr_assert_eq(rep.accepts, 1);
  cr_assert_eq(rep.bytes_in, 2 * DIAL_LEN, "the echo read it, the dialer too");
}

Test(sim_replay, a_refused_connect_replays_as_closed_then_econnrefused) {
  char dir[TMP_PATH_MAX];
  tmp_path(dir, "rec");
  dial_run_t run = {.peer = PEER_NONE, .send_len = DIAL_LEN};
  record_dial(dir, &run);
  cr_assert_eq(run.dialer.connect_rc, RT_OK);
  cr_assert_eq(run.dialer.end, RT_ECONNREFUSED);

  dial_replay_t dr;
  sim_replay_report_t rep;
  cr_assert_eq(replay_as_recorded(dir, &run, &dr, &rep), SIM_REPLAY_DONE,
               "%s: %s", SAID(rep));
  assert_same_dialer(&dr.dialer, &run.dialer);
  assert_same_run(&rep, &run);
  cr_assert(dr.dialer.events & RT_STREAM_CLOSED);
  cr_assert_eq(dr.dialer.events & RT_STREAM_CONNECTED, 0);
  cr_assert_eq(dr.dialer.end, RT_ECONNREFUSED);
  cr_assert_eq(rep.connects, 1);
}

Test(sim_replay, a_connect_that_failed_replays_as_the_same_error) {
  char dir[TMP_PATH_MAX];
  tmp_path(dir, "rec");
  dial_run_t run = {.peer = PEER_NONE, .host = BAD_HOST};
  record_dial(dir, &run);
  cr_assert_eq(run.dialer.connect_rc, RT_EINVAL);

  dial_replay_t dr;
  sim_replay_report_t rep;
  cr_assert_eq(replay_as_recorded(dir, &run, &dr, &rep), SIM_REPLAY_DONE,
               "%s: %s", SAID(rep));
  assert_same_dialer(&dr.dialer, &run.dialer);
  assert_same_run(&rep, &run);
  cr_assert_eq(rep.connects, 0, "no stream was made");
}

/* ---- What the recording holds ----------------------------------------------
 */

/* The payload of the nth CONNECT record, decoded. */
static void read_connect(const char *dir, uint32_t nth, uint64_t *id,
                         int64_t *rc, char *endpoint, size_t cap) {
  found_t f = find_record(dir, NET_TRACE_T_CONNECT, nth);
  net_trace_reader_t *rd = NULL;
  char err[ERR_CAP] = "";
  cr_assert_eq(net_trace_reader_open(dir, &rd, err, sizeof(err)), RT_OK, "%s",
               err);
  net_trace_record_t rec;
  do
    cr_assert_eq(net_trace_next(rd, &rec), 1);
  while (rec.index != f.index);
  net_trace_dec_t d;
  net_trace_dec_init(&d, rec.payload, rec.len);
  *id = net_trace_get_u64(&d);
  *rc = net_trace_get_i64(&d);
  size_t n = 0;
  const uint8_t *bytes = net_trace_get_bytes(&d, &n);
  cr_assert_eq(net_trace_dec_finish(&d), 0);
  cr_assert_lt(n, cap);
  memcpy(endpoint, bytes, n);
  endpoint[n] = '\0';
  net_trace_reader_close(rd);
}

Test(sim_replay, a_connect_is_recorded_with_its_stream_result_and_endpoint) {
  char dir[TMP_PATH_MAX], want[64], endpoint[NET_RECORD_ENDPOINT_MAX];
  uint64_t id = 0;
  int64_t rc = 0;
  tmp_path(dir, "ok");
  dial_run_t run = {.peer = PEER_SOCKET, .send_len = 1};
  record_dial(dir, &run);
  read_connect(dir, 0, &id, &rc, endpoint, sizeof(endpoint));
  cr_assert_eq(id, run.dialer.stream_id);
  cr_assert_eq(rc, RT_OK);
  snprintf(want, sizeof(want), "%s:%u", HOST, (unsigned)run.port);
  cr_assert_str_eq(endpoint, want);

  tmp_path(dir, "bad");
  dial_run_t bad = {.peer = PEER_NONE, .host = BAD_HOST};
  record_dial(dir, &bad);
  read_connect(dir, 0, &id, &rc, endpoint, sizeof(endpoint));
  cr_assert_eq(id, 0);
  cr_assert_eq(rc, RT_EINVAL);
  snprintf(want, sizeof(want), "%s:%u", BAD_HOST, (unsigned)bad.port);
  cr_assert_str_eq(endpoint, want);
}

Test(sim_replay, a_host_too_long_for_any_address_is_recorded_cut) {
  char host[NET_RECORD_HOST_MAX + 100], out[NET_RECORD_ENDPOINT_MAX];
  memset(host, 'h', sizeof(host) - 1);
  host[sizeof(host) - 1] = '\0';
  size_t n = net_record_endpoint(out, sizeof(out), host, 65535);
  cr_assert_eq(n, NET_RECORD_HOST_MAX + strlen(":65535"));
  cr_assert_eq(strlen(out), n);
  cr_assert_str_eq(out + NET_RECORD_HOST_MAX, ":65535");
  cr_assert_eq(net_record_endpoint(out, sizeof(out), "::1", 0), 5);
  cr_assert_str_eq(out, "::1:0");
}

/* ---- Connecting elsewhere diverges ------------------------------------------
 */

Test(sim_replay, a_connect_to_another_port_diverges_at_the_connect) {
  char dir[TMP_PATH_MAX], ours[64], theirs[64];
  tmp_path(dir, "rec");
  dial_run_t run = {.peer = PEER_SOCKET, .send_len = DIAL_LEN};
  record_dial(dir, &run);
  uint16_t other = (uint16_t)(run.port + 1);
  dial_replay_t dr = {.peer = PEER_SOCKET, .host = HOST, .port = other};
  sim_replay_report_t rep;
  cr_assert_eq(replay_dial(dir, &dr, DIAL_LEN, &rep), SIM_REPLAY_DIVERGED,
               "%s: %s", SAID(rep));
  snprintf(ours, sizeof(ours), "connected to %s:%u;", HOST, (unsigned)other);
  snprintf(theirs, sizeof(theirs), "recording connected to %s:%u here", HOST,
           (unsigned)run.port);
  cr_assert_not_null(strstr(rep.what, ours), "%s", rep.what);
  cr_assert_not_null(strstr(rep.what, theirs), "%s", rep.what);
  cr_assert_str_eq(rep.actor_name, "dialer", "in the dialer's turn");
  cr_assert_eq(rep.tag, DIALER_TAG_DIAL);
  cr_assert_eq(rep.stream, run.dialer.stream_id);
  cr_assert_eq(rep.record_index,
               find_record(dir, NET_TRACE_T_CONNECT, 0).index);
  cr_assert_not_null(strstr(rep.context, "CONNECT"), "%s", rep.context);
  cr_assert_eq(dr.dialer.connect_rc, RT_EIO, "the connect failed");
  cr_assert_eq(rep.connects, 0);
}

Test(sim_replay, a_connect_to_another_host_diverges_at_the_connect) {
  char dir[TMP_PATH_MAX];
  tmp_path(dir, "rec");
  dial_run_t run = {.peer = PEER_NONE, .host = BAD_HOST};
  record_dial(dir, &run);
  dial_replay_t dr = {.peer = PEER_NONE, .host = "127.0.0.2", .port = run.port};
  sim_replay_report_t rep;
  cr_assert_eq(replay_dial(dir, &dr, 0, &rep), SIM_REPLAY_DIVERGED, "%s: %s",
               SAID(rep));
  cr_assert_not_null(strstr(rep.what, "connected to 127.0.0.2:"), "%s",
                     rep.what);
  cr_assert_not_null(strstr(rep.what, "connected to " BAD_HOST ":"), "%s",
                     rep.what);
  cr_assert_eq(dr.dialer.connect_rc, RT_EIO);
}

Test(sim_replay, a_connect_where_the_recording_has_none_diverges_at_setup) {
  /* The echo session has no CONNECT: a program that connects while it is
   * set up, before the run, meets the recording's first record instead
   * (the listener's signal). The run reports that, not a clean replay. */
  char dir[TMP_PATH_MAX];
  tmp_path(dir, "rec");
  session_t s;
  record_session(
      dir, &(plan_t){.first_len = FIRST_LEN, .second_len = SECOND_LEN}, &s);
  sim_replay_config_t cfg = {.log_level = RT_LOG_OFF};
  sim_replay_t *r = NULL;
  char err[ERR_CAP] = "";
  cr_assert_eq(sim_replay_open(dir, &cfg, &r, err, sizeof(err)), RT_OK, "%s",
               err);
  rt_stream_t *stream = NULL;
  cr_assert_eq(rt_stream_connect(sim_replay_world(r), HOST, 6379, 0, &stream),
               RT_EIO);
  cr_assert_null(stream);
  rt_listener_t *l = NULL;
  cr_assert_eq(sim_replay_listen(r, 0, &l), RT_OK);
  cr_assert_eq(echo_spawn(sim_replay_world(r), l, NULL), RT_OK);
  sim_replay_report_t rep;
  cr_assert_eq(sim_replay_run(r, RT_TIME_NEVER, &rep), SIM_REPLAY_DIVERGED,
               "%s: %s", SAID(rep));
  cr_assert_not_null(strstr(rep.what, "connected to 127.0.0.1:6379;"), "%s",
                     rep.what);
  cr_assert_not_null(strstr(rep.what, "; the recording has "), "%s", rep.what);
  cr_assert_eq(rep.actor, 0, "outside any turn");
  cr_assert_eq(rep.record_index, 0);
  cr_assert_eq(rep.passes, 0);
  sim_replay_close(r);
}

/* ---- Edited CONNECT records -------------------------------------------------
 */

Test(sim_replay, a_connect_result_no_recorder_writes_is_a_trace_error) {
  /* CONNECT: u64 stream (1: one byte), i64 rc (0: zigzag byte 0x00),
   * bytes. rc 5 with a stream, and rc 0 with stream 0, are no live
   * connect's. */
  char dir[TMP_PATH_MAX];
  tmp_path(dir, "rec");
  dial_run_t run = {.peer = PEER_SOCKET, .send_len = DIAL_LEN};
  record_dial(dir, &run);
  found_t f = find_record(dir, NET_TRACE_T_CONNECT, 0);
  dial_replay_t dr;
  sim_replay_report_t rep;
  xor_record(dir, &f, 1, 0x0a); /* zigzag 0x00 -> 0x0a: rc 5 */
  cr_assert_eq(replay_as_recorded(dir, &run, &dr, &rep), SIM_REPLAY_TRACE_ERROR,
               "%s: %s", SAID(rep));
  cr_assert_not_null(strstr(rep.what, "a connect result of 5 with stream 1"),
                     "%s", rep.what);
  cr_assert_eq(dr.dialer.connect_rc, RT_EIO);
  xor_record(dir, &f, 1, 0x0a); /* restored */
  xor_record(dir, &f, 0, 0x01); /* stream 1 -> 0 */
  cr_assert_eq(replay_as_recorded(dir, &run, &dr, &rep), SIM_REPLAY_TRACE_ERROR,
               "%s: %s", SAID(rep));
  cr_assert_not_null(strstr(rep.what, "a connect result of 0 with stream 0"),
                     "%s", rep.what);
  xor_record(dir, &f, 0, 0x01); /* restored: the original replays again */
  cr_assert_eq(replay_as_recorded(dir, &run, &dr, &rep), SIM_REPLAY_DONE,
               "%s: %s", SAID(rep));
}

Test(sim_replay, a_connect_recorded_with_another_stream_id_diverges) {
  /* The recording's stream 3 where the replay's connect makes 1: the
   * program made other streams first, live. */
  char dir[TMP_PATH_MAX];
  tmp_path(dir, "rec");
  dial_run_t run = {.peer = PEER_SOCKET, .send_len = DIAL_LEN};
  record_dial(dir, &run);
  found_t f = find_record(dir, NET_TRACE_T_CONNECT, 0);
  xor_record(dir, &f, 0, 0x02); /* stream 1 -> 3 */
  dial_replay_t dr;
  sim_replay_report_t rep;
  cr_assert_eq(replay_as_recorded(dir, &run, &dr, &rep), SIM_REPLAY_DIVERGED,
               "%s: %s", SAID(rep));
  cr_assert_not_null(strstr(rep.what,
                            "an outbound connection got stream id 1; the "
                            "recording's was 3"),
                     "%s", rep.what);
  cr_assert_eq(rep.stream, 3);
  cr_assert_eq(dr.dialer.connect_rc, RT_EIO);
}
