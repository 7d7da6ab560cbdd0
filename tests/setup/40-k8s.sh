# wait-for's gRPC, Kubernetes and ICMP waits (tests/wait_for_grpc.rs, wait_for_k8s.rs,
# wait_for_icmp.rs): a real gRPC server with the standard health service (Python grpcio +
# grpcio-health-checking from PyPI); the Kubernetes API stand-in (tests/fixtures/k8s/apiserver.py)
# needs only Python's standard library and openssl for its CA; the chart/RBAC checks use Helm and
# kubernetes-validate from 30-ship.sh and PyYAML; unshare and setpriv (util-linux) isolate the
# ICMP tests. bench/wait-for-k8s.py also compares with kubectl when one is installed.
python3 -m pip --version >/dev/null 2>&1 || need_packages python3-pip
python3 -c 'import grpc, grpc_health.v1.health' 2>/dev/null || need_pip grpcio grpcio-health-checking
python3 -c 'import yaml' 2>/dev/null || need_pip pyyaml
need_packages openssl util-linux
