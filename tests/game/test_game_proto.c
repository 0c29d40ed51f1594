/* test_game_proto.c: the WebSocket messages of PROTOCOL.md (game/game_proto.h).
 *
 * Decoding: every client message type, with and without payload, unknown
 * fields, CLICK's optional seq at and beyond the whole numbers a double holds
 * (0..2^53-1), malformed messages, and the 512-byte limit at, below and above.
 *
 * Encoding: every server message is parsed back with cJSON (independently of
 * the encoder) and must hold exactly the fields PROTOCOL.md lists, with the
 * right JSON types and values. Names with quotes, backslashes, markup and
 * non-ASCII text must survive encode + parse byte for byte.
 *
 * Pure functions: no world, no loops beyond fixed tables.
 */
#include "game_proto.h"
#include "rt_rng.h"

#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* ---- Helpers ------------------------------------------------------------- */

static game_decode_result_t decode_str(const char *text, game_in_t *out) {
  return game_proto_decode((const uint8_t *)text, strlen(text), out);
}

/* Decode `text`, asserting OK and the given type; returns the message. */
static game_in_t decode_ok(const char *text, game_in_type_t type) {
  game_in_t in;
  game_decode_result_t r = decode_str(text, &in);
  cr_assert_eq(r, GAME_DECODE_OK, "decode(%s) = %d", text, (int)r);
  cr_assert_eq(in.type, type, "decode(%s): type %d, want %d", text,
               (int)in.type, (int)type);
  return in;
}

static void expect_result(const char *text, game_decode_result_t want) {
  game_in_t in;
  memset(&in, 0xab, sizeof(in));
  game_decode_result_t r = decode_str(text, &in);
  cr_assert_eq(r, want, "decode(%s) = %d, want %d", text, (int)r, (int)want);
  if (want != GAME_DECODE_OK)
    cr_assert_not(in.has_seq, "a refused message carries no seq: %s", text);
}

/* A CLICK carrying `seq_json` as its payload's seq. */
static game_in_t click_with_seq(const char *seq_json) {
  char text[128];
  int n = snprintf(text, sizeof(text),
                   "{\"type\":\"CLICK\",\"payload\":{\"count\":1,\"seq\":%s}}",
                   seq_json);
  cr_assert(n > 0 && (size_t)n < sizeof(text));
  return decode_ok(text, GAME_IN_CLICK);
}

/* Parse a server frame: {"type": type, "payload": {...}} and nothing else.
 * Returns the root (caller deletes); *payload points into it. */
static cJSON *parse_frame(rt_buf_t *buf, const char *type, cJSON **payload) {
  cr_assert_not_null(buf, "encoder returned NULL");
  cr_assert_eq(buf->refs, 1u);
  cr_assert_leq(buf->len, GAME_FRAME_MAX);
  const char *end = NULL;
  cJSON *root =
      cJSON_ParseWithLengthOpts((const char *)buf->data, buf->len, &end, false);
  cr_assert_not_null(root, "frame is JSON: %.*s", (int)buf->len, buf->data);
  cr_assert_eq(end, (const char *)buf->data + buf->len,
               "nothing after the JSON value: %.*s", (int)buf->len, buf->data);
  cr_assert(cJSON_IsObject(root));
  cr_assert_eq(cJSON_GetArraySize(root), 2, "exactly type and payload: %.*s",
               (int)buf->len, buf->data);
  const cJSON *t = cJSON_GetObjectItemCaseSensitive(root, "type");
  cr_assert(cJSON_IsString(t));
  cr_assert_str_eq(t->valuestring, type);
  *payload = cJSON_GetObjectItemCaseSensitive(root, "payload");
  cr_assert(cJSON_IsObject(*payload), "payload is an object");
  return root;
}

/* The payload's keys are exactly `keys` (NULL-terminated), in any order. */
static void expect_keys(const cJSON *payload, const char *const *keys) {
  int want = 0;
  for (; keys[want] != NULL; want++) {
    cr_assert_not_null(cJSON_GetObjectItemCaseSensitive(payload, keys[want]),
                       "payload has \"%s\"", keys[want]);
  }
  char *text = cJSON_PrintUnformatted(payload);
  cr_assert_eq(cJSON_GetArraySize(payload), want, "exactly %d fields: %s", want,
               text);
  cJSON_free(text);
  /* No key appears twice (cJSON keeps duplicates as separate items). */
  for (const cJSON *a = payload->child; a != NULL; a = a->next)
    for (const cJSON *b = a->next; b != NULL; b = b->next)
      cr_assert_str_neq(a->string, b->string, "duplicate key %s", a->string);
}

