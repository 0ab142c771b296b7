"""Golden calibration and samples for the calibrated accelerators (TeaCache, SmoothCache, MagCache), from an
independent Python reading of docs/methods.md §0, §1, §5.5, §5.7 and §5.8. Written from the spec text (and the
official repositories it cites), not from the C# code, so that tests/DitCache.Evaluation.Tests/Tuning/CalibratedParityTests.cs
compares two separate readings.

    OPENBLAS_NUM_THREADS=1 /usr/bin/python3 tools/reference/make_calibrated_fixtures.py

Reads tests/TestData/dit/tiny_dit.safetensors and writes tests/TestData/dit/tiny_dit_calibrated_golden.safetensors:
  noise                 (2,4,8,8)  initial latent, torch.manual_seed(0) randn (the same as tiny_dit_cache_golden)
  none.sample           (2,4,8,8)  uncached DDIM sample (the calibration run)
  <prefix>.sample       (2,4,8,8)  final sample under the accelerator, with the Python calibration below
  <prefix>.computed     (50,)      1 where the block stack (TeaCache, MagCache) or every module (SmoothCache) ran
__metadata__ (strings; lists as JSON with float64 precision):
  cal.rel_in, cal.rel_out   TeaCache pairs for n = 1..49; cal.coefficients the degree-4 np.polyfit, highest first
  cal.gamma                 MagCache ratios, 50 values, gamma_0 = 1
  cal.attn, cal.mlp         SmoothCache rows (lookahead 3): row r-1 has 50-r values
  spec.<prefix>             the C# --cache spec of each stored run; margin.<prefix> the distance of the closest
                            decision to its threshold (so a tie cannot flip the computed list)

Run: 50 DDIM steps (eta 0), classes [3, 7], CFG 1.5 on all eps channels, one CFG batch [x; x] with labels [y; null]
(docs/methods.md §0), float32 model math, statistics in float64.

Readings where docs/methods.md leaves a choice (the C# side documents the same ones):
  * TeaCache "model output" (5.5 calibration step 1) = the guided eps the sampler consumes (N, C, H, W), variance
    channels excluded; the indicator is block 0's modulated input of the whole CFG batch.
  * MagCache: gamma_n averages ||r_n|| / ||r_(n-1)|| over every token of the CFG batch; steps n < int(0.1 S + 0.5)
    compute, and step 0 always computes.
  * SmoothCache: rel L1 = ||F_i - F_(i+r)||_1 / ||F_(i+r)||_1 (denominator the later output, as the official helper),
    averaged over blocks per type; the schedule scan of 5.7 with steps 0 and S-1 forced.
"""
import json
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from make_cache_fixtures import CFG_SCALE, CLASSES, DIT_DIR, NUM_CLASSES, STEPS, coef, load_model  # noqa: E402
from dit_model import Diffusion, modulate, space_timesteps  # noqa: E402
from st_io import save_safetensors  # noqa: E402

LOOKAHEAD = 3
DEGREE = 4


def rel_mean_l1(cur, prev):
    """TeaCache: mean|cur - prev| / mean|prev| over all elements."""
    cur, prev = cur.double(), prev.double()
    return ((cur - prev).abs().mean() / prev.abs().mean()).item()


def rel_norm_l1(prev, cur):
    """SmoothCache: ||prev - cur||_1 / ||cur||_1."""
    prev, cur = prev.double(), cur.double()
    return ((prev - cur).abs().sum() / cur.abs().sum()).item()


# ----------------------------------------------------------------------------------------------------------
# One sampling run. The hooks object decides per step: stack(n) -> "compute" | "skip" (block level) and
# module(n, kind) -> True to compute a module (module level); it sees every tensor a calibration needs.

