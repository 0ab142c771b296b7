using System;
using System.IO;
using System.Linq;
using DitCache.Caching;
using DitCache.Models;
using DitCache.Tensors;
using DitCache.Tensors.IO;
using Xunit;

namespace DitCache.Sampling.Tests;

/// <summary>
/// The whole denoising loop against PyTorch: 10 respaced steps of DDIM and DDPM with CFG 4 over all channels, on the
/// tiny random DiT of tools/reference/make_dit_fixtures.py, with the fixture's noise injected.
/// </summary>
public class SamplerParityTests
{
    private static readonly Lazy<TensorFile> s_golden = new(() => SafeTensors.Load(Fixture("tiny_dit_golden.safetensors")));

    private static string Fixture(string name) => Path.Combine(AppContext.BaseDirectory, "TestData", "dit", name);

    private static Tensor Get(string key) => s_golden.Value.Tensors[key];

    private static DiffusionPipeline Pipeline() =>
        new(new DitModel(DitWeights.FromFile(SafeTensors.Load(Fixture("tiny_dit.safetensors"))), new ManagedGemm(2), 2));

    [Fact]
    public void DdimMatchesPyTorch()
    {
        var request = new SampleRequest([3, 7], 10, "ddim", CfgScale: 4f, Noise: Get("ddim_noise"));
        SampleResult result = Pipeline().Run(request, new NoCacheOptions());
        Assert.Equal(Get("ddim_timesteps").Data.Select(v => (int)v), result.Steps.Select(s => s.Timestep));
        Assert.All(result.Steps, s => Assert.True(s.Computed));
        // Ten steps of float32 round-off through a DiT amplify the 1e-6 single-forward error about tenfold.
        TestMath.AssertClose(Get("ddim_sample").Data, result.Sample.Data, 1e-4, "ddim sample");
    }

    [Fact]
    public void DdpmMatchesPyTorchWithInjectedStepNoise()
    {
        Tensor stepNoise = Get("ddpm_step_noise");
        var request = new SampleRequest([3, 7], 10, "ddpm", CfgScale: 4f, Noise: Get("ddpm_noise"));
        var source = new SequenceNoise(stepNoise.Data);
        SampleResult result = Pipeline().Run(request, new NoCacheOptions(), source);
        Assert.Equal(9 * 2 * 4 * 8 * 8, source.Used);                 // every step but the last draws noise
        TestMath.AssertClose(Get("ddpm_sample").Data, result.Sample.Data, 1e-4, "ddpm sample");
    }

    [Fact]
    public void FlopsAndRecordsCoverTheRun()
    {
        SampleResult result = Pipeline().Run(new SampleRequest([1], 5, "ddim", CfgScale: 1.5f), new NoCacheOptions());
        Assert.Equal(5, result.Steps.Length);
        Assert.Equal(Enumerable.Range(0, 5), result.Steps.Select(s => s.N));
        Assert.Equal(result.FullFlops, result.Flops, 6);
        Assert.True(result.Flops > 0);
    }

    [Fact]
    public void SeededNoiseIsReproducible()
    {
        var a = Pipeline().Run(new SampleRequest([1, 2], 3, Seed: 5), new NoCacheOptions()).Sample.Data;
        var b = Pipeline().Run(new SampleRequest([1, 2], 3, Seed: 5), new NoCacheOptions()).Sample.Data;
        var c = Pipeline().Run(new SampleRequest([1, 2], 3, Seed: 6), new NoCacheOptions()).Sample.Data;
        Assert.Equal(a, b);
        Assert.NotEqual(a, c);
    }

    [Fact]
    public void BadRequestsAreRefused()
    {
        DiffusionPipeline p = Pipeline();
        Assert.Throws<ArgumentException>(() => p.Run(new SampleRequest([10], 3), new NoCacheOptions()));
        Assert.Throws<ArgumentException>(() => p.Run(new SampleRequest([1], 0), new NoCacheOptions()));
        Assert.Throws<ArgumentException>(() => p.Run(new SampleRequest([1], 3, Noise: Tensor.Zeros(2, 4, 8, 8)), new NoCacheOptions()));
        Assert.Throws<DitCacheException>(() => p.Run(new SampleRequest([1], 3, "euler"), new NoCacheOptions()));
    }

    /// <summary>Hands out the fixture's per-step noise in order.</summary>
    private sealed class SequenceNoise(float[] values) : INoiseSource
    {
        public int Used { get; private set; }

        public void Fill(Span<float> destination)
        {
            values.AsSpan(Used, destination.Length).CopyTo(destination);
            Used += destination.Length;
        }
    }
}
