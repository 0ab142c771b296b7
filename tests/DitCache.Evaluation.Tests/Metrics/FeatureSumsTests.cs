using System;
using DitCache.Evaluation.Metrics;
using Xunit;

namespace DitCache.Evaluation.Tests.Metrics;

/// <summary>
/// <see cref="FeatureSums"/> against a naive two-pass mean and covariance written here (numpy.cov's definition), and
/// the Frechet distance of summed shards against <see cref="FeatureStatistics.FromFeatures"/> on all vectors at once.
/// </summary>
public sealed class FeatureSumsTests
{
    private static float[] Features(int n, int d, int seed)
    {
        var rng = new Random(seed);
        float[] x = new float[n * d];
        for (int i = 0; i < x.Length; i++)
        {
            // ReLU-like features: non-negative, a third exactly 0, means of order 1 (as the classifier's).
            double v = (rng.NextDouble() * 3) - 1;
            x[i] = (float)Math.Max(v, 0);
        }

        return x;
    }

    private static (double[] Mean, double[] Cov) Naive(float[] x, int n, int d)
    {
        double[] mean = new double[d];
        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j < d; j++)
            {
                mean[j] += x[(i * d) + j] / (double)n;
            }
        }

        double[] cov = new double[d * d];
        for (int r = 0; r < d; r++)
        {
            for (int c = 0; c < d; c++)
            {
                double s = 0;
                for (int i = 0; i < n; i++)
                {
                    s += (x[(i * d) + r] - mean[r]) * (x[(i * d) + c] - mean[c]);
                }

                cov[(r * d) + c] = s / (n - 1);
            }
        }

        return (mean, cov);
    }

    [Fact]
    public void Sums_of_four_parts_give_the_two_pass_mean_and_covariance()
    {
        const int N = 300, D = 16;
        float[] x = Features(N, D, 3);
        var total = new FeatureSums(D);
        int[] cuts = [0, 7, 150, 151, N];                    // uneven parts, one of a single vector
        for (int p = 0; p < 4; p++)
        {
            var part = new FeatureSums(D);
            for (int i = cuts[p]; i < cuts[p + 1]; i++)
            {
                part.Add(x.AsSpan(i * D, D));
            }

            total.Add(part);
        }

        FeatureStatistics s = total.ToStatistics();
        (double[] mean, double[] cov) = Naive(x, N, D);

        // Values of order 1 summed 300 times in float64: round-off near 1e-14; the one-pass covariance cancels
        // Q/n against μ², both of order 1, which leaves about 1e-13. 1e-11 relative to the largest entry holds both.
        Assert.Equal(N, s.Count);
        Assert.True(RelativeError(s.Mean, mean) < 1e-11, $"mean rel err {RelativeError(s.Mean, mean)}");
        Assert.True(RelativeError(s.Covariance, cov) < 1e-11, $"cov rel err {RelativeError(s.Covariance, cov)}");
    }

    [Fact]
    public void Frechet_distance_of_summed_shards_equals_one_pass_over_all_to_1e_9()
    {
        // More vectors than dimensions: both covariances have full rank, so FD is well conditioned and round-off in
        // the statistics (1e-13) moves it by far less than 1e-9 relative.
        const int N = 200, D = 32;
        float[] gen = Features(N, D, 5);
        float[] real = Features(400, D, 6);
        FeatureStatistics realStats = FeatureStatistics.FromFeatures(real, 400, D);
        var total = new FeatureSums(D);
        for (int shard = 0; shard < 4; shard++)
        {
            var part = new FeatureSums(D);
            for (int i = shard; i < N; i += 4)
            {
                part.Add(gen.AsSpan(i * D, D));
            }

            total.Add(part);
        }

        double merged = FrechetDistance.Compute(total.ToStatistics(), realStats);
        double whole = FrechetDistance.Compute(FeatureStatistics.FromFeatures(gen, N, D), realStats);
        Assert.True(Math.Abs(merged - whole) <= 1e-9 * Math.Abs(whole), $"merged {merged:R} vs one pass {whole:R}");
        Assert.True(whole > 0.01, $"the two sets differ, so FD {whole} must not be ~0");
    }

    [Fact]
    public void Bad_input_is_refused()
    {
        var sums = new FeatureSums(3);
        Assert.Throws<ArgumentException>(() => sums.Add(new float[4]));
        Assert.Throws<ArgumentException>(() => sums.Add([1f, float.NaN, 0f]));
        Assert.Throws<ArgumentException>(() => sums.Add(new FeatureSums(2)));
        sums.Add([1f, 2f, 3f]);
        Assert.Throws<InvalidOperationException>(sums.ToStatistics);
    }

    private static double RelativeError(double[] a, double[] b)
    {
        double max = 0, err = 0;
        for (int i = 0; i < a.Length; i++)
        {
            max = Math.Max(max, Math.Abs(b[i]));
            err = Math.Max(err, Math.Abs(a[i] - b[i]));
        }

        return err / max;
    }
}
