"""DitCache and PyTorch side by side, in one script, interleaved (issue "Speed", item 4; results in
docs/benchmarks/pytorch.md).

    tools/bench/side_by_side.sh --rounds 11 --torch-blas-threads 2,1 --threads 1,2 --gemm managed

(the wrapper runs this file with /usr/bin/python3, Debian's PyTorch 1.13). Three parts:

  forward  One DiT-S/2 forward (12 blocks, hidden 384, 6 heads, 32x32x4 latent, patch 2: 256 tokens), batch 2,
           random weights written once to a safetensors file that both engines load. Per-forward milliseconds; the
           two outputs are compared.
  sample   A 50-step DDIM run (eta 0) with CFG 4 of the shipped model (models/fmnist-dit.safetensors) for N images,
           both engines from the same initial noise; seconds of the sampling loop. Also checks that the two final
           samples agree (relative L2 < 1e-3), so both engines did the same work.
  cache    DitCache alone: FoCa, TaylorSeer and FORA at n=5 against the uncached run of the same sampling job;
           wall-clock speedup against the FLOPs ratio (DiT-paper FLOPs, docs/methods.md §9.1).

Peers (--peers ort,torchsharp): ONNX Runtime and TorchSharp (libtorch), each in bench/DitCache.Peers `serve`, one
process per engine and thread setting (--peer-threads), speaking the same protocol as the DitCache server; the model
is the same safetensors file exported by tools/bench/export_peers.py (ONNX; TorchScript traced and frozen) at the
part's fixed batch, and the sampling loop around the peer's forward is C# with DitCache's DDIM and CFG arithmetic.
Before timing, each peer's output must agree with DitCache's (forward: relative L2 < 1e-5; final samples < 1e-3), or
the script stops. The peers table gives every engine at its best thread setting and at one thread, as
engine time / DitCache time (above 1: DitCache is faster), by medians and paired per round.

The C# side is one long-lived process per DitCache thread setting (bench/DitCache.Benchmarks `serve`, Release build
made once here); PyTorch runs in this process, with one torch thread and each listed OpenBLAS thread count (set
through the OpenBLAS library PyTorch loaded; two levels of threads oversubscribe two cores). Every round runs each
variant once, in an order that rotates from round to round, with a short pause at every hand-over (idle OpenBLAS
threads spin for a moment after a call). Each engine is compared at its fastest setting of the run, by the ratio of
the medians and by the median of the per-round ratios (paired: the variants of one round ran seconds apart, under
the same phase of whatever else loads the machine). Process start-up and model loading are never timed: forwards
are timed one by one, sampling runs by the loop's own clock.
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "2")  # before torch loads OpenBLAS

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tools", "train"))
from dit_model import DiT, Diffusion, space_timesteps  # noqa: E402
from st_io import load_safetensors, save_safetensors  # noqa: E402

BENCH_PROJECT = os.path.join(ROOT, "bench", "DitCache.Benchmarks", "DitCache.Benchmarks.csproj")
BENCH_DLL = os.path.join(ROOT, "bench", "DitCache.Benchmarks", "bin", "Release", "net10.0", "DitCache.Benchmarks.dll")
SHIPPED = os.path.join(ROOT, "models", "fmnist-dit.safetensors")
PEERS_PROJECT = os.path.join(ROOT, "bench", "DitCache.Peers", "DitCache.Peers.csproj")
PEERS_DLL = os.path.join(ROOT, "bench", "DitCache.Peers", "bin", "Release", "net10.0", "DitCache.Peers.dll")
EXPORT_SCRIPT = os.path.join(ROOT, "tools", "bench", "export_peers.py")
PEER_ENGINES = {"ort": ("ONNX Runtime", "onnx"), "torchsharp": ("TorchSharp", "torchscript")}   # engine -> (label, export)
FORWARD_AGREEMENT = 1e-5     # peers against DitCache, relative L2 of one forward's output
SAMPLE_AGREEMENT = 1e-3      # peers against DitCache, relative L2 of the final samples
HANDOVER_PAUSE_S = 0.2


# ----------------------------------------------------------------------------------------------------------
# The C# side

class Server:
    """A `serve` process: one command line in, one answer line out."""

    def __init__(self, command, what):
        self.what = what
        self.proc = subprocess.Popen(command, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        self.banner = self.proc.stdout.readline().strip()
        if not self.banner.startswith("ready"):
            raise RuntimeError(f"{what} server did not start: {self.banner!r}")

    def ask(self, *words):
        self.proc.stdin.write(" ".join(str(w) for w in words) + "\n")
        answer = self.proc.stdout.readline().strip()
        if not answer or answer.startswith("error"):
            raise RuntimeError(f"{self.what} server: {' '.join(map(str, words))!r} -> {answer!r}")
        return answer.split()

    def close(self):
        try:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.close()
        except BrokenPipeError:
            pass
        self.proc.wait(timeout=30)


class DitCacheServer(Server):
    """bench/DitCache.Benchmarks `serve THREADS GEMM`: loads the safetensors files themselves."""
    peer = False

    def __init__(self, threads, gemm):
        super().__init__(["dotnet", BENCH_DLL, "serve", str(threads), gemm], "DitCache")

    def model(self, weights, batch, work):
        return weights


class PeerServer(Server):
    """bench/DitCache.Peers `serve ENGINE THREADS`: loads an export of the safetensors file at a fixed batch."""
    peer = True

    def __init__(self, engine, threads):
        super().__init__(["dotnet", PEERS_DLL, "serve", engine, str(threads)], PEER_ENGINES[engine][0])
        self.engine = engine

    def model(self, weights, batch, work):
        return export_for_peer(weights, batch, work, PEER_ENGINES[self.engine][1])


def export_for_peer(weights, batch, work, kind):
    """The export of `weights` at `batch` for one peer (tools/bench/export_peers.py, in a child process), made once
    and remade when the weights are newer. Each ONNX export has its own folder (a model over 2 GB keeps its tensors
    in files beside the .onnx)."""
    stem = os.path.splitext(os.path.basename(weights))[0] + f"_b{batch}"
    folder = os.path.join(work, "peers", f"{stem}_{kind}")
    path = os.path.join(folder, "model.onnx" if kind == "onnx" else "model.pt")
    if not (os.path.exists(path + ".json") and os.path.getmtime(path + ".json") >= os.path.getmtime(weights)):
        os.makedirs(folder, exist_ok=True)
        print(f"exporting {os.path.relpath(weights, ROOT)} at batch {batch} for {kind} ...", flush=True)
        subprocess.run([sys.executable, EXPORT_SCRIPT, "--weights", weights, "--batch", str(batch),
                        "--onnx" if kind == "onnx" else "--torchscript", path], cwd=ROOT, check=True)
    return path


def build(peers=()):
    for project in [BENCH_PROJECT] + ([PEERS_PROJECT] if peers else []):
        print(f"building {os.path.relpath(os.path.dirname(project), ROOT)} (Release) ...", flush=True)
        subprocess.run(["dotnet", "build", project, "-c", "Release", "-v", "quiet", "-nologo"], cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL)
    if "torchsharp" in peers:
        # TorchSharp 0.107's native glue asks for GLIBCXX_3.4.32 (GCC 13) for a symbol it never binds; Debian 12 has
        # GCC 12's libstdc++. tools/bench/torchsharp_glibcxx.py explains, checks and marks that requirement weak in
        # the build's copy (the build copies it afresh, so this runs after every build).
        import torchsharp_glibcxx
        glue = os.path.join(os.path.dirname(PEERS_DLL), "runtimes", "linux-x64", "native", "libLibTorchSharp.so")
        weakened = torchsharp_glibcxx.patch(glue)
        if weakened:
            print(f"TorchSharp: {', '.join(weakened)} marked weak in {os.path.relpath(glue, ROOT)} "
                  "(tools/bench/torchsharp_glibcxx.py)", flush=True)


# ----------------------------------------------------------------------------------------------------------
# The PyTorch side

def load_dit(path):
    """Our PyTorch DiT (tools/train/dit_model.py) with the weights of a safetensors file, config read off the shapes."""
    tensors, meta = load_safetensors(path)
    hidden, in_ch, patch, _ = tensors["x_embedder.proj.weight"].shape
    depth = sum(1 for k in tensors if k.endswith(".attn.qkv.weight"))
    tokens = tensors["pos_embed"].shape[1]
    out = tensors["final_layer.linear.weight"].shape[0] // (patch * patch)
    model = DiT(input_size=int(round(tokens ** 0.5)) * patch, patch_size=patch, in_channels=in_ch, hidden_size=hidden,
                depth=depth, num_heads=int(meta["num_heads"]), num_classes=tensors["y_embedder.embedding_table.weight"].shape[0] - 1,
                learn_sigma=out == 2 * in_ch)
    model.load_state_dict(tensors)
    return model.eval()


def ddim_sample(model, diffusion, noise, labels, cfg_scale):
    """DDIM (eta 0, no clipping) with CFG on all channels: the math of tools/reference/make_dit_fixtures.py (float64
    tables cast to float32 scalars, as DiT's _extract_into_tensor). Returns the final sample and the loop's seconds.
    The coefficient scalars are made before the clock starts."""
    n, c = noise.shape[0], model.in_channels
    steps = list(reversed(range(diffusion.num_timesteps)))                          # respaced index, noisiest first

    def coef(table, i):
        return torch.tensor(float(table[i]), dtype=torch.float32)

    tables = [(coef(diffusion.sqrt_recip_alphas_cumprod, i), coef(diffusion.sqrt_recipm1_alphas_cumprod, i),
               coef(np.sqrt(diffusion.alphas_cumprod_prev), i), coef(np.sqrt(1.0 - diffusion.alphas_cumprod_prev), i),
               torch.full((2 * n,), float(diffusion.timestep_map[i]), dtype=torch.float32)) for i in steps]
    yy = torch.cat([labels, torch.full_like(labels, model.y_embedder.num_classes)], 0)  # (2N,) [y; null]
    x = noise.clone()
    start = time.perf_counter()
    for recip, recipm1, sqrt_prev, sqrt_1m_prev, tt in tables:
        out = model.forward_with_cfg(torch.cat([x, x], 0), tt, yy, cfg_scale)[:n]     # (N, 2C, H, W)
        eps = out[:, :c]
        x0 = recip * x - recipm1 * eps
        eps = (recip * x - x0) / recipm1
        x = sqrt_prev * x0 + sqrt_1m_prev * eps
    return x, time.perf_counter() - start


class OpenBlas:
    """The OpenBLAS that PyTorch loaded (Debian's torch calls the system libblas, which is OpenBLAS here): the same
    library handle, so openblas_set_num_threads changes PyTorch's GEMM threads between variants."""

    def __init__(self):
        import ctypes
        try:
            self.lib = ctypes.CDLL("libopenblas.so.0")
            self.lib.openblas_get_num_threads()
        except (OSError, AttributeError):
            self.lib = None

    def set_threads(self, n):
        if self.lib is None:
            raise RuntimeError("libopenblas.so.0 not found: --torch-blas-threads needs PyTorch on OpenBLAS")
        self.lib.openblas_set_num_threads(int(n))


class Timings(dict):
    """name -> every timing, plus .rounds: name -> [median of each round]. The background load of a shared machine
    comes in phases, and a phase hits the variants of one round alike: ratios taken within each round and then their
    median (paired) are steadier than a ratio of medians."""

    def __init__(self, names):
        super().__init__({n: [] for n in names})
        self.rounds = {n: [] for n in names}

    def paired(self, numerator, denominator):
        return statistics.median(a / b for a, b in zip(self.rounds[numerator], self.rounds[denominator]))


def interleave(rounds, variants):
    """Runs every variant once per round, the order rotating from round to round, with a pause at every hand-over.
    variants: name -> callable returning a list of timings. Returns the Timings."""
    names = list(variants)
    times = Timings(names)
    for r in range(rounds):
        for k in range(len(names)):
            name = names[(k + r) % len(names)]
            pause()
            values = variants[name]()
            times[name] += values
            times.rounds[name].append(statistics.median(values))
    return times


def torch_variants(blas, blas_threads, run):
    """One PyTorch variant per OpenBLAS thread count: name -> callable."""
    def variant(n):
        def call():
            blas.set_threads(n)
            return run()
        return call
    return {f"PyTorch, OpenBLAS {n}": variant(n) for n in blas_threads}


def check_agreement(name, what, out, reference, torch_out, limit, checks):
    """A peer's output against DitCache's: stops the script when they differ by `limit` relative L2 or more."""
    if reference is None:
        raise SystemExit(f"side_by_side.py: no DitCache output to check {name} against (give --threads)")
    e, et = rel_l2(out, reference), rel_l2(out, torch_out)
    if not e < limit:
        raise SystemExit(f"side_by_side.py: {name}'s {what} differ from DitCache's by {e:.2e} relative L2 (limit "
                         f"{limit:g}; against PyTorch {et:.2e}): the peer does not compute the same model, nothing timed")
    print(f"{name}: {what} agree with DitCache to {e:.1e} (PyTorch {et:.1e})", flush=True)
    if checks is not None:
        engine = name.split(",")[0]
        checks[engine] = max(checks.get(engine, 0.0), e)


def rel_l2(a, b):
    a, b = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def pause():
    time.sleep(HANDOVER_PAUSE_S)


# ----------------------------------------------------------------------------------------------------------
# Parts

FORWARD_PRESETS = {"S/2": (12, 384, 6), "B/2": (12, 768, 12), "L/2": (24, 1024, 16), "XL/2": (28, 1152, 16)}


def write_dit_s2(work, preset="S/2"):
    """Random weights of a DiT preset at 256x256 (32x32x4 latent, patch 2) and inputs, written once (seed 0). adaLN
    and the final layer are drawn too (DiT's init zeroes them, which would make most of the network an identity and
    the output check meaningless)."""
    depth, hidden, heads = FORWARD_PRESETS[preset]
    tag = preset.lower().replace("/", "")
    weights, inputs = os.path.join(work, f"dit_{tag}_random.safetensors"), os.path.join(work, f"dit_{tag}_inputs.safetensors")
    if not (os.path.exists(weights) and os.path.exists(inputs)):
        torch.manual_seed(0)
        model = DiT(input_size=32, patch_size=2, in_channels=4, hidden_size=hidden, depth=depth, num_heads=heads, num_classes=1000)
        with torch.no_grad():
            for name, p in model.named_parameters():
                if "adaLN_modulation" in name or name.startswith("final_layer.linear"):
                    p.normal_(0.0, 0.02)
        save_safetensors(weights, {k: v.float() for k, v in model.state_dict().items()},
                         {"num_heads": str(heads), "script": "tools/bench/side_by_side.py", "seed": "0"})
        save_safetensors(inputs, {"x": torch.randn(2, 4, 32, 32), "t": torch.tensor([500.0, 500.0]),
                                  "y": torch.tensor([3.0, 1000.0])})
    return weights, inputs


def part_forward(servers, work, rounds, per_round, blas, blas_threads, preset="S/2", checks=None):
    weights, inputs = write_dit_s2(work, preset)
    tensors, _ = load_safetensors(inputs)
    x, t, y = tensors["x"], tensors["t"], tensors["y"].long()
    for server in servers.values():                     # peers' exports first: DiT-XL/2 is 2.7 GB in each process
        server.ask("forward-load", server.model(weights, x.shape[0], work), inputs)
    model = load_dit(weights)

    def torch_forwards(k):
        ms = []
        with torch.inference_mode():
            for _ in range(k):
                start = time.perf_counter()
                out = model(x, t, y)
                ms.append((time.perf_counter() - start) * 1e3)
        return ms, out

    # Warm-up (five forwards: .NET's tiered JIT promotes the hot methods after about 30 calls, with a delay), and the
    # output check on the same inputs.
    # The peers are checked against DitCache's output (the first DitCache server), and must agree to 1e-5.
    out_path = os.path.join(work, "dit_s2_out_csharp.safetensors")
    _, torch_out = torch_forwards(5)
    err, reference = 0.0, None
    for name, server in servers.items():
        server.ask("forward", 5, out_path)
        out = load_safetensors(out_path)[0]["out"].numpy()
        if not server.peer:
            err = max(err, rel_l2(out, torch_out.numpy()))
            reference = out if reference is None else reference
        else:
            check_agreement(name, "forward outputs", out, reference, torch_out.numpy(), FORWARD_AGREEMENT, checks)

    variants = torch_variants(blas, blas_threads, lambda: torch_forwards(per_round)[0])
    for name, server in servers.items():
        variants[name] = lambda server=server: [float(v) for v in server.ask("forward", per_round)[1:]]
    return interleave(rounds, variants), err


def write_noise(work, images, shape=(1, 28, 28)):
    path = os.path.join(work, f"noise_{images}" + ("" if shape == (1, 28, 28) else "x".join(map(str, shape))) + ".safetensors")
    if not os.path.exists(path):
        g = torch.Generator().manual_seed(1234)
        save_safetensors(path, {"noise": torch.randn(images, *shape, generator=g)})
    return path


def part_sample(servers, work, rounds, images, steps, cfg, blas, blas_threads, checks=None):
    noise_path = write_noise(work, images)
    noise = load_safetensors(noise_path)[0]["noise"]
    labels = torch.tensor([i % 10 for i in range(images)])
    classes = ",".join(str(int(v)) for v in labels)
    model = load_dit(SHIPPED)
    diffusion = Diffusion(1000, space_timesteps(1000, steps))
    out_path = os.path.join(work, "sample_csharp.safetensors")

    def run_torch():
        with torch.inference_mode():
            return ddim_sample(model, diffusion, noise, labels, cfg)

    batch = 2 * images if cfg > 1 else images
    models = {name: server.model(SHIPPED, batch, work) for name, server in servers.items()}

    def run_csharp(name, server, out=None):
        words = ["sample", models[name], noise_path, classes, steps, cfg, "none"] + ([out] if out else [])
        return [float(server.ask(*words)[1])]

    # Warm-up run of each, and the agreement checks (peers against DitCache's sample, to 1e-3).
    torch_sample, _ = run_torch()
    err, reference = 0.0, None
    for name, server in servers.items():
        run_csharp(name, server, out=out_path)
        sample = load_safetensors(out_path)[0]["sample"].numpy()
        if not server.peer:
            err = max(err, rel_l2(sample, torch_sample.numpy()))
            reference = sample if reference is None else reference
        else:
            check_agreement(name, "final samples", sample, reference, torch_sample.numpy(), SAMPLE_AGREEMENT, checks)

    variants = torch_variants(blas, blas_threads, lambda: [run_torch()[1]])
    for name, server in servers.items():
        variants[name] = lambda name=name, server=server: run_csharp(name, server)
    return interleave(rounds, variants), err


def part_cache(servers, work, rounds, images, steps, cfg, specs, cache_model="shipped"):
    """Every (thread setting, cache spec) pair, the uncached run included, interleaved. Returns the Timings of the
    loop seconds, the FLOPs of each spec, and the median full-step and cached-step milliseconds of each variant.
    cache_model "shipped" samples the shipped model; "dit-s2" the DiT-S/2-sized random model of the forward part
    (32x32x4 latents, 256 tokens, hidden 384): the same sampling loop at a width where a forecast costs relatively
    less (a forecast streams B*T*D floats per site, a full step does about B*T*D*D multiply-adds)."""
    if cache_model == "dit-s2":
        weights, _ = write_dit_s2(work)
        noise_path = write_noise(work, images, (4, 32, 32))
    else:
        weights, noise_path = SHIPPED, write_noise(work, images)
    classes = ",".join(str(i % 10) for i in range(images))
    flops, step_ms = {}, {}

    def variant(server, spec, name):
        def call():
            _, s, _, _, full_ms, cached_ms = server.ask("sample", weights, noise_path, classes, steps, cfg, spec)
            step_ms[name][0].append(float(full_ms))
            step_ms[name][1].append(float(cached_ms))
            return [float(s)]
        return call

    variants = {}
    for threads, server in servers.items():
        for spec in ["none"] + specs:
            name = f"{spec}, {threads}"
            step_ms[name] = ([], [])
            _, _, f, full, _, _ = server.ask("sample", weights, noise_path, classes, steps, cfg, spec)   # warm-up
            flops[spec] = (float(f), float(full))
            variants[name] = variant(server, spec, name)
    return interleave(rounds, variants), flops, step_ms


# ----------------------------------------------------------------------------------------------------------
# Report

def table(header, rows):
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    plain = ["  ".join(str(x).rjust(w) for x, w in zip(row, widths)) for row in [header] + rows]
    markdown = ["| " + " | ".join(header) + " |",
                "|" + "|".join("---" if i == 0 or h in ("notes", "range (s)", "engine") else "---:" for i, h in enumerate(header)) + "|"]
    markdown += ["| " + " | ".join(str(x) for x in row) + " |" for row in rows]
    return "\n".join(plain), "\n".join(markdown)


def best(t, engine):
    """The fastest variant of an engine by median: each engine is compared at its best setting of this run."""
    return min((statistics.median(v), k) for k, v in t.items() if k.startswith(engine))


def compare_row(label, t, digits, check):
    p, pname = best(t, "PyTorch")
    d, dname = best(t, "DitCache")
    detail = "; ".join(f"{k} median {statistics.median(v):.{digits}f}, range {spread(v)}" for k, v in t.items())
    return [label, f"{p:.{digits}f} ({pname[9:]})", f"{d:.{digits}f} ({dname[10:]})", f"{p / d:.2f}x",
            f"{t.paired(pname, dname):.2f}x", f"{detail}; {check}"]


def summary(t, digits):
    p, pname = best(t, "PyTorch")
    d, dname = best(t, "DitCache")
    return (", ".join(f"{k} {statistics.median(v):.{digits}f}" for k, v in t.items())
            + f"; best PyTorch / best DitCache {p / d:.2f} (paired per round {t.paired(pname, dname):.2f})")


def one_thread(t, engine):
    """The one-thread variant of an engine, or None when the run had none (PyTorch: OpenBLAS 1)."""
    name = "PyTorch, OpenBLAS 1" if engine == "PyTorch" else f"{engine}, 1 threads"
    return name if name in t else None


def setting(name):
    return name.split(", ", 1)[1]


def peer_rows(label, t, digits, checks):
    """One row per engine: its best setting and its one-thread setting, each as engine time / DitCache time (the
    ratio of the medians and the median of the per-round ratios)."""
    d, dname = best(t, "DitCache")
    d1 = one_thread(t, "DitCache")
    engines = ["DitCache", "PyTorch"] + [label_ for label_, _ in PEER_ENGINES.values()]
    rows = []
    for e in engines:
        if not any(k.startswith(e) for k in t):
            continue
        b, bname = best(t, e)
        row = [label, e, f"{b:.{digits}f} ({setting(bname)})", f"{b / d:.2f}x", f"{t.paired(bname, dname):.2f}x"]
        e1 = one_thread(t, e)
        if e1 and d1:
            m1 = statistics.median(t[e1])
            row += [f"{m1:.{digits}f}", f"{m1 / statistics.median(t[d1]):.2f}x", f"{t.paired(e1, d1):.2f}x"]
        else:
            row += ["", "", ""]
        row.append(f"{checks[e]:.1e}" if e in checks else "")
        rows.append(row)
    return rows


def spread(values):
    return f"{min(values):.1f}–{max(values):.1f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=9, help="alternating rounds per part (medians over them)")
    ap.add_argument("--forwards", type=int, default=3, help="forwards per engine per round (forward part)")
    ap.add_argument("--images", type=int, default=10, help="images per sampling run (the CFG batch is twice this)")
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--cfg", type=float, default=4.0)
    ap.add_argument("--threads", default="2",
                    help="DitCache thread counts (--threads of ditcache), each a variant, e.g. 2,1; the table compares "
                         "the fastest; the cache part uses the first")
    ap.add_argument("--gemm", default="auto", help="DitCache GEMM: managed, openblas or auto (as ditcache)")
    ap.add_argument("--parts", default="forward,sample,cache")
    ap.add_argument("--forward-preset", default="S/2", choices=sorted(FORWARD_PRESETS),
                    help="DiT preset of the forward part, at 256x256 (XL/2: 675 M parameters, 2.7 GB of weights)")
    ap.add_argument("--torch-blas-threads", default="2",
                    help="OpenBLAS thread counts to run PyTorch with, each a variant, e.g. 2,1; the table compares "
                         "against the fastest (default 2, with one torch thread: PyTorch's best setting here)")
    ap.add_argument("--cache-threads", default=None,
                    help="DitCache thread counts the cache part runs (default: all of --threads), e.g. 2")
    ap.add_argument("--caches", default="foca:n=5,taylorseer:n=5,fora:n=5",
                    help="cache specs of the cache part, separated by '+' or by ',' between methods")
    ap.add_argument("--cache-model", default="shipped", choices=["shipped", "dit-s2"],
                    help="model of the cache part: the shipped model, or the DiT-S/2-sized random model of the forward part")
    ap.add_argument("--cache-images", type=int, default=None, help="images per cache-part run (default: --images)")
    ap.add_argument("--work", default=os.path.join(ROOT, "bench-results", "side_by_side"),
                    help="folder for the random weights, noise and outputs")
    ap.add_argument("--peers", default="",
                    help="peer engines to add as variants of the forward and sample parts: ort, torchsharp or "
                         "ort,torchsharp (bench/DitCache.Peers; the model exported by tools/bench/export_peers.py)")
    ap.add_argument("--peer-threads", default="1,2",
                    help="thread counts of each peer, each a variant (ORT intra-op threads, torch.set_num_threads)")
    ap.add_argument("--no-build", action="store_true")
    args = ap.parse_args()

    torch.set_num_threads(1)
    blas = OpenBlas()
    args.cache_threads = args.cache_threads or args.threads
    blas_threads = [int(n) for n in args.torch_blas_threads.split(",")]
    os.makedirs(args.work, exist_ok=True)
    peers = [p for p in args.peers.split(",") if p]
    unknown = [p for p in peers if p not in PEER_ENGINES]
    if unknown:
        ap.error(f"--peers {args.peers}: unknown engine {unknown[0]!r}; expected a comma-separated list of "
                 f"{', '.join(PEER_ENGINES)}")
    if not args.no_build:
        build(peers=peers)
    parts = args.parts.split(",")
    specs = split_specs(args.caches)
    servers = {}
    try:
        for n in args.threads.split(","):
            servers[f"DitCache, {n} threads"] = DitCacheServer(n, args.gemm)
        dit_servers = dict(servers)
        for engine in peers:
            for n in args.peer_threads.split(","):
                servers[f"{PEER_ENGINES[engine][0]}, {n} threads"] = PeerServer(engine, n)
    except Exception:
        for started in servers.values():
            started.close()
        raise
    server = next(iter(servers.values()))
    lines = [f"PyTorch {torch.__version__}: torch threads {torch.get_num_threads()}, OpenBLAS threads "
             f"{args.torch_blas_threads}; DitCache: {server.banner[6:].split(' threads=')[0]}, threads {args.threads}; "
             "each engine at its fastest setting of the run; "
             f"{args.rounds} alternating rounds per part, medians"]
    seen = set()
    for name, s in servers.items():
        if s.peer and s.engine not in seen:
            seen.add(s.engine)
            lines.append(f"{s.what}: {s.banner.split(' ', 3)[3]}, threads {args.peer_threads}")
    rows, notes, prows = [], [], []
    try:
        if "forward" in parts:
            checks = {}
            t, err = part_forward(servers, args.work, args.rounds, args.forwards, blas, blas_threads, args.forward_preset,
                                  checks)
            label = f"DiT-{args.forward_preset} forward, batch 2 (ms)"
            rows.append(compare_row(label, t, 1, f"outputs agree to {err:.1e}"))
            checks["PyTorch"] = err
            prows += peer_rows(label, t, 1, checks)
            print(f"forward: {summary(t, 1)}, rel L2 {err:.2e}", flush=True)
        if "sample" in parts:
            checks = {}
            t, err = part_sample(servers, args.work, args.rounds, args.images, args.steps, args.cfg, blas, blas_threads,
                                 checks)
            label = f"shipped model, {args.steps} DDIM steps, CFG {args.cfg:g}, {args.images} images (s)"
            rows.append(compare_row(label, t, 2, f"samples agree to {err:.1e}"))
            checks["PyTorch"] = err
            prows += peer_rows(label, t, 2, checks)
            print(f"sample: {summary(t, 2)}, rel L2 {err:.2e}", flush=True)
            if not err < 1e-3:
                notes.append(f"WARNING: the final samples differ by {err:.2e} relative L2 (limit 1e-3)")
        plain, markdown = table(["workload", "PyTorch (best)", "DitCache (best)", "PyTorch / DitCache",
                                 "paired per round", "notes"], rows)
        peer_tables = table(["workload", "engine", "best (setting)", "engine / DitCache, best vs best", "paired",
                             "1 thread", "engine / DitCache at 1 thread", "paired (1 thread)",
                             "rel. L2 vs DitCache"], prows) if peers and prows else None
        cache_tables = None
        if "cache" in parts:
            cache_servers = {k: v for k, v in dit_servers.items() if k.split(", ")[1].split()[0] in args.cache_threads.split(",")}
            t, flops, step_ms = part_cache({k[10:]: v for k, v in cache_servers.items()}, args.work, args.rounds,
                                           args.cache_images or args.images, args.steps, args.cfg, specs, args.cache_model)
            crow = []
            for threads in (k[10:] for k in cache_servers):
                base = statistics.median(t[f"none, {threads}"])
                base_step = statistics.median(step_ms[f"none, {threads}"][0])
                crow.append([f"none, {threads}", f"{base:.2f}", "1.00x", "", "1.00x", "", "", f"{base_step:.1f}", "",
                             spread(t[f"none, {threads}"])])
                for v in specs:
                    name = f"{v}, {threads}"
                    s = statistics.median(t[name])
                    f, full = flops[v]
                    wall, fr, paired = base / s, full / f, t.paired(f"none, {threads}", name)
                    full_ms, cached_ms = statistics.median(step_ms[name][0]), statistics.median(step_ms[name][1])
                    crow.append([name, f"{s:.2f}", f"{wall:.2f}x", f"{paired:.2f}x", f"{fr:.2f}x", f"{wall / fr:.2f}",
                                 f"{paired / fr:.2f}", f"{full_ms:.1f}", f"{cached_ms:.2f}", spread(t[name])])
                    print(f"cache {name}: {s:.2f} s, wall {wall:.2f}x (paired {paired:.2f}x), FLOPs {fr:.2f}x, "
                          f"wall/FLOPs {wall / fr:.2f} (paired {paired / fr:.2f}), full step {full_ms:.1f} ms, "
                          f"cached step {cached_ms:.2f} ms", flush=True)
            cache_tables = table([f"cache (DitCache, {'shipped model' if args.cache_model == 'shipped' else 'DiT-S/2 size'}, "
                                  f"{args.cache_images or args.images} images)", "sampling loop (s)", "wall-clock speedup",
                                  "paired per round", "FLOPs ratio", "wall / FLOPs", "paired / FLOPs", "full step (ms)",
                                  "cached step (ms)", "range (s)"], crow)
    finally:
        for server in servers.values():
            server.close()

    print()
    print("\n".join(lines))
    if rows:
        print(plain)
    if peer_tables:
        print()
        print(peer_tables[0])
    if cache_tables:
        print(cache_tables[0])
    for n in notes:
        print(n)
    print()
    print("Markdown:")
    print()
    print("\n".join(lines))
    print()
    if rows:
        print(markdown)
        print()
    if peer_tables:
        print(peer_tables[1])
        print()
    if cache_tables:
        print(cache_tables[1])


def split_specs(text):
    """'foca:n=5,taylorseer:n=5,o=2' -> ['foca:n=5', 'taylorseer:n=5,o=2']: a comma starts a new spec only before a
    'name:' (or use '+' between specs)."""
    if "+" in text:
        return [s for s in text.split("+") if s]
    specs = []
    for piece in text.split(","):
        if specs and ":" not in piece and "=" in piece:
            specs[-1] += "," + piece
        elif piece:
            specs.append(piece)
    return specs


if __name__ == "__main__":
    main()
