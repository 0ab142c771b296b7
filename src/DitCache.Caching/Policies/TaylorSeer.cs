using System;
using DitCache.Tensors;

namespace DitCache.Caching;

/// <summary>
/// TaylorSeer: From Reusing to Forecasting: Accelerating Diffusion Models with TaylorSeers (Liu et al., ICCV 2025,
/// arXiv 2503.06923; official code Shenyi-Z/TaylorSeer <c>TaylorSeer-DiT/</c>; docs/methods.md §4.1). Per block and
/// module, full steps store the feature and its divided differences up to order O; the steps between are a Taylor
/// series in the step distance. Spec: <c>taylorseer:n=4,o=4</c> (knobs n, o, warmup, basis).
/// </summary>
/// <param name="Interval">N (knob <c>n</c>, default 4 as the official README): after the warm-up a step is full once N−1 Taylor steps have run.</param>
/// <param name="MaxOrder">O (knob <c>o</c>, default 4 as the official README): the highest derivative order kept; 0 is plain reuse.</param>
/// <param name="Warmup">K (knob <c>warmup</c>, default 2 = the official <c>first_enhance</c> for DiT): steps 0 … K−1 are full.</param>
/// <param name="Newton">Knob <c>basis</c>: <c>taylor</c> (false, the default: the official factors and weights) or
/// <c>newton</c> (true: our exact polynomial extrapolation through the last O+1 full steps, <see cref="NewtonForecaster"/>,
/// docs/methods.md §4.4).</param>
public sealed record TaylorSeerOptions(int Interval = 4, int MaxOrder = 4, int Warmup = 2, bool Newton = false) : ICacheOptions
{
    /// <summary>The highest order accepted by <see cref="Validate"/>.</summary>
    public const int MaxSupportedOrder = 8;

    /// <inheritdoc/>
    public string Name => "taylorseer";

    /// <inheritdoc/>
    public string Spec => $"taylorseer:n={Interval},o={MaxOrder},warmup={Warmup}{(Newton ? ",basis=newton" : "")}";

    /// <summary>Parses <c>taylorseer:n=N,o=O,warmup=K,basis=taylor|newton</c>; unknown knobs are errors.</summary>
    public static TaylorSeerOptions FromSpec(CacheSpec spec)
    {
        string basis = spec.GetChoice("basis", "taylor", "taylor", "newton");
        var options = new TaylorSeerOptions(spec.GetInt("n", 4), spec.GetInt("o", 4), spec.GetInt("warmup", 2), basis == "newton");
        spec.RejectUnknownKeys();
        return options;
    }

    /// <inheritdoc/>
    public void Validate()
    {
        if (Interval < 1)
        {
            throw new DitCacheException($"--cache taylorseer: n={Interval} is not a valid interval; n must be at least 1 (1 computes every step)", exitCode: 2);
        }

        if (MaxOrder < 0 || MaxOrder > MaxSupportedOrder)
        {
            throw new DitCacheException($"--cache taylorseer: o={MaxOrder} is outside [0, {MaxSupportedOrder}]; o is the Taylor order (0 = reuse, the paper uses up to 4)", exitCode: 2);
        }

        if (Warmup < 1)
        {
            throw new DitCacheException($"--cache taylorseer: warmup={Warmup} must be at least 1 (step 0 is always computed)", exitCode: 2);
        }
    }

    /// <summary>Which sampling ordinals n = 0 … steps−1 compute every block (the rest are Taylor steps).</summary>
    public bool[] FullSteps(int steps) => Schedule(steps, Interval, Warmup);

    /// <summary>
    /// The official schedule (<c>cal_type.py</c>), shared by FoCa: steps 0 … warmup−1 are full; afterwards a counter
    /// of cached steps makes the step full when it reaches N−1 and resets on every full step. With warm-up 2 the full
    /// steps are 0, 1, 1+N, 1+2N, …; the last step is not forced to be full. 50 steps: 18 full at N = 3, 11 at N = 5.
    /// </summary>
    public static bool[] Schedule(int steps, int interval, int warmup)
    {
        var full = new bool[steps];
        int counter = 0;
        for (int n = 0; n < steps; n++)
        {
            if (n < warmup || counter == interval - 1)
            {
                full[n] = true;
                counter = 0;
            }
            else
            {
                counter++;
            }
        }

        return full;
    }

    /// <inheritdoc/>
    public ICachePolicy Build(CacheRunInfo run)
    {
        Validate();
        run.Validate();
        return new TaylorSeer(FullSteps(run.Steps), MaxOrder + 1, Warmup, run, newton: Newton);
    }

