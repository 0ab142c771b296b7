using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using DitCache.Caching;
using DitCache.Caching.Calibration;
using DitCache.Evaluation.Metrics;
using DitCache.Evaluation.Quality;
using DitCache.Models;
using DitCache.Sampling;
using DitCache.Tensors;

namespace DitCache.Evaluation.Bench;

/// <summary>How a benchmark samples.</summary>
/// <param name="Classes">The classes sampled, each <paramref name="SamplesPerClass"/> times, class-major; normally every
/// class of the model (<see cref="QualitySettings.AllClasses"/>).</param>
/// <param name="SamplesPerClass">Images per class per configuration.</param>
/// <param name="Repeats">Timed repeats per configuration; configurations are interleaved round by round.</param>
/// <param name="Seed">Base seed: every configuration sees the same initial noise per image.</param>
/// <param name="Sampler">"ddim" or "ddpm".</param>
/// <param name="BatchSize">Images per pipeline run.</param>
/// <param name="ShadowImages">Images of the shadow run per cached configuration (0 = no shadow runs).</param>
public sealed record BenchSettings(int[] Classes, int SamplesPerClass, int Repeats, int Seed = 0, string Sampler = "ddim", int BatchSize = 50,
    int ShadowImages = 10)
{
    /// <summary>Images per configuration.</summary>
    public int Samples => SamplesPerClass * Classes.Length;

    /// <summary>Checks the numbers; throws <see cref="DitCacheException"/> (exit code 2) naming the flag.</summary>
    public void Validate()
    {
        if (Classes.Length == 0)
        {
            throw new DitCacheException("--classes is empty; give at least one class", exitCode: 2);
        }

        if (SamplesPerClass < 1)
        {
            throw new DitCacheException($"--samples {Samples} is too small; give at least {Classes.Length} (one image per class)", exitCode: 2);
        }

        if (Repeats < 1)
        {
            throw new DitCacheException($"--repeats {Repeats} is invalid; give 1 or more", exitCode: 2);
        }

        if (BatchSize < 1)
        {
            throw new DitCacheException($"--batch {BatchSize} is invalid; give 1 or more", exitCode: 2);
        }

        if (ShadowImages < 0)
        {
            throw new DitCacheException($"--shadow-images {ShadowImages} is invalid; give 0 (off) or more", exitCode: 2);
        }
    }
}

/// <summary>
/// Runs a benchmark plan: every configuration on the same classes and the same initial noise, scored against the
/// full-compute reference of its guidance scale (PSNR, SSIM, relative L2) and, with a quality model, against the real
/// images (Frechet distance, class accuracy), timed over interleaved repeats so machine drift hits every configuration
/// alike. Image size, channels and classes come from the model and the settings, so any class-conditional DiT runs.
/// Results are handed to <c>checkpoint</c> after every configuration, so an interrupted run resumes where it stopped.
/// </summary>
public sealed class BenchRunner
{
    private readonly DitModel _model;
    private readonly IQualityModel? _quality;
    private readonly QualityEvaluation _evaluation;
    private readonly DiffusionPipeline _pipeline;

    /// <summary>
    /// A runner over <paramref name="model"/>, scored against real images with <paramref name="quality"/> (null:
    /// fidelity to full compute, FLOPs and time only; Frechet distance and accuracy are NaN).
    /// </summary>
    public BenchRunner(DitModel model, IQualityModel? quality, CalibrationFile? calibration = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        _model = model;
        _quality = quality;
        _evaluation = new QualityEvaluation(model, quality, calibration, matchedFloor: false);   // once per run: MatchedFloor
        _pipeline = new DiffusionPipeline(model, calibration);
    }

