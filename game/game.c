/* game.c: creating the game (the Manager and the Store) and freeing it.
 * Its edges (tokens, the HTTP API, metrics) are in game_api.c. */
#include "game_int.h"

#include "game_proto.h"
#include "rt_assert.h"

#include <stdlib.h>

int game_create(rt_world_t *w, const game_config_t *cfg, const char *secret,
                const game_store_config_t *store, game_t **out) {
  const char *why = NULL;
  if (game_config_check(cfg, &why) < 0) {
    rt_log(w, RT_LOG_ERROR, "game.config", "error=\"%s\"", why);
    return RT_EINVAL;
  }
  game_t *g = calloc(1, sizeof(*g));
  if (g == NULL)
    return RT_ENOMEM;
  g->world = w;
  g->cfg = *cfg;
  int err = rt_idmap_init(&g->rooms_live);
  if (err == RT_OK)
    err = rt_idmap_init(&g->clients_live);
  if (err == RT_OK)
    err = game_auth_init(&g->auth, secret, cfg->token_lifetime_s);
  if (err < 0)
    goto fail;
  /* User ids and room ids are keys in the database and in tokens that
   * outlive a run: a restart must not reuse them, even with a fixed --seed
   * and secret. So both mix the start time into the seed (each an input
   * of the world: a replay gets the same ids). */
  uint64_t mix = rt_world_seed(w) ^ (uint64_t)rt_wall_ns(w);
  g->room_prefix = (uint32_t)(rt_splitmix64(&mix) >> 32);
  rt_rng_init(&g->ids, rt_splitmix64(&mix), RT_RNG_KEY(RT_RNG_SUB_WORLD, 1));
  game__client_handler(g, &g->session);
  g->opponent_click[1] = game_proto_opponent_click(1);
  g->opponent_click[2] = game_proto_opponent_click(2);
  if (g->opponent_click[1] == NULL || g->opponent_click[2] == NULL) {
    err = RT_ENOMEM;
    goto fail;
  }
  err = game_proto_forms_init(&g->forms);
  if (err < 0)
    goto fail;
  err = game_store_start(w, store, &g->store);
  if (err < 0)
    goto fail;
  err = game_manager_spawn(g, &g->manager);
  if (err < 0)
    goto fail;
  *out = g;
  return RT_OK;
fail:
  if (g->store != NULL && game_store_actor(g->store) != 0)
    rt_stop(w, game_store_actor(g->store), RT_REASON_SHUTDOWN);
  game_store_free(g->store);
  rt_buf_unref(g->opponent_click[1]);
  rt_buf_unref(g->opponent_click[2]);
  rt_idmap_deinit(&g->rooms_live);
  rt_idmap_deinit(&g->clients_live);
  free(g);
  return err;
}

void game_free(game_t *g) {
  if (g == NULL)
    return;
  game_store_free(g->store);
  rt_buf_unref(g->opponent_click[1]);
  rt_buf_unref(g->opponent_click[2]);
  rt_idmap_deinit(&g->rooms_live);
  rt_idmap_deinit(&g->clients_live);
  free(g);
}

const char *game_tag_name(uint16_t tag) {
  switch (tag) {
  case GAME_TAG_HELLO: return "hello";
  case GAME_TAG_JOIN: return "join";
  case GAME_TAG_LEAVE: return "leave";
  case GAME_TAG_ASSIGN: return "assign";
  case GAME_TAG_REPLACED: return "replaced";
  case GAME_TAG_REFUSED: return "refused";
  case GAME_TAG_CLICK: return "click";
  case GAME_TAG_COOKIE_CLICK: return "cookie_click";
  case GAME_TAG_QUIT: return "quit";
  case GAME_TAG_OUT_MUST: return "out_must";
  case GAME_TAG_OUT_DROP: return "out_drop";
  case GAME_TAG_OUT_TICK: return "out_tick";
  case GAME_TAG_ROOM_DONE: return "room_done";
  case GAME_TAG_ROOM_START: return "room_start";
  case GAME_TAG_LEFT: return "left";
  case GAME_TAG_BACK: return "back";
  case GAME_TAG_ENDED: return "ended";
  case GAME_TAG_STORE_RECORD: return "store_record";
  case GAME_TAG_STORE_RECORDED: return "store_recorded";
  case GAME_TAG_STORE_LEADERBOARD: return "store_leaderboard";
  case GAME_TAG_STORE_HISTORY: return "store_history";
  case GAME_TAG_TIMER_COUNTDOWN: return "timer_countdown";
  case GAME_TAG_TIMER_TICK: return "timer_tick";
  case GAME_TAG_TIMER_GOLDEN: return "timer_golden";
  case GAME_TAG_TIMER_GRACE: return "timer_grace";
  case GAME_TAG_TIMER_STORE_RETRY: return "timer_store_retry";
  case GAME_TAG_TIMER_WRITE_WAIT: return "timer_write_wait";
  case GAME_TAG_TIMER_DRAIN_POLL: return "timer_drain_poll";
  case GAME_TAG_TIMER_SEND_RETRY: return "timer_send_retry";
  case GAME_TAG_TIMER_LOBBY_IDLE: return "timer_lobby_idle";
  case GAME_TAG_CL_JOIN: return "cl_join";
  case GAME_TAG_CL_UNQUEUE: return "cl_unqueue";
  case GAME_TAG_CL_LOOKUP: return "cl_lookup";
  case GAME_TAG_CL_CLAIM: return "cl_claim";
  case GAME_TAG_CL_CLAIMED: return "cl_claimed";
  case GAME_TAG_CL_MATCHED: return "cl_matched";
  case GAME_TAG_CL_MOVE: return "cl_move";
  case GAME_TAG_CL_LOST: return "cl_lost";
  case GAME_TAG_CL_UNAVAILABLE: return "cl_unavailable";
  case GAME_TAG_CL_DOWN: return "cl_down";
  case GAME_TAG_CL_FENCED: return "cl_fenced";
  case GAME_TAG_CL_TAKEN: return "cl_taken";
  case GAME_TAG_MOVED: return "moved";
  case GAME_TAG_FENCED: return "fenced";
  case GAME_TAG_TIMER_CL_CONNECT: return "timer_cl_connect";
  case GAME_TAG_TIMER_CL_RENEW: return "timer_cl_renew";
  case GAME_TAG_TIMER_CL_POLL: return "timer_cl_poll";
  case GAME_TAG_TIMER_CL_CLAIM: return "timer_cl_claim";
  case GAME_TAG_CL_RESET: return "cl_reset";
  case GAME_TAG_LOST_HERE: return "lost_here";
  case GAME_TAG_CL_LEASE: return "cl_lease";
  case GAME_TAG_NOT_NOW: return "not_now";
  case GAME_TAG_CL_FINISHED: return "cl_finished";
  case GAME_TAG_OUT_OVER: return "out_over";
  case GAME_TAG_MISSED: return "missed";
  case GAME_TAG_OUT_CLICKED: return "out_clicked";
  default: return NULL;
  }
}

void game_get_stats(const game_t *g, game_stats_t *out) { *out = g->stats; }
const game_store_t *game_store(const game_t *g) { return g->store; }
rt_actor_id_t game_manager_actor(const game_t *g) { return g->manager; }
