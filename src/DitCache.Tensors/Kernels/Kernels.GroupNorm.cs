using System;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace DitCache.Tensors;

public static partial class Kernels
{
    /// <summary>
    /// PyTorch <c>GroupNorm(groups, channels, eps, affine=True)</c> over one image, NCHW, optionally followed by SiLU
    /// (the <c>norm → SiLU</c> pair of every ResNet block and of the decoder's output): channels are split into
    /// <paramref name="groups"/> consecutive groups, each normalised by its own mean and biased variance over all its
    /// channels and pixels, then <c>y[c, p] = x̂[c, p]·gamma[c] + beta[c]</c>, and with <paramref name="silu"/>
    /// <c>y ← y·sigmoid(y)</c>. <paramref name="x"/> and <paramref name="y"/> are (channels, pixels);
    /// <paramref name="y"/> may be <paramref name="x"/> itself.
    /// </summary>
    /// <exception cref="ArgumentException">
    /// A size is not positive, channels is not a multiple of groups, a span is too short, or y partly overlaps x.
    /// </exception>
    public static void GroupNorm(ReadOnlySpan<float> x, Span<float> y, ReadOnlySpan<float> gamma, ReadOnlySpan<float> beta,
        int channels, int pixels, int groups, float eps, bool silu = false)
    {
        KernelChecks.Positive(channels, nameof(channels));
        KernelChecks.Positive(pixels, nameof(pixels));
        KernelChecks.Positive(groups, nameof(groups));
        if (channels % groups != 0)
        {
            throw new ArgumentException($"channels {channels} is not a multiple of groups {groups}", nameof(groups));
        }

        long count = (long)channels * pixels;
        KernelChecks.Length(x.Length, count, nameof(x), $"(channels {channels}, pixels {pixels})");
        KernelChecks.Length(y.Length, count, nameof(y), $"(channels {channels}, pixels {pixels})");
        KernelChecks.Length(gamma.Length, channels, nameof(gamma), $"[channels {channels}]");
        KernelChecks.Length(beta.Length, channels, nameof(beta), $"[channels {channels}]");
        KernelChecks.SameOrDisjoint(x, y, nameof(x), nameof(y));

        int perGroup = channels / groups;
        double n = (double)perGroup * pixels;
        for (int g = 0; g < groups; g++)
        {
            // Two passes (mean, then centred squares), as LayerNorm: each channel row is summed in float vectors and
            // the rows are added in double, so a group of a million values loses no more than one row's rounding.
            double sum = 0;
            for (int c = g * perGroup; c < (g + 1) * perGroup; c++)
            {
                sum += VectorMath.Sum(x.Slice(c * pixels, pixels));
            }

            float mean = (float)(sum / n);
            double squares = 0;
            for (int c = g * perGroup; c < (g + 1) * perGroup; c++)
            {
                squares += VectorMath.SumSquaredDeviations(x.Slice(c * pixels, pixels), mean);
            }

            float inv = (float)(1.0 / Math.Sqrt((squares / n) + eps));
            for (int c = g * perGroup; c < (g + 1) * perGroup; c++)
            {
                // y = (x − mean)·(inv·gamma) + beta. Folding the mean into the shift (x·a + (beta − mean·a)) saves a
                // subtraction but cancels when |mean| ≫ std; centring first keeps the error at a few ulp of y.
                float scale = inv * gamma[c];
                ReadOnlySpan<float> src = x.Slice(c * pixels, pixels);
                Span<float> dst = y.Slice(c * pixels, pixels);
                if (silu)
                {
                    CentreScaleShift<SiluOperator>(src, dst, mean, scale, beta[c]);
                }
                else
                {
                    CentreScaleShift<IdentityOperator>(src, dst, mean, scale, beta[c]);
                }
            }
        }
    }

    // y[i] = op((x[i] − mean)·scale + shift); y may be x.
    private static void CentreScaleShift<TOp>(ReadOnlySpan<float> x, Span<float> y, float mean, float scale, float shift)
        where TOp : IUnaryOperator
    {
        ref float xs = ref MemoryMarshal.GetReference(x);
        ref float ys = ref MemoryMarshal.GetReference(y);
        int n = x.Length;
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            Vector512<float> m = Vector512.Create(mean), a = Vector512.Create(scale), b = Vector512.Create(shift);
            for (; i <= n - Vector512<float>.Count; i += Vector512<float>.Count)
            {
                TOp.Invoke(Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref xs, (nuint)i) - m, a, b)).StoreUnsafe(ref ys, (nuint)i);
            }
        }

        if (Vector256.IsHardwareAccelerated)
        {
            Vector256<float> m = Vector256.Create(mean), a = Vector256.Create(scale), b = Vector256.Create(shift);
            for (; i <= n - Vector256<float>.Count; i += Vector256<float>.Count)
            {
                TOp.Invoke(Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref xs, (nuint)i) - m, a, b)).StoreUnsafe(ref ys, (nuint)i);
            }
        }

        for (; i < n; i++)
        {
            Unsafe.Add(ref ys, i) = TOp.Invoke(MathF.FusedMultiplyAdd(Unsafe.Add(ref xs, i) - mean, scale, shift));
        }
    }
}
