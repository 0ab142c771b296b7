using System;
using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace DitCache.Tensors.IO;

/// <summary>Little-endian conversion of stored F32/F16/BF16 bytes to float32 and back.</summary>
internal static class DTypeConvert
{
    /// <summary>Bytes per element of <paramref name="dtype"/>.</summary>
    public static int Size(StoredDType dtype) => dtype == StoredDType.F32 ? 4 : 2;

    /// <summary>Decodes <paramref name="src"/> (little-endian <paramref name="dtype"/>) into <paramref name="dst"/>.</summary>
    public static void ToFloat(ReadOnlySpan<byte> src, StoredDType dtype, Span<float> dst)
    {
        switch (dtype)
        {
            case StoredDType.F32:
                if (BitConverter.IsLittleEndian)
                {
                    MemoryMarshal.Cast<byte, float>(src[..(4 * dst.Length)]).CopyTo(dst);
                    break;
                }

                for (int i = 0; i < dst.Length; i++)
                {
                    dst[i] = BinaryPrimitives.ReadSingleLittleEndian(src.Slice(4 * i, 4));
                }

                break;
            case StoredDType.F16:
                for (int i = 0; i < dst.Length; i++)
                {
                    dst[i] = (float)BinaryPrimitives.ReadHalfLittleEndian(src.Slice(2 * i, 2));
                }

                break;
            case StoredDType.BF16:
                for (int i = 0; i < dst.Length; i++)
                {
                    uint bits = (uint)BinaryPrimitives.ReadUInt16LittleEndian(src.Slice(2 * i, 2)) << 16;
                    dst[i] = BitConverter.UInt32BitsToSingle(bits);
                }

                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "unknown dtype");
        }
    }

    /// <summary>Encodes <paramref name="src"/> as little-endian <paramref name="dtype"/> (round to nearest even).</summary>
    public static void FromFloat(ReadOnlySpan<float> src, StoredDType dtype, Span<byte> dst)
    {
        switch (dtype)
        {
            case StoredDType.F32:
                for (int i = 0; i < src.Length; i++)
                {
                    BinaryPrimitives.WriteSingleLittleEndian(dst.Slice(4 * i, 4), src[i]);
                }

                break;
            case StoredDType.F16:
                for (int i = 0; i < src.Length; i++)
                {
                    BinaryPrimitives.WriteHalfLittleEndian(dst.Slice(2 * i, 2), (Half)src[i]);
                }

                break;
            case StoredDType.BF16:
                for (int i = 0; i < src.Length; i++)
                {
                    uint bits = BitConverter.SingleToUInt32Bits(src[i]);
                    if (float.IsNaN(src[i]))
                    {
                        bits = (bits | 0x0040_0000u) >> 16;
                    }
                    else
                    {
                        bits = (bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16;
                    }

                    BinaryPrimitives.WriteUInt16LittleEndian(dst.Slice(2 * i, 2), (ushort)bits);
                }

                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "unknown dtype");
        }
    }
}
