using System;
using System.Collections.Generic;
using System.Linq;
using Xunit;

namespace DitCache.Caching.Tests;

/// <summary>The policies through the seam with dummy blocks (diffusers test_*_cache style).</summary>
public class PolicyTests
{
    private const int Steps = 50;

    // Linear in n per (site, element), with dyadic coefficients so float32 holds every value exactly: the BDF2-only
    // recursion re-feeds its last forecast as Yp at the next full step, which multiplies an error by −(N−1) per cycle,
    // so round-off in inexact inputs would grow geometrically (a property of the method, see docs/accelerators/foca.md).
    private static double Linear(int n, FeatureSite site, int i) => (0.125 * (site.Index + 1) * (i - 18)) + (((0.0625 * i) - (0.25 * site.Index)) * n);

    // Smooth but not polynomial.
    private static double Wave(int n, FeatureSite site, int i) => Math.Sin((0.13 * n) + (0.4 * i) + site.Index) * (1 + (0.01 * n));

    public static TheoryData<string> Specs => new()
    {
        "fora:n=3", "fora:n=5", "taylorseer:n=3,o=1", "taylorseer:n=5,o=2", "taylorseer:n=4,o=4,warmup=3",
        "foca:n=3", "foca:n=5", "foca:n=5,corrector=off", "foca:n=4,warmup=1", "foca:n=5,time=t", "foca:n=5,reading=cachedit",
    };

    [Theory]
    [MemberData(nameof(Specs))]
    public void ComputedStepsAreTheSchedule(string spec)
    {
        ICacheOptions options = CacheRegistry.Parse(spec);
        (bool[] computed, _) = SeamHarness.Drive(options.Build(SeamHarness.Run(Steps)), Steps, Wave);
        bool[] expected = options switch
        {
            ForaOptions f => f.FullSteps(Steps),
            TaylorSeerOptions t => t.FullSteps(Steps),
            FocaOptions f => f.FullSteps(Steps),
            _ => throw new InvalidOperationException(spec),
        };
        Assert.Equal(SeamHarness.Ordinals(expected), SeamHarness.Ordinals(computed));
    }

    [Fact]
    public void ForaReusesTheLastFullStep()
    {
        var options = new ForaOptions(3);
        bool[] full = options.FullSteps(Steps);
        (_, float[][][] outputs) = SeamHarness.Drive(options.Build(SeamHarness.Run(Steps)), Steps, Wave);
        int last = 0;
        for (int n = 0; n < Steps; n++)
        {
            last = full[n] ? n : last;
            for (int k = 0; k < 2 * SeamHarness.Depth; k++)
            {
                Assert.Equal(outputs[last][k], outputs[n][k]);
            }
        }
    }

    [Theory]
    [InlineData("taylorseer:n=3,o=1")]
    [InlineData("taylorseer:n=5,o=4")]
    [InlineData("foca:n=3")]
    [InlineData("foca:n=5")]
    [InlineData("foca:n=5,corrector=off")]
    [InlineData("foca:n=7,warmup=3")]
    public void ForecastsAreExactOnFeaturesLinearInN(string spec)
    {
        ICacheOptions options = CacheRegistry.Parse(spec);
        (_, float[][][] outputs) = SeamHarness.Drive(options.Build(SeamHarness.Run(Steps)), Steps, Linear);
        for (int n = 0; n < Steps; n++)
        {
            for (int k = 0; k < 2 * SeamHarness.Depth; k++)
            {
                var site = new FeatureSite(k / 2, (Site)(k % 2));
                double scale = 1 + Enumerable.Range(0, SeamHarness.Length).Max(i => Math.Abs(Linear(n, site, i)));
                for (int i = 0; i < SeamHarness.Length; i++)
                {
                    // float32 round-off relative to the feature's magnitude (the BDF2 recursion accumulates it)
                    double expected = Linear(n, site, i);
                    Assert.True(Math.Abs(outputs[n][k][i] - expected) <= 2e-5 * scale,
                        $"{spec} n={n} site={k} i={i}: {outputs[n][k][i]} vs {expected}");
                }
            }
        }
    }

