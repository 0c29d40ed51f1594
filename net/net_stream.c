/* net_stream.c: rt_stream_t over a non-blocking TCP socket.
 *
 * The send buffer is the kernel's: write hands bytes straight to send() and
 * reports how many it took; when it takes fewer than offered, a one-shot
 * write event reports WRITABLE once the socket drains. So no bytes are ever
 * copied into a second user-space buffer per connection, and the backlog is
 * what the kernel still holds (SIOCOUTQ). Reads are edge-triggered (EV_ET),
 * as rt_stream.h promises: an owner that pauses reading under backpressure
 * costs no wakeups until it resumes.
 */
#include "net_int.h"

#include "rt_assert.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define NET_STREAM_SNDBUF (64 * 1024)

typedef struct net_conn {
  rt_stream_t stream; /* first */
  net_live_t *live;
  evutil_socket_t fd;
  struct event *read_ev;
  /* Made at the first short write (or connect): most connections never
   * have one, and an idle connection's bytes are what 10,000 players
   * cost. */
  struct event *write_ev;
  int error;         /* sticky error for reads and writes; 0: none */
  int connect_errno; /* connect(2) failed at once: its errno; 0: not so */
  bool read_done;    /* EOF or error seen: stop polling for reads */
  bool connecting;   /* an outgoing connect is in progress */
  /* Syscalls are most of a busy server's CPU, so two are avoided:
   * - after a short read the socket was drained, and with edge-triggered
   *   polling new bytes bring a new event, so the next read can answer 0
   *   without asking the kernel (unless the peer hung up: then read on to
   *   see the EOF);
   * - the backlog is asked of the kernel (SIOCOUTQ) only while a write was
   *   short: until then the kernel took every byte at once. */
  bool maybe_readable;
  bool peer_hung_up;
  bool write_blocked;
} net_conn_t;

static const rt_stream_ops_t net_stream_ops;

static int errno_to_rt(int e) {
  switch (e) {
  case ECONNRESET: return RT_ERESET;
  case EPIPE: return RT_EPIPE;
  case ECONNREFUSED: return RT_ECONNREFUSED;
  case ETIMEDOUT: return RT_ETIMEDOUT;
  case ENOMEM:
  case ENOBUFS: return RT_ENOMEM;
  default: return RT_EIO;
  }
}

static void on_readable(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  net_conn_t *c = arg;
  c->maybe_readable = true;
  if (what & EV_CLOSED)
    c->peer_hung_up = true;
  rt_stream_notify(&c->stream, RT_STREAM_READABLE);
}

static void on_writable(evutil_socket_t fd, short what, void *arg) {
  (void)what;
  net_conn_t *c = arg;
  if (c->connecting) {
    c->connecting = false;
    int soerr = c->connect_errno;
    socklen_t len = sizeof(soerr);
    if (soerr == 0)
      getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
    if (soerr != 0) {
      c->error = errno_to_rt(soerr);
      c->read_done = true;
      event_del(c->read_ev);
      rt_stream_notify(&c->stream, RT_STREAM_CLOSED);
      return;
    }
    rt_stream_notify(&c->stream, RT_STREAM_CONNECTED | RT_STREAM_WRITABLE);
    return;
  }
  c->write_blocked = false;
  rt_stream_notify(&c->stream, RT_STREAM_WRITABLE);
}

static int64_t net_read(rt_stream_t *s, void *buf, size_t cap) {
  net_conn_t *c = (net_conn_t *)s;
  if (c->error != 0)
    return c->error;
  if (c->connecting || cap == 0 || !c->maybe_readable)
    return 0;
  ssize_t n;
  do /* a signal, not an empty socket: ask again (a 0 must mean "nothing
      * until the next READABLE", which recording relies on) */
    n = recv(c->fd, buf, cap, 0);
  while (n < 0 && errno == EINTR);
  if (n > 0) {
    if ((size_t)n < cap && !c->peer_hung_up)
      c->maybe_readable = false; /* drained: the next bytes bring an event */
    return n;
  }
  if (n == 0) {
    c->read_done = true;
    event_del(c->read_ev);
    return RT_EOF;
  }
  if (errno == EAGAIN || errno == EWOULDBLOCK) {
    c->maybe_readable = false;
    return 0;
  }
  c->error = errno_to_rt(errno);
  c->read_done = true;
  event_del(c->read_ev);
  return c->error;
}

/* Wait for the socket to take bytes again: WRITABLE follows. */
static int want_writable(net_conn_t *c) {
  if (c->write_ev == NULL) {
    c->write_ev =
        event_new(net_live_base(c->live), c->fd, EV_WRITE, on_writable, c);
    if (c->write_ev == NULL)
      return RT_ENOMEM;
  }
  event_add(c->write_ev, NULL);
  return RT_OK;
}

