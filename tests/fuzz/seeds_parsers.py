#!/usr/bin/env python3
"""Write the seed inputs of the parser fuzz targets into tests/fuzz.

    tests/fuzz/seeds_parsers.py [TARGET...]
    tests/fuzz/seeds_parsers.py --trace-from DIR_OR_FILE [--name NAME]

Each target's seeds go to tests/fuzz/corpus_TARGET/seed-*: starting points
that reach each part of its parser (see each fuzz_TARGET.c for what its
input's first bytes mean). libFuzzer (tools/fuzz TARGET) mutates them, and
the inputs it finds worth keeping are added beside them as found-*.

The trace target's seeds are recorded traces (overcookied --record, see
tests/live/test_live_record.py): --trace-from reads one (a recording's
directory, or one file) and writes it, its files one after another, with
copies cut short and copies changed and resealed (every check filled in
again, as tools/fuzz-replay does), so the fuzzer starts past the checksums.
"""
import argparse
import base64
import hashlib
import hmac
import json
import os
import random
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from seeds import frame, msg, req  # noqa: E402  the server target's helpers

HERE = os.path.dirname(os.path.abspath(__file__))
SECRET = b"fuzz-secret-0123456789abcdef"  # fuzz_token.c and fuzz_login.c
KEY = "dGhlIHNhbXBsZSBub25jZQ=="
UPGRADE = ["Host: localhost:8080", "Upgrade: websocket",
           "Connection: Upgrade", f"Sec-WebSocket-Key: {KEY}",
           "Sec-WebSocket-Version: 13"]


