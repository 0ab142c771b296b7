using System.Collections.Generic;
using System.Linq;
using DitCache.Tensors;
using DitCache.Tensors.IO;
using Xunit;

namespace DitCache.Models.Tests;

/// <summary>Config inference from shapes and the errors for checkpoints that are not a DiT.</summary>
public class DitWeightsTests
{
    private static TensorFile Edit(System.Action<Dictionary<string, Tensor>> change, Dictionary<string, string>? metadata = null)
    {
        var tensors = Golden.Weights.Tensors.ToDictionary(kv => kv.Key, kv => kv.Value);
        change(tensors);
        return new TensorFile("edited.safetensors", tensors, metadata ?? new Dictionary<string, string>(Golden.Weights.Metadata.ToDictionary()),
            Golden.Weights.SourceDTypes);
    }

    [Fact]
    public void MissingKeyIsNamed()
    {
        var e = Assert.Throws<DitCacheException>(() => DitWeights.FromFile(Edit(t => t.Remove("blocks.1.mlp.fc2.bias"))));
        Assert.Contains("blocks.1.mlp.fc2.bias", e.Message);
        Assert.Contains("edited.safetensors", e.Message);
    }

    [Fact]
    public void ExtraKeyIsNamed()
    {
        var e = Assert.Throws<DitCacheException>(() => DitWeights.FromFile(Edit(t => t["head.extra"] = Tensor.Zeros(3))));
        Assert.Contains("head.extra", e.Message);
    }

    [Fact]
    public void NonFiniteWeightsAreNamedWithTheirIndex()
    {
        var nan = Assert.Throws<DitCacheException>(() => DitWeights.FromFile(Edit(t =>
        {
            float[] data = [.. t["blocks.1.mlp.fc2.weight"].Data];
            data[(3 * 256) + 17] = float.NaN;                                     // fc2 is (64, 256): row 3, column 17
            t["blocks.1.mlp.fc2.weight"] = new Tensor(data, 64, 256);
        })));
        Assert.Equal("edited.safetensors: tensor 'blocks.1.mlp.fc2.weight' holds NaN at [3, 17]: a DiT needs finite weights; the file is corrupt or was saved from a diverged run, so re-download or re-export it", nan.Message);
        Assert.Equal(1, nan.ExitCode);

        var inf = Assert.Throws<DitCacheException>(() => DitWeights.FromFile(Edit(t =>
        {
            float[] data = [.. t["pos_embed"].Data];
            data[^1] = float.PositiveInfinity;
            t["pos_embed"] = new Tensor(data, t["pos_embed"].Shape);
        })));
        Assert.Contains("tensor 'pos_embed' holds +Infinity at [0, 15, 63]", inf.Message, System.StringComparison.Ordinal);
    }

    [Fact]
    public void ShapeMismatchIsNamed()
    {
        var e = Assert.Throws<DitCacheException>(() => DitWeights.FromFile(Edit(t => t["blocks.0.attn.proj.bias"] = Tensor.Zeros(65))));
        Assert.Contains("blocks.0.attn.proj.bias", e.Message);
        Assert.Contains("[65]", e.Message);
    }

    [Fact]
    public void HeadsComeFromMetadataThenFlag()
    {
        var noMeta = new Dictionary<string, string>();
        var e = Assert.Throws<DitCacheException>(() => DitWeights.FromFile(Edit(_ => { }, noMeta)));
        Assert.Contains("--heads", e.Message);
        Assert.Equal(8, DitWeights.FromFile(Edit(_ => { }, noMeta), heads: 8).Config.Heads);
        var conflict = Assert.Throws<DitCacheException>(() => DitWeights.FromFile(Golden.Weights, heads: 8));
        Assert.Contains("num_heads=4", conflict.Message);
    }

    [Fact]
    public void PosEmbedIsRegeneratedWhenAbsent()
    {
        var e = Assert.Throws<DitCacheException>(() => DitWeights.FromFile(Edit(t => t.Remove("pos_embed"))));
        Assert.Contains("--input-size", e.Message);
        DitWeights w = DitWeights.FromFile(Edit(t => t.Remove("pos_embed")), inputSize: 8);
        // The fixture's pos_embed is DiT's fixed 2-D sin-cos table, so the regenerated one equals it.
        Golden.Close(Golden.Weights.Tensors["pos_embed"].Data, w.PosEmbed, 1e-6, "regenerated pos_embed");
    }
}
