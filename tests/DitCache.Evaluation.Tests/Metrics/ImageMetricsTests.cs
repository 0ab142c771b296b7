using System;
using System.IO;
using System.Linq;
using System.Text.Json;
using DitCache.Evaluation.Metrics;
using DitCache.Tensors.IO;
using Xunit;

namespace DitCache.Evaluation.Tests.Metrics;

/// <summary>
/// PSNR and SSIM against values computed with numpy formulas by tools/reference/make_metric_fixtures.py (valid-region
/// 11x11 Gaussian SSIM, clamped [0, 1] pixels), plus analytic cases.
/// </summary>
public class ImageMetricsTests
{
    private static readonly Lazy<TensorFile> s_fixture = new(() =>
        SafeTensors.Load(Path.Combine(AppContext.BaseDirectory, "TestData", "metrics", "image_metrics.safetensors")));

    [Fact]
    public void MatchNumpyOnEveryPair()
    {
        TensorFile f = s_fixture.Value;
        float[] a = f.Tensors["a"].Data, b = f.Tensors["b"].Data;
        double[] psnr = JsonSerializer.Deserialize<double[]>(f.Metadata["psnr"])!;
        double[] ssim = JsonSerializer.Deserialize<double[]>(f.Metadata["ssim"])!;
        const int Size = 28 * 28;
        for (int i = 0; i < psnr.Length; i++)
        {
            ReadOnlySpan<float> x = a.AsSpan(i * Size, Size), y = b.AsSpan(i * Size, Size);
            Assert.Equal(psnr[i], ImageMetrics.Psnr(y, x), 9);
            Assert.Equal(ssim[i], ImageMetrics.Ssim(y, x, 28, 28), 9);
        }

        (double meanPsnr, double meanSsim) = ImageMetrics.Mean(b, a, psnr.Length, 28, 28);
        Assert.Equal(psnr.Average(), meanPsnr, 9);
        Assert.Equal(ssim.Average(), meanSsim, 9);
    }

    [Fact]
    public void AnalyticCases()
    {
        float[] zero = new float[28 * 28];                          // 0 -> 0.5 on [0, 1]
        float[] shifted = Enumerable.Repeat(0.2f, 28 * 28).ToArray(); // 0.2 -> 0.6: an error of 0.1 everywhere
        Assert.Equal(20.0, ImageMetrics.Psnr(shifted, zero), 6);   // 20 log10(1 / 0.1)
        Assert.Equal(ImageMetrics.PsnrCap, ImageMetrics.Psnr(zero, zero));
        Assert.Equal(1.0, ImageMetrics.Ssim(shifted, shifted, 28, 28), 12);

        // Constant images: variances and covariance vanish, so SSIM = (2 m1 m2 + C1) / (m1² + m2² + C1).
        const double C1 = 1e-4;
        double expected = ((2 * 0.6 * 0.5) + C1) / ((0.36 + 0.25) + C1);
        Assert.Equal(expected, ImageMetrics.Ssim(shifted, zero, 28, 28), 8);        // 0.2f is not exactly 0.2
        Assert.Equal(double.PositiveInfinity, ImageMetrics.RelativeL2(shifted, zero));   // reference all zero
        Assert.Equal(1.0, ImageMetrics.RelativeL2(zero, shifted), 12);
    }

    [Fact]
    public void BadShapesAreRefused()
    {
        Assert.Throws<ArgumentException>(() => ImageMetrics.Psnr(new float[3], new float[4]));
        Assert.Throws<ArgumentException>(() => ImageMetrics.Ssim(new float[100], new float[100], 10, 10));
        Assert.Throws<ArgumentException>(() => ImageMetrics.Ssim(new float[784], new float[784], 28, 27));
    }
}
