using System;

namespace DitCache.Tensors;

public static partial class Kernels
{
    /// <summary>
    /// DiT <c>unpatchify</c>: x (n, T, p·p·c) with T = (h/p)·(w/p) → img (n, c, h, w), i.e. reshape to
    /// (n, gh, gw, p, q, c) and einsum <c>nhwpqc → nchpwq</c>:
    /// <c>img[b, ch, gy·p + py, gx·p + qx] = x[b, gy·gw + gx, (py·p + qx)·c + ch]</c>.
    /// </summary>
    /// <exception cref="ArgumentException">h or w is not a multiple of p, a span is too short, or img overlaps x.</exception>
    public static void Unpatchify(ReadOnlySpan<float> x, Span<float> img, int n, int c, int h, int w, int p)
    {
        CheckImage(n, c, h, w, p);
        int gh = h / p;
        int gw = w / p;
        int patch = p * p * c;
        long count = (long)n * c * h * w;
        KernelChecks.Length(x.Length, count, nameof(x), $"(n {n}, T {gh * gw}, p*p*c {patch})");
        KernelChecks.Length(img.Length, count, nameof(img), $"(n {n}, c {c}, h {h}, w {w})");
        KernelChecks.Disjoint(x, img, nameof(x), nameof(img));
        for (int b = 0; b < n; b++)
        {
            for (int gy = 0; gy < gh; gy++)
            {
                for (int gx = 0; gx < gw; gx++)
                {
                    ReadOnlySpan<float> token = x.Slice((int)((((long)b * gh * gw) + (gy * gw) + gx) * patch), patch);
                    for (int py = 0; py < p; py++)
                    {
                        for (int qx = 0; qx < p; qx++)
                        {
                            int src = ((py * p) + qx) * c;
                            long dst = ((((long)b * c * h) + (gy * p) + py) * w) + (gx * p) + qx;
                            for (int ch = 0; ch < c; ch++)
                            {
                                img[(int)(dst + ((long)ch * h * w))] = token[src + ch];
                            }
                        }
                    }
                }
            }
        }
    }
}
