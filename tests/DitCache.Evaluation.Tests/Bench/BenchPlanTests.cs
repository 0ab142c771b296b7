using System.Collections.Generic;
using System.Linq;
using DitCache.Evaluation.Bench;
using DitCache.Tensors;
using Xunit;

namespace DitCache.Evaluation.Tests.Bench;

/// <summary>The configuration-line grammar, the references it adds and the family/label names charts use.</summary>
public class BenchPlanTests
{
    [Fact]
    public void EveryGuidanceScaleGetsItsReferenceFirst()
    {
        List<BenchConfig> plan = BenchPlan.Parse(["foca:n=5", "# a comment", "", "none steps=20", "taylorseer:n=5 cfg=1.5", "foca:n=5"], "test", 50, 4f);
        Assert.Equal(["none|steps=50|cfg=4", "none|steps=50|cfg=1.5", "foca:n=5|steps=50|cfg=4", "none|steps=20|cfg=4", "taylorseer:n=5|steps=50|cfg=1.5"],
            plan.Select(c => c.Key));
        Assert.True(plan[0].IsReference);
        Assert.True(plan[1].IsReference);
        Assert.False(plan[3].IsReference);
        Assert.Equal("full 50 steps", plan[0].Label);
        Assert.Equal("DDIM 20 steps", plan[3].Label);
        Assert.Equal("TaylorSeer cfg=1.5", plan[4].Family);
    }

    [Theory]
    [InlineData("foca:n=5", "FoCa", "FoCa n=5")]
    [InlineData("foca:n=3,corrector=off", "FoCa corrector=off", "FoCa corrector=off n=3")]
    [InlineData("foca:n=5,reading=cachedit", "FoCa reading=cachedit", "FoCa reading=cachedit n=5")]
    [InlineData("spectrum:n=2,alpha=3", "Spectrum", "Spectrum n=2,alpha=3")]
    [InlineData("taylorseer:n=5,warmup=4", "TaylorSeer warmup=4", "TaylorSeer warmup=4 n=5")]
    [InlineData("fora:n=3", "FORA", "FORA n=3")]
    [InlineData("fbcache:t=0.2", "FBCache", "FBCache t=0.2")]
    [InlineData("dbcache:f=4,b=0,t=0.1", "DBCache f=4,b=0", "DBCache f=4,b=0 t=0.1")]
    [InlineData("delta-dit:n=3,blocks=8", "Δ-DiT blocks=8", "Δ-DiT blocks=8 n=3")]
    [InlineData("toca:n=3,ratio=0.07", "ToCa", "ToCa n=3,ratio=0.07")]
    [InlineData("duca:n=3,ratio=0.05,sched=ddpm250", "DuCa sched=ddpm250", "DuCa sched=ddpm250 n=3,ratio=0.05")]
    public void FamiliesGroupBySpeedKnobs(string spec, string family, string label)
    {
        BenchConfig c = BenchPlan.Parse([spec], "test", 50, 4f)[1];
        Assert.Equal(family, c.Family);
        Assert.Equal(label, c.Label);
    }

    [Theory]
    [InlineData("foca:n=5 steps=0", "test line 1", "steps=0")]
    [InlineData("foca:n=5 cfg=0.5", "test line 1", "cfg=0.5")]
    [InlineData("foca:n=5 speed=3", "test line 1", "speed=3")]
    [InlineData("magic:n=5", "test line 1", "magic")]
    [InlineData("foca:n=0", "test line 1", "foca")]
    public void BadLinesNameTheSourceLineAndToken(string line, string where, string token)
    {
        DitCacheException e = Assert.Throws<DitCacheException>(() => BenchPlan.Parse([line], "test", 50, 4f));
        Assert.Equal(2, e.ExitCode);
        Assert.Contains(where, e.Message);
        Assert.Contains(token, e.Message);
    }

    [Fact]
    public void EmptyPlansAreRefused()
    {
        DitCacheException e = Assert.Throws<DitCacheException>(() => BenchPlan.Parse(["# nothing"], "plan.txt", 50, 4f));
        Assert.Contains("plan.txt", e.Message);
    }

    [Fact]
    public void PresetsParseAndCompareAtEqualBudgets()
    {
        List<BenchConfig> full = BenchPlan.Parse(BenchPlan.FullLines, "full", 50, 4f);
        List<BenchConfig> quick = BenchPlan.Parse(BenchPlan.QuickLines, "quick", 50, 4f);
        Assert.Equal(2, full.Count(c => c.IsReference));                 // cfg 4 and the cfg 1.5 sensitivity
        Assert.Single(quick, c => c.IsReference);
        // DDIM baselines at the full-step budgets of n = 3 (18) and n = 5 (11) are in both presets.
        Assert.Contains(quick, c => c.Key == "none|steps=18|cfg=4");
        Assert.Contains(quick, c => c.Key == "none|steps=11|cfg=4");
        Assert.Equal(full.Count, full.Select(c => c.Key).Distinct().Count());
    }
}
