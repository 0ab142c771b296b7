using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;
using System.Security.Cryptography;
using System.Text;
using DitCache.Evaluation.Reports;
using DitCache.Tensors;
using DitCache.Tensors.IO;

namespace DitCache.Evaluation.Bench;

/// <summary>
/// A benchmark's output directory: <c>results.json</c> started or resumed (a file of other settings or another model
/// is refused), saved through a temporary file after every configuration, and the reports drawn from it at the end.
/// Whatever runs the plan (the CLI, a test, a sharded job) goes through one session, so resume, merge and the report
/// files behave the same everywhere.
/// </summary>
public sealed class BenchSession
{
    /// <summary>The results file's name inside the output directory.</summary>
    public const string ResultsFile = "results.json";

    private readonly string _flag;

    private BenchSession(string directory, BenchResults results, int measuredBefore, string flag)
    {
        Directory = directory;
        Results = results;
        MeasuredBefore = measuredBefore;
        _flag = flag;
    }

    /// <summary>The output directory (absolute).</summary>
    public string Directory { get; }

    /// <summary>The path of <c>results.json</c>.</summary>
    public string ResultsPath => Path.Combine(Directory, ResultsFile);

    /// <summary>The results: the resumed file's, or the fresh ones given to <see cref="Open"/>.</summary>
    public BenchResults Results { get; }

    /// <summary>Configurations measured before this session (0 for a new run).</summary>
    public int MeasuredBefore { get; }

    /// <summary>Whether an earlier run's results were resumed.</summary>
    public bool Resumed => MeasuredBefore > 0;

    /// <summary>
    /// Opens <paramref name="outPath"/> (created if missing; its parent must exist): a <c>results.json</c> there is
    /// resumed when it was made with the same settings and model as <paramref name="fresh"/> (it keeps its entries and
    /// takes the larger repeat count), else refused; otherwise <paramref name="fresh"/> starts the run.
    /// </summary>
    /// <param name="outPath">The output directory as the user gave it.</param>
    /// <param name="fresh">The results a new run would start from (<see cref="BenchRunner.NewResults"/>).</param>
    /// <param name="flag">The flag that named the directory, for messages.</param>
    /// <exception cref="DitCacheException">The path is a file, its parent is missing (exit code 2), or the results
    /// file there is malformed or of other settings (exit code 1).</exception>
    public static BenchSession Open(string outPath, BenchResults fresh, string flag = "--out")
    {
        ArgumentNullException.ThrowIfNull(outPath);
        ArgumentNullException.ThrowIfNull(fresh);
        string directory = CheckDirectory(outPath, flag);
        System.IO.Directory.CreateDirectory(directory);
        string resultsPath = Path.Combine(directory, ResultsFile);
        if (!File.Exists(resultsPath))
        {
            return new BenchSession(directory, fresh, 0, flag);
        }

        BenchResults previous = BenchJson.Load(resultsPath);
        BenchJson.CheckResumable(previous, fresh, resultsPath);
        previous.Repeats = Math.Max(previous.Repeats, fresh.Repeats);
        previous.ClassNames ??= fresh.ClassNames;                 // files from before class names were recorded
        return new BenchSession(directory, previous, previous.Entries.Count, flag);
    }

    /// <summary>
    /// The absolute directory of <paramref name="outPath"/> after checking it can hold the outputs: not a file, and
    /// its parent exists. Call it before anything heavy, so a bad path fails at once.
    /// </summary>
    /// <exception cref="DitCacheException">Exit code 2, naming the flag, the path and the fix.</exception>
    public static string CheckDirectory(string outPath, string flag = "--out")
    {
        ArgumentNullException.ThrowIfNull(outPath);
        string directory = Path.GetFullPath(outPath);
        if (File.Exists(directory))
        {
            throw new DitCacheException($"{flag} {outPath} is a file; give a directory", exitCode: 2);
        }

        string? parent = Path.GetDirectoryName(directory);
        if (parent is null || !System.IO.Directory.Exists(parent))
        {
            throw new DitCacheException($"{flag} {outPath}: directory '{parent}' does not exist; create it first or choose another path", exitCode: 2);
        }

        return directory;
    }

    /// <summary>Writes <c>results.json</c> through a temporary file (an interrupted write leaves the previous one).</summary>
    public void Save() => AtomicFile.Write(ResultsPath, _flag, s => s.Write(BenchJson.Serialize(Results)));

