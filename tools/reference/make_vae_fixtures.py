"""Golden tensors for the C# VAE decoder (src/DitCache.Models/Vae), from our PyTorch reference
(tools/reference/vae_reference.py, written from the diffusers and CompVis code; docs/methods.md §11).

    OPENBLAS_NUM_THREADS=1 /usr/bin/python3 tools/reference/make_vae_fixtures.py

Writes to tests/TestData/vae/ (deterministic: torch.manual_seed(0), one thread):
  tiny_config.json                      a diffusers vae/config.json: block_out_channels [16, 32, 32],
                                        layers_per_block 1, norm_num_groups 8, latent 4, out 3, scaling 0.18215
  tiny_diffusers.safetensors            its random weights, current diffusers names (to_q/to_k/to_v/to_out.0), F32,
                                        plus two encoder tensors and quant_conv (the loader must ignore them)
  tiny_legacy.safetensors               the same weights, legacy attention names (query/key/value/proj_attn), F16
  tiny_compvis.safetensors              the same weights, CompVis/ldm names, no prefix (as vae-ft-mse-840000-ema-
                                        pruned.safetensors), F16
  tiny_compvis.ckpt                     the same weights, CompVis names under first_stage_model., wrapped as an ldm
                                        checkpoint {"state_dict": ..., "global_step": 840000}, F16 storages
  tiny_golden.safetensors               latents [2,4,8,8] and the decoded images [2,3,32,32]
  sdvae_config.json                     the sd-vae-ft-ema config (block_out_channels [128, 256, 512, 512],
                                        layers_per_block 2, 32 groups; no scaling_factor key, as that file has none)
  sdvae_hashed_golden.safetensors       latents [1,4,4,4] and images [1,3,32,32] decoded with the real shapes on
                                        hashed weights (vae_reference.hashed_weights, rebuilt by the C# test)

Every weight of the tiny model is drawn from normal(0, 0.2) (GroupNorm weights 1 + normal(0, 0.2)) and rounded to
float16-representable values, so the F16 files hold exactly the weights of the F32 one.
"""
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tools", "train"))
sys.path.insert(0, HERE)
from st_io import save_safetensors  # noqa: E402
from vae_reference import VaeDecoder, compvis_names, config_json, hashed_weights, legacy_names  # noqa: E402

OUT_DIR = os.path.join(ROOT, "tests", "TestData", "vae")

TINY = {"block_out_channels": [16, 32, 32], "layers_per_block": 1, "norm_num_groups": 8, "latent_channels": 4,
        "out_channels": 3, "scaling_factor": 0.18215}
SDVAE = {"block_out_channels": [128, 256, 512, 512], "layers_per_block": 2, "norm_num_groups": 32,
         "latent_channels": 4, "out_channels": 3, "sample_size": 256}


def tiny():
    torch.manual_seed(0)
    model = VaeDecoder(TINY).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            is_norm_weight = name.endswith("weight") and "norm" in name.split(".")[-2]
            p.normal_(0.0, 0.2)
            if is_norm_weight:
                p.add_(1.0)
            p.copy_(p.half().float())
    sd = {k: v.clone() for k, v in model.state_dict().items()}
    extra = {"encoder.conv_in.weight": torch.randn(16, 3, 3, 3).half().float(),
             "encoder.conv_in.bias": torch.randn(16).half().float(),
             "quant_conv.weight": torch.randn(8, 8, 1, 1).half().float(),
             "quant_conv.bias": torch.randn(8).half().float()}
    latents = torch.randn(2, 4, 8, 8)
    with torch.no_grad():
        images = model.decode_latents(latents)
    levels = len(TINY["block_out_channels"])

    save_safetensors(os.path.join(OUT_DIR, "tiny_diffusers.safetensors"), {**sd, **extra})
    save_safetensors(os.path.join(OUT_DIR, "tiny_legacy.safetensors"),
                     {k: v.half() for k, v in {**legacy_names(sd), **extra}.items()})
    compvis = {k: v.half() for k, v in {**compvis_names(sd, levels), **extra}.items()}
    save_safetensors(os.path.join(OUT_DIR, "tiny_compvis.safetensors"), compvis)
    torch.save({"state_dict": {"first_stage_model." + k: v for k, v in compvis.items()}, "global_step": 840000},
               os.path.join(OUT_DIR, "tiny_compvis.ckpt"))
    save_safetensors(os.path.join(OUT_DIR, "tiny_golden.safetensors"), {"latents": latents, "images": images})
    with open(os.path.join(OUT_DIR, "tiny_config.json"), "w") as f:
        f.write(config_json(TINY))
    print("tiny: images", tuple(images.shape), "max |image|", float(images.abs().max()))


def sdvae():
    model = VaeDecoder(SDVAE).eval()
    hashed_weights(model)
    g = torch.Generator().manual_seed(1)
    latents = torch.randn(1, 4, 4, 4, generator=g)  # unit variance, as DiT samples its latents
    with torch.no_grad():
        images = model.decode_latents(latents)
    save_safetensors(os.path.join(OUT_DIR, "sdvae_hashed_golden.safetensors"), {"latents": latents, "images": images})
    with open(os.path.join(OUT_DIR, "sdvae_config.json"), "w") as f:
        f.write(config_json(SDVAE))
    print("sd-vae hashed: images", tuple(images.shape), "max |image|", float(images.abs().max()),
          "std", float(images.std()))


def main():
    torch.set_num_threads(1)
    os.makedirs(OUT_DIR, exist_ok=True)
    tiny()
    sdvae()


if __name__ == "__main__":
    main()
