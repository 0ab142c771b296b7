"""Two builds of DitCache side by side (before/after an engine change), interleaved in one script: each build runs
as a bench/DitCache.Benchmarks `serve` process (see tools/bench/side_by_side.py) and the two alternate round by round.

    /usr/bin/python3 tools/bench/ab_builds.py BEFORE_DIR AFTER_DIR [--rounds 15] [--threads 2] [--gemm managed]
        [--forward WEIGHTS INPUTS] [--sample CACHE_SPEC ...]

BEFORE_DIR and AFTER_DIR hold a Release build of bench/DitCache.Benchmarks (bin/Release/net10.0 copied aside) with the
`serve` mode. Forwards are timed one by one (median over rounds of 3), sampling runs by the loop's own clock; the
shipped model samples 10 images, 50 DDIM steps, CFG 4, from the noise side_by_side.py writes. Prints the medians
and before/after; with --sample also the median full-step and cached-step milliseconds of each build.
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
SHIPPED = os.path.join(ROOT, "models", "fmnist-dit.safetensors")


class Server:
    def __init__(self, folder, threads, gemm):
        self.proc = subprocess.Popen(["dotnet", os.path.join(folder, "DitCache.Benchmarks.dll"), "serve", str(threads), gemm],
                                     cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        self.banner = self.proc.stdout.readline().strip()

    def ask(self, *words):
        self.proc.stdin.write(" ".join(str(w) for w in words) + "\n")
        answer = self.proc.stdout.readline().split()
        if not answer or answer[0] == "error":
            raise RuntimeError(f"{words} -> {answer}")
        return answer

    def close(self):
        self.proc.stdin.write("quit\n")
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("before")
    ap.add_argument("after")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--gemm", default="managed")
    ap.add_argument("--forward", nargs=2, metavar=("WEIGHTS", "INPUTS"))
    ap.add_argument("--sample", nargs="*", default=None, metavar="CACHE_SPEC")
    ap.add_argument("--images", type=int, default=10)
    args = ap.parse_args()
    work = os.path.join(ROOT, "bench-results", "side_by_side")
    noise = os.path.join(work, f"noise_{args.images}.safetensors")
    classes = ",".join(str(i % 10) for i in range(args.images))
    builds = {"before": Server(args.before, args.threads, args.gemm), "after": Server(args.after, args.threads, args.gemm)}
    print({k: s.banner for k, s in builds.items()})
    jobs = []
    if args.forward:
        for s in builds.values():
            s.ask("forward-load", *args.forward)
            s.ask("forward", 2)
        jobs.append(("forward (ms)", lambda s: [float(v) for v in s.ask("forward", 3)[1:]]))
    for spec in args.sample or []:
        for s in builds.values():
            s.ask("sample", SHIPPED, noise, classes, 50, 4, spec)
        jobs.append((f"sample {spec} (s)", lambda s, spec=spec: s.ask("sample", SHIPPED, noise, classes, 50, 4, spec)[1:]))
    results = {(j, b): [] for j, _ in jobs for b in builds}
    try:
        for r in range(args.rounds):
            for name, job in jobs:
                for b in (("before", "after") if r % 2 == 0 else ("after", "before")):
                    time.sleep(0.1)
                    results[(name, b)].append(job(builds[b]))
    finally:
        for s in builds.values():
            s.close()
    for name, _ in jobs:
        if name.startswith("forward"):
            b = statistics.median([v for x in results[(name, "before")] for v in x])
            a = statistics.median([v for x in results[(name, "after")] for v in x])
            print(f"| {name} | {b:.2f} | {a:.2f} | {b / a:.3f}x |")
        else:
            def med(build, i):
                return statistics.median(float(x[i]) for x in results[(name, build)])
            b, a = med("before", 0), med("after", 0)
            print(f"| {name} | {b:.3f} | {a:.3f} | {b / a:.3f}x | full step {med('before', 3):.1f} / {med('after', 3):.1f} ms, "
                  f"cached step {med('before', 4):.2f} / {med('after', 4):.2f} ms |")


if __name__ == "__main__":
    main()
