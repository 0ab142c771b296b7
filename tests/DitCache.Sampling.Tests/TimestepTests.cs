using System;
using System.IO;
using System.Linq;
using DitCache.Tensors.IO;
using Xunit;

namespace DitCache.Sampling.Tests;

/// <summary>Respacing and the diffusion tables against values from the PyTorch reference and closed forms.</summary>
public class TimestepTests
{
    private static float[] Golden(string key) =>
        SafeTensors.Load(Path.Combine(AppContext.BaseDirectory, "TestData", "dit", "tiny_dit_golden.safetensors")).Tensors[key].Data;

    [Theory]
    [InlineData(50, "ddim50_timesteps")]
    [InlineData(25, "steps25_timesteps")]
    [InlineData(10, "ddim_timesteps")]
    public void RespacingMatchesReference(int steps, string key)
    {
        var g = new GaussianDiffusion(steps);
        Assert.Equal(Golden(key).Select(v => (int)v), g.SamplingTimesteps.Select(v => (int)v));
    }

    [Fact]
    public void LinearBetasAndCumulativeProducts()
    {
        var g = new GaussianDiffusion(1000);
        Assert.Equal(1e-4, g.Betas[0], 12);
        Assert.Equal(0.02, g.Betas[999], 12);
        double prod = 1;
        for (int i = 0; i < 1000; i++)
        {
            prod *= 1 - (0.0001 + ((0.02 - 0.0001) * i / 999.0));
            Assert.Equal(prod, g.AlphasCumprod[i], 10);
        }
    }

    [Fact]
    public void RespacedBetasKeepTheCumulativeProduct()
    {
        var full = new GaussianDiffusion(1000);
        var g = new GaussianDiffusion(10);
        for (int i = 0; i < g.Steps; i++)
        {
            Assert.Equal(full.AlphasCumprod[g.TimestepMap[i]], g.AlphasCumprod[i], 10);
        }
    }
}
