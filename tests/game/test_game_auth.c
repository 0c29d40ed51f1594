/* test_game_auth.c: guest tokens and names (game/game_auth.h).
 *
 * Tokens are checked against an independent JWT built here: the test has
 * its own base64url encoder and signs with OpenSSL's HMAC-SHA256 directly,
 * so a token the module accepts is a standard HS256 JWT and a token the
 * module refuses is refused for the reason under test (its signature is
 * otherwise valid). Every hostile token must be refused without a crash;
 * run under the sanitizer build to see reads past the end.
 *
 * Names: 1..24 printable characters of valid UTF-8, at, below and above the
 * limit in one-, two-, three- and four-byte characters.
 *
 * Every loop runs over a fixed table or over the bytes of one token
 * (< GAME_TOKEN_MAX).
 */
#include "game_auth.h"

#include "rt_err.h"

#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>

#define SECRET "test-secret-for-overcookied"
#define LIFETIME_S (24 * 3600)
#define NOW_S 1767225600LL /* 2026-01-01T00:00:00Z */

#define HEADER_HS256 "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"

/* ---- An independent JWT builder ------------------------------------------ */

static const char b64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* base64url without padding, RFC 4648 section 5 and RFC 7515. */
static size_t b64url(const uint8_t *in, size_t len, char *out, size_t cap) {
  size_t o = 0;
  for (size_t i = 0; i < len; i += 3) {
    uint32_t v = (uint32_t)in[i] << 16;
    size_t n = len - i >= 3 ? 3 : len - i;
    if (n > 1)
      v |= (uint32_t)in[i + 1] << 8;
    if (n > 2)
      v |= in[i + 2];
    cr_assert_lt(o + 4, cap, "test buffer too small");
    out[o++] = b64url_alphabet[(v >> 18) & 63];
    out[o++] = b64url_alphabet[(v >> 12) & 63];
    if (n > 1)
      out[o++] = b64url_alphabet[(v >> 6) & 63];
    if (n > 2)
      out[o++] = b64url_alphabet[v & 63];
  }
  out[o] = '\0';
  return o;
}

static size_t b64url_str(const char *s, char *out, size_t cap) {
  return b64url((const uint8_t *)s, strlen(s), out, cap);
}

/* h.c.signature from segments already in base64url (any spelling), the
 * signature HMAC-SHA256 with `secret` over "h.c". Returns the length. */
static size_t jwt_sign_segments(const char *h, const char *c,
                                const char *secret, char *out, size_t cap) {
  int n = snprintf(out, cap, "%s.%s", h, c);
  cr_assert(n > 0 && (size_t)n < cap);
  uint8_t mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  cr_assert_not_null(HMAC(EVP_sha256(), secret, (int)strlen(secret),
                          (const unsigned char *)out, (size_t)n, mac,
                          &mac_len));
  cr_assert_eq(mac_len, 32u);
  char s[64];
  b64url(mac, mac_len, s, sizeof(s));
  int m = snprintf(out + n, cap - (size_t)n, ".%s", s);
  cr_assert(m > 0 && (size_t)m < cap - (size_t)n);
  return (size_t)n + (size_t)m;
}

/* header.claims.signature from JSON texts, as any JWT library writes it. */
static size_t jwt_build(const char *header_json, const char *claims_json,
                        const char *secret, char *out, size_t cap) {
  char h[2048], c[2048];
  b64url_str(header_json, h, sizeof(h));
  b64url_str(claims_json, c, sizeof(c));
  return jwt_sign_segments(h, c, secret, out, cap);
}

static void claims_for(char *out, size_t cap, const char *sub, const char *name,
                       long long exp) {
  int n = snprintf(out, cap, "{\"sub\":\"%s\",\"name\":\"%s\",\"exp\":%lld}",
                   sub, name, exp);
  cr_assert(n > 0 && (size_t)n < cap);
}

static game_auth_t auth_make(const char *secret) {
  game_auth_t a;
  cr_assert_eq(game_auth_init(&a, secret, LIFETIME_S), RT_OK);
  return a;
}

static int verify(const game_auth_t *a, const char *token, int64_t now_s) {
  rt_identity_t who;
  memset(&who, 0x5a, sizeof(who));
  return game_auth_verify(a, token, now_s, &who);
}

/* A valid token from the module itself. */
static size_t signed_token(const game_auth_t *a, char *out, size_t cap) {
  cr_assert_eq(game_auth_sign(a, "u-1234", "Ada", NOW_S, out, cap), RT_OK);
  return strlen(out);
}

/* ---- Init ---------------------------------------------------------------- */

Test(game_auth, init_takes_1_to_256_byte_secrets_and_a_positive_lifetime) {
  game_auth_t a;
  char secret[GAME_SECRET_MAX + 2];
  memset(secret, 's', sizeof(secret));
  secret[GAME_SECRET_MAX] = '\0';
  cr_assert_eq(game_auth_init(&a, secret, 1), RT_OK, "256 bytes");
  secret[GAME_SECRET_MAX + 1] = '\0';
  secret[GAME_SECRET_MAX] = 's';
  cr_assert_eq(game_auth_init(&a, secret, 1), RT_EINVAL, "257 bytes");
  cr_assert_eq(game_auth_init(&a, "k", 1), RT_OK, "1 byte");
  cr_assert_eq(game_auth_init(&a, "", 1), RT_EINVAL);
  cr_assert_eq(game_auth_init(&a, NULL, 1), RT_EINVAL);
  cr_assert_eq(game_auth_init(&a, "k", 0), RT_EINVAL);
  cr_assert_eq(game_auth_init(&a, "k", -5), RT_EINVAL);
}

/* ---- Round trips --------------------------------------------------------- */

