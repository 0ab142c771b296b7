using System;

namespace DitCache.Tensors;

public static partial class Kernels
{
    /// <summary>Output side of a pooling window of <paramref name="kernel"/> at <paramref name="stride"/> and <paramref name="pad"/>: ⌊(size + 2·pad − kernel) / stride⌋ + 1.</summary>
    public static int PoolOutSize(int size, int kernel, int stride, int pad) => ((size + (2 * pad) - kernel) / stride) + 1;

    /// <summary>
    /// PyTorch <c>F.max_pool2d(x, kernel, stride, padding=pad)</c> over (channels, height, width): the largest value of
    /// each window, the padding never chosen (it is −∞); y is (channels, PoolOutSize(height), PoolOutSize(width)).
    /// A NaN in a window makes its output NaN, as in PyTorch.
    /// </summary>
    /// <exception cref="ArgumentException">A size is not positive, pad is negative or over half the kernel, a span is too short, or y overlaps x.</exception>
    public static void MaxPool2d(ReadOnlySpan<float> x, Span<float> y, int channels, int height, int width, int kernel, int stride, int pad) =>
        Pool2d(x, y, channels, height, width, kernel, stride, pad, max: true);

    /// <summary>
    /// PyTorch <c>F.avg_pool2d(x, kernel, stride, padding=pad, count_include_pad=False)</c> over (channels, height,
    /// width): the mean of the window's cells that lie inside the image (TensorFlow's average pool, the FID
    /// Inception's; docs/methods.md §9.4). y is (channels, PoolOutSize(height), PoolOutSize(width)).
    /// </summary>
    /// <exception cref="ArgumentException">A size is not positive, pad is negative or over half the kernel, a span is too short, or y overlaps x.</exception>
    public static void AvgPool2dExcludePad(ReadOnlySpan<float> x, Span<float> y, int channels, int height, int width, int kernel, int stride, int pad) =>
        Pool2d(x, y, channels, height, width, kernel, stride, pad, max: false);

    private static void Pool2d(ReadOnlySpan<float> x, Span<float> y, int channels, int height, int width, int kernel, int stride, int pad, bool max)
    {
        KernelChecks.Positive(channels, nameof(channels));
        KernelChecks.Positive(height, nameof(height));
        KernelChecks.Positive(width, nameof(width));
        KernelChecks.Positive(kernel, nameof(kernel));
        KernelChecks.Positive(stride, nameof(stride));
        KernelChecks.NonNegative(pad, nameof(pad));
        if (2 * pad > kernel)
        {
            throw new ArgumentOutOfRangeException(nameof(pad), pad, $"pad {pad} is over half the kernel {kernel} (PyTorch refuses it too)");
        }

        if (height + (2 * pad) < kernel || width + (2 * pad) < kernel)
        {
            throw new ArgumentException($"a {kernel}x{kernel} window does not fit a {height}x{width} image padded by {pad}");
        }

        int oh = PoolOutSize(height, kernel, stride, pad), ow = PoolOutSize(width, kernel, stride, pad);
        KernelChecks.Length(x.Length, (long)channels * height * width, nameof(x), $"(channels {channels}, {height}, {width})");
        KernelChecks.Length(y.Length, (long)channels * oh * ow, nameof(y), $"(channels {channels}, {oh}, {ow})");
        KernelChecks.Disjoint(x, y, nameof(x), nameof(y));
        for (int c = 0; c < channels; c++)
        {
            ReadOnlySpan<float> plane = x.Slice(c * height * width, height * width);
            Span<float> output = y.Slice(c * oh * ow, oh * ow);
            for (int i = 0; i < oh; i++)
            {
                int r0 = Math.Max(0, (i * stride) - pad), r1 = Math.Min(height, (i * stride) - pad + kernel);
                for (int j = 0; j < ow; j++)
                {
                    int c0 = Math.Max(0, (j * stride) - pad), c1 = Math.Min(width, (j * stride) - pad + kernel);
                    float best = float.NegativeInfinity, sum = 0f;
                    for (int r = r0; r < r1; r++)
                    {
                        ReadOnlySpan<float> row = plane.Slice((r * width) + c0, c1 - c0);
                        foreach (float v in row)
                        {
                            best = float.IsNaN(v) || v > best ? v : best;
                            sum += v;
                        }

                        if (max && float.IsNaN(best))
                        {
                            break;
                        }
                    }

                    output[(i * ow) + j] = max ? best : sum / ((r1 - r0) * (c1 - c0));
                }
            }
        }
    }
}
