#!/usr/bin/env python3
"""Readiness-detection latency, one-probe cost and peak RSS of `initbox wait-for-tcp`, side by side
with what users run instead: wait-for-it (Debian), an `until nc -z; do sleep 1; done` loop, and
`busybox nc` for a single probe. Prints a table; it is a benchmark, not a test.

Latency = time from the listener opening to the waiting process exiting, measured over many
randomized delays (uniform between --min-delay and --max-delay) so polling phase does not flatter
anyone.
"""
import argparse
import random
import shutil
import socket
import statistics
import subprocess
import sys
import time


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def detection_latency(argv_for_port, runs, lo, hi):
    """Start the waiter, open the listener after a random delay, time until the waiter exits."""
    samples = []
    for _ in range(runs):
        port = free_port()
        p = subprocess.Popen(argv_for_port(port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(random.uniform(lo, hi))
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        opened = time.monotonic()
        listener.listen(64)
        rc = p.wait(timeout=30)
        samples.append((time.monotonic() - opened) * 1000)
        listener.close()
        if rc != 0:
            raise SystemExit(f"{argv_for_port(port)[0]} exited {rc}")
    return samples


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def one_probe(argv, runs):
    """Wall time from process start to exit for one probe of an open port (median of runs)."""
    times = []
    for _ in range(runs):
        t = time.monotonic()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, check=True)
        times.append((time.monotonic() - t) * 1000)
    return statistics.median(times), pct(times, 0.95)


def peak_rss_kib(argv):
    """Peak RSS of a command, as GNU time reports it (a fork of this Python would count its own
    pages)."""
    r = subprocess.run(["/usr/bin/time", "-f", "%M", *argv], stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True)
    return int(r.stderr.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--initbox", required=True)
    ap.add_argument("--runs", type=int, default=40)
    ap.add_argument("--min-delay", type=float, default=0.2)
    ap.add_argument("--max-delay", type=float, default=2.0)
    args = ap.parse_args()
    ib = args.initbox
    random.seed(42)

    contenders = [("initbox wait-for-tcp", lambda p: [ib, "wait-for-tcp", "-q", "-t", "60s", f"127.0.0.1:{p}"])]
    if shutil.which("wait-for-it"):
        contenders.append(("wait-for-it", lambda p: ["wait-for-it", "-q", "-s", "-t", "60", f"127.0.0.1:{p}"]))
    if shutil.which("nc"):
        contenders.append(("until nc -z; sleep 1", lambda p: ["sh", "-c", f"until nc -z 127.0.0.1 {p}; do sleep 1; done"]))

    print(f"Readiness-detection latency, {args.runs} runs, listener opens after U({args.min_delay}s, {args.max_delay}s)")
    print(f"{'tool':<26}{'median ms':>10}{'p95 ms':>10}{'max ms':>10}")
    for name, argv in contenders:
        s = detection_latency(argv, args.runs, args.min_delay, args.max_delay)
        print(f"{name:<26}{statistics.median(s):>10.1f}{pct(s, 0.95):>10.1f}{max(s):>10.1f}", flush=True)

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1024)
    port = listener.getsockname()[1]
    probes = [("initbox wait-for-tcp --once", [ib, "wait-for-tcp", "-q", "--once", f"127.0.0.1:{port}"])]
    if shutil.which("busybox"):
        probes.append(("busybox nc", ["busybox", "nc", "-w", "1", "127.0.0.1", str(port)]))
    if shutil.which("nc"):
        probes.append(("nc -z (openbsd)", ["nc", "-z", "127.0.0.1", str(port)]))
    print("\nOne probe of an open port, process start to exit (200 runs)")
    print(f"{'tool':<30}{'median ms':>10}{'p95 ms':>10}{'peak RSS KiB':>14}")
    for name, argv in probes:
        med, p95 = one_probe(argv, 200)
        rss = peak_rss_kib(argv)
        print(f"{name:<30}{med:>10.2f}{p95:>10.2f}{rss:>14}", flush=True)

    closed = free_port()
    rss = peak_rss_kib([ib, "wait-for-tcp", "-q", "-t", "3s", f"127.0.0.1:{closed}", f"localhost:{closed}"])
    print(f"\nPeak RSS of a 3 s wait on two closed targets: {rss} KiB")
    listener.close()


if __name__ == "__main__":
    sys.exit(main())
