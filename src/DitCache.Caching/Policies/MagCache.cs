using System;
using System.Linq;
using DitCache.Caching.Calibration;
using DitCache.Tensors;

namespace DitCache.Caching;

/// <summary>
/// MagCache: Fast Video Generation with Magnitude-Aware Cache (Ma et al., arXiv 2506.09045; official code
/// Zehong-Ma/MagCache; docs/methods.md §5.8). The calibrated magnitude ratios γ_n = mean_tokens ‖r_n‖ / ‖r_{n−1}‖ of the
/// block-stack residual r decide alone which steps skip: after the retained first steps, each step multiplies an
/// accumulated ratio by γ_n and adds |1 − ratio| to an error; while the error stays within the threshold and at most K
/// steps in a row are skipped, the stack is replaced by x ← x + r_prev. The schedule therefore depends only on the
/// calibration and the knobs, not on the sample. A calibration of another step count is mapped by nearest
/// interpolation. Spec: <c>magcache:thresh=0.24,k=5</c>.
/// </summary>
/// <param name="Threshold">Knob <c>thresh</c> (official <c>magcache_thresh</c>, default 0.24): the accumulated error allowed.</param>
/// <param name="MaxSkips">Knob <c>k</c> (official <c>K</c>, default 5): the most consecutive skipped steps.</param>
/// <param name="Retention">Knob <c>retention</c> (official <c>retention_ratio</c>, default 0.1): steps n &lt; int(retention·S + 0.5) always compute.</param>
public sealed record MagCacheOptions(double Threshold = 0.24, int MaxSkips = 5, double Retention = 0.1) : ICacheOptions
{
    /// <inheritdoc/>
    public string Name => "magcache";

    /// <inheritdoc/>
    public string Spec => FormattableString.Invariant($"magcache:thresh={Threshold},k={MaxSkips},retention={Retention}");

    /// <summary>Parses <c>magcache:thresh=E,k=K,retention=R</c>; unknown knobs are errors.</summary>
    public static MagCacheOptions FromSpec(CacheSpec spec)
    {
        var options = new MagCacheOptions(spec.GetDouble("thresh", 0.24), spec.GetInt("k", 5), spec.GetDouble("retention", 0.1));
        spec.RejectUnknownKeys();
        return options;
    }

    /// <inheritdoc/>
    public void Validate()
    {
        if (!double.IsFinite(Threshold) || Threshold < 0)
        {
            throw new DitCacheException(FormattableString.Invariant($"--cache magcache: thresh={Threshold} is not valid; give a finite number >= 0 (0 computes every step after the retained ones)"), exitCode: 2);
        }

        if (MaxSkips < 0)
        {
            throw new DitCacheException($"--cache magcache: k={MaxSkips} is not valid; give 0 or more consecutive skipped steps (0 computes every step)", exitCode: 2);
        }

        if (!double.IsFinite(Retention) || Retention < 0 || Retention > 1)
        {
            throw new DitCacheException(FormattableString.Invariant($"--cache magcache: retention={Retention} is outside [0, 1] (the fraction of first steps always computed)"), exitCode: 2);
        }
    }

    /// <summary>
    /// γ of a calibration with L steps mapped to <paramref name="steps"/> by nearest interpolation (docs/methods.md §5.8):
    /// entry n is γ[round(n·(L−1)/(S−1))], rounding half to even as numpy does.
    /// </summary>
    public static double[] Interpolate(ReadOnlySpan<double> gamma, int steps)
    {
        int l = gamma.Length;
        if (l == steps)
        {
            return gamma.ToArray();
        }

        var mapped = new double[steps];
        for (int n = 0; n < steps; n++)
        {
            double index = steps == 1 ? 0 : n * (double)(l - 1) / (steps - 1);
            mapped[n] = gamma[(int)Math.Round(index, MidpointRounding.ToEven)];
        }

        return mapped;
    }

    /// <summary>The decision rule (docs/methods.md §5.8): which of the steps of <paramref name="gamma"/> (one per step) compute.</summary>
    public bool[] FullSteps(ReadOnlySpan<double> gamma)
    {
        int steps = gamma.Length;
        var full = new bool[steps];
        int retained = (int)((Retention * steps) + 0.5);
        double ratio = 1, err = 0;
        int skipped = 0;
        for (int n = 0; n < steps; n++)
        {
            if (n < retained || n == 0)
            {
                full[n] = true;
                continue;
            }

            ratio *= gamma[n];
            skipped++;
            err += Math.Abs(1 - ratio);
            if (err <= Threshold && skipped <= MaxSkips)
            {
                continue;                                                   // skip: x ← x + r_prev
            }

            ratio = 1;
            err = 0;
            skipped = 0;
            full[n] = true;
        }

        return full;
    }

