# syntax=docker/dockerfile:1
#
# The initbox image: one static binary, a CA bundle and a nonroot user, FROM scratch.
#
# Build from source (needs the official Rust image):
#   docker build -t initbox .
# Package a prebuilt static binary instead (hosts that cannot pull base images, CI here):
#   scripts/image-rootfs.sh "$(scripts/build-static.sh)" dist/rootfs
#   buildah bud --build-arg BINARY_SOURCE=prebuilt -t initbox .   # docker build works the same
# Both paths end in the same final stage.

ARG BINARY_SOURCE=build
ARG RUST_IMAGE=docker.io/library/rust:1.95-bookworm

# ---- build: the static binary from source (glibc 2.36, static-pie) -------------------------
FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY . .
# e.g. --build-arg CARGO_FEATURES="--no-default-features --features wait-for-tcp,wait-for-dns"
ARG CARGO_FEATURES=""
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    bin=$(bash scripts/build-static.sh ${CARGO_FEATURES}) \
 && install -D -m 0755 "$bin" /out/initbox \
 && bash scripts/image-rootfs.sh /out/initbox /rootfs

# ---- prebuilt: a rootfs laid out by scripts/image-rootfs.sh in the build context ------------
FROM scratch AS prebuilt
COPY dist/rootfs/ /rootfs/

# ---- the source picked by BINARY_SOURCE (build or prebuilt) ---------------------------------
FROM ${BINARY_SOURCE} AS rootfs

# ---- final ----------------------------------------------------------------------------------
FROM scratch
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=1970-01-01T00:00:00Z
LABEL org.opencontainers.image.title="initbox" \
      org.opencontainers.image.description="One small static binary for every step before an application starts: waits, migrations, secrets, config, network checks, notifications" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://example.invalid/initbox" \
      org.opencontainers.image.documentation="https://example.invalid/initbox#readme"
COPY --from=rootfs /rootfs/ /
# nonroot's home belongs to nonroot (COPY makes everything root's): a fresh named volume mounted
# here is writable by the image's user (docker and podman copy the mount point's owner to it).
COPY --from=rootfs --chown=65532:65532 /rootfs/home/ /home/
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    PATH=/bin
USER 65532:65532
ENTRYPOINT ["/initbox"]
CMD ["--help"]
