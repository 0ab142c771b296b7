using System;
using System.Collections;
using System.Collections.Generic;
using System.Diagnostics.CodeAnalysis;
using System.Linq;
using System.Text;

namespace DitCache.Tensors.IO;

/// <summary>The element types a checkpoint may store; every one is converted to float32 at load.</summary>
public enum StoredDType
{
    /// <summary>IEEE float32.</summary>
    F32,

    /// <summary>IEEE float16.</summary>
    F16,

    /// <summary>bfloat16 (the upper half of a float32).</summary>
    BF16,
}

/// <summary>One tensor as the file's header describes it; its values are not read.</summary>
/// <param name="Name">The key, e.g. <c>blocks.0.attn.qkv.weight</c>.</param>
/// <param name="DType">The stored element type.</param>
/// <param name="Shape">The shape (validated against the bytes the file holds for it).</param>
public sealed record TensorEntry(string Name, StoredDType DType, int[] Shape)
{
    /// <summary>The rank.</summary>
    public int Rank => Shape.Length;

    /// <summary>The shape as text, e.g. <c>[2, 3]</c>.</summary>
    public string ShapeText => Tensor.FormatShape(Shape);

    /// <summary>Whether the shape is exactly <paramref name="shape"/>.</summary>
    public bool HasShape(params int[] shape) => Shape.AsSpan().SequenceEqual(shape);
}

/// <summary>
/// A checkpoint file: its string metadata, a description of every tensor (<see cref="Entries"/>: name, stored dtype,
/// shape), and the tensors' values, read from the file only when asked for. A reader validates the whole header
/// (names, dtypes, shapes, where the bytes are) when it opens the file, so a consumer can refuse unexpected keys
/// and wrong shapes from <see cref="Entries"/> before any tensor is read; <see cref="Read"/> then reads one tensor,
/// converted to float32. The file must not change while it is in use (a change of length is detected).
/// </summary>
public sealed class TensorFile
{
    private readonly Func<TensorEntry, Tensor> _read;
    private readonly Dictionary<string, TensorEntry> _entries;

