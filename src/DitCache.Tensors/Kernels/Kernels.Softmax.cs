using System;

namespace DitCache.Tensors;

public static partial class Kernels
{
    /// <summary>
    /// Row-wise softmax of a (rows, cols) matrix in place: <c>x[r, j] = exp(x[r, j] − max_r) / Σ_j exp(x[r, j] − max_r)</c>.
    /// The max subtraction keeps exp from overflowing for large logits (TensorPrimitives.SoftMax lacks it, STYLE §7).
    /// A row whose maximum is +inf or NaN yields NaN, as in PyTorch.
    /// </summary>
    /// <exception cref="ArgumentException">x is shorter than rows·cols.</exception>
    public static void Softmax(Span<float> x, int rows, int cols)
    {
        KernelChecks.NonNegative(rows, nameof(rows));
        KernelChecks.NonNegative(cols, nameof(cols));
        KernelChecks.Length(x.Length, (long)rows * cols, nameof(x), $"(rows {rows}, cols {cols})");
        if (cols == 0)
        {
            return;
        }

        for (int r = 0; r < rows; r++)
        {
            SoftmaxRow(x.Slice(r * cols, cols));
        }
    }

    internal static void SoftmaxRow(Span<float> row)
    {
        float max = VectorMath.Max(row);
        float sum = VectorMath.ExpShiftedSum(row, max);
        VectorMath.ShiftScale(row, row, 0f, 1f / sum);
    }
}
