/* sim_replay_fixture.h: the fixture the sim_replay tests share.
 *
 * The tests of one binary, test_sim_replay, are in three files by theme:
 * test_sim_replay.c (a live session recorded, then replayed: matching,
 * diverging, stopping early, edited, lost and damaged records),
 * test_sim_replay_tap.c (externals through a recording, the tap unit by
 * unit, the output hash, a failing recording) and
 * test_sim_replay_connect.c (an actor's outbound connect recorded and
 * replayed). What they share is here and in sim_replay_fixture.c: a
 * temporary directory per test, the client's bytes, echo servers of the
 * tests' own, recording a live session, replaying it, and editing a
 * trace's records in place. test_sim_replay.c tells the whole story.
 */
#ifndef SIM_REPLAY_FIXTURE_H
#define SIM_REPLAY_FIXTURE_H

#include "net_record.h"
#include "net_trace.h"
#include "rt_world.h"
#include "sim_replay.h"

#include <stddef.h>
#include <stdint.h>

#define SEED 0x5eedu
#define ERR_CAP (NET_TRACE_ERR_MAX + 256u)
#define TMP_PATH_MAX 256u /* a path in the test's directory */

#define FILE_PATH_MAX (TMP_PATH_MAX + 32u) /* a trace file in one */
#define RECORDS_MAX 100000u                /* bounds a scan of one trace */

#define FIRST_LEN 300u   /* the session's first message */
#define SECOND_LEN 1000u /* and its second */

/* ---- A temporary directory per test -------------------------------------- */

/* The path of `name` in the test's directory (TMP_PATH_MAX bytes at out). */
void tmp_path(char *out, const char *name);

/* The suite's init: makes the test's directory (mkdtemp under /tmp). */
void tmp_init(void);

/* The suite's fini: removes the test's directory and what is in it. */
void tmp_fini(void);

/* ---- The client's bytes -------------------------------------------------- */

/* Byte i of what the client sends: lower-case letters (so that upper-casing
 * changes every byte), not periodic in a chunk size. */
uint8_t pattern(uint64_t i);

/* ---- Echo servers of the test's own -------------------------------------- */

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

/* A copy of net_echo's acceptor on listener l, twisted as ctx (a
 * mirror_cfg_t, borrowed) says; as net_echo_spawn_acceptor. */
int mirror_spawn(rt_world_t *w, rt_listener_t *l, void *ctx);

typedef int spawn_fn(rt_world_t *w, rt_listener_t *l, void *ctx);

/* net_echo's acceptor on listener l; ctx unused. */
int echo_spawn(rt_world_t *w, rt_listener_t *l, void *ctx);

/* ---- Recording a live session -------------------------------------------- */

typedef struct plan {
  uint32_t buffer_bytes; /* the trace writer's; 0: its default */
  uint64_t file_bytes;   /* a trace file's most; 0: the default */
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

/* Record one client session with the echo server into dir. */
void record_session(const char *dir, const plan_t *plan, session_t *out);

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

/* Replay the trace at path (a directory or a file) into a replay world
 * set up as `setup` says, until `until`; the report in rep. */
sim_replay_status_t replay(const char *path, const setup_t *setup,
                           rt_time_ns until, sim_replay_report_t *rep);

/* Replay the trace at path to its end into net_echo, set up as recorded. */
sim_replay_status_t replay_echo(const char *path, sim_replay_report_t *rep);

/* ---- Edited traces -------------------------------------------------------
 * A record's payload changed in place and its CRC-32C resealed, as a
 * different program's recording would differ: the trace reads cleanly, and
 * the replay must name the check that fails. */

typedef struct found {
  uint64_t offset, index;
  uint32_t len, file_seq;
} found_t;

/* The nth (from 0) record of `type` in the trace at dir (in its first
 * file). */
found_t find_record(const char *dir, uint8_t type, uint32_t nth);

/* XOR payload byte `at` of the record with mask, and reseal its CRC. */
void xor_record(const char *dir, const found_t *f, uint32_t at, uint8_t mask);

/* Flip bit 0 of payload byte `at` (negative: from the end) of the record,
 * and reseal the record's CRC-32C. */
void edit_record(const char *dir, const found_t *f, int32_t at);

/* A report's status and sentence, for an assertion's "%s: %s". */
#define SAID(rep) sim_replay_status_name((rep).status), (rep).what

#endif
