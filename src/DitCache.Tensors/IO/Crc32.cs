using System;
using System.Buffers.Binary;

namespace DitCache.Tensors.IO;

/// <summary>
/// CRC-32 as zip stores it (ISO 3309 / ITU-T V.42: reflected polynomial 0xEDB88320, initial value and final xor
/// 0xFFFFFFFF), computed slicing-by-8 (eight 256-entry tables, eight bytes per step). System.IO.Hashing is not a
/// dependency of this project, so this small table implementation stands in for it.
/// </summary>
internal struct Crc32
{
    private static readonly uint[] s_table = BuildTable();

    private uint _state;

    /// <summary>A fresh CRC (of no bytes yet).</summary>
    public Crc32()
    {
        _state = 0xFFFF_FFFFu;
    }

    /// <summary>The CRC of the bytes appended so far.</summary>
    public readonly uint Value => ~_state;

    /// <summary>The CRC-32 of <paramref name="data"/>.</summary>
    public static uint Compute(ReadOnlySpan<byte> data)
    {
        var crc = new Crc32();
        crc.Append(data);
        return crc.Value;
    }

    /// <summary>Continues the CRC over <paramref name="data"/>.</summary>
    public void Append(ReadOnlySpan<byte> data)
    {
        uint[] t = s_table;
        uint c = _state;
        while (data.Length >= 8)
        {
            uint lo = BinaryPrimitives.ReadUInt32LittleEndian(data) ^ c;
            uint hi = BinaryPrimitives.ReadUInt32LittleEndian(data[4..]);
            c = t[(7 * 256) + (lo & 0xFF)] ^ t[(6 * 256) + ((lo >> 8) & 0xFF)]
                ^ t[(5 * 256) + ((lo >> 16) & 0xFF)] ^ t[(4 * 256) + (lo >> 24)]
                ^ t[(3 * 256) + (hi & 0xFF)] ^ t[(2 * 256) + ((hi >> 8) & 0xFF)]
                ^ t[256 + ((hi >> 16) & 0xFF)] ^ t[hi >> 24];
            data = data[8..];
        }

        foreach (byte b in data)
        {
            c = t[(c ^ b) & 0xFF] ^ (c >> 8);
        }

        _state = c;
    }

    private static uint[] BuildTable()
    {
        var t = new uint[8 * 256];
        for (uint i = 0; i < 256; i++)
        {
            uint c = i;
            for (int k = 0; k < 8; k++)
            {
                c = (c & 1) != 0 ? 0xEDB8_8320u ^ (c >> 1) : c >> 1;
            }

            t[i] = c;
        }

        // Table k advances a byte that sits k positions before the end of an 8-byte block.
        for (int k = 1; k < 8; k++)
        {
            for (int i = 0; i < 256; i++)
            {
                uint prev = t[((k - 1) * 256) + i];
                t[(k * 256) + i] = t[prev & 0xFF] ^ (prev >> 8);
            }
        }

        return t;
    }
}
