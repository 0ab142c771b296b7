using System;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace DitCache.Tensors;

/// <summary>
/// The copies <see cref="ManagedGemm"/> makes of its operands. B goes into Nr-wide panels, one k step of Nr values
/// after another (float32), or Nr/2 32-bit lanes per k step (BF16 pairs, lane j = column j low and column j + Nr/2
/// high, see <see cref="IGemmMicroKernel.RunBf16"/>); missing columns are zero. A is read in place, except the last
/// few rows of a ragged m (copied zero-padded to Mr rows) and, on the BF16 path, a block of rows rounded to BF16.
/// </summary>
internal static unsafe class GemmPacking
{
    /// <summary>
    /// op(B) rows p0..p0+kc, columns j0..j0+cols → float32 panels of <paramref name="nr"/> columns, panel q at
    /// <c>dst + q·panelStride</c>, each kc steps of nr floats. op(B) is B (k×n, row stride ldb) or, when
    /// <paramref name="transB"/>, Bᵀ of an n×k B (a Linear weight).
    /// </summary>
    public static void PackF32(float* b, nint ldb, bool transB, int j0, int cols, int p0, int kc, int nr, float* dst,
        nint panelStride)
    {
        for (int jr = 0; jr < cols; jr += nr)
        {
            int valid = Math.Min(nr, cols - jr);
            float* panel = dst + (jr / nr * panelStride);
            if (transB)
            {
                PanelTransposed(b + ((j0 + jr) * ldb) + p0, ldb, valid, kc, nr, panel);
            }
            else
            {
                PanelRows(b + (p0 * ldb) + j0 + jr, ldb, valid, kc, nr, panel);
            }
        }
    }

    /// <summary>
    /// As <see cref="PackF32"/> into BF16-pair panels (nr/2 lanes per k step, panel q at <c>dst + q·panelStride</c>
    /// lanes), each value rounded to nearest even. <paramref name="scratch"/> holds one float32 panel (kc·nr floats).
    /// </summary>
    public static void PackBf16(float* b, nint ldb, bool transB, int j0, int cols, int p0, int kc, int nr, uint* dst,
        nint panelStride, float* scratch) =>
        PackHalf(b, ldb, transB, j0, cols, p0, kc, nr, dst, panelStride, scratch, f16: false);

    // One float32 panel at a time into scratch, then its 16-bit pairs.
    private static void PackHalf(float* b, nint ldb, bool transB, int j0, int cols, int p0, int kc, int nr, uint* dst,
        nint panelStride, float* scratch, bool f16)
    {
        for (int jr = 0; jr < cols; jr += nr)
        {
            int valid = Math.Min(nr, cols - jr);
            if (transB)
            {
                PanelTransposed(b + ((j0 + jr) * ldb) + p0, ldb, valid, kc, nr, scratch);
            }
            else
            {
                PanelRows(b + (p0 * ldb) + j0 + jr, ldb, valid, kc, nr, scratch);
            }

            if (f16)
            {
                PairsF16(scratch, kc, nr, dst + (jr / nr * panelStride));
            }
            else
            {
                PairsBf16(scratch, kc, nr, dst + (jr / nr * panelStride));
            }
        }
    }

    /// <summary>
    /// As <see cref="PackBf16"/> into float16-pair panels (same lanes), for values that are float16 values already
    /// (widened from a <see cref="HalfWeights"/> array): nothing is rounded. <paramref name="scratch"/> as there.
    /// </summary>
    public static void PackF16(float* b, nint ldb, bool transB, int j0, int cols, int p0, int kc, int nr, uint* dst,
        nint panelStride, float* scratch) =>
        PackHalf(b, ldb, transB, j0, cols, p0, kc, nr, dst, panelStride, scratch, f16: true);

    /// <summary>
    /// rows × kc of A (row stride lda) → dst (row stride kc) rounded to BF16 (as float32 values), then rows up to
    /// <paramref name="paddedRows"/> zero.
    /// </summary>
    public static void RoundRowsBf16(float* a, nint lda, int rows, int kc, int paddedRows, float* dst)
    {
        for (int i = 0; i < rows; i++)
        {
            float* src = a + (i * lda);
            float* d = dst + ((nint)i * kc);
            int p = 0;
            if (Vector512.IsHardwareAccelerated)
            {
                for (; p <= kc - 16; p += 16)
                {
                    BFloat16.RoundBits(Vector512.Load(src + p)).AsSingle().Store(d + p);
                }
            }
            else if (Vector256.IsHardwareAccelerated)
            {
                for (; p <= kc - 8; p += 8)
                {
                    BFloat16.RoundBits(Vector256.Load(src + p)).AsSingle().Store(d + p);
                }
            }

            for (; p < kc; p++)
            {
                d[p] = BFloat16.Round(src[p]);
            }
        }

        new Span<float>(dst + ((nint)rows * kc), (paddedRows - rows) * kc).Clear();
    }

