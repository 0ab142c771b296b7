using System;

namespace DitCache.Tensors;

public static partial class Kernels
{
    /// <summary>
    /// Multi-head self-attention that also keeps its attention maps, for token-wise caching methods (ToCa and
    /// relatives) that rank tokens by the attention they receive. Computes the same output as <see cref="Attention"/>
    /// the explicit way: per (batch item, head), <c>P = softmax(q·kᵀ·headDim^-0.5)</c> by rows into
    /// <paramref name="probabilities"/> (batch, heads, tokens, tokens), then <c>out_h = P·v</c>. Layouts of
    /// <paramref name="qkv"/> and <paramref name="output"/> as in <see cref="Attention"/>. The (batch, head) pairs
    /// are shared among <paramref name="threads"/> threads of the engine's worker pool. O(tokens²) memory per head:
    /// use <see cref="Attention"/> when the maps are not needed.
    /// </summary>
    /// <exception cref="ArgumentException">A span is too short, or the spans overlap.</exception>
    public static unsafe void AttentionWithProbabilities(ReadOnlySpan<float> qkv, Span<float> output,
        Span<float> probabilities, int batch, int tokens, int heads, int headDim, int threads)
    {
        CheckAttention(qkv, output, batch, tokens, heads, headDim, threads);
        KernelChecks.Length(probabilities.Length, (long)batch * heads * tokens * tokens, nameof(probabilities),
            $"(batch {batch}, heads {heads}, tokens {tokens}, tokens {tokens})");
        KernelChecks.Disjoint(probabilities, output, nameof(probabilities), nameof(output));
        KernelChecks.Disjoint(qkv, probabilities, nameof(qkv), nameof(probabilities));
        int items = batch * heads;
        if (items == 0 || tokens == 0)
        {
            return;
        }

        fixed (float* pqkv = qkv)
        fixed (float* pout = output)
        fixed (float* pprob = probabilities)
        {
            var job = new ExplicitAttentionJob
            {
                Qkv = pqkv,
                Output = pout,
                Probabilities = pprob,
                Tokens = tokens,
                Heads = heads,
                HeadDim = headDim,
            };
            WorkerPool.Run(&ExplicitAttentionHead, &job, items, threads);
        }
    }

    // The heads run in parallel, so each head's two products use a one-thread GEMM (one level of threads only; a
    // GEMM call from inside a pool region would run inline anyway). Its pack buffers are per thread.
    private static readonly ManagedGemm s_headGemm = new(1);

    private unsafe struct ExplicitAttentionJob
    {
        public float* Qkv;
        public float* Output;
        public float* Probabilities;
        public int Tokens;
        public int Heads;
        public int HeadDim;
    }

    // One (batch item, head), read in place from the strided qkv rows: P = q·kᵀ (T, T), P = softmax(P·scale) by
    // rows, out_h = P·v written straight into the head's columns of the output.
    private static unsafe void ExplicitAttentionHead(void* context, int item, int slot)
    {
        ref readonly ExplicitAttentionJob job = ref *(ExplicitAttentionJob*)context;
        int tokens = job.Tokens, headDim = job.HeadDim, b = item / job.Heads, h = item % job.Heads;
        int width = job.Heads * headDim, ld = 3 * width;
        float* q = job.Qkv + ((long)b * tokens * ld) + (h * headDim);                           // (T, hd), stride 3D
        float* k = q + width;                                                                    // (T, hd), stride 3D
        float* v = k + width;                                                                    // (T, hd), stride 3D
        float* o = job.Output + ((long)b * tokens * width) + (h * headDim);                      // (T, hd), stride D
        int strided = ((tokens - 1) * ld) + headDim;
        var p = new Span<float>(job.Probabilities + ((long)item * tokens * tokens), tokens * tokens);   // (T, T)
        s_headGemm.Multiply(tokens, tokens, headDim, new ReadOnlySpan<float>(q, strided), ld,
            new ReadOnlySpan<float>(k, strided), ld, transB: true, p, tokens);
        float scale = 1f / MathF.Sqrt(headDim);
        for (int i = 0; i < tokens; i++)
        {
            Span<float> row = p.Slice(i * tokens, tokens);
            VectorMath.ShiftScale(row, row, 0f, scale);
            SoftmaxRow(row);
        }

        s_headGemm.Multiply(tokens, headDim, tokens, p, tokens, new ReadOnlySpan<float>(v, strided), ld, transB: false,
            new Span<float>(o, ((tokens - 1) * width) + headDim), width);
    }
}
