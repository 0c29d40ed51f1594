/* game_api.c: the game's edges toward the connection layer (rt_service.h):
 * token checks, the HTTP API (login, leaderboard, history, and the
 * original frontend's /auth/verify and /auth/logout) and metrics. */
#include "game_cluster.h"
#include "game_int.h"

#include "game_proto.h"
#include "rt_tap.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define LEADERBOARD_DEFAULT 10u
#define HISTORY_DEFAULT 20u
#define LIMIT_MAX 100u

static int64_t now_s(const game_t *g) {
  return rt_wall_ns(g->world) / RT_NS_PER_S;
}

/* Token checks and signatures depend on the key, which a recording does
 * not hold: they are externals (rt_tap.h), so a replay gets the answers the
 * live server got. */
static int verify(game_t *g, const char *token, rt_identity_t *who) {
  int64_t rc;
  const uint8_t *data;
  size_t len;
  int got = rt_external_take(g->world, GAME_EXT_AUTH_VERIFY, &rc, &data, &len);
  if (got < 0)
    return got;
  if (got == 0) {
    rc = game_auth_verify(&g->auth, token, now_s(g), who);
    char buf[sizeof(who->subject) + sizeof(who->name)];
    size_t n = 0;
    if (rc == 0) {
      size_t sl = strlen(who->subject), nl = strlen(who->name);
      memcpy(buf, who->subject, sl + 1);
      memcpy(buf + sl + 1, who->name, nl);
      n = sl + 1 + nl;
    }
    rt_external_put(g->world, GAME_EXT_AUTH_VERIFY, rc, buf, n);
    return (int)rc;
  }
  if (rc != 0)
    return rc < INT32_MIN || rc > 0 ? RT_EPROTO : (int)rc;
  const uint8_t *nul = memchr(data, '\0', len);
  size_t sl = nul != NULL ? (size_t)(nul - data) : len;
  size_t nl = nul != NULL ? len - sl - 1 : 0;
  if (nul == NULL || sl >= sizeof(who->subject) || nl >= sizeof(who->name))
    return RT_EPROTO;
  memcpy(who->subject, data, sl);
  who->subject[sl] = '\0';
  memcpy(who->name, nul + 1, nl);
  who->name[nl] = '\0';
  return 0;
}

static int sign(game_t *g, const char *id, const char *name, char *token,
                size_t cap) {
  int64_t rc;
  const uint8_t *data;
  size_t len;
  int got = rt_external_take(g->world, GAME_EXT_AUTH_SIGN, &rc, &data, &len);
  if (got < 0)
    return got;
  if (got == 0) {
    rc = game_auth_sign(&g->auth, id, name, now_s(g), token, cap);
    rt_external_put(g->world, GAME_EXT_AUTH_SIGN, rc, token,
                    rc == 0 ? strlen(token) : 0);
    return (int)rc;
  }
  if (rc != 0)
    return rc < INT32_MIN || rc > 0 ? RT_EPROTO : (int)rc;
  if (len >= cap)
    return RT_EPROTO;
  memcpy(token, data, len);
  token[len] = '\0';
  return 0;
}

int game_authenticate(void *ctx, const char *token, rt_identity_t *who) {
  return verify(ctx, token, who);
}

/* ---- The HTTP API -------------------------------------------------------- */

static void answer_json(rt_http_answer_t *a, int status, cJSON *body) {
  char *text = cJSON_PrintUnformatted(body);
  a->status = status;
  a->content_type = "application/json";
  a->body = text != NULL ? rt_buf_copy(text, strlen(text)) : NULL;
  cJSON_free(text);
  if (a->body == NULL)
    a->status = 500;
}

static int answer_error(rt_http_answer_t *a, int status, const char *message) {
  cJSON *e = cJSON_CreateObject();
  cJSON_AddStringToObject(e, "error", message);
  answer_json(a, status, e);
  cJSON_Delete(e);
  return RT_HTTP_ANSWERED;
}

