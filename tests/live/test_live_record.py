#!/usr/bin/env python3
"""Record and replay (issue 6): a live server on loopback records while
players driven by Debian's python3-websockets (a client we did not write)
play several matches: one to the end with a golden-cookie claim and a slow
reader, one ended by a quit, one where a player drops and resumes with the
same token; and a player sits in the lobby until its WebSocket is parked
(--ws-park-after 0.2, net_ws_park), then queues and leaves the queue, so
that parking and waking are in the trace. The trace must replay with every
checkpoint matching; a damaged, a cut and a wrong-version copy must fail
cleanly (exit 3, a sentence, no crash); a changed static file must be
caught as a divergence naming the stream; --room and --chrome-trace must
give a timeline that parses as JSON with a track per actor of that match.

Every wait is bounded.

usage: test_live_record.py OVERCOOKIED REPLAY STATIC_DIR
"""
import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

import websockets

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_live_game as live  # noqa: E402  (Server, http, recv)

BINARY = REPLAY = STATIC = None
STEP = live.STEP_TIMEOUT


def ws_url(server, token):
    return f"ws://127.0.0.1:{server.port}/ws?token={token}"


def login(server, name):
    status, body = live.http(server, "/api/login", {"name": name})
    assert status == 200, body
    return body


async def until_type(ws, kind, seen=None, limit=200):
    for _ in range(limit):
        m = await live.recv(ws)
        if seen is not None:
            seen.append(m)
        if m["type"] == kind:
            return m
    raise AssertionError("no " + kind)


async def clicker(server, name, golden):
    """Plays to GAME_OVER, clicking on every tick; claims golden cookies."""
    me = login(server, name)
    seen = []
    async with websockets.connect(ws_url(server, me["token"]),
                                  open_timeout=STEP) as ws:
        await ws.send(json.dumps({"type": "JOIN_QUEUE"}))
        seq = 0
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            m = await live.recv(ws)
            seen.append(m)
            p = m.get("payload", {})
            if m["type"] == "UPDATE" and "timeRemaining" in p:
                for _ in range(4):
                    seq += 1
                    await ws.send(json.dumps(
                        {"type": "CLICK", "payload": {"count": 1, "seq": seq}}))
            if m["type"] == "COOKIE_SPAWN" and golden:
                await ws.send(json.dumps({"type": "COOKIE_CLICK"}))
            if m["type"] == "GAME_OVER":
                return seen
    raise AssertionError(name + " saw no GAME_OVER")


async def slow_reader(server, name):
    """A small receive buffer and a pause before each read."""
    me = login(server, name)
    seen = []
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=STEP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    async with websockets.connect(ws_url(server, me["token"]), sock=sock,
                                  open_timeout=STEP, max_queue=1) as ws:
        await ws.send(json.dumps({"type": "JOIN_QUEUE"}))
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            m = await live.recv(ws)
            seen.append(m)
            if m["type"] == "GAME_OVER":
                return seen
    raise AssertionError(name + " saw no GAME_OVER")


async def quitter_pair(server):
    """Two players; the first quits once the game has started."""
    a, b = login(server, "Quin"), login(server, "Otto")
    async with websockets.connect(ws_url(server, a["token"]),
                                  open_timeout=STEP) as wa, \
            websockets.connect(ws_url(server, b["token"]),
                               open_timeout=STEP) as wb:
        await wa.send(json.dumps({"type": "JOIN_QUEUE"}))
        await until_type(wa, "QUEUED")
        await wb.send(json.dumps({"type": "JOIN_QUEUE"}))
        start = await until_type(wa, "GAME_START")
        await until_type(wb, "GAME_START")
        await wa.send(json.dumps({"type": "QUIT_GAME"}))
        over = await until_type(wb, "GAME_OVER")
        assert over["payload"]["reason"] == "quit", over
        return start["payload"]["roomId"]


