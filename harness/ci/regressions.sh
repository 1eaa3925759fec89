#!/usr/bin/env bash
# Proves the gate on real code changes. For each patch in
# harness/ci/regressions/ (or those named): applies it to a git worktree of
# HEAD, builds it, and runs the committed-baseline gate RUNS times against
# HEAD's baselines, exactly as a pull request that made the change would be
# judged. Prints one Markdown table: each patch's effect on the main figures
# (the median over runs of the gate's own measured/baseline ratios, counted
# and wall clock) and in how many runs the gate caught it, with the trials
# that failed.
#
# Usage: harness/ci/regressions.sh [RUNS] [PATCH.patch ...]
#   RUNS                 gate runs per patch (default 5)
#   REGRESSIONS_GATE_ARGS  arguments for the gate's test binary, such as a filter,
#                        or `--skip ::warm-start --skip ::lifecycle --skip ::throughput
#                        --skip ::cold-start` for the counted trials only (default: none)
#   REGRESSIONS_OUT      output directory (default target/regressions)
# The worktrees share one target directory, so each patch rebuilds only
# this crate. Needs python3 and valgrind, like the gate.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
runs="${1:-5}"
shift || true
patches=("$@")
[[ ${#patches[@]} -gt 0 ]] || patches=(harness/ci/regressions/*.patch)
out="${REGRESSIONS_OUT:-$root/target/regressions}"
read -r -a gate_args <<<"${REGRESSIONS_GATE_ARGS:-}"
mkdir -p "$out"
target="$out/target"
head_sha="$(git rev-parse --short=12 HEAD)"
start=$(date +%s)

results="$out/results.tsv"
: >"$results"
for patch in "${patches[@]}"; do
  name="$(basename "$patch" .patch)"
  wt="$out/wt-$name"
  git worktree remove --force "$wt" >/dev/null 2>&1 || rm -rf "$wt"
  git worktree add --detach --force "$wt" HEAD -q
  if ! git -C "$wt" apply "$root/$patch" 2>"$out/$name.apply.txt"; then
    echo "== $name: does not apply to HEAD: $(head -1 "$out/$name.apply.txt")"
    printf '%s\tdoes not apply\n' "$name" >>"$results"
    git worktree remove --force "$wt"
    continue
  fi
  echo "== $name: building"
  (cd "$wt" && CARGO_TARGET_DIR="$target" cargo test --release --locked --test gate --no-run -q 2>"$out/$name.build.txt") || {
    echo "== $name: does not build (see $out/$name.build.txt)"
    printf '%s\tdoes not build\n' "$name" >>"$results"
    git worktree remove --force "$wt"
    continue
  }
  caught=0
  # Outputs of an earlier, longer series would otherwise join this one's
  # summary (the table reads every $name.gate-*.txt).
  rm -f "$out/$name".gate-*.txt
  for i in $(seq 1 "$runs"); do
    set +e
    (cd "$wt" && CARGO_TARGET_DIR="$target" SITEBOSS_REQUIRE_BASELINE=1 \
      cargo test --release --locked -q --test gate -- "${gate_args[@]}" >"$out/$name.gate-$i.txt" 2>&1)
    rc=$?
    set -e
    [[ $rc -ne 0 ]] && caught=$((caught + 1))
    echo "   run $i: $([[ $rc -eq 0 ]] && echo passed || echo CAUGHT)"
  done
  printf '%s\t%d\t%d\n' "$name" "$caught" "$runs" >>"$results"
  git worktree remove --force "$wt"
done

python3 - "$out" "$results" "$head_sha" "$runs" <<'PY'
import re, sys, statistics, glob, os
out, results, head, runs = sys.argv[1:5]
# "gate::hello::pooling::warm-start: 2.4 µs vs baseline ... ratio 1.012, ..." (passing
# trials) and "  ratio:     1.012 (95% CI ...)" after "REGRESSION: gate::..." (failing ones).
line = re.compile(r'(?:^|\.\.\. )(gate::\S+): .*? ratio ([0-9.]+|—),')
fail = re.compile(r'^(REGRESSION|cannot judge): (gate::\S+)')
ratio = re.compile(r'^\s+ratio:\s+([0-9.]+|—)')
cols = [
    ("instructions/lifecycle", "instructions-lifecycle"),
    ("instructions/warm start", "instructions-warm-start"),
    ("syscalls/lifecycle", "syscalls-lifecycle"),
    ("page faults/lifecycle", "page-faults-lifecycle"),
    ("bytes/instance", "memory-per-instance"),
    ("lifecycle (wall)", "lifecycle"),
    ("warm start (wall)", "warm-start"),
]
print(f"Patches applied to `{head}`, each judged by `cargo test --release --test gate` "
      f"against HEAD's committed baselines, {runs} run(s) per patch. Effects are the median over runs "
      "of the gate's measured/baseline ratio, pooling / on-demand; — where the baseline is zero.\n")
print("| patch | " + " | ".join(c[0] for c in cols) + " | caught | trials that failed |")
print("|" + "---|" * (len(cols) + 3))
for row in open(results):
    f = row.rstrip("\n").split("\t")
    name = f[0]
    if len(f) == 2:
        print(f"| {name} | " + " | ".join("" for _ in cols) + f" | {f[1]} | |")
        continue
    caught, n = int(f[1]), int(f[2])
    ratios, failed = {}, {}
    for path in sorted(glob.glob(os.path.join(out, f"{name}.gate-*.txt"))):
        pending = None
        for l in open(path, errors="replace"):
            m = line.search(l)
            if m:
                ratios.setdefault(m.group(1), []).append(m.group(2))
            m = fail.match(l)
            if m:
                pending = m.group(2)
                failed[pending] = failed.get(pending, 0) + 1
            m = ratio.match(l)
            if m and pending:
                ratios.setdefault(pending, []).append(m.group(1))
                pending = None
    def eff(metric):
        cells = []
        for prof in ("pooling", "on-demand"):
            vals = ratios.get(f"gate::hello::{prof}::{metric}", [])
            nums = [float(v) for v in vals if v != "—"]
            cells.append(f"{statistics.median(nums):.3f}×" if nums else ("—" if vals else "n/a"))
        return " / ".join(cells)
    trials = ", ".join(f"{t.split('::', 2)[2]} ({k})" for t, k in sorted(failed.items()))
    print(f"| {name} | " + " | ".join(eff(c[1]) for c in cols) + f" | {caught} of {n} | {trials} |")
PY
echo
echo "($(( $(date +%s) - start )) s; gate outputs in $out)"
