#include "game_auth.h"

#include "game_proto.h"
#include "rt_err.h"
#include "rt_utf8.h"

#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>

#define B64_MAX 1400u /* base64 of a token part: parts are < GAME_TOKEN_MAX */

int game_auth_init(game_auth_t *a, const char *secret, int64_t lifetime_s) {
  memset(a, 0, sizeof(*a));
  size_t len = secret != NULL ? strlen(secret) : 0;
  if (len == 0 || len > GAME_SECRET_MAX || lifetime_s <= 0)
    return RT_EINVAL;
  memcpy(a->secret, secret, len);
  a->secret_len = len;
  a->lifetime_s = lifetime_s;
  return RT_OK;
}

/* ---- base64url without padding (RFC 7515) -------------------------------- */

static int b64url_encode(const uint8_t *in, size_t len, char *out, size_t cap) {
  if (((len + 2) / 3) * 4 + 1 > cap)
    return RT_ELIMIT;
  int n = EVP_EncodeBlock((unsigned char *)out, in, (int)len);
  while (n > 0 && out[n - 1] == '=')
    n--;
  for (int i = 0; i < n; i++) {
    if (out[i] == '+')
      out[i] = '-';
    else if (out[i] == '/')
      out[i] = '_';
  }
  out[n] = '\0';
  return n;
}

/* Decode; -1 on any character outside the alphabet, a bad length, or any
 * spelling but the canonical one. The last symbol of a segment whose length
 * is not a multiple of 4 carries 2 or 4 bits beyond the data, which RFC 4648
 * 3.5 says are zero; EVP_DecodeBlock drops them unread, so "..._MI" and
 * "..._MJ" would be one signature, and every token four or sixteen tokens.
 * Encoding the bytes again and comparing refuses each spelling but the one
 * b64url_encode writes, without a second decoder. */
static int b64url_decode(const char *in, size_t len, uint8_t *out, size_t cap) {
  if (len % 4 == 1 || len + 4 > B64_MAX)
    return -1;
  char tmp[B64_MAX];
  for (size_t i = 0; i < len; i++) {
    char c = in[i];
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
        (c >= '0' && c <= '9'))
      tmp[i] = c;
    else if (c == '-')
      tmp[i] = '+';
    else if (c == '_')
      tmp[i] = '/';
    else
      return -1;
  }
  size_t padded = len;
  while (padded % 4 != 0)
    tmp[padded++] = '=';
  size_t pad = padded - len;
  if ((padded / 4) * 3 > cap)
    return -1;
  int n = EVP_DecodeBlock(out, (const unsigned char *)tmp, (int)padded);
  if (n < 0)
    return -1;
  n -= (int)pad;
  /* len + 4 <= B64_MAX above: the canonical spelling of n bytes fits. */
  int m = b64url_encode(out, (size_t)n, tmp, sizeof(tmp));
  if (m < 0 || (size_t)m != len || memcmp(tmp, in, len) != 0)
    return -1;
  return n;
}

static int hmac_sha256(const game_auth_t *a, const char *data, size_t len,
                       uint8_t mac[32]) {
  unsigned int mac_len = 0;
  if (HMAC(EVP_sha256(), a->secret, (int)a->secret_len,
           (const unsigned char *)data, len, mac, &mac_len) == NULL ||
      mac_len != 32)
    return RT_EIO;
  return RT_OK;
}

/* ---- Sign ---------------------------------------------------------------- */

static const char jwt_header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";

int game_auth_sign(const game_auth_t *a, const char *sub, const char *name,
                   int64_t now_s, char *out, size_t cap) {
  cJSON *claims = cJSON_CreateObject();
  if (claims == NULL)
    return RT_ENOMEM;
  cJSON_AddStringToObject(claims, "sub", sub);
  cJSON_AddStringToObject(claims, "name", name);
  cJSON_AddNumberToObject(claims, "exp", (double)(now_s + a->lifetime_s));
  char body[512];
  int ok = cJSON_PrintPreallocated(claims, body, (int)sizeof(body), 0);
  cJSON_Delete(claims);
  if (!ok)
    return RT_ELIMIT;
  char h64[64], b64[B64_MAX];
  int hn = b64url_encode((const uint8_t *)jwt_header, sizeof(jwt_header) - 1,
                         h64, sizeof(h64));
  int bn = b64url_encode((const uint8_t *)body, strlen(body), b64, sizeof(b64));
  if (hn < 0 || bn < 0)
    return RT_ELIMIT;
  int n = snprintf(out, cap, "%s.%s", h64, b64);
  if (n < 0 || (size_t)n >= cap)
    return RT_ELIMIT;
  uint8_t mac[32];
  int err = hmac_sha256(a, out, (size_t)n, mac);
  if (err < 0)
    return err;
  char s64[64];
  b64url_encode(mac, sizeof(mac), s64, sizeof(s64));
  int m = snprintf(out + n, cap - (size_t)n, ".%s", s64);
  if (m < 0 || (size_t)m >= cap - (size_t)n)
    return RT_ELIMIT;
  return RT_OK;
}

