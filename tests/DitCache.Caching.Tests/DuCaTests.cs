using System.Linq;
using DitCache.Tensors;
using Xunit;

namespace DitCache.Caching.Tests;

/// <summary>DuCa (docs/methods.md §5.3) against hand-derived values: the three-way schedule and the aggressive step's stand-in.</summary>
public class DuCaTests
{
    // DDIM-50, threshold 3, n = 0 first. The cycles are those of ToCa's string (docs/methods.md §5.2); inside a cycle C a
    // non-full step is ToCa (T) when i mod C is odd and aggressive (A) when even:
    //   i = 49 F (C = 5): 48 T (3), 47 A (2), 46 T (1), 45 F (C 4), 44 F (C 4), 43 T, 42 A, 41 T, 40 F, 39 T, 38 A, 37 T,
    //   36 F, 35 T, 34 A, 33 T, 32 F (C 3), 31 T, 30 F, 29 A, 28 T, 27 F, 26 A, 25 T, 24 F, 23 A, 22 T, 21 F, 20 A, 19 T,
    //   18 F (C 2 from here: forced in [10, 20), then round(3/1.27 …) = 2): T and F alternate down to i = 0.
    private const string Ddim50Threshold3 = "FTATFFTATFTATFTATFTFATFATFATFATF" + "TFTFTFTFTFTFTFTFTF";

    [Fact]
    public void ScheduleAlternatesToCaAndAggressiveSteps()
    {
        TokenStep[] types = new DuCaOptions(3, 0.05).StepTypes(50);
        Assert.Equal(50, Ddim50Threshold3.Length);
        Assert.Equal(Ddim50Threshold3, ToCaTests.Letters(types));
        Assert.Equal(20, types.Count(t => t == TokenStep.Full));
        Assert.Equal(8, types.Count(t => t == TokenStep.Aggressive));
        Assert.Equal(new ToCaOptions(3).FullSteps(50), new DuCaOptions(3).FullSteps(50));
    }

    [Fact]
    public void AggressiveStepsReuseTheLastBlockOutputOfThePreviousCall()
    {
        const int depth = 2, length = 16 * 3;
        var run = new CacheRunInfo(50, Enumerable.Range(0, 50).Select(n => 999f - (n * 20f)).ToArray(), 1, 16, 3, depth);
        ICachePolicy policy = new DuCaOptions().Build(run);
        var x = new float[length];
        var feature = new float[length];

        // n = 0 full, n = 1 ToCa: both run every block and record the stack's output.
        for (int n = 0; n < 2; n++)
        {
            policy.BeginStep(n, 999 - (20 * n));
            for (int l = 0; l < depth; l++)
            {
                Assert.Equal(l, policy.SkipBlocks(l, x));
                if (n == 0)
                {
                    policy.RecordAttentionScores(l, Enumerable.Repeat(1f, 16).ToArray());
                    policy.Record(new FeatureSite(l, Site.Attn), feature);
                    policy.Record(new FeatureSite(l, Site.Mlp), feature);
                }

                policy.RecordBlock(l, Enumerable.Repeat((float)((10 * n) + l), length).ToArray());
            }
        }

        // n = 2 aggressive: every block skipped, x = the last block's output of n = 1 (value 11).
        policy.BeginStep(2, 959);
        Assert.Equal(depth, policy.SkipBlocks(0, x));
        Assert.All(x, v => Assert.Equal(11f, v));

        // n = 3 ToCa again: the blocks run.
        policy.BeginStep(3, 939);
        Assert.Equal(0, policy.SkipBlocks(0, x));
        Assert.True(policy.TryForecast(new FeatureSite(0, Site.Attn), feature));
    }

    [Theory]
    [InlineData("duca:n=0", "n=0")]
    [InlineData("duca:ratio=2", "ratio=2")]
    [InlineData("duca:bonus=-1", "bonus=-1")]
    [InlineData("duca:sched=toca", "sched=toca")]
    [InlineData("duca:order=1", "order")]
    public void BadKnobsAreUsageErrorsNamingTheKnob(string spec, string knob)
    {
        var e = Assert.Throws<DitCacheException>(() => CacheRegistry.Parse(spec));
        Assert.Equal(2, e.ExitCode);
        Assert.Contains(knob, e.Message);
    }

    [Fact]
    public void SpecsParseToTheRecordAndRoundTrip()
    {
        Assert.Equal(new DuCaOptions(3, 0.05, TokenRatioSchedule.Ddim50, 0.25, 0.8), CacheRegistry.Parse("duca"));
        Assert.Equal(new DuCaOptions(3, 0.05), CacheRegistry.Parse("duca:n=3,ratio=0.05"));
        ICacheOptions options = CacheRegistry.Parse("duca:n=4,ratio=0.1,sched=ddpm250,w=0.3,bonus=0.6");
        Assert.Equal(options, CacheRegistry.Parse(options.Spec));
        Assert.Equal("duca", options.Name);
    }
}
