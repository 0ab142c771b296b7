using System;
using System.Collections.Generic;
using System.Linq;
using DitCache.Caching.Calibration;
using DitCache.Tensors;

namespace DitCache.Caching;

/// <summary>
/// SmoothCache: A Universal Inference Acceleration Technique for Diffusion Transformers (Liu et al., arXiv 2411.10510;
/// official code Roblox/SmoothCache; docs/methods.md §5.7). From the calibrated relative L1 rows of each component type
/// (attention, MLP), a static schedule is generated per type: scanning the steps, the longest lookahead r whose error
/// at step i is within α computes step i and reuses its output for the next r steps. On a reused step every
/// module of that type returns its own stored output, which enters the block through the current adaLN gate. The
/// rows are measured at one step count and cannot be mapped to another: a run of another step count is an error.
/// Spec: <c>smoothcache:alpha=0.22</c>.
/// </summary>
/// <param name="Alpha">
/// α (knob <c>alpha</c>, official <c>calibration_threshold</c>, default 0.22 as the FoCa table uses on DiT-XL/2
/// DDIM-50): the relative L1 error a reuse may cost. 0 computes every step (unless a row is exactly 0).
/// </param>
public sealed record SmoothCacheOptions(double Alpha = 0.22) : ICacheOptions
{
    /// <inheritdoc/>
    public string Name => "smoothcache";

    /// <inheritdoc/>
    public string Spec => FormattableString.Invariant($"smoothcache:alpha={Alpha}");

    /// <summary>Parses <c>smoothcache:alpha=A</c>; unknown knobs are errors.</summary>
    public static SmoothCacheOptions FromSpec(CacheSpec spec)
    {
        var options = new SmoothCacheOptions(spec.GetDouble("alpha", 0.22));
        spec.RejectUnknownKeys();
        return options;
    }

    /// <inheritdoc/>
    public void Validate()
    {
        if (!double.IsFinite(Alpha) || Alpha < 0)
        {
            throw new DitCacheException(FormattableString.Invariant($"--cache smoothcache: alpha={Alpha} is not valid; give a finite number >= 0 (the relative L1 error a reuse may cost)"), exitCode: 2);
        }
    }

    /// <summary>
    /// The schedule of one component type (docs/methods.md §5.7): <paramref name="rows"/>[r−1] is lookahead r (length
    /// S − r). Scanning i = 0 … S−1: the first r from L down to 1 with rows[r−1][i] ≤ α computes i and reuses it at
    /// i+1 … i+r, the scan continuing at i + r + 1; with none, i computes. Steps 0 and S−1 are forced to compute.
    /// </summary>
    public bool[] Schedule(double[][] rows, int steps)
    {
        var full = new bool[steps];
        int i = 0;
        while (i < steps)
        {
            full[i] = true;
            int jump = 1;
            for (int r = rows.Length; r >= 1; r--)
            {
                double[] row = rows[r - 1];
                if (i < row.Length && row[i] <= Alpha)
                {
                    jump = r + 1;                                            // i+1 … i+r reuse (stay false)
                    break;
                }
            }

            i += jump;
        }

        full[0] = true;
        full[steps - 1] = true;
        return full;
    }

    /// <inheritdoc/>
    public ICachePolicy Build(CacheRunInfo run)
    {
        Validate();
        run.Validate();
        (CalibrationFile file, SmoothCacheCalibration calibration) = CalibrationFile.For<SmoothCacheCalibration>(run);
        if (calibration.Run.Steps != run.Steps)
        {
            throw new DitCacheException(
                $"--cache smoothcache: the calibration in {file.Source} was measured at {calibration.Run.Steps} steps and this run has {run.Steps}; " +
                $"SmoothCache's error rows cannot be interpolated to another step count. Recalibrate with '{file.CalibrateCommand("smoothcache")} --steps {run.Steps}' " +
                $"or sample with --steps {calibration.Run.Steps}", exitCode: 2);
        }

        return new SmoothCache(Schedule(calibration.Attn, run.Steps), Schedule(calibration.Mlp, run.Steps), run);
    }
}