Test(game_auth, sign_then_verify_gives_the_subject_and_name) {
  game_auth_t a = auth_make(SECRET);
  static const char *const names[] = {"Ada", "<script>",
                                      "\xc3\xa9l\xc3\xa8ve \"q\" \\b",
                                      "\xf0\x9f\x8d\xaa\xf0\x9f\x8d\xaa"};
  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
    char token[GAME_TOKEN_MAX];
    cr_assert_eq(
        game_auth_sign(&a, "u-42", names[i], NOW_S, token, sizeof(token)),
        RT_OK);
    rt_identity_t who;
    cr_assert_eq(game_auth_verify(&a, token, NOW_S, &who), RT_OK, "%s", token);
    cr_assert_str_eq(who.subject, "u-42");
    cr_assert_str_eq(who.name, names[i]);
  }
}

Test(game_auth, signed_tokens_are_standard_hs256_jwts) {
  game_auth_t a = auth_make(SECRET);
  char token[GAME_TOKEN_MAX], want[GAME_TOKEN_MAX], claims[256];
  cr_assert_eq(game_auth_sign(&a, "u-1", "Ada", NOW_S, token, sizeof(token)),
               RT_OK);
  /* cJSON writes the claims in insertion order without spaces, so the
   * whole token is predictable: header, claims, signature. */
  claims_for(claims, sizeof(claims), "u-1", "Ada", NOW_S + LIFETIME_S);
  jwt_build(HEADER_HS256, claims, SECRET, want, sizeof(want));
  cr_assert_str_eq(token, want);
}

Test(game_auth, a_token_built_elsewhere_with_the_secret_is_accepted) {
  game_auth_t a = auth_make(SECRET);
  char token[GAME_TOKEN_MAX], claims[256];
  /* Another order of claims, and extra ones: still a valid token. */
  snprintf(claims, sizeof(claims),
           "{\"iat\":1,\"exp\":%lld,\"name\":\"Bob\",\"sub\":\"u-9\","
           "\"iss\":\"x\"}",
           NOW_S + 10);
  jwt_build("{\"typ\":\"JWT\",\"alg\":\"HS256\"}", claims, SECRET, token,
            sizeof(token));
  rt_identity_t who;
  cr_assert_eq(game_auth_verify(&a, token, NOW_S, &who), RT_OK);
  cr_assert_str_eq(who.subject, "u-9");
  cr_assert_str_eq(who.name, "Bob");
}

Test(game_auth, sign_refuses_a_buffer_too_small) {
  game_auth_t a = auth_make(SECRET);
  char token[GAME_TOKEN_MAX];
  size_t len = signed_token(&a, token, sizeof(token));
  char small[GAME_TOKEN_MAX];
  cr_assert_eq(game_auth_sign(&a, "u-1234", "Ada", NOW_S, small, len),
               RT_ELIMIT, "no room for the NUL");
  cr_assert_eq(game_auth_sign(&a, "u-1234", "Ada", NOW_S, small, len + 1),
               RT_OK);
  cr_assert_str_eq(small, token);
  cr_assert_eq(game_auth_sign(&a, "u-1234", "Ada", NOW_S, small, 10),
               RT_ELIMIT);
}

/* ---- Expiry -------------------------------------------------------------- */

Test(game_auth, a_token_expires_at_exp_and_is_valid_one_second_before) {
  game_auth_t a = auth_make(SECRET);
  char token[GAME_TOKEN_MAX];
  signed_token(&a, token, sizeof(token));
  int64_t exp = NOW_S + LIFETIME_S;
  cr_assert_eq(verify(&a, token, NOW_S), RT_OK);
  cr_assert_eq(verify(&a, token, exp - 1), RT_OK);
  cr_assert_eq(verify(&a, token, exp), RT_ETIMEDOUT);
  cr_assert_eq(verify(&a, token, exp + 1), RT_ETIMEDOUT);
  cr_assert_eq(verify(&a, token, exp + 365LL * 86400), RT_ETIMEDOUT);
}

Test(game_auth, a_token_with_a_past_exp_is_expired) {
  game_auth_t a = auth_make(SECRET);
  char token[GAME_TOKEN_MAX], claims[256];
  claims_for(claims, sizeof(claims), "u-1", "Ada", 0);
  jwt_build(HEADER_HS256, claims, SECRET, token, sizeof(token));
  cr_assert_eq(verify(&a, token, NOW_S), RT_ETIMEDOUT);
  claims_for(claims, sizeof(claims), "u-1", "Ada", -1);
  jwt_build(HEADER_HS256, claims, SECRET, token, sizeof(token));
  cr_assert_eq(verify(&a, token, NOW_S), RT_ETIMEDOUT);
}

/* ---- Algorithms ---------------------------------------------------------- */

