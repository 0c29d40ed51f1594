/* simrun_checks.c: the run's checks (simrun.h). The runtime's and the
 * game's own (rt_world_check, game_check), what the players saw against
 * the Store, and the recovery (R1, R2) and liveness (L1, L2) checks. Each
 * reads state apart from the path it checks: the Store's rows, a history
 * parsed here, the Manager's seats. The first violation ends the run
 * (simrun__fail).
 */
#include "simrun_int.h"

#include "game_check.h"
#include "game_store.h"
#include "sim_redis.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <string.h>

int simrun_check(simrun_t *run) {
  if (run->failed)
    return -1;
  char why[SIMRUN_FAILURE_MAX];
  run->sum.checks++;
  /* Any check, by time or not, restarts both counts: of the deliveries
   * that may pass unchecked, and of the virtual time. One right after
   * another adds nothing (the 4,000-player cluster of tools/bench-sim ran
   * 2,953 checks counted from the last check of the same kind, 2,516 with
   * the deliveries' count restarted by any check, and runs 2,188 with
   * both, the same run). */
  run->next_check_deliveries =
      rt_world_deliveries(run->w) + run->cfg.check_deliveries;
  run->last_check = simrun__now(run);
  if (rt_world_check(run->w, why, sizeof(why)) < 0) {
    simrun__fail(run, "runtime: %s", why);
    return -1;
  }
  if (run->cluster)
    return simrun__cluster_check(run);
  if (game_check(run->game, why, sizeof(why)) < 0) {
    simrun__fail(run, "game: %s", why);
    return -1;
  }
  return 0;
}

/* The games of the instances that are up (one process: the one). */
static uint32_t live_games(const simrun_t *run,
                           game_t *out[SIMRUN_INSTANCES_MAX]) {
  uint32_t n = 0;
  for (uint32_t i = 0; i < run->inst_len; i++)
    if (run->inst[i].up)
      out[n++] = run->inst[i].server.game;
  return n;
}

/* ---- What the players saw ------------------------------------------------ */

/* Every GAME_OVER a player sees is its room's stored result, stored once,
 * seen once. */
void simrun__check_game_over(simrun_t *run, player_t *p, pbot_t *pb,
                             const sim_bot_record_t *r) {
  if (!pb->awaiting_over || r->conn != pb->room_conn) {
    simrun__fail(run,
                 "%s (%s): GAME_OVER on connection %u with no GAME_START on it",
                 p->name, p->belief.user_id, r->conn);
    return;
  }
  if (strcmp(pb->room, p->belief.last_over_room) == 0) {
    simrun__fail(run, "%s (%s): a second GAME_OVER for %s", p->name,
                 p->belief.user_id, pb->room);
    return;
  }
  game_result_t row;
  int found = game_store_find_game(simrun__store(run), pb->room, &row);
  if (found != 1) {
    simrun__fail(run,
                 "%s (%s): GAME_OVER for %s, which the Store does not hold",
                 p->name, p->belief.user_id, pb->room);
    return;
  }
  if (row.p1_score != r->p1_score || row.p2_score != r->p2_score ||
      strcmp(row.winner, r->winner) != 0 ||
      strcmp(row.reason, r->reason) != 0) {
    simrun__fail(run,
                 "%s: %s shows %d:%d winner=%s reason=%s; the Store has %d:%d "
                 "winner=%s reason=%s",
                 p->name, pb->room, r->p1_score, r->p2_score, r->winner,
                 r->reason, row.p1_score, row.p2_score, row.winner, row.reason);
    return;
  }
  if (strcmp(row.reason, "server_lost") != 0 &&
      !simrun__end_claimed(run, pb->room)) { /* (C6) */
    simrun__fail(run,
                 "%s: %s is stored as %s (winner %s), but its owner never "
                 "claimed its end",
                 p->name, pb->room, row.reason, row.winner);
    return;
  }
  bool p1 = strcmp(row.p1_id, p->belief.user_id) == 0;
  if (!p1 && strcmp(row.p2_id, p->belief.user_id) != 0) {
    simrun__fail(run, "%s (%s): GAME_OVER for %s, which seats %s and %s",
                 p->name, p->belief.user_id, pb->room, row.p1_id, row.p2_id);
    return;
  }
  int32_t mine = p1 ? row.p1_score : row.p2_score;
  if (strcmp(p->belief.room, pb->room) == 0 && p->belief.clicks_tracked &&
      (uint64_t)mine > 2 * p->belief.clicks_game)
    simrun__fail(run, "%s: scored %d in %s with %" PRIu64 " clicks sent",
                 p->name, mine, pb->room, p->belief.clicks_game);
}

