#!/usr/bin/env python3
"""The cluster's benchmark behind tools/bench-cluster (see there).

Servers (every instance, and Redis) run on core 0, the load on core 1, as
in tools/bench. Two scenarios, each --rounds times, alternating the
configurations round by round so that the machine's drift falls on all of
them; the tables give medians.

steady      tools/bench's steady scenario (players clicking at 5/s in 60 s
            games), against one instance alone, then against two
            instances and Redis with the same players spread over both.
            Load: overcookied-load (tools/bench's, through bench.load), one
            per half of the players. It cannot follow MOVE, so the halves
            are started one after the other: the first half's players are
            all matched (an even count) before the second half joins, and
            every match is local; the run checks that no MOVE happened
            (overcookied_moves_total). A room's clicks are handled by its
            owner either way, cross-instance rooms included, once the moved
            player has arrived. Measured over a window that starts once
            every game is past its countdown: the servers' CPU time
            (utime + stime from /proc, the instances summed; Redis's apart)
            per acknowledged click (overcookied_clicks_total, scored and
            countdown, from the instances' /metrics over the same window),
            click-to-ack percentiles (the load generators', medians of the
            two), and the Redis round trips in the window that were
            neither lease renewals nor inbox polls (below): clicks never
            touch Redis, so this is 0.

matchmaking Players join in waves through a 2-instance cluster; the load is
            Python (asyncio and python3-websockets, in this process, on
            core 1), because it must follow MOVE: a moved player
            reconnects to the MOVE's url with the same token while its old
            connection closes. Per wave: log in and open a WebSocket for
            every player (half on each instance), then JOIN_QUEUE from all
            of them in a shuffled order: in a burst wave all at once, as
            fast as one client sends; in a paced wave spread evenly over
            --spread seconds. Once every player has its GAME_START (a moved
            player: on the owner, after following MOVE), one player of each
            room sends QUIT_GAME and all wait for GAME_OVER; then all
            close. The same waves run against one instance without Redis as
            a baseline. In a burst each instance's JOIN_QUEUEs reach Redis
            as one pipelined batch, so most pairs are local; paced, about
            half are cross-instance. Figures:
              matches/s          burst waves: matches in the wave over the
                                 time from its first JOIN_QUEUE to its last
                                 GAME_START
              JOIN->GAME_START   per player, p50 and p99 over the round's
                                 waves of a kind, apart for players of local
                                 matches, moved players of cross-instance
                                 matches (to their GAME_START on the owner)
                                 and the players who stayed; and a moved
                                 player's MOVE to its GAME_START. The first
                                 of a pair to queue waits for the second: a
                                 moved player is always the first (the
                                 second's instance took the pair and owns
                                 the room), a stayed one the second, and a
                                 local match has one of each
              Redis round trips  per match, from the instances'
                                 overcookied_redis_round_trips_total, minus
                                 the background: the lease renewals (their
                                 own counter, overcookied_leases_total) and
                                 the inbox polls (LPOP, which only the
                                 Cluster sends: Redis's INFO commandstats).
                                 That attribution is exact; the background
                                 estimated from an idle window instead (the
                                 round trips of the same instances over an
                                 idle stretch as long as the phase) is
                                 printed beside it as a check. Three
                                 phases: the connects (per connection: a
                                 player connecting to an instance where it
                                 has no game asks Redis whether it has one
                                 elsewhere), the matching (per match) and
                                 the ends (per match: the owner claims its
                                 room's end, then, its row stored, says so
                                 and Redis forgets the room).
            The load's own CPU share in the matching phase is printed: near
            100 % means the client, not the cluster, set the pace.
"""
import argparse
import asyncio
import json
import os
import random
import re
import socket
import statistics
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402
import cluster as clusterlib  # noqa: E402

import websockets  # noqa: E402  (python3-websockets, Debian's)

TICK = os.sysconf("SC_CLK_TCK")
STEP_TIMEOUT_S = 10   # one HTTP call, one WebSocket open
WAVE_TIMEOUT_S = 60   # a wave's matching, or its ends
COUNTDOWN_S = 5       # the server's default, which steady keeps
SETTLE_S = 1.0


