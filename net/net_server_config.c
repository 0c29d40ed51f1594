/* net_server_config.c: the server's options: their defaults, the bounds
 * every one is checked against at start, and what an Origin may look like. */
#include "net_server_int.h"

#include "rt_assert.h"

#include <stdbool.h>
#include <string.h>

void net_server__apply_defaults(net_server_config_t *cfg) {
  if (cfg->connections_max == 0)
    cfg->connections_max = NET_CONNECTIONS_MAX_DEFAULT;
  if (cfg->header_timeout == 0)
    cfg->header_timeout = 10 * RT_NS_PER_S;
  if (cfg->idle_timeout == 0)
    cfg->idle_timeout = 30 * RT_NS_PER_S;
  if (cfg->reply_timeout == 0)
    cfg->reply_timeout = 10 * RT_NS_PER_S;
  if (cfg->ws_ping_period == 0)
    cfg->ws_ping_period = 54 * RT_NS_PER_S;
  if (cfg->ws_pong_wait == 0)
    cfg->ws_pong_wait = 60 * RT_NS_PER_S;
  if (cfg->ws_probe_period == 0)
    cfg->ws_probe_period = RT_NS_PER_S;
  if (cfg->ws_close_wait == 0)
    cfg->ws_close_wait = 5 * RT_NS_PER_S;
  if (cfg->ws_message_max == 0)
    cfg->ws_message_max = NET_WS_MESSAGE_MAX_DEFAULT;
  if (cfg->mailbox_cap == 0)
    cfg->mailbox_cap = MAILBOX_CAP_DEFAULT;
}

/* After the defaults: every duration in (0, NET_DURATION_MAX] (ws_park_after
 * may be 0: at once), the message limit at most NET_WS_MESSAGE_MAX_LIMIT,
 * route method names of 1 to NET_ROUTE_METHOD_LEN_MAX characters. */
bool net_server__config_valid(const net_server_config_t *cfg) {
  const rt_time_ns durations[] = {cfg->header_timeout, cfg->idle_timeout,
                                  cfg->reply_timeout,  cfg->ws_ping_period,
                                  cfg->ws_pong_wait,   cfg->ws_close_wait,
                                  cfg->ws_probe_period};
  for (size_t i = 0; i < sizeof(durations) / sizeof(durations[0]); i++)
    if (durations[i] <= 0 || durations[i] > NET_DURATION_MAX)
      return false;
  if (cfg->ws_park_after < 0 || cfg->ws_park_after > NET_DURATION_MAX)
    return false; /* 0: at once */
  if (cfg->routes_len > NET_ROUTES_MAX)
    return false;
  for (uint32_t i = 0; i < cfg->routes_len; i++) {
    size_t method_len = strlen(cfg->routes[i].method);
    if (method_len == 0 || method_len > NET_ROUTE_METHOD_LEN_MAX)
      return false;
  }
  if (cfg->peers.requests_per_minute > NET_PEER_REQUESTS_PER_MINUTE_MAX)
    return false;
  if (cfg->cors_origins_len > NET_CORS_ORIGINS_MAX)
    return false;
  for (uint32_t i = 0; i < cfg->cors_origins_len; i++)
    if (cfg->cors_origins[i] == NULL ||
        !net_server_origin_valid(cfg->cors_origins[i]))
      return false; /* it goes into a header: no line breaks, bounded */
  return cfg->ws_message_max <= NET_WS_MESSAGE_MAX_LIMIT &&
         cfg->allowed_origins_len <= NET_ORIGINS_MAX &&
         cfg->rules_len <= RT_MAILBOX_RULES_MAX;
}

static bool host_char(char ch) {
  return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' ||
         ch == '.';
}

static bool ipv6_char(char ch) {
  return (ch >= 'a' && ch <= 'f') || (ch >= '0' && ch <= '9') || ch == ':' ||
         ch == '.';
}

bool net_server_origin_valid(const char *origin) {
  RT_ASSERT(origin != NULL);
  if (strnlen(origin, NET_ORIGIN_LEN_MAX) >= NET_ORIGIN_LEN_MAX)
    return false;
  bool https = strncmp(origin, "https://", 8) == 0;
  if (!https && strncmp(origin, "http://", 7) != 0)
    return false;
  const char *p = origin + (https ? 8 : 7);
  const char *host = p;
  if (*p == '[') { /* an IPv6 literal */
    for (p++; ipv6_char(*p); p++)
      ;
    if (*p != ']' || p == host + 1)
      return false;
    p++;
  } else {
    while (host_char(*p))
      p++;
    if (p == host)
      return false;
  }
  if (*p == '\0')
    return true;
  if (*p != ':')
    return false; /* a path, a '/', upper case, user info: never an Origin */
  const char *port = ++p;
  if (*port == '0')
    return false; /* a browser writes no leading zero, and no port 0 */
  unsigned value = 0;
  for (; *p >= '0' && *p <= '9' && p - port < 5; p++)
    value = value * 10 + (unsigned)(*p - '0');
  /* A browser leaves out the scheme's own port. */
  return *p == '\0' && p > port && value <= 65535 &&
         value != (https ? 443u : 80u);
}
