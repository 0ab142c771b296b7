using System;
using DitCache.Tensors;

namespace DitCache.Evaluation.Inception;

/// <summary>
/// The FID Inception-v3 (docs/methods.md §9.4): the network whose 2048 pool3 features FID compares, as pytorch-fid runs
/// it (<c>InceptionV3([3])</c>, resize and normalisation on): images in [0, 1] resized to 299x299 (bilinear,
/// align_corners=False), mapped to [−1, 1], through torchvision's Inception3 stem and blocks with pytorch-fid's FID
/// patches (average pools that exclude the padding; the last block's pool branch max-pools), averaged over the final
/// 8x8 grid. Reads like pytorch-fid's <c>inception.py</c>: one method per block type.
/// </summary>
/// <remarks>
/// One image at a time, NCHW: each branch of a mixed block writes its channels straight into the block output's slice
/// (the concatenation costs nothing), and every BasicConv2d is one <see cref="Kernels.Conv2d(IGemm, in ConvShape, ReadOnlySpan{float}, ReadOnlySpan{float}, ReadOnlySpan{float}, Span{float}, Span{float}, bool)"/>
/// with its BatchNorm folded in, then <see cref="Kernels.Relu"/>. Buffers are allocated once per instance, which is
/// therefore not thread-safe; two instances may run in parallel.
/// </remarks>
public sealed class FidInception
{
    /// <summary>Length of a feature vector (pool3).</summary>
    public const int FeatureSize = 2048;

    /// <summary>The side the images are resized to.</summary>
    public const int InputSide = 299;

    private const int BufferFloats = 64 * 147 * 147;                                               // the largest activation (Conv2d_2b)

    private readonly InceptionWeights _w;
    private readonly IGemm _gemm;
    private readonly float[] _ping = new float[BufferFloats];
    private readonly float[] _pong = new float[BufferFloats];
    private readonly float[] _t1 = new float[BufferFloats];
    private readonly float[] _t2 = new float[BufferFloats];
    private readonly float[] _pool = new float[BufferFloats];
    private readonly float[] _scratch;

    /// <summary>The network with <paramref name="weights"/>, its convolutions on <paramref name="gemm"/>.</summary>
    public FidInception(InceptionWeights weights, IGemm gemm)
    {
        ArgumentNullException.ThrowIfNull(weights);
        ArgumentNullException.ThrowIfNull(gemm);
        _w = weights;
        _gemm = gemm;
        _scratch = new float[ScratchFloats()];
    }

    /// <summary>Where the weights came from.</summary>
    public string Source => _w.Source;

    /// <summary>
    /// The pool3 features (count, 2048) of <paramref name="count"/> RGB images (count, 3, height, width) with values in
    /// [0, 1]. <paramref name="stages"/>, when given, receives per image the per-channel means of the four outputs
    /// pytorch-fid calls blocks 0-3 (64 + 192 + 768 + 2048 values per image), for locating a disagreement.
    /// </summary>
    /// <exception cref="ArgumentException">A size is not positive or a span has the wrong length.</exception>
    public void Features(ReadOnlySpan<float> images, int count, int height, int width, Span<float> features, Span<float> stages = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(height, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 1);
        int image = 3 * height * width;
        if (images.Length != (long)count * image)
        {
            throw new ArgumentException($"images hold {images.Length} floats but {count} images of 3x{height}x{width} need {(long)count * image}", nameof(images));
        }

        if (features.Length != count * FeatureSize)
        {
            throw new ArgumentException($"features hold {features.Length} floats but {count} images need {count * FeatureSize}", nameof(features));
        }

        const int StageFloats = 64 + 192 + 768 + FeatureSize;
        if (!stages.IsEmpty && stages.Length != count * StageFloats)
        {
            throw new ArgumentException($"stages hold {stages.Length} floats but {count} images need {count * StageFloats}", nameof(stages));
        }

        for (int n = 0; n < count; n++)
        {
            Forward(images.Slice(n * image, image), height, width, features.Slice(n * FeatureSize, FeatureSize),
                stages.IsEmpty ? default : stages.Slice(n * StageFloats, StageFloats));
        }
    }

