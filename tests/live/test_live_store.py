#!/usr/bin/env python3
"""Live store test: what a player was told is what the database holds.

The Store acknowledges a result only after its transaction committed, and
only then does the Room send GAME_OVER (game/game_store.h, Guarantee (1));
each game is stored once, by its unique room id (Guarantee (2)). These tests
break things around that promise with the real server on loopback, played
by Debian's python3-websockets, and read the database with a client the
server does not use (Python's sqlite3, or psql):

  a. kill -9 of the server in the middle of a burst of game ends (~30
     games ending within about a second), on SQLite and on PostgreSQL:
     every GAME_OVER any client received is stored, with its scores, once;
     the players' totals agree with the stored games.
  b. PostgreSQL: full games are stored once; the leaderboard and every
     player's history over HTTP agree with the tables.
  c. PostgreSQL restarted in the middle of a burst of game ends: every game
     still ends with GAME_OVER (results are retried), every GAME_OVER is
     stored, once.
  d. PostgreSQL down for 30 s: a game plays to its end, leaderboard and
     history answer 503 meanwhile, no GAME_OVER is sent before the result
     can commit, and it commits (and GAME_OVER arrives) once it is back.

The PostgreSQL server is a throwaway one (tests/live/pglib.py on
tools/lib/pgtmp), one for the PostgreSQL tests, a fresh database per test.
Every wait is bounded; every server (ours and PostgreSQL) is stopped in
tearDown, at exit, and by pgtmp's watcher if this process is killed.

usage: test_live_store.py OVERCOOKIED_BINARY STATIC_DIR
"""
import asyncio
import json
import os
import signal
import sqlite3
import sys
import tempfile
import time
import unittest
import urllib.request

import websockets

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import livelib  # noqa: E402
import pglib  # noqa: E402
from livelib import STEP_TIMEOUT, http  # noqa: E402

BINARY = STATIC = None
GAME_LENGTH = 2          # whole seconds of play per game
COUNTDOWN = 0.3
BURST_PAIRS = 30         # games in a burst: CLUSTER_PAIRS end together,
CLUSTER_PAIRS = 24       # the rest one by one over the next TAIL_S, so
TAIL_S = 2.0             # that some are surely still running at the kill
HOLD_S = 1.2             # test a on PostgreSQL: commits held back this long
KILL_AFTER = 1           # GAME_OVER messages: at the first one
OUTAGE_S = 30            # test d: PostgreSQL down this long
RECOVERY_MAX_S = 30      # after the database is back, results commit within


def Server(db, tmpdir):
    """livelib's server with this file's BINARY, STATIC and game timing,
    logins unlimited; its output in files in tmpdir."""
    return livelib.Server(BINARY, STATIC, db, "--logins-per-minute", "0",
                          "--countdown", str(COUNTDOWN),
                          "--game-length", str(GAME_LENGTH), tmpdir=tmpdir)


def store_metrics(server):
    """overcookied_store_* samples from /metrics, name{labels} -> value."""
    with urllib.request.urlopen(server.base + "/metrics",
                                timeout=STEP_TIMEOUT) as r:
        text = r.read().decode()
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("overcookied_store_") and " " in line}


class Player:
    def __init__(self, server, name, clicks_per_tick):
        status, login = http(server, "/api/login", {"name": name})
        assert status == 200, (status, login)
        self.name = name
        self.id = login["userId"]
        self.token = login["token"]
        self.clicks_per_tick = clicks_per_tick
        self.url = f"ws://127.0.0.1:{server.port}/ws?token={self.token}"
        self.ws = None
        self.room_id = None
        self.role = None
        self.over = None            # GAME_OVER payload
        self.over_at = None         # time.monotonic() it arrived
        self.time_remaining = []    # every tick's timeRemaining
        self.last_tick_at = None    # time.monotonic() of the last tick
        self.closed = None          # why the connection ended early