Test(game_auth, alg_none_is_refused_with_any_signature) {
  game_auth_t a = auth_make(SECRET);
  char h[128], c[256], claims[256], token[GAME_TOKEN_MAX];
  b64url_str("{\"alg\":\"none\",\"typ\":\"JWT\"}", h, sizeof(h));
  claims_for(claims, sizeof(claims), "u-1", "Ada", NOW_S + 100);
  b64url_str(claims, c, sizeof(c));
  /* The classic: empty signature. */
  snprintf(token, sizeof(token), "%s.%s.", h, c);
  cr_assert_eq(verify(&a, token, NOW_S), RT_EPROTO, "%s", token);
  /* Any signature. */
  snprintf(token, sizeof(token), "%s.%s.AAAA", h, c);
  cr_assert_eq(verify(&a, token, NOW_S), RT_EPROTO);
  /* Even the right HMAC-SHA256 over header.claims. */
  jwt_build("{\"alg\":\"none\",\"typ\":\"JWT\"}", claims, SECRET, token,
            sizeof(token));
  cr_assert_eq(verify(&a, token, NOW_S), RT_EPROTO);
  /* Without the trailing dot: two parts. */
  snprintf(token, sizeof(token), "%s.%s", h, c);
  cr_assert_neq(verify(&a, token, NOW_S), RT_OK);
  /* And the other spellings of none. */
  static const char *const nones[] = {
      "{\"alg\":\"None\"}", "{\"alg\":\"NONE\"}", "{\"alg\":\"nOnE\"}",
      "{\"alg\":null}", "{\"alg\":\"\"}"};
  for (size_t i = 0; i < sizeof(nones) / sizeof(nones[0]); i++) {
    b64url_str(nones[i], h, sizeof(h));
    snprintf(token, sizeof(token), "%s.%s.", h, c);
    cr_assert_eq(verify(&a, token, NOW_S), RT_EPROTO, "%s", nones[i]);
  }
}

Test(game_auth, every_algorithm_but_hs256_is_refused_even_correctly_signed) {
  game_auth_t a = auth_make(SECRET);
  char claims[256], token[GAME_TOKEN_MAX];
  claims_for(claims, sizeof(claims), "u-1", "Ada", NOW_S + 100);
  static const char *const headers[] = {
      "{\"alg\":\"HS512\",\"typ\":\"JWT\"}",
      "{\"alg\":\"HS384\",\"typ\":\"JWT\"}",
      "{\"alg\":\"hs256\",\"typ\":\"JWT\"}",
      "{\"alg\":\"Hs256\",\"typ\":\"JWT\"}",
      "{\"alg\":\"HS256 \",\"typ\":\"JWT\"}",
      "{\"alg\":\"RS256\",\"typ\":\"JWT\"}",
      "{\"alg\":\"ES256\",\"typ\":\"JWT\"}",
      "{\"alg\":256,\"typ\":\"JWT\"}",
      "{\"alg\":[\"HS256\"],\"typ\":\"JWT\"}",
      "{\"ALG\":\"HS256\",\"typ\":\"JWT\"}",
      "{\"typ\":\"JWT\"}",
      "[\"HS256\"]",
      "\"HS256\"",
      "HS256",
      "{}",
      "null",
  };
  for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
    jwt_build(headers[i], claims, SECRET, token, sizeof(token));
    cr_assert_eq(verify(&a, token, NOW_S), RT_EPROTO, "header %s", headers[i]);
  }
  /* Control: the same claims under HS256 pass. */
  jwt_build(HEADER_HS256, claims, SECRET, token, sizeof(token));
  cr_assert_eq(verify(&a, token, NOW_S), RT_OK);
}

/* ---- Tampering ----------------------------------------------------------- */

static int b64_value(char c) {
  const char *p = strchr(b64url_alphabet, c);
  cr_assert(c != '\0' && p != NULL, "'%c' is base64url", c);
  return (int)(p - b64url_alphabet);
}

Test(game_auth, a_flipped_signature_byte_is_refused_at_every_position) {
  game_auth_t a = auth_make(SECRET);
  char token[GAME_TOKEN_MAX];
  size_t len = signed_token(&a, token, sizeof(token));
  const char *sig = strrchr(token, '.') + 1;
  size_t sig_at = (size_t)(sig - token), sig_len = len - sig_at;
  cr_assert_eq(sig_len, 43u, "32 bytes are 43 base64url characters");
  for (size_t i = sig_at; i < len; i++) {
    char saved = token[i];
    /* Flip the highest bit of the 6-bit value: a data bit in every
     * character, the last one included (its low 2 bits are padding). */
    token[i] = b64url_alphabet[b64_value(saved) ^ 0x20];
    cr_assert_eq(verify(&a, token, NOW_S), RT_EPROTO, "position %zu", i);
    token[i] = saved;
  }
  cr_assert_eq(verify(&a, token, NOW_S), RT_OK, "restored");
}

Test(game_auth, a_flipped_claims_or_header_byte_is_refused) {
  game_auth_t a = auth_make(SECRET);
  char token[GAME_TOKEN_MAX];
  signed_token(&a, token, sizeof(token));
  size_t sig_at = (size_t)(strrchr(token, '.') + 1 - token);
  for (size_t i = 0; i + 1 < sig_at; i++) {
    if (token[i] == '.')
      continue;
    char saved = token[i];
    token[i] = b64url_alphabet[b64_value(saved) ^ 0x01];
    cr_assert_neq(verify(&a, token, NOW_S), RT_OK, "position %zu", i);
    token[i] = saved;
  }
  cr_assert_eq(verify(&a, token, NOW_S), RT_OK, "restored");
}

Test(game_auth, new_claims_under_an_old_signature_are_refused) {
  game_auth_t a = auth_make(SECRET);
  char token[GAME_TOKEN_MAX], forged[GAME_TOKEN_MAX], h[128], c[256],
      claims[256];
  signed_token(&a, token, sizeof(token));
  const char *sig = strrchr(token, '.') + 1;
  b64url_str(HEADER_HS256, h, sizeof(h));
  claims_for(claims, sizeof(claims), "u-admin", "Ada", NOW_S + LIFETIME_S);
  b64url_str(claims, c, sizeof(c));
  snprintf(forged, sizeof(forged), "%s.%s.%s", h, c, sig);
  cr_assert_eq(verify(&a, forged, NOW_S), RT_EPROTO);
}

