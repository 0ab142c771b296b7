using System;
using System.IO;
using DitCache.Tensors;
using DitCache.Tensors.IO;
using Xunit;

namespace DitCache.Models.Tests;

/// <summary>The PyTorch fixtures written by tools/reference/make_dit_fixtures.py, and the comparison they need.</summary>
internal static class Golden
{
    private static readonly Lazy<TensorFile> s_weights = new(() => SafeTensors.Load(PathOf("tiny_dit.safetensors")));
    private static readonly Lazy<TensorFile> s_golden = new(() => SafeTensors.Load(PathOf("tiny_dit_golden.safetensors")));

    public static TensorFile Weights => s_weights.Value;

    public static Tensor Get(string key) => s_golden.Value.Tensors[key];

    public static string PathOf(string name) => Path.Combine(AppContext.BaseDirectory, "TestData", "dit", name);

    public static int[] Labels(string key) => Array.ConvertAll(Get(key).Data, v => (int)v);

    /// <summary>
    /// Asserts max |actual − expected| ≤ tol · max |expected|. float32 round-off in a depth-2 hidden-64 DiT leaves
    /// relative errors near 1e-6; the tolerances the tests pass are 10–100x above that, far below the ~1e-1 a wrong
    /// formula gives.
    /// </summary>
    public static void Close(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, double tol, string what)
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

        Assert.True(scale > 0, $"{what}: reference is all zeros, the comparison would prove nothing");
        Assert.True(err <= tol * scale,
            $"{what}: max abs error {err:E3} at [{worst}] (expected {expected[worst]}, got {actual[worst]}) exceeds {tol:E1} x {scale:E3}");
    }
}
