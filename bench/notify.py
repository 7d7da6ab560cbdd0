#!/usr/bin/env python3
"""One webhook notification, process start to exit, and the peak RSS of the sending process:
`initbox notify` side by side with apprise (json://) and curl, all posting a small JSON message to
the same local HTTP endpoint (a threaded Python server answering 200). Prints a table; it is a
benchmark, not a test.
"""
import argparse
import http.server
import shutil
import statistics
import subprocess
import tempfile
import threading
import time


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    received = 0

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        Handler.received += 1
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def timed(argv, runs):
    times = []
    for _ in range(runs):
        before = Handler.received
        t = time.monotonic()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, check=True)
        times.append((time.monotonic() - t) * 1000)
        if Handler.received != before + 1:
            raise SystemExit(f"{argv[0]}: the endpoint did not receive exactly one request")
    return statistics.median(times), pct(times, 0.95)


def peak_rss_kib(argv):
    """Peak RSS of the process, measured by GNU time (a small C parent). Forking from this Python
    process would count Python's own pages: Linux keeps the pre-exec high-water mark."""
    with tempfile.NamedTemporaryFile("r") as out:
        rc = subprocess.run(["/usr/bin/time", "-o", out.name, "-f", "%M", *argv],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL).returncode
        if rc != 0:
            raise SystemExit(f"{argv[0]} failed ({rc})")
        return int(out.read().split()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--initbox", required=True)
    ap.add_argument("--runs", type=int, default=50)
    args = ap.parse_args()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"127.0.0.1:{port}/hook"

    contenders = [
        ("initbox notify", [args.initbox, "notify", "-q", "--required", f"webhook+http://{url}", "--title", "deploy", "-m", "web-0 is starting"]),
    ]
    if shutil.which("apprise"):
        contenders.append(("apprise (json://)", ["apprise", "-t", "deploy", "-b", "web-0 is starting", f"json://{url}"]))
    if shutil.which("curl"):
        contenders.append(("curl -f (hand-built JSON)", ["curl", "-fsS", "-X", "POST", "-H", "Content-Type: application/json",
                                                        "-d", '{"title":"deploy","message":"web-0 is starting"}', f"http://{url}"]))

    print(f"One webhook notification to a local endpoint, process start to exit ({args.runs} runs)")
    print(f"{'tool':<28}{'median ms':>10}{'p95 ms':>10}{'peak RSS KiB':>14}")
    floor = peak_rss_kib(["true"])
    for name, argv in contenders:
        med, p95 = timed(argv, args.runs)
        rss = peak_rss_kib(argv)
        print(f"{name:<28}{med:>10.2f}{p95:>10.2f}{rss:>14}", flush=True)
    print(f"(peak RSS of /bin/true under the same measurement: {floor} KiB)")
    server.shutdown()


if __name__ == "__main__":
    main()
