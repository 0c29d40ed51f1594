/* simrun_report.c: what a run did. Its summary (simrun_summary_t: the
 * counters the run kept, with the game's, the server's, the Store's and
 * the world's), and a seed's result as text or JSON (simrun_report.h).
 */
#include "simrun_report.h"
#include "simrun_int.h"

#include "game_store.h"
#include "rt_assert.h"
#include "rt_hash.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* ---- Names --------------------------------------------------------------- */

static const char cov_names[SIMRUN_COV_COUNT_][24] = {
    "drop_by_backpressure",  "disconnect_for_slowness", "resume",
    "replaced_connection",   "golden_cookie_race",      "storage_retry",
    "must_deliver_overflow", "websocket_parked",        "flood_cut",
    "cross_instance_match",  "move_followed",           "owner_crash_mid_game",
    "stalled_owner_fenced",  "redis_restart_recovered", "dead_ticket_purged",
    "reconnect_sent_on"};

const char *simrun_cov_name(simrun_cov_t c) {
  return c < SIMRUN_COV_COUNT_ ? cov_names[c] : "?";
}

static const char end_names[GAME_END_REASON_COUNT_][24] = {
    "time", "quit", "opponent_disconnected"};
static const char kick_names[GAME_KICK_REASON_COUNT_][16] = {
    "must_overflow", "write_wait", "mailbox_full", "replaced",
    "server_full",   "flood",      "idle"};
/* The codes worth a name; net_server counts the rest as "other". */
static const uint16_t close_codes[] = {1000, 1001, 1002, 1003, 1006, 1007,
                                       1008, 1009, 1011, 1013, 4000};
#define CLOSE_CODES_LEN (sizeof(close_codes) / sizeof(close_codes[0]))
#define CLOSE_OTHER net_server_close_code_index(0)
static const char err_names[SIMRUN_ERR_COUNT_][16] = {
    "bad_json", "unknown_type", "not_in_game", "rate_limited", "other"};
static const char fault_names[5][16] = {"slow_links", "stalls", "resets_armed",
                                        "churn_drops", "store_errors"};

/* ---- The summary --------------------------------------------------------- */

static void summary_game(const game_stats_t *gs, simrun_summary_t *out) {
  out->games_started += gs->rooms_started;
  for (int i = 0; i < GAME_END_REASON_COUNT_; i++)
    out->games_finished[i] += gs->rooms_finished[i];
  out->clicks_scored += gs->clicks_scored;
  out->clicks_countdown += gs->clicks_countdown;
  out->clicks_rate_limited += gs->clicks_rate_limited;
  out->golden_spawns += gs->golden_spawns;
  out->golden_claims += gs->golden_claims;
  out->golden_contested += gs->golden_contested;
  out->out_dropped += gs->out_dropped;
  out->out_tick_replaced += gs->out_tick_replaced;
  for (int i = 0; i < GAME_KICK_REASON_COUNT_; i++)
    out->kicks[i] += gs->kicks[i];
  out->resumed += gs->resumed;
  out->rooms_lost += gs->rooms_lost;
}

static void summary_server(const net_server_stats_t *ns,
                           simrun_summary_t *out) {
  out->ws_messages_in += ns->ws_messages_in;
  out->ws_messages_out += ns->ws_messages_out;
  out->http_requests += ns->http_requests;
  for (int i = 0; i < NET_CLOSE_REASON_COUNT_; i++)
    out->closes[i] += ns->closes[i];
  for (int i = 0; i < 16; i++)
    out->close_codes[i] += ns->ws_close_codes[i];
}

static void summary_store(const game_store_stats_t *ss, simrun_summary_t *out) {
  out->store_recorded += ss->recorded;
  out->store_duplicates += ss->duplicates;
  out->store_retries += ss->retries;
  out->store_errors =
      ss->errors_busy + ss->errors_full + ss->errors_io + ss->errors_other;
  out->store_reads_failed += ss->reads_failed;
}

