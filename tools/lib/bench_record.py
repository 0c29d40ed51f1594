#!/usr/bin/env python3
"""The recording overhead benchmark behind tools/bench-record (see there).

The steady scenario of tools/bench (players clicking at a fixed rate) runs
against the C server with and without --record, alternating (off, on, off,
on, ...) so that drift on a shared machine hits both alike, with the server
pinned to core 0 and the load generator to core 1. It prints the median
server CPU per acknowledged click of each, their ratio, the trace's size
and records lost, and then replays the last trace to show it checks out
and how fast a replay runs. Standard library only.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402
from bench import load  # noqa: E402


def Server(args, tmp, record_dir):
    """The C server of tools/bench, recording into record_dir if given."""
    return bench.Server("c", args, tmp,
                        ["--record", record_dir] if record_dir else [],
                        capture_stderr=True)


def dir_bytes(d):
    return sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))


def main():
    ap = argparse.ArgumentParser()
    bench.common_args(ap, go=False, players=2000, rate=5, duration=20,
                      rounds=3)
    ap.add_argument("--replay", required=True)
    args = ap.parse_args()
    cpu = {"off": [], "on": []}
    p99 = {"off": [], "on": []}
    last = None
    with tempfile.TemporaryDirectory() as tmp:
        for rnd in range(args.rounds):
            for mode in ("off", "on"):
                rec = os.path.join(tmp, f"trace-{rnd}") if mode == "on" else None
                server = Server(args, tmp, rec)
                try:
                    time.sleep(0.5)
                    r = load(args, server, args.players, args.rate,
                             args.duration, 10)
                finally:
                    err = server.stop()
                    os.unlink(os.path.join(tmp, "bench.db"))
                cpu[mode].append(r["cpu_us_per_ack"])
                p99[mode].append(r["latency_ms"]["p99"])
                extra = ""
                if rec:
                    size = dir_bytes(rec)
                    lost = "LOST" in err
                    extra = (f", trace {size / 1e6:.1f} MB"
                             f" ({size / (args.duration + 10) / 1e6:.2f} MB/s)"
                             f"{', records LOST' if lost else ''}")
                    last = rec
                print(f"round {rnd + 1} record {mode}: "
                      f"{r['cpu_us_per_ack']:.2f} us CPU per ack, "
                      f"p99 {r['latency_ms']['p99']:.2f} ms{extra}",
                      flush=True)
        off = statistics.median(cpu["off"])
        on = statistics.median(cpu["on"])
        print(f"median CPU per ack: off {off:.2f} us, on {on:.2f} us, "
              f"on/off {on / off:.3f} ({(on / off - 1) * 100:+.1f}%); "
              f"median p99: off {statistics.median(p99['off']):.2f} ms, "
              f"on {statistics.median(p99['on']):.2f} ms")
        t0 = time.monotonic()
        rp = subprocess.run([args.replay, last], capture_output=True,
                            text=True, timeout=1800)
        took = time.monotonic() - t0
        print(rp.stdout.strip())
        print(f"replay of the last trace: exit {rp.returncode}, "
              f"{took:.1f} s wall for {args.duration + 10} s recorded")
        return 0 if rp.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
