using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using DitCache.Tensors;
using DitCache.Tensors.IO;

namespace DitCache.Models;

/// <summary>A convolution's parameters in the PyTorch layout: <see cref="W"/> [out, in, k, k], <see cref="B"/> [out].</summary>
/// <param name="W">The weight, row-major [out, in, k, k] (a Linear's [out, in] is the same matrix for k = 1).</param>
/// <param name="B">The bias [out].</param>
/// <param name="In">Input channels.</param>
/// <param name="Out">Output channels.</param>
public readonly record struct ConvWeights(float[] W, float[] B, int In, int Out);

/// <summary>A GroupNorm's affine parameters, each [channels].</summary>
/// <param name="Gamma">The scale (PyTorch <c>weight</c>).</param>
/// <param name="Beta">The shift (PyTorch <c>bias</c>).</param>
public readonly record struct NormWeights(float[] Gamma, float[] Beta);

/// <summary>One ResNet block (diffusers <c>ResnetBlock2D</c>, ldm <c>ResnetBlock</c>).</summary>
/// <param name="Norm1">norm1 over the input channels.</param>
/// <param name="Conv1">conv1, 3x3, in → out.</param>
/// <param name="Norm2">norm2 over the output channels.</param>
/// <param name="Conv2">conv2, 3x3, out → out.</param>
/// <param name="Shortcut">The 1x1 conv_shortcut (ldm nin_shortcut) when the channels change, else null.</param>
public sealed record VaeResnetWeights(NormWeights Norm1, ConvWeights Conv1, NormWeights Norm2, ConvWeights Conv2, ConvWeights? Shortcut);

/// <summary>The mid block's single-head attention over pixels.</summary>
/// <param name="Norm">group_norm (ldm norm).</param>
/// <param name="Qkv">to_q, to_k, to_v stacked: weight [3C, C] rows [q | k | v], bias [3C].</param>
/// <param name="Out">to_out.0 (ldm proj_out) as a 1x1 conv [C, C].</param>
public sealed record VaeAttentionWeights(NormWeights Norm, ConvWeights Qkv, ConvWeights Out);

/// <summary>One decoder up block (diffusers <c>UpDecoderBlock2D</c>), coarsest first.</summary>
/// <param name="Resnets">layers_per_block + 1 ResNet blocks.</param>
/// <param name="Upsample">The 3x3 conv after the nearest x2 upsampling, or null for the last block.</param>
public sealed record VaeUpBlockWeights(IReadOnlyList<VaeResnetWeights> Resnets, ConvWeights? Upsample);

/// <summary>
/// The weights of a VAE decoder (diffusers <c>AutoencoderKL</c>, decoder half) and its <see cref="VaeConfig"/>. This is
/// the only file where VAE checkpoint key strings appear (CONTRIBUTING.md, "Layout"). Three namings load
/// (docs/models/vae.md): diffusers' current names, diffusers' legacy attention names (query/key/value/proj_attn), and
/// the original CompVis/ldm names (optionally under <c>first_stage_model.</c>, as a whole latent-diffusion checkpoint
/// holds them). Encoder tensors (<c>encoder.*</c>, <c>quant_conv.*</c>) and, in an ldm checkpoint, the training loss
/// (<c>loss.*</c>) are ignored; any other key the decoder does not use is an error, so a config that does not match
/// the file is caught.
/// </summary>
public sealed class VaeWeights
{
    private VaeWeights(VaeConfig config, string naming, ConvWeights? postQuantConv, ConvWeights convIn, VaeResnetWeights midResnet1,
        VaeAttentionWeights? midAttention, VaeResnetWeights midResnet2, VaeUpBlockWeights[] upBlocks, NormWeights normOut, ConvWeights convOut)
    {
        Config = config;
        Naming = naming;
        PostQuantConv = postQuantConv;
        ConvIn = convIn;
        MidResnet1 = midResnet1;
        MidAttention = midAttention;
        MidResnet2 = midResnet2;
        UpBlocks = upBlocks;
        NormOut = normOut;
        ConvOut = convOut;
    }

    /// <summary>The architecture.</summary>
    public VaeConfig Config { get; }

    /// <summary>Which naming the file used: "diffusers", "diffusers (legacy attention names)" or "CompVis/ldm".</summary>
    public string Naming { get; }

    /// <summary>post_quant_conv, 1x1, latent → latent, or null when the config has none.</summary>
    public ConvWeights? PostQuantConv { get; }

