#!/usr/bin/env bash
# Rebuilds sandbox-probe.wasm, the component the `sandbox` test runs, from
# src/main.rs. Needs, once: rustup target add wasm32-wasip2. The output is
# committed, so the tests never need the wasm target.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
(cd "$here" && cargo build --release --locked --target wasm32-wasip2)
cp "$here/target/wasm32-wasip2/release/sandbox-probe.wasm" "$here/sandbox-probe.wasm"
echo "sandbox-probe.wasm: $(wc -c < "$here/sandbox-probe.wasm") bytes"