class Full:
    """Computes everything and records the calibration statistics."""

    def __init__(self, steps):
        self.steps = steps
        self.rel_in, self.rel_out, self.gamma = [], [], []
        self.prev_ind, self.prev_eps, self.prev_norms = None, None, None
        self.outputs = {}                  # (block, kind) -> list of module outputs per step
        self.n = -1

    def begin(self, n):
        self.n = n

    def indicator(self, ind):
        if self.prev_ind is not None:
            self.rel_in.append(rel_mean_l1(ind, self.prev_ind))
        self.prev_ind = ind.clone()

    def skip_stack(self):
        return False

    def stack_done(self, x_in, x_out):
        norms = (x_out.double() - x_in.double()).norm(dim=-1)              # (B, T): per token, over channels
        self.gamma.append(1.0 if self.prev_norms is None else (norms / self.prev_norms).mean().item())
        self.prev_norms = norms

    def module(self, key):
        return None                                                        # compute

    def module_done(self, key, f):
        self.outputs.setdefault(key, []).append(f.clone())

    def eps(self, e):
        if self.prev_eps is not None:
            self.rel_out.append(rel_mean_l1(e, self.prev_eps))
        self.prev_eps = e.clone()

    def rows(self, kind, depth):
        rows = []
        for r in range(1, LOOKAHEAD + 1):
            row = np.zeros(self.steps - r)
            for l in range(depth):
                outs = self.outputs[(l, kind)]
                for i in range(self.steps - r):
                    row[i] += rel_norm_l1(outs[i], outs[i + r])
            rows.append((row / depth).tolist())
        return rows


class TeaCache:
    def __init__(self, steps, coefficients, l):
        self.steps, self.poly, self.l = steps, np.poly1d(coefficients), l
        self.acc, self.prev, self.residual, self.skip = 0.0, None, None, False
        self.computed, self.margin = [], float("inf")

    def begin(self, n):
        self.n = n

    def indicator(self, ind):
        if self.n == 0 or self.n == self.steps - 1:
            self.acc, compute = 0.0, True
        else:
            self.acc += float(self.poly(rel_mean_l1(ind, self.prev)))
            self.margin = min(self.margin, abs(self.acc - self.l))
            compute = not (self.acc < self.l)
            if compute:
                self.acc = 0.0
        self.prev = ind.clone()
        self.skip = not compute
        self.computed.append(0.0 if self.skip else 1.0)

    def skip_stack(self):
        return self.skip

    def apply(self, x):
        return x + self.residual

    def stack_done(self, x_in, x_out):
        self.residual = x_out - x_in

    def module(self, key):
        return None

    def module_done(self, key, f):
        pass

    def eps(self, e):
        pass


class MagCache:
    def __init__(self, steps, gamma, thresh, k, retention=0.1):
        self.computed, self.margin = [], float("inf")
        keep = int(retention * steps + 0.5)
        ratio, err, run = 1.0, 0.0, 0
        for n in range(steps):
            if n < keep or n == 0:
                self.computed.append(1.0)
                continue
            ratio *= gamma[n]
            run += 1
            err += abs(1.0 - ratio)
            self.margin = min(self.margin, abs(err - thresh))
            if err <= thresh and run <= k:
                self.computed.append(0.0)
            else:
                ratio, err, run = 1.0, 0.0, 0
                self.computed.append(1.0)
        self.residual = None

    def begin(self, n):
        self.n = n

    def indicator(self, ind):
        pass

    def skip_stack(self):
        return self.computed[self.n] == 0.0

    def apply(self, x):
        return x + self.residual

    def stack_done(self, x_in, x_out):
        self.residual = x_out - x_in

    def module(self, key):
        return None

    def module_done(self, key, f):
        pass

    def eps(self, e):
        pass


def smooth_schedule(rows, steps, alpha):
    """docs/methods.md §5.7: longest lookahead first; row r (index r-1) at i within alpha -> compute i, reuse r steps."""
    sched, i, margin = [None] * steps, 0, float("inf")
    while i < steps:
        jump = 1
        for r in range(len(rows), 0, -1):
            if i < len(rows[r - 1]):
                margin = min(margin, abs(rows[r - 1][i] - alpha))
                if rows[r - 1][i] <= alpha:
                    jump = r + 1
                    break
        sched[i] = 1
        for s in range(i + 1, min(i + jump, steps)):
            sched[s] = 0
        i += jump
    sched[0] = sched[-1] = 1
    return [1 if v is None else v for v in sched], margin


