using System;

namespace DitCache.Tensors;

public static partial class Kernels
{
    /// <summary>Floats of scratch the conv of <paramref name="shape"/> needs: its im2col band (0 for a pointwise conv).</summary>
    /// <exception cref="ArgumentException">Invalid geometry.</exception>
    public static int Conv2dScratchSize(in ConvShape shape)
    {
        shape.Validate();
        return shape.IsPointwise ? 0 : checked(shape.Taps * ShapedBandRows(shape) * shape.OutWidth);
    }

    /// <summary>
    /// PyTorch <c>Conv2d</c> of any kernel size, stride and zero padding (<paramref name="shape"/>) over one NCHW image:
    /// <c>y[o, i, j] (+)= b[o] + Σ_{c, u, v} w[o, c, u, v] · x[c, i·sh + u − ph, j·sw + v − pw]</c>, zeros outside the
    /// image. <paramref name="x"/> is (InChannels, Height, Width), <paramref name="w"/> the checkpoint layout
    /// [OutChannels, InChannels, KernelH, KernelW], <paramref name="b"/> [OutChannels] or empty, <paramref name="y"/>
    /// (OutChannels, OutHeight, OutWidth). The product runs on <paramref name="gemm"/> as
    /// <c>y (outC, OH·OW) = w (outC, taps) · col (taps, OH·OW)</c>; a pointwise conv reads x directly, any other
    /// builds the im2col matrix of a band of output rows at a time in <paramref name="scratch"/>
    /// (<see cref="Conv2dScratchSize(in ConvShape)"/> floats).
    /// </summary>
    /// <exception cref="ArgumentException">Invalid geometry, a span too short, b of the wrong length, or y overlapping x or scratch.</exception>
    public static void Conv2d(IGemm gemm, in ConvShape shape, ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> b,
        Span<float> y, Span<float> scratch, bool accumulate = false)
    {
        ArgumentNullException.ThrowIfNull(gemm);
        shape.Validate();
        int outC = shape.OutChannels, oh = shape.OutHeight, ow = shape.OutWidth, pixels = checked(oh * ow), k = shape.Taps;
        KernelChecks.Length(x.Length, (long)shape.InChannels * shape.Height * shape.Width, nameof(x), $"(inChannels {shape.InChannels}, {shape.Height}, {shape.Width})");
        KernelChecks.Length(w.Length, (long)outC * k, nameof(w), $"[outChannels {outC}, inChannels {shape.InChannels}, {shape.KernelH}, {shape.KernelW}]");
        KernelChecks.Length(y.Length, (long)outC * pixels, nameof(y), $"(outChannels {outC}, {oh}, {ow})");
        if (!b.IsEmpty && b.Length != outC)
        {
            throw new ArgumentException($"bias holds {b.Length} floats but outChannels is {outC}; pass outChannels floats or an empty span", nameof(b));
        }

        KernelChecks.Disjoint(x, y, nameof(x), nameof(y));
        int bandRows = ShapedBandRows(shape);
        if (!shape.IsPointwise)
        {
            KernelChecks.Length(scratch.Length, (long)k * bandRows * ow, nameof(scratch), "Conv2dScratchSize(shape)");
            KernelChecks.Disjoint(scratch, y, nameof(scratch), nameof(y));
            KernelChecks.Disjoint(x, scratch, nameof(x), nameof(scratch));
        }

        bool gemmAccumulates = StartFromBias(y, b, outC, pixels, accumulate);

        if (shape.IsPointwise)
        {
            gemm.Multiply(outC, pixels, shape.InChannels, w, shape.InChannels, x, pixels, transB: false, y, pixels, gemmAccumulates);
            return;
        }

        for (int y0 = 0; y0 < oh; y0 += bandRows)
        {
            int rows = Math.Min(bandRows, oh - y0), n = rows * ow;
            Span<float> col = scratch[..(k * n)];                                                  // (taps, rows·OW)
            Im2ColShaped(shape, x, col, y0, rows, gemm.Threads);
            gemm.Multiply(outC, n, k, w, k, col, n, transB: false, y[(y0 * ow)..], pixels, gemmAccumulates);
        }
    }

    // Output rows per im2col band: as many as fit Conv2dBandFloats, at least one, at most the output.
    private static int ShapedBandRows(in ConvShape shape)
    {
        long perRow = (long)shape.Taps * shape.OutWidth;
        return (int)Math.Clamp(Conv2dBandFloats / perRow, 1, shape.OutHeight);
    }

    private static unsafe void Im2ColShaped(in ConvShape shape, ReadOnlySpan<float> x, Span<float> col, int y0, int rows, int threads)
    {
        fixed (float* px = x)
        fixed (float* pcol = col)
        {
            var job = new ShapedIm2ColJob { X = px, Col = pcol, Shape = shape, Y0 = y0, Rows = rows };
            WorkerPool.Run(&Im2ColShapedChannel, &job, shape.InChannels, threads);
        }
    }

    private unsafe struct ShapedIm2ColJob
    {
        public float* X;
        public float* Col;
        public ConvShape Shape;
        public int Y0;
        public int Rows;
    }

    // col[(c·kh + u)·kw + v, r·OW + j] = x[c, (y0 + r)·sh + u − ph, j·sw + v − pw], zero outside the image. At stride 1
    // a row is one copy between its zero edges; at other strides it is gathered.
    private static unsafe void Im2ColShapedChannel(void* context, int c, int slot)
    {
        ref readonly ShapedIm2ColJob job = ref *(ShapedIm2ColJob*)context;
        ConvShape s = job.Shape;
        int height = s.Height, width = s.Width, ow = s.OutWidth, n = job.Rows * ow;
        float* plane = job.X + ((long)c * height * width);                                         // (H, W)
        for (int u = 0; u < s.KernelH; u++)
        {
            for (int v = 0; v < s.KernelW; v++)
            {
                float* dst = job.Col + ((long)((((c * s.KernelH) + u) * s.KernelW) + v) * n);       // (rows, OW)
                int shift = v - s.PadW;
                // Output columns j whose source column j·sw + shift lies in [0, W).
                int jBegin = Math.Min(ow, shift >= 0 ? 0 : (-shift + s.StrideW - 1) / s.StrideW);
                int jEnd = Math.Max(jBegin, Math.Min(ow, width - shift <= 0 ? 0 : ((width - shift - 1) / s.StrideW) + 1));
                for (int r = 0; r < job.Rows; r++)
                {
                    var d = new Span<float>(dst + ((long)r * ow), ow);
                    int sy = ((job.Y0 + r) * s.StrideH) + u - s.PadH;
                    if (sy < 0 || sy >= height)
                    {
                        d.Clear();
                        continue;
                    }

                    float* src = plane + ((long)sy * width);
                    d[..jBegin].Clear();
                    d[jEnd..].Clear();
                    if (s.StrideW == 1)
                    {
                        new ReadOnlySpan<float>(src + jBegin + shift, jEnd - jBegin).CopyTo(d[jBegin..jEnd]);
                    }
                    else
                    {
                        for (int j = jBegin; j < jEnd; j++)
                        {
                            d[j] = src[(j * s.StrideW) + shift];
                        }
                    }
                }
            }
        }
    }
}
