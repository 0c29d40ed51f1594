/* game_cluster.c: the Cluster actor, the instance's one link to Redis.
 *
 * It owns one stream to Redis (rt_stream_connect) and pipelines commands on
 * it: each request waits in a ring, in the order sent, for its reply, which
 * hiredis's reader decodes (Redis answers in order). The states:
 *
 *   WAIT --timer--> CONNECTING --CONNECTED--> (AUTH) RENEW sent --ok--> UP
 *     ^                  |                          |                   |
 *     +---- backoff -----+--------- closed, error, timeout -------------+
 *
 * Only UP takes tickets. Leaving UP tells the Manager (CL_DOWN), which
 * answers its queued players matchmaking_unavailable: their tickets may
 * be gone (Redis restarted) and a JOIN_QUEUE again makes new ones. A renew
 * that finds this incarnation dead (game_cluster.h, (2)) fences it: the
 * Manager closes every player and room, and the Cluster draws a new
 * incarnation and joins again.
 */
#include "game_cluster.h"

#include "game_cluster_lua.h"
#include "game_int.h"
#include "game_proto.h"
#include "rt_assert.h"
#include "rt_stream.h"

#include <arpa/inet.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CLUSTER_MAILBOX_CAP 65536u
#define PENDING_MAX 4096u  /* requests awaiting replies */
#define OUT_MAX (1u << 20) /* bytes waiting to be written */
#define READ_CHUNK 16384u
#define GHOSTS_PER_MATCH "64"      /* dead tickets one match may purge */
#define INBOX_BATCH "64"           /* notes taken per poll */
#define LOST_MAX 1024u             /* dead owners' games being stored */
#define LOST_KEY_BASE (1ull << 62) /* Store keys of those, apart from rooms */

typedef enum { S_WAIT = 0, S_CONNECTING, S_REGISTERING, S_UP } state_t;

typedef enum {
  REQ_AUTH = 1,
  REQ_RENEW,
  REQ_MATCH,
  REQ_UNQUEUE,
  REQ_LOOKUP,
  REQ_CLAIM,
  REQ_POLL,
  REQ_STORED,
  REQ_FINISHED,
} req_kind_t;

typedef struct request {
  uint8_t kind;
  rt_time_ns sent_at;
  rt_actor_id_t reply_to; /* CLAIM: the room */
  uint64_t seq;           /* MATCH: the room's; CLAIM: the room's */
  game_cl_player_t who;   /* MATCH, LOOKUP */
} request_t;

typedef struct lost_wait {
  uint64_t key;
  char id[RT_SUBJECT_MAX];
  char room[32];
} lost_wait_t;

typedef struct cluster {
  game_t *g;
  rt_actor_id_t id;
  game_cluster_config_t cfg;
  char epoch[GAME_CLUSTER_ID_MAX + 16];
  rt_rng_t rng;
  state_t state;
  rt_stream_t *stream;
  redisReader *reader;
  uint8_t *out;
  size_t out_len, out_cap;
  request_t *ring; /* PENDING_MAX */
  uint32_t head, count;
  rt_time_ns backoff;
  rt_time_ns connect_at;    /* the connect began (CONNECTING) */
  bool renewed_once;        /* a lease was held since the start */
  bool epoch_up;            /* this incarnation has renewed */
  bool renew_out;           /* a renew waits for its reply */
  bool poll_out;
  uint64_t connect_timer, renew_timer, poll_timer;
  uint64_t match_seq;
  lost_wait_t lost[LOST_MAX];
  uint32_t lost_len;
  uint64_t lost_seq;
  game_cluster_stats_t stats;
} cluster_t;

static rt_world_t *cw(const cluster_t *c) { return c->g->world; }

/* ---- Configuration ------------------------------------------------------- */

void game_cluster_config_defaults(game_cluster_config_t *cfg) {
  memset(cfg, 0, sizeof(*cfg));
  snprintf(cfg->host, sizeof(cfg->host), "127.0.0.1");
  cfg->port = 6379;
  cfg->lease = 3 * RT_NS_PER_S;
  cfg->renew = RT_NS_PER_S;
  cfg->poll = 50 * RT_NS_PER_MS;
  cfg->op_timeout = 2 * RT_NS_PER_S;
  cfg->backoff_min = 100 * RT_NS_PER_MS;
  cfg->backoff_max = 5 * RT_NS_PER_S;
}

static int copy_part(char *out, size_t cap, const char *p, size_t n) {
  if (n >= cap)
    return RT_EINVAL;
  memcpy(out, p, n);
  out[n] = '\0';
  return RT_OK;
}

/* host[:port], where host is an IPv4 address, localhost or an IPv6
 * address in brackets ("[::1]:6379", as in any URL). */
static int parse_hostport(const char *p, const char *end,
                          game_cluster_config_t *cfg, const char **why) {
  const char *hb = p, *he, *colon;
  bool v6 = p < end && *p == '[';
  if (v6) {
    const char *close = memchr(p, ']', (size_t)(end - p));
    if (close == NULL) {
      *why = "the Redis URL's IPv6 host needs its closing ']'";
      return RT_EINVAL;
    }
    hb = p + 1;
    he = close;
    colon = close + 1 < end ? close + 1 : NULL;
    if (colon != NULL && *colon != ':') {
      *why = "the Redis URL has something after its IPv6 host";
      return RT_EINVAL;
    }
  } else {
    colon = memchr(p, ':', (size_t)(end - p));
    he = colon != NULL ? colon : end;
  }
  if (he == hb ||
      copy_part(cfg->host, sizeof(cfg->host), hb, (size_t)(he - hb)) < 0) {
    *why = "the Redis URL needs a host";
    return RT_EINVAL;
  }
  if (!v6 && strcmp(cfg->host, "localhost") == 0)
    snprintf(cfg->host, sizeof(cfg->host), "127.0.0.1");
  unsigned char addr[16];
  if (inet_pton(v6 ? AF_INET6 : AF_INET, cfg->host, addr) != 1) {
    *why = v6 ? "the Redis URL's IPv6 host is not an IPv6 address"
              : "the Redis host must be a numeric address (or localhost; "
                "IPv6 in brackets)";
    return RT_EINVAL;
  }
  cfg->port = 6379;
  if (colon != NULL) {
    uint32_t port = 0;
    const char *d = colon + 1;
    if (d == end) {
      *why = "the Redis URL has an empty port";
      return RT_EINVAL;
    }
    for (; d < end; d++) {
      if (*d < '0' || *d > '9' ||
          (port = port * 10 + (uint32_t)(*d - '0')) > 65535) {
        *why = "the Redis port must be a number from 1 to 65535";
        return RT_EINVAL;
      }
    }
    if (port == 0) {
      *why = "the Redis port must be a number from 1 to 65535";
      return RT_EINVAL;
    }
    cfg->port = (uint16_t)port;
  }
  return RT_OK;
}

