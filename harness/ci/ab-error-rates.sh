#!/usr/bin/env bash
# `siteboss ab`'s own error rates on this machine, on real builds:
#
#   base   = HEAD, built release;
#   heads  = HEAD with harness/ci/regressions/extra-work-per-instantiation.patch
#            rescaled to ITERATIONS loop iterations per instantiation, one
#            build per entry of AB_LEVELS (default "5:1000 10:2000 20:4000",
#            NOMINAL_PERCENT:ITERATIONS, sized for an ~11 µs pooled lifecycle
#            and ~0.57 ns per iteration, as on a 2-vCPU Intel Xeon guest);
#
#   isolation: each head's true effect, measured first on its own: ISO pairs
#            of whole `siteboss benchmark --phases lifecycle` runs, base and
#            head alternating, and the median of the per-pair ratios of the
#            pooled lifecycle median; plus its instructions per lifecycle;
#   A/A:     RUNS runs of `siteboss ab BASE BASE` (the same binary); any exit
#            other than 0 is a false alarm;
#   detection: RUNS runs of `siteboss ab BASE HEAD` per head; a catch is exit 1
#            with the pooled lifecycle judged a REGRESSION.
#
# Usage: harness/ci/ab-error-rates.sh [RUNS] [ISO]   (defaults 20 and 10)
#   AB_ARGS    options for siteboss ab (default none: every profile, the
#              embedded CLI hello, a 30 s budget)
#   AB_OUT     output directory (default target/ab-error-rates)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
runs="${1:-20}"
iso="${2:-10}"
read -r -a ab_args <<<"${AB_ARGS:-}"
out="${AB_OUT:-$root/target/ab-error-rates}"
levels="${AB_LEVELS:-5:1000 10:2000 20:4000}"
mkdir -p "$out"
target="$out/target"
start=$(date +%s)

# Base and heads are built from commits in worktrees, never from the working
# tree, so editing the checkout while this runs changes nothing measured.
# HEAD is read once: a commit made during the builds changes nothing.
rev="$(git rev-parse HEAD)"
build() { # OUTPUT_NAME [ITERATIONS]: $rev, with the patch at ITERATIONS if given
  local wt="$out/wt-$1"
  git worktree remove --force "$wt" >/dev/null 2>&1 || rm -rf "$wt"
  git worktree add --detach --force "$wt" "$rev" -q
  if [[ -n "${2:-}" ]]; then
    sed "s/0\.\.100u32/0..${2}u32/" "$patch" | git -C "$wt" apply
  fi
  (cd "$wt" && CARGO_TARGET_DIR="$target" cargo build --release --locked -q --bin siteboss)
  cp "$target/release/siteboss" "$out/$1"
  git worktree remove --force "$wt"
}
patch="$root/harness/ci/regressions/extra-work-per-instantiation.patch"
echo "== building base (HEAD, ${rev:0:7})"
build base
heads=()
for level in $levels; do
  pct="${level%%:*}"; k="${level##*:}"
  echo "== building head +${pct}% nominal ($k iterations per instantiation)"
  build "head-$pct" "$k"
  heads+=("$pct")
done

lifecycle_median() { # FILE -> pooled lifecycle median, ns
  python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print([c for c in r['configurations'] if c['allocator']=='pooling'][0]['lifecycle']['total']['median'])" "$1"
}
instructions() { # BIN -> pooled instructions per lifecycle
  "$1" benchmark --embedded cli --phases counts --allocator pooling --no-native --no-progress --json "$out/counts.json" >/dev/null
  python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print(r['configurations'][0]['counts']['figures']['instructions-lifecycle']['median'])" "$out/counts.json"
}

