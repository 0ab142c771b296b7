using System.CommandLine;
using DitCache.Tensors;

namespace DitCache.Cli;

/// <summary>
/// <c>--gemm</c> and <c>--deterministic</c>, shared by the commands that sample. The managed GEMM splits only rows and
/// columns across threads, never the k sum, so its results are bit-identical for any <c>--threads</c>; OpenBLAS's
/// are not guaranteed to be (its kernels may split k by thread count). <c>--deterministic</c> therefore picks the
/// managed kernel and refuses OpenBLAS.
/// </summary>
internal static class GemmFlags
{
    public static Option<string> Gemm() => new("--gemm")
    {
        Description = "GEMM backend: managed, managed-bf16 (opt-in BF16 weights and activations, float32 accumulation), openblas, or auto (managed on CPUs with AVX-512 or AVX2+FMA, where it measured at least as fast as OpenBLAS at the DiT shapes; else OpenBLAS when libopenblas.so.0 is installed)",
        DefaultValueFactory = _ => "auto",
    };

    public static Option<bool> Deterministic() => new("--deterministic")
    {
        Description = "bit-identical results for any --threads: the managed GEMM (auto resolves to managed; openblas is refused)",
    };

    public static Option<string> Weights() => new("--weights")
    {
        Description = "how the DiT's Linear weights are stored: f32 (as in the file), bf16 or f16 (16 bits a value, half the memory, rounded once at load and widened to float32 in the GEMM; needs the managed GEMM). Quality cost measured in docs/models/dit-xl2.md",
        DefaultValueFactory = _ => "f32",
    };

    /// <summary>
    /// The backend for <paramref name="gemm"/> at <paramref name="threads"/>, honouring --deterministic and
    /// <paramref name="weights"/> (16-bit weights need the managed GEMM: auto resolves to it, openblas is refused).
    /// </summary>
    /// <exception cref="DitCacheException">--deterministic or 16-bit --weights with --gemm openblas, or --weights f16
    /// with --gemm managed-bf16 (exit code 2).</exception>
    public static IGemm Create(string gemm, bool deterministic, int threads, WeightPrecision weights = WeightPrecision.Float32)
    {
        if (deterministic && gemm == "openblas")
        {
            throw new DitCacheException("--deterministic with --gemm openblas: OpenBLAS does not promise bit-identical results across thread counts; drop one of the two flags", exitCode: 2);
        }

        bool half = weights != WeightPrecision.Float32;
        if (half && gemm == "openblas")
        {
            throw new DitCacheException($"--weights {weights.Name()} with --gemm openblas: OpenBLAS multiplies float32 weights only; use --gemm managed (or auto), or --weights f32", exitCode: 2);
        }

        IGemm backend = GemmFactory.Create((deterministic || half) && gemm == "auto" ? "managed" : gemm, threads);
        if (!backend.Supports(weights))
        {
            throw new DitCacheException($"--weights {weights.Name()} with --gemm {gemm}: that backend rounds every weight to bf16; use --gemm managed, or --weights bf16", exitCode: 2);
        }

        return backend;
    }
}
