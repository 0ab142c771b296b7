using System;

namespace DitCache.Tensors;

public static partial class Kernels
{
    /// <summary>
    /// adaLN-Zero gated residual: <c>x[b, t, :] += gate_b ⊙ y[b, t, :]</c> with gate_b =
    /// <c>mod[b·modStride + gateOffset ..][..dim]</c>, broadcast over tokens.
    /// </summary>
    /// <exception cref="ArgumentException">A span is too short for the sizes and offset.</exception>
    public static void GatedResidualAdd(Span<float> x, ReadOnlySpan<float> y, ReadOnlySpan<float> mod, int modStride,
        int gateOffset, int batch, int tokens, int dim)
    {
        CheckModulation(x.Length, modStride, batch, tokens, dim, nameof(x));
        CheckOffset(gateOffset, modStride, dim, batch, mod.Length, nameof(gateOffset));
        KernelChecks.Length(y.Length, (long)batch * tokens * dim, nameof(y), $"(batch {batch}, tokens {tokens}, dim {dim})");
        for (int b = 0; b < batch; b++)
        {
            ReadOnlySpan<float> gate = mod.Slice((b * modStride) + gateOffset, dim);
            for (int t = 0; t < tokens; t++)
            {
                int at = ((b * tokens) + t) * dim;
                VectorMath.MultiplyAddInPlace(x.Slice(at, dim), gate, y.Slice(at, dim));
            }
        }
    }
}
