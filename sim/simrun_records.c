/* simrun_records.c: what a player makes of what its bots received. Each
 * record moves its brain (the state machine in simrun_int.h) and its
 * beliefs; a GAME_START plans the game (clicks, an edge action, what the
 * player's kind does in it); a GAME_OVER is checked against the Store
 * (simrun_checks.c) and may be followed by a read of the history.
 */
#include "simrun_int.h"

#include "game_store.h"

#include <stdio.h>
#include <string.h>

#define RESUME_WAIT (3 * SEC) /* a resumed GAME_START, or the game ended */
#define REFUSALS_MAX 3u
#define READ_P 0.25 /* the chance a player reads its history after a game */

static int err_index(const char *code) {
  static const char *const codes[] = {"bad_json", "unknown_type", "not_in_game",
                                      "rate_limited"};
  for (int i = 0; i < 4; i++)
    if (strcmp(code, codes[i]) == 0)
      return i;
  return SIMRUN_ERR_OTHER;
}

static void on_opened(simrun_t *run, player_t *p, pbot_t *pb) {
  rt_time_ns now = simrun__now(run);
  p->belief.connections++;
  if (!p->registered && sim_bot_user_id(pb->bot)[0] != '\0') {
    snprintf(p->belief.user_id, sizeof(p->belief.user_id), "%s",
             sim_bot_user_id(pb->bot));
    simrun__ids_put(run, p);
  }
  if (run->cluster) {
    p->refusals = 0; /* an instance that was down is not a ban */
    if (!p->moved)
      p->moves_row = 0;
  }
  if (pb->retired || p->state == B_LEAVING)
    return;
  if (p->departing) {
    p->state = B_IDLE; /* open at last: now it can leave */
    simrun__depart(run, p);
    return;
  }
  if (p->belief.in_game || p->moved) { /* moved: the owner resumes it */
    p->state = B_RESUMING;
    p->sched.resume_deadline = now + RESUME_WAIT;
  } else {
    p->state = B_IDLE;
    p->sched.next_join = now + simrun__uniform_ns(&p->rng, 100 * MS, 1500 * MS);
  }
  simrun__faults_arm(run, p, now);
}

/* Time an edge action so that it takes effect at `target` (+-1 ns). */
static void plan_edge(player_t *p, edge_t kind, rt_time_ns target,
                      rt_time_ns now) {
  rt_time_ns at = target + rt_rng_range(&p->rng, -1, 1);
  if (kind != EDGE_RESET && kind != EDGE_TWIN)
    at -= p->plan.up.latency; /* a frame takes the up link */
  if (at <= now)
    return;
  p->sched.edge_at = at;
  p->sched.edge_kind = (uint8_t)kind;
}

/* An edge at the end of the countdown or of the game; the Room started the
 * game one down-link latency before its GAME_START came. */
static void plan_game_edge(const simrun_t *run, player_t *p, rt_time_ns now) {
  const game_config_t *g = &run->cfg.game;
  rt_time_ns t0 = now - p->plan.down.latency;
  rt_time_ns target = t0 + g->countdown;
  if (rt_rng_double(&p->rng) < 0.6)
    target += (rt_time_ns)g->game_seconds * g->tick;
  plan_edge(p, (edge_t)rt_rng_range(&p->rng, EDGE_CLICK, EDGE_TWIN), target,
            now);
}

/* What the player's kind does in this game, drawn at its start. */
static void plan_kind_actions(const simrun_t *run, player_t *p) {
  const player_belief_t *seen = &p->belief;
  player_schedule_t *s = &p->sched;
  rt_time_ns mid_lo = seen->t_run + SEC, mid_hi = seen->t_end - 2 * SEC;
  switch (p->plan.kind) {
  case SIMRUN_QUITTER:
    if (rt_rng_double(&p->rng) < 0.6)
      s->quit_at =
          simrun__uniform_ns(&p->rng, seen->t_run - 2 * SEC, seen->t_end);
    break;
  case SIMRUN_RESUMER:
    if (rt_rng_double(&p->rng) < 0.7) {
      s->away_at = simrun__uniform_ns(&p->rng, mid_lo, mid_hi);
      rt_time_ns grace = run->cfg.game.reconnect_grace;
      s->away_for =
          rt_rng_double(&p->rng) < 0.8
              ? simrun__uniform_ns(&p->rng, 200 * MS, grace * 8 / 10)
              : simrun__uniform_ns(&p->rng, grace * 11 / 10, grace * 16 / 10);
    }
    break;
  case SIMRUN_TWIN:
    if (rt_rng_double(&p->rng) < 0.6)
      s->twin_at = simrun__uniform_ns(&p->rng, mid_lo, mid_hi);
    break;
  case SIMRUN_ABUSER:
    s->abuse_at =
        simrun__uniform_ns(&p->rng, seen->t_run - 2 * SEC, seen->t_end);
    break;
  default: break;
  }
}

