using System;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using DitCache.Tensors;

namespace DitCache.Benchmarks;

/// <summary>
/// A verbatim copy of <c>Kernels.Attention</c>'s online-softmax kernel as it was at commit 40dff24 (Kᵀ transposed
/// row-major, V read in place, key blocks of 4 micro-kernel panels: 128 keys with AVX-512, 64 with AVX2), kept so
/// that <c>attention</c> timing compares it with the current kernel in one process (docs/benchmarks/attention.md).
/// Only the public entry is renamed; its argument checks are dropped.
/// </summary>
internal static class FlashAttentionBefore
{
    // Keys per online-softmax block, in micro-kernel panels of Nr keys: 128 keys with AVX-512 (8x32 tiles), 64 with
    // AVX2 (6x16), 32 scalar (4x8). A block's scores (Mr x 128 floats, 4 KiB) stay in L1.
    private const int AttentionKeyPanels = 4;

    private static readonly GemmIsa s_attentionIsa = ManagedGemm.Resolve(GemmIsa.Auto);

    /// <summary>The most threads whose attention scratch (<see cref="AttentionScratchSize"/>) fits one array.</summary>
    public static int MaxThreadsFor(int tokens, int headDim)
    {
        KernelChecks.NonNegative(tokens, nameof(tokens));
        KernelChecks.NonNegative(headDim, nameof(headDim));
        return (int)Math.Min(int.MaxValue, Array.MaxLength / Math.Max(1, PerThreadAttentionScratch(tokens, headDim)));
    }

    /// <summary>Floats of scratch that <see cref="Attention"/> needs for these sizes: O(tokens·headDim) per thread.</summary>
    /// <exception cref="ArgumentException">A size is negative (threads: not positive), or the scratch exceeds an array.</exception>
    public static int AttentionScratchSize(int tokens, int headDim, int threads)
    {
        KernelChecks.NonNegative(tokens, nameof(tokens));
        KernelChecks.NonNegative(headDim, nameof(headDim));
        KernelChecks.Positive(threads, nameof(threads));
        long size = threads * PerThreadAttentionScratch(tokens, headDim);
        if (size > Array.MaxLength)
        {
            throw new ArgumentException($"attention scratch for {tokens} tokens, head dim {headDim}, {threads} threads exceeds an array", nameof(tokens));
        }

        return (int)size;
    }

    /// <summary>
    /// Multi-head self-attention core as in timm's <c>Attention</c> (no qk-norm): for every batch item and head,
    /// <c>softmax(q·kᵀ·headDim^-0.5)·v</c>. <paramref name="qkv"/> is (batch, tokens, 3·heads·headDim) laid out
    /// [q | k | v], head h occupying columns h·headDim .. of each part; <paramref name="output"/> is
    /// (batch, tokens, heads·headDim), heads concatenated. The (batch, head) pairs are shared among
    /// <paramref name="threads"/> threads of the engine's worker pool; <paramref name="scratch"/> holds
    /// <see cref="AttentionScratchSize"/> floats.
    /// </summary>
    /// <remarks>
    /// Flash-attention style (online softmax, Milakov &amp; Gimelshein 2018; Dao et al. 2022): the tokens×tokens
    /// score matrix is never formed. For a block of Mr queries the kernel streams over blocks of keys, keeping per
    /// query the running maximum m and the running sum l of exp((s − m)/√headDim), rescales the accumulated output
    /// when m grows, and divides by l at the end; the 1/√headDim scale is applied inside that exponential. Both block
    /// products run on <see cref="ManagedGemm"/>'s register-tiled micro-kernels (<c>RunRows</c>) reading the query,
    /// probability and value rows in place: S = Q·Kᵀ against Kᵀ packed once per head, O += P·V straight from the
    /// value rows, so only Kᵀ is ever transposed. Use <see cref="AttentionWithProbabilities"/> when the attention
    /// maps themselves are wanted.
    /// </remarks>
    /// <exception cref="ArgumentException">A span is too short, or output overlaps qkv or scratch.</exception>
    public static void Attention(ReadOnlySpan<float> qkv, Span<float> output, int batch, int tokens, int heads,
        int headDim, Span<float> scratch, int threads) =>
        AttentionOn(s_attentionIsa, qkv, output, batch, tokens, heads, headDim, scratch, threads);

