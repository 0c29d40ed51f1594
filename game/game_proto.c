#include "game_proto.h"

#include "rt_assert.h"
#include "rt_err.h"
#include "rt_json.h"
#include "rt_parse.h"

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

/* The message's type and seq, from its "type" (a string) and its payload. */
static game_decode_result_t decode_type(const char *type, size_t type_len,
                                        game_in_t *out) {
  for (size_t i = 0; i < sizeof(in_types) / sizeof(in_types[0]); i++) {
    if (rt_json_is(type, type_len, in_types[i].name)) {
      out->type = in_types[i].type;
      return GAME_DECODE_OK;
    }
  }
  return GAME_DECODE_UNKNOWN_TYPE;
}

static void decode_seq(double seq, game_in_t *out) {
  if (seq >= 0 && seq <= SEQ_MAX && floor(seq) == seq) {
    out->has_seq = true;
    out->seq = (int64_t)seq;
  }
}

/* By rt_json (rt_json.h): a message read in place, as cJSON would read it. */
static game_decode_result_t decode_json(const rt_json_t *j, game_in_t *out) {
  rt_json_value_t root = rt_json_root(j);
  rt_json_value_t type = rt_json_get(j, &root, "type");
  if (type.kind != RT_JSON_STRING)
    return GAME_DECODE_BAD_JSON;
  game_decode_result_t result = decode_type(type.str, type.len, out);
  if (result != GAME_DECODE_OK || out->type != GAME_IN_CLICK)
    return result;
  rt_json_value_t payload = rt_json_get(j, &root, "payload");
  rt_json_value_t seq = rt_json_get(j, &payload, "seq");
  if (seq.kind == RT_JSON_NUMBER)
    decode_seq(seq.num, out);
  return result;
}

/* By cJSON: every text rt_json does not take. */
static game_decode_result_t decode_cjson(const uint8_t *data, size_t len,
                                         game_in_t *out) {
  /* Trailing bytes ("{...}x", a second object, a NUL) are not JSON: one
   * message is one value. A U+0000 in any string is bad_json too: the server
   * cannot read that message as written ("CLICK\u0000x" would be CLICK, a
   * key "type\u0000" would be "type"), and cannot tell which string held it,
   * so an ignored field holding one refuses the message as well. */
  bool nul = false;
  cJSON *root = game_proto_json_parse(data, len, &nul);
  if (root == NULL)
    return GAME_DECODE_BAD_JSON;
  game_decode_result_t result = GAME_DECODE_BAD_JSON;
  const cJSON *type = cJSON_GetObjectItemCaseSensitive(root, "type");
  if (nul || !cJSON_IsObject(root) || !cJSON_IsString(type))
    goto done;
  result = decode_type(type->valuestring, strlen(type->valuestring), out);
  if (result != GAME_DECODE_OK || out->type != GAME_IN_CLICK)
    goto done;
  const cJSON *payload = cJSON_GetObjectItemCaseSensitive(root, "payload");
  const cJSON *seq = cJSON_GetObjectItemCaseSensitive(payload, "seq");
  if (cJSON_IsObject(payload) && cJSON_IsNumber(seq))
    decode_seq(seq->valuedouble, out);
done:
  cJSON_Delete(root);
  return result;
}

static bool json_controls_ok(const uint8_t *data, size_t len);

game_decode_result_t game_proto__decode(const uint8_t *data, size_t len,
                                        bool allow_fast, game_in_t *out,
                                        bool *fast) {
  memset(out, 0, sizeof(*out));
  *fast = false;
  if (len > GAME_MESSAGE_MAX)
    return GAME_DECODE_TOO_BIG;
  /* A click is read some ten times a second per player: by rt_json when it
   * takes the text (no escapes, no control bytes; cJSON's tree and strtod
   * were most of a click's decoding), by cJSON otherwise. */
  rt_json_t j;
  if (allow_fast && json_controls_ok(data, len) &&
      rt_json_read(&j, (const char *)data, len, RT_JSON_REST_SPACE)) {
    *fast = true;
    return decode_json(&j, out);
  }
  return decode_cjson(data, len, out);
}

game_decode_result_t game_proto_decode(const uint8_t *data, size_t len,
                                       game_in_t *out) {
  bool fast;
  return game_proto__decode(data, len, true, out, &fast);
}

/* ---- Client JSON --------------------------------------------------------- */

