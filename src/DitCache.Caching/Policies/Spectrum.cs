using System;
using DitCache.Tensors;

namespace DitCache.Caching;

/// <summary>
/// Spectrum: Adaptive Spectral Feature Forecasting (arXiv 2603.01623; official code hanjq17/Spectrum; docs/methods.md
/// section 3 with the decisions of section 0). One tensor per model call is forecast: the output of the whole block
/// stack (for DiT the output of the last block, our placement; the final layer still runs with the current c). Full
/// steps append that output to a history; cached steps skip every block (not even adaLN runs) and emit a blend of a
/// Chebyshev ridge fit over all stored points and a local linear extrapolation. Spec: <c>spectrum:n=2,alpha=0.75</c>.
/// </summary>
/// <param name="Window">N0 (knob <c>n</c>, official <c>window_size</c>, default 2): the first gap after the warm-up.</param>
/// <param name="Alpha">α (knob <c>alpha</c>, official <c>flex_window</c>, default 0.75 as the README): each gap grows by α.</param>
/// <param name="Degree">M (knob <c>m</c>, default 4): the Chebyshev degree, M+1 basis functions.</param>
/// <param name="Lambda">λ (knob <c>lam</c>, default 0.1): the ridge penalty, on every coefficient.</param>
/// <param name="Blend">w (knob <c>w</c>, default 0.5 as the README commands): weight of the Chebyshev forecast against the local one.</param>
/// <param name="Warmup">Knob <c>warmup</c> (official <c>warmup_steps</c>, default 5): steps 0 … warmup−1 are full.</param>
public sealed record SpectrumOptions(double Window = 2, double Alpha = 0.75, int Degree = 4, double Lambda = 0.1, double Blend = 0.5, int Warmup = 5)
    : ICacheOptions
{
    /// <summary>The history length K (hard-coded in the official <c>utils/__init__.py</c>): the last K full steps are fitted.</summary>
    public const int History = 100;

    /// <summary>The highest degree accepted by <see cref="Validate"/>.</summary>
    public const int MaxDegree = 16;

    /// <inheritdoc/>
    public string Name => "spectrum";

    /// <inheritdoc/>
    public string Spec => FormattableString.Invariant($"spectrum:n={Window},alpha={Alpha},m={Degree},lam={Lambda},w={Blend},warmup={Warmup}");

    /// <summary>Parses <c>spectrum:n=N0,alpha=α,m=M,lam=λ,w=w,warmup=K</c>; unknown knobs are errors.</summary>
    public static SpectrumOptions FromSpec(CacheSpec spec)
    {
        var options = new SpectrumOptions(spec.GetDouble("n", 2), spec.GetDouble("alpha", 0.75), spec.GetInt("m", 4),
            spec.GetDouble("lam", 0.1), spec.GetDouble("w", 0.5), spec.GetInt("warmup", 5));
        spec.RejectUnknownKeys();
        return options;
    }

    /// <inheritdoc/>
    public void Validate()
    {
        Require(double.IsFinite(Window) && Window >= 1, FormattableString.Invariant($"n={Window} must be at least 1 (the first gap between computed steps)"));
        Require(double.IsFinite(Alpha) && Alpha >= 0, FormattableString.Invariant($"alpha={Alpha} must be 0 or more (the growth of the gap per computed step)"));
        Require(Degree >= 0 && Degree <= MaxDegree, $"m={Degree} is outside [0, {MaxDegree}] (the Chebyshev degree; the paper uses 4)");
        Require(double.IsFinite(Lambda) && Lambda >= 0, FormattableString.Invariant($"lam={Lambda} must be 0 or more (the ridge penalty)"));
        Require(double.IsFinite(Blend) && Blend >= 0 && Blend <= 1, FormattableString.Invariant($"w={Blend} must be in [0, 1] (1 = Chebyshev only, 0 = linear only)"));
        Require(Warmup >= 1, $"warmup={Warmup} must be at least 1 (step 0 is always computed)");
    }

    private static void Require(bool ok, string message)
    {
        if (!ok)
        {
            throw new DitCacheException("--cache spectrum: " + message, exitCode: 2);
        }
    }

    /// <summary>
    /// The official adaptive schedule (<c>flux_forward.py</c>): after the warm-up a step is computed when the count of
    /// cached steps + 1 reaches floor(ws), and each computed step grows ws by α (rounded to 3 decimals). The last step
    /// is not forced. 50 steps, N0 = 2: α = 0.75 → 14 computed steps, α = 3 → 10.
    /// </summary>
    public bool[] FullSteps(int steps)
    {
        var full = new bool[steps];
        int cachedRun = 0;
        double ws = Window;
        for (int n = 0; n < steps; n++)
        {
            bool compute = true;
            if (n >= Warmup)
            {
                compute = (cachedRun + 1) % (int)Math.Floor(ws) == 0;
                if (compute)
                {
                    ws = Math.Round(ws + Alpha, 3, MidpointRounding.ToEven);
                }
            }

            full[n] = compute;
            cachedRun = compute ? 0 : cachedRun + 1;
        }

        return full;
    }

    /// <inheritdoc/>
    public ICachePolicy Build(CacheRunInfo run)
    {
        Validate();
        run.Validate();
        return new Spectrum(this, run);
    }
}

