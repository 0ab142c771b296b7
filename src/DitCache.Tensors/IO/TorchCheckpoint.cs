using System;
using System.Collections.Generic;
using System.Linq;
using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Win32.SafeHandles;

namespace DitCache.Tensors.IO;

/// <summary>
/// Reads the zip format <c>torch.save</c> writes since PyTorch 1.6 (e.g. facebookresearch/DiT's
/// <c>DiT-XL-2-256x256.pt</c>): a zip of stored entries <c>{name}/data.pkl</c> (the pickled object),
/// <c>{name}/data/{key}</c> (raw little-endian storage bytes), <c>{name}/version</c> and, since torch 2.1,
/// <c>{name}/byteorder</c>. The zip is read by <see cref="TorchZip"/> (every field checked, every entry read
/// CRC-verified); the pickle by <see cref="TorchPickle"/>, which runs no code and refuses any global outside a
/// small allowlist. Also reads the legacy format of <c>torch.save</c> before 1.6 (and with
/// <c>_use_new_zipfile_serialization=False</c>), laid out by <see cref="TorchLegacy"/>, with the same accepted
/// shapes, checks and lazy reads (it has no CRC).
/// </summary>
/// <remarks>
/// Accepted shapes of the pickled object: a state_dict (a dict of float32/float16/bfloat16 tensors), or a dict
/// holding one under <c>"ema"</c> (preferred, as DiT's <c>find_model</c> does) or <c>"model"</c>, as DiT's
/// train.py writes (<c>{"model", "ema", "opt", "args"}</c>), or under <c>"state_dict"</c>, as latent-diffusion
/// (PyTorch Lightning) checkpoints hold theirs (<c>{"state_dict", "global_step"}</c>, e.g. the SD VAE's
/// <c>.ckpt</c>). The other entries of such a dict are parsed as data
/// but never read from the archive; <c>args</c> is an <c>argparse.Namespace</c>, which the allowlist admits as an
/// inert placeholder. <see cref="Load"/> validates every kept tensor against its storage (offset, size and stride
/// arithmetic checked; the storage's declared element count times the element size equal to its entry's size) and
/// reads no tensor data; each tensor's storage entry is read, and its CRC verified, when the tensor is read.
/// Strided (non-contiguous) views and tensors sharing a storage are gathered into dense row-major float32 tensors;
/// a view with more elements than its storage (stride 0, as <c>expand</c> makes) is refused. A tensor that is not
/// floating point is refused, naming it, except BatchNorm's step counter (a 0-d integer tensor named
/// <c>num_batches_tracked</c> or <c>*.num_batches_tracked</c>, which inference never reads): it is left out of the
/// file's entries, so torchvision-style state_dicts such as pytorch-fid's Inception weights load as they are.
/// </remarks>
public static class TorchCheckpoint
{
    /// <summary>Largest <c>data.pkl</c> (and other non-storage entry) accepted; DiT-XL/2's is about 40 KB.</summary>
    public const long MaxPickleBytes = 64L << 20;

    private const string ResaveHint = "save it again with torch.save(model.state_dict(), path)";

    /// <summary>
    /// Opens a <c>torch.save</c> file, zip format or (first byte 0x80, a pickle's PROTO) legacy format: reads the
    /// archive directory or the legacy pickles, and validates every tensor of the state_dict; tensor values are read
    /// (and converted to float32) when <see cref="TensorFile.Read"/> asks.
    /// </summary>
    /// <exception cref="DitCacheException">
    /// The file is missing, not a zip or legacy torch.save file, is truncated or inconsistent, names a global outside
    /// the allowlist, holds no state_dict, or a tensor is not floating point or lies outside its storage.
    /// </exception>
    public static TensorFile Load(string path)
    {
        long length;
        TorchZip? zip = null;
        List<Planned> plan;
        using (SafeFileHandle handle = FileAccessor.Open(path))
        {
            length = FileAccessor.Length(handle, path);
            byte[] first = new byte[length > 0 ? 1 : 0];
            FileAccessor.ReadExactly(handle, path, 0, first);
            if (first.Length == 1 && first[0] == 0x80)
            {
                plan = PlanLegacy(path, handle, length);
            }
            else
            {
                zip = TorchZip.Read(path, handle, length);
                plan = Plan(path, handle, zip);
            }
        }

        Dictionary<string, Planned> byName = plan.ToDictionary(p => p.Info.Name, StringComparer.Ordinal);
        return new TensorFile(path, plan.Select(p => p.Info), new Dictionary<string, string>(), info =>
        {
            using SafeFileHandle handle = FileAccessor.Reopen(path, length);
            return zip is null ? ReadLegacy(path, handle, byName[info.Name]) : ReadTensor(zip, handle, byName[info.Name]);
        });
    }

