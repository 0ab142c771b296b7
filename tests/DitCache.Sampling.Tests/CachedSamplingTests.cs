using System;
using System.IO;
using System.Linq;
using DitCache.Caching;
using DitCache.Models;
using DitCache.Tensors;
using DitCache.Tensors.IO;
using Xunit;
using Xunit.Abstractions;

namespace DitCache.Sampling.Tests;

/// <summary>
/// Every module-caching accelerator end to end on the tiny DiT fixture (random weights, depth 2): 50 DDIM steps with
/// CFG 1.5, classes [3, 7], seed 0. Checks the computed-step list against the schedule, the FLOPs against the
/// DiT-paper convention, the cache memory, and that the sample stays near the uncached one.
/// </summary>
public class CachedSamplingTests
{
    private const int Steps = 50;
    private static readonly Lazy<DitModel> s_model = new(() =>
        new(DitWeights.FromFile(SafeTensors.Load(Path.Combine(AppContext.BaseDirectory, "TestData", "dit", "tiny_dit.safetensors"))), new ManagedGemm(2), 2));

    private static readonly Lazy<DiffusionPipeline> s_pipeline = new(() => new(s_model.Value));

    private static readonly Lazy<SampleResult> s_uncached = new(() => Sample(new NoCacheOptions()));

    private readonly ITestOutputHelper _output;

    public CachedSamplingTests(ITestOutputHelper output)
    {
        _output = output;
    }

    private static SampleResult Sample(ICacheOptions options) =>
        s_pipeline.Value.Run(new SampleRequest([3, 7], Steps, "ddim", CfgScale: 1.5f, Seed: 0), options);

    private static double RelativeL2(ReadOnlySpan<float> reference, ReadOnlySpan<float> actual)
    {
        double num = 0, den = 0;
        for (int i = 0; i < reference.Length; i++)
        {
            double d = (double)actual[i] - reference[i];
            num += d * d;
            den += (double)reference[i] * reference[i];
        }

        return Math.Sqrt(num / den);
    }

    private static (bool[] Full, int Slots) Expected(ICacheOptions options) => options switch
    {
        ForaOptions f => (f.FullSteps(Steps), 1),
        TaylorSeerOptions t => (t.FullSteps(Steps), t.MaxOrder + 1),
        FocaOptions f => (f.FullSteps(Steps), FocaForecaster.Slots),
        SpectrumOptions f => (f.FullSteps(Steps), -1),
        _ => throw new ArgumentException(options.Spec, nameof(options)),
    };

    // Bounds are about 5x the relative L2 measured on this fixture (fora n=3 4.4e-4, n=5 7.9e-4; taylorseer
    // n=3,o=1 1.3e-4, n=4,o=2 1.8e-4, n=5,o=4 2.6e-4; foca n=3 1.0e-4, n=5 2.1e-4, n=5 BDF2-only 1.0e-3).
    [Theory]
    [InlineData("fora:n=3", 2e-3)]
    [InlineData("fora:n=5", 4e-3)]
    [InlineData("taylorseer:n=3,o=1", 1e-3)]
    [InlineData("taylorseer:n=4,o=2", 1e-3)]
    [InlineData("taylorseer:n=5,o=4", 1.5e-3)]
    [InlineData("foca:n=3", 1e-3)]
    [InlineData("foca:n=5", 1e-3)]
    [InlineData("foca:n=5,corrector=off", 5e-3)]
    [InlineData("foca:n=5,time=t", 1e-3)]              // measured 2.0e-4
    [InlineData("foca:n=5,reading=cachedit", 1.5e-3)]  // measured 2.7e-4
    [InlineData("spectrum:n=2,alpha=0.75", 1.5e-2)]    // measured 2.9e-3 (block level: the whole stack is forecast)
    [InlineData("spectrum:n=2,alpha=3", 3e-2)]         // measured 5.5e-3
    public void CachedSampleFollowsTheScheduleAndStaysNearTheUncachedOne(string spec, double bound)
    {
        ICacheOptions options = CacheRegistry.Parse(spec);
        SampleResult result = Sample(options);
        SampleResult reference = s_uncached.Value;
        DitConfig c = s_model.Value.Config;
        (bool[] full, int slots) = Expected(options);

        Assert.Equal(full, result.Steps.Select(s => s.Computed));
        bool blockLevel = options is SpectrumOptions;     // skips whole stacks: a cached step counts 0 (docs/methods.md §0)
        double flops = full.Sum(f => f ? DitFlops.Forward(c, 4) : blockLevel ? 0 : c.Depth * DitFlops.AdaLn(c, 4));
        Assert.Equal(flops, result.Flops, 3);
        Assert.Equal(reference.Flops, result.FullFlops, 3);
        long bytes = blockLevel ? full.Count(f => f) : 2L * c.Depth * slots;
        Assert.Equal(bytes * 4 * c.Tokens * c.Hidden * sizeof(float), result.CacheBytes);

        char cachedLetter = blockLevel ? 'S' : 'F';
        for (int n = 0; n < Steps; n++)
        {
            Assert.Equal(new string(full[n] ? 'C' : cachedLetter, 2 * c.Depth), StepTelemetry.Letters(result.Telemetry.Sites[n]));
        }

        Assert.Null(result.Telemetry.ShadowErrors);
        double error = RelativeL2(reference.Sample.Data, result.Sample.Data);
        _output.WriteLine($"{spec}: {full.Count(f => f)} full steps, FLOPs x{result.FullFlops / result.Flops:F2}, relative L2 {error:E3}");
        Assert.True(error < bound, $"{spec}: relative L2 {error:E3} to the uncached sample exceeds {bound}");
        Assert.True(error > 0, $"{spec}: identical to the uncached sample, so nothing was cached");
    }

