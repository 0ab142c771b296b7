"""Golden samples for the block-range caches FBCache, DBCache and Delta-DiT, from an independent Python reading of
docs/methods.md (sections 0, 1, 5.4, 5.6) and of cache-dit's guards (cache_manager.can_cache / cache_context.add_cached_step).
Written from the spec, not from the C# policies, so tests/DitCache.Sampling.Tests/BlockCacheParityTests.cs compares
two separate readings. The control flow here runs the block stack itself (no seam): front blocks, decision, middle
blocks or the stored residual, back blocks.

    OPENBLAS_NUM_THREADS=1 /usr/bin/python3 tools/reference/make_blockcache_fixtures.py

The two-block tiny DiT cannot hold a DBCache with front AND back blocks, so this script makes its own deeper random
model (seed 1): tests/TestData/dit/tiny_dit_deep.safetensors, DiT(input 8, patch 2, in 4, hidden 32, depth 4, 2 heads,
10 classes, learn_sigma), every parameter but pos_embed drawn from normal(0, 0.05) as in make_dit_fixtures.py. Then
tests/TestData/dit/tiny_dit_deep_blockcache_golden.safetensors:
  noise                 (2,4,8,8)  initial latent, torch.manual_seed(0) randn
  none.sample           (2,4,8,8)  uncached DDIM sample
  <prefix>.sample       (2,4,8,8)  final sample under the accelerator
  <prefix>.computed     (50,)      1 where every block ran at sampling ordinal n
  <prefix>.blocks       (50,)      number of blocks that ran at step n
  <prefix>.diff         (50,)      DBCache/FBCache relative L1 diff of the front residual (-1 where none was taken)
Run: 50 DDIM steps (eta 0), classes [3, 7], CFG 1.5 on all eps channels, [x; x] batch with labels [y; null], one
decision for both halves (docs/methods.md §0). Block math float32; the diff in float64.
"""
import os
import sys

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tools", "train"))
sys.path.insert(0, os.path.join(ROOT, "tools", "reference"))
from dit_model import DiT, Diffusion, space_timesteps  # noqa: E402
from st_io import save_safetensors  # noqa: E402
from make_cache_fixtures import coef, prefix_of, parse  # noqa: E402

DIT_DIR = os.path.join(ROOT, "tests", "TestData", "dit")
NUM_CLASSES = 10
CFG_SCALE = 1.5
STEPS = 50
CLASSES = [3, 7]
DEPTH = 4

SPECS = [
    "fbcache:t=0.25,warmup=3",
    "fbcache:t=1,warmup=0,maxrun=2",
    "dbcache:f=2,b=1,t=0.22,warmup=4",
    "dbcache:f=1,b=2,t=0.21,warmup=2,maxcached=12",
    "delta-dit:n=2,b=25,blocks=2",
    "delta-dit:n=3,b=10,blocks=3",
]


class DualBlockCache:
    """FBCache (f=1, b=0) and DBCache. Residual r = h after the front blocks - stack input, compared against r at the
    last step whose middle blocks ran; the guards in cache-dit's order."""

    def __init__(self, f=8, b=0, t=0.08, warmup=8, maxcached=-1, maxrun=-1):
        self.f, self.b, self.t = int(f), int(b), float(t)
        self.warmup, self.maxcached, self.maxrun = int(warmup), int(maxcached), int(maxrun)
        self.prev_r = None
        self.mid_residual = None
        self.cached_steps = []
        self.run = 0

    def allowed(self, n, r):
        self.diff = -1.0
        if n in range(0, self.warmup):
            return False
        if self.maxcached >= 0 and len(self.cached_steps) >= self.maxcached:
            return False
        if self.maxrun >= 0 and self.run >= self.maxrun:
            self.run = 0
            return False
        if self.t <= 0 or self.prev_r is None:
            return False
        a, c = self.prev_r.double(), r.double()
        self.diff = ((a - c).abs().sum() / a.abs().sum()).item()
        return self.t >= 1.0 or self.diff < self.t

    def mark_cached(self, n):
        if not self.cached_steps:
            self.run += 1
        elif n - self.cached_steps[-1] == 1:
            self.run = self.run + 2 if self.run == 0 else self.run + 1
        self.cached_steps.append(n)

    def stack(self, n, h, block, depth):
        h_in = h
        for l in range(self.f):
            h = block(l, h)
        ran = self.f
        r = h - h_in
        if self.allowed(n, r):
            h = h + self.mid_residual
            self.mark_cached(n)
        else:
            self.prev_r = r
            h_front = h
            for l in range(self.f, depth - self.b):
                h = block(l, h)
            ran += depth - self.b - self.f
            self.mid_residual = h - h_front
        for l in range(depth - self.b, depth):
            h = block(l, h)
        ran += self.b
        return h, ran


