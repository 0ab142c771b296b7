#!/usr/bin/env bash
# Before/after forward timing on a shared machine: runs the 'forward' mode of two builds of this benchmark project
# in alternation (A B A B ...), each process reporting its median ms per forward, and prints the median over the
# processes of each build and the ratio A/B.
#   usage: ab-forward.sh BEFORE_DLL AFTER_DLL [processes=5] [threads=1] [gemm=managed] [rounds=5]
# BEFORE_DLL is DitCache.Benchmarks.dll built from an older checkout with Timing/Timer.cs, Timing/ForwardTiming.cs
# and a Program.cs that dispatches "forward" copied in (ForwardTiming uses public API only).
set -euo pipefail
before=$1 after=$2 n=${3:-5} threads=${4:-1} gemm=${5:-managed} rounds=${6:-5}
out=$(mktemp)
for i in $(seq "$n"); do
  dotnet "$before" forward "$threads" "$rounds" "$gemm" | sed -n 's/^RESULT /before /p' >>"$out"
  dotnet "$after" forward "$threads" "$rounds" "$gemm" | sed -n 's/^RESULT /after /p' >>"$out"
done
python3 - "$out" <<'PY'
import sys, statistics, collections
runs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    which, shape, gemm, threads, ms = line.split()
    runs[(shape, gemm, threads, which)].append(float(ms))
for shape, gemm, threads in sorted({k[:3] for k in runs}):
    b = statistics.median(runs[(shape, gemm, threads, "before")])
    a = statistics.median(runs[(shape, gemm, threads, "after")])
    print(f"| {shape} | {gemm} | {threads} | {b:.2f} | {a:.2f} | {b / a:.2f}x |  before {runs[(shape, gemm, threads, 'before')]} after {runs[(shape, gemm, threads, 'after')]}")
PY
rm -f "$out"
