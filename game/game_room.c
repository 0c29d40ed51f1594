/* game_room.c: one match, as an actor.
 *
 * Phases and the functions that move between them:
 *
 *   COUNTDOWN --on_countdown()--> RUNNING --finish()--> FINISHING
 *       |                            |                      |
 *       +--------finish()------------+     on_recorded() --> (stop)
 *
 * Invariants:
 *  (1) A click scores only in RUNNING; a score is the sum of its accepted
 *      clicks, 2 points while now < bonus_until, else 1.
 *  (2) At most one golden cookie is active; the first COOKIE_CLICK while
 *      it is active claims it; later ones in the same instant lose.
 *  (3) The room ends exactly once (finish() is idempotent) and sends
 *      GAME_OVER only after the Store acknowledged the result.
 *  (4) The room never waits for a client: every send is non-blocking, and
 *      what a full mailbox refuses is handled by its delivery class.
 *  (5) Each tick is delivered within one tick of its due time (a checker
 *      reads tick_late_max; a room that waited would show up there).
 * game__room_check (at the end) checks them, recomputing every score from
 * the seat's own list of claims, apart from the scoring path.
 */
#include "game_int.h"

#include "game_bucket.h"
#include "game_proto.h"
#include "rt_assert.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROOM_MAILBOX_CAP 1024u
#define RECORD_RESEND_NS (5 * RT_NS_PER_S)
#define SEND_RETRY_NS (50 * RT_NS_PER_MS)
#define ROOM_AUDIT_CLAIMS_MAX 64u /* claims a seat's audit remembers */

typedef enum { PHASE_COUNTDOWN = 0, PHASE_RUNNING, PHASE_FINISHING } phase_t;

/* A click reads info.client (info's last field) and the fields after it:
 * together, in two lines; the claims, read once in a while, come last. */
typedef struct seat {
  game_seat_info_t info;
  int32_t score;
  rt_time_ns bonus_until;
  game_bucket_t clicks;     /* PROTOCOL.md's human rate */
  rt_time_ns rate_error_at; /* last rate_limited ERROR; -1: never */
  uint64_t grace_timer;
  /* Audit, for game__room_check: Invariant (1) recomputed from the claims
   * this seat won, not from bonus_until. */
  uint32_t audit_claims_len;
  bool audit_overflow; /* more claims than remembered: audit skipped */
  int32_t audit_score;
  uint32_t clicks_scored;
  rt_time_ns audit_claims[ROOM_AUDIT_CLAIMS_MAX];
} seat_t;

typedef struct room {
  game_t *g;
  rt_actor_id_t id;
  uint64_t seq;
  char room_id[32];
  bool detached; /* LOST_HERE: the Manager let it go (game_t.rooms_detached) */
  seat_t seats[2];
  phase_t phase;
  int32_t time_remaining;
  rt_rng_t rng;
  bool golden_active;
  double golden_x, golden_y;
  rt_time_ns golden_at;
  rt_time_ns countdown_end;
  rt_time_ns ends_at;       /* RUNNING: when the last tick ends the game */
  rt_time_ns started_at;    /* ROOM_START: the countdown began; -1 before */
  rt_time_ns run_at;        /* the countdown ended; -1 before */
  uint32_t ticks_counted;   /* ticks since run_at, missed ones included */
  rt_time_ns tick_late_max; /* Invariant (5) */
  uint64_t countdown_timer, tick_timer, golden_timer, resend_timer;
  game_end_reason_t end_reason;
  game_result_t result;
  bool recorded;
  bool ended_sent;
  bool claiming;        /* clustered: asked the Cluster for the end */
  uint64_t claim_timer; /* ask again (Redis could not say) */
} room_t;

static const char end_reason_names[GAME_END_REASON_COUNT_][24] = {
    "time", "quit", "opponent_disconnected"};

static rt_world_t *room_world(const room_t *r) { return r->g->world; }

static game_scores_t scores(const room_t *r) {
  return (game_scores_t){r->seats[0].score, r->seats[1].score};
}

/* ---- Sending ------------------------------------------------------------- */

int game_send_frame(game_t *g, rt_actor_id_t client, uint16_t tag,
                    rt_buf_t *frame) {
  if (client == 0 || frame == NULL)
    return RT_EINVAL;
  rt_msg_t m = rt_msg_make(tag, NULL, 0);
  m.buf = rt_buf_ref(frame);
  int rc = rt_send(g->world, client, &m);
  if (rc >= 0)
    return RT_OK;
  rt_buf_unref(m.buf);
  if (rc == RT_EFULL && tag != GAME_TAG_OUT_DROP && tag != GAME_TAG_OUT_TICK) {
    /* Invariant (4): never wait. A client this far behind is gone. */
    g->stats.kicks[GAME_KICK_MAILBOX_FULL]++;
    rt_log(g->world, RT_LOG_WARN, "client.kick",
           "client=%" PRIu64 " reason=mailbox_full", client);
    rt_stop(g->world, client, RT_REASON_USER);
  }
  return rc;
}

