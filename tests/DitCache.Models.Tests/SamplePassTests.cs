using System;
using System.Linq;
using DitCache.Caching;
using DitCache.Tensors;
using Xunit;

namespace DitCache.Models.Tests;

/// <summary>
/// Per-sample decisions inside a batch (<see cref="ICachePolicy.DecidesPerSample"/>): the block stack runs in passes
/// over the rows a policy picks. References share no code with the pass machinery: each sample forwarded alone in a
/// state of its own (one row, or its CFG pair), and for rows a policy stands in for, a one-row forward whose policy
/// skips the whole stack with the same stand-in (the block-level seam every whole-stack cache uses).
/// </summary>
public class SamplePassTests
{
    private const int Batch = 4;

    private static DitModel Model(int threads) => new(DitWeights.FromFile(Golden.Weights), new ManagedGemm(threads), threads);

    /// <summary>Four different samples: their own noise, timesteps and labels (so the gathered conditioning matters).</summary>
    private static (float[] X, float[] T, int[] Y) Inputs(DitConfig c)
    {
        int image = c.InChannels * c.InputSize * c.InputSize;
        var random = new Random(5);
        float[] x = Enumerable.Range(0, Batch * image).Select(_ => (float)((random.NextDouble() * 2) - 1)).ToArray();
        return (x, [999f, 640f, 250f, 17f], [1, 3, 0, 2]);
    }

    /// <summary>A stand-in block-stack output for one row: a smooth pattern that differs per row.</summary>
    private static void StandIn(Span<float> row, int b)
    {
        for (int i = 0; i < row.Length; i++)
        {
            row[i] = (float)Math.Sin((0.37 * i) + b);
        }
    }

    /// <summary>Runs the passes it is given; rows in no pass get <see cref="StandIn"/> before pass 0.</summary>
    private sealed class PassPolicy(bool[][] passes, int rowLength) : ICachePolicy
    {
        public long CacheBytes => 0;

        public bool DecidesPerSample => true;

        public void BeginStep(int n, float timestep)
        {
        }

        public int SelectSamples(int pass, Span<float> x, Span<bool> run)
        {
            if (pass == 0)
            {
                for (int b = 0; b < run.Length; b++)
                {
                    if (!passes.Any(p => p[b]))
                    {
                        StandIn(x.Slice(b * rowLength, rowLength), b);
                    }
                }
            }

            if (pass >= passes.Length)
            {
                return 0;
            }

            passes[pass].CopyTo(run);
            return passes[pass].Count(r => r);
        }
    }

    /// <summary>Skips the whole stack, writing the stand-in of batch row <paramref name="b"/>.</summary>
    private sealed class SkipAllPolicy(int b, int depth) : ICachePolicy
    {
        public long CacheBytes => 0;

        public void BeginStep(int n, float timestep)
        {
        }

        public int SkipBlocks(int from, Span<float> x)
        {
            StandIn(x, b);
            return depth;
        }
    }

    private static float[] Alone(DitModel model, float[] x, float[] t, int[] y, int b, ICachePolicy policy)
    {
        DitConfig c = model.Config;
        int image = c.InChannels * c.InputSize * c.InputSize, outImage = c.OutChannels * c.InputSize * c.InputSize;
        DitRunState one = model.CreateState(1);
        var output = new float[outImage];
        model.Forward(x.AsSpan(b * image, image), [t[b]], [y[b]], one, policy, output);
        return output;
    }

    public static TheoryData<string, int> Selections => new()
    {
        { "1010", 1 },
        { "0110|0001", 1 },       // two passes over different rows; row 0 stood in
        { "1100|0100", 2 },       // row 1 runs twice (from the step's input both times), rows 2 and 3 stood in
        { "1111|1000", 2 },
        { "0000", 1 },            // no row runs: pass 0 returns 0 and ends the stack
    };