int game_cluster_parse_url(const char *url, game_cluster_config_t *cfg,
                           const char **why) {
  static const char scheme[] = "redis://";
  if (url == NULL || strncmp(url, scheme, sizeof(scheme) - 1) != 0) {
    *why = "the Redis URL must start with redis://";
    return RT_EINVAL;
  }
  const char *p = url + sizeof(scheme) - 1;
  const char *end = p + strlen(p);
  if (end > p && end[-1] == '/')
    end--;
  cfg->user[0] = cfg->password[0] = '\0';
  const char *at = NULL;
  for (const char *q = p; q < end; q++)
    if (*q == '@')
      at = q;
  if (at != NULL) {
    const char *colon = memchr(p, ':', (size_t)(at - p));
    if (colon == NULL) {
      *why = "the Redis URL's credentials must be [user]:password@";
      return RT_EINVAL;
    }
    if (copy_part(cfg->user, sizeof(cfg->user), p, (size_t)(colon - p)) < 0 ||
        copy_part(cfg->password, sizeof(cfg->password), colon + 1,
                  (size_t)(at - colon - 1)) < 0) {
      *why = "the Redis URL's user or password is too long";
      return RT_EINVAL;
    }
    p = at + 1;
  }
  if (memchr(p, '/', (size_t)(end - p)) != NULL) {
    *why = "the Redis URL may not name a database or path";
    return RT_EINVAL;
  }
  return parse_hostport(p, end, cfg, why);
}

/* ---- Sending ------------------------------------------------------------- */

static void drop_link(cluster_t *c, const char *why);

static void flush(cluster_t *c) {
  size_t off = 0;
  while (off < c->out_len) {
    int64_t n = rt_stream_write(c->stream, c->out + off, c->out_len - off);
    if (n < 0) {
      c->out_len = 0;
      drop_link(c, "write failed");
      return;
    }
    if (n == 0)
      break; /* WRITABLE follows */
    off += (size_t)n;
  }
  memmove(c->out, c->out + off, c->out_len - off);
  c->out_len -= off;
}

static int append_out(cluster_t *c, const char *cmd, size_t len) {
  if (c->out_len + len > OUT_MAX)
    return RT_ELIMIT;
  if (c->out_len + len > c->out_cap) {
    size_t cap = c->out_cap == 0 ? 4096 : c->out_cap;
    while (cap < c->out_len + len)
      cap *= 2;
    uint8_t *b = realloc(c->out, cap);
    if (b == NULL)
      return RT_ENOMEM;
    c->out = b;
    c->out_cap = cap;
  }
  memcpy(c->out + c->out_len, cmd, len);
  c->out_len += len;
  return RT_OK;
}

/* Send one command (argv, NUL-terminated strings) awaiting the reply
 * described by *req (kind and whom to tell; copied before anything is
 * written, since a failed write fails every pending request at once). */
static int command(cluster_t *c, const request_t *req, int argc,
                   const char **argv) {
  if (c->stream == NULL || c->count == PENDING_MAX)
    return RT_ELIMIT;
  size_t lens[12];
  RT_WASSERT(cw(c), argc <= 12);
  for (int i = 0; i < argc; i++)
    lens[i] = strlen(argv[i]);
  char *cmd = NULL;
  int len = redisFormatCommandArgv(&cmd, argc, argv, lens);
  if (len < 0)
    return RT_ENOMEM;
  int err = append_out(c, cmd, (size_t)len);
  redisFreeCommand(cmd);
  if (err < 0)
    return err;
  request_t *r = &c->ring[(c->head + c->count) % PENDING_MAX];
  c->count++;
  *r = *req;
  r->sent_at = rt_now(cw(c));
  flush(c);
  return RT_OK;
}

static int eval(cluster_t *c, const request_t *req, const char *script,
                int nargs, const char **args) {
  const char *argv[12] = {"EVAL", script, "0"};
  for (int i = 0; i < nargs; i++)
    argv[3 + i] = args[i];
  return command(c, req, 3 + nargs, argv);
}

/* ---- Telling the other actors -------------------------------------------- */

static void to_manager(cluster_t *c, uint16_t tag, const void *data,
                       size_t len) {
  rt_msg_t m = rt_msg_make(tag, NULL, 0);
  if (data != NULL) {
    m.buf = rt_buf_copy(data, len);
    if (m.buf == NULL)
      return;
  }
  if (rt_send(cw(c), c->g->manager, &m) < 0) {
    rt_buf_unref(m.buf);
    rt_log(cw(c), RT_LOG_ERROR, "cluster.manager_full", "tag=%u",
           (unsigned)tag);
  }
}

static void tell_player(cluster_t *c, uint16_t tag, const game_cl_player_t *p) {
  to_manager(c, tag, p, sizeof(*p));
}