    /// <summary><see cref="Attention"/> on a given micro-kernel ISA (tests).</summary>
    internal static unsafe void AttentionOn(GemmIsa isa, ReadOnlySpan<float> qkv, Span<float> output, int batch, int tokens,
        int heads, int headDim, Span<float> scratch, int threads)
    {
        CheckAttention(qkv, output, batch, tokens, heads, headDim, threads);
        long perThread = PerThreadAttentionScratch(tokens, headDim);
        KernelChecks.Length(scratch.Length, perThread * threads, nameof(scratch), "AttentionScratchSize(tokens, headDim, threads)");
        KernelChecks.Disjoint(scratch, output, nameof(scratch), nameof(output));
        KernelChecks.Disjoint(qkv, scratch, nameof(qkv), nameof(scratch));
        int items = batch * heads;
        if (items == 0 || tokens == 0)
        {
            return;
        }

        fixed (float* pqkv = qkv)
        fixed (float* pout = output)
        fixed (float* pscratch = scratch)
        {
            var job = new FlashAttentionJob
            {
                Qkv = pqkv,
                Output = pout,
                Scratch = pscratch,
                PerThread = perThread,
                Tokens = tokens,
                Heads = heads,
                HeadDim = headDim,
                Scale = 1f / MathF.Sqrt(headDim),
            };
            switch (ManagedGemm.Resolve(isa))
            {
                case GemmIsa.Avx512:
                    WorkerPool.Run(&FlashAttentionHead<Avx512Kernel8x32>, &job, items, threads);
                    break;
                case GemmIsa.Avx2:
                    WorkerPool.Run(&FlashAttentionHead<Avx2Kernel6x16>, &job, items, threads);
                    break;
                default:
                    WorkerPool.Run(&FlashAttentionHead<ScalarKernel4x8>, &job, items, threads);
                    break;
            }
        }
    }

    private static void CheckAttention(ReadOnlySpan<float> qkv, Span<float> output, int batch, int tokens, int heads,
        int headDim, int threads)
    {
        KernelChecks.NonNegative(batch, nameof(batch));
        KernelChecks.NonNegative(tokens, nameof(tokens));
        KernelChecks.Positive(heads, nameof(heads));
        KernelChecks.Positive(headDim, nameof(headDim));
        KernelChecks.Positive(threads, nameof(threads));
        long width = (long)heads * headDim;
        KernelChecks.Length(qkv.Length, batch * tokens * 3 * width, nameof(qkv), $"(batch {batch}, tokens {tokens}, 3*{width})");
        KernelChecks.Length(output.Length, batch * tokens * width, nameof(output), $"(batch {batch}, tokens {tokens}, {width})");
        KernelChecks.Disjoint(qkv, output, nameof(qkv), nameof(output));
    }

    // The same for every ISA (the largest of the three layouts), so a scratch sized once fits whichever runs.
    private static long PerThreadAttentionScratch(int tokens, int headDim) => Math.Max(
        FlashLayout.Of<Avx512Kernel8x32>(tokens, headDim).Total,
        Math.Max(FlashLayout.Of<Avx2Kernel6x16>(tokens, headDim).Total, FlashLayout.Of<ScalarKernel4x8>(tokens, headDim).Total));

    private unsafe struct FlashAttentionJob
    {
        public float* Qkv;
        public float* Output;
        public float* Scratch;
        public long PerThread;
        public int Tokens;
        public int Heads;
        public int HeadDim;
        public float Scale;
    }

