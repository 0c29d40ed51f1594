/* simrun_actions.c: what a connected player does when its schedule says so:
 * join and leave the queue, click (with bursts), claim golden cookies,
 * quit, drop and come back, open a second connection, abuse the protocol,
 * and edge actions timed to exact instants.
 */
#include "simrun_int.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define CLICK_EVENTS_PER_SLICE 8u
#define OVERSIZE_MAX 2000u

static void send_clicks(simrun_t *run, player_t *p, uint32_t n) {
  int64_t seq = p->use_seq ? p->seq_next : -1;
  if (sim_bot_clicks(simrun__cur_bot(p), n, seq) < 0)
    return;
  p->seq_next += n;
  p->belief.clicks_game += n;
  p->belief.clicks_sent += n;
  run->sum.clicks_sent += n;
}

static void cookie_click(simrun_t *run, player_t *p) {
  if (!p->belief.spawn_open || sim_bot_cookie_click(simrun__cur_bot(p)) < 0)
    return;
  run->sum.cookie_clicks++;
  /* A race: the opponent clicked this very cookie too. */
  player_t *o = simrun__ids_find(run, p->belief.opponent);
  if (o != NULL && o->belief.target_set &&
      strcmp(o->belief.target_room, p->belief.room) == 0 &&
      o->belief.target_x == p->belief.spawn_x &&
      o->belief.target_y == p->belief.spawn_y)
    run->sum.cov[SIMRUN_COV_GOLDEN_RACE]++;
  snprintf(p->belief.target_room, sizeof(p->belief.target_room), "%s",
           p->belief.room);
  p->belief.target_x = p->belief.spawn_x;
  p->belief.target_y = p->belief.spawn_y;
  p->belief.target_set = true;
  p->belief.spawn_open = false;
}

static void twin(simrun_t *run, player_t *p) {
  uint32_t other = 1 - p->cur;
  if (p->bots[other].bot != NULL)
    return; /* Invariant (1): the previous one has not closed yet */
  sim_bot_t *old = simrun__cur_bot(p);
  char token[SIM_BOT_TOKEN_MAX];
  snprintf(token, sizeof(token), "%s", sim_bot_token(old));
  if (simrun__spawn_bot(run, p, other, token, p->belief.user_id) < 0)
    return;
  p->bots[p->cur].retired = true;
  p->cur = other;
  simrun__lift_stall(p);
  p->reset_armed = false;
  p->state = B_CONNECTING;
}

static void abuse(simrun_t *run, player_t *p) {
  sim_bot_t *b = simrun__cur_bot(p);
  uint32_t what = (uint32_t)rt_rng_below(&p->rng, 7);
  switch (what) {
  case 0: /* a flood, far above the rate limit */
    send_clicks(run, p, (uint32_t)rt_rng_range(&p->rng, 60, 400));
    return;
  case 1: (void)sim_bot_send(b, "{\"type\":\"CLICK\"", 15); return;
  case 2:
    (void)sim_bot_send(b, "{\"type\":\"DANCE\",\"payload\":{}}", 29);
    return;
  case 3: { /* oversize: the server closes with 1009 */
    char big[OVERSIZE_MAX];
    size_t len = (size_t)rt_rng_range(&p->rng, 513, OVERSIZE_MAX - 1);
    int head = snprintf(big, sizeof(big), "{\"type\":\"CLICK\",\"pad\":\"");
    memset(big + head, 'x', len - (size_t)head - 2);
    memcpy(big + len - 2, "\"}", 2);
    (void)sim_bot_send(b, big, len);
    return;
  }
  case 4: (void)sim_bot_send(b, "\xff\xfe\xfd", 3); return; /* bad UTF-8 */
  case 5: (void)sim_bot_join(b); return; /* ignored while playing */
  default: (void)sim_bot_send(b, "[1,2,3]", 7); return;
  }
}

static void edge(simrun_t *run, player_t *p) {
  sim_bot_t *b = simrun__cur_bot(p);
  edge_t kind = (edge_t)p->sched.edge_kind;
  p->sched.edge_at = NEVER;
  p->sched.edge_kind = EDGE_NONE;
  run->sum.edges++;
  switch (kind) {
  case EDGE_CLICK: send_clicks(run, p, 1); return;
  case EDGE_COOKIE:
    /* Whether or not one is up: the Room decides. */
    p->belief.spawn_open = true;
    cookie_click(run, p);
    return;
  case EDGE_QUIT: (void)sim_bot_quit(b); return;
  case EDGE_CLOSE:
  case EDGE_RESET:
    (void)sim_bot_disconnect(b, kind == EDGE_CLOSE ? SIM_BOT_CLOSE_HANDSHAKE
                                                   : SIM_BOT_CLOSE_RESET);
    simrun__go_away(
        run, p, simrun__uniform_ns(&p->rng, 0, run->cfg.game.reconnect_grace));
    return;
  case EDGE_TWIN: twin(run, p); return;
  default: return;
  }
}