static void summary_world(const rt_world_stats_t *ws, simrun_summary_t *out) {
  for (int i = 0; i < RT_MB_REASON_COUNT_; i++)
    out->mailbox[i] = ws->mailbox[i];
  out->dead_letters = ws->dead_letters;
  out->dropped_at_stop = ws->dropped_at_stop;
  out->actors_spawned = ws->actors_spawned;
}

/* Each coverage point (simrun_cov_t) from the counters that show it. */
static void summary_coverage(const game_stats_t *gs,
                             const net_server_stats_t *ns,
                             const game_store_stats_t *ss,
                             const rt_world_stats_t *ws,
                             simrun_summary_t *out) {
  /* gs, ns and ss are the instances' sums (simrun_summary). */
  out->cov[SIMRUN_COV_DROP_BACKPRESSURE] =
      gs->out_dropped + ws->mailbox[RT_MB_DROPPED];
  out->cov[SIMRUN_COV_DISCONNECT_SLOW] = gs->kicks[GAME_KICK_WRITE_WAIT] +
                                         gs->kicks[GAME_KICK_MUST_OVERFLOW] +
                                         gs->kicks[GAME_KICK_MAILBOX_FULL];
  out->cov[SIMRUN_COV_RESUME] = gs->resumed;
  out->cov[SIMRUN_COV_REPLACED] = gs->kicks[GAME_KICK_REPLACED];
  out->cov[SIMRUN_COV_STORE_RETRY] = ss->retries;
  out->cov[SIMRUN_COV_MUST_OVERFLOW] = gs->kicks[GAME_KICK_MUST_OVERFLOW];
  out->cov[SIMRUN_COV_PARKED] = ns->ws_parks;
  out->cov[SIMRUN_COV_FLOOD] = gs->kicks[GAME_KICK_FLOOD];
}

/* Add one server's counters (an instance, or a crashed incarnation of
 * one) to the summary and to the sums coverage is drawn from. */
static void summary_server_of(const server_t *sv, simrun_summary_t *out,
                              game_stats_t *gsum, net_server_stats_t *nsum,
                              game_store_stats_t *ssum) {
  if (sv->game == NULL)
    return;
  game_stats_t gs;
  game_get_stats(sv->game, &gs);
  summary_game(&gs, out);
  net_server_stats_t ns;
  net_server_get_stats(sv->srv, &ns);
  summary_server(&ns, out);
  game_store_stats_t ss;
  game_store_get_stats(game_store(sv->game), &ss);
  summary_store(&ss, out);
  gsum->out_dropped += gs.out_dropped;
  for (int i = 0; i < GAME_KICK_REASON_COUNT_; i++)
    gsum->kicks[i] += gs.kicks[i];
  gsum->resumed += gs.resumed;
  nsum->ws_parks += ns.ws_parks;
  ssum->retries += ss.retries;
}