    private static List<Planned> PlanLegacy(string path, SafeFileHandle handle, long length)
    {
        (object? root, Dictionary<string, TorchLegacy.Storage> storages) = TorchLegacy.Read(path, handle, length, MaxPickleBytes);
        return PlanStateDict(path, root, (name, t) =>
        {
            // TorchLegacy.Read has matched every persistent id with a listed storage and its element count.
            TorchLegacy.Storage s = storages[t.Storage.Key];
            return Validate(path, name, t, new Located(null, s.DataOffset, s.Ref.Numel * s.Ref.Type.ElementSize, $"storage '{TensorFile.Printable(s.Ref.Key)}'"));
        });
    }

    private static List<Planned> Plan(string path, SafeFileHandle handle, TorchZip zip)
    {
        TorchZip.Entry[] pickles = zip.Entries
            .Where(e => e.Name.EndsWith("/data.pkl", StringComparison.Ordinal) && e.Name.Count(c => c == '/') == 1)
            .ToArray();
        if (pickles.Length != 1)
        {
            throw new DitCacheException(
                $"{path}: zip holds {pickles.Length} '<name>/data.pkl' entries (expected 1), so it is not a torch.save checkpoint; {ResaveHint}");
        }

        string prefix = pickles[0].Name[..^"data.pkl".Length];
        if (zip.Find(prefix + "constants.pkl") is not null)
        {
            throw new DitCacheException(
                $"{path}: this is a TorchScript archive (torch.jit.save), not a state_dict; in Python, {ResaveHint}");
        }

        // Every entry that is not tensor storage is small (version, byteorder, serialization id): read each once,
        // so a damaged one fails its CRC here rather than going unnoticed.
        byte[]? pickle = null;
        foreach (TorchZip.Entry e in zip.Entries)
        {
            if (e.Name.StartsWith(prefix + "data/", StringComparison.Ordinal))
            {
                continue;
            }

            byte[] bytes = zip.ReadAll(handle, e, MaxPickleBytes);
            if (e.Name == pickles[0].Name)
            {
                pickle = bytes;
            }
            else if (e.Name == prefix + "byteorder")
            {
                string text = Encoding.ASCII.GetString(bytes.AsSpan(0, Math.Min(bytes.Length, 16))).Trim();
                if (text != "little")
                {
                    throw new DitCacheException(
                        $"{path}: {TensorFile.Printable(e.Name)} says '{TensorFile.Printable(text)}' (expected 'little'); {ResaveHint} on a little-endian machine");
                }
            }
        }

        object? root = TorchPickle.Load(path, pickle!);
        return PlanStateDict(path, root, (name, t) =>
        {
            TorchZip.Entry entry = zip.Find(prefix + "data/" + t.Storage.Key) ?? throw new DitCacheException(
                $"{Where(path, name, t)}: the archive has no entry '{TensorFile.Printable(prefix + "data/" + t.Storage.Key)}'; the file is incomplete, {ResaveHint}");
            return Validate(path, name, t, new Located(entry, 0, entry.Size, $"entry '{TensorFile.Printable(entry.Name)}'"));
        });
    }

    /// <summary>Selects the state_dict of <paramref name="root"/> and plans each of its tensors with <paramref name="validate"/>.</summary>
    private static List<Planned> PlanStateDict(string path, object? root, Func<string, TorchPickle.TensorRef, Planned> validate)
    {
        (TorchPickle.PickleDict stateDict, string under) = Select(path, root);

        var plan = new List<Planned>(stateDict.Items.Count);
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

            if (IsBatchNormCounter(name, t))
            {
                continue;
            }

            plan.Add(validate(name, t));
        }

