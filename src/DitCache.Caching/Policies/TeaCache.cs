using System;
using System.Globalization;
using System.Linq;
using DitCache.Caching.Calibration;
using DitCache.Tensors;

namespace DitCache.Caching;

/// <summary>
/// TeaCache: Timestep Embedding Aware Cache (Liu et al., "Timestep Embedding Tells: It's Time to Cache for Video
/// Diffusion Model", arXiv 2411.19108; official code ali-vilab/TeaCache; docs/methods.md §5.5). The indicator is block 0's
/// modulated input I_n = modulate(norm1(x), shift_msa, scale_msa) of the whole CFG batch; each step adds
/// poly(mean|I_n − I_{n−1}| / mean|I_{n−1}|) to an accumulator and skips the block stack (x ← x + R, R = last-block
/// output − block-0 input of the last computed step) while the sum stays below l. The polynomial comes from the
/// model's calibration file (<c>ditcache calibrate teacache</c>); no DiT coefficients are published. It maps one
/// step's input change to its output change, so it does not depend on the step count: a 50-step calibration serves
/// any step count. Spec: <c>teacache:l=0.05</c>.
/// </summary>
/// <param name="Threshold">
/// l (knob <c>l</c>, official <c>rel_l1_thresh</c>, default 0.05): the accumulated estimated relative output change
/// allowed before the stack is computed again. 0 computes every step; larger skips more. No value is published for
/// DiT; with a calibrated polynomial l is in units of the guided ε's relative L1 change, which on the shipped model is
/// 0.005 … 0.05 per step, so the FLUX values (0.25 … 0.8) would skip nearly everything. 0.05 gives 3.3x fewer FLOPs on
/// the shipped model (docs/accelerators/teacache.md); <c>ditcache calibrate --target-speedup</c> picks l for a target.
/// </param>
public sealed record TeaCacheOptions(double Threshold = 0.05) : ICacheOptions
{
    /// <inheritdoc/>
    public string Name => "teacache";

    /// <inheritdoc/>
    public string Spec => FormattableString.Invariant($"teacache:l={Threshold}");

    /// <summary>Parses <c>teacache:l=L</c>; unknown knobs are errors.</summary>
    public static TeaCacheOptions FromSpec(CacheSpec spec)
    {
        var options = new TeaCacheOptions(spec.GetDouble("l", 0.05));
        spec.RejectUnknownKeys();
        return options;
    }

    /// <inheritdoc/>
    public void Validate()
    {
        if (!double.IsFinite(Threshold) || Threshold < 0)
        {
            throw new DitCacheException(FormattableString.Invariant($"--cache teacache: l={Threshold} is not a valid threshold; l must be a finite number >= 0 (0 computes every step)"), exitCode: 2);
        }
    }

    /// <summary>
    /// The decision rule alone (docs/methods.md §5.5), for tests and the reference: given rel_n for n = 1 … S−1 (index n−1
    /// of <paramref name="rel"/>), which steps compute. Steps 0 and S−1 always compute and reset the accumulator.
    /// </summary>
    public bool[] Decide(ReadOnlySpan<double> coefficients, ReadOnlySpan<double> rel)
    {
        int steps = rel.Length + 1;
        var full = new bool[steps];
        double acc = 0;
        for (int n = 0; n < steps; n++)
        {
            full[n] = Step(n, steps, n == 0 ? 0 : rel[n - 1], coefficients, ref acc);
        }

        return full;
    }

    internal bool Step(int n, int steps, double rel, ReadOnlySpan<double> coefficients, ref double acc)
    {
        if (n == 0 || n == steps - 1)
        {
            acc = 0;
            return true;
        }

        acc += PolyFit.Evaluate(coefficients, rel);
        if (acc < Threshold)
        {
            return false;
        }

        acc = 0;
        return true;
    }

    /// <inheritdoc/>
    public ICachePolicy Build(CacheRunInfo run)
    {
        Validate();
        run.Validate();
        (_, TeaCacheCalibration calibration) = CalibrationFile.For<TeaCacheCalibration>(run);
        return new TeaCache(this, calibration.Coefficients, run);
    }
}