Test(game_auth, a_token_signed_with_another_secret_is_refused) {
  game_auth_t a = auth_make(SECRET), b = auth_make(SECRET "x");
  char token[GAME_TOKEN_MAX];
  signed_token(&b, token, sizeof(token));
  cr_assert_eq(verify(&a, token, NOW_S), RT_EPROTO);
  cr_assert_eq(verify(&b, token, NOW_S), RT_OK);
  game_auth_t c = auth_make("k");
  cr_assert_eq(verify(&c, token, NOW_S), RT_EPROTO);
}

/* Every copy of a valid token with one character replaced by another
 * base64url character is refused: 63 x 114 verifications. The last
 * character of a segment whose length is not a multiple of 4 carries unused
 * low bits (2 in the 43-character signature); a decoder that ignores them
 * would take three other spellings of the same signature. */
Test(game_auth, every_one_character_change_of_a_token_is_refused) {
  game_auth_t a = auth_make(SECRET);
  char token[GAME_TOKEN_MAX];
  size_t len = signed_token(&a, token, sizeof(token));
  for (size_t i = 0; i < len; i++) {
    if (token[i] == '.')
      continue;
    char saved = token[i];
    for (size_t v = 0; v < 64; v++) {
      if (b64url_alphabet[v] == saved)
        continue;
      token[i] = b64url_alphabet[v];
      cr_assert_neq(verify(&a, token, NOW_S), RT_OK, "'%c' at %zu: %s",
                    b64url_alphabet[v], i, token);
    }
    token[i] = saved;
  }
  cr_assert_eq(verify(&a, token, NOW_S), RT_OK, "the original");
}

/* `seg` with the unused low bits of its last symbol set to `bits`. */
static void set_unused_bits(char *seg, unsigned bits) {
  size_t len = strlen(seg);
  unsigned unused = len % 4 == 2 ? 4 : len % 4 == 3 ? 2 : 0;
  cr_assert_gt(unused, 0u, "a segment of %zu has no unused bits", len);
  cr_assert_lt(bits, 1u << unused);
  int v = b64_value(seg[len - 1]);
  cr_assert_eq(v & ((1 << unused) - 1), 0, "canonical to start with");
  seg[len - 1] = b64url_alphabet[v | (int)bits];
}

/* Non-canonical header and claims, signed with the secret over the text as
 * sent: the signature holds, and still the token is refused, because the
 * server reads only the one spelling RFC 7515 allows (RFC 4648 3.5: the pad
 * bits are zero). Lengths cover both cases: 2 and 4 unused bits. */
Test(game_auth, signed_segments_with_nonzero_unused_bits_are_refused) {
  game_auth_t a = auth_make(SECRET);
  /* 28 and 29 bytes: 38 and 39 characters, 4 and 2 unused bits. */
  static const char *const headers[] = {
      "{\"alg\":\"HS256\",\"typ\":\"JWT\" }",
      "{\"alg\":\"HS256\",\"typ\":\"JWT\"  }",
  };
  /* Claims of 50, 51 and 52 bytes: 2, 0 and 4 unused bits. */
  char claims[3][128];
  for (int k = 0; k < 3; k++)
    snprintf(claims[k], sizeof(claims[k]),
             "{\"sub\":\"u-1\",\"name\":\"Ada\",\"exp\":%lld,\"p\":\"%.*s\"}",
             NOW_S + 100, k, "xx");
  char h[128], c[256], token[GAME_TOKEN_MAX];
  int checked_h = 0, checked_c = 0;
  for (size_t hi = 0; hi < 2; hi++) {
    for (int k = 0; k < 3; k++) {
      size_t hl = b64url_str(headers[hi], h, sizeof(h));
      size_t cl = b64url_str(claims[k], c, sizeof(c));
      jwt_sign_segments(h, c, SECRET, token, sizeof(token));
      cr_assert_eq(verify(&a, token, NOW_S), RT_OK, "canonical: %s", token);
      unsigned h_bits = hl % 4 == 2 ? 16 : 4;
      for (unsigned b = 1; b < h_bits; b++) {
        b64url_str(headers[hi], h, sizeof(h));
        set_unused_bits(h, b);
        jwt_sign_segments(h, c, SECRET, token, sizeof(token));
        cr_assert_eq(verify(&a, token, NOW_S), RT_EPROTO, "header: %s", token);
        checked_h++;
      }
      b64url_str(headers[hi], h, sizeof(h));
      if (cl % 4 == 0)
        continue;
      unsigned c_bits = cl % 4 == 2 ? 16 : 4;
      for (unsigned b = 1; b < c_bits; b++) {
        b64url_str(claims[k], c, sizeof(c));
        set_unused_bits(c, b);
        jwt_sign_segments(h, c, SECRET, token, sizeof(token));
        cr_assert_eq(verify(&a, token, NOW_S), RT_EINVAL, "claims: %s", token);
        checked_c++;
      }
    }
  }
  cr_assert_eq(checked_h, 3 * (15 + 3), "both header cases ran");
  cr_assert_eq(checked_c, 2 * (15 + 3), "both claims cases ran");
}

/* The signature's three other spellings, one per value of its 2 unused
 * bits (the reported "..._MI" -> "_MJ"). */
Test(game_auth, a_signature_with_nonzero_unused_bits_is_refused) {
  game_auth_t a = auth_make(SECRET);
  char token[GAME_TOKEN_MAX];
  size_t len = signed_token(&a, token, sizeof(token));
  char *sig = strrchr(token, '.') + 1;
  cr_assert_eq(strlen(sig), 43u);
  char saved = token[len - 1];
  for (unsigned b = 1; b < 4; b++) {
    set_unused_bits(sig, b);
    cr_assert_eq(verify(&a, token, NOW_S), RT_EPROTO, "%s", token);
    token[len - 1] = saved;
  }
  cr_assert_eq(verify(&a, token, NOW_S), RT_OK, "the original");
}

