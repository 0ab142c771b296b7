using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.IO;
using System.IO.Compression;
using System.Linq;
using System.Text;
using DitCache.Tensors.IO;
using Xunit;

namespace DitCache.Tensors.Tests.IO;

/// <summary>
/// One test per class of hostile <c>.pt</c> input (issue 16): zip structure, CRC, storage sizes, tensor
/// offset/size/stride arithmetic, pickle strings and pickle machine bounds. Each must end in a one-line
/// DitCacheException naming the file.
/// </summary>
public class HostileTorchCheckpointTests
{
    private const long Big = 1L << 62;

    [Fact]
    public void Crc_FlipInStorage_FailsWhenTheTensorIsRead()
    {
        byte[] bytes = File.ReadAllBytes(IoFixtures.Path("plain_f32.pt"));
        (int data, int size) = DataOf(bytes, "plain_f32/data/3");
        bytes[data + (size / 2)] ^= 0x10;
        using var dir = new TempDir();
        TensorFile file = TorchCheckpoint.Load(dir.Write("flip.pt", bytes));   // the header is intact

        DitCacheException e = Assert.Throws<DitCacheException>(() => file.Tensors.Values.ToList());
        Assert.Contains("entry 'plain_f32/data/3' has CRC-32", e.Message, StringComparison.Ordinal);
        Assert.Contains("but the archive records", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("plain_f32/data.pkl")]
    [InlineData("plain_f32/version")]
    public void Crc_FlipInPickleOrVersion_FailsAtLoad(string entry)
    {
        byte[] bytes = File.ReadAllBytes(IoFixtures.Path("plain_f32.pt"));
        (int data, _) = DataOf(bytes, entry);
        bytes[data] ^= 0x01;
        using var dir = new TempDir();
        string path = dir.Write("flip.pt", bytes);

        DitCacheException e = Assert.Throws<DitCacheException>(() => TorchCheckpoint.Load(path));
        Assert.Contains($"entry '{entry}' has CRC-32", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void CompressedEntries_AreRefusedClearly()
    {
        using var ms = new MemoryStream();
        using (var zip = new ZipArchive(ms, ZipArchiveMode.Create, leaveOpen: true))
        {
            foreach ((string name, byte[] data) in IoFixtures.Entries(IoFixtures.Path("plain_f32.pt")))
            {
                using Stream s = zip.CreateEntry(name, CompressionLevel.Optimal).Open();
                s.Write(data);
            }
        }

        DitCacheException e = AssertRefused(ms.ToArray(), "is compressed (zip method 8)");
        Assert.Contains("save it again with torch.save", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(10, 2, 0xFFFF, "spans several disks")]          // entries here != entries in total
    [InlineData(8, 2, 0x7FFF, "spans several disks")]
    [InlineData(12, 4, 0x7FFF_FFFF, "does not end before byte")] // central directory size
    [InlineData(16, 4, 0x7FFF_FFFF, "does not end before byte")] // central directory offset
    [InlineData(16, 4, 1, "has no header signature")]
    [InlineData(4, 2, 1, "spans several disks")]
    public void CentralDirectory_Lies_AreRefused(int field, int width, long value, string problem)
    {
        // A .NET-written archive (no ZIP64 records): the classic end record's fields are the ones in force.
        byte[] bytes = IoFixtures.Zip(IoFixtures.Entries(IoFixtures.Path("plain_f32.pt")));
        int end = bytes.Length - 22;
        Assert.Equal(0x06054b50u, BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(end)));
        if (width == 2)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(end + field), (ushort)value);
        }
        else
        {
            BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(end + field), (uint)value);
        }

        AssertRefused(bytes, problem);
    }

