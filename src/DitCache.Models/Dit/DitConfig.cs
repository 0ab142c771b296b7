using System;
using System.Collections.Generic;
using System.Linq;
using DitCache.Tensors;

namespace DitCache.Models;

/// <summary>
/// The shape of a DiT (facebookresearch/DiT <c>models.py</c>, <c>DiT_models</c>; docs/methods.md §6.1).
/// <c>InputSize</c> is the side of the model input: latent side for the official models (image/8), pixel side for
/// pixel-space models such as the shipped Fashion-MNIST DiT.
/// </summary>
/// <param name="Depth">Number of DiT blocks.</param>
/// <param name="Hidden">Hidden size D.</param>
/// <param name="Heads">Attention heads; D must divide evenly.</param>
/// <param name="Patch">Patch side p.</param>
/// <param name="InputSize">Input side (H = W).</param>
/// <param name="InChannels">Input channels C.</param>
/// <param name="LearnSigma">Whether the model also predicts the variance (out channels = 2C).</param>
/// <param name="NumClasses">Class count; the embedding table has one more row, the null (CFG) class.</param>
/// <param name="MlpRatio">MLP hidden size over D (4 for every published DiT).</param>
public sealed record DitConfig(int Depth, int Hidden, int Heads, int Patch, int InputSize, int InChannels = 4,
    bool LearnSigma = true, int NumClasses = 1000, int MlpRatio = 4)
{
    /// <summary>Output channels: 2·C with learned sigma, else C.</summary>
    public int OutChannels => LearnSigma ? InChannels * 2 : InChannels;

    /// <summary>Patches per side.</summary>
    public int Grid => InputSize / Patch;

    /// <summary>Tokens per image: (InputSize/p)².</summary>
    public int Tokens => Grid * Grid;

    /// <summary>Per-head width D/H.</summary>
    public int HeadDim => Hidden / Heads;

    /// <summary>MLP hidden width.</summary>
    public int MlpHidden => Hidden * MlpRatio;

    /// <summary>Label of the null class used for the unconditional half of the CFG batch.</summary>
    public int NullClass => NumClasses;

    /// <summary>Preset name when the shape matches one (e.g. "DiT-XL/2"), else "DiT (custom)".</summary>
    public string Name => s_presets.FirstOrDefault(p => p.Depth == Depth && p.Hidden == Hidden && p.Heads == Heads) is { } p
        ? $"DiT-{p.Name}/{Patch}"
        : "DiT (custom)";

    /// <summary>
    /// Parameters implied by the shapes, counted as <c>sum(p.numel() for p in model.parameters())</c> counts them in
    /// DiT, which includes the frozen pos_embed parameter; DiT-XL/2 at 256 has 675,129,632.
    /// </summary>
    public long ParameterCount
    {
        get
        {
            long d = Hidden, m = MlpHidden, p = Patch, outTok = p * p * OutChannels;
            long embed = ((long)Tokens * d) + (d * InChannels * p * p) + d + (d * 256) + d + (d * d) + d + ((NumClasses + 1L) * d);
            long block = (3 * d * d) + (3 * d) + (d * d) + d + (m * d) + m + (d * m) + d + (6 * d * d) + (6 * d);
            long final = (2 * d * d) + (2 * d) + (outTok * d) + outTok;
            return embed + (Depth * block) + final;
        }
    }

    /// <summary>Throws <see cref="DitCacheException"/> when the sizes cannot form a DiT.</summary>
    public void Validate()
    {
        Require(Depth >= 1, $"depth {Depth} must be at least 1");
        Require(Hidden >= 4 && Hidden % 4 == 0, $"hidden size {Hidden} must be a positive multiple of 4 (2-D sin-cos position embedding)");
        Require(Heads >= 1 && Hidden % Heads == 0, $"hidden size {Hidden} is not divisible by {Heads} heads; pass the right --heads");
        Require(Patch >= 1 && InputSize >= Patch && InputSize % Patch == 0, $"input size {InputSize} is not a multiple of patch {Patch}");
        Require(InChannels >= 1 && NumClasses >= 1 && MlpRatio >= 1, "in_channels, num_classes and mlp_ratio must be positive");
        Require(InputSize <= MaxInputSize, $"input size {InputSize} is over {MaxInputSize} (an image of {MaxInputSize * 8} pixels a side for a latent DiT); check --input-size or the metadata");
        long grid = InputSize / Patch, rowFloats = grid * grid * Hidden * (long)MlpRatio;
        Require(rowFloats <= Array.MaxLength && (long)Hidden * MlpRatio <= Array.MaxLength,
            $"{grid * grid} tokens of hidden {Hidden} x mlp_ratio {MlpRatio} do not fit one array per image; check the input size and the weights");
    }

    /// <summary>The largest input side accepted (the latent of a 32,768-pixel image).</summary>
    public const int MaxInputSize = 4096;

    private static void Require(bool ok, string message)
    {
        if (!ok)
        {
            throw new DitCacheException("invalid DiT config: " + message);
        }
    }

    private sealed record Preset(string Name, int Depth, int Hidden, int Heads);

    // models.py DiT_XL/L/B/S: (depth, hidden, heads).
    private static readonly Preset[] s_presets =
    [
        new("XL", 28, 1152, 16),
        new("L", 24, 1024, 16),
        new("B", 12, 768, 12),
        new("S", 12, 384, 6),
    ];

    private static readonly int[] s_patches = [2, 4, 8];

    /// <summary>Every preset name, e.g. DiT-XL/2 … DiT-S/8.</summary>
    public static IEnumerable<string> PresetNames => s_presets.SelectMany(p => s_patches.Select(k => $"DiT-{p.Name}/{k}"));

    /// <summary>
    /// The preset <paramref name="name"/> ("DiT-XL/2", case-insensitive, "DiT-" optional) for an image of side
    /// <paramref name="imageSize"/> in pixels; latent models take image/8 as input size, 4 channels, 1000 classes.
    /// </summary>
    public static DitConfig FromPreset(string name, int imageSize)
    {
        string key = name.Trim().ToUpperInvariant();
        if (key.StartsWith("DIT-", StringComparison.Ordinal))
        {
            key = key[4..];
        }

        string[] parts = key.Split('/');
        Preset? preset = parts.Length == 2 ? s_presets.FirstOrDefault(p => p.Name == parts[0]) : null;
        if (preset is null || !int.TryParse(parts[1], out int patch) || patch is not (2 or 4 or 8))
        {
            throw new DitCacheException($"--preset '{name}' is not a DiT preset; choose one of {string.Join(", ", PresetNames)}", exitCode: 2);
        }

        if (imageSize < 8 || imageSize % 8 != 0)
        {
            throw new DitCacheException($"--image-size {imageSize} must be a positive multiple of 8 (the VAE downsamples by 8)", exitCode: 2);
        }

        var config = new DitConfig(preset.Depth, preset.Hidden, preset.Heads, patch, imageSize / 8);
        config.Validate();
        return config;
    }

    /// <summary>Heads of the preset with this (depth, hidden), or null when none matches.</summary>
    public static int? PresetHeads(int depth, int hidden) =>
        s_presets.FirstOrDefault(p => p.Depth == depth && p.Hidden == hidden)?.Heads;
}