    [Theory]
    [MemberData(nameof(Selections))]
    public void RowsThatRunMatchTheirSampleAloneAndTheOthersHoldTheStandIn(string selection, int threads)
    {
        DitModel model = Model(threads);
        DitConfig c = model.Config;
        (float[] x, float[] t, int[] y) = Inputs(c);
        bool[][] passes = selection.Split('|').Select(p => p.Select(ch => ch == '1').ToArray()).ToArray();
        int outImage = c.OutChannels * c.InputSize * c.InputSize;
        DitRunState s = model.CreateState(Batch);
        s.SamplePasses = true;
        var output = new float[Batch * outImage];
        model.Forward(x, t, y, s, new PassPolicy(passes, c.Tokens * c.Hidden), output);

        for (int b = 0; b < Batch; b++)
        {
            bool ran = passes.Any(p => p[b]);
            float[] expected = ran ? Alone(model, x, t, y, b, NoCache.Instance) : Alone(model, x, t, y, b, new SkipAllPolicy(b, c.Depth));
            Assert.True(expected.AsSpan().SequenceEqual(output.AsSpan(b * outImage, outImage)),
                $"row {b} ({(ran ? "ran" : "stood in")}) differs from the sample forwarded alone");
        }

        // FLOPs: the per-sample sum of what ran, one full stack per row per pass.
        int rowsRun = passes.Sum(p => p.Count(r => r));
        Assert.Equal(rowsRun * DitFlops.Forward(c, 1), s.LastFlops, 1e-9 * DitFlops.Forward(c, Batch));
    }

    [Fact]
    public void AWholeBatchPassEqualsTheUsualForward()
    {
        DitModel model = Model(1);
        DitConfig c = model.Config;
        (float[] x, float[] t, int[] y) = Inputs(c);
        int outImage = c.OutChannels * c.InputSize * c.InputSize;
        DitRunState s = model.CreateState(Batch);
        var usual = new float[Batch * outImage];
        var passed = new float[Batch * outImage];
        model.Forward(x, t, y, s, NoCache.Instance, usual);
        double flops = s.LastFlops;
        model.Forward(x, t, y, s, new PassPolicy([[true, true, true, true]], c.Tokens * c.Hidden), passed);
        Assert.True(usual.AsSpan().SequenceEqual(passed));
        Assert.Equal(flops, s.LastFlops);
    }

    /// <summary>Picks image 0 in pass 0: both CFG halves, or (wrongly) its cond half only.</summary>
    private sealed class CfgPolicy(bool pair, int images) : ICachePolicy
    {
        public long CacheBytes => 0;

        public bool DecidesPerSample => true;

        public void BeginStep(int n, float timestep)
        {
        }

        public int SelectSamples(int pass, Span<float> x, Span<bool> run)
        {
            if (pass > 0)
            {
                return 0;
            }

            run[0] = true;
            run[images] = pair;
            return pair ? 2 : 1;
        }
    }

    [Fact]
    public void WithCfgAnImageRunsAsAPairAndMatchesItsGuidedForwardAlone()
    {
        DitModel model = Model(1);
        DitConfig c = model.Config;
        (float[] x, _, int[] y) = Inputs(c);
        int image = c.InChannels * c.InputSize * c.InputSize, outImage = c.OutChannels * c.InputSize * c.InputSize;
        const int Images = 2;
        DitRunState s = model.CreateState(2 * Images);
        s.SamplePasses = true;
        var output = new float[Images * outImage];
        model.ForwardWithCfg(x.AsSpan(0, Images * image), 500f, y.AsSpan(0, Images), 4f, c.InChannels, s, new CfgPolicy(true, Images), output);

        DitRunState one = model.CreateState(2);
        var alone = new float[outImage];
        model.ForwardWithCfg(x.AsSpan(0, image), 500f, y.AsSpan(0, 1), 4f, c.InChannels, one, NoCache.Instance, alone);
        Assert.True(alone.AsSpan().SequenceEqual(output.AsSpan(0, outImage)), "image 0 differs from its CFG pair forwarded alone");
        Assert.Equal(2 * DitFlops.Forward(c, 1), s.LastFlops, 1e-9 * DitFlops.Forward(c, 2));

        var error = Assert.Throws<InvalidOperationException>(() =>
            model.ForwardWithCfg(x.AsSpan(0, Images * image), 500f, y.AsSpan(0, Images), 4f, c.InChannels, s, new CfgPolicy(false, Images), output));
        Assert.Contains("split the CFG pair of image 0", error.Message);
    }