async def resume_pair(server):
    """Two players; one drops mid-game and comes back with its token."""
    a, b = login(server, "Remy"), login(server, "Suki")
    async with websockets.connect(ws_url(server, b["token"]),
                                  open_timeout=STEP) as wb:
        wa = await websockets.connect(ws_url(server, a["token"]),
                                      open_timeout=STEP)
        await wa.send(json.dumps({"type": "JOIN_QUEUE"}))
        await until_type(wa, "QUEUED")
        await wb.send(json.dumps({"type": "JOIN_QUEUE"}))
        start = await until_type(wa, "GAME_START")
        await until_type(wa, "UPDATE")
        wa.transport.abort()  # drop without a close frame
        await asyncio.sleep(0.3)
        async with websockets.connect(ws_url(server, a["token"]),
                                      open_timeout=STEP) as wa2:
            again = await until_type(wa2, "GAME_START")
            assert again["payload"].get("resumed") is True, again
            await wa2.send(json.dumps({"type": "CLICK",
                                       "payload": {"count": 1, "seq": 1}}))
            await until_type(wa2, "GAME_OVER")
        await until_type(wb, "GAME_OVER")
        return start["payload"]["roomId"]


def parked_websockets(server):
    with urllib.request.urlopen(server.base + "/metrics",
                                timeout=STEP) as r:
        for line in r.read().decode().splitlines():
            if line.startswith('overcookied_connections{kind="websocket_parked"}'):
                return int(line.split()[-1])
    raise AssertionError("no websocket_parked gauge in /metrics")


async def lobby_sitter(server):
    """A player in the lobby long enough to be parked, then woken by
    JOIN_QUEUE and LEAVE_QUEUE; returns the parked gauge seen meanwhile."""
    me = login(server, "Pat")
    async with websockets.connect(ws_url(server, me["token"]),
                                  open_timeout=STEP) as ws:
        await asyncio.sleep(0.6)  # three times --ws-park-after
        parked = parked_websockets(server)
        await ws.send(json.dumps({"type": "JOIN_QUEUE"}))
        await until_type(ws, "QUEUED")
        await ws.send(json.dumps({"type": "LEAVE_QUEUE"}))
        await asyncio.sleep(0.6)  # parked again
        return parked


def run(*args, timeout=120):
    return subprocess.run(list(args), capture_output=True, text=True,
                          timeout=timeout)