void simrun_summary(const simrun_t *run, simrun_summary_t *out) {
  *out = run->sum;
  out->seed = run->cfg.seed;
  game_stats_t gs;
  net_server_stats_t ns;
  game_store_stats_t ss;
  memset(&gs, 0, sizeof(gs));
  memset(&ns, 0, sizeof(ns));
  memset(&ss, 0, sizeof(ss));
  for (uint32_t i = 0; i < run->inst_len; i++)
    if (run->inst[i].up)
      summary_server_of(&run->inst[i].server, out, &gs, &ns, &ss);
  for (uint32_t i = 0; i < run->retired_len; i++)
    summary_server_of(&run->retired[i], out, &gs, &ns, &ss);
  int64_t rows = game_store_count_games(simrun__store(run));
  out->games_stored = rows > 0 ? (uint64_t)rows : 0;
  rt_world_stats_t ws;
  rt_world_stats(run->w, &ws);
  summary_world(&ws, out);
  out->deliveries = rt_world_deliveries(run->w);
  for (uint32_t i = 0; i < run->players_len; i++) {
    const player_t *p = &run->players[i];
    for (uint32_t k = 0; k < SIMRUN_BOTS_PER_PLAYER; k++) {
      const sim_bot_t *b = p->bots[k].bot;
      if (b == NULL)
        continue;
      out->frames_sent += sim_bot_frames_sent(b);
      out->frames_received += sim_bot_unkept(b);
      out->frames_unkept += sim_bot_unkept(b);
    }
  }
  summary_coverage(&gs, &ns, &ss, &ws, out);
  simrun__cluster_counts(run, out);
  out->fault_end = run->fault_end;
  out->end_time = simrun__now(run);
  out->hash = rt_world_hash(run->w);
  /* A cluster's hash covers what the model holds too: the deliveries
   * show the bytes' arrival, not what Redis made of them. */
  if (run->cluster)
    out->hash = rt_hash_step(out->hash, out->redis_digest);
  out->passed = !run->failed;
  out->failed_at = run->failed_at;
  snprintf(out->failure, sizeof(out->failure), "%s", run->failure);
}

bool simrun_result_passed(const simrun_result_t *r) {
  return r->sum.passed && !r->determinism_failed;
}

/* ---- Text ---------------------------------------------------------------- */

/* The run's setup: seed, faults, mix, limits and the fault phase. */
static void text_setup(FILE *out, const simrun_config_t *cfg,
                       const simrun_plan_t *plan, const simrun_summary_t *s) {
  fprintf(out, "seed=%" PRIu64 " players=%u duration=%.3fs end=%.3fs\n",
          s->seed, s->players, (double)cfg->duration / RT_NS_PER_S,
          (double)s->end_time / RT_NS_PER_S);
  char limits[SIMRUN_LIMITS_TEXT_MAX];
  simrun_limits_format(&plan->limits, limits, sizeof(limits));
  fprintf(out, "faults: %s\nmix: %s\nlimits:%s\n", plan->faults_text,
          plan->mix_text, limits[0] != '\0' ? limits : " defaults");
  fprintf(out,
          "fault phase: ends at %.3fs; then %" PRIu64 " games were running, "
          "%" PRIu64 " players had left\n",
          (double)s->fault_end / RT_NS_PER_S, s->recovery_rooms,
          s->recovery_players);
}

/* Games, clicks and messages. */
static void text_traffic(FILE *out, const simrun_summary_t *s) {
  fprintf(out, "games: started=%" PRIu64, s->games_started);
  for (int i = 0; i < GAME_END_REASON_COUNT_; i++)
    fprintf(out, " %s=%" PRIu64, end_names[i], s->games_finished[i]);
  fprintf(out,
          " rooms_lost=%" PRIu64 " stored=%" PRIu64 " game_overs_seen=%" PRIu64
          "\n",
          s->rooms_lost, s->games_stored, s->game_overs_seen);
  fprintf(out,
          "clicks: sent=%" PRIu64 " scored=%" PRIu64 " countdown=%" PRIu64
          " rate_limited=%" PRIu64 " cookie_clicks=%" PRIu64
          " golden_spawns=%" PRIu64 " claims=%" PRIu64 " contested=%" PRIu64
          "\n",
          s->clicks_sent, s->clicks_scored, s->clicks_countdown,
          s->clicks_rate_limited, s->cookie_clicks, s->golden_spawns,
          s->golden_claims, s->golden_contested);
  fprintf(out,
          "messages: ws_in=%" PRIu64 " ws_out=%" PRIu64 " http=%" PRIu64
          " api_reads=%" PRIu64 " api_reads_503=%" PRIu64
          " player_frames_sent=%" PRIu64 " player_records=%" PRIu64
          " deliveries=%" PRIu64 "\n",
          s->ws_messages_in, s->ws_messages_out, s->http_requests, s->reads,
          s->reads_unavailable, s->frames_sent, s->frames_received,
          s->deliveries);
}

