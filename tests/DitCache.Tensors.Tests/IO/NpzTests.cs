using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text.Json;
using DitCache.Tensors.IO;
using Xunit;

namespace DitCache.Tensors.Tests.IO;

/// <summary>
/// Npz against numpy's own values (npz_golden.json from tools/reference/make_npz_fixtures.py: dtype, shape and the
/// float64 bits of every value), and its refusals.
/// </summary>
public class NpzTests
{
    private sealed record Golden(string DType, int[] Shape, ulong[] Bits);

    private static readonly Dictionary<string, Golden> s_golden = LoadGolden();

    private static Dictionary<string, Golden> LoadGolden()
    {
        using JsonDocument doc = JsonDocument.Parse(File.ReadAllBytes(IoFixtures.Path("npz_golden.json")));
        var result = new Dictionary<string, Golden>(StringComparer.Ordinal);
        foreach (JsonProperty p in doc.RootElement.EnumerateObject())
        {
            result[p.Name] = new Golden(
                p.Value.GetProperty("dtype").GetString()!,
                p.Value.GetProperty("shape").EnumerateArray().Select(e => e.GetInt32()).ToArray(),
                p.Value.GetProperty("bits").EnumerateArray()
                    .Select(e => BitConverter.ToUInt64(Convert.FromHexString(e.GetString()!))).ToArray());   // little-endian hex
        }

        return result;
    }

    private static Dictionary<string, Golden> GoldenOf(string fixture) => s_golden
        .Where(kv => kv.Key.StartsWith(fixture + "/", StringComparison.Ordinal))
        .ToDictionary(kv => kv.Key[(fixture.Length + 1)..], kv => kv.Value, StringComparer.Ordinal);

    [Theory]
    [InlineData("npz_stats.npz")]
    [InlineData("npz_stats_compressed.npz")]
    [InlineData("npz_adm_like.npz")]
    [InlineData("npy_sigma_v1.npy")]
    [InlineData("npy_sigma_v2.npy")]
    [InlineData("npy_sigma_v3.npy")]
    public void Read_MatchesNumpyExactly(string fixture)
    {
        string path = IoFixtures.Path(fixture);
        Dictionary<string, Golden> golden = GoldenOf(fixture);
        Assert.NotEmpty(golden);

        IReadOnlyList<NpyEntry> listed = Npz.List(path);
        Assert.Equal(golden.Keys.Order(), listed.Select(e => e.Name).Order());
        foreach (NpyEntry e in listed)
        {
            Assert.Equal(golden[e.Name].DType, e.DType);
            Assert.Equal(golden[e.Name].Shape, e.Shape);
            Assert.Equal(golden[e.Name].Bits.Length, e.Count);
        }

        foreach ((string key, Golden g) in golden)
        {
            NpyArray a = Npz.Read(path, key);
            Assert.Equal(key, a.Name);
            Assert.Equal(g.DType, a.DType);
            Assert.Equal(g.Shape, a.Shape);
            Assert.Equal(g.Bits.Length, a.Data.Length);
            for (int i = 0; i < g.Bits.Length; i++)
            {
                // Bits, not values: -0.0 and NaN payloads must match too.
                Assert.True(BitConverter.DoubleToUInt64Bits(a.Data[i]) == g.Bits[i],
                    $"{fixture}/{key}[{i}]: {a.Data[i].ToString("R", CultureInfo.InvariantCulture)}, expected {BitConverter.UInt64BitsToDouble(g.Bits[i]).ToString("R", CultureInfo.InvariantCulture)}");
            }
        }
    }

