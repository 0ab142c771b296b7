using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.IO;
using System.IO.Compression;
using DitCache.Tensors;

namespace DitCache.Evaluation.Data;

/// <summary>Which half of Fashion-MNIST to read.</summary>
public enum FashionMnistSplit
{
    /// <summary>The 60,000 training images (<c>train-*</c> files).</summary>
    Train,

    /// <summary>The 10,000 test images (<c>t10k-*</c> files).</summary>
    Test,
}

/// <summary>
/// Fashion-MNIST (Xiao et al. 2017, arXiv 1708.07747) read from its official idx files, gzip-compressed or raw:
/// images <c>[N, 28, 28]</c> uint8 (0 = background, 255 = ink), labels <c>[N]</c> in 0..9. Debian's
/// <c>dataset-fashion-mnist</c> package installs them under <see cref="DefaultRoot"/>.
/// </summary>
/// <remarks>
/// The idx format: a big-endian uint32 magic <c>0x00000800 | ndim</c> (type byte 0x08 = unsigned byte), ndim
/// big-endian uint32 dimensions, then the row-major bytes. Every field is checked, and a file with trailing bytes is
/// rejected as well as a short one: a reader that guesses at a damaged file would make the metrics silently wrong.
/// </remarks>
public sealed class FashionMnist
{
    /// <summary>Where Debian's <c>dataset-fashion-mnist</c> puts the files.</summary>
    public const string DefaultRoot = "/usr/share/datasets/fashion-mnist";

    /// <summary>The remedy printed when a file is missing.</summary>
    public const string InstallHint = "install it with: apt-get install -y dataset-fashion-mnist";

    /// <summary>Image height and width in pixels.</summary>
    public const int ImageSize = 28;

    /// <summary>Pixels per image.</summary>
    public const int Pixels = ImageSize * ImageSize;

    /// <summary>Number of classes.</summary>
    public const int ClassCount = 10;

    /// <summary>idx magic of a 3-d unsigned-byte array (the images).</summary>
    public const uint ImagesMagic = 0x00000803;

    /// <summary>idx magic of a 1-d unsigned-byte array (the labels).</summary>
    public const uint LabelsMagic = 0x00000801;

    private readonly byte[] _images;
    private readonly byte[] _labels;

    private FashionMnist(byte[] images, byte[] labels, string source)
    {
        _images = images;
        _labels = labels;
        Source = source;
    }

    /// <summary>The class names, indexed by label (the dataset's README order).</summary>
    public static IReadOnlyList<string> ClassNames { get; } =
    [
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    ];

    /// <summary>Number of images (and labels).</summary>
    public int Count => _labels.Length;

    /// <summary>The images file the data came from, for messages and reports.</summary>
    public string Source { get; }

    /// <summary>All pixels, <c>[Count, 28, 28]</c> row-major, 0..255.</summary>
    public ReadOnlySpan<byte> Images => _images;

    /// <summary>All labels, <c>[Count]</c>, each in 0..9.</summary>
    public ReadOnlySpan<byte> Labels => _labels;

    /// <summary>The idx images file of <paramref name="split"/> under <paramref name="root"/> (default <see cref="DefaultRoot"/>).</summary>
    public static string ImagesPath(FashionMnistSplit split, string? root = null) =>
        Path.Combine(root ?? DefaultRoot, Prefix(split) + "-images-idx3-ubyte.gz");

    /// <summary>The idx labels file of <paramref name="split"/> under <paramref name="root"/> (default <see cref="DefaultRoot"/>).</summary>
    public static string LabelsPath(FashionMnistSplit split, string? root = null) =>
        Path.Combine(root ?? DefaultRoot, Prefix(split) + "-labels-idx1-ubyte.gz");

    /// <summary>Whether both files of both splits exist under <paramref name="root"/>.</summary>
    public static bool IsInstalled(string? root = null) =>
        File.Exists(ImagesPath(FashionMnistSplit.Train, root)) && File.Exists(LabelsPath(FashionMnistSplit.Train, root))
        && File.Exists(ImagesPath(FashionMnistSplit.Test, root)) && File.Exists(LabelsPath(FashionMnistSplit.Test, root));

    /// <summary>Reads one split from the Debian layout under <paramref name="root"/> (default <see cref="DefaultRoot"/>).</summary>
    /// <exception cref="DitCacheException">A file is missing (the message says how to install it) or malformed.</exception>
    public static FashionMnist Load(FashionMnistSplit split, string? root = null) =>
        Load(ImagesPath(split, root), LabelsPath(split, root));

    /// <summary>
    /// Reads an images idx file and a labels idx file (each gzip-compressed or raw, detected from the content),
    /// and checks that they describe the same number of 28×28 images with labels in 0..9.
    /// </summary>
    /// <exception cref="DitCacheException">A file is missing, unreadable or malformed; the message names the file and the problem.</exception>
    public static FashionMnist Load(string imagesPath, string labelsPath)
    {
        ArgumentNullException.ThrowIfNull(imagesPath);
        ArgumentNullException.ThrowIfNull(labelsPath);
        (int[] imageDims, byte[] images) = ReadIdx(imagesPath, ImagesMagic, "images");
        if (imageDims[1] != ImageSize || imageDims[2] != ImageSize)
        {
            throw new DitCacheException(
                $"{imagesPath}: images are {imageDims[1]}x{imageDims[2]} but Fashion-MNIST images are {ImageSize}x{ImageSize}");
        }

        (int[] labelDims, byte[] labels) = ReadIdx(labelsPath, LabelsMagic, "labels");
        if (labelDims[0] != imageDims[0])
        {
            throw new DitCacheException(
                $"{labelsPath}: holds {labelDims[0]} labels but {imagesPath} holds {imageDims[0]} images; the two files must come from the same split");
        }

        for (int i = 0; i < labels.Length; i++)
        {
            if (labels[i] >= ClassCount)
            {
                throw new DitCacheException(
                    $"{labelsPath}: label {labels[i]} at index {i} is outside 0..{ClassCount - 1}; the file is not Fashion-MNIST labels");
            }
        }

        return new FashionMnist(images, labels, imagesPath);
    }

