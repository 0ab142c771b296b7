using System;
using System.Numerics;

namespace DitCache.Caching;

/// <summary>
/// Polynomial extrapolation through the features of the last m + 1 full steps, in Newton's divided-difference form
/// at the ordinals where they were computed (docs/methods.md §4.4). The state is the same stack of factors as
/// <see cref="TaylorForecaster"/>'s, d_0 … d_m, plus the ordinals s_0 &gt; s_1 &gt; … of the full steps behind them:
/// d_j = F[s_0, …, s_j], the j-th divided difference.
/// <list type="bullet">
/// <item>At a full step s (<see cref="UpdateFactors"/>): <c>d_0' = F(s)</c>,
/// <c>d_j' = (d_{j−1}' − d_{j−1}) / (s − s_{j−1})</c>, and s becomes s_0.</item>
/// <item>At a forecast step n (<see cref="Weights"/> then <see cref="WeightedSum.Combine"/>):
/// <c>F(n) ≈ Σ_j d_j·Π_{i&lt;j}(n − s_i)</c>.</item>
/// </list>
/// The result is exact for any feature path that is a polynomial of degree ≤ m in the ordinal, whatever the gaps
/// between full steps. TaylorSeer's factors (<see cref="TaylorForecaster"/>) are the same differences divided by the
/// latest gap alone and weighted with x^j/j!: for uniform gaps h they differ from these by the weights
/// (x^j against x(x+h)…(x+(j−1)h)), and for uneven gaps also by the differences.
/// </summary>
public static class NewtonForecaster
{
    /// <summary>
    /// Writes the Newton weights <c>Π_{i&lt;j}(n − s_i)</c> for j = 0 … weights.Length−1 (float64), with
    /// <paramref name="nodes"/> the full-step ordinals newest first.
    /// </summary>
    /// <exception cref="ArgumentException">Fewer nodes than weights − 1.</exception>
    public static void Weights(double n, ReadOnlySpan<double> nodes, Span<double> weights)
    {
        if (weights.Length > 0 && nodes.Length < weights.Length - 1)
        {
            throw new ArgumentException($"{weights.Length} Newton weights need {weights.Length - 1} nodes, got {nodes.Length}", nameof(nodes));
        }

        double w = 1.0;
        for (int j = 0; j < weights.Length; j++)
        {
            weights[j] = w;
            if (j < nodes.Length)
            {
                w *= n - nodes[j];
            }
        }
    }

    /// <summary>
    /// Replaces the <paramref name="count"/> factors held in <paramref name="stack"/> by the factors of the feature
    /// <paramref name="feature"/> computed at ordinal <paramref name="step"/>, and shifts <paramref name="step"/> into
    /// <paramref name="nodes"/> (newest first). Returns <c>min(count + 1, maxFactors)</c>.
    /// </summary>
    /// <param name="stack">maxFactors slots of length floats.</param>
    /// <param name="length">Floats per feature.</param>
    /// <param name="count">Factors currently stored (0: only d_0 = F is stored).</param>
    /// <param name="maxFactors">Maximum order + 1.</param>
    /// <param name="feature">The feature computed at this full step.</param>
    /// <param name="step">The position of this full step (its ordinal), after every node held.</param>
    /// <param name="nodes">maxFactors positions, newest first; the first <paramref name="count"/> are the nodes held.</param>
    /// <exception cref="ArgumentException">Sizes do not fit, or <paramref name="step"/> does not follow the nodes.</exception>
    public static int UpdateFactors(Span<float> stack, int length, int count, int maxFactors, ReadOnlySpan<float> feature, double step, Span<double> nodes)
    {
        if (maxFactors < 1 || maxFactors > 16 || count < 0 || count > maxFactors || (long)maxFactors * length > stack.Length
            || feature.Length < length || nodes.Length < maxFactors)
        {
            throw new ArgumentException(
                $"Newton update of {count}/{maxFactors} factors of {length} floats needs a stack of {(long)maxFactors * length}, a feature of {length} and {maxFactors} nodes; got {stack.Length}, {feature.Length} and {nodes.Length}");
        }

        int newCount = Math.Min(count + 1, maxFactors);
        Span<float> inverse = stackalloc float[maxFactors];     // inverse[j]: 1 / (step − s_{j−1}), j ≥ 1
        for (int j = 1; j < newCount; j++)
        {
            double gap = step - nodes[j - 1];
            if (!(gap > 0))
            {
                throw new ArgumentException($"full step {step} does not follow the node {nodes[j - 1]} held", nameof(step));
            }

            inverse[j] = (float)(1.0 / gap);
        }

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
                    var old = new Vector<float>(slot);
                    v.CopyTo(slot);
                    if (j + 1 < newCount)
                    {
                        v = (v - old) * inverse[j + 1];
                    }
                }
            }
        }

        for (; i < length; i++)
        {
            float v = feature[i];
            for (int j = 0; j < newCount; j++)
            {
                int at = (j * length) + i;
                float old = stack[at];
                stack[at] = v;
                if (j + 1 < newCount)
                {
                    v = (v - old) * inverse[j + 1];
                }
            }
        }

        for (int j = newCount - 1; j > 0; j--)
        {
            nodes[j] = nodes[j - 1];
        }

        nodes[0] = step;
        return newCount;
    }
}
