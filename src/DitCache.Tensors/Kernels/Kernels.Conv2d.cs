using System;

namespace DitCache.Tensors;

public static partial class Kernels
{
    // im2col is built for a band of output rows at a time, at most this many floats (8 MiB), so the column matrix of a
    // 3x3 conv over 128 channels at 256x256 (1152 x 65,536 floats, 302 MB whole) is never formed.
    private const int Conv2dBandFloats = 1 << 21;

    /// <summary>
    /// Floats of scratch <see cref="Conv2d(IGemm, ReadOnlySpan{float}, ReadOnlySpan{float}, ReadOnlySpan{float}, Span{float}, int, int, int, int, int, Span{float}, bool)"/> needs for a <paramref name="kernel"/>×<paramref name="kernel"/> conv of
    /// <paramref name="inChannels"/> channels over height×width: the im2col band (0 for a 1x1 conv, which needs none).
    /// </summary>
    /// <exception cref="ArgumentException">A size is not positive, or kernel is neither 1 nor 3.</exception>
    public static int Conv2dScratchSize(int inChannels, int height, int width, int kernel)
    {
        KernelChecks.Positive(inChannels, nameof(inChannels));
        KernelChecks.Positive(height, nameof(height));
        KernelChecks.Positive(width, nameof(width));
        CheckConvKernel(kernel);
        return kernel == 1 ? 0 : checked(kernel * kernel * inChannels * Conv2dBandRows(inChannels, height, width, kernel) * width);
    }

    /// <summary>
    /// PyTorch <c>Conv2d(inChannels, outChannels, kernel, stride=1, padding=kernel/2)</c> over one image, NCHW:
    /// <c>y[o, i, j] (+)= b[o] + Σ_{c, u, v} w[o, c, u, v] · x[c, i + u − p, j + v − p]</c> with zeros outside the image.
    /// <paramref name="x"/> is (inChannels, height, width), <paramref name="w"/> the checkpoint layout
    /// [outChannels, inChannels, kernel, kernel], <paramref name="b"/> [outChannels] or empty (no bias), and
    /// <paramref name="y"/> (outChannels, height, width). With <paramref name="accumulate"/> the result is added to
    /// what <paramref name="y"/> holds (a residual connection fused into the conv). The products run on
    /// <paramref name="gemm"/> as <c>y (outC, H·W) = w (outC, inC·k²) · col (inC·k², H·W)</c>: a 1x1 conv reads
    /// x as its B operand directly, a 3x3 conv builds the im2col matrix of a band of output rows at a time in
    /// <paramref name="scratch"/> (<see cref="Conv2dScratchSize(int, int, int, int)"/> floats).
    /// </summary>
    /// <exception cref="ArgumentException">
    /// A size is not positive, kernel is neither 1 nor 3, a span is too short, b is neither empty nor outChannels long,
    /// or y overlaps x or scratch.
    /// </exception>
    public static void Conv2d(IGemm gemm, ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> b, Span<float> y,
        int inChannels, int outChannels, int height, int width, int kernel, Span<float> scratch, bool accumulate = false)
    {
        ArgumentNullException.ThrowIfNull(gemm);
        KernelChecks.Positive(inChannels, nameof(inChannels));
        KernelChecks.Positive(outChannels, nameof(outChannels));
        KernelChecks.Positive(height, nameof(height));
        KernelChecks.Positive(width, nameof(width));
        CheckConvKernel(kernel);
        int pixels = checked(height * width), k = kernel * kernel * inChannels;
        KernelChecks.Length(x.Length, (long)inChannels * pixels, nameof(x), $"(inChannels {inChannels}, {height}, {width})");
        KernelChecks.Length(w.Length, (long)outChannels * k, nameof(w), $"[outChannels {outChannels}, inChannels {inChannels}, {kernel}, {kernel}]");
        KernelChecks.Length(y.Length, (long)outChannels * pixels, nameof(y), $"(outChannels {outChannels}, {height}, {width})");
        if (!b.IsEmpty && b.Length != outChannels)
        {
            throw new ArgumentException($"bias holds {b.Length} floats but outChannels is {outChannels}; pass outChannels floats or an empty span", nameof(b));
        }

        KernelChecks.Disjoint(x, y, nameof(x), nameof(y));
        int bandRows = Conv2dBandRows(inChannels, height, width, kernel);
        if (kernel != 1)
        {
            KernelChecks.Length(scratch.Length, (long)k * bandRows * width, nameof(scratch), "Conv2dScratchSize(inChannels, height, width, kernel)");
            KernelChecks.Disjoint(scratch, y, nameof(scratch), nameof(y));
            KernelChecks.Disjoint(x, scratch, nameof(x), nameof(scratch));
        }

        bool gemmAccumulates = StartFromBias(y, b, outChannels, pixels, accumulate);

        if (kernel == 1)
        {
            gemm.Multiply(outChannels, pixels, inChannels, w, inChannels, x, pixels, transB: false, y, pixels, gemmAccumulates);
            return;
        }

        for (int y0 = 0; y0 < height; y0 += bandRows)
        {
            int rows = Math.Min(bandRows, height - y0), n = rows * width;
            Span<float> col = scratch[..(k * n)];                                                  // (inC·9, rows·W)
            Im2Col3x3(x, col, inChannels, height, width, y0, rows, gemm.Threads);
            gemm.Multiply(outChannels, n, k, w, k, col, n, transB: false, y[(y0 * width)..], pixels, gemmAccumulates);
        }
    }

