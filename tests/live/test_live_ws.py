#!/usr/bin/python3
"""test_live_ws.py: the live server on loopback, driven by a real WebSocket
client we did not write (Debian's python3-websockets) and by urllib.

    /usr/bin/python3 tests/live/test_live_ws.py SERVER_BINARY STATIC_DIR [unittest args]

Each test class starts its own overcookied --echo (WebSocket sessions echo
text, no token) on 127.0.0.1 with --port 0, reads the port it prints, waits
for /health, and stops it with SIGTERM at the end (which must exit 0). Protocol violations the library refuses to send (invalid
UTF-8 in a text frame, an unmasked client frame) go over a plain socket with
a hand-made handshake and hand-made frames.

Every wait is bounded: asyncio calls run under wait_for, sockets have
timeouts, subprocess waits have timeouts. Use /usr/bin/python3: the Debian
package is installed for the system interpreter only.
"""
import asyncio
import base64
import hashlib
import json
import os
import re
import selectors
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatusCode

SERVER_BIN = None  # set from argv in main
STATIC_DIR = None

START_TIMEOUT_S = 10.0
STEP_TIMEOUT_S = 5.0  # any one network exchange
EXIT_TIMEOUT_S = 5.0  # SIGTERM to exit
MESSAGE_MAX = 512  # the server's WebSocket message limit (PROTOCOL.md)
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


# ---- The server under test ---------------------------------------------------


