using System;
using DitCache.Tensors;

namespace DitCache.Evaluation.Metrics;

/// <summary>
/// Fidelity of an accelerated image to the full-compute image at the same seed (docs/methods.md §9.2, as TeaCache's
/// <c>common_metrics</c> and Spectrum measure it). Both images are in the model's [−1, 1] range; they are mapped to
/// [0, 1] and clamped there, as an image written to disk would be, before scoring.
/// </summary>
public static class ImageMetrics
{
    /// <summary>The PSNR reported for identical images (the reference's cap).</summary>
    public const double PsnrCap = 100.0;

    /// <summary>Side of the SSIM Gaussian window.</summary>
    public const int SsimWindow = 11;

    /// <summary>Standard deviation of the SSIM Gaussian window.</summary>
    public const double SsimSigma = 1.5;

    /// <summary>Maps a model value in [−1, 1] to a pixel in [0, 1], clamped.</summary>
    public static double ToUnit(float v) => Math.Clamp((v + 1.0) * 0.5, 0.0, 1.0);

    /// <summary>
    /// PSNR in dB of one image against its reference: <c>20·log10(1/√MSE)</c> on [0, 1] pixels, capped at
    /// <see cref="PsnrCap"/> (identical images).
    /// </summary>
    /// <exception cref="ArgumentException">Lengths differ or are zero.</exception>
    public static double Psnr(ReadOnlySpan<float> image, ReadOnlySpan<float> reference)
    {
        CheckLengths(image, reference);
        double sum = 0;
        for (int i = 0; i < image.Length; i++)
        {
            double e = ToUnit(image[i]) - ToUnit(reference[i]);
            sum += e * e;
        }

        double mse = sum / image.Length;
        return mse == 0 ? PsnrCap : Math.Min(PsnrCap, 20.0 * Math.Log10(1.0 / Math.Sqrt(mse)));
    }

    /// <summary>
    /// SSIM of one single-channel <paramref name="height"/>×<paramref name="width"/> image against its reference:
    /// 11×11 Gaussian window (σ = 1.5), C1 = 0.01², C2 = 0.03², local statistics over the valid region only (the
    /// window never leaves the image), the mean of the SSIM map.
    /// </summary>
    /// <exception cref="ArgumentException">Lengths differ from height·width, or the image is smaller than the window.</exception>
    public static double Ssim(ReadOnlySpan<float> image, ReadOnlySpan<float> reference, int height, int width)
    {
        CheckLengths(image, reference);
        if (image.Length != height * width)
        {
            throw new ArgumentException($"image has {image.Length} pixels, expected {height}x{width}", nameof(image));
        }

        if (height < SsimWindow || width < SsimWindow)
        {
            throw new ArgumentException($"SSIM needs images of at least {SsimWindow}x{SsimWindow}, got {height}x{width}", nameof(height));
        }

        const double C1 = 0.01 * 0.01, C2 = 0.03 * 0.03;
        Span<double> w = stackalloc double[SsimWindow * SsimWindow];
        GaussianWindow(w);
        int oh = height - SsimWindow + 1, ow = width - SsimWindow + 1;
        double total = 0;
        for (int y = 0; y < oh; y++)
        {
            for (int x = 0; x < ow; x++)
            {
                double m1 = 0, m2 = 0, s11 = 0, s22 = 0, s12 = 0;
                for (int dy = 0; dy < SsimWindow; dy++)
                {
                    for (int dx = 0; dx < SsimWindow; dx++)
                    {
                        int p = ((y + dy) * width) + x + dx;
                        double k = w[(dy * SsimWindow) + dx], a = ToUnit(image[p]), b = ToUnit(reference[p]);
                        m1 += k * a;
                        m2 += k * b;
                        s11 += k * a * a;
                        s22 += k * b * b;
                        s12 += k * a * b;
                    }
                }

                double v1 = s11 - (m1 * m1), v2 = s22 - (m2 * m2), cov = s12 - (m1 * m2);
                total += ((2 * m1 * m2) + C1) * ((2 * cov) + C2) / (((m1 * m1) + (m2 * m2) + C1) * (v1 + v2 + C2));
            }
        }

        return total / (oh * ow);
    }

    /// <summary>‖a − b‖₂ / ‖b‖₂ over raw model values (0 when both are zero).</summary>
    public static double RelativeL2(ReadOnlySpan<float> a, ReadOnlySpan<float> reference)
    {
        CheckLengths(a, reference);
        return RelativeError.L2(a, reference);
    }

    /// <summary>
    /// Mean PSNR and mean SSIM over <paramref name="count"/> single-channel images laid out one after another. SSIM is
    /// NaN for images smaller than its <see cref="SsimWindow"/>×<see cref="SsimWindow"/> window (small latents): the
    /// valid region is empty.
    /// </summary>
    public static (double Psnr, double Ssim) Mean(ReadOnlySpan<float> images, ReadOnlySpan<float> references, int count, int height, int width)
    {
        CheckLengths(images, references);
        int size = height * width;
        if (count < 1 || images.Length != count * size)
        {
            throw new ArgumentException($"expected {count} images of {height}x{width} ({count * size} values), got {images.Length}", nameof(images));
        }

        bool ssimDefined = height >= SsimWindow && width >= SsimWindow;
        double psnr = 0, ssim = ssimDefined ? 0 : double.NaN;
        for (int i = 0; i < count; i++)
        {
            psnr += Psnr(images.Slice(i * size, size), references.Slice(i * size, size));
            if (ssimDefined)
            {
                ssim += Ssim(images.Slice(i * size, size), references.Slice(i * size, size), height, width);
            }
        }

        return (psnr / count, ssim / count);
    }

    // The normalised 2-D Gaussian: the outer product of the 1-D kernel exp(−(i−5)²/(2σ²)) / Σ (OpenCV getGaussianKernel).
    private static void GaussianWindow(Span<double> w)
    {
        Span<double> g = stackalloc double[SsimWindow];
        double sum = 0;
        int half = SsimWindow / 2;
        for (int i = 0; i < SsimWindow; i++)
        {
            g[i] = Math.Exp(-((i - half) * (i - half)) / (2 * SsimSigma * SsimSigma));
            sum += g[i];
        }

        for (int i = 0; i < SsimWindow; i++)
        {
            for (int j = 0; j < SsimWindow; j++)
            {
                w[(i * SsimWindow) + j] = g[i] * g[j] / (sum * sum);
            }
        }
    }

    private static void CheckLengths(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        if (a.Length != b.Length || a.Length == 0)
        {
            throw new ArgumentException($"images must have the same non-zero length, got {a.Length} and {b.Length}");
        }
    }
}
