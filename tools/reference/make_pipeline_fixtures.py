"""Golden image for the end-to-end `ditcache sample` pipeline: a tiny DiT, DDIM with classifier-free guidance, then
a tiny VAE decode, in PyTorch (tools/train/dit_model.py for the DiT, tools/reference/vae_reference.py for the VAE).

    OPENBLAS_NUM_THREADS=1 /usr/bin/python3 tools/reference/make_pipeline_fixtures.py

Reads the existing tiny fixtures (no new weights): tests/TestData/dit/tiny_dit.safetensors (the DiT that
tests/TestData/diffusers/tiny-dit holds under diffusers names) and tests/TestData/vae/tiny_config.json +
tiny_diffusers.safetensors (the VAE). The C# test assembles a diffusers pipeline folder from those files.

Writes tests/TestData/pipeline/tiny_pipeline_golden.safetensors (deterministic: torch.manual_seed(0), one thread):
  noise   [2,4,8,8]     the initial latent (standard normal), given to `ditcache sample --noise`
  labels  [2]           classes 3 and 7
  sample  [2,4,8,8]     the final latent: DDIM, 4 respaced steps, eta 0, CFG 4.0 on all channels (make_dit_fixtures.py)
  image   [2,3,32,32]   vae.decode(sample / scaling_factor), as DiT's sample.py decodes, before clamping
  bytes   [2,3,32,32]   the image as torchvision.utils.save_image(normalize=True, value_range=(-1, 1)) turns it into
                        bytes: clamp to [-1, 1], (x + 1) / 2, mul(255).add_(0.5).clamp_(0, 255), to uint8 (truncation),
                        stored as float32
"""
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tools", "train"))
sys.path.insert(0, HERE)
from dit_model import Diffusion, space_timesteps  # noqa: E402
from st_io import load_safetensors, save_safetensors  # noqa: E402
from make_dit_fixtures import build_model, ddim_sample  # noqa: E402
from vae_reference import VaeDecoder  # noqa: E402
import json  # noqa: E402

STEPS = 4
OUT_DIR = os.path.join(ROOT, "tests", "TestData", "pipeline")


def to_bytes(images):
    """torchvision.utils.save_image(images, normalize=True, value_range=(-1, 1)) per pixel, in float32."""
    x = images.clone().clamp_(min=-1.0, max=1.0)
    x.sub_(-1.0).div_(max(1.0 - (-1.0), 1e-5))
    return x.mul(255).add_(0.5).clamp_(0, 255).to(torch.uint8)


def main():
    torch.set_num_threads(1)
    torch.manual_seed(0)
    os.makedirs(OUT_DIR, exist_ok=True)

    dit = build_model()
    dit.load_state_dict(load_safetensors(os.path.join(ROOT, "tests", "TestData", "dit", "tiny_dit.safetensors"))[0])
    with open(os.path.join(ROOT, "tests", "TestData", "vae", "tiny_config.json")) as f:
        cfg = json.load(f)
    vae = VaeDecoder(cfg).eval()
    vae_sd, _ = load_safetensors(os.path.join(ROOT, "tests", "TestData", "vae", "tiny_diffusers.safetensors"))
    vae.load_state_dict({k: v for k, v in vae_sd.items() if k in vae.state_dict()})

    diffusion = Diffusion(1000, space_timesteps(1000, STEPS))
    labels = torch.tensor([3, 7])
    noise = torch.randn(2, 4, 8, 8)
    with torch.no_grad():
        sample, _ = ddim_sample(dit, diffusion, noise, labels)
        image = vae.decode_latents(sample)
    pixels = to_bytes(image)

    g = {"noise": noise, "labels": labels.float(), "sample": sample, "image": image, "bytes": pixels.float()}
    path = os.path.join(OUT_DIR, "tiny_pipeline_golden.safetensors")
    save_safetensors(path, {k: v.detach().contiguous().float() for k, v in g.items()},
                     {"script": "tools/reference/make_pipeline_fixtures.py", "seed": "0", "torch": torch.__version__})
    clamped = float(((image < -1) | (image > 1)).float().mean())
    print(f"{path}: {os.path.getsize(path)} bytes")
    print(f"sample max |v| {float(sample.abs().max()):.4g}; image range [{float(image.min()):.4g}, "
          f"{float(image.max()):.4g}], {100 * clamped:.1f}% of pixels outside [-1, 1]")


if __name__ == "__main__":
    main()
