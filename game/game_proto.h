/* game_proto.h: the WebSocket messages of PROTOCOL.md, as C values.
 *
 * Decoding checks the size first (the connection already refused anything
 * over 512 bytes), then reads the text with rt_json where that reads it as
 * cJSON would (rt_json.h), else parses it with cJSON. Encoding builds each
 * message with cJSON into a fresh rt_buf_t, so names are always escaped
 * correctly and a broadcast is encoded once and shared by reference (a
 * click's UPDATE comes from a form cJSON printed once).
 */
#ifndef GAME_PROTO_H
#define GAME_PROTO_H

#include "rt_buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GAME_MESSAGE_MAX 512u
#define GAME_FRAME_MAX 1024u /* the largest message the server sends */

typedef enum game_in_type {
  GAME_IN_JOIN_QUEUE = 1,
  GAME_IN_LEAVE_QUEUE,
  GAME_IN_CLICK,
  GAME_IN_COOKIE_CLICK,
  GAME_IN_QUIT,
} game_in_type_t;

typedef struct game_in {
  game_in_type_t type;
  bool has_seq;
  int64_t seq; /* CLICK's optional sequence number, echoed to the clicker */
} game_in_t;

typedef enum game_decode_result {
  GAME_DECODE_OK = 0,
  GAME_DECODE_BAD_JSON = 1,     /* not one JSON value, a string holding
                                   U+0000, or not {"type": string, ...} */
  GAME_DECODE_UNKNOWN_TYPE = 2, /* a type this server does not know */
  GAME_DECODE_TOO_BIG = 3,
} game_decode_result_t;

game_decode_result_t game_proto_decode(const uint8_t *data, size_t len,
                                       game_in_t *out);
/* game_proto_decode by one reader: rt_json's when allow_fast and it takes
 * the text (*fast), else cJSON's. The two must agree on every text
 * (tests/game/test_game_proto.c, fuzz_game_json). */
game_decode_result_t game_proto__decode(const uint8_t *data, size_t len,
                                        bool allow_fast, game_in_t *out,
                                        bool *fast);

/* ---- Client JSON --------------------------------------------------------- */

struct cJSON;

/* Reads one JSON text that came from outside the server. cJSON alone is
 * lenient in three ways that matter there: it stops after the first value
 * ("{...} garbage" parses), it takes any byte below 0x20 as whitespace or as a
 * character of a string, and its strings end at their first NUL, so "A\u0000B"
 * reads as "A" and a key "name\u0000x" as "name".
 *
 * Returns the parsed value (the caller deletes it with cJSON_Delete), or
 * NULL when data[0..len) is not one JSON text: cJSON refuses it, a control
 * byte other than tab, LF or CR is anywhere in it, or anything but JSON
 * whitespace follows the value. *nul is set when a string in it, key or
 * value, holds U+0000; the value is still returned, and the caller decides
 * what that means (cJSON keeps no string lengths, so which string held it
 * is not known). data is borrowed; len is bounded by the caller. */
struct cJSON *game_proto_json_parse(const uint8_t *data, size_t len, bool *nul);

/* ---- Server to client (each returns a new buffer or NULL on ENOMEM) ------ */

typedef struct game_scores {
  int32_t p1;
  int32_t p2;
} game_scores_t;

rt_buf_t *game_proto_queued(void);
rt_buf_t *game_proto_game_start(const char *opponent, const char *role,
                                const char *room_id, int32_t time_remaining,
                                game_scores_t s, const char *p1_name,
                                const char *p2_name, bool resumed,
                                double countdown_s);
rt_buf_t *game_proto_tick(int32_t time_remaining, game_scores_t s,
                          const char *p1_name, const char *p2_name);
/* seq < 0: none. */
rt_buf_t *game_proto_click_update(game_scores_t s, int64_t seq);
/* A click's UPDATE, the message sent most (two per click), from a form:
 * the text cJSON prints for it once, with the places of its integers
 * marked, which game_proto_click_update_form fills in. The same bytes as
 * game_proto_click_update's, at a fraction of the cost (cJSON's print of a
 * message was a tenth of a simulated cluster's instructions). One set per
 * game (game_t), made at its start; read-only after. */
#define GAME_FORM_TEXT_MAX 96u
#define GAME_FORM_SLOTS 3u

typedef struct game_proto_form {
  char text[GAME_FORM_TEXT_MAX]; /* cJSON's print, each integer a 0x01 */
  uint16_t text_len;
  uint16_t slot_at[GAME_FORM_SLOTS]; /* where each integer goes, in order */
  uint8_t slots;
} game_proto_form_t;

typedef struct game_proto_forms {
  game_proto_form_t click;     /* p1Score, p2Score */
  game_proto_form_t click_seq; /* p1Score, p2Score, seq */
} game_proto_forms_t;

/* 0, or RT_EINVAL if a form did not come out as expected (an internal
 * error: the encoder's limits). */
int game_proto_forms_init(game_proto_forms_t *f);
rt_buf_t *game_proto_click_update_form(const game_proto_forms_t *f,
                                       game_scores_t s, int64_t seq);

rt_buf_t *game_proto_golden_claim(const char *claimed_by, game_scores_t s);
rt_buf_t *game_proto_opponent_click(int32_t points);
rt_buf_t *game_proto_cookie_spawn(double x, double y);
/* room_id: a cluster's (PROTOCOL.md: its GAME_OVER names the game, which
 * a player may hear of on another instance, late); NULL: none. */
rt_buf_t *game_proto_game_over(const char *winner, const char *reason,
                               game_scores_t s, const char *room_id);
rt_buf_t *game_proto_error(const char *code, const char *message);
/* MOVE (PROTOCOL.md, Cluster): {"url","roomId"}. */
rt_buf_t *game_proto_move(const char *url, const char *room_id);

#endif
