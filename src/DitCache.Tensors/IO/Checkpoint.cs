using System;
using System.IO;

namespace DitCache.Tensors.IO;

/// <summary>Loads a checkpoint of any supported format, chosen by the file's first bytes, not its name.</summary>
public static class Checkpoint
{
    /// <summary>
    /// Reads safetensors (8-byte header length, then a JSON object), or a PyTorch <c>.pt</c> through
    /// <see cref="TorchCheckpoint.Load"/>: the zip format (<c>PK\x03\x04</c>), or the legacy (pre-1.6) format, which
    /// starts with a pickle's PROTO opcode (0x80, protocol 2 to 5).
    /// </summary>
    /// <exception cref="DitCacheException">The file is missing, unreadable, or in no supported format.</exception>
    public static TensorFile Load(string path)
    {
        const int HeadBytes = 9;
        Span<byte> head = stackalloc byte[HeadBytes];
        int n;
        try
        {
            using FileStream f = File.OpenRead(path);
            n = f.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            throw new DitCacheException($"{path}: cannot open the model file ({e.Message}); check the path", e);
        }

        head = head[..n];
        if (head.StartsWith("PK\x03\x04"u8))
        {
            return TorchCheckpoint.Load(path);
        }

        bool json = n == HeadBytes && head[8] == (byte)'{';
        if (json)
        {
            return SafeTensors.Load(path);
        }

        // torch.save before 1.6 (or with _use_new_zipfile_serialization=False) starts with the pickled magic
        // number 0x1950a86a20f9469cfc6c: PROTO 2 (the protocol torch.save uses unless told otherwise), LONG1 of 10
        // bytes. A safetensors header length starting 0x80 0x02 has '{' at byte 8 and was taken above.
        if (n >= 2 && head[0] == 0x80 && head[1] is >= 2 and <= 5)
        {
            return TorchCheckpoint.Load(path);
        }

        string what = n < HeadBytes
            ? $"{n} bytes is too short for any supported format"
            : $"first bytes {Convert.ToHexString(head)} match no supported format";
        throw new DitCacheException(
            $"{path}: {what} (expected safetensors: an 8-byte length then '{{', or a PyTorch .pt: a zip starting with 'PK', or the legacy format starting with byte 0x80); " +
            "export the checkpoint as safetensors or with torch.save");
    }
}
