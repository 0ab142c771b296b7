using System;
using System.Text;
using DitCache.Tensors.IO;
using Xunit;

namespace DitCache.Tensors.Tests.IO;

/// <summary>The zip CRC-32 against published check values and a bit-at-a-time reference.</summary>
public class Crc32Tests
{
    [Theory]
    [InlineData("", 0x00000000u)]
    [InlineData("a", 0xE8B7BE43u)]
    [InlineData("123456789", 0xCBF43926u)]                                 // the CRC-32/ISO-HDLC check value
    [InlineData("The quick brown fox jumps over the lazy dog", 0x414FA339u)]
    public void Compute_MatchesKnownVectors(string text, uint expected)
    {
        Assert.Equal(expected, Crc32.Compute(Encoding.ASCII.GetBytes(text)));
    }

    [Fact]
    public void Append_InPieces_MatchesBitwiseReference()
    {
        var random = new Random(7);
        foreach (int length in new[] { 1, 7, 8, 9, 15, 16, 17, 63, 64, 1000, 4099 })
        {
            byte[] data = new byte[length];
            random.NextBytes(data);
            var crc = new Crc32();
            for (int at = 0; at < length;)
            {
                int n = Math.Min(random.Next(1, 20), length - at);
                crc.Append(data.AsSpan(at, n));
                at += n;
            }

            Assert.Equal(Bitwise(data), crc.Value);
            Assert.Equal(Bitwise(data), Crc32.Compute(data));
        }
    }

    /// <summary>The textbook shift-register CRC, one bit at a time (no tables).</summary>
    private static uint Bitwise(byte[] data)
    {
        uint c = 0xFFFFFFFFu;
        foreach (byte b in data)
        {
            c ^= b;
            for (int k = 0; k < 8; k++)
            {
                c = (c >> 1) ^ (0xEDB88320u & (uint)-(int)(c & 1));
            }
        }

        return ~c;
    }
}
