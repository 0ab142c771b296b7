using System;

namespace DitCache.Caching;

/// <summary>
/// Spectrum's forecaster (docs/methods.md §3.2–3.4; official code hanjq17/Spectrum <c>src/utils/basis_utils.py</c>)
/// as scalar weights over the stored full-step features, computed in float64:
/// <list type="bullet">
/// <item>time map <c>τ = 2n/S − 1</c> (the official code hard-codes S = 50);</item>
/// <item>Chebyshev ridge fit of degree M over the J stored points: the forecast <c>Σ_m C_m T_m(τ*)</c> with
/// <c>C = (XᵀX + λI)⁻¹XᵀH</c> equals <c>Σ_j a_j h_j</c> with <c>a = X (XᵀX + λI)⁻¹ x*</c>, a (M+1)² solve on scalars;</item>
/// <item>local linear extrapolation from the last two points;</item>
/// <item>blend <c>(1 − w)·local + w·Chebyshev</c>.</item>
/// </list>
/// </summary>
public static class ChebyshevForecaster
{
    /// <summary>The time coordinate of sampling ordinal <paramref name="n"/> of <paramref name="steps"/>: 2n/S − 1.</summary>
    public static double Tau(int n, int steps) => (2.0 * n / steps) - 1;

    /// <summary>Chebyshev polynomials T_0 … T_{row.Length−1} at <paramref name="tau"/>: T0 = 1, T1 = τ, Tm = 2τT(m−1) − T(m−2).</summary>
    public static void Basis(double tau, Span<double> row)
    {
        for (int m = 0; m < row.Length; m++)
        {
            row[m] = m == 0 ? 1 : m == 1 ? tau : (2 * tau * row[m - 1]) - row[m - 2];
        }
    }

    /// <summary>
    /// Adds <paramref name="scale"/>·a_j to <paramref name="weights"/>[j], with a the ridge-Chebyshev weights of the
    /// points at <paramref name="taus"/> for a forecast at <paramref name="tauStar"/>. When the Cholesky factorisation
    /// of <c>XᵀX + λI</c> fails, adds jitter <c>1e-6·mean(diag)·I</c> as the official code does.
    /// </summary>
    /// <exception cref="ArgumentException">No points, a negative degree or λ, or mismatched spans.</exception>
    public static void AddChebyshevWeights(ReadOnlySpan<double> taus, int degree, double lambda, double tauStar, double scale, Span<double> weights)
    {
        if (taus.Length == 0 || degree < 0 || degree > 31 || !(lambda >= 0) || weights.Length < taus.Length)
        {
            throw new ArgumentException($"Chebyshev fit of degree {degree} (λ = {lambda}) over {taus.Length} points into {weights.Length} weights");
        }

        int p = degree + 1;
        Span<double> a = stackalloc double[p * p];
        Span<double> row = stackalloc double[p];
        a.Clear();
        foreach (double tau in taus)
        {
            Basis(tau, row);
            for (int r = 0; r < p; r++)
            {
                for (int c = 0; c < p; c++)
                {
                    a[(r * p) + c] += row[r] * row[c];
                }
            }
        }

        double mean = 0;
        for (int r = 0; r < p; r++)
        {
            a[(r * p) + r] += lambda;
            mean += a[(r * p) + r] / p;
        }

        Span<double> l = stackalloc double[p * p];
        if (!Cholesky(a, l, p))
        {
            for (int r = 0; r < p; r++)
            {
                a[(r * p) + r] += 1e-6 * mean;
            }

            if (!Cholesky(a, l, p))
            {
                throw new ArgumentException($"the Chebyshev normal matrix is singular (degree {degree}, λ = {lambda}, {taus.Length} points)");
            }
        }

        // z = A⁻¹ x*: forward then backward substitution with L Lᵀ.
        Span<double> z = stackalloc double[p];
        Basis(tauStar, z);
        for (int r = 0; r < p; r++)
        {
            double v = z[r];
            for (int c = 0; c < r; c++)
            {
                v -= l[(r * p) + c] * z[c];
            }

            z[r] = v / l[(r * p) + r];
        }

        for (int r = p - 1; r >= 0; r--)
        {
            double v = z[r];
            for (int c = r + 1; c < p; c++)
            {
                v -= l[(c * p) + r] * z[c];
            }

            z[r] = v / l[(r * p) + r];
        }

        for (int j = 0; j < taus.Length; j++)
        {
            Basis(taus[j], row);
            double dot = 0;
            for (int m = 0; m < p; m++)
            {
                dot += row[m] * z[m];
            }

            weights[j] += scale * dot;
        }
    }

    /// <summary>
    /// Adds <paramref name="scale"/> times the local linear-extrapolation weights: with the latest point at
    /// <paramref name="nLast"/> (index <paramref name="last"/>) and the one before at <paramref name="nPrevious"/>
    /// (index <paramref name="previous"/>, or −1 when there is none), <c>k = (n* − n_i)/(n_i − n_{i−1})</c> and
    /// <c>h_lin = h_i + k·(h_i − h_{i−1})</c>; with one point, <c>h_lin = h_i</c>.
    /// </summary>
    public static void AddLocalWeights(int last, double nLast, int previous, double nPrevious, double nStar, double scale, Span<double> weights)
    {
        if (previous < 0)
        {
            weights[last] += scale;
            return;
        }

        double k = (nStar - nLast) / (nLast - nPrevious);
        weights[last] += scale * (1 + k);
        weights[previous] -= scale * k;
    }

    private static bool Cholesky(ReadOnlySpan<double> a, Span<double> l, int p)
    {
        l.Clear();
        for (int r = 0; r < p; r++)
        {
            for (int c = 0; c <= r; c++)
            {
                double sum = a[(r * p) + c];
                for (int k = 0; k < c; k++)
                {
                    sum -= l[(r * p) + k] * l[(c * p) + k];
                }

                if (r == c)
                {
                    if (!(sum > 0))
                    {
                        return false;
                    }

                    l[(r * p) + r] = Math.Sqrt(sum);
                }
                else
                {
                    l[(r * p) + c] = sum / l[(c * p) + c];
                }
            }
        }

        return true;
    }
}
