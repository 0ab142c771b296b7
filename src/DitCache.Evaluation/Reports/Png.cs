using System;
using System.Buffers.Binary;
using System.IO;
using System.IO.Compression;
using DitCache.Tensors;

namespace DitCache.Evaluation.Reports;

/// <summary>
/// PNG output of sample grids: 8-bit grayscale or RGB, one IDAT chunk compressed with zlib (System.IO.Compression),
/// CRC-32 per the PNG specification. Pixel values map from [−1, 1] as DiT's sample.py saves them through
/// torchvision's save_image(normalize=True, value_range=(−1, 1)): (clamp(x, −1, 1) + 1) / 2, times 255, plus 0.5,
/// truncated to a byte, i.e. rounded half up (the clamp is for display only; saved tensors are never clamped).
/// </summary>
public static class Png
{
    /// <summary>
    /// Lays <paramref name="images"/> (N, C, H, W) out in a grid of <paramref name="columns"/> columns with a
    /// <paramref name="padding"/>-pixel border and returns the encoded PNG bytes. C must be 1 or 3.
    /// </summary>
    /// <exception cref="DitCacheException">C is not 1 or 3 (a latent model needs a VAE to decode).</exception>
    public static byte[] EncodeGrid(Tensor images, int columns, int padding = 2)
    {
        if (images.Rank != 4)
        {
            throw new ArgumentException($"images must be (N, C, H, W), got {images.ShapeText}", nameof(images));
        }

        int n = images.Dim(0), c = images.Dim(1), h = images.Dim(2), w = images.Dim(3);
        if (c is not (1 or 3))
        {
            throw new DitCacheException(
                $"--out: the images have {c} channels and a PNG holds 1 or 3; a latent DiT's samples are decoded by a VAE first (--vae PATH), or kept with --save-tensor",
                exitCode: 2);
        }

        columns = Math.Clamp(columns, 1, Math.Max(1, n));
        int rows = (n + columns - 1) / columns;
        int width = (columns * (w + padding)) + padding, height = (rows * (h + padding)) + padding;
        byte[] pixels = new byte[width * height * c];
        for (int i = 0; i < n; i++)
        {
            int x0 = padding + ((i % columns) * (w + padding)), y0 = padding + ((i / columns) * (h + padding));
            for (int ch = 0; ch < c; ch++)
            {
                for (int y = 0; y < h; y++)
                {
                    for (int x = 0; x < w; x++)
                    {
                        float v = images.Data[(((((i * c) + ch) * h) + y) * w) + x];
                        pixels[((((y0 + y) * width) + x0 + x) * c) + ch] = ToByte(v);
                    }
                }
            }
        }

        return Encode(pixels, width, height, c);
    }

    /// <summary>
    /// Maps a value in [−1, 1] to a byte as torchvision's save_image does for DiT's sample.py, in float32 and in its
    /// order of operations: y = (clamp(v, −1, 1) + 1) / 2 (make_grid's normalize), then clamp(y·255 + 0.5, 0, 255)
    /// truncated (save_image's <c>mul(255).add_(0.5).clamp_(0, 255)</c> and uint8 cast): rounded half up. NaN maps to 0.
    /// </summary>
    public static byte ToByte(float v)
    {
        if (float.IsNaN(v))
        {
            return 0;
        }

        float y = (Math.Clamp(v, -1f, 1f) + 1f) / 2f;
        float scaled = (y * 255f) + 0.5f;
        return (byte)Math.Clamp(scaled, 0f, 255f);
    }

    /// <summary>Encodes raw 8-bit pixels (row-major, <paramref name="channels"/> = 1 gray or 3 RGB) as a PNG.</summary>
    public static byte[] Encode(ReadOnlySpan<byte> pixels, int width, int height, int channels)
    {
        using var raw = new MemoryStream();
        using (var z = new ZLibStream(raw, CompressionLevel.Optimal, leaveOpen: true))
        {
            int stride = width * channels;
            for (int y = 0; y < height; y++)
            {
                z.WriteByte(0); // filter type None
                z.Write(pixels.Slice(y * stride, stride));
            }
        }

        using var png = new MemoryStream();
        png.Write([0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A]);
        byte[] header = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(header, width);
        BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(4), height);
        header[8] = 8;                                  // bit depth
        header[9] = (byte)(channels == 1 ? 0 : 2);      // colour type: gray or RGB
        WriteChunk(png, "IHDR", header);
        WriteChunk(png, "IDAT", raw.ToArray());
        WriteChunk(png, "IEND", []);
        return png.ToArray();
    }

    private static void WriteChunk(Stream s, string type, ReadOnlySpan<byte> data)
    {
        Span<byte> word = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(word, data.Length);
        s.Write(word);
        byte[] typeBytes = [(byte)type[0], (byte)type[1], (byte)type[2], (byte)type[3]];
        s.Write(typeBytes);
        s.Write(data);
        uint crc = Crc32(Crc32(0xFFFFFFFFu, typeBytes), data) ^ 0xFFFFFFFFu;
        BinaryPrimitives.WriteUInt32BigEndian(word, crc);
        s.Write(word);
    }

    private static readonly uint[] s_crcTable = BuildCrcTable();

    private static uint[] BuildCrcTable()
    {
        uint[] table = new uint[256];
        for (uint n = 0; n < 256; n++)
        {
            uint c = n;
            for (int k = 0; k < 8; k++)
            {
                c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            }

            table[n] = c;
        }

        return table;
    }

    /// <summary>Running CRC-32 (PNG / zlib polynomial) without the final inversion.</summary>
    internal static uint Crc32(uint crc, ReadOnlySpan<byte> data)
    {
        foreach (byte b in data)
        {
            crc = s_crcTable[(crc ^ b) & 0xFF] ^ (crc >> 8);
        }

        return crc;
    }
}
