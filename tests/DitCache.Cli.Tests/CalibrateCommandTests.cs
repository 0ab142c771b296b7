using System.IO;
using System.Text.Json;
using Xunit;

namespace DitCache.Cli.Tests;

/// <summary><c>ditcache calibrate</c> end to end on the tiny fixture DiT, copied into a fresh directory.</summary>
public class CalibrateCommandTests
{
    private static string CopyModel(out string dir)
    {
        dir = CliRunner.TempDir();
        string model = Path.Combine(dir, "tiny.safetensors");
        File.Copy(CliRunner.TinyDit, model);
        return model;
    }

    [Fact]
    public void CalibrateWritesBesideTheModelAndSampleFindsIt()
    {
        string model = CopyModel(out string dir);
        string calibration = Path.Combine(dir, "tiny.calibration.json");

        // Before: --cache teacache says which file it looked for and how to make it.
        var (code, _, err) = CliRunner.Run("sample", "--model", model, "--classes", "3", "--steps", "12", "--cfg", "1.5",
            "--cache", "teacache:l=0.1", "--threads", "1", "--quiet");
        Assert.Equal(2, code);
        Assert.Contains(calibration, err);
        Assert.Contains($"ditcache calibrate teacache --model {model}", err);

        (code, string output, err) = CliRunner.Run("calibrate", "all", "--model", model, "--steps", "12", "--samples", "2",
            "--cfg", "1.5", "--target-speedup", "2", "--threads", "1");
        Assert.True(code == 0, err);
        Assert.Contains($"wrote teacache, smoothcache, magcache calibration to {calibration}", output);
        Assert.Contains("tuned for 2x: --cache teacache:l=", output);
        Assert.Contains("tuned for 2x: --cache smoothcache:alpha=", output);
        Assert.Contains("tuned for 2x: --cache magcache:thresh=", output);
        Assert.Contains("full-compute run: 2 image(s)", err);

        using (JsonDocument doc = JsonDocument.Parse(File.ReadAllBytes(calibration)))
        {
            JsonElement tea = doc.RootElement.GetProperty("teacache");
            Assert.Equal(5, tea.GetProperty("coefficients").GetArrayLength());
            Assert.Equal(11, tea.GetProperty("rel_in").GetArrayLength());
            Assert.Equal(12, tea.GetProperty("run").GetProperty("steps").GetInt32());
            Assert.StartsWith("ditcache calibrate all --model", tea.GetProperty("run").GetProperty("command").GetString());
            Assert.True(tea.GetProperty("tuned").GetProperty("flops_ratio").GetDouble() > 1);
            Assert.Equal(12, doc.RootElement.GetProperty("magcache").GetProperty("gamma").GetArrayLength());
            Assert.Equal(3, doc.RootElement.GetProperty("smoothcache").GetProperty("attn").GetArrayLength());
        }

        foreach (string spec in new[] { "teacache:l=0.1", "smoothcache:alpha=0.2", "magcache:thresh=0.1" })
        {
            (code, output, err) = CliRunner.Run("sample", "--model", model, "--classes", "3,7", "--steps", "12", "--cfg", "1.5",
                "--cache", spec, "--threads", "1");
            Assert.True(code == 0, $"{spec}: {err}");
            Assert.Contains("steps fully computed", output);
        }

        // Another step count: MagCache interpolates, SmoothCache refuses with both counts and the fix.
        (code, _, err) = CliRunner.Run("sample", "--model", model, "--classes", "3", "--steps", "20", "--cfg", "1.5",
            "--cache", "magcache", "--threads", "1", "--quiet");
        Assert.True(code == 0, err);
        (code, _, err) = CliRunner.Run("sample", "--model", model, "--classes", "3", "--steps", "20", "--cfg", "1.5",
            "--cache", "smoothcache", "--threads", "1", "--quiet");
        Assert.Equal(2, code);
        Assert.Contains("measured at 12 steps and this run has 20", err);
        Assert.Contains($"ditcache calibrate smoothcache --model {model} --steps 20", err);
    }

    [Fact]
    public void RecalibratingOneMethodKeepsTheOtherSections()
    {
        string model = CopyModel(out string dir);
        string calibration = Path.Combine(dir, "tiny.calibration.json");
        var (code, _, err) = CliRunner.Run("calibrate", "magcache", "--model", model, "--steps", "8", "--samples", "1", "--cfg", "1.5", "--threads", "1", "--quiet");
        Assert.True(code == 0, err);
        (code, _, err) = CliRunner.Run("calibrate", "teacache", "--model", model, "--steps", "8", "--samples", "1", "--cfg", "1.5", "--threads", "1", "--quiet");
        Assert.True(code == 0, err);
        using JsonDocument doc = JsonDocument.Parse(File.ReadAllBytes(calibration));
        Assert.True(doc.RootElement.TryGetProperty("magcache", out _));
        Assert.True(doc.RootElement.TryGetProperty("teacache", out _));
        Assert.False(doc.RootElement.TryGetProperty("smoothcache", out _));
    }

    [Theory]
    [InlineData("foo", "unknown method 'foo'")]
    [InlineData("teacache --steps 1", "--steps 1")]
    [InlineData("teacache --samples 0", "--samples 0")]
    [InlineData("teacache --target-speedup 0.5", "--target-speedup 0.5")]
    [InlineData("smoothcache --lookahead 0", "--lookahead 0")]
    public void BadArgumentsAreUsageErrors(string args, string expected)
    {
        string model = CopyModel(out _);
        var (code, _, err) = CliRunner.Run(["calibrate", .. args.Split(' '), "--model", model, "--threads", "1"]);
        Assert.Equal(2, code);
        Assert.Contains(expected, err);
    }