    // Starts every output plane from its bias (or adds the bias to the residual already there) so that every GEMM can
    // accumulate onto it; returns whether the GEMMs must accumulate.
    private static bool StartFromBias(Span<float> y, ReadOnlySpan<float> b, int outChannels, int pixels, bool accumulate)
    {
        if (!b.IsEmpty)
        {
            for (int o = 0; o < outChannels; o++)
            {
                Span<float> row = y.Slice(o * pixels, pixels);
                if (accumulate)
                {
                    VectorMath.ShiftScale(row, row, -b[o], 1f);                                   // y += b
                }
                else
                {
                    row.Fill(b[o]);
                }
            }
        }

        return accumulate || !b.IsEmpty;
    }

    private static void CheckConvKernel(int kernel)
    {
        if (kernel is not (1 or 3))
        {
            throw new ArgumentOutOfRangeException(nameof(kernel), kernel, $"kernel must be 1 or 3 (stride 1, padding kernel/2) but is {kernel}");
        }
    }

    // Output rows per im2col band: as many as fit Conv2dBandFloats, at least one, at most the image.
    private static int Conv2dBandRows(int inChannels, int height, int width, int kernel)
    {
        long perRow = (long)kernel * kernel * inChannels * width;
        return (int)Math.Clamp(Conv2dBandFloats / perRow, 1, height);
    }

    // col[(c·9 + u·3 + v), r·W + j] = x[c, y0 + r + u − 1, j + v − 1], zero outside the image: row (c, u, v) of the
    // matrix is input row y0 + r + u − 1 shifted by v − 1, so every band row is one copy and at most one zero. The
    // channels are shared among the GEMM's threads (the copies are a tenth of a 3x3 conv's time on one thread).
    private static unsafe void Im2Col3x3(ReadOnlySpan<float> x, Span<float> col, int channels, int height, int width,
        int y0, int rows, int threads)
    {
        fixed (float* px = x)
        fixed (float* pcol = col)
        {
            var job = new Im2ColJob { X = px, Col = pcol, Height = height, Width = width, Y0 = y0, Rows = rows };
            WorkerPool.Run(&Im2ColChannel, &job, channels, threads);
        }
    }

    private unsafe struct Im2ColJob
    {
        public float* X;
        public float* Col;
        public int Height;
        public int Width;
        public int Y0;
        public int Rows;
    }

    private static unsafe void Im2ColChannel(void* context, int c, int slot)
    {
        ref readonly Im2ColJob job = ref *(Im2ColJob*)context;
        int width = job.Width, height = job.Height, n = job.Rows * width;
        float* plane = job.X + ((long)c * height * width);                                         // (H, W)
        for (int u = 0; u < 3; u++)
        {
            for (int v = 0; v < 3; v++)
            {
                float* dst = job.Col + ((long)((c * 9) + (u * 3) + v) * n);                        // (rows, W)
                for (int r = 0; r < job.Rows; r++)
                {
                    var d = new Span<float>(dst + ((long)r * width), width);
                    int sy = job.Y0 + r + u - 1;
                    if (sy < 0 || sy >= height)
                    {
                        d.Clear();
                        continue;
                    }

                    var s = new ReadOnlySpan<float>(plane + ((long)sy * width), width);
                    switch (v)
                    {
                        case 0:                                                                    // d[j] = s[j − 1]
                            d[0] = 0f;
                            s[..(width - 1)].CopyTo(d[1..]);
                            break;
                        case 1:
                            s.CopyTo(d);
                            break;
                        default:                                                                   // d[j] = s[j + 1]
                            s[1..].CopyTo(d);
                            d[width - 1] = 0f;
                            break;
                    }
                }
            }
        }
    }
}
