#!/usr/bin/env python3
"""tools/cluster itself: `tools/cluster 2` on two free consecutive ports
starts Redis and two instances that answer /health and the page, log
players in, accept each other's page as WebSocket Origin and send a
player of a cross-instance match to the other instance's URL (MOVE); an
instance killed with SIGKILL is reported; SIGINT then stops every process
it started (Redis and the instances) and removes its temporary directory.

The tool runs on the build under test (OC_BUILD_DIR: nothing installed or
built) with its cluster directory in a temporary directory of this test.
Every wait is bounded.

usage: test_live_cluster_tool.py OVERCOOKIED_BINARY SOURCE_DIR
"""
import asyncio
import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

import websockets

BINARY = SOURCE = None
STEP_TIMEOUT = 10   # any single HTTP call or WebSocket message
START_TIMEOUT = 60  # the tool printing "ready" (two servers and Redis)
STOP_TIMEOUT = 30   # the tool exiting after SIGINT (its own bound is 20 s)
PORT_TRIES_MAX = 8


def free_pair():
    """A port p with p+1 free too (both on 127.0.0.1), as tools/cluster
    checks them; another process may still take one before it binds, so
    the caller retries."""
    for _ in range(64):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            p = s.getsockname()[1]
        if p >= 65535:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", p + 1))
            except OSError:
                continue
        return p
    raise RuntimeError("no two consecutive free ports")


def alive(pid):
    """Whether pid runs (a zombie does not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def http(base, path, body=None, token=None, headers=None):
    h = dict(headers or {})
    if body is not None:
        h["Content-Type"] = "application/json"
    if token:
        h["Authorization"] = "Bearer " + token
    req = urllib.request.Request(
        base + path, data=json.dumps(body).encode() if body is not None
        else None, method="POST" if body is not None else "GET", headers=h)
    try:
        with urllib.request.urlopen(req, timeout=STEP_TIMEOUT) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


class Tool:
    """tools/cluster 2 on a free pair of ports; its facts (stdout lines,
    tools/lib/cluster.py (4)) read as they come."""

    def __init__(self, workdir):
        env = dict(os.environ)
        env["OC_BUILD_DIR"] = os.path.dirname(os.path.dirname(BINARY))
        env.pop("OC_JWT_SECRET", None)  # the tool makes one for both
        env.pop("OC_METRICS_TOKEN", None)
        script = os.path.join(SOURCE, "tools", "cluster")
        for _ in range(PORT_TRIES_MAX):
            self.base_port = free_pair()
            self.err_path = os.path.join(workdir, "tool.err")
            with open(self.err_path, "w") as err:
                self.proc = subprocess.Popen(
                    [script, "2", "--base-port", str(self.base_port),
                     "--dir", os.path.join(workdir, "cluster"), "--",
                     "--log-level", "info"],
                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                    stderr=err, env=env, cwd=workdir)
            self.buf = b""
            self.facts = []
            try:
                self.read_until("ready", START_TIMEOUT)
                return
            except EOFError:
                self.proc.wait(timeout=STOP_TIMEOUT)
                if "is in use" not in self.err():
                    raise AssertionError("tools/cluster failed:\n" +
                                         self.err())
        raise AssertionError("tools/cluster found no free ports")

    def err(self):
        with open(self.err_path, errors="replace") as f:
            return f.read()[-4000:]

    def read_until(self, first_word, timeout):
        """Read fact lines until one starts with first_word: its words.
        EOFError when the tool's stdout closes first."""
        deadline = time.monotonic() + timeout
        while True:
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                words = line.decode().split()
                self.facts.append(words)
                if words and words[0] == first_word:
                    return words
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no '{first_word}' line within "
                                     f"{timeout} s; saw {self.facts}; "
                                     f"stderr:\n{self.err()}")
            ready, _, _ = select.select([self.proc.stdout], [], [], left)
            if ready:
                chunk = os.read(self.proc.stdout.fileno(), 4096)
                if not chunk:
                    raise EOFError
                self.buf += chunk

    def fact(self, first_word):
        return [w for w in self.facts if w and w[0] == first_word]

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()  # its children die with it (PDEATHSIG)
            self.proc.wait(timeout=STOP_TIMEOUT)
        self.proc.stdout.close()


async def recv(ws):
    return json.loads(await asyncio.wait_for(ws.recv(), STEP_TIMEOUT))


async def until(ws, *kinds):
    deadline = time.monotonic() + STEP_TIMEOUT
    while time.monotonic() < deadline:
        m = await recv(ws)
        if m["type"] in kinds:
            return m
    raise AssertionError(f"no {' or '.join(kinds)}")


