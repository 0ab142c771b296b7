using System;
using System.Collections.Generic;
using System.IO;
using System.IO.Compression;
using System.Linq;
using System.Runtime.InteropServices;
using System.Text;

namespace DitCache.Tensors.IO;

/// <summary>
/// Reads the zip format <c>torch.save</c> writes since PyTorch 1.6 (e.g. facebookresearch/DiT's
/// <c>DiT-XL-2-256x256.pt</c>): a zip of stored entries <c>{name}/data.pkl</c> (the pickled object),
/// <c>{name}/data/{key}</c> (raw little-endian storage bytes), <c>{name}/version</c> and, since torch 2.1,
/// <c>{name}/byteorder</c>. The pickle is interpreted by <see cref="TorchPickle"/>, which runs no code and
/// refuses any global outside a small allowlist.
/// </summary>
/// <remarks>
/// Accepted shapes of the pickled object: a state_dict (a dict of float32/float16/bfloat16 tensors), or a dict
/// holding one under <c>"ema"</c> (preferred, as DiT's <c>find_model</c> does) or <c>"model"</c>, as DiT's
/// train.py writes (<c>{"model", "ema", "opt", "args"}</c>), or under <c>"state_dict"</c>, as latent-diffusion
/// (PyTorch Lightning) checkpoints hold theirs (<c>{"state_dict", "global_step"}</c>, e.g. the SD VAE's
/// <c>.ckpt</c>). The other entries of such a dict are parsed as data
/// but never read from the archive; <c>args</c> is an <c>argparse.Namespace</c>, which the allowlist admits as an
/// inert placeholder. Strided (non-contiguous) tensors and tensors sharing a storage are gathered into dense
/// row-major float32 tensors. Each storage entry is read only for the tensors kept, one tensor at a time, so a
/// 2.7 GB checkpoint is never held as one buffer.
/// </remarks>
public static class TorchCheckpoint
{
    /// <summary>Largest <c>data.pkl</c> accepted; DiT-XL/2's is about 40 KB.</summary>
    public const long MaxPickleBytes = 256L << 20;

    private const string ResaveHint = "save it again with torch.save(model.state_dict(), path)";

    /// <summary>Reads a zip-format <c>.pt</c> file and converts its tensors to float32.</summary>
    /// <exception cref="DitCacheException">
    /// The file is missing, not a zip, not a torch.save archive, names a global outside the allowlist, holds no
    /// state_dict, or a tensor is not floating point or lies outside its storage.
    /// </exception>
    public static TensorFile Load(string path)
    {
        FileStream stream;
        try
        {
            stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            throw new DitCacheException($"{path}: cannot open the model file ({e.Message}); check the path", e);
        }

        using (stream)
        {
            try
            {
                using var zip = new ZipArchive(stream, ZipArchiveMode.Read);
                return Read(path, zip);
            }
            catch (Exception e) when (e is InvalidDataException or EndOfStreamException or IOException)
            {
                throw new DitCacheException(
                    $"{path}: the zip archive is damaged ({e.Message}); the file is truncated or corrupt, download or save it again", e);
            }
        }
    }

