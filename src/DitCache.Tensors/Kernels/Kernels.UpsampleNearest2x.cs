using System;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace DitCache.Tensors;

public static partial class Kernels
{
    /// <summary>
    /// PyTorch <c>F.interpolate(x, scale_factor=2.0, mode="nearest")</c> over (channels, height, width):
    /// <c>y[c, i, j] = x[c, ⌊i/2⌋, ⌊j/2⌋]</c>, <paramref name="y"/> (channels, 2·height, 2·width).
    /// </summary>
    /// <exception cref="ArgumentException">A size is negative, a span is too short, or y overlaps x.</exception>
    public static void UpsampleNearest2x(ReadOnlySpan<float> x, Span<float> y, int channels, int height, int width)
    {
        KernelChecks.NonNegative(channels, nameof(channels));
        KernelChecks.NonNegative(height, nameof(height));
        KernelChecks.NonNegative(width, nameof(width));
        long count = (long)channels * height * width;
        KernelChecks.Length(x.Length, count, nameof(x), $"(channels {channels}, {height}, {width})");
        KernelChecks.Length(y.Length, 4 * count, nameof(y), $"(channels {channels}, {2 * height}, {2 * width})");
        KernelChecks.Disjoint(x, y, nameof(x), nameof(y));
        int w2 = 2 * width;
        for (int r = 0; r < channels * height; r++)                                                // input rows, all channels
        {
            Span<float> even = y.Slice(2 * r * w2, w2);
            DuplicateEach(x.Slice(r * width, width), even);
            even.CopyTo(y.Slice(((2 * r) + 1) * w2, w2));                                          // the odd output row
        }
    }

    // d[2j] = d[2j + 1] = s[j]: with AVX-512, 16 inputs are interleaved with themselves by two permutes.
    private static void DuplicateEach(ReadOnlySpan<float> s, Span<float> d)
    {
        ref float ss = ref MemoryMarshal.GetReference(s);
        ref float ds = ref MemoryMarshal.GetReference(d);
        int n = s.Length, j = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            Vector512<int> low = Vector512.Create(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
            Vector512<int> high = Vector512.Create(8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15);
            for (; j <= n - Vector512<float>.Count; j += Vector512<float>.Count)
            {
                Vector512<float> v = Vector512.LoadUnsafe(ref ss, (nuint)j);
                Vector512.Shuffle(v, low).StoreUnsafe(ref ds, (nuint)(2 * j));
                Vector512.Shuffle(v, high).StoreUnsafe(ref ds, (nuint)((2 * j) + Vector512<float>.Count));
            }
        }

        if (Vector256.IsHardwareAccelerated)
        {
            Vector256<int> low = Vector256.Create(0, 0, 1, 1, 2, 2, 3, 3);
            Vector256<int> high = Vector256.Create(4, 4, 5, 5, 6, 6, 7, 7);
            for (; j <= n - Vector256<float>.Count; j += Vector256<float>.Count)
            {
                Vector256<float> v = Vector256.LoadUnsafe(ref ss, (nuint)j);
                Vector256.Shuffle(v, low).StoreUnsafe(ref ds, (nuint)(2 * j));
                Vector256.Shuffle(v, high).StoreUnsafe(ref ds, (nuint)((2 * j) + Vector256<float>.Count));
            }
        }

        for (; j < n; j++)
        {
            float v = Unsafe.Add(ref ss, j);
            Unsafe.Add(ref ds, 2 * j) = v;
            Unsafe.Add(ref ds, (2 * j) + 1) = v;
        }
    }
}
