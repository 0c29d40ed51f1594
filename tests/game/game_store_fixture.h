/* game_store_fixture.h: the fixture the game_store tests share.
 *
 * The tests of one binary, test_game_store, are in two files by theme:
 * test_game_store.c (what is stored and read, on SQLite and again on
 * PostgreSQL, and PostgreSQL's own tests; the runner's PostgreSQL server)
 * and test_game_store_sqlite.c (faults and retries, resends, schema and
 * migration, on SQLite only). What both use is here and in
 * game_store_fixture.c: the probe actor, the fault table, opening the
 * Store on either backend, running the world, and reading and checking
 * the answers. test_game_store.c tells the whole story.
 */
#ifndef GAME_STORE_FIXTURE_H
#define GAME_STORE_FIXTURE_H

#include "game_store.h"
#include "net_live.h"
#include "rt_service.h"
#include "rt_world.h"
#include "sim_world.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MS RT_NS_PER_MS
#define SEED 20260101u
#define TURNS_MAX 10000000u /* per run: far above any test's need */

#define PROBE_RESULTS_MAX (GAME_STORE_PENDING_MAX + 8u)
#define PROBE_ACKS_MAX (GAME_STORE_PENDING_MAX + 8u)
#define PROBE_REPLIES_MAX                                                      \
  (GAME_STORE_READS_MAX + 64u) /* past the reads limit */

/* ---- The probe: what a Room and the HTTP layer are to the Store -------- */

enum {
  TAG_SEND = RT_TAG_USER + 200, /* send_t: record results[first..+count) */
  TAG_LEADERBOARD,              /* query_t */
  TAG_HISTORY,                  /* query_t; subject: probe->subject */
};

typedef struct reply {
  uint64_t call_id;
  int status;
  rt_time_ns at;
  char *body; /* NUL-terminated copy of the buffer */
  size_t len;
} reply_t;

typedef struct probe {
  const game_store_t *st;
  game_result_t results[PROBE_RESULTS_MAX];
  uint32_t sends_refused; /* game_store_record < 0 */
  uint64_t acks[PROBE_ACKS_MAX];
  rt_time_ns acks_at[PROBE_ACKS_MAX];
  uint32_t acks_len;
  char subject[RT_SUBJECT_MAX];
  reply_t replies[PROBE_REPLIES_MAX];
  uint32_t replies_len;
  uint32_t unexpected; /* messages with a tag the probe does not know */
} probe_t;

/* ---- Faults -------------------------------------------------------------- */

typedef struct faults {
  int code;              /* what a failed operation returns */
  uint32_t fail_next[4]; /* by game_store_op_t: how many more to fail */
  uint32_t calls[4];     /* by game_store_op_t: operations attempted */
} faults_t;

/* ---- The fixture --------------------------------------------------------- */

typedef struct fx {
  sim_world_t *sw;  /* SQLite */
  net_live_t *live; /* PostgreSQL */
  rt_world_t *w;
  game_store_t *st;
  probe_t *probe;
  rt_actor_id_t probe_id;
  faults_t faults;
  uint64_t next_call;
  uint32_t next_result;
} fx_t;

/* Whether fx_open opens the Store on PostgreSQL. Set by the BOTH_BACKENDS
 * wrapper that runs the test body (test_game_store.c). */
extern bool use_pg;

/* The Store on `cfg` in a new world (a live one for a PostgreSQL URI, else
 * simulated), with the probe spawned; a cfg with a fault hook gets
 * fx->faults as its context. */
void fx_open_cfg(fx_t *fx, const game_store_config_t *cfg);

/* In memory, with the fault hook and a 10 ms .. 2 s backoff; or, for
 * game_store_pg, a fresh PostgreSQL database. */
void fx_open(fx_t *fx);

/* Stops the world and the Store, frees the probe; the probe must have had
 * no message it does not know. */
void fx_close(fx_t *fx);

/* Run the world until it has nothing left to do (the live one: until the
 * Store has nothing waiting or in flight). */
void fx_run(fx_t *fx);

/* The Store's statistics now. */
game_store_stats_t fx_stats(const fx_t *fx);

/* A result; the next slot of the probe's table. Returns its index. */
uint32_t fx_result(fx_t *fx, const char *room, int64_t at_s, const char *p1,
                   const char *p1_name, int32_t s1, const char *p2,
                   const char *p2_name, int32_t s2, const char *winner,
                   const char *reason);

/* Ask the probe to record results [first, first + count) with keys
 * key_base + i. Does not run the world. */
void fx_send(fx_t *fx, uint32_t first, uint32_t count, uint64_t key_base);

/* Record one result (key = index) and run to idle. */
void fx_record(fx_t *fx, uint32_t index);

/* Issue a query through the probe; returns its call id. */
uint64_t fx_ask(fx_t *fx, uint16_t tag, const char *subject, uint32_t limit);

/* The one reply to call_id the probe got. */
const reply_t *fx_reply(const fx_t *fx, uint64_t call_id);

/* The leaderboard (JSON array) at `limit`; the caller deletes it. */
cJSON *fx_leaderboard(fx_t *fx, uint32_t limit);

/* subject's history (JSON object: games, totalCount) at `limit`; the
 * caller deletes it. */
cJSON *fx_history(fx_t *fx, const char *subject, uint32_t limit);

/* A history's totalCount. */
int history_total(const cJSON *h);

/* A history's game i (it must be there). */
const cJSON *history_game(const cJSON *h, int i);

/* o's member `key` is the string `want`. */
void expect_str(const cJSON *o, const char *key, const char *want);

/* o's member `key` is the number `want`. */
void expect_num(const cJSON *o, const char *key, double want);

/* o's member `key` is the bool `want`. */
void expect_bool(const cJSON *o, const char *key, bool want);

/* A leaderboard row: exactly name, score, games, wins (never an id). */
void expect_row(const cJSON *board, int i, const char *name, int score,
                int games, int wins);

#endif
