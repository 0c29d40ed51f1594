#include "net_int.h"

#include "rt_assert.h"
#include "rt_port.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/util.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct net_live {
  rt_world_t *world;
  struct event_base *base;
  struct event *run_ev;   /* drains the run queue */
  struct event *timer_ev; /* armed at the earliest runtime deadline */
  struct event *limit_ev; /* ends net_live_run_for */
  struct evutil_monotonic_timer *clock;
  struct timeval t0;
  rt_time_ns armed_deadline; /* RT_TIME_NEVER: timer_ev not armed */
  uint32_t turns_per_pass;
  bool in_pass;
  bool stop_requested; /* net_live_stop since this run began */
  bool limit_hit;      /* net_live_run_for's limit ended this run */
};

static rt_time_ns live_clock(net_live_t *live) {
  struct timeval tv;
  evutil_gettime_monotonic(live->clock, &tv);
  rt_time_ns sec = (rt_time_ns)(tv.tv_sec - live->t0.tv_sec);
  rt_time_ns usec = (rt_time_ns)(tv.tv_usec - live->t0.tv_usec);
  return sec * RT_NS_PER_S + usec * RT_NS_PER_US;
}

/* The wall clock, read once: the world derives wall time from it and its
 * own monotonic clock (rt_wall_ns), so a recording needs only this value. */
static int64_t wall_clock_ns(void) {
  struct timeval tv;
  evutil_gettimeofday(&tv, NULL);
  return (int64_t)tv.tv_sec * RT_NS_PER_S + (int64_t)tv.tv_usec * RT_NS_PER_US;
}

/* ---- Ports (rt_port.h): descriptors owned by a client library ---------- */

static void on_port(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  uint32_t events = ((what & EV_READ) ? RT_PORT_READ : 0) |
                    ((what & EV_WRITE) ? RT_PORT_WRITE : 0);
  rt_port_notify(arg, events);
}

/* One persistent event per port, made again when the descriptor or the
 * bits change (rarely: a connect's phases, a write that did not finish). */
static int live_watch(void *ctx, rt_port_t *p, int fd, uint32_t events) {
  net_live_t *live = ctx;
  struct event *ev = p->backend_data;
  if (ev != NULL) {
    event_free(ev);
    p->backend_data = NULL;
  }
  if (fd < 0 || events == 0)
    return RT_OK;
  short what = EV_PERSIST | ((events & RT_PORT_READ) ? EV_READ : 0) |
               ((events & RT_PORT_WRITE) ? EV_WRITE : 0);
  ev = event_new(live->base, fd, what, on_port, p);
  if (ev == NULL)
    return RT_ENOMEM;
  if (event_add(ev, NULL) != 0) {
    event_free(ev);
    return RT_EIO;
  }
  p->backend_data = ev;
  return RT_OK;
}

/* rt_backend_t.connect, with the listeners below. */
static int live_connect(void *ctx, const char *host, uint16_t port,
                        rt_actor_id_t owner, rt_stream_t **out);

static void update_time(net_live_t *live) {
  rt_time_ns now = live_clock(live);
  if (now > rt_now(live->world))
    rt_world_set_time(live->world, now);
}

static void arm_timer(net_live_t *live) {
  rt_time_ns next = rt_world_next_deadline(live->world);
  /* Re-arm only for an earlier deadline. When the earliest timer was
   * cancelled or moved later, the armed one just fires early and the pass
   * it causes re-arms: one spurious wakeup instead of a timerfd_settime
   * syscall on nearly every pass of a busy server. */
  if (next >= live->armed_deadline)
    return;
  live->armed_deadline = next;
  rt_time_ns delay = next - rt_now(live->world);
  if (delay < 0)
    delay = 0;
  /* Round up: waking a microsecond early would only re-arm. */
  rt_time_ns us = (delay + RT_NS_PER_US - 1) / RT_NS_PER_US;
  struct timeval tv = {.tv_sec = (time_t)(us / 1000000),
                       .tv_usec = (suseconds_t)(us % 1000000)};
  event_add(live->timer_ev, &tv);
}