    /// <summary>rows × kc of A (row stride lda) → dst (row stride kc), then rows up to paddedRows zero.</summary>
    public static void CopyRows(float* a, nint lda, int rows, int kc, int paddedRows, float* dst)
    {
        for (int i = 0; i < rows; i++)
        {
            new ReadOnlySpan<float>(a + (i * lda), kc).CopyTo(new Span<float>(dst + ((nint)i * kc), kc));
        }

        new Span<float>(dst + ((nint)rows * kc), (paddedRows - rows) * kc).Clear();
    }

    // One panel from B (k×n): kc rows of `valid` contiguous floats → kc steps of nr, zero past valid.
    private static void PanelRows(float* src, nint ldb, int valid, int kc, int nr, float* panel)
    {
        for (int p = 0; p < kc; p++)
        {
            float* d = panel + (p * nr);
            new ReadOnlySpan<float>(src + (p * ldb), valid).CopyTo(new Span<float>(d, valid));
            if (valid < nr)
            {
                new Span<float>(d + valid, nr - valid).Clear();
            }
        }
    }

    // One panel from an n×k B: `valid` rows of kc floats → kc steps of nr (a transpose), zero past valid. With AVX
    // the 8×8 blocks go through registers (the unpack/shuffle/permute transpose): the weights of a Linear layer are
    // all packed this way when not prepared, and the scalar strided copy cost ~5 % of an m = 512 product.
    private static void PanelTransposed(float* src, nint ldb, int valid, int kc, int nr, float* panel)
    {
        int j0 = 0;
        if (Avx.IsSupported)
        {
            for (; j0 <= valid - 8; j0 += 8)
            {
                int p = 0;
                for (; p <= kc - 8; p += 8)
                {
                    BlockTranspose.Transpose8x8(src + (j0 * ldb) + p, ldb, panel + (p * nr) + j0, nr);
                }

                for (; p < kc; p++)
                {
                    for (int j = j0; j < j0 + 8; j++)
                    {
                        panel[(p * nr) + j] = src[(j * ldb) + p];
                    }
                }
            }
        }

        for (int j = j0; j < valid; j++)
        {
            float* s = src + (j * ldb);
            float* d = panel + j;
            for (int p = 0; p < kc; p++)
            {
                d[p * nr] = s[p];
            }
        }

        if (valid < nr)
        {
            for (int p = 0; p < kc; p++)
            {
                new Span<float>(panel + (p * nr) + valid, nr - valid).Clear();
            }
        }
    }

    // A float32 panel of float16 values (kc steps of nr) → float16 pairs (kc steps of nr/2 lanes, as PairsBf16).
    private static void PairsF16(float* panel, int kc, int nr, uint* dst)
    {
        int half = nr / 2;
        for (int p = 0; p < kc; p++)
        {
            float* s = panel + (p * nr);
            uint* d = dst + (p * half);
            for (int j = 0; j < half; j++)
            {
                d[j] = HalfWeights.Narrow16(s[j], f16: true) | (HalfWeights.Narrow16(s[half + j], f16: true) << 16);
            }
        }
    }

    // A float32 panel (kc steps of nr) → BF16 pairs (kc steps of nr/2 lanes: column j low, column j + nr/2 high).
    private static void PairsBf16(float* panel, int kc, int nr, uint* dst)
    {
        int half = nr / 2;
        for (int p = 0; p < kc; p++)
        {
            float* s = panel + (p * nr);
            uint* d = dst + (p * half);
            int j = 0;
            if (Vector512.IsHardwareAccelerated)
            {
                for (; j <= half - 16; j += 16)
                {
                    Vector512<uint> lo = BFloat16.RoundBits(Vector512.Load(s + j));
                    Vector512<uint> hi = BFloat16.RoundBits(Vector512.Load(s + half + j));
                    ((lo >> 16) | hi).Store(d + j);
                }
            }

            if (Vector256.IsHardwareAccelerated)
            {
                for (; j <= half - 8; j += 8)
                {
                    Vector256<uint> lo = BFloat16.RoundBits(Vector256.Load(s + j));
                    Vector256<uint> hi = BFloat16.RoundBits(Vector256.Load(s + half + j));
                    ((lo >> 16) | hi).Store(d + j);
                }
            }

            for (; j < half; j++)
            {
                d[j] = (BFloat16.RoundBits(s[j]) >> 16) | BFloat16.RoundBits(s[half + j]);
            }
        }
    }

}
