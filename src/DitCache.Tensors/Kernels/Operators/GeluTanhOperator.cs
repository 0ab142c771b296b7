using System;
using System.Runtime.Intrinsics;

namespace DitCache.Tensors;

/// <summary>
/// GELU, tanh approximation: 0.5·x·(1 + tanh(u)), u = √(2/π)(x + 0.044715x³). Computed as x·sigmoid(2u) =
/// x / (1 + e^(-2u)), which is the same function (1 + tanh(u) = 2·sigmoid(2u)) with one exp and no cancellation
/// for negative x.
/// </summary>
internal readonly struct GeluTanhOperator : IUnaryOperator
{
    // -2·√(2/π) and -2·√(2/π)·0.044715
    private const float C1 = -1.5957691216057308f;
    private const float C3 = -0.07135481627159584f;

    public static float Invoke(float x) => x / (1f + MathF.Exp(x * (C1 + (C3 * x * x))));

    public static Vector256<float> Invoke(Vector256<float> x)
    {
        Vector256<float> inner = Vector256.FusedMultiplyAdd(Vector256.Create(C3) * x, x, Vector256.Create(C1));
        return x / (Vector256<float>.One + ExpOperator.Invoke(x * inner));
    }

    public static Vector512<float> Invoke(Vector512<float> x)
    {
        Vector512<float> inner = Vector512.FusedMultiplyAdd(Vector512.Create(C3) * x, x, Vector512.Create(C1));
        return x / (Vector512<float>.One + ExpOperator.Invoke(x * inner));
    }
}
