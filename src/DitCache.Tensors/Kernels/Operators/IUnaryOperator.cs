using System;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace DitCache.Tensors;

/// <summary>An element-wise float op with scalar and vector forms (TensorPrimitives' operator-struct pattern).</summary>
internal interface IUnaryOperator
{
    static abstract float Invoke(float x);

    static abstract Vector256<float> Invoke(Vector256<float> x);

    static abstract Vector512<float> Invoke(Vector512<float> x);
}

/// <summary>Applies an <see cref="IUnaryOperator"/> over a span, widest accelerated vector first, scalar tail.</summary>
internal static class UnaryApply
{
    /// <summary>y[i] = op(x[i]); y may be x itself (each element is read before it is written).</summary>
    public static void Run<TOp>(ReadOnlySpan<float> x, Span<float> y)
        where TOp : IUnaryOperator
    {
        int n = x.Length;
        ref float xs = ref MemoryMarshal.GetReference(x);
        ref float ys = ref MemoryMarshal.GetReference(y);
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            for (; i <= n - Vector512<float>.Count; i += Vector512<float>.Count)
            {
                TOp.Invoke(Vector512.LoadUnsafe(ref xs, (nuint)i)).StoreUnsafe(ref ys, (nuint)i);
            }
        }

        if (Vector256.IsHardwareAccelerated)
        {
            for (; i <= n - Vector256<float>.Count; i += Vector256<float>.Count)
            {
                TOp.Invoke(Vector256.LoadUnsafe(ref xs, (nuint)i)).StoreUnsafe(ref ys, (nuint)i);
            }
        }

        for (; i < n; i++)
        {
            Unsafe.Add(ref ys, i) = TOp.Invoke(Unsafe.Add(ref xs, i));
        }
    }
}
