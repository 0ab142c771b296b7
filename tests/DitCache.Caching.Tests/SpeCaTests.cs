using System;
using System.Collections.Generic;
using System.Linq;
using DitCache.Tensors;
using Xunit;

namespace DitCache.Caching.Tests;

/// <summary>
/// SpeCa's decisions on analytic features (docs/methods.md §5.11), driven through the per-sample seam the way
/// <c>DitModel.Forward</c> drives it: passes over the rows <see cref="ICachePolicy.SelectSamples"/> picks, each row
/// gathered from the step's input, toy blocks whose module outputs are analytic functions of the step (block output =
/// input + attn + mlp), and the verified block run both as drafted and computed. The references are the analytic
/// features themselves and the schedule the options state (warm-up, min, max).
/// </summary>
public class SpeCaTests
{
    private const int Depth = 3;
    private const int Tokens = 5;   // T·D = 5 floats per row
    private const int Steps = 30;

    /// <summary>What the toy model saw: per step the outcome and the block-stack output of each row, and the passes.</summary>
    private sealed record Trace(SampleOutcome[][] Outcomes, float[][] Outputs, List<(int Step, int[] Rows)> Passes);

    /// <summary>
    /// Runs <paramref name="steps"/> steps of <paramref name="batch"/> rows (with <paramref name="cfg"/> rows b and
    /// b + B/2 are one image). <paramref name="feature"/>(n, row, site, i) is the true module output.
    /// </summary>
    private static Trace Drive(SpeCaOptions options, int batch, bool cfg, Func<int, int, FeatureSite, int, double> feature, int steps = Steps)
    {
        var run = new CacheRunInfo(steps, Enumerable.Range(0, steps).Select(n => 999f - n).ToArray(), batch, Tokens, 1, Depth, CfgScale: cfg ? 1.5 : 1.0);
        ICachePolicy policy = options.Build(run);
        Assert.True(policy.DecidesPerSample);
        int row = Tokens;
        var outcomes = new SampleOutcome[steps][];
        var outputs = new float[steps][];
        var passes = new List<(int, int[])>();
        for (int n = 0; n < steps; n++)
        {
            policy.BeginStep(n, 999f - n);
            var x = new float[batch * row];
            for (int b = 0; b < batch; b++)
            {
                x.AsSpan(b * row, row).Fill(1f + b);                                                   // the step's block-stack input
            }

            float[] input = x.ToArray();
            for (int pass = 0; ; pass++)
            {
                var flags = new bool[batch];
                int k = policy.SelectSamples(pass, x, flags);
                if (k == 0)
                {
                    break;
                }

                int[] rows = Enumerable.Range(0, batch).Where(b => flags[b]).ToArray();
                Assert.Equal(k, rows.Length);
                passes.Add((n, rows));
                var h = new float[k * row];
                for (int j = 0; j < k; j++)
                {
                    input.AsSpan(rows[j] * row, row).CopyTo(h.AsSpan(j * row, row));
                }

                var buffer = new float[k * row];
                for (int l = 0; l < Depth; l++)
                {
                    bool verify = policy.WantsBlockVerification(l);
                    float[] blockInput = h.ToArray();
                    var truth = new float[k * row];
                    foreach (Site s in new[] { Site.Attn, Site.Mlp })
                    {
                        var site = new FeatureSite(l, s);
                        var exact = new float[k * row];
                        for (int j = 0; j < k; j++)
                        {
                            for (int i = 0; i < row; i++)
                            {
                                exact[(j * row) + i] = (float)feature(n, rows[j], site, i);
                            }
                        }

                        if (!policy.TryForecast(site, buffer))
                        {
                            exact.CopyTo(buffer, 0);
                            policy.Record(site, buffer);
                        }

                        for (int i = 0; i < h.Length; i++)
                        {
                            h[i] += buffer[i];
                            truth[i] += exact[i];
                        }
                    }

                    if (verify)
                    {
                        float[] computed = blockInput.Select((v, i) => v + truth[i]).ToArray();
                        policy.VerifyBlock(l, h, computed);
                    }
                }

                for (int j = 0; j < k; j++)
                {
                    h.AsSpan(j * row, row).CopyTo(x.AsSpan(rows[j] * row, row));
                }
            }

            outcomes[n] = Enumerable.Range(0, batch).Select(policy.OutcomeOf).ToArray();
            outputs[n] = x;
        }

        return new Trace(outcomes, outputs, passes);
    }

    /// <summary>The true block-stack output of a row: its input plus every true module output.</summary>
    private static double TrueOutput(int n, int b, int i, Func<int, int, FeatureSite, int, double> feature)
    {
        double x = 1 + b;
        for (int l = 0; l < Depth; l++)
        {
            x += feature(n, b, new FeatureSite(l, Site.Attn), i) + feature(n, b, new FeatureSite(l, Site.Mlp), i);
        }

        return x;
    }

