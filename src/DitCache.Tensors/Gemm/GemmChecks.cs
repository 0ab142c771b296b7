using System;

namespace DitCache.Tensors;

/// <summary>Argument validation shared by the <see cref="IGemm"/> backends.</summary>
internal static class GemmChecks
{
    // compactB: b is a 16-bit weight the backend prepared (HalfWeights), which holds this many floats, not n·k.
    public static void Validate(int m, int n, int k, ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb,
        bool transB, Span<float> c, int ldc, long? compactB = null)
    {
        KernelChecks.NonNegative(m, nameof(m));
        KernelChecks.NonNegative(n, nameof(n));
        KernelChecks.NonNegative(k, nameof(k));
        CheckMatrix(a.Length, m, k, lda, "a", "lda");
        if (compactB is long floats)
        {
            KernelChecks.Length(b.Length, floats, "b", $"({n} x {k}) at 16 bits, two to a float");
        }
        else if (transB)
        {
            CheckMatrix(b.Length, n, k, ldb, "b", "ldb");
        }
        else
        {
            CheckMatrix(b.Length, k, n, ldb, "b", "ldb");
        }

        CheckMatrix(c.Length, m, n, ldc, "c", "ldc");
        if (m > 0 && n > 0)
        {
            ReadOnlySpan<float> cr = c;
            if (cr.Overlaps(a) || cr.Overlaps(b))
            {
                throw new ArgumentException("c overlaps a or b; the GEMM output needs its own buffer", nameof(c));
            }
        }
    }

    private static void CheckMatrix(int length, int rows, int cols, int ld, string name, string ldName)
    {
        if (ld < Math.Max(1, cols))
        {
            throw new ArgumentOutOfRangeException(ldName, ld, $"{ldName} {ld} must be >= max(1, {cols}) (the row length of {name})");
        }

        if (rows > 0 && cols > 0)
        {
            long needed = ((long)(rows - 1) * ld) + cols;
            KernelChecks.Length(length, needed, name, $"({rows} x {cols}) with {ldName} {ld}");
        }
    }
}