/* Plan a game seen from its start, or joined late (resumed, with
 * time_remaining seconds left): its timeline, its clicks, maybe an edge
 * action, and what the player's kind does in it. */
static void new_game_plan(simrun_t *run, player_t *p,
                          const sim_bot_record_t *start) {
  const game_config_t *g = &run->cfg.game;
  player_belief_t *seen = &p->belief;
  player_schedule_t *s = &p->sched;
  rt_time_ns now = simrun__now(run);
  rt_time_ns length = (rt_time_ns)g->game_seconds * g->tick;
  if (start->resumed && start->time_remaining >= 0) {
    seen->t_end = now + (rt_time_ns)start->time_remaining * g->tick;
    seen->t_run = seen->t_end - length;
  } else {
    seen->t_run = now + g->countdown;
    seen->t_end = seen->t_run + length;
  }
  seen->clicks_game = 0;
  seen->clicks_tracked = !start->resumed && !p->plan.manual; /* a test clicks */
  s->next_click =
      p->plan.click_rate > 0
          ? seen->t_run + simrun__uniform_ns(&p->rng, -500 * MS, 500 * MS)
          : NEVER;
  s->click_end = seen->t_end + simrun__uniform_ns(&p->rng, -300 * MS, 300 * MS);
  s->quit_at = s->away_at = s->twin_at = s->abuse_at = s->cookie_at = NEVER;
  seen->spawn_open = false;
  s->edge_at = NEVER;
  if (!start->resumed && !p->plan.manual && !p->plan.no_faults &&
      rt_rng_double(&p->rng) < EDGE_P)
    plan_game_edge(run, p, now);
  plan_kind_actions(run, p);
}

static void on_game_start(simrun_t *run, player_t *p, pbot_t *pb,
                          const sim_bot_record_t *r) {
  snprintf(pb->room, sizeof(pb->room), "%s", r->room_id);
  pb->room_conn = r->conn;
  pb->awaiting_over = true;
  if (strcmp(r->opponent, p->belief.user_id) == 0) { /* (C2) */
    simrun__fail(run, "%s (%s): matched with itself in %s", p->name,
                 p->belief.user_id, r->room_id);
    return;
  }
  if (p->moved && r->resumed)
    run->sum.cov[SIMRUN_COV_MOVE_FOLLOWED]++;
  p->moved = false;
  p->moves_row = 0;
  if (pb->retired)
    return;
  /* Resuming the game we were in (even if we had given up waiting). */
  bool known = strcmp(p->belief.room, r->room_id) == 0 &&
               strcmp(r->room_id, p->belief.last_over_room) != 0;
  if (!r->resumed || !known) {
    if (strcmp(r->room_id, p->belief.last_over_room) == 0 ||
        (!r->resumed && strcmp(r->room_id, p->belief.room) == 0)) {
      simrun__fail(run, "%s (%s): put in %s a second time", p->name,
                   p->belief.user_id, r->room_id);
      return;
    }
    p->belief.games_started += !r->resumed;
    snprintf(p->belief.room, sizeof(p->belief.room), "%s", r->room_id);
    snprintf(p->belief.opponent, sizeof(p->belief.opponent), "%s", r->opponent);
    new_game_plan(run, p, r);
  }
  p->belief.in_game = true;
  if (p->state != B_LEAVING)
    p->state = B_PLAYING;
}

/* Some players look at their history (GET /api/history, through the HTTP
 * API and the Store's read path) or the leaderboard after a game. */
static void maybe_read(simrun_t *run, player_t *p, pbot_t *pb,
                       const sim_bot_record_t *over) {
  if (p->plan.manual || pb->retired || p->belief.read_pending ||
      rt_rng_double(&p->rng) >= READ_P)
    return;
  bool history = rt_rng_double(&p->rng) < 0.8;
  if (sim_bot_http_get(pb->bot,
                       history ? "/api/history?limit=5"
                               : "/api/leaderboard?limit=20",
                       history) != RT_OK)
    return;
  run->sum.reads++;
  p->belief.read_pending = true;
  snprintf(p->belief.read_room, sizeof(p->belief.read_room), "%s",
           history ? pb->room : "");
  p->belief.read_over = *over;
}

