using System;
using System.Collections.Generic;
using System.CommandLine;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;
using DitCache.Models;
using DitCache.Sampling;
using DitCache.Sampling.Bench;
using DitCache.Sampling.Data;
using DitCache.Sampling.Evaluation;
using DitCache.Sampling.Metrics;
using DitCache.Tensors;
using DitCache.Tensors.IO;
using Spectre.Console;

namespace DitCache.Cli;

/// <summary>
/// <c>ditcache bench</c>: every accelerator configuration of a plan on the same model, classes and initial noise,
/// with speed (wall clock, FLOPs) and quality (PSNR/SSIM against full compute, Frechet distance and accuracy against
/// the real data) side by side. Writes results.json after every configuration (a rerun resumes), then the CSV,
/// Markdown, HTML report, SVG charts and an image grid.
/// </summary>
internal static class BenchCommand
{
    private const int QuickSamples = 100, QuickRepeats = 2, FullSamples = 2000, FullRepeats = 1;

    public static Command Create(TextWriter stdout, TextWriter stderr, bool interactive)
    {
        var model = new Option<string?>("--model") { Description = "DiT checkpoint (.safetensors or PyTorch .pt); default: the embedded Fashion-MNIST model" };
        var quick = new Option<bool>("--quick") { Description = $"the quick preset: {QuickSamples} images, {QuickRepeats} repeats, one point per family at n = 3 and 5 (minutes on 2 cores); without it the full preset: {FullSamples} images, {FullRepeats} repeat, the FoCa paper's table transposed" };
        var cache = new Option<string[]>("--cache") { Description = "a configuration 'SPEC [steps=S] [cfg=X]' to measure instead of the preset; repeat the flag for more", AllowMultipleArgumentsPerToken = false };
        var specs = new Option<string?>("--specs") { Description = "a text file of configurations, one 'SPEC [steps=S] [cfg=X]' per line (# comments)" };
        var samples = new Option<int?>("--samples") { Description = $"images per configuration, a multiple of 10 (one per class each); default {FullSamples}, --quick {QuickSamples}" };
        var repeats = new Option<int?>("--repeats") { Description = $"timed repeats per configuration, interleaved; default {FullRepeats}, --quick {QuickRepeats}" };
        var steps = new Option<int>("--steps") { Description = "sampling steps of the reference and of every configuration without steps=", DefaultValueFactory = _ => 50 };
        var cfg = new Option<float>("--cfg") { Description = "guidance scale of every configuration without cfg=", DefaultValueFactory = _ => SampleCommand.DefaultCfg };
        var sampler = new Option<string>("--sampler") { Description = "ddim or ddpm", DefaultValueFactory = _ => "ddim" };
        var seed = new Option<int>("--seed") { Description = "base seed; image i of class y gets the same noise in every configuration", DefaultValueFactory = _ => 0 };
        var batch = new Option<int>("--batch") { Description = "images per sampling run (the CFG batch is twice this)", DefaultValueFactory = _ => 50 };
        var shadowImages = new Option<int>("--shadow-images") { Description = "images of the --shadow run of each cached configuration (forecast error per step and block); 0 turns it off", DefaultValueFactory = _ => 10 };
        var threads = new Option<int>("--threads") { Description = "threads for GEMM and kernels", DefaultValueFactory = _ => Environment.ProcessorCount };
        var gemm = new Option<string>("--gemm") { Description = "GEMM backend: managed, managed-bf16 (opt-in BF16 weights and activations, float32 accumulation), openblas, or auto (managed on CPUs with AVX-512 or AVX2+FMA, where it measured at least as fast as OpenBLAS at the DiT shapes; else OpenBLAS when libopenblas.so.0 is installed)", DefaultValueFactory = _ => "auto" };
        var output = new Option<string>("--out") { Description = "output directory (created if missing; a results.json there is resumed)", DefaultValueFactory = _ => "bench-results" };
        var quiet = new Option<bool>("--quiet") { Description = "no progress and no summary" };

        var command = new Command("bench", "Measure speed and quality of many accelerator configurations side by side and write a report.")
        {
            model, quick, cache, specs, samples, repeats, steps, cfg, sampler, seed, batch, shadowImages, threads, gemm, output, quiet,
        };
        command.SetAction(parse =>
        {
            bool isQuick = parse.GetValue(quick);
            var o = new BenchOptions(parse.GetValue(model), isQuick, parse.GetValue(cache) ?? [], parse.GetValue(specs),
                parse.GetValue(samples) ?? (isQuick ? QuickSamples : FullSamples), parse.GetValue(repeats) ?? (isQuick ? QuickRepeats : FullRepeats),
                parse.GetValue(steps), parse.GetValue(cfg), parse.GetValue(sampler)!, parse.GetValue(seed), parse.GetValue(batch),
                parse.GetValue(shadowImages), parse.GetValue(threads), parse.GetValue(gemm)!, parse.GetValue(output)!, parse.GetValue(quiet));
            return Run(o, stdout, stderr, interactive);
        });
        return command;
    }

