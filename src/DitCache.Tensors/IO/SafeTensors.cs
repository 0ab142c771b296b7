using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using Microsoft.Win32.SafeHandles;

namespace DitCache.Tensors.IO;

/// <summary>
/// The safetensors format (huggingface/safetensors): an 8-byte little-endian header length N, N bytes of JSON
/// (<c>{"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {string: string}}</c>), then the
/// raw little-endian tensor bytes, offsets relative to the end of the header. Reads F32, F16 and BF16 (converted
/// to float32); validates everything before trusting it; writes F32, F16 or BF16 atomically.
/// </summary>
public static class SafeTensors
{
    /// <summary>Largest header accepted (the format's own limit is 100 MB).</summary>
    public const long MaxHeaderBytes = 100_000_000;

    private const string MetadataKey = "__metadata__";

    private delegate void ReadAt(long offset, Span<byte> destination);

    /// <summary>
    /// Opens a safetensors file: reads and validates the header now (names, dtypes, shapes, and that the tensors'
    /// byte ranges tile the data region exactly); each tensor's bytes are read when <see cref="TensorFile.Read"/>
    /// (or <see cref="TensorFile.Tensors"/>) asks for it, straight into its float32 array.
    /// </summary>
    /// <exception cref="DitCacheException">The file is missing, unreadable, or not valid safetensors.</exception>
    public static TensorFile Load(string path)
    {
        long length;
        Header header;
        using (SafeFileHandle handle = FileAccessor.Open(path))
        {
            length = FileAccessor.Length(handle, path);
            header = ReadHeader(path, length, (offset, dst) => FileAccessor.ReadExactly(handle, path, offset, dst));
        }

        return new TensorFile(path, header.Entries.Values.Select(e => e.Info), header.Metadata, info =>
        {
            using SafeFileHandle handle = FileAccessor.Reopen(path, length);
            return ReadTensor(header, info.Name, (offset, dst) => FileAccessor.ReadExactly(handle, path, offset, dst));
        });
    }

