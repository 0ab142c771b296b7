using System;

namespace DitCache.Evaluation.Metrics;

/// <summary>
/// Diagonally pivoted Cholesky factorisation of a symmetric positive semi-definite matrix, <c>Pᵀ A P = Uᵀ U</c> with
/// U upper trapezoidal of rank r, stopping when every remaining pivot is at most a tolerance (Higham, "Cholesky
/// factorization", WIREs Comp. Stat. 1, 2009, section 3; the blocking follows LAPACK's dpstrf: each panel of
/// <see cref="Panel"/> rows is computed left-looking within the panel, then the trailing matrix gets one rank-k
/// update through <see cref="DenseKernels"/>).
/// </summary>
internal static class PivotedCholesky
{
    private const int Panel = 64;

    /// <summary>
    /// Factors <paramref name="a"/> in place: d rows of stride <paramref name="ld"/> (≥ d + <see cref="DenseKernels.Slack"/>),
    /// holding the full symmetric matrix; only the upper triangle is read. Returns the rank r: rows 0..r−1 then hold
    /// U (columns in pivot order, zeros below the diagonal are not written: read U(i,k) only for k ≥ i), and the upper
    /// triangle of rows and columns r..d−1 holds the Schur complement S of the pivots taken, every diagonal entry of
    /// which is ≤ <paramref name="tolerance"/>. <paramref name="perm"/>[i] is the original index of position i.
    /// </summary>
    internal static int Factor(double[] a, int d, int ld, int[] perm, double tolerance)
    {
        for (int i = 0; i < d; i++)
        {
            perm[i] = i;
        }

        double[] work = new double[d];
        for (int kb = 0; kb < d; kb += Panel)
        {
            int kend = Math.Min(d, kb + Panel);
            for (int i = kb; i < d; i++)
            {
                work[i] = a[(i * ld) + i];
            }

            for (int j = kb; j < kend; j++)
            {
                int p = j;
                double best = work[j];
                for (int i = j + 1; i < d; i++)
                {
                    if (work[i] > best)
                    {
                        best = work[i];
                        p = i;
                    }
                }

                if (!(best > tolerance))
                {
                    TrailingUpdate(a, d, ld, kb, j, j);
                    return j;
                }

                if (p != j)
                {
                    Swap(a, d, ld, j, p);
                    (work[j], work[p]) = (work[p], work[j]);
                    (perm[j], perm[p]) = (perm[p], perm[j]);
                }

                // Row j of U: (A(j, j+1:) − Σ_{k in panel, k<j} U(k,j) U(k, j+1:)) / U(j,j).
                double ujj = Math.Sqrt(best);
                int len = d - j - 1;
                Span<double> row = a.AsSpan((j * ld) + j + 1, len);
                for (int k = kb; k < j; k++)
                {
                    Axpy(-a[(k * ld) + j], a.AsSpan((k * ld) + j + 1, len), row);
                }

                double inv = 1 / ujj;
                for (int i = 0; i < len; i++)
                {
                    row[i] *= inv;
                    work[j + 1 + i] -= row[i] * row[i];
                }

                a[(j * ld) + j] = ujj;
            }

            TrailingUpdate(a, d, ld, kb, kend, kend);
        }

        return d;
    }

    /// <summary>A(t:, t:) −= U(k0:k1, t:)ᵀ U(k0:k1, t:), upper triangle.</summary>
    private static void TrailingUpdate(double[] a, int d, int ld, int k0, int k1, int t)
    {
        int n = d - t;
        DenseKernels.MultiplyAdd(
            -1,
            a, (k0 * ld) + t, 1, ld, false,
            a, (k0 * ld) + t, ld, 1, false,
            a, (t * ld) + t, ld,
            n, n, k1 - k0, DenseKernels.Part.Upper);
    }

    /// <summary>Symmetric swap of positions j &lt; p in the trailing matrix (upper storage) and in the rows of U above.</summary>
    private static void Swap(double[] a, int d, int ld, int j, int p)
    {
        for (int k = 0; k < j; k++)
        {
            (a[(k * ld) + j], a[(k * ld) + p]) = (a[(k * ld) + p], a[(k * ld) + j]);
        }

        (a[(j * ld) + j], a[(p * ld) + p]) = (a[(p * ld) + p], a[(j * ld) + j]);
        for (int i = j + 1; i < p; i++)
        {
            (a[(j * ld) + i], a[(i * ld) + p]) = (a[(i * ld) + p], a[(j * ld) + i]);
        }

        for (int i = p + 1; i < d; i++)
        {
            (a[(j * ld) + i], a[(p * ld) + i]) = (a[(p * ld) + i], a[(j * ld) + i]);
        }
    }

    private static void Axpy(double alpha, ReadOnlySpan<double> x, Span<double> y)
    {
        int i = 0;
        if (System.Numerics.Vector.IsHardwareAccelerated)
        {
            int w = System.Numerics.Vector<double>.Count;
            var va = new System.Numerics.Vector<double>(alpha);
            for (; i <= x.Length - w; i += w)
            {
                var vy = new System.Numerics.Vector<double>(y.Slice(i));
                System.Numerics.Vector.FusedMultiplyAdd(va, new System.Numerics.Vector<double>(x.Slice(i)), vy).CopyTo(y.Slice(i));
            }
        }

        for (; i < x.Length; i++)
        {
            y[i] = Math.FusedMultiplyAdd(alpha, x[i], y[i]);
        }
    }
}
