using System;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace DitCache.Tensors;

public static partial class Kernels
{
    /// <summary>
    /// The index of the first NaN or ±∞ in <paramref name="x"/>, or −1 when every value is finite. One vectorised
    /// pass: <c>v − v</c> is 0 for a finite v and NaN otherwise, so a lane fails <c>v − v == 0</c> exactly when v is
    /// not finite; the failing block is then searched lane by lane. Allocates nothing (the sampling loop calls it).
    /// </summary>
    public static int IndexOfNonFinite(ReadOnlySpan<float> x)
    {
        ref float start = ref MemoryMarshal.GetReference(x);
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            for (; i <= x.Length - Vector512<float>.Count; i += Vector512<float>.Count)
            {
                Vector512<float> v = Vector512.LoadUnsafe(ref start, (nuint)i);
                if (!Vector512.EqualsAll(v - v, Vector512<float>.Zero))
                {
                    return i + FirstNonFinite(x.Slice(i, Vector512<float>.Count));
                }
            }
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            for (; i <= x.Length - Vector256<float>.Count; i += Vector256<float>.Count)
            {
                Vector256<float> v = Vector256.LoadUnsafe(ref start, (nuint)i);
                if (!Vector256.EqualsAll(v - v, Vector256<float>.Zero))
                {
                    return i + FirstNonFinite(x.Slice(i, Vector256<float>.Count));
                }
            }
        }

        int tail = FirstNonFinite(x[i..]);
        return tail < 0 ? -1 : i + tail;
    }

    private static int FirstNonFinite(ReadOnlySpan<float> x)
    {
        for (int i = 0; i < x.Length; i++)
        {
            if (!float.IsFinite(x[i]))
            {
                return i;
            }
        }

        return -1;
    }
}