static int64_t net_write(rt_stream_t *s, const void *buf, size_t len) {
  net_conn_t *c = (net_conn_t *)s;
  if (c->error != 0)
    return c->error;
  if (c->connecting) {
    return 0; /* WRITABLE follows the connect */
  }
  if (len == 0)
    return 0;
  ssize_t n = send(c->fd, buf, len, MSG_NOSIGNAL);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
      n = 0;
    } else {
      c->error = errno_to_rt(errno);
      return c->error;
    }
  }
  if ((size_t)n < len) {
    c->write_blocked = true;
    if (want_writable(c) < 0) {
      /* Without the event no WRITABLE would come: the stream is broken. */
      c->error = RT_ENOMEM;
      return c->error;
    }
  }
  return n;
}

static size_t net_backlog(const rt_stream_t *s) {
  const net_conn_t *c = (const net_conn_t *)s;
  int queued = 0;
  if (!c->write_blocked)
    return 0; /* the kernel took everything so far */
  if (ioctl(c->fd, SIOCOUTQ, &queued) < 0 || queued < 0)
    return 0;
  return (size_t)queued;
}

static void net_shutdown(rt_stream_t *s) {
  net_conn_t *c = (net_conn_t *)s;
  shutdown(c->fd, SHUT_WR);
}

/* Asked once per accepted connection (net_server's per-address limits),
 * so it is not kept. An IPv4-mapped IPv6 address reads as IPv4. */
static int net_peer(const rt_stream_t *s, char *out, size_t cap) {
  const net_conn_t *c = (const net_conn_t *)s;
  struct sockaddr_storage ss;
  socklen_t len = sizeof(ss);
  if (getpeername(c->fd, (struct sockaddr *)&ss, &len) != 0)
    return RT_ENOTFOUND;
  const void *addr = NULL;
  int family = ss.ss_family;
  if (family == AF_INET) {
    addr = &((const struct sockaddr_in *)&ss)->sin_addr;
  } else if (family == AF_INET6) {
    const struct in6_addr *a6 = &((const struct sockaddr_in6 *)&ss)->sin6_addr;
    addr = a6;
    if (IN6_IS_ADDR_V4MAPPED(a6)) {
      family = AF_INET;
      addr = a6->s6_addr + 12;
    }
  }
  if (addr == NULL || inet_ntop(family, addr, out, (socklen_t)cap) == NULL)
    return RT_ENOTFOUND;
  return RT_OK;
}

static void net_destroy(rt_stream_t *s) {
  net_conn_t *c = (net_conn_t *)s;
  event_free(c->read_ev);
  if (c->write_ev != NULL)
    event_free(c->write_ev);
  close(c->fd);
  free(c);
}

static const rt_stream_ops_t net_stream_ops = {
    .read = net_read,
    .write = net_write,
    .backlog = net_backlog,
    .shutdown = net_shutdown,
    .destroy = net_destroy,
    .peer = net_peer,
};

void net__stream_connect_failed(rt_stream_t *s, int err) {
  net_conn_t *c = (net_conn_t *)s;
  RT_ASSERT(s->ops == &net_stream_ops);
  RT_ASSERT(c->connecting);
  RT_ASSERT(err != 0);
  c->connect_errno = err;
  /* on_writable, from the loop, ends the connect as the kernel would. */
  event_active(c->write_ev, EV_WRITE, 1);
}

int net__stream_create(net_live_t *live, evutil_socket_t fd, bool connecting,
                       rt_stream_t **out) {
  if (evutil_make_socket_nonblocking(fd) < 0 ||
      evutil_make_socket_closeonexec(fd) < 0)
    return RT_EIO;
  /* Game messages are small and latency-bound: no Nagle delay. */
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  /* A fixed, modest send buffer (the kernel doubles it): a reader that
   * stops shows as short writes after tens of KiB, not megabytes of
   * autotuned buffer, so flow control acts while it still matters. */
  int sndbuf = NET_STREAM_SNDBUF;
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
  net_conn_t *c = calloc(1, sizeof(*c));
  if (c == NULL)
    return RT_ENOMEM;
  struct event_base *base = net_live_base(live);
  c->live = live;
  c->fd = fd;
  c->maybe_readable = true; /* bytes may be waiting already */
  c->connecting = connecting;
  c->read_ev = event_new(base, fd, EV_READ | EV_CLOSED | EV_PERSIST | EV_ET,
                         on_readable, c);
  if (connecting) /* the connect's end comes as WRITABLE */
    c->write_ev = event_new(base, fd, EV_WRITE, on_writable, c);
  if (c->read_ev == NULL || (connecting && c->write_ev == NULL)) {
    if (c->read_ev != NULL)
      event_free(c->read_ev);
    if (c->write_ev != NULL)
      event_free(c->write_ev);
    free(c);
    return RT_ENOMEM;
  }
  rt_stream_init(&c->stream, net_live_world(live), &net_stream_ops);
  event_add(c->read_ev, NULL);
  if (connecting)
    event_add(c->write_ev, NULL);
  *out = &c->stream;
  return RT_OK;
}