/* ---- Malformed ----------------------------------------------------------- */

Test(game_auth, every_truncation_of_a_token_is_refused) {
  game_auth_t a = auth_make(SECRET);
  char token[GAME_TOKEN_MAX], cut[GAME_TOKEN_MAX];
  size_t len = signed_token(&a, token, sizeof(token));
  for (size_t n = 0; n < len; n++) {
    memcpy(cut, token, n);
    cut[n] = '\0';
    cr_assert_neq(verify(&a, cut, NOW_S), RT_OK, "first %zu bytes", n);
    /* And the token without its first n bytes. */
    cr_assert_neq(verify(&a, token + len - n, NOW_S), RT_OK, "last %zu", n);
  }
}

Test(game_auth, wrong_numbers_of_parts_are_refused) {
  game_auth_t a = auth_make(SECRET);
  char token[GAME_TOKEN_MAX], bad[GAME_TOKEN_MAX + 16];
  signed_token(&a, token, sizeof(token));
  const char *dot1 = strchr(token, '.'), *dot2 = strrchr(token, '.');
  int h = (int)(dot1 - token), c = (int)(dot2 - dot1 - 1);
  const char *sig = dot2 + 1;
  static const char *const fmts[] = {
      "%s.",     /* 4 parts: an empty fourth */
      "%s.AAAA", /* 4 parts */
      ".%s",     /* an empty first part */
      "%s..",    /* 5 parts */
  };
  for (size_t i = 0; i < sizeof(fmts) / sizeof(fmts[0]); i++) {
    snprintf(bad, sizeof(bad), fmts[i], token);
    cr_assert_eq(verify(&a, bad, NOW_S), RT_EINVAL, "%s", bad);
  }
  snprintf(bad, sizeof(bad), "%.*s..%.*s.%s", h, token, c, dot1 + 1, sig);
  cr_assert_eq(verify(&a, bad, NOW_S), RT_EINVAL, "extra dot: %s", bad);
  snprintf(bad, sizeof(bad), "%.*s.%.*s%s", h, token, c, dot1 + 1, sig);
  cr_assert_eq(verify(&a, bad, NOW_S), RT_EINVAL, "one dot");
  static const char *const tiny[] = {
      "", ".", "..", "...", "a", "a.b", "a.b.c", "a.b.c.d", "Bearer x.y.z"};
  for (size_t i = 0; i < sizeof(tiny) / sizeof(tiny[0]); i++)
    cr_assert_neq(verify(&a, tiny[i], NOW_S), RT_OK, "'%s'", tiny[i]);
  cr_assert_eq(verify(&a, "", NOW_S), RT_EINVAL);
  cr_assert_eq(verify(&a, NULL, NOW_S), RT_EINVAL);
}

/* A correctly signed token of exactly `len` bytes, padded through a claim. */
static void token_of_length(size_t len, char *out, size_t cap) {
  /* header 36 + '.' + claims + '.' + signature 43. */
  char h[128];
  size_t hl = b64url_str(HEADER_HS256, h, sizeof(h));
  size_t claims_b64 = len - hl - 2 - 43;
  cr_assert_neq(claims_b64 % 4, 1u, "a base64url length exists");
  size_t claims_bytes =
      claims_b64 / 4 * 3 + (claims_b64 % 4 ? claims_b64 % 4 - 1 : 0);
  char claims[2048];
  int base = snprintf(
      claims, sizeof(claims),
      "{\"sub\":\"u-1\",\"name\":\"Ada\",\"exp\":%lld,\"pad\":\"", NOW_S + 100);
  cr_assert(base > 0 && (size_t)base + 2 < claims_bytes &&
            claims_bytes < sizeof(claims));
  memset(claims + base, 'p', claims_bytes - (size_t)base - 2);
  memcpy(claims + claims_bytes - 2, "\"}", 3);
  size_t n = jwt_build(HEADER_HS256, claims, SECRET, out, cap);
  cr_assert_eq(n, len);
}

Test(game_auth, tokens_up_to_1024_bytes_are_read_and_longer_are_refused) {
  game_auth_t a = auth_make(SECRET);
  char token[GAME_TOKEN_MAX + 64];
  rt_identity_t who;
  token_of_length(GAME_TOKEN_MAX - 1, token, sizeof(token));
  cr_assert_eq(game_auth_verify(&a, token, NOW_S, &who), RT_OK);
  token_of_length(GAME_TOKEN_MAX, token, sizeof(token));
  cr_assert_eq(game_auth_verify(&a, token, NOW_S, &who), RT_OK);
  cr_assert_str_eq(who.subject, "u-1");
  /* 1025 bytes, correctly signed: refused for its length alone. */
  token_of_length(GAME_TOKEN_MAX + 1, token, sizeof(token));
  cr_assert_eq(verify(&a, token, NOW_S), RT_EINVAL, "1025 bytes, signed");
  /* The valid 1024-byte token with one byte more. */
  token_of_length(GAME_TOKEN_MAX, token, sizeof(token));
  token[GAME_TOKEN_MAX] = 'A';
  token[GAME_TOKEN_MAX + 1] = '\0';
  cr_assert_eq(verify(&a, token, NOW_S), RT_EINVAL, "1024 + 1 bytes");
  /* A long run of non-token bytes is refused by length, not read past. */
  char big[4096];
  memset(big, 'A', sizeof(big) - 1);
  big[sizeof(big) - 1] = '\0';
  cr_assert_eq(verify(&a, big, NOW_S), RT_EINVAL);
}