        return plan;
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

    private static string Where(string path, string name, TorchPickle.TensorRef t)
    {
        TorchPickle.StorageRef s = t.Storage;
        string view = s.ViewNumel >= 0 ? $", view [{s.ViewOffset}, +{s.ViewNumel})" : "";
        return $"{path}: tensor '{TensorFile.Printable(name)}' (storage '{TensorFile.Printable(s.Key)}' of {s.Numel} elements{view}, offset {t.Offset}, size {FormatLongs(t.Size)}, stride {FormatLongs(t.Stride)})";
    }

    /// <summary>
    /// Checks one tensor against its storage with overflow-free arithmetic; reads nothing. <paramref name="at"/> is
    /// where the storage's bytes are: a zip entry, or a legacy file offset.
    /// </summary>
    private static Planned Validate(string path, string name, TorchPickle.TensorRef t, Located at)
    {
        TorchPickle.StorageRef s = t.Storage;
        string shown = TensorFile.Printable(name);
        StoredDType dtype = s.Type.DType ?? throw new DitCacheException(
            $"{path}: tensor '{shown}' is stored as {s.Type.Name}, which DitCache does not read (expected float32, float16 or bfloat16); " +
            "convert or drop it in Python, e.g. {k: v.float() for k, v in sd.items()}, and save again");
        string where = Where(path, name, t);

        if (t.Size.Length > 6 || t.Stride.Length != t.Size.Length)
        {
            throw new DitCacheException($"{where}: needs rank 0..6 with one stride per dimension; the file is corrupt, {ResaveHint}");
        }

        if (t.Offset < 0 || s.Numel < 0 || t.Size.Any(d => d < 0 || d > int.MaxValue) || t.Stride.Any(d => d < 0))
        {
            throw new DitCacheException($"{where}: has a negative or oversized offset, numel, size or stride; the file is corrupt, {ResaveHint}");
        }

        int size1 = DTypeConvert.Size(dtype);
        if (s.Numel > at.Bytes / size1 || s.Numel * size1 != at.Bytes)
        {
            throw new DitCacheException(
                $"{where}: the storage declares {s.Numel} × {size1}-byte elements but its {at.Name} has {at.Bytes} bytes; the file is truncated or corrupt, {ResaveHint}");
        }

        // A legacy storage view is elements [ViewOffset, +ViewNumel) of its root (checked inside it by TorchPickle);
        // the tensor's offset counts from the view's start and it may not reach past the view's end.
        long numel = s.ViewNumel >= 0 ? s.ViewNumel : s.Numel;
        long viewStart = s.ViewNumel >= 0 ? s.ViewOffset : 0;

        // extent = 1 + Σ (size_d − 1)·stride_d: the elements the view spans in its storage; count = Π size_d.
        int[] shape = t.Size.Select(d => (int)d).ToArray();
        var info = new TensorEntry(name, dtype, shape);
        if (t.Size.Contains(0))
        {
            return new Planned(info, at, t, 0, 0, 0, Contiguous: true);
        }

        // Int128 holds every partial sum and product below exactly (sizes < 2^31, strides < 2^63, rank <= 6, and
        // the product is compared with the storage after each factor).
        Int128 extent = 1;
        for (int d = 0; d < t.Size.Length; d++)
        {
            extent += (Int128)(t.Size[d] - 1) * t.Stride[d];
        }

        if (t.Offset + extent > numel)
        {
            throw new DitCacheException(
                $"{where}: reaches element {t.Offset + extent} but its storage holds {numel}; the file is corrupt, {ResaveHint}");
        }

        Int128 count = 1;
        foreach (long n in t.Size)
        {
            count *= n;
            if (count > numel)
            {
                throw new DitCacheException(
                    $"{where}: has more elements than its storage holds (a broadcast view such as expand() is not read); " +
                    "save contiguous copies in Python, {k: v.contiguous() for k, v in sd.items()}, and load that");
            }
        }

        if (count > Array.MaxLength || extent > Array.MaxLength)
        {
            throw new DitCacheException($"{where}: spans more elements than one float32 array can hold, which DitCache does not read");
        }

        return new Planned(info, at, t, viewStart + t.Offset, (long)count, (long)extent, IsContiguous(t.Size, t.Stride));
    }

