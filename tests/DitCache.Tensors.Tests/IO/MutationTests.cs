using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.RegularExpressions;
using DitCache.Tensors.IO;
using Xunit;
using Xunit.Sdk;

namespace DitCache.Tensors.Tests.IO;

/// <summary>
/// Property test (issue 16): about 2,500 deterministic mutations of our own fixtures (bit flips, byte overwrites,
/// truncation at every length, appended bytes, header-length lies, lies in every integer of the safetensors JSON and
/// of the .pt pickle) each end in success or a DitCacheException, never another exception, and allocate at most
/// <see cref="AllocationBound"/> of the file's size, opening the file and reading every tensor. A mutated .pt file
/// that still loads must give the original tensors bit for bit: every entry read is CRC-checked, so a change the
/// loader does not refuse can only sit where nothing is read (zip padding, timestamps, attributes).
/// </summary>
public class MutationTests
{
    private static readonly byte[] s_safetensors = File.ReadAllBytes(IoFixtures.Path("f16.safetensors"));
    private static readonly byte[] s_pt = File.ReadAllBytes(IoFixtures.Path("plain_f32.pt"));

    /// <summary>
    /// Bytes one load (open and read every tensor) may allocate: 8 per file byte (the reader holds the header or the
    /// pickle, its parse, and float32 values of at most twice the stored bytes) plus 1 MiB for buffers, the JSON
    /// parser, exception messages and stack traces. Measured: at most 61 KB per load here (the intact 2,279-byte .pt,
    /// reading all nine tensors), 6% of the bound; a lie that reached an allocation sized by the lie would exceed it.
    /// </summary>
    private static long AllocationBound(long fileBytes) => (8 * fileBytes) + (1 << 20);

    [Fact]
    public void SafeTensors_EveryMutation_LoadsOrFailsCleanly_WithinTheAllocationBound()
    {
        Dictionary<string, Loaded> original = LoadSafeTensors(s_safetensors, "original")!;
        Assert.Equal(["special", "w"], original.Keys.Order());
        int loaded = 0, refused = 0;
        foreach ((string what, byte[] bytes) in RawMutations(s_safetensors, seed: 1).Concat(SafeTensorsLies()))
        {
            if (LoadSafeTensors(bytes, what) is null)
            {
                refused++;
            }
            else
            {
                loaded++;
            }
        }

        Assert.True(refused > 400 && loaded > 20, $"{loaded} loaded, {refused} refused: the mutations should exercise both");
    }

    [Fact]
    public void TorchCheckpoint_FileMutations_FailOrLoadTheOriginalExactly()
    {
        using var dir = new TempDir();
        Dictionary<string, Loaded> original = LoadPt(dir, s_pt, "original")!;
        Assert.Equal(9, original.Count);
        int loaded = 0, refused = 0;
        foreach ((string what, byte[] bytes) in RawMutations(s_pt, seed: 2))
        {
            Dictionary<string, Loaded>? result = LoadPt(dir, bytes, what);
            if (result is null)
            {
                refused++;
                continue;
            }

            loaded++;
            Assert.True(result.Keys.Order().SequenceEqual(original.Keys.Order()), $"{what}: loaded other names");
            foreach ((string name, Loaded t) in original)
            {
                Loaded m = result[name];
                Assert.True(m.DType == t.DType && m.Shape.SequenceEqual(t.Shape) && m.Bits.SequenceEqual(t.Bits),
                    $"{what}: tensor '{name}' loaded with other values, which the CRC check should have refused");
            }
        }

        Assert.True(refused > 500 && loaded > 10, $"{loaded} loaded, {refused} refused: the mutations should exercise both");
    }

    [Fact]
    public void TorchCheckpoint_AFlipAnywhereInAnEntrysData_IsRefused()
    {
        // Every entry torch.save wrote (pickle, each storage, version): first, middle and last byte, low and high bit.
        using var dir = new TempDir();
        int checkedFlips = 0;
        foreach ((string name, byte[] content) in IoFixtures.Entries(IoFixtures.Path("plain_f32.pt")))
        {
            (int data, int size) = HostileTorchCheckpointTests.DataOf(s_pt, name);
            Assert.Equal(content.Length, size);
            foreach (int offset in new[] { 0, size / 2, size - 1 }.Where(o => o >= 0 && o < size).Distinct())
            {
                foreach (int bit in new[] { 0, 7 })
                {
                    byte[] b = (byte[])s_pt.Clone();
                    b[data + offset] ^= (byte)(1 << bit);
                    Assert.True(LoadPt(dir, b, $"{name} byte {offset} bit {bit}") is null, $"a flip of bit {bit} of byte {offset} of '{name}' loaded");
                    checkedFlips++;
                }
            }
        }

        Assert.True(checkedFlips >= 40, $"{checkedFlips} flips checked");
    }

