using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.Linq;
using DitCache.Caching;
using DitCache.Caching.Calibration;
using DitCache.Evaluation.Metrics;
using DitCache.Models;
using DitCache.Sampling;
using DitCache.Tensors;

namespace DitCache.Evaluation.Tuning;

/// <summary>What <c>ditcache calibrate</c> measures.</summary>
/// <param name="Methods">Sections to produce: any of <see cref="CalibrationFile.Methods"/>.</param>
/// <param name="Steps">Sampling steps of the calibration run.</param>
/// <param name="Samples">Images (classes i mod num_classes), one batch.</param>
/// <param name="Sampler">"ddim" or "ddpm".</param>
/// <param name="Cfg">Guidance scale (1 = no CFG batch).</param>
/// <param name="Seed">Seed of the noise.</param>
/// <param name="Lookahead">SmoothCache's calibration lookahead L.</param>
/// <param name="TargetSpeedup">When set, tune each method's knob to this FLOPs ratio on the calibration samples.</param>
/// <param name="Command">The command line recorded in each section.</param>
/// <param name="Eta">DDIM η of the run.</param>
/// <param name="Classes">The class of each image instead of i mod num_classes (its length then replaces
/// <paramref name="Samples"/>); for tests against a fixture.</param>
/// <param name="Noise">Initial noise (N, C, H, W) instead of seeded noise; for tests against a fixture.</param>
public sealed record CalibrationSettings(IReadOnlyList<string> Methods, int Steps = 50, int Samples = 16, string Sampler = "ddim",
    float Cfg = 4f, int Seed = 0, int Lookahead = 3, double? TargetSpeedup = null, string Command = "", double Eta = 0,
    int[]? Classes = null, Tensor? Noise = null);

/// <summary>What a calibration produced.</summary>
/// <param name="Sections">The sections asked for, in registry order.</param>
/// <param name="FullSeconds">Wall clock of the full-compute run.</param>
/// <param name="TuneSeconds">Wall clock of the tuning runs.</param>
/// <param name="Searches">Per method, every knob value the tuner measured.</param>
public sealed record CalibrationOutcome(IReadOnlyList<ICalibrationSection> Sections, double FullSeconds, double TuneSeconds,
    IReadOnlyDictionary<string, IReadOnlyList<TuningPoint>> Searches)
{
    /// <summary>The section of type <typeparamref name="T"/>, or null when it was not asked for.</summary>
    public T? Section<T>()
        where T : class, ICalibrationSection<T> => Sections.OfType<T>().FirstOrDefault();
}

/// <summary>
/// Calibrates the calibrated methods of <see cref="CacheRegistry"/> on a model (docs/methods.md §5.5, §5.7, §5.8): one
/// full-compute sampling run with a <see cref="CalibrationRecorder"/> records every method's statistics, each method
/// makes its section from them (<see cref="ICalibrationSection{TSelf}.Measure"/>), and with a target speedup each
/// method searches its knob (<see cref="ICalibrationSection.Tune"/>) for the measured FLOPs ratio closest to the
/// target, reporting the PSNR it costs against the full-compute samples of the same run.
/// </summary>
public sealed class Calibrator
{
    private readonly DitModel _model;
    private readonly Action<string> _log;

    /// <summary>A calibrator for <paramref name="model"/>; <paramref name="log"/> receives progress lines.</summary>
    public Calibrator(DitModel model, Action<string>? log = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        _model = model;
        _log = log ?? (_ => { });
    }

    /// <summary>The classes of a calibration of <paramref name="samples"/> images: i mod num_classes.</summary>
    public static int[] Classes(int samples, int numClasses) => Enumerable.Range(0, samples).Select(i => i % numClasses).ToArray();

