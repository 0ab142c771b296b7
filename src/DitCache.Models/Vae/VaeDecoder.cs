using System;
using DitCache.Tensors;

namespace DitCache.Models;

/// <summary>
/// The Stable Diffusion VAE decoder as diffusers' <c>AutoencoderKL.decode</c> computes it, with the latent scaling
/// DiT's sample.py applies first (docs/methods.md §11): latents / scaling_factor (+ shift_factor), post_quant_conv,
/// conv_in, the mid block (ResNet block, single-head attention over all pixels, ResNet block), the up blocks
/// (layers_per_block + 1 ResNet blocks each, then nearest x2 + 3x3 conv in all but the last), GroupNorm + SiLU, conv_out.
/// </summary>
/// <remarks>
/// Images are decoded one at a time, so memory does not grow with the batch: three activation buffers of the largest
/// stage (channels × pixels), the im2col band of <see cref="Kernels.Conv2d(IGemm, ReadOnlySpan{float}, ReadOnlySpan{float}, ReadOnlySpan{float}, Span{float}, int, int, int, int, int, Span{float}, bool)"/> and the attention scratch, allocated on
/// the first image of a latent size and reused while the size stays (<see cref="WorkspaceBytes"/>). Not thread-safe:
/// one decoder per thread; the GEMM and the attention use <see cref="IGemm.Threads"/> threads inside one image.
/// </remarks>
public sealed class VaeDecoder
{
    private readonly VaeWeights _w;
    private readonly IGemm _gemm;
    private readonly int _groups;
    private Workspace? _ws;

    /// <summary>Creates a decoder over <paramref name="weights"/>; the products run on <paramref name="gemm"/>.</summary>
    public VaeDecoder(VaeWeights weights, IGemm gemm)
    {
        ArgumentNullException.ThrowIfNull(weights);
        ArgumentNullException.ThrowIfNull(gemm);
        _w = weights;
        _gemm = gemm;
        _groups = weights.Config.NormNumGroups;
        if (weights.MidAttention is { } a)
        {
            _gemm.Prepare(a.Qkv.W, 3 * a.Qkv.In, a.Qkv.In);   // the only Linear-layout product (tokens × C · Wqkvᵀ)
        }
    }

    /// <summary>The architecture.</summary>
    public VaeConfig Config => _w.Config;

    /// <summary>
    /// Decodes latents [N, latent_channels, h, w] into images [N, out_channels, h·f, w·f] (f =
    /// <see cref="VaeConfig.UpsampleFactor"/>), float32, unclamped (DiT's images lie in about [−1, 1]).
    /// </summary>
    /// <exception cref="ArgumentException">The latents are not rank 4 with the config's channel count.</exception>
    public Tensor Decode(Tensor latents)
    {
        ArgumentNullException.ThrowIfNull(latents);
        if (latents.Rank != 4 || latents.Dim(1) != Config.LatentChannels || latents.Dim(2) < 1 || latents.Dim(3) < 1)
        {
            throw new ArgumentException(
                $"latents have shape {latents.ShapeText}; expected [N, {Config.LatentChannels}, h, w] for this VAE", nameof(latents));
        }

        int n = latents.Dim(0), h = latents.Dim(2), w = latents.Dim(3), f = Config.UpsampleFactor;
        var images = Tensor.Zeros(n, Config.OutChannels, h * f, w * f);
        int latentSize = Config.LatentChannels * h * w, imageSize = Config.OutChannels * h * f * w * f;
        for (int i = 0; i < n; i++)
        {
            DecodeOne(latents.Data.AsSpan(i * latentSize, latentSize), images.Data.AsSpan(i * imageSize, imageSize), h, w);
        }

        return images;
    }