/* What was refused, dropped or disconnected. */
static void text_losses(FILE *out, const simrun_summary_t *s) {
  fprintf(out, "errors_seen:");
  for (int i = 0; i < SIMRUN_ERR_COUNT_; i++)
    fprintf(out, " %s=%" PRIu64, err_names[i], s->errors_seen[i]);
  fprintf(out,
          "\ndrops: backpressure=%" PRIu64 " tick_replaced=%" PRIu64
          " mailbox_dropped=%" PRIu64 " mailbox_replaced=%" PRIu64
          " mailbox_rejected=%" PRIu64 " dead_letters=%" PRIu64
          " released_at_stop=%" PRIu64 "\n",
          s->out_dropped, s->out_tick_replaced, s->mailbox[RT_MB_DROPPED],
          s->mailbox[RT_MB_REPLACED], s->mailbox[RT_MB_REJECTED],
          s->dead_letters, s->dropped_at_stop);
  fprintf(out, "disconnects: kicks");
  for (int i = 0; i < GAME_KICK_REASON_COUNT_; i++)
    fprintf(out, " %s=%" PRIu64, kick_names[i], s->kicks[i]);
  fprintf(out, "\n  connections_closed");
  for (int i = 0; i < NET_CLOSE_REASON_COUNT_; i++)
    if (s->closes[i] > 0)
      fprintf(out, " %s=%" PRIu64,
              net_server_close_reason_name((net_close_reason_t)i),
              s->closes[i]);
  fprintf(out, "\n  ws_close_codes");
  for (uint32_t i = 0; i < CLOSE_CODES_LEN; i++) {
    uint64_t n = s->close_codes[net_server_close_code_index(close_codes[i])];
    if (n > 0)
      fprintf(out, " %u=%" PRIu64, (unsigned)close_codes[i], n);
  }
  if (s->close_codes[CLOSE_OTHER] > 0)
    fprintf(out, " other=%" PRIu64, s->close_codes[CLOSE_OTHER]);
  fprintf(out,
          "\n  resumed=%" PRIu64 " reconnects=%" PRIu64 " departures=%" PRIu64
          " refused=%u\n",
          s->resumed, s->reconnects, s->departures, s->players_refused);
}

/* The Store, the faults injected and the coverage points reached. */
static void text_store_faults(FILE *out, const simrun_summary_t *s) {
  fprintf(out,
          "store: recorded=%" PRIu64 " duplicates=%" PRIu64 " errors=%" PRIu64
          " retries=%" PRIu64 " reads_failed=%" PRIu64 "\n",
          s->store_recorded, s->store_duplicates, s->store_errors,
          s->store_retries, s->store_reads_failed);
  fprintf(out, "faults_injected:");
  for (int i = 0; i < 5; i++)
    fprintf(out, " %s=%" PRIu64, fault_names[i], s->faults_injected[i]);
  fprintf(out, " edge_actions=%" PRIu64 "\ncoverage:", s->edges);
  for (int i = 0; i < SIMRUN_COV_COUNT_; i++)
    fprintf(out, " %s=%" PRIu64, simrun_cov_name((simrun_cov_t)i), s->cov[i]);
  fputc('\n', out);
  if (s->instances >= 2)
    fprintf(out,
            "cluster: instances=%u crashes=%" PRIu64 " pauses=%" PRIu64
            " redis_restarts=%" PRIu64 " partitions=%" PRIu64
            " moves_seen=%" PRIu64 " matches_cross=%" PRIu64
            " matches_checked=%" PRIu64 " fenced=%" PRIu64
            " tickets_purged=%" PRIu64 " server_lost=%" PRIu64
            " claims_stored=%" PRIu64 " rooms_forgotten=%" PRIu64
            " redis_digest=%016" PRIx64 "\n",
            s->instances, s->crashes, s->pauses, s->redis_restarts,
            s->partitions, s->moves_seen, s->matches_cross, s->matches_checked,
            s->fenced, s->tickets_purged, s->server_lost, s->claims_stored,
            s->rooms_forgotten, s->redis_digest);
}