/* ---- Verify -------------------------------------------------------------- */

/* Header and claims are read as one JSON value each, through the reader of
 * every client's JSON (game_proto_json_parse): text after the value would be
 * ignored by cJSON, and a U+0000 would cut a string short ("u-1\u0000admin"
 * read as the subject "u-1", "HS256\u0000x" as "HS256"). Only a holder of
 * the secret can sign such parts, but a token should have one meaning. */

static bool header_ok(const char *h64, size_t len) {
  uint8_t raw[256];
  int n = b64url_decode(h64, len, raw, sizeof(raw) - 1);
  if (n <= 0)
    return false;
  bool nul = false;
  cJSON *h = game_proto_json_parse(raw, (size_t)n, &nul);
  const cJSON *alg = cJSON_GetObjectItemCaseSensitive(h, "alg");
  bool ok = !nul && cJSON_IsObject(h) && cJSON_IsString(alg) &&
            strcmp(alg->valuestring, "HS256") == 0;
  cJSON_Delete(h);
  return ok;
}

static int read_claims(const char *b64, size_t len, int64_t now_s,
                       rt_identity_t *who) {
  uint8_t raw[B64_MAX];
  int n = b64url_decode(b64, len, raw, sizeof(raw));
  if (n <= 0)
    return RT_EINVAL;
  bool nul = false;
  cJSON *c = game_proto_json_parse(raw, (size_t)n, &nul);
  const cJSON *sub = cJSON_GetObjectItemCaseSensitive(c, "sub");
  const cJSON *name = cJSON_GetObjectItemCaseSensitive(c, "name");
  const cJSON *exp = cJSON_GetObjectItemCaseSensitive(c, "exp");
  int err = RT_OK;
  if (nul || !cJSON_IsObject(c) || !cJSON_IsString(sub) ||
      !cJSON_IsString(name) || !cJSON_IsNumber(exp) ||
      sub->valuestring[0] == '\0' ||
      strlen(sub->valuestring) >= sizeof(who->subject) ||
      strlen(name->valuestring) >= sizeof(who->name))
    err = RT_EINVAL;
  else if (exp->valuedouble <= (double)now_s)
    err = RT_ETIMEDOUT;
  if (err == RT_OK) {
    memset(who, 0, sizeof(*who));
    memcpy(who->subject, sub->valuestring, strlen(sub->valuestring));
    memcpy(who->name, name->valuestring, strlen(name->valuestring));
  }
  cJSON_Delete(c);
  return err;
}

int game_auth_verify(const game_auth_t *a, const char *token, int64_t now_s,
                     rt_identity_t *who) {
  if (token == NULL)
    return RT_EINVAL;
  size_t len = strnlen(token, GAME_TOKEN_MAX + 1);
  if (len == 0 || len > GAME_TOKEN_MAX)
    return RT_EINVAL;
  const char *dot1 = memchr(token, '.', len);
  const char *dot2 =
      dot1 != NULL ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token))
                   : NULL;
  if (dot1 == NULL || dot2 == NULL ||
      memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)) != NULL)
    return RT_EINVAL;
  if (!header_ok(token, (size_t)(dot1 - token)))
    return RT_EPROTO;
  uint8_t sig[64];
  int sn = b64url_decode(dot2 + 1, len - (size_t)(dot2 + 1 - token), sig,
                         sizeof(sig));
  uint8_t mac[32];
  int err = hmac_sha256(a, token, (size_t)(dot2 - token), mac);
  if (err < 0)
    return err;
  if (sn != 32 || CRYPTO_memcmp(sig, mac, 32) != 0)
    return RT_EPROTO;
  return read_claims(dot1 + 1, (size_t)(dot2 - dot1 - 1), now_s, who);
}

/* ---- Names --------------------------------------------------------------- */

/* Code points that print nothing or change how text around them reads. */
static bool invisible(uint32_t cp) {
  return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp == 0xad ||
         (cp >= 0x200b && cp <= 0x200f) || (cp >= 0x2028 && cp <= 0x202e) ||
         (cp >= 0x2060 && cp <= 0x206f) || cp == 0xfeff ||
         (cp >= 0xfff0 && cp <= 0xffff) || (cp >= 0xe000 && cp <= 0xf8ff) ||
         cp >= 0xf0000;
}

bool game_name_valid(const char *name, size_t len) {
  const uint8_t *s = (const uint8_t *)name;
  size_t i = 0, chars = 0;
  bool visible = false;
  while (i < len) {
    uint32_t cp;
    int n = rt_utf8_decode(s + i, len - i, &cp);
    if (n < 0 || invisible(cp))
      return false;
    if (cp != ' ')
      visible = true;
    i += (size_t)n;
    if (++chars > GAME_NAME_CHARS_MAX)
      return false;
  }
  return chars >= 1 && visible;
}
