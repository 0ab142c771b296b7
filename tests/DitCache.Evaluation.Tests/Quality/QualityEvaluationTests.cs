using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json;
using DitCache.Caching;
using DitCache.Evaluation.Data;
using DitCache.Evaluation.Metrics;
using DitCache.Evaluation.Quality;
using DitCache.Evaluation.Reports;
using DitCache.Evaluation.Tests.Data;
using DitCache.Models;
using DitCache.Sampling.Tests;
using DitCache.Tensors;
using DitCache.Tensors.IO;
using Xunit;

namespace DitCache.Evaluation.Tests.Quality;

/// <summary>
/// The plumbing of <see cref="QualityEvaluation"/> on a random-weight DiT of the Fashion-MNIST shape (hidden 32,
/// depth 2, patch 4, 1 channel, 28x28) and the first 600 test images as the reference: counts, layout,
/// determinism, the accuracy against the classifier's own predictions, the report. The accuracy of a random model is
/// chance; what the shipped model scores is measured by <c>ditcache evaluate</c> (models/README.md).
/// </summary>
public sealed class QualityEvaluationTests
{
    private const int ReferenceImages = 600;

    private static readonly Lazy<FashionMnist> s_subset = new(WriteTestSubset);

    private static IGemm Gemm() => GemmFactory.Create("auto", 1);

    /// <summary>Random DiT weights with facebookresearch/DiT key names (no pos_embed: the sin-cos table is regenerated).</summary>
    internal static TensorFile RandomDit(int hidden = 32, int depth = 2, int patch = 4, int channels = 1, int size = 28, int seed = 1)
    {
        var random = new Random(seed);
        int d = hidden, m = 4 * hidden, o = patch * patch * channels;
        var tensors = new Dictionary<string, Tensor>();
        void Add(string key, float scale, params int[] shape)
        {
            float[] data = new float[Tensor.ElementCount(shape)];
            for (int i = 0; i < data.Length; i++)
            {
                data[i] = scale * (float)((2 * random.NextDouble()) - 1);
            }

            tensors[key] = new Tensor(data, shape);
        }

        Add("x_embedder.proj.weight", 0.2f, d, channels, patch, patch);
        Add("x_embedder.proj.bias", 0.02f, d);
        Add("t_embedder.mlp.0.weight", 0.1f, d, DitWeights.TimeFrequencyDim);
        Add("t_embedder.mlp.0.bias", 0.02f, d);
        Add("t_embedder.mlp.2.weight", 0.1f, d, d);
        Add("t_embedder.mlp.2.bias", 0.02f, d);
        Add("y_embedder.embedding_table.weight", 0.5f, 11, d);
        for (int b = 0; b < depth; b++)
        {
            Add($"blocks.{b}.attn.qkv.weight", 0.1f, 3 * d, d);
            Add($"blocks.{b}.attn.qkv.bias", 0.02f, 3 * d);
            Add($"blocks.{b}.attn.proj.weight", 0.1f, d, d);
            Add($"blocks.{b}.attn.proj.bias", 0.02f, d);
            Add($"blocks.{b}.mlp.fc1.weight", 0.1f, m, d);
            Add($"blocks.{b}.mlp.fc1.bias", 0.02f, m);
            Add($"blocks.{b}.mlp.fc2.weight", 0.1f, d, m);
            Add($"blocks.{b}.mlp.fc2.bias", 0.02f, d);
            Add($"blocks.{b}.adaLN_modulation.1.weight", 0.1f, 6 * d, d);
            Add($"blocks.{b}.adaLN_modulation.1.bias", 0.02f, 6 * d);
        }

        Add("final_layer.adaLN_modulation.1.weight", 0.1f, 2 * d, d);
        Add("final_layer.adaLN_modulation.1.bias", 0.02f, 2 * d);
        Add("final_layer.linear.weight", 0.2f, o, d);
        Add("final_layer.linear.bias", 0.02f, o);
        var metadata = new Dictionary<string, string> { ["num_heads"] = "2", ["input_size"] = size.ToString(System.Globalization.CultureInfo.InvariantCulture) };
        return new TensorFile("random-dit", tensors, metadata, tensors.ToDictionary(kv => kv.Key, _ => StoredDType.F32));
    }