/* One pass: fire due timers, run a bounded number of turns, re-arm. */
static void pass(net_live_t *live) {
  live->in_pass = true;
  update_time(live);
  rt_world_pump(live->world, live->turns_per_pass);
  live->in_pass = false;
  if (rt_world_has_ready(live->world)) {
    /* Yield to I/O, then go on: a zero timeout, not event_active, which
     * libevent would run again in this same iteration, before it polls,
     * so a busy actor would keep sockets and signals waiting for good. */
    static const struct timeval now = {0, 0};
    event_add(live->run_ev, &now);
  }
  arm_timer(live);
}

static void on_run(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  pass(arg);
}

static void on_timer(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  net_live_t *live = arg;
  live->armed_deadline = RT_TIME_NEVER; /* non-persistent: it is disarmed */
  pass(live);
}

static void on_limit(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  net_live_t *live = arg;
  live->limit_hit = true;
  event_base_loopbreak(live->base);
}

static void live_wake(void *ctx) {
  net_live_t *live = ctx;
  if (!live->in_pass)
    event_active(live->run_ev, EV_TIMEOUT, 0);
}

net_live_t *net_live_create(const net_live_config_t *cfg) {
  net_live_t *live = calloc(1, sizeof(*live));
  if (live == NULL)
    return NULL;
  live->armed_deadline = RT_TIME_NEVER;
  live->turns_per_pass = cfg->turns_per_pass != 0 ? cfg->turns_per_pass
                                                  : NET_TURNS_PER_PASS_DEFAULT;
  /* The world's clock is precise (CLOCK_MONOTONIC). libevent's own is
   * left coarse: its precise mode re-arms a timerfd before every
   * epoll_wait, a syscall per pass. A coarse wakeup can come a few ms
   * early; then no timer is due by the world's clock, on_timer disarms,
   * and the pass re-arms for the rest, so timers never fire early. */
  live->clock = evutil_monotonic_timer_new();
  if (live->clock == NULL ||
      evutil_configure_monotonic_time(live->clock, EV_MONOT_PRECISE) != 0)
    goto fail;
  evutil_gettime_monotonic(live->clock, &live->t0);
  live->base = event_base_new();
  if (live->base == NULL)
    goto fail;
  live->run_ev = event_new(live->base, -1, 0, on_run, live);
  live->timer_ev = evtimer_new(live->base, on_timer, live);
  live->limit_ev = evtimer_new(live->base, on_limit, live);
  if (live->run_ev == NULL || live->timer_ev == NULL || live->limit_ev == NULL)
    goto fail;
  rt_world_config_t wc = {
      .seed = cfg->seed,
      .batch_max = cfg->batch_max,
      .actors_max = cfg->actors_max,
      .log_level = cfg->log_level,
      .hash_disabled = cfg->hash_disabled,
      .epoch_unix_ns = wall_clock_ns(),
  };
  rt_backend_t backend = {.wake = live_wake,
                          .log_write = NULL,
                          .watch = live_watch,
                          .connect = live_connect};
  live->world = rt_world_create(&wc, &backend, live);
  if (live->world == NULL)
    goto fail;
  rt_log(live->world, RT_LOG_INFO, "world.start", "kind=live seed=%" PRIu64,
         cfg->seed);
  return live;
fail:
  net_live_destroy(live);
  return NULL;
}

void net_live_destroy(net_live_t *live) {
  if (live == NULL)
    return;
  if (live->world != NULL)
    rt_world_destroy(live->world); /* actors close their streams */
  if (live->run_ev != NULL)
    event_free(live->run_ev);
  if (live->timer_ev != NULL)
    event_free(live->timer_ev);
  if (live->limit_ev != NULL)
    event_free(live->limit_ev);
  if (live->base != NULL)
    event_base_free(live->base);
  if (live->clock != NULL)
    evutil_monotonic_timer_free(live->clock);
  free(live);
}

rt_world_t *net_live_world(net_live_t *live) { return live->world; }
struct event_base *net_live_base(net_live_t *live) {
  return live->base;
}

int net_live_run(net_live_t *live) {
  live->stop_requested = false;
  pass(live); /* pick up work queued before the loop started */
  /* event_base_loop clears a loopbreak made before it runs, so a stop from
   * that first pass is honoured here. */
  if (live->stop_requested)
    return RT_OK;
  return event_base_loop(live->base, EVLOOP_NO_EXIT_ON_EMPTY) < 0 ? RT_EIO
                                                                  : RT_OK;
}