# ---- Measuring ----------------------------------------------------------------

def cpu_s(pid):
    """utime + stime of pid, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def metrics(port):
    """Every sample of an instance's /metrics: {'name{labels}': value}."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics",
                                timeout=STEP_TIMEOUT_S) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


def redis_calls(port):
    """{'lpop': calls, 'eval': calls, ...} from INFO commandstats."""
    with socket.create_connection(("127.0.0.1", port), STEP_TIMEOUT_S) as s:
        s.sendall(b"INFO commandstats\r\n")
        data = b""
        while b"\r\n" not in data:
            data += s.recv(65536)
        head, _, rest = data.partition(b"\r\n")
        size = int(head[1:])
        while len(rest) < size:
            rest += s.recv(65536)
    return {m.group(1): int(m.group(2)) for m in
            re.finditer(r"cmdstat_(\w+):calls=(\d+)", rest.decode())}


class Snapshot:
    """What the instances' /metrics and Redis say at one moment."""

    def __init__(self, cl):
        self.t = time.monotonic()
        self.m = [metrics(s.port) for s in cl.servers]
        self.redis = redis_calls(cl.redis_port) if cl.redis else {}

    def total(self, key):
        return sum(m.get(key, 0.0) for m in self.m)


def delta(a, b, key):
    return b.total(key) - a.total(key)


RT = "overcookied_redis_round_trips_total"
RENEWED = 'overcookied_leases_total{event="renewed"}'


def foreground_rt(a, b):
    """Round trips between snapshots a and b that were neither renewals
    nor inbox polls (the Cluster's only LPOPs): the exact attribution."""
    if not a.redis:
        return 0.0
    polls = b.redis.get("lpop", 0) - a.redis.get("lpop", 0)
    return delta(a, b, RT) - delta(a, b, RENEWED) - polls


def percentile(xs, q):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, int(round(q * (len(xs) - 1)))))]


# ---- The servers ----------------------------------------------------------------

class Cluster:
    """n instances of tools/bench's C server (core 0) on one SQLite file,
    with Redis (also core 0) when redis is set."""

    def __init__(self, args, tmp, n, redis, flags=()):
        self.redis = None
        self.redis_port = None
        self.servers = []
        try:
            extra = list(flags)
            if redis:
                self.redis, self.redis_port = clusterlib.start_redis(
                    tmp, tmp, prefix=("taskset", "-c", "0"))
            for k in range(n):
                more = []
                if redis:
                    more = ["--redis", f"redis://127.0.0.1:{self.redis_port}",
                            "--instance-id", f"i{k + 1}"]
                self.servers.append(bench.Server(
                    "c", args, tmp, extra + more,
                    db=os.path.join(tmp, "bench.db")))
            if redis:
                self.wait_up()
        except BaseException:
            self.stop()
            raise

    def wait_up(self):
        deadline = time.monotonic() + STEP_TIMEOUT_S
        while time.monotonic() < deadline:
            if all(metrics(s.port).get("overcookied_cluster_up") == 1
                   for s in self.servers):
                return
            time.sleep(0.05)
        raise RuntimeError("the instances did not reach Redis")

    def cpu(self):
        """(the instances' CPU seconds, Redis's)."""
        return (sum(cpu_s(s.proc.pid) for s in self.servers),
                cpu_s(self.redis.pid) if self.redis else 0.0)

    def stop(self):
        for s in self.servers:
            s.stop()
        if self.redis is not None:
            self.redis.stop()
            self.redis.wait_stopped(time.monotonic() + STEP_TIMEOUT_S)


# ---- Steady -------------------------------------------------------------------

STARTED = 'overcookied_games_total{event="started"}'
SLACK_S = 6.0  # how late a load's ramp may be (a busy machine) and still fit


def wait_games(cl, want, deadline):
    """Poll until cl's instances have started `want` games, or deadline;
    the time it happened (or the deadline)."""
    while time.monotonic() < deadline:
        if Snapshot(cl).total(STARTED) >= want:
            return time.monotonic()
        time.sleep(0.2)
    return deadline


