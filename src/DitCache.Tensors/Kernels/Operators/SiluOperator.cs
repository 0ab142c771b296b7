using System;
using System.Runtime.Intrinsics;

namespace DitCache.Tensors;

/// <summary>x * sigmoid(x) = x / (1 + e^-x). For x → -inf, e^-x overflows to +inf and the result is -0, as in torch.</summary>
internal readonly struct SiluOperator : IUnaryOperator
{
    public static float Invoke(float x) => x / (1f + MathF.Exp(-x));

    public static Vector256<float> Invoke(Vector256<float> x) => x / (Vector256<float>.One + ExpOperator.Invoke(-x));

    public static Vector512<float> Invoke(Vector512<float> x) => x / (Vector512<float>.One + ExpOperator.Invoke(-x));
}
