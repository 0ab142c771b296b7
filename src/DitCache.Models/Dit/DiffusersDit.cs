using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text.Json;
using DitCache.Tensors;
using DitCache.Tensors.IO;

namespace DitCache.Models;

/// <summary>
/// The <c>transformer/config.json</c> of a diffusers DiT (<c>DiTTransformer2DModel</c>, or <c>Transformer2DModel</c>
/// with <c>norm_type</c> "ada_norm_zero" as older diffusers releases saved it). Only what fixes the DiT's shape is kept.
/// </summary>
/// <param name="Path">The config file, for messages.</param>
/// <param name="Heads">num_attention_heads.</param>
/// <param name="HeadDim">attention_head_dim; the hidden size is Heads × HeadDim.</param>
/// <param name="InChannels">in_channels.</param>
/// <param name="OutChannels">out_channels (in_channels when null).</param>
/// <param name="Layers">num_layers.</param>
/// <param name="PatchSize">patch_size.</param>
/// <param name="SampleSize">sample_size: the latent side, DiT's input_size.</param>
/// <param name="Classes">num_embeds_ada_norm: the class count (the label table has one more row, the null class).</param>
/// <param name="ClassName">_class_name, for messages.</param>
public sealed record DiffusersDitConfig(string Path, int Heads, int HeadDim, int InChannels, int OutChannels, int Layers,
    int PatchSize, int SampleSize, int Classes, string ClassName)
{
    /// <summary>The hidden size D.</summary>
    public int Hidden => Heads * HeadDim;

    /// <summary>Reads and checks a config.json.</summary>
    /// <exception cref="DitCacheException">The file is missing, not JSON, lacks a key, or describes no DiT.</exception>
    public static DiffusersDitConfig Load(string path)
    {
        using ConfigJson json = ConfigJson.Read(path, "the transformer config (a diffusers transformer/config.json; the folder needs it)");
        string className = json.String("_class_name") ?? "(no _class_name)";
        if (className is not ("DiTTransformer2DModel" or "Transformer2DModel"))
        {
            throw new DitCacheException($"{path}: _class_name \"{className}\" is not a DiT; expected DiTTransformer2DModel or Transformer2DModel (the transformer of a DiTPipeline)");
        }

        Require(json, "norm_type", "ada_norm_zero", "DitCache runs DiT's adaLN-Zero blocks");
        Require(json, "activation_fn", "gelu-approximate", "DiT's MLP uses the tanh GELU");
        if (json.Bool("norm_elementwise_affine") == true)
        {
            throw new DitCacheException($"{path}: norm_elementwise_affine is true; DiT's LayerNorms have no weights (expected false)");
        }

        if (json.Has("cross_attention_dim"))
        {
            throw new DitCacheException($"{path}: cross_attention_dim is set; a class-conditional DiT has no cross-attention (expected null)");
        }

        int inChannels = Positive(json, "in_channels");
        return new DiffusersDitConfig(path, Positive(json, "num_attention_heads"), Positive(json, "attention_head_dim"), inChannels,
            OptionalPositive(json, "out_channels") ?? inChannels, Positive(json, "num_layers"), Positive(json, "patch_size"),
            Positive(json, "sample_size"), Positive(json, "num_embeds_ada_norm"), className);
    }

    private static void Require(ConfigJson json, string key, string expected, string why)
    {
        if (json.String(key) is { } value && value != expected)
        {
            throw new DitCacheException($"{json.Source}: {key} \"{value}\" is not DiT's \"{expected}\" ({why}); this folder holds another kind of transformer");
        }
    }

    private static int Positive(ConfigJson json, string key) =>
        OptionalPositive(json, key) ?? throw new DitCacheException($"{json.Source}: key \"{key}\" is missing; a DiT config names it (download the config again)");

    private static int? OptionalPositive(ConfigJson json, string key) =>
        json.Int(key) is not int v ? null
        : v > 0 ? v
        : throw new DitCacheException($"{json.Source}: \"{key}\" is {v}; expected a positive integer");
}

/// <summary>
/// diffusers' DiT key names, mapped onto facebookresearch/DiT's (the names <see cref="DitWeights"/> reads). This file
/// and DitWeights.cs are the only places checkpoint key strings appear (CONTRIBUTING.md, "Layout"). The mapping is
/// the inverse of diffusers' <c>scripts/convert_dit_to_diffusers.py</c> (docs/models/dit-xl2.md): every block holds
/// its own copy of the timestep and label embedders (<c>norm1.emb</c>), which must be equal, since DiT has one;
/// <c>attn1.to_q/to_k/to_v</c> are the three row blocks of <c>attn.qkv</c>; <c>norm1.linear</c> and
/// <c>proj_out_1</c> keep the official chunk order; diffusers stores no <c>pos_embed</c> (regenerated from
/// <c>sample_size</c>).
/// </summary>
public static class DiffusersDit
{
    private const string Emb = "norm1.emb";

