using System;
using System.Collections.Generic;
using DitCache.Caching.Calibration;

namespace DitCache.Caching;

/// <summary>
/// What a cache policy may know about the run it is built for: the step grid and the tensor sizes it will see.
/// A policy is built fresh from its options for every run (<see cref="ICacheOptions.Build"/>), so no state leaks
/// between runs, step counts, batch sizes or resolutions.
/// </summary>
/// <param name="Steps">Number of sampling steps S; ordinal n = 0 is the noisiest step.</param>
/// <param name="Timesteps">The model timestep fed at each ordinal n (length S, original DDPM timesteps, descending).</param>
/// <param name="Batch">Rows of the batched forward (2·N with classifier-free guidance: both halves share one decision).</param>
/// <param name="Tokens">Tokens per image.</param>
/// <param name="Hidden">Hidden size D.</param>
/// <param name="Depth">Number of DiT blocks.</param>
/// <param name="Calibration">The model's calibration file (TeaCache, SmoothCache, MagCache read their section); null
/// when the caller has none, and a policy that needs one then fails with the command that makes it.</param>
/// <param name="Sampler">The sampler of the run ("ddim", "ddpm"), checked against the calibration's; null = unknown (not checked).</param>
/// <param name="CfgScale">The guidance scale of the run (1 = no CFG batch), checked against the calibration's.</param>
public sealed record CacheRunInfo(int Steps, IReadOnlyList<float> Timesteps, int Batch, int Tokens, int Hidden, int Depth,
    CalibrationFile? Calibration = null, string? Sampler = null, double CfgScale = 1.0)
{
    /// <summary>Floats in one (B, T, D) feature tensor.</summary>
    public int FeatureLength => checked(Batch * Tokens * Hidden);

    /// <summary>
    /// Tokens per side of the patch grid: a DiT's grid is square (<c>DitConfig.Grid</c> = input side / patch, T = grid²,
    /// tokens row-major), so this is √T; 0 when <see cref="Tokens"/> is not a perfect square (FreqCa needs the grid).
    /// </summary>
    public int GridSide
    {
        get
        {
            int side = (int)Math.Round(Math.Sqrt(Tokens));
            return side > 0 && side * side == Tokens ? side : 0;
        }
    }

    /// <summary>Checks the sizes; throws <see cref="ArgumentException"/> naming the bad one.</summary>
    public void Validate()
    {
        if (Steps < 1)
        {
            throw new ArgumentException($"steps must be at least 1, got {Steps}", nameof(Steps));
        }

        if (Timesteps.Count != Steps)
        {
            throw new ArgumentException($"timestep grid has {Timesteps.Count} entries for {Steps} steps", nameof(Timesteps));
        }

        if (Batch < 1 || Tokens < 1 || Hidden < 1 || Depth < 1)
        {
            throw new ArgumentException($"batch {Batch}, tokens {Tokens}, hidden {Hidden}, depth {Depth} must all be positive");
        }
    }
}
