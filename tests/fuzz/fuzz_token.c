/* fuzz_token.c: tokens from strangers against game_auth_verify.
 *
 * A token arrives in the WebSocket upgrade (?token=) and in Authorization:
 * Bearer; game_auth_verify checks it with the server's key. Here the key is
 * fixed and the clock is NOW. Byte 0 of the input picks what the rest is:
 *   0  a token, as sent (cut at its first NUL, as a C string is);
 *   1  a header and claims of the fuzzer's (byte 1: the header's length),
 *      each base64url-encoded here and the whole correctly signed with the
 *      key, so that the checks past the signature are reached;
 *   2  claims under the server's own header, correctly signed;
 *   3  a subject and a name (split at the first NUL) signed by
 *      game_auth_sign, then verified.
 * The encoding and the signature in 1 and 2 are made here with OpenSSL's
 * HMAC directly, apart from game_auth's own code.
 *
 * Rules checked, beyond no crash and no sanitizer report:
 *  (1) the result is 0, RT_EINVAL, RT_EPROTO or RT_ETIMEDOUT;
 *  (2) an accepted token's identity fits its buffers (NUL-terminated, a
 *      non-empty subject), is what its claims say (read here with plain
 *      cJSON), and it is unexpired: exp after NOW;
 *  (3) a correctly signed token with the server's header is never refused
 *      as a wrong algorithm or signature (RT_EPROTO);
 *  (4) whatever game_auth_sign signs verifies, as the same identity, and
 *      an identity once accepted verifies again when signed anew.
 */
#include "fuzz_check.h"
#include "game_auth.h"

#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdbool.h>
#include <string.h>

#define INPUT_MAX 2048u
#define SECRET "fuzz-secret-0123456789abcdef"
#define LIFETIME_S 3600
#define NOW 1700000000LL
#define HEADER "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"
#define TOKEN_CAP                                                              \
  (2 * INPUT_MAX + 64) /* base64 of the input, two dots, a MAC */

enum { MODE_RAW = 0, MODE_SIGNED, MODE_CLAIMS, MODE_ROUNDTRIP, MODE_COUNT_ };

static const game_auth_t *auth(void) {
  static game_auth_t a;
  static bool made;
  if (!made) {
    if (game_auth_init(&a, SECRET, LIFETIME_S) < 0)
      abort();
    made = true;
  }
  return &a;
}

/* base64url without padding (RFC 7515 2), written here. Returns the length. */
static size_t b64url(const uint8_t *in, size_t len, char *out) {
  static const char alphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  size_t o = 0;
  for (size_t i = 0; i < len; i += 3) {
    uint32_t v = (uint32_t)in[i] << 16;
    if (i + 1 < len)
      v |= (uint32_t)in[i + 1] << 8;
    if (i + 2 < len)
      v |= in[i + 2];
    out[o++] = alphabet[(v >> 18) & 63];
    out[o++] = alphabet[(v >> 12) & 63];
    if (i + 1 < len)
      out[o++] = alphabet[(v >> 6) & 63];
    if (i + 2 < len)
      out[o++] = alphabet[v & 63];
  }
  out[o] = '\0';
  return o;
}

/* header.claims.signature, signed with the key. */
static void sign_parts(const uint8_t *h, size_t hlen, const uint8_t *c,
                       size_t clen, char *out) {
  size_t n = b64url(h, hlen, out);
  out[n++] = '.';
  n += b64url(c, clen, out + n);
  uint8_t mac[32];
  unsigned int mac_len = 0;
  if (HMAC(EVP_sha256(), SECRET, (int)strlen(SECRET), (const uint8_t *)out, n,
           mac, &mac_len) == NULL ||
      mac_len != sizeof(mac))
    abort();
  out[n++] = '.';
  b64url(mac, sizeof(mac), out + n);
}

