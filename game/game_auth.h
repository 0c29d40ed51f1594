/* game_auth.h: guest identities as HS256 JSON Web Tokens.
 *
 * Signing and verification use OpenSSL's HMAC-SHA256 and its base64; the
 * claims are JSON through cJSON. Verification requires alg "HS256" exactly
 * (so "none" and every other algorithm are refused), compares signatures in
 * constant time, and checks exp against the world's wall clock.
 */
#ifndef GAME_AUTH_H
#define GAME_AUTH_H

#include "rt_service.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GAME_SECRET_MAX 256u
#define GAME_TOKEN_MAX 1024u
#define GAME_NAME_CHARS_MAX 24u

typedef struct game_auth {
  uint8_t secret[GAME_SECRET_MAX];
  size_t secret_len;
  int64_t lifetime_s;
} game_auth_t;

/* secret: 1..GAME_SECRET_MAX bytes (borrowed, copied). */
int game_auth_init(game_auth_t *a, const char *secret, int64_t lifetime_s);

/* A token for (sub, name), valid from now_s for the lifetime. Writes a NUL
 * terminated token into out; RT_ELIMIT when cap is too small. */
int game_auth_sign(const game_auth_t *a, const char *sub, const char *name,
                   int64_t now_s, char *out, size_t cap);

/* 0 and *who for a valid, unexpired token; RT_EINVAL when malformed,
 * RT_EPROTO for a wrong algorithm or signature, RT_ETIMEDOUT when
 * expired. */
int game_auth_verify(const game_auth_t *a, const char *token, int64_t now_s,
                     rt_identity_t *who);

/* 1..24 printable characters of valid UTF-8: no control characters, no
 * invisible or direction-changing marks, not only spaces. */
bool game_name_valid(const char *name, size_t len);

#endif