    /// <summary>
    /// Decodes one latent (latent_channels, h, w) into <paramref name="image"/> (out_channels, h·f, w·f).
    /// </summary>
    /// <exception cref="ArgumentException">A size is not positive or a span is too short.</exception>
    public void DecodeOne(ReadOnlySpan<float> latent, Span<float> image, int height, int width)
    {
        if (height < 1 || width < 1)
        {
            throw new ArgumentException($"latent size {height}x{width}; expected positive sides", nameof(height));
        }

        VaeConfig c = Config;
        int f = c.UpsampleFactor, latentSize = c.LatentChannels * height * width;
        if (latent.Length < latentSize || image.Length < (long)c.OutChannels * height * f * width * f)
        {
            throw new ArgumentException(
                $"latent holds {latent.Length} floats and image {image.Length}; ({c.LatentChannels}, {height}, {width}) -> ({c.OutChannels}, {height * f}, {width * f}) needs {latentSize} and {c.OutChannels * height * f * width * f}",
                nameof(latent));
        }

        Workspace ws = _ws is { } cached && cached.Height == height && cached.Width == width
            ? cached
            : _ws = new Workspace(c, height, width, _gemm.Threads);
        float[] x = ws.A, s1 = ws.B, s2 = ws.C;
        int h = height, w = width;

        // z = latents / scaling_factor + shift_factor, then post_quant_conv                        // (Cl, h, w)
        for (int i = 0; i < latentSize; i++)
        {
            s1[i] = (latent[i] / c.ScalingFactor) + c.ShiftFactor;
        }

        if (_w.PostQuantConv is { } pq)
        {
            Conv(s1, pq, s2, h, w, 1);                                                             // (Cl, h, w)
            (s1, s2) = (s2, s1);
        }

        Conv(s1, _w.ConvIn, x, h, w, 3);                                                            // (C_mid, h, w)

        // Mid block: ResNet, attention over the h·w pixels, ResNet.
        Resnet(_w.MidResnet1, ref x, ref s1, ref s2, h, w);                                        // (C_mid, h, w)
        if (_w.MidAttention is { } attention)
        {
            Attention(attention, x, s1, s2, ws.AttentionScratch, h, w);                            // (C_mid, h, w)
        }

        Resnet(_w.MidResnet2, ref x, ref s1, ref s2, h, w);                                        // (C_mid, h, w)

        // Up blocks, coarsest first.
        foreach (VaeUpBlockWeights block in _w.UpBlocks)
        {
            foreach (VaeResnetWeights r in block.Resnets)
            {
                Resnet(r, ref x, ref s1, ref s2, h, w);                                            // (C_level, h, w)
            }

            if (block.Upsample is { } up)
            {
                Kernels.UpsampleNearest2x(x, s1, up.In, h, w);                                     // (C_level, 2h, 2w)
                h *= 2;
                w *= 2;
                Conv(s1, up, x, h, w, 3);                                                          // (C_level, 2h, 2w)
            }
        }

        // conv_norm_out + SiLU, conv_out.
        int finest = _w.NormOut.Gamma.Length;
        Kernels.GroupNorm(x, s1, _w.NormOut.Gamma, _w.NormOut.Beta, finest, h * w, _groups, VaeConfig.NormEps, silu: true);
        Kernels.Conv2d(_gemm, s1, _w.ConvOut.W, _w.ConvOut.B, image, finest, c.OutChannels, h, w, 3, ws.Col);  // (out, H, W)
    }

    /// <summary>
    /// Bytes the decoder holds for one latent size (the activation buffers, the im2col band and the attention
    /// scratch, not the weights): for the SD VAE on one thread 212 MB for a 32x32 latent (256x256 image) and 823 MB for
    /// 64x64 (512x512); each further thread adds its attention scratch (2 MB at 32x32, 9 MB at 64x64).
    /// </summary>
    public static long WorkspaceBytes(VaeConfig config, int height, int width, int threads)
    {
        ArgumentNullException.ThrowIfNull(config);
        return Workspace.Floats(config, height, width, threads) * sizeof(float);
    }

    // ResNet block: x (cin) → out (cout), out = shortcut(x) + conv2(SiLU(norm2(conv1(SiLU(norm1(x)))))). The residual
    // is added by conv2 accumulating onto x itself, or onto the shortcut's output when the channels change.
    private void Resnet(VaeResnetWeights r, ref float[] x, ref float[] s1, ref float[] s2, int h, int w)
    {
        int p = h * w, cin = r.Conv1.In, cout = r.Conv1.Out;
        Kernels.GroupNorm(x, s1, r.Norm1.Gamma, r.Norm1.Beta, cin, p, _groups, VaeConfig.NormEps, silu: true);   // (cin, h, w)
        Conv(s1, r.Conv1, s2, h, w, 3);                                                                        // (cout, h, w)
        Kernels.GroupNorm(s2, s2, r.Norm2.Gamma, r.Norm2.Beta, cout, p, _groups, VaeConfig.NormEps, silu: true); // (cout, h, w)
        if (r.Shortcut is not { } shortcut)
        {
            Conv(s2, r.Conv2, x, h, w, 3, accumulate: true);                                                   // x += h
            return;
        }

        Conv(x, shortcut, s1, h, w, 1);                                                                        // (cout, h, w)
        Conv(s2, r.Conv2, s1, h, w, 3, accumulate: true);                                                      // s1 += h
        (x, s1) = (s1, x);
    }