/* Rule (2): the claims, read with plain cJSON, say who. */
static void check_claims(const uint8_t *c, size_t clen,
                         const rt_identity_t *who) {
  cJSON *claims = cJSON_ParseWithLength((const char *)c, clen);
  const cJSON *sub = cJSON_GetObjectItemCaseSensitive(claims, "sub");
  const cJSON *name = cJSON_GetObjectItemCaseSensitive(claims, "name");
  const cJSON *exp = cJSON_GetObjectItemCaseSensitive(claims, "exp");
  FUZZ_CHECK(cJSON_IsString(sub) && cJSON_IsString(name) && cJSON_IsNumber(exp),
             "accepted claims without sub, name and exp");
  FUZZ_CHECK(strcmp(sub->valuestring, who->subject) == 0 &&
                 strcmp(name->valuestring, who->name) == 0,
             "accepted as \"%s\" \"%s\", the claims say \"%s\" \"%s\"",
             who->subject, who->name, sub->valuestring, name->valuestring);
  FUZZ_CHECK(exp->valuedouble > (double)NOW, "accepted, expired at %f",
             exp->valuedouble);
  cJSON_Delete(claims);
}

/* Rules (1), (2) and (4) for any verified token. */
static int verify(const char *token, rt_identity_t *who) {
  memset(who, 0x5a, sizeof(*who)); /* no NUL to find by luck */
  int rc = game_auth_verify(auth(), token, NOW, who);
  FUZZ_CHECK(rc == 0 || rc == RT_EINVAL || rc == RT_EPROTO ||
                 rc == RT_ETIMEDOUT,
             "result %d", rc);
  if (rc != 0)
    return rc;
  size_t sl = strnlen(who->subject, sizeof(who->subject));
  size_t nl = strnlen(who->name, sizeof(who->name));
  FUZZ_CHECK(sl > 0 && sl < sizeof(who->subject), "subject of %zu bytes", sl);
  FUZZ_CHECK(nl < sizeof(who->name), "name without its NUL");
  return rc;
}

/* Rule (4): sign (sub, name) now and verify it: the same identity. */
static void check_roundtrip(const char *sub, const char *name) {
  char token[GAME_TOKEN_MAX];
  if (game_auth_sign(auth(), sub, name, NOW, token, sizeof(token)) < 0)
    return; /* too long to sign: refused, fine */
  rt_identity_t who;
  int rc = verify(token, &who);
  FUZZ_CHECK(rc == 0, "a token signed for \"%s\" \"%s\" refused: %d", sub, name,
             rc);
  FUZZ_CHECK(strcmp(who.subject, sub) == 0 && strcmp(who.name, name) == 0,
             "signed for \"%s\" \"%s\", verified as \"%s\" \"%s\"", sub, name,
             who.subject, who.name);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  int mode = data[0] % MODE_COUNT_;
  data++;
  size--;
  if (size > INPUT_MAX)
    size = INPUT_MAX;
  char *token = malloc(TOKEN_CAP);
  if (token == NULL)
    abort();
  const uint8_t *claims = NULL;
  size_t claims_len = 0;
  switch (mode) {
  case MODE_RAW:
    memcpy(token, data, size);
    token[size] = '\0';
    break;
  case MODE_SIGNED: {
    size_t hlen = size > 0 ? data[0] : 0;
    const uint8_t *h = data + (size > 0 ? 1 : 0);
    size_t rest = size > 0 ? size - 1 : 0;
    if (hlen > rest)
      hlen = rest;
    claims = h + hlen;
    claims_len = rest - hlen;
    sign_parts(h, hlen, claims, claims_len, token);
    break;
  }
  case MODE_CLAIMS:
    claims = data;
    claims_len = size;
    sign_parts((const uint8_t *)HEADER, strlen(HEADER), claims, claims_len,
               token);
    break;
  default: {
    char *sub = malloc(size + 1);
    if (sub == NULL)
      abort();
    memcpy(sub, data, size);
    sub[size] = '\0';
    size_t sl = strlen(sub);
    const char *name = sl < size ? sub + sl + 1 : "";
    if (sl > 0 && sl < RT_SUBJECT_MAX && strlen(name) < RT_NAME_MAX)
      check_roundtrip(sub, name);
    free(sub);
    free(token);
    return 0;
  }
  }
  rt_identity_t who;
  int rc = verify(token, &who);
  if (mode == MODE_CLAIMS)
    FUZZ_CHECK(rc != RT_EPROTO, "a correctly signed token refused: %s",
               token); /* Rule (3) */
  if (rc == 0) {
    if (claims != NULL)
      check_claims(claims, claims_len, &who);
    check_roundtrip(who.subject, who.name);
  }
  free(token);
  return 0;
}