    /// <summary>A file whose tensors are already in memory (tests, generated weights).</summary>
    /// <param name="source">A name for messages.</param>
    /// <param name="tensors">The tensors.</param>
    /// <param name="metadata">String metadata.</param>
    /// <param name="sourceDTypes">The stored dtype of each tensor (F32 where absent).</param>
    public TensorFile(string source, IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string> metadata,
        IReadOnlyDictionary<string, StoredDType> sourceDTypes)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        ArgumentNullException.ThrowIfNull(sourceDTypes);
        var held = new Dictionary<string, Tensor>(tensors, StringComparer.Ordinal);
        Source = source;
        Metadata = metadata;
        _entries = held.ToDictionary(kv => kv.Key,
            kv => new TensorEntry(kv.Key, sourceDTypes.GetValueOrDefault(kv.Key, StoredDType.F32), kv.Value.Shape), StringComparer.Ordinal);
        _read = e => held[e.Name];
        Tensors = new LazyTensors(this);
    }

    /// <summary>This file's name and metadata with <paramref name="tensors"/> in place of its tensors (tests, renamed weights).</summary>
    public TensorFile WithTensors(IReadOnlyDictionary<string, Tensor> tensors) =>
        new(Source, tensors, Metadata, SourceDTypes);

    /// <summary>A file read by a format reader: <paramref name="read"/> reads one described tensor.</summary>
    internal TensorFile(string source, IEnumerable<TensorEntry> entries, IReadOnlyDictionary<string, string> metadata, Func<TensorEntry, Tensor> read)
    {
        Source = source;
        Metadata = metadata;
        _entries = entries.ToDictionary(e => e.Name, StringComparer.Ordinal);
        _read = read;
        Tensors = new LazyTensors(this);
    }

    /// <summary>The file path (or another name for messages), e.g. <c>models/fmnist-dit.safetensors</c>.</summary>
    public string Source { get; }

    /// <summary>safetensors <c>__metadata__</c>; empty for formats without it.</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Every tensor's name, stored dtype and shape, in file order; reading these reads no tensor data.</summary>
    public IReadOnlyDictionary<string, TensorEntry> Entries => _entries;

    /// <summary>The stored dtype of each tensor.</summary>
    public IReadOnlyDictionary<string, StoredDType> SourceDTypes => _entries.ToDictionary(kv => kv.Key, kv => kv.Value.DType, StringComparer.Ordinal);

    /// <summary>
    /// The tensors as float32, each read at its first access and kept (iterating reads them all). A consumer that
    /// validates first and wants one copy of the weights uses <see cref="Entries"/> and <see cref="Read"/> instead.
    /// </summary>
    public IReadOnlyDictionary<string, Tensor> Tensors { get; }

    /// <summary>Reads tensor <paramref name="name"/> from the file now (a new array each call), converted to float32.</summary>
    /// <exception cref="DitCacheException">The file has no such tensor, or its bytes cannot be read or fail a check.</exception>
    public Tensor Read(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (!_entries.TryGetValue(name, out TensorEntry? entry))
        {
            string held = string.Join(", ", _entries.Keys.Take(5).Select(Printable)) + (_entries.Count > 5 ? $" and {_entries.Count - 5} more" : "");
            throw new DitCacheException(
                $"{Source}: has no tensor '{Printable(name)}' (it holds {(_entries.Count == 0 ? "none" : held)}); pass a file written for this purpose");
        }

        return _read(entry);
    }

    /// <summary>
    /// <paramref name="name"/> as it may appear inside a one-line message: control, format and separator characters
    /// written as <c>\uXXXX</c>, cut to 120 characters.
    /// </summary>
    public static string Printable(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        const int Max = 120;
        var sb = new StringBuilder(Math.Min(name.Length, Max) + 8);
        foreach (char c in name)
        {
            if (sb.Length >= Max)
            {
                sb.Append('…');
                break;
            }

            if (char.IsControl(c) || char.IsSurrogate(c) || char.GetUnicodeCategory(c) is
                System.Globalization.UnicodeCategory.Format or System.Globalization.UnicodeCategory.LineSeparator or System.Globalization.UnicodeCategory.ParagraphSeparator)
            {
                sb.Append($"\\u{(int)c:x4}");
            }
            else
            {
                sb.Append(c);
            }
        }

        return sb.ToString();
    }

    /// <summary>The <see cref="Tensors"/> view: keys from the header, values read on first access and kept.</summary>
    private sealed class LazyTensors(TensorFile file) : IReadOnlyDictionary<string, Tensor>
    {
        private readonly Dictionary<string, Tensor> _read = new(StringComparer.Ordinal);
        private readonly object _lock = new();

        public Tensor this[string key] => TryGetValue(key, out Tensor? t) ? t : file.Read(key);

        public IEnumerable<string> Keys => file._entries.Keys;

        public IEnumerable<Tensor> Values => Keys.Select(k => this[k]);

        public int Count => file._entries.Count;

        public bool ContainsKey(string key) => file._entries.ContainsKey(key);

        public bool TryGetValue(string key, [MaybeNullWhen(false)] out Tensor value)
        {
            ArgumentNullException.ThrowIfNull(key);
            if (!file._entries.ContainsKey(key))
            {
                value = null;
                return false;
            }

            lock (_lock)
            {
                if (!_read.TryGetValue(key, out value))
                {
                    value = file.Read(key);
                    _read[key] = value;
                }
            }

            return true;
        }

        public IEnumerator<KeyValuePair<string, Tensor>> GetEnumerator() =>
            Keys.Select(k => new KeyValuePair<string, Tensor>(k, this[k])).GetEnumerator();

        IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
    }
}
