using System;

namespace DitCache.Caching;

/// <summary>The argument and call-order checks every policy shares.</summary>
internal static class PolicyChecks
{
    /// <summary>
    /// The step-order guard of <see cref="ICachePolicy.BeginStep"/>: a policy <paramref name="policy"/> built for
    /// <paramref name="steps"/> steps and now at step <paramref name="current"/> (−1 before the first) accepts step
    /// <paramref name="n"/> only as 0 (a new image) or <paramref name="current"/> + 1.
    /// </summary>
    public static void NextStep(string policy, int n, int current, int steps)
    {
        if (n < 0 || n >= steps || (n != 0 && n != current + 1))
        {
            throw new InvalidOperationException($"{policy} was built for {steps} steps and is at step {current}; step {n} cannot follow (steps run 0, 1, 2, …)");
        }
    }

    /// <summary>Throws when the model runs before the first <see cref="ICachePolicy.BeginStep"/> (<paramref name="step"/> &lt; 0).</summary>
    public static void Started(int step)
    {
        if (step < 0)
        {
            throw new InvalidOperationException("BeginStep must be called before the model runs");
        }
    }

    /// <summary>
    /// The history slot of <paramref name="site"/> in a policy holding <paramref name="sites"/> slots
    /// (<see cref="FeatureSite.PerBlock"/> per block); <paramref name="step"/> is the current sampling ordinal,
    /// negative before the first BeginStep.
    /// </summary>
    public static int SiteIndex(FeatureSite site, int step, int sites)
    {
        Started(step);
        int k = site.Index;
        if ((uint)k >= (uint)sites)
        {
            throw new ArgumentOutOfRangeException(nameof(site), site, $"this run has {sites / FeatureSite.PerBlock} blocks");
        }

        return k;
    }
}
