using System;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace DitCache.Tensors;

public static partial class Kernels
{
    /// <summary>
    /// Bias then GELU (tanh approximation, as <see cref="GeluTanh"/>) in one pass, in place over a (rows, cols)
    /// matrix: <c>x[r, :] = GELU_tanh(x[r, :] + bias)</c>. The epilogue of DiT's fc1 (see
    /// <see cref="LinearGeluTanh"/>): the GEMM writes x·wᵀ, this pass adds the bias and applies the activation.
    /// </summary>
    /// <exception cref="ArgumentException">x is shorter than rows·cols or bias shorter than cols.</exception>
    public static void AddBiasGeluTanh(Span<float> x, ReadOnlySpan<float> bias, int rows, int cols)
    {
        KernelChecks.NonNegative(rows, nameof(rows));
        KernelChecks.NonNegative(cols, nameof(cols));
        KernelChecks.Length(x.Length, (long)rows * cols, nameof(x), $"(rows {rows}, cols {cols})");
        KernelChecks.Length(bias.Length, cols, nameof(bias), $"cols {cols}");
        ref float bs = ref MemoryMarshal.GetReference(bias);
        for (int r = 0; r < rows; r++)
        {
            ref float xs = ref MemoryMarshal.GetReference(x.Slice(r * cols, cols));
            int i = 0;
            if (Vector512.IsHardwareAccelerated)
            {
                for (; i <= cols - Vector512<float>.Count; i += Vector512<float>.Count)
                {
                    Vector512<float> v = Vector512.LoadUnsafe(ref xs, (nuint)i) + Vector512.LoadUnsafe(ref bs, (nuint)i);
                    GeluTanhOperator.Invoke(v).StoreUnsafe(ref xs, (nuint)i);
                }
            }

            if (Vector256.IsHardwareAccelerated)
            {
                for (; i <= cols - Vector256<float>.Count; i += Vector256<float>.Count)
                {
                    Vector256<float> v = Vector256.LoadUnsafe(ref xs, (nuint)i) + Vector256.LoadUnsafe(ref bs, (nuint)i);
                    GeluTanhOperator.Invoke(v).StoreUnsafe(ref xs, (nuint)i);
                }
            }

            for (; i < cols; i++)
            {
                Unsafe.Add(ref xs, i) = GeluTanhOperator.Invoke(Unsafe.Add(ref xs, i) + Unsafe.Add(ref bs, i));
            }
        }
    }
}
