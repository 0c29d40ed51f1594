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

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <string.h>

int simrun_check(simrun_t *run) {
  if (run->failed)
    return -1;
  char why[SIMRUN_FAILURE_MAX];
  run->sum.checks++;
  if (rt_world_check(run->w, why, sizeof(why)) < 0) {
    simrun__fail(run, "runtime: %s", why);
    return -1;
  }
  if (game_check(run->game, why, sizeof(why)) < 0) {
    simrun__fail(run, "game: %s", why);
    return -1;
  }
  return 0;
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
  int found = game_store_find_game(game_store(run->game), pb->room, &row);
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
  for (uint32_t i = 0; i < run->rec_rooms_len && !run->failed; i++)
    if (game_room_live(run->game, run->rec_rooms[i]))
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
    int seat = game_player_seat(run->game, p->belief.user_id, &room, &role);
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
void simrun__check_l1(simrun_t *run) {
  game_stats_t gs;
  game_get_stats(run->game, &gs);
  if (gs.rooms != 0) {
    simrun__fail(run, "liveness: %u games still running at L1 (%.3f s)",
                 gs.rooms, (double)simrun__now(run) / SEC);
    return;
  }
  if (gs.queued != 0) {
    simrun__fail(run, "liveness: %u players still queued at L1", gs.queued);
    return;
  }
  for (uint32_t i = 0; i < run->players_len && !run->failed; i++) {
    player_t *p = &run->players[i];
    const pbot_t *pb = &p->bots[p->cur];
    if (pb->bot == NULL || p->plan.down.bandwidth > 0 || !pb->awaiting_over ||
        sim_bot_state(pb->bot) != SIM_BOT_OPEN)
      continue;
    simrun__fail(run,
                 "liveness: %s (%s) saw %s start on connection %u and no end",
                 p->name, p->belief.user_id, pb->room, pb->room_conn);
  }
}

/* L2: every actor of a departed player is freed; every finished game is
 * stored exactly once. */
void simrun__check_l2(simrun_t *run) {
  game_stats_t gs;
  game_get_stats(run->game, &gs);
  uint32_t rooms_live = 0, clients_live = 0;
  game_live_counts(run->game, &rooms_live, &clients_live);
  net_server_stats_t ns;
  net_server_get_stats(run->srv, &ns);
  game_store_stats_t ss;
  game_store_get_stats(game_store(run->game), &ss);
  rt_world_stats_t ws;
  rt_world_stats(run->w, &ws);
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
  else if (ws.actors_live != run->baseline_actors)
    simrun__fail(run,
                 "liveness: at L2 %u actors live, expected %u (acceptor, "
                 "Manager, Store)",
                 ws.actors_live, run->baseline_actors);
  else if (ws.timers_live != 0)
    simrun__fail(run, "liveness: at L2 %u timers armed", ws.timers_live);
  if (run->failed)
    return;
  uint64_t finished = 0;
  for (int i = 0; i < GAME_END_REASON_COUNT_; i++)
    finished += gs.rooms_finished[i];
  int64_t rows = game_store_count_games(game_store(run->game));
  if (rows < 0 || (uint64_t)rows != finished || ss.recorded != finished)
    simrun__fail(run,
                 "the Store holds %" PRId64 " games (%" PRIu64
                 " recorded), %" PRIu64 " finished",
                 rows, ss.recorded, finished);
}
