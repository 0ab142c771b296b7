using System;
using DitCache.Tensors;

namespace DitCache.Caching;

/// <summary>
/// FoCa: Forecast then Calibrate (arXiv 2508.16211), implemented as "FoCa-A" of METHODS.md section 2.4 (the authors
/// released no code; section 0 makes FoCa-A the default). Feature caching is treated as an ODE solve per block and
/// module: each cached step makes a BDF2 prediction from the two latest values and calibrates it with a Heun step
/// anchored on the derivative at the last full step; the result feeds the next step. Step h = 1 sampling step, the
/// same full/cached schedule as TaylorSeer (<see cref="TaylorSeerOptions.Schedule"/>), which the paper's FLOP counts
/// match exactly. Spec: <c>foca:n=5</c>; <c>foca:n=5,corrector=off</c> is the BDF2-only ablation;
/// <c>time=t</c> (variable-step BDF2 on the model timesteps) and <c>reading=cachedit</c> (FoCa-B) are named variants.
/// </summary>
/// <param name="Interval">N (knob <c>n</c>, default 5: one of the paper's DiT-XL/2 settings, 11 full steps of 50 at 5.24 TFLOPs; its tables also list N = 2 and 3).</param>
/// <param name="Warmup">K (knob <c>warmup</c>, default 2 as TaylorSeer-DiT): steps 0 … K−1 are full.</param>
/// <param name="Corrector">Knob <c>corrector=on|off</c> (default on): off emits the BDF2 prediction alone (Fig. 7 ablation).</param>
/// <param name="Time">
/// Knob <c>time=step|t</c> (default step): the time unit of h. <c>step</c> is FoCa-A (h = 1 sampling step, the
/// FLOP-matched code lineage); <c>t</c> is the variable-step BDF2 of METHODS.md 2.4 with h measured on the model
/// timesteps of the run (a named variant, never a silent switch: METHODS.md section 0).
/// </param>
/// <param name="Reading">
/// Knob <c>reading=paper|cachedit</c> (default paper = FoCa-A). <c>cachedit</c> is the third-party reading of
/// vipshop/cache-dit (METHODS.md 2.6, "FoCa-B"), applied per module here, for comparison.
/// </param>
public sealed record FocaOptions(int Interval = 5, int Warmup = 2, bool Corrector = true, FocaTime Time = FocaTime.Step,
    FocaReading Reading = FocaReading.Paper) : ICacheOptions
{
    /// <inheritdoc/>
    public string Name => "foca";

    /// <inheritdoc/>
    public string Spec => $"foca:n={Interval},warmup={Warmup}" + (Corrector ? "" : ",corrector=off")
        + (Time == FocaTime.Step ? "" : ",time=t") + (Reading == FocaReading.Paper ? "" : ",reading=cachedit");

    /// <summary>Parses <c>foca:n=N,warmup=K,corrector=on|off,time=step|t,reading=paper|cachedit</c>; unknown knobs are errors.</summary>
    public static FocaOptions FromSpec(CacheSpec spec)
    {
        var options = new FocaOptions(
            spec.GetInt("n", 5),
            spec.GetInt("warmup", 2),
            spec.GetChoice("corrector", "on", "on", "off") == "on",
            spec.GetChoice("time", "step", "step", "t") == "t" ? FocaTime.Timestep : FocaTime.Step,
            spec.GetChoice("reading", "paper", "paper", "cachedit") == "cachedit" ? FocaReading.CacheDit : FocaReading.Paper);
        spec.RejectUnknownKeys();
        return options;
    }

    /// <inheritdoc/>
    public void Validate()
    {
        if (Interval < 1)
        {
            throw new DitCacheException($"--cache foca: n={Interval} is not a valid interval; n must be at least 1 (1 computes every step)", exitCode: 2);
        }

        if (Warmup < 1)
        {
            throw new DitCacheException($"--cache foca: warmup={Warmup} must be at least 1 (step 0 is always computed)", exitCode: 2);
        }

        if (Reading == FocaReading.CacheDit && (!Corrector || Time != FocaTime.Step))
        {
            throw new DitCacheException(
                "--cache foca: reading=cachedit has no corrector=off or time=t variant (cache-dit counts elapsed steps and has no BDF2-only output); drop those knobs",
                exitCode: 2);
        }
    }

    /// <summary>Which sampling ordinals compute every block: TaylorSeer's schedule (METHODS.md section 2.3).</summary>
    public bool[] FullSteps(int steps) => TaylorSeerOptions.Schedule(steps, Interval, Warmup);

    /// <summary>
    /// The time coordinate s_n of each ordinal: n (time=step), or t_0 − t_n on the run's model timesteps (time=t).
    /// </summary>
    /// <exception cref="DitCacheException">time=t on a timestep grid that is not strictly decreasing.</exception>
    public double[] TimeGrid(CacheRunInfo run)
    {
        var s = new double[run.Steps];
        for (int n = 0; n < s.Length; n++)
        {
            s[n] = Time == FocaTime.Step ? n : (double)run.Timesteps[0] - run.Timesteps[n];
            if (n > 0 && !(s[n] > s[n - 1]))
            {
                throw new DitCacheException(
                    $"--cache foca: time=t needs strictly decreasing model timesteps, but step {n} has t = {run.Timesteps[n]} after {run.Timesteps[n - 1]}; use time=step",
                    exitCode: 2);
            }
        }

        return s;
    }

    /// <inheritdoc/>
    public ICachePolicy Build(CacheRunInfo run)
    {
        Validate();
        run.Validate();
        return new FoCa(this, run);
    }
}

