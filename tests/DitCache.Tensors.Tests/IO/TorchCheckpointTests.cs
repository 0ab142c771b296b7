using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using DitCache.Tensors.IO;
using Xunit;

namespace DitCache.Tensors.Tests.IO;

/// <summary>TorchCheckpoint against PyTorch's own view of the same files (torch_golden.safetensors).</summary>
public class TorchCheckpointTests
{
    [Theory]
    [InlineData("plain_f32", StoredDType.F32)]
    [InlineData("f16", StoredDType.F16)]
    [InlineData("bf16", StoredDType.BF16)]
    public void Load_MatchesTorchExactly(string fixture, StoredDType dtype)
    {
        string path = IoFixtures.Path(fixture + ".pt");
        TensorFile file = TorchCheckpoint.Load(path);
        Dictionary<string, Tensor> golden = IoFixtures.GoldenOf(fixture);

        Assert.Equal(path, file.Source);
        Assert.Empty(file.Metadata);
        Assert.Equal(golden.Keys.Order(), file.Tensors.Keys.Order());
        foreach ((string name, Tensor expected) in golden)
        {
            IoFixtures.AssertBitsEqual(expected, file.Tensors[name], name);
            Assert.Equal(dtype, file.SourceDTypes[name]);
        }
    }

    [Fact]
    public void Load_GathersViews()
    {
        // The fixture's views, checked here by name so a golden file that lost them would not pass silently.
        TensorFile file = TorchCheckpoint.Load(IoFixtures.Path("plain_f32.pt"));
        Tensor w = file.Tensors["weight"];
        Tensor wt = file.Tensors["proj.weight_t"];
        Assert.Equal([3, 4], w.Shape);
        Assert.Equal([4, 3], wt.Shape);
        for (int i = 0; i < 3; i++)
        {
            for (int j = 0; j < 4; j++)
            {
                Assert.Equal(w.Data[(i * 4) + j], wt.Data[(j * 3) + i]);
            }
        }

        Assert.Equal([4, 2, 3], file.Tensors["grid.permuted"].Shape);
        Assert.Equal([2, 2, 3], file.Tensors["grid.strided"].Shape);
        Assert.Empty(file.Tensors["scalar"].Shape);
        Assert.Equal(3.25f, file.Tensors["scalar"].Data[0]);
        Assert.Equal([0, 3], file.Tensors["empty"].Shape);
    }

    [Fact]
    public void Load_TrainCheckpoint_PicksEma()
    {
        // {"model", "ema", "opt", "args": argparse.Namespace}, as DiT's train.py writes.
        TensorFile file = TorchCheckpoint.Load(IoFixtures.Path("nested_train.pt"));
        Dictionary<string, Tensor> golden = IoFixtures.GoldenOf("nested_train");
        Assert.Equal(["bias", "weight"], file.Tensors.Keys.Order());
        foreach ((string name, Tensor expected) in golden)
        {
            IoFixtures.AssertBitsEqual(expected, file.Tensors[name], name);
        }
    }

    [Fact]
    public void Load_ModelOnly_PicksModel()
    {
        TensorFile file = TorchCheckpoint.Load(IoFixtures.Path("nested_model.pt"));
        foreach ((string name, Tensor expected) in IoFixtures.GoldenOf("nested_model"))
        {
            IoFixtures.AssertBitsEqual(expected, file.Tensors[name], name);
        }

        Assert.Equal(2, file.Tensors.Count);
    }

