/* simrun_players.c: the players (simrun_int.h): the workload mix and each
 * player's drawn plan, the user id map, a player's bots, arriving, leaving
 * and coming back, and the slice in which every player due to act reads
 * what its bots received (simrun_records.c) and acts (simrun_actions.c).
 */
#include "simrun_int.h"

#include "rt_hash.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define READ_POLL (50 * MS)

/* ---- The workload mix ---------------------------------------------------- */

static const char kind_names[SIMRUN_KIND_COUNT_][8] = {
    "clicker", "hunter", "quitter", "resumer", "leaver", "abuser", "twin"};

void simrun_mix_draw(uint64_t seed, simrun_mix_t *out) {
  rt_rng_t rng;
  rt_rng_init(&rng, seed, KEY_MIX);
  double sum = 0;
  for (int k = 0; k < SIMRUN_KIND_COUNT_; k++) {
    /* Plain clickers and hunters are the crowd; the rest are spice. */
    double base = k == SIMRUN_CLICKER || k == SIMRUN_HUNTER ? 1.0 : 0.05;
    double top = k == SIMRUN_CLICKER || k == SIMRUN_HUNTER ? 3.0 : 1.0;
    out->share[k] = simrun__uniform(&rng, base, top);
    sum += out->share[k];
  }
  for (int k = 0; k < SIMRUN_KIND_COUNT_; k++)
    out->share[k] /= sum;
}

void simrun_mix_format(const simrun_mix_t *m, char *out, size_t cap) {
  size_t len = 0;
  out[0] = '\0';
  for (int k = 0; k < SIMRUN_KIND_COUNT_ && len < cap; k++) {
    int n = snprintf(out + len, cap - len, "%s%s:%.2f", k > 0 ? "," : "",
                     kind_names[k], m->share[k]);
    if (n < 0)
      break;
    len += (size_t)n;
  }
}

/* ---- User ids ------------------------------------------------------------ */

static uint64_t id_hash(const char *id) {
  return rt_hash_bytes(id, strlen(id), 0x757365726964ULL);
}

int simrun__ids_grow(simrun_t *run, uint32_t players) {
  uint32_t slots = 64;
  while (slots < 2 * players)
    slots *= 2;
  if (run->ids != NULL && slots <= run->ids_mask + 1)
    return 0;
  uint32_t *ids = calloc(slots, sizeof(*ids));
  if (ids == NULL)
    return RT_ENOMEM;
  for (uint32_t i = 0; run->ids != NULL && i <= run->ids_mask; i++) {
    uint32_t v = run->ids[i];
    if (v == 0)
      continue;
    uint32_t s =
        (uint32_t)(id_hash(run->players[v - 1].belief.user_id) & (slots - 1));
    while (ids[s] != 0)
      s = (s + 1) & (slots - 1);
    ids[s] = v;
  }
  free(run->ids);
  run->ids = ids;
  run->ids_mask = slots - 1;
  return 0;
}

void simrun__ids_put(simrun_t *run, player_t *p) {
  uint32_t s = (uint32_t)(id_hash(p->belief.user_id) & run->ids_mask);
  for (uint32_t n = 0; n <= run->ids_mask && run->ids[s] != 0; n++)
    s = (s + 1) & run->ids_mask;
  run->ids[s] = p->index + 1;
  p->registered = true;
}

player_t *simrun__ids_find(const simrun_t *run, const char *id) {
  uint32_t s = (uint32_t)(id_hash(id) & run->ids_mask);
  for (uint32_t n = 0; n <= run->ids_mask && run->ids[s] != 0; n++) {
    player_t *p = &run->players[run->ids[s] - 1];
    if (strcmp(p->belief.user_id, id) == 0)
      return p;
    s = (s + 1) & run->ids_mask;
  }
  return NULL;
}

/* ---- Players ------------------------------------------------------------- */

