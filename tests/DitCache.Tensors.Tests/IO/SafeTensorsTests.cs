using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using DitCache.Tensors.IO;
using Xunit;

namespace DitCache.Tensors.Tests.IO;

/// <summary>SafeTensors: round trips, files written by Python (tools/train/st_io.py), and every rejected input.</summary>
public class SafeTensorsTests
{
    private const string Source = "bad.safetensors";

    private static readonly float[] s_specials =
        [0f, -0f, 1f, -2.5f, float.PositiveInfinity, float.NegativeInfinity, 1e-7f, 6e-8f, 65504f, 3.140625f, -1e-3f, 1e-30f];

    private static Dictionary<string, Tensor> Sample()
    {
        var rng = new Random(1234);
        float[] a = Enumerable.Range(0, 2 * 3 * 5).Select(_ => (float)((rng.NextDouble() * 8) - 4)).ToArray();
        return new Dictionary<string, Tensor>(StringComparer.Ordinal)
        {
            ["blocks.0.w"] = new Tensor(a, 2, 3, 5),
            ["special"] = new Tensor((float[])s_specials.Clone(), s_specials.Length),
            ["scalar"] = new Tensor([0.1f]),
            ["empty"] = new Tensor([], 0, 4),
        };
    }

    [Fact]
    public void RoundTrip_F32_IsExact()
    {
        Dictionary<string, Tensor> tensors = Sample();
        var metadata = new Dictionary<string, string> { ["format"] = "pt", ["note"] = "ünïcode \"quoted\"" };
        using var dir = new TempDir();
        string path = dir.File("rt.safetensors");
        SafeTensors.Save(path, tensors, metadata);

        TensorFile file = SafeTensors.Load(path);
        Assert.Equal(tensors.Keys.Order(), file.Tensors.Keys.Order());
        foreach ((string name, Tensor t) in tensors)
        {
            IoFixtures.AssertBitsEqual(t, file.Tensors[name], name);
            Assert.Equal(StoredDType.F32, file.SourceDTypes[name]);
        }

        Assert.Equal(metadata.OrderBy(kv => kv.Key), file.Metadata.OrderBy(kv => kv.Key));
    }

    [Theory]
    [InlineData(StoredDType.F16, 11)] // 10 stored mantissa bits: relative error <= 2^-11
    [InlineData(StoredDType.BF16, 8)] // 7 stored mantissa bits: relative error <= 2^-8
    public void RoundTrip_Half_IsWithinRounding(StoredDType dtype, int bits)
    {
        Dictionary<string, Tensor> tensors = Sample();
        TensorFile file = SafeTensors.Load(SafeTensors.Serialize(tensors, dtype: dtype), "mem");
        double rel = Math.ScaleB(1.0, -bits);
        foreach ((string name, Tensor t) in tensors)
        {
            Assert.Equal(dtype, file.SourceDTypes[name]);
            Tensor back = file.Tensors[name];
            Assert.Equal(t.Shape, back.Shape);
            for (int i = 0; i < t.Length; i++)
            {
                float x = t.Data[i];
                float y = back.Data[i];
                bool f16Tiny = dtype == StoredDType.F16 && Math.Abs(x) < 6.2e-5; // subnormal: absolute half-step 2^-25
                bool ok = float.IsInfinity(x) ? x == y
                    : f16Tiny ? Math.Abs(y - x) <= Math.ScaleB(1.0, -25)
                    : Math.Abs(y - x) <= rel * Math.Abs(x);
                Assert.True(ok, $"{dtype} {name}[{i}]: {x} came back as {y}");
            }
        }
    }

    [Theory]
    [InlineData("f16", StoredDType.F16)]
    [InlineData("bf16", StoredDType.BF16)]
    public void Load_PythonWrittenHalf_MatchesTorchExactly(string fixture, StoredDType dtype)
    {
        TensorFile file = SafeTensors.Load(IoFixtures.Path(fixture + ".safetensors"));
        Dictionary<string, Tensor> golden = IoFixtures.GoldenOf(fixture + ".safetensors");
        Assert.Equal(golden.Keys.Order(), file.Tensors.Keys.Order());
        foreach ((string name, Tensor expected) in golden)
        {
            IoFixtures.AssertBitsEqual(expected, file.Tensors[name], name);
            Assert.Equal(dtype, file.SourceDTypes[name]);
        }

        Assert.Equal(fixture, file.Metadata["dtype"]);
    }

