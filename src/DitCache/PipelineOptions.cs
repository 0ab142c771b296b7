using System;

namespace DitCache;

/// <summary>
/// How <see cref="DitPipeline.Load(string?, PipelineOptions?)"/> sets up a model: the VAE that decodes a latent DiT, the
/// threads and the matrix-multiply backend. Every property has a default; <c>new PipelineOptions()</c> is what
/// <c>ditcache sample</c> does with no flags.
/// </summary>
public sealed record PipelineOptions
{
    /// <summary>
    /// The Stable Diffusion VAE that decodes a latent DiT's samples into images (<c>ditcache sample --vae</c>): a
    /// diffusers <c>vae/</c> folder or a weights file (.safetensors, .pt, .ckpt). Default null: the <c>vae/</c> folder of
    /// a diffusers model folder when it has one; a pixel-space model (1 or 3 channels, such as the embedded one) needs
    /// none.
    /// </summary>
    public string? Vae { get; init; }

    /// <summary>Threads for the matrix products and kernels of one sampling run, at least 1. Default: every core.</summary>
    public int Threads { get; init; } = Environment.ProcessorCount;

    /// <summary>
    /// The GEMM backend (<c>ditcache sample --gemm</c>): <c>auto</c> (default: the managed kernel on CPUs with
    /// AVX-512 or AVX2+FMA, else OpenBLAS when installed), <c>managed</c>, <c>managed-bf16</c> or <c>openblas</c>. The
    /// managed kernel gives bit-identical results for any <see cref="Threads"/>; OpenBLAS does not promise it.
    /// </summary>
    public string Gemm { get; init; } = "auto";

    /// <summary>
    /// How the DiT's Linear weights are stored (<c>ditcache sample --weights</c>): <c>f32</c> (default, as in the
    /// file), <c>bf16</c> or <c>f16</c> (half the memory; needs the managed GEMM, which <c>auto</c> then picks).
    /// </summary>
    public string Weights { get; init; } = "f32";
}
