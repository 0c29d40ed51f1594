/* test_game_sim_load.c: the game in the simulated world (test_game_sim.c
 * tells how), under load and faults: a swarm joining and leaving, slow
 * and stalled readers, the Store failing at the end of a game, and the
 * same seed replaying the same match bit for bit. The fixture is
 * game_sim_fixture.h; one binary, test_game_sim.
 */
#include "game_sim_fixture.h"

#include "game.h"
#include "game_store.h"
#include "net_server.h"
#include "rt_world.h"
#include "sim_bot.h"

#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Helpers of this file ------------------------------------------------ */

/* fx->fault's plan as the Store's fault hook (fault_plan_t). */
static int fault_hook(void *ctx, game_store_op_t op) {
  static const int codes[] = {SQLITE_BUSY, SQLITE_FULL, SQLITE_IOERR};
  fault_plan_t *f = ctx;
  if (op != GAME_STORE_OP_RECORD)
    return SQLITE_OK;
  f->record_calls++;
  rt_time_ns now = rt_now(f->w);
  if (now < f->from || now >= f->until)
    return SQLITE_OK;
  return codes[f->failed++ % 3];
}

/* Forget logged clicks sent at or after `from`; returns how many. */
static uint32_t log_trim(click_log_t *log, rt_time_ns from) {
  uint32_t n = log->n;
  while (log->n > 0 && log->sent[log->n - 1] >= from)
    log->n--;
  return n - log->n;
}

/* ---- Matchmaking: a swarm ------------------------------------------------ */

#define SWARM 40u
#define SWARM_ACTIONS_MAX 12u

typedef enum { BELIEF_IDLE = 0, BELIEF_QUEUED, BELIEF_PLAYING } belief_t;

typedef struct swarm_bot {
  sim_bot_t *b;
  rt_time_ns spawn_at;
  belief_t belief;
  rt_time_ns next_action;
  rt_time_ns quit_at;
  uint32_t actions;
  bool last_was_join;
  rt_time_ns last_join_at;
  uint32_t starts_seen, overs_seen;
} swarm_bot_t;

static rt_time_ns rand_between(rt_rng_t *rng, rt_time_ns lo, rt_time_ns hi) {
  return (rt_time_ns)rt_rng_range(rng, lo, hi);
}

