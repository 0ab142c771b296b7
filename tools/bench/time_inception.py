"""The FID Inception's pool3 features of one image in PyTorch and in DitCache, interleaved on this CPU, with an
agreement check: the same hashed weights (tools/reference/inception_reference.py `hashed_weights`, rebuilt by
`bench/DitCache.Benchmarks inception`) and the same image (pixel i = ((37 i) mod 256) / 255).

    /usr/bin/python3 tools/bench/time_inception.py [--threads 1,2] [--rounds 7] [--side 256] [--repeats 2]

Builds the benchmark project (Release), then for each repeat and thread count runs DitCache's timing mode and
PyTorch's forward (one warm-up, medians of the rounds) and prints both, their ratio, and the relative L2 distance of
the two feature vectors.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tools", "reference"))
sys.path.insert(0, os.path.join(ROOT, "tools", "train"))
from inception_reference import FidInception, hashed_weights  # noqa: E402

PROJECT = os.path.join(ROOT, "bench", "DitCache.Benchmarks")
DLL = os.path.join(PROJECT, "bin", "Release", "net10.0", "DitCache.Benchmarks.dll")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--side", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=2)
    a = ap.parse_args()
    subprocess.run(["dotnet", "build", PROJECT, "-c", "Release", "-v", "quiet", "-nologo"], check=True)
    model = FidInception().eval()
    hashed_weights(model)
    n = 3 * a.side * a.side
    image = torch.from_numpy(((37 * np.arange(n, dtype=np.int64)) % 256 / 255.0).astype(np.float32)).reshape(1, 3, a.side, a.side)
    with tempfile.TemporaryDirectory() as work:
        for repeat in range(a.repeats):
            for t in [int(v) for v in a.threads.split(",")]:
                out = os.path.join(work, "features.bin")
                line = subprocess.run(["dotnet", DLL, "inception", str(t), str(a.rounds), str(a.side), out],
                                      check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
                ours = float(line.split("median ")[1].split(" ms")[0])
                torch.set_num_threads(t)
                times = []
                with torch.no_grad():
                    features = model(image)
                    for _ in range(a.rounds):
                        start = time.perf_counter()
                        features = model(image)
                        times.append((time.perf_counter() - start) * 1e3)
                theirs = sorted(times)[len(times) // 2]
                mine = np.fromfile(out, dtype=np.float32)
                ref = features[0].numpy()
                rel = float(np.linalg.norm(mine - ref) / np.linalg.norm(ref))
                print(f"repeat {repeat} threads {t}: DitCache {ours:.1f} ms, PyTorch {torch.__version__} {theirs:.1f} ms, "
                      f"PyTorch/DitCache {theirs / ours:.2f}x, features rel L2 {rel:.2e}", flush=True)


if __name__ == "__main__":
    main()
