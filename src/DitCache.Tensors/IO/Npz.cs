using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.IO.Compression;
using System.Linq;
using System.Text;

namespace DitCache.Tensors.IO;

/// <summary>One array of a <c>.npy</c> / <c>.npz</c> file as its header describes it; its values are not read.</summary>
/// <param name="Name">The key (<c>np.savez</c> keyword, or <c>arr_0</c>…; the file name without <c>.npy</c> for a <c>.npy</c> file).</param>
/// <param name="DType">The numpy dtype string of the header, e.g. <c>&lt;f8</c>, <c>&lt;f4</c>, <c>&lt;f2</c>, <c>|u1</c>.</param>
/// <param name="Shape">The shape; empty for a 0-d array.</param>
public sealed record NpyEntry(string Name, string DType, int[] Shape)
{
    /// <summary>The number of elements (1 for a 0-d array).</summary>
    public long Count => Shape.Aggregate(1L, (a, d) => a * d);

    /// <summary>The shape as text, e.g. <c>[2, 3]</c>.</summary>
    public string ShapeText => Tensor.FormatShape(Shape);
}

/// <summary>One array read as float64, row-major (C order).</summary>
/// <param name="Name">The key it was read under.</param>
/// <param name="DType">The stored numpy dtype string.</param>
/// <param name="Shape">The shape; empty for a 0-d array.</param>
/// <param name="Data">The values, converted exactly to float64.</param>
public sealed record NpyArray(string Name, string DType, int[] Shape, double[] Data);

/// <summary>
/// Reads NumPy's <c>.npy</c> files and <c>.npz</c> archives (<c>np.save</c>, <c>np.savez</c>: stored entries,
/// <c>np.savez_compressed</c>: deflate; ZIP64 as numpy always writes it), e.g. pytorch-fid's <c>--save-stats</c>
/// files (<c>mu</c>, <c>sigma</c>) and ADM's reference batches (<c>arr_0</c>, <c>mu</c>, <c>sigma</c>, …).
/// </summary>
/// <remarks>
/// Format: the NPY format specification (numpy/lib/format.py, https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html):
/// the magic <c>\x93NUMPY</c>, a major.minor version (1.0: 2-byte header length; 2.0 and 3.0: 4-byte; 3.0 with a
/// UTF-8 header), a Python dict literal <c>{'descr': …, 'fortran_order': …, 'shape': (…)}</c>, then the raw
/// elements. Element types read as float64: <c>&lt;f8</c>, <c>&lt;f4</c>, <c>&lt;f2</c> and <c>|u1</c> (all exactly);
/// others, big-endian data and Fortran order are refused with a message saying how to re-save. The zip level is
/// <see cref="ZipArchive"/>, which reads the central directory only, so reading one array of an archive touches
/// no other array's bytes; the whole entry that is read is checked against its CRC-32 and its recorded size.
/// </remarks>
public static class Npz
{
    /// <summary>Largest .npy header accepted (numpy writes about 128 bytes and reads at most 10,000 by default).</summary>
    public const int MaxHeaderBytes = 1 << 16;

