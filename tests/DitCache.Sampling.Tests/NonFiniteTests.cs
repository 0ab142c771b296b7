using System;
using System.IO;
using DitCache.Caching;
using DitCache.Models;
using DitCache.Tensors;
using DitCache.Tensors.IO;
using Xunit;

namespace DitCache.Sampling.Tests;

/// <summary>A sample that stops being finite, or NaN in the initial noise, is an error naming where, never a result.</summary>
public class NonFiniteTests
{
    private static readonly Lazy<DitModel> s_model = new(() => new DitModel(
        DitWeights.FromFile(SafeTensors.Load(Path.Combine(AppContext.BaseDirectory, "TestData", "dit", "tiny_dit.safetensors"))), new ManagedGemm(1), 1));

    [Theory]
    [InlineData("none")]
    [InlineData("foca:n=3")]
    public void A_diverging_ddim_step_is_named(string cache)
    {
        // η = 1e30: σ_t² > 1 − ᾱ_prev, so the direction term's square root is NaN at the first step (docs/methods.md §6.4).
        var pipeline = new DiffusionPipeline(s_model.Value);
        var request = new SampleRequest([1, 2], Steps: 4, Sampler: "ddim", CfgScale: 1.5f, Seed: 0, Eta: 1e30);
        var e = Assert.Throws<DitCacheException>(() => pipeline.Run(request, CacheRegistry.Parse(cache)));
        Assert.StartsWith($"sampling diverged at step 0 of 4 (timestep 999, cache {cache}", e.Message, StringComparison.Ordinal);
        Assert.Contains("): the sample holds NaN at [0, 0, 0, 0]; check the model's weights and the sampler settings (--eta)", e.Message, StringComparison.Ordinal);
        Assert.Equal(cache != "none", e.Message.Contains("--cache none", StringComparison.Ordinal));
        Assert.Equal(1, e.ExitCode);
    }

    [Fact]
    public void Non_finite_initial_noise_is_refused()
    {
        var noise = Tensor.Zeros(2, 4, 8, 8);
        noise.Data[(1 * 256) + (3 * 64) + (7 * 8) + 6] = float.NegativeInfinity;
        var request = new SampleRequest([1, 2], Steps: 2, Sampler: "ddim", CfgScale: 1.5f, Seed: 0, Noise: noise);
        var e = Assert.Throws<DitCacheException>(() => new DiffusionPipeline(s_model.Value).Run(request, CacheRegistry.Parse("none")));
        Assert.Equal("the initial noise holds -Infinity at [1, 3, 7, 6]; it must be finite (standard normal samples)", e.Message);
    }
}
