/* test_server.c: the server's options (tools/src/server.h), as the live
 * server parses them and writes them into a trace for the replay.
 *
 * --cors-origin is tested at, below and above its limits: the number of
 * origins (NET_CORS_ORIGINS_MAX), the length of one (NET_ORIGIN_LEN_MAX),
 * and its form (net_server_origin_valid). What the flag makes the server
 * answer is tested in tests/net/test_net_server_routes.c (CORS) and
 * tests/game/test_game_sim.c (through server_start).
 *
 * Every loop runs over a fixed table or at most ARGS_MAX arguments.
 */
#include "server.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#define ARGS_MAX 64u

typedef struct args {
  char *argv[ARGS_MAX];
  int argc;
  char store[ARGS_MAX][NET_ORIGIN_LEN_MAX + 16];
} args_t;

static void args_init(args_t *a) {
  memset(a, 0, sizeof(*a));
  a->argv[a->argc++] = "overcookied";
}

static void args_add(args_t *a, const char *arg) {
  cr_assert_lt((uint32_t)a->argc, ARGS_MAX);
  cr_assert_lt(strlen(arg), sizeof(a->store[0]));
  snprintf(a->store[a->argc], sizeof(a->store[0]), "%s", arg);
  a->argv[a->argc] = a->store[a->argc];
  a->argc++;
}

static int parse(args_t *a, server_options_t *o) {
  return server_options_parse(a->argc, a->argv, 1, o);
}

/* "http://" and letters: an origin of exactly len characters. */
static void origin_of_len(char *out, size_t len) {
  cr_assert_geq(len, 8u);
  memcpy(out, "http://", 7);
  memset(out + 7, 'a', len - 7);
  out[len] = '\0';
}

Test(server, no_cors_origin_by_default) {
  server_options_t o;
  server_options_default(&o);
  cr_assert_eq(o.cors_origins_len, 0);
  args_t a;
  args_init(&a);
  cr_assert_eq(parse(&a, &o), 0);
  cr_assert_eq(o.cors_origins_len, 0);
}

Test(server, cors_origin_repeats_up_to_8_and_the_9th_is_refused) {
  cr_assert_eq(NET_CORS_ORIGINS_MAX, 8u);
  const uint32_t counts[] = {NET_CORS_ORIGINS_MAX - 1, NET_CORS_ORIGINS_MAX,
                             NET_CORS_ORIGINS_MAX + 1};
  for (size_t k = 0; k < sizeof(counts) / sizeof(counts[0]); k++) {
    args_t a;
    args_init(&a);
    for (uint32_t i = 0; i < counts[k]; i++) {
      char origin[64];
      snprintf(origin, sizeof(origin), "https://site%u.example", i);
      args_add(&a, "--cors-origin");
      args_add(&a, origin);
    }
    server_options_t o;
    bool ok = counts[k] <= NET_CORS_ORIGINS_MAX;
    cr_assert_eq(parse(&a, &o), ok ? 0 : -1, "%u origins", counts[k]);
    if (!ok)
      continue;
    cr_assert_eq(o.cors_origins_len, counts[k]);
    for (uint32_t i = 0; i < counts[k]; i++) {
      char origin[64];
      snprintf(origin, sizeof(origin), "https://site%u.example", i);
      cr_assert_str_eq(o.cors_origins[i], origin, "in the order given");
    }
  }
}

Test(server, cors_origin_is_at_most_255_characters) {
  const size_t lens[] = {NET_ORIGIN_LEN_MAX - 2, NET_ORIGIN_LEN_MAX - 1,
                         NET_ORIGIN_LEN_MAX};
  for (size_t k = 0; k < sizeof(lens) / sizeof(lens[0]); k++) {
    char origin[NET_ORIGIN_LEN_MAX + 1];
    origin_of_len(origin, lens[k]);
    args_t a;
    args_init(&a);
    args_add(&a, "--cors-origin");
    args_add(&a, origin);
    server_options_t o;
    bool ok = lens[k] < NET_ORIGIN_LEN_MAX;
    cr_assert_eq(parse(&a, &o), ok ? 0 : -1, "length %zu", lens[k]);
  }
}

