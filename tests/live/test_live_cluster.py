#!/usr/bin/env python3
"""Live cluster test: instances sharing matchmaking through a real Redis.

Real processes on loopback: a private redis-server (tests/live/clusterlib.py),
two or three overcookied instances sharing one SQLite file, players played
by Debian's python3-websockets that follow MOVE as the browser does. What
the issue asks of a cluster, broken on purpose:

  a. Players spread over three instances: cross-instance matches happen
     and finish, every game is stored once with the scores both players
     saw, no player is ever in two rooms.
  b. kill -9 of an instance in the middle of games: the other instance's
     game is untouched; the survivor reaps the dead one: its queued ticket
     is gone within the lease plus a second, its game is stored
     server_lost (once, no leaderboard change) before anyone comes back;
     its players, back on a live instance, get GAME_OVER server_lost;
     nobody is matched with it.
  c. SIGSTOP of an owner for longer than its lease, then SIGCONT: its
     players hear server_lost elsewhere; the owner finds itself fenced,
     closes its players (1012) and stores nothing, so the game is stored
     once (server_lost); it rejoins and plays again.
  d. Redis killed (its data lost) and restarted, during matchmaking and
     during games: nothing crashes, running games finish and are stored,
     JOIN_QUEUE meanwhile answers matchmaking_unavailable, matchmaking
     comes back by itself, no double match.
  f. A player sent to the owner whose game ended before it arrived (its
     opponent quit at once) hears the result there.
  e. One instance of the cluster records its trace while it owns a game
     and sends a player to another's: the trace replays `ok` alone, with
     no Redis and no other instance running.
Apart: a Redis with a password (in the URL or OC_REDIS_PASSWORD, never
logged), and a Redis reached over IPv6 (redis://[::1]:PORT).

usage: test_live_cluster.py OVERCOOKIED_BINARY STATIC_DIR REPLAY_BINARY
"""
import asyncio
import os
import sqlite3
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clusterlib  # noqa: E402
from clusterlib import Instance, Player, Redis  # noqa: E402
from livelib import http  # noqa: E402

BINARY = STATIC = REPLAY = None
LEASE_S = 1.5
RULES = ("--countdown", "0.5", "--game-length", "3", "--reconnect-grace",
         "10", "--lease", str(LEASE_S), "--log-level", "info")


def run(coro, timeout=90):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def games(db):
    """Every stored game: room id -> (p1, p2, p1 score, p2 score, winner,
    reason), read with a client the server does not use."""
    with sqlite3.connect(db, timeout=10) as c:
        rows = c.execute("SELECT room_id, p1_id, p2_id, p1_score, p2_score,"
                         " winner, reason FROM games").fetchall()
    out = {}
    for r in rows:
        assert r[0] not in out, "stored twice: " + r[0]
        out[r[0]] = r[1:]
    return out


class ClusterTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="oc-cluster-")
        self.db = os.path.join(self.tmp.name, "games.db")
        self.redis = Redis()
        self.instances = []

    def tearDown(self):
        for i in self.instances:
            i.resume()
            i.kill()
            i._tmp.cleanup()
        self.redis.stop()
        self.tmp.cleanup()

    def start(self, name, *extra):
        inst = Instance(BINARY, STATIC, self.db, self.redis, name, *RULES,
                        *extra)
        self.instances.append(inst)
        return inst

    def wait_up(self, inst, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if inst.metrics().get("overcookied_cluster_up") == 1:
                return
            time.sleep(0.05)
        self.fail(inst.name + " never joined the cluster: " + inst.err())

    def player(self, name, home):
        return Player(name, home)

    def check_games(self, players, stored):
        """Each player in exactly one room, its opponent there too, both
        told the same end, and that end stored once."""
        rooms = {}
        for p in players:
            ids = {s["roomId"] for _, s in p.starts}
            self.assertEqual(len(ids), 1, (p.name, p.starts))
            rooms.setdefault(ids.pop(), []).append(p)
        for room, ps in rooms.items():
            self.assertEqual(len(ps), 2, (room, [p.name for p in ps]))
            a, b = ps
            self.assertEqual(a.over, b.over, room)
            self.assertIn(room, stored)
            row = stored[room]
            self.assertEqual({row[0], row[1]}, {a.uid, b.uid})
            if row[5] == "time":
                self.assertEqual((row[2], row[3]),
                                 (a.over["p1Score"], a.over["p2Score"]))
        return rooms

    # ---- a -------------------------------------------------------------

    def test_a_games_across_instances(self):
        insts = [self.start(n) for n in ("a", "b", "c")]
        for i in insts:
            self.wait_up(i)
        players = [self.player("P%d" % k, insts[k % 3]) for k in range(12)]

        async def go():
            # Joined one by one, so pairs form across instances.
            first = []
            for p in players:
                first.append(await p.join())
            await asyncio.gather(*(p.play(first=f)
                                   for p, f in zip(players, first)))
        run(go())
        stored = games(self.db)
        rooms = self.check_games(players, stored)
        self.assertEqual(len(rooms), 6)
        self.assertEqual(len(stored), 6)
        for p in players:
            self.assertEqual(p.over["reason"], "time")
        moved = [p for p in players if p.moves]
        self.assertGreater(len(moved), 0, "no cross-instance match")
        m = [i.metrics() for i in insts]
        cross = sum(x['overcookied_matches_total{where="cross"}'] for x in m)
        local = sum(x['overcookied_matches_total{where="local"}'] for x in m)
        self.assertEqual(cross + local, 6)
        self.assertEqual(cross, len(moved))
        # A moved player played on the instance its MOVE named.
        for p in moved:
            self.assertEqual(p.starts[0][0], p.moves[-1]["url"])

    # ---- b -------------------------------------------------------------

    def test_b_kill9_owner(self):
        a, b = self.start("a"), self.start("b", "--game-length", "20")
        self.wait_up(a)
        self.wait_up(b)
        # x (on a) joins first, y (on b) second: b owns x-y, x moves.
        x, y = self.player("X", a), self.player("Y", b)
        # u, v both on a: a's own game, which must not notice.
        u, v = self.player("U", a), self.player("V", a)
        q = self.player("Q", b)  # queued on b when it dies

        async def go():
            fx = await x.join()
            self.assertEqual(fx["type"], "QUEUED")
            tasks = [asyncio.ensure_future(x.play(first=fx)),
                     asyncio.ensure_future(y.play())]
            while not (x.starts and y.starts):
                await asyncio.sleep(0.05)
            self.assertEqual(x.starts[0][0], b.ws_url)
            fu = await u.join()
            tasks.append(asyncio.ensure_future(u.play(first=fu)))
            tasks.append(asyncio.ensure_future(v.play()))
            while not (u.starts and v.starts):
                await asyncio.sleep(0.05)
            fq = await q.join()
            self.assertEqual(fq["type"], "QUEUED")
            b.kill()
            killed = time.monotonic()
            # a's own game plays on to its end.
            await asyncio.wait_for(asyncio.gather(tasks[2], tasks[3]), 20)
            for t in tasks[:2]:
                t.cancel()
            # The dead instance's ticket goes within the lease and a second.
            while self.redis.cli("ZSCORE", "oc:queue", q.uid) != "":
                self.assertLess(time.monotonic() - killed, LEASE_S + 1.0)
                await asyncio.sleep(0.05)
            # a reaped b: the game is stored server_lost before anyone
            # comes back (both might never).
            while not any(r[5] == "server_lost" for r in games(self.db).values()):
                self.assertLess(time.monotonic() - killed, LEASE_S + 3.0)
                await asyncio.sleep(0.1)
            # Back on a: the game is over for both, server_lost.
            ox = await x.come_back(a)
            oy = await y.come_back(a)
            # Nobody is matched with the departed Q: two new players on a
            # get each other.
            s, t = self.player("S", a), self.player("T", a)
            fs = await s.join()
            self.assertEqual(fs["type"], "QUEUED")
            await asyncio.gather(s.play(first=fs), t.play())
            return ox, oy, s, t
        ox, oy, s, t = run(go())
        for o in (ox, oy):
            self.assertEqual((o["winner"], o["reason"]), ("none", "server_lost"))
        self.assertEqual(u.over["reason"], "time")
        stored = games(self.db)
        lost = [r for r in stored.values() if r[5] == "server_lost"]
        self.assertEqual(len(lost), 1, stored)
        self.assertEqual({lost[0][0], lost[0][1]}, {x.uid, y.uid})
        self.assertEqual(lost[0][4], "none")
        self.assertEqual(s.starts[0][1]["roomId"], t.starts[0][1]["roomId"])
        # server_lost changes no leaderboard total.
        status, body = http(a, "/api/leaderboard")
        self.assertEqual(status, 200)
        ids = {e.get("userId") or e.get("id") for e in
               (body if isinstance(body, list) else body.get("entries", []))}
        self.assertNotIn(x.uid, ids)
        self.assertNotIn(y.uid, ids)
        self.assertGreaterEqual(
            a.metrics()["overcookied_tickets_purged_total"], 1)

    # ---- c -------------------------------------------------------------

    def test_c_stalled_owner_is_fenced(self):
        a, b = self.start("a"), self.start("b", "--game-length", "6")
        self.wait_up(a)
        self.wait_up(b)
        x, y = self.player("X", a), self.player("Y", b)

        async def go():
            fx = await x.join()
            tx = asyncio.ensure_future(x.play(first=fx))
            ty = asyncio.ensure_future(y.play())
            while not (x.starts and y.starts):
                await asyncio.sleep(0.05)
            b.pause()
            tx.cancel()
            ty.cancel()
            await x.close()
            await y.close()
            ox = await x.come_back(a)
            oy = await y.come_back(a)
            # Stalled past its game's end, then woken: it must not store
            # its own result for the game declared lost.
            await asyncio.sleep(max(0.0, 7.5 - LEASE_S))
            b.resume()
            deadline = time.monotonic() + 10
            while b.metrics()['overcookied_leases_total{event="fenced"}'] < 1:
                self.assertLess(time.monotonic(), deadline, "never fenced")
                await asyncio.sleep(0.1)
            self.wait_up(b)
            # It plays again, under a new incarnation.
            m, n = self.player("M", b), self.player("N", b)
            fm = await m.join()
            await asyncio.gather(m.play(first=fm), n.play())
            return ox, oy, m, n
        ox, oy, m, n = run(go())
        for o in (ox, oy):
            self.assertEqual(o["reason"], "server_lost")
        time.sleep(0.5)
        stored = games(self.db)
        mine = [r for r in stored.values() if {r[0], r[1]} == {x.uid, y.uid}]
        self.assertEqual(len(mine), 1, stored)
        self.assertEqual(mine[0][5], "server_lost")
        self.assertEqual(m.over["reason"], "time")
        mb = b.metrics()
        self.assertEqual(mb["overcookied_rooms"], 0)
        # The fenced owner stored nothing of the lost game, not even as a
        # duplicate: only its new game.
        self.assertEqual(mb['overcookied_store_total{event="recorded"}'], 1)
        self.assertEqual(mb['overcookied_store_total{event="duplicate"}'], 0)

    # ---- d -------------------------------------------------------------

    def test_d_redis_restart_without_its_data(self):
        a, b = self.start("a", "--game-length", "5"), \
            self.start("b", "--game-length", "5")
        self.wait_up(a)
        self.wait_up(b)
        players = [self.player("P%d" % k, (a, b)[k % 2]) for k in range(6)]
        late = self.player("L", a)

        async def go():
            first = [await p.join() for p in players]
            tasks = [asyncio.ensure_future(p.play(first=f))
                     for p, f in zip(players, first)]
            while not all(p.starts for p in players):
                await asyncio.sleep(0.05)
            # A ticket waiting, then Redis gone with all its data.
            fl = await late.join()
            self.assertEqual(fl["type"], "QUEUED")
            self.redis.kill()
            err = await late.recv_type(["ERROR"], 5)
            self.assertEqual(err["payload"]["code"], "matchmaking_unavailable")
            await asyncio.sleep(0.3)
            await late.send("JOIN_QUEUE")
            err = await late.recv_type(["ERROR"], 5)
            self.assertEqual(err["payload"]["code"], "matchmaking_unavailable")
            await asyncio.sleep(2.0)
            self.redis.start()
            # Redis came back without its data: the games in progress were
            # known to their owners alone, which cannot prove their ends
            # their own, so each ends server_lost, stored by its room and
            # told to its players, who stay connected (game_cluster.h,
            # guarantee (4); until session 10 they played on, and a player
            # could meanwhile be matched again elsewhere).
            await asyncio.wait_for(asyncio.gather(*tasks), 30)
            # Matchmaking comes back by itself.
            for i in (a, b):
                self.wait_up(i, 15)
            r, s = self.player("R", b), self.player("S", a)
            fr = await r.join()
            await asyncio.gather(r.play(first=fr), s.play())
            return r, s
        r, s = run(go())
        stored = games(self.db)
        self.check_games(players + [r, s], stored)
        self.assertEqual(len(stored), 4)
        for p in players:
            self.assertEqual(p.over["reason"], "server_lost")
            self.assertEqual(p.over["winner"], "none")
            self.assertEqual(stored[p.over["roomId"]][5], "server_lost")
        for p in (r, s):
            self.assertEqual(p.over["reason"], "time")
        lost = 0
        for i in (a, b):
            self.assertIsNone(i.proc.poll(), i.name + " died: " + i.err())
            m = i.metrics()
            self.assertGreaterEqual(
                m['overcookied_redis_connects_total{kind="reconnect"}'], 1)
            self.assertEqual(m['overcookied_leases_total{event="data_lost"}'],
                             1, i.name)
            lost += m['overcookied_server_lost_total{event="owner_ended"}']
        self.assertEqual(lost, 3, "each game in progress ended by its owner")

    # ---- f -------------------------------------------------------------

    def test_f_moved_player_whose_game_ended_hears_it(self):
        a, b = self.start("a"), self.start("b")
        self.wait_up(a)
        self.wait_up(b)
        x, y = self.player("X", a), self.player("Y", b)

        async def go():
            fx = await x.join()
            self.assertEqual(fx["type"], "QUEUED")
            # y's instance owns the game; y quits at once, before x, sent
            # there with MOVE, arrives.
            await y.join()
            await y.recv_type(["GAME_START"])
            await y.send("QUIT_GAME")
            oy = await y.recv_type(["GAME_OVER"])
            mv = await x.recv_type(["MOVE"])
            await x.follow(mv)
            ox = await x.recv_type(["GAME_OVER", "GAME_START"])
            return ox, oy
        ox, oy = run(go())
        self.assertEqual(ox["type"], "GAME_OVER")
        self.assertEqual(ox["payload"], oy["payload"])
        self.assertEqual(ox["payload"]["reason"], "quit")
        self.assertEqual(ox["payload"]["winner"], x.uid)

    # ---- e -------------------------------------------------------------

    def test_e_one_instance_trace_replays_alone(self):
        trace = os.path.join(self.tmp.name, "trace")
        a = self.start("a", "--record", trace)
        b = self.start("b")
        self.wait_up(a)
        self.wait_up(b)
        # x (b) then y (a): a owns it, x moves to a. Then u (a) then v
        # (b): b owns it, a sends u away with MOVE.
        x, y = self.player("X", b), self.player("Y", a)
        u, v = self.player("U", a), self.player("V", b)

        async def go():
            fx = await x.join()
            await asyncio.gather(x.play(first=fx), y.play())
            fu = await u.join()
            await asyncio.gather(u.play(first=fu), v.play())
        run(go())
        self.assertEqual(x.starts[0][0], a.ws_url)
        self.assertEqual(u.starts[0][0], b.ws_url)
        self.assertEqual(a.stop(), 0, a.err())
        b.kill()
        self.redis.kill()  # the replay needs neither
        rep = subprocess.run([REPLAY, trace], capture_output=True, text=True,
                             timeout=60)
        out = rep.stdout + rep.stderr
        self.assertEqual(rep.returncode, 0, out)
        self.assertIn("replay: ok: the whole recording", out)


class PasswordTest(unittest.TestCase):
    """A Redis with a password: the instance joins with it in the URL or
    in OC_REDIS_PASSWORD (off the command line), a wrong one is refused
    (and retried), and none appears in any log."""

    def test_password_is_used_and_never_logged(self):
        tmp = tempfile.TemporaryDirectory(prefix="oc-cluster-")
        redis = Redis(password="s3cret-pw-0123")
        db = os.path.join(tmp.name, "games.db")
        port = redis.port
        good = Instance(BINARY, STATIC, db, redis, "good", *RULES,
                        url="redis://:s3cret-pw-0123@127.0.0.1:%d" % port)
        bad = Instance(BINARY, STATIC, db, redis, "bad", *RULES,
                       url="redis://:wrong-pw-4567@127.0.0.1:%d" % port)
        os.environ["OC_REDIS_PASSWORD"] = "s3cret-pw-0123"
        try:
            env = Instance(BINARY, STATIC, db, redis, "env", *RULES,
                           url="redis://127.0.0.1:%d" % port)
        finally:
            del os.environ["OC_REDIS_PASSWORD"]
        try:
            for inst in (good, env):
                deadline = time.monotonic() + 10
                while inst.metrics().get("overcookied_cluster_up") != 1:
                    self.assertLess(time.monotonic(), deadline, inst.err())
                    time.sleep(0.05)
            self.assertEqual(env.metrics()["overcookied_redis_errors_total"],
                             0)
            deadline = time.monotonic() + 10
            while bad.metrics()["overcookied_redis_errors_total"] < 2:
                self.assertLess(time.monotonic(), deadline, bad.err())
                time.sleep(0.05)
            self.assertEqual(bad.metrics()["overcookied_cluster_up"], 0)
            for inst in (good, bad, env):
                with open(inst.out_path) as f:
                    log = inst.err() + f.read()
                self.assertNotIn("s3cret-pw", log)
                self.assertNotIn("wrong-pw", log)
        finally:
            for inst in (good, bad, env):
                inst.kill()
                inst._tmp.cleanup()
            redis.stop()
            tmp.cleanup()


def ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


class Ipv6Test(unittest.TestCase):
    """A Redis reached over IPv6: the instance joins with
    redis://[::1]:PORT (and its trace header keeps the brackets)."""

    @unittest.skipUnless(ipv6_loopback(), "no IPv6 loopback on this machine")
    def test_an_ipv6_redis_is_joined(self):
        tmp = tempfile.TemporaryDirectory(prefix="oc-cluster-")
        redis = Redis(bind="::1")
        db = os.path.join(tmp.name, "games.db")
        inst = Instance(BINARY, STATIC, db, redis, "v6", *RULES)
        try:
            self.assertTrue(redis.url.startswith("redis://[::1]:"), redis.url)
            deadline = time.monotonic() + 10
            while inst.metrics().get("overcookied_cluster_up") != 1:
                self.assertLess(time.monotonic(), deadline, inst.err())
                time.sleep(0.05)
            self.assertNotEqual(redis.cli("KEYS", "oc:lease:*"), "")
        finally:
            inst.kill()
            inst._tmp.cleanup()
            redis.stop()
            tmp.cleanup()


if __name__ == "__main__":
    BINARY, STATIC, REPLAY = sys.argv[1], sys.argv[2], sys.argv[3]
    unittest.main(argv=sys.argv[:1], verbosity=2)
