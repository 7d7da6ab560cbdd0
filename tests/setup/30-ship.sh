# Packaging tests (tests/image.rs, tests/charts.rs): buildah/podman build the scratch image and
# export its root filesystem (containers are not started: the tests chroot into it as 65532);
# openssl makes the TLS test's CA; Helm v4 (embedded in helm-python-sdk) renders and lints the
# charts, kubernetes-validate checks every manifest against the Kubernetes schemas.
need_packages buildah podman openssl ca-certificates coreutils file python3
need_pip helm-python-sdk kubernetes-validate pyyaml

# The static release binary the image test packages (incremental; the test rebuilds it if stale).
echo "ship: static binary (scripts/build-static.sh)"
bash scripts/build-static.sh >/dev/null
