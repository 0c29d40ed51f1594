/* net_trace.c: the trace file format (spec in net_trace.h): the checks,
 * the payload fields, the type names and the header's bytes, which the
 * writer (net_trace_writer.c) and the reader (net_trace_reader.c) share.
 */
#include "net_trace.h"

#include "net_trace_int.h"
#include "rt_assert.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ---- Checks -------------------------------------------------------------- */

/* CRC-32C, reflected polynomial 0x82f63b78, one table lookup per byte
 * (about 1 GB/s: far more than a recording needs, and off the event loop).
 * tests/net/test_net_trace.c checks it against the bitwise definition. */
static const uint32_t crc32c_table[256] = {
    0x00000000u, 0xf26b8303u, 0xe13b70f7u, 0x1350f3f4u, 0xc79a971fu,
    0x35f1141cu, 0x26a1e7e8u, 0xd4ca64ebu, 0x8ad958cfu, 0x78b2dbccu,
    0x6be22838u, 0x9989ab3bu, 0x4d43cfd0u, 0xbf284cd3u, 0xac78bf27u,
    0x5e133c24u, 0x105ec76fu, 0xe235446cu, 0xf165b798u, 0x030e349bu,
    0xd7c45070u, 0x25afd373u, 0x36ff2087u, 0xc494a384u, 0x9a879fa0u,
    0x68ec1ca3u, 0x7bbcef57u, 0x89d76c54u, 0x5d1d08bfu, 0xaf768bbcu,
    0xbc267848u, 0x4e4dfb4bu, 0x20bd8edeu, 0xd2d60dddu, 0xc186fe29u,
    0x33ed7d2au, 0xe72719c1u, 0x154c9ac2u, 0x061c6936u, 0xf477ea35u,
    0xaa64d611u, 0x580f5512u, 0x4b5fa6e6u, 0xb93425e5u, 0x6dfe410eu,
    0x9f95c20du, 0x8cc531f9u, 0x7eaeb2fau, 0x30e349b1u, 0xc288cab2u,
    0xd1d83946u, 0x23b3ba45u, 0xf779deaeu, 0x05125dadu, 0x1642ae59u,
    0xe4292d5au, 0xba3a117eu, 0x4851927du, 0x5b016189u, 0xa96ae28au,
    0x7da08661u, 0x8fcb0562u, 0x9c9bf696u, 0x6ef07595u, 0x417b1dbcu,
    0xb3109ebfu, 0xa0406d4bu, 0x522bee48u, 0x86e18aa3u, 0x748a09a0u,
    0x67dafa54u, 0x95b17957u, 0xcba24573u, 0x39c9c670u, 0x2a993584u,
    0xd8f2b687u, 0x0c38d26cu, 0xfe53516fu, 0xed03a29bu, 0x1f682198u,
    0x5125dad3u, 0xa34e59d0u, 0xb01eaa24u, 0x42752927u, 0x96bf4dccu,
    0x64d4cecfu, 0x77843d3bu, 0x85efbe38u, 0xdbfc821cu, 0x2997011fu,
    0x3ac7f2ebu, 0xc8ac71e8u, 0x1c661503u, 0xee0d9600u, 0xfd5d65f4u,
    0x0f36e6f7u, 0x61c69362u, 0x93ad1061u, 0x80fde395u, 0x72966096u,
    0xa65c047du, 0x5437877eu, 0x4767748au, 0xb50cf789u, 0xeb1fcbadu,
    0x197448aeu, 0x0a24bb5au, 0xf84f3859u, 0x2c855cb2u, 0xdeeedfb1u,
    0xcdbe2c45u, 0x3fd5af46u, 0x7198540du, 0x83f3d70eu, 0x90a324fau,
    0x62c8a7f9u, 0xb602c312u, 0x44694011u, 0x5739b3e5u, 0xa55230e6u,
    0xfb410cc2u, 0x092a8fc1u, 0x1a7a7c35u, 0xe811ff36u, 0x3cdb9bddu,
    0xceb018deu, 0xdde0eb2au, 0x2f8b6829u, 0x82f63b78u, 0x709db87bu,
    0x63cd4b8fu, 0x91a6c88cu, 0x456cac67u, 0xb7072f64u, 0xa457dc90u,
    0x563c5f93u, 0x082f63b7u, 0xfa44e0b4u, 0xe9141340u, 0x1b7f9043u,
    0xcfb5f4a8u, 0x3dde77abu, 0x2e8e845fu, 0xdce5075cu, 0x92a8fc17u,
    0x60c37f14u, 0x73938ce0u, 0x81f80fe3u, 0x55326b08u, 0xa759e80bu,
    0xb4091bffu, 0x466298fcu, 0x1871a4d8u, 0xea1a27dbu, 0xf94ad42fu,
    0x0b21572cu, 0xdfeb33c7u, 0x2d80b0c4u, 0x3ed04330u, 0xccbbc033u,
    0xa24bb5a6u, 0x502036a5u, 0x4370c551u, 0xb11b4652u, 0x65d122b9u,
    0x97baa1bau, 0x84ea524eu, 0x7681d14du, 0x2892ed69u, 0xdaf96e6au,
    0xc9a99d9eu, 0x3bc21e9du, 0xef087a76u, 0x1d63f975u, 0x0e330a81u,
    0xfc588982u, 0xb21572c9u, 0x407ef1cau, 0x532e023eu, 0xa145813du,
    0x758fe5d6u, 0x87e466d5u, 0x94b49521u, 0x66df1622u, 0x38cc2a06u,
    0xcaa7a905u, 0xd9f75af1u, 0x2b9cd9f2u, 0xff56bd19u, 0x0d3d3e1au,
    0x1e6dcdeeu, 0xec064eedu, 0xc38d26c4u, 0x31e6a5c7u, 0x22b65633u,
    0xd0ddd530u, 0x0417b1dbu, 0xf67c32d8u, 0xe52cc12cu, 0x1747422fu,
    0x49547e0bu, 0xbb3ffd08u, 0xa86f0efcu, 0x5a048dffu, 0x8ecee914u,
    0x7ca56a17u, 0x6ff599e3u, 0x9d9e1ae0u, 0xd3d3e1abu, 0x21b862a8u,
    0x32e8915cu, 0xc083125fu, 0x144976b4u, 0xe622f5b7u, 0xf5720643u,
    0x07198540u, 0x590ab964u, 0xab613a67u, 0xb831c993u, 0x4a5a4a90u,
    0x9e902e7bu, 0x6cfbad78u, 0x7fab5e8cu, 0x8dc0dd8fu, 0xe330a81au,
    0x115b2b19u, 0x020bd8edu, 0xf0605beeu, 0x24aa3f05u, 0xd6c1bc06u,
    0xc5914ff2u, 0x37faccf1u, 0x69e9f0d5u, 0x9b8273d6u, 0x88d28022u,
    0x7ab90321u, 0xae7367cau, 0x5c18e4c9u, 0x4f48173du, 0xbd23943eu,
    0xf36e6f75u, 0x0105ec76u, 0x12551f82u, 0xe03e9c81u, 0x34f4f86au,
    0xc69f7b69u, 0xd5cf889du, 0x27a40b9eu, 0x79b737bau, 0x8bdcb4b9u,
    0x988c474du, 0x6ae7c44eu, 0xbe2da0a5u, 0x4c4623a6u, 0x5f16d052u,
    0xad7d5351u,
};

