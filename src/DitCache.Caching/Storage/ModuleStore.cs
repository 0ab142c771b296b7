using System;

namespace DitCache.Caching;

/// <summary>
/// The reuse store of FORA and SmoothCache: one (B, T, D) module output per (block, site), the last one computed,
/// allocated once. A site reads back only after it has been written in this run.
/// </summary>
internal sealed class ModuleStore
{
    private readonly float[][] _store;     // [site] (B, T, D)
    private readonly bool[] _has;          // [site] written since Clear
    private readonly int _length;

    public ModuleStore(CacheRunInfo run)
    {
        _length = run.FeatureLength;
        _store = new float[FeatureSite.PerBlock * run.Depth][];
        for (int k = 0; k < _store.Length; k++)
        {
            _store[k] = new float[_length];
        }

        _has = new bool[_store.Length];
    }

    /// <summary>Bytes held.</summary>
    public long Bytes => (long)_store.Length * _length * sizeof(float);

    /// <summary>Throws for a site outside the run or a call before the first step (as every access does).</summary>
    public void Check(FeatureSite site, int step) => PolicyChecks.SiteIndex(site, step, _store.Length);

    /// <summary>Forgets every stored output (a new run).</summary>
    public void Clear() => Array.Clear(_has);

    /// <summary>Copies the stored output of <paramref name="site"/> into <paramref name="output"/>; false when none is stored.</summary>
    public bool TryLoad(FeatureSite site, int step, Span<float> output)
    {
        int k = PolicyChecks.SiteIndex(site, step, _store.Length);
        if (!_has[k])
        {
            return false;
        }

        _store[k].CopyTo(output);
        return true;
    }

    /// <summary>Stores the computed output of <paramref name="site"/>.</summary>
    public void Save(FeatureSite site, int step, ReadOnlySpan<float> output)
    {
        int k = PolicyChecks.SiteIndex(site, step, _store.Length);
        if (output.Length != _length)
        {
            throw new ArgumentException($"feature of {site} has {output.Length} floats; this run's (B, T, D) has {_length}", nameof(output));
        }

        output.CopyTo(_store[k]);
        _has[k] = true;
    }
}
