using System;
using System.IO;
using System.Linq;
using DitCache.Tensors;
using DitCache.Tensors.IO;
using Xunit;

namespace DitCache.Sampling.Tests;

/// <summary>
/// One golden safetensors file of tests/TestData/dit made by a tools/reference script: its tensors, and the cache
/// specs its metadata lists as <c>spec.&lt;prefix&gt;</c> (the key prefix of that spec's tensors).
/// </summary>
internal sealed class ParityFixture
{
    private readonly Lazy<TensorFile> _file;
    private readonly string _name, _script;

    public ParityFixture(string name, string script)
    {
        _name = name;
        _script = script;
        _file = new(() => SafeTensors.Load(PathOf(name)));
    }

    public static string PathOf(string name) => Path.Combine(AppContext.BaseDirectory, "TestData", "dit", name);

    public TensorFile File => _file.Value;

    public Tensor this[string key] =>
        File.Tensors.TryGetValue(key, out Tensor? t) ? t : throw new InvalidOperationException($"{key} is missing from {_name}; re-run {_script}");

    /// <summary>The key prefix of <paramref name="spec"/>, from its <c>spec.&lt;prefix&gt;</c> metadata.</summary>
    public string Prefix(string spec)
    {
        string[] keys = File.Metadata.Where(kv => kv.Key.StartsWith("spec.", StringComparison.Ordinal) && kv.Value == spec)
            .Select(kv => kv.Key["spec.".Length..]).ToArray();
        Assert.True(keys.Length == 1, $"'{spec}' is not in {_name}'s metadata; add it to SPECS in {_script}");
        return keys[0];
    }

    /// <summary>Every spec the file holds except <c>none</c>, sorted.</summary>
    public string[] CachedSpecs() => File.Metadata.Where(kv => kv.Key.StartsWith("spec.", StringComparison.Ordinal) && kv.Value != "none")
        .Select(kv => kv.Value).Order(StringComparer.Ordinal).ToArray();

    /// <summary>Theory rows (spec, effect bound) from a table.</summary>
    public static TheoryData<string, double> Rows((string Spec, double Bound)[] rows)
    {
        var data = new TheoryData<string, double>();
        foreach ((string spec, double bound) in rows)
        {
            data.Add(spec, bound);
        }

        return data;
    }

    /// <summary>‖actual − reference‖₂ / ‖reference‖₂ in double.</summary>
    public static double RelativeL2(ReadOnlySpan<float> reference, ReadOnlySpan<float> actual)
    {
        Assert.Equal(reference.Length, actual.Length);
        double num = 0, den = 0;
        for (int i = 0; i < reference.Length; i++)
        {
            double d = (double)actual[i] - reference[i];
            num += d * d;
            den += (double)reference[i] * reference[i];
        }

        Assert.True(den > 0, "reference is all zeros");
        return Math.Sqrt(num / den);
    }
}
