using System;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace DitCache.Tensors;

/// <summary>
/// Span helpers the row kernels share (LayerNorm, Softmax, Modulate, …): widest accelerated vector first, then a
/// scalar tail. Reductions keep several partial sums, so results differ from a left-to-right scalar sum by rounding
/// only.
/// </summary>
internal static class VectorMath
{
    public static float Sum(ReadOnlySpan<float> x)
    {
        ref float xs = ref MemoryMarshal.GetReference(x);
        int n = x.Length;
        int i = 0;
        float sum = 0f;
        if (Vector512.IsHardwareAccelerated && n >= Vector512<float>.Count)
        {
            Vector512<float> acc = Vector512<float>.Zero;
            for (; i <= n - Vector512<float>.Count; i += Vector512<float>.Count)
            {
                acc += Vector512.LoadUnsafe(ref xs, (nuint)i);
            }

            sum = Vector512.Sum(acc);
        }
        else if (Vector256.IsHardwareAccelerated && n >= Vector256<float>.Count)
        {
            Vector256<float> acc = Vector256<float>.Zero;
            for (; i <= n - Vector256<float>.Count; i += Vector256<float>.Count)
            {
                acc += Vector256.LoadUnsafe(ref xs, (nuint)i);
            }

            sum = Vector256.Sum(acc);
        }

        for (; i < n; i++)
        {
            sum += Unsafe.Add(ref xs, i);
        }

        return sum;
    }

    /// <summary>Σ (x[i] − mean)².</summary>
    public static float SumSquaredDeviations(ReadOnlySpan<float> x, float mean)
    {
        ref float xs = ref MemoryMarshal.GetReference(x);
        int n = x.Length;
        int i = 0;
        float sum = 0f;
        if (Vector512.IsHardwareAccelerated && n >= Vector512<float>.Count)
        {
            Vector512<float> acc = Vector512<float>.Zero;
            Vector512<float> m = Vector512.Create(mean);
            for (; i <= n - Vector512<float>.Count; i += Vector512<float>.Count)
            {
                Vector512<float> d = Vector512.LoadUnsafe(ref xs, (nuint)i) - m;
                acc = Vector512.FusedMultiplyAdd(d, d, acc);
            }

            sum = Vector512.Sum(acc);
        }
        else if (Vector256.IsHardwareAccelerated && n >= Vector256<float>.Count)
        {
            Vector256<float> acc = Vector256<float>.Zero;
            Vector256<float> m = Vector256.Create(mean);
            for (; i <= n - Vector256<float>.Count; i += Vector256<float>.Count)
            {
                Vector256<float> d = Vector256.LoadUnsafe(ref xs, (nuint)i) - m;
                acc = Vector256.FusedMultiplyAdd(d, d, acc);
            }

            sum = Vector256.Sum(acc);
        }

        for (; i < n; i++)
        {
            float d = Unsafe.Add(ref xs, i) - mean;
            sum += d * d;
        }

        return sum;
    }

    public static float Max(ReadOnlySpan<float> x)
    {
        ref float xs = ref MemoryMarshal.GetReference(x);
        int n = x.Length;
        int i = 0;
        float max = float.NegativeInfinity;
        if (Vector512.IsHardwareAccelerated && n >= Vector512<float>.Count)
        {
            Vector512<float> acc = Vector512.Create(float.NegativeInfinity);
            for (; i <= n - Vector512<float>.Count; i += Vector512<float>.Count)
            {
                acc = Vector512.Max(acc, Vector512.LoadUnsafe(ref xs, (nuint)i));
            }

            for (int l = 0; l < Vector512<float>.Count; l++)
            {
                max = MathF.Max(max, acc[l]);
            }
        }
        else if (Vector256.IsHardwareAccelerated && n >= Vector256<float>.Count)
        {
            Vector256<float> acc = Vector256.Create(float.NegativeInfinity);
            for (; i <= n - Vector256<float>.Count; i += Vector256<float>.Count)
            {
                acc = Vector256.Max(acc, Vector256.LoadUnsafe(ref xs, (nuint)i));
            }

            for (int l = 0; l < Vector256<float>.Count; l++)
            {
                max = MathF.Max(max, acc[l]);
            }
        }

        for (; i < n; i++)
        {
            max = MathF.Max(max, Unsafe.Add(ref xs, i));
        }

        return max;
    }