static void player_draw(const simrun_t *run, const simrun_mix_t *mix,
                        uint32_t i, simrun_player_t *out) {
  rt_rng_t rng;
  rt_rng_init(&rng, run->cfg.seed, KEY_PLAN(i));
  const simrun_faults_t *f = &run->cfg.faults;
  memset(out, 0, sizeof(*out));
  double u = rt_rng_double(&rng), acc = 0;
  out->kind = SIMRUN_CLICKER;
  for (int k = 0; k < SIMRUN_KIND_COUNT_; k++) {
    acc += mix->share[k];
    if (u < acc) {
      out->kind = (simrun_kind_t)k;
      break;
    }
  }
  rt_time_ns window = run->cfg.duration / 3;
  if (window > 20 * SEC)
    window = 20 * SEC;
  out->arrive_at = simrun__uniform_ns(&rng, 0, window);
  out->up.latency = out->down.latency = f->latency;
  out->up.jitter = out->down.jitter = f->jitter;
  out->up.buffer = out->down.buffer = run->cfg.link_buffer;
  if (rt_rng_double(&rng) < f->slow)
    out->down.bandwidth = (uint64_t)rt_rng_range(&rng, 300, 3000);
  out->click_rate = out->kind == SIMRUN_ABUSER ? simrun__uniform(&rng, 5, 15)
                                               : simrun__uniform(&rng, 1.5, 9);
  out->burst_p = simrun__uniform(&rng, 0, 0.15);
  out->burst_max = (uint32_t)rt_rng_range(&rng, 3, 40);
  if (out->kind == SIMRUN_HUNTER)
    out->reaction = simrun__uniform_ns(&rng, 80 * MS, 600 * MS);
  else if (rt_rng_double(&rng) < 0.3)
    out->reaction = simrun__uniform_ns(&rng, 300 * MS, 1500 * MS);
  out->games_max =
      rt_rng_double(&rng) < 0.2 ? (uint32_t)rt_rng_range(&rng, 1, 3) : 0;
  /* Drawn last, and only in a cluster, so one process's draws stay. */
  if (run->cluster)
    out->instance = (uint32_t)rt_rng_range(&rng, 0, run->inst_len - 1);
}

static void schedule_clear(player_schedule_t *s) {
  s->next_join = s->leave_at = s->next_click = s->click_end = NEVER;
  s->cookie_at = s->quit_at = s->away_at = s->twin_at = s->abuse_at = NEVER;
  s->reconnect_at = s->resume_deadline = s->edge_at = NEVER;
  s->stall_at = s->stall_end = s->reset_at = s->churn_at = NEVER;
}

int simrun_add_player(simrun_t *run, const simrun_player_t *plan,
                      uint32_t *index_out) {
  if (run->players_len >= SIMRUN_PLAYERS_MAX ||
      plan->kind >= SIMRUN_KIND_COUNT_ || plan->instance >= run->inst_len)
    return RT_EINVAL;
  if (run->players_len == run->players_cap) {
    uint32_t cap = run->players_cap == 0 ? 64 : run->players_cap * 2;
    player_t *grown = realloc(run->players, (size_t)cap * sizeof(*grown));
    if (grown == NULL)
      return RT_ENOMEM;
    run->players = grown;
    rt_time_ns *wake = realloc(run->wake, (size_t)cap * sizeof(*wake));
    if (wake == NULL)
      return RT_ENOMEM;
    run->wake = wake;
    rt_time_ns *edge = realloc(run->edge, (size_t)cap * sizeof(*edge));
    if (edge == NULL)
      return RT_ENOMEM;
    run->edge = edge;
    uint8_t *news = realloc(run->news, (size_t)cap * sizeof(*news));
    if (news == NULL)
      return RT_ENOMEM;
    run->news = news;
    run->players_cap = cap;
  }
  int err = simrun__ids_grow(run, run->players_len + 1);
  if (err < 0)
    return err;
  uint32_t i = run->players_len;
  player_t *p = &run->players[i];
  memset(p, 0, sizeof(*p));
  p->plan = *plan;
  p->index = i;
  snprintf(p->name, sizeof(p->name), "p%u", i);
  rt_world_rng(run->w, KEY_BRAIN(i), &p->rng);
  rt_world_rng(run->w, KEY_FAULTS(i), &p->frng);
  p->use_seq = rt_rng_double(&p->rng) < 0.5;
  schedule_clear(&p->sched);
  p->state = B_NEW;
  p->port = run->inst[plan->instance].port;
  run->wake[i] = p->sched.wake_at; /* 0: looked at in the next slice */
  run->edge[i] = p->sched.edge_at;
  run->news[i] = 0;
  run->wake_min = 0;
  if (plan->down.bandwidth > 0)
    run->sum.faults_injected[0]++;
  const sim_link_config_t *links[2] = {&plan->up, &plan->down};
  for (int k = 0; k < 2; k++)
    if (links[k]->latency + links[k]->jitter > run->link_max)
      run->link_max = links[k]->latency + links[k]->jitter;
  run->players_len++;
  run->sum.players++;
  *index_out = i;
  return RT_OK;
}

int simrun_populate(simrun_t *run, const simrun_mix_t *mix) {
  for (uint32_t i = 0; i < run->cfg.players; i++) {
    simrun_player_t plan;
    player_draw(run, mix, run->players_len, &plan);
    uint32_t index;
    int err = simrun_add_player(run, &plan, &index);
    if (err < 0)
      return err;
  }
  return RT_OK;
}

