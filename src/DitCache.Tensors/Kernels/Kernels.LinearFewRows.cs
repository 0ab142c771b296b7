using System;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics.X86;

namespace DitCache.Tensors;

public static partial class Kernels
{
    // Below this many multiply-adds one thread is faster than waking others (as ManagedGemm).
    private const long FewRowsParallelThreshold = 1L << 17;

    // Largest tile of any micro-kernel ISA (AVX-512 8×32), so one scratch size fits whichever runs.
    private const int FewRowsMaxMr = 8;
    private const int FewRowsMaxNr = 32;

    private static readonly GemmIsa s_fewRowsIsa = ManagedGemm.Resolve(GemmIsa.Auto);

    /// <summary>Floats of scratch <see cref="LinearFewRows"/> needs for <paramref name="inF"/> input features.</summary>
    /// <exception cref="ArgumentException">inF is not positive or the scratch would exceed an array.</exception>
    public static int LinearFewRowsScratchSize(int inF)
    {
        KernelChecks.Positive(inF, nameof(inF));
        long size = ((long)inF * FewRowsMaxNr) + ((long)inF * FewRowsMaxMr) + 16;
        if (size > Array.MaxLength)
        {
            throw new ArgumentException($"few-rows Linear scratch for inF {inF} exceeds an array", nameof(inF));
        }

        return (int)size;
    }

    /// <summary>
    /// PyTorch <c>Linear</c> for a handful of rows, <c>y (rows, outF) = x (rows, inF) · wᵀ + b</c> with
    /// <paramref name="w"/> in the checkpoint layout [outF, inF]: the adaLN modulation and the timestep MLP, one row
    /// per image. Effectively computes <c>yᵀ = w · xᵀ</c> on the GEMM micro-kernels with the weight rows read in place
    /// (Mr output features per tile) against xᵀ packed once per Nr rows, so nothing the size of the weight is ever
    /// packed; a GEMM call packs the whole weight, which for a few rows costs as much as the product. Output-feature
    /// tiles are shared among <paramref name="threads"/> threads of the worker pool. An empty <paramref name="b"/>
    /// means no bias. <paramref name="scratch"/> holds <see cref="LinearFewRowsScratchSize"/>(inF) floats.
    /// </summary>
    /// <remarks>
    /// Each output is one fused multiply-add chain over k in order, then plus the bias: bit for bit what
    /// <see cref="ManagedGemm"/> gives for <see cref="Linear"/> when inF fits one of its k blocks (256), and within
    /// float rounding otherwise. Any row count works; beyond a few dozen rows a GEMM is the better choice, since
    /// every Nr rows read the whole weight again.
    /// </remarks>
    /// <exception cref="ArgumentException">A size is negative (threads, inF, outF: not positive), a span is too short, or b is neither empty nor outF long.</exception>
    public static void LinearFewRows(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> b, Span<float> y,
        int rows, int inF, int outF, Span<float> scratch, int threads) =>
        LinearFewRowsOn(s_fewRowsIsa, x, w, b, y, rows, inF, outF, scratch, threads);

    /// <summary><see cref="LinearFewRows"/> on a given micro-kernel ISA (tests).</summary>
    internal static unsafe void LinearFewRowsOn(GemmIsa isa, ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> b,
        Span<float> y, int rows, int inF, int outF, Span<float> scratch, int threads)
    {
        KernelChecks.NonNegative(rows, nameof(rows));
        KernelChecks.Positive(inF, nameof(inF));
        KernelChecks.Positive(outF, nameof(outF));
        KernelChecks.Positive(threads, nameof(threads));
        KernelChecks.Length(x.Length, (long)rows * inF, nameof(x), $"(rows {rows}, inF {inF})");
        KernelChecks.Length(w.Length, (long)outF * inF, nameof(w), $"[outF {outF}, inF {inF}]");
        KernelChecks.Length(y.Length, (long)rows * outF, nameof(y), $"(rows {rows}, outF {outF})");
        KernelChecks.Length(scratch.Length, LinearFewRowsScratchSize(inF), nameof(scratch), "LinearFewRowsScratchSize(inF)");
        if (!b.IsEmpty && b.Length != outF)
        {
            throw new ArgumentException($"bias holds {b.Length} floats but outF is {outF}; pass outF floats or an empty span", nameof(b));
        }

        KernelChecks.Disjoint(scratch, y, nameof(scratch), nameof(y));
        if (rows == 0)
        {
            return;
        }

        fixed (float* px = x)
        fixed (float* pw = w)
        fixed (float* pb = b)
        fixed (float* py = y)
        fixed (float* ps = scratch)
        {
            var job = new FewRowsJob
            {
                X = px,
                W = pw,
                Bias = b.IsEmpty ? null : pb,
                Y = py,
                XT = (float*)(((nint)ps + 63) & ~(nint)63),
                Rows = rows,
                InF = inF,
                OutF = outF,
            };
            job.Tail = job.XT + ((long)inF * FewRowsMaxNr);
            bool parallel = (long)rows * inF * outF >= FewRowsParallelThreshold;
            switch (ManagedGemm.Resolve(isa))
            {
                case GemmIsa.Avx512 when rows <= 16 && ManagedGemm.IsSupported(GemmIsa.Avx2):
                    // Rows are the tile's columns, padded to Nr: 16-wide AVX2 tiles waste less than 32-wide AVX-512
                    // ones, and Zen 4 runs two 256-bit FMAs per cycle, the multiply-adds of one 512-bit FMA.
                    RunFewRows<Avx2Kernel6x16>(&job, parallel ? threads : 1);
                    break;
                case GemmIsa.Avx512:
                    RunFewRows<Avx512Kernel8x32>(&job, parallel ? threads : 1);
                    break;
                case GemmIsa.Avx2:
                    RunFewRows<Avx2Kernel6x16>(&job, parallel ? threads : 1);
                    break;
                default:
                    RunFewRows<ScalarKernel4x8>(&job, parallel ? threads : 1);
                    break;
            }
        }
    }

