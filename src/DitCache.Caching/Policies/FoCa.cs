using System;
using DitCache.Tensors;

namespace DitCache.Caching;

/// <summary>
/// FoCa: Forecast then Calibrate (arXiv 2508.16211), implemented as "FoCa-A" of docs/methods.md §2.4 (the authors
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
/// FLOP-matched code lineage); <c>t</c> is the variable-step BDF2 of docs/methods.md §2.4 with h measured on the model
/// timesteps of the run (a named variant, never a silent switch: docs/methods.md §0).
/// </param>
/// <param name="Reading">
/// Knob <c>reading=paper|cachedit</c> (default paper = FoCa-A). <c>cachedit</c> is the third-party reading of
/// vipshop/cache-dit (docs/methods.md §2.6, "FoCa-B"), applied per module here, for comparison.
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

    /// <summary>Which sampling ordinals compute every block: TaylorSeer's schedule (docs/methods.md §2.3).</summary>
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

    /// <inheritdoc/>
    public long Bytes(CacheRunInfo run) => (long)FeatureSite.PerBlock * run.Depth * FocaForecaster.Slots * run.FeatureLength * sizeof(float);

    /// <summary>
    /// TaylorSeer's second order in the Newton basis at the same interval and warm-up (three stored tensors per site
    /// against FoCa's four; docs/methods.md §4.4), then its chain (<see cref="CacheBudget"/>).
    /// </summary>
    public ICacheOptions? Coarser() => new TaylorSeerOptions(Interval, 2, Warmup, Newton: true);
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
    /// <summary>FoCa-A, docs/methods.md §2.4.</summary>
    Paper,

    /// <summary>FoCa-B, the vipshop/cache-dit reading of docs/methods.md §2.6.</summary>
    CacheDit,
}

/// <summary>
/// The FoCa policy of one run. Per (block, site) a stack of 4 (B, T, D) slots allocated at build, and per site the
/// slot of each value: Y (the value at the last step), Yp (the step before), Ffull, and Dfull (reading=paper, always
/// slot 3) or the previous full value (reading=cachedit). Values never move: a step writes its one new value into a
/// slot nobody needs any more (preferably one it reads in the same pass) and the roles are re-pointed, so a cached
/// step is one fused pass (forecast into the model's buffer and into the stack) and a full step is one pass (Dfull
/// and the new value, which is Y and Ffull at once). See <see cref="FocaForecaster"/>.
/// </summary>
public sealed class FoCa : ICachePolicy
{
    private const int None = -1;

    private readonly bool[] _full;
    private readonly bool _corrector;
    private readonly bool _cacheDit;
    private readonly double[] _time;       // [n] time coordinate s_n (n, or t_0 − t_n)
    private readonly float[][] _stack;     // [site] (4, B, T, D)
    private readonly int[] _window;        // [site] rolling values held: 0, 1 (Y) or 2 (Y and Yp)
    private readonly int[] _fulls;         // [site] full records this run, capped at 2 (1: Ffull, 2: Dfull or FfullPrev too)
    private readonly int[] _fullN;         // [site] ordinal of the last full step
    private readonly int[] _y;             // [site] slot of Y
    private readonly int[] _yp;            // [site] slot of Yp
    private readonly int[] _ffull;         // [site] slot of Ffull
    private readonly int[] _prevFull;      // [site] slot of the previous Ffull (reading=cachedit)
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
        _stack = new float[FeatureSite.PerBlock * run.Depth][];
        for (int k = 0; k < _stack.Length; k++)
        {
            _stack[k] = new float[checked(FocaForecaster.Slots * _length)];
        }