/* The limit is the world's (precise) clock: libevent's coarse one can
 * fire the limit a few ms early, and then the run goes on for the rest,
 * as a world timer that woke early does (net_live_create). */
int net_live_run_for(net_live_t *live, rt_time_ns duration) {
  rt_time_ns end = live_clock(live) + duration;
  rt_time_ns left = duration > 0 ? duration : 0; /* one run at least */
  for (;;) {
    rt_time_ns us = (left + RT_NS_PER_US - 1) / RT_NS_PER_US;
    struct timeval tv = {.tv_sec = (time_t)(us / 1000000),
                         .tv_usec = (suseconds_t)(us % 1000000)};
    /* Our own timer, removed when the run ends: event_base_loopexit would
     * leave its timeout pending after an early stop, to end the next run. */
    live->limit_hit = false;
    event_add(live->limit_ev, &tv);
    int err = net_live_run(live);
    event_del(live->limit_ev);
    if (err < 0 || !live->limit_hit || live->stop_requested)
      return err;
    left = end - live_clock(live);
    if (left <= 0)
      return RT_OK;
  }
}

void net_live_stop(net_live_t *live) {
  live->stop_requested = true;
  event_base_loopbreak(live->base);
}

/* ---- Listeners ----------------------------------------------------------- */

typedef struct net_listener {
  rt_listener_t listener; /* first */
  net_live_t *live;
  evutil_socket_t fd;
  struct event *ev;
  struct event *pause_ev; /* re-enables accepting after EMFILE */
  uint16_t port;
} net_listener_t;

/* After running out of descriptors, stop polling the listener for a while
 * rather than spinning on a level-triggered readable socket. */
#define NET_ACCEPT_PAUSE_US 100000

static void on_listener_readable(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  net_listener_t *nl = arg;
  /* Level-triggered: this fires again on every loop while connections are
   * pending, and notifications coalesce, so an owner that accepts only some
   * per turn is reminded of the rest. */
  rt_listener_notify(&nl->listener);
}

static void on_accept_resume(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  net_listener_t *nl = arg;
  event_add(nl->ev, NULL);
}

static int live_accept(rt_listener_t *l, rt_stream_t **out) {
  net_listener_t *nl = (net_listener_t *)l;
  evutil_socket_t fd = accept(nl->fd, NULL, NULL);
  if (fd < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ||
        errno == ECONNABORTED)
      return 0;
    if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
        errno == ENOMEM) {
      struct timeval tv = {0, NET_ACCEPT_PAUSE_US};
      event_del(nl->ev);
      event_add(nl->pause_ev, &tv);
      return RT_ELIMIT;
    }
    return RT_EIO;
  }
  int err = net__stream_create(nl->live, fd, false, out);
  if (err < 0) {
    close(fd);
    return err;
  }
  return 1;
}

static void live_listener_destroy(rt_listener_t *l) {
  net_listener_t *nl = (net_listener_t *)l;
  event_free(nl->ev);
  event_free(nl->pause_ev);
  close(nl->fd);
  free(nl);
}

static const rt_listener_ops_t live_listener_ops = {
    .accept = live_accept,
    .destroy = live_listener_destroy,
};

static int resolve(const char *host, uint16_t port, struct sockaddr_in *sa) {
  memset(sa, 0, sizeof(*sa));
  sa->sin_family = AF_INET;
  sa->sin_port = htons(port);
  if (inet_pton(AF_INET, host, &sa->sin_addr) != 1)
    return RT_EINVAL;
  return RT_OK;
}