    [Fact]
    public void ForecastingBeatsReuseAtTheSameFlops()
    {
        double fora = RelativeL2(s_uncached.Value.Sample.Data, Sample(new ForaOptions(5)).Sample.Data);
        double taylor = RelativeL2(s_uncached.Value.Sample.Data, Sample(new TaylorSeerOptions(5, 2)).Sample.Data);
        double foca = RelativeL2(s_uncached.Value.Sample.Data, Sample(new FocaOptions(5)).Sample.Data);
        Assert.True(taylor < fora && foca < fora, $"relative L2 at 11 full steps: fora {fora:E3}, taylorseer {taylor:E3}, foca {foca:E3}");
    }

    [Fact]
    public void RunsOneAfterAnotherMatchFreshRuns()
    {
        SampleResult foca = Sample(new FocaOptions(5));
        SampleResult taylor = Sample(new TaylorSeerOptions(4, 2));
        Assert.Equal(foca.Sample.Data, Sample(new FocaOptions(5)).Sample.Data);
        Assert.Equal(taylor.Sample.Data, Sample(new TaylorSeerOptions(4, 2)).Sample.Data);
        Assert.Equal(s_uncached.Value.Sample.Data, Sample(new NoCacheOptions()).Sample.Data);
    }

    [Theory]
    [InlineData("foca:n=5")]
    [InlineData("spectrum:n=2,alpha=0.75")]
    public void ShadowRunsMeasureEveryForecastAndChangeNothing(string spec)
    {
        ICacheOptions options = CacheRegistry.Parse(spec);
        SampleResult plain = Sample(options);
        SampleResult shadow = s_pipeline.Value.Run(new SampleRequest([3, 7], Steps, "ddim", CfgScale: 1.5f, Seed: 0, Shadow: true), options);
        Assert.Equal(plain.Sample.Data, shadow.Sample.Data);
        Assert.Equal(plain.Flops, shadow.Flops);
        double[][] errors = shadow.Telemetry.ShadowErrors!;
        double[] blocks = shadow.Telemetry.ShadowBlocksErrors!;
        for (int n = 0; n < Steps; n++)
        {
            SiteOutcome[] sites = shadow.Telemetry.Sites[n];
            for (int i = 0; i < sites.Length; i++)
            {
                Assert.Equal(sites[i] == SiteOutcome.Forecast, double.IsFinite(errors[n][i]));
            }

            Assert.Equal(shadow.Steps[n].BlocksSkipped, double.IsFinite(blocks[n]));
        }

        double[] measured = errors.SelectMany(e => e).Concat(blocks).Where(double.IsFinite).ToArray();
        Assert.NotEmpty(measured);
        Assert.All(measured, e => Assert.InRange(e, 1e-9, 1.0));
        _output.WriteLine($"{spec}: shadow relative L2 mean {measured.Average():E3}, max {measured.Max():E3}");
    }
}
