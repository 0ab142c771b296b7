using System;
using System.Runtime.Intrinsics;
using Xunit;

namespace DitCache.Tensors.Tests;

/// <summary>
/// BFloat16 rounding against an independent oracle: of the two BF16 neighbours of x (truncation, and one unit of the
/// kept mantissa further from zero), the closer one in exact double arithmetic, the one with an even last kept bit on
/// a tie.
/// </summary>
public class BFloat16Tests
{
    [Theory]
    [InlineData(1f, 1f)]
    [InlineData(1f + (1f / 256), 1f)]                                      // halfway, 1.0 is even: down
    [InlineData(1f + (3f / 256), 1f + (1f / 64))]                          // halfway, 1 + 2^-7 is odd: up
    [InlineData(1f + (1f / 256) + (1f / 65536), 1f + (1f / 128))]          // just above halfway: up
    [InlineData(-2.5f, -2.5f)]
    [InlineData(float.PositiveInfinity, float.PositiveInfinity)]
    [InlineData(float.NegativeInfinity, float.NegativeInfinity)]
    [InlineData(float.MaxValue, float.PositiveInfinity)]                   // rounds past the largest BF16
    [InlineData(-0f, -0f)]
    [InlineData(1e-40f, 9.99995E-41f)]                                     // subnormal: same rule on the bits
    public void Round_is_nearest_even(float x, float expected)
    {
        Assert.Equal(BitConverter.SingleToUInt32Bits(expected) & 0xFFFF0000u, BFloat16.RoundBits(x));
        Assert.Equal(BitConverter.SingleToUInt32Bits(expected) & 0xFFFF0000u, BitConverter.SingleToUInt32Bits(BFloat16.Round(x)));
    }

    [Fact]
    public void Nan_stays_nan()
    {
        Assert.True(float.IsNaN(BFloat16.Round(float.NaN)));
        Assert.True(float.IsNaN(BFloat16.Round(BitConverter.UInt32BitsToSingle(0x7F80_0001u))));  // payload only in the low half
        Assert.True(float.IsNaN(BFloat16.Round(BitConverter.UInt32BitsToSingle(0xFFFF_FFFFu))));  // would carry out
    }

    [Fact]
    public void Round_matches_the_oracle_on_random_bit_patterns()
    {
        var rng = new Random(5);
        for (int i = 0; i < 200_000; i++)
        {
            uint bits = (uint)rng.NextInt64(0, 1L << 32);
            float x = BitConverter.UInt32BitsToSingle(bits);
            if (float.IsNaN(x))
            {
                continue;
            }

            Assert.Equal(Oracle(x), BFloat16.RoundBits(x));
        }
    }

    [Fact]
    public void Vector_rounding_matches_scalar()
    {
        var rng = new Random(6);
        float[] x = new float[4096];
        for (int i = 0; i < x.Length; i++)
        {
            x[i] = BitConverter.UInt32BitsToSingle((uint)rng.NextInt64(0, 1L << 32));   // NaNs and infinities included
        }

        // The portable Vector512/Vector256 operators run in software where the hardware lacks them, so both widths
        // are checked on every CPU and under the ISA switches of test.sh, never skipped.
        for (int i = 0; i < x.Length; i += 16)
        {
            Vector512<uint> wide = BFloat16.RoundBits(Vector512.Create(x.AsSpan(i, 16)));
            Vector256<uint> narrow = BFloat16.RoundBits(Vector256.Create(x.AsSpan(i, 8)));
            for (int j = 0; j < 16; j++)
            {
                Assert.Equal(BFloat16.RoundBits(x[i + j]), wide[j]);
            }

            for (int j = 0; j < 8; j++)
            {
                Assert.Equal(BFloat16.RoundBits(x[i + j]), narrow[j]);
            }
        }
    }

    private static uint Oracle(float x)
    {
        uint bits = BitConverter.SingleToUInt32Bits(x);
        uint down = bits & 0xFFFF0000u;                                    // toward zero
        if (down == bits)
        {
            return bits;
        }

        uint up = down + 0x10000u;                                         // away from zero (may reach infinity)
        double dx = x, dd = BitConverter.UInt32BitsToSingle(down), du = BitConverter.UInt32BitsToSingle(up);
        if (double.IsInfinity(du))
        {
            du = Math.CopySign(Math.ScaleB(1.0, 128), du);                 // IEEE: overflow is judged as if 2^128 existed
        }

        double toDown = Math.Abs(dx - dd), toUp = Math.Abs(du - dx);
        if (toDown != toUp)
        {
            return toDown < toUp ? down : up;
        }

        return (down & 0x10000u) == 0 ? down : up;
    }
}
