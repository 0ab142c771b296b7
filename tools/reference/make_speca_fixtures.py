"""Golden samples and per-sample decisions for SpeCa (docs/methods.md §5.11), from an independent Python reading of
the method: written from docs/methods.md §5.11 and §4.1, not from the C# policy or its batch machinery. Each image is
sampled on its own (its CFG pair [x; x] with labels [y; null] as the batch), so the per-sample decisions the C# engine
takes inside one batch of two images are compared with two runs that never share a batch.

    OPENBLAS_NUM_THREADS=1 /usr/bin/python3 tools/reference/make_speca_fixtures.py

Reads tests/TestData/dit/tiny_dit.safetensors and writes tests/TestData/dit/tiny_dit_speca_golden.safetensors:
  noise                 (2,4,8,8)  initial latent, torch.manual_seed(0) randn (the cache fixture's)
  <prefix>.sample       (2,4,8,8)  final sample under the spec
  <prefix>.outcome      (50,2)     per step and image: 0 computed, 1 drafted unchecked, 2 accepted, 3 rejected,
                                   4 failed but used (reject=next)
  <prefix>.error        (50,2)     the verification error, -1 where the draft was not verified
The __metadata__ maps each prefix to its C# spec (key "spec.<prefix>"). Prefixes as make_cache_fixtures.py.

Run: 50 DDIM steps (eta 0, no clipping), classes [3, 7], CFG 1.5 on all eps channels. The model math is float32;
Taylor factors and weights are float64, the forecast cast to float32 where it enters the network; the verification
error is computed in float64 from the float32 block outputs.

SpeCa as §5.11 states it, per image:
  * a step is full when n < warmup, or the image has no full step yet, or it has drafted `max` steps in a row;
  * otherwise it is drafted: every block's attention and MLP output is TaylorSeer's forecast (§4.1: factors of the
    image's own full steps, differences gated from ordinal warmup-1, latest-gap divisor, x = n - last full);
  * draft number k after a full step (k = 1, 2, ...) is verified when k > min: block `layer` (the last here) is also
    computed from the drafted input with every module computed; the error between the drafted and the computed block
    output is rel-l1 = mean(|d - c| / (|c| + 1e-10)) or l2 = ||d - c|| / ||c||, over the image's CFG pair; the draft is
    accepted when error <= max(tau * decay^((n+1)/S), floor), and the drafted output continues;
  * a rejected step is computed again in full (from the step's input) and counts as a full step; with reject=next
    (the official code's rule) the failed draft is used and the image's next step is full instead.
"""
import math
import os
import sys

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tools", "train"))
sys.path.insert(0, os.path.join(ROOT, "tools", "reference"))
from dit_model import Diffusion, modulate, space_timesteps  # noqa: E402
from make_cache_fixtures import CFG_SCALE, CLASSES, DIT_DIR, NUM_CLASSES, STEPS, coef, load_model, parse, prefix_of  # noqa: E402
from st_io import load_safetensors, save_safetensors  # noqa: E402

# tau chosen so that the tiny random DiT both accepts and rejects drafts (its block outputs move far more per step than
# a trained DiT's); the script checks that no verified error lies within 5e-2 (relative) of its threshold, where the
# float32 round-off of two implementations could tip a decision.
SPECS = [
    "speca:tau=0.1,decay=0.01,floor=0.01,min=2,max=5,o=4,warmup=3,layer=-1,metric=rel-l1",
    "speca:tau=0.012,decay=0.1,floor=0.0002,min=2,max=5,o=4,warmup=3,layer=-1,metric=rel-l1",
    "speca:tau=0.003,decay=0.05,floor=0.00002,min=1,max=4,o=2,warmup=3,layer=-1,metric=l2",
    "speca:tau=0.012,decay=0.1,floor=0.0002,min=2,max=5,o=4,warmup=3,layer=-1,metric=rel-l1,reject=next",
]


