/* rt_err.h: error codes of the whole project.
 *
 * Functions return int: 0 on success, a negative RT_E* on an operating error
 * (queue full, peer gone, out of memory, bad input). The codes are already
 * negative: return and compare RT_EFULL as it is, never -RT_EFULL. One X-macro
 * yields the value, the name and the message, as libuv does. Programmer errors
 * are not returned: they are asserted (rt_assert.h).
 */
#ifndef RT_ERR_H
#define RT_ERR_H

#define RT_ERRNO_MAP(X)                                                        \
  X(EFULL, 1, "queue or mailbox full")                                         \
  X(ENOACTOR, 2, "no such actor (never existed or stopped)")                   \
  X(ENOMEM, 3, "out of memory")                                                \
  X(EINVAL, 4, "invalid argument")                                             \
  X(EOF, 5, "end of stream")                                                   \
  X(ERESET, 6, "connection reset")                                             \
  X(EPIPE, 7, "write to a closed stream")                                      \
  X(ELIMIT, 8, "a configured limit was reached")                               \
  X(ENOTFOUND, 9, "not found")                                                 \
  X(EIO, 10, "input/output error")                                             \
  X(EADDR, 11, "address unavailable or in use")                                \
  X(ECONNREFUSED, 12, "connection refused")                                    \
  X(EPROTO, 13, "protocol error")                                              \
  X(ETIMEDOUT, 14, "timed out")                                                \
  X(ENOTSUP, 15, "not supported by this world")

enum {
  RT_OK = 0,
#define RT_ERR_ENUM_(name, num, msg) RT_##name = -(num),
  RT_ERRNO_MAP(RT_ERR_ENUM_)
#undef RT_ERR_ENUM_
};

/* "RT_EFULL" etc.; "RT_E?" for an unknown code. Never NULL. */
const char *rt_err_name(int err);
/* A human-readable message. Never NULL. */
const char *rt_strerror(int err);

#endif
