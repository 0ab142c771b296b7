using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using DitCache.Tensors;
using DitCache.Tensors.IO;

namespace DitCache.Models;

/// <summary>The weights of one DiT block, PyTorch layouts (Linear weights are [out, in]).</summary>
public sealed class DitBlockWeights
{
    internal DitBlockWeights(float[] qkvW, float[] qkvB, float[] projW, float[] projB, float[] fc1W, float[] fc1B,
        float[] fc2W, float[] fc2B, float[] adaLnW, float[] adaLnB)
    {
        QkvW = qkvW;
        QkvB = qkvB;
        ProjW = projW;
        ProjB = projB;
        Fc1W = fc1W;
        Fc1B = fc1B;
        Fc2W = fc2W;
        Fc2B = fc2B;
        AdaLnW = adaLnW;
        AdaLnB = adaLnB;
    }

    /// <summary>attn.qkv weight [3D, D], rows [q | k | v], heads contiguous inside each.</summary>
    public float[] QkvW { get; }

    /// <summary>attn.qkv bias [3D].</summary>
    public float[] QkvB { get; }

    /// <summary>attn.proj weight [D, D].</summary>
    public float[] ProjW { get; }

    /// <summary>attn.proj bias [D].</summary>
    public float[] ProjB { get; }

    /// <summary>mlp.fc1 weight [4D, D].</summary>
    public float[] Fc1W { get; }

    /// <summary>mlp.fc1 bias [4D].</summary>
    public float[] Fc1B { get; }

    /// <summary>mlp.fc2 weight [D, 4D].</summary>
    public float[] Fc2W { get; }

    /// <summary>mlp.fc2 bias [D].</summary>
    public float[] Fc2B { get; }

    /// <summary>adaLN_modulation.1 weight [6D, D].</summary>
    public float[] AdaLnW { get; }

    /// <summary>adaLN_modulation.1 bias [6D].</summary>
    public float[] AdaLnB { get; }
}

/// <summary>
/// All DiT weights and the config read from their shapes. This is the only file where checkpoint key strings appear
/// (STYLE.md rule 2). Keys follow facebookresearch/DiT <c>models.py</c> (METHODS.md section 6.2).
/// </summary>
public sealed class DitWeights
{
    private DitWeights(DitConfig config, float[][] parts, DitBlockWeights[] blocks, bool posEmbedRegenerated)
    {
        Config = config;
        PatchW = parts[0];
        PatchB = parts[1];
        PosEmbed = parts[2];
        TimeW0 = parts[3];
        TimeB0 = parts[4];
        TimeW2 = parts[5];
        TimeB2 = parts[6];
        LabelTable = parts[7];
        FinalAdaLnW = parts[8];
        FinalAdaLnB = parts[9];
        FinalW = parts[10];
        FinalB = parts[11];
        Blocks = blocks;
        PosEmbedRegenerated = posEmbedRegenerated;
    }

    /// <summary>Width of the sinusoidal timestep features fed to the timestep MLP (models.py frequency_embedding_size).</summary>
    public const int TimeFrequencyDim = 256;

    /// <summary>The config read from the tensor shapes.</summary>
    public DitConfig Config { get; }

    /// <summary>x_embedder.proj weight [D, C, p, p].</summary>
    public float[] PatchW { get; }

    /// <summary>x_embedder.proj bias [D].</summary>
    public float[] PatchB { get; }

    /// <summary>pos_embed [T, D] (stored or regenerated).</summary>
    public float[] PosEmbed { get; }

    /// <summary>Whether the checkpoint had no pos_embed and the sin-cos table was regenerated.</summary>
    public bool PosEmbedRegenerated { get; }

    /// <summary>t_embedder.mlp.0 weight [D, 256].</summary>
    public float[] TimeW0 { get; }

    /// <summary>t_embedder.mlp.0 bias [D].</summary>
    public float[] TimeB0 { get; }

    /// <summary>t_embedder.mlp.2 weight [D, D].</summary>
    public float[] TimeW2 { get; }

    /// <summary>t_embedder.mlp.2 bias [D].</summary>
    public float[] TimeB2 { get; }

    /// <summary>y_embedder.embedding_table [classes + 1, D]; the last row is the null class.</summary>
    public float[] LabelTable { get; }

    /// <summary>The blocks in order.</summary>
    public IReadOnlyList<DitBlockWeights> Blocks { get; }