void game__over_unsent(game_t *g, const char *id, rt_actor_id_t client,
                       const rt_buf_t *frame) {
  g->stats.overs_unsent++;
  rt_buf_t *buf = rt_buf_create(sizeof(game_missed_t) + frame->len);
  if (buf == NULL)
    return;
  game_missed_t h;
  memset(&h, 0, sizeof(h));
  snprintf(h.id, sizeof(h.id), "%s", id);
  h.client = client;
  memcpy(buf->data, &h, sizeof(h));
  memcpy(buf->data + sizeof(h), frame->data, frame->len);
  rt_msg_t m = rt_msg_make(GAME_TAG_MISSED, NULL, 0);
  m.buf = buf;
  if (rt_send(g->world, g->manager, &m) < 0) {
    rt_buf_unref(buf);
    rt_log(g->world, RT_LOG_WARN, "manager.missed_refused", "player=%s", id);
  }
}

/* The opponent's two frames of a click, OPPONENT_CLICK and UPDATE, in one
 * message: one delivery to its connection instead of two. Takes the
 * UPDATE. A full mailbox refuses the message (the Client's mailbox rejects
 * this tag rather than dropping it), and the drop is counted here, two
 * frames, so that every droppable frame is still accounted for as
 * delivered, dropped or replaced. */
static void send_clicked(room_t *r, int role, int32_t points,
                         rt_buf_t *update) {
  rt_actor_id_t client = r->seats[role].info.client;
  if (client == 0 || update == NULL) {
    rt_buf_unref(update);
    return;
  }
  uint8_t p = (uint8_t)points;
  rt_msg_t m = rt_msg_make(GAME_TAG_OUT_CLICKED, &p, sizeof(p));
  m.buf = update;
  int rc = rt_send(r->g->world, client, &m);
  if (rc >= 0)
    return; /* the runtime has the UPDATE */
  rt_buf_unref(update);
  if (rc == RT_EFULL) {
    r->g->stats.out_dropped += 2;
    rt_log(room_world(r), RT_LOG_DEBUG, "client.drop",
           "client=%" PRIu64 " reason=mailbox_full frames=2", client);
  }
}

/* Send to one seat; takes the frame. */
static void send_to(room_t *r, int role, uint16_t tag, rt_buf_t *frame) {
  game_send_frame(r->g, r->seats[role].info.client, tag, frame);
  rt_buf_unref(frame);
}

/* The same bytes to both seats: encoded once, shared. Takes the frame. */
static void send_both(room_t *r, uint16_t tag, rt_buf_t *frame) {
  game_send_frame(r->g, r->seats[0].info.client, tag, frame);
  game_send_frame(r->g, r->seats[1].info.client, tag, frame);
  rt_buf_unref(frame);
}

static void send_error(room_t *r, int role, const char *code,
                       const char *message) {
  r->g->stats.errors_sent++;
  send_to(r, role, GAME_TAG_OUT_MUST, game_proto_error(code, message));
}

static void send_start(room_t *r, int role, bool resumed) {
  const seat_t *other = &r->seats[1 - role];
  rt_time_ns left = r->phase == PHASE_COUNTDOWN
                        ? r->countdown_end - rt_now(room_world(r))
                        : 0;
  double countdown_s = left > 0 ? (double)(left / RT_NS_PER_MS) / 1000.0 : 0;
  send_to(r, role, GAME_TAG_OUT_MUST,
          game_proto_game_start(other->info.id, role == 0 ? "p1" : "p2",
                                r->room_id, r->time_remaining, scores(r),
                                r->seats[0].info.name, r->seats[1].info.name,
                                resumed, countdown_s));
}

static void send_state(room_t *r) {
  send_both(r, GAME_TAG_OUT_TICK,
            game_proto_tick(r->time_remaining, scores(r), r->seats[0].info.name,
                            r->seats[1].info.name));
}

/* ---- Timers -------------------------------------------------------------- */

static void cancel(room_t *r, uint64_t *timer) {
  if (*timer != 0)
    (void)rt_timer_cancel(room_world(r), *timer);
  *timer = 0;
}

static void start_timer(room_t *r, uint64_t *timer, rt_time_ns delay,
                        rt_time_ns period, uint16_t tag, uint64_t data) {
  cancel(r, timer);
  int err =
      rt_timer_start(room_world(r), r->id, delay, period, tag, data, timer);
  RT_WASSERT(room_world(r), err == RT_OK); /* a room without timers hangs */
}

static void arm_golden(room_t *r) {
  const game_config_t *c = &r->g->cfg;
  int64_t s = rt_rng_range(&r->rng, c->golden_min_s, c->golden_max_s);
  start_timer(r, &r->golden_timer, s * RT_NS_PER_S, 0, GAME_TAG_TIMER_GOLDEN,
              0);
}

/* ---- Ending: Invariant (3) ----------------------------------------------- */

