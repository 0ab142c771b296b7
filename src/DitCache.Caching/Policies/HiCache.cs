using System;
using DitCache.Tensors;

namespace DitCache.Caching;

/// <summary>
/// HiCache: Training-free Acceleration of Diffusion Models via Hermite Polynomial-based Feature Caching (Feng et al.,
/// ICLR 2026, arXiv 2508.16984; code: github.com/yiming-l21/CFGCache, <c>taylor_utils</c> <c>taylor_formula</c> with
/// <c>UseHicache</c>; docs/methods.md §5.9). TaylorSeer's schedule and factors (the feature and its divided
/// differences per block and module), forecast with scaled physicists' Hermite polynomials in place of the powers
/// (<see cref="HermiteForecaster"/>). Spec: <c>hicache:n=4,o=2,sigma=0.5</c> (knobs n, o, warmup, sigma).
/// </summary>
/// <param name="Interval">N (knob <c>n</c>, default 4, TaylorSeer-DiT's): after the warm-up a step is full once N−1 forecast steps have run.</param>
/// <param name="MaxOrder">O (knob <c>o</c>, default 2 as HiCache's FLUX scripts' <c>MAX_ORDER</c>): the highest difference order kept.</param>
/// <param name="Warmup">K (knob <c>warmup</c>, default 2, TaylorSeer-DiT's <c>first_enhance</c>): steps 0 … K−1 are full.</param>
/// <param name="Scale">σ (knob <c>sigma</c>, default 0.5, the code's <c>hicache_scale_factor</c> default): the dual scale.</param>
public sealed record HiCacheOptions(int Interval = 4, int MaxOrder = 2, int Warmup = 2, double Scale = 0.5) : ICacheOptions
{
    /// <inheritdoc/>
    public string Name => "hicache";

    /// <inheritdoc/>
    public string Spec => FormattableString.Invariant($"hicache:n={Interval},o={MaxOrder},warmup={Warmup},sigma={Scale}");

    /// <summary>Parses <c>hicache:n=N,o=O,warmup=K,sigma=σ</c>; unknown knobs are errors.</summary>
    public static HiCacheOptions FromSpec(CacheSpec spec)
    {
        var options = new HiCacheOptions(spec.GetInt("n", 4), spec.GetInt("o", 2), spec.GetInt("warmup", 2), spec.GetDouble("sigma", 0.5));
        spec.RejectUnknownKeys();
        return options;
    }

    /// <inheritdoc/>
    public void Validate()
    {
        if (Interval < 1)
        {
            throw new DitCacheException($"--cache hicache: n={Interval} is not a valid interval; n must be at least 1 (1 computes every step)", exitCode: 2);
        }

        if (MaxOrder < 0 || MaxOrder > TaylorSeerOptions.MaxSupportedOrder)
        {
            throw new DitCacheException($"--cache hicache: o={MaxOrder} is outside [0, {TaylorSeerOptions.MaxSupportedOrder}]; o is the highest difference order (0 = reuse, HiCache's scripts use 2)", exitCode: 2);
        }

        if (Warmup < 1)
        {
            throw new DitCacheException($"--cache hicache: warmup={Warmup} must be at least 1 (step 0 is always computed)", exitCode: 2);
        }

        if (!(Scale > 0) || !double.IsFinite(Scale) || Scale > 4)
        {
            throw new DitCacheException(FormattableString.Invariant($"--cache hicache: sigma={Scale} is outside (0, 4]; sigma scales the Hermite argument and damps order k by sigma^k (the code uses 0.5 to 0.75)"), exitCode: 2);
        }
    }

    /// <summary>Which sampling ordinals compute every block: TaylorSeer's schedule (<see cref="TaylorSeerOptions.Schedule"/>).</summary>
    public bool[] FullSteps(int steps) => TaylorSeerOptions.Schedule(steps, Interval, Warmup);

    /// <inheritdoc/>
    public ICachePolicy Build(CacheRunInfo run)
    {
        Validate();
        run.Validate();
        return new TaylorSeer(FullSteps(run.Steps), MaxOrder + 1, Warmup, run, hermiteScale: Scale);
    }

    /// <inheritdoc/>
    public long Bytes(CacheRunInfo run) => (long)FeatureSite.PerBlock * run.Depth * (MaxOrder + 1) * run.FeatureLength * sizeof(float);

    /// <summary>One order less down to 1, then FreqCa (HiCache's basis on the high band) at the same interval and σ.</summary>
    public ICacheOptions? Coarser() => MaxOrder > 1 ? this with { MaxOrder = MaxOrder - 1 } : new FreqCaOptions(Interval, Warmup: Warmup, Scale: Scale);
}