    private static readonly byte[] s_magic = [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y'];

    /// <summary>The arrays of a <c>.npy</c> or <c>.npz</c> file (chosen by its first bytes), in file order, from their headers only.</summary>
    /// <exception cref="DitCacheException">The file is missing, in neither format, or an array header is malformed or unsupported.</exception>
    public static IReadOnlyList<NpyEntry> List(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        using FileStream file = Open(path);
        if (IsNpy(path, file))
        {
            return [ReadHeader(path, NpyName(path), file, file.Length).Entry];
        }

        using ZipArchive zip = OpenZip(path, file);
        var entries = new List<NpyEntry>();
        foreach ((string key, ZipArchiveEntry e) in Arrays(path, zip))
        {
            using Stream s = OpenEntry(path, key, e);
            entries.Add(ReadHeader(path, key, s, e.Length, where: $"array '{TensorFile.Printable(key)}'").Entry);
        }

        return entries;
    }

    /// <summary>
    /// Reads array <paramref name="name"/> as float64, reading no other array's bytes. For a <c>.npy</c> file the
    /// name is the file name without <c>.npy</c> (see <see cref="List"/>), or null.
    /// </summary>
    /// <exception cref="DitCacheException">
    /// The file is missing or malformed, has no such array (the message lists those it has), or the array's dtype,
    /// byte order or layout is unsupported, or its bytes are truncated or fail the CRC.
    /// </exception>
    public static NpyArray Read(string path, string? name)
    {
        ArgumentNullException.ThrowIfNull(path);
        using FileStream file = Open(path);
        if (IsNpy(path, file))
        {
            string own = NpyName(path);
            if (name is not null && name != own)
            {
                throw new DitCacheException(
                    $"{path}: a .npy file holds one array, listed as '{TensorFile.Printable(own)}', not '{TensorFile.Printable(name)}'; pass that name or none");
            }

            return ReadArray(path, own, file, file.Length, $"array '{TensorFile.Printable(own)}'", null);
        }

        using ZipArchive zip = OpenZip(path, file);
        List<(string Key, ZipArchiveEntry Entry)> arrays = Arrays(path, zip);
        int at = arrays.FindIndex(a => a.Key == name);
        if (name is null || at < 0)
        {
            string held = arrays.Count == 0 ? "no arrays" : string.Join(", ", arrays.Select(a => TensorFile.Printable(a.Key)));
            throw new DitCacheException(
                $"{path}: has no array '{TensorFile.Printable(name ?? "(none given)")}' (it holds {held}); pass one of those names");
        }

        ZipArchiveEntry entry = arrays[at].Entry;
        using Stream s = OpenEntry(path, name, entry);
        return ReadArray(path, name, s, entry.Length, $"array '{TensorFile.Printable(name)}'", entry.Crc32);
    }

    private static FileStream Open(string path)
    {
        try
        {
            return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1 << 16);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            throw new DitCacheException($"{path}: cannot open the NumPy file ({e.Message}); check the path", e);
        }
    }

    private static bool IsNpy(string path, FileStream file)
    {
        Span<byte> head = stackalloc byte[6];
        int n = Fill(path, "the file", file, head);
        file.Position = 0;
        if (n == 6 && head.SequenceEqual(s_magic))
        {
            return true;
        }

        if (n >= 4 && head[0] == (byte)'P' && head[1] == (byte)'K')
        {
            return false;
        }

        throw new DitCacheException(
            $"{path}: first bytes {Convert.ToHexString(head[..n])} are neither a .npy file ('\\x93NUMPY') nor a .npz archive ('PK'); " +
            "write the statistics with np.savez(path, mu=mu, sigma=sigma) or np.save");
    }

    private static string NpyName(string path) =>
        Path.GetFileName(path) is var f && f.EndsWith(".npy", StringComparison.OrdinalIgnoreCase) ? f[..^4] : Path.GetFileName(path);

    private static ZipArchive OpenZip(string path, FileStream file)
    {
        try
        {
            return new ZipArchive(file, ZipArchiveMode.Read, leaveOpen: true);
        }
        catch (InvalidDataException e)
        {
            throw new DitCacheException($"{path}: is not a readable .npz (zip) archive ({e.Message}); the file is truncated or corrupt, write it again with np.savez", e);
        }
    }

    /// <summary>The .npy members, keyed as np.load keys them (the member name without <c>.npy</c>).</summary>
    private static List<(string Key, ZipArchiveEntry Entry)> Arrays(string path, ZipArchive zip)
    {
        var result = new List<(string, ZipArchiveEntry)>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (ZipArchiveEntry e in zip.Entries)
        {
            if (!e.FullName.EndsWith(".npy", StringComparison.Ordinal))
            {
                continue;
            }

            string key = e.FullName[..^4];
            if (!seen.Add(key))
            {
                throw new DitCacheException($"{path}: the archive holds '{TensorFile.Printable(e.FullName)}' twice; the file is corrupt, write it again with np.savez");
            }

            result.Add((key, e));
        }

        return result;
    }

    private static Stream OpenEntry(string path, string key, ZipArchiveEntry e)
    {
        try
        {
            return e.Open();
        }
        catch (Exception x) when (x is InvalidDataException or IOException or NotSupportedException)
        {
            throw new DitCacheException(
                $"{path}: array '{TensorFile.Printable(key)}' cannot be opened ({x.Message}); the file is corrupt or uses a zip feature numpy never writes, write it again with np.savez", x);
        }
    }

    /// <summary>A parsed header: the entry, the element size, the header's bytes (for the CRC) and the data length.</summary>
    private sealed record Header(NpyEntry Entry, int ItemSize, byte[] Raw, long DataBytes);

