#!/usr/bin/env bash
# Rebuilds the embedded component, assets/hello.wasm, from the Rust source in
# assets/hello/, and the same code in wit-component's standard packaging,
# assets/hello-wit-component.wasm, which the README compares it with.
#
# Needs, once:
#   rustup target add wasm32-wasip2
#   cargo install wasm-tools --locked     # tested with 1.263
# Both outputs are committed, so nothing else in the project needs these.
#
# Steps:
#   1. Standard packaging: cargo build for wasm32-wasip2 (2 KiB stack, from
#      hello/.cargo/config.toml); wasm-component-ld wraps the core module
#      with wit-component, which adds a shim and a fixup module.
#   2. Lean packaging: the same build with two more linker flags passed
#      through wasm-component-ld:
#        --import-memory        the Rust module imports "env" "memory"
#        --skip-wit-component   write the core module, not a component
#      then strip custom sections, check the module's imports and exports
#      are exactly the ones component.wat.in wires, splice its text into
#      component.wat.in, and `wasm-tools parse` + `validate` the result.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build="$here/hello/target/siteboss-assets"
mkdir -p "$build"

# 1. Standard packaging (run from hello/ so its .cargo/config.toml applies).
(cd "$here/hello" && cargo build --release --locked --target wasm32-wasip2)
cp "$here/hello/target/wasm32-wasip2/release/hello.wasm" "$here/hello-wit-component.wasm"

# 2. Lean packaging (run from assets/ so hello/.cargo/config.toml is not
# picked up; its stack flag is given explicitly with the two others).
(cd "$here" && cargo build \
  --manifest-path hello/Cargo.toml \
  --release --locked \
  --target wasm32-wasip2 \
  --target-dir "$build/target" \
  --config 'target.wasm32-wasip2.rustflags=["-C","link-arg=-zstack-size=2048","-C","link-arg=--import-memory","-C","link-arg=--skip-wit-component"]')
wasm-tools strip -a "$build/target/wasm32-wasip2/release/hello.wasm" -o "$build/core.wasm"
wasm-tools validate "$build/core.wasm"
wasm-tools print "$build/core.wasm" > "$build/core.wat"

actual="$(grep -E '^\s*\((import|export) ' "$build/core.wat" \
  | sed -E 's/^\s*//; s/ \((func|memory) \(;[0-9]+;\).*//; s/ \(func [0-9]+\)\)$//')"
expected='(import "env" "memory"
(import "wasi:cli/stdout@0.2.12" "get-stdout"
(import "wasi:io/streams@0.2.12" "[method]output-stream.blocking-write-and-flush"
(import "wasi:io/error@0.2.12" "[resource-drop]error"
(import "wasi:io/streams@0.2.12" "[resource-drop]output-stream"
(export "wasi:cli/run@0.2.12#run"'
if [[ "$actual" != "$expected" ]]; then
  echo "build.sh: the core module's imports/exports changed; update component.wat.in" >&2
  echo "expected:" >&2; echo "$expected" >&2; echo "actual:" >&2; echo "$actual" >&2
  exit 1
fi

sed '1s/^(module$/  (core module $main/' "$build/core.wat" > "$build/core-module.wat"
sed -e '/^;;@CORE_MODULE@$/{r '"$build/core-module.wat" -e 'd}' "$here/component.wat.in" > "$build/hello.wat"
wasm-tools parse "$build/hello.wat" -o "$here/hello.wasm"
wasm-tools validate --features component-model "$here/hello.wasm"
echo "assets/hello.wasm: $(wc -c < "$here/hello.wasm") bytes (embedded)"
echo "assets/hello-wit-component.wasm: $(wc -c < "$here/hello-wit-component.wasm") bytes (standard packaging)"