    /// <summary>Runs the calibration.</summary>
    /// <exception cref="DitCacheException">Bad settings (exit code 2).</exception>
    public CalibrationOutcome Run(CalibrationSettings settings, string modelHint)
    {
        ArgumentNullException.ThrowIfNull(settings);
        if (settings.Classes is { } given)
        {
            settings = settings with { Samples = given.Length };
        }

        Check(settings);
        DitConfig c = _model.Config;

        var request = new SampleRequest(settings.Classes ?? Classes(settings.Samples, c.NumClasses), settings.Steps, settings.Sampler,
            settings.Cfg, Eta: settings.Eta, Seed: settings.Seed, Noise: settings.Noise);
        var run = new CalibrationRun(settings.Sampler, settings.Steps, settings.Cfg, settings.Samples, settings.Seed, settings.Command);

        // 1. Full compute, recording everything.
        int epsPerImage = c.InChannels * c.InputSize * c.InputSize, outPerImage = c.OutChannels * c.InputSize * c.InputSize;
        float[] eps = new float[settings.Samples * epsPerImage], previousEps = new float[eps.Length];
        double[] relOut = new double[settings.Steps - 1];
        CalibrationRecorder? recorder = null;
        var pipeline = new DiffusionPipeline(_model);
        var clock = Stopwatch.StartNew();
        SampleResult full = pipeline.Run(request, info => recorder = new CalibrationRecorder(info, RecordedLookahead(settings)), "calibration",
            observe: (n, output) =>
            {
                for (int i = 0; i < settings.Samples; i++)
                {
                    output.Slice(i * outPerImage, epsPerImage).CopyTo(eps.AsSpan(i * epsPerImage));        // guided ε only
                }

                if (n > 0)
                {
                    relOut[n - 1] = RelativeError.L1(eps, previousEps);
                }

                eps.CopyTo(previousEps, 0);
            });
        double fullSeconds = clock.Elapsed.TotalSeconds;
        _log(string.Create(CultureInfo.InvariantCulture,
            $"full-compute run: {settings.Samples} image(s), {settings.Sampler} x{settings.Steps}, cfg {settings.Cfg}: {fullSeconds:F1} s"));

        CalibrationMeasurements measured = recorder!.Measurements(run, relOut);
        List<ICalibrationSection> sections = CacheRegistry.Calibrated.Where(m => settings.Methods.Contains(m.Name)).Select(m => m.Measure(measured)).ToList();

        // 2. Tuning against the full-compute samples.
        var searches = new Dictionary<string, IReadOnlyList<TuningPoint>>();
        clock.Restart();
        if (settings.TargetSpeedup is double target)
        {
            var tuning = new DiffusionPipeline(_model, new CalibrationFile("(this calibration)", modelHint, sections));
            for (int i = 0; i < sections.Count; i++)
            {
                var search = new KnobSearch(tuning, request, full, target, _log);
                sections[i] = sections[i].WithTuned(sections[i].Tune(search));
                searches[sections[i].Method] = search.Points;
            }
        }

        return new CalibrationOutcome(sections, fullSeconds, clock.Elapsed.TotalSeconds, searches);
    }

    private static void Check(CalibrationSettings s)
    {
        if (s.Methods.Count == 0 || s.Methods.Any(m => !CalibrationFile.Methods.Contains(m)))
        {
            throw Usage($"methods '{string.Join(",", s.Methods)}': choose from {string.Join(", ", CalibrationFile.Methods)} or all");
        }

        if (s.Steps < 2 || s.Steps > 1000)
        {
            throw Usage($"--steps {s.Steps} is out of range; a calibration needs 2 to 1000 steps");
        }

        if (s.Samples < 1)
        {
            throw Usage($"--samples {s.Samples} is invalid; give 1 or more images");
        }

        if (CacheRegistry.Calibrated.Where(m => s.Methods.Contains(m.Name)).Select(m => m.Unsupported(s.Steps, s.Lookahead)).FirstOrDefault(u => u is not null) is { } why)
        {
            throw Usage(why);
        }

        if (s.TargetSpeedup is double t && (!double.IsFinite(t) || t < 1))
        {
            throw Usage(string.Create(CultureInfo.InvariantCulture, $"--target-speedup {t} is invalid; give a FLOPs ratio >= 1, e.g. 2 or 4"));
        }

        if (s.Cfg < 1 || !float.IsFinite(s.Cfg))
        {
            throw Usage(string.Create(CultureInfo.InvariantCulture, $"--cfg {s.Cfg} is invalid; give a number >= 1 (1 disables guidance)"));
        }

        if (!SchedulerRegistry.IsKnown(s.Sampler))
        {
            throw Usage(SchedulerRegistry.UnknownMessage(s.Sampler));
        }
    }

