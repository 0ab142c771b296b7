using System;
using System.Linq;
using DitCache.Tensors;
using Xunit;

namespace DitCache.Caching.Tests;

/// <summary>Spectrum (docs/methods.md §3): options, the adaptive schedule, the Chebyshev/linear math, the seam.</summary>
public class SpectrumTests
{
    private const int Steps = 50;

    [Theory]
    [InlineData("spectrum:n=0.5", "n=0.5")]
    [InlineData("spectrum:alpha=-1", "alpha=-1")]
    [InlineData("spectrum:m=17", "m=17")]
    [InlineData("spectrum:m=-1", "m=-1")]
    [InlineData("spectrum:lam=-0.1", "lam=-0.1")]
    [InlineData("spectrum:w=1.5", "w=1.5")]
    [InlineData("spectrum:warmup=0", "warmup=0")]
    [InlineData("spectrum:k=100", "k")]
    public void BadKnobsAreUsageErrorsNamingTheKnob(string spec, string knob)
    {
        var e = Assert.Throws<DitCacheException>(() => CacheRegistry.Parse(spec));
        Assert.Equal(2, e.ExitCode);
        Assert.Contains(knob, e.Message);
    }

    [Fact]
    public void DefaultsAndSpecRoundTrip()
    {
        Assert.Equal(new SpectrumOptions(2, 0.75, 4, 0.1, 0.5, 5), CacheRegistry.Parse("spectrum"));
        var options = (SpectrumOptions)CacheRegistry.Parse("spectrum:n=2,alpha=3,w=1,lam=0.25");
        Assert.Equal(new SpectrumOptions(2, 3, 4, 0.25, 1, 5), options);
        Assert.Equal(options, CacheRegistry.Parse(options.Spec));
    }

    [Fact]
    public void ScheduleIsTheOfficialAdaptiveOne()
    {
        // docs/methods.md §3.5, verified there by simulation of flux_forward.py.
        Assert.Equal([0, 1, 2, 3, 4, 6, 8, 11, 15, 20, 25, 31, 38, 46], SeamHarness.Ordinals(new SpectrumOptions(2, 0.75).FullSteps(Steps)));
        Assert.Equal([0, 1, 2, 3, 4, 6, 11, 19, 30, 44], SeamHarness.Ordinals(new SpectrumOptions(2, 3.0).FullSteps(Steps)));
        Assert.Equal([0, 1, 2, 3, 4, .. SeamHarness.Range(6, 48, 2)], SeamHarness.Ordinals(new SpectrumOptions(2, 0).FullSteps(Steps)));
    }

    [Fact]
    public void ChebyshevBasisFollowsTheRecurrence()
    {
        var row = new double[5];
        ChebyshevForecaster.Basis(0.3, row);
        Assert.Equal(1, row[0], 12);
        Assert.Equal(0.3, row[1], 12);
        Assert.Equal((2 * 0.09) - 1, row[2], 12);
        Assert.Equal((4 * 0.027) - (3 * 0.3), row[3], 12);
        Assert.Equal((8 * 0.0081) - (8 * 0.09) + 1, row[4], 12);
        Assert.Equal(-1 + (2.0 * 7 / 50), ChebyshevForecaster.Tau(7, 50), 12);
    }

    [Theory]
    [InlineData(2)]
    [InlineData(4)]
    public void UnpenalisedChebyshevFitIsExactOnPolynomialsOfItsDegree(int degree)
    {
        // p(τ) of degree M sampled at 8 points; with λ = 0 the least-squares fit reproduces p anywhere.
        double P(double t) => 0.5 - t + (0.75 * t * t) + (degree > 2 ? (0.3 * t * t * t) - (0.2 * t * t * t * t) : 0);
        double[] taus = [.. new[] { 0, 1, 2, 3, 4, 6, 8, 11 }.Select(n => ChebyshevForecaster.Tau(n, Steps))];
        var weights = new double[taus.Length];
        double star = ChebyshevForecaster.Tau(13, Steps);
        ChebyshevForecaster.AddChebyshevWeights(taus, degree, 0.0, star, 1.0, weights);
        Assert.Equal(P(star), weights.Select((w, j) => w * P(taus[j])).Sum(), 9);
        Assert.Equal(1.0, weights.Sum(), 9);    // constants are reproduced
    }

    [Fact]
    public void RidgeShrinksAndSingularFitsGetJitter()
    {
        double[] taus = [-1.0, -0.96];
        var weights = new double[2];
        ChebyshevForecaster.AddChebyshevWeights(taus, 4, 0.0, -0.9, 1.0, weights);   // 2 points, 5 bases: jitter
        Assert.All(weights, w => Assert.True(double.IsFinite(w)));
        var ridge = new double[2];
        ChebyshevForecaster.AddChebyshevWeights(taus, 1, 0.1, -0.9, 1.0, ridge);
        Assert.True(ridge.Sum() < 1.0);         // λ pulls the fit of a constant toward 0
    }

    [Fact]
    public void LocalWeightsExtrapolateLinearly()
    {
        var w = new double[3];
        ChebyshevForecaster.AddLocalWeights(last: 2, nLast: 6, previous: 0, nPrevious: 4, nStar: 9, scale: 1.0, w);
        Assert.Equal([-1.5, 0, 2.5], w);        // h6 + 1.5·(h6 − h4)
        var single = new double[1];
        ChebyshevForecaster.AddLocalWeights(0, 3, -1, 0, 5, 0.5, single);
        Assert.Equal([0.5], single);
    }