    // Single-head attention over the pixels, residual: x += proj(softmax(q·kᵀ/√C)·v), q, k, v from GroupNorm(x).
    private void Attention(VaeAttentionWeights a, float[] x, float[] s1, float[] s2, float[] scratch, int h, int w)
    {
        int p = h * w, c = a.Out.In;
        Kernels.GroupNorm(x, s1, a.Norm.Gamma, a.Norm.Beta, c, p, _groups, VaeConfig.NormEps);           // (C, HW)
        Kernels.Transpose(s1, s2, c, p);                                                                // (HW, C)
        Kernels.Linear(_gemm, s2.AsSpan(0, p * c), a.Qkv.W, a.Qkv.B, s1, p, c, 3 * c);                 // (HW, 3C) [q | k | v]
        Kernels.Attention(s1.AsSpan(0, 3 * p * c), s2, 1, p, 1, c, scratch, _gemm.Threads);            // (HW, C)
        Kernels.Transpose(s2.AsSpan(0, p * c), s1, p, c);                                              // (C, HW)
        Conv(s1, a.Out, x, h, w, 1, accumulate: true);                                                 // x += proj
    }

    private void Conv(float[] x, ConvWeights k, float[] y, int h, int w, int kernel, bool accumulate = false)
    {
        int p = h * w;
        Kernels.Conv2d(_gemm, x.AsSpan(0, k.In * p), k.W, k.B, y.AsSpan(0, k.Out * p), k.In, k.Out, h, w, kernel,
            _ws!.Col, accumulate);
    }

    /// <summary>The buffers of one latent size.</summary>
    private sealed class Workspace
    {
        public Workspace(VaeConfig c, int height, int width, int threads)
        {
            Height = height;
            Width = width;
            long stage = StageFloats(c, height, width);
            A = new float[stage];
            B = new float[stage];
            C = new float[stage];
            Col = new float[ColFloats(c, height, width)];
            AttentionScratch = c.MidBlockAddAttention ? new float[Kernels.AttentionScratchSize(height * width, c.MidChannels, threads)] : [];
        }

        public int Height { get; }

        public int Width { get; }

        public float[] A { get; }

        public float[] B { get; }

        public float[] C { get; }

        public float[] Col { get; }

        public float[] AttentionScratch { get; }

        public static long Floats(VaeConfig c, int height, int width, int threads) =>
            (3 * StageFloats(c, height, width)) + ColFloats(c, height, width)
            + (c.MidBlockAddAttention ? Kernels.AttentionScratchSize(height * width, c.MidChannels, threads) : 0);

        // The largest channels × pixels any stage holds: the mid block's q|k|v (3·C·hw), every level's widest
        // ResNet input or output, the upsampled image before its conv, and the latent.
        private static long StageFloats(VaeConfig c, int height, int width)
        {
            long pixels = (long)height * width;
            long max = Math.Max(3L * c.MidChannels * pixels, c.LatentChannels * pixels);
            int prev = c.MidChannels;
            for (int j = 0; j < c.Levels; j++)
            {
                int cout = c.BlockOutChannels[c.Levels - 1 - j];
                max = Math.Max(max, Math.Max(prev, cout) * pixels);
                if (j < c.Levels - 1)
                {
                    pixels *= 4;
                    max = Math.Max(max, cout * pixels);
                }

                prev = cout;
            }

            if (max > Array.MaxLength)
            {
                throw new DitCacheException($"a {height}x{width} latent needs a {max}-float activation buffer, more than one array holds; decode smaller latents (tiles)");
            }

            return max;
        }

        // The largest im2col band of any 3x3 conv: conv_in, every ResNet conv, every upsample conv, conv_out.
        private static int ColFloats(VaeConfig c, int height, int width)
        {
            int size = Kernels.Conv2dScratchSize(c.LatentChannels, height, width, 3);
            int h = height, w = width, prev = c.MidChannels;
            size = Math.Max(size, Kernels.Conv2dScratchSize(prev, h, w, 3));
            for (int j = 0; j < c.Levels; j++)
            {
                int cout = c.BlockOutChannels[c.Levels - 1 - j];
                size = Math.Max(size, Math.Max(Kernels.Conv2dScratchSize(prev, h, w, 3), Kernels.Conv2dScratchSize(cout, h, w, 3)));
                if (j < c.Levels - 1)
                {
                    h *= 2;
                    w *= 2;
                    size = Math.Max(size, Kernels.Conv2dScratchSize(cout, h, w, 3));
                }

                prev = cout;
            }

            return size;
        }
    }
}
