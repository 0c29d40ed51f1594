#!/usr/bin/env python3
"""A live server recorded against PostgreSQL replays without a database.

The Store's calls into PostgreSQL (its requests, the answers libpq gives
when its socket is ready, the readiness itself) cross the world seam, so
the trace holds them all. This test records a server storing into a
throwaway PostgreSQL while overcookied-load plays short games and the
leaderboard and /metrics are read, stops PostgreSQL, and replays the trace:
every checkpoint must match, the leaderboard's answer included.

usage: test_live_pg_replay.py OVERCOOKIED OVERCOOKIED_REPLAY OVERCOOKIED_LOAD
       STATIC_DIR
"""
import os
import subprocess
import sys
import tempfile
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pglib  # noqa: E402

STEP_TIMEOUT = 60


def main():
    server_bin, replay_bin, load_bin, static = sys.argv[1:5]
    pg = pglib.PgTmp()
    uri = pg.start()
    with tempfile.TemporaryDirectory() as trace:
        proc = subprocess.Popen(
            [server_bin, "--port", "0", "--static", static, "--db", uri,
             "--secret", "live-test-secret-0123456789", "--log-level",
             "warn", "--countdown", "0.2", "--game-length", "2",
             "--record", trace],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            line = proc.stdout.readline()
            assert "listening on" in line, line + proc.stderr.read()
            base = line.split("listening on ")[1].strip().rstrip("/")
            load = subprocess.run(
                [load_bin, "--url", base, "--players", "8", "--duration",
                 "4", "--ramp", "0.5", "--mode", "play"],
                capture_output=True, text=True, timeout=STEP_TIMEOUT)
            assert load.returncode == 0, load.stdout + load.stderr
            with urllib.request.urlopen(base + "/api/leaderboard?limit=5",
                                        timeout=10) as r:
                assert r.status == 200
            with urllib.request.urlopen(base + "/metrics", timeout=10) as r:
                metrics = r.read().decode()
            assert 'overcookied_store_backend{backend="postgres"} 1' in metrics
        finally:
            proc.terminate()
            proc.wait(timeout=STEP_TIMEOUT)
        games = int(pg.query("select count(*) from games")[0][0])
        assert games >= 4, f"games were stored: {games}"
        pg.stop()  # the replay needs no database
        rep = subprocess.run([replay_bin, trace], capture_output=True,
                             text=True, timeout=STEP_TIMEOUT)
        assert rep.returncode == 0, rep.stdout + rep.stderr
        assert "replay: ok" in rep.stdout + rep.stderr, rep.stdout
        print(f"ok: {games} games stored in PostgreSQL; the trace replays "
              "without it")


if __name__ == "__main__":
    main()
