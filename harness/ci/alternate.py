#!/usr/bin/env python3
"""Side-by-side A/B of whole `siteboss benchmark` runs, in alternating order.

Each variant is NAME=ENV::BINARY (ENV is comma-separated KEY=VALUE, may be
empty). Every round runs each variant once (the order flips each round) with
the same benchmark arguments and reads the listed JSON fields of the first
profile; it prints each field's median, range and the median of the
per-round ratios to the first variant, and the steal share of each run.

Usage:
  harness/ci/alternate.py ROUNDS FIELD[,FIELD...] VARIANT... -- BENCHMARK-ARGS...
Fields are dotted paths into configurations[0]; a trailing summary object
is read at its `median`. Examples (the README's figures):
  alternate.py 16 cold_start_precompiled.process,cold_start_precompiled.in_process \
      base=::/tmp/a/siteboss new=::target/release/siteboss \
      -- --embedded cli --allocator pooling --phases cold-start-precompiled --no-native
  alternate.py 6 throughput.0.lifecycles,throughput.1.lifecycles \
      one=TOKIO_WORKER_THREADS=1::target/release/siteboss two=TOKIO_WORKER_THREADS=2::target/release/siteboss \
      -- --embedded cli --allocator pooling --phases throughput --no-native
"""
import json, os, statistics as st, subprocess, sys, tempfile

def main():
    if '--' not in sys.argv or len(sys.argv) < 5:
        sys.exit(__doc__)
    cut = sys.argv.index('--')
    rounds, fields, specs, bench = int(sys.argv[1]), sys.argv[2].split(','), sys.argv[3:cut], sys.argv[cut + 1:]
    if rounds < 1 or not specs:
        sys.exit('alternate.py: ROUNDS must be positive and at least one variant given')
    variants = []
    for v in specs:
        name, rest = v.split('=', 1)
        env_part, binary = rest.split('::')
        variants.append((name, dict(e.split('=', 1) for e in env_part.split(',') if e), binary))
    got = {n: {f: [] for f in fields} for n, _, _ in variants}
    out = os.path.join(tempfile.mkdtemp(), 'r.json')
    for r in range(rounds):
        for name, env, binary in variants if r % 2 == 0 else variants[::-1]:
            before = ticks()
            subprocess.run([binary, 'benchmark', *bench, '--no-progress', '--json', out],
                           env={**os.environ, **env}, stdout=subprocess.DEVNULL, check=True)
            after = ticks()
            cfg = json.load(open(out))['configurations'][0]
            line = []
            for f in fields:
                x = cfg
                for k in f.split('.'):
                    x = x[int(k)] if isinstance(x, list) else x[k]
                x = x['median'] if isinstance(x, dict) else x
                got[name][f].append(x)
                line.append(f'{f}={x:.6g}')
            steal = (after[0] - before[0]) / max(1, after[1] - before[1])
            print(f'round {r + 1} {name}: ' + ' '.join(line) + f' steal={steal:.3f}', flush=True)
    base = variants[0][0]
    for f in fields:
        print(f)
        for name, _, _ in variants:
            xs = got[name][f]
            ratio = st.median(a / b for a, b in zip(xs, got[base][f]))
            print(f'  {name}: median {st.median(xs):.6g} [{min(xs):.6g}-{max(xs):.6g}], x{ratio:.3f} vs {base} (median of per-round ratios)')

def ticks():
    v = list(map(int, open('/proc/stat').readline().split()[1:9]))
    return v[7], sum(v)

if __name__ == '__main__':
    main()
