using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Text;

namespace DitCache.Tensors.IO;

/// <summary>
/// Writes files so that readers never see a partial one: the bytes go to a temporary file beside the target, which
/// is then renamed over it. On failure the temporary file is removed and an existing target is left untouched. A
/// target that is a device or a FIFO (<see cref="FileKind.IsSpecial"/>) is written as a stream instead, never replaced.
/// A command with several outputs stages them all in one <see cref="AtomicOutputs"/> and commits them together, so a
/// failure on one leaves every earlier output as it was.
/// </summary>
public static class AtomicFile
{
    /// <summary>Writes <paramref name="path"/> through <paramref name="write"/>; <paramref name="flag"/> names the option in errors.</summary>
    /// <exception cref="DitCacheException">The directory does not exist or the file cannot be written.</exception>
    public static void Write(string path, string flag, Action<Stream> write)
    {
        using var outputs = new AtomicOutputs();
        outputs.Add(path, flag, write);
        outputs.Commit();
    }

    /// <summary>
    /// The temporary file name beside <paramref name="name"/> for process <paramref name="pid"/>: <c>.name.PID.tmp</c>,
    /// with the name shortened and a hash of it added when that would pass the 255-byte limit of a file name.
    /// </summary>
    public static string TemporaryName(string name, int pid) => TemporaryStem(name) + pid.ToString(CultureInfo.InvariantCulture) + ".tmp";

    // ".name." or, for a name too long to carry a suffix, ".<shortened name>~<hash>."; a temporary is the stem, a
    // process id and ".tmp", so the stem alone finds the temporaries of one target.
    internal static string TemporaryStem(string name)
    {
        const int MaxBytes = 255, Suffix = 1 + 10 + 4;                                       // "." + pid + ".tmp"
        string stem = "." + name + ".";
        if (Encoding.UTF8.GetByteCount(stem) + Suffix <= MaxBytes)
        {
            return stem;
        }

        ulong hash = 14695981039346656037UL;                                                 // FNV-1a 64 of the name
        foreach (byte b in Encoding.UTF8.GetBytes(name))
        {
            hash = (hash ^ b) * 1099511628211UL;
        }

        string tail = "~" + hash.ToString("x16", CultureInfo.InvariantCulture) + ".";
        var kept = new StringBuilder(".");
        foreach (Rune rune in name.EnumerateRunes())
        {
            if (Encoding.UTF8.GetByteCount(kept.ToString()) + rune.Utf8SequenceLength + tail.Length + Suffix > MaxBytes)
            {
                break;
            }

            kept.Append(rune.ToString());
        }

        return kept + tail;
    }

    // Temporaries of this target left by a killed run (stem + PID + ".tmp" whose process is gone, read from /proc on
    // Linux) are removed before the next write; another live process's temporary is left alone.
    internal static void RemoveStaleTemporaries(string dir, string stem)
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }

        foreach (string path in Directory.EnumerateFiles(dir, stem + "*.tmp"))
        {
            string middle = Path.GetFileName(path)[stem.Length..^".tmp".Length];
            if (int.TryParse(middle, NumberStyles.None, CultureInfo.InvariantCulture, out int pid)
                && pid != Environment.ProcessId && !Directory.Exists($"/proc/{pid}"))
            {
                File.Delete(path);
            }
        }
    }
}

/// <summary>
/// The outputs of one command, staged and then committed together: <see cref="Add"/> writes each regular file to its
/// temporary (a device or FIFO target is only remembered), <see cref="Commit"/> streams the device targets and renames
/// every temporary over its target; disposing without a commit removes the temporaries. So a command that fails
/// anywhere (a later output's folder is read-only, the disk fills, the sampler diverges) replaces none of its outputs.
/// Two runs writing the same output: the one that commits last wins, whole.
/// </summary>
public sealed class AtomicOutputs : IDisposable
{
    private readonly List<Staged> _staged = [];
    private bool _committed;

    /// <summary>Stages <paramref name="path"/> with the bytes <paramref name="write"/> produces; <paramref name="flag"/> names it in errors.</summary>
    /// <exception cref="DitCacheException">The directory does not exist, the path is a directory, or the temporary cannot be written.</exception>
    public void Add(string path, string flag, Action<Stream> write)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(write);
        ObjectDisposedException.ThrowIf(_committed, this);
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
            _staged.Add(new Staged(path, full, flag, null, write));                     // /dev/null, /dev/stdout, a FIFO
            return;
        }

        string name = Path.GetFileName(full);
        string temp = Path.Combine(dir, AtomicFile.TemporaryName(name, Environment.ProcessId));
        try
        {
            AtomicFile.RemoveStaleTemporaries(dir, AtomicFile.TemporaryStem(name));
            using (var stream = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None))
            {
                write(stream);
            }

            _staged.Add(new Staged(path, full, flag, temp, null));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            DeleteQuietly(temp);
            throw new DitCacheException($"{flag} {path}: cannot write the file ({e.Message.TrimEnd('.')}); check the path and permissions", e);
        }
        catch
        {
            DeleteQuietly(temp);
            throw;
        }
    }

    /// <summary>Streams the device targets, then renames every temporary over its target.</summary>
    /// <exception cref="DitCacheException">A device or pipe cannot be written, or a rename fails (the outputs not yet renamed keep their old contents).</exception>
    public void Commit()
    {
        ObjectDisposedException.ThrowIf(_committed, this);
        foreach (Staged s in _staged)
        {
            if (s.Temp is null)
            {
                WriteStream(s);
            }
        }

        foreach (Staged s in _staged)
        {
            if (s.Temp is not null)
            {
                try
                {
                    File.Move(s.Temp, s.Full, overwrite: true);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    throw new DitCacheException($"{s.Flag} {s.Path}: cannot replace the file ({e.Message.TrimEnd('.')}); check the path and permissions", e);
                }
            }
        }

        _committed = true;
    }

    /// <summary>Removes the temporaries of a set that was not committed.</summary>
    public void Dispose()
    {
        foreach (Staged s in _staged)
        {
            if (s.Temp is not null && File.Exists(s.Temp))
            {
                DeleteQuietly(s.Temp);
            }
        }

        _staged.Clear();
        _committed = true;
    }

    // Cleanup on a failure path: the failure being reported matters more than a temporary that could not be removed
    // (the next write of the same target removes it, RemoveStaleTemporaries).
    private static void DeleteQuietly(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            System.Diagnostics.Trace.TraceWarning($"could not remove the temporary {path}: {e.Message}");
        }
    }

    // A device or FIFO is written in place as a stream: renaming over it would replace the node itself (root is
    // normal in containers). There is nothing to keep atomic: such a target holds no earlier output.
    private static void WriteStream(Staged s)
    {
        try
        {
            using var stream = new FileStream(s.Full, FileMode.Open, FileAccess.Write, FileShare.ReadWrite, 1 << 16, FileOptions.None);
            s.Write!(stream);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new DitCacheException($"{s.Flag} {s.Path}: cannot write to this device or pipe ({e.Message.TrimEnd('.')}); give a regular file path", e);
        }
    }

    private sealed record Staged(string Path, string Full, string Flag, string? Temp, Action<Stream>? Write);
}
