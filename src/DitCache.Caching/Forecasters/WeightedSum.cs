using System;
using System.Diagnostics;
using System.Numerics;

namespace DitCache.Caching;

/// <summary>
/// The one arithmetic kernel every forecaster shares (METHODS.md section 1): a forecast is a linear combination of
/// stored tensors with scalar weights. The weights are worked out in float64 by the caller; this does one fused pass
/// over the stored tensors, <c>dst[i] = Σ_k w_k · slot_k[i]</c>, skipping zero weights.
/// </summary>
public static class WeightedSum
{
    /// <summary>The most weights one <see cref="Combine"/> call takes.</summary>
    public const int MaxSlots = 128;

    /// <summary>
    /// <paramref name="stack"/> holds slots of <paramref name="length"/> floats back to back (slot k at k·length);
    /// writes <c>Σ_k weights[k] · slot_k</c> into <paramref name="destination"/> (length floats). Slots whose weight is
    /// zero are not read. All zero weights give zeros. The destination must not overlap the stack.
    /// </summary>
    /// <exception cref="ArgumentException">The stack has fewer than weights.Length slots, too many weights, or a short destination.</exception>
    public static void Combine(ReadOnlySpan<float> stack, int length, ReadOnlySpan<double> weights, Span<float> destination)
    {
        if (weights.Length > MaxSlots || (long)weights.Length * length > stack.Length || destination.Length < length)
        {
            throw new ArgumentException(
                $"combine of {weights.Length} slots of {length} floats needs a stack of at least {(long)weights.Length * length} and a destination of {length}; got {stack.Length} and {destination.Length}");
        }

        Span<int> offsets = stackalloc int[MaxSlots];
        Span<float> w = stackalloc float[MaxSlots];
        int terms = 0;
        for (int k = 0; k < weights.Length; k++)
        {
            if (weights[k] != 0.0)
            {
                offsets[terms] = k * length;
                w[terms] = (float)weights[k];
                terms++;
            }
        }

        Span<float> dst = destination[..length];
        if (terms == 0)
        {
            dst.Clear();
            return;
        }

        int i = 0;
        int width = Vector<float>.Count;
        if (Vector.IsHardwareAccelerated)
        {
            for (; i <= length - width; i += width)
            {
                var acc = new Vector<float>(stack.Slice(offsets[0] + i, width)) * w[0];
                for (int k = 1; k < terms; k++)
                {
                    acc += new Vector<float>(stack.Slice(offsets[k] + i, width)) * w[k];
                }

                acc.CopyTo(dst.Slice(i, width));
            }
        }

        for (; i < length; i++)
        {
            float acc = stack[offsets[0] + i] * w[0];
            for (int k = 1; k < terms; k++)
            {
                acc += stack[offsets[k] + i] * w[k];
            }

            dst[i] = acc;
        }

        Debug.Assert(i == length);
    }
}
