using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.Text;
using Microsoft.Win32.SafeHandles;

namespace DitCache.Tensors.IO;

/// <summary>
/// The central directory of the zip archive <c>torch.save</c> writes (PKZIP APPNOTE 6.3: stored entries, data
/// descriptors, ZIP64 end records since torch 1.6), read without trusting any field: every count, offset and size is
/// checked against the file's length before anything is allocated or read, and entry data is read only through
/// <see cref="ReadAll"/> or <see cref="Stream"/>, which verify the entry's CRC-32.
/// </summary>
/// <remarks>
/// Refused, each with its own message: multi-disk archives, encrypted or compressed entries (torch.save stores every
/// entry; a re-zipped checkpoint has to be saved again), a compressed size that differs from the uncompressed
/// one, entries whose local header or data lies outside the file or overlaps another entry, names that are not
/// UTF-8, and repeated names. ZIP64 records and extra fields are read.
/// </remarks>
internal sealed class TorchZip
{
    private const uint EndSignature = 0x0605_4b50, Zip64EndSignature = 0x0606_4b50, Zip64LocatorSignature = 0x0706_4b50;
    private const uint CentralSignature = 0x0201_4b50, LocalSignature = 0x0403_4b50;
    private const int EndSize = 22, Zip64LocatorSize = 20, Zip64EndSize = 56, CentralSize = 46, LocalSize = 30;
    private const long MaxDirectoryBytes = 64L << 20; // DiT-XL/2's is about 60 KB
    private const string Hint = "the file is truncated or corrupt, download or save it again with torch.save";

    private static readonly UTF8Encoding s_strictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private readonly string _path;
    private readonly Dictionary<string, Entry> _entries;

    private TorchZip(string path, long length, Dictionary<string, Entry> entries)
    {
        _path = path;
        Length = length;
        _entries = entries;
    }

    /// <summary>The file length the directory was read at.</summary>
    public long Length { get; }

    /// <summary>The entries, in central-directory order.</summary>
    public IEnumerable<Entry> Entries => _entries.Values;

    /// <summary>The entry named <paramref name="name"/>, or null.</summary>
    public Entry? Find(string name) => _entries.GetValueOrDefault(name);

