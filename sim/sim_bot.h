/* sim_bot.h: a simulated player that speaks the real protocol.
 *
 * A bot is an actor in a simulated world. It does what a browser does, byte
 * for byte, through the production code: it connects to a sim_listen port
 * (sim_connect), POSTs /api/login over HTTP/1.1 (its response parsed with
 * http_parser), opens a second connection for GET /ws?token=... with the
 * WebSocket client (net_ws_client.h, masks from a seeded stream), and then
 * sends the commands a test script gives it and records every server
 * message with the virtual time it arrived. It never reads the wall clock
 * and draws randomness only from its own stream of the world's seed, so a
 * run with bots is as repeatable as any simulated run.
 *
 * Scripting. Every command (sim_bot_join, sim_bot_click, ...) is a message
 * to the bot's actor: it takes effect in the bot's next turn, at the world
 * time of the next sim_world_run, in the order the commands were given.
 * A test runs the world up to an instant, reads the records, decides, gives
 * commands, runs on. Commands given while the bot is still logging in or
 * connecting are queued (bounded) and sent once the WebSocket is open.
 *
 * Records. A record is a server message (its type and the payload fields a
 * test checks) or a connection event (opened, closed with a code, refused
 * with an HTTP status), stamped with world time and the number of the
 * connection it came on (1, 2, ... for each (re)connection). Records are
 * bounded by records_max; beyond it they are counted, not kept.
 *
 * Flow control. sim_bot_set_reading(bot, false) makes the bot leave bytes
 * unread: the stalled reader whose send buffer fills, the condition the
 * server's write path exists for. A slow reader is a link config with a low
 * `bandwidth` on the way down.
 *
 * Ownership: sim_bot_spawn returns a bot owned by the caller; the actor
 * borrows it. Free it with sim_bot_destroy, before or after the world is
 * destroyed (the actor is stopped first if it still runs).
 *
 * Dependencies: sim/ may use net/ (the client side of HTTP and WebSocket);
 * the bot knows nothing of game/: it speaks the protocol of PROTOCOL.md.
 */
#ifndef SIM_BOT_H
#define SIM_BOT_H

#include "net_http_client.h"
#include "net_ws.h"
#include "rt_service.h"
#include "sim_pipe.h"
#include "sim_world.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SIM_BOT_RECORDS_DEFAULT 4096u
#define SIM_BOT_RECORDS_MAX (1u << 20)
#define SIM_BOT_PENDING_MAX 256u /* frames queued before the socket opens */
#define SIM_BOT_TEXT_MAX                                                       \
  8192u                          /* one frame the bot sends: above the         \
                                    server's limit, to test it */
#define SIM_BOT_CLICKS_MAX 4096u /* clicks in one sim_bot_clicks */
#define SIM_BOT_TOKEN_MAX 2048u
#define SIM_BOT_HTTP_BODY_MAX NET_HTTPC_BODY_MAX /* net_http_client.h */
#define SIM_BOT_MAILBOX_CAP 4096u /* commands waiting for the bot's turn */

typedef struct sim_bot sim_bot_t;

typedef enum sim_bot_kind {
  /* Server messages (PROTOCOL.md), UPDATE split by what it carries. */
  SIM_BOT_QUEUED = 1,
  SIM_BOT_GAME_START,
  SIM_BOT_UPDATE_TICK,  /* has timeRemaining */
  SIM_BOT_UPDATE_CLICK, /* after a click: scores, maybe seq */
  SIM_BOT_UPDATE_CLAIM, /* has goldenCookieClaimedBy */
  SIM_BOT_OPPONENT_CLICK,
  SIM_BOT_COOKIE_SPAWN,
  SIM_BOT_GAME_OVER,
  SIM_BOT_ERROR,
  SIM_BOT_UNKNOWN, /* not JSON, or a type the bot does not know */
  /* Connection events. */
  SIM_BOT_OPENED,  /* the WebSocket upgrade succeeded */
  SIM_BOT_CLOSED,  /* code: the close code the server sent; 1000
                      after a SIM_BOT_CLOSE_HANDSHAKE; else 1006 */
  SIM_BOT_REFUSED, /* code: the HTTP status of a refused upgrade or
                      login (0: the response was malformed) */
  SIM_BOT_MOVE,    /* a cluster's MOVE: url, room_id */
  SIM_BOT_KIND_COUNT_
} sim_bot_kind_t;
_Static_assert(SIM_BOT_KIND_COUNT_ <= 32, "unkept_kinds is a 32-bit mask");