    /// <summary>
    /// FoCa-A of docs/methods.md §2.4 written out in float64 for one scalar feature, on the time grid <paramref name="s"/>
    /// (s = n for h = 1), with the variable-step BDF2 formulas as printed there (no simplification).
    /// </summary>
    private static double[] FocaReference(bool[] full, double[] s, Func<int, double> f, bool corrector)
    {
        var output = new double[full.Length];
        double? y = null, yp = null, ffull = null, dfull = null;
        int nfull = 0;
        for (int n = 0; n < full.Length; n++)
        {
            double value;
            if (full[n])
            {
                value = f(n);
                if (ffull is double last)
                {
                    dfull = (value - last) / (s[n] - s[nfull]);
                }

                ffull = value;
                nfull = n;
            }
            else
            {
                double yv = y!.Value, h = s[n] - s[n - 1];
                if (yp is double ypv)
                {
                    double hPrev = s[n - 1] - s[n - 2], w = h / hPrev;
                    double dloc = (yv - ypv) / hPrev;
                    double p = ((((1 + w) * (1 + w) * yv) - (w * w * ypv)) / (1 + (2 * w))) + (h * (1 + w) / (1 + (2 * w)) * dloc);
                    double dpred = (((1 + (2 * w)) * p) - ((1 + w) * (1 + w) * yv) + (w * w * ypv)) / (h * (1 + w));
                    value = corrector && dfull is double d ? yv + (h / 2 * (d + dpred)) : p;
                }
                else
                {
                    value = dfull is double d ? yv + (h * d) : yv;
                }
            }

            output[n] = value;
            yp = y;
            y = value;
        }

        return output;
    }

    /// <summary>vipshop/cache-dit <c>foca.py</c> as paraphrased in docs/methods.md §2.6, in float64, for one scalar feature.</summary>
    private static double[] CacheDitReference(bool[] full, Func<int, double> f)
    {
        var output = new double[full.Length];
        double? fk = null, fkm1 = null, ffull = null, ffullPrev = null;
        int nfull = 0;
        for (int n = 0; n < full.Length; n++)
        {
            double value;
            if (full[n])
            {
                value = f(n);
                ffullPrev = ffull;
                ffull = value;
                nfull = n;
            }
            else if (fkm1 is null || ffullPrev is null)
            {
                value = ffull!.Value;
            }
            else
            {
                int e = n - nfull;
                double derivFull = ffull!.Value - ffullPrev.Value, derivCurr = fk!.Value - fkm1.Value;
                if (e <= 3)
                {
                    value = ffull.Value + (e / 2.0 * (derivFull + derivCurr));
                }
                else
                {
                    double w = 3.0 / e;
                    value = (w * (ffull.Value + (1.5 * (derivFull + derivCurr)))) + ((1 - w) * ffull.Value);
                }
            }

            output[n] = value;
            fkm1 = fk;
            fk = value;
        }

        return output;
    }

    /// <summary>
    /// TaylorSeer-DiT's official recursion (cal_type/derivative_approximation/taylor_formula) in float64; differences
    /// are formed only from ordinal first_enhance − 1 = warmup − 1 on (docs/methods.md §4.1).
    /// </summary>
    private static double[] TaylorReference(bool[] full, Func<int, double> f, int order, int warmup)
    {
        var output = new double[full.Length];
        var factors = new List<double>();
        int last = 0;
        for (int n = 0; n < full.Length; n++)
        {
            if (full[n])
            {
                double gap = n - last;
                var updated = new List<double> { f(n) };
                for (int j = 0; j < order && j < factors.Count && n >= warmup - 1; j++)
                {
                    updated.Add((updated[j] - factors[j]) / gap);
                }

                factors = updated;
                last = n;
                output[n] = f(n);
            }
            else
            {
                double x = n - last, sum = 0, factorial = 1;
                for (int j = 0; j < factors.Count; j++)
                {
                    factorial *= Math.Max(1, j);
                    sum += factors[j] * Math.Pow(x, j) / factorial;
                }

                output[n] = sum;
            }
        }

        return output;
    }