class RecordReplay(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.trace = os.path.join(cls.tmp.name, "trace")
        live.BINARY, live.STATIC = BINARY, STATIC
        server = live.Server(os.path.join(cls.tmp.name, "rec.db"),
                        "--record", cls.trace, "--countdown", "0.3",
                        "--game-length", "3", "--golden-min", "1",
                        "--golden-max", "1", "--reconnect-grace", "5",
                        # Quiet WebSockets park and wake in the trace too.
                        "--ws-park-after", "0.2")
        try:
            async def matches():
                full = asyncio.gather(clicker(server, "Ada", True),
                                      slow_reader(server, "Sly"))
                ada_seen, sly_seen = await full
                quit_room = await quitter_pair(server)
                resume_room = await resume_pair(server)
                parked = await lobby_sitter(server)
                return ada_seen, sly_seen, quit_room, resume_room, parked
            (cls.ada_seen, cls.sly_seen, cls.quit_room,
             cls.resume_room, cls.parked) = asyncio.run(matches())
            live.http(server, "/api/leaderboard")
        finally:
            cls.status = server.stop()

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_1_the_matches_happened(self):
        self.assertEqual(self.status, 0)
        types = [m["type"] for m in self.ada_seen]
        self.assertIn("COOKIE_SPAWN", types)
        claims = [m for m in self.ada_seen + self.sly_seen
                  if "goldenCookieClaimedBy" in m.get("payload", {})]
        self.assertTrue(claims, "nobody claimed a golden cookie")
        self.assertEqual(types[-1], "GAME_OVER")
        self.assertEqual(self.sly_seen[-1]["type"], "GAME_OVER")
        self.assertGreaterEqual(self.parked, 1, "nobody was parked")
        self.assertTrue(os.path.exists(
            os.path.join(self.trace, "trace-000001.oct")))

    def test_2_replays_with_every_checkpoint_matching(self):
        r = run(REPLAY, self.trace)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("replay: ok: the whole recording", r.stdout)
        line = r.stdout.splitlines()[0]
        checkpoints = int(line.split(" checkpoints matched")[0].split()[-1])
        accepts = int(line.split(" accepts")[0].split()[-1])
        self.assertGreater(checkpoints, 50, line)
        self.assertGreaterEqual(accepts, 8, line)  # 6 sockets + HTTP

    def test_3_replay_again_gives_the_same_hashes(self):
        a = run(REPLAY, self.trace).stdout
        b = run(REPLAY, self.trace).stdout
        self.assertEqual(a, b)

    def test_4_a_damaged_trace_fails_cleanly(self):
        for name, damage in (("flipped", self._flip), ("cut", self._cut),
                             ("version", self._version)):
            with self.subTest(name):
                d = os.path.join(self.tmp.name, name)
                shutil.rmtree(d, ignore_errors=True)
                shutil.copytree(self.trace, d)
                damage(os.path.join(d, "trace-000001.oct"))
                r = run(REPLAY, d)
                self.assertEqual(r.returncode, 3, r.stdout + r.stderr)
                text = r.stdout + r.stderr
                self.assertNotIn("Sanitizer", text)
                self.assertRegex(text, {"flipped": "checksum mismatch|head check mismatch",
                                        "cut": "truncated|cut short",
                                        "version": "version"}[name])

    @staticmethod
    def _flip(path):
        size = os.path.getsize(path)
        with open(path, "r+b") as f:
            f.seek(size // 2)
            b = f.read(1)
            f.seek(size // 2)
            f.write(bytes([b[0] ^ 0x10]))

    @staticmethod
    def _cut(path):
        with open(path, "r+b") as f:
            f.truncate(os.path.getsize(path) * 2 // 3)

    @staticmethod
    def _version(path):
        import struct
        with open(path, "r+b") as f:
            head = bytearray(f.read(20))
            head[8:12] = struct.pack("<I", 2)
            head[16:20] = struct.pack("<I", crc32c(bytes(head[:16])))
            f.seek(0)
            f.write(head)

    def test_5_a_changed_program_is_caught_where_it_differs(self):
        web = os.path.join(self.tmp.name, "web")
        shutil.rmtree(web, ignore_errors=True)
        shutil.copytree(STATIC, web)
        with open(os.path.join(web, "index.html"), "a") as f:
            f.write("<!-- not what was served -->\n")
        r = run(REPLAY, self.trace, "--static", web)
        # The browser files are not fetched in this recording, so the same
        # bytes go out; fetch one in a fresh recording to see a divergence.
        self.assertIn(r.returncode, (0, 1), r.stdout + r.stderr)
        d = os.path.join(self.tmp.name, "static-trace")
        shutil.rmtree(d, ignore_errors=True)
        live.BINARY, live.STATIC = BINARY, STATIC
        server = live.Server(os.path.join(self.tmp.name, "s.db"),
                             "--record", d)
        try:
            import urllib.request
            with urllib.request.urlopen(server.base + "/", timeout=STEP) as f:
                f.read()
        finally:
            self.assertEqual(server.stop(), 0)
        r = run(REPLAY, d, "--static", web)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("DIVERGED", r.stdout)
        self.assertRegex(r.stdout, r"stream \d+: the replay wrote \d+ bytes")
        self.assertIn("(conn)", r.stdout)
        self.assertIn("the records before it", r.stdout)

    def test_6_room_log_and_chrome_trace(self):
        out = os.path.join(self.tmp.name, "timeline.json")
        r = run(REPLAY, self.trace, "--room", self.quit_room, "--log",
                "--chrome-trace", out)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("event=room.start", r.stdout)
        self.assertIn("room=" + self.quit_room, r.stdout)
        self.assertNotIn("room=" + self.resume_room, r.stdout)
        with open(out) as f:
            doc = json.load(f)
        events = doc["traceEvents"]
        names = {e["args"]["name"] for e in events
                 if e["ph"] == "M" and e["name"] == "thread_name"}
        self.assertTrue(any(n.startswith("room ") for n in names), names)
        self.assertGreaterEqual(
            sum(1 for n in names if n.startswith("conn ")), 2, names)
        self.assertTrue(any(e["ph"] == "X" and e["name"] == "quit"
                            for e in events))
        self.assertTrue(any(e["ph"] == "s" for e in events))
        self.assertTrue(any(e["ph"] == "f" for e in events))
        instants = {e["name"] for e in events if e["ph"] == "i"}
        self.assertIn("room.finish", instants)
        self.assertIn("client.closed", instants)

    def test_7_until_stops_early_and_matches(self):
        r = run(REPLAY, self.trace, "--until", "0.5")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("stopped (--until)", r.stdout)

    def test_8_from_narrows_the_log_and_timeline_not_the_checks(self):
        out = os.path.join(self.tmp.name, "late.json")
        r = run(REPLAY, self.trace, "--from", "2", "--log", "--chrome-trace",
                out)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("replay: ok: the whole recording", r.stdout)
        times = [float(l.split()[0][2:]) for l in r.stdout.splitlines()
                 if l.startswith("t=")]
        self.assertTrue(times and min(times) >= 2.0, times[:3])
        with open(out) as f:
            doc = json.load(f)
        ts = [e["ts"] for e in doc["traceEvents"] if e["ph"] in ("X", "i")]
        self.assertTrue(ts and min(ts) >= 2e6, min(ts) if ts else None)
        r = run(REPLAY, self.trace, "--from", "3", "--until", "2")
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)


class RecordBackpressure(unittest.TestCase):
    """A reader that stops reading: the server's writes come back short,
    its connection actor waits for WRITABLE, and all of it replays."""

    def test_short_writes_replay(self):
        with tempfile.TemporaryDirectory() as tmp:
            trace = os.path.join(tmp, "trace")
            live.BINARY, live.STATIC = BINARY, STATIC
            server = live.Server(os.path.join(tmp, "bp.db"), "--echo",
                                 "--record", trace)
            got = 0
            try:
                async def flood():
                    sock = socket.create_connection(
                        ("127.0.0.1", server.port), timeout=STEP)
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
                    async with websockets.connect(
                            f"ws://127.0.0.1:{server.port}/ws", sock=sock,
                            open_timeout=STEP, max_queue=1,
                            read_limit=1024) as ws:
                        msg = "x" * 400

                        async def send():
                            for _ in range(1500):
                                await ws.send(msg)

                        async def receive():
                            # Nobody reads for a moment: the echoes pile up
                            # and the server's writes come back short. Kept
                            # short: a zero receive window is reopened by the
                            # kernel's persist probes, whose backoff doubles
                            # while it stays shut.
                            await asyncio.sleep(0.3)
                            n = 0
                            while n < 1500:
                                await asyncio.wait_for(ws.recv(), 60)
                                n += 1
                            return n
                        _, n = await asyncio.gather(send(), receive())
                        return n
                got = asyncio.run(flood())
            finally:
                self.assertEqual(server.stop(), 0)
            self.assertEqual(got, 1500)
            r = run(REPLAY, trace)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            short = int(r.stdout.split(" short)")[0].split()[-1])
            self.assertGreater(short, 0, r.stdout)


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


if __name__ == "__main__":
    BINARY, REPLAY, STATIC = sys.argv[1:4]
    del sys.argv[1:4]
    unittest.main(verbosity=2)
