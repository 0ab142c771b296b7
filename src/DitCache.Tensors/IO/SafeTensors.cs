using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
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

    /// <summary>Reads a safetensors file.</summary>
    /// <exception cref="DitCacheException">The file is missing, unreadable, or not valid safetensors.</exception>
    public static TensorFile Load(string path)
    {
        SafeFileHandle handle;
        try
        {
            handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            throw new DitCacheException($"{path}: cannot open the model file ({e.Message}); check the path", e);
        }

        using (handle)
        {
            long length = RandomAccess.GetLength(handle);
            return Parse(path, length, (offset, dst) =>
            {
                int total = 0;
                while (total < dst.Length)
                {
                    int n = RandomAccess.Read(handle, dst[total..], offset + total);
                    if (n == 0)
                    {
                        throw new DitCacheException($"{path}: file ended early while reading; the file is truncated, download or export it again");
                    }

                    total += n;
                }
            });
        }
    }

    /// <summary>Reads safetensors bytes held in memory; <paramref name="source"/> names them in messages.</summary>
    /// <exception cref="DitCacheException">The bytes are not valid safetensors.</exception>
    public static TensorFile Load(byte[] bytes, string source)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        return Parse(source, bytes.LongLength, (offset, dst) => bytes.AsSpan(checked((int)offset), dst.Length).CopyTo(dst));
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

    private static TensorFile Parse(string source, long fileLength, ReadAt read)
    {
        if (fileLength < 8)
        {
            throw new DitCacheException($"{source}: {fileLength} bytes is too short for safetensors (8-byte header length first); the file is truncated or not safetensors");
        }

        Span<byte> lengthBytes = stackalloc byte[8];
        read(0, lengthBytes);
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(lengthBytes);
        if (headerLength == 0 || headerLength > MaxHeaderBytes || headerLength > (ulong)(fileLength - 8))
        {
            throw new DitCacheException(
                $"{source}: header length {headerLength} does not fit a {fileLength}-byte file (expected 1..{Math.Min(MaxHeaderBytes, fileLength - 8)}); the file is truncated or not safetensors");
        }

        byte[] json = new byte[headerLength];
        read(8, json);
        long dataStart = 8 + (long)headerLength;
        long dataLength = fileLength - dataStart;

        var entries = new List<Entry>();
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        try
        {
            using JsonDocument doc = JsonDocument.Parse(json.AsMemory().TrimEnd((byte)' '));
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw Bad(source, $"header is JSON {doc.RootElement.ValueKind}, expected an object");
            }

            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (JsonProperty prop in doc.RootElement.EnumerateObject())
            {
                if (!seen.Add(prop.Name))
                {
                    throw Bad(source, $"key \"{prop.Name}\" appears twice in the header");
                }

                if (prop.Name == MetadataKey)
                {
                    ReadMetadata(source, prop.Value, metadata);
                    continue;
                }

                entries.Add(ReadEntry(source, prop.Name, prop.Value, dataLength));
            }
        }
        catch (JsonException e)
        {
            throw new DitCacheException($"{source}: header is not valid JSON ({e.Message}); the file is corrupt or not safetensors", e);
        }

        Entry[] byOffset = entries.OrderBy(e => e.Begin).ThenBy(e => e.End).ToArray();
        for (int i = 1; i < byOffset.Length; i++)
        {
            if (byOffset[i].Begin < byOffset[i - 1].End)
            {
                throw Bad(source, $"tensors \"{byOffset[i - 1].Name}\" [{byOffset[i - 1].Begin}, {byOffset[i - 1].End}) and \"{byOffset[i].Name}\" [{byOffset[i].Begin}, {byOffset[i].End}) overlap");
            }
        }

        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        var dtypes = new Dictionary<string, StoredDType>(StringComparer.Ordinal);
        byte[] chunk = new byte[1 << 20];
        foreach (Entry e in entries)
        {
            var data = new float[e.Count];
            int size = DTypeConvert.Size(e.DType);
            int perChunk = chunk.Length / size;
            for (long done = 0; done < e.Count; done += perChunk)
            {
                int n = (int)Math.Min(perChunk, e.Count - done);
                Span<byte> raw = chunk.AsSpan(0, n * size);
                read(dataStart + e.Begin + (done * size), raw);
                DTypeConvert.ToFloat(raw, e.DType, data.AsSpan((int)done, n));
            }

            tensors[e.Name] = new Tensor(data, e.Shape);
            dtypes[e.Name] = e.DType;
        }

        return new TensorFile(source, tensors, metadata, dtypes);
    }

    private static void ReadMetadata(string source, JsonElement value, Dictionary<string, string> metadata)
    {
        if (value.ValueKind != JsonValueKind.Object)
        {
            throw Bad(source, $"\"{MetadataKey}\" is JSON {value.ValueKind}, expected an object of strings");
        }

        foreach (JsonProperty m in value.EnumerateObject())
        {
            if (m.Value.ValueKind != JsonValueKind.String)
            {
                throw Bad(source, $"metadata \"{m.Name}\" is JSON {m.Value.ValueKind}, expected a string");
            }

            metadata[m.Name] = m.Value.GetString()!;
        }
    }

    private static Entry ReadEntry(string source, string name, JsonElement value, long dataLength)
    {
        if (value.ValueKind != JsonValueKind.Object)
        {
            throw Bad(source, $"tensor \"{name}\" is JSON {value.ValueKind}, expected an object with dtype, shape, data_offsets");
        }

        if (!value.TryGetProperty("dtype", out JsonElement dt) || dt.ValueKind != JsonValueKind.String)
        {
            throw Bad(source, $"tensor \"{name}\" has no string \"dtype\"");
        }

        string dtypeText = dt.GetString()!;
        StoredDType dtype = dtypeText switch
        {
            "F32" => StoredDType.F32,
            "F16" => StoredDType.F16,
            "BF16" => StoredDType.BF16,
            _ => throw new DitCacheException(
                $"{source}: tensor \"{name}\" has dtype {dtypeText}, which DitCache does not read (expected F32, F16 or BF16); convert the checkpoint to floating point"),
        };

        int[] shape = ReadInts(source, name, value, "shape", 6).Select(v =>
            v <= int.MaxValue ? (int)v : throw Bad(source, $"tensor \"{name}\" dimension {v} is too large")).ToArray();
        long[] offsets = ReadInts(source, name, value, "data_offsets", 2);
        if (offsets.Length != 2 || offsets[0] > offsets[1])
        {
            throw Bad(source, $"tensor \"{name}\" data_offsets [{string.Join(", ", offsets)}] is not [begin, end] with begin <= end");
        }

        if (offsets[1] > dataLength)
        {
            throw Bad(source, $"tensor \"{name}\" data_offsets [{offsets[0]}, {offsets[1]}] run past the {dataLength} data bytes (file truncated?)");
        }

        long count = 1;
        foreach (int d in shape)
        {
            count = checked(count * d);
        }

        long expected = count * DTypeConvert.Size(dtype);
        if (expected != offsets[1] - offsets[0])
        {
            throw Bad(source, $"tensor \"{name}\" shape {Tensor.FormatShape(shape)} x {dtypeText} needs {expected} bytes but data_offsets [{offsets[0]}, {offsets[1]}] span {offsets[1] - offsets[0]}");
        }

        if (count > Array.MaxLength)
        {
            throw Bad(source, $"tensor \"{name}\" has {count} elements, more than one float32 array can hold");
        }

        return new Entry(name, dtype, shape, offsets[0], offsets[1], count);
    }

    private static long[] ReadInts(string source, string name, JsonElement value, string key, int maxCount)
    {
        if (!value.TryGetProperty(key, out JsonElement arr) || arr.ValueKind != JsonValueKind.Array)
        {
            throw Bad(source, $"tensor \"{name}\" has no array \"{key}\"");
        }

        if (arr.GetArrayLength() > maxCount)
        {
            throw Bad(source, $"tensor \"{name}\" {key} has {arr.GetArrayLength()} entries, at most {maxCount} supported");
        }

        var result = new long[arr.GetArrayLength()];
        int i = 0;
        foreach (JsonElement v in arr.EnumerateArray())
        {
            if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt64(out long x) || x < 0)
            {
                throw Bad(source, $"tensor \"{name}\" {key} entry {v.GetRawText()} is not a non-negative integer");
            }

            result[i++] = x;
        }

        return result;
    }

    private static DitCacheException Bad(string source, string what) =>
        new($"{source}: {what}; the file is corrupt or was not written as safetensors, export it again");

    private sealed record Entry(string Name, StoredDType DType, int[] Shape, long Begin, long End, long Count);
}
