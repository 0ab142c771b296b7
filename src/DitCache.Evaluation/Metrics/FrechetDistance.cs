using System;

namespace DitCache.Evaluation.Metrics;

/// <summary>
/// The Frechet distance between two Gaussians fitted to feature sets (Heusel et al. 2017, arXiv 1706.08500, the
/// "FID" when the features come from Inception; here they come from <see cref="FmnistClassifier"/>):
/// <c>FD = ‖μ₁ − μ₂‖² + tr(Σ₁ + Σ₂ − 2 (Σ₁Σ₂)^½)</c>.
/// </summary>
/// <remarks>
/// <para>
/// <c>tr (Σ₁Σ₂)^½</c> is the sum of the square roots of the eigenvalues of Σ₁Σ₂. A diagonally pivoted Cholesky
/// factorisation <c>Σ₁ = P L Lᵀ Pᵀ</c> stops at the numerical rank r of Σ₁ (every remaining pivot at most
/// d·ε·max diag Σ₁, the criterion of LAPACK's dpstrf); then the r×r symmetric positive semi-definite
/// <c>M = Lᵀ (Pᵀ Σ₂ P) L</c> has the non-zero eigenvalues of Σ₁Σ₂ (ABᵀ and BᵀA share them), so the trace is
/// Σ √λᵢ(M). Only M's eigenvalues are needed: Householder tridiagonalisation and implicit QL
/// (<c>SymmetricEigenvalues</c>). The O(d³) parts (the factorisation's trailing updates, the two products forming M,
/// half of the tridiagonalisation) run through a cache-blocked, vectorised product split over
/// <see cref="Environment.ProcessorCount"/> threads, with a fixed work split so the result does not depend on the
/// thread count. Everything is double precision and managed: no complex sqrtm and no scipy-style imaginary parts.
/// At d = 2048 (the FID Inception features) this takes seconds where the Jacobi form
/// <c>tr (Σ₁^½ Σ₂ Σ₁^½)^½</c> with <see cref="SymmetricEigen"/> took many minutes; the two agree to round-off.
/// </para>
/// <para>
/// Round-off can make eigenvalues of a PSD matrix that should be 0 slightly negative (e.g. −1e-17 for a feature that
/// is constant, or rank-deficient covariances when there are fewer vectors than dimensions). Directions of Σ₁ below
/// the Cholesky tolerance are dropped (their pivots are round-off), and eigenvalues of M below r·ε·λmax(M) in size,
/// or negative, count as 0 before the square root (the square roots of round-off would add noise of order √ε). A value below <see cref="NegativeEigenTolerance"/> × trace is not round-off: it means the
/// input covariance is not positive semi-definite, and the computation throws instead of clamping. For Σ₁ the test
/// is on the Schur complement left when the factorisation stops (Σ₁ is PSD exactly when it is, and its most negative
/// eigenvalue is at least as negative as Σ₁'s); for Σ₂ it is on M, as Σ₂ only matters through M.
/// </para>
/// </remarks>
public static class FrechetDistance
{
    /// <summary>Relative size (to the matrix trace) up to which a negative eigenvalue counts as round-off and is clamped to 0.</summary>
    public const double NegativeEigenTolerance = 1e-6;

    /// <summary>Unit round-off of double (2⁻⁵²), for the Cholesky rank tolerance d·ε·max diag.</summary>
    private const double MachineEpsilon = 2.220446049250313e-16;

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
    /// <c>Σ √λᵢ(Lᵀ S₂ L)</c> with <c>S₁ = L Lᵀ</c> by pivoted Cholesky; see the type remarks for the treatment of
    /// round-off. Only the symmetric part of <paramref name="s2"/> is used.
    /// </summary>
    /// <exception cref="ArgumentException">
    /// A span is not d×d, holds a NaN or infinity, or <paramref name="s1"/> is not symmetric (|a_ij − a_ji| above 1e-9
    /// of the largest entry).
    /// </exception>
    /// <exception cref="InvalidOperationException">A matrix has an eigenvalue below −1e-6 × its trace (not PSD).</exception>
    public static double TraceSqrtProduct(ReadOnlySpan<double> s1, ReadOnlySpan<double> s2, int d)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(d);
        CheckMatrix(s1, d, nameof(s1), symmetric: true);
        CheckMatrix(s2, d, nameof(s2), symmetric: false);
        if (d == 0)
        {
            return 0;
        }

        // Pᵀ S1 P = Uᵀ U, U = Lᵀ (r×d upper trapezoidal), in a row-major copy with slack for the blocked kernels.
        int ld = d + DenseKernels.Slack;
        double[] u = new double[(d * ld) + DenseKernels.Slack];
        double maxDiag = 0;
        for (int i = 0; i < d; i++)
        {
            s1.Slice(i * d, d).CopyTo(u.AsSpan(i * ld, d));
            maxDiag = Math.Max(maxDiag, s1[(i * d) + i]);
        }

        double trace1 = Trace(s1, d);
        int[] perm = new int[d];
        int r = PivotedCholesky.Factor(u, d, ld, perm, d * MachineEpsilon * maxDiag);
        CheckSchurComplement(u, d, ld, r, trace1);
        if (r == 0)
        {
            return 0;
        }