class SpeCaImage:
    """The SpeCa state of one image (its CFG pair)."""

    def __init__(self, steps, knobs):
        self.steps = steps
        self.tau, self.decay, self.floor = float(knobs["tau"]), float(knobs["decay"]), float(knobs["floor"])
        self.min, self.max, self.order = int(knobs["min"]), int(knobs["max"]), int(knobs["o"])
        self.warmup, self.metric = int(knobs["warmup"]), knobs["metric"]
        self.reject = knobs.get("reject", "now")
        self.due_full = False
        self.factors = {}            # (block, module) -> [d_0, d_1, ...] float64
        self.last_full = None
        self.drafts = 0

    def threshold(self, n):
        return max(self.tau * self.decay ** ((n + 1) / self.steps), self.floor)

    def record(self, n, key, f):
        old = self.factors.get(key, []) if (n >= self.warmup - 1 and self.last_full is not None) else []
        new = [f.detach().to(torch.float64).clone()]
        for j in range(self.order):
            if j >= len(old):
                break
            new.append((new[j] - old[j]) / float(n - self.last_full))
        self.factors[key] = new

    def forecast(self, n, key):
        x = float(n - self.last_full)
        out = torch.zeros_like(self.factors[key][0])
        for j, d in enumerate(self.factors[key]):
            out += d * (x ** j / math.factorial(j))
        return out.to(torch.float32)

    def error(self, d, c):
        d64, c64 = d.to(torch.float64), c.to(torch.float64)
        if self.metric == "rel-l1":
            return ((d64 - c64).abs() / (c64.abs() + 1e-10)).mean().item()
        return ((d64 - c64).norm() / c64.norm()).item()


def block_full(block, x, mods, record=None):
    shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = mods
    a = block.attn(modulate(block.norm1(x), shift_msa, scale_msa))
    if record:
        record("attn", a)
    x = x + gate_msa.unsqueeze(1) * a
    m = block.mlp(modulate(block.norm2(x), shift_mlp, scale_mlp))
    if record:
        record("mlp", m)
    return x + gate_mlp.unsqueeze(1) * m


def forward(model, state, n, x, t, y):
    """One step of one image's CFG pair; returns the model output and the outcome code and error."""
    h0 = model.x_embedder(x) + model.pos_embed
    c = model.t_embedder(t) + model.y_embedder(y, False)
    mods = [block.adaLN_modulation(c).chunk(6, dim=1) for block in model.blocks]
    depth = len(model.blocks)
    full = n < state.warmup or state.last_full is None or state.drafts >= state.max or state.due_full
    outcome, err = 0, -1.0
    if not full:
        verify = state.drafts + 1 > state.min
        h = h0
        for l, block in enumerate(model.blocks):
            g = mods[l]
            drafted = h + g[2].unsqueeze(1) * state.forecast(n, (l, "attn"))
            drafted = drafted + g[5].unsqueeze(1) * state.forecast(n, (l, "mlp"))
            if verify and l == depth - 1:
                computed = block_full(block, h, g)
                err = state.error(drafted, computed)
            h = drafted
        if verify and not (err <= state.threshold(n)) and state.reject == "next":
            outcome, state.due_full = 4, True                                   # keep the draft; the next step is full
            state.drafts += 1
        elif verify and not (err <= state.threshold(n)):
            full, outcome = True, 3
        else:
            outcome = 2 if verify else 1
            state.drafts += 1
    if full:
        h = h0
        for l, block in enumerate(model.blocks):
            h = block_full(block, h, mods[l], record=lambda mod, f, l=l: state.record(n, (l, mod), f))
        state.last_full, state.drafts, state.due_full = n, 0, False
    out = model.final_layer(h, c)
    return model.unpatchify(out), outcome, err


