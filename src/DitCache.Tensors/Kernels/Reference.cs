using System;

namespace DitCache.Tensors;

/// <summary>
/// Naive scalar versions of every kernel in <see cref="Kernels"/> and of the GEMM: the oracles the tests compare
/// against (llm.c's <c>matmul_forward_naive</c> pattern). They share no code with the fast paths, follow the formulas
/// literally, and accumulate sums in double so their own rounding error is negligible next to the float32 kernels'.
/// Slow by design; never call them from the engine.
/// </summary>
internal static class Reference
{
    /// <summary>C (m×n, ldc) (+)= A (m×k, lda) · op(B); op(B) = Bᵀ with B n×k when transB, else B k×n.</summary>
    public static void MatMul(int m, int n, int k, ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb,
        bool transB, Span<float> c, int ldc, bool accumulate)
    {
        for (int i = 0; i < m; i++)
        {
            for (int j = 0; j < n; j++)
            {
                double s = accumulate ? c[(i * ldc) + j] : 0.0;
                for (int p = 0; p < k; p++)
                {
                    float bv = transB ? b[(j * ldb) + p] : b[(p * ldb) + j];
                    s += (double)a[(i * lda) + p] * bv;
                }

                c[(i * ldc) + j] = (float)s;
            }
        }
    }

    public static void LayerNorm(ReadOnlySpan<float> x, Span<float> y, int rows, int dim, float eps)
    {
        for (int r = 0; r < rows; r++)
        {
            double mean = 0;
            for (int j = 0; j < dim; j++)
            {
                mean += x[(r * dim) + j];
            }

            mean /= dim;
            double variance = 0;
            for (int j = 0; j < dim; j++)
            {
                double d = x[(r * dim) + j] - mean;
                variance += d * d;
            }

            variance /= dim;
            double inv = 1.0 / Math.Sqrt(variance + eps);
            for (int j = 0; j < dim; j++)
            {
                y[(r * dim) + j] = (float)((x[(r * dim) + j] - mean) * inv);
            }
        }
    }

    public static void GeluTanh(ReadOnlySpan<float> x, Span<float> y)
    {
        for (int i = 0; i < x.Length; i++)
        {
            double v = x[i];
            y[i] = (float)(0.5 * v * (1.0 + Math.Tanh(Math.Sqrt(2.0 / Math.PI) * (v + (0.044715 * v * v * v)))));
        }
    }

    /// <summary>First index whose value is NaN or infinite (by its IEEE bits: exponent all ones), or −1.</summary>
    public static int IndexOfNonFinite(ReadOnlySpan<float> x)
    {
        for (int i = 0; i < x.Length; i++)
        {
            if ((BitConverter.SingleToUInt32Bits(x[i]) & 0x7F80_0000u) == 0x7F80_0000u)
            {
                return i;
            }
        }

        return -1;
    }

    public static void Silu(ReadOnlySpan<float> x, Span<float> y)
    {
        for (int i = 0; i < x.Length; i++)
        {
            double v = x[i];
            y[i] = (float)(v / (1.0 + Math.Exp(-v)));
        }
    }

    public static void AddBias(Span<float> x, ReadOnlySpan<float> bias, int rows, int cols)
    {
        for (int r = 0; r < rows; r++)
        {
            for (int j = 0; j < cols; j++)
            {
                x[(r * cols) + j] += bias[j];
            }
        }
    }

    public static void Softmax(Span<float> x, int rows, int cols)
    {
        for (int r = 0; r < rows; r++)
        {
            double max = double.NegativeInfinity;
            for (int j = 0; j < cols; j++)
            {
                max = Math.Max(max, x[(r * cols) + j]);
            }

            double sum = 0;
            for (int j = 0; j < cols; j++)
            {
                sum += Math.Exp(x[(r * cols) + j] - max);
            }

            for (int j = 0; j < cols; j++)
            {
                x[(r * cols) + j] = (float)(Math.Exp(x[(r * cols) + j] - max) / sum);
            }
        }
    }

    public static void Modulate(ReadOnlySpan<float> x, Span<float> y, ReadOnlySpan<float> mod, int modStride,
        int shiftOffset, int scaleOffset, int batch, int tokens, int dim)
    {
        for (int b = 0; b < batch; b++)
        {
            for (int t = 0; t < tokens; t++)
            {
                for (int j = 0; j < dim; j++)
                {
                    int at = (((b * tokens) + t) * dim) + j;
                    double shift = mod[(b * modStride) + shiftOffset + j];
                    double scale = mod[(b * modStride) + scaleOffset + j];
                    y[at] = (float)((x[at] * (1.0 + scale)) + shift);
                }
            }
        }
    }

