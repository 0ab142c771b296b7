using System;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace DitCache.Tensors;

/// <summary>
/// A register-blocked GEMM micro-kernel (the BLIS/GotoBLAS "micro-kernel"; llamafile tinyBLAS's <c>gemm&lt;RM, RN&gt;</c>):
/// multiplies one packed <see cref="Mr"/>×kc panel of A by one packed kc×<see cref="Nr"/> panel of B, keeping the
/// Mr×Nr tile of C in registers for the whole kc loop. Operator-struct pattern, so <c>ManagedGemm</c> is specialised
/// per ISA by the JIT.
/// </summary>
internal unsafe interface IGemmMicroKernel
{
    /// <summary>Rows of the C tile (A panel height).</summary>
    static abstract int Mr { get; }

    /// <summary>Columns of the C tile (B panel width).</summary>
    static abstract int Nr { get; }

    /// <summary>
    /// <c>C[0..Mr, 0..Nr] (+)= Σ_p a[p·Mr + i]·b[p·Nr + j]</c> for p &lt; kc. <paramref name="a"/> is a packed A panel
    /// (kc steps of Mr floats), <paramref name="b"/> a packed B panel (kc steps of Nr floats, 64-byte aligned).
    /// Adds onto C when <paramref name="add"/>, else overwrites it.
    /// </summary>
    static abstract void Run(int kc, float* a, float* b, float* c, nint ldc, bool add);

    /// <summary>
    /// The same tile product on unpacked row-major operands: <c>C[i, 0..Nr] (+)= Σ_p a[i·lda + p]·b[p·ldb + 0..Nr]</c>
    /// for i &lt; Mr, p &lt; kc. The attention kernels use it on rows read in place (queries, probabilities, values)
    /// where packing would cost as much as the product. Every one of the Mr rows of A and Nr columns of B is read.
    /// </summary>
    static abstract void RunRows(int kc, float* a, nint lda, float* b, nint ldb, float* c, nint ldc, bool add);
}

