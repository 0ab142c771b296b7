using System;
using System.Linq;
using DitCache.Tensors;
using Xunit;

namespace DitCache.Caching.Tests;

/// <summary>
/// ToCa (docs/methods.md §5.2) against hand-derived values: the simulated DDIM-50 schedule docs/methods.md quotes, the ratio
/// scheduler's factors, and token selection on hand-made attention scores whose s1, s3 and s4 are worked out below.
/// </summary>
public class ToCaTests
{
    // docs/methods.md §5.2, DDIM-50, threshold 3, written i = 49 → 0, i.e. n = 0 first; schedule=step.
    private const string Ddim50Threshold3 = "FTTTFFTTTFTTTFTTTFTFTTFTTFTTFTTFTFTFTFTFTFTFTFTFTF";

    // The same with the official per-block decision (schedule=block), by hand: i = 49 F sets C = 5; 48, 47, 46 T;
    // i = 45 (n = 4): block 0 sees 45 mod 5 = 0, runs in full and resets C = round(3/0.680) = 4; blocks 1 … then see
    // 45 mod 4 = 1: ToCa (m). i = 44: 44 mod 4 = 0, full everywhere (C = round(3/0.696) = 4), as the step reading's.
    // i = 40, 36 F (C stays 4); i = 32 (n = 17): block 0 sees 32 mod 4 = 0 and resets C = round(3/0.888) = 3, blocks
    // 1 … see 32 mod 3 = 2: m. From i = 31 on both readings run on C = 3 and agree.
    private const string Ddim50Threshold3Block = "FTTTmFTTTFTTTFTTTmTFTTFTTFTTFTTFTFTFTFTFTFTFTFTFTF";

    [Fact]
    public void ScheduleIsMethodsSimulatedString()
    {
        TokenwiseSchedule types = new ToCaOptions(3, 0.07, Decision: TokenDecision.Step).StepTypes(50);
        Assert.Equal(Ddim50Threshold3, types.Letters());
        Assert.Equal(types.Block0, types.Rest);
        Assert.Equal(20, new ToCaOptions(Decision: TokenDecision.Step).FullSteps(50).Count(f => f));
    }

    [Fact]
    public void BlockScheduleHasMixedStepsAtFourAndSeventeen()
    {
        TokenwiseSchedule types = new ToCaOptions(3, 0.07).StepTypes(50);
        Assert.Equal(Ddim50Threshold3Block, types.Letters());
        Assert.Equal(18, new ToCaOptions().FullSteps(50).Count(f => f));
        Assert.Equal(TokenStep.Full, types.Block0[4]);
        Assert.Equal(TokenStep.Partial, types.Rest[4]);
        Assert.Equal(TokenStep.Full, types.Block0[17]);
        Assert.Equal(TokenStep.Partial, types.Rest[17]);
    }

    [Theory]
    // Computed by TokenwiseSchedule and stated in docs/accelerators/toca.md; the mixed ordinals are the issue-19 ones.
    [InlineData(50, 4, TokenDecision.Step, "FFTTTTTFTFTTTTFTTTTFTFTTTFTTTFTTTFTFTFTFTFTFTTFTTF")]
    [InlineData(50, 4, TokenDecision.Block, "FFTTTTTmTFTTTTFTTTTmTFTTTFTTTFTTTFTFTFTFTmTFTTFTTF")]
    [InlineData(20, 3, TokenDecision.Step, "FTTTFTTFTTFTTFTFTFTF")]
    [InlineData(20, 3, TokenDecision.Block, "FTTTmTTFTTFTTFTFTFTF")]
    [InlineData(20, 4, TokenDecision.Step, "FFTTTTTFTTTFTTTFTFTF")]
    [InlineData(20, 4, TokenDecision.Block, "FFTTTTTFTTTFTTTFTmTF")]
    public void ScheduleStrings(int steps, int threshold, TokenDecision decision, string expected) =>
        Assert.Equal(expected, new ToCaOptions(threshold, Decision: decision).StepTypes(steps).Letters());

