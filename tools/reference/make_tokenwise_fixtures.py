"""Golden samples for the token-wise caches ToCa and DuCa, from an independent Python reading of docs/methods.md
(sections 0, 1, 5.2, 5.3). Written from the spec, not from the C# policy, so that the C# parity test
(tests/DitCache.Sampling.Tests/TokenwiseParityTests.cs) compares two separate readings of the same text.

    OPENBLAS_NUM_THREADS=1 /usr/bin/python3 tools/reference/make_tokenwise_fixtures.py

Reads tests/TestData/dit/tiny_dit.safetensors and writes tests/TestData/dit/tiny_dit_tokenwise_golden.safetensors:
  noise                 (2,4,8,8)       initial latent, torch.manual_seed(0) randn (as make_cache_fixtures.py)
  none.sample           (2,4,8,8)       uncached DDIM sample
  <prefix>.sample       (2,4,8,8)       final sample under the cache
  <prefix>.computed     (50,)           1 where every block ran at sampling ordinal n
  <prefix>.steptype     (50,)           0 ToCa (partial) step, 1 full step, 2 DuCa aggressive step, 3 mixed step
                                        (block 0 full, blocks 1 .. depth-1 ToCa or aggressive; schedule=block only)
  <prefix>.blocktype    (50, depth)     the type each block ran as: 0 ToCa, 1 full, 2 aggressive (skipped)
  <prefix>.fresh        (50, depth)     tokens per image recomputed by the MLP of each block; -1 where not partial
  <prefix>.tokens       (50, depth, 4, 16)  the fresh token indices per image row of the CFG batch [cond; uncond],
                                        highest score first, padded with -1
Prefix as in make_cache_fixtures.py: "toca:n=3,ratio=0.07" -> "toca_n3_ratio0p07"; the metadata maps
"spec.<prefix>" to the spec.

Run: 50 DDIM steps (eta 0), classes [3, 7], CFG 1.5 on all eps channels, the batch [x; x] with labels [y; null]
through one cached forward (one decision for both halves; every image row scored and selected on its own).

Readings (the C# docs give the same list; docs/methods.md leaves these open):
  * Step type (5.2, 5.3): i = S-1-n. The first step is full (checked against N); every full step sets
    C = round_half_even(N / (1 + 0.4 - 0.8 i/S)), or 2 for i in [int(0.2S), int(0.4S)); with ratio 0, C = N
    (step weight 0, no forced 2; ToCa and DuCa alike). Later: full when i % C == 0; otherwise ToCa; DuCa makes it
    aggressive when i % C is even.
    schedule=step decides this once per step, before block 0. schedule=block (the default, the official code)
    decides it in every block against the C of the moment: block 0 of a full step already sets the new C, and
    blocks 1 .. depth-1 decide with it, so they may run a ToCa (DuCa: also aggressive) step while block 0 ran in
    full (a mixed step). A mixed aggressive step discards block 0's output: x = the last block's output of the
    previous model call.
  * Fresh ratio: ratio * layer_factor * step_factor * 2.5, clamped to [0, 1]; k = int(ratio * T). The layer
    factor divides by depth-1 where the official DiT-XL code has 27 (so it spans the same range on the 2-block
    model). Float64.
  * Score per image row, float64: s1 = received / ||received||_2 (received[k] = sum_q mean_h softmax[q, k] of the
    block's last full step), or with score=kv-norm s1 = u / ||u||_2 with u[k] = sum_h (1 - ||v[h, k, :]||_2) from
    the value vectors of that attention (||v|| in float32 as torch.norm, the rest float64), + w * stale / N, then in each 2x2 cell of the 4x4 token grid the best token (lowest
    index on ties) gains bonus * its score. Top-k by score, lower index first on ties.
  * Staleness: per block and image row; a full step zeroes it; a ToCa step adds 1 to every token, then zeroes the
    fresh ones. Aggressive steps leave it alone.
  * Aggressive step: the blocks are skipped and x = the last block's output of the previous model call.
"""
import os
import sys

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from make_cache_fixtures import (CFG_SCALE, CLASSES, DIT_DIR, NUM_CLASSES, STEPS, coef, load_model,  # noqa: E402
                                 prefix_of)
from dit_model import Diffusion, modulate, space_timesteps  # noqa: E402
from st_io import save_safetensors  # noqa: E402

