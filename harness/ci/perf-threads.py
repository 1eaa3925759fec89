#!/usr/bin/env python3
"""Where the 2-thread throughput rounds spend more than the 1-thread ones.

Reads `perf script` output of a throughput phase recorded with
  perf record -e cpu-clock -F 4000 -g -o perf.data -- \\
      target/release/siteboss benchmark --embedded cli --allocator pooling \\
      --phases throughput --no-native
and splits the busy threads (over MIN_SAMPLES samples) into those that ran
alone (1-thread rounds) and those whose lifetime overlapped another busy
thread's by over half a second (multi-thread rounds). Prints each
symbol's share of samples in both, the symbols that grew most first, and
the kernel's share.

Usage: perf script -i perf.data -G -F tid,time,ip,sym,dso | harness/ci/perf-threads.py [TOP]
"""
import collections, re, sys

MIN_SAMPLES = 1000
LINE = re.compile(r'\s*(\d+)\s+([\d.]+):\s+\S+\s+(.*?)\s+\((.*)\)\s*$')


def main():
    top = int(sys.argv[1]) if len(sys.argv) > 1 else 14
    rows = [(int(m[1]), float(m[2]), m[3], m[4]) for m in map(LINE.match, sys.stdin) if m]
    if not rows:
        sys.exit(__doc__)
    span, count = {}, collections.Counter()
    for tid, t, _, _ in rows:
        a, b = span.get(tid, (t, t))
        span[tid] = (min(a, t), max(b, t))
        count[tid] += 1
    busy = [t for t in span if count[t] > MIN_SAMPLES]
    overlap = lambda a, b: min(span[a][1], span[b][1]) - max(span[a][0], span[b][0]) > 0.5
    many = {t for t in busy if any(overlap(t, u) for u in busy if u != t)}
    alone = set(busy) - many
    if not many or not alone:
        sys.exit(f'perf-threads.py: {len(alone)} lone and {len(many)} overlapping busy threads; need both')
    c1 = collections.Counter(s for tid, _, s, _ in rows if tid in alone)
    c2 = collections.Counter(s for tid, _, s, _ in rows if tid in many)
    n1, n2 = sum(c1.values()), sum(c2.values())
    print(f'threads alone {len(alone)} ({n1} samples), overlapping {len(many)} ({n2} samples)')
    print(f'{"growth":>7} {"alone%":>6} {"many%":>6}  symbol')
    for k in sorted(set(c1) | set(c2), key=lambda k: -(c2[k] / n2 - c1[k] / n1))[:top]:
        print(f'{100 * (c2[k] / n2 - c1[k] / n1):+7.2f} {100 * c1[k] / n1:6.2f} {100 * c2[k] / n2:6.2f}  {k[:150]}')
    kernel = lambda ts, n: 100 * sum(1 for tid, _, _, d in rows if tid in ts and 'kernel' in d) / n
    print(f'kernel share: alone {kernel(alone, n1):.1f}%, overlapping {kernel(many, n2):.1f}%')


if __name__ == '__main__':
    main()
