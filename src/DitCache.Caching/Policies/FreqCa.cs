using System;
using DitCache.Tensors;

namespace DitCache.Caching;

/// <summary>
/// FreqCa: Accelerating Diffusion Models via Frequency-Aware Caching (Liu, Cai, Zhou, … Zhang, arXiv 2510.08669,
/// 2025; no official code published when this was written; docs/methods.md §5.10). One tensor is cached instead of
/// per-layer features: the cumulative residual feature CRF = last-block output − block-0 input (B, T, D). Its low
/// frequencies over the token grid (<see cref="FrequencySplit"/>, 2-D DCT-II, cutoff ρ) are reused from the last full
/// step; its high frequencies are forecast with HiCache's scaled Hermite basis (<see cref="HermiteForecaster"/>,
/// second order by default) from TaylorSeer's divided differences of the high band at the full steps. A cached step
/// runs no block: <c>x ← x + low(CRF_last) + Ĥ(n)</c>; the final layer runs as usual. Spec:
/// <c>freqca:n=4,o=2,warmup=2,sigma=0.5,cutoff=0.25</c>.
/// </summary>
/// <param name="Interval">N (knob <c>n</c>, default 4 as TaylorSeer-DiT and HiCache here): after the warm-up a step is full once N−1 cached steps have run.</param>
/// <param name="MaxOrder">O (knob <c>o</c>, default 2: the paper's "second-order Hermite interpolator"): the highest difference order of the high band.</param>
/// <param name="Warmup">K (knob <c>warmup</c>, default 2 as TaylorSeer-DiT): steps 0 … K−1 are full.</param>
/// <param name="Scale">σ (knob <c>sigma</c>, default 0.5 as HiCache's code): the Hermite dual scale.</param>
/// <param name="Cutoff">ρ (knob <c>cutoff</c>, default 0.25, ours): the low band keeps DCT indices below ρ·side on each grid axis.</param>
public sealed record FreqCaOptions(int Interval = 4, int MaxOrder = 2, int Warmup = 2, double Scale = 0.5, double Cutoff = 0.25) : ICacheOptions
{
    /// <inheritdoc/>
    public string Name => "freqca";

    /// <inheritdoc/>
    public string Spec => FormattableString.Invariant($"freqca:n={Interval},o={MaxOrder},warmup={Warmup},sigma={Scale},cutoff={Cutoff}");

    /// <summary>Parses <c>freqca:n=N,o=O,warmup=K,sigma=σ,cutoff=ρ</c>; unknown knobs are errors.</summary>
    public static FreqCaOptions FromSpec(CacheSpec spec)
    {
        var options = new FreqCaOptions(spec.GetInt("n", 4), spec.GetInt("o", 2), spec.GetInt("warmup", 2), spec.GetDouble("sigma", 0.5),
            spec.GetDouble("cutoff", 0.25));
        spec.RejectUnknownKeys();
        return options;
    }

    /// <inheritdoc/>
    public void Validate()
    {
        if (Interval < 1)
        {
            throw new DitCacheException($"--cache freqca: n={Interval} is not a valid interval; n must be at least 1 (1 computes every step)", exitCode: 2);
        }

        if (MaxOrder < 0 || MaxOrder > TaylorSeerOptions.MaxSupportedOrder)
        {
            throw new DitCacheException($"--cache freqca: o={MaxOrder} is outside [0, {TaylorSeerOptions.MaxSupportedOrder}]; o is the high band's forecast order (0 = reuse, the paper uses 2)", exitCode: 2);
        }

        if (Warmup < 1)
        {
            throw new DitCacheException($"--cache freqca: warmup={Warmup} must be at least 1 (step 0 is always computed)", exitCode: 2);
        }

        if (!(Scale > 0) || !double.IsFinite(Scale) || Scale > 4)
        {
            throw new DitCacheException(FormattableString.Invariant($"--cache freqca: sigma={Scale} is outside (0, 4]; sigma is the Hermite scale of the high-band forecast (HiCache's code uses 0.5 to 0.75)"), exitCode: 2);
        }

        if (!(Cutoff > 0) || !(Cutoff <= 1))
        {
            throw new DitCacheException(FormattableString.Invariant($"--cache freqca: cutoff={Cutoff} is outside (0, 1]; cutoff is the fraction of DCT frequencies per grid axis reused as the low band (1 = reuse everything)"), exitCode: 2);
        }
    }

    /// <summary>Which sampling ordinals run the block stack: TaylorSeer's schedule (<see cref="TaylorSeerOptions.Schedule"/>).</summary>
    public bool[] FullSteps(int steps) => TaylorSeerOptions.Schedule(steps, Interval, Warmup);