        _window = new int[_stack.Length];
        _fulls = new int[_stack.Length];
        _fullN = new int[_stack.Length];
        _y = new int[_stack.Length];
        _yp = new int[_stack.Length];
        _ffull = new int[_stack.Length];
        _prevFull = new int[_stack.Length];
        CacheBytes = (long)_stack.Length * FocaForecaster.Slots * _length * sizeof(float);
    }

    /// <inheritdoc/>
    public long CacheBytes { get; }

    /// <inheritdoc/>
    public void BeginStep(int n, float timestep)
    {
        PolicyChecks.NextStep("FoCa", n, _n, _full.Length);

        if (n == 0)
        {
            Array.Clear(_window);
            Array.Clear(_fulls);
            Array.Fill(_y, None);
            Array.Fill(_yp, None);
            Array.Fill(_ffull, None);
            Array.Fill(_prevFull, None);
        }

        _n = n;
        _isFull = _full[n];
    }

    /// <inheritdoc/>
    public bool TryForecast(FeatureSite site, Span<float> output)
    {
        int k = SiteIndex(site);
        if (_isFull || _window[k] == 0)
        {
            return false;
        }

        bool hasYp = _window[k] == 2;
        int y = _y[k], yp = hasYp ? _yp[k] : None, full = _ffull[k];
        double wy, wyp, wf = 0, wd;
        int aux;                                // Dfull (paper) or the previous Ffull (cachedit)
        if (_cacheDit)
        {
            (wf, double wfp, wy, wyp) = FocaForecaster.CacheDitWeights(_fulls[k] == 2, hasYp, _n - _fullN[k]);
            aux = _prevFull[k];
            wd = wfp;
        }
        else
        {
            double h = _time[_n] - _time[_n - 1];
            double omega = _n >= 2 ? h / (_time[_n - 1] - _time[_n - 2]) : 1.0;
            (wy, wyp, wd) = FocaForecaster.Weights(hasYp, _fulls[k] == 2, _corrector, h, omega);
            aux = FocaForecaster.DerivativeSlot;
        }

        // The calibrated forecast re-enters the window (Yp <- Y, Y <- C): C goes into a slot that holds neither Y,
        // Ffull nor the auxiliary value, preferably Yp's, which this pass reads anyway.
        int into = FreeSlot(yp, y, full, aux);
        Span<float> stack = _stack[k];
        WeightedSum.CombineTerms(_length, Slot(stack, y), wy, Slot(stack, yp), wyp, Slot(stack, full), wf, Slot(stack, aux), wd,
            output, stack.Slice(into * _length, _length));
        _yp[k] = y;
        _y[k] = into;
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
        bool hasFull = _fulls[k] > 0;
        int y = _window[k] > 0 ? _y[k] : None, full = hasFull ? _ffull[k] : None;
        int into;
        if (_cacheDit)
        {
            // F_full_prev <- F_full; F_full <- F; F_km1 <- F_k; F_k <- F: one copy of F, the rest re-pointed.
            into = FreeSlot(None, y, full, None);
            output.CopyTo(stack.Slice(into * _length, _length));
            _prevFull[k] = full;
        }
        else
        {
            // Dfull <- (F - Ffull)/gap and F into one slot that becomes both Ffull and Y; the old Ffull's slot is
            // preferred (read in this pass) unless it is also Y, which stays as Yp.
            into = FreeSlot(full != y ? full : None, y, FocaForecaster.DerivativeSlot, None);
            Span<float> derivative = hasFull ? stack.Slice(FocaForecaster.DerivativeSlot * _length, _length) : default;
            FocaForecaster.RecordFull(output, Slot(stack, full), derivative, stack.Slice(into * _length, _length), hasFull,
                gap: _time[_n] - _time[_fullN[k]]);
        }

        _yp[k] = y;
        _y[k] = into;
        _ffull[k] = into;
        _fulls[k] = Math.Min(_fulls[k] + 1, 2);
        _fullN[k] = _n;
        _window[k] = Math.Min(_window[k] + 1, 2);
    }

    /// <summary>
    /// A slot none of <paramref name="keep0"/>, <paramref name="keep1"/>, <paramref name="keep2"/> holds:
    /// <paramref name="preferred"/> when it qualifies, else the lowest that does. With four slots and at most three
    /// values kept there is always one.
    /// </summary>
    private static int FreeSlot(int preferred, int keep0, int keep1, int keep2)
    {
        if (preferred != None && preferred != keep0 && preferred != keep1 && preferred != keep2)
        {
            return preferred;
        }

        for (int slot = 0; ; slot++)
        {
            if (slot != keep0 && slot != keep1 && slot != keep2)
            {
                return slot;
            }
        }
    }

    private ReadOnlySpan<float> Slot(Span<float> stack, int slot) => slot == None ? default : stack.Slice(slot * _length, _length);

    private int SiteIndex(FeatureSite site) => PolicyChecks.SiteIndex(site, _n, _stack.Length);
}
