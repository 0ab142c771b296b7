"""Golden samples for every forecasting accelerator, from an independent Python reading of docs/methods.md
(sections 0, 1, 2.4, 2.6, 3, 4.1, 5.1, 5.9, 5.10). Written from the spec alone, not from the C# policies, so that the C# parity
test (tests/DitCache.Sampling.Tests/CacheParityTests.cs) compares two separate readings of the same text.

    OPENBLAS_NUM_THREADS=1 /usr/bin/python3 tools/reference/make_cache_fixtures.py

Reads tests/TestData/dit/tiny_dit.safetensors (made by make_dit_fixtures.py) and writes
tests/TestData/dit/tiny_dit_cache_golden.safetensors:
  noise                 (2,4,8,8)  initial latent, torch.manual_seed(0) randn
  none.sample           (2,4,8,8)  uncached DDIM sample
  <prefix>.sample       (2,4,8,8)  final sample under the accelerator
  <prefix>.computed     (50,)      1 where every block ran at sampling ordinal n, 0 where the cache stood in
The __metadata__ maps each prefix to its C# spec string (key "spec.<prefix>") and records the run settings.
Prefix = the spec with ':' and ',' replaced by '_', '=' dropped and '.' written 'p', e.g. "foca:n=5,time=t" ->
"foca_n5_timet", "spectrum:n=2,alpha=0.75,..." -> "spectrum_n2_alpha0p75_...".

Run: 50 DDIM steps (eta 0, no clipping), classes [3, 7], CFG 1.5 on all eps channels (docs/methods.md §0), the CFG batch
[x; x] with labels [y; null] going through one cached forward, so one decision covers both halves (docs/methods.md §0, §1).
Model math is float32 (the same DiT modules as the other fixtures); the forecasters keep their state and do their
arithmetic in float64, casting to float32 only where a forecast enters the network (docs/methods.md §1: "scalar weights in
float64"). Sampling ordinal n = 0 is the noisiest step everywhere.

Readings where docs/methods.md leaves a choice (each policy's docstring gives the detail):
  * TaylorSeer warmup = the official first_enhance, so the derivative gate of 4.1 (i < S - first_enhance + 1) is
    n >= warmup - 1; taylorseer:n=3,o=2,warmup=3 is the spec that tells this apart.
  * FoCa time=t: time coordinate = the model timestep t_n; Dloc = (Y - Yp)/h_(k-1), omega = h_k/h_(k-1) (2.4,
    variable-step form). corrector=off emits the BDF2 prediction P and feeds it back as Y.
  * Spectrum: tau and the ridge weights in float64 (no bf16 emulation, 3.6), weighted sums in float64.
"""
import math
import os
import sys

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tools", "train"))
from dit_model import DiT, Diffusion, modulate, space_timesteps  # noqa: E402
from st_io import load_safetensors, save_safetensors  # noqa: E402

DIT_DIR = os.path.join(ROOT, "tests", "TestData", "dit")
NUM_CLASSES = 10           # null / CFG label = 10
CFG_SCALE = 1.5
STEPS = 50
CLASSES = [3, 7]

SPECS = [
    "fora:n=3",
    "taylorseer:n=4,o=2",
    "taylorseer:n=3,o=1,warmup=3",
    "taylorseer:n=3,o=2,warmup=3",
    "foca:n=5",
    "foca:n=5,corrector=off",
    "foca:n=5,time=t",
    "foca:n=5,reading=cachedit",
    "foca:n=3,warmup=4",
    "spectrum:n=2,alpha=0.75,w=0.5,m=4,lam=0.1,warmup=5",
    "hicache:n=4,o=2,sigma=0.5",
    "hicache:n=3,o=3,warmup=3,sigma=0.75",
    "taylorseer:n=4,o=2,basis=newton",
    "taylorseer:n=3,o=3,warmup=3,basis=newton",
    "freqca:n=4,o=2,sigma=0.5,cutoff=0.25",
    "freqca:n=3,o=3,warmup=3,sigma=0.75,cutoff=0.5",
]


def prefix_of(spec):
    return spec.replace(":", "_").replace(",", "_").replace("=", "").replace(".", "p")


def parse(spec):
    name, _, rest = spec.partition(":")
    knobs = dict(part.split("=") for part in rest.split(",")) if rest else {}
    return name, knobs


# ----------------------------------------------------------------------------------------------------------
# Schedules (which sampling ordinals run every block)

