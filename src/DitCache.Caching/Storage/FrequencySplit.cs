using System;
using System.Numerics;

namespace DitCache.Caching;

/// <summary>
/// FreqCa's frequency split of a token tensor (docs/methods.md §5.10): per image and per channel, the tokens are an
/// h × w patch grid (row-major, token t = i·w + j), transformed by the orthonormal 2-D DCT-II; the low band keeps the
/// coefficients (u, v) with <c>u &lt; ρ·h</c> and <c>v &lt; ρ·w</c> (ρ the cutoff), the high band is the rest.
/// A box mask is separable, so the low band is <c>L = P_h · X · P_wᵀ</c> with <c>P = Cᵀ·diag(mask)·C</c> (C the
/// orthonormal DCT-II matrix): two small symmetric projections, built once here, applied along the grid's columns and
/// rows (T·(h + w)·D multiply-adds per image instead of a transform and its inverse). The high band is
/// <c>X − L</c>, so the two bands sum to X (up to one rounding of the subtraction).
/// </summary>
public sealed class FrequencySplit
{
    private readonly float[] _ph;   // (h, h) row-major, symmetric
    private readonly float[] _pw;   // (w, w) row-major, symmetric

    /// <summary>The split of an <paramref name="height"/> × <paramref name="width"/> grid of <paramref name="channels"/>-wide tokens.</summary>
    /// <param name="height">Grid rows h.</param>
    /// <param name="width">Grid columns w.</param>
    /// <param name="channels">Floats per token D.</param>
    /// <param name="cutoff">ρ in (0, 1]: the low band keeps DCT indices below ρ·h (rows) and ρ·w (columns); the DC
    /// coefficient is always kept, ρ = 1 keeps everything.</param>
    /// <exception cref="ArgumentOutOfRangeException">A size is not positive or ρ is outside (0, 1].</exception>
    public FrequencySplit(int height, int width, int channels, double cutoff)
    {
        if (height < 1 || width < 1 || channels < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(height), $"grid {height} × {width} of {channels} channels must have positive sizes");
        }

        if (!(cutoff > 0 && cutoff <= 1))
        {
            throw new ArgumentOutOfRangeException(nameof(cutoff), cutoff, "the cutoff is a fraction of the frequency range in (0, 1]");
        }

        Height = height;
        Width = width;
        Channels = channels;
        LowRows = Kept(height, cutoff);
        LowColumns = Kept(width, cutoff);
        _ph = Projection(height, LowRows);
        _pw = Projection(width, LowColumns);
    }

    /// <summary>Grid rows h.</summary>
    public int Height { get; }

    /// <summary>Grid columns w.</summary>
    public int Width { get; }

    /// <summary>Floats per token D.</summary>
    public int Channels { get; }

    /// <summary>DCT row indices u = 0 … LowRows−1 in the low band.</summary>
    public int LowRows { get; }

    /// <summary>DCT column indices v = 0 … LowColumns−1 in the low band.</summary>
    public int LowColumns { get; }

    /// <summary>Floats of one image: h·w·D.</summary>
    public int ImageLength => Height * Width * Channels;

    /// <summary>The number of indices k in 0 … n−1 with k &lt; ρ·n (at least 1: the DC term).</summary>
    public static int Kept(int n, double cutoff)
    {
        int k = 0;
        while (k < n && k < cutoff * n)
        {
            k++;
        }

        return Math.Max(k, 1);
    }

    /// <summary>
    /// Writes the low band of <paramref name="x"/> (B images of h·w·D floats) into <paramref name="low"/>;
    /// <paramref name="scratch"/> holds the intermediate (as many floats as x). The three must not overlap.
    /// </summary>
    /// <exception cref="ArgumentException">Lengths are not a whole number of images or do not match.</exception>
    public void Low(ReadOnlySpan<float> x, Span<float> low, Span<float> scratch)
    {
        int image = ImageLength;
        if (x.Length == 0 || x.Length % image != 0 || low.Length != x.Length || scratch.Length < x.Length)
        {
            throw new ArgumentException(
                $"frequency split of {x.Length} floats into {low.Length} with {scratch.Length} of scratch; each must hold whole images of {Height}×{Width}×{Channels} = {image} floats");
        }

        int d = Channels, rowFloats = Width * d;
        for (int start = 0; start < x.Length; start += image)
        {
            ReadOnlySpan<float> xi = x.Slice(start, image);     // (h, w, D)
            Span<float> zi = scratch.Slice(start, image);       // (h, w, D): X · P_wᵀ
            Span<float> li = low.Slice(start, image);           // (h, w, D): P_h · X · P_wᵀ
            for (int i = 0; i < Height; i++)
            {
                ReadOnlySpan<float> xRow = xi.Slice(i * rowFloats, rowFloats);
                for (int j = 0; j < Width; j++)
                {
                    Span<float> dst = zi.Slice((i * rowFloats) + (j * d), d);
                    dst.Clear();
                    for (int jj = 0; jj < Width; jj++)
                    {
                        Axpy(_pw[(j * Width) + jj], xRow.Slice(jj * d, d), dst);
                    }
                }
            }

            for (int i = 0; i < Height; i++)
            {
                Span<float> dst = li.Slice(i * rowFloats, rowFloats);
                dst.Clear();
                for (int ii = 0; ii < Height; ii++)
                {
                    Axpy(_ph[(i * Height) + ii], zi.Slice(ii * rowFloats, rowFloats), dst);
                }
            }
        }
    }

    /// <summary>dst += a·x (a rounded product, then a rounded sum: no fused multiply-add).</summary>
    private static void Axpy(float a, ReadOnlySpan<float> x, Span<float> dst)
    {
        if (a == 0f)
        {
            return;
        }

        int i = 0, width = Vector<float>.Count;
        if (Vector.IsHardwareAccelerated)
        {
            var va = new Vector<float>(a);
            for (; i <= x.Length - width; i += width)
            {
                (new Vector<float>(dst.Slice(i, width)) + (new Vector<float>(x.Slice(i, width)) * va)).CopyTo(dst.Slice(i, width));
            }
        }

        for (; i < x.Length; i++)
        {
            dst[i] += a * x[i];
        }
    }

    /// <summary>
    /// <c>P = Cᵀ·diag(mask)·C</c> for the orthonormal n-point DCT-II, <c>C[u, k] = α_u·cos(π(2k + 1)u / 2n)</c> with
    /// <c>α_0 = √(1/n)</c>, <c>α_u = √(2/n)</c>, keeping u = 0 … kept−1; float64 sums, rounded once.
    /// </summary>
    private static float[] Projection(int n, int kept)
    {
        var c = new double[n * n];
        for (int u = 0; u < n; u++)
        {
            double alpha = Math.Sqrt((u == 0 ? 1.0 : 2.0) / n);
            for (int k = 0; k < n; k++)
            {
                c[(u * n) + k] = alpha * Math.Cos(Math.PI * ((2 * k) + 1) * u / (2.0 * n));
            }
        }

        var p = new float[n * n];
        for (int r = 0; r < n; r++)
        {
            for (int s = 0; s < n; s++)
            {
                double sum = 0;
                for (int u = 0; u < kept; u++)
                {
                    sum += c[(u * n) + r] * c[(u * n) + s];
                }

                p[(r * n) + s] = (float)sum;
            }
        }

        return p;
    }
}
