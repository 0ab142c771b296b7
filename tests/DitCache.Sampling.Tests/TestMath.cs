using System;
using Xunit;

namespace DitCache.Sampling.Tests;

internal static class TestMath
{
    /// <summary>Asserts max |actual − expected| ≤ tol · max |expected| (and that the reference is not all zeros).</summary>
    public static void AssertClose(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, double tol, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        double scale = 0, err = 0;
        int worst = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            scale = Math.Max(scale, Math.Abs(expected[i]));
            double e = Math.Abs((double)actual[i] - expected[i]);
            if (!(e <= err))
            {
                err = e;
                worst = i;
            }
        }

        Assert.True(scale > 0, $"{what}: reference is all zeros");
        Assert.True(err <= tol * scale, $"{what}: max abs error {err:E3} at [{worst}] (expected {expected[worst]}, got {actual[worst]}) exceeds {tol:E1} x {scale:E3}");
    }
}