    [Fact]
    public void RatioZeroIsTheOfficialFixedCycleBranch()
    {
        // Official force_scheduler with fresh_ratio == 0: step weight 0 and no forced cycle 2, so C = N after every full
        // step: full at n = 0 and wherever i mod 3 = 0 (i = 48, 45, …), by hand the first ten ordinals FFTTFTTFTT; FORA's
        // schedule, and C never changes, so both readings agree.
        foreach (TokenDecision decision in new[] { TokenDecision.Block, TokenDecision.Step })
        {
            TokenwiseSchedule types = new ToCaOptions(3, 0, Decision: decision).StepTypes(50);
            Assert.Equal("FFTTFTTFTT", types.Letters()[..10]);
            Assert.Equal(new ForaOptions(3).FullSteps(50), types.FullSteps());
            Assert.Equal(types.Block0, types.Rest);
        }

        Assert.Equal(new ForaOptions(4).FullSteps(20), new ToCaOptions(4, 0).FullSteps(20));
        Assert.NotEqual(new ToCaOptions(3, 0).FullSteps(50), new ToCaOptions(3, 0.07).FullSteps(50));
    }

    [Theory]
    // round(3 / (1.4 − 0.8·i/50)), forced to 2 for i in [10, 20)
    [InlineData(49, 5)]     // 3 / 0.616 = 4.87
    [InlineData(45, 4)]     // 3 / 0.680 = 4.41
    [InlineData(36, 4)]     // 3 / 0.824 = 3.64
    [InlineData(32, 3)]     // 3 / 0.888 = 3.38
    [InlineData(21, 3)]     // 3 / 1.064 = 2.82
    [InlineData(20, 3)]     // outside [10, 20): 3 / 1.080 = 2.78
    [InlineData(19, 2)]     // forced
    [InlineData(10, 2)]     // forced
    [InlineData(8, 2)]      // 3 / 1.272 = 2.36
    [InlineData(0, 2)]      // 3 / 1.400 = 2.14
    public void CycleLengthFollowsTheForceScheduler(int i, int expected) => Assert.Equal(expected, TokenScore.CycleLength(3, i, 50));

    [Fact]
    public void FirstStepIsFullAndThresholdOneCanStillSkip()
    {
        Assert.Equal("F", new ToCaOptions(3).StepTypes(1).Letters());

        // N = 1 is not "every step": at i = 49 the cycle is round(1 / 0.616) = 2, so i = 47 is a ToCa step.
        Assert.Equal("FFT", new ToCaOptions(1, Decision: TokenDecision.Step).StepTypes(50).Letters()[..3]);
        Assert.Equal("FFT", new ToCaOptions(1).StepTypes(50).Letters()[..3]);
    }

    [Theory]
    // ddim50: step 1 + 2 − 4·i/S, layer 0.8 + 0.4·l/(depth − 1), module 2.5.
    [InlineData(TokenRatioSchedule.Ddim50, 0.07, 0, 50, 0, 28, 0.42)]          // 0.07·0.8·3·2.5
    [InlineData(TokenRatioSchedule.Ddim50, 0.07, 0, 50, 27, 28, 0.63)]         // 0.07·1.2·3·2.5
    [InlineData(TokenRatioSchedule.Ddim50, 0.07, 25, 50, 0, 28, 0.14)]         // 0.07·0.8·1·2.5
    [InlineData(TokenRatioSchedule.Ddim50, 0.07, 40, 50, 5, 28, 0.0)]          // step factor −0.2: clamped to 0
    [InlineData(TokenRatioSchedule.Ddim50, 0.07, 0, 50, 1, 2, 0.63)]           // depth 2: block 1 is the last, 1.2
    [InlineData(TokenRatioSchedule.Ddim50, 0.5, 0, 50, 0, 28, 1.0)]            // 3.0 clamped to 1
    // ddpm250: step 1.4 − 0.8·i/S, layer 1.8 − 1.6·l/(depth − 1).
    [InlineData(TokenRatioSchedule.Ddpm250, 0.07, 0, 250, 0, 28, 0.441)]       // 0.07·1.8·1.4·2.5
    [InlineData(TokenRatioSchedule.Ddpm250, 0.07, 0, 250, 27, 28, 0.049)]      // 0.07·0.2·1.4·2.5
    [InlineData(TokenRatioSchedule.Ddpm250, 0.07, 125, 250, 27, 28, 0.035)]    // 0.07·0.2·1.0·2.5
    [InlineData(TokenRatioSchedule.Constant, 0.07, 0, 50, 3, 28, 0.07)]
    public void RatioSchedulerFactors(TokenRatioSchedule schedule, double ratio, int i, int steps, int layer, int depth, double expected) =>
        Assert.Equal(expected, TokenScore.FreshRatio(ratio, schedule, i, steps, layer, depth), 12);

