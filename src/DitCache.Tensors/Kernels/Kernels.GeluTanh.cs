using System;

namespace DitCache.Tensors;

public static partial class Kernels
{
    /// <summary>
    /// GELU with the tanh approximation (PyTorch <c>GELU(approximate="tanh")</c>, used by DiT's MLP):
    /// <c>y = 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))</c>. <paramref name="y"/> may be <paramref name="x"/> itself.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="y"/> is shorter than <paramref name="x"/> or partly overlaps it.</exception>
    public static void GeluTanh(ReadOnlySpan<float> x, Span<float> y)
    {
        KernelChecks.Length(y.Length, x.Length, nameof(y), "x");
        KernelChecks.SameOrDisjoint(x, y, nameof(x), nameof(y));
        UnaryApply.Run<GeluTanhOperator>(x, y);
    }
}
