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
/// <param name="Methods">Sections to produce: any of teacache, smoothcache, magcache.</param>
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

/// <summary>One evaluated knob value of a tuning search.</summary>
/// <param name="Value">The knob value.</param>
/// <param name="Spec">The cache spec.</param>
/// <param name="FlopsRatio">Measured full FLOPs / cached FLOPs on the calibration samples.</param>
/// <param name="Psnr">Mean PSNR against the full-compute samples (NaN when not run).</param>
public sealed record TuningPoint(double Value, string Spec, double FlopsRatio, double Psnr);

/// <summary>What a calibration produced.</summary>
/// <param name="TeaCache">TeaCache's section, when asked for.</param>
/// <param name="SmoothCache">SmoothCache's section, when asked for.</param>
/// <param name="MagCache">MagCache's section, when asked for.</param>
/// <param name="FullSeconds">Wall clock of the full-compute run.</param>
/// <param name="TuneSeconds">Wall clock of the tuning runs.</param>
/// <param name="Searches">Per method, every knob value the tuner measured.</param>
public sealed record CalibrationOutcome(TeaCacheCalibration? TeaCache, SmoothCacheCalibration? SmoothCache, MagCacheCalibration? MagCache,
    double FullSeconds, double TuneSeconds, IReadOnlyDictionary<string, IReadOnlyList<TuningPoint>> Searches);