Test(game_sim,
     a_swarm_joining_and_leaving_is_matched_in_pairs_of_distinct_players) {
  fx_t *fx = fx_create(
      "a_swarm_joining_and_leaving_is_matched_in_pairs_of_distinct_players",
      1012);
  fx_start(fx);
  rt_rng_t rng;
  rt_world_rng(fx->w, RT_RNG_KEY(RT_RNG_SUB_TEST, 1), &rng);
  swarm_bot_t sb[SWARM];
  memset(sb, 0, sizeof(sb));
  for (uint32_t i = 0; i < SWARM; i++) {
    sb[i].spawn_at = rand_between(&rng, 0, 5 * SEC);
    sb[i].quit_at = RT_TIME_NEVER;
  }
  /* Scripted joins and leaves until script_end; then one last join for
   * everyone idle, until joins_end; then the games run out (bounded). */
  const rt_time_ns script_end = 40 * SEC, joins_end = 55 * SEC;
  const rt_time_ns settle_max = 120 * SEC;
  bool final_round = false;
  for (rt_time_ns t = 0; t <= settle_max; t += 10 * MS) {
    run_to(fx, t);
    if (t > joins_end) {
      game_stats_t now_st;
      game_get_stats(fx->game, &now_st);
      if (now_st.rooms == 0) {
        run_for(fx, SEC); /* the last GAME_OVERs are on their way */
        break;
      }
      continue;
    }
    if (!final_round && t >= script_end) {
      /* Last round: everyone not playing or queued joins once more. */
      final_round = true;
      for (uint32_t i = 0; i < SWARM; i++)
        sb[i].next_action = t + rand_between(&rng, 0, 2 * SEC);
    }
    for (uint32_t i = 0; i < SWARM; i++) {
      swarm_bot_t *s = &sb[i];
      if (s->b == NULL) {
        if (t < s->spawn_at)
          continue;
        char name[16];
        snprintf(name, sizeof(name), "p%02u", i);
        sim_link_config_t link = {.latency =
                                      rand_between(&rng, 1 * MS, 30 * MS),
                                  .jitter = rand_between(&rng, 0, 5 * MS)};
        s->b = bot_add(fx, name, &link, &link);
        s->next_action = t + rand_between(&rng, 500 * MS, 3 * SEC);
        continue;
      }
      uint32_t starts = count_of(s->b, SIM_BOT_GAME_START);
      uint32_t overs = count_of(s->b, SIM_BOT_GAME_OVER);
      if (starts > s->starts_seen) {
        s->starts_seen = starts;
        s->belief = BELIEF_PLAYING;
        s->quit_at = rt_rng_below(&rng, 3) == 0
                         ? t + rand_between(&rng, 0, 3 * SEC)
                         : RT_TIME_NEVER;
      }
      if (overs > s->overs_seen) {
        s->overs_seen = overs;
        s->belief = BELIEF_IDLE;
        s->quit_at = RT_TIME_NEVER;
        s->next_action = t + rand_between(&rng, 0, 2 * SEC);
      }
      if (sim_bot_state(s->b) != SIM_BOT_OPEN)
        continue;
      if (s->belief == BELIEF_PLAYING && t >= s->quit_at) {
        CHECK(fx, sim_bot_quit(s->b) == RT_OK, "quit");
        s->quit_at = RT_TIME_NEVER;
      }
      bool scripted = !final_round && s->actions < SWARM_ACTIONS_MAX;
      bool last_join = final_round && s->belief == BELIEF_IDLE &&
                       s->next_action != RT_TIME_NEVER && t <= joins_end;
      if (t < s->next_action || s->belief == BELIEF_PLAYING ||
          (!scripted && !last_join))
        continue;
      if (s->belief == BELIEF_IDLE) {
        CHECK(fx, sim_bot_join(s->b) == RT_OK, "join");
        s->belief = BELIEF_QUEUED;
        s->last_was_join = true;
        s->last_join_at = t;
      } else if (scripted && rt_rng_below(&rng, 2) == 0) {
        CHECK(fx, sim_bot_leave(s->b) == RT_OK, "leave");
        s->belief = BELIEF_IDLE;
        s->last_was_join = false;
      }
      s->actions++;
      s->next_action = final_round ? RT_TIME_NEVER
                                   : t + rand_between(&rng, 100 * MS, 3 * SEC);
    }
  }
  /* Every room seats two distinct players who see each other. */
  game_stats_t st;
  game_get_stats(fx->game, &st);
  uint32_t rooms = 0, waiting = 0;
  for (uint32_t i = 0; i < SWARM; i++) {
    sim_bot_t *b = sb[i].b;
    CHECK(fx, b != NULL && sim_bot_state(b) == SIM_BOT_OPEN, "bot %u", i);
    uint32_t n;
    const sim_bot_record_t *r = sim_bot_records(b, &n);
    bool in_room = false;
    char room[32] = "";
    for (uint32_t k = 0; k < n; k++) {
      if (r[k].kind == SIM_BOT_ERROR)
        CHECK(fx, strcmp(r[k].error_code, "not_in_game") == 0,
              "bot %u: error %s", i, r[k].error_code);
      if (r[k].kind == SIM_BOT_GAME_START) {
        /* Never in two rooms: a start only after the previous game's end. */
        CHECK(fx, !in_room, "%s: GAME_START for %s while in %s",
              sim_bot_name(b), r[k].room_id, room);
        CHECK(fx, !r[k].resumed, "nobody reconnects here");
        CHECK(fx, strcmp(r[k].opponent, sim_bot_user_id(b)) != 0,
              "bot %u matched with itself", i);
        in_room = true;
        snprintf(room, sizeof(room), "%s", r[k].room_id);
        /* The opponent got the same room, with the other role, seeing us. */
        uint32_t found = 0;
        for (uint32_t j = 0; j < SWARM; j++) {
          if (j == i)
            continue;
          sim_bot_record_t o;
          for (uint32_t q = 0; nth(sb[j].b, SIM_BOT_GAME_START, q, &o); q++) {
            if (strcmp(o.room_id, r[k].room_id) != 0)
              continue;
            found++;
            CHECK(fx, strcmp(sim_bot_user_id(sb[j].b), r[k].opponent) == 0,
                  "room %s: bot %u is not the opponent", o.room_id, j);
            CHECK(fx, strcmp(o.opponent, sim_bot_user_id(b)) == 0,
                  "room %s: the opponent sees another", o.room_id);
            CHECK(fx, strcmp(o.role, r[k].role) != 0, "distinct roles");
          }
        }
        CHECK(fx, found == 1, "room %s has %u other players", r[k].room_id,
              found);
        if (strcmp(r[k].role, "p1") == 0)
          rooms++;
      }
      if (r[k].kind == SIM_BOT_GAME_OVER) {
        CHECK(fx, in_room, "bot %u: GAME_OVER outside a room", i);
        in_room = false;
      }
    }
    CHECK(fx, !in_room, "%s: a game never ended", sim_bot_name(b));
    /* Still waiting: joined last, and no game started since. */
    const sim_bot_record_t *last = sim_bot_last(b, SIM_BOT_GAME_START);
    if (sb[i].last_was_join && (last == NULL || last->at < sb[i].last_join_at))
      waiting++;
  }
  CHECK(fx, rooms == st.rooms_started, "%u rooms seen, %" PRIu64 " started",
        rooms, st.rooms_started);
  CHECK(fx, rooms >= SWARM / 2, "only %u rooms", rooms);
  CHECK(fx,
        st.rooms_finished[GAME_END_TIME] + st.rooms_finished[GAME_END_QUIT] +
                st.rooms_finished[GAME_END_DISCONNECTED] ==
            rooms,
        "every room finished");
  CHECK(fx, waiting <= 1, "%u players still waiting", waiting);
  CHECK(fx, st.queued == waiting, "the Manager queues %u, bots say %u",
        st.queued, waiting);
  CHECK(fx, st.players == SWARM && st.connected == SWARM && st.rooms == 0,
        "players %u connected %u rooms %u", st.players, st.connected, st.rooms);
  fx_free(fx);
}