static void answer_claim(cluster_t *c, rt_actor_id_t room, uint64_t seq,
                         uint32_t answer) {
  game_cl_claim_t a = {.seq = seq, .answer = answer};
  rt_msg_t m = RT_MSG_OF(GAME_TAG_CL_CLAIMED, &a);
  (void)rt_send(cw(c), room, &m); /* a room that is gone needs nothing */
}

/* A request that will get no reply (the link dropped, or it was never
 * sent): whoever waits is told Redis could not say. */
static void fail_request(cluster_t *c, const request_t *r) {
  switch ((req_kind_t)r->kind) {
  case REQ_MATCH:
    c->stats.unavailable++;
    tell_player(c, GAME_TAG_CL_UNAVAILABLE, &r->who);
    return;
  case REQ_CLAIM:
    answer_claim(c, r->reply_to, r->seq, GAME_CL_CLAIM_RETRY);
    return;
  case REQ_RENEW: c->renew_out = false; return;
  case REQ_POLL: c->poll_out = false; return;
  default: return;
  }
}

/* ---- The link ------------------------------------------------------------ */

static void arm_connect(cluster_t *c) {
  rt_time_ns b = c->backoff;
  /* Jitter in [b/2, b]: instances that lost Redis together come back
   * spread out. */
  rt_time_ns delay = b / 2 + (rt_time_ns)rt_rng_range(&c->rng, 0, b / 2);
  c->backoff = b * 2 > c->cfg.backoff_max ? c->cfg.backoff_max : b * 2;
  (void)rt_timer_start(cw(c), c->id, delay, 0, GAME_TAG_TIMER_CL_CONNECT, 0,
                       &c->connect_timer);
}

static void drop_link(cluster_t *c, const char *why) {
  if (c->stream == NULL)
    return;
  bool was_up = c->state == S_UP;
  rt_log(cw(c), RT_LOG_WARN, "cluster.redis_lost", "reason=\"%s\" pending=%u",
         why, c->count);
  c->stats.redis_errors++;
  c->stats.up = 0;
  rt_stream_close(c->stream);
  c->stream = NULL;
  redisReaderFree(c->reader);
  c->reader = NULL;
  c->out_len = 0;
  c->state = S_WAIT;
  while (c->count > 0) {
    request_t r = c->ring[c->head];
    c->head = (c->head + 1) % PENDING_MAX;
    c->count--;
    fail_request(c, &r);
  }
  c->renew_out = c->poll_out = false;
  if (was_up)
    to_manager(c, GAME_TAG_CL_DOWN, NULL, 0);
  arm_connect(c);
}

static void send_renew(cluster_t *c) {
  if (c->renew_out)
    return;
  char ttl[24];
  snprintf(ttl, sizeof(ttl), "%" PRId64,
           (int64_t)(c->cfg.lease / RT_NS_PER_MS));
  const char *args[] = {c->epoch, c->cfg.public_url, ttl,
                        c->epoch_up ? "1" : "0"};
  request_t rq = {.kind = REQ_RENEW};
  /* Set first: a write that fails inside eval drops the link, which
   * clears it again. */
  c->renew_out = true;
  if (eval(c, &rq, LUA_RENEW, 4, args) < 0)
    c->renew_out = false;
}

static void on_connected(cluster_t *c) {
  c->state = S_REGISTERING;
  if (c->cfg.password[0] != '\0') {
    request_t rq = {.kind = REQ_AUTH};
    const char *with_user[3] = {"AUTH", c->cfg.user, c->cfg.password};
    const char *without[2] = {"AUTH", c->cfg.password};
    if (c->cfg.user[0] != '\0')
      (void)command(c, &rq, 3, with_user);
    else
      (void)command(c, &rq, 2, without);
  }
  send_renew(c);
}

static void connect_now(cluster_t *c) {
  c->connect_timer = 0;
  if (c->stream != NULL)
    return;
  c->reader = redisReaderCreate();
  if (c->reader == NULL) {
    arm_connect(c);
    return;
  }
  int err =
      rt_stream_connect(cw(c), c->cfg.host, c->cfg.port, c->id, &c->stream);
  if (err < 0) {
    rt_log(cw(c), RT_LOG_WARN, "cluster.connect", "host=%s port=%u err=%s",
           c->cfg.host, (unsigned)c->cfg.port, rt_err_name(err));
    redisReaderFree(c->reader);
    c->reader = NULL;
    c->stream = NULL;
    arm_connect(c);
    return;
  }
  c->state = S_CONNECTING;
  c->connect_at = rt_now(cw(c));
}

/* ---- Replies ------------------------------------------------------------- */

static const char *elem_str(const redisReply *r, size_t i) {
  if (r->type != REDIS_REPLY_ARRAY || i >= r->elements)
    return NULL;
  const redisReply *e = r->element[i];
  return e->type == REDIS_REPLY_STRING || e->type == REDIS_REPLY_STATUS ? e->str
                                                                        : NULL;
}

static long long elem_int(const redisReply *r, size_t i) {
  if (r->type != REDIS_REPLY_ARRAY || i >= r->elements)
    return -1;
  const redisReply *e = r->element[i];
  return e->type == REDIS_REPLY_INTEGER ? e->integer : -1;
}

static void copy_str(char *out, size_t cap, const char *s) {
  snprintf(out, cap, "%s", s != NULL ? s : "");
}

/* A game awaiting its row, in RENEW's reply: room, p1, n1, p2, n2, then
 * its owner's claimed reason, winner, s1, s2, finished at ('' if lost). */
#define UNSTORED_FIELDS 10u

static void record_lost(cluster_t *c, const redisReply *r, size_t at,
                        const char *who);

static void new_epoch(cluster_t *c);

