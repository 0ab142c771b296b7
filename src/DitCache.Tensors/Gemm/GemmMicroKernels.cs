using System;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace DitCache.Tensors;

/// <summary>
/// A register-blocked GEMM micro-kernel (the BLIS/GotoBLAS "micro-kernel"; llamafile tinyBLAS's <c>gemm&lt;RM, RN&gt;</c>):
/// multiplies Mr rows of A by one kc×<see cref="Nr"/> panel of B, keeping the Mr×Nr tile of C in registers for the
/// whole kc loop. Operator-struct pattern, so <c>ManagedGemm</c> and the attention kernels are specialised per ISA by
/// the JIT. A is always read in place, row by row (stride lda): a row's kc floats stay in L1 while the kernel sweeps
/// the B panels, so packing A would only add a copy.
/// </summary>
/// <remarks>
/// Each vector kernel writes its k loop once (<c>Tile</c>, the Mr×2 accumulators spelled out so that they stay in
/// registers); the three entry points differ only in how a k step gets its B vectors, a value type from
/// <see cref="BPanels"/> that the JIT inlines, so each layout still compiles to its own straight loop.
/// </remarks>
internal unsafe interface IGemmMicroKernel
{
    /// <summary>Rows of the C tile.</summary>
    static abstract int Mr { get; }

    /// <summary>Columns of the C tile (B panel width).</summary>
    static abstract int Nr { get; }

    /// <summary>
    /// <c>C[i, 0..Nr] (+)= Σ_p a[i·lda + p]·b[p·Nr + 0..Nr]</c> for i &lt; Mr, p &lt; kc: A rows in place, B a packed
    /// float32 panel (kc steps of Nr floats, 64-byte aligned). Adds onto C when <paramref name="add"/>, else
    /// overwrites it. Every one of the Mr rows of A is read.
    /// </summary>
    static abstract void Run(int kc, float* a, nint lda, float* b, float* c, nint ldc, bool add);

    /// <summary>
    /// As <see cref="Run"/> with B a packed BF16 panel: kc steps of Nr/2 32-bit lanes, lane j holding column j in its
    /// low half and column j + Nr/2 in its high half (<see cref="BFloat16"/>). A BF16 value is the upper half of a
    /// float32, so a shift (low half) and a mask (high half) turn one lane into two exact float32 values; products
    /// and sums are float32 FMAs, as in <c>VDPBF16PS</c>.
    /// </summary>
    static abstract void RunBf16(int kc, float* a, nint lda, uint* b, float* c, nint ldc, bool add);

    /// <summary>
    /// As <see cref="RunBf16"/> with IEEE float16 values in the lanes (<see cref="WeightPrecision.Float16"/> weights):
    /// each half is widened exactly to float32 (its exponent and mantissa moved into place and scaled by 2^112, which
    /// is exact for normal and subnormal values alike; the sign copied). The panel holds finite values only
    /// (<see cref="HalfWeights"/> refuses the others).
    /// </summary>
    static abstract void RunF16(int kc, float* a, nint lda, uint* b, float* c, nint ldc, bool add);

    /// <summary>
    /// The same tile product on unpacked row-major operands: <c>C[i, 0..Nr] (+)= Σ_p a[i·lda + p]·b[p·ldb + 0..Nr]</c>
    /// for i &lt; Mr, p &lt; kc. The attention kernels use it on rows read in place (queries, probabilities, values)
    /// where packing would cost as much as the product. Every one of the Mr rows of A and Nr columns of B is read.
    /// </summary>
    static abstract void RunRows(int kc, float* a, nint lda, float* b, nint ldb, float* c, nint ldc, bool add);
}

