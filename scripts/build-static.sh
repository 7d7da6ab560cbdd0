#!/usr/bin/env bash
# Build a fully static initbox for Linux (glibc with crt-static, static-pie), the binary that goes
# into the scratch image and runs in an empty root filesystem. Prints the binary's path.
#
#   scripts/build-static.sh                       # every applet
#   scripts/build-static.sh --no-default-features --features wait-for-tcp,wait-for-dns
#
# Notes:
# - Name resolution goes through hickory (resolv.conf + hosts) or glibc's built-in files/dns
#   lookups, both of which work statically with only /etc/hosts and /etc/resolv.conf present.
# - getrandom uses the getrandom(2) system call, never /dev/urandom (absent from scratch images).
# - Output goes to target/static/ (its own cargo lock, so it can run beside `cargo test`).
# - Leaner (issue 19, measured with bench/lean.sh --before):
#   `-z pack-relative-relocs` stores the static-pie's ~36 000 relative relocations as DT_RELR
#   (glibc >= 2.36; rust-lld, or GNU ld >= 2.38): 10 KiB instead of an 844 KiB .rela.dyn that
#   the start-up code read in full on every run, so fewer bytes in the file and fewer pages
#   faulted in at start.
#   The binary stays a static-pie (ASLR). Measured and not kept: `-C force-unwind-tables=no`
#   leaves .eh_frame at 1242 KiB (fat LTO merges std's bitcode, whose uwtable module flag wins).
set -euo pipefail
cd "$(dirname "$0")/.."
target="$(uname -m)-unknown-linux-gnu"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target/static}"
export RUSTFLAGS="-C target-feature=+crt-static --cfg getrandom_backend=\"linux_getrandom\" \
-C link-arg=-Wl,-z,pack-relative-relocs ${RUSTFLAGS:-}"
cargo build --release --locked --target "$target" "$@" >&2
echo "$CARGO_TARGET_DIR/$target/release/initbox"
