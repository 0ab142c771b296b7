using System;

namespace DitCache.Evaluation.Metrics;

/// <summary>
/// Eigen-decomposition of a real symmetric matrix by the cyclic Jacobi method (Golub and Van Loan, Matrix
/// Computations, 4th ed., section 8.5), in double precision. Meant for the small (≤ a few hundred) covariance
/// matrices of the Frechet distance: O(n³) per sweep, quadratic convergence, and eigenvalues accurate to
/// round-off relative to the matrix norm, which is what a trace of a matrix square root needs.
/// </summary>
public static class SymmetricEigen
{
    /// <summary>Sweeps after which the method gives up; convergence normally takes 6 to 12 on a 128×128 matrix.</summary>
    public const int MaxSweeps = 100;

    /// <summary>
    /// Decomposes <paramref name="a"/> (n×n, row-major, symmetric) as <c>A = V·diag(values)·Vᵀ</c>. Returns the
    /// eigenvalues in ascending order and V (n×n, row-major) whose column j is the unit eigenvector of value j.
    /// </summary>
    /// <exception cref="ArgumentException">
    /// The span is not n×n, holds a NaN or infinity, or is not symmetric (|a_ij − a_ji| above 1e-9 of the largest
    /// entry); symmetrize a product such as <c>(M + Mᵀ) / 2</c> first.
    /// </exception>
    /// <exception cref="InvalidOperationException">No convergence within <see cref="MaxSweeps"/> sweeps.</exception>
    public static (double[] Values, double[] Vectors) Decompose(ReadOnlySpan<double> a, int n)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        if (a.Length != (long)n * n)
        {
            throw new ArgumentException($"matrix holds {a.Length} values but n = {n} needs {(long)n * n}", nameof(a));
        }

        double maxAbs = 0;
        foreach (double v in a)
        {
            if (!double.IsFinite(v))
            {
                throw new ArgumentException($"matrix holds a non-finite value ({v})", nameof(a));
            }

            maxAbs = Math.Max(maxAbs, Math.Abs(v));
        }

        for (int i = 0; i < n; i++)
        {
            for (int j = i + 1; j < n; j++)
            {
                if (Math.Abs(a[(i * n) + j] - a[(j * n) + i]) > 1e-9 * maxAbs)
                {
                    throw new ArgumentException(
                        $"matrix is not symmetric: a[{i},{j}] = {a[(i * n) + j]} but a[{j},{i}] = {a[(j * n) + i]}", nameof(a));
                }
            }
        }

        double[] m = a.ToArray();
        double[] vec = new double[n * n];
        for (int i = 0; i < n; i++)
        {
            vec[(i * n) + i] = 1;
        }

        double total = 0;
        foreach (double v in m)
        {
            total += v * v;
        }

        // Stop when the off-diagonal part is round-off relative to the whole: ‖off(A)‖_F ≤ 1e-15 ‖A‖_F. Jacobi
        // converges quadratically, so the sweep after the one that gets to 1e-8 usually gets below this.
        double tolerance = 1e-30 * total;
        for (int sweep = 0; sweep < MaxSweeps; sweep++)
        {
            double off = 0;
            for (int p = 0; p < n; p++)
            {
                for (int q = p + 1; q < n; q++)
                {
                    off += 2 * m[(p * n) + q] * m[(p * n) + q];
                }
            }

            if (off <= tolerance)
            {
                return Sorted(m, vec, n);
            }

            for (int p = 0; p < n - 1; p++)
            {
                for (int q = p + 1; q < n; q++)
                {
                    Rotate(m, vec, n, p, q);
                }
            }
        }

        throw new InvalidOperationException($"Jacobi eigen-decomposition of a {n}x{n} matrix did not converge in {MaxSweeps} sweeps");
    }

    /// <summary>One Jacobi rotation J(p, q, θ) chosen so that (JᵀAJ)[p, q] = 0; V ← V·J.</summary>
    private static void Rotate(double[] m, double[] vec, int n, int p, int q)
    {
        double apq = m[(p * n) + q];
        if (apq == 0)
        {
            return;
        }

        // Golub & Van Loan algorithm 8.5.1 (symSchur2): t = tan θ, the smaller root, for stability.
        double tau = (m[(q * n) + q] - m[(p * n) + p]) / (2 * apq);
        double t = (tau >= 0 ? 1 : -1) / (Math.Abs(tau) + Math.Sqrt(1 + (tau * tau)));
        double c = 1 / Math.Sqrt(1 + (t * t));
        double s = t * c;

        // A ← A·J: columns p and q.
        for (int k = 0; k < n; k++)
        {
            double akp = m[(k * n) + p];
            double akq = m[(k * n) + q];
            m[(k * n) + p] = (c * akp) - (s * akq);
            m[(k * n) + q] = (s * akp) + (c * akq);
        }

        // A ← Jᵀ·A: rows p and q.
        Span<double> rowP = m.AsSpan(p * n, n);
        Span<double> rowQ = m.AsSpan(q * n, n);
        for (int k = 0; k < n; k++)
        {
            double apk = rowP[k];
            double aqk = rowQ[k];
            rowP[k] = (c * apk) - (s * aqk);
            rowQ[k] = (s * apk) + (c * aqk);
        }

        // The rotation zeroes this pair in exact arithmetic; store the exact zero rather than the round-off.
        m[(p * n) + q] = 0;
        m[(q * n) + p] = 0;

        for (int k = 0; k < n; k++)
        {
            double vkp = vec[(k * n) + p];
            double vkq = vec[(k * n) + q];
            vec[(k * n) + p] = (c * vkp) - (s * vkq);
            vec[(k * n) + q] = (s * vkp) + (c * vkq);
        }
    }

    private static (double[] Values, double[] Vectors) Sorted(double[] m, double[] vec, int n)
    {
        int[] order = new int[n];
        double[] diag = new double[n];
        for (int i = 0; i < n; i++)
        {
            order[i] = i;
            diag[i] = m[(i * n) + i];
        }

        Array.Sort((double[])diag.Clone(), order);
        double[] values = new double[n];
        double[] vectors = new double[n * n];
        for (int j = 0; j < n; j++)
        {
            values[j] = diag[order[j]];
            for (int k = 0; k < n; k++)
            {
                vectors[(k * n) + j] = vec[(k * n) + order[j]];
            }
        }

        return (values, vectors);
    }
}
