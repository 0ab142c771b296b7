"""Our own PyTorch reference of the Stable Diffusion VAE decoder (AutoencoderKL.decode as diffusers computes it),
written from the architecture of huggingface/diffusers (src/diffusers/models/autoencoders/autoencoder_kl.py,
autoencoders/vae.py `Decoder`, resnet.py `ResnetBlock2D` and `Upsample2D`, unets/unet_2d_blocks.py
`UNetMidBlock2D` and `UpDecoderBlock2D`, attention_processor.py `Attention` + `AttnProcessor`) and checked against
CompVis/latent-diffusion (ldm/modules/diffusionmodules/model.py `Decoder`, `ResnetBlock`, `AttnBlock`), without the
diffusers package (docs/methods.md §11). Module names follow diffusers, so `state_dict()` gives the current diffusers
key names; `legacy_names` and `compvis_names` give the other two namings the C# loader reads.

Also: `hashed_weights`, random weights of any config from an integer hash of (key, index), which the C# side
(VaeWeights.HashedFile) reproduces bit for bit, so the real sd-vae shapes are compared without a 200 MB fixture.
"""
import json

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

EPS = 1e-6  # every GroupNorm of the decoder (diffusers resnet_eps=1e-6, conv_norm_out eps=1e-6; ldm Normalize)


class ResnetBlock2D(nn.Module):
    """norm1, SiLU, conv1, norm2, SiLU, dropout (p=0), conv2; 1x1 conv_shortcut when the channels change;
    (shortcut(x) + h) / output_scale_factor, the factor 1.0 in the VAE."""

    def __init__(self, cin, cout, groups):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, cin, eps=EPS, affine=True)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.norm2 = nn.GroupNorm(groups, cout, eps=EPS, affine=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.conv_shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x):
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        if self.conv_shortcut is not None:
            x = self.conv_shortcut(x)
        return (x + h) / 1.0


class Attention(nn.Module):
    """The mid block's single-head attention over all pixels (heads = C / attention_head_dim = 1, dim_head = C):
    GroupNorm, q/k/v Linear over the (HW, C) token matrix, softmax(q kᵀ / √C) in float32, to_out.0 Linear,
    back to (C, H, W), plus the residual (rescale_output_factor 1)."""

    def __init__(self, c, groups):
        super().__init__()
        self.group_norm = nn.GroupNorm(groups, c, eps=EPS, affine=True)
        self.to_q = nn.Linear(c, c)
        self.to_k = nn.Linear(c, c)
        self.to_v = nn.Linear(c, c)
        self.to_out = nn.ModuleList([nn.Linear(c, c), nn.Dropout(0.0)])

    def forward(self, x):
        n, c, h, w = x.shape
        t = self.group_norm(x).view(n, c, h * w).transpose(1, 2)                # (N, HW, C)
        q, k, v = self.to_q(t), self.to_k(t), self.to_v(t)                       # (N, HW, C)
        p = torch.softmax(torch.bmm(q, k.transpose(1, 2)) * c ** -0.5, dim=-1)  # (N, HW, HW)
        o = self.to_out[0](torch.bmm(p, v))                                      # (N, HW, C)
        return o.transpose(1, 2).reshape(n, c, h, w) + x


class UNetMidBlock2D(nn.Module):
    def __init__(self, c, groups, add_attention=True):
        super().__init__()
        self.resnets = nn.ModuleList([ResnetBlock2D(c, c, groups), ResnetBlock2D(c, c, groups)])
        self.attentions = nn.ModuleList([Attention(c, groups)] if add_attention else [])

    def forward(self, x):
        x = self.resnets[0](x)
        for a in self.attentions:
            x = a(x)
        return self.resnets[1](x)


