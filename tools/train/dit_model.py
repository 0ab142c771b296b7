"""The DiT architecture and the Gaussian diffusion of facebookresearch/DiT, written by us from
docs/methods.md §6 (not copied). Key names match the official checkpoints, so a state_dict
saved from this module loads in the official code and in DitCache.

Runs on Debian's PyTorch 1.13 and on newer PyTorch (no scaled_dot_product_attention, no timm).
"""
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


# ----------------------------------------------------------------------------------------------------------
# Helpers

def modulate(x, shift, scale):
    # x (N, T, D); shift, scale (N, D)
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


def timestep_embedding(t, dim, max_period=10000):
    """[cos(t*f), sin(t*f)] with f_j = exp(-ln(max_period) * j / half), j = 0..half-1 (cos first)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(0, half, dtype=torch.float32) / half).to(t.device)
    args = t[:, None].float() * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    return emb


def sincos_pos_embed(dim, grid_size):
    """MAE 2-D sin-cos table (grid_size^2, dim) in float64 -> float32. Token n = r*G + c; the COLUMN
    coordinate fills the first half: [sin(c w), cos(c w), sin(r w), cos(r w)], w_j = 1/10000^(j/(dim/4))."""
    quarter = dim // 4
    omega = 1.0 / 10000 ** (np.arange(quarter, dtype=np.float64) / quarter)
    rows, cols = np.meshgrid(np.arange(grid_size, dtype=np.float64), np.arange(grid_size, dtype=np.float64),
                             indexing="ij")
    c = cols.reshape(-1)[:, None] * omega[None]
    r = rows.reshape(-1)[:, None] * omega[None]
    table = np.concatenate([np.sin(c), np.cos(c), np.sin(r), np.cos(r)], axis=1)
    return table.astype(np.float32)


# ----------------------------------------------------------------------------------------------------------
# Embedders

class PatchEmbed(nn.Module):
    def __init__(self, patch, in_ch, dim):
        super().__init__()
        self.proj = nn.Conv2d(in_ch, dim, kernel_size=patch, stride=patch, bias=True)

    def forward(self, x):                      # (N, C, H, W)
        x = self.proj(x)                       # (N, D, H/p, W/p)
        return x.flatten(2).transpose(1, 2)    # (N, T, D), row-major tokens


class TimestepEmbedder(nn.Module):
    def __init__(self, dim, freq_dim=256):
        super().__init__()
        self.freq_dim = freq_dim
        self.mlp = nn.Sequential(nn.Linear(freq_dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, t):
        return self.mlp(timestep_embedding(t, self.freq_dim))


class LabelEmbedder(nn.Module):
    def __init__(self, num_classes, dim, dropout_prob):
        super().__init__()
        self.num_classes = num_classes
        self.dropout_prob = dropout_prob
        self.embedding_table = nn.Embedding(num_classes + (1 if dropout_prob > 0 else 0), dim)

    def forward(self, y, train):
        if train and self.dropout_prob > 0:
            drop = torch.rand(y.shape[0], device=y.device) < self.dropout_prob
            y = torch.where(drop, torch.full_like(y, self.num_classes), y)
        return self.embedding_table(y)


# ----------------------------------------------------------------------------------------------------------
# Block

class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=True)
        self.proj = nn.Linear(dim, dim, bias=True)

    def forward(self, x):                                           # (N, T, D)
        n, t, d = x.shape
        qkv = self.qkv(x).reshape(n, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]                            # (N, H, T, d)
        att = (q * (d // self.heads) ** -0.5) @ k.transpose(-2, -1)  # (N, H, T, T)
        att = att.softmax(dim=-1)
        x = (att @ v).transpose(1, 2).reshape(n, t, d)              # (N, T, D)
        return self.proj(x)


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


class DiTBlock(nn.Module):
    def __init__(self, dim, heads, mlp_ratio=4.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim, bias=True))

    def forward(self, x, c, taps=None):
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = self.adaLN_modulation(c).chunk(6, dim=1)
        a = self.attn(modulate(self.norm1(x), shift_msa, scale_msa))
        x = x + gate_msa.unsqueeze(1) * a
        m = self.mlp(modulate(self.norm2(x), shift_mlp, scale_mlp))
        x = x + gate_mlp.unsqueeze(1) * m
        if taps is not None:
            taps.append((a, m, x))
        return x


class FinalLayer(nn.Module):
    def __init__(self, dim, patch, out_ch):
        super().__init__()
        self.norm_final = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.linear = nn.Linear(dim, patch * patch * out_ch, bias=True)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 2 * dim, bias=True))

    def forward(self, x, c):
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=1)
        return self.linear(modulate(self.norm_final(x), shift, scale))


class DiT(nn.Module):
    def __init__(self, input_size=28, patch_size=4, in_channels=1, hidden_size=192, depth=12, num_heads=3,
                 mlp_ratio=4.0, class_dropout_prob=0.1, num_classes=10, learn_sigma=True):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = in_channels * 2 if learn_sigma else in_channels
        self.patch = patch_size
        self.num_heads = num_heads
        self.x_embedder = PatchEmbed(patch_size, in_channels, hidden_size)
        self.t_embedder = TimestepEmbedder(hidden_size)
        self.y_embedder = LabelEmbedder(num_classes, hidden_size, class_dropout_prob)
        grid = input_size // patch_size
        self.pos_embed = nn.Parameter(torch.from_numpy(sincos_pos_embed(hidden_size, grid)).unsqueeze(0),
                                      requires_grad=False)
        self.blocks = nn.ModuleList([DiTBlock(hidden_size, num_heads, mlp_ratio) for _ in range(depth)])
        self.final_layer = FinalLayer(hidden_size, patch_size, self.out_channels)
        self.initialize_weights()

    def initialize_weights(self):
        # As the official DiT: xavier linears, zeroed adaLN and output layer (so each block starts as identity).
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.constant_(m.bias, 0)
        w = self.x_embedder.proj.weight.data
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        nn.init.constant_(self.x_embedder.proj.bias, 0)
        nn.init.normal_(self.y_embedder.embedding_table.weight, std=0.02)
        nn.init.normal_(self.t_embedder.mlp[0].weight, std=0.02)
        nn.init.normal_(self.t_embedder.mlp[2].weight, std=0.02)
        for block in self.blocks:
            nn.init.constant_(block.adaLN_modulation[-1].weight, 0)
            nn.init.constant_(block.adaLN_modulation[-1].bias, 0)
        nn.init.constant_(self.final_layer.adaLN_modulation[-1].weight, 0)
        nn.init.constant_(self.final_layer.adaLN_modulation[-1].bias, 0)
        nn.init.constant_(self.final_layer.linear.weight, 0)
        nn.init.constant_(self.final_layer.linear.bias, 0)

    def unpatchify(self, x):
        # (N, T, p*p*C) -> (N, C, H, W): nhwpqc -> nchpwq
        c, p = self.out_channels, self.patch
        h = w = int(x.shape[1] ** 0.5)
        x = x.reshape(x.shape[0], h, w, p, p, c)
        x = torch.einsum("nhwpqc->nchpwq", x)
        return x.reshape(x.shape[0], c, h * p, w * p)

    def forward(self, x, t, y, train=False, taps=None):
        x = self.x_embedder(x) + self.pos_embed                 # (N, T, D)
        c = self.t_embedder(t) + self.y_embedder(y, train)      # (N, D)
        if taps is not None:
            taps.append(("embed", x, c))
        for block in self.blocks:
            x = block(x, c, taps)                               # (N, T, D)
        x = self.final_layer(x, c)                              # (N, T, p*p*out)
        return self.unpatchify(x)                               # (N, out, H, W)

    def forward_with_cfg(self, x, t, y, cfg_scale, guided_channels=None):
        """Batch [x; x] with labels [y; null]. Guides channels [0, guided_channels) (default: all in_channels;
        the official DiT guides 3)."""
        g = self.in_channels if guided_channels is None else guided_channels
        half = x[: len(x) // 2]
        out = self.forward(torch.cat([half, half], 0), t, y)
        eps, rest = out[:, :g], out[:, g:]
        cond, uncond = torch.split(eps, len(eps) // 2, dim=0)
        guided = uncond + cfg_scale * (cond - uncond)
        return torch.cat([torch.cat([guided, guided], 0), rest], dim=1)


# ----------------------------------------------------------------------------------------------------------
# Gaussian diffusion (linear betas, learned-range variance), float64 tables as the official code

class Diffusion:
    def __init__(self, num_timesteps=1000, use_timesteps=None):
        scale = 1000 / num_timesteps
        base_betas = np.linspace(scale * 1e-4, scale * 0.02, num_timesteps, dtype=np.float64)
        base_alphas_cumprod = np.cumprod(1.0 - base_betas)
        if use_timesteps is None:
            self.timestep_map = np.arange(num_timesteps)
            betas = base_betas
        else:
            # Respacing: new_beta_i = 1 - abar(t_i) / abar(t_{i-1})
            kept = sorted(use_timesteps)
            betas, last = [], 1.0
            for t in kept:
                betas.append(1 - base_alphas_cumprod[t] / last)
                last = base_alphas_cumprod[t]
            betas = np.array(betas, dtype=np.float64)
            self.timestep_map = np.array(kept)
        self.betas = betas
        self.num_timesteps = len(betas)
        alphas = 1.0 - betas
        self.alphas_cumprod = np.cumprod(alphas)
        self.alphas_cumprod_prev = np.append(1.0, self.alphas_cumprod[:-1])
        self.sqrt_recip_alphas_cumprod = np.sqrt(1.0 / self.alphas_cumprod)
        self.sqrt_recipm1_alphas_cumprod = np.sqrt(1.0 / self.alphas_cumprod - 1)
        self.posterior_variance = betas * (1.0 - self.alphas_cumprod_prev) / (1.0 - self.alphas_cumprod)
        self.posterior_log_variance_clipped = np.log(np.append(self.posterior_variance[1],
                                                               self.posterior_variance[1:]))
        self.posterior_mean_coef1 = betas * np.sqrt(self.alphas_cumprod_prev) / (1.0 - self.alphas_cumprod)
        self.posterior_mean_coef2 = (1.0 - self.alphas_cumprod_prev) * np.sqrt(alphas) / (1.0 - self.alphas_cumprod)

    @staticmethod
    def _take(arr, t, ndim):
        v = torch.from_numpy(arr).to(t.device)[t].float()
        return v.reshape(-1, *([1] * (ndim - 1)))

    def q_sample(self, x0, t, noise):
        a = self._take(np.sqrt(self.alphas_cumprod), t, x0.ndim)
        b = self._take(np.sqrt(1.0 - self.alphas_cumprod), t, x0.ndim)
        return a * x0 + b * noise

    def p_mean_logvar(self, model_out, x_t, t, in_ch):
        eps, v = model_out[:, :in_ch], model_out[:, in_ch:]
        min_log = self._take(self.posterior_log_variance_clipped, t, x_t.ndim)
        max_log = self._take(np.log(self.betas), t, x_t.ndim)
        frac = (v + 1) / 2
        log_var = frac * max_log + (1 - frac) * min_log
        x0 = self._take(self.sqrt_recip_alphas_cumprod, t, x_t.ndim) * x_t \
            - self._take(self.sqrt_recipm1_alphas_cumprod, t, x_t.ndim) * eps
        mean = self._take(self.posterior_mean_coef1, t, x_t.ndim) * x0 \
            + self._take(self.posterior_mean_coef2, t, x_t.ndim) * x_t
        return mean, log_var, x0, eps

    def training_losses(self, model, x0, t, y):
        """DiT's hybrid loss (LossType.MSE with learned sigma): mean-squared eps error plus the variational bound
        term for the variance, computed with the eps prediction detached (so the VB trains only the variance)."""
        noise = torch.randn_like(x0)
        x_t = self.q_sample(x0, t, noise)
        out = model(x_t, t, y, train=True)
        c = x0.shape[1]
        eps, v = out[:, :c], out[:, c:]
        frozen = torch.cat([eps.detach(), v], dim=1)
        mean, log_var, _, _ = self.p_mean_logvar(frozen, x_t, t, c)
        true_mean = self._take(self.posterior_mean_coef1, t, x0.ndim) * x0 \
            + self._take(self.posterior_mean_coef2, t, x0.ndim) * x_t
        true_log_var = self._take(self.posterior_log_variance_clipped, t, x0.ndim)
        kl = 0.5 * (-1.0 + log_var - true_log_var + torch.exp(true_log_var - log_var)
                    + (true_mean - mean) ** 2 * torch.exp(-log_var))
        kl = kl.mean(dim=(1, 2, 3)) / math.log(2.0)
        nll = -discretized_gaussian_log_likelihood(x0, mean, 0.5 * log_var).mean(dim=(1, 2, 3)) / math.log(2.0)
        vb = torch.where(t == 0, nll, kl)
        mse = ((noise - eps) ** 2).mean(dim=(1, 2, 3))
        return mse, vb


def _approx_std_normal_cdf(x):
    return 0.5 * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def discretized_gaussian_log_likelihood(x, means, log_scales):
    centered = x - means
    inv_stdv = torch.exp(-log_scales)
    cdf_plus = _approx_std_normal_cdf(inv_stdv * (centered + 1.0 / 255.0))
    cdf_min = _approx_std_normal_cdf(inv_stdv * (centered - 1.0 / 255.0))
    log_cdf_plus = torch.log(cdf_plus.clamp(min=1e-12))
    log_one_minus_cdf_min = torch.log((1.0 - cdf_min).clamp(min=1e-12))
    log_delta = torch.log((cdf_plus - cdf_min).clamp(min=1e-12))
    return torch.where(x < -0.999, log_cdf_plus, torch.where(x > 0.999, log_one_minus_cdf_min, log_delta))


def space_timesteps(num_timesteps, steps):
    """DiT's space_timesteps(T, "S") for one section: round-half-even of an accumulated float stride."""
    if steps == 1:
        return [0]
    stride = (num_timesteps - 1) / (steps - 1)
    cur, kept = 0.0, []
    for _ in range(steps):
        kept.append(round(cur))   # Python round is half-to-even
        cur += stride
    return sorted(set(kept))
