/* dialer.c: an actor that dials out through rt_stream_connect (dialer.h). */
#include "dialer.h"

#include "rt_msg.h"

#include <criterion/criterion.h>
#include <inttypes.h>

uint8_t dialer_byte(uint64_t i) {
  return (uint8_t)('A' + (i ^ (i >> 5) ^ (i >> 11)) % 26);
}

static void dial(rt_actor_t *self, dialer_t *d) {
  rt_world_t *w = rt_actor_world(self);
  cr_assert(!d->dialed, "dialed twice");
  d->dialed = true;
  d->connect_rc =
      rt_stream_connect(w, d->host, d->port, rt_self(self), &d->stream);
  if (d->connect_rc < 0) {
    cr_assert_null(d->stream);
    rt_stop(w, rt_self(self), RT_REASON_NORMAL);
    return;
  }
  cr_assert_not_null(d->stream);
  cr_assert_eq(d->stream->owner, rt_self(self));
  d->stream_id = d->stream->id;
}

/* Write what is left to send: false when the stream failed (d->end). */
static bool write_some(dialer_t *d) {
  uint8_t buf[DIALER_CHUNK];
  for (uint32_t i = 0; i < DIALER_ROUNDS_MAX && d->sent < d->send_len; i++) {
    uint32_t n = d->send_len - d->sent;
    if (n > DIALER_CHUNK)
      n = DIALER_CHUNK;
    for (uint32_t k = 0; k < n; k++)
      buf[k] = dialer_byte(d->sent + k);
    int64_t took = rt_stream_write(d->stream, buf, n);
    if (took < 0) {
      d->end = took;
      return false;
    }
    d->sent += (uint32_t)took;
    if (took < n)
      return true; /* WRITABLE follows */
  }
  return true;
}

/* Read what came back, checking it: false when the stream ended (d->end). */
static bool read_some(dialer_t *d) {
  uint8_t buf[DIALER_CHUNK];
  for (uint32_t i = 0; i < DIALER_ROUNDS_MAX; i++) {
    int64_t n = rt_stream_read(d->stream, buf, sizeof(buf));
    if (n == 0)
      return true;
    if (n < 0) {
      d->end = n;
      d->end_write = rt_stream_write(d->stream, "x", 1);
      return false;
    }
    for (int64_t k = 0; k < n; k++)
      cr_assert_eq(buf[k], dialer_byte(d->received + (uint64_t)k),
                   "byte %" PRIu64 " came back as %u",
                   d->received + (uint64_t)k, buf[k]);
    d->received += (uint32_t)n;
    cr_assert_leq(d->received, d->sent, "more came back than was sent");
  }
  rt_stream_notify(d->stream, RT_STREAM_READABLE); /* the rest, later */
  return true;
}

static void on_stream(rt_actor_t *self, dialer_t *d, const rt_msg_t *msg) {
  rt_stream_event_t ev;
  RT_MSG_GET(msg, rt_stream_event_t, &ev);
  cr_assert_eq(ev.id, d->stream_id);
  d->signals++;
  d->events |= ev.events;
  bool open = true;
  if (d->events & RT_STREAM_CONNECTED)
    open = write_some(d);
  if (open)
    open = read_some(d);
  bool all_back = (d->events & RT_STREAM_CONNECTED) &&
                  d->received == d->send_len && d->sent == d->send_len;
  if (!open || all_back)
    rt_stop(rt_actor_world(self), rt_self(self), RT_REASON_NORMAL);
}

static void dialer_behaviour(rt_actor_t *self, const rt_msg_t *msg) {
  dialer_t *d = rt_state(self);
  if (msg->tag == DIALER_TAG_DIAL)
    dial(self, d);
  else if (msg->tag == RT_TAG_STREAM)
    on_stream(self, d, msg);
  else
    cr_assert_fail("a dialer got tag %u", (unsigned)msg->tag);
}

static void dialer_on_stop(rt_actor_t *self, int reason) {
  (void)reason;
  dialer_t *d = rt_state(self);
  d->stopped = true;
  rt_stream_close(d->stream);
  d->stream = NULL;
  if (d->done != NULL)
    d->done(d->done_ctx);
}

void dialer_spawn(rt_world_t *w, dialer_t *d, rt_actor_id_t *id_out) {
  cr_assert_leq(d->send_len, DIALER_SEND_MAX);
  rt_actor_spec_t spec = {.name = "dialer",
                          .behaviour = dialer_behaviour,
                          .on_stop = dialer_on_stop,
                          .state = d,
                          .mailbox_cap = 8,
                          .overflow = RT_OVERFLOW_REJECT};
  cr_assert_eq(rt_spawn(w, &spec, id_out), RT_OK);
  rt_msg_t m = rt_msg_make(DIALER_TAG_DIAL, NULL, 0);
  cr_assert_eq(rt_send(w, *id_out, &m), RT_PUSH_QUEUED);
}