    /// <summary>
    /// Parses the header at the start of <paramref name="s"/> (a .npy of <paramref name="length"/> bytes) and checks
    /// that the data after it has exactly the shape's size.
    /// </summary>
    private static Header ReadHeader(string path, string name, Stream s, long length, string where = "")
    {
        string at = where.Length == 0 ? path : $"{path}: {where}";
        byte[] pre = new byte[12];
        int got = Fill(path, where, s, pre.AsSpan(0, 8));
        if (got < 8 && pre.AsSpan(0, Math.Min(got, 6)).SequenceEqual(s_magic.AsSpan(0, Math.Min(got, 6))))
        {
            throw new DitCacheException($"{at}: the file ends inside the .npy header; it is truncated, write it again");
        }

        if (got < 8 || !pre.AsSpan(0, 6).SequenceEqual(s_magic))
        {
            throw new DitCacheException($"{at}: does not start with the .npy magic '\\x93NUMPY'; the file is corrupt or not written by np.save/np.savez");
        }

        int major = pre[6], minor = pre[7];
        if (major is not (1 or 2 or 3) || minor != 0)
        {
            throw new DitCacheException($"{at}: .npy format version {major}.{minor} is not 1.0, 2.0 or 3.0; write it again with numpy's np.save/np.savez");
        }

        int lengthBytes = major == 1 ? 2 : 4;
        if (Fill(path, where, s, pre.AsSpan(8, lengthBytes)) < lengthBytes)
        {
            throw new DitCacheException($"{at}: the file ends inside the .npy header; it is truncated, write it again");
        }

        long headerLength = major == 1 ? BinaryPrimitives.ReadUInt16LittleEndian(pre.AsSpan(8)) : BinaryPrimitives.ReadUInt32LittleEndian(pre.AsSpan(8));
        int prefix = 8 + lengthBytes;
        if (headerLength > MaxHeaderBytes || headerLength > length - prefix)
        {
            throw new DitCacheException(
                $"{at}: the .npy header claims {headerLength} bytes, but {Math.Max(0, length - prefix)} follow (at most {MaxHeaderBytes} accepted); the file is truncated or corrupt");
        }

        byte[] raw = new byte[prefix + headerLength];
        pre.AsSpan(0, prefix).CopyTo(raw);
        if (Fill(path, where, s, raw.AsSpan(prefix)) < headerLength)
        {
            throw new DitCacheException($"{at}: the file ends inside the .npy header; it is truncated, write it again");
        }

        string text;
        try
        {
            // Versions 1.0 and 2.0 are latin1; 3.0 is UTF-8.
            text = major == 3
                ? new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(raw, prefix, (int)headerLength)
                : Encoding.Latin1.GetString(raw, prefix, (int)headerLength);
        }
        catch (DecoderFallbackException)
        {
            throw new DitCacheException($"{at}: the version 3.0 .npy header is not UTF-8; the file is corrupt");
        }

        (string descr, bool fortran, int[] shape) = ParseDict(at, text);
        int itemSize = descr switch
        {
            "<f8" => 8,
            "<f4" => 4,
            "<f2" => 2,
            "|u1" => 1,
            _ => throw new DitCacheException(
                $"{at}: dtype '{TensorFile.Printable(descr)}' is not read (expected '<f8', '<f4', '<f2' or '|u1', little-endian); " +
                "convert it in numpy, e.g. np.savez(path, mu=mu.astype('<f8'), sigma=sigma.astype('<f8'))"),
        };

        if (fortran)
        {
            throw new DitCacheException(
                $"{at}: is stored in Fortran order (fortran_order True), which is not read; re-save it in C order: np.savez(path, name=np.ascontiguousarray(a))");
        }

        var entry = new NpyEntry(name, descr, shape);
        Int128 bytes = (Int128)entry.Count * itemSize;
        if (bytes != length - raw.Length)
        {
            throw new DitCacheException(
                $"{at}: shape {entry.ShapeText} of {descr} needs {bytes} data bytes, but {length - raw.Length} follow the header; the file is truncated or corrupt, write it again");
        }

        return new Header(entry, itemSize, raw, (long)bytes);
    }

