using System;
using System.Collections.Generic;
using System.Linq;
using DitCache.Caching;
using DitCache.Tensors;
using Xunit;

namespace DitCache.Models.Tests;

/// <summary>
/// Per-site telemetry and shadow mode (<see cref="DitRunState.Shadow"/>): the forward records which sites were
/// computed or forecast, and in shadow mode measures each stand-in against the true module output without changing
/// the result. The expected errors come from analytic stand-ins (zeros give exactly 1, a 1% scaled copy of the true
/// feature gives exactly 0.01) or from tapped tensors of a plain forward.
/// </summary>
public class ShadowTests
{
    private static DitModel NewModel() => new(DitWeights.FromFile(Golden.Weights), new ManagedGemm(1), 1);

    private static float[] Forward(DitModel model, DitRunState s, ICachePolicy policy)
    {
        var output = new float[Golden.Get("out").Length];
        model.Forward(Golden.Get("x").Data, Golden.Get("t").Data, Golden.Labels("y"), s, policy, output);
        return output;
    }

    private static double RelativeL2(float[] a, float[] b)
    {
        double num = 0, den = 0;
        for (int i = 0; i < a.Length; i++)
        {
            num += (a[i] - (double)b[i]) * (a[i] - (double)b[i]);
            den += (double)b[i] * b[i];
        }

        return Math.Sqrt(num / den);
    }

    [Fact]
    public void SitesRecordWhatEachModuleDid()
    {
        DitModel model = NewModel();
        DitRunState s = model.CreateState(2);
        Forward(model, s, NoCache.Instance);
        Assert.All(s.LastSites.ToArray(), o => Assert.Equal(SiteOutcome.Computed, o));
        Assert.All(s.LastShadowErrors.ToArray(), e => Assert.True(double.IsNaN(e)));

        var mlpOnly = new StandIn(site => site.Site == Site.Mlp, (_, dst) => dst.Clear());
        Forward(model, s, mlpOnly);
        Assert.Equal([SiteOutcome.Computed, SiteOutcome.Forecast, SiteOutcome.Computed, SiteOutcome.Forecast], s.LastSites.ToArray());
        Assert.Equal(2, s.LastModulesForecast);

        Forward(model, s, new StackStandIn(x => { }, 0, 2));
        Assert.All(s.LastSites.ToArray(), o => Assert.Equal(SiteOutcome.Skipped, o));
    }

    [Fact]
    public void ZeroStandInsHaveRelativeErrorOneAndShadowChangesNothing()
    {
        DitModel model = NewModel();
        var zeros = new StandIn(site => site.Site == Site.Mlp || site.Block == 1, (_, dst) => dst.Clear());
        DitRunState plain = model.CreateState(2);
        float[] expected = Forward(model, plain, zeros);

        DitRunState s = model.CreateState(2);
        s.Shadow = true;
        float[] actual = Forward(model, s, zeros);
        Assert.Equal(expected, actual);                                            // the stand-in still feeds the model
        Assert.Equal(plain.LastFlops, s.LastFlops);
        Assert.Equal(plain.LastModulesComputed, s.LastModulesComputed);
        double[] errors = s.LastShadowErrors.ToArray();
        Assert.True(double.IsNaN(errors[0]));                                      // block 0 attention computed
        Assert.Equal(1.0, errors[1], 12);
        Assert.Equal(1.0, errors[2], 12);
        Assert.Equal(1.0, errors[3], 12);
        Assert.True(double.IsNaN(s.LastShadowBlocksError));
    }

    [Fact]
    public void AScaledCopyOfTheTrueFeatureHasThatRelativeError()
    {
        DitModel model = NewModel();
        var truth = new Dictionary<string, float[]>();
        model.Tap = (stage, values) => truth[stage] = values.ToArray();
        Forward(model, model.CreateState(2), NoCache.Instance);
        model.Tap = null;

        // Only the first site is forecast, so its inputs equal the plain forward's and the true feature is known.
        var scaled = new StandIn(site => site.Index == 0, (_, dst) =>
        {
            float[] t = truth["block0.attn"];
            for (int i = 0; i < dst.Length; i++)
            {
                dst[i] = 1.01f * t[i];
            }
        });
        DitRunState s = model.CreateState(2);
        s.Shadow = true;
        Forward(model, s, scaled);
        Assert.Equal(0.01, s.LastShadowErrors[0], 6);
        Assert.All(s.LastShadowErrors[1..].ToArray(), e => Assert.True(double.IsNaN(e)));
    }