    /// <summary>Reads and checks the central directory of the open file.</summary>
    /// <exception cref="DitCacheException">The archive is malformed or uses a feature torch.save never writes.</exception>
    public static TorchZip Read(string path, SafeFileHandle handle, long length)
    {
        // End of central directory: the last 22 + comment bytes, the comment reaching exactly to the end.
        int tail = (int)Math.Min(length, EndSize + ushort.MaxValue);
        if (tail < EndSize)
        {
            throw Bad(path, $"{length} bytes is too short for a zip archive");
        }

        byte[] end = new byte[tail];
        long tailStart = length - tail;
        FileAccessor.ReadExactly(handle, path, tailStart, end);
        int at = -1;
        for (int i = tail - EndSize; i >= 0; i--)
        {
            if (BinaryPrimitives.ReadUInt32LittleEndian(end.AsSpan(i)) == EndSignature
                && i + EndSize + BinaryPrimitives.ReadUInt16LittleEndian(end.AsSpan(i + 20)) == tail)
            {
                at = i;
                break;
            }
        }

        if (at < 0)
        {
            throw Bad(path, "no end-of-central-directory record at the end of the file");
        }

        long endAt = tailStart + at;
        ReadOnlySpan<byte> e = end.AsSpan(at, EndSize);
        ulong count = BinaryPrimitives.ReadUInt16LittleEndian(e[10..]);
        ulong countHere = BinaryPrimitives.ReadUInt16LittleEndian(e[8..]);
        ulong disk = BinaryPrimitives.ReadUInt16LittleEndian(e[4..]), cdDisk = BinaryPrimitives.ReadUInt16LittleEndian(e[6..]);
        ulong cdSize = BinaryPrimitives.ReadUInt32LittleEndian(e[12..]);
        ulong cdOffset = BinaryPrimitives.ReadUInt32LittleEndian(e[16..]);
        long directoryEnd = endAt; // the central directory must end before the end records

        if (endAt >= Zip64LocatorSize)
        {
            byte[] locator = new byte[Zip64LocatorSize];
            FileAccessor.ReadExactly(handle, path, endAt - Zip64LocatorSize, locator);
            if (BinaryPrimitives.ReadUInt32LittleEndian(locator) == Zip64LocatorSignature)
            {
                ulong z64At = BinaryPrimitives.ReadUInt64LittleEndian(locator.AsSpan(8));
                long lastStart = endAt - Zip64LocatorSize - Zip64EndSize;
                if (lastStart < 0 || z64At > (ulong)lastStart)
                {
                    throw Bad(path, $"the ZIP64 end record offset {z64At} is outside the file");
                }

                byte[] z = new byte[Zip64EndSize];
                FileAccessor.ReadExactly(handle, path, (long)z64At, z);
                if (BinaryPrimitives.ReadUInt32LittleEndian(z) != Zip64EndSignature)
                {
                    throw Bad(path, $"no ZIP64 end record at offset {z64At}");
                }

                disk = BinaryPrimitives.ReadUInt32LittleEndian(z.AsSpan(16));
                cdDisk = BinaryPrimitives.ReadUInt32LittleEndian(z.AsSpan(20));
                countHere = BinaryPrimitives.ReadUInt64LittleEndian(z.AsSpan(24));
                count = BinaryPrimitives.ReadUInt64LittleEndian(z.AsSpan(32));
                cdSize = BinaryPrimitives.ReadUInt64LittleEndian(z.AsSpan(40));
                cdOffset = BinaryPrimitives.ReadUInt64LittleEndian(z.AsSpan(48));
                directoryEnd = (long)z64At;
            }
        }

        if (disk != 0 || cdDisk != 0 || countHere != count)
        {
            throw new DitCacheException(
                $"{path}: this zip archive spans several disks, which torch.save never writes; {Hint}");
        }

        if (cdOffset > (ulong)directoryEnd || cdSize > (ulong)directoryEnd - cdOffset)
        {
            throw Bad(path, $"the central directory [{cdOffset}, +{cdSize}) does not end before byte {directoryEnd}");
        }

        if (cdSize > MaxDirectoryBytes)
        {
            throw Bad(path, $"the central directory has {cdSize} bytes, more than the {MaxDirectoryBytes} any checkpoint needs");
        }

        if (count > cdSize / CentralSize)
        {
            throw Bad(path, $"the central directory claims {count} entries but its {cdSize} bytes hold at most {cdSize / CentralSize}");
        }

        byte[] cd = new byte[cdSize];
        FileAccessor.ReadExactly(handle, path, (long)cdOffset, cd);
        var entries = new Dictionary<string, Entry>((int)count, StringComparer.Ordinal);
        int pos = 0;
        for (ulong i = 0; i < count; i++)
        {
            Entry entry = ReadCentral(path, cd, ref pos, i);
            if (!entries.TryAdd(entry.Name, entry))
            {
                throw Bad(path, $"entry '{TensorFile.Printable(entry.Name)}' appears twice in the central directory");
            }
        }

        if (pos != cd.Length)
        {
            throw Bad(path, $"the central directory has {cd.Length - pos} bytes after its {count} entries");
        }

        var byOffset = new List<Entry>(entries.Values);
        byOffset.Sort((a, b) => a.HeaderOffset.CompareTo(b.HeaderOffset));
        long previousEnd = 0;
        string previous = "";
        byte[] local = new byte[LocalSize];
        var resolved = new Dictionary<string, Entry>(entries.Count, StringComparer.Ordinal);
        foreach (Entry c in byOffset)
        {
            if (c.HeaderOffset < previousEnd)
            {
                throw Bad(path, $"entry '{TensorFile.Printable(c.Name)}' starts at byte {c.HeaderOffset}, inside '{TensorFile.Printable(previous)}'");
            }

            if (c.HeaderOffset > (long)cdOffset - LocalSize)
            {
                throw Bad(path, $"entry '{TensorFile.Printable(c.Name)}' has its local header at byte {c.HeaderOffset}, past the start of the central directory ({cdOffset})");
            }

            FileAccessor.ReadExactly(handle, path, c.HeaderOffset, local);
            if (BinaryPrimitives.ReadUInt32LittleEndian(local) != LocalSignature)
            {
                throw Bad(path, $"entry '{TensorFile.Printable(c.Name)}' has no local header at byte {c.HeaderOffset}");
            }

            int nameLength = BinaryPrimitives.ReadUInt16LittleEndian(local.AsSpan(26));
            int extraLength = BinaryPrimitives.ReadUInt16LittleEndian(local.AsSpan(28));
            long dataAt = c.HeaderOffset + LocalSize + nameLength + extraLength;
            if (dataAt > (long)cdOffset || c.Size > (long)cdOffset - dataAt)
            {
                throw Bad(path, $"entry '{TensorFile.Printable(c.Name)}' data [{dataAt}, +{c.Size}) runs into the central directory at byte {cdOffset}");
            }

            byte[] localName = new byte[nameLength];
            FileAccessor.ReadExactly(handle, path, c.HeaderOffset + LocalSize, localName);
            if (!localName.AsSpan().SequenceEqual(c.NameBytes) || BinaryPrimitives.ReadUInt16LittleEndian(local.AsSpan(8)) != 0)
            {
                throw Bad(path, $"entry '{TensorFile.Printable(c.Name)}' has a local header at byte {c.HeaderOffset} that disagrees with the central directory (name or method)");
            }

            Entry done = c with { DataOffset = dataAt };
            resolved[c.Name] = done;
            previousEnd = dataAt + c.Size;
            previous = c.Name;
        }

        // Keep the central-directory order for enumeration.
        var ordered = new Dictionary<string, Entry>(entries.Count, StringComparer.Ordinal);
        foreach (string name in entries.Keys)
        {
            ordered[name] = resolved[name];
        }

        return new TorchZip(path, length, ordered);
    }

