using System;
using System.Collections.Generic;
using System.IO;
using DitCache.Evaluation.Inception;
using DitCache.Evaluation.Metrics;
using DitCache.Evaluation.Quality;
using DitCache.Models;
using DitCache.Tensors;
using DitCache.Tensors.IO;
using Xunit;

namespace DitCache.Evaluation.Tests.Inception;

/// <summary>
/// The FID scoring chain (VAE decode, DiT's sample_ddp.py quantisation, FID Inception) against PyTorch on the tiny
/// pipeline's latents (tests/TestData/inception/pipeline_features_golden.safetensors, made by
/// tools/reference/make_inception_fixtures.py from the pipeline fixture's decoded images).
/// </summary>
public class InceptionQualityTests
{
    private static string PathOf(params string[] parts) => Path.Combine([AppContext.BaseDirectory, "TestData", .. parts]);

    [Fact]
    public void Decoded_quantised_latents_score_as_pytorch_scores_the_decoded_images()
    {
        TensorFile pipeline = SafeTensors.Load(PathOf("pipeline", "tiny_pipeline_golden.safetensors"));
        TensorFile golden = SafeTensors.Load(PathOf("inception", "pipeline_features_golden.safetensors"));
        VaeWeights vaeWeights = VaeWeights.FromFile(Checkpoint.Load(PathOf("vae", "tiny_diffusers.safetensors")), VaeConfig.FromJsonFile(PathOf("vae", "tiny_config.json")));
        var net = new FidInception(InceptionWeights.FromFile(InceptionWeights.HashedFile()), new ManagedGemm(2));
        var stats = new FeatureStatistics(new double[2048], new double[2048 * 2048], 2048, 0);
        var quality = new InceptionQuality(net, new VaeDecoder(vaeWeights, new ManagedGemm(2)), stats, "zero statistics", ["a", "b"]);

        // The quantisation first: PyTorch's bytes of the golden image.
        float[] image = pipeline.Read("image").Data, bytes = golden.Read("bytes").Data;
        for (int i = 0; i < image.Length; i++)
        {
            Assert.Equal(bytes[i], InceptionQuality.Quantize(image[i]));
        }

        (int[] predictions, float[] features) = quality.Score(pipeline.Read("sample").Data, 2);
        Assert.Empty(predictions);
        float[] expected = golden.Read("features").Data;
        // Our decode agrees with PyTorch's to about 1e-6, so a byte may fall on the other side of a rounding edge
        // (one of 6,144 in the pipeline fixture): allow that much, far below what a wrong mapping or layout gives.
        double num = 0, den = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            num += (double)(expected[i] - features[i]) * (expected[i] - features[i]);
            den += (double)expected[i] * expected[i];
        }

        Assert.True(Math.Sqrt(num / den) < 2e-3, $"relative L2 {Math.Sqrt(num / den):E2}");
    }

    [Theory]
    [InlineData(-1f, 0)]
    [InlineData(1f, 255)]
    [InlineData(0f, 128)]
    [InlineData(-0.0040f, 127)]
    [InlineData(-1.5f, 0)]
    [InlineData(2f, 255)]
    [InlineData(0.996f, 254)]
    [InlineData(0.9961f, 255)]
    [InlineData(0.99f, 254)]
    public void Quantize_is_sample_ddp_mapping(float x, int expected)
    {
        // clamp(127.5 x + 128, 0, 255), truncated: 127.5·(−0.004) + 128 = 127.49 -> 127; 127.5·0.996 + 128 = 254.99 -> 254.
        Assert.Equal(expected, InceptionQuality.Quantize(x));
    }

    [Fact]
    public void The_fid_scorer_refuses_grey_and_latent_models_without_a_vae()
    {
        var net = new FidInception(InceptionWeights.FromFile(InceptionWeights.HashedFile()), new ManagedGemm(1));
        var stats = new FeatureStatistics(new double[2048], new double[2048 * 2048], 2048, 0);
        var quality = new InceptionQuality(net, null, stats, "s", []);
        DitConfig grey = DitConfig.FromPreset("DiT-S/2", 32) with { InChannels = 1 };
        DitConfig latent = DitConfig.FromPreset("DiT-S/2", 32);
        Assert.Contains("RGB", Assert.Throws<DitCacheException>(() => quality.CheckModel(grey)).Message, StringComparison.Ordinal);
        Assert.Contains("pass --vae", Assert.Throws<DitCacheException>(() => quality.CheckModel(latent)).Message, StringComparison.Ordinal);
        quality.CheckModel(latent with { InChannels = 3 });
        Assert.Throws<ArgumentException>(() => new InceptionQuality(net, null, new FeatureStatistics(new double[4], new double[16], 4, 0), "s", []));
    }
}
