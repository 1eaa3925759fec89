#!/usr/bin/env python3
"""How much of the machine's multi-core throughput one process gets.

Every round measures, side by side and in rotating order:
  solo     one process pinned to the first CPU (1 thread), before and after
  apart    one process per CPU at the same time, each pinned to its CPU
           (1 thread each: nothing shared but the machine)
  shared   one process, all CPUs, threads sharing one engine (the default)
  own      one process, all CPUs, `--engine-per-thread`
and prints lifecycles/s (the throughput phase's median over its rounds) and,
per round, each as a multiple of `solo` (mean of the two solo runs); the
three kinds rotate their order from round to round. The medians over rounds
of those multiples, and of own/shared paired by round, end the output.

`apart` is what the cores give with no shared state in user space or in the
kernel's view of one process; `shared` and `own` against it say what sharing
one process, and one engine, costs.

Usage: harness/ci/scaling.py ROUNDS [BINARY] [-- BENCHMARK-ARGS...]
Default BINARY target/release/siteboss; default arguments
--embedded cli --allocator pooling.
"""
import json, os, shutil, statistics as st, subprocess, sys, tempfile


def lifecycles(path, most=False):
    """The one-thread row's lifecycles/s, or with `most` the row with the
    most threads (what the binary saw as all cores)."""
    rows = json.load(open(path))['configurations'][0]['throughput']
    rows = [t for t in rows if most or t['threads'] == 1]
    if not rows:
        sys.exit(f'scaling.py: {path} has no throughput row')
    t = max(rows, key=lambda t: t['threads'])
    if not t.get('lifecycles'):
        sys.exit(f'scaling.py: {path}: the component has no run to time lifecycles with')
    return t['lifecycles']['median']


def main():
    args = sys.argv[1:]
    bench = ['--embedded', 'cli', '--allocator', 'pooling']
    if '--' in args:
        cut = args.index('--')
        args, bench = args[:cut], args[cut + 1:]
    if not args or not args[0].isdigit() or int(args[0]) < 1:
        sys.exit(__doc__)
    rounds = int(args[0])
    binary = args[1] if len(args) > 1 else 'target/release/siteboss'
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        sys.exit('scaling.py: needs at least two CPUs')
    n = len(cpus)
    tmp = tempfile.mkdtemp()
    try:
        measure(rounds, binary, bench, cpus, n, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def measure(rounds, binary, bench, cpus, n, tmp):
    base = [binary, 'benchmark', *bench, '--phases', 'throughput', '--no-native', '--no-progress']

    def run(tag, extra=(), cpu=None):
        out = os.path.join(tmp, f'{tag}.json')
        cmd = (['taskset', '-c', str(cpu)] if cpu is not None else []) + base + list(extra) + ['--json', out]
        err = open(os.path.join(tmp, f'{tag}.err'), 'w+')
        try:
            p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
        except OSError as e:
            sys.exit(f'scaling.py: cannot run {cmd[0]}: {e.strerror}')
        p.err = err
        return p, out

    def wait(procs):
        failed = None
        for p, _ in procs:
            if p.wait() != 0 and failed is None:
                failed = p
                for q, _ in procs:
                    if q.poll() is None:
                        q.kill()
        if failed is not None:
            failed.err.seek(0)
            tail = failed.err.read().strip().splitlines()[-3:]
            sys.exit(f'scaling.py: {" ".join(failed.args)} exited {failed.returncode}: ' + ' / '.join(tail))

    def solo(tag):
        p = run(tag, cpu=cpus[0])
        wait([p])
        return lifecycles(p[1])

    def in_process(tag, extra=()):
        p = run(tag, extra)
        wait([p])
        return lifecycles(p[1], most=True)

    def apart():
        ps = [run(f'apart{i}', cpu=c) for i, c in enumerate(cpus)]
        wait(ps)
        return sum(lifecycles(out) for _, out in ps)

    kinds = [('apart', apart), ('shared', lambda: in_process('shared')),
             ('own', lambda: in_process('own', ['--engine-per-thread']))]
    multiples = {k: [] for k, _ in kinds}
    print(f'{n} CPUs, lifecycles/s; multiples of solo in brackets', flush=True)
    for r in range(rounds):
        first = solo('solo-a')
        got = {}
        for k, f in kinds[r % 3:] + kinds[:r % 3]:
            got[k] = f()
        ref = (first + solo('solo-b')) / 2
        line = f'round {r + 1}: solo {ref:,.0f}'
        for k, _ in kinds:
            multiples[k].append(got[k] / ref)
            line += f' | {k} {got[k]:,.0f} ({got[k] / ref:.2f}x)'
        print(line, flush=True)
    print('median multiple of solo over ' + str(rounds) + ' rounds: ' + ', '.join(
        f'{k} {st.median(v):.2f}x ({min(v):.2f}-{max(v):.2f})' for k, v in multiples.items()))
    paired = [o / s for o, s in zip(multiples['own'], multiples['shared'])]
    print(f'own / shared, paired by round: median {st.median(paired):.2f}x '
          f'({min(paired):.2f}-{max(paired):.2f}), own ahead in {sum(p > 1 for p in paired)} of {rounds}')


if __name__ == '__main__':
    main()