    private void Forward(ReadOnlySpan<float> rgb, int height, int width, Span<float> feature, Span<float> stages)
    {
        // Resize to 299x299 and map [0, 1] to [−1, 1] as pytorch-fid does: 2x − 1.
        Span<float> x = _ping.AsSpan(0, 3 * InputSide * InputSide);
        Kernels.ResizeBilinear(rgb, x, 3, height, width, InputSide, InputSide);
        for (int i = 0; i < x.Length; i++)
        {
            x[i] = (2f * x[i]) - 1f;
        }

        // Block 0: three convs and a max pool.          299 -> 149 -> 147 -> 147 -> 73
        int h = InputSide, w = InputSide;
        (h, w) = Conv("Conv2d_1a_3x3", _ping, h, w, _pong);
        (h, w) = Conv("Conv2d_2a_3x3", _pong, h, w, _ping);
        (h, w) = Conv("Conv2d_2b_3x3", _ping, h, w, _pong);
        (h, w) = MaxPool(_pong, 64, h, w, _ping, stride: 2, pad: 0);
        Means(_ping, 64, h * w, stages, 0);

        // Block 1: two convs and a max pool.            73 -> 73 -> 71 -> 35
        (h, w) = Conv("Conv2d_3b_1x1", _ping, h, w, _pong);
        (h, w) = Conv("Conv2d_4a_3x3", _pong, h, w, _ping);
        (h, w) = MaxPool(_ping, 192, h, w, _pong, stride: 2, pad: 0);
        Means(_pong, 192, h * w, stages, 64);

        // Block 2: Mixed_5b..5d (35x35), Mixed_6a (-> 17x17), Mixed_6b..6e.
        int c = 192;
        float[] input = _pong, output = _ping;
        foreach ((string block, int pool) in new[] { ("Mixed_5b", 32), ("Mixed_5c", 64), ("Mixed_5d", 64) })
        {
            c = BlockA(block, input, c, h, w, output, pool);
            (input, output) = (output, input);
        }

        (c, h, w) = BlockB("Mixed_6a", input, c, h, w, output);
        (input, output) = (output, input);
        foreach (string block in new[] { "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e" })
        {
            c = BlockC(block, input, h, w, output);
            (input, output) = (output, input);
        }

        Means(input, c, h * w, stages, 64 + 192);

        // Block 3: Mixed_7a (-> 8x8), Mixed_7b, Mixed_7c, then the average over the grid.
        (c, h, w) = BlockD("Mixed_7a", input, c, h, w, output);
        (input, output) = (output, input);
        c = BlockE("Mixed_7b", input, c, h, w, output, maxPool: false);
        (input, output) = (output, input);
        c = BlockE("Mixed_7c", input, c, h, w, output, maxPool: true);
        Means(output, c, h * w, feature, 0);
        Means(output, c, h * w, stages, 64 + 192 + 768);
    }

    // FIDInceptionA: 1x1 | 1x1 -> 5x5 | 1x1 -> 3x3 -> 3x3 | avg pool (padding excluded) -> 1x1. Output channels 224 + pool.
    private int BlockA(string block, float[] x, int c, int h, int w, float[] y, int pool)
    {
        int hw = h * w, at = 0;
        at += ConvInto(block + ".branch1x1", x, h, w, y, at, hw);
        Conv(block + ".branch5x5_1", x, h, w, _t1);
        at += ConvInto(block + ".branch5x5_2", _t1, h, w, y, at, hw);
        Conv(block + ".branch3x3dbl_1", x, h, w, _t1);
        Conv(block + ".branch3x3dbl_2", _t1, h, w, _t2);
        at += ConvInto(block + ".branch3x3dbl_3", _t2, h, w, y, at, hw);
        Kernels.AvgPool2dExcludePad(x.AsSpan(0, c * hw), _pool, c, h, w, 3, 1, 1);
        at += ConvInto(block + ".branch_pool", _pool, h, w, y, at, hw);
        return at;
    }

