"""Golden fixtures for the metrics side: the Fashion-MNIST classifier forward and the Frechet distance.

    OPENBLAS_NUM_THREADS=1 /usr/bin/python3 tools/reference/make_classifier_fixtures.py

Writes (see tests/TestData/README.md):
* tests/TestData/classifier/golden.safetensors: 16 test images (inputs in [-1, 1]), the shipped classifier's
  logits and features from PyTorch (float32), and the same forward in float64 to size the round-off.
  Regenerate whenever models/fmnist-classifier.safetensors changes: the metadata records a checksum of the
  weights and the C# test refuses a stale golden.
* tests/TestData/classifier/frechet.safetensors: random feature sets with non-diagonal covariances and the
  Frechet distance between them computed independently in numpy float64 (eigh-based, and cross-checked against
  the eigenvalues of the non-symmetric product S1 S2).
"""
import os
import sys

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tools", "train"))
import fmnist  # noqa: E402
from st_io import load_safetensors, save_safetensors  # noqa: E402
from train_classifier import Classifier, to_input  # noqa: E402

OUT = os.path.join(ROOT, "tests", "TestData", "classifier")
MODEL = os.path.join(ROOT, "models", "fmnist-classifier.safetensors")


def classifier_golden():
    weights, meta = load_safetensors(MODEL)
    model = Classifier()
    model.load_state_dict(weights)
    model.eval()
    images, labels = fmnist.load("test")
    x = to_input(images[:16])                                           # (16, 1, 28, 28)
    with torch.no_grad():
        logits, features = model(x)
        model64 = Classifier().double()
        model64.load_state_dict({k: v.double() for k, v in weights.items()})
        logits64, features64 = model64(x.double())
    rel = lambda a, b: (a.double() - b).abs().max().item() / b.abs().max().item()  # noqa: E731
    print(f"float32 vs float64: logits {rel(logits, logits64):.2e}, features {rel(features, features64):.2e} "
          "(max|diff| / max|ref|)")
    fc1_sum = float(weights["fc1.weight"].double().sum())
    fc1_abs = float(weights["fc1.weight"].double().abs().sum())
    save_safetensors(os.path.join(OUT, "golden.safetensors"), {
        "x": x, "labels": torch.from_numpy(labels[:16].astype(np.float32)),
        "logits": logits, "features": features,
        "logits_f64": logits64.float(), "features_f64": features64.float(),
    }, {"fc1_weight_sum": repr(fc1_sum), "fc1_weight_abs_sum": repr(fc1_abs),
        "classifier_test_accuracy": meta.get("test_accuracy", "?")})


def fd_numpy(a, b):
    """FD in float64 with the symmetric form tr sqrt(sqrt(S1) S2 sqrt(S1)), all via numpy.linalg.eigh."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    w, v = np.linalg.eigh(s1)
    root = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    m = root @ s2 @ root
    lam = np.linalg.eigvalsh(0.5 * (m + m.T))
    tr_sqrt = np.sqrt(np.clip(lam, 0, None)).sum()
    # Independent cross-check: eigenvalues of the non-symmetric product S1 S2 (similar to M).
    lam2 = np.linalg.eigvals(s1 @ s2)
    tr_sqrt2 = np.sqrt(np.clip(lam2.real, 0, None)).sum()
    assert abs(tr_sqrt - tr_sqrt2) <= 1e-6 * max(1.0, tr_sqrt), (tr_sqrt, tr_sqrt2)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * tr_sqrt)


def frechet_fixture():
    rng = np.random.default_rng(0)

    def correlated(n, d, shift, scale):
        mix = rng.normal(size=(d, d)) * scale / np.sqrt(d)
        return (rng.normal(size=(n, d)) @ mix + shift).astype(np.float32)

    # Full-rank case: d = 32, n > d.
    a = correlated(256, 32, 0.0, 1.0)
    b = correlated(192, 32, 0.3, 1.5)
    # Rank-deficient case like real ReLU features with few samples: d = 128, n < d, 16 dead (all-zero) columns.
    c = np.maximum(correlated(100, 128, 0.2, 1.0), 0)
    d = np.maximum(correlated(90, 128, 0.0, 1.2), 0)
    c[:, :16] = 0
    d[:, :16] = 0
    fd_ab, fd_cd = fd_numpy(a, b), fd_numpy(c, d)
    print(f"FD(a, b) = {fd_ab!r}, FD(c, d) = {fd_cd!r}")
    save_safetensors(os.path.join(OUT, "frechet.safetensors"),
                     {"a": torch.from_numpy(a), "b": torch.from_numpy(b),
                      "c": torch.from_numpy(c), "d": torch.from_numpy(d)},
                     {"fd_ab": repr(fd_ab), "fd_cd": repr(fd_cd)})


def main():
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    classifier_golden()
    frechet_fixture()
    for name in ("golden.safetensors", "frechet.safetensors"):
        print(f"{name}: {os.path.getsize(os.path.join(OUT, name))} bytes")


if __name__ == "__main__":
    main()
