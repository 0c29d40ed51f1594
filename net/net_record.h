/* net_record.h: recording a world's inputs and output checks into a trace.
 *
 * A recorder is a tap (rt_tap.h) that writes what crosses the world seam as
 * net_trace.h records, in the order it happened, so a replay (sim/
 * sim_replay.h) can feed the same inputs to the same actors and check that
 * they wrote the same bytes. The event loop never waits for the disk: the
 * trace writer buffers and writes from its own thread; records it cannot
 * buffer are counted and marked LOST (a replay stops there).
 *
 * Record payloads (u64/i64 are net_trace varints, h64 a fixed64 hash):
 *   TIME          u64 nanoseconds since the previous TIME (from 0)
 *   PASS          u64 rt_drive_t, u64 turns_max
 *   CHECKPOINT    u64 rt_drive_t, u64 result (turns, or timers fired),
 *                 u64 deliveries so far, u64 timer firings so far,
 *                 h64 run hash, h64 output hash
 *   STREAM_EVENT  u64 source id, u64 RT_STREAM_* bits
 *   ACCEPT        u64 listener id, i64 rc, u64 new stream id (rc 1) or 0
 *   CONNECT       u64 new stream id (rc 0) or 0, i64 rc, bytes "host:port"
 *                 (net_record_endpoint: the host as the program gave it)
 *   READ          u64 stream id, i64 rc, bytes (the rc bytes when rc > 0)
 *   WRITE         u64 stream id, u64 bytes offered, i64 rc,
 *                 h64 hash of the bytes offered
 *   BACKLOG       u64 stream id, u64 bytes
 *   SHUTDOWN      u64 stream id
 *   CLOSE         u64 stream id, u64 bytes in, u64 bytes out,
 *                 h64 the stream's output hash (rt_stream_t.out_hash)
 *   EXTERNAL      u64 kind, i64 rc, bytes
 *   CONTROL       u64 NET_RECORD_CONTROL_*
 * Hashes are rt_hash.h's; a record's fields are checked by the replay in
 * this order, so a changed byte anywhere is named where it first matters.
 *
 * Left out, because a replay can tell them exactly: a read that returned 0
 * and a backlog of 0, which are most calls (an owner reads until 0; a
 * Client asks the backlog before each frame). A replay answers 0 to a
 * read or backlog call when the next record is not a READ or BACKLOG for
 * that stream. That is exact because of how a live stream behaves
 * (net_stream.c): after a read returned 0, the next one returns bytes or
 * an end only after a READABLE notification, which is a STREAM_EVENT
 * record between passes; and a backlog grows from 0 only by a write, a
 * WRITE record. So an omitted 0 is never followed, for the same stream,
 * by the record of a later call without another record in between.
 */
#ifndef NET_RECORD_H
#define NET_RECORD_H

#include "net_trace_writer.h"
#include "rt_tap.h"

#include <stddef.h>
#include <stdint.h>

/* Header flags. */
enum {
  NET_RECORD_F_LIVE = 1u << 0,     /* a live server's inputs */
  NET_RECORD_F_RUN_HASH = 1u << 1, /* the world kept its run hash */
  NET_RECORD_F_SIM = 1u << 2,      /* a simulated run: seed and checks */
};

/* The operator's hand, recorded where it acted (between passes). */
enum {
  NET_RECORD_CONTROL_SHUTDOWN = 1, /* stop accepting, close connections */
  NET_RECORD_CONTROL_TEARDOWN = 2, /* stop every actor (rt_world_stop_all) */
};

/* A CONNECT's "host:port" (rt_stream_connect's host, a numeric address):
 * a host longer than NET_RECORD_HOST_MAX bytes, which no world can connect
 * to, is cut there, by the recorder and the replay alike. */
#define NET_RECORD_HOST_MAX 255u
#define NET_RECORD_ENDPOINT_MAX (NET_RECORD_HOST_MAX + sizeof(":65535"))

/* "host:port" into out (cap >= NET_RECORD_ENDPOINT_MAX), NUL-ended: its
 * length. What a CONNECT record holds and a replay compares. */
size_t net_record_endpoint(char *out, size_t cap, const char *host,
                           uint16_t port);

/* How often the buffered records are handed to the writer thread, at the
 * latest (world time): what a crash can lose. */
#define NET_RECORD_FLUSH_NS (20 * RT_NS_PER_MS)

typedef struct net_record net_record_t;

typedef struct net_record_config {
  const char *dir;             /* created if missing; must hold no trace */
  uint64_t max_bytes_per_file; /* 0: NET_TRACE_FILE_BYTES_DEFAULT */
  uint32_t buffer_bytes;       /* 0: the writer's default */
  const char *config;          /* the program's flags, for the header */
  uint32_t flags;              /* NET_RECORD_F_* */
  /* Tests: how the writer opens its files (net_trace_writer.h); NULL:
   * open(2). */
  net_trace_open_fn *open_file;
  void *open_ctx;
} net_record_config_t;

typedef struct net_record_stats {
  uint64_t records;       /* appended */
  uint64_t records_lost;  /* refused by the writer (disk behind, too big) */
  uint64_t bytes_written; /* reached the file system */
  uint32_t files;
} net_record_stats_t;

/* Start recording w (outside turns): opens the trace and sets w's tap.
 * 0, or a negative RT_E* with a sentence in err. */
int net_record_start(rt_world_t *w, const net_record_config_t *cfg,
                     net_record_t **out, char *err, size_t err_cap);
/* Record an operator action, just before the program performs it. */
void net_record_control(net_record_t *r, uint32_t code);
/* Clear the tap, write END, wait for the disk, free r. 0, or the first I/O
 * error with its sentence in err. stats (may be NULL): the final counts. */
int net_record_stop(net_record_t *r, net_record_stats_t *stats, char *err,
                    size_t err_cap);

#endif
