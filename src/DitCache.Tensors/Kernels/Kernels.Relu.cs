using System;

namespace DitCache.Tensors;

public static partial class Kernels
{
    /// <summary>ReLU: <c>y[i] = max(x[i], 0)</c>. <paramref name="y"/> may be <paramref name="x"/> itself.</summary>
    /// <exception cref="ArgumentException"><paramref name="y"/> is shorter than <paramref name="x"/> or partly overlaps it.</exception>
    public static void Relu(ReadOnlySpan<float> x, Span<float> y)
    {
        KernelChecks.Length(y.Length, x.Length, nameof(y), "x");
        KernelChecks.SameOrDisjoint(x, y, nameof(x), nameof(y));
        UnaryApply.Run<ReluOperator>(x, y);
    }
}
