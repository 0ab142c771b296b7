using System.Collections.Generic;
using DitCache.Caching;
using DitCache.Tensors;

namespace DitCache;

/// <summary>
/// What <see cref="DitPipeline.Sample"/> draws: one image per entry of <see cref="Classes"/>, with the sampler, guidance
/// and accelerator of <c>ditcache sample</c> (same defaults). The same options and seed give the same images, bit for
/// bit, on the same machine and GEMM backend.
/// </summary>
public sealed record SamplingOptions
{
    /// <summary>The class label of each image (0 to the model's class count − 1), one image per entry.</summary>
    public required IReadOnlyList<int> Classes { get; init; }

    /// <summary>Sampling steps, respaced from the 1,000 training steps: 1 to 1,000. Default 50.</summary>
    public int Steps { get; init; } = 50;

    /// <summary>The sampler: <c>ddim</c> (default) or <c>ddpm</c>.</summary>
    public string Sampler { get; init; } = "ddim";

    /// <summary>Classifier-free guidance scale, finite and at least 1; 1 runs the conditional model alone. Default 4.</summary>
    public float Cfg { get; init; } = 4.0f;

    /// <summary>Guide only the first K channels (3 reproduces DiT's sample.py); null (default) guides all.</summary>
    public int? CfgChannels { get; init; }

    /// <summary>DDIM η, finite and at least 0 (0, the default, is deterministic); the <c>ddim</c> sampler only.</summary>
    public double Eta { get; init; }

    /// <summary>Seed of the Gaussian noise. Default 0.</summary>
    public int Seed { get; init; }

    /// <summary>
    /// The accelerator as a spec string, the grammar of <c>ditcache sample --cache</c>: <c>name</c> or
    /// <c>name:key=value,...</c>, e.g. <c>foca:n=3</c> or <c>taylorseer:n=4,o=4</c> (every name and knob:
    /// <see cref="CacheRegistry.All"/> and README.md). Null or <c>none</c> (default) computes every block at every step.
    /// Give this or <see cref="AcceleratorOptions"/>, not both.
    /// </summary>
    public string? Accelerator { get; init; }

    /// <summary>
    /// The accelerator as an options object, e.g. <c>new FocaOptions(Interval: 3)</c> (namespace
    /// <c>DitCache.Caching</c>). Give this or <see cref="Accelerator"/>, not both.
    /// </summary>
    public ICacheOptions? AcceleratorOptions { get; init; }

    /// <summary>
    /// Initial noise [N, C, H, W] (N = number of classes, then the model's input channels and side) instead of seeded
    /// noise; null (default) draws it from <see cref="Seed"/>.
    /// </summary>
    public Tensor? Noise { get; init; }
}