    [Theory]
    [InlineData(0.42, 256, 107)]    // 107.52
    [InlineData(0.63, 16, 10)]      // 10.08
    [InlineData(0.049, 16, 0)]      // 0.784
    [InlineData(1.0, 16, 16)]
    [InlineData(0.0, 16, 0)]
    public void FreshCountTruncates(double ratio, int tokens, int expected) => Assert.Equal(expected, TokenScore.FreshCount(ratio, tokens));

    // A 4×4 grid; received attention with ‖r‖ = 10 (squares 4+16+1+1+1+1+0+25+9+1+1+1+1+1+1+36 = 100), so s1 = r/10:
    //   row 0: .2 .4 .1 .1      staleness 3 on token 2 (+0.25·3/3 = .25) and 6 on token 12 (+0.25·6/3 = .5):
    //   row 1: .1 .1 0  .5      t2 = .35, t12 = .6.
    //   row 2: .3 .1 .1 .1      2×2 cells and their best token (+0.6·best): {0,1,4,5} t1 .4 → .64; {2,3,6,7} t7 .5 → .8;
    //   row 3: .1 .1 .1 .6      {8,9,12,13} t12 .6 → .96; {10,11,14,15} t15 .6 → .96.
    // Order: t12 .96 = t15 .96 (lower index first), t7 .8, t1 .64, t2 .35, t8 .3, t0 .2, the .1s by index, t6 0.
    private static readonly float[] s_received = [2, 4, 1, 1, 1, 1, 0, 5, 3, 1, 1, 1, 1, 1, 1, 6];
    private static readonly int[] s_stale = [0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 6, 0, 0, 0];

    [Fact]
    public void ScoreAddsStalenessAndTheCellBonus()
    {
        var s1 = new double[16];
        TokenScore.NormalizeRows(s_received, 16, s1);
        Assert.Equal([0.2, 0.4, 0.1, 0.1, 0.1, 0.1, 0, 0.5, 0.3, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.6], s1.Select(v => Math.Round(v, 12)));

        var score = new double[16];
        TokenScore.Score(s1, s_stale, 0.25, 3, 0.6, 4, score);
        double[] expected = [0.2, 0.64, 0.35, 0.1, 0.1, 0.1, 0, 0.8, 0.3, 0.1, 0.1, 0.1, 0.96, 0.1, 0.1, 0.96];
        for (int t = 0; t < 16; t++)
        {
            Assert.Equal(expected[t], score[t], 12);
        }

        var top = new int[16];
        TokenScore.TopK(score, 16, new double[16], new int[16], top);
        Assert.Equal([12, 15, 7, 1, 2, 8, 0, 3, 4, 5, 9, 10, 11, 13, 14, 6], top);
    }

    [Fact]
    public void EqualScoresFavourTheLowerIndexInCellsAndInTopK()
    {
        // Uniform attention: s1 = 1/4 everywhere; each cell's first token gains 0.6·0.25 → 0.4.
        float[] received = Enumerable.Repeat(1f, 16).ToArray();
        var s1 = new double[16];
        TokenScore.NormalizeRows(received, 16, s1);
        var score = new double[16];
        TokenScore.Score(s1, new int[16], 0.25, 3, 0.6, 4, score);
        var top = new int[6];
        TokenScore.TopK(score, 6, new double[16], new int[16], top);
        Assert.Equal([0, 2, 8, 10, 1, 3], top);
        Assert.Equal(0.4, score[0], 12);
        Assert.Equal(0.25, score[1], 12);
    }

    [Fact]
    public void OddGridSidesHaveRaggedEdgeCells()
    {
        // 3×3 grid: cells {0,1,3,4}, {2,5}, {6,7}, {8}; each gains on its best token.
        double[] s1 = [0.1, 0.2, 0.3, 0.4, 0.1, 0.1, 0.1, 0.5, 0.2];
        var score = new double[9];
        TokenScore.Score(s1, new int[9], 0, 3, 1.0, 3, score);
        Assert.Equal([0.1, 0.2, 0.6, 0.8, 0.1, 0.1, 0.1, 1.0, 0.4], score.Select(v => Math.Round(v, 12)));
    }

