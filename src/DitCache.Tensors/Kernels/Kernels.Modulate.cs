using System;

namespace DitCache.Tensors;

public static partial class Kernels
{
    /// <summary>
    /// adaLN modulation (DiT <c>modulate</c>): <c>y[b, t, :] = x[b, t, :]·(1 + scale_b) + shift_b</c>, broadcast over
    /// tokens. shift_b is <c>mod[b·modStride + shiftOffset ..][..dim]</c> and scale_b likewise with
    /// <paramref name="scaleOffset"/>, so the six chunks of one (batch, 6·dim) adaLN output are used without copying.
    /// <paramref name="y"/> may be <paramref name="x"/> itself.
    /// </summary>
    /// <exception cref="ArgumentException">A span is too short for the sizes and offsets, or y partly overlaps x.</exception>
    public static void Modulate(ReadOnlySpan<float> x, Span<float> y, ReadOnlySpan<float> mod, int modStride,
        int shiftOffset, int scaleOffset, int batch, int tokens, int dim)
    {
        CheckModulation(x.Length, modStride, batch, tokens, dim, nameof(x));
        CheckOffset(shiftOffset, modStride, dim, batch, mod.Length, nameof(shiftOffset));
        CheckOffset(scaleOffset, modStride, dim, batch, mod.Length, nameof(scaleOffset));
        KernelChecks.Length(y.Length, (long)batch * tokens * dim, nameof(y), $"(batch {batch}, tokens {tokens}, dim {dim})");
        KernelChecks.SameOrDisjoint(x, y, nameof(x), nameof(y));
        for (int b = 0; b < batch; b++)
        {
            ReadOnlySpan<float> shift = mod.Slice((b * modStride) + shiftOffset, dim);
            ReadOnlySpan<float> scale = mod.Slice((b * modStride) + scaleOffset, dim);
            for (int t = 0; t < tokens; t++)
            {
                int at = ((b * tokens) + t) * dim;
                VectorMath.Modulate(x.Slice(at, dim), y.Slice(at, dim), shift, scale);
            }
        }
    }

    private static void CheckModulation(int xLength, int modStride, int batch, int tokens, int dim, string xName)
    {
        KernelChecks.NonNegative(batch, nameof(batch));
        KernelChecks.NonNegative(tokens, nameof(tokens));
        KernelChecks.NonNegative(dim, nameof(dim));
        KernelChecks.NonNegative(modStride, nameof(modStride));
        KernelChecks.Length(xLength, (long)batch * tokens * dim, xName, $"(batch {batch}, tokens {tokens}, dim {dim})");
    }

    private static void CheckOffset(int offset, int modStride, int dim, int batch, int modLength, string name)
    {
        if (offset < 0 || (long)offset + dim > modStride)
        {
            throw new ArgumentOutOfRangeException(name, offset,
                $"{name} {offset} + dim {dim} must lie within modStride {modStride}");
        }

        if (batch > 0)
        {
            KernelChecks.Length(modLength, ((long)(batch - 1) * modStride) + offset + dim, "mod",
                $"batch {batch} x modStride {modStride} with {name} {offset}");
        }
    }
}
