using System;

namespace DitCache.Caching;

/// <summary>Options of <c>none</c>: the plain DiT, every block computed at every step. Takes no knobs.</summary>
public sealed record NoCacheOptions : ICacheOptions
{
    /// <inheritdoc/>
    public string Name => "none";

    /// <inheritdoc/>
    public string Spec => "none";

    /// <summary>Parses <c>none</c>; any knob is an error.</summary>
    public static NoCacheOptions FromSpec(CacheSpec spec)
    {
        spec.RejectUnknownKeys();
        return new NoCacheOptions();
    }

    /// <inheritdoc/>
    public void Validate()
    {
    }

    /// <inheritdoc/>
    public ICachePolicy Build(CacheRunInfo run) => NoCache.Instance;
}

/// <summary>The policy that never caches; stateless, so one instance serves every run.</summary>
public sealed class NoCache : ICachePolicy
{
    /// <summary>The single instance.</summary>
    public static readonly NoCache Instance = new();

    private NoCache()
    {
    }

    /// <inheritdoc/>
    public long CacheBytes => 0;

    /// <inheritdoc/>
    public void BeginStep(int n, float timestep)
    {
    }
}
