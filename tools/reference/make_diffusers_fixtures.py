"""The tiny DiT of make_dit_fixtures.py in the diffusers layout, for the loader's parity tests.

    OPENBLAS_NUM_THREADS=1 /usr/bin/python3 tools/reference/make_diffusers_fixtures.py

Reads tests/TestData/dit/tiny_dit.safetensors (official facebookresearch/DiT key names) and writes the folder that
`DiTPipeline.save_pretrained` writes for it, with the key renaming of diffusers' scripts/convert_dit_to_diffusers.py
re-implemented here from its rules (no diffusers code; Debian has no diffusers):

  tests/TestData/diffusers/tiny-dit/model_index.json
  tests/TestData/diffusers/tiny-dit/transformer/config.json                           DiTTransformer2DModel config
  tests/TestData/diffusers/tiny-dit/transformer/diffusion_pytorch_model.safetensors   diffusers key names
  tests/TestData/diffusers/tiny-dit/scheduler/scheduler_config.json
  tests/TestData/diffusers/tiny-dit-bin/...                                           the same, weights as the
                                            torch.save .bin of older diffusers releases (tensors share storage)

The rules (official -> diffusers):
  x_embedder.proj                     -> pos_embed.proj
  t_embedder.mlp.0 / .mlp.2           -> transformer_blocks.{i}.norm1.emb.timestep_embedder.linear_1 / linear_2
                                         (one copy per block: every block's AdaLayerNormZero owns an embedder)
  y_embedder.embedding_table          -> transformer_blocks.{i}.norm1.emb.class_embedder.embedding_table (per block)
  blocks.{i}.adaLN_modulation.1       -> transformer_blocks.{i}.norm1.linear (same 6 chunks, same order)
  blocks.{i}.attn.qkv                 -> transformer_blocks.{i}.attn1.to_q / to_k / to_v (rows split in thirds)
  blocks.{i}.attn.proj                -> transformer_blocks.{i}.attn1.to_out.0
  blocks.{i}.mlp.fc1 / fc2            -> transformer_blocks.{i}.ff.net.0.proj / ff.net.2
  final_layer.adaLN_modulation.1      -> proj_out_1 (same 2 chunks: shift, scale)
  final_layer.linear                  -> proj_out_2
  pos_embed                           -> dropped (a non-persistent buffer in diffusers' PatchEmbed)

The script then checks the renaming: a forward written on the diffusers names with the official math (timestep
frequencies without shift, LayerNorm eps 1e-6 everywhere) equals the official DiT forward on the official names, and
it prints how far diffusers' own math (frequency shift 1, eps 1e-5 before the MLP) lands from it
(docs/models/dit-xl2.md).
"""
import json
import math
import os
import shutil
import sys

import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tools", "train"))
from dit_model import DiT  # noqa: E402
from st_io import load_safetensors, save_safetensors  # noqa: E402

SOURCE = os.path.join(ROOT, "tests", "TestData", "dit", "tiny_dit.safetensors")
OUT_DIR = os.path.join(ROOT, "tests", "TestData", "diffusers")
HEADS, NUM_CLASSES, INPUT, PATCH, CHANNELS, DEPTH = 4, 10, 8, 2, 4, 2


def to_diffusers(sd, depth, share=False):
    """Official state dict -> diffusers names. share=True keeps views and one tensor under many keys (torch.save
    then writes shared storages, as the conversion script's state dict does); otherwise every entry is a copy."""
    own = (lambda t: t) if share else (lambda t: t.clone())
    out = {"pos_embed.proj.weight": own(sd["x_embedder.proj.weight"]),
           "pos_embed.proj.bias": own(sd["x_embedder.proj.bias"])}
    for i in range(depth):
        b, o = f"transformer_blocks.{i}", f"blocks.{i}"
        emb = f"{b}.norm1.emb"
        out[f"{emb}.timestep_embedder.linear_1.weight"] = own(sd["t_embedder.mlp.0.weight"])
        out[f"{emb}.timestep_embedder.linear_1.bias"] = own(sd["t_embedder.mlp.0.bias"])
        out[f"{emb}.timestep_embedder.linear_2.weight"] = own(sd["t_embedder.mlp.2.weight"])
        out[f"{emb}.timestep_embedder.linear_2.bias"] = own(sd["t_embedder.mlp.2.bias"])
        out[f"{emb}.class_embedder.embedding_table.weight"] = own(sd["y_embedder.embedding_table.weight"])
        out[f"{b}.norm1.linear.weight"] = own(sd[f"{o}.adaLN_modulation.1.weight"])
        out[f"{b}.norm1.linear.bias"] = own(sd[f"{o}.adaLN_modulation.1.bias"])
        q, k, v = torch.chunk(sd[f"{o}.attn.qkv.weight"], 3, dim=0)
        qb, kb, vb = torch.chunk(sd[f"{o}.attn.qkv.bias"], 3, dim=0)
        for name, w, bias in (("to_q", q, qb), ("to_k", k, kb), ("to_v", v, vb)):
            out[f"{b}.attn1.{name}.weight"] = own(w)
            out[f"{b}.attn1.{name}.bias"] = own(bias)
        out[f"{b}.attn1.to_out.0.weight"] = own(sd[f"{o}.attn.proj.weight"])
        out[f"{b}.attn1.to_out.0.bias"] = own(sd[f"{o}.attn.proj.bias"])
        out[f"{b}.ff.net.0.proj.weight"] = own(sd[f"{o}.mlp.fc1.weight"])
        out[f"{b}.ff.net.0.proj.bias"] = own(sd[f"{o}.mlp.fc1.bias"])
        out[f"{b}.ff.net.2.weight"] = own(sd[f"{o}.mlp.fc2.weight"])
        out[f"{b}.ff.net.2.bias"] = own(sd[f"{o}.mlp.fc2.bias"])
    out["proj_out_1.weight"] = own(sd["final_layer.adaLN_modulation.1.weight"])
    out["proj_out_1.bias"] = own(sd["final_layer.adaLN_modulation.1.bias"])
    out["proj_out_2.weight"] = own(sd["final_layer.linear.weight"])
    out["proj_out_2.bias"] = own(sd["final_layer.linear.bias"])
    return out


