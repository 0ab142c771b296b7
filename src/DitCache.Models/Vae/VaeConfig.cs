using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text.Json;
using DitCache.Tensors;

namespace DitCache.Models;

/// <summary>
/// The shape of a Stable Diffusion style VAE decoder (diffusers <c>AutoencoderKL</c>; docs/methods.md §11): what
/// <see cref="VaeDecoder"/> needs, read from a diffusers <c>vae/config.json</c> (<see cref="FromJsonFile"/>) or from
/// the weight shapes (<see cref="VaeWeights"/>). stabilityai/sd-vae-ft-ema and sd-vae-ft-mse (DiT's VAEs):
/// block_out_channels [128, 256, 512, 512], layers_per_block 2, 32 groups, 4 latent channels, scaling 0.18215.
/// </summary>
/// <param name="BlockOutChannels">Channels per resolution level, finest first (diffusers order); the decoder runs them
/// coarsest first.</param>
/// <param name="LayersPerBlock">The config's layers_per_block; every decoder up block has one more ResNet block.</param>
/// <param name="NormNumGroups">GroupNorm groups of every norm of the decoder.</param>
/// <param name="LatentChannels">Channels of the latents.</param>
/// <param name="OutChannels">Channels of the decoded image.</param>
/// <param name="ScalingFactor">Latents are divided by this before decoding (DiT: <c>vae.decode(x / 0.18215)</c>).</param>
/// <param name="ShiftFactor">Added after the division (diffusers pipelines of the 16-channel VAEs); 0 for SD.</param>
/// <param name="UsePostQuantConv">Whether a 1x1 post_quant_conv runs before the decoder.</param>
/// <param name="MidBlockAddAttention">Whether the mid block has its attention layer.</param>
public sealed record VaeConfig(
    IReadOnlyList<int> BlockOutChannels,
    int LayersPerBlock,
    int NormNumGroups,
    int LatentChannels,
    int OutChannels = 3,
    float ScalingFactor = VaeConfig.SdScalingFactor,
    float ShiftFactor = 0f,
    bool UsePostQuantConv = true,
    bool MidBlockAddAttention = true)
{
    /// <summary>The SD 1.x/2.x VAE's scaling factor (diffusers' default, and the constant in DiT's sample.py).</summary>
    public const float SdScalingFactor = 0.18215f;

    /// <summary>GroupNorm epsilon of every norm of the decoder (diffusers resnet_eps and conv_norm_out; ldm Normalize).</summary>
    public const float NormEps = 1e-6f;

    /// <summary>The config of stabilityai/sd-vae-ft-ema and sd-vae-ft-mse, which DiT decodes with.</summary>
    public static VaeConfig SdVae { get; } = new([128, 256, 512, 512], 2, 32, 4);

    /// <summary>Resolution levels: one up block each, all but the last ending in a x2 upsample.</summary>
    public int Levels => BlockOutChannels.Count;

    /// <summary>Image side over latent side: 2^(levels − 1) (8 for the SD VAE).</summary>
    public int UpsampleFactor => 1 << (Levels - 1);

    /// <summary>Channels of the mid block (the last, coarsest level).</summary>
    public int MidChannels => BlockOutChannels[^1];

    /// <summary>ResNet blocks per up block.</summary>
    public int ResnetsPerUpBlock => LayersPerBlock + 1;

    /// <summary>Checks every value; the message names the config key.</summary>
    /// <exception cref="DitCacheException">A value is out of range or channels do not divide into the groups.</exception>
    public void Validate(string source = "VAE config")
    {
        if (BlockOutChannels is null || BlockOutChannels.Count == 0 || BlockOutChannels.Count > 8)
        {
            throw new DitCacheException($"{source}: block_out_channels must list 1 to 8 channel counts");
        }

        if (NormNumGroups < 1)
        {
            throw new DitCacheException($"{source}: norm_num_groups is {NormNumGroups}; expected a positive integer");
        }

        foreach (int c in BlockOutChannels)
        {
            if (c < 1 || c % NormNumGroups != 0)
            {
                throw new DitCacheException(
                    $"{source}: block_out_channels entry {c} is not a positive multiple of norm_num_groups {NormNumGroups}; fix the config");
            }
        }

        if (LayersPerBlock < 0 || LatentChannels < 1 || OutChannels < 1)
        {
            throw new DitCacheException(
                $"{source}: layers_per_block {LayersPerBlock}, latent_channels {LatentChannels}, out_channels {OutChannels}; expected >= 0, >= 1, >= 1");
        }

        if (!float.IsFinite(ScalingFactor) || ScalingFactor == 0f || !float.IsFinite(ShiftFactor))
        {
            throw new DitCacheException($"{source}: scaling_factor {ScalingFactor} / shift_factor {ShiftFactor}; expected a finite non-zero scale and a finite shift");
        }
    }

    /// <summary>
    /// Reads a diffusers <c>vae/config.json</c>. Keys it does not hold take diffusers' AutoencoderKL defaults
    /// (layers_per_block 1, norm_num_groups 32, latent_channels 4, out_channels 3, scaling_factor 0.18215, no shift,
    /// post_quant_conv and mid-block attention on), as diffusers builds the model; the sd-vae-ft-* configs, for one,
    /// have no scaling_factor key. Keys only the encoder or the training use (in_channels, down_block_types,
    /// use_quant_conv, sample_size, force_upcast) are ignored.
    /// </summary>
    /// <exception cref="DitCacheException">
    /// The file cannot be read or parsed, or it describes a decoder this one does not compute: another class than
    /// AutoencoderKL, an activation other than SiLU, an up block other than UpDecoderBlock2D, a norm_type other than
    /// "group", or latents_mean/latents_std normalisation.
    /// </exception>
    public static VaeConfig FromJsonFile(string path)
    {
        using ConfigJson json = ConfigJson.Read(path, "the VAE config (a diffusers vae/config.json)");
        return From(json);
    }

    /// <summary>As <see cref="FromJsonFile"/>, from the JSON text; <paramref name="source"/> names it in messages.</summary>
    /// <exception cref="DitCacheException">See <see cref="FromJsonFile"/>.</exception>
    public static VaeConfig FromJson(string json, string source)
    {
        ArgumentNullException.ThrowIfNull(json);
        using ConfigJson config = ConfigJson.Parse(System.Text.Encoding.UTF8.GetBytes(json), source, "a diffusers vae/config.json");
        return From(config);
    }

    private static VaeConfig From(ConfigJson json)
    {
        string source = json.Source;
        string? className = json.String("_class_name");
        if (className is not null && className != "AutoencoderKL")
        {
            throw new DitCacheException(
                $"{source}: _class_name is \"{className}\"; DitCache decodes with AutoencoderKL only (the SD VAE and its 16-channel successors)");
        }

        string act = json.String("act_fn") ?? "silu";
        if (act != "silu")
        {
            throw new DitCacheException($"{source}: act_fn is \"{act}\"; the decoder supports \"silu\" only");
        }

        string norm = json.String("norm_type") ?? "group";
        if (norm != "group")
        {
            throw new DitCacheException($"{source}: norm_type is \"{norm}\"; the decoder supports GroupNorm (\"group\") only");
        }

        foreach (string key in (ReadOnlySpan<string>)["latents_mean", "latents_std"])
        {
            if (json.Has(key))
            {
                throw new DitCacheException(
                    $"{source}: {key} is set; latent normalisation by per-channel mean/std is not supported (only scaling_factor and shift_factor)");
            }
        }

        int[] channels = json.IntArray("block_out_channels") ?? [64];
        if (json.StringArray("up_block_types") is { } types)
        {
            string? bad = types.FirstOrDefault(t => t != "UpDecoderBlock2D");
            if (bad is not null || types.Length != channels.Length)
            {
                throw new DitCacheException(
                    $"{source}: up_block_types [{string.Join(", ", types)}]; expected {channels.Length} x \"UpDecoderBlock2D\" (one per block_out_channels entry)");
            }
        }

        var config = new VaeConfig(
            channels,
            json.Int("layers_per_block") ?? 1,
            json.Int("norm_num_groups") ?? 32,
            json.Int("latent_channels") ?? 4,
            json.Int("out_channels") ?? 3,
            json.Float("scaling_factor") ?? SdScalingFactor,
            json.Float("shift_factor") ?? 0f,
            json.Bool("use_post_quant_conv") ?? true,
            json.Bool("mid_block_add_attention") ?? true);
        config.Validate(source);
        return config;
    }

    /// <summary>The config as text for reports, e.g. <c>channels [128, 256, 512, 512], 2 layers, 32 groups, 4 latent</c>.</summary>
    public override string ToString()
    {
        string text = string.Create(CultureInfo.InvariantCulture,
            $"channels [{string.Join(", ", BlockOutChannels)}], layers_per_block {LayersPerBlock}, {NormNumGroups} groups, {LatentChannels} latent -> {OutChannels} out, scaling {ScalingFactor}");
        if (ShiftFactor != 0f)
        {
            text += string.Create(CultureInfo.InvariantCulture, $", shift {ShiftFactor}");
        }

        return text + (UsePostQuantConv ? "" : ", no post_quant_conv") + (MidBlockAddAttention ? "" : ", no mid attention");
    }
}
