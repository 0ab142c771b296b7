using System;
using System.Linq;
using DitCache.Caching;
using DitCache.Models;
using DitCache.Tensors;
using DitCache.Tensors.IO;
using Xunit;
using Xunit.Abstractions;

namespace DitCache.Sampling.Tests;

/// <summary>
/// FBCache, DBCache and Δ-DiT against an independent Python reading of docs/methods.md §5.4/§5.6 and cache-dit's guards
/// (tools/reference/make_blockcache_fixtures.py, which runs the block stack itself rather than a seam), on the
/// 4-block random DiT that script makes (the 2-block fixture cannot hold front and back blocks): 50 DDIM steps, CFG
/// 1.5 on all channels, classes [3, 7]. The number of blocks run at every step must match exactly (it encodes every
/// decision), the final sample to float32 round-off. The fixture's thresholds sit at least 9.6e-5 from every diff
/// the Python run took (printed by the script), far above the float32 noise of the diffs (about 1e-6), so the
/// decisions cannot flip on round-off.
/// </summary>
public class BlockCacheParityTests
{
    private const int Steps = 50;

    private static readonly ParityFixture s_golden = new("tiny_dit_deep_blockcache_golden.safetensors", "tools/reference/make_blockcache_fixtures.py");

    private static readonly Lazy<DiffusionPipeline> s_pipeline = new(() =>
        new(new DitModel(DitWeights.FromFile(SafeTensors.Load(ParityFixture.PathOf("tiny_dit_deep.safetensors"))), new ManagedGemm(2), 2)));

    private readonly ITestOutputHelper _output;

    public BlockCacheParityTests(ITestOutputHelper output)
    {
        _output = output;
    }

    // Relative L2 to the Python sample measured below 4e-7 for every spec (float32 round-off over 50 steps).
    private const double SampleBound = 1.5e-6;

    private static readonly string[] s_specs =
    [
        "fbcache:t=0.25,warmup=3",
        "fbcache:t=1,warmup=0,maxrun=2",
        "dbcache:f=2,b=1,t=0.22,warmup=4",
        "dbcache:f=1,b=2,t=0.21,warmup=2,maxcached=12",
        "delta-dit:n=2,b=25,blocks=2",
        "delta-dit:n=3,b=10,blocks=3",
    ];

    public static TheoryData<string> Specs => new(s_specs);

    private static SampleResult Sample(string spec) =>
        s_pipeline.Value.Run(new SampleRequest([3, 7], Steps, "ddim", CfgScale: 1.5f, Noise: s_golden["noise"]), CacheRegistry.Parse(spec));

    [Fact]
    public void EveryFixtureSpecHasATheoryRow()
    {
        string[] tested = s_specs.Order(StringComparer.Ordinal).ToArray();
        Assert.Equal(s_golden.CachedSpecs(), tested);
    }

    [Fact]
    public void UncachedSampleMatchesPython()
    {
        double error = ParityFixture.RelativeL2(s_golden["none.sample"].Data, Sample("none").Sample.Data);
        _output.WriteLine($"none: relative L2 {error:E2}");
        Assert.True(error < SampleBound, $"none: relative L2 {error:E2} exceeds {SampleBound}");
    }

    [Theory]
    [MemberData(nameof(Specs))]
    public void CachedSampleMatchesPython(string spec)
    {
        string prefix = s_golden.Prefix(spec);
        SampleResult result = Sample(spec);
        const int depth = 4;                                                             // tiny_dit_deep

        int[] expectedBlocks = s_golden[$"{prefix}.blocks"].Data.ToArray().Select(v => (int)v).ToArray();
        int[] actualBlocks = result.Steps.Select(s => depth - s.BlocksSkippedCount).ToArray();
        Assert.Equal(expectedBlocks, actualBlocks);
        Assert.Equal(s_golden[$"{prefix}.computed"].Data.ToArray().Select(v => v == 1f), result.Steps.Select(s => s.Computed));
        Assert.Contains(false, result.Steps.Select(s => s.Computed));                     // the fixture does cache

        double error = ParityFixture.RelativeL2(s_golden[$"{prefix}.sample"].Data, result.Sample.Data);
        _output.WriteLine($"{spec}: {expectedBlocks.Sum()} blocks run, relative L2 sample {error:E2}");
        Assert.True(error < SampleBound, $"{spec}: relative L2 {error:E2} to the Python sample exceeds {SampleBound}");
    }
}