/* The verdict: the checks, the first failure, how to reproduce it, and
 * the run's hash. */
static void text_verdict(FILE *out, const simrun_config_t *cfg,
                         const simrun_result_t *r, const char *repro) {
  const simrun_summary_t *s = &r->sum;
  fprintf(out,
          "checks: %" PRIu64 " invariant checks (%" PRIu64
          " after every %" PRIu64 " deliveries), %s\n",
          s->checks, s->checks_by_deliveries, cfg->check_deliveries,
          simrun_result_passed(r) ? "all passed" : "FAILED");
  if (!s->passed)
    fprintf(out, "FAIL at t=%.6fs: %s\n", (double)s->failed_at / RT_NS_PER_S,
            s->failure);
  if (r->determinism_failed)
    fprintf(out, "FAIL determinism: %s\n", r->determinism);
  if (!simrun_result_passed(r))
    fprintf(out, "repro: %s\n", repro);
  fprintf(out, "hash=%016" PRIx64 "\n", s->hash);
}

void simrun_report_text(FILE *out, const simrun_config_t *cfg,
                        const simrun_plan_t *plan, const simrun_result_t *r,
                        const char *repro) {
  RT_ASSERT(out != NULL);
  RT_ASSERT(cfg != NULL);
  RT_ASSERT(plan != NULL);
  RT_ASSERT(r != NULL);
  RT_ASSERT(repro != NULL);
  text_setup(out, cfg, plan, &r->sum);
  text_traffic(out, &r->sum);
  text_losses(out, &r->sum);
  text_store_faults(out, &r->sum);
  text_verdict(out, cfg, r, repro);
}

/* ---- JSON ---------------------------------------------------------------- */

static void json_str(FILE *out, const char *s) {
  fputc('"', out);
  for (; *s != '\0'; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\')
      fprintf(out, "\\%c", c);
    else if (c < 0x20)
      fprintf(out, "\\u%04x", c);
    else
      fputc(c, out);
  }
  fputc('"', out);
}

/* "seed" .. "fault_phase": the run's setup. */
static void json_setup(FILE *out, const simrun_config_t *cfg,
                       const simrun_plan_t *plan, const simrun_summary_t *s) {
  fprintf(out,
          "{\"seed\":%" PRIu64 ",\"players\":%u,\"duration_ms\":%" PRId64
          ",\"end_ms\":%" PRId64 ",\"faults\":",
          s->seed, s->players, (int64_t)(cfg->duration / RT_NS_PER_MS),
          (int64_t)(s->end_time / RT_NS_PER_MS));
  json_str(out, plan->faults_text);
  fprintf(out, ",\"mix\":");
  json_str(out, plan->mix_text);
  fprintf(out, ",\"limits\":{");
  simrun_limits_t lim = plan->limits;
  for (uint32_t i = 0; i < SIMRUN_LIMITS_COUNT; i++)
    fprintf(out, "%s\"%s\":%u", i ? "," : "", simrun_limit_name(i),
            *simrun_limit_field(&lim, i));
  fprintf(out,
          "},\"fault_phase\":{\"end_ms\":%" PRId64 ",\"games_running\":%" PRIu64
          ",\"players_departed\":%" PRIu64 "}",
          (int64_t)(s->fault_end / RT_NS_PER_MS), s->recovery_rooms,
          s->recovery_players);
}

