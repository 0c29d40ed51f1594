/* fuzz_server.c: arbitrary bytes from one client against the whole server.
 *
 * One input is one scenario in a seeded simulated world holding the server
 * exactly as overcookied assembles it (tools/src/server.c: game, in-memory
 * Store, the browser files, HTTP and WebSocket). The first byte picks where
 * the bytes go, the second how they are cut into writes:
 *   0  raw HTTP: a fresh connection's whole byte stream;
 *   1  raw WebSocket: two players log in and one queues; a third connection
 *      upgrades with the first player's token (replacing its socket) and
 *      then sends the bytes as frames (unmasked, masked, broken, pipelined
 *      behind the upgrade: whatever they are);
 *   2  game messages: two players are in a running game; the bytes, cut at
 *      each '\n', are the first player's text frames (framed by the
 *      project's wslay client), while the other player clicks.
 * Then every connection ends and the world runs past the reconnect grace.
 * WebSockets quiet for half a millisecond are parked (net_ws_park), so
 * parking and waking meet every cut of the bytes.
 *
 * What must hold, whatever the bytes: no crash or sanitizer report (the
 * fuzzing build has ASan and UBSan); the runtime's and the game's
 * invariants (rt_world_check, game_check) after every millisecond; and at
 * the end no Room or Client left running. A broken rule aborts.
 *
 * Built two ways: with clang's -fsanitize=fuzzer by tools/fuzz server, and
 * as a plain program (with tests/fuzz/fuzz_main.c) that runs the files it
 * is given, which is how ctest replays the seed corpus (tests/fuzz/corpus)
 * on every build.
 */
#include "game_check.h"
#include "rt_stream.h"
#include "rt_world.h"
#include "server.h"
#include "sim_bot.h"
#include "sim_pipe.h"
#include "sim_world.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MS RT_NS_PER_MS
#define SEC RT_NS_PER_S
#define PORT 8080
#define SECRET "fuzz-secret-0123456789abcdef"
#define INPUT_MAX (64u * 1024) /* longer inputs are cut: time, not depth */
#define MESSAGES_MAX 256u
#define WRITE_STEPS_MAX 4096u /* milliseconds of writing, at most */
#define DRAIN_CHUNK 4096u

enum { MODE_HTTP = 0, MODE_WS, MODE_MESSAGES, MODE_COUNT_ };

typedef struct scenario {
  sim_world_t *sw;
  rt_world_t *w;
  server_t server;
  sim_bot_t *bots[2];
  rt_actor_id_t sink; /* owns the raw connection's client end */
  rt_stream_t *raw;
  char head[16]; /* the first bytes the raw connection received */
  size_t head_len;
} scenario_t;

static void fail(const scenario_t *s, const char *what, const char *why) {
  fprintf(stderr, "fuzz_server: %s at t=%.6f: %s\n", what,
          (double)rt_now(s->w) / SEC, why);
  abort();
}

/* Nothing to do: the harness reads the raw connection between runs. */
static void sink_behaviour(rt_actor_t *self, const rt_msg_t *msg) {
  (void)self;
  (void)msg;
}

static int listen_sim(void *ctx, rt_listener_t **out) {
  return sim_listen(ctx, PORT, 0, out);
}

static void check(scenario_t *s) {
  char why[256];
  if (rt_world_check(s->w, why, sizeof(why)) < 0)
    fail(s, "rt_world_check", why);
  if (game_check(s->server.game, why, sizeof(why)) < 0)
    fail(s, "game_check", why);
}

/* Read and drop what the server sent on the raw connection. */
static void drain(scenario_t *s) {
  uint8_t buf[DRAIN_CHUNK];
  while (s->raw != NULL) {
    int64_t n = rt_stream_read(s->raw, buf, sizeof(buf));
    if (n == 0)
      return;
    for (int64_t i = 0; i < n && s->head_len < sizeof(s->head) - 1; i++)
      s->head[s->head_len++] = (char)buf[i];
    if (n < 0) { /* the server closed or reset it */
      rt_stream_close(s->raw);
      s->raw = NULL;
    }
  }
}

