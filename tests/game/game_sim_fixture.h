/* game_sim_fixture.h: the fixture the game_sim tests share.
 *
 * The tests of one binary, test_game_sim, are in three files by theme:
 * test_game_sim.c (matches: scoring, endings, reconnects, golden cookies),
 * test_game_sim_wire.c (what the server refuses or answers at its edges:
 * bad messages, tokens, login bodies, the flood guard, the frontend's
 * HTTP) and test_game_sim_load.c (a swarm, slow and stalled readers,
 * Store faults, the same seed replaying). What they all use is here and
 * in game_sim_fixture.c: the seeded simulated world holding the server,
 * bots driven in it, matches and the scoring model. test_game_sim.c
 * tells the whole story (timings, links, replaying a failure).
 */
#ifndef GAME_SIM_FIXTURE_H
#define GAME_SIM_FIXTURE_H

#include "game.h"
#include "game_config.h"
#include "game_store.h"
#include "net_server.h"
#include "rt_world.h"
#include "server.h"
#include "sim_bot.h"
#include "sim_world.h"

#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdint.h>

#define MS RT_NS_PER_MS
#define SEC RT_NS_PER_S
#define PORT 8080
#define LATENCY (5 * MS)
#define STEP (1 * MS)
#define BOTS_MAX 64u
#define CLICKS_LOG_MAX 2048u

/* A link as the tests' bots have them: LATENCY each way, no jitter. */
extern const sim_link_config_t LINK;

/* ---- The fixture --------------------------------------------------------- */

/* Store faults: RECORD fails while from <= now < until, cycling through
 * BUSY, FULL and IOERR. */
typedef struct fault_plan {
  rt_world_t *w;
  rt_time_ns from, until;
  uint32_t record_calls;
  uint32_t failed;
} fault_plan_t;

typedef struct fx {
  const char *name;
  uint64_t seed;
  sim_world_t *sw;
  rt_world_t *w;
  game_config_t game_cfg;
  game_store_config_t store_cfg;
  fault_plan_t fault;
  game_t *game;
  net_server_t *srv;
  server_t server; /* game and srv are its */
  sim_bot_t *bots[BOTS_MAX];
  uint32_t bots_len;
  const char *cors_origin; /* --cors-origin, or NULL */
} fx_t;

/* Prints the seed, the command that replays the test, and the tail of the
 * bots' records (every record with OC_DUMP_ALL): CHECK's failure report. */
void fx_report(const fx_t *fx, const char *what, const char *file, int line);

/* A check that, when it fails, prints the seed, the replay command and
 * what the bots saw, then fails the test with the message. */
#define CHECK(fx, cond, ...)                                                   \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fx_report((fx), #cond, __FILE__, __LINE__);                              \
      cr_assert_fail(__VA_ARGS__);                                             \
    }                                                                          \
  } while (0)

/* A fixture for test `name` with the tests' game timings and an in-memory
 * Store; OC_SEED replaces `seed`. Change its configs, then fx_start. */
fx_t *fx_create(const char *name, uint64_t seed);

/* The server as every program builds it (server_start), with no static
 * files. */
void fx_start(fx_t *fx);

/* Destroys the world, the server and the bots, and frees fx. */
void fx_free(fx_t *fx);

/* ---- Driving the world --------------------------------------------------- */

/* The world's virtual time. */
rt_time_ns now_of(const fx_t *fx);

/* Run every event up to and including time t. */
void run_to(fx_t *fx, rt_time_ns t);

/* Run every event for d from now. */
void run_for(fx_t *fx, rt_time_ns d);

/* A new bot that logs in as `name`; NULL links: the bot's defaults. */
sim_bot_t *bot_add(fx_t *fx, const char *name, const sim_link_config_t *up,
                   const sim_link_config_t *down);

/* A second connection for a known player, or a bad token. */
sim_bot_t *bot_with_token(fx_t *fx, const char *name, const char *token,
                          const char *user_id);

/* The i-th (0-based) record of `kind`, copied, or false. */
bool nth(const sim_bot_t *b, sim_bot_kind_t kind, uint32_t i,
         sim_bot_record_t *out);

/* How many records of `kind` the bot has. */
uint32_t count_of(const sim_bot_t *b, sim_bot_kind_t kind);

/* Run in small steps until `b` has n records of `kind`; fail at deadline. */
sim_bot_record_t wait_kind(fx_t *fx, sim_bot_t *b, sim_bot_kind_t kind,
                           uint32_t n, rt_time_ns deadline);

/* Run in small steps until `b` is in `state`; fail at deadline. */
void wait_state(fx_t *fx, sim_bot_t *b, sim_bot_state_t state,
                rt_time_ns deadline);

/* GET on a bot's HTTP connection; returns the parsed JSON body (owned). */
cJSON *http_get_json(fx_t *fx, sim_bot_t *b, const char *path, bool bearer,
                     int *status);

/* A JSON object's string member, or "(missing)". */
const char *json_str(const cJSON *o, const char *name);

/* A JSON object's number member, or -1e9. */
double json_num(const cJSON *o, const char *name);

/* ---- Matches ------------------------------------------------------------- */

typedef struct match {
  sim_bot_t *by_role[2]; /* [0]: p1, [1]: p2 */
  sim_bot_record_t start[2];
  rt_time_ns t0;    /* the Room sent GAME_START */
  rt_time_ns t_run; /* the countdown ended: clicks count from here */
  rt_time_ns t_end; /* the last tick: the game is over */
} match_t;

/* 0 if b plays p1 in m, else 1. */
int role_of(const match_t *m, const sim_bot_t *b);

/* The score of `role` (0: p1, 1: p2) in a record. */
int32_t score_of(const sim_bot_record_t *r, int role);

/* Both bots join now (a first); returns when both saw GAME_START. */
void match_start(fx_t *fx, sim_bot_t *a, sim_bot_t *b, match_t *m);

/* Clicks a test sent, for the scoring model. */
typedef struct click_log {
  rt_time_ns sent[CLICKS_LOG_MAX];
  int64_t seq[CLICKS_LOG_MAX];
  uint32_t n;
  int64_t next_seq;
} click_log_t;

/* b clicks now with the log's next seq; the click is logged. */
void click(fx_t *fx, sim_bot_t *b, click_log_t *log);

/* The click UPDATE that answered `seq`, copied. */
bool ack_of(const sim_bot_t *b, int64_t seq, sim_bot_record_t *out);

/* Every logged click was answered, and each answer's score moved by what
 * the model says; returns the model's total. */
int32_t check_clicks(fx_t *fx, const match_t *m, sim_bot_t *b,
                     const click_log_t *log);

/* Both players saw one GAME_OVER, the same, naming their room; copied to
 * out. */
void check_same_game_over(fx_t *fx, const match_t *m, sim_bot_record_t *out);

/* Both players click at the same instants every `period` from `from` until
 * `until` (send times); nobody touches a golden cookie. */
void click_together(fx_t *fx, match_t *m, click_log_t logs[2], rt_time_ns from,
                    rt_time_ns until, rt_time_ns period);

#endif
