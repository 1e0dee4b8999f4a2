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

# kubectl is on the machine image; the interop suite (tests/tests/kubectl.rs) needs it.
command -v kubectl >/dev/null || { echo "missing kubectl (the interop tests run it)"; exit 1; }

cargo nextest run --workspace --no-fail-fast "$@"
# Doc tests (nextest does not run them).
cargo test --workspace --doc
# The README's main command, on the embedded API server (exits once the sample reconciled).
env -u KUBECONFIG cargo run -q --example quickstart -- --once