    private static double Wave(int n, int i) => Math.Sin((0.11 * n) + (0.3 * i)) + (0.02 * n);

    /// <summary>Drives the block-stack seam; returns the computed flags and the block-stack output per step.</summary>
    private static (bool[] Computed, float[][] Outputs) Drive(ICachePolicy policy, Func<int, int, double> feature)
    {
        var computed = new bool[Steps];
        var outputs = new float[Steps][];
        var x = new float[SeamHarness.Length];
        for (int n = 0; n < Steps; n++)
        {
            policy.BeginStep(n, 999 - (20 * n));
            x.AsSpan().Fill(-7f);               // block-0 input; a skipped stack overwrites it with the forecast
            if (policy.SkipBlocks(0, x) == 0)
            {
                Assert.False(policy.TryForecast(new FeatureSite(0, Site.Attn), x));
                for (int i = 0; i < x.Length; i++)
                {
                    x[i] = (float)feature(n, i);
                }

                policy.RecordBlock(SeamHarness.Depth - 1, x);
                computed[n] = true;
            }

            outputs[n] = x.ToArray();
        }

        return (computed, outputs);
    }

    /// <summary>
    /// Spectrum in float64, primal form: C = (XᵀX + λI)⁻¹ XᵀH by Gaussian elimination, h_cheb = Σ_m C_m T_m(τ*),
    /// blended with the linear extrapolation of the last two stored points.
    /// </summary>
    private static double[] Reference(SpectrumOptions o, Func<int, double> f)
    {
        bool[] full = o.FullSteps(Steps);
        var output = new double[Steps];
        var ns = new System.Collections.Generic.List<int>();
        int p = o.Degree + 1;
        for (int n = 0; n < Steps; n++)
        {
            if (full[n])
            {
                output[n] = f(n);
                ns.Add(n);
                continue;
            }

            var a = new double[p, p + 1];
            foreach (int j in ns)
            {
                var row = new double[p];
                ChebyshevForecaster.Basis(((2.0 * j) / Steps) - 1, row);
                for (int r = 0; r < p; r++)
                {
                    for (int c = 0; c < p; c++)
                    {
                        a[r, c] += row[r] * row[c];
                    }

                    a[r, p] += row[r] * f(j);
                }
            }

            for (int r = 0; r < p; r++)
            {
                a[r, r] += o.Lambda;
            }

            for (int col = 0; col < p; col++)
            {
                for (int r = col + 1; r < p; r++)
                {
                    double factor = a[r, col] / a[col, col];
                    for (int c = col; c <= p; c++)
                    {
                        a[r, c] -= factor * a[col, c];
                    }
                }
            }

            var coef = new double[p];
            for (int r = p - 1; r >= 0; r--)
            {
                double v = a[r, p];
                for (int c = r + 1; c < p; c++)
                {
                    v -= a[r, c] * coef[c];
                }

                coef[r] = v / a[r, r];
            }

            var star = new double[p];
            ChebyshevForecaster.Basis(((2.0 * n) / Steps) - 1, star);
            double cheb = coef.Select((c, m) => c * star[m]).Sum();
            int last = ns[^1];
            double lin = ns.Count < 2 ? f(last) : f(last) + ((double)(n - last) / (last - ns[^2]) * (f(last) - f(ns[^2])));
            output[n] = ((1 - o.Blend) * lin) + (o.Blend * cheb);
        }

        return output;
    }

    [Theory]
    [InlineData("spectrum")]
    [InlineData("spectrum:alpha=3")]
    [InlineData("spectrum:w=1,m=3")]
    [InlineData("spectrum:w=0")]
    [InlineData("spectrum:warmup=2,lam=0.5")]
    public void ForecastsMatchTheFloat64ReferenceAndTheSchedule(string spec)
    {
        var options = (SpectrumOptions)CacheRegistry.Parse(spec);
        (bool[] computed, float[][] outputs) = Drive(options.Build(SeamHarness.Run(Steps)), Wave);
        Assert.Equal(options.FullSteps(Steps), computed);
        foreach (int i in new[] { 0, 11, 36 })
        {
            double[] expected = Reference(options, n => (float)Wave(n, i));
            for (int n = 0; n < Steps; n++)
            {
                Assert.True(Math.Abs(outputs[n][i] - expected[n]) <= 1e-4 * (1 + Math.Abs(expected[n])), $"{spec} n={n} i={i}: {outputs[n][i]} vs {expected[n]}");
            }
        }
    }

    [Fact]
    public void RunsAreIndependentAndTheLoopAllocatesNothing()
    {
        var options = new SpectrumOptions();
        float[][] fresh = Drive(options.Build(SeamHarness.Run(Steps)), Wave).Outputs;
        ICachePolicy policy = options.Build(SeamHarness.Run(Steps));
        Drive(policy, (n, i) => n * i);
        float[][] again = Drive(policy, Wave).Outputs;
        for (int n = 0; n < Steps; n++)
        {
            Assert.Equal(fresh[n], again[n]);
        }

        Assert.Equal(14L * SeamHarness.Length * sizeof(float), policy.CacheBytes);

        var x = new float[SeamHarness.Length];
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int n = 0; n < Steps; n++)
        {
            policy.BeginStep(n, 0);
            if (policy.SkipBlocks(0, x) == 0)
            {
                x[0] = n;
                policy.RecordBlock(SeamHarness.Depth - 1, x);
            }
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }
}