/* ---- Flow control -------------------------------------------------------- */

/* GET returning the raw body (copied into out). */
static int http_get_text(fx_t *fx, sim_bot_t *b, const char *path, char *out,
                         size_t cap) {
  CHECK(fx, sim_bot_http_get(b, path, false) == RT_OK, "GET %s", path);
  rt_time_ns deadline = now_of(fx) + 5 * SEC;
  int status = 0;
  const char *body = NULL;
  size_t len = 0;
  while (!sim_bot_http_result(b, &status, &body, &len) && now_of(fx) < deadline)
    run_for(fx, STEP);
  CHECK(fx, sim_bot_http_result(b, &status, &body, &len), "GET %s", path);
  snprintf(out, cap, "%.*s", (int)len, body);
  return status;
}

/* The value of one exact metric line ("name{labels} value"), or -1. */
static double metric(const char *text, const char *series) {
  size_t n = strlen(series);
  for (const char *p = text; (p = strstr(p, series)) != NULL; p += n)
    if ((p == text || p[-1] == '\n') && p[n] == ' ')
      return strtod(p + n + 1, NULL);
  return -1;
}

Test(game_sim, a_slow_reader_loses_only_droppable_messages_and_slows_nobody) {
  fx_t *fx = fx_create(
      "a_slow_reader_loses_only_droppable_messages_and_slows_nobody", 1013);
  /* 300 B/s cannot carry ~2.6 KB/s of the opponent's clicks. The Client
   * hands frames to the connection below 2 KiB of backlog (16 KiB by
   * default): at 300 B/s that is ~7 s of data in flight rather than ~55 s,
   * which would outlast the 60 s pong wait of a reader that never writes. */
  fx->game_cfg.conn_high_water = 2048;
  fx_start(fx);
  sim_link_config_t slow = {.latency = LATENCY, .bandwidth = 300};
  sim_bot_t *ada = bot_add(fx, "Ada", &LINK, &slow);
  sim_bot_t *bob = bot_add(fx, "Bob", &LINK, &LINK);
  match_t m;
  /* GAME_START is ~200 bytes: at 300 B/s it reaches Ada later than Bob. */
  wait_state(fx, ada, SIM_BOT_OPEN, 10 * SEC);
  wait_state(fx, bob, SIM_BOT_OPEN, 10 * SEC);
  CHECK(fx, sim_bot_join(ada) == RT_OK && sim_bot_join(bob) == RT_OK, "join");
  sim_bot_record_t sb =
      wait_kind(fx, bob, SIM_BOT_GAME_START, 1, now_of(fx) + 5 * SEC);
  sim_bot_record_t sa =
      wait_kind(fx, ada, SIM_BOT_GAME_START, 1, now_of(fx) + 5 * SEC);
  int rb = strcmp(sb.role, "p1") == 0 ? 0 : 1;
  m.by_role[rb] = bob;
  m.by_role[1 - rb] = ada;
  m.start[rb] = sb;
  m.start[1 - rb] = sa;
  m.t0 = sb.at - LATENCY;
  m.t_run = m.t0 + fx->game_cfg.countdown;
  m.t_end = m.t_run + (rt_time_ns)fx->game_cfg.game_seconds * SEC;
  /* Frames queued together leave in one write, and a simulated segment
   * arrives whole: GAME_START shares its write with the first state UPDATE
   * (~300 bytes, a second at 300 B/s). */
  CHECK(fx, sa.at > sb.at && sa.at < m.t_run + SEC, "Ada's GAME_START is late");
  click_log_t log;
  memset(&log, 0, sizeof(log));
  for (rt_time_ns t = m.t_run + 10 * MS; t < m.t_end - 50 * MS; t += 40 * MS) {
    run_to(fx, t);
    click(fx, bob, &log);
  }
  sim_bot_record_t over_b =
      wait_kind(fx, bob, SIM_BOT_GAME_OVER, 1, m.t_end + SEC);
  CHECK(fx, over_b.at == m.t_end + LATENCY, "Bob's end is on time");
  /* Bob's answers all came back in exactly the links' latency. */
  int32_t bob_score = check_clicks(fx, &m, bob, &log);
  sim_bot_record_t over_a =
      wait_kind(fx, ada, SIM_BOT_GAME_OVER, 1, m.t_end + 40 * SEC);
  CHECK(fx, over_a.at > over_b.at + 2 * SEC, "Ada's end is late: %.3f",
        (double)over_a.at / SEC);
  CHECK(fx,
        strcmp(over_a.winner, over_b.winner) == 0 &&
            strcmp(over_a.reason, "time") == 0 &&
            over_a.p1_score == over_b.p1_score &&
            over_a.p2_score == over_b.p2_score,
        "the same GAME_OVER");
  CHECK(fx, score_of(&over_b, rb) == bob_score, "Bob's score");
  /* Never dropped: GAME_START, every COOKIE_SPAWN (the same ones, in
   * order), GAME_OVER last; no ERROR. */
  uint32_t spawns = count_of(bob, SIM_BOT_COOKIE_SPAWN);
  CHECK(fx, spawns >= 3 && count_of(ada, SIM_BOT_COOKIE_SPAWN) == spawns,
        "spawns: Ada %u, Bob %u", count_of(ada, SIM_BOT_COOKIE_SPAWN), spawns);
  for (uint32_t i = 0; i < spawns; i++) {
    sim_bot_record_t a = {0}, b = {0};
    nth(ada, SIM_BOT_COOKIE_SPAWN, i, &a);
    nth(bob, SIM_BOT_COOKIE_SPAWN, i, &b);
    CHECK(fx, a.x == b.x && a.y == b.y && a.at >= b.at, "spawn %u", i);
  }
  uint32_t n;
  const sim_bot_record_t *r = sim_bot_records(ada, &n);
  CHECK(fx, r[n - 1].kind == SIM_BOT_GAME_OVER, "GAME_OVER comes last");
  CHECK(fx,
        count_of(ada, SIM_BOT_ERROR) == 0 &&
            count_of(ada, SIM_BOT_GAME_START) == 1,
        "one GAME_START, no ERROR");
  /* Ticks coalesce: fewer, still counting down. */
  uint32_t ticks_a = count_of(ada, SIM_BOT_UPDATE_TICK);
  uint32_t ticks_b = count_of(bob, SIM_BOT_UPDATE_TICK);
  CHECK(fx, ticks_b == fx->game_cfg.game_seconds && ticks_a < ticks_b,
        "ticks: Ada %u, Bob %u", ticks_a, ticks_b);
  int32_t last_tr = INT32_MAX;
  for (uint32_t i = 0; nth(ada, SIM_BOT_UPDATE_TICK, i, &sa); i++) {
    CHECK(fx, sa.time_remaining < last_tr, "ticks in order");
    last_tr = sa.time_remaining;
  }
  /* Latest wins: the last state always gets through, however slow. */
  CHECK(fx, last_tr == 1, "Ada's clock stopped at %d", last_tr);
  /* Every droppable frame for Ada arrived, was dropped or replaced, and
   * the counters say so. */
  game_stats_t st;
  game_get_stats(fx->game, &st);
  rt_world_stats_t ws;
  rt_world_stats(fx->w, &ws);
  uint32_t droppable_a = count_of(ada, SIM_BOT_OPPONENT_CLICK) +
                         count_of(ada, SIM_BOT_UPDATE_CLICK);
  CHECK(fx, st.out_dropped > 0 && st.out_tick_replaced > 0,
        "drops %" PRIu64 ", ticks replaced %" PRIu64, st.out_dropped,
        st.out_tick_replaced);
  /* Each of Bob's clicks made two droppable frames for Ada, each second a
   * tick: each arrived, or was dropped, or (ticks) replaced by a newer. */
  CHECK(fx,
        droppable_a + st.out_dropped + ws.mailbox[RT_MB_DROPPED] ==
            2 * (uint64_t)log.n,
        "Ada: %u droppable frames + %" PRIu64 " dropped, Bob clicked %u",
        droppable_a, st.out_dropped, log.n);
  CHECK(fx,
        ticks_a + st.out_tick_replaced + ws.mailbox[RT_MB_REPLACED] == ticks_b,
        "ticks: %u + %" PRIu64 " replaced", ticks_a, st.out_tick_replaced);
  CHECK(fx,
        st.kicks[GAME_KICK_WRITE_WAIT] == 0 &&
            st.kicks[GAME_KICK_MUST_OVERFLOW] == 0 &&
            sim_bot_state(ada) == SIM_BOT_OPEN,
        "slow is not stalled: Ada stays");
  /* /metrics exports the same counts. */
  size_t text_cap = 64 * 1024;
  char *text = malloc(text_cap);
  CHECK(fx, text != NULL, "malloc");
  CHECK(fx, http_get_text(fx, bob, "/metrics", text, text_cap) == 200,
        "metrics");
  CHECK(fx,
        metric(text, "overcookied_drops_total{reason=\"backpressure\"}") ==
            (double)st.out_dropped,
        "metrics: backpressure drops");
  CHECK(fx,
        metric(text, "overcookied_drops_total{reason=\"tick_replaced\"}") ==
            (double)st.out_tick_replaced,
        "metrics: ticks replaced");
  free(text);
  fx_free(fx);
}

