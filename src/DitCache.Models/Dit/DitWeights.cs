using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Threading;
using DitCache.Tensors;
using DitCache.Tensors.IO;

namespace DitCache.Models;

/// <summary>A Linear layer's parameters in the PyTorch layout: <see cref="W"/> [out, in], <see cref="B"/> [out].</summary>
/// <param name="W">The weight, row-major [out, in] (x_embedder's conv weight [D, C, p, p] is the same matrix).</param>
/// <param name="B">The bias [out].</param>
public readonly record struct LinearWeights(float[] W, float[] B);

/// <summary>The weights of one DiT block (models.py <c>DiTBlock</c>), named after its modules.</summary>
/// <param name="AdaLn">adaLN_modulation.1: [6D, D], output chunks (shift, scale, gate) for attention then MLP.</param>
/// <param name="Qkv">attn.qkv: [3D, D], rows [q | k | v], heads contiguous inside each.</param>
/// <param name="Proj">attn.proj: [D, D].</param>
/// <param name="Fc1">mlp.fc1: [4D, D].</param>
/// <param name="Fc2">mlp.fc2: [D, 4D].</param>
public sealed record DitBlockWeights(LinearWeights AdaLn, LinearWeights Qkv, LinearWeights Proj, LinearWeights Fc1, LinearWeights Fc2);

/// <summary>
/// All DiT weights and the config read from their shapes. This is the only file where checkpoint key strings appear
/// (CONTRIBUTING.md, "Layout"). Keys follow facebookresearch/DiT <c>models.py</c> (docs/methods.md §6.2).
/// </summary>
public sealed class DitWeights
{
    private DitWeights(DitConfig config, LinearWeights patchEmbed, float[] posEmbed, LinearWeights timeMlp0,
        LinearWeights timeMlp2, float[] labelTable, DitBlockWeights[] blocks, LinearWeights finalAdaLn, LinearWeights finalLinear,
        bool exclusive, WeightPrecision precision)
    {
        Exclusive = exclusive;
        Precision = precision;
        Config = config;
        PatchEmbed = patchEmbed;
        PosEmbed = posEmbed;
        TimeMlp0 = timeMlp0;
        TimeMlp2 = timeMlp2;
        LabelTable = labelTable;
        Blocks = blocks;
        FinalAdaLn = finalAdaLn;
        FinalLinear = finalLinear;
    }

    /// <summary>Width of the sinusoidal timestep features fed to the timestep MLP (models.py frequency_embedding_size).</summary>
    public const int TimeFrequencyDim = 256;

    private int _claimed;

    /// <summary>
    /// Whether these weights belong to the one <see cref="DitModel"/> built from them, whose GEMM then packs the
    /// Linear weights into their own arrays (<see cref="IGemm.PrepareInPlace(float[], int, int)"/>) instead of keeping a second copy:
    /// afterwards those arrays are no longer row-major weights, and a second model built from the same
    /// <see cref="DitWeights"/> is refused. Set by <see cref="FromFile"/>'s <c>exclusive</c> (the CLI's loaders).
    /// </summary>
    public bool Exclusive { get; }

    /// <summary>
    /// How the Linear weights are stored (<c>--weights</c>): float32, or 16 bits a value (<see cref="HalfWeights"/>
    /// arrays, rounded once as they were read) for every Linear but the patch embedding (16·p² inputs: a few
    /// thousand values) — the blocks' qkv, proj, fc1, fc2 and adaLN, the timestep MLP and the final layer. Biases, the
    /// position and label tables stay float32. 16-bit weights are always <see cref="Exclusive"/>: their arrays are only
    /// handles for the one model's GEMM, which widens each value to float32 as it multiplies.
    /// </summary>
    public WeightPrecision Precision { get; }

    /// <summary>The config read from the tensor shapes.</summary>
    public DitConfig Config { get; }

    /// <summary>x_embedder.proj: conv weight [D, C, p, p] (a Linear over im2col rows), bias [D].</summary>
    public LinearWeights PatchEmbed { get; }

    /// <summary>pos_embed [T, D] (stored or regenerated).</summary>
    public float[] PosEmbed { get; }

    /// <summary>t_embedder.mlp.0: [D, 256].</summary>
    public LinearWeights TimeMlp0 { get; }

    /// <summary>t_embedder.mlp.2: [D, D].</summary>
    public LinearWeights TimeMlp2 { get; }

    /// <summary>y_embedder.embedding_table [classes + 1, D]; the last row is the null class.</summary>
    public float[] LabelTable { get; }

    /// <summary>The blocks in order.</summary>
    public IReadOnlyList<DitBlockWeights> Blocks { get; }

    /// <summary>final_layer.adaLN_modulation.1: [2D, D], output chunks (shift, scale).</summary>
    public LinearWeights FinalAdaLn { get; }

    /// <summary>final_layer.linear: [p·p·out, D].</summary>
    public LinearWeights FinalLinear { get; }

