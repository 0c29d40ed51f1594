#!/usr/bin/env python3
"""The supervisor behind tools/cluster (see there): a private Redis and N
overcookied instances on this machine, one cluster. Standard library only.

    cluster.py --server BUILD/bin/overcookied N [--db PATH|URI]
               [--base-port P] [--dir DIR] [-- server flags...]

What it guarantees:
  (1) Nothing starts unless every instance's port (P .. P+N-1 on
      127.0.0.1) is free when checked; then Redis first (a port picked
      free, retried when taken), then the instances, all together.
  (2) Every child runs in a session of its own, so a terminal's Ctrl-C
      reaches only this process, which then stops them in order: the
      instances first (SIGTERM: they drain, up to 2 s), then Redis, each
      wait bounded (then SIGKILL), and the temporary directory goes last.
      Each child also gets SIGKILL when this process dies without that
      (PR_SET_PDEATHSIG), so a `kill -9` of the supervisor leaves no
      server behind (only the temporary directory).
  (3) An instance or Redis that exits on its own is reported at once, with
      its status and its log's last lines; the rest run on (that is the
      point: the others end its games server_lost, or play on without
      Redis). Once no instance is left, Redis is stopped too and this
      exits 1.
  (4) What it prints on stdout, one fact a line, is stable for scripts
      (tests/live/test_live_cluster_tool.py reads it):
          redis redis://127.0.0.1:PORT pid PID
          tmpdir DIR
          instance ID http://127.0.0.1:PORT/ pid PID log PATH
          ready N
      and, when something exits:  exited ID status S
      and for each child stopped at the end: stopped ID status S
      (S is "exit N", or "killed by SIGNAME")
      Everything else goes to stderr.

Where things live: Redis runs in a fresh temporary directory (no
persistence: --save '' --appendonly no), removed at the end. The cluster
directory (--dir, default BUILD/../cluster beside the build, i.e.
build/cluster) keeps the shared SQLite file (overcookied.db, unless --db
names another file or a PostgreSQL URI) and each instance's log (ID.log,
redis.log), so results and logs outlive a run, as tools/run's do.

The instances share one token secret: $OC_JWT_SECRET, else one generated
here (tokens then end with the cluster). It goes to them in their
environment, never on a command line (ps shows those).

Every wait is bounded (START_TIMEOUT_S, STOP_TIMEOUT_S).
"""
import argparse
import ctypes
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

START_TIMEOUT_S = 20  # Redis answering PING; an instance listening
UP_TIMEOUT_S = 10     # every instance's Cluster reaching Redis
STOP_TIMEOUT_S = 10   # a child exiting after SIGTERM (the server's drain: 2 s)
POLL_S = 0.2
REDIS_PORT_TRIES_MAX = 5
# The server takes at most NET_ORIGINS_MAX (net/net_server.h) WebSocket
# origins, and every instance must accept every instance's page: a page from
# instance A opens a WebSocket to instance B after a MOVE.
ORIGINS_MAX = 8
LOG_TAIL_LINES = 12
# Flags this tool sets per instance; one value for all would be wrong.
OWN_SERVER_FLAGS = ("--port", "--redis", "--instance-id", "--public-url",
                    "--db")


def say(msg):
    print("cluster: " + msg, file=sys.stderr, flush=True)


def fact(msg):
    print(msg, flush=True)


def die_with_parent():
    """In the child before exec: SIGKILL when this process dies (Linux
    prctl PR_SET_PDEATHSIG; the Popen runs on the main thread, which lives
    as long as the process)."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)


def port_free(port):
    """Whether a server could bind 127.0.0.1:port now (SO_REUSEADDR, as
    the server's listener does, so a TIME_WAIT left by a previous run does
    not count as taken)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def log_tail(path, lines=LOG_TAIL_LINES):
    """The log's last lines, and its first two when they are not among
    them (a server refusing its flags says why first, then its usage)."""
    try:
        with open(path, errors="replace") as f:
            text = f.readlines()
    except OSError:
        return "(no log)\n"
    if len(text) <= lines + 2:
        return "".join(text)
    return "".join(text[:2] + ["  ...\n"] + text[-lines:])