Test(game_sim, a_stalled_reader_is_cut_with_1008_and_its_opponent_wins) {
  fx_t *fx = fx_create(
      "a_stalled_reader_is_cut_with_1008_and_its_opponent_wins", 1014);
  fx->game_cfg.conn_high_water = 2048;
  fx->game_cfg.write_wait = 3 * SEC;
  fx->game_cfg.game_seconds = 30; /* long enough to end otherwise */
  fx_start(fx);
  sim_bot_t *ada = bot_add(fx, "Ada", &LINK, &LINK);
  sim_bot_t *bob = bot_add(fx, "Bob", &LINK, &LINK);
  match_t m;
  match_start(fx, ada, bob, &m);
  run_to(fx, m.t_run);
  CHECK(fx, sim_bot_set_reading(ada, false) == RT_OK, "stall");
  rt_time_ns stalled_at = m.t_run;
  click_log_t log;
  memset(&log, 0, sizeof(log));
  rt_time_ns kicked_at = 0, gone_at = 0;
  uint32_t i1008 = net_server_close_code_index(1008);
  for (rt_time_ns t = m.t_run + 10 * MS;
       t < m.t_end && count_of(bob, SIM_BOT_GAME_OVER) == 0; t += 50 * MS) {
    for (rt_time_ns u = t; u < t + 50 * MS; u += MS) {
      run_to(fx, u);
      game_stats_t st;
      game_get_stats(fx->game, &st);
      if (kicked_at == 0 && st.kicks[GAME_KICK_WRITE_WAIT] > 0)
        kicked_at = u;
      net_server_stats_t ns;
      net_server_get_stats(fx->srv, &ns);
      if (gone_at == 0 && ns.ws_close_codes[i1008] > 0)
        gone_at = u;
    }
    if (count_of(bob, SIM_BOT_GAME_OVER) == 0)
      click(fx, bob, &log);
  }
  sim_bot_record_t over = wait_kind(fx, bob, SIM_BOT_GAME_OVER, 1, m.t_end);
  CHECK(fx, kicked_at > 0 && gone_at > 0, "kicked %.3f, gone %.3f",
        (double)kicked_at / SEC, (double)gone_at / SEC);
  /* Cut once its output made no progress for write_wait... */
  CHECK(fx,
        kicked_at >= stalled_at + fx->game_cfg.write_wait &&
            kicked_at <= stalled_at + fx->game_cfg.write_wait + 2 * SEC,
        "kicked %.3f s after the stall",
        (double)(kicked_at - stalled_at) / SEC);
  /* ...the connection is gone at most the close wait (5 s) later... */
  CHECK(fx, gone_at - kicked_at <= 5 * SEC, "gone %.3f s after the kick",
        (double)(gone_at - kicked_at) / SEC);
  /* ...and the grace runs from there. */
  CHECK(fx, over.at == gone_at + fx->game_cfg.reconnect_grace + LATENCY,
        "GAME_OVER %.3f s after the connection went",
        (double)(over.at - gone_at) / SEC);
  CHECK(fx,
        strcmp(over.winner, sim_bot_user_id(bob)) == 0 &&
            strcmp(over.reason, "opponent_disconnected") == 0,
        "Bob wins by opponent_disconnected");
  /* Clicks that reached the Room after it finished (GAME_OVER was on its
   * way) are refused; every earlier one scored. */
  uint32_t late = log_trim(&log, over.at - 2 * LATENCY);
  CHECK(fx, late <= 1 && count_of(bob, SIM_BOT_ERROR) == late,
        "%u late clicks, %u errors", late, count_of(bob, SIM_BOT_ERROR));
  CHECK(fx,
        score_of(&over, role_of(&m, bob)) == check_clicks(fx, &m, bob, &log),
        "Bob's score");
  game_stats_t st;
  game_get_stats(fx->game, &st);
  CHECK(fx,
        st.kicks[GAME_KICK_WRITE_WAIT] == 1 &&
            st.kicks[GAME_KICK_MUST_OVERFLOW] == 0,
        "one write_wait kick");
  /* Reading again, Ada finds what was sent, then the 1008 close frame. */
  CHECK(fx, sim_bot_set_reading(ada, true) == RT_OK, "read");
  sim_bot_record_t closed =
      wait_kind(fx, ada, SIM_BOT_CLOSED, 1, now_of(fx) + SEC);
  CHECK(fx, closed.code == 1008, "closed with %u", closed.code);
  CHECK(fx, count_of(ada, SIM_BOT_GAME_OVER) == 0, "too late for Ada");
  fx_free(fx);
}

