# Container tests (tests/containers.rs): the image under a real container runtime, pods with
# `podman kube play`, the compose example with docker-compose against `podman system service`
# and with podman-compose. See ../shared/reference/running-containers.md: crun cannot start
# containers on hosts that refuse setrlimit(RLIMIT_NOFILE) or mix cgroup v1/v2, so the tests use
# runc with the cgroupfs manager and a containers.conf with `default_ulimits = []` (written by the
# test into its own storage directory: nothing here changes the machine's podman configuration).
need_packages podman runc catatonit buildah docker-compose podman-compose dnsmasq-base openssl python3 curl

# The stand-in application container of the pod and compose tests is a static BusyBox in a
# FROM scratch image (no registry can be pulled from). busybox-static conflicts with the dynamic
# busybox package 00-packages.sh installs, so its binary is extracted, not installed.
INITBOX_TEST_BUSYBOX=${INITBOX_TEST_BUSYBOX:-/var/cache/initbox-tests/busybox-static/bin/busybox}
export INITBOX_TEST_BUSYBOX
if [ ! -x "$INITBOX_TEST_BUSYBOX" ]; then
  echo "containers: extracting busybox-static to ${INITBOX_TEST_BUSYBOX%/bin/busybox}"
  (
    set -e
    d=$(mktemp -d)
    cd "$d"
    chmod 0755 "$d" # apt-get download runs as _apt where it can
    if [ -z "${INITBOX_APT_UPDATED:-}" ]; then $SUDO apt-get update -qq; fi
    apt-get download -qq busybox-static 2>/dev/null
    $SUDO mkdir -p "${INITBOX_TEST_BUSYBOX%/bin/busybox}"
    $SUDO dpkg-deb -x busybox-static_*.deb "${INITBOX_TEST_BUSYBOX%/bin/busybox}"
    cd / && rm -rf "$d"
  )
fi