    /// <inheritdoc/>
    public long Bytes(CacheRunInfo run) => (long)FeatureSite.PerBlock * run.Depth * (MaxOrder + 1) * run.FeatureLength * sizeof(float);

    /// <summary>One order less down to 1, then FreqCa's single residual at the same interval (<see cref="CacheBudget"/>).</summary>
    public ICacheOptions? Coarser() => MaxOrder > 1 ? this with { MaxOrder = MaxOrder - 1 } : new FreqCaOptions(Interval, Warmup: Warmup);
}

/// <summary>
/// The TaylorSeer policy of one run: per (block, site) a stack of O+1 factors (B, T, D), allocated at build; see
/// <see cref="TaylorForecaster"/> for the arithmetic. With a Hermite scale (HiCache, <see cref="HiCacheOptions"/>) the
/// same factors are combined with <see cref="HermiteForecaster"/>'s weights instead of the Taylor ones; with the Newton
/// basis the factors are exact divided differences at the full steps' ordinals (<see cref="NewtonForecaster"/>).
/// </summary>
public sealed class TaylorSeer : ICachePolicy
{
    private readonly double? _hermiteScale;   // null: Taylor weights; σ: HiCache's scaled Hermite weights
    private readonly double[][]? _nodes;      // Newton basis: [site] the full-step ordinals behind the factors, newest first
    private readonly bool[] _full;
    private readonly int _factors;         // O + 1
    private readonly float[][] _stack;     // [site] (O+1, B, T, D): d_0 … d_O
    private readonly int[] _count;         // [site] factors held (0 = nothing yet this run)
    private readonly int[] _fullN;         // [site] ordinal of the last full step
    private readonly int _length;
    private readonly int _firstDifference;  // first ordinal whose full step forms differences: warmup − 1
    private int _n = -1;
    private bool _isFull;

    internal TaylorSeer(bool[] full, int factors, int warmup, CacheRunInfo run, double? hermiteScale = null, bool newton = false)
    {
        _hermiteScale = hermiteScale;
        _full = full;
        _factors = factors;
        _firstDifference = warmup - 1;
        _length = run.FeatureLength;
        _stack = new float[FeatureSite.PerBlock * run.Depth][];
        for (int k = 0; k < _stack.Length; k++)
        {
            _stack[k] = new float[checked(factors * _length)];
        }

        _count = new int[_stack.Length];
        _fullN = new int[_stack.Length];
        if (newton)
        {
            _nodes = new double[_stack.Length][];
            for (int k = 0; k < _nodes.Length; k++)
            {
                _nodes[k] = new double[factors];
            }
        }

        CacheBytes = (long)_stack.Length * factors * _length * sizeof(float);
    }

    /// <inheritdoc/>
    public long CacheBytes { get; }

    /// <inheritdoc/>
    public void BeginStep(int n, float timestep)
    {
        PolicyChecks.NextStep("TaylorSeer", n, _n, _full.Length);

        if (n == 0)
        {
            Array.Clear(_count);    // a new image: taylor_cache_init clears every key
        }

        _n = n;
        _isFull = _full[n];
    }

    /// <inheritdoc/>
    public bool TryForecast(FeatureSite site, Span<float> output)
    {
        int k = SiteIndex(site);
        if (_isFull || _count[k] == 0)
        {
            return false;
        }

        Span<double> weights = stackalloc double[_count[k]];
        if (_nodes is not null)
        {
            NewtonForecaster.Weights(_n, _nodes[k], weights);
        }
        else if (_hermiteScale is double sigma)
        {
            HermiteForecaster.Weights(_n - _fullN[k], sigma, weights);
        }
        else
        {
            TaylorForecaster.Weights(_n - _fullN[k], weights);
        }

        WeightedSum.Combine(_stack[k], _length, weights, output);
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

        // The official gate (derivative_approximation runs only while i < S − first_enhance + 1, docs/methods.md §4.1; the
        // same rule is TaylorSeer-FLUX's "step ≥ 2" for first_enhance 3, 4.2): a full step before ordinal warmup − 1
        // keeps d_0 = F alone, so with warmup 3 the first difference is F(2) − F(1), not one built on F(0).
        int held = _n >= _firstDifference ? _count[k] : 0;
        _count[k] = _nodes is not null
            ? NewtonForecaster.UpdateFactors(_stack[k], _length, held, _factors, output, _n, _nodes[k])
            : TaylorForecaster.UpdateFactors(_stack[k], _length, held, _factors, output, _n - _fullN[k]);
        _fullN[k] = _n;
    }

    private int SiteIndex(FeatureSite site) => PolicyChecks.SiteIndex(site, _n, _stack.Length);
}