    public static void GatedResidualAdd(Span<float> x, ReadOnlySpan<float> y, ReadOnlySpan<float> mod, int modStride,
        int gateOffset, int batch, int tokens, int dim)
    {
        for (int b = 0; b < batch; b++)
        {
            for (int t = 0; t < tokens; t++)
            {
                for (int j = 0; j < dim; j++)
                {
                    int at = (((b * tokens) + t) * dim) + j;
                    x[at] = (float)(x[at] + ((double)mod[(b * modStride) + gateOffset + j] * y[at]));
                }
            }
        }
    }

    public static void Linear(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> b, Span<float> y,
        int rows, int inF, int outF)
    {
        for (int r = 0; r < rows; r++)
        {
            for (int o = 0; o < outF; o++)
            {
                double s = b.IsEmpty ? 0.0 : b[o];
                for (int i = 0; i < inF; i++)
                {
                    s += (double)x[(r * inF) + i] * w[(o * inF) + i];
                }

                y[(r * outF) + o] = (float)s;
            }
        }
    }

    public static void Attention(ReadOnlySpan<float> qkv, Span<float> output, int batch, int tokens, int heads, int headDim)
    {
        int width = heads * headDim;
        double scale = 1.0 / Math.Sqrt(headDim);
        double[] s = new double[tokens];
        for (int b = 0; b < batch; b++)
        {
            for (int h = 0; h < heads; h++)
            {
                for (int i = 0; i < tokens; i++)
                {
                    double max = double.NegativeInfinity;
                    for (int j = 0; j < tokens; j++)
                    {
                        double dot = 0;
                        for (int d = 0; d < headDim; d++)
                        {
                            float q = qkv[(((b * tokens) + i) * 3 * width) + (h * headDim) + d];
                            float k = qkv[(((b * tokens) + j) * 3 * width) + width + (h * headDim) + d];
                            dot += (double)q * k;
                        }

                        s[j] = dot * scale;
                        max = Math.Max(max, s[j]);
                    }

                    double sum = 0;
                    for (int j = 0; j < tokens; j++)
                    {
                        s[j] = Math.Exp(s[j] - max);
                        sum += s[j];
                    }

                    for (int d = 0; d < headDim; d++)
                    {
                        double o = 0;
                        for (int j = 0; j < tokens; j++)
                        {
                            o += s[j] * qkv[(((b * tokens) + j) * 3 * width) + (2 * width) + (h * headDim) + d];
                        }

                        output[(((b * tokens) + i) * width) + (h * headDim) + d] = (float)(o / sum);
                    }
                }
            }
        }
    }

    /// <summary>The attention maps softmax(q·kᵀ/√headDim) into probabilities (batch, heads, tokens, tokens).</summary>
    public static void AttentionProbabilities(ReadOnlySpan<float> qkv, Span<float> probabilities, int batch, int tokens,
        int heads, int headDim)
    {
        int width = heads * headDim;
        double scale = 1.0 / Math.Sqrt(headDim);
        double[] s = new double[tokens];
        for (int b = 0; b < batch; b++)
        {
            for (int h = 0; h < heads; h++)
            {
                for (int i = 0; i < tokens; i++)
                {
                    double max = double.NegativeInfinity;
                    for (int j = 0; j < tokens; j++)
                    {
                        double dot = 0;
                        for (int d = 0; d < headDim; d++)
                        {
                            dot += (double)qkv[(((b * tokens) + i) * 3 * width) + (h * headDim) + d]
                                * qkv[(((b * tokens) + j) * 3 * width) + width + (h * headDim) + d];
                        }

                        s[j] = dot * scale;
                        max = Math.Max(max, s[j]);
                    }

                    double sum = 0;
                    for (int j = 0; j < tokens; j++)
                    {
                        sum += Math.Exp(s[j] - max);
                    }

                    for (int j = 0; j < tokens; j++)
                    {
                        probabilities[(((((b * heads) + h) * tokens) + i) * tokens) + j] = (float)(Math.Exp(s[j] - max) / sum);
                    }
                }
            }
        }
    }

    public static void AttentionReceived(ReadOnlySpan<float> probabilities, Span<float> received, int batch, int heads, int tokens)
    {
        for (int b = 0; b < batch; b++)
        {
            for (int k = 0; k < tokens; k++)
            {
                double sum = 0;
                for (int h = 0; h < heads; h++)
                {
                    for (int q = 0; q < tokens; q++)
                    {
                        sum += probabilities[(((((b * heads) + h) * tokens) + q) * tokens) + k];
                    }
                }

                received[(b * tokens) + k] = (float)(sum / heads);
            }
        }
    }

