using System;
using DitCache.Caching;

namespace DitCache.Models;

/// <summary>
/// What one forward did, counted while it runs: FLOPs in the paper convention (<see cref="DitFlops"/>), modules
/// computed, forecast or recomputed on some tokens, blocks skipped, the outcome at every cache site and, with shadow
/// diagnostics, the error of every stand-in. Cleared at the start of each forward; read through the <c>Last…</c>
/// members of <see cref="DitRunState"/>. Nothing here allocates after construction.
/// </summary>
internal sealed class ForwardStats
{
    public ForwardStats(int depth)
    {
        Sites = new SiteOutcome[FeatureSite.PerBlock * depth];
        ShadowErrors = new double[FeatureSite.PerBlock * depth];
    }

    /// <summary>FLOPs of the modules that ran (and of every block's adaLN projection).</summary>
    public double Flops { get; set; }

    public int ModulesComputed { get; set; }

    public int ModulesForecast { get; private set; }

    public int ModulesPartial { get; private set; }

    public int BlocksSkipped { get; private set; }

    /// <summary>Per site, indexed <see cref="FeatureSite.Index"/> (2·depth).</summary>
    public SiteOutcome[] Sites { get; }

    /// <summary>Shadow only: per site, ‖forecast − true‖₂ / ‖true‖₂; NaN where nothing was forecast (2·depth).</summary>
    public double[] ShadowErrors { get; }

    /// <summary>Shadow only: the same error for the output of the last range of skipped blocks; NaN if none.</summary>
    public double ShadowBlocksError { get; set; } = double.NaN;

    public void Clear()
    {
        Flops = 0;
        ModulesComputed = 0;
        ModulesForecast = 0;
        ModulesPartial = 0;
        BlocksSkipped = 0;
        Sites.AsSpan().Clear();                                                     // SiteOutcome.Skipped
        ShadowErrors.AsSpan().Fill(double.NaN);
        ShadowBlocksError = double.NaN;
    }

    public void Computed(FeatureSite site, double flops)
    {
        Sites[site.Index] = SiteOutcome.Computed;
        ModulesComputed++;
        Flops += flops;
    }

    public void Forecast(FeatureSite site)
    {
        Sites[site.Index] = SiteOutcome.Forecast;
        ModulesForecast++;
    }

    public void Partial(FeatureSite site, double flops)
    {
        Sites[site.Index] = SiteOutcome.Partial;
        ModulesPartial++;
        Flops += flops;
    }

    /// <summary>Blocks <paramref name="from"/> … <paramref name="to"/> − 1 were stood in for as a range.</summary>
    public void Skipped(int from, int to)
    {
        BlocksSkipped += to - from;
        Sites.AsSpan(FeatureSite.PerBlock * from, FeatureSite.PerBlock * (to - from)).Clear(); // SiteOutcome.Skipped
    }
}
