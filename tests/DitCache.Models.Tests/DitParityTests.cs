using System;
using System.Collections.Generic;
using DitCache.Caching;
using DitCache.Tensors;
using DitCache.Tests;
using Xunit;

namespace DitCache.Models.Tests;

/// <summary>The C# DiT against PyTorch golden tensors of a tiny random DiT (depth 2, hidden 64, patch 2, 4 heads).</summary>
public class DitParityTests
{
    private static DitModel Model(string backend, int threads = 2) =>
        new(DitWeights.FromFile(Golden.Weights), GemmFactory.Create(backend, threads), threads);

    [Fact]
    public void ConfigIsReadFromShapesAndMetadata()
    {
        DitConfig c = DitWeights.FromFile(Golden.Weights).Config;
        Assert.Equal((2, 64, 4, 2, 4, 8, true, 10), (c.Depth, c.Hidden, c.Heads, c.Patch, c.InChannels, c.InputSize, c.LearnSigma, c.NumClasses));
    }

    [Fact]
    public void ForwardMatchesEveryStage() => ForwardMatchesEveryStageOn("managed");

    [OpenBlasFact]
    public void ForwardMatchesEveryStageWithOpenBlas() => ForwardMatchesEveryStageOn("openblas");

    private static void ForwardMatchesEveryStageOn(string backend)
    {
        DitModel model = Model(backend);
        var taps = new Dictionary<string, float[]>();
        model.Tap = (stage, values) => taps[stage] = values.ToArray();
        DitRunState s = model.CreateState(2);
        Tensor x = Golden.Get("x");
        var output = new float[Golden.Get("out").Length];
        model.Forward(x.Data, Golden.Get("t").Data, Golden.Labels("y"), s, NoCache.Instance, output);

        Golden.Close(Golden.Get("x_embed").Data, taps["x_embed"], 1e-5, "x_embed");
        Golden.Close(Golden.Get("c").Data, taps["c"], 1e-5, "c");
        Golden.Close(Golden.Get("block0_attn").Data, taps["block0.attn"], 1e-5, "block0.attn");
        Golden.Close(Golden.Get("block0_mlp").Data, taps["block0.mlp"], 1e-5, "block0.mlp");
        Golden.Close(Golden.Get("block0").Data, taps["block0"], 1e-5, "block0");
        Golden.Close(Golden.Get("block1").Data, taps["block1"], 1e-5, "block1");
        Golden.Close(Golden.Get("out").Data, output, 1e-5, "out");
    }

    [Fact]
    public void TimestepEmbeddingMatches()
    {
        DitModel model = Model("managed");
        var taps = new Dictionary<string, float[]>();
        model.Tap = (stage, values) => taps[stage] = values.ToArray();
        var output = new float[Golden.Get("out").Length];
        model.Forward(Golden.Get("x").Data, Golden.Get("t").Data, Golden.Labels("y"), model.CreateState(2), NoCache.Instance, output);
        Assert.True(taps.ContainsKey("t_emb"), "the model should tap t_emb");
        Golden.Close(Golden.Get("t_emb").Data, taps["t_emb"], 1e-5, "t_emb");
    }

    [Theory]
    [InlineData("cfg_out", 4)]
    [InlineData("cfg_out_3ch", 3)]
    public void ForwardWithCfgMatches(string key, int guided)
    {
        DitModel model = Model("managed");
        Tensor cfgX = Golden.Get("cfg_x");
        int n = 2, image = cfgX.Length / 4;
        int[] labels = Golden.Labels("cfg_y")[..n];
        float scale = Golden.Get("cfg_scale").Data[0];
        Tensor expected = Golden.Get(key);                        // (2N, 8, 8, 8): both halves, keep the first
        var output = new float[expected.Length / 2];
        model.ForwardWithCfg(cfgX.Data.AsSpan(0, n * image), 500f, labels, scale, guided, model.CreateState(2 * n), NoCache.Instance, output);
        Golden.Close(expected.Data.AsSpan(0, output.Length), output, 1e-5, key);
    }

    [Fact]
    public void BatchRowsAreIndependent()
    {
        DitModel model = Model("managed");
        Tensor x = Golden.Get("x");
        int image = x.Length / 2, outImage = Golden.Get("out").Length / 2;
        var one = new float[outImage];
        model.Forward(x.Data.AsSpan(image, image), Golden.Get("t").Data.AsSpan(1, 1), Golden.Labels("y").AsSpan(1, 1),
            model.CreateState(1), NoCache.Instance, one);
        Golden.Close(Golden.Get("out").Data.AsSpan(outImage, outImage), one, 1e-5, "row 1 alone");
    }
}