    [Fact]
    public void Read_KnownValues_WithoutTheGolden()
    {
        string path = IoFixtures.Path("npz_stats.npz");
        NpyArray half = Npz.Read(path, "half");
        Assert.Equal([10], half.Shape);
        Assert.Equal([0.0, -0.0, 1.0, -2.5, double.PositiveInfinity, double.NegativeInfinity], half.Data[..6]);
        Assert.True(double.IsNaN(half.Data[6]));
        Assert.Equal([5.9604644775390625e-08, 65504.0, 3.140625], half.Data[7..]);

        NpyArray scalar = Npz.Read(path, "scalar");
        Assert.Empty(scalar.Shape);
        Assert.Equal([-1.75], scalar.Data);

        NpyArray empty = Npz.Read(path, "empty");
        Assert.Equal([0, 3], empty.Shape);
        Assert.Empty(empty.Data);

        NpyArray sigma = Npz.Read(path, "sigma");   // a covariance: symmetric
        Assert.Equal([6, 6], sigma.Shape);
        for (int i = 0; i < 6; i++)
        {
            for (int j = 0; j < 6; j++)
            {
                Assert.Equal(sigma.Data[(i * 6) + j], sigma.Data[(j * 6) + i]);
            }
        }
    }

    [Fact]
    public void Read_StoredAndCompressed_Agree()
    {
        foreach (NpyEntry e in Npz.List(IoFixtures.Path("npz_stats.npz")))
        {
            Assert.Equal(Npz.Read(IoFixtures.Path("npz_stats.npz"), e.Name).Data, Npz.Read(IoFixtures.Path("npz_stats_compressed.npz"), e.Name).Data);
        }
    }

    [Fact]
    public void Read_OneArray_DoesNotTouchTheOthers()
    {
        // Damage arr_0's data (stored entry): mu and sigma still read; arr_0 fails its CRC.
        byte[] bytes = File.ReadAllBytes(IoFixtures.Path("npz_adm_like.npz"));
        NpyArray arr0 = Npz.Read(IoFixtures.Path("npz_adm_like.npz"), "arr_0");
        byte[] pixels = arr0.Data.Select(v => (byte)v).ToArray();
        int at = bytes.AsSpan().IndexOf(pixels);
        Assert.True(at > 0);
        bytes[at + 100] ^= 0xff;
        using var dir = new TempDir();
        string path = dir.Write("adm.npz", bytes);

        Assert.Equal(5, Npz.List(path).Count);
        Assert.Equal(Npz.Read(IoFixtures.Path("npz_adm_like.npz"), "mu").Data, Npz.Read(path, "mu").Data);
        Assert.Equal(Npz.Read(IoFixtures.Path("npz_adm_like.npz"), "sigma_s").Data, Npz.Read(path, "sigma_s").Data);
        AssertRefused(() => Npz.Read(path, "arr_0"), path, "array 'arr_0': has CRC-32");
    }

    [Fact]
    public void Read_MissingKey_ListsTheKeys()
    {
        string path = IoFixtures.Path("npz_stats.npz");
        AssertRefused(() => Npz.Read(path, "sigma_s"), path,
            "has no array 'sigma_s' (it holds mu, sigma, single, half, cube, scalar, empty, pixels)");
        AssertRefused(() => Npz.Read(path, null), path, "has no array '(none given)'");
    }

    [Fact]
    public void Read_NpyUnderAnotherName_IsRefused()
    {
        string path = IoFixtures.Path("npy_sigma_v1.npy");
        Assert.Equal([6, 6], Npz.Read(path, null).Shape);
        AssertRefused(() => Npz.Read(path, "mu"), path, "listed as 'npy_sigma_v1', not 'mu'");
    }

    [Theory]
    [InlineData("npz_fortran.npz", "sigma", "Fortran order")]
    [InlineData("npz_bigendian.npz", "mu", "dtype '>f8' is not read")]
    [InlineData("npz_int64.npz", "count", "dtype '<i8' is not read")]
    [InlineData("npz_structured.npz", "rec", "structured dtype")]
    public void Unsupported_AreRefused_NamingKey(string fixture, string key, string problem)
    {
        string path = IoFixtures.Path(fixture);
        AssertRefused(() => Npz.Read(path, key), path, $"array '{key}': ");
        AssertRefused(() => Npz.Read(path, key), path, problem);
        AssertRefused(() => Npz.List(path), path, problem);
    }

    [Fact]
    public void Fortran_SaysHowToResave()
    {
        string path = IoFixtures.Path("npz_fortran.npz");
        AssertRefused(() => Npz.Read(path, "sigma"), path, "np.ascontiguousarray");
    }

