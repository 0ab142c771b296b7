using System;

namespace DitCache.Tensors;

public static partial class Kernels
{
    /// <summary>
    /// timm <c>PatchEmbed</c>: a Conv2d with kernel = stride = <paramref name="p"/>, then flatten(2).transpose(1, 2).
    /// img (n, c, h, w), weight [dim, c, p, p], bias [dim] → output (n, (h/p)·(w/p), dim), tokens row-major over the
    /// patch grid. Done as im2col into <paramref name="scratch"/> (n·T rows of c·p·p, ordered (c, py, px) like the
    /// flattened weight) and one GEMM with the weight transposed.
    /// </summary>
    /// <exception cref="ArgumentException">h or w is not a multiple of p, or a span is too short.</exception>
    public static void PatchEmbed(IGemm gemm, ReadOnlySpan<float> img, ReadOnlySpan<float> weight,
        ReadOnlySpan<float> bias, Span<float> output, Span<float> scratch, int n, int c, int h, int w, int p, int dim)
    {
        ArgumentNullException.ThrowIfNull(gemm);
        CheckImage(n, c, h, w, p);
        KernelChecks.Positive(dim, nameof(dim));
        int gh = h / p;
        int gw = w / p;
        int tokens = gh * gw;
        int patch = c * p * p;
        long rows = (long)n * tokens;
        KernelChecks.Length(img.Length, (long)n * c * h * w, nameof(img), $"(n {n}, c {c}, h {h}, w {w})");
        KernelChecks.Length(weight.Length, (long)dim * patch, nameof(weight), $"[dim {dim}, c {c}, p {p}, p {p}]");
        KernelChecks.Length(bias.Length, dim, nameof(bias), $"[dim {dim}]");
        KernelChecks.Length(output.Length, rows * dim, nameof(output), $"(n {n}, tokens {tokens}, dim {dim})");
        KernelChecks.Length(scratch.Length, rows * patch, nameof(scratch), $"n*T*c*p*p = {rows}*{patch}");
        for (int b = 0; b < n; b++)
        {
            for (int gy = 0; gy < gh; gy++)
            {
                for (int gx = 0; gx < gw; gx++)
                {
                    Span<float> col = scratch.Slice((int)((((long)b * tokens) + (gy * gw) + gx) * patch), patch);
                    int o = 0;
                    for (int ch = 0; ch < c; ch++)
                    {
                        for (int py = 0; py < p; py++)
                        {
                            int src = (int)((((((long)b * c) + ch) * h) + (gy * p) + py) * w) + (gx * p);
                            img.Slice(src, p).CopyTo(col.Slice(o, p));
                            o += p;
                        }
                    }
                }
            }
        }

        Linear(gemm, scratch[..(int)(rows * patch)], weight, bias[..dim], output, (int)rows, patch, dim);
    }

    private static void CheckImage(int n, int c, int h, int w, int p)
    {
        KernelChecks.NonNegative(n, nameof(n));
        KernelChecks.Positive(c, nameof(c));
        KernelChecks.Positive(p, nameof(p));
        KernelChecks.NonNegative(h, nameof(h));
        KernelChecks.NonNegative(w, nameof(w));
        if (h % p != 0 || w % p != 0)
        {
            throw new ArgumentException($"image {h}x{w} is not divisible by patch size {p}; use a resolution that is a multiple of {p}", nameof(p));
        }
    }
}
