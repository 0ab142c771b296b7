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

    [LinuxFact]
    public void Outputs_committed_together_replace_none_when_one_fails()
    {
        string tensor = Path.Combine(_dir, "sample.safetensors"), png = Path.Combine(_dir, "out.png");
        File.WriteAllText(tensor, "old tensor");
        using (var outputs = new AtomicOutputs())
        {
            outputs.Add(tensor, "--save-tensor", s => s.Write("new tensor"u8));
            outputs.Add(png, "--out", s => s.Write("png"u8));
            outputs.Add("/dev/full", "--report", s => s.Write(new byte[1 << 17]));      // ENOSPC at commit
            DitCacheException e = Assert.Throws<DitCacheException>(outputs.Commit);
            Assert.StartsWith("--report /dev/full: cannot write", e.Message, StringComparison.Ordinal);
        }

        Assert.Equal("old tensor", File.ReadAllText(tensor));                        // nothing renamed
        Assert.Equal([tensor], Directory.GetFiles(_dir));                             // temporaries removed
    }

    [Fact]
    public void Outputs_not_committed_leave_nothing()
    {
        string path = Path.Combine(_dir, "a.bin");
        using (var outputs = new AtomicOutputs())
        {
            outputs.Add(path, "--out", s => s.Write("a"u8));
            Assert.Single(Directory.GetFiles(_dir));                                  // the temporary
        }

        Assert.Empty(Directory.GetFiles(_dir));
    }

    [Fact]
    public void A_name_at_the_file_system_limit_gets_a_shortened_temporary()
    {
        string longName = new string('a', 251) + ".png";                               // 255 bytes: the limit itself
        string path = Path.Combine(_dir, longName);
        AtomicFile.Write(path, "--out", s => s.Write("x"u8));
        Assert.Equal("x", File.ReadAllText(path));
        Assert.Equal([path], Directory.GetFiles(_dir));

        // Temporaries stay within 255 bytes for any pid, and names that differ only past the cut get different stems.
        string other = new string('a', 251) + ".PNG", multibyte = new string('é', 127);
        foreach (string name in new[] { longName, other, multibyte })
        {
            Assert.InRange(System.Text.Encoding.UTF8.GetByteCount(AtomicFile.TemporaryName(name, int.MaxValue)), 1, 255);
        }

        Assert.NotEqual(AtomicFile.TemporaryName(longName, 1), AtomicFile.TemporaryName(other, 1));
        Assert.Equal(".short.png.42.tmp", AtomicFile.TemporaryName("short.png", 42));
    }
}
