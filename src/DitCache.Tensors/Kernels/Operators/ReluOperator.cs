using System;
using System.Runtime.Intrinsics;

namespace DitCache.Tensors;

/// <summary>max(x, 0); NaN stays NaN, as <c>torch.relu</c> keeps it.</summary>
internal readonly struct ReluOperator : IUnaryOperator
{
    public static float Invoke(float x) => MathF.Max(x, 0f);

    public static Vector256<float> Invoke(Vector256<float> x) => Vector256.Max(x, Vector256<float>.Zero);

    public static Vector512<float> Invoke(Vector512<float> x) => Vector512.Max(x, Vector512<float>.Zero);
}
