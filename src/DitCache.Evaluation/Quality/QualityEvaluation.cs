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
/// <param name="Classes">The classes to generate, in grid-row order; each a class label of the model (0 … num_classes − 1).</param>
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
    /// <summary>Every class of a model with <paramref name="numClasses"/> classes: 0 … numClasses − 1.</summary>
    public static int[] AllClasses(int numClasses) => [.. Enumerable.Range(0, numClasses)];

    /// <summary>Total number of generated images, K × classes.</summary>
    public int TotalSamples => SamplesPerClass * Classes.Length;
}

/// <summary>One evaluation's outcome.</summary>
/// <param name="Settings">What was generated.</param>
/// <param name="Samples">Every generated image (N, C, H, W), class-major (sample i has label <c>Labels[i]</c>), before clamping.</param>
/// <param name="Labels">The requested class of each sample.</param>
/// <param name="Predictions">The classifier's prediction for each (clamped) sample; empty without a quality model.</param>
/// <param name="Accuracy">Fraction of samples the classifier assigns to the requested class; NaN without a quality model.</param>
/// <param name="ClassAccuracy">Accuracy per class, parallel to <see cref="QualitySettings.Classes"/>; NaN without a quality model.</param>
/// <param name="FrechetDistance">FD between the features of the generated samples and of the reference images; NaN without a quality model.</param>
/// <param name="Reference">The real images the samples are compared with, and the real floors; null without a quality model.</param>
/// <param name="MatchedFloor">
/// FD between K real training images per class and the reference: what a perfect model would score at this sample
/// size (the estimator is biased upward for small N). Null without a quality model or a training split.
/// </param>
/// <param name="Grid">First G samples of each class (classes × G, C, H, W), row-major: one row per class.</param>
/// <param name="Seconds">Wall clock of the whole evaluation (sampling and scoring; the reference is computed beforehand).</param>
/// <param name="SamplingSeconds">Wall clock of the sampling loops alone.</param>
/// <param name="Flops">FLOPs of all sampling runs (DiT-paper convention, whole CFG batch).</param>
/// <param name="FullFlops">FLOPs of the same runs with every block computed.</param>
/// <param name="FirstRun">The first batch's pipeline result: its per-step records and telemetry show the schedule.</param>
/// <param name="CacheBytes">The most feature memory the cache held in any batch.</param>
/// <param name="FullStepsPerImage">
/// For a policy that decides per sample, the mean number of steps in which an image ran every block (over all images);
/// null when the policy decides for the whole batch (every image then has the first run's count of computed steps).
/// </param>
public sealed record QualityResult(QualitySettings Settings, Tensor Samples, int[] Labels, int[] Predictions,
    double Accuracy, double[] ClassAccuracy, double FrechetDistance, QualityReference? Reference, double? MatchedFloor,
    Tensor Grid, double Seconds, double SamplingSeconds, double Flops, double FullFlops, SampleResult FirstRun, long CacheBytes,
    double? FullStepsPerImage = null);

/// <summary>One batch of an evaluation (<see cref="QualityEvaluation.RunBatch"/>).</summary>
/// <param name="Start">Index of the batch's first image in the evaluation (class-major).</param>
/// <param name="Labels">The requested class of each image.</param>
/// <param name="Samples">The images (count, C, H, W), before clamping.</param>
/// <param name="Predictions">The quality model's class of each image; empty without a quality model or when it does not classify.</param>
/// <param name="Features">The quality model's features (count, F) of each image; empty without a quality model.</param>
/// <param name="Run">The pipeline's result for this batch (FLOPs, seconds, per-step records).</param>
public sealed record QualityBatch(int Start, int[] Labels, float[] Samples, int[] Predictions, float[] Features, SampleResult Run)
{
    /// <summary>Number of images in the batch.</summary>
    public int Count => Labels.Length;
}