static void send_record(room_t *r) {
  if (game_store_record(room_world(r), r->g->store, &r->result, r->seq) < 0)
    rt_log(room_world(r), RT_LOG_WARN, "room.record_refused",
           "room=%s action=resend", r->room_id);
  /* Resent until acknowledged; the Store stores a game once (its id). */
  start_timer(r, &r->resend_timer, RECORD_RESEND_NS, 0,
              GAME_TAG_TIMER_SEND_RETRY, 0);
}

/* ---- Clustered ends (game_cluster.h, guarantee (2)) ---------------------- */

#define CLAIM_RETRY_NS RT_NS_PER_S

/* The claim carries the result: Redis keeps it until the row is in, so a
 * reaper can store it should this instance die first (LUA_CLAIM). */
static void send_claim(room_t *r) {
  r->claiming = true;
  game_cl_claim_t cl = {.seq = r->seq};
  rt_msg_t m = RT_MSG_OF(GAME_TAG_CL_CLAIM, &cl);
  m.buf = rt_buf_copy(&r->result, sizeof(r->result));
  if (m.buf == NULL || rt_send(room_world(r), r->g->cluster, &m) < 0) {
    rt_buf_unref(m.buf);
    start_timer(r, &r->claim_timer, CLAIM_RETRY_NS, 0, GAME_TAG_TIMER_CL_CLAIM,
                0);
  }
}

/* The claimed result's row is in: Redis may forget it (LUA_FINISHED). A
 * note the Cluster cannot take costs a reaper's harmless second write. */
static void send_finished(room_t *r) {
  game_cl_claim_t cl = {.seq = r->seq};
  rt_msg_t m = RT_MSG_OF(GAME_TAG_CL_FINISHED, &cl);
  (void)rt_send(room_world(r), r->g->cluster, &m);
}

static void complete(room_t *r);

static void on_claimed(room_t *r, const rt_msg_t *msg) {
  game_cl_claim_t a;
  RT_MSG_GET(msg, game_cl_claim_t, &a);
  if (!r->claiming || a.seq != r->seq)
    return;
  r->claiming = false;
  switch (a.answer) {
  case GAME_CL_CLAIM_DONE: send_record(r); return;
  case GAME_CL_CLAIM_LOST:
    /* Declared lost elsewhere (this owner was taken for dead): the players
     * hear what everyone else heard, and the result there stands. */
    rt_log(room_world(r), RT_LOG_WARN, "room.server_lost", "room=%s",
           r->room_id);
    snprintf(r->result.winner, sizeof(r->result.winner), "none");
    snprintf(r->result.reason, sizeof(r->result.reason), "server_lost");
    r->recorded = true;
    complete(r);
    return;
  default:
    start_timer(r, &r->claim_timer, CLAIM_RETRY_NS, 0, GAME_TAG_TIMER_CL_CLAIM,
                0);
    return;
  }
}

static void on_claim_retry(room_t *r) {
  r->claim_timer = 0;
  if (r->phase == PHASE_FINISHING && !r->recorded)
    send_claim(r);
}

/* This instance was fenced: its games were declared lost elsewhere. Stop,
 * storing nothing; the Manager forgets the room itself. */
static void on_fenced(room_t *r) {
  rt_log(room_world(r), RT_LOG_WARN, "room.fenced", "room=%s", r->room_id);
  r->ended_sent = true; /* not a lost room: it was taken from us */
  r->g->stats.rooms_fenced++;
  rt_stop(room_world(r), r->id, RT_REASON_NORMAL);
}

static void fill_result(room_t *r, game_end_reason_t reason, int loser);

static void finish(room_t *r, game_end_reason_t reason, int loser) {
  if (r->phase == PHASE_FINISHING)
    return;
  fill_result(r, reason, loser);
  if (r->g->cluster != 0)
    send_claim(r); /* game_cluster.h, (2): the end must be ours */
  else
    send_record(r);
}

