/* net_server_probe.c: pings that show whether a WebSocket's peer reads.
 *
 * A peer that stops reading is invisible to the sender while kernel
 * buffers (ours and the peer's) still take bytes: on loopback that is
 * megabytes, tens of seconds of a game. A ping travels behind every frame
 * written before it, so its pong says the peer read them all (wslay puts a
 * control frame ahead of data frames still queued, so a probe covers what
 * went out before the write it rides in). Pings carry their number, so a
 * pong answers exactly one of ours (and those before it); an unsolicited
 * one proves nothing.
 *
 * While frames go out, a probe goes with them (in the same write) each
 * ws_probe_period, and after every PROBE_BYTES of frames: pings then sit
 * in the pipeline at most PROBE_BYTES apart, so a reader that is slow but
 * moving answers one for each PROBE_BYTES it reads, however deep the
 * buffers. unread_for is the time since the peer was last seen reading
 * while some ping is out; the session decides what is too long (the
 * game's write wait).
 */
#include "net_server_int.h"

#include <stddef.h>

/* A ping's payload: its sequence number, 8 bytes big endian. */
static void ping_payload(uint64_t seq, uint8_t out[8]) {
  for (int i = 7; i >= 0; i--, seq >>= 8)
    out[i] = (uint8_t)seq;
}

void net_server__ping(conn_t *c, rt_time_ns now) {
  if (c->ping_seq - c->pong_seq >= PROBES_OUT_MAX || net_ws_closing(c->ws))
    return;
  uint8_t payload[8];
  ping_payload(c->ping_seq + 1, payload);
  if (net_ws_send_ping(c->ws, payload, sizeof(payload)) != RT_OK)
    return;
  if (c->ping_seq == c->pong_seq)
    c->heard_at = now; /* none was out: unread from here */
  c->ping_seq++;
  c->ping_at = now;
  c->ping_bytes = 0;
  c->srv->stats.ws_pings++;
}

/* After a frame of `len` bytes: a probe goes with it, in the same write,
 * a period after the last one, or once PROBE_BYTES of frames went since
 * (and PROBE_GAP_MIN: a burst of frames asks once). */
void net_server__probe(conn_t *c, size_t len, rt_time_ns now) {
  c->ping_bytes += len < PROBE_BYTES ? (uint32_t)len : PROBE_BYTES;
  rt_time_ns since = now - c->ping_at;
  if ((c->ping_bytes >= PROBE_BYTES && since >= PROBE_GAP_MIN) ||
      since >= c->srv->cfg.ws_probe_period)
    net_server__ping(c, now);
}

void net_server__on_pong(void *ud, const uint8_t *data, size_t len) {
  conn_t *c = ud;
  if (len != 8)
    return; /* unsolicited, or not ours */
  uint64_t seq = 0;
  for (size_t i = 0; i < 8; i++)
    seq = seq << 8 | data[i];
  if (seq <= c->pong_seq || seq > c->ping_seq)
    return;
  c->pong_seq = seq;
  c->heard_at = rt_now(c->srv->world);
  c->srv->stats.ws_pongs++;
}

rt_time_ns net_server__unread_for(const rt_session_conn_t *sc) {
  const conn_t *c =
      (const conn_t *)((const char *)sc - offsetof(conn_t, session_conn));
  if (c->ws == NULL || c->ping_seq == c->pong_seq)
    return 0;
  return rt_now(c->srv->world) - c->heard_at;
}