def http_seeds():
    """fuzz_http: [cut][config] bytes; cut 0 is byte by byte, 255 whole."""
    login = b'{"name":"ada"}'
    post = req("POST /api/login HTTP/1.1", [
        "Host: a", "Content-Type: application/json",
        f"Content-Length: {len(login)}"], login)
    return {
        "get-index": (255, 0, req("GET / HTTP/1.1", ["Host: a"])),
        "get-bytewise": (0, 0, req("GET /app.js?v=1 HTTP/1.1",
                                   ["Host: a", "Accept: */*"])),
        "pipelined": (3, 0, req("GET /health HTTP/1.1", ["Host: a"]) +
                      req("HEAD /metrics HTTP/1.1", ["Host: a"]) +
                      req("GET /api/leaderboard?limit=5 HTTP/1.1",
                          ["Host: a"]) + post),
        "login": (255, 0, post),
        "chunked-trailer": (7, 0, req(
            "POST /api/login HTTP/1.1",
            ["Host: a", "Transfer-Encoding: chunked"],
            b"5\r\n{\"nam\r\n9\r\ne\":\"ada\"}\r\n0\r\nHost: b\r\n"
            b"Authorization: x\r\n\r\n")),
        "upgrade-token": (255, 0, req(
            "GET /ws?token=good%2Dtoken&x=1 HTTP/1.1",
            UPGRADE + ["Origin: http://localhost:8080"]) + b"\x81\x80abcd"),
        "upgrade-anonymous": (255, 2, req("GET /ws HTTP/1.1", UPGRADE)),
        "upgrade-origins": (255, 1, req(
            "GET /ws?token=good-token HTTP/1.1",
            UPGRADE + ["Origin: https://cookies.example"])),
        "upgrade-bad-key": (255, 0, req(
            "GET /ws?token=good-token HTTP/1.1",
            UPGRADE[:3] + ["Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAA===",
                           "Sec-WebSocket-Version: 13 "])),
        "upgrade-post": (255, 0, req("POST /ws HTTP/1.1", UPGRADE +
                                     ["Content-Length: 2"], b"{}")),
        "upgrade-http10": (255, 0, req("GET /ws HTTP/1.0", UPGRADE)),
        "head-route": (255, 0, req("HEAD /api/leaderboard HTTP/1.1",
                                   ["Host: a"])),
        "allow-lines": (255, 0, req("DELETE /api/login HTTP/1.1",
                                    ["Host: a"]) +
                        req("PATCH /api/head HTTP/1.1", ["Host: a"]) +
                        req("POST /index.html HTTP/1.1",
                            ["Host: a", "Content-Length: 0"])),
        "absolute-form": (255, 0, req(
            "GET http://a:8080/api/history?limit=99999999999 HTTP/1.1",
            ["Host: a", "Authorization: Bearer x.y.z"])),
        "http10-no-host": (255, 0, req("GET /%2e%2e/%2F%00 HTTP/1.0", [])),
        "expect-continue": (2, 0, req("POST /api/login HTTP/1.1", [
            "Host: a", "Expect: 100-continue", "Content-Length: 14"], login)),
        "long-header": (255, 0, req("GET / HTTP/1.1",
                                    ["Host: a", "X: " + "a" * 8300])),
        "many-headers": (255, 0, req("GET / HTTP/1.1", ["Host: a"] +
                                     [f"X{i}: {i}" for i in range(70)])),
        # The arena full but for one byte when a header begins, all in one
        # feed (the whole-input parse): a NUL was once written past it.
        "arena-full-one-feed": (255, 0, req("GET / HTTP/1.1", [
            "Host: h", "X: " + "v" * (8342 - 28), "Y: w"])),
        "body-too-big": (255, 0, req("POST /api/login HTTP/1.1",
                                     ["Host: a", "Content-Length: 5000"])),
        "http2": (255, 0, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
        "two-hosts": (255, 0, req("GET / HTTP/1.1", ["Host: a", "host: b"])),
        "obs-fold": (255, 0, req("GET / HTTP/1.1",
                                 ["Host: a", "X: 1", " folded", "Y:\t2\t "])),
        "userinfo": (255, 0, req("GET http://u:p@a/ HTTP/1.1", ["Host: a"])),
        "garbage": (1, 3, b"\x00\xff GET / HTTP/9.9\r\n\r\n\r\n"),
    }


def ws_seeds():
    """fuzz_ws: [options][cut] frames (see fuzz_ws.c for the option bits)."""
    echo, slow, ping, close, prefix = 4, 8, 16, 32, 64
    text = frame(msg("JOIN_QUEUE"), mask=b"\x12\x34\x56\x78")
    return {
        "text": (0, 255, text),
        "echo-bytewise": (echo, 0, text + frame(b"hi")),
        "fragmented": (echo | prefix, 1, frame(b'{"type":"JOIN', fin=False) +
                       frame(b"", opcode=0, fin=False) +
                       frame(b"_QUEUE\"}", opcode=0)),
        "ping-pong": (ping | echo, 2, frame(b"hi", opcode=9) +
                      frame(b"", opcode=10) + frame(b"x" * 125, opcode=9)),
        "close": (echo, 255, frame(b"a") +
                  frame(struct.pack("!H", 1000) + b"bye", opcode=8) +
                  frame(b"after")),
        "close-bad-code": (0, 255, frame(struct.pack("!H", 1005), opcode=8)),
        # A close frame read a byte at a time: wslay once let its reason
        # through unchecked and echoed it (net_ws checks it now).
        "close-reason-split": (0, 0, frame(struct.pack("!H", 4000) +
                                           b"ok \xff\xfe", opcode=8)),
        "close-reason-utf8-split": (4, 0, frame(struct.pack("!H", 4000) +
                                                "é🍪".encode(), opcode=8)),
        "close-one-byte": (0, 255, frame(b"\x03", opcode=8)),
        "server-closes": (close | echo, 1, b"".join(
            frame(msg("CLICK", seq=i)) for i in range(6))),
        "binary": (0, 255, frame(b"\x01\x02", opcode=2)),
        "bad-utf8": (0, 255, frame(b'{"type":"\xff\xfe"}')),
        "split-utf8": (echo, 0, frame("é".encode()[:1], fin=False) +
                       frame("é".encode()[1:], opcode=0)),
        "too-big": (1, 255, frame(b"x" * 126)),
        "too-big-fragments": (2, 3, frame(b"x" * 10, fin=False) +
                              frame(b"y" * 10, opcode=0)),
        "length-not-minimal": (3, 255, bytes([0x81, 0x80 | 127]) +
                               struct.pack("!Q", 300) + b"\0\0\0\0" +
                               b"z" * 300),
        "unmasked": (0, 255, frame(b"hi", mask=None)),
        "rsv-bits": (0, 255, bytes([0xf1, 0x80]) + b"\0\0\0\0"),
        "ping-fragmented": (0, 255, frame(b"p", opcode=9, fin=False)),
        "continuation-first": (0, 255, frame(b"x", opcode=0)),
        "slow-echo": (echo | slow | ping, 0, b"".join(
            frame(msg("CLICK", seq=i)) for i in range(8))),
        "many-small": (echo | prefix, 255, frame(b"") * 60),
    }


def game_json_seeds():
    """fuzz_game_json: one message."""
    return {
        "join": msg("JOIN_QUEUE"),
        "leave": msg("LEAVE_QUEUE"),
        "click-seq": msg("CLICK", seq=42),
        "click-seq-max": b'{"type":"CLICK","payload":{"seq":9007199254740991}}',
        "click-seq-over": b'{"type":"CLICK","payload":{"seq":9007199254740992}}',
        "click-seq-frac": b'{"type":"CLICK","payload":{"seq":1.5e0}}',
        "click-seq-neg-zero": b'{"type":"CLICK","payload":{"seq":-0}}',
        "cookie": msg("COOKIE_CLICK"),
        "quit": b' {"payload":null,"type":"QUIT_GAME"}\r\n',
        "unknown": b'{"type":"DANCE"}',
        "type-number": b'{"type":7}',
        "nul-key": b'{"type\\u0000":"CLICK","type":"CLICK"}',
        "nul-value": b'{"type":"CLICK\\u0000x"}',
        "escaped-backslash": b'{"type":"CLICK","x":"\\\\u0000"}',
        "surrogates": b'{"type":"CLICK","x":"\\ud83c\\udf6a\\udc00"}',
        "trailing": b'{"type":"CLICK"}x',
        "two-values": b'{"type":"CLICK"} {}',
        "control": b'{"type":"CLICK","x":"\x01"}',
        "duplicate-type": b'{"type":"CLICK","type":"QUIT_GAME"}',
        "deep": b"[" * 300 + b"]" * 300,
        "too-big": b'{"type":"CLICK","x":"' + b"a" * 500 + b'"}',
        "numbers": b'{"type":"CLICK","payload":{"seq":1e999,"y":-1e-999}}',
    }


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def jwt(header, claims, secret=SECRET):
    signing = b64url(header) + b"." + b64url(claims)
    mac = hmac.new(secret, signing, hashlib.sha256).digest()
    return signing + b"." + b64url(mac)


def token_seeds():
    """fuzz_token: [mode] then a token (0), [hlen] header claims (1),
    claims (2), or sub NUL name (3)."""
    header = b'{"alg":"HS256","typ":"JWT"}'
    good = json.dumps({"sub": "g_0123456789abcdef", "name": "ada",
                       "exp": 1900000000}, separators=(",", ":")).encode()
    expired = good.replace(b"1900000000", b"1600000000")
    return {
        "valid": b"\0" + jwt(header, good),
        "wrong-key": b"\0" + jwt(header, good, b"another-secret"),
        "alg-none": b"\0" + b64url(b'{"alg":"none"}') + b"." +
                    b64url(good) + b".",
        "padded": b"\0" + jwt(header, good) + b"=",
        "four-parts": b"\0" + jwt(header, good) + b".x",
        "signed-alg-nul": b"\1" + bytes([26]) +
                          b'{"alg":"HS256\\u0000","x":1}' + good,
        "signed-header-trailing": b"\1" + bytes([len(header) + 1]) +
                                  header + b"x" + good,
        "signed-alg-array": b"\1" + bytes([14]) + b'{"alg":["HS2"]}' + good,
        "claims-valid": b"\2" + good,
        "claims-expired": b"\2" + expired,
        "claims-exp-string": b'\2{"sub":"a","name":"b","exp":"9"}',
        "claims-no-sub": b'\2{"name":"b","exp":1900000000}',
        "claims-empty-sub": b'\2{"sub":"","name":"b","exp":1900000000}',
        "claims-long-sub": b'\2{"sub":"' + b"s" * 64 +
                           b'","name":"b","exp":1900000000}',
        "claims-long-name": b'\2{"sub":"a","name":"' + b"n" * 97 +
                            b'","exp":1900000000}',
        "claims-nul": b'\2{"sub":"a\\u0000b","name":"b","exp":1900000000}',
        "claims-inf": b'\2{"sub":"a","name":"b","exp":1e999}',
        "roundtrip": b"\3g_0123456789abcdef\0Ad\xc3\xa9le \xf0\x9f\x8d\xaa",
        "roundtrip-quotes": b'\3a"\\b\0n"\\\x7f',
    }


def login_seeds():
    """fuzz_login: a POST /api/login body."""
    return {
        "ada": b'{"name":"ada"}',
        "unicode": '{"name":"Adèle 🍪"}'.encode(),
        "escaped": b'{"name":"\\u00e9\\ud83c\\udf6a"}',
        "24-chars": b'{"name":"' + b"x" * 24 + b'"}',
        "25-chars": b'{"name":"' + b"x" * 25 + b'"}',
        "spaces": b'{"name":"   "}',
        "rtl-mark": b'{"name":"a\\u202eb"}',
        "nul": b'{"name":"A\\u0000\\u202eevil"}',
        "control": b'{"name":"a\\u0007"}',
        "number": b'{"name":7}',
        "array": b'[{"name":"ada"}]',
        "trailing": b'{"name":"ada"}{}',
        "other-keys": b'{"x":{"name":1},"name":"b\\"c"}',
        "invalid-utf8": b'{"name":"\xc3\x28"}',
        "empty": b"",
    }


# ---- Traces ------------------------------------------------------------------

def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def crc8(head):
    c = 0xFF
    for b in head:
        c ^= b
        for _ in range(8):
            c = ((c << 1) ^ 0x07) & 0xFF if c & 0x80 else (c << 1) & 0xFF
    return c


def records(blob):
    """(offset, payload length) of each whole record of one file."""
    off = struct.unpack_from("<I", blob, 12)[0]
    out = []
    while off + 9 <= len(blob):
        n = blob[off + 1] | blob[off + 2] << 8 | blob[off + 3] << 16
        if off + 9 + n > len(blob):
            break
        out.append((off, n))
        off += 9 + n
    return out


def reseal(blob):
    """Fill in every check of one file, as fuzz_trace.c's mutator does."""
    b = bytearray(blob)
    struct.pack_into("<I", b, 16, crc32c(b[:16]))
    hlen = struct.unpack_from("<I", b, 12)[0]
    struct.pack_into("<I", b, hlen - 4, crc32c(b[:hlen - 4]))
    for off, n in records(bytes(b)):
        b[off + 4] = crc8(b[off:off + 4])
        struct.pack_into("<I", b, off + 5 + n, crc32c(b[off:off + 5 + n]))
    return bytes(b)


def varint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        out.append(b | (0x80 if v else 0))
        if not v:
            return bytes(out)


def unvarint(b, pos):
    v = shift = 0
    while True:
        v |= (b[pos] & 0x7F) << shift
        shift += 7
        pos += 1
        if not b[pos - 1] & 0x80:
            return v, pos


def record(rtype, payload):
    n = len(payload)
    head = bytes([rtype, n & 0xFF, n >> 8 & 0xFF, n >> 16])
    body = head + bytes([crc8(head)]) + payload
    return body + struct.pack("<I", crc32c(body))


def two_files(first, k):
    """One file as a recording of two: records [0, k) and a NEXT_FILE in
    file 1, the rest in file 2 (whose END counts one record more)."""
    hlen = struct.unpack_from("<I", first, 12)[0]
    recs = records(first)
    head = bytearray(first[:hlen])
    one = bytes(head) + b"".join(first[o:o + 9 + n] for o, n in recs[:k])
    one += record(2, varint(k + 1))  # NEXT_FILE: the next record's index
    struct.pack_into("<I", head, 24, 2)
    struct.pack_into("<Q", head, 44, k + 1)
    two = bytearray(head)
    for o, n in recs[k:]:
        rec = first[o:o + 9 + n]
        if rec[0] == 1:  # END: u64 records before it, u64 lost
            count, pos = unvarint(rec, 5)
            lost, _ = unvarint(rec, pos)
            rec = record(1, varint(count + 1) + varint(lost))
        two += rec
    return one + reseal(bytes(two))


def read_trace(path):
    if os.path.isdir(path):
        names = sorted(n for n in os.listdir(path) if n.endswith(".oct"))
        return [open(os.path.join(path, n), "rb").read() for n in names]
    return [open(path, "rb").read()]


def trace_seeds(path, name, rng):
    files = read_trace(path)
    whole = b"".join(files)
    first = files[0]
    recs = records(first)
    hlen = struct.unpack_from("<I", first, 12)[0]
    out = {name: whole}
    out[name + "-cut-in-record"] = first[:recs[len(recs) // 2][0] + 7]
    out[name + "-cut-in-header"] = first[:hlen - 3]
    out[name + "-two-files"] = two_files(first, len(recs) // 2)
    # Changed and resealed: a payload byte, a record's type, the END's count,
    # the config, the version.
    b = bytearray(first)
    off, n = max(recs, key=lambda r: r[1])
    b[off + 5 + rng.randrange(n)] ^= 0xFF
    out[name + "-payload-changed"] = reseal(b)
    b = bytearray(first)
    b[recs[0][0]] = 240
    out[name + "-reserved-type"] = reseal(b)
    b = bytearray(first)
    off, n = recs[-1]
    if b[off] == 1:  # END: u64 records before it, u64 lost
        b[off + 5] ^= 1
        out[name + "-end-miscounts"] = reseal(b)
    b = bytearray(first)
    if hlen > 60:  # a NUL in the config: the reader once took it
        b[56] = 0
        out[name + "-config-nul"] = reseal(b)
    b = bytearray(first)
    b[8] = 2
    out[name + "-version-2"] = reseal(b)
    return out


def write(target, seeds, fmt):
    out = os.path.join(HERE, "corpus_" + target)
    os.makedirs(out, exist_ok=True)
    for name, seed in seeds.items():
        with open(os.path.join(out, "seed-" + name), "wb") as f:
            f.write(fmt(seed))
    print(f"{len(seeds)} seeds in {out}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("targets", nargs="*",
                    default=["http", "ws", "game_json", "token", "login"])
    ap.add_argument("--trace-from", help="a recording: its directory or a file")
    ap.add_argument("--name", default="trace", help="the trace seeds' name")
    a = ap.parse_args()
    if a.trace_from:
        write("trace", trace_seeds(a.trace_from, a.name, random.Random(1)),
              lambda s: s)
        return
    for t in a.targets:
        if t == "http":
            write(t, http_seeds(), lambda s: bytes([s[0], s[1]]) + s[2])
        elif t == "ws":
            write(t, ws_seeds(), lambda s: bytes([s[0], s[1]]) + s[2])
        elif t == "game_json":
            write(t, game_json_seeds(), lambda s: s)
        elif t == "token":
            write(t, token_seeds(), lambda s: s)
        elif t == "login":
            write(t, login_seeds(), lambda s: s)
        else:
            sys.exit(f"unknown target {t}")


if __name__ == "__main__":
    main()
