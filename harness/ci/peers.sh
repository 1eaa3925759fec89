#!/usr/bin/env bash
# Measures the peers a user would pick instead of siteboss's runtime, on the
# same machine and components, in one run, beside siteboss's own figures in
# the same units:
#
#   - `wasmtime serve` requests/s on the embedded HTTP hello
#     (assets/http-hello.wasm), loaded by wrk on loopback, against siteboss's
#     HTTP lifecycles/s (instantiate, serve one request, read the body, drop)
#     with 1 thread and with every core;
#   - `wasmtime run --allow-precompiled` whole-process cold start (hyperfine)
#     on the embedded CLI hello (assets/hello.wasm), against siteboss's
#     `cold_start_precompiled.process` (a fresh siteboss process that builds
#     its engine, loads the artifact, instantiates, runs and exits);
#   - `wasmtime run -C cache=n` from .wasm against siteboss's
#     `cold_start.process`.
#
# Usage: harness/ci/peers.sh [ROUNDS]    (default 5; each round measures peer and siteboss back to back)
# Env:   WASMTIME_ROOT (default ~/.local/wasmtime-48), PEERS_SECONDS (wrk, default 10)
# Needs: cargo (installs wasmtime-cli 48.0.8 once, ~15 min on 2 cores), and
#        apt-get for wrk and hyperfine. Not run by .ci/run.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
rounds="${1:-5}"
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || { echo "peers.sh: ROUNDS must be a positive integer, not '$rounds'" >&2; exit 2; }
secs="${PEERS_SECONDS:-10}"
wroot="${WASMTIME_ROOT:-$HOME/.local/wasmtime-48}"
wasmtime="$wroot/bin/wasmtime"
if [[ ! -x "$wasmtime" ]] || ! "$wasmtime" --version | grep -q '^wasmtime 48\.0\.8'; then
  echo "peers.sh: installing wasmtime-cli 48.0.8 into $wroot" >&2
  # A kept target directory: an install that is stopped resumes where it was.
  cargo install wasmtime-cli --version 48.0.8 --locked --root "$wroot" --target-dir "$wroot/build"
fi
for tool in wrk hyperfine; do
  if ! command -v "$tool" >/dev/null; then
    echo "peers.sh: installing $tool" >&2
    (apt-get update -qq && apt-get install -y -qq "$tool") >/dev/null
  fi
done
(cd "$root" && cargo build --release --quiet --bin siteboss)
siteboss="$root/target/release/siteboss"
work="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
http_wasm="$root/assets/http-hello.wasm"
cli_wasm="$root/assets/hello.wasm"
"$wasmtime" compile "$cli_wasm" -o "$work/hello.cwasm"


