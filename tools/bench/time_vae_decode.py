"""Seconds to decode one image with the real sd-vae decoder shapes in PyTorch on this CPU, the reference for
`bench/DitCache.Benchmarks vae` (same hashed weights, tools/reference/vae_reference.py `hashed_weights`, same latent
`sin(0.37 i)`).

    /usr/bin/python3 tools/bench/time_vae_decode.py [--threads 1] [--rounds 3] [--side 32] [--compare image.bin]

--compare reads the raw float32 image the C# timing mode wrote and prints the relative max error between the two.
"""
import argparse
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "reference"))
from vae_reference import VaeDecoder  # noqa: E402
from vae_reference import hashed_weights  # noqa: E402

SDVAE = {"block_out_channels": [128, 256, 512, 512], "layers_per_block": 2, "norm_num_groups": 32,
         "latent_channels": 4, "out_channels": 3}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--side", type=int, default=32)
    ap.add_argument("--compare")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    model = VaeDecoder(SDVAE).eval()
    hashed_weights(model)
    n = 4 * a.side * a.side
    latent = torch.sin(0.37 * torch.arange(n, dtype=torch.float32)).reshape(1, 4, a.side, a.side)
    times, cpu = [], []
    with torch.no_grad():
        image = model.decode_latents(latent)  # warm-up
        for _ in range(a.rounds):
            start, cpu0 = time.perf_counter(), time.process_time()
            image = model.decode_latents(latent)
            times.append(time.perf_counter() - start)
            cpu.append(time.process_time() - cpu0)
    times.sort()
    cpu.sort()
    # CPU seconds (all threads) next to the wall clock, as the C# timing mode prints them.
    print(f"RESULT torch {torch.__version__} threads {torch.get_num_threads()} vae-decode {8 * a.side}x{8 * a.side} "
          f"wall median {times[len(times) // 2]:.3f} s best {times[0]:.3f} s; "
          f"cpu median {cpu[len(cpu) // 2]:.3f} s best {cpu[0]:.3f} s")
    if a.compare:
        other = np.fromfile(a.compare, dtype=np.float32).reshape(image.shape)
        ref = image.numpy()
        print(f"CHECK max |C# - torch| / max |torch| = {np.abs(other - ref).max() / np.abs(ref).max():.3e}")


if __name__ == "__main__":
    main()
