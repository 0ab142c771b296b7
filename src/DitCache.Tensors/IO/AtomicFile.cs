using System;
using System.IO;

namespace DitCache.Tensors.IO;

/// <summary>
/// Writes a file so that readers never see a partial one: the bytes go to a temporary file beside the target, which
/// is then renamed over it. On failure the temporary file is removed and an existing target is left untouched. A
/// target that is a device or a FIFO (<see cref="FileKind.IsSpecial"/>) is written as a stream instead, never replaced.
/// </summary>
public static class AtomicFile
{
    /// <summary>Writes <paramref name="path"/> through <paramref name="write"/>; <paramref name="flag"/> names the option in errors.</summary>
    /// <exception cref="DitCacheException">The directory does not exist or the file cannot be written.</exception>
    public static void Write(string path, string flag, Action<Stream> write)
    {
        string full = Path.GetFullPath(path);
        string? dir = Path.GetDirectoryName(full);
        if (dir is null || !Directory.Exists(dir))
        {
            throw new DitCacheException($"{flag} {path}: directory '{dir}' does not exist; create it first or choose another path");
        }

        if (Directory.Exists(full))
        {
            throw new DitCacheException($"{flag} {path} is a directory; give a file path");
        }

        if (FileKind.IsSpecial(full))
        {
            WriteStream(path, full, flag, write);                                     // /dev/null, /dev/stdout, a FIFO
            return;
        }

        RemoveStaleTemporaries(dir, Path.GetFileName(full));
        string temp = Path.Combine(dir, $".{Path.GetFileName(full)}.{Environment.ProcessId}.tmp");
        try
        {
            using (var stream = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None))
            {
                write(stream);
            }

            File.Move(temp, full, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            File.Delete(temp);
            throw new DitCacheException($"{flag} {path}: cannot write the file ({e.Message}); check the path and permissions", e);
        }
        catch
        {
            File.Delete(temp);
            throw;
        }
    }

    // Temporaries of this target left by a killed run (".name.PID.tmp" whose process is gone, read from /proc on
    // Linux) are removed before the next write; another live process's temporary is left alone.
    private static void RemoveStaleTemporaries(string dir, string name)
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }

        string prefix = "." + name + ".";
        foreach (string path in Directory.EnumerateFiles(dir, prefix + "*.tmp"))
        {
            string middle = Path.GetFileName(path)[prefix.Length..^".tmp".Length];
            if (int.TryParse(middle, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int pid)
                && pid != Environment.ProcessId && !Directory.Exists($"/proc/{pid}"))
            {
                File.Delete(path);
            }
        }
    }

    // A device or FIFO is written in place as a stream: renaming over it would replace the node itself (root is
    // normal in containers). There is nothing to keep atomic: such a target holds no earlier output.
    private static void WriteStream(string path, string full, string flag, Action<Stream> write)
    {
        try
        {
            using var stream = new FileStream(full, FileMode.Open, FileAccess.Write, FileShare.ReadWrite, 1 << 16, FileOptions.None);
            write(stream);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new DitCacheException($"{flag} {path}: cannot write to this device or pipe ({e.Message}); give a regular file path", e);
        }
    }
}
