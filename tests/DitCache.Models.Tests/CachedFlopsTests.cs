using System;
using System.Linq;
using DitCache.Caching;
using DitCache.Caching.Calibration;
using DitCache.Tensors;
using Xunit;

namespace DitCache.Models.Tests;

/// <summary>
/// FLOPs of cached runs in the DiT-paper convention (docs/methods.md §0 and §9.1): a module-cached step counts the
/// adaLN projections only. The DiT-XL/2 figures need no weights: a full step is <see cref="DitFlops.Forward"/>, a
/// cached one depth × <see cref="DitFlops.AdaLn"/> (the tiny-model test below checks DitModel counts exactly that).
/// </summary>
public class CachedFlopsTests
{
    private static bool[] FullSteps(ICacheOptions options, int steps) => options switch
    {
        NoCacheOptions => Enumerable.Repeat(true, steps).ToArray(),
        ForaOptions f => f.FullSteps(steps),
        TaylorSeerOptions t => t.FullSteps(steps),
        FocaOptions f => f.FullSteps(steps),
        SpectrumOptions f => f.FullSteps(steps),
        _ => throw new ArgumentException(options.Spec, nameof(options)),
    };

    [Theory]
    [InlineData("none", 50, 23.735)]
    [InlineData("taylorseer:n=3", 18, 8.56)]     // FoCa/TaylorSeer DiT tables: 8.56
    [InlineData("foca:n=3", 18, 8.56)]
    [InlineData("taylorseer:n=5", 11, 5.24)]     // 5.24
    [InlineData("foca:n=5", 11, 5.24)]
    [InlineData("fora:n=3", 18, 8.56)]
    [InlineData("taylorseer:n=2", 26, 12.35)]    // FoCa N=2: 12.35
    public void DitXl2Ddim50WithCfgMatchesThePublishedTables(string spec, int fullSteps, double teraflops)
    {
        DitConfig c = DitConfig.FromPreset("DiT-XL/2", 256);
        const int Batch = 2;                                  // one image with CFG
        bool[] full = FullSteps(CacheRegistry.Parse(spec), 50);
        double total = full.Sum(f => f ? DitFlops.Forward(c, Batch) : c.Depth * DitFlops.AdaLn(c, Batch));
        Assert.Equal(fullSteps, full.Count(f => f));
        Assert.Equal(teraflops, total / 1e12, 2);             // the tables print two decimals
    }

    [Fact]
    public void SpectrumCachedStepsCountNothing()
    {
        // docs/methods.md §0: no block runs on a Spectrum cached step, not even adaLN. 14 computed steps of 50.
        DitConfig c = DitConfig.FromPreset("DiT-XL/2", 256);
        bool[] full = FullSteps(CacheRegistry.Parse("spectrum:n=2,alpha=0.75"), 50);
        Assert.Equal(14, full.Count(f => f));
        Assert.Equal(6.646, full.Count(f => f) * DitFlops.Forward(c, 2) / 1e12, 3);

        var model = new DitModel(DitWeights.FromFile(Golden.Weights), new ManagedGemm(1), 1);
        DitRunState s = model.CreateState(2);
        var output = new float[Golden.Get("out").Length];
        var options = new SpectrumOptions(Warmup: 2);
        bool[] schedule = options.FullSteps(4);
        Assert.Equal([true, true, false, true], schedule);
        ICachePolicy policy = options.Build(new CacheRunInfo(4, [999f, 666f, 333f, 0f], 2, model.Config.Tokens, model.Config.Hidden, model.Config.Depth));
        for (int n = 0; n < 4; n++)
        {
            policy.BeginStep(n, 999 - (333 * n));
            model.Forward(Golden.Get("x").Data, [999 - (333 * n), 999 - (333 * n)], Golden.Labels("y"), s, policy, output);
            Assert.Equal(schedule[n], s.LastFullyComputed);
            Assert.Equal(!schedule[n], s.LastBlocksSkipped);
            Assert.Equal(schedule[n] ? DitFlops.Forward(model.Config, 2) : 0, s.LastFlops, 6);
            Assert.All(output, v => Assert.True(float.IsFinite(v)));
        }
    }

    [Fact]
    public void ACachedForwardCountsAdaLnOnly()
    {
        var model = new DitModel(DitWeights.FromFile(Golden.Weights), new ManagedGemm(1), 1);
        DitConfig c = model.Config;
        DitRunState s = model.CreateState(2);
        var output = new float[Golden.Get("out").Length];
        ICachePolicy policy = new TaylorSeerOptions(3, 1).Build(new CacheRunInfo(5, [999f, 750f, 500f, 250f, 0f], 2, c.Tokens, c.Hidden, c.Depth));
        bool[] full = new TaylorSeerOptions(3, 1).FullSteps(5);
        Assert.Equal([true, true, false, false, true], full);
        for (int n = 0; n < 5; n++)
        {
            policy.BeginStep(n, 999 - (250 * n));
            model.Forward(Golden.Get("x").Data, [999 - (250 * n), 999 - (250 * n)], Golden.Labels("y"), s, policy, output);
            Assert.Equal(full[n], s.LastFullyComputed);
            Assert.Equal(full[n] ? 2 * c.Depth : 0, s.LastModulesComputed);
            Assert.Equal(full[n] ? 0 : 2 * c.Depth, s.LastModulesForecast);
            double expected = full[n] ? DitFlops.Forward(c, 2) : c.Depth * DitFlops.AdaLn(c, 2);
            Assert.Equal(expected, s.LastFlops, 6);
        }
    }

    [Fact]
    public void TeaCacheSkippedStepsCountBlockZerosAdaLnAndMagCacheNothing()
    {
        // docs/methods.md §9.1: a skipped block stack counts 0 block FLOPs, but TeaCache's indicator runs block 0's adaLN.
        // Hand-made calibrations: TeaCache poly = 0.1 with l = 0.15 computes steps 0, 2, 3; MagCache γ = 1 skips 1, 2.
        var model = new DitModel(DitWeights.FromFile(Golden.Weights), new ManagedGemm(1), 1);
        DitConfig c = model.Config;
        DitRunState s = model.CreateState(2);
        var output = new float[Golden.Get("out").Length];
        var run = new CalibrationRun("ddim", 4, 1.0, 1, 0, "test");
        var calibration = new CalibrationFile("test", "tiny", new TeaCacheCalibration(run, new double[3], new double[3], [0, 0, 0, 0, 0.1]),
            null, new MagCacheCalibration(run, [1, 1, 1, 1]));
        var info = new CacheRunInfo(4, [999f, 666f, 333f, 0f], 2, c.Tokens, c.Hidden, c.Depth, calibration, "ddim", 1.0);
        foreach ((ICacheOptions options, bool[] schedule, double skipped) in new (ICacheOptions, bool[], double)[]
        {
            (new TeaCacheOptions(0.15), [true, false, true, true], DitFlops.AdaLn(c, 2)),
            (new MagCacheOptions(0.5, 2, 0), [true, false, false, true], 0),
        })
        {
            ICachePolicy policy = options.Build(info);
            for (int n = 0; n < 4; n++)
            {
                policy.BeginStep(n, 999 - (333 * n));
                model.Forward(Golden.Get("x").Data, [999 - (333 * n), 999 - (333 * n)], Golden.Labels("y"), s, policy, output);
                Assert.Equal(schedule[n], s.LastFullyComputed);
                double expected = schedule[n] ? DitFlops.Forward(c, 2) + (options is TeaCacheOptions ? DitFlops.AdaLn(c, 2) : 0) : skipped;
                Assert.Equal(expected, s.LastFlops, 6);
            }
        }
    }
}
