/* net_static.h: the browser client's files, loaded once, served from memory.
 *
 * At start the server reads a directory (game/web) into a table of
 * immutable buffers; requests are answered from the table by exact path, so
 * no request ever touches the file system: path traversal has nothing to
 * traverse, and a simulated run serves the same bytes as a live one.
 */
#ifndef NET_STATIC_H
#define NET_STATIC_H

#include "rt_buf.h"

#include <stdint.h>

#define NET_STATIC_FILES_MAX 512u
#define NET_STATIC_FILE_MAX (4u * 1024 * 1024)
#define NET_STATIC_TOTAL_MAX (32u * 1024 * 1024)
#define NET_STATIC_DEPTH_MAX 8
#define NET_STATIC_PATH_MAX 256u

typedef struct net_static_file {
  char path[NET_STATIC_PATH_MAX]; /* "/index.html" */
  const char *content_type;       /* static string */
  const char *cache_control;      /* static string */
  rt_buf_t *body;                 /* one reference, shared by responses */
} net_static_file_t;

typedef struct net_static net_static_t;

/* Load every regular file under dir (no dotfiles, no symlinks), within the
 * limits above. *out is an empty table when dir does not exist. */
int net_static_load(const char *dir, net_static_t **out);
void net_static_free(net_static_t *st);

/* The file for a decoded request path ("/" means "/index.html"), or NULL. */
const net_static_file_t *net_static_find(const net_static_t *st,
                                         const char *path);
uint32_t net_static_count(const net_static_t *st);

#endif