Test(game_auth, characters_outside_base64url_are_refused) {
  game_auth_t a = auth_make(SECRET);
  char token[GAME_TOKEN_MAX];
  size_t len = signed_token(&a, token, sizeof(token));
  size_t dot1 = (size_t)(strchr(token, '.') - token);
  size_t dot2 = (size_t)(strrchr(token, '.') - token);
  static const char bad[] = {'+', '/',    '=',    ' ',    '\n', '*',
                             '%', '\x80', '\xff', '\x01', '~',  '!'};
  size_t positions[] = {0, dot1 - 1, dot1 + 1, dot2 - 1, dot2 + 1, len - 1};
  for (size_t p = 0; p < sizeof(positions) / sizeof(positions[0]); p++) {
    for (size_t b = 0; b < sizeof(bad); b++) {
      char saved = token[positions[p]];
      token[positions[p]] = bad[b];
      cr_assert_neq(verify(&a, token, NOW_S), RT_OK, "0x%02x at %zu",
                    (unsigned)(uint8_t)bad[b], positions[p]);
      token[positions[p]] = saved;
    }
  }
  /* Standard base64 padding on the signature is not base64url. */
  char padded[GAME_TOKEN_MAX + 2];
  snprintf(padded, sizeof(padded), "%s=", token);
  cr_assert_neq(verify(&a, padded, NOW_S), RT_OK);
  cr_assert_eq(verify(&a, token, NOW_S), RT_OK, "restored");
}

Test(game_auth, claims_must_carry_sub_name_and_a_numeric_exp) {
  game_auth_t a = auth_make(SECRET);
  char token[GAME_TOKEN_MAX], claims[512];
  long long exp = NOW_S + 100;
  char sub63[64], sub64[65], name96[97], name97[98];
  memset(sub63, 's', 63);
  sub63[63] = '\0';
  memset(sub64, 's', 64);
  sub64[64] = '\0';
  memset(name96, 'n', 96);
  name96[96] = '\0';
  memset(name97, 'n', 97);
  name97[97] = '\0';
  struct {
    const char *claims;
    int want;
  } cases[] = {
      {"{\"name\":\"Ada\",\"exp\":%lld}", RT_EINVAL},
      {"{\"sub\":\"\",\"name\":\"Ada\",\"exp\":%lld}", RT_EINVAL},
      {"{\"sub\":7,\"name\":\"Ada\",\"exp\":%lld}", RT_EINVAL},
      {"{\"sub\":\"u-1\",\"exp\":%lld}", RT_EINVAL},
      {"{\"sub\":\"u-1\",\"name\":null,\"exp\":%lld}", RT_EINVAL},
      {"{\"sub\":\"u-1\",\"name\":\"Ada\"}", RT_EINVAL},
      {"{\"sub\":\"u-1\",\"name\":\"Ada\",\"exp\":\"%lld\"}", RT_EINVAL},
      {"[\"u-1\",\"Ada\",%lld]", RT_EINVAL},
      {"{\"sub\":\"u-1\",\"name\":\"Ada\",\"exp\":%lld", RT_EINVAL},
      {"{\"sub\":\"u-1\",\"name\":\"\",\"exp\":%lld}", RT_OK},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    snprintf(claims, sizeof(claims), cases[i].claims, exp);
    jwt_build(HEADER_HS256, claims, SECRET, token, sizeof(token));
    cr_assert_eq(verify(&a, token, NOW_S), cases[i].want, "%s", claims);
  }
  /* The identity's fixed fields: 63 subject bytes and 96 name bytes (24
   * characters of 4 bytes, the longest name login takes) fit. */
  rt_identity_t who;
  claims_for(claims, sizeof(claims), sub63, name96, exp);
  jwt_build(HEADER_HS256, claims, SECRET, token, sizeof(token));
  cr_assert_eq(game_auth_verify(&a, token, NOW_S, &who), RT_OK);
  cr_assert_str_eq(who.subject, sub63);
  cr_assert_str_eq(who.name, name96);
  claims_for(claims, sizeof(claims), sub64, "Ada", exp);
  jwt_build(HEADER_HS256, claims, SECRET, token, sizeof(token));
  cr_assert_eq(verify(&a, token, NOW_S), RT_EINVAL, "64-byte subject");
  claims_for(claims, sizeof(claims), "u-1", name97, exp);
  jwt_build(HEADER_HS256, claims, SECRET, token, sizeof(token));
  cr_assert_eq(verify(&a, token, NOW_S), RT_EINVAL, "97-byte name");
}

/* Header and claims are each one JSON value, correctly signed here: text
 * after the value, raw control bytes and U+0000 in a string are refused.
 * cJSON stops after the first value and ends its strings at a NUL, so
 * "u-1\u0000admin" would otherwise be the subject "u-1". Only a holder of
 * the secret can sign such a token; the server still reads one meaning. */