def steady(args, clustered):
    """One round of the steady scenario; a dict of its figures."""
    half = args.players // 2
    ramp, window = args.ramp, args.duration
    tail = COUNTDOWN_S + SETTLE_S  # a last game past its countdown
    # Load A runs long enough for B to start as late as it may and for the
    # window after it; B likewise. Each load stops when its time is up,
    # after the window.
    a_len = ramp + SETTLE_S + SLACK_S + ramp + SLACK_S + tail + window + 1.5
    b_len = SLACK_S + tail + window + 1.5
    with tempfile.TemporaryDirectory() as tmp:
        cl = Cluster(args, tmp, 2 if clustered else 1, clustered)
        try:
            time.sleep(0.5)
            target = [cl.servers[0], cl.servers[-1]]
            out = [None, None]

            def run(k, duration):
                out[k] = bench.load(args, target[k], half, args.rate,
                                    duration, ramp)

            t0 = time.monotonic()
            loads = [threading.Thread(target=run, args=(0, a_len - ramp)),
                     threading.Thread(target=run, args=(1, b_len))]
            loads[0].start()
            # B joins once every player of A is in a game, so that every
            # match is local (overcookied-load cannot follow a MOVE).
            time.sleep(ramp)
            wait_games(cl, half // 2, t0 + ramp + SETTLE_S + SLACK_S)
            time.sleep(SETTLE_S)
            t_b = time.monotonic()
            loads[1].start()
            time.sleep(ramp)
            t_all = wait_games(cl, args.players // 2, t_b + ramp + SLACK_S)
            time.sleep(max(0.0, t_all + tail - time.monotonic()))
            s0 = Snapshot(cl)
            cpu0 = cl.cpu()
            time.sleep(window)
            cpu1 = cl.cpu()
            s1 = Snapshot(cl)
            for t in loads:
                t.join()
        finally:
            cl.stop()
    countdown = delta(s0, s1, 'overcookied_clicks_total{outcome="countdown"}')
    acks = delta(s0, s1, 'overcookied_clicks_total{outcome="scored"}') + countdown
    r = {
        "window_s": s1.t - s0.t,
        "acks": acks,
        "countdown_clicks": countdown,
        "games_started": s1.total(STARTED),
        "games_ended_in_window": sum(
            delta(s0, s1, 'overcookied_games_total{event="finished",'
                  f'reason="{why}"}}')
            for why in ("time", "quit", "opponent_disconnected")),
        "cpu_us_per_ack": (cpu1[0] - cpu0[0]) * 1e6 / acks if acks else 0.0,
        "redis_cpu_ms": (cpu1[1] - cpu0[1]) * 1e3,
        "p50_ms": statistics.median(o["latency_ms"]["p50"] for o in out),
        "p99_ms": statistics.median(o["latency_ms"]["p99"] for o in out),
        "acks_missing": sum(o["acks_missing"] for o in out),
        "load_exit": [o["exit"] for o in out],
        "moves": s1.total("overcookied_moves_total"),
        "rt_window": delta(s0, s1, RT),
        "rt_foreground": foreground_rt(s0, s1),
    }
    if clustered and r["moves"] > 0:
        r["invalid"] = "a MOVE happened: overcookied-load cannot follow it"
    elif r["games_started"] < args.players // 2:
        r["invalid"] = (f"{r['games_started']:.0f} of {args.players // 2} "
                        "games started: the load fell behind its ramp")
    return r


# ---- Matchmaking: the Python load --------------------------------------------

async def http_login(port, name):
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", port), STEP_TIMEOUT_S)
    body = json.dumps({"name": name}).encode()
    writer.write(b"POST /api/login HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                 b"Content-Type: application/json\r\nContent-Length: %d\r\n"
                 b"Connection: close\r\n\r\n%s" % (port, len(body), body))
    data = await asyncio.wait_for(reader.read(), STEP_TIMEOUT_S)
    writer.close()
    head, _, payload = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError("login failed: " + head[:80].decode())
    return json.loads(payload)["token"]


class Player:
    def __init__(self, index, port):
        self.index = index
        self.port = port
        self.token = None
        self.ws = None
        self.t_join = None
        self.t_move = None
        self.t_start = None
        self.room = None
        self.moved = False
        self.over = asyncio.Event()
        self.started = asyncio.Event()
        self.error = None

    async def connect(self, url=None):
        url = url or f"ws://127.0.0.1:{self.port}/ws"
        self.ws = await websockets.connect(
            f"{url}?token={self.token}", open_timeout=STEP_TIMEOUT_S,
            close_timeout=2, max_queue=None, compression=None)

    async def read(self):
        """Read until GAME_OVER, following a MOVE on the way."""
        while True:
            try:
                raw = await self.ws.recv()
            except websockets.ConnectionClosed as e:
                if not self.over.is_set():
                    self.error = f"closed {e.code} {e.reason}"
                return
            m = json.loads(raw)
            kind = m.get("type")
            if kind == "MOVE":
                self.t_move = time.monotonic()
                self.moved = True
                old = self.ws
                # The client closes its side and goes: the server's 4001
                # close needs no waiting for (a browser does not either).
                asyncio.get_running_loop().create_task(old.close())
                await self.connect(m["payload"]["url"])
            elif kind == "GAME_START" and self.t_start is None:
                self.t_start = time.monotonic()
                self.room = m["payload"]["roomId"]
                self.started.set()
            elif kind == "GAME_OVER":
                self.over.set()
            elif kind == "ERROR":
                self.error = m["payload"].get("code")


async def wave(cl, n, rng, idle_rate, spread):
    """One wave of n players through cl's instances, their JOIN_QUEUEs
    sent evenly over spread seconds (0: all at once); its figures."""
    ports = [s.port for s in cl.servers]
    players = [Player(i, ports[i * len(ports) // n]) for i in range(n)]
    c0 = Snapshot(cl)
    tokens = await asyncio.gather(*(http_login(p.port, f"w{p.index}")
                                    for p in players))
    for p, t in zip(players, tokens):
        p.token = t
    await asyncio.gather(*(p.connect() for p in players))
    readers = [asyncio.get_running_loop().create_task(p.read())
               for p in players]
    await asyncio.sleep(0.2)  # each connect's lookup is answered
    m0 = Snapshot(cl)
    load_cpu0 = cpu_s(os.getpid())
    order = list(players)
    rng.shuffle(order)
    join = json.dumps({"type": "JOIN_QUEUE"})
    t_first = time.monotonic()
    for i, p in enumerate(order):
        if spread > 0:
            await asyncio.sleep(max(0.0, t_first + spread * i / n -
                                    time.monotonic()))
        p.t_join = time.monotonic()
        await p.ws.send(join)
    try:
        await asyncio.wait_for(
            asyncio.gather(*(p.started.wait() for p in players)),
            WAVE_TIMEOUT_S)
    except asyncio.TimeoutError:
        pass
    m1 = Snapshot(cl)
    load_cpu1 = cpu_s(os.getpid())
    rooms = {}
    for p in players:
        if p.room is not None:
            rooms.setdefault(p.room, []).append(p)
    quit_msg = json.dumps({"type": "QUIT_GAME"})
    for seats in rooms.values():
        await seats[0].ws.send(quit_msg)
    try:
        await asyncio.wait_for(
            asyncio.gather(*(p.over.wait() for p in players if p.room)),
            WAVE_TIMEOUT_S)
    except asyncio.TimeoutError:
        pass
    await asyncio.sleep(0.2)  # the last claims are answered
    e1 = Snapshot(cl)
    await asyncio.gather(*(p.ws.close() for p in players),
                         return_exceptions=True)
    for r in readers:
        r.cancel()
    await asyncio.gather(*readers, return_exceptions=True)

    started = [p for p in players if p.t_start is not None]
    first = min(p.t_join for p in players)
    last = max((p.t_start for p in started), default=first)
    full = [s for s in rooms.values() if len(s) == 2]
    times = {"local": [], "moved": [], "stayed": [], "reconnect": []}
    for seats in full:
        cross = any(p.moved for p in seats)
        for p in seats:
            kind = "moved" if p.moved else "stayed" if cross else "local"
            times[kind].append((p.t_start - p.t_join) * 1e3)
            if p.moved:
                times["reconnect"].append((p.t_start - p.t_move) * 1e3)
    matches = len(full)

    def fg(a, b):
        exact = foreground_rt(a, b)
        # The same window's background estimated from the idle rate.
        idle = delta(a, b, RT) - idle_rate * (b.t - a.t)
        return exact, idle

    connects = fg(c0, m0)
    matching = fg(m0, m1)
    ends = fg(m1, e1)
    return {
        "players": n, "matches": matches, "spread": spread,
        "cross": sum(1 for s in full if any(p.moved for p in s)),
        "unstarted": n - len(started),
        "errors": sorted({p.error for p in players if p.error}),
        "span_s": last - first,
        "matches_per_s": matches / (last - first) if last > first else 0.0,
        "times": times,
        "rt_per_connect": [x / n for x in connects],
        "rt_per_match": [x / matches if matches else 0.0 for x in matching],
        "rt_end_per_match": [x / matches if matches else 0.0 for x in ends],
        "metrics_local": delta(m0, m1, 'overcookied_matches_total{where="local"}'),
        "metrics_cross": delta(m0, m1, 'overcookied_matches_total{where="cross"}'),
        "load_cpu_share": ((load_cpu1 - load_cpu0) / (m1.t - m0.t)
                           if m1.t > m0.t else 0.0),
    }


def idle_rate(cl, seconds):
    """Round trips a second of cl's instances doing nothing."""
    if cl.redis is None:
        return 0.0
    a = Snapshot(cl)
    time.sleep(seconds)
    b = Snapshot(cl)
    return delta(a, b, RT) / (b.t - a.t)


def matchmaking(args, clustered, seed):
    with tempfile.TemporaryDirectory() as tmp:
        cl = Cluster(args, tmp, 2 if clustered else 1, clustered,
                     flags=["--lobby-idle", "0"])
        try:
            time.sleep(0.5)
            rate = idle_rate(cl, args.idle_window)
            rng = random.Random(seed)
            waves = []
            for _ in range(args.waves):
                for spread in (0.0, args.spread):
                    waves.append(asyncio.run(wave(cl, args.wave_players, rng,
                                                  rate, spread)))
                    time.sleep(0.3)
        finally:
            cl.stop()
    return {"idle_rt_per_s": rate, "waves": waves}


# ---- Report -------------------------------------------------------------------

def med(xs):
    xs = [x for x in xs if x == x]
    return statistics.median(xs) if xs else float("nan")


def fmt(x, digits=2):
    return "-" if x != x else f"{x:,.{digits}f}"


def report_steady(res, args):
    one, two = res["single"], res["cluster"]
    print()
    print(f"Steady: {args.players} players at {args.rate:g} clicks/s "
          f"(two halves of {args.players // 2}), {args.duration} s window; "
          f"medians of {len(one)} rounds. Servers on core 0, "
          "overcookied-load on core 1.")
    print()
    print("| figure | one instance | two instances + Redis | two / one |")
    print("|---|---|---|---|")
    rows = [("server CPU per acknowledged click (us; instances summed)",
             "cpu_us_per_ack", 2),
            ("p50 click-to-ack (ms)", "p50_ms", 2),
            ("p99 click-to-ack (ms)", "p99_ms", 2),
            ("acknowledged clicks in the window", "acks", 0),
            ("Redis CPU in the window (ms)", "redis_cpu_ms", 0),
            ("Redis round trips in the window, all", "rt_window", 0),
            ("... of them neither renewal nor inbox poll", "rt_foreground", 0)]
    for name, key, digits in rows:
        a = med(r[key] for r in one)
        b = med(r[key] for r in two)
        ratio = fmt(b / a) if a else "-"
        print(f"| {name} | {fmt(a, digits)} | {fmt(b, digits)} | {ratio} |")
    print()
    print("Rounds, CPU us per click (one | two): " + "; ".join(
        f"{a['cpu_us_per_ack']:.2f} | {b['cpu_us_per_ack']:.2f}"
        for a, b in zip(one, two)))
    for kind, rounds in (("one", one), ("two", two)):
        for i, r in enumerate(rounds):
            notes = [r["invalid"]] if r.get("invalid") else []
            for key in ("acks_missing", "countdown_clicks",
                        "games_ended_in_window"):
                if r[key]:
                    notes.append(f"{key} {r[key]:.0f}")
            if any(r["load_exit"]):
                notes.append(f"load exit {r['load_exit']}")
            if notes:
                print(f"Round {i + 1} ({kind}): " + ", ".join(notes))


def report_matchmaking(res, args):
    one, two = res["single"], res["cluster"]
    n = args.wave_players
    print()
    print(f"Matchmaking: waves of {n} players (half on each instance), "
          f"{args.waves} burst waves (every JOIN_QUEUE at once) and "
          f"{args.waves} paced ones (JOIN_QUEUEs spread evenly over "
          f"{args.spread:g} s) a round, {len(two)} rounds; medians of the "
          "rounds. The load is Python (asyncio, python3-websockets) on core "
          "1, following MOVE.")
    print()

    def waves(r, paced):
        return [w for w in r["waves"] if (w["spread"] > 0) == paced]

    def pooled(rounds, paced, kind, q):
        return med(percentile([t for w in waves(r, paced)
                               for t in w["times"][kind]], q) for r in rounds)

    def count(rounds, paced, kind):
        return med(sum(len(w["times"][kind]) for w in waves(r, paced))
                   for r in rounds)

    def per_wave(rounds, paced, key, idx=None):
        return med(med((w[key][idx] if idx is not None else w[key])
                       for w in waves(r, paced)) for r in rounds)

    print("| JOIN_QUEUE to GAME_START (ms) | one instance, no Redis "
          "| cluster: local match | cluster: cross-instance, moved player "
          "| cluster: cross-instance, player who stayed |")
    print("|---|---|---|---|---|")
    for paced in (True, False):
        kind = "paced" if paced else "burst"
        for q, qn in ((0.5, "p50"), (0.99, "p99")):
            print(f"| {kind} waves, {qn} | "
                  f"{fmt(pooled(one, paced, 'local', q))} | "
                  f"{fmt(pooled(two, paced, 'local', q))} | "
                  f"{fmt(pooled(two, paced, 'moved', q))} | "
                  f"{fmt(pooled(two, paced, 'stayed', q))} |")
        print(f"| {kind} waves, moved player from MOVE to GAME_START on "
              f"the owner, p50 / p99 | - | - | "
              f"{fmt(pooled(two, paced, 'reconnect', 0.5))} / "
              f"{fmt(pooled(two, paced, 'reconnect', 0.99))} | - |")
        print(f"| {kind} waves, players timed a round | "
              f"{fmt(count(one, paced, 'local'), 0)} | "
              f"{fmt(count(two, paced, 'local'), 0)} | "
              f"{fmt(count(two, paced, 'moved'), 0)} | "
              f"{fmt(count(two, paced, 'stayed'), 0)} |")
    print()
    print("| figure | one instance, no Redis | two instances + Redis |")
    print("|---|---|---|")
    print(f"| matches per second, burst waves (a wave's matches over its "
          f"first JOIN_QUEUE to its last GAME_START) | "
          f"{fmt(per_wave(one, False, 'matches_per_s'), 0)} | "
          f"{fmt(per_wave(two, False, 'matches_per_s'), 0)} |")
    print(f"| load generator's CPU share while matching, burst waves | "
          f"{fmt(per_wave(one, False, 'load_cpu_share') * 100, 0)} % | "
          f"{fmt(per_wave(two, False, 'load_cpu_share') * 100, 0)} % |")
    for paced in (False, True):
        kind = "paced" if paced else "burst"
        share = per_wave(two, paced, "cross") / (n / 2) * 100
        print(f"| cross-instance matches, {kind} waves | - | "
              f"{fmt(share, 0)} % |")
    for name, key in (("per connection (its lookup)", "rt_per_connect"),
                      ("per match, matching", "rt_per_match"),
                      ("per match, its end (claim, finished)",
                       "rt_end_per_match")):
        print(f"| Redis round trips {name}, all waves: exact / idle-window "
              f"estimate | - | {fmt(med(w[key][0] for r in two for w in r['waves']))}"
              f" / {fmt(med(w[key][1] for r in two for w in r['waves']))} |")
    print(f"| background round trips per second, idle (2 instances) | - | "
          f"{fmt(med(r['idle_rt_per_s'] for r in two), 1)} |")
    print()
    print("Exact: the instances' round trips minus their lease renewals and "
          "the inbox polls (Redis's LPOP count). Idle-window estimate: minus "
          "the idle rate measured before the waves times the phase's "
          "length (the polls and renews fall at whole periods, so a phase "
          "of a few hundred ms is off by a few round trips either way).")
    trouble = [(k, i, w) for k, rounds in (("single", one), ("cluster", two))
               for i, r in enumerate(rounds) for w in r["waves"]
               if w["unstarted"] or w["errors"]]
    for kind, i, w in trouble:
        print(f"Round {i + 1} ({kind}): {w['unstarted']} players without "
              f"GAME_START, errors {w['errors']}")
    checks = [(w["metrics_local"], w["metrics_cross"], w["matches"] - w["cross"],
               w["cross"]) for r in two for w in r["waves"]]
    off = [c for c in checks if (c[0], c[1]) != (c[2], c[3])]
    if off:
        print("Matches by /metrics (local, cross) against the clients' count "
              f"differ in {len(off)} waves: {off[:5]}")


def main():
    ap = argparse.ArgumentParser()
    bench.common_args(ap, go=False, players=2000, rate=5, duration=20,
                      rounds=3)
    ap.add_argument("--ramp", type=float, default=5,
                    help="each half's ramp, seconds (steady)")
    ap.add_argument("--wave-players", type=int, default=400)
    ap.add_argument("--waves", type=int, default=5,
                    help="waves of each kind (burst, paced) a round")
    ap.add_argument("--spread", type=float, default=2.0,
                    help="a paced wave's JOIN_QUEUEs over this many seconds")
    ap.add_argument("--idle-window", type=float, default=2.0)
    ap.add_argument("--only", choices=["steady", "matchmaking"])
    args = ap.parse_args()
    if args.players % 4 or args.wave_players % 4:
        ap.error("--players and --wave-players: multiples of 4 (even halves)")
    # This process is the matchmaking load: core 1, as overcookied-load.
    os.sched_setaffinity(0, {1})
    t0 = time.monotonic()
    load0 = f"{os.getloadavg()[0]:.1f}"
    steady_res = {"single": [], "cluster": []}
    mm_res = {"single": [], "cluster": []}
    for rnd in range(args.rounds):
        for clustered in (False, True):
            key = "cluster" if clustered else "single"
            if args.only != "matchmaking":
                r = steady(args, clustered)
                steady_res[key].append(r)
                print(f"round {rnd + 1} steady {key}: "
                      f"{r['cpu_us_per_ack']:.2f} us/click, p99 "
                      f"{r['p99_ms']:.2f} ms, {r['acks']:.0f} clicks, "
                      f"{r['rt_foreground']:.0f} foreground round trips",
                      flush=True)
            if args.only != "steady":
                r = matchmaking(args, clustered, 1000 * rnd + clustered)
                mm_res[key].append(r)
                w = r["waves"]
                burst = [x for x in w if x["spread"] == 0]
                print(f"round {rnd + 1} matchmaking {key}: "
                      f"{med(x['matches_per_s'] for x in burst):.0f} "
                      f"matches/s in bursts, {sum(x['cross'] for x in w)} of "
                      f"{sum(x['matches'] for x in w)} matches cross",
                      flush=True)
    if args.only != "matchmaking":
        report_steady(steady_res, args)
    if args.only != "steady":
        report_matchmaking(mm_res, args)
    print()
    print(f"({time.monotonic() - t0:.0f} s; the machine's load average "
          f"{load0} at the start, {os.getloadavg()[0]:.1f} at the end: "
          "above 2, other work shared these 2 cores and the latencies "
          "above mean little)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