int game_api_login(void *ctx, rt_world_t *w, const rt_http_call_t *call,
                   rt_http_answer_t *answer) {
  (void)w;
  game_t *g = ctx;
  bool nul = false;
  cJSON *req = game_proto_json_parse(call->body, call->body_len, &nul);
  const cJSON *name = cJSON_GetObjectItemCaseSensitive(req, "name");
  if (!cJSON_IsObject(req) || !cJSON_IsString(name)) {
    cJSON_Delete(req);
    return answer_error(answer, 400, "body must be {\"name\": string}");
  }
  /* A U+0000 would cut the name short: "A\u0000\u202eevil" would be checked
   * and signed as "A". cJSON cannot say which string held it, so a NUL in
   * any string of the body refuses it as a bad name: the one string login
   * reads, and no name holds a NUL. */
  if (nul || !game_name_valid(name->valuestring, strlen(name->valuestring))) {
    cJSON_Delete(req);
    return answer_error(answer, 400, "name must be 1-24 printable characters");
  }
  char id[RT_SUBJECT_MAX];
  snprintf(id, sizeof(id), "g_%016" PRIx64, rt_rng_next(&g->ids));
  char token[GAME_TOKEN_MAX];
  int err = sign(g, id, name->valuestring, token, sizeof(token));
  if (err < 0) {
    cJSON_Delete(req);
    return answer_error(answer, 500, "cannot sign a token");
  }
  cJSON *body = cJSON_CreateObject();
  cJSON_AddStringToObject(body, "token", token);
  cJSON_AddStringToObject(body, "userId", id);
  cJSON_AddStringToObject(body, "name", name->valuestring);
  answer_json(answer, 200, body);
  cJSON_Delete(body);
  cJSON_Delete(req);
  return RT_HTTP_ANSWERED;
}

/* ?limit=N: N in 1..LIMIT_MAX, else the default (as the original did). */
static uint32_t query_limit(const char *query, uint32_t dflt) {
  const char *p = query;
  while (p != NULL && *p != '\0') {
    if (strncmp(p, "limit=", 6) == 0) {
      char *end;
      long v = strtol(p + 6, &end, 10);
      if (end == p + 6 || (*end != '\0' && *end != '&') || v <= 0)
        return dflt;
      return v > (long)LIMIT_MAX ? LIMIT_MAX : (uint32_t)v;
    }
    p = strchr(p, '&');
    if (p != NULL)
      p++;
  }
  return dflt;
}

int game_api_leaderboard(void *ctx, rt_world_t *w, const rt_http_call_t *call,
                         rt_http_answer_t *answer) {
  game_t *g = ctx;
  uint32_t limit = query_limit(call->query, LEADERBOARD_DEFAULT);
  if (game_store_query_leaderboard(w, g->store, call, limit) < 0)
    return answer_error(answer, 503, "storage busy, try again");
  return RT_HTTP_DEFERRED;
}

/* The token of an "Authorization: Bearer T" header, or NULL. */
static const char *bearer_token(const rt_http_call_t *call) {
  const char *auth = call->authorization;
  if (auth == NULL || strncasecmp(auth, "Bearer ", 7) != 0)
    return NULL;
  return auth + 7;
}

/* Who the call's bearer token says it is: 0, or negative (no token, or
 * one verify refuses; a replay gets the recorded answer). */
static int bearer_identity(game_t *g, const rt_http_call_t *call,
                           rt_identity_t *who) {
  const char *token = bearer_token(call);
  if (token == NULL)
    return RT_EINVAL;
  return verify(g, token, who);
}

int game_api_history(void *ctx, rt_world_t *w, const rt_http_call_t *call,
                     rt_http_answer_t *answer) {
  game_t *g = ctx;
  rt_identity_t who;
  if (bearer_identity(g, call, &who) < 0)
    return answer_error(answer, 401, "missing or invalid bearer token");
  uint32_t limit = query_limit(call->query, HISTORY_DEFAULT);
  if (game_store_query_history(w, g->store, call, who.subject, limit) < 0)
    return answer_error(answer, 503, "storage busy, try again");
  return RT_HTTP_DEFERRED;
}

/* GET /auth/verify: the session the original frontend keeps, in its
 * UserSession shape. A guest has no email or picture (the original's came
 * from Google); "token" is the token it sent, which is still good. */
