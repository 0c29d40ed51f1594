#!/usr/bin/env python3
"""The load generator against a live server: what it reports must be true.

tools/bench takes every figure from overcookied-load's --json line, so this
checks that line against what the server itself saw (its /metrics and its
history), and that a broken run is reported as broken. Small and short:
40 players, 2-second games, a 4-second window. Every wait is bounded.

usage: test_live_load.py OVERCOOKIED_BINARY OVERCOOKIED_LOAD STATIC_DIR
"""
import json
import os
import socket
import subprocess
import sys
import tempfile
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_live_game as game  # noqa: E402  (the game Server helper)

LOAD = None
PLAYERS = 40
RUN_TIMEOUT_S = 60


def metrics(server):
    with urllib.request.urlopen(server.base + "/metrics", timeout=10) as r:
        out = {}
        for line in r.read().decode().splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                out[name] = float(value)
        return out


def load(url, *args):
    p = subprocess.run([LOAD, "--url", url, "--json", *args],
                       capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    lines = [l for l in p.stdout.splitlines() if l.startswith("{")]
    return p.returncode, (json.loads(lines[-1]) if lines else None), p.stderr


class LoadGenerator(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="oc-load-")
        self.server = game.Server(os.path.join(self.tmp.name, "load.db"),
                                  "--countdown", "0.3", "--game-length", "2")

    def tearDown(self):
        self.server.stop()
        self.tmp.cleanup()

    def test_play_figures_match_what_the_server_saw(self):
        m0 = metrics(self.server)
        code, r, err = load(self.server.base, "--players", str(PLAYERS),
                            "--rate", "5", "--duration", "4", "--ramp", "1",
                            "--server-pid", str(self.server.proc.pid))
        self.assertEqual(code, 0, err)
        print(json.dumps(r))
        self.assertEqual(r["players"], PLAYERS)
        self.assertEqual(r["logins"], PLAYERS)
        self.assertEqual(r["connections"], PLAYERS)
        self.assertEqual(r["connect_failures"], 0)
        self.assertEqual(r["unexpected_closes"], 0)
        self.assertEqual(r["errors"], 0)
        # Everyone is paired at once; 2-second games finish and re-queue.
        self.assertGreaterEqual(r["matches_started"], PLAYERS // 2)
        self.assertGreaterEqual(r["matches_finished"], PLAYERS // 2)
        # 40 players x 5 clicks/s over about 4 s, each click acknowledged.
        self.assertGreater(r["clicks_sent"], PLAYERS * 5 * 4 // 2)
        # A click that crosses a game's end is answered not_in_game, never
        # acked: the generator counts it late, not missing and not an error.
        # At 5 clicks/s and sub-millisecond round trips, a player has at most
        # one click in flight when its game ends.
        self.assertEqual(r["acks_missing"], 0)
        self.assertLessEqual(r["late_clicks"], 2 * r["matches_finished"])
        self.assertGreater(r["acks"], 0)
        lat = r["latency_ms"]
        self.assertTrue(0 < lat["p50"] <= lat["p90"] <= lat["p99"]
                        <= lat["p999"] <= lat["max"], lat)
        # The server's CPU was read from /proc, and divided by the acks
        # (server_cpu_s is printed to the millisecond).
        self.assertGreater(r["server_cpu_s"], 0)
        self.assertAlmostEqual(r["cpu_us_per_ack"],
                               r["server_cpu_s"] * 1e6 / r["acks"],
                               delta=600 / r["acks"] + 0.01)
        self.assertGreater(r["server_rss_kb"], 0)

        # What the server counted: at least every click the window counted
        # arrived as a WebSocket message, and the finished matches are in
        # the history of a player.
        m1 = metrics(self.server)
        key = 'overcookied_ws_messages_total{direction="in"}'
        self.assertGreaterEqual(m1[key] - m0[key], r["clicks_sent"])
        key = 'overcookied_connections{kind="websocket"}'
        self.assertEqual(m1[key], 0)  # the generator closed them all

    def test_idle_mode_measures_memory_per_connection(self):
        code, r, err = load(self.server.base, "--players", str(PLAYERS),
                            "--mode", "idle", "--duration", "1", "--ramp",
                            "1", "--server-pid", str(self.server.proc.pid))
        self.assertEqual(code, 0, err)
        self.assertEqual(r["connections"], PLAYERS)
        self.assertEqual(r["clicks_sent"], 0)
        self.assertEqual(r["matches_started"], 0)
        self.assertGreater(r["bytes_per_connection"], 0)


class BrokenRuns(unittest.TestCase):
    def test_no_server_is_a_broken_run(self):
        with socket.socket() as s:  # a port nobody listens on
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        code, r, err = load(f"http://127.0.0.1:{port}", "--players", "5",
                            "--duration", "1", "--ramp", "0.2")
        self.assertEqual(code, 1, err)
        self.assertIn("run broken", err)
        self.assertEqual(r["connections"], 0)
        self.assertEqual(r["connect_failures"], 5)

    def test_bad_arguments_are_refused(self):
        for args in (["--players", "0"], ["--rate", "x"], ["--mode", "nap"],
                     ["--url", "ftp://host/"], ["--nonsense"]):
            code, r, err = load("http://127.0.0.1:1", *args)
            self.assertEqual(code, 2, (args, err))
            self.assertIsNone(r)
            self.assertIn("usage", err)


def main():
    global LOAD
    if len(sys.argv) < 4:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    game.BINARY = os.path.abspath(sys.argv[1])
    LOAD = os.path.abspath(sys.argv[2])
    game.STATIC = os.path.abspath(sys.argv[3])
    unittest.main(argv=[sys.argv[0]] + sys.argv[4:], verbosity=2)


if __name__ == "__main__":
    main()