/* Run to `until` `step` at a time, checking after each; stops early once
 * the world is idle (nothing ready, no timer: nothing more can happen, and
 * the clock stays where it is). */
static void run_steps(scenario_t *s, rt_time_ns until, rt_time_ns step) {
  while (rt_now(s->w) < until) {
    rt_time_ns next = rt_now(s->w) + step;
    sim_run_result_t r = sim_world_run(s->sw, next < until ? next : until, 0);
    drain(s);
    check(s);
    if (r == SIM_RUN_IDLE)
      return;
  }
}

/* While bytes go in: a check every millisecond. */
static void run_to(scenario_t *s, rt_time_ns until) { run_steps(s, until, MS); }

/* Setting up and winding down: coarser, so fuzzing spends its time on the
 * inputs. */
#define COARSE (20 * MS)

static void start(scenario_t *s) {
  sim_config_t sc = {.seed = 1, .log_level = RT_LOG_OFF};
  s->sw = sim_world_create(&sc);
  if (s->sw == NULL)
    abort();
  s->w = sim_world_rt(s->sw);
  server_options_t o;
  char name[] = "fuzz-server";
  char *argv[] = {name, NULL};
  if (server_options_parse(1, argv, 1, &o) < 0)
    abort();
  o.static_dir = OC_SOURCE_DIR "/game/web";
  o.log_level = RT_LOG_OFF;
  o.game.countdown = 200 * MS;
  o.game.game_seconds = 2;
  o.game.golden_min_s = 1;
  o.game.golden_max_s = 1;
  o.game.reconnect_grace = 1 * SEC;
  /* A park is tried between any two writes (one a millisecond), so frames
   * cut anywhere meet a context freed and made again (net_ws_park). */
  o.ws_park_after = MS / 2;
  char err[256];
  game_store_config_t store = {.path = ":memory:"};
  if (server_start(s->w, &o, SECRET, &store, listen_sim, s->sw, &s->server, err,
                   sizeof(err)) < 0)
    fail(s, "server_start", err);
  rt_actor_spec_t spec = {.name = "fuzz.sink",
                          .behaviour = sink_behaviour,
                          .mailbox_cap = 16,
                          .overflow = RT_OVERFLOW_REJECT};
  if (rt_spawn(s->w, &spec, &s->sink) < 0)
    abort();
}

static sim_bot_t *player(scenario_t *s, const char *name) {
  sim_bot_config_t cfg = {.name = name};
  sim_bot_t *bot = NULL;
  if (sim_bot_spawn(s->sw, PORT, &cfg, &bot) < 0)
    abort();
  return bot;
}

/* Two players logged in with their WebSockets open; the second queues,
 * and with `both` the first too, so that they play. */
static void players(scenario_t *s, bool both) {
  s->bots[0] = player(s, "ada");
  s->bots[1] = player(s, "bob");
  run_steps(s, rt_now(s->w) + 60 * MS, COARSE);
  for (int i = 0; i < 2; i++)
    if (sim_bot_state(s->bots[i]) != SIM_BOT_OPEN)
      fail(s, "setup", "a player could not log in and connect");
  sim_bot_join(s->bots[1]);
  if (both)
    sim_bot_join(s->bots[0]);
  run_steps(s, rt_now(s->w) + 300 * MS, COARSE); /* past the countdown */
  for (int i = 0; i < 2; i++)
    if (both && sim_bot_count(s->bots[i], SIM_BOT_GAME_START) != 1)
      fail(s, "setup", "the two players did not start a game");
}

/* The bytes as one connection's writes, `cut` bytes at a time, one write
 * a millisecond; what a short write left over goes first next time. */
static void write_raw(scenario_t *s, const uint8_t *data, size_t len,
                      size_t cut) {
  size_t off = 0;
  for (uint32_t step = 0; off < len && step < WRITE_STEPS_MAX; step++) {
    if (s->raw == NULL)
      return; /* the server hung up */
    size_t n = len - off < cut ? len - off : cut;
    int64_t w = rt_stream_write(s->raw, data + off, n);
    if (w < 0)
      return;
    off += (size_t)w;
    run_to(s, rt_now(s->w) + MS);
  }
}

