"""pglib: a throwaway PostgreSQL server for the live tests.

A thin Python face on tools/lib/pgtmp (which knows how to initdb, pick a
port, start and stop; see its header). Queries go through Debian's psql
(the postgresql-client the postgresql package pulls in) with the server's
URI, so a test checks the database with a client the server does not use.

    pg = PgTmp()
    uri = pg.start()        # postgresql://overcookied:PW@127.0.0.1:P/overcookied
    pg.query("select 1")    # [["1"]]
    pg.restart(); pg.down(); pg.up()
    pg.stop()               # also at exit, and by pgtmp's watcher if this
                            # process is killed

Every call is bounded: pgtmp bounds each of its waits, psql connects with
PGCONNECT_TIMEOUT and every subprocess has a timeout.
"""
import atexit
import csv
import io
import os
import re
import shutil
import subprocess
import tempfile
import urllib.parse

PGTMP = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                     "..", "..", "tools", "lib", "pgtmp")
SCRIPT_TIMEOUT_S = 120  # pgtmp's own waits are 30 s each; a few in a row
QUERY_TIMEOUT_S = 30
CONNECT_TIMEOUT_S = 10


class PgError(Exception):
    pass


class PgTmp:
    def __init__(self):
        self.dir = None
        self.uri = None

    def _pgtmp(self, *args):
        p = subprocess.run(["/usr/bin/python3", PGTMP, *args],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True,
                           timeout=SCRIPT_TIMEOUT_S)
        if p.returncode != 0:
            raise PgError(f"pgtmp {' '.join(args)} exited {p.returncode}:\n"
                          + p.stderr)
        return p.stdout.strip()

    def start(self):
        assert self.dir is None, "started twice"
        # mkdtemp's directory (0700) is the server's own: pgtmp chowns it.
        self.dir = tempfile.mkdtemp(prefix="oc-pg-")
        atexit.register(self.stop)
        try:
            self.uri = self._pgtmp("start", self.dir, "--watch",
                                   str(os.getpid()))
        except BaseException:
            self.stop()
            raise
        return self.uri

    def restart(self):
        self._pgtmp("restart", self.dir)

    def down(self):
        self._pgtmp("down", self.dir)

    def up(self):
        self._pgtmp("up", self.dir)

    def stop(self):
        """Stop and remove everything; safe twice."""
        if self.dir is None:
            return
        try:
            if os.path.isdir(self.dir):
                self._pgtmp("stop", self.dir)
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def log_tail(self, lines=30):
        try:
            with open(os.path.join(self.dir, "log"), errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except (OSError, TypeError):
            return "(no log)"

    def uri_for(self, dbname):
        """The URI of another database on this server."""
        parts = urllib.parse.urlsplit(self.uri)
        return urllib.parse.urlunsplit(parts._replace(path="/" + dbname))

    def create_database(self, dbname):
        """A fresh database owned by overcookied; returns its URI."""
        if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", dbname):
            raise ValueError(dbname)
        self.query(f"CREATE DATABASE {dbname}")
        return self.uri_for(dbname)

    def query(self, sql, uri=None):
        """Rows of one statement, each a list of text (NULL is "")."""
        env = dict(os.environ, PGCONNECT_TIMEOUT=str(CONNECT_TIMEOUT_S))
        for k in ("PGHOST", "PGPORT", "PGUSER", "PGDATABASE", "PGPASSWORD",
                  "PGSERVICE", "PGOPTIONS"):
            env.pop(k, None)
        p = subprocess.run(
            ["psql", "-X", "-q", "--csv", "-t", "-v", "ON_ERROR_STOP=1",
             "-d", uri or self.uri, "-c", sql],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, env=env,
            timeout=QUERY_TIMEOUT_S)
        if p.returncode != 0:
            raise PgError(f"psql: {sql}: {p.stderr.strip()}")
        return [row for row in csv.reader(io.StringIO(p.stdout))]

    def scalar(self, sql, uri=None):
        rows = self.query(sql, uri)
        return rows[0][0] if rows and rows[0] else None
