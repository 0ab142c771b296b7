using System;
using System.Collections.Generic;
using DitCache.Evaluation.Inception;
using DitCache.Evaluation.Metrics;
using DitCache.Models;
using DitCache.Tensors;

namespace DitCache.Evaluation.Quality;

/// <summary>
/// FID as the DiT and FoCa papers measure it (docs/methods.md §9.4): each sample decoded by the VAE (a latent DiT) or
/// taken as it is (an RGB DiT), quantised to 8 bits exactly as DiT's <c>sample_ddp.py</c> saves it
/// (<c>clamp(127.5·x + 128, 0, 255)</c> truncated to an integer), read back as v/255 and scored by the FID
/// Inception-v3's pool3 features, compared with the statistics (μ, Σ) of a reference set read from a file (ADM's
/// reference batch for ImageNet 256, or pytorch-fid's <c>--save-stats</c>). No class is predicted: accuracy is not
/// reported, and there is no real floor.
/// </summary>
public sealed class InceptionQuality : IQualityModel
{
    private readonly FidInception _net;
    private readonly VaeDecoder? _vae;
    private readonly FeatureStatistics _reference;
    private readonly string _referenceSource;
    private readonly IReadOnlyList<string> _classNames;
    private float[] _image = [];
    private float[] _unit = [];

    /// <summary>
    /// Scores with <paramref name="net"/> against <paramref name="reference"/> (read from <paramref name="referenceSource"/>);
    /// <paramref name="vae"/> decodes a latent DiT's samples (null for a DiT that makes RGB images).
    /// </summary>
    /// <exception cref="ArgumentException">The reference is not 2048-dimensional.</exception>
    public InceptionQuality(FidInception net, VaeDecoder? vae, FeatureStatistics reference, string referenceSource, IReadOnlyList<string> classNames)
    {
        ArgumentNullException.ThrowIfNull(net);
        ArgumentNullException.ThrowIfNull(reference);
        ArgumentNullException.ThrowIfNull(referenceSource);
        ArgumentNullException.ThrowIfNull(classNames);
        if (reference.Dim != FidInception.FeatureSize)
        {
            throw new ArgumentException($"{referenceSource}: the reference statistics are {reference.Dim}-dimensional; the FID Inception's pool3 features are {FidInception.FeatureSize}", nameof(reference));
        }

        _net = net;
        _vae = vae;
        _reference = reference;
        _referenceSource = referenceSource;
        _classNames = classNames;
    }

    /// <inheritdoc/>
    public string Source => _net.Source;

    /// <inheritdoc/>
    public int FeatureSize => FidInception.FeatureSize;

    /// <inheritdoc/>
    public bool Classifies => false;

    /// <inheritdoc/>
    public IReadOnlyList<string> ClassNames => _classNames;

    /// <inheritdoc/>
    public void CheckModel(DitConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (_vae is not null && config.InChannels != _vae.Config.LatentChannels)
        {
            throw new DitCacheException(
                $"the VAE decodes {_vae.Config.LatentChannels}-channel latents but the model samples {config.InChannels} channels; give the VAE the DiT was trained with",
                exitCode: 2);
        }

        int rgb = _vae?.Config.OutChannels ?? config.InChannels;
        if (rgb != 3)
        {
            throw new DitCacheException(
                $"the FID Inception scores RGB images but this model makes {rgb}-channel images{(_vae is null && config.InChannels == 4 ? " (latents: pass --vae)" : "")}; for the Fashion-MNIST models leave out --inception and --fid-stats (the shipped classifier scores them)",
                exitCode: 2);
        }
    }

    /// <inheritdoc/>
    public (int[] Predictions, float[] Features) Score(float[] samples, int count)
    {
        ArgumentNullException.ThrowIfNull(samples);
        if (count < 1 || samples.Length % count != 0)
        {
            throw new ArgumentException($"{samples.Length} floats do not divide into {count} samples", nameof(samples));
        }

        int sample = samples.Length / count;
        float[] features = new float[count * FeatureSize];
        for (int n = 0; n < count; n++)
        {
            ReadOnlySpan<float> one = samples.AsSpan(n * sample, sample);
            (int height, int width) = Image(one);
            int pixels = 3 * height * width;
            for (int i = 0; i < pixels; i++)
            {
                _unit[i] = Quantize(_image[i]) / 255f;
            }

            _net.Features(_unit.AsSpan(0, pixels), 1, height, width, features.AsSpan(n * FeatureSize, FeatureSize));
        }

        return ([], features);
    }

    /// <summary>
    /// DiT's <c>sample_ddp.py</c> mapping of an image value in about [−1, 1] to a byte: <c>clamp(127.5·x + 128, 0, 255)</c>
    /// in float32, then truncated (<c>.to(torch.uint8)</c>).
    /// </summary>
    public static byte Quantize(float x)
    {
        float v = (127.5f * x) + 128f;
        return float.IsNaN(v) ? throw new ArgumentException("a sample holds NaN; the sampler diverged", nameof(x)) : (byte)Math.Clamp(v, 0f, 255f);
    }

    /// <inheritdoc/>
    public QualityReference Reference(IEnumerable<int> classes) => QualityReference.FromStatistics(_reference, classes, _referenceSource);

    /// <inheritdoc/>
    public double? MatchedFloor(int samplesPerClass, IReadOnlyList<int> classes, QualityReference reference) => null;

    // Decodes (or copies) one sample into _image as (3, height, width) and sizes the buffers.
    private (int Height, int Width) Image(ReadOnlySpan<float> sample)
    {
        int side = (int)Math.Round(Math.Sqrt(sample.Length / (double)(_vae?.Config.LatentChannels ?? 3)));
        int channels = _vae?.Config.LatentChannels ?? 3;
        if (channels * side * side != sample.Length)
        {
            throw new ArgumentException($"a sample of {sample.Length} floats is not a square {channels}-channel image", nameof(sample));
        }

        int height = side, width = side;
        if (_vae is not null)
        {
            height *= _vae.Config.UpsampleFactor;
            width *= _vae.Config.UpsampleFactor;
        }

        int pixels = 3 * height * width;
        if (_image.Length < pixels)
        {
            _image = new float[pixels];
            _unit = new float[pixels];
        }

        if (_vae is null)
        {
            sample.CopyTo(_image);
        }
        else
        {
            _vae.DecodeOne(sample, _image.AsSpan(0, pixels), side, side);
        }

        return (height, width);
    }
}