typedef struct sim_bot_record {
  rt_time_ns at; /* world time it arrived */
  uint32_t conn; /* 1 for the first WebSocket, 2 after a reconnect */
  uint16_t kind; /* sim_bot_kind_t */
  uint16_t code; /* CLOSED, REFUSED */
  bool has_seq;
  bool resumed;     /* GAME_START */
  bool strs;        /* some string below was written (sim_bot's own) */
  int64_t seq;      /* UPDATE_CLICK to the clicker */
  int32_t p1_score; /* every message with scores */
  int32_t p2_score;
  int32_t time_remaining;          /* GAME_START, UPDATE_TICK; -1 when absent */
  int32_t count;                   /* OPPONENT_CLICK */
  double x, y;                     /* COOKIE_SPAWN */
  char role[4];                    /* GAME_START: "p1" or "p2" */
  char room_id[32];                /* GAME_START */
  char opponent[RT_SUBJECT_MAX];   /* GAME_START */
  char winner[RT_SUBJECT_MAX];     /* GAME_OVER: a user id or "draw" */
  char claimed_by[RT_SUBJECT_MAX]; /* UPDATE_CLAIM */
  char reason[32];                 /* GAME_OVER */
  char error_code[32];             /* ERROR */
  char url[64];                    /* MOVE */
} sim_bot_record_t;

typedef enum sim_bot_state {
  SIM_BOT_LOGGING_IN = 0, /* the login request is in flight */
  SIM_BOT_CONNECTING,     /* the upgrade request is in flight */
  SIM_BOT_OPEN,
  SIM_BOT_DISCONNECTED, /* the WebSocket ended; sim_bot_reconnect may follow */
  SIM_BOT_FAILED,       /* login or upgrade refused or malformed */
} sim_bot_state_t;

typedef enum sim_bot_close_how {
  SIM_BOT_CLOSE_HANDSHAKE = 0, /* a WebSocket close frame (1000), then EOF */
  SIM_BOT_CLOSE_STREAM,        /* just close the connection (EOF, no frame) */
  SIM_BOT_CLOSE_RESET,         /* reset it: both ends fail at once */
} sim_bot_close_how_t;

typedef struct sim_bot_config {
  const char *name; /* login name (copied); NULL: "bot" */
  /* A token to use instead of logging in (copied): a second connection for
   * a player, or a bad token. "" connects to /ws with no token at all. */
  const char *token;
  const char *user_id;    /* with token: what sim_bot_user_id answers */
  const char *host;       /* Host header; NULL: "sim:<port>" */
  const char *origin;     /* Origin header on the upgrade; NULL: none */
  sim_link_config_t up;   /* client to server, for every connection */
  sim_link_config_t down; /* server to client */
  uint32_t records_max;   /* 0: SIM_BOT_RECORDS_DEFAULT */
  uint64_t rng_key;       /* its random stream; 0: derived from its actor id */
  /* Called (inside the bot's turn) each time a record is kept, so a driver
   * of many bots looks only at those with news; NULL: not called. It must
   * not call into the world. */
  void (*on_record)(void *ctx, uint64_t tag);
  void *on_record_ctx; /* borrowed for the bot's lifetime */
  uint64_t on_record_tag;
  /* Server messages of these kinds (bit 1 << kind) are read and counted
   * (sim_bot_unkept), not kept as records: a driver that does nothing with
   * them saves the record and the look. 0: every message is kept. */
  uint32_t unkept_kinds;
  /* Where its WebSocket's parked contexts go (net_ws_config_t.pool): a
   * client pool that outlives the bot, shared by a run's bots; NULL:
   * none. */
  net_ws_pool_t *ws_pool;
} sim_bot_config_t;

/* Spawn a bot that connects to `port` of `sw` and logs in (or uses
 * cfg->token) as soon as the world runs. cfg and its strings are copied. */
int sim_bot_spawn(sim_world_t *sw, uint16_t port, const sim_bot_config_t *cfg,
                  sim_bot_t **out);

/* Stop the bot's actor if it still runs, then free the bot. Safe after
 * sim_world_destroy (the actor stopped then) as long as it is called once. */
void sim_bot_destroy(sim_bot_t *bot);

