#!/usr/bin/env bash
# GEMM ratios on a shared machine: runs the interleaved 'gemm' timing mode in N separate processes and prints, per
# shape and thread count, the median over the processes of each process's ratio (each backend / the last one, from
# median times of alternating rounds) and the range. Load from other processes comes and goes over minutes; one
# process can land in a bad phase for a shape, several cannot all do so.
# With clock=cpu each batch is timed by the calling thread's CPU time (one thread only; see Timer.cs).
#   usage: gemm-ratios.sh DLL [processes=5] [threads=1,2] [rounds=21] [backends=managed,openblas] [shapes=all] [clock=wall]
set -euo pipefail
dll=$1 n=${2:-5} threads=${3:-1,2} rounds=${4:-21} backends=${5:-managed,openblas} shapes=${6:-} clock=${7:-wall}
out=$(mktemp)
for i in $(seq "$n"); do
  dotnet "$dll" gemm "$threads" "$rounds" "$backends" "$shapes" "$clock" | grep -E '^\| .* \| [0-9]+ \|' >>"$out"
done
python3 - "$out" "$backends" <<'PY'
import sys, statistics, collections
backends = sys.argv[2].split(',')
ratios = collections.defaultdict(list)   # (shape, threads, backend) -> that backend's ratio to the last, per process
gflops = collections.defaultdict(list)
for line in open(sys.argv[1]):
    cells = [c.strip() for c in line.split('|')[1:-1]]
    shape, threads = cells[0], cells[1]
    ms = [float(cells[2 + 2 * i]) for i in range(len(backends))]
    for i, b in enumerate(backends):
        gflops[(shape, threads, b)].append(float(cells[3 + 2 * i]))
        if i < len(backends) - 1:
            ratios[(shape, threads, b)].append(ms[-1] / ms[i])
keys = list(dict.fromkeys((s, t) for (s, t, _) in ratios))
n = len(next(iter(ratios.values())))
print("| shape (m, n, k) | threads | " + " | ".join(f"{b} GFLOP/s (median)" for b in backends) + " | "
      + " | ".join(f"{b} / {backends[-1]}: median of {n} processes (range)" for b in backends[:-1]) + " |")
print("|---|---:|" + "---:|" * len(backends) + "---:|" * (len(backends) - 1))
for (shape, threads) in keys:
    g = " | ".join(f"{statistics.median(gflops[(shape, threads, b)]):.1f}" for b in backends)
    r = " | ".join(f"{statistics.median(ratios[(shape, threads, b)]) * 100:.0f}% "
                   f"({min(ratios[(shape, threads, b)]) * 100:.0f}–{max(ratios[(shape, threads, b)]) * 100:.0f}%)"
                   for b in backends[:-1])
    print(f"| {shape} | {threads} | {g} | {r} |")
PY
rm -f "$out"
