using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.IO;
using System.Text;
using DitCache.Tensors.IO;
using Xunit;

namespace DitCache.Tensors.Tests.IO;

/// <summary>
/// One test per class of hostile safetensors input (issue 16): each must end in a one-line DitCacheException that
/// names the file, never in an internal exception or a large allocation.
/// </summary>
public class HostileSafeTensorsTests
{
    private const string Source = "hostile.safetensors";

    [Theory]
    [InlineData("[2147483647,2147483647,2147483647,2147483647,2147483647,2147483647]", "needs more than 9223372036854775807 bytes")]
    [InlineData("[4294967296]", "dimension 4294967296 is larger than 2147483647")]
    [InlineData("[65536,65536]", "needs 17179869184 bytes but data_offsets [0, 8] span 8")]
    [InlineData("[-1]", "shape entry -1 is not a non-negative 64-bit integer")]
    [InlineData("[1e3]", "shape entry 1e3 is not a non-negative 64-bit integer")]
    [InlineData("[18446744073709551616]", "shape entry 18446744073709551616 is not a non-negative 64-bit integer")]
    [InlineData("[1,1,1,1,1,1,1]", "shape has 7 entries")]
    public void Shape_Lies_AreRefused(string shape, string problem)
    {
        AssertRefused(Header($"{{\"w\":{{\"dtype\":\"F32\",\"shape\":{shape},\"data_offsets\":[0,8]}}}}", 8), problem);
    }

