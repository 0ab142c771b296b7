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

    private static int PerThreadAttentionScratch(int tokens, int headDim) => (3 * tokens * headDim) + (tokens * tokens);

    // One (batch item, head): gather q, k, v of the head into contiguous (tokens, headDim) blocks, S = q·kᵀ·scale,
    // softmax rows of S, out = S·v.
    private static unsafe void AttentionHead(float* qkv, float* output, float* scratch, int b, int h, int tokens,
        int heads, int headDim)
    {
        int width = heads * headDim;
        float* q = scratch;
        float* k = q + (tokens * headDim);
        float* v = k + (tokens * headDim);
        float* s = v + (tokens * headDim);
        float* src = qkv + ((long)b * tokens * 3 * width) + (h * headDim);
        for (int t = 0; t < tokens; t++)
        {
            float* row = src + ((long)t * 3 * width);
            new ReadOnlySpan<float>(row, headDim).CopyTo(new Span<float>(q + (t * headDim), headDim));
            new ReadOnlySpan<float>(row + width, headDim).CopyTo(new Span<float>(k + (t * headDim), headDim));
            new ReadOnlySpan<float>(row + (2 * width), headDim).CopyTo(new Span<float>(v + (t * headDim), headDim));
        }

        float scale = 1f / MathF.Sqrt(headDim);
        for (int i = 0; i < tokens; i++)
        {
            float* qi = q + (i * headDim);
            float* si = s + (i * tokens);
            for (int j = 0; j < tokens; j++)
            {
                float* kj = k + (j * headDim);
                float dot = 0f;
                for (int d = 0; d < headDim; d++)
                {
                    dot += qi[d] * kj[d];
                }

                si[j] = dot * scale;
            }

            SoftmaxRow(new Span<float>(si, tokens));
            float* oi = output + ((long)b * tokens * width) + ((long)i * width) + (h * headDim);
            new Span<float>(oi, headDim).Clear();
            for (int j = 0; j < tokens; j++)
            {
                float p = si[j];
                float* vj = v + (j * headDim);
                for (int d = 0; d < headDim; d++)
                {
                    oi[d] += p * vj[d];
                }
            }
        }
    }
}
