using System;

namespace DitCache.Tensors;

/// <summary>
/// The geometry of a PyTorch <c>Conv2d(InChannels, OutChannels, (KernelH, KernelW), stride=(StrideH, StrideW),
/// padding=(PadH, PadW))</c> over one NCHW image of Height×Width (dilation 1, groups 1), as
/// <see cref="Kernels.Conv2d(IGemm, in ConvShape, ReadOnlySpan{float}, ReadOnlySpan{float}, ReadOnlySpan{float}, Span{float}, Span{float}, bool)"/>
/// runs it. The output is <see cref="OutHeight"/>×<see cref="OutWidth"/>, PyTorch's floor rule.
/// </summary>
/// <param name="InChannels">Input channels.</param>
/// <param name="OutChannels">Output channels.</param>
/// <param name="Height">Input height.</param>
/// <param name="Width">Input width.</param>
/// <param name="KernelH">Kernel height.</param>
/// <param name="KernelW">Kernel width.</param>
/// <param name="StrideH">Vertical stride.</param>
/// <param name="StrideW">Horizontal stride.</param>
/// <param name="PadH">Zero rows added above and below.</param>
/// <param name="PadW">Zero columns added left and right.</param>
public readonly record struct ConvShape(int InChannels, int OutChannels, int Height, int Width, int KernelH, int KernelW,
    int StrideH = 1, int StrideW = 1, int PadH = 0, int PadW = 0)
{
    /// <summary>Output height: ⌊(Height + 2·PadH − KernelH) / StrideH⌋ + 1.</summary>
    public int OutHeight => ((Height + (2 * PadH) - KernelH) / StrideH) + 1;

    /// <summary>Output width: ⌊(Width + 2·PadW − KernelW) / StrideW⌋ + 1.</summary>
    public int OutWidth => ((Width + (2 * PadW) - KernelW) / StrideW) + 1;

    /// <summary>The inner dimension of the GEMM: InChannels·KernelH·KernelW (one row of the checkpoint weight).</summary>
    public int Taps => InChannels * KernelH * KernelW;

    /// <summary>Whether the conv is a plain matrix product over the image (1x1, stride 1, no padding): no im2col.</summary>
    public bool IsPointwise => KernelH == 1 && KernelW == 1 && StrideH == 1 && StrideW == 1 && PadH == 0 && PadW == 0;

    /// <summary>A square kernel with the same stride and padding in both directions.</summary>
    public static ConvShape Square(int inChannels, int outChannels, int height, int width, int kernel, int stride = 1, int pad = 0) =>
        new(inChannels, outChannels, height, width, kernel, kernel, stride, stride, pad, pad);

    /// <summary>Throws when a size is not positive, a padding negative, or the output would be empty.</summary>
    /// <exception cref="ArgumentException">Invalid geometry; the message names the field and its value.</exception>
    public void Validate()
    {
        KernelChecks.Positive(InChannels, nameof(InChannels));
        KernelChecks.Positive(OutChannels, nameof(OutChannels));
        KernelChecks.Positive(Height, nameof(Height));
        KernelChecks.Positive(Width, nameof(Width));
        KernelChecks.Positive(KernelH, nameof(KernelH));
        KernelChecks.Positive(KernelW, nameof(KernelW));
        KernelChecks.Positive(StrideH, nameof(StrideH));
        KernelChecks.Positive(StrideW, nameof(StrideW));
        KernelChecks.NonNegative(PadH, nameof(PadH));
        KernelChecks.NonNegative(PadW, nameof(PadW));
        if (Height + (2 * PadH) < KernelH || Width + (2 * PadW) < KernelW)
        {
            throw new ArgumentException(
                $"a {KernelH}x{KernelW} kernel does not fit a {Height}x{Width} image padded by ({PadH}, {PadW}); the output would be empty");
        }
    }
}