/// <summary>
/// TeaCache's calibration (docs/methods.md §5.5): for n = 1 … S−1, the relative L1 change of block 0's modulated input
/// (<see cref="RelIn"/>) and of the model output (<see cref="RelOut"/>: the guided ε the sampler consumes, variance
/// channels excluded) between steps n−1 and n, and the degree-4 least-squares fit rel_out ≈ poly(rel_in), highest
/// degree first (<c>np.poly1d</c> order).
/// </summary>
public sealed record TeaCacheCalibration(CalibrationRun Run, double[] RelIn, double[] RelOut, double[] Coefficients, TunedSetting? Tuned = null)
    : ICalibrationSection<TeaCacheCalibration>
{
    /// <inheritdoc/>
    public static string Name => "teacache";

    string ICalibrationSection.Method => Name;

    /// <summary>The measured pairs and their degree-4 fit.</summary>
    public static TeaCacheCalibration Measure(CalibrationMeasurements measured)
    {
        ArgumentNullException.ThrowIfNull(measured);
        double[] coefficients;
        try
        {
            coefficients = PolyFit.Fit(measured.RelIn, measured.RelOut, 4);
        }
        catch (ArgumentException e)
        {
            throw new DitCacheException(
                $"calibrate teacache: the measured changes do not determine the degree-4 fit ({e.Message.Split(" (Parameter", 2)[0]}); the model's block-0 input barely changes between steps, so TeaCache cannot be calibrated on it: use another accelerator", e);
        }

        return new(measured.Run, measured.RelIn, measured.RelOut, coefficients);
    }

    /// <inheritdoc/>
    public static string? Unsupported(int steps, int lookahead) =>
        steps < FitPoints + 1 ? $"--steps {steps} gives {steps - 1} step pairs; teacache's degree-4 fit needs {FitPoints}: give --steps {FitPoints + 1} or more" : null;

    private const int FitPoints = 5;                                                       // degree 4 + 1

    /// <inheritdoc/>
    public ICalibrationSection WithTuned(TunedSetting tuned) => this with { Tuned = tuned };

    /// <inheritdoc/>
    public void Check(CalibrationCheck check)
    {
        ArgumentNullException.ThrowIfNull(check);
        check.Require(Coefficients?.Length == 5, "coefficients", "must hold 5 numbers (degree 4, highest first)");
        check.Require(RelIn is not null && RelOut is not null && RelIn.Length == RelOut.Length && RelIn.Length == Run.Steps - 1,
            "rel_in/rel_out", $"must both hold steps − 1 = {Run.Steps - 1} numbers");
        check.Require(Coefficients!.All(double.IsFinite), "coefficients", "must be finite");
    }

    /// <summary>
    /// TeaCache's decisions depend on the sample, so every candidate l is a cached run: l doubles from 0.05 until the
    /// ratio reaches the target (or l = 64), then 8 bisections; the closest measured ratio wins (ties: the higher
    /// PSNR).
    /// </summary>
    public TunedSetting Tune(IKnobSearch search)
    {
        ArgumentNullException.ThrowIfNull(search);
        double lo = 0, hi = 0.05;
        TuningPoint p = search.Measure(new TeaCacheOptions(hi), hi);
        while (p.FlopsRatio < search.Target && hi < 64)
        {
            lo = hi;
            hi *= 2;
            p = search.Measure(new TeaCacheOptions(hi), hi);
        }

        for (int i = 0; i < 8 && p.FlopsRatio >= search.Target; i++)
        {
            double mid = Math.Round((lo + hi) / 2, 6);
            TuningPoint m = search.Measure(new TeaCacheOptions(mid), mid);
            if (m.FlopsRatio >= search.Target)
            {
                hi = mid;
            }
            else
            {
                lo = mid;
            }
        }

        return search.Choose("l");
    }

    /// <inheritdoc/>
    public string? Describe() => "teacache: poly(rel_in) coefficients (highest degree first): " +
        string.Join(", ", Coefficients.Select(c => c.ToString("G6", CultureInfo.InvariantCulture)));
}

/// <summary>
/// The TeaCache policy of one run: the previous indicator, the block-0 input of the current step and the residual R,
/// each (B, T, D), allocated at build.
/// </summary>
public sealed class TeaCache : ICachePolicy
{
    private readonly TeaCacheOptions _options;
    private readonly double[] _coefficients;
    private readonly int _steps;
    private readonly int _length;
    private readonly float[] _previous;    // (B, T, D) I_{n−1}
    private readonly StackResidual _stack;  // the whole-stack residual of the last computed step
    private bool _observed;
    private double _acc;
    private int _n = -1;
    private bool _skip;

    internal TeaCache(TeaCacheOptions options, double[] coefficients, CacheRunInfo run)
    {
        _options = options;
        _coefficients = (double[])coefficients.Clone();
        _steps = run.Steps;
        _length = run.FeatureLength;
        _previous = new float[_length];
        _stack = new StackResidual(_length, run.Depth);
        CacheBytes = 3L * _length * sizeof(float);
    }

    /// <inheritdoc/>
    public long CacheBytes { get; }

    /// <inheritdoc/>
    public bool WantsModulatedInput => true;

    /// <inheritdoc/>
    public void BeginStep(int n, float timestep)
    {
        PolicyChecks.NextStep("TeaCache", n, _n, _steps);

        if (n == 0)
        {
            _stack.Clear();
            _acc = 0;
        }

        _n = n;
        _observed = false;
        _skip = false;
    }

    /// <inheritdoc/>
    public void ObserveModulatedInput(ReadOnlySpan<float> modulated)
    {
        PolicyChecks.Started(_n);

        if (modulated.Length != _length)
        {
            throw new ArgumentException($"modulated input has {modulated.Length} floats; this run's (B, T, D) has {_length}", nameof(modulated));
        }

        double rel = _n == 0 ? 0 : RelativeError.L1(modulated, _previous);           // mean|I_n − I_{n−1}| / mean|I_{n−1}|
        bool compute = _options.Step(_n, _steps, rel, _coefficients, ref _acc);
        _skip = !compute && _stack.HasResidual;
        modulated.CopyTo(_previous);                                         // I_prev follows every step, skipped or not
        _observed = true;
    }

    /// <inheritdoc/>
    public int SkipBlocks(int from, Span<float> x)
    {
        if (from == 0 && !_observed)
        {
            throw new InvalidOperationException("TeaCache needs ObserveModulatedInput before block 0 (WantsModulatedInput is true)");
        }

        return _stack.SkipBlocks(from, x, _skip);                           // x ← x + R, or keep the stack input
    }

    /// <inheritdoc/>
    public void RecordBlock(int block, ReadOnlySpan<float> output) => _stack.RecordBlock(block, output);
}