async def cross_match(bases, tokens):
    """Player 0 queues on instance 0 and player 1 on instance 1, each with
    the other instance's page as Origin: one of them is sent to the other's
    URL, arrives there (a resume) and both are in one room. Which one is
    not fixed: QUEUED does not wait for player 0's MATCH to reach Redis,
    so player 1's may run first, find no ticket and leave its own for
    player 0's to take (then instance 0 owns the room)."""
    urls = [b.replace("http://", "ws://") + "ws?token=" for b in bases]
    origins = [bases[1].rstrip("/"), bases[0].rstrip("/")]
    ws = []
    for k in range(2):
        ws.append(await websockets.connect(urls[k] + tokens[k],
                                           origin=origins[k],
                                           open_timeout=STEP_TIMEOUT))
    try:
        await ws[0].send(json.dumps({"type": "JOIN_QUEUE"}))
        await until(ws[0], "QUEUED")
        await ws[1].send(json.dumps({"type": "JOIN_QUEUE"}))
        first = await until(ws[1], "GAME_START", "MOVE")
        if first["type"] == "GAME_START":
            owner, start = 1, first
            move = await until(ws[0], "MOVE")
        else:
            owner, move = 0, first
            start = await until(ws[0], "GAME_START")
        mover = 1 - owner
        assert move["payload"]["url"] == urls[owner].split("?")[0], move
        await ws[mover].close()
        ws[mover] = await websockets.connect(
            move["payload"]["url"] + "?token=" + tokens[mover],
            origin=origins[mover], open_timeout=STEP_TIMEOUT)
        back = await until(ws[mover], "GAME_START")
        assert back["payload"].get("resumed") is True, back
        assert back["payload"]["roomId"] == start["payload"]["roomId"]
        return move
    finally:
        for w in ws:
            await w.close()


class ClusterTool(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="oc-live-cluster-")
        self.tool = Tool(self.tmp.name)

    def tearDown(self):
        self.tool.kill()
        self.tmp.cleanup()

    def test_starts_serves_reports_a_death_and_stops_everything(self):
        tool = self.tool
        (redis,) = tool.fact("redis")
        (tmpdir,) = tool.fact("tmpdir")
        instances = tool.fact("instance")
        self.assertEqual(len(instances), 2, tool.facts)
        tmpdir = tmpdir[1]
        redis_pid = int(redis[3])
        pids = [redis_pid] + [int(i[4]) for i in instances]
        bases = [i[2] for i in instances]
        self.assertEqual(bases, [f"http://127.0.0.1:{tool.base_port + k}/"
                                 for k in range(2)])
        self.assertTrue(os.path.isdir(tmpdir))
        for pid in pids:
            self.assertTrue(alive(pid), pid)

        tokens = []
        for base in bases:
            status, body = http(base, "health")
            self.assertEqual((status, json.loads(body)),
                             (200, {"status": "healthy"}))
            status, body = http(base, "")
            self.assertEqual(status, 200)
            self.assertIn(b"<html", body.lower())
            status, body = http(base, "api/login", {"name": "Ada"})
            self.assertEqual(status, 200, body)
            tokens.append(json.loads(body)["token"])
        # One secret: a token from either instance is good on the other.
        for base, token in zip(bases, reversed(tokens)):
            status, body = http(base, "api/history", token=token)
            self.assertEqual(status, 200, body)
        asyncio.run(cross_match(bases, tokens))

        # An instance that dies is reported; the tool runs on.
        os.kill(pids[2], signal.SIGKILL)
        words = tool.read_until("exited", STEP_TIMEOUT)
        self.assertEqual(words[:2], ["exited", "i2"], words)
        self.assertIn("SIGKILL", " ".join(words))
        self.assertIsNone(tool.proc.poll())

        tool.proc.send_signal(signal.SIGINT)
        self.assertEqual(tool.proc.wait(timeout=STOP_TIMEOUT), 0,
                         tool.err())
        # The rest stopped as asked: the instance drained and exited 0 (an
        # ASan build's leak report would make it 1), and so did Redis.
        with self.assertRaises(EOFError):
            tool.read_until("never", STEP_TIMEOUT)
        self.assertEqual(sorted(tool.fact("stopped")),
                         [["stopped", "i1", "status", "exit", "0"],
                          ["stopped", "redis", "status", "exit", "0"]],
                         tool.err())
        deadline = time.monotonic() + STEP_TIMEOUT
        while time.monotonic() < deadline and any(alive(p) for p in pids):
            time.sleep(0.05)
        self.assertEqual([p for p in pids if alive(p)], [], tool.err())
        self.assertFalse(os.path.exists(tmpdir))
        for base in bases:  # nothing answers on the instances' ports
            with self.assertRaises(OSError):
                http(base, "health")


if __name__ == "__main__":
    BINARY = os.path.abspath(sys.argv[1])
    SOURCE = os.path.abspath(sys.argv[2])
    unittest.main(argv=sys.argv[:1], verbosity=2)