def timestep_features(t, shift):
    # diffusers get_timestep_embedding(flip_sin_to_cos=True, downscale_freq_shift=shift); shift 0 is DiT's own.
    half = 128
    exponent = -math.log(10000) * torch.arange(half, dtype=torch.float32) / (half - shift)
    args = t[:, None].float() * torch.exp(exponent)[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


def sincos_pos_embed(dim, grid):
    import numpy as np
    g = np.arange(grid, dtype=np.float32)
    gw, gh = np.meshgrid(g, g)
    def one(d, pos):
        omega = 1.0 / 10000 ** (np.arange(d // 2, dtype=np.float64) / (d / 2.0))
        out = np.einsum("m,d->md", pos.reshape(-1), omega)
        return np.concatenate([np.sin(out), np.cos(out)], axis=1)
    return torch.from_numpy(np.concatenate([one(dim // 2, gw), one(dim // 2, gh)], axis=1)).float()


def diffusers_forward(w, x, t, y, shift, mlp_eps):
    """DiTTransformer2DModel.forward written on the diffusers names (attention.py BasicTransformerBlock with
    norm_type ada_norm_zero, embeddings.py PatchEmbed/CombinedTimestepLabelEmbeddings, normalization.py
    AdaLayerNormZero). shift=0, mlp_eps=1e-6 is the official math; shift=1, mlp_eps=1e-5 is diffusers' own."""
    n, d = x.shape[0], w["pos_embed.proj.bias"].shape[0]
    h = F.conv2d(x, w["pos_embed.proj.weight"], w["pos_embed.proj.bias"], stride=PATCH)
    h = h.flatten(2).transpose(1, 2) + sincos_pos_embed(d, INPUT // PATCH)[None]     # (N, T, D)

    def cond(i):
        e = f"transformer_blocks.{i}.norm1.emb"
        f = timestep_features(t, shift)
        te = F.linear(F.silu(F.linear(f, w[f"{e}.timestep_embedder.linear_1.weight"], w[f"{e}.timestep_embedder.linear_1.bias"])),
                      w[f"{e}.timestep_embedder.linear_2.weight"], w[f"{e}.timestep_embedder.linear_2.bias"])
        return te + w[f"{e}.class_embedder.embedding_table.weight"][y]               # (N, D)

    for i in range(DEPTH):
        b = f"transformer_blocks.{i}"
        m = F.linear(F.silu(cond(i)), w[f"{b}.norm1.linear.weight"], w[f"{b}.norm1.linear.bias"])
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = m.chunk(6, dim=1)
        z = F.layer_norm(h, (d,), eps=1e-6) * (1 + scale_msa[:, None]) + shift_msa[:, None]
        q = F.linear(z, w[f"{b}.attn1.to_q.weight"], w[f"{b}.attn1.to_q.bias"])
        k = F.linear(z, w[f"{b}.attn1.to_k.weight"], w[f"{b}.attn1.to_k.bias"])
        v = F.linear(z, w[f"{b}.attn1.to_v.weight"], w[f"{b}.attn1.to_v.bias"])
        split = lambda a: a.view(n, -1, HEADS, d // HEADS).transpose(1, 2)            # (N, H, T, Dh)
        a = torch.softmax(split(q) @ split(k).transpose(-1, -2) / math.sqrt(d // HEADS), dim=-1) @ split(v)
        a = F.linear(a.transpose(1, 2).reshape(n, -1, d), w[f"{b}.attn1.to_out.0.weight"], w[f"{b}.attn1.to_out.0.bias"])
        h = h + gate_msa[:, None] * a
        z = F.layer_norm(h, (d,), eps=mlp_eps) * (1 + scale_mlp[:, None]) + shift_mlp[:, None]
        f = F.gelu(F.linear(z, w[f"{b}.ff.net.0.proj.weight"], w[f"{b}.ff.net.0.proj.bias"]), approximate="tanh")
        h = h + gate_mlp[:, None] * F.linear(f, w[f"{b}.ff.net.2.weight"], w[f"{b}.ff.net.2.bias"])

    shift_out, scale_out = F.linear(F.silu(cond(0)), w["proj_out_1.weight"], w["proj_out_1.bias"]).chunk(2, dim=1)
    h = F.layer_norm(h, (d,), eps=1e-6) * (1 + scale_out[:, None]) + shift_out[:, None]
    h = F.linear(h, w["proj_out_2.weight"], w["proj_out_2.bias"])                     # (N, T, p*p*C_out)
    g, c_out = INPUT // PATCH, h.shape[-1] // (PATCH * PATCH)
    h = h.reshape(n, g, g, PATCH, PATCH, c_out)
    return torch.einsum("nhwpqc->nchpwq", h).reshape(n, c_out, g * PATCH, g * PATCH)


def write_folder(folder, weights, bin_format):
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(os.path.join(folder, "transformer"))
    os.makedirs(os.path.join(folder, "scheduler"))
    index = {"_class_name": "DiTPipeline", "_diffusers_version": "0.12.0.dev0",
             "scheduler": ["diffusers", "DDIMScheduler"], "transformer": ["diffusers", "Transformer2DModel"],
             "vae": ["diffusers", "AutoencoderKL"]}
    config = {"_class_name": "Transformer2DModel", "_diffusers_version": "0.12.0.dev0",
              "activation_fn": "gelu-approximate", "attention_bias": True, "attention_head_dim": 64 // HEADS,
              "cross_attention_dim": None, "dropout": 0.0, "in_channels": CHANNELS, "norm_elementwise_affine": False,
              "norm_num_groups": 32, "norm_type": "ada_norm_zero", "num_attention_heads": HEADS,
              "num_embeds_ada_norm": NUM_CLASSES, "num_layers": DEPTH, "num_vector_embeds": None,
              "only_cross_attention": False, "out_channels": 2 * CHANNELS, "patch_size": PATCH,
              "sample_size": INPUT, "upcast_attention": False, "use_linear_projection": False}
    scheduler = {"_class_name": "DDIMScheduler", "_diffusers_version": "0.12.0.dev0", "beta_end": 0.02,
                 "beta_schedule": "linear", "beta_start": 0.0001, "clip_sample": False, "num_train_timesteps": 1000,
                 "prediction_type": "epsilon", "set_alpha_to_one": True, "steps_offset": 0, "trained_betas": None}
    for path, obj in (("model_index.json", index), ("transformer/config.json", config),
                      ("scheduler/scheduler_config.json", scheduler)):
        with open(os.path.join(folder, path), "w") as f:
            json.dump(obj, f, indent=2, sort_keys=True)
            f.write("\n")
    if bin_format:
        torch.save(weights, os.path.join(folder, "transformer", "diffusion_pytorch_model.bin"))
    else:
        save_safetensors(os.path.join(folder, "transformer", "diffusion_pytorch_model.safetensors"), weights)


def main():
    torch.set_num_threads(1)
    torch.manual_seed(0)
    sd, _ = load_safetensors(SOURCE)
    converted = to_diffusers(sd, DEPTH)
    assert len(converted) == 2 + DEPTH * 19 + 4, len(converted)

    model = DiT(input_size=INPUT, patch_size=PATCH, in_channels=CHANNELS, hidden_size=64, depth=DEPTH,
                num_heads=HEADS, num_classes=NUM_CLASSES, learn_sigma=True, class_dropout_prob=0.1)
    model.load_state_dict(sd)
    model.eval()
    with torch.no_grad():
        x = torch.randn(3, CHANNELS, INPUT, INPUT)
        t = torch.tensor([999.0, 500.0, 3.0])
        y = torch.tensor([3, 7, NUM_CLASSES])
        official = model(x, t, y)
        ours = diffusers_forward(converted, x, t, y, shift=0, mlp_eps=1e-6)
        port = diffusers_forward(converted, x, t, y, shift=1, mlp_eps=1e-5)
        shift_only = diffusers_forward(converted, x, t, y, shift=1, mlp_eps=1e-6)
        eps_only = diffusers_forward(converted, x, t, y, shift=0, mlp_eps=1e-5)
    scale = official.abs().max().item()
    err = (ours - official).abs().max().item() / scale
    assert err < 1e-6, f"renamed weights under the official math differ from the official forward: {err:.3g}"
    print(f"renaming checked: max |diffusers-named official math - official| / max|official| = {err:.3g}")
    for what, out in (("diffusers' own math (freq shift 1, MLP LayerNorm eps 1e-5)", port),
                      ("frequency shift alone", shift_only), ("MLP LayerNorm eps 1e-5 alone", eps_only)):
        print(f"{what} vs official: {(out - official).abs().max().item() / scale:.3g} relative max")

    write_folder(os.path.join(OUT_DIR, "tiny-dit"), converted, bin_format=False)
    write_folder(os.path.join(OUT_DIR, "tiny-dit-bin"), to_diffusers(sd, DEPTH, share=True), bin_format=True)
    for root, _, files in sorted(os.walk(OUT_DIR)):
        for name in sorted(files):
            path = os.path.join(root, name)
            print(f"{os.path.relpath(path, ROOT)}: {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
