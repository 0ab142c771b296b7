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

    [Fact]
    public void BenchesALatentModelWithoutAQualityModel()
    {
        // The tiny fixture DiT makes 8x8x4 latents: no quality model scores them, so FD and accuracy stay empty, the
        // classes come from --classes and no image grid is drawn.
        string dir = Path.Combine(CliRunner.TempDir(), "bench");
        var (code, output, err) = CliRunner.Run("bench", "--model", CliRunner.TinyDit, "--cache", "fora:n=2", "--classes", "7,3",
            "--samples", "4", "--steps", "4", "--shadow-images", "0", "--threads", "1", "--out", dir);
        Assert.True(code == 0, err);
        Assert.Contains("no quality model scores 8x8x4 images of 10 classes", output);
        Assert.False(File.Exists(Path.Combine(dir, "grid.png")));
        Assert.True(File.Exists(Path.Combine(dir, "report.html")));
        using JsonDocument doc = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(dir, "results.json")));
        JsonElement root = doc.RootElement;
        Assert.Equal([7, 3], root.GetProperty("strip_classes").EnumerateArray().Select(e => e.GetInt32()));
        Assert.Equal([4, 8, 8], root.GetProperty("image_shape").EnumerateArray().Select(e => e.GetInt32()));
        JsonElement fora = root.GetProperty("entries")[1];
        Assert.Equal("NaN", fora.GetProperty("frechet_distance").GetString());
        Assert.InRange(fora.GetProperty("psnr").GetDouble(), 5, 100);              // capped at 100 per image
        Assert.True(fora.GetProperty("relative_l2").GetDouble() > 0, "FORA reused features, so its samples differ");
        Assert.Equal("NaN", fora.GetProperty("ssim").GetString());             // 8x8 planes: smaller than SSIM's 11x11 window
    }

    [Theory]
    [InlineData(new[] { "--samples", "15" }, "--samples 15")]
    [InlineData(new[] { "--repeats", "0" }, "--repeats 0")]
    [InlineData(new[] { "--cache", "foca:n=5 cfg=zero" }, "cfg=zero")]
    [InlineData(new[] { "--cache", "warp:n=5" }, "warp")]
    [InlineData(new[] { "--specs", "/no/such/plan.txt" }, "/no/such/plan.txt")]
    [InlineData(new[] { "--out", "/no/such/dir/out" }, "/no/such/dir")]
    [InlineData(new[] { "--shadow-images", "-1" }, "--shadow-images -1")]
    [InlineData(new[] { "--classes", "3,3" }, "--classes 3,3")]
    [InlineData(new[] { "--classes", "12" }, "class 12 is out of range")]
    [InlineData(new[] { "--classes", "1,2", "--samples", "3" }, "a multiple of 2")]
    public void BadFlagsExit2BeforeRunning(string[] flags, string mentioned)
    {
        var (code, output, err) = CliRunner.Run(["bench", .. flags]);
        Assert.Equal(2, code);
        Assert.Equal("", output);
        Assert.Contains(mentioned, err);
        Assert.Single(err.TrimEnd().Split('\n'));
    }
}