def describe_status(code):
    if code is None:
        return "running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit {code}"


class Child:
    """A process of the cluster: its name, Popen and log file."""

    def __init__(self, name, argv, log_path, env=None, cwd=None):
        self.name = name
        self.log_path = log_path
        self.reported = False
        with open(log_path, "w") as log:
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, env=env, cwd=cwd,
                start_new_session=True, preexec_fn=die_with_parent)

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        """SIGTERM, then SIGKILL after STOP_TIMEOUT_S; bounded."""
        if not self.alive():
            return
        self.proc.send_signal(signal.SIGTERM)

    def wait_stopped(self, deadline):
        try:
            self.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            say(f"{self.name} (pid {self.pid}) still running after "
                f"{STOP_TIMEOUT_S} s: SIGKILL")
            self.proc.kill()
            self.proc.wait(timeout=STOP_TIMEOUT_S)


# ---- Redis ------------------------------------------------------------------

def redis_ping(port, timeout=1.0):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def start_redis(tmpdir, logdir, prefix=()):
    """A private redis-server on a free loopback port: (Child, port).
    prefix goes before its command line (tools/bench-cluster pins it with
    taskset)."""
    exe = shutil.which("redis-server")
    if exe is None:
        raise SystemExit("cluster: no redis-server: install the Debian "
                         "package redis-server (tools/lib/common.sh lists "
                         "it)")
    for _ in range(REDIS_PORT_TRIES_MAX):
        port = free_port()
        argv = [*prefix, exe, "--port", str(port), "--bind", "127.0.0.1",
                "--protected-mode", "yes", "--save", "", "--appendonly", "no",
                "--dir", tmpdir, "--daemonize", "no", "--logfile", ""]
        child = Child("redis", argv, os.path.join(logdir, "redis.log"))
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline and child.alive():
            if redis_ping(port):
                return child, port
            time.sleep(0.05)
        if child.alive():
            child.proc.kill()
            child.proc.wait(timeout=STOP_TIMEOUT_S)
            raise SystemExit("cluster: redis-server did not answer within "
                             f"{START_TIMEOUT_S} s:\n" +
                             log_tail(child.log_path))
        if "Address already in use" not in log_tail(child.log_path):
            raise SystemExit("cluster: redis-server exited "
                             f"({describe_status(child.proc.returncode)}):\n"
                             + log_tail(child.log_path))
        say(f"port {port} was taken before Redis bound it, picking another")
    raise SystemExit(f"cluster: no free port for Redis after "
                     f"{REDIS_PORT_TRIES_MAX} tries")


# ---- Instances ----------------------------------------------------------------

def listening(child):
    """The port an instance says it listens on, once it has said so."""
    try:
        with open(child.log_path, errors="replace") as f:
            for line in f:
                if "listening on http://" in line and line.endswith("\n"):
                    return True
    except OSError:
        pass
    return False


def health(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health",
                                    timeout=2) as r:
            return r.status == 200
    except (OSError, urllib.error.URLError):
        return False


def cluster_up(port):
    """True/False from /metrics' overcookied_cluster_up; None when
    /metrics cannot say (it wants a token we were not given)."""
    req = urllib.request.Request(f"http://127.0.0.1:{port}/metrics")
    token = os.environ.get("OC_METRICS_TOKEN")
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=2) as r:
            text = r.read().decode(errors="replace")
    except urllib.error.HTTPError:
        return None
    except (OSError, urllib.error.URLError):
        return False
    return "\novercookied_cluster_up 1\n" in text


def check_extra(extra, n):
    for flag in OWN_SERVER_FLAGS:
        if flag in extra:
            raise SystemExit(f"cluster: {flag} is set by tools/cluster for "
                             "each instance (see tools/cluster --help)")
    origins = extra.count("--allowed-origin")
    if n + origins > ORIGINS_MAX:
        raise SystemExit(
            f"cluster: {n} instances and {origins} more --allowed-origin: "
            f"the server accepts at most {ORIGINS_MAX} origins, and each "
            "instance must accept every instance's page (after a MOVE a "
            "page from one instance connects to another)")


