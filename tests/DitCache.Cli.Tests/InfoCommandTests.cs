using Xunit;

namespace DitCache.Cli.Tests;

public class InfoCommandTests
{
    [Fact]
    public void XlPresetPrintsThePaperGflops()
    {
        var (code, output, err) = CliRunner.Run("info", "--preset", "DiT-XL/2", "--image-size", "256");
        Assert.True(code == 0, err);
        Assert.Contains("237.35", output);
        Assert.Contains("675,129,632", output);
    }

    [Fact]
    public void ModelInfoReadsTheCheckpoint()
    {
        var (code, output, err) = CliRunner.Run("info", "--model", CliRunner.TinyDit);
        Assert.True(code == 0, err);
        Assert.Contains("depth:        2", output);
        Assert.Contains("heads:        4", output);
    }

    [Theory]
    [InlineData("fora:n=3", "1", "132,120,576")]     // 28 blocks x 2 sites x 1 tensor of 2 x 256 x 1152 floats
    [InlineData("fora:n=3", "4", "528,482,304")]     // 8 rows with CFG
    [InlineData("taylorseer:n=4,o=2", "1", "396,361,728")] // 3 Taylor factors per site
    [InlineData("none", "1", " 0 bytes")]
    public void CacheMemoryForTheXlPreset(string spec, string images, string bytes)
    {
        var (code, output, err) = CliRunner.Run("info", "--preset", "DiT-XL/2", "--cache", spec, "--images", images);
        Assert.True(code == 0, err);
        Assert.Contains(bytes, output);
    }

    [Fact]
    public void BadCacheSpecInInfoIsAUsageError()
    {
        var (code, _, err) = CliRunner.Run("info", "--preset", "DiT-S/2", "--cache", "fora:n=0");
        Assert.Equal(2, code);
        Assert.Contains("fora", err);
    }

    [Fact]
    public void HelpListsTheContractFlags()
    {
        var (code, output, _) = CliRunner.Run("sample", "--help");
        Assert.Equal(0, code);
        foreach (string flag in new[] { "--model", "--classes", "--steps", "--sampler", "--cfg", "--cache", "--seed", "--noise", "--save-tensor", "--report", "--out", "--threads", "--quiet" })
        {
            Assert.Contains(flag, output);
        }
    }

    [Fact]
    public void BothModelAndPresetIsAUsageError()
    {
        var (code, _, err) = CliRunner.Run("info", "--preset", "DiT-S/2", "--model", CliRunner.TinyDit);
        Assert.Equal(2, code);
        Assert.Contains("--preset", err);
    }
}