class SmoothCache:
    def __init__(self, steps, attn_rows, mlp_rows, alpha):
        self.sched = {"attn": smooth_schedule(attn_rows, steps, alpha)[0], "mlp": smooth_schedule(mlp_rows, steps, alpha)[0]}
        self.margin = min(smooth_schedule(attn_rows, steps, alpha)[1], smooth_schedule(mlp_rows, steps, alpha)[1])
        # A step counts as computed when every module ran (both types scheduled).
        self.computed = [float(a and m) for a, m in zip(self.sched["attn"], self.sched["mlp"])]
        self.store = {}

    def begin(self, n):
        self.n = n

    def indicator(self, ind):
        pass

    def skip_stack(self):
        return False

    def stack_done(self, x_in, x_out):
        pass

    def module(self, key):
        return None if self.sched[key[1]][self.n] else self.store[key]

    def module_done(self, key, f):
        self.store[key] = f.clone()

    def eps(self, e):
        pass


def forward(model, x, t, y, hooks):
    x = model.x_embedder(x) + model.pos_embed                                   # (B, T, D)
    c = model.t_embedder(t) + model.y_embedder(y, False)                        # (B, D)
    b0 = model.blocks[0]
    shift, scale = b0.adaLN_modulation(c).chunk(6, dim=1)[:2]
    hooks.indicator(modulate(b0.norm1(x), shift, scale))                        # block 0's modulated input
    if hooks.skip_stack():
        x = hooks.apply(x)
    else:
        x_in = x.clone()
        for l, block in enumerate(model.blocks):
            shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = block.adaLN_modulation(c).chunk(6, dim=1)
            a = hooks.module((l, "attn"))
            if a is None:
                a = block.attn(modulate(block.norm1(x), shift_msa, scale_msa))
                hooks.module_done((l, "attn"), a)
            x = x + gate_msa.unsqueeze(1) * a
            m = hooks.module((l, "mlp"))
            if m is None:
                m = block.mlp(modulate(block.norm2(x), shift_mlp, scale_mlp))
                hooks.module_done((l, "mlp"), m)
            x = x + gate_mlp.unsqueeze(1) * m
        hooks.stack_done(x_in, x)
    return model.unpatchify(model.final_layer(x, c))                           # (B, out, H, W)


def sample(model, diffusion, noise, labels, hooks):
    s = diffusion.num_timesteps
    x, ch, n_img = noise.clone(), model.in_channels, noise.shape[0]
    yy = torch.cat([labels, torch.full_like(labels, NUM_CLASSES)], 0)
    for n in range(s):
        i = s - 1 - n
        hooks.begin(n)
        tt = torch.full((2 * n_img,), float(diffusion.timestep_map[i]), dtype=torch.float32)
        out = forward(model, torch.cat([x, x], 0), tt, yy, hooks)
        cond, uncond = out[:n_img, :ch], out[n_img:, :ch]
        eps = uncond + CFG_SCALE * (cond - uncond)                              # guided eps (N, C, H, W)
        hooks.eps(eps)
        x0 = coef(diffusion.sqrt_recip_alphas_cumprod, i) * x - coef(diffusion.sqrt_recipm1_alphas_cumprod, i) * eps
        eps = (coef(diffusion.sqrt_recip_alphas_cumprod, i) * x - x0) / coef(diffusion.sqrt_recipm1_alphas_cumprod, i)
        abar_prev = diffusion.alphas_cumprod_prev
        x = coef(np.sqrt(abar_prev), i) * x0 + coef(np.sqrt(1.0 - abar_prev), i) * eps
    return x


def self_checks():
    # SmoothCache scan on hand-made rows: row 3 fits at 0 -> compute 0, reuse 1..3; row 1 at 4 -> compute 4, reuse 5.
    rows = [[1, 1, 1, 1, 0.1, 1, 1, 1, 1], [1] * 8, [0.1, 1, 1, 1, 1, 1, 1]]
    assert smooth_schedule(rows, 10, 0.2)[0] == [1, 0, 0, 0, 1, 0, 1, 1, 1, 1]
    # MagCache with gamma = 1 never accumulates error: skips K in a row after the retained steps.
    assert MagCache(10, [1.0] * 10, 0.1, 2).computed == [1, 0, 0, 1, 0, 0, 1, 0, 0, 1]
    # Nearest interpolation indices of docs/methods.md §5.8 (numpy rounds half to even).
    assert np.round(np.arange(5) * (3 - 1) / (5 - 1)).astype(int).tolist() == [0, 0, 1, 2, 2]


