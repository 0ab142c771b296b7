using System;
using System.IO;
using System.IO.Compression;
using System.Linq;
using Xunit;

namespace DitCache.Tests;

/// <summary>Fixtures, temporary folders, and a PNG reader that shares no code with the library's writer.</summary>
internal static class TestFiles
{
    public static string Data(params string[] parts) => Path.Combine([AppContext.BaseDirectory, "TestData", .. parts]);

    /// <summary>A fresh empty folder for one test.</summary>
    public static string TempDir()
    {
        string dir = Path.Combine(Path.GetTempPath(), "ditcache-facade-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        return dir;
    }

    /// <summary>The repository root: the folder above the test binaries that holds DitCache.slnx.</summary>
    public static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "DitCache.slnx")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException($"no DitCache.slnx above {AppContext.BaseDirectory}");
    }

    /// <summary>A diffusers pipeline folder: the tiny DiT of diffusers/tiny-dit plus the tiny VAE of vae/ as vae/.</summary>
    public static string PipelineFolder() => TinyPipelineFolder.Create(TempDir());

    /// <summary>
    /// Reads an 8-bit grayscale or RGB PNG whose rows all use filter 0, from the PNG specification: signature, IHDR,
    /// the IDAT chunks concatenated and inflated (zlib), IEND.
    /// </summary>
    public static (int Width, int Height, int Channels, byte[] Pixels) DecodePng(byte[] png)
    {
        byte[] signature = [137, 80, 78, 71, 13, 10, 26, 10];
        Assert.True(png.AsSpan(0, 8).SequenceEqual(signature), "not a PNG signature");
        int Be(int at) => (png[at] << 24) | (png[at + 1] << 16) | (png[at + 2] << 8) | png[at + 3];
        int width = 0, height = 0, channels = 0;
        using var idat = new MemoryStream();
        bool ended = false;
        for (int at = 8; at < png.Length && !ended; at += Be(at) + 12)
        {
            int length = Be(at);
            string type = System.Text.Encoding.ASCII.GetString(png, at + 4, 4);
            switch (type)
            {
                case "IHDR":
                    width = Be(at + 8);
                    height = Be(at + 12);
                    Assert.Equal(8, png[at + 16]);                     // bit depth
                    channels = png[at + 17] switch { 0 => 1, 2 => 3, _ => throw new InvalidOperationException($"colour type {png[at + 17]}") };
                    break;
                case "IDAT":
                    idat.Write(png, at + 8, length);
                    break;
                case "IEND":
                    ended = true;
                    break;
            }
        }

        Assert.True(ended, "no IEND chunk");
        idat.Position = 0;
        using var z = new ZLibStream(idat, CompressionMode.Decompress);
        using var raw = new MemoryStream();
        z.CopyTo(raw);
        byte[] rows = raw.ToArray();
        int stride = (width * channels) + 1;
        Assert.Equal(height * stride, rows.Length);
        var pixels = new byte[width * height * channels];
        for (int y = 0; y < height; y++)
        {
            Assert.Equal(0, rows[y * stride]);
            Array.Copy(rows, (y * stride) + 1, pixels, y * width * channels, width * channels);
        }

        return (width, height, channels, pixels);
    }

    /// <summary>torchvision's save_image mapping written out in float64: clamp to [−1, 1], (x + 1) / 2 · 255 + 0.5, floor.</summary>
    public static int ExpectedByte(float v) => (int)Math.Floor(((Math.Clamp((double)v, -1.0, 1.0) + 1) / 2 * 255) + 0.5);

    /// <summary>max |a − b| over max |b|, the relative measure of tests/TestData/README.md.</summary>
    public static double MaxRelative(ReadOnlySpan<float> got, ReadOnlySpan<float> want)
    {
        Assert.Equal(want.Length, got.Length);
        double err = 0, scale = 0;
        for (int i = 0; i < want.Length; i++)
        {
            err = Math.Max(err, Math.Abs((double)got[i] - want[i]));
            scale = Math.Max(scale, Math.Abs((double)want[i]));
        }

        Assert.True(scale > 0, "reference is all zeros");
        return err / scale;
    }

    /// <summary>‖a − b‖₂ / ‖b‖₂ in float64.</summary>
    public static double RelativeL2(ReadOnlySpan<float> got, ReadOnlySpan<float> want)
    {
        Assert.Equal(want.Length, got.Length);
        double num = 0, den = 0;
        for (int i = 0; i < want.Length; i++)
        {
            double d = (double)got[i] - want[i];
            num += d * d;
            den += (double)want[i] * want[i];
        }

        return Math.Sqrt(num / den);
    }

    public static bool BitEqual(float[] a, float[] b) =>
        a.Length == b.Length && a.AsSpan().SequenceEqual(b);

    public static int[] Labels(float[] values) => values.Select(v => (int)v).ToArray();
}
