using System;
using System.Collections.Generic;
using DitCache.Evaluation.Reports;
using DitCache.Tensors;

namespace DitCache;

/// <summary>
/// The images of one <see cref="DitPipeline.Sample"/> run, as float tensors and as PNG, and what the run cost.
/// The tensors belong to the caller: the pipeline keeps no reference to them.
/// </summary>
public sealed class SampledImages
{
    internal SampledImages(Tensor samples, Tensor? images, IReadOnlyList<int> classes, string accelerator, double flops,
        double fullFlops, int computedSteps, double seconds)
    {
        Samples = samples;
        Images = images;
        Classes = classes;
        Accelerator = accelerator;
        Flops = flops;
        FullFlops = fullFlops;
        ComputedSteps = computedSteps;
        Seconds = seconds;
    }

    /// <summary>
    /// The images [N, C, H, W] float32, row-major, about in [−1, 1] and not clamped: the DiT's final sample for a
    /// pixel-space model, the VAE's decoding of it for a latent one. Null for a latent model loaded without a VAE.
    /// </summary>
    public Tensor? Images { get; }

    /// <summary>The DiT's final sample [N, C, H, W] float32 before any clamping (the latents of a latent model).</summary>
    public Tensor Samples { get; }

    /// <summary>The class label of each image.</summary>
    public IReadOnlyList<int> Classes { get; }

    /// <summary>The accelerator's spec, e.g. <c>foca:n=3,warmup=2</c> (<c>none</c> without one).</summary>
    public string Accelerator { get; }

    /// <summary>FLOPs the transformer blocks took (DiT-paper convention: 2 per multiply-add, the whole CFG batch).</summary>
    public double Flops { get; }

    /// <summary>FLOPs of the same run with every block computed at every step; <see cref="FullFlops"/> / <see cref="Flops"/> is the speedup.</summary>
    public double FullFlops { get; }

    /// <summary>Sampling steps on which every block ran.</summary>
    public int ComputedSteps { get; }

    /// <summary>Wall clock of the sampling loop in seconds (without the VAE decode).</summary>
    public double Seconds { get; }

    /// <summary>
    /// A PNG of all images in a grid of <paramref name="columns"/> columns (default: all in one row, at most 10) with
    /// a 2-pixel black border between them and none around a single image, each value mapped as DiT's sample.py saves
    /// it (torchvision's save_image: (clamp(x, −1, 1) + 1) / 2 · 255, rounded half up).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="columns"/> is outside 1 to N.</exception>
    /// <exception cref="InvalidOperationException">No images (a latent model without a VAE), or images of other than 1 or 3 channels.</exception>
    public byte[] ToPng(int? columns = null)
    {
        Tensor images = PngImages();
        int n = images.Dim(0);
        if (columns is int c && (c < 1 || c > n))
        {
            throw new ArgumentOutOfRangeException(nameof(columns), $"columns {c}: a grid of {n} image(s) has 1..{n} columns; give one of those, or null for one row of up to 10");
        }

        return Png.EncodeGrid(images, columns ?? Math.Min(n, 10), padding: n == 1 ? 0 : 2);
    }

    /// <summary>A PNG of image <paramref name="index"/> alone (0 to N − 1), mapped as <see cref="ToPng(int?)"/> maps it.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="index"/> is not an image of this run.</exception>
    /// <exception cref="InvalidOperationException">No images (a latent model without a VAE), or images of other than 1 or 3 channels.</exception>
    public byte[] ImagePng(int index)
    {
        Tensor images = PngImages();
        int n = images.Dim(0);
        if (index < 0 || index >= n)
        {
            throw new ArgumentOutOfRangeException(nameof(index), $"index {index}: this run drew {n} image(s); give 0..{n - 1}");
        }

        int size = images.Dim(1) * images.Dim(2) * images.Dim(3);
        var one = new Tensor(images.Data.AsSpan(index * size, size).ToArray(), 1, images.Dim(1), images.Dim(2), images.Dim(3));
        return Png.EncodeGrid(one, 1, padding: 0);
    }

    private Tensor PngImages()
    {
        if (Images is null)
        {
            throw new InvalidOperationException(
                $"no images to encode: the model is a latent DiT ({Samples.Dim(1)} channels) loaded without a VAE; give PipelineOptions.Vae (a diffusers vae/ folder or weights file) to DitPipeline.Load, or use Samples (the latents)");
        }

        if (Images.Dim(1) is not (1 or 3))
        {
            throw new InvalidOperationException($"the images have {Images.Dim(1)} channels and a PNG holds 1 or 3; use Images (the float tensor) instead");
        }

        return Images;
    }
}
