#include "game_config.h"

#include "rt_err.h"

void game_config_defaults(game_config_t *cfg) {
  *cfg = (game_config_t){
      .countdown = 5 * RT_NS_PER_S,
      .game_seconds = 60,
      .tick = RT_NS_PER_S,
      .reconnect_grace = 10 * RT_NS_PER_S,
      .golden_min_s = 5,
      .golden_max_s = 10,
      .bonus = 3 * RT_NS_PER_S,
      .click_rate = 30,
      .click_burst = 30,
      .in_rate = 60,
      .in_burst = 120,
      .write_wait = 10 * RT_NS_PER_S,
      .out_count_max = 64,
      .out_bytes_max = 32 * 1024,
      .conn_high_water = 16 * 1024,
      .drain_poll = 50 * RT_NS_PER_MS,
      .seed = 0,
      .token_lifetime_s = 24 * 3600,
      .lobby_idle = 600 * RT_NS_PER_S,
      .players_max = 100000,
      .queue_max = 100000,
  };
}

int game_config_check(const game_config_t *cfg, const char **why) {
  if (cfg->countdown < 0)
    return *why = "countdown must not be negative", RT_EINVAL;
  if (cfg->game_seconds == 0 || cfg->game_seconds > 3600)
    return *why = "game length must be 1..3600 s", RT_EINVAL;
  if (cfg->tick <= 0)
    return *why = "tick must be positive", RT_EINVAL;
  if (cfg->reconnect_grace < 0)
    return *why = "reconnect grace must not be negative", RT_EINVAL;
  if (cfg->golden_min_s == 0 || cfg->golden_min_s > cfg->golden_max_s ||
      cfg->golden_max_s > 3600)
    return *why = "golden interval must be 1 <= min <= max <= 3600 s",
           RT_EINVAL;
  if (cfg->bonus < 0)
    return *why = "bonus must not be negative", RT_EINVAL;
  if (cfg->click_rate > 0 && cfg->click_burst == 0)
    return *why = "click burst must be positive", RT_EINVAL;
  if (cfg->in_rate == 0 || cfg->in_burst == 0)
    return *why = "inbound message limits must be positive", RT_EINVAL;
  if (cfg->write_wait <= 0)
    return *why = "write wait must be positive", RT_EINVAL;
  if (cfg->drain_poll <= 0)
    return *why = "drain poll must be positive", RT_EINVAL;
  if (cfg->out_count_max < 4 || cfg->out_bytes_max < 1024)
    return *why = "outbound queue limits too small", RT_EINVAL;
  if (cfg->lobby_idle < 0)
    return *why = "lobby idle time must not be negative", RT_EINVAL;
  if (cfg->token_lifetime_s <= 0)
    return *why = "token lifetime must be positive", RT_EINVAL;
  if (cfg->players_max == 0 || cfg->queue_max == 0)
    return *why = "player limits must be positive", RT_EINVAL;
  return RT_OK;
}
