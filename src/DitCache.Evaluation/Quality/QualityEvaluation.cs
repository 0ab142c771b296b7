using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using DitCache.Caching;
using DitCache.Caching.Calibration;
using DitCache.Evaluation.Data;
using DitCache.Evaluation.Metrics;
using DitCache.Models;
using DitCache.Sampling;
using DitCache.Tensors;

namespace DitCache.Evaluation.Quality;

/// <summary>What to generate for a quality evaluation.</summary>
/// <param name="SamplesPerClass">K: images generated per class.</param>
/// <param name="Classes">The classes to generate, in grid-row order; each must be a Fashion-MNIST label 0..9.</param>
/// <param name="Steps">Sampling steps (respaced from 1000).</param>
/// <param name="Sampler">"ddim" or "ddpm".</param>
/// <param name="CfgScale">Classifier-free guidance scale; 1 disables guidance.</param>
/// <param name="Cache">The cache policy every batch runs with (<see cref="CacheRegistry.Parse"/>).</param>
/// <param name="Seed">Base seed; every sample's initial noise and every batch's step noise derive from it.</param>
/// <param name="BatchSize">Images per pipeline run (the CFG batch is twice this).</param>
/// <param name="GridColumns">G: samples of each class in the grid (the first G of the class).</param>
public sealed record QualitySettings(int SamplesPerClass, int[] Classes, int Steps, string Sampler, float CfgScale,
    ICacheOptions Cache, int Seed = 0, int BatchSize = 100, int GridColumns = 10)
{
    /// <summary>All ten Fashion-MNIST classes, 0..9.</summary>
    public static int[] AllClasses => [.. Enumerable.Range(0, FashionMnist.ClassCount)];

    /// <summary>Total number of generated images, K × classes.</summary>
    public int TotalSamples => SamplesPerClass * Classes.Length;
}

/// <summary>One evaluation's outcome.</summary>
/// <param name="Settings">What was generated.</param>
/// <param name="Samples">Every generated image (N, 1, 28, 28), class-major (sample i has label <c>Labels[i]</c>), before clamping.</param>
/// <param name="Labels">The requested class of each sample.</param>
/// <param name="Predictions">The classifier's prediction for each (clamped) sample.</param>
/// <param name="Accuracy">Fraction of samples the classifier assigns to the requested class.</param>
/// <param name="ClassAccuracy">Accuracy per class, parallel to <see cref="QualitySettings.Classes"/>.</param>
/// <param name="FrechetDistance">FD between the features of the generated samples and of the reference images.</param>
/// <param name="Reference">The real images the samples are compared with, and the real floors.</param>
/// <param name="MatchedFloor">
/// FD between K real training images per class and the reference: what a perfect model would score at this sample
/// size (the estimator is biased upward for small N). Null when no training split was given.
/// </param>
/// <param name="Grid">First G samples of each class (classes × G, 1, 28, 28), row-major: one row per class.</param>
/// <param name="Seconds">Wall clock of the whole evaluation (sampling and scoring; the reference is computed beforehand).</param>
/// <param name="SamplingSeconds">Wall clock of the sampling loops alone.</param>
/// <param name="Flops">FLOPs of all sampling runs (DiT-paper convention, whole CFG batch).</param>
/// <param name="FullFlops">FLOPs of the same runs with every block computed.</param>
/// <param name="FirstRun">The first batch's pipeline result: its per-step records and telemetry show the schedule.</param>
/// <param name="CacheBytes">The most feature memory the cache held in any batch.</param>
public sealed record QualityResult(QualitySettings Settings, Tensor Samples, int[] Labels, int[] Predictions,
    double Accuracy, double[] ClassAccuracy, double FrechetDistance, QualityReference Reference, double? MatchedFloor,
    Tensor Grid, double Seconds, double SamplingSeconds, double Flops, double FullFlops, SampleResult FirstRun, long CacheBytes);

/// <summary>
/// The real side of the comparison: classifier features of the Fashion-MNIST test images of the evaluated classes
/// (all 10,000 for all classes), and the real floor, the FD between the first and second half of those images.
/// </summary>
/// <remarks>
/// The floor is an FD at 5,000 vs 5,000 while a generated set is usually smaller; FD is biased upward for small
/// sample counts, so compare a generated FD with <see cref="QualityResult.MatchedFloor"/> as well.
/// </remarks>
public sealed class QualityReference
{
    private QualityReference(int[] classes, FeatureStatistics statistics, double floor, int floorCountA, int floorCountB, string source)
    {
        Classes = classes;
        Statistics = statistics;
        Floor = floor;
        FloorCountA = floorCountA;
        FloorCountB = floorCountB;
        Source = source;
    }