def taylor_schedule(steps, interval, warmup):
    """TaylorSeer-DiT cal_type (docs/methods.md §4.1) with first_enhance = warmup: full while n < warmup, then whenever the
    cached-step counter has reached N-1 (counter reset on every full step). The last step is not forced."""
    full, counter = [], 0
    for n in range(steps):
        f = n < warmup or counter == interval - 1
        counter = 0 if f else counter + 1
        full.append(f)
    return full


def fora_schedule(steps, interval):
    """FORA (docs/methods.md §5.1): respaced index i = S-1-n; full when i == S-1 or i mod N == 0."""
    return [(steps - 1 - n) == steps - 1 or (steps - 1 - n) % interval == 0 for n in range(steps)]


def spectrum_schedule(steps, n0, alpha, warmup):
    """Spectrum's adaptive schedule, literally as docs/methods.md §3.5."""
    full, cnt, ncc, ws = [], 0, 0, n0
    for _ in range(steps):
        compute = True
        if cnt >= warmup:
            compute = (ncc + 1) % math.floor(ws) == 0
            if compute:
                ws = round(ws + alpha, 3)
        cnt += 1
        ncc = 0 if compute else ncc + 1
        full.append(compute)
    return full


# ----------------------------------------------------------------------------------------------------------
# Policies. Module level: forecast(key) / record(key, F) with key = (block, "attn" | "mlp"); block level (Spectrum):
# forecast_blocks() / record_blocks(h) on the output of the last block. begin_step(n) says whether step n is full.

def f64(t):
    return t.detach().to(torch.float64).clone()


class NoCache:
    level = "none"

    def __init__(self, steps, timesteps):
        self.schedule = [True] * steps

    def begin_step(self, n):
        return True


class Fora:
    """Static reuse of the last computed module output (docs/methods.md §5.1)."""
    level = "module"

    def __init__(self, steps, timesteps, n="3"):
        self.schedule = fora_schedule(steps, int(n))
        self.store = {}

    def begin_step(self, n):
        return self.schedule[n]

    def record(self, key, f):
        self.store[key] = f64(f)

    def forecast(self, key):
        return self.store[key]


class TaylorSeer:
    """TaylorSeer-DiT (docs/methods.md §4.1), in sampling ordinals. Factors d_0..d_k per key; at a full step n with previous
    full step n_prev: d_0 = F, d_{j+1} = (d_j - old_j) / (n - n_prev) while old_j exists and j < O (divided by the
    latest gap only, as the official code). A Taylor step emits sum_j d_j (n - n_last)^j / j!.

    The official gate "derivatives only when i < S - first_enhance + 1" reads n >= first_enhance - 1 in ordinals
    (n >= 1 for the DiT default of 2; the same rule gives TaylorSeer-FLUX's "step >= 2" for first_enhance 3); it is
    applied with first_enhance = warmup."""
    level = "module"

    def __init__(self, steps, timesteps, n="4", o="4", warmup="2"):
        self.order = int(o)
        self.warmup = int(warmup)
        self.schedule = taylor_schedule(steps, int(n), self.warmup)
        self.factors = {}
        self.last_full = None       # ordinal of the latest full step
        self.prev_full = None       # the one before
        self.n = None

    def begin_step(self, n):
        self.n = n
        full = self.schedule[n]
        if full:
            self.prev_full, self.last_full = self.last_full, n
        return full

    def record(self, key, f):
        old = self.factors.get(key, [])
        new = [f64(f)]
        if self.n >= self.warmup - 1 and self.prev_full is not None:
            gap = float(self.n - self.prev_full)
            for j in range(self.order):
                if j >= len(old):
                    break
                new.append((new[j] - old[j]) / gap)
        self.factors[key] = new

    def forecast(self, key):
        x = float(self.n - self.last_full)
        out = torch.zeros_like(self.factors[key][0])
        for j, d in enumerate(self.factors[key]):
            out += d * (x ** j / math.factorial(j))
        return out