int game_api_verify(void *ctx, rt_world_t *w, const rt_http_call_t *call,
                    rt_http_answer_t *answer) {
  (void)w;
  game_t *g = ctx;
  rt_identity_t who;
  if (bearer_identity(g, call, &who) < 0)
    return answer_error(answer, 401, "missing or invalid bearer token");
  cJSON *body = cJSON_CreateObject();
  cJSON_AddStringToObject(body, "id", who.subject);
  cJSON_AddStringToObject(body, "name", who.name);
  cJSON_AddStringToObject(body, "email", "");
  cJSON_AddStringToObject(body, "picture", "");
  cJSON_AddStringToObject(body, "token", bearer_token(call));
  answer_json(answer, 200, body);
  cJSON_Delete(body);
  return RT_HTTP_ANSWERED;
}

/* POST /auth/logout: 204 whatever the token. Tokens are stateless HS256
 * JWTs that the server keeps no record of: there is nothing to revoke
 * server-side; the client forgets its token, which stays valid until its
 * exp like any copy of it. Not checked, so a logout with an expired
 * token succeeds too (the frontend forgets it either way). */
int game_api_logout(void *ctx, rt_world_t *w, const rt_http_call_t *call,
                    rt_http_answer_t *answer) {
  (void)ctx;
  (void)w;
  (void)call;
  answer->status = 204;
  answer->content_type = NULL;
  answer->body = NULL;
  return RT_HTTP_ANSWERED;
}

/* ---- Metrics ------------------------------------------------------------- */

/* The Store's part of /metrics: which backend, what it did, what waits,
 * how long commits take. */
static size_t store_metrics(const game_store_stats_t *st, char *out,
                            size_t cap) {
  size_t len = 0;
#define PUT(...)                                                               \
  do {                                                                         \
    int n_ = snprintf(out + len, cap - len, __VA_ARGS__);                      \
    if (n_ < 0 || (size_t)n_ >= cap - len)                                     \
      return cap;                                                              \
    len += (size_t)n_;                                                         \
  } while (0)
  if (cap == 0)
    return 0;
  PUT("# TYPE overcookied_store_backend gauge\n"
      "overcookied_store_backend{backend=\"%s\"} 1\n"
      "# TYPE overcookied_store_total counter\n"
      "overcookied_store_total{event=\"recorded\"} %" PRIu64 "\n"
      "overcookied_store_total{event=\"duplicate\"} %" PRIu64 "\n"
      "overcookied_store_total{event=\"resend_merged\"} %" PRIu64 "\n"
      "overcookied_store_total{event=\"commit\"} %" PRIu64 "\n"
      "overcookied_store_total{event=\"retry\"} %" PRIu64 "\n"
      "overcookied_store_total{event=\"reconnect\"} %" PRIu64 "\n"
      "overcookied_store_total{event=\"read_failed\"} %" PRIu64 "\n"
      "# TYPE overcookied_store_errors_total counter\n"
      "overcookied_store_errors_total{kind=\"busy\"} %" PRIu64 "\n"
      "overcookied_store_errors_total{kind=\"full\"} %" PRIu64 "\n"
      "overcookied_store_errors_total{kind=\"io\"} %" PRIu64 "\n"
      "overcookied_store_errors_total{kind=\"unavailable\"} %" PRIu64 "\n"
      "overcookied_store_errors_total{kind=\"timeout\"} %" PRIu64 "\n"
      "overcookied_store_errors_total{kind=\"other\"} %" PRIu64 "\n"
      "# TYPE overcookied_store_pending gauge\n"
      "overcookied_store_pending %u\n"
      "# TYPE overcookied_store_commit_seconds histogram\n",
      st->backend, st->recorded, st->duplicates, st->resends_merged,
      st->commits, st->retries, st->reconnects, st->reads_failed,
      st->errors_busy, st->errors_full, st->errors_io, st->errors_unavailable,
      st->errors_timeout, st->errors_other, st->pending);
  uint64_t cumulative = 0;
  for (int i = 0; i < GAME_STORE_LATENCY_BUCKETS; i++) {
    cumulative += st->latency_count[i];
    double bound = game_store_latency_bound_ms(i);
    if (i < GAME_STORE_LATENCY_BUCKETS - 1)
      PUT("overcookied_store_commit_seconds_bucket{le=\"%g\"} %" PRIu64 "\n",
          bound / 1000.0, cumulative);
    else
      PUT("overcookied_store_commit_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n",
          cumulative);
  }
  PUT("overcookied_store_commit_seconds_sum %.6f\n"
      "overcookied_store_commit_seconds_count %" PRIu64 "\n",
      (double)st->latency_sum_ns / 1e9, cumulative);
#undef PUT
  return len;
}

