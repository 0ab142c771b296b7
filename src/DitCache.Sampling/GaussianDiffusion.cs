using System;
using System.Collections.Generic;
using System.Linq;

namespace DitCache.Sampling;

/// <summary>
/// DiT's Gaussian diffusion tables (<c>diffusion/gaussian_diffusion.py</c>, <c>respace.py</c>;
/// docs/methods.md §6.4): linear betas over T = 1000 steps, respaced to S steps. Tables are float64 as in the reference; the samplers
/// cast each looked-up coefficient to float32 before use, as <c>_extract_into_tensor</c> does.
/// Index i is the respaced index (S−1 = noisiest); the sampling ordinal is n = S−1−i.
/// </summary>
public sealed class GaussianDiffusion
{
    /// <summary>Builds the respaced tables for <paramref name="steps"/> sampling steps.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Steps outside [1, <paramref name="numTimesteps"/>].</exception>
    public GaussianDiffusion(int steps, int numTimesteps = 1000)
    {
        if (steps < 1 || steps > numTimesteps)
        {
            throw new ArgumentOutOfRangeException(nameof(steps), steps, $"steps must be in [1, {numTimesteps}]");
        }

        // get_named_beta_schedule("linear"): scale = 1000 / T, linspace(scale*1e-4, scale*0.02, T) in float64.
        double scale = 1000.0 / numTimesteps, start = scale * 1e-4, end = scale * 0.02;
        double[] baseAlphasCumprod = new double[numTimesteps];
        double running = 1.0;
        for (int t = 0; t < numTimesteps; t++)
        {
            double beta = numTimesteps == 1 ? start : start + ((end - start) * t / (numTimesteps - 1));
            running *= 1.0 - beta;
            baseAlphasCumprod[t] = running;
        }

        TimestepMap = SpaceTimesteps(numTimesteps, steps).ToArray();
        Steps = TimestepMap.Length;
        Betas = new double[Steps];
        double last = 1.0;
        for (int i = 0; i < Steps; i++)
        {
            // respace.py: new_beta = 1 - abar(t_i) / abar(t_{i-1}); so the respaced abar equals the original at kept steps.
            double abar = baseAlphasCumprod[TimestepMap[i]];
            Betas[i] = 1.0 - (abar / last);
            last = abar;
        }

        AlphasCumprod = new double[Steps];
        AlphasCumprodPrev = new double[Steps];
        PosteriorVariance = new double[Steps];
        PosteriorMeanCoef1 = new double[Steps];
        PosteriorMeanCoef2 = new double[Steps];
        double prod = 1.0;
        for (int i = 0; i < Steps; i++)
        {
            AlphasCumprodPrev[i] = prod;
            prod *= 1.0 - Betas[i];
            AlphasCumprod[i] = prod;
            PosteriorVariance[i] = Betas[i] * (1.0 - AlphasCumprodPrev[i]) / (1.0 - AlphasCumprod[i]);
            PosteriorMeanCoef1[i] = Betas[i] * Math.Sqrt(AlphasCumprodPrev[i]) / (1.0 - AlphasCumprod[i]);
            PosteriorMeanCoef2[i] = (1.0 - AlphasCumprodPrev[i]) * Math.Sqrt(1.0 - Betas[i]) / (1.0 - AlphasCumprod[i]);
        }

        // log(append(posterior_variance[1], posterior_variance[1:])): index 0's variance is 0, so it borrows index 1's.
        PosteriorLogVarianceClipped = new double[Steps];
        for (int i = 0; i < Steps; i++)
        {
            PosteriorLogVarianceClipped[i] = Math.Log(Steps > 1 && i == 0 ? PosteriorVariance[1] : PosteriorVariance[i]);
        }
    }

    /// <summary>Number of sampling steps S.</summary>
    public int Steps { get; }

    /// <summary>Original DDPM timestep of each respaced index (ascending); the model is fed these.</summary>
    public int[] TimestepMap { get; }

    /// <summary>Respaced betas.</summary>
    public double[] Betas { get; }

    /// <summary>ᾱ at each respaced index.</summary>
    public double[] AlphasCumprod { get; }

    /// <summary>ᾱ at the previous respaced index (1 at index 0).</summary>
    public double[] AlphasCumprodPrev { get; }

    /// <summary>Posterior variance β·(1−ᾱ_prev)/(1−ᾱ).</summary>
    public double[] PosteriorVariance { get; }

    /// <summary>Log posterior variance with index 0 clipped to index 1.</summary>
    public double[] PosteriorLogVarianceClipped { get; }

    /// <summary>Posterior mean coefficient of x0.</summary>
    public double[] PosteriorMeanCoef1 { get; }

    /// <summary>Posterior mean coefficient of x_t.</summary>
    public double[] PosteriorMeanCoef2 { get; }

    /// <summary>Model timesteps in sampling order, ordinal n = 0 (noisiest) first.</summary>
    public IReadOnlyList<float> SamplingTimesteps => TimestepMap.Reverse().Select(t => (float)t).ToArray();

    /// <summary>
    /// <c>space_timesteps(T, "S")</c> for one section: keep round(cur) while cur advances by (T−1)/(S−1) in float64,
    /// with Python's round-half-to-even (e.g. S = 25 gives 166 for 166.5).
    /// </summary>
    public static IReadOnlyList<int> SpaceTimesteps(int numTimesteps, int steps)
    {
        double stride = steps <= 1 ? 1.0 : (numTimesteps - 1) / (double)(steps - 1);
        var kept = new SortedSet<int>();
        double cur = 0.0;
        for (int i = 0; i < steps; i++)
        {
            kept.Add((int)Math.Round(cur, MidpointRounding.ToEven));
            cur += stride;
        }

        return kept.ToArray();
    }
}
