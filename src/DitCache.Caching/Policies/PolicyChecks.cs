using System;

namespace DitCache.Caching;

/// <summary>Argument checks the per-module policies share.</summary>
internal static class PolicyChecks
{
    /// <summary>
    /// The history slot of <paramref name="site"/> in a policy holding <paramref name="sites"/> slots (two per
    /// block); <paramref name="step"/> is the current sampling ordinal, negative before the first BeginStep.
    /// </summary>
    public static int SiteIndex(FeatureSite site, int step, int sites)
    {
        if (step < 0)
        {
            throw new InvalidOperationException("BeginStep must be called before the model runs");
        }

        int k = site.Index;
        if ((uint)k >= (uint)sites)
        {
            throw new ArgumentOutOfRangeException(nameof(site), site, $"this run has {sites / 2} blocks");
        }

        return k;
    }
}
