/* rt_json: what it takes, what it leaves to cJSON, and what it reads. The
 * readers built on it are held to cJSON's answers on a million mangled
 * messages each (tests/sim/test_sim_bot_read.c, tests/game/test_game_proto.c);
 * these are its rules one at a time. */
#include "rt_json.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool takes(const char *text, rt_json_rest_t rest) {
  rt_json_t j;
  return rt_json_read(&j, text, strlen(text), rest);
}

Test(rt_json, takes_json_objects_without_escapes) {
  static const char *const ok[] = {
      "{}",
      " \t\r\n{ } \n",
      "{\"a\":1}",
      "{\"a\" : -0.5e+3 , \"b\":[true,false,null,{},[]],\"c\":\"x y\"}",
      "{\"a\":{\"b\":{\"c\":[1,[2,[3]]]}}}",
      "{\"\xc3\xa9\":\"\xe2\x98\x83\"}",
  };
  for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
    cr_expect(takes(ok[i], RT_JSON_REST_SPACE), "%s", ok[i]);
}

Test(rt_json, leaves_every_other_text_to_cjson) {
  static const char *const no[] = {
      "",
      "[]",
      "\"a\"",
      "1",
      "{",
      "{\"a\":1",
      ",{\"a\":1}",
      ":{\"a\":1}",
      "{,\"a\":1}",
      "{\"a\":1,}",
      "{\"a\":1,,\"b\":2}",
      "{\"a\" 1}",
      "{\"a\"::1}",
      "{\"a\":1 \"b\":2}",
      "{\"a\":\"b\":\"c\"}",
      "{1:2}",
      "{\"a\":[1,]}",
      "{\"a\":[,1]}",
      "{\"a\":[1 2]}",
      "{\"a\":tru}",
      "{\"a\":nul}",
      "{\"a\":01}",
      "{\"a\":+1}",
      "{\"a\":1.}",
      "{\"a\":.5}",
      "{\"a\":1e}",
      "{\"a\":1.2.3}",
      "{\"a\":0x10}",
      "{\"a\":\"\\n\"}",
      "{\"a\\u0041\":1}",
      "\f{\"a\":1}",
      "{\"a\":1}x",
  };
  for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
    cr_expect(!takes(no[i], RT_JSON_REST_SPACE), "%s", no[i]);
  /* A NUL is read by length, never as the end. */
  rt_json_t j;
  cr_expect(!rt_json_read(&j, "{\"a\":\"\0\"}", 9, RT_JSON_REST_ANY));
}

Test(rt_json, what_follows_is_read_only_when_asked) {
  static const char *const rest[] = {"{\"a\":1}x", "{\"a\":1}{}", "{\"a\":1} ,",
                                     "{\"a\":1}]"};
  for (size_t i = 0; i < sizeof(rest) / sizeof(rest[0]); i++) {
    cr_expect(!takes(rest[i], RT_JSON_REST_SPACE), "%s", rest[i]);
    /* jsmn may still refuse what follows; never take it as part. */
    rt_json_t j;
    if (rt_json_read(&j, rest[i], strlen(rest[i]), RT_JSON_REST_ANY)) {
      rt_json_value_t root = rt_json_root(&j);
      rt_json_value_t a = rt_json_get(&j, &root, "a");
      cr_expect_eq(a.kind, RT_JSON_NUMBER);
      cr_expect_eq(rt_json_next(&j, &root, rt_json_first(&j, &root)), -1);
    }
  }
  cr_expect(takes("{\"a\":1} ,", RT_JSON_REST_ANY));
  cr_expect(takes("{\"a\":1} 5 ", RT_JSON_REST_ANY));
}

Test(rt_json, at_most_its_tokens) {
  char text[1024];
  size_t len = 0;
  len += (size_t)snprintf(text + len, sizeof(text) - len, "{\"a\":[");
  /* the object, "a", its array, then n elements: 3 + n tokens */
  for (int i = 0; i < RT_JSON_TOKENS - 3; i++)
    len += (size_t)snprintf(text + len, sizeof(text) - len, "%s%d",
                            i ? "," : "", i);
  snprintf(text + len, sizeof(text) - len, "]}");
  cr_expect(takes(text, RT_JSON_REST_SPACE), "%s", text);
  snprintf(text + len, sizeof(text) - len, ",9]}");
  cr_expect(!takes(text, RT_JSON_REST_SPACE));
}