    private static double Linear(int n, int b, FeatureSite site, int i) => 0.3 + (0.1 * site.Index) + (0.02 * i) + ((0.05 + (0.01 * b)) * n);

    private static string Letters(Trace trace, int b) => new(trace.Outcomes.Select(o => "-CDARX"[(int)o[b]]).ToArray());

    [Fact]
    public void ALinearFeaturePathIsAlwaysAcceptedAndFollowsTheDraftSchedule()
    {
        // TaylorSeer's differences extrapolate a feature linear in n exactly (docs/methods.md §4.1), so every verified
        // draft has error ~0: warm-up 0..2 full, then per cycle min=2 unchecked drafts, 3 accepted, and a full step
        // once max=5 drafts ran.
        Trace trace = Drive(new SpeCaOptions(), 1, cfg: false, Linear);
        Assert.Equal("CCCDDAAACDDAAACDDAAACDDAAACDDA", Letters(trace, 0));
        for (int n = 0; n < Steps; n++)
        {
            for (int i = 0; i < Tokens; i++)
            {
                double truth = TrueOutput(n, 0, i, Linear);
                Assert.True(Math.Abs(trace.Outputs[n][i] - truth) <= 1e-5 * Math.Abs(truth), $"step {n}: {trace.Outputs[n][i]} vs {truth}");
            }
        }
    }

    [Fact]
    public void AThresholdOfZeroRejectsEveryCheckedDraftOfANonlinearPath()
    {
        // A quadratic path is not extrapolated exactly; with tau and floor 0 any error rejects. Every checked draft is
        // then computed, so drafts never get past min and the cycle is: min unchecked drafts, one rejected step.
        static double Quadratic(int n, int b, FeatureSite site, int i) => 0.1 * n * n;
        Trace trace = Drive(new SpeCaOptions(Threshold: 1e-300, Floor: 0), 1, cfg: false, Quadratic);
        Assert.Equal("CCCDDRDDRDDRDDRDDRDDRDDRDDRDDR", Letters(trace, 0));
        for (int n = 0; n < Steps; n++)
        {
            if (trace.Outcomes[n][0] is SampleOutcome.Rejected or SampleOutcome.Computed)
            {
                Assert.Equal(TrueOutput(n, 0, 0, Quadratic), trace.Outputs[n][0], 4);   // a rejected step is computed
            }
        }
    }

    /// <summary>Linear, plus a jump of +5 in every module from step <paramref name="at"/> on for row <paramref name="row"/>.</summary>
    private static Func<int, int, FeatureSite, int, double> Jump(int at, int row) =>
        (n, b, site, i) => Linear(n, b, site, i) + (b == row && n >= at ? 5.0 : 0.0);

    // A checked draft sees the jump and is rejected at once. The differences of order 1 … 4 then span the jump until
    // five full steps lie after it (6, 9, 12, 15, 18): each checked draft before that is rejected too, which makes it
    // one of those full steps; from 19 on the factors are the linear path's again and drafts are accepted.
    [Theory]
    [InlineData(6, "CCCDDARDDRDDRDDRDDARDDAAACDDAA")]
    [InlineData(4, "CCCDDRDDRDDRDDRDDRDDAAACDDAAAC")]   // an unchecked draft (#2, step 4) misses the jump; #3 rejects
    public void AJumpIsRejectedAtTheFirstCheckedDraftAndTheStepIsComputed(int at, string expected)
    {
        Func<int, int, FeatureSite, int, double> feature = Jump(at, 0);
        Trace trace = Drive(new SpeCaOptions(), 1, cfg: false, feature);
        Assert.Equal(expected, Letters(trace, 0));
        int rejected = expected.IndexOf('R', StringComparison.Ordinal);
        for (int i = 0; i < Tokens; i++)
        {
            Assert.Equal(TrueOutput(rejected, 0, i, feature), trace.Outputs[rejected][i], 4);
        }

        // The rejected step ran two passes: the draft to verify, then the full computation of the row.
        Assert.Equal(2, trace.Passes.Count(p => p.Step == rejected));
    }

    [Fact]
    public void WithRejectNextAFailedCheckKeepsTheDraftAndTheNextStepIsFull()
    {
        // The official code's rule (docs/methods.md §5.11): the jump at 6 fails the check (X) but the draft is used;
        // step 7 is full. The order-4 differences then reach back across the jump (to step 2) until five full steps
        // follow it (7, 11, 15, 19, 25): the checks at 10, 14, 18 and 24 fail too, each making the next step full.
        Func<int, int, FeatureSite, int, double> feature = Jump(6, 0);
        Trace trace = Drive(new SpeCaOptions(Reject: "next"), 1, cfg: false, feature);
        Assert.Equal("CCCDDAXCDDXCDDXCDDXCDDAAXCDDAA", Letters(trace, 0));
        double truth = TrueOutput(6, 0, 0, feature);
        Assert.True(Math.Abs(trace.Outputs[6][0] - truth) > 1, "the failed draft should have been used at step 6");
        Assert.Single(trace.Passes, p => p.Step == 6);                                  // no second pass
        Assert.Equal(TrueOutput(7, 0, 0, feature), trace.Outputs[7][0], 4);
    }