void simrun__poll_read(simrun_t *run, player_t *p) {
  sim_bot_t *b = simrun__cur_bot(p);
  int status = 0;
  const char *body = NULL;
  size_t len = 0;
  if (!p->belief.read_pending || b == NULL ||
      !sim_bot_http_result(b, &status, &body, &len))
    return;
  p->belief.read_pending = false;
  if (status == 503) {
    run->sum.reads_unavailable++; /* the Store failed: said so, fast */
    return;
  }
  if (status != 200) {
    /* 0: the connection failed (a fault); anything else is wrong. */
    if (status != 0)
      simrun__fail(run, "%s: GET answered %d", p->name, status);
    return;
  }
  if (p->belief.read_room[0] != '\0')
    simrun__check_history(run, p, body, len);
}

static void on_game_over(simrun_t *run, player_t *p, pbot_t *pb,
                         const sim_bot_record_t *r) {
  run->sum.game_overs_seen++;
  /* A GAME_OVER names its game (README, "Protocol additions"): a player
   * may hear late, on another instance or on this one, of a game that
   * ended while it was away, after it had played others or before it
   * heard that its last one ended. It is checked as that game's. */
  if (r->room_id[0] != '\0' && !pb->retired &&
      !(pb->awaiting_over && strcmp(pb->room, r->room_id) == 0)) {
    snprintf(pb->room, sizeof(pb->room), "%s", r->room_id);
    pb->room_conn = r->conn;
    pb->awaiting_over = true;
  }
  /* No GAME_START on this connection: the result of the game the player
   * was in when its connection changed, which ended as it came back (the
   * Manager sends it). It is checked as that game's GAME_OVER. */
  if (!pb->awaiting_over && !pb->retired && p->belief.room[0] != '\0' &&
      strcmp(p->belief.room, p->belief.last_over_room) != 0) {
    snprintf(pb->room, sizeof(pb->room), "%s", p->belief.room);
    pb->room_conn = r->conn;
    pb->awaiting_over = true;
  }
  /* Nor a game it knew: matched while away, the game ended before the
   * player came back, and the Manager tells it then (its Invariant (6)).
   * It is checked as the newest game the Store seats the player in. */
  game_result_t latest;
  if (!pb->awaiting_over && !pb->retired &&
      game_store_latest_game_of(simrun__store(run), p->belief.user_id,
                                &latest) == 1 &&
      strcmp(latest.room_id, p->belief.last_over_room) != 0 &&
      strcmp(latest.room_id, p->belief.room) != 0) {
    snprintf(pb->room, sizeof(pb->room), "%s", latest.room_id);
    pb->room_conn = r->conn;
    pb->awaiting_over = true;
  }
  simrun__check_game_over(run, p, pb, r);
  if (!run->failed)
    maybe_read(run, p, pb, r);
  snprintf(p->belief.last_over_room, sizeof(p->belief.last_over_room), "%s",
           pb->room);
  pb->awaiting_over = false;
  p->belief.games_over++;
  p->belief.last_over = *r;
  if (pb->retired || strcmp(pb->room, p->belief.room) != 0)
    return;
  p->belief.in_game = false;
  p->sched.next_click = p->sched.cookie_at = p->sched.quit_at =
      p->sched.away_at = NEVER;
  p->sched.twin_at = p->sched.abuse_at = NEVER;
  if (p->state == B_LEAVING)
    return;
  if (p->plan.games_max > 0 && p->belief.games_over >= p->plan.games_max) {
    simrun__depart(run, p);
    return;
  }
  p->state = B_IDLE;
  p->sched.next_join =
      simrun__now(run) + simrun__uniform_ns(&p->rng, 300 * MS, 3 * SEC);
}

/* A cluster's MOVE: the game lives elsewhere. The server closes this
 * connection (4001); the player then goes where it was sent, at once. */
static void on_move(simrun_t *run, player_t *p, pbot_t *pb,
                    const sim_bot_record_t *r) {
  run->sum.moves_seen++;
  if (pb->retired || pb != &p->bots[p->cur])
    return;
  uint16_t port = simrun__move_port(run, r->url);
  if (port == 0) {
    simrun__fail(run, "%s (%s): MOVE to %s, which is no instance", p->name,
                 p->belief.user_id, r->url);
    return;
  }
  /* PROTOCOL.md: a client follows at most 3 in a row; a cluster that
   * bounces a player more is wrong. */
  if (++p->moves_row > 3) {
    simrun__fail(run, "%s (%s): a fourth MOVE in a row, to %s", p->name,
                 p->belief.user_id, r->url);
    return;
  }
  if (p->belief.in_game)
    run->sum.cov[SIMRUN_COV_SENT_ON]++; /* it came back to a non-owner */
  p->port = port;
  p->moved = true;
}

