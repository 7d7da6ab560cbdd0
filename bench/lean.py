#!/usr/bin/env python3
"""How lean initbox is, in one run, beside the tools users would pick instead (issue 19 "Leaner"):

- one probe of an open port: `initbox wait-for-tcp --once` vs `busybox nc -z` (goal: <= 2x);
- peak RSS of a wait and of a notify (goal: <= 8 MiB), beside busybox nc, curl and apprise;
- the cost of the system CA store per process: an https probe vs an http probe, and the binary's
  own start (`initbox --version`);
- the binary and image size (goal: <= 10 MiB uncompressed).

Wall times are medians (and p95) of --runs runs, peak RSS from GNU time (%M). It is a benchmark,
not a test: it prints a table.

Peak RSS of a static binary is mostly its file-backed pages (text, .rodata, relocations), and how
many pages one touch maps depends on the page cache: the kernel maps a whole large folio, or a
64 KiB fault-around window, per fault, and the folios' sizes come from how the file was read in (a
freshly copied or linked binary sits in the cache as the writer left it, one read by exec through
readahead as the host's read_ahead_kb decides). So before its RSS is taken each binary is dropped
from the page cache (posix_fadvise DONTNEED, no root needed) and run once, so the before and after
binaries are measured from the same state: cached by one cold exec, as a pod's first start does.
Without this a binary copied a minute ago measured 10.2 MiB and the same file read in by exec 8.3.
The section sizes that decide those pages are printed under the table (readelf).
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


def drop_from_cache(path):
    """Evict `path` from the page cache, so the next exec reads it in cold (see the docstring)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def peak_rss(argv, env=None):
    if os.path.sep in argv[0]:
        drop_from_cache(argv[0])
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    out = subprocess.run(["/usr/bin/time", "-f", "%M"] + argv, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True, env=env)
    return int(out.stderr.strip().splitlines()[-1]) / 1024


def row(name, argv, runs, env=None):
    med, p95 = timed(argv, runs, env)
    rss = peak_rss(argv, env)
    print(f"| {name} | {med:.2f} ms | {p95:.2f} ms | {rss:.1f} MiB |")
    return med, rss


SECTIONS = [".text", ".rodata", ".eh_frame", ".eh_frame_hdr", ".gcc_except_table", ".rela.dyn",
            ".relr.dyn", ".data.rel.ro"]


def sections(path):
    """Sizes of the sections that make up the binary's resident pages, from `readelf -SW`."""
    out = subprocess.run(["readelf", "-SW", path], capture_output=True, text=True).stdout
    sizes = {}
    for line in out.splitlines():
        f = line.replace("[ ", "[").split()
        if len(f) > 6 and f[1] in SECTIONS:
            sizes[f[1]] = int(f[5], 16)
    return sizes


def print_sections(versions):
    if not shutil.which("readelf"):
        return
    table = [(tag, sections(b)) for tag, b in versions]
    print("\n| section (KiB) | " + " | ".join(f"initbox{tag}" for tag, _ in table) + " |")
    print("|---|" + "---|" * len(table))
    for name in SECTIONS:
        print(f"| {name} | " + " | ".join(f"{s.get(name, 0) / 1024:.0f}" for _, s in table) + " |")


def linked_versions(tree):
    """Every crate version linked into the binary, by name: `cargo tree` over the normal
    dependencies for this target in the checkout at `tree` (build scripts and proc macros, which
    never reach the binary, left out)."""
    target = f"{os.uname().machine}-unknown-linux-gnu"
    out = subprocess.run(["cargo", "tree", "-e", "normal,no-proc-macro", "--target", target,
                          "--prefix", "none", "--locked", "--offline"], cwd=tree,
                         capture_output=True, text=True)
    names = {}
    for line in out.stdout.splitlines():
        f = line.split()
        if len(f) >= 2 and f[1].startswith("v"):
            names.setdefault(f[0], set()).add(f[1])
    return names


def print_duplicates(before_rev):
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if not shutil.which("cargo"):
        return
    now = linked_versions(here)
    dups = {n: sorted(v) for n, v in now.items() if len(v) > 1}
    print(f"\ncrates linked in more than one version: {len(dups)}: "
          + ", ".join(f"{n} {'/'.join(v)}" for n, v in sorted(dups.items())))
    if before_rev:
        with tempfile.TemporaryDirectory() as old:
            archive = subprocess.run(["git", "-C", here, "archive", before_rev],
                                     capture_output=True, check=True).stdout
            subprocess.run(["tar", "-x", "-C", old], input=archive, check=True)
            then = linked_versions(old)
        was = sum(1 for v in then.values() if len(v) > 1)
        gone = [f"{n} {v}" for n in sorted(then) if len(then[n]) > 1 for v in sorted(then[n])
                if v not in now.get(n, ())]
        print(f"at {before_rev}: {was}; versions no longer linked: " + (", ".join(gone) or "none"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--initbox", required=True)
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--before-rev", help="a git revision (the one --before was built from): "
                    "the duplicate crate versions removed since are listed")
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
    waits, notifies = {}, {}
    for tag, b in versions:
        row(f"`initbox --version` (start-up alone){tag}", [b, "--version"], a.runs, env)
    for tag, b in reversed(versions):
        probe = row(f"`initbox wait-for-tcp --once` (open port){tag}",
                    [b, "wait-for-tcp", "--once", f"127.0.0.1:{port}"], a.runs, env)
        waits[tag] = probe[1]
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
        notifies[tag] = notify[1]
        if not tag:
            _, notify_rss = notify
    if shutil.which("curl"):
        row("curl (one POST)", ["curl", "-s", "-o", "/dev/null", "-d", "{}",
                                f"http://127.0.0.1:{http_port}/hook"], a.runs, env)
    if shutil.which("apprise"):
        row("apprise (one json:// POST)", ["apprise", "-b", "hi", f"json://127.0.0.1:{http_port}/hook"],
            max(3, a.runs // 20), env)
    print_sections(versions)
    print_duplicates(a.before_rev)
    print()
    if bb_probe:
        print(f"one probe: {ib_probe / bb_probe:.2f}x busybox nc (goal <= 2x)")
    print(f"peak RSS: wait {ib_rss:.1f} MiB, notify {notify_rss:.1f} MiB (goal <= 8 MiB)")
    if a.before:
        print(f"peak RSS before: wait {waits[' (before)']:.1f} MiB, "
              f"notify {notifies[' (before)']:.1f} MiB")
    print(f"binary: {os.path.getsize(ib) / 1048576:.2f} MiB (the image holds it and a few "
          f"KiB of files; goal <= 10 MiB uncompressed)")
    if a.before:
        print(f"binary before: {os.path.getsize(a.before) / 1048576:.2f} MiB")
    if a.image_tar:
        print(f"image archive: {os.path.getsize(a.image_tar) / 1048576:.2f} MiB")


if __name__ == "__main__":
    sys.exit(main())