    [Fact]
    public void TorchCheckpoint_PickleMutations_LoadOrFailCleanly()
    {
        // The pickle changed and the archive rebuilt around it with correct CRCs, so the lies reach the pickle
        // machine and the tensor checks; any outcome but an internal error or a large allocation is fine.
        using var dir = new TempDir();
        List<KeyValuePair<string, byte[]>> entries = IoFixtures.Entries(IoFixtures.Path("plain_f32.pt"));
        int at = entries.FindIndex(kv => kv.Key.EndsWith("data.pkl", StringComparison.Ordinal));
        byte[] pickle = entries[at].Value;
        int loaded = 0, refused = 0;
        foreach ((string what, byte[] mutated) in PickleLies(pickle))
        {
            var copy = new List<KeyValuePair<string, byte[]>>(entries) { [at] = new(entries[at].Key, mutated) };
            if (LoadPt(dir, IoFixtures.Zip(copy), what) is null)
            {
                refused++;
            }
            else
            {
                loaded++;
            }
        }

        Assert.True(refused > 200 && loaded > 10, $"{loaded} loaded, {refused} refused: the mutations should exercise both");
    }

    private sealed record Loaded(StoredDType DType, int[] Shape, uint[] Bits);

    private static Dictionary<string, Loaded>? LoadSafeTensors(byte[] bytes, string what) =>
        Attempt(what, bytes.Length, () => SafeTensors.Load(bytes, "mutated.safetensors"));

    private static Dictionary<string, Loaded>? LoadPt(TempDir dir, byte[] bytes, string what)
    {
        string path = dir.Write("mutated.pt", bytes);
        return Attempt(what, bytes.Length, () => Checkpoint.Load(path));
    }

    /// <summary>Opens and reads every tensor; null for a DitCacheException; any other exception fails the test.</summary>
    private static Dictionary<string, Loaded>? Attempt(string what, long fileBytes, Func<TensorFile> open)
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        Dictionary<string, Loaded>? result = null;
        try
        {
            TensorFile file = open();
            result = [];
            foreach (TensorEntry e in file.Entries.Values)
            {
                Tensor t = file.Read(e.Name);
                Assert.True(t.HasShape(e.Shape), $"{what}: '{e.Name}' read as {t.ShapeText}, described as {e.ShapeText}");
                result[e.Name] = new Loaded(e.DType, e.Shape, t.Data.Select(BitConverter.SingleToUInt32Bits).ToArray());
            }
        }
        catch (DitCacheException e)
        {
            Assert.False(e.Message.Contains('\n', StringComparison.Ordinal), $"{what}: a message of several lines: {e.Message}");
            result = null;
        }
        catch (Exception e) when (e is not XunitException)
        {
            throw new XunitException($"{what}: internal error {e.GetType().Name}: {e.Message}");
        }