static double json_num(const cJSON *o, const char *name) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
  return cJSON_IsNumber(v) ? v->valuedouble : -1e9;
}

static const char *json_str(const cJSON *o, const char *name) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
  return cJSON_IsString(v) ? v->valuestring : "";
}

/* The history shows the game the player just saw end, with its scores. */
void simrun__check_history(simrun_t *run, player_t *p, const char *body,
                           size_t len) {
  cJSON *root = cJSON_ParseWithLength(body, len);
  const cJSON *games = cJSON_GetObjectItemCaseSensitive(root, "games");
  const cJSON *found = NULL, *g = NULL;
  cJSON_ArrayForEach(g, games) {
    if (strcmp(json_str(g, "gameId"), p->belief.read_room) == 0)
      found = g;
  }
  const sim_bot_record_t *o = &p->belief.read_over;
  if (found == NULL) {
    simrun__fail(run, "%s (%s): its history lacks %s, whose GAME_OVER it saw",
                 p->name, p->belief.user_id, p->belief.read_room);
  } else {
    double mine = json_num(found, "score"),
           theirs = json_num(found, "opponentScore");
    bool p1 = mine == o->p1_score && theirs == o->p2_score;
    bool p2 = mine == o->p2_score && theirs == o->p1_score;
    if ((!p1 && !p2) || strcmp(json_str(found, "reason"), o->reason) != 0 ||
        strcmp(json_str(found, "winner"), o->winner) != 0)
      simrun__fail(run,
                   "%s: history has %s at %.0f:%.0f winner=%s reason=%s; its "
                   "GAME_OVER said %d:%d winner=%s reason=%s",
                   p->name, p->belief.read_room, mine, theirs,
                   json_str(found, "winner"), json_str(found, "reason"),
                   o->p1_score, o->p2_score, o->winner, o->reason);
  }
  cJSON_Delete(root);
}

/* ---- Recovery and liveness ----------------------------------------------- */

/* R1: every room that was running at F has ended. */
void simrun__check_r1(simrun_t *run) {
  run->r1_done = true;
  game_t *games[SIMRUN_INSTANCES_MAX];
  uint32_t n = live_games(run, games);
  for (uint32_t i = 0; i < run->rec_rooms_len && !run->failed; i++)
    for (uint32_t k = 0; k < n && !run->failed; k++)
      if (game_room_live(games[k], run->rec_rooms[i]))
        simrun__fail(run,
                   "liveness: room actor %" PRIu64 ", running when the faults "
                   "ended at %.3f s, still runs at R1",
                   run->rec_rooms[i], (double)run->fault_end / SEC);
}

/* R2: every player that had departed by F is forgotten by the Manager (no
 * room seats it, no connection is attached to it). */
void simrun__check_r2(simrun_t *run) {
  run->r2_done = true;
  for (uint32_t i = 0; i < run->rec_players_len && !run->failed; i++) {
    const player_t *p = &run->players[run->rec_players[i]];
    rt_actor_id_t room = 0;
    uint32_t role = 0;
    game_t *games[SIMRUN_INSTANCES_MAX];
    uint32_t n = live_games(run, games);
    int seat = -1;
    for (uint32_t k = 0; k < n && seat < 0; k++)
      seat = game_player_seat(games[k], p->belief.user_id, &room, &role);
    if (seat >= 0)
      simrun__fail(
          run,
          "liveness: %s (%s) departed before the faults ended at %.3f s; "
          "at R2 the Manager still holds it (%s)",
          p->name, p->belief.user_id, (double)run->fault_end / SEC,
          seat == 1 ? "playing" : "idle");
  }
}

/* L1: every game ended, and every player still connected (on an uncapped
 * link) saw its end. */