    /// <summary>
    /// Writes images <paramref name="start"/> .. <paramref name="start"/>+<paramref name="count"/>-1 as float32 in
    /// [-1, 1] (<c>x / 127.5 − 1</c>, the DiT's pixel range) into <paramref name="destination"/>,
    /// <c>[count, 1, 28, 28]</c> row-major.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The range is outside the dataset.</exception>
    /// <exception cref="ArgumentException">The destination holds fewer than count·784 floats.</exception>
    public void CopyImages(int start, int count, Span<float> destination)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(start);
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(start, Count - count);
        if (destination.Length < (long)count * Pixels)
        {
            throw new ArgumentException(
                $"destination holds {destination.Length} floats but {count} images need {(long)count * Pixels}", nameof(destination));
        }

        ReadOnlySpan<byte> src = _images.AsSpan(start * Pixels, count * Pixels);
        for (int i = 0; i < src.Length; i++)
        {
            destination[i] = ToSigned(src[i]);
        }
    }

    /// <summary>Images as a new float32 array in [-1, 1], <c>[count, 1, 28, 28]</c>; see <see cref="CopyImages"/>. All images by default.</summary>
    public float[] ImagesAsFloat(int start = 0, int count = -1)
    {
        int n = count < 0 ? Count - start : count;
        float[] result = new float[(long)n * Pixels];
        CopyImages(start, n, result);
        return result;
    }

    /// <summary>Pixel byte to the model's range: 0 → −1, 255 → +1.</summary>
    public static float ToSigned(byte pixel) => (pixel / 127.5f) - 1f;

    private static string Prefix(FashionMnistSplit split) => split switch
    {
        FashionMnistSplit.Train => "train",
        FashionMnistSplit.Test => "t10k",
        _ => throw new ArgumentOutOfRangeException(nameof(split), split, "expected Train or Test"),
    };

    /// <summary>Reads and validates one idx file; returns its dimensions and its data bytes.</summary>
    private static (int[] Dims, byte[] Data) ReadIdx(string path, uint expectedMagic, string what)
    {
        byte[] bytes = ReadMaybeGzip(path, what);
        if (bytes.Length < 4)
        {
            throw new DitCacheException($"{path}: {bytes.Length} bytes is too short for an idx header (truncated {what} file?)");
        }

        uint magic = BinaryPrimitives.ReadUInt32BigEndian(bytes);
        if (magic != expectedMagic)
        {
            throw new DitCacheException(
                $"{path}: idx magic is 0x{magic:X8} but {what} files start with 0x{expectedMagic:X8}; is this the {what} file, and is it idx?");
        }

        int ndim = (int)(magic & 0xFF);
        int headerBytes = 4 + (4 * ndim);
        if (bytes.Length < headerBytes)
        {
            throw new DitCacheException(
                $"{path}: {bytes.Length} bytes is too short for an idx header with {ndim} dimensions (truncated {what} file?)");
        }

        int[] dims = new int[ndim];
        long expected = 1;
        for (int d = 0; d < ndim; d++)
        {
            uint dim = BinaryPrimitives.ReadUInt32BigEndian(bytes.AsSpan(4 + (4 * d)));
            if (dim == 0 || dim > int.MaxValue)
            {
                throw new DitCacheException($"{path}: dimension {d} of the idx header is {dim}; expected a positive size");
            }

            dims[d] = (int)dim;
            expected *= dim;
            if (expected > Array.MaxLength)
            {
                throw new DitCacheException($"{path}: the idx header declares more than {Array.MaxLength} bytes of {what}");
            }
        }

        long actual = bytes.Length - headerBytes;
        if (actual != expected)
        {
            string kind = actual < expected ? "truncated" : "has trailing bytes";
            throw new DitCacheException(
                $"{path}: {kind}: the header [{string.Join(", ", dims)}] needs {expected} data bytes but the file holds {actual}");
        }

        return (dims, bytes.AsSpan(headerBytes).ToArray());
    }

    private static byte[] ReadMaybeGzip(string path, string what)
    {
        if (!File.Exists(path))
        {
            throw new DitCacheException($"Fashion-MNIST {what} file {path} not found; {InstallHint}");
        }

        byte[] raw;
        try
        {
            raw = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new DitCacheException($"{path}: cannot read the {what} file: {e.Message}", e);
        }

        bool gzip = raw.Length >= 2 && raw[0] == 0x1F && raw[1] == 0x8B;
        if (!gzip)
        {
            return raw;
        }

        try
        {
            using var input = new MemoryStream(raw, writable: false);
            using var unzip = new GZipStream(input, CompressionMode.Decompress);
            using var output = new MemoryStream(raw.Length * 4);
            unzip.CopyTo(output);
            return output.ToArray();
        }
        catch (InvalidDataException e)
        {
            throw new DitCacheException($"{path}: corrupt gzip data in the {what} file ({e.Message}); re-install or re-download it", e);
        }
        catch (EndOfStreamException e)
        {
            throw new DitCacheException($"{path}: the gzip stream of the {what} file ends early (truncated download?)", e);
        }
    }
}