/// <summary>
/// The Spectrum policy of one run: a ring of min(K, full steps of the run) block-stack outputs (B, T, D), allocated at
/// build, with their ordinals; see <see cref="ChebyshevForecaster"/> for the arithmetic.
/// </summary>
public sealed class Spectrum : ICachePolicy
{
    private readonly SpectrumOptions _options;
    private readonly bool[] _full;
    private readonly int _steps;
    private readonly int _depth;
    private readonly int _capacity;
    private readonly float[] _rows;        // (R, B, T, D): block-stack outputs of full steps, ring order
    private readonly double[] _taus;       // [R] τ of each stored row
    private readonly int[] _ordinals;      // [R] n of each stored row
    private readonly double[] _weights;    // [R] forecast weights of the current step
    private readonly int _length;
    private int _count;                    // rows appended this run (the ring holds the last R)
    private int _n = -1;
    private bool _isFull;

    internal Spectrum(SpectrumOptions options, CacheRunInfo run)
    {
        _options = options;
        _full = options.FullSteps(run.Steps);
        _steps = run.Steps;
        _depth = run.Depth;
        _length = run.FeatureLength;
        _capacity = Math.Max(1, Math.Min(SpectrumOptions.History, Array.FindAll(_full, f => f).Length));
        _rows = new float[checked(_capacity * _length)];
        _taus = new double[_capacity];
        _ordinals = new int[_capacity];
        _weights = new double[_capacity];
        CacheBytes = (long)_rows.Length * sizeof(float);
    }

    /// <inheritdoc/>
    public long CacheBytes { get; }

    /// <inheritdoc/>
    public void BeginStep(int n, float timestep)
    {
        PolicyChecks.NextStep("Spectrum", n, _n, _steps);

        if (n == 0)
        {
            _count = 0;
        }

        _n = n;
        _isFull = _full[n];
    }

    /// <inheritdoc/>
    public int SkipBlocks(int from, Span<float> x)
    {
        if (from != 0)
        {
            return from;                                                     // only ever skips the whole stack
        }

        PolicyChecks.Started(_n);

        if (_isFull || _count == 0)
        {
            return 0;
        }

        if (x.Length != _length)
        {
            throw new ArgumentException($"block-stack tensor has {x.Length} floats; this run's (B, T, D) has {_length}", nameof(x));
        }

        int held = Math.Min(_count, _capacity);
        Span<double> weights = _weights.AsSpan(0, held);
        weights.Clear();
        double w = _options.Blend;
        if (w > 0)
        {
            ChebyshevForecaster.AddChebyshevWeights(_taus.AsSpan(0, held), _options.Degree, _options.Lambda,
                ChebyshevForecaster.Tau(_n, _steps), w, weights);
        }

        if (w < 1)
        {
            int last = (_count - 1) % _capacity, previous = _count >= 2 ? (_count - 2) % _capacity : -1;
            ChebyshevForecaster.AddLocalWeights(last, _ordinals[last], previous, previous < 0 ? 0 : _ordinals[previous], _n, 1 - w, weights);
        }

        WeightedSum.Combine(_rows, _length, weights, x);
        return _depth;
    }

    /// <inheritdoc/>
    public void RecordBlock(int block, ReadOnlySpan<float> output)
    {
        if (block != _depth - 1)
        {
            return;                                                          // the stack's output is the last block's
        }

        if (output.Length != _length)
        {
            throw new ArgumentException($"block-stack output has {output.Length} floats; this run's (B, T, D) has {_length}", nameof(output));
        }

        int slot = _count % _capacity;
        output.CopyTo(_rows.AsSpan(slot * _length, _length));
        _taus[slot] = ChebyshevForecaster.Tau(_n, _steps);
        _ordinals[slot] = _n;
        _count++;
    }
}