def prefix_of(spec):
    return spec.replace(":", "_").replace(",", "_").replace("=", "").replace(".", "p")


def main():
    torch.set_num_threads(1)
    self_checks()
    model = load_model()
    diffusion = Diffusion(1000, space_timesteps(1000, STEPS))
    labels = torch.tensor(CLASSES)
    torch.manual_seed(0)
    noise = torch.randn(2, 4, 8, 8)
    g = {"noise": noise}
    meta = {"script": "tools/reference/make_calibrated_fixtures.py", "seed": "0", "torch": torch.__version__,
            "steps": str(STEPS), "sampler": "ddim", "eta": "0", "cfg_scale": str(CFG_SCALE),
            "classes": ",".join(map(str, CLASSES)), "guided_channels": "all", "lookahead": str(LOOKAHEAD)}
    with torch.no_grad():
        full = Full(STEPS)
        reference = sample(model, diffusion, noise, labels, full)
        g["none.sample"] = reference
        coefficients = np.polyfit(np.array(full.rel_in), np.array(full.rel_out), DEGREE)
        attn, mlp = full.rows("attn", len(model.blocks)), full.rows("mlp", len(model.blocks))
        meta.update({"cal.rel_in": json.dumps(full.rel_in), "cal.rel_out": json.dumps(full.rel_out),
                     "cal.coefficients": json.dumps(coefficients.tolist()), "cal.gamma": json.dumps(full.gamma),
                     "cal.attn": json.dumps(attn), "cal.mlp": json.dumps(mlp)})
        print("rel_in", np.round(full.rel_in[:6], 4), "rel_out", np.round(full.rel_out[:6], 4))
        print("coefficients", coefficients)
        print("gamma", np.round(full.gamma[:8], 4))
        print("attn rows[0][:6]", np.round(attn[0][:6], 4), "mlp rows[2][:6]", np.round(mlp[2][:6], 4))

        runs = {
            "teacache:l=0.3": lambda: TeaCache(STEPS, coefficients, 0.3),
            "teacache:l=0.1": lambda: TeaCache(STEPS, coefficients, 0.1),
            "magcache:thresh=0.1,k=3,retention=0.1": lambda: MagCache(STEPS, full.gamma, 0.1, 3, 0.1),
            "magcache:thresh=0.5,k=5,retention=0.2": lambda: MagCache(STEPS, full.gamma, 0.5, 5, 0.2),
            "smoothcache:alpha=0.1": lambda: SmoothCache(STEPS, attn, mlp, 0.1),
            "smoothcache:alpha=0.25": lambda: SmoothCache(STEPS, attn, mlp, 0.25),
        }
        for spec, make in runs.items():
            hooks = make()
            out = sample(model, diffusion, noise, labels, hooks)
            p = prefix_of(spec)
            g[f"{p}.sample"], g[f"{p}.computed"] = out, torch.tensor(hooks.computed)
            meta[f"spec.{p}"] = spec
            meta[f"margin.{p}"] = repr(hooks.margin)
            if isinstance(hooks, SmoothCache):
                meta[f"schedule.{p}.attn"] = json.dumps(hooks.sched["attn"])
                meta[f"schedule.{p}.mlp"] = json.dumps(hooks.sched["mlp"])
            err = ((out - reference).norm() / reference.norm()).item()
            print(f"{spec:42s} computed {int(sum(hooks.computed)):2d}/50  margin {hooks.margin:.3e}  rel L2 to full {err:.3e}")
    path = os.path.join(DIT_DIR, "tiny_dit_calibrated_golden.safetensors")
    save_safetensors(path, {k: v.contiguous().float() for k, v in g.items()}, meta)
    print(f"{path}: {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