    private static TensorFile Read(string path, ZipArchive zip)
    {
        ZipArchiveEntry[] pickles = zip.Entries
            .Where(e => e.FullName.EndsWith("/data.pkl", StringComparison.Ordinal) && e.FullName.Count(c => c == '/') == 1)
            .ToArray();
        if (pickles.Length != 1)
        {
            throw new DitCacheException(
                $"{path}: zip holds {pickles.Length} '<name>/data.pkl' entries (expected 1), so it is not a torch.save checkpoint; {ResaveHint}");
        }

        string prefix = pickles[0].FullName[..^"data.pkl".Length];
        if (zip.GetEntry(prefix + "constants.pkl") is not null)
        {
            throw new DitCacheException(
                $"{path}: this is a TorchScript archive (torch.jit.save), not a state_dict; in Python, {ResaveHint}");
        }

        if (zip.GetEntry(prefix + "byteorder") is { } order)
        {
            string text = Encoding.ASCII.GetString(ReadAll(path, order, 16)).Trim();
            if (text != "little")
            {
                throw new DitCacheException(
                    $"{path}: {order.FullName} says '{text}' (expected 'little'); {ResaveHint} on a little-endian machine");
            }
        }

        object? root = TorchPickle.Load(path, ReadAll(path, pickles[0], MaxPickleBytes));
        (TorchPickle.PickleDict stateDict, string under) = Select(path, root);

        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        var dtypes = new Dictionary<string, StoredDType>(StringComparer.Ordinal);
        foreach ((object? key, object? value) in stateDict.Items)
        {
            if (key is not string name)
            {
                throw new DitCacheException(
                    $"{path}: state_dict {Label(under, "")} has a key {key ?? "None"} ({Kind(key)}), expected strings; {ResaveHint}");
            }

            if (value is not TorchPickle.TensorRef t)
            {
                throw new DitCacheException(
                    $"{path}: entry '{Label(under, name)}' is {Kind(value)}, not a tensor; " +
                    $"expected a state_dict, or a dict with one under 'ema' or 'model'; {ResaveHint}");
            }

            (tensors[name], dtypes[name]) = Materialize(path, zip, prefix, name, t);
        }

        return new TensorFile(path, tensors, new Dictionary<string, string>(), dtypes);
    }

    /// <summary>
    /// Picks the state_dict: the top dict, or its "ema" (preferred) or "model" dict (train.py checkpoints), or its
    /// "state_dict" dict (latent-diffusion checkpoints).
    /// </summary>
    private static (TorchPickle.PickleDict Dict, string Under) Select(string path, object? root)
    {
        if (root is not TorchPickle.PickleDict top)
        {
            throw new DitCacheException(
                $"{path}: the checkpoint holds {Kind(root)} at the top, expected a dict of tensors (a state_dict); {ResaveHint}");
        }

        foreach (string key in (ReadOnlySpan<string>)["ema", "model", "state_dict"])
        {
            if (top.TryGet(key, out object? nested) && nested is TorchPickle.PickleDict dict)
            {
                return (dict, key);
            }
        }

        return (top, "");
    }

    private static (Tensor, StoredDType) Materialize(string path, ZipArchive zip, string prefix, string name, TorchPickle.TensorRef t)
    {
        TorchPickle.StorageRef s = t.Storage;
        StoredDType dtype = s.Type.DType ?? throw new DitCacheException(
            $"{path}: tensor '{name}' is stored as {s.Type.Name}, which DitCache does not read (expected float32, float16 or bfloat16); " +
            "convert or drop it in Python, e.g. {k: v.float() for k, v in sd.items()}, and save again");
        string where = $"{path}: tensor '{name}' (storage '{s.Key}', offset {t.Offset}, size {FormatLongs(t.Size)}, stride {FormatLongs(t.Stride)})";

        if (t.Size.Length > 6 || t.Stride.Length != t.Size.Length)
        {
            throw new DitCacheException($"{where}: needs rank 0..6 with one stride per dimension; the file is corrupt, {ResaveHint}");
        }

        if (t.Offset < 0 || t.Size.Any(d => d < 0 || d > int.MaxValue) || t.Stride.Any(d => d < 0))
        {
            throw new DitCacheException($"{where}: has a negative or oversized offset, size or stride; the file is corrupt, {ResaveHint}");
        }

        int[] shape = t.Size.Select(d => (int)d).ToArray();
        long count = 1;
        long extent = 1; // elements spanned in the storage: 1 + Σ (size_d − 1)·stride_d
        foreach ((long size, long stride) in t.Size.Zip(t.Stride))
        {
            count = count == 0 || size == 0 ? 0 : checked(count * size);
            extent = size == 0 ? extent : checked(extent + ((size - 1) * stride));
            if (count > Array.MaxLength)
            {
                throw new DitCacheException($"{where}: has more elements than one float32 array can hold");
            }
        }

        if (count == 0)
        {
            return (new Tensor([], shape), dtype);
        }

        if (t.Offset + extent > s.Numel)
        {
            throw new DitCacheException(
                $"{where}: reaches element {t.Offset + extent} but its storage holds {s.Numel}; the file is corrupt, {ResaveHint}");
        }

        ZipArchiveEntry entry = zip.GetEntry(prefix + "data/" + s.Key) ?? throw new DitCacheException(
            $"{where}: the archive has no entry '{prefix}data/{s.Key}'; the file is incomplete, {ResaveHint}");
        int size1 = DTypeConvert.Size(dtype);
        if (entry.Length < s.Numel * size1)
        {
            throw new DitCacheException(
                $"{where}: entry '{entry.FullName}' has {entry.Length} bytes but {s.Numel} × {size1}-byte elements need {s.Numel * size1}; the file is truncated, {ResaveHint}");
        }

        if (extent * size1 > Array.MaxLength)
        {
            throw new DitCacheException($"{where}: spans more than 2 GB of its storage, which DitCache does not read");
        }

        var values = new float[count];
        bool contiguous = IsContiguous(t.Size, t.Stride);
        using Stream data = entry.Open();
        Skip(data, t.Offset * size1);
        if (contiguous && dtype == StoredDType.F32 && BitConverter.IsLittleEndian)
        {
            data.ReadExactly(MemoryMarshal.AsBytes(values.AsSpan())); // the stored bytes are the floats
            return (new Tensor(values, shape), dtype);
        }

        byte[] raw = new byte[extent * size1];
        data.ReadExactly(raw);
        if (contiguous)
        {
            DTypeConvert.ToFloat(raw, dtype, values);
        }
        else
        {
            var all = new float[extent];
            DTypeConvert.ToFloat(raw, dtype, all);
            Gather(all, t.Size, t.Stride, values);
        }

        return (new Tensor(values, shape), dtype);
    }