/* Under backpressure a newer tick supersedes a queued one, and is queued
 * last: put in the older's place it would overtake the click UPDATEs
 * produced before it, and a slow reader would see the opponent's score go
 * down (from 50 to 26 here, before). PROTOCOL.md: messages arrive in the
 * order produced, except that a droppable one may be dropped or replaced. */
Test(game_sim, a_slow_reader_never_sees_a_score_go_down) {
  fx_t *fx = fx_create("a_slow_reader_never_sees_a_score_go_down", 2005);
  fx->game_cfg.conn_high_water = 2048;
  fx_start(fx);
  sim_link_config_t slow = {.latency = LATENCY, .bandwidth = 300};
  sim_bot_t *ada = bot_add(fx, "Ada", &LINK, &slow);
  sim_bot_t *bob = bot_add(fx, "Bob", &LINK, &LINK);
  wait_state(fx, ada, SIM_BOT_OPEN, 10 * SEC);
  wait_state(fx, bob, SIM_BOT_OPEN, 10 * SEC);
  CHECK(fx, sim_bot_join(ada) == RT_OK && sim_bot_join(bob) == RT_OK, "join");
  sim_bot_record_t sb =
      wait_kind(fx, bob, SIM_BOT_GAME_START, 1, now_of(fx) + 5 * SEC);
  int rb = strcmp(sb.role, "p1") == 0 ? 0 : 1;
  rt_time_ns t_run = sb.at - LATENCY + fx->game_cfg.countdown;
  rt_time_ns t_end = t_run + (rt_time_ns)fx->game_cfg.game_seconds * SEC;
  for (rt_time_ns t = t_run + 10 * MS; t < t_end - 50 * MS; t += 40 * MS) {
    run_to(fx, t);
    CHECK(fx, sim_bot_click(bob, -1) == RT_OK, "click");
  }
  wait_kind(fx, ada, SIM_BOT_GAME_OVER, 1, t_end + 40 * SEC);
  uint32_t n;
  const sim_bot_record_t *r = sim_bot_records(ada, &n);
  int32_t seen = 0;
  for (uint32_t k = 0; k < n; k++) {
    if (r[k].kind != SIM_BOT_UPDATE_TICK && r[k].kind != SIM_BOT_UPDATE_CLICK &&
        r[k].kind != SIM_BOT_GAME_OVER)
      continue;
    int32_t s = rb == 0 ? r[k].p1_score : r[k].p2_score;
    CHECK(fx, s >= seen, "Ada saw Bob's score go from %d to %d at %.3f (%s)",
          seen, s, (double)r[k].at / SEC,
          sim_bot_kind_name((sim_bot_kind_t)r[k].kind));
    seen = s;
  }
  fx_free(fx);
}