/* The game ends now: its timers stop and its result is set. */
static void fill_result(room_t *r, game_end_reason_t reason, int loser) {
  r->phase = PHASE_FINISHING;
  r->end_reason = reason;
  /* Invariant (2): no cookie outside the game. Left active, a player who
   * resumes while the result is being stored would get a COOKIE_SPAWN
   * (on_back) for a game that is over. */
  r->golden_active = false;
  cancel(r, &r->countdown_timer);
  cancel(r, &r->tick_timer);
  cancel(r, &r->golden_timer);
  cancel(r, &r->seats[0].grace_timer);
  cancel(r, &r->seats[1].grace_timer);
  game_result_t *res = &r->result;
  memset(res, 0, sizeof(*res));
  snprintf(res->room_id, sizeof(res->room_id), "%s", r->room_id);
  res->finished_at_s = rt_wall_ns(room_world(r)) / RT_NS_PER_S;
  snprintf(res->p1_id, sizeof(res->p1_id), "%s", r->seats[0].info.id);
  snprintf(res->p1_name, sizeof(res->p1_name), "%s", r->seats[0].info.name);
  snprintf(res->p2_id, sizeof(res->p2_id), "%s", r->seats[1].info.id);
  snprintf(res->p2_name, sizeof(res->p2_name), "%s", r->seats[1].info.name);
  res->p1_score = r->seats[0].score;
  res->p2_score = r->seats[1].score;
  const char *winner = "draw";
  if (reason != GAME_END_TIME)
    winner = r->seats[1 - loser].info.id;
  else if (res->p1_score != res->p2_score)
    winner = r->seats[res->p1_score > res->p2_score ? 0 : 1].info.id;
  snprintf(res->winner, sizeof(res->winner), "%s", winner);
  snprintf(res->reason, sizeof(res->reason), "%s", end_reason_names[reason]);
  rt_log(room_world(r), RT_LOG_INFO, "room.finish",
         "room=%s reason=%s p1=%d p2=%d winner=%s", r->room_id, res->reason,
         res->p1_score, res->p2_score, res->winner);
}

/* Redis lost this game's record (a restart without its data) while it ran
 * or waited to claim its end: nobody else can end it now, and its end can
 * no longer be proven ours, so it ends server_lost, stored here. A result
 * already being stored (the claim was won) stands. */
static void on_lost_here(room_t *r) {
  if (!r->detached) {
    r->detached = true; /* the Manager let it go, whatever comes next */
    r->g->rooms_detached++;
  }
  if (r->recorded || (r->phase == PHASE_FINISHING && !r->claiming &&
                      r->claim_timer == 0))
    return;
  if (r->phase != PHASE_FINISHING)
    fill_result(r, GAME_END_TIME, 0);
  cancel(r, &r->claim_timer);
  r->claiming = false;
  snprintf(r->result.winner, sizeof(r->result.winner), "none");
  snprintf(r->result.reason, sizeof(r->result.reason), "server_lost");
  r->result.p1_score = r->result.p2_score = 0; /* as a reaper stores it */
  rt_log(room_world(r), RT_LOG_WARN, "room.lost_here", "room=%s", r->room_id);
  send_record(r);
}

static void tell_manager_ended(room_t *r, rt_buf_t *over) {
  game_ended_t e = {.room = r->id,
                    .room_seq = r->seq,
                    .told = {r->seats[0].info.client, r->seats[1].info.client}};
  rt_msg_t m = RT_MSG_OF(GAME_TAG_ENDED, &e);
  m.buf = rt_buf_ref(over);
  if (rt_send(room_world(r), r->g->manager, &m) == RT_EFULL) {
    rt_buf_unref(m.buf);
    start_timer(r, &r->resend_timer, SEND_RETRY_NS, 0,
                GAME_TAG_TIMER_SEND_RETRY, 0);
    return;
  }
  r->ended_sent = true;
}

/* The result is on disk: tell the Manager first (so a JOIN_QUEUE sent after
 * seeing GAME_OVER finds the player free), then the players, then stop. */
static void complete(room_t *r) {
  /* A game lost with its server counts nothing, whoever stored it (the
   * reaper, a lookup, or this room after Redis lost its data): 0:0, as
   * the Store's row and the history show it. */
  bool lost = strcmp(r->result.reason, "server_lost") == 0;
  rt_buf_t *over =
      game_proto_game_over(r->result.winner, r->result.reason,
                           lost ? (game_scores_t){0} : scores(r), r->room_id);
  tell_manager_ended(r, over);
  if (!r->ended_sent) {
    rt_buf_unref(over);
    return; /* the retry timer calls again */
  }
  if (strcmp(r->result.reason, "server_lost") != 0)
    r->g->stats.rooms_finished[r->end_reason]++;
  else
    r->g->stats.rooms_server_lost++;
  /* A game Redis declared lost elsewhere is told by the cluster wherever
   * its players come back (LUA_LOOKUP, once each): this room's word on it
   * is sent as ever, but never kept as well, or a player would hear it
   * twice. */
  bool keep = !(lost && r->g->cluster != 0 && !r->detached);
  for (int role = 0; role < 2; role++) {
    rt_actor_id_t client = r->seats[role].info.client;
    /* A connection too far behind to take it (stopped for that) never
     * sends it: the Manager keeps it for the player (its Invariant (6)),
     * as for a connection that closes with it still queued. */
    if (!keep)
      game_send_frame(r->g, client, GAME_TAG_OUT_MUST, over);
    else if (client != 0 &&
             game_send_frame(r->g, client, GAME_TAG_OUT_OVER, over) < 0)
      game__over_unsent(r->g, r->seats[role].info.id, client, over);
    game_room_done_t done = {.room = r->id};
    rt_msg_t m = RT_MSG_OF(GAME_TAG_ROOM_DONE, &done);
    if (client != 0)
      (void)rt_send(room_world(r), client, &m);
  }
  rt_buf_unref(over);
  rt_stop(room_world(r), r->id, RT_REASON_NORMAL);
}

