/* sim_pipe.h: simulated connections with latency, bandwidth, bounded
 * buffers, stalls and resets.
 *
 * A pipe joins two rt_stream_t ends. Each direction models a TCP connection
 * in one direction as a bounded byte queue:
 *   written --(bandwidth, latency, jitter; segments of mss bytes)--> arrived
 *   arrived --(the reader's reads)--> read
 * `buffer` bounds written - read: the sender's socket buffer and the
 * receiver's window together. A reader that stops reading therefore fills
 * it, and the writer sees short writes (backpressure), exactly the condition
 * the Client actor's flow control exists for. Segments never overtake each
 * other. A stall holds back arrivals in one direction for a window, and a
 * partition (sim_world_partition) both directions of the connections of a
 * group to a port; neither reorders them. A reset discards everything and
 * fails both ends with RT_ERESET.
 *
 * Closing one end (rt_stream_close) sends EOF to the peer after the bytes
 * already written; the peer's writes then fail with RT_EPIPE.
 */
#ifndef SIM_PIPE_H
#define SIM_PIPE_H

#include "sim_world.h"

#define SIM_BUFFER_DEFAULT (64u * 1024)
#define SIM_BUFFER_MAX (16u * 1024 * 1024)
#define SIM_MSS_DEFAULT 1460u

typedef struct sim_link_config {
  rt_time_ns latency;   /* one-way delay */
  rt_time_ns jitter;    /* plus a uniform draw in [0, jitter] */
  uint64_t bandwidth;   /* bytes per virtual second; 0: unlimited */
  uint32_t buffer;      /* bytes written and not yet read; 0: default */
  uint32_t mss;         /* segment size; 0: default */
  uint64_t reset_after; /* reset the pipe once this many bytes were
                           written this way (a reset mid-frame); 0: never */
  rt_time_ns stall_at;  /* one stall window of arrivals this way, from */
  rt_time_ns stall_for; /* stall_at (world time) for stall_for; 0: none */
} sim_link_config_t;

/* A connected pair: bytes written at *a arrive at *b over a_to_b, and back
 * over b_to_a (either config may be NULL: instant, default buffer). Both ends
 * start with no owner. */
int sim_pipe_create(sim_world_t *sw, const sim_link_config_t *a_to_b,
                    const sim_link_config_t *b_to_a, rt_stream_t **a,
                    rt_stream_t **b);

/* Connect to a sim_listen port: the server end is queued at the listener
 * (its owner gets RT_TAG_ACCEPT), the client end is returned, owned by
 * `owner`. up: client to server, down: server to client.
 * RT_ECONNREFUSED when nobody listens or the accept backlog is full. */
int sim_connect(sim_world_t *sw, uint16_t port, rt_actor_id_t owner,
                const sim_link_config_t *up, const sim_link_config_t *down,
                rt_stream_t **out);

/* Connect as rt_stream_connect does, without waiting (the simulated
 * world's rt_backend_t.connect calls this with the links its connect-links
 * hook picked, sim_world.h; a pipe made here directly is in group 0, which
 * no partition holds): the client end comes at once, owned by `owner`, and
 * gets RT_STREAM_CONNECTED|RT_STREAM_WRITABLE after a round trip (up's
 * latency plus down's, or later if a partition holds it then; reads and
 * writes answer 0 until then, as a connecting socket's do), while the
 * server end waits at the listener like sim_connect's. Nobody listening,
 * or a full accept backlog: the end still comes, and after the round trip
 * gets RT_STREAM_CLOSED, its reads and writes answering RT_ECONNREFUSED,
 * as a live refusal does. 0, or RT_EINVAL for a bad link, RT_ENOMEM. */
int sim_connect_async(sim_world_t *sw, uint16_t port, rt_actor_id_t owner,
                      const sim_link_config_t *up,
                      const sim_link_config_t *down, rt_stream_t **out);

/* Hold back arrivals *towards* `end` until world time `until`. A stall in
 * force is extended by a later `until`, never shortened. It is a window of
 * its own, apart from the link's configured stall and from a partition:
 * arrivals wait until all three let them go, so lifting a partition never
 * lifts a stall. */
void sim_stream_stall(rt_stream_t *end, rt_time_ns until);

/* Reset the whole connection now: both ends see RT_ERESET. */
void sim_stream_reset(rt_stream_t *end);

/* Reset the whole connection once `bytes` more bytes have been written
 * towards `end` (the write that crosses the mark is cut short there: a
 * reset mid-frame). Replaces the direction's reset_after; 0 disarms it. */
void sim_stream_reset_in(rt_stream_t *end, uint64_t bytes);

/* True for streams made by this module. */
bool sim_stream_is_sim(const rt_stream_t *s);

#endif