/* ---- The Store under faults ---------------------------------------------- */

Test(game_sim, store_faults_at_the_end_delay_game_over_and_record_it_once) {
  fx_t *fx = fx_create(
      "store_faults_at_the_end_delay_game_over_and_record_it_once", 1015);
  fx->store_cfg.fault = fault_hook;
  fx->store_cfg.fault_ctx = &fx->fault;
  fx_start(fx);
  sim_bot_t *ada = bot_add(fx, "Ada", &LINK, &LINK);
  sim_bot_t *bob = bot_add(fx, "Bob", &LINK, &LINK);
  match_t m;
  match_start(fx, ada, bob, &m);
  /* Longer than the Room's 5 s resend: the result reaches the Store twice. */
  fx->fault.from = 0;
  fx->fault.until = m.t_end + 7 * SEC;
  click_log_t logs[2];
  memset(logs, 0, sizeof(logs));
  click_together(fx, &m, logs, m.t_run + 10 * MS, m.t_end - 50 * MS, 500 * MS);
  /* The game is over but not yet recorded: clicks are refused, no
   * GAME_OVER yet. */
  run_to(fx, m.t_end + 1 * SEC);
  CHECK(fx, count_of(ada, SIM_BOT_GAME_OVER) == 0, "no GAME_OVER yet");
  CHECK(fx, sim_bot_click(ada, 999) == RT_OK, "click");
  run_for(fx, 100 * MS);
  sim_bot_record_t e, ack;
  CHECK(fx,
        nth(ada, SIM_BOT_ERROR, 0, &e) &&
            strcmp(e.error_code, "not_in_game") == 0 && !ack_of(ada, 999, &ack),
        "a click after the end is refused");
  run_to(fx, fx->fault.until + LATENCY - 1);
  CHECK(fx,
        count_of(ada, SIM_BOT_GAME_OVER) == 0 &&
            count_of(bob, SIM_BOT_GAME_OVER) == 0,
        "no GAME_OVER while the Store fails");
  sim_bot_record_t over =
      wait_kind(fx, ada, SIM_BOT_GAME_OVER, 1, fx->fault.until + 3 * SEC);
  wait_kind(fx, bob, SIM_BOT_GAME_OVER, 1, fx->fault.until + 3 * SEC);
  CHECK(fx,
        over.at >= fx->fault.until + LATENCY &&
            over.at <= fx->fault.until + 2 * SEC + LATENCY,
        "GAME_OVER %.3f s after the Store recovered",
        (double)(over.at - fx->fault.until) / SEC);
  sim_bot_record_t same;
  check_same_game_over(fx, &m, &same);
  CHECK(fx,
        same.p1_score == (int32_t)logs[0].n &&
            same.p2_score == (int32_t)logs[1].n &&
            strcmp(same.reason, "time") == 0,
        "the result is the game's");
  run_for(fx, 10 * SEC); /* let any resend settle */
  game_store_stats_t ss;
  game_store_get_stats(game_store(fx->game), &ss);
  CHECK(fx, ss.errors_busy > 0 && ss.errors_full > 0 && ss.errors_io > 0,
        "busy %" PRIu64 " full %" PRIu64 " io %" PRIu64, ss.errors_busy,
        ss.errors_full, ss.errors_io);
  /* The Room's resend during the outage joined the waiting result. */
  CHECK(fx,
        ss.recorded == 1 && ss.duplicates == 0 && ss.resends_merged == 1 &&
            ss.pending == 0,
        "recorded %" PRIu64 " duplicates %" PRIu64 " merged %" PRIu64
        " pending %u",
        ss.recorded, ss.duplicates, ss.resends_merged, ss.pending);
  CHECK(fx, ss.retries == fx->fault.failed, "a retry per failure");
  int status;
  for (int i = 0; i < 2; i++) {
    cJSON *h = http_get_json(fx, m.by_role[i], "/api/history", true, &status);
    CHECK(fx,
          status == 200 && json_num(h, "totalCount") == 1 &&
              cJSON_GetArraySize(
                  cJSON_GetObjectItemCaseSensitive(h, "games")) == 1,
          "in history exactly once");
    cJSON_Delete(h);
  }
  cJSON *lb = http_get_json(fx, ada, "/api/leaderboard", false, &status);
  CHECK(fx, status == 200 && cJSON_GetArraySize(lb) == 2, "leaderboard");
  for (int i = 0; i < 2; i++)
    CHECK(fx, json_num(cJSON_GetArrayItem(lb, i), "games") == 1,
          "counted once in the totals");
  cJSON_Delete(lb);
  game_stats_t st;
  game_get_stats(fx->game, &st);
  CHECK(fx, st.rooms_finished[GAME_END_TIME] == 1 && st.rooms == 0,
        "the room finished once");
  fx_free(fx);
}

