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

    /// <summary>The backend for <paramref name="gemm"/> at <paramref name="threads"/>, honouring --deterministic.</summary>
    /// <exception cref="DitCacheException">--deterministic with --gemm openblas (exit code 2).</exception>
    public static IGemm Create(string gemm, bool deterministic, int threads)
    {
        if (deterministic && gemm == "openblas")
        {
            throw new DitCacheException("--deterministic with --gemm openblas: OpenBLAS does not promise bit-identical results across thread counts; drop one of the two flags", exitCode: 2);
        }

        return GemmFactory.Create(deterministic && gemm == "auto" ? "managed" : gemm, threads);
    }
}
