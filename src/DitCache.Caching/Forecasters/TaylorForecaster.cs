using System;
using System.Numerics;

namespace DitCache.Caching;

/// <summary>
/// TaylorSeer's forecaster for one feature (docs/methods.md §4.1; Shenyi-Z/TaylorSeer
/// <c>TaylorSeer-DiT/taylor_utils/__init__.py</c>). The state is a stack of factors <c>d_0 … d_{m}</c> (slot j holds
/// d_j): d_0 is the feature at the last full step and d_j its j-th divided difference.
/// <list type="bullet">
/// <item>At a full step (<see cref="UpdateFactors"/>): <c>d_0' = F</c>, <c>d_{j+1}' = (d_j' − d_j)/Δ</c> with Δ the
/// ordinal gap to the previous full step. Dividing by the latest gap only is the official code's choice, exact Newton
/// only for uniform gaps; it is replicated on purpose (docs/methods.md §10, item 4). Orders build up by one per full
/// step until the maximum.</item>
/// <item>At a Taylor step (<see cref="Weights"/> then <see cref="WeightedSum.Combine"/>):
/// <c>F(n) ≈ Σ_j d_j·x^j/j!</c> with <c>x = n − n_full</c> in sampling steps.</item>
/// </list>
/// The official code counts the descending respaced index, so its Δ and x are both negative; the products are the
/// same as with ordinals.
/// </summary>
public static class TaylorForecaster
{
    /// <summary>Writes the Taylor weights <c>x^j/j!</c> for j = 0 … weights.Length−1 (float64).</summary>
    public static void Weights(double x, Span<double> weights)
    {
        double term = 1.0;
        for (int j = 0; j < weights.Length; j++)
        {
            weights[j] = term;
            term *= x / (j + 1);
        }
    }

    /// <summary>
    /// Replaces the <paramref name="count"/> factors held in <paramref name="stack"/> (slots of <paramref name="length"/>
    /// floats) by the factors of the new full-step feature <paramref name="feature"/>, in one pass per element.
    /// Returns the new factor count, <c>min(count + 1, maxFactors)</c>; with count = 0 only d_0 = F is stored.
    /// </summary>
    /// <param name="stack">maxFactors slots of length floats.</param>
    /// <param name="length">Floats per feature.</param>
    /// <param name="count">Factors currently stored (0 at the first full step of a run).</param>
    /// <param name="maxFactors">Maximum order + 1.</param>
    /// <param name="feature">The feature computed at this full step.</param>
    /// <param name="gap">Sampling steps since the previous full step (Δ, positive).</param>
    /// <exception cref="ArgumentException">Sizes do not fit, or a non-positive gap when differences are needed.</exception>
    public static int UpdateFactors(Span<float> stack, int length, int count, int maxFactors, ReadOnlySpan<float> feature, double gap)
    {
        if (maxFactors < 1 || count < 0 || count > maxFactors || (long)maxFactors * length > stack.Length || feature.Length < length)
        {
            throw new ArgumentException(
                $"factor update of {count}/{maxFactors} factors of {length} floats needs a stack of {(long)maxFactors * length} and a feature of {length}; got {stack.Length} and {feature.Length}");
        }

        int newCount = Math.Min(count + 1, maxFactors);
        if (newCount > 1 && !(gap > 0))
        {
            throw new ArgumentException($"the gap between full steps must be positive, got {gap}", nameof(gap));
        }

        float inv = newCount > 1 ? (float)(1.0 / gap) : 0f;
        int i = 0;
        int width = Vector<float>.Count;
        if (Vector.IsHardwareAccelerated)
        {
            for (; i <= length - width; i += width)
            {
                var v = new Vector<float>(feature.Slice(i, width));
                for (int j = 0; j < newCount; j++)
                {
                    Span<float> slot = stack.Slice((j * length) + i, width);
                    Vector<float> old = j < count ? new Vector<float>(slot) : Vector<float>.Zero;
                    v.CopyTo(slot);
                    v = (v - old) * inv;
                }
            }
        }

        for (; i < length; i++)
        {
            float v = feature[i];
            for (int j = 0; j < newCount; j++)
            {
                int at = (j * length) + i;
                float old = j < count ? stack[at] : 0f;
                stack[at] = v;
                v = (v - old) * inv;
            }
        }

        return newCount;
    }
}
