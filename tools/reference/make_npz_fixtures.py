"""Writes the NumPy .npy/.npz fixtures in tests/TestData/io/ (see tests/TestData/README.md).

Run with Debian's numpy:  /usr/bin/python3 tools/reference/make_npz_fixtures.py

Deterministic (numpy default_rng(15)). Every array the C# reader should read also appears in npz_golden.json under
"<file>/<key>" with its dtype, shape and the IEEE float64 bits of each value (as numpy's own .astype(np.float64)
gives them) in hex, so the C# test compares exactly without reading any .npy itself.
"""
import json
import os
import struct

import numpy as np

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "TestData", "io")
golden = {}


def record(fixture, arrays):
    for key, a in arrays.items():
        golden[f"{fixture}/{key}"] = {
            "dtype": a.dtype.str,
            "shape": list(a.shape),
            "bits": [struct.pack("<d", float(v)).hex() for v in a.astype(np.float64).ravel(order="C")],
        }


def stats_arrays(rng):
    """float64/float32/float16/uint8 arrays of ranks 0 to 3, an empty one, and a symmetric 2-D 'sigma'."""
    feats = rng.standard_normal((40, 6))
    return {
        "mu": feats.mean(axis=0),
        "sigma": np.cov(feats, rowvar=False),                       # symmetric 6 x 6, float64
        "single": rng.standard_normal((2, 3)).astype(np.float32),
        "half": np.array([0.0, -0.0, 1.0, -2.5, np.inf, -np.inf, np.nan, 6e-8, 65504.0, 3.140625], dtype=np.float16),
        "cube": rng.standard_normal((2, 3, 4)),
        "scalar": np.array(-1.75),                                  # 0-d
        "empty": np.zeros((0, 3)),
        "pixels": rng.integers(0, 256, size=(2, 2, 3), dtype=np.uint8),
    }


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(15)
    arrays = stats_arrays(rng)

    # np.savez: stored entries; np.savez_compressed: deflate. Same arrays.
    np.savez(os.path.join(OUT, "npz_stats.npz"), **arrays)
    record("npz_stats.npz", arrays)
    np.savez_compressed(os.path.join(OUT, "npz_stats_compressed.npz"), **arrays)
    record("npz_stats_compressed.npz", arrays)

    # ADM reference-batch layout: a positional uint8 image batch (arr_0) and the statistics.
    adm = {"arr_0": rng.integers(0, 256, size=(4, 8, 8, 3), dtype=np.uint8),
           "mu": rng.standard_normal(6), "sigma": np.cov(rng.standard_normal((20, 6)), rowvar=False),
           "mu_s": rng.standard_normal(6), "sigma_s": np.cov(rng.standard_normal((20, 6)), rowvar=False)}
    np.savez(os.path.join(OUT, "npz_adm_like.npz"), adm["arr_0"], mu=adm["mu"], sigma=adm["sigma"],
             mu_s=adm["mu_s"], sigma_s=adm["sigma_s"])
    record("npz_adm_like.npz", adm)

    # Single .npy files in header versions 1.0, 2.0 and 3.0 (np.save picks 1.0 when the header fits).
    sigma = arrays["sigma"]
    for version in ((1, 0), (2, 0), (3, 0)):
        name = f"npy_sigma_v{version[0]}.npy"
        with open(os.path.join(OUT, name), "wb") as f:
            np.lib.format.write_array(f, sigma, version=version)
        record(name, {f"npy_sigma_v{version[0]}": sigma})

    # Refused: Fortran order, big-endian, int64, a structured dtype (each a one-array .npz).
    np.savez(os.path.join(OUT, "npz_fortran.npz"), sigma=np.asfortranarray(rng.standard_normal((3, 2))))
    np.savez(os.path.join(OUT, "npz_bigendian.npz"), mu=rng.standard_normal(3).astype(">f8"))
    np.savez(os.path.join(OUT, "npz_int64.npz"), count=np.arange(3, dtype=np.int64))
    np.savez(os.path.join(OUT, "npz_structured.npz"), rec=np.zeros(2, dtype=[("a", "<f8"), ("b", "<f4")]))

    with open(os.path.join(OUT, "npz_golden.json"), "w") as f:
        json.dump(golden, f, sort_keys=True, separators=(",", ":"))
        f.write("\n")

    total = 0
    for f in sorted(os.listdir(OUT)):
        if f.startswith(("npz_", "npy_")):
            size = os.path.getsize(os.path.join(OUT, f))
            total += size
            print(f"{size:8d}  {f}")
    print(f"{total:8d}  total")


if __name__ == "__main__":
    main()