/* A value no browser would send as its Origin could never match: the
 * operator hears of it at start. Empty and missing values too. */
Test(server, cors_origin_must_be_written_as_a_browser_writes_it) {
  const char *refused[] = {"",
                           "http://localhost:3000/",
                           "https://Play.example",
                           "play.example",
                           "null",
                           "*",
                           "https://play.example:443",
                           "--echo"};
  for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
    args_t a;
    args_init(&a);
    args_add(&a, "--cors-origin");
    args_add(&a, refused[i]);
    server_options_t o;
    cr_assert_eq(parse(&a, &o), -1, "'%s'", refused[i]);
  }
  args_t a;
  args_init(&a);
  args_add(&a, "--cors-origin");
  server_options_t o;
  cr_assert_eq(parse(&a, &o), -1, "a flag without its value");
}

/* Split a formatted flag list on every '\n' into a's arguments. */
static void split_lines(char *text, args_t *a) {
  args_init(a);
  char *line = text;
  for (;;) {
    char *nl = strchr(line, '\n');
    if (nl != NULL)
      *nl = '\0';
    args_add(a, line);
    if (nl == NULL)
      return;
    line = nl + 1;
  }
}

/* A replay builds the server from the flags its trace holds: the CORS
 * origins are among them (they change the bytes of answers), apart from
 * the WebSocket's allowed origins, and read back the same. */
Test(server, cors_origins_go_into_a_trace_and_read_back_the_same) {
  args_t a;
  args_init(&a);
  const char *flags[] = {"--static",         "/srv/web",
                         "--allowed-origin", "http://localhost:3000",
                         "--cors-origin",    "http://localhost:3000",
                         "--cors-origin",    "https://play.example"};
  for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
    args_add(&a, flags[i]);
  server_options_t o;
  cr_assert_eq(parse(&a, &o), 0);
  char text[SERVER_CONFIG_MAX];
  cr_assert_eq(server_options_format(&o, text, sizeof(text)), 0);
  cr_assert_not_null(strstr(text, "\n--cors-origin\nhttp://localhost:3000\n"
                                  "--cors-origin\nhttps://play.example"),
                     "%s", text);
  args_t back;
  split_lines(text, &back);
  server_options_t r;
  cr_assert_eq(parse(&back, &r), 0, "%s", text);
  cr_assert_eq(r.cors_origins_len, 2);
  cr_assert_str_eq(r.cors_origins[0], "http://localhost:3000");
  cr_assert_str_eq(r.cors_origins[1], "https://play.example");
  cr_assert_eq(r.origins_len, 1);
  cr_assert_str_eq(r.origins[0], "http://localhost:3000");
  /* None given, none written. */
  server_options_default(&o);
  o.static_dir = "/srv/web";
  cr_assert_eq(server_options_format(&o, text, sizeof(text)), 0);
  cr_assert_null(strstr(text, "--cors-origin"));
}

/* Eight CORS origins of 255 characters fit in a trace's header; with
 * eight such WebSocket origins beside them they do not, and the list is
 * refused whole (overcookied then refuses to record), never cut into a
 * list that would replay as another server. */
Test(server, the_most_origins_of_both_kinds_are_refused_whole_by_a_trace) {
  args_t a;
  args_init(&a);
  args_add(&a, "--static");
  args_add(&a, "/srv/web");
  for (uint32_t i = 0; i < NET_CORS_ORIGINS_MAX; i++) {
    char origin[NET_ORIGIN_LEN_MAX];
    origin_of_len(origin, NET_ORIGIN_LEN_MAX - 1);
    origin[7] = (char)('a' + i); /* distinct */
    args_add(&a, "--cors-origin");
    args_add(&a, origin);
  }
  server_options_t o;
  cr_assert_eq(parse(&a, &o), 0);
  char text[SERVER_CONFIG_MAX];
  cr_assert_eq(server_options_format(&o, text, sizeof(text)), 0);
  for (uint32_t i = 0; i < NET_ORIGINS_MAX; i++) {
    char origin[NET_ORIGIN_LEN_MAX];
    origin_of_len(origin, NET_ORIGIN_LEN_MAX - 1);
    origin[7] = (char)('a' + i);
    args_add(&a, "--allowed-origin");
    args_add(&a, origin);
  }
  cr_assert_eq(parse(&a, &o), 0);
  cr_assert_eq(server_options_format(&o, text, sizeof(text)), RT_ELIMIT);
  cr_assert_str_eq(text, "");
}

