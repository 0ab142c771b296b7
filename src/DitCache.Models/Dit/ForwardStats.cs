using System;
using DitCache.Caching;

namespace DitCache.Models;

/// <summary>
/// What one forward did, counted while it runs: FLOPs in the paper convention (<see cref="DitFlops"/>), modules
/// computed, forecast or recomputed on some tokens, blocks skipped, the outcome at every cache site, with shadow
/// diagnostics the error of every stand-in and, when recording tokens, the tokens every partial MLP recomputed. Cleared at the start of each forward; read through the <c>Last…</c>
/// members of <see cref="DitRunState"/>. Nothing here allocates after construction.
/// </summary>
internal sealed class ForwardStats
{
    public ForwardStats(int depth)
    {
        _depth = depth;
        Sites = new SiteOutcome[FeatureSite.PerBlock * depth];
        ShadowErrors = new double[FeatureSite.PerBlock * depth];
    }

    private readonly int _depth;
    private int _rowTokens;                                                          // B·T of one block's token record

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

    /// <summary>Token recording only: per block, the tokens per batch row its MLP recomputed; −1 where it was not partial (depth).</summary>
    public int[]? TokenCounts { get; private set; }

    /// <summary>
    /// Token recording only (depth, B, T): per block, the first B·k entries hold the k tokens of each batch row, as
    /// the cache picked them; the rest is left over from earlier forwards.
    /// </summary>
    public int[]? Tokens { get; private set; }

    /// <summary>Allocates the token record for <paramref name="batch"/> rows of <paramref name="tokens"/> tokens, or drops it.</summary>
    public void RecordTokens(bool on, int batch, int tokens)
    {
        _rowTokens = batch * tokens;
        TokenCounts = on ? new int[_depth] : null;
        Tokens = on ? new int[_depth * _rowTokens] : null;
        TokenCounts?.AsSpan().Fill(-1);
    }

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
        TokenCounts?.AsSpan().Fill(-1);
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

    /// <summary>The MLP of <paramref name="site"/> ran on <paramref name="k"/> tokens per batch row, <paramref name="picked"/> (B, k).</summary>
    public void Partial(FeatureSite site, double flops, ReadOnlySpan<int> picked, int k)
    {
        Sites[site.Index] = SiteOutcome.Partial;
        ModulesPartial++;
        Flops += flops;
        if (TokenCounts is not null && Tokens is not null)
        {
            TokenCounts[site.Block] = k;
            picked.CopyTo(Tokens.AsSpan(site.Block * _rowTokens, _rowTokens));
        }
    }

    /// <summary>Blocks <paramref name="from"/> … <paramref name="to"/> − 1 were stood in for as a range.</summary>
    public void Skipped(int from, int to)
    {
        BlocksSkipped += to - from;
        Sites.AsSpan(FeatureSite.PerBlock * from, FeatureSite.PerBlock * (to - from)).Clear(); // SiteOutcome.Skipped
    }
}