Test(game_auth, header_and_claims_are_one_json_value_without_u0000) {
  game_auth_t a = auth_make(SECRET);
  char token[GAME_TOKEN_MAX], claims[256];
  long long exp = NOW_S + 100;
  static const char *const bad_claims[] = {
      "{\"sub\":\"u-1\",\"name\":\"Ada\",\"exp\":%lld} x",
      "{\"sub\":\"u-1\",\"name\":\"Ada\",\"exp\":%lld}{}",
      "{\"sub\":\"u-1\",\"name\":\"Ada\",\"exp\":%lld}\x01",
      "{\"sub\":\"u-1\",\"name\":\x01\"Ada\",\"exp\":%lld}",
      "{\"sub\":\"u-1\\u0000admin\",\"name\":\"Ada\",\"exp\":%lld}",
      "{\"sub\":\"u-1\",\"name\":\"Ada\\u0000\\u202eevil\",\"exp\":%lld}",
      "{\"sub\\u0000\":\"u-1\",\"name\":\"Ada\",\"exp\":%lld}",
      "{\"sub\":\"u-1\",\"name\":\"Ada\",\"exp\":%lld,\"x\":\"\\u0000\"}",
  };
  for (size_t i = 0; i < sizeof(bad_claims) / sizeof(bad_claims[0]); i++) {
    snprintf(claims, sizeof(claims), bad_claims[i], exp);
    jwt_build(HEADER_HS256, claims, SECRET, token, sizeof(token));
    cr_assert_eq(verify(&a, token, NOW_S), RT_EINVAL, "%s", claims);
  }
  /* A raw NUL inside the subject. */
  char h[128], c[256];
  b64url_str(HEADER_HS256, h, sizeof(h));
  int n =
      snprintf(claims, sizeof(claims),
               "{\"sub\":\"u-1_admin\",\"name\":\"Ada\",\"exp\":%lld}", exp);
  cr_assert(n > 0 && (size_t)n < sizeof(claims));
  claims[11] = '\0'; /* the '_' */
  b64url((const uint8_t *)claims, (size_t)n, c, sizeof(c));
  jwt_sign_segments(h, c, SECRET, token, sizeof(token));
  cr_assert_eq(verify(&a, token, NOW_S), RT_EINVAL, "raw NUL");
  static const char *const bad_headers[] = {
      "{\"alg\":\"HS256\",\"typ\":\"JWT\"} x",
      "{\"alg\":\"HS256\",\"typ\":\"JWT\"}{\"alg\":\"none\"}",
      "{\"alg\":\"HS256\\u0000x\",\"typ\":\"JWT\"}",
      "{\"alg\\u0000\":\"HS256\",\"typ\":\"JWT\"}",
      "{\"alg\":\x01\"HS256\",\"typ\":\"JWT\"}",
  };
  claims_for(claims, sizeof(claims), "u-1", "Ada", exp);
  for (size_t i = 0; i < sizeof(bad_headers) / sizeof(bad_headers[0]); i++) {
    jwt_build(bad_headers[i], claims, SECRET, token, sizeof(token));
    cr_assert_eq(verify(&a, token, NOW_S), RT_EPROTO, "%s", bad_headers[i]);
  }
  /* Control: JSON whitespace around both values is fine. */
  snprintf(claims, sizeof(claims),
           " {\"sub\":\"u-1\", \"name\":\"Ada\",\"exp\":%lld}\r\n", exp);
  jwt_build("\t{\"alg\":\"HS256\"}\n", claims, SECRET, token, sizeof(token));
  rt_identity_t who;
  cr_assert_eq(game_auth_verify(&a, token, NOW_S, &who), RT_OK);
  cr_assert_str_eq(who.subject, "u-1");
  cr_assert_str_eq(who.name, "Ada");
}

/* ---- Names --------------------------------------------------------------- */

static bool name_ok(const char *s) { return game_name_valid(s, strlen(s)); }

/* `count` copies of the UTF-8 character `ch`. */
static bool repeated_ok(const char *ch, size_t count) {
  char buf[256];
  size_t w = strlen(ch);
  cr_assert_lt(w * count, sizeof(buf));
  for (size_t i = 0; i < count; i++)
    memcpy(buf + i * w, ch, w);
  buf[w * count] = '\0';
  return game_name_valid(buf, w * count);
}

Test(game_auth, names_of_1_to_24_characters_are_valid_in_any_utf8_width) {
  static const char *const chars[] = {
      "a",                /* 1 byte */
      "\xc3\xa9",         /* é: 2 bytes */
      "\xe6\x97\xa5",     /* 日: 3 bytes */
      "\xf0\x9f\x8d\xaa", /* 🍪: 4 bytes */
  };
  for (size_t i = 0; i < sizeof(chars) / sizeof(chars[0]); i++) {
    cr_assert(repeated_ok(chars[i], 1), "1 x %s", chars[i]);
    cr_assert(repeated_ok(chars[i], 23), "23 x %s", chars[i]);
    cr_assert(repeated_ok(chars[i], 24), "24 x %s", chars[i]);
    cr_assert_not(repeated_ok(chars[i], 25), "25 x %s", chars[i]);
    cr_assert_not(repeated_ok(chars[i], 40), "40 x %s", chars[i]);
  }
  cr_assert_not(game_name_valid("", 0));
  cr_assert_not(game_name_valid(NULL, 0));
  cr_assert(name_ok("Ada Lovelace"));
  cr_assert(name_ok("\xc3\x89lodie \xf0\x9f\x8d\xaa"));
}

Test(game_auth, the_length_given_is_the_name) {
  cr_assert(game_name_valid("AdaXXXXXXXXXXXXXXXXXXXXXXXXXXX", 3));
  cr_assert_not(game_name_valid("A\0B", 3), "an embedded NUL is a control");
  /* A multi-byte character cut by the length is invalid UTF-8. */
  cr_assert_not(game_name_valid("A\xc3\xa9", 2));
  cr_assert_not(game_name_valid("A\xf0\x9f\x8d\xaa", 4));
}

Test(game_auth, markup_is_a_valid_name) {
  /* Clients render names as text, so markup is just characters. */
  cr_assert(name_ok("<script>"));
  cr_assert(name_ok("<script>x</script>"));
  cr_assert(name_ok("\"quotes\" & 'apos' \\"));
  cr_assert(name_ok("Robert'); DROP TABLE"));
}

