namespace DitCache.Caching;

/// <summary>Where in a DiT block a cached feature lives.</summary>
public enum Site
{
    /// <summary>Attention output after <c>attn.proj</c>, before the adaLN gate: (B, T, D).</summary>
    Attn,

    /// <summary>MLP output after <c>mlp.fc2</c>, before the adaLN gate: (B, T, D).</summary>
    Mlp,
}

/// <summary>A module-level cache key: block index (0-based) and site within the block.</summary>
/// <param name="Block">Block index, 0 = first block.</param>
/// <param name="Site">The module inside the block.</param>
public readonly record struct FeatureSite(int Block, Site Site)
{
    /// <summary>Module sites per DiT block: the attention and the MLP (<see cref="Caching.Site"/>).</summary>
    public const int PerBlock = 2;

    /// <summary>Dense index 0 .. PerBlock·depth−1 for per-site arrays: block·PerBlock + site.</summary>
    public int Index => (Block * PerBlock) + (int)Site;
}
