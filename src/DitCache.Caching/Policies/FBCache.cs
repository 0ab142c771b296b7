using DitCache.Tensors;

namespace DitCache.Caching;

/// <summary>
/// First-Block-Cache (chengzeyi/ParaAttention <c>first_block_cache</c>; docs/methods.md §5.6): block 0 always
/// runs, and when its residual changed by less than t (relative L1 against the last computed step) the remaining
/// blocks are skipped, <c>h ← h_1 + R</c>. It is DBCache with F = 1 and B = 0 (as cache-dit's F1B0), with the same
/// warm-up and caps (see <see cref="DBCacheOptions"/>). Spec: <c>fbcache:t=0.08</c>.
/// </summary>
/// <param name="Threshold">t, knob <c>t</c>: residual_diff_threshold (default 0.08, the README's FLUX setting).</param>
/// <param name="Warmup">Knob <c>warmup</c>: steps that always compute (default 8, cache-dit's max_warmup_steps).</param>
/// <param name="MaxCached">Knob <c>maxcached</c>: max cached steps per run, −1 unlimited (default).</param>
/// <param name="MaxRun">Knob <c>maxrun</c>: max continuous cached steps, −1 unlimited (default).</param>
public sealed record FBCacheOptions(double Threshold = 0.08, int Warmup = 8, int MaxCached = -1, int MaxRun = -1) : ICacheOptions
{
    /// <inheritdoc/>
    public string Name => "fbcache";

    /// <inheritdoc/>
    public string Spec => $"fbcache:t={Threshold.ToString(System.Globalization.CultureInfo.InvariantCulture)}" + DBCacheOptions.GuardSpec(Warmup, MaxCached, MaxRun);

    /// <summary>Parses <c>fbcache:t=T[,warmup=W][,maxcached=M][,maxrun=R]</c>; unknown knobs are errors.</summary>
    public static FBCacheOptions FromSpec(CacheSpec spec)
    {
        var options = new FBCacheOptions(spec.GetDouble("t", 0.08), spec.GetInt("warmup", 8), spec.GetInt("maxcached", -1),
            spec.GetInt("maxrun", -1));
        spec.RejectUnknownKeys();
        return options;
    }

    /// <inheritdoc/>
    public void Validate() => DBCacheOptions.Check("fbcache", 0, Threshold, Warmup, MaxCached, MaxRun);

    /// <inheritdoc/>
    public ICachePolicy Build(CacheRunInfo run)
    {
        Validate();
        run.Validate();
        return new DBCache(1, 0, Threshold, Warmup, MaxCached, MaxRun, run, "fbcache");
    }
}