/* x86-64 has CRC-32C in hardware (SSE4.2's crc32 instruction computes
 * exactly this polynomial, bit-reflected like the table): eight bytes per
 * instruction instead of one table step per byte. Recording calls this for
 * every record on the event loop, so it matters there. Chosen at run time;
 * the table serves other CPUs. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define CRC32C_HW 1
__attribute__((target("sse4.2"))) static uint32_t
crc32c_hw(uint32_t crc, const uint8_t *b, size_t n) {
  uint64_t c = crc;
  for (; n >= 8; n -= 8, b += 8) {
    uint64_t w;
    memcpy(&w, b, 8);
    c = __builtin_ia32_crc32di(c, w);
  }
  uint32_t c32 = (uint32_t)c;
  for (; n > 0; n--, b++)
    c32 = __builtin_ia32_crc32qi(c32, *b);
  return c32;
}
#endif

uint32_t net_trace_crc32c(uint32_t crc, const void *p, size_t n) {
  const uint8_t *b = p;
  crc = ~crc;
#ifdef CRC32C_HW
  if (__builtin_cpu_supports("sse4.2"))
    return ~crc32c_hw(crc, b, n);
#endif
  for (size_t i = 0; i < n; i++)
    crc = crc32c_table[(crc ^ b[i]) & 0xffu] ^ (crc >> 8);
  return ~crc;
}

/* CRC-8, polynomial x^8 + x^2 + x + 1, over a record's 4 head bytes. Any
 * generator of degree 8 with a constant term catches every burst of at most
 * 8 bits, so any one damaged head byte (the check included) is caught. The
 * initial 0xff makes an all-zero head fail. Bitwise: 32 steps per record. */
uint8_t net_trace__head_check(const uint8_t *head) {
  uint8_t crc = 0xffu;
  for (size_t i = 0; i < 4; i++) {
    crc ^= head[i];
    for (int bit = 0; bit < 8; bit++)
      crc = (uint8_t)((crc & 0x80u) ? ((unsigned)crc << 1) ^ 0x07u
                                    : (unsigned)crc << 1);
  }
  return crc;
}

