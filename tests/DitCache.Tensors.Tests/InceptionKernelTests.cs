using System;
using System.Collections.Generic;
using DitCache.Tensors.IO;
using Xunit;

namespace DitCache.Tensors.Tests;

/// <summary>
/// The kernels the FID Inception adds (Conv2d of any kernel, stride and padding; max and padding-excluding average
/// pools; bilinear resize; ReLU) against their naive double-precision twins in <c>Reference</c> over ragged shapes,
/// and the resize against PyTorch's <c>F.interpolate</c> (tests/TestData/inception/resize_golden.safetensors).
/// </summary>
public class InceptionKernelTests
{
    private const double Eps = 1.1920928955078125e-7;

    public static IEnumerable<object[]> Shapes()
    {
        // (kh, kw, sh, sw, ph, pw): every geometry of the Inception, plus odd ones (stride 3, padding wider than needed).
        int[][] geometries =
        [
            [1, 1, 1, 1, 0, 0], [3, 3, 1, 1, 1, 1], [3, 3, 2, 2, 0, 0], [3, 3, 1, 1, 0, 0], [5, 5, 1, 1, 2, 2],
            [1, 7, 1, 1, 0, 3], [7, 1, 1, 1, 3, 0], [1, 3, 1, 1, 0, 1], [3, 1, 1, 1, 1, 0], [2, 3, 3, 2, 1, 2], [1, 1, 2, 2, 0, 0],
        ];
        foreach (int[] g in geometries)
        {
            foreach ((int cin, int cout, int h, int w) in new[] { (1, 1, 7, 7), (3, 5, 9, 8), (17, 6, 11, 13) })
            {
                yield return [cin, cout, h, w, g[0], g[1], g[2], g[3], g[4], g[5]];
            }
        }
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Conv2d_of_any_geometry_matches_reference(int cin, int cout, int h, int w, int kh, int kw, int sh, int sw, int ph, int pw)
    {
        var s = new ConvShape(cin, cout, h, w, kh, kw, sh, sw, ph, pw);
        CheckShapedConv(s);
    }

    [Fact]
    public void Conv2d_of_any_geometry_matches_reference_across_several_im2col_bands()
    {
        // 7·64·600 floats per output row: 7 rows fit one 2^21-float band, so 10 output rows take two, the last ragged.
        var s = new ConvShape(64, 3, 10, 600, 7, 1, 1, 1, 3, 0);
        Assert.True(Kernels.Conv2dScratchSize(s) < s.Taps * s.OutHeight * s.OutWidth);
        CheckShapedConv(s);
    }

    private static void CheckShapedConv(ConvShape s)
    {
        int outCount = s.OutChannels * s.OutHeight * s.OutWidth, k = s.Taps;
        float[] x = TestUtil.Random(s.InChannels * s.Height * s.Width, s.InChannels + (31 * s.Height) + s.Width + s.KernelW);
        float[] weight = TestUtil.Random(s.OutChannels * k, s.OutChannels + k);
        float[] bias = TestUtil.Random(s.OutChannels, s.OutChannels + 1);
        float[] start = TestUtil.Random(outCount, outCount + 2);
        int scratchSize = Kernels.Conv2dScratchSize(s);
        double tol = (k + 4) * Eps * (k + 3) / 2;
        foreach (IGemm gemm in new IGemm[] { new ManagedGemm(1), new ManagedGemm(3) })
        {
            foreach (bool withBias in new[] { false, true })
            {
                foreach (bool accumulate in new[] { false, true })
                {
                    float[] b = withBias ? bias : [];
                    float[] expected = (float[])start.Clone();
                    Reference.Conv2d(s, x, weight, b, expected, accumulate);
                    float[] y = TestUtil.Guarded(outCount);
                    start.CopyTo(y, 0);
                    float[] scratch = TestUtil.Guarded(scratchSize);
                    Kernels.Conv2d(gemm, s, x, weight, b, y, scratch.AsSpan(0, scratchSize), accumulate);
                    string what = $"{s} bias={withBias} acc={accumulate} {gemm.Name}x{gemm.Threads}";
                    TestUtil.AssertClose(expected, y, outCount, 0, tol, what);
                    TestUtil.AssertCanaries(y, outCount);
                    TestUtil.AssertCanaries(scratch, scratchSize);
                }
            }
        }
    }

    [Fact]
    public void Conv2d_of_any_geometry_agrees_with_the_square_kernel_it_generalises()
    {
        // The VAE's 3x3 / 1x1 kernel and the general one are independent code paths: same products, same order.
        var gemm = new ManagedGemm(2);
        foreach (int kernel in new[] { 1, 3 })
        {
            var s = ConvShape.Square(5, 4, 9, 10, kernel, 1, kernel / 2);
            float[] x = TestUtil.Random(5 * 90, 7), w = TestUtil.Random(4 * s.Taps, 8), b = TestUtil.Random(4, 9);
            float[] a = new float[4 * 90], c = new float[4 * 90];
            Kernels.Conv2d(gemm, x, w, b, a, 5, 4, 9, 10, kernel, new float[Kernels.Conv2dScratchSize(5, 9, 10, kernel)]);
            Kernels.Conv2d(gemm, s, x, w, b, c, new float[Kernels.Conv2dScratchSize(s)]);
            TestUtil.AssertEqual(a, c, a.Length, $"square {kernel}x{kernel}");
        }
    }

    [Fact]
    public void Conv2d_of_any_geometry_rejects_bad_arguments()
    {
        var gemm = new ManagedGemm(1);
        var s = new ConvShape(2, 3, 4, 4, 3, 3, 2, 2, 1, 1);                                      // output 2x2
        float[] x = new float[2 * 16], w = new float[3 * 2 * 9], y = new float[3 * 4];
        float[] scratch = new float[Kernels.Conv2dScratchSize(s)];
        Kernels.Conv2d(gemm, s, x, w, [], y, scratch);
        Assert.Throws<ArgumentException>(() => Kernels.Conv2d(gemm, s, x, w, new float[2], y, scratch));
        Assert.Throws<ArgumentException>(() => Kernels.Conv2d(gemm, s, x, w, [], y, scratch.AsSpan(1)));
        Assert.Throws<ArgumentException>(() => Kernels.Conv2d(gemm, s, x, w, [], y.AsSpan(1), scratch));
        Assert.Throws<ArgumentException>(() => Kernels.Conv2d(gemm, s, x, w.AsSpan(1), [], y, scratch));
        Assert.Throws<ArgumentException>(() => Kernels.Conv2d(gemm, s with { KernelH = 7, PadH = 0 }, x, w, [], y, scratch));
        Assert.Throws<ArgumentOutOfRangeException>(() => Kernels.Conv2d(gemm, s with { StrideW = 0 }, x, w, [], y, scratch));
        Assert.Throws<ArgumentOutOfRangeException>(() => Kernels.Conv2d(gemm, s with { PadW = -1 }, x, w, [], y, scratch));
    }

    [Theory]
    [InlineData(1, 7, 7, 3, 2, 0)]
    [InlineData(4, 73, 73, 3, 2, 0)]
    [InlineData(3, 35, 35, 3, 1, 1)]
    [InlineData(2, 8, 9, 3, 1, 1)]
    [InlineData(5, 10, 6, 2, 3, 1)]
    [InlineData(2, 3, 3, 3, 1, 1)]
    public void Pools_match_reference(int channels, int h, int w, int kernel, int stride, int pad)
    {
        int oh = Kernels.PoolOutSize(h, kernel, stride, pad), ow = Kernels.PoolOutSize(w, kernel, stride, pad), n = channels * oh * ow;
        float[] x = TestUtil.Random(channels * h * w, h + (7 * w) + kernel, 3f);
        foreach (bool max in new[] { true, false })
        {
            float[] expected = new float[n];
            Reference.Pool2d(x, expected, channels, h, w, kernel, stride, pad, max);
            float[] y = TestUtil.Guarded(n);
            if (max)
            {
                Kernels.MaxPool2d(x, y, channels, h, w, kernel, stride, pad);
                TestUtil.AssertEqual(expected, y, n, "max pool");
            }
            else
            {
                Kernels.AvgPool2dExcludePad(x, y, channels, h, w, kernel, stride, pad);
                TestUtil.AssertClose(expected, y, n, 0, 3f * kernel * kernel * Eps * 2, "avg pool");
            }

            TestUtil.AssertCanaries(y, n);
        }
    }

    [Fact]
    public void Average_pool_excludes_the_padding_and_max_pool_never_picks_it()
    {
        // All −1: a pool that counted the zero padding would give −4/9 at a corner and a max pool that saw it, 0.
        float[] x = [.. new float[9 * 2]];
        Array.Fill(x, -1f);
        float[] avg = new float[18], max = new float[18];
        Kernels.AvgPool2dExcludePad(x, avg, 2, 3, 3, 3, 1, 1);
        Kernels.MaxPool2d(x, max, 2, 3, 3, 3, 1, 1);
        Assert.All(avg, v => Assert.Equal(-1f, v));
        Assert.All(max, v => Assert.Equal(-1f, v));
        Assert.Throws<ArgumentOutOfRangeException>(() => Kernels.MaxPool2d(x, max, 2, 3, 3, 3, 1, 2));
    }

    [Theory]
    [InlineData(2, 5, 7, 11, 13)]
    [InlineData(3, 37, 45, 299, 299)]
    [InlineData(1, 8, 8, 3, 4)]
    [InlineData(2, 1, 1, 4, 3)]
    [InlineData(1, 300, 20, 299, 299)]
    public void Resize_matches_reference(int channels, int h, int w, int oh, int ow)
    {
        float[] x = TestUtil.Random(channels * h * w, h + w, 2f);
        float[] expected = new float[channels * oh * ow];
        Reference.ResizeBilinear(x, expected, channels, h, w, oh, ow);
        float[] y = TestUtil.Guarded(expected.Length);
        Kernels.ResizeBilinear(x, y, channels, h, w, oh, ow);
        // Coordinates in float32 (as PyTorch) against double: the fraction differs by a few ulp of the coordinate.
        TestUtil.AssertClose(expected, y, expected.Length, 0, 2f * Math.Max(h, w) * 8 * Eps, $"resize {h}x{w} -> {oh}x{ow}");
        TestUtil.AssertCanaries(y, expected.Length);
    }

    [Fact]
    public void Resize_matches_pytorch_interpolate()
    {
        TensorFile golden = SafeTensors.Load(System.IO.Path.Combine(AppContext.BaseDirectory, "TestData", "inception", "resize_golden.safetensors"));
        float[] x = golden.Read("x").Data, big = golden.Read("big").Data;
        foreach ((string key, int oh, int ow) in new[] { ("up", 11, 13), ("down", 3, 4) })
        {
            float[] expected = golden.Read(key).Data;
            float[] y = new float[expected.Length];
            Kernels.ResizeBilinear(x, y, 2, 5, 7, oh, ow);
            TestUtil.AssertClose(expected, y, y.Length, 0, 4 * Eps * 4, key);
        }

        float[] rows = golden.Read("big299_rows").Data;                                             // (1, 1, 16, 299)
        float[] full = new float[299 * 299];
        Kernels.ResizeBilinear(big, full, 1, 37, 45, 299, 299);
        TestUtil.AssertClose(rows, full, rows.Length, 0, 4 * Eps * 4, "37x45 -> 299x299, first 16 rows");
    }

    [Fact]
    public void Relu_matches_definition_and_keeps_nan()
    {
        float[] x = TestUtil.Random(1000, 3, 2f);
        x[17] = float.NaN;
        x[18] = float.NegativeInfinity;
        float[] y = TestUtil.Guarded(x.Length);
        Kernels.Relu(x, y);
        for (int i = 0; i < x.Length; i++)
        {
            float e = float.IsNaN(x[i]) ? float.NaN : x[i] > 0 ? x[i] : 0f;
            Assert.Equal(e, y[i]);
        }

        TestUtil.AssertCanaries(y, x.Length);
    }
}