def sample_image(model, diffusion, noise, label, spec):
    _, knobs = parse(spec)
    s = diffusion.num_timesteps
    state = SpeCaImage(s, knobs)
    x = noise.clone()
    ch = model.in_channels
    y = torch.tensor([label, NUM_CLASSES])
    outcomes, errors = [], []
    for n in range(s):
        i = s - 1 - n
        t = torch.full((2,), float(diffusion.timestep_map[i]), dtype=torch.float32)
        out, outcome, err = forward(model, state, n, torch.cat([x, x], 0), t, y)
        if err >= 0:
            margin = abs(err - state.threshold(n)) / state.threshold(n)
            assert margin > 5e-2, f"{spec}: step {n} error {err} within 5e-2 of the threshold {state.threshold(n)}"
        outcomes.append(outcome)
        errors.append(err)
        eps = out[1:, :ch] + CFG_SCALE * (out[:1, :ch] - out[1:, :ch])
        x0 = coef(diffusion.sqrt_recip_alphas_cumprod, i) * x - coef(diffusion.sqrt_recipm1_alphas_cumprod, i) * eps
        eps = (coef(diffusion.sqrt_recip_alphas_cumprod, i) * x - x0) / coef(diffusion.sqrt_recipm1_alphas_cumprod, i)
        abar_prev = diffusion.alphas_cumprod_prev
        x = coef(np.sqrt(abar_prev), i) * x0 + coef(np.sqrt(1.0 - abar_prev), i) * eps
    return x, outcomes, errors


def self_checks():
    """Thresholds at the code's defaults: tau 0.1, decay 0.01 over 50 steps, floor 0.01."""
    state = SpeCaImage(50, {"tau": "0.1", "decay": "0.01", "floor": "0.01", "min": "2", "max": "5", "o": "4",
                            "warmup": "3", "metric": "rel-l1"})
    assert abs(state.threshold(0) - 0.1 * 0.01 ** (1 / 50)) < 1e-15
    assert state.threshold(49) == 0.01 and state.threshold(25) == 0.01 and state.threshold(23) > 0.01  # 0.1 * 0.01^0.5 = 0.01 at n = 24


def main():
    torch.set_num_threads(1)
    self_checks()
    model = load_model()
    diffusion = Diffusion(1000, space_timesteps(1000, STEPS))
    cache = load_safetensors(os.path.join(DIT_DIR, "tiny_dit_cache_golden.safetensors"))[0]
    noise = cache["noise"]
    g = {"noise": noise}
    meta = {"script": "tools/reference/make_speca_fixtures.py", "torch": torch.__version__, "steps": str(STEPS),
            "sampler": "ddim", "eta": "0", "cfg_scale": str(CFG_SCALE), "classes": ",".join(map(str, CLASSES)),
            "guided_channels": "all", "outcome_codes": "0 computed, 1 drafted, 2 accepted, 3 rejected, 4 failed (reject=next)"}
    with torch.no_grad():
        for spec in SPECS:
            p = prefix_of(spec)
            samples, outcomes, errors = [], [], []
            for b, label in enumerate(CLASSES):
                xb, ob, eb = sample_image(model, diffusion, noise[b:b + 1], label, spec)
                samples.append(xb)
                outcomes.append(ob)
                errors.append(eb)
            g[f"{p}.sample"] = torch.cat(samples, 0)
            g[f"{p}.outcome"] = torch.tensor(outcomes, dtype=torch.float32).t().contiguous()
            g[f"{p}.error"] = torch.tensor(errors, dtype=torch.float32).t().contiguous()
            meta[f"spec.{p}"] = spec
            codes = g[f"{p}.outcome"]
            print(f"{spec}: " + " | ".join(
                f"image {b}: full {int((codes[:, b] == 0).sum())} drafted {int((codes[:, b] == 1).sum())} "
                f"accepted {int((codes[:, b] == 2).sum())} rejected {int((codes[:, b] == 3).sum())} "
                f"failed {int((codes[:, b] == 4).sum())}" for b in range(2)))
            print("   " + " ".join("".join("CDARX"[int(v)] for v in codes[:, b]) for b in range(2)))
    path = os.path.join(DIT_DIR, "tiny_dit_speca_golden.safetensors")
    save_safetensors(path, {k: v.contiguous().float() for k, v in g.items()}, meta)
    print(f"{path}: {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