/* JSON's whitespace (RFC 8259 section 2); cJSON's is any byte <= 0x20. */
static bool json_space(uint8_t c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* RFC 8259 allows no control byte between tokens but these three, and
 * none raw inside a string; cJSON takes them, and a raw NUL inside a
 * string would end it early. (Tab, LF and CR inside a string pass: cJSON
 * keeps them, and they cut nothing; names refuse them.) */
static bool json_controls_ok(const uint8_t *data, size_t len) {
  for (size_t i = 0; i < len; i++) {
    if (data[i] < 0x20 && !json_space(data[i]))
      return false;
  }
  return true;
}

struct cJSON *game_proto_json_parse(const uint8_t *data, size_t len,
                                    bool *nul) {
  *nul = false;
  if (!json_controls_ok(data, len))
    return NULL;
  const char *end = NULL;
  cJSON *root = cJSON_ParseWithLengthOpts((const char *)data, len, &end, false);
  if (root == NULL)
    return NULL;
  /* cJSON stops after the first value; anything but JSON whitespace after
   * it ("{...}x", a second object) means the text is not one JSON value. */
  for (const char *p = end; p < (const char *)data + len; p++) {
    if (!json_space((uint8_t)*p)) {
      cJSON_Delete(root);
      return NULL;
    }
  }
  /* The only other way to a NUL is the escape \u0000 (no surrogate pair
   * decodes to it). In a text cJSON took, a backslash occurs only inside a
   * string and starts a two-character escape, so reading backslashes in
   * pairs from the left finds exactly the escapes: "\\u0000" is a
   * backslash and "u0000", no NUL. */
  for (size_t i = 0; i + 1 < len; i++) {
    if (data[i] != '\\')
      continue;
    if (len - i >= 6 && memcmp(data + i + 1, "u0000", 5) == 0) {
      *nul = true;
      break;
    }
    i++; /* the escaped character */
  }
  return root;
}

/* ---- Encoding ------------------------------------------------------------ */

/* cJSON prints every message (structure, escaping, numbers); the nodes it
 * prints are ours, on the encoder's stack. A message is a handful of nodes
 * that live for one print, and building them with cJSON_Create* cost a
 * malloc and a free per node and per copied string (about twenty per click,
 * a quarter of the server's instructions per click): here a node is a
 * zeroed cJSON with its type and value set as cJSON_Create* would set them,
 * strings are references (cJSON_IsReference, as cJSON_CreateStringReference
 * makes them), keys are constants (cJSON_AddItemToObjectCS), and nothing is
 * freed because nothing was allocated. Integers are printed by us and added
 * as raw numbers: cJSON 1.7 prints every number with "%1.15g" and reads it
 * back with sscanf. */

#define ENC_NODES_MAX 16u
#define ENC_INTS_MAX 8u

typedef struct enc {
  cJSON nodes[ENC_NODES_MAX];
  char ints[ENC_INTS_MAX][RT_I64_TEXT_MAX];
  uint32_t nodes_len, ints_len;
} enc_t;

/* Decimal digits of v into out (RT_I64_TEXT_MAX bytes); returns out. */
static char *format_int(int64_t v, char *out) {
  rt_i64_text(v, out);
  return out;
}

/* A fresh node of `type`; the limits are the encoder's, not the input's:
 * every message below uses a fixed number of nodes. */
static cJSON *enc_node(enc_t *e, int type) {
  RT_ASSERT(e->nodes_len < ENC_NODES_MAX);
  cJSON *n = &e->nodes[e->nodes_len++];
  memset(n, 0, sizeof(*n));
  n->type = type;
  return n;
}

/* Not zeroed: a node is cleared when taken, and most are never taken. */
static void enc_init(enc_t *e) {
  e->nodes_len = 0;
  e->ints_len = 0;
}

static cJSON *enc_object(enc_t *e) { return enc_node(e, cJSON_Object); }

static void add_int(enc_t *e, cJSON *obj, const char *key, int64_t v) {
  RT_ASSERT(e->ints_len < ENC_INTS_MAX);
  cJSON *n = enc_node(e, cJSON_Raw | cJSON_IsReference);
  n->valuestring = format_int(v, e->ints[e->ints_len++]);
  cJSON_AddItemToObjectCS(obj, key, n);
}

/* v is borrowed until the message is printed. */
static void add_str(enc_t *e, cJSON *obj, const char *key, const char *v) {
  cJSON *n = enc_node(e, cJSON_String | cJSON_IsReference);
  n->valuestring = (char *)v; /* a reference: cJSON never writes it */
  cJSON_AddItemToObjectCS(obj, key, n);
}

static void add_number(enc_t *e, cJSON *obj, const char *key, double v) {
  cJSON *n = enc_node(e, cJSON_Number);
  cJSON_SetNumberHelper(n, v);
  cJSON_AddItemToObjectCS(obj, key, n);
}

/* {"type": type, "payload": payload} into a new buffer. */
static rt_buf_t *encode_message(enc_t *e, const char *type, cJSON *payload) {
  cJSON *root = enc_object(e);
  add_str(e, root, "type", type);
  cJSON_AddItemToObjectCS(root, "payload", payload);
  char text[GAME_FRAME_MAX];
  if (!cJSON_PrintPreallocated(root, text, (int)sizeof(text), 0))
    return NULL;
  return rt_buf_copy(text, strlen(text));
}

static void add_scores(enc_t *e, cJSON *p, game_scores_t s) {
  add_int(e, p, "p1Score", s.p1);
  add_int(e, p, "p2Score", s.p2);
}

rt_buf_t *game_proto_queued(void) {
  enc_t e;
  enc_init(&e);
  return encode_message(&e, "QUEUED", enc_object(&e));
}

rt_buf_t *game_proto_game_start(const char *opponent, const char *role,
                                const char *room_id, int32_t time_remaining,
                                game_scores_t s, const char *p1_name,
                                const char *p2_name, bool resumed,
                                double countdown_s) {
  enc_t e;
  enc_init(&e);
  cJSON *p = enc_object(&e);
  add_str(&e, p, "opponent", opponent);
  add_str(&e, p, "role", role);
  add_str(&e, p, "roomId", room_id);
  add_int(&e, p, "timeRemaining", time_remaining);
  add_scores(&e, p, s);
  add_str(&e, p, "p1Name", p1_name);
  add_str(&e, p, "p2Name", p2_name);
  if (resumed)
    cJSON_AddItemToObjectCS(p, "resumed", enc_node(&e, cJSON_True));
  /* v1 addition: seconds of countdown left (0 once the game runs), so a
   * client shows the real countdown, also after a resume. */
  add_number(&e, p, "countdown", countdown_s);
  return encode_message(&e, "GAME_START", p);
}

rt_buf_t *game_proto_tick(int32_t time_remaining, game_scores_t s,
                          const char *p1_name, const char *p2_name) {
  enc_t e;
  enc_init(&e);
  cJSON *p = enc_object(&e);
  add_int(&e, p, "timeRemaining", time_remaining);
  add_scores(&e, p, s);
  add_str(&e, p, "p1Name", p1_name);
  add_str(&e, p, "p2Name", p2_name);
  return encode_message(&e, "UPDATE", p);
}

/* ---- Forms --------------------------------------------------------------- */

/* cJSON prints a raw value as it is, and 0x01 is nowhere else in these
 * messages (keys and types are constants), so each 0x01 in the print is
 * one integer's place. */
#define FORM_SLOT "\x01"

static int form_init(game_proto_form_t *f, rt_buf_t *printed,
                     uint8_t want_slots) {
  memset(f, 0, sizeof(*f));
  if (printed == NULL)
    return RT_ENOMEM;
  int err = RT_OK;
  if (printed->len > sizeof(f->text)) {
    err = RT_EINVAL;
    goto done;
  }
  memcpy(f->text, printed->data, printed->len);
  f->text_len = (uint16_t)printed->len;
  for (uint16_t i = 0; i < f->text_len; i++) {
    if (f->text[i] != FORM_SLOT[0])
      continue;
    if (f->slots == GAME_FORM_SLOTS) {
      err = RT_EINVAL;
      goto done;
    }
    f->slot_at[f->slots++] = i;
  }
  if (f->slots != want_slots)
    err = RT_EINVAL;
done:
  rt_buf_unref(printed);
  return err;
}

/* The click UPDATE's tree, each integer either printed or a slot. */
static rt_buf_t *click_update(enc_t *e, const char *p1, const char *p2,
                              const char *seq) {
  cJSON *p = enc_object(e);
  cJSON *n = enc_node(e, cJSON_Raw | cJSON_IsReference);
  n->valuestring = (char *)p1;
  cJSON_AddItemToObjectCS(p, "p1Score", n);
  n = enc_node(e, cJSON_Raw | cJSON_IsReference);
  n->valuestring = (char *)p2;
  cJSON_AddItemToObjectCS(p, "p2Score", n);
  if (seq != NULL) {
    /* Printed as an integer: cJSON prints doubles with 15 significant digits
     * when a loose relative comparison says that round-trips, which turns
     * 9007199254740991 into 9007199254740990. The echo must be exact. */
    n = enc_node(e, cJSON_Raw | cJSON_IsReference);
    n->valuestring = (char *)seq;
    cJSON_AddItemToObjectCS(p, "seq", n);
  }
  return encode_message(e, "UPDATE", p);
}

int game_proto_forms_init(game_proto_forms_t *f) {
  enc_t e;
  enc_init(&e);
  int err =
      form_init(&f->click, click_update(&e, FORM_SLOT, FORM_SLOT, NULL), 2);
  if (err == RT_OK) {
    enc_init(&e);
    err = form_init(&f->click_seq,
                    click_update(&e, FORM_SLOT, FORM_SLOT, FORM_SLOT), 3);
  }
  return err;
}

static rt_buf_t *form_fill(const game_proto_form_t *f, const int64_t *v) {
  char ints[GAME_FORM_SLOTS][RT_I64_TEXT_MAX];
  size_t lens[GAME_FORM_SLOTS];
  /* form_init stops at GAME_FORM_SLOTS; said here too, for the compiler
   * (a profile-guided build warned of ints[] overrun otherwise). */
  RT_ASSERT(f->slots <= GAME_FORM_SLOTS);
  uint8_t slots = f->slots <= GAME_FORM_SLOTS ? f->slots : GAME_FORM_SLOTS;
  size_t len = f->text_len - slots;
  for (uint8_t i = 0; i < slots; i++) {
    lens[i] = rt_i64_text(v[i], ints[i]);
    len += lens[i];
  }
  rt_buf_t *b = rt_buf_create(len);
  if (b == NULL)
    return NULL;
  uint8_t *out = b->data;
  size_t from = 0;
  for (uint8_t i = 0; i < slots; i++) {
    memcpy(out, f->text + from, f->slot_at[i] - from);
    out += f->slot_at[i] - from;
    memcpy(out, ints[i], lens[i]);
    out += lens[i];
    from = f->slot_at[i] + 1u;
  }
  memcpy(out, f->text + from, f->text_len - from);
  return b;
}

rt_buf_t *game_proto_click_update(game_scores_t s, int64_t seq) {
  enc_t e;
  enc_init(&e);
  char p1[RT_I64_TEXT_MAX], p2[RT_I64_TEXT_MAX], seq_text[RT_I64_TEXT_MAX];
  return click_update(&e, format_int(s.p1, p1), format_int(s.p2, p2),
                      seq >= 0 ? format_int(seq, seq_text) : NULL);
}

rt_buf_t *game_proto_click_update_form(const game_proto_forms_t *f,
                                       game_scores_t s, int64_t seq) {
  int64_t v[GAME_FORM_SLOTS] = {s.p1, s.p2, seq};
  return form_fill(seq >= 0 ? &f->click_seq : &f->click, v);
}

rt_buf_t *game_proto_golden_claim(const char *claimed_by, game_scores_t s) {
  enc_t e;
  enc_init(&e);
  cJSON *p = enc_object(&e);
  add_str(&e, p, "goldenCookieClaimedBy", claimed_by);
  add_scores(&e, p, s);
  return encode_message(&e, "UPDATE", p);
}

rt_buf_t *game_proto_opponent_click(int32_t points) {
  enc_t e;
  enc_init(&e);
  cJSON *p = enc_object(&e);
  add_int(&e, p, "count", points);
  return encode_message(&e, "OPPONENT_CLICK", p);
}

rt_buf_t *game_proto_cookie_spawn(double x, double y) {
  enc_t e;
  enc_init(&e);
  cJSON *p = enc_object(&e);
  add_number(&e, p, "x", x);
  add_number(&e, p, "y", y);
  return encode_message(&e, "COOKIE_SPAWN", p);
}

rt_buf_t *game_proto_game_over(const char *winner, const char *reason,
                               game_scores_t s, const char *room_id) {
  enc_t e;
  enc_init(&e);
  cJSON *p = enc_object(&e);
  add_str(&e, p, "winner", winner);
  add_str(&e, p, "reason", reason);
  add_scores(&e, p, s);
  if (room_id != NULL)
    add_str(&e, p, "roomId", room_id);
  return encode_message(&e, "GAME_OVER", p);
}

rt_buf_t *game_proto_move(const char *url, const char *room_id) {
  enc_t e;
  enc_init(&e);
  cJSON *p = enc_object(&e);
  add_str(&e, p, "url", url);
  add_str(&e, p, "roomId", room_id);
  return encode_message(&e, "MOVE", p);
}

rt_buf_t *game_proto_error(const char *code, const char *message) {
  enc_t e;
  enc_init(&e);
  cJSON *p = enc_object(&e);
  add_str(&e, p, "code", code);
  add_str(&e, p, "message", message);
  return encode_message(&e, "ERROR", p);
}
