using System;

namespace DitCache.Tensors;

public static partial class Kernels
{
    /// <summary>Adds a bias row to every row of a (rows, cols) matrix: <c>x[r, :] += bias</c>.</summary>
    /// <exception cref="ArgumentException">x is shorter than rows·cols or bias shorter than cols.</exception>
    public static void AddBias(Span<float> x, ReadOnlySpan<float> bias, int rows, int cols)
    {
        KernelChecks.NonNegative(rows, nameof(rows));
        KernelChecks.NonNegative(cols, nameof(cols));
        KernelChecks.Length(x.Length, (long)rows * cols, nameof(x), $"(rows {rows}, cols {cols})");
        KernelChecks.Length(bias.Length, cols, nameof(bias), $"cols {cols}");
        ReadOnlySpan<float> b = bias[..cols];
        for (int r = 0; r < rows; r++)
        {
            VectorMath.AddInPlace(x.Slice(r * cols, cols), b);
        }
    }
}
