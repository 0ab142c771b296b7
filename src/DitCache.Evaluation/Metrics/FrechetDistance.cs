using System;

namespace DitCache.Evaluation.Metrics;

/// <summary>
/// The Frechet distance between two Gaussians fitted to feature sets (Heusel et al. 2017, arXiv 1706.08500, the
/// "FID" when the features come from Inception; here they come from <see cref="FmnistClassifier"/>):
/// <c>FD = ‖μ₁ − μ₂‖² + tr(Σ₁ + Σ₂ − 2 (Σ₁Σ₂)^½)</c>.
/// </summary>
/// <remarks>
/// <para>
/// <c>tr (Σ₁Σ₂)^½</c> is computed in the symmetric form <c>tr (Σ₁^½ Σ₂ Σ₁^½)^½</c> (the two products are similar
/// matrices, so they have the same eigenvalues): Σ₁^½ from a symmetric eigen-decomposition of Σ₁, then the
/// eigenvalues λ of the symmetric positive semi-definite <c>Σ₁^½ Σ₂ Σ₁^½</c>, and the trace is Σ √λ. Everything is
/// double precision with <see cref="SymmetricEigen"/> (Jacobi), so no complex sqrtm and no scipy-style imaginary parts.
/// </para>
/// <para>
/// Round-off can make eigenvalues of a PSD matrix that should be 0 slightly negative (e.g. −1e-17 for a feature that
/// is constant, or rank-deficient covariances when there are fewer vectors than dimensions). Those are clamped to 0
/// before the square root. A value below <see cref="NegativeEigenTolerance"/> × trace is not round-off: it means the
/// input covariance is not positive semi-definite, and the computation throws instead of clamping.
/// </para>
/// </remarks>
public static class FrechetDistance
{
    /// <summary>Relative size (to the matrix trace) up to which a negative eigenvalue counts as round-off and is clamped to 0.</summary>
    public const double NegativeEigenTolerance = 1e-6;

    /// <summary>FD between the Gaussians fitted to two feature sets (each <c>(count, dim)</c> row-major).</summary>
    /// <exception cref="ArgumentException">See <see cref="FeatureStatistics.FromFeatures"/>.</exception>
    public static double Compute(ReadOnlySpan<float> a, int countA, ReadOnlySpan<float> b, int countB, int dim) =>
        Compute(FeatureStatistics.FromFeatures(a, countA, dim), FeatureStatistics.FromFeatures(b, countB, dim));

    /// <summary>FD between two Gaussians given by their statistics.</summary>
    /// <exception cref="ArgumentException">The dimensions differ or the arrays do not match them.</exception>
    /// <exception cref="InvalidOperationException">A covariance is not positive semi-definite (see the type remarks).</exception>
    public static double Compute(FeatureStatistics a, FeatureStatistics b)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        if (a.Dim != b.Dim)
        {
            throw new ArgumentException($"feature lengths differ: {a.Dim} vs {b.Dim}", nameof(b));
        }

        int d = a.Dim;
        Check(a, nameof(a));
        Check(b, nameof(b));

        double meanTerm = 0;
        for (int i = 0; i < d; i++)
        {
            double diff = a.Mean[i] - b.Mean[i];
            meanTerm += diff * diff;
        }

        double trA = Trace(a.Covariance, d);
        double trB = Trace(b.Covariance, d);
        double trSqrt = TraceSqrtProduct(a.Covariance, b.Covariance, d);
        return meanTerm + trA + trB - (2 * trSqrt);
    }

    /// <summary>
    /// <c>tr (S₁S₂)^½</c> for symmetric PSD <paramref name="s1"/> and <paramref name="s2"/> (d×d row-major), as
    /// <c>Σ √λᵢ(S₁^½ S₂ S₁^½)</c>; see the type remarks for the clamping of round-off negatives.
    /// </summary>
    /// <exception cref="InvalidOperationException">A matrix has an eigenvalue below −1e-6 × its trace (not PSD).</exception>
    public static double TraceSqrtProduct(ReadOnlySpan<double> s1, ReadOnlySpan<double> s2, int d)
    {
        // S1^(1/2) = V diag(sqrt(max(λ, 0))) Vᵀ.
        (double[] values1, double[] v1) = SymmetricEigen.Decompose(s1, d);
        CheckPsd(values1, Trace(s1, d), "the first covariance");
        double[] root = new double[d * d];
        for (int k = 0; k < d; k++)
        {
            double r = Math.Sqrt(Math.Max(values1[k], 0));
            if (r == 0)
            {
                continue;
            }

            for (int i = 0; i < d; i++)
            {
                double vik = v1[(i * d) + k] * r;
                for (int j = 0; j < d; j++)
                {
                    root[(i * d) + j] += vik * v1[(j * d) + k];
                }
            }
        }

        // M = S1^(1/2) S2 S1^(1/2), symmetrised against round-off.
        double[] tmp = Multiply(root, s2, d);
        double[] m = Multiply(tmp, root, d);
        for (int i = 0; i < d; i++)
        {
            for (int j = i + 1; j < d; j++)
            {
                double avg = 0.5 * (m[(i * d) + j] + m[(j * d) + i]);
                m[(i * d) + j] = avg;
                m[(j * d) + i] = avg;
            }
        }

        (double[] values, _) = SymmetricEigen.Decompose(m, d);
        CheckPsd(values, Trace(m, d), "S1^(1/2) S2 S1^(1/2)");
        double sum = 0;
        foreach (double lambda in values)
        {
            sum += Math.Sqrt(Math.Max(lambda, 0));
        }

        return sum;
    }

    private static void CheckPsd(double[] values, double trace, string what)
    {
        double floor = -NegativeEigenTolerance * Math.Max(trace, 0);
        if (values.Length > 0 && values[0] < floor)
        {
            throw new InvalidOperationException(
                $"{what} has eigenvalue {values[0]:G6} (trace {trace:G6}): not positive semi-definite, so it is not a covariance; " +
                "more negative than round-off allows (1e-6 of the trace)");
        }
    }

    private static void Check(FeatureStatistics s, string name)
    {
        if (s.Mean.Length != s.Dim || s.Covariance.Length != (long)s.Dim * s.Dim)
        {
            throw new ArgumentException(
                $"statistics hold a mean of {s.Mean.Length} and a covariance of {s.Covariance.Length} values but Dim is {s.Dim}", name);
        }
    }

    private static double Trace(ReadOnlySpan<double> m, int d)
    {
        double t = 0;
        for (int i = 0; i < d; i++)
        {
            t += m[(i * d) + i];
        }

        return t;
    }

    private static double[] Multiply(ReadOnlySpan<double> x, ReadOnlySpan<double> y, int d)
    {
        double[] z = new double[d * d];
        for (int i = 0; i < d; i++)
        {
            Span<double> zi = z.AsSpan(i * d, d);
            for (int k = 0; k < d; k++)
            {
                double xik = x[(i * d) + k];
                ReadOnlySpan<double> yk = y.Slice(k * d, d);
                for (int j = 0; j < d; j++)
                {
                    zi[j] += xik * yk[j];
                }
            }
        }

        return z;
    }
}
