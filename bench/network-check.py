#!/usr/bin/env python3
"""`initbox network-check` beside the tools users run instead. Prints tables; a benchmark, not a test.

1. Fifty checks (TCP, HTTP, DNS against loopback servers and dnsmasq), one of them an HTTP endpoint
   that answers after --slow seconds: initbox runs them in parallel, so the wall time should be
   about the slowest check, not the sum. The same fifty checks as a shell script of nc/curl/dig
   calls (what a netshoot-style init container runs) are timed too.
2. One check, process start to exit (median and p95 over --runs) and peak RSS, beside
   `busybox ping -c 1`, `curl`, `dig` and `nc -z` doing the same check.
"""
import argparse
import http.server
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Handler(http.server.BaseHTTPRequestHandler):
    slow = 1.0

    def do_GET(self):
        if self.path.startswith("/slow"):
            time.sleep(Handler.slow)
        body = b'{"status":"UP"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def timed(argv, check=True):
    t = time.monotonic()
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    if check and p.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:4])}... exited {p.returncode}")
    return (time.monotonic() - t) * 1000, p.stdout


def peak_rss_kib(argv):
    """Peak RSS of the tool itself, from GNU time (a small parent, so a fork of this Python
    process does not count)."""
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as out:
        subprocess.run(["/usr/bin/time", "-f", "%M", "-o", out.name] + argv,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        return int(out.read().strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--initbox", required=True)
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--slow", type=float, default=1.0)
    args = ap.parse_args()
    ib = args.initbox
    Handler.slow = args.slow

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    hport = httpd.server_address[1]
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1024)
    tport = listener.getsockname()[1]
    dport = free_port()
    conf = tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False)
    conf.write(f"port={dport}\nlisten-address=127.0.0.1\nbind-interfaces\nno-resolv\nno-hosts\n"
               f"local=/test/\naddress=/api.test/127.0.0.1\n")
    conf.close()
    dnsmasq = subprocess.Popen(["dnsmasq", "--keep-in-foreground", f"--conf-file={conf.name}",
                                "--pid-file=", "--user=root"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", dport), 0.1).close()
                break
            except OSError:
                time.sleep(0.05)

        # 1. Fifty checks, one slow.
        checks = [f"http://127.0.0.1:{hport}/slow,name=slow"]
        checks += [f"tcp:127.0.0.1:{tport},name=tcp{i}" for i in range(20)]
        checks += [f"http://127.0.0.1:{hport}/ok{i},name=http{i}" for i in range(15)]
        checks += [f"dns:api.test,server=127.0.0.1:{dport},name=dns{i}" for i in range(14)]
        argv = [ib, "network-check", "-q", "-o", "json", "--timeout", "10s"] + checks
        walls, sums, slowest = [], [], []
        for _ in range(5):
            ms, out = timed(argv)
            doc = json.loads(out)
            assert doc["summary"]["passed_count"] == 50, doc["summary"]
            durs = [r["duration_ms"] for r in doc["results"]]
            walls.append(ms)
            sums.append(sum(durs))
            slowest.append(max(durs))
        script = []
        for i in range(20):
            script.append(f"nc -z 127.0.0.1 {tport}")
        script.append(f"curl -sf -o /dev/null http://127.0.0.1:{hport}/slow")
        for i in range(15):
            script.append(f"curl -sf -o /dev/null http://127.0.0.1:{hport}/ok{i}")
        for i in range(14):
            script.append(f"dig +short +time=2 +tries=1 @127.0.0.1 -p {dport} api.test >/dev/null")
        shell = " && ".join(script)
        seq = [timed(["sh", "-c", shell])[0] for _ in range(3)]
        print(f"50 checks (20 tcp, 16 http of which 1 answers after {args.slow:.1f}s, 14 dns), median of 5 runs")
        print(f"{'':<44}{'ms':>10}")
        print(f"{'initbox network-check: wall time':<44}{statistics.median(walls):>10.1f}")
        print(f"{'  slowest single check (from its report)':<44}{statistics.median(slowest):>10.1f}")
        print(f"{'  sum of all 50 check times':<44}{statistics.median(sums):>10.1f}")
        print(f"{'shell script: nc/curl/dig one after another':<44}{statistics.median(seq):>10.1f}")

        # 2. One check, start to exit, and peak RSS.
        pairs = [
            ("ICMP echo 127.0.0.1",
             [ib, "network-check", "-q", "icmp:127.0.0.1,count=1"],
             ["busybox", "ping", "-c", "1", "-W", "1", "127.0.0.1"], "busybox ping -c 1"),
            ("HTTP GET",
             [ib, "network-check", "-q", f"http://127.0.0.1:{hport}/"],
             ["curl", "-sf", "-o", "/dev/null", f"http://127.0.0.1:{hport}/"], "curl"),
            ("DNS A api.test (dnsmasq)",
             [ib, "network-check", "-q", "--server", f"127.0.0.1:{dport}", "dns:api.test,type=A"],
             ["dig", "+short", "+time=2", "+tries=1", "@127.0.0.1", "-p", str(dport), "api.test"], "dig"),
            ("TCP connect",
             [ib, "network-check", "-q", f"tcp:127.0.0.1:{tport}"],
             ["nc", "-z", "127.0.0.1", str(tport)], "nc -z (openbsd)"),
        ]
        print(f"\nOne check, process start to exit ({args.runs} runs) and peak RSS")
        print(f"{'check':<26}{'tool':<24}{'median ms':>10}{'p95 ms':>10}{'peak RSS KiB':>14}")
        for what, ours, theirs, their_name in pairs:
            for name, argv in (("initbox network-check", ours), (their_name, theirs)):
                xs = [timed(argv)[0] for _ in range(args.runs)]
                rss = max(peak_rss_kib(argv) for _ in range(3))
                print(f"{what:<26}{name:<24}{statistics.median(xs):>10.2f}{pct(xs, 0.95):>10.2f}{rss:>14}",
                      flush=True)
                what = ""
    finally:
        dnsmasq.terminate()
        dnsmasq.wait()
        os.unlink(conf.name)
        httpd.shutdown()
        listener.close()


if __name__ == "__main__":
    sys.exit(main())