    /// <summary>All bytes of <paramref name="entry"/> (at most <paramref name="limit"/>), CRC-checked.</summary>
    public byte[] ReadAll(SafeFileHandle handle, Entry entry, long limit)
    {
        if (entry.Size > limit)
        {
            throw new DitCacheException(
                $"{_path}: entry '{TensorFile.Printable(entry.Name)}' has {entry.Size} bytes, more than the {limit} a state_dict needs; {Hint}");
        }

        byte[] bytes = new byte[entry.Size];
        FileAccessor.ReadExactly(handle, _path, entry.DataOffset, bytes);
        CheckCrc(entry, Crc32.Compute(bytes));
        return bytes;
    }

    /// <summary>
    /// Reads all of <paramref name="entry"/> in order, verifying its CRC, and hands the bytes in
    /// [<paramref name="from"/>, <paramref name="to"/>) to <paramref name="sink"/> (position relative to
    /// <paramref name="from"/>, then the bytes) in pieces whose positions are multiples of <paramref name="align"/>.
    /// The other bytes are read only for the CRC. The caller must discard what the sink produced when this throws.
    /// </summary>
    public void Stream(SafeFileHandle handle, Entry entry, long from, long to, int align, Sink sink)
    {
        const int Chunk = 1 << 20;
        var crc = new Crc32();
        byte[] buffer = new byte[(int)Math.Min(Chunk, Math.Max(entry.Size, 1))];
        void Skip(long a, long b, ref Crc32 c)
        {
            for (long p = a; p < b;)
            {
                int n = (int)Math.Min(buffer.Length, b - p);
                FileAccessor.ReadExactly(handle, _path, entry.DataOffset + p, buffer.AsSpan(0, n));
                c.Append(buffer.AsSpan(0, n));
                p += n;
            }
        }

        Skip(0, from, ref crc);
        int piece = Math.Max(align, buffer.Length / align * align);
        if (piece > buffer.Length)
        {
            buffer = new byte[piece];
        }

        for (long p = from; p < to;)
        {
            int n = (int)Math.Min(piece, to - p);
            Span<byte> span = buffer.AsSpan(0, n);
            FileAccessor.ReadExactly(handle, _path, entry.DataOffset + p, span);
            crc.Append(span);
            sink(p - from, span);
            p += n;
        }

        Skip(to, entry.Size, ref crc);
        CheckCrc(entry, crc.Value);
    }

    /// <summary>Receives a piece of an entry: its position relative to the start of the range, and the bytes.</summary>
    public delegate void Sink(long position, ReadOnlySpan<byte> bytes);

    private void CheckCrc(Entry entry, uint actual)
    {
        if (actual != entry.Crc)
        {
            throw new DitCacheException(
                $"{_path}: entry '{TensorFile.Printable(entry.Name)}' has CRC-32 {actual:x8} but the archive records {entry.Crc:x8}; {Hint}");
        }
    }