/* Only a clustered instance has these. */
static size_t cluster_metrics(const game_t *g, char *out, size_t cap) {
  game_cluster_stats_t c;
  if (cap == 0 || game_cluster_get_stats(g, &c) == 0)
    return 0;
  const game_stats_t *s = &g->stats;
  int n = snprintf(
      out, cap,
      "# TYPE overcookied_cluster_up gauge\n"
      "overcookied_cluster_up %u\n"
      "# TYPE overcookied_redis_round_trips_total counter\n"
      "overcookied_redis_round_trips_total %" PRIu64 "\n"
      "# TYPE overcookied_redis_latency_seconds summary\n"
      "overcookied_redis_latency_seconds_sum %.6f\n"
      "overcookied_redis_latency_seconds_count %" PRIu64 "\n"
      "# TYPE overcookied_redis_latency_max_seconds gauge\n"
      "overcookied_redis_latency_max_seconds %.6f\n"
      "# TYPE overcookied_redis_connects_total counter\n"
      "overcookied_redis_connects_total{kind=\"first\"} %" PRIu64 "\n"
      "overcookied_redis_connects_total{kind=\"reconnect\"} %" PRIu64 "\n"
      "# TYPE overcookied_redis_errors_total counter\n"
      "overcookied_redis_errors_total %" PRIu64 "\n"
      "# TYPE overcookied_leases_total counter\n"
      "overcookied_leases_total{event=\"renewed\"} %" PRIu64 "\n"
      "overcookied_leases_total{event=\"fenced\"} %" PRIu64 "\n"
      "overcookied_leases_total{event=\"data_lost\"} %" PRIu64 "\n"
      "# TYPE overcookied_matches_total counter\n"
      "overcookied_matches_total{where=\"local\"} %" PRIu64 "\n"
      "overcookied_matches_total{where=\"cross\"} %" PRIu64 "\n"
      "# TYPE overcookied_moves_total counter\n"
      "overcookied_moves_total %" PRIu64 "\n"
      "# TYPE overcookied_rooms_owned gauge\n"
      "overcookied_rooms_owned %u\n"
      "# TYPE overcookied_tickets_purged_total counter\n"
      "overcookied_tickets_purged_total %" PRIu64 "\n"
      "# TYPE overcookied_server_lost_total counter\n"
      "overcookied_server_lost_total{event=\"stored\"} %" PRIu64 "\n"
      "overcookied_server_lost_total{event=\"told\"} %" PRIu64 "\n"
      "overcookied_server_lost_total{event=\"owner_ended\"} %" PRIu64 "\n"
      "# TYPE overcookied_claimed_ends_stored_total counter\n"
      "overcookied_claimed_ends_stored_total %" PRIu64 "\n"
      "# TYPE overcookied_matchmaking_unavailable_total counter\n"
      "overcookied_matchmaking_unavailable_total %" PRIu64 "\n"
      "# TYPE overcookied_resumes_refused_total counter\n"
      "overcookied_resumes_refused_total %" PRIu64 "\n",
      c.up, c.round_trips, (double)c.latency_sum_ns / 1e9, c.round_trips,
      (double)c.latency_max_ns / 1e9, c.connects - c.reconnects, c.reconnects,
      c.redis_errors, c.lease_renewals, c.fenced, c.data_lost, c.matches_local,
      c.matches_cross, s->moves, s->rooms, c.tickets_purged, c.server_lost,
      s->server_lost_told, s->rooms_server_lost, c.claims_stored,
      s->mm_unavailable, s->resumes_refused);
  if (n < 0)
    return 0;
  return (size_t)n < cap ? (size_t)n : cap;
}