    // InceptionB (Mixed_6a): 3x3 stride 2 | 1x1 -> 3x3 -> 3x3 stride 2 | max pool stride 2.
    private (int C, int H, int W) BlockB(string block, float[] x, int c, int h, int w, float[] y)
    {
        int oh = Kernels.PoolOutSize(h, 3, 2, 0), ow = Kernels.PoolOutSize(w, 3, 2, 0), ohw = oh * ow, at = 0;
        at += ConvInto(block + ".branch3x3", x, h, w, y, at, ohw);
        Conv(block + ".branch3x3dbl_1", x, h, w, _t1);
        Conv(block + ".branch3x3dbl_2", _t1, h, w, _t2);
        at += ConvInto(block + ".branch3x3dbl_3", _t2, h, w, y, at, ohw);
        Kernels.MaxPool2d(x.AsSpan(0, c * h * w), y.AsSpan(at * ohw, c * ohw), c, h, w, 3, 2, 0);
        return (at + c, oh, ow);
    }

    // FIDInceptionC: 1x1 | 1x1 -> 1x7 -> 7x1 | 1x1 -> 7x1 -> 1x7 -> 7x1 -> 1x7 | avg pool (padding excluded) -> 1x1.
    private int BlockC(string block, float[] x, int h, int w, float[] y)
    {
        int hw = h * w, at = 0;
        at += ConvInto(block + ".branch1x1", x, h, w, y, at, hw);
        Conv(block + ".branch7x7_1", x, h, w, _t1);
        Conv(block + ".branch7x7_2", _t1, h, w, _t2);
        at += ConvInto(block + ".branch7x7_3", _t2, h, w, y, at, hw);
        Conv(block + ".branch7x7dbl_1", x, h, w, _t1);
        Conv(block + ".branch7x7dbl_2", _t1, h, w, _t2);
        Conv(block + ".branch7x7dbl_3", _t2, h, w, _t1);
        Conv(block + ".branch7x7dbl_4", _t1, h, w, _t2);
        at += ConvInto(block + ".branch7x7dbl_5", _t2, h, w, y, at, hw);
        Kernels.AvgPool2dExcludePad(x.AsSpan(0, 768 * hw), _pool, 768, h, w, 3, 1, 1);
        at += ConvInto(block + ".branch_pool", _pool, h, w, y, at, hw);
        return at;
    }

    // InceptionD (Mixed_7a): 1x1 -> 3x3 stride 2 | 1x1 -> 1x7 -> 7x1 -> 3x3 stride 2 | max pool stride 2.
    private (int C, int H, int W) BlockD(string block, float[] x, int c, int h, int w, float[] y)
    {
        int oh = Kernels.PoolOutSize(h, 3, 2, 0), ow = Kernels.PoolOutSize(w, 3, 2, 0), ohw = oh * ow, at = 0;
        Conv(block + ".branch3x3_1", x, h, w, _t1);
        at += ConvInto(block + ".branch3x3_2", _t1, h, w, y, at, ohw);
        Conv(block + ".branch7x7x3_1", x, h, w, _t1);
        Conv(block + ".branch7x7x3_2", _t1, h, w, _t2);
        Conv(block + ".branch7x7x3_3", _t2, h, w, _t1);
        at += ConvInto(block + ".branch7x7x3_4", _t1, h, w, y, at, ohw);
        Kernels.MaxPool2d(x.AsSpan(0, c * h * w), y.AsSpan(at * ohw, c * ohw), c, h, w, 3, 2, 0);
        return (at + c, oh, ow);
    }

