using System;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Threading.Tasks;

namespace DitCache.Evaluation.Metrics;

/// <summary>
/// Eigenvalues (no vectors) of a real symmetric matrix: Householder reduction to tridiagonal form, blocked as in
/// LAPACK's dsytrd/dlatrd (Golub and Van Loan, Matrix Computations, 4th ed., sections 8.3.1 and 5.1; half the flops
/// become a symmetric rank-2k update through <see cref="DenseKernels"/>, the other half a symmetric matrix-vector
/// product per column, split over threads), then the implicit QL method with Wilkinson shifts on the tridiagonal
/// (EISPACK tql1; Golub and Van Loan section 8.3.5). Eigenvalues are accurate to round-off relative to the matrix
/// norm, like <see cref="SymmetricEigen"/>, at a fraction of the cost for large matrices.
/// </summary>
internal static class SymmetricEigenvalues
{
    private const int Panel = 32;

    /// <summary>Fixed number of row chunks of the matrix-vector product, so that sums do not depend on the thread count.</summary>
    private const int Chunks = 8;

    /// <summary>Below this size the matrix-vector product runs on one thread (same chunking, same result).</summary>
    private const int ParallelFrom = 384;

    /// <summary>
    /// Eigenvalues in ascending order of the symmetric n×n matrix whose lower triangle is in <paramref name="a"/>
    /// (row stride <paramref name="ld"/> ≥ n + <see cref="DenseKernels.Slack"/>; destroyed; the upper triangle is
    /// neither read nor kept).
    /// </summary>
    /// <exception cref="InvalidOperationException">The QL iteration did not converge (not expected for finite input).</exception>
    internal static double[] Compute(double[] a, int n, int ld)
    {
        double[] diag = new double[n];
        double[] off = new double[n];
        Tridiagonalize(a, n, ld, diag, off);
        TridiagonalQl(diag, off);
        Array.Sort(diag);
        return diag;
    }

    private static void Tridiagonalize(double[] a, int n, int ld, double[] diag, double[] off)
    {
        // vw holds [V; W; V], each Panel × n, column-major per vector: the rank-2k update reads X = [V; W] and Y = [W; V].
        double[] vw = new double[3 * Panel * n];
        double[] col = new double[n];
        double[] w = new double[n];
        double[] partial = new double[Chunks * n];
        int i = 0;
        while (i < n - 1)
        {
            int nb = Math.Min(Panel, n - 1 - i);
            int k0 = i;
            for (int ii = 0; ii < nb; ii++, i++)
            {
                // Column i from row i down, brought up to date with the panel's earlier reflectors.
                int m = n - i;
                for (int r = 0; r < m; r++)
                {
                    col[r] = a[((i + r) * ld) + i];
                }

                Span<double> c = col.AsSpan(0, m);
                for (int k = 0; k < ii; k++)
                {
                    ReadOnlySpan<double> vk = vw.AsSpan((k * n) + i, m);
                    ReadOnlySpan<double> wk = vw.AsSpan(((Panel + k) * n) + i, m);
                    Axpy(-wk[0], vk, c);
                    Axpy(-vk[0], wk, c);
                }

                diag[i] = c[0];

                // Householder reflector H = I − τ v vᵀ with v(0) = 1 mapping c(1:) to (β, 0, …).
                Span<double> v = c.Slice(1);
                double alpha = v[0];
                double xnorm = 0;
                for (int r = 1; r < v.Length; r++)
                {
                    xnorm += v[r] * v[r];
                }

                xnorm = Math.Sqrt(xnorm);
                double tau = 0;
                if (xnorm == 0)
                {
                    off[i] = alpha;
                    v.Clear();
                    v[0] = 1;
                }
                else
                {
                    double beta = -Math.CopySign(double.Hypot(alpha, xnorm), alpha);
                    tau = (beta - alpha) / beta;
                    double scale = 1 / (alpha - beta);
                    for (int r = 1; r < v.Length; r++)
                    {
                        v[r] *= scale;
                    }

                    v[0] = 1;
                    off[i] = beta;
                }

                // w = τ (A22 v − V Wᵀ v − W Vᵀ v), A22 = A(i+1:, i+1:) as of the panel start; then w −= (τ/2)(wᵀv) v.
                int len = m - 1;
                Span<double> wv = w.AsSpan(0, len);
                SymmetricMultiply(a, ld, i + 1, n, v, wv, partial);
                for (int k = 0; k < ii; k++)
                {
                    ReadOnlySpan<double> vk = vw.AsSpan((k * n) + i + 1, len);
                    ReadOnlySpan<double> wk = vw.AsSpan(((Panel + k) * n) + i + 1, len);
                    double t1 = Dot(wk, v);
                    double t2 = Dot(vk, v);
                    Axpy(-t1, vk, wv);
                    Axpy(-t2, wk, wv);
                }

                for (int r = 0; r < len; r++)
                {
                    wv[r] *= tau;
                }

                Axpy(-0.5 * tau * Dot(wv, v), v, wv);

                // Store v and w as panel vectors ii (rows i+1.. ; entries above are zero for the update).
                Span<double> vStore = vw.AsSpan(ii * n, n);
                Span<double> wStore = vw.AsSpan((Panel + ii) * n, n);
                Span<double> v2Store = vw.AsSpan(((2 * Panel) + ii) * n, n);
                vStore.Slice(0, i + 1).Clear();
                wStore.Slice(0, i + 1).Clear();
                v2Store.Slice(0, i + 1).Clear();
                v.CopyTo(vStore.Slice(i + 1));
                wv.CopyTo(wStore.Slice(i + 1));
                v.CopyTo(v2Store.Slice(i + 1));
            }

            // A(t:, t:) −= V Wᵀ + W Vᵀ on the lower triangle, t = first column after the panel.
            int t = i;
            if (t < n)
            {
                if (nb < Panel)
                {
                    // Compact [V; W; V] of a short last panel so the three blocks stay contiguous in the rank-2k layout.
                    double[] compact = new double[3 * nb * n];
                    for (int blk = 0; blk < 3; blk++)
                    {
                        vw.AsSpan(blk * Panel * n, nb * n).CopyTo(compact.AsSpan(blk * nb * n));
                    }

                    Rank2kUpdate(a, ld, n, t, compact, nb);
                }
                else
                {
                    Rank2kUpdate(a, ld, n, t, vw, nb);
                }
            }
        }

        if (n > 0)
        {
            diag[n - 1] = a[((n - 1) * ld) + n - 1];
            off[n - 1] = 0;
        }
    }