class DeltaDit:
    """Delta-Cache over a group of k blocks: rear group before step b, front group from b on; updates every N steps
    (n mod N == 0) store both groups' out - in."""

    def __init__(self, n=2, b=None, blocks=None, steps=STEPS, depth=DEPTH):
        self.interval = int(n)
        self.boundary = int(b) if b is not None else steps // 2
        self.k = int(blocks) if blocks is not None else max(1, depth // 2)
        self.delta_front = None
        self.delta_rear = None
        self.diff = -1.0

    def stack(self, n, h, block, depth):
        k = self.k
        if n % self.interval == 0 or self.delta_front is None:
            h0 = h
            for l in range(depth):
                if l == depth - k:
                    h_rear_in = h
                h = block(l, h)
                if l == k - 1:
                    self.delta_front = h - h0
            self.delta_rear = h - h_rear_in
            return h, depth
        if n < self.boundary:                       # early: cache the rear blocks
            for l in range(depth - k):
                h = block(l, h)
            return h + self.delta_rear, depth - k
        h = h + self.delta_front                    # late: cache the front blocks
        for l in range(k, depth):
            h = block(l, h)
        return h, depth - k


def build_policy(spec):
    name, knobs = parse(spec)
    if name == "fbcache":
        return DualBlockCache(f=1, b=0, **knobs)
    if name == "dbcache":
        return DualBlockCache(**knobs)
    if name == "delta-dit":
        return DeltaDit(**knobs)
    raise ValueError(spec)


def forward(model, x, t, y, policy, n):
    h = model.x_embedder(x) + model.pos_embed
    c = model.t_embedder(t) + model.y_embedder(y, False)
    if policy is None:
        for blk in model.blocks:
            h = blk(h, c)
        ran = DEPTH
    else:
        h, ran = policy.stack(n, h, lambda l, hh: model.blocks[l](hh, c), DEPTH)
    return model.unpatchify(model.final_layer(h, c)), ran


def ddim_sample(model, diffusion, noise, labels, spec):
    s = diffusion.num_timesteps
    policy = None if spec == "none" else build_policy(spec)
    x = noise.clone()
    ran_list, diffs = [], []
    n_img, ch = x.shape[0], model.in_channels
    yy = torch.cat([labels, torch.full_like(labels, NUM_CLASSES)], 0)
    for n in range(s):
        i = s - 1 - n
        tt = torch.full((2 * n_img,), float(diffusion.timestep_map[i]), dtype=torch.float32)
        out, ran = forward(model, torch.cat([x, x], 0), tt, yy, policy, n)
        ran_list.append(ran)
        diffs.append(getattr(policy, "diff", -1.0) if policy is not None else -1.0)
        cond, uncond = out[:n_img, :ch], out[n_img:, :ch]
        eps = uncond + CFG_SCALE * (cond - uncond)
        x0 = coef(diffusion.sqrt_recip_alphas_cumprod, i) * x - coef(diffusion.sqrt_recipm1_alphas_cumprod, i) * eps
        eps = (coef(diffusion.sqrt_recip_alphas_cumprod, i) * x - x0) / coef(diffusion.sqrt_recipm1_alphas_cumprod, i)
        abar_prev = diffusion.alphas_cumprod_prev
        import numpy as np
        x = coef(np.sqrt(abar_prev), i) * x0 + coef(np.sqrt(1.0 - abar_prev), i) * eps
    return x, torch.tensor(ran_list, dtype=torch.float32), torch.tensor(diffs, dtype=torch.float32)


def build_deep_model():
    torch.manual_seed(1)
    model = DiT(input_size=8, patch_size=2, in_channels=4, hidden_size=32, depth=DEPTH, num_heads=2,
                num_classes=NUM_CLASSES, learn_sigma=True, class_dropout_prob=0.1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name != "pos_embed":
                p.normal_(0.0, 0.05)
    return model.eval()


def self_checks():
    """The guards on a toy stack whose blocks add constants: cache-dit's run counter with t >= 1, maxrun = 2."""
    p = DualBlockCache(f=1, b=0, t=1.0, warmup=0, maxrun=2)
    full = []
    for n in range(10):
        _, ran = p.stack(n, torch.zeros(3), lambda l, h: h + 1.0, 3)
        full.append(ran == 3)
    assert [n for n, f in enumerate(full) if f] == [0, 3, 6, 9], full


def main():
    torch.set_num_threads(1)
    self_checks()
    model = build_deep_model()
    weights = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_safetensors(os.path.join(DIT_DIR, "tiny_dit_deep.safetensors"), weights, {"num_heads": "2", "script": "tools/reference/make_blockcache_fixtures.py", "seed": "1"})
    diffusion = Diffusion(1000, space_timesteps(1000, STEPS))
    labels = torch.tensor(CLASSES)
    torch.manual_seed(0)
    noise = torch.randn(2, 4, 8, 8)
    g = {"noise": noise}
    meta = {"script": "tools/reference/make_blockcache_fixtures.py", "seed": "0", "torch": torch.__version__,
            "steps": str(STEPS), "sampler": "ddim", "eta": "0", "cfg_scale": str(CFG_SCALE),
            "classes": ",".join(map(str, CLASSES)), "guided_channels": "all", "model": "tiny_dit_deep.safetensors"}
    with torch.no_grad():
        reference, _, _ = ddim_sample(model, diffusion, noise, labels, "none")
        g["none.sample"] = reference
        meta["spec.none"] = "none"
        for spec in SPECS:
            p = prefix_of(spec)
            sample, ran, diff = ddim_sample(model, diffusion, noise, labels, spec)
            g[f"{p}.sample"], g[f"{p}.blocks"], g[f"{p}.diff"] = sample, ran, diff
            g[f"{p}.computed"] = (ran == DEPTH).float()
            meta[f"spec.{p}"] = spec
            err = ((sample - reference).norm() / reference.norm()).item()
            taken = [d for d in diff.tolist() if d >= 0]
            near = min((abs(d - float(parse(spec)[1].get("t", 0))) for d in taken), default=float("nan"))
            print(f"{spec:45s} full {int((ran == DEPTH).sum()):2d} blocks {int(ran.sum()):3d}  rel L2 to uncached {err:.3e}"
                  f"  closest diff to t {near:.2e}")
    path = os.path.join(DIT_DIR, "tiny_dit_deep_blockcache_golden.safetensors")
    save_safetensors(path, {k: v.contiguous().float() for k, v in g.items()}, meta)
    print(f"{path}: {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
