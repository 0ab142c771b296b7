using System.IO;
using Xunit;

namespace DitCache.Cli.Tests;

/// <summary><c>ditcache evaluate</c> rejects bad flags with one line naming the flag and exit code 2, before loading anything.</summary>
public sealed class EvaluateCommandTests
{
    private static (int Code, string Out, string Err) Run(params string[] args)
    {
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        int code = CliApp.Run(args, stdout, stderr, interactive: false);
        return (code, stdout.ToString(), stderr.ToString());
    }

    [Theory]
    [InlineData("--samples-per-class", "0", "--samples-per-class 0")]
    [InlineData("--samples-per-class", "-3", "--samples-per-class -3")]
    [InlineData("--classes", "0,x", "'x' is not a class label")]
    [InlineData("--classes", "3,12", "class 12 is out of range")]
    [InlineData("--classes", "3,3", "repeats a class")]
    [InlineData("--steps", "0", "--steps 0")]
    [InlineData("--sampler", "euler", "--sampler 'euler'")]
    [InlineData("--cfg", "0.5", "--cfg 0.5")]
    [InlineData("--batch", "0", "--batch 0")]
    [InlineData("--threads", "0", "--threads 0")]
    [InlineData("--grid-columns", "0", "--grid-columns 0")]
    [InlineData("--grid", "/no/such/dir/grid.png", "--grid /no/such/dir/grid.png")]
    [InlineData("--report", "/no/such/dir/r.json", "--report /no/such/dir/r.json")]
    public void Bad_flags_exit_2_with_one_line_naming_the_flag(string flag, string value, string expected)
    {
        (int code, string stdout, string stderr) = Run("evaluate", flag, value);

        Assert.Equal(2, code);
        Assert.Equal("", stdout);
        Assert.StartsWith("ditcache: error: ", stderr, System.StringComparison.Ordinal);
        Assert.Contains(expected, stderr, System.StringComparison.Ordinal);
        Assert.Single(stderr.TrimEnd().Split('\n'));
    }

    [Fact]
    public void A_single_sample_in_all_is_too_few_for_the_frechet_distance()
    {
        (int code, _, string stderr) = Run("evaluate", "--classes", "4", "--samples-per-class", "1");
        Assert.Equal(2, code);
        Assert.Contains("at least 2 samples", stderr, System.StringComparison.Ordinal);
    }

    [Fact]
    public void Unknown_cache_is_a_usage_error()
    {
        (int code, _, string stderr) = Run("evaluate", "--cache", "nosuch");
        Assert.Equal(2, code);
        Assert.Contains("nosuch", stderr, System.StringComparison.Ordinal);
    }

    [Fact]
    public void Help_lists_the_flags()
    {
        (int code, string stdout, _) = Run("evaluate", "--help");
        Assert.Equal(0, code);
        foreach (string flag in new[] { "--samples-per-class", "--classes", "--cfg", "--cache", "--batch", "--grid", "--report", "--quiet" })
        {
            Assert.Contains(flag, stdout, System.StringComparison.Ordinal);
        }
    }
}
