using System;

namespace DitCache.Tensors;

public static partial class Kernels
{
    // Tile side of the blocked transpose: a 32x32 tile of source and destination (8 KiB) stays in L1.
    private const int TransposeTile = 32;

    /// <summary>
    /// <c>y[j, i] = x[i, j]</c>: <paramref name="x"/> (rows, cols) into <paramref name="y"/> (cols, rows), e.g. an
    /// NCHW image (C, H·W) into tokens (H·W, C) for attention over pixels, and back.
    /// </summary>
    /// <exception cref="ArgumentException">A size is negative, a span is too short, or y overlaps x.</exception>
    public static void Transpose(ReadOnlySpan<float> x, Span<float> y, int rows, int cols)
    {
        KernelChecks.NonNegative(rows, nameof(rows));
        KernelChecks.NonNegative(cols, nameof(cols));
        long count = (long)rows * cols;
        KernelChecks.Length(x.Length, count, nameof(x), $"(rows {rows}, cols {cols})");
        KernelChecks.Length(y.Length, count, nameof(y), $"(cols {cols}, rows {rows})");
        KernelChecks.Disjoint(x, y, nameof(x), nameof(y));
        for (int i0 = 0; i0 < rows; i0 += TransposeTile)
        {
            int i1 = Math.Min(rows, i0 + TransposeTile);
            for (int j0 = 0; j0 < cols; j0 += TransposeTile)
            {
                int j1 = Math.Min(cols, j0 + TransposeTile);
                for (int i = i0; i < i1; i++)
                {
                    for (int j = j0; j < j1; j++)
                    {
                        y[(j * rows) + i] = x[(i * cols) + j];
                    }
                }
            }
        }
    }
}
