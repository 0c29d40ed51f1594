#!/usr/bin/env python3
"""The original Next.js frontend's HTTP side against the real server.

The frontend runs on its own origin (here http://localhost:3000) and calls
the server cross-origin, as a browser does: a preflight OPTIONS with
Origin and Access-Control-Request-Method/-Headers, then the request itself
with credentials ("credentials: 'include'") and a Bearer token. This test
sends exactly those requests with urllib, checks what a browser checks
(the CORS headers) and what the frontend reads (the JSON fields): guest
login, GET /auth/verify with a good token and a bad one (401), POST
/auth/logout (204), a game played by two python3-websockets players
connecting from the frontend's origin, then GET /api/history with both
sets of field names (ours and the original's). An origin that is not
configured gets no CORS header and its preflight fails (405).

The server records a trace while this runs; it must replay whole: the
token checks of /auth/verify go through the game's recorded path.

usage: test_live_frontend.py OVERCOOKIED REPLAY STATIC_DIR
"""
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

import websockets

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_live_game as live  # noqa: E402  (Server)

BINARY = REPLAY = STATIC = None
FRONTEND = "http://localhost:3000"
OTHER = "http://localhost:3001"
STEP_TIMEOUT = 10  # seconds for any single wait
CORS_HEADERS = ("Access-Control-Allow-Origin",
                "Access-Control-Allow-Credentials",
                "Access-Control-Allow-Methods",
                "Access-Control-Allow-Headers", "Access-Control-Max-Age")


class Answer:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        return json.loads(self.body)

    def header(self, name):
        return self.headers.get(name)


def request(server, method, path, origin=None, token=None, body=None,
            headers=None):
    """One request as the frontend's fetch() sends it; any status."""
    h = dict(headers or {})
    if origin is not None:
        h["Origin"] = origin
    if token is not None:
        h["Authorization"] = "Bearer " + token
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        h["Content-Type"] = "application/json"
    req = urllib.request.Request(server.base + path, method=method, data=data,
                                 headers=h)
    try:
        with urllib.request.urlopen(req, timeout=STEP_TIMEOUT) as r:
            return Answer(r.status, r.headers, r.read())
    except urllib.error.HTTPError as e:
        return Answer(e.code, e.headers, e.read())


def preflight(server, path, method, origin=FRONTEND):
    """What a browser sends before a credentialed JSON call with a token."""
    return request(server, "OPTIONS", path, origin=origin, headers={
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "authorization,content-type"})


async def recv(ws):
    return json.loads(await asyncio.wait_for(ws.recv(), STEP_TIMEOUT))


async def play(server, token, clicks_per_tick):
    """One game from the frontend's origin; returns the messages seen."""
    url = f"ws://127.0.0.1:{server.port}/ws?token={token}"
    seen = []
    async with websockets.connect(url, origin=FRONTEND,
                                  open_timeout=STEP_TIMEOUT) as ws:
        await ws.send(json.dumps({"type": "JOIN_QUEUE", "payload": {}}))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            m = await recv(ws)
            seen.append(m)
            if m["type"] == "UPDATE" and "timeRemaining" in m["payload"]:
                for _ in range(clicks_per_tick):
                    await ws.send(json.dumps(
                        {"type": "CLICK", "payload": {"count": 1}}))
            if m["type"] == "GAME_OVER":
                return seen
    raise AssertionError("no GAME_OVER")


