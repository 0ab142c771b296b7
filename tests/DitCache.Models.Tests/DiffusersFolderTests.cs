using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json.Nodes;
using DitCache.Tensors;
using DitCache.Tensors.IO;
using DitCache.Tests;
using Xunit;

namespace DitCache.Models.Tests;

/// <summary>
/// The diffusers layout against the official checkpoint it was converted from: tests/TestData/diffusers/ holds the
/// tiny DiT of tests/TestData/dit/tiny_dit.safetensors renamed by tools/reference/make_diffusers_fixtures.py (its own
/// Python re-implementation of diffusers' conversion rules, checked there by a forward on each naming).
/// </summary>
public sealed class DiffusersFolderTests : IDisposable
{
    private readonly string _temp = Directory.CreateTempSubdirectory("ditcache-diffusers-").FullName;

    public void Dispose() => Directory.Delete(_temp, recursive: true);

    internal static string FolderOf(string name) => Path.Combine(AppContext.BaseDirectory, "TestData", "diffusers", name);

    /// <summary>The official weights with pos_embed regenerated, as a diffusers folder (which stores none) has it.</summary>
    private static DitWeights OfficialRegenerated()
    {
        var tensors = Golden.Weights.Tensors.Where(kv => kv.Key != "pos_embed").ToDictionary(kv => kv.Key, kv => kv.Value);
        return DitWeights.FromFile(Golden.Weights.WithTensors(tensors), inputSize: 8);
    }

    private static void AssertSameWeights(DitWeights expected, DitWeights actual)
    {
        Assert.Equal(expected.Config, actual.Config);
        static IEnumerable<(string, float[])> All(DitWeights w)
        {
            yield return ("PatchEmbed.W", w.PatchEmbed.W);
            yield return ("PatchEmbed.B", w.PatchEmbed.B);
            yield return ("PosEmbed", w.PosEmbed);
            yield return ("TimeMlp0.W", w.TimeMlp0.W);
            yield return ("TimeMlp0.B", w.TimeMlp0.B);
            yield return ("TimeMlp2.W", w.TimeMlp2.W);
            yield return ("TimeMlp2.B", w.TimeMlp2.B);
            yield return ("LabelTable", w.LabelTable);
            yield return ("FinalAdaLn.W", w.FinalAdaLn.W);
            yield return ("FinalAdaLn.B", w.FinalAdaLn.B);
            yield return ("FinalLinear.W", w.FinalLinear.W);
            yield return ("FinalLinear.B", w.FinalLinear.B);
            foreach ((DitBlockWeights b, int i) in w.Blocks.Select((b, i) => (b, i)))
            {
                foreach ((string name, LinearWeights l) in new[] { ("AdaLn", b.AdaLn), ("Qkv", b.Qkv), ("Proj", b.Proj), ("Fc1", b.Fc1), ("Fc2", b.Fc2) })
                {
                    yield return ($"block {i} {name}.W", l.W);
                    yield return ($"block {i} {name}.B", l.B);
                }
            }
        }

        foreach (((string name, float[] e), (_, float[] a)) in All(expected).Zip(All(actual)))
        {
            Assert.True(e.AsSpan().SequenceEqual(a), $"{name} differs");
        }
    }

    [Fact]
    public void FolderHoldsTheOfficialWeights()
    {
        DitWeights folder = DiffusersFolder.Open(FolderOf("tiny-dit")).LoadWeights();
        Assert.Equal(new DitConfig(2, 64, 4, 2, 8, 4, true, 10), folder.Config);
        AssertSameWeights(OfficialRegenerated(), folder);
        // The stored table is numpy's float64 sin-cos cast to float32; ours is regenerated in C#, so within rounding.
        Golden.Close(Golden.Weights.Tensors["pos_embed"].Data, folder.PosEmbed, 1e-6, "regenerated pos_embed");
    }