    /// <summary>dst[i] = src[Σ idx_d·stride_d] over the row-major multi-index idx of i.</summary>
    private static void Gather(float[] src, long[] size, long[] stride, float[] dst)
    {
        int rank = size.Length;
        var idx = new long[rank];
        long at = 0;
        for (long i = 0; i < dst.LongLength; i++)
        {
            dst[i] = src[at];
            for (int d = rank - 1; d >= 0; d--)
            {
                idx[d]++;
                at += stride[d];
                if (idx[d] < size[d])
                {
                    break;
                }

                at -= stride[d] * size[d];
                idx[d] = 0;
            }
        }
    }

    private static bool IsContiguous(long[] size, long[] stride)
    {
        long expected = 1;
        for (int d = size.Length - 1; d >= 0; d--)
        {
            if (size[d] != 1 && stride[d] != expected)
            {
                return false;
            }

            expected *= size[d];
        }

        return true;
    }

    private static void Skip(Stream s, long bytes)
    {
        if (s.CanSeek)
        {
            s.Seek(bytes, SeekOrigin.Current);
            return;
        }

        byte[] scratch = new byte[Math.Min(bytes, 1 << 20)];
        while (bytes > 0)
        {
            int n = (int)Math.Min(bytes, scratch.Length);
            s.ReadExactly(scratch, 0, n);
            bytes -= n;
        }
    }

    private static byte[] ReadAll(string path, ZipArchiveEntry entry, long limit)
    {
        if (entry.Length > limit)
        {
            throw new DitCacheException(
                $"{path}: entry '{entry.FullName}' has {entry.Length} bytes, more than the {limit} a state_dict needs; the file is corrupt, {ResaveHint}");
        }

        byte[] bytes = new byte[entry.Length];
        using Stream s = entry.Open();
        s.ReadExactly(bytes);
        return bytes;
    }

    private static string Kind(object? value) => value switch
    {
        null => "None",
        TorchPickle.PickleDict => "a dict",
        List<object?> => "a list",
        object?[] => "a tuple",
        TorchPickle.Opaque o => $"a '{o.Global}' object",
        string => "a string",
        long => "an integer",
        double => "a float",
        bool => "a bool",
        _ => $"a {value.GetType().Name}",
    };

    private static string Label(string under, string name) =>
        under.Length == 0 ? name : name.Length == 0 ? $"'{under}'" : $"{under}.{name}";

    private static string FormatLongs(long[] values) => "[" + string.Join(", ", values) + "]";
}