    private static DitModel RandomModel() => new(DitWeights.FromFile(RandomDit()), Gemm(), 1);

    /// <summary>The first <see cref="ReferenceImages"/> test images, rewritten as raw idx files (keeps the test fast).</summary>
    private static FashionMnist WriteTestSubset()
    {
        FashionMnist test = FashionMnist.Load(FashionMnistSplit.Test);
        string dir = Path.Combine(Path.GetTempPath(), $"ditcache-quality-{Environment.ProcessId}");
        Directory.CreateDirectory(dir);
        string images = Path.Combine(dir, "images.idx"), labels = Path.Combine(dir, "labels.idx");
        using (var w = new BinaryWriter(File.Create(images)))
        {
            WriteBigEndian(w, FashionMnist.ImagesMagic, ReferenceImages, FashionMnist.ImageSize, FashionMnist.ImageSize);
            w.Write(test.Images[..(ReferenceImages * FashionMnist.Pixels)]);
        }

        using (var w = new BinaryWriter(File.Create(labels)))
        {
            WriteBigEndian(w, FashionMnist.LabelsMagic, ReferenceImages);
            w.Write(test.Labels[..ReferenceImages]);
        }

        return FashionMnist.Load(images, labels);
    }

    private static void WriteBigEndian(BinaryWriter w, uint magic, params int[] dims)
    {
        w.Write(System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(magic));
        foreach (int d in dims)
        {
            w.Write(System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(d));
        }
    }

    private static QualitySettings Settings(int batch = 5, int perClass = 4, int grid = 10) =>
        new(perClass, [2, 0, 7], Steps: 3, Sampler: "ddim", CfgScale: 2f, new NoCacheOptions(), Seed: 11, BatchSize: batch, GridColumns: grid);

    [FashionMnistFact]
    public void Evaluation_is_deterministic_and_its_accuracy_is_the_classifiers()
    {
        FmnistClassifier classifier = FmnistClassifier.LoadDefault(Gemm());
        QualityReference reference = FmnistQuality.Reference(classifier, s_subset.Value, [0, 2, 7]);
        var evaluation = new QualityEvaluation(RandomModel(), new FmnistQuality(classifier));
        int progressCalls = 0, lastDone = 0, lastTotal = 0;

        QualityResult a = evaluation.Run(Settings(), reference, (done, total) =>
        {
            progressCalls++;
            Assert.Equal(lastDone + 1, done);
            (lastDone, lastTotal) = (done, total);
        });
        QualityResult b = evaluation.Run(Settings(), reference);

        // Counts and layout: 3 classes x 4, class-major, 3 batches (5 + 5 + 2) of 3 steps.
        Assert.Equal(12, a.Settings.TotalSamples);
        Assert.True(a.Samples.HasShape(12, 1, 28, 28), a.Samples.ShapeText);
        Assert.Equal([2, 2, 2, 2, 0, 0, 0, 0, 7, 7, 7, 7], a.Labels);
        Assert.Equal(9, progressCalls);
        Assert.Equal(9, lastTotal);
        Assert.True(a.Grid.HasShape(12, 1, 28, 28), a.Grid.ShapeText);   // G = 10 > K = 4: every sample
        Assert.All(a.Samples.Data, v => Assert.True(float.IsFinite(v)));
        Assert.Equal(a.FullFlops, a.Flops);
        Assert.True(a.Flops > 0);
        Assert.Null(a.MatchedFloor);

        // Deterministic: same samples, same scores.
        Assert.Equal(a.Samples.Data, b.Samples.Data);
        Assert.Equal(a.Predictions, b.Predictions);
        Assert.Equal(a.FrechetDistance, b.FrechetDistance);

        // The accuracy is the classifier's verdict on the returned (clamped) samples.
        float[] clamped = [.. a.Samples.Data.Select(v => Math.Clamp(v, -1f, 1f))];
        (float[] logits, float[] features) = classifier.Forward(clamped, 12);
        int[] predicted = FmnistClassifier.Predict(logits);
        Assert.Equal(predicted, a.Predictions);
        Assert.Equal(predicted.Zip(a.Labels).Count(p => p.First == p.Second) / 12.0, a.Accuracy);
        for (int c = 0; c < 3; c++)
        {
            Assert.Equal(Enumerable.Range(c * 4, 4).Count(i => predicted[i] == a.Labels[i]) / 4.0, a.ClassAccuracy[c]);
        }

        double fd = FrechetDistance.Compute(FeatureStatistics.FromFeatures(features, 12, FmnistClassifier.FeatureSize), reference.Statistics);
        Assert.Equal(fd, a.FrechetDistance, 9);
        Assert.True(a.FrechetDistance > reference.Floor, $"random model FD {a.FrechetDistance} should exceed the real floor {reference.Floor}");
    }

