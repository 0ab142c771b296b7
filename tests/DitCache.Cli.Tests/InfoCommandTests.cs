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
