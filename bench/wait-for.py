#!/usr/bin/env python3
"""Readiness-detection latency and one-probe cost of `initbox wait-for`, side by side with what
users run instead: a `curl` retry loop and `curl --retry` for HTTP, a `pg_isready` loop for
PostgreSQL, wait-for-it for TCP. Prints tables; it is a benchmark, not a test.

HTTP latency: a local server answers 503 until a random moment, then 200; latency = time from the
first 200-capable moment to the waiter's exit.

PostgreSQL latency: a throwaway cluster (initdb in a temporary directory, run as the postgres
user) is started as a standby with hot_standby=off, so it refuses connections with 57P03 exactly
like a server that is starting up; it is promoted after a random delay. Latency = waiter exit
minus the millisecond timestamp of the server's own "ready to accept connections" log line.
"""
import argparse
import glob
import http.server
import os
import pwd
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def row(name, samples):
    print(f"{name:<44}{statistics.median(samples):>10.1f}{pct(samples, 0.95):>10.1f}{max(samples):>10.1f}", flush=True)


# ------------------------------------------------------------------------------------------------
# HTTP
# ------------------------------------------------------------------------------------------------

class Switch:
    ready_at = None  # monotonic time from which the server answers 200


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def do_GET(self):
        ok = Switch.ready_at is not None and time.monotonic() >= Switch.ready_at
        body = b'{"status":"UP"}' if ok else b'{"status":"STARTING"}'
        self.send_response(200 if ok else 503)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


def http_latency(argv, url, runs, lo, hi):
    samples = []
    for _ in range(runs):
        Switch.ready_at = None
        p = subprocess.Popen(argv(url), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(random.uniform(lo, hi))
        Switch.ready_at = time.monotonic()
        rc = p.wait(timeout=60)
        samples.append((time.monotonic() - Switch.ready_at) * 1000)
        if rc != 0:
            raise SystemExit(f"{argv(url)} exited {rc}")
    return samples


# ------------------------------------------------------------------------------------------------
# PostgreSQL
# ------------------------------------------------------------------------------------------------

def pg_bin(tool):
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]))
    return os.path.join(versions[-1], tool)


class Cluster:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="initbox-bench-pg-")
        pw = pwd.getpwnam("postgres")
        os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        self.uid, self.gid = pw.pw_uid, pw.pw_gid
        self.data = os.path.join(self.dir, "data")
        self.log = os.path.join(self.dir, "log")
        self.port = free_port()
        self.as_pg([pg_bin("initdb"), "-D", self.data, "-U", "postgres", "-A", "trust", "--no-sync"])
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.write(f"port = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                    f"unix_socket_directories = '{self.dir}'\nhot_standby = off\nfsync = off\n"
                    "log_line_prefix = '%m '\nlogging_collector = off\n")

    def as_pg(self, argv):
        subprocess.run(["runuser", "-u", "postgres", "--"] + argv, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def ctl(self, *args):
        self.as_pg([pg_bin("pg_ctl"), "-D", self.data, "-l", self.log] + list(args))

    def start_standby(self):
        sig = os.path.join(self.data, "standby.signal")
        open(sig, "w").close()
        os.chown(sig, self.uid, self.gid)
        # Truncate the log so the next "ready" line is the promotion's.
        with open(self.log, "w"):
            pass
        os.chown(self.log, self.uid, self.gid)
        self.ctl("-W", "start")
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                time.sleep(0.02)
        raise SystemExit("throwaway PostgreSQL did not start")

    def stop(self):
        self.ctl("-m", "fast", "-w", "stop")

    def ready_time(self):
        """Wall-clock time of the last 'ready to accept connections' line."""
        for _ in range(100):
            with open(self.log) as f:
                lines = [l for l in f if "ready to accept connections" in l]
            if lines:
                m = re.match(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) (\w+)", lines[-1])
                ts = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S.%f")
                # log_timezone defaults to the system zone; compare in local time.
                return ts.timestamp()
            time.sleep(0.02)
        raise SystemExit("no ready line in the PostgreSQL log")

    def remove(self):
        try:
            self.ctl("-m", "immediate", "stop")
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)