/* ---- Determinism --------------------------------------------------------- */

typedef struct replay_result {
  uint64_t hash;
  uint64_t deliveries;
  uint32_t records[2];
  sim_bot_record_t last[2];
  char user[2][RT_SUBJECT_MAX];
} replay_result_t;

/* A match with jittery links, a golden race, a drop and a resume. */
static void replay_once(fx_t *fx, replay_result_t *out) {
  fx_start(fx);
  sim_link_config_t jittery = {.latency = 3 * MS, .jitter = 4 * MS};
  sim_bot_t *ada = bot_add(fx, "Ada", &jittery, &jittery);
  sim_bot_t *bob = bot_add(fx, "Bob", &jittery, &LINK);
  wait_state(fx, ada, SIM_BOT_OPEN, 5 * SEC);
  wait_state(fx, bob, SIM_BOT_OPEN, 5 * SEC);
  CHECK(fx, sim_bot_join(ada) == RT_OK && sim_bot_join(bob) == RT_OK, "join");
  sim_bot_record_t s = wait_kind(fx, bob, SIM_BOT_GAME_START, 1, 10 * SEC);
  rt_time_ns t_run = s.at - LATENCY + fx->game_cfg.countdown;
  uint32_t spawns = 0;
  for (rt_time_ns t = t_run; t < t_run + 12 * SEC; t += 37 * MS) {
    run_to(fx, t);
    CHECK(fx, sim_bot_click(ada, -1) == RT_OK, "click");
    if ((t / (37 * MS)) % 3 == 0)
      CHECK(fx, sim_bot_clicks(bob, 2, t / MS) == RT_OK, "clicks");
    if (count_of(bob, SIM_BOT_COOKIE_SPAWN) > spawns) {
      spawns = count_of(bob, SIM_BOT_COOKIE_SPAWN);
      CHECK(fx,
            sim_bot_cookie_click(ada) == RT_OK &&
                sim_bot_cookie_click(bob) == RT_OK,
            "race");
    }
    if (t >= t_run + 3 * SEC && t < t_run + 3 * SEC + 37 * MS)
      CHECK(fx, sim_bot_disconnect(ada, SIM_BOT_CLOSE_RESET) == RT_OK, "drop");
    if (t >= t_run + 4 * SEC && t < t_run + 4 * SEC + 37 * MS)
      CHECK(fx, sim_bot_reconnect(ada) == RT_OK, "back");
  }
  run_for(fx, 2 * SEC);
  CHECK(fx, count_of(bob, SIM_BOT_GAME_OVER) == 1, "the game ended");
  out->hash = rt_world_hash(fx->w);
  out->deliveries = rt_world_deliveries(fx->w);
  sim_bot_t *bots[2] = {ada, bob};
  for (int i = 0; i < 2; i++) {
    uint32_t n;
    const sim_bot_record_t *r = sim_bot_records(bots[i], &n);
    out->records[i] = n;
    memcpy(&out->last[i], &r[n - 1], sizeof(out->last[i]));
    snprintf(out->user[i], sizeof(out->user[i]), "%s",
             sim_bot_user_id(bots[i]));
  }
}