Test(game_auth, control_characters_are_refused) {
  static const char *const bad[] = {
      "A\x01",     "\tAda",
      "Ada\n",     "A\rB",
      "A\x1b[31m", "A\x7f",
      "A\x1f",     "A\xc2\x80",           /* U+0080 */
      "A\xc2\x85", /* NEL */ "A\xc2\x9f", /* U+009F */
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    cr_assert_not(name_ok(bad[i]), "%zu", i);
  cr_assert(name_ok("A\xc2\xa0"
                    "B"),
            "U+00A0 no-break space prints");
}

Test(game_auth, invalid_utf8_is_refused) {
  static const char *const bad[] = {
      "\x80",  /* lone continuation */
      "A\xbf", /* lone continuation */
      "A\xc3", /* truncated 2-byte */
      "\xc3"
      "A",             /* continuation missing */
      "A\xe6\x97",     /* truncated 3-byte */
      "A\xf0\x9f\x8d", /* truncated 4-byte */
      "\xe6"
      "AB", /* continuation missing */
      "\xfe",
      "\xff",
      "A\xf8\x88\x80\x80\x80", /* never in UTF-8 */
      "\xf5\x80\x80\x80",      /* lead above F4 */
      "\xf4\x90\x80\x80",      /* U+110000 */
      "\xc3\xa9\xa9",          /* one continuation too many */
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    cr_assert_not(name_ok(bad[i]), "case %zu", i);
}

Test(game_auth, overlong_encodings_are_refused) {
  static const char *const bad[] = {
      "\xc0\x80",         /* NUL in 2 bytes */
      "\xc0\xaf",         /* '/' in 2 bytes */
      "\xc1\xbf",         /* U+007F in 2 bytes */
      "\xc1\x81",         /* 'A' in 2 bytes */
      "\xe0\x80\xaf",     /* '/' in 3 bytes */
      "\xe0\x81\x81",     /* 'A' in 3 bytes */
      "\xe0\x9f\xbf",     /* U+07FF in 3 bytes */
      "\xf0\x80\x80\xaf", /* '/' in 4 bytes */
      "\xf0\x8f\xbf\xbf", /* U+FFFF in 4 bytes */
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    cr_assert_not(name_ok(bad[i]), "case %zu", i);
  /* The shortest forms of the same code points at each boundary pass. */
  cr_assert(name_ok("\xdf\xbf"), "U+07FF");
  cr_assert(name_ok("\xe0\xa0\x80"), "U+0800");
  cr_assert(name_ok("\xf0\x90\x80\x80"), "U+10000");
}

Test(game_auth, surrogates_are_refused) {
  static const char *const bad[] = {
      "\xed\xa0\x80",             /* U+D800 */
      "\xed\xaf\xbf",             /* U+DBFF */
      "\xed\xb0\x80",             /* U+DC00 */
      "\xed\xbf\xbf",             /* U+DFFF */
      "\xed\xa0\xbd\xed\xb8\x80", /* CESU-8 pair for U+1F600 */
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    cr_assert_not(name_ok(bad[i]), "case %zu", i);
  cr_assert(name_ok("\xed\x9f\xbf"), "U+D7FF just below");
  cr_assert_not(name_ok("\xee\x80\x80"), "U+E000 private use");
}

Test(game_auth, invisible_and_direction_marks_are_refused) {
  static const char *const bad[] = {
      "Ada\xe2\x80\x8b", /* U+200B zero-width space */
      "A\xe2\x80\x8c"
      "B", /* U+200C ZWNJ */
      "A\xe2\x80\x8d"
      "B",             /* U+200D ZWJ */
      "A\xe2\x80\x8e", /* U+200E LRM */
      "A\xe2\x80\x8f", /* U+200F RLM */
      "\xe2\x80\xae"
      "adA", /* U+202E right-to-left override */
      "\xe2\x80\xaa"
      "A", /* U+202A LRE */
      "A\xe2\x80\xa8"
      "B", /* U+2028 line separator */
      "A\xe2\x81\xa6"
      "B", /* U+2066 LRI */
      "A\xe2\x81\xa0"
      "B", /* U+2060 word joiner */
      "\xef\xbb\xbf"
      "Ada", /* U+FEFF BOM */
      "A\xc2\xad"
      "B",            /* U+00AD soft hyphen */
      "\xe2\x80\x8b", /* only invisible */
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    cr_assert_not(name_ok(bad[i]), "case %zu", i);
}

Test(game_auth, names_of_only_spaces_are_refused) {
  cr_assert_not(name_ok(" "));
  cr_assert_not(name_ok("   "));
  cr_assert_not(repeated_ok(" ", 24));
  cr_assert(name_ok(" a "), "spaces around a visible character");
  char s[26];
  memset(s, ' ', 23);
  s[23] = 'x';
  s[24] = '\0';
  cr_assert(name_ok(s), "23 spaces and one letter: 24 characters");
  s[24] = 'y';
  s[25] = '\0';
  cr_assert_not(name_ok(s), "25 characters");
}

/* The longest name login accepts (24 four-byte characters, 96 bytes)
 * gives a token that verifies. */
Test(game_auth, a_name_of_24_four_byte_characters_gives_a_token_that_verifies) {
  game_auth_t a = auth_make(SECRET);
  char name[4 * 24 + 1];
  for (int i = 0; i < 24; i++)
    memcpy(name + 4 * i, "\xf0\x9f\x8d\xaa", 4);
  name[96] = '\0';
  cr_assert(game_name_valid(name, strlen(name)), "login accepts the name");
  char token[GAME_TOKEN_MAX];
  cr_assert_eq(game_auth_sign(&a, "u-42", name, NOW_S, token, sizeof(token)),
               RT_OK, "login signs a token for it");
  rt_identity_t who;
  cr_assert_eq(game_auth_verify(&a, token, NOW_S, &who), RT_OK,
               "the token login gave is refused");
}
