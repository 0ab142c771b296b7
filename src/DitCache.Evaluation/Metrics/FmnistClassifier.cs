using System;
using System.Collections.Generic;
using DitCache.Evaluation.Assets;
using DitCache.Tensors;
using DitCache.Tensors.IO;

namespace DitCache.Evaluation.Metrics;

/// <summary>
/// The small CNN that scores Fashion-MNIST samples (tools/train/train_classifier.py, models/fmnist-classifier.md):
/// conv 1→32 3×3 pad 1, ReLU, maxpool 2; conv 32→64 3×3 pad 1, ReLU, maxpool 2; flatten (C, H, W);
/// fc 3136→128, ReLU (the <see cref="FeatureSize"/>-d features for the Frechet distance); fc 128→10 (logits).
/// Inputs are images in [-1, 1], the DiT's pixel range.
/// </summary>
/// <remarks>
/// Convolutions run as im2col + one GEMM per layer per chunk of images: the columns of a whole chunk sit side by
/// side, so the GEMM is (Cout × Cin·9) · (Cin·9 × chunk·H·W). Bias and ReLU are applied after max-pooling, which
/// is exact because both are monotone and the bias is constant per channel: max(relu(x + b)) = relu(max(x) + b).
/// All buffers are allocated once for <see cref="ChunkSize"/> images; an instance is therefore not thread-safe.
/// </remarks>
public sealed class FmnistClassifier
{
    /// <summary>Image height and width.</summary>
    public const int ImageSize = 28;

    /// <summary>Length of the feature vector (fc1 output after ReLU).</summary>
    public const int FeatureSize = 128;

    /// <summary>Number of classes (logits per image).</summary>
    public const int ClassCount = 10;

    /// <summary>Images processed per internal GEMM call.</summary>
    public const int ChunkSize = 64;

    private const int C1 = 32;          // conv1 output channels
    private const int C2 = 64;          // conv2 output channels
    private const int H1 = ImageSize;   // 28: conv1 output side
    private const int H2 = H1 / 2;      // 14: after pool 1 = conv2 output side
    private const int H3 = H2 / 2;      // 7: after pool 2
    private const int Flat = C2 * H3 * H3; // 3136

    private readonly IGemm _gemm;
    private readonly float[] _conv1W;   // [32, 1·9]
    private readonly float[] _conv1B;   // [32]
    private readonly float[] _conv2W;   // [64, 32·9]
    private readonly float[] _conv2B;   // [64]
    private readonly float[] _fc1W;     // [128, 3136]
    private readonly float[] _fc1B;     // [128]
    private readonly float[] _fc2W;     // [10, 128]
    private readonly float[] _fc2B;     // [10]

    // Run state for one chunk of B = ChunkSize images.
    private readonly float[] _col1 = new float[9 * ChunkSize * H1 * H1];          // (9, B·784)
    private readonly float[] _out1 = new float[C1 * ChunkSize * H1 * H1];         // (32, B·784)
    private readonly float[] _pool1 = new float[ChunkSize * C1 * H2 * H2];        // (B, 32, 14, 14)
    private readonly float[] _col2 = new float[C1 * 9 * ChunkSize * H2 * H2];     // (288, B·196)
    private readonly float[] _out2 = new float[C2 * ChunkSize * H2 * H2];         // (64, B·196)
    private readonly float[] _pool2 = new float[ChunkSize * Flat];                // (B, 3136)
    private readonly float[] _features = new float[ChunkSize * FeatureSize];      // (B, 128)
    private readonly float[] _logits = new float[ChunkSize * ClassCount];         // (B, 10)

    private FmnistClassifier(IGemm gemm, string source, IReadOnlyDictionary<string, Tensor> t)
    {
        _gemm = gemm;
        Source = source;
        _conv1W = Take(t, source, "conv1.weight", C1, 1, 3, 3);
        _conv1B = Take(t, source, "conv1.bias", C1);
        _conv2W = Take(t, source, "conv2.weight", C2, C1, 3, 3);
        _conv2B = Take(t, source, "conv2.bias", C2);
        _fc1W = Take(t, source, "fc1.weight", FeatureSize, Flat);
        _fc1B = Take(t, source, "fc1.bias", FeatureSize);
        _fc2W = Take(t, source, "fc2.weight", ClassCount, FeatureSize);
        _fc2B = Take(t, source, "fc2.bias", ClassCount);
    }

    /// <summary>Where the weights came from, e.g. <c>embedded:fmnist-classifier.safetensors</c>.</summary>
    public string Source { get; }

