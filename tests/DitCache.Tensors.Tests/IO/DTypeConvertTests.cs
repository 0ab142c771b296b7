using System;
using System.Buffers.Binary;
using DitCache.Tensors.IO;
using Xunit;

namespace DitCache.Tensors.Tests.IO;

/// <summary>
/// DTypeConvert against oracles written from the IEEE layouts (sign, exponent, mantissa with Math.ScaleB) and
/// round-to-nearest-even by comparing the two neighbouring candidates in double, not against BCL casts.
/// </summary>
public class DTypeConvertTests
{
    [Fact]
    public void ToFloat_F16_AllBitPatterns()
    {
        for (int h = 0; h <= 0xFFFF; h++)
        {
            float actual = ToFloat(StoredDType.F16, (ushort)h);
            AssertSame(DecodeF16((ushort)h), actual, $"f16 0x{h:x4}");
        }
    }

    [Fact]
    public void ToFloat_BF16_AllBitPatterns()
    {
        for (int h = 0; h <= 0xFFFF; h++)
        {
            float actual = ToFloat(StoredDType.BF16, (ushort)h);
            AssertSame(DecodeBF16((ushort)h), actual, $"bf16 0x{h:x4}");
        }
    }

    [Theory]
    [InlineData(1f, 0x3C00)]
    [InlineData(-0f, 0x8000)]
    [InlineData(65504f, 0x7BFF)] // largest finite
    [InlineData(65519.99f, 0x7BFF)] // just below the overflow midpoint
    [InlineData(65520f, 0x7C00)] // the midpoint to 2^16 rounds to even: infinity
    [InlineData(float.NegativeInfinity, 0xFC00)]
    [InlineData(5.9604645e-8f, 0x0001)] // smallest subnormal 2^-24
    [InlineData(2.9802322e-8f, 0x0000)] // 2^-25: a tie between 0 and 2^-24, to even
    [InlineData(2.9802326e-8f, 0x0001)] // just above the tie
    [InlineData(1.00048828125f, 0x3C00)] // 1 + 2^-11: tie, to even
    [InlineData(1.00146484375f, 0x3C02)] // 1 + 3·2^-11: tie, to even
    public void FromFloat_F16_KnownValues(float x, int expected)
    {
        Assert.Equal((ushort)expected, FromFloat(StoredDType.F16, x));
    }

    [Theory]
    [InlineData(0x3F80_8000u, 0x3F80)] // tie, to even (down)
    [InlineData(0x3F81_8000u, 0x3F82)] // tie, to even (up)
    [InlineData(0x3F80_8001u, 0x3F81)] // just above the tie
    [InlineData(0x3F80_7FFFu, 0x3F80)] // just below the tie
    [InlineData(0x7F7F_FFFFu, 0x7F80)] // float max rounds to infinity, as torch does
    [InlineData(0x7F80_0000u, 0x7F80)] // +inf
    [InlineData(0x8000_0000u, 0x8000)] // -0
    [InlineData(0x0001_0000u, 0x0001)] // subnormal, exact
    [InlineData(0x0000_8000u, 0x0000)] // subnormal tie, to even
    public void FromFloat_BF16_KnownValues(uint bits, int expected)
    {
        Assert.Equal((ushort)expected, FromFloat(StoredDType.BF16, BitConverter.UInt32BitsToSingle(bits)));
    }

    [Theory]
    [InlineData(0x7FC0_0000u)]
    [InlineData(0x7F80_0001u)] // payload only in the low bits: plain truncation would make it infinity
    [InlineData(0xFFFF_FFFFu)]
    public void FromFloat_NaN_StaysNaN(uint bits)
    {
        float nan = BitConverter.UInt32BitsToSingle(bits);
        Assert.True(float.IsNaN(DecodeBF16(FromFloat(StoredDType.BF16, nan))));
        Assert.True(float.IsNaN(DecodeF16(FromFloat(StoredDType.F16, nan))));
    }

    [Fact]
    public void FromFloat_F16_EveryMidpointAndNeighbour()
    {
        // Midpoints between consecutive finite halves are exact in float32; so are values just off them.
        for (int h = 0; h < 0x7BFF; h++)
        {
            float lo = DecodeF16((ushort)h);
            float hi = DecodeF16((ushort)(h + 1));
            float mid = (float)((lo + (double)hi) / 2);
            foreach (float x in new[] { lo, mid, MathF.BitDecrement(mid), MathF.BitIncrement(mid) })
            {
                Assert.Equal(NearestF16(x), FromFloat(StoredDType.F16, x));
                Assert.Equal((ushort)(NearestF16(x) | 0x8000), FromFloat(StoredDType.F16, -x));
            }
        }
    }

    [Fact]
    public void FromFloat_BF16_RandomFloats()
    {
        var rng = new Random(7);
        for (int i = 0; i < 200_000; i++)
        {
            uint bits = (uint)rng.NextInt64(0, 1L << 32);
            if (i % 4 == 0)
            {
                bits = (bits & 0xFFFF_0000u) | 0x8000u; // force exact ties
            }

            float x = BitConverter.UInt32BitsToSingle(bits);
            if (float.IsNaN(x))
            {
                continue;
            }

            Assert.Equal(NearestBF16(x), FromFloat(StoredDType.BF16, x));
        }
    }

