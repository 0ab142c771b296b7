using System;

namespace DitCache.Sampling;

/// <summary>
/// One reverse-diffusion update over DiT's respaced tables (diffusers/candle scheduler contract, DiT semantics).
/// Tensors are (N, C, H, W) for the sample and (N, out, H, W) for the model output, out = 2·C with learned sigma.
/// </summary>
public interface IScheduler
{
    /// <summary>Sampler name for reports ("ddim" or "ddpm").</summary>
    string Name { get; }

    /// <summary>The respaced tables.</summary>
    GaussianDiffusion Diffusion { get; }

    /// <summary>Whether <see cref="Step"/> at respaced index <paramref name="index"/> consumes Gaussian noise.</summary>
    bool UsesNoise(int index);

    /// <summary>
    /// Updates <paramref name="x"/> (N images, each C·H·W floats) from x_t to x_{t−1} in place at respaced index
    /// <paramref name="index"/>. <paramref name="modelOutput"/> holds per image ε (C·H·W) followed, with learned
    /// sigma, by the variance interpolation v (C·H·W). <paramref name="noise"/> (shape of x) is read only when
    /// <see cref="UsesNoise"/> is true.
    /// </summary>
    void Step(int index, ReadOnlySpan<float> modelOutput, Span<float> x, int images, ReadOnlySpan<float> noise);
}
