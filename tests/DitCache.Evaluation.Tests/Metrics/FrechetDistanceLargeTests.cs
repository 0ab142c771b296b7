using System;
using DitCache.Evaluation.Metrics;
using Xunit;

namespace DitCache.Evaluation.Tests.Metrics;

/// <summary>
/// <see cref="FrechetDistance.TraceSqrtProduct"/> (pivoted Cholesky + tridiagonal QL) against an independent
/// reference: the Jacobi form tr (S1^½ S2 S1^½)^½ built here from <see cref="SymmetricEigen"/>, and an analytic case.
/// </summary>
public sealed class FrechetDistanceLargeTests
{
    /// <summary>
    /// Σ = Xᵀ X for n integer-valued samples (entries −3..3) with columns scaled by powers of two: every product and sum
    /// is exact in double, so Σ is exactly symmetric PSD of rank min(n, d) and a rank deficit is exact, not round-off.
    /// </summary>
    private static double[] IntegerGram(Random rng, int n, int d)
    {
        double[] x = new double[n * d];
        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j < d; j++)
            {
                x[(i * d) + j] = rng.Next(-3, 4) * Math.ScaleB(1.0, (j % 5) - 2);
            }
        }

        double[] s = new double[d * d];
        for (int i = 0; i < n; i++)
        {
            for (int a = 0; a < d; a++)
            {
                double xa = x[(i * d) + a];
                for (int b = 0; b < d; b++)
                {
                    s[(a * d) + b] += xa * x[(i * d) + b];
                }
            }
        }

        return s;
    }

    /// <summary>
    /// Reference: S1^½ from Jacobi, M = S1^½ S2 S1^½ (naive products), Jacobi eigenvalues of M, Σ √λ. Eigenvalues at
    /// most 1e-11 of the largest are taken as 0 in both decompositions: with exact-rank inputs they are round-off of
    /// true zeros (their square roots, ~3e-6 of the scale, are noise that neither method resolves).
    /// </summary>
    private static double JacobiReference(double[] s1, double[] s2, int d)
    {
        (double[] l1, double[] v1) = SymmetricEigen.Decompose(s1, d);
        double cut1 = 1e-11 * l1[d - 1];
        double[] root = new double[d * d];
        for (int k = 0; k < d; k++)
        {
            if (l1[k] <= cut1)
            {
                continue;
            }

            double rk = Math.Sqrt(l1[k]);
            for (int i = 0; i < d; i++)
            {
                for (int j = 0; j < d; j++)
                {
                    root[(i * d) + j] += v1[(i * d) + k] * rk * v1[(j * d) + k];
                }
            }
        }

        double[] t = new double[d * d];
        double[] m = new double[d * d];
        for (int i = 0; i < d; i++)
        {
            for (int j = 0; j < d; j++)
            {
                double sum = 0;
                for (int k = 0; k < d; k++)
                {
                    sum += root[(i * d) + k] * s2[(k * d) + j];
                }

                t[(i * d) + j] = sum;
            }
        }

        for (int i = 0; i < d; i++)
        {
            for (int j = 0; j < d; j++)
            {
                double sum = 0;
                for (int k = 0; k < d; k++)
                {
                    sum += t[(i * d) + k] * root[(k * d) + j];
                }

                m[(i * d) + j] = sum;
            }
        }

        for (int i = 0; i < d; i++)
        {
            for (int j = i + 1; j < d; j++)
            {
                double avg = 0.5 * (m[(i * d) + j] + m[(j * d) + i]);
                m[(i * d) + j] = avg;
                m[(j * d) + i] = avg;
            }
        }

        (double[] lm, _) = SymmetricEigen.Decompose(m, d);
        double cut = 1e-11 * lm[d - 1];
        double total = 0;
        foreach (double l in lm)
        {
            total += l > cut ? Math.Sqrt(l) : 0;
        }

        return total;
    }

    [Theory]
    [InlineData(16, 40, 50)]      // both full rank
    [InlineData(16, 9, 30)]       // S1 rank 9 of 16
    [InlineData(100, 300, 250)]
    [InlineData(100, 60, 400)]    // S1 rank-deficient
    [InlineData(100, 400, 70)]    // S2 rank-deficient
    [InlineData(100, 50, 80)]     // both rank-deficient
    [InlineData(300, 600, 500)]
    [InlineData(300, 120, 700)]
    [InlineData(300, 700, 200)]
    public void Agrees_with_the_jacobi_formula(int d, int n1, int n2)
    {
        var rng = new Random((d * 1000) + n1 + n2);
        double[] s1 = IntegerGram(rng, n1, d);
        double[] s2 = IntegerGram(rng, n2, d);

        double expected = JacobiReference(s1, s2, d);
        double actual = FrechetDistance.TraceSqrtProduct(s1, s2, d);

        Assert.True(Math.Abs(actual - expected) <= 1e-9 * expected, $"d={d} n1={n1} n2={n2}: {actual:R} vs Jacobi {expected:R}, relative {(actual - expected) / expected:E2}");
    }

    [Fact]
    public void Matches_the_closed_form_at_2048_dims()
    {
        // S1 = H diag(λ) H with the Householder reflector H = I − 2 v vᵀ / vᵀv: eigenvalues λ, 300 of them exactly 0.
        // S2 = c I: tr (S1 S2)^½ = √c Σ √λ, in either order.
        const int D = 2048;
        const double C = 2.5;
        var rng = new Random(2048);
        double[] lambda = new double[D];
        double[] v = new double[D];
        for (int i = 0; i < D; i++)
        {
            lambda[i] = i < 1748 ? 0.01 + (3.0 / (1 + (i / 40.0))) : 0;
            v[i] = rng.NextDouble() - 0.5;
        }

        double vv = 0;
        double vlv = 0;
        for (int i = 0; i < D; i++)
        {
            vv += v[i] * v[i];
            vlv += v[i] * lambda[i] * v[i];
        }

        // H Λ H = Λ − (2/vv)(v (Λv)ᵀ + (Λv) vᵀ) + (4 vᵀΛv / vv²) v vᵀ.
        double[] s1 = new double[D * D];
        double[] s2 = new double[D * D];
        for (int i = 0; i < D; i++)
        {
            for (int j = 0; j < D; j++)
            {
                s1[(i * D) + j] = (i == j ? lambda[i] : 0)
                    - (2 / vv * ((v[i] * lambda[j] * v[j]) + (lambda[i] * v[i] * v[j])))
                    + (4 * vlv / (vv * vv) * v[i] * v[j]);
            }

            s2[(i * D) + i] = C;
        }

        double expected = 0;
        foreach (double l in lambda)
        {
            expected += Math.Sqrt(C * l);
        }

        double ab = FrechetDistance.TraceSqrtProduct(s1, s2, D);
        double ba = FrechetDistance.TraceSqrtProduct(s2, s1, D);

        Assert.True(Math.Abs(ab - expected) <= 1e-9 * expected, $"{ab:R} vs {expected:R}");
        Assert.True(Math.Abs(ba - expected) <= 1e-9 * expected, $"{ba:R} vs {expected:R}");
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Indefinite_input_throws(bool first)
    {
        // A PSD Gram matrix plus a direction of eigenvalue −0.05 × trace (far beyond round-off), on 100 dims.
        const int D = 100;
        var rng = new Random(5);
        double[] good = IntegerGram(rng, 150, D);
        double trace = 0;
        for (int i = 0; i < D; i++)
        {
            trace += good[(i * D) + i];
        }

        // bad = good − (good's largest-ish direction): subtract 1.05 × (vᵀ good v) v vᵀ for a unit v, which leaves
        // vᵀ bad v = −0.05 vᵀ good v < 0.
        double[] v = new double[D];
        double norm = 0;
        for (int i = 0; i < D; i++)
        {
            v[i] = rng.NextDouble() - 0.5;
            norm += v[i] * v[i];
        }

        norm = Math.Sqrt(norm);
        double q = 0;
        for (int i = 0; i < D; i++)
        {
            v[i] /= norm;
        }

        for (int i = 0; i < D; i++)
        {
            for (int j = 0; j < D; j++)
            {
                q += v[i] * good[(i * D) + j] * v[j];
            }
        }

        double[] bad = (double[])good.Clone();
        for (int i = 0; i < D; i++)
        {
            for (int j = 0; j < D; j++)
            {
                bad[(i * D) + j] -= 1.05 * q * v[i] * v[j];
            }
        }

        Assert.True(-0.05 * q < -1e-6 * trace);   // the Rayleigh quotient, an upper bound on the smallest eigenvalue
        InvalidOperationException e = Assert.Throws<InvalidOperationException>(
            () => first ? FrechetDistance.TraceSqrtProduct(bad, good, D) : FrechetDistance.TraceSqrtProduct(good, bad, D));
        Assert.Contains("not positive semi-definite", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Indefinite_zero_diagonal_throws()
    {
        // Zero diagonal with a non-zero off-diagonal entry: every pivot is 0, so the factorisation stops at once and
        // only the check of the remaining Schur complement (eigenvalues ±1) can tell.
        double[] bad = [0, 1, 1, 0];
        double[] good = [1, 0, 0, 1];

        Assert.Throws<InvalidOperationException>(() => FrechetDistance.TraceSqrtProduct(bad, good, 2));
    }

    [Fact]
    public void Rejects_non_finite_and_asymmetric_input()
    {
        Assert.Throws<ArgumentException>(() => FrechetDistance.TraceSqrtProduct([1, 2, 3, 4], [1, 0, 0, 1], 2));
        Assert.Throws<ArgumentException>(() => FrechetDistance.TraceSqrtProduct([1, 0, 0, 1], [1, double.NaN, 0, 1], 2));
        Assert.Throws<ArgumentException>(() => FrechetDistance.TraceSqrtProduct([1, 0, 0], [1, 0, 0, 1], 2));
    }
}