/// <summary>
/// AVX-512: 8×32 tile = 16 zmm accumulators; per k step two B loads (or one BF16 pair load and a shift and a mask),
/// eight broadcasts of A and 16 FMAs. Zen 4 issues one 512-bit FMA per cycle (latency 4), so 16 independent chains
/// hide the latency and the loads stay well under the three-per-cycle limit.
/// </summary>
internal readonly unsafe struct Avx512Kernel8x32 : IGemmMicroKernel
{
    public static int Mr => 8;

    public static int Nr => 32;

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    public static void Run(int kc, float* a, nint lda, float* b, float* c, nint ldc, bool add)
    {
        PrefetchTile(c, ldc);
        Tile(kc, a, lda, new BPanels.F32x2<Vector512<float>>(b), c, ldc, add);
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    public static void RunBf16(int kc, float* a, nint lda, uint* b, float* c, nint ldc, bool add)
    {
        PrefetchTile(c, ldc);
        Tile(kc, a, lda, new BPanels.Bf16Pairs<Vector512<float>, Vector512<uint>>(b), c, ldc, add);
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    public static void RunF16(int kc, float* a, nint lda, uint* b, float* c, nint ldc, bool add)
    {
        PrefetchTile(c, ldc);
        Tile(kc, a, lda, new BPanels.F16Pairs<Vector512<float>, Vector512<uint>>(b), c, ldc, add);
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    public static void RunRows(int kc, float* a, nint lda, float* b, nint ldb, float* c, nint ldc, bool add) =>
        Tile(kc, a, lda, new BPanels.Rows<Vector512<float>>(b, ldb), c, ldc, add);

    // The one k loop behind Run, RunBf16 and RunRows: TB says how a k step gets its two B vectors. (The entry points
    // are kept out of line: inlined into a caller's block loop, the tile would share registers with it.)
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Tile<TB>(int kc, float* a, nint lda, TB b, float* c, nint ldc, bool add)
        where TB : struct, IBSteps<Vector512<float>>
    {
        float* a0 = a, a1 = a + lda, a2 = a + (2 * lda), a3 = a + (3 * lda);
        float* a4 = a + (4 * lda), a5 = a + (5 * lda), a6 = a + (6 * lda), a7 = a + (7 * lda);
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default;
        Vector512<float> c20 = default, c21 = default, c30 = default, c31 = default;
        Vector512<float> c40 = default, c41 = default, c50 = default, c51 = default;
        Vector512<float> c60 = default, c61 = default, c70 = default, c71 = default;
        for (int p = 0; p < kc; p++)
        {
            b.Next(out Vector512<float> b0, out Vector512<float> b1);
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

    // Asks for the C tile's lines now, so that the loads (add) or the write-allocates (overwrite) at the end find
    // them in L1 instead of stalling on memory: with k = 128 one tile's products take only ~1 µs.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PrefetchTile(float* c, nint ldc)
    {
        if (Sse.IsSupported)
        {
            for (int i = 0; i < 8; i++)
            {
                Sse.Prefetch0(c + (i * ldc));
                Sse.Prefetch0(c + (i * ldc) + 16);
                Sse.Prefetch0(c + (i * ldc) + 31);
            }
        }
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

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    public static void Run(int kc, float* a, nint lda, float* b, float* c, nint ldc, bool add)
    {
        PrefetchTile(c, ldc);
        Tile(kc, a, lda, new BPanels.F32x2<Vector256<float>>(b), c, ldc, add);
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    public static void RunBf16(int kc, float* a, nint lda, uint* b, float* c, nint ldc, bool add)
    {
        PrefetchTile(c, ldc);
        Tile(kc, a, lda, new BPanels.Bf16Pairs<Vector256<float>, Vector256<uint>>(b), c, ldc, add);
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    public static void RunF16(int kc, float* a, nint lda, uint* b, float* c, nint ldc, bool add)
    {
        PrefetchTile(c, ldc);
        Tile(kc, a, lda, new BPanels.F16Pairs<Vector256<float>, Vector256<uint>>(b), c, ldc, add);
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    public static void RunRows(int kc, float* a, nint lda, float* b, nint ldb, float* c, nint ldc, bool add) =>
        Tile(kc, a, lda, new BPanels.Rows<Vector256<float>>(b, ldb), c, ldc, add);

    // The one k loop behind Run, RunBf16 and RunRows: TB says how a k step gets its two B vectors.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Tile<TB>(int kc, float* a, nint lda, TB b, float* c, nint ldc, bool add)
        where TB : struct, IBSteps<Vector256<float>>
    {
        float* a0 = a, a1 = a + lda, a2 = a + (2 * lda), a3 = a + (3 * lda);
        float* a4 = a + (4 * lda), a5 = a + (5 * lda);
        Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default;
        Vector256<float> c20 = default, c21 = default, c30 = default, c31 = default;
        Vector256<float> c40 = default, c41 = default, c50 = default, c51 = default;
        for (int p = 0; p < kc; p++)
        {
            b.Next(out Vector256<float> b0, out Vector256<float> b1);
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
        }

        Store(c, c00, c01, add);
        Store(c + ldc, c10, c11, add);
        Store(c + (2 * ldc), c20, c21, add);
        Store(c + (3 * ldc), c30, c31, add);
        Store(c + (4 * ldc), c40, c41, add);
        Store(c + (5 * ldc), c50, c51, add);
    }

    // As Avx512Kernel8x32.PrefetchTile; a 16-float row is one 64-byte line when C is aligned, two when not.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PrefetchTile(float* c, nint ldc)
    {
        if (Sse.IsSupported)
        {
            for (int i = 0; i < 6; i++)
            {
                Sse.Prefetch0(c + (i * ldc));
                Sse.Prefetch0(c + (i * ldc) + 15);
            }
        }
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

/// <summary>How a micro-kernel's k step gets its two B vectors (<see cref="BPanels"/>); TVector is Vector256 or Vector512.</summary>
internal interface IBSteps<TVector>
    where TVector : struct
{
    /// <summary>The B vectors of this k step (columns 0..W and W..2W), then moves to the next step.</summary>
    void Next(out TVector b0, out TVector b1);
}

/// <summary>
/// The three B layouts of <see cref="IGemmMicroKernel"/>, as value types that the JIT inlines into the one k loop of
/// each vector micro-kernel, so that the loop is written once per ISA and compiled once per layout.
/// </summary>
internal static unsafe class BPanels
{
    /// <summary>A packed float32 panel: k steps of two vectors, back to back (<see cref="IGemmMicroKernel.Run"/>).</summary>
    public struct F32x2<TVector>(float* b) : IBSteps<TVector>
        where TVector : struct
    {
        private float* _b = b;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Next(out TVector b0, out TVector b1)
        {
            b0 = Unsafe.ReadUnaligned<TVector>(_b);
            b1 = Unsafe.ReadUnaligned<TVector>(_b + (Unsafe.SizeOf<TVector>() / sizeof(float)));
            _b += 2 * Unsafe.SizeOf<TVector>() / sizeof(float);
        }
    }

    /// <summary>
    /// A packed BF16 panel (<see cref="IGemmMicroKernel.RunBf16"/>): one vector of 32-bit lanes per k step, each lane
    /// column j in its low half and column j + W in its high half; a shift and a mask give the two float32 vectors.
    /// </summary>
    public struct Bf16Pairs<TVector, TLanes>(uint* b) : IBSteps<TVector>
        where TVector : struct
        where TLanes : struct
    {
        private uint* _b = b;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Next(out TVector b0, out TVector b1)
        {
            if (typeof(TLanes) == typeof(Vector512<uint>))
            {
                Vector512<uint> pair = Vector512.Load(_b);
                b0 = Unsafe.BitCast<Vector512<float>, TVector>((pair << 16).AsSingle());
                b1 = Unsafe.BitCast<Vector512<float>, TVector>((pair & Vector512.Create(0xFFFF0000u)).AsSingle());
            }
            else
            {
                Vector256<uint> pair = Vector256.Load(_b);
                b0 = Unsafe.BitCast<Vector256<float>, TVector>((pair << 16).AsSingle());
                b1 = Unsafe.BitCast<Vector256<float>, TVector>((pair & Vector256.Create(0xFFFF0000u)).AsSingle());
            }

            _b += Unsafe.SizeOf<TLanes>() / sizeof(uint);
        }
    }

    /// <summary>
    /// A packed float16 panel (<see cref="IGemmMicroKernel.RunF16"/>): lanes as <see cref="Bf16Pairs{TVector, TLanes}"/>,
    /// each half an IEEE binary16. Widening: the 15 exponent and mantissa bits go to bits 13..27 of a float32, which
    /// then reads as the value times 2^-112 (a subnormal float32 when the half is subnormal), so one multiply by 2^112
    /// gives the value exactly; the sign bit is or-ed back.
    /// </summary>
    public struct F16Pairs<TVector, TLanes>(uint* b) : IBSteps<TVector>
        where TVector : struct
        where TLanes : struct
    {
        private const uint Sign = 0x8000_0000u;
        private const uint Magnitude = 0x0FFF_E000u;       // a half's bits 0..14, moved up by 13
        private const uint Two112 = (127 + 112) << 23;      // 2^112 as float32 bits

        private uint* _b = b;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Next(out TVector b0, out TVector b1)
        {
            if (typeof(TLanes) == typeof(Vector512<uint>))
            {
                Vector512<uint> pair = Vector512.Load(_b);
                Vector512<float> scale = Vector512.Create(Two112).AsSingle();
                Vector512<float> lo = ((pair << 17) >> 4).AsSingle() * scale;
                Vector512<float> hi = ((pair >> 3) & Vector512.Create(Magnitude)).AsSingle() * scale;
                b0 = Unsafe.BitCast<Vector512<float>, TVector>((lo.AsUInt32() | ((pair << 16) & Vector512.Create(Sign))).AsSingle());
                b1 = Unsafe.BitCast<Vector512<float>, TVector>((hi.AsUInt32() | (pair & Vector512.Create(Sign))).AsSingle());
            }
            else
            {
                Vector256<uint> pair = Vector256.Load(_b);
                Vector256<float> scale = Vector256.Create(Two112).AsSingle();
                Vector256<float> lo = ((pair << 17) >> 4).AsSingle() * scale;
                Vector256<float> hi = ((pair >> 3) & Vector256.Create(Magnitude)).AsSingle() * scale;
                b0 = Unsafe.BitCast<Vector256<float>, TVector>((lo.AsUInt32() | ((pair << 16) & Vector256.Create(Sign))).AsSingle());
                b1 = Unsafe.BitCast<Vector256<float>, TVector>((hi.AsUInt32() | (pair & Vector256.Create(Sign))).AsSingle());
            }

            _b += Unsafe.SizeOf<TLanes>() / sizeof(uint);
        }
    }

    /// <summary>Rows of a row-major B read in place, ldb floats apart (<see cref="IGemmMicroKernel.RunRows"/>).</summary>
    public struct Rows<TVector>(float* b, nint ldb) : IBSteps<TVector>
        where TVector : struct
    {
        private readonly nint _ldb = ldb;
        private float* _b = b;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Next(out TVector b0, out TVector b1)
        {
            b0 = Unsafe.ReadUnaligned<TVector>(_b);
            b1 = Unsafe.ReadUnaligned<TVector>(_b + (Unsafe.SizeOf<TVector>() / sizeof(float)));
            _b += _ldb;
        }
    }
}

/// <summary>Portable 4×8 tile with plain float FMAs: the fallback, and a check of the blocking logic on any machine.</summary>
internal readonly unsafe struct ScalarKernel4x8 : IGemmMicroKernel
{
    public static int Mr => 4;

    public static int Nr => 8;

    public static void Run(int kc, float* a, nint lda, float* b, float* c, nint ldc, bool add) =>
        RunRows(kc, a, lda, b, 8, c, ldc, add);

    public static void RunBf16(int kc, float* a, nint lda, uint* b, float* c, nint ldc, bool add) =>
        RunHalf(kc, a, lda, b, c, ldc, add, f16: false);

    public static void RunF16(int kc, float* a, nint lda, uint* b, float* c, nint ldc, bool add) =>
        RunHalf(kc, a, lda, b, c, ldc, add, f16: true);

    // A 16-bit panel (4 lanes per k step: column j low, j + 4 high), each value widened by HalfWeights.Widen16.
    private static void RunHalf(int kc, float* a, nint lda, uint* b, float* c, nint ldc, bool add, bool f16)
    {
        WeightPrecision format = f16 ? WeightPrecision.Float16 : WeightPrecision.BFloat16;
        float* acc = stackalloc float[4 * 8];
        new Span<float>(acc, 4 * 8).Clear();
        float* bp = stackalloc float[8];
        for (int p = 0; p < kc; p++)
        {
            for (int j = 0; j < 4; j++)
            {
                bp[j] = HalfWeights.Widen16(b[j] & 0xFFFFu, format);
                bp[j + 4] = HalfWeights.Widen16(b[j] >> 16, format);
            }

            for (int i = 0; i < 4; i++)
            {
                float av = a[(i * lda) + p];
                float* row = acc + (i * 8);
                for (int j = 0; j < 8; j++)
                {
                    row[j] += av * bp[j];
                }
            }

            b += 4;
        }

        StoreTile(acc, c, ldc, add);
    }

    public static void RunRows(int kc, float* a, nint lda, float* b, nint ldb, float* c, nint ldc, bool add)
    {
        float* acc = stackalloc float[4 * 8];
        new Span<float>(acc, 4 * 8).Clear();
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

        StoreTile(acc, c, ldc, add);
    }

    private static void StoreTile(float* acc, float* c, nint ldc, bool add)
    {
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