class PolynomialSeer(TaylorSeer):
    """taylorseer:basis=newton (docs/methods.md §4.4), written as Lagrange interpolation over the kept features, not as
    divided differences: every full step appends (n, F) to the key's history (restarted at [(n, F)] while
    n < warmup - 1, TaylorSeer's gate), the newest O + 1 are kept, and a forecast step emits the polynomial through them
    evaluated at the current ordinal."""

    def __init__(self, steps, timesteps, n="4", o="4", warmup="2", basis="newton"):
        assert basis == "newton"
        super().__init__(steps, timesteps, n=n, o=o, warmup=warmup)
        self.history = {}

    def record(self, key, f):
        kept = self.history.get(key, []) if self.n >= self.warmup - 1 else []
        self.history[key] = (kept + [(self.n, f64(f))])[-(self.order + 1):]

    def forecast(self, key):
        points = self.history[key]
        out = torch.zeros_like(points[0][1])
        for i, (xi, fi) in enumerate(points):
            w = 1.0
            for j, (xj, _) in enumerate(points):
                if j != i:
                    w *= (self.n - xj) / (xi - xj)
            out += fi * w
        return out


class HiCache(TaylorSeer):
    """HiCache (docs/methods.md §5.9; arXiv 2508.16984, Eq. of the scaled Hermite forecast): TaylorSeer's schedule and
    factors, and a forecast step emits d_0 + sum_{k>=1} d_k * sigma^k * H_k(sigma * x) / k! with H_k the physicists'
    Hermite polynomial (numpy.polynomial.hermite) and x = n - n_last in sampling ordinals."""

    def __init__(self, steps, timesteps, n="4", o="2", warmup="2", sigma="0.5"):
        super().__init__(steps, timesteps, n=n, o=o, warmup=warmup)
        self.sigma = float(sigma)

    def forecast(self, key):
        x = float(self.n - self.last_full)
        out = torch.zeros_like(self.factors[key][0])
        for k, d in enumerate(self.factors[key]):
            hk = np.polynomial.hermite.hermval(self.sigma * x, [0.0] * k + [1.0])
            out += d * (self.sigma ** k * hk / math.factorial(k))
        return out


def dct_ortho(x, axis):
    """Orthonormal DCT-II along one axis through an FFT of the even extension [x, reversed x] (Makhoul), float64:
    X_k = Re(exp(-i pi k / 2N) FFT(y)_k) * sqrt(1/(4N)) for k = 0, sqrt(1/(2N)) otherwise. No cosine table."""
    x = np.moveaxis(np.asarray(x, dtype=np.float64), axis, -1)
    n = x.shape[-1]
    y = np.fft.fft(np.concatenate([x, x[..., ::-1]], axis=-1), axis=-1)[..., :n]
    k = np.arange(n)
    out = np.real(np.exp(-1j * np.pi * k / (2 * n)) * y)
    out *= np.where(k == 0, np.sqrt(1.0 / (4 * n)), np.sqrt(1.0 / (2 * n)))
    return np.moveaxis(out, -1, axis)


def low_band(crf, cutoff):
    """FreqCa's low band (docs/methods.md §5.10) of crf (B, T, D) float64 over the sqrt(T) x sqrt(T) token grid: 2-D DCT-II
    (dct_ortho on both grid axes), coefficients with u < cutoff*side and v < cutoff*side kept, then the inverse. The
    inverse of an orthonormal transform is its transpose: the DCT matrix is dct_ortho of the identity, applied transposed."""
    b, t, d = crf.shape
    side = int(round(math.sqrt(t)))
    assert side * side == t
    grid = crf.detach().numpy().reshape(b, side, side, d)
    coeff = dct_ortho(dct_ortho(grid, 1), 2)
    keep = np.arange(side) < cutoff * side
    coeff = coeff * keep[None, :, None, None] * keep[None, None, :, None]
    c = dct_ortho(np.eye(side), 0)                                              # C[u, k]: dct_ortho(x)[u] = sum_k C[u, k] x[k]
    low = np.einsum("ui,bijd->bujd", c.T, coeff)                                # inverse along rows: C^T
    low = np.einsum("vj,bijd->bivd", c.T, low)                                  # and along columns
    return torch.from_numpy(low.reshape(b, t, d))


class FreqCa:
    """FreqCa (docs/methods.md §5.10; arXiv 2510.08669): one cached tensor, CRF = output of the last block - input of block 0
    (B, T, D), at the full steps of TaylorSeer's schedule. Its low band (low_band, DCT over the token grid, cutoff rho) is
    reused from the last full step; its high band CRF - low is forecast as HiCache forecasts a module (the same factors,
    the same scaled Hermite series, one key). A cached step runs no block: x <- x + low + forecast(high)."""
    level = "stack"

    def __init__(self, steps, timesteps, n="4", o="2", warmup="2", sigma="0.5", cutoff="0.25"):
        self.high = HiCache(steps, timesteps, n=n, o=o, warmup=warmup, sigma=sigma)
        self.schedule = self.high.schedule
        self.cutoff = float(cutoff)
        self.low = None

    def begin_step(self, n):
        return self.high.begin_step(n)

    def record_stack(self, x_in, x_out):
        crf = f64(x_out) - f64(x_in)
        self.low = low_band(crf, self.cutoff)
        self.high.record("crf", crf - self.low)

    def forecast_stack(self):
        return self.low + self.high.forecast("crf")


