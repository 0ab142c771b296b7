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
}