    /// <summary>
    /// The policy through the seam, one block, two image rows, D = 2, a constant ratio 0.25 (k = 4 of 16): uniform
    /// attention, so the picks are driven by the cell bonus and the staleness alone, and rotate round the cells.
    /// </summary>
    [Fact]
    public void PartialStepsRotateThroughStaleTokens()
    {
        const int tokens = 16, rows = 2, hidden = 2;
        var run = new CacheRunInfo(50, Enumerable.Range(0, 50).Select(n => 999f - (n * 20f)).ToArray(), rows, tokens, hidden, 1);
        ICachePolicy policy = new ToCaOptions(3, 0.25, TokenRatioSchedule.Constant).Build(run);
        var attn = new FeatureSite(0, Site.Attn);
        var mlp = new FeatureSite(0, Site.Mlp);
        var buffer = new float[rows * tokens * hidden];
        var picked = new int[rows * tokens];

        // n = 0: full. Everything is computed; scores recorded; the MLP output holds token index + 100·row.
        policy.BeginStep(0, 999);
        Assert.True(policy.WantsAttentionScores(0));
        Assert.Equal(-1, policy.SelectTokens(mlp, buffer, picked));
        Assert.False(policy.TryForecast(attn, buffer));
        policy.RecordAttentionScores(0, Enumerable.Repeat(1f / 8, rows * tokens).ToArray());
        policy.Record(attn, Enumerable.Repeat(7f, buffer.Length).ToArray());
        float[] mlp0 = Enumerable.Range(0, buffer.Length).Select(j => (float)((j / hidden % tokens) + (100 * (j / (hidden * tokens))))).ToArray();
        Assert.False(policy.TryForecast(mlp, buffer));
        policy.Record(mlp, mlp0);

        // n = 1: partial. Cell-first tokens win (stale all 0).
        policy.BeginStep(1, 979);
        Assert.False(policy.WantsAttentionScores(0));
        Assert.True(policy.TryForecast(attn, buffer));
        Assert.All(buffer, v => Assert.Equal(7f, v));
        Assert.Equal(4, policy.SelectTokens(mlp, buffer, picked));
        Assert.Equal([0, 2, 8, 10, 0, 2, 8, 10], picked[..8]);
        Assert.Equal(mlp0, buffer);                                          // the stale M_l
        buffer.AsSpan().Fill(-1f);                                           // what the model "recomputed", everywhere
        policy.Record(mlp, buffer);

        // n = 2: partial. Stale tokens (1 step) score 0.25 + 0.25/3; the lowest stale index per cell gets the bonus.
        policy.BeginStep(2, 959);
        Assert.True(policy.TryForecast(attn, buffer));
        Assert.Equal(4, policy.SelectTokens(mlp, buffer, picked));
        Assert.Equal([1, 3, 9, 11, 1, 3, 9, 11], picked[..8]);
        for (int j = 0; j < buffer.Length; j++)
        {
            int token = j / hidden % tokens;
            bool refreshed = token is 0 or 2 or 8 or 10;                     // only the picked rows were stored at n = 1
            Assert.Equal(refreshed ? -1f : mlp0[j], buffer[j]);
        }

        policy.Record(mlp, buffer);

        // n = 3: partial. Staleness 2 on {4,5,6,7,12,13,14,15} beats 1 on {0,2,8,10} and 0 on {1,3,9,11}.
        policy.BeginStep(3, 939);
        Assert.True(policy.TryForecast(attn, buffer));
        Assert.Equal(4, policy.SelectTokens(mlp, buffer, picked));
        Assert.Equal([4, 6, 12, 14, 4, 6, 12, 14], picked[..8]);
        policy.Record(mlp, buffer);

        // n = 4: full again.
        policy.BeginStep(4, 919);
        Assert.True(policy.WantsAttentionScores(0));
        Assert.False(policy.TryForecast(attn, buffer));
        Assert.Equal(-1, policy.SelectTokens(mlp, buffer, picked));
        Assert.Equal(0, policy.SkipBlocks(0, buffer));
    }

