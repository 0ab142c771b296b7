#!/usr/bin/env python3
"""Quality, speed and memory of --weights bf16|f16 against f32, side by side in one run (issue 20 item 4).

Runs `ditcache sample` once per weight precision on the same model, classes, seed and accelerator, then reports for
each 16-bit run: the PSNR of its final samples against the f32 run's (the bench's definition, docs/methods.md 9.2:
values mapped from [-1, 1] to [0, 1] and clamped, the mean over images and channels of 20 log10(1/sqrt(MSE)), capped
at 100 dB), the relative L2, the largest absolute difference, the sampling seconds, the peak RSS from --report, and
the ratios to f32. Usage:
    tools/bench/weights_quality.py --out DIR [--model FILE] [--classes 0,1,...] [--steps 50] [--cache foca:n=3]
                                   [--threads 2] [--extra "--heads 16"]
Without --model it runs the embedded shipped model. Writes DIR/weights.md (a table) and DIR/weights.json.
"""
import argparse, json, os, shlex, struct, subprocess, sys, time

import numpy as np


def load_safetensors(path, key):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        meta = header[key]
        if meta["dtype"] != "F32":
            sys.exit(f"{path}: tensor {key} is {meta['dtype']}, expected F32")
        start, end = meta["data_offsets"]
        f.seek(8 + n + start)
        return np.frombuffer(f.read(end - start), dtype="<f4").reshape(meta["shape"])


def psnr(x, ref):
    # one value per (image, channel) plane, as ImageMetrics.Mean does
    a = np.clip((x.astype(np.float64) + 1) / 2, 0, 1)
    b = np.clip((ref.astype(np.float64) + 1) / 2, 0, 1)
    planes = a.reshape(a.shape[0] * a.shape[1], -1), b.reshape(b.shape[0] * b.shape[1], -1)
    mse = ((planes[0] - planes[1]) ** 2).mean(axis=1)
    values = np.where(mse == 0, 100.0, np.minimum(100.0, 20 * np.log10(1 / np.sqrt(np.maximum(mse, 1e-300)))))
    return float(values.mean())


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--model")
    p.add_argument("--classes", default="0,1,2,3,4,5,6,7,8,9")
    p.add_argument("--steps", default="50")
    p.add_argument("--cache", default="none")
    p.add_argument("--threads", default="2")
    p.add_argument("--extra", default="")
    p.add_argument("--ditcache", default="src/DitCache.Cli/bin/Release/net10.0/ditcache")
    a = p.parse_args()
    os.makedirs(a.out, exist_ok=True)
    rows = {}
    for weights in ["f32", "bf16", "f16"]:
        tensor = os.path.join(a.out, f"{weights}.safetensors")
        report = os.path.join(a.out, f"{weights}.json")
        cmd = [a.ditcache, "sample", "--classes", a.classes, "--steps", a.steps, "--cache", a.cache, "--threads", a.threads,
               "--weights", weights, "--save-tensor", tensor, "--report", report, "--quiet"]
        if a.model:
            cmd += ["--model", a.model]
        cmd += shlex.split(a.extra)
        print(" ".join(shlex.quote(c) for c in cmd), flush=True)
        start = time.monotonic()
        subprocess.run(cmd, check=True)
        wall = time.monotonic() - start
        r = json.load(open(report))
        rows[weights] = {"sample": load_safetensors(tensor, "sample"), "seconds": r["seconds"],
                         "wall": wall, "peak_rss_bytes": r["peak_rss_bytes"], "gemm": r["gemm"]}
    ref = rows["f32"]
    out = {"model": a.model or "embedded", "classes": a.classes, "steps": a.steps, "cache": a.cache, "threads": a.threads, "runs": {}}
    lines = ["| weights | PSNR vs f32 (dB) | rel. L2 vs f32 | max abs diff | sampling s | vs f32 | process wall s | peak RSS (MB) | vs f32 |",
             "|:---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for weights, row in rows.items():
        x = row["sample"]
        same = weights == "f32"
        q = {"psnr_db": None if same else psnr(x, ref["sample"]),
             "rel_l2": float(np.linalg.norm((x - ref["sample"]).ravel()) / np.linalg.norm(ref["sample"].ravel())),
             "max_abs": float(np.abs(x - ref["sample"]).max()), "seconds": row["seconds"], "wall": row["wall"],
             "peak_rss_bytes": row["peak_rss_bytes"], "gemm": row["gemm"]}
        out["runs"][weights] = q
        shown = "ref" if same else "%.1f" % q["psnr_db"]
        lines.append(f"| {weights} | {shown} | {q['rel_l2']:.2e} | {q['max_abs']:.2e} | "
                     f"{q['seconds']:.2f} | {q['seconds'] / ref['seconds']:.2f}x | {q['wall']:.1f} | {q['peak_rss_bytes'] / 1e6:,.0f} | "
                     f"{q['peak_rss_bytes'] / ref['peak_rss_bytes']:.2f}x |")
    json.dump(out, open(os.path.join(a.out, "weights.json"), "w"), indent=2)
    open(os.path.join(a.out, "weights.md"), "w").write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
