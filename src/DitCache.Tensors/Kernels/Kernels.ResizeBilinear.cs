using System;

namespace DitCache.Tensors;

public static partial class Kernels
{
    /// <summary>
    /// PyTorch <c>F.interpolate(x, size=(outHeight, outWidth), mode="bilinear", align_corners=False)</c> (no
    /// antialiasing) over (channels, height, width): output pixel i reads source coordinate
    /// <c>s = max(0, (i + 0.5)·height/outHeight − 0.5)</c>, blending rows ⌊s⌋ and ⌊s⌋ + 1 (the last row repeated at
    /// the edge) by the fraction of s, and likewise along the width; the blending weights are PyTorch's CPU weights
    /// bit for bit (see SourceIndex).
    /// </summary>
    /// <exception cref="ArgumentException">A size is not positive, a span is too short, or y overlaps x.</exception>
    public static void ResizeBilinear(ReadOnlySpan<float> x, Span<float> y, int channels, int height, int width, int outHeight, int outWidth)
    {
        KernelChecks.Positive(channels, nameof(channels));
        KernelChecks.Positive(height, nameof(height));
        KernelChecks.Positive(width, nameof(width));
        KernelChecks.Positive(outHeight, nameof(outHeight));
        KernelChecks.Positive(outWidth, nameof(outWidth));
        KernelChecks.Length(x.Length, (long)channels * height * width, nameof(x), $"(channels {channels}, {height}, {width})");
        KernelChecks.Length(y.Length, (long)channels * outHeight * outWidth, nameof(y), $"(channels {channels}, {outHeight}, {outWidth})");
        KernelChecks.Disjoint(x, y, nameof(x), nameof(y));

        // Per output column: the two source columns and their weights (the same for every row and channel).
        Span<int> col0 = outWidth <= 1024 ? stackalloc int[outWidth] : new int[outWidth];
        Span<int> col1 = outWidth <= 1024 ? stackalloc int[outWidth] : new int[outWidth];
        Span<float> wCol = outWidth <= 1024 ? stackalloc float[outWidth] : new float[outWidth];
        for (int j = 0; j < outWidth; j++)
        {
            (col0[j], col1[j], wCol[j]) = SourceIndex(j, width, outWidth);
        }

        for (int i = 0; i < outHeight; i++)
        {
            (int r0, int r1, float wRow) = SourceIndex(i, height, outHeight);
            float wRow0 = 1f - wRow;
            for (int c = 0; c < channels; c++)
            {
                ReadOnlySpan<float> top = x.Slice(((c * height) + r0) * width, width);
                ReadOnlySpan<float> bottom = x.Slice(((c * height) + r1) * width, width);
                Span<float> output = y.Slice(((c * outHeight) + i) * outWidth, outWidth);
                for (int j = 0; j < outWidth; j++)
                {
                    float w1 = wCol[j], w0 = 1f - w1;
                    output[j] = (wRow0 * ((w0 * top[col0[j]]) + (w1 * top[col1[j]])))
                        + (wRow * ((w0 * bottom[col0[j]]) + (w1 * bottom[col1[j]])));
                }
            }
        }
    }

    // PyTorch's area_pixel_compute_source_index (align_corners=False) and the neighbour rule of upsample_bilinear2d: the
    // scale is a float32 quotient, the coordinate (scale·(i + 0.5) − 0.5) is formed in double (the index is an integer
    // promoted with 0.5) and the fraction rounded to float32 once, which reproduces PyTorch 1.13's weights bit for bit.
    private static (int Low, int High, float Fraction) SourceIndex(int i, int inSize, int outSize)
    {
        float scale = (float)inSize / outSize;
        double s = Math.Max(0.0, (scale * (i + 0.5)) - 0.5);
        int low = Math.Min((int)s, inSize - 1);
        int high = low < inSize - 1 ? low + 1 : low;
        return (low, high, (float)(s - low));
    }
}