class FocaA:
    """FoCa-A (docs/methods.md §2.4): per key Y (value at n-1), Yp (n-2), Ffull at n_full, Dfull.

    Time coordinate s_n: the ordinal n (time=step, h = 1) or the model timestep t_n (time=t, the variable-step form
    of 2.4 with h_k = s_n - s_{n-1}, h_{k-1} = s_{n-1} - s_{n-2}, omega = h_k / h_{k-1}). Every formula is homogeneous
    in h, so the sign and unit of s (t descends) do not matter.
    Cached step: Dloc = (Y - Yp)/h_{k-1} (backward difference at the previous step);
    P = [(1+w)^2 Y - w^2 Yp]/(1+2w) + h_k (1+w)/(1+2w) Dloc (Eq. 7; 4/3 Y - 1/3 Yp + 2h/3 Dloc at w = 1);
    Dpred from the BDF2 formula (Eq. 6) with P in place of F_{k+1};
    C = Y + h_k/2 (Dfull + Dpred) (Eq. 8). corrector=off emits P (BDF2-only ablation). The emitted value becomes Y.
    Fallbacks: no Yp -> Y + h_k Dfull; no Dfull -> P; neither -> Y."""
    level = "module"

    def __init__(self, steps, timesteps, n="5", warmup="2", corrector="on", time="step", reading="paper"):
        assert reading == "paper"
        self.schedule = taylor_schedule(steps, int(n), int(warmup))
        self.corrector = corrector == "on"
        self.s = [float(t) for t in timesteps] if time == "t" else [float(i) for i in range(steps)]
        self.state = {}
        self.n = None
        self.full = None

    def begin_step(self, n):
        self.n = n
        self.full = self.schedule[n]
        return self.full

    def record(self, key, f):
        st = self.state.setdefault(key, {"Y": None, "Yp": None, "Ffull": None, "nfull": None, "Dfull": None})
        f = f64(f)
        n = self.n
        if st["Ffull"] is not None:
            st["Dfull"] = (f - st["Ffull"]) / (self.s[n] - self.s[st["nfull"]])
        st["Ffull"], st["nfull"] = f, n
        st["Yp"], st["Y"] = st["Y"], f

    def forecast(self, key):
        st = self.state[key]
        n, s = self.n, self.s
        y, yp, dfull = st["Y"], st["Yp"], st["Dfull"]
        hk = s[n] - s[n - 1]
        if yp is None and dfull is None:
            out = y.clone()
        elif yp is None:
            out = y + hk * dfull
        else:
            hk1 = s[n - 1] - s[n - 2]
            w = hk / hk1
            dloc = (y - yp) / hk1
            p = ((1 + w) ** 2 * y - w ** 2 * yp) / (1 + 2 * w) + (hk * (1 + w) / (1 + 2 * w)) * dloc
            if dfull is None or not self.corrector:
                out = p
            else:
                dpred = ((1 + 2 * w) * p - (1 + w) ** 2 * y + w ** 2 * yp) / (hk * (1 + w))
                out = y + (hk / 2) * (dfull + dpred)
        st["Yp"], st["Y"] = y, out
        return out


