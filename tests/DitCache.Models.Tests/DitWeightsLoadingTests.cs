using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.RegularExpressions;
using DitCache.Tensors;
using DitCache.Tensors.IO;
using Xunit;
using Xunit.Sdk;

namespace DitCache.Models.Tests;

/// <summary>
/// DitWeights decides keys and shapes from the file's header before it reads any tensor (issue 16 item 3), and a
/// mutated DiT checkpoint ends in a model or a DitCacheException, never an internal error.
/// </summary>
public sealed class DitWeightsLoadingTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("ditcache-weights-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void UnexpectedKey_IsRefusedBeforeAnyTensorIsRead()
    {
        // The file is deleted after its header is read: a refusal that needed any tensor would fail to open it.
        TensorFile file = WriteThenDelete(t => t["extra.big"] = Tensor.Zeros(1 << 20));
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<DitCacheException>(() => DitWeights.FromFile(file));
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Contains("unexpected tensor(s) extra.big", e.Message, StringComparison.Ordinal);
        Assert.True(allocated < 256 << 10, $"refusing allocated {allocated} bytes");
    }

    [Fact]
    public void WrongShape_IsRefusedBeforeAnyTensorIsRead()
    {
        TensorFile file = WriteThenDelete(t => t["blocks.1.mlp.fc2.weight"] = Tensor.Zeros(64, 255));
        var e = Assert.Throws<DitCacheException>(() => DitWeights.FromFile(file));
        Assert.Contains("tensor 'blocks.1.mlp.fc2.weight' has shape [64, 255]; expected [64, 256]", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Loading_HoldsOneCopyOfTheWeights()
    {
        string path = Path.Combine(_dir, "tiny.safetensors");
        File.Copy(Golden.PathOf("tiny_dit.safetensors"), path);
        long floats = 4 * Golden.Weights.Entries.Values.Sum(e => e.Shape.Aggregate(1L, (a, d) => a * d));
        long before = GC.GetAllocatedBytesForCurrentThread();
        DitWeights w = DitWeights.FromFile(Checkpoint.Load(path));
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(2, w.Config.Depth);
        Assert.True(allocated < floats + (256 << 10), $"loading {floats} bytes of float32 weights allocated {allocated}");
    }

    [Fact]
    public void MutatedCheckpoint_GivesAModelOrACleanError()
    {
        byte[] good = File.ReadAllBytes(Golden.PathOf("tiny_dit.safetensors"));
        int n = (int)BinaryPrimitives.ReadUInt64LittleEndian(good);
        string json = Encoding.UTF8.GetString(good, 8, n);
        byte[] data = good[(8 + n)..];
        var cases = new List<(string, byte[])>();
        foreach (Match m in Regex.Matches(json, "[0-9]+").Where((_, i) => i % 2 == 0))
        {
            long v = long.Parse(m.Value, CultureInfo.InvariantCulture);
            foreach (string lie in new[] { "-1", (v + 1).ToString(CultureInfo.InvariantCulture), "9223372036854775807" })
            {
                byte[] h = Encoding.UTF8.GetBytes((json[..m.Index] + lie + json[(m.Index + m.Length)..]).TrimEnd());
                byte[] b = new byte[8 + h.Length + data.Length];
                BinaryPrimitives.WriteUInt64LittleEndian(b, (ulong)h.Length);
                h.CopyTo(b, 8);
                data.CopyTo(b, 8 + h.Length);
                cases.Add(($"JSON integer {m.Value} at {m.Index} := {lie}", b));
            }
        }

        foreach (int delta in new[] { -8, -1, 1, 8 })
        {
            byte[] b = (byte[])good.Clone();
            BinaryPrimitives.WriteUInt64LittleEndian(b, (ulong)(n + delta));
            cases.Add(($"header length {n + delta}", b));
        }

        int built = 0;
        foreach ((string what, byte[] bytes) in cases)
        {
            try
            {
                DitWeights.FromFile(SafeTensors.Load(bytes, "mutated.safetensors"));
                built++;
            }
            catch (DitCacheException e)
            {
                Assert.False(e.Message.Contains('\n', StringComparison.Ordinal), $"{what}: {e.Message}");
            }
            catch (Exception e) when (e is not XunitException)
            {
                throw new XunitException($"{what}: internal error {e.GetType().Name}: {e.Message}");
            }
        }

        Assert.True(cases.Count > 150 && built < cases.Count, $"{built} of {cases.Count} mutated files built a model");
    }

    private TensorFile WriteThenDelete(Action<Dictionary<string, Tensor>> change)
    {
        var tensors = Golden.Weights.Tensors.ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);
        change(tensors);
        string path = Path.Combine(_dir, "edited.safetensors");
        SafeTensors.Save(path, tensors, Golden.Weights.Metadata.ToDictionary());
        TensorFile file = SafeTensors.Load(path);
        File.Delete(path);
        return file;
    }
}
