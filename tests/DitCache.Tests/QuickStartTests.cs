using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.IO.Compression;
using System.Linq;
using System.Reflection;
using System.Text.RegularExpressions;
using System.Threading.Tasks;
using System.Xml.Linq;
using Xunit;
using Xunit.Abstractions;

namespace DitCache.Tests;

/// <summary>
/// The NuGet package as a user gets it: <c>dotnet pack</c> of src/DitCache (from the binaries this test project was
/// built against), its contents, and examples/QuickStart restored offline from that package alone (a feed folder and
/// an empty package cache), built and run; its PNG must be the one the library gives in this process for the same
/// options. README.md must show the example's lines.
/// </summary>
public class QuickStartTests
{
    private static readonly string[] s_engine =
        ["DitCache", "DitCache.Tensors", "DitCache.Caching", "DitCache.Models", "DitCache.Sampling", "DitCache.Evaluation"];

    private readonly ITestOutputHelper _output;

    public QuickStartTests(ITestOutputHelper output)
    {
        _output = output;
    }

    /// <summary>The build configuration of this test assembly, and so of the src/DitCache binaries it references.</summary>
    private static string Configuration =>
        typeof(QuickStartTests).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration ?? "Debug";

    private static string QuickStartLines(string root)
    {
        string program = File.ReadAllText(Path.Combine(root, "examples", "QuickStart", "Program.cs"));
        Match m = Regex.Match(program, @"// <quickstart>\n(.*?)// </quickstart>\n", RegexOptions.Singleline);
        Assert.True(m.Success, "examples/QuickStart/Program.cs has no // <quickstart> ... // </quickstart> block");
        return m.Groups[1].Value;
    }

    [Fact]
    public void ReadmeShowsTheQuickStartLines()
    {
        string root = TestFiles.RepositoryRoot();
        string lines = QuickStartLines(root);
        Assert.Equal(5, lines.TrimEnd('\n').Split('\n').Length);
        Assert.Contains("using DitCache;\n\n" + lines, File.ReadAllText(Path.Combine(root, "README.md")), StringComparison.Ordinal);
        Assert.Contains("using DitCache;\n\n" + lines, File.ReadAllText(Path.Combine(root, "src", "DitCache", "README.md")), StringComparison.Ordinal);
    }

