using System;

namespace DitCache.Caching;

/// <summary>
/// HiCache's forecast weights (docs/methods.md §5.9): the Taylor forecaster's factors <c>d_0 … d_m</c>
/// (<see cref="TaylorForecaster.UpdateFactors"/>) combined with scaled physicists' Hermite polynomials instead of
/// powers: <c>F(n) ≈ d_0 + Σ_{k≥1} d_k·σ^k·H_k(σx)/k!</c>, with <c>x = n − n_full</c> in sampling steps and σ the
/// scale (the "dual scaling": σ shrinks the argument into the range where the polynomials stay small, and σ^k damps
/// the k-th term). <c>H_0 = 1</c>, <c>H_1(y) = 2y</c>, <c>H_{k+1}(y) = 2y·H_k(y) − 2k·H_{k−1}(y)</c>.
/// </summary>
/// <remarks>
/// x is positive here (ordinals count forward) and the factors are divided by positive gaps. H_k has the parity of
/// k, so a reading with both signs flipped (the official TaylorSeer code counts a descending index) gives the same
/// products; one that flips only the argument turns every odd term around, which the forecaster tests catch.
/// </remarks>
public static class HermiteForecaster
{
    /// <summary>Writes <c>w_0 = 1</c> and <c>w_k = σ^k·H_k(σx)/k!</c> for k = 1 … weights.Length−1 (float64).</summary>
    /// <exception cref="ArgumentOutOfRangeException">sigma is not a positive finite number.</exception>
    public static void Weights(double x, double sigma, Span<double> weights)
    {
        if (!(sigma > 0) || double.IsInfinity(sigma))
        {
            throw new ArgumentOutOfRangeException(nameof(sigma), sigma, "the Hermite scale must be a positive finite number");
        }

        double y = sigma * x;
        double previous = 0, current = 1;          // H_{k−1}, H_k at k = 0
        double scale = 1;                          // σ^k / k!
        for (int k = 0; k < weights.Length; k++)
        {
            weights[k] = scale * current;
            double next = (2 * y * current) - (2 * k * previous);
            previous = current;
            current = next;
            scale *= sigma / (k + 1);
        }
    }
}
