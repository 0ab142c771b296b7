using System;
using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Threading.Tasks;

namespace DitCache.Evaluation.Metrics;

/// <summary>
/// Double-precision dense matrix product <c>C += α·X·Y</c> for the O(n³) parts of <see cref="FrechetDistance"/>:
/// cache-blocked in the GotoBLAS style (Goto and van de Geijn, "Anatomy of high-performance matrix multiplication",
/// ACM TOMS 34(3), 2008): a KC×NC block of Y is packed into NR-wide column strips, and a register-blocked micro-kernel
/// of MR rows × NR columns accumulates with fused multiply-adds (Vector512 where the CPU has it, else Vector256).
/// Column blocks are split over threads; each element of C is computed by the same sequence of operations whatever
/// the thread count, so the result does not depend on it.
/// </summary>
internal static class DenseKernels
{
    /// <summary>Rows of the micro-kernel.</summary>
    internal const int MR = 4;

    /// <summary>Depth of a packed block of Y.</summary>
    private const int KC = 256;

    /// <summary>Writable slack each row of C needs past its last used column (a partial strip is written whole).</summary>
    internal const int Slack = 32;

    /// <summary>Which part of C is wanted; tiles that touch it are computed whole.</summary>
    internal enum Part
    {
        /// <summary>All of C.</summary>
        Full,

        /// <summary>Only i ≥ j (relative to the block of C addressed).</summary>
        Lower,

        /// <summary>Only i ≤ j.</summary>
        Upper,
    }

    /// <summary>Columns of the micro-kernel: 4 vectors of 8 doubles with AVX-512, 3 of 4 otherwise.</summary>
    internal static int NR => Vector512.IsHardwareAccelerated ? 32 : 12;

