"""A diffusers vae/ folder with the real sd-vae-ft-ema/-mse decoder shapes (config.json and
diffusion_pytorch_model.safetensors) and hashed weights (tools/reference/vae_reference.py `hashed_weights`), for
memory and timing measurements of a full DiT-XL/2 run with decoding where the published VAE cannot be downloaded
(issue 20 item 4). Only the decoder half and post_quant_conv are written: DitCache reads nothing else of a VAE file.

    /usr/bin/python3 tools/bench/make_random_vae.py --out /tmp/xl2/sd-vae
"""
import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "reference"))
sys.path.insert(0, os.path.join(HERE, "..", "train"))
from vae_reference import VaeDecoder, config_json, hashed_weights  # noqa: E402
from st_io import save_safetensors  # noqa: E402

SDVAE = {"block_out_channels": [128, 256, 512, 512], "layers_per_block": 2, "norm_num_groups": 32,
         "latent_channels": 4, "out_channels": 3, "sample_size": 256, "scaling_factor": 0.18215}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="folder to create")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    weights = hashed_weights(VaeDecoder(SDVAE))
    save_safetensors(os.path.join(a.out, "diffusion_pytorch_model.safetensors"), weights)
    with open(os.path.join(a.out, "config.json"), "w") as f:
        f.write(config_json(SDVAE))
    print(f"wrote {a.out}: {sum(t.numel() for t in weights.values()):,} decoder parameters")


if __name__ == "__main__":
    main()
