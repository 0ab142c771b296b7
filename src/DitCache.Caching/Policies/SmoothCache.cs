using System;
using DitCache.Caching.Calibration;
using DitCache.Tensors;

namespace DitCache.Caching;

/// <summary>
/// SmoothCache: A Universal Inference Acceleration Technique for Diffusion Transformers (Liu et al., arXiv 2411.10510;
/// official code Roblox/SmoothCache; METHODS.md 5.7). From the calibrated relative L1 rows of each component type
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
    /// The schedule of one component type (METHODS.md 5.7): <paramref name="rows"/>[r−1] is lookahead r (length
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
        CalibrationFile file = run.Calibration ?? throw new DitCacheException(
            "--cache smoothcache needs the model's calibration file and none was given; run 'ditcache calibrate smoothcache --model MODEL'", exitCode: 2);
        SmoothCacheCalibration calibration = file.SmoothCache ?? throw file.MissingSection("smoothcache");
        file.CheckRun("smoothcache", calibration.Run, run.Sampler, run.CfgScale);
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
        if (n < 0 || n >= _attnFull.Length || (n != 0 && n != _n + 1))
        {
            throw new InvalidOperationException($"SmoothCache was built for {_attnFull.Length} steps and is at step {_n}; step {n} cannot follow (steps run 0, 1, 2, …)");
        }

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