    /// <summary>
    /// score=random (official cache_type random): no attention is requested; every partial MLP draws a fresh uniform
    /// score per token, shared by an image's cond row b and uncond row b + B/2; the draws repeat run to run.
    /// </summary>
    [Fact]
    public void RandomScoreSharesDrawsAcrossCfgHalvesAndRepeats()
    {
        const int tokens = 16, rows = 4, k = 4;
        var run = new CacheRunInfo(50, Enumerable.Range(0, 50).Select(n => 999f - (n * 20f)).ToArray(), rows, tokens, 1, 1, CfgScale: 1.5);
        var options = new ToCaOptions(3, 0.25, TokenRatioSchedule.Constant, Score: TokenScoreKind.Random);
        int[][] Picks()
        {
            ICachePolicy policy = options.Build(run);
            var buffer = new float[rows * tokens];
            policy.BeginStep(0, 999);
            Assert.False(policy.WantsAttentionScores(0));
            policy.Record(new FeatureSite(0, Site.Attn), buffer);
            policy.Record(new FeatureSite(0, Site.Mlp), buffer);
            var picks = new int[2][];
            for (int n = 1; n <= 2; n++)
            {
                policy.BeginStep(n, 999 - (20 * n));
                var picked = new int[rows * tokens];
                Assert.Equal(k, policy.SelectTokens(new FeatureSite(0, Site.Mlp), buffer, picked));
                policy.Record(new FeatureSite(0, Site.Mlp), buffer);
                picks[n - 1] = picked[..(rows * k)];
            }

            return picks;
        }

        int[][] first = Picks();
        foreach (int[] p in first)
        {
            Assert.Equal(p[..k], p[(2 * k)..(3 * k)]);                     // image 0: cond row 0, uncond row 2
            Assert.Equal(p[k..(2 * k)], p[(3 * k)..]);                     // image 1: rows 1 and 3
            Assert.Equal(k, p[..k].Distinct().Count());
        }

        Assert.NotEqual(first[0][..k], first[0][k..(2 * k)]);               // the two images draw their own scores
        Assert.NotEqual(first[0][..k], first[1][..k]);                     // a fresh draw at every partial MLP
        Assert.Equal(first, Picks());
        Assert.Equal(options, CacheRegistry.Parse("toca:score=random,n=3,ratio=0.25,sched=constant"));
    }

    [Fact]
    public void KvNormScoreIsTheNormalisedHeadSumOfOneMinusTheValueNorm()
    {
        // One row, 2 heads, 3 tokens. Σ_h (1 − ‖v‖): token 0: (1 − 0.5) + (1 − 0.5) = 1, token 1: 0 + (1 − 3) = −2,
        // token 2: 1 + 1 = 2 (zero values); L2 norm √(1 + 4 + 4) = 3, so the score is (1/3, −2/3, 2/3).
        float[] norms = [0.5f, 1f, 0f, 0.5f, 3f, 0f];
        var score = new double[3];
        TokenScore.KvNormRows(norms, 2, 3, score);
        Assert.Equal([1.0 / 3, -2.0 / 3, 2.0 / 3], score, (a, b) => Math.Abs(a - b) < 1e-15);

        // All-zero sums stay 0 (eps 1e-12), not NaN: 2 heads of norm 1.
        TokenScore.KvNormRows([1f, 1f, 1f, 1f, 1f, 1f], 2, 3, score);
        Assert.Equal([0.0, 0.0, 0.0], score);
    }

    /// <summary>
    /// score=kv-norm asks for value norms (not attention scores) on full steps only, and ranks by them: the token whose
    /// values are smallest (largest 1 − ‖v‖) is picked first, in every row on its own.
    /// </summary>
    [Fact]
    public void KvNormScoreRanksByTheValueNormsOfTheFullStep()
    {
        const int tokens = 4, rows = 2, heads = 2;
        var run = new CacheRunInfo(50, Enumerable.Range(0, 50).Select(n => 999f - (n * 20f)).ToArray(), rows, tokens, 1, 1);
        var options = new ToCaOptions(3, 0.25, TokenRatioSchedule.Constant, StaleWeight: 0, Bonus: 0, Score: TokenScoreKind.KvNorm);
        Assert.Equal(options, CacheRegistry.Parse("toca:n=3,ratio=0.25,sched=constant,w=0,bonus=0,score=kv-norm"));
        ICachePolicy policy = options.Build(run);
        var buffer = new float[rows * tokens];
        policy.BeginStep(0, 999);
        Assert.False(policy.WantsAttentionScores(0));
        Assert.True(policy.WantsValueNorms(0));
        // (B, H, T): row 0's smallest norms sum at token 2, row 1's at token 1.
        float[] norms = [2f, 2f, 0.1f, 2f, 2f, 2f, 0.1f, 2f, /* row 1 */ 2f, 0.1f, 2f, 2f, 2f, 0.1f, 2f, 2f];
        policy.RecordValueNorms(0, norms);
        policy.Record(new FeatureSite(0, Site.Attn), buffer);
        policy.Record(new FeatureSite(0, Site.Mlp), buffer);
        policy.BeginStep(1, 979);
        Assert.False(policy.WantsValueNorms(0));                               // a ToCa step: no attention runs
        var picked = new int[rows * tokens];
        Assert.Equal(1, policy.SelectTokens(new FeatureSite(0, Site.Mlp), buffer, picked));
        Assert.Equal([2, 1], picked[..2]);
        Assert.Throws<ArgumentException>(() => policy.RecordValueNorms(0, new float[(rows * tokens * heads) + 1]));
        Assert.False(new ToCaOptions(3, 0, Score: TokenScoreKind.KvNorm).Build(run).WantsValueNorms(0));   // ratio 0: nothing to score
    }