    /// <summary>
    /// <c>C(i,j) += α Σ_k X(i,k)·Y(k,j)</c> for i &lt; m, j &lt; n, k &lt; depth, where X(i,k) = x[xOff + i·xRs + k·xCs],
    /// Y(k,j) = y[yOff + k·yRs + j·yCs] and C(i,j) = c[cOff + i·ldc + j]. Each row of C needs <see cref="Slack"/>
    /// writable values past column n (they are added zeros). <paramref name="xUpper"/>: X(i,k) = 0 for k &lt; i;
    /// <paramref name="yLower"/>: Y(k,j) = 0 for k &lt; j; those zeros are skipped by whole blocks.
    /// </summary>
    internal static void MultiplyAdd(
        double alpha,
        double[] x, int xOff, int xRs, int xCs, bool xUpper,
        double[] y, int yOff, int yRs, int yCs, bool yLower,
        double[] c, int cOff, int ldc,
        int m, int n, int depth, Part part)
    {
        if (m <= 0 || n <= 0 || depth <= 0)
        {
            return;
        }

        int nr = NR;
        int nc = nr * Math.Max(1, 128 / nr);
        int blocks = (n + nc - 1) / nc;
        var options = new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount };
        Parallel.For(0, blocks, options, b =>
        {
            int n0 = b * nc;
            int n1 = Math.Min(n, n0 + nc);
            int strips = (n1 - n0 + nr - 1) / nr;
            double[] pack = ArrayPool<double>.Shared.Rent(KC * strips * nr);
            try
            {
                for (int k0 = yLower ? n0 : 0; k0 < depth; k0 += KC)
                {
                    int k1 = Math.Min(depth, k0 + KC);
                    int kc = k1 - k0;
                    int rLo = part == Part.Lower ? n0 : 0;
                    int rHi = m;
                    if (xUpper)
                    {
                        rHi = Math.Min(rHi, k1);
                    }

                    if (part == Part.Upper)
                    {
                        rHi = Math.Min(rHi, n1);
                    }

                    if (rLo >= rHi)
                    {
                        continue;
                    }

                    Pack(alpha, y, yOff + (k0 * yRs), yRs, yCs, n0, n1, kc, strips, nr, pack);
                    for (int i0 = rLo; i0 < rHi; i0 += MR)
                    {
                        int rows = Math.Min(MR, rHi - i0);
                        int xo = xOff + (i0 * xRs) + (k0 * xCs);
                        for (int s = 0; s < strips; s++)
                        {
                            int co = cOff + (i0 * ldc) + n0 + (s * nr);
                            int po = s * kc * nr;
                            if (Vector512.IsHardwareAccelerated)
                            {
                                Kernel512(rows, kc, x, xo, xRs, xCs, pack, po, c, co, ldc);
                            }
                            else
                            {
                                Kernel256(rows, kc, x, xo, xRs, xCs, pack, po, c, co, ldc);
                            }
                        }
                    }
                }
            }
            finally
            {
                ArrayPool<double>.Shared.Return(pack);
            }
        });
    }

    private static void Pack(double alpha, double[] y, int yOff, int yRs, int yCs, int n0, int n1, int kc, int strips, int nr, double[] pack)
    {
        for (int s = 0; s < strips; s++)
        {
            int jBase = n0 + (s * nr);
            int po = s * kc * nr;
            for (int jj = 0; jj < nr; jj++)
            {
                int j = jBase + jj;
                if (j >= n1)
                {
                    for (int kk = 0; kk < kc; kk++)
                    {
                        pack[po + (kk * nr) + jj] = 0;
                    }

                    continue;
                }

                int yo = yOff + (j * yCs);
                for (int kk = 0; kk < kc; kk++)
                {
                    pack[po + (kk * nr) + jj] = alpha * y[yo + (kk * yRs)];
                }
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Kernel512(int rows, int kc, double[] x, int xo, int xRs, int xCs, double[] p, int po, double[] c, int co, int ldc)
    {
        ref double xr = ref MemoryMarshal.GetArrayDataReference(x);
        ref double pr = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(p), po);
        ref double cr = ref MemoryMarshal.GetArrayDataReference(c);
        if (rows == MR)
        {
            ref double c0 = ref Unsafe.Add(ref cr, co);
            ref double c1 = ref Unsafe.Add(ref c0, ldc);
            ref double c2 = ref Unsafe.Add(ref c1, ldc);
            ref double c3 = ref Unsafe.Add(ref c2, ldc);
            Vector512<double> a00 = Vector512.LoadUnsafe(ref c0), a01 = Vector512.LoadUnsafe(ref c0, 8), a02 = Vector512.LoadUnsafe(ref c0, 16), a03 = Vector512.LoadUnsafe(ref c0, 24);
            Vector512<double> a10 = Vector512.LoadUnsafe(ref c1), a11 = Vector512.LoadUnsafe(ref c1, 8), a12 = Vector512.LoadUnsafe(ref c1, 16), a13 = Vector512.LoadUnsafe(ref c1, 24);
            Vector512<double> a20 = Vector512.LoadUnsafe(ref c2), a21 = Vector512.LoadUnsafe(ref c2, 8), a22 = Vector512.LoadUnsafe(ref c2, 16), a23 = Vector512.LoadUnsafe(ref c2, 24);
            Vector512<double> a30 = Vector512.LoadUnsafe(ref c3), a31 = Vector512.LoadUnsafe(ref c3, 8), a32 = Vector512.LoadUnsafe(ref c3, 16), a33 = Vector512.LoadUnsafe(ref c3, 24);
            int xi = xo;
            for (int k = 0; k < kc; k++, xi += xCs)
            {
                ref double pk = ref Unsafe.Add(ref pr, k * 32);
                Vector512<double> p0 = Vector512.LoadUnsafe(ref pk), p1 = Vector512.LoadUnsafe(ref pk, 8), p2 = Vector512.LoadUnsafe(ref pk, 16), p3 = Vector512.LoadUnsafe(ref pk, 24);
                Vector512<double> b = Vector512.Create(Unsafe.Add(ref xr, xi));
                a00 = Vector512.FusedMultiplyAdd(b, p0, a00);
                a01 = Vector512.FusedMultiplyAdd(b, p1, a01);
                a02 = Vector512.FusedMultiplyAdd(b, p2, a02);
                a03 = Vector512.FusedMultiplyAdd(b, p3, a03);
                b = Vector512.Create(Unsafe.Add(ref xr, xi + xRs));
                a10 = Vector512.FusedMultiplyAdd(b, p0, a10);
                a11 = Vector512.FusedMultiplyAdd(b, p1, a11);
                a12 = Vector512.FusedMultiplyAdd(b, p2, a12);
                a13 = Vector512.FusedMultiplyAdd(b, p3, a13);
                b = Vector512.Create(Unsafe.Add(ref xr, xi + (2 * xRs)));
                a20 = Vector512.FusedMultiplyAdd(b, p0, a20);
                a21 = Vector512.FusedMultiplyAdd(b, p1, a21);
                a22 = Vector512.FusedMultiplyAdd(b, p2, a22);
                a23 = Vector512.FusedMultiplyAdd(b, p3, a23);
                b = Vector512.Create(Unsafe.Add(ref xr, xi + (3 * xRs)));
                a30 = Vector512.FusedMultiplyAdd(b, p0, a30);
                a31 = Vector512.FusedMultiplyAdd(b, p1, a31);
                a32 = Vector512.FusedMultiplyAdd(b, p2, a32);
                a33 = Vector512.FusedMultiplyAdd(b, p3, a33);
            }

            a00.StoreUnsafe(ref c0); a01.StoreUnsafe(ref c0, 8); a02.StoreUnsafe(ref c0, 16); a03.StoreUnsafe(ref c0, 24);
            a10.StoreUnsafe(ref c1); a11.StoreUnsafe(ref c1, 8); a12.StoreUnsafe(ref c1, 16); a13.StoreUnsafe(ref c1, 24);
            a20.StoreUnsafe(ref c2); a21.StoreUnsafe(ref c2, 8); a22.StoreUnsafe(ref c2, 16); a23.StoreUnsafe(ref c2, 24);
            a30.StoreUnsafe(ref c3); a31.StoreUnsafe(ref c3, 8); a32.StoreUnsafe(ref c3, 16); a33.StoreUnsafe(ref c3, 24);
            return;
        }

        for (int q = 0; q < rows; q++)
        {
            ref double cq = ref Unsafe.Add(ref cr, co + (q * ldc));
            Vector512<double> a0 = Vector512.LoadUnsafe(ref cq), a1 = Vector512.LoadUnsafe(ref cq, 8), a2 = Vector512.LoadUnsafe(ref cq, 16), a3 = Vector512.LoadUnsafe(ref cq, 24);
            int xi = xo + (q * xRs);
            for (int k = 0; k < kc; k++, xi += xCs)
            {
                ref double pk = ref Unsafe.Add(ref pr, k * 32);
                Vector512<double> b = Vector512.Create(Unsafe.Add(ref xr, xi));
                a0 = Vector512.FusedMultiplyAdd(b, Vector512.LoadUnsafe(ref pk), a0);
                a1 = Vector512.FusedMultiplyAdd(b, Vector512.LoadUnsafe(ref pk, 8), a1);
                a2 = Vector512.FusedMultiplyAdd(b, Vector512.LoadUnsafe(ref pk, 16), a2);
                a3 = Vector512.FusedMultiplyAdd(b, Vector512.LoadUnsafe(ref pk, 24), a3);
            }

            a0.StoreUnsafe(ref cq); a1.StoreUnsafe(ref cq, 8); a2.StoreUnsafe(ref cq, 16); a3.StoreUnsafe(ref cq, 24);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Kernel256(int rows, int kc, double[] x, int xo, int xRs, int xCs, double[] p, int po, double[] c, int co, int ldc)
    {
        ref double xr = ref MemoryMarshal.GetArrayDataReference(x);
        ref double pr = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(p), po);
        ref double cr = ref MemoryMarshal.GetArrayDataReference(c);
        if (rows == MR)
        {
            ref double c0 = ref Unsafe.Add(ref cr, co);
            ref double c1 = ref Unsafe.Add(ref c0, ldc);
            ref double c2 = ref Unsafe.Add(ref c1, ldc);
            ref double c3 = ref Unsafe.Add(ref c2, ldc);
            Vector256<double> a00 = Vector256.LoadUnsafe(ref c0), a01 = Vector256.LoadUnsafe(ref c0, 4), a02 = Vector256.LoadUnsafe(ref c0, 8);
            Vector256<double> a10 = Vector256.LoadUnsafe(ref c1), a11 = Vector256.LoadUnsafe(ref c1, 4), a12 = Vector256.LoadUnsafe(ref c1, 8);
            Vector256<double> a20 = Vector256.LoadUnsafe(ref c2), a21 = Vector256.LoadUnsafe(ref c2, 4), a22 = Vector256.LoadUnsafe(ref c2, 8);
            Vector256<double> a30 = Vector256.LoadUnsafe(ref c3), a31 = Vector256.LoadUnsafe(ref c3, 4), a32 = Vector256.LoadUnsafe(ref c3, 8);
            int xi = xo;
            for (int k = 0; k < kc; k++, xi += xCs)
            {
                ref double pk = ref Unsafe.Add(ref pr, k * 12);
                Vector256<double> p0 = Vector256.LoadUnsafe(ref pk), p1 = Vector256.LoadUnsafe(ref pk, 4), p2 = Vector256.LoadUnsafe(ref pk, 8);
                Vector256<double> b = Vector256.Create(Unsafe.Add(ref xr, xi));
                a00 = Vector256.FusedMultiplyAdd(b, p0, a00);
                a01 = Vector256.FusedMultiplyAdd(b, p1, a01);
                a02 = Vector256.FusedMultiplyAdd(b, p2, a02);
                b = Vector256.Create(Unsafe.Add(ref xr, xi + xRs));
                a10 = Vector256.FusedMultiplyAdd(b, p0, a10);
                a11 = Vector256.FusedMultiplyAdd(b, p1, a11);
                a12 = Vector256.FusedMultiplyAdd(b, p2, a12);
                b = Vector256.Create(Unsafe.Add(ref xr, xi + (2 * xRs)));
                a20 = Vector256.FusedMultiplyAdd(b, p0, a20);
                a21 = Vector256.FusedMultiplyAdd(b, p1, a21);
                a22 = Vector256.FusedMultiplyAdd(b, p2, a22);
                b = Vector256.Create(Unsafe.Add(ref xr, xi + (3 * xRs)));
                a30 = Vector256.FusedMultiplyAdd(b, p0, a30);
                a31 = Vector256.FusedMultiplyAdd(b, p1, a31);
                a32 = Vector256.FusedMultiplyAdd(b, p2, a32);
            }

            a00.StoreUnsafe(ref c0); a01.StoreUnsafe(ref c0, 4); a02.StoreUnsafe(ref c0, 8);
            a10.StoreUnsafe(ref c1); a11.StoreUnsafe(ref c1, 4); a12.StoreUnsafe(ref c1, 8);
            a20.StoreUnsafe(ref c2); a21.StoreUnsafe(ref c2, 4); a22.StoreUnsafe(ref c2, 8);
            a30.StoreUnsafe(ref c3); a31.StoreUnsafe(ref c3, 4); a32.StoreUnsafe(ref c3, 8);
            return;
        }

        for (int q = 0; q < rows; q++)
        {
            ref double cq = ref Unsafe.Add(ref cr, co + (q * ldc));
            Vector256<double> a0 = Vector256.LoadUnsafe(ref cq), a1 = Vector256.LoadUnsafe(ref cq, 4), a2 = Vector256.LoadUnsafe(ref cq, 8);
            int xi = xo + (q * xRs);
            for (int k = 0; k < kc; k++, xi += xCs)
            {
                ref double pk = ref Unsafe.Add(ref pr, k * 12);
                Vector256<double> b = Vector256.Create(Unsafe.Add(ref xr, xi));
                a0 = Vector256.FusedMultiplyAdd(b, Vector256.LoadUnsafe(ref pk), a0);
                a1 = Vector256.FusedMultiplyAdd(b, Vector256.LoadUnsafe(ref pk, 4), a1);
                a2 = Vector256.FusedMultiplyAdd(b, Vector256.LoadUnsafe(ref pk, 8), a2);
            }

            a0.StoreUnsafe(ref cq); a1.StoreUnsafe(ref cq, 4); a2.StoreUnsafe(ref cq, 8);
        }
    }
}
