using DitCache.Tensors;
using Xunit;

namespace DitCache.Caching.Tests;

public class OptionsTests
{
    [Theory]
    [InlineData("fora:n=0", "n=0")]
    [InlineData("fora:n=-3", "n=-3")]
    [InlineData("fora:n=x", "n=x")]
    [InlineData("fora:o=2", "o")]
    [InlineData("taylorseer:n=0", "n=0")]
    [InlineData("taylorseer:o=-1", "o=-1")]
    [InlineData("taylorseer:o=9", "o=9")]
    [InlineData("taylorseer:warmup=0", "warmup=0")]
    [InlineData("taylorseer:n=4,order=2", "order")]
    [InlineData("foca:n=0", "n=0")]
    [InlineData("foca:warmup=0", "warmup=0")]
    [InlineData("foca:corrector=maybe", "corrector=maybe")]
    [InlineData("foca:n=5,o=2", "o")]
    [InlineData("foca:time=sigma", "time=sigma")]
    [InlineData("foca:reading=b", "reading=b")]
    [InlineData("foca:reading=cachedit,corrector=off", "reading=cachedit")]
    [InlineData("foca:reading=cachedit,time=t", "reading=cachedit")]
    public void BadKnobsAreUsageErrorsNamingTheKnob(string spec, string knob)
    {
        var e = Assert.Throws<DitCacheException>(() => CacheRegistry.Parse(spec));
        Assert.Equal(2, e.ExitCode);
        Assert.Contains(knob, e.Message);
    }

    [Fact]
    public void OptionsBuiltInCodeAreValidatedToo()
    {
        Assert.Contains("n=0", Assert.Throws<DitCacheException>(() => new ForaOptions(0).Validate()).Message);
        Assert.Contains("o=12", Assert.Throws<DitCacheException>(() => new TaylorSeerOptions(4, 12).Validate()).Message);
        Assert.Contains("warmup=0", Assert.Throws<DitCacheException>(() => new FocaOptions(5, 0).Build(SeamHarness.Run(10))).Message);
    }

    [Fact]
    public void DefaultsAreThePaperDefaults()
    {
        Assert.Equal(new ForaOptions(3), CacheRegistry.Parse("fora"));
        Assert.Equal(new TaylorSeerOptions(4, 4, 2), CacheRegistry.Parse("taylorseer"));
        Assert.Equal(new FocaOptions(5, 2, true), CacheRegistry.Parse("foca"));
    }

    [Theory]
    [InlineData("fora:n=3")]
    [InlineData("fora:n=5")]
    [InlineData("taylorseer:n=4,o=2")]
    [InlineData("taylorseer:n=3,o=1,warmup=3")]
    [InlineData("foca:n=5")]
    [InlineData("foca:n=5,corrector=off")]
    [InlineData("foca:n=3,warmup=1,corrector=on")]
    [InlineData("foca:n=5,time=t")]
    [InlineData("foca:n=5,corrector=off,time=t")]
    [InlineData("foca:n=4,reading=cachedit")]
    public void SpecRoundTrips(string spec)
    {
        ICacheOptions options = CacheRegistry.Parse(spec);
        Assert.Equal(options, CacheRegistry.Parse(options.Spec));
        Assert.Equal(spec[..spec.IndexOf(':', System.StringComparison.Ordinal)], options.Name);
    }

    [Fact]
    public void KnobsReachTheRecord()
    {
        Assert.Equal(new TaylorSeerOptions(4, 2, 2), CacheRegistry.Parse("taylorseer:n=4,o=2"));
        Assert.Equal(new FocaOptions(5, 2, false), CacheRegistry.Parse("foca:n=5,corrector=off"));
        Assert.Equal(new FocaOptions(3, 4, true), CacheRegistry.Parse("foca:n=3,warmup=4"));
        Assert.Equal(new FocaOptions(5, Time: FocaTime.Timestep), CacheRegistry.Parse("foca:time=t"));
        Assert.Equal(new FocaOptions(5, Reading: FocaReading.CacheDit), CacheRegistry.Parse("foca:reading=cachedit"));
    }

    [Fact]
    public void FocaTimeNeedsDecreasingTimesteps()
    {
        var run = new CacheRunInfo(3, [999f, 500f, 500f], 1, 4, 1, 1);
        var e = Assert.Throws<DitCacheException>(() => new FocaOptions(Time: FocaTime.Timestep).Build(run));
        Assert.Contains("time=t", e.Message);
        Assert.Equal(2, e.ExitCode);
        Assert.NotNull(new FocaOptions().Build(run));     // time=step ignores the grid
    }
}
