"""Golden tensors for the C# DiT, the CFG batch and the DDIM/DDPM samplers, from our PyTorch reference
(tools/train/dit_model.py, written from docs/methods.md §6).

    OPENBLAS_NUM_THREADS=1 /usr/bin/python3 tools/reference/make_dit_fixtures.py

Writes (deterministic: torch.manual_seed(0), one thread):
  tests/TestData/dit/tiny_dit.safetensors         a tiny random DiT (input 8, patch 2, 4 channels, hidden 64,
                                                  depth 2, 4 heads, 10 classes, learn_sigma), official key names
  tests/TestData/dit/tiny_dit_train.pt            the same weights as torch.save writes a train.py checkpoint:
                                                  {"ema": state_dict, "args": argparse.Namespace}
  tests/TestData/dit/tiny_dit_golden.safetensors  inputs, per-stage activations, CFG outputs, DDIM/DDPM samples

Every parameter except pos_embed (kept as the sin-cos table) is re-drawn from normal(0, 0.05), so the adaLN
modulation, the final layer and all biases are non-zero and every path of the network matters.

Numerics follow the official DiT code: model math in float32; diffusion tables in float64, gathered per step and
cast to float32 (`_extract_into_tensor`), then multiplied with float32 tensors.
"""
import argparse
import os
import sys

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tools", "train"))
from dit_model import DiT, Diffusion, space_timesteps  # noqa: E402
from st_io import save_safetensors  # noqa: E402

OUT_DIR = os.path.join(ROOT, "tests", "TestData", "dit")
NUM_CLASSES = 10          # null / CFG label = 10
CFG_SCALE = 4.0
STEPS = 10


