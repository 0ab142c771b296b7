using System;
using System.CommandLine;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text;
using Xunit;

namespace DitCache.Cli.Tests;

/// <summary>
/// Every numeric flag of every command declares a range (issue 16 item 6): the parser refuses values outside it
/// with one line, and docs/cli.md, generated from the same declarations, documents it.
/// </summary>
public sealed class FlagRangeTests
{
    private static RootCommand Root() => CliApp.Build(TextWriter.Null, TextWriter.Null, interactive: false);

    private static bool IsNumeric(Option o) =>
        o.ValueType == typeof(int) || o.ValueType == typeof(int?) || o.ValueType == typeof(float) || o.ValueType == typeof(float?)
        || o.ValueType == typeof(double) || o.ValueType == typeof(double?) || o.ValueType == typeof(long);

    [Fact]
    public void Every_numeric_flag_declares_a_range()
    {
        var missing = Root().Subcommands.SelectMany(c => c.Options.Where(IsNumeric).Where(o => FlagRange.Of(o) is null).Select(o => $"{c.Name} {o.Name}")).ToList();
        Assert.Empty(missing);
        Assert.True(Root().Subcommands.Sum(c => c.Options.Count(IsNumeric)) > 30, "the walk found the numeric flags");
    }

    [Theory]
    [InlineData("sample", "--threads", "0", "--threads 0 is out of range; give 1 to 1024")]
    [InlineData("sample", "--threads", "2147483647", "--threads 2147483647 is out of range; give 1 to 1024")]
    [InlineData("sample", "--steps", "1001", "--steps 1001 is out of range; give 1 to 1000")]
    [InlineData("sample", "--cfg", "0.5", "--cfg 0.5 is out of range; give 1 or more")]
    [InlineData("sample", "--eta", "-0.1", "--eta -0.1 is out of range; give 0 or more")]
    [InlineData("sample", "--input-size", "100000", "--input-size 100000 is out of range; give 1 to 1024, a multiple of the patch size")]
    [InlineData("info", "--images", "2000000000", "--images 2000000000 is out of range; give 1 to 65536")]
    [InlineData("info", "--image-size", "2147483640", "--image-size 2147483640 is out of range; give 8 to 8192, a multiple of 8")]
    [InlineData("evaluate", "--batch", "100000", "--batch 100000 is out of range; give 1 to 4096")]
    [InlineData("bench", "--repeats", "1000", "--repeats 1000 is out of range; give 1 to 100")]
    [InlineData("calibrate", "--target-speedup", "0.5", "--target-speedup 0.5 is out of range; give 1 or more")]
    public void Values_outside_the_range_are_refused_in_one_line(string command, string flag, string value, string message)
    {
        string[] args = command == "calibrate" ? [command, "teacache", "--model", CliRunner.TinyDit, flag, value] : [command, flag, value];
        var (code, output, err) = CliRunner.Run(args);
        Assert.Equal(2, code);
        Assert.Equal("", output);
        Assert.Contains(message, err, StringComparison.Ordinal);
        Assert.Single(err.TrimEnd().Split('\n'));
    }

    [Fact]
    public void Help_shows_the_range()
    {
        var (code, output, _) = CliRunner.Run("sample", "--help");
        Assert.Equal(0, code);
        Assert.Contains("[1 to 1000]", output, StringComparison.Ordinal);
        Assert.Contains("[0 or more;", output, StringComparison.Ordinal);
    }

    /// <summary>
    /// docs/cli.md is generated from the declarations; set DITCACHE_UPDATE_DOCS=1 and run this test to rewrite it after
    /// changing a flag.
    /// </summary>
    [Fact]
    public void Docs_cli_md_lists_every_flag_with_its_range()
    {
        string path = Path.Combine(RepositoryRoot(), "docs", "cli.md");
        string expected = Document();
        if (Environment.GetEnvironmentVariable("DITCACHE_UPDATE_DOCS") == "1")
        {
            File.WriteAllText(path, expected);
        }

        Assert.True(File.Exists(path), $"{path} is missing; run this test with DITCACHE_UPDATE_DOCS=1");
        Assert.True(File.ReadAllText(path) == expected, "docs/cli.md is out of date; run this test with DITCACHE_UPDATE_DOCS=1 and commit the file");
    }

    private static string Document()
    {
        var sb = new StringBuilder();
        sb.Append("# Command-line flags\n\n");
        sb.Append("Generated from the flag declarations by `FlagRangeTests` (tests/DitCache.Cli.Tests); run it with\n");
        sb.Append("`DITCACHE_UPDATE_DOCS=1` after changing a flag. A value outside a numeric flag's range is refused before anything\n");
        sb.Append("runs (exit code 2). Ranges that depend on the model are checked again once it is loaded.\n");
        foreach (Command c in Root().Subcommands)
        {
            sb.Append(CultureInfo.InvariantCulture, $"\n## ditcache {c.Name}\n\n{c.Description}\n\n| flag | range | meaning |\n|---|---|---|\n");
            foreach (Option o in c.Options.Where(o => !o.Name.StartsWith("--help", StringComparison.Ordinal) && o.Name != "-?" && o.Name != "-h"))
            {
                string range = FlagRange.Of(o) ?? (IsNumeric(o) ? "(none)" : "");
                string meaning = (o.Description ?? "").Replace("|", "\\|", StringComparison.Ordinal);
                int cut = meaning.LastIndexOf(" [", StringComparison.Ordinal);
                if (FlagRange.Of(o) is not null && cut >= 0)
                {
                    meaning = meaning[..cut];                                        // the range has its own column
                }

                sb.Append(CultureInfo.InvariantCulture, $"| `{o.Name}` | {range} | {meaning} |\n");
            }
        }

        return sb.ToString();
    }

    private static string RepositoryRoot()
    {
        for (DirectoryInfo? d = new(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            if (File.Exists(Path.Combine(d.FullName, "DitCache.slnx")))
            {
                return d.FullName;
            }
        }

        throw new InvalidOperationException("the repository root (DitCache.slnx) is not above the test binaries");
    }
}