    /// <summary>The classes the reference images belong to, ascending.</summary>
    public IReadOnlyList<int> Classes { get; }

    /// <summary>Feature statistics of all reference images.</summary>
    public FeatureStatistics Statistics { get; }

    /// <summary>Number of reference images.</summary>
    public int Count => Statistics.Count;

    /// <summary>FD between the first and second half of the reference images (the real floor).</summary>
    public double Floor { get; }

    /// <summary>Images in the floor's first half.</summary>
    public int FloorCountA { get; }

    /// <summary>Images in the floor's second half.</summary>
    public int FloorCountB { get; }

    /// <summary>The dataset file the images came from.</summary>
    public string Source { get; }

    /// <summary>
    /// Features of the images of <paramref name="dataset"/> (normally the test split) whose label is in
    /// <paramref name="classes"/>, in dataset order, and the floor between the first and second half of them.
    /// </summary>
    /// <exception cref="ArgumentException">A class is outside 0..9, or fewer than 4 images match.</exception>
    public static QualityReference Compute(FmnistClassifier classifier, FashionMnist dataset, IEnumerable<int> classes)
    {
        ArgumentNullException.ThrowIfNull(classifier);
        ArgumentNullException.ThrowIfNull(dataset);
        ArgumentNullException.ThrowIfNull(classes);
        int[] wanted = [.. classes.Distinct().Order()];
        if (wanted.Any(c => c < 0 || c >= FashionMnist.ClassCount))
        {
            throw new ArgumentException($"classes must be in 0..{FashionMnist.ClassCount - 1}", nameof(classes));
        }

        var indices = new List<int>(dataset.Count);
        ReadOnlySpan<byte> labels = dataset.Labels;
        for (int i = 0; i < labels.Length; i++)
        {
            if (Array.BinarySearch(wanted, labels[i]) >= 0)
            {
                indices.Add(i);
            }
        }

        if (indices.Count < 4)
        {
            throw new ArgumentException($"{dataset.Source}: only {indices.Count} images of classes {string.Join(",", wanted)}; the floor needs at least 4", nameof(dataset));
        }

        float[] features = Features(classifier, dataset, indices);
        int n = indices.Count, half = n / 2, d = FmnistClassifier.FeatureSize;
        FeatureStatistics all = FeatureStatistics.FromFeatures(features, n, d);
        double floor = Metrics.FrechetDistance.Compute(features.AsSpan(0, half * d), half, features.AsSpan(half * d), n - half, d);
        return new QualityReference(wanted, all, floor, half, n - half, dataset.Source);
    }

    /// <summary>Classifier features (count, 128) of the images at <paramref name="indices"/>, in that order.</summary>
    internal static float[] Features(FmnistClassifier classifier, FashionMnist dataset, IReadOnlyList<int> indices)
    {
        const int Chunk = 1000;
        int d = FmnistClassifier.FeatureSize, pixels = FashionMnist.Pixels;
        float[] features = new float[indices.Count * d];
        float[] images = new float[Math.Min(Chunk, indices.Count) * pixels];
        for (int start = 0; start < indices.Count; start += Chunk)
        {
            int b = Math.Min(Chunk, indices.Count - start);
            for (int i = 0; i < b; i++)
            {
                dataset.CopyImages(indices[start + i], 1, images.AsSpan(i * pixels, pixels));
            }

            classifier.Forward(images.AsSpan(0, b * pixels), b, [], features.AsSpan(start * d, b * d));
        }

        return features;
    }
}

/// <summary>
/// Sample-quality evaluation of a Fashion-MNIST DiT with the shipped classifier (models/fmnist-classifier.md):
/// generate K images of each class, then report how often the classifier recognises the requested class, and the
/// Frechet distance between the classifier features of the samples and of the real test images.
/// </summary>
/// <remarks>
/// Samples are laid out class-major and cut into batches of <see cref="QualitySettings.BatchSize"/>; one pipeline
/// runs every batch. The j-th sample of class y always starts from the noise seeded by (seed, y, j), so with the
/// deterministic DDIM sampler a sample does not depend on K, the class list or the batch size (up to float
/// round-off of differently shaped GEMMs); stochastic steps draw from a per-batch seed derived from (seed, batch).
/// Samples are clamped to [−1, 1] (the image range) before scoring, as saving a PNG would; the returned samples are not.
/// </remarks>
public sealed class QualityEvaluation
{
    private readonly DiffusionPipeline _pipeline;
    private readonly FmnistClassifier _classifier;
    private readonly FashionMnist? _train;