size_t game_metrics(void *ctx, rt_world_t *w, char *out, size_t cap) {
  (void)w;
  const game_t *g = ctx;
  const game_stats_t *s = &g->stats;
  game_store_stats_t st;
  game_store_get_stats(g->store, &st);
  int n = snprintf(
      out, cap,
      "# TYPE overcookied_players gauge\n"
      "overcookied_players{state=\"known\"} %u\n"
      "overcookied_players{state=\"connected\"} %u\n"
      "overcookied_players{state=\"queued\"} %u\n"
      "# TYPE overcookied_rooms gauge\n"
      "overcookied_rooms %u\n"
      "# TYPE overcookied_games_total counter\n"
      "overcookied_games_total{event=\"started\"} %" PRIu64 "\n"
      "overcookied_games_total{event=\"finished\",reason=\"time\"} %" PRIu64
      "\n"
      "overcookied_games_total{event=\"finished\",reason=\"quit\"} %" PRIu64
      "\n"
      "overcookied_games_total{event=\"finished\",reason=\"opponent_disconnected\"} %" PRIu64
      "\n"
      "overcookied_games_total{event=\"resumed\"} %" PRIu64 "\n"
      "# TYPE overcookied_clicks_total counter\n"
      "overcookied_clicks_total{outcome=\"scored\"} %" PRIu64 "\n"
      "overcookied_clicks_total{outcome=\"countdown\"} %" PRIu64 "\n"
      "overcookied_clicks_total{outcome=\"rate_limited\"} %" PRIu64 "\n"
      "# TYPE overcookied_golden_total counter\n"
      "overcookied_golden_total{event=\"spawn\"} %" PRIu64 "\n"
      "overcookied_golden_total{event=\"claim\"} %" PRIu64 "\n"
      "overcookied_golden_total{event=\"contested\"} %" PRIu64 "\n"
      "# TYPE overcookied_out_total counter\n"
      "overcookied_out_total{outcome=\"sent\"} %" PRIu64 "\n"
      "overcookied_drops_total{reason=\"tick_replaced\"} %" PRIu64 "\n"
      "overcookied_drops_total{reason=\"backpressure\"} %" PRIu64 "\n"
      "# TYPE overcookied_kicks_total counter\n"
      "overcookied_kicks_total{reason=\"must_overflow\"} %" PRIu64 "\n"
      "overcookied_kicks_total{reason=\"write_wait\"} %" PRIu64 "\n"
      "overcookied_kicks_total{reason=\"mailbox_full\"} %" PRIu64 "\n"
      "overcookied_kicks_total{reason=\"replaced\"} %" PRIu64 "\n"
      "overcookied_kicks_total{reason=\"server_full\"} %" PRIu64 "\n"
      "overcookied_kicks_total{reason=\"flood\"} %" PRIu64 "\n"
      "overcookied_kicks_total{reason=\"idle\"} %" PRIu64 "\n"
      "# TYPE overcookied_game_over_unsent_total counter\n"
      "overcookied_game_over_unsent_total{event=\"handed_back\"} %" PRIu64 "\n"
      "overcookied_game_over_unsent_total{event=\"told_at_once\"} %" PRIu64 "\n"
      "overcookied_game_over_unsent_total{event=\"given_up\"} %" PRIu64 "\n",
      s->players, s->connected, s->queued, s->rooms, s->rooms_started,
      s->rooms_finished[GAME_END_TIME], s->rooms_finished[GAME_END_QUIT],
      s->rooms_finished[GAME_END_DISCONNECTED], s->resumed, s->clicks_scored,
      s->clicks_countdown, s->clicks_rate_limited, s->golden_spawns,
      s->golden_claims, s->golden_contested, s->out_sent, s->out_tick_replaced,
      s->out_dropped, s->kicks[GAME_KICK_MUST_OVERFLOW],
      s->kicks[GAME_KICK_WRITE_WAIT], s->kicks[GAME_KICK_MAILBOX_FULL],
      s->kicks[GAME_KICK_REPLACED], s->kicks[GAME_KICK_SERVER_FULL],
      s->kicks[GAME_KICK_FLOOD], s->kicks[GAME_KICK_IDLE], s->overs_unsent,
      s->overs_unsent_told, s->overs_unsent_given_up);
  if (n < 0)
    return 0;
  size_t len = (size_t)n < cap ? (size_t)n : cap;
  len += store_metrics(&st, out + len, cap - len);
  return len + cluster_metrics(g, out + len, cap - len);
}