    // FIDInceptionE_1 / _2: 1x1 | 1x1 -> (1x3 | 3x1) | 1x1 -> 3x3 -> (1x3 | 3x1) | pool -> 1x1; the pool averages
    // (padding excluded) in the first block and takes the maximum in the second.
    private int BlockE(string block, float[] x, int c, int h, int w, float[] y, bool maxPool)
    {
        int hw = h * w, at = 0;
        at += ConvInto(block + ".branch1x1", x, h, w, y, at, hw);
        Conv(block + ".branch3x3_1", x, h, w, _t1);
        at += ConvInto(block + ".branch3x3_2a", _t1, h, w, y, at, hw);
        at += ConvInto(block + ".branch3x3_2b", _t1, h, w, y, at, hw);
        Conv(block + ".branch3x3dbl_1", x, h, w, _t1);
        Conv(block + ".branch3x3dbl_2", _t1, h, w, _t2);
        at += ConvInto(block + ".branch3x3dbl_3a", _t2, h, w, y, at, hw);
        at += ConvInto(block + ".branch3x3dbl_3b", _t2, h, w, y, at, hw);
        if (maxPool)
        {
            Kernels.MaxPool2d(x.AsSpan(0, c * hw), _pool, c, h, w, 3, 1, 1);
        }
        else
        {
            Kernels.AvgPool2dExcludePad(x.AsSpan(0, c * hw), _pool, c, h, w, 3, 1, 1);
        }

        at += ConvInto(block + ".branch_pool", _pool, h, w, y, at, hw);
        return at;
    }

    // BasicConv2d into the whole of y; returns the output size.
    private (int H, int W) Conv(string name, float[] x, int h, int w, float[] y)
    {
        ConvShape s = Shape(name, h, w);
        Run(s, _w[name], x, y.AsSpan(0, s.OutChannels * s.OutHeight * s.OutWidth));
        return (s.OutHeight, s.OutWidth);
    }

    // BasicConv2d into channels [at, at + out) of y, whose planes hold outPixels each; returns its output channels.
    private int ConvInto(string name, float[] x, int h, int w, float[] y, int at, int outPixels)
    {
        ConvShape s = Shape(name, h, w);
        Run(s, _w[name], x, y.AsSpan(at * outPixels, s.OutChannels * outPixels));
        return s.OutChannels;
    }

    private void Run(in ConvShape s, FoldedConv conv, float[] x, Span<float> y)
    {
        Kernels.Conv2d(_gemm, s, x.AsSpan(0, s.InChannels * s.Height * s.Width), conv.Weight, conv.Bias, y, _scratch);
        Kernels.Relu(y, y);
    }

    private ConvShape Shape(string name, int h, int w) => _w[name].Shape with { Height = h, Width = w };

    private static (int H, int W) MaxPool(float[] x, int c, int h, int w, float[] y, int stride, int pad)
    {
        int oh = Kernels.PoolOutSize(h, 3, stride, pad), ow = Kernels.PoolOutSize(w, 3, stride, pad);
        Kernels.MaxPool2d(x.AsSpan(0, c * h * w), y.AsSpan(0, c * oh * ow), c, h, w, 3, stride, pad);
        return (oh, ow);
    }

    // destination[at + ch] = mean of channel ch's plane (summed in double); nothing when destination is empty.
    private static void Means(float[] x, int channels, int pixels, Span<float> destination, int at)
    {
        if (destination.IsEmpty)
        {
            return;
        }

        for (int ch = 0; ch < channels; ch++)
        {
            double sum = 0;
            foreach (float v in x.AsSpan(ch * pixels, pixels))
            {
                sum += v;
            }

            destination[at + ch] = (float)(sum / pixels);
        }
    }

    // The largest im2col band of any conv at the 299x299 input's sizes.
    private int ScratchFloats()
    {
        int most = 0;
        foreach ((string name, _, _, _, _, _, _, _) in InceptionWeights.Modules)
        {
            (int h, int w) = SideAt(name);
            most = Math.Max(most, Kernels.Conv2dScratchSize(Shape(name, h, w)));
        }

        return most;
    }

    // The input side of a module's conv when the network runs at 299x299.
    private static (int H, int W) SideAt(string name) => name switch
    {
        "Conv2d_1a_3x3" => (299, 299),
        "Conv2d_2a_3x3" => (149, 149),
        "Conv2d_2b_3x3" => (147, 147),
        "Conv2d_3b_1x1" => (73, 73),
        "Conv2d_4a_3x3" => (73, 73),
        _ when name.StartsWith("Mixed_5", StringComparison.Ordinal) || name.StartsWith("Mixed_6a", StringComparison.Ordinal) => (35, 35),
        _ when name.StartsWith("Mixed_6", StringComparison.Ordinal) || name.StartsWith("Mixed_7a", StringComparison.Ordinal) => (17, 17),
        _ => (8, 8),
    };
}