/// <summary>
/// SmoothCache's calibration (docs/methods.md §5.7; Roblox/SmoothCache <c>calibration_helper.py</c>): per component
/// type, <see cref="Lookahead"/> rows; row r (r = 1 … L, stored at index r−1) holds S−r values, entry i being
/// ‖F_i − F_{i+r}‖₁ / ‖F_{i+r}‖₁ averaged over the blocks (the error of reusing step i's output r steps later).
/// </summary>
public sealed record SmoothCacheCalibration(CalibrationRun Run, int Lookahead, double[][] Attn, double[][] Mlp, TunedSetting? Tuned = null)
    : ICalibrationSection<SmoothCacheCalibration>
{
    /// <inheritdoc/>
    public static string Name => "smoothcache";

    string ICalibrationSection.Method => Name;

    /// <summary>The measured rows of both component types.</summary>
    public static SmoothCacheCalibration Measure(CalibrationMeasurements measured)
    {
        ArgumentNullException.ThrowIfNull(measured);
        return new(measured.Run, measured.Lookahead, measured.AttnRows, measured.MlpRows);
    }

    /// <inheritdoc/>
    public static string? Unsupported(int steps, int lookahead) =>
        lookahead < 1 || lookahead >= steps ? $"--lookahead {lookahead} is out of range for smoothcache; give 1 to steps − 1 = {steps - 1}" : null;

    /// <inheritdoc/>
    public ICalibrationSection WithTuned(TunedSetting tuned) => this with { Tuned = tuned };

    /// <inheritdoc/>
    public void Check(CalibrationCheck check)
    {
        ArgumentNullException.ThrowIfNull(check);
        check.Require(Lookahead >= 1 && Lookahead < Run.Steps, "lookahead", $"must be in [1, steps − 1], got {Lookahead}");
        foreach ((string name, double[][] rows) in new[] { ("attn", Attn), ("mlp", Mlp) })
        {
            check.Require(rows is not null && rows.Length == Lookahead, name, $"must hold lookahead = {Lookahead} rows");
            for (int r = 1; r <= rows!.Length; r++)
            {
                check.Require(rows[r - 1]?.Length == Run.Steps - r, $"{name}[{r - 1}]",
                    $"must hold steps − {r} = {Run.Steps - r} numbers (row r compares step i with step i + r)");
            }
        }
    }

    /// <summary>
    /// SmoothCache's schedule is fixed by the rows, so the FLOPs of each α follow without sampling: the candidate α
    /// are the row values themselves (every schedule change happens at one of them), rounded up to 4 significant
    /// digits for a readable spec; the one closest to the target (the smallest α among equals) is then run once for
    /// its measured ratio and PSNR.
    /// </summary>
    public TunedSetting Tune(IKnobSearch search)
    {
        ArgumentNullException.ThrowIfNull(search);
        ForwardFlops f = search.Flops;
        int steps = search.Steps;
        double fullFlops = steps * f.Forward;
        IEnumerable<double> candidates = Attn.Concat(Mlp).SelectMany(r => r).Select(RoundUp).Append(0).Distinct().Order();
        double best = 0, bestRatio = 1;
        foreach (double alpha in candidates)
        {
            var options = new SmoothCacheOptions(alpha);
            bool[] a = options.Schedule(Attn, steps), m = options.Schedule(Mlp, steps);
            double flops = 0;
            for (int n = 0; n < steps; n++)
            {
                flops += f.Depth * (f.AdaLn + (a[n] ? f.Attention : 0) + (m[n] ? f.Mlp : 0));
            }

            double ratio = fullFlops / flops;
            if (Math.Abs(ratio - search.Target) < Math.Abs(bestRatio - search.Target) - 1e-12)
            {
                (best, bestRatio) = (alpha, ratio);
            }
        }

        search.Measure(new SmoothCacheOptions(best), best);
        return search.Choose("alpha");
    }

    /// <summary><paramref name="v"/> rounded up to 4 significant digits (negative and non-finite values: max(v, 0)).</summary>
    private static double RoundUp(double v)
    {
        if (v <= 0 || !double.IsFinite(v))
        {
            return Math.Max(v, 0);
        }

        double scale = Math.Pow(10, 3 - Math.Floor(Math.Log10(v)));
        return Math.Ceiling(v * scale) / scale;
    }
}

/// <summary>The SmoothCache policy of one run: one stored (B, T, D) module output per (block, site), allocated at build.</summary>
public sealed class SmoothCache : ICachePolicy
{
    private readonly bool[] _attnFull;
    private readonly bool[] _mlpFull;
    private readonly ModuleStore _store;   // the module output of the last computed step, per site
    private int _n = -1;

    internal SmoothCache(bool[] attnFull, bool[] mlpFull, CacheRunInfo run)
    {
        _attnFull = attnFull;
        _mlpFull = mlpFull;
        _store = new ModuleStore(run);
        CacheBytes = _store.Bytes;
    }

    /// <inheritdoc/>
    public long CacheBytes { get; }

    /// <inheritdoc/>
    public void BeginStep(int n, float timestep)
    {
        PolicyChecks.NextStep("SmoothCache", n, _n, _attnFull.Length);

        if (n == 0)
        {
            _store.Clear();
        }

        _n = n;
    }

    /// <inheritdoc/>
    public bool TryForecast(FeatureSite site, Span<float> output)
    {
        _store.Check(site, _n);
        bool full = site.Site == Site.Attn ? _attnFull[_n] : _mlpFull[_n];
        return !full && _store.TryLoad(site, _n, output);
    }

    /// <inheritdoc/>
    public void Record(FeatureSite site, ReadOnlySpan<float> output)
    {
        _store.Save(site, _n, output);
    }
}