    /// <summary>Offsets (floats, each 64-byte aligned) of one thread's flash-attention scratch.</summary>
    private readonly struct FlashLayout
    {
        private FlashLayout(int tokens, int headDim, int mr, int nr)
        {
            long keys = RoundUp(tokens, nr), dims = RoundUp(headDim, nr), keyBlock = nr * AttentionKeyPanels;
            KeysT = 0;                                              // (headDim, keys) Kᵀ, keys past T zero
            ValueTail = KeysT + RoundUp(headDim * keys, 16);        // (tokens, Nr) V's last partial Nr columns
            QueryTail = ValueTail + RoundUp((long)tokens * nr, 16); // (Mr, headDim) a last partial query block
            Scores = QueryTail + RoundUp((long)mr * headDim, 16);   // (Mr, keyBlock) S, then P
            Out = Scores + RoundUp(mr * keyBlock, 16);              // (Mr, dims) accumulated O
            Max = Out + RoundUp(mr * dims, 16);                     // (Mr) running max of the raw scores
            Sum = Max + 16;                                         // (Mr) running sum
            Correction = Sum + 16;                                  // (Mr) exp((m_old − m_new)·scale)
            Total = Correction + 16 + 16;                           // + 16: room to align the thread's base
        }

        public long KeysT { get; }

        public long ValueTail { get; }

        public long QueryTail { get; }

        public long Scores { get; }

        public long Out { get; }

        public long Max { get; }

        public long Sum { get; }

        public long Correction { get; }

        public long Total { get; }

        public static FlashLayout Of<TKernel>(int tokens, int headDim)
            where TKernel : IGemmMicroKernel => new(tokens, headDim, TKernel.Mr, TKernel.Nr);

        private static long RoundUp(long x, int multiple) => (x + multiple - 1) / multiple * multiple;
    }

    // One (batch item, head): Kᵀ packed once, then per block of Mr queries an online softmax over blocks of keys.
    [SkipLocalsInit]
    private static unsafe void FlashAttentionHead<TKernel>(void* context, int item, int slot)
        where TKernel : IGemmMicroKernel
    {
        ref readonly FlashAttentionJob job = ref *(FlashAttentionJob*)context;
        int mr = TKernel.Mr, nr = TKernel.Nr;
        int tokens = job.Tokens, headDim = job.HeadDim, b = item / job.Heads, h = item % job.Heads;
        int width = job.Heads * headDim;
        nint ld = 3 * width;
        float* q = job.Qkv + ((long)b * tokens * ld) + (h * headDim);                           // (T, hd), stride 3D
        float* k = q + width;                                                                    // (T, hd), stride 3D
        float* v = k + width;                                                                    // (T, hd), stride 3D
        float* o = job.Output + ((long)b * tokens * width) + (h * headDim);                      // (T, hd), stride D

        FlashLayout lay = FlashLayout.Of<TKernel>(tokens, headDim);
        float* scratch = (float*)(((nint)(job.Scratch + (slot * job.PerThread)) + 63) & ~(nint)63);
        float* kt = scratch + lay.KeysT, vtail = scratch + lay.ValueTail, qtail = scratch + lay.QueryTail;
        float* sp = scratch + lay.Scores, acc = scratch + lay.Out;
        float* max = scratch + lay.Max, sum = scratch + lay.Sum, corr = scratch + lay.Correction;
        int keys = (tokens + nr - 1) / nr * nr, dims = (headDim + nr - 1) / nr * nr, fullDims = headDim / nr * nr;
        int keyBlock = nr * AttentionKeyPanels;

        PackKeysTransposed(k, ld, tokens, headDim, keys, kt);                                    // Kᵀ (hd, T↑Nr)
        if (fullDims < headDim)
        {
            PackColumns(v + fullDims, ld, tokens, headDim - fullDims, nr, vtail);                // V[:, fullDims..] (T, Nr)
        }

        for (int q0 = 0; q0 < tokens; q0 += mr)
        {
            int nq = Math.Min(mr, tokens - q0);
            float* qa = q + (q0 * ld);
            nint lda = ld;
            if (nq < mr)
            {
                PackColumns(qa, ld, nq, headDim, headDim, qtail);                                // the last queries, zero rows after
                new Span<float>(qtail + (nq * headDim), (mr - nq) * headDim).Clear();
                qa = qtail;
                lda = headDim;
            }

            new Span<float>(max, mr).Fill(float.NegativeInfinity);
            new Span<float>(sum, mr).Clear();
            new Span<float>(acc, mr * dims).Clear();
            for (int j0 = 0; j0 < tokens; j0 += keyBlock)
            {
                int nk = Math.Min(keyBlock, tokens - j0);
                for (int jr = 0; jr < nk; jr += nr)
                {
                    TKernel.RunRows(headDim, qa, lda, kt + j0 + jr, keys, sp + jr, keyBlock, add: false);  // S (Mr, nk)
                }

                OnlineSoftmaxRows(sp, mr, nk, keyBlock, job.Scale, max, sum, corr);             // S → P; m, l updated
                if (j0 > 0)
                {
                    for (int i = 0; i < mr; i++)
                    {
                        var row = new Span<float>(acc + (i * dims), dims);
                        VectorMath.ShiftScale(row, row, 0f, corr[i]);                            // O *= exp(m_old − m_new)
                    }
                }

                for (int c0 = 0; c0 < fullDims; c0 += nr)
                {
                    TKernel.RunRows(nk, sp, keyBlock, v + (j0 * ld) + c0, ld, acc + c0, dims, add: true);   // O += P·V
                }

                if (fullDims < headDim)
                {
                    TKernel.RunRows(nk, sp, keyBlock, vtail + (j0 * nr), nr, acc + fullDims, dims, add: true);
                }
            }

            for (int i = 0; i < nq; i++)
            {
                VectorMath.ShiftScale(new ReadOnlySpan<float>(acc + (i * dims), headDim),
                    new Span<float>(o + ((q0 + i) * (nint)width), headDim), 0f, 1f / sum[i]);     // out = O / l
            }
        }
    }

