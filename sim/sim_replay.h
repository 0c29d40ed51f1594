/* sim_replay.h: the replay world, fed from a recorded trace.
 *
 * The same actors a live server ran are set up again in a world whose
 * inputs come from a trace (net/net_record.h): its clock takes the recorded
 * times, its driver makes the recorded calls (pumps, notifications), its
 * streams answer reads with the recorded bytes and writes with the recorded
 * acceptances, an outbound connect (rt_stream_connect) gets what the live
 * one got (its error, or a stream with the same id whose bytes and signals
 * come from the trace, with no peer at all), and results from outside the
 * world (storage, token checks) come back as recorded. Nothing is read from
 * a socket, a disk or a clock.
 *
 * It checks as it goes: each write must offer the bytes the live server
 * offered (their hash), each connect must go where the live one went
 * (host:port), each call must be the one the recording has next,
 * and after every pass the turns, deliveries, run hash and output hash must
 * match the recorded checkpoint. The first mismatch stops the replay with a
 * report: the record, the time, the stream, the actor and the message it
 * was handling, and the records just before.
 *
 * Setting up: open the trace, build the program's actors in the world it
 * gives (sim_replay_world) in the same order as the live program did, with
 * sim_replay_listen where it listened, then run. Streams and listeners get
 * their ids from the world in creation order, so a different setup shows
 * as an unknown id at the first event.
 */
#ifndef SIM_REPLAY_H
#define SIM_REPLAY_H

#include "net_trace.h"
#include "rt_stream.h"
#include "rt_world.h"

#include <stdint.h>

typedef struct sim_replay sim_replay_t;

typedef struct sim_replay_config {
  int log_level; /* RT_LOG_*; default 0 (debug): set RT_LOG_OFF for quiet */
  void (*log_write)(void *ctx, const char *line, size_t len); /* NULL: stderr */
  void *log_ctx;
  rt_trace_fn *trace; /* every delivery (rt_world.h); NULL: none */
  void *trace_ctx;
  /* An operator action the recording holds (NET_RECORD_CONTROL_*): the
   * program performs it as it did live. TEARDOWN is handled here. */
  void (*control)(void *ctx, uint32_t code);
  void *control_ctx;
} sim_replay_config_t;

typedef enum sim_replay_status {
  SIM_REPLAY_DONE = 0,    /* the whole recording, every check matched */
  SIM_REPLAY_UNTIL,       /* stopped at the requested time; all matched */
  SIM_REPLAY_DIVERGED,    /* the replay did something else: see the report */
  SIM_REPLAY_TRACE_ERROR, /* the trace is damaged, cut short or has a gap */
} sim_replay_status_t;

#define SIM_REPLAY_CONTEXT 8u /* records shown before a divergence */

typedef struct sim_replay_report {
  sim_replay_status_t status;
  /* What was replayed. */
  uint64_t records;
  uint64_t passes;
  uint64_t checkpoints; /* pass checkpoints and stream closes matched */
  uint64_t accepts, connects, reads, writes, externals;
  uint64_t writes_short; /* writes that took less than offered */
  uint64_t bytes_in, bytes_out;
  rt_time_ns time; /* world time reached */
  uint64_t deliveries;
  uint64_t run_hash, output_hash;
  /* Where it stopped (DIVERGED, TRACE_ERROR): the record that differs or
   * could not be read. */
  uint64_t record_index;
  uint64_t stream;        /* the stream concerned, 0: none */
  rt_actor_id_t actor;    /* the actor running, 0: between turns */
  const char *actor_name; /* static, or NULL */
  uint64_t delivery;      /* the message it was handling: sequence, */
  uint16_t tag;           /* tag, */
  rt_actor_id_t from;     /* and sender */
  char what[512];         /* a sentence: what differs */
  char context[1536];     /* the records before, one per line */
} sim_replay_report_t;

/* Open a recording (a directory or one of its files) and create the world
 * with its seed and wall clock. 0, or a negative RT_E* with a sentence in
 * err (a missing, damaged or foreign trace, or another format version). */
int sim_replay_open(const char *path, const sim_replay_config_t *cfg,
                    sim_replay_t **out, char *err, size_t err_cap);
rt_world_t *sim_replay_world(sim_replay_t *r);
/* The recording's header (its config string is NUL-terminated). */
const net_trace_header_t *sim_replay_header(const sim_replay_t *r);

/* The listener the live program opened at this point of its setup. */
int sim_replay_listen(sim_replay_t *r, rt_actor_id_t owner,
                      rt_listener_t **out);

/* Replay until the recording ends, the world time would pass `until`
 * (RT_TIME_NEVER: no limit), or something differs. Fills *rep, counting
 * what the setup took too: a connect made while setting up takes its
 * record then, and if it differed the run returns that divergence at once.
 * Once per replay: a second call is a TRACE_ERROR (the records are
 * consumed). */
sim_replay_status_t sim_replay_run(sim_replay_t *r, rt_time_ns until,
                                   sim_replay_report_t *rep);

/* Stops the actors (their on_stop may still write: not checked), frees the
 * world and closes the trace. */
void sim_replay_close(sim_replay_t *r);

const char *sim_replay_status_name(sim_replay_status_t s);

#endif
