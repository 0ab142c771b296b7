using System;
using System.Collections.Generic;
using System.Linq;
using System.Text;
using DitCache.Tensors.IO;
using Xunit;

namespace DitCache.Tensors.Tests.IO;

/// <summary>
/// The legacy (pre-1.6) torch.save format against PyTorch's own view of the same files (legacy_golden.safetensors,
/// from tools/reference/make_legacy_torch_fixtures.py), against the zip copy of the same state_dict, and damaged.
/// </summary>
public class LegacyTorchCheckpointTests
{
    private static readonly IReadOnlyDictionary<string, Tensor> s_golden =
        SafeTensors.Load(IoFixtures.Path("legacy_golden.safetensors")).Tensors;

    private static Dictionary<string, Tensor> GoldenOf(string fixture) => s_golden
        .Where(kv => kv.Key.StartsWith(fixture + "/", StringComparison.Ordinal))
        .ToDictionary(kv => kv.Key[(fixture.Length + 1)..], kv => kv.Value, StringComparer.Ordinal);

    private static readonly string[] s_sdKeys =
        ["fc.weight", "fc.weight_t", "shared.head", "shared.tail", "half", "half_t", "bf16", "bf16_strided", "scalar", "empty"];

    [Theory]
    [InlineData("legacy_sd")]
    [InlineData("legacy_sd_proto4")]
    [InlineData("legacy_sd_zip")]
    [InlineData("legacy_wrapped")]
    [InlineData("legacy_views")]
    [InlineData("legacy_one")]
    [InlineData("legacy_bn")]
    [InlineData("legacy_bn_zip")]
    public void Load_MatchesTorchExactly(string fixture)
    {
        string path = IoFixtures.Path(fixture + ".pt");
        Dictionary<string, Tensor> golden = GoldenOf(fixture);
        Assert.NotEmpty(golden);
        foreach (TensorFile file in new[] { TorchCheckpoint.Load(path), Checkpoint.Load(path) })
        {
            Assert.Equal(path, file.Source);
            Assert.Equal(golden.Keys.Order(), file.Entries.Keys.Order());
            foreach ((string name, Tensor expected) in golden)
            {
                Assert.True(expected.HasShape(file.Entries[name].Shape), name);
                IoFixtures.AssertBitsEqual(expected, file.Read(name), name);
            }
        }
    }

    [Theory]
    [InlineData("legacy_sd")]
    [InlineData("legacy_sd_proto4")]
    [InlineData("legacy_wrapped")]
    public void Load_LegacyEqualsZip(string fixture)
    {
        TensorFile zip = TorchCheckpoint.Load(IoFixtures.Path("legacy_sd_zip.pt"));
        TensorFile legacy = TorchCheckpoint.Load(IoFixtures.Path(fixture + ".pt"));
        Assert.Equal(s_sdKeys.Order(), zip.Entries.Keys.Order());
        Assert.Equal(zip.Entries.Keys, legacy.Entries.Keys);   // file order too
        foreach (string name in s_sdKeys)
        {
            Assert.Equal(zip.Entries[name].DType, legacy.Entries[name].DType);
            IoFixtures.AssertBitsEqual(zip.Read(name), legacy.Read(name), name);
        }

        Assert.Equal(StoredDType.F32, legacy.Entries["fc.weight"].DType);
        Assert.Equal(StoredDType.F16, legacy.Entries["half_t"].DType);
        Assert.Equal(StoredDType.BF16, legacy.Entries["bf16_strided"].DType);
        Assert.Empty(legacy.Entries["scalar"].Shape);
        Assert.Equal([0, 4], legacy.Entries["empty"].Shape);
    }