    // Kᵀ: dst[p·keys + j] = k[j·ld + p] for j < tokens, 0 for tokens ≤ j < keys. With AVX, 8×8 blocks go through
    // registers (the unpack/shuffle/permute transpose): a third of the instructions of element-wise copies.
    private static unsafe void PackKeysTransposed(float* k, nint ld, int tokens, int headDim, int keys, float* dst)
    {
        int j0 = 0;
        if (Avx.IsSupported)
        {
            for (; j0 <= tokens - 8; j0 += 8)
            {
                int p0 = 0;
                for (; p0 <= headDim - 8; p0 += 8)
                {
                    float* src = k + (j0 * ld) + p0;
                    BlockTranspose.Transpose8x8(src, ld, dst + (p0 * keys) + j0, keys);
                }

                for (int j = j0; j < j0 + 8; j++)
                {
                    for (int p = p0; p < headDim; p++)
                    {
                        dst[(p * keys) + j] = k[(j * ld) + p];
                    }
                }
            }
        }

        for (int j = j0; j < tokens; j++)
        {
            float* src = k + (j * ld);
            float* d = dst + j;
            for (int p = 0; p < headDim; p++)
            {
                d[p * keys] = src[p];
            }
        }

        for (int p = 0; p < headDim; p++)
        {
            new Span<float>(dst + (p * keys) + tokens, keys - tokens).Clear();
        }
    }


    // rows × cols from a strided source into a dense (rows, width) block, columns past cols zero.
    private static unsafe void PackColumns(float* src, nint ld, int rows, int cols, int width, float* dst)
    {
        for (int r = 0; r < rows; r++)
        {
            new ReadOnlySpan<float>(src + (r * ld), cols).CopyTo(new Span<float>(dst + (r * width), cols));
            new Span<float>(dst + (r * width) + cols, width - cols).Clear();
        }
    }

