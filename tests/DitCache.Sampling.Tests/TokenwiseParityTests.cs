using System;
using System.Collections.Generic;
using System.Linq;
using DitCache.Caching;
using DitCache.Models;
using DitCache.Tensors;
using DitCache.Tensors.IO;
using Xunit;
using Xunit.Abstractions;

namespace DitCache.Sampling.Tests;

/// <summary>
/// ToCa and DuCa against an independent Python reading of docs/methods.md §5.2/§5.3
/// (tools/reference/make_tokenwise_fixtures.py, written from the spec, not from the C# policy): 50 DDIM steps, CFG 1.5
/// on all channels, classes [3, 7], the fixture's noise, on the tiny random DiT (2 blocks, 16 tokens). Each spec runs
/// with the step type decided per step (<c>schedule=step</c>) and per block (<c>schedule=block</c>, the default and
/// the official code: mixed steps, block 0 full and block 1 ToCa or aggressive, at n = 4 and 17 for N = 3 and at
/// n = 7, 19, 41 for N = 4); the <c>kv-norm</c> score and the <c>ratio=0</c> branch of both methods are rows of the
/// same fixture. The step types, the type every block ran as (from the per-site telemetry), the
/// fresh-token count of every partial MLP and the selected token indices of every image row must match exactly; the
/// FLOPs block by block; the final sample and the caching effect to measured bounds. Fixture and key naming:
/// tests/TestData/README.md.
/// </summary>
public class TokenwiseParityTests
{
    private const int Steps = 50;
    private const int Depth = 2;
    private const int Rows = 4;         // CFG batch [cond; uncond] of 2 images
    private const int Tokens = 16;

    private static readonly ParityFixture s_golden = new("tiny_dit_tokenwise_golden.safetensors", "tools/reference/make_tokenwise_fixtures.py");

    private static readonly Lazy<DitModel> s_model = new(() =>
        new(DitWeights.FromFile(SafeTensors.Load(ParityFixture.PathOf("tiny_dit.safetensors"))), new ManagedGemm(2), 2));

    private static readonly Lazy<DiffusionPipeline> s_pipeline = new(() => new(s_model.Value));

    private static readonly Lazy<SampleResult> s_uncached = new(() => Sample(CacheRegistry.Parse("none")));

    private readonly ITestOutputHelper _output;

    public TokenwiseParityTests(ITestOutputHelper output)
    {
        _output = output;
    }

    // Final sample: relative L2 to the Python sample measured 2.9e-7 .. 3.3e-7 for every spec, by default and with
    // DOTNET_EnableAVX512=0 or DOTNET_EnableHWIntrinsic=0 (float32 round-off over 50 steps, as the other cache
    // fixtures), so the bound is the 1.5e-6 of CacheParityTests. The caching effect (sample − uncached sample) is
    // 6e-4 .. 5e-3 of the sample here, so the sample bound alone would pass a stale store that is somewhat off; the
    // second bound is on the relative L2 between the C# and the Python effect, about 4x the largest value measured
    // under the three ISA settings (per row). Every reading that changes which tokens are picked or how many (the
    // bonus, the staleness weight, the layer factor's denominator, the cycle rounding, a tie-break) fails the exact
    // step-type, count and index checks before the bounds are reached.
    private const double SampleBound = 1.5e-6;

