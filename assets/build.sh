#!/usr/bin/env bash
# Rebuilds assets/hello.wasm, the component embedded in siteboss, from
# assets/hello/. Needs the wasm32-wasip2 target once:
#   rustup target add wasm32-wasip2
# The built file is committed, so nothing else in the project needs this.
set -euo pipefail
cd "$(dirname "$0")/hello"
cargo build --release --target wasm32-wasip2 --locked
cp target/wasm32-wasip2/release/hello.wasm ../hello.wasm
echo "assets/hello.wasm: $(wc -c < ../hello.wasm) bytes"
