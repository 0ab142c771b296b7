using DitCache.Tensors;
using Xunit;

namespace DitCache.Sampling.Tests;

/// <summary>The sampler names the commands accept, and what each builds.</summary>
public class SchedulerRegistryTests
{
    [Fact]
    public void NamesChoicesAndEta()
    {
        Assert.Equal(["ddim", "ddpm"], SchedulerRegistry.Names);
        Assert.Equal("ddim or ddpm", SchedulerRegistry.Choices);
        Assert.True(SchedulerRegistry.IsKnown("ddpm"));
        Assert.False(SchedulerRegistry.IsKnown("DDIM"));
        Assert.True(SchedulerRegistry.UsesEta("ddim"));
        Assert.False(SchedulerRegistry.UsesEta("ddpm"));
        Assert.False(SchedulerRegistry.UsesEta("euler"));
    }

    [Theory]
    [InlineData("ddim")]
    [InlineData("ddpm")]
    public void CreatesTheNamedScheduler(string name)
    {
        IScheduler scheduler = SchedulerRegistry.Create(name, 10, 0);
        Assert.Equal(name, scheduler.Name);
        Assert.Equal(10, scheduler.Diffusion.SamplingTimesteps.Count);
    }

    [Fact]
    public void UnknownSamplerIsAUsageError()
    {
        var e = Assert.Throws<DitCacheException>(() => SchedulerRegistry.Create("euler", 10, 0));
        Assert.Equal("--sampler 'euler' is unknown; choose ddim or ddpm", e.Message);
        Assert.Equal(2, e.ExitCode);
    }
}
