#!/usr/bin/env bash
# Runs every test of the workspace, installing what the tests need first.
# Usage: scripts/test.sh [extra cargo-nextest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."

# cargo-nextest runs each test in its own process (tests may change their environment).
if ! cargo nextest --version >/dev/null 2>&1; then
  echo "installing cargo-nextest"
  cargo install cargo-nextest --locked
fi
# The exec-plugin tests run small /bin/sh scripts that use GNU date.
for tool in sh date; do
  command -v "$tool" >/dev/null || { echo "missing $tool (install coreutils)"; exit 1; }
done

cargo nextest run --workspace --no-fail-fast "$@"
# Doc tests (nextest does not run them).
cargo test --workspace --doc