    [Theory]
    [InlineData("legacy_bn")]
    [InlineData("legacy_bn_zip")]
    public void Load_BatchNorm_LeavesOutItsCounter(string fixture)
    {
        // The legacy file holds the int64 counter's storage (8-byte elements) among the float ones: it is stepped
        // over, and the tensor is not an entry.
        TensorFile file = TorchCheckpoint.Load(IoFixtures.Path(fixture + ".pt"));
        Assert.Equal(["weight", "bias", "running_mean", "running_var"], file.Entries.Keys);
        Assert.All(file.Entries.Values, e => Assert.Equal([3], e.Shape));
    }

    [Fact]
    public void Load_CounterThatIsNotZeroD_IsRefused()
    {
        string path = IoFixtures.Path("legacy_counter_1d.pt");
        DitCacheException e = Assert.Throws<DitCacheException>(() => TorchCheckpoint.Load(path));
        Assert.StartsWith(path + ": tensor 'bn.num_batches_tracked' is stored as torch.LongStorage", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_Views_ReadTheirSliceOfTheRoot()
    {
        // Root storage: 0.5·i − 1 for i in 0..11 (written by hand in the fixture script); checked here without the golden.
        TensorFile file = TorchCheckpoint.Load(IoFixtures.Path("legacy_views.pt"));
        Assert.Equal([0.5f, 1f, 1.5f, 2f], file.Read("in_view_a").Data);
        Assert.Equal(Enumerable.Range(5, 7).Select(i => (0.5f * i) - 1f).ToArray(), file.Read("in_view_b").Data);
        Assert.Equal([2f, 3.5f, 2.5f, 4f, 3f, 4.5f], file.Read("in_view_b_t").Data);
    }

    [Fact]
    public void Load_ReadsTensorBytesOnlyWhenAsked()
    {
        // Change the storage bytes (same length) after Load: the values read afterwards are the new ones.
        using var dir = new TempDir();
        byte[] bytes = System.IO.File.ReadAllBytes(IoFixtures.Path("legacy_one.pt"));
        string path = dir.Write("one.pt", bytes);
        TensorFile file = TorchCheckpoint.Load(path);
        Assert.Equal([5], file.Entries["w"].Shape);
        BitConverter.GetBytes(42.5f).CopyTo(bytes, bytes.Length - 4);
        System.IO.File.WriteAllBytes(path, bytes);
        Assert.Equal([0.25f, 1.25f, 2.25f, 3.25f, 42.5f], file.Read("w").Data);
    }

    public static TheoryData<int> TruncationPoints()
    {
        int length = System.IO.File.ReadAllBytes(IoFixtures.Path("legacy_one.pt")).Length;
        var data = new TheoryData<int>();
        foreach (int n in new[] { 1, 2, 5, 14, 15, 16, 20, 100, 137, 140, 200, 255, 300, 306, 307, 320, length - 29, length - 28, length - 24, length - 20, length - 10, length - 1 })
        {
            data.Add(n);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(TruncationPoints))]
    public void Load_Truncated_OneLineError(int keep)
    {
        byte[] bytes = System.IO.File.ReadAllBytes(IoFixtures.Path("legacy_one.pt"));
        AssertRefused(bytes[..keep], "truncated");
    }

    [Fact]
    public void Load_EveryTruncation_IsRefusedCleanly()
    {
        byte[] bytes = System.IO.File.ReadAllBytes(IoFixtures.Path("legacy_sd.pt"));
        using var dir = new TempDir();
        for (int keep = 1; keep < bytes.Length; keep++)
        {
            string path = dir.Write("cut.pt", bytes[..keep]);
            DitCacheException e = Assert.Throws<DitCacheException>(() => TorchCheckpoint.Load(path));
            Assert.StartsWith(path + ": ", e.Message, StringComparison.Ordinal);
            Assert.DoesNotContain('\n', e.Message);
            Assert.Contains("truncated", e.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Load_FlippedMagic_NamesTheMagicNumber()
    {
        byte[] bytes = System.IO.File.ReadAllBytes(IoFixtures.Path("legacy_one.pt"));
        bytes[6] ^= 0x01;   // inside the 10-byte LONG1 of 0x1950a86a20f9469cfc6c
        AssertRefused(bytes, "not torch.save's magic number 0x1950a86a20f9469cfc6c");
    }

    [Fact]
    public void Load_WrongProtocolVersion_IsRefused()
    {
        byte[] bytes = System.IO.File.ReadAllBytes(IoFixtures.Path("legacy_one.pt"));
        int at = IndexOf(bytes, [0x4d, 0xe9, 0x03, 0x2e]);   // BININT2 1001, STOP
        bytes[at + 1] = 0xea;
        AssertRefused(bytes, "protocol version is 1002, expected 1001");
    }

    [Fact]
    public void Load_BigEndian_IsRefused()
    {
        byte[] bytes = System.IO.File.ReadAllBytes(IoFixtures.Path("legacy_one.pt"));
        int at = IndexOf(bytes, [.. "little_endianq\u0002"u8, 0x88]);   // ... BINPUT 2, NEWTRUE
        bytes[at + 15] = 0x89;                                           // NEWFALSE
        AssertRefused(bytes, "big-endian");
    }

    [Theory]
    [InlineData(4L)]
    [InlineData(6L)]
    [InlineData(-1L)]
    [InlineData(long.MaxValue)]
    public void Load_WrongStorageCount_IsRefused(long count)
    {
        byte[] bytes = System.IO.File.ReadAllBytes(IoFixtures.Path("legacy_one.pt"));
        BitConverter.GetBytes(count).CopyTo(bytes, bytes.Length - 28);   // 8-byte count, then 5 float32
        AssertRefused(bytes, $"holds {count} elements, but the pickle declares 5 (torch.FloatStorage)");
    }

    [Fact]
    public void Load_TensorOutsideStorage_IsRefused()
    {
        byte[] bytes = System.IO.File.ReadAllBytes(IoFixtures.Path("legacy_one.pt"));
        int at = IndexOf(bytes, [0x4b, 0x05, 0x85]);   // size (5,): BININT1 5, TUPLE1
        bytes[at + 1] = 6;
        AssertRefused(bytes, "reaches element 6 but its storage holds 5");
    }

    [Fact]
    public void Load_TrailingBytes_AreRefused()
    {
        byte[] bytes = [.. System.IO.File.ReadAllBytes(IoFixtures.Path("legacy_one.pt")), 0];
        AssertRefused(bytes, "has 1 bytes after its last storage");
    }

    [Fact]
    public void Load_StorageMissingFromKeyList_IsRefused()
    {
        // Change the first character of the key in the storage key list pickle: the list then names a storage no
        // persistent id declares (and the declared one is not in the list).
        byte[] bytes = System.IO.File.ReadAllBytes(IoFixtures.Path("legacy_one.pt"));
        int list = IndexOf(bytes, [0x80, 0x02, 0x5d, 0x71, 0x00, 0x58]);   // PROTO 2, EMPTY_LIST, BINPUT 0, BINUNICODE
        bytes[list + 10] ^= 0x01;
        AssertRefused(bytes, "which no persistent id declares");
    }

    private static void AssertRefused(byte[] bytes, string problem)
    {
        using var dir = new TempDir();
        string path = dir.Write("bad.pt", bytes);
        DitCacheException e = Assert.Throws<DitCacheException>(() => TorchCheckpoint.Load(path));
        Assert.StartsWith(path + ": ", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', e.Message);
        Assert.Contains(problem, e.Message, StringComparison.Ordinal);
    }

    private static int IndexOf(byte[] haystack, byte[] needle)
    {
        int at = haystack.AsSpan().IndexOf(needle);
        Assert.True(at >= 0, $"pattern {Convert.ToHexString(needle)} not in the fixture");
        Assert.Equal(-1, haystack.AsSpan(at + 1).IndexOf(needle));   // unique
        return at;
    }
}
