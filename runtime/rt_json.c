/* rt_json.c: see rt_json.h for what is read and why. */
#define JSMN_STATIC /* jsmn's functions, static to this file */
#define JSMN_STRICT
#define JSMN_PARENT_LINKS /* as rt_json.h */
#include <jsmn.h>

#include "rt_json.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define NUMBER_MAX 63 /* cJSON reads at most 63 characters of a number */

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

/* A primitive's value as cJSON reads it; false: not one cJSON reads the
 * same way (the text goes to cJSON). */
static bool read_primitive(const char *s, size_t n, rt_json_value_t *out) {
  if (rt_json_is(s, n, "true") || rt_json_is(s, n, "false") ||
      rt_json_is(s, n, "null")) {
    out->kind = s[0] == 't'   ? RT_JSON_TRUE
                : s[0] == 'f' ? RT_JSON_FALSE
                              : RT_JSON_NULL;
    return true;
  }
  /* JSON's number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
  size_t i = 0;
  bool whole = true;
  if (i < n && s[i] == '-')
    i++;
  size_t int_from = i;
  while (i < n && is_digit(s[i]))
    i++;
  size_t digits = i - int_from;
  if (digits == 0 || (digits > 1 && s[int_from] == '0'))
    return false;
  if (i < n && s[i] == '.') {
    whole = false;
    size_t from = ++i;
    while (i < n && is_digit(s[i]))
      i++;
    if (i == from)
      return false;
  }
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    whole = false;
    i++;
    if (i < n && (s[i] == '+' || s[i] == '-'))
      i++;
    size_t from = i;
    while (i < n && is_digit(s[i]))
      i++;
    if (i == from)
      return false;
  }
  if (i != n || n > NUMBER_MAX)
    return false;
  out->kind = RT_JSON_NUMBER;
  if (whole && digits <= 15 && !(s[0] == '-' && s[int_from] == '0')) {
    int64_t v = 0;
    for (size_t d = int_from; d < n; d++)
      v = v * 10 + (s[d] - '0');
    out->num = (double)(s[0] == '-' ? -v : v);
    return true;
  }
  char text[NUMBER_MAX + 1];
  memcpy(text, s, n);
  text[n] = '\0';
  out->num = strtod(text, NULL);
  return true;
}

/* A token's text in the source, with a string's quotes. */
static int tok_from(const jsmntok_t *t) {
  return t->type == JSMN_STRING ? t->start - 1 : t->start;
}
static int tok_to(const jsmntok_t *t) {
  return t->type == JSMN_STRING ? t->end + 1 : t->end;
}

/* js[from, to) is JSON whitespace around at most one `sep` (exactly one
 * when sep is not '\0'). */
static bool gap_is(const char *js, int from, int to, char sep) {
  bool seen = sep == '\0';
  for (int i = from; i < to; i++) {
    char c = js[i];
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r')
      continue;
    if (c != sep || seen)
      return false;
    seen = true;
  }
  return seen;
}

/* The value at token *i, and all inside it, is JSON as cJSON reads it:
 * on true *i is the token after it. (A string or primitive followed by a
 * colon, which jsmn gives a size, fails the gap after it.) */
static bool check_value(rt_json_t *j, int *i) {
  if (*i >= j->n)
    return false;
  const jsmntok_t *v = &j->t[(*i)++];
  if (v->type == JSMN_STRING)
    return true;
  if (v->type == JSMN_PRIMITIVE) {
    rt_json_value_t p = {.kind = RT_JSON_NONE};
    if (!read_primitive(j->js + v->start, (size_t)(v->end - v->start), &p))
      return false;
    j->kind[*i - 1] = (uint8_t)p.kind;
    j->num[*i - 1] = p.num;
    return true;
  }
  bool object = v->type == JSMN_OBJECT;
  int at = v->start + 1; /* after the opening bracket */
  for (int m = 0; m < v->size; m++) {
    if (*i >= j->n)
      return false;
    const jsmntok_t *first = &j->t[*i];
    if (!gap_is(j->js, at, tok_from(first), m == 0 ? '\0' : ','))
      return false;
    if (object) {
      if (first->type != JSMN_STRING || first->size != 1)
        return false;
      (*i)++;
      if (*i >= j->n || !gap_is(j->js, tok_to(first), tok_from(&j->t[*i]), ':'))
        return false;
    }
    const jsmntok_t *value = &j->t[*i];
    if (!check_value(j, i))
      return false;
    at = tok_to(value);
  }
  return gap_is(j->js, at, v->end - 1, '\0');
}

/* The index of the token after the value at token i (tokens are in
 * document order, a container's inside right after it). */
static int skip_value(const rt_json_t *j, int i) {
  int end = j->t[i].end;
  int k = i + 1;
  while (k < j->n && j->t[k].start < end)
    k++;
  return k;
}

bool rt_json_read(rt_json_t *j, const char *js, size_t len,
                  rt_json_rest_t rest) {
  j->js = js;
  j->n = 0;
  if (len > INT32_MAX || memchr(js, '\\', len) != NULL ||
      memchr(js, '\0', len) != NULL)
    return false;
  jsmn_parser parser;
  jsmn_init(&parser);
  int n = jsmn_parse(&parser, js, len, j->t, RT_JSON_TOKENS);
  /* jsmn passes over a comma or colon outside every container. */
  if (n < 1 || j->t[0].type != JSMN_OBJECT ||
      !gap_is(js, 0, j->t[0].start, '\0'))
    return false;
  j->n = n;
  j->n = skip_value(j, 0); /* the object; what jsmn read after it is not */
  if (rest == RT_JSON_REST_SPACE && !gap_is(js, j->t[0].end, (int)len, '\0'))
    return false;
  int at = 0;
  return check_value(j, &at) && at == j->n;
}

rt_json_value_t rt_json_value(const rt_json_t *j, int m) {
  int i = m + 1;
  const jsmntok_t *t = &j->t[i];
  const char *s = j->js + t->start;
  size_t n = (size_t)(t->end - t->start);
  rt_json_value_t v = {.kind = RT_JSON_OBJECT, .at = i};
  switch (t->type) {
  case JSMN_STRING:
    v.kind = RT_JSON_STRING;
    v.str = s;
    v.len = n;
    break;
  case JSMN_PRIMITIVE:
    v.kind = (rt_json_kind_t)j->kind[i];
    v.num = j->num[i];
    break;
  case JSMN_ARRAY: v.kind = RT_JSON_ARRAY; break;
  default: break;
  }
  return v;
}

rt_json_value_t rt_json_root(const rt_json_t *j) {
  (void)j;
  return (rt_json_value_t){.kind = RT_JSON_OBJECT, .at = 0};
}

int rt_json_first(const rt_json_t *j, const rt_json_value_t *obj) {
  if (obj->kind != RT_JSON_OBJECT || j->t[obj->at].size == 0)
    return -1;
  return obj->at + 1;
}

int rt_json_next(const rt_json_t *j, const rt_json_value_t *obj, int m) {
  int next = skip_value(j, m + 1);
  return next < j->n && j->t[next].start < j->t[obj->at].end ? next : -1;
}

const char *rt_json_name(const rt_json_t *j, int m, size_t *len) {
  *len = (size_t)(j->t[m].end - j->t[m].start);
  return j->js + j->t[m].start;
}

rt_json_value_t rt_json_get(const rt_json_t *j, const rt_json_value_t *obj,
                            const char *name) {
  size_t want = strlen(name); /* once, not once per member */
  for (int m = rt_json_first(j, obj); m >= 0; m = rt_json_next(j, obj, m)) {
    size_t len;
    const char *s = rt_json_name(j, m, &len);
    if (len == want && memcmp(s, name, len) == 0)
      return rt_json_value(j, m);
  }
  return (rt_json_value_t){.kind = RT_JSON_NONE};
}
