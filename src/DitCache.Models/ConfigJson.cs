using System;
using System.IO;
using System.Linq;
using System.Text.Json;
using DitCache.Tensors;

namespace DitCache.Models;

/// <summary>
/// A diffusers <c>config.json</c> (a transformer's, a VAE's) read for its typed values: the file read and parsed with
/// one clear error each, the root required to be an object, and every value checked for its kind, so a wrong value
/// names the file, the key, what it holds and what was expected. A key that is absent or <c>null</c> reads as null.
/// </summary>
internal sealed class ConfigJson : IDisposable
{
    private readonly JsonDocument _doc;

    private ConfigJson(JsonDocument doc, string source)
    {
        _doc = doc;
        Source = source;
    }

    /// <summary>The file (or name) the JSON came from, for messages.</summary>
    public string Source { get; }

    /// <summary>Reads <paramref name="path"/>; <paramref name="what"/> names the config in messages, e.g. "the VAE config".</summary>
    /// <exception cref="DitCacheException">The file cannot be read, is not JSON, or is not an object.</exception>
    public static ConfigJson Read(string path, string what)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            throw new DitCacheException($"{path}: cannot read {what} ({e.Message.TrimEnd('.')}); check the path, or download the config with the weights", e);
        }

        return Parse(bytes, path, what);
    }

    /// <summary>Parses <paramref name="json"/>; <paramref name="source"/> names it in messages.</summary>
    /// <exception cref="DitCacheException">Not JSON, or not an object.</exception>
    public static ConfigJson Parse(ReadOnlyMemory<byte> json, string source, string what)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json);
        }
        catch (JsonException e)
        {
            throw new DitCacheException($"{source}: not valid JSON ({e.Message.TrimEnd('.')}); expected {what}, download it again", e);
        }

        if (doc.RootElement.ValueKind != JsonValueKind.Object)
        {
            doc.Dispose();
            throw new DitCacheException($"{source}: the JSON is not an object; expected {what}");
        }

        return new ConfigJson(doc, source);
    }

    /// <summary>Whether <paramref name="key"/> is present and not null.</summary>
    public bool Has(string key) => Present(key, out _);

    /// <summary>The string at <paramref name="key"/>, or null.</summary>
    public string? String(string key) =>
        !Present(key, out JsonElement v) ? null
        : v.ValueKind == JsonValueKind.String ? v.GetString()
        : throw Wrong(key, v, "a string");

    /// <summary>The 32-bit integer at <paramref name="key"/>, or null.</summary>
    public int? Int(string key) =>
        !Present(key, out JsonElement v) ? null
        : v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int i) ? i
        : throw Wrong(key, v, "an integer");

    /// <summary>The number at <paramref name="key"/> as a float, or null.</summary>
    public float? Float(string key) =>
        !Present(key, out JsonElement v) ? null
        : v.ValueKind == JsonValueKind.Number && v.TryGetDouble(out double d) && float.IsFinite((float)d) ? (float)d
        : throw Wrong(key, v, "a finite number");

    /// <summary>The boolean at <paramref name="key"/>, or null.</summary>
    public bool? Bool(string key) =>
        !Present(key, out JsonElement v) ? null
        : v.ValueKind is JsonValueKind.True or JsonValueKind.False ? v.GetBoolean()
        : throw Wrong(key, v, "true or false");

    /// <summary>The list of integers at <paramref name="key"/>, or null.</summary>
    public int[]? IntArray(string key) =>
        !Present(key, out JsonElement v) ? null
        : v.ValueKind == JsonValueKind.Array
            ? [.. v.EnumerateArray().Select(e => e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out int i) ? i : throw Wrong(key, v, "a list of integers"))]
            : throw Wrong(key, v, "a list of integers");

    /// <summary>The list of strings at <paramref name="key"/>, or null.</summary>
    public string[]? StringArray(string key) =>
        !Present(key, out JsonElement v) ? null
        : v.ValueKind == JsonValueKind.Array
            ? [.. v.EnumerateArray().Select(e => e.ValueKind == JsonValueKind.String ? e.GetString()! : throw Wrong(key, v, "a list of strings"))]
            : throw Wrong(key, v, "a list of strings");

    /// <inheritdoc/>
    public void Dispose() => _doc.Dispose();

    private bool Present(string key, out JsonElement value) =>
        _doc.RootElement.TryGetProperty(key, out value) && value.ValueKind != JsonValueKind.Null;

    private DitCacheException Wrong(string key, JsonElement value, string expected)
    {
        string raw = value.GetRawText();
        return new DitCacheException($"{Source}: \"{key}\" is {(raw.Length > 60 ? raw[..60] + "…" : raw)}; expected {expected}");
    }
}
