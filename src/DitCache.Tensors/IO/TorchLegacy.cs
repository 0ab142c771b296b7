using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.Globalization;
using System.Numerics;
using Microsoft.Win32.SafeHandles;

namespace DitCache.Tensors.IO;

/// <summary>
/// The layout of the legacy format <c>torch.save</c> wrote before PyTorch 1.6 (and still writes with
/// <c>_use_new_zipfile_serialization=False</c>), from torch/serialization.py <c>_legacy_save</c> /
/// <c>_legacy_load</c>: five consecutive pickles (the magic number 0x1950a86a20f9469cfc6c, the protocol version
/// 1001, a sys_info dict, the object with storages as persistent ids, the list of storage keys in the order their
/// data follows), then for each listed storage an 8-byte little-endian element count and its raw little-endian
/// bytes. Every field is checked against the file's length before it is used; storage bytes are not read here,
/// only located.
/// </summary>
internal static class TorchLegacy
{
    /// <summary>torch/serialization.py MAGIC_NUMBER.</summary>
    public static readonly BigInteger Magic = BigInteger.Parse("01950a86a20f9469cfc6c", NumberStyles.HexNumber, CultureInfo.InvariantCulture);

    /// <summary>torch/serialization.py PROTOCOL_VERSION.</summary>
    public const long ProtocolVersion = 1001;

    private const string Hint = "the file is truncated or corrupt, download or save it again";

    /// <summary>A storage's root as the pickle declares it, and where its bytes begin in the file.</summary>
    internal sealed record Storage(TorchPickle.StorageRef Ref, long DataOffset);

    /// <summary>Reads the pickles and locates every storage's bytes (reading only each 8-byte element count).</summary>
    /// <exception cref="DitCacheException">Any field is malformed, inconsistent or outside the file.</exception>
    public static (object? Root, Dictionary<string, Storage> Storages) Read(string path, SafeFileHandle handle, long length, long maxPickleBytes)
    {
        TorchPickle pickles = TorchPickle.OpenLegacy(path, handle, length, maxPickleBytes);
        object? magic = pickles.Next();
        if (magic is not BigInteger m || m != Magic)
        {
            throw new DitCacheException(
                $"{path}: the first pickle holds {Show(magic)}, not torch.save's magic number 0x1950a86a20f9469cfc6c; the file is not a legacy torch.save checkpoint or is corrupt, download or save it again");
        }

        object? version = pickles.Next();
        if (version is not long v || v != ProtocolVersion)
        {
            throw new DitCacheException(
                $"{path}: legacy torch.save protocol version is {Show(version)}, expected {ProtocolVersion}; {Hint}");
        }

        object? sysInfo = pickles.Next();
        if (sysInfo is not TorchPickle.PickleDict info || !info.TryGet("little_endian", out object? little) || little is not bool)
        {
            throw new DitCacheException($"{path}: the legacy sys_info pickle is {Show(sysInfo)}, not a dict with 'little_endian'; {Hint}");
        }

        if (little is false)
        {
            throw new DitCacheException(
                $"{path}: was written on a big-endian machine (sys_info little_endian False), which DitCache does not read; load it there and save it again with torch.save");
        }

        object? root = pickles.Next();
        object? keys = pickles.Next();
        if (keys is not List<object?> list)
        {
            throw new DitCacheException($"{path}: the legacy storage key list is {Show(keys)}, not a list; {Hint}");
        }

        var storages = new Dictionary<string, Storage>(list.Count, StringComparer.Ordinal);
        long pos = pickles.Position;
        Span<byte> count = stackalloc byte[8];
        foreach (object? k in list)
        {
            if (k is not string key)
            {
                throw new DitCacheException($"{path}: the legacy storage key list holds {Show(k)}, not a string; {Hint}");
            }

            string shown = TensorFile.Printable(key);
            if (!pickles.Storages.TryGetValue(key, out TorchPickle.StorageRef? declared))
            {
                throw new DitCacheException($"{path}: the storage key list names '{shown}', which no persistent id declares; {Hint}");
            }

            if (storages.ContainsKey(key))
            {
                throw new DitCacheException($"{path}: the storage key list names '{shown}' twice; {Hint}");
            }

            if (length - pos < 8)
            {
                throw new DitCacheException(
                    $"{path}: the file ends at byte {length}, before the element count of storage '{shown}' at byte {pos}; {Hint}");
            }

            FileAccessor.ReadExactly(handle, path, pos, count);
            long numel = BinaryPrimitives.ReadInt64LittleEndian(count);
            if (numel != declared.Numel)
            {
                throw new DitCacheException(
                    $"{path}: storage '{shown}' at byte {pos} holds {numel} elements, but the pickle declares {declared.Numel} ({declared.Type.Name}); {Hint}");
            }

            int size = declared.Type.ElementSize;
            long available = length - pos - 8;
            if (numel < 0 || numel > available / size)
            {
                throw new DitCacheException(
                    $"{path}: storage '{shown}' needs {numel} × {size} bytes from byte {pos + 8}, but the file ends at byte {length}; {Hint}");
            }

            storages[key] = new Storage(declared, pos + 8);
            pos += 8 + (numel * size);
        }

        foreach (string key in pickles.Storages.Keys)
        {
            if (!storages.ContainsKey(key))
            {
                throw new DitCacheException(
                    $"{path}: the pickle uses storage '{TensorFile.Printable(key)}', which the storage key list does not hold (its bytes are not in the file); {Hint}");
            }
        }

        if (pos != length)
        {
            throw new DitCacheException(
                $"{path}: has {length - pos} bytes after its last storage (byte {pos}), which torch.save never writes; {Hint}");
        }

        return (root, storages);
    }

    private static string Show(object? value) => value switch
    {
        null => "None",
        BigInteger b => "0x" + b.ToString("x", CultureInfo.InvariantCulture).TrimStart('0'),
        long l => l.ToString(CultureInfo.InvariantCulture),
        string s => $"'{TensorFile.Printable(s)}'",
        bool b => b ? "True" : "False",
        TorchPickle.PickleDict => "a dict",
        List<object?> => "a list",
        object?[] t => $"a tuple of {t.Length}",
        _ => $"a {value.GetType().Name}",
    };
}