    private static unsafe void RunFewRows<TKernel>(FewRowsJob* job, int threads)
        where TKernel : IGemmMicroKernel
    {
        int mr = TKernel.Mr, nr = TKernel.Nr, inF = job->InF, outF = job->OutF;
        job->Tiles = (outF + mr - 1) / mr;

        // The last, partial tile of weight rows, zero-padded to Mr rows (the micro-kernel reads all Mr).
        int full = outF / mr * mr;
        if (full < outF)
        {
            new ReadOnlySpan<float>(job->W + ((long)full * inF), (outF - full) * inF).CopyTo(new Span<float>(job->Tail, (outF - full) * inF));
            new Span<float>(job->Tail + ((long)(outF - full) * inF), (mr - (outF - full)) * inF).Clear();
        }

        for (int r0 = 0; r0 < job->Rows; r0 += nr)
        {
            // xᵀ (inF, Nr) for rows r0 … r0+Nr−1, columns past the last row zero.
            int count = Math.Min(nr, job->Rows - r0);
            for (int p = 0; p < inF; p++)
            {
                float* dst = job->XT + ((long)p * nr);
                for (int m = 0; m < count; m++)
                {
                    dst[m] = job->X[((long)(r0 + m) * inF) + p];
                }

                new Span<float>(dst + count, nr - count).Clear();
            }

            job->Row0 = r0;
            job->RowCount = count;
            job->Items = Math.Min(job->Tiles, 4 * threads);
            if (threads == 1)
            {
                job->Items = 1;
                FewRowsTiles<TKernel>(job, 0, 0);
            }
            else
            {
                WorkerPool.Run(&FewRowsTiles<TKernel>, job, job->Items, threads);
            }
        }
    }

    // Output-feature tiles [Tiles·item/Items, Tiles·(item+1)/Items) of the current row block: yᵀ tile (Mr, Nr) on the
    // micro-kernel, then transposed into y with the bias.
    [SkipLocalsInit]
    private static unsafe void FewRowsTiles<TKernel>(void* context, int item, int slot)
        where TKernel : IGemmMicroKernel
    {
        FewRowsJob* job = (FewRowsJob*)context;
        int mr = TKernel.Mr, nr = TKernel.Nr, inF = job->InF, outF = job->OutF, count = job->RowCount;
        int t0 = (int)((long)job->Tiles * item / job->Items), t1 = (int)((long)job->Tiles * (item + 1) / job->Items);
        float* tile = stackalloc float[FewRowsMaxMr * FewRowsMaxNr];
        for (int t = t0; t < t1; t++)
        {
            int n0 = t * mr, valid = Math.Min(mr, outF - n0);
            float* a = valid == mr ? job->W + ((long)n0 * inF) : job->Tail;
            if (Sse.IsSupported && t + 1 < t1)
            {
                // The weight is read once per step, and by a cached step it has left the caches: fetch the next
                // tile's rows (contiguous) while this one computes, or the kernel waits on memory at every row.
                float* next = job->W + ((long)(n0 + mr) * inF);
                float* end = job->W + ((long)Math.Min(outF, n0 + (2 * mr)) * inF);
                for (; next < end; next += 16)
                {
                    Sse.Prefetch0(next);
                }
            }

            TKernel.RunRows(inF, a, inF, job->XT, nr, tile, nr, add: false);
            for (int m = 0; m < count; m++)
            {
                float* dst = job->Y + ((long)(job->Row0 + m) * outF) + n0;
                if (job->Bias is null)
                {
                    for (int r = 0; r < valid; r++)
                    {
                        dst[r] = tile[(r * nr) + m];
                    }
                }
                else
                {
                    for (int r = 0; r < valid; r++)
                    {
                        dst[r] = tile[(r * nr) + m] + job->Bias[n0 + r];
                    }
                }
            }
        }
    }

    private unsafe struct FewRowsJob
    {
        public float* X;
        public float* W;
        public float* Bias;
        public float* Y;
        public float* XT;
        public float* Tail;
        public int Rows;
        public int InF;
        public int OutF;
        public int Tiles;
        public int Items;
        public int Row0;
        public int RowCount;
    }
}