static void on_fenced(cluster_t *c) {
  c->stats.fenced++;
  rt_log(cw(c), RT_LOG_ERROR, "cluster.fenced",
         "epoch=%s note=lease_lapsed_and_acted_on", c->epoch);
  to_manager(c, GAME_TAG_CL_FENCED, NULL, 0);
  new_epoch(c);
}

/* A new incarnation: nothing of the old one comes back. */
static void new_epoch(cluster_t *c) {
  c->epoch_up = false;
  uint64_t nonce = rt_rng_next(&c->rng);
  char *slash = strrchr(c->epoch, '/');
  if (slash != NULL)
    snprintf(slash + 1, 9, "%08" PRIx32, (uint32_t)nonce);
  rt_log(cw(c), RT_LOG_INFO, "cluster.epoch", "epoch=%s", c->epoch);
}

static void on_renew_reply(cluster_t *c, const request_t *rq,
                           const redisReply *r) {
  c->renew_out = false;
  if (elem_int(r, 0) == 1) {
    c->stats.lease_renewals++;
    c->epoch_up = true;
    /* Counted from when the renew left: Redis began the key's life no
     * earlier, so by this clock the lease lapses first. The Manager takes
     * nobody back into a game past it (game_manager.c, on_hello). A lost
     * message leaves it an earlier instant: never a longer lease. */
    rt_time_ns until = rq->sent_at + c->cfg.lease;
    to_manager(c, GAME_TAG_CL_LEASE, &until, sizeof(until));
    long long purged = elem_int(r, 1);
    if (purged > 0) {
      c->stats.tickets_purged += (uint64_t)purged;
      rt_log(cw(c), RT_LOG_INFO, "cluster.purged", "tickets=%lld", purged);
    }
    /* Games awaiting their rows: of the incarnations reaped here or by
     * another renew, lost or claimed by their owner before it died. */
    for (size_t at = 2; at + UNSTORED_FIELDS <= r->elements;
         at += UNSTORED_FIELDS)
      record_lost(c, r, at, NULL);
    if (c->state == S_REGISTERING) {
      c->state = S_UP;
      c->stats.up = 1;
      c->stats.connects++;
      if (c->renewed_once)
        c->stats.reconnects++;
      c->renewed_once = true;
      c->backoff = c->cfg.backoff_min;
      rt_log(cw(c), RT_LOG_INFO, "cluster.up", "epoch=%s redis=%s:%u", c->epoch,
             c->cfg.host, (unsigned)c->cfg.port);
    }
    return;
  }
  if (elem_int(r, 0) == 2) {
    /* Redis lost its data: nobody else knows our games or can end them,
     * and our players may be matched anew elsewhere. Our games end here
     * as server_lost (the Manager has the rooms store it), and we join
     * again under a new incarnation, as after fencing, but our players
     * stay connected: this instance is fine. */
    c->stats.data_lost++;
    rt_log(cw(c), RT_LOG_ERROR, "cluster.data_lost", "epoch=%s", c->epoch);
    to_manager(c, GAME_TAG_CL_RESET, NULL, 0);
    new_epoch(c);
    if (c->state == S_UP)
      to_manager(c, GAME_TAG_CL_DOWN, NULL, 0);
    c->state = S_REGISTERING;
    c->stats.up = 0;
    send_renew(c);
    return;
  }
  if (elem_int(r, 0) == 0) {
    on_fenced(c);
    if (c->state == S_UP)
      to_manager(c, GAME_TAG_CL_DOWN, NULL, 0);
    c->state = S_REGISTERING;
    c->stats.up = 0;
    send_renew(c); /* under the new incarnation */
    return;
  }
  drop_link(c, "unexpected renew reply");
}

static void on_match_reply(cluster_t *c, const request_t *rq,
                           const redisReply *r) {
  const char *what = elem_str(r, 0);
  if (what != NULL && strcmp(what, "queued") == 0) {
    long long purged = elem_int(r, 1);
    if (purged > 0)
      c->stats.tickets_purged += (uint64_t)purged;
    return; /* the player stays QUEUED */
  }
  if (what != NULL && strcmp(what, "matched") == 0) {
    game_cl_match_t m = {.seq = rq->seq};
    copy_str(m.seats[0].id, sizeof(m.seats[0].id), elem_str(r, 1));
    copy_str(m.seats[0].name, sizeof(m.seats[0].name), elem_str(r, 2));
    const char *opp_epoch = elem_str(r, 3);
    m.remote[0] = opp_epoch == NULL || strcmp(opp_epoch, c->epoch) != 0;
    m.seats[1] = rq->who;
    long long purged = elem_int(r, 4);
    if (purged > 0)
      c->stats.tickets_purged += (uint64_t)purged;
    if (m.remote[0])
      c->stats.matches_cross++;
    else
      c->stats.matches_local++;
    to_manager(c, GAME_TAG_CL_MATCHED, &m, sizeof(m));
    return;
  }
  if (what != NULL && strcmp(what, "playing") == 0) {
    const char *owner = elem_str(r, 2);
    if (owner != NULL && strcmp(owner, c->epoch) != 0) {
      game_cl_move_t mv;
      memset(&mv, 0, sizeof(mv));
      copy_str(mv.id, sizeof(mv.id), rq->who.id);
      copy_str(mv.room, sizeof(mv.room), elem_str(r, 1));
      copy_str(mv.url, sizeof(mv.url), elem_str(r, 3));
      to_manager(c, GAME_TAG_CL_MOVE, &mv, sizeof(mv));
      return;
    }
  }
  /* fenced, or anything else: this JOIN did not happen */
  c->stats.unavailable++;
  tell_player(c, GAME_TAG_CL_UNAVAILABLE, &rq->who);
}

/* A number RENEW returned (the owner's claim wrote it, game_cluster_lua.h);
 * 0 if it is not one. */