Test(game_sim, the_same_seed_replays_the_same_match_bit_for_bit) {
  replay_result_t a, b, c;
  memset(&a, 0, sizeof(a));
  memset(&b, 0, sizeof(b));
  memset(&c, 0, sizeof(c));
  const char *name = "the_same_seed_replays_the_same_match_bit_for_bit";
  fx_t *fx = fx_create(name, 1016);
  uint64_t seed = fx->seed;
  replay_once(fx, &a);
  fx_free(fx);
  fx = fx_create(name, 1016);
  replay_once(fx, &b);
  CHECK(fx, a.hash == b.hash && a.deliveries == b.deliveries,
        "hash %016" PRIx64 " vs %016" PRIx64 ", deliveries %" PRIu64
        " vs %" PRIu64,
        a.hash, b.hash, a.deliveries, b.deliveries);
  for (int i = 0; i < 2; i++) {
    CHECK(fx, a.records[i] == b.records[i], "records");
    CHECK(fx, memcmp(&a.last[i], &b.last[i], sizeof(a.last[i])) == 0,
          "the same last record");
    CHECK(fx, strcmp(a.user[i], b.user[i]) == 0, "the same user ids");
  }
  fx_free(fx);
  /* Another seed is another run. */
  fx = fx_create(name, seed + 1);
  fx->seed = seed + 1;
  replay_once(fx, &c);
  CHECK(fx, c.hash != a.hash, "seeds %" PRIu64 " and %" PRIu64 " agree", seed,
        seed + 1);
  fx_free(fx);
}
