#!/usr/bin/env python3
"""What an operator meets when starting the server: the token key's
minimum, the warnings for an open Origin check and an open /metrics on a
public address, the /metrics token (also through a recording and its
replay, which never holds the token), and the browser files found beside
the program from any working directory (or a loud warning when there are
none).

Each server here binds 127.0.0.1 on port 0, except the one that names a
TEST-NET address (192.0.2.1, RFC 5737) that no interface holds: its bind
fails at once, no packet is sent, and its warning is printed before that.
Every wait is bounded.

usage: test_live_operator.py OVERCOOKIED_BINARY REPLAY_BINARY
"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import unittest
import urllib.error
import urllib.request

BINARY = REPLAY = None
STEP_TIMEOUT = 10  # seconds for any single wait
KEY_16 = "0123456789abcdef"


def run_to_exit(*args, env=None):
    """Run the server until it exits by itself; (code, stdout + stderr)."""
    p = subprocess.run([BINARY, "--port", "0", "--db", ":memory:", *args],
                       capture_output=True, text=True, timeout=STEP_TIMEOUT,
                       env=env, cwd="/")
    return p.returncode, p.stdout + p.stderr


class Running:
    """A server started from `cwd` until its "listening" line."""

    def __init__(self, *args, binary=None, env=None, cwd="/"):
        self.proc = subprocess.Popen(
            [binary or BINARY, "--port", "0", "--db", ":memory:",
             "--log-level", "warn", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=env, cwd=cwd)
        line = self.proc.stdout.readline()
        if "listening on" not in line:
            self.proc.kill()
            raise RuntimeError("no listening line: " + line +
                               self.proc.stderr.read())
        self.base = line.split("listening on ")[1].strip().rstrip("/")

    def stop(self):
        """SIGTERM; returns what it wrote on stderr."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=STEP_TIMEOUT)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
        err = self.proc.stderr.read()
        self.proc.stdout.close()
        self.proc.stderr.close()
        return err


def env_without_key(**extra):
    env = {k: v for k, v in os.environ.items() if k != "OC_JWT_SECRET"}
    env.update(extra)
    return env


def get(base, path, headers=None):
    req = urllib.request.Request(base + path, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=STEP_TIMEOUT) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")


class TokenKey(unittest.TestCase):
    def test_secret_below_the_minimum_is_refused_with_exit_2(self):
        code, out = run_to_exit("--secret", KEY_16[:15], env=env_without_key())
        self.assertEqual(code, 2, out)
        self.assertIn("--secret is 15 characters", out)
        self.assertIn("at least 16", out)

    def test_environment_key_below_the_minimum_is_refused_with_exit_2(self):
        code, out = run_to_exit(env=env_without_key(OC_JWT_SECRET="short"))
        self.assertEqual(code, 2, out)
        self.assertIn("OC_JWT_SECRET is 5 characters", out)
        self.assertIn("at least 16", out)

    def test_a_key_at_the_minimum_serves(self):
        for args, env in (((("--secret", KEY_16)), env_without_key()),
                          ((), env_without_key(OC_JWT_SECRET=KEY_16))):
            s = Running(*args, env=env)
            try:
                status, body = get(s.base, "/health")
                self.assertEqual(status, 200)
            finally:
                err = s.stop()
            self.assertNotIn("random", err)

    def test_help_states_the_minimum(self):
        p = subprocess.run([BINARY, "--help"], capture_output=True,
                           text=True, timeout=STEP_TIMEOUT)
        self.assertEqual(p.returncode, 0)
        self.assertIn("at least 16 characters", p.stdout)


