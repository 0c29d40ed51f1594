/* The bots' two readers of a server message (sim_bot.c): rt_json's, which
 * takes what jsmn tokenizes and it can read exactly as cJSON would, and
 * cJSON's, which takes the rest. Every text here is read by both, and the
 * kinds and records must be the same byte for byte: the server's own
 * messages (rt_json must take those without escapes: the fast path is the
 * path), texts that are JSON only to jsmn, and a million mangled messages. */
#include "game_proto.h"
#include "rt_rng.h"
#include "sim_int.h"

#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

typedef struct tally {
  uint64_t texts, fast, unknown;
} tally_t;

/* Reads text both ways; the answers must match. Returns whether rt_json's
 * reader took it. */
static bool same_both_ways(const uint8_t *text, size_t len, tally_t *t) {
  sim_bot_record_t slow_r, fast_r;
  memset(&slow_r, 0, sizeof(slow_r));
  memset(&fast_r, 0, sizeof(fast_r));
  bool slow_fast = true, fast = false;
  sim_bot_kind_t slow_kind =
      sim__bot_read(text, len, false, &slow_r, &slow_fast);
  sim_bot_kind_t fast_kind = sim__bot_read(text, len, true, &fast_r, &fast);
  cr_assert(!slow_fast, "cJSON's reader reported as rt_json's");
  if (slow_kind != fast_kind || memcmp(&slow_r, &fast_r, sizeof(slow_r)) != 0)
    cr_assert_fail("the readers differ (kind %s vs %s, rt_json took it: %d) on "
                   "%zu bytes: %.*s",
                   sim_bot_kind_name(slow_kind), sim_bot_kind_name(fast_kind),
                   fast, len, (int)len, (const char *)text);
  t->texts++;
  t->fast += fast;
  t->unknown += slow_kind == SIM_BOT_UNKNOWN;
  return fast;
}

static bool same_text(const char *text, tally_t *t) {
  return same_both_ways((const uint8_t *)text, strlen(text), t);
}

#define CORPUS_MAX 64

typedef struct corpus {
  rt_buf_t *msgs[CORPUS_MAX];
  bool escaped[CORPUS_MAX]; /* holds a backslash: cJSON's to read */
  size_t len;
} corpus_t;

static void add(corpus_t *c, rt_buf_t *b) {
  cr_assert_not_null(b);
  cr_assert_lt(c->len, CORPUS_MAX);
  c->escaped[c->len] = memchr(b->data, '\\', b->len) != NULL;
  c->msgs[c->len++] = b;
}

/* Every message the server sends a player, with values at their edges. */
static void server_messages(corpus_t *c) {
  game_scores_t zero = {0, 0}, s = {1234, 2147483647}, neg = {-1, -2147483647};
  add(c, game_proto_queued());
  add(c, game_proto_game_start("u-opp", "p1", "r-1", 60, zero, "Ann", "Bob",
                               false, 5.0));
  add(c, game_proto_game_start("u-opp", "p2", "r-22", 31, s, "Ann \"A\"",
                               "B\\b", true, 0.0));
  add(c, game_proto_game_start("u-\xc3\xa9", "p1", "r-3", 0, neg,
                               "\xe2\x98\x83", "Z", true, 2.5));
  add(c, game_proto_tick(59, s, "Ann", "Bob"));
  add(c, game_proto_tick(0, neg, "\x01x", "tab\t"));
  add(c, game_proto_click_update(s, -1));
  add(c, game_proto_click_update(zero, 0));
  add(c, game_proto_click_update(s, 9007199254740991));
  add(c, game_proto_click_update(neg, 123456789012345));
  add(c, game_proto_golden_claim("u-claimer", s));
  add(c, game_proto_opponent_click(1));
  add(c, game_proto_opponent_click(2));
  add(c, game_proto_cookie_spawn(0.0, 1.0));
  add(c, game_proto_cookie_spawn(0.123456789012345, 0.999999999999999));
  add(c, game_proto_cookie_spawn(1e-7, 12345.5));
  add(c, game_proto_game_over("u-win", "time", s, NULL));
  add(c, game_proto_game_over("draw", "server_lost", zero, "r-9"));
  add(c, game_proto_error("rate_limited", "slow down"));
  add(c, game_proto_error("bad_json", "a \"quoted\" word"));
  add(c, game_proto_move("http://127.0.0.1:8081/", "r-5"));
}