    private static void Rank2kUpdate(double[] a, int ld, int n, int t, double[] vw, int nb)
    {
        int m = n - t;
        DenseKernels.MultiplyAdd(
            -1,
            vw, t, 1, n, false,
            vw, (nb * n) + t, n, 1, false,
            a, (t * ld) + t, ld,
            m, m, 2 * nb, DenseKernels.Part.Lower);
    }

    /// <summary>y = A(s:n, s:n) x from the lower triangle, rows in a fixed number of equal-work chunks.</summary>
    private static void SymmetricMultiply(double[] a, int ld, int s, int n, ReadOnlySpan<double> x, Span<double> y, double[] partial)
    {
        int m = n - s;
        double[] xs = x.ToArray();
        Action<int> chunk = c =>
        {
            int r0 = (int)(m * Math.Sqrt((double)c / Chunks));
            int r1 = c == Chunks - 1 ? m : (int)(m * Math.Sqrt((double)(c + 1) / Chunks));
            Span<double> acc = partial.AsSpan(c * m, m);
            acc.Clear();
            for (int r = r0; r < r1; r++)
            {
                // Row r of the block: dot with x(0:r) into acc(r), and x(r) times the row into acc(0:r).
                double xr = xs[r];
                acc[r] += DotAxpy(a, ((s + r) * ld) + s, xs, partial, c * m, r, xr) + (a[((s + r) * ld) + s + r] * xr);
            }
        };
        if (m >= ParallelFrom)
        {
            Parallel.For(0, Chunks, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, chunk);
        }
        else
        {
            for (int c = 0; c < Chunks; c++)
            {
                chunk(c);
            }
        }

        y.Clear();
        for (int c = 0; c < Chunks; c++)
        {
            int r1 = c == Chunks - 1 ? m : (int)(m * Math.Sqrt((double)(c + 1) / Chunks));
            ReadOnlySpan<double> acc = partial.AsSpan(c * m, r1);
            for (int r = 0; r < r1; r++)
            {
                y[r] += acc[r];
            }
        }
    }

    /// <summary>
    /// Implicit QL with Wilkinson shifts on the tridiagonal with diagonal <paramref name="d"/> and sub-diagonal
    /// <paramref name="e"/> (e[i] couples i and i+1; e[n−1] unused); the eigenvalues replace d, unsorted.
    /// </summary>
    private static void TridiagonalQl(double[] d, double[] e)
    {
        int n = d.Length;

        // Deflate when |e[m]| is round-off relative to the whole matrix (EISPACK tql1's test): eigenvalues are wanted
        // to round-off of ‖T‖, and a relative test per pair would iterate forever on clusters of round-off zeros.
        double norm = 0;
        for (int i = 0; i < n; i++)
        {
            if (!double.IsFinite(d[i]) || !double.IsFinite(e[i]))
            {
                throw new InvalidOperationException($"tridiagonal form holds a non-finite value at {i} of {n}");
            }

            norm = Math.Max(norm, Math.Abs(d[i]) + Math.Abs(e[i]));
        }

        for (int l = 0; l < n; l++)
        {
            int iter = 0;
            int m;
            do
            {
                for (m = l; m < n - 1; m++)
                {
                    if (Math.Abs(e[m]) + norm == norm)
                    {
                        break;
                    }
                }

                if (m != l)
                {
                    if (++iter > 60)
                    {
                        throw new InvalidOperationException($"tridiagonal QL did not converge for eigenvalue {l} of {n}");
                    }

                    double g = (d[l + 1] - d[l]) / (2 * e[l]);
                    double r = double.Hypot(g, 1);
                    g = d[m] - d[l] + (e[l] / (g + Math.CopySign(r, g)));
                    double s = 1, c = 1, p = 0;
                    int i;
                    for (i = m - 1; i >= l; i--)
                    {
                        double f = s * e[i];
                        double b = c * e[i];
                        r = double.Hypot(f, g);
                        e[i + 1] = r;
                        if (r == 0)
                        {
                            d[i + 1] -= p;
                            e[m] = 0;
                            break;
                        }

                        s = f / r;
                        c = g / r;
                        g = d[i + 1] - p;
                        r = ((d[i] - g) * s) + (2 * c * b);
                        p = s * r;
                        d[i + 1] = g + p;
                        g = (c * r) - b;
                    }

                    if (r == 0 && i >= l)
                    {
                        continue;
                    }

                    d[l] -= p;
                    e[l] = g;
                    e[m] = 0;
                }
            }
            while (m != l);
        }
    }