    /// <inheritdoc/>
    public ICachePolicy Build(CacheRunInfo run)
    {
        Validate();
        run.Validate();
        (_, MagCacheCalibration calibration) = CalibrationFile.For<MagCacheCalibration>(run);
        return new MagCache(FullSteps(Interpolate(calibration.Gamma, run.Steps)), run);
    }
}

/// <summary>
/// MagCache's calibration (docs/methods.md §5.8): γ_n = mean over tokens (and images) of ‖r_n‖₂ / ‖r_{n−1}‖₂ with
/// r = last-block output − block-0 input, norms over channels; γ_0 = 1.
/// </summary>
public sealed record MagCacheCalibration(CalibrationRun Run, double[] Gamma, TunedSetting? Tuned = null)
    : ICalibrationSection<MagCacheCalibration>
{
    /// <inheritdoc/>
    public static string Name => "magcache";

    string ICalibrationSection.Method => Name;

    /// <summary>The measured ratios.</summary>
    public static MagCacheCalibration Measure(CalibrationMeasurements measured)
    {
        ArgumentNullException.ThrowIfNull(measured);
        return new(measured.Run, measured.Gamma);
    }

    /// <inheritdoc/>
    public ICalibrationSection WithTuned(TunedSetting tuned) => this with { Tuned = tuned };

    /// <inheritdoc/>
    public void Check(CalibrationCheck check)
    {
        ArgumentNullException.ThrowIfNull(check);
        check.Require(Gamma is not null && Gamma.Length == Run.Steps, "gamma", $"must hold steps = {Run.Steps} numbers");
        check.Require(Gamma!.All(g => double.IsFinite(g) && g > 0), "gamma", "must be positive and finite");
    }

    /// <summary>
    /// MagCache's schedule is fixed by γ and the knobs (k stays at its default), so candidate thresholds are scanned
    /// without sampling (every value where the accumulated error of some run of steps changes is an accumulated-error
    /// value itself; a fine geometric grid over [1e-4, 16] covers them to within 2.3%); the closest (smallest
    /// threshold among equals) is run once.
    /// </summary>
    public TunedSetting Tune(IKnobSearch search)
    {
        ArgumentNullException.ThrowIfNull(search);
        double[] gamma = MagCacheOptions.Interpolate(Gamma, search.Steps);
        double best = 0, bestRatio = search.Steps / (double)new MagCacheOptions(0).FullSteps(gamma).Count(f => f);
        for (double t = 1e-4; t <= 16; t *= 1.023)
        {
            double thresh = Math.Round(t, 5);
            double ratio = search.Steps / (double)new MagCacheOptions(thresh).FullSteps(gamma).Count(f => f);
            if (Math.Abs(ratio - search.Target) < Math.Abs(bestRatio - search.Target) - 1e-12)
            {
                (best, bestRatio) = (thresh, ratio);
            }
        }

        search.Measure(new MagCacheOptions(best), best);
        return search.Choose("thresh");
    }
}

/// <summary>The MagCache policy of one run: the block-0 input of a computed step and the residual r_prev, (B, T, D) each.</summary>
public sealed class MagCache : ICachePolicy
{
    private readonly bool[] _full;
    private readonly int _length;
    private readonly StackResidual _stack;  // the whole-stack residual of the last computed step
    private int _n = -1;

    internal MagCache(bool[] full, CacheRunInfo run)
    {
        _full = full;
        _length = run.FeatureLength;
        _stack = new StackResidual(_length, run.Depth);
        CacheBytes = 2L * _length * sizeof(float);
    }

    /// <inheritdoc/>
    public long CacheBytes { get; }

    /// <inheritdoc/>
    public void BeginStep(int n, float timestep)
    {
        PolicyChecks.NextStep("MagCache", n, _n, _full.Length);

        if (n == 0)
        {
            _stack.Clear();
        }

        _n = n;
    }

    /// <inheritdoc/>
    public int SkipBlocks(int from, Span<float> x)
    {
        if (from != 0)
        {
            return from;
        }

        PolicyChecks.Started(_n);
        return _stack.SkipBlocks(from, x, skip: !_full[_n]);                // x ← x + r_prev, or keep the stack input
    }

    /// <inheritdoc/>
    public void RecordBlock(int block, ReadOnlySpan<float> output) => _stack.RecordBlock(block, output);
}
