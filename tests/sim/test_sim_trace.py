#!/usr/bin/env python3
"""A simulated run written as a trace and replayed (issue 6: "replaying a
simulator seed and replaying a recorded trace share one code path; the
simulator can also write its run as a trace").

overcookied-sim --record writes the seed's flags and checkpoints;
overcookied-replay runs the simulator again from them and must match every
checkpoint and the final hash; a checkpoint changed on disk (with its
checksum redone, so only the replay's comparison can catch it) must be
named as a divergence; a cut trace is a trace error; --sim replays a seed
without a trace with the same --room, --log and --chrome-trace.

usage: test_sim_trace.py OVERCOOKIED_SIM OVERCOOKIED_REPLAY
"""
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import unittest

SIM = REPLAY = None
FLAGS = ["--seed", "11", "--players", "12", "--duration", "25s",
         "--game-length", "8", "--countdown", "1",
         "--faults", "slow=0.2,stall=0.2,reset=0.1,store=0.1"]


def run(*args):
    return subprocess.run(list(args), capture_output=True, text=True,
                          timeout=300)


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def records(blob):
    """(offset, type, payload offset, payload length) of each record."""
    header_len = struct.unpack_from("<I", blob, 12)[0]
    out, off = [], header_len
    while off + 9 <= len(blob):
        rtype = blob[off]
        length = blob[off + 1] | blob[off + 2] << 8 | blob[off + 3] << 16
        out.append((off, rtype, off + 5, length))
        off += 9 + length
    return out


class SimTrace(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.trace = os.path.join(cls.tmp.name, "trace")
        r = run(SIM, *FLAGS, "--record", cls.trace)
        assert r.returncode == 0, r.stdout + r.stderr
        cls.hash = re.search(r"hash=([0-9a-f]{16})", r.stdout).group(1)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def copy(self, name):
        d = os.path.join(self.tmp.name, name)
        shutil.rmtree(d, ignore_errors=True)
        shutil.copytree(self.trace, d)
        return d, os.path.join(d, "trace-000001.oct")

    def test_replays_with_every_checkpoint_and_the_same_hash(self):
        r = run(REPLAY, self.trace)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("replay: ok: the whole run (simulated seed 11)", r.stdout)
        self.assertIn("hash=" + self.hash, r.stdout)
        n = int(re.search(r"(\d+) checkpoints matched", r.stdout).group(1))
        self.assertGreater(n, 5)

    def test_a_changed_checkpoint_is_a_divergence(self):
        d, path = self.copy("changed")
        with open(path, "rb") as f:
            blob = bytearray(f.read())
        cps = [r for r in records(blob) if r[1] == 128]
        self.assertGreater(len(cps), 3)
        off, _, poff, plen = cps[2]
        # The chain (fixed64) follows three varints: kind, deliveries, time.
        p = poff
        for _ in range(3):
            while blob[p] & 0x80:
                p += 1
            p += 1
        blob[p] ^= 0x01
        blob[poff + plen:poff + plen + 4] = struct.pack(
            "<I", crc32c(bytes(blob[off:poff + plen])))
        with open(path, "wb") as f:
            f.write(bytes(blob))
        r = run(REPLAY, d)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("DIVERGED", r.stdout)
        self.assertIn("differ", r.stdout)

    def test_a_cut_trace_is_a_trace_error(self):
        d, path = self.copy("cut")
        with open(path, "r+b") as f:
            f.truncate(os.path.getsize(path) - 30)
        r = run(REPLAY, d)
        self.assertEqual(r.returncode, 3, r.stdout + r.stderr)
        self.assertRegex(r.stdout + r.stderr, "truncated|cut short")

    def test_a_seed_replays_without_a_trace_room_log_timeline(self):
        r = run(REPLAY, "--log", "--sim", *FLAGS)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("hash=" + self.hash, r.stdout)
        rooms = re.findall(r"event=room\.start actor=\d+ room=(\S+)", r.stdout)
        self.assertGreaterEqual(len(rooms), 2)
        out = os.path.join(self.tmp.name, "sim.json")
        r = run(REPLAY, "--room", rooms[0], "--log", "--chrome-trace", out,
                "--sim", *FLAGS)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("room=" + rooms[0], r.stdout)
        self.assertNotIn("room=" + rooms[1] + " ", r.stdout)
        with open(out) as f:
            doc = json.load(f)
        names = {e["args"]["name"] for e in doc["traceEvents"]
                 if e["ph"] == "M" and e["name"] == "thread_name"}
        self.assertTrue(any(n.startswith("room ") for n in names), names)
        self.assertGreaterEqual(
            sum(1 for n in names if n.startswith("conn ")), 2, names)

    def test_bad_sim_flags_are_bad_arguments(self):
        r = run(REPLAY, "--sim", "--seed", "x")
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        r = run(REPLAY, "--sim", "--seed", "1", "--swarm", "2")
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn("not a swarm", r.stderr)

    def test_user_probabilities_replay_with_all_their_digits(self):
        # Printed at %.4g, slow=0.33333 was recorded as 0.3333: another run.
        d = os.path.join(self.tmp.name, "digits")
        flags = ["--seed", "11", "--players", "12", "--duration", "15s",
                 "--game-length", "5", "--countdown", "1",
                 "--faults", "slow=0.33333,stall=0.123456"]
        r = run(SIM, *flags, "--record", d)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        # A draw rarely falls between 0.3333 and 0.33333, so a short run
        # can replay ok either way: the header must hold the exact text.
        with open(os.path.join(d, "trace-000001.oct"), "rb") as f:
            self.assertIn(b"slow=0.33333,stall=0.123456,", f.read(4096))
        r = run(REPLAY, d)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("replay: ok", r.stdout)

    def test_record_is_one_run(self):
        r = run(SIM, *FLAGS, "--swarm", "2", "--record",
                os.path.join(self.tmp.name, "no"))
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn("--record writes one run", r.stderr)

    def test_one_file_of_a_simulated_trace_is_recognised(self):
        # The header's flags say which replay a trace needs.
        r = run(REPLAY, os.path.join(self.trace, "trace-000001.oct"))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("simulated seed 11", r.stdout)


if __name__ == "__main__":
    SIM, REPLAY = sys.argv[1:3]
    del sys.argv[1:3]
    unittest.main(verbosity=2)
