"""Random weights of a DiT preset's real shape, as the official facebookresearch/DiT checkpoint names them, for
timing and memory measurements where the published weights cannot be downloaded (issue 20 item 5). Every parameter
is drawn from N(0, 0.02) (the official init zeroes adaLN and the final layer, which would make every block the
identity); pos_embed is DiT's fixed sin-cos table.

    /usr/bin/python3 tools/bench/make_random_dit.py --preset XL/2 --image-size 256 --out /tmp/xl2/DiT-XL-2-256.safetensors
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "train"))
from dit_model import DiT  # noqa: E402
from st_io import save_safetensors  # noqa: E402

PRESETS = {"XL": (28, 1152, 16), "L": (24, 1024, 16), "B": (12, 768, 12), "S": (12, 384, 6)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="XL/2", help="XL/2, L/4, B/8, ...")
    ap.add_argument("--image-size", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    name, patch = a.preset.split("/")
    depth, hidden, heads = PRESETS[name]
    torch.manual_seed(a.seed)
    model = DiT(input_size=a.image_size // 8, patch_size=int(patch), in_channels=4, hidden_size=hidden, depth=depth,
                num_heads=heads, num_classes=1000, learn_sigma=True)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n != "pos_embed":
                p.normal_(0, 0.02)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    save_safetensors(a.out, {k: v.float() for k, v in model.state_dict().items()}, {"num_heads": heads})
    print(f"wrote {a.out}: DiT-{a.preset} at {a.image_size}, {sum(p.numel() for p in model.parameters()):,} parameters")


if __name__ == "__main__":
    main()