    /// <summary>y[i] = (x[i] − shift)·scale; y may be x.</summary>
    public static void ShiftScale(ReadOnlySpan<float> x, Span<float> y, float shift, float scale)
    {
        ref float xs = ref MemoryMarshal.GetReference(x);
        ref float ys = ref MemoryMarshal.GetReference(y);
        int n = x.Length;
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            Vector512<float> sh = Vector512.Create(shift);
            Vector512<float> sc = Vector512.Create(scale);
            for (; i <= n - Vector512<float>.Count; i += Vector512<float>.Count)
            {
                ((Vector512.LoadUnsafe(ref xs, (nuint)i) - sh) * sc).StoreUnsafe(ref ys, (nuint)i);
            }
        }

        if (Vector256.IsHardwareAccelerated)
        {
            Vector256<float> sh = Vector256.Create(shift);
            Vector256<float> sc = Vector256.Create(scale);
            for (; i <= n - Vector256<float>.Count; i += Vector256<float>.Count)
            {
                ((Vector256.LoadUnsafe(ref xs, (nuint)i) - sh) * sc).StoreUnsafe(ref ys, (nuint)i);
            }
        }

        for (; i < n; i++)
        {
            Unsafe.Add(ref ys, i) = (Unsafe.Add(ref xs, i) - shift) * scale;
        }
    }

    /// <summary>x[i] = exp(x[i] − shift) in place; returns Σ of the new values.</summary>
    public static float ExpShiftedSum(Span<float> x, float shift)
    {
        ref float xs = ref MemoryMarshal.GetReference(x);
        int n = x.Length;
        int i = 0;
        float sum = 0f;
        if (Vector512.IsHardwareAccelerated)
        {
            Vector512<float> sh = Vector512.Create(shift);
            Vector512<float> acc = Vector512<float>.Zero;
            for (; i <= n - Vector512<float>.Count; i += Vector512<float>.Count)
            {
                Vector512<float> e = ExpOperator.Invoke(Vector512.LoadUnsafe(ref xs, (nuint)i) - sh);
                e.StoreUnsafe(ref xs, (nuint)i);
                acc += e;
            }

            sum = Vector512.Sum(acc);
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            Vector256<float> sh = Vector256.Create(shift);
            Vector256<float> acc = Vector256<float>.Zero;
            for (; i <= n - Vector256<float>.Count; i += Vector256<float>.Count)
            {
                Vector256<float> e = ExpOperator.Invoke(Vector256.LoadUnsafe(ref xs, (nuint)i) - sh);
                e.StoreUnsafe(ref xs, (nuint)i);
                acc += e;
            }

            sum = Vector256.Sum(acc);
        }

        for (; i < n; i++)
        {
            float e = MathF.Exp(Unsafe.Add(ref xs, i) - shift);
            Unsafe.Add(ref xs, i) = e;
            sum += e;
        }

        return sum;
    }

    /// <summary>x[i] += b[i].</summary>
    public static void AddInPlace(Span<float> x, ReadOnlySpan<float> b)
    {
        ref float xs = ref MemoryMarshal.GetReference(x);
        ref float bs = ref MemoryMarshal.GetReference(b);
        int n = x.Length;
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            for (; i <= n - Vector512<float>.Count; i += Vector512<float>.Count)
            {
                (Vector512.LoadUnsafe(ref xs, (nuint)i) + Vector512.LoadUnsafe(ref bs, (nuint)i)).StoreUnsafe(ref xs, (nuint)i);
            }
        }

        if (Vector256.IsHardwareAccelerated)
        {
            for (; i <= n - Vector256<float>.Count; i += Vector256<float>.Count)
            {
                (Vector256.LoadUnsafe(ref xs, (nuint)i) + Vector256.LoadUnsafe(ref bs, (nuint)i)).StoreUnsafe(ref xs, (nuint)i);
            }
        }

        for (; i < n; i++)
        {
            Unsafe.Add(ref xs, i) += Unsafe.Add(ref bs, i);
        }
    }

    /// <summary>x[i] += g[i]·y[i].</summary>
    public static void MultiplyAddInPlace(Span<float> x, ReadOnlySpan<float> g, ReadOnlySpan<float> y)
    {
        ref float xs = ref MemoryMarshal.GetReference(x);
        ref float gs = ref MemoryMarshal.GetReference(g);
        ref float ys = ref MemoryMarshal.GetReference(y);
        int n = x.Length;
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            for (; i <= n - Vector512<float>.Count; i += Vector512<float>.Count)
            {
                Vector512.FusedMultiplyAdd(
                    Vector512.LoadUnsafe(ref gs, (nuint)i),
                    Vector512.LoadUnsafe(ref ys, (nuint)i),
                    Vector512.LoadUnsafe(ref xs, (nuint)i)).StoreUnsafe(ref xs, (nuint)i);
            }
        }

        if (Vector256.IsHardwareAccelerated)
        {
            for (; i <= n - Vector256<float>.Count; i += Vector256<float>.Count)
            {
                Vector256.FusedMultiplyAdd(
                    Vector256.LoadUnsafe(ref gs, (nuint)i),
                    Vector256.LoadUnsafe(ref ys, (nuint)i),
                    Vector256.LoadUnsafe(ref xs, (nuint)i)).StoreUnsafe(ref xs, (nuint)i);
            }
        }

        for (; i < n; i++)
        {
            Unsafe.Add(ref xs, i) = MathF.FusedMultiplyAdd(Unsafe.Add(ref gs, i), Unsafe.Add(ref ys, i), Unsafe.Add(ref xs, i));
        }
    }

    /// <summary>y[i] = x[i]·(1 + scale[i]) + shift[i]; y may be x.</summary>
    public static void Modulate(ReadOnlySpan<float> x, Span<float> y, ReadOnlySpan<float> shift, ReadOnlySpan<float> scale)
    {
        ref float xs = ref MemoryMarshal.GetReference(x);
        ref float ys = ref MemoryMarshal.GetReference(y);
        ref float sh = ref MemoryMarshal.GetReference(shift);
        ref float sc = ref MemoryMarshal.GetReference(scale);
        int n = x.Length;
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            for (; i <= n - Vector512<float>.Count; i += Vector512<float>.Count)
            {
                Vector512<float> s = Vector512<float>.One + Vector512.LoadUnsafe(ref sc, (nuint)i);
                Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref xs, (nuint)i), s, Vector512.LoadUnsafe(ref sh, (nuint)i))
                    .StoreUnsafe(ref ys, (nuint)i);
            }
        }

        if (Vector256.IsHardwareAccelerated)
        {
            for (; i <= n - Vector256<float>.Count; i += Vector256<float>.Count)
            {
                Vector256<float> s = Vector256<float>.One + Vector256.LoadUnsafe(ref sc, (nuint)i);
                Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref xs, (nuint)i), s, Vector256.LoadUnsafe(ref sh, (nuint)i))
                    .StoreUnsafe(ref ys, (nuint)i);
            }
        }

        for (; i < n; i++)
        {
            Unsafe.Add(ref ys, i) = MathF.FusedMultiplyAdd(Unsafe.Add(ref xs, i), 1f + Unsafe.Add(ref sc, i), Unsafe.Add(ref sh, i));
        }
    }
}