class FocaB:
    """The vipshop/cache-dit reading (docs/methods.md §2.6), applied per module. Rolling F_k, F_km1 (every step), F_full,
    F_full_prev (full steps). Cached step with e = n - n_full elapsed steps: D = (F_full - F_full_prev) +
    (F_k - F_km1) (the full-step difference NOT divided by the gap, cache-dit's quirk);
    e <= 3: pred = F_full + e/2 D; else w = 3/e, pred = w (F_full + 1.5 D) + (1 - w) F_full. Missing F_km1 or
    F_full_prev -> F_full. Then F_km1 <- F_k, F_k <- pred."""
    level = "module"

    def __init__(self, steps, timesteps, n="5", warmup="2", reading="cachedit"):
        assert reading == "cachedit"
        self.schedule = taylor_schedule(steps, int(n), int(warmup))
        self.state = {}
        self.n = None
        self.n_full = None

    def begin_step(self, n):
        self.n = n
        if self.schedule[n]:
            self.n_full = n
        return self.schedule[n]

    def record(self, key, f):
        st = self.state.setdefault(key, {"Fk": None, "Fkm1": None, "Ffull": None, "Ffull_prev": None})
        f = f64(f)
        st["Ffull_prev"], st["Ffull"] = st["Ffull"], f
        st["Fkm1"], st["Fk"] = st["Fk"], f

    def forecast(self, key):
        st = self.state[key]
        e = self.n - self.n_full
        if st["Fkm1"] is None or st["Ffull_prev"] is None:
            pred = st["Ffull"].clone()
        else:
            d = (st["Ffull"] - st["Ffull_prev"]) + (st["Fk"] - st["Fkm1"])
            if e <= 3:
                pred = st["Ffull"] + (e / 2) * d
            else:
                w = 3.0 / e
                pred = w * (st["Ffull"] + 1.5 * d) + (1 - w) * st["Ffull"]
        st["Fkm1"], st["Fk"] = st["Fk"], pred
        return pred


class Spectrum:
    """Spectrum (docs/methods.md §3) on the output of the last DiT block. Buffer of (n, h_n) from full steps only (window
    100, so all of them here); tau = 2n/S - 1; Chebyshev T_0..T_M (M = degree); ridge C = (X^T X + lam I)^-1 X^T H over
    all buffered points (lam on every coefficient, T_0 included); local linear extrapolation from the last two
    buffered points; output (1 - w) h_lin + w h_cheb. Forecasts never enter the buffer."""
    level = "blocks"
    WINDOW = 100

    def __init__(self, steps, timesteps, n="2", alpha="0.75", m="4", lam="0.1", w="0.5", warmup="5"):
        self.steps = steps
        self.degree = int(m)
        self.lam = float(lam)
        self.w = float(w)
        self.schedule = spectrum_schedule(steps, float(n), float(alpha), int(warmup))
        self.buffer = []
        self.n = None

    def begin_step(self, n):
        self.n = n
        return self.schedule[n]

    def tau(self, n):
        return 2.0 * n / self.steps - 1.0

    def basis(self, tau):
        row = [1.0, tau]
        while len(row) < self.degree + 1:
            row.append(2 * tau * row[-1] - row[-2])
        return np.array(row[: self.degree + 1], dtype=np.float64)

    def record_blocks(self, h):
        self.buffer.append((self.n, f64(h)))
        self.buffer = self.buffer[-self.WINDOW:]

    def forecast_blocks(self):
        ns = [p[0] for p in self.buffer]
        hs = torch.stack([p[1] for p in self.buffer])                          # (K, B, T, D) float64
        x = np.stack([self.basis(self.tau(j)) for j in ns])                    # (K, P)
        a = x.T @ x + self.lam * np.eye(self.degree + 1)
        coef = np.linalg.solve(a, x.T @ np.eye(len(ns)))                       # (P, K): C = coef @ H
        xs = self.basis(self.tau(self.n))                                       # (P,)
        a_cheb = torch.from_numpy(xs @ coef)                                    # (K,) weights on the buffered h
        h_cheb = torch.einsum("k,k...->...", a_cheb, hs)
        if len(ns) == 1:
            h_lin = hs[-1]
        else:
            k = (self.n - ns[-1]) / (ns[-1] - ns[-2])
            h_lin = hs[-1] + k * (hs[-1] - hs[-2])
        return (1 - self.w) * h_lin + self.w * h_cheb


def build_policy(spec, steps, timesteps):
    name, knobs = parse(spec)
    if name == "none":
        return NoCache(steps, timesteps)
    if name == "fora":
        return Fora(steps, timesteps, **knobs)
    if name == "taylorseer":
        return (PolynomialSeer if knobs.get("basis") == "newton" else TaylorSeer)(steps, timesteps, **knobs)
    if name == "hicache":
        return HiCache(steps, timesteps, **knobs)
    if name == "freqca":
        return FreqCa(steps, timesteps, **knobs)
    if name == "foca":
        cls = FocaB if knobs.get("reading") == "cachedit" else FocaA
        return cls(steps, timesteps, **knobs)
    if name == "spectrum":
        return Spectrum(steps, timesteps, **knobs)
    raise ValueError(spec)


