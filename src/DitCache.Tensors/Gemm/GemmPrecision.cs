namespace DitCache.Tensors;

/// <summary>What <see cref="ManagedGemm"/> multiplies with.</summary>
public enum GemmPrecision
{
    /// <summary>float32 operands and float32 accumulation: the reference precision.</summary>
    Float32,

    /// <summary>
    /// Both operands rounded to bfloat16 (round to nearest even), products exact and accumulated in float32, as the
    /// AVX512_BF16 <c>VDPBF16PS</c> instruction does. B is held as BF16 (half the bytes); prepared weights are
    /// converted once. Opt-in: it changes results (see docs/benchmarks/gemm.md for the measured cost).
    /// </summary>
    BFloat16,
}
