"""Golden tensors for the C# FID Inception-v3 (src/DitCache.Evaluation/Inception), from our PyTorch reference
(tools/reference/inception_reference.py; docs/methods.md §9.4).

    OPENBLAS_NUM_THREADS=1 /usr/bin/python3 tools/reference/make_inception_fixtures.py

Writes to tests/TestData/inception/ (deterministic: torch.manual_seed(0), one thread):
  inception_hashed_golden.safetensors   two 37x45 RGB images (uint8 values / 255) through the real FID Inception
                                        shapes on hashed weights (inception_reference.hashed_weights, rebuilt by the
                                        C# test): the 2048 pool3 features, the per-channel means of every block's
                                        output, and a corner of the resized input
  pipeline_features_golden.safetensors  the FID features of the tiny pipeline's two decoded images
                                        (tests/TestData/pipeline/tiny_pipeline_golden.safetensors `image`) after DiT's
                                        sample_ddp.py quantisation (clamp(127.5 x + 128, 0, 255) to uint8, then / 255),
                                        on the same hashed weights
  resize_golden.safetensors             F.interpolate(bilinear, align_corners=False) of a [1,2,5,7] tensor to 11x13
                                        (up) and 3x4 (down), and of a [1,1,37,45] tensor to 299x299 (first rows)
"""
import os
import sys

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tools", "train"))
sys.path.insert(0, HERE)
from st_io import load_safetensors, save_safetensors  # noqa: E402
from inception_reference import FidInception, hashed_weights  # noqa: E402

OUT_DIR = os.path.join(ROOT, "tests", "TestData", "inception")


def main():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    os.makedirs(OUT_DIR, exist_ok=True)

    model = FidInception().eval()
    hashed_weights(model)
    images = torch.randint(0, 256, (2, 3, 37, 45)).float() / 255.0
    stages = {}
    with torch.no_grad():
        features = model(images, stages)
    out = {"images": images, "features": features, "input_corner": stages["input"][:, :, :8, :8].contiguous()}
    for name in ("block0", "block1", "block2", "block3"):
        out[name + "_mean"] = stages[name].mean(dim=(2, 3))
        print(name, tuple(stages[name].shape), "mean", float(stages[name].mean()), "max", float(stages[name].abs().max()))
    print("features mean", float(features.mean()), "std", float(features.std()), "zero", float((features == 0).float().mean()))
    save_safetensors(os.path.join(OUT_DIR, "inception_hashed_golden.safetensors"), out,
                     {"source": "tools/reference/make_inception_fixtures.py"})

    image = load_safetensors(os.path.join(ROOT, "tests", "TestData", "pipeline", "tiny_pipeline_golden.safetensors"))[0]["image"]
    quantised = torch.clamp(127.5 * image + 128.0, 0, 255).to(torch.uint8)
    with torch.no_grad():
        pipeline_features = model(quantised.float() / 255.0)
    save_safetensors(os.path.join(OUT_DIR, "pipeline_features_golden.safetensors"),
                     {"bytes": quantised.float(), "features": pipeline_features},
                     {"source": "tools/reference/make_inception_fixtures.py"})

    x = torch.randn(1, 2, 5, 7)
    big = torch.randn(1, 1, 37, 45)
    resize = {
        "x": x,
        "up": F.interpolate(x, size=(11, 13), mode="bilinear", align_corners=False),
        "down": F.interpolate(x, size=(3, 4), mode="bilinear", align_corners=False),
        "big": big,
        "big299_rows": F.interpolate(big, size=(299, 299), mode="bilinear", align_corners=False)[:, :, :16].contiguous(),
    }
    save_safetensors(os.path.join(OUT_DIR, "resize_golden.safetensors"), resize,
                     {"source": "tools/reference/make_inception_fixtures.py"})
    for f in sorted(os.listdir(OUT_DIR)):
        print(f, os.path.getsize(os.path.join(OUT_DIR, f)))


if __name__ == "__main__":
    main()