# ----------------------------------------------------------------------------------------------------------
# The cached DiT forward (docs/methods.md §1, §6.3): embedders and the final layer always run; every block always computes its
# adaLN modulation from the current c; a module-cached step replaces attn/mlp outputs (pre-gate) by the forecast.

def cached_forward(model, x, t, y, policy, full):
    x = model.x_embedder(x) + model.pos_embed                                   # (B, T, D)
    c = model.t_embedder(t) + model.y_embedder(y, False)                        # (B, D)
    if policy.level == "blocks" and not full:
        x = policy.forecast_blocks().to(torch.float32)                          # output of the last block
    elif policy.level == "stack" and not full:
        x = x + policy.forecast_stack().to(torch.float32)                       # FreqCa: x + low + forecast(high)
    else:
        x_in = x
        for l, block in enumerate(model.blocks):
            shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = block.adaLN_modulation(c).chunk(6, dim=1)
            if policy.level == "module" and not full:
                a = policy.forecast((l, "attn")).to(torch.float32)
            else:
                a = block.attn(modulate(block.norm1(x), shift_msa, scale_msa))
                if policy.level == "module":
                    policy.record((l, "attn"), a)
            x = x + gate_msa.unsqueeze(1) * a
            if policy.level == "module" and not full:
                m = policy.forecast((l, "mlp")).to(torch.float32)
            else:
                m = block.mlp(modulate(block.norm2(x), shift_mlp, scale_mlp))
                if policy.level == "module":
                    policy.record((l, "mlp"), m)
            x = x + gate_mlp.unsqueeze(1) * m
        if policy.level == "blocks":
            policy.record_blocks(x)
        if policy.level == "stack":
            policy.record_stack(x_in, x)
    x = model.final_layer(x, c)                                                 # (B, T, p*p*out)
    return model.unpatchify(x)                                                  # (B, out, H, W)


def coef(table, i):
    # One entry of a float64 table as a float32 scalar tensor (the official _extract_into_tensor cast).
    return torch.tensor(float(table[i]), dtype=torch.float32)


def ddim_sample(model, diffusion, noise, labels, spec):
    """DDIM eta 0 (docs/methods.md §6.4) with CFG on all eps channels; returns the sample and the per-step computed flags."""
    s = diffusion.num_timesteps
    timesteps = [float(diffusion.timestep_map[s - 1 - n]) for n in range(s)]    # original t, noisiest first
    policy = build_policy(spec, s, timesteps)
    x, computed = noise.clone(), []
    ch = model.in_channels
    n_img = x.shape[0]
    yy = torch.cat([labels, torch.full_like(labels, NUM_CLASSES)], 0)           # (2N,)
    for n in range(s):
        i = s - 1 - n                                                           # respaced index
        full = policy.begin_step(n)
        computed.append(1.0 if full else 0.0)
        tt = torch.full((2 * n_img,), timesteps[n], dtype=torch.float32)
        out = cached_forward(model, torch.cat([x, x], 0), tt, yy, policy, full)  # (2N, 2C, H, W)
        cond, uncond = out[:n_img, :ch], out[n_img:, :ch]
        eps = uncond + CFG_SCALE * (cond - uncond)                              # (N, C, H, W)
        x0 = coef(diffusion.sqrt_recip_alphas_cumprod, i) * x - coef(diffusion.sqrt_recipm1_alphas_cumprod, i) * eps
        eps = (coef(diffusion.sqrt_recip_alphas_cumprod, i) * x - x0) / coef(diffusion.sqrt_recipm1_alphas_cumprod, i)
        abar_prev = diffusion.alphas_cumprod_prev
        x = coef(np.sqrt(abar_prev), i) * x0 + coef(np.sqrt(1.0 - abar_prev), i) * eps
    assert computed == [1.0 if f else 0.0 for f in policy.schedule]
    return x, torch.tensor(computed)


def load_model():
    weights, meta = load_safetensors(os.path.join(DIT_DIR, "tiny_dit.safetensors"))
    model = DiT(input_size=8, patch_size=2, in_channels=4, hidden_size=64, depth=2, num_heads=int(meta["num_heads"]),
                num_classes=NUM_CLASSES, learn_sigma=True, class_dropout_prob=0.1)
    model.load_state_dict(weights)
    return model.eval()


