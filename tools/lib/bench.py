#!/usr/bin/env python3
"""The benchmark suite behind tools/bench (see there). Standard library only.

Runs each scenario against the C server and the Go reference in turn, with
a fresh server per scenario, the server pinned to core 0 and the load
generator (overcookied-load) to core 1, and writes report.md and
latency.svg. Figures come from overcookied-load's --json output.
"""
import argparse
import json
import statistics
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

SECRET = "bench-secret-0123456789abcdef"


def common_args(ap, go=True, players=None, rate=None, duration=None,
                rounds=None):
    """The flags the bench scripts share: the binaries and static files,
    with go the Go server and the report directory, and (each where a
    default is given) the steady load's size, rate, length and rounds."""
    ap.add_argument("--c-server", required=True)
    ap.add_argument("--load", required=True)
    ap.add_argument("--static", required=True)
    if go:
        ap.add_argument("--go-server", required=True)
        ap.add_argument("--out", required=True)
    for flag, kind, default in (("--players", int, players),
                                ("--rate", float, rate),
                                ("--duration", int, duration),
                                ("--rounds", int, rounds)):
        if default is not None:
            ap.add_argument(flag, type=kind, default=default)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One server on core 0 and a free port; `extra` flags go to the C
    server (bench_record adds --record), and so does `db` (bench_store's
    file or PostgreSQL URI; by default bench.db in tmp). With
    capture_stderr, stop() returns what the server wrote there (keep it
    short: nobody reads the pipe before stop)."""

    def __init__(self, kind, args, tmp, extra=(), capture_stderr=False,
                 db=None):
        self.kind = kind
        self.port = free_port()
        if kind == "c":
            if db is None:
                db = os.path.join(tmp, "bench.db")
            cmd = [args.c_server, "--port", str(self.port), "--static",
                   args.static, "--db", db,
                   "--secret", SECRET, "--log-level", "error",
                   "--max-connections", "100000", *extra]
        else:
            cmd = [args.go_server, "-addr", f"127.0.0.1:{self.port}",
                   "-secret", SECRET]
        self.proc = subprocess.Popen(["taskset", "-c", "0", *cmd],
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE if capture_stderr
                                     else subprocess.DEVNULL, text=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), 0.2):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{kind} server did not start")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            _, err = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        return err


def load(args, server, players, rate, duration, ramp, mode="play"):
    cmd = ["taskset", "-c", "1", args.load, "--url",
           f"http://127.0.0.1:{server.port}", "--players", str(players),
           "--rate", str(rate), "--duration", str(duration), "--ramp",
           str(ramp), "--mode", mode, "--server-pid", str(server.proc.pid),
           "--json"]
    p = subprocess.run(cmd, capture_output=True, text=True,
                       timeout=ramp + duration + 120)
    lines = [l for l in p.stdout.splitlines() if l.startswith("{")]
    if not lines:
        raise RuntimeError("load generator failed: " + p.stderr[-500:])
    result = json.loads(lines[-1])
    result["exit"] = p.returncode
    return result


def scenario(args, kind, fn):
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(kind, args, tmp)
        try:
            time.sleep(0.5)
            return fn(server)
        finally:
            server.stop()


def run_idle(args, kind):
    n = 2000 if args.quick else 10000
    r = scenario(args, kind, lambda s: load(args, s, n, 1, 5, 10, "idle"))
    print(f"{kind} idle: {r['connections']} connections, "
          f"{r['bytes_per_connection'] / 1024:.1f} KiB each", flush=True)
    return r


def run_steady(args, kind):
    n = 500 if args.quick else 2000
    r = scenario(args, kind, lambda s: load(args, s, n, 5, 20, 10))
    print(f"{kind} steady: p50 {r['latency_ms']['p50']:.2f} ms, "
          f"p99 {r['latency_ms']['p99']:.2f} ms, "
          f"{r['cpu_us_per_ack']:.1f} us CPU per ack", flush=True)
    return r


def passes(r):
    lost = r["acks_missing"] > 0.001 * max(1, r["clicks_sent"])
    return r["latency_ms"]["p99"] <= 50 and not lost and r["exit"] == 0


def run_capacity(args, kind):
    steps = ([250, 500, 1000, 2000] if args.quick else
             [1000, 2000, 4000, 6000, 8000, 10000, 12000, 16000, 20000])
    results = []
    best = 0
    for n in steps:
        r = scenario(args, kind, lambda s: load(args, s, n, 5, 15, 10))
        ok = passes(r)
        results.append({"players": n, "ok": ok, **r})
        print(f"{kind} capacity {n}: p99 {r['latency_ms']['p99']:.2f} ms, "
              f"missing {r['acks_missing']}, {'pass' if ok else 'FAIL'}",
              flush=True)
        if not ok:
            break
        best = n
    return {"best": best, "steps": results}


def median_run(runs, key):
    """The rounds of one scenario as one result: the run whose `key` is
    the median (its other figures stay consistent with it), with each
    latency percentile the median of the rounds', and every round's key
    figure, p99 and memory kept in "rounds"."""
    ordered = sorted(runs, key=lambda r: r[key])
    out = dict(ordered[(len(ordered) - 1) // 2])
    out["latency_ms"] = {
        q: statistics.median(r["latency_ms"][q] for r in runs)
        for q in runs[0]["latency_ms"]}
    out["rounds"] = [{"cpu_us_per_ack": r["cpu_us_per_ack"],
                      "p99_ms": r["latency_ms"]["p99"],
                      "bytes_per_connection": r["bytes_per_connection"]}
                     for r in runs]
    return out


def ratio(a, b):
    return a / b if b else float("nan")


def svg(cap, path):
    """Latency (p50 and p99) against players, both servers."""
    w, h, pad = 640, 360, 50
    series = []
    for kind, colour in (("c", "#b5651d"), ("go", "#3b6ea5")):
        pts = [(s["players"], s["latency_ms"]["p50"], s["latency_ms"]["p99"])
               for s in cap.get(kind, {}).get("steps", [])]
        series.append((kind, colour, pts))
    xs = [p[0] for _, _, pts in series for p in pts] or [1]
    ys = [p[2] for _, _, pts in series for p in pts] or [1]
    xmax, ymax = max(xs), max(max(ys), 60)

    def X(v):
        return pad + (w - 2 * pad) * v / xmax

    def Y(v):
        return h - pad - (h - 2 * pad) * min(v, ymax) / ymax

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
           f'font-family="sans-serif" font-size="12">',
           f'<rect width="{w}" height="{h}" fill="white"/>',
           f'<line x1="{pad}" y1="{h-pad}" x2="{w-pad}" y2="{h-pad}" stroke="black"/>',
           f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{h-pad}" stroke="black"/>',
           f'<line x1="{pad}" y1="{Y(50)}" x2="{w-pad}" y2="{Y(50)}" '
           f'stroke="red" stroke-dasharray="4"/>',
           f'<text x="{w-pad-70}" y="{Y(50)-4}" fill="red">p99 limit 50 ms</text>',
           f'<text x="{w/2-40}" y="{h-12}">players</text>',
           f'<text x="8" y="{pad-12}">click-to-ack latency (ms)</text>']
    for i, (kind, colour, pts) in enumerate(series):
        for q, dash in ((1, "6 3"), (2, "")):
            if not pts:
                continue
            path_d = " ".join(f"{'M' if j == 0 else 'L'}{X(p[0]):.1f},{Y(p[q]):.1f}"
                              for j, p in enumerate(pts))
            out.append(f'<path d="{path_d}" fill="none" stroke="{colour}" '
                       f'stroke-width="2" stroke-dasharray="{dash}"/>')
        out.append(f'<text x="{pad+10}" y="{pad+16*(i+1)}" fill="{colour}">'
                   f'{kind}: p99 solid, p50 dashed</text>')
    for v in sorted(set(xs)):
        out.append(f'<text x="{X(v)-10:.1f}" y="{h-pad+16}">{v}</text>')
    for v in (0, 25, 50):
        out.append(f'<text x="{pad-30}" y="{Y(v)+4:.1f}">{v}</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out))


def report(res, path):
    c, g = res.get("c", {}), res.get("go", {})

    def get(side, *keys):
        v = side
        for k in keys:
            v = v.get(k, {}) if isinstance(v, dict) else {}
        return v if isinstance(v, (int, float)) else float("nan")

    rows = [
        ("memory per idle connection (KiB)",
         get(c, "idle", "bytes_per_connection") / 1024,
         get(g, "idle", "bytes_per_connection") / 1024, "<= 0.6, and C <= 12 KiB"),
        ("server CPU per acknowledged click (us), steady",
         get(c, "steady", "cpu_us_per_ack"), get(g, "steady", "cpu_us_per_ack"),
         "<= 0.25"),
        ("p50 click-to-ack (ms), steady", get(c, "steady", "latency_ms", "p50"),
         get(g, "steady", "latency_ms", "p50"), ""),
        ("p99 click-to-ack (ms), steady", get(c, "steady", "latency_ms", "p99"),
         get(g, "steady", "latency_ms", "p99"), "<= 0.2"),
        ("capacity: players with p99 <= 50 ms", get(c, "capacity", "best"),
         get(g, "capacity", "best"), ">= 3"),
    ]
    rounds = len(c.get("steady", g.get("steady", {})).get("rounds", [])) or 1
    lines = ["# Overcookied benchmark report", "",
             f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
             "server on core 0, load generator on core 1. Idle and steady: "
             f"the median of {rounds} rounds, C and Go alternating; "
             "capacity: one pass of steps.", "",
             "| figure | C | Go reference | C / Go | target |",
             "|---|---|---|---|---|"]
    for name, cv, gv, target in rows:
        lines.append(f"| {name} | {cv:.2f} | {gv:.2f} | {ratio(cv, gv):.2f} | {target} |")
    lines += ["", "## Rounds", "",
              "| server | scenario | round | KiB per connection | "
              "CPU us per ack | p99 ms |", "|---|---|---|---|---|---|"]
    for kind in ("c", "go"):
        for name in ("idle", "steady"):
            for i, r in enumerate(res.get(kind, {}).get(name, {}).get("rounds", [])):
                kib = f"{r['bytes_per_connection'] / 1024:.2f}"
                play = (f"{r['cpu_us_per_ack']:.2f} | {r['p99_ms']:.2f}"
                        if name == "steady" else "- | -")
                lines.append(f"| {kind} | {name} | {i + 1} | {kib} | {play} |")
    lines += ["", "## Capacity steps", "",
              "| server | players | p50 ms | p99 ms | clicks | missing acks | pass |",
              "|---|---|---|---|---|---|---|"]
    for kind in ("c", "go"):
        for s in res.get(kind, {}).get("capacity", {}).get("steps", []):
            lines.append(f"| {kind} | {s['players']} | {s['latency_ms']['p50']:.2f} | "
                         f"{s['latency_ms']['p99']:.2f} | {s['clicks_sent']} | "
                         f"{s['acks_missing']} | {'yes' if s['ok'] else 'no'} |")
    lines += ["", "![latency against load](latency.svg)", "",
              "Raw results: results.json."]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines[:len(rows) + 7]))


def main():
    ap = argparse.ArgumentParser()
    common_args(ap)
    ap.add_argument("--quick", type=int, default=0)
    ap.add_argument("--only", default="")
    ap.add_argument("--scenario", default="",
                    help="run only this scenario (idle, steady, capacity)")
    ap.add_argument("--rounds", type=int, default=3,
                    help="rounds of idle and steady (medians are reported)")
    args = ap.parse_args()
    kinds = [args.only] if args.only else ["c", "go"]
    res = {k: {} for k in kinds}
    for name, fn in (("idle", run_idle), ("steady", run_steady),
                     ("capacity", run_capacity)):
        if args.scenario and name != args.scenario:
            continue
        if name == "capacity":
            for kind in kinds:  # side by side: the same scenario back to back
                res[kind][name] = fn(args, kind)
            continue
        # Rounds, alternating the servers, so that a drift in the machine
        # falls on both; the report takes medians.
        runs = {k: [] for k in kinds}
        for _ in range(max(1, args.rounds)):
            for kind in kinds:
                runs[kind].append(fn(args, kind))
        key = "bytes_per_connection" if name == "idle" else "cpu_us_per_ack"
        for kind in kinds:
            res[kind][name] = median_run(runs[kind], key)
    name = f"results-{args.scenario}.json" if args.scenario else "results.json"
    with open(os.path.join(args.out, name), "w") as f:
        json.dump(res, f, indent=1)
    if args.scenario:  # a partial run: print its figures, keep the report
        print(json.dumps({k: res[k] for k in kinds}, indent=1))
        return 0
    svg({k: res[k]["capacity"] for k in kinds}, os.path.join(args.out, "latency.svg"))
    report(res, os.path.join(args.out, "report.md"))


if __name__ == "__main__":
    sys.exit(main())