    [Fact]
    public void Truncated_AreRefused()
    {
        byte[] npz = File.ReadAllBytes(IoFixtures.Path("npz_stats.npz"));
        byte[] npy = File.ReadAllBytes(IoFixtures.Path("npy_sigma_v1.npy"));
        using var dir = new TempDir();
        foreach (int keep in new[] { 0, 3, 7, 9, 50, 127, 128, 200, npy.Length - 1 })
        {
            string path = dir.Write($"cut{keep}.npy", npy[..keep]);
            AssertRefused(() => Npz.Read(path, null), path, "");
        }

        foreach (int keep in new[] { 2, 10, 100, npz.Length / 2, npz.Length - 10 })
        {
            string path = dir.Write($"cut{keep}.npz", npz[..keep]);
            AssertRefused(() => Npz.List(path), path, "");
        }

        // One byte more data than the shape needs.
        string longer = dir.Write("longer.npy", [.. npy, 0]);
        AssertRefused(() => Npz.Read(longer, null), longer, "needs 288 data bytes, but 289 follow the header");
    }

    [Theory]
    [InlineData("'descr': '<f8', 'fortran_order': False, 'shape': (2,), ", null)]
    [InlineData("'descr': '<f8', 'fortran_order': False, 'shape': (2L,), ", null)]
    [InlineData("'descr': '<f8', 'fortran_order': False, 'shape': (2), ", "shape that is not a tuple")]
    [InlineData("'descr': '<f8', 'fortran_order': 0, 'shape': (2,), ", "fortran_order that is not True or False")]
    [InlineData("'descr': '<f8', 'shape': (2,), ", "expected exactly 'descr', 'fortran_order', 'shape'")]
    [InlineData("'descr': '<f8', 'fortran_order': False, 'shape': (-2,), ", "where a value belongs")]
    [InlineData("'descr': '<f8', 'fortran_order': False, 'shape': (2,), 'x': 1, ", "expected exactly")]
    [InlineData("'descr': '<f8' 'fortran_order': False, 'shape': (2,), ", "missing a ','")]
    [InlineData("'descr': '<f8', 'fortran_order': False, 'shape': (2,(((((((((1,),),),),),),),),), ", "nests values deeper")]
    [InlineData("'descr': '<f8', 'fortran_order': False, 'shape': (2, 3, ", "has '}' where a value belongs")]
    public void HeaderDict_IsParsedStrictly(string inner, string? problem)
    {
        // A version 1.0 .npy of two float64 values 1.5 and -2.0 with a hand-written header dict.
        string header = "{" + inner + "}";
        header = header.PadRight(((10 + header.Length + 1 + 63) / 64 * 64) - 10 - 1) + "\n";
        byte[] bytes = [0x93, .. "NUMPY"u8, 1, 0, (byte)header.Length, (byte)(header.Length >> 8),
            .. System.Text.Encoding.ASCII.GetBytes(header), .. BitConverter.GetBytes(1.5), .. BitConverter.GetBytes(-2.0)];
        using var dir = new TempDir();
        string path = dir.Write("h.npy", bytes);
        if (problem is null)
        {
            Assert.Equal([1.5, -2.0], Npz.Read(path, null).Data);
        }
        else
        {
            AssertRefused(() => Npz.Read(path, null), path, problem);
        }
    }

    [Fact]
    public void NotNumpy_IsRefused()
    {
        string path = IoFixtures.Path("legacy_one.pt");
        AssertRefused(() => Npz.List(path), path, "neither a .npy file");
        using var dir = new TempDir();
        AssertRefused(() => Npz.List(dir.File("missing.npz")), dir.File("missing.npz"), "cannot open");
    }

    private static void AssertRefused(Action act, string path, string problem)
    {
        DitCacheException e = Assert.Throws<DitCacheException>(act);
        Assert.StartsWith(path + ": ", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', e.Message);
        Assert.Contains(problem, e.Message, StringComparison.Ordinal);
    }
}