static void on_bot_record(void *ctx, uint64_t player) {
  simrun_t *run = ctx;
  run->news[player] = 1;
  run->news_any = true;
}

int simrun__spawn_bot(simrun_t *run, player_t *p, uint32_t slot,
                      const char *token, const char *user_id) {
  sim_bot_config_t bc = {
      .name = p->name,
      .token = token,
      .user_id = user_id,
      .up = p->plan.up,
      .down = p->plan.down,
      .records_max =
          p->plan.keep_records ? p->plan.records_max : SIM_BOT_RECORDS_MAX,
      .on_record = on_bot_record,
      .on_record_ctx = run,
      .on_record_tag = p->index,
      .unkept_kinds = p->plan.keep_records || run->cfg.keep_all_records
                          ? 0
                          : SIMRUN_UNKEPT_KINDS,
      .ws_pool = run->ws_pool};
  sim_bot_t *b = NULL;
  int err = sim_bot_spawn(run->sw, p->port, &bc, &b);
  if (err < 0)
    return err;
  p->bots[slot] = (pbot_t){.bot = b};
  return RT_OK;
}

void simrun__destroy_bot(simrun_t *run, pbot_t *pb) {
  if (pb->bot == NULL)
    return;
  run->sum.frames_sent += sim_bot_frames_sent(pb->bot);
  /* Messages counted, not kept, count as records (on_record's count). */
  run->sum.frames_received += sim_bot_unkept(pb->bot);
  run->sum.frames_unkept += sim_bot_unkept(pb->bot);
  sim_bot_destroy(pb->bot);
  memset(pb, 0, sizeof(*pb));
}

/* The player is done: its bot goes when its records are read. */
void simrun__gone(simrun_t *run, player_t *p) {
  if (p->state != B_GONE)
    run->sum.departures++;
  p->state = B_GONE;
  if (p->bots[p->cur].bot != NULL)
    p->bots[p->cur].dead = true;
}

/* ---- Leaving and coming back --------------------------------------------- */

void simrun__go_away(simrun_t *run, player_t *p, rt_time_ns back_in) {
  p->state = B_AWAY;
  p->sched.reconnect_at = simrun__now(run) + back_in;
  p->sched.stall_at = p->sched.reset_at = p->sched.churn_at = NEVER;
  p->reset_armed = false;
}

void simrun__depart(simrun_t *run, player_t *p) {
  if (p->state == B_LEAVING || p->state == B_GONE)
    return;
  p->departing = true;
  sim_bot_t *b = simrun__cur_bot(p);
  if (b == NULL || sim_bot_state(b) != SIM_BOT_OPEN) {
    if (b != NULL && sim_bot_state(b) == SIM_BOT_CONNECTING)
      return; /* leave once it opens */
    simrun__gone(run, p);
    return;
  }
  double u = rt_rng_double(&p->rng);
  sim_bot_close_how_t how = u < 0.6    ? SIM_BOT_CLOSE_HANDSHAKE
                            : u < 0.85 ? SIM_BOT_CLOSE_STREAM
                                       : SIM_BOT_CLOSE_RESET;
  if (p->state == B_QUEUED && rt_rng_double(&p->rng) < 0.5)
    (void)sim_bot_leave(b);
  (void)sim_bot_disconnect(b, how);
  p->state = B_LEAVING; /* counted in simrun__gone() once it closed */
}

/* ---- The players' slices ------------------------------------------------- */

static void reap(simrun_t *run, player_t *p) {
  for (uint32_t k = 0; k < SIMRUN_BOTS_PER_PLAYER; k++)
    if (p->bots[k].bot != NULL && p->bots[k].dead &&
        (k != p->cur || p->state == B_GONE))
      simrun__destroy_bot(run, &p->bots[k]);
}

static rt_time_ns min_ns(rt_time_ns a, rt_time_ns b) { return a < b ? a : b; }

/* The earliest time in the player's schedule that its state acts on
 * (simrun_actions.c: each state reads its own fields, and a connected
 * player in the fault phase its faults'). A field of another state may
 * hold a past time (a resume deadline once resumed, a leave time once
 * matched): counted, it would have the player looked at every slice for
 * nothing, most of a swarm's looks. */
