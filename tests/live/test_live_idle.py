#!/usr/bin/python3
"""test_live_idle.py: 10,000 concurrent idle WebSockets on one live server.

    /usr/bin/python3 tests/live/test_live_idle.py SERVER_BINARY BENCH_NET STATIC_DIR

The connections come from bench-net (tools/src/bench_net.c: net_live and
net_wsc, one actor per client), which opens them with a bounded number of
handshakes in flight, has each echo one small message, prints a "held" line
and waits on stdin. Meanwhile this test checks the server's own count in
/metrics; then it lets bench-net close every connection with 1000 and checks
that the server saw 10,000 completed close handshakes and is back to zero.

The clients are C rather than python3-websockets so that the client side
stays small and fast (about 140 MiB and 0.5 s for 10,000 here); the real
third-party client is exercised by test_live_ws.py.

The server parks a WebSocket quiet for --ws-park-after (1 s here): all
10,000 must show as parked in /metrics once their echo is a second old,
and the close that follows wakes each of them.
"""
import os
import resource
import selectors
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_live_ws as live  # noqa: E402  (the Server helper)

BENCH_NET = None
CONNECTIONS = 10000
HOLD_TIMEOUT_S = 60.0  # all 10,000 upgraded and echoed
CLOSE_TIMEOUT_S = 40.0
RSS_PER_CONNECTION_KIB_MAX = 64  # "memory-sane": today about 11
PARK_AFTER_S = 1
PARK_TIMEOUT_S = 30.0  # every connection parked, a second after its echo


def read_line(proc, timeout):
    """One line of proc's stdout within timeout (None on EOF)."""
    deadline = time.monotonic() + timeout
    buf = b""
    fd = proc.stdout.fileno()
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        while not buf.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not sel.select(left):
                raise AssertionError("bench-net printed nothing in %.0f s"
                                     % timeout)
            chunk = os.read(fd, 1)  # byte by byte: keep the next line unread
            if not chunk:
                return buf.decode() if buf else None
            buf += chunk
    return buf.decode().rstrip("\n")


def fields(line):
    """'held a=1 b=x' -> ('held', {'a': '1', 'b': 'x'})."""
    words = line.split()
    return words[0], dict(w.split("=", 1) for w in words[1:])


class IdleConnectionsTest(unittest.TestCase):
    def test_ten_thousand_idle_websockets_are_held_then_closed_cleanly(self):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        self.assertGreaterEqual(
            hard, CONNECTIONS + 100,
            "RLIMIT_NOFILE hard limit %d: cannot hold %d connections"
            % (hard, CONNECTIONS))
        # bench-net raises its own soft limit too; the server raises its own.
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

        server = live.Server("--ws-park-after", str(PARK_AFTER_S))
        client = None
        try:
            m0 = server.metrics()
            client = subprocess.Popen(
                [BENCH_NET, "idle", "--port", str(server.port),
                 "--connections", str(CONNECTIONS), "--hold",
                 "--server-pid", str(server.proc.pid)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            t0 = time.monotonic()
            line = read_line(client, HOLD_TIMEOUT_S)
            self.assertIsNotNone(line, "bench-net exited: %s" % client.poll())
            kind, held = fields(line)
            print(line, "(%.2f s)" % (time.monotonic() - t0))
            self.assertEqual(kind, "held")
            self.assertEqual(int(held["held"]), CONNECTIONS, line)
            self.assertEqual(int(held["failed"]), 0, line)

            # The server's own view: 10,000 upgraded connections open now.
            m = server.metrics()
            self.assertEqual(m['overcookied_connections{kind="websocket"}'],
                             CONNECTIONS)
            self.assertEqual(m['overcookied_connections{kind="all"}'],
                             CONNECTIONS + 1)  # + this /metrics request
            self.assertEqual(m["overcookied_connections_rejected_total"
                               '{reason="limit"}'], 0)
            self.assertEqual(
                m['overcookied_ws_messages_total{direction="in"}']
                - m0['overcookied_ws_messages_total{direction="in"}'],
                CONNECTIONS)
            before = int(held["server_rss_before_kib"])
            after = int(held["server_rss_held_kib"])
            per_conn = (after - before) / CONNECTIONS
            print("server RSS %d -> %d KiB: %.1f KiB per idle connection"
                  % (before, after, per_conn))
            self.assertGreater(before, 0)
            self.assertLess(per_conn, RSS_PER_CONNECTION_KIB_MAX)

            # Quiet for a second: every one gives back wslay's context.
            parked = 'overcookied_connections{kind="websocket_parked"}'
            self.assertEqual(server.wait_metric(parked, CONNECTIONS,
                                                PARK_TIMEOUT_S), CONNECTIONS)

            # Close: every one with 1000, answered (waking each).
            client.stdin.write(b"close\n")
            client.stdin.flush()
            line = read_line(client, CLOSE_TIMEOUT_S)
            self.assertIsNotNone(line, "bench-net exited: %s" % client.poll())
            print(line)
            kind, closed = fields(line)
            self.assertEqual(kind, "closed")
            self.assertEqual(int(closed["clean"]), CONNECTIONS, line)
            self.assertEqual(int(closed["dirty"]), 0, line)
            self.assertEqual(int(closed["stuck"]), 0, line)
            self.assertEqual(client.wait(timeout=CLOSE_TIMEOUT_S), 0)

            self.assertEqual(server.wait_metric(
                'overcookied_connections{kind="websocket"}', 0), 0)
            m1 = server.metrics()
            for key in ('overcookied_ws_close_codes_total{code="1000"}',
                        'overcookied_disconnects_total{reason="ws_done"}'):
                self.assertEqual(m1[key] - m0[key], CONNECTIONS, key)

            code, _ = server.terminate()
            self.assertEqual(code, 0, server.log_text())
        finally:
            if client is not None and client.poll() is None:
                client.kill()
                client.wait(timeout=live.EXIT_TIMEOUT_S)
            for f in (client.stdin, client.stdout) if client else ():
                f.close()
            server.cleanup()


def main():
    global BENCH_NET
    if len(sys.argv) < 4:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    live.SERVER_BIN = os.path.abspath(sys.argv[1])
    BENCH_NET = os.path.abspath(sys.argv[2])
    live.STATIC_DIR = os.path.abspath(sys.argv[3])
    unittest.main(argv=[sys.argv[0]] + sys.argv[4:], verbosity=2)


if __name__ == "__main__":
    main()