    /// <summary>Reads safetensors bytes held in memory; <paramref name="source"/> names them in messages.</summary>
    /// <exception cref="DitCacheException">The bytes are not valid safetensors.</exception>
    public static TensorFile Load(byte[] bytes, string source)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        void Read(long offset, Span<byte> dst) => bytes.AsSpan((int)offset, dst.Length).CopyTo(dst);
        Header header = ReadHeader(source, bytes.LongLength, Read);
        return new TensorFile(source, header.Entries.Values.Select(e => e.Info), header.Metadata, info => ReadTensor(header, info.Name, Read));
    }

    /// <summary>
    /// Writes <paramref name="tensors"/> (sorted by name) and <paramref name="metadata"/> to <paramref name="path"/>
    /// through a temporary file, stored as <paramref name="dtype"/>.
    /// </summary>
    /// <exception cref="DitCacheException">The file cannot be written.</exception>
    public static void Save(string path, IReadOnlyDictionary<string, Tensor> tensors,
        IReadOnlyDictionary<string, string>? metadata = null, StoredDType dtype = StoredDType.F32, string flag = "output")
    {
        ArgumentNullException.ThrowIfNull(tensors);
        byte[] bytes = Serialize(tensors, metadata, dtype);
        AtomicFile.Write(path, flag, s => s.Write(bytes));
    }

    /// <summary>The bytes of a safetensors file holding <paramref name="tensors"/>.</summary>
    public static byte[] Serialize(IReadOnlyDictionary<string, Tensor> tensors,
        IReadOnlyDictionary<string, string>? metadata = null, StoredDType dtype = StoredDType.F32)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        string[] names = tensors.Keys.OrderBy(k => k, StringComparer.Ordinal).ToArray();
        var header = new StringBuilder("{");
        long offset = 0;
        int size = DTypeConvert.Size(dtype);
        foreach (string name in names)
        {
            if (name == MetadataKey)
            {
                throw new ArgumentException($"tensor name '{MetadataKey}' is reserved", nameof(tensors));
            }

            Tensor t = tensors[name];
            long bytes = (long)t.Length * size;
            header.Append(JsonSerializer.Serialize(name)).Append(":{\"dtype\":\"").Append(dtype.ToString())
                .Append("\",\"shape\":[").Append(string.Join(",", t.Shape))
                .Append("],\"data_offsets\":[").Append(offset.ToString(CultureInfo.InvariantCulture)).Append(',')
                .Append((offset + bytes).ToString(CultureInfo.InvariantCulture)).Append("]},");
            offset += bytes;
        }

        if (metadata is { Count: > 0 })
        {
            header.Append('"').Append(MetadataKey).Append("\":{");
            header.Append(string.Join(",", metadata.OrderBy(kv => kv.Key, StringComparer.Ordinal)
                .Select(kv => JsonSerializer.Serialize(kv.Key) + ":" + JsonSerializer.Serialize(kv.Value))));
            header.Append("},");
        }

        if (header[^1] == ',')
        {
            header.Length--;
        }

        header.Append('}');
        byte[] json = Encoding.UTF8.GetBytes(header.ToString());
        int padded = (json.Length + 7) / 8 * 8;
        byte[] result = new byte[checked(8 + padded + offset)];
        BinaryPrimitives.WriteUInt64LittleEndian(result, (ulong)padded);
        json.CopyTo(result, 8);
        result.AsSpan(8 + json.Length, padded - json.Length).Fill((byte)' ');
        long at = 8 + padded;
        foreach (string name in names)
        {
            Tensor t = tensors[name];
            DTypeConvert.FromFloat(t.Data, dtype, result.AsSpan(checked((int)at), t.Length * size));
            at += (long)t.Length * size;
        }

        return result;
    }

    private static Header ReadHeader(string source, long fileLength, ReadAt read)
    {
        if (fileLength < 8)
        {
            throw new DitCacheException($"{source}: {fileLength} bytes is too short for safetensors (8-byte header length first); the file is truncated or not safetensors");
        }

        Span<byte> lengthBytes = stackalloc byte[8];
        read(0, lengthBytes);
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(lengthBytes);
        if (headerLength < 2 || headerLength > MaxHeaderBytes || headerLength > (ulong)(fileLength - 8))
        {
            throw new DitCacheException(
                $"{source}: header length {headerLength} does not fit a {fileLength}-byte file (expected 2..{Math.Min(MaxHeaderBytes, fileLength - 8)}); the file is truncated or not safetensors");
        }

        byte[] json = new byte[headerLength];
        read(8, json);
        long dataStart = 8 + (long)headerLength;
        long dataLength = fileLength - dataStart;
        if (json[0] != (byte)'{')
        {
            throw Bad(source, $"header starts with byte 0x{json[0]:x2}, expected '{{'");
        }

        var entries = new List<Entry>();
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        try
        {
            // The format pads the header with spaces to a multiple of 8; nothing else may follow the JSON object.
            using JsonDocument doc = JsonDocument.Parse(json.AsMemory().TrimEnd((byte)' '));
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw Bad(source, $"header is JSON {doc.RootElement.ValueKind}, expected an object");
            }

            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (JsonProperty prop in doc.RootElement.EnumerateObject())
            {
                string name = Text(source, prop);
                if (!seen.Add(name))
                {
                    throw Bad(source, $"key \"{TensorFile.Printable(name)}\" appears twice in the header");
                }

                if (name == MetadataKey)
                {
                    ReadMetadata(source, prop.Value, metadata);
                    continue;
                }

                entries.Add(ReadEntry(source, name, prop.Value, dataLength));
            }
        }
        catch (JsonException e)
        {
            throw new DitCacheException($"{source}: header is not valid JSON ({OneLine(e.Message)}); the file is corrupt or not safetensors", e);
        }

        // The format requires the tensors to tile [0, data length) exactly: no gap, no overlap, nothing after. A
        // header length that is off (the header padded or cut so the JSON still parses) shifts this and fails here.
        Entry[] byOffset = entries.OrderBy(e => e.Begin).ThenBy(e => e.End).ToArray();
        long covered = 0;
        Entry? previous = null;
        foreach (Entry e in byOffset)
        {
            if (e.Begin < covered)
            {
                throw Bad(source, $"tensors \"{TensorFile.Printable(previous!.Info.Name)}\" [{previous.Begin}, {previous.End}) and \"{TensorFile.Printable(e.Info.Name)}\" [{e.Begin}, {e.End}) overlap");
            }

            if (e.Begin > covered)
            {
                string after = previous is null ? "the start of the data" : $"\"{TensorFile.Printable(previous.Info.Name)}\" [{previous.Begin}, {previous.End})";
                throw Bad(source, $"bytes [{covered}, {e.Begin}) between {after} and \"{TensorFile.Printable(e.Info.Name)}\" belong to no tensor (is the header length {headerLength} right?)");
            }

            covered = e.End;
            previous = e;
        }

        if (covered != dataLength)
        {
            throw Bad(source, $"the tensors cover {covered} bytes of data but the file holds {dataLength} after the {headerLength}-byte header (a wrong header length, or bytes appended or cut)");
        }

        return new Header(source, dataStart, entries.ToDictionary(e => e.Info.Name, StringComparer.Ordinal), metadata);
    }

    /// <summary>Reads one tensor's bytes into a new float32 array, at most 1 MB of raw bytes at a time.</summary>
    private static Tensor ReadTensor(Header header, string name, ReadAt read)
    {
        Entry e = header.Entries[name];
        var data = new float[e.Count];
        int size = DTypeConvert.Size(e.Info.DType);
        const int ChunkBytes = 1 << 20;
        if (e.Info.DType == StoredDType.F32 && BitConverter.IsLittleEndian)
        {
            // The stored bytes are the floats: read them in place (pieces of at most 2^28 floats, 1 GB).
            const int Piece = 1 << 28;
            for (long done = 0; done < e.Count; done += Piece)
            {
                int n = (int)Math.Min(Piece, e.Count - done);
                read(header.DataStart + e.Begin + (done * size), MemoryMarshal.AsBytes(data.AsSpan((int)done, n)));
            }

            return new Tensor(data, e.Info.Shape);
        }

        byte[] chunk = new byte[(int)Math.Min(ChunkBytes, Math.Max(e.End - e.Begin, 1))];
        int perChunk = chunk.Length / size;
        for (long done = 0; done < e.Count; done += perChunk)
        {
            int n = (int)Math.Min(perChunk, e.Count - done);
            Span<byte> raw = chunk.AsSpan(0, n * size);
            read(header.DataStart + e.Begin + (done * size), raw);
            DTypeConvert.ToFloat(raw, e.Info.DType, data.AsSpan((int)done, n));
        }

        return new Tensor(data, e.Info.Shape);
    }

    /// <summary>
    /// A JSON property name. System.Text.Json checks UTF-8 and <c>\u</c> escapes only when a string is decoded, so
    /// invalid bytes and unpaired surrogate escapes (e.g. <c>\ud800</c>) surface here, and are refused: a tensor
    /// name that is not text cannot be matched or printed.
    /// </summary>
    private static string Text(string source, JsonProperty prop)
    {
        try
        {
            return prop.Name;
        }
        catch (InvalidOperationException e)
        {
            throw Bad(source, $"a header key is not valid Unicode (invalid UTF-8 or an unpaired surrogate escape such as \\ud800: {OneLine(e.Message)})");
        }
    }

    /// <summary>A JSON string value; an unpaired surrogate escape is refused.</summary>
    private static string Text(string source, JsonElement value, string what)
    {
        try
        {
            return value.GetString()!;
        }
        catch (InvalidOperationException e)
        {
            throw Bad(source, $"{what} is not valid Unicode (invalid UTF-8 or an unpaired surrogate escape such as \\ud800: {OneLine(e.Message)})");
        }
    }

    private static string OneLine(string message) => message.ReplaceLineEndings(" ");

    private static void ReadMetadata(string source, JsonElement value, Dictionary<string, string> metadata)
    {
        if (value.ValueKind != JsonValueKind.Object)
        {
            throw Bad(source, $"\"{MetadataKey}\" is JSON {value.ValueKind}, expected an object of strings");
        }

        foreach (JsonProperty m in value.EnumerateObject())
        {
            string key = Text(source, m);
            if (m.Value.ValueKind != JsonValueKind.String)
            {
                throw Bad(source, $"metadata \"{TensorFile.Printable(key)}\" is JSON {m.Value.ValueKind}, expected a string");
            }

            if (!metadata.TryAdd(key, Text(source, m.Value, $"metadata \"{TensorFile.Printable(key)}\"")))
            {
                throw Bad(source, $"metadata key \"{TensorFile.Printable(key)}\" appears twice");
            }
        }
    }

    private static Entry ReadEntry(string source, string name, JsonElement value, long dataLength)
    {
        string shown = $"tensor \"{TensorFile.Printable(name)}\"";
        if (value.ValueKind != JsonValueKind.Object)
        {
            throw Bad(source, $"{shown} is JSON {value.ValueKind}, expected an object with dtype, shape, data_offsets");
        }

        var fields = new HashSet<string>(StringComparer.Ordinal);
        foreach (JsonProperty f in value.EnumerateObject())
        {
            if (!fields.Add(Text(source, f)))
            {
                throw Bad(source, $"{shown} has the field \"{TensorFile.Printable(f.Name)}\" twice");
            }
        }

        if (!value.TryGetProperty("dtype", out JsonElement dt) || dt.ValueKind != JsonValueKind.String)
        {
            throw Bad(source, $"{shown} has no string \"dtype\"");
        }

        string dtypeText = Text(source, dt, $"{shown} dtype");
        StoredDType dtype = dtypeText switch
        {
            "F32" => StoredDType.F32,
            "F16" => StoredDType.F16,
            "BF16" => StoredDType.BF16,
            _ => throw new DitCacheException(
                $"{source}: {shown} has dtype {TensorFile.Printable(dtypeText)}, which DitCache does not read (expected F32, F16 or BF16); convert the checkpoint to floating point"),
        };

        long[] dims = ReadInts(source, shown, value, "shape", 6);
        long[] offsets = ReadInts(source, shown, value, "data_offsets", 2);
        if (offsets.Length != 2 || offsets[0] > offsets[1])
        {
            throw Bad(source, $"{shown} data_offsets [{string.Join(", ", offsets)}] is not [begin, end] with begin <= end");
        }

        if (offsets[1] > dataLength)
        {
            throw Bad(source, $"{shown} data_offsets [{offsets[0]}, {offsets[1]}] run past the {dataLength} data bytes (file truncated?)");
        }

        // The byte count in Int128, stopped once it passes any file size: no product can overflow.
        int size = DTypeConvert.Size(dtype);
        long span = offsets[1] - offsets[0];
        Int128 count = dims.Contains(0) ? 0 : 1;
        foreach (long d in dims)
        {
            if (d > int.MaxValue)
            {
                throw Bad(source, $"{shown} dimension {d} is larger than {int.MaxValue}");
            }

            count = count > long.MaxValue ? count : count * d;
        }

        if (count * size != span)
        {
            string needs = count > long.MaxValue ? $"more than {long.MaxValue}" : (count * size).ToString(CultureInfo.InvariantCulture);
            throw Bad(source, $"{shown} shape [{string.Join(", ", dims)}] x {dtypeText} needs {needs} bytes but data_offsets [{offsets[0]}, {offsets[1]}] span {span}");
        }

        if (count > Array.MaxLength)
        {
            throw Bad(source, $"{shown} has {count} elements, more than one float32 array can hold");
        }

        int[] shape = dims.Select(d => (int)d).ToArray();
        return new Entry(new TensorEntry(name, dtype, shape), offsets[0], offsets[1], (long)count);
    }

    private static long[] ReadInts(string source, string shown, JsonElement value, string key, int maxCount)
    {
        if (!value.TryGetProperty(key, out JsonElement arr) || arr.ValueKind != JsonValueKind.Array)
        {
            throw Bad(source, $"{shown} has no array \"{key}\"");
        }

        if (arr.GetArrayLength() > maxCount)
        {
            throw Bad(source, $"{shown} {key} has {arr.GetArrayLength()} entries, at most {maxCount} supported");
        }

        var result = new long[arr.GetArrayLength()];
        int i = 0;
        foreach (JsonElement v in arr.EnumerateArray())
        {
            if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt64(out long x) || x < 0)
            {
                string raw = v.GetRawText();
                throw Bad(source, $"{shown} {key} entry {TensorFile.Printable(raw.Length > 40 ? raw[..40] + "…" : raw)} is not a non-negative 64-bit integer");
            }

            result[i++] = x;
        }

        return result;
    }

    private static DitCacheException Bad(string source, string what) =>
        new($"{source}: {what}; the file is corrupt or was not written as safetensors, export it again");

    /// <summary>A tensor's description and its byte range [Begin, End) in the data region.</summary>
    private sealed record Entry(TensorEntry Info, long Begin, long End, long Count);

    /// <summary>A validated header: the data region's start, the tensors, the metadata.</summary>
    private sealed record Header(string Source, long DataStart, Dictionary<string, Entry> Entries, Dictionary<string, string> Metadata);
}
