#!/usr/bin/env bash
# Lay out the root filesystem of the initbox image from a static binary, so the Dockerfile's
# final `FROM scratch` stage only COPYs it (no shell, no RUN in the image):
#
#   OUT/initbox                           the static binary (0755)
#   OUT/bin/APPLET -> /initbox            one symlink per applet (`initbox --list`)
#   OUT/etc/passwd, OUT/etc/group         nonroot, uid/gid 65532 (and root for tools that look)
#   OUT/etc/ssl/certs/ca-certificates.crt Debian's CA bundle (SSL_CERT_FILE points here)
#   OUT/home/nonroot                      nonroot's home, empty, 0755 (the Dockerfile makes it
#                                         65532's): an empty named volume mounted there takes
#                                         its owner (docker's and podman's copy-up), so a step
#                                         running as 65532 can write into a fresh volume
#
# usage: scripts/image-rootfs.sh BINARY OUT [CA_BUNDLE]
# Used by the Dockerfile's build stage and by the prebuilt path (CI, `make`-less hosts):
#   scripts/image-rootfs.sh "$(scripts/build-static.sh)" dist/rootfs
set -euo pipefail
bin=${1:?usage: image-rootfs.sh BINARY OUT [CA_BUNDLE]}
out=${2:?usage: image-rootfs.sh BINARY OUT [CA_BUNDLE]}
ca=${3:-/etc/ssl/certs/ca-certificates.crt}

[ -x "$bin" ] || { echo "image-rootfs: $bin is not an executable file" >&2; exit 3; }
[ -s "$ca" ] || { echo "image-rootfs: CA bundle $ca is missing (apt-get install ca-certificates)" >&2; exit 3; }
if command -v file >/dev/null && ! file -L "$bin" | grep -Eq 'statically linked|static-pie'; then
  echo "image-rootfs: $bin is not statically linked (build it with scripts/build-static.sh)" >&2
  exit 3
fi

rm -rf "$out"
install -d -m 0755 "$out" "$out/bin" "$out/etc" "$out/etc/ssl" "$out/etc/ssl/certs" "$out/home" "$out/home/nonroot"
install -m 0755 "$bin" "$out/initbox"
for applet in $("$bin" --list); do
  ln -s /initbox "$out/bin/$applet"
done
install -m 0644 "$ca" "$out/etc/ssl/certs/ca-certificates.crt"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' > "$out/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' > "$out/etc/group"
chmod 0644 "$out/etc/passwd" "$out/etc/group"
# Reproducible timestamps (SOURCE_DATE_EPOCH if set).
find "$out" -exec touch -h -d "@${SOURCE_DATE_EPOCH:-0}" {} +
echo "image-rootfs: $(find "$out" -type l | wc -l) applet links, $(du -sk "$out" | cut -f1) KiB in $out"
