using System.Collections.Generic;
using System.CommandLine;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;
using System;
using DitCache.Caching.Calibration;
using DitCache.Caching;
using DitCache.Evaluation.Assets;
using DitCache.Evaluation.Bench;
using DitCache.Evaluation.Data;
using DitCache.Evaluation.Metrics;
using DitCache.Evaluation.Quality;
using DitCache.Evaluation.Reports;
using DitCache.Evaluation.Shards;
using DitCache.Models;
using DitCache.Sampling;
using DitCache.Tensors.IO;
using DitCache.Tensors;
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
        var samples = new Option<int?>("--samples") { Description = $"images per configuration, a multiple of the number of classes (the same count of each); default {FullSamples}, --quick {QuickSamples}" }.Range(1, 1_000_000, ", a multiple of the number of classes");
        var classes = new Option<string?>("--classes") { Description = "comma-separated class labels to sample, e.g. 207,360,387,974 (default: every class of the model)" };
        var repeats = new Option<int?>("--repeats") { Description = $"timed repeats per configuration, interleaved; default {FullRepeats}, --quick {QuickRepeats}" }.Range(1, 100);
        var steps = new Option<int>("--steps") { Description = "sampling steps of the reference and of every configuration without steps=", DefaultValueFactory = _ => 50 }.Range(1, 1000);
        var cfg = new Option<float>("--cfg") { Description = "guidance scale of every configuration without cfg=", DefaultValueFactory = _ => SampleCommand.DefaultCfg }.AtLeast(1f);
        var sampler = new Option<string>("--sampler") { Description = SchedulerRegistry.Choices, DefaultValueFactory = _ => "ddim" };
        var seed = new Option<int>("--seed") { Description = "base seed; image i of class y gets the same noise in every configuration", DefaultValueFactory = _ => 0 }.Range(int.MinValue, int.MaxValue);
        var batch = new Option<int>("--batch") { Description = "images per sampling run (the CFG batch is twice this)", DefaultValueFactory = _ => 50 }.Range(1, 4096, ", and within the machine's memory");
        var shadowImages = new Option<int>("--shadow-images") { Description = "images of the --shadow run of each cached configuration (forecast error per step and block); 0 turns it off", DefaultValueFactory = _ => 10 }.Range(0, 1_000_000, ", at most --samples");
        var threads = new Option<int>("--threads") { Description = "threads for GEMM and kernels", DefaultValueFactory = _ => Environment.ProcessorCount }.Range(1, FlagRange.MaxThreads);
        var gemm = GemmFlags.Gemm();
        var deterministic = GemmFlags.Deterministic();
        var weightsFlag = GemmFlags.Weights();
        var output = new Option<string>("--out") { Description = "output directory (created if missing; a results.json there is resumed)", DefaultValueFactory = _ => "bench-results" };
        var quiet = new Option<bool>("--quiet") { Description = "no progress and no summary" };
        var shard = new Option<string?>("--shard")
        {
            Description = "run shard k of n (k/n, 0 <= k < n) into --out/shard-k-of-n: the full-compute reference(s) and every n-th other configuration (the k-th, (k+n)-th, ...); each shard times its configurations against its own reference; 'ditcache merge OUT --out MERGED' writes the reports of the whole plan",
        };

        var command = new Command("bench", "Measure speed and quality of many accelerator configurations side by side and write a report.")
        {
            model, quick, cache, specs, samples, classes, repeats, steps, cfg, sampler, seed, batch, shadowImages, threads, gemm, deterministic, weightsFlag, output, quiet, shard,
        };
        command.SetAction(parse =>
        {
            bool isQuick = parse.GetValue(quick);
            var o = new BenchOptions(parse.GetValue(model), isQuick, parse.GetValue(cache) ?? [], parse.GetValue(specs),
                parse.GetValue(samples) ?? (isQuick ? QuickSamples : FullSamples), parse.GetValue(classes), parse.GetValue(repeats) ?? (isQuick ? QuickRepeats : FullRepeats),
                parse.GetValue(steps), parse.GetValue(cfg), parse.GetValue(sampler)!, parse.GetValue(seed), parse.GetValue(batch),
                parse.GetValue(shadowImages), parse.GetValue(threads), parse.GetValue(gemm)!, parse.GetValue(deterministic), parse.GetValue(output)!, parse.GetValue(quiet),
                parse.GetValue(weightsFlag)!, parse.GetValue(shard));
            return Run(o, stdout, stderr, interactive);
        });
        return command;
    }

    private static int Run(BenchOptions o, TextWriter stdout, TextWriter stderr, bool interactive)
    {
        // 1. Flags and plan, before anything heavy.
        if (!SchedulerRegistry.IsKnown(o.Sampler))
        {
            throw SampleCommand.Usage(SchedulerRegistry.UnknownMessage(o.Sampler));
        }

        if (o.Specs is not null && o.Caches.Length > 0)
        {
            throw SampleCommand.Usage("give either --specs FILE or --cache flags, not both");
        }

        List<BenchConfig> plan = o.Specs is not null ? BenchPlan.FromFile(o.Specs, o.Steps, o.Cfg)
            : o.Caches.Length > 0 ? BenchPlan.Parse(o.Caches, "--cache", o.Steps, o.Cfg)
            : BenchPlan.Parse(o.Quick ? BenchPlan.QuickLines : BenchPlan.FullLines, o.Quick ? "the quick preset" : "the full preset", o.Steps, o.Cfg);
        string outDir = BenchSession.CheckDirectory(o.Out);
        ShardSpec? spec = o.Shard is null ? null : ShardSpec.Parse(o.Shard);
        List<BenchConfig> fullPlan = plan;
        if (spec is ShardSpec s)
        {
            plan = ShardPlan(plan, s);
        }

        WeightPrecision precision = WeightPrecisions.Parse(o.Weights);
        IGemm gemm = GemmFlags.Create(o.Gemm, o.Deterministic, o.Threads, precision);
        string gemmLabel = GemmLabel(gemm, precision);

        // 2. Model; the classes and the sample count follow from it.
        TensorFile modelFile = o.Model is null ? DefaultModel.Load()
            : Directory.Exists(o.Model) ? DiffusersFolder.Open(o.Model).LoadOfficialTensors() : Checkpoint.Load(o.Model);
        string fingerprint = BenchSession.Fingerprint(modelFile);                      // before the weights are packed in place
        DitWeights weights = DitWeights.FromFile(modelFile, exclusive: true, precision: precision);   // one model: no second, packed copy
        DitConfig config = weights.Config;
        int[] classes = o.Classes is null ? QualitySettings.AllClasses(config.NumClasses) : SampleCommand.ParseClasses(o.Classes, config.NumClasses);
        int bad = Array.FindIndex(classes, y => y >= config.NumClasses);
        if (bad >= 0)
        {
            throw SampleCommand.Usage($"--classes: class {classes[bad]} is out of range; the model has classes 0..{config.NumClasses - 1}");
        }

        if (classes.Distinct().Count() != classes.Length)
        {
            throw SampleCommand.Usage($"--classes {o.Classes}: a class is listed twice; give each class once");
        }

        if (o.Samples < classes.Length || o.Samples % classes.Length != 0)
        {
            throw SampleCommand.Usage($"--samples {o.Samples} is invalid; give a multiple of {classes.Length} (the same number of images of each class), at least {classes.Length}");
        }

        var settings = new BenchSettings(classes, o.Samples / classes.Length, o.Repeats, o.Seed, o.Sampler, o.Batch, o.ShadowImages);
        settings.Validate();

        // 3. The real side of every comparison, when a quality model scores this model's images.
        FmnistQuality? quality = null;                                              // the one quality model we ship
        QualityReference? reference = null;
        if (config.InChannels == 1 && config.InputSize == FashionMnist.ImageSize && config.NumClasses == FashionMnist.ClassCount)
        {
            quality = new FmnistQuality(FmnistClassifier.LoadDefault(GemmFactory.Float32(gemm)),   // the metric stays float32
                FashionMnist.Load(FashionMnistSplit.Test), FashionMnist.Load(FashionMnistSplit.Train));
            reference = quality.Reference(classes);
            if (settings.Samples < 2)
            {
                throw new DitCacheException($"--samples {settings.Samples}: the Frechet distance of {config.InputSize}x{config.InputSize} images needs at least 2 samples; give --samples 2 or more", exitCode: 2);
            }
        }
        else if (!o.Quiet)
        {
            stdout.WriteLine($"no quality model scores {config.InputSize}x{config.InputSize}x{config.InChannels} images of {config.NumClasses} classes: measuring fidelity to full compute (PSNR, SSIM, rel. L2), FLOPs and time; FD and accuracy are left empty");
        }

        string modelName = (o.Model ?? "embedded:" + DefaultModel.ResourceName) + " " + fingerprint;
        CalibrationFile calibration = DefaultModel.LoadCalibration(o.Model);
        CalibrationWarning.Print(stderr, calibration, plan.Select(p => CacheRegistry.Parse(p.Cache).Name));
        var runner = new BenchRunner(new DitModel(weights, gemm, o.Threads), quality, calibration);
        BenchResults fresh = BenchRunner.NewResults(settings, modelName, BenchSession.Machine(), CommandLine(o), o.Threads, gemmLabel,
            reference, runner.MatchedFloor(settings, reference), quality?.ClassNames);
        string sessionDir = o.Out;
        ShardLock? shardLock = null;
        if (spec is ShardSpec sp)
        {
            Directory.CreateDirectory(outDir);
            sessionDir = Path.Combine(outDir, sp.DirectoryName);
            Directory.CreateDirectory(sessionDir);
            shardLock = ShardLock.Take(sessionDir, sp);
            var recorded = new Dictionary<string, string>
            {
                ["model"] = fingerprint,
                ["plan"] = string.Join(";", fullPlan.Select(p => p.Key)),
                ["samples"] = ShardFlags.Number(settings.Samples),
                ["classes"] = string.Join(",", classes),
                ["repeats"] = ShardFlags.Number(settings.Repeats),
                ["seed"] = ShardFlags.Number(o.Seed),
                ["sampler"] = o.Sampler,
                ["batch"] = ShardFlags.Number(o.Batch),
                ["shadow-images"] = ShardFlags.Number(o.ShadowImages),
                ["weights"] = precision.Name(),
            };
            ShardFlags.AddGemm(recorded, gemmLabel, o.Deterministic, o.Threads);
            ShardStore.CheckOrWriteSettings(sessionDir, sp, "bench", recorded);
        }

        using ShardLock? held = shardLock;
        BenchSession session = BenchSession.Open(sessionDir, fresh);
        BenchResults results = session.Results;
        if (session.Resumed && !o.Quiet)
        {
            stdout.WriteLine($"resuming {session.ResultsPath}: {session.MeasuredBefore} configuration(s) measured before");
        }

        // 4. Run, with a progress bar per configuration (time remaining) and one overall.
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
                    runner.Run(plan, settings, reference, results, (_, _) =>
                    {
                        session.Save();
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
            runner.Run(plan, settings, reference, results, (_, last) =>
            {
                session.Save();
                if (!o.Quiet)
                {
                    stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"measured {last.Config.Label} (repeat {last.Seconds.Count}/{settings.Repeats}): {last.MedianSeconds:F1} s, FLOPs x{last.FlopsSpeedup:F2}, PSNR {(last.Config.IsReference ? "ref" : last.Psnr.ToString("F2", CultureInfo.InvariantCulture) + " dB")}, FD {last.FrechetDistance:F2}"));
                }
            });
        }

        // 5. Reports of the plan's configurations, each through a temporary file.
        BenchResults planned = session.Planned(plan);
        IReadOnlyList<string> written = session.WriteReports(planned);
        if (!o.Quiet)
        {
            stdout.Write(BenchReport.Markdown(planned));
            stdout.WriteLine($"wrote {session.ResultsPath} and {string.Join(", ", written)} in {session.Directory}");
        }

        return 0;
    }

    /// <summary>
    /// The configurations of shard <paramref name="spec"/>: every full-compute reference (each shard times its
    /// configurations against a reference measured on its own machine, and PSNR needs the reference's images), and
    /// of the others the k-th, (k+n)-th, ... in plan order.
    /// </summary>
    internal static List<BenchConfig> ShardPlan(List<BenchConfig> plan, ShardSpec spec)
    {
        var mine = new List<BenchConfig>();
        int other = 0;
        foreach (BenchConfig c in plan)
        {
            if (c.IsReference || other++ % spec.Count == spec.Index)
            {
                mine.Add(c);
            }
        }

        return mine;
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
        if (o.Classes is not null)
        {
            parts.Add($"--classes {o.Classes}");
        }

        parts.Add(string.Create(CultureInfo.InvariantCulture,
            $"--samples {o.Samples} --repeats {o.Repeats} --steps {o.Steps} --cfg {o.Cfg} --sampler {o.Sampler} --seed {o.Seed} --batch {o.Batch} --shadow-images {o.ShadowImages} --threads {o.Threads} --gemm {o.Gemm}{(o.Deterministic ? " --deterministic" : "")}{(o.Weights == "f32" ? "" : $" --weights {o.Weights}")}"));
        return string.Join(' ', parts);
    }

    private sealed record BenchOptions(string? Model, bool Quick, string[] Caches, string? Specs, int Samples, string? Classes, int Repeats,
        int Steps, float Cfg, string Sampler, int Seed, int Batch, int ShadowImages, int Threads, string Gemm, bool Deterministic, string Out, bool Quiet, string Weights, string? Shard);

    /// <summary>The backend as reports name it: with 16-bit weights, e.g. "managed-avx512 weights-bf16" (a results file
    /// of other weights is then not resumed).</summary>
    internal static string GemmLabel(IGemm gemm, WeightPrecision precision) =>
        precision == WeightPrecision.Float32 ? gemm.Name : $"{gemm.Name} weights-{precision.Name()}";
}