    [Fact]
    public void Load_ShorterThan8Bytes_IsRefused()
    {
        AssertRefused(new byte[5], "5 bytes is too short");
    }

    [Fact]
    public void Load_HeaderLongerThanFile_IsRefused()
    {
        byte[] bytes = Valid();
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)bytes.Length);
        AssertRefused(bytes, $"header length {bytes.Length} does not fit");
    }

    [Fact]
    public void Load_TruncatedFile_IsRefusedByPath()
    {
        byte[] bytes = Valid();
        using var dir = new TempDir();
        string path = dir.Write("cut.safetensors", bytes[..^4]);
        DitCacheException e = Assert.Throws<DitCacheException>(() => SafeTensors.Load(path));
        Assert.Contains(path, e.Message, StringComparison.Ordinal);
        Assert.Contains("run past", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_HeaderNotJson_IsRefused()
    {
        AssertRefused(WithHeader("{\"a\": {\"dtype\": F32}", 0), "not valid JSON");
    }

    [Fact]
    public void Load_HeaderNotObject_IsRefused()
    {
        AssertRefused(WithHeader("[1, 2]", 0), "header starts with byte 0x5b, expected '{'");
    }

    [Fact]
    public void Load_UnsupportedDType_IsRefused()
    {
        AssertRefused(WithHeader("{\"step\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8),
            "tensor \"step\" has dtype I64");
    }

    [Fact]
    public void Load_ShapeDoesNotMatchBytes_IsRefused()
    {
        AssertRefused(WithHeader("{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,20]}}", 24),
            "tensor \"w\" shape [2, 3] x F32 needs 24 bytes but data_offsets [0, 20] span 20");
    }

    [Fact]
    public void Load_OffsetsPastEnd_IsRefused()
    {
        AssertRefused(WithHeader("{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 12),
            "tensor \"w\" data_offsets [0, 16] run past the 12 data bytes");
    }

    [Fact]
    public void Load_OverlappingOffsets_IsRefused()
    {
        AssertRefused(
            WithHeader("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12),
            "tensors \"a\" [0, 8) and \"b\" [4, 12) overlap");
    }

    [Fact]
    public void Load_DuplicateKey_IsRefused()
    {
        AssertRefused(
            WithHeader("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8),
            "key \"a\" appears twice");
    }

    [Fact]
    public void Load_MetadataNotString_IsRefused()
    {
        AssertRefused(WithHeader("{\"__metadata__\":{\"steps\":50}}", 0), "metadata \"steps\" is JSON Number, expected a string");
    }

    [Fact]
    public void Load_CorruptedValidFile_IsRefused()
    {
        // A header written by Serialize, then one dtype rewritten in place ("F32" -> "I32").
        byte[] bytes = Valid();
        int at = Encoding.ASCII.GetString(bytes).IndexOf("\"F32\"", StringComparison.Ordinal);
        bytes[at + 1] = (byte)'I';
        AssertRefused(bytes, "has dtype I32");
    }

    private static byte[] Valid() =>
        SafeTensors.Serialize(new Dictionary<string, Tensor> { ["w"] = new Tensor([1f, 2f, 3f], 3) });

    private static byte[] WithHeader(string json, int dataBytes)
    {
        byte[] header = Encoding.UTF8.GetBytes(json);
        byte[] bytes = new byte[8 + header.Length + dataBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)header.Length);
        header.CopyTo(bytes, 8);
        return bytes;
    }

    private static void AssertRefused(byte[] bytes, string problem)
    {
        DitCacheException e = Assert.Throws<DitCacheException>(() => SafeTensors.Load(bytes, Source));
        Assert.StartsWith(Source + ": ", e.Message, StringComparison.Ordinal);
        Assert.Contains(problem, e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', e.Message);
        Assert.Equal(1, e.ExitCode);
    }
}
