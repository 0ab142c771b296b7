using System;

namespace DitCache.Tensors;

public static partial class Kernels
{
    /// <summary>SiLU: <c>y[i] = x[i]·sigmoid(x[i])</c>. <paramref name="y"/> may be <paramref name="x"/> itself.</summary>
    /// <exception cref="ArgumentException"><paramref name="y"/> is shorter than <paramref name="x"/> or partly overlaps it.</exception>
    public static void Silu(ReadOnlySpan<float> x, Span<float> y)
    {
        KernelChecks.Length(y.Length, x.Length, nameof(y), "x");
        KernelChecks.SameOrDisjoint(x, y, nameof(x), nameof(y));
        UnaryApply.Run<SiluOperator>(x, y);
    }
}
