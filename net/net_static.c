#include "net_static.h"

#include "rt_err.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

struct net_static {
  net_static_file_t files[NET_STATIC_FILES_MAX];
  uint32_t count;
  uint64_t total;
};

/* The MIME type for a file name, by extension. */
static const char *content_type(const char *name) {
  static const struct {
    char ext[14];
    char type[32];
  } types[] = {
      {".html", "text/html; charset=utf-8"},
      {".htm", "text/html; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},
      {".mjs", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".json", "application/json"},
      {".map", "application/json"},
      {".svg", "image/svg+xml"},
      {".png", "image/png"},
      {".jpg", "image/jpeg"},
      {".jpeg", "image/jpeg"},
      {".gif", "image/gif"},
      {".webp", "image/webp"},
      {".ico", "image/x-icon"},
      {".woff2", "font/woff2"},
      {".woff", "font/woff"},
      {".txt", "text/plain; charset=utf-8"},
      {".wasm", "application/wasm"},
      {".webmanifest", "application/manifest+json"},
  };
  const char *dot = strrchr(name, '.');
  if (dot != NULL)
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
      if (strcasecmp(dot, types[i].ext) == 0)
        return types[i].type;
  return "application/octet-stream";
}

static int load_file(net_static_t *st, const char *fs_path, const char *url,
                     size_t size) {
  if (st->count == NET_STATIC_FILES_MAX || size > NET_STATIC_FILE_MAX ||
      st->total + size > NET_STATIC_TOTAL_MAX)
    return RT_ELIMIT;
  if (strlen(url) >= NET_STATIC_PATH_MAX)
    return RT_ELIMIT;
  int fd = open(fs_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0)
    return RT_EIO;
  rt_buf_t *body = rt_buf_create(size);
  int err = body == NULL ? RT_ENOMEM : RT_OK;
  size_t got = 0;
  while (err == RT_OK && got < size) {
    ssize_t n = read(fd, body->data + got, size - got);
    if (n <= 0)
      err = RT_EIO;
    else
      got += (size_t)n;
  }
  close(fd);
  if (err < 0) {
    rt_buf_unref(body);
    return err;
  }
  net_static_file_t *f = &st->files[st->count++];
  snprintf(f->path, sizeof(f->path), "%s", url);
  f->content_type = content_type(url);
  /* No content hashes in the names: pages, scripts and styles must match
   * each other after a deploy, so they revalidate; images may be cached
   * briefly. */
  bool code = strstr(f->content_type, "text/") != NULL ||
              strstr(f->content_type, "json") != NULL;
  f->cache_control = code ? "no-cache" : "public, max-age=300";
  f->body = body;
  st->total += size;
  return RT_OK;
}

static int walk(net_static_t *st, const char *dir, const char *url_prefix,
                int depth) {
  if (depth > NET_STATIC_DEPTH_MAX)
    return RT_ELIMIT;
  /* Sorted by name, so the table's order never depends on the file system. */
  struct dirent **names = NULL;
  int n = scandir(dir, &names, NULL, alphasort);
  if (n < 0)
    return RT_EIO;
  int err = RT_OK;
  for (int i = 0; i < n; i++) {
    const char *name = names[i]->d_name;
    if (err == RT_OK && name[0] != '.') {
      char fs_path[1024], url[NET_STATIC_PATH_MAX * 2];
      snprintf(fs_path, sizeof(fs_path), "%s/%s", dir, name);
      snprintf(url, sizeof(url), "%s/%s", url_prefix, name);
      struct stat sb;
      if (lstat(fs_path, &sb) == 0) {
        if (S_ISDIR(sb.st_mode))
          err = walk(st, fs_path, url, depth + 1);
        else if (S_ISREG(sb.st_mode))
          err = load_file(st, fs_path, url, (size_t)sb.st_size);
      }
    }
    free(names[i]);
  }
  free(names);
  return err;
}

int net_static_load(const char *dir, net_static_t **out) {
  net_static_t *st = calloc(1, sizeof(*st));
  if (st == NULL)
    return RT_ENOMEM;
  struct stat sb;
  if (dir != NULL && stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode)) {
    int err = walk(st, dir, "", 0);
    if (err < 0) {
      net_static_free(st);
      return err;
    }
  }
  *out = st;
  return RT_OK;
}

void net_static_free(net_static_t *st) {
  if (st == NULL)
    return;
  for (uint32_t i = 0; i < st->count; i++)
    rt_buf_unref(st->files[i].body);
  free(st);
}

const net_static_file_t *net_static_find(const net_static_t *st,
                                         const char *path) {
  if (st == NULL)
    return NULL;
  if (strcmp(path, "/") == 0)
    path = "/index.html";
  for (uint32_t i = 0; i < st->count; i++)
    if (strcmp(st->files[i].path, path) == 0)
      return &st->files[i];
  return NULL;
}

uint32_t net_static_count(const net_static_t *st) {
  return st != NULL ? st->count : 0;
}
