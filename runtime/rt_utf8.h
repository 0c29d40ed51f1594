/* rt_utf8.h: strict UTF-8 decoding (RFC 3629).
 *
 * Shared by the WebSocket layer (text frames must be valid UTF-8, else
 * 1007) and the game (player names). Strict: no overlong forms, no
 * surrogates, nothing above U+10FFFF.
 */
#ifndef RT_UTF8_H
#define RT_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Decode the code point at s[0, len): its byte length (1 to 4) and *cp,
 * or -1 when the bytes there are not valid UTF-8 (len 0 included). */
int rt_utf8_decode(const uint8_t *s, size_t len, uint32_t *cp);

/* True when s[0, len) is valid UTF-8 throughout. */
bool rt_utf8_valid(const uint8_t *s, size_t len);

#endif
