#!/usr/bin/env python3
"""Compares the quality and FLOPs columns of two `ditcache bench` results.json files, configuration by configuration.

A refactor that must not change behaviour should give identical samples: run the same preset before and after
(e.g. `ditcache bench --quick --repeats 1 --threads 1 --out before`) and compare. Wall-clock columns are skipped
(they depend on the machine's load). Prints every differing field with its relative difference; exit code 1 when a
field differs by more than --rtol (default 0: bit-identical).

    python3 tools/bench/compare_results.py before/results.json after/results.json [--rtol 1e-6]
"""
import argparse
import json
import math
import sys

FIELDS = ['computed_steps', 'flops', 'reference_flops', 'psnr', 'ssim', 'relative_l2', 'frechet_distance', 'accuracy',
          'cache_bytes', 'timeline', 'strip', 'shadow_per_step', 'shadow_per_block']
TOP = ['samples', 'seed', 'sampler', 'strip_classes', 'floor_frechet_distance', 'matched_floor_frechet_distance']


def key(entry):
    c = entry['config']
    return f"{c['cache']} steps={c['steps']} cfg={c['cfg']}"


def relative(a, b):
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and math.isfinite(a) and math.isfinite(b):
        return abs(a - b) / max(abs(a), abs(b), 1e-300)
    return 0.0 if a == b else math.inf


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('before')
    p.add_argument('after')
    p.add_argument('--rtol', type=float, default=0.0, help='largest relative difference accepted (default 0)')
    args = p.parse_args()
    a, b = (json.load(open(path)) for path in (args.before, args.after))
    ea, eb = ({key(e): e for e in r['entries']} for r in (a, b))
    if ea.keys() != eb.keys():
        sys.exit(f'the files hold different configurations: {sorted(set(ea) ^ set(eb))}')
    worst, differing = 0.0, 0
    rows = [(f, a.get(f), b.get(f), 'run') for f in TOP]
    rows += [(f'{k}: {f}', ea[k].get(f), eb[k].get(f), k) for k in ea for f in FIELDS]
    for name, x, y, _ in rows:
        if x != y:
            r = relative(x, y)
            differing += 1
            worst = max(worst, r)
            print(f'{name}: {str(x)[:40]} -> {str(y)[:40]} (relative {r:.1e})')
    print(f'{len(ea)} configurations; {differing} fields differ; largest relative difference {worst:.1e}')
    return 1 if worst > args.rtol else 0


if __name__ == '__main__':
    sys.exit(main())
