#!/usr/bin/env python3
"""Live game test: the real server on loopback, played by Debian's
python3-websockets (a client we did not write) and urllib.

Two players log in over HTTP, queue, play a short match with clicks and a
golden cookie to GAME_OVER, then the leaderboard and history are checked
over HTTP. Every wait is bounded.

usage: test_live_game.py OVERCOOKIED_BINARY STATIC_DIR
"""
import asyncio
import json
import os
import sys
import tempfile
import time
import unittest
import urllib.request

import websockets

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import livelib  # noqa: E402
from livelib import STEP_TIMEOUT, http  # noqa: E402

BINARY = STATIC = None


def Server(db, *extra):
    """livelib's server with this file's BINARY and STATIC (the live tests
    that import this file set them too)."""
    return livelib.Server(BINARY, STATIC, db, *extra)


async def recv(ws):
    return json.loads(await asyncio.wait_for(ws.recv(), STEP_TIMEOUT))


async def play(server, name, clicks_per_tick, golden):
    """Plays one game; returns (user id, token, messages seen)."""
    status, login = http(server, "/api/login", {"name": name})
    assert status == 200, login
    url = f"ws://127.0.0.1:{server.port}/ws?token={login['token']}"
    seen = []
    async with websockets.connect(url, open_timeout=STEP_TIMEOUT) as ws:
        await ws.send(json.dumps({"type": "JOIN_QUEUE"}))
        seq = 0
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            m = await recv(ws)
            seen.append(m)
            p = m.get("payload", {})
            if m["type"] == "UPDATE" and "timeRemaining" in p:
                for _ in range(clicks_per_tick):
                    seq += 1
                    await ws.send(json.dumps(
                        {"type": "CLICK", "payload": {"count": 1, "seq": seq}}))
            if m["type"] == "COOKIE_SPAWN" and golden:
                await ws.send(json.dumps({"type": "COOKIE_CLICK"}))
            if m["type"] == "GAME_OVER":
                return login["userId"], login["token"], seen
    raise AssertionError(name + " saw no GAME_OVER")