        long allocated = GC.GetAllocatedBytesForCurrentThread() - before - (result?.Values.Sum(l => (l.Bits.Length * 8L) + 64) ?? 0);
        Assert.True(allocated <= AllocationBound(fileBytes), $"{what}: allocated {allocated} bytes for a {fileBytes}-byte file");
        return result;
    }

    /// <summary>Bit flips, byte overwrites, every truncation and appended bytes.</summary>
    private static IEnumerable<(string, byte[])> RawMutations(byte[] good, int seed)
    {
        var random = new Random(seed);
        for (int i = 0; i < 300; i++)
        {
            int pos = random.Next(good.Length), bit = random.Next(8);
            byte[] b = (byte[])good.Clone();
            b[pos] ^= (byte)(1 << bit);
            yield return ($"flip bit {bit} of byte {pos}", b);
        }

        byte[] values = [0x00, 0xFF, 0x7F, 0x80, 0x20, (byte)'{', (byte)'"', (byte)'9'];
        for (int i = 0; i < 120; i++)
        {
            int pos = random.Next(good.Length);
            byte v = i % 3 == 0 ? (byte)random.Next(256) : values[random.Next(values.Length)];
            byte[] b = (byte[])good.Clone();
            b[pos] = v;
            yield return ($"byte {pos} := 0x{v:x2}", b);
        }

        // Every length inside the first 64 and the last 256 bytes (headers, JSON, zip directory and end records),
        // every 7th elsewhere.
        for (int n = 0; n < good.Length; n += n < 64 || n >= good.Length - 256 ? 1 : 7)
        {
            yield return ($"truncated to {n} bytes", good[..n]);
        }

        foreach (int extra in new[] { 1, 7, 8, 100 })
        {
            byte[] tail = new byte[extra];
            random.NextBytes(tail);
            yield return ($"{extra} bytes appended", [.. good, .. tail]);
        }
    }

    /// <summary>Header-length lies, and lies in every integer of the JSON header (with a consistent length).</summary>
    private static IEnumerable<(string, byte[])> SafeTensorsLies()
    {
        byte[] good = s_safetensors;
        long n = (long)BinaryPrimitives.ReadUInt64LittleEndian(good);
        foreach (long lie in Enumerable.Range(-16, 33).Select(d => n + d).Concat([0, 1, good.Length, good.Length - 8, long.MaxValue]))
        {
            if (lie == n)
            {
                continue;
            }

            byte[] b = (byte[])good.Clone();
            BinaryPrimitives.WriteUInt64LittleEndian(b, (ulong)lie);
            yield return ($"header length {lie} (true {n})", b);
        }

        byte[] b2 = (byte[])good.Clone();
        BinaryPrimitives.WriteUInt64LittleEndian(b2, ulong.MaxValue);
        yield return ("header length 2^64-1", b2);

        string json = Encoding.UTF8.GetString(good, 8, (int)n);
        byte[] data = good[(8 + (int)n)..];
        string[] lies = ["0", "1", "-1", "2147483647", "2147483648", "4294967296", "9223372036854775807", "9223372036854775808",
            "18446744073709551616", "1e3", "0.5", "\"4\"", "null", "[]"];
        foreach (Match m in Regex.Matches(json, "[0-9]+"))
        {
            long v = long.Parse(m.Value, CultureInfo.InvariantCulture);
            foreach (string lie in lies.Concat([(v - 1).ToString(CultureInfo.InvariantCulture), (v + 1).ToString(CultureInfo.InvariantCulture),
                (v * 2).ToString(CultureInfo.InvariantCulture)]))
            {
                string header = json[..m.Index] + lie + json[(m.Index + m.Length)..];
                byte[] h = Encoding.UTF8.GetBytes(header.TrimEnd());
                byte[] b = new byte[8 + h.Length + data.Length];
                BinaryPrimitives.WriteUInt64LittleEndian(b, (ulong)h.Length);
                h.CopyTo(b, 8);
                data.CopyTo(b, 8 + h.Length);
                yield return ($"JSON integer {m.Value} at {m.Index} := {lie}", b);
            }
        }
    }

    /// <summary>Every integer operand of the pickle replaced by lies; memo indices and random bytes changed.</summary>
    private static IEnumerable<(string, byte[])> PickleLies(byte[] pickle)
    {
        List<(int At, int Length, byte Op, long Value)> ops = Walk(pickle);
        foreach ((int at, int length, byte op, long value) in ops.Where(o => o.Op is (byte)'K' or (byte)'M' or (byte)'J' or 0x8a))
        {
            long[] lies = [0, -1, value + 1, value * 2, 1L << 31, 1L << 62, long.MaxValue, long.MinValue];
            foreach (long lie in lies)
            {
                byte[] long1 = [0x8a, 8, .. BitConverter.GetBytes(lie)];
                yield return ($"pickle int {value} at {at} := {lie}", [.. pickle.AsSpan(0, at), .. long1, .. pickle.AsSpan(at + length)]);
            }
        }

        foreach ((int at, int length, byte op, _) in ops.Where(o => o.Op is (byte)'q' or (byte)'h'))
        {
            foreach (byte index in new byte[] { 0, 1, 7, 255 })
            {
                byte[] b = (byte[])pickle.Clone();
                b[at + 1] = index;
                yield return ($"pickle memo index of op 0x{op:x2} at {at} := {index}", b);
            }
        }

        var random = new Random(3);
        for (int i = 0; i < 80; i++)
        {
            int pos = random.Next(pickle.Length);
            byte[] b = (byte[])pickle.Clone();
            b[pos] = i % 2 == 0 ? (byte)(b[pos] ^ (1 << random.Next(8))) : (byte)random.Next(256);
            yield return ($"pickle byte {pos} changed", b);
        }
    }

    /// <summary>The opcodes of a torch.save pickle (protocol 2 subset) with their operand lengths, read independently.</summary>
    private static List<(int At, int Length, byte Op, long Value)> Walk(byte[] p)
    {
        var ops = new List<(int, int, byte, long)>();
        int i = 0;
        while (i < p.Length)
        {
            byte op = p[i];
            int start = i++;
            long value = 0;
            switch (op)
            {
                case 0x80: case (byte)'K': case (byte)'q': case (byte)'h': value = p[i]; i += 1; break;
                case (byte)'M': value = BinaryPrimitives.ReadUInt16LittleEndian(p.AsSpan(i)); i += 2; break;
                case (byte)'J': value = BinaryPrimitives.ReadInt32LittleEndian(p.AsSpan(i)); i += 4; break;
                case (byte)'r': case (byte)'j': i += 4; break;
                case (byte)'G': case 0x95: i += 8; break;
                case 0x8a:
                    {
                        int n = p[i];
                        byte[] v = new byte[8];
                        p.AsSpan(i + 1, n).CopyTo(v);
                        value = BitConverter.ToInt64(v);
                        i += 1 + n;
                        break;
                    }

                case 0x8c: i += 1 + p[i]; break;
                case (byte)'X': i += 4 + BinaryPrimitives.ReadInt32LittleEndian(p.AsSpan(i)); break;
                case (byte)'c': i = Array.IndexOf(p, (byte)'\n', Array.IndexOf(p, (byte)'\n', i) + 1) + 1; break;
                default: break;                                               // no operand
            }

            ops.Add((start, i - start, op, value));
            if (op == (byte)'.')
            {
                break;
            }
        }

        return ops;
    }
}
