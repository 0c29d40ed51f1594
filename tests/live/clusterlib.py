"""clusterlib: a private Redis, cluster instances and players that follow
MOVE, for the live cluster tests.

    redis = Redis()                      # redis-server on a free port
    a = Instance(BINARY, STATIC, db, redis, "a", "--game-length", "3")
    p = Player("Ada", a)                 # logged in on instance a
    result = await p.play()              # join, follow MOVEs, click, end
    redis.kill(); redis.start()          # a restart, its data gone

Every wait is bounded; every process dies with this one (livelib's
PR_SET_PDEATHSIG) and is stopped by its owner's stop()/kill().
"""
import asyncio
import json
import os
import signal
import socket
import subprocess
import tempfile
import time

import websockets

import livelib
from livelib import STEP_TIMEOUT, http

WS_OPEN_TIMEOUT = 2.0  # a stopped instance takes the TCP connect, then
                       # says nothing: give up on it this soon


def free_port():
    """A loopback port nothing listens on now (the cluster needs fixed
    ports: an instance's URL is sent to the others' players)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Redis:
    """redis-server on 127.0.0.1 (or `bind`), a free port, no persistence: a restart
    (kill, then start) loses every key, the hardest case."""

    def __init__(self, password=None, bind="127.0.0.1"):
        self._tmp = tempfile.TemporaryDirectory(prefix="oc-redis-")
        self.port = free_port()
        self.password = password
        self.bind = bind
        host = "[%s]" % bind if ":" in bind else bind
        self.url = "redis://%s:%d" % (host, self.port)
        self.proc = None
        self.start()

    def start(self):
        log = open(os.path.join(self._tmp.name, "redis.log"), "a")
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", self.bind,
             "--save", "", "--appendonly", "no", "--dir", self._tmp.name,
             *(["--requirepass", self.password] if self.password else [])],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            preexec_fn=livelib.die_with_parent)
        log.close()
        deadline = time.monotonic() + STEP_TIMEOUT
        while time.monotonic() < deadline:
            try:
                if self.cli("PING") == "PONG":
                    return
            except (subprocess.SubprocessError, OSError):
                pass
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def cli(self, *args):
        """One command through redis-cli; its output, stripped."""
        auth = ["--no-auth-warning", "-a", self.password] if self.password \
            else []
        out = subprocess.run(
            ["redis-cli", "-h", self.bind, "-p", str(self.port), *auth,
             *args],
            capture_output=True, text=True, timeout=STEP_TIMEOUT)
        return out.stdout.strip()

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=STEP_TIMEOUT)

    def stop(self):
        self.kill()
        self._tmp.cleanup()


class Instance(livelib.Server):
    """One cluster instance on a free fixed port, named `name`."""

    def __init__(self, binary, static, db, redis, name, *extra, port=None,
                 url=None):
        self.name = name
        port = port or free_port()
        self.args = (binary, static, db, "--port", str(port), "--redis",
                     url or redis.url, "--instance-id", name, *extra)
        super().__init__(*self.args)
        self.ws_url = "ws://127.0.0.1:%d/ws" % self.port

    def restart(self):
        livelib.Server.__init__(self, *self.args)

    def metrics(self):
        """/metrics as {series: value}."""
        import urllib.request
        with urllib.request.urlopen(self.base + "/metrics",
                                    timeout=STEP_TIMEOUT) as r:
            text = r.read().decode()
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                k, v = line.rsplit(" ", 1)
                out[k] = float(v)
        return out

    def pause(self):
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self):
        self.proc.send_signal(signal.SIGCONT)


class Player:
    """A player logged in on `home` (its instance of first resort, as a
    page is served by one); `log` keeps every message received."""

    def __init__(self, name, home):
        self.name = name
        self.home = home
        status, body = http(home, "/api/login", {"name": name})
        assert status == 200, (status, body)
        self.token = body["token"]
        self.uid = body["userId"]
        self.ws = None
        self.url = home.ws_url
        self.log = []
        self.moves = []
        self.starts = []
        self.over = None

    async def connect(self, url=None):
        self.url = url or self.home.ws_url
        self.ws = await websockets.connect(
            self.url + "?token=" + self.token, open_timeout=WS_OPEN_TIMEOUT,
            close_timeout=1)

    async def send(self, type_, payload=None):
        await self.ws.send(json.dumps({"type": type_,
                                       "payload": payload or {}}))

    async def recv(self, timeout):
        m = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
        self.log.append((self.url, m))
        return m

    async def recv_type(self, types, timeout=STEP_TIMEOUT):
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise asyncio.TimeoutError("%s: none of %s" % (self.name, types))
            m = await self.recv(left)
            if m["type"] in types:
                return m

    async def follow(self, move):
        """MOVE: the server closes 4001; connect to its url."""
        self.moves.append(move["payload"])
        try:
            await asyncio.wait_for(self.ws.wait_closed(), STEP_TIMEOUT)
        finally:
            assert self.ws.close_code == 4001, self.ws.close_code
        await self.connect(move["payload"]["url"])

    async def join(self):
        """Connect home if needed and JOIN_QUEUE; the first answer."""
        if self.ws is None or self.ws.closed:
            await self.connect()
        await self.send("JOIN_QUEUE")
        return await self.recv_type(["QUEUED", "ERROR", "MOVE", "GAME_START"])

    async def play(self, clicks=3, timeout=40, first=None):
        """Join (unless `first`, the answer already had), follow MOVEs to
        the owner, click in the game, return the GAME_OVER payload."""
        m = first or await self.join()
        deadline = time.monotonic() + timeout
        clicked = 0
        while True:
            if m["type"] == "MOVE":
                await self.follow(m)
            elif m["type"] == "GAME_START":
                self.starts.append((self.url, m["payload"]))
            elif m["type"] == "UPDATE" and "timeRemaining" in m["payload"] \
                    and clicked < clicks:
                await self.send("CLICK")
                clicked += 1
            elif m["type"] == "GAME_OVER":
                self.over = m["payload"]
                return self.over
            elif m["type"] == "ERROR" and m["payload"]["code"] != "not_in_game":
                raise AssertionError("%s: %s" % (self.name, m))
            left = deadline - time.monotonic()
            if left <= 0:
                raise asyncio.TimeoutError(self.name + ": no GAME_OVER")
            m = await self.recv(left)

    async def come_back(self, instance, timeout=30):
        """Reconnect to `instance` (as a page reloads) until told how the
        game ended; follows MOVEs, and goes back to `instance` when a MOVE
        target does not answer (its instance stopped). The GAME_OVER."""
        deadline = time.monotonic() + timeout
        url = instance.ws_url
        while time.monotonic() < deadline:
            try:
                await self.connect(url)
                m = await self.recv_type(["MOVE", "GAME_START", "GAME_OVER"],
                                         timeout=3)
            except (OSError, asyncio.TimeoutError,
                    websockets.exceptions.WebSocketException):
                url = instance.ws_url
                await asyncio.sleep(0.2)
                continue
            if m["type"] == "GAME_OVER":
                self.over = m["payload"]
                return self.over
            if m["type"] == "MOVE":
                self.moves.append(m["payload"])
                url = m["payload"]["url"]
                await self.close()
                continue
            self.starts.append((self.url, m["payload"]))
            return await self.play(first={"type": "UPDATE", "payload": {}},
                                   timeout=deadline - time.monotonic())
        raise asyncio.TimeoutError(self.name + ": never told the end")

    async def close(self):
        if self.ws is not None:
            await self.ws.close()