    /// <summary>norms[b, h, t] = ‖v[b, t, h, :]‖₂, v the last third of each qkv row, in double.</summary>
    public static void ValueNorms(ReadOnlySpan<float> qkv, Span<float> norms, int batch, int tokens, int heads, int headDim)
    {
        int d = heads * headDim;
        for (int b = 0; b < batch; b++)
        {
            for (int h = 0; h < heads; h++)
            {
                for (int t = 0; t < tokens; t++)
                {
                    double sum = 0;
                    for (int j = 0; j < headDim; j++)
                    {
                        double v = qkv[(((b * tokens) + t) * 3 * d) + (2 * d) + (h * headDim) + j];
                        sum += v * v;
                    }

                    norms[(((b * heads) + h) * tokens) + t] = (float)Math.Sqrt(sum);
                }
            }
        }
    }

    /// <summary>LayerNorm (no affine, biased variance) then modulate, per (batch, token) row, in double.</summary>
    public static void LayerNormModulate(ReadOnlySpan<float> x, Span<float> y, ReadOnlySpan<float> mod, int modStride,
        int shiftOffset, int scaleOffset, int batch, int tokens, int dim, float eps)
    {
        for (int b = 0; b < batch; b++)
        {
            for (int t = 0; t < tokens; t++)
            {
                int row = ((b * tokens) + t) * dim;
                double mean = 0;
                for (int j = 0; j < dim; j++)
                {
                    mean += x[row + j];
                }

                mean /= dim;
                double variance = 0;
                for (int j = 0; j < dim; j++)
                {
                    double d = x[row + j] - mean;
                    variance += d * d;
                }

                variance /= dim;
                double inv = 1.0 / Math.Sqrt(variance + eps);
                for (int j = 0; j < dim; j++)
                {
                    double shift = mod[(b * modStride) + shiftOffset + j];
                    double scale = mod[(b * modStride) + scaleOffset + j];
                    y[row + j] = (float)(((x[row + j] - mean) * inv * (1.0 + scale)) + shift);
                }
            }
        }
    }

    /// <summary>x[r, :] = GELU_tanh(x[r, :] + bias), in double.</summary>
    public static void AddBiasGeluTanh(Span<float> x, ReadOnlySpan<float> bias, int rows, int cols)
    {
        for (int r = 0; r < rows; r++)
        {
            for (int j = 0; j < cols; j++)
            {
                double v = (double)x[(r * cols) + j] + bias[j];
                x[(r * cols) + j] = (float)(0.5 * v * (1.0 + Math.Tanh(Math.Sqrt(2.0 / Math.PI) * (v + (0.044715 * v * v * v)))));
            }
        }
    }

    /// <summary>Direct convolution with kernel = stride = p, no im2col.</summary>
    public static void PatchEmbed(ReadOnlySpan<float> img, ReadOnlySpan<float> weight, ReadOnlySpan<float> bias,
        Span<float> output, int n, int c, int h, int w, int p, int dim)
    {
        int gh = h / p;
        int gw = w / p;
        for (int b = 0; b < n; b++)
        {
            for (int gy = 0; gy < gh; gy++)
            {
                for (int gx = 0; gx < gw; gx++)
                {
                    for (int o = 0; o < dim; o++)
                    {
                        double s = bias[o];
                        for (int ch = 0; ch < c; ch++)
                        {
                            for (int ky = 0; ky < p; ky++)
                            {
                                for (int kx = 0; kx < p; kx++)
                                {
                                    float pixel = img[(((((b * c) + ch) * h) + (gy * p) + ky) * w) + (gx * p) + kx];
                                    float wt = weight[(((((o * c) + ch) * p) + ky) * p) + kx];
                                    s += (double)pixel * wt;
                                }
                            }
                        }

                        output[(((b * gh * gw) + (gy * gw) + gx) * dim) + o] = (float)s;
                    }
                }
            }
        }
    }

    /// <summary>Literal 6-D index map of reshape(n, gh, gw, p, q, c) + einsum nhwpqc→nchpwq.</summary>
    public static void Unpatchify(ReadOnlySpan<float> x, Span<float> img, int n, int c, int h, int w, int p)
    {
        int gh = h / p;
        int gw = w / p;
        for (int b = 0; b < n; b++)
        {
            for (int ch = 0; ch < c; ch++)
            {
                for (int y = 0; y < h; y++)
                {
                    for (int xx = 0; xx < w; xx++)
                    {
                        int gy = y / p;
                        int py = y % p;
                        int gx = xx / p;
                        int qx = xx % p;
                        int src = (((((((b * gh) + gy) * gw) + gx) * p) + py) * p * c) + (qx * c) + ch;
                        img[(((((b * c) + ch) * h) + y) * w) + xx] = x[src];
                    }
                }
            }
        }
    }

