using System;

namespace DitCache.Sampling;

/// <summary>
/// DDIM (Song et al., arXiv 2010.02502) as DiT's <c>ddim_sample</c>: x0 from ε, ε re-derived from x0, no clipping,
/// noise scaled by η (0 = deterministic). Coefficients are float64 tables cast to float32, arithmetic in float32, as
/// the PyTorch reference does.
/// </summary>
public sealed class Ddim : IScheduler
{
    private readonly float _eta;

    /// <summary>DDIM over <paramref name="diffusion"/> with noise scale <paramref name="eta"/> ≥ 0.</summary>
    public Ddim(GaussianDiffusion diffusion, double eta = 0.0)
    {
        if (!(eta >= 0) || !double.IsFinite(eta))
        {
            throw new ArgumentOutOfRangeException(nameof(eta), eta, "DDIM eta must be a finite number >= 0");
        }

        Diffusion = diffusion;
        _eta = (float)eta;
    }

    /// <inheritdoc/>
    public string Name => "ddim";

    /// <inheritdoc/>
    public GaussianDiffusion Diffusion { get; }

    /// <inheritdoc/>
    public bool UsesNoise(int index) => _eta > 0 && index > 0;

    /// <inheritdoc/>
    public void Step(int index, ReadOnlySpan<float> modelOutput, Span<float> x, int images, ReadOnlySpan<float> noise)
    {
        GaussianDiffusion d = Diffusion;
        float abar = (float)d.AlphasCumprod[index], abarPrev = (float)d.AlphasCumprodPrev[index];
        float recip = (float)Math.Sqrt(1.0 / d.AlphasCumprod[index]);                 // sqrt_recip_alphas_cumprod
        float recipm1 = (float)Math.Sqrt((1.0 / d.AlphasCumprod[index]) - 1.0);       // sqrt_recipm1_alphas_cumprod
        float sigma = _eta * MathF.Sqrt((1 - abarPrev) / (1 - abar)) * MathF.Sqrt(1 - (abar / abarPrev));
        float sqrtPrev = MathF.Sqrt(abarPrev), dirScale = MathF.Sqrt(1 - abarPrev - (sigma * sigma));
        bool addNoise = UsesNoise(index);
        int per = x.Length / images, outPer = modelOutput.Length / images;
        for (int img = 0; img < images; img++)
        {
            Span<float> xi = x.Slice(img * per, per);
            ReadOnlySpan<float> eps = modelOutput.Slice(img * outPer, per);
            for (int j = 0; j < per; j++)
            {
                float x0 = (recip * xi[j]) - (recipm1 * eps[j]);
                float epsHat = ((recip * xi[j]) - x0) / recipm1;
                float next = (x0 * sqrtPrev) + (dirScale * epsHat);
                xi[j] = addNoise ? next + (sigma * noise[(img * per) + j]) : next;
            }
        }
    }
}
