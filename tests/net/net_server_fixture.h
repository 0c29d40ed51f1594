/* net_server_fixture.h: what the tests of the HTTP/WebSocket server
 * (net/net_server.h) share: the simulated world with its static table,
 * session handler, API routes and clients, and the byte-for-byte checks of
 * HTTP answers and WebSocket frames. test_net_server.c says how they work;
 * the tests are in test_net_server*.c, by theme, linked into one binary.
 */
#ifndef NET_SERVER_FIXTURE_H
#define NET_SERVER_FIXTURE_H

#include "net_server.h"
#include "net_static.h"
#include "rt_service.h"
#include "rt_stream.h"
#include "rt_world.h"
#include "sim_pipe.h"
#include "sim_world.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MS RT_NS_PER_MS
#define SEC RT_NS_PER_S

#define PORT 8080
#define HOST "game.test:8080"
#define SAMPLE_KEY "dGhlIHNhbXBsZSBub25jZQ=="        /* RFC 6455 1.3 */
#define SAMPLE_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" /* RFC 6455 1.3 */

#define TURNS_MAX 1000000u        /* per sim_world_run: far above any need */
#define SETTLE_ROUNDS_MAX 200000u /* read-and-run rounds in one settle */
#define CLIENT_READS_MAX 4096u    /* reads in one pump of one client */
#define CLIENT_WRITE_ROUNDS_MAX 100000u
#define CLIENT_DATA_MAX (256u * 1024)
#define CLIENTS_MAX 16u
#define SESSIONS_MAX 16u
#define DEFERRED_MAX 16u
#define FRAME_PAYLOAD_MAX 1024u
#define HEAD_MAX 4096u

enum {
  TAG_DEFER = RT_TAG_USER, /* route -> replier: a call to answer later */
  TAG_GO,                  /* test -> ws client actor: start */
};

/* The static table, as files on disk before the load. */
#define INDEX_HTML                                                             \
  "<!doctype html><html><head><title>Overcookied</title>"                      \
  "<script src=\"/app.js\"></script></head><body>cookie</body></html>\n"
#define APP_JS "console.log('click the cookie');\n"
#define STYLE_CSS "body { margin: 0; background: #fdf6e3; }\n"
extern const uint8_t LOGO_PNG[20]; /* logo.png: binary, NULs included */
#define SECRET_TXT "TOP SECRET: outside the web root\n"

#define HEALTH_BODY "{\"status\":\"healthy\"}"
#define REQ(method_target) method_target " HTTP/1.1\r\nHost: " HOST "\r\n\r\n"

/* ---- The fixture --------------------------------------------------------- */

typedef struct fx fx_t;

typedef struct sess {
  fx_t *fx;
  rt_session_conn_t *conn;
  rt_identity_t who;
  uint32_t texts;
  uint32_t closed_calls;
  uint16_t close_code;
} sess_t;

typedef struct defer_req {
  uint64_t call_id;
  rt_actor_id_t reply_to;
} defer_req_t;

typedef struct client {
  fx_t *fx;
  rt_stream_t *s; /* NULL once we closed it */
  bool hold;      /* read nothing for now: a peer that does not read */
  uint8_t data[CLIENT_DATA_MAX];
  size_t len;  /* bytes received */
  size_t off;  /* bytes already checked */
  int64_t end; /* 0 while open; RT_EOF or RT_ERESET once a read said so */
} client_t;

struct fx {
  sim_world_t *sw;
  rt_world_t *w;
  net_static_t *statics;
  net_server_t *srv;
  net_server_config_t cfg;
  client_t *clients[CLIENTS_MAX];
  uint32_t clients_len;
  /* Sessions: our handler records every call. */
  rt_session_handler_t handler;
  sess_t sessions[SESSIONS_MAX];
  uint32_t opens;
  uint32_t closed_total;
  uint32_t refused;
  bool refuse_sessions;
  /* Authentication hook. */
  uint32_t auth_calls;
  char auth_last[64];
  /* API routes. */
  uint32_t sync_calls;
  char seen_method[16], seen_path[64], seen_query[64], seen_auth[64];
  rt_actor_id_t replier;
  defer_req_t deferred[DEFERRED_MAX];
  uint32_t deferred_len;
  bool reply_mute;
  rt_time_ns reply_delay;
};

/* ---- HTTP responses ------------------------------------------------------ */