    /// <summary>
    /// Streams the tensor's whole storage entry once (the CRC covers all of it), converting the elements in
    /// [offset, offset + extent) into the tensor (contiguous) or into a scratch array that is then gathered.
    /// </summary>
    private static Tensor ReadTensor(TorchZip zip, SafeFileHandle handle, Planned p)
    {
        StoredDType dtype = p.Info.DType;
        int size1 = DTypeConvert.Size(dtype);
        var values = new float[p.Count];
        TorchZip.Entry entry = p.At.Entry!;
        if (p.Count == 0)
        {
            zip.Stream(handle, entry, 0, 0, size1, (_, _) => { });
            return new Tensor(values, p.Info.Shape);
        }

        float[] target = p.Contiguous ? values : new float[p.Extent];
        long from = p.Start * size1;
        zip.Stream(handle, entry, from, from + (p.Extent * size1), size1, (position, bytes) =>
            DTypeConvert.ToFloat(bytes, dtype, target.AsSpan((int)(position / size1), bytes.Length / size1)));
        if (!p.Contiguous)
        {
            Gather(target, p.Ref.Size, p.Ref.Stride, values);
        }

        return new Tensor(values, p.Info.Shape);
    }

    /// <summary>
    /// Reads a legacy-format tensor: only the bytes of elements [start, start + extent) of its storage, in pieces of
    /// at most 1 MiB, converted into the tensor (contiguous) or into a scratch array that is then gathered.
    /// </summary>
    private static Tensor ReadLegacy(string path, SafeFileHandle handle, Planned p)
    {
        StoredDType dtype = p.Info.DType;
        int size1 = DTypeConvert.Size(dtype);
        var values = new float[p.Count];
        if (p.Count == 0)
        {
            return new Tensor(values, p.Info.Shape);
        }

        float[] target = p.Contiguous ? values : new float[p.Extent];
        long from = p.At.DataOffset + (p.Start * size1);
        long total = p.Extent * size1;
        byte[] buffer = new byte[(int)Math.Min(1 << 20, total)];
        for (long done = 0; done < total;)
        {
            int n = (int)Math.Min(buffer.Length, total - done);
            FileAccessor.ReadExactly(handle, path, from + done, buffer.AsSpan(0, n));
            DTypeConvert.ToFloat(buffer.AsSpan(0, n), dtype, target.AsSpan((int)(done / size1), n / size1));
            done += n;
        }

        if (!p.Contiguous)
        {
            Gather(target, p.Ref.Size, p.Ref.Stride, values);
        }

        return new Tensor(values, p.Info.Shape);
    }

    /// <summary>BatchNorm's int64 step counter: used only to train with momentum=None, never by a forward pass.</summary>
    private static bool IsBatchNormCounter(string name, TorchPickle.TensorRef t) =>
        t.Storage.Type.DType is null && t.Size.Length == 0
        && (name == "num_batches_tracked" || name.EndsWith(".num_batches_tracked", StringComparison.Ordinal));

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

    private static string Label(string under, string name) => TensorFile.Printable(
        under.Length == 0 ? name : name.Length == 0 ? $"'{under}'" : $"{under}.{name}");

    private static string FormatLongs(long[] values) => "[" + string.Join(", ", values) + "]";

    /// <summary>Where a storage's bytes are: a zip entry, or (legacy) a file offset; its size in bytes; a name for messages.</summary>
    private sealed record Located(TorchZip.Entry? Entry, long DataOffset, long Bytes, string Name);

    /// <summary>
    /// A validated tensor: where its storage is, the element of the storage it starts at (the view's start plus the
    /// tensor's offset), and how many elements it has and spans.
    /// </summary>
    private sealed record Planned(TensorEntry Info, Located At, TorchPickle.TensorRef Ref, long Start, long Count, long Extent, bool Contiguous);
}
