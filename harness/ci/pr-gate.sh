#!/usr/bin/env bash
# The whole pull-request check, the same on a laptop and in GitHub Actions:
#
#   harness/ci/pr-gate.sh BASE_REV
#
#  1. builds the base revision (in a git worktree with its own target dir)
#     and the checked-out head, both release;
#  2. runs them interleaved, K rounds of `siteboss benchmark --quick --json`,
#     alternating which goes first (BASE HEAD, HEAD BASE, ...) so neither
#     side always runs on a machine the other has just warmed;
#  3. `siteboss compare` judges head against base with baselines/tolerances.toml,
#     per pair; a regression must hold up: when the first K pairs show one,
#     K more are run and the verdict is on all 2K;
#  4. runs the committed-baseline gate for this runner (cargo test --test gate);
#  5. writes one Markdown report.
#
# Environment:
#   PR_GATE_ROUNDS   K, the interleaved rounds (default 5)
#   PR_GATE_ARGS     benchmark options (default "--quick")
#   PR_GATE_OUT      output directory (default target/pr-gate)
#   SITEBOSS_RUNNER, SITEBOSS_REQUIRE_BASELINE  passed to the gate (README.md)
#
# When BASE_REV is the checked-out commit and the tree is clean, the head
# binary stands in for the base (a cheap self-check: it must report no
# regression). Exit code: 0 no regression, 1 a regression (compare or gate),
# 2 could not run.
set -euo pipefail
[[ $# -eq 1 ]] || { echo "usage: $0 BASE_REV" >&2; exit 2; }
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
out="${PR_GATE_OUT:-$root/target/pr-gate}"
rounds="${PR_GATE_ROUNDS:-5}"
read -r -a bench_args <<<"${PR_GATE_ARGS:---quick}"
target="${CARGO_TARGET_DIR:-$root/target}"
start=$(date +%s)
rm -rf "$out"; mkdir -p "$out"

base_sha="$(git rev-parse --verify "$1^{commit}")" || { echo "pr-gate: unknown revision $1" >&2; exit 2; }
head_sha="$(git rev-parse HEAD)"
echo "== building head $head_sha"
cargo build --release --locked --bin siteboss -q
head_bin="$target/release/siteboss"

if [[ "$base_sha" == "$head_sha" && -z "$(git status --porcelain --untracked-files=no)" ]]; then
  echo "== base is the checked-out commit: the head binary stands in for it"
  base_bin="$head_bin"
  same=" (same binary: a self-check)"
else
  echo "== building base $base_sha in a worktree"
  worktree="$out/base-src"
  git worktree add --detach --force "$worktree" "$base_sha" -q
  trap 'git -C "$root" worktree remove --force "$worktree" >/dev/null 2>&1 || true' EXIT
  (cd "$worktree" && CARGO_TARGET_DIR="$out/base-target" cargo build --release --locked --bin siteboss -q)
  base_bin="$out/base-target/release/siteboss"
  same=""
fi

files=()
run_pairs() { # FIRST LAST
  for i in $(seq "$1" "$2"); do
    order=(base head); (( i % 2 == 0 )) && order=(head base)
    for side in "${order[@]}"; do
      bin="$base_bin"; [[ $side == head ]] && bin="$head_bin"
      echo "== round $i: $side"
      "$bin" benchmark "${bench_args[@]}" --no-progress --json "$out/$side-$i.json" >/dev/null
    done
    files+=("$out/base-$i.json" "$out/head-$i.json")
  done
}
compare_md() {
  "$head_bin" compare "${files[@]}" --markdown --tolerances "$root/baselines/tolerances.toml" >"$out/compare.md"
}

run_pairs 1 "$rounds"
echo "== siteboss compare"
set +e
compare_md
compare_rc=$?
confirmed=""
if [[ $compare_rc -eq 1 ]]; then
  echo "== a regression after $rounds pairs: $rounds more pairs to confirm it"
  set -e
  run_pairs $((rounds + 1)) $((2 * rounds))
  set +e
  compare_md
  compare_rc=$?
  confirmed=" A regression in the first $rounds pairs triggered $rounds more; the verdict is on all $((2 * rounds))."
fi
"$head_bin" compare "${files[@]}" --json --tolerances "$root/baselines/tolerances.toml" >"$out/compare.json"
echo "== committed-baseline gate"
cargo test --release --locked -q --test gate >"$out/gate.txt" 2>&1
gate_rc=$?
set -e
cat "$out/compare.md"

{
  echo "## siteboss pull-request gate"
  echo
  echo "base \`${base_sha:0:12}\`, head \`${head_sha:0:12}\`$same; $(( ${#files[@]} / 2 )) interleaved pairs of \`siteboss benchmark ${bench_args[*]}\`; $(( $(date +%s) - start )) s in all.$confirmed"
  echo
  sed 's/^### /#### /' "$out/compare.md"
  echo
  echo "### Committed-baseline gate ($( [[ $gate_rc -eq 0 ]] && echo passed || echo FAILED ))"
  echo
  echo '```'
  grep -E '^(gate::|  |REGRESSION|cannot judge|warning:|test result|---- )' "$out/gate.txt" || tail -20 "$out/gate.txt"
  echo '```'
} >"$out/report.md"
echo "== report: $out/report.md ($(( $(date +%s) - start )) s)"

if [[ $compare_rc -eq 2 ]]; then exit 2; fi
if [[ $compare_rc -ne 0 || $gate_rc -ne 0 ]]; then exit 1; fi
exit 0