    private static readonly (string Spec, double EffectBound)[] s_specs =
    [
        ("toca:n=3,ratio=0.07,schedule=step", 2.5e-3),                          // measured 5.8e-4 .. 6.1e-4
        ("duca:n=3,ratio=0.05,schedule=step", 3.5e-4),                          // 7.6e-5 .. 8.1e-5
        ("toca:n=4,ratio=0.2,sched=ddpm250,w=0.5,schedule=step", 3e-3),         // 6.8e-4 .. 6.9e-4
        ("toca:n=3,ratio=0.07", 2.5e-3),                                        // schedule=block: measured 5.7e-4 (default ISA)
        ("duca:n=3,ratio=0.05", 3.5e-4),                                        // 7.9e-5
        ("toca:n=4,ratio=0.2,sched=ddpm250,w=0.5", 3e-3),                       // 6.1e-4
        ("toca:n=3,ratio=0.07,score=kv-norm", 2.5e-3),                          // value-norm score: 4.9e-4 .. 5.4e-4
        ("duca:n=3,ratio=0.05,score=kv-norm", 3.5e-4),                          // 7.8e-5 .. 7.9e-5
        ("toca:n=3,ratio=0", 3.5e-3),                                           // ratio 0, FORA's cycle, no fresh token: 8.0e-4 .. 9.1e-4
        ("duca:n=3,ratio=0", 3e-4),                                             // ratio 0, FORA's full steps, aggressive kept: 6.4e-5 .. 6.7e-5
    ];

    public static TheoryData<string, double> Specs => ParityFixture.Rows(s_specs);

    private static SampleResult Sample(ICacheOptions options) =>
        s_pipeline.Value.Run(new SampleRequest([3, 7], Steps, "ddim", CfgScale: 1.5f, Noise: s_golden["noise"]), options);

    private static float[] Minus(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        var d = new float[a.Length];
        for (int i = 0; i < d.Length; i++)
        {
            d[i] = a[i] - b[i];
        }

        return d;
    }

    [Fact]
    public void UncachedSampleMatchesPython()
    {
        double error = ParityFixture.RelativeL2(s_golden["none.sample"].Data, s_uncached.Value.Sample.Data);
        _output.WriteLine($"none: relative L2 {error:E2}");
        Assert.True(error < SampleBound, $"none: relative L2 {error:E2} to the Python sample exceeds {SampleBound}");
    }

    [Fact]
    public void EveryFixtureSpecHasATheoryRow()
    {
        string[] tested = s_specs.Select(row => row.Spec).Order(StringComparer.Ordinal).ToArray();
        string[] stored = s_golden.CachedSpecs();
        Assert.Equal(stored, tested);
    }