static void connect_raw(scenario_t *s) {
  if (sim_connect(s->sw, PORT, s->sink, NULL, NULL, &s->raw) < 0)
    fail(s, "setup", "sim_connect refused");
}

static void scenario_ws(scenario_t *s, const uint8_t *data, size_t len,
                        size_t cut) {
  players(s, false);
  connect_raw(s);
  char req[4096];
  int n = snprintf(req, sizeof(req),
                   "GET /ws?token=%s HTTP/1.1\r\nHost: sim:%d\r\n"
                   "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                   "Sec-WebSocket-Version: 13\r\n\r\n",
                   sim_bot_token(s->bots[0]), PORT);
  if (n < 0 || (size_t)n >= sizeof(req))
    abort();
  /* The frames may follow the request in the same write (cut > n). */
  uint8_t *all = malloc((size_t)n + len);
  if (all == NULL)
    abort();
  memcpy(all, req, (size_t)n);
  if (len > 0)
    memcpy(all + n, data, len);
  write_raw(s, all, (size_t)n + len, cut);
  free(all);
  run_to(s, rt_now(s->w) + 10 * MS);
  /* The harness's own upgrade always succeeds, so the bytes did reach
   * the WebSocket, and the socket it replaced was closed with 4000. */
  if (strncmp(s->head, "HTTP/1.1 101 ", 13) != 0)
    fail(s, "setup", "the upgrade was not answered 101");
  if (sim_bot_close_code(s->bots[0]) != 4000)
    fail(s, "setup", "the replaced socket was not closed with 4000");
}

static void scenario_messages(scenario_t *s, const uint8_t *data, size_t len) {
  players(s, true);
  size_t at = 0;
  int64_t seq = 0;
  for (uint32_t i = 0; i < MESSAGES_MAX && at <= len; i++) {
    const uint8_t *nl = len > at ? memchr(data + at, '\n', len - at) : NULL;
    size_t end = nl != NULL ? (size_t)(nl - data) : len;
    size_t n = end - at;
    if (n > SIM_BOT_TEXT_MAX)
      n = SIM_BOT_TEXT_MAX;
    sim_bot_send(s->bots[0], (const char *)data + at, n);
    if (i % 4 == 0)
      sim_bot_click(s->bots[1], ++seq);
    run_to(s, rt_now(s->w) + MS);
    at = end + 1;
  }
}

static void finish(scenario_t *s) {
  if (s->raw != NULL) {
    rt_stream_close(s->raw);
    s->raw = NULL;
  }
  /* Let a game started above run out, then everyone leaves. */
  run_steps(s, rt_now(s->w) + 3 * SEC, COARSE);
  for (int i = 0; i < 2; i++)
    if (s->bots[i] != NULL)
      sim_bot_disconnect(s->bots[i], SIM_BOT_CLOSE_STREAM);
  run_steps(s, rt_now(s->w) + 3 * SEC, COARSE); /* past the grace */
  uint32_t rooms = 0, clients = 0;
  game_live_counts(s->server.game, &rooms, &clients);
  if (rooms != 0 || clients != 0) {
    char why[96];
    snprintf(why, sizeof(why), "%u rooms and %u clients still running", rooms,
             clients);
    fail(s, "liveness", why);
  }
  sim_world_destroy(s->sw);
  server_free(&s->server);
  for (int i = 0; i < 2; i++)
    if (s->bots[i] != NULL)
      sim_bot_destroy(s->bots[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2)
    return 0;
  int mode = data[0] % MODE_COUNT_;
  size_t cut = 1 + (size_t)data[1] * 8; /* 1 .. 2041 bytes a write */
  data += 2;
  size -= 2;
  if (size > INPUT_MAX)
    size = INPUT_MAX;
  scenario_t s = {0};
  start(&s);
  switch (mode) {
  case MODE_HTTP:
    connect_raw(&s);
    write_raw(&s, data, size, cut);
    break;
  case MODE_WS: scenario_ws(&s, data, size, cut); break;
  default: scenario_messages(&s, data, size); break;
  }
  finish(&s);
  return 0;
}
