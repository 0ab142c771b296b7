"""Stand-ins for the two FID files users download, for an end-to-end run of `ditcache evaluate --inception
--fid-stats` where the published files cannot be downloaded: the FID Inception's state_dict with the real keys and
shapes (566 tensors, num_batches_tracked included, as PyTorch 1.13 writes them) on hashed weights
(tools/reference/inception_reference.py `hashed_weights`), saved in the legacy (pre-1.6) torch.save format; and an
`.npz` laid out as ADM's reference batches (arr_0 images, mu, sigma, mu_s, sigma_s) with the statistics of 3,000
random 2048-d vectors.

    /usr/bin/python3 tools/bench/make_random_fid_files.py --out /tmp/xl2
    # with tools/bench/make_random_dit.py and make_random_vae.py:
    ditcache evaluate --model /tmp/xl2/DiT-XL-2-256.safetensors --vae /tmp/xl2/sd-vae \
        --inception /tmp/xl2/pt_inception-hashed-legacy.pth --fid-stats /tmp/xl2/stats.npz \
        --classes 207 --samples-per-class 2 --steps 2 --batch 2 --threads 2
"""
import argparse
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "reference"))
sys.path.insert(0, os.path.join(HERE, "..", "train"))
from inception_reference import FidInception, hashed_weights  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    model = FidInception()
    hashed_weights(model)
    state = dict(model.state_dict())
    weights = os.path.join(a.out, "pt_inception-hashed-legacy.pth")
    torch.save(state, weights, _use_new_zipfile_serialization=False)
    rng = np.random.RandomState(0)
    features = rng.randn(3000, 2048) * 0.5 + 1.0
    mu, sigma = features.mean(0), np.cov(features, rowvar=False)
    stats = os.path.join(a.out, "stats.npz")
    np.savez(stats, arr_0=np.zeros((4, 8, 8, 3), np.uint8), mu=mu, sigma=sigma, mu_s=mu[:10], sigma_s=sigma[:10, :10])
    print(f"wrote {weights} ({len(state)} tensors, legacy torch.save) and {stats}")


if __name__ == "__main__":
    main()