static void on_recorded(room_t *r, const rt_msg_t *msg) {
  uint64_t key;
  RT_MSG_GET(msg, uint64_t, &key);
  if (r->phase != PHASE_FINISHING || key != r->seq || r->recorded)
    return; /* a duplicate acknowledgement of a resent record */
  r->recorded = true;
  cancel(r, &r->resend_timer);
  if (r->g->cluster != 0 && strcmp(r->result.reason, "server_lost") != 0)
    send_finished(r);
  complete(r);
}

static void on_send_retry(room_t *r) {
  r->resend_timer = 0;
  if (!r->recorded && r->claiming)
    return; /* the claim's answer sends it */
  if (!r->recorded)
    send_record(r);
  else if (!r->ended_sent)
    complete(r);
}

/* ---- Play ---------------------------------------------------------------- */

/* The audit's own rule: 2 points inside any [claim, claim + bonus) of this
 * seat, else 1. */
static void audit_click(room_t *r, seat_t *s, rt_time_ns now) {
  int32_t points = 1;
  for (uint32_t i = 0; i < s->audit_claims_len; i++)
    if (s->audit_claims[i] <= now && now < s->audit_claims[i] + r->g->cfg.bonus)
      points = 2;
  s->audit_score += points;
  s->clicks_scored++;
}

static bool allow_click(room_t *r, seat_t *s, int role) {
  const game_config_t *c = &r->g->cfg;
  if (c->click_rate == 0)
    return true;
  rt_time_ns now = rt_now(room_world(r));
  if (game_bucket_take(&s->clicks, c->click_rate, c->click_burst, now))
    return true;
  r->g->stats.clicks_rate_limited++;
  if (s->rate_error_at < 0 || now - s->rate_error_at >= RT_NS_PER_S) {
    s->rate_error_at = now;
    send_error(r, role, "rate_limited", "too many clicks");
  }
  return false;
}

static void on_click(room_t *r, const rt_msg_t *msg) {
  game_click_t c;
  RT_MSG_GET(msg, game_click_t, &c);
  int role = c.role == 1 ? 1 : 0;
  seat_t *s = &r->seats[role];
  if (msg->from != s->info.client)
    return; /* not (or no longer) this seat's connection */
  if (r->phase == PHASE_FINISHING) {
    send_error(r, role, "not_in_game", "the game is over");
    return;
  }
  if (!allow_click(r, s, role))
    return;
  int64_t seq = c.has_seq ? c.seq : -1;
  if (r->phase == PHASE_COUNTDOWN) {
    /* Invariant (1): acknowledged, not scored. */
    r->g->stats.clicks_countdown++;
    send_to(r, role, GAME_TAG_OUT_DROP,
            game_proto_click_update_form(&r->g->forms, scores(r), seq));
    return;
  }
  rt_time_ns now = rt_now(room_world(r));
  int32_t points = now < s->bonus_until ? 2 : 1;
  s->score += points;
  r->g->stats.clicks_scored++;
  audit_click(r, s, now);
  send_clicked(r, 1 - role, points,
               game_proto_click_update_form(&r->g->forms, scores(r), -1));
  send_to(r, role, GAME_TAG_OUT_DROP,
          game_proto_click_update_form(&r->g->forms, scores(r), seq));
}

static void on_cookie_click(room_t *r, const rt_msg_t *msg) {
  game_role_t c;
  RT_MSG_GET(msg, game_role_t, &c);
  int role = c.role == 1 ? 1 : 0;
  seat_t *s = &r->seats[role];
  if (msg->from != s->info.client)
    return;
  if (r->phase == PHASE_FINISHING) {
    send_error(r, role, "not_in_game", "the game is over");
    return;
  }
  if (r->phase != PHASE_RUNNING)
    return;
  if (!r->golden_active) {
    /* Invariant (2): someone was first. */
    if (r->golden_at == rt_now(room_world(r)))
      r->g->stats.golden_contested++;
    return;
  }
  r->golden_active = false;
  r->golden_at = rt_now(room_world(r));
  s->bonus_until = rt_now(room_world(r)) + r->g->cfg.bonus;
  r->g->stats.golden_claims++;
  if (s->audit_claims_len < ROOM_AUDIT_CLAIMS_MAX)
    s->audit_claims[s->audit_claims_len++] = rt_now(room_world(r));
  else
    s->audit_overflow = true;
  send_both(r, GAME_TAG_OUT_MUST,
            game_proto_golden_claim(s->info.id, scores(r)));
}

static void on_quit(room_t *r, const rt_msg_t *msg) {
  game_role_t c;
  RT_MSG_GET(msg, game_role_t, &c);
  int role = c.role == 1 ? 1 : 0;
  if (msg->from != r->seats[role].info.client)
    return;
  if (r->phase == PHASE_FINISHING) {
    send_error(r, role, "not_in_game", "the game is over");
    return;
  }
  finish(r, GAME_END_QUIT, role);
}