    [Theory]
    [MemberData(nameof(Specs))]
    public void TokenwiseSampleMatchesPython(string spec, double effectBound)
    {
        string prefix = s_golden.Prefix(spec);
        var recording = new RecordingOptions(CacheRegistry.Parse(spec), Steps, Depth, Rows, Tokens);
        SampleResult result = Sample(recording);

        // Step types: 1 full, 2 aggressive (the whole stack skipped), 3 mixed (block 0 computed, the rest not), 0 ToCa.
        float[] types = s_golden[$"{prefix}.steptype"].Data;
        Assert.Equal(Steps, types.Length);
        Assert.Equal(types, result.Steps.Select(s => s.Computed ? 1f : s.BlocksSkipped ? 2f : s.ModulesComputed > 0 ? 3f : 0f));
        Assert.Equal(s_golden[$"{prefix}.computed"].Data, result.Steps.Select(s => s.Computed ? 1f : 0f));

        // What every block ran as, from the report's sites (attn, MLP per block): full CC, ToCa FP, aggressive SS.
        float[] blocks = s_golden[$"{prefix}.blocktype"].Data;                   // (S, depth)
        for (int n = 0; n < Steps; n++)
        {
            string expectedSites = string.Concat(Enumerable.Range(0, Depth).Select(l => blocks[(n * Depth) + l] switch { 1f => "CC", 2f => "SS", _ => "FP" }));
            Assert.True(expectedSites == StepTelemetry.Letters(result.Telemetry.Sites[n]),
                $"{spec}: step {n} sites {StepTelemetry.Letters(result.Telemetry.Sites[n])}, Python {expectedSites}");
        }

        // Fresh tokens per partial MLP (−1 elsewhere) and the picks of every image row, highest score first.
        Assert.Equal(s_golden[$"{prefix}.fresh"].Data, recording.Fresh);
        float[] tokens = s_golden[$"{prefix}.tokens"].Data;
        for (int j = 0; j < tokens.Length; j += Tokens)
        {
            int n = j / (Depth * Rows * Tokens), l = j / (Rows * Tokens) % Depth, b = j / Tokens % Rows;
            Assert.True(tokens.AsSpan(j, Tokens).SequenceEqual(recording.Picked.AsSpan(j, Tokens)),
                $"{spec}: step {n}, block {l}, row {b}: picked [{string.Join(", ", recording.Picked.AsSpan(j, Tokens).ToArray())}], Python [{string.Join(", ", tokens.AsSpan(j, Tokens).ToArray())}]");
        }

        // FLOPs (docs/methods.md §9.1), block by block: a full block in full; a ToCa block adaLN plus (MLP + LayerNorm)·k/T;
        // an aggressive (skipped) block nothing.
        DitConfig c = s_model.Value.Config;
        double flops = 0;
        for (int j = 0; j < Steps * Depth; j++)
        {
            flops += blocks[j] switch
            {
                1f => DitFlops.Block(c, Rows),
                2f => 0,
                _ => DitFlops.AdaLn(c, Rows) + ((DitFlops.Mlp(c, Rows) + DitFlops.LayerNorm(c, Rows)) * recording.Fresh[j] / Tokens),
            };
        }

        Assert.Equal(flops, result.Flops, 3);
        long moduleBytes = (2L * Depth + (blocks.Contains(2f) ? 1 : 0)) * Rows * Tokens * c.Hidden * sizeof(float);
        Assert.Equal(moduleBytes + ((long)Depth * Rows * Tokens * (sizeof(double) + sizeof(int))), result.CacheBytes);

        ReadOnlySpan<float> expected = s_golden[$"{prefix}.sample"].Data;
        double error = ParityFixture.RelativeL2(expected, result.Sample.Data);
        double effect = ParityFixture.RelativeL2(Minus(expected, s_golden["none.sample"].Data), Minus(result.Sample.Data, s_uncached.Value.Sample.Data));
        float[] fresh = recording.Fresh.Where(k => k >= 0).ToArray();
        _output.WriteLine($"{spec}: {types.Count(t => t == 1f)} full, {types.Count(t => t == 2f)} aggressive, {types.Count(t => t == 3f)} mixed, {fresh.Sum()} fresh tokens over {fresh.Length} partial MLPs, "
            + $"relative L2 sample {error:E2}, effect {effect:E2}, FLOPs {result.Flops / result.FullFlops:F4} of full");
        Assert.True(error < SampleBound, $"{spec}: relative L2 {error:E2} to the Python sample exceeds {SampleBound}");
        Assert.True(effect < effectBound, $"{spec}: the caching effect (sample − uncached) differs from Python's by {effect:E2} (relative L2), over {effectBound}");
    }

    /// <summary>
    /// <c>ratio=0</c> is the official fresh-ratio-0 branch: the cycle fixed at N, so FORA's full steps, and ToCa steps
    /// that pick no token reuse attention and MLP as FORA does; the sample is FORA's, bit for bit.
    /// </summary>
    [Theory]
    [InlineData("toca:n=3,ratio=0", "fora:n=3")]
    [InlineData("toca:n=4,ratio=0,schedule=step", "fora:n=4")]
    public void RatioZeroRunsFora(string spec, string fora)
    {
        SampleResult toca = Sample(CacheRegistry.Parse(spec));
        SampleResult reference = Sample(CacheRegistry.Parse(fora));
        Assert.Equal(reference.Steps.Select(s => s.Computed), toca.Steps.Select(s => s.Computed));
        Assert.Equal(reference.Sample.Data, toca.Sample.Data);
    }