    /// <summary>decoder.conv_in, 3x3, latent → mid channels.</summary>
    public ConvWeights ConvIn { get; }

    /// <summary>The mid block's first ResNet block.</summary>
    public VaeResnetWeights MidResnet1 { get; }

    /// <summary>The mid block's attention, or null when the config has none.</summary>
    public VaeAttentionWeights? MidAttention { get; }

    /// <summary>The mid block's second ResNet block.</summary>
    public VaeResnetWeights MidResnet2 { get; }

    /// <summary>The up blocks in the order they run (diffusers up_blocks order, coarsest first).</summary>
    public IReadOnlyList<VaeUpBlockWeights> UpBlocks { get; }

    /// <summary>decoder.conv_norm_out (ldm norm_out).</summary>
    public NormWeights NormOut { get; }

    /// <summary>decoder.conv_out, 3x3, finest channels → image channels.</summary>
    public ConvWeights ConvOut { get; }

    /// <summary>
    /// Loads a VAE from <paramref name="path"/>: a diffusers folder (<c>config.json</c> and
    /// <c>diffusion_pytorch_model.safetensors</c> or <c>.bin</c>; a pipeline folder with a <c>vae/</c> subfolder also
    /// works), or a weights file (safetensors, or a torch.save <c>.pt</c>/<c>.ckpt</c>/<c>.bin</c>). For a file, a
    /// <c>config.json</c> beside it whose _class_name is AutoencoderKL is used; otherwise the architecture is read from
    /// the weight shapes (<see cref="InferConfig"/>).
    /// </summary>
    /// <exception cref="DitCacheException">No weights are found, the file cannot be read, or it does not match.</exception>
    public static VaeWeights Load(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        string? configPath = null;
        string weightsPath = path;
        if (Directory.Exists(path))
        {
            string dir = File.Exists(Path.Combine(path, "config.json")) || !Directory.Exists(Path.Combine(path, "vae")) ? path : Path.Combine(path, "vae");
            string[] candidates = ["diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin"];
            weightsPath = candidates.Select(c => Path.Combine(dir, c)).FirstOrDefault(File.Exists)
                ?? throw new DitCacheException(
                    $"{path}: no VAE weights in this folder (looked for {string.Join(" and ", candidates)}{(dir == path ? "" : " under vae/")}); pass the weights file or a diffusers vae folder");
            configPath = Path.Combine(dir, "config.json");
            if (!File.Exists(configPath))
            {
                configPath = null;
            }
        }
        else
        {
            string sibling = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path)) ?? ".", "config.json");
            if (File.Exists(sibling) && File.ReadAllText(sibling).Contains("\"AutoencoderKL\"", StringComparison.Ordinal))
            {
                configPath = sibling;
            }
        }

        TensorFile file = Checkpoint.Load(weightsPath);
        return configPath is null ? FromFile(file) : FromFile(file, VaeConfig.FromJsonFile(configPath));
    }

    /// <summary>
    /// Builds the weights from <paramref name="file"/> (any of the three namings), checking every tensor against
    /// <paramref name="config"/>, or against the config read from the shapes (<see cref="InferConfig"/>) when it is null.
    /// </summary>
    /// <exception cref="DitCacheException">A key is missing or unexpected, a shape disagrees with the config, or a value is not finite.</exception>
    public static VaeWeights FromFile(TensorFile file, VaeConfig? config = null)
    {
        ArgumentNullException.ThrowIfNull(file);
        var reader = new KeyReader(file);
        Names names = reader.DetectNaming(config?.Levels);
        config ??= InferConfig(file);
        config.Validate(file.Source);

        int latent = config.LatentChannels, mid = config.MidChannels;
        ConvWeights? postQuant = null;
        if (config.UsePostQuantConv)
        {
            postQuant = reader.Conv(names.PostQuantConv, latent, latent, 1);
        }
        else if (reader.Has(names.PostQuantConv + ".weight"))
        {
            throw reader.Error(names.PostQuantConv + ".weight", "is present but the config says use_post_quant_conv false; fix the config or drop the tensor");
        }

        ConvWeights convIn = reader.Conv(names.ConvIn, latent, mid, 3);
        VaeResnetWeights mid1 = reader.Resnet(names.MidResnet(0), mid, mid);
        VaeAttentionWeights? attention = null;
        if (config.MidBlockAddAttention)
        {
            NormWeights norm = reader.Norm(names.MidAttention(AttentionPart.Norm), mid);
            ConvWeights q = reader.Conv(names.MidAttention(AttentionPart.Q), mid, mid, 1);
            ConvWeights k = reader.Conv(names.MidAttention(AttentionPart.K), mid, mid, 1);
            ConvWeights v = reader.Conv(names.MidAttention(AttentionPart.V), mid, mid, 1);
            ConvWeights o = reader.Conv(names.MidAttention(AttentionPart.Out), mid, mid, 1);
            var qkv = new ConvWeights([.. q.W, .. k.W, .. v.W], [.. q.B, .. k.B, .. v.B], mid, 3 * mid);
            attention = new VaeAttentionWeights(norm, qkv, o);
        }

        VaeResnetWeights mid2 = reader.Resnet(names.MidResnet(1), mid, mid);
        var upBlocks = new VaeUpBlockWeights[config.Levels];
        int prev = mid;
        for (int j = 0; j < config.Levels; j++)
        {
            int cout = config.BlockOutChannels[config.Levels - 1 - j];
            var resnets = new VaeResnetWeights[config.ResnetsPerUpBlock];
            for (int m = 0; m < resnets.Length; m++)
            {
                resnets[m] = reader.Resnet(names.UpResnet(j, m), m == 0 ? prev : cout, cout);
            }

            ConvWeights? upsample = j < config.Levels - 1 ? reader.Conv(names.Upsample(j), cout, cout, 3) : null;
            upBlocks[j] = new VaeUpBlockWeights(resnets, upsample);
            prev = cout;
        }

        NormWeights normOut = reader.Norm(names.NormOut, config.BlockOutChannels[0]);
        ConvWeights convOut = reader.Conv(names.ConvOut, config.BlockOutChannels[0], config.OutChannels, 3);
        reader.RejectExtraKeys(names);
        return new VaeWeights(config, names.Description, postQuant, convIn, mid1, attention, mid2, upBlocks, normOut, convOut);
    }

    /// <summary>
    /// Reads the architecture of a bare weights file (no config.json) from its tensor shapes: block_out_channels from
    /// the up blocks' conv2 weights, layers_per_block from the number of ResNet blocks in an up block, latent and
    /// output channels from conv_in and conv_out, post_quant_conv and the mid attention from their presence. Two values
    /// are not in any shape: the GroupNorm groups (<paramref name="normNumGroups"/>, 32 in every SD-family VAE) and the
    /// scaling factor, which defaults to 0.18215 (the SD VAE, as DiT's sample.py hard-codes it) only for 4 latent
    /// channels.
    /// </summary>
    /// <exception cref="DitCacheException">The file holds no decoder, or it has other than 4 latent channels and no scaling factor was given.</exception>
    public static VaeConfig InferConfig(TensorFile file, int normNumGroups = 32, float? scalingFactor = null, float shiftFactor = 0f)
    {
        ArgumentNullException.ThrowIfNull(file);
        var reader = new KeyReader(file);
        Names names = reader.DetectNaming(null);
        int levels = 0;
        while (reader.Has(names.UpBlockProbe(levels)))
        {
            levels++;
        }

        if (levels == 0)
        {
            throw reader.Error(names.UpBlockProbe(0), "is missing: the file has no decoder up blocks");
        }

        // CompVis numbers up blocks finest first, so its block N is diffusers' up block levels − 1 − N.
        var channels = new int[levels];
        int layers = 0;
        for (int j = 0; j < levels; j++)
        {
            channels[levels - 1 - j] = reader.Peek(names.UpResnetTensor(j, 0, "conv2.weight", levels)).Shape[0];
        }

        while (reader.Has(names.UpResnetTensor(0, layers, "conv1.weight", levels)))
        {
            layers++;
        }

        TensorEntry convIn = reader.Peek(names.ConvIn + ".weight");
        TensorEntry convOut = reader.Peek(names.ConvOut + ".weight");
        int latent = convIn.Rank == 4 ? convIn.Shape[1] : throw reader.Error(names.ConvIn + ".weight", $"has shape {convIn.ShapeText}; expected [C, latent, 3, 3]");
        float scale = scalingFactor ?? (latent == 4 ? VaeConfig.SdScalingFactor : throw new DitCacheException(
            $"{file.Source}: a {latent}-channel VAE without a config.json; its scaling factor is not in the weights, so put the model's diffusers config.json beside the file (or pass the folder)"));
        return new VaeConfig(channels, layers - 1, normNumGroups, latent, convOut.Shape[0], scale, shiftFactor,
            reader.Has(names.PostQuantConv + ".weight"), reader.Has(names.MidAttention(AttentionPart.Q) + ".weight"));
    }

    /// <summary>
    /// Weights of <paramref name="config"/>'s shapes under the current diffusers names, every value from an integer
    /// hash of its key and index (docs/models/vae.md): <c>u = (lowbias32(i·0x9E3779B1 + fnv1a(key)) &gt;&gt; 8) / 2²³ − 1</c>,
    /// conv and linear weights <c>u·√(3/fan_in)</c>, biases <c>0.1·u</c>, GroupNorm weights <c>1 + 0.5·u</c> and biases
    /// <c>0.5·u</c>, each computed in double and rounded once to float32. tools/reference/vae_reference.py builds the
    /// same values, so PyTorch and DitCache decode with identical random weights of any size (tests and benchmarks)
    /// without a file between them.
    /// </summary>
    public static TensorFile HashedFile(VaeConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        Names names = new DiffusersNames("", Legacy: false);
        void Conv(string module, int cin, int cout, int k, bool linear = false)
        {
            tensors[module + ".weight"] = Hashed(module + ".weight", linear ? [cout, cin] : [cout, cin, k, k], HashKind.Weight);
            tensors[module + ".bias"] = Hashed(module + ".bias", [cout], HashKind.Bias);
        }

        void Norm(string module, int c)
        {
            tensors[module + ".weight"] = Hashed(module + ".weight", [c], HashKind.NormWeight);
            tensors[module + ".bias"] = Hashed(module + ".bias", [c], HashKind.NormBias);
        }

        void Resnet(Func<string, string> key, int cin, int cout)
        {
            Norm(key("norm1"), cin);
            Conv(key("conv1"), cin, cout, 3);
            Norm(key("norm2"), cout);
            Conv(key("conv2"), cout, cout, 3);
            if (cin != cout)
            {
                Conv(key("conv_shortcut"), cin, cout, 1);
            }
        }

        int latent = config.LatentChannels, mid = config.MidChannels;
        if (config.UsePostQuantConv)
        {
            Conv(names.PostQuantConv, latent, latent, 1);
        }

        Conv(names.ConvIn, latent, mid, 3);
        Resnet(names.MidResnet(0), mid, mid);
        if (config.MidBlockAddAttention)
        {
            Norm(names.MidAttention(AttentionPart.Norm), mid);
            foreach (AttentionPart part in (ReadOnlySpan<AttentionPart>)[AttentionPart.Q, AttentionPart.K, AttentionPart.V, AttentionPart.Out])
            {
                Conv(names.MidAttention(part), mid, mid, 1, linear: true);
            }
        }

        Resnet(names.MidResnet(1), mid, mid);
        int prev = mid;
        for (int j = 0; j < config.Levels; j++)
        {
            int cout = config.BlockOutChannels[config.Levels - 1 - j];
            for (int m = 0; m < config.ResnetsPerUpBlock; m++)
            {
                Resnet(names.UpResnet(j, m), m == 0 ? prev : cout, cout);
            }

            if (j < config.Levels - 1)
            {
                Conv(names.Upsample(j), cout, cout, 3);
            }

            prev = cout;
        }

        Norm(names.NormOut, config.BlockOutChannels[0]);
        Conv(names.ConvOut, config.BlockOutChannels[0], config.OutChannels, 3);
        var dtypes = tensors.Keys.ToDictionary(k => k, _ => StoredDType.F32, StringComparer.Ordinal);
        return new TensorFile($"hashed VAE ({config})", tensors, new Dictionary<string, string>(), dtypes);
    }

    private enum HashKind
    {
        Weight,
        Bias,
        NormWeight,
        NormBias,
    }

    private static Tensor Hashed(string key, int[] shape, HashKind kind)
    {
        Tensor t = Tensor.Zeros(shape);
        uint seed = HashedUniform.Seed(key);
        double fanScale = Math.Sqrt(3.0 / (t.Length / shape[0]));
        for (int i = 0; i < t.Length; i++)
        {
            double u = HashedUniform.At(seed, i);
            t.Data[i] = (float)(kind switch
            {
                HashKind.Weight => u * fanScale,
                HashKind.Bias => 0.1 * u,
                HashKind.NormWeight => 1.0 + (0.5 * u),
                _ => 0.5 * u,
            });
        }

        return t;
    }

    private enum AttentionPart
    {
        Norm,
        Q,
        K,
        V,
        Out,
    }

    /// <summary>Key names of one naming; module names without the ".weight"/".bias" suffix.</summary>
    private abstract record Names(string Prefix)
    {
        public abstract string Description { get; }

        public virtual string PostQuantConv => Prefix + "post_quant_conv";

        public string ConvIn => Prefix + "decoder.conv_in";

        public abstract string NormOut { get; }

        public string ConvOut => Prefix + "decoder.conv_out";

        /// <summary>ResNet block <paramref name="i"/> (0 or 1) of the mid block; the function maps a part name to its module.</summary>
        public abstract Func<string, string> MidResnet(int i);

        public abstract string MidAttention(AttentionPart part);

        /// <summary>ResNet block m of up block j (diffusers order).</summary>
        public abstract Func<string, string> UpResnet(int j, int m);

        /// <summary>A tensor of ResNet block m of up block j when the file has <paramref name="levels"/> levels.</summary>
        public abstract string UpResnetTensor(int j, int m, string tensor, int levels);

        /// <summary>A key present when the file has an up block numbered <paramref name="n"/> in its own order.</summary>
        public abstract string UpBlockProbe(int n);

        public abstract string Upsample(int j);
    }

    private sealed record DiffusersNames(string Prefix, bool Legacy) : Names(Prefix)
    {
        public override string Description => Legacy ? "diffusers (legacy attention names)" : "diffusers";

        public override string NormOut => Prefix + "decoder.conv_norm_out";

        public override Func<string, string> MidResnet(int i) => part => $"{Prefix}decoder.mid_block.resnets.{i}.{part}";

        public override string MidAttention(AttentionPart part) => Prefix + "decoder.mid_block.attentions.0." + part switch
        {
            AttentionPart.Norm => "group_norm",
            AttentionPart.Q => Legacy ? "query" : "to_q",
            AttentionPart.K => Legacy ? "key" : "to_k",
            AttentionPart.V => Legacy ? "value" : "to_v",
            _ => Legacy ? "proj_attn" : "to_out.0",
        };

        public override Func<string, string> UpResnet(int j, int m) => part => $"{Prefix}decoder.up_blocks.{j}.resnets.{m}.{part}";

        public override string UpResnetTensor(int j, int m, string tensor, int levels) => UpResnet(j, m)(tensor);

        public override string Upsample(int j) => $"{Prefix}decoder.up_blocks.{j}.upsamplers.0.conv";

        public override string UpBlockProbe(int n) => $"{Prefix}decoder.up_blocks.{n}.resnets.0.conv2.weight";
    }

    /// <summary>CompVis/ldm names; <see cref="Levels"/> is 0 until the config is known (the up index is reversed).</summary>
    private sealed record CompVisNames(string Prefix, int Levels) : Names(Prefix)
    {
        public override string Description => "CompVis/ldm";

        public override string NormOut => Prefix + "decoder.norm_out";

        public override Func<string, string> MidResnet(int i) => part => $"{Prefix}decoder.mid.block_{i + 1}.{Part(part)}";

        public override string MidAttention(AttentionPart part) => Prefix + "decoder.mid.attn_1." + part switch
        {
            AttentionPart.Norm => "norm",
            AttentionPart.Q => "q",
            AttentionPart.K => "k",
            AttentionPart.V => "v",
            _ => "proj_out",
        };

        public override Func<string, string> UpResnet(int j, int m) => part => UpResnetTensor(j, m, part, Levels);

        public override string UpResnetTensor(int j, int m, string tensor, int levels) =>
            $"{Prefix}decoder.up.{levels - 1 - j}.block.{m}.{Part(tensor)}";

        public override string Upsample(int j) => $"{Prefix}decoder.up.{Levels - 1 - j}.upsample.conv";

        public override string UpBlockProbe(int n) => $"{Prefix}decoder.up.{n}.block.0.conv2.weight";

        private static string Part(string part) => part.StartsWith("conv_shortcut", StringComparison.Ordinal) ? "nin_shortcut" + part["conv_shortcut".Length..] : part;
    }

    /// <summary>
    /// Checks keys and shapes from the file's header (<see cref="TensorFile.Entries"/>), reads only the tensors the
    /// decoder takes (each once, checked for non-finite values as it is read), and tracks which keys were used.
    /// </summary>
    private sealed class KeyReader(TensorFile file)
    {
        private const string LdmPrefix = "first_stage_model.";
        private readonly HashSet<string> _used = new(StringComparer.Ordinal);

        public bool Has(string key) => file.Entries.ContainsKey(key);

        /// <summary>The naming of the file, from which decoder keys it holds (levels: known for CompVis, or 0).</summary>
        public Names DetectNaming(int? levels)
        {
            string prefix = file.Entries.Keys.Any(k => k.StartsWith(LdmPrefix, StringComparison.Ordinal)) ? LdmPrefix : "";
            if (Has(prefix + "decoder.mid_block.resnets.0.conv1.weight"))
            {
                bool legacy = Has(prefix + "decoder.mid_block.attentions.0.query.weight");
                return new DiffusersNames(prefix, legacy);
            }

            if (Has(prefix + "decoder.mid.block_1.conv1.weight"))
            {
                var names = new CompVisNames(prefix, 0);
                int n = levels ?? 0;
                while (levels is null && Has(names.UpBlockProbe(n)))
                {
                    n++;
                }

                return new CompVisNames(prefix, n);
            }

            throw new DitCacheException(
                $"{file.Source}: holds no VAE decoder (neither 'decoder.mid_block.resnets.0.conv1.weight' (diffusers) nor 'decoder.mid.block_1.conv1.weight' (CompVis/ldm), optionally under '{LdmPrefix}'); pass an AutoencoderKL checkpoint");
        }

        public TensorEntry Peek(string key) =>
            file.Entries.TryGetValue(key, out TensorEntry? t) ? t : throw Error(key, "is missing; the file does not match the VAE config (block_out_channels, layers_per_block, use_post_quant_conv, mid_block_add_attention)");

        public Tensor Take(string key, params int[] shape)
        {
            TensorEntry e = Peek(key);
            _used.Add(key);
            if (!e.HasShape(shape))
            {
                throw Error(key, $"has shape {e.ShapeText}; expected {Tensor.FormatShape(shape)} for this VAE config");
            }

            Tensor t = file.Read(key);
            if (t.FirstNonFinite() is { } where)
            {
                throw Error(key, $"holds {where}: the decoder needs finite weights; the file is corrupt, so re-download or re-export it");
            }

            return t;
        }

        /// <summary>A conv (k x k) or, for k = 1, a conv [out, in, 1, 1] or a Linear [out, in] (the same matrix).</summary>
        public ConvWeights Conv(string module, int cin, int cout, int k)
        {
            string key = module + ".weight";
            Tensor w = k == 1 && Peek(key).Rank == 2 ? Take(key, cout, cin) : Take(key, cout, cin, k, k);
            return new ConvWeights(w.Data, Take(module + ".bias", cout).Data, cin, cout);
        }

        public NormWeights Norm(string module, int c) => new(Take(module + ".weight", c).Data, Take(module + ".bias", c).Data);

        public VaeResnetWeights Resnet(Func<string, string> key, int cin, int cout) => new(
            Norm(key("norm1"), cin),
            Conv(key("conv1"), cin, cout, 3),
            Norm(key("norm2"), cout),
            Conv(key("conv2"), cout, cout, 3),
            cin != cout ? Conv(key("conv_shortcut"), cin, cout, 1) : null);

        /// <summary>Every decoder key of the file was used: encoder, quant_conv and ldm loss tensors are allowed extras.</summary>
        public void RejectExtraKeys(Names names)
        {
            string p = names.Prefix;
            string[] extra = file.Entries.Keys
                .Where(k => k.StartsWith(p, StringComparison.Ordinal) && !_used.Contains(k))
                .Where(k => !k[p.Length..].StartsWith("encoder.", StringComparison.Ordinal)
                    && !k[p.Length..].StartsWith("quant_conv.", StringComparison.Ordinal)
                    && !k[p.Length..].StartsWith("loss.", StringComparison.Ordinal))
                .Order(StringComparer.Ordinal).ToArray();
            if (extra.Length > 0)
            {
                string list = string.Join(", ", extra.Take(5)) + (extra.Length > 5 ? $" and {extra.Length - 5} more" : "");
                throw new DitCacheException(
                    $"{file.Source}: unexpected tensor(s) {list}; the file does not match the VAE config (block_out_channels, layers_per_block, mid_block_add_attention)");
            }
        }

        public DitCacheException Error(string key, string problem) => new($"{file.Source}: tensor '{key}' {problem}");
    }
}