    private static NpyArray ReadArray(string path, string name, Stream s, long length, string where, uint? crc)
    {
        Header h = ReadHeader(path, name, s, length, where);
        string at = $"{path}: {where}";
        if (h.Entry.Count > Array.MaxLength)
        {
            throw new DitCacheException(
                $"{at}: has {h.Entry.Count} elements ({h.Entry.ShapeText}), more than one float64 array holds; it is not read as float64 (ask for the statistics, e.g. 'mu' and 'sigma')");
        }

        var data = new double[h.Entry.Count];
        var check = new Crc32();
        check.Append(h.Raw);
        byte[] buffer = new byte[(int)Math.Min(1 << 20, Math.Max(h.DataBytes, 1))];
        long done = 0;
        while (done < h.DataBytes)
        {
            int n = (int)Math.Min(buffer.Length, h.DataBytes - done);
            if (Fill(path, where, s, buffer.AsSpan(0, n)) < n)
            {
                throw new DitCacheException($"{at}: its data ends early, {h.DataBytes - done} bytes short of {h.DataBytes}; the file is truncated or corrupt, write it again");
            }

            check.Append(buffer.AsSpan(0, n));
            ToDouble(buffer.AsSpan(0, n), h.ItemSize, data.AsSpan((int)(done / h.ItemSize), n / h.ItemSize));
            done += n;
        }

        if (crc is uint expected && check.Value != expected)
        {
            throw new DitCacheException(
                $"{at}: has CRC-32 {check.Value:x8} but the archive records {expected:x8}; the file is corrupt, download or write it again");
        }

        return new NpyArray(name, h.Entry.DType, h.Entry.Shape, data);
    }

    private static void ToDouble(ReadOnlySpan<byte> src, int itemSize, Span<double> dst)
    {
        switch (itemSize)
        {
            case 8:
                for (int i = 0; i < dst.Length; i++)
                {
                    dst[i] = BinaryPrimitives.ReadDoubleLittleEndian(src.Slice(8 * i, 8));
                }

                break;
            case 4:
                for (int i = 0; i < dst.Length; i++)
                {
                    dst[i] = BinaryPrimitives.ReadSingleLittleEndian(src.Slice(4 * i, 4));
                }

                break;
            case 2:
                for (int i = 0; i < dst.Length; i++)
                {
                    dst[i] = (double)BinaryPrimitives.ReadHalfLittleEndian(src.Slice(2 * i, 2));
                }

                break;
            default:
                for (int i = 0; i < dst.Length; i++)
                {
                    dst[i] = src[i];
                }

                break;
        }
    }

    /// <summary>Reads up to <paramref name="dst"/>'s length; returns how many bytes came (fewer only at the end).</summary>
    private static int Fill(string path, string where, Stream s, Span<byte> dst)
    {
        try
        {
            return s.ReadAtLeast(dst, dst.Length, throwOnEndOfStream: false);
        }
        catch (Exception e) when (e is InvalidDataException or IOException)
        {
            string what = where.Length == 0 ? "" : $" {where}";
            throw new DitCacheException($"{path}:{what} cannot be read ({e.Message}); the file is corrupt, download or write it again", e);
        }
    }

    /// <summary>Parses numpy's header dict literal: exactly the keys descr (a str), fortran_order (a bool), shape (a tuple of ints).</summary>
    private static (string Descr, bool Fortran, int[] Shape) ParseDict(string at, string text)
    {
        var p = new LiteralParser(at, text);
        object value = p.Value();
        p.End();
        if (value is not Dictionary<string, object> dict)
        {
            throw p.Bad("is not a dict");
        }

        if (dict.Count != 3 || !dict.TryGetValue("descr", out object? descr) || !dict.TryGetValue("fortran_order", out object? fortran)
            || !dict.TryGetValue("shape", out object? shape))
        {
            throw p.Bad($"has keys {string.Join(", ", dict.Keys.Select(k => $"'{TensorFile.Printable(k)}'"))}, expected exactly 'descr', 'fortran_order', 'shape'");
        }

        if (descr is not string d)
        {
            throw new DitCacheException(
                $"{at}: has a structured dtype (descr is not a string), which is not read; save each field as its own plain float array");
        }

        if (fortran is not bool f)
        {
            throw p.Bad("has a fortran_order that is not True or False");
        }

        if (shape is not List<object> dims || dims.Any(x => x is not long))
        {
            throw p.Bad("has a shape that is not a tuple of integers");
        }

        if (dims.Count > 32 || dims.Any(x => (long)x is < 0 or > int.MaxValue))
        {
            throw p.Bad($"has shape ({string.Join(", ", dims)}): more than 32 dimensions, or a dimension outside 0..{int.MaxValue}");
        }

        return (d, f, dims.Select(x => (int)(long)x).ToArray());
    }