static long long elem_num(const redisReply *r, size_t i, long long lo,
                          long long hi) {
  const char *s = elem_str(r, i);
  if (s == NULL || s[0] == '\0')
    return 0;
  char *end;
  long long v = strtoll(s, &end, 10);
  return *end == '\0' && v >= lo && v <= hi ? v : 0;
}

/* Store a dead owner's game: its fields from reply r at `at` (room, p1,
 * n1, p2, n2; then, from RENEW only, the result the owner claimed, ''
 * when it claimed none). Claimed, its result is stored, as the owner
 * would have (it died between its claim and its row); else the game is
 * server_lost. `who`: the player to tell once it is stored (CL_LOST), or
 * NULL (a reaped instance's game: nobody waits). Once the Store holds it,
 * STORED tells Redis the game awaits its row no more (LUA_RENEW returns
 * the games awaiting one at every renew, to whichever instance renews:
 * the reply that carried one may be lost with its connection). The Store
 * keeps one result per room: another instance storing it too, or the
 * owner, changes nothing. A game already being stored here is not stored
 * again. */
static void record_lost(cluster_t *c, const redisReply *r, size_t at,
                        const char *who) {
  const char *room = elem_str(r, at);
  if (room == NULL)
    return;
  for (uint32_t i = 0; i < c->lost_len; i++)
    if (strcmp(c->lost[i].room, room) == 0 && (who == NULL ||
                                               strcmp(c->lost[i].id, who) == 0))
      return; /* in flight; its STORED (and CL_LOST) will come */
  game_result_t res;
  memset(&res, 0, sizeof(res));
  copy_str(res.room_id, sizeof(res.room_id), elem_str(r, at));
  copy_str(res.p1_id, sizeof(res.p1_id), elem_str(r, at + 1));
  copy_str(res.p1_name, sizeof(res.p1_name), elem_str(r, at + 2));
  copy_str(res.p2_id, sizeof(res.p2_id), elem_str(r, at + 3));
  copy_str(res.p2_name, sizeof(res.p2_name), elem_str(r, at + 4));
  const char *reason = who == NULL ? elem_str(r, at + 5) : NULL;
  bool claimed = reason != NULL && reason[0] != '\0';
  if (claimed) {
    copy_str(res.reason, sizeof(res.reason), reason);
    copy_str(res.winner, sizeof(res.winner), elem_str(r, at + 6));
    res.p1_score = (int32_t)elem_num(r, at + 7, 0, INT32_MAX);
    res.p2_score = (int32_t)elem_num(r, at + 8, 0, INT32_MAX);
    res.finished_at_s = elem_num(r, at + 9, 0, INT64_MAX);
  } else {
    copy_str(res.winner, sizeof(res.winner), "none");
    copy_str(res.reason, sizeof(res.reason), "server_lost");
    res.finished_at_s = rt_wall_ns(cw(c)) / RT_NS_PER_S;
  }
  if (c->lost_len == LOST_MAX) {
    rt_log(cw(c), RT_LOG_WARN, "cluster.lost_full", "room=%s", res.room_id);
    return; /* the next renew returns it, or the player's next reconnect */
  }
  if (claimed)
    rt_log(cw(c), RT_LOG_INFO, "cluster.claimed_end",
           "room=%s reason=%s winner=%s p1=%d p2=%d note=owner_died_unstored",
           res.room_id, res.reason, res.winner, res.p1_score, res.p2_score);
  else
    rt_log(cw(c), RT_LOG_INFO, "cluster.server_lost", "room=%s p1=%s p2=%s",
           res.room_id, res.p1_id, res.p2_id);
  uint64_t key = LOST_KEY_BASE + ++c->lost_seq;
  if (game_store_record(cw(c), c->g->store, &res, key) < 0)
    return;
  if (claimed)
    c->stats.claims_stored++;
  else
    c->stats.server_lost++;
  lost_wait_t *l = &c->lost[c->lost_len++];
  l->key = key;
  copy_str(l->id, sizeof(l->id), who != NULL ? who : "");
  copy_str(l->room, sizeof(l->room), res.room_id);
}

static void on_lookup_reply(cluster_t *c, const request_t *rq,
                            const redisReply *r) {
  const char *what = elem_str(r, 0);
  if (what == NULL)
    return;
  if (strcmp(what, "move") == 0) {
    game_cl_move_t mv;
    memset(&mv, 0, sizeof(mv));
    copy_str(mv.id, sizeof(mv.id), rq->who.id);
    copy_str(mv.room, sizeof(mv.room), elem_str(r, 1));
    copy_str(mv.url, sizeof(mv.url), elem_str(r, 2));
    to_manager(c, GAME_TAG_CL_MOVE, &mv, sizeof(mv));
  } else if (strcmp(what, "lost") == 0) {
    /* Stored before told. */
    record_lost(c, r, 1, rq->who.id);
  }
}

static void on_claim_reply(cluster_t *c, const request_t *rq,
                           const redisReply *r) {
  uint32_t answer = GAME_CL_CLAIM_RETRY;
  if (r->type == REDIS_REPLY_STRING && strcmp(r->str, "done") == 0)
    answer = GAME_CL_CLAIM_DONE;
  else if (r->type == REDIS_REPLY_STRING && strcmp(r->str, "lost") == 0)
    answer = GAME_CL_CLAIM_LOST;
  answer_claim(c, rq->reply_to, rq->seq, answer);
}

