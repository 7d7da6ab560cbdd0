#!/usr/bin/env bash
# The whole test suite, as README.md documents it: installs and starts what the tests need
# (reusing services already running), then formatting, lints, unit and end-to-end tests, and the
# offline advisory check. Works on a fresh Debian/Ubuntu machine with Rust, as root or with sudo.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

for step in tests/setup/*.sh; do
  echo "== setup: ${step#tests/setup/}"
  # shellcheck source=/dev/null
  source "$step"
done

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== static release binary (scripts/build-static.sh)"
scripts/build-static.sh
echo "== cargo test"
cargo test --workspace --locked --no-fail-fast

if command -v cargo-deny >/dev/null 2>&1 && [ -x ../shared/tools/check-advisories ]; then
  echo "== advisories (offline RustSec snapshot)"
  ../shared/tools/check-advisories
else
  echo "== advisories: skipped (cargo-deny not installed: cargo install --locked cargo-deny)"
fi
