using System;
using Xunit;

namespace DitCache.Tensors.Tests;

/// <summary>Random fills, canary guards and tolerance checks shared by the kernel and GEMM tests.</summary>
internal static class TestUtil
{
    /// <summary>Written past the end of every output; a kernel that touches it overran its span.</summary>
    public const float Canary = -12345.5f;

    public const int CanaryLength = 17;

    public static float[] Random(int length, int seed, float scale = 1f)
    {
        var rng = new Random(seed);
        float[] x = new float[length];
        for (int i = 0; i < length; i++)
        {
            x[i] = (float)((rng.NextDouble() * 2.0) - 1.0) * scale;
        }

        return x;
    }

    /// <summary>An output buffer of <paramref name="length"/> useful floats followed by a canary tail.</summary>
    public static float[] Guarded(int length)
    {
        float[] y = new float[length + CanaryLength];
        y.AsSpan(length).Fill(Canary);
        return y;
    }

    public static void AssertCanaries(float[] y, int length)
    {
        for (int i = length; i < y.Length; i++)
        {
            Assert.True(BitConverter.SingleToInt32Bits(y[i]) == BitConverter.SingleToInt32Bits(Canary),
                $"canary at {i} (useful length {length}) overwritten with {y[i]}");
        }
    }

    /// <summary>|actual − expected| ≤ abs + rel·|expected| element-wise over the first <paramref name="length"/>.</summary>
    public static void AssertClose(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, int length, double rel, double abs,
        string what)
    {
        for (int i = 0; i < length; i++)
        {
            double e = expected[i];
            double a = actual[i];
            double tol = abs + (rel * Math.Abs(e));
            Assert.True(Math.Abs(a - e) <= tol || (double.IsNaN(e) && double.IsNaN(a)),
                $"{what}: at {i} expected {e:R} got {a:R} (|diff| {Math.Abs(a - e):E2} > tol {tol:E2})");
        }
    }

    public static void AssertEqual(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, int length, string what)
    {
        for (int i = 0; i < length; i++)
        {
            Assert.True(BitConverter.SingleToInt32Bits(expected[i]) == BitConverter.SingleToInt32Bits(actual[i]),
                $"{what}: at {i} expected {expected[i]:R} got {actual[i]:R}");
        }
    }
}
