using System;
using System.IO;
using System.Linq;
using DitCache.Tensors.IO;
using Xunit;

namespace DitCache.Sampling.Tests;

/// <summary>Respacing and the diffusion tables against the PyTorch reference (golden file) and numpy.</summary>
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

    /// <summary>
    /// (i, beta_i, alpha_bar_i) printed by numpy, independently of the C# tables:
    /// <c>b = np.linspace(1e-4, 0.02, 1000); a = np.cumprod(1 - b)</c> (DiT's <c>get_named_beta_schedule("linear")</c>).
    /// </summary>
    public static TheoryData<int, double, double> NumpyTable => new()
    {
        { 0, 0.0001, 0.9999 },
        { 1, 0.00011991991991991993, 0.9997800920720721 },
        { 2, 0.00013983983983983984, 0.9996402829841216 },
        { 9, 0.0002792792792792793, 0.9981052047858344 },
        { 99, 0.0020720720720720717, 0.89701814567496 },
        { 249, 0.00506006006006006, 0.5240853738253606 },
        { 499, 0.010040040040040039, 0.07858724288177824 },
        { 749, 0.015020020020020019, 0.0033505504389367744 },
        { 998, 0.01998008008008008, 4.118193638138445e-05 },
        { 999, 0.02, 4.035829765375676e-05 },
    };

    [Theory]
    [MemberData(nameof(NumpyTable))]
    public void LinearBetasAndCumulativeProductsMatchNumpy(int i, double beta, double alphaBar)
    {
        var g = new GaussianDiffusion(1000);
        Assert.Equal(1000, g.Betas.Length);
        // Relative 1e-12: a running product of 1000 factors accumulates ~1000 roundings of 1.1e-16 each, and the
        // betas are read back from its ratios, 1 − ᾱ_i/ᾱ_(i−1), as respace.py does even at 1000 steps.
        Assert.True(Math.Abs(g.Betas[i] - beta) <= 1e-12 * beta, $"beta[{i}] = {g.Betas[i]:R}, numpy {beta:R}");
        Assert.True(Math.Abs(g.AlphasCumprod[i] - alphaBar) <= 1e-12 * alphaBar, $"alpha_bar[{i}] = {g.AlphasCumprod[i]:R}, numpy {alphaBar:R}");
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
