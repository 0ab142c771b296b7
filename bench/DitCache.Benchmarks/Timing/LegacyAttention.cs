using System;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Threading;
using System.Threading.Tasks;
using DitCache.Tensors;

namespace DitCache.Benchmarks;

/// <summary>
/// The attention kernel as it was before the flash kernel (commit 6c66562, Kernels.Attention.cs), kept verbatim
/// for same-process comparisons: per (batch, head) an explicit T×T score matrix, S = q·kᵀ and S·v on a one-thread
/// ManagedGemm, row softmax in between (with the BCL's Vector512.Exp, as then), heads spread over Parallel.For.
/// </summary>
internal static class LegacyAttention
{
    private static readonly ManagedGemm s_headGemm = new(1);

    public static int ScratchSize(int tokens, int threads) => threads * tokens * tokens;

    public static unsafe void Attention(ReadOnlySpan<float> qkv, Span<float> output, int batch, int tokens, int heads,
        int headDim, Span<float> scratch, int threads)
    {
        int items = batch * heads;
        int perThread = tokens * tokens;
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

    private static unsafe void AttentionHead(float* qkv, float* output, float* scratch, int b, int h, int tokens,
        int heads, int headDim)
    {
        int width = heads * headDim, ld = 3 * width;
        float* q = qkv + ((long)b * tokens * ld) + (h * headDim);
        float* k = q + width;
        float* v = k + width;
        float* o = output + ((long)b * tokens * width) + (h * headDim);
        int strided = ((tokens - 1) * ld) + headDim;
        var s = new Span<float>(scratch, tokens * tokens);
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

    // Kernels.SoftmaxRow as it was: max, then exp(x - max) with Vector512/256.Exp and the sum, then the scaling.
    private static void SoftmaxRow(Span<float> row)
    {
        float max = float.NegativeInfinity;
        foreach (float v in row)
        {
            max = MathF.Max(max, v);
        }

        ref float xs = ref MemoryMarshal.GetReference(row);
        int n = row.Length, i = 0;
        float sum = 0f;
        if (Vector512.IsHardwareAccelerated)
        {
            Vector512<float> sh = Vector512.Create(max), acc = Vector512<float>.Zero;
            for (; i <= n - Vector512<float>.Count; i += Vector512<float>.Count)
            {
                Vector512<float> e = Vector512.Exp(Vector512.LoadUnsafe(ref xs, (nuint)i) - sh);
                e.StoreUnsafe(ref xs, (nuint)i);
                acc += e;
            }

            sum = Vector512.Sum(acc);
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            Vector256<float> sh = Vector256.Create(max), acc = Vector256<float>.Zero;
            for (; i <= n - Vector256<float>.Count; i += Vector256<float>.Count)
            {
                Vector256<float> e = Vector256.Exp(Vector256.LoadUnsafe(ref xs, (nuint)i) - sh);
                e.StoreUnsafe(ref xs, (nuint)i);
                acc += e;
            }

            sum = Vector256.Sum(acc);
        }

        for (; i < n; i++)
        {
            float e = MathF.Exp(Unsafe.Add(ref xs, i) - max);
            Unsafe.Add(ref xs, i) = e;
            sum += e;
        }

        float inv = 1f / sum;
        for (int j = 0; j < n; j++)
        {
            row[j] *= inv;
        }
    }
}
