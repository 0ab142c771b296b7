using System;
using System.IO;
using Microsoft.Win32.SafeHandles;

namespace DitCache.Tensors.IO;

/// <summary>
/// Positioned reads of a checkpoint file that end in a <see cref="DitCacheException"/> naming the file, never in an
/// I/O exception. A reader opens the file once for its header and again for each tensor it reads later; the file
/// must keep the length it had when the header was read.
/// </summary>
internal static class FileAccessor
{
    /// <summary>Opens <paramref name="path"/> for reading.</summary>
    public static SafeFileHandle Open(string path)
    {
        try
        {
            return File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            throw new DitCacheException($"{path}: cannot open the model file ({e.Message}); check the path", e);
        }
    }

    /// <summary>The file's length in bytes.</summary>
    public static long Length(SafeFileHandle handle, string path)
    {
        try
        {
            return RandomAccess.GetLength(handle);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException)
        {
            throw new DitCacheException($"{path}: cannot read the model file ({e.Message}); check that it is a regular file", e);
        }
    }

    /// <summary>Opens <paramref name="path"/> again for a tensor read; it must still be <paramref name="length"/> bytes long.</summary>
    public static SafeFileHandle Reopen(string path, long length)
    {
        SafeFileHandle handle = Open(path);
        long now = Length(handle, path);
        if (now != length)
        {
            handle.Dispose();
            throw new DitCacheException(
                $"{path}: the file changed while it was being read ({length} bytes when its header was read, {now} now); load it again once it is no longer being written");
        }

        return handle;
    }

    /// <summary>Fills <paramref name="destination"/> from <paramref name="offset"/>.</summary>
    public static void ReadExactly(SafeFileHandle handle, string path, long offset, Span<byte> destination)
    {
        int total = 0;
        try
        {
            while (total < destination.Length)
            {
                int n = RandomAccess.Read(handle, destination[total..], offset + total);
                if (n == 0)
                {
                    throw new DitCacheException(
                        $"{path}: file ended at byte {offset + total} while {destination.Length - total} more bytes were expected; the file is truncated, download or export it again");
                }

                total += n;
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException)
        {
            throw new DitCacheException($"{path}: cannot read bytes {offset}..{offset + destination.Length} ({e.Message}); check the file and the disk", e);
        }
    }
}
