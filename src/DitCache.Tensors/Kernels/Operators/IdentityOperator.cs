using System.Runtime.Intrinsics;

namespace DitCache.Tensors;

/// <summary>x itself: the "no activation" case of a kernel that takes an <see cref="IUnaryOperator"/>.</summary>
internal readonly struct IdentityOperator : IUnaryOperator
{
    public static float Invoke(float x) => x;

    public static Vector256<float> Invoke(Vector256<float> x) => x;

    public static Vector512<float> Invoke(Vector512<float> x) => x;
}
