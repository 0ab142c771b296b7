using System;

namespace DitCache.Sampling;

/// <summary>
/// Ancestral DDPM sampling (Ho et al., arXiv 2006.11239) as DiT's <c>p_sample</c>: posterior mean from the predicted
/// x0, variance from the model's learned range (Nichol and Dhariwal, arXiv 2102.09672: log σ² = frac·log β +
/// (1−frac)·log σ²_posterior, frac = (v+1)/2), or DiT's fixed-large variance for models without learned sigma.
/// No noise at respaced index 0. Float64 tables cast to float32; arithmetic in float32.
/// </summary>
public sealed class Ddpm : IScheduler
{
    /// <summary>DDPM over <paramref name="diffusion"/>.</summary>
    public Ddpm(GaussianDiffusion diffusion)
    {
        Diffusion = diffusion;
    }

    /// <inheritdoc/>
    public string Name => "ddpm";

    /// <inheritdoc/>
    public GaussianDiffusion Diffusion { get; }

    /// <inheritdoc/>
    public bool UsesNoise(int index) => index > 0;

    /// <inheritdoc/>
    public void Step(int index, ReadOnlySpan<float> modelOutput, Span<float> x, int images, ReadOnlySpan<float> noise)
    {
        GaussianDiffusion d = Diffusion;
        int per = x.Length / images, outPer = modelOutput.Length / images;
        bool learned = outPer == 2 * per;
        if (!learned && outPer != per)
        {
            throw new ArgumentException($"model output has {outPer} values per image for {per} input values; expected equal or twice", nameof(modelOutput));
        }

        float recip = (float)Math.Sqrt(1.0 / d.AlphasCumprod[index]);
        float recipm1 = (float)Math.Sqrt((1.0 / d.AlphasCumprod[index]) - 1.0);
        float coef1 = (float)d.PosteriorMeanCoef1[index], coef2 = (float)d.PosteriorMeanCoef2[index];
        float minLog = (float)d.PosteriorLogVarianceClipped[index];
        float maxLog = (float)Math.Log(d.Betas[index]);
        // FIXED_LARGE (learn_sigma = False in DiT): variance = append(posterior_variance[1], betas[1:]).
        float fixedLog = (float)Math.Log(index == 0 && d.Steps > 1 ? d.PosteriorVariance[1] : d.Betas[index]);
        bool addNoise = UsesNoise(index);
        for (int img = 0; img < images; img++)
        {
            Span<float> xi = x.Slice(img * per, per);
            ReadOnlySpan<float> eps = modelOutput.Slice(img * outPer, per);
            ReadOnlySpan<float> v = learned ? modelOutput.Slice((img * outPer) + per, per) : ReadOnlySpan<float>.Empty;
            for (int j = 0; j < per; j++)
            {
                float x0 = (recip * xi[j]) - (recipm1 * eps[j]);
                float mean = (coef1 * x0) + (coef2 * xi[j]);
                if (!addNoise)
                {
                    xi[j] = mean;
                    continue;
                }

                float logVar = fixedLog;
                if (learned)
                {
                    float frac = (v[j] + 1) / 2;
                    logVar = (frac * maxLog) + ((1 - frac) * minLog);
                }

                xi[j] = mean + (MathF.Exp(0.5f * logVar) * noise[(img * per) + j]);
            }
        }
    }
}