    /// <summary>
    /// The tensors of <paramref name="file"/> (diffusers names) under facebookresearch/DiT names, with metadata
    /// <c>num_heads</c> and <c>input_size</c> from <paramref name="config"/>. Arrays are shared where a tensor is only
    /// renamed; qkv is a new array.
    /// </summary>
    /// <exception cref="DitCacheException">A key is missing or unexpected, a shape disagrees with the config, or the
    /// per-block embedder copies differ.</exception>
    public static TensorFile ToOfficialNames(TensorFile file, DiffusersDitConfig config)
    {
        ArgumentNullException.ThrowIfNull(file);
        ArgumentNullException.ThrowIfNull(config);
        var used = new HashSet<string>(StringComparer.Ordinal);
        var output = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        var dtypes = new Dictionary<string, StoredDType>(StringComparer.Ordinal);
        int d = config.Hidden;

        // Each key is read once, uncached (TensorFile.Read, not Tensors): a per-block embedder copy and the to_q, to_k,
        // to_v parts of attn.qkv are garbage as soon as they are compared or concatenated, so loading a diffusers
        // folder holds the weights about once, not with every block's embedders and a second qkv beside them.
        Tensor Take(string key)
        {
            if (!file.Entries.ContainsKey(key))
            {
                throw new DitCacheException($"{file.Source}: tensor '{key}' is missing; the weights do not match a diffusers DiT (DiTTransformer2DModel key names)");
            }

            used.Add(key);
            return file.Read(key);
        }

        void Put(string official, string key, Tensor t)
        {
            output[official] = t;
            dtypes[official] = file.SourceDTypes.TryGetValue(key, out StoredDType dt) ? dt : StoredDType.F32;
        }

        void Rename(string official, string key) => Put(official, key, Take(key));

        DitCacheException Disagree(string key, Tensor t, string expected) => new(
            $"{file.Source}: tensor '{key}' has shape {t.ShapeText}, but {config.Path} says {expected}; the config does not belong to these weights (download the transformer folder again, or fix config.json)");

        // Patch embedding: the config's hidden size, channels and patch against the weights.
        Tensor patch = Take("pos_embed.proj.weight");
        if (patch.Rank != 4)
        {
            throw new DitCacheException($"{file.Source}: tensor 'pos_embed.proj.weight' has shape {patch.ShapeText}; expected a conv weight [D, C, p, p]");
        }

        if (patch.Dim(0) != d)
        {
            throw Disagree("pos_embed.proj.weight", patch, $"hidden size num_attention_heads × attention_head_dim = {config.Heads} × {config.HeadDim} = {d}");
        }

        if (patch.Dim(1) != config.InChannels)
        {
            throw Disagree("pos_embed.proj.weight", patch, $"in_channels = {config.InChannels}");
        }

        if (patch.Dim(2) != config.PatchSize || patch.Dim(3) != config.PatchSize)
        {
            throw Disagree("pos_embed.proj.weight", patch, $"patch_size = {config.PatchSize}");
        }

        Put("x_embedder.proj.weight", "pos_embed.proj.weight", patch);
        Rename("x_embedder.proj.bias", "pos_embed.proj.bias");

        // Blocks: the count against num_layers.
        int blocks = 0;
        while (file.Entries.ContainsKey(Block(blocks, "norm1.linear.weight")))
        {
            blocks++;
        }

        if (blocks != config.Layers)
        {
            throw new DitCacheException(
                $"{file.Source}: holds {blocks} transformer blocks (transformer_blocks.0 … {blocks - 1}), but {config.Path} says num_layers = {config.Layers}; the config does not belong to these weights (download the transformer folder again, or fix config.json)");
        }

        // Embedders: block 0's copy is DiT's; every other block's must equal it.
        (string Official, string Name)[] embedders =
        [
            ("t_embedder.mlp.0.weight", "timestep_embedder.linear_1.weight"), ("t_embedder.mlp.0.bias", "timestep_embedder.linear_1.bias"),
            ("t_embedder.mlp.2.weight", "timestep_embedder.linear_2.weight"), ("t_embedder.mlp.2.bias", "timestep_embedder.linear_2.bias"),
            ("y_embedder.embedding_table.weight", "class_embedder.embedding_table.weight"),
        ];
        foreach ((string official, string name) in embedders)
        {
            string first = Block(0, $"{Emb}.{name}");
            Tensor t = Take(first);
            for (int i = 1; i < blocks; i++)
            {
                string key = Block(i, $"{Emb}.{name}");
                Tensor copy = Take(key);
                if (!copy.HasShape(t.Shape) || !copy.Data.AsSpan().SequenceEqual(t.Data))
                {
                    throw new DitCacheException(
                        $"{file.Source}: tensor '{key}' differs from '{first}'; DiT has one timestep and label embedder shared by all blocks, so every block's copy must be equal (this checkpoint was trained with per-block embedders, which DitCache does not run)");
                }
            }

            Put(official, first, t);
        }

        Tensor table = output["y_embedder.embedding_table.weight"];
        if (table.Rank != 2 || table.Dim(0) != config.Classes + 1)
        {
            throw Disagree(Block(0, $"{Emb}.class_embedder.embedding_table.weight"), table,
                $"num_embeds_ada_norm = {config.Classes} classes (a table of {config.Classes} + 1 rows, the last the null class)");
        }

        for (int i = 0; i < blocks; i++)
        {
            string o = $"blocks.{i}.";
            Rename(o + "adaLN_modulation.1.weight", Block(i, "norm1.linear.weight"));
            Rename(o + "adaLN_modulation.1.bias", Block(i, "norm1.linear.bias"));
            Put(o + "attn.qkv.weight", Block(i, "attn1.to_q.weight"), ConcatRows(file.Source, i, "weight", Take, d));
            Put(o + "attn.qkv.bias", Block(i, "attn1.to_q.bias"), ConcatRows(file.Source, i, "bias", Take, d));
            Rename(o + "attn.proj.weight", Block(i, "attn1.to_out.0.weight"));
            Rename(o + "attn.proj.bias", Block(i, "attn1.to_out.0.bias"));
            Rename(o + "mlp.fc1.weight", Block(i, "ff.net.0.proj.weight"));
            Rename(o + "mlp.fc1.bias", Block(i, "ff.net.0.proj.bias"));
            Rename(o + "mlp.fc2.weight", Block(i, "ff.net.2.weight"));
            Rename(o + "mlp.fc2.bias", Block(i, "ff.net.2.bias"));
        }

        Rename("final_layer.adaLN_modulation.1.weight", "proj_out_1.weight");
        Rename("final_layer.adaLN_modulation.1.bias", "proj_out_1.bias");
        Tensor final = Take("proj_out_2.weight");
        int outRows = config.PatchSize * config.PatchSize * config.OutChannels;
        if (final.Rank != 2 || final.Dim(0) != outRows)
        {
            throw Disagree("proj_out_2.weight", final, $"out_channels = {config.OutChannels}, so patch_size² × out_channels = {outRows} rows");
        }

        Put("final_layer.linear.weight", "proj_out_2.weight", final);
        Rename("final_layer.linear.bias", "proj_out_2.bias");

        string[] extra = file.Entries.Keys.Where(k => !used.Contains(k)).Order(StringComparer.Ordinal).ToArray();
        if (extra.Length > 0)
        {
            string list = string.Join(", ", extra.Take(5)) + (extra.Length > 5 ? $" and {extra.Length - 5} more" : "");
            throw new DitCacheException($"{file.Source}: unexpected tensor(s) {list}; the weights do not match a diffusers DiT (DiTTransformer2DModel key names)");
        }

        var metadata = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["num_heads"] = config.Heads.ToString(CultureInfo.InvariantCulture),
            ["input_size"] = config.SampleSize.ToString(CultureInfo.InvariantCulture),
        };
        // Later messages (DitWeights: non-finite values) name the official key, so the source says the names were mapped.
        return new TensorFile($"{file.Source} (diffusers names read as facebookresearch/DiT's, docs/models/dit-xl2.md)", output, metadata, dtypes);
    }

    /// <summary>attn.qkv from to_q, to_k, to_v: rows [q | k | v], each [D] or [D, D].</summary>
    private static Tensor ConcatRows(string source, int block, string part, Func<string, Tensor> take, int d)
    {
        Tensor[] qkv = [take(Block(block, $"attn1.to_q.{part}")), take(Block(block, $"attn1.to_k.{part}")), take(Block(block, $"attn1.to_v.{part}"))];
        int[] shape = part == "weight" ? [d, d] : [d];
        foreach ((Tensor t, string name) in qkv.Zip(["to_q", "to_k", "to_v"]))
        {
            if (!t.HasShape(shape))
            {
                throw new DitCacheException($"{source}: tensor '{Block(block, $"attn1.{name}.{part}")}' has shape {t.ShapeText}; expected {Tensor.FormatShape(shape)} for hidden size {d}");
            }
        }

        var data = new float[3 * qkv[0].Length];                                 // (3D, D) or (3D)
        for (int j = 0; j < 3; j++)
        {
            qkv[j].Data.CopyTo(data, j * qkv[0].Length);
        }

        return part == "weight" ? new Tensor(data, 3 * d, d) : new Tensor(data, 3 * d);
    }

    private static string Block(int i, string name) => $"transformer_blocks.{i}.{name}";
}
