using DitCache.Tensors;
using Xunit;

namespace DitCache.Caching.Tests;

public class CacheSpecTests
{
    [Fact]
    public void ParsesNameAndKnobs()
    {
        CacheSpec spec = CacheSpec.Parse("foca:n=5,order=2,mode=Fast,w=0.25");
        Assert.Equal("foca", spec.Name);
        Assert.Equal(5, spec.GetInt("n", 1, 1, 100));
        Assert.Equal(2, spec.GetInt("order", 1));
        Assert.Equal(0.25, spec.GetDouble("w", 0));
        Assert.Equal("fast", spec.GetChoice("mode", "slow", "slow", "fast"));
        Assert.Equal(7, spec.GetInt("absent", 7));
        spec.RejectUnknownKeys();
    }

    [Theory]
    [InlineData("")]
    [InlineData(":n=5")]
    [InlineData("foca:n")]
    [InlineData("foca:=5")]
    [InlineData("foca:n=5,n=6")]
    public void MalformedSpecsAreUsageErrors(string text)
    {
        var e = Assert.Throws<DitCacheException>(() => CacheSpec.Parse(text));
        Assert.Equal(2, e.ExitCode);
        Assert.Contains("--cache", e.Message);
    }

    [Fact]
    public void BadKnobValuesNameTheKnob()
    {
        var e = Assert.Throws<DitCacheException>(() => CacheSpec.Parse("x:n=abc").GetInt("n", 1));
        Assert.Contains("n=abc", e.Message);
        e = Assert.Throws<DitCacheException>(() => CacheSpec.Parse("x:n=0").GetInt("n", 1, min: 1));
        Assert.Contains("n=0", e.Message);
        e = Assert.Throws<DitCacheException>(() => CacheSpec.Parse("x:w=nan").GetDouble("w", 1));
        Assert.Contains("w=nan", e.Message);
        e = Assert.Throws<DitCacheException>(() => CacheSpec.Parse("x:m=z").GetChoice("m", "a", "a", "b"));
        Assert.Contains("m=z", e.Message);
    }

    [Fact]
    public void UnknownKnobsAreRefusedWithTheKnownOnes()
    {
        CacheSpec spec = CacheSpec.Parse("x:n=3,typo=1");
        spec.GetInt("n", 1);
        var e = Assert.Throws<DitCacheException>(spec.RejectUnknownKeys);
        Assert.Contains("typo", e.Message);
        Assert.Contains("n", e.Message);
    }

    [Fact]
    public void RegistryKnowsNoneAndRefusesUnknownNames()
    {
        ICacheOptions none = CacheRegistry.Parse("none");
        Assert.Equal("none", none.Name);
        Assert.Throws<DitCacheException>(() => CacheRegistry.Parse("none:n=2"));
        var e = Assert.Throws<DitCacheException>(() => CacheRegistry.Parse("warp"));
        Assert.Contains("warp", e.Message);
        Assert.Equal(2, e.ExitCode);
    }
}