    [Fact]
    public void EarlyPartialStepsOfDdim50SelectNoTokens()
    {
        // n = 1 (i = 48): step factor 3 − 3.84 < 0, so k = 0 while the attention is still reused.
        var run = new CacheRunInfo(50, Enumerable.Range(0, 50).Select(n => 999f - (n * 20f)).ToArray(), 1, 16, 1, 2);
        ICachePolicy policy = new ToCaOptions().Build(run);
        var buffer = new float[16];
        policy.BeginStep(0, 999);
        for (int l = 0; l < 2; l++)
        {
            policy.RecordAttentionScores(l, Enumerable.Repeat(1f, 16).ToArray());
            policy.Record(new FeatureSite(l, Site.Attn), buffer);
            policy.Record(new FeatureSite(l, Site.Mlp), buffer);
        }

        policy.BeginStep(1, 979);
        Assert.Equal(0, policy.SelectTokens(new FeatureSite(1, Site.Mlp), buffer, new int[16]));
        Assert.True(policy.TryForecast(new FeatureSite(1, Site.Attn), buffer));
        Assert.True(policy.CacheBytes >= 4 * 16 * sizeof(float));
    }

    [Theory]
    [InlineData("toca:n=0", "n=0")]
    [InlineData("toca:ratio=1.5", "ratio=1.5")]
    [InlineData("toca:ratio=-0.1", "ratio=-0.1")]
    [InlineData("toca:w=-1", "w=-1")]
    [InlineData("toca:bonus=-0.5", "bonus=-0.5")]
    [InlineData("toca:sched=cosine", "sched=cosine")]
    [InlineData("toca:fresh=3", "fresh")]
    [InlineData("toca:schedule=layer", "schedule=layer")]
    public void BadKnobsAreUsageErrorsNamingTheKnob(string spec, string knob)
    {
        var e = Assert.Throws<DitCacheException>(() => CacheRegistry.Parse(spec));
        Assert.Equal(2, e.ExitCode);
        Assert.Contains(knob, e.Message);
    }

    [Fact]
    public void SpecsParseToTheRecordAndRoundTrip()
    {
        Assert.Equal(new ToCaOptions(3, 0.07, TokenRatioSchedule.Ddim50, 0.25, 0.6, TokenDecision.Block), CacheRegistry.Parse("toca"));
        Assert.Equal(new ToCaOptions(Decision: TokenDecision.Step), CacheRegistry.Parse("toca:schedule=step"));
        Assert.Equal("toca:n=3,ratio=0.07,sched=ddim50,w=0.25,bonus=0.6,schedule=block,score=attention", CacheRegistry.Parse("toca").Spec);
        Assert.Equal(new ToCaOptions(3, 0.07), CacheRegistry.Parse("toca:n=3,ratio=0.07"));
        Assert.Equal(new ToCaOptions(4, 0.07, TokenRatioSchedule.Ddpm250), CacheRegistry.Parse("toca:n=4,sched=ddpm250"));
        Assert.Equal(new ToCaOptions(3, 0.1, StaleWeight: 0, Bonus: 0), CacheRegistry.Parse("toca:ratio=0.1,w=0,bonus=0"));
        ICacheOptions options = CacheRegistry.Parse("toca:n=5,ratio=0.2,sched=constant,w=0.5,bonus=0.7");
        Assert.Equal(options, CacheRegistry.Parse(options.Spec));
        Assert.Equal("toca", options.Name);
        Assert.Contains("ratio=2", Assert.Throws<DitCacheException>(() => new ToCaOptions(3, 2).Validate()).Message);
    }

    [Fact]
    public void BonusNeedsASquareGrid()
    {
        var run = new CacheRunInfo(10, Enumerable.Range(0, 10).Select(n => 999f - n).ToArray(), 1, 12, 1, 1);
        Assert.Throws<ArgumentException>(() => new ToCaOptions().Build(run));
        Assert.NotNull(new ToCaOptions(Bonus: 0).Build(run));
    }
}