def self_checks():
    """The schedules against the counts docs/methods.md quotes, and the forecasters on features linear in time."""
    assert sum(fora_schedule(50, 3)) == 18 and sum(fora_schedule(50, 5)) == 11
    assert sum(taylor_schedule(50, 3, 2)) == 18 and sum(taylor_schedule(50, 4, 2)) == 14
    assert [n for n, f in enumerate(taylor_schedule(50, 5, 2)) if f][-1] == 46        # i = 3
    assert [n for n, f in enumerate(spectrum_schedule(50, 2, 0.75, 5)) if f] == [0, 1, 2, 3, 4, 6, 8, 11, 15, 20, 25,
                                                                                 31, 38, 46]
    assert [n for n, f in enumerate(spectrum_schedule(50, 2, 3.0, 5)) if f] == [0, 1, 2, 3, 4, 6, 11, 19, 30, 44]
    ts = [float(t) for t in reversed(space_timesteps(1000, 50))]
    for spec, coord in (("foca:n=5", None), ("foca:n=5,time=t", ts), ("taylorseer:n=4,o=2", None)):
        policy = build_policy(spec, 50, ts)
        for n in range(50):
            s = n if coord is None else coord[n]
            truth = torch.full((3,), 2.0 + 0.5 * s, dtype=torch.float64)
            if policy.begin_step(n):
                policy.record((0, "attn"), truth)
            else:
                assert torch.allclose(policy.forecast((0, "attn")), truth, rtol=0, atol=1e-9), (spec, n)
    # The FFT DCT: orthonormal (C C^T = I) and equal to the cosine definition; the low band of a pattern inside the band
    # is the pattern, of one outside it zero; a checkerboard keeps 2.7e-4 of its energy in the low band at 16 x 16, 0.25.
    for side in (4, 16):
        c = dct_ortho(np.eye(side), 0)
        assert np.allclose(c @ c.T, np.eye(side), atol=1e-12)
        k = np.arange(side)
        assert np.allclose(c[3 % side], np.sqrt(2.0 / side) * np.cos(np.pi * (2 * k + 1) * (3 % side) / (2 * side)), atol=1e-12)
    c = dct_ortho(np.eye(16), 0)
    inside = torch.from_numpy(np.einsum("i,j,d->ijd", c[3], c[1], [1.0, -2.0]).reshape(1, 256, 2))
    outside = torch.from_numpy(np.einsum("i,j,d->ijd", c[4], c[0], [1.0, 0.5]).reshape(1, 256, 2))
    assert torch.allclose(low_band(inside, 0.25), inside, atol=1e-12)
    assert torch.allclose(low_band(outside, 0.25), torch.zeros_like(outside), atol=1e-12)
    board = torch.from_numpy(np.array([(-1.0) ** (i + j) for i in range(16) for j in range(16)]).reshape(1, 256, 1))
    frac = (low_band(board, 0.25) ** 2).sum() / (board ** 2).sum()
    assert 2.6e-4 < frac < 2.8e-4, frac


def main():
    torch.set_num_threads(1)
    self_checks()
    model = load_model()
    kept = space_timesteps(1000, STEPS)
    diffusion = Diffusion(1000, kept)
    labels = torch.tensor(CLASSES)
    torch.manual_seed(0)
    noise = torch.randn(2, 4, 8, 8)
    g = {"noise": noise}
    meta = {"script": "tools/reference/make_cache_fixtures.py", "seed": "0", "torch": torch.__version__,
            "steps": str(STEPS), "sampler": "ddim", "eta": "0", "cfg_scale": str(CFG_SCALE),
            "classes": ",".join(map(str, CLASSES)), "guided_channels": "all"}
    with torch.no_grad():
        reference, _ = ddim_sample(model, diffusion, noise, labels, "none")
        g["none.sample"] = reference
        meta["spec.none"] = "none"
        for spec in SPECS:
            p = prefix_of(spec)
            sample, computed = ddim_sample(model, diffusion, noise, labels, spec)
            g[f"{p}.sample"], g[f"{p}.computed"] = sample, computed
            meta[f"spec.{p}"] = spec
            err = ((sample - reference).norm() / reference.norm()).item()
            print(f"{spec:55s} {p:40s} full {int(computed.sum()):2d}  rel L2 to uncached {err:.3e}")
    path = os.path.join(DIT_DIR, "tiny_dit_cache_golden.safetensors")
    save_safetensors(path, {k: v.contiguous().float() for k, v in g.items()}, meta)
    print(f"{path}: {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