    private static int Run(BenchOptions o, TextWriter stdout, TextWriter stderr, bool interactive)
    {
        // 1. Flags and plan, before anything heavy.
        if (o.Samples < 10 || o.Samples % 10 != 0)
        {
            throw SampleCommand.Usage($"--samples {o.Samples} is invalid; give a multiple of 10 (the same number of images of each class), at least 10");
        }

        if (o.Steps < 1 || o.Steps > 1000)
        {
            throw SampleCommand.Usage($"--steps {o.Steps} is out of range; give 1 to 1000");
        }

        if (!float.IsFinite(o.Cfg) || o.Cfg < 1f)
        {
            throw SampleCommand.Usage($"--cfg {o.Cfg.ToString(CultureInfo.InvariantCulture)} is invalid; give a number >= 1 (1 disables guidance)");
        }

        if (o.Sampler is not ("ddim" or "ddpm"))
        {
            throw SampleCommand.Usage($"--sampler '{o.Sampler}' is unknown; choose ddim or ddpm");
        }

        if (o.Threads < 1)
        {
            throw SampleCommand.Usage($"--threads {o.Threads} is invalid; give 1 or more");
        }

        if (o.Specs is not null && o.Caches.Length > 0)
        {
            throw SampleCommand.Usage("give either --specs FILE or --cache flags, not both");
        }

        var settings = new BenchSettings(o.Samples / FashionMnist.ClassCount, o.Repeats, o.Seed, o.Sampler, o.Batch, o.ShadowImages);
        settings.Validate();
        List<BenchConfig> plan = o.Specs is not null ? BenchPlan.FromFile(o.Specs, o.Steps, o.Cfg)
            : o.Caches.Length > 0 ? BenchPlan.Parse(o.Caches, "--cache", o.Steps, o.Cfg)
            : BenchPlan.Parse(o.Quick ? BenchPlan.QuickLines : BenchPlan.FullLines, o.Quick ? "the quick preset" : "the full preset", o.Steps, o.Cfg);

        string outDir = Path.GetFullPath(o.Out);
        if (File.Exists(outDir))
        {
            throw SampleCommand.Usage($"--out {o.Out} is a file; give a directory");
        }

        string? parent = Path.GetDirectoryName(outDir);
        if (parent is null || !Directory.Exists(parent))
        {
            throw SampleCommand.Usage($"--out {o.Out}: directory '{parent}' does not exist; create it first or choose another path");
        }

        IGemm gemm = GemmFactory.Create(o.Gemm, o.Threads);

        // 2. Data, classifier, model; the real side of every comparison.
        FashionMnist test = FashionMnist.Load(FashionMnistSplit.Test);
        FashionMnist train = FashionMnist.Load(FashionMnistSplit.Train);
        FmnistClassifier classifier = FmnistClassifier.LoadDefault(GemmFactory.Float32(gemm));   // the metric stays float32
        TensorFile modelFile = o.Model is null ? DefaultModel.Load() : Checkpoint.Load(o.Model);
        DitWeights weights = DitWeights.FromFile(modelFile);
        string modelName = (o.Model ?? "embedded:" + DefaultModel.ResourceName) + " " + Fingerprint(modelFile);
        var runner = new BenchRunner(new DitModel(weights, gemm, o.Threads), classifier, train, DefaultModel.LoadCalibration(o.Model));
        QualityReference reference = QualityReference.Compute(classifier, test, QualitySettings.AllClasses);
        BenchResults results = BenchRunner.NewResults(settings, modelName, Machine(), CommandLine(o), o.Threads, gemm.Name,
            reference, runner.MatchedFloor(settings, reference));

        Directory.CreateDirectory(outDir);
        string resultsPath = Path.Combine(outDir, "results.json");
        if (File.Exists(resultsPath))
        {
            BenchResults previous = BenchJson.Load(resultsPath);
            BenchJson.CheckResumable(previous, results, resultsPath);
            previous.Repeats = Math.Max(previous.Repeats, results.Repeats);
            results = previous;
            if (!o.Quiet)
            {
                stdout.WriteLine($"resuming {resultsPath}: {results.Entries.Count} configuration(s) measured before");
            }
        }

        void Save(BenchResults r) => AtomicFile.Write(resultsPath, "--out", s => s.Write(BenchJson.Serialize(r)));

        // 3. Run, with a progress bar per configuration (time remaining) and one overall.
        long totalImages = (long)plan.Count * settings.Samples * settings.Repeats;
        long doneBefore = results.Entries.Sum(e => (long)Math.Min(e.Seconds.Count, settings.Repeats) * settings.Samples);
        if (interactive && !o.Quiet)
        {
            var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(stderr) });
            console.Progress().AutoClear(true).Columns(
                new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
                .Start(ctx =>
                {
                    ProgressTask all = ctx.AddTask($"{plan.Count} configurations x {settings.Repeats} repeat(s)", maxValue: totalImages);
                    all.Value = doneBefore;
                    ProgressTask? current = null;
                    string currentLabel = "";
                    long completed = doneBefore;
                    runner.Run(plan, settings, reference, results, (r, _) =>
                    {
                        Save(r);
                        completed += settings.Samples;
                    }, (label, done, total) =>
                    {
                        if (label != currentLabel || current is null)
                        {
                            current?.StopTask();
                            current = ctx.AddTask(label, maxValue: total);
                            currentLabel = label;
                        }

                        current.Value = done;
                        all.Value = Math.Min(totalImages, completed + done);
                    });
                });
        }
        else
        {
            runner.Run(plan, settings, reference, results, (r, last) =>
            {
                Save(r);
                if (!o.Quiet)
                {
                    stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"measured {last.Config.Label} (repeat {last.Seconds.Count}/{settings.Repeats}): {last.MedianSeconds:F1} s, FLOPs x{last.FlopsSpeedup:F2}, PSNR {(last.Config.IsReference ? "ref" : last.Psnr.ToString("F2", CultureInfo.InvariantCulture) + " dB")}, FD {last.FrechetDistance:F2}"));
                }
            });
        }

        // 4. Reports, each through a temporary file.
        BenchResults planned = new()
        {
            Model = results.Model, Machine = results.Machine, Command = results.Command, Samples = results.Samples,
            Repeats = results.Repeats, Seed = results.Seed, Sampler = results.Sampler, Threads = results.Threads,
            Gemm = results.Gemm, FloorFrechetDistance = results.FloorFrechetDistance,
            MatchedFloorFrechetDistance = results.MatchedFloorFrechetDistance, StripClasses = results.StripClasses,
            Entries = [.. plan.Select(c => results.Entries.Find(e => e.Config.Key == c.Key)!)],
        };
        var files = new List<(string Name, byte[] Bytes)>
        {
            ("results.csv", Utf8(BenchReport.Csv(planned))),
            ("results.md", Utf8(BenchReport.Markdown(planned))),
            ("frontier-psnr.svg", Utf8(BenchReport.FrontierPsnrSvg(planned))),
            ("frontier-fd.svg", Utf8(BenchReport.FrontierFdSvg(planned))),
            ("timeline.svg", Utf8(BenchReport.TimelineSvg(planned))),
            ("grid.png", BenchReport.GridPng(planned)),
            ("report.html", Utf8(BenchReport.Html(planned))),
        };
        if (BenchReport.ShadowSvg(planned) is { } shadow)
        {
            files.Add(("shadow.svg", Utf8(shadow)));
        }

        if (BenchReport.ShadowPerBlockSvg(planned) is { } perBlock)
        {
            files.Add(("shadow-per-block.svg", Utf8(perBlock)));
        }

        foreach ((string name, byte[] bytes) in files)
        {
            AtomicFile.Write(Path.Combine(outDir, name), "--out", s => s.Write(bytes));
        }

        if (!o.Quiet)
        {
            stdout.Write(BenchReport.Markdown(planned));
            stdout.WriteLine($"wrote {resultsPath} and {string.Join(", ", files.Select(f => f.Name))} in {outDir}");
        }

        return 0;
    }

    private static byte[] Utf8(string text) => System.Text.Encoding.UTF8.GetBytes(text);

    /// <summary>
    /// Identifies the weights, so a results file is never resumed with another model under the same name: the
    /// training steps from the metadata when present, and a SHA-256 over every tensor's name and values.
    /// </summary>
    private static string Fingerprint(TensorFile file)
    {
        using var sha = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256);
        foreach (string key in file.Tensors.Keys.Order(StringComparer.Ordinal))
        {
            sha.AppendData(System.Text.Encoding.UTF8.GetBytes(key));
            sha.AppendData(MemoryMarshal.AsBytes(file.Tensors[key].Data.AsSpan()));
        }

        string hash = Convert.ToHexStringLower(sha.GetHashAndReset())[..12];
        return file.Metadata.TryGetValue("training_steps", out string? steps) ? $"(step {steps}, sha256 {hash})" : $"(sha256 {hash})";
    }

    /// <summary>CPU model, cores, ISA, OS and runtime: the machine line of every report.</summary>
    internal static string Machine()
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

    private static string CommandLine(BenchOptions o)
    {
        var parts = new List<string> { "ditcache bench" };
        if (o.Quick)
        {
            parts.Add("--quick");
        }

        if (o.Model is not null)
        {
            parts.Add($"--model {o.Model}");
        }

        if (o.Specs is not null)
        {
            parts.Add($"--specs {o.Specs}");
        }

        parts.AddRange(o.Caches.Select(c => $"--cache \"{c}\""));
        parts.Add(string.Create(CultureInfo.InvariantCulture,
            $"--samples {o.Samples} --repeats {o.Repeats} --steps {o.Steps} --cfg {o.Cfg} --sampler {o.Sampler} --seed {o.Seed} --batch {o.Batch} --shadow-images {o.ShadowImages} --threads {o.Threads} --gemm {o.Gemm}"));
        return string.Join(' ', parts);
    }

    private sealed record BenchOptions(string? Model, bool Quick, string[] Caches, string? Specs, int Samples, int Repeats,
        int Steps, float Cfg, string Sampler, int Seed, int Batch, int ShadowImages, int Threads, string Gemm, string Out, bool Quiet);
}
