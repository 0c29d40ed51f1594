#include "game_proto.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static const struct {
  char name[16];
  game_in_type_t type;
} in_types[] = {
    {"JOIN_QUEUE", GAME_IN_JOIN_QUEUE}, {"LEAVE_QUEUE", GAME_IN_LEAVE_QUEUE},
    {"CLICK", GAME_IN_CLICK},           {"COOKIE_CLICK", GAME_IN_COOKIE_CLICK},
    {"QUIT_GAME", GAME_IN_QUIT},
};

/* JSON numbers are doubles: seq is echoed only when it is a whole number a
 * double holds exactly. */
#define SEQ_MAX 9007199254740991.0 /* 2^53 - 1 */

game_decode_result_t game_proto_decode(const uint8_t *data, size_t len,
                                       game_in_t *out) {
  memset(out, 0, sizeof(*out));
  if (len > GAME_MESSAGE_MAX)
    return GAME_DECODE_TOO_BIG;
  const char *end = NULL;
  cJSON *root = cJSON_ParseWithLengthOpts((const char *)data, len, &end, false);
  if (root == NULL)
    return GAME_DECODE_BAD_JSON;
  /* cJSON stops after the first value; anything but JSON whitespace after
   * it ("{...}x", a second object, a NUL) means the message is not JSON. */
  for (const char *p = end; p < (const char *)data + len; p++) {
    if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
      cJSON_Delete(root);
      return GAME_DECODE_BAD_JSON;
    }
  }
  game_decode_result_t result = GAME_DECODE_BAD_JSON;
  const cJSON *type = cJSON_GetObjectItemCaseSensitive(root, "type");
  if (!cJSON_IsObject(root) || !cJSON_IsString(type))
    goto done;
  result = GAME_DECODE_UNKNOWN_TYPE;
  for (size_t i = 0; i < sizeof(in_types) / sizeof(in_types[0]); i++) {
    if (strcmp(type->valuestring, in_types[i].name) == 0) {
      out->type = in_types[i].type;
      result = GAME_DECODE_OK;
      break;
    }
  }
  if (result != GAME_DECODE_OK)
    goto done;
  const cJSON *payload = cJSON_GetObjectItemCaseSensitive(root, "payload");
  if (out->type == GAME_IN_CLICK && cJSON_IsObject(payload)) {
    const cJSON *seq = cJSON_GetObjectItemCaseSensitive(payload, "seq");
    if (cJSON_IsNumber(seq) && seq->valuedouble >= 0 &&
        seq->valuedouble <= SEQ_MAX &&
        floor(seq->valuedouble) == seq->valuedouble) {
      out->has_seq = true;
      out->seq = (int64_t)seq->valuedouble;
    }
  }
done:
  cJSON_Delete(root);
  return result;
}

/* ---- Encoding ------------------------------------------------------------------ */

/* cJSON builds every message (escaping, structure). Two things are done
 * differently from cJSON's defaults because they dominated the server's
 * profile: integers are printed by us and added as raw numbers (cJSON 1.7
 * prints every number with "%1.15g" and reads it back with sscanf), and
 * keys are constant strings (no copy per key). */

/* Decimal digits of v into out (at least 21 bytes); returns out. */
static char *format_int(int64_t v, char *out) {
  char tmp[24];
  int n = 0;
  uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
  do {
    tmp[n++] = (char)('0' + u % 10);
    u /= 10;
  } while (u != 0);
  int o = 0;
  if (v < 0)
    out[o++] = '-';
  while (n > 0)
    out[o++] = tmp[--n];
  out[o] = '\0';
  return out;
}

static void add_int(cJSON *obj, const char *key, int64_t v) {
  char digits[24];
  cJSON_AddItemToObjectCS(obj, key, cJSON_CreateRaw(format_int(v, digits)));
}

static void add_str(cJSON *obj, const char *key, const char *v) {
  cJSON_AddItemToObjectCS(obj, key, cJSON_CreateString(v));
}