/// <summary>
/// The real side of the comparison: the feature statistics of the real images of the evaluated classes (for the
/// shipped model, the classifier features of all 10,000 Fashion-MNIST test images), and the real floor, the FD
/// between the first and second half of those images.
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

    /// <summary>FD between the first and second half of the reference images (the real floor); NaN for a reference read from a statistics file.</summary>
    public double Floor { get; }

    /// <summary>Images in the floor's first half.</summary>
    public int FloorCountA { get; }

    /// <summary>Images in the floor's second half.</summary>
    public int FloorCountB { get; }

    /// <summary>The dataset file the images came from.</summary>
    public string Source { get; }

    /// <summary>
    /// A reference known only by its statistics (a FID statistics file such as ADM's reference batch or pytorch-fid's
    /// <c>--save-stats</c> output): no floor (<see cref="Floor"/> is NaN, the floor counts 0).
    /// </summary>
    public static QualityReference FromStatistics(FeatureStatistics statistics, IEnumerable<int> classes, string source)
    {
        ArgumentNullException.ThrowIfNull(statistics);
        ArgumentNullException.ThrowIfNull(classes);
        return new QualityReference([.. classes.Distinct().Order()], statistics, double.NaN, 0, 0, source);
    }

    /// <summary>
    /// The reference of <paramref name="count"/> real images of <paramref name="classes"/> from their features
    /// (count, <paramref name="featureSize"/>), in dataset order: their statistics, and the floor between the first
    /// and second half of them.
    /// </summary>
    /// <exception cref="ArgumentException">Fewer than 4 images.</exception>
    public static QualityReference FromFeatures(float[] features, int count, int featureSize, IEnumerable<int> classes, string source)
    {
        ArgumentNullException.ThrowIfNull(features);
        ArgumentNullException.ThrowIfNull(classes);
        int[] wanted = [.. classes.Distinct().Order()];
        if (count < 4)
        {
            throw new ArgumentException($"{source}: only {count} images of classes {string.Join(",", wanted)}; the floor needs at least 4", nameof(count));
        }

        int half = count / 2, d = featureSize;
        FeatureStatistics all = FeatureStatistics.FromFeatures(features, count, d);
        double floor = Metrics.FrechetDistance.Compute(features.AsSpan(0, half * d), half, features.AsSpan(half * d, (count - half) * d), count - half, d);
        return new QualityReference(wanted, all, floor, half, count - half, source);
    }
}

/// <summary>
/// Sample-quality evaluation of a DiT: generate K images of each class, then, with a quality model
/// (<see cref="IQualityModel"/>; <see cref="FmnistQuality"/> for the shipped model), report how often its classifier
/// recognises the requested class and the Frechet distance between the features of the samples and of the real images.
/// </summary>
/// <remarks>
/// Samples are laid out class-major and cut into batches of <see cref="QualitySettings.BatchSize"/>; one pipeline
/// runs every batch. The j-th sample of class y always starts from the noise seeded by (seed, y, j), so with the
/// deterministic DDIM sampler a sample does not depend on K, the class list or the batch size (up to float
/// round-off of differently shaped GEMMs); stochastic steps draw from a per-batch seed derived from (seed, batch).
/// The quality model maps the raw samples to what it scores (the Fashion-MNIST classifier clamps them to [−1, 1], as
/// saving a PNG would; the FID Inception decodes latents and quantises to 8 bits); the returned samples are raw.
/// </remarks>
public sealed class QualityEvaluation
{
    private readonly DiffusionPipeline _pipeline;
    private readonly DitConfig _config;
    private readonly IQualityModel? _quality;
    private readonly bool _matchedFloor;

    /// <summary>
    /// An evaluation of <paramref name="model"/> scored by <paramref name="quality"/> (null: sampling, FLOPs and
    /// timing only; accuracy and Frechet distance are NaN).
    /// </summary>
    /// <exception cref="DitCacheException">The quality model does not score this model's images (exit code 2).</exception>
    /// <param name="model">The DiT.</param>
    /// <param name="quality">The quality model, or null.</param>
    /// <param name="calibration">The calibration the calibrated accelerators read.</param>
    /// <param name="matchedFloor">Whether <see cref="Run"/> also computes <see cref="QualityResult.MatchedFloor"/>
    /// (real training images through the quality model; a harness running many configurations computes it once).</param>
    public QualityEvaluation(DitModel model, IQualityModel? quality, CalibrationFile? calibration = null, bool matchedFloor = true)
    {
        ArgumentNullException.ThrowIfNull(model);
        quality?.CheckModel(model.Config);
        _pipeline = new DiffusionPipeline(model, calibration);
        _config = model.Config;
        _quality = quality;
        _matchedFloor = matchedFloor;
    }