int net_live_listen(net_live_t *live, const char *host, uint16_t port,
                    rt_actor_id_t owner, rt_listener_t **out) {
  struct sockaddr_in sa;
  int err = resolve(host, port, &sa);
  if (err < 0)
    return err;
  evutil_socket_t fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0)
    return errno == EMFILE || errno == ENFILE ? RT_ELIMIT : RT_EIO;
  net_listener_t *nl = NULL;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (evutil_make_socket_nonblocking(fd) < 0 ||
      evutil_make_socket_closeonexec(fd) < 0) {
    err = RT_EIO;
    goto fail;
  }
  if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
      listen(fd, NET_LISTEN_BACKLOG) < 0) {
    err = RT_EADDR;
    goto fail;
  }
  socklen_t len = sizeof(sa);
  getsockname(fd, (struct sockaddr *)&sa, &len);
  nl = calloc(1, sizeof(*nl));
  if (nl == NULL) {
    err = RT_ENOMEM;
    goto fail;
  }
  nl->live = live;
  nl->fd = fd;
  nl->port = ntohs(sa.sin_port);
  nl->ev =
      event_new(live->base, fd, EV_READ | EV_PERSIST, on_listener_readable, nl);
  nl->pause_ev = evtimer_new(live->base, on_accept_resume, nl);
  if (nl->ev == NULL || nl->pause_ev == NULL) {
    err = RT_ENOMEM;
    goto fail;
  }
  event_add(nl->ev, NULL);
  rt_listener_init(&nl->listener, live->world, &live_listener_ops, owner);
  rt_log(live->world, RT_LOG_INFO, "net.listen", "host=%s port=%u", host,
         (unsigned)nl->port);
  *out = &nl->listener;
  return RT_OK;
fail:
  if (nl != NULL) {
    if (nl->ev != NULL)
      event_free(nl->ev);
    if (nl->pause_ev != NULL)
      event_free(nl->pause_ev);
    free(nl);
  }
  close(fd);
  return err;
}

uint16_t net_live_listener_port(const rt_listener_t *l) {
  RT_ASSERT(l->ops == &live_listener_ops);
  return ((const net_listener_t *)l)->port;
}

/* A numeric IPv4 or IPv6 address and a port: no name lookup, which would
 * block the loop (and is a question for the operator's flags, not for an
 * actor). RT_EINVAL for anything else. */
static int resolve_any(const char *host, uint16_t port,
                       struct sockaddr_storage *ss, socklen_t *len) {
  memset(ss, 0, sizeof(*ss));
  struct sockaddr_in *sa4 = (struct sockaddr_in *)ss;
  struct sockaddr_in6 *sa6 = (struct sockaddr_in6 *)ss;
  if (inet_pton(AF_INET, host, &sa4->sin_addr) == 1) {
    sa4->sin_family = AF_INET;
    sa4->sin_port = htons(port);
    *len = sizeof(*sa4);
    return RT_OK;
  }
  if (inet_pton(AF_INET6, host, &sa6->sin6_addr) == 1) {
    sa6->sin6_family = AF_INET6;
    sa6->sin6_port = htons(port);
    *len = sizeof(*sa6);
    return RT_OK;
  }
  return RT_EINVAL;
}

/* rt_backend_t.connect: a non-blocking connect(2). What goes wrong before
 * there is a socket (the address, the descriptor limit) is returned; what
 * goes wrong after, even at once, comes on the stream as RT_STREAM_CLOSED
 * from the loop (net__stream_connect_failed), the one way rt_stream.h
 * promises, and a notification a recording holds between passes. */
static int live_connect(void *ctx, const char *host, uint16_t port,
                        rt_actor_id_t owner, rt_stream_t **out) {
  net_live_t *live = ctx;
  struct sockaddr_storage ss;
  socklen_t len = 0;
  int err = resolve_any(host, port, &ss, &len);
  if (err < 0)
    return err;
  evutil_socket_t fd = socket(ss.ss_family, SOCK_STREAM, 0);
  if (fd < 0)
    return errno == EMFILE || errno == ENFILE ? RT_ELIMIT : RT_EIO;
  if (evutil_make_socket_nonblocking(fd) < 0 ||
      evutil_make_socket_closeonexec(fd) < 0) {
    close(fd);
    return RT_EIO;
  }
  int failed = 0; /* an errno: the connect failed before it began */
  if (connect(fd, (struct sockaddr *)&ss, len) < 0 && errno != EINPROGRESS &&
      errno != EINTR) /* EINTR: it goes on without us, as EINPROGRESS */
    failed = errno;
  err = net__stream_create(live, fd, true, out);
  if (err < 0) {
    close(fd);
    return err;
  }
  if (failed != 0)
    net__stream_connect_failed(*out, failed);
  rt_stream_set_owner(*out, owner);
  return RT_OK;
}

int net_live_connect(net_live_t *live, const char *host, uint16_t port,
                     rt_actor_id_t owner, rt_stream_t **out) {
  /* Through the seam, so that a tap (a recorder) sees the connect. */
  return rt_stream_connect(live->world, host, port, owner, out);
}