serve_rps=(); ours1=(); ours_all=(); run_pre=(); run_wasm=(); our_pre=(); our_wasm=()
for r in $(seq 1 "$rounds"); do
  echo "round $r/$rounds: wasmtime serve + wrk" >&2
  port=$((18000 + r))
  "$wasmtime" serve --addr "127.0.0.1:$port" "$http_wasm" >"$work/serve.log" 2>&1 &
  spid=$!
  for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/" >/dev/null 2>&1 && break; sleep 0.1; done
  body="$(curl -sf "http://127.0.0.1:$port/")" || { echo "peers.sh: wasmtime serve did not answer" >&2; cat "$work/serve.log" >&2; exit 2; }
  [[ "$body" == "Hello, world!" ]] || { echo "peers.sh: unexpected body: $body" >&2; exit 2; }
  wrk -t2 -c16 -d2s "http://127.0.0.1:$port/" >/dev/null            # warm-up
  rps="$(wrk -t2 -c16 -d"${secs}s" "http://127.0.0.1:$port/" | awk '/Requests\/sec/ {print $2}')"
  kill "$spid"; wait "$spid" 2>/dev/null || true
  [[ -n "$rps" ]] || { echo "peers.sh: wrk reported no Requests/sec" >&2; exit 2; }
  serve_rps+=("$rps")

  echo "round $r/$rounds: siteboss HTTP throughput" >&2
  "$siteboss" benchmark --embedded http --allocator pooling --phases throughput \
    --no-native --no-progress --json "$work/ours.json" >/dev/null
  read -r one all < <(python3 - "$work/ours.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
t = r["configurations"][0]["throughput"]
one = [x for x in t if x["threads"] == 1][0]["lifecycles"]["median"]
best = max(t, key=lambda x: x["threads"])["lifecycles"]["median"]
print(one, best)
PY
)
  ours1+=("$one"); ours_all+=("$all")

  echo "round $r/$rounds: cold starts (hyperfine, siteboss)" >&2
  hyperfine -N --warmup 5 --runs 40 --export-json "$work/h.json" \
    "$wasmtime run --allow-precompiled $work/hello.cwasm" \
    "$wasmtime run -C cache=n $cli_wasm" >/dev/null 2>&1
  read -r pre wasm < <(python3 -c "
import json; h=json.load(open('$work/h.json'))['results']
print(h[0]['median']*1e3, h[1]['median']*1e3)")
  run_pre+=("$pre"); run_wasm+=("$wasm")
  "$siteboss" benchmark --embedded cli --allocator pooling \
    --phases cold-start,cold-start-precompiled --no-native --no-progress --json "$work/cold.json" >/dev/null
  read -r opre owasm < <(python3 -c "
import json; c=json.load(open('$work/cold.json'))['configurations'][0]
print(c['cold_start_precompiled']['process']['median']/1e6, c['cold_start']['process']['median']/1e6)")
  our_pre+=("$opre"); our_wasm+=("$owasm")
done

cpu="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
printf '\n## Peers, same machine, same script run (%s, %s vCPU; siteboss %s; %s round(s))\n\n' "$cpu" "$(nproc)" "$(git -C "$root" describe --always --dirty 2>/dev/null || echo unknown)" "$rounds"
# Medians over rounds, each round in brackets; the ratio is the median of
# the rounds' own ratios (peer and siteboss measured seconds apart, in the
# same round), so a slow spell that spans a round cancels out.
python3 - "${serve_rps[*]}" "${ours_all[*]}" "${ours1[*]}" "${run_pre[*]}" "${our_pre[*]}" "${run_wasm[*]}" "${our_wasm[*]}" <<'PY'
import statistics as st, sys
serve, ours_all, ours1, run_pre, our_pre, run_wasm, our_wasm = ([float(x) for x in a.split()] for a in sys.argv[1:])
def cell(v, unit, fmt):
    return f"{fmt.format(st.median(v))}{unit} [{' '.join(fmt.format(x) for x in v)}]"
def ratio(ours, peer, fmt):
    r = [o / p for o, p in zip(ours, peer, strict=True)]
    return f"{fmt.format(st.median(r))}x [{' '.join(fmt.format(x) for x in r)}]"
print("| figure | peer | siteboss | siteboss / peer, per round |")
print("|---|---|---|---|")
print(f"| HTTP hello, every core: requests/s vs lifecycles/s | wasmtime serve + wrk -t2 -c16: {cell(serve, '/s', '{:.0f}')} | pooling: {cell(ours_all, '/s', '{:.0f}')} | {ratio(ours_all, serve, '{:.1f}')} |")
print(f"| HTTP hello, siteboss with 1 thread | (as above) | {cell(ours1, '/s', '{:.0f}')} | {ratio(ours1, serve, '{:.1f}')} |")
print(f"| CLI hello: whole-process cold start from an artifact | wasmtime run --allow-precompiled: {cell(run_pre, ' ms', '{:.2f}')} | cold_start_precompiled.process: {cell(our_pre, ' ms', '{:.2f}')} | {ratio(our_pre, run_pre, '{:.2f}')} |")
print(f"| CLI hello: whole-process cold start from .wasm, no cache | wasmtime run -C cache=n: {cell(run_wasm, ' ms', '{:.2f}')} | cold_start.process: {cell(our_wasm, ' ms', '{:.2f}')} | {ratio(our_wasm, run_wasm, '{:.2f}')} |")
PY
printf '\nThe HTTP ratio divides lifecycles/s (fresh instance per request, served in process, no sockets) by\nrequests/s over loopback TCP with wrk on the same 2 vCPUs: it is what a host gains by\ninstantiating per request, not a like-for-like network figure.\n'