    [Fact]
    public void EntryCountLie_IsRefused()
    {
        byte[] bytes = IoFixtures.Zip(IoFixtures.Entries(IoFixtures.Path("plain_f32.pt")));
        int end = bytes.Length - 22;
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(end + 8), 0xFFFE);
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(end + 10), 0xFFFE);
        AssertRefused(bytes, "claims 65534 entries");
    }

    [Theory]
    [InlineData(8, "the ZIP64 end record offset")]     // locator: offset of the ZIP64 end record
    [InlineData(-20, "")]                              // ZIP64 end record fields, below
    public void Zip64Records_AreReadAndChecked(int what, string problem)
    {
        // torch.save writes ZIP64 end records even for small files; the fixture has them.
        byte[] bytes = File.ReadAllBytes(IoFixtures.Path("plain_f32.pt"));
        int end = bytes.Length - 22, locator = end - 20;
        Assert.Equal(0x07064b50u, BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(locator)));
        if (what == 8)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(locator + 8), ulong.MaxValue - 3);
            AssertRefused(bytes, problem);
            return;
        }

        int z64 = (int)BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(locator + 8));
        foreach ((int field, ulong value, string expected) in new (int, ulong, string)[]
        {
            (32, ulong.MaxValue, "spans several disks"), (40, ulong.MaxValue, "does not end before byte"),
            (48, (ulong)long.MaxValue, "does not end before byte"),
        })
        {
            byte[] lie = (byte[])bytes.Clone();
            BinaryPrimitives.WriteUInt64LittleEndian(lie.AsSpan(z64 + field), value);
            AssertRefused(lie, expected);
        }
    }

    [Fact]
    public void Zip64ExtraFields_AreRead()
    {
        // The archive as a >4 GB checkpoint would store it: every size and offset in the central directory as
        // 0xFFFFFFFF with the real values in a ZIP64 extra field, and ZIP64 end records. It loads as the original.
        byte[] plain = IoFixtures.Zip(IoFixtures.Entries(IoFixtures.Path("plain_f32.pt")));
        int end = plain.Length - 22;
        int count = BinaryPrimitives.ReadUInt16LittleEndian(plain.AsSpan(end + 10));
        int cdOffset = (int)BinaryPrimitives.ReadUInt32LittleEndian(plain.AsSpan(end + 16));
        using var cd = new MemoryStream();
        int at = cdOffset;
        for (int i = 0; i < count; i++)
        {
            int nameLength = BinaryPrimitives.ReadUInt16LittleEndian(plain.AsSpan(at + 28));
            int skip = 46 + nameLength + BinaryPrimitives.ReadUInt16LittleEndian(plain.AsSpan(at + 30)) + BinaryPrimitives.ReadUInt16LittleEndian(plain.AsSpan(at + 32));
            byte[] h = plain.AsSpan(at, 46).ToArray();
            ulong compressed = BinaryPrimitives.ReadUInt32LittleEndian(h.AsSpan(20)), size = BinaryPrimitives.ReadUInt32LittleEndian(h.AsSpan(24));
            ulong offset = BinaryPrimitives.ReadUInt32LittleEndian(h.AsSpan(42));
            BinaryPrimitives.WriteUInt32LittleEndian(h.AsSpan(20), uint.MaxValue);
            BinaryPrimitives.WriteUInt32LittleEndian(h.AsSpan(24), uint.MaxValue);
            BinaryPrimitives.WriteUInt32LittleEndian(h.AsSpan(42), uint.MaxValue);
            BinaryPrimitives.WriteUInt16LittleEndian(h.AsSpan(30), 28);                      // extra: ZIP64 only
            BinaryPrimitives.WriteUInt16LittleEndian(h.AsSpan(32), 0);                       // no comment
            cd.Write(h);
            cd.Write(plain.AsSpan(at + 46, nameLength));
            byte[] extra = new byte[28];
            BinaryPrimitives.WriteUInt16LittleEndian(extra, 1);
            BinaryPrimitives.WriteUInt16LittleEndian(extra.AsSpan(2), 24);
            BinaryPrimitives.WriteUInt64LittleEndian(extra.AsSpan(4), size);                 // uncompressed, compressed, offset
            BinaryPrimitives.WriteUInt64LittleEndian(extra.AsSpan(12), compressed);
            BinaryPrimitives.WriteUInt64LittleEndian(extra.AsSpan(20), offset);
            cd.Write(extra);
            at += skip;
        }

        byte[] z64 = new byte[56 + 20 + 22];
        BinaryPrimitives.WriteUInt32LittleEndian(z64, 0x06064b50);
        BinaryPrimitives.WriteUInt64LittleEndian(z64.AsSpan(4), 44);
        BinaryPrimitives.WriteUInt64LittleEndian(z64.AsSpan(24), (ulong)count);
        BinaryPrimitives.WriteUInt64LittleEndian(z64.AsSpan(32), (ulong)count);
        BinaryPrimitives.WriteUInt64LittleEndian(z64.AsSpan(40), (ulong)cd.Length);
        BinaryPrimitives.WriteUInt64LittleEndian(z64.AsSpan(48), (ulong)cdOffset);
        BinaryPrimitives.WriteUInt32LittleEndian(z64.AsSpan(56), 0x07064b50);
        BinaryPrimitives.WriteUInt64LittleEndian(z64.AsSpan(64), (ulong)(cdOffset + cd.Length));
        BinaryPrimitives.WriteUInt32LittleEndian(z64.AsSpan(72), 1);
        BinaryPrimitives.WriteUInt32LittleEndian(z64.AsSpan(76), 0x06054b50);
        z64.AsSpan(84, 4).Fill(0xFF);                                                        // entry counts
        z64.AsSpan(88, 8).Fill(0xFF);                                                        // directory size and offset
        byte[] bytes = [.. plain.AsSpan(0, cdOffset), .. cd.ToArray(), .. z64];

        using var dir = new TempDir();
        TensorFile file = TorchCheckpoint.Load(dir.Write("zip64.pt", bytes));
        foreach ((string name, Tensor expected) in IoFixtures.GoldenOf("plain_f32"))
        {
            IoFixtures.AssertBitsEqual(expected, file.Read(name), name);
        }

        // The same archive with an extra field too short for the values it stands for.
        int firstExtra = cdOffset + 46 + BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(cdOffset + 28));
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(firstExtra + 2), 8);
        AssertRefused(bytes, "has a ZIP64 field too short for the values it replaces");
    }

    [Fact]
    public void LocalHeaderDisagreeingWithCentralDirectory_IsRefused()
    {
        byte[] bytes = File.ReadAllBytes(IoFixtures.Path("plain_f32.pt"));
        int local = IndexOf(bytes, Encoding.ASCII.GetBytes("plain_f32/data/1"));
        bytes[local + 15] = (byte)'9';                                            // the local name, not the central one
        AssertRefused(bytes, "disagrees with the central directory");
    }

    [Theory]
    [InlineData(3L, "declares 3 × 4-byte elements but its entry 'archive/data/0' has 8 bytes")]
    [InlineData(Big, "declares 4611686018427387904 × 4-byte elements")]
    [InlineData(-1L, "negative or oversized")]
    public void StorageSizeLies_AreRefusedBeforeAllocating(long numel, string problem)
    {
        AssertRefused(Zip(TensorPickle(numel, 0, [2], [1])), problem);
    }

    [Theory]
    [InlineData(Big, new long[] { 2 }, new long[] { 1 }, "reaches element 4611686018427387906 but its storage holds 2")]
    [InlineData(long.MaxValue, new long[] { 2 }, new long[] { 1 }, "reaches element 9223372036854775809 but its storage holds 2")]
    [InlineData(0L, new long[] { 2 }, new long[] { long.MaxValue }, "reaches element 9223372036854775808")]
    [InlineData(0L, new long[] { 2, 2, 2, 2, 2, 2 }, new long[] { Big, Big, Big, Big, Big, Big }, "reaches element 27670116110564327425")]
    [InlineData(0L, new long[] { 2147483648L }, new long[] { 0 }, "negative or oversized")]
    [InlineData(0L, new long[] { -2 }, new long[] { 1 }, "negative or oversized")]
    [InlineData(0L, new long[] { 2 }, new long[] { -1 }, "negative or oversized")]
    [InlineData(-1L, new long[] { 2 }, new long[] { 1 }, "negative or oversized")]
    [InlineData(0L, new long[] { 5 }, new long[] { 0 }, "has more elements than its storage holds")]
    [InlineData(0L, new long[] { 2147483647, 2147483647 }, new long[] { 0, 0 }, "has more elements than its storage holds")]
    [InlineData(0L, new long[] { 2 }, new long[] { 1, 1 }, "one stride per dimension")]
    [InlineData(0L, new long[] { 1, 1, 1, 1, 1, 1, 1 }, new long[] { 1, 1, 1, 1, 1, 1, 1 }, "rank 0..6")]
    public void TensorArithmeticLies_AreRefused(long offset, long[] size, long[] stride, string problem)
    {
        DitCacheException e = AssertRefused(Zip(TensorPickle(2, offset, size, stride)), problem);
        Assert.Contains("tensor 'w'", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void NonContiguousViews_AreGathered()
    {
        // Decision: strided views are handled (gathered), as torch.save keeps them; stride 2 over a 4-element storage.
        using var dir = new TempDir();
        byte[] storage = new byte[16];
        for (int i = 0; i < 4; i++)
        {
            BinaryPrimitives.WriteSingleLittleEndian(storage.AsSpan(4 * i), i + 0.5f);
        }

        string path = dir.Write("view.pt", IoFixtures.Zip([new("archive/data.pkl", TensorPickle(4, 1, [2, 1], [2, 1])), new("archive/data/0", storage)]));
        Assert.Equal([1.5f, 3.5f], TorchCheckpoint.Load(path).Read("w").Data);
    }

    [Theory]
    [InlineData(new byte[] { 0xFF })]
    [InlineData(new byte[] { 0xED, 0xA0, 0x80 })]              // a lone surrogate, as Python's surrogatepass writes it
    [InlineData(new byte[] { 0xC0, 0x80 })]                    // overlong NUL
    public void PickleStrings_ThatAreNotUtf8_AreRefused(byte[] junk)
    {
        byte[] key = [0x8c, (byte)junk.Length, .. junk];
        byte[] pkl = [0x80, 2, (byte)'}', .. key, (byte)'N', (byte)'s', (byte)'.'];
        AssertRefused(Zip(pkl), "a string is not valid UTF-8");
    }

    [Fact]
    public void PickleGlobalName_ThatIsNotUtf8_IsRefused()
    {
        byte[] pkl = [0x80, 2, (byte)'c', 0xFF, (byte)'\n', (byte)'x', (byte)'\n', (byte)'.'];
        AssertRefused(Zip(pkl), "a GLOBAL name is not valid UTF-8");
    }

    [Fact]
    public void PickleMachine_ValueCountIsBounded()
    {
        byte[] pkl = [0x80, 2, (byte)'(', .. Enumerable.Repeat((byte)'N', (1 << 21) + 1), (byte)'.'];
        AssertRefused(Zip(pkl), "builds more than 2097152 values");
    }

    [Fact]
    public void PickleMachine_MemoIsBounded()
    {
        byte[] pkl = [0x80, 2, (byte)'N', .. Enumerable.Repeat((byte)0x94, (1 << 21) + 1), (byte)'.'];
        AssertRefused(Zip(pkl), "memo grows past 2097152 entries");
    }

    [Fact]
    public void PickleLengthLies_AreRefused()
    {
        AssertRefused(Zip([0x80, 2, (byte)'X', 0xFF, 0xFF, 0xFF, 0x7F, (byte)'a', (byte)'.']), "string of 2147483647 bytes runs past the end");
        AssertRefused(Zip([0x80, 2, 0x8d, .. BitConverter.GetBytes(ulong.MaxValue), (byte)'.']), "string of 18446744073709551615 bytes runs past the end");
    }

    /// <summary>{"w": _rebuild_tensor_v2(storage(FloatStorage, "0", numel), offset, size, stride, False, None)}.</summary>
    private static byte[] TensorPickle(long numel, long offset, long[] size, long[] stride) =>
    [
        0x80, 2, (byte)'}', .. Short("w"),
        .. Global("torch._utils", "_rebuild_tensor_v2"),
        (byte)'(', (byte)'(', .. Short("storage"), .. Global("torch", "FloatStorage"), .. Short("0"), .. Short("cpu"), .. Long(numel), (byte)'t', (byte)'Q',
        .. Long(offset), .. Tuple(size), .. Tuple(stride), 0x89, (byte)'N', (byte)'t', (byte)'R',
        (byte)'s', (byte)'.',
    ];

    private static byte[] Zip(byte[] pickle) => IoFixtures.Zip([new("archive/data.pkl", pickle), new("archive/data/0", new byte[8])]);

    private static byte[] Long(long v) => [0x8a, 8, .. BitConverter.GetBytes(v)];

    private static byte[] Tuple(long[] values) => [(byte)'(', .. values.SelectMany(Long), (byte)'t'];

    private static byte[] Short(string s) => [0x8c, (byte)Encoding.UTF8.GetByteCount(s), .. Encoding.UTF8.GetBytes(s)];

    private static byte[] Global(string module, string name) => [(byte)'c', .. Encoding.UTF8.GetBytes($"{module}\n{name}\n")];

    private static int IndexOf(byte[] haystack, byte[] needle) => haystack.AsSpan().IndexOf(needle);

    /// <summary>Where an entry's data starts in a torch.save file, from its local header, and its size.</summary>
    internal static (int Data, int Size) DataOf(byte[] zip, string name)
    {
        byte[] n = Encoding.ASCII.GetBytes(name);
        int header = IndexOf(zip, n) - 30;
        Assert.Equal(0x04034b50u, BinaryPrimitives.ReadUInt32LittleEndian(zip.AsSpan(header)));
        int extra = BinaryPrimitives.ReadUInt16LittleEndian(zip.AsSpan(header + 28));
        int central = zip.AsSpan().LastIndexOf(n) - 46;
        int size = (int)BinaryPrimitives.ReadUInt32LittleEndian(zip.AsSpan(central + 24));
        return (header + 30 + n.Length + extra, size);
    }

    private static DitCacheException AssertRefused(byte[] bytes, string problem)
    {
        using var dir = new TempDir();
        string path = dir.Write("hostile.pt", bytes);
        DitCacheException e = Assert.Throws<DitCacheException>(() => TorchCheckpoint.Load(path).Tensors.Values.ToList());
        Assert.StartsWith(path + ": ", e.Message, StringComparison.Ordinal);
        Assert.True(e.Message.Contains(problem, StringComparison.Ordinal), $"expected \"{problem}\" in: {e.Message}");
        Assert.DoesNotContain('\n', e.Message);
        return e;
    }
}