/* "games", "clicks", "messages". */
static void json_traffic(FILE *out, const simrun_summary_t *s) {
  fprintf(out, ",\"games\":{\"started\":%" PRIu64, s->games_started);
  for (int i = 0; i < GAME_END_REASON_COUNT_; i++)
    fprintf(out, ",\"%s\":%" PRIu64, end_names[i], s->games_finished[i]);
  fprintf(out,
          ",\"rooms_lost\":%" PRIu64 ",\"stored\":%" PRIu64
          ",\"game_overs_seen\":%" PRIu64 "}",
          s->rooms_lost, s->games_stored, s->game_overs_seen);
  fprintf(out,
          ",\"clicks\":{\"sent\":%" PRIu64 ",\"scored\":%" PRIu64
          ",\"countdown\":%" PRIu64 ",\"rate_limited\":%" PRIu64
          ",\"cookie_clicks\":%" PRIu64 ",\"golden_spawns\":%" PRIu64
          ",\"golden_claims\":%" PRIu64 ",\"golden_contested\":%" PRIu64 "}",
          s->clicks_sent, s->clicks_scored, s->clicks_countdown,
          s->clicks_rate_limited, s->cookie_clicks, s->golden_spawns,
          s->golden_claims, s->golden_contested);
  fprintf(out,
          ",\"messages\":{\"ws_in\":%" PRIu64 ",\"ws_out\":%" PRIu64
          ",\"http\":%" PRIu64 ",\"api_reads\":%" PRIu64
          ",\"api_reads_503\":%" PRIu64 ",\"player_frames_sent\":%" PRIu64
          ",\"player_records\":%" PRIu64 ",\"deliveries\":%" PRIu64 "}",
          s->ws_messages_in, s->ws_messages_out, s->http_requests, s->reads,
          s->reads_unavailable, s->frames_sent, s->frames_received,
          s->deliveries);
}

/* "errors_seen", "drops", "disconnects". */
static void json_losses(FILE *out, const simrun_summary_t *s) {
  fprintf(out, ",\"errors_seen\":{");
  for (int i = 0; i < SIMRUN_ERR_COUNT_; i++)
    fprintf(out, "%s\"%s\":%" PRIu64, i ? "," : "", err_names[i],
            s->errors_seen[i]);
  fprintf(out,
          "},\"drops\":{\"backpressure\":%" PRIu64 ",\"tick_replaced\":%" PRIu64
          ",\"mailbox_dropped\":%" PRIu64 ",\"mailbox_replaced\":%" PRIu64
          ",\"mailbox_rejected\":%" PRIu64 ",\"dead_letters\":%" PRIu64
          ",\"released_at_stop\":%" PRIu64 "}",
          s->out_dropped, s->out_tick_replaced, s->mailbox[RT_MB_DROPPED],
          s->mailbox[RT_MB_REPLACED], s->mailbox[RT_MB_REJECTED],
          s->dead_letters, s->dropped_at_stop);
  fprintf(out, ",\"disconnects\":{\"kicks\":{");
  for (int i = 0; i < GAME_KICK_REASON_COUNT_; i++)
    fprintf(out, "%s\"%s\":%" PRIu64, i ? "," : "", kick_names[i], s->kicks[i]);
  fprintf(out, "},\"connections_closed\":{");
  for (int i = 0; i < NET_CLOSE_REASON_COUNT_; i++)
    fprintf(out, "%s\"%s\":%" PRIu64, i ? "," : "",
            net_server_close_reason_name((net_close_reason_t)i), s->closes[i]);
  fprintf(out, "},\"ws_close_codes\":{");
  for (uint32_t i = 0; i < CLOSE_CODES_LEN; i++)
    fprintf(out, "%s\"%u\":%" PRIu64, i ? "," : "", (unsigned)close_codes[i],
            s->close_codes[net_server_close_code_index(close_codes[i])]);
  fprintf(out, ",\"other\":%" PRIu64, s->close_codes[CLOSE_OTHER]);
  fprintf(out,
          "},\"resumed\":%" PRIu64 ",\"reconnects\":%" PRIu64
          ",\"departures\":%" PRIu64 ",\"refused\":%u}",
          s->resumed, s->reconnects, s->departures, s->players_refused);
}

