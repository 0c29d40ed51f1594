#!/usr/bin/env python3
"""A trace's header holds the server's flags, one per line; the replay
reads them back with the live server's parser. Flags that the live server
would never have written (an empty line, --help) and a trace replayed from
a later file than its first must be trace errors (exit 3, a sentence),
never a different server, a usage text or a divergence.

One short idle recording (a server started and stopped); each test copies
it and rewrites its header.

usage: test_live_trace_flags.py OVERCOOKIED REPLAY STATIC_DIR
"""
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_live_game as live  # noqa: E402  (Server)
from test_live_record import crc32c  # noqa: E402

BINARY = REPLAY = STATIC = None
FIXED = 56  # header bytes before the config (net/net_trace.h)


def run(*args, timeout=120):
    return subprocess.run(list(args), capture_output=True, text=True,
                          timeout=timeout)


def rewrite_header(path, config=None, file_seq=None):
    """Rewrite the first file's header: its config text and file_seq."""
    with open(path, "rb") as f:
        data = f.read()
    header_len = struct.unpack_from("<I", data, 12)[0]
    config_len = struct.unpack_from("<I", data, 52)[0]
    head = bytearray(data[:FIXED])
    old = data[FIXED:FIXED + config_len]
    new = old if config is None else config(old.decode()).encode()
    if file_seq is not None:
        head[24:28] = struct.pack("<I", file_seq)
    head[12:16] = struct.pack("<I", FIXED + len(new) + 4)
    head[16:20] = struct.pack("<I", crc32c(bytes(head[:16])))
    head[52:56] = struct.pack("<I", len(new))
    body = bytes(head) + new
    with open(path, "wb") as f:
        f.write(body + struct.pack("<I", crc32c(body)) + data[header_len:])


class TraceFlags(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.trace = os.path.join(cls.tmp.name, "trace")
        live.BINARY, live.STATIC = BINARY, STATIC
        server = live.Server(os.path.join(cls.tmp.name, "rec.db"),
                             "--record", cls.trace,
                             "--allowed-origin", "http://a.example")
        cls.status = server.stop()

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def copy(self, name):
        d = os.path.join(self.tmp.name, name)
        shutil.copytree(self.trace, d)
        return d

    def test_the_recording_replays(self):
        self.assertEqual(self.status, 0)
        r = run(REPLAY, self.trace)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_an_empty_recorded_flag_is_a_trace_error(self):
        # An empty origin before --echo: split on every '\n', the parser
        # sees the empty value and refuses it; collapsed, "--echo" would be
        # read as the origin and the replay would build another server.
        d = self.copy("empty")
        rewrite_header(os.path.join(d, "trace-000001.oct"),
                       config=lambda c: c.replace(
                           "--allowed-origin\nhttp://a.example",
                           "--allowed-origin\n\n--echo"))
        r = run(REPLAY, d)
        self.assertEqual(r.returncode, 3, r.stdout + r.stderr)
        self.assertIn("server flags are not understood", r.stderr)

    def test_help_in_the_recorded_flags_is_a_trace_error(self):
        # The parser used to print the usage and exit 0: no replay at all.
        d = self.copy("help")
        rewrite_header(os.path.join(d, "trace-000001.oct"),
                       config=lambda c: c + "\n--help")
        r = run(REPLAY, d)
        self.assertEqual(r.returncode, 3, r.stdout + r.stderr)
        self.assertIn("server flags are not understood", r.stderr)


if __name__ == "__main__":
    BINARY, REPLAY, STATIC = sys.argv[1:4]
    del sys.argv[1:4]
    unittest.main(verbosity=2)