    /// <summary>The Python literal subset numpy's headers use: dicts, tuples, lists, str, int, True, False.</summary>
    private sealed class LiteralParser(string at, string text)
    {
        private int _pos, _depth;

        public DitCacheException Bad(string what) => new(
            $"{at}: the .npy header {{{TensorFile.Printable(text.Trim().Trim('{', '}'))}}} {what}; the file is corrupt or not written by numpy");

        public object Value()
        {
            if (++_depth > 8)
            {
                throw Bad("nests values deeper than numpy ever writes");
            }

            object value = Parse();
            _depth--;
            return value;
        }

        private object Parse()
        {
            Skip();
            if (_pos >= text.Length)
            {
                throw Bad("ends early");
            }

            char c = text[_pos];
            switch (c)
            {
                case '{':
                    {
                        _pos++;
                        var dict = new Dictionary<string, object>(StringComparer.Ordinal);
                        while (!Take('}'))
                        {
                            if (Value() is not string key)
                            {
                                throw Bad("has a key that is not a string");
                            }

                            Expect(':');
                            if (!dict.TryAdd(key, Value()))
                            {
                                throw Bad($"repeats the key '{TensorFile.Printable(key)}'");
                            }

                            if (!Take(',') && !Peek('}'))
                            {
                                throw Bad("is missing a ',' between items");
                            }
                        }

                        return dict;
                    }

                case '(' or '[':
                    {
                        char close = c == '(' ? ')' : ']';
                        _pos++;
                        var items = new List<object>();
                        bool comma = false;
                        while (!Take(close))
                        {
                            items.Add(Value());
                            if (Take(','))
                            {
                                comma = true;
                            }
                            else if (!Peek(close))
                            {
                                throw Bad("is missing a ',' between items");
                            }
                        }

                        // "(x)" is x in parentheses, not a tuple. A list (a structured dtype's descr) is returned as
                        // an array so it is told apart from a tuple.
                        return c == '(' ? (items.Count == 1 && !comma ? items[0] : items) : items.ToArray();
                    }

                case '\'' or '"':
                    {
                        int end = text.IndexOf(c, _pos + 1);
                        if (end < 0 || text.AsSpan(_pos + 1, end - _pos - 1).Contains('\\'))
                        {
                            throw Bad("has an unterminated or escaped string");
                        }

                        string s = text[(_pos + 1)..end];
                        _pos = end + 1;
                        return s;
                    }

                default:
                    {
                        int start = _pos;
                        while (_pos < text.Length && (char.IsAsciiLetterOrDigit(text[_pos]) || text[_pos] == '_'))
                        {
                            _pos++;
                        }

                        string word = text[start.._pos];
                        if (word == "True" || word == "False")
                        {
                            return word == "True";
                        }

                        // Python 2 numpy wrote long dimensions as "3L".
                        string digits = word.EndsWith('L') ? word[..^1] : word;
                        if (digits.Length is > 0 and <= 18 && digits.All(char.IsAsciiDigit))
                        {
                            return long.Parse(digits, CultureInfo.InvariantCulture);
                        }

                        throw Bad($"has '{TensorFile.Printable(word.Length == 0 ? c.ToString() : word)}' where a value belongs");
                    }
            }
        }

        public void End()
        {
            Skip();
            if (_pos != text.Length)
            {
                throw Bad("has text after its closing '}'");
            }
        }

        private void Skip()
        {
            while (_pos < text.Length && char.IsWhiteSpace(text[_pos]))
            {
                _pos++;
            }
        }

        private bool Peek(char c)
        {
            Skip();
            return _pos < text.Length && text[_pos] == c;
        }

        private bool Take(char c)
        {
            if (!Peek(c))
            {
                if (_pos >= text.Length)
                {
                    throw Bad("ends early");
                }

                return false;
            }

            _pos++;
            return true;
        }

        private void Expect(char c)
        {
            if (!Take(c))
            {
                throw Bad($"is missing a '{c}'");
            }
        }
    }
}