    [FashionMnistFact]
    public void Samples_do_not_depend_on_batch_size_and_the_grid_takes_the_first_of_each_class()
    {
        FmnistClassifier classifier = FmnistClassifier.LoadDefault(Gemm());
        QualityReference reference = FmnistQuality.Reference(classifier, s_subset.Value, [0, 2, 7]);
        var evaluation = new QualityEvaluation(RandomModel(), new FmnistQuality(classifier));

        QualityResult batched = evaluation.Run(Settings(batch: 5, grid: 2), reference);
        QualityResult whole = evaluation.Run(Settings(batch: 12, grid: 2), reference);

        // DDIM with per-sample noise: only GEMM round-off differs between batch shapes.
        TestMath.AssertClose(whole.Samples.Data, batched.Samples.Data, 1e-4, "batch 5 vs batch 12");
        Assert.True(batched.Grid.HasShape(6, 1, 28, 28), batched.Grid.ShapeText);
        int image = FashionMnist.Pixels;
        for (int row = 0; row < 3; row++)
        {
            Assert.Equal(
                batched.Samples.Data.AsSpan(row * 4 * image, 2 * image).ToArray(),
                batched.Grid.Data.AsSpan(row * 2 * image, 2 * image).ToArray());
        }
    }

    [FashionMnistFact]
    public void Reference_floor_is_the_fd_of_its_halves_and_fd_to_itself_is_zero()
    {
        FmnistClassifier classifier = FmnistClassifier.LoadDefault(Gemm());
        FashionMnist subset = s_subset.Value;
        QualityReference all = FmnistQuality.Reference(classifier, subset, Enumerable.Range(0, 10));
        Assert.Equal(ReferenceImages, all.Count);
        Assert.Equal(ReferenceImages / 2, all.FloorCountA);
        Assert.Equal(ReferenceImages / 2, all.FloorCountB);
        Assert.InRange(FrechetDistance.Compute(all.Statistics, all.Statistics), -1e-6, 1e-6);

        (_, float[] features) = classifier.Forward(subset.ImagesAsFloat(), ReferenceImages);
        int half = ReferenceImages / 2, d = FmnistClassifier.FeatureSize;
        double floor = FrechetDistance.Compute(features.AsSpan(0, half * d), half, features.AsSpan(half * d), half, d);
        Assert.Equal(floor, all.Floor, 9);
        Assert.True(all.Floor > 0);

        QualityReference some = FmnistQuality.Reference(classifier, subset, [7, 0]);
        int expected = subset.Labels.ToArray().Count(y => y is 0 or 7);
        Assert.Equal(expected, some.Count);
        Assert.Equal([0, 7], some.Classes);
    }

    [FashionMnistFact]
    public void Report_names_the_counts_and_scores()
    {
        FmnistClassifier classifier = FmnistClassifier.LoadDefault(Gemm());
        QualityReference reference = FmnistQuality.Reference(classifier, s_subset.Value, [0, 2, 7]);
        QualityResult r = new QualityEvaluation(RandomModel(), new FmnistQuality(classifier)).Run(Settings(), reference);
        DitConfig config = DitWeights.FromFile(RandomDit()).Config;

        using JsonDocument json = JsonDocument.Parse(QualityReport.ToJson(r, config, "random-dit", classifier.Source, "managed", 1));
        JsonElement root = json.RootElement;
        Assert.Equal(12, root.GetProperty("samples").GetInt32());
        Assert.Equal(4, root.GetProperty("samples_per_class").GetInt32());
        Assert.Equal(r.Accuracy, root.GetProperty("accuracy").GetDouble());
        Assert.Equal("none", root.GetProperty("cache").GetString());
        Assert.Equal(3, root.GetProperty("classes").GetArrayLength());
        Assert.Equal("Pullover", root.GetProperty("classes")[0].GetProperty("name").GetString());
        JsonElement fd = root.GetProperty("frechet_distance");
        Assert.Equal(r.FrechetDistance, fd.GetProperty("generated_vs_test").GetDouble());
        Assert.Equal(12, fd.GetProperty("generated_count").GetInt32());
        Assert.Equal(reference.Count, fd.GetProperty("test_count").GetInt32());
        Assert.Equal(reference.Floor, fd.GetProperty("floor_test_halves").GetDouble());
        Assert.Equal(JsonValueKind.Null, fd.GetProperty("floor_train_vs_test").ValueKind);
        Assert.True(root.GetProperty("seconds").GetDouble() > 0);
    }