def instance_argv(server, i, port, ports, redis_port, db, extra):
    argv = [server, "--port", str(port), "--instance-id", f"i{i + 1}",
            "--redis", f"redis://127.0.0.1:{redis_port}", "--db", db]
    for p in ports:
        argv += ["--allowed-origin", f"http://127.0.0.1:{p}"]
    return argv + list(extra)


def start_instances(args, redis_port, db, env, out):
    """Start every instance, appending (Child, port) to out (the caller's,
    so that it stops whatever started even when this fails), and wait until
    each answers /health."""
    ports = [args.base_port + i for i in range(args.n)]
    for i, port in enumerate(ports):
        name = f"i{i + 1}"
        out.append((Child(name, instance_argv(args.server, i, port, ports,
                                              redis_port, db, args.extra),
                          os.path.join(args.dir, name + ".log"), env=env,
                          cwd=args.root), port))
    deadline = time.monotonic() + START_TIMEOUT_S
    waiting = list(out)
    while waiting and time.monotonic() < deadline:
        for item in list(waiting):
            child, port = item
            if not child.alive():
                raise StartFailed(f"{child.name} exited at start "
                                  f"({describe_status(child.proc.returncode)})"
                                  ":\n" + log_tail(child.log_path))
            if listening(child) and health(port):
                waiting.remove(item)
        time.sleep(0.05)
    if waiting:
        names = ", ".join(c.name for c, _ in waiting)
        raise StartFailed(f"{names} not answering /health within "
                          f"{START_TIMEOUT_S} s")


class StartFailed(Exception):
    pass


def wait_cluster_up(instances):
    deadline = time.monotonic() + UP_TIMEOUT_S
    pending = {c.name: port for c, port in instances}
    while pending and time.monotonic() < deadline:
        for name, port in list(pending.items()):
            up = cluster_up(port)
            if up is None:
                say("/metrics wants a token (set OC_METRICS_TOKEN): not "
                    "checking that the instances reached Redis")
                return
            if up:
                del pending[name]
        time.sleep(0.1)
    if pending:
        say(f"{', '.join(pending)} not connected to Redis after "
            f"{UP_TIMEOUT_S} s (overcookied_cluster_up 0): see their logs")


# ---- The run -----------------------------------------------------------------

class Stop(Exception):
    pass


def on_signal(signum, frame):
    raise Stop(signum)


