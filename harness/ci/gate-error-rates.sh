#!/usr/bin/env bash
# The regression gate's false-alarm rate on this machine, with no code change:
# records a fresh baseline (timed and counted) into a temporary directory,
# then runs the whole gate N times against it. A run with any failing trial
# is a false alarm; counted and timed trials are tallied apart.
#
# Detection is measured on real code changes by harness/ci/regressions.sh,
# not by scaling a stored baseline.
#
# Usage: harness/ci/gate-error-rates.sh [N]   (default 20)
# Prints one line per run and a summary; also times each gate run. The
# gate's whole output of every false alarm, and the baseline it was judged
# against, are kept in a new directory under $SITEBOSS_GATE_KEEP (default
# target/gate-error-rates/ of the checkout), so a false alarm can be read
# afterwards: which figure, by how much, against which tolerance.
set -euo pipefail
keep_root="${SITEBOSS_GATE_KEEP:+$(realpath -m "$SITEBOSS_GATE_KEEP")}"
cd "$(dirname "$0")/../.."
keep_root="${keep_root:-$PWD/target/gate-error-rates}"
n="${1:-20}"
cargo test --release --locked --test gate --no-run -q 2>/dev/null
mkdir -p "$keep_root"
keep="$(mktemp -d "$keep_root/run-$(date +%Y%m%d-%H%M%S)-XXXX")"
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
cp baselines/tolerances.toml "$dir/"
echo "== recording a fresh baseline into $dir"
SITEBOSS_RECORD=1 SITEBOSS_BASELINE_DIR="$dir" cargo test --release -q --locked --test gate >/dev/null 2>&1
for f in "$dir"/*.snap.new; do mv "$f" "${f%.new}"; done
ls "$dir"/*.snap
cp "$dir"/*.snap "$dir"/tolerances.toml "$keep/"

alarms=0; counted_alarms=0; timed_alarms=0; total_time=0
for i in $(seq 1 "$n"); do
  t0=$(date +%s.%N)
  set +e
  out="$(SITEBOSS_BASELINE_DIR="$dir" SITEBOSS_REQUIRE_BASELINE=1 cargo test --release -q --locked --test gate 2>&1)"
  rc=$?
  set -e
  t1=$(date +%s.%N)
  total_time=$(echo "$total_time + $t1 - $t0" | bc)
  fails="$(grep -o "^\(REGRESSION\|cannot judge\): gate::[^ ]*" <<<"$out" | sed 's/^[^:]*: //' | tr "\n" " " || true)"
  counted=0; timed=0
  for t in $fails; do
    case "$t" in
      *::instructions-*|*::syscalls-*|*::page-faults-*|*::memory-per-instance) counted=1 ;;
      *) timed=1 ;;
    esac
  done
  if [[ $rc -ne 0 ]]; then
    alarms=$((alarms + 1))
    printf '%s\n' "$out" > "$keep/false-alarm-run-$i.txt"
  fi
  counted_alarms=$((counted_alarms + counted)); timed_alarms=$((timed_alarms + timed))
  passed="$(grep -o '[0-9]* passed; [0-9]* failed; [0-9]* ignored' <<<"$out" | tail -1)"
  printf 'run %2d: %s (%s) %s\n' "$i" "$([[ $rc -eq 0 ]] && echo pass || echo FALSE-ALARM)" "$passed" "$fails"
done
printf 'A/A with a fresh baseline, all trials: %d false alarm(s) in %d runs\n' "$alarms" "$n"
printf '  runs with a counted trial failing: %d; with a timed trial failing: %d\n' "$counted_alarms" "$timed_alarms"
printf 'mean wall time of one full gate run: %.1f s\n' "$(echo "$total_time / $n" | bc -l)"
if [[ $alarms -gt 0 ]]; then
  printf 'each false alarm'"'"'s gate output, and the baseline: %s/\n' "$keep"
fi