    /// <summary>The results restricted to the configurations of <paramref name="plan"/>, in plan order.</summary>
    /// <exception cref="ArgumentException">A configuration of the plan has not been measured.</exception>
    public BenchResults Planned(IReadOnlyList<BenchConfig> plan)
    {
        ArgumentNullException.ThrowIfNull(plan);
        BenchResults r = Results;
        var entries = new List<BenchEntry>(plan.Count);
        foreach (BenchConfig c in plan)
        {
            entries.Add(r.Entries.Find(e => e.Config.Key == c.Key)
                ?? throw new ArgumentException($"configuration '{c.Key}' of the plan is not in {ResultsPath}", nameof(plan)));
        }

        return new BenchResults
        {
            Model = r.Model, Machine = r.Machine, Command = r.Command, Samples = r.Samples,
            Repeats = r.Repeats, Seed = r.Seed, Sampler = r.Sampler, Threads = r.Threads,
            Gemm = r.Gemm, FloorFrechetDistance = r.FloorFrechetDistance,
            MatchedFloorFrechetDistance = r.MatchedFloorFrechetDistance, StripClasses = r.StripClasses,
            ClassNames = r.ClassNames, ImageShape = r.ImageShape, Entries = entries,
        };
    }

    /// <summary>
    /// Draws the reports of <paramref name="planned"/> (<see cref="Planned"/>) into the directory, each through a
    /// temporary file: results.csv, results.md, the SVG charts, grid.png (when the samples are images) and report.html.
    /// </summary>
    /// <returns>The names of the files written.</returns>
    public IReadOnlyList<string> WriteReports(BenchResults planned)
    {
        ArgumentNullException.ThrowIfNull(planned);
        var files = new List<(string Name, byte[] Bytes)>
        {
            ("results.csv", Utf8(BenchReport.Csv(planned))),
            ("results.md", Utf8(BenchReport.Markdown(planned))),
            ("frontier-psnr.svg", Utf8(BenchReport.FrontierPsnrSvg(planned))),
            ("frontier-fd.svg", Utf8(BenchReport.FrontierFdSvg(planned))),
            ("timeline.svg", Utf8(BenchReport.TimelineSvg(planned))),
        };
        if (BenchReport.HasImageStrips(planned))
        {
            files.Add(("grid.png", BenchReport.GridPng(planned)));
        }

        files.Add(("report.html", Utf8(BenchReport.Html(planned))));
        if (BenchReport.ShadowSvg(planned) is { } shadow)
        {
            files.Add(("shadow.svg", Utf8(shadow)));
        }

        if (BenchReport.ShadowPerBlockSvg(planned) is { } perBlock)
        {
            files.Add(("shadow-per-block.svg", Utf8(perBlock)));
        }

        using (var outputs = new AtomicOutputs())                                  // the report files change together
        {
            foreach ((string name, byte[] bytes) in files)
            {
                outputs.Add(Path.Combine(Directory, name), _flag, s => s.Write(bytes));
            }

            outputs.Commit();
        }

        return [.. files.Select(f => f.Name)];
    }

    /// <summary>
    /// Identifies the weights, so a results file is never resumed with another model under the same name: the
    /// training steps from the metadata when present, and a SHA-256 over every tensor's name and values.
    /// </summary>
    public static string Fingerprint(TensorFile file)
    {
        ArgumentNullException.ThrowIfNull(file);
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (string key in file.Entries.Keys.Order(StringComparer.Ordinal))
        {
            sha.AppendData(Encoding.UTF8.GetBytes(key));
            sha.AppendData(MemoryMarshal.AsBytes(file.Read(key).Data.AsSpan())); // one tensor held at a time
        }

        string hash = Convert.ToHexStringLower(sha.GetHashAndReset())[..12];
        return file.Metadata.TryGetValue("training_steps", out string? steps) ? $"(step {steps}, sha256 {hash})" : $"(sha256 {hash})";
    }

    /// <summary>CPU model, cores, ISA, OS and runtime: the machine line of every report.</summary>
    public static string Machine()
    {
        string cpu = "unknown CPU";
        const string CpuInfo = "/proc/cpuinfo";
        if (File.Exists(CpuInfo))
        {
            string? line = File.ReadLines(CpuInfo).FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal));
            if (line is not null)
            {
                cpu = line[(line.IndexOf(':', StringComparison.Ordinal) + 1)..].Trim();
            }
        }

        string isa = Avx512F.IsSupported ? "AVX-512" : Avx2.IsSupported ? "AVX2" : "no AVX2";
        return $"{cpu}, {Environment.ProcessorCount} cores, {isa}, {RuntimeInformation.OSDescription}, .NET {Environment.Version}";
    }

    private static byte[] Utf8(string text) => Encoding.UTF8.GetBytes(text);
}