static rt_time_ns wake_of(const simrun_t *run, const player_t *p) {
  const player_schedule_t *s = &p->sched;
  rt_time_ns t = NEVER;
  switch (p->state) {
  case B_NEW: return p->plan.arrive_at;
  case B_AWAY: return s->reconnect_at;
  case B_CONNECTING:
  case B_LEAVING:
  case B_GONE: return NEVER; /* its records move it on */
  case B_IDLE: t = s->next_join; break;
  case B_QUEUED: t = s->leave_at; break;
  case B_RESUMING: t = s->resume_deadline; break;
  case B_PLAYING:
    t = min_ns(min_ns(s->next_click, s->cookie_at),
               min_ns(s->quit_at, s->away_at));
    t = min_ns(t, min_ns(min_ns(s->twin_at, s->abuse_at), s->edge_at));
    break;
  }
  if (simrun__faulty(run, p)) {
    t = min_ns(t, min_ns(s->stall_at, s->stall_end));
    t = min_ns(t, min_ns(s->reset_at, s->churn_at));
  }
  return t;
}

static bool has_records(const player_t *p) {
  for (uint32_t k = 0; k < SIMRUN_BOTS_PER_PLAYER; k++) {
    uint32_t n;
    if (p->bots[k].bot != NULL &&
        (sim_bot_records(p->bots[k].bot, &n), n > p->bots[k].seen))
      return true;
  }
  return false;
}

void simrun__brains(simrun_t *run) {
  rt_time_ns now = simrun__now(run);
  /* Nobody due and no news: every player would pass the first test below,
   * and next_edge would come out as it is. */
  if (!run->news_any && now < run->wake_min)
    return;
  run->news_any = false; /* news from now on is for the next look */
  run->next_edge = NEVER;
  rt_time_ns wake_min = NEVER;
  for (uint32_t i = 0; i < run->players_len && !run->failed; i++) {
    if (now < run->wake[i] && !run->news[i]) {
      /* The test below, without touching the player: a player gone with
       * no bot has edge NEVER (set on its last look). */
      if (run->edge[i] < run->next_edge)
        run->next_edge = run->edge[i];
      if (run->wake[i] < wake_min)
        wake_min = run->wake[i];
      continue;
    }
    player_t *p = &run->players[i];
    run->news[i] = 0; /* read_records below reads all of it */
    if (p->state == B_GONE && simrun__cur_bot(p) == NULL) {
      run->wake[i] = run->edge[i] = NEVER; /* for good */
      continue;
    }
    if (now < p->sched.wake_at && !has_records(p)) {
      if (p->sched.edge_at < run->next_edge)
        run->next_edge = p->sched.edge_at;
      if (run->wake[i] < wake_min)
        wake_min = run->wake[i];
      continue; /* nothing new, nothing due */
    }
    simrun__read_records(run, p);
    simrun__poll_read(run, p);
    /* A manual player's bot arrives; then the test drives it. */
    if (!p->plan.manual || p->state == B_NEW)
      simrun__act(run, p, now);
    reap(run, p);
    /* An edge belongs to the game it was timed for. */
    if (p->state != B_PLAYING)
      p->sched.edge_at = NEVER;
    if (p->sched.edge_at < run->next_edge)
      run->next_edge = p->sched.edge_at;
    /* A bot that is not open yet (or still closing) is waited for through
     * its records; a dead one is reaped on the next look. */
    p->sched.wake_at = wake_of(run, p);
    if (p->belief.read_pending && p->sched.wake_at > now + READ_POLL)
      p->sched.wake_at = now + READ_POLL;
    if (p->bots[0].dead || p->bots[1].dead)
      p->sched.wake_at = now;
    run->wake[i] = p->sched.wake_at;
    run->edge[i] = p->sched.edge_at;
    if (run->wake[i] < wake_min)
      wake_min = run->wake[i];
  }
  /* A failure stops the look short: the next one is whole. */
  run->wake_min = run->failed ? 0 : wake_min;
}

/* ---- For tests ----------------------------------------------------------- */

sim_bot_t *simrun_bot(simrun_t *run, uint32_t player) {
  return player < run->players_len ? simrun__cur_bot(&run->players[player])
                                   : NULL;
}

void simrun_player_view(const simrun_t *run, uint32_t player,
                        simrun_player_view_t *out) {
  memset(out, 0, sizeof(*out));
  if (player >= run->players_len)
    return;
  const player_t *p = &run->players[player];
  out->games_started = p->belief.games_started;
  out->games_over = p->belief.games_over;
  out->connections = p->belief.connections;
  out->clicks_sent = p->belief.clicks_sent;
  out->departed = p->state == B_GONE;
  snprintf(out->user_id, sizeof(out->user_id), "%s", p->belief.user_id);
  snprintf(out->room_id, sizeof(out->room_id), "%s", p->belief.room);
  out->last_over = p->belief.last_over;
}