    /// <summary>MAE get_2d_sincos_pos_embed, written as numpy does it: emb_h from grid[0] (columns), emb_w from grid[1].</summary>
    public static void PosEmbed2D(Span<float> output, int dim, int grid)
    {
        int half = dim / 2;
        for (int r = 0; r < grid; r++)
        {
            for (int col = 0; col < grid; col++)
            {
                int token = (r * grid) + col;
                Embed1D(output.Slice((token * dim), half), col);
                Embed1D(output.Slice((token * dim) + half, half), r);
            }
        }

        static void Embed1D(Span<float> dst, double pos)
        {
            int q = dst.Length / 2;
            for (int j = 0; j < q; j++)
            {
                double omega = j / (double)q;
                omega = 1.0 / Math.Pow(10000.0, omega);
                dst[j] = (float)Math.Sin(pos * omega);
                dst[q + j] = (float)Math.Cos(pos * omega);
            }
        }
    }

    public static void TimestepEmbedding(ReadOnlySpan<float> t, Span<float> output, int dim, float maxPeriod)
    {
        int half = dim / 2;
        for (int i = 0; i < t.Length; i++)
        {
            for (int j = 0; j < half; j++)
            {
                double freq = Math.Exp(-Math.Log(maxPeriod) * j / half);
                double arg = t[i] * freq;
                output[(i * dim) + j] = (float)Math.Cos(arg);
                output[(i * dim) + half + j] = (float)Math.Sin(arg);
            }

            if (dim % 2 == 1)
            {
                output[(i * dim) + dim - 1] = 0f;
            }
        }
    }

    /// <summary>Conv2d, stride 1, padding kernel/2, one image NCHW; y (+)= b + w ⊛ x, summed in double.</summary>
    public static void Conv2d(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> b, Span<float> y,
        int inChannels, int outChannels, int height, int width, int kernel, bool accumulate)
    {
        int pad = kernel / 2;
        for (int o = 0; o < outChannels; o++)
        {
            for (int i = 0; i < height; i++)
            {
                for (int j = 0; j < width; j++)
                {
                    int at = (((o * height) + i) * width) + j;
                    double s = (accumulate ? y[at] : 0.0) + (b.IsEmpty ? 0.0 : b[o]);
                    for (int c = 0; c < inChannels; c++)
                    {
                        for (int u = 0; u < kernel; u++)
                        {
                            for (int v = 0; v < kernel; v++)
                            {
                                int si = i + u - pad, sj = j + v - pad;
                                if (si >= 0 && si < height && sj >= 0 && sj < width)
                                {
                                    s += (double)w[(((((o * inChannels) + c) * kernel) + u) * kernel) + v]
                                        * x[(((c * height) + si) * width) + sj];
                                }
                            }
                        }
                    }

                    y[at] = (float)s;
                }
            }
        }
    }

    /// <summary>Conv2d of any kernel, stride and padding (<paramref name="s"/>), one image NCHW; y (+)= b + w ⊛ x in double.</summary>
    public static void Conv2d(in ConvShape s, ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> b, Span<float> y, bool accumulate)
    {
        int oh = s.OutHeight, ow = s.OutWidth;
        for (int o = 0; o < s.OutChannels; o++)
        {
            for (int i = 0; i < oh; i++)
            {
                for (int j = 0; j < ow; j++)
                {
                    int at = (((o * oh) + i) * ow) + j;
                    double sum = (accumulate ? y[at] : 0.0) + (b.IsEmpty ? 0.0 : b[o]);
                    for (int c = 0; c < s.InChannels; c++)
                    {
                        for (int u = 0; u < s.KernelH; u++)
                        {
                            for (int v = 0; v < s.KernelW; v++)
                            {
                                int si = (i * s.StrideH) + u - s.PadH, sj = (j * s.StrideW) + v - s.PadW;
                                if (si >= 0 && si < s.Height && sj >= 0 && sj < s.Width)
                                {
                                    sum += (double)w[(((((o * s.InChannels) + c) * s.KernelH) + u) * s.KernelW) + v]
                                        * x[(((c * s.Height) + si) * s.Width) + sj];
                                }
                            }
                        }
                    }

                    y[at] = (float)sum;
                }
            }
        }
    }

