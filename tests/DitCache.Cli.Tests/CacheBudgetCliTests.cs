using System.IO;
using System.Text.Json;
using Xunit;

namespace DitCache.Cli.Tests;

/// <summary><c>--cache-budget</c> on <c>sample</c> and <c>info</c>, on the tiny fixture DiT (2 blocks, 16 tokens, hidden 64).</summary>
public class CacheBudgetCliTests
{
    [Fact]
    public void SampleFallsBackToWhatFitsAndReportsIt()
    {
        // Two images with CFG: one (B, T, D) tensor is 4 x 16 x 64 floats = 16 KiB. taylorseer o=4 holds 2 blocks x 2 sites
        // x 5 = 320 KiB, o=1 holds 128 KiB, FreqCa o=2 holds 6 tensors = 96 KiB: a 100 KiB budget lands on FreqCa.
        string report = Path.Combine(CliRunner.TempDir(), "report.json");
        var (code, _, err) = CliRunner.Run("sample", "--model", CliRunner.TinyDit, "--classes", "3,7", "--steps", "10", "--cfg", "4",
            "--cache", "taylorseer:n=3", "--cache-budget", "100K", "--report", report, "--threads", "1", "--heads", "4", "--quiet");
        Assert.True(code == 0, err);
        Assert.Contains("taylorseer:n=3,o=4,warmup=2 needs 320 KiB", err.Replace("327,680 bytes", "320 KiB"));
        Assert.Contains("running the coarser freqca:n=3,o=2,warmup=2,sigma=0.5,cutoff=0.25 (98,304 bytes)", err);
        using JsonDocument doc = JsonDocument.Parse(File.ReadAllBytes(report));
        Assert.Equal("freqca:n=3,o=2,warmup=2,sigma=0.5,cutoff=0.25", doc.RootElement.GetProperty("cache").GetString());
        Assert.Equal(98_304, doc.RootElement.GetProperty("cache_bytes").GetInt64());
    }

    [Fact]
    public void InfoListsTheChainUpToTheChoice()
    {
        var (code, output, err) = CliRunner.Run("info", "--model", CliRunner.TinyDit, "--heads", "4", "--images", "2", "--cache", "taylorseer:n=3,o=2",
            "--cache-budget", "150K");
        Assert.True(code == 0, err);
        Assert.Contains("taylorseer:n=3,o=2,warmup=2 needs 196,608 bytes", output);
        Assert.Contains("taylorseer:n=3,o=1,warmup=2 holds 131,072 bytes", output);
    }

    [Theory]
    [InlineData("1.5G", "expected a positive whole number of bytes")]
    [InlineData("1K", "no configuration of --cache taylorseer:n=3,o=4,warmup=2 fits")]
    public void BadOrTooSmallBudgetsAreOneLineUsageErrors(string budget, string message)
    {
        var (code, _, err) = CliRunner.Run("sample", "--model", CliRunner.TinyDit, "--classes", "3,7", "--steps", "4", "--cache", "taylorseer:n=3",
            "--cache-budget", budget, "--threads", "1", "--heads", "4", "--quiet");
        Assert.Equal(2, code);
        Assert.Contains(message, err);
        Assert.Single(err.Trim().Split('\n'));
    }
}
