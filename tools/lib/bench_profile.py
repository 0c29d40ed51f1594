#!/usr/bin/env python3
"""Where the server's CPU goes, behind tools/bench-profile (see there).

The steady scenario of tools/bench runs against the C server and the Go
reference, alternating, server on core 0, load generator on core 1. In the
load's measured window `perf record -e cpu-clock -C 0 -g` samples all of
core 0, so softirqs run inside the server's system calls count as its own.
Each of the server's samples goes in one part by its call chain: user
space, or kernel: send (of it the loopback receive softirq net_rx_action:
the load generator's TCP receive run inside our send), epoll_wait,
receive, futex, other. A part's share of the samples times the load
generator's CPU per acknowledged click (/proc over the window) is its us
per click (rounds: samples pooled, CPU per click the median). Exit 2 if
perf cannot sample core 0, 1 if a load run broke. Standard library only.
"""
import argparse
import collections
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402
from bench import load  # noqa: E402

RAMP_S = 10
PERF_HZ = 997
KERNEL_DSO = "[kernel.kallsyms]"
# A kernel sample's part: the first whose symbols appear in its call chain.
# Checked against perf 6.1 on kernel 6.18: sendto, recvfrom, epoll_wait,
# epoll_pwait and futex show their __x64_sys_ wrapper, but write and read
# are dispatched without one (do_syscall_64 -> ksys_write), so the function
# under each wrapper is listed too.
PARTS = (
    ("send", {"__x64_sys_sendto", "__sys_sendto", "__x64_sys_sendmsg",
              "__sys_sendmsg", "__x64_sys_write", "ksys_write",
              "__x64_sys_writev", "do_writev"}),
    ("epoll_wait", {"__x64_sys_epoll_wait", "__x64_sys_epoll_pwait",
                    "__x64_sys_epoll_pwait2", "do_epoll_wait"}),
    ("recv", {"__x64_sys_recvfrom", "__sys_recvfrom", "__x64_sys_recvmsg",
              "__x64_sys_read", "ksys_read", "__x64_sys_readv", "do_readv"}),
    ("futex", {"__x64_sys_futex", "do_futex"}),
)
SOFTIRQ = "net_rx_action"
ROWS = (  # (key, label) in table order
    ("user", "user space"),
    ("kernel", "kernel"),
    ("send", "  send (sendto, write, writev)"),
    ("send_net_rx", "    of which loopback receive softirq (net_rx_action)"),
    ("epoll_wait", "  epoll_wait, epoll_pwait"),
    ("recv", "  receive (recvfrom, read)"),
    ("futex", "  futex"),
    ("other_kernel", "  other kernel"),
)
FRAME = re.compile(r"^\s*[0-9a-f]+ (.*) \((.*)\)$")
HEADER = re.compile(r"^(.*\S)\s+(\d+)\s*$")


