using System;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Threading.Tasks;
using DitCache.Tensors.IO;
using DitCache.Tests;
using Xunit;

namespace DitCache.Tensors.Tests.IO;

/// <summary>
/// <see cref="AtomicFile"/>: a regular target is replaced whole through a temporary file; a device or FIFO target is
/// written as a stream and stays what it was (renaming over /dev/null as root would replace the device node).
/// </summary>
public sealed class AtomicFileTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("ditcache-atomic-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void A_regular_file_is_replaced_whole_and_no_temporary_is_left()
    {
        string path = Path.Combine(_dir, "out.bin");
        File.WriteAllText(path, "old");
        AtomicFile.Write(path, "--out", s => s.Write("new"u8));
        Assert.Equal("new", File.ReadAllText(path));
        Assert.Equal([path], Directory.GetFiles(_dir));

        Assert.Throws<InvalidOperationException>(() => AtomicFile.Write(path, "--out", _ => throw new InvalidOperationException("boom")));
        Assert.Equal("new", File.ReadAllText(path));                                 // a failed write keeps the old file
        Assert.Equal([path], Directory.GetFiles(_dir));
    }

    [LinuxFact]
    public void Temporaries_of_a_killed_run_are_removed_and_a_live_ones_kept()
    {
        string path = Path.Combine(_dir, "out.bin");
        string stale = Path.Combine(_dir, ".out.bin.999999999.tmp");                 // above Linux's pid_max: never alive
        string live = Path.Combine(_dir, ".out.bin.1.tmp");                          // pid 1 (init) is always alive
        string other = Path.Combine(_dir, ".other.bin.999999999.tmp");
        File.WriteAllText(stale, "half");
        File.WriteAllText(live, "x");
        File.WriteAllText(other, "y");
        AtomicFile.Write(path, "--out", s => s.Write("whole"u8));
        Assert.False(File.Exists(stale));
        Assert.True(File.Exists(live));
        Assert.True(File.Exists(other));                                             // another target's: not ours to touch
        Assert.Equal("whole", File.ReadAllText(path));
    }

    [Fact]
    public void A_directory_is_refused()
    {
        var e = Assert.Throws<DitCacheException>(() => AtomicFile.Write(_dir, "--out", s => s.WriteByte(1)));
        Assert.Equal($"--out {_dir} is a directory; give a file path", e.Message);
    }

    [LinuxFact]
    public void Devices_and_fifos_are_written_as_streams_and_stay_what_they_were()
    {
        Assert.True(FileKind.IsSpecial("/dev/null"));
        Assert.False(FileKind.IsSpecial(_dir));
        Assert.False(FileKind.IsSpecial(Path.Combine(_dir, "missing")));
        string regular = Path.Combine(_dir, "regular");
        File.WriteAllText(regular, "x");
        Assert.False(FileKind.IsSpecial(regular));

        AtomicFile.Write("/dev/null", "--out", s => s.Write(new byte[1000]));
        Assert.True(FileKind.IsSpecial("/dev/null"));                                // still the device

        string fifo = Path.Combine(_dir, "fifo");
        using (Process mkfifo = Process.Start("mkfifo", fifo))
        {
            mkfifo.WaitForExit();
            Assert.Equal(0, mkfifo.ExitCode);
        }

        Task<int> reader = Task.Run(() =>
        {
            using var s = new FileStream(fifo, FileMode.Open, FileAccess.Read);
            int total = 0, read;
            byte[] buffer = new byte[4096];
            while ((read = s.Read(buffer)) > 0)
            {
                total += read;
            }

            return total;
        });
        AtomicFile.Write(fifo, "--save-tensor", s => s.Write(new byte[12345]));
        Assert.True(reader.Wait(TimeSpan.FromSeconds(30)), "the reader of the FIFO did not finish");
        Assert.Equal(12345, reader.Result);
        Assert.True(FileKind.IsSpecial(fifo));
        Assert.Equal(new[] { fifo, regular }.Order(StringComparer.Ordinal), Directory.GetFileSystemEntries(_dir).Order(StringComparer.Ordinal));
    }
}