/* The Manager has told both clients their room: start. */
static void on_start(room_t *r) {
  rt_log(room_world(r), RT_LOG_INFO, "room.start", "room=%s p1=%s p2=%s",
         r->room_id, r->seats[0].info.id, r->seats[1].info.id);
  r->started_at = rt_now(room_world(r));
  r->countdown_end = rt_now(room_world(r)) + r->g->cfg.countdown;
  send_start(r, 0, false);
  send_start(r, 1, false);
  send_state(r); /* the full state once, as the original did */
  start_timer(r, &r->countdown_timer, r->g->cfg.countdown, 0,
              GAME_TAG_TIMER_COUNTDOWN, 0);
  /* A seat with no connection yet (clustered: the player is being moved
   * here) is a player away: back within the grace, or gone. */
  for (int role = 0; role < 2; role++)
    if (r->seats[role].info.client == 0)
      start_timer(r, &r->seats[role].grace_timer, r->g->cfg.reconnect_grace, 0,
                  GAME_TAG_TIMER_GRACE, (uint64_t)role);
}

static void on_countdown(room_t *r) {
  r->countdown_timer = 0;
  if (r->phase != PHASE_COUNTDOWN)
    return;
  r->phase = PHASE_RUNNING;
  const game_config_t *c = &r->g->cfg;
  r->run_at = rt_now(room_world(r));
  r->ends_at = rt_now(room_world(r)) + (rt_time_ns)c->game_seconds * c->tick;
  start_timer(r, &r->tick_timer, c->tick, c->tick, GAME_TAG_TIMER_TICK, 0);
  arm_golden(r);
}

static void on_tick(room_t *r, const rt_msg_t *msg) {
  if (r->phase != PHASE_RUNNING)
    return;
  /* A live world under load may coalesce late ticks: count them all, so a
   * game never runs longer than its length. */
  rt_timer_event_t ev;
  RT_MSG_GET(msg, rt_timer_event_t, &ev);
  /* Invariant (5): how late this firing (the latest one due) arrived. */
  r->ticks_counted += 1 + (ev.missed < 3600 ? ev.missed : 3600);
  rt_time_ns late = rt_now(room_world(r)) -
                    (r->run_at + (rt_time_ns)r->ticks_counted * r->g->cfg.tick);
  if (late > r->tick_late_max)
    r->tick_late_max = late;
  r->time_remaining -= 1 + (int32_t)(ev.missed < 3600 ? ev.missed : 3600);
  if (r->time_remaining <= 0) {
    r->time_remaining = 0;
    finish(r, GAME_END_TIME, -1);
    return;
  }
  send_state(r);
}

static void on_golden(room_t *r) {
  r->golden_timer = 0;
  /* A spawn due the instant the game ends may fire before the last tick
   * (a periodic timer takes a new sequence each period, so it sorts after
   * a one-shot started earlier): the game is over then, no cookie. */
  if (r->phase != PHASE_RUNNING || rt_now(room_world(r)) >= r->ends_at)
    return;
  r->golden_active = true; /* a spawn while one is active moves it */
  r->golden_x = 5.0 + 90.0 * rt_rng_double(&r->rng);
  r->golden_y = 5.0 + 90.0 * rt_rng_double(&r->rng);
  r->g->stats.golden_spawns++;
  send_both(r, GAME_TAG_OUT_MUST,
            game_proto_cookie_spawn(r->golden_x, r->golden_y));
  arm_golden(r);
}

/* ---- Seats: disconnect and resume ---------------------------------------- */

static void on_left(room_t *r, const rt_msg_t *msg) {
  game_seat_t s;
  RT_MSG_GET(msg, game_seat_t, &s);
  int role = s.role == 1 ? 1 : 0;
  r->seats[role].info.client = 0;
  if (r->phase == PHASE_FINISHING)
    return;
  rt_log(room_world(r), RT_LOG_INFO, "room.left", "room=%s role=p%d",
         r->room_id, role + 1);
  start_timer(r, &r->seats[role].grace_timer, r->g->cfg.reconnect_grace, 0,
              GAME_TAG_TIMER_GRACE, (uint64_t)role);
}

static void on_back(room_t *r, const rt_msg_t *msg) {
  game_seat_t s;
  RT_MSG_GET(msg, game_seat_t, &s);
  int role = s.role == 1 ? 1 : 0;
  seat_t *seat = &r->seats[role];
  cancel(r, &seat->grace_timer);
  seat->info.client = s.client;
  r->g->stats.resumed++;
  rt_log(room_world(r), RT_LOG_INFO, "room.back", "room=%s role=p%d",
         r->room_id, role + 1);
  send_start(r, role, true);
  if (r->golden_active)
    send_to(r, role, GAME_TAG_OUT_MUST,
            game_proto_cookie_spawn(r->golden_x, r->golden_y));
}