class Frontend(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.trace = os.path.join(self.tmp.name, "trace")
        self.server = live.Server(
            os.path.join(self.tmp.name, "front.db"),
            "--cors-origin", FRONTEND, "--allowed-origin", FRONTEND,
            "--countdown", "1", "--game-length", "2", "--record", self.trace)
        self.stopped = False

    def tearDown(self):
        if not self.stopped:
            self.server.stop()
        self.tmp.cleanup()

    def assert_cors(self, answer, what):
        self.assertEqual(answer.header("Access-Control-Allow-Origin"),
                         FRONTEND, what)
        self.assertEqual(answer.header("Access-Control-Allow-Credentials"),
                         "true", what)
        self.assertEqual(answer.header("Vary"), "Origin", what)

    def assert_preflight(self, path, method, methods):
        a = preflight(self.server, path, method)
        self.assertEqual(a.status, 204, path)
        self.assert_cors(a, path)
        self.assertEqual(a.header("Access-Control-Allow-Methods"), methods)
        allowed = [h.strip().lower() for h in
                   a.header("Access-Control-Allow-Headers").split(",")]
        self.assertIn("authorization", allowed)
        self.assertIn("content-type", allowed)
        self.assertEqual(a.header("Access-Control-Max-Age"), "600")
        self.assertIsNone(a.header("Content-Length"), "a 204 has none")
        self.assertEqual(a.body, b"")

    def login(self, name):
        self.assert_preflight("/api/login", "POST", "POST")
        a = request(self.server, "POST", "/api/login", origin=FRONTEND,
                    body={"name": name})
        self.assertEqual(a.status, 200, a.body)
        self.assert_cors(a, "login")
        return a.json()

    def test_the_frontends_session_game_and_history(self):
        ada, bob = self.login("Ada"), self.login("Bob")

        # The callback and every page load: GET /auth/verify.
        self.assert_preflight("/auth/verify", "GET", "GET, HEAD")
        a = request(self.server, "GET", "/auth/verify", origin=FRONTEND,
                    token=ada["token"],
                    headers={"Content-Type": "application/json"})
        self.assertEqual(a.status, 200, a.body)
        self.assert_cors(a, "verify")
        self.assertEqual(a.json(), {"id": ada["userId"], "name": "Ada",
                                    "email": "", "picture": "",
                                    "token": ada["token"]})
        for bad in ("not.a.token", ada["token"][:-2], ""):
            a = request(self.server, "GET", "/auth/verify", origin=FRONTEND,
                        token=bad if bad else None)
            self.assertEqual(a.status, 401, bad)
            self.assert_cors(a, "a 401 the page may read")
            self.assertIn("error", a.json())

        # The game, from the frontend's origin.
        async def both():
            return await asyncio.gather(play(self.server, ada["token"], 3),
                                        play(self.server, bob["token"], 1))
        ada_seen, _ = asyncio.run(both())
        over = ada_seen[-1]["payload"]
        self.assertEqual(over["reason"], "time")
        self.assertEqual(over["winner"], ada["userId"])

        # The dashboard's history, with the token (the original frontend
        # sent ?userId= and no token: that is a 401 here, by design).
        self.assert_preflight("/api/history", "GET", "GET, HEAD")
        a = request(self.server, "GET", "/api/history?userId=" +
                    ada["userId"], origin=FRONTEND)
        self.assertEqual(a.status, 401)
        self.assert_cors(a, "history without a token")
        a = request(self.server, "GET", "/api/history", origin=FRONTEND,
                    token=ada["token"])
        self.assertEqual(a.status, 200, a.body)
        self.assert_cors(a, "history")
        hist = a.json()
        self.assertEqual(hist["totalCount"], 1)
        game = hist["games"][0]
        for ours in ("gameId", "timestamp", "score", "opponentScore",
                     "opponent", "opponentName", "won", "winner", "reason"):
            self.assertIn(ours, game)
        self.assertEqual(game["winner"], ada["userId"])
        self.assertEqual(game["opponent"], bob["userId"])
        self.assertEqual(game["opponentName"], "Bob")
        self.assertTrue(game["won"])
        # The original's names, as its GameHistory component maps them.
        self.assertEqual(game["winnerId"], ada["userId"])
        self.assertEqual(game["playerName"], "Ada")
        self.assertEqual(game["playerPicture"], "")
        self.assertEqual(game["opponentPicture"], "")
        a = request(self.server, "GET", "/api/history", origin=FRONTEND,
                    token=bob["token"])
        game = a.json()["games"][0]
        self.assertEqual((game["playerName"], game["winnerId"], game["won"]),
                         ("Bob", ada["userId"], False))

        # The leaderboard, which needs no token.
        a = request(self.server, "GET", "/api/leaderboard", origin=FRONTEND)
        self.assertEqual(a.status, 200)
        self.assert_cors(a, "leaderboard")

        # Logout: nothing to revoke; the token still verifies after it.
        self.assert_preflight("/auth/logout", "POST", "POST")
        a = request(self.server, "POST", "/auth/logout", origin=FRONTEND,
                    token=ada["token"],
                    headers={"Content-Type": "application/json"})
        self.assertEqual(a.status, 204)
        self.assert_cors(a, "logout")
        self.assertEqual(a.body, b"")
        self.assertIsNone(a.header("Content-Length"))
        a = request(self.server, "GET", "/auth/verify", token=ada["token"])
        self.assertEqual(a.status, 200)

        # The recording replays whole, /auth/verify's token checks included.
        self.assertEqual(self.server.stop(), 0)
        self.stopped = True
        r = subprocess.run([REPLAY, self.trace], capture_output=True,
                           text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("replay: ok: the whole recording", r.stdout)

    def test_an_origin_not_configured_gets_no_cors(self):
        ada = self.login("Ada")
        for origin in (OTHER, FRONTEND + "/", "null", None):
            a = preflight(self.server, "/auth/verify", "GET", origin=origin)
            self.assertEqual(a.status, 405, origin)
            self.assertEqual(a.header("Allow"), "GET, HEAD")
            a = request(self.server, "GET", "/auth/verify", origin=origin,
                        token=ada["token"])
            self.assertEqual(a.status, 200, origin)  # curl still works
            for name in CORS_HEADERS:
                self.assertIsNone(a.header(name), (origin, name))
        # The configured origin gets none off the API: page, health.
        for path in ("/", "/health"):
            a = request(self.server, "GET", path, origin=FRONTEND)
            self.assertEqual(a.status, 200)
            self.assertIsNone(a.header("Access-Control-Allow-Origin"), path)


if __name__ == "__main__":
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    BINARY, REPLAY, STATIC = sys.argv[1:4]
    live.BINARY, live.STATIC = BINARY, STATIC
    unittest.main(argv=sys.argv[:1], verbosity=2)
