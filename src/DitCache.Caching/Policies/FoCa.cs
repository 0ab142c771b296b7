using System;
using DitCache.Tensors;

namespace DitCache.Caching;

/// <summary>
/// FoCa: Forecast then Calibrate (arXiv 2508.16211), implemented as "FoCa-A" of METHODS.md section 2.4 (the authors
/// released no code; section 0 makes FoCa-A the default). Feature caching is treated as an ODE solve per block and
/// module: each cached step makes a BDF2 prediction from the two latest values and calibrates it with a Heun step
/// anchored on the derivative at the last full step; the result feeds the next step. Step h = 1 sampling step, the
/// same full/cached schedule as TaylorSeer (<see cref="TaylorSeerOptions.Schedule"/>), which the paper's FLOP counts
/// match exactly. Spec: <c>foca:n=5</c>; <c>foca:n=5,corrector=off</c> is the BDF2-only ablation.
/// </summary>
/// <param name="Interval">N (knob <c>n</c>, default 5, the DiT setting of the paper's tables with TaylorSeer's schedule: 11 full steps of 50).</param>
/// <param name="Warmup">K (knob <c>warmup</c>, default 2 as TaylorSeer-DiT): steps 0 … K−1 are full.</param>
/// <param name="Corrector">Knob <c>corrector=on|off</c> (default on): off emits the BDF2 prediction alone (Fig. 7 ablation).</param>
public sealed record FocaOptions(int Interval = 5, int Warmup = 2, bool Corrector = true) : ICacheOptions
{
    /// <inheritdoc/>
    public string Name => "foca";

    /// <inheritdoc/>
    public string Spec => $"foca:n={Interval},warmup={Warmup}" + (Corrector ? "" : ",corrector=off");

    /// <summary>Parses <c>foca:n=N,warmup=K,corrector=on|off</c>; unknown knobs are errors.</summary>
    public static FocaOptions FromSpec(CacheSpec spec)
    {
        var options = new FocaOptions(spec.GetInt("n", 5), spec.GetInt("warmup", 2), spec.GetChoice("corrector", "on", "on", "off") == "on");
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
    }

    /// <summary>Which sampling ordinals compute every block: TaylorSeer's schedule (METHODS.md section 2.3).</summary>
    public bool[] FullSteps(int steps) => TaylorSeerOptions.Schedule(steps, Interval, Warmup);

    /// <inheritdoc/>
    public ICachePolicy Build(CacheRunInfo run)
    {
        Validate();
        run.Validate();
        return new FoCa(FullSteps(run.Steps), Corrector, run);
    }
}

/// <summary>
/// The FoCa-A policy of one run. Per (block, site) a stack of 4 (B, T, D) slots allocated at build: two rolling
/// values (step n writes slot n mod 2, so slot (n−1) mod 2 is Y and slot n mod 2 is Yp until overwritten), Ffull
/// and Dfull. See <see cref="FocaForecaster"/> for the arithmetic.
/// </summary>
public sealed class FoCa : ICachePolicy
{
    private readonly bool[] _full;
    private readonly bool _corrector;
    private readonly float[][] _stack;     // [site] (4, B, T, D): rolling value ×2, Ffull, Dfull
    private readonly int[] _window;        // [site] rolling values held: 0, 1 (Y) or 2 (Y and Yp)
    private readonly int[] _fulls;         // [site] full records this run, capped at 2 (1: Ffull, 2: Dfull too)
    private readonly int[] _fullN;         // [site] ordinal of the last full step
    private readonly int _length;
    private int _n = -1;
    private bool _isFull;

    internal FoCa(bool[] full, bool corrector, CacheRunInfo run)
    {
        _full = full;
        _corrector = corrector;
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

        (double wy, double wyp, double wd) = FocaForecaster.Weights(_window[k] == 2, _fulls[k] == 2, _corrector);
        Span<double> weights = stackalloc double[FocaForecaster.Slots];
        weights.Clear();
        weights[(_n - 1) & 1] = wy;
        weights[_n & 1] = wyp;
        weights[FocaForecaster.DerivativeSlot] = wd;
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
        FocaForecaster.RecordFull(output, stack.Slice((_n & 1) * _length, _length),
            stack.Slice(FocaForecaster.FullSlot * _length, _length), stack.Slice(FocaForecaster.DerivativeSlot * _length, _length),
            hasFull: _fulls[k] > 0, gap: _n - _fullN[k]);
        _fulls[k] = Math.Min(_fulls[k] + 1, 2);
        _fullN[k] = _n;
        _window[k] = Math.Min(_window[k] + 1, 2);
    }

    /// <inheritdoc/>
    public void RecordBlocks(ReadOnlySpan<float> blockInput, ReadOnlySpan<float> blockOutput)
    {
    }

    private int SiteIndex(FeatureSite site)
    {
        if (_n < 0)
        {
            throw new InvalidOperationException("BeginStep must be called before the model runs");
        }

        int k = site.Index;
        if ((uint)k >= (uint)_stack.Length)
        {
            throw new ArgumentOutOfRangeException(nameof(site), site, $"this run has {_stack.Length / 2} blocks");
        }

        return k;
    }
}