    // SmoothCache's rows are recorded only to the lookahead it was checked for; without smoothcache among the methods
    // nothing reads them, so a --lookahead past the run's steps records the rows that exist instead of failing.
    private static int RecordedLookahead(CalibrationSettings s) =>
        s.Methods.Contains(SmoothCacheCalibration.Name) ? s.Lookahead : Math.Clamp(s.Lookahead, 1, s.Steps - 1);

    private static DitCacheException Usage(string message) => new("calibrate: " + message, exitCode: 2);

    /// <summary>One method's knob search against the full-compute samples of the calibration run.</summary>
    private sealed class KnobSearch : IKnobSearch
    {
        private readonly DiffusionPipeline _pipeline;
        private readonly SampleRequest _request;
        private readonly SampleResult _full;
        private readonly Action<string> _log;
        private readonly List<TuningPoint> _points = [];

        public KnobSearch(DiffusionPipeline pipeline, SampleRequest request, SampleResult full, double target, Action<string> log)
        {
            _pipeline = pipeline;
            _request = request;
            _full = full;
            Target = target;
            _log = log;
            DitConfig c = pipeline.Model.Config;
            int batch = request.CfgScale > 1 ? 2 * request.Classes.Length : request.Classes.Length;
            Flops = new ForwardFlops(c.Depth, DitFlops.Forward(c, batch), DitFlops.AdaLn(c, batch),
                DitFlops.Attention(c, batch) + DitFlops.LayerNorm(c, batch), DitFlops.Mlp(c, batch) + DitFlops.LayerNorm(c, batch));
        }

        public double Target { get; }

        public int Steps => _request.Steps;

        public ForwardFlops Flops { get; }

        public IReadOnlyList<TuningPoint> Points => _points;

        public TuningPoint Measure(ICacheOptions options, double value)
        {
            SampleResult r = _pipeline.Run(_request, options);
            var p = new TuningPoint(value, options.Spec, r.FullFlops / Math.Max(r.Flops, 1), MeanPsnr(r.Sample, _full.Sample));
            _points.Add(p);
            _log(string.Create(CultureInfo.InvariantCulture, $"  {p.Spec,-44} FLOPs ratio {p.FlopsRatio,6:F2}  PSNR {p.Psnr,6:F2} dB  ({r.Seconds:F1} s)"));
            return p;
        }

        public TunedSetting Choose(string knob)
        {
            TuningPoint best = _points.OrderBy(p => Math.Abs(p.FlopsRatio - Target)).ThenByDescending(p => p.Psnr).First();
            return new TunedSetting(Target, knob, best.Value, best.Spec, best.FlopsRatio, best.Psnr);
        }
    }

    /// <summary>Mean over images of the PSNR (dB, [0, 1] pixels, docs/methods.md §9.2) of <paramref name="sample"/> against <paramref name="reference"/>.</summary>
    public static double MeanPsnr(Tensor sample, Tensor reference)
    {
        ArgumentNullException.ThrowIfNull(sample);
        ArgumentNullException.ThrowIfNull(reference);
        int n = sample.Shape[0], size = sample.Data.Length / n;
        double sum = 0;
        for (int i = 0; i < n; i++)
        {
            sum += ImageMetrics.Psnr(sample.Data.AsSpan(i * size, size), reference.Data.AsSpan(i * size, size));
        }

        return sum / n;
    }
}