    [Fact]
    public void TransformerFolderAndBinWeightsLoadTheSame()
    {
        DitWeights expected = OfficialRegenerated();
        AssertSameWeights(expected, DiffusersFolder.Open(Path.Combine(FolderOf("tiny-dit"), "transformer")).LoadWeights());
        // torch.save .bin of older diffusers: q/k/v are views into one storage, the embedders one tensor under 2 keys.
        AssertSameWeights(expected, DiffusersFolder.Open(FolderOf("tiny-dit-bin")).LoadWeights());
    }

    [Fact]
    public void ShardedWeightsLoadTheSame()
    {
        string folder = CopyFixture();
        string transformer = Path.Combine(folder, "transformer");
        TensorFile whole = SafeTensors.Load(Path.Combine(transformer, DiffusersFolder.SafeTensorsName));
        _ = whole.Tensors.Values.ToList();                                      // read them all before the file goes
        File.Delete(Path.Combine(transformer, DiffusersFolder.SafeTensorsName));
        string[] keys = [.. whole.Tensors.Keys.Order(StringComparer.Ordinal)];
        var map = new JsonObject();
        foreach ((string shard, IEnumerable<string> part) in new[] { ("model-00001-of-00002.safetensors", keys.Take(20)), ("model-00002-of-00002.safetensors", keys.Skip(20)) })
        {
            SafeTensors.Save(Path.Combine(transformer, shard), part.ToDictionary(k => k, k => whole.Tensors[k]));
            foreach (string k in part)
            {
                map[k] = shard;
            }
        }

        string index = Path.Combine(transformer, DiffusersFolder.IndexName);
        File.WriteAllText(index, new JsonObject { ["metadata"] = new JsonObject(), ["weight_map"] = map }.ToJsonString());
        DiffusersFolder opened = DiffusersFolder.Open(folder);
        Assert.Equal(2, opened.WeightFiles.Count);
        AssertSameWeights(OfficialRegenerated(), opened.LoadWeights());

        // An index that places a tensor in the other shard.
        map[keys[0]] = "model-00002-of-00002.safetensors";
        File.WriteAllText(index, new JsonObject { ["weight_map"] = JsonNode.Parse(map.ToJsonString()) }.ToJsonString());
        var e = Assert.Throws<DitCacheException>(() => DiffusersFolder.Open(folder).LoadWeights());
        Assert.Contains($"'{keys[0]}'", e.Message, StringComparison.Ordinal);
        Assert.Contains("the shards and the index disagree", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void FolderDescribesItsParts()
    {
        string folder = CopyFixture();
        Directory.CreateDirectory(Path.Combine(folder, "vae"));
        DiffusersFolder opened = DiffusersFolder.Open(folder);
        Assert.Equal(Path.Combine(folder, "vae"), opened.VaeFolder);
        Assert.Equal(Path.Combine(folder, "scheduler"), opened.SchedulerFolder);
        Assert.Equal(Path.Combine(folder, "transformer", "config.json"), opened.ConfigPath);
        Assert.Null(DiffusersFolder.Open(FolderOf("tiny-dit")).VaeFolder);       // the fixture has no vae/
        // Opened at transformer/, the pipeline's vae/ is still found through model_index.json.
        Assert.Equal(Path.Combine(folder, "vae"), DiffusersFolder.Open(Path.Combine(folder, "transformer")).VaeFolder);
    }

    [LinuxFact]
    public void HubCacheSnapshotOfSymbolicLinksLoads()
    {
        // huggingface_hub's cache: snapshots/<revision>/ holds symbolic links into blobs/.
        string blobs = Path.Combine(_temp, "models--facebook--DiT-tiny", "blobs");
        string snapshot = Path.Combine(_temp, "models--facebook--DiT-tiny", "snapshots", "0123abcd");
        Directory.CreateDirectory(blobs);
        string source = FolderOf("tiny-dit");
        foreach (string file in Directory.EnumerateFiles(source, "*", SearchOption.AllDirectories))
        {
            string blob = Path.Combine(blobs, Path.GetRelativePath(source, file).Replace('/', '_'));
            File.Copy(file, blob);
            string link = Path.Combine(snapshot, Path.GetRelativePath(source, file));
            Directory.CreateDirectory(Path.GetDirectoryName(link)!);
            File.CreateSymbolicLink(link, blob);
        }

        AssertSameWeights(OfficialRegenerated(), DiffusersFolder.Open(snapshot).LoadWeights());
        var e = Assert.Throws<DitCacheException>(() => DiffusersFolder.Open(Path.Combine(_temp, "models--facebook--DiT-tiny")));
        Assert.Contains("a Hugging Face cache entry", e.Message, StringComparison.Ordinal);
        Assert.Contains(Path.Combine("snapshots", "<revision>"), e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void FolderWithoutWeightsIsNamed()
    {
        string folder = CopyFixture();
        File.Delete(Path.Combine(folder, "transformer", DiffusersFolder.SafeTensorsName));
        var e = Assert.Throws<DitCacheException>(() => DiffusersFolder.Open(folder));
        Assert.Equal(
            $"{Path.Combine(folder, "transformer")}: no transformer weights (looked for diffusion_pytorch_model.safetensors, diffusion_pytorch_model.safetensors.index.json, diffusion_pytorch_model.bin; the folder holds config.json); download the weights file too",
            e.Message);
    }

    [Fact]
    public void MissingConfigIsNamed()
    {
        string folder = CopyFixture();
        File.Delete(Path.Combine(folder, "transformer", "config.json"));
        var e = Assert.Throws<DitCacheException>(() => DiffusersFolder.Open(folder));
        Assert.StartsWith(Path.Combine(folder, "transformer", "config.json") + ": missing;", e.Message, StringComparison.Ordinal);
        var notDit = Assert.Throws<DitCacheException>(() => DiffusersFolder.Open(_temp));
        Assert.Contains("not a diffusers DiT folder", notDit.Message, StringComparison.Ordinal);
        Assert.Equal(2, notDit.ExitCode);
    }

    [Theory]
    [InlineData("num_layers", 3, "holds 2 transformer blocks", "num_layers = 3")]
    [InlineData("num_attention_heads", 8, "'pos_embed.proj.weight' has shape [64, 4, 2, 2]", "8 × 16 = 128")]
    [InlineData("in_channels", 3, "'pos_embed.proj.weight' has shape [64, 4, 2, 2]", "in_channels = 3")]
    [InlineData("patch_size", 4, "'pos_embed.proj.weight' has shape [64, 4, 2, 2]", "patch_size = 4")]
    [InlineData("num_embeds_ada_norm", 1000, "class_embedder.embedding_table.weight' has shape [11, 64]", "num_embeds_ada_norm = 1000")]
    [InlineData("out_channels", 4, "'proj_out_2.weight' has shape [32, 64]", "out_channels = 4")]
    public void ConfigDisagreeingWithTheWeightsIsNamed(string key, int value, string weights, string config)
    {
        string folder = CopyFixture();
        string path = Path.Combine(folder, "transformer", "config.json");
        JsonNode json = JsonNode.Parse(File.ReadAllText(path))!;
        json[key] = value;
        File.WriteAllText(path, json.ToJsonString());
        var e = Assert.Throws<DitCacheException>(() => DiffusersFolder.Open(folder).LoadWeights());
        Assert.Contains(weights, e.Message, StringComparison.Ordinal);
        Assert.Contains(config, e.Message, StringComparison.Ordinal);
        Assert.Contains(path, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ConfigOfAnotherTransformerIsRefused()
    {
        string folder = CopyFixture();
        string path = Path.Combine(folder, "transformer", "config.json");
        JsonNode json = JsonNode.Parse(File.ReadAllText(path))!;
        json["norm_type"] = "ada_norm_single";
        File.WriteAllText(path, json.ToJsonString());
        var e = Assert.Throws<DitCacheException>(() => DiffusersFolder.Open(folder).LoadWeights());
        Assert.Equal($"{path}: norm_type \"ada_norm_single\" is not DiT's \"ada_norm_zero\" (DitCache runs DiT's adaLN-Zero blocks); this folder holds another kind of transformer", e.Message);
    }

    [Fact]
    public void FlagsContradictingTheConfigAreRefused()
    {
        DiffusersFolder folder = DiffusersFolder.Open(FolderOf("tiny-dit"));
        var heads = Assert.Throws<DitCacheException>(() => folder.LoadWeights(heads: 8));
        Assert.Contains("--heads 8 contradicts", heads.Message, StringComparison.Ordinal);
        Assert.Contains("num_attention_heads = 4", heads.Message, StringComparison.Ordinal);
        var size = Assert.Throws<DitCacheException>(() => folder.LoadWeights(inputSize: 16));
        Assert.Contains("sample_size = 8", size.Message, StringComparison.Ordinal);
        Assert.Equal(4, folder.LoadWeights(heads: 4, inputSize: 8).Config.Heads);
    }

    [Fact]
    public void PerBlockEmbeddersThatDifferAreRefused()
    {
        DiffusersFolder folder = DiffusersFolder.Open(FolderOf("tiny-dit"));
        TensorFile file = folder.LoadTensors();
        const string Key = "transformer_blocks.1.norm1.emb.timestep_embedder.linear_2.bias";
        var tensors = file.Tensors.ToDictionary(kv => kv.Key, kv => kv.Value);
        float[] changed = [.. tensors[Key].Data];
        changed[5] += 1e-3f;
        tensors[Key] = new Tensor(changed, changed.Length);
        var e = Assert.Throws<DitCacheException>(() => DiffusersDit.ToOfficialNames(file.WithTensors(tensors), folder.ReadConfig()));
        Assert.Contains($"'{Key}' differs from 'transformer_blocks.0.norm1.emb.timestep_embedder.linear_2.bias'", e.Message, StringComparison.Ordinal);

        tensors = file.Tensors.ToDictionary(kv => kv.Key, kv => kv.Value);
        float[] nan = [.. tensors["transformer_blocks.1.attn1.to_k.weight"].Data];
        nan[(2 * 64) + 5] = float.NaN;
        tensors["transformer_blocks.1.attn1.to_k.weight"] = new Tensor(nan, 64, 64);
        var nonFinite = Assert.Throws<DitCacheException>(() => DitWeights.FromFile(DiffusersDit.ToOfficialNames(file.WithTensors(tensors), folder.ReadConfig())));
        Assert.Contains("(diffusers names read as facebookresearch/DiT's, docs/models/dit-xl2.md): tensor 'blocks.1.attn.qkv.weight' holds NaN at [66, 5]", nonFinite.Message, StringComparison.Ordinal);

        tensors = file.Tensors.ToDictionary(kv => kv.Key, kv => kv.Value);
        tensors["transformer_blocks.0.norm2.weight"] = Tensor.Zeros(64);
        var extra = Assert.Throws<DitCacheException>(() => DiffusersDit.ToOfficialNames(file.WithTensors(tensors), folder.ReadConfig()));
        Assert.Contains("unexpected tensor(s) transformer_blocks.0.norm2.weight", extra.Message, StringComparison.Ordinal);
    }

    private string CopyFixture()
    {
        string target = Path.Combine(_temp, "DiT-tiny");
        string source = FolderOf("tiny-dit");
        foreach (string file in Directory.EnumerateFiles(source, "*", SearchOption.AllDirectories))
        {
            string to = Path.Combine(target, Path.GetRelativePath(source, file));
            Directory.CreateDirectory(Path.GetDirectoryName(to)!);
            File.Copy(file, to);
        }

        return target;
    }
}