    private static Entry ReadCentral(string path, byte[] cd, ref int pos, ulong index)
    {
        if (cd.Length - pos < CentralSize)
        {
            throw Bad(path, $"central directory entry {index} runs past the directory's end");
        }

        ReadOnlySpan<byte> h = cd.AsSpan(pos, CentralSize);
        if (BinaryPrimitives.ReadUInt32LittleEndian(h) != CentralSignature)
        {
            throw Bad(path, $"central directory entry {index} has no header signature");
        }

        int flags = BinaryPrimitives.ReadUInt16LittleEndian(h[8..]);
        int method = BinaryPrimitives.ReadUInt16LittleEndian(h[10..]);
        uint crc = BinaryPrimitives.ReadUInt32LittleEndian(h[16..]);
        ulong compressed = BinaryPrimitives.ReadUInt32LittleEndian(h[20..]);
        ulong size = BinaryPrimitives.ReadUInt32LittleEndian(h[24..]);
        int nameLength = BinaryPrimitives.ReadUInt16LittleEndian(h[28..]);
        int extraLength = BinaryPrimitives.ReadUInt16LittleEndian(h[30..]);
        int commentLength = BinaryPrimitives.ReadUInt16LittleEndian(h[32..]);
        ulong diskStart = BinaryPrimitives.ReadUInt16LittleEndian(h[34..]);
        ulong offset = BinaryPrimitives.ReadUInt32LittleEndian(h[42..]);
        if (cd.Length - pos - CentralSize < nameLength + extraLength + commentLength)
        {
            throw Bad(path, $"central directory entry {index} runs past the directory's end");
        }

        byte[] nameBytes = cd.AsSpan(pos + CentralSize, nameLength).ToArray();
        string name;
        try
        {
            name = s_strictUtf8.GetString(nameBytes);
        }
        catch (DecoderFallbackException)
        {
            throw Bad(path, $"central directory entry {index} has a name that is not UTF-8 ({Convert.ToHexString(nameBytes.AsSpan(0, Math.Min(nameBytes.Length, 32)))})");
        }

        // ZIP64 extended information: the 64-bit values of the fields stored as all ones, in this order.
        ReadOnlySpan<byte> extra = cd.AsSpan(pos + CentralSize + nameLength, extraLength);
        while (extra.Length >= 4)
        {
            int id = BinaryPrimitives.ReadUInt16LittleEndian(extra);
            int len = BinaryPrimitives.ReadUInt16LittleEndian(extra[2..]);
            if (len > extra.Length - 4)
            {
                throw Bad(path, $"entry '{TensorFile.Printable(name)}' has an extra field that runs past its end");
            }

            if (id == 1)
            {
                ReadOnlySpan<byte> z = extra.Slice(4, len);
                bool Next(ref ulong field, ref ReadOnlySpan<byte> rest, ulong marker, int width)
                {
                    if (field != marker)
                    {
                        return true;
                    }

                    if (rest.Length < width)
                    {
                        return false;
                    }

                    field = width == 8 ? BinaryPrimitives.ReadUInt64LittleEndian(rest) : BinaryPrimitives.ReadUInt32LittleEndian(rest);
                    rest = rest[width..];
                    return true;
                }

                if (!Next(ref size, ref z, uint.MaxValue, 8) || !Next(ref compressed, ref z, uint.MaxValue, 8)
                    || !Next(ref offset, ref z, uint.MaxValue, 8) || !Next(ref diskStart, ref z, ushort.MaxValue, 4))
                {
                    throw Bad(path, $"entry '{TensorFile.Printable(name)}' has a ZIP64 field too short for the values it replaces");
                }
            }

            extra = extra[(4 + len)..];
        }

        pos += CentralSize + nameLength + extraLength + commentLength;
        if ((flags & 1) != 0)
        {
            throw new DitCacheException($"{path}: entry '{TensorFile.Printable(name)}' is encrypted, which torch.save never writes; {Hint}");
        }

        if (method != 0)
        {
            throw new DitCacheException(
                $"{path}: entry '{TensorFile.Printable(name)}' is compressed (zip method {method}), but torch.save stores every entry uncompressed and DitCache reads only those; " +
                "the archive was re-zipped: load it in Python and save it again with torch.save");
        }

        if (compressed != size || diskStart != 0)
        {
            throw Bad(path, $"entry '{TensorFile.Printable(name)}' is stored but its compressed size {compressed} differs from its size {size} (or it starts on disk {diskStart})");
        }

        if (size > long.MaxValue / 2 || offset > long.MaxValue / 2)
        {
            throw Bad(path, $"entry '{TensorFile.Printable(name)}' has size {size} at offset {offset}, beyond any file");
        }

        return new Entry(name, nameBytes, (long)offset, -1, (long)size, crc);
    }

    private static DitCacheException Bad(string path, string what) =>
        new($"{path}: the zip archive is damaged: {what}; {Hint}");

    /// <summary>One stored entry: its data is <see cref="Size"/> bytes at <see cref="DataOffset"/>.</summary>
    internal sealed record Entry(string Name, byte[] NameBytes, long HeaderOffset, long DataOffset, long Size, uint Crc);
}