static void act_playing(simrun_t *run, player_t *p, rt_time_ns now) {
  if (p->sched.edge_at <= now) {
    edge(run, p);
    if (p->state != B_PLAYING || !simrun__bot_open(p))
      return;
  }
  for (uint32_t i = 0; i < CLICK_EVENTS_PER_SLICE && p->sched.next_click <= now;
       i++) {
    if (p->sched.next_click < p->sched.click_end) {
      uint32_t n = 1;
      if (rt_rng_double(&p->rng) < p->plan.burst_p)
        n = (uint32_t)rt_rng_range(&p->rng, 2, p->plan.burst_max);
      send_clicks(run, p, n);
      double gap = -log(1.0 - rt_rng_double(&p->rng)) / p->plan.click_rate;
      p->sched.next_click += (rt_time_ns)(gap * 1e9) + 1;
    } else {
      p->sched.next_click = NEVER;
    }
  }
  if (p->sched.cookie_at <= now) {
    p->sched.cookie_at = NEVER;
    cookie_click(run, p);
  }
  if (p->sched.quit_at <= now) {
    p->sched.quit_at = NEVER;
    (void)sim_bot_quit(simrun__cur_bot(p));
  }
  if (p->sched.abuse_at <= now) {
    abuse(run, p);
    p->sched.abuse_at = now + simrun__uniform_ns(&p->rng, 2 * SEC, 10 * SEC);
    if (p->sched.abuse_at > p->belief.t_end + 2 * SEC)
      p->sched.abuse_at = NEVER;
    if (!simrun__bot_open(p))
      return;
  }
  if (p->sched.twin_at <= now) {
    p->sched.twin_at = NEVER;
    twin(run, p);
    return;
  }
  if (p->sched.away_at <= now) {
    p->sched.away_at = NEVER;
    sim_bot_close_how_t how = rt_rng_double(&p->rng) < 0.5
                                  ? SIM_BOT_CLOSE_STREAM
                                  : SIM_BOT_CLOSE_RESET;
    (void)sim_bot_disconnect(simrun__cur_bot(p), how);
    simrun__go_away(run, p, p->sched.away_for);
  }
}

/* NEW: its bot connects at its arrival time. */
static void arrive(simrun_t *run, player_t *p, rt_time_ns now) {
  if (now < p->plan.arrive_at)
    return;
  if (simrun__spawn_bot(run, p, 0, NULL, NULL) < 0) {
    simrun__gone(run, p);
    return;
  }
  p->state = B_CONNECTING;
}

/* AWAY: reconnect when planned, unless it is leaving for good. */
static void come_back(simrun_t *run, player_t *p, rt_time_ns now) {
  if (now < p->sched.reconnect_at)
    return;
  p->sched.reconnect_at = NEVER;
  if (p->departing || (run->winding && !p->belief.in_game)) {
    simrun__gone(run, p);
    return;
  }
  if (sim_bot_reconnect_to(simrun__cur_bot(p), simrun__pick_port(run, p)) ==
      RT_OK) {
    run->sum.reconnects++;
    p->state = B_CONNECTING;
  }
}

/* RESUMING: no resumed GAME_START by the deadline, the game ended while
 * the player was away. */
static void act_resuming(player_t *p, rt_time_ns now) {
  if (now < p->sched.resume_deadline)
    return;
  p->belief.in_game = false;
  p->state = B_IDLE;
  p->sched.next_join = now;
}

/* IDLE: join the queue when planned (leave instead once winding down). */
static void act_idle(simrun_t *run, player_t *p, rt_time_ns now) {
  sim_bot_t *b = simrun__cur_bot(p);
  if (run->winding) {
    simrun__depart(run, p);
    return;
  }
  if (now < p->sched.next_join)
    return;
  p->sched.next_join = NEVER;
  if (p->plan.kind == SIMRUN_ABUSER && rt_rng_double(&p->rng) < 0.3)
    (void)sim_bot_click(b, -1); /* not in a game: an ERROR */
  (void)sim_bot_join(b);
  p->state = B_QUEUED;
  if (p->plan.kind == SIMRUN_LEAVER && rt_rng_double(&p->rng) < 0.7)
    p->sched.leave_at = now + simrun__uniform_ns(&p->rng, 50 * MS, 3 * SEC);
}

/* QUEUED: a leaver leaves the queue when planned. */
static void act_queued(simrun_t *run, player_t *p, rt_time_ns now) {
  if (run->winding) {
    simrun__depart(run, p);
    return;
  }
  if (p->sched.leave_at > now)
    return;
  p->sched.leave_at = NEVER;
  (void)sim_bot_leave(simrun__cur_bot(p));
  p->state = B_IDLE;
  p->sched.next_join = now + simrun__uniform_ns(&p->rng, 200 * MS, 3 * SEC);
}

void simrun__act(simrun_t *run, player_t *p, rt_time_ns now) {
  switch (p->state) {
  case B_NEW: arrive(run, p, now); return;
  case B_AWAY: come_back(run, p, now); return;
  case B_CONNECTING:
  case B_LEAVING:
  case B_GONE: return; /* its connection is to open or to end first */
  default: break;
  }
  if (!simrun__bot_open(p))
    return;
  if (simrun__faulty(run, p))
    simrun__act_faults(run, p, now);
  if (p->state == B_AWAY || !simrun__bot_open(p))
    return;
  switch (p->state) {
  case B_RESUMING: act_resuming(p, now); return;
  case B_IDLE: act_idle(run, p, now); return;
  case B_QUEUED: act_queued(run, p, now); return;
  case B_PLAYING: act_playing(run, p, now); return;
  default: return;
  }
}
