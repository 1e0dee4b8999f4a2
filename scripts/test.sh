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

# The chart test (tests/tests/helm.rs) renders and lints with real Helm (the Helm v4 SDK through
# helm-python-sdk) and validates against the Kubernetes schemas offline; the interop suite runs
# the Python `kubernetes` client (tests/python/interop.py).
if ! python3 -c "import helm_python, kubernetes_validate, yaml, kubernetes" 2>/dev/null; then
  echo "installing helm-python-sdk, kubernetes-validate, pyyaml and kubernetes"
  python3 -m pip install --quiet --disable-pip-version-check "helm-python-sdk==0.2.2" "kubernetes-validate==1.37.0" "pyyaml>=6" "kubernetes==33.1.0"
fi

# The operator template test (tests/tests/template.rs) runs the real cargo-generate; the binary
# stays in ~/.cargo/bin, so later runs skip this (~6 minutes on 2 cores).
if ! cargo generate --version 2>/dev/null | grep -q "0\.23\.7"; then
  echo "installing cargo-generate 0.23.7"
  cargo install cargo-generate@0.23.7 --locked
fi

# kubectl is on the machine image; the interop suite (tests/tests/kubectl.rs) needs it.
command -v kubectl >/dev/null || { echo "missing kubectl (the interop tests run it)"; exit 1; }

cargo nextest run --workspace --no-fail-fast "$@"
# Doc tests (nextest does not run them).
cargo test --workspace --doc
# The README's main command, on the embedded API server (exits once the sample reconciled).
env -u KUBECONFIG cargo run -q --example quickstart -- --once