    [FashionMnistFact]
    public void Bad_settings_are_rejected()
    {
        FmnistClassifier classifier = FmnistClassifier.LoadDefault(Gemm());
        QualityReference reference = FmnistQuality.Reference(classifier, s_subset.Value, [0, 2, 7]);
        var evaluation = new QualityEvaluation(RandomModel(), new FmnistQuality(classifier));

        Assert.Throws<ArgumentException>(() => evaluation.Run(Settings(perClass: 0), reference));
        Assert.Throws<ArgumentException>(() => evaluation.Run(Settings(batch: 0), reference));
        Assert.Throws<ArgumentException>(() => evaluation.Run(Settings() with { Classes = [2, 0, 0] }, reference));
        Assert.Throws<ArgumentException>(() => evaluation.Run(Settings() with { Classes = [2, 0] }, reference));
        Assert.Throws<ArgumentException>(() => evaluation.Run(Settings() with { Classes = [2, 0, 11] }, reference));
    }

    [Fact]
    public void Models_of_another_shape_are_rejected_with_their_shape()
    {
        FmnistClassifier classifier = FmnistClassifier.LoadDefault(Gemm());
        var latent = new DitModel(DitWeights.FromFile(RandomDit(channels: 4, size: 32)), Gemm(), 1);
        DitCacheException e = Assert.Throws<DitCacheException>(() => new QualityEvaluation(latent, new FmnistQuality(classifier)));
        Assert.Contains("32x32x4", e.Message, StringComparison.Ordinal);
        Assert.Equal(2, e.ExitCode);
    }

    [Fact]
    public void Derived_seeds_differ_for_neighbouring_inputs()
    {
        var seeds = new HashSet<int>();
        for (int seed = 0; seed < 4; seed++)
        {
            for (int label = -1; label < 10; label++)
            {
                for (int index = 0; index < 50; index++)
                {
                    int s = QualityEvaluation.DeriveSeed(seed, label, index);
                    Assert.True(s >= 0);
                    seeds.Add(s);
                }
            }
        }

        Assert.Equal(4 * 11 * 50, seeds.Count);
        Assert.Equal(QualityEvaluation.DeriveSeed(3, 2, 1), QualityEvaluation.DeriveSeed(3, 2, 1));
    }

    [Fact]
    public void Full_steps_per_image_count_per_sample_decisions_and_are_absent_for_whole_batch_policies()
    {
        // SpeCa that accepts every draft (τ and its floor huge): warm-up W full steps, then M drafts and one full step
        // in turn, so each image runs W + ⌊(S − W)/(M + 1)⌋ full steps: 3 + ⌊9/3⌋ = 6 of S = 12.
        var evaluation = new QualityEvaluation(RandomModel(), null);
        QualitySettings whole = Settings(batch: 4, perClass: 3) with { Steps = 12, Cache = CacheRegistry.Parse("fora:n=3") };
        Assert.Null(evaluation.Run(whole, null).FullStepsPerImage);
        QualitySettings speca = whole with { Cache = CacheRegistry.Parse("speca:tau=1e9,floor=1e9,min=2,max=2,warmup=3") };
        QualityResult r = evaluation.Run(speca, null);
        Assert.Equal(6.0, r.FullStepsPerImage);
        Assert.Equal(6, r.FirstRun.Steps.Count(s => s.Computed));
    }
}
