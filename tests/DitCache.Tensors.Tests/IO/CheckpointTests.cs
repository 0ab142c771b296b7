using System;
using System.Collections.Generic;
using DitCache.Tensors.IO;
using Xunit;

namespace DitCache.Tensors.Tests.IO;

/// <summary>Checkpoint.Load picks the reader from the first bytes, never the file name.</summary>
public class CheckpointTests
{
    [Fact]
    public void Load_ZipWithSafetensorsName_ReadsTorch()
    {
        using var dir = new TempDir();
        string path = dir.Write("misnamed.safetensors", System.IO.File.ReadAllBytes(IoFixtures.Path("plain_f32.pt")));
        TensorFile file = Checkpoint.Load(path);
        IoFixtures.AssertBitsEqual(IoFixtures.Golden["plain_f32/weight"], file.Tensors["weight"], "weight");
    }

    [Fact]
    public void Load_Safetensors_ReadsSafetensors()
    {
        TensorFile file = Checkpoint.Load(IoFixtures.Path("f16.safetensors"));
        IoFixtures.AssertBitsEqual(IoFixtures.Golden["f16.safetensors/w"], file.Tensors["w"], "w");
    }

    [Fact]
    public void Load_LegacyTorch_ReadsIt()
    {
        // torch.save({"w": torch.zeros(2)}, path, _use_new_zipfile_serialization=False) (make_io_fixtures.py).
        TensorFile file = Checkpoint.Load(IoFixtures.Path("legacy.pt"));
        Assert.Equal(["w"], file.Entries.Keys);
        Assert.Equal([0f, 0f], file.Read("w").Data);
    }

    [Theory]
    [InlineData(new byte[] { 1, 2, 3 }, "3 bytes is too short")]
    [InlineData(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G', 13, 10, 26, 10, 0, 0 }, "first bytes 89504E470D0A1A0A00 match no supported format")]
    public void Load_UnknownFormat_IsRefused(byte[] bytes, string problem)
    {
        using var dir = new TempDir();
        string path = dir.Write("x.bin", bytes);
        DitCacheException e = Assert.Throws<DitCacheException>(() => Checkpoint.Load(path));
        Assert.Contains(path, e.Message, StringComparison.Ordinal);
        Assert.Contains(problem, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_MissingFile_NamesPath()
    {
        using var dir = new TempDir();
        string path = dir.File("nope.pt");
        DitCacheException e = Assert.Throws<DitCacheException>(() => Checkpoint.Load(path));
        Assert.StartsWith(path + ": cannot open", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_SafetensorsRoundTrip_ThroughDispatch()
    {
        using var dir = new TempDir();
        string path = dir.File("rt.safetensors");
        SafeTensors.Save(path, new Dictionary<string, Tensor> { ["x"] = new Tensor([1f, -1f], 2) });
        Assert.Equal([1f, -1f], Checkpoint.Load(path).Tensors["x"].Data);
    }
}