static void on_note(cluster_t *c, const char *note) {
  game_cl_player_t who;
  memset(&who, 0, sizeof(who));
  if (note[0] == 'T' && note[1] == '\t') {
    copy_str(who.id, sizeof(who.id), note + 2);
    tell_player(c, GAME_TAG_CL_TAKEN, &who);
    return;
  }
  if (note[0] != 'M' || note[1] != '\t')
    return;
  /* M \t player \t room \t url */
  game_cl_move_t mv;
  memset(&mv, 0, sizeof(mv));
  const char *p = note + 2, *t1 = strchr(p, '\t');
  const char *t2 = t1 != NULL ? strchr(t1 + 1, '\t') : NULL;
  if (t2 == NULL || (size_t)(t1 - p) >= sizeof(mv.id) ||
      (size_t)(t2 - t1 - 1) >= sizeof(mv.room))
    return;
  memcpy(mv.id, p, (size_t)(t1 - p));
  memcpy(mv.room, t1 + 1, (size_t)(t2 - t1 - 1));
  copy_str(mv.url, sizeof(mv.url), t2 + 1);
  to_manager(c, GAME_TAG_CL_MOVE, &mv, sizeof(mv));
}

static void on_poll_reply(cluster_t *c, const redisReply *r) {
  c->poll_out = false;
  if (r->type != REDIS_REPLY_ARRAY)
    return; /* nil: an empty inbox */
  for (size_t i = 0; i < r->elements; i++)
    if (r->element[i]->type == REDIS_REPLY_STRING)
      on_note(c, r->element[i]->str);
}

static void on_reply(cluster_t *c, const request_t *rq, const redisReply *r) {
  rt_time_ns waited = rt_now(cw(c)) - rq->sent_at;
  c->stats.round_trips++;
  c->stats.latency_sum_ns += (uint64_t)waited;
  if ((uint64_t)waited > c->stats.latency_max_ns)
    c->stats.latency_max_ns = (uint64_t)waited;
  if (r->type == REDIS_REPLY_ERROR) {
    c->stats.redis_errors++;
    rt_log(cw(c), RT_LOG_WARN, "cluster.redis_error",
           "kind=%u error=\"%.200s\"", (unsigned)rq->kind, r->str);
    if (rq->kind == REQ_AUTH || rq->kind == REQ_RENEW) {
      drop_link(c, "refused");
      return;
    }
    fail_request(c, rq);
    return;
  }
  switch ((req_kind_t)rq->kind) {
  case REQ_AUTH: return;
  case REQ_RENEW: on_renew_reply(c, rq, r); return;
  case REQ_MATCH: on_match_reply(c, rq, r); return;
  case REQ_UNQUEUE: return;
  case REQ_LOOKUP: on_lookup_reply(c, rq, r); return;
  case REQ_CLAIM: on_claim_reply(c, rq, r); return;
  case REQ_POLL: on_poll_reply(c, r); return;
  case REQ_STORED: return;
  case REQ_FINISHED: return;
  }
}

static void take_replies(cluster_t *c) {
  while (c->stream != NULL) {
    void *reply = NULL;
    if (redisReaderGetReply(c->reader, &reply) != REDIS_OK) {
      drop_link(c, "bad reply from Redis");
      return;
    }
    if (reply == NULL)
      return;
    if (c->count == 0) {
      freeReplyObject(reply);
      drop_link(c, "a reply nobody asked for");
      return;
    }
    request_t rq = c->ring[c->head];
    c->head = (c->head + 1) % PENDING_MAX;
    c->count--;
    on_reply(c, &rq, reply);
    freeReplyObject(reply);
  }
}

static void on_stream(cluster_t *c, const rt_msg_t *msg) {
  rt_stream_event_t ev;
  RT_MSG_GET(msg, rt_stream_event_t, &ev);
  if (c->stream == NULL || ev.id != c->stream->id)
    return;
  if ((ev.events & RT_STREAM_CONNECTED) && c->state == S_CONNECTING)
    on_connected(c);
  uint8_t buf[READ_CHUNK];
  for (;;) {
    if (c->stream == NULL)
      return;
    int64_t n = rt_stream_read(c->stream, buf, sizeof(buf));
    if (n == 0)
      break;
    if (n < 0) {
      drop_link(c, n == RT_EOF ? "Redis closed the connection"
                               : rt_err_name((int)n));
      return;
    }
    if (redisReaderFeed(c->reader, (const char *)buf, (size_t)n) != REDIS_OK) {
      drop_link(c, "bad reply from Redis");
      return;
    }
    take_replies(c);
  }
  if (c->stream != NULL && (ev.events & RT_STREAM_WRITABLE) && c->out_len > 0)
    flush(c);
}

/* ---- Requests from the game ---------------------------------------------- */

static bool up(const cluster_t *c) { return c->state == S_UP; }

static bool read_player(const rt_msg_t *msg, game_cl_player_t *out) {
  if (msg->buf == NULL || msg->buf->len != sizeof(*out))
    return false;
  memcpy(out, msg->buf->data, sizeof(*out));
  out->id[sizeof(out->id) - 1] = '\0';
  out->name[sizeof(out->name) - 1] = '\0';
  return true;
}

static rt_time_ns presence_ttl(const cluster_t *c) {
  const game_config_t *g = &c->g->cfg;
  return g->countdown + (rt_time_ns)g->game_seconds * g->tick +
         2 * g->reconnect_grace + 60 * RT_NS_PER_S;
}

static void on_join(cluster_t *c, const rt_msg_t *msg) {
  game_cl_player_t who;
  if (!read_player(msg, &who))
    return;
  uint64_t seq = c->match_seq + 1;
  char room[32], ttl[24];
  game__room_id(c->g, seq, room, sizeof(room));
  snprintf(ttl, sizeof(ttl), "%" PRId64,
           (int64_t)(presence_ttl(c) / RT_NS_PER_MS));
  const char *args[] = {who.id, who.name,         c->epoch,
                        room,   ttl,      GHOSTS_PER_MATCH, c->cfg.public_url};
  request_t rq = {.kind = REQ_MATCH, .seq = seq, .who = who};
  if (!up(c) || eval(c, &rq, LUA_MATCH, 7, args) < 0) {
    c->stats.unavailable++;
    tell_player(c, GAME_TAG_CL_UNAVAILABLE, &who);
    return;
  }
  c->match_seq = seq; /* a room id is never offered twice */
}