    /// <summary>Forecasts zeros for both modules of <paramref name="block"/> and keeps what verification hands it.</summary>
    private sealed class ZeroDraftPolicy(int block, bool verify) : ICachePolicy
    {
        public float[]? Drafted { get; private set; }

        public float[]? Computed { get; private set; }

        public long CacheBytes => 0;

        public bool DecidesPerSample => true;

        public void BeginStep(int n, float timestep)
        {
        }

        public bool TryForecast(FeatureSite site, Span<float> output)
        {
            if (site.Block != block)
            {
                return false;
            }

            output.Clear();
            return true;
        }

        public bool WantsBlockVerification(int b) => verify && b == block;

        public void VerifyBlock(int b, ReadOnlySpan<float> drafted, ReadOnlySpan<float> computed)
        {
            Drafted = drafted.ToArray();
            Computed = computed.ToArray();
        }
    }

    [Fact]
    public void VerificationHandsTheDraftAndTheComputedBlockAndTheDraftContinues()
    {
        DitModel model = Model(1);
        DitConfig c = model.Config;
        (float[] x, float[] t, int[] y) = Inputs(c);
        int outImage = c.OutChannels * c.InputSize * c.InputSize;
        int last = c.Depth - 1;

        // Reference: the blocks of a forward with every module computed, seen through the tap.
        float[]? input = null, computed = null;
        model.Tap = (stage, values) =>
        {
            if (stage == $"block{last - 1}")
            {
                input = values.ToArray();
            }
            else if (stage == $"block{last}")
            {
                computed = values.ToArray();
            }
        };
        DitRunState reference = model.CreateState(Batch);
        var full = new float[Batch * outImage];
        model.Forward(x, t, y, reference, NoCache.Instance, full);
        model.Tap = null;

        DitRunState s = model.CreateState(Batch);
        s.SamplePasses = true;
        var plain = new float[Batch * outImage];
        var verified = new float[Batch * outImage];
        model.Forward(x, t, y, s, new ZeroDraftPolicy(last, verify: false), plain);
        double plainFlops = s.LastFlops;
        var policy = new ZeroDraftPolicy(last, verify: true);
        model.Forward(x, t, y, s, policy, verified);

        Assert.True(input!.AsSpan().SequenceEqual(policy.Drafted), "a zero forecast leaves the block's input: the draft should equal it");
        Assert.True(computed!.AsSpan().SequenceEqual(policy.Computed), "the computed block differs from the block of a plain forward");
        Assert.True(plain.AsSpan().SequenceEqual(verified), "the draft should continue after verification");
        Assert.False(full.AsSpan().SequenceEqual(verified));
        double check = DitFlops.Attention(c, Batch) + DitFlops.Mlp(c, Batch) + (2 * DitFlops.LayerNorm(c, Batch));
        Assert.Equal(plainFlops + check, s.LastFlops, 1e-9 * DitFlops.Forward(c, Batch));
    }

    [Fact]
    public void VerificationWithoutPerSampleDecisionsIsRefused()
    {
        DitModel model = Model(1);
        DitConfig c = model.Config;
        (float[] x, float[] t, int[] y) = Inputs(c);
        DitRunState s = model.CreateState(Batch);
        var output = new float[Batch * c.OutChannels * c.InputSize * c.InputSize];
        var error = Assert.Throws<InvalidOperationException>(() => model.Forward(x, t, y, s, new WholeBatchVerify(), output));
        Assert.Contains("does not decide per sample", error.Message);
    }

    private sealed class WholeBatchVerify : ICachePolicy
    {
        public long CacheBytes => 0;

        public void BeginStep(int n, float timestep)
        {
        }

        public bool WantsBlockVerification(int block) => true;
    }
}
