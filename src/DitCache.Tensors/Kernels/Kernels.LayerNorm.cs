using System;

namespace DitCache.Tensors;

/// <summary>
/// The float32 kernels of the DiT forward pass: static methods over caller-owned spans, one op per file, each with a
/// naive twin in <c>Reference</c> that the tests use as the oracle. Shapes are row-major and given as explicit sizes.
/// </summary>
public static partial class Kernels
{
    /// <summary>
    /// LayerNorm over the last dimension without affine parameters (DiT's <c>elementwise_affine=False</c>):
    /// <c>y[r, :] = (x[r, :] − mean) / √(var + eps)</c> with the biased variance, for a (rows, dim) matrix.
    /// <paramref name="y"/> may be <paramref name="x"/> itself.
    /// </summary>
    /// <exception cref="ArgumentException">A span is shorter than rows·dim, or y partly overlaps x.</exception>
    public static void LayerNorm(ReadOnlySpan<float> x, Span<float> y, int rows, int dim, float eps = 1e-6f)
    {
        KernelChecks.NonNegative(rows, nameof(rows));
        KernelChecks.NonNegative(dim, nameof(dim));
        long count = (long)rows * dim;
        KernelChecks.Length(x.Length, count, nameof(x), $"(rows {rows}, dim {dim})");
        KernelChecks.Length(y.Length, count, nameof(y), $"(rows {rows}, dim {dim})");
        KernelChecks.SameOrDisjoint(x, y, nameof(x), nameof(y));
        if (dim == 0)
        {
            return;
        }

        for (int r = 0; r < rows; r++)
        {
            // Two passes (mean, then centred squares) rather than E[x²] − E[x]², which cancels badly when |mean| ≫ std.
            ReadOnlySpan<float> row = x.Slice(r * dim, dim);
            float mean = VectorMath.Sum(row) / dim;
            float variance = VectorMath.SumSquaredDeviations(row, mean) / dim;
            float inv = 1f / MathF.Sqrt(variance + eps);
            VectorMath.ShiftScale(row, y.Slice(r * dim, dim), mean, inv);
        }
    }
}
