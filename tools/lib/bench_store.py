#!/usr/bin/env python3
"""The Store's benchmark behind tools/bench-store (see there). Standard
library only.

Three configurations, alternated round by round so that the machine's
noise falls on all of them alike: SQLite with --db-sync full (the default),
SQLite with --db-sync normal, and PostgreSQL (a throwaway server from
tools/lib/pgtmp, fsync on, a fresh database per run). Each round runs:
  steady  players clicking at 5/s in 10 s games, so that games end all the
          time: server CPU per acknowledged click and p99 click latency
          (overcookied-load's figures);
  wave    players all matched within about a second in 5 s games, so that
          about players/2 games end within about 2 s: /metrics polled every
          20 ms gives the results committed per second and the commits
          (transactions) per second from the first result of the wave to
          the last.
The server runs on core 0, the load generator on core 1. Prints a Markdown
table of medians.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402
from bench import load  # noqa: E402


class Server(bench.Server):
    """tools/bench's C server on `db` (a SQLite file or a PostgreSQL URI),
    with `rules` and --db-sync `sync` when given, and the Store's figures
    from /metrics."""

    def __init__(self, args, db, sync, rules):
        extra = [*rules] + (["--db-sync", sync] if sync else [])
        super().__init__("c", args, None, extra, db=db)

    def metrics(self):
        url = f"http://127.0.0.1:{self.port}/metrics"
        with urllib.request.urlopen(url, timeout=2) as r:
            text = r.read().decode()
        out = {}
        for key in ("recorded", "commit"):
            m = re.search(r'overcookied_store_total\{event="%s"\} (\d+)' % key,
                          text)
            out[key] = int(m.group(1)) if m else 0
        return out


def steady(args, db, sync):
    s = Server(args, db, sync, ["--countdown", "1", "--game-length", "10"])
    try:
        time.sleep(0.3)
        r = load(args, s, args.players, 5, 20, 5)
        m = s.metrics()
    finally:
        s.stop()
    return {"cpu_us_per_ack": r["cpu_us_per_ack"],
            "p99_ms": r["latency_ms"]["p99"], "recorded": m["recorded"]}


def wave(args, db, sync):
    s = Server(args, db, sync, ["--countdown", "1", "--game-length", "5"])
    samples = []
    stop = threading.Event()

    def poll():
        while not stop.is_set():
            try:
                samples.append((time.monotonic(), s.metrics()))
            except OSError:
                pass
            time.sleep(0.02)

    t = threading.Thread(target=poll)
    try:
        time.sleep(0.3)
        t.start()
        load(args, s, args.wave_players, 1, 6, 1)
    finally:
        stop.set()
        t.join()
        s.stop()
    want = args.wave_players // 2
    first = next((x for x in samples if x[1]["recorded"] > 0), None)
    last = next((x for x in samples if x[1]["recorded"] >= want), None)
    if first is None or last is None or last[0] <= first[0]:
        return {"results_per_s": 0.0, "commits_per_s": 0.0, "games": 0}
    span = last[0] - first[0]
    games = last[1]["recorded"] - first[1]["recorded"]
    commits = last[1]["commit"] - first[1]["commit"]
    return {"results_per_s": games / span, "commits_per_s": commits / span,
            "games": last[1]["recorded"], "span_s": span}


def pg_database(uri, name):
    subprocess.run(["psql", uri, "-q", "-c", f"CREATE DATABASE {name}"],
                   check=True, capture_output=True)
    return uri.rsplit("/", 1)[0] + "/" + name


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--c-server", required=True)
    ap.add_argument("--load", required=True)
    ap.add_argument("--static", required=True)
    ap.add_argument("--pgtmp", required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--players", type=int, default=1000)
    ap.add_argument("--wave-players", type=int, default=2000)
    args = ap.parse_args()
    pgdir = tempfile.mkdtemp(prefix="oc-bench-pg-")
    uri = subprocess.run([args.pgtmp, "start", pgdir, "--watch",
                          str(os.getpid())], check=True, capture_output=True,
                         text=True).stdout.strip()
    configs = [("sqlite, --db-sync full", "full"),
               ("sqlite, --db-sync normal", "normal"),
               ("postgres", None)]
    res = {name: [] for name, _ in configs}
    try:
        for rnd in range(args.rounds):
            for name, sync in configs:
                with tempfile.TemporaryDirectory() as tmp:
                    def db(tag):
                        if sync is None:
                            return pg_database(uri, f"bench_{rnd}_{tag}")
                        return os.path.join(tmp, f"{tag}.db")
                    r = steady(args, db("steady"), sync)
                    r.update(wave(args, db("wave"), sync))
                res[name].append(r)
                print(f"round {rnd + 1} {name}: {json.dumps(r)}", flush=True)
    finally:
        subprocess.run([args.pgtmp, "stop", pgdir], capture_output=True)
    med = lambda runs, k: statistics.median(r[k] for r in runs)
    print()
    print(f"Medians of {args.rounds} rounds; steady: {args.players} players "
          f"at 5 clicks/s in 10 s games; wave: {args.wave_players} players "
          f"matched within 1 s, 5 s games.")
    print()
    print("| backend | CPU per acked click | p99 click latency "
          "| results committed/s in the wave | commits/s in the wave |")
    print("|---|---|---|---|---|")
    for name, _ in configs:
        runs = res[name]
        print(f"| {name} | {med(runs, 'cpu_us_per_ack'):.1f} us "
              f"| {med(runs, 'p99_ms'):.2f} ms "
              f"| {med(runs, 'results_per_s'):.0f} "
              f"| {med(runs, 'commits_per_s'):.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