    /// <summary>
    /// Reads the config from the tensor shapes and validates every tensor. Heads come from the safetensors metadata
    /// key "num_heads", else from the preset with the same (depth, hidden), else from <paramref name="heads"/>.
    /// The input size comes from pos_embed; when pos_embed is absent, from metadata "input_size"/"image_size" or
    /// <paramref name="inputSize"/>, and the table is regenerated.
    /// </summary>
    /// <exception cref="DitCacheException">A key is missing or unexpected, a shape is wrong, or heads cannot be determined.</exception>
    /// <param name="file">The checkpoint.</param>
    /// <param name="heads">Heads when neither the metadata nor a preset names them (<c>--heads</c>).</param>
    /// <param name="inputSize">The input side when the file has no pos_embed (<c>--input-size</c>).</param>
    /// <param name="exclusive">Give the weights to one model, packed in place (<see cref="Exclusive"/>).</param>
    /// <param name="precision">How to store the Linear weights (<see cref="Precision"/>); 16-bit needs exclusive.</param>
    /// <exception cref="ArgumentException">16-bit weights that are not exclusive.</exception>
    public static DitWeights FromFile(TensorFile file, int? heads = null, int? inputSize = null, bool exclusive = false,
        WeightPrecision precision = WeightPrecision.Float32)
    {
        ArgumentNullException.ThrowIfNull(file);
        if (precision != WeightPrecision.Float32 && !exclusive)
        {
            throw new ArgumentException("16-bit weights are packed in place by the one model that uses them: pass exclusive: true", nameof(precision));
        }

        var reader = new KeyReader(file);
        TensorEntry patchW = reader.TakeRank("x_embedder.proj.weight", 4);
        int hidden = patchW.Shape[0], inChannels = patchW.Shape[1], patch = patchW.Shape[2];
        if (patchW.Shape[3] != patch)
        {
            throw reader.Error("x_embedder.proj.weight", $"has a non-square kernel {patchW.ShapeText}; DiT patches are p x p");
        }

        int depth = 0;
        while (file.Entries.ContainsKey(BlockKey(depth, "attn.qkv.weight")))
        {
            depth++;
        }

        if (depth == 0)
        {
            throw reader.Error(BlockKey(0, "attn.qkv.weight"), "is missing: the file holds no DiT blocks. Is this a DiT checkpoint (facebookresearch/DiT key names)?");
        }

        TensorEntry finalW = reader.TakeRank("final_layer.linear.weight", 2);
        int outTotal = finalW.Shape[0];
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

        TensorEntry labels = reader.TakeRank("y_embedder.embedding_table.weight", 2);
        int numClasses = labels.Shape[0] - 1;
        TensorEntry fc1 = reader.Peek(BlockKey(0, "mlp.fc1.weight"));
        int mlpRatio = fc1.Rank == 2 && hidden > 0 && fc1.Shape[0] % hidden == 0 ? fc1.Shape[0] / hidden : 4;

        int resolvedHeads = ResolveHeads(file, depth, hidden, heads);
        bool regenerate = !file.Entries.ContainsKey("pos_embed");
        int size;
        if (!regenerate)
        {
            TensorEntry pos = reader.Peek("pos_embed");
            int tokens = pos.Rank == 3 ? pos.Shape[1] : -1;
            int grid = tokens > 0 ? (int)Math.Round(Math.Sqrt(tokens)) : -1;
            if (pos.Rank != 3 || pos.Shape[0] != 1 || pos.Shape[2] != hidden || (long)grid * grid != tokens)
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

        // Every key and shape is checked from the file's header, and unexpected keys are refused, before any
        // tensor is read: a checkpoint that is about to be rejected costs no memory. Embedders, final layer, then
        // blocks: a file with several problems reports the first of this order.
        void ExpectLinear(string key, params int[] shape)
        {
            reader.Expect($"{key}.weight", shape);
            reader.Expect($"{key}.bias", shape[0]);
        }

        if (!regenerate)
        {
            reader.Expect("pos_embed", 1, config.Tokens, d);
        }

        ExpectLinear("x_embedder.proj", d, inChannels, patch, patch);
        ExpectLinear("t_embedder.mlp.0", d, TimeFrequencyDim);
        ExpectLinear("t_embedder.mlp.2", d, d);
        reader.Expect("y_embedder.embedding_table.weight", numClasses + 1, d);
        ExpectLinear("final_layer.adaLN_modulation.1", 2 * d, d);
        ExpectLinear("final_layer.linear", outTotal, d);
        for (int i = 0; i < depth; i++)
        {
            ExpectLinear(BlockKey(i, "attn.qkv"), 3 * d, d);
            ExpectLinear(BlockKey(i, "attn.proj"), d, d);
            ExpectLinear(BlockKey(i, "mlp.fc1"), m, d);
            ExpectLinear(BlockKey(i, "mlp.fc2"), d, m);
            ExpectLinear(BlockKey(i, "adaLN_modulation.1"), 6 * d, d);
        }

        reader.RejectExtraKeys();

        // Now the values, one tensor at a time, each checked for non-finite entries as it is read.
        LinearWeights Linear(string key) => new(Weight($"{key}.weight"), reader.Read($"{key}.bias"));
        float[] Weight(string key) => precision == WeightPrecision.Float32 ? reader.Read(key) : HalfWeights.Compact(reader.Read(key), precision, key);

        float[] posEmbed;
        if (regenerate)
        {
            posEmbed = new float[config.Tokens * d];
            Kernels.PosEmbed2D(posEmbed, d, config.Grid);
        }
        else
        {
            posEmbed = reader.Read("pos_embed");
        }

        var patchEmbed = new LinearWeights(reader.Read("x_embedder.proj.weight"), reader.Read("x_embedder.proj.bias"));
        LinearWeights timeMlp0 = Linear("t_embedder.mlp.0");
        LinearWeights timeMlp2 = Linear("t_embedder.mlp.2");
        float[] labelTable = reader.Read("y_embedder.embedding_table.weight");
        LinearWeights finalAdaLn = Linear("final_layer.adaLN_modulation.1");
        LinearWeights finalLinear = Linear("final_layer.linear");
        var blocks = new DitBlockWeights[depth];
        for (int i = 0; i < depth; i++)
        {
            LinearWeights qkv = Linear(BlockKey(i, "attn.qkv"));
            LinearWeights proj = Linear(BlockKey(i, "attn.proj"));
            LinearWeights mlpFc1 = Linear(BlockKey(i, "mlp.fc1"));
            LinearWeights mlpFc2 = Linear(BlockKey(i, "mlp.fc2"));
            LinearWeights adaLn = Linear(BlockKey(i, "adaLN_modulation.1"));
            blocks[i] = new DitBlockWeights(adaLn, qkv, proj, mlpFc1, mlpFc2);
            if (precision != WeightPrecision.Float32)
            {
                // The block's float32 arrays are garbage now (only their 16-bit copies are kept): collecting them here,
                // not whenever the runtime would, keeps the loading peak near the 16-bit bytes (DiT-XL/2 with FoCa,
                // 2 steps: 2.18 GB against 2.39 GB without; docs/models/dit-xl2.md#memory). A non-compacting collection
                // of a heap of a few hundred large arrays takes milliseconds.
                GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: false);
            }
        }

        return new DitWeights(config, patchEmbed, posEmbed, timeMlp0, timeMlp2, labelTable, blocks, finalAdaLn, finalLinear, exclusive, precision);
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

    /// <summary>Claims <see cref="Exclusive"/> weights for the model being built; false when a model already has them.</summary>
    internal bool TryClaim() => Interlocked.Exchange(ref _claimed, 1) == 0;

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

    /// <summary>
    /// Checks keys and shapes from the file's header (<see cref="TensorFile.Entries"/>), tracks which keys were
    /// used, and reads values only through <see cref="Read"/>.
    /// </summary>
    private sealed class KeyReader(TensorFile file)
    {
        private readonly HashSet<string> _used = new(StringComparer.Ordinal);

        public TensorEntry Peek(string key) =>
            file.Entries.TryGetValue(key, out TensorEntry? t) ? t : throw Error(key, "is missing; the checkpoint does not match the DiT architecture (facebookresearch/DiT key names)");

        public TensorEntry TakeRank(string key, int rank)
        {
            TensorEntry t = Peek(key);
            if (t.Rank != rank)
            {
                throw Error(key, $"has shape {t.ShapeText}; expected rank {rank}");
            }

            _used.Add(key);
            return t;
        }

        public void Expect(string key, params int[] shape)
        {
            TensorEntry t = Peek(key);
            _used.Add(key);
            if (!t.HasShape(shape))
            {
                throw Error(key, $"has shape {t.ShapeText}; expected {Tensor.FormatShape(shape)} for this DiT");
            }
        }

        public void RejectExtraKeys()
        {
            string[] extra = file.Entries.Keys.Where(k => !_used.Contains(k)).OrderBy(k => k, StringComparer.Ordinal).ToArray();
            if (extra.Length > 0)
            {
                string list = string.Join(", ", extra.Take(5).Select(TensorFile.Printable)) + (extra.Length > 5 ? $" and {extra.Length - 5} more" : "");
                throw new DitCacheException($"{file.Source}: unexpected tensor(s) {list}; the checkpoint does not match the DiT architecture (facebookresearch/DiT key names)");
            }
        }

        /// <summary>Reads an expected tensor and checks that it holds only finite values (one vectorised pass).</summary>
        public float[] Read(string key)
        {
            Tensor t = file.Read(key);
            if (t.FirstNonFinite() is { } where)
            {
                throw Error(key, $"holds {where}: a DiT needs finite weights; the file is corrupt or was saved from a diverged run, so re-download or re-export it");
            }

            return t.Data;
        }

        public DitCacheException Error(string key, string problem) => new($"{file.Source}: tensor '{key}' {problem}");
    }
}
