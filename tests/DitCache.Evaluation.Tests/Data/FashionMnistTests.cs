using System;
using System.Buffers.Binary;
using System.IO;
using System.IO.Compression;
using System.Linq;
using DitCache.Evaluation.Data;
using DitCache.Tensors;
using Xunit;

namespace DitCache.Evaluation.Tests.Data;

public sealed class FashionMnistTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "ditcache-fmnist-" + Guid.NewGuid().ToString("N"));

    public FashionMnistTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    // ---- synthetic idx files -------------------------------------------------------------------------------

    /// <summary>idx bytes: big-endian magic, dims, then the data.</summary>
    private static byte[] Idx(uint magic, int[] dims, byte[] data)
    {
        byte[] bytes = new byte[4 + (4 * dims.Length) + data.Length];
        BinaryPrimitives.WriteUInt32BigEndian(bytes, magic);
        for (int d = 0; d < dims.Length; d++)
        {
            BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(4 + (4 * d)), (uint)dims[d]);
        }

        data.CopyTo(bytes, 4 + (4 * dims.Length));
        return bytes;
    }

    private static byte[] Gzip(byte[] raw)
    {
        using var output = new MemoryStream();
        using (var zip = new GZipStream(output, CompressionLevel.Fastest))
        {
            zip.Write(raw);
        }

        return output.ToArray();
    }

    private static byte[] Pixels(int n)
    {
        byte[] p = new byte[n * 784];
        for (int i = 0; i < p.Length; i++)
        {
            p[i] = (byte)((i * 7) % 256);
        }

        return p;
    }

    private string Write(string name, byte[] bytes)
    {
        string path = Path.Combine(_dir, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    private (string Images, string Labels) WriteGood(int n, bool gzip)
    {
        byte[] images = Idx(FashionMnist.ImagesMagic, [n, 28, 28], Pixels(n));
        byte[] labels = Idx(FashionMnist.LabelsMagic, [n], [.. Enumerable.Range(0, n).Select(i => (byte)(i % 10))]);
        string ext = gzip ? ".gz" : string.Empty;
        return (Write("img" + ext, gzip ? Gzip(images) : images), Write("lbl" + ext, gzip ? Gzip(labels) : labels));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Reads_synthetic_files_raw_and_gzip(bool gzip)
    {
        (string images, string labels) = WriteGood(12, gzip);
        FashionMnist data = FashionMnist.Load(images, labels);

        Assert.Equal(12, data.Count);
        Assert.Equal(12 * 784, data.Images.Length);
        Assert.Equal(Pixels(12), data.Images.ToArray());
        Assert.Equal(11 % 10, data.Labels[11]);
        Assert.Equal(images, data.Source);
    }

    [Fact]
    public void Float_images_map_0_255_to_minus1_plus1()
    {
        (string images, string labels) = WriteGood(3, gzip: false);
        FashionMnist data = FashionMnist.Load(images, labels);

        float[] all = data.ImagesAsFloat();
        float[] last = data.ImagesAsFloat(start: 2, count: 1);

        Assert.Equal(3 * 784, all.Length);
        Assert.Equal(784, last.Length);
        for (int i = 0; i < all.Length; i++)
        {
            Assert.Equal((data.Images[i] / 127.5f) - 1f, all[i]);
        }

        Assert.Equal(all.AsSpan(2 * 784).ToArray(), last);
        Assert.Equal(-1f, FashionMnist.ToSigned(0));
        Assert.Equal(1f, FashionMnist.ToSigned(255));
        Assert.Throws<ArgumentOutOfRangeException>(() => data.ImagesAsFloat(start: 2, count: 2));
        Assert.Throws<ArgumentException>(() => data.CopyImages(0, 2, new float[784]));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Truncated_images_file_names_the_file_and_the_sizes(bool gzip)
    {
        (_, string labels) = WriteGood(4, gzip: false);
        byte[] full = Idx(FashionMnist.ImagesMagic, [4, 28, 28], Pixels(4));
        byte[] cut = full.AsSpan(0, full.Length - 100).ToArray();
        string images = Write("cut", gzip ? Gzip(cut) : cut);

        DitCacheException e = Assert.Throws<DitCacheException>(() => FashionMnist.Load(images, labels));

        Assert.Contains(images, e.Message, StringComparison.Ordinal);
        Assert.Contains("truncated", e.Message, StringComparison.Ordinal);
        Assert.Contains("3136", e.Message, StringComparison.Ordinal);   // needed bytes
    }

    [Fact]
    public void Truncated_gzip_stream_is_reported()
    {
        (string goodImages, string labels) = WriteGood(4, gzip: true);
        byte[] gz = File.ReadAllBytes(goodImages);
        string images = Write("cut.gz", gz.AsSpan(0, gz.Length / 2).ToArray());

        DitCacheException e = Assert.Throws<DitCacheException>(() => FashionMnist.Load(images, labels));

        Assert.Contains(images, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Trailing_bytes_are_rejected()
    {
        (_, string labels) = WriteGood(2, gzip: false);
        byte[] full = Idx(FashionMnist.ImagesMagic, [2, 28, 28], Pixels(2));
        string images = Write("long", [.. full, 0, 0]);

        DitCacheException e = Assert.Throws<DitCacheException>(() => FashionMnist.Load(images, labels));

        Assert.Contains("trailing bytes", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Header_shorter_than_its_dimensions_is_rejected()
    {
        (_, string labels) = WriteGood(2, gzip: false);
        string images = Write("hdr", [0, 0, 8, 3, 0, 0]);

        DitCacheException e = Assert.Throws<DitCacheException>(() => FashionMnist.Load(images, labels));

        Assert.Contains("too short", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Bad_magic_names_both_magics()
    {
        (string images, _) = WriteGood(2, gzip: false);
        // A labels file passed as images: magic 0x00000801.
        string swapped = Write("swapped", Idx(FashionMnist.LabelsMagic, [2], [1, 2]));

        DitCacheException e = Assert.Throws<DitCacheException>(() => FashionMnist.Load(swapped, images));

        Assert.Contains(swapped, e.Message, StringComparison.Ordinal);
        Assert.Contains("0x00000801", e.Message, StringComparison.Ordinal);
        Assert.Contains("0x00000803", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Wrong_image_size_is_rejected()
    {
        (_, string labels) = WriteGood(2, gzip: false);
        string images = Write("small", Idx(FashionMnist.ImagesMagic, [2, 27, 28], new byte[2 * 27 * 28]));

        DitCacheException e = Assert.Throws<DitCacheException>(() => FashionMnist.Load(images, labels));

        Assert.Contains("27x28", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Count_mismatch_names_both_counts()
    {
        (string images, _) = WriteGood(3, gzip: false);
        string labels = Write("lbl2", Idx(FashionMnist.LabelsMagic, [2], [0, 1]));

        DitCacheException e = Assert.Throws<DitCacheException>(() => FashionMnist.Load(images, labels));

        Assert.Contains("2 labels", e.Message, StringComparison.Ordinal);
        Assert.Contains("3 images", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Label_10_is_rejected_with_its_index()
    {
        (string images, _) = WriteGood(3, gzip: false);
        string labels = Write("lbl10", Idx(FashionMnist.LabelsMagic, [3], [0, 10, 1]));

        DitCacheException e = Assert.Throws<DitCacheException>(() => FashionMnist.Load(images, labels));

        Assert.Contains(labels, e.Message, StringComparison.Ordinal);
        Assert.Contains("label 10 at index 1", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Missing_file_says_how_to_install_it()
    {
        string missing = Path.Combine(_dir, "nope", "t10k-images-idx3-ubyte.gz");

        DitCacheException e = Assert.Throws<DitCacheException>(() => FashionMnist.Load(missing, missing));

        Assert.Contains(missing, e.Message, StringComparison.Ordinal);
        Assert.Contains("install it with: apt-get install -y dataset-fashion-mnist", e.Message, StringComparison.Ordinal);
        Assert.False(FashionMnist.IsInstalled(_dir));
    }

    [Fact]
    public void Debian_layout_paths()
    {
        Assert.Equal("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz", FashionMnist.ImagesPath(FashionMnistSplit.Test));
        Assert.Equal("/r/train-labels-idx1-ubyte.gz", FashionMnist.LabelsPath(FashionMnistSplit.Train, "/r"));
        Assert.Equal(10, FashionMnist.ClassNames.Count);
        Assert.Equal("T-shirt/top", FashionMnist.ClassNames[0]);
        Assert.Equal("Ankle boot", FashionMnist.ClassNames[9]);
    }

    // ---- the real files (Debian dataset-fashion-mnist) ------------------------------------------------------

    [FashionMnistFact]
    public void Debian_training_set_has_the_published_statistics()
    {
        FashionMnist train = FashionMnist.Load(FashionMnistSplit.Train);

        Assert.Equal(60000, train.Count);
        AssertBalanced(train, 6000);
        Assert.Equal(9, train.Labels[0]);                    // the first training image is an ankle boot
        // The normalisation constants quoted everywhere for Fashion-MNIST: mean 0.2860, std 0.3530 (pixels / 255).
        (double mean, double std) = MeanStd(train.Images);
        Assert.InRange(mean, 0.28600, 0.28610);
        Assert.InRange(std, 0.35300, 0.35305);
        Assert.Equal(IndependentPixelSum(FashionMnist.ImagesPath(FashionMnistSplit.Train)), Sum(train.Images));
    }

    [FashionMnistFact]
    public void Debian_test_set_has_the_published_statistics()
    {
        FashionMnist test = FashionMnist.Load(FashionMnistSplit.Test);

        Assert.Equal(10000, test.Count);
        AssertBalanced(test, 1000);
        Assert.Equal(new byte[] { 9, 2, 1, 1, 6, 1 }, test.Labels[..6].ToArray());
        (double mean, _) = MeanStd(test.Images);
        Assert.InRange(mean, 0.2868, 0.2869);
        Assert.Equal(IndependentPixelSum(FashionMnist.ImagesPath(FashionMnistSplit.Test)), Sum(test.Images));
    }

    private static void AssertBalanced(FashionMnist data, int perClass)
    {
        int[] counts = new int[10];
        foreach (byte label in data.Labels)
        {
            counts[label]++;
        }

        Assert.All(counts, c => Assert.Equal(perClass, c));
    }

    private static (double Mean, double Std) MeanStd(ReadOnlySpan<byte> pixels)
    {
        double s = 0;
        double s2 = 0;
        foreach (byte p in pixels)
        {
            double v = p / 255.0;
            s += v;
            s2 += v * v;
        }

        double mean = s / pixels.Length;
        return (mean, Math.Sqrt((s2 / pixels.Length) - (mean * mean)));
    }

    private static long Sum(ReadOnlySpan<byte> pixels)
    {
        long s = 0;
        foreach (byte p in pixels)
        {
            s += p;
        }

        return s;
    }

    /// <summary>Sum of all pixel bytes, read without the loader: gunzip, skip the fixed 16-byte idx3 header.</summary>
    private static long IndependentPixelSum(string path)
    {
        using FileStream file = File.OpenRead(path);
        using var zip = new GZipStream(file, CompressionMode.Decompress);
        byte[] buffer = new byte[1 << 16];
        long sum = 0;
        int skip = 16;
        int read;
        while ((read = zip.Read(buffer)) > 0)
        {
            for (int i = 0; i < read; i++)
            {
                if (skip > 0)
                {
                    skip--;
                    continue;
                }

                sum += buffer[i];
            }
        }

        return sum;
    }
}
