using System;
using System.Collections.Generic;
using System.IO;
using System.IO.Compression;
using System.Linq;
using DitCache.Tensors.IO;
using Xunit;

namespace DitCache.Tensors.Tests.IO;

/// <summary>Paths of the fixtures from tools/reference/make_io_fixtures.py, a scratch directory, and comparisons.</summary>
internal static class IoFixtures
{
    public static string Path(string name) => System.IO.Path.Combine(AppContext.BaseDirectory, "TestData", "io", name);

    /// <summary>PyTorch's own float32 view of every fixture tensor, keyed "&lt;fixture&gt;/&lt;name&gt;".</summary>
    public static IReadOnlyDictionary<string, Tensor> Golden { get; } = SafeTensors.Load(Path("torch_golden.safetensors")).Tensors;

    /// <summary>The golden tensors of one fixture, keyed by tensor name.</summary>
    public static Dictionary<string, Tensor> GoldenOf(string fixture) => Golden
        .Where(kv => kv.Key.StartsWith(fixture + "/", StringComparison.Ordinal))
        .ToDictionary(kv => kv.Key[(fixture.Length + 1)..], kv => kv.Value, StringComparer.Ordinal);

    /// <summary>Same shape and the same float32 bits (any NaN equals any NaN).</summary>
    public static void AssertBitsEqual(Tensor expected, Tensor actual, string name)
    {
        Assert.True(expected.HasShape(actual.Shape), $"{name}: shape {actual.ShapeText}, expected {expected.ShapeText}");
        for (int i = 0; i < expected.Length; i++)
        {
            float e = expected.Data[i];
            float a = actual.Data[i];
            bool same = float.IsNaN(e) ? float.IsNaN(a) : BitConverter.SingleToUInt32Bits(e) == BitConverter.SingleToUInt32Bits(a);
            Assert.True(same, $"{name}[{i}]: {a}, expected {e}");
        }
    }

    /// <summary>A zip shaped like torch.save output ("archive/...", stored entries) holding the given entries.</summary>
    public static byte[] Zip(IEnumerable<KeyValuePair<string, byte[]>> entries)
    {
        using var ms = new MemoryStream();
        using (var zip = new ZipArchive(ms, ZipArchiveMode.Create, leaveOpen: true))
        {
            foreach ((string name, byte[] data) in entries)
            {
                using Stream s = zip.CreateEntry(name, CompressionLevel.NoCompression).Open();
                s.Write(data);
            }
        }

        return ms.ToArray();
    }

    /// <summary>Every entry of a zip file, in order.</summary>
    public static List<KeyValuePair<string, byte[]>> Entries(string path)
    {
        using ZipArchive zip = ZipFile.OpenRead(path);
        var result = new List<KeyValuePair<string, byte[]>>();
        foreach (ZipArchiveEntry e in zip.Entries)
        {
            using var ms = new MemoryStream();
            using (Stream s = e.Open())
            {
                s.CopyTo(ms);
            }

            result.Add(new(e.FullName, ms.ToArray()));
        }

        return result;
    }
}

/// <summary>A temporary directory removed after the test.</summary>
internal sealed class TempDir : IDisposable
{
    public TempDir()
    {
        Dir = Directory.CreateTempSubdirectory("ditcache-io-").FullName;
    }

    public string Dir { get; }

    public string File(string name) => Path.Combine(Dir, name);

    public string Write(string name, byte[] bytes)
    {
        string path = File(name);
        System.IO.File.WriteAllBytes(path, bytes);
        return path;
    }

    public void Dispose() => Directory.Delete(Dir, recursive: true);
}