    /// <inheritdoc/>
    public ICachePolicy Build(CacheRunInfo run)
    {
        Validate();
        run.Validate();
        int side = run.GridSide;
        if (side == 0)
        {
            throw new DitCacheException($"--cache freqca: the model has {run.Tokens} tokens per image, not a square patch grid; freqca splits frequencies over a side × side grid", exitCode: 2);
        }

        return new FreqCa(FullSteps(run.Steps), MaxOrder + 1, Warmup, Scale, new FrequencySplit(side, side, run.Hidden, Cutoff), run);
    }

    /// <inheritdoc/>
    public long Bytes(CacheRunInfo run) => (long)(MaxOrder + 4) * run.FeatureLength * sizeof(float);

    /// <summary>One order less down to 0 (reuse of the whole residual), then nothing (<see cref="CacheBudget"/>).</summary>
    public ICacheOptions? Coarser() => MaxOrder > 0 ? this with { MaxOrder = MaxOrder - 1 } : null;
}

/// <summary>
/// The FreqCa policy of one run: the stack input of a full step, the CRF, and one stack of O+2 tensors (B, T, D):
/// slot 0 the low band of the last full step's CRF, slots 1 … O+1 the high band's factors d_0 … d_O
/// (<see cref="TaylorForecaster.UpdateFactors"/>), all allocated at build. A cached step is one
/// <see cref="WeightedSum.Combine"/> (weights 1 for the low band, <see cref="HermiteForecaster"/>'s for the factors)
/// and one add; the split runs once per full step.
/// </summary>
public sealed class FreqCa : ICachePolicy
{
    private readonly bool[] _full;
    private readonly int _factors;          // O + 1
    private readonly int _firstDifference;  // warmup − 1, as TaylorSeer
    private readonly double _sigma;
    private readonly FrequencySplit _split;
    private readonly int _length, _depth;
    private readonly float[] _input;        // (B, T, D) stack input of this full step; the split's scratch afterwards
    private readonly float[] _crf;          // (B, T, D) CRF, then its high band; on a cached step the stand-in residual
    private readonly float[] _stack;        // (O+2, B, T, D): low(CRF_last), d_0 … d_O of the high band
    private int _count;                     // high-band factors held (0 = nothing yet this run)
    private int _fullN;                     // ordinal of the last full step
    private int _n = -1;
    private bool _kept;                     // the stack runs this step (its input was kept)

    internal FreqCa(bool[] full, int factors, int warmup, double sigma, FrequencySplit split, CacheRunInfo run)
    {
        _full = full;
        _factors = factors;
        _firstDifference = warmup - 1;
        _sigma = sigma;
        _split = split;
        _length = run.FeatureLength;
        _depth = run.Depth;
        _input = new float[_length];
        _crf = new float[_length];
        _stack = new float[checked((factors + 1) * _length)];
        CacheBytes = (long)(factors + 3) * _length * sizeof(float);
    }

    /// <summary>
    /// Bytes of the three (B, T, D) buffers and the O+2 stored tensors: <c>(O + 4)·B·T·D·4</c>, independent of the depth
    /// (the two small projection matrices, (h² + w²)·4 bytes, are not counted).
    /// </summary>
    public long CacheBytes { get; }

    /// <inheritdoc/>
    public void BeginStep(int n, float timestep)
    {
        PolicyChecks.NextStep("FreqCa", n, _n, _full.Length);
        if (n == 0)
        {
            _count = 0;    // a new image
        }

        _n = n;
        _kept = false;
    }

    /// <inheritdoc/>
    public int SkipBlocks(int from, Span<float> x)
    {
        PolicyChecks.Started(_n);
        if (from != 0)
        {
            return from;
        }

        if (x.Length != _length)
        {
            throw new ArgumentException($"stack input has {x.Length} floats; this run's (B, T, D) has {_length}", nameof(x));
        }

        if (!_full[_n] && _count > 0)
        {
            Span<double> weights = stackalloc double[_count + 1];
            weights[0] = 1.0;                                                 // low band: reused
            HermiteForecaster.Weights(_n - _fullN, _sigma, weights[1..]);     // high band: forecast
            WeightedSum.Combine(_stack, _length, weights, _crf);
            Residuals.Add(x, _crf);                                           // x ← x + low + Ĥ
            return _depth;
        }

        x.CopyTo(_input);
        _kept = true;
        return 0;
    }

    /// <inheritdoc/>
    public void RecordBlock(int block, ReadOnlySpan<float> output)
    {
        if (block != _depth - 1 || !_kept)
        {
            return;
        }

        Span<float> low = _stack.AsSpan(0, _length);
        Residuals.Difference(output, _input, _crf);                          // CRF = stack output − stack input
        _split.Low(_crf, low, _input);                                        // slot 0 ← low(CRF); the input is spent
        Residuals.Difference(_crf, low, _crf);                                // high(CRF) = CRF − low(CRF)
        int held = _n >= _firstDifference ? _count : 0;
        _count = TaylorForecaster.UpdateFactors(_stack.AsSpan(_length), _length, held, _factors, _crf, _n - _fullN);
        _fullN = _n;
    }
}