    [Fact]
    public void ABrokenCalibrationStopsOnlyTheMethodsThatReadIt()
    {
        string model = CopyModel(out string dir);
        File.WriteAllText(Path.Combine(dir, "tiny.calibration.json"), "{\"magcache\": {\"gamma\": \"x\"}}");
        var (code, _, err) = CliRunner.Run("sample", "--model", model, "--classes", "3", "--steps", "4", "--cfg", "1.5", "--threads", "1", "--quiet");
        Assert.True(code == 0, err);
        Assert.StartsWith("ditcache: warning: ", err, System.StringComparison.Ordinal);   // said, not silently ignored
        Assert.Contains("'magcache.gamma'", err);
        Assert.Contains("ignored: no accelerator of this run reads a calibration", err);
        (code, _, err) = CliRunner.Run("sample", "--model", model, "--classes", "3", "--steps", "4", "--cfg", "1.5", "--cache", "magcache",
            "--threads", "1", "--quiet");
        Assert.Equal(1, code);
        Assert.Contains("tiny.calibration.json", err);
        Assert.Contains("'magcache.gamma'", err);
        Assert.Contains("ditcache calibrate magcache", err);
        (code, _, err) = CliRunner.Run("calibrate", "teacache", "--model", model, "--steps", "6", "--samples", "1", "--threads", "1");
        Assert.Equal(1, code);                                                          // never overwrite what it cannot read
        Assert.Contains("'magcache.gamma'", err);
    }

    [Theory]
    [InlineData("loop")]
    [InlineData("directory")]
    [InlineData("fifo")]
    public async System.Threading.Tasks.Task ACalibrationThatIsNoRegularFileIsAWarningOrAnError(string kind)
    {
        string model = CopyModel(out string dir);
        string calibration = Path.Combine(dir, "tiny.calibration.json");
        switch (kind)
        {
            case "loop":
                File.CreateSymbolicLink(calibration, calibration);
                break;
            case "directory":
                Directory.CreateDirectory(calibration);
                break;
            default:
                using (var mkfifo = System.Diagnostics.Process.Start("mkfifo", calibration))
                {
                    await mkfifo.WaitForExitAsync();
                    Assert.Equal(0, mkfifo.ExitCode);
                }

                break;
        }

        var (code, _, err) = CliRunner.Run("sample", "--model", model, "--classes", "3", "--steps", "2", "--threads", "1", "--quiet");
        Assert.True(code == 0, err);
        Assert.StartsWith($"ditcache: warning: {calibration}: ", err, System.StringComparison.Ordinal);
        Assert.Single(err.TrimEnd().Split('\n'));
        foreach (string[] args in new[]
        {
            new[] { "sample", "--model", model, "--classes", "3", "--steps", "2", "--cache", "magcache", "--threads", "1", "--quiet" },
            new[] { "calibrate", "magcache", "--model", model, "--steps", "2", "--samples", "1", "--lookahead", "1", "--threads", "1", "--quiet" },
        })
        {
            (code, _, err) = CliRunner.Run(args);
            Assert.InRange(code, 1, 2);                                                 // calibrate: a directory is a usage error
            Assert.StartsWith("ditcache: error: ", err, System.StringComparison.Ordinal);
            Assert.Contains(calibration, err);
            Assert.Single(err.TrimEnd().Split('\n'));
        }
    }

    [Theory]
    [InlineData("teacache --steps 5", "--steps 5 gives 4 step pairs; teacache's degree-4 fit needs 5: give --steps 6 or more")]
    [InlineData("all --steps 3", "give --steps 6 or more")]
    [InlineData("smoothcache --steps 3 --lookahead 3", "--lookahead 3 is out of range for smoothcache; give 1 to steps − 1 = 2")]
    public void EachMethodSaysWhatARunNeedsBeforeItStarts(string args, string expected)
    {
        string model = CopyModel(out _);
        var (code, _, err) = CliRunner.Run(["calibrate", .. args.Split(' '), "--model", model, "--samples", "1", "--threads", "1"]);
        Assert.Equal(2, code);
        Assert.Contains(expected, err);
        Assert.DoesNotContain("full-compute run", err);                                 // refused before the run

        (code, _, err) = CliRunner.Run("calibrate", "magcache", "--model", model, "--steps", "2", "--samples", "1", "--threads", "1", "--quiet");
        Assert.True(code == 0, err);                                                    // --lookahead 3 is smoothcache's only
    }

    [Fact]
    public void MissingModelIsAUsageError()
    {
        var (code, _, err) = CliRunner.Run("calibrate", "teacache", "--model", Path.Combine(CliRunner.TempDir(), "none.safetensors"));
        Assert.Equal(2, code);
        Assert.Contains("file not found", err);
    }

    [Fact]
    public void HelpListsTheFlags()
    {
        var (code, output, _) = CliRunner.Run("calibrate", "--help");
        Assert.Equal(0, code);
        foreach (string flag in new[] { "--model", "--steps", "--samples", "--target-speedup", "--cfg", "--sampler", "--lookahead", "--out" })
        {
            Assert.Contains(flag, output);
        }
    }
}
