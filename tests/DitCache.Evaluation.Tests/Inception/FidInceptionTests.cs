using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using DitCache.Evaluation.Inception;
using DitCache.Tensors;
using DitCache.Tensors.IO;
using Xunit;

namespace DitCache.Evaluation.Tests.Inception;

/// <summary>
/// The FID Inception-v3 against our PyTorch reference (tools/reference/inception_reference.py, written from
/// torchvision's Inception3 and pytorch-fid's FID blocks) at the real shapes, on the hashed weights both sides build
/// (tests/TestData/inception/inception_hashed_golden.safetensors, tools/reference/make_inception_fixtures.py).
/// </summary>
public class FidInceptionTests
{
    private static readonly Lazy<InceptionWeights> Hashed = new(() => InceptionWeights.FromFile(InceptionWeights.HashedFile()));

    private static TensorFile Golden() =>
        SafeTensors.Load(Path.Combine(AppContext.BaseDirectory, "TestData", "inception", "inception_hashed_golden.safetensors"));

    [Fact]
    public void Pool3_features_match_pytorch_on_hashed_weights_of_the_real_shapes()
    {
        TensorFile golden = Golden();
        Tensor images = golden.Read("images");                                                    // (2, 3, 37, 45)
        float[] expected = golden.Read("features").Data;
        var net = new FidInception(Hashed.Value, new ManagedGemm(2));
        float[] features = new float[2 * FidInception.FeatureSize];
        float[] stages = new float[2 * (64 + 192 + 768 + 2048)];
        net.Features(images.Data, 2, 37, 45, features, stages);

        // Each block's channel means first (to say where a disagreement starts), then the features themselves.
        int at = 0;
        foreach ((string key, int c) in new[] { ("block0_mean", 64), ("block1_mean", 192), ("block2_mean", 768), ("block3_mean", 2048) })
        {
            float[] e = golden.Read(key).Data;
            for (int n = 0; n < 2; n++)
            {
                AssertClose(e.AsSpan(n * c, c), stages.AsSpan((n * 3072) + at, c), 2e-5, $"{key} image {n}");
            }

            at += c;
        }

        // Relative L2 and the largest deviation: float32 through 94 convs of up to 2,048 x 9 taps on both sides.
        AssertClose(expected, features, 2e-5, "pool3 features");
        double l2 = Math.Sqrt(expected.Zip(features, (a, b) => (double)(a - b) * (a - b)).Sum() / expected.Sum(v => (double)v * v));
        Assert.True(l2 < 2e-6, $"relative L2 {l2:E2}");
    }

    [Fact]
    public void Features_do_not_depend_on_the_thread_count_beyond_round_off_and_images_are_independent()
    {
        TensorFile golden = Golden();
        float[] images = golden.Read("images").Data;
        float[] both = new float[2 * 2048], second = new float[2048];
        new FidInception(Hashed.Value, new ManagedGemm(1)).Features(images, 2, 37, 45, both);
        new FidInception(Hashed.Value, new ManagedGemm(3)).Features(images.AsSpan(3 * 37 * 45), 1, 37, 45, second);
        AssertClose(both.AsSpan(2048), second, 1e-5, "image 1 alone, 3 threads");
    }

    [Fact]
    public void Loading_refuses_torchvision_weights_missing_keys_and_wrong_shapes_in_one_line()
    {
        TensorFile full = InceptionWeights.HashedFile();
        var tensors = full.Entries.Keys.ToDictionary(k => k, k => full.Read(k), StringComparer.Ordinal);

        var torchvision = new Dictionary<string, Tensor>(tensors) { ["fc.weight"] = Tensor.Zeros(1000, 2048), ["fc.bias"] = Tensor.Zeros(1000) };
        AssertRefused(full.WithTensors(torchvision), "torchvision's ImageNet Inception-v3");

        var missing = new Dictionary<string, Tensor>(tensors);
        missing.Remove("Mixed_6c.branch7x7dbl_4.bn.running_var");
        AssertRefused(full.WithTensors(missing), "has no tensor 'Mixed_6c.branch7x7dbl_4.bn.running_var'");

        var wrong = new Dictionary<string, Tensor>(tensors) { ["Mixed_7b.branch3x3_2a.conv.weight"] = Tensor.Zeros(384, 384, 3, 1) };
        AssertRefused(full.WithTensors(wrong), "'Mixed_7b.branch3x3_2a.conv.weight' has shape [384, 384, 3, 1] but the FID Inception-v3 needs [384, 384, 1, 3]");

        var extra = new Dictionary<string, Tensor>(tensors) { ["Mixed_5b.branch9x9.conv.weight"] = Tensor.Zeros(1) };
        AssertRefused(full.WithTensors(extra), "unexpected tensor 'Mixed_5b.branch9x9.conv.weight'");

        var negative = new Dictionary<string, Tensor>(tensors);
        var v = Tensor.Zeros(32);
        v.Data[5] = -1f;
        negative["Conv2d_1a_3x3.bn.running_var"] = v;
        AssertRefused(full.WithTensors(negative), "negative running_var at channel 5");

        // num_batches_tracked, as newer torch versions save it, and a file without the unused classifier both load.
        var tracked = new Dictionary<string, Tensor>(tensors) { ["Conv2d_1a_3x3.bn.num_batches_tracked"] = Tensor.Zeros(1) };
        tracked.Remove("fc.weight");
        tracked.Remove("fc.bias");
        InceptionWeights.FromFile(full.WithTensors(tracked));
    }

    private static void AssertRefused(TensorFile file, string fragment)
    {
        DitCacheException e = Assert.Throws<DitCacheException>(() => InceptionWeights.FromFile(file));
        Assert.Contains(fragment, e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', e.Message);
        Assert.Equal(2, e.ExitCode);
    }

    private static void AssertClose(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, double rel, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        double scale = 0;
        foreach (float e in expected)
        {
            scale = Math.Max(scale, Math.Abs(e));
        }

        for (int i = 0; i < expected.Length; i++)
        {
            double d = Math.Abs(expected[i] - actual[i]);
            Assert.True(d <= rel * Math.Max(scale, 1e-3), $"{what}: at {i} expected {expected[i]} got {actual[i]} (|diff| {d:E2} > {rel:E1} x {scale:G4})");
        }
    }
}