    /// <summary>The quality model, if any.</summary>
    public IQualityModel? Quality => _quality;

    /// <summary>
    /// Generates and scores. <paramref name="progress"/> receives (sampling steps done, total) summed over batches.
    /// </summary>
    /// <exception cref="ArgumentException">Invalid settings, or a reference of other classes.</exception>
    /// <exception cref="ArgumentNullException">A quality model but no reference.</exception>
    public QualityResult Run(QualitySettings settings, QualityReference? reference, Action<int, int>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(settings);
        if (_quality is not null && reference is null)
        {
            throw new ArgumentNullException(nameof(reference), "a quality model needs the reference of the real images");
        }

        Validate(settings, reference, _config.NumClasses);
        var clock = Stopwatch.StartNew();

        int k = settings.SamplesPerClass, n = settings.TotalSamples;
        int channels = _config.InChannels, size = _config.InputSize, image = channels * size * size;
        int[] labels = new int[n];
        for (int i = 0; i < n; i++)
        {
            labels[i] = settings.Classes[i / k];
        }

        // 1. Sample and score, batch by batch (class-major order): the same batches, scored the same way, as a sharded
        // run (RunBatch) makes, so its images and features are bit for bit these.
        float[] samples = new float[n * image];                                       // (N, C, H, W)
        int batches = BatchCount(settings);
        int totalSteps = batches * settings.Steps;
        double samplingSeconds = 0, flops = 0, fullFlops = 0;
        SampleResult? first = null;
        long cacheBytes = 0, fullRowSteps = 0, sampleRows = 0;
        int featureSize = _quality?.FeatureSize ?? 0;
        int[] predictions = _quality is null ? [] : new int[n];
        float[] features = new float[n * featureSize];                                // (N, F)
        for (int b = 0; b < batches; b++)
        {
            int done = b * settings.Steps;
            QualityBatch batch = RunBatch(settings, b, progress is null ? null : (s, _) => progress(done + s, totalSteps));
            batch.Samples.CopyTo(samples, batch.Start * image);
            if (_quality is not null)
            {
                batch.Predictions.CopyTo(predictions, batch.Start);
                batch.Features.CopyTo(features, batch.Start * featureSize);
            }
            samplingSeconds += batch.Run.Seconds;
            flops += batch.Run.Flops;
            fullFlops += batch.Run.FullFlops;
            first ??= batch.Run;
            cacheBytes = Math.Max(cacheBytes, batch.Run.CacheBytes);
            if (batch.Run.Telemetry.FullStepsOfAllRows() is long full)
            {
                fullRowSteps += full;
                sampleRows += batch.Run.Telemetry.SampleRows;
            }
        }

        // 2. Score against the real images.
        double accuracy = double.NaN, fd = double.NaN;
        double[] classAccuracy = new double[settings.Classes.Length];
        Array.Fill(classAccuracy, double.NaN);
        double? matched = null;
        if (_quality is not null && reference is not null && _quality.Classifies)
        {
            Array.Clear(classAccuracy);
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

            accuracy = (double)correct / n;
        }

        if (_quality is not null && reference is not null)
        {
            FeatureStatistics generated = FeatureStatistics.FromFeatures(features, n, _quality.FeatureSize);
            fd = Metrics.FrechetDistance.Compute(generated, reference.Statistics);
            matched = _matchedFloor ? _quality.MatchedFloor(settings.SamplesPerClass, settings.Classes, reference) : null;
        }

        // 3. The grid: the first G samples of each class, one row per class.
        int g = Math.Min(settings.GridColumns, k), rows = settings.Classes.Length;
        float[] grid = new float[rows * g * image];                                   // (rows·G, C, H, W)
        for (int r = 0; r < rows; r++)
        {
            samples.AsSpan(r * k * image, g * image).CopyTo(grid.AsSpan(r * g * image));
        }

        clock.Stop();
        return new QualityResult(settings, new Tensor(samples, n, channels, size, size), labels, predictions, accuracy,
            classAccuracy, fd, _quality is null ? null : reference, matched, new Tensor(grid, rows * g, channels, size, size), clock.Elapsed.TotalSeconds,
            samplingSeconds, flops, fullFlops, first!, cacheBytes, sampleRows > 0 ? (double)fullRowSteps / sampleRows : null);
    }

