using System;
using System.Runtime.CompilerServices;

namespace DitCache.Tensors;

/// <summary>
/// Weights stored at 16 bits a value (<see cref="WeightPrecision.BFloat16"/>, <see cref="WeightPrecision.Float16"/>),
/// row-major, two to a float: value 2i in the low half of float i, value 2i + 1 in its high half. This compact array
/// is what a model keeps from the checkpoint (half the bytes of float32) until the GEMM packs it, in place, into its
/// panels (<see cref="ManagedGemm.PrepareInPlace(float[], int, int, WeightPrecision)"/>). Rounding is to nearest, ties
/// to even, once: bfloat16 on the bit pattern (<see cref="BFloat16"/>), float16 by .NET's <see cref="Half"/>
/// conversion. A value the format cannot hold is an error, never clamped.
/// </summary>
public static class HalfWeights
{
    /// <summary>Floats that hold <paramref name="count"/> 16-bit values.</summary>
    public static long CompactLength(long count) => (count + 1) / 2;

    /// <summary>
    /// <paramref name="values"/> rounded to <paramref name="precision"/> and stored two to a float.
    /// <paramref name="name"/> names the tensor in errors.
    /// </summary>
    /// <exception cref="ArgumentException">precision is <see cref="WeightPrecision.Float32"/>.</exception>
    /// <exception cref="DitCacheException">A value is not finite or rounds beyond the format's range (exit code 2).</exception>
    public static float[] Compact(ReadOnlySpan<float> values, WeightPrecision precision, string name)
    {
        if (precision == WeightPrecision.Float32)
        {
            throw new ArgumentException("float32 weights are not compacted", nameof(precision));
        }

        float[] compact = GC.AllocateUninitializedArray<float>((int)CompactLength(values.Length));
        Span<uint> words = System.Runtime.InteropServices.MemoryMarshal.Cast<float, uint>(compact.AsSpan());
        bool f16 = precision == WeightPrecision.Float16;
        for (int i = 0; i < values.Length; i += 2)
        {
            uint lo = Bits(values[i], f16, name, i);
            uint hi = i + 1 < values.Length ? Bits(values[i + 1], f16, name, i + 1) : 0u;
            words[i / 2] = lo | (hi << 16);
        }

        return compact;
    }

    /// <summary>Value <paramref name="index"/> of a compact array of <paramref name="precision"/>, as float32 (exact).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Widen(ReadOnlySpan<float> compact, long index, WeightPrecision precision)
    {
        uint word = BitConverter.SingleToUInt32Bits(compact[(int)(index >> 1)]);
        uint bits = (index & 1) == 0 ? word & 0xFFFFu : word >> 16;
        return Widen16(bits, precision);
    }

    /// <summary>The 16 bits <paramref name="bits"/> of <paramref name="precision"/> as float32 (exact).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Widen16(uint bits, WeightPrecision precision) => precision == WeightPrecision.Float16
        ? (float)BitConverter.UInt16BitsToHalf((ushort)bits)
        : BitConverter.UInt32BitsToSingle(bits << 16);

    /// <summary>
    /// <paramref name="x"/>, which must be a bfloat16 (or, with <paramref name="f16"/>, float16) value already, as its 16 bits (a packing
    /// step: the values come widened from a compact array, so nothing is rounded here).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static uint Narrow16(float x, bool f16) =>
        f16 ? BitConverter.HalfToUInt16Bits((Half)x) : BitConverter.SingleToUInt32Bits(x) >> 16;

    private static uint Bits(float x, bool f16, string name, int index)
    {
        if (!float.IsFinite(x))
        {
            throw new DitCacheException($"'{name}' holds {x} at index {index}: 16-bit weights must be finite; check the file, or run with --weights f32", 2);
        }

        if (f16)
        {
            Half h = (Half)x;
            if (Half.IsInfinity(h))
            {
                throw new DitCacheException($"'{name}' holds {x:G9} at index {index}, beyond float16's range (±65504); run with --weights bf16 or f32", 2);
            }

            return BitConverter.HalfToUInt16Bits(h);
        }

        uint bits = BFloat16.RoundBits(x);
        if (float.IsInfinity(BitConverter.UInt32BitsToSingle(bits)))
        {
            throw new DitCacheException($"'{name}' holds {x:G9} at index {index}, which rounds beyond bfloat16's range; run with --weights f32", 2);
        }

        return bits >> 16;
    }
}