typedef struct resp {
  int status;
  char head[HEAD_MAX]; /* status line to the blank line, NUL-terminated */
  const uint8_t *body; /* into the client's buffer */
  size_t body_len;
} resp_t;

#define STATIC_HTML_HEADERS                                                    \
  "Cache-Control: no-cache\r\nX-Content-Type-Options: nosniff\r\n"
/* Scripts and styles revalidate like pages (their names carry no content
 * hash); images may be cached briefly. */
#define STATIC_CODE_HEADERS STATIC_HTML_HEADERS
#define STATIC_ASSET_HEADERS                                                   \
  "Cache-Control: public, max-age=300\r\nX-Content-Type-Options: nosniff\r\n"
#define NO_STORE "Cache-Control: no-store\r\n"
#define ALLOW_GET_HEAD "Allow: GET, HEAD\r\n"

/* ---- WebSocket frames (RFC 6455 5.2) ------------------------------------- */

enum {
  OP_CONT = 0x0,
  OP_TEXT = 0x1,
  OP_BINARY = 0x2,
  OP_CLOSE = 0x8,
  OP_PING = 0x9,
  OP_PONG = 0xa,
};

/* The mask of every client frame (net_server_fixture.c). */
extern const uint8_t MASK_KEY[4];

typedef struct ws_in {
  bool fin;
  uint8_t opcode;
  uint8_t payload[FRAME_PAYLOAD_MAX];
  size_t len;
} ws_in_t;

/* ---- The upgrade --------------------------------------------------------- */

typedef struct upgrade {
  const char *target;  /* NULL: "/ws" */
  const char *key;     /* NULL: the RFC sample; "-": no header */
  const char *version; /* NULL: "13"; "-": no header */
  const char *origin;  /* NULL: no header */
} upgrade_t;

/* ---- Cross-origin API calls (CORS) --------------------------------------- */

/* What a browser sends before a GET with Authorization, or a JSON POST. */
#define ASKS(method)                                                           \
  "Access-Control-Request-Method: " method "\r\n"                              \
  "Access-Control-Request-Headers: authorization,content-type\r\n"

/* ---- Authentication ------------------------------------------------------ */

/* The authentication hook: "good-token" is u-42 (Ada), any other token is
 * refused; each call is counted in fx->auth_calls, its token kept. */
int auth_check(void *ctx, const char *token, rt_identity_t *out);

/* ---- API routes ---------------------------------------------------------- */

/* A route that echoes the request body; no content type: the server's
 * default. */
int api_echo(void *ctx, rt_world_t *w, const rt_http_call_t *call,
             rt_http_answer_t *answer);

/* Send the answer to deferred call call_id to `to`; rt_send's result. */
int send_reply(rt_world_t *w, rt_actor_id_t to, uint64_t call_id, int status,
               const char *body);

/* ---- Fixture lifecycle --------------------------------------------------- */

/* A world with the static table loaded, the replier actor, the session
 * handler and the four API routes in fx->cfg; not serving yet. */
fx_t *fx_create(void);

/* Start serving with fx->cfg as the test left it. */
void fx_start(fx_t *fx);

/* fx_create, then fx_start. */
fx_t *fx_new(void);

/* Stop every actor (sessions still open get closed() now), free the pipes,
 * the world and the server. fx stays readable for checks afterwards. */
void fx_stop(fx_t *fx);

/* fx_stop if not yet done, then free the clients and fx. */
void fx_free(fx_t *fx);

/* The server's counters now. */
net_server_stats_t stats(const fx_t *fx);

/* ---- Clients and time ---------------------------------------------------- */

/* A client connected to PORT over links up and down (NULL: the default). */
client_t *cl_connect_with(fx_t *fx, const sim_link_config_t *up,
                          const sim_link_config_t *down);

/* A client connected to PORT over default links. */
client_t *cl_connect(fx_t *fx);

/* Run the world up to `until`, then keep reading and running at that instant
 * until nothing moves (reads free pipe buffers, which wakes writers). */
void run_to(fx_t *fx, rt_time_ns until);

/* run_to the present instant. */
void settle(fx_t *fx);

/* run_to dt from now. */
void advance(fx_t *fx, rt_time_ns dt);

/* Write all of data, running the world when the pipe is full. */
void cl_write(client_t *cl, const void *data, size_t len);

/* cl_write a string, without its NUL. */
void cl_send(client_t *cl, const char *text);

/* Close the client's end of the pipe. */
void cl_close(client_t *cl);