    /// <summary>Number of batches of <paramref name="settings"/>: ⌈total samples / batch size⌉.</summary>
    public static int BatchCount(QualitySettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        return (int)(((long)settings.TotalSamples + settings.BatchSize - 1) / settings.BatchSize);
    }

    /// <summary>
    /// Samples batch <paramref name="batch"/> of <paramref name="settings"/> (images <c>batch · B</c> onwards, class-major)
    /// and, with a quality model, scores its images. A batch depends only on the settings and its number, so
    /// any set of batches run anywhere gives the images and features of <see cref="Run"/> bit for bit (same model,
    /// GEMM and thread count, or <c>--deterministic</c>). Allocates per batch, outside the step loop.
    /// </summary>
    /// <exception cref="ArgumentException">Invalid settings or a batch number outside 0 … <see cref="BatchCount"/> − 1.</exception>
    public QualityBatch RunBatch(QualitySettings settings, int batch, Action<int, int>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(settings);
        Validate(settings, null, _config.NumClasses);
        if (batch < 0 || batch >= BatchCount(settings))
        {
            throw new ArgumentException($"batch {batch} is outside 0..{BatchCount(settings) - 1}", nameof(batch));
        }

        int k = settings.SamplesPerClass, n = settings.TotalSamples;
        int channels = _config.InChannels, size = _config.InputSize, image = channels * size * size;
        int start = batch * settings.BatchSize, count = Math.Min(settings.BatchSize, n - start);
        int[] labels = new int[count];
        float[] noise = new float[count * image];                                     // (B, C, H, W)
        for (int i = 0; i < count; i++)
        {
            int sample = start + i;
            labels[i] = settings.Classes[sample / k];
            new GaussianNoise(DeriveSeed(settings.Seed, labels[i], sample % k)).Fill(noise.AsSpan(i * image, image));
        }

        var request = new SampleRequest(labels, settings.Steps, settings.Sampler, settings.CfgScale,
            Seed: DeriveSeed(settings.Seed, -1, batch), Noise: new Tensor(noise, count, channels, size, size));
        SampleResult result = _pipeline.Run(request, settings.Cache, progress: progress);
        float[] samples = result.Sample.Data.AsSpan(0, count * image).ToArray();     // (B, C, H, W), not clamped
        int[] predictions = [];
        float[] features = [];
        if (_quality is not null)
        {
            (predictions, features) = _quality.Score(samples, count);
        }

        return new QualityBatch(start, labels, samples, predictions, features, result);
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

    private static void Validate(QualitySettings settings, QualityReference? reference, int numClasses)
    {
        if (settings.SamplesPerClass < 1)
        {
            throw new ArgumentException($"samples per class {settings.SamplesPerClass} must be at least 1", nameof(settings));
        }

        if (settings.Classes.Length == 0 || settings.Classes.Any(c => c < 0 || c >= numClasses))
        {
            throw new ArgumentException($"classes must be a non-empty list of labels in 0..{numClasses - 1}", nameof(settings));
        }

        if (settings.Classes.Distinct().Count() != settings.Classes.Length)
        {
            throw new ArgumentException("classes must not repeat", nameof(settings));
        }

        if (reference is not null && settings.TotalSamples < 2)
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

        if (reference is not null && !settings.Classes.Order().SequenceEqual(reference.Classes))
        {
            throw new ArgumentException(
                $"the reference holds classes {string.Join(",", reference.Classes)} but the settings ask for {string.Join(",", settings.Classes.Order())}; compute the reference for the same classes",
                nameof(reference));
        }
    }
}
