# wait-for's gRPC and Kubernetes waits: a real gRPC server with the standard health service
# (Python grpcio + grpcio-health-checking from PyPI); the Kubernetes API stand-in
# (tests/fixtures/k8s/apiserver.py) needs only Python's standard library; openssl makes the
# test certificates.
python3 -m pip --version >/dev/null 2>&1 || need_packages python3-pip
python3 -c 'import grpc, grpc_health.v1.health' 2>/dev/null || need_pip grpcio grpcio-health-checking
need_packages openssl