/* Bytes received and not checked yet. */
size_t cl_unread(const client_t *cl);

/* Printable form of bytes for failure messages. */
const char *esc(const uint8_t *p, size_t n, char *out, size_t cap);

/* Nothing arrived and the connection is still open. */
void cl_expect_quiet(client_t *cl);

/* The server finished the connection: EOF and nothing unread before it. */
void cl_expect_eof(client_t *cl);

/* The next unread bytes are exactly want. */
void cl_expect_bytes(client_t *cl, const void *want, size_t len);

/* ---- HTTP responses ------------------------------------------------------ */

/* The value of header `name` (exact case, as the server writes it). */
bool resp_header(const resp_t *r, const char *name, char *out, size_t cap);

/* Take one complete response from the unread bytes; has_body is false for
 * answers to HEAD and for 101. */
bool cl_take_response(client_t *cl, resp_t *r, bool has_body);

/* Settle, then take one complete response: it must have arrived. */
void cl_expect_response(client_t *cl, resp_t *r, bool has_body);

/* The whole head, rebuilt: status line, Content-Type (if any),
 * Content-Length, Connection, the extra lines, blank line. */
void check_head(const resp_t *r, const char *status_line,
                const char *content_type, size_t content_length,
                bool keep_alive, const char *extra);

/* The body is exactly the len bytes of want. */
void check_body(const resp_t *r, const void *want, size_t len);

/* The body is exactly the string want. */
void check_body_str(const resp_t *r, const char *want);

/* The next answer is /health's 200, on a connection kept alive. */
void expect_health(client_t *cl);

/* A JSON error answer that closes the connection, then EOF. */
void expect_error_and_close(client_t *cl, const char *status_line,
                            const char *body, const char *extra);

/* ---- WebSocket frames and messages --------------------------------------- */

/* One frame into out; returns its length. */
size_t ws_frame(uint8_t *out, size_t cap, bool fin, uint8_t opcode, bool masked,
                const void *payload, size_t len);

/* Send one masked frame. */
void cl_send_frame(client_t *cl, bool fin, uint8_t opcode, const void *payload,
                   size_t len);

/* Send a text message in one frame. */
void cl_send_text(client_t *cl, const char *text);

/* Send a close frame with code and reason. */
void cl_send_close(client_t *cl, uint16_t code, const char *reason);

/* Take one complete server frame from the unread bytes. */
bool cl_take_frame(client_t *cl, ws_in_t *f);

/* Settle; the next frame is a final one of opcode with exactly payload. */
void cl_expect_frame(client_t *cl, uint8_t opcode, const void *payload,
                     size_t len);

/* The next frame is the text message text. */
void cl_expect_text(client_t *cl, const char *text);
/* The server's pings carry their number, 1 up, as 8 bytes big endian
 * (net_server_probe.c); a pong echoes them. */
void ping_seq_bytes(uint64_t seq, uint8_t out[8]);
void cl_expect_ping(client_t *cl, uint64_t seq);
void cl_pong(client_t *cl, uint64_t seq);
/* When the next frame is a ping, it must carry `seq`: taken, true. A probe
 * rides with a frame sent a period after the last ping, and wslay sends
 * control frames ahead of queued data. */
bool cl_take_ping(client_t *cl, uint64_t seq);

/* The next frame is a close with code and reason. */
void cl_expect_close(client_t *cl, uint16_t code, const char *reason);

/* Send a text message of len bytes: A to Z, over and over. */
void send_text_of(client_t *cl, size_t len);

/* The next frame is the text message send_text_of(len) sends. */
void expect_text_of(client_t *cl, size_t len);

/* The server closed with `code`; the client answers; the connection ends. */
void expect_server_close(client_t *cl, uint16_t code, const char *reason);

/* ---- The upgrade --------------------------------------------------------- */

/* Send the upgrade request u describes. */
void cl_send_upgrade(client_t *cl, const upgrade_t *u);

/* Settle; the next bytes are the 101 to the RFC's sample key. */
void cl_expect_switching(client_t *cl);

/* A client whose upgrade succeeded (101 consumed). */
client_t *ws_open_with(fx_t *fx, const upgrade_t *u);

/* ws_open_with the default upgrade. */
client_t *ws_open(fx_t *fx);

/* The upgrade is refused with status_line and a JSON error, then closed. */
void expect_refused(fx_t *fx, const upgrade_t *u, const char *status_line,
                    const char *error, const char *extra);

#endif
