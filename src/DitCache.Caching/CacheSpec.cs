using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using DitCache.Tensors;

namespace DitCache.Caching;

/// <summary>
/// A parsed <c>--cache</c> spec: <c>name</c> or <c>name:key=value,key=value</c>. Options records read their knobs
/// with the typed getters, then call <see cref="RejectUnknownKeys"/> so a misspelt knob is an error, never ignored.
/// Every error is a <see cref="DitCacheException"/> with exit code 2 that quotes the spec and the fix.
/// </summary>
public sealed class CacheSpec
{
    private readonly Dictionary<string, string> _values;
    private readonly HashSet<string> _read = new(StringComparer.Ordinal);

    private CacheSpec(string text, string name, Dictionary<string, string> values)
    {
        Text = text;
        Name = name;
        _values = values;
    }

    /// <summary>The spec as the user wrote it.</summary>
    public string Text { get; }

    /// <summary>The accelerator name (lower case).</summary>
    public string Name { get; }

    /// <summary>Parses the grammar; throws on empty names, empty keys, missing '=' or duplicate keys.</summary>
    public static CacheSpec Parse(string text)
    {
        string trimmed = text.Trim();
        int colon = trimmed.IndexOf(':', StringComparison.Ordinal);
        string name = (colon < 0 ? trimmed : trimmed[..colon]).Trim().ToLowerInvariant();
        if (name.Length == 0)
        {
            throw Usage(text, "has no accelerator name; write e.g. 'none' or 'foca:n=5'");
        }

        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        if (colon >= 0)
        {
            foreach (string part in trimmed[(colon + 1)..].Split(','))
            {
                int eq = part.IndexOf('=', StringComparison.Ordinal);
                string key = (eq < 0 ? part : part[..eq]).Trim().ToLowerInvariant();
                if (eq < 0 || key.Length == 0)
                {
                    throw Usage(text, $"has '{part}' where key=value was expected (grammar: name:key=value,key=value)");
                }

                if (!values.TryAdd(key, part[(eq + 1)..].Trim()))
                {
                    throw Usage(text, $"sets '{key}' twice; give each knob once");
                }
            }
        }

        return new CacheSpec(text, name, values);
    }

    /// <summary>An integer knob in [<paramref name="min"/>, <paramref name="max"/>], or <paramref name="fallback"/> when absent.</summary>
    public int GetInt(string key, int fallback, int min = int.MinValue, int max = int.MaxValue)
    {
        if (!TryGetRaw(key, out string raw))
        {
            return fallback;
        }

        if (!int.TryParse(raw, NumberStyles.Integer, CultureInfo.InvariantCulture, out int value))
        {
            throw Usage(Text, $"sets {key}={raw}, which is not an integer");
        }

        if (value < min || value > max)
        {
            throw Usage(Text, $"sets {key}={value}, outside the allowed range {RangeText(min, max)}");
        }

        return value;
    }

    /// <summary>A real knob in [<paramref name="min"/>, <paramref name="max"/>], or <paramref name="fallback"/> when absent.</summary>
    public double GetDouble(string key, double fallback, double min = double.NegativeInfinity, double max = double.PositiveInfinity)
    {
        if (!TryGetRaw(key, out string raw))
        {
            return fallback;
        }

        if (!double.TryParse(raw, NumberStyles.Float, CultureInfo.InvariantCulture, out double value) || !double.IsFinite(value))
        {
            throw Usage(Text, $"sets {key}={raw}, which is not a finite number");
        }

        if (value < min || value > max)
        {
            throw Usage(Text, $"sets {key}={raw}, outside the allowed range [{min}, {max}]");
        }

        return value;
    }

    /// <summary>A knob whose value is one of <paramref name="choices"/>, or <paramref name="fallback"/> when absent.</summary>
    public string GetChoice(string key, string fallback, params string[] choices)
    {
        if (!TryGetRaw(key, out string raw))
        {
            return fallback;
        }

        string value = raw.ToLowerInvariant();
        if (!choices.Contains(value))
        {
            throw Usage(Text, $"sets {key}={raw}; expected one of {string.Join(", ", choices)}");
        }

        return value;
    }

    /// <summary>Whether the spec sets <paramref name="key"/> (counts as a known knob of this accelerator).</summary>
    public bool Has(string key) => TryGetRaw(key, out _);

    /// <summary>Throws when the spec holds a knob no getter asked for, listing the knobs this accelerator has.</summary>
    public void RejectUnknownKeys()
    {
        string[] unknown = _values.Keys.Where(k => !_read.Contains(k)).OrderBy(k => k, StringComparer.Ordinal).ToArray();
        if (unknown.Length > 0)
        {
            string known = _read.Count == 0 ? "none" : string.Join(", ", _read.OrderBy(k => k, StringComparer.Ordinal));
            throw Usage(Text, $"has unknown knob(s) {string.Join(", ", unknown)} for '{Name}'; its knobs are: {known} (see ditcache sample --help)");
        }
    }

    private bool TryGetRaw(string key, out string raw)
    {
        _read.Add(key);
        return _values.TryGetValue(key, out raw!);
    }

    private static string RangeText(int min, int max) =>
        max == int.MaxValue ? $">= {min}" : min == int.MinValue ? $"<= {max}" : $"[{min}, {max}]";

    private static DitCacheException Usage(string spec, string problem) =>
        new($"--cache '{spec}' {problem}", exitCode: 2);
}