static void corpus_free(corpus_t *c) {
  for (size_t i = 0; i < c->len; i++)
    rt_buf_unref(c->msgs[i]);
}

Test(sim_bot_read, the_servers_messages_read_the_same_and_fast,
     .timeout = 120) {
  corpus_t c = {0};
  server_messages(&c);
  tally_t t = {0};
  for (size_t i = 0; i < c.len; i++) {
    bool fast = same_both_ways(c.msgs[i]->data, c.msgs[i]->len, &t);
    cr_expect_eq(fast, !c.escaped[i], "message %zu (%.*s): rt_json took it: %d",
                 i, (int)c.msgs[i]->len, (const char *)c.msgs[i]->data, fast);
  }
  cr_assert_eq(t.unknown, 0);
  corpus_free(&c);
}

/* What jsmn tokenizes but JSON (and so cJSON) refuses, what cJSON reads
 * differently from a plain reading, and what cJSON_ParseWithLength skips. */
Test(sim_bot_read, texts_jsmn_would_misread_go_to_cjson, .timeout = 120) {
  static const char *const texts[] = {
      "{\"type\":\"UPDATE\",\"payload\":{\"p1Score\":1,}}",
      "{\"type\":\"UPDATE\",,\"payload\":{\"p1Score\":1}}",
      "{,\"type\":\"UPDATE\"}",
      "{\"type\":\"UPDATE\",\"payload\":{\"p1Score\":[1,,2]}}",
      "{\"type\":\"UPDATE\",\"payload\":{\"p1Score\":[1,]}}",
      "{\"type\":\"UPDATE\",\"payload\":{\"p1Score\" 1}}",
      "{\"type\":\"UPDATE\",\"payload\":{\"p1Score\"::1}}",
      "{\"type\":\"UPDATE\",\"payload\":{\"p1Score\":1 \"p2Score\":2}}",
      "{\"type\":\"UPDATE\",\"payload\":{\"p1Score\":\"a\":\"b\"}}",
      "{\"type\":\"UPDATE\",\"payload\":{\"p1Score\":01}}",
      "{\"type\":\"UPDATE\",\"payload\":{\"p1Score\":-0}}",
      "{\"type\":\"COOKIE_SPAWN\",\"payload\":{\"x\":-0,\"y\":-0.0}}",
      "{\"type\":\"COOKIE_SPAWN\",\"payload\":{\"x\":1.,\"y\":.5}}",
      "{\"type\":\"COOKIE_SPAWN\",\"payload\":{\"x\":1e5,\"y\":2E-3}}",
      "{\"type\":\"COOKIE_SPAWN\",\"payload\":{\"x\":1e,\"y\":2}}",
      "{\"type\":\"UPDATE\",\"payload\":{\"p1Score\":tru}}",
      "{\"type\":\"UPDATE\",\"payload\":{\"p1Score\":nul,\"x\":[fals]}}",
      "{\"type\":\"UPDATE\",\"payload\":{\"p1Score\":+1}}",
      "{\"type\":\"UPDATE\",\"payload\":{\"p1Score\":1.2.3}}",
      "{\"type\":\"UPDATE\",\"payload\":{\"p1Score\":12345678901234567890}}",
      "{\"type\":\"UPDATE\",\"payload\":{\"seq\":1234567890123456}}",
      "{\"type\":\"UPDATE\",\"payload\":{\"p1Score\":1e999}}",
      "{\"type\":\"UPDATE\",\"payload\":{\"p1Score\":1}} trailing",
      "{\"type\":\"UPDATE\",\"payload\":{\"p1Score\":1}}{\"type\":\"ERROR\"}",
      " \t\r\n{\"type\":\"UPDATE\"}",
      "\f{\"type\":\"UPDATE\"}",
      "{\"type\":\"UPDATE\",\"type\":\"ERROR\",\"payload\":{\"p1Score\":1,"
      "\"p1Score\":2},\"payload\":{\"p2Score\":3}}",
      "{\"type\":1,\"payload\":{\"p1Score\":1}}",
      "{\"type\":\"UPDATE\",\"payload\":[1,2]}",
      "{\"type\":\"UPDATE\",\"payload\":{\"resumed\":true,\"role\":false}}",
      "{\"type\":\"GAME_START\",\"payload\":{\"resumed\":\"true\",\"role\":"
      "\"p1-and-a-longer-text\"}}",
      "{\"type\":\"UPD\\u0041TE\",\"payload\":{\"p1Sc\\u006fre\":7}}",
      "{\"type\":\"UPDATE\",\"payload\":{\"p1Score\":{\"a\":[{},[]]}}}",
      "{\"type\":\"UPDATE\",\"payload\":{}}",
      "{}",
      "[]",
      "\"UPDATE\"",
      "",
      "{",
      "{\"type\":\"UPDATE\"",
      "{\"type\":\"UPDATE\",\"payload\":{\"p1Score\":1}",
  };
  tally_t t = {0};
  for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
    same_text(texts[i], &t);
  /* Both readers answered some of these (a NUL, read only by length). */
  static const uint8_t nul[] =
      "{\"type\":\"UPDATE\",\"payload\":{\"url\":\"a\0b\"}}";
  same_both_ways(nul, sizeof(nul) - 1, &t);
  cr_assert_gt(t.fast, 5, "rt_json's reader took %" PRIu64 " texts", t.fast);
  cr_assert_gt(t.unknown, 5);
}