SPECS = [
    "toca:n=3,ratio=0.07,schedule=step",
    "duca:n=3,ratio=0.05,schedule=step",
    "toca:n=4,ratio=0.2,sched=ddpm250,w=0.5,schedule=step",
    "toca:n=3,ratio=0.07",                          # schedule=block: mixed steps at n = 4, 17
    "duca:n=3,ratio=0.05",                          # mixed ToCa at n = 4, mixed aggressive at n = 17
    "toca:n=4,ratio=0.2,sched=ddpm250,w=0.5",       # mixed at n = 7, 19, 41
    "toca:n=3,ratio=0.07,score=kv-norm",            # the value-norm score
    "duca:n=3,ratio=0.05,score=kv-norm",
    "toca:n=3,ratio=0",                             # ratio 0: cycle fixed at N, no fresh token (FORA)
    "duca:n=3,ratio=0",                             # ratio 0: FORA's full steps, aggressive steps kept
]

DEFAULTS = {
    "toca": {"n": 3, "ratio": 0.07, "sched": "ddim50", "w": 0.25, "bonus": 0.6, "schedule": "block", "score": "attention"},
    "duca": {"n": 3, "ratio": 0.05, "sched": "ddim50", "w": 0.25, "bonus": 0.8, "schedule": "block", "score": "attention"},
}


def parse(spec):
    name, _, rest = spec.partition(":")
    knobs = dict(DEFAULTS[name])
    for part in filter(None, rest.split(",")):
        key, value = part.split("=")
        knobs[key] = value if key in ("sched", "schedule", "score") else (int(value) if key == "n" else float(value))
    return name, knobs


# ----------------------------------------------------------------------------------------------------------
# Schedule and ratio (docs/methods.md §5.2 / 5.3)

def new_cycle(threshold, i, steps, ratio):
    if ratio == 0:
        return threshold                                                 # fresh ratio 0: step weight 0, no forced 2
    if int(0.2 * steps) <= i < int(0.4 * steps):
        return 2
    return int(round(threshold / (1 + 0.4 - 0.8 * i / steps)))          # Python round: half to even


def block_types(steps, threshold, dual, per_block, ratio=0.07):
    """Per ordinal n, the type of every block position as (block 0, blocks 1 ..): 'F' full, 'T' ToCa, 'A' aggressive."""
    def kind(n, i, cycle):
        if n == 0 or i % cycle == 0:
            return "F"
        return "A" if dual and (i % cycle) % 2 == 0 else "T"

    out = []
    cycle = threshold
    for n in range(steps):
        i = steps - 1 - n
        first = kind(n, i, cycle)
        if first == "F":
            cycle = new_cycle(threshold, i, steps, ratio)
        out.append((first, kind(n, i, cycle) if per_block else first))
    return out


def letters(types):
    """F, T, A where every block agrees; m (rest ToCa) or a (rest aggressive) for a mixed step."""
    return "".join(a if a == b else ("m" if b == "T" else "a") for a, b in types)


def step_types(steps, threshold, dual):
    """'F' full, 'T' ToCa, 'A' aggressive, for n = 0 .. steps-1 (schedule=step)."""
    return [a for a, _ in block_types(steps, threshold, dual, False)]


def fresh_count(knobs, i, steps, layer, depth, tokens):
    ratio = knobs["ratio"]
    if knobs["sched"] != "constant":
        sw, lw = (2.0, -0.2) if knobs["sched"] == "ddim50" else (0.4, 0.8)
        step_factor = 1 + sw - 2 * sw * i / steps
        layer_factor = 1 + lw - 2 * lw * layer / max(depth - 1, 1)
        ratio = ratio * layer_factor * step_factor * (1 + 0.6 * 2.5)
    ratio = min(max(ratio, 0.0), 1.0)
    return int(ratio * tokens)


def select(s1_row, stale_row, knobs, k, side):
    """Token indices for one image row (lists of Python floats / ints)."""
    t = len(s1_row)
    score = [s1_row[j] + knobs["w"] * stale_row[j] / knobs["n"] for j in range(t)]
    bonus = knobs["bonus"]
    for r0 in range(0, side, 2):
        for c0 in range(0, side, 2):
            cell = [r * side + c for r in range(r0, min(r0 + 2, side)) for c in range(c0, min(c0 + 2, side))]
            best = cell[0]
            for j in cell[1:]:
                if score[j] > score[best]:
                    best = j
            score[best] = score[best] + bonus * score[best]
    ranked = sorted(range(t), key=lambda j: (-score[j], j))
    return ranked[:k]


# ----------------------------------------------------------------------------------------------------------
# The model pieces a token-wise step needs

