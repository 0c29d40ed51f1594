/* fuzz_login.c: login bodies against POST /api/login (game_api_login).
 *
 * The input is the body of one POST /api/login, as net_http hands it over
 * (at most NET_HTTP_BODY_MAX bytes: longer ones are refused with 413
 * before the game sees them). The game is made once per process, in a bare
 * world (no simulation: login runs within the call, no actor turn is
 * needed) with an in-memory Store, as the server makes it; each input is
 * one call, built as net_server's call_route builds it.
 *
 * Rules checked, beyond no crash and no sanitizer report:
 *  (1) the call is answered at once, 200 or 400, with a JSON object;
 *  (2) a body that is not a JSON object with a string "name" (read here
 *      with plain cJSON) is refused; an accepted name is 1 to 24 code
 *      points of valid UTF-8 with no control character and not only
 *      spaces (decoded here, apart from game_name_valid);
 *  (3) a 200 carries a userId "g_" and 16 hex digits, the name asked for,
 *      and a token that game_authenticate accepts as that userId and name.
 */
#include "fuzz_check.h"
#include "game.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <string.h>

#define BODY_MAX 4096u /* NET_HTTP_BODY_MAX */
#define SECRET "fuzz-secret-0123456789abcdef"
#define NAME_CHARS_MAX 24u

typedef struct context {
  rt_world_t *w;
  game_t *game;
} context_t;

static const context_t *context(void) {
  static context_t ctx;
  if (ctx.game != NULL)
    return &ctx;
  rt_world_config_t wc = {.seed = 1,
                          .log_level = RT_LOG_OFF,
                          .hash_disabled = true,
                          .epoch_unix_ns = 1700000000LL * RT_NS_PER_S};
  rt_backend_t be = {0};
  ctx.w = rt_world_create(&wc, &be, NULL);
  game_config_t cfg;
  game_config_defaults(&cfg);
  game_store_config_t store = {.path = ":memory:"};
  if (ctx.w == NULL || game_create(ctx.w, &cfg, SECRET, &store, &ctx.game) < 0)
    abort();
  return &ctx;
}

/* Rule (2)'s name check, written apart from game_name_valid. */
static bool name_plausible(const char *s) {
  const uint8_t *p = (const uint8_t *)s;
  size_t chars = 0;
  bool visible = false;
  while (*p != '\0') {
    uint32_t cp;
    size_t len;
    if (p[0] < 0x80)
      cp = p[0], len = 1;
    else if ((p[0] & 0xe0) == 0xc0)
      cp = p[0] & 0x1fu, len = 2;
    else if ((p[0] & 0xf0) == 0xe0)
      cp = p[0] & 0x0fu, len = 3;
    else if ((p[0] & 0xf8) == 0xf0)
      cp = p[0] & 0x07u, len = 4;
    else
      return false;
    for (size_t k = 1; k < len; k++) {
      if ((p[k] & 0xc0) != 0x80)
        return false;
      cp = cp << 6 | (p[k] & 0x3fu);
    }
    static const uint32_t least[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < least[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
      return false;
    if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f))
      return false;
    visible = visible || cp != ' ';
    chars++;
    p += len;
  }
  return chars >= 1 && chars <= NAME_CHARS_MAX && visible;
}

static bool user_id_valid(const char *id) {
  if (strlen(id) != 18 || strncmp(id, "g_", 2) != 0)
    return false;
  for (size_t i = 2; i < 18; i++)
    if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
      return false;
  return true;
}

static void check_accepted(const context_t *ctx, const cJSON *answer,
                           const char *asked) {
  const cJSON *token = cJSON_GetObjectItemCaseSensitive(answer, "token");
  const cJSON *id = cJSON_GetObjectItemCaseSensitive(answer, "userId");
  const cJSON *name = cJSON_GetObjectItemCaseSensitive(answer, "name");
  FUZZ_CHECK(cJSON_IsString(token) && cJSON_IsString(id) &&
                 cJSON_IsString(name),
             "a 200 without token, userId and name");
  FUZZ_CHECK(user_id_valid(id->valuestring), "userId \"%s\"", id->valuestring);
  FUZZ_CHECK(strcmp(name->valuestring, asked) == 0,
             "asked for \"%s\", got \"%s\"", asked, name->valuestring);
  FUZZ_CHECK(name_plausible(asked), "accepted the name \"%s\"", asked);
  rt_identity_t who;
  int rc = game_authenticate(ctx->game, token->valuestring, &who);
  FUZZ_CHECK(rc == 0, "its own token refused: %d", rc);
  FUZZ_CHECK(strcmp(who.subject, id->valuestring) == 0 &&
                 strcmp(who.name, asked) == 0,
             "the token says \"%s\" \"%s\"", who.subject, who.name);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > BODY_MAX)
    size = BODY_MAX;
  const context_t *ctx = context();
  rt_http_call_t call = {.method = "POST",
                         .path = "/api/login",
                         .query = "",
                         .body = data,
                         .body_len = (uint32_t)size,
                         .reply_to = 1,
                         .call_id = 1};
  rt_http_answer_t answer = {0};
  int rc = game_api_login(ctx->game, ctx->w, &call, &answer);
  /* Rule (1). */
  FUZZ_CHECK(rc == RT_HTTP_ANSWERED, "login returned %d", rc);
  FUZZ_CHECK(answer.status == 200 || answer.status == 400, "status %d",
             answer.status);
  FUZZ_CHECK(answer.body != NULL && answer.content_type != NULL &&
                 strcmp(answer.content_type, "application/json") == 0,
             "an answer without a JSON body");
  cJSON *reply =
      cJSON_ParseWithLength((const char *)answer.body->data, answer.body->len);
  FUZZ_CHECK(cJSON_IsObject(reply), "the answer is not a JSON object");
  /* Rule (2): what the body asks, read with plain cJSON. */
  cJSON *body = cJSON_ParseWithLength((const char *)data, size);
  const cJSON *name = cJSON_GetObjectItemCaseSensitive(body, "name");
  bool asks = cJSON_IsObject(body) && cJSON_IsString(name);
  if (!asks)
    FUZZ_CHECK(answer.status == 400, "no name asked, yet %d", answer.status);
  if (answer.status == 200)
    check_accepted(ctx, reply, name->valuestring); /* Rule (3) */
  else
    FUZZ_CHECK(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(reply, "error")),
               "a %d without an error", answer.status);
  cJSON_Delete(body);
  cJSON_Delete(reply);
  rt_buf_unref(answer.body);
  return 0;
}
