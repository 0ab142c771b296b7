using System;
using System.Globalization;
using System.IO;
using DitCache.Evaluation.Metrics;
using DitCache.Tensors;
using DitCache.Tensors.IO;
using Xunit;

namespace DitCache.Evaluation.Tests.Metrics;

public sealed class FrechetDistanceTests
{
    private static float[] Gaussian(Random rng, int n, double[] mean, double[] std)
    {
        int d = mean.Length;
        float[] x = new float[n * d];
        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j < d; j++)
            {
                double u1 = 1.0 - rng.NextDouble();
                double u2 = rng.NextDouble();
                double z = Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
                x[(i * d) + j] = (float)(mean[j] + (std[j] * z));
            }
        }

        return x;
    }

    [Fact]
    public void Identical_sets_have_distance_zero()
    {
        var rng = new Random(1);
        float[] a = Gaussian(rng, 500, [1, 2, 3, 4, 5, 6, 7, 8], [1, 0.5, 2, 1, 1, 3, 0.1, 1]);
        FeatureStatistics s = FeatureStatistics.FromFeatures(a, 500, 8);

        double fd = FrechetDistance.Compute(a, 500, a, 500, 8);

        // tr(S) ≈ 17; round-off in tr sqrt(S^2) is ~1e-15 relative.
        Assert.InRange(fd, -1e-10, 1e-10);
        Assert.Equal(0, FrechetDistance.Compute(s, s), 10);
    }

    [Fact]
    public void Diagonal_gaussians_match_the_closed_form()
    {
        // For diagonal covariances A and B: FD = Σ (μ1 − μ2)² + Σ (√a − √b)². Built from exact statistics.
        double[] mu1 = [0, 1, -2, 0.5];
        double[] mu2 = [1, 1, 0, -0.5];
        double[] a = [1, 4, 0.25, 9];
        double[] b = [4, 1, 0.25, 0];        // a zero variance: its square root is exactly 0, no clamping noise
        double expected = 0;
        for (int i = 0; i < 4; i++)
        {
            expected += ((mu1[i] - mu2[i]) * (mu1[i] - mu2[i])) + Math.Pow(Math.Sqrt(a[i]) - Math.Sqrt(b[i]), 2);
        }

        double fd = FrechetDistance.Compute(Stats(mu1, Diag(a)), Stats(mu2, Diag(b)));

        Assert.Equal(expected, fd, 12);
        Assert.Equal(1 + 4 + 1 + 1 + 1 + 0 + 9, expected, 12);
    }

    [Fact]
    public void Sampled_diagonal_gaussians_approach_the_closed_form()
    {
        var rng = new Random(7);
        double[] mu1 = [0, 1, 2];
        double[] mu2 = [0.5, 1, 1];
        double[] s1 = [1, 2, 0.5];
        double[] s2 = [2, 2, 1];
        const int N = 20000;
        float[] a = Gaussian(rng, N, mu1, s1);
        float[] b = Gaussian(rng, N, mu2, s2);
        double expected = 0.25 + 1 + 1 + 0 + 0.25;   // Σ Δμ² + Σ (σ1 − σ2)²

        double fd = FrechetDistance.Compute(a, N, b, N, 3);

        // Sampling error of means and variances at N = 20000: a few 1e-2 at most.
        Assert.InRange(fd, expected - 0.05, expected + 0.05);
    }

    [Fact]
    public void Is_symmetric_in_its_arguments()
    {
        TensorFile f = LoadFixture();
        float[] a = f.Tensors["a"].Data;
        float[] b = f.Tensors["b"].Data;

        double ab = FrechetDistance.Compute(a, 256, b, 192, 32);
        double ba = FrechetDistance.Compute(b, 192, a, 256, 32);

        Assert.Equal(ab, ba, 9);
    }

    [Theory]
    [InlineData("a", "b", 256, 192, 32, "fd_ab")]
    [InlineData("c", "d", 100, 90, 128, "fd_cd")]   // n < d: rank-deficient, exercises the round-off clamp
    public void Matches_numpy_float64_reference(string ka, string kb, int na, int nb, int d, string key)
    {
        TensorFile f = LoadFixture();
        double expected = double.Parse(f.Metadata[key], CultureInfo.InvariantCulture);
        Assert.True(f.Tensors[ka].HasShape(na, d));
        Assert.True(f.Tensors[kb].HasShape(nb, d));

        double fd = FrechetDistance.Compute(f.Tensors[ka].Data, na, f.Tensors[kb].Data, nb, d);

        // Same float32 inputs, both sides in float64 (numpy eigh vs our Jacobi): agreement to ~1e-12 relative
        // except for the square roots of the near-zero eigenvalues of the rank-deficient case, √(1e-16 · tr).
        Assert.True(Math.Abs(fd - expected) <= 1e-7 * Math.Abs(expected), $"FD {fd:R} vs numpy {expected:R}");
    }

    [Fact]
    public void Non_psd_covariance_throws_instead_of_clamping()
    {
        double[] bad = [1, 0, 0, -0.5];                    // eigenvalue −0.5 with trace 0.5
        double[] good = [1, 0, 0, 1];

        InvalidOperationException e = Assert.Throws<InvalidOperationException>(
            () => FrechetDistance.Compute(Stats([0, 0], bad), Stats([0, 0], good)));

        Assert.Contains("not positive semi-definite", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Rejects_bad_arguments()
    {
        Assert.Throws<ArgumentException>(() => FeatureStatistics.FromFeatures(new float[4], 1, 4));
        Assert.Throws<ArgumentException>(() => FeatureStatistics.FromFeatures(new float[7], 2, 4));
        Assert.Throws<ArgumentException>(() => FeatureStatistics.FromFeatures([0, float.NaN, 0, 0], 2, 2));
        Assert.Throws<ArgumentException>(() => FrechetDistance.Compute(Stats([0], [1]), Stats([0, 0], [1, 0, 0, 1])));
    }

    [Fact]
    public void Covariance_is_unbiased_like_numpy_cov()
    {
        // x = (1, 2, 3, 4), y = 2x: var x = 5/3 (divide by n − 1), cov = 10/3, var y = 20/3.
        float[] xy = [1, 2, 2, 4, 3, 6, 4, 8];

        FeatureStatistics s = FeatureStatistics.FromFeatures(xy, 4, 2);

        Assert.Equal([2.5, 5.0], s.Mean);
        Assert.Equal(5.0 / 3, s.Covariance[0], 14);
        Assert.Equal(10.0 / 3, s.Covariance[1], 14);
        Assert.Equal(10.0 / 3, s.Covariance[2], 14);
        Assert.Equal(20.0 / 3, s.Covariance[3], 14);
    }

    private static FeatureStatistics Stats(double[] mean, double[] cov) => new(mean, cov, mean.Length, 2);

    private static double[] Diag(double[] v)
    {
        double[] m = new double[v.Length * v.Length];
        for (int i = 0; i < v.Length; i++)
        {
            m[(i * v.Length) + i] = v[i];
        }

        return m;
    }

    private static TensorFile LoadFixture() =>
        SafeTensors.Load(Path.Combine(AppContext.BaseDirectory, "TestData", "classifier", "frechet.safetensors"));
}