static void expect_str(const cJSON *p, const char *key, const char *want) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(p, key);
  cr_assert(cJSON_IsString(v), "\"%s\" is a string", key);
  cr_assert_str_eq(v->valuestring, want, "\"%s\"", key);
}

static void expect_num(const cJSON *p, const char *key, double want) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(p, key);
  cr_assert(cJSON_IsNumber(v), "\"%s\" is a number", key);
  cr_assert(v->valuedouble == want, "\"%s\" = %.17g, want %.17g", key,
            v->valuedouble, want);
}

/* ---- Decoding: the five client messages ---------------------------------- */

Test(game_proto, decodes_each_client_message_type) {
  static const struct {
    const char *text;
    game_in_type_t type;
  } cases[] = {
      {"{\"type\":\"JOIN_QUEUE\",\"payload\":{}}", GAME_IN_JOIN_QUEUE},
      {"{\"type\":\"LEAVE_QUEUE\",\"payload\":{}}", GAME_IN_LEAVE_QUEUE},
      {"{\"type\":\"CLICK\",\"payload\":{\"count\":1}}", GAME_IN_CLICK},
      {"{\"type\":\"COOKIE_CLICK\",\"payload\":{}}", GAME_IN_COOKIE_CLICK},
      {"{\"type\":\"QUIT_GAME\",\"payload\":{}}", GAME_IN_QUIT},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    game_in_t in = decode_ok(cases[i].text, cases[i].type);
    cr_assert_not(in.has_seq, "%s has no seq", cases[i].text);
  }
}

Test(game_proto, payload_may_be_omitted_or_null) {
  decode_ok("{\"type\":\"JOIN_QUEUE\"}", GAME_IN_JOIN_QUEUE);
  decode_ok("{\"type\":\"LEAVE_QUEUE\"}", GAME_IN_LEAVE_QUEUE);
  game_in_t in = decode_ok("{\"type\":\"CLICK\"}", GAME_IN_CLICK);
  cr_assert_not(in.has_seq);
  decode_ok("{\"type\":\"COOKIE_CLICK\"}", GAME_IN_COOKIE_CLICK);
  decode_ok("{\"type\":\"QUIT_GAME\"}", GAME_IN_QUIT);
  in = decode_ok("{\"type\":\"CLICK\",\"payload\":null}", GAME_IN_CLICK);
  cr_assert_not(in.has_seq);
  /* Whitespace around and inside is JSON too. */
  decode_ok(" \n{ \"type\" : \"JOIN_QUEUE\" }\r\n", GAME_IN_JOIN_QUEUE);
}

Test(game_proto, unknown_fields_are_ignored) {
  game_in_t in =
      decode_ok("{\"extra\":[1,2,{\"a\":null}],\"type\":\"CLICK\",\"payload\":"
                "{\"count\":99,\"seq\":7,\"x\":\"y\",\"nested\":{\"seq\":8}},"
                "\"more\":true}",
                GAME_IN_CLICK);
  cr_assert(in.has_seq);
  cr_assert_eq(in.seq, 7);
  decode_ok("{\"type\":\"JOIN_QUEUE\",\"payload\":{\"mode\":\"ranked\"},"
            "\"version\":2}",
            GAME_IN_JOIN_QUEUE);
}

Test(game_proto, click_count_does_not_matter) {
  /* The server decides the points: count is neither required nor read. */
  decode_ok("{\"type\":\"CLICK\",\"payload\":{\"count\":1000000}}",
            GAME_IN_CLICK);
  decode_ok("{\"type\":\"CLICK\",\"payload\":{\"count\":\"lots\"}}",
            GAME_IN_CLICK);
}

/* ---- Decoding: seq ------------------------------------------------------- */

Test(game_proto, seq_is_echoed_for_whole_numbers_up_to_2_pow_53_minus_1) {
  static const struct {
    const char *json;
    int64_t want;
  } ok[] = {
      {"0", 0},
      {"1", 1},
      {"42", 42},
      {"4294967296", 4294967296LL},
      {"9007199254740990", 9007199254740990LL},
      {"9007199254740991", 9007199254740991LL}, /* 2^53 - 1: the limit */
      {"1e3", 1000},                            /* a whole number */
      {"5.0", 5},
  };
  for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
    game_in_t in = click_with_seq(ok[i].json);
    cr_assert(in.has_seq, "seq %s is echoed", ok[i].json);
    cr_assert_eq(in.seq, ok[i].want, "seq %s -> %lld", ok[i].json,
                 (long long)in.seq);
  }
}