    /// <summary>Builds the classifier from a checkpoint holding the eight PyTorch state_dict tensors.</summary>
    /// <exception cref="DitCacheException">A key is missing or has the wrong shape; the message names the file and key.</exception>
    public static FmnistClassifier FromFile(TensorFile file, IGemm gemm)
    {
        ArgumentNullException.ThrowIfNull(file);
        ArgumentNullException.ThrowIfNull(gemm);
        return new FmnistClassifier(gemm, file.Source, file.Tensors);
    }

    /// <summary>Loads the shipped classifier embedded in this assembly (see <see cref="DefaultClassifier"/>).</summary>
    /// <exception cref="DitCacheException">The assembly was built without models/fmnist-classifier.safetensors.</exception>
    public static FmnistClassifier LoadDefault(IGemm gemm) => FromFile(DefaultClassifier.Load(), gemm);

    /// <summary>
    /// Runs <paramref name="count"/> images <c>(count, 1, 28, 28)</c> in [-1, 1] and writes logits
    /// <c>(count, 10)</c> and features <c>(count, 128)</c> (fc1 after ReLU). Either output may be empty to skip it.
    /// </summary>
    /// <exception cref="ArgumentException">A span is too short for <paramref name="count"/> images.</exception>
    public void Forward(ReadOnlySpan<float> images, int count, Span<float> logits, Span<float> features)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        CheckLength(images.Length, (long)count * H1 * H1, nameof(images), "(count, 1, 28, 28)");
        if (!logits.IsEmpty)
        {
            CheckLength(logits.Length, (long)count * ClassCount, nameof(logits), "(count, 10)");
        }

        if (!features.IsEmpty)
        {
            CheckLength(features.Length, (long)count * FeatureSize, nameof(features), "(count, 128)");
        }