    [Fact]
    public void SamplesOfOneBatchDecideAloneAndACfgPairTogether()
    {
        // Two images as a CFG batch of four rows: image 1 (rows 1 and 3) jumps at step 6, image 0 stays linear.
        static double Feature(int n, int b, FeatureSite site, int i) => Linear(n, b % 2, site, i) + (b % 2 == 1 && n >= 6 ? 5.0 : 0.0);
        Trace trace = Drive(new SpeCaOptions(), 4, cfg: true, Feature);
        Assert.Equal("CCCDDAAACDDAAACDDAAACDDAAACDDA", Letters(trace, 0));
        Assert.Equal("CCCDDARDDRDDRDDRDDARDDAAACDDAA", Letters(trace, 1));       // as the single-image jump above
        Assert.Equal(Letters(trace, 0), Letters(trace, 2));                         // the uncond half decides with its image
        Assert.Equal(Letters(trace, 1), Letters(trace, 3));

        // Step 6: all four rows draft and verify, then image 1's pair alone is computed; image 0 keeps its draft.
        Assert.Equal([[0, 1, 2, 3], [1, 3]], trace.Passes.Where(p => p.Step == 6).Select(p => p.Rows));
        for (int b = 0; b < 4; b++)
        {
            double truth = TrueOutput(6, b, 2, Feature);
            Assert.True(Math.Abs(trace.Outputs[6][(b * Tokens) + 2] - truth) <= 1e-5 * Math.Abs(truth), $"row {b}");
        }

        // Step 8: image 0 is due a full step (max=5 drafts), image 1 drafts (its #2 since step 6): two passes.
        Assert.Equal([[1, 3], [0, 2]], trace.Passes.Where(p => p.Step == 8).Select(p => p.Rows));
    }

    [Fact]
    public void TheThresholdFollowsTheCodesDecayAndFloor()
    {
        // cal_type: threshold = max(base · decay^((S − i)/S), 0.01) with i the descending index, i.e. (n + 1)/S.
        var options = new SpeCaOptions();
        Assert.Equal(0.1 * Math.Pow(0.01, 1.0 / 50), options.ThresholdAt(0, 50), 15);
        Assert.Equal(0.1 * Math.Pow(0.01, 20.0 / 50), options.ThresholdAt(19, 50), 15);
        Assert.Equal(0.01, options.ThresholdAt(25, 50));
        Assert.Equal(0.01, options.ThresholdAt(49, 50));
    }

    [Theory]
    [InlineData("speca:tau=0", "tau=0")]
    [InlineData("speca:decay=1.5", "decay=1.5")]
    [InlineData("speca:floor=0.2", "floor=0.2")]
    [InlineData("speca:min=6", "min=6, max=5")]
    [InlineData("speca:max=0,min=0", "min=0, max=0")]
    [InlineData("speca:o=9", "o=9")]
    [InlineData("speca:warmup=0", "warmup=0")]
    [InlineData("speca:layer=-2", "layer=-2")]
    [InlineData("speca:metric=cosine", "metric=cosine")]
    [InlineData("speca:reject=later", "reject=later")]
    public void BadKnobsAreOneLineUsageErrors(string spec, string named)
    {
        var error = Assert.Throws<DitCacheException>(() => CacheRegistry.Parse(spec));
        Assert.Equal(2, error.ExitCode);
        Assert.Contains(named, error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', error.Message);
    }

    [Fact]
    public void ALayerBeyondTheModelIsRefusedAtBuild()
    {
        var run = new CacheRunInfo(10, Enumerable.Range(0, 10).Select(n => 999f - n).ToArray(), 1, Tokens, 1, Depth);
        var error = Assert.Throws<DitCacheException>(() => new SpeCaOptions(Layer: Depth).Build(run));
        Assert.Contains($"layer={Depth}", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TheSpecRoundTrips()
    {
        ICacheOptions options = CacheRegistry.Parse("speca:tau=0.2,decay=0.5,floor=0.001,min=1,max=3,o=2,warmup=2,layer=0,metric=l2,reject=next");
        Assert.Equal(new SpeCaOptions(0.2, 0.5, 0.001, 1, 3, 2, 2, 0, "l2", "next"), options);
        Assert.Equal(options, CacheRegistry.Parse(options.Spec));
    }
}