    [Theory]
    [InlineData("forbidden_global.pt", "'posix.system'")]
    [InlineData("whole_module.pt", "'torch.nn.modules.linear.Linear'")]
    public void Load_ForbiddenGlobal_IsRefused(string fixture, string global)
    {
        string path = IoFixtures.Path(fixture);
        DitCacheException e = Assert.Throws<DitCacheException>(() => TorchCheckpoint.Load(path));
        Assert.Contains(path, e.Message, StringComparison.Ordinal);
        Assert.Contains($"global {global}", e.Message, StringComparison.Ordinal);
        Assert.Contains("no code is run", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_BatchNormCounter_IsLeftOut()
    {
        // nn.BatchNorm1d(2).state_dict(): freshly initialised, so weight 1, bias 0, running_mean 0, running_var 1;
        // its int64 num_batches_tracked is not an entry.
        TensorFile file = TorchCheckpoint.Load(IoFixtures.Path("int64.pt"));
        Assert.Equal(["weight", "bias", "running_mean", "running_var"], file.Entries.Keys);
        Assert.Equal([1f, 1f], file.Read("weight").Data);
        Assert.Equal([0f, 0f], file.Read("bias").Data);
        Assert.Equal([0f, 0f], file.Read("running_mean").Data);
        Assert.Equal([1f, 1f], file.Read("running_var").Data);
    }

    [Theory]
    [InlineData("legacy_int64.pt")]
    [InlineData("legacy_int64_zip.pt")]
    public void Load_Int64Tensor_NamesKeyAndDType(string fixture)
    {
        // {"w": float32, "index": arange(3) (int64), "bn.num_batches_tracked": a [1]-shaped int64}: neither int64
        // tensor is a 0-d BatchNorm counter, so the first one met is refused.
        string path = IoFixtures.Path(fixture);
        DitCacheException e = Assert.Throws<DitCacheException>(() => TorchCheckpoint.Load(path));
        Assert.StartsWith(path + ": tensor 'index' is stored as torch.LongStorage", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_TruncatedZip_IsRefused()
    {
        byte[] bytes = File.ReadAllBytes(IoFixtures.Path("plain_f32.pt"));
        using var dir = new TempDir();
        foreach (int cut in new[] { 4, 100, bytes.Length / 2, bytes.Length - 30, bytes.Length - 1 })
        {
            string path = dir.Write($"cut{cut}.pt", bytes[..cut]);
            DitCacheException e = Assert.Throws<DitCacheException>(() => TorchCheckpoint.Load(path));
            Assert.Contains(path, e.Message, StringComparison.Ordinal);
            Assert.Contains("truncated", e.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Load_MissingDataEntry_NamesEntry()
    {
        List<KeyValuePair<string, byte[]>> entries = IoFixtures.Entries(IoFixtures.Path("plain_f32.pt"));
        Assert.Contains(entries, kv => kv.Key == "plain_f32/data/0");
        using var dir = new TempDir();
        string path = dir.Write("missing.pt", IoFixtures.Zip(entries.Where(kv => kv.Key != "plain_f32/data/0")));

        DitCacheException e = Assert.Throws<DitCacheException>(() => TorchCheckpoint.Load(path));
        Assert.Contains(path, e.Message, StringComparison.Ordinal);
        Assert.Contains("no entry 'plain_f32/data/0'", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_ShortStorageEntry_IsRefused()
    {
        List<KeyValuePair<string, byte[]>> entries = IoFixtures.Entries(IoFixtures.Path("plain_f32.pt"))
            .Select(kv => kv.Key == "plain_f32/data/0" ? new KeyValuePair<string, byte[]>(kv.Key, kv.Value[..^4]) : kv)
            .ToList();
        using var dir = new TempDir();
        string path = dir.Write("short.pt", IoFixtures.Zip(entries));

        DitCacheException e = Assert.Throws<DitCacheException>(() => TorchCheckpoint.Load(path));
        Assert.Contains("'plain_f32/data/0'", e.Message, StringComparison.Ordinal);
        Assert.Contains("truncated", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_BigEndian_IsRefused()
    {
        List<KeyValuePair<string, byte[]>> entries = IoFixtures.Entries(IoFixtures.Path("plain_f32.pt"));
        entries.Add(new("plain_f32/byteorder", "big"u8.ToArray()));
        using var dir = new TempDir();
        string path = dir.Write("big.pt", IoFixtures.Zip(entries));

        DitCacheException e = Assert.Throws<DitCacheException>(() => TorchCheckpoint.Load(path));
        Assert.Contains("'big'", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_LittleByteorderEntry_IsAccepted()
    {
        // torch >= 2.1 writes `byteorder`.
        List<KeyValuePair<string, byte[]>> entries = IoFixtures.Entries(IoFixtures.Path("plain_f32.pt"));
        entries.Add(new("plain_f32/byteorder", "little"u8.ToArray()));
        using var dir = new TempDir();
        TensorFile file = TorchCheckpoint.Load(dir.Write("little.pt", IoFixtures.Zip(entries)));
        Assert.Equal(IoFixtures.GoldenOf("plain_f32").Count, file.Tensors.Count);
    }

    [Fact]
    public void Load_NotTorchZip_IsRefused()
    {
        using var dir = new TempDir();
        string path = dir.Write("other.zip", IoFixtures.Zip([new("readme.txt", "hi"u8.ToArray())]));
        DitCacheException e = Assert.Throws<DitCacheException>(() => TorchCheckpoint.Load(path));
        Assert.Contains("data.pkl", e.Message, StringComparison.Ordinal);
    }

    // Hand-written pickles: each is what a hostile or broken writer could put in data.pkl.

    [Fact]
    public void Pickle_StackGlobalEval_IsRefused()
    {
        byte[] pkl = Pickle(Op(0x80, 2), Short("builtins"), Short("eval"), Op(0x93), Short("print(1)"), Op(0x85, (byte)'R', (byte)'.'));
        DitCacheException e = LoadPickle(pkl);
        Assert.Contains("global 'builtins.eval'", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Pickle_TopLevelList_IsRefused()
    {
        DitCacheException e = LoadPickle(Pickle(Op(0x80, 2, (byte)']', (byte)'.')));
        Assert.Contains("a list at the top", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Pickle_UnknownOpcode_IsRefused()
    {
        DitCacheException e = LoadPickle(Pickle(Op(0x80, 2, (byte)'}', (byte)'i')));
        Assert.Contains("opcode 0x69", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Pickle_Truncated_IsRefused()
    {
        DitCacheException e = LoadPickle(Pickle(Op(0x80, 2, (byte)'}', (byte)'(')));
        Assert.Contains("ends early", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Pickle_NonTensorValue_NamesKey()
    {
        byte[] pkl = Pickle(Op(0x80, 2, (byte)'}'), Unicode("lr"), Op((byte)'K', 3, (byte)'s', (byte)'.'));
        DitCacheException e = LoadPickle(pkl);
        Assert.Contains("'lr' is an integer, not a tensor", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0, 2, 1, null)] // fits the 2-element storage
    [InlineData(1, 2, 1, "reaches element 3 but its storage holds 2")]
    [InlineData(0, 3, 1, "reaches element 3 but its storage holds 2")]
    [InlineData(0, 2, 2, "reaches element 3 but its storage holds 2")]
    public void Pickle_TensorExtent_IsCheckedAgainstStorage(int offset, int size, int stride, string? error)
    {
        byte[] pkl = Pickle(
            Op(0x80, 2, (byte)'}'), Unicode("w"),
            Global("torch._utils", "_rebuild_tensor_v2"),
            Op((byte)'(', (byte)'('), Unicode("storage"), Global("torch", "FloatStorage"), Unicode("0"), Unicode("cpu"),
            Op((byte)'K', 2, (byte)'t', (byte)'Q'),
            Op((byte)'K', (byte)offset, (byte)'K', (byte)size, 0x85, (byte)'K', (byte)stride, 0x85, 0x89, (byte)'N', (byte)'t', (byte)'R'),
            Op((byte)'s', (byte)'.'));
        byte[] storage = new byte[8];
        BitConverter.TryWriteBytes(storage.AsSpan(0, 4), 1.5f);
        BitConverter.TryWriteBytes(storage.AsSpan(4, 4), -2f);
        using var dir = new TempDir();
        string path = dir.Write("hand.pt", IoFixtures.Zip([new("archive/data.pkl", pkl), new("archive/data/0", storage)]));

        if (error is null)
        {
            Assert.Equal([1.5f, -2f], TorchCheckpoint.Load(path).Tensors["w"].Data);
        }
        else
        {
            DitCacheException e = Assert.Throws<DitCacheException>(() => TorchCheckpoint.Load(path));
            Assert.Contains("tensor 'w'", e.Message, StringComparison.Ordinal);
            Assert.Contains(error, e.Message, StringComparison.Ordinal);
        }
    }

    private static DitCacheException LoadPickle(byte[] pkl)
    {
        using var dir = new TempDir();
        string path = dir.Write("hand.pt", IoFixtures.Zip([new("archive/data.pkl", pkl)]));
        DitCacheException e = Assert.Throws<DitCacheException>(() => TorchCheckpoint.Load(path));
        Assert.Contains(path, e.Message, StringComparison.Ordinal);
        return e;
    }

    private static byte[] Pickle(params byte[][] parts) => parts.SelectMany(p => p).ToArray();

    private static byte[] Op(params byte[] bytes) => bytes;

    private static byte[] Short(string s) => [0x8c, (byte)Encoding.UTF8.GetByteCount(s), .. Encoding.UTF8.GetBytes(s)];

    private static byte[] Unicode(string s) => [(byte)'X', .. BitConverter.GetBytes(Encoding.UTF8.GetByteCount(s)), .. Encoding.UTF8.GetBytes(s)];

    private static byte[] Global(string module, string name) => [(byte)'c', .. Encoding.UTF8.GetBytes($"{module}\n{name}\n")];
}
