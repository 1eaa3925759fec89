#!/usr/bin/env bash
# Rebuilds the two realistic test components from their Rust source:
#   assets/realistic/json-regex.wasm   serde_json + regex, ~4 ms of work per run
#   assets/realistic/mem-writer.wasm   writes 32 MiB of linear memory per run
#
# Needs, once:
#   rustup target add wasm32-wasip2
# Both outputs are committed, so building and testing siteboss never needs it.
#
# Each is a plain std command component (`fn main`, exporting wasi:cli/run)
# in the standard packaging that rustc's linker, wasm-component-ld, writes.
# `strip = true` in each Cargo.toml drops the names and debug sections.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
for name in json-regex mem-writer; do
  (cd "$here/$name" && cargo build --release --locked --target wasm32-wasip2)
  cp "$here/$name/target/wasm32-wasip2/release/$name.wasm" "$here/$name.wasm"
  echo "assets/realistic/$name.wasm: $(wc -c < "$here/$name.wasm") bytes, sha256 $(sha256sum "$here/$name.wasm" | cut -d' ' -f1)"
done