/* ---- Names --------------------------------------------------------------- */

const char *net_trace_type_name(uint8_t type) {
  switch (type) {
  case NET_TRACE_T_END: return "END";
  case NET_TRACE_T_NEXT_FILE: return "NEXT_FILE";
  case NET_TRACE_T_LOST: return "LOST";
  case NET_TRACE_T_TIME: return "TIME";
  case NET_TRACE_T_PASS: return "PASS";
  case NET_TRACE_T_ACCEPT: return "ACCEPT";
  case NET_TRACE_T_READ: return "READ";
  case NET_TRACE_T_WRITE: return "WRITE";
  case NET_TRACE_T_CLOSE: return "CLOSE";
  case NET_TRACE_T_STREAM_EVENT: return "STREAM_EVENT";
  case NET_TRACE_T_EXTERNAL: return "EXTERNAL";
  case NET_TRACE_T_BACKLOG: return "BACKLOG";
  case NET_TRACE_T_CONTROL: return "CONTROL";
  case NET_TRACE_T_CONNECT: return "CONNECT";
  case NET_TRACE_T_CHECKPOINT: return "CHECKPOINT";
  case NET_TRACE_T_SHUTDOWN: return "SHUTDOWN";
  default: return "?";
  }
}

/* ---- Payload fields ------------------------------------------------------ */

void net_trace_enc_init(net_trace_enc_t *e, void *buf, size_t cap) {
  RT_ASSERT(e != NULL);
  RT_ASSERT(buf != NULL || cap == 0);
  e->buf = buf;
  e->cap = cap;
  e->len = 0;
  e->overflow = false;
}

/* Room for n more bytes, or the encoder is marked overflowed (sticky). */
static bool enc_room(net_trace_enc_t *e, size_t n) {
  if (!e->overflow && e->cap - e->len >= n)
    return true;
  e->overflow = true;
  return false;
}

/* The varint of v into p (at least NET_TRACE_VARINT_MAX bytes): its length. */
static size_t varint_encode(uint8_t *p, uint64_t v) {
  size_t n = 0;
  while (v >= 0x80u) {
    p[n++] = (uint8_t)(v | 0x80u);
    v >>= 7;
  }
  p[n++] = (uint8_t)v;
  return n;
}

void net_trace_put_u64(net_trace_enc_t *e, uint64_t v) {
  RT_ASSERT(e != NULL);
  uint8_t tmp[NET_TRACE_VARINT_MAX];
  size_t n = varint_encode(tmp, v);
  if (enc_room(e, n)) {
    memcpy(e->buf + e->len, tmp, n);
    e->len += n;
  }
}

void net_trace_put_i64(net_trace_enc_t *e, int64_t v) {
  /* Zigzag: small magnitudes of either sign stay short. */
  uint64_t u = (uint64_t)v;
  net_trace_put_u64(e, (u << 1) ^ (0 - (u >> 63)));
}

void net_trace_put_fixed64(net_trace_enc_t *e, uint64_t v) {
  RT_ASSERT(e != NULL);
  if (enc_room(e, 8)) {
    net_trace__put_le(e->buf + e->len, v, 8);
    e->len += 8;
  }
}

void net_trace_put_bytes(net_trace_enc_t *e, const void *p, size_t n) {
  RT_ASSERT(e != NULL);
  RT_ASSERT(p != NULL || n == 0);
  net_trace_put_u64(e, n);
  if (enc_room(e, n) && n > 0) {
    memcpy(e->buf + e->len, p, n);
    e->len += n;
  }
}

int net_trace_enc_finish(const net_trace_enc_t *e) {
  RT_ASSERT(e != NULL);
  return e->overflow ? RT_ELIMIT : 0;
}

void net_trace_dec_init(net_trace_dec_t *d, const void *p, size_t len) {
  RT_ASSERT(d != NULL);
  RT_ASSERT(p != NULL || len == 0);
  d->p = p;
  d->len = len;
  d->pos = 0;
  d->err = 0;
}

/* Decode a varint at p[0, len): its length, or 0 when it runs off the end,
 * is longer than 10 bytes, overflows 64 bits or is not the shortest form
 * (one value, one encoding: a payload can be compared byte for byte). */
static size_t varint_decode(const uint8_t *p, size_t len, uint64_t *out) {
  uint64_t v = 0;
  for (size_t i = 0; i < len && i < NET_TRACE_VARINT_MAX; i++) {
    uint64_t b = p[i];
    if (i == NET_TRACE_VARINT_MAX - 1 && b > 1)
      return 0; /* bits past 64 */
    v |= (b & 0x7fu) << (7 * i);
    if ((b & 0x80u) == 0) {
      if (i > 0 && b == 0)
        return 0; /* overlong */
      *out = v;
      return i + 1;
    }
  }
  return 0;
}