    [Theory]
    [InlineData("foca:n=3")]
    [InlineData("foca:n=5")]
    [InlineData("foca:n=5,corrector=off")]
    [InlineData("foca:n=4,warmup=1")]
    [InlineData("foca:n=3,time=t")]
    [InlineData("foca:n=5,time=t")]
    [InlineData("foca:n=5,corrector=off,time=t")]
    [InlineData("foca:n=3,reading=cachedit")]
    [InlineData("foca:n=6,reading=cachedit")]
    [InlineData("taylorseer:n=4,o=4")]
    [InlineData("taylorseer:n=5,o=2")]
    [InlineData("taylorseer:n=3,o=0")]
    [InlineData("taylorseer:n=4,o=4,warmup=3")]
    [InlineData("taylorseer:n=3,o=2,warmup=4")]
    public void ForecastsMatchTheFloat64Reference(string spec)
    {
        ICacheOptions options = CacheRegistry.Parse(spec);
        CacheRunInfo run = SeamHarness.Run(Steps, SeamHarness.CurvedTimesteps(Steps));
        (_, float[][][] outputs) = SeamHarness.Drive(options.Build(run), Steps, Wave);
        for (int k = 0; k < 2 * SeamHarness.Depth; k++)
        {
            var site = new FeatureSite(k / 2, (Site)(k % 2));
            foreach (int i in new[] { 0, 5, 36 })
            {
                double[] expected = options switch
                {
                    FocaOptions { Reading: FocaReading.CacheDit } f => CacheDitReference(f.FullSteps(Steps), n => (float)Wave(n, site, i)),
                    FocaOptions f => FocaReference(f.FullSteps(Steps), f.TimeGrid(run), n => (float)Wave(n, site, i), f.Corrector),
                    TaylorSeerOptions t => TaylorReference(t.FullSteps(Steps), n => (float)Wave(n, site, i), t.MaxOrder, t.Warmup),
                    _ => throw new InvalidOperationException(spec),
                };
                for (int n = 0; n < Steps; n++)
                {
                    Assert.True(Math.Abs(outputs[n][k][i] - expected[n]) <= 2e-4 * (1 + Math.Abs(expected[n])),
                        $"{spec} n={n} site={k} i={i}: {outputs[n][k][i]} vs {expected[n]}");
                }
            }
        }
    }

    [Theory]
    [InlineData("foca:n=3,time=t")]
    [InlineData("foca:n=5,time=t")]
    // BDF2-only (corrector=off) is exact in exact arithmetic too (VariableStepFocaIsExactOnLinearFeatures), but with
    // non-dyadic step ratios its recursion amplifies float32 round-off by about N−1 per cycle; it is checked against
    // the float64 reference instead (ForecastsMatchTheFloat64Reference).
    public void VariableStepFocaIsExactOnFeaturesLinearInTheTimestep(string spec)
    {
        float[] t = SeamHarness.CurvedTimesteps(Steps);
        double Feature(int n, FeatureSite site, int i) => (0.125 * (site.Index + 1) * (i - 18)) + ((0.0625 * i) - (0.25 * site.Index)) * (t[0] - t[n]) / 64;
        (_, float[][][] outputs) = SeamHarness.Drive(CacheRegistry.Parse(spec).Build(SeamHarness.Run(Steps, t)), Steps, Feature);
        for (int n = 0; n < Steps; n++)
        {
            for (int k = 0; k < 2 * SeamHarness.Depth; k++)
            {
                var site = new FeatureSite(k / 2, (Site)(k % 2));
                double scale = 1 + Enumerable.Range(0, SeamHarness.Length).Max(i => Math.Abs(Feature(n, site, i)));
                for (int i = 0; i < SeamHarness.Length; i++)
                {
                    double expected = Feature(n, site, i);
                    Assert.True(Math.Abs(outputs[n][k][i] - expected) <= 1e-4 * scale, $"{spec} n={n} site={k} i={i}: {outputs[n][k][i]} vs {expected}");
                }
            }
        }

        // On the same grid, h = 1 step is not exact: the variant really uses the timesteps.
        (_, float[][][] stepwise) = SeamHarness.Drive(new FocaOptions(5).Build(SeamHarness.Run(Steps, t)), Steps, Feature);
        Assert.NotEqual(outputs[3][0], stepwise[3][0]);
    }