/// <summary>
/// Calibrates TeaCache, SmoothCache and MagCache on a model (docs/methods.md §5.5, §5.7, §5.8): one full-compute sampling run
/// with a <see cref="CalibrationRecorder"/> records every method's statistics, TeaCache's polynomial is fitted, and
/// with a target speedup each method's knob is searched for the measured FLOPs ratio closest to the target, reporting
/// the PSNR it costs against the full-compute samples of the same run.
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
        SampleResult full = pipeline.Run(request, info => recorder = new CalibrationRecorder(info, settings.Lookahead), "calibration",
            observe: (n, output) =>
            {
                for (int i = 0; i < settings.Samples; i++)
                {
                    output.Slice(i * outPerImage, epsPerImage).CopyTo(eps.AsSpan(i * epsPerImage));        // guided ε only
                }

                if (n > 0)
                {
                    relOut[n - 1] = TeaCache.RelativeL1(eps, previousEps);
                }

                eps.CopyTo(previousEps, 0);
            });
        double fullSeconds = clock.Elapsed.TotalSeconds;
        _log(string.Create(CultureInfo.InvariantCulture,
            $"full-compute run: {settings.Samples} image(s), {settings.Sampler} x{settings.Steps}, cfg {settings.Cfg}: {fullSeconds:F1} s"));

        CalibrationRecorder rec = recorder!;
        TeaCacheCalibration? tea = settings.Methods.Contains("teacache")
            ? new TeaCacheCalibration(run, rec.RelIn, relOut, PolyFit.Fit(rec.RelIn, relOut, 4))
            : null;
        SmoothCacheCalibration? smooth = settings.Methods.Contains("smoothcache")
            ? new SmoothCacheCalibration(run, settings.Lookahead, rec.Rows(Site.Attn), rec.Rows(Site.Mlp))
            : null;
        MagCacheCalibration? mag = settings.Methods.Contains("magcache") ? new MagCacheCalibration(run, rec.Gamma) : null;

        // 2. Tuning against the full-compute samples.
        var searches = new Dictionary<string, IReadOnlyList<TuningPoint>>();
        clock.Restart();
        if (settings.TargetSpeedup is double target)
        {
            var calibration = new CalibrationFile("(this calibration)", modelHint, tea, smooth, mag);
            var tuner = new Tuner(new DiffusionPipeline(_model, calibration), request, full, target, _log);
            if (tea is not null)
            {
                (tea, searches["teacache"]) = (tea with { Tuned = tuner.TuneTeaCache(out List<TuningPoint> points) }, points);
            }

            if (smooth is not null)
            {
                (smooth, searches["smoothcache"]) = (smooth with { Tuned = tuner.TuneSmoothCache(smooth, out List<TuningPoint> points) }, points);
            }

            if (mag is not null)
            {
                (mag, searches["magcache"]) = (mag with { Tuned = tuner.TuneMagCache(mag, out List<TuningPoint> points) }, points);
            }
        }

        return new CalibrationOutcome(tea, smooth, mag, fullSeconds, clock.Elapsed.TotalSeconds, searches);
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

        if (s.Lookahead < 1 || s.Lookahead >= s.Steps)
        {
            throw Usage($"--lookahead {s.Lookahead} is out of range; give 1 to steps − 1 = {s.Steps - 1}");
        }

        if (s.TargetSpeedup is double t && (!double.IsFinite(t) || t < 1))
        {
            throw Usage(string.Create(CultureInfo.InvariantCulture, $"--target-speedup {t} is invalid; give a FLOPs ratio >= 1, e.g. 2 or 4"));
        }

        if (s.Cfg < 1 || !float.IsFinite(s.Cfg))
        {
            throw Usage(string.Create(CultureInfo.InvariantCulture, $"--cfg {s.Cfg} is invalid; give a number >= 1 (1 disables guidance)"));
        }

        if (s.Sampler is not ("ddim" or "ddpm"))
        {
            throw Usage($"--sampler '{s.Sampler}' is unknown; choose ddim or ddpm");
        }
    }

    private static DitCacheException Usage(string message) => new("calibrate: " + message, exitCode: 2);

    /// <summary>The knob searches, each against the same full-compute samples.</summary>
    private sealed class Tuner
    {
        private readonly DiffusionPipeline _pipeline;
        private readonly SampleRequest _request;
        private readonly SampleResult _full;
        private readonly double _target;
        private readonly Action<string> _log;

        public Tuner(DiffusionPipeline pipeline, SampleRequest request, SampleResult full, double target, Action<string> log)
        {
            _pipeline = pipeline;
            _request = request;
            _full = full;
            _target = target;
            _log = log;
        }

        /// <summary>
        /// TeaCache's decisions depend on the sample, so every candidate l is a cached run: l doubles from 0.05 until
        /// the ratio reaches the target (or l = 64), then 8 bisections; the closest measured ratio wins (ties: the
        /// higher PSNR).
        /// </summary>
        public TunedSetting TuneTeaCache(out List<TuningPoint> points)
        {
            points = [];
            double lo = 0, hi = 0.05;
            TuningPoint p = Measure(new TeaCacheOptions(hi), hi, points);
            while (p.FlopsRatio < _target && hi < 64)
            {
                lo = hi;
                hi *= 2;
                p = Measure(new TeaCacheOptions(hi), hi, points);
            }

            for (int i = 0; i < 8 && p.FlopsRatio >= _target; i++)
            {
                double mid = Math.Round((lo + hi) / 2, 6);
                TuningPoint m = Measure(new TeaCacheOptions(mid), mid, points);
                if (m.FlopsRatio >= _target)
                {
                    hi = mid;
                }
                else
                {
                    lo = mid;
                }
            }

            return Choose("l", points);
        }

        /// <summary>
        /// SmoothCache's schedule is fixed by the rows, so the FLOPs of each α follow without sampling: the candidate
        /// α are the row values themselves (every schedule change happens at one of them), rounded up to 4
        /// significant digits for a readable spec; the one closest to the target (the smallest α among equals) is then
        /// run once for its measured ratio and PSNR.
        /// </summary>
        public TunedSetting TuneSmoothCache(SmoothCacheCalibration calibration, out List<TuningPoint> points)
        {
            DitConfig c = _pipeline.Model.Config;
            int batch = _request.CfgScale > 1 ? 2 * _request.Classes.Length : _request.Classes.Length;
            double attn = DitFlops.Attention(c, batch) + DitFlops.LayerNorm(c, batch);
            double mlp = DitFlops.Mlp(c, batch) + DitFlops.LayerNorm(c, batch);
            double adaLn = DitFlops.AdaLn(c, batch);
            int steps = _request.Steps;
            double fullFlops = steps * DitFlops.Forward(c, batch);
            IEnumerable<double> candidates = calibration.Attn.Concat(calibration.Mlp).SelectMany(r => r).Select(RoundUp).Append(0).Distinct().Order();
            double best = 0, bestRatio = 1;
            foreach (double alpha in candidates)
            {
                var options = new SmoothCacheOptions(alpha);
                bool[] a = options.Schedule(calibration.Attn, steps), m = options.Schedule(calibration.Mlp, steps);
                double flops = 0;
                for (int n = 0; n < steps; n++)
                {
                    flops += c.Depth * (adaLn + (a[n] ? attn : 0) + (m[n] ? mlp : 0));
                }

                double ratio = fullFlops / flops;
                if (Math.Abs(ratio - _target) < Math.Abs(bestRatio - _target) - 1e-12)
                {
                    (best, bestRatio) = (alpha, ratio);
                }
            }

            points = [];
            Measure(new SmoothCacheOptions(best), best, points);
            return Choose("alpha", points);
        }

        /// <summary>
        /// MagCache's schedule is fixed by γ and the knobs (k stays at its default), so candidate thresholds are
        /// scanned without sampling (every value where the accumulated error of some run of steps changes is an
        /// accumulated-error value itself; a fine geometric grid over [1e-4, 16] covers them to within 2.3%); the
        /// closest (smallest threshold among equals) is run once.
        /// </summary>
        public TunedSetting TuneMagCache(MagCacheCalibration calibration, out List<TuningPoint> points)
        {
            double[] gamma = MagCacheOptions.Interpolate(calibration.Gamma, _request.Steps);
            double best = 0, bestRatio = _request.Steps / (double)new MagCacheOptions(0).FullSteps(gamma).Count(f => f);
            for (double t = 1e-4; t <= 16; t *= 1.023)
            {
                double thresh = Math.Round(t, 5);
                double ratio = _request.Steps / (double)new MagCacheOptions(thresh).FullSteps(gamma).Count(f => f);
                if (Math.Abs(ratio - _target) < Math.Abs(bestRatio - _target) - 1e-12)
                {
                    (best, bestRatio) = (thresh, ratio);
                }
            }

            points = [];
            Measure(new MagCacheOptions(best), best, points);
            return Choose("thresh", points);
        }

        private static double RoundUp(double v)
        {
            if (v <= 0 || !double.IsFinite(v))
            {
                return Math.Max(v, 0);
            }

            double scale = Math.Pow(10, 3 - Math.Floor(Math.Log10(v)));
            return Math.Ceiling(v * scale) / scale;
        }

        private TuningPoint Measure(ICacheOptions options, double value, List<TuningPoint> points)
        {
            SampleResult r = _pipeline.Run(_request, options);
            var p = new TuningPoint(value, options.Spec, r.FullFlops / Math.Max(r.Flops, 1), MeanPsnr(r.Sample, _full.Sample));
            points.Add(p);
            _log(string.Create(CultureInfo.InvariantCulture, $"  {p.Spec,-44} FLOPs ratio {p.FlopsRatio,6:F2}  PSNR {p.Psnr,6:F2} dB  ({r.Seconds:F1} s)"));
            return p;
        }

        private TunedSetting Choose(string knob, List<TuningPoint> points)
        {
            TuningPoint best = points.OrderBy(p => Math.Abs(p.FlopsRatio - _target)).ThenByDescending(p => p.Psnr).First();
            return new TunedSetting(_target, knob, best.Value, best.Spec, best.FlopsRatio, best.Psnr);
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