Test(rt_json, reads_members_and_values_as_cjson_finds_them) {
  const char *text = "{\"n\":-12,\"x\":0.25,\"big\":12345678901234567,"
                     "\"s\":\"hi\",\"t\":true,\"f\":false,\"z\":null,"
                     "\"o\":{\"n\":1},\"l\":[1],\"n\":99,\"neg0\":-0}";
  rt_json_t j;
  cr_assert(rt_json_read(&j, text, strlen(text), RT_JSON_REST_SPACE));
  rt_json_value_t root = rt_json_root(&j);
  rt_json_value_t v = rt_json_get(&j, &root, "n");
  cr_expect(v.kind == RT_JSON_NUMBER && v.num == -12.0); /* the first "n" */
  v = rt_json_get(&j, &root, "x");
  cr_expect(v.kind == RT_JSON_NUMBER && v.num == 0.25);
  v = rt_json_get(&j, &root, "big");
  cr_expect(v.kind == RT_JSON_NUMBER && v.num == 12345678901234567.0);
  v = rt_json_get(&j, &root, "s");
  cr_expect(v.kind == RT_JSON_STRING && v.len == 2 &&
            memcmp(v.str, "hi", 2) == 0);
  cr_expect_eq(rt_json_get(&j, &root, "t").kind, RT_JSON_TRUE);
  cr_expect_eq(rt_json_get(&j, &root, "f").kind, RT_JSON_FALSE);
  cr_expect_eq(rt_json_get(&j, &root, "z").kind, RT_JSON_NULL);
  cr_expect_eq(rt_json_get(&j, &root, "l").kind, RT_JSON_ARRAY);
  cr_expect_eq(rt_json_get(&j, &root, "missing").kind, RT_JSON_NONE);
  v = rt_json_get(&j, &root, "neg0");
  cr_expect(v.kind == RT_JSON_NUMBER && v.num == 0.0 && signbit(v.num));
  rt_json_value_t o = rt_json_get(&j, &root, "o");
  cr_assert_eq(o.kind, RT_JSON_OBJECT);
  v = rt_json_get(&j, &o, "n");
  cr_expect(v.kind == RT_JSON_NUMBER && v.num == 1.0);
  /* Members in order, nested ones skipped. */
  static const char *const names[] = {"n", "x", "big", "s", "t",   "f",
                                      "z", "o", "l",   "n", "neg0"};
  size_t k = 0;
  for (int m = rt_json_first(&j, &root); m >= 0;
       m = rt_json_next(&j, &root, m)) {
    size_t len;
    const char *name = rt_json_name(&j, m, &len);
    cr_assert_lt(k, sizeof(names) / sizeof(names[0]));
    cr_expect(rt_json_is(name, len, names[k]), "member %zu", k);
    k++;
  }
  cr_expect_eq(k, sizeof(names) / sizeof(names[0]));
  /* Not an object: no members. */
  rt_json_value_t s = rt_json_get(&j, &root, "s");
  cr_expect_eq(rt_json_first(&j, &s), -1);
  cr_expect_eq(rt_json_get(&j, &s, "x").kind, RT_JSON_NONE);
}

/* A number's text: cJSON reads at most 63 characters of one, so 63 are
 * taken and 64 are left to cJSON; a whole number of up to 15 digits is
 * read directly, a longer one with strtod, and both give strtod's double. */
static bool read_number(const char *digits, double *out) {
  char text[128];
  snprintf(text, sizeof(text), "{\"n\":%s}", digits);
  rt_json_t j;
  if (!rt_json_read(&j, text, strlen(text), RT_JSON_REST_SPACE))
    return false;
  rt_json_value_t root = rt_json_root(&j);
  rt_json_value_t v = rt_json_get(&j, &root, "n");
  cr_assert_eq(v.kind, RT_JSON_NUMBER, "%s", digits);
  *out = v.num;
  return true;
}

Test(rt_json, numbers_at_their_limits) {
  char digits[80];
  double v;
  for (size_t len = 62; len <= 64; len++) {
    memset(digits, '7', len);
    digits[len] = '\0';
    cr_expect_eq(read_number(digits, &v), len <= 63, "%zu digits", len);
    if (len <= 63)
      cr_expect_eq(v, strtod(digits, NULL), "%zu digits", len);
  }
  static const char *const whole[] = {"99999999999999",
                                      "999999999999999",
                                      "9999999999999999",
                                      "-999999999999999",
                                      "-9999999999999999",
                                      "9007199254740993",
                                      "900719925474099",
                                      "1",
                                      "-1"};
  for (size_t i = 0; i < sizeof(whole) / sizeof(whole[0]); i++) {
    cr_assert(read_number(whole[i], &v), "%s", whole[i]);
    cr_expect_eq(v, strtod(whole[i], NULL), "%s", whole[i]);
  }
}