    /// <summary>final_layer.adaLN_modulation.1 weight [2D, D].</summary>
    public float[] FinalAdaLnW { get; }

    /// <summary>final_layer.adaLN_modulation.1 bias [2D].</summary>
    public float[] FinalAdaLnB { get; }

    /// <summary>final_layer.linear weight [p·p·out, D].</summary>
    public float[] FinalW { get; }

    /// <summary>final_layer.linear bias [p·p·out].</summary>
    public float[] FinalB { get; }

    /// <summary>Parameter count (the stored pos_embed, a frozen buffer in DiT, is not counted).</summary>
    public long ParameterCount =>
        new[] { PatchW, PatchB, TimeW0, TimeB0, TimeW2, TimeB2, LabelTable, FinalAdaLnW, FinalAdaLnB, FinalW, FinalB }.Sum(a => (long)a.Length)
        + Blocks.Sum(b => (long)b.QkvW.Length + b.QkvB.Length + b.ProjW.Length + b.ProjB.Length + b.Fc1W.Length
            + b.Fc1B.Length + b.Fc2W.Length + b.Fc2B.Length + b.AdaLnW.Length + b.AdaLnB.Length);

    /// <summary>
    /// Reads the config from the tensor shapes and validates every tensor. Heads come from the safetensors metadata
    /// key "num_heads", else from the preset with the same (depth, hidden), else from <paramref name="heads"/>.
    /// The input size comes from pos_embed; when pos_embed is absent, from metadata "input_size"/"image_size" or
    /// <paramref name="inputSize"/>, and the table is regenerated.
    /// </summary>
    /// <exception cref="DitCacheException">A key is missing or unexpected, a shape is wrong, or heads cannot be determined.</exception>
    public static DitWeights FromFile(TensorFile file, int? heads = null, int? inputSize = null)
    {
        var reader = new KeyReader(file);
        Tensor patchW = reader.TakeRank("x_embedder.proj.weight", 4);
        int hidden = patchW.Dim(0), inChannels = patchW.Dim(1), patch = patchW.Dim(2);
        if (patchW.Dim(3) != patch)
        {
            throw reader.Error("x_embedder.proj.weight", $"has a non-square kernel {patchW.ShapeText}; DiT patches are p x p");
        }

        int depth = 0;
        while (file.Tensors.ContainsKey(BlockKey(depth, "attn.qkv.weight")))
        {
            depth++;
        }

        if (depth == 0)
        {
            throw reader.Error(BlockKey(0, "attn.qkv.weight"), "is missing: the file holds no DiT blocks. Is this a DiT checkpoint (facebookresearch/DiT key names)?");
        }

        Tensor finalW = reader.TakeRank("final_layer.linear.weight", 2);
        int outTotal = finalW.Dim(0);
        bool learnSigma;
        if (outTotal == patch * patch * inChannels * 2)
        {
            learnSigma = true;
        }
        else if (outTotal == patch * patch * inChannels)
        {
            learnSigma = false;
        }
        else
        {
            throw reader.Error("final_layer.linear.weight", $"has {outTotal} rows; expected p*p*C = {patch * patch * inChannels} or twice that (learn_sigma)");
        }

        Tensor labels = reader.TakeRank("y_embedder.embedding_table.weight", 2);
        int numClasses = labels.Dim(0) - 1;
        Tensor fc1 = reader.Peek(BlockKey(0, "mlp.fc1.weight"));
        int mlpRatio = fc1.Rank == 2 && fc1.Dim(0) % hidden == 0 ? fc1.Dim(0) / hidden : 4;

        int resolvedHeads = ResolveHeads(file, depth, hidden, heads);
        bool regenerate = !file.Tensors.ContainsKey("pos_embed");
        int size;
        if (!regenerate)
        {
            Tensor pos = reader.Peek("pos_embed");
            int tokens = pos.Rank == 3 ? pos.Dim(1) : -1;
            int grid = tokens > 0 ? (int)Math.Round(Math.Sqrt(tokens)) : -1;
            if (pos.Rank != 3 || pos.Dim(0) != 1 || pos.Dim(2) != hidden || grid * grid != tokens)
            {
                throw reader.Error("pos_embed", $"has shape {pos.ShapeText}; expected [1, G*G, {hidden}]");
            }

            size = grid * patch;
        }
        else
        {
            size = inputSize ?? MetadataInt(file, "input_size") ?? MetadataInt(file, "image_size")
                ?? throw new DitCacheException($"{file.Source}: no pos_embed and no input size; pass --input-size (the model input side, image/8 for latent DiTs)", exitCode: 2);
        }

        var config = new DitConfig(depth, hidden, resolvedHeads, patch, size, inChannels, learnSigma, numClasses, mlpRatio);
        config.Validate();
        int d = hidden, m = config.MlpHidden;

        float[] posEmbed;
        if (regenerate)
        {
            posEmbed = new float[config.Tokens * d];
            Kernels.PosEmbed2D(posEmbed, d, config.Grid);
        }
        else
        {
            posEmbed = reader.Take("pos_embed", 1, config.Tokens, d).Data;
        }

        float[][] parts =
        [
            reader.Check("x_embedder.proj.weight", patchW, d, inChannels, patch, patch).Data,
            reader.Take("x_embedder.proj.bias", d).Data,
            posEmbed,
            reader.Take("t_embedder.mlp.0.weight", d, TimeFrequencyDim).Data,
            reader.Take("t_embedder.mlp.0.bias", d).Data,
            reader.Take("t_embedder.mlp.2.weight", d, d).Data,
            reader.Take("t_embedder.mlp.2.bias", d).Data,
            reader.Check("y_embedder.embedding_table.weight", labels, numClasses + 1, d).Data,
            reader.Take("final_layer.adaLN_modulation.1.weight", 2 * d, d).Data,
            reader.Take("final_layer.adaLN_modulation.1.bias", 2 * d).Data,
            reader.Check("final_layer.linear.weight", finalW, outTotal, d).Data,
            reader.Take("final_layer.linear.bias", outTotal).Data,
        ];

        var blocks = new DitBlockWeights[depth];
        for (int i = 0; i < depth; i++)
        {
            blocks[i] = new DitBlockWeights(
                reader.Take(BlockKey(i, "attn.qkv.weight"), 3 * d, d).Data,
                reader.Take(BlockKey(i, "attn.qkv.bias"), 3 * d).Data,
                reader.Take(BlockKey(i, "attn.proj.weight"), d, d).Data,
                reader.Take(BlockKey(i, "attn.proj.bias"), d).Data,
                reader.Take(BlockKey(i, "mlp.fc1.weight"), m, d).Data,
                reader.Take(BlockKey(i, "mlp.fc1.bias"), m).Data,
                reader.Take(BlockKey(i, "mlp.fc2.weight"), d, m).Data,
                reader.Take(BlockKey(i, "mlp.fc2.bias"), d).Data,
                reader.Take(BlockKey(i, "adaLN_modulation.1.weight"), 6 * d, d).Data,
                reader.Take(BlockKey(i, "adaLN_modulation.1.bias"), 6 * d).Data);
        }

        reader.RejectExtraKeys();
        return new DitWeights(config, parts, blocks, regenerate);
    }