class Burst:
    """Plays many pairs at once and calls on_over(count) after each
    GAME_OVER message (count: how many so far), from the event loop."""

    def __init__(self, players, join_offsets_s, on_over=None):
        """join_offsets_s[i]: when pair i joins the queue, from the start."""
        assert len(join_offsets_s) * 2 == len(players)
        self.players = players
        self.join_offsets_s = join_offsets_s
        self.on_over = on_over
        self.overs = 0

    @staticmethod
    async def later(at, fn):
        await asyncio.sleep(max(0, at - time.monotonic()))
        await asyncio.to_thread(fn)

    async def connect(self, p):
        p.ws = await websockets.connect(p.url, open_timeout=STEP_TIMEOUT,
                                        close_timeout=1)

    async def play(self, p, join_at, deadline):
        delay = join_at - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        seq = 0
        try:
            await p.ws.send(json.dumps({"type": "JOIN_QUEUE"}))
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    p.closed = "deadline"
                    return
                try:
                    raw = await asyncio.wait_for(p.ws.recv(), left)
                except asyncio.TimeoutError:
                    p.closed = "deadline"
                    return
                m = json.loads(raw)
                payload = m.get("payload", {})
                if m["type"] == "GAME_START":
                    p.room_id, p.role = payload["roomId"], payload["role"]
                elif m["type"] == "UPDATE" and "timeRemaining" in payload:
                    p.time_remaining.append(payload["timeRemaining"])
                    p.last_tick_at = time.monotonic()
                    for _ in range(p.clicks_per_tick):
                        seq += 1
                        await p.ws.send(json.dumps(
                            {"type": "CLICK",
                             "payload": {"count": 1, "seq": seq}}))
                elif m["type"] == "GAME_OVER":
                    p.over, p.over_at = payload, time.monotonic()
                    self.overs += 1
                    if self.on_over:
                        self.on_over(self.overs)
                    return
        except websockets.exceptions.ConnectionClosed as e:
            p.closed = f"closed: {e}"

    async def run(self, deadline_s, timed=()):
        """timed: (offset_s, fn) pairs; each fn runs in a thread at t0 +
        offset_s (t0: when the first pair joins), awaited before the end."""
        jobs = []
        try:
            await asyncio.gather(*(self.connect(p) for p in self.players))
            t0 = time.monotonic() + 0.2
            deadline = time.monotonic() + deadline_s
            for offset_s, fn in timed:
                jobs.append(asyncio.ensure_future(
                    self.later(t0 + offset_s, fn)))
            await asyncio.gather(*(
                self.play(p, t0 + self.join_offsets_s[i // 2], deadline)
                for i, p in enumerate(self.players)))
            await asyncio.gather(*jobs)
        finally:
            for j in jobs:
                j.cancel()
            await asyncio.gather(*(p.ws.close() for p in self.players if p.ws),
                                 return_exceptions=True)


def burst_offsets():
    """A burst of game ends: CLUSTER_PAIRS games at once (their commits
    queue up behind each other: the window where a result could be
    announced before it is stored), then a tail that is still running when
    the cluster's first GAME_OVER arrives."""
    tail = BURST_PAIRS - CLUSTER_PAIRS
    return [0.0] * CLUSTER_PAIRS + [0.1 + TAIL_S * j / tail for j in range(tail)]


def make_players(server, pairs, tag):
    return [Player(server, f"{tag}{i:02d}", i % 4) for i in range(2 * pairs)]


def seen_results(test, players):
    """room id -> GAME_OVER payload, from every player who saw one; both
    players of a room must have seen the same."""
    seen = {}
    for p in players:
        if p.over is None:
            continue
        test.assertIsNotNone(p.room_id, f"{p.name}: GAME_OVER without a room")
        if p.room_id in seen:
            test.assertEqual(seen[p.room_id], p.over,
                             f"{p.room_id}: both players see one result")
        seen[p.room_id] = p.over
    return seen


# Rows: (room_id, p1_id, p1_name, p1_score, p2_id, p2_name, p2_score,
#        winner, reason) as text, whatever the database.
GAMES_SQL = ("SELECT room_id, p1_id, p1_name, p1_score, p2_id, p2_name,"
             " p2_score, winner, reason FROM games ORDER BY room_id")
PLAYERS_SQL = "SELECT id, name, score, games, wins FROM players ORDER BY id"


def sqlite_rows(path, sql):
    # Read-write: after a kill -9 the WAL may need recovering, which a
    # read-only connection cannot do. The server is gone by then.
    db = sqlite3.connect(path, timeout=STEP_TIMEOUT)
    try:
        return [[str(v) for v in row] for row in db.execute(sql)]
    finally:
        db.close()


class StoreChecks(unittest.TestCase):
    """What every test checks once the dust settled."""

    def check_stored(self, players, games, totals, require_all):
        seen = seen_results(self, players)
        counts = {}
        for g in games:
            counts[g[0]] = counts.get(g[0], 0) + 1
        twice = {room: n for room, n in counts.items() if n > 1}
        self.assertEqual(twice, {}, "a game stored twice")
        by_room = {g[0]: g for g in games}
        started = {p.room_id for p in players if p.room_id}
        self.assertEqual(set(by_room) - started, set(),
                         "only games these players played are stored")
        for room, over in sorted(seen.items()):
            if room not in by_room:
                self.fail(f"{room}: players saw GAME_OVER {over}, but it is "
                          f"not stored ({len(seen)} seen, {len(by_room)} "
                          "stored)")
            g = by_room[room]
            self.assertEqual(
                (int(g[3]), int(g[6]), g[7], g[8]),
                (over["p1Score"], over["p2Score"], over["winner"],
                 over["reason"]), f"{room}: stored as players saw it")
        if require_all:
            missing = sorted(p.name + ": " + str(p.closed)
                             for p in players if p.over is None)
            self.assertEqual(missing, [], "every player saw GAME_OVER")
            self.assertEqual(set(by_room), started, "every game is stored")
        self.check_totals(games, totals)
        return seen

    def check_totals(self, games, totals):
        """players holds, for each player, the sums over their stored
        `time` games: totals change only with the insert (one transaction)."""
        want = {}
        for g in games:
            if g[8] != "time":
                continue
            for pid, name, score in ((g[1], g[2], g[3]), (g[4], g[5], g[6])):
                t = want.setdefault(pid, [pid, name, 0, 0, 0])
                t[2] += int(score)
                t[3] += 1
                t[4] += 1 if g[7] == pid else 0
        got = {t[0]: [t[0], t[1], int(t[2]), int(t[3]), int(t[4])]
               for t in totals}
        self.assertEqual(got, want, "players' totals are their stored games")

    def check_http_agrees(self, server, players, games, totals):
        status, board = http(server, "/api/leaderboard?limit=100")
        self.assertEqual(status, 200, board)
        ranked = sorted(totals, key=lambda t: (-int(t[2]), t[1], t[0]))
        self.assertEqual(
            [(e["name"], e["score"], e["games"], e["wins"]) for e in board],
            [(t[1], int(t[2]), int(t[3]), int(t[4])) for t in ranked[:100]],
            "leaderboard is the players table")
        for p in players:
            status, hist = http(server, "/api/history?limit=100", token=p.token)
            self.assertEqual(status, 200, hist)
            mine = [g for g in games if p.id in (g[1], g[4])]
            self.assertEqual(hist["totalCount"], len(mine), p.name)
            self.assertEqual(sorted(h["gameId"] for h in hist["games"]),
                             sorted(g[0] for g in mine), p.name)
            for h in hist["games"]:
                g = next(g for g in mine if g[0] == h["gameId"])
                me_p1 = g[1] == p.id
                self.assertEqual(
                    (h["score"], h["opponentScore"], h["opponent"],
                     h["opponentName"], h["reason"]),
                    (int(g[3] if me_p1 else g[6]), int(g[6] if me_p1 else g[3]),
                     g[4] if me_p1 else g[1], g[5] if me_p1 else g[2], g[8]),
                    f"{p.name}: history row {h['gameId']}")
                self.assertEqual(h["won"], g[7] == p.id, h["gameId"])

    def kill_mid_burst(self, db, read_games, read_totals, timed=()):
        """Test a's body: SIGKILL at the first GAME_OVER message of a burst;
        then a new server on the same database answers from it."""
        server = Server(db, self.tmp.name)
        self.servers.append(server)
        players = make_players(server, BURST_PAIRS, "K")
        kill_after = KILL_AFTER
        killed_at = []

        def on_over(count):
            if count == kill_after:
                server.proc.send_signal(signal.SIGKILL)
                killed_at.append(time.monotonic())

        burst = Burst(players, burst_offsets(), on_over)
        t = time.monotonic()
        asyncio.run(burst.run(GAME_LENGTH + COUNTDOWN + TAIL_S + 20, timed))
        self.assertTrue(killed_at, f"only {burst.overs} GAME_OVERs: no kill")
        server.proc.wait(timeout=STEP_TIMEOUT)
        self.assertEqual(server.proc.returncode, -signal.SIGKILL)
        seen = self.check_stored(players, read_games(), read_totals(),
                                 require_all=False)
        rooms = {p.room_id for p in players if p.room_id}
        print(f"\n  {len(rooms)} games, {len(seen)} GAME_OVERs seen "
              f"({burst.overs} messages), kill after {kill_after}, "
              f"{len(read_games())} stored, {time.monotonic() - t:.1f} s",
              file=sys.stderr)
        self.assertGreater(len(rooms) - len(seen), 0,
                           "the kill came in the middle of the burst")
        again = Server(db, self.tmp.name)
        self.servers.append(again)
        self.check_http_agrees(again, players, read_games(), read_totals())
        self.assertEqual(again.stop(), 0)

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.servers = []

    def tearDown(self):
        for s in self.servers:
            s.stop()
            err = s.err().strip()
            if err:  # ctest shows it only when the test fails
                print(f"--- server stderr (tail):\n{err[-2000:]}",
                      file=sys.stderr)
        self.tmp.cleanup()


class SqliteStore(StoreChecks):
    def test_a_kill_9_mid_burst_loses_no_announced_game(self):
        path = os.path.join(self.tmp.name, "store.db")
        self.kill_mid_burst(path, lambda: sqlite_rows(path, GAMES_SQL),
                            lambda: sqlite_rows(path, PLAYERS_SQL))


class PostgresStore(StoreChecks):
    pg = None

    @classmethod
    def setUpClass(cls):
        cls.pg = pglib.PgTmp()
        cls.pg.start()

    @classmethod
    def tearDownClass(cls):
        cls.pg.stop()

    def setUp(self):
        super().setUp()
        name = self.id().rsplit(".", 1)[1][:40].lower()
        self.uri = self.pg.create_database(name)

    def rows(self, sql):
        return self.pg.query(sql, self.uri)

    def test_a_kill_9_mid_burst_loses_no_announced_game(self):
        # The cluster's commits are held back by a lock on games for
        # HOLD_S from just before its games end (a busy database): a
        # server that announced before committing is caught every time,
        # not only when the kill outruns the commit.
        def hold_commits():
            self.rows(f"BEGIN; LOCK TABLE games IN EXCLUSIVE MODE;"
                      f" SELECT pg_sleep({HOLD_S}); COMMIT")

        self.kill_mid_burst(self.uri, lambda: self.rows(GAMES_SQL),
                            lambda: self.rows(PLAYERS_SQL),
                            timed=[(COUNTDOWN + GAME_LENGTH - 0.8,
                                    hold_commits)])

    def test_b_games_stored_once_and_http_agrees(self):
        server = Server(self.uri, self.tmp.name)
        self.servers.append(server)
        players = make_players(server, 4, "B")
        burst = Burst(players, [0.05 * i for i in range(4)])
        asyncio.run(burst.run(GAME_LENGTH + COUNTDOWN + 20))
        games, totals = self.rows(GAMES_SQL), self.rows(PLAYERS_SQL)
        self.check_stored(players, games, totals, require_all=True)
        self.assertEqual(len(games), 4)
        self.check_http_agrees(server, players, games, totals)
        # A second round: totals add up, history grows, still once each.
        more = Burst(players, [0.05 * i for i in range(4)])
        for p in players:
            p.over = p.room_id = None
        asyncio.run(more.run(GAME_LENGTH + COUNTDOWN + 20))
        games, totals = self.rows(GAMES_SQL), self.rows(PLAYERS_SQL)
        self.assertEqual(len(games), 8)
        self.check_totals(games, totals)
        self.check_http_agrees(server, players, games, totals)
        self.assertEqual(server.stop(), 0)

    def test_c_restart_mid_burst_loses_nothing(self):
        server = Server(self.uri, self.tmp.name)
        self.servers.append(server)
        players = make_players(server, BURST_PAIRS, "C")
        restart = []
        loop_box = []

        def on_over(count):
            if count == 2:  # the burst has begun
                restart.append(loop_box[0].run_in_executor(None, self.pg.restart))

        async def go():
            loop_box.append(asyncio.get_running_loop())
            burst = Burst(players, burst_offsets(), on_over)
            await burst.run(GAME_LENGTH + COUNTDOWN + TAIL_S + RECOVERY_MAX_S)
            if restart:
                await restart[0]  # raises if the restart failed
            return burst

        t = time.monotonic()
        burst = asyncio.run(go())
        self.assertTrue(restart, f"only {burst.overs} GAME_OVERs: no restart")
        games, totals = self.rows(GAMES_SQL), self.rows(PLAYERS_SQL)
        self.check_stored(players, games, totals, require_all=True)
        self.assertEqual(len(games), BURST_PAIRS)
        print(f"\n  {len(games)} games stored across a restart, "
              f"{time.monotonic() - t:.1f} s", file=sys.stderr)
        self.check_http_agrees(server, players, games, totals)
        self.assertEqual(server.stop(), 0)

    def test_d_outage_games_run_reads_503_results_commit_after(self):
        server = Server(self.uri, self.tmp.name)
        self.servers.append(server)
        players = make_players(server, 1, "D")
        status, _ = http(server, "/api/leaderboard")
        self.assertEqual(status, 200, "the database is up at first")
        self.pg.down()
        down_at = time.monotonic()
        reads = []  # (seconds into the outage, leaderboard, history status)
        up_at = []
        metrics_down = {}

        async def watch_reads():
            token = players[0].token
            while time.monotonic() - down_at < OUTAGE_S:
                lb = await asyncio.to_thread(http, server, "/api/leaderboard")
                hi = await asyncio.to_thread(http, server, "/api/history",
                                             None, token)
                reads.append((round(time.monotonic() - down_at, 1),
                              lb[0], hi[0]))
                await asyncio.sleep(min(3, max(0, OUTAGE_S - (
                    time.monotonic() - down_at))))
            metrics_down.update(await asyncio.to_thread(store_metrics, server))
            # Before the call: the server may commit (and a GAME_OVER
            # arrive) while pgtmp still checks that it is up.
            up_at.append(time.monotonic())
            await asyncio.to_thread(self.pg.up)

        async def go():
            burst = Burst(players, [0.0])
            await asyncio.gather(
                burst.run(OUTAGE_S + RECOVERY_MAX_S + 10), watch_reads())

        asyncio.run(go())
        self.assertTrue(up_at)
        self.assertTrue(reads)
        self.assertEqual([r for r in reads if r[1:] != (503, 503)], [],
                         "leaderboard and history answer 503 while down")
        for p in players:
            self.assertIn(1, p.time_remaining,
                          f"{p.name}: the game ran to its last second "
                          f"({p.time_remaining}, {p.closed})")
            self.assertLess(p.last_tick_at, up_at[0] - OUTAGE_S / 2,
                            f"{p.name}: played while the database was down")
            self.assertIsNotNone(p.over, f"{p.name}: no GAME_OVER ({p.closed})")
            self.assertGreaterEqual(
                p.over_at, up_at[0],
                f"{p.name}: GAME_OVER before the database was back")
            self.assertLess(p.over_at - up_at[0], RECOVERY_MAX_S)
        games, totals = self.rows(GAMES_SQL), self.rows(PLAYERS_SQL)
        self.check_stored(players, games, totals, require_all=True)
        self.assertEqual(len(games), 1)
        self.check_http_agrees(server, players, games, totals)
        after = store_metrics(server)
        recorded = after.get('overcookied_store_total{event="recorded"}')
        duplicates = after.get('overcookied_store_total{event="duplicate"}')
        pending = metrics_down.get("overcookied_store_pending")
        print(f"\n  reads while down: {reads}; GAME_OVER "
              f"{players[0].over_at - up_at[0]:.1f} s after up; store pending "
              f"at the outage's end {pending} for 1 game; after it: recorded "
              f"{recorded}, duplicates {duplicates}", file=sys.stderr)
        self.assertEqual(server.stop(), 0)


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    BINARY, STATIC = sys.argv[1], sys.argv[2]
    unittest.main(argv=sys.argv[:1] + sys.argv[3:], verbosity=2)
