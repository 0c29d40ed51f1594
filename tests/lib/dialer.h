/* dialer.h: an actor that dials out through rt_stream_connect, for the
 * tests of the connect of every world: live (tests/net/test_net_live.c),
 * simulated (tests/sim/test_sim_pipe.c), recorded and replayed
 * (tests/sim/test_sim_replay_connect.c). One actor for all three, so a
 * replay runs the very behaviour that was recorded.
 *
 * It connects in its first turn (dialer_spawn sends it DIALER_TAG_DIAL: an
 * actor connects inside a turn, as the Cluster actor will), writes
 * send_len bytes of dialer_byte() once the stream says CONNECTED, reads
 * back what the peer echoes, checking every byte, and stops itself when
 * all of it came back (or at once when send_len is 0), when the stream
 * ends (a read < 0) or when the connect failed. On stop it closes its
 * stream and calls done. Every read and write it makes is bounded per turn
 * (DIALER_ROUNDS_MAX); it comes back by itself for the rest.
 */
#ifndef OC_TEST_DIALER_H
#define OC_TEST_DIALER_H

#include "rt_stream.h"
#include "rt_world.h"

#include <stdbool.h>
#include <stdint.h>

#define DIALER_SEND_MAX (1u << 20)
#define DIALER_CHUNK 1024u
#define DIALER_ROUNDS_MAX 64u

enum { DIALER_TAG_DIAL = RT_TAG_USER };

typedef struct dialer {
  /* Set by the test. */
  const char *host; /* borrowed until the dialer stops */
  uint16_t port;
  uint32_t send_len;       /* <= DIALER_SEND_MAX */
  void (*done)(void *ctx); /* when it stops (NULL: nothing) */
  void *done_ctx;
  /* What happened. */
  bool dialed;        /* it called rt_stream_connect */
  int connect_rc;     /* what that returned */
  uint64_t stream_id; /* the stream's id when connect_rc is 0 */
  uint32_t signals;   /* RT_TAG_STREAM signals */
  uint32_t events;    /* every RT_STREAM_* bit they carried */
  int64_t end;        /* the read < 0 that ended the stream; 0: none */
  int64_t end_write;  /* a write of one byte just after that read */
  uint32_t sent, received;
  bool stopped;
  rt_stream_t *stream; /* while open */
} dialer_t;

/* Byte i of what a dialer sends. */
uint8_t dialer_byte(uint64_t i);

/* Spawn a dialer with state d (borrowed: the test reads it afterwards)
 * and send it DIALER_TAG_DIAL. */
void dialer_spawn(rt_world_t *w, dialer_t *d, rt_actor_id_t *id_out);

#endif
