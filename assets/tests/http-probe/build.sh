#!/usr/bin/env bash
# Rebuilds http-probe.wasm, the HTTP handler the `http` tests serve, from
# src/lib.rs. Needs, once: rustup target add wasm32-wasip2. The output is
# committed, so the tests never need the wasm target.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
(cd "$here" && cargo build --release --target wasm32-wasip2)
cp "$here/target/wasm32-wasip2/release/http_probe.wasm" "$here/http-probe.wasm"
echo "http-probe.wasm: $(wc -c < "$here/http-probe.wasm") bytes"