class LiveGame(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.server = Server(os.path.join(self.tmp.name, "live.db"),
                             "--countdown", "0.3", "--game-length", "4",
                             "--golden-min", "1", "--golden-max", "2")

    def tearDown(self):
        self.assertEqual(self.server.stop(), 0)
        self.tmp.cleanup()

    def test_a_match_to_game_over_then_leaderboard_and_history(self):
        async def both():
            return await asyncio.gather(
                play(self.server, "Ada", 3, True),
                play(self.server, "Bob", 1, False))
        (ada, ada_token, ada_seen), (bob, _, bob_seen) = asyncio.run(both())
        types = [m["type"] for m in ada_seen]
        self.assertEqual(types[0], "QUEUED")
        self.assertIn("GAME_START", types)
        self.assertIn("COOKIE_SPAWN", types)
        over_a, over_b = ada_seen[-1]["payload"], bob_seen[-1]["payload"]
        self.assertEqual(over_a, over_b, "both see the same result")
        self.assertEqual(over_a["reason"], "time")
        start = next(m["payload"] for m in ada_seen if m["type"] == "GAME_START")
        ada_score = over_a["p1Score"] if start["role"] == "p1" else over_a["p2Score"]
        bob_score = over_a["p2Score"] if start["role"] == "p1" else over_a["p1Score"]
        self.assertGreater(ada_score, bob_score)
        self.assertEqual(over_a["winner"], ada)
        acks = [m["payload"]["seq"] for m in ada_seen
                if m["type"] == "UPDATE" and "seq" in m["payload"]]
        self.assertTrue(acks, "clicks with seq are acknowledged")
        self.assertEqual(acks, sorted(acks), "acks arrive in order")

        status, board = http(self.server, "/api/leaderboard?limit=5")
        self.assertEqual(status, 200)
        self.assertEqual([e["name"] for e in board[:2]], ["Ada", "Bob"])
        self.assertEqual(board[0]["score"], ada_score)
        self.assertEqual(board[0]["wins"], 1)
        self.assertNotIn("userId", json.dumps(board), "no user ids")

        status, hist = http(self.server, "/api/history", token=ada_token)
        self.assertEqual(status, 200)
        self.assertEqual(hist["totalCount"], 1)
        game = hist["games"][0]
        self.assertEqual((game["score"], game["opponentScore"]),
                         (ada_score, bob_score))
        self.assertEqual(game["opponent"], bob)
        self.assertEqual(game["opponentName"], "Bob")
        self.assertTrue(game["won"])
        self.assertEqual(game["reason"], "time")

    def test_bad_requests_get_clear_errors(self):
        status, body = http(self.server, "/api/login", {"name": ""})
        self.assertEqual(status, 400)
        self.assertIn("error", body)
        status, body = http(self.server, "/api/login", {"name": "x" * 25})
        self.assertEqual(status, 400)
        status, body = http(self.server, "/api/history", token="not.a.token")
        self.assertEqual(status, 401)

        async def refused():
            url = f"ws://127.0.0.1:{self.server.port}/ws?token=bad"
            with self.assertRaises(websockets.exceptions.InvalidStatusCode) as e:
                async with websockets.connect(url, open_timeout=STEP_TIMEOUT):
                    pass
            self.assertEqual(e.exception.status_code, 401)

        asyncio.run(refused())

    def test_protocol_errors_keep_the_connection(self):
        status, login = http(self.server, "/api/login", {"name": "Eve"})
        self.assertEqual(status, 200)

        async def errors():
            url = f"ws://127.0.0.1:{self.server.port}/ws?token={login['token']}"
            async with websockets.connect(url, open_timeout=STEP_TIMEOUT) as ws:
                for raw, code in (("{nope", "bad_json"),
                                  ('{"type":"DANCE"}', "unknown_type"),
                                  ('{"type":"CLICK"}', "not_in_game")):
                    await ws.send(raw)
                    m = await recv(ws)
                    self.assertEqual(m["type"], "ERROR")
                    self.assertEqual(m["payload"]["code"], code)
                await ws.send(json.dumps({"type": "JOIN_QUEUE"}))
                self.assertEqual((await recv(ws))["type"], "QUEUED")

        asyncio.run(errors())


class StoppedReader(unittest.TestCase):
    """PROTOCOL.md's write wait (10 s), counted from when a player stops
    reading, not from when the kernel's buffers (ours and the player's,
    megabytes on loopback) have filled. The cut is a disconnect: its
    opponent wins once the close wait (5 s) and the reconnect grace (1 s
    here) have passed too."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        # A short grace: the opponent's win comes sooner after the cut.
        self.server = Server(os.path.join(self.tmp.name, "live.db"),
                             "--countdown", "0.3", "--game-length", "60",
                             "--reconnect-grace", "1")

    def tearDown(self):
        self.assertEqual(self.server.stop(), 0)
        self.tmp.cleanup()

    def kicks_for_write_wait(self):
        req = urllib.request.Request(self.server.base + "/metrics")
        with urllib.request.urlopen(req, timeout=STEP_TIMEOUT) as r:
            for line in r.read().decode().splitlines():
                if line.startswith(
                        'overcookied_kicks_total{reason="write_wait"} '):
                    return int(line.split()[1])
        raise AssertionError("no write_wait kicks in /metrics")

    def test_a_player_who_stops_reading_is_cut_after_the_write_wait(self):
        def login(name):
            status, body = http(self.server, "/api/login", {"name": name})
            self.assertEqual(status, 200, body)
            return body

        sleeper, player = login("Sleeper"), login("Player")

        async def match():
            base = f"ws://127.0.0.1:{self.server.port}/ws?token="
            # max_queue=1 and no pings of its own: once its app stops
            # reading, the library stops too (and answers no ping).
            async with websockets.connect(
                    base + sleeper["token"], open_timeout=STEP_TIMEOUT,
                    max_queue=1, ping_interval=None) as zs, \
                    websockets.connect(base + player["token"],
                                       open_timeout=STEP_TIMEOUT) as ws:
                await zs.send(json.dumps({"type": "JOIN_QUEUE"}))
                await ws.send(json.dumps({"type": "JOIN_QUEUE"}))
                while (await recv(zs))["type"] != "GAME_START":
                    pass
                stopped = time.monotonic()  # the sleeper reads no more
                seq, cut, deadline = 0, None, stopped + 45
                while time.monotonic() < deadline:
                    m = await recv(ws)  # a tick a second at least
                    if cut is None and self.kicks_for_write_wait() > 0:
                        cut = time.monotonic() - stopped
                    if m["type"] == "UPDATE" and "timeRemaining" in m["payload"]:
                        for _ in range(5):
                            seq += 1
                            await ws.send(json.dumps(
                                {"type": "CLICK",
                                 "payload": {"count": 1, "seq": seq}}))
                    if m["type"] == "GAME_OVER":
                        return m["payload"], cut
                raise AssertionError("no GAME_OVER within 45 s of the stop")

        over, cut = asyncio.run(match())
        self.assertIsNotNone(cut, "never cut")
        # Probes go each second, so the last pong came at most about a
        # second before the stop; the cut comes with the first tick after
        # the write wait, and is seen here with the next one.
        self.assertGreater(cut, 8, "cut before the write wait")
        self.assertLess(cut, 14, "cut late: counted from full buffers?")
        self.assertEqual(over["reason"], "opponent_disconnected")
        self.assertEqual(over["winner"], player["userId"])
        self.assertEqual(self.kicks_for_write_wait(), 1)

if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    BINARY, STATIC = sys.argv[1], sys.argv[2]
    unittest.main(argv=sys.argv[:1], verbosity=2)
