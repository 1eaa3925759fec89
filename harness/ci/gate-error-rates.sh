#!/usr/bin/env bash
# Measures the regression gate's own error rates on this machine.
#
#   A/A:       N runs of the gate against the committed baseline, with no code
#              change; every run with any failing trial is a false alarm.
#   detection: N runs against a copy of the baseline whose warm-start values
#              are divided by SCALE (default 1.25), so the current code is a
#              25% warm-start regression; a run is a catch when a warm-start
#              trial fails.
#
# Usage: harness/ci/gate-error-rates.sh [N] [SCALE]   (defaults: 20, 1.25)
# Prints one line per run and a summary; also times each gate run.
set -euo pipefail
cd "$(dirname "$0")/../.."
n="${1:-20}"
scale="${2:-1.25}"
cargo test --release --test gate --no-run -q 2>/dev/null
runner="$(SITEBOSS_RECORD=1 cargo test --release -q --test gate -- --list 2>/dev/null \
  | sed -n 's/^record::hello::\(.*\): test$/\1/p')"
baseline="baselines/$runner.snap"
[[ -f "$baseline" ]] || { echo "no committed baseline $baseline for this runner" >&2; exit 2; }

scaled="$(mktemp -d)"
trap 'rm -rf "$scaled"' EXIT
# Scale only the measured values under "metrics", not the references.
awk -v s="$scale" '/"metrics":/ { m = 1 } /"references":/ { m = 0 }
  m && /"warm-start":/ { match($0, /[0-9.]+/); v = substr($0, RSTART, RLENGTH) / s; sub(/[0-9.]+/, sprintf("%.1f", v)) }
  { print }' \
  "$baseline" > "$scaled/$runner.snap"

false_alarms=0; caught=0; caught_pooling=0; caught_on_demand=0; total_time=0
for i in $(seq 1 "$n"); do
  t0=$(date +%s.%N)
  if out="$(cargo test --release -q --test gate 2>&1)"; then aa=pass; else aa=FAIL; false_alarms=$((false_alarms + 1)); fi
  t1=$(date +%s.%N)
  total_time=$(echo "$total_time + $t1 - $t0" | bc)
  fails="$(grep -o "^REGRESSION: gate::[^ ]*\|^cannot judge.*" <<<"$out" | tr "\n" " " || true)"
  if det="$(SITEBOSS_BASELINE_DIR="$scaled" cargo test --release -q --test gate -- warm-start 2>&1)"; then d=missed; else d=caught; caught=$((caught + 1)); fi
  grep -q '^REGRESSION: gate::hello::pooling::warm-start' <<<"$det" && caught_pooling=$((caught_pooling + 1))
  grep -q '^REGRESSION: gate::hello::on-demand::warm-start' <<<"$det" && caught_on_demand=$((caught_on_demand + 1))
  ratios="$(grep -o "warm-start: [^(]*([0-9]* rounds, ratio [0-9.]*" <<<"$det" | sed "s/.*ratio /x/" | tr "\n" " " || true)"
  printf 'run %2d: A/A %s %s| 25%% regression %s (ratios %s)\n' "$i" "$aa" "$fails" "$d" "$ratios"
done
printf 'A/A false alarms: %d of %d runs\n' "$false_alarms" "$n"
printf '%s%% warm-start regression caught: %d of %d runs (pooling trial %d, on-demand trial %d)\n' \
  "$(echo "($scale - 1) * 100 / 1" | bc)" "$caught" "$n" "$caught_pooling" "$caught_on_demand"
printf 'mean wall time of one full gate run: %.1f s\n' "$(echo "$total_time / $n" | bc -l)"