    [Theory]
    [InlineData("toca:n=3,ratio=0.07")]
    [InlineData("duca:n=3,ratio=0.05")]
    [InlineData("duca:n=3,ratio=0.05,schedule=step")]
    [InlineData("toca:n=3,ratio=0.07,score=random")]
    [InlineData("duca:n=3,ratio=0.05,score=kv-norm")]
    public void RunsOneAfterAnotherMatchFreshRunsAndShadowChangesNothing(string spec)
    {
        ICacheOptions options = CacheRegistry.Parse(spec);
        SampleResult first = Sample(options);
        Assert.Equal(first.Sample.Data, Sample(options).Sample.Data);
        SampleResult shadow = s_pipeline.Value.Run(new SampleRequest([3, 7], Steps, "ddim", CfgScale: 1.5f, Noise: s_golden["noise"], Shadow: true), options);
        Assert.Equal(first.Sample.Data, shadow.Sample.Data);
        Assert.Equal(first.Flops, shadow.Flops);
    }

    /// <summary>Builds the inner options' policy wrapped in a <see cref="RecordingPolicy"/>, and keeps its log.</summary>
    private sealed class RecordingOptions(ICacheOptions inner, int steps, int depth, int rows, int tokens) : ICacheOptions
    {
        public float[] Fresh { get; } = Enumerable.Repeat(-1f, steps * depth).ToArray();                 // (S, depth)

        public float[] Picked { get; } = Enumerable.Repeat(-1f, steps * depth * rows * tokens).ToArray(); // (S, depth, B, T)

        public string Name => inner.Name;

        public string Spec => inner.Spec;

        public void Validate() => inner.Validate();

        public ICachePolicy Build(CacheRunInfo run)
        {
            Assert.Equal((steps, rows, tokens, depth), (run.Steps, run.Batch, run.Tokens, run.Depth));
            return new RecordingPolicy(inner.Build(run), this);
        }

        public void Log(int n, FeatureSite site, int k, ReadOnlySpan<int> picked)
        {
            Fresh[(n * depth) + site.Block] = k;
            for (int b = 0; b < rows; b++)
            {
                for (int j = 0; j < k; j++)
                {
                    Picked[(((((n * depth) + site.Block) * rows) + b) * tokens) + j] = picked[(b * k) + j];
                }
            }
        }
    }

    /// <summary>Forwards every seam call to the policy under test and logs what <see cref="ICachePolicy.SelectTokens"/> chose.</summary>
    private sealed class RecordingPolicy(ICachePolicy inner, RecordingOptions log) : ICachePolicy
    {
        private int _n;

        public long CacheBytes => inner.CacheBytes;

        public bool WantsModulatedInput => inner.WantsModulatedInput;

        public void BeginStep(int n, float timestep)
        {
            _n = n;
            inner.BeginStep(n, timestep);
        }

        public int SkipBlocks(int from, Span<float> x) => inner.SkipBlocks(from, x);

        public void RecordBlock(int block, ReadOnlySpan<float> output) => inner.RecordBlock(block, output);

        public bool TryForecast(FeatureSite site, Span<float> output) => inner.TryForecast(site, output);

        public void Record(FeatureSite site, ReadOnlySpan<float> output) => inner.Record(site, output);

        public int SelectTokens(FeatureSite site, Span<float> output, Span<int> tokens)
        {
            int k = inner.SelectTokens(site, output, tokens);
            if (k >= 0)
            {
                log.Log(_n, site, k, tokens);
            }

            return k;
        }

        public bool WantsAttentionScores(int block) => inner.WantsAttentionScores(block);

        public void RecordAttentionScores(int block, ReadOnlySpan<float> received) => inner.RecordAttentionScores(block, received);

        public bool WantsValueNorms(int block) => inner.WantsValueNorms(block);

        public void RecordValueNorms(int block, ReadOnlySpan<float> norms) => inner.RecordValueNorms(block, norms);

        public void ObserveModulatedInput(ReadOnlySpan<float> modulated) => inner.ObserveModulatedInput(modulated);
    }
}