    /// <summary>
    /// Random weights of <paramref name="config"/>'s shapes under the facebookresearch/DiT key names (every entry
    /// from N(0, <paramref name="std"/>) by a seeded generator, pos_embed the sin-cos table), for benchmarks and
    /// tests that need a model of a given size but not a trained one.
    /// </summary>
    public static TensorFile RandomFile(DitConfig config, int seed = 0, float std = 0.02f)
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        int d = config.Hidden, m = config.MlpHidden, p = config.Patch, c = config.InChannels;
        var random = new Random(seed);
        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        void Add(string key, params int[] shape)
        {
            Tensor t = Tensor.Zeros(shape);
            for (int i = 0; i < t.Length; i++)
            {
                double u1 = 1.0 - random.NextDouble(), u2 = random.NextDouble();
                t.Data[i] = (float)(std * Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2.0 * Math.PI * u2));
            }

            tensors[key] = t;
        }

        Add("x_embedder.proj.weight", d, c, p, p);
        Add("x_embedder.proj.bias", d);
        Add("t_embedder.mlp.0.weight", d, TimeFrequencyDim);
        Add("t_embedder.mlp.0.bias", d);
        Add("t_embedder.mlp.2.weight", d, d);
        Add("t_embedder.mlp.2.bias", d);
        Add("y_embedder.embedding_table.weight", config.NumClasses + 1, d);
        for (int i = 0; i < config.Depth; i++)
        {
            Add(BlockKey(i, "attn.qkv.weight"), 3 * d, d);
            Add(BlockKey(i, "attn.qkv.bias"), 3 * d);
            Add(BlockKey(i, "attn.proj.weight"), d, d);
            Add(BlockKey(i, "attn.proj.bias"), d);
            Add(BlockKey(i, "mlp.fc1.weight"), m, d);
            Add(BlockKey(i, "mlp.fc1.bias"), m);
            Add(BlockKey(i, "mlp.fc2.weight"), d, m);
            Add(BlockKey(i, "mlp.fc2.bias"), d);
            Add(BlockKey(i, "adaLN_modulation.1.weight"), 6 * d, d);
            Add(BlockKey(i, "adaLN_modulation.1.bias"), 6 * d);
        }

        Add("final_layer.adaLN_modulation.1.weight", 2 * d, d);
        Add("final_layer.adaLN_modulation.1.bias", 2 * d);
        Add("final_layer.linear.weight", p * p * config.OutChannels, d);
        Add("final_layer.linear.bias", p * p * config.OutChannels);
        var pos = Tensor.Zeros(1, config.Tokens, d);
        Kernels.PosEmbed2D(pos.Data, d, config.Grid);
        tensors["pos_embed"] = pos;
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["num_heads"] = config.Heads.ToString(CultureInfo.InvariantCulture),
        };
        var dtypes = tensors.Keys.ToDictionary(k => k, _ => StoredDType.F32, StringComparer.Ordinal);
        return new TensorFile($"random {config.Name} (seed {seed})", tensors, metadata, dtypes);
    }

    private static string BlockKey(int block, string name) => $"blocks.{block}.{name}";

    private static int ResolveHeads(TensorFile file, int depth, int hidden, int? heads)
    {
        int? fromMetadata = MetadataInt(file, "num_heads");
        if (fromMetadata is int h)
        {
            if (heads is int given && given != h)
            {
                throw new DitCacheException($"--heads {given} contradicts {file.Source} metadata num_heads={h}; drop --heads", exitCode: 2);
            }

            return h;
        }

        return DitConfig.PresetHeads(depth, hidden) ?? heads
            ?? throw new DitCacheException(
                $"{file.Source}: cannot tell the number of attention heads (no \"num_heads\" metadata, and depth {depth} / hidden {hidden} match no DiT preset); pass --heads N",
                exitCode: 2);
    }

    private static int? MetadataInt(TensorFile file, string key)
    {
        if (!file.Metadata.TryGetValue(key, out string? raw))
        {
            return null;
        }

        if (!int.TryParse(raw, NumberStyles.Integer, CultureInfo.InvariantCulture, out int value) || value < 1)
        {
            throw new DitCacheException($"{file.Source}: metadata {key}=\"{raw}\" is not a positive integer; fix the metadata or re-export the model");
        }

        return value;
    }

    /// <summary>Takes tensors by key with shape checks, and tracks which keys were used.</summary>
    private sealed class KeyReader(TensorFile file)
    {
        private readonly HashSet<string> _used = new(StringComparer.Ordinal);

        public Tensor Peek(string key) =>
            file.Tensors.TryGetValue(key, out Tensor? t) ? t : throw Error(key, "is missing; the checkpoint does not match the DiT architecture (facebookresearch/DiT key names)");

        public Tensor TakeRank(string key, int rank)
        {
            Tensor t = Peek(key);
            if (t.Rank != rank)
            {
                throw Error(key, $"has shape {t.ShapeText}; expected rank {rank}");
            }

            _used.Add(key);
            return t;
        }

        public Tensor Take(string key, params int[] shape)
        {
            Tensor t = Peek(key);
            _used.Add(key);
            return Check(key, t, shape);
        }

        public Tensor Check(string key, Tensor t, params int[] shape)
        {
            _used.Add(key);
            if (!t.HasShape(shape))
            {
                throw Error(key, $"has shape {t.ShapeText}; expected {Tensor.FormatShape(shape)} for this DiT");
            }

            return t;
        }

        public void RejectExtraKeys()
        {
            string[] extra = file.Tensors.Keys.Where(k => !_used.Contains(k)).OrderBy(k => k, StringComparer.Ordinal).ToArray();
            if (extra.Length > 0)
            {
                string list = string.Join(", ", extra.Take(5)) + (extra.Length > 5 ? $" and {extra.Length - 5} more" : "");
                throw new DitCacheException($"{file.Source}: unexpected tensor(s) {list}; the checkpoint does not match the DiT architecture (facebookresearch/DiT key names)");
            }
        }

        public DitCacheException Error(string key, string problem) => new($"{file.Source}: tensor '{key}' {problem}");
    }
}