        for (int start = 0; start < count; start += ChunkSize)
        {
            int b = Math.Min(ChunkSize, count - start);
            ForwardChunk(images.Slice(start * H1 * H1, b * H1 * H1), b, _features, _logits);
            if (!features.IsEmpty)
            {
                _features.AsSpan(0, b * FeatureSize).CopyTo(features.Slice(start * FeatureSize));
            }

            if (!logits.IsEmpty)
            {
                _logits.AsSpan(0, b * ClassCount).CopyTo(logits.Slice(start * ClassCount));
            }
        }
    }

    /// <summary>Convenience form of <see cref="Forward(ReadOnlySpan{float}, int, Span{float}, Span{float})"/> returning new arrays.</summary>
    public (float[] Logits, float[] Features) Forward(ReadOnlySpan<float> images, int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        float[] logits = new float[(long)count * ClassCount];
        float[] features = new float[(long)count * FeatureSize];
        Forward(images, count, logits, features);
        return (logits, features);
    }

    /// <summary>Index of the largest logit of each row of <paramref name="logits"/> <c>(count, 10)</c>.</summary>
    public static int[] Predict(ReadOnlySpan<float> logits)
    {
        if (logits.Length % ClassCount != 0)
        {
            throw new ArgumentException($"logits hold {logits.Length} floats, not a multiple of {ClassCount}", nameof(logits));
        }

        int[] result = new int[logits.Length / ClassCount];
        for (int i = 0; i < result.Length; i++)
        {
            ReadOnlySpan<float> row = logits.Slice(i * ClassCount, ClassCount);
            int best = 0;
            for (int c = 1; c < ClassCount; c++)
            {
                if (row[c] > row[best])
                {
                    best = c;
                }
            }

            result[i] = best;
        }

        return result;
    }

    private void ForwardChunk(ReadOnlySpan<float> x, int b, Span<float> features, Span<float> logits)
    {
        int p1 = b * H1 * H1;                                                          // columns of layer 1
        Im2Col3x3(x, b, 1, H1, _col1, p1);                                             // (9, B·784)
        _gemm.Multiply(C1, p1, 9, _conv1W, 9, _col1, p1, transB: false, _out1, p1);    // (32, B·784)
        PoolBiasRelu(_out1, b, C1, H1, _conv1B, _pool1);                               // (B, 32, 14, 14)

        int p2 = b * H2 * H2;
        Im2Col3x3(_pool1, b, C1, H2, _col2, p2);                                       // (288, B·196)
        _gemm.Multiply(C2, p2, C1 * 9, _conv2W, C1 * 9, _col2, p2, transB: false, _out2, p2); // (64, B·196)
        PoolBiasRelu(_out2, b, C2, H2, _conv2B, _pool2);                               // (B, 64, 7, 7) = (B, 3136)

        Span<float> f = features[..(b * FeatureSize)];
        Kernels.Linear(_gemm, _pool2.AsSpan(0, b * Flat), _fc1W, _fc1B, f, b, Flat, FeatureSize); // (B, 128)
        for (int i = 0; i < f.Length; i++)
        {
            f[i] = MathF.Max(f[i], 0f);                                                // ReLU: these are the features
        }

        Kernels.Linear(_gemm, f, _fc2W, _fc2B, logits[..(b * ClassCount)], b, FeatureSize, ClassCount); // (B, 10)
    }

    /// <summary>
    /// im2col for a 3×3 kernel, stride 1, zero padding 1: input (B, C, S, S) → columns (C·9, B·S·S) where row
    /// c·9 + ky·3 + kx matches PyTorch's weight layout [Cout, C, 3, 3] and column b·S·S + y·S + x is an output pixel.
    /// </summary>
    private static void Im2Col3x3(ReadOnlySpan<float> input, int b, int channels, int s, Span<float> col, int ld)
    {
        int plane = s * s;
        for (int c = 0; c < channels; c++)
        {
            for (int ky = 0; ky < 3; ky++)
            {
                for (int kx = 0; kx < 3; kx++)
                {
                    Span<float> row = col.Slice(((c * 9) + (ky * 3) + kx) * ld, ld);
                    for (int n = 0; n < b; n++)
                    {
                        ReadOnlySpan<float> src = input.Slice(((n * channels) + c) * plane, plane);
                        Span<float> dst = row.Slice(n * plane, plane);
                        for (int y = 0; y < s; y++)
                        {
                            int sy = y + ky - 1;
                            Span<float> dstRow = dst.Slice(y * s, s);
                            if (sy < 0 || sy >= s)
                            {
                                dstRow.Clear();
                                continue;
                            }

                            // dst[x] = src[sy, x + kx - 1], zero where that falls outside the image.
                            int x0 = Math.Max(0, 1 - kx);
                            int x1 = Math.Min(s, s + 1 - kx);
                            dstRow[..x0].Clear();
                            src.Slice((sy * s) + x0 + kx - 1, x1 - x0).CopyTo(dstRow[x0..x1]);
                            dstRow[x1..].Clear();
                        }
                    }
                }
            }
        }
    }

    /// <summary>
    /// 2×2 max-pool of conv output (C, B·S·S) into (B, C, S/2, S/2), then + bias and ReLU (exact after the pool,
    /// see the type remarks).
    /// </summary>
    private static void PoolBiasRelu(ReadOnlySpan<float> conv, int b, int channels, int s, ReadOnlySpan<float> bias,
        Span<float> pooled)
    {
        int h = s / 2;
        int ld = b * s * s;
        for (int c = 0; c < channels; c++)
        {
            float bc = bias[c];
            for (int n = 0; n < b; n++)
            {
                ReadOnlySpan<float> src = conv.Slice((c * ld) + (n * s * s), s * s);
                Span<float> dst = pooled.Slice(((n * channels) + c) * h * h, h * h);
                for (int y = 0; y < h; y++)
                {
                    int r0 = 2 * y * s;
                    int r1 = r0 + s;
                    for (int x = 0; x < h; x++)
                    {
                        int i = 2 * x;
                        float m = MathF.Max(MathF.Max(src[r0 + i], src[r0 + i + 1]), MathF.Max(src[r1 + i], src[r1 + i + 1]));
                        dst[(y * h) + x] = MathF.Max(m + bc, 0f);
                    }
                }
            }
        }
    }

    private static float[] Take(IReadOnlyDictionary<string, Tensor> tensors, string source, string key, params int[] shape)
    {
        if (!tensors.TryGetValue(key, out Tensor? t))
        {
            throw new DitCacheException(
                $"{source}: key '{key}' not found; expected the Fashion-MNIST classifier state_dict written by tools/train/train_classifier.py");
        }

        if (!t.HasShape(shape))
        {
            throw new DitCacheException(
                $"{source}: '{key}' has shape {t.ShapeText} but the classifier needs {Tensor.FormatShape(shape)}; retrain or re-export with tools/train/train_classifier.py");
        }

        return t.Data;
    }

    private static void CheckLength(long actual, long needed, string name, string layout)
    {
        if (actual < needed)
        {
            throw new ArgumentException($"{name} holds {actual} floats but {layout} needs {needed}", name);
        }
    }
}
