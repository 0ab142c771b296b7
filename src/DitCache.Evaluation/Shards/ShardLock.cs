using System;
using System.Globalization;
using System.IO;
using System.Text;
using DitCache.Tensors;
using DitCache.Tensors.IO;

namespace DitCache.Evaluation.Shards;

/// <summary>
/// The lock a process holds on a shard folder while it works there: an exclusive <c>flock(2)</c> on
/// <c>shard.lock</c> (.NET takes one for <see cref="FileShare.None"/> on Unix), which the kernel drops when the
/// process dies, so a killed shard never leaves a stale lock; and <c>shard.owner</c>, naming the process (pid, host,
/// start) for the message a second process gets.
/// </summary>
public sealed class ShardLock : IDisposable
{
    /// <summary>The lock file's name.</summary>
    public const string LockFile = "shard.lock";

    /// <summary>The file naming the process that holds the lock.</summary>
    public const string OwnerFile = "shard.owner";

    private readonly FileStream _stream;
    private readonly string _dir;

    private ShardLock(FileStream stream, string dir)
    {
        _stream = stream;
        _dir = dir;
    }

    /// <summary>Takes the lock of shard folder <paramref name="dir"/> (which must exist) for <paramref name="spec"/>.</summary>
    /// <exception cref="DitCacheException">Another process holds it (exit code 1), naming the file, the holder and the fix.</exception>
    public static ShardLock Take(string dir, ShardSpec spec)
    {
        string path = Path.Combine(dir, LockFile);
        FileStream stream;
        try
        {
            stream = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException)
        {
            string owner = "another process";
            try
            {
                string text = File.ReadAllText(Path.Combine(dir, OwnerFile)).Trim();
                owner = text.Length > 0 ? text : owner;
            }
            catch (IOException)
            {
                // The owner file is written right after the lock is taken; without it the holder stays unnamed.
            }

            throw new DitCacheException(
                $"--shard {spec}: {path} is held by {owner}, which runs this shard now; give each process its own --shard index, or wait for that one to end (if none runs, e.g. on a file system without locks, delete {path})");
        }

        try
        {
            string text = string.Create(CultureInfo.InvariantCulture,
                $"pid {Environment.ProcessId} on host {Environment.MachineName} since {DateTime.UtcNow:yyyy-MM-ddTHH:mm:ssZ}\n");
            AtomicFile.Write(Path.Combine(dir, OwnerFile), "--out-dir", s => s.Write(Encoding.UTF8.GetBytes(text)));
            return new ShardLock(stream, dir);
        }
        catch
        {
            stream.Dispose();
            throw;
        }
    }

    /// <summary>Removes the owner file and releases the lock.</summary>
    public void Dispose()
    {
        try
        {
            File.Delete(Path.Combine(_dir, OwnerFile));
        }
        finally
        {
            _stream.Dispose();
        }
    }
}
