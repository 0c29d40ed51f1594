/* sim_trace.h: a simulated run written as a trace, and checked against one.
 *
 * A simulated run is a function of its seed and flags, so its trace needs
 * no inputs: the header holds the seed and the simulator's flags (one per
 * line), and the records are checkpoints of what the run did. Replaying it
 * (tools/overcookied-replay, which also replays live traces) runs the
 * simulator again with those flags and compares every checkpoint, which
 * catches a build or platform that no longer reproduces a reported seed.
 *
 * Records (NET_TRACE_T_CHECKPOINT; u64 varints, h64 fixed64):
 *   u64 kind        SIM_TRACE_CP_WINDOW or SIM_TRACE_CP_END
 *   u64 deliveries  so far
 *   u64 time        of the last delivery (ns)
 *   h64 chain       hash chain over every delivery so far (sequence, time,
 *                   actor, sender, tag, payload: rt_delivery_t)
 *   u64 actor, u64 tag, u64 from   the last delivery, for the report
 *   h64 run hash    (END only; 0 in windows)
 * One WINDOW checkpoint every SIM_TRACE_EVERY deliveries, and END.
 */
#ifndef SIM_TRACE_H
#define SIM_TRACE_H

#include "net_trace.h"
#include "rt_world.h"
#include "sim_replay.h"

#include <stdbool.h>
#include <stdint.h>

#define SIM_TRACE_EVERY 1024u

enum { SIM_TRACE_CP_WINDOW = 1, SIM_TRACE_CP_END = 2 };

typedef struct sim_trace sim_trace_t;

/* Write: a new trace in dir for a run of `seed` with `config` (the
 * simulator's flags, one per line). 0, or a negative RT_E* with a sentence
 * in err. */
int sim_trace_create(const char *dir, uint64_t seed, int64_t epoch_unix_ns,
                     const char *config, sim_trace_t **out, char *err,
                     size_t err_cap);

/* Check: open a trace written by sim_trace_create (a directory or one of
 * its files). A live recording is refused with a sentence saying so. */
int sim_trace_open(const char *path, sim_trace_t **out, char *err,
                   size_t err_cap);
const net_trace_header_t *sim_trace_header(const sim_trace_t *t);

/* An rt_trace_fn: hand it every delivery of the run (simrun_config_t.trace
 * or sim_config_t.trace). Writing, it appends checkpoints; checking, it
 * compares them and stops comparing at the first difference. */
void sim_trace_delivery(void *ctx, const rt_delivery_t *d);

/* The run ended (or stopped at `until`, when until_reached): write or
 * check the END checkpoint. Fills *rep as the replay world does (status,
 * counts, what, context); rep may be NULL when writing. Returns the
 * status. */
sim_replay_status_t sim_trace_finish(sim_trace_t *t, uint64_t run_hash,
                                     bool until_reached,
                                     sim_replay_report_t *rep);

/* Writing: finish the file (END record, fsync). 0, or the first I/O error
 * with a sentence in err. Checking: just closes. Frees t. */
int sim_trace_close(sim_trace_t *t, char *err, size_t err_cap);

#endif