class OriginWarning(unittest.TestCase):
    def test_public_address_without_allowed_origin_warns(self):
        code, out = run_to_exit("--bind", "192.0.2.1", "--secret", KEY_16)
        self.assertEqual(code, 1, out)  # nobody holds that address
        self.assertIn("WARNING: listening on 192.0.2.1 without "
                      "--allowed-origin", out)

    def test_no_warning_with_an_allowed_origin_or_on_loopback(self):
        code, out = run_to_exit("--bind", "192.0.2.1", "--secret", KEY_16,
                                "--allowed-origin", "https://example.org")
        self.assertEqual(code, 1, out)
        self.assertNotIn("--allowed-origin", out.split("usage")[0])
        s = Running("--secret", KEY_16)
        self.assertNotIn("WARNING", s.stop())


class MetricsToken(unittest.TestCase):
    def test_a_short_metrics_token_is_refused_with_exit_2(self):
        code, out = run_to_exit("--metrics-token", KEY_16[:15])
        self.assertEqual(code, 2, out)
        self.assertIn("--metrics-token is 15 characters", out)
        code, out = run_to_exit(env=env_without_key(OC_METRICS_TOKEN="x"))
        self.assertEqual(code, 2, out)
        self.assertIn("OC_METRICS_TOKEN is 1 characters", out)

    def test_public_address_with_open_metrics_warns(self):
        code, out = run_to_exit("--bind", "192.0.2.1", "--secret", KEY_16)
        self.assertIn("WARNING: /metrics is open", out)
        code, out = run_to_exit("--bind", "192.0.2.1", "--secret", KEY_16,
                                "--metrics-token", KEY_16)
        self.assertNotIn("/metrics is open", out)

    def test_the_token_guards_metrics_and_a_recording_replays_without_it(self):
        with tempfile.TemporaryDirectory() as d:
            rec = os.path.join(d, "rec")
            s = Running("--secret", KEY_16, "--seed", "3",
                        "--record", rec, env=env_without_key(
                            OC_METRICS_TOKEN="metrics-token-0123456789"))
            try:
                self.assertEqual(get(s.base, "/metrics")[0], 401)
                bad = {"Authorization": "Bearer metrics-token-012345678"}
                self.assertEqual(get(s.base, "/metrics", bad)[0], 401)
                good = {"Authorization": "Bearer metrics-token-0123456789"}
                status, body = get(s.base, "/metrics", good)
                self.assertEqual(status, 200)
                self.assertIn("overcookied_connections", body)
                # The last of the game's lines: the text is whole.
                self.assertIn('overcookied_game_over_unsent_total'
                              '{event="given_up"} 0', body)
            finally:
                s.stop()
            traces = sorted(os.listdir(rec))
            self.assertTrue(traces, "a trace was written")
            raw = b"".join(open(os.path.join(rec, t), "rb").read()
                           for t in traces)
            # The flags say a token was set, not which; the bytes of a
            # request that carried it are input, recorded like any other.
            self.assertIn(b"--metrics-token\n(redacted", raw)
            self.assertNotIn(b"--metrics-token\nmetrics-token-0123", raw)
            p = subprocess.run([REPLAY, os.path.join(rec, traces[0])],
                               capture_output=True, text=True,
                               timeout=60)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            self.assertIn("replay: ok", p.stdout + p.stderr)


class PerAddress(unittest.TestCase):
    def test_loopback_peers_are_not_capped_per_address(self):
        import socket
        s = Running("--secret", KEY_16, "--max-connections-per-address", "1",
                    "--logins-per-minute", "1")
        socks = []
        try:
            port = int(s.base.rsplit(":", 1)[1])
            for _ in range(3):
                c = socket.create_connection(("127.0.0.1", port),
                                             timeout=STEP_TIMEOUT)
                socks.append(c)
            for c in socks:
                c.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
                self.assertIn(b" 200 ", c.recv(4096))
            for _ in range(3):
                req = urllib.request.Request(
                    s.base + "/api/login", data=b'{"name":"Lou"}',
                    headers={"Content-Type": "application/json"})
                with urllib.request.urlopen(req, timeout=STEP_TIMEOUT) as r:
                    self.assertEqual(r.status, 200)
        finally:
            for c in socks:
                c.close()
            s.stop()


