using System;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace DitCache.Tensors;

public static partial class Kernels
{
    // Keys per online-softmax block, by micro-kernel ISA (a multiple of every Nr). Measured on Zen 4 with AVX-512 and
    // with its AVX2 path (DOTNET_EnableAVX512=0) at 64, 256 and 1024 tokens, head dim 64, block of 128 / 256 / 512
    // keys: docs/benchmarks/attention.md. With up to a block of keys the softmax is exact in one pass (no rescaling);
    // a block's scores (Mr × 256 floats, 8 KiB) stay in L1 beside the Q rows and the K panel being read.
    private const int AttentionKeyBlockAvx512 = 256;
    private const int AttentionKeyBlockAvx2 = 256;
    private const int AttentionKeyBlockScalar = 128;

    // The largest key block the scratch is sized for (AttentionOn may be given any multiple of 32 up to it).
    internal const int AttentionMaxKeyBlock = 512;

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
    /// score matrix is never formed. Per (batch item, head) K is packed once into Kᵀ panels and V into panels of the
    /// GEMM micro-kernels' layout (Nr columns, one row after another), so both block products run on
    /// <see cref="ManagedGemm"/>'s register-tiled micro-kernels over contiguous panels. For a block of Mr queries
    /// (read in place) the kernel streams over blocks of up to 256 keys, keeping per query the running maximum m and
    /// the running sum l of exp((s − m)/√headDim), rescales the accumulated output when a later block raises m, and
    /// divides by l at the end; the 1/√headDim scale is applied inside that exponential. Up to 256 tokens there is
    /// one block, so the softmax is exact in one pass. Use <see cref="AttentionWithProbabilities"/> when the
    /// attention maps themselves are wanted.
    /// </remarks>
    /// <exception cref="ArgumentException">A span is too short, or output overlaps qkv or scratch.</exception>
    public static void Attention(ReadOnlySpan<float> qkv, Span<float> output, int batch, int tokens, int heads,
        int headDim, Span<float> scratch, int threads) =>
        AttentionOn(s_attentionIsa, qkv, output, batch, tokens, heads, headDim, scratch, threads);

    /// <summary>
    /// <see cref="Attention"/> on a given micro-kernel ISA (tests) and, when <paramref name="keyBlock"/> is positive
    /// (a multiple of 32 up to <see cref="AttentionMaxKeyBlock"/>), with that many keys per block (benchmarks).
    /// </summary>
    internal static unsafe void AttentionOn(GemmIsa isa, ReadOnlySpan<float> qkv, Span<float> output, int batch, int tokens,
        int heads, int headDim, Span<float> scratch, int threads, int keyBlock = 0)
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

        GemmIsa resolved = ManagedGemm.Resolve(isa);
        if (keyBlock <= 0)
        {
            keyBlock = resolved switch
            {
                GemmIsa.Avx512 => AttentionKeyBlockAvx512,
                GemmIsa.Avx2 => AttentionKeyBlockAvx2,
                _ => AttentionKeyBlockScalar,
            };
        }

        if (keyBlock % 32 != 0 || keyBlock > AttentionMaxKeyBlock)
        {
            throw new ArgumentOutOfRangeException(nameof(keyBlock), keyBlock, $"keyBlock must be a multiple of 32 up to {AttentionMaxKeyBlock}");
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
                KeyBlock = keyBlock,
            };
            switch (resolved)
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