def parse(argv):
    extra = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1:]
    ap = argparse.ArgumentParser(
        prog="tools/cluster",
        usage="tools/cluster N [--db PATH|URI] [--base-port P] [--dir DIR] "
              "[-- server flags]",
        description="A private Redis and N overcookied instances sharing "
                    "matchmaking through it (README, Cluster).")
    ap.add_argument("n", type=int, metavar="N",
                    help=f"instances, 1 to {ORIGINS_MAX}")
    ap.add_argument("--db", help="the shared store: a SQLite file (default "
                    "DIR/overcookied.db) or a postgres:// URI")
    ap.add_argument("--base-port", type=int, default=8080,
                    help="instance i listens on P+i-1 (default 8080)")
    ap.add_argument("--dir", help="the cluster directory: the SQLite file "
                    "and the logs (default build/cluster)")
    ap.add_argument("--server", help=argparse.SUPPRESS)
    ap.add_argument("--root", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    args.extra = extra
    if not 1 <= args.n <= ORIGINS_MAX:
        ap.error(f"N must be 1 to {ORIGINS_MAX} (the server accepts at most "
                 f"{ORIGINS_MAX} WebSocket origins, one per instance)")
    if not 1 <= args.base_port <= 65536 - args.n:
        ap.error("--base-port: the instances' ports must be 1 to 65535")
    if args.server is None:
        ap.error("--server is given by tools/cluster")
    return args


def resolve_db(args):
    if args.db and (args.db.startswith("postgres://") or
                    args.db.startswith("postgresql://")):
        return args.db
    if args.db:
        return os.path.abspath(args.db)
    return os.path.join(args.dir, "overcookied.db")


def report_exits(children):
    """Say which children exited since the last call."""
    for child in children:
        if child.reported or child.alive():
            continue
        child.reported = True
        status = describe_status(child.proc.returncode)
        fact(f"exited {child.name} status {status}")
        if child.name == "redis":
            say(f"Redis (pid {child.pid}) exited ({status}): instances "
                "answer JOIN_QUEUE with matchmaking_unavailable, games in "
                "progress play on. Its log's last lines:\n" +
                log_tail(child.log_path))
        else:
            say(f"instance {child.name} (pid {child.pid}) exited "
                f"({status}): its games end server_lost once its lease "
                "lapses (--lease, 3 s) and its players reconnect elsewhere. "
                "Its log's last lines:\n" + log_tail(child.log_path))


def stop_all(redis, instances, tmpdir):
    """Instances first (their drain), then Redis; each one's exit status
    as a fact ("exit 0" when it stopped as asked), but for those already
    reported as exited."""
    deadline = time.monotonic() + STOP_TIMEOUT_S
    for child, _ in instances:
        child.stop()
    for child, _ in instances:
        child.wait_stopped(deadline)
    if redis is not None:
        redis.stop()
        redis.wait_stopped(time.monotonic() + STOP_TIMEOUT_S)
    for child in [c for c, _ in instances] + ([redis] if redis else []):
        if not child.reported:
            fact(f"stopped {child.name} status "
                 f"{describe_status(child.proc.returncode)}")
    shutil.rmtree(tmpdir, ignore_errors=True)


def run(args):
    args.root = os.path.abspath(args.root or os.getcwd())
    if args.dir is None:
        args.dir = os.path.join(os.path.dirname(os.path.dirname(
            os.path.abspath(args.server))), "cluster")
    args.dir = os.path.abspath(args.dir)
    os.makedirs(args.dir, exist_ok=True)
    check_extra(args.extra, args.n)
    taken = [p for p in range(args.base_port, args.base_port + args.n)
             if not port_free(p)]
    if taken:
        raise SystemExit(f"cluster: port {', '.join(map(str, taken))} on "
                         "127.0.0.1 is in use: stop what holds it, or pick "
                         "other ports with --base-port")
    db = resolve_db(args)
    env = dict(os.environ)
    if not env.get("OC_JWT_SECRET"):
        env["OC_JWT_SECRET"] = secrets.token_hex(24)
        say("token secret generated for this run (set OC_JWT_SECRET to keep "
            "tokens valid across runs)")
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    tmpdir = tempfile.mkdtemp(prefix="oc-cluster-")
    redis, instances = None, []
    try:
        redis, redis_port = start_redis(tmpdir, args.dir)
        fact(f"redis redis://127.0.0.1:{redis_port} pid {redis.pid}")
        fact(f"tmpdir {tmpdir}")
        try:
            start_instances(args, redis_port, db, env, instances)
        except StartFailed as e:
            say(str(e))
            return 1
        for child, port in instances:
            fact(f"instance {child.name} http://127.0.0.1:{port}/ pid "
                 f"{child.pid} log {child.log_path}")
        say(f"store: {db if '://' not in db else 'PostgreSQL (--db)'}")
        wait_cluster_up(instances)
        fact(f"ready {len(instances)}")
        say("open any of the URLs above; Ctrl-C stops them all")
        children = [redis] + [c for c, _ in instances]
        while True:
            report_exits(children)
            if not any(c.alive() for c, _ in instances):
                say("no instance is left: stopping Redis")
                return 1
            time.sleep(POLL_S)
    except Stop as e:
        say(f"{signal.Signals(e.args[0]).name}: stopping the instances, "
            "then Redis")
        return 0
    finally:
        # A second Ctrl-C while stopping would leave children behind:
        # ignore it (every wait below is bounded).
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        stop_all(redis, instances, tmpdir)


def main(argv):
    return run(parse(argv))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
