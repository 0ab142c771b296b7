using System;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace DitCache.Tensors;

/// <summary>
/// bfloat16: the upper 16 bits of an IEEE float32 (sign, 8 exponent bits, 7 mantissa bits). Conversion from float32
/// rounds to nearest, ties to even, on the bit pattern (the rule of PyTorch's <c>c10::BFloat16</c> and of
/// <c>VCVTNEPS2BF16</c>): add 0x7FFF plus the lowest kept bit, then drop the low half. Overflow rounds to ±inf as
/// IEEE rounding does; NaN stays a (quiet) NaN. Conversion back is exact: the 16 bits become the high half.
/// </summary>
internal static class BFloat16
{
    private const uint QuietBit = 0x0040_0000;

    /// <summary>The float32 bit pattern of <paramref name="x"/> rounded to bfloat16 (low 16 bits zero).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint RoundBits(float x)
    {
        uint bits = BitConverter.SingleToUInt32Bits(x);
        if (float.IsNaN(x))
        {
            return (bits | QuietBit) & 0xFFFF_0000u;
        }

        return (bits + 0x7FFFu + ((bits >> 16) & 1u)) & 0xFFFF_0000u;
    }

    /// <summary><paramref name="x"/> rounded to the nearest bfloat16 value, as a float32.</summary>
    public static float Round(float x) => BitConverter.UInt32BitsToSingle(RoundBits(x));

    /// <summary>Lane-wise <see cref="RoundBits(float)"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<uint> RoundBits(Vector512<float> x)
    {
        Vector512<uint> bits = x.AsUInt32();
        Vector512<uint> rounded = bits + Vector512.Create(0x7FFFu) + ((bits >> 16) & Vector512<uint>.One);
        Vector512<uint> nan = ~Vector512.Equals(x, x).AsUInt32();
        return Vector512.ConditionalSelect(nan, bits | Vector512.Create(QuietBit), rounded) & Vector512.Create(0xFFFF_0000u);
    }

    /// <summary>Lane-wise <see cref="RoundBits(float)"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<uint> RoundBits(Vector256<float> x)
    {
        Vector256<uint> bits = x.AsUInt32();
        Vector256<uint> rounded = bits + Vector256.Create(0x7FFFu) + ((bits >> 16) & Vector256<uint>.One);
        Vector256<uint> nan = ~Vector256.Equals(x, x).AsUInt32();
        return Vector256.ConditionalSelect(nan, bits | Vector256.Create(QuietBit), rounded) & Vector256.Create(0xFFFF_0000u);
    }
}