Test(game_proto, seq_is_dropped_when_not_a_whole_number_in_range) {
  static const char *const bad[] = {
      "-1",
      "-9007199254740991",
      "0.5",
      "1.25",
      "-0.5",
      "9007199254740992", /* 2^53: above the limit */
      "9007199254740993",
      "18446744073709551616",
      "1e300",
      "-1e300",
      "\"7\"",
      "true",
      "null",
      "[7]",
      "{\"n\":7}",
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    game_in_t in = click_with_seq(bad[i]);
    cr_assert_not(in.has_seq, "seq %s is not echoed", bad[i]);
  }
}

Test(game_proto, seq_outside_the_payload_or_on_other_types_is_ignored) {
  game_in_t in = decode_ok("{\"type\":\"CLICK\",\"seq\":5}", GAME_IN_CLICK);
  cr_assert_not(in.has_seq, "seq belongs in the payload");
  in = decode_ok("{\"type\":\"COOKIE_CLICK\",\"payload\":{\"seq\":5}}",
                 GAME_IN_COOKIE_CLICK);
  cr_assert_not(in.has_seq, "only CLICK carries a seq");
}

/* ---- Decoding: malformed ------------------------------------------------- */

Test(game_proto, malformed_messages_are_bad_json) {
  static const char *const bad[] = {
      "",
      " ",
      "not json",
      "{",
      "{\"type\":\"CLICK\"",
      "{'type':'CLICK'}",
      "[]",
      "[{\"type\":\"CLICK\"}]",
      "\"CLICK\"",
      "42",
      "null",
      "true",
      "{}",
      "{\"payload\":{}}",
      "{\"type\":null}",
      "{\"type\":1}",
      "{\"type\":true}",
      "{\"type\":[\"CLICK\"]}",
      "{\"type\":{\"name\":\"CLICK\"}}",
      "{\"Type\":\"CLICK\"}",
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    expect_result(bad[i], GAME_DECODE_BAD_JSON);
}

Test(game_proto, trailing_bytes_after_the_object_are_bad_json) {
  /* One message is one JSON value; anything after it is not JSON. */
  expect_result("{\"type\":\"QUIT_GAME\"}x", GAME_DECODE_BAD_JSON);
  expect_result("{\"type\":\"QUIT_GAME\"}{\"type\":\"JOIN_QUEUE\"}",
                GAME_DECODE_BAD_JSON);
  /* Trailing whitespace is allowed by JSON. */
  expect_result("{\"type\":\"QUIT_GAME\"} \n", GAME_DECODE_OK);
}

Test(game_proto, an_embedded_nul_does_not_hide_bytes_from_the_decoder) {
  static const uint8_t msg[] = "{\"type\":\"QUIT_GAME\"}\0garbage";
  game_in_t in;
  cr_assert_eq(game_proto_decode(msg, sizeof(msg) - 1, &in),
               GAME_DECODE_BAD_JSON);
  /* The length given is the message: bytes past it are never read. */
  cr_assert_eq(game_proto_decode(msg, 20, &in), GAME_DECODE_OK);
  cr_assert_eq(in.type, GAME_IN_QUIT);
}

/* cJSON's strings end at their first NUL: "CLICK\u0000x" would be read as
 * CLICK and a key "type\u0000" as "type". The server cannot read such a
 * message as written, so it is bad_json, wherever the NUL is (cJSON keeps
 * no string lengths to say which string held it). */
Test(game_proto, a_string_holding_u0000_is_bad_json) {
  static const char *const bad[] = {
      "{\"type\":\"CLICK\\u0000x\"}",
      "{\"type\":\"CLICK\\u0000\"}",
      "{\"type\":\"QUIT_GAME\\u0000\",\"payload\":{}}",
      "{\"type\\u0000\":\"CLICK\"}",
      "{\"type\\u0000x\":\"CLICK\"}",
      "{\"type\":\"CLICK\",\"payload\":{\"seq\\u0000\":5}}",
      "{\"type\":\"JOIN_QUEUE\",\"note\":\"\\u0000\"}",
      "{\"type\":\"CLICK\\\\\\u0000\"}", /* a backslash, then U+0000 */
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    expect_result(bad[i], GAME_DECODE_BAD_JSON);
  /* An escaped backslash before "u0000" is six characters, not a NUL. */
  expect_result("{\"type\":\"CLICK\\\\u0000\"}", GAME_DECODE_UNKNOWN_TYPE);
  /* Other escapes are read: \u0043 is 'C'. */
  decode_ok("{\"type\":\"\\u0043LICK\"}", GAME_IN_CLICK);
}

/* JSON allows no raw control byte but tab, LF and CR between tokens and
 * none inside a string; cJSON takes them as whitespace, and keeps a raw NUL
 * inside a string, where it cuts the string short. */
Test(game_proto, a_raw_control_byte_is_bad_json) {
  static const uint8_t in_string[] = "{\"type\":\"CLICK\0x\"}";
  game_in_t in;
  cr_assert_eq(game_proto_decode(in_string, sizeof(in_string) - 1, &in),
               GAME_DECODE_BAD_JSON);
  static const uint8_t between[] = "{\"type\":\0\"CLICK\"}";
  cr_assert_eq(game_proto_decode(between, sizeof(between) - 1, &in),
               GAME_DECODE_BAD_JSON);
  static const char *const bad[] = {
      "{\"type\":\x01\"CLICK\"}", "\x1f{\"type\":\"CLICK\"}",
      "{\"type\":\"CLICK\"}\x0b", "{\"type\":\"CLICK\"\x0c}",
      "{\"type\":\"CLI\x01\"}",
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    expect_result(bad[i], GAME_DECODE_BAD_JSON);
  /* JSON's own whitespace anywhere between tokens is fine. */
  decode_ok("\t{\r\n\"type\" :\t\"CLICK\" }\r\n", GAME_IN_CLICK);
}

Test(game_proto, unknown_types_are_unknown_type) {
  static const char *const unknown[] = {
      "{\"type\":\"\"}",
      "{\"type\":\"DANCE\"}",
      "{\"type\":\"click\"}",       /* case matters */
      "{\"type\":\"CLICK \"}",      /* so does space */
      "{\"type\":\"JOIN_QUEUEX\"}", /* no prefix match */
      "{\"type\":\"JOIN\"}",
      "{\"type\":\"GAME_START\"}", /* a server message */
      "{\"type\":\"UPDATE\",\"payload\":{\"p1Score\":99}}",
  };
  for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++)
    expect_result(unknown[i], GAME_DECODE_UNKNOWN_TYPE);
}

/* ---- Decoding: the 512-byte limit ---------------------------------------- */

/* A valid CLICK of exactly `len` bytes, padded with spaces inside the object
 * (JSON whitespace), so only the size decides. */
static size_t padded_click(char *buf, size_t cap, size_t len) {
  static const char head[] = "{\"type\":\"CLICK\",\"payload\":{\"seq\":3}";
  size_t h = sizeof(head) - 1;
  cr_assert(len > h + 1 && len <= cap);
  memcpy(buf, head, h);
  memset(buf + h, ' ', len - h - 1);
  buf[len - 1] = '}';
  return len;
}

Test(game_proto, messages_up_to_512_bytes_decode_and_longer_are_too_big) {
  char buf[GAME_MESSAGE_MAX + 64];
  game_in_t in;
  size_t sizes_ok[] = {GAME_MESSAGE_MAX - 1, GAME_MESSAGE_MAX};
  for (size_t i = 0; i < 2; i++) {
    size_t n = padded_click(buf, sizeof(buf), sizes_ok[i]);
    cr_assert_eq(game_proto_decode((const uint8_t *)buf, n, &in),
                 GAME_DECODE_OK, "%zu bytes", n);
    cr_assert(in.has_seq);
    cr_assert_eq(in.seq, 3);
  }
  size_t sizes_big[] = {GAME_MESSAGE_MAX + 1, GAME_MESSAGE_MAX + 63};
  for (size_t i = 0; i < 2; i++) {
    size_t n = padded_click(buf, sizeof(buf), sizes_big[i]);
    cr_assert_eq(game_proto_decode((const uint8_t *)buf, n, &in),
                 GAME_DECODE_TOO_BIG, "%zu bytes", n);
    cr_assert_not(in.has_seq);
  }
  /* Size is checked before content: 513 bytes of garbage are too big, not
   * bad JSON. */
  memset(buf, 'x', GAME_MESSAGE_MAX + 1);
  cr_assert_eq(
      game_proto_decode((const uint8_t *)buf, GAME_MESSAGE_MAX + 1, &in),
      GAME_DECODE_TOO_BIG);
  cr_assert_eq(GAME_MESSAGE_MAX, 512u, "PROTOCOL.md: max message 512 bytes");
}

/* ---- Encoding ------------------------------------------------------------ */

Test(game_proto, queued_has_an_empty_payload) {
  rt_buf_t *b = game_proto_queued();
  cJSON *p;
  cJSON *root = parse_frame(b, "QUEUED", &p);
  static const char *const keys[] = {NULL};
  expect_keys(p, keys);
  cJSON_Delete(root);
  rt_buf_unref(b);
}

/* PROTOCOL.md's fields plus this server's v1 addition "countdown". */
static const char *const game_start_keys[] = {
    "opponent", "role",   "roomId", "timeRemaining", "p1Score",
    "p2Score",  "p1Name", "p2Name", "countdown",     NULL};

Test(game_proto, game_start_has_the_protocol_fields_and_no_resumed) {
  game_scores_t s = {0, 0};
  rt_buf_t *b = game_proto_game_start("u-bob", "p1", "room-7", 60, s, "Ada",
                                      "Bob", false, 4.5);
  cJSON *p;
  cJSON *root = parse_frame(b, "GAME_START", &p);
  expect_keys(p, game_start_keys);
  cr_assert_null(cJSON_GetObjectItemCaseSensitive(p, "resumed"));
  expect_str(p, "opponent", "u-bob");
  expect_str(p, "role", "p1");
  expect_str(p, "roomId", "room-7");
  expect_num(p, "timeRemaining", 60);
  expect_num(p, "p1Score", 0);
  expect_num(p, "p2Score", 0);
  expect_str(p, "p1Name", "Ada");
  expect_str(p, "p2Name", "Bob");
  const cJSON *cd = cJSON_GetObjectItemCaseSensitive(p, "countdown");
  cr_assert(cJSON_IsNumber(cd) && cd->valuedouble == 4.5,
            "seconds of countdown left");
  cJSON_Delete(root);
  rt_buf_unref(b);
}

Test(game_proto, resumed_game_start_carries_current_values_and_resumed_true) {
  game_scores_t s = {123, 45};
  rt_buf_t *b = game_proto_game_start("u-ada", "p2", "room-9", 17, s, "Ada",
                                      "Bob", true, 0);
  cJSON *p;
  cJSON *root = parse_frame(b, "GAME_START", &p);
  static const char *const keys[] = {
      "opponent", "role",   "roomId",  "timeRemaining", "p1Score", "p2Score",
      "p1Name",   "p2Name", "resumed", "countdown",     NULL};
  expect_keys(p, keys);
  cr_assert(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(p, "resumed")));
  expect_str(p, "opponent", "u-ada");
  expect_str(p, "role", "p2");
  expect_str(p, "roomId", "room-9");
  expect_num(p, "timeRemaining", 17);
  expect_num(p, "p1Score", 123);
  expect_num(p, "p2Score", 45);
  cJSON_Delete(root);
  rt_buf_unref(b);
}

Test(game_proto, tick_update_has_time_scores_and_names) {
  game_scores_t s = {10, 20};
  rt_buf_t *b = game_proto_tick(42, s, "Ada", "Bob");
  cJSON *p;
  cJSON *root = parse_frame(b, "UPDATE", &p);
  static const char *const keys[] = {"timeRemaining", "p1Score", "p2Score",
                                     "p1Name",        "p2Name",  NULL};
  expect_keys(p, keys);
  expect_num(p, "timeRemaining", 42);
  expect_num(p, "p1Score", 10);
  expect_num(p, "p2Score", 20);
  expect_str(p, "p1Name", "Ada");
  expect_str(p, "p2Name", "Bob");
  cJSON_Delete(root);
  rt_buf_unref(b);
}

Test(game_proto, click_update_without_seq_has_only_scores) {
  game_scores_t s = {3, 4};
  rt_buf_t *b = game_proto_click_update(s, -1);
  cJSON *p;
  cJSON *root = parse_frame(b, "UPDATE", &p);
  static const char *const keys[] = {"p1Score", "p2Score", NULL};
  expect_keys(p, keys);
  expect_num(p, "p1Score", 3);
  expect_num(p, "p2Score", 4);
  cJSON_Delete(root);
  rt_buf_unref(b);
}

Test(game_proto, click_update_with_seq_echoes_it_exactly) {
  /* The large ones have 16 digits; a printer that keeps 15 significant
   * digits when they "nearly" round-trip gets them wrong by 1 or 2. */
  static const int64_t seqs[] = {0,
                                 1,
                                 65536,
                                 1000000000000001LL,
                                 4503599627370497LL, /* 2^52 + 1 */
                                 8999999999999999LL,
                                 9007199254740989LL,
                                 9007199254740991LL}; /* 2^53 - 1 */
  for (size_t i = 0; i < sizeof(seqs) / sizeof(seqs[0]); i++) {
    game_scores_t s = {5, 6};
    rt_buf_t *b = game_proto_click_update(s, seqs[i]);
    cJSON *p;
    cJSON *root = parse_frame(b, "UPDATE", &p);
    static const char *const keys[] = {"p1Score", "p2Score", "seq", NULL};
    expect_keys(p, keys);
    expect_num(p, "seq", (double)seqs[i]);
    expect_num(p, "p1Score", 5);
    /* The digits on the wire, sent back by a client, decode to the same
     * seq (taken from the frame's text, not re-printed by cJSON). */
    char text[GAME_FRAME_MAX + 1];
    memcpy(text, b->data, b->len);
    text[b->len] = '\0';
    const char *at = strstr(text, "\"seq\":");
    cr_assert_not_null(at, "%s", text);
    at += strlen("\"seq\":");
    char digits[32];
    size_t nd = strspn(at, "0123456789");
    cr_assert(nd > 0 && nd < sizeof(digits), "%s", text);
    memcpy(digits, at, nd);
    digits[nd] = '\0';
    game_in_t in = click_with_seq(digits);
    cr_assert(in.has_seq);
    cr_assert_eq(in.seq, seqs[i]);
    cJSON_Delete(root);
    rt_buf_unref(b);
  }
}

/* The forms a room sends clicks from give cJSON's bytes, for every kind of
 * integer: edges of int32 for scores, 0 to 2^53 - 1 for seq, none (-1). */
Test(game_proto, click_update_forms_print_what_cjson_prints) {
  game_proto_forms_t f;
  cr_assert_eq(game_proto_forms_init(&f), 0);
  static const int32_t scores[] = {0,     1,  9,   10,        99,       100,
                                   12345, -1, -10, INT32_MAX, INT32_MIN};
  static const int64_t seqs[] = {
      -1, 0, 1, 9, 10, 4503599627370497LL, 9007199254740991LL};
  size_t n = sizeof(scores) / sizeof(scores[0]);
  for (size_t a = 0; a < n; a++)
    for (size_t b = 0; b < n; b++)
      for (size_t q = 0; q < sizeof(seqs) / sizeof(seqs[0]); q++) {
        game_scores_t s = {scores[a], scores[b]};
        rt_buf_t *want = game_proto_click_update(s, seqs[q]);
        rt_buf_t *got = game_proto_click_update_form(&f, s, seqs[q]);
        cr_assert_not_null(want);
        cr_assert_not_null(got);
        cr_assert(want->len == got->len &&
                      memcmp(want->data, got->data, want->len) == 0,
                  "cJSON: %.*s\nform:  %.*s", (int)want->len,
                  (const char *)want->data, (int)got->len,
                  (const char *)got->data);
        rt_buf_unref(want);
        rt_buf_unref(got);
      }
}

Test(game_proto, golden_claim_update_names_the_claimer) {
  game_scores_t s = {30, 31};
  rt_buf_t *b = game_proto_golden_claim("u-ada", s);
  cJSON *p;
  cJSON *root = parse_frame(b, "UPDATE", &p);
  static const char *const keys[] = {"goldenCookieClaimedBy", "p1Score",
                                     "p2Score", NULL};
  expect_keys(p, keys);
  expect_str(p, "goldenCookieClaimedBy", "u-ada");
  expect_num(p, "p1Score", 30);
  expect_num(p, "p2Score", 31);
  cJSON_Delete(root);
  rt_buf_unref(b);
}

Test(game_proto, opponent_click_carries_the_points) {
  static const int32_t points[] = {1, 2};
  for (size_t i = 0; i < 2; i++) {
    rt_buf_t *b = game_proto_opponent_click(points[i]);
    cJSON *p;
    cJSON *root = parse_frame(b, "OPPONENT_CLICK", &p);
    static const char *const keys[] = {"count", NULL};
    expect_keys(p, keys);
    expect_num(p, "count", points[i]);
    cJSON_Delete(root);
    rt_buf_unref(b);
  }
}

Test(game_proto, cookie_spawn_carries_float_coordinates) {
  rt_buf_t *b = game_proto_cookie_spawn(5.0, 94.75);
  cJSON *p;
  cJSON *root = parse_frame(b, "COOKIE_SPAWN", &p);
  static const char *const keys[] = {"x", "y", NULL};
  expect_keys(p, keys);
  expect_num(p, "x", 5.0);
  expect_num(p, "y", 94.75);
  cJSON_Delete(root);
  rt_buf_unref(b);
}

Test(game_proto, game_over_has_winner_reason_and_scores) {
  static const struct {
    const char *winner, *reason;
  } cases[] = {
      {"u-ada", "time"},
      {"draw", "time"},
      {"u-bob", "quit"},
      {"u-ada", "opponent_disconnected"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    game_scores_t s = {(int32_t)i, 77};
    rt_buf_t *b =
        game_proto_game_over(cases[i].winner, cases[i].reason, s, NULL);
    cJSON *p;
    cJSON *root = parse_frame(b, "GAME_OVER", &p);
    static const char *const keys[] = {"winner", "reason", "p1Score", "p2Score",
                                       NULL};
    expect_keys(p, keys);
    expect_str(p, "winner", cases[i].winner);
    expect_str(p, "reason", cases[i].reason);
    expect_num(p, "p1Score", (double)i);
    expect_num(p, "p2Score", 77);
    cJSON_Delete(root);
    rt_buf_unref(b);
  }
}

Test(game_proto, error_has_code_and_message) {
  static const char *const codes[] = {"bad_json", "unknown_type", "not_in_game",
                                      "rate_limited"};
  for (size_t i = 0; i < 4; i++) {
    rt_buf_t *b = game_proto_error(codes[i], "something \"went\" wrong\n");
    cJSON *p;
    cJSON *root = parse_frame(b, "ERROR", &p);
    static const char *const keys[] = {"code", "message", NULL};
    expect_keys(p, keys);
    expect_str(p, "code", codes[i]);
    expect_str(p, "message", "something \"went\" wrong\n");
    cJSON_Delete(root);
    rt_buf_unref(b);
  }
}

/* ---- Hostile names ------------------------------------------------------- */

/* Each is a name a client may pick (at most 24 characters). */
static const char *const hostile_names[] = {
    "\"quoted\"",
    "back\\slash\\",
    "<script>alert(1)</script>",
    "\xc3\xa9\xc3\xa9\xc3\xa9 Z\xc3\xbcrich",   /* éé é Zürich */
    "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",     /* 日本語 */
    "\xf0\x9f\x8d\xaa cookie \xf0\x9f\x8d\xaa", /* 🍪 cookie 🍪 */
    "\"},\"p1Score\":999,\"x\":{\"",            /* JSON injection */
    "a/b</c>&amp;'",
};

Test(game_proto, hostile_names_survive_encode_and_parse_unchanged) {
  size_t n = sizeof(hostile_names) / sizeof(hostile_names[0]);
  for (size_t i = 0; i < n; i++) {
    const char *a = hostile_names[i], *b = hostile_names[(i + 1) % n];
    game_scores_t s = {1, 2};
    rt_buf_t *frames[3] = {
        game_proto_game_start(b, "p1", "room-1", 60, s, a, b, false, 5),
        game_proto_tick(60, s, a, b),
        game_proto_game_start(a, "p2", "room-1", 9, s, b, a, true, 0),
    };
    for (size_t f = 0; f < 3; f++) {
      cJSON *p;
      cJSON *root =
          parse_frame(frames[f], f == 1 ? "UPDATE" : "GAME_START", &p);
      expect_str(p, "p1Name", f == 2 ? b : a);
      expect_str(p, "p2Name", f == 2 ? a : b);
      /* The injection attempt did not add fields. */
      expect_num(p, "p1Score", 1);
      cr_assert_null(cJSON_GetObjectItemCaseSensitive(p, "x"));
      if (f != 1)
        expect_str(p, "opponent", f == 2 ? a : b);
      cJSON_Delete(root);
      rt_buf_unref(frames[f]);
    }
  }
}

Test(game_proto, longest_names_fit_in_a_frame) {
  /* 24 four-byte characters that each need no escaping, and 24 quotes that
   * each need two bytes: the largest GAME_START must still encode. */
  char emoji[24 * 4 + 1], quotes[24 + 1];
  for (int i = 0; i < 24; i++) {
    memcpy(emoji + i * 4, "\xf0\x9f\x8d\xaa", 4);
    quotes[i] = '"';
  }
  emoji[96] = '\0';
  quotes[24] = '\0';
  char room[32];
  memset(room, 'r', 31);
  room[31] = '\0';
  game_scores_t s = {2147483647, -2147483647 - 1};
  rt_buf_t *b =
      game_proto_game_start(emoji, "p2", room, 60, s, quotes, emoji, true, 0);
  cJSON *p;
  cJSON *root = parse_frame(b, "GAME_START", &p);
  expect_str(p, "p1Name", quotes);
  expect_str(p, "p2Name", emoji);
  expect_str(p, "opponent", emoji);
  expect_num(p, "p1Score", 2147483647.0);
  expect_num(p, "p2Score", -2147483648.0);
  cJSON_Delete(root);
  rt_buf_unref(b);
}

/* ---- rt_json's reading against cJSON's -------------------------------- */

typedef struct decode_tally {
  uint32_t texts, fast, ok;
} decode_tally_t;

/* Decodes text both ways; the answers must match. */
static void decode_both_ways(const uint8_t *text, size_t len,
                             decode_tally_t *t) {
  game_in_t slow, quick;
  bool slow_fast = true, fast = false;
  game_decode_result_t want =
      game_proto__decode(text, len, false, &slow, &slow_fast);
  game_decode_result_t got = game_proto__decode(text, len, true, &quick, &fast);
  cr_assert(!slow_fast);
  if (want != got || slow.type != quick.type || slow.has_seq != quick.has_seq ||
      slow.seq != quick.seq)
    cr_assert_fail("the readers differ (%d/%d/%d/%lld vs %d/%d/%d/%lld, "
                   "rt_json took it: %d) on %zu bytes: %.*s",
                   (int)want, (int)slow.type, slow.has_seq, (long long)slow.seq,
                   (int)got, (int)quick.type, quick.has_seq,
                   (long long)quick.seq, fast, len, (int)len,
                   (const char *)text);
  t->texts++;
  t->fast += fast;
  t->ok += want == GAME_DECODE_OK;
}

static const char *const client_texts[] = {
    "{\"type\":\"CLICK\",\"payload\":{\"count\":1,\"seq\":17}}",
    "{\"type\":\"CLICK\",\"payload\":{\"count\":1}}",
    "{\"type\":\"CLICK\",\"payload\":{\"seq\":9007199254740991}}",
    "{\"type\":\"CLICK\",\"payload\":{\"seq\":9007199254740992}}",
    "{\"type\":\"CLICK\",\"payload\":{\"seq\":1.5,\"seq\":2}}",
    "{\"type\":\"CLICK\",\"payload\":{\"seq\":-1}}",
    "{\"type\":\"CLICK\",\"payload\":{\"seq\":1e3}}",
    "{\"type\":\"CLICK\",\"payload\":{\"seq\":\"5\"}}",
    "{\"type\":\"CLICK\",\"payload\":[{\"seq\":5}]}",
    "{\"payload\":{\"seq\":5},\"type\":\"CLICK\",\"type\":\"QUIT_GAME\"}",
    " {\"type\":\"JOIN_QUEUE\"} \r\n",
    "{\"type\":\"LEAVE_QUEUE\",\"payload\":{}}",
    "{\"type\":\"COOKIE_CLICK\",\"payload\":{\"x\":[1,{\"a\":null}],\"t\":true}}",
    "{\"type\":\"QUIT_GAME\",\"payload\":null}",
    "{\"type\":\"CLIC\\u004b\",\"payload\":{\"seq\":3}}",
    "{\"type\":\"DANCE\"}",
    "{\"type\":7}",
};

/* Every text above, then a million mangled ones: the result, the type and
 * the seq must be the same by either reader. */
Test(game_proto, rt_json_decodes_what_cjson_decodes, .timeout = 120) {
  decode_tally_t t = {0};
  size_t n = sizeof(client_texts) / sizeof(client_texts[0]);
  for (size_t i = 0; i < n; i++)
    decode_both_ways((const uint8_t *)client_texts[i], strlen(client_texts[i]),
                     &t);
  cr_assert_geq(t.fast, 13, "rt_json took %u of the plain texts", t.fast);
  static const char bytes[] = "{}[]:,\"\\ \t\r0123456789-+.eEtrufalsn\x01\x7fx";
  rt_rng_t rng;
  rt_rng_init(&rng, 18, 0);
  uint8_t text[GAME_MESSAGE_MAX + 16];
  decode_tally_t m = {0};
  for (uint32_t k = 0; k < 1000000; k++) {
    const char *from = client_texts[rt_rng_below(&rng, n)];
    size_t len = strlen(from);
    memcpy(text, from, len);
    unsigned edits = 1 + (unsigned)rt_rng_below(&rng, 3);
    for (unsigned e = 0; e < edits && len > 0; e++) {
      size_t at = (size_t)rt_rng_below(&rng, len);
      uint8_t b = (uint8_t)bytes[rt_rng_below(&rng, sizeof(bytes) - 1)];
      switch (rt_rng_below(&rng, 4)) {
      case 0: text[at] = b; break;
      case 1:
        if (len < sizeof(text)) {
          memmove(text + at + 1, text + at, len - at);
          text[at] = b;
          len++;
        }
        break;
      case 2:
        memmove(text + at, text + at + 1, len - at - 1);
        len--;
        break;
      default: len = at; break;
      }
    }
    decode_both_ways(text, len, &m);
  }
  /* Both readers had their share, and so did messages that decode. */
  cr_assert_gt(m.fast, m.texts / 10, "rt_json took %u", m.fast);
  cr_assert_gt(m.texts - m.fast, m.texts / 10);
  cr_assert_gt(m.ok, m.texts / 20, "%u decoded", m.ok);
}