static void on_closed(simrun_t *run, player_t *p, pbot_t *pb) {
  pb->awaiting_over = false;
  if (pb->retired || pb != &p->bots[p->cur]) {
    pb->dead = true; /* Invariant (1): the replaced one is done */
    return;
  }
  simrun__lift_stall(p);
  p->reset_armed = false;
  if (p->departing || p->state == B_LEAVING) {
    simrun__gone(run, p);
    return;
  }
  if (p->state == B_AWAY && !p->moved)
    return; /* we dropped it ourselves: the comeback is planned */
  if (p->moved) { /* sent elsewhere: go now, as a browser does */
    simrun__go_away(run, p, 0);
    return;
  }
  /* The server or the network ended it: come back soon. */
  simrun__go_away(run, p, simrun__uniform_ns(&p->rng, 100 * MS, 3 * SEC));
}

static void on_refused(simrun_t *run, player_t *p, pbot_t *pb) {
  run->sum.players_refused++;
  if (pb->retired) {
    pb->dead = true;
    return;
  }
  bool has_token = sim_bot_token(pb->bot)[0] != '\0';
  p->moved = false; /* where it was sent is down: anywhere will answer */
  if (has_token && ++p->refusals <= REFUSALS_MAX && !p->departing) {
    simrun__go_away(run, p, SEC);
    return;
  }
  simrun__gone(run, p);
}

static void on_record(simrun_t *run, player_t *p, pbot_t *pb,
                      const sim_bot_record_t *r) {
  run->sum.frames_received++;
  switch ((sim_bot_kind_t)r->kind) {
  case SIM_BOT_OPENED: on_opened(run, p, pb); return;
  case SIM_BOT_QUEUED:
    if (p->state == B_IDLE)
      p->state = B_QUEUED;
    return;
  case SIM_BOT_GAME_START: on_game_start(run, p, pb, r); return;
  case SIM_BOT_GAME_OVER: on_game_over(run, p, pb, r); return;
  case SIM_BOT_COOKIE_SPAWN:
    if (pb->retired || !p->belief.in_game)
      return;
    p->belief.spawn_open = true;
    p->belief.spawn_x = r->x;
    p->belief.spawn_y = r->y;
    if (p->plan.reaction > 0 && !p->plan.manual)
      p->sched.cookie_at =
          simrun__now(run) + p->plan.reaction * 8 / 10 +
          simrun__uniform_ns(&p->rng, 0, p->plan.reaction * 4 / 10);
    return;
  case SIM_BOT_UPDATE_CLAIM:
    p->belief.spawn_open = false;
    p->sched.cookie_at = NEVER;
    /* My claim: a click exactly at the end of my bonus. */
    if (!pb->retired && !p->plan.manual && !p->plan.no_faults &&
        p->sched.edge_at == NEVER &&
        strcmp(r->claimed_by, p->belief.user_id) == 0 &&
        rt_rng_double(&p->rng) < EDGE_P)
      plan_edge(p, EDGE_CLICK,
                r->at - p->plan.down.latency + run->cfg.game.bonus,
                simrun__now(run));
    return;
  case SIM_BOT_ERROR: run->sum.errors_seen[err_index(r->error_code)]++; return;
  case SIM_BOT_CLOSED: on_closed(run, p, pb); return;
  case SIM_BOT_REFUSED: on_refused(run, p, pb); return;
  case SIM_BOT_MOVE: on_move(run, p, pb, r); return;
  default: return;
  }
}

void simrun__read_records(simrun_t *run, player_t *p) {
  for (uint32_t k = 0; k < SIMRUN_BOTS_PER_PLAYER; k++) {
    pbot_t *pb = &p->bots[k];
    if (pb->bot == NULL)
      continue;
    uint32_t n;
    const sim_bot_record_t *recs = sim_bot_records(pb->bot, &n);
    /* Handlers send commands and may spawn the other slot's bot; none adds
     * records to this one before its next turn. */
    for (uint32_t i = pb->seen; i < n; i++)
      on_record(run, p, pb, &recs[i]);
    pb->seen = n;
    if (!p->plan.keep_records) {
      sim_bot_records_clear(pb->bot);
      pb->seen = 0;
    }
  }
}
