"""livelib: the overcookied server and its HTTP API for the live tests.

    server = Server(BINARY, STATIC, db, "--game-length", "4")
    status, body = http(server, "/api/login", {"name": "Ada"})
    server.stop()           # its exit status

The binary and the static directory are arguments (each test file takes
them from its command line). The server listens on 127.0.0.1, port 0 (the
address it prints is read back), with the live tests' secret and log
level; its output goes to files, never to a pipe nobody reads (which could
fill and stall it), and it dies with this process. Every wait is bounded.
"""
import json
import os
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

STEP_TIMEOUT = 10   # seconds for any single HTTP call, connect or stop
START_TIMEOUT = 15  # for the server to print its address
SECRET = "live-test-secret-0123456789"


def die_with_parent():
    """In the child before exec: SIGKILL when this test process dies, so a
    test killed by ctest's timeout leaves no server on its port (Linux
    prctl PR_SET_PDEATHSIG; the Popen runs on the main thread, which lives
    as long as the process)."""
    import ctypes
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)


class Server:
    """overcookied on 127.0.0.1, port 0, on database `db`, with `extra`
    flags; output to files in tmpdir (by default a directory of its own,
    removed with this object)."""

    def __init__(self, binary, static, db, *extra, tmpdir=None):
        if tmpdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="oc-live-")
            tmpdir = self._tmp.name
        fd, self.out_path = tempfile.mkstemp(".out", "server-", tmpdir)
        os.close(fd)
        fd, self.err_path = tempfile.mkstemp(".err", "server-", tmpdir)
        os.close(fd)
        with open(self.out_path, "w") as out, open(self.err_path, "w") as err:
            self.proc = subprocess.Popen(
                [binary, "--port", "0", "--static", static, "--db", db,
                 "--secret", SECRET, "--log-level", "warn", *extra],
                stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                preexec_fn=die_with_parent)
        deadline = time.monotonic() + START_TIMEOUT
        line = ""
        while time.monotonic() < deadline and self.proc.poll() is None:
            with open(self.out_path) as f:
                line = f.readline()
            if "listening on" in line and line.endswith("\n"):
                break
            time.sleep(0.05)
        if "listening on" not in line:
            self.kill()
            raise RuntimeError("server did not start: " + line + self.err())
        self.base = line.split("listening on ")[1].strip().rstrip("/")
        self.port = int(self.base.rsplit(":", 1)[1])

    def err(self):
        """The tail of what the server wrote on stderr."""
        with open(self.err_path, errors="replace") as f:
            return f.read()[-4000:]

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=STEP_TIMEOUT)

    def stop(self):
        """SIGTERM; the exit status (after SIGKILL when it would not go)."""
        if self.proc.poll() is not None:
            return self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=STEP_TIMEOUT)
        finally:
            if self.proc.poll() is None:
                self.kill()


def http(server, path, body=None, token=None):
    """(status, JSON body) of a GET, or of a POST when body is given; an
    error whose body is not JSON comes back as {"raw": its text}."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = "Bearer " + token
    req = urllib.request.Request(
        server.base + path, method="POST" if body is not None else "GET",
        data=json.dumps(body).encode() if body is not None else None,
        headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=STEP_TIMEOUT) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            return e.code, json.loads(raw or b"{}")
        except ValueError:
            return e.code, {"raw": raw.decode(errors="replace")}