class Server:
    """One overcookied process on 127.0.0.1 and a free port."""

    def __init__(self, *extra_args):
        self.dir = tempfile.TemporaryDirectory(prefix="oc-live-")
        self.log_path = os.path.join(self.dir.name, "server.log")
        self.log = open(self.log_path, "wb")
        # --echo: WebSocket sessions echo text and need no token, so the
        # network layer is tested on its own (the game has its own tests).
        args = [SERVER_BIN, "--echo", "--bind", "127.0.0.1", "--port", "0",
                "--static", STATIC_DIR, "--log-level", "info",
                "--db", os.path.join(self.dir.name, "test.db"), *extra_args]
        self.proc = subprocess.Popen(args, cwd=self.dir.name,
                                     stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=self.log)
        try:
            self.port = self._read_port()
            self._wait_healthy()
        except BaseException:
            self.kill()
            raise

    def _read_port(self):
        """The port from 'overcookied: listening on http://127.0.0.1:PORT/'."""
        deadline = time.monotonic() + START_TIMEOUT_S
        buf = b""
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            while b"\n" not in buf:
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(left):
                    raise AssertionError("no listening line in %.0f s; log:\n%s"
                                         % (START_TIMEOUT_S, self.log_text()))
                chunk = os.read(self.proc.stdout.fileno(), 4096)
                if not chunk:
                    raise AssertionError("server exited (%s) before listening; "
                                         "log:\n%s" % (self.proc.poll(),
                                                       self.log_text()))
                buf += chunk
        line = buf.split(b"\n", 1)[0].decode()
        m = re.fullmatch(r"overcookied: listening on http://127\.0\.0\.1:(\d+)/",
                         line)
        if m is None:
            raise AssertionError("unexpected first line: %r" % line)
        return int(m.group(1))

    def _wait_healthy(self):
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                status, _, _ = http_get(self.url("/health"), timeout=1.0)
                if status == 200:
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("/health never answered 200; log:\n%s"
                                     % self.log_text())
            time.sleep(0.05)

    def url(self, path="/"):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def ws_url(self, path="/ws"):
        return "ws://127.0.0.1:%d%s" % (self.port, path)

    def log_text(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")[-4000:]

    def metrics(self):
        """/metrics as {'name{labels}': value}."""
        status, _, body = http_get(self.url("/metrics"))
        assert status == 200, status
        out = {}
        for line in body.decode().splitlines():
            if line and not line.startswith("#"):
                key, _, value = line.rpartition(" ")
                out[key] = float(value)
        return out

    def wait_metric(self, key, want, timeout=STEP_TIMEOUT_S):
        """Poll /metrics until key == want; returns the last value seen."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.metrics().get(key)
            if got == want or time.monotonic() > deadline:
                return got
            time.sleep(0.02)

    def terminate(self, timeout=EXIT_TIMEOUT_S):
        """SIGTERM; returns (exit code, seconds to exit)."""
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("server still running %.0f s after SIGTERM; "
                                 "log:\n%s" % (timeout, self.log_text()))
        finally:
            self._close_files()
        return code, time.monotonic() - t0

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=EXIT_TIMEOUT_S)
        self._close_files()

    def cleanup(self):
        """Kill if still running, then remove the temporary directory."""
        self.kill()
        self.dir.cleanup()

    def _close_files(self):
        if self.proc.stdout is not None and not self.proc.stdout.closed:
            self.proc.stdout.close()
        if not self.log.closed:
            self.log.close()


def http_get(url, timeout=STEP_TIMEOUT_S):
    """(status, headers, body) for a GET, also for 4xx/5xx answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        with e:
            return e.code, e.headers, e.read()


def run(coro, timeout=2 * STEP_TIMEOUT_S):
    """Run one test coroutine on a fresh event loop, bounded."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


def connect(server, **kw):
    kw.setdefault("open_timeout", STEP_TIMEOUT_S)
    kw.setdefault("close_timeout", STEP_TIMEOUT_S)
    kw.setdefault("ping_interval", None)  # our pings only, where we want them
    return websockets.connect(server.ws_url(), **kw)


async def recv(ws):
    return await asyncio.wait_for(ws.recv(), STEP_TIMEOUT_S)


async def closed_by_server(ws):
    """Wait for the server to close; return the code it sent."""
    with_code = None
    try:
        while True:
            await recv(ws)  # nothing should arrive, but drain if it does
    except ConnectionClosed as e:
        with_code = e.rcvd.code if e.rcvd is not None else None
    return with_code


# ---- A WebSocket client by hand, for frames the library will not send ---------


class RawWs:
    """A blocking socket speaking just enough RFC 6455 to misbehave."""

    def __init__(self, port, first_frames=b""):
        """Connect and upgrade; first_frames go in the same write as the
        request (a client may send frames before it sees the 101)."""
        self.sock = socket.create_connection(("127.0.0.1", port),
                                             timeout=STEP_TIMEOUT_S)
        self.buf = b""
        try:
            self._upgrade(port, first_frames)
        except BaseException:
            self.sock.close()
            raise

    def _upgrade(self, port, first_frames):
        key = base64.b64encode(os.urandom(16))
        self.sock.sendall(b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                          b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
                          b"Sec-WebSocket-Key: %s\r\n"
                          b"Sec-WebSocket-Version: 13\r\n\r\n%s"
                          % (port, key, first_frames))
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        assert lines[0].startswith("HTTP/1.1 101 "), lines[0]
        headers = {k.strip().lower(): v.strip() for k, v in
                   (line.split(":", 1) for line in lines[1:])}
        want = base64.b64encode(hashlib.sha1(key + WS_GUID).digest()).decode()
        assert headers.get("sec-websocket-accept") == want, headers

    def _fill(self):
        chunk = self.sock.recv(4096)  # socket.timeout past STEP_TIMEOUT_S
        if not chunk:
            raise EOFError("server closed the connection")
        self.buf += chunk

    def _take(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    @staticmethod
    def frame(opcode, payload, fin=True, masked=True):
        """The bytes of one client frame (payload under 126 bytes)."""
        assert len(payload) < 126
        head = bytes([(0x80 if fin else 0) | opcode,
                      (0x80 if masked else 0) | len(payload)])
        if masked:
            mask = os.urandom(4)
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            head += mask
        return head + payload

    def send_frame(self, opcode, payload, fin=True, masked=True):
        self.sock.sendall(self.frame(opcode, payload, fin, masked))

    def recv_frame(self):
        """(fin, opcode, payload) of the next frame (server frames: unmasked)."""
        b0, b1 = self._take(2)
        assert b1 & 0x80 == 0, "a server frame must not be masked"
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self._take(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", self._take(8))[0]
        return bool(b0 & 0x80), b0 & 0x0F, self._take(n)

    def expect_close(self):
        """Read to the server's close frame; answer it; expect EOF. Returns
        the code the server sent."""
        while True:
            _, opcode, payload = self.recv_frame()
            if opcode == 0x8:
                break
        code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
        self.send_frame(0x8, payload[:2])
        assert self.sock.recv(4096) == b"", "bytes after the close frame"
        return code

    def close(self):
        self.sock.close()


# ---- Tests ----------------------------------------------------------------------


class LiveServerTest(unittest.TestCase):
    """One server for every test in the class; each test leaves no
    WebSocket open, so counters can be compared before and after."""

    @classmethod
    def setUpClass(cls):
        cls.server = Server()

    @classmethod
    def tearDownClass(cls):
        try:
            code, _ = cls.server.terminate()
            if code != 0:
                raise AssertionError("exit code %d after SIGTERM; log:\n%s"
                                     % (code, cls.server.log_text()))
        finally:
            cls.server.cleanup()

    def tearDown(self):
        # No test leaves a WebSocket behind for the next.
        left = self.server.wait_metric(
            'overcookied_connections{kind="websocket"}', 0)
        self.assertEqual(left, 0, "websockets still open after the test")

    def close_count(self, code):
        return self.server.metrics()[
            'overcookied_ws_close_codes_total{code="%d"}' % code]

    # -- WebSocket, with the library -------------------------------------------

    def test_upgrade_then_messages_are_echoed(self):
        async def body():
            async with connect(self.server) as ws:
                for text in ["hello", "h\u00e9llo \U0001F36A", "x" * MESSAGE_MAX]:
                    await ws.send(text)
                    self.assertEqual(await recv(ws), text)
        run(body())

    def test_a_fragmented_message_is_echoed_whole(self):
        async def body():
            async with connect(self.server) as ws:
                await ws.send(["frag", "ment", "ed \u00e9"])  # one per frame
                self.assertEqual(await recv(ws), "fragmented \u00e9")

                async def pieces():
                    for p in ["as", "ync ", "pieces"]:
                        yield p
                        await asyncio.sleep(0.01)  # frames in separate reads
                await ws.send(pieces())
                self.assertEqual(await recv(ws), "async pieces")
                # Fragments that add up to the limit exactly are fine.
                await ws.send(["y" * 500, "y" * (MESSAGE_MAX - 500)])
                self.assertEqual(await recv(ws), "y" * MESSAGE_MAX)
        run(body())

    def test_a_ping_is_answered(self):
        async def body():
            async with connect(self.server) as ws:
                pong = await ws.ping(b"are you there")
                await asyncio.wait_for(pong, STEP_TIMEOUT_S)
                pong = await ws.ping()  # empty payload
                await asyncio.wait_for(pong, STEP_TIMEOUT_S)
                await ws.send("after the pings")
                self.assertEqual(await recv(ws), "after the pings")
        run(body())

    def test_a_message_over_the_limit_closes_with_1009(self):
        for size in (MESSAGE_MAX + 1, 600):
            with self.subTest(size=size):
                before = self.close_count(1009)

                async def body():
                    async with connect(self.server) as ws:
                        await ws.send("z" * size)
                        self.assertEqual(await closed_by_server(ws), 1009)
                        self.assertEqual(ws.close_code, 1009)
                run(body())
                self.assertEqual(self.server.wait_metric(
                    'overcookied_ws_close_codes_total{code="1009"}',
                    before + 1), before + 1)

    def test_a_fragmented_message_over_the_limit_closes_with_1009(self):
        async def body():
            async with connect(self.server) as ws:
                await ws.send(["a" * 300, "a" * 300])
                self.assertEqual(await closed_by_server(ws), 1009)
        run(body())

    def test_a_binary_message_closes_with_1003(self):
        async def body():
            async with connect(self.server) as ws:
                await ws.send(b"\x00\x01binary")
                self.assertEqual(await closed_by_server(ws), 1003)
        run(body())

    def test_a_clean_close_is_1000_on_both_sides(self):
        before_code = self.close_count(1000)
        before_done = self.server.metrics()[
            'overcookied_disconnects_total{reason="ws_done"}']

        async def body():
            ws = await connect(self.server)
            await ws.send("bye soon")
            self.assertEqual(await recv(ws), "bye soon")
            await ws.close(1000, "done")
            self.assertEqual(ws.close_sent.code, 1000)  # ours
            self.assertEqual(ws.close_code, 1000)  # the server's reply
            self.assertTrue(ws.close_rcvd_then_sent is False,
                            "we closed first, the server answered")
        run(body())
        # The server saw the same: a 1000 close handshake that completed.
        self.assertEqual(self.server.wait_metric(
            'overcookied_ws_close_codes_total{code="1000"}', before_code + 1),
            before_code + 1)
        self.assertEqual(self.server.metrics()[
            'overcookied_disconnects_total{reason="ws_done"}'], before_done + 1)

    def test_a_foreign_origin_is_refused_with_403(self):
        async def body():
            with self.assertRaises(InvalidStatusCode) as cm:
                async with connect(self.server, origin="http://evil.example"):
                    pass
            self.assertEqual(cm.exception.status_code, 403)
            # Its own origin is fine.
            origin = "http://127.0.0.1:%d" % self.server.port
            async with connect(self.server, origin=origin) as ws:
                await ws.send("same origin")
                self.assertEqual(await recv(ws), "same origin")
        run(body())

    # -- WebSocket, by hand ------------------------------------------------------

    def test_invalid_utf8_in_a_text_frame_closes_with_1007(self):
        before = self.close_count(1007)
        for payload in (b"\xc3\x28", b"ok \xff", b"\xed\xa0\x80"):  # surrogate
            with self.subTest(payload=payload):
                raw = RawWs(self.server.port)
                try:
                    raw.send_frame(0x1, payload)
                    self.assertEqual(raw.expect_close(), 1007)
                finally:
                    raw.close()
        self.assertEqual(self.server.wait_metric(
            'overcookied_ws_close_codes_total{code="1007"}', before + 3),
            before + 3)

    def test_invalid_utf8_split_across_fragments_closes_with_1007(self):
        # Each fragment alone is a valid prefix; the whole is not.
        raw = RawWs(self.server.port)
        try:
            raw.send_frame(0x1, b"caf\xc3", fin=False)
            raw.send_frame(0x0, b"(", fin=True)
            self.assertEqual(raw.expect_close(), 1007)
        finally:
            raw.close()

    def test_frames_sent_with_the_upgrade_request_are_echoed(self):
        frames = (RawWs.frame(0x1, b"first") +
                  RawWs.frame(0x1, b"sec", fin=False) +
                  RawWs.frame(0x0, b"ond \xc3", fin=False) +  # split char
                  RawWs.frame(0x0, b"\xa9", fin=True))
        raw = RawWs(self.server.port, first_frames=frames)
        try:
            self.assertEqual(raw.recv_frame(), (True, 0x1, b"first"))
            self.assertEqual(raw.recv_frame(),
                             (True, 0x1, "second \u00e9".encode()))
            raw.send_frame(0x8, struct.pack("!H", 1000))
            self.assertEqual(raw.recv_frame(),
                             (True, 0x8, struct.pack("!H", 1000)))
            self.assertEqual(raw.sock.recv(4096), b"", "then EOF")
        finally:
            raw.close()

    def test_raw_frames_echo_and_an_unmasked_frame_closes_with_1002(self):
        raw = RawWs(self.server.port)
        try:
            raw.send_frame(0x1, "caf\u00e9".encode())
            self.assertEqual(raw.recv_frame(), (True, 0x1, "caf\u00e9".encode()))
            raw.send_frame(0x1, b"naked", masked=False)
            self.assertEqual(raw.expect_close(), 1002)
        finally:
            raw.close()

    # -- Plain HTTP ----------------------------------------------------------------

    def test_health_answers_json(self):
        status, headers, body = http_get(self.server.url("/health"))
        self.assertEqual(status, 200)
        self.assertEqual(headers["Content-Type"], "application/json")
        self.assertEqual(headers["Cache-Control"], "no-store")
        self.assertEqual(json.loads(body), {"status": "healthy"})

    def test_the_page_is_served_with_cache_control(self):
        with open(os.path.join(STATIC_DIR, "index.html"), "rb") as f:
            want = f.read()
        for path in ("/", "/index.html"):
            with self.subTest(path=path):
                status, headers, body = http_get(self.server.url(path))
                self.assertEqual(status, 200)
                self.assertEqual(headers["Content-Type"],
                                 "text/html; charset=utf-8")
                self.assertEqual(headers["Cache-Control"], "no-cache")
                self.assertEqual(int(headers["Content-Length"]), len(want))
                self.assertEqual(body, want)

    def test_a_missing_file_is_404(self):
        for path in ("/missing.html", "/no/such/dir/x.js", "/%2e%2e/etc/passwd"):
            with self.subTest(path=path):
                status, headers, body = http_get(self.server.url(path))
                self.assertEqual(status, 404)
                self.assertIn(b"Not found", body)

    def test_ws_without_upgrade_headers_is_426(self):
        status, headers, _ = http_get(self.server.url("/ws"))
        self.assertEqual(status, 426)
        self.assertEqual(headers["Upgrade"], "websocket")


class ConnectionLimitTest(unittest.TestCase):
    def test_above_max_connections_the_server_answers_503(self):
        server = Server("--max-connections", "2")
        try:
            async def body():
                a = await connect(server)
                b = await connect(server)
                with self.assertRaises(InvalidStatusCode) as cm:
                    async with connect(server):
                        pass
                self.assertEqual(cm.exception.status_code, 503)
                status, headers, _ = http_get(server.url("/health"))
                self.assertEqual(status, 503)
                self.assertEqual(headers["Retry-After"], "5")
                for ws in (a, b):  # the two inside still work
                    await ws.send("still here")
                    self.assertEqual(await recv(ws), "still here")
                await a.close()
                await b.close()
            run(body())
            self.assertEqual(server.wait_metric(
                'overcookied_connections_rejected_total{reason="limit"}', 2), 2)
            code, _ = server.terminate()
            self.assertEqual(code, 0, server.log_text())
        finally:
            server.cleanup()


class ShutdownTest(unittest.TestCase):
    """SIGTERM while clients are connected: each gets 1001, the server
    exits 0 soon after."""

    def test_sigterm_closes_clients_with_1001_and_exits_0(self):
        server = Server()
        try:
            async def body():
                clients = [await connect(server) for _ in range(3)]
                for i, ws in enumerate(clients):
                    await ws.send("before %d" % i)
                    self.assertEqual(await recv(ws), "before %d" % i)
                self.assertEqual(server.metrics()[
                    'overcookied_connections{kind="websocket"}'], 3)
                t0 = time.monotonic()
                server.proc.send_signal(signal.SIGTERM)
                codes = await asyncio.gather(
                    *(closed_by_server(ws) for ws in clients))
                self.assertEqual(codes, [1001] * 3)
                for ws in clients:
                    await asyncio.wait_for(ws.wait_closed(), STEP_TIMEOUT_S)
                    self.assertEqual(ws.close_code, 1001)
                return time.monotonic() - t0
            to_close = run(body())
            self.assertLess(to_close, 2.0, "clients waited for their 1001")
            t0 = time.monotonic()
            code = server.proc.wait(timeout=EXIT_TIMEOUT_S)
            self.assertEqual(code, 0, server.log_text())
            self.assertLess(time.monotonic() - t0, 3.0)
            self.assertIn("event=server.stop reason=signal", server.log_text())
        finally:
            server.cleanup()

    def test_sigterm_exits_0_after_the_grace_period_if_a_client_never_answers(self):
        server = Server()
        try:
            raw = RawWs(server.port)  # will not answer the close
            try:
                raw.send_frame(0x1, b"hi")
                self.assertEqual(raw.recv_frame(), (True, 0x1, b"hi"))
                t0 = time.monotonic()
                server.proc.send_signal(signal.SIGTERM)
                fin, opcode, payload = raw.recv_frame()
                self.assertEqual((fin, opcode), (True, 0x8))
                self.assertEqual(struct.unpack("!H", payload[:2])[0], 1001)
                code = server.proc.wait(timeout=EXIT_TIMEOUT_S)
                seconds = time.monotonic() - t0
                self.assertEqual(code, 0, server.log_text())
                # overcookied's SHUTDOWN_GRACE_US is 2 s.
                self.assertGreater(seconds, 1.5)
                self.assertLess(seconds, 4.0)
            finally:
                raw.close()
        finally:
            server.cleanup()

    def test_sigterm_with_no_clients_exits_0_at_once(self):
        server = Server()
        try:
            code, seconds = server.terminate()
            self.assertEqual(code, 0, server.log_text())
            self.assertLess(seconds, 1.0)
        finally:
            server.cleanup()


def main():
    global SERVER_BIN, STATIC_DIR
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    SERVER_BIN = os.path.abspath(sys.argv[1])
    STATIC_DIR = os.path.abspath(sys.argv[2])
    print("websockets %s from %s" % (websockets.__version__,
                                      os.path.dirname(websockets.__file__)))
    unittest.main(argv=[sys.argv[0]] + sys.argv[3:], verbosity=2)


if __name__ == "__main__":
    main()
