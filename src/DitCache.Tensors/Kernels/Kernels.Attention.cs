using System;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace DitCache.Tensors;

public static partial class Kernels
{
    // Keys per online-softmax block, in micro-kernel panels of Mr keys: 64 keys with AVX-512 (8x32 tiles), 48 with
    // AVX2 (6x16), 32 scalar (4x8). The block's scores (keys x Nr queries, 8 KiB with AVX-512) stay in L1.
    private const int AttentionKeyPanels = 8;

    private static readonly GemmIsa s_attentionIsa = ManagedGemm.Resolve(GemmIsa.Auto);

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
    /// score matrix is never formed. For a block of queries the kernel streams over blocks of keys, keeping per
    /// query the running maximum m and the running sum l of exp(s − m), rescaling the accumulated output when m
    /// grows, and divides by l at the end. The 1/√headDim scale is folded into the packed queries. Both block
    /// products run on <see cref="ManagedGemm"/>'s register-tiled micro-kernels, in transposed form so that no
    /// block is repacked: Sᵀ (keys × queries) = K·Qᵀ, and Oᵀ (headDim × queries) += Vᵀ·Pᵀ, with queries in the
    /// vector lanes, so the softmax bookkeeping is lane-wise too. Use <see cref="AttentionWithProbabilities"/> when
    /// the attention maps themselves are wanted.
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
            long dims = RoundUp(headDim, mr), keys = RoundUp(tokens, mr), keyBlock = mr * AttentionKeyPanels;
            QueriesT = 0;                                           // (headDim, Nr) one query block, transposed
            Keys = QueriesT + RoundUp((long)headDim * nr, 16);      // (keys, headDim) in Mr-key panels
            ValuesT = Keys + RoundUp(keys * headDim, 16);           // (dims, tokens) in Mr-dim panels
            Scores = ValuesT + RoundUp(dims * tokens, 16);          // (keyBlock, Nr) Sᵀ, then Pᵀ
            OutT = Scores + RoundUp(keyBlock * nr, 16);             // (dims, Nr) accumulated Oᵀ
            Max = OutT + RoundUp(dims * nr, 16);                    // (Nr) running max
            Sum = Max + RoundUp(nr, 16);                            // (Nr) running sum
            Correction = Sum + RoundUp(nr, 16);                     // (Nr) exp(m_old − m_new)
            Total = Correction + RoundUp(nr, 16) + 16;              // + 16: room to align the thread's base
        }

        public long QueriesT { get; }

        public long Keys { get; }

        public long ValuesT { get; }

        public long Scores { get; }

        public long OutT { get; }

        public long Max { get; }

        public long Sum { get; }

        public long Correction { get; }

        public long Total { get; }

        public static FlashLayout Of<TKernel>(int tokens, int headDim)
            where TKernel : IGemmMicroKernel => new(tokens, headDim, TKernel.Mr, TKernel.Nr);

        private static long RoundUp(long x, int multiple) => (x + multiple - 1) / multiple * multiple;
    }

    // One (batch item, head): pack K and Vᵀ once, then per block of Nr queries stream over blocks of keys.
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
        float* qt = scratch + lay.QueriesT, kp = scratch + lay.Keys, vt = scratch + lay.ValuesT;
        float* st = scratch + lay.Scores, ot = scratch + lay.OutT;
        float* max = scratch + lay.Max, sum = scratch + lay.Sum, corr = scratch + lay.Correction;
        int dims = (headDim + mr - 1) / mr * mr, keyBlock = mr * AttentionKeyPanels;

        PackKeyPanels(k, ld, tokens, headDim, mr, kp);                                           // K  (T↑Mr, hd)
        PackValuePanels(v, ld, tokens, headDim, mr, vt);                                         // Vᵀ (hd↑Mr, T)
        for (int q0 = 0; q0 < tokens; q0 += nr)
        {
            int nq = Math.Min(nr, tokens - q0);
            PackQueriesTransposed(q + (q0 * ld), ld, nq, headDim, nr, job.Scale, qt);           // Qᵀ·scale (hd, Nr)
            new Span<float>(max, nr).Fill(float.NegativeInfinity);
            new Span<float>(sum, nr).Clear();
            new Span<float>(ot, dims * nr).Clear();
            for (int j0 = 0; j0 < tokens; j0 += keyBlock)
            {
                int nk = Math.Min(keyBlock, tokens - j0);
                for (int jr = 0; jr < nk; jr += mr)
                {
                    TKernel.Run(headDim, kp + ((long)(j0 + jr) * headDim), qt, st + (jr * nr), nr, add: false);   // Sᵀ (nk, Nr)
                }

                OnlineSoftmaxBlock(st, nk, nr, max, sum, corr);                                  // Sᵀ → Pᵀ; m, l updated
                if (j0 > 0)
                {
                    ScaleLanes(ot, dims, nr, corr);                                              // Oᵀ[:, i] *= exp(m_old − m_new)
                }

                for (int pr = 0; pr < dims; pr += mr)
                {
                    TKernel.Run(nk, vt + ((long)pr * tokens) + (j0 * mr), st, ot + (pr * nr), nr, add: true);    // Oᵀ += Vᵀ·Pᵀ
                }
            }

            for (int i = 0; i < nq; i++)
            {
                float inv = 1f / sum[i];
                float* dst = o + ((long)(q0 + i) * width);
                for (int p = 0; p < headDim; p++)
                {
                    dst[p] = ot[(p * nr) + i] * inv;                                             // out = Oᵀᵀ / l
                }
            }
        }
    }

    // K rows → panels of Mr keys, each headDim steps of Mr floats (the micro-kernel's A layout); keys past T are 0.
    private static unsafe void PackKeyPanels(float* k, nint ld, int tokens, int headDim, int mr, float* dst)
    {
        for (int j0 = 0; j0 < tokens; j0 += mr)
        {
            float* panel = dst + ((long)j0 * headDim);
            for (int r = 0; r < mr; r++)
            {
                float* d = panel + r;
                if (j0 + r < tokens)
                {
                    float* src = k + ((j0 + r) * ld);
                    for (int p = 0; p < headDim; p++)
                    {
                        d[p * mr] = src[p];
                    }
                }
                else
                {
                    for (int p = 0; p < headDim; p++)
                    {
                        d[p * mr] = 0f;
                    }
                }
            }
        }
    }

    // Vᵀ → panels of Mr head dimensions, each T steps (keys) of Mr floats; dimensions past headDim are 0.
    private static unsafe void PackValuePanels(float* v, nint ld, int tokens, int headDim, int mr, float* dst)
    {
        for (int p0 = 0; p0 < headDim; p0 += mr)
        {
            float* panel = dst + ((long)p0 * tokens);
            int valid = Math.Min(mr, headDim - p0);
            for (int j = 0; j < tokens; j++)
            {
                float* src = v + (j * ld) + p0;
                float* d = panel + (j * mr);
                for (int r = 0; r < valid; r++)
                {
                    d[r] = src[r];
                }

                for (int r = valid; r < mr; r++)
                {
                    d[r] = 0f;
                }
            }
        }
    }

    // Qᵀ·scale for nq ≤ Nr queries → headDim steps of Nr floats (the micro-kernel's B layout); missing queries are 0.
    private static unsafe void PackQueriesTransposed(float* q, nint ld, int nq, int headDim, int nr, float scale, float* dst)
    {
        for (int i = 0; i < nr; i++)
        {
            float* d = dst + i;
            if (i < nq)
            {
                float* src = q + (i * ld);
                for (int p = 0; p < headDim; p++)
                {
                    d[p * nr] = src[p] * scale;
                }
            }
            else
            {
                for (int p = 0; p < headDim; p++)
                {
                    d[p * nr] = 0f;
                }
            }
        }
    }

    // Online softmax over one key block of Sᵀ (rows = nk keys, Nr query lanes), lane-wise: m' = max(m, max_j s_j),
    // c = exp(m − m'), p_j = exp(s_j − m') in place, l = l·c + Σ_j p_j, m = m'. Writes c to corr.
    private static unsafe void OnlineSoftmaxBlock(float* s, int rows, int nr, float* max, float* sum, float* corr)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            for (; i <= nr - Vector512<float>.Count; i += Vector512<float>.Count)
            {
                Vector512<float> m = Vector512.Load(max + i);
                Vector512<float> blockMax = Vector512.Load(s + i);
                for (int j = 1; j < rows; j++)
                {
                    blockMax = Vector512.Max(blockMax, Vector512.Load(s + (j * nr) + i));
                }

                Vector512<float> m1 = Vector512.Max(m, blockMax);
                Vector512<float> c = ExpOperator.Invoke(m - m1);
                Vector512<float> acc = Vector512<float>.Zero;
                for (int j = 0; j < rows; j++)
                {
                    Vector512<float> e = ExpOperator.Invoke(Vector512.Load(s + (j * nr) + i) - m1);
                    e.Store(s + (j * nr) + i);
                    acc += e;
                }

                Vector512.FusedMultiplyAdd(Vector512.Load(sum + i), c, acc).Store(sum + i);
                m1.Store(max + i);
                c.Store(corr + i);
            }
        }

        if (Vector256.IsHardwareAccelerated)
        {
            for (; i <= nr - Vector256<float>.Count; i += Vector256<float>.Count)
            {
                Vector256<float> m = Vector256.Load(max + i);
                Vector256<float> blockMax = Vector256.Load(s + i);
                for (int j = 1; j < rows; j++)
                {
                    blockMax = Vector256.Max(blockMax, Vector256.Load(s + (j * nr) + i));
                }

                Vector256<float> m1 = Vector256.Max(m, blockMax);
                Vector256<float> c = ExpOperator.Invoke(m - m1);
                Vector256<float> acc = Vector256<float>.Zero;
                for (int j = 0; j < rows; j++)
                {
                    Vector256<float> e = ExpOperator.Invoke(Vector256.Load(s + (j * nr) + i) - m1);
                    e.Store(s + (j * nr) + i);
                    acc += e;
                }

                Vector256.FusedMultiplyAdd(Vector256.Load(sum + i), c, acc).Store(sum + i);
                m1.Store(max + i);
                c.Store(corr + i);
            }
        }

        for (; i < nr; i++)
        {
            float m = max[i];
            float blockMax = s[i];
            for (int j = 1; j < rows; j++)
            {
                blockMax = MathF.Max(blockMax, s[(j * nr) + i]);
            }

            float m1 = MathF.Max(m, blockMax);
            float c = MathF.Exp(m - m1);
            float acc = 0f;
            for (int j = 0; j < rows; j++)
            {
                float e = MathF.Exp(s[(j * nr) + i] - m1);
                s[(j * nr) + i] = e;
                acc += e;
            }

            sum[i] = MathF.FusedMultiplyAdd(sum[i], c, acc);
            max[i] = m1;
            corr[i] = c;
        }
    }

    // x[r, i] *= c[i] for a (rows, Nr) block.
    private static unsafe void ScaleLanes(float* x, int rows, int nr, float* c)
    {
        for (int r = 0; r < rows; r++)
        {
            float* row = x + ((long)r * nr);
            int i = 0;
            if (Vector512.IsHardwareAccelerated)
            {
                for (; i <= nr - Vector512<float>.Count; i += Vector512<float>.Count)
                {
                    (Vector512.Load(row + i) * Vector512.Load(c + i)).Store(row + i);
                }
            }

            if (Vector256.IsHardwareAccelerated)
            {
                for (; i <= nr - Vector256<float>.Count; i += Vector256<float>.Count)
                {
                    (Vector256.Load(row + i) * Vector256.Load(c + i)).Store(row + i);
                }
            }

            for (; i < nr; i++)
            {
                row[i] *= c[i];
            }
        }
    }
}
