"""Reference values for the image fidelity metrics (docs/methods.md §9.2), computed with numpy formulas that share no code
with the C# (src/DitCache.Evaluation/Metrics/ImageMetrics.cs).

    /usr/bin/python3 tools/reference/make_metric_fixtures.py

Writes tests/TestData/metrics/image_metrics.safetensors:
  a, b      [6, 28, 28] float32 image pairs in the model's [-1, 1] range (some values beyond it, to exercise the
            clamp): pair 0 identical, pairs 1-5 with noise of growing strength and a shifted/blurred variant;
  psnr      [6] float32 per pair, 20*log10(1/sqrt(MSE)) on [0, 1] pixels, capped at 100;
  ssim      [6] float32 per pair (the per-pair values are also in the metadata at full precision).
SSIM follows the usual Wang et al. / TeaCache `common_metrics` recipe: 11x11 Gaussian window (sigma 1.5, as
cv2.getGaussianKernel), C1 = 0.01^2, C2 = 0.03^2 for [0, 1] images, statistics over the valid region only
(cv2.filter2D then [5:-5, 5:-5]), mean of the SSIM map. The valid 2-D correlation is written here with
numpy sliding windows.
"""
import json
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tools", "train"))
from st_io import save_safetensors  # noqa: E402

import torch  # noqa: E402  (st_io saves torch tensors)


def to_unit(x):
    return np.clip((x.astype(np.float64) + 1.0) / 2.0, 0.0, 1.0)


def psnr(a, b):
    mse = np.mean((to_unit(a) - to_unit(b)) ** 2)
    return 100.0 if mse == 0 else min(100.0, 20 * np.log10(1.0 / np.sqrt(mse)))


def gaussian_window(size=11, sigma=1.5):
    x = np.arange(size) - size // 2
    g = np.exp(-(x ** 2) / (2 * sigma ** 2))
    g /= g.sum()
    return np.outer(g, g)


def filter_valid(img, win):
    view = np.lib.stride_tricks.sliding_window_view(img, win.shape)
    return np.einsum("ijkl,kl->ij", view, win)


def ssim(a, b):
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    x, y, w = to_unit(a), to_unit(b), gaussian_window()
    mu1, mu2 = filter_valid(x, w), filter_valid(y, w)
    s11 = filter_valid(x * x, w) - mu1 ** 2
    s22 = filter_valid(y * y, w) - mu2 ** 2
    s12 = filter_valid(x * y, w) - mu1 * mu2
    m = ((2 * mu1 * mu2 + c1) * (2 * s12 + c2)) / ((mu1 ** 2 + mu2 ** 2 + c1) * (s11 + s22 + c2))
    return float(m.mean())


def main():
    rng = np.random.default_rng(0)
    base = np.tanh(rng.normal(size=(28, 28)) * 1.5).astype(np.float32)
    base[3:9, 3:9] = 1.3                          # beyond the range: clamped to 1
    a, b = [], []
    for i, strength in enumerate([0.0, 0.01, 0.05, 0.2, 0.6]):
        a.append(base)
        b.append((base + strength * rng.normal(size=(28, 28))).astype(np.float32))
    a.append(base)
    b.append(np.roll(base, 1, axis=1) * 0.8)      # structural change
    a, b = np.stack(a), np.stack(b).astype(np.float32)
    p = [psnr(x, y) for x, y in zip(a, b)]
    s = [ssim(x, y) for x, y in zip(a, b)]
    for i in range(len(p)):
        print(f"pair {i}: psnr {p[i]:.6f} ssim {s[i]:.8f}")
    out = os.path.join(ROOT, "tests", "TestData", "metrics", "image_metrics.safetensors")
    save_safetensors(out, {"a": torch.from_numpy(a), "b": torch.from_numpy(b),
                           "psnr": torch.tensor(p, dtype=torch.float32), "ssim": torch.tensor(s, dtype=torch.float32)},
                     {"psnr": json.dumps(p), "ssim": json.dumps(s)})
    print("wrote", out)


if __name__ == "__main__":
    main()