/* {"type": type, "payload": payload} into a buffer; takes payload. */
static rt_buf_t *encode_message(const char *type, cJSON *payload) {
  cJSON *root = cJSON_CreateObject();
  if (root == NULL || payload == NULL) {
    cJSON_Delete(root);
    cJSON_Delete(payload);
    return NULL;
  }
  add_str(root, "type", type);
  cJSON_AddItemToObjectCS(root, "payload", payload);
  char text[GAME_FRAME_MAX];
  rt_buf_t *buf = NULL;
  if (cJSON_PrintPreallocated(root, text, (int)sizeof(text), 0))
    buf = rt_buf_copy(text, strlen(text));
  cJSON_Delete(root);
  return buf;
}

static void add_scores(cJSON *p, game_scores_t s) {
  add_int(p, "p1Score", s.p1);
  add_int(p, "p2Score", s.p2);
}

rt_buf_t *game_proto_queued(void) {
  return encode_message("QUEUED", cJSON_CreateObject());
}

rt_buf_t *game_proto_game_start(const char *opponent, const char *role,
                                const char *room_id, int32_t time_remaining,
                                game_scores_t s, const char *p1_name,
                                const char *p2_name, bool resumed,
                                double countdown_s) {
  cJSON *p = cJSON_CreateObject();
  if (p == NULL)
    return NULL;
  add_str(p, "opponent", opponent);
  add_str(p, "role", role);
  add_str(p, "roomId", room_id);
  add_int(p, "timeRemaining", time_remaining);
  add_scores(p, s);
  add_str(p, "p1Name", p1_name);
  add_str(p, "p2Name", p2_name);
  if (resumed)
    cJSON_AddItemToObjectCS(p, "resumed", cJSON_CreateTrue());
  /* v1 addition: seconds of countdown left (0 once the game runs), so a
   * client shows the real countdown, also after a resume. */
  cJSON_AddItemToObjectCS(p, "countdown", cJSON_CreateNumber(countdown_s));
  return encode_message("GAME_START", p);
}

rt_buf_t *game_proto_tick(int32_t time_remaining, game_scores_t s,
                          const char *p1_name, const char *p2_name) {
  cJSON *p = cJSON_CreateObject();
  if (p == NULL)
    return NULL;
  add_int(p, "timeRemaining", time_remaining);
  add_scores(p, s);
  add_str(p, "p1Name", p1_name);
  add_str(p, "p2Name", p2_name);
  return encode_message("UPDATE", p);
}

rt_buf_t *game_proto_click_update(game_scores_t s, int64_t seq) {
  cJSON *p = cJSON_CreateObject();
  if (p == NULL)
    return NULL;
  add_scores(p, s);
  if (seq >= 0) {
    /* Printed as an integer: cJSON prints doubles with 15 significant digits
     * when a loose relative comparison says that round-trips, which turns
     * 9007199254740991 into 9007199254740990. The echo must be exact. */
    add_int(p, "seq", seq);
  }
  return encode_message("UPDATE", p);
}

rt_buf_t *game_proto_golden_claim(const char *claimed_by, game_scores_t s) {
  cJSON *p = cJSON_CreateObject();
  if (p == NULL)
    return NULL;
  add_str(p, "goldenCookieClaimedBy", claimed_by);
  add_scores(p, s);
  return encode_message("UPDATE", p);
}

rt_buf_t *game_proto_opponent_click(int32_t points) {
  cJSON *p = cJSON_CreateObject();
  if (p == NULL)
    return NULL;
  add_int(p, "count", points);
  return encode_message("OPPONENT_CLICK", p);
}

rt_buf_t *game_proto_cookie_spawn(double x, double y) {
  cJSON *p = cJSON_CreateObject();
  if (p == NULL)
    return NULL;
  cJSON_AddNumberToObject(p, "x", x);
  cJSON_AddNumberToObject(p, "y", y);
  return encode_message("COOKIE_SPAWN", p);
}

rt_buf_t *game_proto_game_over(const char *winner, const char *reason,
                               game_scores_t s) {
  cJSON *p = cJSON_CreateObject();
  if (p == NULL)
    return NULL;
  add_str(p, "winner", winner);
  add_str(p, "reason", reason);
  add_scores(p, s);
  return encode_message("GAME_OVER", p);
}

rt_buf_t *game_proto_error(const char *code, const char *message) {
  cJSON *p = cJSON_CreateObject();
  if (p == NULL)
    return NULL;
  add_str(p, "code", code);
  add_str(p, "message", message);
  return encode_message("ERROR", p);
}