    [Fact]
    public void CorrectorChangesTheForecast()
    {
        (_, float[][][] heun) = SeamHarness.Drive(new FocaOptions(5).Build(SeamHarness.Run(Steps)), Steps, Wave);
        (_, float[][][] bdf2) = SeamHarness.Drive(new FocaOptions(5, Corrector: false).Build(SeamHarness.Run(Steps)), Steps, Wave);
        Assert.Equal(heun[1][0], bdf2[1][0]);
        Assert.NotEqual(heun[2][0], bdf2[2][0]);
    }

    [Fact]
    public void RunsAreIndependentOfWhatRanBefore()
    {
        string[] specs = ["foca:n=5", "taylorseer:n=4,o=2", "fora:n=3", "foca:n=3,corrector=off", "foca:n=4,time=t", "foca:n=4,reading=cachedit"];
        var fresh = specs.ToDictionary(s => s, s => SeamHarness.Drive(CacheRegistry.Parse(s).Build(SeamHarness.Run(Steps)), Steps, Wave).Outputs);

        // One after another, in reverse order, each built from the same options object, then a second run of one policy.
        foreach (string spec in specs.Reverse())
        {
            ICachePolicy policy = CacheRegistry.Parse(spec).Build(SeamHarness.Run(Steps));
            SeamHarness.Drive(policy, Steps, Linear);                           // a first image of another sequence
            float[][][] again = SeamHarness.Drive(policy, Steps, Wave).Outputs; // n = 0 starts a new image
            for (int n = 0; n < Steps; n++)
            {
                for (int k = 0; k < 2 * SeamHarness.Depth; k++)
                {
                    Assert.Equal(fresh[spec][n][k], again[n][k]);
                }
            }
        }
    }

    [Theory]
    [InlineData("fora:n=3", 1)]
    [InlineData("taylorseer:n=4,o=2", 3)]
    [InlineData("taylorseer:n=4,o=4", 5)]
    [InlineData("foca:n=5", 4)]
    [InlineData("foca:n=5,reading=cachedit", 4)]
    public void CacheBytesCountTheSlotsAllocatedAtBuild(string spec, int slots)
    {
        ICachePolicy policy = CacheRegistry.Parse(spec).Build(SeamHarness.Run(Steps));
        Assert.Equal(2L * SeamHarness.Depth * slots * SeamHarness.Length * sizeof(float), policy.CacheBytes);
    }

    [Theory]
    [InlineData("fora:n=3")]
    [InlineData("taylorseer:n=4,o=4")]
    [InlineData("foca:n=5")]
    [InlineData("foca:n=5,time=t")]
    [InlineData("foca:n=5,reading=cachedit")]
    public void TheStepLoopAllocatesNothing(string spec)
    {
        ICachePolicy policy = CacheRegistry.Parse(spec).Build(SeamHarness.Run(Steps));
        var feature = new float[SeamHarness.Length];
        var output = new float[SeamHarness.Length];
        void Loop()
        {
            for (int n = 0; n < Steps; n++)
            {
                policy.BeginStep(n, n);
                for (int k = 0; k < 2 * SeamHarness.Depth; k++)
                {
                    var site = new FeatureSite(k / 2, (Site)(k % 2));
                    if (!policy.TryForecast(site, output))
                    {
                        feature[0] = n;
                        policy.Record(site, feature);
                    }
                }
            }
        }

        Loop();     // warm up the JIT
        long before = GC.GetAllocatedBytesForCurrentThread();
        Loop();
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [Fact]
    public void MisuseIsReported()
    {
        ICachePolicy policy = new FocaOptions(5).Build(SeamHarness.Run(10));
        Assert.Throws<InvalidOperationException>(() => policy.TryForecast(new FeatureSite(0, Site.Attn), new float[SeamHarness.Length]));
        Assert.Throws<InvalidOperationException>(() => policy.BeginStep(1, 0));
        policy.BeginStep(0, 999);
        Assert.Throws<ArgumentException>(() => policy.Record(new FeatureSite(0, Site.Attn), new float[3]));
        Assert.Throws<ArgumentOutOfRangeException>(() => policy.Record(new FeatureSite(SeamHarness.Depth, Site.Attn), new float[SeamHarness.Length]));
        Assert.Throws<InvalidOperationException>(() => policy.BeginStep(2, 0));
        Assert.Throws<InvalidOperationException>(() => new TaylorSeerOptions().Build(SeamHarness.Run(3)).BeginStep(3, 0));
    }
}