static void on_grace(room_t *r, const rt_msg_t *msg) {
  rt_timer_event_t ev;
  RT_MSG_GET(msg, rt_timer_event_t, &ev);
  int role = ev.data == 1 ? 1 : 0;
  if (ev.timer != r->seats[role].grace_timer)
    return;
  r->seats[role].grace_timer = 0;
  if (r->seats[role].info.client == 0)
    finish(r, GAME_END_DISCONNECTED, role);
}

/* ---- The actor ----------------------------------------------------------- */

static void room_behaviour(rt_actor_t *self, const rt_msg_t *msg) {
  room_t *r = rt_state(self);
  switch (msg->tag) {
  case GAME_TAG_CLICK: on_click(r, msg); break;
  case GAME_TAG_COOKIE_CLICK: on_cookie_click(r, msg); break;
  case GAME_TAG_QUIT: on_quit(r, msg); break;
  case GAME_TAG_LEFT: on_left(r, msg); break;
  case GAME_TAG_BACK: on_back(r, msg); break;
  case GAME_TAG_ROOM_START: on_start(r); break;
  case GAME_TAG_TIMER_COUNTDOWN: on_countdown(r); break;
  case GAME_TAG_TIMER_TICK: on_tick(r, msg); break;
  case GAME_TAG_TIMER_GOLDEN: on_golden(r); break;
  case GAME_TAG_TIMER_GRACE: on_grace(r, msg); break;
  case GAME_TAG_STORE_RECORDED: on_recorded(r, msg); break;
  case GAME_TAG_TIMER_SEND_RETRY: on_send_retry(r); break;
  case GAME_TAG_CL_CLAIMED: on_claimed(r, msg); break;
  case GAME_TAG_TIMER_CL_CLAIM: on_claim_retry(r); break;
  case GAME_TAG_FENCED: on_fenced(r); break;
  case GAME_TAG_LOST_HERE: on_lost_here(r); break;
  default: break;
  }
}

static void room_on_stop(rt_actor_t *self, int reason) {
  room_t *r = rt_state(self);
  if (!r->ended_sent && reason != RT_REASON_SHUTDOWN) {
    r->g->stats.rooms_lost++;
    rt_log(room_world(r), RT_LOG_ERROR, "room.stop_unfinished",
           "room=%s reason=%d", r->room_id, reason);
  }
  rt_idmap_del(&r->g->rooms_live, r->id);
  if (r->detached)
    r->g->rooms_detached--;
  free(r);
}

void game__room_id(const game_t *g, uint64_t seq, char *out, size_t cap) {
  snprintf(out, cap, "r%08" PRIx32 "-%" PRIu64, g->room_prefix, seq);
}

int game_room_spawn(game_t *g, uint64_t seq, const game_seat_info_t *p1,
                    const game_seat_info_t *p2, rt_actor_id_t *out) {
  room_t *r = calloc(1, sizeof(*r));
  if (r == NULL)
    return RT_ENOMEM;
  r->g = g;
  r->seq = seq;
  game__room_id(g, seq, r->room_id, sizeof(r->room_id));
  r->seats[0].info = *p1;
  r->seats[1].info = *p2;
  r->time_remaining = (int32_t)g->cfg.game_seconds;
  uint64_t seed = g->cfg.seed != 0 ? g->cfg.seed : rt_world_seed(g->world);
  rt_rng_init(&r->rng, seed, RT_RNG_KEY(RT_RNG_SUB_ROOM, seq));
  rt_time_ns now = rt_now(g->world);
  r->started_at = -1;
  r->run_at = -1;
  for (int i = 0; i < 2; i++) {
    game_bucket_fill(&r->seats[i].clicks, g->cfg.click_burst, now);
    r->seats[i].rate_error_at = -1;
  }
  rt_actor_spec_t spec = {.name = "room",
                          .behaviour = room_behaviour,
                          .on_stop = room_on_stop,
                          .state = r,
                          .mailbox_cap = ROOM_MAILBOX_CAP,
                          .overflow = RT_OVERFLOW_REJECT};
  int err = rt_spawn(g->world, &spec, &r->id);
  if (err < 0) {
    free(r);
    return err;
  }
  err = rt_idmap_put(&g->rooms_live, r->id, r);
  if (err < 0) {
    r->ended_sent = true; /* never started: not a lost room */
    rt_stop(g->world, r->id, RT_REASON_KILLED); /* on_stop frees it */
    return err;
  }
  g->stats.rooms_started++;
  *out = r->id;
  return RT_OK;
}

/* ---- Checks (game_check.h) ----------------------------------------------- */

#define FAIL(...) (snprintf(why, cap, __VA_ARGS__), -1)

bool game__room_detached(const void *room) {
  return ((const room_t *)room)->detached;
}

const char *game__room_public_id(const void *room) {
  return ((const room_t *)room)->room_id;
}

int game__room_result(const void *room, game_result_t *out) {
  const room_t *r = room;
  if (r->phase != PHASE_FINISHING)
    return 0;
  *out = r->result;
  return 1;
}

