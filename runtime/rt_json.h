/* rt_json.h: a small JSON object read in place, exactly as cJSON reads it,
 * or not at all.
 *
 * cJSON builds a tree for every text (a malloc per member and per string)
 * and reads every number with strtod; for the short messages a game sends
 * all the time, that was the larger part of reading them. jsmn (Debian's
 * libjsmn-dev, header-only) marks tokens in place instead, but it is laxer
 * than JSON (a comma before a closing bracket, a comma before the value, a
 * primitive such as "tru" or "1.2.3") and leaves escapes in strings. So
 * rt_json_read takes a text only where its reading is exactly cJSON's, and
 * answers false for every other one, which its caller then gives to cJSON:
 *  - no backslash and no NUL anywhere (nothing to unescape, nothing cut
 *    short by a C string);
 *  - one object of at most RT_JSON_TOKENS tokens, with nothing but JSON
 *    whitespace before it, and JSON's separators between all its tokens;
 *  - every primitive in it true, false, null or a JSON number, read with
 *    strtod as cJSON reads it (a whole number of up to 15 digits other
 *    than -0 is read directly: the same double);
 *  - after it, per `rest`: JSON whitespace only (game_proto_json_parse's
 *    rule), or anything, unread (cJSON_ParseWithLength's).
 * A member's value is the first member of that name, as
 * cJSON_GetObjectItemCaseSensitive finds it. Depth is bounded by the
 * tokens. Tests: tests/runtime/test_rt_json.c (the rules one by one),
 * tests/sim/test_sim_bot_read.c and tests/game/test_game_proto.c (each
 * reader against its cJSON reading, on mangled messages).
 */
#ifndef RT_JSON_H
#define RT_JSON_H

/* A token knows its container: jsmn then closes a container or passes a
 * comma without scanning back over the tokens before it. rt_json.c
 * defines it too, before its own include, so the types agree. */
#define JSMN_PARENT_LINKS
#define JSMN_HEADER /* the types; rt_json.c holds jsmn's functions */
#include <jsmn.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define RT_JSON_TOKENS 64

typedef enum rt_json_rest {
  RT_JSON_REST_SPACE, /* only JSON whitespace may follow the object */
  RT_JSON_REST_ANY,   /* whatever follows is not read */
} rt_json_rest_t;

typedef enum rt_json_kind {
  RT_JSON_NONE = 0, /* no such member */
  RT_JSON_NUMBER,
  RT_JSON_STRING,
  RT_JSON_TRUE,
  RT_JSON_FALSE,
  RT_JSON_NULL,
  RT_JSON_OBJECT,
  RT_JSON_ARRAY,
} rt_json_kind_t;

typedef struct rt_json_value {
  rt_json_kind_t kind;
  double num;      /* NUMBER */
  const char *str; /* STRING: len bytes, none of them NUL or a backslash */
  size_t len;
  int at; /* its token (an OBJECT's, for rt_json_first and rt_json_get) */
} rt_json_value_t;

typedef struct rt_json {
  const char *js;
  int n; /* tokens of the object */
  jsmntok_t t[RT_JSON_TOKENS];
  /* A primitive token's value, read once when the text is checked. */
  uint8_t kind[RT_JSON_TOKENS]; /* rt_json_kind_t */
  double num[RT_JSON_TOKENS];
} rt_json_t;

/* Reads js[0, len). false: not a text read here (give it to cJSON). */
bool rt_json_read(rt_json_t *j, const char *js, size_t len,
                  rt_json_rest_t rest);

/* The object read. */
rt_json_value_t rt_json_root(const rt_json_t *j);

/* obj's members in order, each named by its key's token: the first (-1:
 * none, or obj is no object), the one after m (-1: m was the last). */
int rt_json_first(const rt_json_t *j, const rt_json_value_t *obj);
int rt_json_next(const rt_json_t *j, const rt_json_value_t *obj, int m);

/* Member m's name (*len bytes) and value. */
const char *rt_json_name(const rt_json_t *j, int m, size_t *len);
rt_json_value_t rt_json_value(const rt_json_t *j, int m);

/* The value of obj's first member named `name`; kind NONE if none. */
rt_json_value_t rt_json_get(const rt_json_t *j, const rt_json_value_t *obj,
                            const char *name);

/* Whether s[0, n) is the text lit (inline: strlen of a literal folds). */
static inline bool rt_json_is(const char *s, size_t n, const char *lit) {
  return strlen(lit) == n && memcmp(s, lit, n) == 0;
}

#endif
