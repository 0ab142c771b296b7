using System;

namespace DitCache.Tensors;

public static partial class Kernels
{
    /// <summary>
    /// PyTorch <c>Linear</c>: <c>y (rows, outF) = x (rows, inF) · wᵀ + b</c> with <paramref name="w"/> in the
    /// checkpoint layout [outF, inF]. An empty <paramref name="b"/> means no bias.
    /// </summary>
    /// <exception cref="ArgumentException">A span is too short for the sizes, or b is neither empty nor outF long.</exception>
    public static void Linear(IGemm gemm, ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> b,
        Span<float> y, int rows, int inF, int outF)
    {
        CheckLinear(gemm, x, w, b, y, rows, inF, outF);

        if (b.IsEmpty)
        {
            gemm.Multiply(rows, outF, inF, x, inF, w, inF, transB: true, y, outF);
            return;
        }

        if (gemm is ManagedGemm managed)
        {
            managed.MultiplyLinear(rows, outF, inF, x, inF, w, inF, b, y, outF, GemmEpilogue.Bias);   // bias strip by strip, in the blocks
            return;
        }

        // Start from the bias and let the GEMM accumulate onto it: one pass over y instead of two.
        for (int r = 0; r < rows; r++)
        {
            b.CopyTo(y.Slice(r * outF, outF));
        }

        gemm.Multiply(rows, outF, inF, x, inF, w, inF, transB: true, y, outF, accumulate: true);
    }

    /// <summary>
    /// The first half of DiT's MLP, <c>y = GELU_tanh(x·wᵀ + b)</c> (fc1 and its activation; shapes as
    /// <see cref="Linear"/>): the GEMM writes x·wᵀ and one <see cref="AddBiasGeluTanh"/> pass adds the bias and applies
    /// the activation, instead of a bias pass, the GEMM accumulating onto it, and a separate GELU pass. The managed
    /// GEMM does that pass inside its blocks, on each strip of rows while it is in cache and on the thread that
    /// computed it; with another backend it is a pass of its own over the GEMM's threads.
    /// </summary>
    /// <exception cref="ArgumentException">A span is too short for the sizes, or b is neither empty nor outF long.</exception>
    public static void LinearGeluTanh(IGemm gemm, ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> b,
        Span<float> y, int rows, int inF, int outF)
    {
        CheckLinear(gemm, x, w, b, y, rows, inF, outF);
        if (gemm is ManagedGemm managed && !b.IsEmpty)
        {
            managed.MultiplyLinear(rows, outF, inF, x, inF, w, inF, b, y, outF, GemmEpilogue.BiasGeluTanh);
            return;
        }

        gemm.Multiply(rows, outF, inF, x, inF, w, inF, transB: true, y, outF);
        Span<float> h = y[..(rows * outF)];
        if (b.IsEmpty)
        {
            UnaryApply.Run<GeluTanhOperator>(h, h);
        }
        else
        {
            AddBiasGeluTanh(h, b, rows, outF, gemm.Threads);
        }
    }

    private static void CheckLinear(IGemm gemm, ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> b,
        Span<float> y, int rows, int inF, int outF)
    {
        ArgumentNullException.ThrowIfNull(gemm);
        KernelChecks.NonNegative(rows, nameof(rows));
        KernelChecks.Positive(inF, nameof(inF));
        KernelChecks.Positive(outF, nameof(outF));
        KernelChecks.Length(x.Length, (long)rows * inF, nameof(x), $"(rows {rows}, inF {inF})");
        KernelChecks.Length(w.Length, gemm.WeightLength(w, outF, inF), nameof(w), $"[outF {outF}, inF {inF}]");
        KernelChecks.Length(y.Length, (long)rows * outF, nameof(y), $"(rows {rows}, outF {outF})");
        if (!b.IsEmpty && b.Length != outF)
        {
            throw new ArgumentException($"bias holds {b.Length} floats but outF is {outF}; pass outF floats or an empty span", nameof(b));
        }
    }
}