void game__room_seats(const void *room, const char **p1, const char **p2) {
  const room_t *r = room;
  *p1 = r->seats[0].info.id;
  *p2 = r->seats[1].info.id;
}

static int check_seat(const room_t *r, int role, bool quiescent, char *why,
                      size_t cap) {
  const seat_t *s = &r->seats[role];
  rt_world_t *w = room_world(r);
  /* Invariant (1), recomputed: the score is the sum of the accepted clicks,
   * doubled inside this seat's own bonus windows. */
  if (!s->audit_overflow && s->score != s->audit_score)
    return FAIL("%s p%d: score %d, its clicks and claims make %d", r->room_id,
                role + 1, s->score, s->audit_score);
  if (s->score < (int32_t)s->clicks_scored ||
      s->score > 2 * (int32_t)s->clicks_scored)
    return FAIL("%s p%d: score %d from %u clicks", r->room_id, role + 1,
                s->score, s->clicks_scored);
  if (s->audit_claims_len == 0 && !s->audit_overflow &&
      s->score != (int32_t)s->clicks_scored)
    return FAIL("%s p%d: doubled points without a golden cookie", r->room_id,
                role + 1);
  /* The Manager tells a room when a seat's connection goes. A room it let
   * go (detached) hears nothing more: its seats name the connections it
   * had then, and its GAME_OVER to one gone goes to the Manager to keep
   * (complete). */
  if (quiescent && !r->detached && s->info.client != 0 &&
      !rt_alive(w, s->info.client))
    return FAIL("%s p%d: seated connection %" PRIu64 " is gone", r->room_id,
                role + 1, s->info.client);
  if (r->phase == PHASE_FINISHING && s->grace_timer != 0)
    return FAIL("%s p%d: a grace runs after the end", r->room_id, role + 1);
  return 0;
}

static int check_clock(const room_t *r, bool quiescent, char *why, size_t cap) {
  const game_config_t *c = &r->g->cfg;
  rt_time_ns now = rt_now(room_world(r));
  if (r->time_remaining < 0 || r->time_remaining > (int32_t)c->game_seconds)
    return FAIL("%s: timeRemaining %d", r->room_id, r->time_remaining);
  /* Invariant (5): no tick arrived more than a tick late... */
  if (r->tick_late_max > c->tick)
    return FAIL("%s: a tick came %" PRId64 " ns late", r->room_id,
                (int64_t)r->tick_late_max);
  if (!quiescent)
    return 0;
  /* ...and none that is due waits: with nothing ready, every firing due by
   * now has been delivered. */
  if (r->phase == PHASE_COUNTDOWN && r->started_at >= 0 &&
      now >= r->started_at + c->countdown)
    return FAIL("%s: the countdown is overdue", r->room_id);
  if (r->phase == PHASE_RUNNING) {
    rt_time_ns next = r->run_at + (rt_time_ns)(r->ticks_counted + 1) * c->tick;
    if (now >= next)
      return FAIL("%s: tick %u is overdue", r->room_id, r->ticks_counted + 1);
    if (now >= r->ends_at)
      return FAIL("%s: still running past its end", r->room_id);
  }
  return 0;
}

int game__room_check(const game_t *g, const void *room, bool quiescent,
                     char *why, size_t cap) {
  const room_t *r = room;
  (void)g;
  if (r->phase != PHASE_COUNTDOWN && r->phase != PHASE_RUNNING &&
      r->phase != PHASE_FINISHING)
    return FAIL("%s: phase %d", r->room_id, (int)r->phase);
  if (r->golden_active && r->phase != PHASE_RUNNING) /* Invariant (2) */
    return FAIL("%s: a golden cookie outside the game", r->room_id);
  if (r->ended_sent) /* Invariant (3): it stops in the turn it ends */
    return FAIL("%s: told the Manager it ended, still runs", r->room_id);
  /* A game lost with its server (on_lost_here) counts nothing: 0:0. (Its
   * result is read only once it has one: a check reads every room.) */
  bool lost = r->phase == PHASE_FINISHING &&
              strcmp(r->result.reason, "server_lost") == 0;
  if (r->phase == PHASE_FINISHING &&
      (strcmp(r->result.room_id, r->room_id) != 0 ||
       r->result.p1_score != (lost ? 0 : r->seats[0].score) ||
       r->result.p2_score != (lost ? 0 : r->seats[1].score)))
    return FAIL("%s: the result (%d:%d) is not the game (%d:%d)", r->room_id,
                r->result.p1_score, r->result.p2_score, r->seats[0].score,
                r->seats[1].score);
  if (r->phase != PHASE_FINISHING && r->resend_timer != 0)
    return FAIL("%s: resending a result before the end", r->room_id);
  int rc = check_clock(r, quiescent, why, cap);
  for (int role = 0; role < 2 && rc == 0; role++)
    rc = check_seat(r, role, quiescent, why, cap);
  return rc;
}
