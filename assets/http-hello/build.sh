#!/usr/bin/env bash
# Rebuilds assets/http-hello.wasm, the wasi:http/proxy hello component, from
# the Rust source in assets/http-hello/.
#
# Needs, once:
#   rustup target add wasm32-wasip2
#   cargo install wasm-tools --locked     # tested with 1.263.0
# The output is committed, so nothing else in the project needs these.
#
# Steps:
#   1. cargo build for wasm32-wasip2 (no_std, 2 KiB shadow stack from
#      .cargo/config.toml); rustc's linker, wasm-component-ld, wraps the core
#      module into a component with wit-component (the standard packaging:
#      main module, shim and fixup modules).
#   2. wasm-tools strip --all: drop the custom sections (component-name,
#      producers). Nothing at run time reads them; the core module's own
#      names are already stripped by `strip = true`.
#   3. Check the component's world is exactly the expected one (three
#      imports, one export), then validate it.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$here/../http-hello.wasm"

(cd "$here" && cargo build --release --locked --target wasm32-wasip2)
wasm-tools strip --all "$here/target/wasm32-wasip2/release/http_hello.wasm" -o "$out"
wasm-tools validate "$out"

actual="$(wasm-tools component wit "$out" | sed -n '/^world root {$/,/^}$/p')"
expected='world root {
  import wasi:io/error@0.2.12;
  import wasi:io/streams@0.2.12;
  import wasi:http/types@0.2.12;

  export wasi:http/incoming-handler@0.2.12;
}'
if [[ "$actual" != "$expected" ]]; then
  echo "build.sh: the component's world changed; update README.md and this check" >&2
  echo "expected:" >&2; echo "$expected" >&2; echo "actual:" >&2; echo "$actual" >&2
  exit 1
fi
echo "assets/http-hello.wasm: $(wc -c < "$out") bytes, sha256 $(sha256sum "$out" | cut -d' ' -f1)"