static void on_unqueue(cluster_t *c, const rt_msg_t *msg) {
  game_cl_player_t who;
  if (!read_player(msg, &who) || !up(c))
    return; /* down: CL_DOWN already dequeued everyone */
  const char *args[] = {who.id, c->epoch};
  request_t rq = {.kind = REQ_UNQUEUE};
  (void)eval(c, &rq, LUA_UNQUEUE, 2, args);
}

static void on_lookup(cluster_t *c, const rt_msg_t *msg) {
  game_cl_player_t who;
  if (!read_player(msg, &who) || !up(c))
    return;
  request_t rq = {.kind = REQ_LOOKUP, .who = who};
  const char *args[] = {who.id, c->epoch, c->cfg.public_url};
  (void)eval(c, &rq, LUA_LOOKUP, 3, args);
}

static void on_claim(cluster_t *c, const rt_msg_t *msg) {
  game_cl_claim_t cl;
  RT_MSG_GET(msg, game_cl_claim_t, &cl);
  game_result_t res;
  if (msg->buf == NULL || msg->buf->len != sizeof(res)) {
    /* A Room always sends its result: a bug. Never strand the room. */
    rt_log(cw(c), RT_LOG_ERROR, "cluster.bad_claim", "seq=%" PRIu64, cl.seq);
    answer_claim(c, msg->from, cl.seq, GAME_CL_CLAIM_RETRY);
    return;
  }
  memcpy(&res, msg->buf->data, sizeof(res));
  res.reason[sizeof(res.reason) - 1] = '\0';
  res.winner[sizeof(res.winner) - 1] = '\0';
  char room[32], s1[16], s2[16], at[24];
  game__room_id(c->g, cl.seq, room, sizeof(room));
  snprintf(s1, sizeof(s1), "%" PRId32, res.p1_score);
  snprintf(s2, sizeof(s2), "%" PRId32, res.p2_score);
  snprintf(at, sizeof(at), "%" PRId64, res.finished_at_s);
  request_t rq = {.kind = REQ_CLAIM, .reply_to = msg->from, .seq = cl.seq};
  const char *args[] = {room, c->epoch, res.reason, res.winner, s1, s2, at};
  if (up(c) && eval(c, &rq, LUA_CLAIM, 7, args) == RT_OK)
    return;
  /* Redis cannot say: the room asks again. Storing on the strength of our
   * own clock (the lease "still holds") raced a reaper: nobody else may
   * declare the game lost before the lease lapses, but our write may land
   * after it did, and the players would see a result the Store does not
   * hold (the swarm's seed 127 of the first cluster swarm). */
  answer_claim(c, msg->from, cl.seq, GAME_CL_CLAIM_RETRY);
}

/* A room's claimed result is in its Store: Redis need keep it no more. Not
 * up, the note is dropped; the record then waits, a day at most, and
 * should this incarnation die, its reaper stores the same row again,
 * which changes nothing. */
static void on_finished(cluster_t *c, const rt_msg_t *msg) {
  game_cl_claim_t cl;
  RT_MSG_GET(msg, game_cl_claim_t, &cl);
  if (!up(c))
    return;
  char room[32];
  game__room_id(c->g, cl.seq, room, sizeof(room));
  const char *args[] = {room};
  request_t rq = {.kind = REQ_FINISHED};
  (void)eval(c, &rq, LUA_FINISHED, 1, args);
}

static void on_recorded(cluster_t *c, const rt_msg_t *msg) {
  uint64_t key;
  RT_MSG_GET(msg, uint64_t, &key);
  for (uint32_t i = 0; i < c->lost_len; i++) {
    if (c->lost[i].key != key)
      continue;
    game_cl_lost_t lost;
    memset(&lost, 0, sizeof(lost));
    copy_str(lost.who.id, sizeof(lost.who.id), c->lost[i].id);
    copy_str(lost.room, sizeof(lost.room), c->lost[i].room);
    c->lost[i] = c->lost[--c->lost_len];
    /* Redis down: the next renew returns it again, and it is stored again
     * (one row all the same). */
    if (up(c)) {
      const char *args[] = {lost.room};
      request_t rq = {.kind = REQ_STORED};
      (void)eval(c, &rq, LUA_STORED, 1, args);
    }
    if (lost.who.id[0] != '\0')
      to_manager(c, GAME_TAG_CL_LOST, &lost, sizeof(lost));
    return;
  }
}

/* Every poll: read the inbox, and give up on a Redis that stopped
 * answering. */
static void on_poll(cluster_t *c) {
  if (c->stream == NULL)
    return;
  if (c->count > 0 &&
      rt_now(cw(c)) - c->ring[c->head].sent_at > c->cfg.op_timeout) {
    drop_link(c, "no reply within the op timeout");
    return;
  }
  /* A connect nobody answers (a host that drops the SYN) would wait for
   * TCP to give up, minutes later. */
  if (c->state == S_CONNECTING &&
      rt_now(cw(c)) - c->connect_at > c->cfg.op_timeout) {
    drop_link(c, "no connection within the op timeout");
    return;
  }
  if (!up(c) || c->poll_out)
    return;
  char key[GAME_CLUSTER_ID_MAX + 32];
  snprintf(key, sizeof(key), "oc:inbox:%s", c->epoch);
  const char *argv[] = {"LPOP", key, INBOX_BATCH};
  request_t rq = {.kind = REQ_POLL};
  c->poll_out = true; /* as for the renew */
  if (command(c, &rq, 3, argv) < 0)
    c->poll_out = false;
}

/* ---- The actor ----------------------------------------------------------- */

