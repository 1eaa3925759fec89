#!/usr/bin/env bash
# The whole pull-request check, the same on a laptop and in GitHub Actions:
#
#   harness/ci/pr-gate.sh BASE_REV
#
#  1. builds the base revision (in a git worktree with its own target dir)
#     and the checked-out head, both release;
#  2. wall clock: `siteboss ab BASE HEAD`, the two builds in lock step, block
#     by block, so a slow minute of the machine hits both. A base older than
#     `siteboss ab` (no lock-step child) falls back, with a note, to K
#     interleaved pairs of whole `siteboss benchmark --quick` runs judged by
#     `siteboss compare`;
#  3. counted figures and the figures that need fresh processes (instructions,
#     system calls and page faults per operation, memory per instance, cold
#     start): one `siteboss benchmark` run of each build, judged by
#     `siteboss compare` (counts repeat to well under 1%, so one run each is
#     enough; a base without the counts phase is compared without it, with a
#     note);
#  4. the committed-baseline gate for this runner (cargo test --test gate);
#  5. writes one Markdown report (with Mermaid charts of the ratios), and
#     HTML pages with SVG charts: wall.html (lock-step ratios, one page per
#     component of the manifest), runs.html
#     (counted and fresh-process ratios), runs-head.html (the head's run).
#
# Environment:
#   PR_GATE_AB_ARGS     options for `siteboss ab` (default: none; its budget is 30 s)
#   PR_GATE_RUN_ARGS    options for the whole runs of step 3 (default "--quick --no-native")
#   PR_GATE_ROUNDS      K, the pairs of the fallback of step 2 (default 5)
#   PR_GATE_OUT         output directory (default target/pr-gate)
#   PR_GATE_SKIP_GATE=1 skips step 4
#   SITEBOSS_RUNNER, SITEBOSS_REQUIRE_BASELINE  passed to the gate (README.md)
#
# When BASE_REV is the checked-out commit and the tree is clean, the head
# binary stands in for the base (a cheap self-check: it must report no
# regression). Exit code: 0 no regression, 1 a regression or a metric that
# could not be judged, 2 could not run.
set -euo pipefail
[[ $# -eq 1 ]] || { echo "usage: $0 BASE_REV" >&2; exit 2; }
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
out="${PR_GATE_OUT:-$root/target/pr-gate}"
rounds="${PR_GATE_ROUNDS:-5}"
read -r -a ab_args <<<"${PR_GATE_AB_ARGS:-}"
read -r -a run_args <<<"${PR_GATE_RUN_ARGS:---quick --no-native}"
head_which=()
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
notes=()

# Step 2: wall clock.
set +e
probe="$(echo '{}' | "$base_bin" __lockstep 2>/dev/null)"
set -e
if [[ "$probe" == *'"response"'* ]]; then
  wall_rc=0
  if "$head_bin" ab --help 2>/dev/null | grep -q -- "--manifest" \
    && "$base_bin" ab --help 2>/dev/null | grep -q -- "--embedded"; then
    # Every component of the head's manifest, each with its own request,
    # profiles and tolerance overrides, one after another.
    echo "== siteboss ab (lock step), every component of assets/components.toml"
    set +e
    "$head_bin" ab "$base_bin" "$head_bin" --manifest "$root/assets/components.toml" "${ab_args[@]}" \
      --no-progress --markdown --json-file "$out/wall.json" --html "$out/wall.html" >"$out/wall.md"
    wall_rc=$?
    set -e
    wall_how="\`siteboss ab\`, base and head in lock step, every component of the manifest"
  else
    # A base that cannot measure the HTTP hello compares the CLI hello only.
    notes+=("The base build cannot measure the HTTP hello (it predates \`--embedded\`), so only the CLI hello was compared in lock step.")
    echo "== siteboss ab (lock step), embedded CLI hello"
    set +e
    "$head_bin" ab "$base_bin" "$head_bin" "${ab_args[@]}" --no-progress --markdown \
      --json-file "$out/wall.json" --html "$out/wall.html" >"$out/wall.md"
    wall_rc=$?
    set -e
    wall_how="\`siteboss ab\`, base and head in lock step (CLI hello)"
  fi
else
  echo "== the base predates siteboss ab: $rounds interleaved pairs of whole quick runs instead"
  notes+=("The base build has no lock-step child (it predates \`siteboss ab\`), so the wall-clock figures come from $rounds interleaved pairs of whole \`siteboss benchmark --quick\` runs, a blunter instrument.")
  files=()
  for i in $(seq 1 "$rounds"); do
    order=(base head); (( i % 2 == 0 )) && order=(head base)
    for side in "${order[@]}"; do
      bin="$base_bin"; [[ $side == head ]] && bin="$head_bin"
      "$bin" benchmark --quick --no-native --phases warm-start,lifecycle,throughput --no-progress \
        --json "$out/wall-$side-$i.json" >/dev/null
    done
    files+=("$out/wall-base-$i.json" "$out/wall-head-$i.json")
  done
  set +e
  "$head_bin" compare "${files[@]}" --markdown --html "$out/wall.html" \
    --tolerances "$root/baselines/tolerances.toml" >"$out/wall.md"
  wall_rc=$?
  set -e
  wall_how="$rounds interleaved pairs of whole runs (fallback)"
fi

# Step 3: counted figures and fresh-process figures, one run of each build.
phases="counts,memory,cold-start,cold-start-precompiled"
if ! "$base_bin" benchmark --help 2>/dev/null | grep -q "counts"; then
  phases="memory,cold-start,cold-start-precompiled"
  notes+=("The base build has no counts phase (it predates counted metrics), so instructions, system calls and page faults per operation are not compared.")
fi
# Every component of the head's manifest, when the base can read one;
# otherwise the embedded CLI hello on both sides.
which=(--manifest "$root/assets/components.toml")
if ! "$base_bin" benchmark --help 2>/dev/null | grep -q -- "--manifest"; then
  which=()
  "$head_bin" benchmark --help | grep -q -- "--embedded" && head_which=(--embedded cli)
  notes+=("The base build has no component manifest, so the counted and fresh-process figures are of the CLI hello only.")
fi
echo "== counted and fresh-process figures ($phases)"
for side in base head; do
  bin="$base_bin"; w=("${which[@]}")
  if [[ $side == head ]]; then bin="$head_bin"; [[ ${#which[@]} -eq 0 ]] && w=("${head_which[@]}"); fi
  # The head's page (tables and charts); the base may predate --html.
  extra=(); [[ $side == head ]] && extra=(--html "$out/runs-head.html")
  "$bin" benchmark "${w[@]}" "${run_args[@]}" --phases "$phases" --no-progress --json "$out/runs-$side.json" \
    "${extra[@]}" >/dev/null
done
set +e
"$head_bin" compare "$out/runs-base.json" "$out/runs-head.json" --markdown --html "$out/runs.html" \
  --tolerances "$root/baselines/tolerances.toml" >"$out/runs.md"
runs_rc=$?
"$head_bin" compare "$out/runs-base.json" "$out/runs-head.json" --json \
  --tolerances "$root/baselines/tolerances.toml" >"$out/runs.json" 2>/dev/null
set -e

# Step 4: the committed-baseline gate.
gate_rc=0
if [[ "${PR_GATE_SKIP_GATE:-0}" != 1 ]]; then
  echo "== committed-baseline gate"
  set +e
  cargo test --release --locked -q --test gate >"$out/gate.txt" 2>&1
  gate_rc=$?
  set -e
fi
cat "$out/wall.md" "$out/runs.md"

verdict() { case "$1" in 0) echo "passed" ;; 1) echo "FAILED" ;; *) echo "could not run" ;; esac; }
{
  echo "## siteboss pull-request gate"
  echo
  echo "base \`${base_sha:0:12}\`, head \`${head_sha:0:12}\`$same; $(( $(date +%s) - start )) s in all."
  echo
  for n in "${notes[@]}"; do echo "- $n"; done
  [[ ${#notes[@]} -gt 0 ]] && echo
  echo "### Wall clock: $wall_how ($(verdict $wall_rc))"
  echo
  sed 's/^### /#### /' "$out/wall.md"
  echo
  echo "### Counted and fresh-process figures: one run of each build ($(verdict $runs_rc))"
  echo
  sed 's/^### /#### /' "$out/runs.md"
  echo
  if [[ "${PR_GATE_SKIP_GATE:-0}" != 1 ]]; then
    echo "### Committed-baseline gate ($(verdict $(( gate_rc == 0 ? 0 : 1 ))))"
    echo
    echo '```'
    grep -E '^(gate::|test gate::|  |REGRESSION|cannot judge|warning:|test result|---- )' "$out/gate.txt" | cut -c1-240 || tail -20 "$out/gate.txt"
    echo '```'
  fi
} >"$out/report.md"
echo "== report: $out/report.md ($(( $(date +%s) - start )) s)"

for rc in $wall_rc $runs_rc; do [[ $rc -ge 2 ]] && exit 2; done
if [[ $wall_rc -ne 0 || $runs_rc -ne 0 || $gate_rc -ne 0 ]]; then exit 1; fi
exit 0
