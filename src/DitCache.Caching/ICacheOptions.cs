namespace DitCache.Caching;

/// <summary>
/// The options record of one accelerator: paper-cited defaults, validation, and a factory that builds a fresh
/// policy for each run. One implementation per paper, one file each (CONTRIBUTING.md, "Layout").
/// </summary>
public interface ICacheOptions
{
    /// <summary>The name used in <c>--cache</c> specs, e.g. <c>none</c> or <c>foca</c>.</summary>
    string Name { get; }

    /// <summary>The spec that reproduces these options, e.g. <c>foca:n=5</c>.</summary>
    string Spec { get; }

    /// <summary>Throws <see cref="Tensors.DitCacheException"/> naming the bad knob and its allowed range.</summary>
    void Validate();

    /// <summary>A new policy for one run; holds no state shared with other runs.</summary>
    ICachePolicy Build(CacheRunInfo run);

    /// <summary>
    /// The feature storage a policy built for <paramref name="run"/> holds (its <see cref="ICachePolicy.CacheBytes"/>).
    /// Methods whose history grows with the depth compute it without allocating; the default builds a policy.
    /// </summary>
    long Bytes(CacheRunInfo run) => Build(run).CacheBytes;

    /// <summary>
    /// The next coarser configuration of this method, holding less history (<see cref="CacheBudget"/>: a lower order,
    /// then one whole-stack residual), or null when there is none.
    /// </summary>
    ICacheOptions? Coarser() => null;
}