/* The cluster's flags go into a trace too: an IPv6 Redis host is written
 * in brackets and reads back the same, and a password is written as
 * SERVER_REDIS_PASSWORD_REDACTED, never itself. */
Test(server, a_redis_url_goes_into_a_trace_with_no_password) {
  const char *urls[][2] = {
      {"redis://[::1]:6380", "\n--redis\nredis://[::1]:6380\n"},
      {"redis://:s3cret@[fd00::20]:6379",
       "\n--redis\nredis://:" SERVER_REDIS_PASSWORD_REDACTED
       "@[fd00::20]:6379\n"},
      {"redis://u:s3cret@10.0.0.20",
       "\n--redis\nredis://u:" SERVER_REDIS_PASSWORD_REDACTED
       "@10.0.0.20:6379\n"},
  };
  for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
    args_t a;
    args_init(&a);
    args_add(&a, "--static");
    args_add(&a, "/srv/web");
    args_add(&a, "--redis");
    args_add(&a, urls[i][0]);
    server_options_t o;
    cr_assert_eq(parse(&a, &o), 0, "%s", urls[i][0]);
    char text[SERVER_CONFIG_MAX];
    cr_assert_eq(server_options_format(&o, text, sizeof(text)), 0);
    cr_assert_not_null(strstr(text, urls[i][1]), "%s", text);
    cr_assert_null(strstr(text, "s3cret"), "%s", text);
    args_t back;
    split_lines(text, &back);
    server_options_t r;
    cr_assert_eq(parse(&back, &r), 0, "%s", text);
    game_cluster_config_t c1, c2;
    char why[128];
    cr_assert_eq(server_cluster_config(&o, &c1, why, sizeof(why)), 0, "%s",
                 why);
    cr_assert_eq(server_cluster_config(&r, &c2, why, sizeof(why)), 0, "%s",
                 why);
    cr_assert_str_eq(c1.host, c2.host);
    cr_assert_eq(c1.port, c2.port);
  }
}

/* With no password in the URL, OC_REDIS_PASSWORD is the password, up to
 * the AUTH buffer's length; one byte more is refused with a sentence, not
 * cut; a password in the URL wins over it. */
Test(server, the_redis_password_may_come_from_the_environment) {
  char pw[GAME_CLUSTER_AUTH_MAX + 1];
  const char *plain[] = {"--static", "/srv/web", "--redis",
                         "redis://10.0.0.20"};
  const char *given[] = {"--static", "/srv/web", "--redis",
                         "redis://:url-pw@10.0.0.20"};
  for (int k = 0; k < 3; k++) {
    /* k = 0: one byte short of the buffer; 1: the buffer's length; 2: the
     * URL's password beside the environment's. */
    size_t len = k == 1 ? GAME_CLUSTER_AUTH_MAX : GAME_CLUSTER_AUTH_MAX - 1;
    memset(pw, 'p', len);
    pw[len] = '\0';
    cr_assert_eq(setenv("OC_REDIS_PASSWORD", pw, 1), 0);
    args_t a;
    args_init(&a);
    const char **flags = k == 2 ? given : plain;
    for (int i = 0; i < 4; i++)
      args_add(&a, flags[i]);
    server_options_t o;
    cr_assert_eq(parse(&a, &o), 0);
    game_cluster_config_t c;
    char why[128] = "";
    int rc = server_cluster_config(&o, &c, why, sizeof(why));
    if (k == 1) {
      cr_assert_eq(rc, RT_EINVAL, "a %zu-byte password was taken", strlen(pw));
      cr_assert_not_null(strstr(why, "OC_REDIS_PASSWORD"), "%s", why);
      cr_assert_null(strstr(why, "ppp"), "%s", why);
    } else {
      cr_assert_eq(rc, 0, "%s", why);
      cr_assert_str_eq(c.password, k == 2 ? "url-pw" : pw);
    }
  }
  unsetenv("OC_REDIS_PASSWORD");
}