def pg_latency(cluster, argv, runs, lo, hi):
    samples = []
    url_port = cluster.port
    for _ in range(runs):
        cluster.start_standby()
        p = subprocess.Popen(argv(url_port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(random.uniform(lo, hi))
        cluster.ctl("promote")  # no -w: do not let pg_ctl's own polling add to the timeline
        rc = p.wait(timeout=60)
        done = time.time()
        samples.append((done - cluster.ready_time()) * 1000)
        if rc != 0:
            raise SystemExit(f"{argv(url_port)} exited {rc}")
        cluster.stop()
    return samples


# ------------------------------------------------------------------------------------------------
# One probe: wall time and peak RSS
# ------------------------------------------------------------------------------------------------

def one_probe(argv, runs):
    times = []
    for _ in range(runs):
        t = time.monotonic()
        rc = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL).returncode
        times.append((time.monotonic() - t) * 1000)
        if rc != 0:
            raise SystemExit(f"{argv} exited {rc}")
    return statistics.median(times), pct(times, 0.95)


def peak_rss_kib(argv):
    """Peak RSS of the probe itself, measured by GNU time (a small C parent: forking from this
    Python process would count the interpreter's own pages in the child's maximum)."""
    with tempfile.NamedTemporaryFile("r") as out:
        subprocess.run(["/usr/bin/time", "-f", "%M", "-o", out.name] + argv,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        return int(out.read().strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--initbox", required=True)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--min-delay", type=float, default=0.3)
    ap.add_argument("--max-delay", type=float, default=2.0)
    ap.add_argument("--probe-runs", type=int, default=100)
    args = ap.parse_args()
    ib = args.initbox
    random.seed(42)

    # HTTP server (threaded, answers 503 until switched).
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{srv.server_address[1]}/healthz"

    print(f"HTTP readiness-detection latency (ms), {args.runs} runs, 503 until U({args.min_delay}s, {args.max_delay}s), then 200")
    print(f"{'tool':<44}{'median':>10}{'p95':>10}{'max':>10}")
    http_tools = [
        ("initbox wait-for http:// --json status=UP", lambda u: [ib, "wait-for", "-q", "-t", "60s", "--json", "status=UP", u]),
        ("until curl -fsS; do sleep 1; done", lambda u: ["sh", "-c", f"until curl -fsS -o /dev/null {u}; do sleep 1; done"]),
        ("curl --retry 60 --retry-all-errors (1s)", lambda u: ["curl", "-fsS", "-o", "/dev/null", "--retry", "60", "--retry-delay", "1", "--retry-all-errors", u]),
        ("until curl -fsS; do sleep 0.1; done", lambda u: ["sh", "-c", f"until curl -fsS -o /dev/null {u}; do sleep 0.1; done"]),
    ]
    for name, argv in http_tools:
        row(name, http_latency(argv, url, args.runs, args.min_delay, args.max_delay))

    cluster = None
    if os.path.exists("/usr/lib/postgresql") and shutil.which("runuser"):
        cluster = Cluster()
        try:
            pg_runs = max(5, args.runs // 2)
            print(f"\nPostgreSQL readiness-detection latency (ms), {pg_runs} runs: 57P03 until promoted after U({args.min_delay}s, {args.max_delay}s)")
            print(f"{'tool':<44}{'median':>10}{'p95':>10}{'max':>10}")
            pg_tools = [
                ("initbox wait-for postgres://", lambda p: [ib, "wait-for", "-q", "-t", "60s", f"postgres://postgres@127.0.0.1:{p}/postgres"]),
                ("until pg_isready; do sleep 1; done", lambda p: ["sh", "-c", f"until pg_isready -q -h 127.0.0.1 -p {p}; do sleep 1; done"]),
                ("until pg_isready; do sleep 0.1; done", lambda p: ["sh", "-c", f"until pg_isready -q -h 127.0.0.1 -p {p}; do sleep 0.1; done"]),
            ]
            for name, argv in pg_tools:
                row(name, pg_latency(cluster, argv, pg_runs, args.min_delay, args.max_delay))
        finally:
            cluster.remove()

    # One probe against a ready target.
    Switch.ready_at = 0.0
    tcp_port = srv.server_address[1]
    probes = [
        ("initbox wait-for --once http://", [ib, "wait-for", "-q", "--once", url]),
        ("curl -fsS", ["curl", "-fsS", "-o", "/dev/null", url]),
        ("initbox wait-for --once tcp://", [ib, "wait-for", "-q", "--once", f"tcp://127.0.0.1:{tcp_port}"]),
        ("initbox wait-for-tcp --once", [ib, "wait-for-tcp", "-q", "--once", f"127.0.0.1:{tcp_port}"]),
        ("wait-for-it -t 1", ["wait-for-it", "-q", "-t", "1", f"127.0.0.1:{tcp_port}"]),
        ("initbox wait-for --once postgres://", [ib, "wait-for", "-q", "--once", "postgres://root@127.0.0.1:5432/test"]),
        ("pg_isready", ["pg_isready", "-q", "-h", "127.0.0.1", "-p", "5432"]),
        ("initbox wait-for --once redis://", [ib, "wait-for", "-q", "--once", "redis://127.0.0.1:6379"]),
        ("redis-cli ping", ["redis-cli", "-h", "127.0.0.1", "-p", "6379", "ping"]),
    ]
    print(f"\nOne probe of a ready target, process start to exit ({args.probe_runs} runs)")
    print(f"{'tool':<44}{'median ms':>10}{'p95 ms':>10}{'peak RSS KiB':>14}")
    for name, argv in probes:
        if not shutil.which(argv[0]):
            continue
        try:
            med, p95 = one_probe(argv, args.probe_runs)
        except SystemExit as e:
            print(f"{name:<44}  skipped: {e}")
            continue
        print(f"{name:<44}{med:>10.2f}{p95:>10.2f}{peak_rss_kib(argv):>14}", flush=True)
    srv.shutdown()


if __name__ == "__main__":
    sys.exit(main())