    [Fact]
    public async Task PackageHoldsTheEngineAndTheExampleRestoresOfflineBuildsAndRuns()
    {
        string root = TestFiles.RepositoryRoot(), work = TestFiles.TempDir();
        string example = Path.Combine(work, "QuickStart"), feed = Path.Combine(example, "feed");
        Directory.CreateDirectory(example);
        foreach (string file in new[] { "QuickStart.csproj", "Program.cs", "nuget.config", "Directory.Build.props", "Directory.Packages.props" })
        {
            File.Copy(Path.Combine(root, "examples", "QuickStart", file), Path.Combine(example, file));
        }

        // The library's PNG in this process for the options of the example's lines, drawn while the example is packed
        // and built (compared in step 4).
        var options = new SamplingOptions { Classes = [0, 1, 2, 3], Steps = 20, Accelerator = "foca:n=3" };
        Assert.Contains(options.Accelerator, QuickStartLines(root), StringComparison.Ordinal);
        Task<byte[]> expected = Task.Run(() => DitPipeline.Load().Sample(options).ToPng());

        // 1. Pack what this test was built against (no build, so no second compile of the engine).
        await Dotnet(root, work, "pack", Path.Combine(root, "src", "DitCache", "DitCache.csproj"), "-c", Configuration, "--no-build",
            "--disable-build-servers", "-o", feed, "-p:NuspecOutputPath=" + Path.Combine(work, "nuspec"));
        string package = Assert.Single(Directory.GetFiles(feed, "*.nupkg"));

        // 2. The package: every engine assembly with its XML docs in lib/net10.0, the README and the license, and no
        // dependency on packages that do not exist (the engine projects are inside, not referenced).
        string version;
        using (ZipArchive zip = ZipFile.OpenRead(package))
        {
            string[] entries = [.. zip.Entries.Select(e => e.FullName)];
            foreach (string assembly in s_engine)
            {
                Assert.Contains($"lib/net10.0/{assembly}.dll", entries);
                Assert.Contains($"lib/net10.0/{assembly}.xml", entries);
            }

            Assert.Contains("README.md", entries);
            XDocument nuspec;
            using (Stream s = zip.GetEntry("DitCache.nuspec")!.Open())
            {
                nuspec = XDocument.Load(s);
            }

            XNamespace ns = nuspec.Root!.Name.Namespace;
            XElement metadata = nuspec.Root.Element(ns + "metadata")!;
            Assert.Equal("DitCache", metadata.Element(ns + "id")!.Value);
            Assert.Equal("README.md", metadata.Element(ns + "readme")!.Value);
            Assert.Equal("MIT", metadata.Element(ns + "license")!.Value);
            Assert.Equal("expression", metadata.Element(ns + "license")!.Attribute("type")!.Value);
            Assert.Empty(nuspec.Descendants(ns + "dependency"));
            version = metadata.Element(ns + "version")!.Value;
        }

        // The example asks for the version the package has (Directory.Build.props sets it in one place; a bump there
        // must be followed here, or this fails).
        XDocument project = XDocument.Load(Path.Combine(example, "QuickStart.csproj"));
        XElement reference = project.Descendants("PackageReference").Single(e => e.Attribute("Include")?.Value == "DitCache");
        Assert.Equal(version, reference.Attribute("Version")!.Value);

        // 3. Restore and build with an empty package cache and the feed folder as the only source (nuget.config): what
        // a machine without network access can do. Then run it.
        string cache = Path.Combine(work, "packages");
        await Dotnet(example, work, "build", "-c", "Release", "-nologo", "--disable-build-servers", "-p:NuGetAudit=false");
        Assert.Equal(["ditcache"], Directory.GetDirectories(cache).Select(Path.GetFileName));
        string output = await Dotnet(example, work, Path.Combine(example, "bin", "Release", "net10.0", "QuickStart.dll"));
        Assert.Contains("wrote samples.png: 4 images, 8 of 20 steps computed", output, StringComparison.Ordinal);

        // 4. Its PNG is the library's, in this process, for the same options.
        Assert.Equal(await expected, File.ReadAllBytes(Path.Combine(example, "samples.png")));

        // Passed: the folder (package, package cache, build, about 40 MB) goes; a failure leaves it to look at.
        Directory.Delete(work, recursive: true);
    }

    /// <summary>
    /// Runs the dotnet host in <paramref name="dir"/> with a package cache under <paramref name="work"/> and none of the
    /// MSBuild variables the test host inherited from the build that started it; fails with its output when it fails.
    /// Builds pass --disable-build-servers, so no MSBuild node or compiler server outlives the test.
    /// </summary>
    private async Task<string> Dotnet(string dir, string work, params string[] args)
    {
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            WorkingDirectory = dir,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (string arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        foreach (string key in start.Environment.Keys.Where(k => k.StartsWith("MSBUILD", StringComparison.OrdinalIgnoreCase)).ToList())
        {
            start.Environment.Remove(key);
        }

        start.Environment["NUGET_PACKAGES"] = Path.Combine(work, "packages");
        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        start.Environment["DOTNET_NOLOGO"] = "1";
        var clock = Stopwatch.StartNew();
        using Process process = Process.Start(start)!;
        Task<string> stdout = process.StandardOutput.ReadToEndAsync(), stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        string text = await stdout + await stderr;
        _output.WriteLine($"dotnet {string.Join(' ', args)}: exit {process.ExitCode}, {clock.Elapsed.TotalSeconds:F1} s");
        Assert.True(process.ExitCode == 0, $"dotnet {string.Join(' ', args)} exited {process.ExitCode}:\n{text}");
        return text;
    }
}