    /// <summary>
    /// An evaluation of <paramref name="model"/> scored by <paramref name="classifier"/>. <paramref name="train"/>
    /// (optional) supplies the real images of the matched floor.
    /// </summary>
    /// <exception cref="DitCacheException">The model does not make 28×28 single-channel Fashion-MNIST images (exit code 2).</exception>
    public QualityEvaluation(DitModel model, FmnistClassifier classifier, FashionMnist? train = null, CalibrationFile? calibration = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(classifier);
        DitConfig c = model.Config;
        if (c.InChannels != 1 || c.InputSize != FashionMnist.ImageSize || c.NumClasses < FashionMnist.ClassCount)
        {
            throw new DitCacheException(
                $"the quality metrics score 28x28 single-channel Fashion-MNIST images with 10 classes, but this model makes {c.InputSize}x{c.InputSize}x{c.InChannels} images of {c.NumClasses} classes",
                exitCode: 2);
        }

        _pipeline = new DiffusionPipeline(model, calibration);
        _classifier = classifier;
        _train = train;
    }

    /// <summary>
    /// Generates and scores. <paramref name="progress"/> receives (sampling steps done, total) summed over batches.
    /// </summary>
    /// <exception cref="ArgumentException">Invalid settings, or a reference of other classes.</exception>
    public QualityResult Run(QualitySettings settings, QualityReference reference, Action<int, int>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(reference);
        Validate(settings, reference);
        var clock = Stopwatch.StartNew();

        int k = settings.SamplesPerClass, n = settings.TotalSamples, image = FashionMnist.Pixels;
        int[] labels = new int[n];
        for (int i = 0; i < n; i++)
        {
            labels[i] = settings.Classes[i / k];
        }

        // 1. Sample, batch by batch (class-major order).
        float[] samples = new float[n * image];                                       // (N, 1, 28, 28)
        int batches = (n + settings.BatchSize - 1) / settings.BatchSize;
        int totalSteps = batches * settings.Steps;
        double samplingSeconds = 0, flops = 0, fullFlops = 0;
        SampleResult? first = null;
        long cacheBytes = 0;
        for (int b = 0; b < batches; b++)
        {
            int start = b * settings.BatchSize, count = Math.Min(settings.BatchSize, n - start);
            float[] noise = new float[count * image];                                 // (B, 1, 28, 28)
            for (int i = 0; i < count; i++)
            {
                int sample = start + i;
                new GaussianNoise(DeriveSeed(settings.Seed, labels[sample], sample % k)).Fill(noise.AsSpan(i * image, image));
            }

            var request = new SampleRequest(labels[start..(start + count)], settings.Steps, settings.Sampler, settings.CfgScale,
                Seed: DeriveSeed(settings.Seed, -1, b), Noise: new Tensor(noise, count, 1, FashionMnist.ImageSize, FashionMnist.ImageSize));
            int done = b * settings.Steps;
            SampleResult result = _pipeline.Run(request, settings.Cache,
                progress: progress is null ? null : (s, _) => progress(done + s, totalSteps));
            result.Sample.Data.CopyTo(samples, start * image);
            samplingSeconds += result.Seconds;
            flops += result.Flops;
            fullFlops += result.FullFlops;
            first ??= result;
            cacheBytes = Math.Max(cacheBytes, result.CacheBytes);
        }

        // 2. Score the clamped samples.
        float[] clamped = new float[samples.Length];
        for (int i = 0; i < samples.Length; i++)
        {
            clamped[i] = Math.Clamp(samples[i], -1f, 1f);
        }

        (float[] logits, float[] features) = _classifier.Forward(clamped, n);
        int[] predictions = FmnistClassifier.Predict(logits);
        double[] classAccuracy = new double[settings.Classes.Length];
        int correct = 0;
        for (int i = 0; i < n; i++)
        {
            if (predictions[i] == labels[i])
            {
                correct++;
                classAccuracy[i / k]++;
            }
        }

        for (int c = 0; c < classAccuracy.Length; c++)
        {
            classAccuracy[c] /= k;
        }

        FeatureStatistics generated = FeatureStatistics.FromFeatures(features, n, FmnistClassifier.FeatureSize);
        double fd = Metrics.FrechetDistance.Compute(generated, reference.Statistics);
        double? matched = _train is null ? null : MatchedFloorFor(settings.SamplesPerClass, settings.Classes, reference);

        // 3. The grid: the first G samples of each class, one row per class.
        int g = Math.Min(settings.GridColumns, k), rows = settings.Classes.Length;
        float[] grid = new float[rows * g * image];                                   // (rows·G, 1, 28, 28)
        for (int r = 0; r < rows; r++)
        {
            samples.AsSpan(r * k * image, g * image).CopyTo(grid.AsSpan(r * g * image));
        }

        clock.Stop();
        int size = FashionMnist.ImageSize;
        return new QualityResult(settings, new Tensor(samples, n, 1, size, size), labels, predictions, (double)correct / n,
            classAccuracy, fd, reference, matched, new Tensor(grid, rows * g, 1, size, size), clock.Elapsed.TotalSeconds,
            samplingSeconds, flops, fullFlops, first!, cacheBytes);
    }

