#!/usr/bin/env python3
"""How lean initbox is, in one run, beside the tools users would pick instead (issue 19 "Leaner"):

- one probe of an open port: `initbox wait-for-tcp --once` vs `busybox nc -z` (goal: <= 2x);
- peak RSS of a wait and of a notify (goal: <= 8 MiB), beside busybox nc, curl and apprise;
- the cost of the system CA store per process: an https probe vs an http probe, and the binary's
  own start (`initbox --version`);
- the binary and image size (goal: <= 10 MiB uncompressed).

Wall times are medians (and p95) of --runs runs, peak RSS from GNU time (%M). It is a benchmark,
not a test: it prints a table.
"""
import argparse
import os
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer


class Ok(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    do_POST = do_GET

    def log_message(self, *a):
        pass


def serve(tls_dir=None):
    httpd = HTTPServer(("127.0.0.1", 0), Ok)
    if tls_dir:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(os.path.join(tls_dir, "cert.pem"), os.path.join(tls_dir, "key.pem"))
        httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd.server_address[1]


def timed(argv, runs, env=None):
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        samples.append((time.perf_counter() - t) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1]


def peak_rss(argv, env=None):
    out = subprocess.run(["/usr/bin/time", "-f", "%M"] + argv, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True, env=env)
    return int(out.stderr.strip().splitlines()[-1]) / 1024


def row(name, argv, runs, env=None):
    med, p95 = timed(argv, runs, env)
    rss = peak_rss(argv, env)
    print(f"| {name} | {med:.2f} ms | {p95:.2f} ms | {rss:.1f} MiB |")
    return med, rss


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--initbox", required=True)
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--image-tar", help="an image archive (podman save) to report the size of")
    ap.add_argument("--before", help="an earlier initbox binary: its rows are printed beside, "
                    "marked (before), so a cut shows as before/after figures of one run")
    a = ap.parse_args()
    ib = a.initbox

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1024)
    port = listener.getsockname()[1]

    def drain():
        while True:
            c, _ = listener.accept()
            c.close()

    threading.Thread(target=drain, daemon=True).start()
    http_port = serve()
    tls = tempfile.mkdtemp()
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", f"{tls}/key.pem", "-out", f"{tls}/cert.pem"],
                   check=True, capture_output=True)
    https_port = serve(tls)
    env = dict(os.environ, NO_COLOR="1")

    print(f"binary: {ib} ({os.path.getsize(ib) / 1048576:.2f} MiB); {a.runs} runs each\n")
    if a.before:
        print(f"before: {a.before} ({os.path.getsize(a.before) / 1048576:.2f} MiB)\n")
    print("| command | median | p95 | peak RSS |")
    print("|---|---|---|---|")
    versions = [("", ib)] + ([(" (before)", a.before)] if a.before else [])
    for tag, b in versions:
        row(f"`initbox --version` (start-up alone){tag}", [b, "--version"], a.runs, env)
    for tag, b in reversed(versions):
        probe = row(f"`initbox wait-for-tcp --once` (open port){tag}",
                    [b, "wait-for-tcp", "--once", f"127.0.0.1:{port}"], a.runs, env)
        if not tag:
            ib_probe, ib_rss = probe
    bb = shutil.which("busybox")
    bb_probe = None
    if bb:
        bb_probe, _ = row("`busybox nc -z` (open port)", [bb, "nc", "-z", "127.0.0.1", str(port)],
                          a.runs, env)
    for tag, b in reversed(versions):
        row(f"`initbox wait-for --once http://…`{tag}",
            [b, "wait-for", "--once", f"http://127.0.0.1:{http_port}/"], a.runs, env)
        row(f"`initbox wait-for --once https://…` (CA store read){tag}",
            [b, "wait-for", "--once", f"https://127.0.0.1:{https_port}/"], a.runs, env)
        row(f"`initbox wait-for --once https://… --ca-file` (no system store){tag}",
            [b, "wait-for", "--once", "--ca-file", f"{tls}/cert.pem",
             f"https://127.0.0.1:{https_port}/"], a.runs, env)
        notify = row(f"`initbox notify` (one webhook){tag}",
                     [b, "notify", f"webhook+http://127.0.0.1:{http_port}/hook", "-m", "hi"],
                     a.runs, env)
        if not tag:
            _, notify_rss = notify
    if shutil.which("curl"):
        row("curl (one POST)", ["curl", "-s", "-o", "/dev/null", "-d", "{}",
                                f"http://127.0.0.1:{http_port}/hook"], a.runs, env)
    if shutil.which("apprise"):
        row("apprise (one json:// POST)", ["apprise", "-b", "hi", f"json://127.0.0.1:{http_port}/hook"],
            max(3, a.runs // 20), env)
    print()
    if bb_probe:
        print(f"one probe: {ib_probe / bb_probe:.2f}x busybox nc (goal <= 2x)")
    print(f"peak RSS: wait {ib_rss:.1f} MiB, notify {notify_rss:.1f} MiB (goal <= 8 MiB)")
    print(f"binary: {os.path.getsize(ib) / 1048576:.2f} MiB (the image holds it and a few "
          f"KiB of files; goal <= 10 MiB uncompressed)")
    if a.image_tar:
        print(f"image archive: {os.path.getsize(a.image_tar) / 1048576:.2f} MiB")


if __name__ == "__main__":
    sys.exit(main())
