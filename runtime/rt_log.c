#include "rt_assert.h"
#include "runtime_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static const char *level_name(int level) {
  switch (level) {
  case RT_LOG_DEBUG: return "debug";
  case RT_LOG_INFO: return "info";
  case RT_LOG_WARN: return "warn";
  case RT_LOG_ERROR: return "error";
  default: return "off";
  }
}

int rt_log_level_parse(const char *name) {
  for (int level = RT_LOG_DEBUG; name != NULL && level <= RT_LOG_OFF; level++)
    if (strcmp(name, level_name(level)) == 0)
      return level;
  return RT_EINVAL;
}

static bool log_enabled(const rt_world_t *w, int level) {
  return level >= w->cfg.log_level && level < RT_LOG_OFF;
}

static void vlog(rt_world_t *w, int level, const char *event, const char *fmt,
                 va_list ap) {
  if (!log_enabled(w, level))
    return;
  char line[RT_LOG_LINE_MAX];
  const size_t cap = sizeof(line) - 4; /* room for "...\n" */
  rt_time_ns t = w->now;
  int n = snprintf(line, cap, "t=%" PRId64 ".%06" PRId64 " level=%s event=%s",
                   (int64_t)(t / RT_NS_PER_S),
                   (int64_t)((t % RT_NS_PER_S) / RT_NS_PER_US),
                   level_name(level), event);
  size_t len = n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap;
  if (w->current != NULL && len < cap) {
    n = snprintf(line + len, cap - len, " actor=%" PRIu64, w->current->id);
    len = n < 0 ? len : len + (size_t)n < cap ? len + (size_t)n : cap;
  }
  if (fmt != NULL && fmt[0] != '\0' && len + 1 < cap) {
    line[len++] = ' ';
    n = vsnprintf(line + len, cap - len, fmt, ap);
    len = n < 0 ? len : len + (size_t)n < cap ? len + (size_t)n : cap;
  }
  if (len >= cap - 1) {
    memcpy(line + cap - 1, "...", 3);
    len = cap + 2;
  }
  line[len++] = '\n';
  if (w->backend.log_write != NULL) {
    w->backend.log_write(w->backend_ctx, line, len);
  } else {
    fwrite(line, 1, len, stderr);
  }
}

void rt_log(rt_world_t *w, int level, const char *event, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vlog(w, level, event, fmt, ap);
  va_end(ap);
}