/* The stats of the instances that are up, summed where they add up. */
static void live_stats(const simrun_t *run, game_stats_t *gs,
                       uint32_t *rooms_live, uint32_t *clients_live,
                       uint32_t *connections, uint32_t *pending) {
  memset(gs, 0, sizeof(*gs));
  *rooms_live = *clients_live = *connections = *pending = 0;
  game_t *games[SIMRUN_INSTANCES_MAX];
  uint32_t n = live_games(run, games);
  for (uint32_t k = 0; k < n; k++) {
    game_stats_t one;
    game_get_stats(games[k], &one);
    gs->players += one.players;
    gs->connected += one.connected;
    gs->queued += one.queued;
    gs->rooms += one.rooms;
    for (int i = 0; i < GAME_END_REASON_COUNT_; i++)
      gs->rooms_finished[i] += one.rooms_finished[i];
    uint32_t r = 0, c = 0;
    game_live_counts(games[k], &r, &c);
    *rooms_live += r;
    *clients_live += c;
    game_store_stats_t ss;
    game_store_get_stats(game_store(games[k]), &ss);
    *pending += ss.pending;
  }
  for (uint32_t i = 0; i < run->inst_len; i++) {
    if (!run->inst[i].up)
      continue;
    net_server_stats_t ns;
    net_server_get_stats(run->inst[i].server.srv, &ns);
    *connections += ns.connections;
  }
}

/* A player on a slow downlink (its plan's bandwidth) whose game's end is
 * still on the wire: the bound below covers a healthy link, and a slow one
 * that the server does not cut (it reads, however slowly: net_server_probe.c)
 * may take (conn_high_water + a frame) / bandwidth longer, minutes at 300
 * B/s. Its bot believes it plays, so a JOIN_QUEUE it sent meanwhile (an
 * abuser's, "ignored while playing") may find the game over and queue it.
 * Such a player is forgiven at L1, as the end it has not read is (below). */
static bool slow_end_in_flight(const player_t *p) {
  const pbot_t *pb = &p->bots[p->cur];
  return p->plan.down.bandwidth > 0 && pb->bot != NULL && pb->awaiting_over &&
         sim_bot_state(pb->bot) == SIM_BOT_OPEN;
}

/* How many of the players queued at L1 are forgiven (slow_end_in_flight);
 * the first other queued player's index in *other, or UINT32_MAX. */
static uint32_t queued_forgiven(const simrun_t *run, uint32_t *other) {
  game_t *games[SIMRUN_INSTANCES_MAX];
  uint32_t n = live_games(run, games), forgiven = 0;
  *other = UINT32_MAX;
  for (uint32_t i = 0; i < run->players_len; i++) {
    const player_t *p = &run->players[i];
    bool queued = false;
    for (uint32_t k = 0; k < n && !queued; k++)
      queued = game_player_queued(games[k], p->belief.user_id);
    if (!queued)
      continue;
    if (slow_end_in_flight(p))
      forgiven++;
    else if (*other == UINT32_MAX)
      *other = i;
  }
  return forgiven;
}

void simrun__check_l1(simrun_t *run) {
  game_stats_t gs;
  uint32_t rooms_live, clients_live, connections, pending;
  live_stats(run, &gs, &rooms_live, &clients_live, &connections, &pending);
  simrun__check_lost_rooms(run);
  if (run->failed)
    return;
  if (gs.rooms != 0) {
    simrun__fail(run, "liveness: %u games still running at L1 (%.3f s)",
                 gs.rooms, (double)simrun__now(run) / SEC);
    return;
  }
  uint32_t other = UINT32_MAX;
  if (gs.queued != 0 && gs.queued > queued_forgiven(run, &other)) {
    const player_t *p = other < run->players_len ? &run->players[other] : NULL;
    simrun__fail(run, "liveness: %u players still queued at L1 (%s%s%s)",
                 gs.queued, p != NULL ? p->name : "none of the run's",
                 p != NULL ? " " : "", p != NULL ? p->belief.user_id : "");
    return;
  }
  for (uint32_t i = 0; i < run->players_len && !run->failed; i++) {
    player_t *p = &run->players[i];
    const pbot_t *pb = &p->bots[p->cur];
    if (pb->bot == NULL || slow_end_in_flight(p) || !pb->awaiting_over ||
        sim_bot_state(pb->bot) != SIM_BOT_OPEN)
      continue;
    simrun__fail(run,
                 "liveness: %s (%s) saw %s start on connection %u and no end",
                 p->name, p->belief.user_id, pb->room, pb->room_conn);
  }
}