    /// <summary>Max or mean (over the cells inside the image) of each kernel×kernel window at stride and pad.</summary>
    public static void Pool2d(ReadOnlySpan<float> x, Span<float> y, int channels, int height, int width, int kernel, int stride, int pad, bool max)
    {
        int oh = ((height + (2 * pad) - kernel) / stride) + 1, ow = ((width + (2 * pad) - kernel) / stride) + 1;
        for (int c = 0; c < channels; c++)
        {
            for (int i = 0; i < oh; i++)
            {
                for (int j = 0; j < ow; j++)
                {
                    double best = double.NegativeInfinity, sum = 0;
                    int count = 0;
                    for (int u = 0; u < kernel; u++)
                    {
                        for (int v = 0; v < kernel; v++)
                        {
                            int si = (i * stride) + u - pad, sj = (j * stride) + v - pad;
                            if (si < 0 || si >= height || sj < 0 || sj >= width)
                            {
                                continue;
                            }

                            double value = x[(((c * height) + si) * width) + sj];
                            best = Math.Max(best, value);
                            sum += value;
                            count++;
                        }
                    }

                    y[(((c * oh) + i) * ow) + j] = (float)(max ? best : sum / count);
                }
            }
        }
    }

    /// <summary>Bilinear resize, align_corners=False, no antialiasing, in double: source coordinate max(0, (i + ½)·in/out − ½).</summary>
    public static void ResizeBilinear(ReadOnlySpan<float> x, Span<float> y, int channels, int height, int width, int outHeight, int outWidth)
    {
        static (int, int, double) Source(int i, int n, int m)
        {
            double s = Math.Max(0.0, ((i + 0.5) * n / m) - 0.5);
            int low = Math.Min((int)Math.Floor(s), n - 1);
            return (low, Math.Min(low + 1, n - 1), s - low);
        }

        for (int c = 0; c < channels; c++)
        {
            for (int i = 0; i < outHeight; i++)
            {
                (int r0, int r1, double a) = Source(i, height, outHeight);
                for (int j = 0; j < outWidth; j++)
                {
                    (int c0, int c1, double bw) = Source(j, width, outWidth);
                    double top = ((1 - bw) * x[(((c * height) + r0) * width) + c0]) + (bw * x[(((c * height) + r0) * width) + c1]);
                    double bottom = ((1 - bw) * x[(((c * height) + r1) * width) + c0]) + (bw * x[(((c * height) + r1) * width) + c1]);
                    y[(((c * outHeight) + i) * outWidth) + j] = (float)(((1 - a) * top) + (a * bottom));
                }
            }
        }
    }

    /// <summary>GroupNorm over (channels, pixels) with affine gamma/beta, then SiLU when asked; statistics in double.</summary>
    public static void GroupNorm(ReadOnlySpan<float> x, Span<float> y, ReadOnlySpan<float> gamma, ReadOnlySpan<float> beta,
        int channels, int pixels, int groups, float eps, bool silu)
    {
        int perGroup = channels / groups;
        for (int g = 0; g < groups; g++)
        {
            int begin = g * perGroup * pixels, end = (g + 1) * perGroup * pixels;
            double mean = 0;
            for (int i = begin; i < end; i++)
            {
                mean += x[i];
            }

            mean /= end - begin;
            double variance = 0;
            for (int i = begin; i < end; i++)
            {
                variance += (x[i] - mean) * (x[i] - mean);
            }

            variance /= end - begin;
            for (int i = begin; i < end; i++)
            {
                int c = i / pixels;
                double v = ((x[i] - mean) / Math.Sqrt(variance + eps) * gamma[c]) + beta[c];
                y[i] = (float)(silu ? v / (1.0 + Math.Exp(-v)) : v);
            }
        }
    }

    /// <summary>Nearest-neighbour x2: y[c, i, j] = x[c, i / 2, j / 2].</summary>
    public static void UpsampleNearest2x(ReadOnlySpan<float> x, Span<float> y, int channels, int height, int width)
    {
        for (int c = 0; c < channels; c++)
        {
            for (int i = 0; i < 2 * height; i++)
            {
                for (int j = 0; j < 2 * width; j++)
                {
                    y[(((c * 2 * height) + i) * 2 * width) + j] = x[(((c * height) + (i / 2)) * width) + (j / 2)];
                }
            }
        }
    }

    /// <summary>y (cols, rows) = x (rows, cols)ᵀ.</summary>
    public static void Transpose(ReadOnlySpan<float> x, Span<float> y, int rows, int cols)
    {
        for (int i = 0; i < rows; i++)
        {
            for (int j = 0; j < cols; j++)
            {
                y[(j * rows) + i] = x[(i * cols) + j];
            }
        }
    }
}