uint64_t net_trace_get_u64(net_trace_dec_t *d) {
  RT_ASSERT(d != NULL);
  uint64_t v = 0;
  if (d->err != 0)
    return 0;
  size_t n = varint_decode(d->p + d->pos, d->len - d->pos, &v);
  if (n == 0) {
    d->err = RT_EPROTO;
    return 0;
  }
  d->pos += n;
  return v;
}

int64_t net_trace_get_i64(net_trace_dec_t *d) {
  uint64_t u = net_trace_get_u64(d);
  return (int64_t)((u >> 1) ^ (0 - (u & 1)));
}

uint64_t net_trace_get_fixed64(net_trace_dec_t *d) {
  RT_ASSERT(d != NULL);
  if (d->err != 0)
    return 0;
  if (d->len - d->pos < 8) {
    d->err = RT_EPROTO;
    return 0;
  }
  uint64_t v = net_trace__get_le(d->p + d->pos, 8);
  d->pos += 8;
  return v;
}

const uint8_t *net_trace_get_bytes(net_trace_dec_t *d, size_t *n) {
  RT_ASSERT(n != NULL);
  *n = 0;
  uint64_t len = net_trace_get_u64(d);
  if (d->err != 0)
    return NULL;
  if (len > d->len - d->pos) {
    d->err = RT_EPROTO;
    return NULL;
  }
  const uint8_t *p = d->p + d->pos;
  d->pos += (size_t)len;
  *n = (size_t)len;
  return p;
}

int net_trace_dec_finish(const net_trace_dec_t *d) {
  RT_ASSERT(d != NULL);
  if (d->err != 0)
    return d->err;
  return d->pos == d->len ? 0 : RT_EPROTO;
}

/* ---- Messages ------------------------------------------------------------ */

void net_trace__say(char *err, size_t cap, const char *fmt, ...) {
  if (err == NULL || cap == 0)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, cap, fmt, ap);
  va_end(ap);
}

/* dir/trace-NNNNNN.oct into out (NET_TRACE_PATH_MAX); false if too long. */
bool net_trace__file_path(char *out, const char *dir, uint32_t seq) {
  int n = snprintf(out, NET_TRACE_PATH_MAX, "%s/" NET_TRACE_NAME_FMT, dir, seq);
  return n > 0 && (size_t)n < NET_TRACE_PATH_MAX;
}

/* ---- Header -------------------------------------------------------------- */

/* Encode a header into out (NET_TRACE_HEADER_MAX bytes): its length. */
size_t net_trace__header_encode(uint8_t *out, const net_trace_header_t *h,
                                uint32_t seq, uint64_t first_record) {
  RT_ASSERT(h->config_len <= NET_TRACE_CONFIG_MAX);
  size_t len = NET_TRACE_HEADER_FIXED + h->config_len;
  memcpy(out, NET_TRACE_MAGIC, NET_TRACE_MAGIC_LEN);
  net_trace__put_le(out + 8, NET_TRACE_VERSION, 4);
  net_trace__put_le(out + 12, len, 4);
  net_trace__put_le(out + 16, net_trace_crc32c(0, out, 16), 4);
  net_trace__put_le(out + 20, h->flags, 4);
  net_trace__put_le(out + 24, seq, 4);
  net_trace__put_le(out + 28, h->seed, 8);
  net_trace__put_le(out + 36, (uint64_t)h->epoch_unix_ns, 8);
  net_trace__put_le(out + 44, first_record, 8);
  net_trace__put_le(out + 52, h->config_len, 4);
  if (h->config_len > 0)
    memcpy(out + 56, h->config, h->config_len);
  net_trace__put_le(out + len - 4, net_trace_crc32c(0, out, len - 4), 4);
  return len;
}

/* The inverse of net_trace__header_encode, for a header whose checks all
 * passed (its length, both CRC-32Cs, its config's length and UTF-8). */
void net_trace__header_decode(const uint8_t *b, net_trace_header_t *h,
                              char *config, uint32_t *seq,
                              uint64_t *first_record) {
  uint32_t config_len = (uint32_t)net_trace__get_le(b + 52, 4);
  RT_ASSERT(config_len <= NET_TRACE_CONFIG_MAX);
  memset(h, 0, sizeof(*h));
  h->version = (uint32_t)net_trace__get_le(b + 8, 4);
  h->flags = (uint32_t)net_trace__get_le(b + 20, 4);
  *seq = (uint32_t)net_trace__get_le(b + 24, 4);
  h->seed = net_trace__get_le(b + 28, 8);
  h->epoch_unix_ns = (int64_t)net_trace__get_le(b + 36, 8);
  *first_record = net_trace__get_le(b + 44, 8);
  memcpy(config, b + 56, config_len);
  config[config_len] = '\0';
  h->config = config;
  h->config_len = config_len;
}
