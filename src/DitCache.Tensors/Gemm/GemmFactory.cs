using System;
using System.Collections.Generic;

namespace DitCache.Tensors;

/// <summary>Builds an <see cref="IGemm"/> from a backend name given on the command line.</summary>
public static class GemmFactory
{
    /// <summary>The accepted backend names.</summary>
    public static IReadOnlyList<string> Backends { get; } = ["managed", "openblas", "auto"];

    /// <summary>
    /// "managed" → <see cref="ManagedGemm"/>; "openblas" → <see cref="OpenBlasGemm"/> (fails if the library is
    /// missing); "auto" → OpenBLAS when <see cref="OpenBlasGemm.IsAvailable"/>, else managed. Case-insensitive.
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
            case "openblas":
                return new OpenBlasGemm(threads);
            case "auto":
                return OpenBlasGemm.IsAvailable ? new OpenBlasGemm(threads) : new ManagedGemm(threads);
            default:
                throw new DitCacheException(
                    $"unknown GEMM backend '{backend}'; expected one of: {string.Join(", ", Backends)}", 2);
        }
    }
}