/// <summary>
/// AVX-512: 8×32 tile = 16 zmm accumulators; per k step two B loads and eight broadcasts of A (folded into the FMA as
/// embedded broadcasts), 16 FMAs. Zen 4 issues one 512-bit FMA per cycle (latency 4), so 16 independent chains hide
/// the latency with room to spare and the loads stay well under the two-per-cycle limit.
/// </summary>
internal readonly unsafe struct Avx512Kernel8x32 : IGemmMicroKernel
{
    public static int Mr => 8;

    public static int Nr => 32;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Run(int kc, float* a, float* b, float* c, nint ldc, bool add)
    {
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default;
        Vector512<float> c20 = default, c21 = default, c30 = default, c31 = default;
        Vector512<float> c40 = default, c41 = default, c50 = default, c51 = default;
        Vector512<float> c60 = default, c61 = default, c70 = default, c71 = default;
        for (int p = 0; p < kc; p++)
        {
            Vector512<float> b0 = Vector512.Load(b);
            Vector512<float> b1 = Vector512.Load(b + 16);
            Vector512<float> av = Vector512.Create(a[0]);
            c00 = Vector512.FusedMultiplyAdd(av, b0, c00);
            c01 = Vector512.FusedMultiplyAdd(av, b1, c01);
            av = Vector512.Create(a[1]);
            c10 = Vector512.FusedMultiplyAdd(av, b0, c10);
            c11 = Vector512.FusedMultiplyAdd(av, b1, c11);
            av = Vector512.Create(a[2]);
            c20 = Vector512.FusedMultiplyAdd(av, b0, c20);
            c21 = Vector512.FusedMultiplyAdd(av, b1, c21);
            av = Vector512.Create(a[3]);
            c30 = Vector512.FusedMultiplyAdd(av, b0, c30);
            c31 = Vector512.FusedMultiplyAdd(av, b1, c31);
            av = Vector512.Create(a[4]);
            c40 = Vector512.FusedMultiplyAdd(av, b0, c40);
            c41 = Vector512.FusedMultiplyAdd(av, b1, c41);
            av = Vector512.Create(a[5]);
            c50 = Vector512.FusedMultiplyAdd(av, b0, c50);
            c51 = Vector512.FusedMultiplyAdd(av, b1, c51);
            av = Vector512.Create(a[6]);
            c60 = Vector512.FusedMultiplyAdd(av, b0, c60);
            c61 = Vector512.FusedMultiplyAdd(av, b1, c61);
            av = Vector512.Create(a[7]);
            c70 = Vector512.FusedMultiplyAdd(av, b0, c70);
            c71 = Vector512.FusedMultiplyAdd(av, b1, c71);
            a += 8;
            b += 32;
        }

        Store(c, c00, c01, add);
        Store(c + ldc, c10, c11, add);
        Store(c + (2 * ldc), c20, c21, add);
        Store(c + (3 * ldc), c30, c31, add);
        Store(c + (4 * ldc), c40, c41, add);
        Store(c + (5 * ldc), c50, c51, add);
        Store(c + (6 * ldc), c60, c61, add);
        Store(c + (7 * ldc), c70, c71, add);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void RunRows(int kc, float* a, nint lda, float* b, nint ldb, float* c, nint ldc, bool add)
    {
        float* a0 = a, a1 = a + lda, a2 = a + (2 * lda), a3 = a + (3 * lda);
        float* a4 = a + (4 * lda), a5 = a + (5 * lda), a6 = a + (6 * lda), a7 = a + (7 * lda);
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default;
        Vector512<float> c20 = default, c21 = default, c30 = default, c31 = default;
        Vector512<float> c40 = default, c41 = default, c50 = default, c51 = default;
        Vector512<float> c60 = default, c61 = default, c70 = default, c71 = default;
        for (int p = 0; p < kc; p++)
        {
            Vector512<float> b0 = Vector512.Load(b);
            Vector512<float> b1 = Vector512.Load(b + 16);
            Vector512<float> av = Vector512.Create(a0[p]);
            c00 = Vector512.FusedMultiplyAdd(av, b0, c00);
            c01 = Vector512.FusedMultiplyAdd(av, b1, c01);
            av = Vector512.Create(a1[p]);
            c10 = Vector512.FusedMultiplyAdd(av, b0, c10);
            c11 = Vector512.FusedMultiplyAdd(av, b1, c11);
            av = Vector512.Create(a2[p]);
            c20 = Vector512.FusedMultiplyAdd(av, b0, c20);
            c21 = Vector512.FusedMultiplyAdd(av, b1, c21);
            av = Vector512.Create(a3[p]);
            c30 = Vector512.FusedMultiplyAdd(av, b0, c30);
            c31 = Vector512.FusedMultiplyAdd(av, b1, c31);
            av = Vector512.Create(a4[p]);
            c40 = Vector512.FusedMultiplyAdd(av, b0, c40);
            c41 = Vector512.FusedMultiplyAdd(av, b1, c41);
            av = Vector512.Create(a5[p]);
            c50 = Vector512.FusedMultiplyAdd(av, b0, c50);
            c51 = Vector512.FusedMultiplyAdd(av, b1, c51);
            av = Vector512.Create(a6[p]);
            c60 = Vector512.FusedMultiplyAdd(av, b0, c60);
            c61 = Vector512.FusedMultiplyAdd(av, b1, c61);
            av = Vector512.Create(a7[p]);
            c70 = Vector512.FusedMultiplyAdd(av, b0, c70);
            c71 = Vector512.FusedMultiplyAdd(av, b1, c71);
            b += ldb;
        }

        Store(c, c00, c01, add);
        Store(c + ldc, c10, c11, add);
        Store(c + (2 * ldc), c20, c21, add);
        Store(c + (3 * ldc), c30, c31, add);
        Store(c + (4 * ldc), c40, c41, add);
        Store(c + (5 * ldc), c50, c51, add);
        Store(c + (6 * ldc), c60, c61, add);
        Store(c + (7 * ldc), c70, c71, add);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(float* row, Vector512<float> v0, Vector512<float> v1, bool add)
    {
        if (add)
        {
            v0 += Vector512.Load(row);
            v1 += Vector512.Load(row + 16);
        }

        v0.Store(row);
        v1.Store(row + 16);
    }
}

/// <summary>
/// AVX2 + FMA: 6×16 tile = 12 ymm accumulators, plus two B vectors and one broadcast: 15 of the 16 ymm registers
/// (the classic Haswell BLIS shape).
/// </summary>
internal readonly unsafe struct Avx2Kernel6x16 : IGemmMicroKernel
{
    public static int Mr => 6;

    public static int Nr => 16;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Run(int kc, float* a, float* b, float* c, nint ldc, bool add)
    {
        Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default;
        Vector256<float> c20 = default, c21 = default, c30 = default, c31 = default;
        Vector256<float> c40 = default, c41 = default, c50 = default, c51 = default;
        for (int p = 0; p < kc; p++)
        {
            Vector256<float> b0 = Vector256.Load(b);
            Vector256<float> b1 = Vector256.Load(b + 8);
            Vector256<float> av = Vector256.Create(a[0]);
            c00 = Vector256.FusedMultiplyAdd(av, b0, c00);
            c01 = Vector256.FusedMultiplyAdd(av, b1, c01);
            av = Vector256.Create(a[1]);
            c10 = Vector256.FusedMultiplyAdd(av, b0, c10);
            c11 = Vector256.FusedMultiplyAdd(av, b1, c11);
            av = Vector256.Create(a[2]);
            c20 = Vector256.FusedMultiplyAdd(av, b0, c20);
            c21 = Vector256.FusedMultiplyAdd(av, b1, c21);
            av = Vector256.Create(a[3]);
            c30 = Vector256.FusedMultiplyAdd(av, b0, c30);
            c31 = Vector256.FusedMultiplyAdd(av, b1, c31);
            av = Vector256.Create(a[4]);
            c40 = Vector256.FusedMultiplyAdd(av, b0, c40);
            c41 = Vector256.FusedMultiplyAdd(av, b1, c41);
            av = Vector256.Create(a[5]);
            c50 = Vector256.FusedMultiplyAdd(av, b0, c50);
            c51 = Vector256.FusedMultiplyAdd(av, b1, c51);
            a += 6;
            b += 16;
        }

        Store(c, c00, c01, add);
        Store(c + ldc, c10, c11, add);
        Store(c + (2 * ldc), c20, c21, add);
        Store(c + (3 * ldc), c30, c31, add);
        Store(c + (4 * ldc), c40, c41, add);
        Store(c + (5 * ldc), c50, c51, add);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void RunRows(int kc, float* a, nint lda, float* b, nint ldb, float* c, nint ldc, bool add)
    {
        float* a0 = a, a1 = a + lda, a2 = a + (2 * lda), a3 = a + (3 * lda), a4 = a + (4 * lda), a5 = a + (5 * lda);
        Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default;
        Vector256<float> c20 = default, c21 = default, c30 = default, c31 = default;
        Vector256<float> c40 = default, c41 = default, c50 = default, c51 = default;
        for (int p = 0; p < kc; p++)
        {
            Vector256<float> b0 = Vector256.Load(b);
            Vector256<float> b1 = Vector256.Load(b + 8);
            Vector256<float> av = Vector256.Create(a0[p]);
            c00 = Vector256.FusedMultiplyAdd(av, b0, c00);
            c01 = Vector256.FusedMultiplyAdd(av, b1, c01);
            av = Vector256.Create(a1[p]);
            c10 = Vector256.FusedMultiplyAdd(av, b0, c10);
            c11 = Vector256.FusedMultiplyAdd(av, b1, c11);
            av = Vector256.Create(a2[p]);
            c20 = Vector256.FusedMultiplyAdd(av, b0, c20);
            c21 = Vector256.FusedMultiplyAdd(av, b1, c21);
            av = Vector256.Create(a3[p]);
            c30 = Vector256.FusedMultiplyAdd(av, b0, c30);
            c31 = Vector256.FusedMultiplyAdd(av, b1, c31);
            av = Vector256.Create(a4[p]);
            c40 = Vector256.FusedMultiplyAdd(av, b0, c40);
            c41 = Vector256.FusedMultiplyAdd(av, b1, c41);
            av = Vector256.Create(a5[p]);
            c50 = Vector256.FusedMultiplyAdd(av, b0, c50);
            c51 = Vector256.FusedMultiplyAdd(av, b1, c51);
            b += ldb;
        }

        Store(c, c00, c01, add);
        Store(c + ldc, c10, c11, add);
        Store(c + (2 * ldc), c20, c21, add);
        Store(c + (3 * ldc), c30, c31, add);
        Store(c + (4 * ldc), c40, c41, add);
        Store(c + (5 * ldc), c50, c51, add);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(float* row, Vector256<float> v0, Vector256<float> v1, bool add)
    {
        if (add)
        {
            v0 += Vector256.Load(row);
            v1 += Vector256.Load(row + 8);
        }

        v0.Store(row);
        v1.Store(row + 8);
    }
}

/// <summary>Portable 4×8 tile with plain float FMAs: the fallback, and a check of the packing logic on any machine.</summary>
internal readonly unsafe struct ScalarKernel4x8 : IGemmMicroKernel
{
    public static int Mr => 4;

    public static int Nr => 8;

    public static void Run(int kc, float* a, float* b, float* c, nint ldc, bool add)
    {
        float* acc = stackalloc float[4 * 8];
        new System.Span<float>(acc, 4 * 8).Clear();
        for (int p = 0; p < kc; p++)
        {
            for (int i = 0; i < 4; i++)
            {
                float av = a[i];
                float* row = acc + (i * 8);
                for (int j = 0; j < 8; j++)
                {
                    row[j] += av * b[j];
                }
            }

            a += 4;
            b += 8;
        }

        for (int i = 0; i < 4; i++)
        {
            float* dst = c + (i * ldc);
            for (int j = 0; j < 8; j++)
            {
                dst[j] = add ? dst[j] + acc[(i * 8) + j] : acc[(i * 8) + j];
            }
        }
    }

    public static void RunRows(int kc, float* a, nint lda, float* b, nint ldb, float* c, nint ldc, bool add)
    {
        float* acc = stackalloc float[4 * 8];
        new System.Span<float>(acc, 4 * 8).Clear();
        for (int p = 0; p < kc; p++)
        {
            for (int i = 0; i < 4; i++)
            {
                float av = a[(i * lda) + p];
                float* row = acc + (i * 8);
                for (int j = 0; j < 8; j++)
                {
                    row[j] += av * b[j];
                }
            }

            b += ldb;
        }

        for (int i = 0; i < 4; i++)
        {
            float* dst = c + (i * ldc);
            for (int j = 0; j < 8; j++)
            {
                dst[j] = add ? dst[j] + acc[(i * 8) + j] : acc[(i * 8) + j];
            }
        }
    }
}

/// <summary>Span entry points to the micro-kernels, for tests (which are built without unsafe code).</summary>
internal static unsafe class MicroKernel
{
    /// <summary><see cref="IGemmMicroKernel.RunRows"/> over spans; the spans must cover every row and column it reads.</summary>
    public static void RunRows<TKernel>(int kc, ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb,
        Span<float> c, int ldc, bool add)
        where TKernel : IGemmMicroKernel
    {
        Debug.Assert(a.Length >= ((TKernel.Mr - 1) * lda) + kc && c.Length >= ((TKernel.Mr - 1) * ldc) + TKernel.Nr);
        fixed (float* pa = a)
        fixed (float* pb = b)
        fixed (float* pc = c)
        {
            TKernel.RunRows(kc, pa, lda, pb, ldb, pc, ldc, add);
        }
    }
}
