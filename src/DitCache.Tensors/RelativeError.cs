using System;

namespace DitCache.Tensors;

/// <summary>
/// The relative errors the accelerators decide on and the reports measure, one definition each: float32 data, sums
/// in float64 left to right, no allocation.
/// </summary>
public static class RelativeError
{
    /// <summary>
    /// <c>Σ|reference − current| / Σ|reference|</c> (the mean-abs ratio of TeaCache, FBCache, DBCache and SmoothCache's
    /// calibration; the element count cancels). When the reference is all zeros: 0 if the two are equal, else
    /// <paramref name="zeroReference"/> (+∞ unless given).
    /// </summary>
    /// <exception cref="ArgumentException">The lengths differ.</exception>
    public static double L1(ReadOnlySpan<float> current, ReadOnlySpan<float> reference, double zeroReference = double.PositiveInfinity)
    {
        if (reference.Length != current.Length)
        {
            throw new ArgumentException($"relative L1 of {current.Length} floats against {reference.Length}");
        }

        double num = 0, den = 0;
        for (int i = 0; i < reference.Length; i++)
        {
            num += Math.Abs((double)reference[i] - current[i]);
            den += Math.Abs((double)reference[i]);
        }

        return den > 0 ? num / den : (num > 0 ? zeroReference : 0);
    }

    /// <summary>
    /// <c>‖current − reference‖₂ / ‖reference‖₂</c>; when the reference is all zeros, 0 if the two are equal, else +∞.
    /// </summary>
    /// <exception cref="ArgumentException">The lengths differ.</exception>
    public static double L2(ReadOnlySpan<float> current, ReadOnlySpan<float> reference)
    {
        if (reference.Length != current.Length)
        {
            throw new ArgumentException($"relative L2 of {current.Length} floats against {reference.Length}");
        }

        double num = 0, den = 0;
        for (int i = 0; i < reference.Length; i++)
        {
            double e = current[i] - (double)reference[i];
            num += e * e;
            den += (double)reference[i] * reference[i];
        }

        return den > 0 ? Math.Sqrt(num / den) : (num > 0 ? double.PositiveInfinity : 0);
    }
}