/// <summary>The time unit of FoCa's step h.</summary>
public enum FocaTime
{
    /// <summary>h = 1 sampling step (FoCa-A).</summary>
    Step,

    /// <summary>h on the model timesteps of the run (variable-step BDF2).</summary>
    Timestep,
}

/// <summary>Which reading of the FoCa paper to run.</summary>
public enum FocaReading
{
    /// <summary>FoCa-A, METHODS.md section 2.4.</summary>
    Paper,

    /// <summary>FoCa-B, the vipshop/cache-dit reading of METHODS.md section 2.6.</summary>
    CacheDit,
}

/// <summary>
/// The FoCa policy of one run. Per (block, site) a stack of 4 (B, T, D) slots allocated at build: two rolling
/// values (step n writes slot n mod 2, so slot (n−1) mod 2 is Y and slot n mod 2 is Yp until overwritten), Ffull,
/// and Dfull (reading=paper) or the previous full value (reading=cachedit). See <see cref="FocaForecaster"/>.
/// </summary>
public sealed class FoCa : ICachePolicy
{
    private readonly bool[] _full;
    private readonly bool _corrector;
    private readonly bool _cacheDit;
    private readonly double[] _time;       // [n] time coordinate s_n (n, or t_0 − t_n)
    private readonly float[][] _stack;     // [site] (4, B, T, D): rolling value ×2, Ffull, Dfull or previous Ffull
    private readonly int[] _window;        // [site] rolling values held: 0, 1 (Y) or 2 (Y and Yp)
    private readonly int[] _fulls;         // [site] full records this run, capped at 2 (1: Ffull, 2: Dfull too)
    private readonly int[] _fullN;         // [site] ordinal of the last full step
    private readonly int _length;
    private int _n = -1;
    private bool _isFull;

    internal FoCa(FocaOptions options, CacheRunInfo run)
    {
        _full = options.FullSteps(run.Steps);
        _corrector = options.Corrector;
        _cacheDit = options.Reading == FocaReading.CacheDit;
        _time = options.TimeGrid(run);
        _length = run.FeatureLength;
        _stack = new float[2 * run.Depth][];
        for (int k = 0; k < _stack.Length; k++)
        {
            _stack[k] = new float[checked(FocaForecaster.Slots * _length)];
        }

        _window = new int[_stack.Length];
        _fulls = new int[_stack.Length];
        _fullN = new int[_stack.Length];
        CacheBytes = (long)_stack.Length * FocaForecaster.Slots * _length * sizeof(float);
    }

