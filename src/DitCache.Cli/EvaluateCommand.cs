using System;
using System.Collections.Generic;
using System.CommandLine;
using System.Globalization;
using System.IO;
using System.Linq;
using DitCache.Caching;
using DitCache.Caching.Calibration;
using DitCache.Evaluation.Assets;
using DitCache.Evaluation.Data;
using DitCache.Evaluation.Inception;
using DitCache.Evaluation.Metrics;
using DitCache.Evaluation.Quality;
using DitCache.Evaluation.Reports;
using DitCache.Evaluation.Shards;
using DitCache.Models;
using DitCache.Sampling;
using DitCache.Tensors;
using DitCache.Tensors.IO;
using Spectre.Console;

namespace DitCache.Cli;

/// <summary>
/// <c>ditcache evaluate</c>: sample K images of each Fashion-MNIST class and score them with the shipped classifier
/// (accuracy under the requested class, Frechet distance of its features to the test set, the real floors). Every
/// flag is checked before the run starts; every output goes through a temporary file.
/// </summary>
internal static class EvaluateCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr, bool interactive)
    {
        var model = new Option<string?>("--model") { Description = "DiT checkpoint (.safetensors or PyTorch .pt); default: the embedded Fashion-MNIST model" };
        var perClass = new Option<int>("--samples-per-class") { Description = "images generated per class", DefaultValueFactory = _ => 100 }.Range(1, 1_000_000, ", at most a million samples in all");
        var classes = new Option<string>("--classes") { Description = "comma-separated class labels to evaluate (grid rows), e.g. 0,5,9", DefaultValueFactory = _ => "0,1,2,3,4,5,6,7,8,9" };
        var steps = new Option<int>("--steps") { Description = "sampling steps (respaced from 1000)", DefaultValueFactory = _ => 50 }.Range(1, 1000);
        var sampler = new Option<string>("--sampler") { Description = SchedulerRegistry.Choices, DefaultValueFactory = _ => "ddim" };
        var cfg = new Option<float>("--cfg") { Description = "classifier-free guidance scale; 1 disables guidance", DefaultValueFactory = _ => SampleCommand.DefaultCfg }.AtLeast(1f);
        var cache = new Option<string>("--cache") { Description = "accelerator: name or name:key=value,...; " + string.Join("; ", CacheRegistry.Methods.Select(m => $"{m.Name} = {m.Summary}")), DefaultValueFactory = _ => "none" };
        var cacheBudget = CacheBudgetFlag.Create();
        var seed = new Option<int>("--seed") { Description = "base seed; each sample's noise derives from (seed, class, index)", DefaultValueFactory = _ => 0 }.Range(int.MinValue, int.MaxValue);
        var batch = new Option<int>("--batch") { Description = "images per sampling run (the CFG batch is twice this)", DefaultValueFactory = _ => 100 }.Range(1, 4096, ", and within the machine's memory");
        var threads = new Option<int>("--threads") { Description = "threads for GEMM and kernels", DefaultValueFactory = _ => Environment.ProcessorCount }.Range(1, FlagRange.MaxThreads);
        var gemm = GemmFlags.Gemm();
        var deterministic = GemmFlags.Deterministic();
        var weightsFlag = GemmFlags.Weights();
        var grid = new Option<string?>("--grid") { Description = "write a PNG grid: one row per class, its first --grid-columns samples" };
        var gridColumns = new Option<int>("--grid-columns") { Description = "samples of each class in the --grid", DefaultValueFactory = _ => 10 }.Range(1, 100, ", at most --samples-per-class");
        var report = new Option<string?>("--report") { Description = "write a JSON report: settings, accuracy per class, Frechet distances with sample counts, seconds" };
        var quiet = new Option<bool>("--quiet") { Description = "no progress bar and no summary" };
        var shard = ShardFlags.Shard();
        var outDir = ShardFlags.OutDir();
        var inception = new Option<string?>("--inception") { Description = "FID Inception-v3 weights (pytorch-fid's pt_inception-2015-12-05-6726825d.pth): score FID against --fid-stats instead of the Fashion-MNIST classifier (RGB or latent DiTs such as DiT-XL/2)" };
        var fidStats = new Option<string?>("--fid-stats") { Description = "reference statistics for --inception: an .npz with mu [2048] and sigma [2048, 2048] (ADM's VIRTUAL_imagenet256_labeled.npz, or pytorch-fid --save-stats)" };
        var vae = new Option<string?>("--vae") { Description = "with --inception: the VAE that decodes a latent DiT's samples (a diffusers vae/ folder or weights file); default: the vae/ folder of a diffusers --model folder" };

        var command = new Command("evaluate", "Measure sample quality: on Fashion-MNIST classifier accuracy and Frechet distance to the test set; with --inception and --fid-stats, FID as the DiT papers measure it.")
        {
            model, perClass, classes, steps, sampler, cfg, cache, seed, batch, threads, gemm, deterministic, weightsFlag, grid, gridColumns, report, quiet, shard, outDir, cacheBudget,
            inception, fidStats, vae,
        };

        command.SetAction(parse =>
        {
            var o = new EvaluateOptions(
                parse.GetValue(model), parse.GetValue(perClass), parse.GetValue(classes)!, parse.GetValue(steps),
                parse.GetValue(sampler)!, parse.GetValue(cfg), parse.GetValue(cache)!, parse.GetValue(seed),
                parse.GetValue(batch), parse.GetValue(threads), parse.GetValue(gemm)!, parse.GetValue(deterministic), parse.GetValue(grid),
                parse.GetValue(gridColumns), parse.GetValue(report), parse.GetValue(quiet), parse.GetValue(weightsFlag)!,
                parse.GetValue(shard), parse.GetValue(outDir), parse.GetResult(gridColumns) is { Implicit: false }, parse.GetValue(cacheBudget),
                parse.GetValue(inception), parse.GetValue(fidStats), parse.GetValue(vae), parse.GetResult(classes) is { Implicit: false });
            return Run(o, stdout, stderr, interactive);
        });
        return command;
    }

    private static int Run(EvaluateOptions o, TextWriter stdout, TextWriter stderr, bool interactive)
    {
        // 1. Flags that need no model or data.
        if (o.Fid && (o.Inception is null || o.FidStats is null))
        {
            throw SampleCommand.Usage(o.Inception is null
                ? $"--fid-stats {o.FidStats} needs --inception FILE, the FID Inception-v3 weights the statistics were computed with (pytorch-fid's pt_inception-2015-12-05-6726825d.pth)"
                : $"--inception {o.Inception} needs --fid-stats FILE, the reference statistics to compare with (an .npz with mu and sigma, e.g. ADM's VIRTUAL_imagenet256_labeled.npz)");
        }

        if (!o.Fid && o.Vae is not null)
        {
            throw SampleCommand.Usage($"--vae {o.Vae}: the VAE decodes samples for FID, which needs --inception and --fid-stats; add them, or drop --vae (the Fashion-MNIST models make pixels)");
        }

        int[] labels = o.Fid && !o.ClassesGiven ? [] : SampleCommand.ParseClasses(o.Classes);   // FID: every class of the model unless given
        if (!o.Fid)
        {
            CheckFashionMnistClasses(labels, o);
        }

        if (!SchedulerRegistry.IsKnown(o.Sampler))
        {
            throw SampleCommand.Usage(SchedulerRegistry.UnknownMessage(o.Sampler));
        }

        ICacheOptions cacheOptions = CacheRegistry.Parse(o.Cache);
        long? budget = CacheBudgetFlag.Parse(o.CacheBudget);
        SampleCommand.CheckOutputPath(o.Grid, "--grid");
        SampleCommand.CheckOutputPath(o.Report, "--report");
        SampleCommand.CheckDistinct([("--grid", o.Grid), ("--report", o.Report)], [("--model", o.Model)]);
        WeightPrecision precision = WeightPrecisions.Parse(o.Weights);
        IGemm gemm = GemmFlags.Create(o.Gemm, o.Deterministic, o.Threads, precision);
        string gemmLabel = BenchCommand.GemmLabel(gemm, precision);
        if (o.OutDir is not null || o.Shard is not null)
        {
            return RunSharded(o, labels, cacheOptions, budget, precision, gemm, gemmLabel, stdout, stderr);
        }

        if (o.Fid)
        {
            return RunFid(o, labels, cacheOptions, budget, precision, gemm, gemmLabel, stdout, stderr);
        }

        // 2. Data, classifier and model (each reader's error names the file and the remedy).
        FashionMnist test = FashionMnist.Load(FashionMnistSplit.Test);
        FashionMnist train = FashionMnist.Load(FashionMnistSplit.Train);
        FmnistClassifier classifier = FmnistClassifier.LoadDefault(GemmFactory.Float32(gemm));   // the metric stays float32
        DitWeights weights = DefaultModel.LoadWeights(o.Model, precision: precision);
        string modelName = o.Model ?? "embedded:" + DefaultModel.ResourceName;
        var quality = new FmnistQuality(classifier, test, train);
        CalibrationFile calibration = DefaultModel.LoadCalibration(o.Model);
        CalibrationWarning.Print(stderr, calibration, [cacheOptions.Name]);
        var model = new DitModel(weights, gemm, o.Threads);
        cacheOptions = CacheBudgetFlag.Apply(cacheOptions, budget, new DiffusionPipeline(model, calibration), o.Batch, o.Steps, o.Sampler, o.Cfg, stderr);
        var evaluation = new QualityEvaluation(model, quality, calibration);
        var settings = new QualitySettings(o.SamplesPerClass, labels, o.Steps, o.Sampler, o.Cfg, cacheOptions, o.Seed, o.Batch, o.GridColumns);

        // 3. Run: the reference features first (10,000 test images), then the sampling.
        QualityResult result;
        if (interactive && !o.Quiet)
        {
            var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(stderr) });
            QualityResult? done = null;
            console.Progress().AutoClear(true).Columns(
                new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
                .Start(ctx =>
                {
                    ProgressTask features = ctx.AddTask("features of the test images", maxValue: 1);
                    ProgressTask sampling = ctx.AddTask($"{settings.TotalSamples} samples, {o.Sampler} x{o.Steps}, cache {o.Cache}", autoStart: false);
                    QualityReference reference = quality.Reference(labels);
                    features.Value = 1;
                    sampling.StartTask();
                    done = evaluation.Run(settings, reference, (s, total) =>
                    {
                        sampling.MaxValue = total;
                        sampling.Value = s;
                    });
                });
            result = done!;
        }
        else
        {
            result = evaluation.Run(settings, quality.Reference(labels));
        }

        // 4. Outputs: each written to a temporary file, all renamed into place once every one is written.
        using (var outputs = new AtomicOutputs())
        {
            if (o.Grid is not null)
            {
                byte[] png = Png.EncodeGrid(result.Grid, Math.Min(o.GridColumns, o.SamplesPerClass));
                outputs.Add(o.Grid, "--grid", s => s.Write(png));
            }

            if (o.Report is not null)
            {
                byte[] json = QualityReport.ToJson(result, weights.Config, modelName, classifier.Source, gemmLabel, o.Threads);
                outputs.Add(o.Report, "--report", s => s.Write(json));
            }

            outputs.Commit();
        }

        if (!o.Quiet)
        {
            Print(stdout, result, weights.Config, modelName, gemmLabel, o.Threads);
            foreach (string? path in new[] { o.Grid, o.Report })
            {
                if (path is not null)
                {
                    stdout.WriteLine($"wrote {path}");
                }
            }
        }

        return 0;
    }

    /// <summary>
    /// <c>--shard k/n --out-dir DIR</c>: the batches of this shard, each image with its classifier features and
    /// prediction in its own file (<see cref="ShardStore"/>); <c>ditcache merge</c> scores the whole run.
    /// </summary>
    private static int RunSharded(EvaluateOptions o, int[] labels, ICacheOptions cacheOptions, long? budget, WeightPrecision precision, IGemm gemm,
        string gemmLabel, TextWriter stdout, TextWriter stderr)
    {
        if (o.OutDir is null)
        {
            throw SampleCommand.Usage($"--shard {o.Shard} needs --out-dir DIR, the folder (shared by all shards) its images go to");
        }

        ShardFlags.Refuse(o.Grid is not null, "--grid", "a shard holds only some images; merge the shards first");
        ShardFlags.Refuse(o.Report is not null, "--report", "'ditcache merge' writes the scores of the whole run to metrics.json");
        ShardFlags.Refuse(o.GridColumnsGiven, "--grid-columns", "there is no grid");
        ShardSpec spec = o.Shard is null ? ShardSpec.Whole : ShardSpec.Parse(o.Shard);
        SampleCommand.CheckDistinct([("--out-dir", o.OutDir)], [("--model", o.Model)]);

        (DitWeights weights, string fingerprint) = ShardFlags.LoadModel(o.Model, null, null, precision);
        IQualityModel quality;
        if (o.Fid)
        {
            (quality, labels) = FidQuality(o, weights.Config, o.Model ?? "embedded:" + DefaultModel.ResourceName, labels, gemm);
        }
        else
        {
            FashionMnist test = FashionMnist.Load(FashionMnistSplit.Test);
            quality = new FmnistQuality(FmnistClassifier.LoadDefault(GemmFactory.Float32(gemm)), test);   // the metric stays float32
        }

        (QualityEvaluation evaluation, QualitySettings settings) = Prepare(o, weights, quality, labels, cacheOptions, budget, gemm, stderr);
        var recorded = new Dictionary<string, string>
        {
            ["model"] = fingerprint,
            ["classifier"] = quality.Source,
            ["images"] = ShardFlags.Number(settings.TotalSamples),
            ["batch"] = ShardFlags.Number(o.Batch),
            ["classes"] = string.Join(",", labels),
            ["samples-per-class"] = ShardFlags.Number(o.SamplesPerClass),
            ["steps"] = ShardFlags.Number(o.Steps),
            ["sampler"] = o.Sampler,
            ["cfg"] = ShardFlags.Number(o.Cfg),
            ["cache"] = cacheOptions.Spec,
            ["seed"] = ShardFlags.Number(o.Seed),
            ["weights"] = precision.Name(),
        };
        ShardFlags.AddGemm(recorded, gemmLabel, o.Deterministic, o.Threads);
        if (o.Fid)
        {
            recorded["fid-stats"] = Path.GetFileName(o.FidStats!);
            recorded["vae"] = VaeName(o) ?? "none";
        }

        using ShardStore store = ShardStore.Open(o.OutDir, spec, "evaluate", recorded);
        store.WriteShared(ShardMerge.ReferenceFile, ReferenceStatistics.Serialize(quality.Reference(labels)));
        int resumed = store.DoneCount, batches = QualityEvaluation.BatchCount(settings), ran = 0;
        int image = weights.Config.InChannels * weights.Config.InputSize * weights.Config.InputSize;
        for (int b = 0; b < batches; b++)
        {
            int start = b * o.Batch, count = Math.Min(o.Batch, settings.TotalSamples - start);
            if (!spec.Owns(b) || Enumerable.Range(start, count).All(store.IsDone))
            {
                continue;
            }

            QualityBatch batch = evaluation.RunBatch(settings, b);
            for (int i = 0; i < count; i++)
            {
                var tensors = new Dictionary<string, Tensor>
                {
                    ["sample"] = new Tensor(batch.Samples.AsSpan(i * image, image).ToArray(), 1, weights.Config.InChannels, weights.Config.InputSize, weights.Config.InputSize),
                    ["features"] = new Tensor(batch.Features.AsSpan(i * quality.FeatureSize, quality.FeatureSize).ToArray(), 1, quality.FeatureSize),
                };
                var metadata = new Dictionary<string, string>
                {
                    ["index"] = ShardFlags.Number(start + i),
                    ["label"] = ShardFlags.Number(batch.Labels[i]),
                };
                if (quality.Classifies)
                {
                    metadata["prediction"] = ShardFlags.Number(batch.Predictions[i]);
                }
                store.Write(start + i, SafeTensors.Serialize(tensors, metadata, StoredDType.F32));
            }

            ran++;
            if (!o.Quiet)
            {
                stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"shard {spec}: batch {b + 1}/{batches} (images {start}..{start + count - 1}) in {batch.Run.Seconds:F2} s"));
            }
        }

        if (!o.Quiet)
        {
            stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"shard {spec}: {store.DoneCount} image(s) done ({resumed} from before, {ran} batch(es) run now) in {store.Directory}; merge all shards with 'ditcache merge {o.OutDir} --out MERGED'"));
        }

        return 0;
    }

    /// <summary>
    /// <c>--inception FILE --fid-stats FILE</c> without shards: sample, decode, score with the FID Inception and print
    /// the FID against the reference statistics.
    /// </summary>
    private static int RunFid(EvaluateOptions o, int[] labels, ICacheOptions cacheOptions, long? budget, WeightPrecision precision, IGemm gemm,
        string gemmLabel, TextWriter stdout, TextWriter stderr)
    {
        if (o.Grid is not null)
        {
            throw SampleCommand.Usage($"--grid {o.Grid}: with --inception the samples may be latents; write images with 'ditcache sample --out' or keep them with --shard 0/1 --out-dir DIR");
        }

        (DitWeights weights, _) = ShardFlags.LoadModel(o.Model, null, null, precision);
        string modelName = o.Model ?? "embedded:" + DefaultModel.ResourceName;
        (IQualityModel quality, labels) = FidQuality(o, weights.Config, modelName, labels, gemm);
        (QualityEvaluation evaluation, QualitySettings settings) = Prepare(o, weights, quality, labels, cacheOptions, budget, gemm, stderr);
        QualityResult result = evaluation.Run(settings, quality.Reference(labels));
        if (o.Report is not null)
        {
            using var outputs = new AtomicOutputs();
            byte[] json = QualityReport.FidToJson(result, weights.Config, modelName, quality.Source, o.FidStats!, VaeName(o), gemmLabel, o.Threads);
            outputs.Add(o.Report, "--report", s => s.Write(json));
            outputs.Commit();
        }

        if (!o.Quiet)
        {
            QualitySettings q = result.Settings;
            CultureInfo inv = CultureInfo.InvariantCulture;
            stdout.WriteLine(string.Create(inv,
                $"evaluated {modelName} ({weights.Config.Name}): {q.TotalSamples} samples ({q.SamplesPerClass} per class, {q.Classes.Length} classes), {q.Sampler} {q.Steps} steps, cfg {q.CfgScale}, cache {q.Cache.Spec}, seed {q.Seed}, gemm {gemmLabel}, {o.Threads} threads"));
            stdout.WriteLine(string.Create(inv, $"  FID                       {result.FrechetDistance:F3}  ({q.TotalSamples} generated vs the statistics of {o.FidStats}; FID Inception {quality.Source})"));
            stdout.WriteLine(string.Create(inv, $"  seconds                   {result.Seconds:F1}  (sampling {result.SamplingSeconds:F1}; {result.Flops / 1e12:F2} of {result.FullFlops / 1e12:F2} TFLOPs)"));
            if (o.Report is not null)
            {
                stdout.WriteLine($"wrote {o.Report}");
            }
        }

        return 0;
    }

    /// <summary>
    /// The model, calibration and cache (after --cache-budget) of a run scored by <paramref name="quality"/> without the
    /// matched floor (sharded and FID runs): the evaluation and its settings.
    /// </summary>
    private static (QualityEvaluation Evaluation, QualitySettings Settings) Prepare(EvaluateOptions o, DitWeights weights, IQualityModel quality,
        int[] labels, ICacheOptions cacheOptions, long? budget, IGemm gemm, TextWriter stderr)
    {
        CalibrationFile calibration = DefaultModel.LoadCalibration(o.Model);
        CalibrationWarning.Print(stderr, calibration, [cacheOptions.Name]);
        var model = new DitModel(weights, gemm, o.Threads);
        cacheOptions = CacheBudgetFlag.Apply(cacheOptions, budget, new DiffusionPipeline(model, calibration), o.Batch, o.Steps, o.Sampler, o.Cfg, stderr);
        var evaluation = new QualityEvaluation(model, quality, calibration, matchedFloor: false);
        return (evaluation, new QualitySettings(o.SamplesPerClass, labels, o.Steps, o.Sampler, o.Cfg, cacheOptions, o.Seed, o.Batch));
    }

    /// <summary>The FID quality model (--inception, --fid-stats, the VAE) and the classes: every class of the model unless --classes names some.</summary>
    private static (IQualityModel Quality, int[] Labels) FidQuality(EvaluateOptions o, DitConfig c, string modelName, int[] labels, IGemm gemm)
    {
        if (labels.Length == 0)
        {
            labels = QualitySettings.AllClasses(c.NumClasses);
        }

        int bad = Array.FindIndex(labels, y => y >= c.NumClasses);
        if (bad >= 0)
        {
            throw SampleCommand.Usage($"--classes: class {labels[bad]} is out of range; {modelName} has classes 0..{c.NumClasses - 1}");
        }

        CheckClassCount(labels, o);
        (VaeDecoder? vae, _) = SampleCommand.LoadVae(o.Vae, o.Model, c, modelName, gemm, "--inception", png: false);
        var net = new FidInception(InceptionWeights.Load(o.Inception!), GemmFactory.Float32(gemm));       // the metric stays float32
        FeatureStatistics stats = FidStatistics.Load(o.FidStats!, FidInception.FeatureSize);
        string[] names = [.. Enumerable.Range(0, c.NumClasses).Select(y => c.NumClasses == ImageNetClasses.Count ? ImageNetClasses.Synonyms(y)[0] : y.ToString(CultureInfo.InvariantCulture))];
        var quality = new InceptionQuality(net, vae, stats, o.FidStats!, names);
        quality.CheckModel(c);
        return (quality, labels);
    }

    private static string? VaeName(EvaluateOptions o) =>
        o.Vae is not null ? Path.GetFileName(Path.TrimEndingDirectorySeparator(o.Vae))
            : o.Model is not null && Directory.Exists(o.Model) ? "vae/ of --model" : null;

    private static void CheckFashionMnistClasses(int[] labels, EvaluateOptions o)
    {
        int bad = Array.FindIndex(labels, y => y >= FashionMnist.ClassCount);
        if (bad >= 0)
        {
            throw SampleCommand.Usage($"--classes: class {labels[bad]} is out of range; Fashion-MNIST has classes 0..{FashionMnist.ClassCount - 1}");
        }

        CheckClassCount(labels, o);
    }

    private static void CheckClassCount(int[] labels, EvaluateOptions o)
    {
        if (labels.Distinct().Count() != labels.Length)
        {
            throw SampleCommand.Usage($"--classes '{o.Classes}' repeats a class; give each class once");
        }

        if (labels.Length * (long)o.SamplesPerClass < 2)
        {
            throw SampleCommand.Usage("--samples-per-class 1 with a single class is too few; the Frechet distance needs at least 2 samples");
        }

        if (labels.Length * (long)o.SamplesPerClass > 1_000_000)
        {
            throw SampleCommand.Usage($"--samples-per-class {o.SamplesPerClass} x {labels.Length} classes is over a million samples; give fewer");
        }
    }

    private static void Print(TextWriter o, QualityResult r, DitConfig c, string model, string gemm, int threads)
    {
        QualitySettings s = r.Settings;
        QualityReference reference = r.Reference!;                                  // evaluate always scores
        CultureInfo inv = CultureInfo.InvariantCulture;
        o.WriteLine(string.Create(inv,
            $"evaluated {model} ({c.Name}): {s.TotalSamples} samples ({s.SamplesPerClass} per class), {s.Sampler} {s.Steps} steps, cfg {s.CfgScale}, cache {s.Cache.Spec}, seed {s.Seed}, gemm {gemm}, {threads} threads"));
        o.WriteLine(string.Create(inv, $"  accuracy                  {r.Accuracy:F4}  (classifier agrees with the requested class)"));
        o.WriteLine(string.Create(inv, $"  FD vs test                {r.FrechetDistance:F3}  ({s.TotalSamples} generated vs {reference.Count} test)"));
        if (r.MatchedFloor is double matched)
        {
            o.WriteLine(string.Create(inv, $"  floor at this N           {matched:F3}  ({s.TotalSamples} train vs {reference.Count} test)"));
        }

        o.WriteLine(string.Create(inv, $"  floor, test halves        {reference.Floor:F3}  ({reference.FloorCountA} vs {reference.FloorCountB} test)"));
        o.WriteLine(string.Create(inv, $"  seconds                   {r.Seconds:F1}  (sampling {r.SamplingSeconds:F1}; {r.Flops / 1e12:F2} of {r.FullFlops / 1e12:F2} TFLOPs)"));
        o.WriteLine("  per class:");
        for (int i = 0; i < s.Classes.Length; i++)
        {
            int y = s.Classes[i];
            o.WriteLine(string.Create(inv, $"    {y} {FashionMnist.ClassNames[y],-12} {r.ClassAccuracy[i]:F3}"));
        }
    }

    private sealed record EvaluateOptions(string? Model, int SamplesPerClass, string Classes, int Steps, string Sampler,
        float Cfg, string Cache, int Seed, int Batch, int Threads, string Gemm, bool Deterministic, string? Grid, int GridColumns,
        string? Report, bool Quiet, string Weights, string? Shard, string? OutDir, bool GridColumnsGiven, string? CacheBudget,
        string? Inception, string? FidStats, string? Vae, bool ClassesGiven)
    {
        public bool Fid => Inception is not null || FidStats is not null;
    }
}
