"""Wall clock of one DiT-S/2 forward (256 tokens, batch 2) in PyTorch on this CPU, the reference for the C#
benchmark bench/DitCache.Benchmarks/DitForwardBenchmarks.cs (run both at the same moment; quote the ratio).

    OPENBLAS_NUM_THREADS=2 /usr/bin/python3 tools/reference/time_dit_forward.py
"""
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "train"))
from dit_model import DiT  # noqa: E402

torch.set_num_threads(int(os.environ.get("TORCH_THREADS", "1")))
torch.manual_seed(0)
model = DiT(input_size=32, patch_size=2, in_channels=4, hidden_size=384, depth=12, num_heads=6, num_classes=1000).eval()
x, t, y = torch.randn(2, 4, 32, 32), torch.tensor([500.0, 500.0]), torch.tensor([3, 1000])
times = []
with torch.no_grad():
    for _ in range(8):
        start = time.perf_counter()
        model(x, t, y)
        times.append(time.perf_counter() - start)
times.sort()
print(f"torch {torch.__version__} threads {torch.get_num_threads()}: DiT-S/2 forward batch 2: "
      f"best {times[0] * 1e3:.1f} ms, median {times[len(times) // 2] * 1e3:.1f} ms")