        for (int i = 0; i < r; i++)
        {
            u.AsSpan(i * ld, i).Clear();    // the strictly lower part still holds S1: U is zero there
        }

        // B = Pᵀ sym(S2) P, then W = U B (r×d), then M = W Uᵀ (r×r, lower triangle).
        double[] b = new double[(d * ld) + DenseKernels.Slack];
        for (int i = 0; i < d; i++)
        {
            int pi = perm[i] * d;
            for (int j = 0; j < d; j++)
            {
                int pj = perm[j] * d;
                b[(i * ld) + j] = 0.5 * (s2[pi + perm[j]] + s2[pj + perm[i]]);
            }
        }

        double[] w = new double[(r * ld) + DenseKernels.Slack];
        DenseKernels.MultiplyAdd(1, u, 0, ld, 1, true, b, 0, ld, 1, false, w, 0, ld, r, d, d, DenseKernels.Part.Full);
        int ldm = r + DenseKernels.Slack;
        double[] m = new double[(r * ldm) + DenseKernels.Slack];
        DenseKernels.MultiplyAdd(1, w, 0, ld, 1, false, u, 0, 1, ld, true, m, 0, ldm, r, r, d, DenseKernels.Part.Lower);

        double traceM = 0;
        for (int i = 0; i < r; i++)
        {
            traceM += m[(i * ldm) + i];
        }

        double[] values = SymmetricEigenvalues.Compute(m, r, ldm);
        CheckPsd(values, traceM, "Lᵀ S2 L (S1 = L Lᵀ)");
        // Eigenvalues within r·ε·λmax of 0 are round-off of zeros (rank-deficient S2): their square roots would add
        // only noise of order √(r ε λmax), always positive, so they count as 0 like the clamped negatives.
        double zero = r * MachineEpsilon * Math.Max(values[^1], 0);
        double sum = 0;
        foreach (double lambda in values)
        {
            sum += lambda > zero ? Math.Sqrt(lambda) : 0;
        }

        return sum;
    }

    /// <summary>Throws when the Schur complement left by the rank-revealing Cholesky of S1 is not PSD beyond round-off.</summary>
    private static void CheckSchurComplement(double[] u, int d, int ld, int r, double trace)
    {
        if (r == d)
        {
            return;
        }

        double floor = -NegativeEigenTolerance * Math.Max(trace, 0);
        int n = d - r;
        double gershgorin = double.PositiveInfinity;
        double[] rowAbs = new double[n];
        for (int i = 0; i < n; i++)
        {
            int row = ((r + i) * ld) + r;
            double sii = u[row + i];
            if (sii < floor)
            {
                throw new InvalidOperationException(
                    $"the first covariance is not positive semi-definite: after {r} pivoted Cholesky steps a remaining pivot is {sii:G6} " +
                    $"(trace {trace:G6}), more negative than round-off allows (1e-6 of the trace), so it is not a covariance");
            }

            for (int j = i + 1; j < n; j++)
            {
                double v = Math.Abs(u[row + j]);
                rowAbs[i] += v;
                rowAbs[j] += v;
            }
        }

        for (int i = 0; i < n; i++)
        {
            gershgorin = Math.Min(gershgorin, u[((r + i) * ld) + r + i] - rowAbs[i]);
        }

        if (gershgorin >= floor)
        {
            return;
        }

        // Gershgorin cannot rule out a negative eigenvalue: compute them (lower-triangle copy of S).
        int lds = n + DenseKernels.Slack;
        double[] s = new double[(n * lds) + DenseKernels.Slack];
        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j <= i; j++)
            {
                s[(i * lds) + j] = u[((r + j) * ld) + r + i];
            }
        }

        double[] values = SymmetricEigenvalues.Compute(s, n, lds);
        if (values[0] < floor)
        {
            throw new InvalidOperationException(
                $"the first covariance is not positive semi-definite: after {r} pivoted Cholesky steps the remaining Schur complement has " +
                $"eigenvalue {values[0]:G6} (trace {trace:G6}), more negative than round-off allows (1e-6 of the trace), so it is not a covariance");
        }
    }

    private static void CheckMatrix(ReadOnlySpan<double> a, int n, string name, bool symmetric)
    {
        if (a.Length != (long)n * n)
        {
            throw new ArgumentException($"matrix holds {a.Length} values but d = {n} needs {(long)n * n}", name);
        }

        double maxAbs = 0;
        foreach (double v in a)
        {
            if (!double.IsFinite(v))
            {
                throw new ArgumentException($"matrix holds a non-finite value ({v})", name);
            }

            maxAbs = Math.Max(maxAbs, Math.Abs(v));
        }

        if (!symmetric)
        {
            return;
        }

        for (int i = 0; i < n; i++)
        {
            for (int j = i + 1; j < n; j++)
            {
                if (Math.Abs(a[(i * n) + j] - a[(j * n) + i]) > 1e-9 * maxAbs)
                {
                    throw new ArgumentException(
                        $"matrix is not symmetric: a[{i},{j}] = {a[(i * n) + j]} but a[{j},{i}] = {a[(j * n) + i]}; symmetrize it first", name);
                }
            }
        }
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
}