static void cluster_behaviour(rt_actor_t *self, const rt_msg_t *msg) {
  cluster_t *c = rt_state(self);
  switch (msg->tag) {
  case RT_TAG_STREAM: on_stream(c, msg); break;
  case GAME_TAG_CL_JOIN: on_join(c, msg); break;
  case GAME_TAG_CL_UNQUEUE: on_unqueue(c, msg); break;
  case GAME_TAG_CL_LOOKUP: on_lookup(c, msg); break;
  case GAME_TAG_CL_CLAIM: on_claim(c, msg); break;
  case GAME_TAG_CL_FINISHED: on_finished(c, msg); break;
  case GAME_TAG_STORE_RECORDED: on_recorded(c, msg); break;
  case GAME_TAG_TIMER_CL_CONNECT: connect_now(c); break;
  case GAME_TAG_TIMER_CL_RENEW:
    if (c->stream != NULL && c->state != S_CONNECTING)
      send_renew(c);
    break;
  case GAME_TAG_TIMER_CL_POLL: on_poll(c); break;
  default: break;
  }
}

static void cluster_on_stop(rt_actor_t *self, int reason) {
  (void)reason;
  cluster_t *c = rt_state(self);
  if (c->stream != NULL)
    rt_stream_close(c->stream);
  if (c->reader != NULL)
    redisReaderFree(c->reader);
  free(c->out);
  free(c->ring);
  c->g->cluster = 0;
  c->g->cluster_state = NULL;
  free(c);
}

int game_cluster_start(game_t *g, const game_cluster_config_t *cfg) {
  cluster_t *c = calloc(1, sizeof(*c));
  if (c == NULL)
    return RT_ENOMEM;
  c->ring = calloc(PENDING_MAX, sizeof(*c->ring));
  if (c->ring == NULL) {
    free(c);
    return RT_ENOMEM;
  }
  c->g = g;
  c->cfg = *cfg;
  c->backoff = cfg->backoff_min;
  rt_world_rng(g->world, RT_RNG_KEY(RT_RNG_SUB_WORLD, 0x636c), &c->rng);
  /* The incarnation mixes the start time in, as room ids do (game.c): a
   * restart with the same --seed is still a new one. */
  uint64_t mix = rt_rng_next(&c->rng) ^ (uint64_t)rt_wall_ns(g->world);
  uint64_t nonce = rt_splitmix64(&mix);
  if (cfg->instance_id[0] == '\0')
    snprintf(c->cfg.instance_id, sizeof(c->cfg.instance_id), "i%06" PRIx32,
             (uint32_t)(nonce >> 40));
  snprintf(c->epoch, sizeof(c->epoch), "%s/%08" PRIx32, c->cfg.instance_id,
           (uint32_t)nonce);
  rt_actor_spec_t spec = {.name = "cluster",
                          .behaviour = cluster_behaviour,
                          .on_stop = cluster_on_stop,
                          .state = c,
                          .mailbox_cap = CLUSTER_MAILBOX_CAP,
                          .overflow = RT_OVERFLOW_REJECT};
  int err = rt_spawn(g->world, &spec, &c->id);
  if (err < 0) {
    free(c->ring);
    free(c);
    return err;
  }
  g->cluster = c->id;
  g->cluster_state = c;
  rt_log(g->world, RT_LOG_INFO, "cluster.start",
         "instance=%s epoch=%s redis=%s:%u url=%s", c->cfg.instance_id,
         c->epoch, cfg->host, (unsigned)cfg->port, cfg->public_url);
  (void)rt_timer_start(g->world, c->id, cfg->renew, cfg->renew,
                       GAME_TAG_TIMER_CL_RENEW, 0, &c->renew_timer);
  (void)rt_timer_start(g->world, c->id, cfg->poll, cfg->poll,
                       GAME_TAG_TIMER_CL_POLL, 0, &c->poll_timer);
  (void)rt_timer_start(g->world, c->id, 0, 0, GAME_TAG_TIMER_CL_CONNECT, 0,
                       &c->connect_timer);
  return RT_OK;
}

bool game__cluster_up(const game_t *g) {
  const cluster_t *c = g->cluster_state;
  return c != NULL && c->state == S_UP;
}

int game_cluster_get_stats(const game_t *g, game_cluster_stats_t *out) {
  const cluster_t *c = g->cluster_state;
  if (c == NULL)
    return 0;
  *out = c->stats;
  return 1;
}

const char *game_cluster_epoch(const game_t *g) {
  const cluster_t *c = g->cluster_state;
  return c != NULL ? c->epoch : "";
}

game_cluster_step_t game_cluster_step_of(const char *script, size_t len) {
  static const struct {
    const char *text;
    size_t len;
    game_cluster_step_t step;
  } steps[] = {
      {LUA_RENEW, sizeof(LUA_RENEW) - 1, GAME_CLUSTER_STEP_RENEW},
      {LUA_MATCH, sizeof(LUA_MATCH) - 1, GAME_CLUSTER_STEP_MATCH},
      {LUA_UNQUEUE, sizeof(LUA_UNQUEUE) - 1, GAME_CLUSTER_STEP_UNQUEUE},
      {LUA_LOOKUP, sizeof(LUA_LOOKUP) - 1, GAME_CLUSTER_STEP_LOOKUP},
      {LUA_CLAIM, sizeof(LUA_CLAIM) - 1, GAME_CLUSTER_STEP_CLAIM},
      {LUA_STORED, sizeof(LUA_STORED) - 1, GAME_CLUSTER_STEP_STORED},
      {LUA_FINISHED, sizeof(LUA_FINISHED) - 1, GAME_CLUSTER_STEP_FINISHED},
  };
  for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++)
    if (len == steps[i].len && memcmp(script, steps[i].text, len) == 0)
      return steps[i].step;
  return GAME_CLUSTER_STEP_OTHER;
}