    // Online softmax over one key block of S (rows × cols raw scores q·k, row stride lds), row by row:
    // m' = max(m, max_j s_j), c = exp((m − m')·scale), p_j = exp((s_j − m')·scale) in place, l = l·c + Σ_j p_j.
    // The columns up to the next vector multiple (inside the block, which is a multiple of 16 wide) are set to −inf
    // first, so every row runs in whole vectors and those columns come out as p = 0.
    private static unsafe void OnlineSoftmaxRows(float* s, int rows, int cols, int lds, float scale, float* max,
        float* sum, float* corr)
    {
        int width = Vector512.IsHardwareAccelerated ? Vector512<float>.Count
            : Vector256.IsHardwareAccelerated ? Vector256<float>.Count : 1;
        int padded = (cols + width - 1) / width * width;
        Debug.Assert(padded <= lds, "the score block is a multiple of the vector width");
        for (int i = 0; i < rows; i++)
        {
            float* row = s + (i * lds);
            new Span<float>(row + cols, padded - cols).Fill(float.NegativeInfinity);
            float m0 = max[i];
            float m1 = MathF.Max(m0, RowMax(row, padded));
            float c = MathF.Exp((m0 - m1) * scale);
            sum[i] = MathF.FusedMultiplyAdd(sum[i], c, RowExpSum(row, padded, m1, scale));
            max[i] = m1;
            corr[i] = c;
        }
    }

    // max_j x[j] over n floats, n a multiple of the widest accelerated vector (or any n without one).
    private static unsafe float RowMax(float* x, int n)
    {
        if (Vector512.IsHardwareAccelerated)
        {
            Vector512<float> acc = Vector512.Load(x);
            for (int j = Vector512<float>.Count; j < n; j += Vector512<float>.Count)
            {
                acc = Vector512.Max(acc, Vector512.Load(x + j));
            }

            return HorizontalMax(Vector256.Max(acc.GetLower(), acc.GetUpper()));
        }

        if (Vector256.IsHardwareAccelerated)
        {
            Vector256<float> acc = Vector256.Load(x);
            for (int j = Vector256<float>.Count; j < n; j += Vector256<float>.Count)
            {
                acc = Vector256.Max(acc, Vector256.Load(x + j));
            }

            return HorizontalMax(acc);
        }

        float m = x[0];
        for (int j = 1; j < n; j++)
        {
            m = MathF.Max(m, x[j]);
        }

        return m;
    }

    private static float HorizontalMax(Vector256<float> v)
    {
        Vector128<float> m = Vector128.Max(v.GetLower(), v.GetUpper());
        m = Vector128.Max(m, Vector128.Shuffle(m, Vector128.Create(2, 3, 0, 1)));
        m = Vector128.Max(m, Vector128.Shuffle(m, Vector128.Create(1, 0, 3, 2)));
        return m.ToScalar();
    }

    // x[j] = exp((x[j] − shift)·scale) in place over n floats (n as in RowMax); returns Σ_j x[j].
    private static unsafe float RowExpSum(float* x, int n, float shift, float scale)
    {
        if (Vector512.IsHardwareAccelerated)
        {
            Vector512<float> sh = Vector512.Create(shift), sc = Vector512.Create(scale), acc = Vector512<float>.Zero;
            for (int j = 0; j < n; j += Vector512<float>.Count)
            {
                Vector512<float> e = ExpOperator.Invoke((Vector512.Load(x + j) - sh) * sc);
                e.Store(x + j);
                acc += e;
            }

            return Vector512.Sum(acc);
        }

        if (Vector256.IsHardwareAccelerated)
        {
            Vector256<float> sh = Vector256.Create(shift), sc = Vector256.Create(scale), acc = Vector256<float>.Zero;
            for (int j = 0; j < n; j += Vector256<float>.Count)
            {
                Vector256<float> e = ExpOperator.Invoke((Vector256.Load(x + j) - sh) * sc);
                e.Store(x + j);
                acc += e;
            }

            return Vector256.Sum(acc);
        }

        float sum = 0f;
        for (int j = 0; j < n; j++)
        {
            float e = MathF.Exp((x[j] - shift) * scale);
            x[j] = e;
            sum += e;
        }

        return sum;
    }
}