    /// <summary>
    /// The seed of one noise stream: (base seed, class, index) through SplitMix64's finaliser, so neighbouring base
    /// seeds, classes and indices give unrelated streams. Class −1 is used for the per-batch step noise.
    /// </summary>
    public static int DeriveSeed(int seed, int label, int index)
    {
        ulong z = ((ulong)(uint)seed << 32) ^ ((ulong)(uint)(label + 1) << 24) ^ (uint)index;
        z += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        z ^= z >> 31;
        return (int)(z & 0x7FFFFFFF);
    }

    /// <summary>
    /// The Frechet distance of <paramref name="samplesPerClass"/> real training images per class (the first ones of
    /// each class) against <paramref name="reference"/>: what a perfect model would score at that sample size.
    /// </summary>
    /// <exception cref="InvalidOperationException">The evaluation was built without a training split.</exception>
    public double MatchedFloorFor(int samplesPerClass, IReadOnlyList<int> classes, QualityReference reference)
    {
        FashionMnist train = _train ?? throw new InvalidOperationException("the matched floor needs the training split; pass it to the constructor");
        var indices = new List<int>(samplesPerClass * classes.Count);
        ReadOnlySpan<byte> labels = train.Labels;
        foreach (int y in classes)
        {
            int taken = 0;
            for (int i = 0; i < labels.Length && taken < samplesPerClass; i++)
            {
                if (labels[i] == y)
                {
                    indices.Add(i);
                    taken++;
                }
            }
        }

        float[] features = QualityReference.Features(_classifier, train, indices);
        FeatureStatistics real = FeatureStatistics.FromFeatures(features, indices.Count, FmnistClassifier.FeatureSize);
        return Metrics.FrechetDistance.Compute(real, reference.Statistics);
    }

    private static void Validate(QualitySettings settings, QualityReference reference)
    {
        if (settings.SamplesPerClass < 1)
        {
            throw new ArgumentException($"samples per class {settings.SamplesPerClass} must be at least 1", nameof(settings));
        }

        if (settings.Classes.Length == 0 || settings.Classes.Any(c => c < 0 || c >= FashionMnist.ClassCount))
        {
            throw new ArgumentException($"classes must be a non-empty list of labels in 0..{FashionMnist.ClassCount - 1}", nameof(settings));
        }

        if (settings.Classes.Distinct().Count() != settings.Classes.Length)
        {
            throw new ArgumentException("classes must not repeat", nameof(settings));
        }

        if (settings.TotalSamples < 2)
        {
            throw new ArgumentException("the Frechet distance needs at least 2 samples in all", nameof(settings));
        }

        if (settings.BatchSize < 1)
        {
            throw new ArgumentException($"batch size {settings.BatchSize} must be at least 1", nameof(settings));
        }

        if (settings.GridColumns < 1)
        {
            throw new ArgumentException($"grid columns {settings.GridColumns} must be at least 1", nameof(settings));
        }

        if (!settings.Classes.Order().SequenceEqual(reference.Classes))
        {
            throw new ArgumentException(
                $"the reference holds classes {string.Join(",", reference.Classes)} but the settings ask for {string.Join(",", settings.Classes.Order())}; compute the reference for the same classes",
                nameof(reference));
        }
    }
}
