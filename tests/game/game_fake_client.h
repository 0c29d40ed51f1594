/* game_fake_client.h: a Client stand-in for tests of the Manager and Rooms.
 *
 * A fake client is an actor that plays the Client's part towards the game's
 * actors without any connection: told by the test, it sends HELLO, JOIN,
 * QUIT or COOKIE_CLICK as the real Client would (from inside its own turn,
 * so the sender is its actor id); it keeps its ASSIGN and counts the frames
 * it is sent by their "type". The Manager monitors it like any Client, so
 * stopping it (rt_stop) is a dropped connection. Tests drive the world one
 * turn at a time (sim_world_step) to build exact interleavings.
 */
#ifndef GAME_FAKE_CLIENT_H
#define GAME_FAKE_CLIENT_H

#include "game_int.h"
#include "sim_world.h"

#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#define FAKE_TYPES_MAX 16u

enum {
  FAKE_GO_HELLO = RT_TAG_USER + 300,
  FAKE_GO_JOIN,
  FAKE_GO_QUIT,
  FAKE_GO_COOKIE,
  FAKE_GO_CLICKS, /* payload u32: that many CLICKs, in one turn */
};

typedef struct fake_client {
  game_t *g;
  rt_actor_id_t id;
  rt_identity_t who;
  rt_actor_id_t room;
  uint32_t role;
  bool replaced;
  rt_actor_id_t over_from; /* who sent the last GAME_OVER */
  char types[FAKE_TYPES_MAX][24];
  uint32_t counts[FAKE_TYPES_MAX];
  uint32_t frames;
} fake_client_t;

static inline uint32_t fake_count(const fake_client_t *f, const char *type) {
  for (uint32_t i = 0; i < FAKE_TYPES_MAX; i++)
    if (strcmp(f->types[i], type) == 0)
      return f->counts[i];
  return 0;
}

static inline void fake_note(fake_client_t *f, const rt_buf_t *buf) {
  cJSON *root = cJSON_ParseWithLength((const char *)buf->data, buf->len);
  const cJSON *t = cJSON_GetObjectItemCaseSensitive(root, "type");
  const char *type = cJSON_IsString(t) ? t->valuestring : "?";
  f->frames++;
  for (uint32_t i = 0; i < FAKE_TYPES_MAX; i++) {
    if (f->types[i][0] == '\0')
      snprintf(f->types[i], sizeof(f->types[i]), "%s", type);
    if (strcmp(f->types[i], type) == 0) {
      f->counts[i]++;
      break;
    }
  }
  cJSON_Delete(root);
}

static inline void fake_behaviour(rt_actor_t *self, const rt_msg_t *msg) {
  fake_client_t *f = rt_state(self);
  rt_world_t *w = rt_actor_world(self);
  switch (msg->tag) {
  case FAKE_GO_HELLO: {
    game_hello_t hello = {.who = f->who};
    rt_msg_t m = rt_msg_make(GAME_TAG_HELLO, NULL, 0);
    m.buf = rt_buf_copy(&hello, sizeof(hello));
    cr_assert_geq(rt_send(w, game_manager_actor(f->g), &m), 0);
    return;
  }
  case FAKE_GO_JOIN: {
    rt_msg_t m = rt_msg_make(GAME_TAG_JOIN, NULL, 0);
    cr_assert_geq(rt_send(w, game_manager_actor(f->g), &m), 0);
    return;
  }
  case FAKE_GO_QUIT:
  case FAKE_GO_COOKIE: {
    game_role_t r = {.role = f->role};
    rt_msg_t m = RT_MSG_OF(
        msg->tag == FAKE_GO_QUIT ? GAME_TAG_QUIT : GAME_TAG_COOKIE_CLICK, &r);
    (void)rt_send(w, f->room, &m);
    return;
  }
  case FAKE_GO_CLICKS: {
    uint32_t n;
    RT_MSG_GET(msg, uint32_t, &n);
    game_click_t c = {.role = f->role};
    rt_msg_t m = RT_MSG_OF(GAME_TAG_CLICK, &c);
    for (uint32_t i = 0; i < n; i++)
      cr_assert_geq(rt_send(w, f->room, &m), 0);
    return;
  }
  case GAME_TAG_ASSIGN: {
    game_assign_t a;
    RT_MSG_GET(msg, game_assign_t, &a);
    f->room = a.room;
    f->role = a.role;
    return;
  }
  case GAME_TAG_ROOM_DONE: {
    game_room_done_t d;
    RT_MSG_GET(msg, game_room_done_t, &d);
    if (d.room == f->room)
      f->room = 0;
    return;
  }
  case GAME_TAG_REPLACED: f->replaced = true; return;
  case GAME_TAG_OUT_CLICKED: /* OPPONENT_CLICK (shared frame), then UPDATE */
    if (msg->len == 1 &&
        (msg->inline_data.bytes[0] == 1 || msg->inline_data.bytes[0] == 2))
      fake_note(f, f->g->opponent_click[msg->inline_data.bytes[0]]);
    if (msg->buf != NULL)
      fake_note(f, msg->buf);
    return;
  case GAME_TAG_OUT_MUST:
  case GAME_TAG_OUT_OVER:
  case GAME_TAG_OUT_DROP:
  case GAME_TAG_OUT_TICK:
    if (msg->buf != NULL) {
      uint32_t overs = fake_count(f, "GAME_OVER");
      fake_note(f, msg->buf);
      if (fake_count(f, "GAME_OVER") != overs)
        f->over_from = msg->from;
    }
    return;
  default: return;
  }
}

/* A fake client for player `subject` (f is borrowed by the actor), whose
 * mailbox takes `cap` messages and refuses more. */
static inline void fake_spawn_cap(rt_world_t *w, game_t *g, fake_client_t *f,
                                  const char *subject, uint32_t cap) {
  memset(f, 0, sizeof(*f));
  f->g = g;
  snprintf(f->who.subject, sizeof(f->who.subject), "%s", subject);
  snprintf(f->who.name, sizeof(f->who.name), "%s", subject);
  rt_actor_spec_t spec = {.name = "fake_client",
                          .behaviour = fake_behaviour,
                          .state = f,
                          .mailbox_cap = cap,
                          .overflow = RT_OVERFLOW_REJECT};
  cr_assert_eq(rt_spawn(w, &spec, &f->id), RT_OK);
}

static inline void fake_spawn(rt_world_t *w, game_t *g, fake_client_t *f,
                              const char *subject) {
  fake_spawn_cap(w, g, f, subject, 256);
}

static inline void fake_tell(rt_world_t *w, const fake_client_t *f,
                             uint16_t what) {
  rt_msg_t m = rt_msg_make(what, NULL, 0);
  cr_assert_eq(rt_send(w, f->id, &m), RT_PUSH_QUEUED);
}

/* Step the world until nothing is ready and no timer is due by `until`. */
static inline void fake_run(sim_world_t *sw, rt_time_ns until) {
  cr_assert_neq(sim_world_run(sw, until, 10000000u), SIM_RUN_TURNS);
}

#endif