class LobbyIdle(unittest.TestCase):
    def test_a_silent_lobby_websocket_is_closed_4002_after_lobby_idle(self):
        import asyncio
        import json
        import time
        import websockets
        s = Running("--secret", KEY_16, "--lobby-idle", "1")
        try:
            req = urllib.request.Request(
                s.base + "/api/login", data=b'{"name":"Ida"}',
                headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=STEP_TIMEOUT) as r:
                token = json.loads(r.read())["token"]
            url = s.base.replace("http://", "ws://") + "/ws?token=" + token

            async def wait_close():
                async with websockets.connect(
                        url, origin=s.base, open_timeout=STEP_TIMEOUT) as ws:
                    t0 = time.monotonic()
                    try:
                        await asyncio.wait_for(ws.recv(), STEP_TIMEOUT)
                    except websockets.ConnectionClosed as e:
                        return e.rcvd.code if e.rcvd else None, \
                            time.monotonic() - t0
                    return "message", 0

            code, after = asyncio.run(wait_close())
            self.assertEqual(code, 4002)
            self.assertGreater(after, 0.5)
            status, body = get(s.base, "/metrics")
            self.assertIn('overcookied_kicks_total{reason="idle"} 1', body)
        finally:
            s.stop()


class DeployFiles(unittest.TestCase):
    """tools/deploy/overcookied.service runs flags this server takes."""

    def exec_start(self):
        unit = os.path.join(os.path.dirname(__file__), "..", "..", "tools",
                            "deploy", "overcookied.service")
        text = open(unit).read().replace("\\\n", " ")
        line = next(l for l in text.splitlines()
                    if l.startswith("ExecStart="))
        argv = line[len("ExecStart="):].split()
        self.assertEqual(argv[0], "/usr/local/bin/overcookied")
        return argv[1:]

    def test_the_unit_starts_the_server_it_describes(self):
        args = self.exec_start()
        self.assertIn("--allowed-origin", args)
        p = subprocess.run([BINARY, *args, "--help"], capture_output=True,
                           text=True, timeout=STEP_TIMEOUT)
        self.assertEqual(p.returncode, 0, p.stderr)
        with tempfile.TemporaryDirectory() as d:
            db = os.path.join(d, "unit.db")
            s = Running(*args, "--port", "0", "--db", db,
                        env=env_without_key(OC_JWT_SECRET=KEY_16,
                                            OC_METRICS_TOKEN=KEY_16))
            try:
                self.assertTrue(s.base.startswith("http://127.0.0.1:"))
                self.assertEqual(get(s.base, "/health")[0], 200)
                self.assertEqual(get(s.base, "/metrics")[0], 401)
            finally:
                err = s.stop()
            self.assertNotIn("WARNING", err)


class BrowserFiles(unittest.TestCase):
    def test_found_beside_the_program_from_any_directory(self):
        for cwd in ("/", tempfile.gettempdir()):
            s = Running("--secret", KEY_16, cwd=cwd)
            try:
                status, body = get(s.base, "/")
                self.assertEqual(status, 200)
                self.assertIn("<html", body.lower())
            finally:
                err = s.stop()
            self.assertNotIn("WARNING", err)

    def test_none_found_is_said_loudly_at_start(self):
        with tempfile.TemporaryDirectory() as d:
            os.mkdir(os.path.join(d, "bin"))
            lone = os.path.join(d, "bin", "overcookied")
            shutil.copy(BINARY, lone)
            s = Running("--secret", KEY_16, binary=lone)
            err = s.stop()
        self.assertIn("WARNING: no browser files", err)
        self.assertIn("pass --static DIR", err)


if __name__ == "__main__":
    BINARY = os.path.abspath(sys.argv[1])
    REPLAY = os.path.abspath(sys.argv[2])
    unittest.main(argv=[sys.argv[0], "-v"])