/* A cluster's Store: every row recorded once, by some incarnation of
 * some instance (an owner, or whoever found its owner dead), and every
 * game an instance finished is a row. */
static void check_rows_cluster(simrun_t *run) {
  uint64_t recorded = 0, finished = 0;
  for (uint32_t i = 0; i < run->inst_len + run->retired_len; i++) {
    const server_t *sv = i < run->inst_len ? &run->inst[i].server
                                           : &run->retired[i - run->inst_len];
    if (sv->game == NULL)
      continue;
    game_store_stats_t ss;
    game_store_get_stats(game_store(sv->game), &ss);
    recorded += ss.recorded;
    game_stats_t gs;
    game_get_stats(sv->game, &gs);
    for (int k = 0; k < GAME_END_REASON_COUNT_; k++)
      finished += gs.rooms_finished[k];
  }
  int64_t rows = game_store_count_games(simrun__store(run));
  if (rows < 0 || (uint64_t)rows != recorded || (uint64_t)rows < finished)
    simrun__fail(run,
                 "cluster: the Store holds %" PRId64 " games; the instances "
                 "recorded %" PRIu64 " and finished %" PRIu64,
                 rows, recorded, finished);
}

/* L2: every actor of a departed player is freed; every finished game is
 * stored exactly once. */
void simrun__check_l2(simrun_t *run) {
  game_stats_t gs;
  uint32_t rooms_live = 0, clients_live = 0, connections = 0, pending = 0;
  live_stats(run, &gs, &rooms_live, &clients_live, &connections, &pending);
  net_server_stats_t ns = {.connections = connections};
  game_store_stats_t ss = {.pending = pending};
  rt_world_stats_t ws;
  rt_world_stats(run->w, &ws);
  uint32_t redis_conns =
      run->redis != NULL ? sim_redis_connections(run->redis) : 0;
  if (gs.players != 0 || gs.connected != 0 || gs.queued != 0 || gs.rooms != 0)
    simrun__fail(run,
                 "liveness: at L2 the Manager still has %u players (%u "
                 "connected, %u queued) and %u rooms",
                 gs.players, gs.connected, gs.queued, gs.rooms);
  else if (rooms_live != 0 || clients_live != 0)
    simrun__fail(run, "liveness: at L2 %u rooms and %u clients still run",
                 rooms_live, clients_live);
  else if (ns.connections != 0)
    simrun__fail(run, "liveness: at L2 the server holds %u connections",
                 ns.connections);
  else if (ss.pending != 0)
    simrun__fail(run, "liveness: at L2 the Store holds %u pending results",
                 ss.pending);
  else if (ws.actors_live != run->baseline_actors + redis_conns)
    simrun__fail(run,
                 "liveness: at L2 %u actors live, expected %u (acceptor, "
                 "Manager, Store; a cluster's Clusters, the model's acceptor "
                 "and its %u connections, the runner's Store)",
                 ws.actors_live, run->baseline_actors + redis_conns,
                 redis_conns);
  else if (ws.timers_live != 0 && !run->cluster) /* a Cluster's renew runs */
    simrun__fail(run, "liveness: at L2 %u timers armed", ws.timers_live);
  if (run->failed)
    return;
  if (run->cluster) {
    check_rows_cluster(run);
    return;
  }
  game_store_get_stats(game_store(run->game), &ss);
  uint64_t finished = 0;
  for (int i = 0; i < GAME_END_REASON_COUNT_; i++)
    finished += gs.rooms_finished[i];
  int64_t rows = game_store_count_games(simrun__store(run));
  if (rows < 0 || (uint64_t)rows != finished || ss.recorded != finished)
    simrun__fail(run,
                 "the Store holds %" PRId64 " games (%" PRIu64
                 " recorded), %" PRIu64 " finished",
                 rows, ss.recorded, finished);
}