    /// <summary>
    /// Measures every configuration of <paramref name="plan"/> not already complete in <paramref name="results"/>
    /// (configurations there with fewer timed repeats get the missing ones). The reference of each guidance scale
    /// must precede the configurations that use it (<see cref="BenchPlan.Parse"/> puts them first).
    /// </summary>
    /// <param name="plan">Configurations in order.</param>
    /// <param name="settings">Sampling settings (must equal those of <paramref name="results"/>).</param>
    /// <param name="reference">The real images' features and floor (null without a quality model).</param>
    /// <param name="results">Results to extend (new or loaded from a previous run).</param>
    /// <param name="checkpoint">Called after every configuration with the results so far and the entry just measured.</param>
    /// <param name="progress">(label, images done, images total) while sampling.</param>
    public void Run(IReadOnlyList<BenchConfig> plan, BenchSettings settings, QualityReference? reference, BenchResults results,
        Action<BenchResults, BenchEntry> checkpoint, Action<string, int, int>? progress = null)
    {
        settings.Validate();
        DitConfig c = _model.Config;
        results.ImageShape ??= [c.InChannels, c.InputSize, c.InputSize];
        var referenceSamples = new Dictionary<float, Tensor>();
        for (int round = 0; round < settings.Repeats; round++)
        {
            foreach (BenchConfig config in plan)
            {
                BenchEntry? entry = results.Entries.Find(e => e.Config.Key == config.Key);
                if (entry is not null && entry.Seconds.Count > round)
                {
                    continue;                                                       // measured in this round already
                }

                QualityResult run = Sample(config, settings, reference, progress, round);
                if (entry is null)
                {
                    Tensor full = ReferenceSamples(config, settings, reference, run, referenceSamples, progress);
                    entry = Score(config, run, full, results, settings);
                    results.Entries.Add(entry);
                }
                else
                {
                    entry.Seconds.Add(run.SamplingSeconds);
                }

                UpdateSpeedups(results);
                checkpoint(results, entry);
            }
        }
    }

    /// <summary>The initial state of a results file for these settings.</summary>
    public static BenchResults NewResults(BenchSettings settings, string model, string machine, string command, int threads,
        string gemm, QualityReference? reference, double matchedFloor, IReadOnlyList<string>? classNames = null) => new()
        {
            Model = model,
            Machine = machine,
            Command = command,
            Samples = settings.Samples,
            Repeats = settings.Repeats,
            Seed = settings.Seed,
            Sampler = settings.Sampler,
            Threads = threads,
            Gemm = gemm,
            FloorFrechetDistance = reference?.Floor ?? double.NaN,
            MatchedFloorFrechetDistance = matchedFloor,
            StripClasses = settings.Classes,
            ClassNames = classNames is null ? null : [.. settings.Classes.Select(c => c < classNames.Count ? classNames[c] : c.ToString(CultureInfo.InvariantCulture))],
        };

    /// <summary>
    /// The Frechet distance of <paramref name="settings"/>.Samples real training images (the same count per class)
    /// against the reference: what a perfect model would score at this sample size; NaN without a quality model or
    /// a training split.
    /// </summary>
    public double MatchedFloor(BenchSettings settings, QualityReference? reference) =>
        _quality is null || reference is null ? double.NaN
            : _quality.MatchedFloor(settings.SamplesPerClass, settings.Classes, reference) ?? double.NaN;

    private QualityResult Sample(BenchConfig config, BenchSettings settings, QualityReference? reference,
        Action<string, int, int>? progress, int round)
    {
        var quality = new QualitySettings(settings.SamplesPerClass, settings.Classes, config.Steps, settings.Sampler,
            config.Cfg, CacheRegistry.Parse(config.Cache), settings.Seed, settings.BatchSize, GridColumns: 1);
        string label = settings.Repeats > 1 ? $"{config.Label} (round {round + 1}/{settings.Repeats})" : config.Label;
        int total = settings.Samples;
        return _evaluation.Run(quality, reference,
            progress is null ? null : (done, all) => progress(label, (int)((long)done * total / all), total));
    }

    private Tensor ReferenceSamples(BenchConfig config, BenchSettings settings, QualityReference? reference, QualityResult run,
        Dictionary<float, Tensor> cache, Action<string, int, int>? progress)
    {
        if (config.IsReference)
        {
            cache[config.Cfg] = run.Samples;
            return run.Samples;
        }

        if (!cache.TryGetValue(config.Cfg, out Tensor? full))
        {
            // Resumed after the reference was measured: sampling is deterministic, so re-draw its images.
            var referenceConfig = BenchPlan.Describe(new BenchConfig("none", run.Settings.Steps, config.Cfg), 0, config.Cfg);
            full = Sample(referenceConfig with { Label = $"reference for {config.Label}" }, settings with { Repeats = 1 }, reference, progress, 0).Samples;
            cache[config.Cfg] = full;
        }

        return full;
    }

