using System;
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
    // (schedule=step.)
    private const string Ddim50Threshold3 = "FTATFFTATFTATFTATFTFATFATFATFATF" + "TFTFTFTFTFTFTFTFTF";

    // schedule=block: the mixed steps of ToCa's string (n = 4, 17). At i = 45 the new C = 4 leaves 45 mod 4 = 1 (odd):
    // blocks 1 … run a ToCa step (m); at i = 32 the new C = 3 leaves 32 mod 3 = 2 (even): blocks 1 … are aggressive (a).
    private const string Ddim50Threshold3Block = "FTATmFTATFTATFTATaTFATFATFATFATF" + "TFTFTFTFTFTFTFTFTF";

    [Fact]
    public void ScheduleAlternatesToCaAndAggressiveSteps()
    {
        TokenwiseSchedule types = new DuCaOptions(3, 0.05, Decision: TokenDecision.Step).StepTypes(50);
        Assert.Equal(50, Ddim50Threshold3.Length);
        Assert.Equal(Ddim50Threshold3, types.Letters());
        Assert.Equal(20, types.Rest.Count(t => t == TokenStep.Full));
        Assert.Equal(8, types.Rest.Count(t => t == TokenStep.Aggressive));
        Assert.Equal(new ToCaOptions(3, Decision: TokenDecision.Step).FullSteps(50), new DuCaOptions(3, Decision: TokenDecision.Step).FullSteps(50));
    }

    [Fact]
    public void RatioZeroKeepsTheCycleAtNAndItsAggressiveSteps()
    {
        // The force scheduler's fresh_ratio == 0 branch (C = N at every full step, no forced 2), with DuCa's cal_type on
        // top: full at n = 0 and where i mod 3 = 0, aggressive where i mod 3 = 2, ToCa (no fresh token) where it is 1.
        // By hand for i = 49, 48, …: F (first), F (48), A (47), T (46), F (45), A, T, F, …; both readings agree.
        foreach (TokenDecision decision in new[] { TokenDecision.Block, TokenDecision.Step })
        {
            TokenwiseSchedule types = new DuCaOptions(3, 0, Decision: decision).StepTypes(50);
            Assert.Equal("FFATFATFAT", types.Letters()[..10]);
            Assert.Equal(new ForaOptions(3).FullSteps(50), types.FullSteps());
            Assert.Equal(16, types.Rest.Count(t => t == TokenStep.Aggressive));
            Assert.Equal(types.Block0, types.Rest);
        }
    }

    [Theory]
    [InlineData(50, 3, Ddim50Threshold3Block)]
    [InlineData(50, 4, "FFTATATaTFATATFATATaTFTATFTATFTATFTFTFTFTaTFATFATF")]
    [InlineData(20, 3, "FTATmATFATFATFTFTFTF")]
    [InlineData(20, 4, "FFTATATFTATFTATFTaTF")]
    public void BlockScheduleHasMixedSteps(int steps, int threshold, string expected)
    {
        TokenwiseSchedule types = new DuCaOptions(threshold).StepTypes(steps);
        Assert.Equal(expected, types.Letters());
        Assert.Equal(new ToCaOptions(threshold).FullSteps(steps), new DuCaOptions(threshold).FullSteps(steps));
    }

    [Theory]
    [InlineData(50, 4, "FFTATATFTFATATFATATFTFTATFTATFTATFTFTFTFTFTFATFATF")]
    [InlineData(20, 3, "FTATFATFATFATFTFTFTF")]
    [InlineData(20, 4, "FFTATATFTATFTATFTFTF")]
    public void StepScheduleStrings(int steps, int threshold, string expected) =>
        Assert.Equal(expected, new DuCaOptions(threshold, Decision: TokenDecision.Step).StepTypes(steps).Letters());

    /// <summary>
    /// A mixed aggressive step (schedule=block, i = 32 of DDIM-50 at N = 3, n = 17) on depth 2: block 0 runs in full and
    /// records, then block 1's SkipBlocks discards block 0's output and hands back the previous call's last-block output.
    /// </summary>
    [Fact]
    public void MixedAggressiveStepRunsBlockZeroThenReusesTheStack()
    {
        const int depth = 2, length = 16 * 3;
        var run = new CacheRunInfo(50, Enumerable.Range(0, 50).Select(n => 999f - (n * 20f)).ToArray(), 1, 16, 3, depth);
        TokenwiseSchedule types = new DuCaOptions().StepTypes(50);
        ICachePolicy policy = new DuCaOptions().Build(run);
        var x = new float[length];
        var feature = new float[length];
        for (int n = 0; n < 17; n++)
        {
            policy.BeginStep(n, 999 - (20 * n));
            for (int l = 0; l < depth; l++)
            {
                TokenStep type = l == 0 ? types.Block0[n] : types.Rest[n];
                int next = policy.SkipBlocks(l, x);
                if (next != l)
                {
                    Assert.Equal(TokenStep.Aggressive, type);
                    break;
                }

                Assert.Equal(type == TokenStep.Full, policy.WantsAttentionScores(l));
                if (type == TokenStep.Full)
                {
                    policy.RecordAttentionScores(l, Enumerable.Repeat(1f, 16).ToArray());
                    policy.Record(new FeatureSite(l, Site.Attn), feature);
                    policy.Record(new FeatureSite(l, Site.Mlp), feature);
                }

                policy.RecordBlock(l, Enumerable.Repeat((float)((10 * n) + l), length).ToArray());
            }
        }

        Assert.Equal((TokenStep.Full, TokenStep.Aggressive), (types.Block0[17], types.Rest[17]));
        Assert.Equal('T', types.Letters()[16]);                              // n = 16 ran block 1: its output is 161
        policy.BeginStep(17, 999 - (20 * 17));
        Assert.Equal(0, policy.SkipBlocks(0, x));                            // block 0 runs in full …
        Assert.True(policy.WantsAttentionScores(0));
        Assert.False(policy.TryForecast(new FeatureSite(0, Site.Attn), feature));
        Assert.Equal(-1, policy.SelectTokens(new FeatureSite(0, Site.Mlp), feature, new int[16]));
        policy.RecordBlock(0, Enumerable.Repeat(-5f, length).ToArray());
        Array.Fill(x, -5f);
        Assert.False(policy.WantsAttentionScores(1));
        Assert.Equal(depth, policy.SkipBlocks(1, x));                        // … block 1 on: the stack of n = 16
        Assert.All(x, v => Assert.Equal(161f, v));
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
    [InlineData("duca:schedule=per-block", "schedule=per-block")]
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
        Assert.Equal(new DuCaOptions(3, 0.05, Score: TokenScoreKind.KvNorm), CacheRegistry.Parse("duca:score=kv-norm"));
        Assert.EndsWith(",score=kv-norm", CacheRegistry.Parse("duca:score=kv-norm").Spec);
    }
}
