/* simrun_report.c: what a run did (simrun_summary_t): the counters the run
 * kept, with the game's, the server's, the Store's and the world's.
 */
#include "simrun_int.h"

#include "game_store.h"

#include <stdio.h>
#include <string.h>

static const char cov_names[SIMRUN_COV_COUNT_][24] = {
    "drop_by_backpressure", "disconnect_for_slowness", "resume",
    "replaced_connection",  "golden_cookie_race",      "storage_retry",
    "must_deliver_overflow", "websocket_parked", "flood_cut"};

const char *simrun_cov_name(simrun_cov_t c) {
  return c < SIMRUN_COV_COUNT_ ? cov_names[c] : "?";
}

void simrun_summary(const simrun_t *run, simrun_summary_t *out) {
  *out = run->sum;
  out->seed = run->cfg.seed;
  game_stats_t gs;
  game_get_stats(run->game, &gs);
  out->games_started = gs.rooms_started;
  for (int i = 0; i < GAME_END_REASON_COUNT_; i++)
    out->games_finished[i] = gs.rooms_finished[i];
  int64_t rows = game_store_count_games(game_store(run->game));
  out->games_stored = rows > 0 ? (uint64_t)rows : 0;
  out->clicks_scored = gs.clicks_scored;
  out->clicks_countdown = gs.clicks_countdown;
  out->clicks_rate_limited = gs.clicks_rate_limited;
  out->golden_spawns = gs.golden_spawns;
  out->golden_claims = gs.golden_claims;
  out->golden_contested = gs.golden_contested;
  out->out_dropped = gs.out_dropped;
  out->out_tick_replaced = gs.out_tick_replaced;
  for (int i = 0; i < GAME_KICK_REASON_COUNT_; i++)
    out->kicks[i] = gs.kicks[i];
  out->resumed = gs.resumed;
  net_server_stats_t ns;
  net_server_get_stats(run->srv, &ns);
  out->ws_messages_in = ns.ws_messages_in;
  out->ws_messages_out = ns.ws_messages_out;
  out->http_requests = ns.http_requests;
  for (int i = 0; i < NET_CLOSE_REASON_COUNT_; i++)
    out->closes[i] = ns.closes[i];
  for (int i = 0; i < 16; i++)
    out->close_codes[i] = ns.ws_close_codes[i];
  game_store_stats_t ss;
  game_store_get_stats(game_store(run->game), &ss);
  out->store_recorded = ss.recorded;
  out->store_duplicates = ss.duplicates;
  out->store_retries = ss.retries;
  out->store_errors =
      ss.errors_busy + ss.errors_full + ss.errors_io + ss.errors_other;
  out->store_reads_failed = ss.reads_failed;
  rt_world_stats_t ws;
  rt_world_stats(run->w, &ws);
  for (int i = 0; i < RT_MB_REASON_COUNT_; i++)
    out->mailbox[i] = ws.mailbox[i];
  out->dead_letters = ws.dead_letters;
  out->dropped_at_stop = ws.dropped_at_stop;
  out->deliveries = rt_world_deliveries(run->w);
  out->actors_spawned = ws.actors_spawned;
  for (uint32_t i = 0; i < run->players_len; i++) {
    const player_t *p = &run->players[i];
    for (uint32_t k = 0; k < SIMRUN_BOTS_PER_PLAYER; k++)
      if (p->bots[k].bot != NULL)
        out->frames_sent += sim_bot_frames_sent(p->bots[k].bot);
  }
  out->cov[SIMRUN_COV_DROP_BACKPRESSURE] =
      gs.out_dropped + ws.mailbox[RT_MB_DROPPED];
  out->cov[SIMRUN_COV_DISCONNECT_SLOW] = gs.kicks[GAME_KICK_WRITE_WAIT] +
                                         gs.kicks[GAME_KICK_MUST_OVERFLOW] +
                                         gs.kicks[GAME_KICK_MAILBOX_FULL];
  out->cov[SIMRUN_COV_RESUME] = gs.resumed;
  out->cov[SIMRUN_COV_REPLACED] = gs.kicks[GAME_KICK_REPLACED];
  out->cov[SIMRUN_COV_STORE_RETRY] = ss.retries;
  out->cov[SIMRUN_COV_MUST_OVERFLOW] = gs.kicks[GAME_KICK_MUST_OVERFLOW];
  out->cov[SIMRUN_COV_PARKED] = ns.ws_parks;
  out->cov[SIMRUN_COV_FLOOD] = gs.kicks[GAME_KICK_FLOOD];
  out->rooms_lost = gs.rooms_lost;
  out->fault_end = run->fault_end;
  out->end_time = simrun__now(run);
  out->hash = rt_world_hash(run->w);
  out->passed = !run->failed;
  out->failed_at = run->failed_at;
  snprintf(out->failure, sizeof(out->failure), "%s", run->failure);
}