class Upsample2D(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class UpDecoderBlock2D(nn.Module):
    def __init__(self, cin, cout, layers, groups, add_upsample):
        super().__init__()
        self.resnets = nn.ModuleList([ResnetBlock2D(cin if i == 0 else cout, cout, groups) for i in range(layers)])
        self.upsamplers = nn.ModuleList([Upsample2D(cout)] if add_upsample else [])

    def forward(self, x):
        for r in self.resnets:
            x = r(x)
        for u in self.upsamplers:
            x = u(x)
        return x


class Decoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        ch, groups = cfg["block_out_channels"], cfg["norm_num_groups"]
        rev = list(reversed(ch))
        self.conv_in = nn.Conv2d(cfg["latent_channels"], ch[-1], 3, padding=1)
        self.mid_block = UNetMidBlock2D(ch[-1], groups, cfg.get("mid_block_add_attention", True))
        blocks, prev = [], rev[0]
        for i, cout in enumerate(rev):
            blocks.append(UpDecoderBlock2D(prev, cout, cfg["layers_per_block"] + 1, groups, i < len(rev) - 1))
            prev = cout
        self.up_blocks = nn.ModuleList(blocks)
        self.conv_norm_out = nn.GroupNorm(groups, ch[0], eps=EPS, affine=True)
        self.conv_out = nn.Conv2d(ch[0], cfg["out_channels"], 3, padding=1)

    def forward(self, z):
        x = self.mid_block(self.conv_in(z))
        for b in self.up_blocks:
            x = b(x)
        return self.conv_out(F.silu(self.conv_norm_out(x)))


class VaeDecoder(nn.Module):
    """The decoder half of AutoencoderKL: post_quant_conv (unless use_post_quant_conv is false) and Decoder.
    `decode_latents` is what DiT's sample.py does: vae.decode(samples / scaling_factor), plus shift_factor
    when the config has one (diffusers pipelines of 16-channel VAEs)."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.decoder = Decoder(cfg)
        c = cfg["latent_channels"]
        self.post_quant_conv = nn.Conv2d(c, c, 1) if cfg.get("use_post_quant_conv", True) else None

    def decode_latents(self, latents):
        z = latents / self.cfg.get("scaling_factor", 0.18215) + (self.cfg.get("shift_factor") or 0.0)
        if self.post_quant_conv is not None:
            z = self.post_quant_conv(z)
        return self.decoder(z)


def legacy_names(sd):
    """diffusers before 0.15 named the attention's projections query/key/value/proj_attn."""
    out = {}
    for k, v in sd.items():
        for new, old in ((".to_q.", ".query."), (".to_k.", ".key."), (".to_v.", ".value."), (".to_out.0.", ".proj_attn.")):
            k = k.replace(new, old)
        out[k] = v
    return out


def compvis_names(sd, levels):
    """CompVis/ldm names: mid.block_1/attn_1/block_2, up.N.block.M with N = levels - 1 - (diffusers up_blocks
    index), nin_shortcut, upsample.conv, norm_out; the attention's q/k/v/proj_out are 1x1 convs [C, C, 1, 1]."""
    out = {}
    for k, v in sd.items():
        p = k.split(".")
        if k.startswith("decoder.mid_block.resnets."):
            k = "decoder.mid.block_%d.%s" % (int(p[3]) + 1, ".".join(p[4:]))
        elif k.startswith("decoder.mid_block.attentions.0."):
            rest = ".".join(p[4:])
            for new, old in (("group_norm.", "norm."), ("to_q.", "q."), ("to_k.", "k."), ("to_v.", "v."), ("to_out.0.", "proj_out.")):
                if rest.startswith(new):
                    rest = old + rest[len(new):]
            k = "decoder.mid.attn_1." + rest
            if k.endswith("weight") and v.dim() == 2:
                v = v.reshape(v.shape[0], v.shape[1], 1, 1)
        elif k.startswith("decoder.up_blocks."):
            n = levels - 1 - int(p[2])
            if p[3] == "resnets":
                name = "nin_shortcut" if p[5] == "conv_shortcut" else p[5]
                k = "decoder.up.%d.block.%s.%s.%s" % (n, p[4], name, p[6])
            else:
                k = "decoder.up.%d.upsample.conv.%s" % (n, p[-1])
        elif k.startswith("decoder.conv_norm_out."):
            k = "decoder.norm_out." + p[-1]
        out[k] = v
    return out


def _fnv1a(text):
    h = 0x811C9DC5
    for b in text.encode("utf-8"):
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


def hashed_uniform(key, count):
    """count values in [-1, 1), u_i = (lowbias32(i·0x9E3779B1 + fnv1a(key)) >> 8) / 2^23 − 1, exact in float32."""
    x = (np.arange(count, dtype=np.uint64) * np.uint64(0x9E3779B1) + np.uint64(_fnv1a(key))) & np.uint64(0xFFFFFFFF)
    x ^= x >> np.uint64(16)
    x = (x * np.uint64(0x7FEB352D)) & np.uint64(0xFFFFFFFF)
    x ^= x >> np.uint64(15)
    x = (x * np.uint64(0x846CA68B)) & np.uint64(0xFFFFFFFF)
    x ^= x >> np.uint64(16)
    return (x >> np.uint64(8)).astype(np.float64) / float(1 << 23) - 1.0


def hashed_weights(model):
    """Every parameter of `model` (diffusers names) from hashed_uniform: conv/linear weights u·√(3/fan_in) (unit
    variance through a layer), biases 0.1·u, GroupNorm weight 1 + 0.5·u and bias 0.5·u. Each value is computed in
    float64 and rounded once to float32, as VaeWeights.HashedFile does."""
    sd = {}
    for k, p in model.state_dict().items():
        u = hashed_uniform(k, p.numel())
        is_norm = "norm" in k.split(".")[-2]
        if k.endswith("weight") and not is_norm:
            fan_in = p.numel() // p.shape[0]
            v = u * np.sqrt(3.0 / fan_in)
        elif k.endswith("weight"):
            v = 1.0 + 0.5 * u
        elif is_norm:
            v = 0.5 * u
        else:
            v = 0.1 * u
        sd[k] = torch.from_numpy(v.astype(np.float32)).reshape(p.shape)
    model.load_state_dict(sd)
    return sd


def config_json(cfg):
    """A diffusers-style vae/config.json for `cfg`."""
    n = len(cfg["block_out_channels"])
    full = {"_class_name": "AutoencoderKL", "act_fn": "silu", "in_channels": 3,
            "down_block_types": ["DownEncoderBlock2D"] * n, "up_block_types": ["UpDecoderBlock2D"] * n}
    full.update(cfg)
    return json.dumps(full, indent=2, sort_keys=True) + "\n"