def build_model():
    model = DiT(input_size=8, patch_size=2, in_channels=4, hidden_size=64, depth=2, num_heads=4,
                num_classes=NUM_CLASSES, learn_sigma=True, class_dropout_prob=0.1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name != "pos_embed":
                p.normal_(0.0, 0.05)
    return model.eval()


def coef(table, i):
    # One entry of a float64 table as a float32 scalar tensor (the official _extract_into_tensor cast).
    return torch.tensor(float(table[i]), dtype=torch.float32)


def guided_step_output(model, x, t_orig, labels):
    """Batch [x; x] with labels [y; null], run forward_with_cfg (all channels guided) and keep the cond half."""
    n = x.shape[0]
    xx = torch.cat([x, x], 0)                                                   # (2N, C, H, W)
    tt = torch.full((2 * n,), float(t_orig), dtype=torch.float32)               # original timestep
    yy = torch.cat([labels, torch.full_like(labels, NUM_CLASSES)], 0)           # (2N,)
    out = model.forward_with_cfg(xx, tt, yy, CFG_SCALE)                         # (2N, 2C, H, W)
    return out[:n]                                                              # (N, 2C, H, W)


def ddim_sample(model, diffusion, noise, labels):
    """DDIM, eta = 0, no clipping (docs/methods.md §6.4). Returns the final sample and the guided eps of step n = 0."""
    x, eps0 = noise.clone(), None
    c = model.in_channels
    for i in reversed(range(diffusion.num_timesteps)):                          # respaced index, n = S-1-i
        out = guided_step_output(model, x, diffusion.timestep_map[i], labels)
        eps = out[:, :c]
        if eps0 is None:
            eps0 = eps.clone()
        x0 = coef(diffusion.sqrt_recip_alphas_cumprod, i) * x - coef(diffusion.sqrt_recipm1_alphas_cumprod, i) * eps
        eps = (coef(diffusion.sqrt_recip_alphas_cumprod, i) * x - x0) / coef(diffusion.sqrt_recipm1_alphas_cumprod, i)
        abar_prev = diffusion.alphas_cumprod_prev
        x = coef(np.sqrt(abar_prev), i) * x0 + coef(np.sqrt(1.0 - abar_prev), i) * eps
    return x, eps0


def ddpm_sample(model, diffusion, noise, step_noise, labels):
    """Ancestral DDPM with learned-range variance; v from the cond half (docs/methods.md §6.3/§6.4)."""
    x = noise.clone()
    c = model.in_channels
    s = diffusion.num_timesteps
    for i in reversed(range(s)):
        n = s - 1 - i
        out = guided_step_output(model, x, diffusion.timestep_map[i], labels)
        eps, v = out[:, :c], out[:, c:]
        frac = (v + 1) / 2
        log_var = frac * coef(np.log(diffusion.betas), i) + (1 - frac) * coef(diffusion.posterior_log_variance_clipped, i)
        x0 = coef(diffusion.sqrt_recip_alphas_cumprod, i) * x - coef(diffusion.sqrt_recipm1_alphas_cumprod, i) * eps
        mean = coef(diffusion.posterior_mean_coef1, i) * x0 + coef(diffusion.posterior_mean_coef2, i) * x
        x = mean + torch.exp(0.5 * log_var) * step_noise[n] if i > 0 else mean
    return x


def main():
    torch.set_num_threads(1)
    torch.manual_seed(0)
    os.makedirs(OUT_DIR, exist_ok=True)

    model = build_model()
    weights = {k: v.detach().clone().float() for k, v in model.state_dict().items()}
    save_safetensors(os.path.join(OUT_DIR, "tiny_dit.safetensors"), weights, {"num_heads": "4"})
    torch.save({"ema": model.state_dict(), "args": argparse.Namespace(model="tiny", num_heads=4)},
               os.path.join(OUT_DIR, "tiny_dit_train.pt"))

    g = {}
    with torch.no_grad():
        # ---- single forward, per stage
        x = torch.randn(2, 4, 8, 8)
        t = torch.tensor([999.0, 500.0])
        y = torch.tensor([3, 7])
        taps = []
        out = model(x, t, y, train=False, taps=taps)
        _, x_embed, c = taps[0]
        g.update(x=x, t=t, y=y.float(), x_embed=x_embed, c=c, t_emb=model.t_embedder(t), out=out)
        for b in range(2):
            a, m, xb = taps[1 + b]
            g[f"block{b}"] = xb
            if b == 0:
                g["block0_attn"], g["block0_mlp"] = a, m

        # ---- CFG
        x0 = torch.randn(2, 4, 8, 8)
        cfg_x = torch.cat([x0, x0], 0)
        cfg_t = torch.full((4,), 500.0)
        cfg_y = torch.tensor([3, 7, NUM_CLASSES, NUM_CLASSES])
        g.update(cfg_x=cfg_x, cfg_t=cfg_t, cfg_y=cfg_y.float(), cfg_scale=torch.tensor([CFG_SCALE]),
                 cfg_out=model.forward_with_cfg(cfg_x, cfg_t, cfg_y, CFG_SCALE),
                 cfg_out_3ch=model.forward_with_cfg(cfg_x, cfg_t, cfg_y, CFG_SCALE, guided_channels=3))

        # ---- samplers: 10 respaced steps, CFG 4.0 on all channels, classes [3, 7]
        kept = space_timesteps(1000, STEPS)
        diffusion = Diffusion(1000, kept)
        labels = torch.tensor([3, 7])
        order = torch.tensor([float(t) for t in reversed(kept)])                  # noisiest first
        g["ddim_timesteps"] = order
        ddim_noise = torch.randn(2, 4, 8, 8)
        g["ddim_noise"] = ddim_noise
        g["ddim_sample"], g["ddim_eps_step0"] = ddim_sample(model, diffusion, ddim_noise, labels)

        ddpm_noise = torch.randn(2, 4, 8, 8)
        step_noise = torch.randn(STEPS, 2, 4, 8, 8)
        g.update(ddpm_noise=ddpm_noise, ddpm_step_noise=step_noise,
                 ddpm_sample=ddpm_sample(model, diffusion, ddpm_noise, step_noise, labels))

        g["ddim50_timesteps"] = torch.tensor([float(t) for t in reversed(space_timesteps(1000, 50))])
        g["steps25_timesteps"] = torch.tensor([float(t) for t in reversed(space_timesteps(1000, 25))])

    g = {k: v.detach().contiguous().float() for k, v in g.items()}
    save_safetensors(os.path.join(OUT_DIR, "tiny_dit_golden.safetensors"), g,
                     {"script": "tools/reference/make_dit_fixtures.py", "seed": "0", "torch": torch.__version__})
    for name in ("tiny_dit.safetensors", "tiny_dit_train.pt", "tiny_dit_golden.safetensors"):
        path = os.path.join(OUT_DIR, name)
        print(f"{path}: {os.path.getsize(path)} bytes")
    print("ddim_timesteps", g["ddim_timesteps"].tolist())
    print("steps25 contains 166:", 166.0 in g["steps25_timesteps"].tolist())


if __name__ == "__main__":
    main()
