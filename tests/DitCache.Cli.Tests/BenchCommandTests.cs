using System.IO;
using System.Linq;
using System.Text.Json;
using Xunit;

namespace DitCache.Cli.Tests;

/// <summary>
/// <c>ditcache bench</c> end to end on the shipped model at a tiny size (10 images, 10 steps): every output file, the
/// reference row, the schedule timeline, resuming, and the bad-flag paths.
/// </summary>
public sealed class BenchCommandTests
{
    [Fact]
    public void WritesEveryOutputAndResumes()
    {
        string dir = Path.Combine(CliRunner.TempDir(), "bench");
        string[] args = ["bench", "--cache", "fora:n=3", "--cache", "none steps=5", "--samples", "10", "--repeats", "1",
            "--steps", "10", "--shadow-images", "2", "--threads", "2", "--out", dir];
        var (code, output, err) = CliRunner.Run(args);
        Assert.True(code == 0, err);
        foreach (string name in new[] { "results.json", "results.csv", "results.md", "report.html", "frontier-psnr.svg", "frontier-fd.svg", "timeline.svg", "grid.png", "shadow.svg" })
        {
            Assert.True(File.Exists(Path.Combine(dir, name)), $"{name} missing; wrote {string.Join(", ", Directory.GetFiles(dir).Select(Path.GetFileName))}");
        }

        Assert.Empty(Directory.GetFiles(dir, "*.tmp*"));
        using (JsonDocument doc = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(dir, "results.json"))))
        {
            JsonElement[] entries = doc.RootElement.GetProperty("entries").EnumerateArray().ToArray();
            Assert.Equal(3, entries.Length);                                       // the reference is added first
            Assert.True(entries[0].GetProperty("config").GetProperty("is_reference").GetBoolean());
            Assert.Equal("CCCCCCCCCC", entries[0].GetProperty("timeline").GetString());
            Assert.Equal(1.0, entries[0].GetProperty("flops_speedup").GetDouble(), 6);
            string fora = entries[1].GetProperty("timeline").GetString()!;
            Assert.Equal(10, fora.Length);
            Assert.Contains('F', fora);
            Assert.InRange(entries[1].GetProperty("psnr").GetDouble(), 5, 99);
            Assert.Equal(10, entries[1].GetProperty("shadow_per_step").GetArrayLength());
            Assert.Equal("CCCCC", entries[2].GetProperty("timeline").GetString());
            Assert.Equal(2.0, entries[2].GetProperty("flops_speedup").GetDouble(), 6);  // 5 of 10 steps
        }

        string before = File.ReadAllText(Path.Combine(dir, "results.json"));
        (code, output, err) = CliRunner.Run(args);
        Assert.True(code == 0, err);
        Assert.Contains("resuming", output);
        Assert.Equal(before, File.ReadAllText(Path.Combine(dir, "results.json")));  // nothing re-measured
    }

    [Fact]
    public void ResumingWithOtherSettingsIsRefused()
    {
        string dir = Path.Combine(CliRunner.TempDir(), "bench");
        var (code, _, err) = CliRunner.Run("bench", "--cache", "none steps=2", "--samples", "10", "--steps", "2", "--shadow-images", "0", "--threads", "1", "--out", dir, "--quiet");
        Assert.True(code == 0, err);
        (code, _, err) = CliRunner.Run("bench", "--cache", "none steps=2", "--samples", "10", "--steps", "2", "--seed", "7", "--threads", "1", "--out", dir, "--quiet");
        Assert.Equal(2, code);
        Assert.Contains("seed", err);
    }

    [Theory]
    [InlineData(new[] { "--samples", "15" }, "--samples 15")]
    [InlineData(new[] { "--repeats", "0" }, "--repeats 0")]
    [InlineData(new[] { "--cache", "foca:n=5 cfg=zero" }, "cfg=zero")]
    [InlineData(new[] { "--cache", "warp:n=5" }, "warp")]
    [InlineData(new[] { "--specs", "/no/such/plan.txt" }, "/no/such/plan.txt")]
    [InlineData(new[] { "--out", "/no/such/dir/out" }, "/no/such/dir")]
    [InlineData(new[] { "--shadow-images", "-1" }, "--shadow-images -1")]
    public void BadFlagsExit2BeforeRunning(string[] flags, string mentioned)
    {
        var (code, output, err) = CliRunner.Run(["bench", .. flags]);
        Assert.Equal(2, code);
        Assert.Equal("", output);
        Assert.Contains(mentioned, err);
        Assert.Single(err.TrimEnd().Split('\n'));
    }
}