    // The same for every ISA and key block (the largest of the layouts), so a scratch sized once fits whichever runs.
    private static long PerThreadAttentionScratch(int tokens, int headDim) => Math.Max(
        FlashLayout.Of<Avx512Kernel8x32>(tokens, headDim, AttentionMaxKeyBlock).Total,
        Math.Max(FlashLayout.Of<Avx2Kernel6x16>(tokens, headDim, AttentionMaxKeyBlock).Total,
            FlashLayout.Of<ScalarKernel4x8>(tokens, headDim, AttentionMaxKeyBlock).Total));

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
        public int KeyBlock;
    }

    /// <summary>Offsets (floats, each 64-byte aligned) of one thread's flash-attention scratch.</summary>
    private readonly struct FlashLayout
    {
        private FlashLayout(int tokens, int headDim, int mr, int nr, int keyBlock)
        {
            long keys = RoundUp(tokens, nr), dims = RoundUp(headDim, nr);
            KeyPanels = 0;                                           // keys/Nr panels of (headDim, Nr): Kᵀ, keys past T zero
            ValuePanels = KeyPanels + RoundUp(keys * headDim, 16);   // dims/Nr panels of (keys, Nr): V, zero padded
            QueryTail = ValuePanels + RoundUp(dims * keys, 16);      // (Mr, headDim) a last partial query block
            Scores = QueryTail + RoundUp((long)mr * headDim, 16);    // (Mr, ScoreStride) S, then P
            Out = Scores + (mr * ScoreStride(keyBlock));             // (Mr, dims) accumulated O
            Max = Out + RoundUp(mr * dims, 16);                      // (Mr) running max of the raw scores
            Sum = Max + 16;                                          // (Mr) running sum
            Correction = Sum + 16;                                   // (Mr) exp((m_old − m_new)·scale)
            Total = Correction + 16 + 16;                            // + 16: room to align the thread's base
        }

        public long KeyPanels { get; }

        public long ValuePanels { get; }

        public long QueryTail { get; }

        public long Scores { get; }

        public long Out { get; }

        public long Max { get; }

        public long Sum { get; }

        public long Correction { get; }

        public long Total { get; }

        public static FlashLayout Of<TKernel>(int tokens, int headDim, int keyBlock)
            where TKernel : IGemmMicroKernel => new(tokens, headDim, TKernel.Mr, TKernel.Nr, keyBlock);

        // A score row: the key block rounded up to 32 (every Nr and every vector width divide it).
        public static int ScoreStride(int keyBlock) => (keyBlock + 31) / 32 * 32;

        private static long RoundUp(long x, int multiple) => (x + multiple - 1) / multiple * multiple;
    }

    // One (batch item, head): K and V packed once into micro-kernel panels, then per block of Mr queries a softmax
    // over blocks of keys (online across blocks), S = Q·Kᵀ and O (+)= P·V on the micro-kernels.
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

        int keys = (tokens + nr - 1) / nr * nr, dims = (headDim + nr - 1) / nr * nr;
        int keyBlock = Math.Min(job.KeyBlock, keys), lds = FlashLayout.ScoreStride(job.KeyBlock);
        FlashLayout lay = FlashLayout.Of<TKernel>(tokens, headDim, job.KeyBlock);
        float* scratch = (float*)(((nint)(job.Scratch + (slot * job.PerThread)) + 63) & ~(nint)63);
        float* kp = scratch + lay.KeyPanels, vp = scratch + lay.ValuePanels, qtail = scratch + lay.QueryTail;
        float* sp = scratch + lay.Scores, acc = scratch + lay.Out;
        float* max = scratch + lay.Max, sum = scratch + lay.Sum, corr = scratch + lay.Correction;

        PackKeyPanels(k, ld, tokens, headDim, nr, kp);                                           // Kᵀ panels (keys/Nr × (hd, Nr))
        PackValuePanels(v, ld, tokens, headDim, nr, keys, vp);                                   // V panels (dims/Nr × (keys, Nr))
        nint keyPanel = (nint)headDim * nr, valuePanel = (nint)keys * nr;

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
            for (int j0 = 0; j0 < tokens; j0 += keyBlock)
            {
                int nk = Math.Min(keyBlock, tokens - j0);
                for (int jr = 0; jr < nk; jr += nr)                                              // whole panels: keys past T score 0
                {
                    TKernel.Run(headDim, qa, lda, kp + ((j0 + jr) / nr * keyPanel), sp + jr, lds, add: false);   // S (Mr, nk↑Nr)
                }

                OnlineSoftmaxRows(sp, mr, nk, lds, job.Scale, max, sum, corr);                   // S → P; m, l updated
                if (j0 > 0)
                {
                    for (int i = 0; i < mr; i++)
                    {
                        var row = new Span<float>(acc + (i * dims), dims);
                        VectorMath.ShiftScale(row, row, 0f, corr[i]);                            // O *= exp(m_old − m_new)
                    }
                }

                for (int c0 = 0; c0 < dims; c0 += nr)
                {
                    TKernel.Run(nk, sp, lds, vp + (c0 / nr * valuePanel) + (j0 * nr), acc + c0, dims, add: j0 > 0);    // O (+)= P·V
                }
            }

            for (int i = 0; i < nq; i++)
            {
                VectorMath.ShiftScale(new ReadOnlySpan<float>(acc + (i * dims), headDim),
                    new Span<float>(o + ((q0 + i) * (nint)width), headDim), 0f, 1f / sum[i]);     // out = O / l
            }
        }
    }

    // Kᵀ in Nr-wide panels: panel J holds keys J·Nr … J·Nr + Nr − 1 as headDim steps of Nr floats,
    // dst[J·headDim·Nr + p·Nr + j] = k[(J·Nr + j)·ld + p], zero for keys past T. With AVX, 8×8 blocks go through
    // registers (the unpack/shuffle/permute transpose): a third of the instructions of element-wise copies.
    private static unsafe void PackKeyPanels(float* k, nint ld, int tokens, int headDim, int nr, float* dst)
    {
        nint panel = (nint)headDim * nr;
        if (tokens % nr != 0)
        {
            new Span<float>(dst + (tokens / nr * panel), (int)panel).Clear();                     // the last panel's padding
        }

        int j0 = 0;
        if (Avx.IsSupported && nr % 8 == 0)
        {
            for (; j0 <= tokens - 8; j0 += 8)
            {
                float* d = dst + (j0 / nr * panel) + (j0 % nr);
                int p0 = 0;
                for (; p0 <= headDim - 8; p0 += 8)
                {
                    BlockTranspose.Transpose8x8(k + (j0 * ld) + p0, ld, d + (p0 * nr), nr);
                }

                for (int j = 0; j < 8; j++)
                {
                    for (int p = p0; p < headDim; p++)
                    {
                        d[(p * nr) + j] = k[((j0 + j) * ld) + p];
                    }
                }
            }
        }

        for (int j = j0; j < tokens; j++)
        {
            float* src = k + (j * ld);
            float* d = dst + (j / nr * panel) + (j % nr);
            for (int p = 0; p < headDim; p++)
            {
                d[p * nr] = src[p];
            }
        }
    }

    // V in Nr-wide column panels: panel C holds columns C·Nr … C·Nr + Nr − 1 as `keys` rows of Nr floats,
    // dst[C·keys·Nr + j·Nr + c] = v[j·ld + C·Nr + c], zero past headDim and for rows past T.
    private static unsafe void PackValuePanels(float* v, nint ld, int tokens, int headDim, int nr, int keys, float* dst)
    {
        nint panel = (nint)keys * nr;
        for (int c0 = 0; c0 < headDim; c0 += nr)
        {
            int cols = Math.Min(nr, headDim - c0);
            float* d = dst + (c0 / nr * panel);
            PackColumns(v + c0, ld, tokens, cols, nr, d);
            new Span<float>(d + ((nint)tokens * nr), (keys - tokens) * nr).Clear();
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
    // The columns up to the next vector multiple (inside the row: the score stride is a multiple of 32) are set to
    // −inf first, so every row runs in whole vectors and those columns come out as p = 0; P·V reads the first cols.
    private static unsafe void OnlineSoftmaxRows(float* s, int rows, int cols, int lds, float scale, float* max,
        float* sum, float* corr)
    {
        int width = Vector512.IsHardwareAccelerated ? Vector512<float>.Count
            : Vector256.IsHardwareAccelerated ? Vector256<float>.Count : 1;
        int padded = (cols + width - 1) / width * width;
        Debug.Assert(padded <= lds, "the score stride is a multiple of 32 and covers the block");
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
