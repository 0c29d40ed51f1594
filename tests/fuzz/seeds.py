#!/usr/bin/env python3
"""Write the seed corpus of fuzz_server.c into tests/fuzz/corpus.

    tests/fuzz/seeds.py [DIR]

Each seed is the harness's input: a mode byte (0 raw HTTP, 1 raw WebSocket
after an upgrade, 2 game messages cut at '\\n'), a byte for the write size
(1 + 8 * b bytes a write), then the bytes. The seeds are starting points
that reach each part of the server; libFuzzer (tools/fuzz-server) mutates
them, and the inputs it finds are added beside them as found-*.
"""
import json
import os
import struct
import sys

HTTP, WS, MESSAGES = 0, 1, 2


def frame(payload, opcode=1, fin=True, mask=b"\0\0\0\0", length=None):
    """One client frame; a zero mask keeps the payload readable."""
    n = len(payload) if length is None else length
    head = bytes([(0x80 if fin else 0) | opcode])
    bit = 0x80 if mask is not None else 0
    if n < 126:
        head += bytes([bit | n])
    elif n < 65536:
        head += bytes([bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", n)
    if mask is None:
        return head + payload
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + body


def msg(kind, **payload):
    m = {"type": kind}
    if payload:
        m["payload"] = payload
    return json.dumps(m, separators=(",", ":")).encode()


def req(line, headers=(), body=b""):
    out = line.encode() + b"\r\n"
    for h in headers:
        out += h.encode() + b"\r\n"
    return out + b"\r\n" + body


login = json.dumps({"name": "fuzzy"}).encode()
SEEDS = {
    # Raw HTTP.
    "http-login": (HTTP, 255, req("POST /api/login HTTP/1.1", [
        "Host: sim:8080", "Content-Type: application/json",
        f"Content-Length: {len(login)}"], login)),
    "http-login-bytewise": (HTTP, 0, req("POST /api/login HTTP/1.1", [
        "Host: sim:8080", f"Content-Length: {len(login)}"], login)),
    "http-static": (HTTP, 255, req("GET /index.html HTTP/1.1",
                                   ["Host: sim:8080"])),
    "http-traversal": (HTTP, 255, req("GET /../../../etc/passwd HTTP/1.1",
                                      ["Host: sim:8080"])),
    "http-pipelined": (HTTP, 255, req("GET / HTTP/1.1", ["Host: a"]) +
                       req("GET /api/leaderboard HTTP/1.1", ["Host: a"]) +
                       req("GET /metrics HTTP/1.1", ["Host: a"])),
    "http-history-bad-bearer": (HTTP, 255, req(
        "GET /api/history?limit=99999999999 HTTP/1.1",
        ["Host: a", "Authorization: Bearer not.a.token"])),
    "http-chunked": (HTTP, 255, req("POST /api/login HTTP/1.1", [
        "Host: a", "Transfer-Encoding: chunked"],
        b"5\r\n{\"nam\r\n0\r\n\r\n")),
    "http-upgrade-no-token": (HTTP, 255, req("GET /ws HTTP/1.1", [
        "Host: sim:8080", "Upgrade: websocket", "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13"])),
    "http-garbage": (HTTP, 3, b"\x00\xff GET / HTTP/9.9\r\n\r\n\r\n"),
    "http-long-header": (HTTP, 255, req("GET / HTTP/1.1",
                                        ["X: " + "a" * 9000])),
    # Raw WebSocket frames after the harness's upgrade.
    "ws-join-click": (WS, 255, frame(msg("JOIN_QUEUE")) +
                      frame(msg("CLICK", count=1, seq=1)) +
                      frame(msg("COOKIE_CLICK"))),
    "ws-pipelined-with-upgrade": (WS, 200, frame(msg("JOIN_QUEUE"))),
    "ws-fragmented": (WS, 1, frame(b'{"type":"JOIN', fin=False) +
                      frame(b"_QUEUE\"}", opcode=0)),
    "ws-ping-close": (WS, 255, frame(b"hi", opcode=9) +
                      frame(struct.pack("!H", 1000) + b"bye", opcode=8)),
    "ws-unmasked": (WS, 255, frame(msg("JOIN_QUEUE"), mask=None)),
    "ws-bad-utf8": (WS, 255, frame(b'{"type":"\xff\xfe"}')),
    "ws-oversize": (WS, 255, frame(b"{" * 20, length=1 << 20)),
    "ws-binary": (WS, 255, frame(b"\x01\x02", opcode=2)),
    "ws-masked": (WS, 255, frame(msg("LEAVE_QUEUE"), mask=b"\x12\x34\x56\x78")),
    # Game messages, one per line, while a game runs.
    "msg-play": (MESSAGES, 0, b"\n".join([
        msg("CLICK", count=1, seq=1), msg("CLICK", seq=2),
        msg("COOKIE_CLICK"), msg("CLICK"), msg("JOIN_QUEUE"),
        msg("LEAVE_QUEUE"), msg("QUIT_GAME"), msg("CLICK", seq=3)])),
    "msg-bad-json": (MESSAGES, 0, b"\n".join([
        b"{", b"[]", b"null", b'{"type":1}', b'{"type":"NOPE"}',
        b'{"type":"CLICK","payload":[1,2]}',
        b'{"type":"CLICK","payload":{"seq":1e308}}',
        b'{"type":"CLICK","payload":{"seq":-9223372036854775809}}',
        b'{"type":"CLICK","payload":{"seq":"x"}}',
        b"[" * 2000 + b"]" * 2000, b""])),
    "msg-flood": (MESSAGES, 0, b"\n".join(
        [msg("CLICK", seq=i) for i in range(200)])),
}


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "corpus")
    os.makedirs(out, exist_ok=True)
    for name, (mode, cut, data) in SEEDS.items():
        with open(os.path.join(out, "seed-" + name), "wb") as f:
            f.write(bytes([mode, cut]) + data)
    print(f"{len(SEEDS)} seeds in {out}")


if __name__ == "__main__":
    main()