    [Fact]
    public void F32_RoundTripsBits()
    {
        var rng = new Random(3);
        for (int i = 0; i < 10_000; i++)
        {
            uint bits = (uint)rng.NextInt64(0, 1L << 32);
            float x = BitConverter.UInt32BitsToSingle(bits);
            byte[] raw = new byte[4];
            DTypeConvert.FromFloat([x], StoredDType.F32, raw);
            Assert.Equal(bits, BinaryPrimitives.ReadUInt32LittleEndian(raw));
            float[] back = new float[1];
            DTypeConvert.ToFloat(raw, StoredDType.F32, back);
            Assert.Equal(bits, BitConverter.SingleToUInt32Bits(back[0]));
        }
    }

    [Fact]
    public void Size_IsBytesPerElement()
    {
        Assert.Equal(4, DTypeConvert.Size(StoredDType.F32));
        Assert.Equal(2, DTypeConvert.Size(StoredDType.F16));
        Assert.Equal(2, DTypeConvert.Size(StoredDType.BF16));
    }

    /// <summary>IEEE binary16: 1 sign, 5 exponent (bias 15), 10 mantissa bits.</summary>
    private static float DecodeF16(ushort h)
    {
        int exp = (h >> 10) & 0x1F;
        int man = h & 0x3FF;
        double v = exp switch
        {
            0x1F => man == 0 ? double.PositiveInfinity : double.NaN,
            0 => Math.ScaleB(man, -24),
            _ => Math.ScaleB(1024 + man, exp - 25),
        };
        return (float)((h & 0x8000) != 0 ? -v : v);
    }

    /// <summary>bfloat16: 1 sign, 8 exponent (bias 127), 7 mantissa bits.</summary>
    private static float DecodeBF16(ushort h)
    {
        int exp = (h >> 7) & 0xFF;
        int man = h & 0x7F;
        double v = exp switch
        {
            0xFF => man == 0 ? double.PositiveInfinity : double.NaN,
            0 => Math.ScaleB(man, -133),
            _ => Math.ScaleB(128 + man, exp - 134),
        };
        return (float)((h & 0x8000) != 0 ? -v : v);
    }

    /// <summary>The nearest finite-or-infinite half to non-negative x, ties to even, by search over all halves.</summary>
    private static ushort NearestF16(float x)
    {
        // Largest h in [0, 0x7BFF] with value <= x (positive halves are ordered by their bits).
        int lo = 0;
        int hi = 0x7BFF;
        while (lo < hi)
        {
            int m = (lo + hi + 1) / 2;
            if (DecodeF16((ushort)m) <= x)
            {
                lo = m;
            }
            else
            {
                hi = m - 1;
            }
        }

        // Above the largest finite half, the next candidate is 2^16 (shown as infinity).
        double below = DecodeF16((ushort)lo);
        double above = lo == 0x7BFF ? 65536.0 : DecodeF16((ushort)(lo + 1));
        return (ushort)Choose(x, below, above, lo);
    }

    /// <summary>The nearest bfloat16 to x (not NaN), ties to even, from the two truncation neighbours.</summary>
    private static ushort NearestBF16(float x)
    {
        uint bits = BitConverter.SingleToUInt32Bits(x);
        uint sign = bits & 0x8000_0000u;
        uint mag = bits & 0x7FFF_FFFFu;
        if (mag >= 0x7F80_0000u)
        {
            return (ushort)(bits >> 16); // infinity
        }

        int lo = (int)(mag >> 16);
        double below = DecodeBF16((ushort)lo);
        double above = lo == 0x7F7F ? Math.ScaleB(1.0, 128) : DecodeBF16((ushort)(lo + 1));
        return (ushort)((sign >> 16) | (uint)Choose(Math.Abs(x), below, above, lo));
    }

    private static int Choose(double x, double below, double above, int lo)
    {
        double dBelow = x - below;
        double dAbove = above - x;
        return dBelow < dAbove || (dBelow == dAbove && (lo & 1) == 0) ? lo : lo + 1;
    }

    private static float ToFloat(StoredDType dtype, ushort bits)
    {
        byte[] raw = new byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(raw, bits);
        float[] dst = new float[1];
        DTypeConvert.ToFloat(raw, dtype, dst);
        return dst[0];
    }

    private static ushort FromFloat(StoredDType dtype, float x)
    {
        byte[] raw = new byte[2];
        DTypeConvert.FromFloat([x], dtype, raw);
        return BinaryPrimitives.ReadUInt16LittleEndian(raw);
    }

    private static void AssertSame(float expected, float actual, string what)
    {
        bool same = float.IsNaN(expected)
            ? float.IsNaN(actual)
            : BitConverter.SingleToUInt32Bits(expected) == BitConverter.SingleToUInt32Bits(actual);
        Assert.True(same, $"{what}: {actual}, expected {expected}");
    }
}
