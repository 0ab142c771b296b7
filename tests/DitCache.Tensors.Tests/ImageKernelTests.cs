using System;
using System.Collections.Generic;
using Xunit;

namespace DitCache.Tensors.Tests;

/// <summary>
/// The image kernels of the VAE decoder (Conv2d, GroupNorm with and without SiLU, nearest x2 upsampling, Transpose)
/// against their naive double-precision twins in <c>Reference</c>, over ragged channel counts and image sides.
/// </summary>
public class ImageKernelTests
{
    private const double Eps = 1.1920928955078125e-7; // float32 machine epsilon, 2^-23

    public static TheoryData<int, int, int, int> ConvShapes()
    {
        var data = new TheoryData<int, int, int, int>();
        foreach ((int cin, int cout) in new[] { (1, 1), (3, 7), (17, 5), (8, 33) })
        {
            foreach ((int h, int w) in new[] { (1, 1), (1, 5), (2, 3), (7, 9), (16, 17) })
            {
                data.Add(cin, cout, h, w);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(ConvShapes))]
    public void Conv2d_matches_reference(int cin, int cout, int h, int w)
    {
        foreach (int kernel in new[] { 1, 3 })
        {
            CheckConv(cin, cout, h, w, kernel);
        }
    }

    [Fact]
    public void Conv2d_matches_reference_across_several_im2col_bands()
    {
        // 9·64·512 floats per output row: 7 rows fit one band, so 9 rows take two bands, the last one ragged.
        Assert.True(Kernels.Conv2dScratchSize(64, 9, 512, 3) < 9 * 64 * 9 * 512);
        CheckConv(64, 3, 9, 512, 3);
    }

    private static void CheckConv(int cin, int cout, int h, int w, int kernel)
    {
        int pixels = h * w, count = cout * pixels, k = cin * kernel * kernel;
        float[] x = TestUtil.Random(cin * pixels, cin + (31 * h) + w);
        float[] weight = TestUtil.Random(cout * k, cout + k);
        float[] bias = TestUtil.Random(cout, cout + 1);
        float[] start = TestUtil.Random(count, count + 2);
        int scratchSize = Kernels.Conv2dScratchSize(cin, h, w, kernel);
        // |x|, |w|, |b|, |y0| ≤ 1: Σ|terms| ≤ k + 2, and the GEMM's k·ε·Σ|a·b| bound plus the bias/residual adds gives this.
        double tol = (k + 4) * Eps * (k + 3) / 2;
        foreach (IGemm gemm in new IGemm[] { new ManagedGemm(1), new ManagedGemm(3) })
        {
            foreach (bool withBias in new[] { false, true })
            {
                foreach (bool accumulate in new[] { false, true })
                {
                    float[] b = withBias ? bias : [];
                    float[] expected = (float[])start.Clone();
                    Reference.Conv2d(x, weight, b, expected, cin, cout, h, w, kernel, accumulate);
                    float[] y = TestUtil.Guarded(count);
                    start.CopyTo(y, 0);
                    float[] scratch = TestUtil.Guarded(scratchSize);
                    Kernels.Conv2d(gemm, x, weight, b, y, cin, cout, h, w, kernel, scratch.AsSpan(0, scratchSize), accumulate);
                    string what = $"conv{kernel}x{kernel} {cin}->{cout} {h}x{w} bias={withBias} acc={accumulate} {gemm.Name}x{gemm.Threads}";
                    TestUtil.AssertClose(expected, y, count, 0, tol, what);
                    TestUtil.AssertCanaries(y, count);
                    TestUtil.AssertCanaries(scratch, scratchSize);
                }
            }
        }
    }

    [Fact]
    public void Conv2d_rejects_bad_arguments()
    {
        var gemm = new ManagedGemm(1);
        float[] x = new float[2 * 4 * 4], w = new float[3 * 2 * 9], y = new float[3 * 4 * 4];
        float[] scratch = new float[Kernels.Conv2dScratchSize(2, 4, 4, 3)];
        Assert.Throws<ArgumentOutOfRangeException>(() => Kernels.Conv2d(gemm, x, w, [], y, 2, 3, 4, 4, 5, scratch));
        Assert.Throws<ArgumentException>(() => Kernels.Conv2d(gemm, x, w, new float[2], y, 2, 3, 4, 4, 3, scratch));
        Assert.Throws<ArgumentException>(() => Kernels.Conv2d(gemm, x, w, [], y, 2, 3, 4, 4, 3, scratch.AsSpan(1)));
        Assert.Throws<ArgumentException>(() => Kernels.Conv2d(gemm, x, w, [], y.AsSpan(1), 2, 3, 4, 4, 3, scratch));
        Assert.Throws<ArgumentException>(() => Kernels.Conv2d(gemm, x, w, [], x, 2, 1, 4, 4, 3, scratch));
    }

    public static IEnumerable<object[]> NormShapes()
    {
        foreach ((int channels, int groups) in new[] { (1, 1), (4, 2), (6, 3), (32, 8), (32, 32) })
        {
            foreach (int pixels in new[] { 1, 7, 63, 64, 65, 1159 })
            {
                yield return [channels, groups, pixels];
            }
        }
    }

    [Theory]
    [MemberData(nameof(NormShapes))]
    public void GroupNorm_matches_reference_with_and_without_silu(int channels, int groups, int pixels)
    {
        int count = channels * pixels;
        // An offset mean (3) on top of the spread checks that the centring does not cancel.
        float[] x = TestUtil.Random(count, count + groups, 2f);
        for (int i = 0; i < count; i++)
        {
            x[i] += 3f;
        }

        float[] gamma = TestUtil.Random(channels, channels, 2f), beta = TestUtil.Random(channels, channels + 1);
        foreach (float eps in new[] { 1e-6f, 1e-5f })
        {
            foreach (bool silu in new[] { false, true })
            {
                float[] expected = new float[count];
                Reference.GroupNorm(x, expected, gamma, beta, channels, pixels, groups, eps, silu);
                float[] y = TestUtil.Guarded(count);
                Kernels.GroupNorm(x, y, gamma, beta, channels, pixels, groups, eps, silu);
                // x̂ within a few ε of the (bounded, |x̂| ≤ √n) exact value, times |gamma| ≤ 2, plus beta; SiLU's vector
                // exp adds a few ulp. 64 ε relative to the largest output is far below the O(1) error of a wrong formula.
                double scale = 0;
                foreach (float e in expected)
                {
                    scale = Math.Max(scale, Math.Abs(e));
                }

                string what = $"groupnorm C={channels} G={groups} P={pixels} eps={eps} silu={silu}";
                TestUtil.AssertClose(expected, y, count, 0, 64 * Eps * Math.Max(scale, 1), what);
                TestUtil.AssertCanaries(y, count);
                float[] inPlace = (float[])x.Clone();
                Kernels.GroupNorm(inPlace, inPlace, gamma, beta, channels, pixels, groups, eps, silu);
                TestUtil.AssertEqual(y, inPlace, count, what + " in place");
            }
        }
    }

    [Fact]
    public void GroupNorm_rejects_channels_not_divisible_by_groups()
    {
        float[] x = new float[6 * 4];
        var e = Assert.Throws<ArgumentException>(() => Kernels.GroupNorm(x, x, new float[6], new float[6], 6, 4, 4, 1e-6f));
        Assert.Contains("not a multiple of groups 4", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(1, 1, 1)]
    [InlineData(3, 2, 7)]
    [InlineData(2, 5, 16)]
    [InlineData(4, 3, 33)]
    [InlineData(1, 2, 65)]
    public void UpsampleNearest2x_matches_reference(int channels, int height, int width)
    {
        int count = channels * height * width;
        float[] x = TestUtil.Random(count, count);
        float[] expected = new float[4 * count];
        Reference.UpsampleNearest2x(x, expected, channels, height, width);
        float[] y = TestUtil.Guarded(4 * count);
        Kernels.UpsampleNearest2x(x, y, channels, height, width);
        TestUtil.AssertEqual(expected, y, 4 * count, $"upsample {channels}x{height}x{width}");
        TestUtil.AssertCanaries(y, 4 * count);
    }

    [Theory]
    [InlineData(0, 5)]
    [InlineData(1, 7)]
    [InlineData(7, 1)]
    [InlineData(33, 65)]
    [InlineData(64, 100)]
    public void Transpose_matches_reference(int rows, int cols)
    {
        int count = rows * cols;
        float[] x = TestUtil.Random(count, count + 3);
        float[] expected = new float[count];
        Reference.Transpose(x, expected, rows, cols);
        float[] y = TestUtil.Guarded(count);
        Kernels.Transpose(x, y, rows, cols);
        TestUtil.AssertEqual(expected, y, count, $"transpose {rows}x{cols}");
        TestUtil.AssertCanaries(y, count);
    }
}