/* One mangling of msg into out (at most cap bytes); returns its length. */
static size_t mangle(rt_rng_t *rng, const rt_buf_t *msg, uint8_t *out,
                     size_t cap) {
  static const char bytes[] = "{}[]:,\"\\ \t0123456789-+.eEtrufalsn\x01\x80x";
  size_t len = msg->len < cap ? msg->len : cap;
  memcpy(out, msg->data, len);
  unsigned edits = 1 + (unsigned)rt_rng_below(rng, 3);
  for (unsigned e = 0; e < edits && len > 0; e++) {
    size_t at = (size_t)rt_rng_below(rng, len);
    uint8_t b = (uint8_t)bytes[rt_rng_below(rng, sizeof(bytes) - 1)];
    switch (rt_rng_below(rng, 5)) {
    case 0: out[at] = b; break;
    case 1: /* insert */
      if (len < cap) {
        memmove(out + at + 1, out + at, len - at);
        out[at] = b;
        len++;
      }
      break;
    case 2: /* delete */
      memmove(out + at, out + at + 1, len - at - 1);
      len--;
      break;
    case 3: len = at; break; /* cut */
    default: {               /* copy a piece elsewhere */
      size_t from = (size_t)rt_rng_below(rng, len);
      size_t n = 1 + (size_t)rt_rng_below(rng, 8);
      if (from + n > len)
        n = len - from;
      if (len + n <= cap) {
        memmove(out + at + n, out + at, len - at);
        memmove(out + at, from >= at ? out + from + n : out + from, n);
        len += n;
      }
    }
    }
  }
  return len;
}

Test(sim_bot_read, a_million_mangled_messages_read_the_same, .timeout = 120) {
  corpus_t c = {0};
  server_messages(&c);
  rt_rng_t rng;
  rt_rng_init(&rng, 17, 0);
  tally_t t = {0};
  uint8_t text[GAME_FRAME_MAX + 64];
  for (uint32_t i = 0; i < 1000000; i++) {
    const rt_buf_t *msg = c.msgs[rt_rng_below(&rng, c.len)];
    size_t len = mangle(&rng, msg, text, sizeof(text));
    same_both_ways(text, len, &t);
  }
  /* Both readers had their share, and so did the texts JSON refuses. */
  cr_assert_gt(t.fast, t.texts / 10, "rt_json's reader took %" PRIu64, t.fast);
  cr_assert_gt(t.texts - t.fast, t.texts / 10);
  cr_assert_gt(t.unknown, t.texts / 10);
  corpus_free(&c);
}
