#!/usr/bin/env python3
"""Benchmark: how long after a Job turns Complete does the waiter notice? Against the stand-in
API server (tests/fixtures/k8s/apiserver.py; no real API server runs here), per round: create a
Job, start the waiter, let it settle, flip the Job to Complete, time until the waiter exits 0.

Waiters side by side:
  initbox watch        initbox wait-for k8s://job/NAME (list, then watch)
  initbox poll         the same with watch forbidden by RBAC (polls with list every 1 s)
  kubectl wait         kubectl wait --for=condition=Complete job/NAME (watch), if kubectl is here
  k8s-wait-for loop    k8s-wait-for's loop: `kubectl get job` every WAIT_TIME=2 s until Complete

Usage: bench/wait-for-k8s.py [INITBOX_BIN] (default target/release/initbox, else target/debug).
Detection latency is dominated by how the change reaches the waiter, not by CPU, so a debug
build gives the same figures within noise. Also prints binary sizes (initbox vs kubectl alone,
the biggest part of k8s-wait-for's alpine + kubectl + jq + curl image).
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROUNDS = int(os.environ.get("ROUNDS", "5"))
SETTLE = 1.5


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else None
    if not binary:
        for c in ("target/release/initbox", "target/debug/initbox"):
            if os.path.exists(os.path.join(ROOT, c)):
                binary = os.path.join(ROOT, c)
                break
    if not binary:
        sys.exit("build first: cargo build")
    d = tempfile.mkdtemp(prefix="initbox-bench-k8s-")
    try:
        run(binary, d)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def openssl(d, *args):
    subprocess.run(["openssl", *args], cwd=d, capture_output=True, check=True)


def run(binary, d):
    openssl(d, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=ca",
            "-keyout", "ca.key", "-out", "ca.crt")
    openssl(d, "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=api", "-keyout", "key.pem",
            "-out", "s.csr")
    with open(f"{d}/ext.cnf", "w") as f:
        f.write("basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1\n")
    openssl(d, "x509", "-req", "-in", "s.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "1", "-extfile", "ext.cnf", "-out", "cert.pem")
    server = subprocess.Popen(
        ["python3", f"{ROOT}/tests/fixtures/k8s/apiserver.py", "--token", "bench-token",
         "--cert", f"{d}/cert.pem", "--key", f"{d}/key.pem"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    port = int(server.stdout.readline().split()[1])
    kubeconfig = f"{d}/kubeconfig"
    with open(kubeconfig, "w") as f:
        f.write(f"""apiVersion: v1
kind: Config
current-context: bench
clusters: [{{name: standin, cluster: {{server: "https://127.0.0.1:{port}", certificate-authority: {d}/ca.crt}}}}]
contexts: [{{name: bench, context: {{cluster: standin, user: u, namespace: bench}}}}]
users: [{{name: u, user: {{token: bench-token}}}}]
""")

    def cmd(line):
        server.stdin.write(line + "\n")
        server.stdin.flush()
        return server.stdout.readline()

    def job(name, complete):
        status = {"conditions": [{"type": "Complete", "status": "True"}]} if complete else {"active": 1}
        cmd("put " + json.dumps({"apiVersion": "batch/v1", "kind": "Job",
                                 "metadata": {"name": name, "namespace": "bench"}, "status": status}))

    env = {k: v for k, v in os.environ.items() if not k.startswith(("INITBOX_", "KUBE"))}
    kubectl = shutil.which("kubectl")
    loop = ("until kubectl --kubeconfig {kc} get job {name} -o jsonpath='{{.status.conditions[?(@.type==\"Complete\")].status}}' "
            "| grep -q True; do sleep 2; done")
    waiters = [
        ("initbox watch", lambda n: [binary, "wait-for", "--kubeconfig", kubeconfig, "-t", "60s", f"k8s://job/{n}"], None),
        ("initbox poll (watch forbidden)", lambda n: [binary, "wait-for", "--kubeconfig", kubeconfig, "-t", "60s", f"k8s://job/{n}"], "jobs"),
    ]
    if kubectl:
        waiters.append(("kubectl wait", lambda n: [kubectl, "--kubeconfig", kubeconfig, "wait", "--for=condition=Complete", f"job/{n}", "--timeout=60s"], None))
        waiters.append(("k8s-wait-for loop (kubectl get, 2 s)", lambda n: ["sh", "-c", loop.format(kc=kubeconfig, name=n)], None))
    print(f"detection latency after the stand-in flips a Job to Complete ({ROUNDS} rounds; {binary})")
    print(f"{'waiter':40} {'median':>9} {'max':>9}")
    counter = 0
    for label, argv, forbid in waiters:
        if forbid:
            cmd(f"forbid watch {forbid}")
        lat = []
        for _ in range(ROUNDS):
            counter += 1
            name = f"job-{counter}"
            job(name, False)
            w = subprocess.Popen(argv(name), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(SETTLE)
            t0 = time.monotonic()
            job(name, True)
            rc = w.wait(timeout=60)
            lat.append(time.monotonic() - t0)
            if rc != 0:
                sys.exit(f"{label}: exit {rc}")
        if forbid:
            cmd(f"allow watch {forbid}")
        print(f"{label:40} {statistics.median(lat) * 1000:8.0f}ms {max(lat) * 1000:8.0f}ms")
    # One check of a Job that is already Complete (a probe command, or the whole of an init
    # container whose Job finished long ago): process start, TLS, one list.
    job("done", True)
    once = [("initbox wait-for --once", [binary, "wait-for", "--kubeconfig", kubeconfig, "--once", "k8s://job/done"])]
    if kubectl:
        once.append(("kubectl get job -o jsonpath", [kubectl, "--kubeconfig", kubeconfig, "get", "job", "done", "-o",
                                                     "jsonpath={.status.conditions[0].type}"]))
    print()
    print(f"one check of a Complete Job ({ROUNDS * 4} runs)")
    print(f"{'command':40} {'median':>9} {'max':>9}")
    for label, argv in once:
        times = []
        for _ in range(ROUNDS * 4):
            t0 = time.monotonic()
            subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
            times.append(time.monotonic() - t0)
        print(f"{label:40} {statistics.median(times) * 1000:8.0f}ms {max(times) * 1000:8.0f}ms")
    cmd("quit")
    server.wait()
    print()
    print("binary sizes:")
    print(f"  initbox (all applets)      {os.path.getsize(binary) / 1e6:6.1f} MB  {binary}")
    if kubectl:
        print(f"  kubectl alone              {os.path.getsize(os.path.realpath(kubectl)) / 1e6:6.1f} MB  (k8s-wait-for's image adds alpine, jq and curl)")


if __name__ == "__main__":
    main()