/* ---- Commands: queued to the bot, run in its next turn ------------------- */
/* Each returns 0, or RT_EFULL when SIM_BOT_MAILBOX_CAP commands wait, or
 * RT_ENOACTOR once the bot stopped, or RT_EINVAL. */

/* One text frame, as is (len <= SIM_BOT_TEXT_MAX; may be invalid JSON). */
int sim_bot_send(sim_bot_t *bot, const char *text, size_t len);
int sim_bot_join(sim_bot_t *bot);  /* JOIN_QUEUE */
int sim_bot_leave(sim_bot_t *bot); /* LEAVE_QUEUE */
/* CLICK with "seq": seq (seq < 0: none). */
int sim_bot_click(sim_bot_t *bot, int64_t seq);
/* n CLICKs in one turn, seqs first_seq, first_seq + 1, ... (or none when
 * first_seq < 0); n <= SIM_BOT_CLICKS_MAX. */
int sim_bot_clicks(sim_bot_t *bot, uint32_t n, int64_t first_seq);
int sim_bot_cookie_click(sim_bot_t *bot);
int sim_bot_quit(sim_bot_t *bot); /* QUIT_GAME */
/* End the WebSocket connection. */
int sim_bot_disconnect(sim_bot_t *bot, sim_bot_close_how_t how);
/* A new WebSocket connection with the same token; an open one is first
 * closed as with SIM_BOT_CLOSE_STREAM. */
int sim_bot_reconnect(sim_bot_t *bot);
/* The same, to another port (a MOVE's instance; the Host header follows);
 * 0: the same port. */
int sim_bot_reconnect_to(sim_bot_t *bot, uint16_t port);
/* false: leave bytes unread on the WebSocket (a stalled reader); true:
 * read again, including what piled up. Frames still go out either way. */
int sim_bot_set_reading(sim_bot_t *bot, bool reading);
/* Reset the current WebSocket connection once `bytes` more bytes have come
 * down it from the server (sim_stream_reset_in: a reset mid-frame); 0
 * disarms. No effect without a connection; a reconnect starts unarmed. */
int sim_bot_reset_in(sim_bot_t *bot, uint64_t bytes);
/* An HTTP GET on a new connection, with "Authorization: Bearer <token>"
 * when `bearer`; the answer is read with sim_bot_http_result. One request
 * at a time: a GET while one is in flight is refused (RT_EFULL). */
int sim_bot_http_get(sim_bot_t *bot, const char *path, bool bearer);

/* ---- What the bot saw ---------------------------------------------------- */

const sim_bot_record_t *sim_bot_records(const sim_bot_t *bot, uint32_t *len);
/* Records of `kind` (all connections). */
uint32_t sim_bot_count(const sim_bot_t *bot, sim_bot_kind_t kind);
/* The latest record of `kind`, or NULL. */
const sim_bot_record_t *sim_bot_last(const sim_bot_t *bot, sim_bot_kind_t kind);
/* Forget the records kept so far (a driver that consumed them), so a long
 * run keeps only what it has not read yet. Counts start over too. */
void sim_bot_records_clear(sim_bot_t *bot);

sim_bot_state_t sim_bot_state(const sim_bot_t *bot);
/* After login (or from the config): "" before. */
const char *sim_bot_user_id(const sim_bot_t *bot);
const char *sim_bot_token(const sim_bot_t *bot);
const char *sim_bot_name(const sim_bot_t *bot);
/* The close code of the latest WebSocket once it ended (the server's code,
 * or 1006 when it just dropped); 0 while open or never opened. */
uint16_t sim_bot_close_code(const sim_bot_t *bot);
/* The HTTP status of the latest upgrade (101 when it succeeded), or of a
 * refused login; 0 before any answer. */
int sim_bot_ws_status(const sim_bot_t *bot);
/* Frames handed to the WebSocket. */
uint64_t sim_bot_frames_sent(const sim_bot_t *bot);
/* Server messages of the config's unkept_kinds read, not kept. */
uint64_t sim_bot_unkept(const sim_bot_t *bot);

/* The latest sim_bot_http_get: true once answered (or failed). *status is
 * the HTTP status (0: no valid response); *body is borrowed until the next
 * GET, NUL-terminated, *len bytes. */
bool sim_bot_http_result(const sim_bot_t *bot, int *status, const char **body,
                         size_t *len);

const char *sim_bot_kind_name(sim_bot_kind_t kind);

#endif
