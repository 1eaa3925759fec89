#!/usr/bin/env bash
# Measures `siteboss compare`'s own error rates on this machine.
#
#   A/A:       N interleaved runs of the same binary as base and head
#              (`siteboss benchmark $ARGS --json`); each BASE HEAD pair is
#              compared on its own, and all N pairs are compared together.
#   detection: the head files' warm-start figures (median and rounds) are
#              multiplied by 1.10 … 1.30 and compared again; a catch is a
#              REGRESSION on the pooling warm-start row.
#
# Usage: harness/ci/compare-error-rates.sh [N] [ARGS]
#        (defaults: 10, "--quick", the pr-gate default)
# Needs python3 to scale the JSON files.
set -euo pipefail
cd "$(dirname "$0")/../.."
n="${1:-10}"
read -r -a args <<<"${2:---quick}"
cargo build --release --locked -q --bin siteboss
bin="${CARGO_TARGET_DIR:-target}/release/siteboss"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
start=$(date +%s)
for i in $(seq 1 "$n"); do
  order=(base head); (( i % 2 == 0 )) && order=(head base)
  for side in "${order[@]}"; do
    "$bin" benchmark "${args[@]}" --no-progress --json "$out/$side-$i.json" >/dev/null
  done
done
echo "$n pairs measured in $(( $(date +%s) - start )) s"

pairs=(); for i in $(seq 1 "$n"); do pairs+=("$out/base-$i.json" "$out/head-$i.json"); done
judge() { # FILES... -> prints the verdict words of enforced rows that regressed, and the exit code
  set +e; "$bin" compare "$@" >"$out/cmp.txt"; local rc=$?; set -e
  echo "$rc $(grep -c REGRESSION "$out/cmp.txt" || true) $(grep -o '^[a-z-]* *[a-z-]* .*REGRESSION' "$out/cmp.txt" | awk '{print $1"/"$2}' | tr '\n' ' ')"
}
scale() { # FACTOR: writes head-*-FACTOR.json with warm-start scaled
  for i in $(seq 1 "$n"); do
    python3 - "$out/head-$i.json" "$out/head-$i-x$1.json" "$1" <<'PY'
import json, sys
src, dst, f = sys.argv[1], sys.argv[2], float(sys.argv[3])
r = json.load(open(src))
for c in r["configurations"]:
    w = c.get("warm_start")
    if w:
        for k in ("median", "p25", "p75", "p99", "min", "max", "mean"):
            w[k] *= f
        w["rounds"] = [x * f for x in w.get("rounds", [])]
json.dump(r, open(dst, "w"))
PY
  done
}

fa=0
for i in $(seq 1 "$n"); do
  read -r rc cnt which <<<"$(judge "$out/base-$i.json" "$out/head-$i.json")"
  [[ $rc -ne 0 ]] && fa=$((fa + 1))
  echo "A/A pair $i: exit $rc ${which:-}"
done
read -r rc cnt which <<<"$(judge "${pairs[@]}")"
echo "A/A single-pair false alarms: $fa of $n; all $n pairs together: exit $rc ${which:-}"

for f in 1.10 1.15 1.20 1.25 1.30; do
  scale "$f"
  caught=0
  for i in $(seq 1 "$n"); do
    "$bin" compare "$out/base-$i.json" "$out/head-$i-x$f.json" >"$out/cmp.txt" || true
    grep -q '^pooling *warm-start .*REGRESSION' "$out/cmp.txt" && caught=$((caught + 1))
  done
  all=(); for i in $(seq 1 "$n"); do all+=("$out/base-$i.json" "$out/head-$i-x$f.json"); done
  "$bin" compare "${all[@]}" >"$out/cmp.txt" || true
  together=missed; grep -q '^pooling *warm-start .*REGRESSION' "$out/cmp.txt" && together=caught
  echo "warm start x$f: caught in $caught of $n single pairs; all $n pairs together: $together"
done