    [Fact]
    public void ASkippedStackIsMeasuredAgainstTheTrueStack()
    {
        DitModel model = NewModel();
        var truth = new Dictionary<string, float[]>();
        model.Tap = (stage, values) => truth[stage] = values.ToArray();
        float[] full = Forward(model, model.CreateState(2), NoCache.Instance);
        model.Tap = null;
        double expected = RelativeL2(truth["x_embed"], truth[$"block{model.Config.Depth - 1}"]);

        var identity = new StackStandIn(x => { }, 0, 2);                                 // "forecast": the stack input unchanged
        DitRunState plain = model.CreateState(2);
        float[] cached = Forward(model, plain, identity);
        DitRunState s = model.CreateState(2);
        s.Shadow = true;
        float[] shadowed = Forward(model, s, identity);
        Assert.Equal(cached, shadowed);
        Assert.NotEqual(full, shadowed);
        Assert.Equal(expected, s.LastShadowBlocksError, 6);
        Assert.Equal(0, s.LastFlops);
        Assert.Equal(0, s.LastModulesComputed);
        Assert.All(s.LastSites.ToArray(), o => Assert.Equal(SiteOutcome.Skipped, o));
    }

    [Fact]
    public void ASkippedRangeIsMeasuredAgainstTheTrueBlocksOfThatRange()
    {
        DitModel model = NewModel();
        Assert.Equal(2, model.Config.Depth);
        var truth = new Dictionary<string, float[]>();
        model.Tap = (stage, values) => truth[stage] = values.ToArray();
        Forward(model, model.CreateState(2), NoCache.Instance);
        model.Tap = null;
        double expected = RelativeL2(truth["block0"], truth["block1"]);          // block 1 stood in for by its input

        var identity = new StackStandIn(x => { }, 1, 2);
        DitRunState s = model.CreateState(2);
        s.Shadow = true;
        Forward(model, s, identity);
        Assert.Equal([SiteOutcome.Computed, SiteOutcome.Computed, SiteOutcome.Skipped, SiteOutcome.Skipped], s.LastSites.ToArray());
        Assert.Equal(1, s.LastBlocksSkippedCount);
        Assert.False(s.LastBlocksSkipped);
        Assert.False(s.LastFullyComputed);
        Assert.Equal(expected, s.LastShadowBlocksError, 6);
        Assert.Equal(2, s.LastModulesComputed);
    }

    /// <summary>Forecasts the sites <c>forecast</c> selects with <c>fill</c>; computes the rest.</summary>
    private sealed class StandIn(Func<FeatureSite, bool> forecast, Action<FeatureSite, Span<float>> fill) : ICachePolicy
    {
        public long CacheBytes => 0;

        public void BeginStep(int n, float timestep)
        {
        }

        public bool TryForecast(FeatureSite site, Span<float> output)
        {
            if (!forecast(site))
            {
                return false;
            }

            fill(site, output);
            return true;
        }

        public void Record(FeatureSite site, ReadOnlySpan<float> output)
        {
        }
    }

    /// <summary>Skips the block stack, replacing it by <c>edit</c> applied to the stack input.</summary>
    private sealed class StackStandIn(Action<Span<float>> edit, int skipFrom, int skipTo) : ICachePolicy
    {
        public long CacheBytes => 0;

        public void BeginStep(int n, float timestep)
        {
        }

        public int SkipBlocks(int from, Span<float> x)
        {
            if (from != skipFrom)
            {
                return from;
            }

            edit(x);
            return skipTo;
        }

        public bool TryForecast(FeatureSite site, Span<float> output) => false;

        public void Record(FeatureSite site, ReadOnlySpan<float> output)
        {
        }
    }
}
