using System;
using System.Collections.Generic;

namespace DitCache.Tensors;

/// <summary>Builds an <see cref="IGemm"/> from a backend name given on the command line.</summary>
public static class GemmFactory
{
    /// <summary>The accepted backend names.</summary>
    public static IReadOnlyList<string> Backends { get; } = ["managed", "managed-bf16", "openblas", "auto"];

    /// <summary>
    /// "managed" → <see cref="ManagedGemm"/>; "managed-bf16" → <see cref="ManagedGemm"/> with
    /// <see cref="GemmPrecision.BFloat16"/> (opt-in: both operands rounded to BF16, float32 accumulation);
    /// "openblas" → <see cref="OpenBlasGemm"/> (fails if the library is missing); "auto" → the backend that measured
    /// best for the micro-kernel this CPU gets (<see cref="AutoPicksManaged"/>): managed with AVX-512 or AVX2+FMA, else
    /// OpenBLAS when <see cref="OpenBlasGemm.IsAvailable"/>, else managed. Case-insensitive.
    /// </summary>
    /// <exception cref="DitCacheException">Unknown backend name (exit code 2), or OpenBLAS requested but missing.</exception>
    public static IGemm Create(string backend, int threads)
    {
        ArgumentNullException.ThrowIfNull(backend);
        if (threads < 1)
        {
            throw new DitCacheException($"GEMM threads must be >= 1 but is {threads}; pass a positive thread count", 2);
        }

        switch (backend.Trim().ToLowerInvariant())
        {
            case "managed":
                return new ManagedGemm(threads);
            case "managed-bf16":
                return new ManagedGemm(threads, GemmIsa.Auto, GemmPrecision.BFloat16);
            case "openblas":
                return new OpenBlasGemm(threads);
            case "auto":
                return AutoPicksManaged(ManagedGemm.Resolve(GemmIsa.Auto)) || !OpenBlasGemm.IsAvailable
                    ? new ManagedGemm(threads)
                    : new OpenBlasGemm(threads);
            default:
                throw new DitCacheException(
                    $"unknown GEMM backend '{backend}'; expected one of: {string.Join(", ", Backends)}", 2);
        }
    }

    /// <summary>
    /// Whether "auto" takes <see cref="ManagedGemm"/> over OpenBLAS on a CPU whose micro-kernel is
    /// <paramref name="isa"/>: a fixed table from measurements (docs/benchmarks/gemm.md), not a probe at run time, so
    /// that the backend, and so the last bits of every result, do not depend on how busy the machine was at start-up.
    /// At the DiT-XL/2 and shipped-model Linear shapes, 1 and 2 threads, on a Zen 4: AVX-512 8×32 against OpenBLAS's
    /// AVX-512 kernels 101–132 %; AVX2 6×16 against OpenBLAS's Haswell kernels (both sides switched to AVX2 on the same
    /// Zen 4) 101–106 % at the XL shapes and 104–137 % at the shipped model's on a quiet machine. The scalar 4×8
    /// fallback does one multiply-add per instruction where the vector kernels do 8 or 16, so without AVX2 OpenBLAS is
    /// taken when it is installed.
    /// </summary>
    internal static bool AutoPicksManaged(GemmIsa isa) => isa is GemmIsa.Avx512 or GemmIsa.Avx2;

    /// <summary>
    /// <paramref name="gemm"/> itself, or a float32 <see cref="ManagedGemm"/> with its thread count when it rounds to
    /// BF16: for the metrics' classifier, which measures the samples and so must not change with the backend under test.
    /// </summary>
    public static IGemm Float32(IGemm gemm)
    {
        ArgumentNullException.ThrowIfNull(gemm);
        return gemm is ManagedGemm { Precision: GemmPrecision.BFloat16 } m ? new ManagedGemm(m.Threads, m.Isa) : gemm;
    }
}