def attention_with_received(attn, h):
    """Same math as dit_model.Attention, with the probabilities kept: returns (out (B,T,D), received (B,T),
    value norms (B,H,T))."""
    b, t, d = h.shape
    heads = attn.heads
    qkv = attn.qkv(h).reshape(b, t, 3, heads, d // heads).permute(2, 0, 3, 1, 4)
    q, k, v = qkv[0], qkv[1], qkv[2]                                    # (B, H, T, d)
    p = ((q * (d // heads) ** -0.5) @ k.transpose(-2, -1)).softmax(dim=-1)  # (B, H, T, T)
    out = (p @ v).transpose(1, 2).reshape(b, t, d)
    received = p.mean(dim=1).sum(dim=1)                                 # (B, T): sum over queries of the head mean
    return attn.proj(out), received, v.norm(dim=-1)


class TokenCache:
    def __init__(self, spec, steps, depth, rows, tokens):
        self.name, self.knobs = parse(spec)
        pairs = block_types(steps, self.knobs["n"], self.name == "duca", self.knobs["schedule"] == "block",
                            self.knobs["ratio"])
        self.blocks = [[a] + [b] * (depth - 1) for a, b in pairs]           # [n][l]
        self.letters = letters(pairs)
        self.steps, self.depth, self.rows, self.tokens = steps, depth, rows, tokens
        self.side = int(round(tokens ** 0.5))
        self.attn, self.mlp, self.s1, self.stale = {}, {}, {}, {}
        self.last_out = None
        self.fresh = torch.full((steps, depth), -1.0)
        self.picked = torch.full((steps, depth, rows, tokens), -1.0)


def cached_forward(model, x, t, y, cache, n):
    x = model.x_embedder(x) + model.pos_embed                               # (B, T, D)
    c = model.t_embedder(t) + model.y_embedder(y, False)                    # (B, D)
    i = cache.steps - 1 - n
    for l, block in enumerate(model.blocks):
        kind = cache.blocks[n][l]
        if kind == "A":
            x = cache.last_out.clone()                                      # this block and the rest skipped
            break
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = block.adaLN_modulation(c).chunk(6, dim=1)
        if kind == "F":
            a, received, vnorm = attention_with_received(block.attn, modulate(block.norm1(x), shift_msa, scale_msa))
            cache.attn[l] = a
            if cache.knobs["score"] == "kv-norm":
                cache.s1[l] = F.normalize((1.0 - vnorm.double()).sum(dim=1), p=2, dim=1).tolist()
            else:
                cache.s1[l] = F.normalize(received.double(), p=2, dim=1).tolist()
            x = x + gate_msa.unsqueeze(1) * a
            m = block.mlp(modulate(block.norm2(x), shift_mlp, scale_mlp))
            cache.mlp[l] = m.clone()
            cache.stale[l] = [[0] * cache.tokens for _ in range(cache.rows)]
            x = x + gate_mlp.unsqueeze(1) * m
        else:
            x = x + gate_msa.unsqueeze(1) * cache.attn[l]
            k = fresh_count(cache.knobs, i, cache.steps, l, cache.depth, cache.tokens)
            cache.fresh[n, l] = k
            for b in range(cache.rows):
                idx = select(cache.s1[l][b], cache.stale[l][b], cache.knobs, k, cache.side)
                cache.stale[l][b] = [s + 1 for s in cache.stale[l][b]]
                for j in idx:
                    cache.stale[l][b][j] = 0
                if k > 0:
                    cache.picked[n, l, b, :k] = torch.tensor(idx, dtype=torch.float32)
                    rows_x = x[b, idx]                                  # (k, D)
                    h = modulate(block.norm2(rows_x.unsqueeze(0)), shift_mlp[b:b + 1], scale_mlp[b:b + 1])
                    cache.mlp[l][b, idx] = block.mlp(h)[0]
            x = x + gate_mlp.unsqueeze(1) * cache.mlp[l]
    cache.last_out = x.clone()
    x = model.final_layer(x, c)
    return model.unpatchify(x)


def ddim_sample(model, diffusion, noise, labels, spec):
    s = diffusion.num_timesteps
    timesteps = [float(diffusion.timestep_map[s - 1 - n]) for n in range(s)]
    n_img = noise.shape[0]
    tokens = model.pos_embed.shape[1]                                       # 16: the 4x4 patch grid
    cache = None if spec == "none" else TokenCache(spec, s, len(model.blocks), 2 * n_img, tokens)
    x = noise.clone()
    ch = model.in_channels
    yy = torch.cat([labels, torch.full_like(labels, NUM_CLASSES)], 0)
    for n in range(s):
        i = s - 1 - n
        tt = torch.full((2 * n_img,), timesteps[n], dtype=torch.float32)
        xx = torch.cat([x, x], 0)
        out = model(xx, tt, yy) if cache is None else cached_forward(model, xx, tt, yy, cache, n)
        cond, uncond = out[:n_img, :ch], out[n_img:, :ch]
        eps = uncond + CFG_SCALE * (cond - uncond)
        x0 = coef(diffusion.sqrt_recip_alphas_cumprod, i) * x - coef(diffusion.sqrt_recipm1_alphas_cumprod, i) * eps
        eps = (coef(diffusion.sqrt_recip_alphas_cumprod, i) * x - x0) / coef(diffusion.sqrt_recipm1_alphas_cumprod, i)
        abar_prev = diffusion.alphas_cumprod_prev
        x = coef(abar_prev ** 0.5, i) * x0 + coef((1.0 - abar_prev) ** 0.5, i) * eps
    return x, cache


def self_checks():
    toca = "".join(step_types(50, 3, False))
    assert toca == "FTTTFFTTTFTTTFTTTFTFTTFTTFTTFTTFTFTFTFTFTFTFTFTFTF", toca   # docs/methods.md §5.2
    duca = "".join(step_types(50, 3, True))
    assert duca.replace("A", "T") == toca and duca.count("A") == 8, duca
    # schedule=block (issue 19): mixed steps at n = 4 and 17 for N = 3, at n = 7, 19, 41 for N = 4; DuCa's n = 17 is
    # a mixed aggressive step (32 mod 3 = 2).
    assert letters(block_types(50, 3, False, True)) == "FTTTmFTTTFTTTFTTTmTFTTFTTFTTFTTFTFTFTFTFTFTFTFTFTF"
    four = letters(block_types(50, 4, False, True))
    assert [n for n, ch in enumerate(four) if ch == "m"] == [7, 19, 41], four
    assert letters(block_types(50, 3, True, True))[17] == "a"
    # The 2x2 bonus and the tie-breaks on a uniform row: each cell's first token wins.
    assert select([0.25] * 16, [0] * 16, {"w": 0.25, "n": 3, "bonus": 0.6}, 6, 4) == [0, 2, 8, 10, 1, 3]
    # ratio 0: FORA's cycle (full where i % N == 0), in both readings; DuCa keeps aggressive steps at even i % N.
    fora = "".join("F" if n == 0 or (49 - n) % 3 == 0 else "T" for n in range(50))
    assert letters(block_types(50, 3, False, True, 0.0)) == fora == letters(block_types(50, 3, False, False, 0.0))
    duca0 = letters(block_types(50, 3, True, True, 0.0))
    assert duca0.replace("A", "T") == fora and duca0.count("A") == 16, duca0


def main():
    torch.set_num_threads(1)
    self_checks()
    model = load_model()
    assert model.pos_embed.shape[1] == 16
    diffusion = Diffusion(1000, space_timesteps(1000, STEPS))
    labels = torch.tensor(CLASSES)
    torch.manual_seed(0)
    noise = torch.randn(2, 4, 8, 8)
    g = {"noise": noise}
    meta = {"script": "tools/reference/make_tokenwise_fixtures.py", "seed": "0", "torch": torch.__version__,
            "steps": str(STEPS), "sampler": "ddim", "eta": "0", "cfg_scale": str(CFG_SCALE),
            "classes": ",".join(map(str, CLASSES)), "guided_channels": "all"}
    with torch.no_grad():
        reference, _ = ddim_sample(model, diffusion, noise, labels, "none")
        g["none.sample"] = reference
        meta["spec.none"] = "none"
        for spec in SPECS:
            p = prefix_of(spec)
            sample, cache = ddim_sample(model, diffusion, noise, labels, spec)
            code = {"T": 0.0, "F": 1.0, "A": 2.0, "m": 3.0, "a": 3.0}
            g[f"{p}.sample"] = sample
            g[f"{p}.computed"] = torch.tensor([1.0 if k == "F" else 0.0 for k in cache.letters])
            g[f"{p}.steptype"] = torch.tensor([code[k] for k in cache.letters])
            g[f"{p}.blocktype"] = torch.tensor([[code[k] for k in row] for row in cache.blocks])
            g[f"{p}.fresh"] = cache.fresh
            g[f"{p}.tokens"] = cache.picked
            meta[f"spec.{p}"] = spec
            err = ((sample - reference).norm() / reference.norm()).item()
            fresh = cache.fresh[cache.fresh >= 0]
            print(f"{spec:45s} {p:35s} {cache.letters}  fresh tokens {int(fresh.sum())} over "
                  f"{fresh.numel()} partial MLPs  rel L2 to uncached {err:.3e}")
    path = os.path.join(DIT_DIR, "tiny_dit_tokenwise_golden.safetensors")
    save_safetensors(path, {k: v.contiguous().float() for k, v in g.items()}, meta)
    print(f"{path}: {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