def perf_check():
    """None if perf can sample core 0 system-wide, else why not."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            p = subprocess.run(["perf", "record", "-q", "-e", "cpu-clock",
                                "-C", "0", "-o", os.path.join(tmp, "d"),
                                "--", "true"], capture_output=True, text=True)
        except FileNotFoundError:
            return "perf is not installed (Debian package linux-perf)"
        why = " ".join(p.stderr.split()[:40])  # perf's first sentences
        return None if p.returncode == 0 else why or f"exit {p.returncode}"


def samples(data):
    """Each sample in perf file `data` as (comm, pid, frames), the frames
    leaf first as (symbol, dso). From perf script, not perf report: perf
    report's --pid and --comm filters act on entries already merged across
    processes when the sort keys lack pid or comm (perf 6.1 put another
    process's kernel samples under ours), and one sample can be counted
    in a part only if its whole chain is seen."""
    p = subprocess.run(["perf", "script", "-i", data, "-F",
                        "comm,pid,ip,sym,dso"], capture_output=True,
                       text=True, check=True)
    for block in p.stdout.split("\n\n"):
        lines = block.strip("\n").splitlines()
        head = lines and HEADER.match(lines[0])
        if head:
            frames = [FRAME.match(l) for l in lines[1:]]
            yield head.group(1), int(head.group(2)), [
                f.groups() if f else ("?", "?") for f in frames]


def classify(data, pid, n):
    """Counts the samples of `data` into Counter `n`: core 0's ("core0"),
    the server's (process `pid`: "samples", and by part), the server's
    comm names ("comm:NAME") and what other kernel samples entered through
    ("entry:NAME", the call under do_syscall_64, else the outermost)."""
    for comm, spid, frames in samples(data):
        n["core0"] += 1
        if spid != pid:
            continue
        n["samples"] += 1
        n["comm:" + comm] += 1
        if not frames or frames[0][1] != KERNEL_DSO:
            n["user"] += 1
            continue
        n["kernel"] += 1
        syms = {s for s, _ in frames}
        part = next((name for name, names in PARTS if syms & names), None)
        if part is None:
            ks = [s for s, d in frames if d == KERNEL_DSO]
            i = ks.index("do_syscall_64") if "do_syscall_64" in ks else 0
            n["entry:" + (ks[i - 1] if i > 0 else ks[-1])] += 1
            part = "other_kernel"
        n[part] += 1
        if part == "send" and SOFTIRQ in syms:
            n["send_net_rx"] += 1


def profiled_run(args, kind, data):
    """One steady load run against a fresh `kind` server with perf
    recording core 0 into `data` inside the window; the load result and
    the server's pid."""
    with tempfile.TemporaryDirectory() as tmp:
        server = bench.Server(kind, args, tmp)
        box = {}

        def run_load():
            try:
                box["r"] = load(args, server, args.players, args.rate,
                                args.duration, RAMP_S)
            except Exception as e:  # handed to the main thread
                box["e"] = e

        try:
            time.sleep(0.5)
            t = threading.Thread(target=run_load)
            t.start()
            time.sleep(RAMP_S + 2)  # the window opens after the ramp
            # perf itself on core 1, off the server's core.
            perf = subprocess.run(
                ["taskset", "-c", "1", "perf", "record", "-q", "-e",
                 "cpu-clock", "-C", "0", "-F", str(PERF_HZ), "-g", "-o", data,
                 "--", "sleep", str(args.duration - 4)],
                capture_output=True, text=True)
            t.join()
        finally:
            server.stop()
    if "e" in box:
        raise box["e"]
    if perf.returncode != 0:
        print(f"bench-profile: perf record failed: {perf.stderr[-400:]}",
              file=sys.stderr)
        sys.exit(2)
    return box["r"], server.proc.pid


def summary(n, runs):
    """One server's figures from its sample counts `n` and load results."""
    total = statistics.median(r["cpu_us_per_ack"] for r in runs)
    share = {key: n[key] / max(1, n["samples"]) for key, _ in ROWS}
    named = lambda prefix: {k[len(prefix):]: v for k, v in n.most_common()
                            if k.startswith(prefix)}
    return {
        "cpu_us_per_ack": total, "samples": n["samples"],
        "core0_samples": n["core0"], "comm": named("comm:"),
        "counts": {key: n[key] for key, _ in ROWS}, "share": share,
        "us": {key: v * total for key, v in share.items()},
        "other_kernel_entries": dict(list(named("entry:").items())[:8]),
        "busy_perf": n["samples"] / max(1, n["core0"]),
        "busy_proc": statistics.mean(r["server_cpu_s"] / r["window_s"]
                                     for r in runs),
        "rounds": [{"cpu_us_per_ack": r["cpu_us_per_ack"],
                    "p99_ms": r["latency_ms"]["p99"], "acks": r["acks"]}
                   for r in runs]}


def table(res):
    c, g = res["c"], res["go"]
    lines = ["| server CPU per acknowledged click (us) | C | Go | C share | "
             "Go share |", "|---|---|---|---|---|"]
    for key, label in ROWS:
        lines.append(f"| {label} | {c['us'][key]:.2f} | {g['us'][key]:.2f} | "
                     f"{c['share'][key] * 100:.1f}% | "
                     f"{g['share'][key] * 100:.1f}% |")
    lines.append(f"| total (load generator, median) | {c['cpu_us_per_ack']:.2f}"
                 f" | {g['cpu_us_per_ack']:.2f} | 100% | 100% |")
    d = res["derived"]
    lines += [
        "", res["method"],
        f"Check: the server's share of core 0, perf {c['busy_perf'] * 100:.0f}%"
        f" C, {g['busy_perf'] * 100:.0f}% Go; /proc "
        f"{c['busy_proc'] * 100:.0f}% C, {g['busy_proc'] * 100:.0f}% Go.",
        f"Budget (0.25 x Go's total): {d['budget_us']:.2f} us per click.",
        f"C's kernel: {d['c_kernel_us']:.2f} us per click "
        f"({d['c_kernel_us'] / d['budget_us']:.2f} x the budget).",
        f"C / Go if C's user space cost were zero (C kernel / Go total): "
        f"{d['c_kernel_over_go_total']:.3f} (target <= 0.25).",
    ]
    return lines


def main():
    ap = argparse.ArgumentParser()
    bench.common_args(ap, players=2000, rate=5, duration=20, rounds=1)
    args = ap.parse_args()
    if args.duration < 6:
        ap.error("--duration must be at least 6 (perf records duration - 4 s)")
    why = perf_check()
    if why:
        print(f"bench-profile: perf cannot record system-wide on core 0 "
              f"(perf record -e cpu-clock -C 0 -- true): {why}\n"
              f"Run as root or with kernel.perf_event_paranoid <= 0.",
              file=sys.stderr)
        return 2
    res = {"players": args.players, "rate": args.rate,
           "duration": args.duration, "rounds": args.rounds,
           "perf_s": args.duration - 4}
    counts = {"c": collections.Counter(), "go": collections.Counter()}
    runs = {"c": [], "go": []}
    with tempfile.TemporaryDirectory() as tmp:
        for rnd in range(args.rounds):
            for kind in ("c", "go"):
                data = os.path.join(tmp, f"{kind}-{rnd}.data")
                try:
                    r, pid = profiled_run(args, kind, data)
                    if r["exit"] != 0:
                        raise RuntimeError(f"load generator exit {r['exit']}")
                except RuntimeError as e:
                    print(f"bench-profile: round {rnd + 1} {kind}: the load "
                          f"run broke: {e}", file=sys.stderr)
                    return 1
                classify(data, pid, counts[kind])
                runs[kind].append(r)
                shutil.copy(data, os.path.join(args.out, f"profile-{kind}.data"))
                print(f"round {rnd + 1} {kind}: {r['cpu_us_per_ack']:.2f} us "
                      f"CPU per ack, p99 {r['latency_ms']['p99']:.2f} ms",
                      flush=True)
    for kind in ("c", "go"):
        res[kind] = summary(counts[kind], runs[kind])
    go_us, c_kernel = res["go"]["cpu_us_per_ack"], res["c"]["us"]["kernel"]
    res["derived"] = {"budget_us": 0.25 * go_us, "c_kernel_us": c_kernel,
                      "c_kernel_over_go_total": c_kernel / go_us}
    res["method"] = (
        f"Method: a part's us per click = its share of the server's perf "
        f"samples on core 0 ({res['c']['samples']} C, {res['go']['samples']} "
        f"Go, cpu-clock at {PERF_HZ} Hz, {res['perf_s']} s per round in the "
        f"window) x the load generator's server CPU per acknowledged click "
        f"(/proc/PID/stat over the {args.duration} s window).")
    lines = table(res)
    with open(os.path.join(args.out, "profile.json"), "w") as f:
        json.dump(res, f, indent=1)
    head = (f"# Where the server's CPU goes\n\n{args.players} players at "
            f"{args.rate:g} clicks/s, {args.duration} s window, {args.rounds} "
            f"round(s), {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}."
            f"\n\n")
    with open(os.path.join(args.out, "profile.md"), "w") as f:
        f.write(head + "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