/* "store", "faults_injected", "coverage". */
static void json_store_faults(FILE *out, const simrun_summary_t *s) {
  fprintf(out,
          ",\"store\":{\"recorded\":%" PRIu64 ",\"duplicates\":%" PRIu64
          ",\"errors\":%" PRIu64 ",\"retries\":%" PRIu64
          ",\"reads_failed\":%" PRIu64 "}",
          s->store_recorded, s->store_duplicates, s->store_errors,
          s->store_retries, s->store_reads_failed);
  fprintf(out, ",\"faults_injected\":{");
  for (int i = 0; i < 5; i++)
    fprintf(out, "%s\"%s\":%" PRIu64, i ? "," : "", fault_names[i],
            s->faults_injected[i]);
  fprintf(out, ",\"edge_actions\":%" PRIu64 "},\"coverage\":{", s->edges);
  for (int i = 0; i < SIMRUN_COV_COUNT_; i++)
    fprintf(out, "%s\"%s\":%" PRIu64, i ? "," : "",
            simrun_cov_name((simrun_cov_t)i), s->cov[i]);
  fputc('}', out);
  if (s->instances >= 2)
    fprintf(out,
            ",\"cluster\":{\"instances\":%u,\"crashes\":%" PRIu64
            ",\"pauses\":%" PRIu64 ",\"redis_restarts\":%" PRIu64
            ",\"partitions\":%" PRIu64 ",\"moves_seen\":%" PRIu64
            ",\"matches_cross\":%" PRIu64 ",\"matches_checked\":%" PRIu64
            ",\"fenced\":%" PRIu64 ",\"tickets_purged\":%" PRIu64
            ",\"server_lost\":%" PRIu64 ",\"claims_stored\":%" PRIu64
            ",\"rooms_forgotten\":%" PRIu64 ",\"redis_digest\":\"%016" PRIx64
            "\"}",
            s->instances, s->crashes, s->pauses, s->redis_restarts,
            s->partitions, s->moves_seen, s->matches_cross, s->matches_checked,
            s->fenced, s->tickets_purged, s->server_lost, s->claims_stored,
            s->rooms_forgotten, s->redis_digest);
}

/* "checks" .. "hash": the verdict. */
static void json_verdict(FILE *out, const simrun_config_t *cfg,
                         const simrun_result_t *r, const char *repro) {
  const simrun_summary_t *s = &r->sum;
  fprintf(out,
          ",\"checks\":%" PRIu64 ",\"checks_by_deliveries\":%" PRIu64
          ",\"check_every\":%" PRIu64 ",\"passed\":%s",
          s->checks, s->checks_by_deliveries, cfg->check_deliveries,
          simrun_result_passed(r) ? "true" : "false");
  if (!s->passed) {
    fprintf(out, ",\"failed_at_ms\":%" PRId64 ",\"failure\":",
            (int64_t)(s->failed_at / RT_NS_PER_MS));
    json_str(out, s->failure);
  }
  if (r->determinism_failed) {
    fprintf(out, ",\"determinism\":");
    json_str(out, r->determinism);
  }
  if (!simrun_result_passed(r)) {
    fprintf(out, ",\"repro\":");
    json_str(out, repro);
  }
  fprintf(out, ",\"hash\":\"%016" PRIx64 "\"}\n", s->hash);
}

void simrun_report_json(FILE *out, const simrun_config_t *cfg,
                        const simrun_plan_t *plan, const simrun_result_t *r,
                        const char *repro) {
  RT_ASSERT(out != NULL);
  RT_ASSERT(cfg != NULL);
  RT_ASSERT(plan != NULL);
  RT_ASSERT(r != NULL);
  RT_ASSERT(repro != NULL);
  json_setup(out, cfg, plan, &r->sum);
  json_traffic(out, &r->sum);
  json_losses(out, &r->sum);
  json_store_faults(out, &r->sum);
  json_verdict(out, cfg, r, repro);
}
