using System.Collections.Generic;
using System.Linq;
using DitCache.Tensors;
using Xunit;

namespace DitCache.Caching.Tests;

/// <summary><c>--cache-budget</c>: byte counts against built policies, the coarsening chains, the choice and the refusal.</summary>
public class CacheBudgetTests
{
    // 6 blocks, 2 CFG rows of 16 tokens x 8 channels: one (B, T, D) tensor is 256 floats = 1,024 bytes.
    private static readonly CacheRunInfo s_run = new(20, Enumerable.Range(0, 20).Select(n => 999f - (n * 50f)).ToArray(), 2, 16, 8, 6, CfgScale: 4);

    [Theory]
    [InlineData("taylorseer:n=5")]
    [InlineData("taylorseer:n=4,o=2,basis=newton")]
    [InlineData("taylorseer:n=3,o=0")]
    [InlineData("hicache:n=4,o=3")]
    [InlineData("foca:n=5")]
    [InlineData("fora:n=3")]
    [InlineData("freqca:n=4,o=2")]
    [InlineData("freqca:n=4,o=0")]
    public void BytesWithoutBuildingEqualTheBuiltPolicys(string spec)
    {
        ICacheOptions options = CacheRegistry.Parse(spec);
        Assert.Equal(options.Build(s_run).CacheBytes, options.Bytes(s_run));
    }

    [Fact]
    public void TaylorSeerLowersItsOrderThenTakesFreqCasResidual()
    {
        Assert.Equal(
            [
                "taylorseer:n=5,o=4,warmup=2,basis=newton", "taylorseer:n=5,o=3,warmup=2,basis=newton", "taylorseer:n=5,o=2,warmup=2,basis=newton",
                "taylorseer:n=5,o=1,warmup=2,basis=newton", "freqca:n=5,o=2,warmup=2,sigma=0.5,cutoff=0.25",
                "freqca:n=5,o=1,warmup=2,sigma=0.5,cutoff=0.25", "freqca:n=5,o=0,warmup=2,sigma=0.5,cutoff=0.25",
            ],
            Chain("taylorseer:n=5,o=4,basis=newton"));
        Assert.Equal(["foca:n=3,warmup=3", "taylorseer:n=3,o=2,warmup=3,basis=newton"], Chain("foca:n=3,warmup=3").Take(2));
        Assert.Equal(["fora:n=3", "freqca:n=3,o=0,warmup=1,sigma=0.5,cutoff=0.25"], Chain("fora:n=3"));
        Assert.Equal("freqca:n=4,o=2,warmup=2,sigma=0.75,cutoff=0.25", Chain("hicache:n=4,o=1,sigma=0.75")[1]);
        Assert.Equal(["toca:n=3,ratio=0.07,sched=ddim50,w=0.25,bonus=0.6,schedule=block,score=attention"], Chain("toca"));
    }

    [Fact]
    public void EveryLinkHoldsLessThanTheOneBefore()
    {
        foreach (string spec in new[] { "taylorseer:n=5,o=4", "hicache:n=4,o=3", "foca:n=5", "fora:n=3" })
        {
            long[] bytes = ChainOptions(spec).Select(o => o.Bytes(s_run)).ToArray();
            for (int i = 1; i < bytes.Length; i++)
            {
                Assert.True(bytes[i] < bytes[i - 1], $"{spec}: link {i} holds {bytes[i]} bytes, not less than {bytes[i - 1]}");
            }
        }
    }

    [Fact]
    public void FitTakesTheFirstLinkAtOrUnderTheBudget()
    {
        // taylorseer o=4 holds 12 sites x 5 x 1,024 = 61,440 bytes; o=1 holds 24,576; freqca o=2 holds 6 x 1,024.
        ICacheOptions options = CacheRegistry.Parse("taylorseer:n=5,o=4");
        BudgetChoice whole = CacheBudget.Fit(options, s_run, 61_440);
        Assert.False(whole.FellBack);
        Assert.Same(options, whole.Options);

        BudgetChoice order1 = CacheBudget.Fit(options, s_run, 24_576);
        Assert.Equal("taylorseer:n=5,o=1,warmup=2", order1.Options.Spec);
        Assert.Equal(24_576, order1.Bytes);
        Assert.Equal([61_440L, 49_152, 36_864], order1.Tried.Select(t => t.Bytes));
        Assert.Contains("needs 60 KiB", order1.Describe(24_576).Replace("61,440 bytes", "60 KiB"));

        Assert.Equal("freqca:n=5,o=2,warmup=2,sigma=0.5,cutoff=0.25", CacheBudget.Fit(options, s_run, 24_575).Options.Spec);
        Assert.Equal("freqca:n=5,o=0,warmup=2,sigma=0.5,cutoff=0.25", CacheBudget.Fit(options, s_run, 4_096).Options.Spec);
    }

    [Fact]
    public void NothingFittingIsOneLineNamingTheCoarsestAndItsBytes()
    {
        var error = Assert.Throws<DitCacheException>(() => CacheBudget.Fit(CacheRegistry.Parse("taylorseer:n=5"), s_run, 4_095));
        Assert.Equal(2, error.ExitCode);
        Assert.Contains("freqca:n=5,o=0", error.Message);
        Assert.Contains("at least 4096", error.Message);
        Assert.DoesNotContain('\n', error.Message);
    }

    [Theory]
    [InlineData("512M", 536_870_912L)]
    [InlineData("2G", 2_147_483_648L)]
    [InlineData("3KiB", 3_072L)]
    [InlineData("1500000", 1_500_000L)]
    [InlineData("7mib", 7_340_032L)]
    public void ParsesBinaryByteCounts(string text, long bytes) => Assert.Equal(bytes, CacheBudget.ParseBytes(text, "--cache-budget"));

    [Theory]
    [InlineData("0")]
    [InlineData("-5M")]
    [InlineData("1.5G")]
    [InlineData("lots")]
    [InlineData("99999999999G")]
    [InlineData("")]
    public void RefusesWhatIsNotAByteCount(string text)
    {
        var error = Assert.Throws<DitCacheException>(() => CacheBudget.ParseBytes(text, "--cache-budget"));
        Assert.StartsWith("--cache-budget", error.Message);
        Assert.Equal(2, error.ExitCode);
    }

    private static List<ICacheOptions> ChainOptions(string spec)
    {
        var chain = new List<ICacheOptions>();
        for (ICacheOptions? o = CacheRegistry.Parse(spec); o is not null; o = o.Coarser())
        {
            chain.Add(o);
        }

        return chain;
    }

    private static string[] Chain(string spec) => ChainOptions(spec).Select(o => o.Spec).ToArray();
}