    /// <inheritdoc/>
    public bool WantsBlockInput => false;

    /// <inheritdoc/>
    public long CacheBytes { get; }

    /// <inheritdoc/>
    public void BeginStep(int n, float timestep)
    {
        if (n < 0 || n >= _full.Length || (n != 0 && n != _n + 1))
        {
            throw new InvalidOperationException($"FoCa was built for {_full.Length} steps and is at step {_n}; step {n} cannot follow (steps run 0, 1, 2, …)");
        }

        if (n == 0)
        {
            Array.Clear(_window);
            Array.Clear(_fulls);
        }

        _n = n;
        _isFull = _full[n];
    }

    /// <inheritdoc/>
    public bool TrySkipBlocks(Span<float> x) => false;

    /// <inheritdoc/>
    public bool TryForecast(FeatureSite site, Span<float> output)
    {
        int k = SiteIndex(site);
        if (_isFull || _window[k] == 0)
        {
            return false;
        }

        Span<double> weights = stackalloc double[FocaForecaster.Slots];
        weights.Clear();
        int y = (_n - 1) & 1, yp = _n & 1;
        bool hasYp = _window[k] == 2;
        if (_cacheDit)
        {
            (double wf, double wfp, double wy, double wyp) = FocaForecaster.CacheDitWeights(_fulls[k] == 2, hasYp, _n - _fullN[k]);
            weights[FocaForecaster.FullSlot] = wf;
            weights[FocaForecaster.DerivativeSlot] = wfp;
            weights[y] += wy;
            weights[yp] += wyp;
        }
        else
        {
            double h = _time[_n] - _time[_n - 1];
            double omega = _n >= 2 ? h / (_time[_n - 1] - _time[_n - 2]) : 1.0;
            (double wy, double wyp, double wd) = FocaForecaster.Weights(hasYp, _fulls[k] == 2, _corrector, h, omega);
            weights[y] = wy;
            weights[yp] = wyp;
            weights[FocaForecaster.DerivativeSlot] = wd;
        }

        WeightedSum.Combine(_stack[k], _length, weights, output);

        // The calibrated forecast re-enters the window: Yp <- Y, Y <- C.
        output[.._length].CopyTo(_stack[k].AsSpan((_n & 1) * _length, _length));
        _window[k] = 2;
        return true;
    }

    /// <inheritdoc/>
    public void Record(FeatureSite site, ReadOnlySpan<float> output)
    {
        int k = SiteIndex(site);
        if (output.Length != _length)
        {
            throw new ArgumentException($"feature of {site} has {output.Length} floats; this run's (B, T, D) has {_length}", nameof(output));
        }

        Span<float> stack = _stack[k];
        Span<float> current = stack.Slice((_n & 1) * _length, _length);
        Span<float> full = stack.Slice(FocaForecaster.FullSlot * _length, _length);
        Span<float> dfullOrPrevFull = stack.Slice(FocaForecaster.DerivativeSlot * _length, _length);
        if (_cacheDit)
        {
            // F_full_prev <- F_full; F_full <- F; F_km1 <- F_k; F_k <- F
            if (_fulls[k] > 0)
            {
                full.CopyTo(dfullOrPrevFull);
            }

            output.CopyTo(full);
            output.CopyTo(current);
        }
        else
        {
            FocaForecaster.RecordFull(output, current, full, dfullOrPrevFull, hasFull: _fulls[k] > 0, gap: _time[_n] - _time[_fullN[k]]);
        }

        _fulls[k] = Math.Min(_fulls[k] + 1, 2);
        _fullN[k] = _n;
        _window[k] = Math.Min(_window[k] + 1, 2);
    }

    /// <inheritdoc/>
    public void RecordBlocks(ReadOnlySpan<float> blockInput, ReadOnlySpan<float> blockOutput)
    {
    }

    private int SiteIndex(FeatureSite site) => PolicyChecks.SiteIndex(site, _n, _stack.Length);
}
