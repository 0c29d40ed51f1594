/* fuzz_game_json.c: a client's WebSocket message against the game's decoder.
 *
 * The input is one text message as the Client hands it to
 * game_proto_decode (the connection has checked its size and UTF-8 only
 * against its own limit, so anything may arrive here). It also goes to
 * game_proto_json_parse, the reader of every client JSON text (login
 * bodies and token parts too).
 *
 * Rules checked, beyond no crash and no sanitizer report:
 *  (1) the result is one of the four, and over GAME_MESSAGE_MAX bytes it is
 *      GAME_DECODE_TOO_BIG;
 *  (2) a decoded message is consistent: a known type, a sequence number
 *      only for CLICK and only a whole number in [0, 2^53 - 1];
 *  (3) a text the JSON reader takes holds no control byte but tab, LF and
 *      CR (checked here byte by byte), and reads the same once printed
 *      back: cJSON's printing of the value decodes to the same result and
 *      type (when that text still fits a message and held no U+0000; not
 *      seq, as cJSON prints numbers to 15 digits: 2^53 - 1 comes back as
 *      9.00719925474099e+15);
 *  (4) game_proto_decode's two readers agree: rt_json's (when it takes the
 *      text) and cJSON's give the same result, type and seq.
 */
#include "fuzz_check.h"
#include "game_proto.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <string.h>

#define INPUT_MAX (4u * GAME_MESSAGE_MAX) /* past the limit, then cut */
#define SEQ_MAX 9007199254740991LL        /* 2^53 - 1 */

static void check_decoded(game_decode_result_t rc, const game_in_t *in,
                          size_t len) {
  /* Rule (1). */
  FUZZ_CHECK(rc == GAME_DECODE_OK || rc == GAME_DECODE_BAD_JSON ||
                 rc == GAME_DECODE_UNKNOWN_TYPE || rc == GAME_DECODE_TOO_BIG,
             "result %d", (int)rc);
  FUZZ_CHECK((len > GAME_MESSAGE_MAX) == (rc == GAME_DECODE_TOO_BIG),
             "%zu bytes decoded as %d", len, (int)rc);
  if (rc != GAME_DECODE_OK) {
    FUZZ_CHECK(in->type == 0 && !in->has_seq, "a refused message has fields");
    return;
  }
  /* Rule (2). */
  FUZZ_CHECK(in->type >= GAME_IN_JOIN_QUEUE && in->type <= GAME_IN_QUIT,
             "type %d", (int)in->type);
  if (in->has_seq) {
    FUZZ_CHECK(in->type == GAME_IN_CLICK, "seq on type %d", (int)in->type);
    FUZZ_CHECK(in->seq >= 0 && in->seq <= SEQ_MAX, "seq %lld",
               (long long)in->seq);
  } else {
    FUZZ_CHECK(in->seq == 0, "seq %lld without has_seq", (long long)in->seq);
  }
}

/* Rule (3). */
static void check_json(const uint8_t *data, size_t len, game_decode_result_t rc,
                       const game_in_t *in) {
  bool nul = false;
  cJSON *root = game_proto_json_parse(data, len, &nul);
  if (root == NULL)
    return;
  for (size_t i = 0; i < len; i++)
    FUZZ_CHECK(data[i] >= 0x20 || data[i] == '\t' || data[i] == '\n' ||
                   data[i] == '\r',
               "control byte 0x%02x at %zu taken", data[i], i);
  char *printed = nul ? NULL : cJSON_PrintUnformatted(root);
  cJSON_Delete(root);
  if (printed == NULL)
    return; /* U+0000 in a string, or out of memory */
  size_t plen = strlen(printed);
  if (plen <= GAME_MESSAGE_MAX && len <= GAME_MESSAGE_MAX) {
    game_in_t again;
    game_decode_result_t rc2 =
        game_proto_decode((const uint8_t *)printed, plen, &again);
    FUZZ_CHECK(rc2 == rc && again.type == in->type,
               "decodes as %d/%d, printed back as %d/%d: %s", (int)rc,
               (int)in->type, (int)rc2, (int)again.type, printed);
  }
  cJSON_free(printed);
}

/* Rule (4). */
static void check_readers(const uint8_t *data, size_t len,
                          game_decode_result_t rc, const game_in_t *in) {
  game_in_t slow;
  bool fast;
  game_decode_result_t rc2 = game_proto__decode(data, len, false, &slow, &fast);
  FUZZ_CHECK(!fast && rc2 == rc && slow.type == in->type &&
                 slow.has_seq == in->has_seq && slow.seq == in->seq,
             "cJSON's reader: %d/%d/%lld, the decoder: %d/%d/%lld", (int)rc2,
             (int)slow.type, (long long)slow.seq, (int)rc, (int)in->type,
             (long long)in->seq);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > INPUT_MAX)
    size = INPUT_MAX;
  /* data is exactly size bytes (libFuzzer's buffer, or fuzz_main.c's): a
   * decoder that reads on to a NUL would be caught by ASan. */
  game_in_t in;
  game_decode_result_t rc = game_proto_decode(data, size, &in);
  check_decoded(rc, &in, size);
  check_json(data, size, rc, &in);
  check_readers(data, size, rc, &in);
  return 0;
}