    [Theory]
    [InlineData("[0,9223372036854775807]", "run past the 8 data bytes")]
    [InlineData("[9223372036854775807,9223372036854775807]", "run past the 8 data bytes")]
    [InlineData("[8,0]", "is not [begin, end] with begin <= end")]
    [InlineData("[0,-8]", "data_offsets entry -8 is not")]
    [InlineData("[0]", "is not [begin, end]")]
    public void Offset_Lies_AreRefused(string offsets, string problem)
    {
        AssertRefused(Header($"{{\"w\":{{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":{offsets}}}}}", 8), problem);
    }

    [Fact]
    public void DataRegion_MustBeTiledExactly()
    {
        const string Two = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}";
        AssertRefused(Header(Two, 12), "bytes [4, 8) between \"a\" [0, 4) and \"b\" belong to no tensor");
        AssertRefused(Header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8), "bytes [0, 4) between the start of the data and \"a\"");
        AssertRefused(Header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 5), "the tensors cover 4 bytes of data but the file holds 5");
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(1)]
    [InlineData(-8)]
    [InlineData(8)]
    public void HeaderLength_OffByAny_FailsEvenWhenTheJsonStillParses(int delta)
    {
        // A header padded with spaces (as the format allows) and data whose bytes are spaces: cutting the header
        // or extending it into the data leaves valid JSON, so only the exact tiling check can catch the lie.
        byte[] good = SafeTensors.Serialize(new Dictionary<string, Tensor>
        {
            ["a"] = new Tensor([BitConverter.Int32BitsToSingle(0x20202020), BitConverter.Int32BitsToSingle(0x20202020)], 2),
        });
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(good);
        Assert.Equal((byte)' ', good[8 + (int)n - 1]);                                      // the fixture is padded
        Assert.Equal(2, SafeTensors.Load(good, Source).Read("a").Length);

        byte[] bad = (byte[])good.Clone();
        BinaryPrimitives.WriteUInt64LittleEndian(bad, (ulong)((long)n + delta));
        DitCacheException e = AssertRefused(bad, "");
        Assert.True(e.Message.Contains("cover", StringComparison.Ordinal) || e.Message.Contains("run past", StringComparison.Ordinal)
            || e.Message.Contains("not valid JSON", StringComparison.Ordinal), e.Message);
    }

    [Theory]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", "key \"a\" appears twice")]
    [InlineData("{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"},\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", "metadata key \"k\" appears twice")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"shape\":[1],\"data_offsets\":[0,8]}}", "has the field \"shape\" twice")]
    public void DuplicateKeys_AreRefused(string json, string problem)
    {
        AssertRefused(Header(json, 8), problem);
    }

    [Theory]
    [InlineData("{\"\\ud800\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", "a header key is not valid Unicode (invalid UTF-8 or an unpaired surrogate")]
    [InlineData("{\"a\":{\"dtype\":\"F\\udc0032\",\"shape\":[2],\"data_offsets\":[0,8]}}", "dtype is not valid Unicode")]
    [InlineData("{\"__metadata__\":{\"\\udfff\":\"v\"},\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", "a header key is not valid Unicode (invalid UTF-8 or an unpaired surrogate")]
    [InlineData("{\"__metadata__\":{\"k\":\"x\\ud800y\"},\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", "metadata \"k\" is not valid Unicode")]
    public void LoneSurrogateEscapes_AreRefused(string json, string problem)
    {
        AssertRefused(Header(json, 8), problem);
    }

    [Fact]
    public void InvalidUtf8_InKeysAndMetadata_IsRefused()
    {
        foreach (string template in new[] { "{\"a@\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", "{\"__metadata__\":{\"k\":\"@\"},\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}" })
        {
            foreach (byte[] junk in new[] { new byte[] { 0xFF }, [0xC3], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80] })
            {
                byte[] json = Encoding.UTF8.GetBytes(template);
                int at = Array.IndexOf(json, (byte)'@');
                byte[] mutated = [.. json.AsSpan(0, at), .. junk, .. json.AsSpan(at + 1)];
                AssertRefused(Header(mutated, 8), "is not valid Unicode (invalid UTF-8");
            }
        }
    }

    [Fact]
    public void ControlCharactersInNames_StayOnOneLine()
    {
        DitCacheException e = AssertRefused(Header("{\"a\\nb\\u2028c\":{\"dtype\":\"I8\",\"shape\":[8],\"data_offsets\":[0,8]}}", 8), "has dtype I8");
        Assert.Contains("tensor \"a\\u000ab\\u2028c\"", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Read_OfAFileThatChangedSinceItsHeader_IsRefused()
    {
        using var dir = new TempDir();
        string path = dir.Write("w.safetensors", SafeTensors.Serialize(new Dictionary<string, Tensor> { ["w"] = new Tensor([1f, 2f], 2) }));
        TensorFile file = SafeTensors.Load(path);
        File.WriteAllBytes(path, File.ReadAllBytes(path)[..^4]);

        DitCacheException e = Assert.Throws<DitCacheException>(() => file.Read("w"));
        Assert.Contains("the file changed while it was being read", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Read_OfAMissingName_IsACleanError()
    {
        TensorFile file = SafeTensors.Load(SafeTensors.Serialize(new Dictionary<string, Tensor> { ["w"] = new Tensor([1f], 1) }), Source);
        DitCacheException e = Assert.Throws<DitCacheException>(() => file.Read("noise"));
        Assert.Equal($"{Source}: has no tensor 'noise' (it holds w); pass a file written for this purpose", e.Message);
        Assert.Throws<DitCacheException>(() => file.Tensors["noise"]);
        Assert.False(file.Tensors.ContainsKey("noise"));
    }

    [Fact]
    public void Load_ReadsOnlyTheHeader_UntilATensorIsAsked()
    {
        // A 16 MB tensor: opening the file allocates about the header, reading the tensor about its floats.
        using var dir = new TempDir();
        string path = dir.Write("big.safetensors", SafeTensors.Serialize(new Dictionary<string, Tensor> { ["big"] = Tensor.Zeros(4 << 20) }));
        long before = GC.GetAllocatedBytesForCurrentThread();
        TensorFile file = SafeTensors.Load(path);
        long opened = GC.GetAllocatedBytesForCurrentThread() - before;
        Tensor big = file.Read("big");
        long read = GC.GetAllocatedBytesForCurrentThread() - before - opened;

        Assert.Equal([4 << 20], file.Entries["big"].Shape);
        Assert.True(opened < 64 << 10, $"opening allocated {opened} bytes");
        Assert.True(read < (16 << 20) + (64 << 10), $"reading 16 MB of float32 allocated {read} bytes");          // the array, no staging copy
        Assert.Equal(4 << 20, big.Length);
    }

    private static byte[] Header(string json, int dataBytes) => Header(Encoding.UTF8.GetBytes(json), dataBytes);

    private static byte[] Header(byte[] json, int dataBytes)
    {
        byte[] bytes = new byte[8 + json.Length + dataBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)json.Length);
        json.CopyTo(bytes, 8);
        return bytes;
    }

    private static DitCacheException AssertRefused(byte[] bytes, string problem)
    {
        DitCacheException e = Assert.Throws<DitCacheException>(() => SafeTensors.Load(bytes, Source));
        Assert.StartsWith(Source + ": ", e.Message, StringComparison.Ordinal);
        Assert.True(e.Message.Contains(problem, StringComparison.Ordinal), $"expected \"{problem}\" in: {e.Message}");
        Assert.DoesNotContain('\n', e.Message);
        Assert.DoesNotContain('\u2028', e.Message);
        return e;
    }
}