    private BenchEntry Score(BenchConfig config, QualityResult run, Tensor full, BenchResults results, BenchSettings settings)
    {
        int n = run.Samples.Shape[0], channels = run.Samples.Shape[1], size = run.Samples.Shape[2];
        (double psnr, double ssim) = config.IsReference
            ? (double.PositiveInfinity, 1.0)
            : ImageMetrics.Mean(run.Samples.Data, full.Data, n * channels, size, size);   // one plane per channel
        double relL2 = config.IsReference ? 0 : ImageMetrics.RelativeL2(run.Samples.Data, full.Data);
        BenchEntry? referenceEntry = results.Entries.Find(e => e.Config.IsReference && e.Config.Cfg == config.Cfg);
        double referenceFlops = config.IsReference ? run.Flops : referenceEntry?.Flops
            ?? throw new InvalidOperationException($"the reference of cfg {config.Cfg} must be measured before {config.Label}");

        int k = run.Settings.SamplesPerClass, classes = settings.Classes.Length, image = channels * size * size;
        float[] strip = new float[classes * image];
        for (int c = 0; c < classes; c++)
        {
            run.Samples.Data.AsSpan(c * k * image, image).CopyTo(strip.AsSpan(c * image));
        }

        var entry = new BenchEntry
        {
            Config = config,
            ComputedSteps = run.FirstRun.Steps.Count(s => s.Computed),
            FullStepsPerImage = run.FullStepsPerImage,
            Flops = run.Flops,
            ReferenceFlops = referenceFlops,
            Seconds = [run.SamplingSeconds],
            Psnr = psnr,
            Ssim = ssim,
            RelativeL2 = relL2,
            FrechetDistance = run.FrechetDistance,
            Accuracy = run.Accuracy,
            CacheBytes = run.CacheBytes,
            Timeline = Timeline(run.FirstRun),
            Strip = strip,
        };
        if (settings.ShadowImages > 0 && config.Cache != "none")
        {
            Shadow(entry, settings);
        }

        return entry;
    }

    /// <summary>
    /// One letter per step: C every block computed, S block stack skipped, F every module forecast, P a mix (some
    /// modules or tokens computed, or a range of blocks skipped).
    /// </summary>
    public static string Timeline(SampleResult run) => string.Concat(run.Steps.Select(s =>
        s.BlocksSkipped ? 'S' : s.Computed ? 'C' : s.ModulesComputed > 0 || s.ModulesPartial > 0 ? 'P' : 'F'));

    private void Shadow(BenchEntry entry, BenchSettings settings)
    {
        BenchConfig c = entry.Config;
        int images = settings.ShadowImages, classes = settings.Classes.Length;
        int channels = _model.Config.InChannels, size = _model.Config.InputSize, pixels = channels * size * size;
        int[] labels = [.. Enumerable.Range(0, images).Select(i => settings.Classes[i % classes])];
        float[] noise = new float[images * pixels];
        for (int i = 0; i < images; i++)
        {
            // The same noise as the scored run's first image of each class (QualityEvaluation's seeding).
            int index = i / classes;
            new GaussianNoise(QualityEvaluation.DeriveSeed(settings.Seed, labels[i], index)).Fill(noise.AsSpan(i * pixels, pixels));
        }

        var request = new SampleRequest(labels, c.Steps, settings.Sampler, c.Cfg, Seed: settings.Seed,
            Noise: new Tensor(noise, images, channels, size, size), Shadow: true);
        SampleResult run = _pipeline.Run(request, CacheRegistry.Parse(c.Cache));
        StepTelemetry t = run.Telemetry;
        int depth = _model.Config.Depth;
        var perStep = new double[c.Steps];
        var blockSum = new double[depth];
        var blockCount = new int[depth];
        for (int n = 0; n < c.Steps; n++)
        {
            double sum = 0;
            int count = 0;
            for (int site = 0; site < 2 * depth; site++)
            {
                double e = t.ShadowErrors![n][site];
                if (double.IsFinite(e))
                {
                    sum += e;
                    count++;
                    blockSum[site / 2] += e;
                    blockCount[site / 2]++;
                }
            }

            double stack = t.ShadowBlocksErrors![n];
            perStep[n] = double.IsFinite(stack) ? stack : count > 0 ? sum / count : double.NaN;
        }

        entry.ShadowPerStep = perStep;
        entry.ShadowPerBlock = blockCount.Any(x => x > 0)
            ? [.. Enumerable.Range(0, depth).Select(b => blockCount[b] > 0 ? blockSum[b] / blockCount[b] : double.NaN)]
            : null;
    }

    private static void UpdateSpeedups(BenchResults results)
    {
        foreach (BenchEntry e in results.Entries)
        {
            BenchEntry? reference = results.Entries.Find(r => r.Config.IsReference && r.Config.Cfg == e.Config.Cfg);
            e.Speedup = reference is null || e.Seconds.Count == 0 ? double.NaN : reference.MedianSeconds / e.MedianSeconds;
        }
    }
}