base_instr="$(instructions "$out/base")"
declare -A effect instr_effect
for pct in "${heads[@]}"; do
  echo "== isolation: head +${pct}% against base, $iso pairs of whole runs"
  ratios=()
  for i in $(seq 1 "$iso"); do
    order=(base "head-$pct"); (( i % 2 == 0 )) && order=("head-$pct" base)
    for side in "${order[@]}"; do
      "$out/$side" benchmark --quick --embedded cli --phases lifecycle --allocator pooling --no-native --no-progress \
        --json "$out/iso-$side.json" >/dev/null
    done
    ratios+=("$(python3 -c "print($(lifecycle_median "$out/iso-head-$pct.json") / $(lifecycle_median "$out/iso-base.json"))")")
  done
  effect[$pct]="$(python3 -c "import statistics,sys; v=sorted(map(float,sys.argv[1:])); print(f'{statistics.median(v):.3f} (pairs {v[0]:.3f}–{v[-1]:.3f})')" "${ratios[@]}")"
  instr_effect[$pct]="$(python3 -c "print(f'{$(instructions "$out/head-$pct") / $base_instr:.4f}')")"
  echo "   wall ${effect[$pct]}, instructions ${instr_effect[$pct]}"
done

run_ab() { # HEAD_BINARY LABEL -> appends "rc ratio lo hi seconds" lines to $out/LABEL.txt
  : >"$out/$2.txt"
  for i in $(seq 1 "$runs"); do
    set +e
    "$out/base" ab "$out/base" "$1" "${ab_args[@]}" --no-progress --json >"$out/$2-$i.json" 2>"$out/$2-$i.err"
    rc=$?
    set -e
    python3 - "$out/$2-$i.json" "$rc" >>"$out/$2.txt" <<'PY'
import json, sys
path, rc = sys.argv[1], sys.argv[2]
try:
    r = json.load(open(path))
except Exception:
    print(rc, "nan nan nan nan -"); sys.exit()
row = [x for x in r["rows"] if x["allocator"] == "pooling" and x["metric"] == "lifecycle"][0]
v = row["verdict"]["verdict"]
others = ",".join(f'{x["allocator"]}:{x["metric"]}' for x in r["rows"] if x["verdict"]["verdict"] in ("regression", "invalid") and x is not row)
print(rc, row["ratio"], row["ratio_ci"][0], row["ratio_ci"][1], r["seconds"], v, others or "-")
PY
    echo "   $2 run $i: $(tail -1 "$out/$2.txt")"
  done
}

echo "== A/A: siteboss ab base base, $runs runs"
run_ab "$out/base" aa
for pct in "${heads[@]}"; do
  echo "== detection: siteboss ab base head(+${pct}%), $runs runs"
  run_ab "$out/head-$pct" "plus$pct"
done

python3 - "$out" "$runs" "${heads[@]}" <<PY
import sys, statistics
out, runs, heads = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
effects = {$(for p in "${heads[@]}"; do printf '"%s": ("%s", "%s"), ' "$p" "${effect[$p]}" "${instr_effect[$p]}"; done)}
def load(label):
    rows = [l.split() for l in open(f"{out}/{label}.txt")]
    return rows
print(f"| case | true effect, in isolation (pooled lifecycle, wall / instructions) | result of {runs} \`siteboss ab\` runs | median ratio (range) | wall time per run |")
print("|---|---|---|---|---|")
def summary(label, want_regression):
    rows = load(label)
    rcs = [int(r[0]) for r in rows]
    ratios = sorted(float(r[1]) for r in rows if r[1] != "nan")
    secs = [float(r[4]) for r in rows if r[4] != "nan"]
    if want_regression:
        hits = sum(1 for r in rows if r[0] == "1" and r[5] == "regression")
        res = f"caught in {hits} of {len(rows)}"
    else:
        alarms = sum(1 for rc in rcs if rc != 0)
        res = f"{alarms} false alarm(s) in {len(rows)}"
    rr = f"{statistics.median(ratios):.3f} ({ratios[0]:.3f}–{ratios[-1]:.3f})" if ratios else "—"
    st = f"{statistics.median(secs):.1f} s (max {max(secs):.1f})" if secs else "—"
    return res, rr, st
res, rr, st = summary("aa", False)
print(f"| A/A: the same binary on both sides | 1 | {res} | {rr} | {st} |")
for p in heads:
    res, rr, st = summary(f"plus{p}", True)
    w, i = effects[p]
    print(f"| +{p}% nominal | {w} / {i} | {res} | {rr} | {st} |")
PY
echo "($(( $(date +%s) - start )) s in all; outputs in $out)"
echo "machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) vCPU, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