    /// <summary>
    /// One pass over row[0:len] = a[ao..]: returns Σ row·x and adds xr·row into acc = p[po..] (the symmetric product's
    /// row and column parts).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static double DotAxpy(double[] a, int ao, double[] x, double[] p, int po, int len, double xr)
    {
        if (ao + len > a.Length || len > x.Length || po + len > p.Length)
        {
            throw new ArgumentOutOfRangeException(nameof(len));
        }

        ref double ar = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(a), ao);
        ref double xs = ref MemoryMarshal.GetArrayDataReference(x);
        ref double ys = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(p), po);
        int i = 0;
        double sum = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            Vector512<double> acc = Vector512<double>.Zero;
            Vector512<double> vr = Vector512.Create(xr);
            for (; i <= len - 8; i += 8)
            {
                Vector512<double> av = Vector512.LoadUnsafe(ref ar, (nuint)i);
                acc = Vector512.FusedMultiplyAdd(av, Vector512.LoadUnsafe(ref xs, (nuint)i), acc);
                Vector512.FusedMultiplyAdd(av, vr, Vector512.LoadUnsafe(ref ys, (nuint)i)).StoreUnsafe(ref ys, (nuint)i);
            }

            sum = Vector512.Sum(acc);
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            Vector256<double> acc = Vector256<double>.Zero;
            Vector256<double> vr = Vector256.Create(xr);
            for (; i <= len - 4; i += 4)
            {
                Vector256<double> av = Vector256.LoadUnsafe(ref ar, (nuint)i);
                acc = Vector256.FusedMultiplyAdd(av, Vector256.LoadUnsafe(ref xs, (nuint)i), acc);
                Vector256.FusedMultiplyAdd(av, vr, Vector256.LoadUnsafe(ref ys, (nuint)i)).StoreUnsafe(ref ys, (nuint)i);
            }

            sum = Vector256.Sum(acc);
        }

        for (; i < len; i++)
        {
            double av = Unsafe.Add(ref ar, i);
            sum += av * Unsafe.Add(ref xs, i);
            Unsafe.Add(ref ys, i) = Math.FusedMultiplyAdd(av, xr, Unsafe.Add(ref ys, i));
        }

        return sum;
    }

    private static double Dot(ReadOnlySpan<double> x, ReadOnlySpan<double> y)
    {
        int i = 0;
        double sum = 0;
        if (Vector.IsHardwareAccelerated && x.Length >= 2 * Vector<double>.Count)
        {
            int w = Vector<double>.Count;
            Vector<double> acc0 = Vector<double>.Zero, acc1 = Vector<double>.Zero;
            for (; i <= x.Length - (2 * w); i += 2 * w)
            {
                acc0 = Vector.FusedMultiplyAdd(new Vector<double>(x.Slice(i)), new Vector<double>(y.Slice(i)), acc0);
                acc1 = Vector.FusedMultiplyAdd(new Vector<double>(x.Slice(i + w)), new Vector<double>(y.Slice(i + w)), acc1);
            }

            sum = Vector.Sum(acc0 + acc1);
        }

        for (; i < x.Length; i++)
        {
            sum += x[i] * y[i];
        }

        return sum;
    }

    private static void Axpy(double alpha, ReadOnlySpan<double> x, Span<double> y)
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            int w = Vector<double>.Count;
            var va = new Vector<double>(alpha);
            for (; i <= x.Length - w; i += w)
            {
                Vector.FusedMultiplyAdd(va, new Vector<double>(x.Slice(i)), new Vector<double>(y.Slice(i))).CopyTo(y.Slice(i));
            }
        }

        for (; i < x.Length; i++)
        {
            y[i] = Math.FusedMultiplyAdd(alpha, x[i], y[i]);
        }
    }
}
