using System;
using System.Threading;
using System.Threading.Tasks;

namespace DitCache.Tensors;

public static partial class Kernels
{
    /// <summary>Floats of scratch that <see cref="Attention"/> needs for these sizes.</summary>
    public static int AttentionScratchSize(int tokens, int headDim, int threads)
    {
        KernelChecks.NonNegative(tokens, nameof(tokens));
        KernelChecks.NonNegative(headDim, nameof(headDim));
        KernelChecks.Positive(threads, nameof(threads));
        long size = (long)threads * PerThreadAttentionScratch(tokens, headDim);
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
    /// <paramref name="threads"/> threads; <paramref name="scratch"/> holds
    /// <see cref="AttentionScratchSize"/> floats.
    /// </summary>
    /// <exception cref="ArgumentException">A span is too short, or output overlaps qkv or scratch.</exception>
    public static unsafe void Attention(ReadOnlySpan<float> qkv, Span<float> output, int batch, int tokens, int heads,
        int headDim, Span<float> scratch, int threads)
    {
        KernelChecks.NonNegative(batch, nameof(batch));
        KernelChecks.NonNegative(tokens, nameof(tokens));
        KernelChecks.Positive(heads, nameof(heads));
        KernelChecks.Positive(headDim, nameof(headDim));
        KernelChecks.Positive(threads, nameof(threads));
        int width = heads * headDim;
        KernelChecks.Length(qkv.Length, (long)batch * tokens * 3 * width, nameof(qkv), $"(batch {batch}, tokens {tokens}, 3*{width})");
        KernelChecks.Length(output.Length, (long)batch * tokens * width, nameof(output), $"(batch {batch}, tokens {tokens}, {width})");
        int perThread = PerThreadAttentionScratch(tokens, headDim);
        KernelChecks.Length(scratch.Length, (long)perThread * threads, nameof(scratch), "AttentionScratchSize(tokens, headDim, threads)");
        KernelChecks.Disjoint(qkv, output, nameof(qkv), nameof(output));
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
            int workers = Math.Min(threads, items);
            if (workers == 1)
            {
                for (int item = 0; item < items; item++)
                {
                    AttentionHead(pqkv, pout, pscratch, item / heads, item % heads, tokens, heads, headDim);
                }

                return;
            }

            nint iqkv = (nint)pqkv;
            nint iout = (nint)pout;
            nint iscratch = (nint)pscratch;
            int next = -1;
            Parallel.For(0, workers, new ParallelOptions { MaxDegreeOfParallelism = workers }, w =>
            {
                float* mine = (float*)iscratch + ((long)w * perThread);
                int item;
                while ((item = Interlocked.Increment(ref next)) < items)
                {
                    AttentionHead((float*)iqkv, (float*)iout, mine, item / heads, item % heads, tokens, heads, headDim);
                }
            });
        }
    }

    private static int PerThreadAttentionScratch(int tokens, int headDim) => tokens * tokens;

    // Attention runs its heads in parallel, so each head's two products use a one-thread GEMM (one level of
    // threads only); its pack buffers are per thread, so concurrent heads do not share state.
    private static readonly ManagedGemm s_headGemm = new(1);

    // One (batch item, head), read in place from the strided qkv rows: S = q·kᵀ (T, T), S = softmax(S·scale) by
    // rows, out_h = S·v written straight into the head's columns of the output.
    private static unsafe void AttentionHead(float* qkv, float* output, float* scratch, int b, int h, int tokens,
        int heads, int headDim)
    {
        int width = heads * headDim, ld = 3 * width;
        float* q = qkv + ((long)b * tokens * ld) + (h * headDim);                                // (T, hd), stride 3D
        float* k = q + width;                                                                    // (T, hd), stride 3D
        float* v = k + width;                                                                    // (T, hd), stride 3D
        float* o = output + ((long)b * tokens * width) + (h * headDim);                          // (T, hd), stride D
        int strided = ((tokens - 1) * ld) + headDim;
        var s = new Span<float>(scratch, tokens * tokens);                                       // (T, T)
        s_headGemm.Multiply(tokens, tokens, headDim, new ReadOnlySpan<float>(q, strided), ld,
            new ReadOnlySpan<float>(k, strided), ld, transB: true, s, tokens);
        float scale = 1f / MathF.Sqrt(headDim);
        for (int i = 0; i < tokens; i++)
        {
            Span<float> row = s.Slice(i * tokens, tokens);
            for (int j = 0; j < row.Length; j++)
            {
                row[j] *= scale;
            }

            SoftmaxRow(row);
        }

        s_headGemm.Multiply(tokens, headDim, tokens, s, tokens, new ReadOnlySpan<float>(v, strided), ld, transB: false,
            new Span<float>(o, ((tokens - 1) * width) + headDim), width);
    }
}
